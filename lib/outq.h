/*
 * outq.h - a connection's output queue: what the kernel has not taken yet.
 *
 * A list of chunks. Copied bytes are coalesced into chunks sized to what
 * they hold (growing geometrically when many writes queue up); owned
 * buffers (nc_conn_write_owned) are queued as they are and handed to their
 * free function once sent or dropped. Appends are all or nothing: on
 * -ENOMEM the queue is unchanged.
 *
 * A free function is user code, and may close the connection, which
 * clears this very queue: it never runs while a queue operation is under
 * way. Its chunk is deferred to the end of the loop's iteration (the chunk
 * is its own deferred call, so this cannot fail) and the free function
 * runs from there.
 */
#ifndef NC_OUTQ_H
#define NC_OUTQ_H

#include "loop.h"

#include <sys/uio.h>

struct chunk;
struct outq {
    struct chunk *head, *tail;
    size_t bytes;
};

/* Copy the bytes of iov[0..cnt) after the first skip of them. Errors:
 * -ENOMEM (nothing queued). */
int nc__outq_append_iov(struct outq *q, const struct iovec *iov, int cnt,
                        size_t skip);
/* An owned buffer (nc_conn_write_owned), made before any of it is sent
 * so that nothing can fail after: then queued without copying
 * (nc__outq_owned_queue; free_fn(data, arg) runs once the chunk is sent
 * or dropped), or released when all of it went at once
 * (nc__outq_owned_release), or dropped when the write failed
 * (nc__outq_owned_drop: free_fn not called, the caller keeps data).
 * NULL: out of memory. */
struct chunk *nc__outq_owned_new(void *data, size_t len,
                                 void (*free_fn)(void *, void *), void *arg);
void nc__outq_owned_queue(struct outq *q, struct chunk *c, size_t off);
/* All of c's data was sent: free_fn runs from loop's deferred calls, never
 * nested in the write (a free_fn that writes the next buffer would
 * otherwise recurse once per buffer the kernel takes at once). */
void nc__outq_owned_release(struct chunk *c, nc_loop *loop);
void nc__outq_owned_drop(struct chunk *c);
/* Send as much as the socket takes (sendmsg, MSG_NOSIGNAL, up to 64
 * chunks at once). Sent owned chunks go to loop's deferred calls, as for
 * the functions below. Returns bytes sent (>= 0; the socket is full when the
 * queue is not empty afterwards) or a negative errno when nothing could
 * be sent (-EAGAIN: full). */
ssize_t nc__outq_flush(struct outq *q, int fd, nc_loop *loop);
/* Fill iov (at most max) with the queued bytes, oldest first; returns the
 * count. For submitting a send without copying. */
int nc__outq_peek(const struct outq *q, struct iovec *iov, int max);
/* Drop n sent bytes from the front. */
void nc__outq_consume(struct outq *q, size_t n, nc_loop *loop);
/* Drop everything. */
void nc__outq_clear(struct outq *q, nc_loop *loop);

#endif /* NC_OUTQ_H */
