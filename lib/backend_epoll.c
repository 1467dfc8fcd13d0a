/*
 * backend_epoll.c - the polling backend: the only file that calls epoll_*.
 * Level-triggered; the loop's token travels in data.u64.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BACKEND_MAX_EVENTS 1024

struct backend {
    int epfd;
    struct epoll_event events[BACKEND_MAX_EVENTS];
};

int backend_new(struct backend **out)
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

void backend_free(struct backend *b)
{
    if (!b)
        return;
    close(b->epfd);
    free(b);
}

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & NC_READABLE)
        e |= EPOLLIN;
    if (events & NC_WRITABLE)
        e |= EPOLLOUT;
    if (events & NC_HANGUP)
        e |= EPOLLRDHUP;
    return e;
}

int backend_set(struct backend *b, int fd, uint64_t token,
                unsigned old_events, unsigned new_events)
{
    struct epoll_event ev = { .events = to_epoll(new_events),
                              .data.u64 = token };
    int op = old_events == 0 ? EPOLL_CTL_ADD
           : new_events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(b->epfd, op, fd, &ev) < 0)
        return -errno;
    return 0;
}

int backend_poll(struct backend *b, int timeout_ms)
{
    int n = epoll_wait(b->epfd, b->events, BACKEND_MAX_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    return n;
}

void backend_event(const struct backend *b, int i, uint64_t *token,
                   unsigned *events)
{
    uint32_t e = b->events[i].events;
    unsigned r = 0;
    if (e & EPOLLIN)
        r |= NC_READABLE;
    if (e & EPOLLOUT)
        r |= NC_WRITABLE;
    if (e & (EPOLLHUP | EPOLLRDHUP))
        r |= NC_HANGUP;
    if (e & EPOLLERR)
        r |= NC_ERROR;
    *token = b->events[i].data.u64;
    *events = r;
}
