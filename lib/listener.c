/*
 * listener.c - listening sockets: one per address an endpoint stands for,
 * non-blocking, accept drained with a budget, and running out of file
 * descriptors survived without a busy loop.
 *
 * On an io_uring loop the kernel accepts (a multishot accept per socket)
 * and hands over each new fd. One that arrives while the listener is at
 * max_conns or paused was accepted already: it is kept aside, as the
 * backlog would have kept it, and opened when accepting resumes.
 */
#include "listener.h"
#include "conn.h"
#include "peercount.h"
#include "tls.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SOCKS 32
#define BACKOFF_MS 100

struct lsock {
    nc_listener *l;
    struct watch w;
    int fd;
    nc_addr addr;              /* as bound, with the kernel's port */
};

struct nc_listener {
    struct handle handle;      /* on the loop's I/O list */
    nc_loop *loop;
    nc_listener_options opt;
    struct conn_profile prof;  /* shared by every accepted connection */
    void *ud;
    struct lsock socks[MAX_SOCKS];
    size_t nsocks;
    nc_listener_stats stats;
    nc_timer backoff;
    int reserve_fd;            /* spent to shed a connection at EMFILE */
    bool stopped;              /* sockets closed: no more accepting */
    bool paused;               /* interest off: limit or back-off */
    bool closed;
    bool nodelay_checked;      /* first TCP connection looked at */
    bool ring;                 /* the kernel accepts (io_uring) */
    int *aside;                /* io_uring: accepted while we could not */
    size_t naside, aside_cap;
    bool aside_queued;         /* admit_aside() is deferred */
    struct defer_node aside_node;
    struct defer_node free_node;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    listener_handoff_fn handoff;   /* the workers' acceptor: accepted
                                      sockets go there, not to l */
    void *handoff_arg;
    bool share_after_bind;     /* nc__listen_first: SO_REUSEPORT only
                                  once bound */
    struct peercount peers;    /* max_conns_per_addr (TCP) */
};

static void admit_aside(struct defer_node *n);

static void set_accepting(nc_listener *l, bool on)
{
    if (l->stopped)
        return;
    if (on && l->naside > 0) {
        /* Those accepted meanwhile come first, from the loop. */
        if (!l->aside_queued) {
            l->aside_queued = true;
            nc__loop_defer(l->loop, &l->aside_node, admit_aside);
        }
        return;
    }
    l->paused = !on;
    unsigned want = l->ring ? EV_ACCEPT : EV_READ;
    for (size_t i = 0; i < l->nsocks; i++)
        nc__watch_update(&l->socks[i].w, on ? want : 0);
}

static bool at_limit(const nc_listener *l)
{
    return l->opt.max_conns && l->stats.active >= l->opt.max_conns;
}

static void pause_accepting(nc_listener *l, bool backoff)
{
    if (!l->paused)
        l->stats.paused++;
    set_accepting(l, false);
    if (backoff && !timer_active(&l->backoff))
        nc__timer_start(&l->backoff, BACKOFF_MS, 0);
}

static void backoff_done(nc_timer *t, void *ud)
{
    (void)t;
    nc_listener *l = ud;
    if (l->paused && !at_limit(l))
        set_accepting(l, true);
}

void nc__listener_conn_gone(nc_listener *l, int fd)
{
    nc__peercount_remove(&l->peers, fd);
    l->stats.active--;
    /* A descriptor or a slot is free again: accept without waiting. */
    if (l->paused && !l->closed && !at_limit(l)) {
        nc__timer_stop(&l->backoff);
        set_accepting(l, true);
    }
}

/* Reset the connection on fd at once (the client learns now, rather than
 * waiting or being answered and dropped), and count it as shed: first, so
 * that a client seeing its reset finds it counted. */
static void shed_fd(nc_listener *l, int fd)
{
    l->stats.shed++;
    counter_add(&l->loop->ctr.shed, 1);
    nc__set_linger_reset(fd);
    close(fd);
}

enum shed { SHED_ONE, SHED_NONE_PENDING, SHED_FAILED };

/* Out of descriptors: accept the pending connection with the reserved one
 * and reset it at once, so the client learns now instead of waiting in the
 * backlog, and the level-triggered listener does not spin. */
static enum shed shed_one(nc_listener *l, int lfd)
{
    if (l->reserve_fd < 0)
        return SHED_FAILED;
    close(l->reserve_fd);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0)
        shed_fd(l, fd);
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (l->reserve_fd < 0)
        return SHED_FAILED;
    if (fd >= 0)
        return SHED_ONE;
    /* The kernel takes a descriptor before it looks at the queue, so an
     * empty queue also reports EMFILE: then there was nothing to shed. */
    return nc_io_classify(NC_OP_ACCEPT, -1, err) == NC_IO_AGAIN
               ? SHED_NONE_PENDING : SHED_FAILED;
}

/* Accepted sockets inherit TCP_NODELAY from the listening socket on
 * Linux; the first one is checked once, and should a kernel not do so,
 * connections set it themselves. */
static void check_nodelay(nc_listener *l, int fd)
{
    l->nodelay_checked = true;
    int on = 0;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && !on)
        l->prof.set_nodelay = true;
}

/* max_conns_per_addr: count the connection on fd from peer (len bytes;
 * NULL: ask the socket). Over the cap, it is shed. */
static enum peer_verdict count_peer(nc_listener *l, int fd,
                                    const struct sockaddr *peer,
                                    socklen_t len)
{
    struct sockaddr_storage ss;
    if (!peer) {
        len = sizeof(ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
            return PEER_IN;     /* reset already: it will close at once */
        peer = (struct sockaddr *)&ss;
    }
    enum peer_verdict v = nc__peercount_add(&l->peers, fd, peer, len);
    if (v == PEER_OVER)
        shed_fd(l, fd);
    return v;
}

/* Wrap an accepted socket and open it (on_open runs inside); peer is its
 * address from accept(), or NULL. 0 also when it was shed at the
 * per-address cap. */
static int accepted(nc_listener *l, int fd, const struct sockaddr *peer,
                    socklen_t peer_len)
{
    if (l->handoff) {
        l->handoff(l->handoff_arg, fd);
        return 0;
    }
    if (l->opt.max_conns_per_addr && l->prof.tcp) {
        enum peer_verdict v = count_peer(l, fd, peer, peer_len);
        if (v != PEER_IN)
            return v == PEER_OVER ? 0 : -ENOMEM;
    }
    if (l->prof.tcp && !l->nodelay_checked && !l->opt.conn.no_delay_off)
        check_nodelay(l, fd);
    nc_conn *c;
    int rc = nc__conn_new(&l->prof, fd, l->ud, &c);
    if (rc < 0) {
        nc__peercount_remove(&l->peers, fd);
        return rc;
    }
    /* Counted first: on_open runs inside and may close it again. */
    l->stats.accepted++;
    l->stats.active++;
    counter_add(&l->loop->ctr.accepted, 1);
    nc__conn_open(c, l->opt.defer_accept_s > 0);
    return 0;
}

/* Out of descriptors with evict_idle: close the longest-idle connection
 * of the loop, so that the pending one can be accepted. */
static bool evict_one(nc_listener *l)
{
    if (!l->opt.evict_idle)
        return false;
    nc_conn *victim = nc__conn_oldest_idle(l->loop);
    if (!victim)
        return false;
    nc__conn_evict(victim);
    l->stats.evicted++;
    counter_add(&l->loop->ctr.evicted, 1);
    return true;
}

/* A connection accepted as fd (from peer, or NULL): open it. Returns
 * whether to go on. */
static bool take(nc_listener *l, int fd, const struct sockaddr *peer,
                 socklen_t peer_len)
{
    if (accepted(l, fd, peer, peer_len) < 0) {
        close(fd);
        l->stats.accept_errors++;
        counter_add(&l->loop->ctr.accept_errors, 1);
        pause_accepting(l, true);
        return false;
    }
    /* on_open may have stopped or closed the listener. */
    return !(l->stopped || l->paused);
}

/* accept() failed with err on s. Returns whether to try again now. */
static bool accept_failed(nc_listener *l, struct lsock *s, int err)
{
    switch (nc_io_classify(NC_OP_ACCEPT, -1, err)) {
    case NC_IO_AGAIN:
        return false;
    case NC_IO_INTR:
    case NC_IO_RESET:      /* ECONNABORTED, EPROTO: that one is gone */
        l->stats.accept_errors++;
        counter_add(&l->loop->ctr.accept_errors, 1);
        return true;
    default:
        break;
    }
    if (err == EMFILE || err == ENFILE) {
        l->stats.fd_exhausted++;
        counter_add(&l->loop->ctr.fd_exhausted, 1);
        if (evict_one(l))
            return true;
        enum shed r = shed_one(l, s->fd);
        if (r == SHED_ONE)
            return true;
        if (r == SHED_NONE_PENDING)
            return false;
    } else {
        l->stats.accept_errors++;   /* ENOBUFS, ENOMEM, ... */
        counter_add(&l->loop->ctr.accept_errors, 1);
    }
    pause_accepting(l, true);
    return false;
}

static void lsock_ready(struct watch *w, unsigned events)
{
    struct lsock *s = container_of(w, struct lsock, w);
    nc_listener *l = s->l;
    (void)events;

    /* The peer's address only for the per-address cap: without it the
     * kernel need not copy it. */
    bool want_peer = l->opt.max_conns_per_addr && l->prof.tcp;
    for (unsigned i = 0; i < l->opt.accept_budget; i++) {
        if (at_limit(l)) {
            pause_accepting(l, false);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(s->fd, want_peer ? (struct sockaddr *)&peer : NULL,
                         want_peer ? &len : NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0 ? !take(l, fd, want_peer ? (struct sockaddr *)&peer
                                             : NULL, len)
                    : !accept_failed(l, s, errno))
            return;
        if (fd >= 0 && l->ring) {
            /* Descriptors again (see lsock_accepted): the kernel accepts
             * from here on. */
            nc__watch_update(w, EV_ACCEPT);
            return;
        }
    }
}

/* Keep fd, accepted while the listener could not take it. */
static void put_aside(nc_listener *l, int fd)
{
    if (l->naside == l->aside_cap) {
        size_t cap = l->aside_cap ? l->aside_cap * 2 : 8;
        int *v = realloc(l->aside, cap * sizeof(*v));
        if (!v) {
            nc__set_linger_reset(fd);   /* tell the client now */
            close(fd);
            l->stats.accept_errors++;
            counter_add(&l->loop->ctr.accept_errors, 1);
            return;
        }
        l->aside = v;
        l->aside_cap = cap;
    }
    l->aside[l->naside++] = fd;
}

static void admit_aside(struct defer_node *n)
{
    nc_listener *l = container_of(n, nc_listener, aside_node);
    l->aside_queued = false;
    while (l->naside > 0 && !l->stopped && !at_limit(l)) {
        /* Out of the list before on_open runs: a stop from inside it
         * closes what is still listed, and this fd is the connection's. */
        int fd = l->aside[0];
        memmove(l->aside, l->aside + 1, --l->naside * sizeof(*l->aside));
        if (accepted(l, fd, NULL, 0) < 0) {
            close(fd);
            l->stats.accept_errors++;
            counter_add(&l->loop->ctr.accept_errors, 1);
        }
    }
    if (l->stopped)
        return;     /* on_open closed it, and the rest with it */
    if (l->naside == 0 && !at_limit(l) && !timer_active(&l->backoff))
        set_accepting(l, true);
}

/* io_uring accepted res (an fd, or a negative errno) on w's socket. */
static void lsock_accepted(struct watch *w, int res)
{
    struct lsock *s = container_of(w, struct lsock, w);
    nc_listener *l = s->l;
    if (res < 0) {
        /* Accepting goes on unless paused; but with no descriptor left and
         * nobody to shed, a multishot accept would fail again at once (the
         * kernel takes the descriptor first): wait for a pending
         * connection instead, as epoll does, and accept it by hand. */
        if (!accept_failed(l, s, -res) && (res == -EMFILE || res == -ENFILE) &&
            !l->paused && !l->stopped)
            nc__watch_update(w, EV_READ);
        return;
    }
    if (l->paused || at_limit(l) || l->naside > 0) {
        put_aside(l, res);
        pause_accepting(l, false);
        return;
    }
    if (take(l, res, NULL, 0) && at_limit(l))
        pause_accepting(l, false);
}

/* ---- opening ------------------------------------------------------------ */

static int add_socket(nc_listener *l, const nc_addr *a, bool v6only)
{
    if (l->nsocks == MAX_SOCKS)
        return -ENOSPC;
    struct lsock *s = &l->socks[l->nsocks];
    int rc = nc__listen_socket(&l->opt, a, v6only, l->share_after_bind,
                               &s->fd);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(s->fd, (struct sockaddr *)&ss, &len) < 0 ||
        nc_addr_from_sockaddr(&s->addr, (struct sockaddr *)&ss, len) < 0)
        s->addr = *a;
    if (a->u.sa.sa_family == AF_UNIX)
        s->addr = *a;   /* getsockname may shorten an abstract name */
    s->l = l;
    if (nc__is_unix_path(a))
        memcpy(l->unix_path, a->u.un.sun_path, sizeof(l->unix_path));
    rc = nc__watch_init(l->loop, &s->w, s->fd, lsock_ready, true);
    if (l->ring)
        s->w.accept_fn = lsock_accepted;
    if (rc == 0)
        rc = nc__watch_update(&s->w, l->ring ? EV_ACCEPT : EV_READ);
    if (rc < 0) {
        nc__watch_stop(&s->w);
        close(s->fd);
        /* nc_listen's failure path unlinks the path */
        return nc__listen_failed(&l->opt, "cannot watch the socket of", a,
                                 rc);
    }
    l->nsocks++;
    return 0;
}

static void set_port(nc_addr *a, uint16_t port)
{
    if (a->u.sa.sa_family == AF_INET)
        a->u.in4.sin_port = htons(port);
    else if (a->u.sa.sa_family == AF_INET6)
        a->u.in6.sin6_port = htons(port);
}

/* Bind every address ep stands for. "*" is one dual-stack [::] socket
 * unless ipv6_only asks for two; an interface's address that cannot be
 * bound (an IPv6 address still in duplicate address detection) is skipped
 * when another one works. */
static int bind_all(nc_listener *l, const nc_endpoint *ep)
{
    nc_addr addrs[MAX_SOCKS];
    size_t n = 0;
    int rc = nc_endpoint_resolve(ep, addrs, MAX_SOCKS, &n);
    if (rc == -ENODEV || rc == -EADDRNOTAVAIL)
        nc__errbuf_set(l->opt.errbuf, l->opt.errbuf_len, rc == -ENODEV
                       ? "interface '%s' is gone" : "interface '%s' has no "
                       "address", ep->iface);
    if (rc < 0)
        return rc;
    if (n > MAX_SOCKS)
        n = MAX_SOCKS;
    if (ep->kind == NC_EP_ANY && !l->opt.ipv6_only) {
        for (size_t i = 0; i < n; i++) {
            rc = add_socket(l, &addrs[i], false);
            if (rc != -EAFNOSUPPORT)
                return rc;    /* [::] covers IPv4 too; or a real error */
        }
        return rc;
    }
    int first_err = 0;
    for (size_t i = 0; i < n; i++) {
        /* Port 0 on several addresses: one kernel-chosen port for all. */
        if (l->nsocks > 0 && ep->port == 0)
            set_port(&addrs[i], nc_addr_port(&l->socks[0].addr));
        rc = add_socket(l, &addrs[i], l->opt.ipv6_only);
        if (rc == -EADDRNOTAVAIL && ep->kind == NC_EP_IFACE) {
            if (!first_err)
                first_err = rc;
            continue;
        }
        if (rc < 0)
            return rc;
    }
    return l->nsocks > 0 ? 0 : (first_err ? first_err : -EADDRNOTAVAIL);
}

static void close_sockets(nc_listener *l)
{
    if (l->stopped)
        return;
    l->stopped = true;
    for (size_t i = 0; i < l->naside; i++)
        close(l->aside[i]);
    l->naside = 0;
    for (size_t i = 0; i < l->nsocks; i++) {
        nc__watch_stop(&l->socks[i].w);
        close(l->socks[i].fd);
        l->socks[i].fd = -1;
    }
    if (l->unix_path[0])
        unlink(l->unix_path);
    l->unix_path[0] = '\0';
}

static void handle_close(struct handle *h)
{
    nc_listener_close(container_of(h, nc_listener, handle));
}

/* The profile l's connections share: its loop, options, callbacks and
 * TLS context (a reference; a client context is refused), and the
 * timeout lists its options need. 0, -EINVAL or -ENOMEM; on failure
 * nothing is held. */
static int profile_init(nc_listener *l, nc_loop *loop,
                        const nc_conn_callbacks *cbs, char *errbuf,
                        size_t errlen)
{
    l->prof.loop = loop;
    l->prof.listener = l;
    l->prof.opt = l->opt.conn;
    if (cbs)
        l->prof.cbs = *cbs;
    if (l->opt.tls && !nc__tls_ctx_is_server(l->opt.tls)) {
        nc__errbuf_set(errbuf, errlen, "opts->tls is a client context: a "
                       "listener needs one from nc_tls_server_new()");
        return -EINVAL;
    }
    if (l->opt.tls) {
        l->prof.tls = l->opt.tls;
        nc__tls_ctx_ref(l->prof.tls);
    }
    int rc = nc__conn_profile_lists(&l->prof);
    if (rc < 0 && l->prof.tls) {
        nc__tls_ctx_unref(l->prof.tls);
        l->prof.tls = NULL;
    }
    return rc;
}

/* nc_listen without the errbuf's final word; first: nc__listen_first. */
static int listen_on(nc_loop *loop, const char *endpoint,
                     const nc_listener_options *opts,
                     const nc_conn_callbacks *cbs, void *ud, bool first,
                     nc_listener **out)
{
    nc_endpoint ep;
    char *errbuf = opts ? opts->errbuf : NULL;
    size_t errlen = opts ? opts->errbuf_len : 0;
    if (!loop || !endpoint || !out) {
        nc__errbuf_set(errbuf, errlen, "nc_listen: a NULL loop, endpoint "
                       "or out");
        return -EINVAL;
    }
    int rc = nc_endpoint_parse(&ep, endpoint, errbuf, errlen);
    if (rc < 0)
        return rc;
    nc_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    if (opts)
        l->opt = *opts;
    if (l->opt.backlog <= 0)
        l->opt.backlog = SOMAXCONN;
    if (l->opt.accept_budget == 0)
        l->opt.accept_budget = 64;
    rc = nc__conn_options_resolve(&l->opt.conn, &l->opt.conn);
    if (rc < 0)
        nc__errbuf_set(errbuf, errlen, "a connection timeout over 2^31-1 "
                       "ms in the listener's options");
    if (rc == 0)
        rc = profile_init(l, loop, cbs, errbuf, errlen);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->ud = ud;
    l->reserve_fd = -1;
    l->ring = loop->ring != NULL;
    nc__peercount_init(&l->peers, l->opt.max_conns_per_addr);
    if (first) {
        l->opt.reuseport = false;
        l->share_after_bind = true;
    }
    nc__timer_init(loop, &l->backoff, backoff_done, l, true);
    rc = bind_all(l, &ep);
    if (rc < 0) {
        close_sockets(l);
        if (l->prof.tls)
            nc__tls_ctx_unref(l->prof.tls);
        free(l);
        return rc;
    }
    /* The caller's buffer is written only during this call. */
    l->opt.errbuf = NULL;
    l->opt.errbuf_len = 0;
    int family = l->socks[0].addr.u.sa.sa_family;
    l->prof.tcp = family == AF_INET || family == AF_INET6;
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    l->handle.close = handle_close;
    nc__loop_handle_add(loop, &l->handle, HANDLE_IO);
    *out = l;
    return 0;
}

static int listen_with(nc_loop *loop, const char *endpoint,
                       const nc_listener_options *opts,
                       const nc_conn_callbacks *cbs, void *ud, bool first,
                       nc_listener **out)
{
    char *errbuf = opts ? opts->errbuf : NULL;
    size_t errlen = opts ? opts->errbuf_len : 0;
    nc__errbuf_set(errbuf, errlen, "%s", "");
    int rc = listen_on(loop, endpoint, opts, cbs, ud, first, out);
    if (rc == 0)   /* an interface address skipped on the way said why */
        nc__errbuf_set(errbuf, errlen, "%s", "");
    else if (errbuf && errlen && !errbuf[0])
        /* A step without words of its own (out of memory). */
        nc__errbuf_set(errbuf, errlen, "cannot listen on %s: %s",
                       endpoint ? endpoint : "(null)",
                       nc_strerror(rc));
    return rc;
}

int nc_listen(nc_loop *loop, const char *endpoint,
              const nc_listener_options *opts, const nc_conn_callbacks *cbs,
              void *ud, nc_listener **out)
{
    return listen_with(loop, endpoint, opts, cbs, ud, false, out);
}

int nc__listen_first(nc_loop *loop, const char *endpoint,
                     const nc_listener_options *opts,
                     const nc_conn_callbacks *cbs, void *ud,
                     nc_listener **out)
{
    return listen_with(loop, endpoint, opts, cbs, ud, true, out);
}

size_t nc_listener_count(const nc_listener *l)
{
    return l ? l->nsocks : 0;
}

int nc_listener_addr(const nc_listener *l, size_t i, nc_addr *out)
{
    if (!l || !out || i >= l->nsocks)
        return -EINVAL;
    *out = l->socks[i].addr;
    return 0;
}

void nc_listener_stats_get(const nc_listener *l, nc_listener_stats *out)
{
    if (l && out)
        *out = l->stats;
}

void nc_listener_stop(nc_listener *l)
{
    if (!l)
        return;
    nc__timer_stop(&l->backoff);
    close_sockets(l);
}

static void listener_free(struct defer_node *n)
{
    nc_listener *l = container_of(n, nc_listener, free_node);
    if (l->prof.tls)
        nc__tls_ctx_unref(l->prof.tls);
    nc__peercount_free(&l->peers);
    free(l->aside);
    free(l);
}

static void shutdown_if_mine(nc_conn *c, void *arg)
{
    if (c->prof->listener == arg)
        nc__conn_shutdown_now(c);
}

void nc_listener_close(nc_listener *l)
{
    if (!l || l->closed)
        return;
    l->closed = true;
    nc_listener_stop(l);
    if (l->stats.active > 0)
        nc__conn_each(l->loop, shutdown_if_mine, l);
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    l->reserve_fd = -1;
    nc__loop_handle_remove(&l->handle);
    /* The accept loop that called on_open may still be on the stack, and
     * the closed connections' on_close (queued before this) still read
     * the profile. */
    nc__loop_defer(l->loop, &l->free_node, listener_free);
}

/* ---- shutdown and the workers' hand-off --------------------------------- */

void nc__listeners_stop(nc_loop *loop)
{
    for (struct handle *h = loop->io_handles.next; h != &loop->io_handles;
         h = h->next)
        if (h->close == handle_close)
            nc_listener_stop(container_of(h, nc_listener, handle));
}

void nc__listener_set_handoff(nc_listener *l, listener_handoff_fn fn,
                              void *arg)
{
    l->handoff = fn;
    l->handoff_arg = arg;
}

int nc__listener_new_adopter(nc_loop *loop, const nc_listener_options *opts,
                             const nc_conn_callbacks *cbs, void *ud, bool tcp,
                             nc_listener **out)
{
    nc_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->loop = loop;
    if (opts)
        l->opt = *opts;
    int rc = nc__conn_options_resolve(&l->opt.conn, &l->opt.conn);
    if (rc == 0)
        rc = profile_init(l, loop, cbs, NULL, 0);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->prof.tcp = tcp;
    l->opt.errbuf = NULL;
    l->opt.errbuf_len = 0;
    l->ud = ud;
    l->reserve_fd = -1;
    nc__peercount_init(&l->peers, l->opt.max_conns_per_addr);
    nc__timer_init(loop, &l->backoff, backoff_done, l, true);
    l->handle.close = handle_close;
    nc__loop_handle_add(loop, &l->handle, HANDLE_IO);
    *out = l;
    return 0;
}

void nc__listener_adopt(nc_listener *l, int fd)
{
    if (l->stopped) {
        nc__set_linger_reset(fd);
        close(fd);
        return;
    }
    if (at_limit(l)) {
        shed_fd(l, fd);
        return;
    }
    if (accepted(l, fd, NULL, 0) < 0) {
        close(fd);
        l->stats.accept_errors++;
        counter_add(&l->loop->ctr.accept_errors, 1);
    }
}
