/*
 * test_examples.c - the example programs driven as a user drives them:
 * start the binary from build/bin, wait for its output, talk to it over
 * real loopback sockets, signal it, check what it printed and its exit
 * status. Every wait has a deadline.
 *
 * The programs are found in $NC_BIN_DIR, else in ../bin next to this
 * test binary's directory (build/tests -> build/bin).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "netcore.h"
#include "proc.h"

/* A TCP socket bound to 127.0.0.1 with a kernel-chosen port (*port). */
static int loopback_socket(unsigned *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Whether another host could reach a server bound to all addresses (the
 * loopback warning must appear exactly when it cannot), and the primary
 * interface's first IPv4 address into addr ("" if none). */
static bool host_is_reachable(char *addr, size_t len)
{
    nc_iface_list *list = NULL;
    const nc_iface *ifc;
    nc_addr any[2];
    bool reachable;
    size_t i;

    memset(any, 0, sizeof any);
    any[0].u.in4.sin_family = AF_INET;
    any[0].len = sizeof any[0].u.in4;
    any[1].u.in6.sin6_family = AF_INET6;
    any[1].len = sizeof any[1].u.in6;
    assert_int_equal(nc_iface_list_get(&list), 0);
    reachable = nc_iface_reachable(list, any, 2);
    ifc = nc_iface_primary(list);
    addr[0] = '\0';
    for (i = 0; ifc != NULL && addr[0] == '\0' && i < ifc->naddrs; i++)
        if (ifc->addrs[i].addr.u.sa.sa_family == AF_INET)
            inet_ntop(AF_INET, &ifc->addrs[i].addr.u.in4.sin_addr, addr,
                      (socklen_t)len);
    nc_iface_list_free(list);
    return reachable;
}
/* The name of the backend a loop of this process gets. */
static const char *backend_here(void)
{
    nc_loop *loop;
    nc_backend b;

    assert_int_equal(nc_loop_new(&loop), 0);
    b = nc_loop_backend(loop);
    nc_loop_free(loop);
    return nc_backend_name(b);
}

/* ---- echo-server ----------------------------------------------------------- */

static void loopback_bind_prints_line_and_warning(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);
    char addr[INET_ADDRSTRLEN], want[64];
    const char *line;

    (void)state;
    assert_true(listen_port(p) > 0);
    line = proc_wait_line(p, OUT, "listening on 127.0.0.1:");
    assert_non_null(line);
    /* Where, and how: the backend this process's loops get (NC_BACKEND
     * reaches the program too). */
    snprintf(want, sizeof want, " (lo; %s)\n", backend_here());
    assert_non_null(strstr(line, want));
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[ERR], "echo-server: warning: "));
    assert_non_null(strstr(p->buf[ERR], "only this host can connect"));
    if (host_is_reachable(addr, sizeof addr))
        assert_non_null(strstr(p->buf[ERR], "other hosts could reach"));
    else
        assert_non_null(strstr(p->buf[ERR], "no interface other hosts can "
                                            "reach"));
}

static void wildcard_and_primary_binds_warn_only_without_interfaces(void **state)
{
    char addr[INET_ADDRSTRLEN], spec[INET_ADDRSTRLEN + 8];
    struct proc *p = proc_start("echo-server", "--listen", "*:0", NULL);
    bool reachable = host_is_reachable(addr, sizeof addr);

    (void)state;
    assert_non_null(proc_wait_line(p, OUT, "listening on "));
    assert_non_null(strstr(p->buf[OUT], "(all interfaces; "));
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    if (reachable)
        assert_null(strstr(p->buf[ERR], "warning"));
    else
        assert_non_null(strstr(p->buf[ERR], "no interface other hosts can "
                                            "reach"));

    /* Only bound, never connected to: tests talk over loopback only. */
    if (addr[0] == '\0')
        return;
    snprintf(spec, sizeof spec, "%s:0", addr);
    p = proc_start("echo-server", "--listen", spec, NULL);
    assert_non_null(proc_wait_line(p, OUT, "listening on "));
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_null(strstr(p->buf[ERR], "warning"));
}

static void echoes_bytes_and_sums_up_on_sigterm(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);
    unsigned port = listen_port(p);
    char buf[64], target[32];
    struct proc *client;
    bool eof;
    int fd;

    (void)state;
    fd = tcp_connect(port);
    send_all(fd, "ping\n", 5);
    recv_exact(fd, buf, 5);
    assert_memory_equal(buf, "ping\n", 5);
    shutdown(fd, SHUT_WR);
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    close(fd);

    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    client = proc_start("echo-client", target, "--message", "hello", NULL);
    assert_int_equal(proc_finish(client), 0);
    assert_string_equal(client->buf[OUT], "hello\n");

    /* An open connection at SIGTERM is closed by the server. */
    fd = tcp_connect(port);
    send_all(fd, "x", 1);
    recv_exact(fd, buf, 1);
    assert_int_equal(kill(p->pid, SIGTERM), 0);
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    close(fd);
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "echo-server: served 3 connections, "
                                        "12 bytes in, 12 bytes out; closed: "));
    assert_non_null(strstr(p->buf[OUT], "peer closed 2"));
    assert_non_null(strstr(p->buf[OUT], "shutting down 1"));
}

static void threads_share_the_port_and_add_up(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                "--threads", "3", NULL);
    unsigned port = listen_port(p);
    char target[32], line[64];
    struct proc *client;
    int i;

    (void)state;
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    client = proc_start("echo-client", target, "--count", "50", "--size",
                        "100", "--connections", "6", NULL);
    assert_int_equal(proc_finish(client), 0);
    assert_non_null(strstr(client->buf[OUT], "300 round trips of 100 bytes "
                                             "over 6 connections"));
    assert_non_null(strstr(client->buf[OUT], "p99"));
    assert_int_equal(proc_stop(p, SIGINT), 0);
    /* One line per worker, then the total and the program's summary. */
    for (i = 0; i < 3; i++) {
        snprintf(line, sizeof line, "\nworker %d: accepted ", i);
        assert_non_null(strstr(p->buf[OUT], line));
    }
    assert_null(strstr(p->buf[OUT], "worker 3:"));
    assert_non_null(strstr(p->buf[OUT], "\ntotal: accepted 6, open 0, closed: "
                                        "peer closed 6; 30000 bytes in, "
                                        "30000 bytes out; 0 accept errors, "
                                        "0 shed; busy "));
    assert_non_null(strstr(p->buf[OUT], "served 6 connections, 30000 bytes "
                                        "in, 30000 bytes out; closed: peer "
                                        "closed 6\n"));
}

/* --threads 0 is a worker per CPU; --pin is accepted; a unix: endpoint
 * is served by every worker through the acceptor. */
static void one_worker_per_cpu_and_unix_endpoints(void **state)
{
    char spec[64], line[64];
    struct proc *p, *client;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN), i;

    (void)state;
    snprintf(spec, sizeof spec, "unix:/tmp/nc-examples-%d.sock", (int)getpid());
    p = proc_start("echo-server", "--listen", spec, "--threads", "0", "--pin",
                   NULL);
    assert_non_null(proc_wait_line(p, OUT, "listening on unix:"));
    client = proc_start("echo-client", spec, "--count", "10",
                        "--connections", "4", NULL);
    assert_int_equal(proc_finish(client), 0);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    for (i = 0; i < cpus; i++) {
        snprintf(line, sizeof line, "worker %ld: accepted ", i);
        assert_non_null(strstr(p->buf[OUT], line));
    }
    snprintf(line, sizeof line, "worker %ld:", cpus);
    assert_null(strstr(p->buf[OUT], line));
    assert_non_null(strstr(p->buf[OUT], "total: accepted 4, open 0"));
}

/* SIGTERM while a reply is queued: it is flushed, then end of stream,
 * and the server exits 0. */
/* A connection to the echo server at port, with a small receive buffer,
 * fed from out (max bytes) until everything is full: the server's queue is
 * past its high-water mark (64 KiB) and it stopped reading. *sent says
 * how much went. */
static int fill_echo(unsigned port, const char *out, size_t max,
                     size_t *sent)
{
    struct sockaddr_in sa;
    int small = 4096, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    *sent = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        ssize_t n;
        if (*sent == max || poll(&pfd, 1, 300) != 1)
            break;
        n = send(fd, out + *sent, max - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            *sent += (size_t)n;
    }
    assert_true(*sent > (64u << 10));
    return fd;
}

static char pattern_out[8 << 20], pattern_in[8 << 20];

static void fill_pattern(void)
{
    size_t k;

    for (k = 0; k < sizeof pattern_out; k++)
        pattern_out[k] = (char)('a' + k % 26);
}

static void sigterm_lets_a_pending_echo_flush(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);
    size_t sent, got;
    bool eof;
    int fd;

    (void)state;
    fill_pattern();
    fd = fill_echo(listen_port(p), pattern_out, sizeof pattern_out, &sent);
    assert_int_equal(kill(p->pid, SIGTERM), 0);
    got = read_until_eof(fd, pattern_in, sizeof pattern_in, &eof);
    assert_true(eof);
    assert_true(got >= (64u << 10));
    assert_true(got <= sent);
    assert_memory_equal(pattern_in, pattern_out, got);
    close(fd);
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "shutting down 1"));
}

/* SIGHUP while a large echo is in flight (the server's queue full, its
 * reading paused): no death, no reset. Without TLS there is nothing to
 * read again, which the server says in one line; then the rest of the
 * 8 MiB goes out, its echo arrives whole, and a new connection is
 * served. */
static void sighup_keeps_serving_and_a_large_echo_arrives_whole(void **st)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);
    unsigned port = listen_port(p);
    size_t sent, got = 0, total = sizeof pattern_out;
    uint64_t until;
    char again[6];
    int fd;

    (void)st;
    fill_pattern();
    fd = fill_echo(port, pattern_out, total, &sent);
    assert_int_equal(kill(p->pid, SIGHUP), 0);
    assert_non_null(proc_wait_line(p, OUT, "echo-server: SIGHUP: no TLS "
                                           "certificate to read again"));
    until = deadline();
    while (got < total && ms_left(until) > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (sent < total)
            pfd.events |= POLLOUT;
        assert_int_equal(poll(&pfd, 1, ms_left(until)), 1);
        if (pfd.revents & POLLOUT) {
            n = send(fd, pattern_out + sent, total - sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
            sent += n > 0 ? (size_t)n : 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(fd, pattern_in + got, total - got, MSG_DONTWAIT);
            assert_true(n > 0);
            got += (size_t)n;
        }
    }
    assert_int_equal(got, total);
    assert_memory_equal(pattern_in, pattern_out, total);
    close(fd);
    fd = tcp_connect(port);
    send_all(fd, "again\n", 6);
    recv_exact(fd, again, 6);
    assert_memory_equal(again, "again\n", 6);
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "echo-server: served 2 connections"));
}

static void idle_connection_is_closed_after_the_timeout(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                "--idle-timeout", "0.2", NULL);
    char buf[16];
    bool eof;
    int fd;

    (void)state;
    fd = tcp_connect(listen_port(p));
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "idle timeout 1"));
}

/* ---- echo-client ----------------------------------------------------------- */

static void refused_connect_is_explained_with_status_1(void **state)
{
    char target[32];
    struct proc *p;
    unsigned port;

    (void)state;
    close(loopback_socket(&port));   /* now nothing listens there */
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    p = proc_start("echo-client", target, "--message", "hi", NULL);
    assert_int_equal(proc_finish(p), 1);
    assert_non_null(strstr(p->buf[ERR], "connect to "));
    assert_non_null(strstr(p->buf[ERR], nc_strerror(-ECONNREFUSED)));
    assert_non_null(strstr(p->buf[ERR],
                           nc_explain(NC_OP_CONNECT, -ECONNREFUSED)));
    assert_string_equal(p->buf[OUT], "");
}

static void bad_arguments_exit_2_with_one_line(void **state)
{
    static const char *const cases[][4] = {
        {"echo-server", "--threads", "1025", NULL},
        {"echo-server", "--grace", "soon", NULL},
        {"echo-server", "--bogus", NULL, NULL},
        {"echo-server", "--listen", "[::1:7000", NULL},
        {"echo-server", "--idle-timeout", "soon", NULL},
        {"echo-server", "--max-per-addr", "-1", NULL},
        {"http-hello", "--max-per-addr", "lots", NULL},
        {"echo-client", NULL, NULL, NULL},
        {"echo-client", "*:7000", NULL, NULL},
        {"echo-client", "127.0.0.1:7000", "--count", "x"},
        {"http-hello", "--listen", NULL, NULL},
        {"http-hello", "extra", NULL, NULL},
        {"netcore-doctor", NULL, NULL, NULL},
        {"netcore-doctor", "port", "0", NULL},
        {"netcore-doctor", "frobnicate", NULL, NULL},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct proc *p = proc_start(cases[i][0], cases[i][1], cases[i][2],
                                    cases[i][3], NULL);
        const char *nl;
        int status = proc_finish(p);
        if (status != 2)
            fail_msg("%s %s: status %d, stderr: %s", cases[i][0],
                     cases[i][1] ? cases[i][1] : "", status, p->buf[ERR]);
        nl = strchr(p->buf[ERR], '\n');
        assert_non_null(nl);
        assert_string_equal(nl, "\n");   /* exactly one line */
        assert_int_equal(strncmp(p->buf[ERR], cases[i][0],
                                 strlen(cases[i][0])), 0);
        assert_string_equal(p->buf[OUT], "");
    }
    for (i = 0; i < 4; i++) {
        static const char *const progs[] = {"echo-server", "echo-client",
                                            "http-hello", "netcore-doctor"};
        struct proc *p = proc_start(progs[i], "--help", NULL);
        assert_int_equal(proc_finish(p), 0);
        assert_non_null(strstr(p->buf[OUT], "usage: "));
    }
}

/* ---- netcore-doctor ----------------------------------------------------- */

static void doctor_finds_close_wait_of_a_server_that_never_closes(void **state)
{
    unsigned port;
    int lfd = loopback_socket(&port), cfd, sfd;
    struct pollfd pfd;
    char text[16];
    struct proc *p;

    (void)state;
    assert_int_equal(listen(lfd, 4), 0);
    cfd = tcp_connect(port);
    sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(sfd >= 0);
    close(cfd);
    /* The broken server's socket sees the FIN: it is in CLOSE_WAIT now. */
    pfd.fd = sfd;
    pfd.events = POLLIN | POLLRDHUP;
    assert_int_equal(poll(&pfd, 1, ms_left(deadline())), 1);

    snprintf(text, sizeof text, "%u", port);
    p = proc_start("netcore-doctor", "port", text, NULL);
    assert_int_equal(proc_finish(p), 0);
    close(sfd);
    close(lfd);
    assert_non_null(strstr(p->buf[OUT], "CLOSE_WAIT: 1 socket - "));
    assert_non_null(strstr(p->buf[OUT], "  CLOSE_WAIT   1\n"));
    assert_non_null(strstr(p->buf[OUT], "LOOPBACK ONLY"));
    assert_non_null(strstr(p->buf[OUT], "  LISTEN       1\n"));
}

static void doctor_finds_no_close_wait_for_echo_server(void **state)
{
    struct proc *srv = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                  NULL);
    unsigned port = listen_port(srv);
    char text[16], target[32], buf[16];
    struct proc *p;
    bool eof;
    int fd;

    (void)state;
    fd = tcp_connect(port);
    send_all(fd, "x", 1);
    recv_exact(fd, buf, 1);
    shutdown(fd, SHUT_WR);
    /* The server's FIN proves it closed its socket: no CLOSE_WAIT. */
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    close(fd);

    snprintf(text, sizeof text, "%u", port);
    p = proc_start("netcore-doctor", "port", text, NULL);
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "CLOSE_WAIT: none\n"));
    assert_non_null(strstr(p->buf[OUT], "LOOPBACK ONLY"));

    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    p = proc_start("netcore-doctor", "connect", target, NULL);
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "connected to "));
    assert_int_equal(proc_stop(srv, SIGTERM), 0);

    p = proc_start("netcore-doctor", "connect", target, NULL);
    assert_int_equal(proc_finish(p), 1);
    assert_non_null(strstr(p->buf[OUT],
                           nc_explain(NC_OP_CONNECT, -ECONNREFUSED)));
}

static void doctor_lists_interfaces_and_primary(void **state)
{
    struct proc *p = proc_start("netcore-doctor", "ifaces", NULL);

    (void)state;
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "loopback"));
    assert_non_null(strstr(p->buf[OUT], "127.0.0.1/8"));
    assert_non_null(strstr(p->buf[OUT], "\nprimary: "));
}
/* netcore-doctor backend: what runs here, and the default first named. */
static void doctor_names_the_backends(void **state)
{
    struct proc *d = proc_start("netcore-doctor", "backend", NULL);
    nc_loop *loop;
    char want[64];

    (void)state;
    assert_int_equal(proc_finish(d), 0);
    assert_non_null(strstr(d->buf[OUT], "epoll     available"));
    assert_non_null(strstr(d->buf[OUT], "io_uring  "));
    assert_int_equal(nc_loop_new(&loop), 0);
    snprintf(want, sizeof want, "%-9s available (the default here)",
             nc_backend_name(nc_loop_backend(loop)));
    nc_loop_free(loop);
    assert_non_null(strstr(d->buf[OUT], want));
    d = proc_start("netcore-doctor", "backend", "kqueue", NULL);
    assert_int_equal(proc_finish(d), 2);
}

/* NC_BACKEND as the test runner set it, put back by backend_teardown
 * whatever a case below did to it. */
static char saved_backend[64];
static bool backend_saved, backend_was_set;

static void set_backend(const char *value)
{
    const char *v = getenv("NC_BACKEND");

    if (!backend_saved) {
        backend_saved = true;
        backend_was_set = v != NULL;
        snprintf(saved_backend, sizeof saved_backend, "%s", v ? v : "");
    }
    assert_int_equal(setenv("NC_BACKEND", value, 1), 0);
}

static int backend_teardown(void **state)
{
    if (backend_was_set)
        setenv("NC_BACKEND", saved_backend, 1);
    else if (backend_saved)
        unsetenv("NC_BACKEND");
    backend_saved = false;
    return proc_teardown(state);
}

/* Whether text names the variable, its value and what is allowed, and
 * not only the system's "Invalid argument". */
static void names_the_bad_backend(const char *text, const char *value)
{
    char want[64];

    snprintf(want, sizeof want, "NC_BACKEND=%s ", value);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "epoll, io_uring"));
    assert_null(strstr(text, "Invalid argument"));
}

/* NC_BACKEND naming no backend ("bogus", or "EPOLL": the names are lower
 * case): every program refuses to start and says which variable holds
 * which value and what it may hold; netcore-doctor backend agrees. */
static void bad_nc_backend_is_named_and_refused_by_every_program(void **st)
{
    static const char *const values[] = {"bogus", "EPOLL"};
    struct proc *p;
    size_t i;

    (void)st;
    for (i = 0; i < 2; i++) {
        set_backend(values[i]);
        p = proc_start("echo-server", "--listen", "127.0.0.1:0", NULL);
        assert_int_equal(proc_finish(p), 1);
        names_the_bad_backend(p->buf[ERR], values[i]);
        p = proc_start("http-hello", "--listen", "127.0.0.1:0", NULL);
        assert_int_equal(proc_finish(p), 1);
        names_the_bad_backend(p->buf[ERR], values[i]);
        p = proc_start("echo-client", "127.0.0.1:1", "--message", "x", NULL);
        assert_int_equal(proc_finish(p), 1);
        names_the_bad_backend(p->buf[ERR], values[i]);
        p = proc_start("netcore-doctor", "backend", NULL);
        assert_int_equal(proc_finish(p), 1);
        names_the_bad_backend(p->buf[ERR], values[i]);
        p = proc_start("netcore-doctor", "backend", "epoll", NULL);
        assert_int_equal(proc_finish(p), 1);
        names_the_bad_backend(p->buf[ERR], values[i]);
    }
    /* A name it knows is fine, for the doctor as for the programs. */
    set_backend("epoll");
    p = proc_start("netcore-doctor", "backend", NULL);
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "epoll     available (the default "
                                        "here)"));
}

/* ---- the programs and their output ------------------------------------------- */

static void every_program_prints_its_version(void **state)
{
    static const char *const progs[] = {"echo-server", "echo-client",
                                        "http-hello", "netcore-doctor"};
    char want[128];
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        struct proc *p = proc_start(progs[i], "--version", NULL);
        assert_int_equal(proc_finish(p), 0);
        snprintf(want, sizeof want, "%s (libnetcore %s)\n", progs[i],
                 nc_version());
        assert_string_equal(p->buf[OUT], want);
    }
}

/* stdout closed by its reader ("echo-server | true"): no death by
 * SIGPIPE, exit status 0, and the summary goes to stderr. */
static void server_outlives_its_stdout_reader(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);

    (void)state;
    listen_port(p);
    close(p->fd[OUT]);
    p->fd[OUT] = -1;
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[ERR], "echo-server: served 0 connections"));
}

#define CASE(f) cmocka_unit_test_teardown(f, proc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(loopback_bind_prints_line_and_warning),
        CASE(wildcard_and_primary_binds_warn_only_without_interfaces),
        CASE(echoes_bytes_and_sums_up_on_sigterm),
        CASE(threads_share_the_port_and_add_up),
        CASE(one_worker_per_cpu_and_unix_endpoints),
        CASE(sigterm_lets_a_pending_echo_flush),
        CASE(sighup_keeps_serving_and_a_large_echo_arrives_whole),
        CASE(idle_connection_is_closed_after_the_timeout),
        CASE(refused_connect_is_explained_with_status_1),
        CASE(bad_arguments_exit_2_with_one_line),
        CASE(doctor_finds_close_wait_of_a_server_that_never_closes),
        CASE(doctor_finds_no_close_wait_for_echo_server),
        CASE(doctor_lists_interfaces_and_primary),
        CASE(doctor_names_the_backends),
        cmocka_unit_test_teardown(
            bad_nc_backend_is_named_and_refused_by_every_program,
            backend_teardown),
        CASE(every_program_prints_its_version),
        CASE(server_outlives_its_stdout_reader),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("examples", tests, proc_setup, NULL);
}
