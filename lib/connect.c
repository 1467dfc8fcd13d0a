/*
 * connect.c - outgoing connections: resolve the endpoint, bind a local
 * address if asked, start a non-blocking connect and report its outcome
 * from the loop (on_open, or on_close with NC_CLOSE_CONNECT_FAILED).
 *
 * Each outgoing connection has a profile of its own, freed with it.
 */
#include "conn.h"
#include "tls.h"

#include <errno.h>
#include <netinet/tcp.h>
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

/* Pick the address to connect to: the first that ep stands for. */
static int connect_target(const char *endpoint, nc_addr *to)
{
    nc_endpoint ep;
    int rc = nc_endpoint_parse(&ep, endpoint, NULL, 0);
    if (rc < 0)
        return rc;
    if (ep.kind == NC_EP_ANY)
        return -EINVAL;
    size_t n = 0;
    rc = nc_endpoint_resolve(&ep, to, 1, &n);
    if (rc < 0)
        return rc;
    return n > 0 ? 0 : -EADDRNOTAVAIL;
}

/* Bind fd to the local endpoint spec, choosing an address of family. */
static int bind_local(int fd, int family, const char *spec)
{
    nc_endpoint ep;
    nc_addr addrs[16];
    size_t n = 0;
    int rc = nc_endpoint_parse(&ep, spec, NULL, 0);
    if (rc < 0)
        return rc;
    rc = nc_endpoint_resolve(&ep, addrs, 16, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (addrs[i].u.sa.sa_family != family)
            continue;
        if (bind(fd, &addrs[i].u.sa, addrs[i].len) < 0)
            return -errno;
        return 0;
    }
    return -EAFNOSUPPORT;
}

static int make_profile(nc_loop *loop, const nc_connect_options *opts,
                        const nc_conn_callbacks *cbs, int family,
                        struct conn_profile **out)
{
    struct conn_profile *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    if (cbs)
        p->cbs = *cbs;
    int rc = nc__conn_options_resolve(&p->opt, opts ? &opts->conn : NULL);
    if (rc == 0 && opts && opts->tls) {
        if (nc__tls_ctx_is_server(opts->tls)) {
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

int nc_connect(nc_loop *loop, const char *endpoint,
               const nc_connect_options *opts, const nc_conn_callbacks *cbs,
               void *ud, nc_conn **out)
{
    nc_addr to;
    if (!loop || !endpoint)
        return -EINVAL;
    int rc = connect_target(endpoint, &to);
    if (rc < 0)
        return rc;
    int family = to.u.sa.sa_family;
    struct conn_profile *prof;
    rc = make_profile(loop, opts, cbs, family, &prof);
    if (rc < 0)
        return rc;
    int fd = nc__socket_nb(family, SOCK_STREAM);
    if (fd < 0) {
        nc__conn_profile_free(prof);
        return fd;
    }
    /* Keepalive matters from the start: set now, TCP_NODELAY later. */
    if (prof->tcp)
        rc = nc__set_keepalive(fd, &prof->opt);
    if (rc == 0 && opts && opts->bind)
        rc = bind_local(fd, family, opts->bind);
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
    int crc = connect(fd, &to.u.sa, to.len);
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
