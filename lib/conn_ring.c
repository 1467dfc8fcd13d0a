/*
 * conn_ring.c - a connection on an io_uring loop: which requests it keeps
 * in the kernel, and what their completions mean (see ring.h).
 *
 * At most one receive and one poll request per connection are in the
 * kernel at a time. Changing one means cancelling it and waiting for its
 * last completion before arming the new one, so a completion always
 * belongs to the request the flags describe. Sends are not "in the
 * kernel" between iterations: each is submitted with the wait and
 * completes during that submission.
 */
#include "ring.h"

#include <errno.h>
#include <liburing.h>

/* The poll request c should have: 0 none, else the events (POLLIN for a
 * spliced connection's input, POLLOUT, both, or EV_HUP for hang-ups
 * only). */
static unsigned wanted_poll(const nc_conn *c, uint64_t want)
{
    if (conn_state(c) == CS_CONNECTING)
        return EV_WRITE;
    unsigned events = 0;
    /* Spliced input is moved by splice(2) when the socket is readable:
     * no receive takes it into a buffer. */
    if ((want & CF_WANT_READ) && (c->flags & CF_SPLICED))
        events |= EV_READ;
    /* Room to send: asked for once the socket was found full, and kept
     * while output is queued (a multishot poll reports each time room
     * comes, one completion per wake-up of the socket). */
    if ((want & CF_WANT_WRITE) && (c->flags & (CF_FULL | CF_P_OUT)))
        events |= EV_WRITE;
    if (events)
        return events;
    /* Not reading and open: a reset must still be seen, as epoll sees
     * it, to close the connection now rather than at its next write. */
    if (!(want & CF_WANT_READ) && conn_state(c) == CS_OPEN &&
        !(c->flags & CF_HUP))
        return EV_HUP;
    return 0;
}

static unsigned armed_poll(const nc_conn *c)
{
    if (!(c->flags & CF_P_ARMED))
        return 0;
    unsigned events = (c->flags & CF_P_IN ? EV_READ : 0) |
                      (c->flags & CF_P_OUT ? EV_WRITE : 0);
    return events ? events : EV_HUP;
}

void nc__ring_conn_sync(nc_conn *c)
{
    if (conn_state(c) == CS_CLOSED)
        return;
    struct ring *r = conn_loop(c)->ring;
    uint64_t token = fd_token(c->idle.tag, c->fd);
    uint64_t want = nc__conn_interest(c);

    int rc = 0;
    bool recv = (want & CF_WANT_READ) && !(c->flags & CF_SPLICED);
    if (recv && !(c->flags & CF_R_ARMED)) {
        rc = nc__ring_recv(r, c->fd, token, c->flags & CF_DRAINED);
        if (rc == 0)
            c->flags |= CF_R_ARMED;
    } else if (!recv &&
               (c->flags & (CF_R_ARMED | CF_R_CANCEL)) == CF_R_ARMED) {
        nc__ring_cancel(r, token, RQ_RECV);
        c->flags |= CF_R_CANCEL;
    }

    unsigned poll = wanted_poll(c, want);
    if (rc == 0 && poll != armed_poll(c)) {
        if (!(c->flags & CF_P_ARMED)) {
            /* Multishot, but for a connect and for spliced input: those
             * are read to a budget and must be told again of what is
             * left (a multishot poll reports wake-ups, not levels), and
             * cannot meet a peer's end without reading it. */
            rc = nc__ring_poll(r, c->fd, token, poll == EV_HUP ? 0 : poll,
                               conn_state(c) != CS_CONNECTING &&
                                   !(poll & EV_READ));
            if (rc == 0)
                c->flags |= CF_P_ARMED | (poll & EV_WRITE ? CF_P_OUT : 0) |
                            (poll & EV_READ ? CF_P_IN : 0);
        } else if (!(c->flags & CF_P_CANCEL)) {
            nc__ring_cancel(r, token, RQ_POLL);
            c->flags |= CF_P_CANCEL;
        }
    }

    if (rc == 0 && (want & CF_WANT_WRITE) && conn_state(c) != CS_CONNECTING &&
        !(c->flags & (CF_FULL | CF_SEND_QUEUED))) {
        /* Marked first: outside the loop the send goes out inside. */
        c->flags |= CF_SEND_QUEUED;
        rc = nc__ring_send_later(r, token);
    }
    if (rc < 0)
        nc__conn_teardown(c, NC_CLOSE_ERROR, rc, false);
}

void nc__ring_conn_close(nc_conn *c, bool now)
{
    nc__ring_close(conn_loop(c)->ring, c->fd,
                   (c->flags & (CF_R_ARMED | CF_P_ARMED)) != 0, now);
    c->flags &= ~(CF_R_ARMED | CF_R_CANCEL | CF_P_ARMED | CF_P_OUT | CF_P_IN |
                  CF_P_CANCEL | CF_SEND_QUEUED);
}

void nc__ring_conn_complete(nc_conn *c, enum ring_req kind, int res,
                            uint32_t cflags, const char *data)
{
    bool last = !(cflags & IORING_CQE_F_MORE);
    switch (kind) {
    case RQ_RECV:
        if (last)
            c->flags &= ~(CF_R_ARMED | CF_R_CANCEL);
        if (res > 0)
            nc__conn_received(c, data, (size_t)res,
                              cflags & IORING_CQE_F_SOCK_NONEMPTY);
        else if (res == 0 || (res != -ECANCELED && res != -ENOBUFS))
            nc__conn_recv_end(c, res);
        /* -ENOBUFS: the buffer ring ran dry; buffers are back by the time
         * the receive armed again below is submitted. */
        break;
    case RQ_POLL:
        if (last)
            c->flags &= ~(CF_P_ARMED | CF_P_OUT | CF_P_IN | CF_P_CANCEL);
        else
            c->flags &= ~CF_P_CANCEL;   /* a cancel that missed it (it was
                                           running) is asked again below */
        if (res > 0)
            nc__conn_polled(c, (unsigned)res);
        break;
    case RQ_SEND:
        nc__conn_sent(c, res);
        break;
    default:
        return;
    }
    nc__ring_conn_sync(c);
}
