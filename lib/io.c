/*
 * io.c - what the result of a socket call means (nc_io_classify), a
 * socket's TCP state from TCP_INFO, and the socket constructor the other
 * modules use.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <string.h>

/* "Nothing can be done now": EAGAIN and EWOULDBLOCK have the same value on
 * Linux but differ on some other systems, so both are tested (an if-chain
 * rather than two case labels, which would collide where they are equal). */
static bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

/* The peer is gone (or never got as far as being accepted). */
static bool peer_gone(nc_op op, int e)
{
    switch (e) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
    case ETIMEDOUT:
        return true;
    case ENOTCONN:
    case EHOSTUNREACH:
    case ENETUNREACH:
        /* On an established connection these mean it died (an ICMP error
         * or a shutdown); on connect they are the failure itself. */
        return op == NC_OP_READ || op == NC_OP_WRITE;
    case EPROTO:
        /* accept: a pending connection failed a protocol check. */
        return op == NC_OP_ACCEPT;
    default:
        return false;
    }
}

nc_io_outcome nc_io_classify(nc_op op, ssize_t ret, int errnum)
{
    int e;

    if (ret >= 0)
        return op == NC_OP_READ && ret == 0 ? NC_IO_EOF : NC_IO_PROGRESS;

    /* errnum is documented as a positive errno (what errno holds), but the
     * library's own negative errno values are accepted too. */
    e = nc__positive_errno(errnum);
    if (would_block(e))
        return NC_IO_AGAIN;
    if (op == NC_OP_CONNECT && (e == EINPROGRESS || e == EALREADY))
        return NC_IO_AGAIN;
    if (e == EINTR)
        return NC_IO_INTR;
    if (peer_gone(op, e))
        return NC_IO_RESET;
    return NC_IO_ERROR;
}

const char *nc_io_outcome_name(nc_io_outcome o)
{
    switch (o) {
    case NC_IO_PROGRESS:
        return "progress";
    case NC_IO_AGAIN:
        return "would block";
    case NC_IO_INTR:
        return "interrupted";
    case NC_IO_EOF:
        return "end of stream";
    case NC_IO_RESET:
        return "reset";
    case NC_IO_ERROR:
        return "error";
    }
    return "unknown";
}

const char *nc_tcp_state_name(int state)
{
    switch (state) {
    case TCP_ESTABLISHED:
        return "ESTABLISHED";
    case TCP_SYN_SENT:
        return "SYN_SENT";
    case TCP_SYN_RECV:
        return "SYN_RECV";
    case TCP_FIN_WAIT1:
        return "FIN_WAIT1";
    case TCP_FIN_WAIT2:
        return "FIN_WAIT2";
    case TCP_TIME_WAIT:
        return "TIME_WAIT";
    case TCP_CLOSE:
        return "CLOSE";
    case TCP_CLOSE_WAIT:
        return "CLOSE_WAIT";
    case TCP_LAST_ACK:
        return "LAST_ACK";
    case TCP_LISTEN:
        return "LISTEN";
    case TCP_CLOSING:
        return "CLOSING";
    default:
        return "UNKNOWN";
    }
}

static int sockopt_int(int fd, int level, int name, int *value)
{
    socklen_t len = sizeof(*value);

    if (getsockopt(fd, level, name, value, &len) < 0)
        return -errno;
    return 0;
}

/* 0 if fd is an IPv4/IPv6 TCP socket; -EBADF, -ENOTSOCK or -EOPNOTSUPP. */
static int check_tcp_socket(int fd)
{
    int domain, type, protocol, rc;

    /* The first query also tells a closed fd (EBADF) and a non-socket
     * (ENOTSOCK) apart. */
    rc = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &domain);
    if (rc < 0)
        return rc;
    if (domain != AF_INET && domain != AF_INET6)
        return -EOPNOTSUPP;
    rc = sockopt_int(fd, SOL_SOCKET, SO_TYPE, &type);
    if (rc < 0)
        return rc;
    rc = sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &protocol);
    if (rc < 0)
        return rc;
    if (type != SOCK_STREAM || protocol != IPPROTO_TCP)
        return -EOPNOTSUPP;
    return 0;
}

int nc_tcp_info_get(int fd, nc_tcp_info *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int rc;

    if (fd < 0)
        return -EBADF;
    if (!out)
        return -EINVAL;
    rc = check_tcp_socket(fd);
    if (rc < 0)
        return rc;
    /* Older kernels fill a shorter struct: the rest stays zero. */
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return -errno;

    memset(out, 0, sizeof(*out));
    out->state = ti.tcpi_state;
    out->state_name = nc_tcp_state_name(ti.tcpi_state);
    out->rtt_us = ti.tcpi_rtt;
    out->rttvar_us = ti.tcpi_rttvar;
    out->retransmits = ti.tcpi_retransmits;
    out->total_retrans = ti.tcpi_total_retrans;
    out->unacked = ti.tcpi_unacked;
    out->lost = ti.tcpi_lost;
    out->snd_cwnd = ti.tcpi_snd_cwnd;
    out->rcv_space = ti.tcpi_rcv_space;
    return 0;
}

int nc__socket_nb(int family, int type)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    return fd < 0 ? -errno : fd;
}

int nc__set_int_option(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno
                                                                  : 0;
}

int nc__set_keepalive(int fd, const nc_conn_options *o)
{
    if (!o->keepalive_idle_s)
        return 0;
    int rc = nc__set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (rc == 0)
        rc = nc__set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE,
                                (int)o->keepalive_idle_s);
    if (rc == 0 && o->keepalive_interval_s)
        rc = nc__set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL,
                                (int)o->keepalive_interval_s);
    if (rc == 0 && o->keepalive_count)
        rc = nc__set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT,
                                (int)o->keepalive_count);
    return rc;
}

void nc__set_linger_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}
