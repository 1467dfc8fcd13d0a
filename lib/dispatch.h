/*
 * dispatch.h - handing one ready fd's events to its owner: the body of
 * every backend's event loop, inline because it runs once per event.
 *
 * The token carries the fd and the stamp its owner had when it was
 * registered (watch.h); an event whose fd no longer has that owner (it
 * was stopped earlier in the same batch, even if its number was reused
 * at once, or the file outlives our close() in a dup or a fork) is
 * dropped.
 */
#ifndef NC_DISPATCH_H
#define NC_DISPATCH_H

#include "conn.h"
#include "loop.h"

static inline void fd_deliver(nc_loop *loop, uint64_t token, unsigned events)
{
    uint32_t fd = (uint32_t)token;
    uint16_t gen = (uint16_t)(token >> 32);
    if (fd >= loop->nfds || !loop->fds[fd])
        return;
    uintptr_t entry = loop->fds[fd];
    if (entry & FD_TAG_CONN) {
        nc_conn *c = (nc_conn *)(entry & ~FD_TAG_CONN);
        if (c->idle.tag == gen)
            nc__conn_ready(c, events);
        return;
    }
    struct watch *w = (struct watch *)entry;
    if (w->gen != gen)
        return;
    /* Interest may have shrunk earlier in this batch. */
    events &= w->events | EV_HUP | EV_ERR;
    if (w->events && events)
        w->fn(w, events);
}

#endif /* NC_DISPATCH_H */
