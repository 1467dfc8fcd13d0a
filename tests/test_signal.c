/*
 * test_signal.c - signal handlers run in the loop through a signalfd:
 * delivery, stopping a run from a handler, several signals, closing from
 * a handler, argument errors and the thread's signal mask.
 *
 * Signals are sent to this thread with raise() while they are blocked
 * (nc_signal_start blocks them), so they wait for the loop. Every run is
 * bounded by a guard timer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include "netcore.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>

#define GUARD_MS 3000

/* Run the loop until *done, failing after GUARD_MS. */
static void run_until_done(nc_loop *loop, bool *done)
{
    assert_true(run_until(loop, flag_set, done, GUARD_MS));
}

static bool is_blocked(int signum)
{
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    return sigismember(&now, signum) == 1;
}

struct got {
    nc_loop *loop;
    int calls;
    int signum;
    bool done;
};

static void got_cb(nc_signal *s, int signum, void *ud)
{
    struct got *g = ud;
    (void)s;
    g->calls++;
    g->signum = signum;
    g->done = true;
}

static void sigusr1_raised_is_handled_in_the_loop(void **state)
{
    nc_loop *loop = *state;
    struct got g = { .loop = loop };
    nc_signal *s;
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g, &s), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(g.calls, 0);
    run_until_done(loop, &g.done);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.signum, SIGUSR1);
    nc_signal_close(s);
}

static void stop_cb(nc_signal *s, int signum, void *ud)
{
    struct got *g = ud;
    (void)s;
    g->calls++;
    g->signum = signum;
    nc_loop_stop(g->loop);
}

static void expire_cb(nc_timer *t, void *ud)
{
    (void)t;
    struct got *g = ud;
    g->done = true;
    nc_loop_stop(g->loop);
}

static void sigint_handler_stops_default_run(void **state)
{
    nc_loop *loop = *state;
    struct got g = { .loop = loop };
    nc_signal *s;
    nc_timer *guard;
    assert_int_equal(nc_signal_start(loop, SIGINT, stop_cb, &g, &s), 0);
    /* The handler keeps the loop alive; only nc_loop_stop ends the run. */
    assert_int_equal(nc_timer_new(loop, expire_cb, &g, &guard), 0);
    assert_int_equal(nc_timer_start(guard, GUARD_MS, 0), 0);
    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_false(g.done);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.signum, SIGINT);
    nc_timer_free(guard);
    nc_signal_close(s);
}

static void two_signals_reach_their_own_handlers(void **state)
{
    nc_loop *loop = *state;
    struct got g1 = { .loop = loop }, g2 = { .loop = loop };
    nc_signal *s1, *s2;
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g1, &s1), 0);
    assert_int_equal(nc_signal_start(loop, SIGUSR2, got_cb, &g2, &s2), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    run_until_done(loop, &g1.done);
    run_until_done(loop, &g2.done);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g1.signum, SIGUSR1);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g2.signum, SIGUSR2);
    nc_signal_close(s1);
    nc_signal_close(s2);
}

static void close_self_cb(nc_signal *s, int signum, void *ud)
{
    struct got *g = ud;
    g->calls++;
    g->signum = signum;
    g->done = true;
    nc_signal_close(s);
}

static void handler_may_close_itself(void **state)
{
    nc_loop *loop = *state;
    struct got g = { .loop = loop };
    nc_signal *s;
    assert_false(is_blocked(SIGUSR1));
    assert_int_equal(nc_signal_start(loop, SIGUSR1, close_self_cb, &g, &s),
                     0);
    assert_int_equal(raise(SIGUSR1), 0);
    run_until_done(loop, &g.done);
    assert_int_equal(g.calls, 1);
    assert_false(is_blocked(SIGUSR1));
    /* The signal is free again for a new handler. */
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g, &s), 0);
    nc_signal_close(s);
}

struct cross {
    nc_signal *s[2];
    int calls[2];
    bool done;
};

static void close_other_cb(nc_signal *s, int signum, void *ud)
{
    struct cross *c = ud;
    int me = s == c->s[0] ? 0 : 1;
    (void)signum;
    c->calls[me]++;
    c->done = true;
    if (c->s[1 - me]) {
        nc_signal_close(c->s[1 - me]);
        c->s[1 - me] = NULL;
    }
}

static void handler_closed_by_another_in_same_read_never_runs(void **state)
{
    nc_loop *loop = *state;
    struct cross c = { 0 };
    assert_int_equal(nc_signal_start(loop, SIGUSR1, close_other_cb, &c,
                                     &c.s[0]), 0);
    assert_int_equal(nc_signal_start(loop, SIGUSR2, close_other_cb, &c,
                                     &c.s[1]), 0);
    /* Both pending before the loop reads: one read returns both. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    run_until_done(loop, &c.done);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(c.calls[0] + c.calls[1], 1);
    nc_signal_close(c.s[0]);
    nc_signal_close(c.s[1]);
}

static void bad_and_duplicate_signals_are_refused(void **state)
{
    nc_loop *loop = *state;
    struct got g = { .loop = loop };
    nc_signal *s = NULL, *s2 = NULL;
    assert_int_equal(nc_signal_start(loop, SIGKILL, got_cb, &g, &s), -EINVAL);
    assert_int_equal(nc_signal_start(loop, SIGSTOP, got_cb, &g, &s), -EINVAL);
    assert_int_equal(nc_signal_start(loop, 0, got_cb, &g, &s), -EINVAL);
    assert_int_equal(nc_signal_start(loop, 65, got_cb, &g, &s), -EINVAL);
    assert_int_equal(nc_signal_start(loop, SIGUSR1, NULL, &g, &s), -EINVAL);
    assert_int_equal(nc_signal_start(NULL, SIGUSR1, got_cb, &g, &s), -EINVAL);
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g, &s), 0);
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g, &s2), -EEXIST);
    nc_signal_close(s);
    nc_signal_close(NULL);
}

static void mask_is_restored_after_close(void **state)
{
    nc_loop *loop = *state;
    struct got g = { .loop = loop };
    nc_signal *s;

    assert_false(is_blocked(SIGUSR1));
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g, &s), 0);
    assert_true(is_blocked(SIGUSR1));
    nc_signal_close(s);
    assert_false(is_blocked(SIGUSR1));

    /* Blocked by the program before: it stays blocked. */
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &one, NULL);
    assert_int_equal(nc_signal_start(loop, SIGUSR2, got_cb, &g, &s), 0);
    nc_signal_close(s);
    assert_true(is_blocked(SIGUSR2));
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

static void pending_signal_at_close_is_discarded_not_fatal(void **state)
{
    nc_loop *loop = *state;
    struct got g = { .loop = loop };
    nc_signal *s;
    assert_int_equal(nc_signal_start(loop, SIGUSR1, got_cb, &g, &s), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    /* Unblocking now would run the default action (terminate). */
    nc_signal_close(s);
    assert_false(is_blocked(SIGUSR1));
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGUSR1));
    assert_int_equal(g.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, loop_setup, loop_teardown)
        T(sigusr1_raised_is_handled_in_the_loop),
        T(sigint_handler_stops_default_run),
        T(two_signals_reach_their_own_handlers),
        T(handler_may_close_itself),
        T(handler_closed_by_another_in_same_read_never_runs),
        T(bad_and_duplicate_signals_are_refused),
        T(mask_is_restored_after_close),
        T(pending_signal_at_close_is_discarded_not_fatal),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
