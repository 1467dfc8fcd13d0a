/*
 * conn.c - a connection's life: creation, kernel interest, timeouts, and a
 * close that reports its reason exactly once. Input is in conn_read.c,
 * output in conn_write.c, outgoing connects in connect.c.
 *
 * Closing happens in two steps. nc__conn_teardown() closes the fd at once
 * (no CLOSE_WAIT socket lingers) and marks the connection closed, so no
 * further callback runs; on_close and the free are deferred to the end of
 * the iteration, so a callback may close its own connection and keep
 * using the pointer until it returns.
 *
 * A graceful close (nc_conn_close, or the peer's end of stream) first
 * flushes queued output, bounded by the idle timeout with write progress
 * as activity (or DRAIN_MS without one). Then, if the peer may still be
 * sending, it sends FIN and discards input until the peer's FIN, for at
 * most linger_ms: closing a socket with unread input would send RST, and
 * a reset destroys the answer still in flight.
 */
#include "conn.h"
#include "dial.h"
#include "listener.h"
#include "ring.h"
#include "splice.h"
#include "tls.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DRAIN_MS 30000u
#define LINGER_MS 2000u

const char *nc_close_reason_name(nc_close_reason reason)
{
    switch (reason) {
    case NC_CLOSE_PEER: return "peer closed";
    case NC_CLOSE_RESET: return "reset";
    case NC_CLOSE_IDLE: return "idle timeout";
    case NC_CLOSE_LOCAL: return "closed locally";
    case NC_CLOSE_ERROR: return "I/O error";
    case NC_CLOSE_SHUTDOWN: return "shutting down";
    case NC_CLOSE_CONNECT_FAILED: return "connect failed";
    case NC_CLOSE_DEADLINE: return "deadline passed";
    case NC_CLOSE_TLS: return "TLS failure";
    }
    return "unknown";
}

int nc__conn_options_resolve(nc_conn_options *dst, const nc_conn_options *src)
{
    if (src)
        *dst = *src;
    else
        memset(dst, 0, sizeof(*dst));
    if (dst->idle_timeout_ms > TIMEOUT_MAX_MS ||
        dst->connect_timeout_ms > TIMEOUT_MAX_MS ||
        dst->linger_ms > TIMEOUT_MAX_MS)
        return -EINVAL;
    if (dst->high_water == 0)
        dst->high_water = 64u << 10;
    if (dst->low_water == 0 || dst->low_water > dst->high_water)
        dst->low_water = dst->high_water / 4;
    if (dst->max_input == 0)
        dst->max_input = 1u << 20;
    if (dst->read_budget == 0)
        dst->read_budget = 256u << 10;
    if (dst->linger_ms == 0)
        dst->linger_ms = LINGER_MS;
    return 0;
}

/* ---- timeouts ------------------------------------------------------------ */

static nc_conn *conn_of_entry(struct tentry *e)
{
    return container_of(e, nc_conn, idle);
}

/* Open: nothing received for the idle timeout. Closing: no write progress
 * for that long, the peer is not reading what we flush. */
static void idle_expired(struct tentry *e)
{
    nc__conn_teardown(conn_of_entry(e), NC_CLOSE_IDLE, -ETIMEDOUT, false);
}

static void connect_expired(struct tentry *e)
{
    nc__conn_teardown(conn_of_entry(e), NC_CLOSE_CONNECT_FAILED, -ETIMEDOUT,
                      false);
}

/* Our FIN is out and the peer's did not come: close with the reason the
 * close began with. */
static int close_err(const nc_conn *c)
{
    return c->cold ? c->cold->close_err : 0;
}

static void linger_expired(struct tentry *e)
{
    nc_conn *c = conn_of_entry(e);
    nc__conn_teardown(c, conn_reason(c), close_err(c), false);
}

static void handshake_expired(struct tentry *e)
{
    nc__conn_teardown(conn_of_entry(e), NC_CLOSE_TLS, -ETIMEDOUT, false);
}

static void deadline_expired(struct tentry *e)
{
    struct conn_cold *k = container_of(e, struct conn_cold, deadline);
    nc__conn_teardown(k->conn, NC_CLOSE_DEADLINE, -ETIMEDOUT, false);
}

void nc__conn_profile_free(struct conn_profile *p)
{
    if (p->dial)
        nc__dial_free(p->dial);
    if (p->tls)
        nc__tls_ctx_unref(p->tls);
    free(p->server_name);
    free(p);
}

int nc__conn_profile_lists(struct conn_profile *p)
{
    const nc_conn_options *o = &p->opt;
    int idle = nc__tlist_get(p->loop, idle_expired, o->idle_timeout_ms);
    int drain = nc__tlist_get(p->loop, idle_expired,
                              o->idle_timeout_ms ? o->idle_timeout_ms
                                                 : DRAIN_MS);
    int linger = nc__tlist_get(p->loop, linger_expired, o->linger_ms);
    int conn = nc__tlist_get(p->loop, connect_expired, o->connect_timeout_ms);
    int hs = nc__tlist_get(p->loop, handshake_expired,
                           p->tls ? nc__tls_ctx_handshake_ms(p->tls) : 0);
    if (idle < 0 || drain < 0 || linger < 0 || conn < 0 || hs < 0)
        return idle < 0 ? idle : drain < 0 ? drain : linger < 0 ? linger
             : conn < 0 ? conn : hs;
    p->handshake_list = (uint16_t)hs;
    p->idle_list = (uint16_t)idle;
    p->drain_list = (uint16_t)drain;
    p->linger_list = (uint16_t)linger;
    p->connect_list = (uint16_t)conn;
    return 0;
}

/* Move c's entry to list id, started now. */
static void move_to_list(nc_conn *c, uint16_t id)
{
    nc_loop *loop = conn_loop(c);
    nc__tentry_remove(loop, &c->idle);
    nc__tentry_add(loop, &c->idle, id);
}

/* Every connection of the loop is in exactly one list of one of these
 * kinds until it is closed. */
static const tentry_expire_fn primary_kinds[] = {
    idle_expired, connect_expired, linger_expired, handshake_expired
};

struct each_ctx {
    void (*fn)(nc_conn *c, void *arg);
    void *arg;
};

void nc__conn_each(nc_loop *loop, void (*fn)(nc_conn *c, void *arg),
                   void *arg)
{
    for (size_t i = 0; i < sizeof(primary_kinds) / sizeof(*primary_kinds);
         i++) {
        for (uint16_t id = 1; id < loop->ntlists; id++) {
            struct tlist *l = loop->tlists[id];
            if (l->expire != primary_kinds[i])
                continue;
            /* fn may close the connection (which unlinks it) and nothing
             * else: the next one is taken first. */
            struct tlink *n = l->head.next;
            while (n != &l->head) {
                struct tlink *next = n->next;
                fn(conn_of_entry(container_of(n, struct tentry, link)), arg);
                n = next;
            }
        }
    }
}

nc_conn *nc__conn_oldest_idle(nc_loop *loop)
{
    struct tentry *e = nc__tentry_oldest(loop, idle_expired);
    return e ? conn_of_entry(e) : NULL;
}

/* ---- cold part ------------------------------------------------------------- */

struct conn_cold *nc__conn_cold(nc_conn *c)
{
    if (!c->cold) {
        c->cold = nc__slab_alloc(&conn_loop(c)->cold_slab);
        if (c->cold)
            c->cold->conn = c;
    }
    return c->cold;
}

void nc__conn_cold_release(nc_conn *c)
{
    struct conn_cold *k = c->cold;
    if (!k || k->out.head || k->in || k->deadline.list || k->idle_override ||
        k->tls || k->close_err || k->splice_out || k->splice_in || k->spliced ||
        (c->flags & (CF_REDELIVER | CF_EOF_PENDING)) ||
        conn_state(c) == CS_CLOSED)
        return;
    nc__slab_free(&conn_loop(c)->cold_slab, k);
    c->cold = NULL;
}

/* ---- interest ---------------------------------------------------------------- */

/* What c wants from the kernel: CF_WANT_READ and CF_WANT_WRITE. */
uint64_t nc__conn_interest(const nc_conn *c)
{
    uint64_t want = 0;
    switch (conn_state(c)) {
    case CS_CONNECTING:
        return CF_WANT_WRITE;
    case CS_HANDSHAKE:
        want |= CF_WANT_READ;
        break;
    case CS_OPEN:
        /* On a ring, input kept during a pause is handed back before
         * the receive is armed again, so that what is kept stays what
         * came in one iteration. A spliced connection is read while its
         * pipe has room. */
        if (!(c->flags &
              (CF_PAUSED | CF_BACKPRESSURE | CF_EOF | CF_EOF_PENDING)) &&
            (c->flags & (CF_RING | CF_REDELIVER)) !=
                (CF_RING | CF_REDELIVER) &&
            (!(c->flags & CF_SPLICED) || nc__splice_wants_read(c)))
            want |= CF_WANT_READ;
        break;
    case CS_CLOSING:
    case CS_LINGER:
        /* Input is read and discarded, so that closing finds no unread
         * bytes (which would turn our FIN into a reset). */
        if (!(c->flags & CF_EOF))
            want |= CF_WANT_READ;
        break;
    case CS_CLOSED:
        return 0;
    }
    if (conn_queued(c) > 0 || (c->cold && nc__splice_wants_write(c)))
        want |= CF_WANT_WRITE;
    return want;
}

/* A connection stays registered from its first interest until close()
 * removes it (no EPOLL_CTL_DEL: close does that), so a wish for nothing
 * is a modify to no events: hang-ups and errors are still reported. */
void nc__conn_rearm(nc_conn *c)
{
    if (conn_state(c) == CS_CLOSED || c->fd < 0)
        return;     /* closed, or a dial that has no socket yet */
    if (c->flags & CF_RING) {
        nc__ring_conn_sync(c);
        return;
    }
    uint64_t want = nc__conn_interest(c);
    uint64_t have = c->flags & (CF_WANT_READ | CF_WANT_WRITE);
    nc_loop *loop = conn_loop(c);
    if ((c->flags & (CF_HUP | CF_REGISTERED)) == (CF_HUP | CF_REGISTERED) &&
        !want) {
        /* A hang-up is reported whatever the interest: out of the set
         * until there is something to read. */
        nc__backend_set(loop->backend, c->fd, 0, BACKEND_DEL, 0);
        c->flags &= ~(CF_WANT_READ | CF_WANT_WRITE | CF_REGISTERED);
        return;
    }
    if (c->flags & CF_REGISTERED ? want == have : !want)
        return;
    unsigned events = (want & CF_WANT_READ ? EV_READ | EV_RDHUP : 0) |
                      (want & CF_WANT_WRITE ? EV_WRITE : 0);
    int op = (c->flags & CF_REGISTERED) ? BACKEND_MOD : BACKEND_ADD;
    int rc = nc__backend_set(loop->backend, c->fd,
                             fd_token(c->idle.tag, c->fd), op, events);
    if (rc < 0) {
        nc__conn_teardown(c, NC_CLOSE_ERROR, rc, false);
        return;
    }
    c->flags = (c->flags & ~(CF_WANT_READ | CF_WANT_WRITE)) | want |
               CF_REGISTERED;
}

/* ---- closing ------------------------------------------------------------- */

static void deliver_close(struct defer_node *n)
{
    nc_conn *c = container_of(n, nc_conn, done.close_node);
    const struct conn_profile *prof = c->prof;
    nc_loop *loop = prof->loop;
    if (prof->cbs.on_close)
        prof->cbs.on_close(c, conn_reason(c), c->done.close_err, c->ud);
    if (c->cold) {
        nc__tls_free(c);
        nc__slab_free(&loop->cold_slab, c->cold);
    }
    nc__slab_free(&loop->conn_slab, c);
    if (!prof->listener)
        nc__conn_profile_free((struct conn_profile *)prof);
}

/* nc__conn_teardown; with now, the descriptor is free again before this
 * returns on every backend. */
static void teardown(nc_conn *c, nc_close_reason reason, int err, bool reset,
                     bool now)
{
    if (conn_state(c) == CS_CLOSED)
        return;
    nc_loop *loop = conn_loop(c);
    if (c->cold)
        nc__splice_end(c);
    nc__tentry_remove(loop, &c->idle);
    if (c->cold) {
        nc__tentry_remove(loop, &c->cold->deadline);
        /* On a ring, what was written since the last submission has not
         * been tried yet (epoll would have sent it at once, a TLS alert
         * before the close, or a last word before an abort, say): one try
         * now, then the rest is dropped as epoll drops it. */
        if ((c->flags & (CF_RING | CF_FULL)) == CF_RING &&
            c->cold->sending == 0 && c->cold->out.bytes > 0)
            nc__outq_flush(&c->cold->out, c->fd, loop);
        nc__outq_clear(&c->cold->out, loop);
        c->cold->fresh = 0;
        nc__conn_input_clear(c);
    }
    if (c->prof->dial)
        nc__dial_stop(c->prof->dial, reason, err);
    int fd = c->fd;
    if (fd >= 0) {       /* a dial may not have won a socket yet */
        nc__fd_detach(loop, c->fd);
        if (reset)
            nc__set_linger_reset(c->fd);
        if (c->flags & CF_RING)
            nc__ring_conn_close(c, now);  /* its requests, then the fd */
        else
            close(c->fd);   /* which also takes it out of the epoll set */
        c->fd = -1;
    }
    conn_set_state(c, CS_CLOSED);
    conn_set_reason(c, reason);
    c->done.close_err = err;
    loop->active--;
    if (c->flags & CF_OPENED) {
        counter_add(&loop->ctr.open, (uint64_t)-1);
        counter_add(&loop->ctr.closed[reason], 1);
    } else {
        counter_add(&loop->ctr.connect_failed, 1);
    }
    if (c->prof->listener)
        nc__listener_conn_gone(c->prof->listener, fd);
    /* on_close must not run nested inside another callback of c. */
    nc__loop_defer(loop, &c->done.close_node, deliver_close);
}

void nc__conn_teardown(nc_conn *c, nc_close_reason reason, int err,
                       bool reset)
{
    teardown(c, reason, err, reset, false);
}

void nc__conn_evict(nc_conn *c)
{
    teardown(c, NC_CLOSE_IDLE, -EMFILE, false, true);
}

void nc__conn_shutdown_now(nc_conn *c)
{
    nc__conn_teardown(c, NC_CLOSE_SHUTDOWN, 0, false);
}

void nc__conn_fail(nc_conn *c, nc_op op, int err)
{
    nc_io_outcome o = nc_io_classify(op, -1, -err);
    nc__conn_teardown(c, o == NC_IO_RESET ? NC_CLOSE_RESET : NC_CLOSE_ERROR,
                      err, false);
}

/* Closing, and everything is handed to the kernel. */
static void finish_close(nc_conn *c)
{
    /* Unless the last read found the socket empty (or its end), look:
     * one read, here where it decides between a FIN and a wait. */
    if (!(c->flags & (CF_EOF | CF_DRAINED))) {
        int rc = nc__conn_discard_input(c);
        if (rc < 0) {
            nc__conn_fail(c, NC_OP_READ, rc);
            return;
        }
    }
    /* Nothing unread: close() sends FIN, not RST. On a ring the kernel
     * reads on while the close flushes, so "empty" says little: a peer
     * that sent anything since the close began may well send again, and
     * is waited for as if its input were still there. */
    bool quiet = c->flags & (CF_EOF | CF_DRAINED);
    if ((c->flags & (CF_PEER_SENT | CF_EOF)) == CF_PEER_SENT)
        quiet = false;
    /* A TLS peer that has not ended its stream answers our close_notify
     * with its own: bytes, which a closed socket would meet with a reset
     * that destroys whatever the peer has not read yet. And a graceful
     * stop (nc_loop_shutdown, a listener closed) ends connections in the
     * middle of whatever they were doing: their peers may well be
     * sending. */
    if (!(c->flags & CF_EOF) &&
        ((c->flags & CF_TLS) || conn_reason(c) == NC_CLOSE_SHUTDOWN))
        quiet = false;
    if (quiet) {
        nc__conn_teardown(c, conn_reason(c), close_err(c), false);
        return;
    }
    /* The peer may still be sending: say we are done, and discard what
     * comes until its FIN, for at most linger_ms. */
    if (!(c->flags & CF_SHUT_DONE)) {
        c->flags |= CF_SHUT_DONE;
        shutdown(c->fd, SHUT_WR);
    }
    conn_set_state(c, CS_LINGER);
    move_to_list(c, c->prof->linger_list);
    nc__conn_rearm(c);
}

void nc__conn_both_done(nc_conn *c)
{
    nc__conn_teardown(c, NC_CLOSE_PEER, close_err(c), false);
}

/* nc_conn_shutdown's FIN, once the queue is empty. With half_close and
 * the peer's end already delivered, both directions are then done. */
static void shut_write(nc_conn *c)
{
    c->flags |= CF_SHUT_DONE;
    shutdown(c->fd, SHUT_WR);
    if ((c->flags & CF_EOF) && conn_state(c) == CS_OPEN &&
        c->prof->opt.half_close)
        nc__conn_both_done(c);
}

void nc__conn_flushed(nc_conn *c)
{
    if ((c->flags & CF_SHUT_WANTED) && !(c->flags & CF_SHUT_DONE))
        shut_write(c);
    if (conn_state(c) == CS_CLOSING)
        finish_close(c);
}

void nc__conn_begin_close(nc_conn *c, nc_close_reason reason, int err)
{
    if (c->cold && (c->cold->splice_out || c->cold->splice_in))
        nc__splice_settle(c);
    if (err || c->cold) {
        struct conn_cold *k = nc__conn_cold(c);
        if (!k) {
            nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOMEM, false);
            return;
        }
        k->close_err = err;
    }
    conn_set_reason(c, reason);
    conn_set_state(c, CS_CLOSING);
    /* Input the user left unconsumed: the peer was in the middle of
     * something and may still be sending, so the close lingers rather
     * than meet its next bytes with a reset (nginx's lingering close).
     * Inside on_data the bytes being handed over are in that buffer too:
     * whoever hands them over tells what was left (conn_read.c). */
    if (conn_buffered(c) > 0 && !(c->flags & CF_IN_INPUT))
        c->flags |= CF_PEER_SENT;
    nc__conn_input_clear(c);
    /* TLS says it is done before TCP does. */
    if (c->flags & CF_TLS)
        nc__tls_close_notify(c);
    if (conn_state(c) == CS_CLOSED)
        return;
    if (conn_queued(c) == 0) {
        if (c->flags & CF_IN_INPUT)
            nc__conn_rearm(c);      /* nc__conn_input_done goes on */
        else
            finish_close(c);
        return;
    }
    /* Without an idle timeout the flush is still bounded. */
    if (nc__tlist_timeout(conn_loop(c), c->idle.list) == 0)
        move_to_list(c, c->prof->drain_list);
    nc__conn_rearm(c);
}

/* ---- creation ---------------------------------------------------------------- */

int nc__conn_new(const struct conn_profile *prof, int fd, void *ud,
                 nc_conn **out)
{
    nc_loop *loop = prof->loop;
    nc_conn *c = nc__slab_alloc(&loop->conn_slab);
    if (!c)
        return -ENOMEM;
    int rc = fd < 0 ? 0 : nc__fd_attach(loop, fd, (uintptr_t)c | FD_TAG_CONN,
                                        &c->idle.tag);
    if (rc < 0) {
        nc__slab_free(&loop->conn_slab, c);
        return rc;
    }
    c->prof = prof;
    c->ud = ud;
    c->fd = fd;
    c->flags = CS_CONNECTING | (loop->ring ? CF_RING : 0);
    loop->active++;
    *out = c;
    return 0;
}

/* Open for the user: the state, the idle timeout, the kernel's interest,
 * on_open. */
static void open_for_user(nc_conn *c, bool arm)
{
    uint16_t idle = c->prof->idle_list;
    if (c->cold && c->cold->idle_override) {
        idle = c->cold->idle_override;
        c->cold->idle_override = 0;
        nc__conn_cold_release(c);
    }
    conn_set_state(c, CS_OPEN);
    move_to_list(c, idle);
    if (arm)
        nc__conn_rearm(c);
    if (conn_state(c) == CS_OPEN && c->prof->cbs.on_open)
        c->prof->cbs.on_open(c, c->ud);
}

void nc__conn_open(nc_conn *c, bool input_waiting)
{
    /* On a ring the receive armed at once finds the input anyway. */
    if (c->flags & CF_RING)
        input_waiting = false;
    c->flags |= CF_OPENED;
    counter_add(&conn_loop(c)->ctr.open, 1);
    if (c->prof->tls) {
        /* TLS first: on_open waits for the handshake. */
        conn_set_state(c, CS_HANDSHAKE);
        move_to_list(c, c->prof->handshake_list);
        int rc = nc__tls_start(c, c->prof->tls, c->prof->server_name);
        if (rc < 0) {
            nc__conn_teardown(c, rc == -ENOMEM ? NC_CLOSE_ERROR
                                               : NC_CLOSE_TLS, rc, false);
            return;
        }
        if (!input_waiting)
            nc__conn_rearm(c);
    } else {
        open_for_user(c, !input_waiting);
    }
    if (input_waiting && conn_state(c) != CS_CLOSED) {
        /* Read at once; register with the kernel only if the connection
         * outlives what it brought (a request answered and closed costs
         * no epoll_ctl at all). */
        nc__conn_read_now(c);
        nc__conn_rearm(c);
    }
}

void nc__conn_tls_opened(nc_conn *c)
{
    /* A handshake can complete with a send of its last flight failing (a
     * TLS 1.3 session ticket to a peer already gone): closed, then. */
    if (conn_state(c) == CS_HANDSHAKE)
        open_for_user(c, true);
}

/* ---- the public API ------------------------------------------------------------ */

void nc_conn_close(nc_conn *c)
{
    if (!c)
        return;
    switch (conn_state(c)) {
    case CS_CONNECTING:
    case CS_HANDSHAKE:
        nc__conn_teardown(c, NC_CLOSE_LOCAL, 0, false);
        return;
    case CS_OPEN:
        nc__conn_begin_close(c, NC_CLOSE_LOCAL, 0);
        return;
    default:
        return;
    }
}

void nc_conn_abort(nc_conn *c)
{
    if (c)
        nc__conn_teardown(c, NC_CLOSE_LOCAL, 0, true);
}

bool nc__conn_shut_down(const nc_conn *c)
{
    return (c->flags & CF_SHUT_WANTED) &&
           (conn_state(c) != CS_CLOSED || conn_reason(c) == NC_CLOSE_PEER);
}

int nc_conn_shutdown(nc_conn *c)
{
    if (!c)
        return -EINVAL;
    /* Again: 0, whether the FIN went out (and, the peer done too, the
     * connection closed) inside the first call or waits for the queue. */
    if (nc__conn_shut_down(c))
        return 0;
    if (conn_state(c) != CS_OPEN)
        return -ENOTCONN;
    if (c->flags & CF_TLS) {
        nc__tls_close_notify(c);     /* before FIN, after what is queued */
        if (conn_state(c) == CS_CLOSED)
            return c->done.close_err ? c->done.close_err : -EPIPE;
    }
    c->flags |= CF_SHUT_WANTED;
    if (conn_queued(c) == 0 && !(c->flags & CF_SHUT_DONE))
        shut_write(c);
    return 0;
}

void nc_conn_read_stop(nc_conn *c)
{
    if (!c || (c->flags & CF_PAUSED) || conn_state(c) == CS_CLOSED)
        return;
    /* Bytes may now arrive unseen: the socket is no longer known empty. */
    c->flags = (c->flags | CF_PAUSED) & ~CF_DRAINED;
    nc__conn_rearm(c);
}

void nc_conn_read_start(nc_conn *c)
{
    if (!c || !(c->flags & CF_PAUSED) || conn_state(c) == CS_CLOSED)
        return;
    c->flags &= ~CF_PAUSED;
    nc__conn_rearm(c);
    nc__conn_schedule_redeliver(c);
}

int nc_conn_set_idle_timeout(nc_conn *c, uint32_t ms)
{
    if (!c || ms > TIMEOUT_MAX_MS)
        return -EINVAL;
    enum conn_state s = conn_state(c);
    if (s != CS_OPEN && s != CS_CONNECTING && s != CS_HANDSHAKE)
        return -ENOTCONN;
    int id = nc__tlist_get(conn_loop(c), idle_expired, ms);
    if (id < 0)
        return id;
    if (s == CS_OPEN) {
        move_to_list(c, (uint16_t)id);
        return 0;
    }
    /* Connecting or in the TLS handshake: applies from on_open. */
    struct conn_cold *k = nc__conn_cold(c);
    if (!k)
        return -ENOMEM;
    k->idle_override = (uint16_t)id;
    return 0;
}

int nc_conn_set_deadline(nc_conn *c, uint32_t ms)
{
    if (!c || ms > TIMEOUT_MAX_MS)
        return -EINVAL;
    enum conn_state s = conn_state(c);
    if (s != CS_OPEN && s != CS_CONNECTING && s != CS_HANDSHAKE)
        return -ENOTCONN;
    nc_loop *loop = conn_loop(c);
    if (ms == 0) {
        if (c->cold) {
            nc__tentry_remove(loop, &c->cold->deadline);
            nc__conn_cold_release(c);
        }
        return 0;
    }
    int id = nc__tlist_get(loop, deadline_expired, ms);
    if (id < 0)
        return id;
    struct conn_cold *k = nc__conn_cold(c);
    if (!k)
        return -ENOMEM;
    nc__tentry_remove(loop, &k->deadline);
    nc__tentry_add(loop, &k->deadline, (uint16_t)id);
    return 0;
}

size_t nc_conn_high_water(const nc_conn *c)
{
    return c ? c->prof->opt.high_water : 0;
}

size_t nc_conn_low_water(const nc_conn *c)
{
    return c ? c->prof->opt.low_water : 0;
}

bool nc_conn_eof(const nc_conn *c)
{
    return c && (c->flags & CF_EOF);
}

void nc_conn_set_data(nc_conn *c, void *ud)
{
    if (c)
        c->ud = ud;
}

void *nc_conn_data(const nc_conn *c)
{
    return c ? c->ud : NULL;
}

int nc_conn_fd(const nc_conn *c)
{
    return c ? c->fd : -1;
}

nc_loop *nc_conn_loop(const nc_conn *c)
{
    return c ? conn_loop(c) : NULL;
}

static int sock_addr(const nc_conn *c, nc_addr *out, bool peer)
{
    if (!c || !out)
        return -EINVAL;
    if (c->fd < 0)
        return -ENOTCONN;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc = peer ? getpeername(c->fd, (struct sockaddr *)&ss, &len)
                  : getsockname(c->fd, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return -errno;
    return nc_addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

int nc_conn_peer_addr(const nc_conn *c, nc_addr *out)
{
    return sock_addr(c, out, true);
}

int nc_conn_local_addr(const nc_conn *c, nc_addr *out)
{
    return sock_addr(c, out, false);
}

int nc_conn_tcp_info(const nc_conn *c, nc_tcp_info *out)
{
    if (!c)
        return -EINVAL;
    if (c->fd < 0)
        return -ENOTCONN;
    return nc_tcp_info_get(c->fd, out);
}
