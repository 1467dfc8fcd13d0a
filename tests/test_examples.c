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

extern char **environ;

#define OUT_MAX 65536

struct proc {
    pid_t pid;              /* 0 once reaped */
    int fd[2];              /* stdout, stderr pipes; -1 at end of stream */
    char buf[2][OUT_MAX];   /* what each printed, NUL-terminated */
    size_t len[2];
    int status;             /* waitpid status, once reaped */
};

enum { OUT = 0, ERR = 1 };

/* Every process a case starts, so teardown can end it if the case fails. */
static struct proc procs[4];
static char bin_dir[PATH_MAX];

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Deadlines: generous, as the programs may run under sanitizers. */
static uint64_t deadline(void)
{
    const char *v = getenv("NC_UNDER_VALGRIND");

    return now_ms() + (v != NULL && strcmp(v, "1") == 0 ? 60000 : 10000);
}

static int ms_left(uint64_t until)
{
    uint64_t now = now_ms();

    return now >= until ? 0 : (int)(until - now);
}

/* ---- processes ---------------------------------------------------------- */

static struct proc *proc_start(const char *prog, ...)
{
    char path[PATH_MAX + 64];
    char *argv[32];
    posix_spawn_file_actions_t fa;
    int out[2], err[2], argc = 0, rc;
    struct proc *p = NULL;
    va_list ap;
    size_t i;

    for (i = 0; i < sizeof procs / sizeof procs[0]; i++)
        if (procs[i].pid == 0 && procs[i].fd[0] < 0 && procs[i].fd[1] < 0)
            p = &procs[i];
    assert_non_null(p);
    snprintf(path, sizeof path, "%s/%s", bin_dir, prog);
    argv[argc++] = path;
    va_start(ap, prog);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;

    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    memset(p, 0, sizeof *p);
    rc = posix_spawn(&p->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    p->fd[OUT] = out[0];
    p->fd[ERR] = err[0];
    if (rc != 0) {
        p->pid = 0;
        fail_msg("cannot run %s: %s (build the examples first)", path,
                 strerror(rc));
    }
    return p;
}

/* Read what is available on the process's pipes, waiting until `until`.
 * Returns false when the time ran out or both pipes are at their end. */
static bool proc_pump(struct proc *p, uint64_t until)
{
    struct pollfd pfd[2];
    int i, n = 0, map[2];

    for (i = 0; i < 2; i++) {
        if (p->fd[i] < 0)
            continue;
        pfd[n].fd = p->fd[i];
        pfd[n].events = POLLIN;
        map[n++] = i;
    }
    if (n == 0 || poll(pfd, (nfds_t)n, ms_left(until)) <= 0)
        return false;
    for (i = 0; i < n; i++) {
        int s = map[i];
        ssize_t got;
        if (pfd[i].revents == 0)
            continue;
        got = read(p->fd[s], p->buf[s] + p->len[s], OUT_MAX - 1 - p->len[s]);
        if (got <= 0) {
            close(p->fd[s]);
            p->fd[s] = -1;
            continue;
        }
        p->len[s] += (size_t)got;
        p->buf[s][p->len[s]] = '\0';
    }
    return true;
}

/* Wait until stream s holds a complete line starting with prefix; returns
 * that line's start, or NULL at the deadline or end of output. */
static const char *proc_wait_line(struct proc *p, int s, const char *prefix)
{
    uint64_t until = deadline();

    for (;;) {
        const char *line = p->buf[s];
        while (line != NULL && *line != '\0') {
            const char *nl = strchr(line, '\n');
            if (nl == NULL)
                break;
            if (strncmp(line, prefix, strlen(prefix)) == 0)
                return line;
            line = nl + 1;
        }
        if (!proc_pump(p, until))
            return NULL;
    }
}

/* Read both pipes to their end and reap the process; kill it if it does
 * not finish in time. Returns its exit status, or -1 if it was killed. */
static int proc_finish(struct proc *p)
{
    uint64_t until = deadline();

    while (proc_pump(p, until))
        continue;
    if (p->fd[OUT] >= 0 || p->fd[ERR] >= 0)
        kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->status, 0);
    p->pid = 0;
    while (proc_pump(p, until))
        continue;
    return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

static int proc_stop(struct proc *p, int sig)
{
    assert_int_equal(kill(p->pid, sig), 0);
    return proc_finish(p);
}

static int teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        struct proc *p = &procs[i];
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
        if (p->fd[OUT] >= 0)
            close(p->fd[OUT]);
        if (p->fd[ERR] >= 0)
            close(p->fd[ERR]);
        p->fd[OUT] = p->fd[ERR] = -1;
    }
    return 0;
}

/* The port of the first "listening on ADDRESS:PORT (WHERE)" line. */
static unsigned listen_port(struct proc *p)
{
    const char *line = proc_wait_line(p, OUT, "listening on ");
    const char *paren, *colon;

    if (line == NULL)
        fail_msg("no 'listening on' line; stdout: %s stderr: %s",
                 p->buf[OUT], p->buf[ERR]);
    paren = strstr(line, " (");
    assert_non_null(paren);
    for (colon = paren; colon > line && *colon != ':'; colon--)
        continue;
    return (unsigned)strtoul(colon + 1, NULL, 10);
}

/* ---- plain sockets -------------------------------------------------------- */

static int tcp_connect(unsigned port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *d = data;

    while (len > 0) {
        ssize_t n = send(fd, d, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        d += n;
        len -= (size_t)n;
    }
}

/* Read until the peer closes (or max bytes, or the deadline). Returns the
 * byte count; buf is NUL-terminated. *eof tells whether the end came. */
static size_t read_until_eof(int fd, char *buf, size_t max, bool *eof)
{
    uint64_t until = deadline();
    size_t len = 0;

    *eof = false;
    while (len < max - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, ms_left(until)) <= 0)
            break;
        n = recv(fd, buf + len, max - 1 - len, 0);
        if (n <= 0) {
            *eof = true;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

static void recv_exact(int fd, char *buf, size_t len)
{
    uint64_t until = deadline();
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        assert_true(poll(&pfd, 1, ms_left(until)) == 1);
        n = recv(fd, buf + got, len - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
}

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

/* ---- echo-server ----------------------------------------------------------- */

static void loopback_bind_prints_line_and_warning(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);
    char addr[INET_ADDRSTRLEN];
    const char *line;

    (void)state;
    assert_true(listen_port(p) > 0);
    line = proc_wait_line(p, OUT, "listening on 127.0.0.1:");
    assert_non_null(line);
    assert_non_null(strstr(line, " (lo)\n"));
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
    assert_non_null(strstr(p->buf[OUT], "(all interfaces)"));
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
static void sigterm_lets_a_pending_echo_flush(void **state)
{
    struct proc *p = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                NULL);
    unsigned port = listen_port(p);
    static char out[8 << 20], in[8 << 20];
    size_t sent = 0, got = 0, k;
    int small = 4096, fd;
    bool eof;

    (void)state;
    for (k = 0; k < sizeof out; k++)
        out[k] = (char)('a' + k % 26);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    }
    /* Send until everything is full: the server's queue is past its
     * high-water mark (64 KiB) and it stopped reading. */
    for (;;) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        ssize_t n;
        if (sent == sizeof out || poll(&pfd, 1, 300) != 1)
            break;
        n = send(fd, out + sent, sizeof out - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent += (size_t)n;
    }
    assert_true(sent > (64u << 10));
    assert_int_equal(kill(p->pid, SIGTERM), 0);
    got = read_until_eof(fd, in, sizeof in, &eof);
    assert_true(eof);
    assert_true(got >= (64u << 10));
    assert_true(got <= sent);
    assert_memory_equal(in, out, got);
    close(fd);
    assert_int_equal(proc_finish(p), 0);
    assert_non_null(strstr(p->buf[OUT], "shutting down 1"));
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

/* ---- http-hello ------------------------------------------------------------ */

#define OK_BODY "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                "Content-Length: 13\r\n"

static void http_answers_pipelined_requests_in_order(void **state)
{
    static const char reqs[] =
        "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
        "HEAD /2 HTTP/1.1\r\nHost: t\r\n\r\n"
        "POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
        "GET /4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const char want[] =
        OK_BODY "\r\nHello, World!"
        OK_BODY "\r\n"
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
        "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\n"
        "Method Not Allowed\n"
        OK_BODY "Connection: close\r\n\r\nHello, World!";
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                NULL);
    char buf[4096];
    bool eof;
    int fd;

    (void)state;
    fd = tcp_connect(listen_port(p));
    send_all(fd, reqs, sizeof reqs - 1);
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    assert_string_equal(buf, want);
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "http-hello: served 1 connections, "
                                        "4 answers by status: 200 3, 405 1"));
}

/* Send a request, read the answer until the server closes. */
static void http_exchange(unsigned port, const char *req, size_t len,
                          char *buf, size_t max)
{
    bool eof;
    int fd = tcp_connect(port);

    send_all(fd, req, len);
    read_until_eof(fd, buf, max, &eof);
    assert_true(eof);
    close(fd);
}

static void http_answers_400_and_431_then_closes(void **state)
{
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                NULL);
    unsigned port = listen_port(p);
    const char *pad_start = "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    char *big = malloc(16384), buf[4096];
    size_t fixed = strlen(pad_start) + 4, total;

    (void)state;
    assert_non_null(big);
    http_exchange(port, "GET / HTTP/1.1\nHost: t\n\n", 24, buf, sizeof buf);
    assert_non_null(strstr(buf, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));

    /* A head of 8192 + 1 bytes: 431, then the server closes. */
    total = 8193;
    memcpy(big, pad_start, strlen(pad_start));
    memset(big + strlen(pad_start), 'p', total - fixed);
    memcpy(big + total - 4, "\r\n\r\n", 4);
    http_exchange(port, big, total, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 431 Request Header Fields Too "
                                  "Large\r\n", 46), 0);
    assert_non_null(strstr(buf, "Connection: close\r\n"));

    /* Exactly 8 KiB is still fine (closing it with Connection: close). */
    total = 8192;
    pad_start = "GET / HTTP/1.1\r\nConnection: close\r\nHost: t\r\nX-Pad: ";
    fixed = strlen(pad_start) + 4;
    memcpy(big, pad_start, strlen(pad_start));
    memset(big + strlen(pad_start), 'p', total - fixed);
    memcpy(big + total - 4, "\r\n\r\n", 4);
    http_exchange(port, big, total, buf, sizeof buf);
    assert_int_equal(strncmp(buf, OK_BODY, strlen(OK_BODY)), 0);
    free(big);

    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "3 answers by status: 200 1, "
                                        "400 1, 431 1"));
}

/* ---- pipelining over a Unix socket, then the client's end ---------------- */

static int unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Send all of out while reading what comes back (the buffers of a Unix
 * socket are small: the server stops reading while we do not), then
 * half-close and read until the server's end. Returns the bytes read. */
static size_t exchange_all(int fd, const char *out, size_t len, char *in,
                           size_t max, bool *eof)
{
    uint64_t until = deadline();
    size_t sent = 0, got = 0;

    *eof = false;
    while (!*eof && ms_left(until) > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (sent < len)
            pfd.events |= POLLOUT;
        if (poll(&pfd, 1, ms_left(until)) <= 0)
            break;
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(fd, out + sent, len - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0 && (sent += (size_t)n) == len)
                shutdown(fd, SHUT_WR);
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            ssize_t n = recv(fd, in + got, max - got, MSG_DONTWAIT);
            if (n == 0)
                *eof = true;
            else if (n > 0)
                got += (size_t)n;
        }
        assert_true(got < max);
    }
    return got;
}

static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    const char *p = hay, *end = hay + len;

    while ((p = memmem(p, (size_t)(end - p), needle, k)) != NULL) {
        n++;
        p += k;
    }
    return n;
}

/* 3,000 pipelined requests, then the client half-closes (as HTTP/1.0
 * tools and shell pipes do): every answer arrives before the end. With
 * the last one asking for Connection: close, the same. */
static void http_answers_every_pipelined_request_before_closing(void **st)
{
    enum { N = 3000 };
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char last[] =
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char path[64], spec[80];
    size_t rlen = sizeof req - 1, len, got;
    char *out = malloc(N * rlen + sizeof last);
    char *in = malloc(N * 128);
    bool eof;
    int fd, round;

    (void)st;
    assert_non_null(out);
    assert_non_null(in);
    snprintf(path, sizeof path, "/tmp/nc-test-http-%d.sock", (int)getpid());
    snprintf(spec, sizeof spec, "unix:%s", path);
    struct proc *p = proc_start("http-hello", "--listen", spec, NULL);
    listen_port(p);
    for (round = 0; round < 2; round++) {
        for (len = 0; len < (N - 1) * rlen; len += rlen)
            memcpy(out + len, req, rlen);
        /* Round 0 ends with a plain request and the client's end of
         * stream; round 1 with Connection: close. */
        memcpy(out + len, round ? last : req, round ? sizeof last - 1 : rlen);
        len += round ? sizeof last - 1 : rlen;
        fd = unix_connect(path);
        got = exchange_all(fd, out, len, in, N * 128, &eof);
        close(fd);
        assert_true(eof);
        assert_int_equal(count(in, got, "HTTP/1.1 200 OK\r\n"), N);
    }
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    free(out);
    free(in);
}

/* A head arriving a byte at a time ("slowloris") is cut off by
 * --header-timeout, although each byte comes well within the idle
 * timeout; a normal request is served on the same server. */
static void http_header_timeout_ends_a_trickling_head(void **state)
{
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                "--header-timeout", "0.3",
                                "--idle-timeout", "10", NULL);
    unsigned port = listen_port(p);
    uint64_t until = deadline(), start;
    char buf[4096], c;
    bool closed = false;
    int fd;

    (void)state;
    fd = tcp_connect(port);
    start = now_ms();
    send_all(fd, "GET / HTTP/1.1\r\n", 16);
    while (!closed && ms_left(until) > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        /* One byte every 50 ms; the server's end stops the loop. */
        if (poll(&pfd, 1, 50) == 1) {
            closed = recv(fd, &c, 1, 0) <= 0;
            assert_true(closed);
            break;
        }
        send(fd, "X", 1, MSG_NOSIGNAL);
    }
    assert_true(closed);
    assert_true(now_ms() - start >= 300);
    close(fd);
    http_exchange(port, "GET / HTTP/1.0\r\n\r\n", 18, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
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

static int find_bin_dir(void **state)
{
    const char *env = getenv("NC_BIN_DIR");
    char self[PATH_MAX - 16];
    ssize_t n;
    char *slash;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof procs / sizeof procs[0]; i++)
        procs[i].fd[OUT] = procs[i].fd[ERR] = -1;
    if (env != NULL && *env != '\0') {
        snprintf(bin_dir, sizeof bin_dir, "%s", env);
        return 0;
    }
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    slash = strrchr(self, '/');    /* build/tests/test_examples */
    if (slash == NULL)
        return -1;
    *slash = '\0';
    snprintf(bin_dir, sizeof bin_dir, "%s/../bin", self);
    return 0;
}

#define CASE(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(loopback_bind_prints_line_and_warning),
        CASE(wildcard_and_primary_binds_warn_only_without_interfaces),
        CASE(echoes_bytes_and_sums_up_on_sigterm),
        CASE(threads_share_the_port_and_add_up),
        CASE(one_worker_per_cpu_and_unix_endpoints),
        CASE(sigterm_lets_a_pending_echo_flush),
        CASE(idle_connection_is_closed_after_the_timeout),
        CASE(refused_connect_is_explained_with_status_1),
        CASE(bad_arguments_exit_2_with_one_line),
        CASE(doctor_finds_close_wait_of_a_server_that_never_closes),
        CASE(doctor_finds_no_close_wait_for_echo_server),
        CASE(doctor_lists_interfaces_and_primary),
        CASE(http_answers_pipelined_requests_in_order),
        CASE(http_answers_400_and_431_then_closes),
        CASE(http_answers_every_pipelined_request_before_closing),
        CASE(http_header_timeout_ends_a_trickling_head),
        CASE(every_program_prints_its_version),
        CASE(server_outlives_its_stdout_reader),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("examples", tests, find_bin_dir, NULL);
}
