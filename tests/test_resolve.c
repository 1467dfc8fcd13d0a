/*
 * test_resolve.c - host names: nc_resolve() and nc_connect() to a name,
 * against a real DNS server (dnsmasq) on this test's own loopback, in a
 * private world (dnsworld.h): its own /etc/resolv.conf and /etc/hosts
 * (bind mounts in a mount namespace of its own), its own network
 * namespace. The lookups run inside the loop (c-ares) or on helper
 * threads (built with CARES=no): the same cases must pass on both, and on
 * both loop backends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dnsworld.h"
#include "proc.h"
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOOKUPS (under_valgrind() ? 200 : 1000)

static const char *const records[] = {
    "--local=/test/", "--local=/example/",
    "--host-record=v4.test,127.0.0.1",
    "--host-record=v6.test,::1",
    "--host-record=both.test,127.0.0.1,::1",
    "--host-record=fromhosts.test,127.0.0.6",
    "--host-record=www.inner.corp.test,127.0.0.7",
    "--address=/many.test/127.0.0.8",
    "--host-record=alt.example,127.0.0.1",
    "--host-record=other.test,127.0.0.1",
    "--host-record=single,127.0.0.1",
    /* Forwarded to an upstream that fails (struct servfail). */
    "--server=/fail.test/127.0.0.9",
    NULL
};

static const char *world_why;
static bool have_cares;
static char certs[PATH_MAX];

struct fixture {
    nc_loop *loop;
    struct dnsmasq dns;
    int silent;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->silent = -1;
    f->dns.pid = -1;
    *state = f;
    if (!dnsworld_ready()) {
        dnsworld_skip(world_why);
        return 0;
    }
    dnsworld_resolv("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    dnsworld_hosts("127.0.0.1 localhost\n::1 localhost\n"
                   "127.0.0.5 fromhosts.test\n");
    int rc = dnsmasq_start(&f->dns, "127.0.0.1", records);
    if (rc < 0)
        dnsworld_skip(rc == -ENOENT ? "dnsmasq is not installed "
                      "(apt-get install dnsmasq-base)" : "dnsmasq did not start");
    assert_int_equal(nc_loop_new(&f->loop), 0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nc_loop_free(f->loop);
    dnsmasq_stop(&f->dns);
    if (f->silent >= 0)
        close(f->silent);
    free(f);
    return 0;
}

/* resolv.conf pointing at a server that never answers. */
static void use_silent_server(struct fixture *f)
{
    f->silent = silent_server("127.0.0.2");
    if (f->silent < 0)
        fail_msg("a silent server on 127.0.0.2:53: %s",
                 nc_strerror(f->silent));
    dnsworld_resolv("nameserver 127.0.0.2\noptions timeout:1 attempts:1\n");
}

/* ---- nc_resolve ------------------------------------------------------- */

struct answer {
    int calls;
    int err, err6, err4;
    size_t count;
    char addrs[8][NC_ADDRSTRLEN];
    char source[256];
    uint64_t elapsed_us;
    nc_resolve_req *cancel;    /* cancelled from the callback */
    nc_loop *loop;
};

static void got(nc_resolve_req *req, int err, const nc_resolve_result *res,
                void *ud)
{
    struct answer *a = ud;
    (void)req;
    a->calls++;
    a->err = err;
    a->err6 = res->err6;
    a->err4 = res->err4;
    a->count = res->count;
    a->elapsed_us = res->elapsed_us;
    snprintf(a->source, sizeof(a->source), "%s", res->source);
    for (size_t i = 0; i < res->count && i < 8; i++)
        assert_true(nc_addr_format(&res->addrs[i], a->addrs[i],
                                   sizeof(a->addrs[i])) > 0);
    if (a->cancel)
        nc_resolve_cancel(a->cancel);
}

static bool answered(void *arg)
{
    return ((struct answer *)arg)->calls > 0;
}

static void resolve(struct fixture *f, const char *name, nc_family family,
                    struct answer *a)
{
    memset(a, 0, sizeof(*a));
    assert_int_equal(nc_resolve(f->loop, name, family, got, a, NULL), 0);
    assert_int_equal(a->calls, 0);     /* never from inside the call */
    assert_true(run_until(f->loop, answered, a, 5000));
    assert_int_equal(a->calls, 1);
}

static void both_families_answer_ipv6_first(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    resolve(f, "both.test", NC_FAMILY_ANY, &a);
    assert_int_equal(a.err, 0);
    assert_int_equal(a.count, 2);
    assert_string_equal(a.addrs[0], "[::1]:0");
    assert_string_equal(a.addrs[1], "127.0.0.1:0");
    assert_int_equal(a.err6, 0);
    assert_int_equal(a.err4, 0);
    if (have_cares)
        assert_string_equal(a.source, "DNS server 127.0.0.1:53");
    else
        assert_string_equal(a.source, "getaddrinfo()");
    /* IPv4 first when asked. */
    resolve(f, "both.test", NC_FAMILY_IPV4_FIRST, &a);
    assert_int_equal(a.count, 2);
    assert_string_equal(a.addrs[0], "127.0.0.1:0");
    assert_string_equal(a.addrs[1], "[::1]:0");
}

static void one_family_missing_is_no_address_for_it(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    resolve(f, "v4.test", NC_FAMILY_ANY, &a);
    assert_int_equal(a.err, 0);
    assert_int_equal(a.count, 1);
    assert_string_equal(a.addrs[0], "127.0.0.1:0");
    assert_int_equal(a.err6, -NC_EDNS_NO_ADDRESS);
    resolve(f, "v4.test", NC_FAMILY_IPV6, &a);
    assert_int_equal(a.err, -NC_EDNS_NO_ADDRESS);
    assert_int_equal(a.err4, 1);       /* not asked */
    resolve(f, "v6.test", NC_FAMILY_IPV4, &a);
    assert_int_equal(a.err, -NC_EDNS_NO_ADDRESS);
    resolve(f, "v6.test", NC_FAMILY_IPV6, &a);
    assert_int_equal(a.err, 0);
    assert_string_equal(a.addrs[0], "[::1]:0");
}

static void unknown_name_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    resolve(f, "nope.test", NC_FAMILY_ANY, &a);
    assert_int_equal(a.err, -NC_EDNS_NOT_FOUND);
    assert_int_equal(a.count, 0);
    assert_string_equal(nc_errname(a.err), "NC_EDNS_NOT_FOUND");
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, a.err), "NXDOMAIN"));
}

static void server_failure_is_reported_as_such(void **state)
{
    struct fixture *f = *state;
    struct servfail up;
    struct answer a;
    assert_int_equal(servfail_start(&up, "127.0.0.9"), 0);
    resolve(f, "x.fail.test", NC_FAMILY_IPV4, &a);
    servfail_stop(&up);
    assert_true(up.answered >= 1);
    assert_int_equal(a.err, -NC_EDNS_SERVER_FAILED);
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, a.err), "SERVFAIL"));
}

static void tick(nc_timer *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
}

/* The server never answers: resolv.conf's timeout (1 s, one attempt)
 * ends the lookup, and the loop runs its timers all along. */
static void silent_server_times_out_without_blocking_the_loop(void **state)
{
    struct fixture *f = *state;
    struct answer a = {0};
    nc_timer *t;
    int ticks = 0;
    use_silent_server(f);
    assert_int_equal(nc_timer_new(f->loop, tick, &ticks, &t), 0);
    assert_int_equal(nc_timer_start(t, 20, 20), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(nc_resolve(f->loop, "v4.test", NC_FAMILY_IPV4, got, &a,
                                NULL), 0);
    assert_true(run_until(f->loop, answered, &a, 20000));
    uint64_t took = now_ms() - t0;
    nc_timer_free(t);
    assert_int_equal(a.err, have_cares ? -NC_EDNS_TIMEOUT
                                       : -NC_EDNS_SERVER_FAILED);
    assert_true(took >= 900);
    assert_true(took < (under_valgrind() ? 20000u : 6000u));
    /* About one tick per 20 ms passed while the server stayed silent. */
    assert_true(ticks >= (int)(took / 20) / (under_valgrind() ? 8 : 2));
    if (have_cares)
        assert_string_equal(a.source, "DNS server 127.0.0.2:53");
}

static void hosts_file_answers_before_dns(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    resolve(f, "fromhosts.test", NC_FAMILY_IPV4, &a);
    assert_int_equal(a.err, 0);
    assert_string_equal(a.addrs[0], "127.0.0.5:0");   /* not .6 */
    if (have_cares)
        assert_string_equal(a.source, "hosts file /etc/hosts");
    /* Rewritten, it is read again. */
    dnsworld_hosts("127.0.0.1 localhost\n127.0.0.15 fromhosts.test\n");
    resolve(f, "fromhosts.test", NC_FAMILY_IPV4, &a);
    assert_string_equal(a.addrs[0], "127.0.0.15:0");
}

static void search_domains_and_ndots_apply(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    /* One dot, ndots 2: the search domain first. */
    dnsworld_resolv("nameserver 127.0.0.1\nsearch corp.test\n"
                    "options ndots:2 timeout:1 attempts:1\n");
    resolve(f, "www.inner", NC_FAMILY_IPV4, &a);
    assert_int_equal(a.err, 0);
    assert_string_equal(a.addrs[0], "127.0.0.7:0");
}

static void literal_address_is_its_own_answer(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    resolve(f, "192.0.2.7", NC_FAMILY_ANY, &a);
    assert_int_equal(a.err, 0);
    assert_int_equal(a.count, 1);
    assert_string_equal(a.addrs[0], "192.0.2.7:0");
    assert_string_equal(a.source, "a literal address");
    resolve(f, "2001:db8::7", NC_FAMILY_IPV4, &a);
    assert_int_equal(a.err, -NC_EDNS_NO_ADDRESS);
}

static void bad_names_are_refused_at_once(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {"", "a b", "x/y", "[::1]", "a:80"};
    char longname[300];
    struct answer a = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(nc_resolve(f->loop, bad[i], NC_FAMILY_ANY, got, &a,
                                    NULL), -EINVAL);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(nc_resolve(f->loop, longname, NC_FAMILY_ANY, got, &a,
                                NULL), -EINVAL);
    assert_int_equal(nc_resolve(NULL, "a.test", NC_FAMILY_ANY, got, &a, NULL),
                     -EINVAL);
    assert_int_equal(nc_resolve(f->loop, "a.test", (nc_family)9, got, &a,
                                NULL), -EINVAL);
    assert_int_equal(nc_resolve(f->loop, "a.test", NC_FAMILY_ANY, NULL, &a,
                                NULL), -EINVAL);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(a.calls, 0);
}

struct many {
    int calls, ok;
};

static void many_got(nc_resolve_req *req, int err,
                     const nc_resolve_result *res, void *ud)
{
    struct many *m = ud;
    (void)req;
    m->calls++;
    if (err == 0 && res->count >= 1)
        m->ok++;
}

static bool all_answered(void *arg)
{
    return ((struct many *)arg)->calls >= LOOKUPS;
}

static void thousand_lookups_at_once_each_answer_once(void **state)
{
    struct fixture *f = *state;
    struct many m = {0};
    for (int i = 0; i < LOOKUPS; i++) {
        char name[64];
        snprintf(name, sizeof(name), "n%d.many.test", i);
        assert_int_equal(nc_resolve(f->loop, name, NC_FAMILY_ANY, many_got,
                                    &m, NULL), 0);
    }
    assert_true(run_until(f->loop, all_answered, &m, 20000));
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(m.calls, LOOKUPS);
    assert_int_equal(m.ok, LOOKUPS);
}

static void cancelled_lookup_never_calls_back(void **state)
{
    struct fixture *f = *state;
    struct answer a = {0}, b = {0};
    nc_resolve_req *req;
    use_silent_server(f);
    assert_int_equal(nc_resolve(f->loop, "v4.test", NC_FAMILY_ANY, got, &a,
                                &req), 0);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    nc_resolve_cancel(req);
    /* Another lookup to the same silent server ends after its timeout,
     * later than the cancelled one would have. */
    assert_int_equal(nc_resolve(f->loop, "v6.test", NC_FAMILY_ANY, got, &b,
                                NULL), 0);
    assert_true(run_until(f->loop, answered, &b, 8000));
    assert_int_equal(a.calls, 0);
    nc_resolve_cancel(NULL);
}

/* Two answers delivered in one pass: the first callback cancels the
 * second request, whose answer is already in. */
static void callback_cancels_a_request_already_answered(void **state)
{
    struct fixture *f = *state;
    struct answer a = {0}, b = {0};
    nc_resolve_req *rb;
    assert_int_equal(nc_resolve(f->loop, "fromhosts.test", NC_FAMILY_IPV4,
                                got, &a, NULL), 0);
    assert_int_equal(nc_resolve(f->loop, "fromhosts.test", NC_FAMILY_IPV4,
                                got, &b, &rb), 0);
    a.cancel = rb;
    assert_true(run_until(f->loop, answered, &a, 5000));
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
}

struct reentry {
    nc_loop *loop;
    nc_listener *l;
    int calls, second_calls;
    struct answer second;
};

static void second_got(nc_resolve_req *req, int err,
                       const nc_resolve_result *res, void *ud)
{
    struct reentry *r = ud;
    r->second_calls++;
    got(req, err, res, &r->second);
}

static void reentering_got(nc_resolve_req *req, int err,
                           const nc_resolve_result *res, void *ud)
{
    struct reentry *r = ud;
    (void)req;
    (void)res;
    (void)err;
    r->calls++;
    nc_listener_close(r->l);           /* the loop's listener */
    r->l = NULL;
    nc_loop_free(r->loop);             /* does nothing from inside */
    assert_int_equal(nc_resolve(r->loop, "v6.test", NC_FAMILY_ANY,
                                second_got, r, NULL), 0);
}

static bool second_answered(void *arg)
{
    return ((struct reentry *)arg)->second_calls > 0;
}

static void callback_may_close_a_listener_and_look_up_again(void **state)
{
    struct fixture *f = *state;
    struct reentry r = { .loop = f->loop };
    nc_conn_callbacks cbs = {0};
    assert_int_equal(nc_listen(f->loop, "127.0.0.1:0", NULL, &cbs, NULL,
                               &r.l), 0);
    assert_int_equal(nc_resolve(f->loop, "v4.test", NC_FAMILY_ANY,
                                reentering_got, &r, NULL), 0);
    assert_true(run_until(f->loop, second_answered, &r, 5000));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.second_calls, 1);
    assert_string_equal(r.second.addrs[0], "[::1]:0");
    /* Nothing is left: NC_RUN_DEFAULT returns. */
    assert_int_equal(nc_loop_run(f->loop, NC_RUN_DEFAULT), 0);
}

static void freeing_the_loop_cancels_pending_lookups_once(void **state)
{
    struct fixture *f = *state;
    struct answer a = {0};
    use_silent_server(f);
    assert_int_equal(nc_resolve(f->loop, "v4.test", NC_FAMILY_ANY, got, &a,
                                NULL), 0);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    nc_loop_free(f->loop);
    f->loop = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, -ECANCELED);
}

static void pending_lookup_keeps_the_loop_running(void **state)
{
    struct fixture *f = *state;
    struct answer a = {0};
    assert_int_equal(nc_resolve(f->loop, "both.test", NC_FAMILY_ANY, got, &a,
                                NULL), 0);
    /* NC_RUN_DEFAULT runs until the answer, then has nothing left. */
    assert_int_equal(nc_loop_run(f->loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, 0);
}

/* ---- nc_connect to a name -------------------------------------------- */

/* Close the server and its connections, then free its records. */
static void server_done(struct fixture *f, struct server *s)
{
    nc_listener_close(s->l);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_true(server_all_closed_once(s));
    server_free(s);
}

struct client {
    int opens, closes;
    nc_close_reason reason;
    int err;
    int fd_at_open;
    char peer[NC_ADDRSTRLEN];
    char explained[1024];
    char server_name[256];
    nc_conn *conn;
    const char *then;          /* connect to this name from on_close */
    nc_loop *loop;
    struct client *next;
};

static void cl_open(nc_conn *c, void *ud)
{
    struct client *cl = ud;
    nc_addr a;
    nc_tls_info info;
    cl->opens++;
    cl->fd_at_open = nc_conn_fd(c);
    if (nc_conn_peer_addr(c, &a) == 0)
        nc_addr_format(&a, cl->peer, sizeof(cl->peer));
    if (nc_conn_tls_info(c, &info) == 0)
        snprintf(cl->server_name, sizeof(cl->server_name), "%s",
                 info.server_name);
    nc_conn_explain(c, cl->explained, sizeof(cl->explained));
    nc_conn_close(c);
}

static const nc_conn_callbacks cl_cbs;

static void cl_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct client *cl = ud;
    cl->closes++;
    cl->reason = reason;
    cl->err = err;
    if (!cl->opens)
        nc_conn_explain(c, cl->explained, sizeof(cl->explained));
    assert_int_equal(nc_conn_fd(c), -1);
    if (cl->then) {
        assert_int_equal(nc_connect(cl->loop, cl->then, NULL, &cl_cbs,
                                    cl->next, NULL), 0);
        cl->then = NULL;
    }
}

static const nc_conn_callbacks cl_cbs = {
    .on_open = cl_open,
    .on_close = cl_close,
};

static bool client_closed(void *arg)
{
    return ((struct client *)arg)->closes > 0;
}

static void connect_name(struct fixture *f, const char *endpoint,
                         const nc_connect_options *o, struct client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->fd_at_open = -2;
    assert_int_equal(nc_connect(f->loop, endpoint, o, &cl_cbs, cl,
                                &cl->conn), 0);
    /* No socket yet: the name is being looked up. */
    assert_int_equal(nc_conn_fd(cl->conn), -1);
    assert_true(run_until(f->loop, client_closed, cl, 5000));
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(cl->closes, 1);
}

static void connect_by_name_prefers_ipv6_and_opens_once(void **state)
{
    struct fixture *f = *state;
    struct server s = {0};
    struct client cl;
    char ep[64];
    assert_int_equal(server_start(&s, f->loop, "localhost:0", NULL,
                                  SERVER_ECHO), 0);
    snprintf(ep, sizeof(ep), "both.test:%u", nc_addr_port(&s.addr));
    connect_name(f, ep, NULL, &cl);
    assert_int_equal(cl.opens, 1);
    assert_int_equal(cl.reason, NC_CLOSE_LOCAL);
    assert_true(cl.fd_at_open >= 0);
    char want[64];
    snprintf(want, sizeof(want), "[::1]:%u", nc_addr_port(&s.addr));
    assert_string_equal(cl.peer, want);
    char said[192];
    snprintf(said, sizeof(said), "connected to %s at %s", ep, want);
    if (strstr(cl.explained, said) != cl.explained)
        fail_msg("nc_conn_explain: %s", cl.explained);
    /* IPv4 first, when asked. */
    nc_connect_options o = { .family = NC_FAMILY_IPV4_FIRST };
    connect_name(f, ep, &o, &cl);
    snprintf(want, sizeof(want), "127.0.0.1:%u", nc_addr_port(&s.addr));
    assert_string_equal(cl.peer, want);
    server_done(f, &s);
}

static void refused_everywhere_names_every_address(void **state)
{
    struct fixture *f = *state;
    struct client cl;
    nc_loop_stats st;
    /* A port nobody listens on, on both loopback addresses. */
    connect_name(f, "both.test:9", NULL, &cl);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ECONNREFUSED);
    if (!strstr(cl.explained, "could not connect to both.test:9: ") ||
        !strstr(cl.explained, "[::1]:9 was refused") ||
        !strstr(cl.explained, "127.0.0.1:9 was refused") ||
        !strstr(cl.explained, "the name was looked up in"))
        fail_msg("nc_conn_explain: %s", cl.explained);
    assert_int_equal(nc_loop_stats_get(f->loop, &st), 0);
    assert_int_equal(st.connect_failed, 1);
    assert_int_equal(st.connected, 0);
    assert_int_equal(st.open, 0);
}

static void unknown_name_fails_the_connect_once(void **state)
{
    struct fixture *f = *state;
    struct client cl;
    connect_name(f, "nope.test:80", NULL, &cl);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -NC_EDNS_NOT_FOUND);
    if (!strstr(cl.explained, "could not connect to nope.test:80: No such "
                              "host name"))
        fail_msg("nc_conn_explain: %s", cl.explained);
}

static void close_during_the_lookup_reports_local_once(void **state)
{
    struct fixture *f = *state;
    struct client cl = {0};
    nc_conn *c;
    use_silent_server(f);
    assert_int_equal(nc_connect(f->loop, "v4.test:80", NULL, &cl_cbs, &cl,
                                &c), 0);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(nc_conn_write(c, "x", 1), -ENOTCONN);
    nc_addr a;
    assert_int_equal(nc_conn_peer_addr(c, &a), -ENOTCONN);
    nc_conn_read_stop(c);              /* no socket to change: nothing */
    nc_conn_read_start(c);
    nc_conn_close(c);
    nc_conn_close(c);
    assert_true(run_until(f->loop, client_closed, &cl, 2000));
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_LOCAL);
    if (!strstr(cl.explained, "while looking the name up"))
        fail_msg("nc_conn_explain: %s", cl.explained);
}

static void connect_timeout_covers_the_lookup(void **state)
{
    struct fixture *f = *state;
    struct client cl;
    nc_connect_options o = { .conn.connect_timeout_ms = 200 };
    use_silent_server(f);
    uint64_t t0 = now_ms();
    connect_name(f, "v4.test:80", &o, &cl);
    uint64_t took = now_ms() - t0;
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ETIMEDOUT);
    assert_true(took >= 200);
    /* Not the DNS timeout (1 s). */
    assert_true(took < (under_valgrind() ? 3000u : 900u));
    if (!strstr(cl.explained, "within the connect timeout (200 ms): the "
                              "name was still being looked up"))
        fail_msg("nc_conn_explain: %s", cl.explained);
}

static void shutdown_during_the_lookup_closes_it(void **state)
{
    struct fixture *f = *state;
    struct client cl = {0};
    use_silent_server(f);
    assert_int_equal(nc_connect(f->loop, "v4.test:80", NULL, &cl_cbs, &cl,
                                NULL), 0);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(nc_loop_shutdown(f->loop, 1000), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(nc_loop_run(f->loop, NC_RUN_FOREVER), 0);
    assert_true(now_ms() - t0 < (under_valgrind() ? 3000u : 900u));
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.reason, NC_CLOSE_SHUTDOWN);
}

static void freeing_the_loop_during_the_lookup_closes_once(void **state)
{
    struct fixture *f = *state;
    struct client cl = {0};
    use_silent_server(f);
    assert_int_equal(nc_connect(f->loop, "v4.test:80", NULL, &cl_cbs, &cl,
                                NULL), 0);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    nc_loop_free(f->loop);
    f->loop = NULL;
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.reason, NC_CLOSE_SHUTDOWN);
}

/* on_close of a failed name connects to another name. */
static void on_close_may_connect_to_another_name(void **state)
{
    struct fixture *f = *state;
    struct server s = {0};
    struct client second = {0};
    struct client cl;
    char ep[64];
    assert_int_equal(server_start(&s, f->loop, "127.0.0.1:0", NULL,
                                  SERVER_ECHO), 0);
    snprintf(ep, sizeof(ep), "v4.test:%u", nc_addr_port(&s.addr));
    memset(&cl, 0, sizeof(cl));
    cl.then = ep;
    cl.loop = f->loop;
    cl.next = &second;
    assert_int_equal(nc_connect(f->loop, "nope.test:80", NULL, &cl_cbs, &cl,
                                NULL), 0);
    assert_true(run_until(f->loop, client_closed, &second, 5000));
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.err, -NC_EDNS_NOT_FOUND);
    assert_int_equal(second.opens, 1);
    assert_int_equal(second.closes, 1);
    server_done(f, &s);
}

static void name_grammar_keeps_interfaces_and_literals(void **state)
{
    struct fixture *f = *state;
    char why[256];
    nc_connect_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    struct client cl = {0};
    /* A word without a dot is an interface: refused at once. */
    assert_int_equal(nc_connect(f->loop, "nosuchif0:80", &o, &cl_cbs, &cl,
                                NULL), -ENODEV);
    assert_string_equal(why, "unknown interface 'nosuchif0'");
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, -ENODEV),
                           "example.com:443"));
    /* A name with a bad port is refused at once, saying so. */
    assert_int_equal(nc_connect(f->loop, "v4.test:99999", &o, &cl_cbs, &cl,
                                NULL), -ERANGE);
    assert_string_equal(why, "port 99999 is out of range (0-65535)");
    o.family = (nc_family)7;
    assert_int_equal(nc_connect(f->loop, "v4.test:80", &o, &cl_cbs, &cl,
                                NULL), -EINVAL);
    o.family = NC_FAMILY_ANY;
    o.bind = "nosuchif0:0";
    assert_int_equal(nc_connect(f->loop, "v4.test:80", &o, &cl_cbs, &cl,
                                NULL), -ENODEV);
    o.bind = NULL;
    /* The loopback interface stays an interface. */
    nc_endpoint ep;
    assert_int_equal(nc_endpoint_parse(&ep, "lo:80", NULL, 0), 0);
    assert_int_equal(ep.kind, NC_EP_IFACE);
    /* nc_listen never looks names up. */
    nc_listener *l;
    nc_conn_callbacks none = {0};
    assert_int_equal(nc_listen(f->loop, "v4.test:0", NULL, &none, NULL, &l),
                     -ENODEV);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(cl.opens + cl.closes, 0);
    /* An absolute single label is a name. */
    connect_name(f, "single.:9", NULL, &cl);
    assert_int_equal(cl.err, -ECONNREFUSED);
}

/* ---- TLS follows the name -------------------------------------------- */

static const char *cert(const char *name)
{
    static char path[4][PATH_MAX + 32];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, PATH_MAX + 32, "%s/%s", certs, name);
    return p;
}

/* A TLS server's own callbacks: support.c's server takes every ud for
 * a connection record, and a failed handshake's on_close has the
 * listener's. */
static void tls_srv_close(nc_conn *c, nc_close_reason reason, int err,
                          void *ud)
{
    (void)c;
    (void)reason;
    (void)err;
    (*(int *)ud)++;
}

static void tls_checks_the_name_connected_to(void **state)
{
    struct fixture *f = *state;
    nc_tls_options so = { .cert_file = cert("alt.pem"),
                          .key_file = cert("alt.key") };
    nc_tls_options co = { .ca_file = cert("ca.pem") };
    nc_tls_ctx *sctx, *cctx;
    if (nc_tls_server_new(&so, &sctx, NULL, 0) == -ENOTSUP) {
        skip();
        return;
    }
    assert_int_equal(nc_tls_client_new(&co, &cctx, NULL, 0), 0);
    nc_listener_options lo = { .tls = sctx };
    nc_conn_callbacks scbs = { .on_close = tls_srv_close };
    nc_listener *l;
    nc_addr sa;
    int server_closes = 0;
    struct client cl;
    char ep[64];
    assert_int_equal(nc_listen(f->loop, "127.0.0.1:0", &lo, &scbs,
                               &server_closes, &l), 0);
    assert_int_equal(nc_listener_addr(l, 0, &sa), 0);
    nc_connect_options o = { .tls = cctx };
    snprintf(ep, sizeof(ep), "alt.example:%u", nc_addr_port(&sa));
    connect_name(f, ep, &o, &cl);
    assert_int_equal(cl.opens, 1);
    assert_string_equal(cl.server_name, "alt.example");
    /* Another name for the same server: the certificate does not match. */
    snprintf(ep, sizeof(ep), "other.test:%u", nc_addr_port(&sa));
    connect_name(f, ep, &o, &cl);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_TLS);
    assert_int_equal(cl.err, -NC_ETLS_CERT_NAME);
    /* Unless the options name the one it has. */
    o.server_name = "alt.example";
    connect_name(f, ep, &o, &cl);
    assert_int_equal(cl.opens, 1);
    nc_listener_close(l);
    nc_loop_run(f->loop, NC_RUN_NOWAIT);
    assert_int_equal(server_closes, 3);
    nc_tls_ctx_free(cctx);
    nc_tls_ctx_free(sctx);
}

/* ---- the examples --------------------------------------------------- */

static void doctor_resolve_says_source_time_and_first_family(void **state)
{
    struct proc *p = proc_start("netcore-doctor", "resolve", "both.test",
                                NULL);
    (void)state;
    assert_int_equal(proc_finish(p), 0);
    if (!strstr(p->buf[OUT], "both.test: 2 addresses, from ") ||
        !strstr(p->buf[OUT], " ms\n") ||
        !strstr(p->buf[OUT], "Happy Eyeballs (nc_connect) would try IPv6 "
                             "first (::1)"))
        fail_msg("netcore-doctor resolve said:\n%s", p->buf[OUT]);
    p = proc_start("netcore-doctor", "resolve", "nope.test", NULL);
    assert_int_equal(proc_finish(p), 1);
    if (!strstr(p->buf[OUT], "nope.test: No such host name "
                             "(NC_EDNS_NOT_FOUND), from "))
        fail_msg("netcore-doctor resolve said:\n%s", p->buf[OUT]);
}

static void echo_client_and_doctor_connect_by_name(void **state)
{
    struct proc *srv = proc_start("echo-server", "--listen", "localhost:0",
                                  NULL);
    char target[64];
    (void)state;
    snprintf(target, sizeof(target), "both.test:%u", listen_port(srv));
    struct proc *p = proc_start("echo-client", target, "--message", "hello",
                                NULL);
    assert_int_equal(proc_finish(p), 0);
    assert_string_equal(p->buf[OUT], "hello\n");
    p = proc_start("netcore-doctor", "connect", target, NULL);
    assert_int_equal(proc_finish(p), 0);
    if (!strstr(p->buf[OUT], "at [::1]:"))
        fail_msg("netcore-doctor connect said:\n%s", p->buf[OUT]);
    proc_stop(srv, SIGTERM);
    /* Nothing listens on port 9: both addresses are named. */
    p = proc_start("echo-client", "both.test:9", "--message", "x", NULL);
    assert_int_equal(proc_finish(p), 1);
    if (!strstr(p->buf[ERR], "echo-client: could not connect to both.test:9: "
                             "[::1]:9 was refused (nothing listens on that "
                             "port there), 127.0.0.1:9 was refused"))
        fail_msg("echo-client said:\n%s", p->buf[ERR]);
}

static int make_certs(void **state)
{
    if (proc_setup(state) != 0)
        return -1;
    char tmpl[] = "/tmp/nc-test-resolve.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(certs, sizeof(certs), "%s", tmpl);
    const char *root = getenv("NC_SOURCE_DIR");
    char cmd[PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/tls-certs.sh' '%s'",
             root ? root : ".", certs);
    return system(cmd) == 0 ? 0 : -1;
}

static int remove_certs(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    world_why = dnsworld_enter();
    have_cares = strncmp(nc_resolver_name(), "c-ares", 6) == 0;
    const struct CMUnitTest tests[] = {
#define CASE(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        CASE(both_families_answer_ipv6_first),
        CASE(one_family_missing_is_no_address_for_it),
        CASE(unknown_name_is_not_found),
        CASE(server_failure_is_reported_as_such),
        CASE(silent_server_times_out_without_blocking_the_loop),
        CASE(hosts_file_answers_before_dns),
        CASE(search_domains_and_ndots_apply),
        CASE(literal_address_is_its_own_answer),
        CASE(bad_names_are_refused_at_once),
        CASE(thousand_lookups_at_once_each_answer_once),
        CASE(cancelled_lookup_never_calls_back),
        CASE(callback_cancels_a_request_already_answered),
        CASE(callback_may_close_a_listener_and_look_up_again),
        CASE(freeing_the_loop_cancels_pending_lookups_once),
        CASE(pending_lookup_keeps_the_loop_running),
        CASE(connect_by_name_prefers_ipv6_and_opens_once),
        CASE(refused_everywhere_names_every_address),
        CASE(unknown_name_fails_the_connect_once),
        CASE(close_during_the_lookup_reports_local_once),
        CASE(connect_timeout_covers_the_lookup),
        CASE(shutdown_during_the_lookup_closes_it),
        CASE(freeing_the_loop_during_the_lookup_closes_once),
        CASE(on_close_may_connect_to_another_name),
        CASE(name_grammar_keeps_interfaces_and_literals),
        CASE(tls_checks_the_name_connected_to),
        CASE(doctor_resolve_says_source_time_and_first_family),
        CASE(echo_client_and_doctor_connect_by_name),
#undef CASE
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
