/*
 * test_timer.c - timers: never early, fire once each in deadline order,
 * stop/restart/free from callbacks, repeating timers without drift, an
 * overdue repeating timer fires once and keeps its phase, and a timer
 * restarted with timeout 0 from its callback fires once per pass.
 *
 * Every run is bounded: run_until_done() iterates with NC_RUN_ONCE under a
 * guard timer. Some cases read nc_timer's fields (lib/timer.h) to check
 * the heap order and the phase exactly, which wall-clock times cannot, and
 * start timers at exact absolute deadlines with the internal
 * nc__timer_start_at(); they read the loop's cached time, and none
 * writes into the loop or the heap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define GUARD_MS 5000
#define MS 1000000u

static uint64_t now_ns(void)
{
    return clock_now_ns();
}

static void guard_cb(nc_timer *t, void *ud)
{
    (void)t;
    *(bool *)ud = true;
}

/* Run the loop until *done, failing after GUARD_MS. */
static void run_until_done(nc_loop *loop, bool *done)
{
    assert_true(run_until(loop, flag_set, done, GUARD_MS));
}

/* ---- one-shot -------------------------------------------------------------- */

struct shot {
    int calls;
    uint64_t fired_ns;
    bool done;
    bool active_in_cb;
};

static void shot_cb(nc_timer *t, void *ud)
{
    struct shot *s = ud;
    s->calls++;
    s->fired_ns = now_ns();
    s->done = true;
    s->active_in_cb = nc_timer_active(t);
}

static void one_shot_fires_once_and_never_early(void **state)
{
    nc_loop *loop = *state;
    struct shot s = { 0 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, shot_cb, &s, &t), 0);
    uint64_t t0 = now_ns();
    assert_int_equal(nc_timer_start(t, 20, 0), 0);
    run_until_done(loop, &s.done);
    assert_true(s.fired_ns - t0 >= 20 * MS);
    /* Nothing else is active: DEFAULT returns, and it did not fire again. */
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(s.calls, 1);
    nc_timer_free(t);
}

struct late {
    nc_timer *other;
    uint64_t started_ns;
};

/* Blocks 30 ms, leaving the loop's cached time stale, then starts other. */
static void late_start_cb(nc_timer *t, void *ud)
{
    struct late *l = ud;
    (void)t;
    uint64_t busy_until = now_ns() + 30 * MS;
    while (now_ns() < busy_until)
        continue;
    l->started_ns = now_ns();
    assert_int_equal(nc_timer_start(l->other, 10, 0), 0);
}

static void timer_started_after_a_long_callback_is_not_early(void **state)
{
    nc_loop *loop = *state;
    struct shot s = { 0 };
    struct late l = { 0 };
    nc_timer *first;
    assert_int_equal(nc_timer_new(loop, shot_cb, &s, &l.other), 0);
    assert_int_equal(nc_timer_new(loop, late_start_cb, &l, &first), 0);
    assert_int_equal(nc_timer_start(first, 0, 0), 0);
    run_until_done(loop, &s.done);
    assert_true(s.fired_ns - l.started_ns >= 10 * MS);
    nc_timer_free(first);
    nc_timer_free(l.other);
}

static void timer_active_follows_start_stop_and_firing(void **state)
{
    nc_loop *loop = *state;
    struct shot s = { 0 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, shot_cb, &s, &t), 0);
    assert_false(nc_timer_active(t));
    assert_int_equal(nc_timer_start(t, 1000, 0), 0);
    assert_true(nc_timer_active(t));
    nc_timer_stop(t);
    assert_false(nc_timer_active(t));
    nc_timer_stop(t);
    assert_int_equal(nc_timer_start(t, 0, 0), 0);
    run_until_done(loop, &s.done);
    assert_false(s.active_in_cb);
    assert_false(nc_timer_active(t));

    s.done = false;
    assert_int_equal(nc_timer_start(t, 0, 1000), 0);
    run_until_done(loop, &s.done);
    assert_true(s.active_in_cb);
    assert_true(nc_timer_active(t));
    nc_timer_free(t);

    assert_false(nc_timer_active(NULL));
    assert_int_equal(nc_timer_start(NULL, 1, 0), -EINVAL);
    assert_int_equal(nc_timer_new(loop, NULL, NULL, &t), -EINVAL);
    nc_timer_free(NULL);
}

/* ---- many timers: order ----------------------------------------------------- */

#define MANY 10000

struct many {
    nc_timer *t[MANY];
    int order[MANY];
    int fired;
    int target;
    int calls[MANY];
    bool done;
};

struct many_item {
    struct many *m;
    int index;
};

static void many_cb(nc_timer *t, void *ud)
{
    struct many_item *it = ud;
    struct many *m = it->m;
    assert_true(t->deadline_ns <= t->loop->now_ns);
    m->calls[it->index]++;
    m->order[m->fired++] = it->index;
    if (m->fired == m->target)
        m->done = true;
}

static void many_timers_fire_once_each_in_deadline_order(void **state)
{
    nc_loop *loop = *state;
    struct many *m = calloc(1, sizeof(*m));
    struct many_item *items = calloc(MANY, sizeof(*items));
    uint64_t *start_ns = calloc(MANY, sizeof(*start_ns));
    unsigned *timeout = calloc(MANY, sizeof(*timeout));
    assert_non_null(m);
    assert_non_null(items);
    assert_non_null(start_ns);
    assert_non_null(timeout);
    m->target = MANY;
    srand(12345);
    for (int i = 0; i < MANY; i++) {
        items[i] = (struct many_item){ m, i };
        timeout[i] = (unsigned)(rand() % 201);
        assert_int_equal(nc_timer_new(loop, many_cb, &items[i], &m->t[i]), 0);
    }
    for (int i = 0; i < MANY; i++) {
        start_ns[i] = now_ns();
        assert_int_equal(nc_timer_start(m->t[i], timeout[i], 0), 0);
    }
    run_until_done(loop, &m->done);

    uint64_t finished = now_ns();
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(m->calls[i], 1);
        /* Never early: the deadline honours the timeout from the start. */
        assert_true(m->t[i]->deadline_ns >= start_ns[i] + timeout[i] * MS);
        assert_true(m->t[i]->deadline_ns <= finished);
    }
    for (int k = 1; k < MANY; k++) {
        const nc_timer *a = m->t[m->order[k - 1]];
        const nc_timer *b = m->t[m->order[k]];
        assert_true(a->deadline_ns < b->deadline_ns ||
                    (a->deadline_ns == b->deadline_ns && a->seq < b->seq));
    }
    for (int i = 0; i < MANY; i++)
        nc_timer_free(m->t[i]);
    free(timeout);
    free(start_ns);
    free(items);
    free(m);
}

static void equal_timeouts_fire_in_start_order(void **state)
{
    nc_loop *loop = *state;
    enum { N = 500 };
    struct many *m = calloc(1, sizeof(*m));
    struct many_item *items = calloc(N, sizeof(*items));
    assert_non_null(m);
    assert_non_null(items);
    m->target = N;
    for (int i = 0; i < N; i++) {
        items[i] = (struct many_item){ m, i };
        assert_int_equal(nc_timer_new(loop, many_cb, &items[i], &m->t[i]), 0);
    }
    /* Started in reverse creation order: firing must follow start order. */
    for (int i = N - 1; i >= 0; i--)
        assert_int_equal(nc_timer_start(m->t[i], 5, 0), 0);
    run_until_done(loop, &m->done);
    for (int k = 0; k < N; k++)
        assert_int_equal(m->order[k], N - 1 - k);
    for (int i = 0; i < N; i++)
        nc_timer_free(m->t[i]);
    free(items);
    free(m);
}

/* Stops and restarts at random places in the heap move entries both up
 * and down; whatever remains must still fire in order, once each. */
static void random_stops_and_restarts_keep_heap_order(void **state)
{
    nc_loop *loop = *state;
    enum { N = 4000 };
    struct many *m = calloc(1, sizeof(*m));
    struct many_item *items = calloc(N, sizeof(*items));
    bool *live = calloc(N, sizeof(*live));
    assert_non_null(m);
    assert_non_null(items);
    assert_non_null(live);
    srand(777);
    for (int i = 0; i < N; i++) {
        items[i] = (struct many_item){ m, i };
        assert_int_equal(nc_timer_new(loop, many_cb, &items[i], &m->t[i]), 0);
        assert_int_equal(nc_timer_start(m->t[i], (uint64_t)(rand() % 100),
                                        0), 0);
        live[i] = true;
    }
    for (int k = 0; k < 3 * N; k++) {
        int i = rand() % N;
        if (rand() % 2) {
            nc_timer_stop(m->t[i]);
            live[i] = false;
        } else {
            assert_int_equal(nc_timer_start(m->t[i],
                                            (uint64_t)(rand() % 100), 0), 0);
            live[i] = true;
        }
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(nc_timer_active(m->t[i]), live[i]);
        m->target += live[i];
    }
    if (m->target > 0)
        run_until_done(loop, &m->done);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(m->fired, m->target);
    for (int i = 0; i < N; i++)
        assert_int_equal(m->calls[i], live[i] ? 1 : 0);
    for (int k = 1; k < m->fired; k++) {
        const nc_timer *x = m->t[m->order[k - 1]];
        const nc_timer *y = m->t[m->order[k]];
        assert_true(x->deadline_ns < y->deadline_ns ||
                    (x->deadline_ns == y->deadline_ns && x->seq < y->seq));
    }
    for (int i = 0; i < N; i++)
        nc_timer_free(m->t[i]);
    free(live);
    free(items);
    free(m);
}

/* Real deadlines come from a nanosecond clock and rarely tie; start them
 * at one exact absolute deadline, so that only the start order tells them
 * apart. */
static void exact_deadline_ties_fire_in_start_order(void **state)
{
    nc_loop *loop = *state;
    enum { N = 300 };
    struct many *m = calloc(1, sizeof(*m));
    struct many_item *items = calloc(N, sizeof(*items));
    assert_non_null(m);
    assert_non_null(items);
    m->target = N;
    for (int i = 0; i < N; i++) {
        items[i] = (struct many_item){ m, i };
        assert_int_equal(nc_timer_new(loop, many_cb, &items[i], &m->t[i]), 0);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
                  3 * MS;
    for (int i = N - 1; i >= 0; i--)
        assert_int_equal(nc__timer_start_at(m->t[i], at), 0);
    run_until_done(loop, &m->done);
    for (int k = 0; k < N; k++)
        assert_int_equal(m->order[k], N - 1 - k);
    for (int i = 0; i < N; i++)
        nc_timer_free(m->t[i]);
    free(items);
    free(m);
}

/* ---- callbacks acting on timers --------------------------------------------- */

struct duo {
    nc_timer *a, *b;
    int a_calls, b_calls;
    bool done;
};

static void duo_a_cb(nc_timer *t, void *ud)
{
    struct duo *d = ud;
    (void)t;
    d->a_calls++;
    nc_timer_stop(d->b);
    d->done = true;
}

static void duo_b_cb(nc_timer *t, void *ud)
{
    struct duo *d = ud;
    (void)t;
    d->b_calls++;
}

static void timer_stopped_by_another_timers_callback_never_fires(void **state)
{
    nc_loop *loop = *state;
    struct duo d = { 0 };
    assert_int_equal(nc_timer_new(loop, duo_a_cb, &d, &d.a), 0);
    assert_int_equal(nc_timer_new(loop, duo_b_cb, &d, &d.b), 0);
    /* Same timeout, b started second: both are due in the same pass. */
    assert_int_equal(nc_timer_start(d.a, 2, 0), 0);
    assert_int_equal(nc_timer_start(d.b, 2, 0), 0);
    run_until_done(loop, &d.done);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(d.a_calls, 1);
    assert_int_equal(d.b_calls, 0);
    assert_false(nc_timer_active(d.b));
    nc_timer_free(d.a);
    nc_timer_free(d.b);
}

struct again {
    int calls;
    uint64_t last_ns;
    uint64_t start_ns;
    bool done;
};

static void again_cb(nc_timer *t, void *ud)
{
    struct again *a = ud;
    a->calls++;
    a->last_ns = now_ns();
    if (a->calls < 3) {
        a->start_ns = now_ns();
        assert_int_equal(nc_timer_start(t, 2, 0), 0);
    } else {
        a->done = true;
    }
}

static void timer_restarted_from_its_own_callback_fires_again(void **state)
{
    nc_loop *loop = *state;
    struct again a = { 0 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, again_cb, &a, &t), 0);
    assert_int_equal(nc_timer_start(t, 1, 0), 0);
    run_until_done(loop, &a.done);
    assert_int_equal(a.calls, 3);
    assert_true(a.last_ns - a.start_ns >= 2 * MS);
    assert_false(nc_timer_active(t));
    nc_timer_free(t);
}

struct freed {
    int calls;
    bool done;
};

static void free_self_cb(nc_timer *t, void *ud)
{
    struct freed *f = ud;
    f->done = ++f->calls == 2;
    nc_timer_free(t);
}

static void timer_freed_from_its_own_callback(void **state)
{
    nc_loop *loop = *state;
    struct freed f = { 0 };
    nc_timer *once, *rep;
    assert_int_equal(nc_timer_new(loop, free_self_cb, &f, &once), 0);
    assert_int_equal(nc_timer_new(loop, free_self_cb, &f, &rep), 0);
    assert_int_equal(nc_timer_start(once, 1, 0), 0);
    assert_int_equal(nc_timer_start(rep, 1, 1), 0);
    run_until_done(loop, &f.done);
    /* Both are gone: nothing keeps the loop running. */
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(f.calls, 2);
}

/* ---- repeating -------------------------------------------------------------- */

#define PERIODS 15
#define PERIOD_MS 20

struct rep {
    uint64_t fired_ns[PERIODS];
    int calls;
    bool done;
};

static void rep_cb(nc_timer *t, void *ud)
{
    struct rep *r = ud;
    r->fired_ns[r->calls++] = now_ns();
    if (r->calls == PERIODS) {
        nc_timer_stop(t);
        r->done = true;
    }
}

static void repeating_timer_is_never_early_and_does_not_drift(void **state)
{
    nc_loop *loop = *state;
    struct rep r = { 0 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, rep_cb, &r, &t), 0);
    uint64_t t0 = now_ns();
    assert_int_equal(nc_timer_start(t, PERIOD_MS, PERIOD_MS), 0);
    run_until_done(loop, &r.done);
    assert_int_equal(r.calls, PERIODS);
    for (int k = 1; k <= PERIODS; k++) {
        uint64_t ideal = t0 + (uint64_t)k * PERIOD_MS * MS;
        uint64_t got = r.fired_ns[k - 1];
        assert_true(got >= ideal);
        /* Lateness does not accumulate: bounded by one period for every
         * k, not growing with k. */
        assert_true(got - ideal < PERIOD_MS * MS);
    }
    nc_timer_free(t);
}

struct overdue {
    nc_loop *loop;
    nc_timer *rep;
    uint64_t first_deadline;
    uint64_t fired_ns[4];
    uint64_t loop_now[4];
    uint64_t next_deadline[4];
    int calls;
    bool done;
};

static void overdue_rep_cb(nc_timer *t, void *ud)
{
    struct overdue *o = ud;
    o->fired_ns[o->calls] = now_ns();
    o->loop_now[o->calls] = t->loop->now_ns;
    /* Already re-armed before this call. */
    o->next_deadline[o->calls] = t->deadline_ns;
    if (++o->calls == 4) {
        nc_timer_stop(t);
        o->done = true;
    }
}

static void busy_cb(nc_timer *t, void *ud)
{
    uint64_t until = *(uint64_t *)ud;
    (void)t;
    while (now_ns() < until)
        continue;
}

static void overdue_repeating_timer_fires_once_then_keeps_phase(void **state)
{
    nc_loop *loop = *state;
    enum { P = 20 };
    struct overdue o = { .loop = loop };
    nc_timer *busy;
    assert_int_equal(nc_timer_new(loop, overdue_rep_cb, &o, &o.rep), 0);
    assert_int_equal(nc_timer_start(o.rep, P, P), 0);
    o.first_deadline = o.rep->deadline_ns;
    /* Block the loop from before the first firing until 3.5 periods past
     * it: the timer misses three periods. */
    uint64_t until = o.first_deadline + 3 * P * MS + P * MS / 2;
    assert_int_equal(nc_timer_new(loop, busy_cb, &until, &busy), 0);
    assert_int_equal(nc_timer_start(busy, P / 2, 0), 0);

    int iterations = 0;
    int calls_before;
    bool expired = false;
    nc_timer *guard;
    assert_int_equal(nc_timer_new(loop, guard_cb, &expired, &guard), 0);
    assert_int_equal(nc_timer_start(guard, GUARD_MS, 0), 0);
    while (!o.done && !expired) {
        calls_before = o.calls;
        assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
        /* Never a burst: at most one firing per iteration. */
        assert_true(o.calls - calls_before <= 1);
        iterations++;
    }
    assert_false(expired);
    nc_timer_free(guard);
    nc_timer_free(busy);

    /* The first firing came late, after the busy callback. */
    assert_true(o.fired_ns[0] >= until);
    for (int k = 0; k < 4; k++) {
        uint64_t next = o.next_deadline[k];
        /* On the original phase, and the first period after the firing. */
        assert_int_equal((next - o.first_deadline) % (P * MS), 0);
        assert_true(next > o.loop_now[k]);
        assert_true(next - P * MS <= o.loop_now[k]);
        if (k > 0) {
            assert_true(o.fired_ns[k] >= o.next_deadline[k - 1]);
            assert_int_equal(next - o.next_deadline[k - 1], P * MS);
        }
    }
    /* Missed periods were skipped, not replayed: 0, 1, 2, 3 missed. */
    assert_true(o.next_deadline[0] >= o.first_deadline + 4 * P * MS);
    nc_timer_free(o.rep);
}

struct zero {
    int calls;
};

static void zero_again_cb(nc_timer *t, void *ud)
{
    struct zero *z = ud;
    z->calls++;
    assert_int_equal(nc_timer_start(t, 0, 0), 0);
}

static void zero_timeout_restart_fires_once_per_pass(void **state)
{
    nc_loop *loop = *state;
    struct zero z = { 0 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, zero_again_cb, &z, &t), 0);
    assert_int_equal(nc_timer_start(t, 0, 0), 0);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
        assert_int_equal(z.calls, i);
    }
    nc_timer_free(t);
}

/* A timer restarted from its own callback with a deadline that is
 * already due (a coarse clock can make a zero timeout look like that)
 * must wait for the next pass: only the pass's start-order limit stops it
 * from firing again and again. A deadline of 1 ns is long past. */
struct coarse {
    int calls;
};

static void bounded_zero_again_cb(nc_timer *t, void *ud)
{
    struct coarse *c = ud;
    if (++c->calls < 100)
        assert_int_equal(nc__timer_start_at(t, 1), 0);
}

static void zero_timeout_restart_waits_for_next_pass_even_if_due(
    void **state)
{
    nc_loop *loop = *state;
    struct coarse c = { 0 };
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, bounded_zero_again_cb, &c, &t), 0);
    assert_int_equal(nc_timer_start(t, 0, 0), 0);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
        assert_int_equal(c.calls, i);
    }
    nc_timer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, loop_setup, loop_teardown)
        T(one_shot_fires_once_and_never_early),
        T(timer_started_after_a_long_callback_is_not_early),
        T(timer_active_follows_start_stop_and_firing),
        T(many_timers_fire_once_each_in_deadline_order),
        T(equal_timeouts_fire_in_start_order),
        T(exact_deadline_ties_fire_in_start_order),
        T(random_stops_and_restarts_keep_heap_order),
        T(timer_stopped_by_another_timers_callback_never_fires),
        T(timer_restarted_from_its_own_callback_fires_again),
        T(timer_freed_from_its_own_callback),
        T(repeating_timer_is_never_early_and_does_not_drift),
        T(overdue_repeating_timer_fires_once_then_keeps_phase),
        T(zero_timeout_restart_fires_once_per_pass),
        T(zero_timeout_restart_waits_for_next_pass_even_if_due),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
