/*
 * timer.c - timers: a 4-ary min-heap ordered by (deadline_ns, seq).
 *
 * Each heap entry caches its timer's deadline, so comparisons read only
 * the heap array (a node's four children are 64 contiguous bytes), not
 * the timers scattered in memory. With a million timers this is several
 * times faster than a binary heap of timer pointers (bench_timers). Each
 * timer keeps its heap index, so stopping or moving one is O(log n).
 */
#include "timer.h"
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

/* Longest timeout or period: centuries, and small enough that no deadline
 * arithmetic below can overflow. */
#define TIMER_MAX_MS (UINT64_MAX / 4 / NS_PER_MS)

/* Children of node i are ARITY*i+1 .. ARITY*i+ARITY. */
#define ARITY 4

/* What nc_timer_new() allocates: the timer and its place on the loop's
 * list of things to release at nc_loop_free(). */
struct timer_box {
    nc_timer t;
    struct handle h;
};

static inline bool earlier(const struct timer_slot *a,
                           const struct timer_slot *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->timer->seq < b->timer->seq;
}

static inline void place(struct timer_slot *heap, size_t i,
                         struct timer_slot x)
{
    heap[i] = x;
    x.timer->heap_index = i;
}

static void sift_up(struct timer_slot *heap, size_t i)
{
    struct timer_slot x = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!earlier(&x, &heap[parent]))
            break;
        place(heap, i, heap[parent]);
        i = parent;
    }
    place(heap, i, x);
}

static void sift_down(struct timer_slot *heap, size_t len, size_t i)
{
    struct timer_slot x = heap[i];
    for (;;) {
        size_t first = ARITY * i + 1;
        if (first >= len)
            break;
        size_t end = first + ARITY < len ? first + ARITY : len;
        size_t best = first;
        for (size_t c = first + 1; c < end; c++)
            if (earlier(&heap[c], &heap[best]))
                best = c;
        if (!earlier(&heap[best], &x))
            break;
        place(heap, i, heap[best]);
        i = best;
    }
    place(heap, i, x);
}

/* Restore the heap order around index i after its key changed. */
static void heap_fix(nc_loop *loop, size_t i)
{
    if (i > 0 && earlier(&loop->heap[i], &loop->heap[(i - 1) / ARITY]))
        sift_up(loop->heap, i);
    else
        sift_down(loop->heap, loop->heap_len, i);
}

static int heap_grow(nc_loop *loop)
{
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    struct timer_slot *heap = realloc(loop->heap, cap * sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    loop->heap = heap;
    loop->heap_cap = cap;
    return 0;
}

static int heap_insert(nc_loop *loop, nc_timer *t)
{
    if (loop->heap_len == loop->heap_cap && heap_grow(loop) < 0)
        return -ENOMEM;
    size_t i = loop->heap_len++;
    loop->heap[i] = (struct timer_slot){ t->deadline_ns, t };
    sift_up(loop->heap, i);
    if (t->counted)
        loop->active++;
    return 0;
}

static void heap_remove(nc_loop *loop, nc_timer *t)
{
    size_t i = t->heap_index;
    struct timer_slot last = loop->heap[--loop->heap_len];
    t->heap_index = TIMER_STOPPED;
    if (t->counted)
        loop->active--;
    if (last.timer == t)
        return;
    place(loop->heap, i, last);
    heap_fix(loop, i);
}

void nc__timer_init(nc_loop *loop, nc_timer *t, nc_timer_fn fn, void *ud,
                    bool counted)
{
    t->loop = loop;
    t->deadline_ns = 0;
    t->repeat_ns = 0;
    t->seq = 0;
    t->heap_index = TIMER_STOPPED;
    t->fn = fn;
    t->ud = ud;
    t->counted = counted;
}

/* (Re)place t in the heap at its new deadline. */
static int heap_place(nc_timer *t)
{
    nc_loop *loop = t->loop;
    t->seq = ++loop->timer_seq;
    if (t->heap_index != TIMER_STOPPED) {
        loop->heap[t->heap_index].deadline_ns = t->deadline_ns;
        heap_fix(loop, t->heap_index);
        return 0;
    }
    return heap_insert(loop, t);
}

int nc__timer_start(nc_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    if (!t || !t->loop || !t->fn || timeout_ms > TIMER_MAX_MS ||
        repeat_ms > TIMER_MAX_MS)
        return -EINVAL;
    /* A fresh clock read, not the loop's cached time: a callback that ran
     * long must not make a timer it starts fire early. */
    t->deadline_ns = clock_now_ns() + timeout_ms * NS_PER_MS;
    t->repeat_ns = repeat_ms * NS_PER_MS;
    return heap_place(t);
}

int nc__timer_start_at(nc_timer *t, uint64_t deadline_ns)
{
    t->deadline_ns = deadline_ns;
    t->repeat_ns = 0;
    return heap_place(t);
}

void nc__timer_stop(nc_timer *t)
{
    if (t && t->heap_index != TIMER_STOPPED)
        heap_remove(t->loop, t);
}

int nc__timers_next_timeout(nc_loop *loop)
{
    if (loop->heap_len == 0)
        return -1;
    uint64_t deadline = loop->heap[0].deadline_ns;
    if (deadline <= loop->now_ns)
        return 0;
    uint64_t ms = (deadline - loop->now_ns + NS_PER_MS - 1) / NS_PER_MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Only timers started before this pass began fire in it (seq at most the
 * counter's value then), so a callback restarting its timer with timeout
 * 0 cannot keep the pass going forever. Such a timer's deadline is at
 * least now (started from a fresh clock), so once the root is one of
 * them, every other due timer is too (were the clock coarse, the others
 * would merely wait for the next pass). */
void nc__timers_run(nc_loop *loop)
{
    uint64_t now = loop->now_ns;
    uint64_t last_seq = loop->timer_seq;
    while (loop->heap_len > 0) {
        nc_timer *t = loop->heap[0].timer;
        if (loop->heap[0].deadline_ns > now || t->seq > last_seq)
            break;
        if (t->repeat_ns) {
            /* Re-arm on the original phase; when overdue by several
             * periods, skip to the first period after now (fire once). */
            uint64_t next = t->deadline_ns + t->repeat_ns;
            if (next <= now)
                next += ((now - next) / t->repeat_ns + 1) * t->repeat_ns;
            t->deadline_ns = next;
            t->seq = ++loop->timer_seq;
            loop->heap[0].deadline_ns = next;
            sift_down(loop->heap, loop->heap_len, 0);
        } else {
            heap_remove(loop, t);
        }
        /* fn may restart, stop or free t: do not touch it afterwards. */
        t->fn(t, t->ud);
    }
}

void nc__timers_free(nc_loop *loop)
{
    free(loop->heap);
    loop->heap = NULL;
    loop->heap_len = loop->heap_cap = 0;
}

/* ---- public timers --------------------------------------------------------- */

static void timer_box_close(struct handle *h)
{
    nc_timer_free(&container_of(h, struct timer_box, h)->t);
}

int nc_timer_new(nc_loop *loop, nc_timer_fn fn, void *ud, nc_timer **out)
{
    if (!loop || !fn || !out)
        return -EINVAL;
    struct timer_box *b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    nc__timer_init(loop, &b->t, fn, ud, true);
    b->h.close = timer_box_close;
    nc__loop_handle_add(loop, &b->h, HANDLE_USER);
    *out = &b->t;
    return 0;
}

int nc_timer_start(nc_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
    return nc__timer_start(t, timeout_ms, repeat_ms);
}

void nc_timer_stop(nc_timer *t)
{
    nc__timer_stop(t);
}

bool nc_timer_active(const nc_timer *t)
{
    return t && t->heap_index != TIMER_STOPPED;
}

void nc_timer_free(nc_timer *t)
{
    if (!t)
        return;
    nc__timer_stop(t);
    struct timer_box *b = container_of(t, struct timer_box, t);
    nc__loop_handle_remove(&b->h);
    free(b);
}
