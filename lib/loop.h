/*
 * loop.h - the loop object and what every module registers with it:
 * handles (things nc_loop_free() must end), deferred calls (run at the end
 * of the iteration), the fd table, counters, and the cached time.
 *
 * A loop and everything on it belong to the thread that runs it. Only the
 * post queue (mutex), the stop flag and the counters (relaxed atomics,
 * written by the loop's thread alone) are touched by other threads.
 */
#ifndef NC_LOOP_H
#define NC_LOOP_H

#include "common.h"
#include "backend.h"
#include "slab.h"
#include "timer.h"
#include "watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ---- handles: things nc_loop_free() must close ------------------------ */
struct handle {
    struct handle *prev, *next;
    void (*close)(struct handle *h);   /* ends it (may defer the free) */
};
/* I/O handles (listeners) are closed before user handles (public
 * watchers, timers, signals), so that on_close callbacks can still use
 * the user's timers. Connections are found through the timeout lists. */
enum handle_kind { HANDLE_IO = 0, HANDLE_USER = 1 };
void nc__loop_handle_add(nc_loop *loop, struct handle *h, enum handle_kind k);
/* Idempotent. */
void nc__loop_handle_remove(struct handle *h);

/* ---- deferred calls ---------------------------------------------------- */
/* A call to run at the end of the iteration, embedded in the object it
 * concerns, so that deferring cannot fail: a connection's on_close is
 * never lost to an allocation failure. */
struct defer_node {
    struct defer_node *next;
    void (*fn)(struct defer_node *n);
};
/* Queue n to run fn(n) after the current batch of events, in deferral
 * order (calls deferred while the queue runs run in the same pass). n
 * must stay valid, and not be queued again, until fn has started. */
void nc__loop_defer(nc_loop *loop, struct defer_node *n,
                    void (*fn)(struct defer_node *n));

/* ---- counters ---------------------------------------------------------- */
#define NC_CLOSE_REASON_MAX 16

/* Written only by the loop's thread, read by any: relaxed atomics, so a
 * reader never sees a torn value and the writer pays a plain add. */
struct loop_counters {
    _Atomic uint64_t iterations;
    _Atomic uint64_t events;
    _Atomic uint64_t poll_ns;      /* blocked in the kernel, waiting */
    _Atomic uint64_t run_ns;       /* everything else: callbacks */
    _Atomic uint64_t accepted;
    _Atomic uint64_t connected;    /* outgoing connections opened */
    _Atomic uint64_t open;         /* opened and not yet closed */
    _Atomic uint64_t closed[NC_CLOSE_REASON_MAX];   /* of opened ones */
    _Atomic uint64_t connect_failed;   /* outgoing, closed before open */
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t accept_errors;
    _Atomic uint64_t fd_exhausted; /* accept failed with EMFILE/ENFILE */
    _Atomic uint64_t shed;         /* accepted and reset for lack of fds */
    _Atomic uint64_t evicted;      /* idle connections closed to admit one */
};

static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t counter_get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- the loop ------------------------------------------------------------ */
struct post_node {
    struct post_node *next;
    nc_call_fn fn;
    void *arg;
};

struct signal_state;       /* signal.c */
struct tlist;              /* timeout.c */
struct loop_shutdown;      /* shutdown.c */
struct resolver;           /* resolve.c */

struct loop_time {
    uint64_t epoch_ns;     /* CLOCK_MONOTONIC when the loop was created */
    uint32_t ms_up;        /* cached time, ms since epoch, rounded up */
    uint32_t ms_down;      /* the same, rounded down */
};

#define LOOP_READ_BUF 65536

struct ring;               /* backend_uring.c */
struct splice_pool;        /* splice.c */

struct nc_loop {
    struct backend *backend;
    struct ring *ring;         /* the io_uring backend's state, or NULL:
                                  connections then complete through it
                                  (ring.h) */
    uintptr_t *fds;            /* the fd table: tagged objects by fd
                                  (watch.h) */
    size_t nfds;               /* entries valid (zeroed as fds reach them) */
    size_t fds_cap;
    uint16_t gen;              /* stamps tokens: see watch.h */
    size_t active;             /* what keeps NC_RUN_DEFAULT running */
    uint64_t now_ns;           /* cached per iteration */
    uint64_t busy_since;       /* end of the last wait (0: not counted) */
    uint64_t poll_since;       /* start of the current wait */
    struct loop_time time;
    pthread_t owner;           /* thread inside nc_loop_run */
    bool running;
    atomic_bool stop;

    /* timers: 4-ary min-heap (timer.c) */
    struct timer_slot *heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* timeout lists, by number; [0] unused (timeout.c) */
    struct tlist **tlists;
    uint16_t ntlists;
    uint16_t tlists_cap;

    /* connection objects and their cold state (conn.c) */
    struct slab conn_slab;
    struct slab cold_slab;
    char *read_buf;            /* LOOP_READ_BUF bytes, shared by reads */

    /* deferred calls: a FIFO run at the end of each iteration */
    struct defer_node *defer_head, *defer_tail;

    /* posted calls from any thread, woken through an eventfd */
    pthread_mutex_t post_lock;
    struct post_node *post_head, *post_tail;
    bool closing;              /* nc_loop_free started: refuse posts */
    int wake_fd;
    struct watch wake_watch;   /* not counted */

    struct signal_state *signals;   /* NULL until the first nc_signal */

    struct handle io_handles;       /* list heads (circular) */
    struct handle user_handles;

    struct loop_counters ctr;
    void *data;                /* nc_loop_set_data */

    struct loop_shutdown *shutdown;  /* nc_loop_shutdown; NULL until then */
    struct splice_pool *splices;     /* empty pipes for nc_conn_splice */
    struct resolver *resolver; /* host names (resolve.c); NULL until the
                                  first lookup */
};

/* Refresh the cached time (now_ns and the ms values). */
void nc__loop_update_time(nc_loop *loop);
/* The backend's wait ended: refresh the time, count the wait as time
 * blocked. Called by the backend before it delivers events. */
void nc__loop_woke(nc_loop *loop);

/* Close the signal machinery at loop free (signal.c). */
void nc__signals_free(nc_loop *loop);
/* Make loop's signalfd now (it blocks no signal yet), so that a later
 * nc_signal_start needs no descriptor. 0 or a negative errno. */
int nc__signals_prepare(nc_loop *loop);

/* A shutdown is in progress (loop->shutdown set): called at the end of
 * every iteration, after the deferred calls; closes connections opened
 * meanwhile and stops the loop once none is left (shutdown.c). */
void nc__loop_shutdown_poll(nc_loop *loop);
/* Whether the last nc_loop_shutdown() has completed (shutdown.c). */
bool nc__loop_shutdown_done(const nc_loop *loop);

#endif /* NC_LOOP_H */
