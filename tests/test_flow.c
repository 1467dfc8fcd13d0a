/* test_flow.c - what a proxy needs from two connections: full-duplex
 * half-close (the peer's end of stream ends only its direction; ours
 * stays open until nc_conn_shutdown), and flow control it can build on
 * (nc_conn_queued is what the kernel refused, the same on both backends;
 * on_drain after any write that left bytes queued, so pausing one
 * connection on another's queue never stalls, whatever the threshold).
 * Real sockets over loopback. */
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
#include <unistd.h>

/* ---- a server whose connections the test drives ------------------------ */

struct side {
    nc_conn *c;
    int opens, closes, drains, end_calls;
    nc_close_reason reason;
    int err;
    char in[256];
    size_t in_len;
    bool shutdown_on_open;
    size_t queued_after_write;  /* nc_conn_queued right after a write in
                                   on_data */
    bool write_in_data;
    bool answer_in_end;         /* the end call writes, shuts down, then
                                   writes and shuts down again */
    int write_after, shutdown_again;
    bool write_loop;            /* on_data writes 16 KiB pieces while
                                   nc_conn_queued is below 32 KiB */
    size_t loop_written;
};

static void side_open(nc_conn *c, void *ud)
{
    struct side *s = ud;
    s->c = c;
    s->opens++;
    if (s->shutdown_on_open)
        assert_int_equal(nc_conn_shutdown(c), 0);
}

static size_t side_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct side *s = ud;
    if (nc_conn_eof(c))
        s->end_calls++;
    if (nc_conn_eof(c) && s->answer_in_end) {
        assert_int_equal(nc_conn_write(c, "answer", 6), 0);
        assert_int_equal(nc_conn_shutdown(c), 0);
        s->write_after = nc_conn_write(c, "late", 4);
        s->shutdown_again = nc_conn_shutdown(c);
    }
    size_t n = len < sizeof(s->in) - s->in_len ? len
                                                : sizeof(s->in) - s->in_len;
    memcpy(s->in + s->in_len, data, n);
    s->in_len += n;
    if (s->write_in_data && len > 0) {
        char reply[1000];
        memset(reply, 'r', sizeof(reply));
        assert_int_equal(nc_conn_write(c, reply, sizeof(reply)), 0);
        s->queued_after_write = nc_conn_queued(c);
    }
    if (s->write_loop && len > 0) {
        static char piece[16384];
        for (int i = 0; i < 1024 && nc_conn_queued(c) < (32u << 10); i++) {
            assert_int_equal(nc_conn_write(c, piece, sizeof(piece)), 0);
            s->loop_written += sizeof(piece);
        }
    }
    return len;
}

static void side_drain(nc_conn *c, void *ud)
{
    (void)c;
    ((struct side *)ud)->drains++;
}

static void side_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    struct side *s = ud;
    s->closes++;
    s->reason = reason;
    s->err = err;
    s->c = NULL;
}

static const nc_conn_callbacks side_cbs = {
    .on_open = side_open, .on_data = side_data, .on_drain = side_drain,
    .on_close = side_close
};

static bool side_opened(void *arg)
{
    return ((struct side *)arg)->opens > 0;
}

static bool side_closed(void *arg)
{
    return ((struct side *)arg)->closes > 0;
}

static bool side_ended(void *arg)
{
    return ((struct side *)arg)->end_calls > 0;
}

struct fixture {
    nc_loop *loop;
    nc_listener *l;
    nc_addr addr;
    struct side s;
};

static void start(struct fixture *f, const nc_conn_options *o)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(nc_loop_new(&f->loop), 0);
    nc_listener_options lo = { 0 };
    if (o)
        lo.conn = *o;
    assert_int_equal(nc_listen(f->loop, "127.0.0.1:0", &lo, &side_cbs, &f->s,
                               &f->l), 0);
    f->addr = listener_addr0(f->l);
}

/* ---- half-close ------------------------------------------------------------ */

/* The client sends its request and shuts its side down; the server,
 * with half_close, gets the end call and stays open: it answers later,
 * from outside any callback, then shuts its side down, and the
 * connection closes cleanly. */
static void half_closed_peer_gets_a_reply_written_later(void **state)
{
    (void)state;
    struct fixture f;
    nc_conn_options o = { .half_close = true };
    start(&f, &o);
    int fd = client_connect(&f.addr);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, "request", 7, 0), 7);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(f.loop, side_ended, &f.s, 3000));
    assert_int_equal(f.s.in_len, 7);
    assert_memory_equal(f.s.in, "request", 7);
    /* Still open after the end: nothing closes it. */
    run_until(f.loop, side_closed, &f.s, 100);
    assert_int_equal(f.s.closes, 0);
    assert_true(nc_conn_eof(f.s.c));
    assert_int_equal(nc_conn_write(f.s.c, "reply", 5), 0);
    assert_int_equal(nc_conn_shutdown(f.s.c), 0);
    assert_true(run_until(f.loop, side_closed, &f.s, 3000));
    assert_int_equal(f.s.reason, NC_CLOSE_PEER);
    assert_int_equal(f.s.err, 0);
    char buf[8];
    assert_int_equal(read_full(fd, buf, 5, 3000), 5);
    assert_memory_equal(buf, "reply", 5);
    assert_int_equal(read_full(fd, buf, 1, 3000), 0);
    close(fd);
    nc_loop_free(f.loop);
}

/* In the end call: an answer, the shutdown, then a write and a second
 * shutdown. The peer had ended first, so the shutdown completes the
 * connection (on epoll inside the call, on io_uring after the
 * submission); the calls after it answer the same either way: -EPIPE,
 * and 0. */
static void calls_after_a_shutdown_in_the_end_call_answer_alike(void **state)
{
    (void)state;
    struct fixture f;
    nc_conn_options o = { .half_close = true };
    start(&f, &o);
    f.s.answer_in_end = true;
    f.s.write_after = 1;
    int fd = client_connect(&f.addr);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, "request", 7, 0), 7);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(f.loop, side_closed, &f.s, 3000));
    assert_int_equal(f.s.write_after, -EPIPE);
    assert_int_equal(f.s.shutdown_again, 0);
    assert_int_equal(f.s.reason, NC_CLOSE_PEER);
    char buf[8];
    assert_int_equal(read_full(fd, buf, 6, 3000), 6);
    assert_memory_equal(buf, "answer", 6);
    assert_int_equal(read_full(fd, buf, 1, 3000), 0);
    close(fd);
    nc_loop_free(f.loop);
}

/* Our side first: the client reads our end, keeps sending, then ends
 * its own stream: every byte arrives, then the close. */
static void shutdown_first_then_the_peers_end_closes_once(void **state)
{
    (void)state;
    struct fixture f;
    nc_conn_options o = { .half_close = true };
    start(&f, &o);
    f.s.shutdown_on_open = true;
    int fd = client_connect(&f.addr);
    assert_true(fd >= 0);
    assert_true(run_until(f.loop, side_opened, &f.s, 3000));
    char c;
    nc_loop_run(f.loop, NC_RUN_NOWAIT);
    assert_int_equal(read_full(fd, &c, 1, 3000), 0);
    assert_int_equal(send(fd, "late", 4, 0), 4);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(f.loop, side_closed, &f.s, 3000));
    assert_int_equal(f.s.in_len, 4);
    assert_memory_equal(f.s.in, "late", 4);
    assert_int_equal(f.s.end_calls, 1);
    assert_int_equal(f.s.reason, NC_CLOSE_PEER);
    close(fd);
    nc_loop_free(f.loop);
}

/* A half-closed connection that never answers is still bounded by the
 * idle timeout. */
static void a_half_closed_connection_is_bounded_by_the_idle_timeout(
    void **state)
{
    (void)state;
    struct fixture f;
    nc_conn_options o = { .half_close = true, .idle_timeout_ms = 150 };
    start(&f, &o);
    int fd = client_connect(&f.addr);
    assert_true(fd >= 0);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(f.loop, side_closed, &f.s, 3000));
    assert_int_equal(f.s.end_calls, 1);
    assert_int_equal(f.s.reason, NC_CLOSE_IDLE);
    close(fd);
    nc_loop_free(f.loop);
}

/* Without half_close, the peer's end still closes the connection once
 * the queue is sent (the default is unchanged). */
static void without_half_close_the_peers_end_closes(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    int fd = client_connect(&f.addr);
    assert_true(fd >= 0);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(f.loop, side_closed, &f.s, 3000));
    assert_int_equal(f.s.reason, NC_CLOSE_PEER);
    assert_int_equal(f.s.end_calls, 0);
    close(fd);
    nc_loop_free(f.loop);
}

/* ---- flow control ---------------------------------------------------------- */

/* A write the kernel takes at once leaves nothing queued, on both
 * backends (io_uring sends it with the iteration's submission). */
static void queued_counts_what_the_kernel_refused(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    f.s.write_in_data = true;
    f.s.queued_after_write = 12345;
    int fd = client_connect(&f.addr);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, "ping", 4, 0), 4);
    char buf[1000];
    assert_true(run_until(f.loop, side_opened, &f.s, 3000));
    while (f.s.queued_after_write == 12345)
        assert_true(nc_loop_run(f.loop, NC_RUN_ONCE) == 0);
    assert_int_equal(f.s.queued_after_write, 0);
    nc_loop_run(f.loop, NC_RUN_NOWAIT);
    assert_int_equal(read_full(fd, buf, sizeof(buf), 3000), sizeof(buf));
    assert_int_equal(f.s.drains, 0);
    assert_int_equal(nc_conn_high_water(f.s.c), 64u << 10);
    assert_int_equal(nc_conn_low_water(f.s.c), 16u << 10);
    assert_int_equal(nc_conn_high_water(NULL), 0);
    close(fd);
    nc_loop_free(f.loop);
}

struct slow_reader {
    int fd;
    size_t got, want;
};

/* Read a little per loop iteration until want bytes came. */
static bool read_some(void *arg)
{
    struct slow_reader *r = arg;
    char buf[8192];
    ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0)
        r->got += (size_t)n;
    return r->got >= r->want;
}

/* A client with a small receive buffer, connected to f's server. */
static int small_client(struct fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof(small)), 0);
    assert_int_equal(connect(fd, &f->addr.u.sa, f->addr.len), 0);
    assert_true(run_until(f->loop, side_opened, &f->s, 3000));
    setsockopt(nc_conn_fd(f->s.c), SOL_SOCKET, SO_SNDBUF, &small,
               sizeof(small));
    return fd;
}

static bool loop_wrote(void *arg)
{
    return ((struct side *)arg)->loop_written > 0;
}

/* A program writes while nc_conn_queued() is below a mark, inside
 * on_data, to a peer that does not read: it stops near the mark on both
 * backends (on io_uring the bytes waiting for the iteration's submission
 * are offered at once past high_water, as epoll offers every write), not
 * after writing all it had; once the peer reads, on_drain says when to
 * go on. */
static void a_write_loop_stops_at_the_queue_mark_on_both_backends(
    void **state)
{
    (void)state;
    struct fixture f;
    start(&f, NULL);
    f.s.write_loop = true;
    int fd = small_client(&f);
    assert_int_equal(send(fd, "go", 2, 0), 2);
    assert_true(run_until(f.loop, loop_wrote, &f.s, 3000));
    /* 64 KiB of high water, the kernel's small buffers, one piece. */
    assert_true(f.s.loop_written < (1u << 20));
    struct slow_reader r = { .fd = fd, .want = f.s.loop_written };
    assert_true(run_until(f.loop, read_some, &r, 10000));
    nc_loop_run(f.loop, NC_RUN_NOWAIT);
    assert_int_equal(nc_conn_queued(f.s.c), 0);
    assert_true(f.s.drains >= 1);
    close(fd);
    nc_loop_free(f.loop);
}

/* Far below high_water (so reading never pauses), a write leaves bytes
 * queued: on_drain follows once they fall to low_water. */
static void on_drain_follows_a_queue_that_never_reached_high_water(
    void **state)
{
    (void)state;
    struct fixture f;
    nc_conn_options o = { .high_water = 8u << 20, .low_water = 4096 };
    start(&f, &o);
    struct slow_reader r = { .fd = small_client(&f), .want = 200000 };
    char *big = calloc(1, 200000);
    assert_non_null(big);
    assert_int_equal(nc_conn_write(f.s.c, big, 200000), 0);
    nc_loop_run(f.loop, NC_RUN_NOWAIT);
    assert_true(nc_conn_queued(f.s.c) > 4096);
    assert_true(nc_conn_queued(f.s.c) < (8u << 20));
    assert_true(run_until(f.loop, read_some, &r, 10000));
    nc_loop_run(f.loop, NC_RUN_NOWAIT);
    assert_int_equal(nc_conn_queued(f.s.c), 0);
    assert_int_equal(f.s.drains, 1);
    free(big);
    close(r.fd);
    nc_loop_free(f.loop);
}

/* ---- a relay: pausing one connection on the other's queue --------------- */

struct relay {
    nc_loop *loop;
    nc_listener *l;
    nc_conn *in, *out;      /* the first accepted connection relays to
                               the second */
    size_t threshold;
    size_t relayed;
    int pauses;
};

static void relay_open(nc_conn *c, void *ud)
{
    struct relay *r = ud;
    if (!r->in)
        r->in = c;
    else
        r->out = c;
}

static size_t relay_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct relay *r = ud;
    if (c != r->in || !r->out || len == 0)
        return len;
    assert_int_equal(nc_conn_write(r->out, data, len), 0);
    r->relayed += len;
    if (nc_conn_queued(r->out) > r->threshold) {
        nc_conn_read_stop(c);
        r->pauses++;
    }
    return len;
}

static void relay_drain(nc_conn *c, void *ud)
{
    struct relay *r = ud;
    if (c == r->out && r->in)
        nc_conn_read_start(r->in);
}

struct relay_pump {
    struct relay *r;
    int src, dst;
    const char *data;
    size_t len, sent, got;
    bool bad;
};

static bool relay_step(void *arg)
{
    struct relay_pump *p = arg;
    while (p->sent < p->len) {
        ssize_t n = send(p->src, p->data + p->sent, p->len - p->sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        p->sent += (size_t)n;
    }
    char buf[16384];
    for (;;) {
        ssize_t n = recv(p->dst, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        if (memcmp(buf, p->data + p->got, (size_t)n) != 0)
            p->bad = true;
        p->got += (size_t)n;
    }
    return p->got == p->len;
}

/* 4 MiB relayed from one client to another through two connections of
 * the server, pausing the inbound side whenever the outbound queue is
 * above the threshold: it completes whether the threshold is 0, below
 * low_water, at it, between the marks, at high_water or above it. */
static void pausing_at_any_threshold_never_stalls(void **state)
{
    (void)state;
    const size_t thresholds[] = { 0, 1000, 4095, 4096, 30000, 65536, 70000,
                                  1u << 20 };
    enum { SIZE = 4 << 20 };
    char *data = malloc(SIZE);
    assert_non_null(data);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (char)(i * 13 + i / 4093);
    for (size_t t = 0; t < sizeof(thresholds) / sizeof(*thresholds); t++) {
        struct relay r = { .threshold = thresholds[t] };
        assert_int_equal(nc_loop_new(&r.loop), 0);
        nc_conn_callbacks cbs = { .on_open = relay_open,
                                  .on_data = relay_data,
                                  .on_drain = relay_drain };
        nc_listener_options lo = { .conn = { .high_water = 65536,
                                             .low_water = 4096 } };
        assert_int_equal(nc_listen(r.loop, "127.0.0.1:0", &lo, &cbs, &r,
                                   &r.l), 0);
        nc_addr a = listener_addr0(r.l);
        struct relay_pump p = { .r = &r, .data = data, .len = SIZE };
        p.src = client_connect(&a);
        assert_true(p.src >= 0);
        while (!r.in)
            assert_int_equal(nc_loop_run(r.loop, NC_RUN_ONCE), 0);
        p.dst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int small = 8192;
        setsockopt(p.dst, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        assert_int_equal(connect(p.dst, &a.u.sa, a.len), 0);
        while (!r.out)
            assert_int_equal(nc_loop_run(r.loop, NC_RUN_ONCE), 0);
        if (!run_until(r.loop, relay_step, &p, 20000))
            fail_msg("threshold %zu: stalled after %zu of %d bytes "
                     "(%d pauses)", thresholds[t], p.got, SIZE, r.pauses);
        assert_false(p.bad);
        close(p.src);
        close(p.dst);
        nc_loop_free(r.loop);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(half_closed_peer_gets_a_reply_written_later),
        cmocka_unit_test(calls_after_a_shutdown_in_the_end_call_answer_alike),
        cmocka_unit_test(shutdown_first_then_the_peers_end_closes_once),
        cmocka_unit_test(
            a_half_closed_connection_is_bounded_by_the_idle_timeout),
        cmocka_unit_test(without_half_close_the_peers_end_closes),
        cmocka_unit_test(queued_counts_what_the_kernel_refused),
        cmocka_unit_test(a_write_loop_stops_at_the_queue_mark_on_both_backends),
        cmocka_unit_test(
            on_drain_follows_a_queue_that_never_reached_high_water),
        cmocka_unit_test(pausing_at_any_threshold_never_stalls),
    };
    return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
