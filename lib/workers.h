/*
 * workers.h - the worker threads (workers.c) and their listeners
 * (workers_listen.c).
 *
 * Each worker is a thread running its own loop. Other threads reach a
 * worker only through its loop's post queue, and read its counters; both
 * go through the worker's lock, which also orders them against the free
 * of its loop (a loop freed under a poster would be a use after free).
 * The worker's own thread never takes that lock while it serves.
 */
#ifndef NC_WORKERS_H
#define NC_WORKERS_H

#include "loop.h"

#include <pthread.h>
#include <stdatomic.h>

#define WORKERS_MAX 1024

struct worker {
    nc_workers *ws;
    unsigned index;
    nc_loop *loop;
    pthread_t thread;
    bool created;              /* the thread exists: join it */
    int cpu;                   /* pin: the CPU to run on; -1 = any */
    int start_rc;              /* pinning's, then on_start's result */
    int run_rc;                /* nc_loop_run's or the shutdown's failure */
    pthread_mutex_t lock;      /* posts and counter reads vs. the free */
    bool gone;                 /* the loop is freed (under lock) */
    nc_loop_stats final;       /* its counters just before that */
};

struct workers_route;          /* workers_listen.c */

struct nc_workers {
    nc_workers_options opt;
    unsigned n;
    struct worker *w;

    pthread_mutex_t lock;      /* the fields below, and the cond */
    pthread_cond_t cond;       /* a worker reported, a call completed */
    unsigned reported;         /* workers whose on_start returned */
    unsigned ended;            /* workers whose thread is finishing */
    nc_loop *waiter;           /* nc_workers_run's loop: stopped by the
                                  last worker to end */
    nc_loop *run_loop;         /* that loop, made (with its signalfd) by
                                  nc_workers_start: a flood of clients at
                                  the descriptor limit once the listeners
                                  are open must not keep nc_workers_run
                                  from starting; taken by the first run */
    nc_addr *addrs;            /* nc_workers_addrs */
    size_t naddrs, addrs_cap;

    atomic_uint stop_gen;      /* nc_workers_stop calls so far */
    atomic_uint grace_ms;      /* the smallest grace asked for */

    pthread_mutex_t join_lock; /* nc_workers_wait */
    bool joined;
    int result;

    pthread_mutex_t listen_lock;    /* one nc_workers_listen at a time */
    struct workers_route *routes;   /* hand-offs, freed with ws */
};

/* nc_loop_post to worker wk, unless its loop is gone (-ESHUTDOWN). */
int nc__workers_post(struct worker *wk, nc_call_fn fn, void *arg);
/* Run fn(wk, arg) in wk's thread and wait for it to return. Errors:
 * nc__workers_post's; then fn did not run. */
int nc__workers_call(struct worker *wk,
                     void (*fn)(struct worker *wk, void *arg), void *arg);
/* Whether the calling thread is one of ws's workers. */
bool nc__workers_in_worker(const nc_workers *ws);
/* Free what nc_workers_listen kept (after the threads are joined). */
void nc__workers_routes_free(nc_workers *ws);

#endif /* NC_WORKERS_H */
