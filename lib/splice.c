/*
 * splice.c - zero-copy forwarding between two connections (see
 * splice.h): nc_conn_splice, the pumps, and the pool of pipes.
 *
 * Pipes are asked for 1 MiB (F_SETPIPE_SZ): measured on loopback, a relay
 * through 64 KiB pipes costs as much CPU per MiB as reading and writing
 * (the system calls per MiB dominate), while 1 MiB pipes cost about a
 * third (docs/performance.md). Where the kernel refuses that size (the
 * per-user pipe budget, fs/pipe-max-size), a pipe keeps what it got.
 */
#include "splice.h"
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define PIPE_WANT (1 << 20)
#define POOL_KEEP 16            /* empty pipes a loop keeps for reuse */

struct splice_pool {
    int fds[POOL_KEEP][2];
    size_t n;
};

/* ---- the pool ------------------------------------------------------------- */

static int pipe_get(nc_loop *loop, struct splice_dir *d)
{
    struct splice_pool *p = loop->splices;
    if (p && p->n > 0) {
        p->n--;
        d->pipe[0] = p->fds[p->n][0];
        d->pipe[1] = p->fds[p->n][1];
        return 0;
    }
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return -errno;
    }
    fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_WANT);   /* best effort */
    return 0;
}

/* Give d's pipe back: to the pool when it is empty, else closed (what it
 * held is dropped). */
static void pipe_put(nc_loop *loop, struct splice_dir *d)
{
    if (d->pipe[0] < 0)
        return;
    struct splice_pool *p = loop->splices;
    if (d->in_pipe == 0 && !p)
        p = loop->splices = calloc(1, sizeof(*p));
    if (d->in_pipe == 0 && p && p->n < POOL_KEEP) {
        p->fds[p->n][0] = d->pipe[0];
        p->fds[p->n][1] = d->pipe[1];
        p->n++;
    } else {
        close(d->pipe[0]);
        close(d->pipe[1]);
    }
    d->pipe[0] = d->pipe[1] = -1;
    d->in_pipe = 0;
}

void nc__splice_pool_free(nc_loop *loop)
{
    struct splice_pool *p = loop->splices;
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        close(p->fds[i][0]);
        close(p->fds[i][1]);
    }
    free(p);
    loop->splices = NULL;
}

/* ---- the pumps --------------------------------------------------------------- */

static struct splice_dir *out_of(const nc_conn *c)
{
    return c->cold ? c->cold->splice_out : NULL;
}

static struct splice_dir *in_of(const nc_conn *c)
{
    return c->cold ? c->cold->splice_in : NULL;
}

/* from's end, read and with the pipe emptied into to: to's side ends
 * (after what is queued for it), then from reports its end as any end
 * of stream. */
static void pass_end(struct splice_dir *d)
{
    nc_conn *from = d->from, *to = d->to;
    d->eof = false;
    if (conn_state(to) == CS_OPEN)
        nc_conn_shutdown(to);
    if (conn_state(from) == CS_OPEN)
        nc__conn_input_end(from, 0);
}

/* Move the pipe's bytes into d->to while it takes them. Its own queue
 * goes first: the pipe waits until it is empty. */
static void move_out(struct splice_dir *d)
{
    nc_conn *to = d->to;
    nc_loop *loop = conn_loop(to);
    while (d->in_pipe > 0 && conn_queued(to) == 0 &&
           conn_state(to) != CS_CLOSED) {
        ssize_t n = splice(d->pipe[0], NULL, to->fd, NULL, d->in_pipe,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->in_pipe -= (size_t)n;
            d->from->cold->spliced += (uint64_t)n;
            counter_add(&loop->ctr.bytes_out, (uint64_t)n);
            tentry_touch(loop, &to->idle);
            continue;
        }
        int e = errno;
        switch (nc_io_classify(NC_OP_WRITE, n, e)) {
        case NC_IO_AGAIN:
            if (to->flags & CF_RING)
                to->flags |= CF_FULL;   /* a ring waits for POLLOUT */
            break;
        case NC_IO_INTR:
            continue;
        default:
            nc__conn_fail(to, NC_OP_WRITE, -e);
            return;
        }
        break;
    }
    if (d->in_pipe == 0)
        pipe_put(loop, d);
    nc__conn_rearm(to);
    if (d->in_pipe == 0 && d->eof)
        pass_end(d);
    else if (conn_state(d->from) != CS_CLOSED)
        nc__conn_rearm(d->from);    /* the pipe has room again */
}

void nc__splice_pump_in(nc_conn *from)
{
    struct splice_dir *d = out_of(from);
    nc_loop *loop = conn_loop(from);
    size_t budget = from->prof->opt.read_budget;
    while (budget > 0 && !d->eof && conn_state(from) == CS_OPEN &&
           conn_delivering(from)) {
        if (d->pipe[0] < 0) {
            int rc = pipe_get(loop, d);
            if (rc < 0) {
                nc__conn_teardown(from, NC_CLOSE_ERROR, rc, false);
                return;
            }
        }
        size_t room = (size_t)PIPE_WANT - d->in_pipe;
        ssize_t n = splice(from->fd, NULL, d->pipe[1], NULL, room,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->in_pipe += (size_t)n;
            counter_add(&loop->ctr.bytes_in, (uint64_t)n);
            tentry_touch(loop, &from->idle);
            budget = (size_t)n < budget ? budget - (size_t)n : 0;
            move_out(d);
            /* A failure of to, or its on_close, may have ended this. */
            if (out_of(from) != d || d->in_pipe > 0)
                return;
            continue;
        }
        if (n == 0) {
            d->eof = true;
            break;
        }
        int e = errno;
        switch (nc_io_classify(NC_OP_READ, n, e)) {
        case NC_IO_AGAIN:
            /* Either from is empty, or the pipe is full (its size is the
             * kernel's, perhaps less than asked): the pipe's bytes go
             * out first, and from is read again when they have. */
            from->flags |= CF_DRAINED;
            if (d->in_pipe > 0)
                move_out(d);
            else
                nc__conn_rearm(from);
            return;
        case NC_IO_INTR:
            continue;
        default:
            nc__conn_fail(from, NC_OP_READ, -e);
            return;
        }
    }
    if (d->eof && d->in_pipe == 0)
        pass_end(d);
    else
        nc__conn_rearm(from);
}

void nc__splice_pump_out(nc_conn *to)
{
    struct splice_dir *d = in_of(to);
    if (d && d->in_pipe > 0)
        move_out(d);
}

bool nc__splice_wants_read(const nc_conn *from)
{
    const struct splice_dir *d = out_of(from);
    return d && !d->eof && d->in_pipe == 0;
}

bool nc__splice_wants_write(const nc_conn *to)
{
    const struct splice_dir *d = in_of(to);
    return d && d->in_pipe > 0;
}

void nc__splice_forward_kept(nc_conn *from)
{
    struct conn_cold *k = from->cold;
    struct splice_dir *d = out_of(from);
    if (!d || k->in_len == 0)
        return;
    if (nc_conn_write(d->to, k->in + k->in_off, k->in_len) < 0) {
        if (conn_state(d->to) == CS_OPEN)
            return;     /* out of memory: kept, tried again with more */
    } else {
        k->spliced += k->in_len;
    }
    nc__conn_input_clear(from);
    nc__conn_cold_release(from);
}

/* ---- starting and ending -------------------------------------------------- */

/* What d's pipe holds goes into its target's queue: a copy, once, when a
 * graceful close ends the splice, so that the close sends it as it sends
 * what was written. Nothing if the target no longer takes writes. */
static void pipe_into_queue(struct splice_dir *d)
{
    char buf[16384];
    while (d->in_pipe > 0 && conn_state(d->to) == CS_OPEN) {
        size_t want = d->in_pipe < sizeof(buf) ? d->in_pipe : sizeof(buf);
        ssize_t n = read(d->pipe[0], buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || nc_conn_write(d->to, buf, (size_t)n) < 0)
            break;
        d->in_pipe -= (size_t)n;
        d->from->cold->spliced += (uint64_t)n;
    }
}

void nc__splice_settle(nc_conn *c)
{
    struct splice_dir *d;
    if ((d = out_of(c)) != NULL) {
        /* Its peer was streaming into the pipe, however empty its socket
         * looks this instant: the close lingers rather than meet its next
         * bytes with a reset. */
        if (!(c->flags & CF_EOF))
            c->flags |= CF_PEER_SENT;
        pipe_into_queue(d);
    }
    if ((d = in_of(c)) != NULL)
        pipe_into_queue(d);
    nc__splice_end(c);
}

void nc__splice_end(nc_conn *c)
{
    nc_loop *loop = conn_loop(c);
    struct splice_dir *d;
    if ((d = out_of(c)) != NULL) {
        c->cold->splice_out = NULL;
        c->flags &= ~CF_SPLICED;
        d->to->cold->splice_in = NULL;
        pipe_put(loop, d);
        nc__conn_rearm(d->to);
        free(d);
    }
    if ((d = in_of(c)) != NULL) {
        c->cold->splice_in = NULL;
        nc_conn *from = d->from;
        from->cold->splice_out = NULL;
        from->flags &= ~CF_SPLICED;
        pipe_put(loop, d);
        /* Back to on_data for what from receives from now on. */
        nc__conn_rearm(from);
        free(d);
    }
}

uint64_t nc_conn_bytes_spliced(const nc_conn *from)
{
    return from && from->cold ? from->cold->spliced : 0;
}

int nc_conn_splice(nc_conn *from, nc_conn *to)
{
    if (!from || !to || from == to || conn_loop(from) != conn_loop(to))
        return -EINVAL;
    if (conn_state(from) != CS_OPEN || conn_state(to) != CS_OPEN ||
        (from->flags & CF_EOF))
        return -ENOTCONN;
    if (to->flags & CF_SHUT_WANTED)
        return -EPIPE;
    if ((from->flags | to->flags) & CF_TLS)
        return -EOPNOTSUPP;
    if (out_of(from) || in_of(to))
        return -EBUSY;
    struct conn_cold *kf = nc__conn_cold(from), *kt = nc__conn_cold(to);
    struct splice_dir *d = kf && kt ? calloc(1, sizeof(*d)) : NULL;
    if (!d) {
        nc__conn_cold_release(from);
        nc__conn_cold_release(to);
        return -ENOMEM;
    }
    /* What from received and on_data left goes first, in order. */
    if (kf->in_len > 0 && !kf->in_busy) {
        int rc = nc_conn_write(to, kf->in + kf->in_off, kf->in_len);
        if (rc < 0) {
            free(d);
            return rc;
        }
        kf->spliced += kf->in_len;
        nc__conn_input_clear(from);
    }
    d->from = from;
    d->to = to;
    d->pipe[0] = d->pipe[1] = -1;
    kf->splice_out = d;
    kt->splice_in = d;
    from->flags |= CF_SPLICED;
    if (from->flags & CF_EOF_PENDING) {
        /* Its end waited behind that input: it follows it now. */
        from->flags &= ~CF_EOF_PENDING;
        d->eof = true;
        pass_end(d);
        return 0;
    }
    nc__conn_rearm(from);
    nc__conn_rearm(to);
    return 0;
}
