/*
 * internal.h - declarations shared between the library's modules.
 * Nothing here is exported (the library is built with hidden visibility).
 */
#ifndef NC_INTERNAL_H
#define NC_INTERNAL_H

#include "netcore.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- backend seam (backend_epoll.c is the only file calling epoll_*) ---
 * Interest and readiness use the public NC_READABLE/NC_WRITABLE bits;
 * NC_HANGUP in the interest asks for peer-close notification (EPOLLRDHUP).
 * The token is opaque to the backend and comes back with each event. */
struct backend;
int backend_new(struct backend **out);
void backend_free(struct backend *b);
/* Bring fd's kernel interest from old_events to new_events: add when old
 * is 0, delete when new is 0, modify otherwise. */
int backend_set(struct backend *b, int fd, uint64_t token,
                unsigned old_events, unsigned new_events);
/* Wait up to timeout_ms (-1 = forever) and return the number of ready
 * events (0 on timeout or EINTR), or a negative errno. */
int backend_poll(struct backend *b, int timeout_ms);
/* Event i (0 <= i < the count backend_poll returned). */
void backend_event(const struct backend *b, int i, uint64_t *token,
                   unsigned *events);

/* ---- fd watchers, embeddable (loop.c) -------------------------------- */
struct watch;
typedef void (*watch_fn)(struct watch *w, unsigned events);

struct watch {
    nc_loop *loop;
    int fd;
    unsigned events;   /* interest now in the kernel (0: not registered) */
    bool counted;      /* keeps nc_loop_run(NC_RUN_DEFAULT) going */
    watch_fn fn;
};

/* Attach w to fd in loop's table (no kernel call yet; events = 0). counted
 * says whether it keeps the loop alive. Errors: -EINVAL, -EEXIST (fd has a
 * watcher), -ENOMEM. */
int watch_init(nc_loop *loop, struct watch *w, int fd, watch_fn fn,
               bool counted);
/* Set the interest (NC_READABLE | NC_WRITABLE | NC_HANGUP); a kernel call
 * only when it changes. */
int watch_update(struct watch *w, unsigned events);
/* Remove from the kernel and the table; pending events of this iteration
 * for it are dropped (the table slot's generation changes). Idempotent. */
void watch_stop(struct watch *w);

/* ---- timers (timer.c) -------------------------------------------------- */
struct nc_timer {
    nc_loop *loop;
    uint64_t deadline_ns;
    uint64_t repeat_ns;
    uint64_t seq;          /* start order: ties fire in start order */
    size_t heap_index;     /* TIMER_STOPPED when not in the heap */
    nc_timer_fn fn;
    void *ud;
};
#define TIMER_STOPPED ((size_t)-1)

/* Initialise an embedded timer (stopped). */
void timer_init(nc_loop *loop, nc_timer *t, nc_timer_fn fn, void *ud);
/* Start/stop exactly like nc_timer_start/nc_timer_stop. */
int timer_start(nc_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
void timer_stop(nc_timer *t);
/* ms until the earliest deadline (rounded up), -1 if none. */
int timers_next_timeout(nc_loop *loop);
/* Fire every timer due at the loop's cached time (each at most once). */
void timers_run(nc_loop *loop);
/* Release the heap array (timers themselves belong to their owners). */
void timers_free(nc_loop *loop);

/* ---- handles: things nc_loop_free() must close ------------------------ */
struct handle {
    struct handle *prev, *next;
    void (*close)(struct handle *h);   /* ends it (may defer the free) */
};
/* Two lists: I/O handles (listeners, connections) are closed first so
 * their on_close callbacks can still use the user's timers and watchers;
 * user handles (public watchers, timers, signals) after. */
enum handle_kind { HANDLE_IO = 0, HANDLE_USER = 1 };
void loop_handle_add(nc_loop *loop, struct handle *h, enum handle_kind k);
void loop_handle_remove(nc_loop *loop, struct handle *h);

/* ---- deferred calls ---------------------------------------------------- */
/* One call to run at the end of the iteration. Internal users embed the
 * node in the object it concerns, so deferring cannot fail: a connection's
 * on_close is never lost to an allocation failure. */
struct defer_node {
    struct defer_node *next;
    nc_call_fn fn;
    void *arg;
    bool owned;        /* allocated by nc_loop_defer: freed before fn runs */
};
/* Queue n to run fn(arg) after the current batch, in deferral order. n
 * must stay valid, and not be queued again, until fn has started. */
void loop_defer(nc_loop *loop, struct defer_node *n, nc_call_fn fn,
                void *arg);

/* ---- the loop ------------------------------------------------------------ */
struct fd_slot {
    struct watch *w;
    uint32_t gen;          /* bumped on every watch_stop of this fd */
};

struct post_node {
    struct post_node *next;
    nc_call_fn fn;
    void *arg;
};

struct signal_state;       /* signal.c */

struct timer_slot {
    uint64_t deadline_ns;      /* copy of timer->deadline_ns */
    nc_timer *timer;
};

struct nc_loop {
    struct backend *backend;
    struct fd_slot *slots;     /* indexed by fd */
    size_t nslots;
    size_t active;             /* counted watches + started timers */
    uint64_t now_ns;           /* cached per iteration */
    pthread_t owner;           /* thread inside nc_loop_run */
    bool running;
    atomic_bool stop;

    /* timers: 4-ary min-heap on (deadline_ns, seq), deadlines cached in
     * the entries (timer.c) */
    struct timer_slot *heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

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
};

/* Close the signal machinery at loop free (signal.c). */
void signals_free(nc_loop *loop);

/* ---- output queue (buf.c) ------------------------------------------------ */
struct chunk;
struct outq {
    struct chunk *head, *tail;
    size_t bytes;
};
int outq_append(struct outq *q, const void *data, size_t len);
/* Queue data[off..len) without copying; free_fn(data, arg) runs once the
 * chunk is sent or dropped. */
int outq_append_owned(struct outq *q, void *data, size_t len, size_t off,
                      void (*free_fn)(void *, void *), void *arg);
/* Send as much as the socket takes (sendmsg, MSG_NOSIGNAL, several chunks
 * at once). Returns bytes sent (>= 0) or a negative errno (-EAGAIN when
 * the socket is full). */
ssize_t outq_flush(struct outq *q, int fd);
/* Drop everything, calling the owned buffers' free functions. */
void outq_clear(struct outq *q);

/* ---- connections and listeners (conn.c, listener.c) -------------------- */
/* A listener's list of its connections (circular, head in the listener). */
struct conn_link {
    struct conn_link *prev, *next;
};

/* Fill *dst with src (NULL = all defaults) and the defaults applied. */
void conn_options_resolve(nc_conn_options *dst, const nc_conn_options *src);
/* Wrap an accepted socket of family; the connection is linked into l's list and
 * on_open runs before this returns. Returns 0 or -ENOMEM (fd is then
 * closed by the caller). */
int conn_accepted(nc_listener *l, nc_loop *loop, int fd, int family,
                  const nc_conn_options *opt, const nc_conn_callbacks *cbs,
                  void *ud, struct conn_link *list);
/* The connection owning a list link. */
nc_conn *conn_from_link(struct conn_link *link);
/* Close with NC_CLOSE_SHUTDOWN (listener or loop going away). */
void conn_shutdown_now(nc_conn *c);
/* A connection of l ended (called once, from its close). */
void listener_conn_gone(nc_listener *l);

/* ---- sockets helpers (io.c) --------------------------------------------- */
/* Create a non-blocking, close-on-exec socket. Returns fd or -errno. */
int socket_nb(int family, int type);

#endif /* NC_INTERNAL_H */
