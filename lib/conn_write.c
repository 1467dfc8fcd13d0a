/*
 * conn_write.c - a connection's writes: straight to the kernel while the
 * queue is empty, queued (outq, buf.c) otherwise, with backpressure on
 * reading above the high-water mark and on_drain below the low one.
 */
#include "conn.h"

#include <errno.h>
#include <sys/uio.h>

/* ---- writing ----------------------------------------------------------------- */

/* The queue changed: update backpressure, bring the kernel's interest in
 * line (one syscall at most), and tell the user when the queue drained. */
void queue_changed(nc_conn *c)
{
    bool drained = false;
    if (!c->backpressure && c->out.bytes > c->opt.high_water) {
        c->backpressure = true;
    } else if (c->backpressure && c->out.bytes <= c->opt.low_water) {
        c->backpressure = false;
        drained = true;
    }
    conn_rearm(c);
    if (drained && c->cbs.on_drain && c->state == CONN_OPEN)
        c->cbs.on_drain(c, c->ud);
}

void conn_flush(nc_conn *c)
{
    ssize_t n = outq_flush(&c->out, c->fd);
    if (n < 0 && nc_io_classify(NC_OP_WRITE, -1, (int)-n) != NC_IO_AGAIN) {
        conn_fail(c, NC_OP_WRITE, (int)n);
        return;
    }
    if (n > 0 && c->state == CONN_CLOSING)
        c->last_active_ns = c->loop->now_ns;
    if (c->out.bytes == 0) {
        conn_flushed(c);
        if (c->state == CONN_CLOSED)
            return;
    }
    queue_changed(c);
}

static int write_check(const nc_conn *c)
{
    if (c->state != CONN_OPEN)
        return -ENOTCONN;
    return c->shut_wanted ? -EPIPE : 0;
}

/* With an empty queue, hand the bytes to the kernel at once. Returns the
 * bytes sent (0 when the socket is full), or -EPIPE after closing c for a
 * failed send. */
static ssize_t send_now(nc_conn *c, const struct iovec *iov, int cnt)
{
    if (c->out.bytes > 0)
        return 0;
    for (;;) {
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
        if (n >= 0)
            return n;
        switch (nc_io_classify(NC_OP_WRITE, n, errno)) {
        case NC_IO_AGAIN:
            return 0;
        case NC_IO_INTR:
            continue;
        default:
            conn_fail(c, NC_OP_WRITE, -errno);
            return -EPIPE;
        }
    }
}

int nc_conn_writev(nc_conn *c, const struct iovec *iov, int cnt)
{
    if (!c || cnt < 0 || (cnt > 0 && !iov))
        return -EINVAL;
    int rc = write_check(c);
    if (rc < 0)
        return rc;
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (total == 0)
        return 0;
    ssize_t sent = send_now(c, iov, cnt < 1024 ? cnt : 1024);
    if (sent < 0)
        return (int)sent;
    if ((size_t)sent == total)
        return 0;
    size_t skip = (size_t)sent;
    for (int i = 0; i < cnt; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        rc = outq_append(&c->out, (const char *)iov[i].iov_base + skip,
                         len - skip);
        skip = 0;
        if (rc < 0) {
            /* Part of the stream is already out: it cannot be resumed. */
            if (sent > 0 || i > 0)
                conn_finish(c, NC_CLOSE_ERROR, rc);
            return rc;
        }
    }
    queue_changed(c);
    return 0;
}

int nc_conn_write(nc_conn *c, const void *data, size_t len)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    if (!data && len)
        return -EINVAL;
    return nc_conn_writev(c, &iov, 1);
}

int nc_conn_write_owned(nc_conn *c, void *data, size_t len,
                        void (*free_fn)(void *data, void *arg), void *arg)
{
    if (!c || (!data && len))
        return -EINVAL;
    int rc = write_check(c);
    if (rc < 0)
        return rc;
    struct iovec iov = { .iov_base = data, .iov_len = len };
    ssize_t sent = len ? send_now(c, &iov, 1) : 0;
    if (sent < 0)
        return (int)sent;
    if ((size_t)sent == len) {
        if (free_fn)
            free_fn(data, arg);
        return 0;
    }
    rc = outq_append_owned(&c->out, data, len, (size_t)sent, free_fn, arg);
    if (rc < 0) {
        if (sent > 0)
            conn_finish(c, NC_CLOSE_ERROR, rc);
        return rc;
    }
    queue_changed(c);
    return 0;
}

size_t nc_conn_queued(const nc_conn *c)
{
    return c ? c->out.bytes : 0;
}
