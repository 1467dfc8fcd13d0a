/*
 * test_io.c - nc_io_classify's whole table, the classifier on real
 * sockets, TCP states from TCP_INFO on real loopback connections, and
 * nc__socket_nb's flags.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 2000

/* ---- the classifier's table ------------------------------------------ */

#define P NC_IO_PROGRESS
#define A NC_IO_AGAIN
#define I NC_IO_INTR
#define R NC_IO_RESET
#define E NC_IO_ERROR

/* Column order of expect[]. */
static const nc_op ops[] = {NC_OP_READ, NC_OP_WRITE, NC_OP_ACCEPT,
                            NC_OP_CONNECT, NC_OP_BIND};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

struct row {
    int errnum;
    nc_io_outcome expect[NOPS]; /* read, write, accept, connect, bind */
};

static const struct row table[] = {
    {EAGAIN, {A, A, A, A, A}},
    {EWOULDBLOCK, {A, A, A, A, A}},
    {EINPROGRESS, {E, E, E, A, E}},
    {EALREADY, {E, E, E, A, E}},
    {EINTR, {I, I, I, I, I}},
    {ECONNRESET, {R, R, R, R, R}},
    {EPIPE, {R, R, R, R, R}},
    {ECONNABORTED, {R, R, R, R, R}},
    {ETIMEDOUT, {R, R, R, R, R}},
    {ENOTCONN, {R, R, E, E, E}},
    {EPROTO, {E, E, R, E, E}},
    {EHOSTUNREACH, {R, R, E, E, E}},
    {ENETUNREACH, {R, R, E, E, E}},
    /* everything else is a real error */
    {ECONNREFUSED, {E, E, E, E, E}},
    {EADDRINUSE, {E, E, E, E, E}},
    {EADDRNOTAVAIL, {E, E, E, E, E}},
    {EACCES, {E, E, E, E, E}},
    {EBADF, {E, E, E, E, E}},
    {EFAULT, {E, E, E, E, E}},
    {EINVAL, {E, E, E, E, E}},
    {EMFILE, {E, E, E, E, E}},
    {ENFILE, {E, E, E, E, E}},
    {ENOBUFS, {E, E, E, E, E}},
    {ENOMEM, {E, E, E, E, E}},
    {ENOTSOCK, {E, E, E, E, E}},
    {0, {E, E, E, E, E}},
};

static const char *op_name(nc_op op)
{
    static const char *const names[] = {"?", "read", "write", "accept",
                                        "connect", "bind"};
    return (unsigned)op < 6 ? names[op] : "?";
}

static void check(nc_op op, ssize_t ret, int errnum, nc_io_outcome want)
{
    nc_io_outcome got = nc_io_classify(op, ret, errnum);

    if (got != want)
        fail_msg("classify(%s, %zd, %d %s) = %s, want %s", op_name(op), ret,
                 errnum, nc_errname(errnum), nc_io_outcome_name(got),
                 nc_io_outcome_name(want));
}

static void classify_matches_table_for_every_op_and_errno(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(table) / sizeof(table[0]); r++)
        for (size_t o = 0; o < NOPS; o++)
            check(ops[o], -1, table[r].errnum, table[r].expect[o]);
}

static void classify_accepts_negative_errnum(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(table) / sizeof(table[0]); r++)
        for (size_t o = 0; o < NOPS; o++) {
            check(ops[o], -1, -table[r].errnum, table[r].expect[o]);
            /* any negative ret is a failure, not only -1 */
            check(ops[o], -22, table[r].errnum, table[r].expect[o]);
        }
    for (size_t o = 0; o < NOPS; o++)
        check(ops[o], -1, INT_MIN, E);
}

static void classify_eagain_and_ewouldblock_both_would_block(void **state)
{
    (void)state;
    for (size_t o = 0; o < NOPS; o++) {
        check(ops[o], -1, EAGAIN, A);
        check(ops[o], -1, EWOULDBLOCK, A);
        check(ops[o], -1, -EAGAIN, A);
        check(ops[o], -1, -EWOULDBLOCK, A);
    }
}

static void classify_success_is_progress_and_read_zero_is_eof(void **state)
{
    (void)state;
    for (size_t o = 0; o < NOPS; o++) {
        nc_op op = ops[o];
        /* errnum is ignored on success, whatever errno was left over */
        check(op, 0, ECONNRESET, op == NC_OP_READ ? NC_IO_EOF : P);
        check(op, 0, 0, op == NC_OP_READ ? NC_IO_EOF : P);
        check(op, 1, EAGAIN, P);
        check(op, 4096, 0, P);
        check(op, SSIZE_MAX, EINTR, P);
    }
}

static void outcome_names_match_header(void **state)
{
    (void)state;
    assert_string_equal(nc_io_outcome_name(NC_IO_PROGRESS), "progress");
    assert_string_equal(nc_io_outcome_name(NC_IO_AGAIN), "would block");
    assert_string_equal(nc_io_outcome_name(NC_IO_INTR), "interrupted");
    assert_string_equal(nc_io_outcome_name(NC_IO_EOF), "end of stream");
    assert_string_equal(nc_io_outcome_name(NC_IO_RESET), "reset");
    assert_string_equal(nc_io_outcome_name(NC_IO_ERROR), "error");
    assert_non_null(nc_io_outcome_name((nc_io_outcome)99));
}

/* ---- helpers for real sockets ---------------------------------------- */

static void nb_socketpair(int sv[2])
{
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
}

static struct sockaddr_in loopback4(uint16_t port)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A non-blocking TCP socket bound to 127.0.0.1 on a kernel-chosen port;
 * listening when listening is true. */
static int bound4(bool listening, struct sockaddr_in *addr)
{
    int fd = nc__socket_nb(AF_INET, SOCK_STREAM);

    assert_true(fd >= 0);
    *addr = loopback4(0);
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
    if (listening)
        assert_int_equal(listen(fd, 8), 0);
    *addr = loopback4(local_port(fd));
    return fd;
}

static void wait_for(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    int n;

    do
        n = poll(&p, 1, WAIT_MS);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        fail_msg("fd %d: events 0x%x did not arrive within %d ms", fd,
                 (unsigned)events, WAIT_MS);
}

/* A connected loopback pair: *client (blocking connect) and *server. */
static void tcp_pair(int family, int *listener, int *client, int *server)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int l, c, s;

    l = nc__socket_nb(family, SOCK_STREAM);
    assert_true(l >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
        len = sizeof(*a6);
    } else {
        *(struct sockaddr_in *)&ss = loopback4(0);
        len = sizeof(struct sockaddr_in);
    }
    assert_int_equal(bind(l, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(listen(l, 8), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&ss, &len), 0);

    c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
    wait_for(l, POLLIN);
    s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    *listener = l;
    *client = c;
    *server = s;
}

static int tcp_state(int fd)
{
    nc_tcp_info ti;

    assert_int_equal(nc_tcp_info_get(fd, &ti), 0);
    assert_string_equal(ti.state_name, nc_tcp_state_name(ti.state));
    return ti.state;
}

#define assert_state(fd, want)                                              \
    do {                                                                    \
        int got_ = tcp_state(fd);                                           \
        if (got_ != (want))                                                 \
            fail_msg("fd %d is %s, want %s", (fd), nc_tcp_state_name(got_), \
                     nc_tcp_state_name(want));                              \
    } while (0)

/* ---- the classifier on real sockets ---------------------------------- */

static void read_on_empty_socket_would_block(void **state)
{
    int sv[2];
    char b[8];
    ssize_t n;

    (void)state;
    nb_socketpair(sv);
    n = read(sv[0], b, sizeof(b));
    assert_int_equal(nc_io_classify(NC_OP_READ, n, errno), NC_IO_AGAIN);
    close(sv[0]);
    close(sv[1]);
}

static void read_after_peer_close_is_eof(void **state)
{
    int sv[2];
    char b[8];
    ssize_t n;

    (void)state;
    nb_socketpair(sv);
    close(sv[1]);
    n = read(sv[0], b, sizeof(b));
    assert_int_equal(n, 0);
    assert_int_equal(nc_io_classify(NC_OP_READ, n, errno), NC_IO_EOF);
    close(sv[0]);
}

static void write_after_peer_close_is_reset(void **state)
{
    int sv[2];
    ssize_t n;

    (void)state;
    nb_socketpair(sv);
    close(sv[1]);
    n = send(sv[0], "x", 1, MSG_NOSIGNAL);
    assert_int_equal(n, -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(nc_io_classify(NC_OP_WRITE, n, errno), NC_IO_RESET);
    close(sv[0]);
}

static void accept_on_empty_listener_would_block(void **state)
{
    struct sockaddr_in addr;
    int l = bound4(true, &addr);
    int fd;

    (void)state;
    fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_int_equal(fd, -1);
    assert_int_equal(nc_io_classify(NC_OP_ACCEPT, fd, errno), NC_IO_AGAIN);
    close(l);
}

static void connect_to_listener_is_progress_or_in_progress(void **state)
{
    struct sockaddr_in addr;
    int l = bound4(true, &addr);
    int c = nc__socket_nb(AF_INET, SOCK_STREAM);
    int rc, err = 0;
    socklen_t len = sizeof(err);
    nc_io_outcome o;

    (void)state;
    assert_true(c >= 0);
    rc = connect(c, (struct sockaddr *)&addr, sizeof(addr));
    o = nc_io_classify(NC_OP_CONNECT, rc, errno);
    if (o != NC_IO_PROGRESS && o != NC_IO_AGAIN)
        fail_msg("connect classified %s (%s)", nc_io_outcome_name(o),
                 nc_errname(errno));
    wait_for(c, POLLOUT);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_int_equal(err, 0);
    close(c);
    close(l);
}

static void connect_without_listener_is_refused_error(void **state)
{
    struct sockaddr_in addr;
    /* A bound socket that does not listen: the port is ours and answers
     * every SYN with a reset. */
    int b = bound4(false, &addr);
    int c = nc__socket_nb(AF_INET, SOCK_STREAM);
    int rc, err;

    (void)state;
    assert_true(c >= 0);
    rc = connect(c, (struct sockaddr *)&addr, sizeof(addr));
    err = errno;
    if (rc < 0 && nc_io_classify(NC_OP_CONNECT, rc, err) == NC_IO_AGAIN) {
        socklen_t len = sizeof(err);
        wait_for(c, POLLOUT);
        assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(err, ECONNREFUSED);
    assert_int_equal(nc_io_classify(NC_OP_CONNECT, -1, err), NC_IO_ERROR);
    close(c);
    close(b);
}

/* ---- TCP states ---------------------------------------------------------- */

static void tcp_state_names_cover_every_kernel_state(void **state)
{
    (void)state;
    assert_string_equal(nc_tcp_state_name(TCP_ESTABLISHED), "ESTABLISHED");
    assert_string_equal(nc_tcp_state_name(TCP_SYN_SENT), "SYN_SENT");
    assert_string_equal(nc_tcp_state_name(TCP_SYN_RECV), "SYN_RECV");
    assert_string_equal(nc_tcp_state_name(TCP_FIN_WAIT1), "FIN_WAIT1");
    assert_string_equal(nc_tcp_state_name(TCP_FIN_WAIT2), "FIN_WAIT2");
    assert_string_equal(nc_tcp_state_name(TCP_TIME_WAIT), "TIME_WAIT");
    assert_string_equal(nc_tcp_state_name(TCP_CLOSE), "CLOSE");
    assert_string_equal(nc_tcp_state_name(TCP_CLOSE_WAIT), "CLOSE_WAIT");
    assert_string_equal(nc_tcp_state_name(TCP_LAST_ACK), "LAST_ACK");
    assert_string_equal(nc_tcp_state_name(TCP_LISTEN), "LISTEN");
    assert_string_equal(nc_tcp_state_name(TCP_CLOSING), "CLOSING");
    /* the kernel's numbers, as TCP_INFO reports them */
    assert_int_equal(TCP_ESTABLISHED, 1);
    assert_int_equal(TCP_CLOSING, 11);
    assert_string_equal(nc_tcp_state_name(0), "UNKNOWN");
    assert_string_equal(nc_tcp_state_name(12), "UNKNOWN");
    assert_string_equal(nc_tcp_state_name(-1), "UNKNOWN");
    assert_string_equal(nc_tcp_state_name(INT_MAX), "UNKNOWN");
}

static void tcp_info_listener_is_listen(void **state)
{
    struct sockaddr_in addr;
    int l = bound4(true, &addr);
    nc_tcp_info ti;

    (void)state;
    assert_int_equal(nc_tcp_info_get(l, &ti), 0);
    assert_int_equal(ti.state, TCP_LISTEN);
    assert_string_equal(ti.state_name, "LISTEN");
    close(l);
}

static void tcp_info_established_on_both_ends(void **state)
{
    int l, c, s;
    nc_tcp_info ti;

    (void)state;
    tcp_pair(AF_INET, &l, &c, &s);
    assert_int_equal(nc_tcp_info_get(c, &ti), 0);
    assert_int_equal(ti.state, TCP_ESTABLISHED);
    assert_string_equal(ti.state_name, "ESTABLISHED");
    assert_true(ti.snd_cwnd > 0);
    assert_true(ti.rcv_space > 0);
    assert_state(s, TCP_ESTABLISHED);
    close(c);
    close(s);
    close(l);
}

static void tcp_info_works_on_ipv6_loopback(void **state)
{
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a6;
    int l, c, s;

    (void)state;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    if (probe < 0 || bind(probe, (struct sockaddr *)&a6, sizeof(a6)) < 0) {
        if (probe >= 0)
            close(probe);
        printf("skipping: IPv6 loopback (::1) is not available here\n");
        skip();
    }
    close(probe);
    tcp_pair(AF_INET6, &l, &c, &s);
    assert_state(c, TCP_ESTABLISHED);
    assert_state(s, TCP_ESTABLISHED);
    close(c);
    close(s);
    close(l);
}

/* True if /proc/net/tcp lists the connection from local port lport to
 * remote port rport in state st (hex, as the kernel writes it). */
static bool proc_tcp_has(uint16_t lport, uint16_t rport, unsigned st)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    bool found = false;

    assert_non_null(f);
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned la, lp, ra, rp, s;
        if (sscanf(line, " %*u: %8X:%4X %8X:%4X %2X", &la, &lp, &ra, &rp,
                   &s) == 5)
            found = lp == lport && rp == rport && s == st;
    }
    fclose(f);
    return found;
}

/* The client half-closes (shutdown(SHUT_WR) rather than close(), so its
 * fd can still be asked), then the server closes. */
static void tcp_info_follows_close_wait_fin_wait2_time_wait(void **state)
{
    int l, c, s;
    uint16_t cport, sport;
    char b[4];

    (void)state;
    tcp_pair(AF_INET, &l, &c, &s);
    cport = local_port(c);
    sport = local_port(s);

    assert_int_equal(shutdown(c, SHUT_WR), 0);
    wait_for(s, POLLRDHUP);
    assert_state(s, TCP_CLOSE_WAIT);

    /* The server may delay its ACK of the FIN (the client sits in
     * FIN_WAIT1 meanwhile); a data segment carries the ACK at once, and
     * when the client sees it the ACK has been processed. */
    assert_int_equal(send(s, "x", 1, MSG_NOSIGNAL), 1);
    wait_for(c, POLLIN);
    assert_state(c, TCP_FIN_WAIT2);
    assert_int_equal(read(c, b, sizeof(b)), 1);

    close(s);
    wait_for(c, POLLRDHUP);
    assert_int_equal(read(c, b, sizeof(b)), 0);
    /* The kernel moves the connection into a TIME_WAIT mini-socket and
     * marks the one behind the fd CLOSE: TCP_INFO says CLOSE, the socket
     * table says TIME_WAIT (what netstat and ss show). */
    assert_state(c, TCP_CLOSE);
    assert_true(proc_tcp_has(cport, sport, TCP_TIME_WAIT));
    close(c);
    close(l);
}

static void tcp_info_rejects_non_tcp_sockets_with_eopnotsupp(void **state)
{
    int sv[2];
    int udp;
    nc_tcp_info ti;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(nc_tcp_info_get(sv[0], &ti), -EOPNOTSUPP);
    close(sv[0]);
    close(sv[1]);

    udp = nc__socket_nb(AF_INET, SOCK_DGRAM);
    assert_true(udp >= 0);
    assert_int_equal(nc_tcp_info_get(udp, &ti), -EOPNOTSUPP);
    close(udp);
}

static void tcp_info_rejects_closed_fd_with_ebadf(void **state)
{
    int fd = nc__socket_nb(AF_INET, SOCK_STREAM);
    nc_tcp_info ti;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(nc_tcp_info_get(fd, &ti), -EBADF);
    assert_int_equal(nc_tcp_info_get(-1, &ti), -EBADF);
}

static void tcp_info_rejects_pipe_with_enotsock(void **state)
{
    int p[2];
    nc_tcp_info ti;

    (void)state;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(nc_tcp_info_get(p[0], &ti), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
}

static void tcp_info_rejects_null_out_with_einval(void **state)
{
    struct sockaddr_in addr;
    int l = bound4(true, &addr);

    (void)state;
    assert_int_equal(nc_tcp_info_get(l, NULL), -EINVAL);
    close(l);
}

/* ---- socket_nb ------------------------------------------------------------ */

static void socket_nb_is_nonblocking_and_close_on_exec(void **state)
{
    int fd = nc__socket_nb(AF_INET, SOCK_STREAM);
    int fl, fdfl;

    (void)state;
    assert_true(fd >= 0);
    fl = fcntl(fd, F_GETFL);
    fdfl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0 && (fl & O_NONBLOCK));
    assert_true(fdfl >= 0 && (fdfl & FD_CLOEXEC));
    close(fd);

    fd = nc__socket_nb(AF_UNIX, SOCK_STREAM);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
}

static void socket_nb_returns_negative_errno(void **state)
{
    (void)state;
    assert_int_equal(nc__socket_nb(12345, SOCK_STREAM), -EAFNOSUPPORT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_matches_table_for_every_op_and_errno),
        cmocka_unit_test(classify_accepts_negative_errnum),
        cmocka_unit_test(classify_eagain_and_ewouldblock_both_would_block),
        cmocka_unit_test(classify_success_is_progress_and_read_zero_is_eof),
        cmocka_unit_test(outcome_names_match_header),
        cmocka_unit_test(read_on_empty_socket_would_block),
        cmocka_unit_test(read_after_peer_close_is_eof),
        cmocka_unit_test(write_after_peer_close_is_reset),
        cmocka_unit_test(accept_on_empty_listener_would_block),
        cmocka_unit_test(connect_to_listener_is_progress_or_in_progress),
        cmocka_unit_test(connect_without_listener_is_refused_error),
        cmocka_unit_test(tcp_state_names_cover_every_kernel_state),
        cmocka_unit_test(tcp_info_listener_is_listen),
        cmocka_unit_test(tcp_info_established_on_both_ends),
        cmocka_unit_test(tcp_info_works_on_ipv6_loopback),
        cmocka_unit_test(tcp_info_follows_close_wait_fin_wait2_time_wait),
        cmocka_unit_test(tcp_info_rejects_non_tcp_sockets_with_eopnotsupp),
        cmocka_unit_test(tcp_info_rejects_closed_fd_with_ebadf),
        cmocka_unit_test(tcp_info_rejects_pipe_with_enotsock),
        cmocka_unit_test(tcp_info_rejects_null_out_with_einval),
        cmocka_unit_test(socket_nb_is_nonblocking_and_close_on_exec),
        cmocka_unit_test(socket_nb_returns_negative_errno),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
