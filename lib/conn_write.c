/*
 * conn_write.c - a connection's output: straight to the kernel while
 * nothing is queued, into the output queue (outq.c) otherwise, with
 * backpressure on reading above the high-water mark and on_drain below
 * the low one.
 *
 * A write is all or nothing for the caller: it is accepted whole (what the
 * kernel does not take now is queued) or refused with nothing queued. The
 * one exception is running out of memory after part of it went out: the
 * stream then cannot be resumed, so the connection is closed.
 */
#include "conn.h"
#include "splice.h"
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Nagle's algorithm only delays a segment while an earlier one is
 * unacknowledged, so TCP_NODELAY matters from the second send on: set it
 * there, and a connection that sends once (most short-lived ones) never
 * pays the system call. Accepted connections inherit it from their
 * listening socket. */
static void set_nodelay(nc_conn *c)
{
    if (c->prof->set_nodelay)
        nc__set_int_option(c->fd, IPPROTO_TCP, TCP_NODELAY, 1);
    c->flags |= CF_NODELAY_DONE;
}

static inline void before_send(nc_conn *c)
{
    if ((c->flags & (CF_SENT | CF_NODELAY_DONE)) == CF_SENT)
        set_nodelay(c);
    c->flags |= CF_SENT;
}

/* n bytes went to the kernel. The peer taking our output is progress:
 * the idle timeout means nothing moved either way (a reader draining a
 * large reply is not idle), and while closing it is what keeps the
 * connection. Not during the TLS handshake, which its own timeout
 * bounds. */
static void sent_progress(nc_conn *c, size_t n)
{
    nc_loop *loop = conn_loop(c);
    counter_add(&loop->ctr.bytes_out, (uint64_t)n);
    enum conn_state s = conn_state(c);
    if (s == CS_OPEN || s == CS_CLOSING)
        tentry_touch(loop, &c->idle);
}

void nc__conn_queue_grew(nc_conn *c)
{
    size_t refused = conn_refused(c);
    if (refused > 0)
        c->flags |= CF_WAITED;
    if (!(c->flags & CF_BACKPRESSURE) && refused > c->prof->opt.high_water) {
        /* Reading pauses: bytes may arrive unseen from now on. */
        c->flags = (c->flags | CF_BACKPRESSURE) & ~CF_DRAINED;
    }
    nc__conn_rearm(c);
}

void nc__conn_queue_shrank(nc_conn *c)
{
    size_t refused = conn_refused(c);
    bool drained = false;
    if ((c->flags & CF_WAITED) && refused <= c->prof->opt.low_water) {
        c->flags &= ~(CF_WAITED | CF_BACKPRESSURE);
        drained = true;
    }
    nc__conn_rearm(c);
    if (conn_queued(c) == 0)
        nc__conn_cold_release(c);
    if (drained && conn_state(c) == CS_OPEN) {
        if (c->prof->cbs.on_drain)
            c->prof->cbs.on_drain(c, c->ud);
        nc__conn_schedule_redeliver(c);
    }
}

/* n bytes of the queue went out (n may be 0): the accounting, then what
 * waited for an empty queue. first_offer: the bytes were fresh (io_uring),
 * offered for the first time, so what the kernel did not take is a
 * refusal, as epoll's first send of them would have found. */
static void flushed_some(nc_conn *c, size_t n, bool first_offer)
{
    if (n > 0)
        sent_progress(c, n);
    if (conn_queued(c) == 0) {
        nc__conn_flushed(c);
        if (conn_state(c) == CS_CLOSED)
            return;
        if (c->cold && c->cold->splice_in)
            nc__splice_pump_out(c);     /* the pipe waited for the queue */
        if (conn_state(c) == CS_CLOSED)
            return;
    }
    if (first_offer && conn_refused(c) > 0)
        nc__conn_queue_grew(c);
    else
        nc__conn_queue_shrank(c);
}

void nc__conn_flush(nc_conn *c)
{
    before_send(c);
    ssize_t n = nc__outq_flush(&c->cold->out, c->fd, conn_loop(c));
    if (n < 0 && nc_io_classify(NC_OP_WRITE, -1, (int)-n) != NC_IO_AGAIN) {
        nc__conn_fail(c, NC_OP_WRITE, (int)n);
        return;
    }
    bool first_offer = c->cold->fresh > 0;
    c->cold->fresh = 0;         /* all of it was offered */
    if ((c->flags & CF_RING) && conn_queued(c) > 0)
        c->flags |= CF_FULL;    /* a ring waits for POLLOUT now */
    flushed_some(c, n > 0 ? (size_t)n : 0, first_offer);
}

int nc__conn_send_iov(nc_conn *c, struct iovec *iov, int max)
{
    c->flags &= ~CF_SEND_QUEUED;
    if (conn_state(c) == CS_CLOSED || conn_state(c) == CS_CONNECTING ||
        (c->flags & CF_FULL) || conn_queued(c) == 0 || c->cold->sending)
        return 0;
    before_send(c);
    int cnt = nc__outq_peek(&c->cold->out, iov, max);
    size_t total = 0;
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    c->cold->sending = total;
    return cnt;
}

void nc__conn_sent(nc_conn *c, int res)
{
    if (!c->cold || c->cold->sending == 0)
        return;     /* not ours: the queue was dropped meanwhile */
    size_t sending = c->cold->sending;
    c->cold->sending = 0;
    if (res < 0) {
        if (nc_io_classify(NC_OP_WRITE, -1, -res) != NC_IO_AGAIN) {
            nc__conn_fail(c, NC_OP_WRITE, res);
            return;
        }
        c->flags |= CF_FULL;
        res = 0;
    } else if ((size_t)res < sending) {
        c->flags |= CF_FULL;    /* the socket took what it had room for */
    }
    struct conn_cold *k = c->cold;
    bool first_offer = k->fresh > 0;
    nc__outq_consume(&k->out, (size_t)res, conn_loop(c));
    /* What was offered and not taken is refused; a tail beyond what was
     * offered keeps what it was. */
    if (c->flags & CF_FULL)
        k->fresh = 0;
    else if (k->fresh > k->out.bytes)
        k->fresh = k->out.bytes;
    flushed_some(c, (size_t)res, first_offer);
}

/* After nc_conn_shutdown, -EPIPE; also once the connection has closed
 * because both directions are done (with the peer's end already there,
 * on epoll inside the shutdown, on a ring after the submission: the same
 * answer either way). */
static int write_check(const nc_conn *c)
{
    if (nc__conn_shut_down(c))
        return -EPIPE;
    return conn_state(c) != CS_OPEN ? -ENOTCONN : 0;
}

/* The outcome of one send of the bytes of a write, n as it returned and
 * e its errno: the bytes sent (0 when the socket is full), -EINTR to try
 * again, or the kernel's negative errno after closing c. */
static ssize_t sent_result(nc_conn *c, ssize_t n, int e)
{
    if (n >= 0) {
        if (n > 0)
            sent_progress(c, (size_t)n);
        return n;
    }
    switch (nc_io_classify(NC_OP_WRITE, n, e)) {
    case NC_IO_AGAIN:
        return 0;
    case NC_IO_INTR:
        return -EINTR;
    default:
        nc__conn_fail(c, NC_OP_WRITE, -e);
        return -e;
    }
}

/* With nothing queued, hand the bytes to the kernel at once. Returns as
 * sent_result(), never -EINTR. */
static ssize_t send_now(nc_conn *c, const struct iovec *iov, int cnt)
{
    if (cnt > IOV_MAX)
        cnt = IOV_MAX;     /* the rest is queued */
    before_send(c);
    ssize_t r;
    do {
        /* One buffer, the common case: send() spares the kernel the
         * iovec import of sendmsg(). */
        ssize_t n;
        if (cnt == 1) {
            n = send(c->fd, iov[0].iov_base, iov[0].iov_len,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            struct msghdr msg = { .msg_iov = (struct iovec *)iov,
                                  .msg_iovlen = (size_t)cnt };
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        r = sent_result(c, n, errno);
    } while (r == -EINTR);
    return r;
}

/* Queue is out of memory after sent bytes already left. */
static int out_of_memory(nc_conn *c, size_t sent)
{
    if (sent > 0)
        nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
    else
        nc__conn_cold_release(c);
    return -ENOMEM;
}

/* Total length of iov, or -EINVAL on a bad entry or a sum that does not
 * fit in ssize_t. */
static ssize_t iov_total(const struct iovec *iov, int cnt)
{
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        size_t len = iov[i].iov_len;
        if (!iov[i].iov_base && len)
            return -EINVAL;
        if (len > (size_t)SSIZE_MAX - total)
            return -EINVAL;
        total += len;
    }
    return (ssize_t)total;
}

/* Whether a write goes to the socket at once: always on epoll; on a ring
 * only from outside the loop (inside, the iteration's submission sends
 * it). */
static inline bool sends_directly(const nc_conn *c)
{
    return !(c->flags & CF_RING) || !conn_loop(c)->running;
}

/* n bytes were just appended to c's queue, none of them offered to the
 * kernel if offered is false. Such bytes are fresh when epoll would have
 * sent them at once: nothing refused ahead of them (see conn_refused). */
static void queued(nc_conn *c, size_t n, bool offered, bool was_clear)
{
    if (!offered && was_clear)
        c->cold->fresh += n;
    nc__conn_queue_grew(c);
}

/* Whether bytes queued now would be offered to an empty socket queue,
 * before they are appended. */
static inline bool queue_clear(const nc_conn *c)
{
    return conn_refused(c) == 0 && !(c->flags & CF_FULL);
}

/* What a write of total more bytes does now (offer_now). */
enum offer { QUEUE, SEND, COUNT };

/* The most bytes written inside a ring's loop that wait for the
 * iteration's submission (fresh), unless high_water is lower. */
#define FRESH_MAX (64u << 10)

/* Whether a write of total more bytes goes to the socket now (SEND), or
 * is queued (QUEUE; fresh inside a ring's loop), or queued and counted
 * at once as refused (COUNT); a negative errno when offering what waited
 * failed (c is closed then, as a failed send closes it on epoll).
 * Inside a ring's loop a write waits for the iteration's submission
 * ("fresh") only while the fresh bytes stay within high_water (and 64
 * KiB): past it, epoll would have found the socket full and counted the
 * rest as refused. So the fresh bytes are offered now, as epoll would have done,
 * and what the kernel refuses counts (or, with a send of them still in
 * flight, the new bytes count): a program that writes while
 * nc_conn_queued() is below a mark stops at the same place on both
 * backends instead of queueing without bound in one callback. */
static int offer_now(nc_conn *c, size_t total)
{
    if (sends_directly(c))
        return conn_queued(c) == 0 ? SEND : QUEUE;
    struct conn_cold *k = c->cold;
    size_t fresh = k ? k->fresh : 0;
    /* Batching pays for small writes; 64 KiB is what one receive brings.
     * A high_water set far above it (a proxy that does its own flow
     * control) must not let one callback queue without bound. */
    size_t bound = c->prof->opt.high_water < FRESH_MAX
                       ? c->prof->opt.high_water : FRESH_MAX;
    if (fresh + total <= bound)
        return QUEUE;
    if (conn_queued(c) == 0)
        return SEND;
    if (conn_refused(c) > 0 || (c->flags & CF_FULL) || k->sending)
        return COUNT;
    before_send(c);
    ssize_t n = nc__outq_flush(&k->out, c->fd, conn_loop(c));
    if (n < 0 && nc_io_classify(NC_OP_WRITE, -1, (int)-n) != NC_IO_AGAIN) {
        nc__conn_fail(c, NC_OP_WRITE, (int)n);
        return (int)n;
    }
    k->fresh = 0;
    if (n > 0)
        sent_progress(c, (size_t)n);
    if (conn_queued(c) > 0) {
        c->flags |= CF_FULL;    /* a ring waits for POLLOUT now */
        nc__conn_queue_grew(c);
        return COUNT;
    }
    return SEND;
}

/* Queue what is left of iov after sent bytes went out; offered: a send
 * was tried (the kernel refused the rest); counted: the bytes count as
 * refused even if not offered (offer_now's COUNT). */
static int queue_rest(nc_conn *c, const struct iovec *iov, int cnt,
                      size_t sent, bool offered, bool counted)
{
    bool clear = !counted && queue_clear(c);
    size_t before = conn_queued(c);
    struct conn_cold *k = nc__conn_cold(c);
    if (!k || nc__outq_append_iov(&k->out, iov, cnt, sent) < 0)
        return out_of_memory(c, sent);
    queued(c, k->out.bytes - before, offered, clear);
    return 0;
}

/* Send what the kernel takes now, queue the rest: the write path once
 * the arguments are checked. total is the sum of the lengths (> 0). */
static int write_iov(nc_conn *c, const struct iovec *iov, int cnt,
                     size_t total)
{
    size_t sent = 0;
    int now = offer_now(c, total);
    if (now < 0)
        return now;
    bool offered = now == SEND;
    if (offered) {
        ssize_t n = send_now(c, iov, cnt);
        if (n < 0)
            return (int)n;
        if ((size_t)n == total)
            return 0;
        sent = (size_t)n;
    }
    return queue_rest(c, iov, cnt, sent, offered, now == COUNT);
}

int nc__conn_send_bytes(nc_conn *c, const void *data, size_t len)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    if (conn_state(c) == CS_CLOSED)
        return -EPIPE;
    return len ? write_iov(c, &iov, 1, len) : 0;
}

int nc_conn_writev(nc_conn *c, const struct iovec *iov, int cnt)
{
    if (!c || cnt < 0 || (cnt > 0 && !iov))
        return -EINVAL;
    ssize_t total = iov_total(iov, cnt);
    if (total < 0)
        return (int)total;
    int rc = write_check(c);
    if (rc < 0 || total == 0)
        return rc;
    if (c->flags & CF_TLS)
        return nc__tls_write(c, iov, cnt, (size_t)total);
    return write_iov(c, iov, cnt, (size_t)total);
}

/* nc_conn_write() when the quick way did not do it all: checks, a queue
 * already there, or a send that fell short. sent is what that send
 * returned (-1 when none was made) and err its errno. */
static __attribute__((noinline)) int write_slow(nc_conn *c, const void *data,
                                               size_t len, ssize_t sent,
                                               int err)
{
    if (!c || (!data && len) || len > (size_t)SSIZE_MAX)
        return -EINVAL;
    int rc = write_check(c);
    if (rc < 0 || len == 0)
        return rc;
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    if (c->flags & CF_TLS)
        return nc__tls_write(c, &iov, 1, len);
    if (sent == -1 && err == 0)
        return write_iov(c, &iov, 1, len);
    ssize_t n = sent_result(c, sent, err);
    if (n == -EINTR)
        return write_iov(c, &iov, 1, len);
    if (n < 0)
        return (int)n;
    return queue_rest(c, &iov, 1, (size_t)n, true, false);
}

int nc_conn_write(nc_conn *c, const void *data, size_t len)
{
    /* The common case, kept short: an open connection with nothing
     * queued, and the kernel takes the whole buffer in one send. */
    if (c && data && len && len <= (size_t)SSIZE_MAX &&
        (c->flags & (CF_STATE_MASK | CF_SHUT_WANTED | CF_TLS | CF_RING)) ==
            CS_OPEN &&
        conn_queued(c) == 0) {
        before_send(c);
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)len) {
            nc_loop *loop = conn_loop(c);
            counter_add(&loop->ctr.bytes_out, len);
            tentry_touch(loop, &c->idle);
            return 0;
        }
        return write_slow(c, data, len, n, n < 0 ? errno : 0);
    }
    return write_slow(c, data, len, -1, 0);
}

int nc_conn_write_owned(nc_conn *c, void *data, size_t len,
                        void (*free_fn)(void *data, void *arg), void *arg)
{
    if (!c || (!data && len) || len > (size_t)SSIZE_MAX)
        return -EINVAL;
    int rc = write_check(c);
    if (rc < 0)
        return rc;
    struct iovec iov = { .iov_base = data, .iov_len = len };
    /* With a free_fn, its chunk is made first: once bytes are sent the
     * write cannot fail for lack of it, and a buffer sent whole is still
     * released from the loop, never inside this call. */
    struct chunk *own = NULL;
    if (free_fn && !(own = nc__outq_owned_new(data, len, free_fn, arg)))
        return -ENOMEM;
    if (c->flags & CF_TLS) {
        /* Encrypted now: the plain text is not needed afterwards. */
        rc = len ? nc__tls_write(c, &iov, 1, len) : 0;
        if (own && rc == 0)
            nc__outq_owned_release(own, conn_loop(c));
        else if (own)
            nc__outq_owned_drop(own);
        return rc;
    }
    size_t sent = 0;
    int now = len > 0 ? offer_now(c, len) : QUEUE;
    if (now >= 0 && now == SEND) {
        ssize_t n = send_now(c, &iov, 1);
        if (n < 0)
            now = (int)n;
        else
            sent = (size_t)n;
    }
    if (now < 0) {
        if (own)
            nc__outq_owned_drop(own);
        return now;
    }
    bool offered = now == SEND;
    if (sent == len) {
        if (own)
            nc__outq_owned_release(own, conn_loop(c));
        return 0;
    }
    bool clear = now != COUNT && queue_clear(c);
    struct conn_cold *k = nc__conn_cold(c);
    if (k && !own)
        own = nc__outq_owned_new(data, len, NULL, NULL);
    if (!k || !own) {
        if (own)
            nc__outq_owned_drop(own);
        return out_of_memory(c, sent);
    }
    nc__outq_owned_queue(&k->out, own, sent);
    queued(c, len - sent, offered, clear);
    return 0;
}

size_t nc_conn_queued(const nc_conn *c)
{
    return c ? conn_refused(c) : 0;
}
