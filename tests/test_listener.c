/* test_listener.c - binding, accepting under load, limits and running out
 * of file descriptors, over real loopback and Unix sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void finish(nc_loop *loop, struct server *s)
{
    nc_loop_free(loop);
    assert_true(server_all_closed_once(s));
    server_free(s);
}

static void bad_endpoint_changes_nothing(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_listener *l = (nc_listener *)&loop;
    const nc_conn_callbacks cbs = { 0 };
    assert_int_equal(nc_listen(loop, "127.0.0.1:70000", NULL, &cbs, NULL, &l), -ERANGE);
    assert_int_equal(nc_listen(loop, "[::1", NULL, &cbs, NULL, &l), -EINVAL);
    assert_int_equal(nc_listen(loop, "nosuchif0:7000", NULL, &cbs, NULL, &l), -ENODEV);
    assert_int_equal(nc_listen(loop, "", NULL, &cbs, NULL, &l), -EINVAL);
    assert_ptr_equal(l, (nc_listener *)&loop);
    /* Nothing was left registered: the loop has nothing to run. */
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    nc_loop_free(loop);
}

/* A failing nc_listen says what is wrong in the caller's buffer, and
 * nc_explain(NC_OP_BIND) gives the likely cause, for endpoint text as for
 * a failed bind(). */
struct listen_said {
    const char *spec;
    int err;
    const char *message;     /* the errbuf, exactly */
    const char *explained;   /* how nc_explain(NC_OP_BIND, err) starts */
};

static void check_listen_says(nc_loop *loop, const struct listen_said *c)
{
    char why[256];
    nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    nc_listener *l = (nc_listener *)&o;
    const nc_conn_callbacks cbs = { 0 };

    strcpy(why, "junk");
    int rc = nc_listen(loop, c->spec, &o, &cbs, NULL, &l);
    if (rc != c->err)
        fail_msg("%s: %s, not %s", c->spec, nc_errname(rc),
                 nc_errname(c->err));
    assert_ptr_equal(l, (nc_listener *)&o);
    if (strcmp(why, c->message) != 0)
        fail_msg("%s: errbuf \"%s\", not \"%s\"", c->spec, why, c->message);
    const char *text = nc_explain(NC_OP_BIND, rc);
    if (strncmp(text, c->explained, strlen(c->explained)) != 0)
        fail_msg("%s: nc_explain says \"%s\"", c->spec, text);
}

static void failed_listen_names_the_fault_in_errbuf(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    const struct listen_said cases[] = {
        {":70000", -ERANGE, "port 70000 is out of range (0-65535)",
         "the port is out of range"},
        {"999.1.1.1:80", -EINVAL, "bad IPv4 address '999.1.1.1'",
         "invalid endpoint: the text is not an address"},
        {"[::1", -EINVAL, "missing ']' after IPv6 address",
         "invalid endpoint"},
        {"unix:/nonexistent-nc-dir/x.sock", -ENOENT,
         "cannot bind unix:/nonexistent-nc-dir/x.sock: No such file or "
         "directory", "the directory of the Unix socket path does not exist"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_listen_says(loop, &cases[i]);
    if (if_nametoindex("eth99") == 0) {
        const struct listen_said eth99 = {
            "eth99:80", -ENODEV, "unknown interface 'eth99'",
            "unknown interface or scope"};
        check_listen_says(loop, &eth99);
    }

    /* A failed bind() names the address it failed on, and the process
     * that holds it (this one). */
    struct server s;
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", NULL, SERVER_ECHO), 0);
    char spec[64], message[160];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", nc_addr_port(&s.addr));
    snprintf(message, sizeof(message), "cannot bind %s: Address already in "
             "use; held by %s (pid %d)", spec, self_comm(), (int)getpid());
    const struct listen_said in_use = { spec, -EADDRINUSE, message,
                                        "address already in use" };
    check_listen_says(loop, &in_use);

    /* Success empties it; a short buffer gets the start of the line; no
     * buffer, or one of size 0, is never written. */
    char why[8];
    nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    nc_listener *l;
    const nc_conn_callbacks cbs = { 0 };
    strcpy(why, "junk");
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, NULL, &l), 0);
    assert_string_equal(why, "");
    nc_listener_close(l);
    assert_int_equal(nc_listen(loop, ":70000", &o, &cbs, NULL, &l), -ERANGE);
    assert_string_equal(why, "port 70");
    o.errbuf_len = 0;
    strcpy(why, "junk");
    assert_int_equal(nc_listen(loop, ":70000", &o, &cbs, NULL, &l), -ERANGE);
    assert_string_equal(why, "junk");
    o.errbuf = NULL;
    o.errbuf_len = sizeof(why);
    assert_int_equal(nc_listen(loop, ":70000", &o, &cbs, NULL, &l), -ERANGE);
    finish(loop, &s);
}

static void port_zero_reports_real_port_and_address_in_use(void **state)
{
    (void)state;
    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", NULL, SERVER_ECHO), 0);
    assert_int_equal(nc_listener_count(s.l), 1);
    uint16_t port = nc_addr_port(&s.addr);
    assert_true(port != 0);
    char spec[32];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", port);
    nc_listener *l2 = NULL;
    const nc_conn_callbacks cbs = { 0 };
    assert_int_equal(nc_listen(loop, spec, NULL, &cbs, NULL, &l2), -EADDRINUSE);
    assert_null(l2);
    int fd = client_connect(&s.addr);
    assert_true(fd >= 0);
    assert_true(server_wait_opened(&s, 1));
    /* Accepted sockets are non-blocking and close-on-exec. */
    int cfd = nc_conn_fd(s.recs[0]->conn);
    assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    finish(loop, &s);
}

/* Two loops of one process cannot both listen on a port: the second is
 * told who holds it, over IPv4 and IPv6, for the very address and for
 * the wildcard that overlaps it. */
static void second_loop_on_a_taken_port_is_told_who_holds_it(void **state)
{
    (void)state;
    nc_loop *first, *second;
    struct server s;
    assert_int_equal(nc_loop_new(&first), 0);
    assert_int_equal(nc_loop_new(&second), 0);
    bool v6 = have_ipv6_loopback();
    assert_int_equal(server_start(&s, first, v6 ? "localhost:0" : "127.0.0.1:0",
                                  NULL, SERVER_ECHO), 0);
    unsigned port = nc_addr_port(&s.addr);
    char held[64], why[256], spec[32];
    snprintf(held, sizeof(held), "; held by %s (pid %d)", self_comm(),
             (int)getpid());
    const char *forms[] = { "127.0.0.1:%u", "*:%u", "[::1]:%u" };
    for (size_t i = 0; i < (v6 ? 3u : 1u); i++) {
        nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
        nc_listener *l = NULL;
        const nc_conn_callbacks cbs = { 0 };
        snprintf(spec, sizeof(spec), forms[i], port);
        assert_int_equal(nc_listen(second, spec, &o, &cbs, NULL, &l),
                         -EADDRINUSE);
        assert_null(l);
        if (!strstr(why, "Address already in use") || !strstr(why, held))
            fail_msg("%s: errbuf \"%s\" does not say \"%s\"", spec, why,
                     held);
    }
    nc_loop_free(second);
    nc_loop_free(first);
    server_free(&s);
}

static void localhost_binds_both_families_on_one_port(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "localhost:0", NULL, SERVER_ECHO), 0);
    assert_int_equal(nc_listener_count(s.l), 2);
    nc_addr a4, a6;
    assert_int_equal(nc_listener_addr(s.l, 0, &a4), 0);
    assert_int_equal(nc_listener_addr(s.l, 1, &a6), 0);
    assert_int_equal(a4.u.sa.sa_family, AF_INET);
    assert_int_equal(a6.u.sa.sa_family, AF_INET6);
    assert_int_equal(nc_addr_port(&a4), nc_addr_port(&a6));
    assert_int_equal(nc_listener_addr(s.l, 2, &a6), -EINVAL);
    int f4 = client_connect(&a4), f6 = client_connect(&a6);
    assert_true(f4 >= 0 && f6 >= 0);
    assert_true(server_wait_opened(&s, 2));
    close(f4);
    close(f6);
    finish(loop, &s);
}

static void wildcard_is_dual_stack(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "*:0", NULL, SERVER_ECHO), 0);
    assert_int_equal(nc_listener_count(s.l), 1);
    assert_true(nc_addr_is_any(&s.addr));
    char spec[64];
    nc_endpoint ep;
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", nc_addr_port(&s.addr));
    assert_int_equal(nc_endpoint_parse(&ep, spec, NULL, 0), 0);
    int f4 = client_connect(&ep.addr);
    snprintf(spec, sizeof(spec), "[::1]:%u", nc_addr_port(&s.addr));
    assert_int_equal(nc_endpoint_parse(&ep, spec, NULL, 0), 0);
    int f6 = client_connect(&ep.addr);
    assert_true(f4 >= 0 && f6 >= 0);
    assert_true(server_wait_opened(&s, 2));
    close(f4);
    close(f6);
    finish(loop, &s);

    nc_listener_options o = { .ipv6_only = true };
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "*:0", &o, SERVER_ECHO), 0);
    assert_int_equal(nc_listener_count(s.l), 2);
    finish(loop, &s);
}

static void unix_listener_echoes_and_unlinks(void **state)
{
    (void)state;
    char path[64], spec[80];
    snprintf(path, sizeof(path), "/tmp/nc-test-%d.sock", (int)getpid());
    snprintf(spec, sizeof(spec), "unix:%s", path);
    /* A stale socket file from a dead server is reclaimed. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, path);
    unlink(path);
    assert_int_equal(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(stale);

    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, spec, NULL, SERVER_ECHO), 0);
    int fd = client_connect(&s.addr);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "unix", 4), 4);
    assert_true(server_wait_opened(&s, 1));
    char buf[4];
    assert_true(server_wait_bytes(&s, 4, 2000));
    assert_int_equal(read_full(fd, buf, 4, 2000), 4);
    assert_memory_equal(buf, "unix", 4);
    close(fd);
    assert_true(server_wait_closed(&s, 1));
    assert_int_equal(s.last_reason, NC_CLOSE_PEER);
    nc_listener_close(s.l);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    finish(loop, &s);
}

struct clients {
    unsigned long opened, closed;
};

static void c_open(nc_conn *c, void *ud)
{
    (void)c;
    ((struct clients *)ud)->opened++;
}

static void c_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    (void)c;
    (void)r;
    (void)err;
    ((struct clients *)ud)->closed++;
}

static void five_hundred_clients_at_once_are_all_accepted(void **state)
{
    (void)state;
    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", NULL, SERVER_ECHO), 0);
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&s.addr, spec, sizeof(spec));
    struct clients cl = { 0 };
    const nc_conn_callbacks cbs = { .on_open = c_open, .on_close = c_close };
    for (int i = 0; i < 500; i++)
        assert_int_equal(nc_connect(loop, spec, NULL, &cbs, &cl, NULL), 0);
    assert_true(server_wait_opened(&s, 500));
    struct count_goal g = { &cl.opened, 500 };
    assert_true(run_until(loop, count_reached, &g, 5000));
    nc_listener_stats st;
    nc_listener_stats_get(s.l, &st);
    assert_int_equal(st.accepted, 500);
    assert_int_equal(st.active, 500);
    /* Freeing the loop closes all 1000 ends, each exactly once. */
    nc_loop_free(loop);
    assert_int_equal(cl.closed, 500);
    assert_int_equal(s.by_reason[NC_CLOSE_SHUTDOWN], 500);
    assert_true(server_all_closed_once(&s));
    server_free(&s);
}

static void max_conns_pauses_and_resumes_accepting(void **state)
{
    (void)state;
    nc_loop *loop;
    struct server s;
    nc_listener_options o = { .max_conns = 2 };
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", &o, SERVER_ECHO), 0);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = client_connect(&s.addr);   /* the kernel completes all 3 */
    assert_true(server_wait_opened(&s, 2));
    for (int i = 0; i < 10; i++)
        nc_loop_run(loop, NC_RUN_NOWAIT);
    assert_int_equal(s.opened, 2);
    nc_listener_stats st;
    nc_listener_stats_get(s.l, &st);
    assert_true(st.paused >= 1);
    close(fds[0]);
    assert_true(server_wait_opened(&s, 3));
    close(fds[1]);
    close(fds[2]);
    finish(loop, &s);
}

struct self_closer {
    nc_listener *l;
    unsigned long closed;
};

static void close_listener(nc_conn *c, void *ud)
{
    (void)c;
    nc_listener_close(((struct self_closer *)ud)->l);
}

static void count_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    (void)c;
    (void)err;
    struct self_closer *sc = ud;
    if (r == NC_CLOSE_SHUTDOWN)
        sc->closed++;
}

static void listener_close_from_on_open_and_shutdown_reason(void **state)
{
    (void)state;
    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", NULL, SERVER_ECHO), 0);
    int a = client_connect(&s.addr), b = client_connect(&s.addr);
    assert_true(server_wait_opened(&s, 2));
    nc_listener_stop(s.l);
    assert_true(client_connect(&s.addr) == -ECONNREFUSED);
    nc_listener_close(s.l);
    assert_true(server_wait_closed(&s, 2));      /* on_close runs from the loop */
    assert_int_equal(s.by_reason[NC_CLOSE_SHUTDOWN], 2);
    char c;
    assert_int_equal(read_full(a, &c, 1, 2000), 0);
    assert_int_equal(read_full(b, &c, 1, 2000), 0);
    close(a);
    close(b);
    finish(loop, &s);

    /* Closing the listener inside on_open of its own connection. */
    assert_int_equal(nc_loop_new(&loop), 0);
    struct self_closer sc = { 0 };
    const nc_conn_callbacks cbs = { .on_open = close_listener,
                                    .on_close = count_close };
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", NULL, &cbs, &sc, &sc.l), 0);
    nc_addr addr = listener_addr0(sc.l);
    int fd1 = client_connect(&addr), fd2 = client_connect(&addr);
    struct count_goal g = { &sc.closed, 1 };
    assert_true(run_until(loop, count_reached, &g, 2000));
    /* Nothing is left active: the listener is gone. */
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(sc.closed, 1);
    close(fd1);
    close(fd2);
    nc_loop_free(loop);
}

/* defer_accept: a client that connects and says nothing is not accepted;
 * once it sends, the connection opens and its bytes are read at once. */
static void deferred_accept_waits_for_the_first_bytes(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_listener_options o = { .defer_accept_s = 5 };
    struct server s;
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", &o, SERVER_ECHO),
                     0);
    int fd = client_connect(&s.addr);
    assert_true(fd >= 0);
    struct count_goal opened = { &s.opened, 1 };
    assert_false(run_until(loop, count_reached, &opened, 200));
    assert_int_equal(write(fd, "hello", 5), 5);
    assert_true(run_until(loop, count_reached, &opened, 3000));
    char buf[5];
    assert_true(server_wait_bytes(&s, 5, 3000));
    assert_int_equal(read_full(fd, buf, 5, 3000), 5);
    assert_memory_equal(buf, "hello", 5);
    close(fd);
    struct count_goal closed = { &s.closed, 1 };
    assert_true(run_until(loop, count_reached, &closed, 3000));
    assert_int_equal(s.last_reason, NC_CLOSE_PEER);
    nc_loop_free(loop);
    server_free(&s);
}

/* ---- out of descriptors ---------------------------------------------- */

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3;   /* ".", ".." and the DIR's own fd */
}

static void stop_loop(nc_watch *w, int fd, unsigned events, void *ud)
{
    (void)w;
    (void)fd;
    (void)events;
    nc_loop_stop(ud);
}

struct emfile_report {
    uint64_t accepted, shed, fd_exhausted, evicted;
    double cpu_s;
    int ok;
};

/* The server side, in a child whose descriptor limit holds 20 clients. */
static void emfile_child(int port_pipe, int ctl_pipe, int report_pipe,
                         const nc_listener_options *o)
{
    struct emfile_report rep = { 0 };
    nc_loop *loop;
    struct server s;
    nc_watch *w;
    if (nc_loop_new(&loop) < 0 ||
        server_start(&s, loop, "127.0.0.1:0", o, SERVER_ECHO) < 0 ||
        nc_watch_start(loop, ctl_pipe, NC_READABLE, stop_loop, loop, &w) < 0)
        _exit(3);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)count_open_fds() + 20;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        _exit(4);
    uint16_t port = nc_addr_port(&s.addr);
    if (write(port_pipe, &port, sizeof(port)) != sizeof(port))
        _exit(5);
    int rc = nc_loop_run(loop, NC_RUN_DEFAULT);
    nc_listener_stats st;
    nc_listener_stats_get(s.l, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rep.accepted = st.accepted;
    rep.shed = st.shed;
    rep.fd_exhausted = st.fd_exhausted;
    rep.evicted = st.evicted;
    rep.cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    rep.ok = rc == 0;
    nc_loop_free(loop);
    server_free(&s);
    if (write(report_pipe, &rep, sizeof(rep)) != sizeof(rep))
        _exit(6);
    _exit(0);
}

struct emfile_server {
    pid_t pid;
    int port_pipe, ctl_pipe, report_pipe;
    nc_addr addr;
};

/* Start emfile_child with listener options o; fill es. */
static void emfile_start(struct emfile_server *es, const nc_listener_options *o)
{
    int pp[2], cp[2], rp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    assert_int_equal(pipe2(cp, O_CLOEXEC), 0);
    assert_int_equal(pipe2(rp, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pp[0]);
        close(cp[1]);
        close(rp[0]);
        emfile_child(pp[1], cp[0], rp[1], o);
    }
    close(pp[1]);
    close(cp[0]);
    close(rp[1]);
    uint16_t port = 0;
    assert_true(wait_readable(pp[0], 5000));
    assert_int_equal(read(pp[0], &port, sizeof(port)), sizeof(port));
    nc_endpoint ep;
    char spec[32];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", port);
    assert_int_equal(nc_endpoint_parse(&ep, spec, NULL, 0), 0);
    es->addr = ep.addr;
    es->pid = pid;
    es->port_pipe = pp[0];
    es->ctl_pipe = cp[1];
    es->report_pipe = rp[0];
}

/* Stop the child and return its report. */
static struct emfile_report emfile_stop(struct emfile_server *es)
{
    close(es->ctl_pipe);
    struct emfile_report rep;
    assert_true(wait_readable(es->report_pipe, 10000));
    assert_int_equal(read(es->report_pipe, &rep, sizeof(rep)), sizeof(rep));
    int status;
    assert_int_equal(waitpid(es->pid, &status, 0), es->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(rep.ok);
    close(es->port_pipe);
    close(es->report_pipe);
    return rep;
}

static bool echo_once(const nc_addr *a, int *out_fd)
{
    int fd = client_connect(a);
    if (fd < 0)
        return false;
    char buf[2];
    if (write(fd, "hi", 2) != 2 || read_full(fd, buf, 2, 2000) != 2) {
        close(fd);
        return false;
    }
    *out_fd = fd;
    return true;
}

static void emfile_sheds_without_spinning_and_recovers(void **state)
{
    (void)state;
    if (under_valgrind()) {
        /* valgrind keeps descriptors of its own below the limit. */
        print_message("skipped: valgrind virtualises RLIMIT_NOFILE\n");
        skip();
    }
    struct emfile_server es;
    emfile_start(&es, NULL);
    nc_addr a = es.addr;

    /* Fill the server up: it can hold about 20 connections. */
    int held[40];
    int nheld = 0;
    while (nheld < 40 && echo_once(&a, &held[nheld]))
        nheld++;
    assert_true(nheld >= 15 && nheld < 40);

    /* 200 more clients: each is shed (reset) at once, not left hanging. */
    int extra = 200;
    int shed = 0;
    for (int i = 0; i < extra; i++) {
        int fd = client_connect(&a);
        long r = fd;
        if (fd >= 0) {
            char c;
            r = read_full(fd, &c, 1, 10000);
            close(fd);
        }
        /* Reset at once: an orderly end of stream would mean the server
         * accepted it and closed it with FIN (and then it should have
         * been served). */
        if (r == -ECONNRESET)
            shed++;
        else
            print_message("client %d: %ld (%s)\n", i, r, nc_strerror((int)r));
    }
    assert_int_equal(shed, extra);

    /* Still responsive to the clients it holds. */
    char buf[2];
    assert_int_equal(write(held[0], "ok", 2), 2);
    assert_int_equal(read_full(held[0], buf, 2, 2000), 2);

    /* Old clients leave: new ones are served. */
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    int fresh = -1;
    for (int tries = 0; tries < 200 && fresh < 0; tries++)
        if (!echo_once(&a, &fresh))
            fresh = -1;
    assert_true(fresh >= 0);
    close(fresh);

    struct emfile_report rep = emfile_stop(&es);
    assert_true(rep.shed >= (uint64_t)extra);
    /* No busy loop: at most two failed accepts per shed connection (the
     * one that found it, and the one that then found the queue empty). */
    assert_true(rep.fd_exhausted <= 2 * rep.shed + 10);
    assert_true(rep.cpu_s < 2.0);
}

/* With evict_idle, a new client is served and the longest-idle one is
 * closed to make room, instead of the new one being shed. */
static void emfile_with_evict_idle_closes_the_longest_idle(void **state)
{
    (void)state;
    if (under_valgrind()) {
        print_message("skipped: valgrind virtualises RLIMIT_NOFILE\n");
        skip();
    }
    nc_listener_options o = { .evict_idle = true };
    struct emfile_server es;
    emfile_start(&es, &o);
    int held[40];
    int nheld = 0;
    while (nheld < 40) {
        /* Stop once the server is full: the oldest then gets evicted. */
        if (!echo_once(&es.addr, &held[nheld]))
            fail_msg("client %d was not served", nheld);
        nheld++;
        if (nheld > 25 && wait_readable(held[0], 0))
            break;
    }
    /* held[0] went first: the longest idle. Then each new client
     * evicts the next oldest. */
    char c;
    assert_int_equal(read_full(held[0], &c, 1, 2000), 0);
    /* Those evicted while the server filled up, oldest first. */
    int first_open = 1;
    while (first_open < nheld && wait_readable(held[first_open], 50)) {
        assert_int_equal(read_full(held[first_open], &c, 1, 2000), 0);
        first_open++;
    }
    for (int k = 0; k < 5; k++) {
        int fresh;
        assert_true(echo_once(&es.addr, &fresh));
        assert_true(first_open < nheld);
        assert_int_equal(read_full(held[first_open], &c, 1, 2000), 0);
        /* One newcomer, one eviction: the next oldest is still open
         * (its close would have come in the same iteration). */
        assert_true(first_open + 1 < nheld);
        assert_false(wait_readable(held[first_open + 1], 50));
        close(held[first_open]);
        held[first_open++] = fresh;
    }
    /* The newest ones are still served. */
    char buf[2];
    assert_int_equal(write(held[nheld - 1], "ok", 2), 2);
    assert_int_equal(read_full(held[nheld - 1], buf, 2, 2000), 2);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    struct emfile_report rep = emfile_stop(&es);
    assert_true(rep.evicted >= 6);
    assert_int_equal(rep.shed, 0);
}

/* ---- connections kept aside, and a stop from on_open --------------------- */

struct aside {
    nc_listener *l;
    nc_conn *conns[4];
    int opens, closes;
};

static void aside_open(nc_conn *c, void *ud)
{
    struct aside *a = ud;
    a->conns[a->opens++] = c;
    /* The second connection, admitted when the first closed: stop
     * accepting from its on_open. */
    if (a->opens == 2)
        nc_listener_stop(a->l);
}

static void aside_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    (void)r;
    (void)err;
    struct aside *a = ud;
    for (int i = 0; i < 4; i++)
        if (a->conns[i] == c)
            a->conns[i] = NULL;
    a->closes++;
}

static bool aside_opened_1(void *arg)
{
    return ((struct aside *)arg)->opens >= 1;
}

static bool aside_opened_2(void *arg)
{
    return ((struct aside *)arg)->opens >= 2;
}

/* At max_conns, io_uring has already accepted the next clients and keeps
 * them aside; the one admitted when a slot frees stops the listener from
 * its on_open. The stop closes the sockets still waiting, never the one
 * just handed to a live connection: that connection keeps working, and a
 * file opened afterwards (which would get its number if it had been
 * closed) is never closed for it. On epoll the waiting clients are in
 * the backlog and the same holds. */
static void stop_from_on_open_of_an_admitted_connection(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    struct aside a = { 0 };
    nc_conn_callbacks cbs = { .on_open = aside_open,
                              .on_close = aside_close };
    nc_listener_options o = { .max_conns = 1 };
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &o, &cbs, &a, &a.l), 0);
    nc_addr addr = listener_addr0(a.l);
    /* All three wait in the backlog before the loop runs: io_uring's
     * accept takes them in one go, the first opens, the others are kept
     * aside. */
    int c1 = client_connect(&addr);
    int c2 = client_connect(&addr);
    int c3 = client_connect(&addr);
    assert_true(c1 >= 0 && c2 >= 0 && c3 >= 0);
    assert_true(run_until(loop, aside_opened_1, &a, 3000));
    run_until(loop, aside_opened_2, &a, 100);
    assert_int_equal(a.opens, 1);
    close(c1);
    assert_true(run_until(loop, aside_opened_2, &a, 3000));
    nc_loop_run(loop, NC_RUN_NOWAIT);
    int canary = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(canary >= 0);
    struct stat before;
    assert_int_equal(fstat(canary, &before), 0);
    assert_non_null(a.conns[1]);
    /* Its descriptor is still its socket, connected to c2. */
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof(peer), llen = sizeof(local);
    assert_int_equal(getpeername(nc_conn_fd(a.conns[1]),
                                 (struct sockaddr *)&peer, &plen), 0);
    assert_int_equal(getsockname(c2, (struct sockaddr *)&local, &llen), 0);
    assert_true(plen == llen && memcmp(&peer, &local, plen) == 0);
    assert_int_equal(nc_conn_write(a.conns[1], "hi", 2), 0);
    nc_loop_run(loop, NC_RUN_NOWAIT);
    char buf[2];
    assert_int_equal(read_full(c2, buf, 2, 3000), 2);
    assert_memory_equal(buf, "hi", 2);
    nc_conn_close(a.conns[1]);
    run_until(loop, flag_set, &(bool){ false }, 50);
    struct stat after;
    assert_int_equal(fstat(canary, &after), 0);
    assert_true(before.st_ino == after.st_ino && before.st_dev == after.st_dev);
    close(canary);
    close(c2);
    close(c3);
    nc_loop_free(loop);
    assert_int_equal(a.closes, 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_endpoint_changes_nothing),
        cmocka_unit_test(failed_listen_names_the_fault_in_errbuf),
        cmocka_unit_test(port_zero_reports_real_port_and_address_in_use),
        cmocka_unit_test(second_loop_on_a_taken_port_is_told_who_holds_it),
        cmocka_unit_test(localhost_binds_both_families_on_one_port),
        cmocka_unit_test(wildcard_is_dual_stack),
        cmocka_unit_test(unix_listener_echoes_and_unlinks),
        cmocka_unit_test(five_hundred_clients_at_once_are_all_accepted),
        cmocka_unit_test(max_conns_pauses_and_resumes_accepting),
        cmocka_unit_test(listener_close_from_on_open_and_shutdown_reason),
        cmocka_unit_test(deferred_accept_waits_for_the_first_bytes),
        cmocka_unit_test(emfile_sheds_without_spinning_and_recovers),
        cmocka_unit_test(emfile_with_evict_idle_closes_the_longest_idle),
        cmocka_unit_test(stop_from_on_open_of_an_admitted_connection),
    };
    return cmocka_run_group_tests_name("listener", tests, NULL, NULL);
}
