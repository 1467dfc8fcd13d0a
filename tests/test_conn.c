/* test_conn.c - connection lifecycle, close reasons, writes and
 * backpressure, over real loopback sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TCP_CLOSE_WAIT_STATE 8
#define HIGH_WATER (64u << 10)     /* the default high-water mark */

struct fixture {
    nc_loop *loop;
    struct server srv;
};

static int setup_with(void **state, enum server_mode mode,
                      const nc_listener_options *o)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(nc_loop_new(&f->loop), 0);
    assert_int_equal(server_start(&f->srv, f->loop, "127.0.0.1:0", o, mode), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nc_loop_free(f->loop);
    assert_true(server_all_closed_once(&f->srv));
    server_free(&f->srv);
    free(f);
    return 0;
}

static unsigned port_of(const struct fixture *f)
{
    return nc_addr_port(&f->srv.addr);
}

static bool opened_n(struct fixture *f, unsigned long n)
{
    struct count_goal g = { &f->srv.opened, n };
    return run_until(f->loop, count_reached, &g, 2000);
}

static bool closed_n(struct fixture *f, unsigned long n)
{
    struct count_goal g = { &f->srv.closed, n };
    return run_until(f->loop, count_reached, &g, 2000);
}

static bool bytes_in(struct fixture *f, unsigned long long n)
{
    return server_wait_bytes(&f->srv, n, 2000);
}

/* ---- echo and close reasons ------------------------------------------ */

static void echo_round_trip(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    assert_true(bytes_in(f, 5));
    char buf[8];
    assert_int_equal(read_full(fd, buf, 5, 2000), 5);
    assert_memory_equal(buf, "hello", 5);
    close(fd);
    assert_true(closed_n(f, 1));
}

static void peer_close_reports_reason_once_and_no_close_wait(void **state)
{
    struct fixture *f = *state;
    int fds[20];
    for (int i = 0; i < 20; i++) {
        fds[i] = client_connect(&f->srv.addr);
        assert_true(fds[i] >= 0);
    }
    assert_true(opened_n(f, 20));
    for (int i = 0; i < 20; i++)
        close(fds[i]);
    assert_true(closed_n(f, 20));
    assert_int_equal(f->srv.by_reason[NC_CLOSE_PEER], 20);
    assert_int_equal(f->srv.last_err, 0);
    assert_true(server_all_closed_once(&f->srv));
    /* The library closed each socket when the peer did. */
    assert_int_equal(count_tcp_state(port_of(f), TCP_CLOSE_WAIT_STATE), 0);
}

static void peer_reset_reports_reset(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_true(opened_n(f, 1));
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_RESET);
    assert_int_equal(f->srv.last_err, -ECONNRESET);
}

static int setup_idle(void **state)
{
    nc_listener_options o = { .conn.idle_timeout_ms = 50 };
    return setup_with(state, SERVER_ECHO, &o);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void idle_timeout_closes_quiet_connection(void **state)
{
    struct fixture *f = *state;
    uint64_t t0 = mono_ms();
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_true(closed_n(f, 1));
    assert_true(mono_ms() - t0 >= 50);
    assert_int_equal(f->srv.last_reason, NC_CLOSE_IDLE);
    char c;
    assert_int_equal(read_full(fd, &c, 1, 2000), 0);   /* end of stream */
    close(fd);
}

static int setup_close_in_data(void **state)
{
    return setup_with(state, SERVER_CLOSE_IN_DATA, NULL);
}

static void close_inside_on_data_flushes_then_closes(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    assert_true(closed_n(f, 1));
    char buf[4];
    assert_int_equal(read_full(fd, buf, 3, 2000), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(read_full(fd, buf, 1, 2000), 0);
    assert_int_equal(f->srv.last_reason, NC_CLOSE_LOCAL);
    assert_int_equal(f->srv.write_err, 0);
    close(fd);
}

static int setup_abort_in_data(void **state)
{
    return setup_with(state, SERVER_ABORT_IN_DATA, NULL);
}

static void abort_inside_on_data_resets_peer(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    assert_true(closed_n(f, 1));
    char c;
    assert_int_equal(read_full(fd, &c, 1, 2000), -ECONNRESET);
    assert_int_equal(f->srv.last_reason, NC_CLOSE_LOCAL);
    close(fd);
}

static int setup_close_in_open(void **state)
{
    return setup_with(state, SERVER_CLOSE_IN_OPEN, NULL);
}

static void close_inside_on_open(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_true(closed_n(f, 1));
    char c;
    assert_int_equal(read_full(fd, &c, 1, 2000), 0);
    assert_int_equal(f->srv.last_reason, NC_CLOSE_LOCAL);
    nc_listener_stats st;
    nc_listener_stats_get(f->srv.l, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.active, 0);
    close(fd);
}

static int setup_hoard(void **state)
{
    nc_listener_options o = { .conn.max_input = 1000 };
    return setup_with(state, SERVER_HOARD, &o);
}

static void unconsumed_input_over_max_input_closes(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    char buf[600];
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    assert_true(bytes_in(f, 600));
    assert_int_equal(f->srv.closed, 0);
    /* The same bytes come back with the new ones appended. */
    assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_ERROR);
    assert_int_equal(f->srv.last_err, -EMSGSIZE);
    close(fd);
}

/* ---- outgoing connections -------------------------------------------- */

struct client {
    unsigned long opened, closed;
    nc_close_reason reason;
    int err;
    char got[64];
    size_t ngot;
    size_t expect;
    unsigned long long bytes;
    bool read_paused_start;
};

static void cl_open(nc_conn *c, void *ud)
{
    struct client *cl = ud;
    cl->opened++;
    if (cl->read_paused_start)
        nc_conn_read_stop(c);
    if (cl->expect)
        nc_conn_write(c, "ping", 4);
}

static size_t cl_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct client *cl = ud;
    size_t n = len < sizeof(cl->got) - cl->ngot ? len : sizeof(cl->got) - cl->ngot;
    memcpy(cl->got + cl->ngot, data, n);
    cl->ngot += n;
    cl->bytes += len;
    if (cl->expect && cl->ngot >= cl->expect)
        nc_conn_close(c);
    return len;
}

static void cl_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    struct client *cl = ud;
    cl->closed++;
    cl->reason = reason;
    cl->err = err;
}

static const nc_conn_callbacks cl_cbs = {
    .on_open = cl_open, .on_data = cl_data, .on_close = cl_close,
};

/* The client's record lives on the test's stack: end it before returning. */
static void close_client(struct fixture *f, nc_conn *cc, struct client *cl)
{
    nc_conn_close(cc);
    struct count_goal g = { &cl->closed, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 5000));
}

static void connect_echo_and_close_locally(void **state)
{
    struct fixture *f = *state;
    char spec[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&f->srv.addr, spec, sizeof(spec)) > 0);
    struct client cl = { .expect = 4 };
    nc_conn *c = NULL;
    assert_int_equal(nc_connect(f->loop, spec, NULL, &cl_cbs, &cl, &c), 0);
    assert_non_null(c);
    /* Nothing runs from inside nc_connect itself. */
    assert_int_equal(cl.opened, 0);
    struct count_goal g = { &cl.closed, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 2000));
    assert_int_equal(cl.opened, 1);
    assert_memory_equal(cl.got, "ping", 4);
    assert_int_equal(cl.reason, NC_CLOSE_LOCAL);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_PEER);
}

static void connect_refused_reports_connect_failed(void **state)
{
    struct fixture *f = *state;
    /* A port nobody listens on: bound without listen(), then released. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    char spec[32];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", ntohs(sin.sin_port));
    close(fd);
    struct client cl = { 0 };
    assert_int_equal(nc_connect(f->loop, spec, NULL, &cl_cbs, &cl, NULL), 0);
    struct count_goal g = { &cl.closed, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 2000));
    assert_int_equal(cl.opened, 0);
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ECONNREFUSED);
}

static void connect_bad_endpoint_fails_synchronously(void **state)
{
    struct fixture *f = *state;
    struct client cl = { 0 };
    nc_conn *c = (nc_conn *)&cl;
    assert_int_equal(nc_connect(f->loop, "127.0.0.1:70000", NULL, &cl_cbs,
                                &cl, &c), -ERANGE);
    assert_ptr_equal(c, (nc_conn *)&cl);    /* untouched */
    assert_int_equal(nc_connect(f->loop, "*:7000", NULL, &cl_cbs, &cl, NULL),
                     -EINVAL);
    assert_int_equal(nc_connect(f->loop, "[::1", NULL, &cl_cbs, &cl, NULL),
                     -EINVAL);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(cl.closed + cl.opened, 0);
}

static void connect_to_unix_path_without_server_fails_through_on_close(void **state)
{
    struct fixture *f = *state;
    struct client cl = { 0 };
    assert_int_equal(nc_connect(f->loop, "unix:/nonexistent/nc.sock", NULL,
                                &cl_cbs, &cl, NULL), 0);
    assert_int_equal(cl.closed, 0);
    struct count_goal g = { &cl.closed, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 2000));
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ENOENT);
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, cl.err),
                           "no Unix socket at that path: the server is not "
                           "running, or it listens on another path"));
}

/* ---- what a failing connect says ------------------------------------- */

struct connect_said {
    const char *spec;
    const char *bind;        /* opts.bind, or NULL */
    int err;
    const char *message;     /* the errbuf, exactly */
    const char *explained;   /* how nc_explain(NC_OP_CONNECT, err) starts */
};

static void check_connect_says(nc_loop *loop, const struct connect_said *c,
                               struct client *cl)
{
    char why[256];
    nc_connect_options o = { .bind = c->bind, .errbuf = why,
                             .errbuf_len = sizeof(why) };
    nc_conn *conn = (nc_conn *)&o;

    strcpy(why, "junk");
    int rc = nc_connect(loop, c->spec, &o, &cl_cbs, cl, &conn);
    if (rc != c->err)
        fail_msg("%s: %s, not %s", c->spec, nc_errname(rc),
                 nc_errname(c->err));
    assert_ptr_equal(conn, (nc_conn *)&o);
    if (strcmp(why, c->message) != 0)
        fail_msg("%s: errbuf \"%s\", not \"%s\"", c->spec, why, c->message);
    const char *text = nc_explain(NC_OP_CONNECT, rc);
    if (strncmp(text, c->explained, strlen(c->explained)) != 0)
        fail_msg("%s: nc_explain says \"%s\"", c->spec, text);
}

static void failed_connect_names_the_fault_in_errbuf(void **state)
{
    struct fixture *f = *state;
    struct client cl = { 0 };
    const struct connect_said cases[] = {
        {":70000", NULL, -ERANGE, "port 70000 is out of range (0-65535)",
         "the port is out of range"},
        {"999.1.1.1:80", NULL, -EINVAL, "bad IPv4 address '999.1.1.1'",
         "invalid endpoint: the text is malformed"},
        {"*:7000", NULL, -EINVAL, "'*:7000' stands for all addresses, which "
         "cannot be connected to: name one, such as 127.0.0.1:7000",
         "invalid endpoint"},
        {"127.0.0.1:7", "192.0.2.123:0", -EADDRNOTAVAIL,
         "cannot bind local address 192.0.2.123:0: Cannot assign requested "
         "address", "no local address is available"},
        {"127.0.0.1:7", "nosuchif0:0", -ENODEV, "local endpoint (bind) "
         "'nosuchif0:0': unknown interface 'nosuchif0'",
         "unknown interface or scope"},
        {"127.0.0.1:7", "[::1]:0", -EAFNOSUPPORT, "local endpoint (bind) "
         "'[::1]:0' has no IPv4 address", "address family not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_connect_says(f->loop, &cases[i], &cl);
    if (if_nametoindex("eth99") == 0) {
        const struct connect_said eth99 = {
            "eth99:80", NULL, -ENODEV, "unknown interface 'eth99'",
            "unknown interface or scope"};
        check_connect_says(f->loop, &eth99, &cl);
    }
    /* None of them started anything. */
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(cl.opened + cl.closed, 0);

    /* A connect that starts empties the buffer; failures reported later
     * (the missing Unix socket) are on_close's, not the buffer's. */
    char why[64];
    nc_connect_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    strcpy(why, "junk");
    assert_int_equal(nc_connect(f->loop, "unix:/nonexistent/nc.sock", &o,
                                &cl_cbs, &cl, NULL), 0);
    assert_string_equal(why, "");
    struct count_goal g = { &cl.closed, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 2000));
    assert_int_equal(cl.err, -ENOENT);
    /* A short buffer holds the start of the line; size 0 is not written. */
    o.errbuf_len = 8;
    assert_int_equal(nc_connect(f->loop, ":70000", &o, &cl_cbs, &cl, NULL),
                     -ERANGE);
    assert_string_equal(why, "port 70");
    o.errbuf_len = 0;
    strcpy(why, "junk");
    assert_int_equal(nc_connect(f->loop, ":70000", &o, &cl_cbs, &cl, NULL),
                     -ERANGE);
    assert_string_equal(why, "junk");
}

/* ---- nc_connect_addr ------------------------------------------------- */

/* Connect with nc_connect_addr to the address a server on spec reports,
 * and get "ping" back; then, once the server is gone, connect again. */
static void connect_addr_round_trip(const char *spec, int err_when_gone)
{
    nc_loop *loop;
    struct server s;
    nc_addr a;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, spec, NULL, SERVER_ECHO), 0);
    assert_int_equal(nc_listener_addr(s.l, 0, &a), 0);

    struct client cl = { .expect = 4 };
    nc_conn *c = NULL;
    assert_int_equal(nc_connect_addr(loop, &a, NULL, &cl_cbs, &cl, &c), 0);
    assert_non_null(c);
    assert_int_equal(cl.opened + cl.closed, 0);   /* nothing runs inside */
    struct count_goal g = { &cl.closed, 1 };
    assert_true(run_until(loop, count_reached, &g, 2000));
    assert_int_equal(cl.opened, 1);
    assert_memory_equal(cl.got, "ping", 4);
    assert_int_equal(cl.reason, NC_CLOSE_LOCAL);
    struct count_goal sg = { &s.closed, 1 };
    assert_true(run_until(loop, count_reached, &sg, 2000));
    assert_int_equal(s.opened, 1);
    assert_int_equal(s.last_reason, NC_CLOSE_PEER);

    nc_listener_close(s.l);
    struct client gone = { 0 };
    assert_int_equal(nc_connect_addr(loop, &a, NULL, &cl_cbs, &gone, NULL), 0);
    struct count_goal gg = { &gone.closed, 1 };
    assert_true(run_until(loop, count_reached, &gg, 2000));
    assert_int_equal(gone.opened, 0);
    assert_int_equal(gone.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(gone.err, err_when_gone);
    nc_loop_free(loop);
    assert_true(server_all_closed_once(&s));
    server_free(&s);
}

static void connect_addr_ipv4(void **state)
{
    (void)state;
    connect_addr_round_trip("127.0.0.1:0", -ECONNREFUSED);
}

static void connect_addr_ipv6(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        printf("no IPv6 loopback here\n");
        skip();
    }
    connect_addr_round_trip("[::1]:0", -ECONNREFUSED);
}

static void connect_addr_unix(void **state)
{
    (void)state;
    char spec[80];
    snprintf(spec, sizeof(spec), "unix:/tmp/nc-test-connaddr-%d.sock",
             (int)getpid());
    /* The listener's close removed the path: nobody is there. */
    connect_addr_round_trip(spec, -ENOENT);
}

static void connect_addr_bad_address_changes_nothing(void **state)
{
    struct fixture *f = *state;
    struct client cl = { 0 };
    nc_conn *c = (nc_conn *)&cl;
    char why[128];
    nc_connect_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    nc_addr a;
    int fds = count_fds();

    assert_int_equal(nc_connect_addr(f->loop, NULL, &o, &cl_cbs, &cl, &c),
                     -EINVAL);
    assert_string_equal(why, "nc_connect_addr: a NULL loop or address");
    assert_int_equal(nc_connect_addr(NULL, &f->srv.addr, &o, &cl_cbs, &cl,
                                     &c), -EINVAL);
    memset(&a, 0, sizeof(a));   /* no family, no length */
    assert_int_equal(nc_connect_addr(f->loop, &a, &o, &cl_cbs, &cl, &c),
                     -EINVAL);
    assert_string_equal(why, "not an address to connect to: family 0, "
                             "length 0");
    a.u.sa.sa_family = AF_APPLETALK;
    a.len = sizeof(struct sockaddr);
    assert_int_equal(nc_connect_addr(f->loop, &a, &o, &cl_cbs, &cl, &c),
                     -EAFNOSUPPORT);
    a = f->srv.addr;            /* too short for its family */
    a.len = 4;
    assert_int_equal(nc_connect_addr(f->loop, &a, &o, &cl_cbs, &cl, &c),
                     -EINVAL);
    a.len = sizeof(a.u) + 1;    /* longer than any address */
    assert_int_equal(nc_connect_addr(f->loop, &a, &o, &cl_cbs, &cl, &c),
                     -EINVAL);
    memset(&a, 0, sizeof(a));   /* an unnamed Unix address */
    a.u.un.sun_family = AF_UNIX;
    a.len = sizeof(sa_family_t);
    assert_int_equal(nc_connect_addr(f->loop, &a, &o, &cl_cbs, &cl, &c),
                     -EINVAL);
    /* A good address with a bad bind fails the same way as nc_connect. */
    o.bind = "[::1]:0";
    assert_int_equal(nc_connect_addr(f->loop, &f->srv.addr, &o, &cl_cbs, &cl,
                                     &c), -EAFNOSUPPORT);
    assert_string_equal(why, "local endpoint (bind) '[::1]:0' has no IPv4 "
                             "address");

    assert_ptr_equal(c, (nc_conn *)&cl);
    assert_int_equal(count_fds(), fds);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(cl.opened + cl.closed, 0);
    assert_int_equal(f->srv.opened, 0);
}

/* A listener whose accept queue is full drops new SYNs: connects hang. */
static void connect_timeout_reports_etimedout(void **state)
{
    struct fixture *f = *state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
    }
    char spec[32];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", ntohs(sin.sin_port));
    struct client cl = { 0 };
    nc_connect_options o = { .conn.connect_timeout_ms = 100 };
    assert_int_equal(nc_connect(f->loop, spec, &o, &cl_cbs, &cl, NULL), 0);
    struct count_goal g = { &cl.closed, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 3000));
    assert_int_equal(cl.opened, 0);
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ETIMEDOUT);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}

/* ---- writes, backpressure, drain ------------------------------------- */

static void free_count(void *data, void *arg)
{
    free(data);
    (*(int *)arg)++;
}

struct owned_pred {
    struct client *cl;
    int *frees;
    size_t size;
};

static bool owned_done(void *arg)
{
    struct owned_pred *p = arg;
    return p->cl->bytes >= p->size && *p->frees == 1;
}

static void write_owned_sends_all_and_frees_once(void **state)
{
    struct fixture *f = *state;
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&f->srv.addr, spec, sizeof(spec));
    struct client cl = { 0 };
    nc_conn *cc = NULL;
    assert_int_equal(nc_connect(f->loop, spec, NULL, &cl_cbs, &cl, &cc), 0);
    assert_true(opened_n(f, 1));
    nc_conn *sc = f->srv.recs[0]->conn;
    size_t size = 4u << 20;
    char *big = malloc(size);
    assert_non_null(big);
    memset(big, 'z', size);
    int frees = 0;
    assert_int_equal(nc_conn_write_owned(sc, big, size, free_count, &frees), 0);
    struct owned_pred p = { &cl, &frees, size };
    assert_true(run_until(f->loop, owned_done, &p, 5000));
    assert_int_equal(cl.bytes, size);
    assert_int_equal(nc_conn_queued(sc), 0);
    close_client(f, cc, &cl);
}

static void write_errors_leave_connection_unchanged(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(opened_n(f, 1));
    nc_conn *sc = f->srv.recs[0]->conn;
    assert_int_equal(nc_conn_write(sc, NULL, 5), -EINVAL);
    assert_int_equal(nc_conn_write(NULL, "x", 1), -EINVAL);
    assert_int_equal(nc_conn_write(sc, "ok", 2), 0);
    char buf[2];
    assert_int_equal(read_full(fd, buf, 2, 2000), 2);
    assert_int_equal(nc_conn_shutdown(sc), 0);
    assert_int_equal(nc_conn_write(sc, "x", 1), -EPIPE);
    assert_int_equal(read_full(fd, buf, 1, 2000), 0);  /* half-closed */
    nc_conn_close(sc);
    assert_int_equal(nc_conn_write(sc, "x", 1), -ENOTCONN);
    nc_conn_close(sc);                                 /* repeated: no-op */
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_LOCAL);
    close(fd);
}

static bool drained_pred(void *arg)
{
    return ((struct fixture *)arg)->srv.drained > 0;
}

static void drain_fires_after_backpressure(void **state)
{
    struct fixture *f = *state;
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&f->srv.addr, spec, sizeof(spec));
    struct client cl = { .read_paused_start = true };
    nc_conn *cc = NULL;
    assert_int_equal(nc_connect(f->loop, spec, NULL, &cl_cbs, &cl, &cc), 0);
    assert_true(opened_n(f, 1));
    nc_conn *sc = f->srv.recs[0]->conn;
    /* Write until the queue is over the 64 KiB default high-water mark
     * (the kernel's socket buffers take the first megabytes). */
    size_t size = 1u << 20;
    char *big = calloc(1, size);
    assert_non_null(big);
    for (int i = 0; i < 64 && nc_conn_queued(sc) <= HIGH_WATER; i++)
        assert_int_equal(nc_conn_write(sc, big, size), 0);
    free(big);
    assert_true(nc_conn_queued(sc) > HIGH_WATER);
    for (int i = 0; i < 5; i++)
        nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(f->srv.drained, 0);
    nc_conn_read_start(cc);
    assert_true(run_until(f->loop, drained_pred, f, 5000));
    assert_true(nc_conn_queued(sc) <= HIGH_WATER / 4);   /* low water */
    close_client(f, cc, &cl);
}

static void tcp_info_of_open_connection_is_established(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(opened_n(f, 1));
    nc_tcp_info ti;
    assert_int_equal(nc_conn_tcp_info(f->srv.recs[0]->conn, &ti), 0);
    assert_string_equal(ti.state_name, "ESTABLISHED");
    nc_addr peer;
    assert_int_equal(nc_conn_peer_addr(f->srv.recs[0]->conn, &peer), 0);
    assert_true(nc_addr_is_loopback(&peer));
    close(fd);
    assert_true(closed_n(f, 1));
}

static int nodelay_of(int fd)
{
    int on = -1;
    socklen_t len = sizeof(on);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on;
}

/* Nagle is off by default: accepted connections inherit TCP_NODELAY from
 * their listening socket; an outgoing one sets it before its second send
 * (the first cannot be delayed: nothing is in flight yet). */
static void connections_send_without_nagle(void **state)
{
    struct fixture *f = *state;
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&f->srv.addr, spec, sizeof(spec));
    struct client cl = { 0 };
    nc_conn *cc = NULL;
    assert_int_equal(nc_connect(f->loop, spec, NULL, &cl_cbs, &cl, &cc), 0);
    assert_true(opened_n(f, 1));
    assert_int_equal(nodelay_of(nc_conn_fd(f->srv.recs[0]->conn)), 1);
    struct count_goal g = { &cl.opened, 1 };
    assert_true(run_until(f->loop, count_reached, &g, 2000));
    assert_int_equal(nc_conn_write(cc, "a", 1), 0);
    assert_int_equal(nodelay_of(nc_conn_fd(cc)), 0);
    assert_int_equal(nc_conn_write(cc, "b", 1), 0);
    assert_int_equal(nodelay_of(nc_conn_fd(cc)), 1);
    close_client(f, cc, &cl);
}

static int setup_half_open(void **state)
{
    nc_listener_options o = { .conn.keep_half_open = true };
    return setup_with(state, SERVER_ECHO, &o);
}

static void half_open_peer_gets_replies_then_close(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_int_equal(write(fd, "abc", 3), 3);
    shutdown(fd, SHUT_WR);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_PEER);
    char buf[4];
    assert_int_equal(read_full(fd, buf, 3, 2000), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(read_full(fd, buf, 1, 2000), 0);
    close(fd);
}

/* 64 MiB through an echo server to a reader slower than the writer: the
 * server's queue stays under high water plus one read. */
struct pump {
    nc_addr addr;
    size_t total;
    size_t echoed;
    int result;
};

static void *pump_thread(void *arg)
{
    struct pump *p = arg;
    int fd = client_connect(&p->addr);
    if (fd < 0) {
        p->result = fd;
        return NULL;
    }
    char out[65536], in[4096];
    size_t sent = 0;
    uint64_t deadline = mono_ms() + 60000;
    while (p->echoed < p->total && mono_ms() < deadline) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (sent < p->total)
            pfd.events |= POLLOUT;
        if (poll(&pfd, 1, 1000) <= 0)
            continue;
        if (pfd.revents & POLLOUT) {
            size_t n = p->total - sent < sizeof(out) ? p->total - sent : sizeof(out);
            for (size_t i = 0; i < n; i++)
                out[i] = (char)((sent + i) * 7);
            ssize_t w = send(fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (pfd.revents & POLLIN) {
            ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
            if (r <= 0)
                break;
            for (ssize_t i = 0; i < r; i++)
                if (in[i] != (char)((p->echoed + (size_t)i) * 7)) {
                    p->result = -EILSEQ;
                    close(fd);
                    return NULL;
                }
            p->echoed += (size_t)r;
        }
    }
    p->result = p->echoed == p->total ? 0 : -ETIMEDOUT;
    close(fd);
    return NULL;
}

static bool pump_done(void *arg)
{
    struct fixture *f = arg;
    return f->srv.closed > 0;
}

static void transfer_64mib_with_backpressure_bounds_memory(void **state)
{
    struct fixture *f = *state;
    struct pump p = { .addr = f->srv.addr,
                      .total = under_valgrind() ? (8u << 20) : (64u << 20) };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pump_thread, &p), 0);
    assert_true(run_until(f->loop, pump_done, f, 90000));
    pthread_join(th, NULL);
    assert_int_equal(p.result, 0);
    assert_int_equal(f->srv.bytes_in, p.total);
    /* high water plus at most one read's worth (64 KiB). */
    assert_true(f->srv.max_queued <= HIGH_WATER + 65536);
    assert_int_equal(f->srv.last_reason, NC_CLOSE_PEER);
}

static void peer_vanishing_mid_write_reports_reset_once(void **state)
{
    struct fixture *f = *state;
    int fd = client_connect(&f->srv.addr);
    assert_true(fd >= 0);
    assert_true(opened_n(f, 1));
    nc_conn *sc = f->srv.recs[0]->conn;
    /* Fill the kernel's buffers and queue more; the peer reads nothing. */
    size_t size = 1u << 20;
    char *big = calloc(1, size);
    assert_non_null(big);
    for (int i = 0; i < 64 && nc_conn_queued(sc) == 0; i++)
        assert_int_equal(nc_conn_write(sc, big, size), 0);
    free(big);
    assert_true(nc_conn_queued(sc) > 0);
    /* Closing with unread data makes the client's kernel send RST. */
    close(fd);
    assert_true(closed_n(f, 1));
    assert_int_equal(f->srv.last_reason, NC_CLOSE_RESET);
    assert_true(f->srv.last_err == -ECONNRESET || f->srv.last_err == -EPIPE);
    assert_true(server_all_closed_once(&f->srv));
}

static void connect_binds_requested_source_address(void **state)
{
    struct fixture *f = *state;
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&f->srv.addr, spec, sizeof(spec));
    struct client cl = { 0 };
    nc_conn *cc = NULL;
    nc_connect_options o = { .bind = "127.0.0.2:0" };
    assert_int_equal(nc_connect(f->loop, spec, &o, &cl_cbs, &cl, &cc), 0);
    assert_true(opened_n(f, 1));
    nc_addr peer;
    assert_int_equal(nc_conn_peer_addr(f->srv.recs[0]->conn, &peer), 0);
    char text[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&peer, text, sizeof(text)) > 0);
    assert_memory_equal(text, "127.0.0.2:", 10);
    close_client(f, cc, &cl);

    /* By interface name, with a port chosen here: lo's first address is
     * 127.0.0.1, the kernel's default source too, so the port is what
     * shows that the bind happened. */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t slen = sizeof(sin);
    assert_int_equal(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sin, &slen), 0);
    close(probe);
    char lo_spec[32];
    snprintf(lo_spec, sizeof(lo_spec), "lo:%u", ntohs(sin.sin_port));
    struct client cl2 = { 0 };
    o.bind = lo_spec;
    assert_int_equal(nc_connect(f->loop, spec, &o, &cl_cbs, &cl2, &cc), 0);
    assert_true(opened_n(f, 2));
    assert_int_equal(nc_conn_local_addr(cc, &peer), 0);
    assert_true(nc_addr_is_loopback(&peer));
    assert_int_equal(nc_addr_port(&peer), ntohs(sin.sin_port));
    close_client(f, cc, &cl2);

    /* A source address this host does not have: refused at once. */
    o.bind = "192.0.2.123:0";
    struct client cl3 = { 0 };
    assert_int_equal(nc_connect(f->loop, spec, &o, &cl_cbs, &cl3, NULL),
                     -EADDRNOTAVAIL);
}

static int setup_echo(void **state)
{
    return setup_with(state, SERVER_ECHO, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(echo_round_trip, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(peer_close_reports_reason_once_and_no_close_wait, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(peer_reset_reports_reset, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(idle_timeout_closes_quiet_connection, setup_idle, teardown),
        cmocka_unit_test_setup_teardown(close_inside_on_data_flushes_then_closes, setup_close_in_data, teardown),
        cmocka_unit_test_setup_teardown(abort_inside_on_data_resets_peer, setup_abort_in_data, teardown),
        cmocka_unit_test_setup_teardown(close_inside_on_open, setup_close_in_open, teardown),
        cmocka_unit_test_setup_teardown(unconsumed_input_over_max_input_closes, setup_hoard, teardown),
        cmocka_unit_test_setup_teardown(connect_echo_and_close_locally, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(connect_refused_reports_connect_failed, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(connect_bad_endpoint_fails_synchronously, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(connect_to_unix_path_without_server_fails_through_on_close, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(connect_timeout_reports_etimedout, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(failed_connect_names_the_fault_in_errbuf, setup_echo, teardown),
        cmocka_unit_test(connect_addr_ipv4),
        cmocka_unit_test(connect_addr_ipv6),
        cmocka_unit_test(connect_addr_unix),
        cmocka_unit_test_setup_teardown(connect_addr_bad_address_changes_nothing, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(write_owned_sends_all_and_frees_once, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(write_errors_leave_connection_unchanged, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(drain_fires_after_backpressure, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(tcp_info_of_open_connection_is_established, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(connections_send_without_nagle, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(half_open_peer_gets_replies_then_close, setup_half_open, teardown),
        cmocka_unit_test_setup_teardown(transfer_64mib_with_backpressure_bounds_memory, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(peer_vanishing_mid_write_reports_reset_once, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(connect_binds_requested_source_address, setup_echo, teardown),
    };
    return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
