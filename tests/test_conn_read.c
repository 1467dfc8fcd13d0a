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
 * the way back, on both backends (a multishot receive on io_uring would
 * take in everything the peer sends: it cannot be cancelled while bytes
 * keep coming). */
static void a_streaming_peer_is_held_back_by_backpressure(void **state)
{
    struct fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof(small)), 0);
    assert_int_equal(connect(fd, &f->srv.addr.u.sa, f->srv.addr.len), 0);
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
        T(end_call_carries_the_unconsumed_bytes, setup_half_open_lines),
        T(end_call_without_leftover_has_length_zero, setup_half_open_lines),
        T(partial_message_buffer_is_its_size_and_freed, setup_lines),
        T(one_read_over_max_input_closes, setup_hoard_small),
    };
    return cmocka_run_group_tests_name("conn_read", tests, NULL, NULL);
}
