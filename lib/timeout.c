/*
 * timeout.c - per-loop FIFO timeout lists (see timeout.h).
 *
 * A list's timer is armed at its head's deadline when the list gains its
 * first entry, and re-armed lazily when it fires: entries that moved to
 * the tail since are found not yet due, and the timer is set for the new
 * head. So touching an entry is a few pointer writes, never a heap
 * operation.
 */
#include "timeout.h"

#include <errno.h>
#include <stdlib.h>

static struct tlist *list_of(const nc_loop *loop, uint16_t id)
{
    return loop->tlists[id];
}

static void link_tail(struct tlist *l, struct tlink *n)
{
    tlink_add_tail(&l->head, n);
}

static void unlink_node(struct tlink *n)
{
    tlink_unlink(n);
    n->prev = n->next = NULL;
}

/* Wrap-around comparison of loop times: true when a is at or after b. */
static bool time_reached(uint32_t now, uint32_t deadline)
{
    return (int32_t)(now - deadline) >= 0;
}

static void arm(nc_loop *loop, struct tlist *l)
{
    if (l->timeout_ms == 0 || l->head.next == &l->head)
        return;
    struct tentry *e = container_of(l->head.next, struct tentry, link);
    int32_t wait_ms = (int32_t)(e->at + l->timeout_ms - loop->time.ms_down);
    if (wait_ms < 0)
        wait_ms = 0;
    /* From the cached time rounded down to a whole ms: when the timer
     * fires, the cached time rounded down has reached the deadline. A
     * failure to grow the heap leaves the list unarmed until its next
     * add. */
    uint64_t since = loop->now_ns - loop->time.epoch_ns;
    uint64_t base = loop->now_ns - since % NS_PER_MS;
    nc__timer_start_at(&l->timer, base + (uint64_t)wait_ms * NS_PER_MS);
}

/* The start time of an entry put at the tail of l now: the loop time
 * given, but never before the tail's, so the list stays in order. */
static uint32_t tail_time(const struct tlist *l, uint32_t now)
{
    if (l->head.prev == &l->head)
        return now;
    return loop_time_later(now, container_of(l->head.prev, struct tentry, link)->at);
}

static void list_fire(nc_timer *t, void *ud)
{
    struct tlist *l = ud;
    nc_loop *loop = t->loop;
    uint32_t now = loop->time.ms_down;
    /* Entries expired by the callbacks below leave the list; ones that
     * are re-added go to the tail with a later start, so the walk ends. */
    while (l->head.next != &l->head) {
        struct tentry *e = container_of(l->head.next, struct tentry, link);
        if (!time_reached(now, e->at + l->timeout_ms))
            break;
        unlink_node(&e->link);
        e->list = 0;
        l->count--;
        l->expire(e);
    }
    arm(loop, l);
}

int nc__tlist_get(nc_loop *loop, tentry_expire_fn expire, uint32_t timeout_ms)
{
    if (timeout_ms > TIMEOUT_MAX_MS)
        return -EINVAL;
    for (uint16_t id = 1; id < loop->ntlists; id++) {
        struct tlist *l = loop->tlists[id];
        if (l->expire == expire && l->timeout_ms == timeout_ms)
            return id;
    }
    if (loop->ntlists == UINT16_MAX)
        return -ENOSPC;
    if (loop->ntlists == 0 || loop->ntlists == loop->tlists_cap) {
        uint32_t cap = loop->tlists_cap ? loop->tlists_cap * 2u : 8u;
        if (cap > UINT16_MAX)
            cap = UINT16_MAX;
        struct tlist **a = realloc(loop->tlists, cap * sizeof(*a));
        if (!a)
            return -ENOMEM;
        loop->tlists = a;
        loop->tlists_cap = (uint16_t)cap;
        if (loop->ntlists == 0)
            loop->tlists[loop->ntlists++] = NULL;   /* number 0: none */
    }
    struct tlist *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->head.next = l->head.prev = &l->head;
    l->timeout_ms = timeout_ms;
    l->expire = expire;
    nc__timer_init(loop, &l->timer, list_fire, l, false);
    loop->tlists[loop->ntlists] = l;
    return loop->ntlists++;
}

void nc__tentry_add(nc_loop *loop, struct tentry *e, uint16_t id)
{
    struct tlist *l = list_of(loop, id);
    /* A fresh clock: an entry added after a long callback, or before the
     * loop runs, must not start in the past and expire early. */
    uint64_t since = clock_now_ns() - loop->time.epoch_ns;
    uint32_t now = (uint32_t)((since + NS_PER_MS - 1) / NS_PER_MS);
    e->at = tail_time(l, now);
    e->list = id;
    link_tail(l, &e->link);
    if (l->count++ == 0 || !timer_active(&l->timer))
        arm(loop, l);
}

void nc__tentry_remove(nc_loop *loop, struct tentry *e)
{
    if (!e->list)
        return;
    struct tlist *l = list_of(loop, e->list);
    unlink_node(&e->link);
    e->list = 0;
    /* An emptied list keeps its timer: it fires once for nothing rather
     * than costing a heap operation per connection that comes and goes.
     * The timer is not counted, so it keeps no loop alive. */
    l->count--;
}

uint32_t nc__tlist_timeout(const nc_loop *loop, uint16_t id)
{
    return id ? list_of(loop, id)->timeout_ms : 0;
}

struct tentry *nc__tentry_oldest(nc_loop *loop, tentry_expire_fn expire)
{
    struct tentry *best = NULL;
    for (uint16_t id = 1; id < loop->ntlists; id++) {
        struct tlist *l = loop->tlists[id];
        if (l->expire != expire)
            continue;
        /* A list in order shows its oldest first; one without a timeout
         * keeps no order and is scanned (this runs only when descriptors
         * are out). */
        struct tlink *last = l->timeout_ms ? l->head.next->next : &l->head;
        for (struct tlink *n = l->head.next; n != &l->head && n != last;
             n = n->next) {
            struct tentry *e = container_of(n, struct tentry, link);
            /* Start times compare with wrap-around arithmetic, not as
             * ages from the cached time: an entry added from a fresh
             * clock read may start after it. */
            if (!best || (int32_t)(e->at - best->at) < 0)
                best = e;
        }
    }
    return best;
}

void nc__tlist_each(nc_loop *loop, tentry_expire_fn expire,
                    void (*fn)(struct tentry *e))
{
    for (uint16_t id = 1; id < loop->ntlists; id++) {
        struct tlist *l = loop->tlists[id];
        if (l->expire != expire)
            continue;
        /* fn usually removes e: always restart from the head. An entry
         * fn leaves in place would loop forever, so fn must remove it. */
        while (l->head.next != &l->head)
            fn(container_of(l->head.next, struct tentry, link));
    }
}

void nc__tlists_free(nc_loop *loop)
{
    for (uint16_t id = 1; id < loop->ntlists; id++) {
        nc__timer_stop(&loop->tlists[id]->timer);
        free(loop->tlists[id]);
    }
    free(loop->tlists);
    loop->tlists = NULL;
    loop->ntlists = loop->tlists_cap = 0;
}
