/*
 * backend_epoll.c - the polling backend: the only file that calls epoll_*.
 * Level-triggered; the loop's token travels in data.u64.
 */
#include "backend.h"
#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BACKEND_MAX_EVENTS 1024

struct backend {
    int epfd;
    struct epoll_event events[BACKEND_MAX_EVENTS];
};

int nc__backend_new(struct backend **out)
{
    struct backend *b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        int err = -errno;
        free(b);
        return err;
    }
    *out = b;
    return 0;
}

void nc__backend_free(struct backend *b)
{
    if (!b)
        return;
    close(b->epfd);
    free(b);
}

_Static_assert((unsigned)EV_READ == EPOLLIN &&
               (unsigned)EV_WRITE == EPOLLOUT &&
               (unsigned)EV_HUP == EPOLLHUP &&
               (unsigned)EV_ERR == EPOLLERR &&
               (unsigned)EV_RDHUP == EPOLLRDHUP, "epoll's bits are poll's");

int nc__backend_set(struct backend *b, int fd, uint64_t token, int op,
                    unsigned events)
{
    struct epoll_event ev = { .events = events, .data.u64 = token };
    int eop = op == BACKEND_ADD ? EPOLL_CTL_ADD
            : op == BACKEND_MOD ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(b->epfd, eop, fd, &ev) < 0)
        return -errno;
    return 0;
}

int nc__backend_wait(struct backend *b, nc_loop *loop, int timeout_ms)
{
    int n = epoll_wait(b->epfd, b->events, BACKEND_MAX_EVENTS, timeout_ms);
    int err = errno;
    nc__loop_woke(loop);
    if (n < 0)
        return err == EINTR ? 0 : -err;
    for (int i = 0; i < n; i++)
        fd_deliver(loop, b->events[i].data.u64, b->events[i].events);
    return n;
}
