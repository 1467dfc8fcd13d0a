/*
 * test_stats.c - a loop's counters (nc_loop_stats_get): they match what
 * the callbacks saw, tell time blocked from time busy, and add up
 * (accepted + connected == open + closed) even when another thread reads
 * them while connections open and close. Runs under ThreadSanitizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t closed_sum(const nc_loop_stats *s)
{
    uint64_t sum = 0;
    for (int r = 0; r <= NC_CLOSE_REASON_LAST; r++)
        sum += s->closed[r];
    return sum;
}

static bool adds_up(const nc_loop_stats *s)
{
    return s->accepted + s->connected == s->open + closed_sum(s);
}

/* ---- what the callbacks saw ------------------------------------------ */

struct out {
    int opens, closes;
    nc_close_reason reason;
};

static void out_open(nc_conn *c, void *ud)
{
    (void)c;
    ((struct out *)ud)->opens++;
}

static void out_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct out *o = ud;
    (void)c;
    (void)err;
    o->closes++;
    o->reason = reason;
}

static const nc_conn_callbacks out_cbs = {
    .on_open = out_open, .on_close = out_close,
};

static bool out_done(void *arg)
{
    return ((struct out *)arg)->closes == 1;
}

static bool out_opened(void *arg)
{
    return ((struct out *)arg)->opens == 1;
}

static void counters_match_what_the_callbacks_saw(void **state)
{
    nc_loop *loop = *state;
    struct server s;
    nc_listener_options o = { .conn.idle_timeout_ms = 50 };
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", &o, SERVER_ECHO), 0);

    /* Two clients echo 1000 bytes each and close. */
    char buf[1000];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 2; i++) {
        int fd = client_connect(&s.addr);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, sizeof(buf)), (long)sizeof(buf));
        assert_true(server_wait_bytes(&s, (unsigned long long)(i + 1) * 1000,
                                      2000));
        assert_int_equal(read_full(fd, buf, sizeof(buf), 2000),
                         (long)sizeof(buf));
        close(fd);
    }
    /* One stays silent until the idle timeout. */
    int idle = client_connect(&s.addr);
    assert_true(idle >= 0);
    struct count_goal g = { &s.closed, 3 };
    assert_true(run_until(loop, count_reached, &g, 3000));
    close(idle);

    /* Outgoing: one opens and is closed by us, one is refused. */
    struct out ok = { 0 }, refused = { 0 };
    char target[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&s.addr, target, sizeof(target)) > 0);
    assert_int_equal(nc_connect(loop, target, NULL, &out_cbs, &ok, NULL), 0);
    assert_true(run_until(loop, out_opened, &ok, 2000));
    nc_loop_stats mid;
    assert_int_equal(nc_loop_stats_get(loop, &mid), 0);
    assert_int_equal(mid.open, 2);          /* both ends of it */
    assert_true(adds_up(&mid));

    nc_addr dead;
    {
        /* A port nothing listens on: bound, then closed. */
        nc_listener *l;
        assert_int_equal(nc_listen(loop, "127.0.0.1:0", NULL, NULL, NULL, &l), 0);
        dead = listener_addr0(l);
        nc_listener_close(l);
        nc_loop_run(loop, NC_RUN_NOWAIT);
    }
    char dead_target[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&dead, dead_target, sizeof(dead_target)) > 0);
    assert_int_equal(nc_connect(loop, dead_target, NULL, &out_cbs, &refused,
                                NULL), 0);
    assert_true(run_until(loop, out_done, &refused, 2000));

    nc_loop_stats st;
    assert_int_equal(nc_loop_stats_get(loop, &st), 0);
    assert_int_equal(st.accepted, s.opened);
    assert_int_equal(st.accepted, 4);
    assert_int_equal(st.connected, 1);
    assert_int_equal(st.connect_failed, 1);
    assert_int_equal(st.open, 2);
    assert_int_equal(st.closed[NC_CLOSE_PEER], 2);
    assert_int_equal(st.closed[NC_CLOSE_IDLE], 1);
    assert_int_equal(closed_sum(&st), 3);
    assert_true(adds_up(&st));
    /* Bytes: the echoes, both ways. */
    assert_int_equal(st.bytes_in, 2000);
    assert_int_equal(st.bytes_out, 2000);
    assert_true(st.iterations > 0);
    assert_true(st.events >= st.accepted);
    assert_int_equal(st.accept_errors, 0);
    assert_int_equal(st.fd_exhausted, 0);

    nc_loop_free(loop);
    *state = NULL;
    assert_true(server_all_closed_once(&s));
    server_free(&s);
}

/* ---- blocked versus busy ----------------------------------------------- */

static void fired(nc_timer *t, void *ud)
{
    (void)t;
    *(bool *)ud = true;
}

static void spin(nc_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    uint64_t until = now_ns() + 30000000u;
    while (now_ns() < until)
        continue;
}

static void blocked_and_busy_time_tell_idle_from_work(void **state)
{
    nc_loop *loop = *state;
    nc_timer *t, *w;
    bool done = false;
    nc_loop_stats a, b, c;
    assert_int_equal(nc_loop_stats_get(loop, &a), 0);

    /* 50 ms asleep in epoll_wait. */
    assert_int_equal(nc_timer_new(loop, fired, &done, &t), 0);
    assert_int_equal(nc_timer_start(t, 50, 0), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_true(done);
    assert_int_equal(nc_loop_stats_get(loop, &b), 0);
    assert_true(b.blocked_ns - a.blocked_ns >= 45000000u);
    assert_true(b.busy_ns - a.busy_ns < b.blocked_ns - a.blocked_ns);
    assert_true(b.iterations > a.iterations);

    /* 30 ms of callback work. */
    assert_int_equal(nc_timer_new(loop, spin, NULL, &w), 0);
    assert_int_equal(nc_timer_start(w, 0, 0), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(nc_loop_stats_get(loop, &c), 0);
    assert_true(c.busy_ns - b.busy_ns >= 30000000u);
    assert_true(c.blocked_ns - b.blocked_ns < c.busy_ns - b.busy_ns);
    nc_timer_free(t);
    nc_timer_free(w);
}

/* ---- another thread reads while connections come and go -------------- */

struct reader {
    nc_loop *loop;
    atomic_bool stop;
    long reads;
    long bad;              /* reads that did not add up */
    long backwards;        /* a counter that went down */
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    nc_loop_stats prev;
    memset(&prev, 0, sizeof(prev));
    while (!atomic_load(&r->stop)) {
        nc_loop_stats s;
        if (nc_loop_stats_get(r->loop, &s) != 0)
            break;
        r->reads++;
        if (!adds_up(&s))
            r->bad++;
        if (s.accepted < prev.accepted || closed_sum(&s) < closed_sum(&prev) ||
            s.bytes_in < prev.bytes_in)
            r->backwards++;
        prev = s;
    }
    return NULL;
}

static void counters_add_up_for_a_reader_in_another_thread(void **state)
{
    nc_loop *loop = *state;
    struct server s;
    int rounds = under_valgrind() ? 100 : 3000;
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", NULL, SERVER_ECHO), 0);
    struct reader r = { .loop = loop };
    atomic_init(&r.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);

    for (int i = 0; i < rounds; i++) {
        int fd = client_connect(&s.addr);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "ping", 4), 4);
        assert_true(server_wait_bytes(&s, (unsigned long long)(i + 1) * 4, 2000));
        close(fd);
    }
    struct count_goal g = { &s.closed, (unsigned long)rounds };
    assert_true(run_until(loop, count_reached, &g, 5000));
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);

    assert_true(r.reads > 0);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.backwards, 0);
    nc_loop_stats st;
    assert_int_equal(nc_loop_stats_get(loop, &st), 0);
    assert_int_equal(st.accepted, (uint64_t)rounds);
    assert_int_equal(st.open, 0);
    assert_int_equal(closed_sum(&st), (uint64_t)rounds);
    nc_loop_free(loop);
    *state = NULL;
    server_free(&s);
}

static void bad_arguments(void **state)
{
    nc_loop_stats st;
    assert_int_equal(nc_loop_stats_get(NULL, &st), -EINVAL);
    assert_int_equal(nc_loop_stats_get(*state, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(counters_match_what_the_callbacks_saw,
                                        loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(blocked_and_busy_time_tell_idle_from_work,
                                        loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(
            counters_add_up_for_a_reader_in_another_thread, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, loop_setup,
                                        loop_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
