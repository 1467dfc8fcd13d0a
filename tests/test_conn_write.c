/* test_conn_write.c - a connection's output path: writev in order across
 * partial sends and more buffers than IOV_MAX, bad lengths refused, the
 * kernel's own errno on a failed send (the same on_close reports), no
 * SIGPIPE ever, a flush that finds the socket full, and the peer's end of
 * stream while answers are still queued. Real sockets. This program does
 * not ignore SIGPIPE: a send without MSG_NOSIGNAL would kill it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"
#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a server whose on_open hands the connection to the test ----------- */

struct held {
    nc_conn *c;
    int closes;
    nc_close_reason reason;
    int err;
};

static void held_open(nc_conn *c, void *ud)
{
    ((struct held *)ud)->c = c;
}

static void held_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    struct held *h = ud;
    h->closes++;
    h->reason = reason;
    h->err = err;
    h->c = NULL;
}

static size_t held_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)c;
    (void)data;
    (void)ud;
    return len;
}

static const nc_conn_callbacks held_cbs = {
    .on_open = held_open, .on_data = held_data, .on_close = held_close
};

struct fixture {
    nc_loop *loop;
    nc_listener *l;
    struct held h;
    int fd;          /* the client end */
};

static bool held_opened(void *arg)
{
    return ((struct held *)arg)->c != NULL;
}

static bool held_closed(void *arg)
{
    return ((struct held *)arg)->closes > 0;
}

static int setup_with(void **state, const nc_listener_options *o)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(nc_loop_new(&f->loop), 0);
    assert_int_equal(nc_listen(f->loop, "127.0.0.1:0", o, &held_cbs,
                               &f->h, &f->l), 0);
    nc_addr a = listener_addr0(f->l);
    f->fd = client_connect(&a);
    assert_true(f->fd >= 0);
    assert_true(run_until(f->loop, held_opened, &f->h, 3000));
    *state = f;
    return 0;
}

/* Small kernel buffers: writes queue in the library soon. */
static int setup(void **state)
{
    setup_with(state, NULL);
    struct fixture *f = *state;
    int small = 4096;
    setsockopt(nc_conn_fd(f->h.c), SOL_SOCKET, SO_SNDBUF, &small,
               sizeof(small));
    return 0;
}

/* A high-water mark above everything queued: reading never pauses. */
static int setup_no_backpressure(void **state)
{
    nc_listener_options o = { .conn = { .high_water = 1u << 30 } };
    return setup_with(state, &o);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->fd >= 0)
        close(f->fd);
    nc_loop_free(f->loop);
    assert_true(f->h.closes <= 1);
    free(f);
    return 0;
}

/* Read len bytes from the client end while running the loop. */
struct sink {
    int fd;
    char *buf;
    size_t len, got;
};

static bool sink_step(void *arg)
{
    struct sink *s = arg;
    while (s->got < s->len) {
        ssize_t n = recv(s->fd, s->buf + s->got, s->len - s->got,
                         MSG_DONTWAIT);
        if (n <= 0)
            break;
        s->got += (size_t)n;
    }
    return s->got == s->len;
}

static char pattern_at(size_t i)
{
    return (char)(i * 7 + i / 251);
}

/* Several buffers, much more than the socket takes at once: the stream
 * arrives in order, the part sent at once skipped in what is queued. */
static void writev_keeps_order_across_partial_sends(void **state)
{
    struct fixture *f = *state;
    enum { PARTS = 5, PART = 300000 };
    char *src = malloc(PARTS * PART);
    assert_non_null(src);
    for (size_t i = 0; i < PARTS * PART; i++)
        src[i] = pattern_at(i);
    struct iovec iov[PARTS];
    for (int i = 0; i < PARTS; i++)
        iov[i] = (struct iovec){ src + i * PART, PART };
    assert_int_equal(nc_conn_writev(f->h.c, iov, PARTS), 0);
    assert_true(nc_conn_queued(f->h.c) > 0);
    /* The caller's buffers are its own again. */
    memset(src, 0, PARTS * PART);
    struct sink s = { f->fd, malloc(PARTS * PART), PARTS * PART, 0 };
    assert_true(run_until(f->loop, sink_step, &s, 10000));
    for (size_t i = 0; i < PARTS * PART; i++)
        if (s.buf[i] != pattern_at(i))
            fail_msg("byte %zu differs", i);
    assert_int_equal(nc_conn_queued(f->h.c), 0);
    free(s.buf);
    free(src);
}

/* More buffers than one sendmsg() may carry. */
static void writev_with_more_than_iov_max_buffers(void **state)
{
    struct fixture *f = *state;
    enum { CNT = IOV_MAX + 100 };
    static char bytes[CNT];
    static struct iovec iov[CNT];
    for (int i = 0; i < CNT; i++) {
        bytes[i] = pattern_at((size_t)i);
        iov[i] = (struct iovec){ &bytes[i], 1 };
    }
    assert_int_equal(nc_conn_writev(f->h.c, iov, CNT), 0);
    struct sink s = { f->fd, malloc(CNT), CNT, 0 };
    assert_true(run_until(f->loop, sink_step, &s, 5000));
    assert_memory_equal(s.buf, bytes, CNT);
    free(s.buf);
}

/* Lengths whose sum overflows, a NULL base with a length, a negative
 * count: refused, nothing sent, the connection unchanged. */
static void writev_refuses_bad_lengths_and_sends_nothing(void **state)
{
    struct fixture *f = *state;
    char a = 'a';
    struct iovec big[2] = { { &a, SIZE_MAX / 2 + 1 }, { &a, SIZE_MAX / 2 + 1 } };
    assert_int_equal(nc_conn_writev(f->h.c, big, 2), -EINVAL);
    struct iovec nul[1] = { { NULL, 1 } };
    assert_int_equal(nc_conn_writev(f->h.c, nul, 1), -EINVAL);
    assert_int_equal(nc_conn_writev(f->h.c, big, -1), -EINVAL);
    assert_int_equal(nc_conn_writev(f->h.c, NULL, 1), -EINVAL);
    assert_int_equal(nc_conn_writev(f->h.c, NULL, 0), 0);
    assert_int_equal(nc_conn_queued(f->h.c), 0);
    struct iovec ok[2] = { { "ab", 2 }, { "cd", 2 } };
    assert_int_equal(nc_conn_writev(f->h.c, ok, 2), 0);
    char buf[4];
    struct sink s = { f->fd, buf, 4, 0 };
    assert_true(run_until(f->loop, sink_step, &s, 3000));
    assert_memory_equal(buf, "abcd", 4);
    assert_false(wait_readable(f->fd, 0));   /* nothing else came */
}

/* After the peer's reset the kernel says ECONNRESET: the write returns
 * exactly that, and on_close reports the same. (On io_uring the armed
 * receive is the first to hear of the reset and takes the ECONNRESET;
 * the write then gets the kernel's EPIPE, and on_close reports that.) */
static void failed_send_returns_the_kernels_errno(void **state)
{
    struct fixture *f = *state;
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg,
                                sizeof(lg)), 0);
    close(f->fd);
    f->fd = -1;
    /* Wait until the server's socket has seen the reset. */
    struct pollfd p = { .fd = nc_conn_fd(f->h.c), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 3000), 1);
    nc_conn *c = f->h.c;
    int rc = nc_conn_write(c, "x", 1);
    if (nc_loop_backend(f->loop) == NC_BACKEND_IO_URING && rc == -EPIPE)
        rc = -EPIPE;
    else
        assert_int_equal(rc, -ECONNRESET);
    assert_int_equal(nc_conn_write(c, "x", 1), -ENOTCONN);
    assert_true(run_until(f->loop, held_closed, &f->h, 3000));
    assert_int_equal(f->h.reason, NC_CLOSE_RESET);
    assert_int_equal(f->h.err, rc);
}

/* A writable event that finds the socket full again (the kernel reports
 * writability at a third of the buffer; a spurious wake-up): the flush
 * sends nothing and must wait, not fail. */
static void flush_into_a_full_socket_waits(void **state)
{
    struct fixture *f = *state;
    static char chunk[65536];
    for (int i = 0; i < 32; i++)    /* 2 MiB: more than both buffers */
        assert_int_equal(nc_conn_write(f->h.c, chunk, sizeof(chunk)), 0);
    /* Flush until the kernel takes nothing more: that flush met EAGAIN. */
    size_t queued;
    do {
        queued = nc_conn_queued(f->h.c);
        nc__conn_flush(f->h.c);
        assert_int_equal(f->h.closes, 0);
        assert_non_null(f->h.c);
    } while (nc_conn_queued(f->h.c) < queued);
    assert_true(queued > 0);
    /* And everything still arrives. */
    size_t total = 0;
    while (total < queued) {
        run_until(f->loop, flag_set, &(bool){ false }, 5);
        ssize_t n = recv(f->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n > 0)
            total += (size_t)n;
    }
    assert_int_equal(f->h.closes, 0);
}

/* Close, then abort, then close again, all before the loop runs (as one
 * callback might): one close, one on_close, the pointer valid until the
 * iteration ends. */
static void closing_twice_reports_once(void **state)
{
    struct fixture *f = *state;
    nc_conn *c = f->h.c;
    nc_conn_close(c);
    nc_conn_abort(c);
    nc_conn_close(c);
    assert_int_equal(nc_conn_write(c, "x", 1), -ENOTCONN);
    assert_int_equal(nc_conn_fd(c), -1);
    assert_true(run_until(f->loop, held_closed, &f->h, 3000));
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(f->h.closes, 1);
    assert_int_equal(f->h.reason, NC_CLOSE_LOCAL);
    char c1;
    assert_int_equal(read_full(f->fd, &c1, 1, 2000), 0);
}

/* ---- no SIGPIPE, whatever the kernel says ------------------------------------ */

static size_t never_called(nc_conn *c, const void *d, size_t n, void *ud)
{
    (void)c;
    (void)d;
    (void)ud;
    return n;
}

struct pipe_case {
    int first, second;
    int closes;
};

/* keep_half_open's end call after the peer closed completely: the first
 * write draws a reset, the next one meets EPIPE in the kernel. */
static size_t write_twice_at_end(nc_conn *c, const void *d, size_t n,
                                 void *ud)
{
    (void)d;
    struct pipe_case *pc = ud;
    if (!nc_conn_eof(c))
        return n;
    pc->first = nc_conn_write(c, "first", 5);
    /* Give the reset time to come back over loopback. */
    struct pollfd p = { .fd = nc_conn_fd(c), .events = POLLERR };
    poll(&p, 1, 1000);
    pc->second = nc_conn_write(c, "second", 6);
    return n;
}

static void pc_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    (void)c;
    (void)r;
    (void)err;
    ((struct pipe_case *)ud)->closes++;
}

static bool pc_closed(void *arg)
{
    return ((struct pipe_case *)arg)->closes > 0;
}

static void child_writes_to_a_closed_peer(void)
{
    signal(SIGPIPE, SIG_DFL);
    nc_loop *loop;
    if (nc_loop_new(&loop) < 0)
        _exit(2);
    nc_conn_callbacks cbs = { .on_data = write_twice_at_end,
                              .on_close = pc_close };
    nc_listener_options o = { .conn = { .keep_half_open = true } };
    struct pipe_case pc = { 0 };
    nc_listener *l;
    if (nc_listen(loop, "127.0.0.1:0", &o, &cbs, &pc, &l) < 0)
        _exit(3);
    nc_addr a = listener_addr0(l);
    int fd = client_connect(&a);
    if (fd < 0)
        _exit(4);
    close(fd);
    if (!run_until(loop, pc_closed, &pc, 3000))
        _exit(5);
    /* Whatever the kernel said, it came back as an error, not a signal. */
    if (pc.first != 0 && pc.first != -ECONNRESET && pc.first != -EPIPE)
        _exit(6);
    nc_loop_free(loop);
    _exit(0);
}

static void no_sigpipe_when_writing_to_a_closed_peer(void **state)
{
    (void)state;
    (void)never_called;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_writes_to_a_closed_peer();
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("killed by signal %d (SIGPIPE is %d)", WTERMSIG(status),
                 SIGPIPE);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- the peer's end of stream while answers are queued ---------------------- */

/* The server has a large answer queued when the client half-closes: the
 * whole answer arrives, then the end of stream, then on_close(PEER). */
static void end_of_stream_with_queued_output_flushes_then_closes(void **state)
{
    struct fixture *f = *state;
    /* More than the kernel's buffers on both sides can hold (loopback
     * autotuning grows them to a few MiB). */
    enum { SIZE = 32 << 20 };
    char *src = malloc(SIZE);
    assert_non_null(src);
    for (size_t i = 0; i < SIZE; i++)
        src[i] = pattern_at(i);
    assert_int_equal(nc_conn_write(f->h.c, src, SIZE), 0);
    assert_true(nc_conn_queued(f->h.c) > 0);
    assert_int_equal(shutdown(f->fd, SHUT_WR), 0);
    /* The server reads the end of stream first, with most still queued. */
    run_until(f->loop, flag_set, &(bool){ false }, 50);
    assert_int_equal(f->h.closes, 0);
    assert_true(nc_conn_eof(f->h.c));
    assert_true(nc_conn_queued(f->h.c) > 0);
    struct sink s = { f->fd, malloc(SIZE), SIZE, 0 };
    assert_true(run_until(f->loop, sink_step, &s, 10000));
    assert_memory_equal(s.buf, src, SIZE);
    assert_true(run_until(f->loop, held_closed, &f->h, 3000));
    assert_int_equal(f->h.reason, NC_CLOSE_PEER);
    char c;
    assert_int_equal(read_full(f->fd, &c, 1, 2000), 0);
    free(s.buf);
    free(src);
}

/* ---- a write's free_fn may call back into the library ----------------- */

struct owned {
    nc_conn *c;
    char *data;
    int frees;
    int action;             /* 0 nothing, 1 nc_conn_close, 2 nc_conn_abort */
    int write_rc;           /* what a write from inside free_fn returned */
};

static void owned_free(void *data, void *arg)
{
    struct owned *o = arg;
    assert_ptr_equal(data, o->data);
    o->frees++;
    if (o->action == 1)
        nc_conn_close(o->c);
    else if (o->action == 2)
        nc_conn_abort(o->c);
    o->write_rc = nc_conn_write(o->c, "late", 4);
}

enum { BIG = 1 << 20, SMALL = 1000 };

/* Queue a 1 MiB copied write, then two owned buffers of SMALL bytes: a,
 * whose free_fn aborts the connection, and b, whose free_fn closes it.
 * Returns the copied buffer, for the caller to free. */
static char *queue_owned_behind_a_copy(struct fixture *f, struct owned *a,
                                       struct owned *b)
{
    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'b', BIG);
    assert_int_equal(nc_conn_write(f->h.c, big, BIG), 0);
    assert_true(nc_conn_queued(f->h.c) > 0);
    *a = (struct owned){ .c = f->h.c, .data = malloc(SMALL), .action = 2 };
    *b = (struct owned){ .c = f->h.c, .data = malloc(SMALL), .action = 1 };
    memset(a->data, 'a', SMALL);
    memset(b->data, 'c', SMALL);
    assert_int_equal(nc_conn_write_owned(f->h.c, a->data, SMALL, owned_free,
                                         a), 0);
    assert_int_equal(nc_conn_write_owned(f->h.c, b->data, SMALL, owned_free,
                                         b), 0);
    return big;
}

/* Owned buffers queued behind a large copied write; the first one's
 * free_fn aborts the connection while the queue is being consumed (one
 * send took the end of the copy and both owned buffers). Every free_fn
 * runs once, the connection closes once, nothing is touched after. */
static void free_fn_may_abort_while_its_queue_is_consumed(void **state)
{
    struct fixture *f = *state;
    struct owned a, b;
    char *big = queue_owned_behind_a_copy(f, &a, &b);
    struct sink s = { f->fd, malloc(BIG + 2 * SMALL), BIG + 2 * SMALL, 0 };
    run_until(f->loop, held_closed, &f->h, 200);
    while (!held_closed(&f->h)) {
        sink_step(&s);
        run_until(f->loop, held_closed, &f->h, 20);
        if (s.got == s.len)
            break;
    }
    assert_true(run_until(f->loop, held_closed, &f->h, 3000));
    assert_int_equal(a.frees, 1);
    assert_int_equal(b.frees, 1);
    assert_int_equal(a.write_rc, -ENOTCONN);
    assert_int_equal(b.write_rc, -ENOTCONN);
    assert_int_equal(f->h.closes, 1);
    assert_int_equal(f->h.reason, NC_CLOSE_LOCAL);
    free(a.data);
    free(b.data);
    free(s.buf);
    free(big);
}

/* Owned buffers dropped by an abort: each free_fn closes and writes to
 * the connection being closed, which is refused, and runs once. */
static void free_fn_of_a_dropped_buffer_may_close_again(void **state)
{
    struct fixture *f = *state;
    struct owned a, b;
    char *big = queue_owned_behind_a_copy(f, &a, &b);
    nc_conn_abort(f->h.c);
    assert_true(run_until(f->loop, held_closed, &f->h, 3000));
    assert_int_equal(a.frees, 1);
    assert_int_equal(b.frees, 1);
    assert_int_equal(a.write_rc, -ENOTCONN);
    assert_int_equal(f->h.closes, 1);
    free(a.data);
    free(b.data);
    free(big);
}

/* ---- free_fn that writes the next buffer --------------------------------- */

struct chain {
    nc_conn *c;
    int left, depth, max_depth, freed;
    bool in_write, nested;
    size_t sent;
};

static void chain_free(void *data, void *arg);

static void chain_next(struct chain *ch)
{
    char *b = malloc(1000);
    assert_non_null(b);
    memset(b, 'c', 1000);
    ch->in_write = true;
    int rc = nc_conn_write_owned(ch->c, b, 1000, chain_free, ch);
    ch->in_write = false;
    assert_int_equal(rc, 0);
    ch->sent += 1000;
}

static void chain_free(void *data, void *arg)
{
    struct chain *ch = arg;
    free(data);
    ch->freed++;
    if (ch->in_write)
        ch->nested = true;
    if (++ch->depth > ch->max_depth)
        ch->max_depth = ch->depth;
    if (ch->left > 0) {
        ch->left--;
        chain_next(ch);
    }
    ch->depth--;
}

struct chain_sink {
    struct chain *ch;
    int fd;
    size_t got;
};

static bool chain_read(void *arg)
{
    struct chain_sink *k = arg;
    char buf[65536];
    ssize_t n;
    while ((n = recv(k->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        k->got += (size_t)n;
    /* Every byte read and every free_fn run (the last one runs after its
     * bytes went). */
    return k->ch->left == 0 && k->got == k->ch->sent && k->ch->freed == 2001;
}

/* Each free_fn writes the next buffer, as the header allows: however
 * many buffers the kernel takes at once, free_fn runs from the loop,
 * never inside the write (it recursed once per buffer, and 200 MiB of
 * small buffers overflowed the stack), on both backends. */
static void a_free_fn_that_writes_the_next_buffer_never_recurses(
    void **state)
{
    struct fixture *f = *state;
    struct chain ch = { .c = f->h.c, .left = 2000 };
    chain_next(&ch);
    struct chain_sink k = { &ch, f->fd, 0 };
    assert_true(run_until(f->loop, chain_read, &k, 10000));
    assert_int_equal(k.got, 2001u * 1000);
    assert_false(ch.nested);
    assert_int_equal(ch.max_depth, 1);
}

/* ---- a last word before an abort --------------------------------------- */

static size_t bye_then_abort(nc_conn *c, const void *data, size_t len,
                             void *ud)
{
    (void)data;
    (void)ud;
    assert_int_equal(nc_conn_write(c, "BYE", 3), 0);
    nc_conn_abort(c);
    return len;
}

/* on_data writes a last word and aborts: the peer reads it, then the
 * reset, on both backends (io_uring, which sends a callback's writes
 * with the next submission, dropped it). */
static void a_last_word_before_an_abort_reaches_the_peer(void **state)
{
    (void)state;
    nc_loop *loop;
    nc_listener *l;
    struct held h = { 0 };
    nc_conn_callbacks cbs = { .on_open = held_open, .on_data = bye_then_abort,
                              .on_close = held_close };
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", NULL, &cbs, &h, &l), 0);
    nc_addr a = listener_addr0(l);
    int fd = client_connect(&a);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, "x", 1, 0), 1);
    assert_true(run_until(loop, held_closed, &h, 3000));
    assert_int_equal(h.reason, NC_CLOSE_LOCAL);
    char b[3];
    assert_int_equal(read_full(fd, b, 3, 3000), 3);
    assert_memory_equal(b, "BYE", 3);
    char c;
    assert_true(wait_readable(fd, 3000));
    assert_int_equal(recv(fd, &c, 1, 0), -1);
    assert_int_equal(errno, ECONNRESET);
    close(fd);
    nc_loop_free(loop);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(writev_keeps_order_across_partial_sends),
        T(writev_with_more_than_iov_max_buffers),
        T(writev_refuses_bad_lengths_and_sends_nothing),
        T(failed_send_returns_the_kernels_errno),
        T(flush_into_a_full_socket_waits),
        T(closing_twice_reports_once),
        T(free_fn_may_abort_while_its_queue_is_consumed),
        T(free_fn_of_a_dropped_buffer_may_close_again),
        cmocka_unit_test(no_sigpipe_when_writing_to_a_closed_peer),
        cmocka_unit_test(a_last_word_before_an_abort_reaches_the_peer),
        cmocka_unit_test_setup_teardown(
            a_free_fn_that_writes_the_next_buffer_never_recurses,
            setup_no_backpressure, teardown),
        cmocka_unit_test_setup_teardown(
            end_of_stream_with_queued_output_flushes_then_closes,
            setup_no_backpressure, teardown),
    };
    return cmocka_run_group_tests_name("conn_write", tests, NULL, NULL);
}
