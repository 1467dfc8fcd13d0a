/*
 * backend_epoll.c - the polling backend: the only file that calls epoll_*.
 * Level-triggered; the loop's token travels in data.u64.
 */
#include "backend.h"

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

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & EV_READ)
        e |= EPOLLIN;
    if (events & EV_WRITE)
        e |= EPOLLOUT;
    if (events & EV_RDHUP)
        e |= EPOLLRDHUP;
    return e;
}

int nc__backend_set(struct backend *b, int fd, uint64_t token, int op,
                    unsigned events)
{
    struct epoll_event ev = { .events = to_epoll(events), .data.u64 = token };
    int eop = op == BACKEND_ADD ? EPOLL_CTL_ADD
            : op == BACKEND_MOD ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(b->epfd, eop, fd, &ev) < 0)
        return -errno;
    return 0;
}

int nc__backend_poll(struct backend *b, int timeout_ms)
{
    int n = epoll_wait(b->epfd, b->events, BACKEND_MAX_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    return n;
}

void nc__backend_event(const struct backend *b, int i, uint64_t *token,
                       unsigned *events)
{
    uint32_t e = b->events[i].events;
    unsigned r = 0;
    if (e & EPOLLIN)
        r |= EV_READ;
    if (e & EPOLLOUT)
        r |= EV_WRITE;
    if (e & EPOLLHUP)
        r |= EV_HUP;
    if (e & EPOLLERR)
        r |= EV_ERR;
    if (e & EPOLLRDHUP)
        r |= EV_RDHUP;
    *token = b->events[i].data.u64;
    *events = r;
}
