/*
 * loop.c - the event loop: one iteration, running and stopping, deferred
 * calls, calls posted from other threads, and the loop's teardown.
 * Dispatch of fd events is in watch.c, timers in timer.c, connection
 * timeouts in timeout.c.
 */
#include "loop.h"
#include "splice.h"
#include "ring.h"
#include "conn.h"
#include "timeout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- handles ------------------------------------------------------------- */

void nc__loop_handle_add(nc_loop *loop, struct handle *h, enum handle_kind k)
{
    struct handle *head = k == HANDLE_IO ? &loop->io_handles
                                         : &loop->user_handles;
    h->next = head;
    h->prev = head->prev;
    head->prev->next = h;
    head->prev = h;
}

/* Idempotent: an unlinked handle points at itself. */
void nc__loop_handle_remove(struct handle *h)
{
    if (!h->next || h->next == h)
        return;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->next = h->prev = h;
}

static void close_handles(struct handle *head)
{
    while (head->next != head) {
        struct handle *h = head->next;
        nc__loop_handle_remove(h);
        h->close(h);
    }
}

/* ---- deferred calls ------------------------------------------------------ */

void nc__loop_defer(nc_loop *loop, struct defer_node *n,
                    void (*fn)(struct defer_node *n))
{
    n->next = NULL;
    n->fn = fn;
    if (loop->defer_tail)
        loop->defer_tail->next = n;
    else
        loop->defer_head = n;
    loop->defer_tail = n;
}

/* What nc_loop_defer() allocates. */
struct user_defer {
    struct defer_node node;
    nc_call_fn fn;
    void *arg;
};

static void user_defer_run(struct defer_node *n)
{
    struct user_defer *d = container_of(n, struct user_defer, node);
    nc_call_fn fn = d->fn;
    void *arg = d->arg;
    free(d);
    fn(arg);
}

int nc_loop_defer(nc_loop *loop, nc_call_fn fn, void *arg)
{
    if (!loop || !fn)
        return -EINVAL;
    struct user_defer *d = malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->fn = fn;
    d->arg = arg;
    nc__loop_defer(loop, &d->node, user_defer_run);
    return 0;
}

/* Calls deferred while these run are appended and run in this pass too. */
static void run_deferred(nc_loop *loop)
{
    while (loop->defer_head) {
        struct defer_node *n = loop->defer_head;
        loop->defer_head = n->next;
        if (!loop->defer_head)
            loop->defer_tail = NULL;
        n->fn(n);
    }
}

/* ---- posted calls -------------------------------------------------------- */

static void wake(nc_loop *loop)
{
    uint64_t one = 1;
    while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        continue;
}

int nc_loop_post(nc_loop *loop, nc_call_fn fn, void *arg)
{
    if (!loop || !fn)
        return -EINVAL;
    struct post_node *n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->next = NULL;
    n->fn = fn;
    n->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->closing) {
        pthread_mutex_unlock(&loop->post_lock);
        free(n);
        return -ESHUTDOWN;
    }
    /* Only the first call of a batch needs to wake the loop: it takes the
     * whole list at once. The write stays under the lock so that the loop
     * cannot be freed between the append and the wake. */
    if (loop->post_tail) {
        loop->post_tail->next = n;
    } else {
        loop->post_head = n;
        wake(loop);
    }
    loop->post_tail = n;
    pthread_mutex_unlock(&loop->post_lock);
    return 0;
}

static void run_posted(nc_loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    struct post_node *n = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    while (n) {
        struct post_node *next = n->next;
        nc_call_fn fn = n->fn;
        void *arg = n->arg;
        free(n);
        fn(arg);
        n = next;
    }
}

/* The counter is read before the list is taken: a post landing between
 * the two is in the list taken, and one landing after finds the list
 * empty and writes the counter again, so no wake-up is lost. */
static void wake_ready(struct watch *w, unsigned events)
{
    nc_loop *loop = container_of(w, nc_loop, wake_watch);
    uint64_t count;
    (void)events;
    while (read(loop->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        continue;
    run_posted(loop);
}

/* ---- time ------------------------------------------------------------------ */

void nc__loop_woke(nc_loop *loop)
{
    nc__loop_update_time(loop);
    counter_add(&loop->ctr.poll_ns, loop->now_ns - loop->poll_since);
    loop->busy_since = loop->now_ns;
}

void nc__loop_update_time(nc_loop *loop)
{
    loop->now_ns = clock_now_ns();
    uint64_t since = loop->now_ns - loop->time.epoch_ns;
    loop->time.ms_down = (uint32_t)(since / NS_PER_MS);
    loop->time.ms_up = (uint32_t)((since + NS_PER_MS - 1) / NS_PER_MS);
}

void nc_loop_set_data(nc_loop *loop, void *data)
{
    if (loop)
        loop->data = data;
}

void *nc_loop_data(const nc_loop *loop)
{
    return loop ? loop->data : NULL;
}

uint64_t nc_loop_now(const nc_loop *loop)
{
    return loop ? loop->now_ns / NS_PER_MS : 0;
}

/* ---- the loop -------------------------------------------------------------- */

int nc_loop_new(nc_loop **out)
{
    return nc_loop_new_with(out, NULL);
}

int nc_loop_new_with(nc_loop **out, const nc_loop_options *o)
{
    if (!out)
        return -EINVAL;
    nc_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    loop->io_handles.next = loop->io_handles.prev = &loop->io_handles;
    loop->user_handles.next = loop->user_handles.prev = &loop->user_handles;
    loop->wake_fd = -1;
    atomic_init(&loop->stop, false);
    nc__slab_init(&loop->conn_slab, sizeof(nc_conn));
    nc__slab_init(&loop->cold_slab, sizeof(struct conn_cold));
    /* On a whole millisecond, so that the loop's ms (nc_loop_now) and the
     * timeout lists' ms since the epoch round alike. */
    loop->time.epoch_ns = clock_now_ns() / NS_PER_MS * NS_PER_MS;
    nc__loop_update_time(loop);
    int rc = -pthread_mutex_init(&loop->post_lock, NULL);
    if (rc < 0) {
        free(loop);
        return rc;
    }
    loop->read_buf = malloc(LOOP_READ_BUF);
    if (!loop->read_buf) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = nc__backend_new(loop, o, &loop->backend);
    if (rc < 0)
        goto fail;
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = nc__watch_init(loop, &loop->wake_watch, loop->wake_fd, wake_ready,
                        false);
    if (rc == 0)
        rc = nc__watch_update(&loop->wake_watch, EV_READ);
    if (rc < 0)
        goto fail;
    *out = loop;
    return 0;
fail:
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    nc__backend_free(loop->backend);
    free(loop->fds);
    free(loop->read_buf);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop);
    return rc;
}

/* running and owner are written under post_lock so that nc_loop_stop()
 * in another thread can read them. */
static void set_running(nc_loop *loop, bool running)
{
    pthread_mutex_lock(&loop->post_lock);
    loop->running = running;
    loop->owner = pthread_self();
    pthread_mutex_unlock(&loop->post_lock);
}

static void shutdown_conn(nc_conn *c, void *arg)
{
    (void)arg;
    nc__conn_shutdown_now(c);
}

static bool loop_empty(const nc_loop *loop)
{
    return loop->io_handles.next == &loop->io_handles &&
           loop->user_handles.next == &loop->user_handles &&
           loop->conn_slab.live == 0;
}

void nc_loop_free(nc_loop *loop)
{
    if (!loop || loop->running)
        return;
    pthread_mutex_lock(&loop->post_lock);
    loop->closing = true;
    /* Callbacks run below must not re-enter nc_loop_run(). */
    loop->running = true;
    loop->owner = pthread_self();
    pthread_mutex_unlock(&loop->post_lock);
    nc__loop_update_time(loop);
    run_posted(loop);
    /* Closing may defer frees, and a deferred call may (unwisely) create
     * something new: repeat until nothing is left. */
    do {
        close_handles(&loop->io_handles);
        nc__conn_each(loop, shutdown_conn, NULL);
        run_deferred(loop);
        close_handles(&loop->user_handles);
        run_deferred(loop);
    } while (!loop_empty(loop));
    nc__signals_free(loop);
    nc__tlists_free(loop);
    nc__splice_pool_free(loop);
    nc__timers_free(loop);
    nc__watch_stop(&loop->wake_watch);
    nc__backend_free(loop->backend);
    close(loop->wake_fd);
    nc__slab_destroy(&loop->conn_slab);
    nc__slab_destroy(&loop->cold_slab);
    free(loop->fds);
    free(loop->read_buf);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop);
}

/* Busy time is counted from the end of one poll to the start of the next,
 * so the two clock reads an iteration needs anyway also feed the
 * counters. */
static void account_busy(nc_loop *loop, uint64_t now)
{
    if (loop->busy_since) {
        counter_add(&loop->ctr.run_ns, now - loop->busy_since);
        loop->busy_since = 0;
    }
}

static int iterate(nc_loop *loop, nc_run_mode mode)
{
    int timeout = 0;
    uint64_t before = clock_now_ns();
    account_busy(loop, before);
    loop->now_ns = before;
    loop->poll_since = before;
    if (mode != NC_RUN_NOWAIT && !loop->defer_head &&
        !atomic_load(&loop->stop) && (mode != NC_RUN_ONCE || loop->active))
        timeout = nc__timers_next_timeout(loop);
    /* The backend calls nc__loop_woke() when the wait ends, then hands
     * out the events. */
    int n = nc__backend_wait(loop->backend, loop, timeout);
    if (n < 0)
        return n;
    counter_add(&loop->ctr.iterations, 1);
    counter_add(&loop->ctr.events, (uint64_t)n);
    nc__timers_run(loop);
    run_deferred(loop);
    if (loop->shutdown)
        nc__loop_shutdown_poll(loop);
    return 0;
}

int nc_loop_run(nc_loop *loop, nc_run_mode mode)
{
    if (!loop || (unsigned)mode > NC_RUN_NOWAIT)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    set_running(loop, true);
    int rc = 0;
    for (;;) {
        if (mode == NC_RUN_DEFAULT && loop->active == 0 && !loop->defer_head)
            break;
        rc = iterate(loop, mode);
        if (rc < 0 || mode == NC_RUN_ONCE || mode == NC_RUN_NOWAIT ||
            atomic_load(&loop->stop))
            break;
    }
    if (loop->ring)
        nc__ring_loop_exit(loop->ring);
    account_busy(loop, clock_now_ns());
    atomic_store(&loop->stop, false);
    set_running(loop, false);
    return rc;
}

void nc_loop_stop(nc_loop *loop)
{
    if (!loop)
        return;
    atomic_store(&loop->stop, true);
    pthread_mutex_lock(&loop->post_lock);
    if (loop->running && !pthread_equal(loop->owner, pthread_self()))
        wake(loop);
    pthread_mutex_unlock(&loop->post_lock);
}
