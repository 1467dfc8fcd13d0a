/* test_conn_read.c - a connection's input path with unusual and hostile
 * peers: half-close with answers still queued, bytes after an urgent mark
 * or a descriptor message, a reset after data, buffered input handed back
 * when reading resumes, the end call of keep_half_open, and input buffers
 * sized to what they hold. Real sockets throughout. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct fixture {
    nc_loop *loop;
    struct server srv;
};

static int setup_on(void **state, const char *spec, enum server_mode mode,
                    const nc_listener_options *o)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(nc_loop_new(&f->loop), 0);
    assert_int_equal(server_start(&f->srv, f->loop, spec, o, mode), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nc_loop_free(f->loop);
    assert_true(server_all_closed_once(&f->srv));
    server_free(&f->srv);
    free(f);
    return 0;
}

static bool closed_n(struct fixture *f, unsigned long n)
{
    struct count_goal g = { &f->srv.closed, n };
    return run_until(f->loop, count_reached, &g, 3000);
}

static bool opened_n(struct fixture *f, unsigned long n)
{
    struct count_goal g = { &f->srv.opened, n };
    return run_until(f->loop, count_reached, &g, 3000);
}

/* ---- a non-blocking client pumped from the loop's thread ------------- */

struct pump {
    int fd;
    const char *out;        /* what to send, then SHUT_WR */
    size_t out_len, sent;
    bool shut;
    char *in;               /* what came back, until end of stream */
    size_t in_cap, in_len;
    bool eof;
    int err;
    size_t want;            /* stop once this much came back (0: at end) */
};

static bool pump_step(void *arg)
{
    struct pump *p = arg;
    while (p->sent < p->out_len) {
        ssize_t n = send(p->fd, p->out + p->sent, p->out_len - p->sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        p->sent += (size_t)n;
    }
    if (p->sent == p->out_len && !p->shut) {
        shutdown(p->fd, SHUT_WR);
        p->shut = true;
    }
    for (;;) {
        if (p->in_len == p->in_cap) {
            p->in_cap = p->in_cap ? p->in_cap * 2 : 65536;
            p->in = realloc(p->in, p->in_cap);
            assert_non_null(p->in);
        }
        ssize_t n = recv(p->fd, p->in + p->in_len, p->in_cap - p->in_len,
                         MSG_DONTWAIT);
        if (n > 0) {
            p->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            p->eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            p->err = errno;
        break;
    }
    return p->eof || p->err || (p->want && p->in_len >= p->want);
}

static int client_to(const struct fixture *f)
{
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    return fd;
}

/* ---- half-close: queued answers are sent before the close --------------- */

static int setup_unix_echo(void **state)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "unix:@nc-test-read-%d", (int)getpid());
    return setup_on(state, spec, SERVER_ECHO, NULL);
}

/* Unix sockets have small buffers: most of the echo is still queued in
 * the server when the client's end of stream arrives. */
static void half_closing_peer_gets_every_queued_byte(void **state)
{
    struct fixture *f = *state;
    enum { N = 250000 };
    char *data = malloc(N);
    assert_non_null(data);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)('a' + i % 26);
    struct pump p = { .fd = client_to(f), .out = data, .out_len = N };
    assert_true(run_until(f->loop, pump_step, &p, 10000));
    assert_int_equal(p.err, 0);
    assert_int_equal(p.in_len, N);
    assert_memory_equal(p.in, data, N);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_PEER);
    assert_int_equal(f->srv.last_err, 0);
    close(p.fd);
    free(p.in);
    free(data);
}

/* ---- bytes before the end of stream are never lost ------------------------ */

static int setup_tcp_sink(void **state)
{
    return setup_on(state, "127.0.0.1:0", SERVER_SINK, NULL);
}

/* TCP stops a read at the urgent mark: "AAAA" comes alone although
 * "CCCC" and the FIN are already there. */
static void bytes_after_an_urgent_mark_arrive_before_the_end(void **state)
{
    struct fixture *f = *state;
    int fd = client_to(f);
    assert_true(opened_n(f, 1));
    assert_int_equal(send(fd, "AAAA", 4, 0), 4);
    assert_int_equal(send(fd, "B", 1, MSG_OOB), 1);
    assert_int_equal(send(fd, "CCCC", 4, 0), 4);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(closed_n(f, 1));
    struct conn_rec *r = f->srv.recs[0];
    assert_int_equal(r->len, 8);
    assert_memory_equal(r->data, "AAAACCCC", 8);
    assert_int_equal(r->reason, NC_CLOSE_PEER);
    close(fd);
}

static int setup_unix_sink(void **state)
{
    char spec[64];
    snprintf(spec, sizeof(spec), "unix:@nc-test-sink-%d", (int)getpid());
    return setup_on(state, spec, SERVER_SINK, NULL);
}

/* A Unix socket stops a read at a message carrying descriptors. */
static void bytes_after_a_descriptor_message_arrive_before_the_end(
    void **state)
{
    struct fixture *f = *state;
    int fd = client_to(f);
    assert_true(opened_n(f, 1));
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = { .iov_base = "AAAA", .iov_len = 4 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = cbuf,
                          .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pfd[0], sizeof(int));
    assert_int_equal(sendmsg(fd, &msg, 0), 4);
    assert_int_equal(send(fd, "CCCC", 4, 0), 4);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(closed_n(f, 1));
    struct conn_rec *r = f->srv.recs[0];
    assert_int_equal(r->len, 8);
    assert_memory_equal(r->data, "AAAACCCC", 8);
    assert_int_equal(r->reason, NC_CLOSE_PEER);
    close(pfd[0]);
    close(pfd[1]);
    close(fd);
}

/* Data, then a reset: the data is delivered and the end is a reset, not
 * an orderly end of stream. */
static void reset_after_data_reports_reset(void **state)
{
    struct fixture *f = *state;
    int fd = client_to(f);
    assert_true(opened_n(f, 1));
    assert_int_equal(send(fd, "hello", 5, 0), 5);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
                     0);
    close(fd);
    assert_true(closed_n(f, 1));
    struct conn_rec *r = f->srv.recs[0];
    assert_int_equal(r->reason, NC_CLOSE_RESET);
    assert_int_equal(r->err, -ECONNRESET);
    assert_true(r->len == 0 || (r->len == 5 && !memcmp(r->data, "hello", 5)));
}

/* Reading paused (nc_conn_read_stop) when the peer resets: the reset is
 * still seen, from the hang-up epoll reports without any interest, and
 * reported as a reset with the socket's error. */
static void reset_while_reading_is_paused_reports_reset(void **state)
{
    struct fixture *f = *state;
    int fd = client_to(f);
    assert_true(opened_n(f, 1));
    nc_conn_read_stop(f->srv.recs[0]->conn);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(send(fd, "data", 4, 0), 4);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
                     0);
    close(fd);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_RESET);
    assert_int_equal(f->srv.last_err, -ECONNRESET);
}

/* ---- buffered input is handed back when reading resumes ----------------- */

static int setup_lines_paused(void **state)
{
    int rc = setup_on(state, "127.0.0.1:0", SERVER_LINES, NULL);
    ((struct fixture *)*state)->srv.pause_each = true;
    return rc;
}

/* The server takes one line per delivery, then pauses and resumes: the
 * other lines, already buffered, must come back without new bytes. */
static void resumed_reading_redelivers_buffered_input(void **state)
{
    struct fixture *f = *state;
    const char req[] = "one\ntwo\nthree\n";
    struct pump p = { .fd = client_to(f), .out = req,
                      .out_len = sizeof(req) - 1, .shut = true,
                      .want = sizeof(req) - 1 };
    assert_true(run_until(f->loop, pump_step, &p, 3000));
    assert_int_equal(p.in_len, sizeof(req) - 1);
    assert_memory_equal(p.in, req, sizeof(req) - 1);
    close(p.fd);
    free(p.in);
    assert_true(closed_n(f, 1));
}

static int setup_lines_small_queue(void **state)
{
    nc_listener_options o = { .conn = { .high_water = 4096,
                                        .low_water = 1024 } };
    int rc = setup_on(state, "127.0.0.1:0", SERVER_LINES, &o);
    ((struct fixture *)*state)->srv.max_queue = 4096;
    ((struct fixture *)*state)->srv.sndbuf = 4096;
    return rc;
}

/* Backpressure: the server stops taking lines while its queue is full;
 * when the client drains it, reading resumes and the buffered lines are
 * answered although the client sends nothing more. */
static void backpressure_release_redelivers_buffered_input(void **state)
{
    struct fixture *f = *state;
    enum { LINES = 3000, LINE = 64 };
    char *req = malloc(LINES * LINE);
    assert_non_null(req);
    for (int i = 0; i < LINES; i++) {
        memset(req + i * LINE, 'a' + i % 26, LINE - 1);
        req[i * LINE + LINE - 1] = '\n';
    }
    /* A small receive buffer, set before connecting so the window is
     * small from the start: the server's answers queue up. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof(small)), 0);
    assert_int_equal(connect(fd, &f->srv.addr.u.sa, f->srv.addr.len), 0);
    struct pump p = { .fd = fd, .out = req, .out_len = LINES * LINE };
    /* Everything sent, nothing more: the client half-closes, and keeps
     * reading until the server's end of stream. */
    assert_true(run_until(f->loop, pump_step, &p, 10000));
    assert_int_equal(p.err, 0);
    assert_int_equal(p.in_len, LINES * LINE);
    assert_memory_equal(p.in, req, LINES * LINE);
    assert_true(f->srv.drained > 0);
    close(p.fd);
    free(p.in);
    free(req);
}

/* ---- a peer that streams while its answers back up ------------------- */

struct flood {
    int fd;
    char buf[65536];
    size_t sent, limit;
};

/* Send what the socket takes, never read; done once limit is sent. */
static bool flood_step(void *arg)
{
    struct flood *fl = arg;
    while (fl->sent < fl->limit) {
        ssize_t n = send(fl->fd, fl->buf, sizeof(fl->buf),
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        fl->sent += (size_t)n;
    }
    return fl->sent >= fl->limit;
}

static int setup_echo_small(void **state)
{
    int rc = setup_on(state, "127.0.0.1:0", SERVER_ECHO, NULL);
    ((struct fixture *)*state)->srv.sndbuf = 4096;
    return rc;
}

/* The peer sends without end and reads nothing: once the echo's answers
 * fill the queue, the server stops taking input, so the peer's sends
 * stall on full socket buffers. What the server took in stays within
 * the queue's high water plus one read and the kernel's small buffers on
 * the way back, on both backends (a multishot receive on io_uring took in
 * up to all its buffers, 4 MiB, in one wait: docs/performance.md). */
/* A client whose socket takes little, connected to f's server. */
static int small_client(struct fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof(small)), 0);
    assert_int_equal(connect(fd, &f->srv.addr.u.sa, f->srv.addr.len), 0);
    return fd;
}

/* fd sends without end and reads nothing: the server must hold it back
 * (what it took in stays under 1 MiB), then see it close. */
static void flood_is_held_back(struct fixture *f, int fd)
{
    struct flood *fl = calloc(1, sizeof(*fl));
    assert_non_null(fl);
    fl->fd = fd;
    fl->limit = (size_t)64 << 20;
    memset(fl->buf, 'x', sizeof(fl->buf));
    /* Stalls (the bound passes) when held back; sends all 64 MiB when
     * the server keeps pulling bytes in. */
    run_until(f->loop, flood_step, fl, 1500);
    nc_loop_stats st;
    assert_int_equal(nc_loop_stats_get(f->loop, &st), 0);
    assert_true(st.bytes_in > 0);
    assert_true(st.bytes_in < ((uint64_t)1 << 20));
    assert_true(fl->sent < ((size_t)32 << 20));
    close(fd);
    free(fl);
    assert_true(closed_n(f, 1));
}

static void a_streaming_peer_is_held_back_by_backpressure(void **state)
{
    struct fixture *f = *state;
    flood_is_held_back(f, small_client(f));
}

/* A few requests answered one at a time, from the loop's thread: the
 * server's receive then waits for the next request. */
static void ping_pong(struct fixture *f, int fd, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        assert_int_equal(send(fd, "ping\n", 5, MSG_NOSIGNAL), 5);
        assert_true(server_wait_bytes(&f->srv, (unsigned long long)(i + 1) * 5,
                                      3000));
        char buf[5];
        for (int tries = 0; tries < 300 && !wait_readable(fd, 0); tries++)
            nc_loop_run(f->loop, NC_RUN_ONCE);
        assert_int_equal(read_full(fd, buf, 5, 1000), 5);
    }
}

/* The same, after a few answered requests: a receive that waited for
 * the next request meets a peer that streams, and what it takes in
 * before backpressure stops it stays as small as it is for a peer that
 * streams from the start (a receive made for requests, such as a
 * multishot one into small buffers on io_uring, must not change that). */
static void a_peer_that_streams_after_answers_is_held_back(void **state)
{
    struct fixture *f = *state;
    int fd = small_client(f);
    ping_pong(f, fd, 3);
    flood_is_held_back(f, fd);
}

/* ---- a stream after requests is read in large pieces ------------------ */

struct pieces {
    nc_loop *loop;
    nc_listener *l;
    unsigned long calls;
    unsigned long long bytes;
};

static size_t pieces_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct pieces *p = ud;
    if (len == 5 && memcmp(data, "ping\n", 5) == 0)
        nc_conn_write(c, data, len);
    else
        p->calls++;
    p->bytes += len;
    return len;
}

static bool pieces_got(void *arg)
{
    return ((struct pieces *)arg)->bytes >= 15 + ((unsigned long long)4 << 20);
}

/* After a few requests answered one at a time, the peer streams 4 MiB
 * in bursts, each read before the next is sent: it reaches on_data in
 * pieces as large as a read (64 KiB), on both backends (a receive made
 * for requests, into small buffers, must give way to large reads once
 * the peer streams, and not come back after each burst). */
static void a_stream_after_requests_is_read_in_large_pieces(void **state)
{
    (void)state;
    struct pieces p = { 0 };
    assert_int_equal(nc_loop_new(&p.loop), 0);
    nc_conn_callbacks cbs = { .on_data = pieces_data };
    assert_int_equal(nc_listen(p.loop, "127.0.0.1:0", NULL, &cbs, &p, &p.l),
                     0);
    nc_addr a = listener_addr0(p.l);
    int fd = client_connect(&a);
    assert_true(fd >= 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send(fd, "ping\n", 5, MSG_NOSIGNAL), 5);
        char buf[5];
        for (int tries = 0; tries < 300 && !wait_readable(fd, 0); tries++)
            nc_loop_run(p.loop, NC_RUN_ONCE);
        assert_int_equal(read_full(fd, buf, 5, 1000), 5);
    }
    /* 4 MiB in bursts of 128 KiB, each read before the next is sent. */
    enum { BURST = 128 << 10, BURSTS = 32 };
    char *big = malloc(BURST);
    assert_non_null(big);
    memset(big, 'y', BURST);
    for (int i = 0; i < BURSTS; i++) {
        size_t off = 0;
        unsigned long long want = 15 + (unsigned long long)(i + 1) * BURST;
        for (int tries = 0; tries < 100000 && p.bytes < want; tries++) {
            while (off < BURST) {
                ssize_t n = send(fd, big + off, BURST - off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n <= 0)
                    break;
                off += (size_t)n;
            }
            nc_loop_run(p.loop, off < BURST ? NC_RUN_NOWAIT : NC_RUN_ONCE);
        }
        assert_int_equal(p.bytes, want);
    }
    assert_true(pieces_got(&p));
    /* 64 pieces of 64 KiB; in buffers of 4 KiB at the start of each
     * burst, 16 more per burst. */
    assert_true(p.calls <= 256);
    free(big);
    close(fd);
    nc_loop_free(p.loop);
}

/* ---- keep_half_open: the end call carries what is left ------------------ */

static int setup_half_open_lines(void **state)
{
    nc_listener_options o = { .conn = { .keep_half_open = true } };
    return setup_on(state, "127.0.0.1:0", SERVER_LINES, &o);
}

static void end_call_carries_the_unconsumed_bytes(void **state)
{
    struct fixture *f = *state;
    const char req[] = "line\npartial";
    struct pump p = { .fd = client_to(f), .out = req,
                      .out_len = sizeof(req) - 1 };
    assert_true(run_until(f->loop, pump_step, &p, 3000));
    assert_true(p.eof);
    assert_int_equal(p.in_len, 5);
    assert_memory_equal(p.in, "line\n", 5);
    assert_true(closed_n(f, 1));
    struct conn_rec *r = f->srv.recs[0];
    assert_int_equal(r->eof_calls, 1);
    assert_int_equal(r->eof_len, 7);
    assert_memory_equal(r->eof_data, "partial", 7);
    assert_int_equal(r->reason, NC_CLOSE_PEER);
    close(p.fd);
    free(p.in);
}

static void end_call_without_leftover_has_length_zero(void **state)
{
    struct fixture *f = *state;
    struct pump p = { .fd = client_to(f), .out = "line\n", .out_len = 5 };
    assert_true(run_until(f->loop, pump_step, &p, 3000));
    assert_true(p.eof);
    assert_int_equal(p.in_len, 5);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.recs[0]->eof_calls, 1);
    assert_int_equal(f->srv.recs[0]->eof_len, 0);
    close(p.fd);
    free(p.in);
}

/* ---- input buffers are sized to what they hold ----------------------------- */

static int setup_lines(void **state)
{
    return setup_on(state, "127.0.0.1:0", SERVER_LINES, NULL);
}

static bool buffered_is(void *arg)
{
    struct fixture *f = arg;
    nc_conn *c = f->srv.nrecs ? f->srv.recs[0]->conn : NULL;
    return c && c->cold && c->cold->in_len == 3;
}

static bool nothing_buffered(void *arg)
{
    struct fixture *f = arg;
    nc_conn *c = f->srv.recs[0]->conn;
    return c && f->srv.recs[0]->len == 4 && !c->cold;
}

/* A partial message costs about its size, and nothing once consumed. */
static void partial_message_buffer_is_its_size_and_freed(void **state)
{
    struct fixture *f = *state;
    int fd = client_to(f);
    assert_int_equal(send(fd, "abc", 3, 0), 3);
    assert_true(run_until(f->loop, buffered_is, f, 3000));
    assert_true(f->srv.recs[0]->conn->cold->in_cap <= 256);
    assert_int_equal(send(fd, "\n", 1, 0), 1);
    assert_true(run_until(f->loop, nothing_buffered, f, 3000));
    char buf[4];
    assert_int_equal(read_full(fd, buf, 4, 3000), 4);
    assert_memory_equal(buf, "abc\n", 4);
    close(fd);
    assert_true(closed_n(f, 1));
}

/* One read larger than max_input, none of it consumed: closed at once. */
static int setup_hoard_small(void **state)
{
    nc_listener_options o = { .conn = { .max_input = 1000 } };
    return setup_on(state, "127.0.0.1:0", SERVER_HOARD, &o);
}

static void one_read_over_max_input_closes(void **state)
{
    struct fixture *f = *state;
    int fd = client_to(f);
    char big[5000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(send(fd, big, sizeof(big), 0), sizeof(big));
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_ERROR);
    assert_int_equal(f->srv.last_err, -EMSGSIZE);
    close(fd);
}

/* ---- callbacks that call back --------------------------------------------- */

/* A server of custom callbacks for the cases below: what on_data saw,
 * and what it does. */
struct probe {
    nc_loop *loop;
    nc_listener *l;
    nc_addr addr;
    nc_conn *c[2];
    int opens, closes, want_opens;
    nc_close_reason reason;
    int err;
    enum { P_HOLD, P_CLOSE_ON_REDELIVERY, P_ABORT_ON_REDELIVERY,
           P_CLOSE_IN_END_CALL, P_CLOSE_OTHER, P_SINK } mode;
    int calls;
    int checked;            /* on_data calls that looked at their data
                               after their own call into the library */
    bool corrupt;           /* ... and found it changed */
    char expect;            /* every byte the peer sends, in these cases */
    size_t got;
};

static void probe_open(nc_conn *c, void *ud)
{
    struct probe *p = ud;
    if (p->opens < 2)
        p->c[p->opens] = c;
    p->opens++;
}

static bool all_are(const void *data, size_t len, char b)
{
    const char *d = data;
    for (size_t i = 0; i < len; i++)
        if (d[i] != b)
            return false;
    return true;
}

static void check_data(struct probe *p, const void *data, size_t len)
{
    p->checked++;
    if (len == 0 || !all_are(data, len, p->expect))
        p->corrupt = true;
}

static size_t probe_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct probe *p = ud;
    p->calls++;
    switch (p->mode) {
    case P_HOLD:
        return 0;
    case P_CLOSE_ON_REDELIVERY:
    case P_ABORT_ON_REDELIVERY:
        if (p->calls == 1) {
            nc_conn_read_stop(c);   /* keep it, for a redelivery */
            return 0;
        }
        if (p->mode == P_CLOSE_ON_REDELIVERY)
            nc_conn_close(c);
        else
            nc_conn_abort(c);
        check_data(p, data, len);
        return len;
    case P_CLOSE_IN_END_CALL:
        if (!nc_conn_eof(c))
            return 0;
        nc_conn_close(c);
        check_data(p, data, len);
        return len;
    case P_CLOSE_OTHER:
        if (c != p->c[0])
            return 0;
        /* The other connection has input waiting in its socket: closing
         * it discards that input, and must not touch what this on_data
         * is reading. */
        nc_conn_close(p->c[1]);
        check_data(p, data, len);
        p->got += len;
        return len;
    case P_SINK:
        p->got += len;
        check_data(p, data, len);
        return len;
    }
    return len;
}

static void probe_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct probe *p = ud;
    (void)c;
    p->closes++;
    p->reason = reason;
    p->err = err;
}

static const nc_conn_callbacks probe_cbs = {
    .on_open = probe_open, .on_data = probe_data, .on_close = probe_close
};

static void probe_start(struct probe *p, int mode, const nc_conn_options *o)
{
    memset(p, 0, sizeof(*p));
    p->mode = mode;
    p->expect = 'x';
    assert_int_equal(nc_loop_new(&p->loop), 0);
    nc_listener_options lo = { 0 };
    if (o)
        lo.conn = *o;
    assert_int_equal(nc_listen(p->loop, "127.0.0.1:0", &lo, &probe_cbs, p,
                               &p->l), 0);
    p->addr = listener_addr0(p->l);
}

static bool probe_opened_all(void *arg)
{
    struct probe *p = arg;
    return p->opens >= p->want_opens;
}

/* A client of p's server, its connection open (p->c[n], n the count of
 * those before it); with paused, the connection's reading is stopped and
 * the loop has turned once since. */
static int probe_client(struct probe *p, bool paused)
{
    int n = p->opens;
    int fd = client_connect(&p->addr);
    assert_true(fd >= 0);
    p->want_opens = n + 1;
    assert_true(run_until(p->loop, probe_opened_all, p, 3000));
    if (paused) {
        nc_conn_read_stop(p->c[n]);
        nc_loop_run(p->loop, NC_RUN_NOWAIT);
    }
    return fd;
}

static bool probe_closed(void *arg)
{
    return ((struct probe *)arg)->closes >= 1;
}

/* A probe listening on loopback (user data: p) with these callbacks, and
 * a client connected to it. */
static int probe_listen_and_connect(
    struct probe *p,
    size_t (*on_data)(nc_conn *, const void *, size_t, void *))
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(nc_loop_new(&p->loop), 0);
    nc_conn_callbacks cbs = { .on_open = probe_open, .on_data = on_data,
                              .on_close = probe_close };
    assert_int_equal(nc_listen(p->loop, "127.0.0.1:0", NULL, &cbs, p, &p->l),
                     0);
    p->addr = listener_addr0(p->l);
    int fd = client_connect(&p->addr);
    assert_true(fd >= 0);
    return fd;
}

static bool probe_called(void *arg)
{
    return ((struct probe *)arg)->calls >= 1;
}

static void send_all(int fd, char b, size_t n)
{
    char buf[4096];
    memset(buf, b, sizeof(buf));
    while (n > 0) {
        size_t k = n < sizeof(buf) ? n : sizeof(buf);
        ssize_t w = send(fd, buf, k, 0);
        assert_true(w > 0);
        n -= (size_t)w;
    }
}

/* on_data on input handed back from the connection's own buffer closes
 * or aborts the connection: the bytes it is reading stay valid for the
 * whole call, as the header promises. */
static void close_during_redelivery(int mode)
{
    struct probe p;
    probe_start(&p, mode, NULL);
    int fd = client_connect(&p.addr);
    assert_true(fd >= 0);
    send_all(fd, 'x', 3000);
    assert_true(run_until(p.loop, probe_called, &p, 3000));
    nc_conn_read_start(p.c[0]);     /* hands the kept 3000 bytes back */
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    assert_int_equal(p.calls, 2);
    assert_true(p.checked > 0 && !p.corrupt);
    assert_int_equal(p.closes, 1);
    assert_int_equal(p.reason, NC_CLOSE_LOCAL);
    nc_loop_free(p.loop);
    close(fd);
}

static void close_from_on_data_of_a_redelivery_keeps_its_data(void **state)
{
    (void)state;
    close_during_redelivery(P_CLOSE_ON_REDELIVERY);
}

static void abort_from_on_data_of_a_redelivery_keeps_its_data(void **state)
{
    (void)state;
    close_during_redelivery(P_ABORT_ON_REDELIVERY);
}

/* keep_half_open's end call carries the bytes left unconsumed, from the
 * connection's buffer; closing from it keeps them valid too. */
static void close_from_the_end_call_keeps_its_data(void **state)
{
    (void)state;
    struct probe p;
    nc_conn_options o = { .keep_half_open = true };
    probe_start(&p, P_CLOSE_IN_END_CALL, &o);
    int fd = client_connect(&p.addr);
    assert_true(fd >= 0);
    send_all(fd, 'x', 3000);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    assert_true(p.checked > 0 && !p.corrupt);
    assert_int_equal(p.closes, 1);
    nc_loop_free(p.loop);
    close(fd);
}

/* on_data of one connection closes another, which has input waiting: the
 * close reads and drops that input, and must not do it in the buffer the
 * first on_data is reading. */
static void closing_another_connection_leaves_this_data_alone(void **state)
{
    (void)state;
    struct probe p;
    probe_start(&p, P_CLOSE_OTHER, NULL);
    int a = probe_client(&p, false);
    int b = probe_client(&p, true);
    send_all(b, 'B', 60000);
    /* A full read's worth for a, so that its read does not find the
     * socket empty and a's data fills the whole shared buffer. */
    send_all(a, 'x', 200000);
    assert_true(run_until(p.loop, probe_called, &p, 3000));
    assert_true(p.checked > 0 && !p.corrupt);
    nc_loop_free(p.loop);
    close(a);
    close(b);
}

/* ---- paused reading and the peer's end ------------------------------------- */

/* Reading paused, then the peer sends its end: the loop waits (the end
 * is seen when reading resumes) instead of spinning on a hang-up the
 * kernel keeps reporting. */
static void paused_connection_does_not_spin_on_the_peers_end(void **state)
{
    (void)state;
    struct probe p;
    probe_start(&p, P_SINK, NULL);
    int fd = probe_client(&p, true);
    send_all(fd, 'x', 100);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    uint64_t n = iterations_during(p.loop, 300);
    assert_true(n < 200);
    assert_int_equal(p.closes, 0);
    nc_conn_read_start(p.c[0]);
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    assert_int_equal(p.got, 100);
    assert_int_equal(p.reason, NC_CLOSE_PEER);
    nc_loop_free(p.loop);
    close(fd);
}

/* The peer sends a request and its end, then reads nothing: the large
 * reply waits in the queue for room (bounded by the idle timeout), and
 * the loop waits with it instead of spinning. */
static size_t big_reply(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)data;
    struct probe *p = ud;
    if (p->calls++ == 0) {
        enum { REPLY = 4 << 20 };
        char *r = malloc(REPLY);
        assert_non_null(r);
        memset(r, 'r', REPLY);
        assert_int_equal(nc_conn_write(c, r, REPLY), 0);
        free(r);
    }
    return len;
}

static void reply_to_a_peer_that_ended_and_does_not_read_does_not_spin(
    void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(nc_loop_new(&p.loop), 0);
    nc_conn_callbacks cbs = { .on_open = probe_open, .on_data = big_reply,
                              .on_close = probe_close };
    nc_listener_options lo = { .conn = { .idle_timeout_ms = 60000 } };
    assert_int_equal(nc_listen(p.loop, "127.0.0.1:0", &lo, &cbs, &p, &p.l),
                     0);
    p.addr = listener_addr0(p.l);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof(small)), 0);
    assert_int_equal(connect(fd, &p.addr.u.sa, p.addr.len), 0);
    assert_int_equal(send(fd, "GET\n", 4, 0), 4);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(p.loop, probe_called, &p, 3000));
    uint64_t n = iterations_during(p.loop, 300);
    assert_true(n < 200);
    assert_int_equal(p.closes, 0);
    /* Reading now, the client gets the whole reply, then the end. */
    size_t total = 0;
    char buf[65536];
    for (;;) {
        nc_loop_run(p.loop, NC_RUN_NOWAIT);
        if (!wait_readable(fd, 10))
            continue;
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    assert_int_equal(total, 4 << 20);
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    assert_int_equal(p.reason, NC_CLOSE_PEER);
    nc_loop_free(p.loop);
    close(fd);
}

/* Reading paused and our side shut down; the peer sends data and its
 * end. Both directions are now closed (a hang-up), but the peer's data
 * is still unread: it is delivered when reading resumes, then the end. */
static void hangup_while_paused_keeps_the_unread_data(void **state)
{
    (void)state;
    struct probe p;
    probe_start(&p, P_SINK, NULL);
    int fd = probe_client(&p, true);
    assert_int_equal(nc_conn_shutdown(p.c[0]), 0);
    nc_loop_run(p.loop, NC_RUN_NOWAIT);
    send_all(fd, 'x', 5000);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(wait_events(nc_conn_fd(p.c[0]), POLLRDHUP, 3000));
    uint64_t n = iterations_during(p.loop, 200);
    assert_true(n < 200);
    assert_int_equal(p.closes, 0);
    nc_conn_read_start(p.c[0]);
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    assert_int_equal(p.got, 5000);
    assert_true(p.checked > 0 && !p.corrupt);
    assert_int_equal(p.reason, NC_CLOSE_PEER);
    assert_int_equal(p.err, 0);
    nc_loop_free(p.loop);
    close(fd);
}

/* ---- a close that leaves the peer's bytes behind lingers ------------------ */

static size_t bye_and_close(nc_conn *c, const void *data, size_t len,
                            void *ud)
{
    (void)data;
    (void)len;
    struct probe *p = ud;
    if (p->calls++ == 0) {
        assert_int_equal(nc_conn_write(c, "bye", 3), 0);
        nc_conn_close(c);
    }
    return 10 < len ? 10 : len;     /* the rest is left */
}

/* The server takes 10 bytes of a burst, answers and closes while the peer
 * goes on sending: the close lingers (discarding) instead of meeting the
 * peer's next bytes with a reset, so the peer reads the answer and a
 * clean end, and its sends never fail. */
static void a_close_leaving_input_behind_lingers_instead_of_resetting(
    void **state)
{
    (void)state;
    struct probe p;
    int fd = probe_listen_and_connect(&p, bye_and_close);
    send_all(fd, 'x', 65536);
    char bye[3];
    assert_true(run_until(p.loop, probe_called, &p, 3000));
    assert_int_equal(read_full(fd, bye, 3, 3000), 3);
    assert_memory_equal(bye, "bye", 3);
    /* More bytes after the server closed, then the end. */
    char more[4096];
    memset(more, 'y', sizeof(more));
    for (int i = 0; i < 16; i++) {
        nc_loop_run(p.loop, NC_RUN_NOWAIT);
        assert_int_equal(send(fd, more, sizeof(more), MSG_NOSIGNAL),
                         (ssize_t)sizeof(more));
    }
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    char c;
    assert_true(wait_readable(fd, 3000));
    assert_int_equal(recv(fd, &c, 1, 0), 0);    /* FIN, not a reset */
    assert_int_equal(p.reason, NC_CLOSE_LOCAL);
    nc_loop_free(p.loop);
    close(fd);
}

static void open_paused(nc_conn *c, void *ud)
{
    probe_open(c, ud);
    nc_conn_read_stop(c);
}

static size_t never_called(nc_conn *c, const void *data, size_t len,
                           void *ud)
{
    (void)c;
    (void)data;
    ((struct probe *)ud)->calls++;
    return len;
}

/* The same with the peer's bytes still in the socket: reading is paused,
 * the peer sends, and the server closes. The close reads them only to
 * discard them, and having found the peer sending it lingers for the
 * peer's end rather than close at once and reset the peer's next bytes. */
static void a_close_finding_unread_bytes_in_the_socket_lingers(void **state)
{
    (void)state;
    struct probe p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(nc_loop_new(&p.loop), 0);
    nc_conn_callbacks cbs = { .on_open = open_paused, .on_data = never_called,
                              .on_close = probe_close };
    assert_int_equal(nc_listen(p.loop, "127.0.0.1:0", NULL, &cbs, &p, &p.l),
                     0);
    p.addr = listener_addr0(p.l);
    int fd = client_connect(&p.addr);
    assert_true(fd >= 0);
    p.want_opens = 1;
    assert_true(run_until(p.loop, probe_opened_all, &p, 3000));
    send_all(fd, 'x', 1000);
    struct pollfd pf = { .fd = nc_conn_fd(p.c[0]), .events = POLLIN };
    assert_int_equal(poll(&pf, 1, 3000), 1);    /* the bytes are there */
    nc_conn_close(p.c[0]);
    nc_loop_run(p.loop, NC_RUN_NOWAIT);
    char c;
    assert_true(wait_readable(fd, 3000));
    assert_int_equal(recv(fd, &c, 1, 0), 0);    /* the server's FIN */
    char more[4096];
    memset(more, 'y', sizeof(more));
    for (int i = 0; i < 16; i++) {
        nc_loop_run(p.loop, NC_RUN_NOWAIT);
        assert_int_equal(send(fd, more, sizeof(more), MSG_NOSIGNAL),
                         (ssize_t)sizeof(more));
    }
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    int soerr = -1;
    socklen_t sl = sizeof(soerr);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl), 0);
    assert_int_equal(soerr, 0);                 /* never reset */
    assert_int_equal(p.calls, 0);
    assert_int_equal(p.reason, NC_CLOSE_LOCAL);
    nc_loop_free(p.loop);
    close(fd);
}

/* ---- redelivery in slices ------------------------------------------------ */

static size_t two_messages(nc_conn *c, const void *data, size_t len,
                           void *ud)
{
    (void)data;
    struct probe *p = ud;
    (void)c;
    if (p->calls++ == 0)
        return 0;       /* not ready yet: the bytes are kept */
    size_t used = 0;
    if (p->got == 0) {
        p->got = 10;                /* the short message */
        used = 10;
    }
    if (len - used < 100000)
        return used;                /* the long one is not complete */
    p->got += 100000;
    return used + 100000;
}

static bool both_messages_taken(void *arg)
{
    return ((struct probe *)arg)->got == 100010;
}

/* A short message, then one longer than the 64 KiB the kept input is
 * handed over in at a time; the first offer is declined, so both are
 * kept. With the next bytes, the first slice is taken in part (the short
 * message), and the rest must follow although the peer sends nothing
 * more. */
static void a_long_message_after_a_short_one_is_handed_back_whole(
    void **state)
{
    (void)state;
    struct probe p;
    int fd = probe_listen_and_connect(&p, two_messages);
    send_all(fd, 'x', 10 + 100000);
    assert_true(run_until(p.loop, both_messages_taken, &p, 3000));
    nc_loop_free(p.loop);
    close(fd);
}

/* ---- an end of stream that races a redelivery ------------------------------ */

static size_t take_after_first(nc_conn *c, const void *data, size_t len,
                               void *ud)
{
    (void)data;
    struct probe *p = ud;
    if (nc_conn_eof(c))
        return len;
    if (p->calls++ == 0) {
        nc_conn_read_stop(c);       /* kept, for a redelivery */
        return 0;
    }
    p->got += len;
    return len;
}

/* Input kept while reading was paused waits for its redelivery, which
 * reading's resumption queued; the peer's end arrives before it runs (on
 * io_uring a receive in flight when the pause began can bring it then,
 * as an end that races the cancel). The end waits behind the kept input:
 * on_data gets every byte first. The race is made here by hand: the end
 * is handed in while the redelivery is queued. */
static void an_end_racing_a_redelivery_waits_behind_it(void **state)
{
    (void)state;
    struct probe p;
    int fd = probe_listen_and_connect(&p, take_after_first);
    send_all(fd, 'x', 1000);
    assert_true(run_until(p.loop, probe_called, &p, 3000));
    nc_conn *c = p.c[0];
    nc_conn_read_start(c);                  /* the redelivery is queued */
    assert_true(c->flags & CF_REDELIVER);
    nc__conn_input_end(c, 0);               /* ... and the end arrives */
    assert_true(run_until(p.loop, probe_closed, &p, 3000));
    assert_int_equal(p.got, 1000);
    assert_int_equal(p.reason, NC_CLOSE_PEER);
    nc_loop_free(p.loop);
    close(fd);
}

int main(void)
{
#define T(name, setup) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(half_closing_peer_gets_every_queued_byte, setup_unix_echo),
        T(bytes_after_an_urgent_mark_arrive_before_the_end, setup_tcp_sink),
        T(bytes_after_a_descriptor_message_arrive_before_the_end,
          setup_unix_sink),
        T(reset_after_data_reports_reset, setup_tcp_sink),
        T(reset_while_reading_is_paused_reports_reset, setup_tcp_sink),
        T(resumed_reading_redelivers_buffered_input, setup_lines_paused),
        T(backpressure_release_redelivers_buffered_input,
          setup_lines_small_queue),
        T(a_streaming_peer_is_held_back_by_backpressure, setup_echo_small),
        T(a_peer_that_streams_after_answers_is_held_back, setup_echo_small),
        cmocka_unit_test(a_stream_after_requests_is_read_in_large_pieces),
        T(end_call_carries_the_unconsumed_bytes, setup_half_open_lines),
        T(end_call_without_leftover_has_length_zero, setup_half_open_lines),
        T(partial_message_buffer_is_its_size_and_freed, setup_lines),
        T(one_read_over_max_input_closes, setup_hoard_small),
        cmocka_unit_test(close_from_on_data_of_a_redelivery_keeps_its_data),
        cmocka_unit_test(abort_from_on_data_of_a_redelivery_keeps_its_data),
        cmocka_unit_test(close_from_the_end_call_keeps_its_data),
        cmocka_unit_test(closing_another_connection_leaves_this_data_alone),
        cmocka_unit_test(paused_connection_does_not_spin_on_the_peers_end),
        cmocka_unit_test(
            reply_to_a_peer_that_ended_and_does_not_read_does_not_spin),
        cmocka_unit_test(hangup_while_paused_keeps_the_unread_data),
        cmocka_unit_test(
            a_close_leaving_input_behind_lingers_instead_of_resetting),
        cmocka_unit_test(a_close_finding_unread_bytes_in_the_socket_lingers),
        cmocka_unit_test(
            a_long_message_after_a_short_one_is_handed_back_whole),
        cmocka_unit_test(an_end_racing_a_redelivery_waits_behind_it),
    };
    return cmocka_run_group_tests_name("conn_read", tests, NULL, NULL);
}
