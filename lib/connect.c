/*
 * connect.c - outgoing connections: resolve the endpoint, bind a local
 * address if asked, start a non-blocking connect and report its outcome
 * from the loop (on_open, or on_close with NC_CLOSE_CONNECT_FAILED).
 */
#include "conn.h"

#include <errno.h>
#include <unistd.h>

void conn_connected(nc_conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        conn_finish(c, NC_CLOSE_CONNECT_FAILED, -soerr);
        return;
    }
    conn_became_open(c);
}

/* Pick the address to connect to: the first that ep stands for. */
static int connect_target(const char *endpoint, nc_endpoint *ep, nc_addr *to)
{
    int rc = nc_endpoint_parse(ep, endpoint, NULL, 0);
    if (rc < 0)
        return rc;
    if (ep->kind == NC_EP_ANY)
        return -EINVAL;
    size_t n = 0;
    rc = nc_endpoint_resolve(ep, to, 1, &n);
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

int nc_connect(nc_loop *loop, const char *endpoint,
               const nc_connect_options *opts, const nc_conn_callbacks *cbs,
               void *ud, nc_conn **out)
{
    nc_endpoint ep;
    nc_addr to;
    if (!loop || !endpoint)
        return -EINVAL;
    int rc = connect_target(endpoint, &ep, &to);
    if (rc < 0)
        return rc;
    int family = to.u.sa.sa_family;
    int fd = socket_nb(family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    if (opts && opts->bind) {
        rc = bind_local(fd, family, opts->bind);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    nc_conn *c = conn_alloc(loop, fd, family, opts ? &opts->conn : NULL, cbs,
                            ud, &rc);
    if (!c) {
        close(fd);
        return rc;
    }
    c->state = CONN_CONNECTING;
    /* Non-blocking: it returns at once, EINTR cannot happen. */
    int crc = connect(fd, &to.u.sa, to.len);
    int cerr = crc < 0 ? errno : 0;
    nc_io_outcome o = nc_io_classify(NC_OP_CONNECT, crc, cerr);
    if (o == NC_IO_PROGRESS || (o == NC_IO_AGAIN && cerr != EAGAIN)) {
        /* In progress (or done): writability reports the outcome. */
        if (c->opt.connect_timeout_ms)
            timer_start(&c->timer, c->opt.connect_timeout_ms, 0);
        conn_rearm(c);
    } else {
        /* Refused at once (a Unix socket, a full backlog): still report
         * through on_close, which runs from the loop, as promised. */
        conn_finish(c, NC_CLOSE_CONNECT_FAILED, -cerr);
    }
    if (out)
        *out = c;
    return 0;
}
