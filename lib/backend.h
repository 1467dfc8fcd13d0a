/*
 * backend.h - the kernel interface seam. A loop runs on one backend:
 * backend_epoll.c (readiness: the library reads and writes itself) or
 * backend_uring.c (completion: io_uring accepts, receives and sends for
 * the connections, see ring.h). backend.c chooses between them. The loop
 * sees these functions and event bits; a backend waits and hands each
 * readiness event to fd_deliver() (dispatch.h).
 *
 * Interest and readiness share one set of bits. Hang-up and peer shutdown
 * are kept apart: a reset (POLLHUP, usually with POLLERR) must not read
 * as an orderly end of stream (POLLRDHUP).
 */
#ifndef NC_BACKEND_H
#define NC_BACKEND_H

#include "common.h"

#include <poll.h>
#include <stdbool.h>

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

/* Interest only, on a completion backend: accept connections (a listening
 * socket's watch; its accept_fn gets each new fd). Never in epoll's
 * interest. */
#define EV_ACCEPT 0x01000000u

#define EV_INTEREST (EV_READ | EV_WRITE | EV_RDHUP | EV_ACCEPT)

enum { BACKEND_ADD, BACKEND_MOD, BACKEND_DEL };

struct backend;

struct backend_ops {
    nc_backend kind;
    /* Register fd (BACKEND_ADD), change its interest (BACKEND_MOD; none at
     * all still reports hang-ups and errors) or remove it (BACKEND_DEL).
     * The token comes back with each event. 0 or a negative errno. */
    int (*set)(struct backend *b, int fd, uint64_t token, int op,
               unsigned events);
    /* Wait up to timeout_ms (-1 = forever), then call nc__loop_woke() and
     * deliver what happened. Returns the number of events (0 on timeout
     * or EINTR), or a negative errno. */
    int (*wait)(struct backend *b, nc_loop *loop, int timeout_ms);
    /* Release it; what is still registered is dropped. */
    void (*free)(struct backend *b);
};

/* Every backend starts with this. */
struct backend {
    const struct backend_ops *ops;
};

/* backend.c: the backend o asks for (NULL: NC_BACKEND, or automatic),
 * created for loop. Errors: as nc_loop_new_with(). */
int nc__backend_new(nc_loop *loop, const nc_loop_options *o,
                    struct backend **out);

/* backend_epoll.c. Errors: -ENOMEM, epoll_create1's. */
int nc__epoll_new(struct backend **out);

/* backend_uring.c: sets loop->ring too. Errors: -ENOSYS (no io_uring, or
 * older than 6.0), -EPERM (forbidden), -ENOMEM, io_uring_setup's. */
int nc__uring_new(nc_loop *loop, struct backend **out);

static inline int nc__backend_set(struct backend *b, int fd, uint64_t token,
                                  int op, unsigned events)
{
    return b->ops->set(b, fd, token, op, events);
}

static inline int nc__backend_wait(struct backend *b, nc_loop *loop,
                                   int timeout_ms)
{
    return b->ops->wait(b, loop, timeout_ms);
}

static inline void nc__backend_free(struct backend *b)
{
    if (b)
        b->ops->free(b);
}

#endif /* NC_BACKEND_H */
