/*
 * backend.h - the polling backend seam. backend_epoll.c is the only file
 * that calls epoll_*; the loop sees these functions and event bits. The
 * backend waits and hands each event to fd_deliver() (dispatch.h).
 *
 * Interest and readiness share one set of bits. Hang-up and peer shutdown
 * are kept apart: a reset (EPOLLHUP, usually with EPOLLERR) must not read
 * as an orderly end of stream (EPOLLRDHUP).
 */
#ifndef NC_BACKEND_H
#define NC_BACKEND_H

#include "common.h"

#include <poll.h>

/* poll(2)'s values, which epoll and io_uring's poll requests share: no
 * translation on the way in or out. */
enum {
    EV_READ = POLLIN,     /* readable */
    EV_WRITE = POLLOUT,   /* writable */
    EV_HUP = POLLHUP,     /* both directions closed; reported only */
    EV_ERR = POLLERR,     /* a pending socket error; reported only */
    EV_RDHUP = POLLRDHUP  /* the peer shut down its sending side; interest
                             and report */
};

#define EV_INTEREST (EV_READ | EV_WRITE | EV_RDHUP)

struct backend;

/* Errors: -ENOMEM, epoll_create1's errno. */
int nc__backend_new(struct backend **out);
void nc__backend_free(struct backend *b);

enum { BACKEND_ADD, BACKEND_MOD, BACKEND_DEL };

/* Register fd (BACKEND_ADD), change its interest (BACKEND_MOD; none at all
 * still reports hang-ups and errors) or remove it (BACKEND_DEL). The token
 * comes back with each event. Returns 0 or epoll_ctl's negative errno. */
int nc__backend_set(struct backend *b, int fd, uint64_t token, int op,
                    unsigned events);

/* Wait up to timeout_ms (-1 = forever), then refresh the loop's cached
 * time and deliver every ready event to its owner. Returns the number of
 * events (0 on timeout or EINTR), or a negative errno. */
int nc__backend_wait(struct backend *b, nc_loop *loop, int timeout_ms);

#endif /* NC_BACKEND_H */
