/*
 * conn.c - a TCP (or Unix stream) connection's life: options, interest,
 * reading with a budget, idle and connect timeouts, and a close that
 * reports its reason exactly once. Writes are in conn_write.c, outgoing
 * connects in connect.c.
 *
 * Closing happens in two steps. conn_finish() tears the socket down at
 * once (the fd is closed, so no CLOSE_WAIT socket lingers) and marks the
 * connection closed, so no further callback runs; on_close and the free are
 * deferred to the end of the loop iteration, so a callback may close its
 * own connection and keep using the pointer until it returns.
 */
#include "conn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536

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
    }
    return "unknown";
}

void conn_options_resolve(nc_conn_options *dst, const nc_conn_options *src)
{
    if (src)
        *dst = *src;
    else
        memset(dst, 0, sizeof(*dst));
    if (dst->high_water == 0)
        dst->high_water = 64u << 10;
    if (dst->low_water == 0 || dst->low_water > dst->high_water)
        dst->low_water = dst->high_water / 4;
    if (dst->max_input == 0)
        dst->max_input = 1u << 20;
    if (dst->read_budget == 0)
        dst->read_budget = 256u << 10;
}

/* ---- interest and socket options ---------------------------------------- */

static unsigned conn_interest(const nc_conn *c)
{
    if (c->state == CONN_CONNECTING)
        return NC_WRITABLE;
    unsigned ev = 0;
    if (c->state == CONN_OPEN && !c->eof && !c->read_paused && !c->backpressure)
        ev |= NC_READABLE | NC_HANGUP;
    if (c->out.bytes > 0)
        ev |= NC_WRITABLE;
    return ev;
}

/* Bring the kernel's interest in line with the state; costs a syscall only
 * when it changed. A failure here means the fd is unusable: close. */
void conn_rearm(nc_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    int rc = watch_update(&c->w, conn_interest(c));
    if (rc < 0)
        conn_finish(c, NC_CLOSE_ERROR, rc);
}

static void apply_socket_options(int fd, int family, const nc_conn_options *o)
{
    if (family != AF_INET && family != AF_INET6)
        return;
    int on = 1;
    if (!o->no_delay_off)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (o->keepalive_idle_s) {
        int idle = (int)o->keepalive_idle_s;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        if (o->keepalive_interval_s) {
            int v = (int)o->keepalive_interval_s;
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
        }
        if (o->keepalive_count) {
            int v = (int)o->keepalive_count;
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
        }
    }
}

/* ---- closing ------------------------------------------------------------- */

static void conn_deliver_close(void *arg)
{
    nc_conn *c = arg;
    if (c->cbs.on_close)
        c->cbs.on_close(c, c->reason, c->err, c->ud);
    free(c->in);
    free(c);
}

void conn_teardown(nc_conn *c, nc_close_reason reason, int err, bool reset)
{
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    c->reason = reason;
    c->err = err;
    watch_stop(&c->w);
    timer_stop(&c->timer);
    if (reset) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    c->fd = -1;
    outq_clear(&c->out);
    loop_handle_remove(c->loop, &c->handle);
    if (c->listener) {
        c->link.prev->next = c->link.next;
        c->link.next->prev = c->link.prev;
        listener_conn_gone(c->listener);
        c->listener = NULL;
    }
    /* on_close must not run nested inside another callback of c. */
    loop_defer(c->loop, &c->close_node, conn_deliver_close, c);
}

void conn_finish(nc_conn *c, nc_close_reason reason, int err)
{
    conn_teardown(c, reason, err, false);
}

void conn_shutdown_now(nc_conn *c)
{
    conn_finish(c, NC_CLOSE_SHUTDOWN, 0);
}

static void handle_close(struct handle *h)
{
    conn_shutdown_now(container_of(h, nc_conn, handle));
}

nc_conn *conn_from_link(struct conn_link *link)
{
    return container_of(link, nc_conn, link);
}

/* Close for an I/O failure err (negative errno) seen during op. */
void conn_fail(nc_conn *c, nc_op op, int err)
{
    nc_io_outcome o = nc_io_classify(op, -1, -err);
    conn_finish(c, o == NC_IO_RESET ? NC_CLOSE_RESET : NC_CLOSE_ERROR, err);
}

/* The queue is empty: finish what was waiting for the flush. */
void conn_flushed(nc_conn *c)
{
    if (c->shut_wanted && !c->shut_done) {
        c->shut_done = true;
        shutdown(c->fd, SHUT_WR);
    }
    if (c->state == CONN_CLOSING)
        conn_finish(c, NC_CLOSE_LOCAL, 0);
    else if (c->eof)
        conn_finish(c, NC_CLOSE_PEER, 0);
}

/* ---- reading --------------------------------------------------------------- */

static void conn_eof(nc_conn *c)
{
    if (!c->opt.keep_half_open) {
        conn_finish(c, NC_CLOSE_PEER, 0);
        return;
    }
    c->eof = true;
    if (c->cbs.on_data)
        c->cbs.on_data(c, "", 0, c->ud);
    if (c->state == CONN_CLOSED)
        return;
    if (c->out.bytes == 0)
        conn_flushed(c);
    else
        conn_rearm(c);
}

/* Hand buf[0..n) to on_data; keep what it leaves in c->in. buf is either
 * a stack buffer (c->in was empty) or c->in itself. */
static void conn_deliver(nc_conn *c, char *buf, size_t n)
{
    size_t used = n;
    if (c->cbs.on_data) {
        used = c->cbs.on_data(c, buf, n, c->ud);
        if (used > n)
            used = n;
    }
    if (c->state == CONN_CLOSED)
        return;
    size_t left = n - used;
    if (buf == c->in) {
        memmove(c->in, c->in + used, left);
        c->in_len = left;
        return;
    }
    if (left == 0)
        return;
    if (left > c->opt.max_input) {
        conn_finish(c, NC_CLOSE_ERROR, -EMSGSIZE);
        return;
    }
    if (c->in_cap < left) {
        size_t cap = left < READ_CHUNK ? READ_CHUNK : left;
        char *p = realloc(c->in, cap);
        if (!p) {
            conn_finish(c, NC_CLOSE_ERROR, -ENOMEM);
            return;
        }
        c->in = p;
        c->in_cap = cap;
    }
    memcpy(c->in, buf + used, left);
    c->in_len = left;
}

/* Where the next read goes: the stack buffer when nothing is kept, else
 * the end of c->in, grown up to max_input. Returns the room, 0 when full. */
static size_t read_target(nc_conn *c, char *stack, char **dst)
{
    if (c->in_len == 0) {
        *dst = stack;
        return READ_CHUNK;
    }
    size_t want = c->in_len + READ_CHUNK;
    if (want > c->opt.max_input)
        want = c->opt.max_input;
    if (want > c->in_cap) {
        char *p = realloc(c->in, want);
        if (!p)
            return 0;
        c->in = p;
        c->in_cap = want;
    }
    *dst = c->in + c->in_len;
    return want - c->in_len;
}

static void conn_read(nc_conn *c, unsigned events)
{
    char stack[READ_CHUNK];
    size_t budget = c->opt.read_budget;

    while (budget > 0) {
        char *dst;
        size_t room = read_target(c, stack, &dst);
        if (room == 0) {
            conn_finish(c, NC_CLOSE_ERROR,
                        c->in_len >= c->opt.max_input ? -EMSGSIZE : -ENOMEM);
            return;
        }
        ssize_t n = read(c->fd, dst, room);
        /* Bytes are the hot path; every other outcome is classified. */
        if (n <= 0) {
            switch (nc_io_classify(NC_OP_READ, n, errno)) {
            case NC_IO_PROGRESS:
                break;
            case NC_IO_AGAIN:
                return;
            case NC_IO_INTR:
                continue;
            case NC_IO_EOF:
                conn_eof(c);
                return;
            case NC_IO_RESET:
            case NC_IO_ERROR:
                conn_fail(c, NC_OP_READ, -errno);
                return;
            }
        }
        c->last_active_ns = c->loop->now_ns;
        budget = (size_t)n < budget ? budget - (size_t)n : 0;
        if (dst != stack) {
            c->in_len += (size_t)n;
            conn_deliver(c, c->in, c->in_len);
        } else {
            conn_deliver(c, stack, (size_t)n);
        }
        if (c->state != CONN_OPEN || c->eof || c->read_paused ||
            c->backpressure)
            return;
        if ((size_t)n < room) {
            /* A short read drained the socket. With EPOLLRDHUP the peer's
             * FIN is already here: skip the read that would return 0. */
            if (events & NC_HANGUP)
                conn_eof(c);
            return;
        }
    }
}

/* ---- timers and connecting ------------------------------------------------ */

static void conn_timer(nc_timer *t, void *ud)
{
    (void)t;
    nc_conn *c = ud;
    if (c->state == CONN_CONNECTING) {
        conn_finish(c, NC_CLOSE_CONNECT_FAILED, -ETIMEDOUT);
        return;
    }
    uint64_t idle_ns = (uint64_t)c->opt.idle_timeout_ms * 1000000u;
    uint64_t quiet = c->loop->now_ns - c->last_active_ns;
    if (idle_ns == 0)
        return;
    if (quiet >= idle_ns) {
        conn_finish(c, NC_CLOSE_IDLE, -ETIMEDOUT);
        return;
    }
    /* Activity since the timer was set: sleep for the rest. Resetting the
     * timer on every read would cost a heap operation per read. */
    timer_start(&c->timer, (idle_ns - quiet + 999999u) / 1000000u, 0);
}

void conn_became_open(nc_conn *c)
{
    c->state = CONN_OPEN;
    c->last_active_ns = c->loop->now_ns;
    timer_stop(&c->timer);
    if (c->opt.idle_timeout_ms)
        timer_start(&c->timer, c->opt.idle_timeout_ms, 0);
    conn_rearm(c);
    if (c->state == CONN_OPEN && c->cbs.on_open)
        c->cbs.on_open(c, c->ud);
}

/* A socket error or hang-up reported without readable interest. */
static void conn_hangup(nc_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr)
        conn_fail(c, NC_OP_READ, -soerr);
    else
        conn_finish(c, NC_CLOSE_PEER, 0);
}

static void conn_ready(struct watch *w, unsigned events)
{
    nc_conn *c = container_of(w, nc_conn, w);

    if (c->state == CONN_CONNECTING) {
        conn_connected(c);
        return;
    }
    if (events & (NC_READABLE | NC_HANGUP | NC_ERROR)) {
        if (c->w.events & NC_READABLE)
            conn_read(c, events);
        else if (events & (NC_HANGUP | NC_ERROR))
            conn_hangup(c);
        if (c->state == CONN_CLOSED)
            return;
    }
    if ((events & NC_WRITABLE) && c->out.bytes > 0)
        conn_flush(c);
}

/* ---- creation -------------------------------------------------------------- */

nc_conn *conn_alloc(nc_loop *loop, int fd, int family,
                    const nc_conn_options *opt,
                           const nc_conn_callbacks *cbs, void *ud, int *err)
{
    nc_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->loop = loop;
    c->fd = fd;
    c->ud = ud;
    if (cbs)
        c->cbs = *cbs;
    conn_options_resolve(&c->opt, opt);
    *err = watch_init(loop, &c->w, fd, conn_ready, true);
    if (*err < 0) {
        free(c);
        return NULL;
    }
    timer_init(loop, &c->timer, conn_timer, c);
    c->handle.close = handle_close;
    loop_handle_add(loop, &c->handle, HANDLE_IO);
    apply_socket_options(fd, family, &c->opt);
    return c;
}

int conn_accepted(nc_listener *l, nc_loop *loop, int fd, int family,
                  const nc_conn_options *opt, const nc_conn_callbacks *cbs,
                  void *ud, struct conn_link *list)
{
    int err;
    nc_conn *c = conn_alloc(loop, fd, family, opt, cbs, ud, &err);
    if (!c)
        return err;
    c->listener = l;
    c->link.next = list;
    c->link.prev = list->prev;
    list->prev->next = &c->link;
    list->prev = &c->link;
    conn_became_open(c);
    return 0;
}

/* ---- the rest of the public API --------------------------------------------- */

void nc_conn_close(nc_conn *c)
{
    if (!c || c->state == CONN_CLOSED || c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_CONNECTING || c->out.bytes == 0) {
        conn_finish(c, NC_CLOSE_LOCAL, 0);
        return;
    }
    c->state = CONN_CLOSING;
    conn_rearm(c);
}

void nc_conn_abort(nc_conn *c)
{
    if (c)
        conn_teardown(c, NC_CLOSE_LOCAL, 0, true);
}

int nc_conn_shutdown(nc_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->state != CONN_OPEN)
        return -ENOTCONN;
    c->shut_wanted = true;
    if (c->out.bytes == 0 && !c->shut_done) {
        c->shut_done = true;
        shutdown(c->fd, SHUT_WR);
    }
    return 0;
}

void nc_conn_read_stop(nc_conn *c)
{
    if (!c || c->read_paused)
        return;
    c->read_paused = true;
    conn_rearm(c);
}

void nc_conn_read_start(nc_conn *c)
{
    if (!c || !c->read_paused)
        return;
    c->read_paused = false;
    conn_rearm(c);
}

int nc_conn_set_idle_timeout(nc_conn *c, uint32_t ms)
{
    if (!c)
        return -EINVAL;
    if (c->state == CONN_CLOSED)
        return -ENOTCONN;
    c->opt.idle_timeout_ms = ms;
    if (c->state == CONN_CONNECTING)
        return 0;
    c->last_active_ns = c->loop->now_ns;
    if (ms)
        return timer_start(&c->timer, ms, 0);
    timer_stop(&c->timer);
    return 0;
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
    return c ? c->loop : NULL;
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
