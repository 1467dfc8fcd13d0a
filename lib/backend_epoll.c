/*
 * backend_epoll.c - the readiness backend: the only file that calls
 * epoll_*. Level-triggered; the loop's token travels in data.u64.
 */
#include "backend.h"
#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BACKEND_MAX_EVENTS 1024

struct epoll_backend {
    struct backend base;
    int epfd;
    struct epoll_event events[BACKEND_MAX_EVENTS];
};

_Static_assert((unsigned)EV_READ == EPOLLIN &&
               (unsigned)EV_WRITE == EPOLLOUT &&
               (unsigned)EV_HUP == EPOLLHUP &&
               (unsigned)EV_ERR == EPOLLERR &&
               (unsigned)EV_RDHUP == EPOLLRDHUP, "epoll's bits are poll's");

static int epoll_set(struct backend *b, int fd, uint64_t token, int op,
                     unsigned events)
{
    struct epoll_backend *e = (struct epoll_backend *)b;
    struct epoll_event ev = { .events = events & ~EV_ACCEPT,
                              .data.u64 = token };
    int eop = op == BACKEND_ADD ? EPOLL_CTL_ADD
            : op == BACKEND_MOD ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(e->epfd, eop, fd, &ev) < 0)
        return -errno;
    return 0;
}

static int epoll_wait_deliver(struct backend *b, nc_loop *loop,
                              int timeout_ms)
{
    struct epoll_backend *e = (struct epoll_backend *)b;
    int n = epoll_wait(e->epfd, e->events, BACKEND_MAX_EVENTS, timeout_ms);
    int err = errno;
    nc__loop_woke(loop);
    if (n < 0)
        return err == EINTR ? 0 : -err;
    for (int i = 0; i < n; i++)
        fd_deliver(loop, e->events[i].data.u64, e->events[i].events);
    return n;
}

static void epoll_free(struct backend *b)
{
    struct epoll_backend *e = (struct epoll_backend *)b;
    close(e->epfd);
    free(e);
}

static const struct backend_ops epoll_ops = {
    .kind = NC_BACKEND_EPOLL,
    .set = epoll_set,
    .wait = epoll_wait_deliver,
    .free = epoll_free,
};

int nc__epoll_new(struct backend **out)
{
    struct epoll_backend *e = malloc(sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->base.ops = &epoll_ops;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        int err = -errno;
        free(e);
        return err;
    }
    *out = &e->base;
    return 0;
}
