/*
 * loop.c - the event loop: the fd table and event dispatch, one iteration,
 * deferred calls, calls posted from other threads, public fd watchers and
 * the loop's teardown.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define INTEREST_BITS (NC_READABLE | NC_WRITABLE | NC_HANGUP)

struct nc_watch {
    struct watch w;
    nc_watch_fn fn;
    void *ud;
    struct handle h;
};

/* ---- fd table ------------------------------------------------------------ */

/* The kernel hands the token back with each event; the generation in its
 * high half tells an event for the current watcher of fd from one queued
 * for a watcher stopped earlier in the same batch. */
static uint64_t slot_token(const nc_loop *loop, int fd)
{
    return (uint64_t)loop->slots[fd].gen << 32 | (uint32_t)fd;
}

static int slots_reserve(nc_loop *loop, int fd)
{
    size_t need = (size_t)fd + 1;
    if (need <= loop->nslots)
        return 0;
    size_t n = loop->nslots ? loop->nslots : 64;
    while (n < need)
        n *= 2;
    struct fd_slot *s = realloc(loop->slots, n * sizeof(*s));
    if (!s)
        return -ENOMEM;
    memset(s + loop->nslots, 0, (n - loop->nslots) * sizeof(*s));
    loop->slots = s;
    loop->nslots = n;
    return 0;
}

static bool watch_attached(const struct watch *w)
{
    const nc_loop *loop = w->loop;
    return loop && w->fd >= 0 && (size_t)w->fd < loop->nslots &&
           loop->slots[w->fd].w == w;
}

int watch_init(nc_loop *loop, struct watch *w, int fd, watch_fn fn,
               bool counted)
{
    if (!loop || !w || !fn || fd < 0)
        return -EINVAL;
    int rc = slots_reserve(loop, fd);
    if (rc < 0)
        return rc;
    if (loop->slots[fd].w)
        return -EEXIST;
    w->loop = loop;
    w->fd = fd;
    w->events = 0;
    w->counted = counted;
    w->fn = fn;
    loop->slots[fd].w = w;
    if (counted)
        loop->active++;
    return 0;
}

int watch_update(struct watch *w, unsigned events)
{
    if (!w || !watch_attached(w))
        return -EINVAL;
    events &= INTEREST_BITS;
    if (events == w->events)
        return 0;
    nc_loop *loop = w->loop;
    uint64_t token = slot_token(loop, w->fd);
    int rc = backend_set(loop->backend, w->fd, token, w->events, events);
    if (rc == -ENOENT && w->events && events) {
        /* The fd was closed and its number reused behind our back: the
         * kernel dropped the old registration, so register afresh. */
        rc = backend_set(loop->backend, w->fd, token, 0, events);
    } else if (rc == -EEXIST && !w->events) {
        rc = backend_set(loop->backend, w->fd, token, events, events);
    }
    if (events == 0) {
        /* A failed delete leaves nothing we could still remove. */
        w->events = 0;
        return rc == -ENOENT ? 0 : rc;
    }
    if (rc < 0)
        return rc;
    w->events = events;
    return 0;
}

void watch_stop(struct watch *w)
{
    if (!w || !watch_attached(w))
        return;
    nc_loop *loop = w->loop;
    if (w->events)
        backend_set(loop->backend, w->fd, 0, w->events, 0);
    w->events = 0;
    loop->slots[w->fd].w = NULL;
    loop->slots[w->fd].gen++;
    if (w->counted)
        loop->active--;
}

static void dispatch(nc_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t token;
        unsigned events;
        backend_event(loop->backend, i, &token, &events);
        uint32_t fd = (uint32_t)token;
        if (fd >= loop->nslots)
            continue;
        struct fd_slot *slot = &loop->slots[fd];
        struct watch *w = slot->w;
        if (!w || slot->gen != (uint32_t)(token >> 32))
            continue;
        /* Interest may have shrunk earlier in this batch. */
        events &= w->events | NC_HANGUP | NC_ERROR;
        if (w->events && events)
            w->fn(w, events);
    }
}

/* ---- handles ------------------------------------------------------------- */

void loop_handle_add(nc_loop *loop, struct handle *h, enum handle_kind k)
{
    struct handle *head = k == HANDLE_IO ? &loop->io_handles
                                         : &loop->user_handles;
    h->next = head;
    h->prev = head->prev;
    head->prev->next = h;
    head->prev = h;
}

/* Idempotent: an unlinked handle points at itself. */
void loop_handle_remove(nc_loop *loop, struct handle *h)
{
    (void)loop;
    if (!h->next || h->next == h)
        return;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->next = h->prev = h;
}

static void close_handles(nc_loop *loop, struct handle *head)
{
    while (head->next != head) {
        struct handle *h = head->next;
        loop_handle_remove(loop, h);
        h->close(h);
    }
}

/* ---- deferred calls ------------------------------------------------------ */

void loop_defer(nc_loop *loop, struct defer_node *n, nc_call_fn fn,
                void *arg)
{
    n->next = NULL;
    n->fn = fn;
    n->arg = arg;
    if (loop->defer_tail)
        loop->defer_tail->next = n;
    else
        loop->defer_head = n;
    loop->defer_tail = n;
}

int nc_loop_defer(nc_loop *loop, nc_call_fn fn, void *arg)
{
    if (!loop || !fn)
        return -EINVAL;
    struct defer_node *n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    loop_defer(loop, n, fn, arg);
    n->owned = true;
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
        nc_call_fn fn = n->fn;
        void *arg = n->arg;
        if (n->owned)
            free(n);
        fn(arg);
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

/* ---- the loop -------------------------------------------------------------- */

int nc_loop_new(nc_loop **out)
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
    int rc = -pthread_mutex_init(&loop->post_lock, NULL);
    if (rc < 0) {
        free(loop);
        return rc;
    }
    rc = backend_new(&loop->backend);
    if (rc < 0)
        goto fail;
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = watch_init(loop, &loop->wake_watch, loop->wake_fd, wake_ready,
                    false);
    if (rc == 0)
        rc = watch_update(&loop->wake_watch, NC_READABLE);
    if (rc < 0)
        goto fail;
    loop->now_ns = clock_now_ns();
    *out = loop;
    return 0;
fail:
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    backend_free(loop->backend);
    free(loop->slots);
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
    run_posted(loop);
    /* Closing may defer frees, and a deferred call may (unwisely) create
     * something new: repeat until nothing is left. */
    do {
        close_handles(loop, &loop->io_handles);
        run_deferred(loop);
        close_handles(loop, &loop->user_handles);
        run_deferred(loop);
    } while (loop->io_handles.next != &loop->io_handles ||
             loop->user_handles.next != &loop->user_handles);
    signals_free(loop);
    timers_free(loop);
    watch_stop(&loop->wake_watch);
    backend_free(loop->backend);
    close(loop->wake_fd);
    free(loop->slots);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop);
}

static int iterate(nc_loop *loop, nc_run_mode mode)
{
    int timeout = 0;
    loop->now_ns = clock_now_ns();
    if (mode != NC_RUN_NOWAIT && !loop->defer_head &&
        !atomic_load(&loop->stop) && (mode != NC_RUN_ONCE || loop->active))
        timeout = timers_next_timeout(loop);
    int n = backend_poll(loop->backend, timeout);
    if (n < 0)
        return n;
    loop->now_ns = clock_now_ns();
    dispatch(loop, n);
    timers_run(loop);
    run_deferred(loop);
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

uint64_t nc_loop_now(const nc_loop *loop)
{
    return loop ? loop->now_ns / 1000000u : 0;
}

/* ---- public fd watchers ---------------------------------------------------- */

static void user_watch_ready(struct watch *w, unsigned events)
{
    nc_watch *pw = container_of(w, nc_watch, w);
    pw->fn(pw, w->fd, events, pw->ud);
}

static void user_watch_close(struct handle *h)
{
    nc_watch_close(container_of(h, nc_watch, h));
}

int nc_watch_start(nc_loop *loop, int fd, unsigned events, nc_watch_fn fn,
                   void *ud, nc_watch **out)
{
    if (!loop || !fn || !out || fd < 0 ||
        (events & ~(INTEREST_BITS | NC_ERROR)))
        return -EINVAL;
    if (fcntl(fd, F_GETFD) < 0)
        return -errno;
    nc_watch *pw = calloc(1, sizeof(*pw));
    if (!pw)
        return -ENOMEM;
    int rc = watch_init(loop, &pw->w, fd, user_watch_ready, true);
    if (rc < 0) {
        free(pw);
        return rc;
    }
    if (events & INTEREST_BITS) {
        rc = watch_update(&pw->w, events);
    } else {
        /* Nothing goes to the kernel yet, so ask the file what epoll
         * would say: regular files and directories cannot be polled. */
        struct stat st;
        if (fstat(fd, &st) < 0)
            rc = -errno;
        else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
            rc = -EPERM;
    }
    if (rc < 0) {
        watch_stop(&pw->w);
        free(pw);
        return rc;
    }
    pw->fn = fn;
    pw->ud = ud;
    pw->h.close = user_watch_close;
    loop_handle_add(loop, &pw->h, HANDLE_USER);
    *out = pw;
    return 0;
}

int nc_watch_set(nc_watch *w, unsigned events)
{
    if (!w || (events & ~(INTEREST_BITS | NC_ERROR)))
        return -EINVAL;
    return watch_update(&w->w, events);
}

void nc_watch_close(nc_watch *w)
{
    if (!w)
        return;
    watch_stop(&w->w);
    loop_handle_remove(w->w.loop, &w->h);
    free(w);
}
