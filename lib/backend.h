/*
 * backend.h - the polling backend seam. backend_epoll.c is the only file
 * that calls epoll_*; the loop sees four functions and these event bits.
 *
 * Interest and readiness share one set of bits. The first four have the
 * values of the public NC_READABLE, NC_WRITABLE, NC_HANGUP and NC_ERROR.
 * Hang-up and peer shutdown are kept apart: a reset (EPOLLHUP, usually
 * with EPOLLERR) must not read as an orderly end of stream (EPOLLRDHUP).
 */
#ifndef NC_BACKEND_H
#define NC_BACKEND_H

#include "common.h"

enum {
    EV_READ = 1u << 0,    /* readable (EPOLLIN) */
    EV_WRITE = 1u << 1,   /* writable (EPOLLOUT) */
    EV_HUP = 1u << 2,     /* both directions closed (EPOLLHUP); reported
                             only */
    EV_ERR = 1u << 3,     /* a pending socket error (EPOLLERR); reported
                             only */
    EV_RDHUP = 1u << 4    /* the peer shut down its sending side
                             (EPOLLRDHUP); interest and report */
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

/* Wait up to timeout_ms (-1 = forever) and return the number of ready
 * events (0 on timeout or EINTR), or a negative errno. */
int nc__backend_poll(struct backend *b, int timeout_ms);

/* Event i (0 <= i < the count nc__backend_poll returned). */
void nc__backend_event(const struct backend *b, int i, uint64_t *token,
                       unsigned *events);

#endif /* NC_BACKEND_H */
