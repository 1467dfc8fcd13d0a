/*
 * ring.h - connections on an io_uring loop. backend_uring.c owns the ring
 * and submits requests; conn_ring.c decides which requests a connection
 * keeps in the kernel and what their completions mean.
 *
 * A connection that reads keeps one receive armed (one-shot, see
 * nc__ring_recv): the kernel picks a buffer from the loop's buffer ring
 * when bytes arrive, the bytes
 * are handed to on_data from there, and the buffer goes back to the ring
 * when on_data returns (only what on_data leaves is copied into the
 * connection's own buffer, as with epoll). Output is queued (outq.c) and
 * sent by a request submitted with the iteration's wait: one
 * io_uring_enter() both sends and waits. Sends are non-blocking
 * (MSG_DONTWAIT), so each completes during that submission, taking what
 * the socket has room for; a connection whose socket is full waits for a
 * poll request (POLLOUT) before it sends again. A poll request also
 * reports the outcome of a connect, and hang-ups while nothing is read.
 *
 * Closing cancels the connection's requests and closes its fd through the
 * ring, both with the next submission (at once when the loop is not
 * running): no request outlives the connection, and completions that
 * arrive after it are recognised by their token (watch.h) and dropped.
 */
#ifndef NC_RING_H
#define NC_RING_H

#include "conn.h"

#include <sys/uio.h>

/* What a request was for: the low 3 bits of its user data. */
enum ring_req {
    RQ_NONE = 0,     /* cancels and closes: nothing to do */
    RQ_WATCH,        /* a poll for a watch (readiness, level-triggered) */
    RQ_ACCEPT,       /* a listening socket's multishot accept */
    RQ_RECV,         /* a connection's receive */
    RQ_POLL,         /* a connection's poll (connect, POLLOUT, hang-up) */
    RQ_SEND          /* a connection's send */
};

#ifdef NC_HAVE_URING

/* ---- conn_ring.c --------------------------------------------------- */
/* Bring c's requests in line with what it wants (conn interest). */
void nc__ring_conn_sync(nc_conn *c);
/* c is being closed: cancel its requests and close its fd (with now,
 * before this returns). */
void nc__ring_conn_close(nc_conn *c, bool now);
/* A completion of c's request of kind: res and cqe flags as the kernel
 * gave them; data is the received bytes of an RQ_RECV (res > 0). */
void nc__ring_conn_complete(nc_conn *c, enum ring_req kind, int res,
                            uint32_t cflags, const char *data);

/* ---- backend_uring.c ----------------------------------------------- */
/* Arm a receive on fd into the loop's buffer ring (one-shot); drained:
 * the last receive found the socket empty. 0 or -EBUSY (the kernel
 * takes no request now). */
int nc__ring_recv(struct ring *r, int fd, uint64_t token, bool drained);
/* Arm a poll on fd for events (0: hang-ups and errors only). 0 or
 * -EBUSY. A multishot poll completes once per wake-up of the socket that
 * matches, until cancelled; a one-shot poll once. The kernel reports the
 * peer's end (POLLRDHUP) to every poll whatever it asked for, so only a
 * multishot poll can wait for anything else once the peer has ended its
 * stream: a one-shot poll armed again would complete at once, forever. */
int nc__ring_poll(struct ring *r, int fd, uint64_t token, unsigned events,
                  bool multishot);
/* Cancel the request of kind with token (its completion follows). */
void nc__ring_cancel(struct ring *r, uint64_t token, enum ring_req kind);
/* Close fd through the ring: with cancel, every request on it is
 * cancelled first. With now, both happen before this returns (the
 * number is free again at once: an eviction needs it for the next
 * accept). */
void nc__ring_close(struct ring *r, int fd, bool cancel, bool now);
/* Send the queued output of the connection with token with the next
 * submission (nc__conn_send_iov then says what). 0 or -ENOMEM. */
int nc__ring_send_later(struct ring *r, uint64_t token);
/* Submit what is queued now, without waiting (and let the kernel finish
 * what that set in motion: a cancelled request letting go of its file). */
void nc__ring_submit(struct ring *r);
/* nc_loop_run() returns: send what was written (with send system calls,
 * at once) and submit what is queued, so that nothing waits for the loop
 * to run again. Outside the loop, writes go straight to the socket, as
 * with epoll. */
void nc__ring_loop_exit(struct ring *r);

#else

/* Built without liburing: no loop has a ring, so no connection is
 * CF_RING and these are never called. */
static inline void nc__ring_conn_sync(nc_conn *c) { (void)c; }
static inline void nc__ring_conn_close(nc_conn *c, bool now)
{
    (void)c;
    (void)now;
}
static inline void nc__ring_submit(struct ring *r) { (void)r; }
static inline void nc__ring_loop_exit(struct ring *r) { (void)r; }

#endif /* NC_HAVE_URING */

#endif /* NC_RING_H */
