/*
 * timeout.h - per-loop FIFO timeout lists: idle, connect, drain, linger
 * and deadline timeouts of connections in O(1).
 *
 * Every connection of a loop with the same timeout value shares one list,
 * kept in order of the entries' start times: an entry (re)started "now"
 * goes to the tail, so the head always expires first, and one timer per
 * list, armed at the head's deadline, is all the heap ever holds. A
 * connection carries an entry (two links, a start time, a list number)
 * instead of a heap timer.
 *
 * Time is the loop's, in milliseconds since the loop was created, as
 * 32-bit values compared with wrap-around arithmetic: a timeout is at most
 * TIMEOUT_MAX_MS (24.8 days). A start time is the loop's cached time
 * rounded up, and expiry compares it with the cached time rounded down,
 * so an entry never expires before its timeout has fully elapsed.
 */
#ifndef NC_TIMEOUT_H
#define NC_TIMEOUT_H

#include "loop.h"

#define TIMEOUT_MAX_MS 0x7fffffffu

struct tlist;
struct tlink {
    struct tlink *prev, *next;
};

/* An entry, embedded in its owner. list 0 means "in no list". */
struct tentry {
    struct tlink link;
    uint32_t at;           /* start time (loop ms, rounded up) */
    uint16_t list;         /* the list's number, 0 = none */
    uint16_t tag;          /* not used here: free for the owner */
};

/* Called for each entry whose time ran out, after it left its list. It
 * may re-add the entry (to any list) or free its owner. */
typedef void (*tentry_expire_fn)(struct tentry *e);

struct tlist {
    struct tlink head;     /* sentinel: head.next is the oldest entry */
    uint32_t timeout_ms;   /* 0: never expires; the list only records its
                              entries, in no particular order */
    tentry_expire_fn expire;
    nc_timer timer;        /* not counted: lists never keep a loop alive */
    size_t count;
};

/* The number of the list for (expire, timeout_ms), created on first use.
 * Lists of the same callback and value are shared. Returns the number
 * (>= 1) or a negative errno: -EINVAL timeout above TIMEOUT_MAX_MS,
 * -ENOMEM, -ENOSPC (65,535 distinct lists). */
int nc__tlist_get(nc_loop *loop, tentry_expire_fn expire,
                  uint32_t timeout_ms);

/* Put e (in no list) at the tail of list id, started now. */
void nc__tentry_add(nc_loop *loop, struct tentry *e, uint16_t id);

/* Take e out of its list, if any. */
void nc__tentry_remove(nc_loop *loop, struct tentry *e);

/* tentry_touch(loop, e), below: restart e's time at now; it moves to
 * the tail of its list. O(1); no work at all when it was already started
 * in this millisecond. */

/* The timeout of list id (0 for id 0). */
uint32_t nc__tlist_timeout(const nc_loop *loop, uint16_t id);

/* The entry that has waited longest across the lists whose callback is
 * expire, or NULL. Used to evict the longest-idle connection: a list
 * with a timeout is looked at by its head, one without is scanned. */
struct tentry *nc__tentry_oldest(nc_loop *loop, tentry_expire_fn expire);

/* Call fn(e) for every entry of every list whose callback is expire
 * (fn may remove e, and may remove or add others). */
void nc__tlist_each(nc_loop *loop, tentry_expire_fn expire,
                    void (*fn)(struct tentry *e));

/* Free every list (entries must be gone). */
void nc__tlists_free(nc_loop *loop);

/* ---- inline parts: touching is on every read's path ----------------- */

static inline void tlink_unlink(struct tlink *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static inline void tlink_add_tail(struct tlink *head, struct tlink *n)
{
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
}

/* The later of two loop times (wrap-around arithmetic). */
static inline uint32_t loop_time_later(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) >= 0 ? a : b;
}

static inline uint32_t loop_ms_up(const nc_loop *loop)
{
    return loop->time.ms_up;
}

static inline void tentry_touch(nc_loop *loop, struct tentry *e)
{
    uint32_t now = loop->time.ms_up;
    if (!e->list || e->at == now)
        return;
    struct tlist *l = loop->tlists[e->list];
    if (l->timeout_ms == 0) {
        e->at = now;    /* never expires: its place does not matter */
        return;
    }
    struct tlink *head = &l->head;
    struct tlink *tail = head->prev;
    /* Never before the tail's start (it may have come from a fresh clock
     * read), so that the list stays in order. */
    e->at = loop_time_later(now, container_of(tail, struct tentry, link)->at);
    if (tail == &e->link)
        return;
    tlink_unlink(&e->link);
    tlink_add_tail(head, &e->link);
}

#endif /* NC_TIMEOUT_H */
