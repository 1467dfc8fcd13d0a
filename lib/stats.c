/*
 * stats.c - a loop's counters for any thread (nc_loop_stats_get).
 *
 * The loop's thread writes its counters with relaxed atomic stores and
 * no lock (loop.h). A reader in another thread therefore sees each value
 * whole, but not all of them at one instant: it may fall between the two
 * counters one event changes (accepted, then open; open, then closed),
 * or see them in another order on a weakly ordered CPU. Such a read does
 * not add up, and is repeated; the loop's thread finishes an event within
 * a few instructions, so a repeat or two is all it ever takes.
 */
#include "loop.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

/* Repeats before each one yields the CPU to the loop's thread, and in
 * all: the last resort, never seen in practice, is to take open from the
 * other counters rather than spin for ever behind a descheduled thread. */
#define SPINS 16
#define TRIES 4096

static void read_once(struct loop_counters *c, nc_loop_stats *s)
{
    s->iterations = counter_get(&c->iterations);
    s->events = counter_get(&c->events);
    s->blocked_ns = counter_get(&c->poll_ns);
    s->busy_ns = counter_get(&c->run_ns);
    s->accepted = counter_get(&c->accepted);
    s->connected = counter_get(&c->connected);
    s->open = counter_get(&c->open);
    for (int r = 0; r <= NC_CLOSE_REASON_LAST; r++)
        s->closed[r] = counter_get(&c->closed[r]);
    s->connect_failed = counter_get(&c->connect_failed);
    s->bytes_in = counter_get(&c->bytes_in);
    s->bytes_out = counter_get(&c->bytes_out);
    s->accept_errors = counter_get(&c->accept_errors);
    s->fd_exhausted = counter_get(&c->fd_exhausted);
    s->shed = counter_get(&c->shed);
    s->evicted = counter_get(&c->evicted);
}

static uint64_t closed_sum(const nc_loop_stats *s)
{
    uint64_t sum = 0;
    for (int r = 0; r <= NC_CLOSE_REASON_LAST; r++)
        sum += s->closed[r];
    return sum;
}

int nc_loop_stats_get(const nc_loop *loop, nc_loop_stats *out)
{
    _Static_assert(NC_CLOSE_REASON_LAST < NC_CLOSE_REASON_MAX,
                   "loop counters hold every close reason");
    if (!loop || !out)
        return -EINVAL;
    /* The counters are atomics: reading them does not change the loop. */
    struct loop_counters *c = (struct loop_counters *)&loop->ctr;
    nc_loop_stats s;
    for (int i = 0;; i++) {
        read_once(c, &s);
        uint64_t closed = closed_sum(&s);
        if (s.accepted + s.connected == s.open + closed)
            break;
        if (i == TRIES) {
            /* open from the others; accepted raised if a reordered read
             * saw a close before its opening. */
            uint64_t opened = s.accepted + s.connected;
            s.open = opened > closed ? opened - closed : 0;
            if (closed > opened)
                s.accepted += closed - opened;
            break;
        }
        if (i % SPINS == SPINS - 1)
            sched_yield();
    }
    *out = s;
    return 0;
}
