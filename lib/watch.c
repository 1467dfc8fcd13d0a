/*
 * watch.c - the fd table, event dispatch, internal fd watchers and the
 * public nc_watch API (see watch.h).
 */
#include "watch.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PUBLIC_INTEREST (NC_READABLE | NC_WRITABLE | NC_HANGUP)

struct nc_watch {
    struct watch w;
    nc_watch_fn fn;
    void *ud;
    struct handle h;
};

/* ---- fd table ------------------------------------------------------------ */

/* Entries [0, nfds) are valid; the capacity beyond is zeroed only as
 * fds reach it, so that a table grown by doubling costs memory for the
 * descriptors in use, not for its whole capacity. */
static int table_reserve(nc_loop *loop, int fd)
{
    size_t need = (size_t)fd + 1;
    if (need <= loop->nfds)
        return 0;
    if (need > loop->fds_cap) {
        size_t n = loop->fds_cap ? loop->fds_cap : 64;
        while (n < need)
            n *= 2;
        uintptr_t *t = realloc(loop->fds, n * sizeof(*t));
        if (!t)
            return -ENOMEM;
        loop->fds = t;
        loop->fds_cap = n;
    }
    memset(loop->fds + loop->nfds, 0, (need - loop->nfds) * sizeof(uintptr_t));
    loop->nfds = need;
    return 0;
}

int nc__fd_attach(nc_loop *loop, int fd, uintptr_t entry, uint16_t *gen)
{
    if (fd < 0)
        return -EINVAL;
    int rc = table_reserve(loop, fd);
    if (rc < 0)
        return rc;
    if (loop->fds[fd])
        return -EEXIST;
    loop->fds[fd] = entry;
    *gen = ++loop->gen;
    return 0;
}

void nc__fd_detach(nc_loop *loop, int fd)
{
    if (fd >= 0 && (size_t)fd < loop->nfds)
        loop->fds[fd] = 0;
}

/* Change fd's kernel interest from old to new: add, modify or delete as
 * needed. */
static int fd_interest(nc_loop *loop, int fd, uint16_t gen, unsigned old,
                       unsigned new_events)
{
    uint64_t token = fd_token(gen, fd);
    int op = !old ? BACKEND_ADD : !new_events ? BACKEND_DEL : BACKEND_MOD;
    int rc = nc__backend_set(loop->backend, fd, token, op, new_events);
    if (rc == -ENOENT && op == BACKEND_MOD) {
        /* The fd was closed and its number reused behind our back: the
         * kernel dropped the old registration, so register afresh. */
        rc = nc__backend_set(loop->backend, fd, token, BACKEND_ADD,
                             new_events);
    } else if (rc == -EEXIST && op == BACKEND_ADD) {
        rc = nc__backend_set(loop->backend, fd, token, BACKEND_MOD,
                             new_events);
    }
    if (new_events == 0 && rc == -ENOENT)
        rc = 0;   /* nothing left to remove */
    return rc;
}

/* ---- internal watchers ----------------------------------------------------- */

static bool watch_attached(const struct watch *w)
{
    const nc_loop *loop = w->loop;
    return loop && w->fd >= 0 && (size_t)w->fd < loop->nfds &&
           loop->fds[w->fd] == (uintptr_t)w;
}

int nc__watch_init(nc_loop *loop, struct watch *w, int fd, watch_fn fn,
                   bool counted)
{
    if (!loop || !w || !fn || fd < 0)
        return -EINVAL;
    int rc = nc__fd_attach(loop, fd, (uintptr_t)w, &w->gen);
    if (rc < 0)
        return rc;
    w->loop = loop;
    w->fd = fd;
    w->events = 0;
    w->counted = counted;
    w->fn = fn;
    w->accept_fn = NULL;
    if (counted)
        loop->active++;
    return 0;
}

int nc__watch_update(struct watch *w, unsigned events)
{
    if (!w || !watch_attached(w))
        return -EINVAL;
    events &= EV_INTEREST;
    if (events == w->events)
        return 0;
    int rc = fd_interest(w->loop, w->fd, w->gen, w->events, events);
    if (events == 0) {
        /* A failed delete leaves nothing we could still remove. */
        w->events = 0;
        return rc;
    }
    if (rc < 0)
        return rc;
    w->events = events;
    return 0;
}

void nc__watch_stop(struct watch *w)
{
    if (!w || !watch_attached(w))
        return;
    nc_loop *loop = w->loop;
    if (w->events)
        nc__backend_set(loop->backend, w->fd, 0, BACKEND_DEL, 0);
    w->events = 0;
    nc__fd_detach(loop, w->fd);
    if (w->counted)
        loop->active--;
}

/* ---- public fd watchers ---------------------------------------------------- */

/* Public NC_HANGUP is both kinds of hang-up; internally they are apart. */
static unsigned to_internal(unsigned events)
{
    return (events & NC_READABLE ? EV_READ : 0) |
           (events & NC_WRITABLE ? EV_WRITE : 0) |
           (events & NC_HANGUP ? EV_RDHUP : 0);
}

static unsigned to_public(unsigned events)
{
    return (events & EV_READ ? NC_READABLE : 0) |
           (events & EV_WRITE ? NC_WRITABLE : 0) |
           (events & (EV_HUP | EV_RDHUP) ? NC_HANGUP : 0) |
           (events & EV_ERR ? NC_ERROR : 0);
}

static void user_watch_ready(struct watch *w, unsigned events)
{
    nc_watch *pw = container_of(w, nc_watch, w);
    pw->fn(pw, w->fd, to_public(events), pw->ud);
}

static void user_watch_close(struct handle *h)
{
    nc_watch_close(container_of(h, nc_watch, h));
}

int nc_watch_start(nc_loop *loop, int fd, unsigned events, nc_watch_fn fn,
                   void *ud, nc_watch **out)
{
    if (!loop || !fn || !out || fd < 0 ||
        (events & ~(PUBLIC_INTEREST | NC_ERROR)))
        return -EINVAL;
    if (fcntl(fd, F_GETFD) < 0)
        return -errno;
    nc_watch *pw = calloc(1, sizeof(*pw));
    if (!pw)
        return -ENOMEM;
    int rc = nc__watch_init(loop, &pw->w, fd, user_watch_ready, true);
    if (rc < 0) {
        free(pw);
        return rc;
    }
    if (events & PUBLIC_INTEREST) {
        rc = nc__watch_update(&pw->w, to_internal(events));
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
        nc__watch_stop(&pw->w);
        free(pw);
        return rc;
    }
    pw->fn = fn;
    pw->ud = ud;
    pw->h.close = user_watch_close;
    nc__loop_handle_add(loop, &pw->h, HANDLE_USER);
    *out = pw;
    return 0;
}

int nc_watch_set(nc_watch *w, unsigned events)
{
    if (!w || (events & ~(PUBLIC_INTEREST | NC_ERROR)))
        return -EINVAL;
    return nc__watch_update(&w->w, to_internal(events));
}

void nc_watch_close(nc_watch *w)
{
    if (!w)
        return;
    nc__watch_stop(&w->w);
    nc__loop_handle_remove(&w->h);
    free(w);
}
