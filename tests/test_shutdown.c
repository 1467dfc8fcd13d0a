/*
 * test_shutdown.c - nc_loop_shutdown on one loop: new connections are
 * refused by the kernel at once, idle connections close at once with FIN,
 * a reply being sent arrives whole before the end of stream, what is
 * stuck is reset at the deadline, and nc_loop_run returns once every
 * on_close has run, exactly once each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLY_LEN (4u << 20)   /* far more than the socket buffers hold */
#define MAX_CONNS 16

struct rec {
    nc_conn *conn;
    int closes;
    nc_close_reason reason;
    int err;
};

struct srv {
    nc_loop *loop;
    nc_listener *l;
    nc_addr addr;
    struct rec recs[MAX_CONNS];
    size_t n;
    unsigned long closed;
    char *reply;           /* REPLY_LEN bytes, a pattern */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void srv_open(nc_conn *c, void *ud)
{
    struct srv *s = ud;
    int small = 4096;
    assert_true(s->n < MAX_CONNS);
    struct rec *r = &s->recs[s->n++];
    r->conn = c;
    nc_conn_set_data(c, r);
    /* A small send buffer keeps the reply queued in the library. */
    setsockopt(nc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

/* "R": send the big reply. Anything else is ignored. */
static size_t srv_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct srv *s = nc_loop_data(nc_conn_loop(c));
    (void)ud;
    if (memchr(data, 'R', len))
        assert_int_equal(nc_conn_write(c, s->reply, REPLY_LEN), 0);
    return len;
}

static void srv_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct rec *r = ud;
    struct srv *s = nc_loop_data(nc_conn_loop(c));
    r->closes++;
    r->reason = reason;
    r->err = err;
    r->conn = NULL;
    s->closed++;
}

static const nc_conn_callbacks srv_cbs = {
    .on_open = srv_open, .on_data = srv_data, .on_close = srv_close,
};

struct fixture {
    struct srv s;
    nc_timer *guard;
    bool guard_fired;
};

static void guard_cb(nc_timer *t, void *ud)
{
    struct fixture *f = ud;
    (void)t;
    f->guard_fired = true;
    nc_loop_stop(f->s.loop);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(nc_loop_new(&f->s.loop), 0);
    nc_loop_set_data(f->s.loop, &f->s);
    f->s.reply = malloc(REPLY_LEN);
    assert_non_null(f->s.reply);
    for (size_t i = 0; i < REPLY_LEN; i++)
        f->s.reply[i] = (char)('a' + i % 23);
    assert_int_equal(nc_listen(f->s.loop, "127.0.0.1:0", NULL, &srv_cbs,
                               &f->s, &f->s.l), 0);
    f->s.addr = listener_addr0(f->s.l);
    assert_int_equal(nc_timer_new(f->s.loop, guard_cb, f, &f->guard), 0);
    assert_int_equal(nc_timer_start(f->guard, 10000, 0), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nc_loop_free(f->s.loop);
    for (size_t i = 0; i < f->s.n; i++)
        assert_int_equal(f->s.recs[i].closes, 1);
    free(f->s.reply);
    free(f);
    return 0;
}

struct open_goal {
    struct fixture *f;
    size_t n;
};

static bool opened(void *arg)
{
    struct open_goal *g = arg;
    return g->f->s.n >= g->n;
}

/* Connect a client and wait until the server has opened it. */
static int connect_client(struct fixture *f, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t before = f->s.n;
    assert_true(fd >= 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    assert_int_equal(connect(fd, &f->s.addr.u.sa, f->s.addr.len), 0);
    struct open_goal g = { f, before + 1 };
    assert_true(run_until(f->s.loop, opened, &g, 2000));
    assert_int_equal(f->s.n, before + 1);
    return fd;
}

/* A client that asked for the big reply and does not read it yet: the
 * server holds most of it in its output queue. */
static int stuck_client(struct fixture *f, struct rec **r)
{
    int fd = connect_client(f, 4096);
    *r = &f->s.recs[f->s.n - 1];
    assert_int_equal(write(fd, "R", 1), 1);
    for (uint64_t until = now_ms() + 2000;
         nc_conn_queued((*r)->conn) == 0 && now_ms() < until;)
        nc_loop_run(f->s.loop, NC_RUN_NOWAIT);
    assert_true(nc_conn_queued((*r)->conn) > REPLY_LEN / 2);
    return fd;
}

/* Read until end of stream or error; returns the bytes read, or -errno
 * for an error (a reset). */
static long read_to_end(int fd, char *buf, size_t max)
{
    size_t got = 0;
    uint64_t until = now_ms() + 10000;
    for (;;) {
        if (!wait_readable(fd, (unsigned)(until - now_ms())) ||
            now_ms() >= until)
            return -ETIMEDOUT;
        ssize_t n = read(fd, buf + got, max - got);
        if (n == 0)
            return (long)got;
        if (n < 0)
            return -errno;
        got += (size_t)n;
        if (got == max)
            return (long)got;
    }
}

static int connect_errno(const nc_addr *a)
{
    int fd = client_connect(a);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return fd;
}

/* ---- the cases ----------------------------------------------------------- */

static void new_connections_are_refused_at_once(void **state)
{
    struct fixture *f = *state;
    nc_listener *ul;
    char path[64];
    snprintf(path, sizeof(path), "unix:/tmp/nc-shutdown-%d.sock", (int)getpid());
    assert_int_equal(nc_listen(f->s.loop, path, NULL, &srv_cbs, &f->s, &ul), 0);
    nc_addr ua = listener_addr0(ul);
    assert_int_equal(connect_errno(&f->s.addr), 0);   /* still listening */

    assert_int_equal(nc_loop_shutdown(f->s.loop, 5000), 0);
    /* Before the loop ran again: the kernel refuses, nothing is accepted
     * and dropped. */
    assert_int_equal(connect_errno(&f->s.addr), -ECONNREFUSED);
    assert_int_equal(connect_errno(&ua), -ENOENT);
    /* The connection made above waited in the backlog of a socket now
     * closed: the kernel reset it, and it was never accepted. */
    uint64_t t0 = now_ms();
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    assert_false(f->guard_fired);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(f->s.n, 0);
}

static void idle_closes_at_once_and_a_reply_arrives_whole(void **state)
{
    struct fixture *f = *state;
    struct rec *big;
    int idle = connect_client(f, 0);
    struct rec *idle_rec = &f->s.recs[f->s.n - 1];
    int fd = stuck_client(f, &big);

    assert_int_equal(nc_loop_shutdown(f->s.loop, 10000), 0);
    /* The idle one is closed inside the call: its end of stream is there
     * before the loop runs again. */
    assert_true(wait_readable(idle, 0));
    char c;
    assert_int_equal(read(idle, &c, 1), 0);
    close(idle);
    assert_non_null(big->conn);     /* still flushing */

    /* The loop flushes while the client reads; it returns once the reply
     * is out and closed. */
    char *buf = malloc(REPLY_LEN + 1);
    assert_non_null(buf);
    size_t got = 0;
    bool ended = false;
    for (uint64_t until = now_ms() + 10000; !ended && now_ms() < until;) {
        nc_loop_run(f->s.loop, NC_RUN_NOWAIT);
        ssize_t n = recv(fd, buf + got, REPLY_LEN + 1 - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            ended = true;
        else
            assert_true(errno == EAGAIN);
    }
    assert_true(ended);
    assert_int_equal(got, REPLY_LEN);
    assert_memory_equal(buf, f->s.reply, REPLY_LEN);
    free(buf);
    /* The reply was cut mid-stream, so the close lingers for the
     * client's end rather than risk a reset: it comes with close(). */
    assert_int_equal(big->closes, 0);
    close(fd);
    for (uint64_t until = now_ms() + 10000;
         big->closes == 0 && now_ms() < until;)
        nc_loop_run(f->s.loop, NC_RUN_ONCE);
    assert_int_equal(idle_rec->closes, 1);
    assert_int_equal(idle_rec->reason, NC_CLOSE_SHUTDOWN);
    assert_int_equal(idle_rec->err, 0);
    assert_int_equal(big->closes, 1);
    assert_int_equal(big->reason, NC_CLOSE_SHUTDOWN);
    assert_int_equal(big->err, 0);
}

struct drain {
    nc_watch *w;
    size_t got;
    bool eof;
};

static void drain_ready(nc_watch *w, int fd, unsigned events, void *ud)
{
    struct drain *d = ud;
    char buf[65536];
    (void)events;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
        d->got += (size_t)n;
    } else if (n == 0 || errno != EAGAIN) {
        d->eof = true;
        shutdown(fd, SHUT_WR);      /* our end: the server's close ends */
        nc_watch_close(w);
        d->w = NULL;
    }
}

/* The client reads in the same loop (a watcher); the run, FOREVER and
 * with the guard timer active, ends by itself once the reply is out. */
static void run_returns_once_the_last_on_close_ran(void **state)
{
    struct fixture *f = *state;
    struct rec *big;
    int fd = stuck_client(f, &big);
    struct drain d = { 0 };
    assert_int_equal(nc_watch_start(f->s.loop, fd, NC_READABLE, drain_ready,
                                    &d, &d.w), 0);
    assert_int_equal(nc_loop_shutdown(f->s.loop, 10000), 0);
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    assert_false(f->guard_fired);
    assert_int_equal(big->closes, 1);
    assert_int_equal(big->reason, NC_CLOSE_SHUTDOWN);
    nc_watch_close(d.w);
    char *buf = malloc(REPLY_LEN);
    assert_non_null(buf);
    long rest = d.eof ? 0 : read_to_end(fd, buf, REPLY_LEN);
    assert_true(rest >= 0);
    assert_int_equal(d.got + (size_t)rest, REPLY_LEN);
    free(buf);
    close(fd);
}

static void grace_deadline_resets_what_is_left(void **state)
{
    struct fixture *f = *state;
    struct rec *big;
    int fd = stuck_client(f, &big);
    uint64_t t0 = now_ms();
    assert_int_equal(nc_loop_shutdown(f->s.loop, 100), 0);
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    uint64_t took = now_ms() - t0;
    assert_false(f->guard_fired);
    assert_true(took >= 100);
    assert_true(took < 5000);
    assert_int_equal(big->closes, 1);
    assert_int_equal(big->reason, NC_CLOSE_SHUTDOWN);
    assert_int_equal(big->err, -ETIMEDOUT);
    char *buf = malloc(REPLY_LEN);
    assert_non_null(buf);
    long n = read_to_end(fd, buf, REPLY_LEN);
    assert_int_equal(n, -ECONNRESET);
    free(buf);
    close(fd);
}

static void a_second_call_only_brings_the_deadline_closer(void **state)
{
    struct fixture *f = *state;
    struct rec *a, *b;
    int fa = stuck_client(f, &a);
    int fb = stuck_client(f, &b);

    /* Later than the first: ignored (the guard would fire first). */
    assert_int_equal(nc_loop_shutdown(f->s.loop, 150), 0);
    assert_int_equal(nc_loop_shutdown(f->s.loop, 60000), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    assert_false(f->guard_fired);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(a->err, -ETIMEDOUT);
    assert_int_equal(b->err, -ETIMEDOUT);
    close(fa);
    close(fb);

    /* Completed: a new call starts a new shutdown, which ends at once. */
    assert_int_equal(nc_loop_shutdown(f->s.loop, 60000), 0);
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    assert_false(f->guard_fired);
}

static void a_closer_deadline_resets_now(void **state)
{
    struct fixture *f = *state;
    struct rec *a;
    int fa = stuck_client(f, &a);
    assert_int_equal(nc_loop_shutdown(f->s.loop, 60000), 0);
    nc_loop_run(f->s.loop, NC_RUN_NOWAIT);
    assert_non_null(a->conn);
    assert_int_equal(nc_loop_shutdown(f->s.loop, 0), 0);   /* "Ctrl-C again" */
    uint64_t t0 = now_ms();
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    assert_true(now_ms() - t0 < 2000);
    assert_false(f->guard_fired);
    assert_int_equal(a->reason, NC_CLOSE_SHUTDOWN);
    assert_int_equal(a->err, -ETIMEDOUT);
    close(fa);
}

/* An outgoing connection made during the shutdown is closed too once it
 * opens, and a user's own close of a flushing one reports once. */
struct outgoing {
    int closes;
    nc_close_reason reason;
    bool opened;
};

static void out_open(nc_conn *c, void *ud)
{
    (void)c;
    ((struct outgoing *)ud)->opened = true;
}

static void out_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct outgoing *o = ud;
    (void)c;
    (void)err;
    o->closes++;
    o->reason = reason;
}

static void connections_made_during_shutdown_are_closed(void **state)
{
    struct fixture *f = *state;
    static const nc_conn_callbacks out_cbs = {
        .on_open = out_open, .on_close = out_close,
    };
    struct rec *a;
    int fa = stuck_client(f, &a);
    /* A plain socket to connect to, outside the loop. */
    nc_loop *other;
    nc_listener *ol;
    assert_int_equal(nc_loop_new(&other), 0);
    assert_int_equal(nc_listen(other, "127.0.0.1:0", NULL, NULL, NULL, &ol), 0);
    nc_addr oa = listener_addr0(ol);
    char target[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&oa, target, sizeof(target)) > 0);

    assert_int_equal(nc_loop_shutdown(f->s.loop, 60000), 0);
    struct outgoing o = { 0 };
    assert_int_equal(nc_connect(f->s.loop, target, NULL, &out_cbs, &o, NULL), 0);
    /* The user closes the flushing one itself: still one on_close. */
    nc_conn_abort(a->conn);
    assert_int_equal(nc_loop_run(f->s.loop, NC_RUN_FOREVER), 0);
    assert_false(f->guard_fired);
    assert_true(o.opened);
    assert_int_equal(o.closes, 1);
    assert_int_equal(o.reason, NC_CLOSE_SHUTDOWN);
    assert_int_equal(a->closes, 1);
    assert_int_equal(a->reason, NC_CLOSE_LOCAL);
    nc_loop_free(other);
    close(fa);
}

static void bad_arguments_change_nothing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(nc_loop_shutdown(NULL, 0), -EINVAL);
    assert_int_equal(nc_loop_shutdown(f->s.loop, 0x80000000u), -EINVAL);
    /* Still serving. */
    int fd = connect_client(f, 0);
    close(fd);
    /* A loop freed in the middle of a shutdown closes what is left. */
    struct rec *a;
    int fa = stuck_client(f, &a);
    assert_int_equal(nc_loop_shutdown(f->s.loop, 60000), 0);
    close(fa);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(new_connections_are_refused_at_once),
        CASE(idle_closes_at_once_and_a_reply_arrives_whole),
        CASE(run_returns_once_the_last_on_close_ran),
        CASE(grace_deadline_resets_what_is_left),
        CASE(a_second_call_only_brings_the_deadline_closer),
        CASE(a_closer_deadline_resets_now),
        CASE(connections_made_during_shutdown_are_closed),
        CASE(bad_arguments_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
