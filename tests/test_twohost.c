/*
 * test_twohost.c - the field report's two-VM scenario (PITFALLS.md 1 and 2)
 * on two hosts made of network namespaces: "server" (nctw0, 192.0.2.1/24,
 * 2001:db8::1/64) and "client" (nctw1, 192.0.2.2/24, 2001:db8::2/64),
 * joined by a veth pair.
 *
 * Each case builds both hosts afresh. The test process unshares two
 * anonymous namespaces and keeps a descriptor for each; a socket belongs
 * to the namespace current when it was created, so one loop drives the
 * server (created inside "server") and its clients (created inside
 * "client") while every packet crosses the veth pair, each host's own
 * firewall and TCP table. Nothing is named: the namespaces, the veth pair
 * and the firewall rules vanish with the descriptors, even after a crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT 7000
#define NPEERS 20
#define CONNECT_WAIT_MS 3000   /* covers one SYN retransmission (1 s) */
#define LINK_WAIT_MS 3000

/* ---- fixture: the two hosts and what lives in them -------------------- */

/* One client connection: sends msg when open, closes once it is echoed. */
struct peer {
    const char *msg;
    bool opened;
    int closes;
    nc_close_reason reason;
    int err;
    char local[NC_ADDRSTRLEN];
    char got[64];
    size_t ngot;
};

static struct {
    int home, srv, cli;      /* namespace descriptors: ours, the hosts' */
    char ip[PATH_MAX], nft[PATH_MAX];
    nc_loop *loop;
    struct server server;
    struct peer peers[NPEERS];
} T = { .home = -1, .srv = -1, .cli = -1 };

static void skip_or_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void skip_or_fail(const char *fmt, ...)
{
    const char *ci = getenv("CI");
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (ci != NULL && strcmp(ci, "true") == 0)
        fail_msg("two-host test cannot run with CI=true: %s", why);
    print_message("SKIP: %s (this test needs root, `ip`, `nft` and network "
                  "namespaces)\n", why);
    skip();
}

/* An executable called name in PATH or an sbin directory (which a
 * non-login PATH may lack). */
static bool find_tool(const char *name, char *out, size_t len)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    char *save = NULL;

    snprintf(dirs, sizeof(dirs), "%s:/usr/local/sbin:/usr/sbin:/sbin",
             env ? env : "/usr/local/bin:/usr/bin:/bin");
    for (char *d = strtok_r(dirs, ":", &save); d != NULL;
         d = strtok_r(NULL, ":", &save)) {
        if (*d == '\0')
            continue;
        snprintf(out, len, "%s/%s", d, name);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

/* Feed script to `tool args` on its standard input, in the current
 * namespace; true if it succeeded. Its errors go to our stderr. */
static bool feed(const char *tool, const char *args, const char *script)
{
    char cmd[PATH_MAX + 64];
    FILE *p;
    int status;

    snprintf(cmd, sizeof(cmd), "'%s' %s", tool, args);
    fflush(NULL);
    p = popen(cmd, "w");
    if (p == NULL)
        return false;
    fputs(script, p);
    status = pclose(p);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void enter(int ns)
{
    assert_int_equal(setns(ns, CLONE_NEWNET), 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait until name (in the current namespace) is RUNNING: carrier reaches
 * the flags through the kernel's link watcher, a little after "up". Link
 * notifications wake us; the subscription comes before the first look, so
 * none is missed. */
static bool wait_running(const char *name)
{
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
                              .nl_groups = RTMGRP_LINK };
    uint64_t deadline = now_ms() + LINK_WAIT_MS;
    struct ifreq ifr;
    bool running = false;
    int nl, fd;

    nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                NETLINK_ROUTE);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (nl < 0 || fd < 0 ||
        bind(nl, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    for (;;) {
        struct pollfd p = { .fd = nl, .events = POLLIN };
        char drain[8192];
        uint64_t now;
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
            break;
        if (ifr.ifr_flags & IFF_RUNNING) {
            running = true;
            break;
        }
        now = now_ms();
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) < 0)
            break;
        while (recv(nl, drain, sizeof(drain), 0) > 0)
            continue;
    }
out:
    if (nl >= 0)
        close(nl);
    if (fd >= 0)
        close(fd);
    return running;
}

/* Build both hosts and a loop; skips (or fails with CI=true) when the
 * environment cannot. Ends inside the server host. */
static void hosts_up(void)
{
    char script[1024];
    int ns[2];

    if (geteuid() != 0) {
        skip_or_fail("not running as root");
        return;
    }
    if (!find_tool("ip", T.ip, sizeof(T.ip))) {
        skip_or_fail("the `ip` command (iproute2) is not installed");
        return;
    }
    if (!find_tool("nft", T.nft, sizeof(T.nft))) {
        skip_or_fail("the `nft` command (nftables) is not installed");
        return;
    }
    T.home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(T.home >= 0);
    for (int i = 0; i < 2; i++) {
        if (unshare(CLONE_NEWNET) != 0) {
            skip_or_fail("unshare(CLONE_NEWNET): %s", strerror(errno));
            return;
        }
        ns[i] = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        assert_true(ns[i] >= 0);
    }
    T.cli = ns[0];
    T.srv = ns[1];

    /* In the server host: the pair, with its far end created directly in
     * the client host, and no automatic link-local addresses. Both
     * namespaces would number their end 2, and a veth whose peer has its
     * own index looks to the kernel's link watcher like a plain device,
     * whose carrier it raises only after a one-second batching delay. */
    snprintf(script, sizeof(script),
             "link set lo up\n"
             "link add nctw0 index 11 type veth peer name nctw1 index 12 "
             "netns /proc/%d/fd/%d\n"
             "link set nctw0 addrgenmode none\n"
             "addr add 192.0.2.1/24 dev nctw0\n"
             "addr add 2001:db8::1/64 dev nctw0 nodad\n"
             "link set nctw0 up\n",
             (int)getpid(), T.cli);
    if (!feed(T.ip, "-batch -", script)) {
        skip_or_fail("could not build the server host with `ip` (veth)");
        return;
    }
    enter(T.cli);
    if (!feed(T.ip, "-batch -",
              "link set lo up\n"
              "link set nctw1 addrgenmode none\n"
              "addr add 192.0.2.2/24 dev nctw1\n"
              "addr add 2001:db8::2/64 dev nctw1 nodad\n"
              "link set nctw1 up\n")) {
        skip_or_fail("could not build the client host with `ip`");
        return;
    }
    assert_true(wait_running("nctw1"));
    enter(T.srv);
    assert_true(wait_running("nctw0"));
    assert_int_equal(nc_loop_new(&T.loop), 0);
}

static int hosts_down(void **state)
{
    int rc = 0;

    (void)state;
    /* The loop first: closing the server's connections reports to its
     * records. */
    nc_loop_free(T.loop);
    T.loop = NULL;
    server_free(&T.server);
    memset(T.peers, 0, sizeof(T.peers));
    if (T.home >= 0 && setns(T.home, CLONE_NEWNET) != 0)
        rc = -1;
    for (int *fd = &T.home; fd <= &T.cli; fd++) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
    }
    return rc;
}

/* The server host rejects or drops (verdict) TCP to PORT, as firewalld
 * does. */
static void server_firewall(const char *verdict)
{
    char rules[512];

    enter(T.srv);
    snprintf(rules, sizeof(rules),
             "table inet nctw {\n"
             "  chain input {\n"
             "    type filter hook input priority 0; policy accept;\n"
             "    tcp dport %d %s\n"
             "  }\n"
             "}\n", PORT, verdict);
    if (!feed(T.nft, "-f -", rules))
        skip_or_fail("could not load an nftables rule (`nft -f`)");
}

/* ---- clients ---------------------------------------------------------- */

static void peer_open(nc_conn *c, void *ud)
{
    struct peer *p = ud;
    nc_addr a;

    p->opened = true;
    if (nc_conn_local_addr(c, &a) == 0)
        nc_addr_format(&a, p->local, sizeof(p->local));
    if (p->msg != NULL && nc_conn_write(c, p->msg, strlen(p->msg)) < 0)
        nc_conn_abort(c);
}

static size_t peer_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct peer *p = ud;
    size_t room = sizeof(p->got) - 1 - p->ngot;
    size_t n = len < room ? len : room;

    memcpy(p->got + p->ngot, data, n);
    p->ngot += n;
    p->got[p->ngot] = '\0';
    if (p->msg != NULL && p->ngot >= strlen(p->msg))
        nc_conn_close(c);
    return len;
}

static void peer_close(nc_conn *c, nc_close_reason reason, int err,
                       void *ud)
{
    struct peer *p = ud;

    (void)c;
    p->closes++;
    p->reason = reason;
    p->err = err;
}

static const nc_conn_callbacks peer_cbs = {
    .on_open = peer_open,
    .on_data = peer_data,
    .on_close = peer_close,
};

/* Start peer i toward endpoint from the current namespace. */
static struct peer *peer_start(size_t i, const char *endpoint,
                               const char *msg,
                               const nc_connect_options *opts)
{
    struct peer *p = &T.peers[i];

    memset(p, 0, sizeof(*p));
    p->msg = msg;
    assert_int_equal(nc_connect(T.loop, endpoint, opts, &peer_cbs, p, NULL),
                     0);
    return p;
}

/* Predicate: the first n peers closed and the server saw server_closes
 * closes. */
struct settled {
    size_t n;
    unsigned long server_closes;
};

static bool all_settled(void *arg)
{
    const struct settled *s = arg;

    for (size_t i = 0; i < s->n; i++)
        if (T.peers[i].closes == 0)
            return false;
    return T.server.closed >= s->server_closes;
}

static void settle(size_t n, unsigned long server_closes, unsigned ms)
{
    struct settled s = { n, server_closes };

    assert_true(run_until(T.loop, all_settled, &s, ms));
    /* Late duplicates would show up in the iterations that follow. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(nc_loop_run(T.loop, NC_RUN_NOWAIT), 0);
}

static void expect_connect_failed(const struct peer *p, int err)
{
    assert_false(p->opened);
    assert_int_equal(p->closes, 1);
    assert_int_equal(p->reason, NC_CLOSE_CONNECT_FAILED);
    if (p->err != err)
        fail_msg("connect failed with %s, expected %s", nc_errname(p->err),
                 nc_errname(err));
}

static void expect_echoed(const struct peer *p, const char *local)
{
    assert_true(p->opened);
    assert_string_equal(p->got, p->msg);
    assert_int_equal(p->closes, 1);
    assert_int_equal(p->reason, NC_CLOSE_LOCAL);
    if (local != NULL)
        assert_string_equal(p->local, local);
}

/* Sockets of the current namespace with local port `port` in kernel state
 * `state`, from its own /proc view (thread-self follows setns). Returns
 * -1 if the tables cannot be read. */
static int tcp_count(unsigned port, unsigned state)
{
    static const char *const files[] = { "/proc/thread-self/net/tcp",
                                         "/proc/thread-self/net/tcp6" };
    int n = 0;

    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        char line[512];
        if (f == NULL)
            return -1;
        while (fgets(line, sizeof(line), f) != NULL) {
            unsigned lport, st;
            if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x",
                       &lport, &st) == 2 && lport == port && st == state)
                n++;
        }
        fclose(f);
    }
    return n;
}

static void server_listen(const char *endpoint)
{
    enter(T.srv);
    assert_int_equal(server_start(&T.server, T.loop, endpoint, NULL,
                                  SERVER_ECHO), 0);
}

/* ---- the cases -------------------------------------------------------- */

static void server_bound_to_loopback_is_refused_from_other_host(void **st)
{
    nc_iface_list *list = NULL;
    nc_addr bound[4];
    size_t n;
    char warning[2048];
    struct peer *p;

    (void)st;
    hosts_up();
    server_listen("127.0.0.1:7000");
    n = nc_listener_count(T.server.l);
    assert_true(n >= 1 && n <= 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(nc_listener_addr(T.server.l, i, &bound[i]), 0);

    /* The server host's own view names its LAN interface, not the
     * client host's. */
    assert_int_equal(nc_iface_list_get(&list), 0);
    assert_false(nc_iface_reachable(list, bound, n));
    assert_true(nc_iface_reach_warning(list, bound, n, warning,
                                       sizeof(warning)) > 0);
    nc_iface_list_free(list);
    print_message("warning on the server host:\n%s\n", warning);
    assert_non_null(strstr(warning, "127.0.0.1:7000"));
    assert_non_null(strstr(warning, "nctw0"));
    assert_non_null(strstr(warning, "192.0.2.1"));
    assert_null(strstr(warning, "nctw1"));
    assert_null(strstr(warning, "192.0.2.2"));

    /* On the same host it works, as it did on one VM. */
    p = peer_start(0, "127.0.0.1:7000", "same host", NULL);
    settle(1, 1, CONNECT_WAIT_MS);
    expect_echoed(p, NULL);

    /* From the other host: refused, and the explanation says why. */
    enter(T.cli);
    p = peer_start(1, "192.0.2.1:7000", "other host", NULL);
    settle(2, 1, CONNECT_WAIT_MS);
    expect_connect_failed(p, -ECONNREFUSED);
    assert_int_equal(T.server.opened, 1);
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, p->err), "loopback"));
}

static void server_bound_by_interface_name_accepts_other_host(void **st)
{
    static const char *const want[] = { "192.0.2.1:7000",
                                        "[2001:db8::1]:7000" };
    nc_iface_list *list = NULL;
    nc_addr bound[2];
    char text[NC_ADDRSTRLEN], warning[256];
    struct peer *v4, *v6;

    (void)st;
    hosts_up();
    server_listen("nctw0:7000");
    assert_int_equal(nc_listener_count(T.server.l), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(nc_listener_addr(T.server.l, i, &bound[i]), 0);
        assert_true(nc_addr_format(&bound[i], text, sizeof(text)) > 0);
        assert_string_equal(text, want[i]);
    }
    assert_int_equal(nc_iface_list_get(&list), 0);
    assert_true(nc_iface_reachable(list, bound, 2));
    memset(warning, 'x', sizeof(warning));
    assert_int_equal(nc_iface_reach_warning(list, bound, 2, warning,
                                            sizeof(warning)), 0);
    assert_int_equal(warning[0], '\0');
    nc_iface_list_free(list);

    enter(T.cli);
    v4 = peer_start(0, "192.0.2.1:7000", "hello over IPv4", NULL);
    v6 = peer_start(1, "[2001:db8::1]:7000", "hello over IPv6", NULL);
    settle(2, 2, CONNECT_WAIT_MS);
    /* The local addresses prove the bytes crossed from the client host. */
    assert_true(strncmp(v4->local, "192.0.2.2:", 10) == 0);
    assert_true(strncmp(v6->local, "[2001:db8::2]:", 14) == 0);
    expect_echoed(v4, NULL);
    expect_echoed(v6, NULL);
    assert_int_equal(T.server.opened, 2);
    assert_int_equal(T.server.by_reason[NC_CLOSE_PEER], 2);
    assert_true(server_all_closed_once(&T.server));
}

static void firewall_reject_gives_no_route_to_host(void **st)
{
    struct peer *p;

    (void)st;
    hosts_up();
    server_listen("*:7000");
    server_firewall("reject with icmpx type admin-prohibited");
    enter(T.cli);
    p = peer_start(0, "192.0.2.1:7000", "blocked", NULL);
    /* Over IPv6 Linux reports the same answer as permission denied. */
    struct peer *p6 = peer_start(1, "[2001:db8::1]:7000", "blocked", NULL);
    settle(2, 0, CONNECT_WAIT_MS);
    expect_connect_failed(p, -EHOSTUNREACH);
    expect_connect_failed(p6, -EACCES);
    assert_int_equal(T.server.opened, 0);
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, p->err), "firewall"));
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, p6->err),
                           "firewall: on the server host"));
}

static void firewall_drop_times_out_with_explanation(void **st)
{
    nc_connect_options o;
    struct peer *p;
    uint64_t start, took;

    (void)st;
    hosts_up();
    server_listen("*:7000");
    server_firewall("drop");
    enter(T.cli);
    memset(&o, 0, sizeof(o));
    o.conn.connect_timeout_ms = 300;
    start = now_ms();
    p = peer_start(0, "192.0.2.1:7000", "dropped", &o);
    settle(1, 0, 2000);
    took = now_ms() - start;
    expect_connect_failed(p, -ETIMEDOUT);
    assert_true(took >= 300);
    assert_true(took < 2000);
    assert_int_equal(T.server.opened, 0);
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, -ETIMEDOUT),
                           "packets are being dropped"));
}

static void peer_close_across_hosts_leaves_no_close_wait(void **st)
{
    (void)st;
    hosts_up();
    server_listen("nctw0:7000");
    enter(T.cli);
    for (size_t i = 0; i < NPEERS; i++)
        peer_start(i, i % 2 ? "[2001:db8::1]:7000" : "192.0.2.1:7000", "x",
                   NULL);
    settle(NPEERS, NPEERS, 5000);
    for (size_t i = 0; i < NPEERS; i++)
        expect_echoed(&T.peers[i], NULL);
    assert_int_equal(T.server.opened, NPEERS);
    assert_int_equal(T.server.closed, NPEERS);
    assert_int_equal(T.server.by_reason[NC_CLOSE_PEER], NPEERS);
    assert_true(server_all_closed_once(&T.server));
    for (size_t i = 0; i < T.server.nrecs; i++)
        assert_int_equal(T.server.recs[i]->reason, NC_CLOSE_PEER);

    /* The server host's TCP table: its two listening sockets, and no
     * connection left in CLOSE_WAIT (8) or ESTABLISHED (1). */
    enter(T.srv);
    assert_int_equal(tcp_count(PORT, 0x0A), 2);
    assert_int_equal(tcp_count(PORT, 0x08), 0);
    assert_int_equal(tcp_count(PORT, 0x01), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            server_bound_to_loopback_is_refused_from_other_host, hosts_down),
        cmocka_unit_test_teardown(
            server_bound_by_interface_name_accepts_other_host, hosts_down),
        cmocka_unit_test_teardown(firewall_reject_gives_no_route_to_host,
                                  hosts_down),
        cmocka_unit_test_teardown(firewall_drop_times_out_with_explanation,
                                  hosts_down),
        cmocka_unit_test_teardown(
            peer_close_across_hosts_leaves_no_close_wait, hosts_down),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
