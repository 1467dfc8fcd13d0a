/*
 * connect.c - outgoing connections: resolve the endpoint, bind a local
 * address if asked, start a non-blocking connect and report its outcome
 * from the loop (on_open, or on_close with NC_CLOSE_CONNECT_FAILED). A
 * host name goes to dial.c (lookup and Happy Eyeballs) instead.
 *
 * Each outgoing connection has a profile of its own, freed with it.
 */
#include "addr.h"
#include "dial.h"
#include "resolve.h"
#include "tls.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nc__conn_connected(nc_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        nc__conn_teardown(c, NC_CLOSE_CONNECT_FAILED, -soerr, false);
        return;
    }
    counter_add(&conn_loop(c)->ctr.connected, 1);
    nc__conn_open(c, false);
}

static int say_failed(const struct connect_why *w, const char *step,
                      const nc_addr *a, int err)
{
    char where[NC_ADDRSTRLEN];
    if (nc_addr_format(a, where, sizeof(where)) < 0)
        where[0] = '\0';
    nc__errbuf_set(w->buf, w->len, "%s %s: %s", step, where,
                   nc_strerror(err));
    return err;
}

/* Parse and resolve an endpoint. On failure the errbuf gets the parser's
 * message, after "WHAT 'TEXT': " when what is not NULL. */
static int resolve_endpoint(const char *text, nc_endpoint *ep, nc_addr *out,
                            size_t max, size_t *n, const struct connect_why *w,
                            const char *what)
{
    char msg[256];
    int rc = nc_endpoint_parse(ep, text, msg, sizeof(msg));
    if (rc == 0) {
        rc = nc_endpoint_resolve(ep, out, max, n);
        if (rc == 0 && *n == 0)
            rc = -EADDRNOTAVAIL;
        if (rc == -ENODEV)
            snprintf(msg, sizeof(msg), "interface '%s' is gone", ep->iface);
        else if (rc == -EADDRNOTAVAIL)
            snprintf(msg, sizeof(msg), "interface '%s' has no address",
                     ep->iface);
        else if (rc < 0)
            snprintf(msg, sizeof(msg), "%s", nc_strerror(rc));
    }
    if (rc < 0 && what)
        nc__errbuf_set(w->buf, w->len, "%s '%s': %s", what, text, msg);
    else if (rc < 0)
        nc__errbuf_set(w->buf, w->len, "%s", msg);
    return rc;
}

/* Pick the address to connect to: the first that the endpoint stands for. */
static int connect_target(const char *endpoint, nc_addr *to,
                          const struct connect_why *w)
{
    nc_endpoint ep;
    size_t n = 0;
    int rc = resolve_endpoint(endpoint, &ep, to, 1, &n, w, NULL);
    if (rc == 0 && ep.kind == NC_EP_ANY) {
        nc__errbuf_set(w->buf, w->len, "'%s' stands for all addresses, "
                       "which cannot be connected to: name one, such as "
                       "127.0.0.1:%u", endpoint, (unsigned)ep.port);
        return -EINVAL;
    }
    return rc;
}

int nc__connect_bind(int fd, int family, const char *spec,
                     const struct connect_why *w)
{
    nc_endpoint ep;
    nc_addr addrs[16];
    size_t n = 0;
    int rc = resolve_endpoint(spec, &ep, addrs, 16, &n, w,
                              "local endpoint (bind)");
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (addrs[i].u.sa.sa_family != family)
            continue;
        if (bind(fd, &addrs[i].u.sa, addrs[i].len) < 0)
            return say_failed(w, "cannot bind local address", &addrs[i],
                              -errno);
        return 0;
    }
    nc__errbuf_set(w->buf, w->len, "local endpoint (bind) '%s' has no %s "
                   "address", spec, family == AF_INET ? "IPv4"
                   : family == AF_INET6 ? "IPv6" : "Unix");
    return -EAFNOSUPPORT;
}

int nc__connect_profile(nc_loop *loop, const nc_connect_options *opts,
                        const nc_conn_callbacks *cbs, int family,
                        struct conn_profile **out,
                        const struct connect_why *w)
{
    struct conn_profile *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    if (cbs)
        p->cbs = *cbs;
    int rc = nc__conn_options_resolve(&p->opt, opts ? &opts->conn : NULL);
    if (rc < 0)
        nc__errbuf_set(w->buf, w->len, "a connection timeout over 2^31-1 "
                       "ms in the options");
    if (rc == 0 && opts && opts->tls) {
        if (nc__tls_ctx_is_server(opts->tls)) {
            nc__errbuf_set(w->buf, w->len, "opts->tls is a server context: "
                           "a client needs one from nc_tls_client_new()");
            rc = -EINVAL;    /* a server context on a client */
        } else {
            p->tls = opts->tls;
            nc__tls_ctx_ref(p->tls);
            if (opts->server_name &&
                !(p->server_name = strdup(opts->server_name)))
                rc = -ENOMEM;
        }
    }
    if (rc == 0)
        rc = nc__conn_profile_lists(p);
    if (rc < 0) {
        nc__conn_profile_free(p);
        return rc;
    }
    p->tcp = family == AF_INET || family == AF_INET6;
    p->set_nodelay = p->tcp && !p->opt.no_delay_off;
    *out = p;
    return 0;
}

/* Start connecting to one concrete address: nc_connect and
 * nc_connect_addr after they found it. */
static int start_connect(nc_loop *loop, const nc_addr *to,
                         const nc_connect_options *opts,
                         const nc_conn_callbacks *cbs, void *ud,
                         nc_conn **out, const struct connect_why *w)
{
    int family = to->u.sa.sa_family;
    struct conn_profile *prof;
    int rc = nc__connect_profile(loop, opts, cbs, family, &prof, w);
    if (rc < 0)
        return rc;
    int fd = nc__socket_nb(family, SOCK_STREAM);
    if (fd < 0) {
        nc__conn_profile_free(prof);
        return say_failed(w, "cannot create a socket to connect to", to, fd);
    }
    /* Keepalive matters from the start: set now, TCP_NODELAY later. */
    if (prof->tcp && (rc = nc__set_keepalive(fd, &prof->opt)) < 0)
        say_failed(w, "cannot set keepalive on the socket to", to, rc);
    if (rc == 0 && opts && opts->bind)
        rc = nc__connect_bind(fd, family, opts->bind, w);
    nc_conn *c = NULL;
    if (rc == 0)
        rc = nc__conn_new(prof, fd, ud, &c);
    if (rc < 0) {
        close(fd);
        nc__conn_profile_free(prof);
        return rc;
    }
    nc__tentry_add(loop, &c->idle, prof->connect_list);
    /* Non-blocking: it returns at once, EINTR cannot happen. */
    int crc = connect(fd, &to->u.sa, to->len);
    int cerr = crc < 0 ? errno : 0;
    nc_io_outcome o = nc_io_classify(NC_OP_CONNECT, crc, cerr);
    if (o == NC_IO_PROGRESS || (o == NC_IO_AGAIN && cerr != EAGAIN)) {
        /* In progress (or done): writability reports the outcome. */
        nc__conn_rearm(c);
    } else {
        /* Refused at once (a Unix socket, a full backlog): still report
         * through on_close, which runs from the loop, as promised. */
        nc__conn_teardown(c, NC_CLOSE_CONNECT_FAILED, -cerr, false);
    }
    if (out)
        *out = c;
    return 0;
}

/* The errbuf's first and last word around a connect: emptied (so it stays
 * empty on success), and a line for a failure that said nothing of its
 * own (out of memory). */
static struct connect_why why_begin(const nc_connect_options *opts)
{
    struct connect_why w = { opts ? opts->errbuf : NULL, opts ? opts->errbuf_len : 0 };
    nc__errbuf_set(w.buf, w.len, "%s", "");
    return w;
}

static int why_end(const struct connect_why *w, int rc, const char *target)
{
    if (rc < 0 && w->buf && w->len && !w->buf[0])
        nc__errbuf_set(w->buf, w->len, "cannot connect to %s: %s", target,
                       nc_strerror(rc));
    return rc;
}

int nc_connect(nc_loop *loop, const char *endpoint,
               const nc_connect_options *opts, const nc_conn_callbacks *cbs,
               void *ud, nc_conn **out)
{
    struct connect_why w = why_begin(opts);
    char host[HOST_NAME_LEN], msg[256];
    uint16_t port;
    nc_addr to;
    int rc;
    if (!loop || !endpoint) {
        nc__errbuf_set(w.buf, w.len, "nc_connect: a NULL loop or endpoint");
        return -EINVAL;
    }
    if (opts && (unsigned)opts->family > NC_FAMILY_IPV4) {
        nc__errbuf_set(w.buf, w.len, "opts->family %d is not an nc_family",
                       (int)opts->family);
        return -EINVAL;
    }
    rc = nc__endpoint_name(endpoint, host, sizeof(host), &port, msg,
                           sizeof(msg));
    if (rc < 0) {
        nc__errbuf_set(w.buf, w.len, "%s", msg);
        return rc;
    }
    /* An interface of that name (a VLAN, "eth0.100") wins. */
    if (rc == 1 && !nc__resolver_is_iface(loop, host)) {
        rc = nc__dial_start(loop, host, port, opts, cbs, ud, out, &w);
        return why_end(&w, rc, endpoint);
    }
    rc = connect_target(endpoint, &to, &w);
    if (rc == 0)
        rc = start_connect(loop, &to, opts, cbs, ud, out, &w);
    return why_end(&w, rc, endpoint);
}

int nc_connect_addr(nc_loop *loop, const nc_addr *addr,
                    const nc_connect_options *opts,
                    const nc_conn_callbacks *cbs, void *ud, nc_conn **out)
{
    struct connect_why w = why_begin(opts);
    char text[NC_ADDRSTRLEN];
    nc_addr to;
    int rc;
    if (!loop || !addr) {
        nc__errbuf_set(w.buf, w.len, "nc_connect_addr: a NULL loop or "
                       "address");
        return -EINVAL;
    }
    /* Copied through the checks nc_addr_from_sockaddr makes: a family it
     * knows, a length that fits it. */
    rc = nc_addr_from_sockaddr(&to, &addr->u.sa, addr->len);
    if (rc == 0 && to.u.sa.sa_family == AF_UNIX &&
        to.len <= offsetof(struct sockaddr_un, sun_path))
        rc = -EINVAL;   /* unnamed: nothing to connect to */
    if (rc < 0) {
        nc__errbuf_set(w.buf, w.len, "not an address to connect to: "
                       "family %d, length %u", (int)addr->u.sa.sa_family,
                       (unsigned)addr->len);
        return rc;
    }
    rc = start_connect(loop, &to, opts, cbs, ud, out, &w);
    if (rc < 0 && nc_addr_format(&to, text, sizeof(text)) < 0)
        snprintf(text, sizeof(text), "the address");
    return why_end(&w, rc, text);
}
