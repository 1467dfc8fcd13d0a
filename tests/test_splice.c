/* test_splice.c - nc_conn_splice: bytes forwarded between two connections
 * inside the kernel, both ways and in order (what on_data left goes
 * first), with the pipe as flow control (a peer that does not read holds
 * the other back), the end of stream passed on, a closed target ending
 * the splice, and the errors the header names. Real sockets: two clients
 * of one listener are joined by the server. */
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

struct join {
    nc_loop *loop;
    nc_listener *l;
    nc_addr addr;
    nc_conn *c[2];
    int opens, closes[2];
    nc_close_reason reason[2];
    char got[2][64];        /* what on_data saw, per connection */
    size_t got_len[2];
    size_t take_first;      /* on_data of c[0] takes this much, then
                               splices (0: the test splices) */
    int splice_rc;
};

static int which(const struct join *j, const nc_conn *c)
{
    return j->c[1] == c ? 1 : 0;
}

static void join_open(nc_conn *c, void *ud)
{
    struct join *j = ud;
    j->c[j->opens++] = c;
}

static size_t join_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct join *j = ud;
    int i = which(j, c);
    size_t n = len < sizeof(j->got[i]) - j->got_len[i]
                   ? len : sizeof(j->got[i]) - j->got_len[i];
    memcpy(j->got[i] + j->got_len[i], data, n);
    j->got_len[i] += n;
    if (i == 0 && j->take_first && j->opens == 2) {
        size_t used = j->take_first < len ? j->take_first : len;
        j->take_first = 0;
        j->splice_rc = nc_conn_splice(c, j->c[1]);
        return used;
    }
    return len;
}

static void join_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    (void)err;
    struct join *j = ud;
    int i = which(j, c);
    j->closes[i]++;
    j->reason[i] = r;
    j->c[i] = NULL;
}

struct opens_goal {
    struct join *j;
    int n;
};

static bool opened_n(void *arg)
{
    struct opens_goal *g = arg;
    return g->j->opens >= g->n;
}

static bool first_data(void *arg)
{
    return ((struct join *)arg)->got_len[0] >= 11;
}

/* Read from fd (non-blocking) into buf until want bytes came. */
struct reader {
    int fd;
    char *buf;
    size_t want, got;
};

static bool read_step(void *arg)
{
    struct reader *r = arg;
    while (r->got < r->want) {
        ssize_t n = recv(r->fd, r->buf + r->got, r->want - r->got,
                         MSG_DONTWAIT);
        if (n <= 0)
            break;
        r->got += (size_t)n;
    }
    return r->got == r->want;
}

static bool both_closed(void *arg)
{
    struct join *j = arg;
    return j->closes[0] && j->closes[1];
}

/* A server joining its first two clients; fds[i] is the client of c[i]. */
static void join_start(struct join *j, int fds[2], const nc_conn_options *o)
{
    memset(j, 0, sizeof(*j));
    assert_int_equal(nc_loop_new(&j->loop), 0);
    nc_conn_callbacks cbs = { join_open, join_data, NULL, join_close };
    nc_listener_options lo = { 0 };
    if (o)
        lo.conn = *o;
    assert_int_equal(nc_listen(j->loop, "127.0.0.1:0", &lo, &cbs, j, &j->l),
                     0);
    j->addr = listener_addr0(j->l);
    for (int i = 0; i < 2; i++) {
        fds[i] = client_connect(&j->addr);
        assert_true(fds[i] >= 0);
        struct opens_goal g = { j, i + 1 };
        assert_true(run_until(j->loop, opened_n, &g, 3000));
    }
}

static char pattern_at(size_t i, int salt)
{
    return (char)(i * 7 + i / 251 + salt);
}

/* Non-blocking pumping of both clients: each sends its size of pattern,
 * then shuts down; each checks what it reads against the other's. */
struct duplex {
    int fd[2];
    size_t size[2], sent[2], got[2];
    bool shut[2], eof[2], bad;
};

static bool duplex_step(void *arg)
{
    struct duplex *d = arg;
    char buf[65536];
    for (int i = 0; i < 2; i++) {
        while (d->sent[i] < d->size[i]) {
            size_t n = d->size[i] - d->sent[i];
            if (n > sizeof(buf))
                n = sizeof(buf);
            for (size_t k = 0; k < n; k++)
                buf[k] = pattern_at(d->sent[i] + k, i);
            ssize_t w = send(d->fd[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w <= 0)
                break;
            d->sent[i] += (size_t)w;
        }
        if (d->sent[i] == d->size[i] && !d->shut[i]) {
            shutdown(d->fd[i], SHUT_WR);
            d->shut[i] = true;
        }
        for (;;) {
            ssize_t r = recv(d->fd[i], buf, sizeof(buf), MSG_DONTWAIT);
            if (r == 0)
                d->eof[i] = true;
            if (r <= 0)
                break;
            for (ssize_t k = 0; k < r; k++)
                if (buf[k] != pattern_at(d->got[i] + (size_t)k, !i))
                    d->bad = true;
            d->got[i] += (size_t)r;
        }
    }
    return d->eof[0] && d->eof[1];
}

/* 16 MiB one way and 4 MiB the other, both spliced: every byte in order,
 * each end passed on, and with half_close both close as their peer's. */
static void both_ways_in_order_and_the_ends_passed_on(void **state)
{
    (void)state;
    struct join j;
    int fds[2];
    nc_conn_options o = { .half_close = true };
    join_start(&j, fds, &o);
    assert_int_equal(nc_conn_splice(j.c[0], j.c[1]), 0);
    assert_int_equal(nc_conn_splice(j.c[1], j.c[0]), 0);
    struct duplex d = { .fd = { fds[0], fds[1] },
                        .size = { 16u << 20, 4u << 20 } };
    assert_true(run_until(j.loop, duplex_step, &d, 20000));
    assert_false(d.bad);
    assert_int_equal(d.got[1], 16u << 20);
    assert_int_equal(d.got[0], 4u << 20);
    assert_true(run_until(j.loop, both_closed, &j, 3000));
    assert_int_equal(j.reason[0], NC_CLOSE_PEER);
    assert_int_equal(j.reason[1], NC_CLOSE_PEER);
    assert_int_equal(j.got_len[0], 0);      /* nothing through on_data */
    assert_int_equal(j.got_len[1], 0);
    nc_loop_stats st;
    assert_int_equal(nc_loop_stats_get(j.loop, &st), 0);
    assert_int_equal(st.bytes_in, (16u << 20) + (4u << 20));
    assert_int_equal(st.bytes_out, (16u << 20) + (4u << 20));
    nc_loop_free(j.loop);
    close(fds[0]);
    close(fds[1]);
}

/* Spliced from inside on_data, which took 6 bytes of 11: the other 5
 * arrive first, then what follows. */
static void what_on_data_left_goes_first(void **state)
{
    (void)state;
    struct join j;
    int fds[2];
    join_start(&j, fds, NULL);
    j.take_first = 6;
    assert_int_equal(send(fds[0], "hello world", 11, 0), 11);
    assert_true(run_until(j.loop, first_data, &j, 3000));
    assert_int_equal(j.splice_rc, 0);
    assert_int_equal(send(fds[0], ", again", 7, 0), 7);
    char buf[12];
    struct reader r = { fds[1], buf, 12, 0 };
    assert_true(run_until(j.loop, read_step, &r, 3000));
    assert_memory_equal(buf, "world, again", 12);
    assert_memory_equal(j.got[0], "hello world", 11);
    nc_loop_free(j.loop);
    close(fds[0]);
    close(fds[1]);
}

/* Reads fd without waiting; true at its end (or an error). */
struct sink {
    int fd;
    size_t got;
    bool failed;
};

static bool sink_step(void *arg)
{
    struct sink *k = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(k->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            k->got += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        k->failed = n < 0;
        return true;
    }
}

/* The target's client reads nothing: the pipe fills and stops reading the
 * source, whose client then stalls on full buffers; nothing piles up in
 * this process, and the loop does not spin. */
static void a_target_that_does_not_read_holds_the_source_back(void **state)
{
    (void)state;
    struct join j;
    int fds[2];
    join_start(&j, fds, NULL);
    assert_int_equal(nc_conn_splice(j.c[0], j.c[1]), 0);
    char buf[65536];
    memset(buf, 'x', sizeof(buf));
    size_t sent = 0;
    for (int i = 0; i < 2000 && sent < (256u << 20); i++) {
        ssize_t w = send(fds[0], buf, sizeof(buf), MSG_DONTWAIT);
        if (w > 0)
            sent += (size_t)w;
        nc_loop_run(j.loop, NC_RUN_NOWAIT);
    }
    /* Held back: kernel buffers and one pipe, not 256 MiB. */
    assert_true(sent < (64u << 20));
    nc_loop_stats st;
    assert_int_equal(nc_loop_stats_get(j.loop, &st), 0);
    assert_true(st.bytes_in - st.bytes_out <= (2u << 20));
    /* And while held back the loop waits: the source, readable, is not
     * read into a full pipe again and again. */
    assert_true(iterations_during(j.loop, 300) < 200);
    /* Held back, not cut: once the reader reads, every byte the source's
     * client sent comes through, then the end. */
    assert_int_equal(shutdown(fds[0], SHUT_WR), 0);
    struct sink k = { .fd = fds[1] };
    assert_true(run_until(j.loop, sink_step, &k, 10000));
    assert_false(k.failed);
    assert_int_equal(k.got, sent);
    nc_loop_free(j.loop);
    close(fds[0]);
    close(fds[1]);
}

static bool five_seen(void *arg)
{
    return ((struct join *)arg)->got_len[0] >= 5;
}

/* The target closes: the splice ends, and what the source receives from
 * then on is handed to its on_data again. */
static void a_closed_target_ends_the_splice(void **state)
{
    (void)state;
    struct join j;
    int fds[2];
    join_start(&j, fds, NULL);
    assert_int_equal(nc_conn_splice(j.c[0], j.c[1]), 0);
    nc_conn_abort(j.c[1]);
    nc_loop_run(j.loop, NC_RUN_NOWAIT);
    assert_int_equal(send(fds[0], "after", 5, 0), 5);
    assert_true(run_until(j.loop, five_seen, &j, 3000));
    assert_memory_equal(j.got[0], "after", 5);
    nc_loop_free(j.loop);
    close(fds[0]);
    close(fds[1]);
}

/* The errors the header names, each changing nothing. */
static void bad_splices_are_refused(void **state)
{
    (void)state;
    struct join j;
    int fds[2];
    join_start(&j, fds, NULL);
    assert_int_equal(nc_conn_splice(NULL, j.c[1]), -EINVAL);
    assert_int_equal(nc_conn_splice(j.c[0], NULL), -EINVAL);
    assert_int_equal(nc_conn_splice(j.c[0], j.c[0]), -EINVAL);
    assert_int_equal(nc_conn_splice(j.c[0], j.c[1]), 0);
    assert_int_equal(nc_conn_splice(j.c[0], j.c[1]), -EBUSY);
    assert_int_equal(nc_conn_shutdown(j.c[0]), 0);
    assert_int_equal(nc_conn_splice(j.c[1], j.c[0]), -EPIPE);
    nc_conn_close(j.c[1]);
    assert_int_equal(nc_conn_splice(j.c[1], j.c[0]), -ENOTCONN);
    nc_loop_free(j.loop);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(both_ways_in_order_and_the_ends_passed_on),
        cmocka_unit_test(what_on_data_left_goes_first),
        cmocka_unit_test(a_target_that_does_not_read_holds_the_source_back),
        cmocka_unit_test(a_closed_target_ends_the_splice),
        cmocka_unit_test(bad_splices_are_refused),
    };
    return cmocka_run_group_tests_name("splice", tests, NULL, NULL);
}
