/* test_reentry.c - the re-entry matrix.
 *
 * Every place the library runs code of ours (a SITE: on_open, on_data on
 * fresh and on redelivered input, the keep_half_open end call, on_drain,
 * on_close, a write's free_fn, timers, deferred and posted calls, signal
 * handlers, the workers' on_start and on_stop) makes one lifecycle CALL
 * (nc_conn_close, _abort, _shutdown, _read_stop, _read_start, _write,
 * _writev, _write_owned, nc_listener_stop, _close, nc_loop_stop,
 * _shutdown, nc_timer_stop, _free) on one TARGET (the connection the
 * callback is for, another live connection, the listener, the loop, a
 * timer), on each BACKEND (epoll, io_uring), plain and over TLS.
 *
 * A case is named BACKEND/plain|tls/SITE/CALL/TARGET, for instance
 * io_uring/tls/data-resumed/nc_conn_close/self; NC_REENTRY_ONLY=TEXT[,TEXT]
 * runs only the cases whose name contains one of the TEXTs, and
 * NC_REENTRY_VERBOSE=1 prints each failing case's whole output. Each case
 * runs in a child process of its own, so a crash or a sanitizer report
 * ends that case alone; the parent prints one line per failing case (with
 * the sanitizer's ERROR and SUMMARY lines and the top frames), and each
 * cmocka test (one per backend and site) fails if any of its cases did.
 *
 * Backends: NC_BACKEND=epoll or io_uring runs that one (as
 * tests/run-tests.sh does, one pass each); without it one run covers
 * both, each loop made with nc_loop_new_with() and an explicit backend.
 *
 * What every case checks:
 * - no memory error (ASan, UBSan, valgrind: the child dies or exits 99);
 * - on_close exactly once for every connection that opened and for every
 *   nc_connect() that returned 0; no callback of a connection after its
 *   on_close, no on_data or on_drain after we closed or aborted it, no
 *   on_data while its reading is paused;
 * - each call returns what the header documents for the target's state
 *   (0 on an open connection; -ENOTCONN on one connecting, closing or
 *   closed), and does what it says (the peer reads the bytes written, its
 *   end, or a reset; a paused connection hears nothing until resumed; a
 *   stopped listener refuses; a shut-down loop closes everything);
 * - descriptors: the process's open descriptors (/proc/self/fd, by number
 *   and by device and inode) are the same after the case as before it;
 *   the descriptors of live connections and of the test's own peers
 *   still refer to the same sockets; and a canary (a memfd) opened right
 *   after each on_close and each call, so that it takes the number the
 *   library just freed, is still open and still the same file at the
 *   end: a library closing a number twice closes the canary;
 * - no busy loop: over a bounded wait with nothing to do, the loop runs
 *   only a few iterations (nc_loop_stats.iterations).
 *
 * Peers are plain non-blocking sockets of the test, pumped from the
 * loop's thread between iterations, with an OpenSSL client (or server,
 * for outgoing connections) of their own for TLS. A peer answers the
 * library's end of stream with its own.
 *
 * Cases run NC_REENTRY_JOBS at once (default 4; 2 under valgrind and
 * TSan, where only every 7th or 5th case runs, plain only under
 * valgrind). NC_REENTRY_TRACE=1 prints when each phase of a case ended.
 * A case exits with a "note" rather than a failure when the call could
 * not be made as planned (the target was already gone); notes are
 * summed up at the end.
 *
 * Where the header is silent or vague about what a callback may call,
 * this test assumes:
 * - "Closing or freeing any object from any callback, including its own,
 *   is always allowed" covers a write's free_fn, deferred and posted
 *   calls, and callbacks run by nc_loop_free() (free_fn, on_close,
 *   posted calls): every call of the matrix is legal there.
 * - A connection whose queued output is being dropped (free_fn called by
 *   nc_conn_abort, a reset, nc_loop_free) is closing: writes and
 *   nc_conn_shutdown return -ENOTCONN (after a reset -EPIPE or
 *   -ECONNRESET are accepted for the writes too).
 * - free_fn of a dropped write may run before, inside or after on_close;
 *   after on_close returned the connection is gone and no call is made
 *   on it (a note).
 * - In the keep_half_open end call writes return 0 (the header says to
 *   queue the reply there); nc_conn_shutdown may return 0 or -ENOTCONN.
 *   The same for a connection whose peer's end is in while it still
 *   flushes, and for one not yet closed while nc_loop_free() runs.
 * - nc_loop_shutdown() returns 0 from anywhere, inside nc_loop_free()
 *   too (its only documented errors are -EINVAL and -ENOMEM).
 * - nc_conn_close() is the graceful close its own comment describes
 *   (flush, FIN, linger), although the Connections section says "the
 *   socket is closed at once"; after it, and after nc_conn_abort(), no
 *   on_data or on_drain of that connection runs ("no further callback").
 * - A plain accepted connection gets on_close only after on_open (the
 *   lifecycle); an accepted TLS connection may get on_close alone.
 * - on_data's data stays valid until on_data returns, whatever the
 *   callback calls ("data is valid only during the call").
 * - Kept-aside connections (io_uring, max_conns) are closed by
 *   nc_listener_close(): their peers see an end or a reset.
 * - "While reading is paused the peer's end of stream is not seen"
 *   holds for a pause by backpressure too, and a pending end must not
 *   make the loop spin either way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef NC_TEST_HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
#if UNDER_ASAN
/* From <sanitizer/allocator_interface.h> and <sanitizer/lsan_interface.h>,
 * which not every compiler installs. */
size_t __sanitizer_get_current_allocated_bytes(void);
int __lsan_do_recoverable_leak_check(void);
void *__asan_region_is_poisoned(void *beg, size_t size);
void __asan_describe_address(void *addr);
#endif

/* ---- the dimensions ------------------------------------------------------ */

enum site {
    SITE_NONE,             /* no callback: the test, between iterations */
    SITE_OPEN_ACCEPTED,
    SITE_OPEN_OUTGOING,
    SITE_OPEN_RESUMED,     /* accepted when max_conns frees a slot, with
                              connections kept aside (io_uring) */
    SITE_DATA_FRESH,
    SITE_DATA_RESUMED,     /* input left unconsumed, handed back after
                              nc_conn_read_stop + nc_conn_read_start */
    SITE_DATA_BACKPRESSURE,/* input left unconsumed, handed back when
                              the output queue fell below low_water */
    SITE_DATA_END,         /* keep_half_open's end call */
    SITE_DRAIN,
    SITE_DRAIN_FIN,        /* on_drain, the peer having ended while
                              reading was paused by backpressure */
    SITE_CLOSE,
    SITE_CLOSE_CONNECT_FAILED, /* on_close of an nc_connect refused */
    SITE_CLOSE_HANDSHAKE,  /* on_close of an accepted TLS connection whose
                              handshake failed (TLS only) */
    SITE_CLOSE_IN_SHUTDOWN,/* on_close run by nc_loop_shutdown() */
    SITE_CLOSE_IN_LCLOSE,  /* on_close run by nc_listener_close() */
    SITE_CLOSE_IN_FREE,    /* on_close run by nc_loop_free() */
    SITE_FREE_SENT,        /* free_fn of an owned write queued, sent later */
    SITE_FREE_ABORT,       /* ... dropped by nc_conn_abort() */
    SITE_FREE_RESET,       /* ... dropped when the peer reset */
    SITE_FREE_IN_FREE,     /* ... dropped by nc_loop_free() */
    SITE_TIMER,
    SITE_DEFER,
    SITE_POST,
    SITE_POST_IN_FREE,     /* a posted call run by nc_loop_free() */
    SITE_SIGNAL,
    SITE_MATRIX_COUNT,
    SITE_W_START = SITE_MATRIX_COUNT, /* nc_workers_options.on_start */
    SITE_W_STOP,                      /* nc_workers_options.on_stop */
    SITE_COUNT
};

static const struct {
    const char *id;     /* in case names */
    const char *name;   /* in messages */
    bool conn;          /* the callback is for one connection ("self") */
    bool tls_only;
} sites[SITE_COUNT] = {
    [SITE_NONE] = { "none", "no callback (between iterations)", false, false },
    [SITE_OPEN_ACCEPTED] = { "open-accepted", "on_open (accepted)", true, false },
    [SITE_OPEN_OUTGOING] = { "open-outgoing", "on_open (nc_connect)", true, false },
    [SITE_OPEN_RESUMED] = { "open-resumed",
                            "on_open (accepted when max_conns frees a slot, "
                            "others kept aside)", true, false },
    [SITE_DATA_FRESH] = { "data-fresh", "on_data (fresh bytes)", true, false },
    [SITE_DATA_RESUMED] = { "data-resumed",
                            "on_data (input redelivered after read_stop + "
                            "read_start)", true, false },
    [SITE_DATA_BACKPRESSURE] = { "data-backpressure",
                                 "on_data (input redelivered when "
                                 "backpressure lifted)", true, false },
    [SITE_DATA_END] = { "data-end", "on_data (keep_half_open end call)",
                        true, false },
    [SITE_DRAIN] = { "drain", "on_drain", true, false },
    [SITE_DRAIN_FIN] = { "drain-after-fin",
                         "on_drain (the peer ended while reading was "
                         "paused by backpressure)", true, false },
    [SITE_CLOSE] = { "close", "on_close (peer closed)", true, false },
    [SITE_CLOSE_CONNECT_FAILED] = { "close-connect-failed",
                                    "on_close (an nc_connect refused)",
                                    true, false },
    [SITE_CLOSE_HANDSHAKE] = { "close-handshake-failed",
                               "on_close (an accepted TLS connection whose "
                               "handshake failed, never opened)", true,
                               true },
    [SITE_CLOSE_IN_SHUTDOWN] = { "close-in-shutdown",
                                 "on_close (of a close by nc_loop_shutdown)",
                                 true, false },
    [SITE_CLOSE_IN_LCLOSE] = { "close-in-listener-close",
                               "on_close (of a close by nc_listener_close)",
                               true, false },
    [SITE_CLOSE_IN_FREE] = { "close-in-free",
                             "on_close (run by nc_loop_free)", true, false },
    [SITE_FREE_SENT] = { "free-sent",
                         "free_fn (owned write queued, then sent)", true, false },
    [SITE_FREE_ABORT] = { "free-abort",
                          "free_fn (owned write dropped by nc_conn_abort)",
                          true, false },
    [SITE_FREE_RESET] = { "free-reset",
                          "free_fn (owned write dropped: the peer reset)",
                          true, false },
    [SITE_FREE_IN_FREE] = { "free-in-free",
                            "free_fn (owned write dropped by nc_loop_free)",
                            true, false },
    [SITE_TIMER] = { "timer", "timer callback", false, false },
    [SITE_DEFER] = { "defer", "nc_loop_defer call", false, false },
    [SITE_POST] = { "post", "nc_loop_post call", false, false },
    [SITE_POST_IN_FREE] = { "post-in-free",
                            "nc_loop_post call (run by nc_loop_free)",
                            false, false },
    [SITE_SIGNAL] = { "signal", "signal callback (nc_signal_start)", false, false },
    [SITE_W_START] = { "workers-on_start", "nc_workers on_start", false, false },
    [SITE_W_STOP] = { "workers-on_stop", "nc_workers on_stop", false, false },
};

enum call {
    C_CLOSE, C_ABORT, C_SHUTDOWN, C_READ_STOP, C_READ_START, C_WRITE,
    C_WRITEV, C_WRITE_OWNED,          /* the connection calls */
    C_LISTENER_STOP, C_LISTENER_CLOSE,
    C_LOOP_STOP, C_LOOP_SHUTDOWN,
    C_TIMER_STOP, C_TIMER_FREE,
    C_COUNT
};

static const char *const call_names[C_COUNT] = {
    "nc_conn_close", "nc_conn_abort", "nc_conn_shutdown",
    "nc_conn_read_stop", "nc_conn_read_start", "nc_conn_write",
    "nc_conn_writev", "nc_conn_write_owned", "nc_listener_stop",
    "nc_listener_close", "nc_loop_stop", "nc_loop_shutdown",
    "nc_timer_stop", "nc_timer_free",
};

enum target {
    T_SELF,        /* the connection the callback is for */
    T_OTHER,       /* another open connection of the same listener */
    T_LISTENER,    /* the listener */
    T_LOOP,
    T_TIMER,       /* a running timer of the test */
    T_OWN_TIMER,   /* the timer whose callback this is */
    T_CONNECTING,  /* workers: an nc_connect() still connecting */
    T_COUNT
};

static const char *const target_names[T_COUNT] = {
    "self", "other", "listener", "loop", "timer", "own-timer", "connecting",
};

struct case_def {
    nc_backend backend;
    bool tls;
    int site, call, target;
    char label[160];
};

/* ---- settings ------------------------------------------------------------- */

#define BLOB_LEN (256u * 1024u)   /* enough to queue far above high_water */
#define SMALL_BUF 4096            /* socket buffers that make output queue */
#define HIGH_WATER (64u * 1024u)  /* the default */
#define LINGER_MS 300
#define MAX_PEERS 8
#define MAX_RECS 16
#define MAX_OWNED 4
#define MAX_CANARIES 48
#define MAX_FDS 512

static const char MARK_WRITE[] = "<<mark:nc_conn_write>>";
static const char MARK_WRITEV_A[] = "<<mark:nc_conn_";
static const char MARK_WRITEV_B[] = "writev>>";
static const char MARK_WRITEV[] = "<<mark:nc_conn_writev>>";
static const char MARK_OWNED[] = "<<mark:nc_conn_write_owned>>";

static unsigned wait_ms(void) { return under_valgrind() ? 20000 : 3000; }
static unsigned idle_ms(void) { return under_valgrind() ? 150 : 10; }
/* Iterations allowed in an idle window: a spinning loop runs thousands. */
#define IDLE_MAX 10
static unsigned child_timeout_s(void) { return under_valgrind() ? 300 : 20; }

/* ---- shared by the parent and every child ---------------------------------- */

static char certs[PATH_MAX];
static bool have_tls;              /* the library has TLS, and so do we */
static nc_tls_ctx *lib_sctx, *lib_cctx;
#ifdef NC_TEST_HAVE_TLS
static SSL_CTX *peer_cctx, *peer_sctx;
#endif

/* The handlers for fatal signals as they were before cmocka installed its
 * own (ASan's, or the defaults): a child puts them back, so that a crash
 * in it is reported and ends it, instead of cmocka jumping back into the
 * parent's copy of the test. */
static const int fatal_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
                                  SIGSYS };
#define NFATAL (sizeof(fatal_sigs) / sizeof(fatal_sigs[0]))
static struct sigaction saved_fatal[NFATAL];

/* ---- failures, noted by the child ------------------------------------------ */

static atomic_int failures;
static atomic_int notes;

static void failf(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "reentry: %s\n", msg);
    atomic_fetch_add(&failures, 1);
}

/* Not a failure: something the header leaves open happened, and the
 * call could not be applied (the target was already gone). */
static void notef(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "reentry-note: %s\n", msg);
    atomic_fetch_add(&notes, 1);
}

/* NC_REENTRY_TRACE=1: when each phase of a case ends, in ms. */
static void trace(const char *what)
{
    static struct timespec t0;
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("NC_REENTRY_TRACE");
        on = v && strcmp(v, "1") == 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
    }
    if (!on)
        return;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    fprintf(stderr, "reentry-trace: %8.2f ms  %s\n",
            (double)(t.tv_sec - t0.tv_sec) * 1e3 +
                (double)(t.tv_nsec - t0.tv_nsec) / 1e6, what);
}

/* ---- descriptors ----------------------------------------------------------- */

struct fdent {
    int fd;
    dev_t dev;
    ino_t ino;
};

static int fdent_cmp(const void *a, const void *b)
{
    const struct fdent *x = a, *y = b;
    return (x->fd > y->fd) - (x->fd < y->fd);
}

static size_t fd_snapshot(struct fdent *out, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        failf("cannot open /proc/self/fd: %s", strerror(errno));
        return 0;
    }
    int self = dirfd(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self || n == max)
            continue;
        struct stat st;
        if (fstat(fd, &st) < 0)
            continue;
        out[n++] = (struct fdent){ fd, st.st_dev, st.st_ino };
    }
    closedir(d);
    qsort(out, n, sizeof(*out), fdent_cmp);
    return n;
}

static const char *fd_what(int fd, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, buf, len - 1);
    if (n < 0)
        snprintf(buf, len, "not open");
    else
        buf[n] = '\0';
    return buf;
}

static void fd_compare(const struct fdent *a, size_t na,
                       const struct fdent *b, size_t nb)
{
    size_t i = 0, j = 0;
    char what[256];
    while (i < na || j < nb) {
        if (j == nb || (i < na && a[i].fd < b[j].fd)) {
            failf("descriptors: fd %d, open before the case, was closed "
                  "by it", a[i].fd);
            i++;
        } else if (i == na || b[j].fd < a[i].fd) {
            failf("descriptors: fd %d (%s) leaked: open after the case "
                  "and not before", b[j].fd, fd_what(b[j].fd, what,
                                                     sizeof(what)));
            j++;
        } else {
            if (a[i].dev != b[j].dev || a[i].ino != b[j].ino)
                failf("descriptors: fd %d was closed and reopened as "
                      "another file (%s)", a[i].fd,
                      fd_what(a[i].fd, what, sizeof(what)));
            i++;
            j++;
        }
    }
}

static bool fd_is(int fd, dev_t dev, ino_t ino)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev &&
           st.st_ino == ino;
}

struct canary {
    int fd;
    dev_t dev;
    ino_t ino;
    char where[96];
};

static struct canary canaries[MAX_CANARIES];
static atomic_int ncanaries;

/* A memfd takes the lowest free number: the one the library just freed,
 * if it did. */
static void canary(const char *fmt, ...)
{
    int i = atomic_fetch_add(&ncanaries, 1);
    if (i >= MAX_CANARIES)
        return;
    struct canary *c = &canaries[i];
    c->fd = memfd_create("nc-reentry-canary", MFD_CLOEXEC);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) < 0) {
        failf("cannot make a canary: %s", strerror(errno));
        c->fd = -1;
        return;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->where, sizeof(c->where), fmt, ap);
    va_end(ap);
}

static void canaries_check_and_close(void)
{
    int n = atomic_load(&ncanaries);
    if (n > MAX_CANARIES)
        n = MAX_CANARIES;
    for (int i = 0; i < n; i++) {
        struct canary *c = &canaries[i];
        if (c->fd < 0)
            continue;
        if (!fd_is(c->fd, c->dev, c->ino)) {
            char what[256];
            failf("descriptors: the canary fd %d opened %s was closed "
                  "behind the test's back (now: %s): the library closed "
                  "that number a second time", c->fd, c->where,
                  fd_what(c->fd, what, sizeof(what)));
            continue;
        }
        close(c->fd);
    }
}

/* ---- peers: the test's side of each connection ------------------------------ */

enum role { R_OTHER, R_SUBJECT, R_SPARE, R_ASIDE, R_STRAY };
static const char *const role_names[] = { "other", "self", "spare",
                                          "kept-aside", "stray" };

struct peer {
    int fd;
    bool closed;           /* closed by the test (a reset on purpose) */
    dev_t dev;
    ino_t ino;
    uint16_t port;         /* our local port (client peers) */
    int role;
    bool server;           /* accepted from the test's raw listener */
    void *ssl;
    bool hs_done;
    bool read_paused;      /* read nothing: the library's output queues */
    char *out;
    size_t out_len, out_off, out_cap;
    bool want_fin, fin_sent;
    char *in;
    size_t in_len, in_cap;
    bool eof, truncated;   /* end of stream; TLS: without close_notify */
    int err;               /* errno of a failed read or write */
};

static void peer_in(struct peer *p, const char *b, size_t n)
{
    if (p->in_len + n > p->in_cap) {
        p->in_cap = (p->in_len + n) * 2;
        p->in = realloc(p->in, p->in_cap);
        if (!p->in)
            abort();
    }
    memcpy(p->in + p->in_len, b, n);
    p->in_len += n;
}

static void peer_send(struct peer *p, const void *data, size_t n)
{
    if (p->out_len + n > p->out_cap) {
        p->out_cap = (p->out_len + n) * 2;
        p->out = realloc(p->out, p->out_cap);
        if (!p->out)
            abort();
    }
    memcpy(p->out + p->out_len, data, n);
    p->out_len += n;
}

static bool peer_got(const struct peer *p, const char *mark)
{
    return p->in && memmem(p->in, p->in_len, mark, strlen(mark)) != NULL;
}

static void peer_fin(struct peer *p)
{
    if (p->fin_sent)
        return;
    p->fin_sent = true;
#ifdef NC_TEST_HAVE_TLS
    if (p->ssl && p->hs_done) {
        ERR_clear_error();
        SSL_shutdown(p->ssl);
    }
#endif
    shutdown(p->fd, SHUT_WR);
}

#ifdef NC_TEST_HAVE_TLS
static int tls_errno(SSL *ssl, int r, int saved_errno)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_SYSCALL && saved_errno != 0)
        return saved_errno;
    return EPROTO;
}

static void tls_step(struct peer *p)
{
    SSL *ssl = p->ssl;
    if (!p->hs_done) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_do_handshake(ssl);
        int saved = errno;
        if (r != 1) {
            int e = SSL_get_error(ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            p->err = tls_errno(ssl, r, saved);
            return;
        }
        p->hs_done = true;
    }
    while (p->out_off < p->out_len) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_write(ssl, p->out + p->out_off,
                          (int)(p->out_len - p->out_off));
        int saved = errno;
        if (r > 0) {
            p->out_off += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            break;
        p->err = tls_errno(ssl, r, saved);
        return;
    }
    if (p->out_off == p->out_len && p->want_fin)
        peer_fin(p);
    if (p->read_paused || p->eof)
        return;
    char buf[16384];
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(ssl, buf, sizeof(buf));
        int saved = errno;
        if (r > 0) {
            peer_in(p, buf, (size_t)r);
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            p->eof = true;
        } else if ((e == SSL_ERROR_SSL &&
                    ERR_GET_REASON(ERR_peek_error()) ==
                        SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
                   (e == SSL_ERROR_SYSCALL && saved == 0)) {
            p->eof = true;
            p->truncated = true;
        } else {
            p->err = tls_errno(ssl, r, saved);
        }
        if (p->eof)
            peer_fin(p);   /* answer the end with ours */
        break;
    }
}
#endif

static void peer_step(struct peer *p)
{
    if (p->closed || p->err)
        return;
#ifdef NC_TEST_HAVE_TLS
    if (p->ssl) {
        tls_step(p);
        return;
    }
#endif
    while (p->out_off < p->out_len) {
        ssize_t n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        p->err = n < 0 ? errno : EIO;
        return;
    }
    if (p->out_off == p->out_len && p->want_fin)
        peer_fin(p);
    if (p->read_paused || p->eof)
        return;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            peer_in(p, buf, (size_t)n);
            continue;
        }
        if (n == 0) {
            p->eof = true;
            peer_fin(p);   /* answer the end with ours */
            break;
        }
        if (errno != EAGAIN && errno != EINTR)
            p->err = errno;
        break;
    }
}

static void peer_free(struct peer *p)
{
#ifdef NC_TEST_HAVE_TLS
    if (p->ssl)
        SSL_free(p->ssl);
#endif
    if (!p->closed)
        close(p->fd);
    free(p->in);
    free(p->out);
    free(p);
}

/* ---- one case ---------------------------------------------------------------- */

enum state {
    ST_CONNECTING, ST_OPEN, ST_END_CALL, ST_PEER_ENDED, ST_CLOSING,
    ST_CLOSING_RESET, ST_IN_CLOSE, ST_IN_FREE, ST_GONE
};
static const char *const state_names[] = {
    "connecting", "open", "in its end call",
    "open, its peer's end pending (still flushing)", "closing",
    "closing after a reset", "inside its on_close",
    "open while nc_loop_free runs", "gone (its on_close returned)",
};

#define KASE_MAGIC 0x4b415345u
#define REC_MAGIC 0x52454321u

struct kase;

/* One connection of the library, as the test sees it. */
struct rec {
    unsigned magic;
    struct kase *k;
    int role;
    nc_conn *c;
    bool outgoing;
    struct peer *peer;
    int opens, closes;
    bool in_close, in_end_call;
    nc_close_reason reason;
    int err;
    int fd;                 /* its socket, as of on_open */
    dev_t dev;
    ino_t ino;
    bool we_closed;         /* we called nc_conn_close or nc_conn_abort */
    bool paused;            /* we called nc_conn_read_stop */
    bool lib_closing;       /* its output was dropped: it is closing */
    bool peer_ended;        /* its peer sent its end, maybe unread yet */
    unsigned data_calls, eof_calls, drain_calls;
    char *in;               /* what on_data consumed */
    size_t in_len, in_cap;
};

struct owned {
    struct kase *k;
    char *buf;
    size_t len;
    int frees;
    bool accepted;          /* nc_conn_write_owned returned 0 */
    bool site;              /* the case's own buffer (FREE_* sites) */
    bool in_call;           /* inside nc_conn_write_owned right now */
};

struct kase {
    unsigned magic;
    const struct case_def *cd;
    nc_loop *loop;
    bool loop_freed, in_free;
    nc_listener *l;
    nc_addr laddr;
    nc_timer *t1, *t2;
    nc_signal *sig;
    int raw_lfd;            /* the test's listener for outgoing connects */
    int blocker_fd;         /* holds a port nobody listens on */
    struct peer *raw_peer;  /* what it accepted */
    struct peer *peers[MAX_PEERS];
    int npeers;
    struct rec *recs[MAX_RECS];
    int nrecs;
    struct rec *S, *O, *X;
    unsigned unopened_closes;
    bool closing_all;       /* the trigger closes both S and O */
    bool l_gone;            /* the trigger closed the listener */
    bool fired;             /* the site ran the call */
    const char *fired_where;
    /* what the call did */
    struct rec *tgt;
    enum state tgt_state, s_at, o_at;   /* target's, self's, other's */
    int ret;
    bool applied;
    /* waits */
    bool (*cond)(struct kase *);
};

static struct kase *K;

/* Owned buffers handed to nc_conn_write_owned, by the case or the call. */
static struct owned owned[MAX_OWNED];
static int nowned;

static char blob[BLOB_LEN];   /* what fills an output queue */

static struct peer *peer_of(struct kase *k, const struct rec *r)
{
    if (!r)
        return NULL;
    return r->outgoing ? k->raw_peer : r->peer;
}

static void add_peer(struct kase *k, struct peer *p)
{
    if (k->npeers == MAX_PEERS)
        abort();
    k->peers[k->npeers++] = p;
}

static void pump(struct kase *k)
{
    if (k->raw_lfd >= 0 && !k->raw_peer) {
        int fd = accept4(k->raw_lfd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            struct peer *p = calloc(1, sizeof(*p));
            struct stat st;
            if (!p || fstat(fd, &st) < 0)
                abort();
            p->fd = fd;
            p->dev = st.st_dev;
            p->ino = st.st_ino;
            p->role = R_SUBJECT;
            p->server = true;
            p->hs_done = true;
#ifdef NC_TEST_HAVE_TLS
            if (k->cd->tls) {
                SSL *ssl = SSL_new(peer_sctx);
                if (!ssl)
                    abort();
                SSL_set_fd(ssl, fd);
                SSL_set_accept_state(ssl);
                p->ssl = ssl;
                p->hs_done = false;
            }
#endif
            k->raw_peer = p;
            add_peer(k, p);
        }
    }
    for (int i = 0; i < k->npeers; i++)
        peer_step(k->peers[i]);
}

/* A client of the listener, connected (the kernel completes it even when
 * the listener does not accept), non-blocking. small: a small receive
 * buffer, and nothing read until the test says so. */
static struct peer *new_peer(struct kase *k, int role, bool small)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        failf("socket: %s", strerror(errno));
        return NULL;
    }
    if (small) {
        int v = SMALL_BUF;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    }
    if (connect(fd, &k->laddr.u.sa, k->laddr.len) < 0) {
        failf("the test's %s peer cannot connect to the listener: %s",
              role_names[role], strerror(errno));
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct peer *p = calloc(1, sizeof(*p));
    struct stat st;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    if (!p || fstat(fd, &st) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
        abort();
    p->fd = fd;
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->port = ntohs(sin.sin_port);
    p->role = role;
    p->read_paused = small;
    p->hs_done = true;
#ifdef NC_TEST_HAVE_TLS
    if (k->cd->tls) {
        SSL *ssl = SSL_new(peer_cctx);
        if (!ssl)
            abort();
        SSL_set_fd(ssl, fd);
        SSL_set_connect_state(ssl);
        p->ssl = ssl;
        p->hs_done = false;
    }
#endif
    add_peer(k, p);
    return p;
}

/* Reset: SO_LINGER 0, then close. */
static void peer_reset(struct peer *p)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(p->fd);
    p->closed = true;
}

/* ---- waiting ----------------------------------------------------------------- */

static bool step_pred(void *arg)
{
    struct kase *k = arg;
    pump(k);
    return k->cond(k);
}

static bool wait_raw(struct kase *k, bool (*cond)(struct kase *),
                     unsigned ms)
{
    k->cond = cond;
    bool ok = run_until(k->loop, step_pred, k, ms);
    k->cond = NULL;
    return ok;
}

static bool wait_for(struct kase *k, bool (*cond)(struct kase *),
                     const char *what)
{
    if (wait_raw(k, cond, wait_ms()))
        return true;
    failf("timed out (%u ms) waiting for %s", wait_ms(), what);
    return false;
}

static bool c_never(struct kase *k)
{
    (void)k;
    return false;
}

static bool c_fired(struct kase *k)
{
    return k->fired;
}

static bool c_S_peer_ended(struct kase *k)
{
    const struct peer *p = peer_of(k, k->S);
    return !p || p->eof || p->err;
}

static bool c_fired_or_S_closed(struct kase *k)
{
    return k->fired || k->S->closes;
}

static bool rec_ready(struct kase *k, const struct rec *r)
{
    const struct peer *p = peer_of(k, r);
    return r && r->opens && p && p->hs_done;
}

static bool c_O_open(struct kase *k)
{
    return rec_ready(k, k->O);
}

static bool c_S_open(struct kase *k)
{
    return rec_ready(k, k->S);
}

static bool c_X_open(struct kase *k)
{
    return rec_ready(k, k->X);
}

static bool c_S_paused(struct kase *k)
{
    return k->S->data_calls >= 1 && k->S->paused;
}

static bool c_S_data(struct kase *k)
{
    return k->S->data_calls >= 1;
}

/* Every open connection has sent what it queued (the peers read). */
static bool c_flushed(struct kase *k)
{
    for (int i = 0; i < k->nrecs; i++) {
        const struct rec *r = k->recs[i];
        if (r->opens && !r->closes && !r->in_close &&
            nc_conn_queued(r->c) > 0)
            return false;
    }
    return true;
}

/* Nothing should happen now: the loop must sleep, not spin. */
static void idle_window(struct kase *k, const char *what)
{
    nc_loop_stats a, b;
    if (nc_loop_stats_get(k->loop, &a) < 0)
        return;
    wait_raw(k, c_never, idle_ms());
    if (nc_loop_stats_get(k->loop, &b) < 0)
        return;
    unsigned long long n = (unsigned long long)(b.iterations - a.iterations);
    char tr[160];
    snprintf(tr, sizeof(tr), "idle window: %llu iterations (%s)", n, what);
    trace(tr);
    if (n > IDLE_MAX)
        failf("busy loop: %llu loop iterations in %u ms with nothing to "
              "do (%s)", n, idle_ms(), what);
}

/* ---- the library's connections ------------------------------------------------- */

static struct rec *new_rec(struct kase *k, int role)
{
    if (k->nrecs == MAX_RECS)
        abort();
    struct rec *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->magic = REC_MAGIC;
    r->k = k;
    r->role = role;
    r->fd = -1;
    k->recs[k->nrecs++] = r;
    return r;
}

static const char *who(const struct rec *r)
{
    return role_names[r->role];
}

static bool is_kase(const void *ud)
{
    return ud && *(const unsigned *)ud == KASE_MAGIC;
}

static enum state conn_state(const struct kase *k, const struct rec *r)
{
    if (r->in_close)
        return ST_IN_CLOSE;
    if (r->closes)
        return ST_GONE;
    if (r->we_closed)
        return ST_CLOSING;
    if (r->lib_closing)
        return k->cd->site == SITE_FREE_RESET ? ST_CLOSING_RESET
                                              : ST_CLOSING;
    if (!r->opens)
        return ST_CONNECTING;
    if (k->in_free)
        return ST_IN_FREE;
    if (r->in_end_call)
        return ST_END_CALL;
    if (r->eof_calls)
        return ST_CLOSING;
    if (r->peer_ended)
        return ST_PEER_ENDED;
    return ST_OPEN;
}

static void act(struct kase *k, const char *where);

static void owned_free(void *data, void *arg)
{
    struct owned *o = arg;
    struct kase *k = o->k;
    o->frees++;
    if (o->frees > 1) {
        failf("free_fn called %d times for one owned buffer", o->frees);
        return;
    }
    if (data != o->buf)
        failf("free_fn got %p, not the buffer written (%p)", data,
              (void *)o->buf);
    free(o->buf);
    if (!o->site || !k || k->fired)
        return;
    struct rec *S = k->S;
    if (o->in_call)
        notef("free_fn ran inside nc_conn_write_owned (nothing was left "
              "queued): the call ran from there, on an open connection");
    else if (k->cd->site != SITE_FREE_SENT && S && !S->we_closed)
        S->lib_closing = true;
    if (S && S->closes && !S->in_close)
        notef("free_fn ran after the connection's on_close returned");
    act(k, "free_fn");
}

static struct owned *new_owned(struct kase *k, const void *data, size_t len,
                               bool site)
{
    if (nowned == MAX_OWNED)
        abort();
    struct owned *o = &owned[nowned++];
    o->k = k;
    o->buf = malloc(len);
    if (!o->buf)
        abort();
    memcpy(o->buf, data, len);
    o->len = len;
    o->site = site;
    return o;
}

static int write_owned(struct rec *r, struct owned *o)
{
    o->in_call = true;
    int rc = nc_conn_write_owned(r->c, o->buf, o->len, owned_free, o);
    o->in_call = false;
    if (rc == 0) {
        o->accepted = true;
    } else if (o->frees) {
        failf("free_fn ran although nc_conn_write_owned failed (%s): the "
              "caller keeps ownership on error", nc_errname(rc));
    } else {
        free(o->buf);
    }
    return rc;
}

/* Make call on connection r; the return value (0 for the void calls). */
static int conn_call(struct kase *k, struct rec *r, int call)
{
    nc_conn *c = r->c;
    switch (call) {
    case C_CLOSE:
        r->we_closed = true;
        nc_conn_close(c);
        return 0;
    case C_ABORT:
        r->we_closed = true;
        nc_conn_abort(c);
        return 0;
    case C_SHUTDOWN:
        return nc_conn_shutdown(c);
    case C_READ_STOP:
        r->paused = true;
        nc_conn_read_stop(c);
        return 0;
    case C_READ_START:
        r->paused = false;
        nc_conn_read_start(c);
        return 0;
    case C_WRITE:
        return nc_conn_write(c, MARK_WRITE, strlen(MARK_WRITE));
    case C_WRITEV: {
        struct iovec iov[2] = {
            { .iov_base = (void *)MARK_WRITEV_A,
              .iov_len = strlen(MARK_WRITEV_A) },
            { .iov_base = (void *)MARK_WRITEV_B,
              .iov_len = strlen(MARK_WRITEV_B) },
        };
        return nc_conn_writev(c, iov, 2);
    }
    case C_WRITE_OWNED:
        return write_owned(r, new_owned(k, MARK_OWNED, strlen(MARK_OWNED),
                                        false));
    default:
        abort();
    }
}

static bool is_write(int call)
{
    return call == C_WRITE || call == C_WRITEV || call == C_WRITE_OWNED;
}

/* Whether ret is what the header documents for call in state st. */
static bool ret_ok(int call, enum state st, int ret, char *want, size_t wl)
{
    int ok[4], n = 0;
    if (is_write(call)) {
        switch (st) {
        case ST_OPEN:
        case ST_END_CALL:
            ok[n++] = 0;
            break;
        case ST_CLOSING_RESET:
            ok[n++] = -ENOTCONN;
            ok[n++] = -EPIPE;
            ok[n++] = -ECONNRESET;
            break;
        case ST_IN_FREE:
        case ST_PEER_ENDED:
            ok[n++] = 0;
            ok[n++] = -ENOTCONN;
            break;
        default:
            ok[n++] = -ENOTCONN;
        }
    } else if (call == C_SHUTDOWN) {
        switch (st) {
        case ST_OPEN:
            ok[n++] = 0;
            break;
        case ST_END_CALL:
        case ST_IN_FREE:
        case ST_PEER_ENDED:
            ok[n++] = 0;
            ok[n++] = -ENOTCONN;
            break;
        default:
            ok[n++] = -ENOTCONN;
        }
    } else {
        return true;
    }
    size_t used = 0;
    want[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (ok[i] == ret)
            return true;
        used += (size_t)snprintf(want + used, wl - used, "%s%s",
                                 i ? " or " : "",
                                 ok[i] ? nc_errname(ok[i]) : "0");
        if (used >= wl)
            break;
    }
    return false;
}

/* The call of the case, made from where. */
static void act(struct kase *k, const char *where)
{
    if (k->fired)
        return;
    k->fired = true;
    k->fired_where = where;
    const struct case_def *cd = k->cd;
    k->s_at = k->S ? conn_state(k, k->S) : ST_GONE;
    k->o_at = k->O ? conn_state(k, k->O) : ST_GONE;
    switch (cd->target) {
    case T_SELF:
    case T_OTHER: {
        struct rec *r = cd->target == T_SELF ? k->S : k->O;
        if (!r) {
            failf("%s: no %s connection to call %s on", where,
                  target_names[cd->target], call_names[cd->call]);
            return;
        }
        k->tgt = r;
        k->tgt_state = conn_state(k, r);
        if (k->tgt_state == ST_GONE) {
            notef("%s: the %s connection's on_close had already returned: "
                  "%s not made", where, target_names[cd->target],
                  call_names[cd->call]);
            return;
        }
        k->ret = conn_call(k, r, cd->call);
        k->applied = true;
        char want[96];
        if (!ret_ok(cd->call, k->tgt_state, k->ret, want, sizeof(want)))
            failf("%s returned %s on a connection %s, from %s; the header "
                  "says %s", call_names[cd->call],
                  k->ret ? nc_errname(k->ret) : "0",
                  state_names[k->tgt_state], where, want);
        break;
    }
    case T_LISTENER:
        if (!k->l && k->l_gone) {
            notef("%s: the listener was closed by the case's trigger: %s "
                  "not made", where, call_names[cd->call]);
            return;
        }
        if (!k->l) {
            failf("%s: no listener", where);
            return;
        }
        if (cd->call == C_LISTENER_STOP) {
            nc_listener_stop(k->l);
        } else {
            nc_listener_close(k->l);
            k->l = NULL;   /* freed at the end of the iteration */
        }
        k->applied = true;
        break;
    case T_LOOP:
        if (cd->call == C_LOOP_STOP) {
            nc_loop_stop(k->loop);
        } else {
            k->ret = nc_loop_shutdown(k->loop, 1000);
            if (k->ret != 0)
                failf("nc_loop_shutdown from %s returned %s, not 0", where,
                      nc_errname(k->ret));
        }
        k->applied = true;
        break;
    case T_TIMER:
    case T_OWN_TIMER: {
        nc_timer **tp = cd->target == T_TIMER ? &k->t2 : &k->t1;
        if (!*tp) {
            failf("%s: no timer", where);
            return;
        }
        if (cd->call == C_TIMER_STOP) {
            nc_timer_stop(*tp);
            if (nc_timer_active(*tp))
                failf("nc_timer_stop from %s: the timer is still active",
                      where);
        } else {
            nc_timer_free(*tp);
            *tp = NULL;
        }
        k->applied = true;
        break;
    }
    default:
        abort();
    }
    canary("right after %s(%s) from %s", call_names[cd->call],
           target_names[cd->target], where);
}

/* ---- the callbacks ----------------------------------------------------------- */

static bool site_small(int site)
{
    return site == SITE_DATA_BACKPRESSURE || site == SITE_DRAIN ||
           site == SITE_DRAIN_FIN ||
           site == SITE_FREE_SENT || site == SITE_FREE_ABORT ||
           site == SITE_FREE_RESET || site == SITE_FREE_IN_FREE;
}

static void cb_open(nc_conn *c, void *ud)
{
    struct kase *k = K;
    struct rec *r;
    if (is_kase(ud)) {
        /* Accepted: the test's peer is the one with that port. */
        struct peer *p = NULL;
        nc_addr a;
        if (nc_conn_peer_addr(c, &a) == 0) {
            uint16_t port = nc_addr_port(&a);
            for (int i = 0; i < k->npeers; i++)
                if (!k->peers[i]->server && k->peers[i]->port == port)
                    p = k->peers[i];
        }
        int role = p ? p->role : R_STRAY;
        if (!p)
            failf("on_open for an accepted connection the test did not "
                  "make");
        if (role == R_ASIDE && k->cd->site == SITE_OPEN_RESUMED && !k->S) {
            role = R_SUBJECT;
            p->role = R_SUBJECT;
        }
        r = new_rec(k, role);
        r->peer = p;
        r->c = c;
        nc_conn_set_data(c, r);
        if (role == R_SUBJECT && !k->S)
            k->S = r;
        else if (role == R_OTHER && !k->O)
            k->O = r;
        else if (role == R_SPARE && !k->X)
            k->X = r;
    } else {
        r = ud;
        if (r->closes)
            failf("%s: on_open after its on_close", who(r));
    }
    r->opens++;
    if (r->opens > 1)
        failf("%s: on_open called %d times", who(r), r->opens);
    r->fd = nc_conn_fd(c);
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) < 0) {
        failf("%s: in on_open nc_conn_fd() is %d, not an open socket",
              who(r), r->fd);
    } else {
        r->dev = st.st_dev;
        r->ino = st.st_ino;
    }
    if (r->role == R_SUBJECT && site_small(k->cd->site)) {
        int v = SMALL_BUF;
        setsockopt(r->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    }
    int site = k->cd->site;
    if (r == k->S && (site == SITE_OPEN_ACCEPTED ||
                      site == SITE_OPEN_OUTGOING ||
                      site == SITE_OPEN_RESUMED))
        act(k, "on_open");
}

static void rec_consumed(struct rec *r, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (r->in_len + n > r->in_cap) {
        r->in_cap = (r->in_len + n) * 2 + 64;
        r->in = realloc(r->in, r->in_cap);
        if (!r->in)
            abort();
    }
    memcpy(r->in + r->in_len, data, n);
    r->in_len += n;
}

static void expect_hello(const struct rec *r, const void *data, size_t len,
                         const char *which)
{
    if (len != 5 || memcmp(data, "hello", 5) != 0)
        failf("%s: %s carries %zu bytes, not the 5 left unconsumed "
              "(\"hello\")", who(r), which, len);
}

static size_t cb_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct kase *k = K;
    if (is_kase(ud)) {
        failf("on_data before on_open (the user pointer is still the "
              "listener's)");
        return len;
    }
    struct rec *r = ud;
    if (r->closes)
        failf("%s: on_data after its on_close", who(r));
    if (r->we_closed)
        failf("%s: on_data after we called nc_conn_close/abort on it",
              who(r));
    if (r->paused)
        failf("%s: on_data while its reading is paused "
              "(nc_conn_read_stop)", who(r));
    bool eof = nc_conn_eof(c);
    if (len == 0 && !eof)
        failf("%s: on_data with len 0 and nc_conn_eof() false", who(r));
    r->data_calls++;
    if (eof && ++r->eof_calls > 1)
        failf("%s: %u end calls (nc_conn_eof() true)", who(r),
              r->eof_calls);
    /* What this call leaves, and whether it makes the case's call. */
    size_t take = len;
    const char *fire = NULL;
    if (r == k->S && !k->fired) {
        switch (k->cd->site) {
        case SITE_DATA_FRESH:
            fire = "on_data";
            break;
        case SITE_DATA_RESUMED:
            if (r->data_calls == 1) {
                r->paused = true;
                nc_conn_read_stop(c);
                take = 0;
            } else {
                expect_hello(r, data, len, "the redelivered on_data");
                fire = "on_data (redelivered)";
            }
            break;
        case SITE_DATA_BACKPRESSURE:
            if (r->data_calls == 1) {
                int rc = nc_conn_write(c, blob, BLOB_LEN);
                if (rc < 0)
                    failf("arrangement: nc_conn_write of %u bytes from "
                          "on_data: %s", BLOB_LEN, nc_errname(rc));
                take = 0;
            } else {
                if (nc_conn_queued(c) > HIGH_WATER)
                    failf("on_data redelivered while %zu bytes are "
                          "queued, above high_water (reading should be "
                          "paused)", nc_conn_queued(c));
                expect_hello(r, data, len, "the redelivered on_data");
                fire = "on_data (redelivered)";
            }
            break;
        case SITE_DRAIN_FIN:
            if (r->data_calls == 1) {
                int rc = nc_conn_write(c, blob, BLOB_LEN);
                if (rc < 0)
                    failf("arrangement: nc_conn_write of %u bytes from "
                          "on_data: %s", BLOB_LEN, nc_errname(rc));
            }
            break;
        case SITE_DATA_END:
            if (!eof) {
                take = 0;
            } else {
                expect_hello(r, data, len, "the end call");
                fire = "on_data (end call)";
            }
            break;
        default:
            break;
        }
    }
    rec_consumed(r, data, take);
    if (fire) {
        r->in_end_call = eof;
        act(k, fire);
        r->in_end_call = false;
        /* "data is valid only during the call": still valid after the
         * call the case made from it. Asked of ASan without touching
         * the bytes, so that what the library itself does next with
         * them still shows. */
#if UNDER_ASAN
        if (len && __asan_region_is_poisoned((void *)data, len)) {
            failf("%s's data was freed during the call, by %s(%s): the "
                  "header says it is valid until on_data returns", fire,
                  call_names[k->cd->call], target_names[k->cd->target]);
            __asan_describe_address((void *)data);   /* who freed it */
        }
#endif
    }
    return take;
}

static void cb_drain(nc_conn *c, void *ud)
{
    (void)c;
    struct kase *k = K;
    if (is_kase(ud)) {
        failf("on_drain before on_open");
        return;
    }
    struct rec *r = ud;
    if (r->closes)
        failf("%s: on_drain after its on_close", who(r));
    if (r->we_closed)
        failf("%s: on_drain after we called nc_conn_close/abort on it",
              who(r));
    r->drain_calls++;
    if (r == k->S && (k->cd->site == SITE_DRAIN ||
                      k->cd->site == SITE_DRAIN_FIN))
        act(k, "on_drain");
}

static void cb_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct kase *k = K;
    if (is_kase(ud)) {
        k->unopened_closes++;
        if (!k->cd->tls)
            failf("on_close (%s, %s) for an accepted connection whose "
                  "on_open never ran", nc_close_reason_name(reason),
                  nc_errname(err));
        if (k->cd->site == SITE_CLOSE_HANDSHAKE && !k->fired) {
            struct rec *r = new_rec(k, R_SUBJECT);
            r->c = c;
            r->closes = 1;
            r->reason = reason;
            r->err = err;
            r->in_close = true;
            k->S = r;
            if (reason != NC_CLOSE_TLS)
                failf("the failed handshake closed with %s (%s), not %s",
                      nc_close_reason_name(reason), nc_errname(err),
                      nc_close_reason_name(NC_CLOSE_TLS));
            act(k, "on_close (handshake failed)");
            r->in_close = false;
            r->c = NULL;
        }
        canary("after on_close of a connection that never opened");
        return;
    }
    struct rec *r = ud;
    r->closes++;
    if (r->closes > 1)
        failf("%s: on_close called %d times", who(r), r->closes);
    r->reason = reason;
    r->err = err;
    if (nc_conn_fd(c) != -1)
        failf("%s: nc_conn_fd() is %d inside on_close, not -1", who(r),
              nc_conn_fd(c));
    r->in_close = true;
    if (!k->fired) {
        if ((k->cd->site == SITE_CLOSE ||
             k->cd->site == SITE_CLOSE_CONNECT_FAILED) && r == k->S) {
            act(k, "on_close");
        } else if (k->closing_all && (r == k->S || r == k->O)) {
            if (r == k->O) {   /* the first to close is "self" */
                k->O = k->S;
                k->S = r;
            }
            act(k, "on_close");
        }
    }
    r->in_close = false;
    r->c = NULL;
    canary("after on_close of %s (its fd was %d)", who(r), r->fd);
}

static const nc_conn_callbacks cbs = {
    .on_open = cb_open,
    .on_data = cb_data,
    .on_drain = cb_drain,
    .on_close = cb_close,
};

static void t1_fired(nc_timer *t, void *ud)
{
    (void)t;
    act(ud, "the timer callback");
}

static void t2_fired(nc_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    failf("the test's 60 s timer fired");
}

static void deferred(void *arg)
{
    act(arg, "a deferred call");
}

static void posted(void *arg)
{
    struct kase *k = arg;
    act(k, k->in_free ? "a posted call (run by nc_loop_free)"
                      : "a posted call");
}

static void signalled(nc_signal *s, int signum, void *ud)
{
    (void)s;
    (void)signum;
    act(ud, "the signal callback");
}

/* ---- what the call must have done ---------------------------------------------- */

static bool c_tgt_closed_peer_ended(struct kase *k)
{
    const struct peer *p = peer_of(k, k->tgt);
    return k->tgt->closes && (!p || p->closed || p->eof || p->err);
}

static bool c_tgt_peer_ended(struct kase *k)
{
    const struct peer *p = peer_of(k, k->tgt);
    return !p || p->closed || p->eof || p->err;
}

static bool c_tgt_closed(struct kase *k)
{
    return k->tgt->closes > 0;
}

static const char *mark_of(int call)
{
    return call == C_WRITE ? MARK_WRITE
           : call == C_WRITEV ? MARK_WRITEV : MARK_OWNED;
}

static bool c_tgt_peer_got_mark(struct kase *k)
{
    const struct peer *p = peer_of(k, k->tgt);
    return !p || p->closed || p->err || peer_got(p, mark_of(k->cd->call));
}

static bool c_all_closed(struct kase *k)
{
    for (int i = 0; i < k->nrecs; i++)
        if ((k->recs[i]->opens || k->recs[i]->outgoing) &&
            !k->recs[i]->closes)
            return false;
    return true;
}

static bool c_listener_close_done(struct kase *k)
{
    if (k->o_at == ST_OPEN && !k->O->closes)
        return false;
    if (k->S && !k->S->outgoing &&
        (k->s_at == ST_OPEN || k->s_at == ST_PEER_ENDED) && !k->S->closes)
        return false;
    for (int i = 0; i < k->npeers; i++) {
        const struct peer *p = k->peers[i];
        if (p->role == R_ASIDE && !p->closed && !p->eof && !p->err)
            return false;
    }
    return true;
}

static int try_connect(const nc_addr *a)
{
    int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, &a->u.sa, a->len) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void expect_refused(struct kase *k, const char *after)
{
    int rc = try_connect(&k->laddr);
    if (rc != -ECONNREFUSED)
        failf("after %s a connect to the listener's address gives %s, "
              "not ECONNREFUSED", after, rc ? nc_errname(rc) : "success");
}

static void expect_reason(const struct rec *r, nc_close_reason want,
                          nc_close_reason or_this, const char *after)
{
    if (r->reason != want && r->reason != or_this)
        failf("%s: closed with %s (%s) after %s, not %s", who(r),
              nc_close_reason_name(r->reason), nc_errname(r->err), after,
              nc_close_reason_name(want));
}

static void verify_conn_call(struct kase *k)
{
    const struct case_def *cd = k->cd;
    struct rec *t = k->tgt;
    struct peer *p = peer_of(k, t);
    const char *call = call_names[cd->call];
    bool ended = k->tgt_state == ST_END_CALL ||
                 k->tgt_state == ST_PEER_ENDED;
    bool live = k->tgt_state == ST_OPEN || ended;
    /* once the peer's end is in, the close may be reported as its */
    nc_close_reason alt = ended ? NC_CLOSE_PEER : NC_CLOSE_LOCAL;
    if (!live)
        return;
    switch (cd->call) {
    case C_CLOSE:
        if (!wait_for(k, c_tgt_closed_peer_ended,
                      "on_close after nc_conn_close, and the peer's end"))
            return;
        expect_reason(t, NC_CLOSE_LOCAL, alt, call);
        if (p && !p->closed && (p->err || !p->eof))
            failf("after nc_conn_close the %s peer got %s, not an orderly "
                  "end", who(t), p->err ? strerror(p->err) : "nothing");
        else if (p && p->truncated)
            failf("after nc_conn_close the %s TLS peer saw the end "
                  "without close_notify", who(t));
        break;
    case C_ABORT:
        if (!wait_for(k, c_tgt_closed_peer_ended,
                      "on_close after nc_conn_abort, and the peer's reset"))
            return;
        expect_reason(t, NC_CLOSE_LOCAL, alt, call);
        if (k->tgt_state == ST_OPEN && p && !p->closed &&
            p->err != ECONNRESET)
            failf("after nc_conn_abort the %s peer got %s, not a reset",
                  who(t), p->err ? strerror(p->err)
                          : p->eof ? "an orderly end" : "nothing");
        break;
    case C_SHUTDOWN:
        if (k->ret != 0)
            return;
        if (!wait_for(k, c_tgt_peer_ended,
                      "the peer to read the end after nc_conn_shutdown"))
            return;
        if (p && !p->closed && (p->err || p->truncated))
            failf("after nc_conn_shutdown the %s peer got %s", who(t),
                  p->err ? strerror(p->err)
                         : "an end without close_notify");
        if (k->tgt_state == ST_OPEN || k->tgt_state == ST_PEER_ENDED) {
            /* the peer answered with its own end */
            if (!wait_for(k, c_tgt_closed, "on_close after both ends"))
                return;
            expect_reason(t, NC_CLOSE_PEER, NC_CLOSE_PEER,
                          "nc_conn_shutdown and the peer's end");
        }
        break;
    case C_READ_STOP: {
        if ((k->tgt_state != ST_OPEN && k->tgt_state != ST_PEER_ENDED) ||
            !p || p->closed)
            return;
        /* Paused, then the peer sends bytes and its end: nothing may be
         * delivered, and the loop must not spin on the pending end. */
        unsigned data0 = t->data_calls;
        bool late = !p->fin_sent;
        if (late)
            peer_send(p, "late", 4);
        p->want_fin = true;
        idle_window(k, "reading paused, the peer sent bytes and its end");
        if (t->data_calls != data0)
            failf("%s: on_data while paused by nc_conn_read_stop",
                  who(t));
        if (t->closes) {
            failf("%s: closed (%s) while paused: the header says the "
                  "peer's end is not seen while reading is paused",
                  who(t), nc_close_reason_name(t->reason));
            return;
        }
        t->paused = false;
        nc_conn_read_start(t->c);
        if (!wait_for(k, c_tgt_closed,
                      "the peer's bytes and end after nc_conn_read_start"))
            return;
        if (late && (!t->in || !memmem(t->in, t->in_len, "late", 4)))
            failf("%s: the bytes sent while it was paused were never "
                  "delivered", who(t));
        expect_reason(t, NC_CLOSE_PEER, NC_CLOSE_PEER,
                      "the peer's end (after nc_conn_read_start)");
        break;
    }
    case C_WRITE:
    case C_WRITEV:
    case C_WRITE_OWNED:
        if (k->ret != 0)
            return;
        if (!wait_for(k, c_tgt_peer_got_mark,
                      "the peer to receive the bytes written"))
            return;
        if (p && !p->closed && !peer_got(p, mark_of(cd->call)))
            failf("the %s peer never received what %s queued (it got %s)",
                  who(t), call, p->err ? strerror(p->err) : "its end");
        break;
    default:
        break;
    }
}

static void verify(struct kase *k)
{
    const struct case_def *cd = k->cd;
    if (!k->applied)
        return;
    /* from now on every peer reads what comes, and what was queued
     * before the call is out of the way */
    for (int i = 0; i < k->npeers; i++)
        k->peers[i]->read_paused = false;
    if (!wait_for(k, c_flushed, "the queued output to be sent"))
        return;
    switch (cd->call) {
    case C_LISTENER_STOP:
        expect_refused(k, "nc_listener_stop");
        break;
    case C_LISTENER_CLOSE:
        if (!wait_for(k, c_listener_close_done,
                      "the listener's connections to close after "
                      "nc_listener_close"))
            return;
        if (k->o_at == ST_OPEN)
            expect_reason(k->O, NC_CLOSE_SHUTDOWN, NC_CLOSE_SHUTDOWN,
                          "nc_listener_close");
        if (k->S && !k->S->outgoing &&
            (k->s_at == ST_OPEN || k->s_at == ST_END_CALL ||
             k->s_at == ST_PEER_ENDED))
            expect_reason(k->S, NC_CLOSE_SHUTDOWN,
                          k->s_at == ST_OPEN ? NC_CLOSE_SHUTDOWN
                                             : NC_CLOSE_PEER,
                          "nc_listener_close");
        expect_refused(k, "nc_listener_close");
        break;
    case C_LOOP_SHUTDOWN:
        if (k->ret != 0)
            return;
        if (!wait_for(k, c_all_closed,
                      "every connection to close after nc_loop_shutdown"))
            return;
        if (k->o_at == ST_OPEN)
            expect_reason(k->O, NC_CLOSE_SHUTDOWN, NC_CLOSE_SHUTDOWN,
                          "nc_loop_shutdown");
        if (k->S && (k->s_at == ST_OPEN || k->s_at == ST_END_CALL ||
                     k->s_at == ST_PEER_ENDED))
            expect_reason(k->S, NC_CLOSE_SHUTDOWN,
                          k->s_at == ST_OPEN ? NC_CLOSE_SHUTDOWN
                                             : NC_CLOSE_PEER,
                          "nc_loop_shutdown");
        expect_refused(k, "nc_loop_shutdown");
        break;
    default:
        if (cd->call <= C_WRITE_OWNED)
            verify_conn_call(k);
        break;
    }
}

/* Live connections keep their sockets; the test's peers keep theirs.
 * settled: the loop has run idle since the call, so a connection whose
 * socket is closed has had its on_close. */
static void check_descriptors(struct kase *k, const char *when,
                              bool settled)
{
    for (int i = 0; i < k->nrecs; i++) {
        struct rec *r = k->recs[i];
        if (!r->opens || r->closes || r->fd < 0 || k->loop_freed)
            continue;
        int fd = nc_conn_fd(r->c);
        if (fd == -1 && !settled)
            continue;   /* closing: on_close comes at the iteration's end */
        if (fd == -1)
            failf("%s: nc_conn_fd() is -1 %s, but its on_close never ran",
                  who(r), when);
        else if (fd != r->fd)
            failf("descriptors: %s: nc_conn_fd() is %d %s, was %d at "
                  "on_open", who(r), fd, when, r->fd);
        else if (!fd_is(r->fd, r->dev, r->ino))
            failf("descriptors: %s's socket (fd %d) was closed or "
                  "replaced %s while the connection is open", who(r),
                  r->fd, when);
    }
    for (int i = 0; i < k->npeers; i++) {
        struct peer *p = k->peers[i];
        if (!p->closed && !fd_is(p->fd, p->dev, p->ino))
            failf("descriptors: the test's own %s peer socket (fd %d) "
                  "was closed or replaced %s: not the library's to close",
                  role_names[p->role], p->fd, when);
    }
}

/* ---- the sites ------------------------------------------------------------------ */

static bool subject(struct kase *k, bool small)
{
    return new_peer(k, R_SUBJECT, small) &&
           wait_for(k, c_S_open, "the connection to open");
}

static struct peer *S_peer(struct kase *k)
{
    return peer_of(k, k->S);
}

static void free_loop(struct kase *k)
{
    if (!k->loop || k->loop_freed)
        return;
    check_descriptors(k, "before nc_loop_free", false);
    k->in_free = true;
    nc_loop_free(k->loop);
    k->in_free = false;
    k->loop_freed = true;
    k->l = NULL;
    k->t1 = k->t2 = NULL;
    k->sig = NULL;
}

/* Queue the case's owned buffer on S, whose peer reads nothing yet. */
static struct owned *queue_owned(struct kase *k, bool must_stay)
{
    struct owned *o = new_owned(k, blob, BLOB_LEN, true);
    int rc = write_owned(k->S, o);
    if (rc < 0) {
        failf("arrangement: nc_conn_write_owned of %u bytes: %s", BLOB_LEN,
              nc_errname(rc));
        return NULL;
    }
    if (must_stay && !k->fired && nc_conn_queued(k->S->c) == 0)
        failf("arrangement: nothing stayed queued after "
              "nc_conn_write_owned of %u bytes", BLOB_LEN);
    return o;
}

static void in_free_ran(struct kase *k)
{
    if (!k->fired)
        failf("%s never ran", sites[k->cd->site].name);
}

static bool raw_listen(struct kase *k, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
        failf("the test's own listener: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    k->raw_lfd = fd;
    *port = ntohs(sin.sin_port);
    return true;
}

static void run_site(struct kase *k)
{
    const struct case_def *cd = k->cd;
    if (!new_peer(k, R_OTHER, false) ||
        !wait_for(k, c_O_open, "the other connection to open"))
        return;
    switch (cd->site) {
    case SITE_NONE:
        act(k, "the test, between iterations");
        break;
    case SITE_OPEN_ACCEPTED:
        if (new_peer(k, R_SUBJECT, false))
            wait_for(k, c_fired, "on_open");
        break;
    case SITE_OPEN_OUTGOING: {
        uint16_t port;
        if (!raw_listen(k, &port))
            return;
        struct rec *r = new_rec(k, R_SUBJECT);
        k->S = r;
        char ep[64];
        snprintf(ep, sizeof(ep), "127.0.0.1:%u", port);
        nc_connect_options co = { .conn = { .linger_ms = LINGER_MS },
                                  .tls = cd->tls ? lib_cctx : NULL };
        int rc = nc_connect(k->loop, ep, &co, &cbs, r, &r->c);
        if (rc < 0) {
            failf("nc_connect: %s", nc_errname(rc));
            return;
        }
        r->outgoing = true;
        wait_for(k, c_fired, "on_open of the outgoing connection");
        break;
    }
    case SITE_OPEN_RESUMED:
        /* max_conns 2, the other is open: a spare and two more connect at
         * once, so that one accept batch brings all three; the spare
         * opens, the listener is at its limit, and the two others are
         * kept aside on io_uring (they stay in the backlog with epoll).
         * The spare's end frees a slot, and the first of them opens. */
        if (!new_peer(k, R_SPARE, false) || !new_peer(k, R_ASIDE, false) ||
            !new_peer(k, R_ASIDE, false))
            return;
        if (!wait_for(k, c_X_open, "the spare connection to open"))
            return;
        wait_raw(k, c_never, idle_ms());   /* let anything else settle */
        if (k->S) {
            failf("a third connection opened with max_conns 2");
            return;
        }
        peer_of(k, k->X)->want_fin = true;
        wait_for(k, c_fired, "on_open of a connection accepted when the "
                             "spare's close freed a slot");
        break;
    case SITE_DATA_FRESH:
        if (!subject(k, false))
            return;
        peer_send(S_peer(k), "hello", 5);
        wait_for(k, c_fired, "on_data");
        break;
    case SITE_DATA_RESUMED:
        if (!subject(k, false))
            return;
        peer_send(S_peer(k), "hello", 5);
        if (!wait_for(k, c_S_paused, "on_data (which pauses reading)"))
            return;
        idle_window(k, "reading paused, with input left unconsumed");
        k->S->paused = false;
        nc_conn_read_start(k->S->c);
        wait_for(k, c_fired, "the unconsumed input, handed back after "
                             "nc_conn_read_start");
        break;
    case SITE_DATA_BACKPRESSURE:
        if (!subject(k, false))
            return;
        /* small buffers on both sides, and a peer that reads nothing:
         * on_data's answer stays queued above high_water */
        {
            int v = SMALL_BUF;
            setsockopt(k->S->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
            S_peer(k)->read_paused = true;
        }
        peer_send(S_peer(k), "hello", 5);
        if (!wait_for(k, c_S_data, "on_data"))
            return;
        if (nc_conn_queued(k->S->c) <= HIGH_WATER) {
            failf("arrangement: only %zu bytes queued, not above "
                  "high_water", nc_conn_queued(k->S->c));
            return;
        }
        idle_window(k, "reading paused by backpressure, with input left "
                       "unconsumed");
        S_peer(k)->read_paused = false;
        wait_for(k, c_fired, "the unconsumed input, handed back when the "
                             "queue drained");
        break;
    case SITE_DATA_END:
        if (!subject(k, false))
            return;
        peer_send(S_peer(k), "hello", 5);
        S_peer(k)->want_fin = true;
        wait_for(k, c_fired, "the end call");
        break;
    case SITE_DRAIN: {
        if (!subject(k, true))
            return;
        int rc = nc_conn_write(k->S->c, blob, BLOB_LEN);
        if (rc < 0) {
            failf("arrangement: nc_conn_write: %s", nc_errname(rc));
            return;
        }
        if (nc_conn_queued(k->S->c) <= HIGH_WATER) {
            failf("arrangement: only %zu bytes queued, not above "
                  "high_water", nc_conn_queued(k->S->c));
            return;
        }
        S_peer(k)->read_paused = false;
        wait_for(k, c_fired, "on_drain");
        break;
    }
    case SITE_DRAIN_FIN:
        /* the peer sends a request and its end, and reads nothing: the
         * answer (on_data writes 256 KiB) pauses reading with the end
         * still unread; the end must not make the loop spin, nor close
         * the connection before its queue is sent */
        if (!subject(k, true))
            return;
        peer_send(S_peer(k), "hello", 5);
        S_peer(k)->want_fin = true;
        k->S->peer_ended = true;
        if (!wait_for(k, c_S_data, "on_data"))
            return;
        if (nc_conn_queued(k->S->c) <= HIGH_WATER) {
            failf("arrangement: only %zu bytes queued, not above "
                  "high_water", nc_conn_queued(k->S->c));
            return;
        }
        idle_window(k, "reading paused by backpressure, the peer's end "
                       "pending");
        if (k->S->closes) {
            failf("self: closed (%s) with %zu bytes still queued for a "
                  "peer that reads", nc_close_reason_name(k->S->reason),
                  (size_t)BLOB_LEN);
            return;
        }
        S_peer(k)->read_paused = false;
        if (!wait_for(k, c_fired_or_S_closed, "on_drain"))
            return;
        if (!k->fired) {
            notef("on_drain never ran: the connection closed (%s, %s) once "
                  "its queue was sent, its peer's end having been read",
                  nc_close_reason_name(k->S->reason),
                  nc_errname(k->S->err));
            if (!wait_for(k, c_S_peer_ended, "the peer's end"))
                return;
            if (k->S->reason != NC_CLOSE_PEER)
                failf("self: closed with %s (%s) after the peer's end, not "
                      "%s", nc_close_reason_name(k->S->reason),
                      nc_errname(k->S->err),
                      nc_close_reason_name(NC_CLOSE_PEER));
            if (S_peer(k)->in_len < BLOB_LEN)
                failf("self: closed after the peer's end with %zu of the "
                      "%u bytes queued for it sent", S_peer(k)->in_len,
                      BLOB_LEN);
        }
        break;
    case SITE_CLOSE:
        if (!subject(k, false))
            return;
        S_peer(k)->want_fin = true;
        wait_for(k, c_fired, "on_close");
        break;
    case SITE_CLOSE_CONNECT_FAILED: {
        /* a port bound and not listening: the connect is refused */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = { .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sin);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
            failf("a port nobody listens on: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return;
        }
        k->blocker_fd = fd;
        struct rec *r = new_rec(k, R_SUBJECT);
        k->S = r;
        char ep[64];
        snprintf(ep, sizeof(ep), "127.0.0.1:%u", ntohs(sin.sin_port));
        nc_connect_options co = { .conn = { .linger_ms = LINGER_MS },
                                  .tls = cd->tls ? lib_cctx : NULL };
        int rc = nc_connect(k->loop, ep, &co, &cbs, r, &r->c);
        if (rc < 0) {
            failf("nc_connect: %s", nc_errname(rc));
            return;
        }
        r->outgoing = true;
        if (!wait_for(k, c_fired, "on_close of the refused connect"))
            return;
        if (r->opens || r->reason != NC_CLOSE_CONNECT_FAILED ||
            r->err != -ECONNREFUSED)
            failf("the refused connect ended with %s (%s)%s, not %s "
                  "(ECONNREFUSED)", nc_close_reason_name(r->reason),
                  nc_errname(r->err), r->opens ? " after on_open" : "",
                  nc_close_reason_name(NC_CLOSE_CONNECT_FAILED));
        break;
    }
    case SITE_CLOSE_HANDSHAKE: {
        /* plain text to the TLS port: the handshake fails */
        struct peer *p = new_peer(k, R_SUBJECT, false);
        if (!p)
            return;
#ifdef NC_TEST_HAVE_TLS
        SSL_free(p->ssl);
#endif
        p->ssl = NULL;
        p->hs_done = true;
        peer_send(p, "GET / HTTP/1.0\r\n\r\n", 18);
        wait_for(k, c_fired, "on_close of the failed handshake");
        break;
    }
    case SITE_CLOSE_IN_SHUTDOWN:
    case SITE_CLOSE_IN_LCLOSE: {
        if (!subject(k, false))
            return;
        /* both connections close now: the first on_close is "self" */
        k->closing_all = true;
        k->S->lib_closing = k->O->lib_closing = true;
        if (cd->site == SITE_CLOSE_IN_LCLOSE) {
            nc_listener_close(k->l);
            k->l = NULL;
            k->l_gone = true;
        } else {
            int rc = nc_loop_shutdown(k->loop, 1000);
            if (rc != 0) {
                failf("nc_loop_shutdown: %s", nc_errname(rc));
                return;
            }
        }
        wait_for(k, c_fired, "on_close");
        break;
    }
    case SITE_CLOSE_IN_FREE:
        if (!subject(k, false))
            return;
        k->closing_all = true;
        free_loop(k);
        in_free_ran(k);
        break;
    case SITE_FREE_SENT:
        if (!subject(k, true) || !queue_owned(k, false))
            return;
        S_peer(k)->read_paused = false;
        wait_for(k, c_fired, "free_fn");
        break;
    /* With TLS the owned buffer may be taken (encrypted) and freed at
     * once, inside nc_conn_write_owned: the call was made from there, and
     * there is nothing left to drop. */
    case SITE_FREE_ABORT:
        if (!subject(k, true) || !queue_owned(k, true) || k->fired)
            return;
        k->S->we_closed = true;
        nc_conn_abort(k->S->c);
        wait_for(k, c_fired, "free_fn");
        break;
    case SITE_FREE_RESET:
        if (!subject(k, true) || !queue_owned(k, true) || k->fired)
            return;
        peer_reset(S_peer(k));
        wait_for(k, c_fired, "free_fn");
        break;
    case SITE_FREE_IN_FREE:
        if (!subject(k, true) || !queue_owned(k, true) || k->fired)
            return;
        free_loop(k);
        in_free_ran(k);
        break;
    case SITE_TIMER: {
        int rc = nc_timer_new(k->loop, t1_fired, k, &k->t1);
        if (rc == 0)
            rc = nc_timer_start(k->t1, 1, 1000);
        if (rc < 0) {
            failf("nc_timer_new/start: %s", nc_errname(rc));
            return;
        }
        wait_for(k, c_fired, "the timer callback");
        break;
    }
    case SITE_DEFER: {
        int rc = nc_loop_defer(k->loop, deferred, k);
        if (rc < 0) {
            failf("nc_loop_defer: %s", nc_errname(rc));
            return;
        }
        wait_for(k, c_fired, "the deferred call");
        break;
    }
    case SITE_POST:
    case SITE_POST_IN_FREE: {
        int rc = nc_loop_post(k->loop, posted, k);
        if (rc < 0) {
            failf("nc_loop_post: %s", nc_errname(rc));
            return;
        }
        if (cd->site == SITE_POST) {
            wait_for(k, c_fired, "the posted call");
        } else {
            free_loop(k);
            in_free_ran(k);
        }
        break;
    }
    case SITE_SIGNAL:
        raise(SIGUSR1);
        wait_for(k, c_fired, "the signal callback");
        break;
    default:
        abort();
    }
}

static bool setup(struct kase *k)
{
    const struct case_def *cd = k->cd;
    nc_loop_options lo = { .backend = cd->backend };
    int rc = nc_loop_new_with(&k->loop, &lo);
    if (rc < 0) {
        k->loop = NULL;
        failf("nc_loop_new_with(%s): %s", nc_backend_name(cd->backend),
              nc_errname(rc));
        return false;
    }
    if (nc_timer_new(k->loop, t2_fired, k, &k->t2) < 0 ||
        nc_timer_start(k->t2, 60000, 0) < 0) {
        failf("nc_timer_new/start failed");
        return false;
    }
    char why[256] = "";
    nc_listener_options o = { .tls = cd->tls ? lib_sctx : NULL,
                              .errbuf = why, .errbuf_len = sizeof(why) };
    o.conn.linger_ms = LINGER_MS;
    if (cd->site == SITE_DATA_END)
        o.conn.keep_half_open = true;
    if (cd->site == SITE_OPEN_RESUMED)
        o.max_conns = 2;
    rc = nc_listen(k->loop, "127.0.0.1:0", &o, &cbs, k, &k->l);
    if (rc < 0) {
        failf("nc_listen: %s (%s)", nc_errname(rc), why);
        return false;
    }
    k->laddr = listener_addr0(k->l);
    if (cd->site == SITE_SIGNAL) {
        rc = nc_signal_start(k->loop, SIGUSR1, signalled, k, &k->sig);
        if (rc < 0) {
            failf("nc_signal_start: %s", nc_errname(rc));
            return false;
        }
    }
    return true;
}

/* After nc_loop_free: every on_close once, every owned buffer freed once,
 * the canaries and the test's own sockets intact. */
static void final_checks(struct kase *k)
{
    for (int i = 0; i < k->nrecs; i++) {
        struct rec *r = k->recs[i];
        if ((r->opens || r->outgoing) && r->closes != 1)
            failf("%s: on_close ran %d times, not exactly once", who(r),
                  r->closes);
    }
    for (int i = 0; i < nowned; i++) {
        struct owned *o = &owned[i];
        if (o->accepted && o->frees == 0) {
            failf("free_fn of an owned write never ran: the buffer "
                  "leaked");
            free(o->buf);
        }
    }
    check_descriptors(k, "by the end of the case", false);
}

static void case_cleanup(struct kase *k)
{
    for (int i = 0; i < k->npeers; i++)
        peer_free(k->peers[i]);
    if (k->raw_lfd >= 0)
        close(k->raw_lfd);
    if (k->blocker_fd >= 0)
        close(k->blocker_fd);
    for (int i = 0; i < k->nrecs; i++) {
        free(k->recs[i]->in);
        free(k->recs[i]);
    }
    free(k);
}

static void run_matrix_case(const struct case_def *cd)
{
    struct kase *k = calloc(1, sizeof(*k));
    if (!k)
        abort();
    k->magic = KASE_MAGIC;
    k->cd = cd;
    k->raw_lfd = -1;
    k->blocker_fd = -1;
    K = k;
    if (setup(k)) {
        trace("setup");
        run_site(k);
        trace("site");
        if (!k->loop_freed && k->fired) {
            verify(k);
            trace("verify");
            for (int i = 0; i < k->npeers; i++)
                k->peers[i]->read_paused = false;
            wait_for(k, c_flushed, "the queued output to be sent");
            idle_window(k, "after the case");
            trace("idle");
            check_descriptors(k, "after the case", true);
        }
    }
    free_loop(k);
    trace("free");
    final_checks(k);
    case_cleanup(k);
    trace("cleanup");
    K = NULL;
}

/* ---- the workers' hooks ---------------------------------------------------------- */

struct wk {
    unsigned magic;
    const struct case_def *cd;
    nc_loop *loop;
    nc_listener *l;
    nc_timer *t;
    struct rec cw;            /* an nc_connect() to our listener */
    bool cw_started;
    struct rec *acc[4];
    int nacc;
    int starts, stops;
    int notify[2];
    atomic_int resolved;
    bool applied;
    enum state st;
    int ret;
};

static struct wk *W;

static void w_resolved(void)
{
    if (atomic_exchange(&W->resolved, 1) == 0) {
        ssize_t n = write(W->notify[1], "x", 1);
        (void)n;
    }
}

static void w_open(nc_conn *c, void *ud)
{
    struct rec *r;
    if (ud == (void *)W) {
        if (W->nacc == 4)
            abort();
        r = calloc(1, sizeof(*r));
        if (!r)
            abort();
        r->magic = REC_MAGIC;
        r->role = R_OTHER;
        r->c = c;
        W->acc[W->nacc++] = r;
        nc_conn_set_data(c, r);
    } else {
        r = ud;
        if (r->closes)
            failf("%s: on_open after its on_close", who(r));
    }
    if (++r->opens > 1)
        failf("%s: on_open called %d times", who(r), r->opens);
    if (r == &W->cw)
        w_resolved();
}

static size_t w_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)c;
    (void)data;
    struct rec *r = ud;
    if (ud == (void *)W || r->closes)
        failf("on_data before on_open or after on_close");
    return len;
}

static void w_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    if (ud == (void *)W) {
        failf("on_close (%s) for an accepted connection whose on_open "
              "never ran", nc_close_reason_name(reason));
        return;
    }
    struct rec *r = ud;
    if (++r->closes > 1)
        failf("%s: on_close called %d times", who(r), r->closes);
    r->reason = reason;
    r->err = err;
    r->in_close = true;
    r->in_close = false;
    r->c = NULL;
    canary("after on_close of a worker's connection");
    if (r == &W->cw)
        w_resolved();
}

static const nc_conn_callbacks w_cbs = {
    .on_open = w_open, .on_data = w_data, .on_close = w_close,
};

static void wt_fired(nc_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    failf("the worker's 60 s timer fired");
}

static void w_act(const char *where)
{
    const struct case_def *cd = W->cd;
    W->applied = true;
    switch (cd->target) {
    case T_CONNECTING: {
        struct rec *r = &W->cw;
        if (!W->cw_started) {
            failf("no connection to call %s on", call_names[cd->call]);
            return;
        }
        W->st = r->closes ? ST_GONE : r->opens ? ST_OPEN : ST_CONNECTING;
        if (W->st == ST_GONE) {
            notef("the connection had already closed");
            return;
        }
        W->ret = conn_call(NULL, r, cd->call);
        char want[96];
        if (!ret_ok(cd->call, W->st, W->ret, want, sizeof(want)))
            failf("%s returned %s on a connection %s, from %s; the header "
                  "says %s", call_names[cd->call],
                  W->ret ? nc_errname(W->ret) : "0", state_names[W->st],
                  where, want);
        break;
    }
    case T_LISTENER:
        if (!W->l) {
            failf("%s: no listener", where);
        } else if (cd->call == C_LISTENER_STOP) {
            nc_listener_stop(W->l);
        } else {
            nc_listener_close(W->l);
            W->l = NULL;
        }
        break;
    case T_LOOP:
        if (cd->call == C_LOOP_STOP) {
            nc_loop_stop(W->loop);
        } else {
            W->ret = nc_loop_shutdown(W->loop, 1000);
            if (W->ret != 0)
                failf("nc_loop_shutdown from %s returned %s, not 0", where,
                      nc_errname(W->ret));
        }
        break;
    case T_TIMER:
        if (!W->t) {
            failf("%s: no timer", where);
        } else if (cd->call == C_TIMER_STOP) {
            nc_timer_stop(W->t);
            if (nc_timer_active(W->t))
                failf("nc_timer_stop from %s: the timer is still active",
                      where);
        } else {
            nc_timer_free(W->t);
            W->t = NULL;
        }
        break;
    default:
        abort();
    }
    canary("right after %s(%s) from %s", call_names[cd->call],
           target_names[cd->target], where);
}

static int w_start(nc_loop *loop, unsigned index, void *ud)
{
    (void)index;
    (void)ud;
    W->starts++;
    W->loop = loop;
    char why[256] = "";
    nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    o.conn.linger_ms = LINGER_MS;
    int rc = nc_listen(loop, "127.0.0.1:0", &o, &w_cbs, W, &W->l);
    if (rc < 0) {
        failf("on_start: nc_listen: %s (%s)", nc_errname(rc), why);
        return 0;
    }
    nc_addr a = listener_addr0(W->l);
    rc = nc_timer_new(loop, wt_fired, W, &W->t);
    if (rc == 0)
        rc = nc_timer_start(W->t, 60000, 0);
    if (rc < 0)
        failf("on_start: nc_timer_new/start: %s", nc_errname(rc));
    W->cw.magic = REC_MAGIC;
    W->cw.role = R_SUBJECT;
    W->cw.outgoing = true;
    nc_connect_options co = { .conn = { .linger_ms = LINGER_MS } };
    rc = nc_connect_addr(loop, &a, &co, &w_cbs, &W->cw, &W->cw.c);
    if (rc < 0)
        failf("on_start: nc_connect_addr: %s", nc_errname(rc));
    else
        W->cw_started = true;
    if (W->cd->site == SITE_W_START)
        w_act("on_start");
    return 0;
}

static void w_stop(nc_loop *loop, unsigned index, void *ud)
{
    (void)loop;
    (void)index;
    (void)ud;
    W->stops++;
    if (W->cw_started && W->cw.closes != 1)
        failf("on_stop ran before the worker's connection's on_close");
    for (int i = 0; i < W->nacc; i++)
        if (W->acc[i]->closes != 1)
            failf("on_stop ran before an accepted connection's on_close");
    if (W->cd->site == SITE_W_STOP)
        w_act("on_stop");
}

static void run_workers_case(const struct case_def *cd)
{
    struct wk *w = calloc(1, sizeof(*w));
    if (!w || pipe2(w->notify, O_CLOEXEC) < 0)
        abort();
    w->magic = KASE_MAGIC + 1;
    w->cd = cd;
    W = w;
    setenv("NC_BACKEND", nc_backend_name(cd->backend), 1);
    nc_workers_options o = { .threads = 1, .on_start = w_start,
                             .on_stop = w_stop };
    nc_workers *ws = NULL;
    int rc = nc_workers_start(&o, &ws);
    if (rc < 0) {
        failf("nc_workers_start: %s", nc_errname(rc));
    } else {
        struct pollfd pfd = { .fd = w->notify[0], .events = POLLIN };
        if (w->cw_started && poll(&pfd, 1, (int)wait_ms()) != 1)
            failf("the worker's connection neither opened nor closed in "
                  "%u ms", wait_ms());
        rc = nc_workers_stop(ws, 1000);
        if (rc != 0)
            failf("nc_workers_stop: %s", nc_errname(rc));
        rc = nc_workers_wait(ws);
        if (rc != 0)
            failf("nc_workers_wait: %s", nc_errname(rc));
        nc_workers_free(ws);
        if (w->starts != 1 || w->stops != 1)
            failf("on_start ran %d times and on_stop %d times, not once "
                  "each", w->starts, w->stops);
        if (w->cw_started && w->cw.closes != 1)
            failf("the worker's nc_connect: on_close ran %d times, not "
                  "once", w->cw.closes);
        for (int i = 0; i < w->nacc; i++)
            if (w->acc[i]->closes != 1)
                failf("an accepted connection: on_close ran %d times",
                      w->acc[i]->closes);
        if (cd->target == T_CONNECTING &&
            (cd->call == C_CLOSE || cd->call == C_ABORT) &&
            w->st == ST_CONNECTING && w->cw.reason != NC_CLOSE_LOCAL)
            failf("closed with %s after %s while connecting, not %s",
                  nc_close_reason_name(w->cw.reason), call_names[cd->call],
                  nc_close_reason_name(NC_CLOSE_LOCAL));
    }
    for (int i = 0; i < nowned; i++)
        if (owned[i].accepted && owned[i].frees != 1)
            failf("free_fn of an owned write ran %d times, not once",
                  owned[i].frees);
    for (int i = 0; i < w->nacc; i++)
        free(w->acc[i]);
    close(w->notify[0]);
    close(w->notify[1]);
    free(w);
    W = NULL;
}

/* ---- a child: one case ------------------------------------------------------------ */

static int child_main(const struct case_def *cd)
{
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_sigs[i], &saved_fatal[i], NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(child_timeout_s());
    trace("child start");
    static struct fdent before[MAX_FDS], after[MAX_FDS];
    size_t nb = fd_snapshot(before, MAX_FDS);
#if UNDER_ASAN
    size_t heap0 = __sanitizer_get_current_allocated_bytes();
#endif
    if (cd->site >= SITE_W_START)
        run_workers_case(cd);
    else
        run_matrix_case(cd);
    canaries_check_and_close();
    size_t na = fd_snapshot(after, MAX_FDS);
    fd_compare(before, nb, after, na);
#if UNDER_ASAN
    /* Everything the case made is freed now: the heap holds more than
     * before only if something leaked (or a lazy allocation stays
     * reachable, which LeakSanitizer tells apart). */
    size_t heap1 = __sanitizer_get_current_allocated_bytes();
    if (heap1 > heap0) {
        char what[64];
        snprintf(what, sizeof(what), "heap grew by %zu bytes: LSan check",
                 heap1 - heap0);
        trace(what);
        if (__lsan_do_recoverable_leak_check())
            failf("memory leak (LeakSanitizer's report is above)");
    }
#endif
    trace("end");
    fflush(stdout);
    fflush(stderr);
    if (atomic_load(&failures))
        return 1;
    return atomic_load(&notes) ? 3 : 0;
}

/* ---- the parent: run the cases, report -------------------------------------------- */

struct tally_key {
    char key[200];
    char first[160];
    unsigned n;
};

struct tally {
    unsigned ran, failed, noted;
    struct tally_key keys[128];
    size_t nkeys;
};

static struct tally total, total_notes;

static void tally_add(struct tally *t, const char *reason,
                      const char *lbl)
{
    char key[200];
    size_t j = 0;
    /* numbers vary from case to case: fd 7, 4211 iterations */
    for (size_t i = 0; reason[i] && j + 1 < sizeof(key); i++) {
        char ch = reason[i];
        if (ch == '0' && reason[i + 1] == 'x') {   /* an address */
            i++;
            while (strchr("0123456789abcdefABCDEF", reason[i + 1]) &&
                   reason[i + 1])
                i++;
            ch = '0';
        }
        if (ch >= '0' && ch <= '9') {
            if (j == 0 || key[j - 1] != '#')
                key[j++] = '#';
        } else {
            key[j++] = ch;
        }
    }
    key[j] = '\0';
    for (size_t i = 0; i < t->nkeys; i++) {
        if (strcmp(t->keys[i].key, key) == 0) {
            t->keys[i].n++;
            return;
        }
    }
    if (t->nkeys == sizeof(t->keys) / sizeof(t->keys[0]))
        return;
    struct tally_key *k = &t->keys[t->nkeys++];
    snprintf(k->key, sizeof(k->key), "%s", key);
    snprintf(k->first, sizeof(k->first), "%s", lbl);
    k->n = 1;
}

static void tally_print(const struct tally *t, const char *title)
{
    if (t->nkeys == 0)
        return;
    printf("  %s, by cause (count, cause, first case):\n", title);
    for (size_t i = 0; i < t->nkeys; i++)
        printf("  %4u  %s\n        e.g. %s\n", t->keys[i].n,
               t->keys[i].key, t->keys[i].first);
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* One failing case: a line naming it, then what matters of its output. */
static void report_failure(const struct case_def *cd, int status,
                           char *out, struct tally *t)
{
    printf("FAIL %s  [%s calls %s on %s]\n", cd->label,
           sites[cd->site].name, call_names[cd->call],
           target_names[cd->target]);
    char first[300] = "";
    int reasons = 0, frames = -1;
    bool summary = false;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        const char *s = skip_ws(line);
        const char *err = strstr(s, "ERROR: ");
        if (starts(s, "reentry: ")) {
            if (reasons++ < 6)
                printf("    %s\n", s + 9);
            if (!first[0])
                snprintf(first, sizeof(first), "%s", s + 9);
        } else if ((err && strstr(s, "Sanitizer")) ||
                   strstr(s, "runtime error:") ||
                   starts(s, "WARNING: ThreadSanitizer")) {
            printf("    %s\n", s);
            frames = 0;
            if (!summary)
                snprintf(first, sizeof(first), "%s", err ? err : s);
        } else if (starts(s, "freed by thread")) {
            printf("    %s\n", s);
            frames = 0;
        } else if (frames >= 0 && frames < 5 && s[0] == '#') {
            printf("      %s\n", s);
            frames++;
        } else if (starts(s, "SUMMARY: ")) {
            printf("    %s\n", s);
            snprintf(first, sizeof(first), "%s", s);
            summary = true;
            frames = -1;
        }
    }
    if (reasons > 6)
        printf("    (and %d more)\n", reasons - 6);
    char sig[96] = "";
    if (WIFSIGNALED(status)) {
        int sn = WTERMSIG(status);
        if (sn == SIGALRM)
            snprintf(sig, sizeof(sig), "timed out after %u s (a hang or a "
                     "busy loop)", child_timeout_s());
        else
            snprintf(sig, sizeof(sig), "killed by signal %d (%s)", sn,
                     strsignal(sn));
        printf("    %s\n", sig);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 99) {
        snprintf(sig, sizeof(sig), "valgrind found errors (exit 99; see "
                 "its output)");
        printf("    %s\n", sig);
    }
    if (!first[0])
        snprintf(first, sizeof(first), "%s",
                 sig[0] ? sig : "exit status without a message");
    tally_add(t, first, cd->label);
    tally_add(&total, first, cd->label);
}

/* A case running in a child; its output comes through a pipe. */
struct job {
    const struct case_def *cd;
    pid_t pid;
    int fd;
    char *out;
    size_t len, cap;
    struct timespec t0;
};

static void job_start(struct job *j, const struct case_def *cd)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        fail_msg("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    clock_gettime(CLOCK_MONOTONIC, &j->t0);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[1]);
        /* _exit: the atexit handlers (OpenSSL's cleanup; LeakSanitizer's
         * whole-process check, done here only when needed) would double
         * the cost of a case under ASan. Valgrind checks leaks at _exit
         * too. */
        _exit(child_main(cd));
    }
    close(pfd[1]);
    j->cd = cd;
    j->pid = pid;
    j->fd = pfd[0];
    j->len = 0;
    j->cap = 8192;
    j->out = malloc(j->cap);
    if (!j->out)
        abort();
}

/* Read what the child wrote; true at its end. */
static bool job_read(struct job *j)
{
    if (j->len + 4096 > j->cap) {
        j->cap *= 2;
        j->out = realloc(j->out, j->cap);
        if (!j->out)
            abort();
    }
    ssize_t n = read(j->fd, j->out + j->len, j->cap - j->len - 1);
    if (n > 0) {
        j->len += (size_t)n;
        return false;
    }
    return n == 0 || errno != EINTR;
}

static void job_finish(struct job *j, struct tally *t)
{
    const struct case_def *cd = j->cd;
    char *out = j->out;
    size_t len = j->len;
    out[len] = '\0';
    close(j->fd);
    int status = 0;
    while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
        ;
    j->pid = 0;
    t->ran++;
    total.ran++;
    if (getenv("NC_REENTRY_TRACE")) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("reentry-trace: %s took %.1f ms\n", cd->label,
               (double)(t1.tv_sec - j->t0.tv_sec) * 1e3 +
                   (double)(t1.tv_nsec - j->t0.tv_nsec) / 1e6);
    }
    const char *v = getenv("NC_REENTRY_VERBOSE");
    bool verbose = v && strcmp(v, "1") == 0;
    if (WIFEXITED(status) &&
        (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) {
        if (WEXITSTATUS(status) == 3) {
            t->noted++;
            total.noted++;
            char note[300] = "";
            const char *n0 = strstr(out, "reentry-note: ");
            if (n0) {
                n0 += 14;
                size_t nl = strcspn(n0, "\n");
                snprintf(note, sizeof(note), "%.*s",
                         (int)(nl < sizeof(note) - 1 ? nl
                                                     : sizeof(note) - 1),
                         n0);
            }
            tally_add(&total_notes, note, cd->label);
            if (verbose)
                printf("NOTE %s: %s\n", cd->label, note);
        }
        if (verbose && len)
            printf("---- %s\n%s", cd->label, out);
    } else {
        t->failed++;
        total.failed++;
        if (verbose)
            printf("---- %s\n%s", cd->label, out);
        report_failure(cd, status, out, t);
    }
    free(out);
    j->out = NULL;
    fflush(stdout);
}

/* Cases run in parallel: most of a case is waiting (for the peers, and
 * the idle windows). NC_REENTRY_JOBS=N sets how many at once. */
static unsigned njobs(void)
{
    const char *v = getenv("NC_REENTRY_JOBS");
    if (v && atoi(v) > 0)
        return atoi(v) > 16 ? 16 : (unsigned)atoi(v);
    return under_valgrind() || UNDER_TSAN ? 2 : 4;
}

static void run_cases(const struct case_def *cases, size_t n,
                      struct tally *t)
{
    struct job jobs[16];
    memset(jobs, 0, sizeof(jobs));
    unsigned nj = njobs();
    size_t next = 0, running = 0;
    while (next < n || running) {
        for (unsigned i = 0; i < nj && next < n; i++) {
            if (jobs[i].pid)
                continue;
            job_start(&jobs[i], &cases[next++]);
            running++;
        }
        struct pollfd pfd[16];
        unsigned idx[16], m = 0;
        for (unsigned i = 0; i < nj; i++) {
            if (!jobs[i].pid)
                continue;
            pfd[m] = (struct pollfd){ .fd = jobs[i].fd, .events = POLLIN };
            idx[m++] = i;
        }
        if (poll(pfd, m, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail_msg("poll: %s", strerror(errno));
        }
        for (unsigned i = 0; i < m; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct job *j = &jobs[idx[i]];
            if (job_read(j)) {
                job_finish(j, t);
                running--;
            }
        }
    }
}

/* ---- the cases ---------------------------------------------------------------- */

static size_t targets_for(int site, int call, int *out)
{
    size_t n = 0;
    if (call <= C_WRITE_OWNED) {
        if (site == SITE_W_START) {
            out[n++] = T_CONNECTING;
        } else if (site != SITE_W_STOP) {
            if (sites[site].conn)
                out[n++] = T_SELF;
            out[n++] = T_OTHER;
        }
    } else if (call <= C_LISTENER_CLOSE) {
        out[n++] = T_LISTENER;
    } else if (call <= C_LOOP_SHUTDOWN) {
        out[n++] = T_LOOP;
    } else {
        out[n++] = T_TIMER;
        if (site == SITE_TIMER)
            out[n++] = T_OWN_TIMER;
    }
    return n;
}

static bool selected(const char *lbl)
{
    const char *only = getenv("NC_REENTRY_ONLY");
    if (!only || !*only)
        return true;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", only);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        if (*tok && strstr(lbl, tok))
            return true;
    return false;
}

/* Under valgrind and TSan every case costs ten times as much: a sample
 * of them runs, spread over sites and calls (unless NC_REENTRY_ONLY
 * names cases). */
static unsigned stride(void)
{
    const char *only = getenv("NC_REENTRY_ONLY");
    if (only && *only)
        return 1;
    if (under_valgrind())
        return 7;
    return UNDER_TSAN ? 5 : 1;
}

struct group {
    nc_backend backend;
    int site;
};

static unsigned sample_counter;

static void run_group(void **state)
{
    const struct group *g = *state;
    struct tally t;
    memset(&t, 0, sizeof(t));
    static struct case_def cases[256];
    size_t ncases = 0;
    /* The workers' two hooks make one test; TLS changes nothing there. */
    int site_list[2] = { g->site, SITE_W_STOP };
    int nsites = g->site == SITE_W_START ? 2 : 1;
    int tls_n = have_tls && g->site < SITE_W_START ? 2 : 1;
    for (int si = 0; si < nsites; si++) {
        int site = site_list[si];
        for (int tls = 0; tls < tls_n; tls++) {
            if (tls && under_valgrind())
                continue;   /* OpenSSL under valgrind: too slow */
            if (!tls && sites[site].tls_only)
                continue;
            for (int call = 0; call < C_COUNT; call++) {
                int tg[T_COUNT];
                size_t ntg = targets_for(site, call, tg);
                for (size_t i = 0; i < ntg; i++) {
                    struct case_def cd = { .backend = g->backend,
                                           .tls = tls != 0, .site = site,
                                           .call = call, .target = tg[i] };
                    snprintf(cd.label, sizeof(cd.label), "%s/%s/%s/%s/%s",
                             nc_backend_name(g->backend),
                             tls ? "tls" : "plain", sites[site].id,
                             call_names[call], target_names[tg[i]]);
                    if (!selected(cd.label))
                        continue;
                    if (sample_counter++ % stride() != 0)
                        continue;
                    if (ncases == sizeof(cases) / sizeof(cases[0]))
                        abort();
                    cases[ncases++] = cd;
                }
            }
        }
    }
    run_cases(cases, ncases, &t);
    fflush(stdout);
    if (t.failed) {
        tally_print(&t, "failures");
        fail_msg("%u of %u cases failed (%s, %s)", t.failed, t.ran,
                 nc_backend_name(g->backend), sites[g->site].name);
    }
}

/* ---- setup ------------------------------------------------------------------------ */

#ifdef NC_TEST_HAVE_TLS
static const char *cert(const char *name)
{
    static char paths[8][PATH_MAX + 32];
    static const char *names[8];
    for (size_t i = 0; i < 8; i++) {
        if (!names[i]) {
            names[i] = name;
            snprintf(paths[i], sizeof(paths[i]), "%s/%s", certs, name);
        }
        if (strcmp(names[i], name) == 0)
            return paths[i];
    }
    abort();
}
#endif

#ifdef NC_TEST_HAVE_TLS
static int warm_opens;

static void warm_open(nc_conn *c, void *ud)
{
    (void)c;
    (void)ud;
    warm_opens++;
}

static bool warm_done(void *arg)
{
    (void)arg;
    return warm_opens >= 2;
}

/* OpenSSL loads and caches its algorithms on first use: done once here,
 * before the children are forked, rather than in each of them. */
static void warm_tls(void)
{
    nc_loop *loop = NULL;
    nc_listener *l = NULL;
    static const nc_conn_callbacks wcbs = { .on_open = warm_open };
    nc_listener_options lo = { .tls = lib_sctx };
    nc_connect_options co = { .tls = lib_cctx };
    if (nc_loop_new(&loop) == 0 &&
        nc_listen(loop, "127.0.0.1:0", &lo, &wcbs, NULL, &l) == 0) {
        nc_addr a = listener_addr0(l);
        if (nc_connect_addr(loop, &a, &co, &wcbs, NULL, NULL) == 0)
            run_until(loop, warm_done, NULL, 3000);
    }
    nc_loop_free(loop);
    /* and our own peers' contexts, through memory */
    SSL *cl = SSL_new(peer_cctx), *sv = SSL_new(peer_sctx);
    BIO *c2s = BIO_new(BIO_s_mem()), *s2c = BIO_new(BIO_s_mem());
    BIO_up_ref(c2s);
    BIO_up_ref(s2c);
    SSL_set_bio(cl, s2c, c2s);
    SSL_set_bio(sv, c2s, s2c);
    SSL_set_connect_state(cl);
    SSL_set_accept_state(sv);
    for (int i = 0; i < 8; i++) {
        SSL_do_handshake(cl);
        SSL_do_handshake(sv);
    }
    SSL_free(cl);
    SSL_free(sv);
    ERR_clear_error();
}
#endif

static int group_setup(void **state)
{
    (void)state;
    if (under_valgrind()) {
        printf("test_reentry: under valgrind: epoll, plain, a sample of "
               "the cases\n");
        return 0;
    }
    nc_tls_ctx *probe = NULL;
    if (nc_tls_client_new(NULL, &probe, NULL, 0) == -ENOTSUP) {
        printf("test_reentry: this libnetcore has no TLS: plain cases "
               "only\n");
        return 0;
    }
    nc_tls_ctx_free(probe);
#ifndef NC_TEST_HAVE_TLS
    fprintf(stderr, "test_reentry: the library has TLS but this test was "
                    "built without its OpenSSL peer (stale object? "
                    "rebuild)\n");
    return -1;
#else
    char tmpl[] = "/tmp/nc-test-reentry.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(certs, sizeof(certs), "%s", tmpl);
    const char *root = getenv("NC_SOURCE_DIR");
    char cmd[PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/tls-certs.sh' '%s'",
             root ? root : ".", certs);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_reentry: cannot make certificates (%s)\n",
                cmd);
        return -1;
    }
    char why[256] = "";
    nc_tls_options so = { .cert_file = cert("server.pem"),
                          .key_file = cert("server.key") };
    nc_tls_options co = { .ca_file = cert("ca.pem") };
    if (nc_tls_server_new(&so, &lib_sctx, why, sizeof(why)) < 0 ||
        nc_tls_client_new(&co, &lib_cctx, why, sizeof(why)) < 0) {
        fprintf(stderr, "test_reentry: TLS contexts: %s\n", why);
        return -1;
    }
    peer_cctx = SSL_CTX_new(TLS_client_method());
    peer_sctx = SSL_CTX_new(TLS_server_method());
    if (!peer_cctx || !peer_sctx ||
        SSL_CTX_use_certificate_chain_file(peer_sctx, cert("server.pem")) !=
            1 ||
        SSL_CTX_use_PrivateKey_file(peer_sctx, cert("server.key"),
                                    SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "test_reentry: OpenSSL peer contexts failed\n");
        return -1;
    }
    SSL_CTX_set_verify(peer_cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_num_tickets(peer_sctx, 0);
    long mode = SSL_MODE_ENABLE_PARTIAL_WRITE |
                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    SSL_CTX_set_mode(peer_cctx, mode);
    SSL_CTX_set_mode(peer_sctx, mode);
    have_tls = true;
    warm_tls();
    return 0;
#endif
}

static int group_teardown(void **state)
{
    (void)state;
    printf("test_reentry: %u cases run, %u failed, %u with a note\n",
           total.ran, total.failed, total.noted);
    tally_print(&total, "all failures");
    tally_print(&total_notes, "notes (the call could not be made as "
                              "planned; not failures)");
    nc_tls_ctx_free(lib_sctx);
    nc_tls_ctx_free(lib_cctx);
#ifdef NC_TEST_HAVE_TLS
    SSL_CTX_free(peer_cctx);
    SSL_CTX_free(peer_sctx);
#endif
    if (certs[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_sigs[i], NULL, &saved_fatal[i]);
    for (size_t i = 0; i < BLOB_LEN; i++)
        blob[i] = (char)('a' + i % 26);

    nc_backend backends[2];
    size_t nbackends = 0;
    const char *env = getenv("NC_BACKEND");
    if (env && strcmp(env, "epoll") == 0) {
        backends[nbackends++] = NC_BACKEND_EPOLL;
    } else if (env && strcmp(env, "io_uring") == 0) {
        backends[nbackends++] = NC_BACKEND_IO_URING;
    } else {
        backends[nbackends++] = NC_BACKEND_EPOLL;
        nc_loop *probe = NULL;
        nc_loop_options lo = { .backend = NC_BACKEND_IO_URING };
        int rc = nc_loop_new_with(&probe, &lo);
        if (rc == 0) {
            nc_loop_free(probe);
            backends[nbackends++] = NC_BACKEND_IO_URING;
        } else {
            printf("test_reentry: io_uring cannot run here (%s): epoll "
                   "only\n", nc_errname(rc));
        }
    }

    /* What a process does the first time (page faults, the sanitizers'
     * allocator caches) is done once here rather than in every child. */
    for (size_t b = 0; b < nbackends; b++) {
        nc_loop *warm = NULL;
        nc_listener *wl = NULL;
        nc_loop_options lo = { .backend = backends[b] };
        if (nc_loop_new_with(&warm, &lo) == 0) {
            nc_listen(warm, "127.0.0.1:0", NULL, &cbs, NULL, &wl);
            nc_loop_free(warm);
        }
    }

    static struct group groups[2 * SITE_COUNT];
    static char names[2 * SITE_COUNT][128];
    static struct CMUnitTest tests[2 * SITE_COUNT];
    size_t n = 0;
    for (size_t b = 0; b < nbackends; b++) {
        for (int s = 0; s < SITE_COUNT; s++) {
            if (s == SITE_W_STOP)
                continue;   /* one test for both hooks, below */
            groups[n] = (struct group){ backends[b], s };
            snprintf(names[n], sizeof(names[n]), "%s: %s",
                     nc_backend_name(backends[b]),
                     s == SITE_W_START ? "nc_workers on_start, on_stop"
                                       : sites[s].name);
            tests[n] = (struct CMUnitTest){ .name = names[n],
                                            .test_func = run_group,
                                            .initial_state = &groups[n] };
            n++;
        }
    }
    return _cmocka_run_group_tests("reentry", tests, n, group_setup,
                                   group_teardown);
}
