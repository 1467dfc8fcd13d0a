/*
 * watch.h - the fd table and fd watchers.
 *
 * The loop keeps an array indexed by fd (O(1) lookup, like redis' ae). An
 * entry is a tagged pointer: a struct watch (listener sockets, the
 * signalfd, the wake-up eventfd, public nc_watch) or, with FD_TAG_CONN, a
 * connection, which carries its own interest bits instead of a watch.
 *
 * The token handed to the kernel with an fd is (gen << 32 | fd), gen being
 * the object's 16-bit stamp taken from the loop's counter when it was
 * attached. Dispatch delivers an event only when the fd's entry is still
 * the object with that stamp, so an event queued in the same batch for an
 * object stopped earlier (even if its fd number was reused at once) is
 * dropped, and so is an event for a file that outlives our close() because
 * someone dup()ed or fork()ed it.
 */
#ifndef NC_WATCH_H
#define NC_WATCH_H

#include "common.h"
#include "backend.h"

#include <stdbool.h>

#define FD_TAG_CONN ((uintptr_t)1)

struct watch;
typedef void (*watch_fn)(struct watch *w, unsigned events);
/* A completion backend accepted a connection for a watch with EV_ACCEPT
 * interest: res is the new fd (the callee owns it) or a negative errno. */
typedef void (*watch_accept_fn)(struct watch *w, int res);

struct watch {
    nc_loop *loop;
    int fd;
    uint16_t gen;
    bool counted;      /* keeps nc_loop_run(NC_RUN_DEFAULT) going */
    unsigned events;   /* interest now in the kernel (0: not registered) */
    watch_fn fn;
    watch_accept_fn accept_fn;   /* listening sockets only */
};

static inline uint64_t fd_token(uint16_t gen, int fd)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* Record entry (a tagged pointer) for fd. Errors: -EINVAL, -EEXIST (fd
 * has an entry), -ENOMEM. Returns the stamp to use in tokens through
 * *gen. */
int nc__fd_attach(nc_loop *loop, int fd, uintptr_t entry, uint16_t *gen);
/* Forget fd's entry (no kernel call). */
void nc__fd_detach(nc_loop *loop, int fd);

/* Attach w to fd (no kernel call yet; events = 0). counted: whether it
 * keeps the loop alive. Errors: -EINVAL, -EEXIST, -ENOMEM. */
int nc__watch_init(nc_loop *loop, struct watch *w, int fd, watch_fn fn,
                   bool counted);
/* Set the interest (EV_READ | EV_WRITE | EV_RDHUP); a kernel call only
 * when it changes. */
int nc__watch_update(struct watch *w, unsigned events);
/* Remove from the kernel and the table. Idempotent. */
void nc__watch_stop(struct watch *w);


#endif /* NC_WATCH_H */
