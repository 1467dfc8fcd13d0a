/*
 * timer.h - timers on a per-loop 4-ary min-heap ordered by (deadline,
 * start order). The library embeds nc_timer in its own objects (listener
 * back-off, timeout lists); nc_timer_new() boxes one for users.
 *
 * Contract: a timer never fires before its deadline; one that is overdue
 * fires once (a repeating one then keeps its phase); timers with equal
 * deadlines fire in start order; a pass fires only timers started before
 * it began.
 */
#ifndef NC_TIMER_H
#define NC_TIMER_H

#include "common.h"

#include <stdbool.h>

struct nc_timer {
    nc_loop *loop;
    uint64_t deadline_ns;
    uint64_t repeat_ns;
    uint64_t seq;          /* start order: ties fire in start order */
    size_t heap_index;     /* TIMER_STOPPED when not in the heap */
    nc_timer_fn fn;
    void *ud;
    bool counted;          /* a started timer keeps NC_RUN_DEFAULT going */
};
#define TIMER_STOPPED ((size_t)-1)

/* One heap entry: the deadline is cached next to the pointer so that a
 * sift compares entries of one cache line. */
struct timer_slot {
    uint64_t deadline_ns;
    nc_timer *timer;
};

/* Initialise an embedded timer (stopped). counted: whether it keeps
 * nc_loop_run(NC_RUN_DEFAULT) going while started. */
void nc__timer_init(nc_loop *loop, nc_timer *t, nc_timer_fn fn, void *ud,
                    bool counted);
/* Exactly nc_timer_start() / nc_timer_stop(). */
int nc__timer_start(nc_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
void nc__timer_stop(nc_timer *t);
/* Start (or move) t to fire once at the absolute CLOCK_MONOTONIC time
 * deadline_ns. Errors: -ENOMEM. */
int nc__timer_start_at(nc_timer *t, uint64_t deadline_ns);
static inline bool timer_active(const nc_timer *t)
{
    return t->heap_index != TIMER_STOPPED;
}

/* ms until the earliest deadline (rounded up), -1 if none. */
int nc__timers_next_timeout(nc_loop *loop);
/* Fire every timer due at the loop's cached time (each at most once). */
void nc__timers_run(nc_loop *loop);
/* Release the heap (the timers belong to their owners). */
void nc__timers_free(nc_loop *loop);

#endif /* NC_TIMER_H */
