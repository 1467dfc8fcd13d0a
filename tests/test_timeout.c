/* test_timeout.c - connection timeouts on the per-loop timeout lists:
 * idle timeouts that received bytes restart, deadlines that they do not,
 * the bound on a graceful close (write progress keeps it, a stalled peer
 * ends it), the linger after FIN, and thousands of connections with mixed
 * timeouts closed exactly once, never early. Real sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- a client that sends one byte every period, driven by a timer -------- */

struct trickle {
    int fd;
    unsigned sent;
    unsigned max;           /* stop after this many bytes */
};

static void trickle_tick(nc_timer *t, void *ud)
{
    struct trickle *tr = ud;
    if (tr->sent < tr->max && send(tr->fd, "x", 1, MSG_NOSIGNAL) == 1)
        tr->sent++;
    if (tr->sent >= tr->max)
        nc_timer_stop(t);
}

struct fixture {
    nc_loop *loop;
    struct server srv;
};

static struct fixture *start(const nc_listener_options *o,
                             enum server_mode mode)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(nc_loop_new(&f->loop), 0);
    assert_int_equal(server_start(&f->srv, f->loop, "127.0.0.1:0", o, mode),
                     0);
    return f;
}

static void finish(struct fixture *f)
{
    nc_loop_free(f->loop);
    assert_true(server_all_closed_once(&f->srv));
    server_free(&f->srv);
    free(f);
}

static bool closed_within(struct fixture *f, unsigned long n, unsigned ms)
{
    struct count_goal g = { &f->srv.closed, n };
    return run_until(f->loop, count_reached, &g, ms);
}

/* Bytes arriving every 40 ms keep a 150 ms idle timeout from firing; once
 * they stop, it fires, not before 150 ms after the last one. */
static void received_bytes_restart_the_idle_timeout(void **state)
{
    (void)state;
    nc_listener_options o = { .conn = { .idle_timeout_ms = 150 } };
    struct fixture *f = start(&o, SERVER_SINK);
    struct trickle tr = { .fd = client_connect(&f->srv.addr), .max = 10 };
    assert_true(tr.fd >= 0);
    nc_timer *t;
    assert_int_equal(nc_timer_new(f->loop, trickle_tick, &tr, &t), 0);
    assert_int_equal(nc_timer_start(t, 40, 40), 0);
    /* 10 bytes, 40 ms apart: 400 ms, well past one idle timeout. */
    assert_false(closed_within(f, 1, 380));
    assert_int_equal(f->srv.closed, 0);
    assert_true(closed_within(f, 1, 3000));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_IDLE);
    assert_int_equal(f->srv.last_err, -ETIMEDOUT);
    assert_int_equal(tr.sent, 10);
    assert_true(f->srv.recs[0]->bytes == 10);
    nc_timer_free(t);
    close(tr.fd);
    finish(f);
}

/* ---- deadlines -------------------------------------------------------------- */

struct deadline_server {
    uint32_t ms;
    uint64_t set_at;
};

static struct deadline_server dl;

static void dl_open(nc_conn *c, void *ud)
{
    (void)ud;
    dl.set_at = mono_ms();
    assert_int_equal(nc_conn_set_deadline(c, dl.ms), 0);
}

static size_t dl_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)c;
    (void)data;
    (void)ud;
    return len;
}

struct dl_close {
    int calls;
    nc_close_reason reason;
    int err;
    uint64_t at;
};

static void dl_closed(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    struct dl_close *d = ud;
    d->calls++;
    d->reason = reason;
    d->err = err;
    d->at = mono_ms();
}

static bool dl_done(void *arg)
{
    return ((struct dl_close *)arg)->calls > 0;
}

/* A trickling peer restarts the idle timeout forever, but not the
 * deadline ("this message must be complete by then"). */
static void deadline_ends_a_trickling_peer(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_conn_callbacks cbs = { .on_open = dl_open, .on_data = dl_data,
                              .on_close = dl_closed };
    /* Idle 1 s, a byte every 30 ms: a busy machine that stalls the loop
     * for 100 ms must not let the idle timeout end it first. */
    nc_listener_options o = { .conn = { .idle_timeout_ms = 1000 } };
    struct dl_close d = { 0 };
    nc_listener *l;
    dl.ms = 250;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, &d, &l), 0);
    nc_addr a = listener_addr0(l);
    struct trickle tr = { .fd = client_connect(&a), .max = 1000 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, trickle_tick, &tr, &t), 0);
    assert_int_equal(nc_timer_start(t, 30, 30), 0);
    assert_true(run_until(loop, dl_done, &d, 3000));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.reason, NC_CLOSE_DEADLINE);
    assert_int_equal(d.err, -ETIMEDOUT);
    assert_true(d.at - dl.set_at >= 250);    /* never early */
    assert_true(tr.sent >= 5);               /* it kept sending meanwhile */
    nc_timer_free(t);
    close(tr.fd);
    nc_loop_free(loop);
}

static void dl_open_clear(nc_conn *c, void *ud)
{
    (void)ud;
    assert_int_equal(nc_conn_set_deadline(c, 50), 0);
    assert_int_equal(nc_conn_set_deadline(c, 0), 0);   /* removed */
    assert_int_equal(nc_conn_set_deadline(c, 0x80000000u), -EINVAL);
}

static void removed_deadline_does_not_fire(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_conn_callbacks cbs = { .on_open = dl_open_clear, .on_data = dl_data,
                              .on_close = dl_closed };
    struct dl_close d = { 0 };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", NULL, &cbs, &d, &l), 0);
    nc_addr a = listener_addr0(l);
    int fd = client_connect(&a);
    assert_true(fd >= 0);
    assert_false(run_until(loop, dl_done, &d, 200));
    close(fd);
    assert_true(run_until(loop, dl_done, &d, 3000));
    assert_int_equal(d.reason, NC_CLOSE_PEER);
    nc_loop_free(loop);
}

/* ---- the bound on a graceful close ------------------------------------------ */

struct bulk {
    size_t size;
    bool closed_locally;
};

static struct bulk bulk;

/* on_open: queue a large answer and close gracefully at once. */
static void bulk_open(nc_conn *c, void *ud)
{
    (void)ud;
    int small = 4096;
    setsockopt(nc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    char *buf = malloc(bulk.size);
    assert_non_null(buf);
    for (size_t i = 0; i < bulk.size; i++)
        buf[i] = (char)i;
    assert_int_equal(nc_conn_write(c, buf, bulk.size), 0);
    free(buf);
    nc_conn_close(c);
}

struct reader {
    int fd;
    size_t got;
    size_t per_tick;
    bool eof;
    bool bad;
};

static void reader_tick(nc_timer *t, void *ud)
{
    struct reader *r = ud;
    char buf[65536];
    size_t want = r->per_tick < sizeof(buf) ? r->per_tick : sizeof(buf);
    ssize_t n = recv(r->fd, buf, want, MSG_DONTWAIT);
    if (n > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (char)(r->got + (size_t)i))
                r->bad = true;
        r->got += (size_t)n;
    } else if (n == 0) {
        r->eof = true;
        nc_timer_stop(t);
    }
}

static bool reader_done(void *arg)
{
    return ((struct reader *)arg)->eof;
}

/* A slow but steady reader: the close takes several idle timeouts, and
 * write progress keeps it alive until everything is delivered. */
static void graceful_close_waits_for_a_slow_reader(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_conn_callbacks cbs = { .on_open = bulk_open, .on_close = dl_closed };
    nc_listener_options o = { .conn = { .idle_timeout_ms = 100 } };
    struct dl_close d = { 0 };
    nc_listener *l;
    bulk.size = 256u << 10;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, &d, &l), 0);
    nc_addr a = listener_addr0(l);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 8192;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(connect(fd, &a.u.sa, a.len), 0);
    struct reader r = { .fd = fd, .per_tick = 16384 };
    nc_timer *t;
    uint64_t t0 = mono_ms();
    assert_int_equal(nc_timer_new(loop, reader_tick, &r, &t), 0);
    assert_int_equal(nc_timer_start(t, 20, 20), 0);
    assert_true(run_until(loop, dl_done, &d, 10000));
    assert_true(run_until(loop, reader_done, &r, 10000));
    assert_false(r.bad);
    assert_int_equal(r.got, bulk.size);
    assert_int_equal(d.reason, NC_CLOSE_LOCAL);
    assert_int_equal(d.err, 0);
    assert_true(mono_ms() - t0 > 100);      /* longer than one timeout */
    nc_timer_free(t);
    close(fd);
    nc_loop_free(loop);
}

/* A peer that stops reading: the close ends after the idle timeout
 * without progress, with NC_CLOSE_IDLE. */
static void graceful_close_gives_up_on_a_stalled_reader(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_conn_callbacks cbs = { .on_open = bulk_open, .on_close = dl_closed };
    nc_listener_options o = { .conn = { .idle_timeout_ms = 100 } };
    struct dl_close d = { 0 };
    nc_listener *l;
    bulk.size = 4u << 20;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, &d, &l), 0);
    nc_addr a = listener_addr0(l);
    int fd = client_connect(&a);
    assert_true(fd >= 0);
    assert_true(run_until(loop, dl_done, &d, 5000));
    assert_int_equal(d.reason, NC_CLOSE_IDLE);
    assert_int_equal(d.err, -ETIMEDOUT);
    close(fd);
    nc_loop_free(loop);
}

/* ---- linger: waiting for the peer's FIN after ours -------------------------- */

static size_t close_on_data(nc_conn *c, const void *data, size_t len,
                            void *ud)
{
    (void)data;
    (void)ud;
    nc_conn_write(c, "bye", 3);
    nc_conn_close(c);
    return len;
}

/* The peer keeps sending after the server closed: the server discards
 * its input for linger_ms, then closes; the answer was delivered. */
static void linger_ends_after_linger_ms_with_a_chatty_peer(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_conn_callbacks cbs = { .on_data = close_on_data,
                              .on_close = dl_closed };
    /* A small read budget: the close cannot drain the burst at once. */
    nc_listener_options o = { .conn = { .linger_ms = 150,
                                        .read_budget = 4096 } };
    struct dl_close d = { 0 };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, &d, &l), 0);
    nc_addr a = listener_addr0(l);
    struct trickle tr = { .fd = client_connect(&a), .max = 1000 };
    assert_true(tr.fd >= 0);
    /* A burst the server's first read cannot take whole, then a trickle:
     * when the server closes, more input may still come. */
    char burst[200000];
    memset(burst, 'x', sizeof(burst));
    assert_true(send(tr.fd, burst, sizeof(burst), 0) > 0);
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, trickle_tick, &tr, &t), 0);
    assert_int_equal(nc_timer_start(t, 10, 10), 0);
    uint64_t t0 = mono_ms();
    assert_true(run_until(loop, dl_done, &d, 3000));
    assert_int_equal(d.reason, NC_CLOSE_LOCAL);
    assert_int_equal(d.err, 0);
    assert_true(d.at - t0 >= 150);
    char buf[3];
    assert_int_equal(read_full(tr.fd, buf, 3, 2000), 3);
    assert_memory_equal(buf, "bye", 3);
    nc_timer_free(t);
    close(tr.fd);
    nc_loop_free(loop);
}

/* ---- thousands of connections with mixed timeouts --------------------------- */

enum { MANY = 1500 };

struct many_rec {
    uint32_t timeout;
    uint64_t last_ms;        /* loop time of its last activity */
    uint64_t closed_ms;
    int closes;
    nc_close_reason reason;
    bool changed;            /* got a new timeout while open */
};

struct many {
    struct many_rec rec[MANY];
    size_t opened, closed;
    int fds[MANY];
    nc_loop *loop;
    uint64_t worst_late;
};

static struct many *many_state;

static uint32_t timeout_for(size_t i)
{
    static const uint32_t t[] = { 60, 90, 120, 150, 200 };
    return t[i % 5];
}

static void many_open(nc_conn *c, void *ud)
{
    struct many *m = ud;
    size_t i = m->opened++;
    struct many_rec *r = &m->rec[i];
    r->timeout = timeout_for(i);
    r->last_ms = nc_loop_now(m->loop);
    assert_int_equal(nc_conn_set_idle_timeout(c, r->timeout), 0);
    nc_conn_set_data(c, r);
}

static size_t many_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)data;
    struct many_rec *r = ud;
    r->last_ms = nc_loop_now(many_state->loop);
    /* Every seventh connection that speaks changes its timeout. */
    if ((r - many_state->rec) % 7 == 3 && !r->changed) {
        r->changed = true;
        r->timeout = 80;
        assert_int_equal(nc_conn_set_idle_timeout(c, 80), 0);
    }
    return len;
}

static void many_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    (void)err;
    struct many_rec *r = ud;
    r->closes++;
    r->reason = reason;
    r->closed_ms = nc_loop_now(many_state->loop);
    many_state->closed++;
}

static bool all_opened(void *arg)
{
    return ((struct many *)arg)->opened == MANY;
}

static bool all_closed(void *arg)
{
    return ((struct many *)arg)->closed == MANY;
}

static void poke(nc_timer *t, void *ud)
{
    (void)t;
    struct many *m = ud;
    static unsigned round;
    round++;
    /* A rotating third of the connections says something. */
    for (size_t i = round % 3; i < MANY; i += 3)
        send(m->fds[i], "p", 1, MSG_NOSIGNAL);   /* closed ones refuse */
}

static void mixed_timeouts_close_each_once_never_early(void **state)
{
    (void)state;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * MANY + 64) {
        print_message("skipped: needs %d descriptors\n", 2 * MANY + 64);
        skip();
    }
    struct many *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    many_state = m;
    assert_int_equal(nc_loop_new(&m->loop), 0);
    nc_conn_callbacks cbs = { .on_open = many_open, .on_data = many_data,
                              .on_close = many_close };
    nc_listener_options o = { .conn = { .idle_timeout_ms = 1000 } };
    nc_listener *l;
    assert_int_equal(nc_listen(m->loop, "127.0.0.1:0", &o, &cbs, m, &l), 0);
    nc_addr a = listener_addr0(l);
    for (size_t i = 0; i < MANY; i++) {
        m->fds[i] = client_connect(&a);
        assert_true(m->fds[i] >= 0);
        if (i % 100 == 99)
            nc_loop_run(m->loop, NC_RUN_NOWAIT);
    }
    assert_true(run_until(m->loop, all_opened, m, 5000));
    /* Activity for 250 ms, then silence until every one has closed. */
    nc_timer *t;
    assert_int_equal(nc_timer_new(m->loop, poke, m, &t), 0);
    assert_int_equal(nc_timer_start(t, 25, 25), 0);
    run_until(m->loop, all_closed, m, 250);
    nc_timer_free(t);
    assert_true(run_until(m->loop, all_closed, m, 10000));
    unsigned slack = under_valgrind() ? 2000 : 250;
    for (size_t i = 0; i < MANY; i++) {
        struct many_rec *r = &m->rec[i];
        assert_int_equal(r->closes, 1);
        assert_int_equal(r->reason, NC_CLOSE_IDLE);
        /* Never early, and late by no more than scheduling slack. */
        if (r->closed_ms < r->last_ms + r->timeout ||
            r->closed_ms > r->last_ms + r->timeout + slack)
            fail_msg("connection %zu: timeout %u, last activity %llu, "
                     "closed %llu", i, r->timeout,
                     (unsigned long long)r->last_ms,
                     (unsigned long long)r->closed_ms);
    }
    for (size_t i = 0; i < MANY; i++)
        close(m->fds[i]);
    nc_loop_free(m->loop);
    free(m);
}

/* ---- the idle timeout means no progress either way -------------------- */

struct slow_reader {
    int fd;
    size_t got, want;
    int closes;
    nc_close_reason reason;
};

static void slow_read_tick(nc_timer *t, void *ud)
{
    (void)t;
    struct slow_reader *r = ud;
    char buf[16384];
    ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0)
        r->got += (size_t)n;
}

static size_t reply_big(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)data;
    (void)ud;
    enum { REPLY = 400000 };
    char *r = malloc(REPLY);
    assert_non_null(r);
    memset(r, 'r', REPLY);
    int small = 4096;
    setsockopt(nc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    assert_int_equal(nc_conn_write(c, r, REPLY), 0);
    free(r);
    return len;
}

static void slow_reader_close(nc_conn *c, nc_close_reason reason, int err,
                              void *ud)
{
    (void)c;
    (void)err;
    struct slow_reader *r = ud;
    r->closes++;
    r->reason = reason;
}

static bool slow_reader_closed(void *arg)
{
    return ((struct slow_reader *)arg)->closes > 0;
}

static bool slow_reader_done(void *arg)
{
    struct slow_reader *r = arg;
    return r->got >= r->want || r->closes > 0;
}

/* The client asked once, then drains a large reply slowly, for several
 * idle timeouts in all: the server receives nothing, but the peer keeps
 * taking its output, so the connection is not idle. (The server stays
 * open, as a keep-alive server does; the idle timeout is 200 ms, the
 * reply takes about a second to read.) */
static void a_slow_reader_draining_a_reply_is_not_idle(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    struct slow_reader r = { .want = 400000 };
    nc_conn_callbacks cbs = { .on_data = reply_big,
                              .on_close = slow_reader_close };
    nc_listener_options o = { .conn = { .idle_timeout_ms = 200,
                                        .high_water = 1u << 20 } };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, &r, &l), 0);
    nc_addr a = listener_addr0(l);
    r.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    assert_int_equal(setsockopt(r.fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof(small)), 0);
    assert_int_equal(connect(r.fd, &a.u.sa, a.len), 0);
    assert_int_equal(send(r.fd, "GET\n", 4, 0), 4);
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, slow_read_tick, &r, &t), 0);
    assert_int_equal(nc_timer_start(t, 40, 40), 0);
    assert_true(run_until(loop, slow_reader_done, &r, 10000));
    assert_int_equal(r.closes, 0);
    assert_int_equal(r.got, 400000);
    nc_timer_free(t);
    /* Now nothing moves either way: the idle timeout ends it. */
    assert_true(run_until(loop, slow_reader_closed, &r, 3000));
    assert_int_equal(r.closes, 1);
    assert_int_equal(r.reason, NC_CLOSE_IDLE);
    close(r.fd);
    nc_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(received_bytes_restart_the_idle_timeout),
        cmocka_unit_test(deadline_ends_a_trickling_peer),
        cmocka_unit_test(removed_deadline_does_not_fire),
        cmocka_unit_test(graceful_close_waits_for_a_slow_reader),
        cmocka_unit_test(graceful_close_gives_up_on_a_stalled_reader),
        cmocka_unit_test(linger_ends_after_linger_ms_with_a_chatty_peer),
        cmocka_unit_test(mixed_timeouts_close_each_once_never_early),
        cmocka_unit_test(a_slow_reader_draining_a_reply_is_not_idle),
    };
    return cmocka_run_group_tests_name("timeout", tests, NULL, NULL);
}
