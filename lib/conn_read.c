/*
 * conn_read.c - a connection's events and input: what the fd table hands
 * a connection, reading under a budget, handing bytes to on_data, keeping
 * what it leaves, and the peer's end of stream. This is the hot path of
 * every request; it lives in one file so that the compiler can inline it
 * from the event to on_data.
 *
 * Reads go into the loop's shared buffer. Only bytes on_data did not
 * consume are copied into the connection's own input buffer, sized to
 * what it holds, grown geometrically up to max_input and freed as soon as
 * it is empty: a connection waiting for the rest of a message holds that
 * message, not a fixed 64 KiB.
 *
 * A short read does not mean the stream ended, nor always that the socket
 * is empty (TCP stops a read at an urgent mark; a Unix socket at a message
 * carrying descriptors). The end of stream is reported only when read()
 * returns 0; after a short read with a hang-up pending, reading goes on
 * until then.
 */
#include "conn.h"
#include "splice.h"
#include "tls.h"

#include <errno.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IN_MIN 256
#define IN_SHRINK 8192   /* above this, a mostly empty buffer shrinks */

void nc__conn_input_clear(nc_conn *c)
{
    struct conn_cold *k = c->cold;
    if (!k || !k->in)
        return;
    k->in_off = k->in_len = 0;
    if (k->in_busy)
        return;     /* on_data is reading it: see call_on_buffer */
    free(k->in);
    k->in = NULL;
    k->in_cap = 0;
}

static inline char *in_data(const struct conn_cold *k)
{
    return k->in + k->in_off;
}

static size_t round_capacity(size_t need, size_t cap)
{
    size_t n = cap ? cap : IN_MIN;
    while (n < need)
        n *= 2;
    return n;
}

/* Move the unconsumed bytes to the front of the buffer. */
static void in_compact(struct conn_cold *k)
{
    if (k->in_off == 0)
        return;
    memmove(k->in, in_data(k), k->in_len);
    k->in_off = 0;
}

/* Append n bytes to c's input buffer, growing it geometrically (the
 * consumed front is reclaimed first, so each byte moves at most once per
 * doubling). 0 or -ENOMEM, nothing changed. */
static int in_append(nc_conn *c, const char *data, size_t n)
{
    struct conn_cold *k = nc__conn_cold(c);
    if (!k)
        return -ENOMEM;
    if (k->in_off + k->in_len + n > k->in_cap) {
        size_t need = k->in_len + n;
        if (need > k->in_cap) {
            size_t cap = round_capacity(need, k->in_cap);
            in_compact(k);
            char *p = realloc(k->in, cap);
            if (!p)
                return -ENOMEM;
            k->in = p;
            k->in_cap = cap;
        } else {
            in_compact(k);
        }
    }
    memcpy(in_data(k) + k->in_len, data, n);
    k->in_len += n;
    return 0;
}

/* Drop used bytes from the front of the input buffer (without moving the
 * rest); free it once empty, shrink it once mostly empty. */
static void in_consume(nc_conn *c, size_t used)
{
    struct conn_cold *k = c->cold;
    if (used >= k->in_len) {
        nc__conn_input_clear(c);
        nc__conn_cold_release(c);
        return;
    }
    k->in_len -= used;
    k->in_off += used;
    if (k->in_cap >= IN_SHRINK && k->in_len <= k->in_cap / 4) {
        size_t cap = round_capacity(k->in_len * 2, 0);
        in_compact(k);
        char *p = realloc(k->in, cap);
        if (p) {
            k->in = p;
            k->in_cap = cap;
        }
    }
}

static size_t call_on_data(nc_conn *c, const char *data, size_t len)
{
    size_t (*on_data)(nc_conn *, const void *, size_t, void *) =
        c->prof->cbs.on_data;
    if (!on_data)
        return len;
    size_t used = on_data(c, data, len, c->ud);
    return used > len ? len : used;
}

/* Hand on_data the first len bytes of c's own input buffer. on_data may
 * close c, which drops the input: the buffer it is reading is freed only
 * once it has returned. Returns what on_data consumed (0 when c is no
 * longer open, its input gone). */
static size_t call_on_buffer(nc_conn *c, size_t len)
{
    struct conn_cold *k = c->cold;
    size_t had = k->in_len;
    k->in_busy = true;
    size_t used = call_on_data(c, in_data(k), len);
    k->in_busy = false;
    if (conn_state(c) == CS_OPEN)
        return used;
    if (used < had)
        c->flags |= CF_PEER_SENT;   /* the close dropped what was left */
    nc__conn_input_clear(c);
    return 0;
}

/* Unconsumed input above max_input: the peer sends what we cannot use. */
static bool over_limit(nc_conn *c)
{
    if (conn_buffered(c) <= c->prof->opt.max_input)
        return false;
    nc__conn_teardown(c, NC_CLOSE_ERROR, -EMSGSIZE, false);
    return true;
}

static void eof_now(nc_conn *c);

/* Hand the buffered input to on_data while the user reads, in slices of
 * at most a read's size: input kept during a pause on an io_uring loop
 * can be larger than one read, and an echo would queue all of it at once.
 * A slice the user takes nothing of is followed by all of it (a message
 * may be longer than a slice); a slice the user takes part of is followed
 * by the next one; only when the user declines part of all of it does it
 * wait for more input, within max_input. Returns false when c is no
 * longer open. */
static bool deliver_buffered(nc_conn *c)
{
    while (conn_delivering(c) && c->cold && c->cold->in_len > 0 &&
           !(c->flags & CF_SPLICED)) {
        struct conn_cold *k = c->cold;
        size_t len = k->in_len < LOOP_READ_BUF ? k->in_len : LOOP_READ_BUF;
        size_t used = call_on_buffer(c, len);
        if (used == 0 && len < k->in_len && conn_delivering(c))
            used = call_on_buffer(c, len = k->in_len);
        if (conn_state(c) != CS_OPEN)
            return false;   /* closed or closing: the input was dropped */
        bool all = len == k->in_len;
        in_consume(c, used);
        if (used < len && all) {
            /* Declined part of everything there is: waits for more. */
            return !over_limit(c);
        }
        /* Otherwise the rest of the buffer follows, in the next slice. */
    }
    return true;
}

/* Hand n received bytes to on_data, buffering what it leaves. Inlined
 * into the read loop: it is the hot path. */
static inline __attribute__((always_inline)) void input(nc_conn *c,
                                                        const char *data,
                                                        size_t n)
{
    struct conn_cold *k = c->cold;
    if (!k || k->in_len == 0) {
        size_t used = call_on_data(c, data, n);
        if (used == n)
            return;
        if (conn_state(c) != CS_OPEN) {
            c->flags |= CF_PEER_SENT;   /* the close dropped what was left */
            return;
        }
        size_t left = n - used;
        if (left > c->prof->opt.max_input) {
            nc__conn_teardown(c, NC_CLOSE_ERROR, -EMSGSIZE, false);
            return;
        }
        if (in_append(c, data + used, left) < 0)
            nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    if (in_append(c, data, n) < 0) {
        nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    if (conn_delivering(c))
        deliver_buffered(c);
    else
        over_limit(c);
}

void nc__conn_input(nc_conn *c, const char *data, size_t n)
{
    input(c, data, n);
}

/* n received bytes of an open connection: to the user (through TLS when
 * it speaks it), as one input scope (CF_IN_INPUT): a graceful close begun
 * by a callback goes on once everything the read brought was handled, so
 * that it knows whether the peer left bytes unconsumed. */
static void hand_over(nc_conn *c, const char *data, size_t n)
{
    c->flags |= CF_IN_INPUT;
    if (c->flags & CF_TLS)
        nc__tls_input(c, data, n);
    else
        input(c, data, n);
    nc__conn_input_done(c);
    if ((c->flags & CF_SPLICED) && conn_buffered(c))
        nc__splice_forward_kept(c);     /* spliced from inside on_data */
}

/* Keep n bytes that arrived while the user is not reading. Returns
 * false when c was closed for lack of memory. */
static bool keep_input(nc_conn *c, const char *data, size_t n)
{
    if (in_append(c, data, n) < 0) {
        nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
        return false;
    }
    return true;
}

void nc__conn_input_plain(nc_conn *c, const char *data, size_t n)
{
    if (conn_delivering(c)) {
        input(c, data, n);
        return;
    }
    /* Not reading now: keep it, bounded like any unconsumed input (on a
     * ring, like the raw input it came from: see nc__conn_received). */
    if (keep_input(c, data, n) && !(c->flags & CF_RING))
        over_limit(c);
}

/* The peer's end of stream, everything before it delivered. */
static void end_now(nc_conn *c, int err)
{
    c->flags = (c->flags | CF_EOF | CF_DRAINED) & ~CF_EOF_PENDING;
    switch (conn_state(c)) {
    case CS_OPEN:
        break;
    case CS_CLOSING:
        /* Still flushing: reading stops, the flush goes on. */
        nc__conn_rearm(c);
        return;
    case CS_LINGER:
        nc__conn_teardown(c, conn_reason(c), c->cold ? c->cold->close_err : 0,
                          false);
        return;
    default:
        return;
    }
    const nc_conn_options *o = &c->prof->opt;
    if (o->keep_half_open || o->half_close) {
        /* The end call: whatever is still unconsumed (maybe nothing), with
         * nc_conn_eof() true. on_data may still write. */
        if (conn_buffered(c))
            call_on_buffer(c, c->cold->in_len);
        else
            call_on_data(c, "", 0);
        if (conn_state(c) != CS_OPEN)
            return;
    }
    if (o->half_close) {
        /* Only the peer's direction ended: ours stays open until
         * nc_conn_shutdown() (then both are done) or a close. */
        if (err) {
            struct conn_cold *k = nc__conn_cold(c);
            if (!k) {
                nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
                return;
            }
            k->close_err = err;
        }
        if (c->flags & CF_SHUT_DONE)
            nc__conn_both_done(c);
        else
            nc__conn_rearm(c);
        return;
    }
    /* Send what is queued, then close. */
    nc__conn_begin_close(c, NC_CLOSE_PEER, err);
}

void nc__conn_input_end(nc_conn *c, int err)
{
    if (conn_state(c) != CS_OPEN ||
        (conn_delivering(c) && !(c->flags & CF_REDELIVER))) {
        end_now(c, err);
        return;
    }
    /* Input that came before the end is not delivered yet (reading is
     * paused, or kept input waits for its redelivery): the end follows
     * it, as it does in the socket. */
    struct conn_cold *k = nc__conn_cold(c);
    if (!k) {
        nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    k->close_err = err;
    c->flags |= CF_EOF_PENDING;
    nc__conn_rearm(c);      /* nothing more to read */
    nc__conn_schedule_redeliver(c);
}

/* Hand buffered input back after a pause; then the end of stream that
 * waited for it, if one did. */
static void redeliver_run(struct defer_node *n)
{
    struct conn_cold *k = container_of(n, struct conn_cold, redeliver);
    nc_conn *c = k->conn;
    c->flags &= ~CF_REDELIVER;
    if (conn_state(c) == CS_CLOSED)
        return;     /* its on_close, queued after us, frees k */
    c->flags |= CF_IN_INPUT;
    bool open = deliver_buffered(c);
    nc__conn_input_done(c);
    if (!open)
        return;
    if ((c->flags & CF_SPLICED) && conn_buffered(c))
        nc__splice_forward_kept(c);
    if ((c->flags & CF_EOF_PENDING) && conn_delivering(c)) {
        /* All of it offered: what is left the user declined, as it
         * would be when epoll reads the end. */
        end_now(c, c->cold->close_err);
    }
    if (conn_state(c) == CS_CLOSED)
        return;
    nc__conn_cold_release(c);
    if (c->flags & CF_RING)
        nc__conn_rearm(c);   /* reading again, if still delivering */
}

void nc__conn_schedule_redeliver(nc_conn *c)
{
    if ((!conn_buffered(c) && !(c->flags & CF_EOF_PENDING)) ||
        (c->flags & CF_REDELIVER) || !conn_delivering(c))
        return;
    if (!nc__conn_cold(c)) {
        nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    c->flags |= CF_REDELIVER;
    nc__loop_defer(conn_loop(c), &c->cold->redeliver, redeliver_run);
}

/* Whether c still wants bytes from its socket after a delivery. */
static bool keeps_reading(const nc_conn *c)
{
    switch (conn_state(c)) {
    case CS_OPEN:
        /* Output waiting for the kernel: reading on would only copy more
         * into the queue. The socket stays readable and is seen again. */
        return conn_delivering(c) && conn_queued(c) == 0 &&
               !(c->flags & CF_SPLICED);
    case CS_CLOSING:
    case CS_LINGER:
        return !(c->flags & CF_EOF);
    default:
        return false;
    }
}

/* Discarding never uses the loop's read buffer: a close from inside
 * on_data (of this connection or another) discards, and on_data may still
 * be reading that buffer. A scratch buffer on the stack takes the bytes
 * (a discard is rare, and MSG_TRUNC with no buffer, which TCP would
 * allow, is an error to valgrind). */
int nc__conn_discard_input(nc_conn *c)
{
    char scratch[16384];
    for (size_t budget = c->prof->opt.read_budget; budget > 0;) {
        ssize_t n = read(c->fd, scratch, sizeof(scratch));
        if (n > 0) {
            /* The peer was still sending: it may send more. */
            c->flags |= CF_PEER_SENT;
            budget = (size_t)n < budget ? budget - (size_t)n : 0;
            continue;
        }
        if (n == 0) {
            c->flags |= CF_EOF | CF_DRAINED;
            return 0;
        }
        int e = errno;
        switch (nc_io_classify(NC_OP_READ, n, e)) {
        case NC_IO_AGAIN:
            c->flags |= CF_DRAINED;
            return 0;
        case NC_IO_INTR:
            continue;
        default:
            return -e;
        }
    }
    return 0;
}

static void conn_read(nc_conn *c, unsigned events)
{
    nc_loop *loop = conn_loop(c);
    char *buf = loop->read_buf;
    size_t budget = c->prof->opt.read_budget;
    bool hangup = events & (EV_RDHUP | EV_HUP | EV_ERR);

    for (;;) {
        ssize_t n = read(c->fd, buf, LOOP_READ_BUF);
        if (n > 0) {
            /* A short read emptied the socket, unless a hang-up says
             * there is an end (or a reset) still to read. Known before
             * on_data runs, so that a close from inside it can tell. */
            bool emptied = (size_t)n < LOOP_READ_BUF && !hangup;
            c->flags = (c->flags & ~CF_DRAINED) | (emptied ? CF_DRAINED : 0);
            counter_add(&loop->ctr.bytes_in, (uint64_t)n);
            switch (conn_state(c)) {
            case CS_OPEN:
                tentry_touch(loop, &c->idle);
                hand_over(c, buf, (size_t)n);
                break;
            case CS_HANDSHAKE:
                nc__tls_input(c, buf, (size_t)n);
                break;
            default:
                c->flags |= CF_PEER_SENT;   /* read only to be discarded */
                break;
            }
            if (emptied || !keeps_reading(c))
                return;
            if ((size_t)n >= budget)
                return;
            budget -= (size_t)n;
            continue;
        }
        c->flags &= ~CF_DRAINED;
        if (n == 0) {
            if ((c->flags & CF_TLS) &&
                (conn_state(c) == CS_OPEN || conn_state(c) == CS_HANDSHAKE))
                nc__tls_input_end(c);
            else
                nc__conn_input_end(c, 0);
            return;
        }
        int e = errno;
        switch (nc_io_classify(NC_OP_READ, n, e)) {
        case NC_IO_AGAIN:
            c->flags |= CF_DRAINED;
            return;
        case NC_IO_INTR:
            continue;
        default:
            nc__conn_fail(c, NC_OP_READ, -e);
            return;
        }
    }
}

void nc__conn_read_now(nc_conn *c)
{
    conn_read(c, 0);
}

/* ---- completions (io_uring) ------------------------------------------------ */

/* The body of conn_read() for bytes the kernel received on its own.
 * Input that arrives while the user is not reading (the receive's cancel
 * goes with the next submission) is kept for later. It is not held to
 * max_input: it is what an epoll loop would have left in the socket
 * buffer, bounded by one iteration's worth. */
void nc__conn_received(nc_conn *c, const char *data, size_t n, bool more)
{
    nc_loop *loop = conn_loop(c);
    c->flags = (c->flags & ~CF_DRAINED) | (more ? 0 : CF_DRAINED);
    counter_add(&loop->ctr.bytes_in, (uint64_t)n);
    switch (conn_state(c)) {
    case CS_OPEN:
        tentry_touch(loop, &c->idle);
        if (c->flags & CF_SPLICED) {
            /* A receive armed before the splice began: its bytes come
             * before the pipe's, through to's queue. */
            if (keep_input(c, data, n))
                nc__splice_forward_kept(c);
        } else if (conn_delivering(c) || (c->flags & CF_TLS)) {
            hand_over(c, data, n);
        } else {
            keep_input(c, data, n);
        }
        return;
    case CS_HANDSHAKE:
        nc__tls_input(c, data, n);
        return;
    case CS_CLOSING:
    case CS_LINGER:
        c->flags |= CF_PEER_SENT;   /* read only to be discarded */
        return;
    default:
        return;
    }
}

void nc__conn_recv_end(nc_conn *c, int res)
{
    c->flags &= ~CF_DRAINED;
    if (res < 0) {
        nc__conn_fail(c, NC_OP_READ, res);
        return;
    }
    eof_now(c);
}

/* The peer's end of stream, to the TLS layer or the connection. */
static void eof_now(nc_conn *c)
{
    if ((c->flags & CF_TLS) &&
        (conn_state(c) == CS_OPEN || conn_state(c) == CS_HANDSHAKE))
        nc__tls_input_end(c);
    else
        nc__conn_input_end(c, 0);
}

/* ---- events ------------------------------------------------------------- */

/* A hang-up or error reported while c does not read. A pending error is
 * a reset or a failure. Without one, both directions are closed (ours by
 * nc_conn_shutdown): what the peer sent before its end may still be in
 * the socket, and is read, with the end, when reading resumes; until then
 * there is nothing left to watch for (CF_HUP), so that a hang-up the
 * kernel keeps reporting cannot spin the loop. */
static void conn_hangup(nc_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        nc__conn_fail(c, NC_OP_READ, -soerr);
        return;
    }
    switch (conn_state(c)) {
    case CS_OPEN:
        c->flags |= CF_HUP;
        nc__conn_rearm(c);
        return;
    case CS_HANDSHAKE:
        nc__conn_teardown(c, NC_CLOSE_TLS, -NC_ETLS_TRUNCATED, false);
        return;
    default:
        nc__conn_teardown(c, conn_reason(c),
                          c->cold ? c->cold->close_err : 0, false);
        return;
    }
}

void nc__conn_polled(nc_conn *c, unsigned events)
{
    switch (conn_state(c)) {
    case CS_CONNECTING:
        nc__conn_connected(c);
        return;
    case CS_CLOSED:
        return;
    default:
        break;
    }
    /* Spliced input: splice(2) reads it, its end and its errors. */
    if ((events & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR)) &&
        (c->flags & CF_SPLICED) && (nc__conn_interest(c) & CF_WANT_READ)) {
        nc__splice_pump_in(c);
        if (conn_state(c) == CS_CLOSED)
            return;
        events &= ~(EV_HUP | EV_ERR);
    }
    /* A receive in the kernel reports the end or the error itself. */
    if ((events & (EV_HUP | EV_ERR)) && !(c->flags & CF_R_ARMED)) {
        conn_hangup(c);
        return;
    }
    if (events & (EV_WRITE | EV_HUP | EV_ERR)) {
        /* Room to send (or a failure the send will report). */
        c->flags &= ~CF_FULL;
        if (conn_queued(c) == 0 && c->cold && c->cold->splice_in)
            nc__splice_pump_out(c);
        if (conn_state(c) != CS_CLOSED)
            nc__conn_rearm(c);
    }
}

void nc__conn_ready(nc_conn *c, unsigned events)
{
    switch (conn_state(c)) {
    case CS_CONNECTING:
        nc__conn_connected(c);
        return;
    case CS_CLOSED:
        return;
    default:
        break;
    }
    if (events & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR)) {
        if ((c->flags & (CF_WANT_READ | CF_SPLICED)) ==
            (CF_WANT_READ | CF_SPLICED))
            nc__splice_pump_in(c);
        else if (c->flags & CF_WANT_READ)
            conn_read(c, events);
        else if (events & (EV_HUP | EV_ERR))
            conn_hangup(c);
        if (conn_state(c) == CS_CLOSED)
            return;
    }
    if (events & EV_WRITE) {
        if (conn_queued(c) > 0)
            nc__conn_flush(c);
        else if (c->cold && c->cold->splice_in)
            nc__splice_pump_out(c);
    }
}
