/*
 * proxy_load.c - the load tools of bench/proxy.sh, which measures TCP
 * proxies (examples/tcp-proxy, HAProxy, socat) from outside: an upstream
 * that discards what it gets, a streaming client, a holder of idle pairs
 * and a reader of a process tree's CPU time.
 *
 * The sink and the clients speak one tiny protocol, so that a client
 * knows every byte went through the proxy: a request is an 8-byte length
 * L (little-endian) and L bytes; the sink reads and discards them and
 * answers with the same 8 bytes once the last one arrived. A connection
 * may carry any number of requests; the sink closes it at the client's
 * end of stream. No half-close is needed (socat, for one, turns a FIN
 * into a close after half a second).
 *
 * Usage:
 *   proxy_load sink
 *       listens on 127.0.0.1 (port chosen by the kernel), prints
 *       "listening on 127.0.0.1:PORT", serves until SIGTERM or SIGINT
 *       (then exits 0), at most 3600 s.
 *   proxy_load stream [--tls] PORT CONNS MIB
 *       opens CONNS connections (1 to 1000) to 127.0.0.1:PORT at once;
 *       together they send MIB MiB as one request each (the bytes split
 *       evenly), in 256 KiB writes, or in 16 KiB SSL_writes with --tls
 *       (TLS 1.3, the certificate not checked: the client's cost is not
 *       measured). Each connection waits for its answer and closes
 *       (after a close_notify with --tls). Prints "stream CONNS BYTES
 *       SECONDS" on stdout: wall time from the first connect to the last
 *       answer. At most 300 s, else exit 1.
 *   proxy_load idle MODE PID PORT PAIRS WARMUP
 *       the memory an idle connection through a proxy costs it: the
 *       growth of process PID's VmRSS (/proc/PID/status) while this
 *       program opens PAIRS connections to 127.0.0.1:PORT and keeps them,
 *       divided by PAIRS. Steps: WARMUP connections opened, served (as
 *       MODE says), closed, and the proxy waited for until its
 *       descriptors are back where they were; WARMUP more opened and kept
 *       (they take up what the first ones freed and the allocator kept);
 *       VmRSS read; PAIRS more opened; when the proxy has settled (its
 *       descriptor count, at least one more per connection, unchanged,
 *       every thread asleep and its CPU time still for 300 ms) VmRSS read
 *       again; everything closed. MODE:
 *         used       plain: one request of 16 bytes and its answer, then
 *                    idle (the proxy has connected to the upstream and
 *                    moved bytes both ways);
 *         connect    connect, send nothing (plain or TLS listener);
 *         tls-used   TLS 1.3 handshake done, one request and its answer;
 *         tls-hello  send a ClientHello, wait for the server's answer
 *                    (readable), then nothing: an abandoned handshake
 *                    (the client never reads, so it cannot finish).
 *       Prints "idle MODE PAIRS FDS0 FDS1 RSS0_KB RSS1_KB BYTES_PER_PAIR"
 *       (FDS: the proxy's descriptors at the two readings) and on stderr
 *       the same in words with RssAnon. Every wait has a limit (60 s).
 *   proxy_load cpu [-w MS] PID...
 *       prints, per PID, the CPU time in nanoseconds of the process and
 *       its descendants: its own (clock_getcpuclockid: every thread, live
 *       or gone), what its children that it reaped used (cutime + cstime
 *       of /proc/PID/stat, clock ticks) and, recursively, that of its
 *       live children (/proc/PID/task/TID/children). With -w it first
 *       waits, at most MS milliseconds, until PID has no children: a
 *       proxy that forks per connection (socat) has then reaped them.
 *
 * Plain non-blocking sockets and one epoll loop per client; OpenSSL for
 * TLS. SIGPIPE is ignored.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "proxy_load"
#define SINK_CHUNK (256 * 1024)
#define STREAM_CHUNK (256 * 1024)
#define TLS_CHUNK 16384
#define MAX_STREAM_CONNS 1000
#define IN_FLIGHT 256           /* connections being opened at once */
#define STREAM_LIMIT_S 300
#define WAIT_LIMIT_MS 60000
#define SINK_LIFETIME_S 3600
#define SMALL_REQUEST 16        /* the idle holder's request */
#define FD_SLACK 64             /* descriptors a proxy may keep after use */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(errno));
    exit(1);
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void ep_set(int ep, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = { .events = events, .data.u64 = data };
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die("epoll_ctl");
}

/* A non-blocking connection to 127.0.0.1:port, under way. */
static int connect_start(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        die("socket");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 &&
        errno != EINPROGRESS)
        die("connect");
    return fd;
}

static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

static int port_arg(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 65535) {
        fprintf(stderr, "%s: '%s' is not a port\n", PROG, s);
        exit(2);
    }
    return (int)v;
}

static long num_arg(const char *s, long min, long max, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: %s '%s' is not a number from %ld to %ld\n",
                PROG, what, s, min, max);
        exit(2);
    }
    return v;
}

/* ---- TLS (the clients) ----------------------------------------------- */

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        fprintf(stderr, "%s: SSL_CTX_new failed\n", PROG);
        exit(1);
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* The holder keeps thousands: no idle record buffers in it. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static SSL *client_ssl(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        fprintf(stderr, "%s: SSL_new failed\n", PROG);
        exit(1);
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

static void tls_failed(const char *what, SSL *ssl, int rc)
{
    char buf[256] = "";
    int e = SSL_get_error(ssl, rc);
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, buf, sizeof buf);
    fprintf(stderr, "%s: %s failed: SSL error %d%s%s%s\n", PROG, what, e,
            buf[0] ? " (" : "", buf, buf[0] ? ")" : "");
    if (e == SSL_ERROR_SYSCALL && errno)
        fprintf(stderr, "%s:   %s\n", PROG, strerror(errno));
    exit(1);
}

/* What the last SSL call wants before it can go on: EPOLLIN or EPOLLOUT;
 * exits on a failure. */
static uint32_t tls_wants(const char *what, SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return EPOLLIN;
    case SSL_ERROR_WANT_WRITE:
        return EPOLLOUT;
    default:
        tls_failed(what, ssl, rc);
        return 0;
    }
}

/* ---- sink ------------------------------------------------------------ */

struct sink_conn {
    unsigned char hdr[8];
    unsigned hdr_len;           /* of the current request's length */
    uint64_t left;              /* bytes of it still to come */
};

static void sink_close(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Consume what was read; answer every request completed. Returns false
 * when the connection must close (its answer could not be sent). */
static bool sink_take(struct sink_conn *s, int fd, const unsigned char *p,
                      size_t n)
{
    while (n > 0) {
        if (s->hdr_len < 8) {
            size_t k = 8 - s->hdr_len < n ? 8 - s->hdr_len : n;
            memcpy(s->hdr + s->hdr_len, p, k);
            s->hdr_len += (unsigned)k;
            p += k;
            n -= k;
            if (s->hdr_len < 8)
                return true;
            s->left = get_le64(s->hdr);
        } else {
            size_t k = s->left < n ? (size_t)s->left : n;
            s->left -= k;
            p += k;
            n -= k;
        }
        if (s->left == 0) {
            /* The socket's send buffer is empty between requests: the
             * 8 bytes go at once or the peer is gone. */
            if (send(fd, s->hdr, 8, MSG_NOSIGNAL) != 8)
                return false;
            s->hdr_len = 0;
        }
    }
    return true;
}

static int sink_main(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof a;
    struct rlimit rl;
    struct sink_conn *conns;
    unsigned char *buf = malloc(SINK_CHUNK);
    struct epoll_event evs[256];
    sigset_t stop;
    int one = 1, lfd, sfd, ep;
    size_t max_fd;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    max_fd = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576
                 ? 1048576 : (size_t)rl.rlim_cur;
    conns = calloc(max_fd, sizeof *conns);
    if (conns == NULL || buf == NULL)
        die("malloc");

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || lfd < 0 || ep < 0)
        die("setting up");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        die("listening");
    ep_set(ep, EPOLL_CTL_ADD, lfd, EPOLLIN, (uint64_t)lfd);
    ep_set(ep, EPOLL_CTL_ADD, sfd, EPOLLIN, (uint64_t)sfd);
    alarm(SINK_LIFETIME_S);
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = (int)evs[i].data.u64;
            if (fd == sfd)
                return 0;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if ((size_t)c >= max_fd) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    memset(&conns[c], 0, sizeof conns[c]);
                    ep_set(ep, EPOLL_CTL_ADD, c, EPOLLIN, (uint64_t)c);
                }
                continue;
            }
            ssize_t got = read(fd, buf, SINK_CHUNK);
            if (got > 0) {
                if (!sink_take(&conns[fd], fd, buf, (size_t)got))
                    sink_close(ep, fd);
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                sink_close(ep, fd);
            }
        }
    }
}

/* ---- stream ---------------------------------------------------------- */

enum { ST_CONNECT, ST_HANDSHAKE, ST_SEND, ST_ANSWER, ST_DONE };

struct stream_conn {
    int fd;
    int state;
    SSL *ssl;
    uint64_t total;             /* request body bytes */
    uint64_t sent;              /* of the header and body, 8 + total */
    int pending;                /* TLS: the length an SSL_write must
                                   be retried with, 0 for none */
    unsigned char hdr[8];
    unsigned char answer[8];
    unsigned answer_len;
    uint32_t events;            /* interest registered */
};

static unsigned char pattern[STREAM_CHUNK];

static void stream_interest(int ep, struct stream_conn *s, uint32_t events,
                            uint64_t id)
{
    if (s->events != events) {
        ep_set(ep, EPOLL_CTL_MOD, s->fd, events, id);
        s->events = events;
    }
}

static void stream_answered(struct stream_conn *s)
{
    uint64_t got = get_le64(s->answer);
    if (got != s->total) {
        fprintf(stderr, "%s: the sink received %llu bytes of %llu\n", PROG,
                (unsigned long long)got, (unsigned long long)s->total);
        exit(1);
    }
    if (s->ssl) {
        SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    close(s->fd);
    s->state = ST_DONE;
}

/* Plain: write what the kernel takes, up to 16 writes an event. */
static uint32_t stream_plain_send(struct stream_conn *s)
{
    for (int k = 0; k < 16 && s->sent < 8 + s->total; k++) {
        ssize_t n;
        if (s->sent < 8) {
            n = send(s->fd, s->hdr + s->sent, 8 - s->sent, MSG_NOSIGNAL);
        } else {
            uint64_t left = 8 + s->total - s->sent;
            n = send(s->fd, pattern, left < STREAM_CHUNK ? left : STREAM_CHUNK,
                     MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EAGAIN)
                return EPOLLOUT;
            die("send");
        }
        s->sent += (uint64_t)n;
    }
    return s->sent < 8 + s->total ? EPOLLOUT : EPOLLIN;
}

static uint32_t stream_tls_send(struct stream_conn *s)
{
    for (int k = 0; k < 64 && s->sent < 8 + s->total; k++) {
        int len, rc;
        const void *p;
        if (s->sent < 8) {
            p = s->hdr;
            len = 8;
        } else {
            uint64_t left = 8 + s->total - s->sent;
            p = pattern;
            len = s->pending ? s->pending
                             : (int)(left < TLS_CHUNK ? left : TLS_CHUNK);
        }
        rc = SSL_write(s->ssl, p, len);
        if (rc <= 0) {
            s->pending = s->sent < 8 ? 0 : len;
            return tls_wants("SSL_write", s->ssl, rc);
        }
        s->pending = 0;
        s->sent += (uint64_t)rc;
    }
    return s->sent < 8 + s->total ? EPOLLOUT : EPOLLIN;
}

/* Read the answer (TLS: and whatever the server sends before it, session
 * tickets). Returns the interest, 0 once answered. */
static uint32_t stream_read(struct stream_conn *s)
{
    for (;;) {
        int n;
        if (s->ssl) {
            n = SSL_read(s->ssl, s->answer + s->answer_len,
                         (int)(8 - s->answer_len));
            if (n <= 0) {
                if (SSL_get_error(s->ssl, n) == SSL_ERROR_WANT_READ)
                    return EPOLLIN;
                tls_failed("SSL_read", s->ssl, n);
            }
        } else {
            n = (int)read(s->fd, s->answer + s->answer_len,
                          8 - s->answer_len);
            if (n < 0 && errno == EAGAIN)
                return EPOLLIN;
            if (n <= 0) {
                fprintf(stderr, "%s: the connection ended before the "
                        "answer (%s)\n", PROG, n == 0 ? "end of stream"
                                                      : strerror(errno));
                exit(1);
            }
        }
        s->answer_len += (unsigned)n;
        if (s->answer_len == 8) {
            stream_answered(s);
            return 0;
        }
    }
}

static void stream_step(int ep, struct stream_conn *s, uint64_t id,
                        uint32_t ready)
{
    uint32_t want = 0;

    if (s->state == ST_CONNECT) {
        int err = connect_result(s->fd);
        if (err) {
            errno = err;
            die("connect");
        }
        s->state = s->ssl ? ST_HANDSHAKE : ST_SEND;
    }
    if (s->state == ST_HANDSHAKE) {
        int rc = SSL_do_handshake(s->ssl);
        if (rc != 1) {
            stream_interest(ep, s, tls_wants("the handshake", s->ssl, rc), id);
            return;
        }
        s->state = ST_SEND;
    }
    if (s->state == ST_SEND) {
        /* Session tickets may come while sending: read them. */
        if (s->ssl && (ready & EPOLLIN) && stream_read(s) == 0) {
            fprintf(stderr, "%s: an answer before the request was sent\n",
                    PROG);
            exit(1);
        }
        want = s->ssl ? stream_tls_send(s) : stream_plain_send(s);
        if (s->sent < 8 + s->total) {
            stream_interest(ep, s, want | (s->ssl ? EPOLLIN : 0), id);
            return;
        }
        s->state = ST_ANSWER;
    }
    if (s->state == ST_ANSWER) {
        want = stream_read(s);
        if (want)
            stream_interest(ep, s, want, id);
    }
}

static int stream_main(int argc, char **argv)
{
    bool tls = argc > 0 && strcmp(argv[0], "--tls") == 0;
    struct epoll_event evs[256];
    struct stream_conn *conns;
    SSL_CTX *ctx = NULL;
    uint64_t total, t0, limit;
    long nconns, mib;
    int port, ep, done = 0;

    if (tls) {
        argc--;
        argv++;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s stream [--tls] PORT CONNS MIB\n", PROG);
        return 2;
    }
    port = port_arg(argv[0]);
    nconns = num_arg(argv[1], 1, MAX_STREAM_CONNS, "CONNS");
    mib = num_arg(argv[2], 1, 1 << 20, "MIB");
    total = (uint64_t)mib << 20;
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 131 + 7);
    if (tls)
        ctx = client_ctx();
    conns = calloc((size_t)nconns, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || ep < 0)
        die("setting up");

    t0 = now_ns();
    limit = t0 + (uint64_t)STREAM_LIMIT_S * 1000000000u;
    for (long i = 0; i < nconns; i++) {
        struct stream_conn *s = &conns[i];
        s->total = total / (uint64_t)nconns +
                   ((uint64_t)i < total % (uint64_t)nconns);
        put_le64(s->hdr, s->total);
        s->fd = connect_start(port);
        s->ssl = tls ? client_ssl(ctx, s->fd) : NULL;
        s->state = ST_CONNECT;
        s->events = EPOLLOUT;
        ep_set(ep, EPOLL_CTL_ADD, s->fd, EPOLLOUT, (uint64_t)i);
    }
    while (done < nconns) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (now_ns() > limit) {
            fprintf(stderr, "%s: stream: %d of %ld connections done after "
                    "%d s: giving up\n", PROG, done, nconns, STREAM_LIMIT_S);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct stream_conn *s = &conns[evs[i].data.u64];
            if (s->state == ST_DONE)
                continue;
            stream_step(ep, s, evs[i].data.u64, evs[i].events);
            if (s->state == ST_DONE)
                done++;
        }
    }
    printf("stream %ld %llu %.6f\n", nconns, (unsigned long long)total,
           (double)(now_ns() - t0) / 1e9);
    SSL_CTX_free(ctx);
    free(conns);
    return 0;
}

/* ---- reading a process from outside ---------------------------------- */

static int fd_count(pid_t pid)
{
    char path[64];
    struct dirent *e;
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* A field of /proc/PID/status in kB, or -1. */
static long status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t len = strlen(field);
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            kb = strtol(line + len + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* The fields of /proc/PATH/stat after "(comm) ": fields[0] is field 3,
 * the state. Returns false when it cannot be read. */
static bool stat_fields(const char *path, char *state, long long *cutime,
                        long long *cstime)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    long long v[20] = {0};
    char st = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime */
    if (sscanf(p + 2, "%c %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld "
               "%lld %lld %lld %lld", &st, &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12],
               &v[13]) != 15)
        return false;
    if (state)
        *state = st;
    if (cutime)
        *cutime = v[12];
    if (cstime)
        *cstime = v[13];
    return true;
}

/* Whether every thread of pid sleeps (S, or I for an idle kernel worker). */
static bool all_asleep(pid_t pid)
{
    char path[64];
    struct dirent *e;
    bool asleep = true;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    while (asleep && (e = readdir(d)) != NULL) {
        char sp[300], st = 0;
        if (e->d_name[0] == '.')
            continue;
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        if (stat_fields(sp, &st, NULL, NULL) && st != 'S' && st != 'I')
            asleep = false;
    }
    closedir(d);
    return asleep;
}

/* Calls fn(child, arg) for every live child of pid. Returns the count. */
static int for_children(pid_t pid, void (*fn)(pid_t, void *), void *arg)
{
    char path[64];
    struct dirent *e;
    int count = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char cp[300];
        long child;
        if (e->d_name[0] == '.')
            continue;
        snprintf(cp, sizeof cp, "/proc/%d/task/%s/children", (int)pid,
                 e->d_name);
        FILE *f = fopen(cp, "r");
        if (f == NULL)
            continue;
        while (fscanf(f, "%ld", &child) == 1) {
            count++;
            if (fn)
                fn((pid_t)child, arg);
        }
        fclose(f);
    }
    closedir(d);
    return count;
}

static void tree_cpu_add(pid_t pid, void *arg);

/* CPU time of pid and its descendants, in ns (see the usage above). */
static uint64_t tree_cpu_ns(pid_t pid)
{
    uint64_t total = 0;
    clockid_t cid;
    struct timespec ts;
    char path[64];
    long long cu = 0, cs = 0;

    if (clock_getcpuclockid(pid, &cid) == 0 && clock_gettime(cid, &ts) == 0)
        total = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (stat_fields(path, NULL, &cu, &cs))
        total += (uint64_t)(cu + cs) *
                 (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
    for_children(pid, tree_cpu_add, &total);
    return total;
}

static void tree_cpu_add(pid_t pid, void *arg)
{
    *(uint64_t *)arg += tree_cpu_ns(pid);
}

static int cpu_main(int argc, char **argv)
{
    long wait_ms = 0;
    if (argc >= 2 && strcmp(argv[0], "-w") == 0) {
        wait_ms = num_arg(argv[1], 0, 600000, "-w");
        argc -= 2;
        argv += 2;
    }
    if (argc < 1) {
        fprintf(stderr, "usage: %s cpu [-w MS] PID...\n", PROG);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        pid_t pid = (pid_t)num_arg(argv[i], 1, 1 << 30, "PID");
        uint64_t until = now_ns() + (uint64_t)wait_ms * 1000000u;
        while (for_children(pid, NULL, NULL) > 0 && now_ns() < until)
            sleep_ms(10);
        if (for_children(pid, NULL, NULL) > 0 && wait_ms > 0)
            fprintf(stderr, "%s: cpu: process %d still has children after "
                    "%ld ms\n", PROG, (int)pid, wait_ms);
        printf("%llu\n", (unsigned long long)tree_cpu_ns(pid));
    }
    return 0;
}

/* ---- idle ------------------------------------------------------------ */

enum { M_USED, M_CONNECT, M_TLS_USED, M_TLS_HELLO };

struct held {
    int fd;
    SSL *ssl;
    int state;                  /* ST_CONNECT, ST_HANDSHAKE, ST_SEND,
                                   ST_ANSWER, ST_DONE */
    unsigned sent, got;
    unsigned char answer[8];
};

static unsigned char small_request[8 + SMALL_REQUEST];

/* One step of a held connection's opening; returns the interest, or 0
 * once it is done (and out of the epoll set). */
static uint32_t held_step(int mode, struct held *h)
{
    if (h->state == ST_CONNECT) {
        int err = connect_result(h->fd);
        if (err) {
            errno = err;
            die("connect");
        }
        if (mode == M_CONNECT)
            return 0;
        h->state = h->ssl ? ST_HANDSHAKE : ST_SEND;
        if (mode == M_TLS_HELLO) {
            /* The ClientHello is written into a memory BIO and sent from
             * there: this client never reads, so its handshake cannot go
             * on even when the server's answer is already in the socket.
             * That answer makes the socket readable. */
            BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
            char *hello;
            long len;
            if (rb == NULL || wb == NULL)
                die("BIO_new");
            SSL_set_bio(h->ssl, rb, wb);
            int rc = SSL_do_handshake(h->ssl);
            if (rc == 1 || SSL_get_error(h->ssl, rc) != SSL_ERROR_WANT_READ)
                tls_failed("the ClientHello", h->ssl, rc);
            len = BIO_get_mem_data(wb, &hello);
            if (len <= 0 || send(h->fd, hello, (size_t)len, MSG_NOSIGNAL) !=
                                len)
                die("sending the ClientHello");
            h->state = ST_ANSWER;
            return EPOLLIN;
        }
    }
    if (h->state == ST_ANSWER && mode == M_TLS_HELLO)
        return 0;               /* readable: the server has answered */
    if (h->state == ST_HANDSHAKE) {
        int rc = SSL_do_handshake(h->ssl);
        if (rc != 1)
            return tls_wants("the handshake", h->ssl, rc);
        h->state = ST_SEND;
    }
    if (h->state == ST_SEND) {
        int n;
        if (h->ssl) {
            n = SSL_write(h->ssl, small_request, sizeof small_request);
            if (n <= 0)
                return tls_wants("SSL_write", h->ssl, n);
        } else {
            n = (int)send(h->fd, small_request + h->sent,
                          sizeof small_request - h->sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN)
                    return EPOLLOUT;
                die("send");
            }
        }
        h->sent += (unsigned)n;
        if (h->sent < sizeof small_request)
            return EPOLLOUT;
        h->state = ST_ANSWER;
    }
    while (h->got < 8) {
        int n;
        if (h->ssl) {
            n = SSL_read(h->ssl, h->answer + h->got, (int)(8 - h->got));
            if (n <= 0)
                return tls_wants("SSL_read", h->ssl, n);
        } else {
            n = (int)read(h->fd, h->answer + h->got, 8 - h->got);
            if (n < 0 && errno == EAGAIN)
                return EPOLLIN;
            if (n <= 0) {
                fprintf(stderr, "%s: idle: a connection ended before its "
                        "answer\n", PROG);
                exit(1);
            }
        }
        h->got += (unsigned)n;
    }
    if (get_le64(h->answer) != SMALL_REQUEST) {
        fprintf(stderr, "%s: idle: a wrong answer\n", PROG);
        exit(1);
    }
    return 0;
}

/* Open n connections as mode says, at most IN_FLIGHT at a time. */
static void held_open(int mode, int port, SSL_CTX *ctx, struct held *hs,
                      int n)
{
    struct epoll_event evs[256];
    uint64_t limit = now_ns() + (uint64_t)WAIT_LIMIT_MS * 1000000u;
    int ep = epoll_create1(EPOLL_CLOEXEC), next = 0, busy = 0, done = 0;

    if (ep < 0)
        die("epoll_create1");
    while (done < n) {
        while (next < n && busy < IN_FLIGHT) {
            struct held *h = &hs[next];
            memset(h, 0, sizeof *h);
            h->fd = connect_start(port);
            h->ssl = ctx ? client_ssl(ctx, h->fd) : NULL;
            h->state = ST_CONNECT;
            ep_set(ep, EPOLL_CTL_ADD, h->fd, EPOLLOUT, (uint64_t)next);
            next++;
            busy++;
        }
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        if (now_ns() > limit) {
            fprintf(stderr, "%s: idle: %d of %d connections opened after "
                    "%d s: giving up\n", PROG, done, n, WAIT_LIMIT_MS / 1000);
            exit(1);
        }
        for (int i = 0; i < k; i++) {
            struct held *h = &hs[evs[i].data.u64];
            uint32_t want = held_step(mode, h);
            if (want == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                h->state = ST_DONE;
                busy--;
                done++;
            } else {
                ep_set(ep, EPOLL_CTL_MOD, h->fd, want, evs[i].data.u64);
            }
        }
    }
    close(ep);
}

static void held_close(struct held *hs, int n)
{
    for (int i = 0; i < n; i++) {
        SSL_free(hs[i].ssl);
        close(hs[i].fd);
    }
}

/* Wait until pid has settled: at least min_fds descriptors (at most
 * max_fds), the count unchanged, every thread asleep and its CPU time
 * still (less than 1 ms more) over 300 ms. Returns the count, or exits. */
static int wait_settled(pid_t pid, int min_fds, int max_fds, const char *when)
{
    uint64_t limit = now_ns() + (uint64_t)WAIT_LIMIT_MS * 1000000u;
    uint64_t last_cpu = 0;
    int last = -1, still = 0;

    while (now_ns() < limit) {
        int fds = fd_count(pid);
        uint64_t cpu = tree_cpu_ns(pid);
        if (fds < 0) {
            fprintf(stderr, "%s: idle: process %d is gone (%s)\n", PROG,
                    (int)pid, when);
            exit(1);
        }
        if (fds >= min_fds && fds <= max_fds && fds == last &&
            cpu - last_cpu < 1000000u && all_asleep(pid)) {
            if (++still == 3)
                return fds;
        } else {
            still = 0;
        }
        last = fds;
        last_cpu = cpu;
        sleep_ms(100);
    }
    fprintf(stderr, "%s: idle: process %d did not settle %s within %d s "
            "(%d descriptors, wanted %d to %d)\n", PROG, (int)pid, when,
            WAIT_LIMIT_MS / 1000, last, min_fds, max_fds);
    exit(1);
}

static int idle_main(int argc, char **argv)
{
    static const char *const modes[] = { "used", "connect", "tls-used",
                                         "tls-hello" };
    SSL_CTX *ctx = NULL;
    struct held *warm, *held;
    int mode = -1, port, pairs, warmup, base, fds0, fds1;
    long rss0, rss1, anon0, anon1;
    pid_t pid;

    if (argc != 5) {
        fprintf(stderr, "usage: %s idle used|connect|tls-used|tls-hello "
                "PID PORT PAIRS WARMUP\n", PROG);
        return 2;
    }
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[0], modes[i]) == 0)
            mode = i;
    if (mode < 0) {
        fprintf(stderr, "%s: idle: unknown mode '%s'\n", PROG, argv[0]);
        return 2;
    }
    pid = (pid_t)num_arg(argv[1], 1, 1 << 30, "PID");
    port = port_arg(argv[2]);
    pairs = (int)num_arg(argv[3], 1, 20000, "PAIRS");
    warmup = (int)num_arg(argv[4], 1, 5000, "WARMUP");
    if (mode == M_TLS_USED || mode == M_TLS_HELLO)
        ctx = client_ctx();
    put_le64(small_request, SMALL_REQUEST);
    memset(small_request + 8, 'x', SMALL_REQUEST);
    warm = calloc((size_t)warmup, sizeof *warm);
    held = calloc((size_t)pairs, sizeof *held);
    if (warm == NULL || held == NULL)
        die("calloc");

    base = wait_settled(pid, 0, 1 << 30, "before the warm-up");
    held_open(mode, port, ctx, warm, warmup);
    wait_settled(pid, base + warmup, 1 << 30, "after the warm-up");
    held_close(warm, warmup);
    /* A proxy may keep a few descriptors it used (a pool of pipes). */
    base = wait_settled(pid, 0, base + FD_SLACK, "after the warm-up closed");
    held_open(mode, port, ctx, warm, warmup);
    fds0 = wait_settled(pid, base + warmup, 1 << 30, "before the pairs");
    rss0 = status_kb(pid, "VmRSS");
    anon0 = status_kb(pid, "RssAnon");
    held_open(mode, port, ctx, held, pairs);
    fds1 = wait_settled(pid, fds0 + pairs, 1 << 30, "with the pairs");
    rss1 = status_kb(pid, "VmRSS");
    anon1 = status_kb(pid, "RssAnon");
    if (fd_count(pid) != fds1) {
        fprintf(stderr, "%s: idle: the proxy's descriptors changed while "
                "its memory was read\n", PROG);
        return 1;
    }
    if (rss0 < 0 || rss1 < 0) {
        fprintf(stderr, "%s: idle: cannot read VmRSS of %d\n", PROG, (int)pid);
        return 1;
    }
    printf("idle %s %d %d %d %ld %ld %.1f\n", modes[mode], pairs, fds0, fds1,
           rss0, rss1, (double)(rss1 - rss0) * 1024.0 / pairs);
    fprintf(stderr, "%s: idle %s: %d connections, %.2f descriptors each in "
            "the proxy; VmRSS %ld -> %ld kB (%.1f B each), RssAnon %ld -> "
            "%ld kB (%.1f B each)\n", PROG, modes[mode], pairs,
            (double)(fds1 - fds0) / pairs, rss0, rss1,
            (double)(rss1 - rss0) * 1024.0 / pairs, anon0, anon1,
            (double)(anon1 - anon0) * 1024.0 / pairs);
    fflush(stdout);
    held_close(held, pairs);
    held_close(warm, warmup);
    wait_settled(pid, 0, base + FD_SLACK, "after the pairs closed");
    SSL_CTX_free(ctx);
    free(held);
    free(warm);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "sink") == 0 && argc == 2)
        return sink_main();
    if (argc >= 2 && strcmp(argv[1], "stream") == 0)
        return stream_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "idle") == 0)
        return idle_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "cpu") == 0)
        return cpu_main(argc - 2, argv + 2);
    fprintf(stderr,
            "usage: %s sink\n"
            "       %s stream [--tls] PORT CONNS MIB\n"
            "       %s idle used|connect|tls-used|tls-hello PID PORT PAIRS "
            "WARMUP\n"
            "       %s cpu [-w MS] PID...\n", PROG, PROG, PROG, PROG);
    return 2;
}
