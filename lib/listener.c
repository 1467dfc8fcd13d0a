/*
 * listener.c - listening sockets: one per address an endpoint stands for,
 * non-blocking, accept drained with a budget, and running out of file
 * descriptors survived without a busy loop.
 */
#include "internal.h"

#include <errno.h>
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
    nc_conn_callbacks cbs;
    void *ud;
    struct lsock socks[MAX_SOCKS];
    size_t nsocks;
    struct conn_link conns;    /* open connections accepted here */
    nc_listener_stats stats;
    nc_timer backoff;
    int reserve_fd;            /* spent to shed a connection at EMFILE */
    bool stopped;              /* sockets closed: no more accepting */
    bool paused;               /* interest off: limit or back-off */
    bool closed;
    struct defer_node free_node;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void set_accepting(nc_listener *l, bool on)
{
    if (l->stopped)
        return;
    l->paused = !on;
    for (size_t i = 0; i < l->nsocks; i++)
        watch_update(&l->socks[i].w, on ? NC_READABLE : 0);
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
    if (backoff && !nc_timer_active(&l->backoff))
        timer_start(&l->backoff, BACKOFF_MS, 0);
}

static void backoff_done(nc_timer *t, void *ud)
{
    (void)t;
    nc_listener *l = ud;
    if (l->paused && !at_limit(l))
        set_accepting(l, true);
}

void listener_conn_gone(nc_listener *l)
{
    l->stats.active--;
    /* A descriptor or a slot is free again: accept without waiting. */
    if (l->paused && !l->closed && !at_limit(l)) {
        timer_stop(&l->backoff);
        set_accepting(l, true);
    }
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
    if (fd >= 0) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        l->stats.shed++;
    }
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

static void lsock_ready(struct watch *w, unsigned events)
{
    struct lsock *s = container_of(w, struct lsock, w);
    nc_listener *l = s->l;
    (void)events;

    for (unsigned i = 0; i < l->opt.accept_budget; i++) {
        if (at_limit(l)) {
            pause_accepting(l, false);
            return;
        }
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            /* Counted first: on_open runs inside and may close it again. */
            l->stats.accepted++;
            l->stats.active++;
            int rc = conn_accepted(l, l->loop, fd, s->addr.u.sa.sa_family,
                                   &l->opt.conn, &l->cbs, l->ud, &l->conns);
            if (rc < 0) {
                l->stats.accepted--;
                l->stats.active--;
                close(fd);
                l->stats.accept_errors++;
                pause_accepting(l, true);
                return;
            }
            /* on_open may have stopped or closed the listener. */
            if (l->stopped || l->paused)
                return;
            continue;
        }
        int err = errno;
        switch (nc_io_classify(NC_OP_ACCEPT, -1, err)) {
        case NC_IO_AGAIN:
            return;
        case NC_IO_INTR:
        case NC_IO_RESET:      /* ECONNABORTED, EPROTO: that one is gone */
            l->stats.accept_errors++;
            continue;
        default:
            break;
        }
        if (err == EMFILE || err == ENFILE) {
            l->stats.fd_exhausted++;
            enum shed r = shed_one(l, s->fd);
            if (r == SHED_ONE)
                continue;
            if (r == SHED_NONE_PENDING)
                return;
        } else {
            l->stats.accept_errors++;   /* ENOBUFS, ENOMEM, ... */
        }
        pause_accepting(l, true);
        return;
    }
}

/* ---- opening ------------------------------------------------------------ */

static int set_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

/* A Unix path left behind by a dead server: nobody accepts on it. */
static bool unix_path_stale(const nc_addr *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool stale = connect(fd, &a->u.sa, a->len) < 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

static int open_socket(const nc_listener_options *o, const nc_addr *a,
                       bool v6only, int *out)
{
    int family = a->u.sa.sa_family;
    int fd = socket_nb(family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (family != AF_UNIX && !o->reuseaddr_off)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && o->reuseport)
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && family == AF_INET6)
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
    if (rc == 0 && bind(fd, &a->u.sa, a->len) < 0) {
        rc = -errno;
        if (rc == -EADDRINUSE && family == AF_UNIX && a->u.un.sun_path[0] &&
            unix_path_stale(a) && unlink(a->u.un.sun_path) == 0)
            rc = bind(fd, &a->u.sa, a->len) < 0 ? -errno : 0;
    }
    if (rc == 0 && listen(fd, o->backlog) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static int add_socket(nc_listener *l, const nc_addr *a, bool v6only)
{
    if (l->nsocks == MAX_SOCKS)
        return -ENOSPC;
    struct lsock *s = &l->socks[l->nsocks];
    int rc = open_socket(&l->opt, a, v6only, &s->fd);
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
    rc = watch_init(l->loop, &s->w, s->fd, lsock_ready, true);
    if (rc == 0)
        rc = watch_update(&s->w, NC_READABLE);
    if (rc < 0) {
        watch_stop(&s->w);
        close(s->fd);
        return rc;
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
    for (size_t i = 0; i < l->nsocks; i++) {
        watch_stop(&l->socks[i].w);
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

int nc_listen(nc_loop *loop, const char *endpoint,
              const nc_listener_options *opts, const nc_conn_callbacks *cbs,
              void *ud, nc_listener **out)
{
    nc_endpoint ep;
    if (!loop || !endpoint || !out)
        return -EINVAL;
    int rc = nc_endpoint_parse(&ep, endpoint, NULL, 0);
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
    conn_options_resolve(&l->opt.conn, &l->opt.conn);
    if (cbs)
        l->cbs = *cbs;
    l->ud = ud;
    l->conns.next = l->conns.prev = &l->conns;
    timer_init(loop, &l->backoff, backoff_done, l);
    rc = bind_all(l, &ep);
    if (rc < 0) {
        close_sockets(l);
        free(l);
        return rc;
    }
    if (ep.kind == NC_EP_UNIX && ep.addr.u.un.sun_path[0])
        memcpy(l->unix_path, ep.addr.u.un.sun_path, sizeof(l->unix_path));
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    l->handle.close = handle_close;
    loop_handle_add(loop, &l->handle, HANDLE_IO);
    *out = l;
    return 0;
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
    timer_stop(&l->backoff);
    close_sockets(l);
}

static void listener_free(void *arg)
{
    free(arg);
}

void nc_listener_close(nc_listener *l)
{
    if (!l || l->closed)
        return;
    l->closed = true;
    nc_listener_stop(l);
    while (l->conns.next != &l->conns)
        conn_shutdown_now(conn_from_link(l->conns.next));
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    l->reserve_fd = -1;
    loop_handle_remove(l->loop, &l->handle);
    /* The accept loop that called on_open may still be on the stack. */
    loop_defer(l->loop, &l->free_node, listener_free, l);
}
