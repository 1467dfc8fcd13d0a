/*
 * test_eyeballs.c - Happy Eyeballs (RFC 8305) in nc_connect() to a name,
 * across two hosts made of network namespaces, as in test_twohost.c:
 * "server" (192.0.2.1/24, 2001:db8::1/64) and "client" (192.0.2.2/24,
 * 2001:db8::2/64), joined by a veth pair. The name both.test is served
 * by dnsmasq inside the client host (on its own loopback, through the
 * test's private /etc/resolv.conf: dnsworld.h) with both addresses of
 * the server. The server host's firewall (nft) drops or rejects one
 * family's SYNs; the connect must take the other path within the attempt
 * delay, not after a connect timeout, and report one outcome.
 *
 * The namespaces, the veth pair and the rules are anonymous: they vanish
 * with the descriptors, even after a crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dnsworld.h"
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#define EP "both.test:7000"
/* Slack over the attempt delay for one round trip on a veth pair and a
 * busy machine (sanitizers, two cores shared; valgrind much more). */
#define SLACK_MS (under_valgrind() ? 2000u : 250u)

static const char *world_why;

static struct {
    int home, srv, cli;
    char ip[PATH_MAX], nft[PATH_MAX];
    nc_loop *loop;
    nc_listener *l;
    unsigned long accepted;
    struct dnsmasq dns;
} T = { .home = -1, .srv = -1, .cli = -1, .dns = { -1 } };

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool find_tool(const char *name, char *out, size_t len)
{
    static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin",
                                       "/bin", "/usr/local/sbin"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(out, len, "%s/%s", dirs[i], name);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

/* `tool args` with script on its standard input; true if it worked. */
static bool run_script(const char *tool, const char *args, const char *script)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "'%s' %s", tool, args);
    fflush(NULL);
    FILE *p = popen(cmd, "w");
    if (!p)
        return false;
    fputs(script, p);
    int status = pclose(p);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void enter(int ns)
{
    assert_int_equal(setns(ns, CLONE_NEWNET), 0);
}

/* Wait (bounded) until interface name of the current namespace is
 * RUNNING: carrier comes a little after "up". */
static bool running(const char *name)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint64_t deadline = now_ms() + 3000;
    bool up = false;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    while (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
           !(up = ifr.ifr_flags & IFF_RUNNING) && now_ms() < deadline)
        poll(NULL, 0, 5);
    if (fd >= 0)
        close(fd);
    return up;
}

static void server_open(nc_conn *c, void *ud)
{
    (void)ud;
    T.accepted++;
    nc_conn_close(c);
}

static const nc_conn_callbacks server_cbs = { .on_open = server_open };

/* Both hosts, dnsmasq in the client host, a listener on the server's
 * addresses (both families) and a loop. Ends in the client host. */
static int hosts_up(void **state)
{
    static const char *const records[] = {
        "--local=/test/",
        "--host-record=both.test,192.0.2.1,2001:db8::1",
        NULL
    };
    char script[1024];
    (void)state;
    if (!dnsworld_ready()) {
        dnsworld_skip(world_why);
        return 0;
    }
    if (!find_tool("ip", T.ip, sizeof(T.ip)) ||
        !find_tool("nft", T.nft, sizeof(T.nft))) {
        dnsworld_skip("`ip` (iproute2) or `nft` (nftables) is missing");
        return 0;
    }
    T.home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(T.home >= 0);
    assert_int_equal(unshare(CLONE_NEWNET), 0);
    T.cli = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_int_equal(unshare(CLONE_NEWNET), 0);
    T.srv = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(T.cli >= 0 && T.srv >= 0);
    snprintf(script, sizeof(script),
             "link set lo up\n"
             "link add ncey0 index 11 type veth peer name ncey1 index 12 "
             "netns /proc/%d/fd/%d\n"
             "link set ncey0 addrgenmode none\n"
             "addr add 192.0.2.1/24 dev ncey0\n"
             "addr add 2001:db8::1/64 dev ncey0 nodad\n"
             "link set ncey0 up\n", (int)getpid(), T.cli);
    if (!run_script(T.ip, "-batch -", script))
        dnsworld_skip("could not build the server host with `ip` (veth)");
    assert_int_equal(nc_loop_new(&T.loop), 0);
    assert_int_equal(nc_listen(T.loop, "ncey0:7000", NULL, &server_cbs, NULL,
                               &T.l), 0);
    assert_int_equal(nc_listener_count(T.l), 2);
    enter(T.cli);
    if (!run_script(T.ip, "-batch -",
                    "link set lo up\n"
                    "link set ncey1 addrgenmode none\n"
                    "addr add 192.0.2.2/24 dev ncey1\n"
                    "addr add 2001:db8::2/64 dev ncey1 nodad\n"
                    "link set ncey1 up\n"))
        dnsworld_skip("could not build the client host with `ip`");
    assert_true(running("ncey1"));
    enter(T.srv);
    assert_true(running("ncey0"));
    enter(T.cli);
    dnsworld_resolv("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    if (dnsmasq_start(&T.dns, "127.0.0.1", records) < 0)
        dnsworld_skip("dnsmasq did not start (apt-get install dnsmasq-base)");
    T.accepted = 0;
    return 0;
}

static int hosts_down(void **state)
{
    (void)state;
    nc_loop_free(T.loop);
    T.loop = NULL;
    T.l = NULL;
    dnsmasq_stop(&T.dns);
    if (T.home >= 0)
        assert_int_equal(setns(T.home, CLONE_NEWNET), 0);
    for (int *fd = &T.home; fd <= &T.cli; fd++) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
    }
    return 0;
}

/* The server host drops (or rejects) TCP to PORT of one family: "ip6"
 * or "ip". Back in the client host after. */
static void server_firewall(const char *family, const char *verdict)
{
    char rules[512];
    enter(T.srv);
    snprintf(rules, sizeof(rules),
             "table inet ncey {\n"
             "  chain input {\n"
             "    type filter hook input priority 0; policy accept;\n"
             "    meta nfproto %s tcp dport %d %s\n"
             "  }\n"
             "}\n", strcmp(family, "ip6") == 0 ? "ipv6" : "ipv4", PORT,
             verdict);
    bool ok = run_script(T.nft, "-f -", rules);
    enter(T.cli);
    if (!ok)
        dnsworld_skip("could not load an nftables rule (`nft -f`)");
}

/* Sockets of the client host in SYN_SENT toward PORT. */
static int syn_sent_to_port(void)
{
    static const char *const files[] = { "/proc/thread-self/net/tcp",
                                         "/proc/thread-self/net/tcp6" };
    int n = 0;
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        char line[512];
        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
            unsigned rport, st;
            if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%x %x",
                       &rport, &st) == 2 && rport == PORT && st == 2)
                n++;
        }
        fclose(f);
    }
    return n;
}

/* ---- the client ------------------------------------------------------ */

struct client {
    int opens, closes;
    nc_close_reason reason;
    int err;
    uint64_t started, opened_at, closed_at;
    char peer[NC_ADDRSTRLEN];
    char explained[1024];
};

static void cl_open(nc_conn *c, void *ud)
{
    struct client *cl = ud;
    nc_addr a;
    cl->opens++;
    cl->opened_at = now_ms();
    if (nc_conn_peer_addr(c, &a) == 0)
        nc_addr_format(&a, cl->peer, sizeof(cl->peer));
    nc_conn_explain(c, cl->explained, sizeof(cl->explained));
    nc_conn_close(c);
}

static void cl_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct client *cl = ud;
    cl->closes++;
    cl->closed_at = now_ms();
    cl->reason = reason;
    cl->err = err;
    if (!cl->opens)
        nc_conn_explain(c, cl->explained, sizeof(cl->explained));
}

static const nc_conn_callbacks cl_cbs = { .on_open = cl_open,
                                          .on_close = cl_close };

static bool closed(void *arg)
{
    return ((struct client *)arg)->closes > 0;
}

static void dial(const nc_connect_options *o, struct client *cl,
                 unsigned bound_ms)
{
    memset(cl, 0, sizeof(*cl));
    cl->started = now_ms();
    assert_int_equal(nc_connect(T.loop, EP, o, &cl_cbs, cl, NULL), 0);
    assert_true(run_until(T.loop, closed, cl, bound_ms));
    for (int i = 0; i < 3; i++)
        nc_loop_run(T.loop, NC_RUN_NOWAIT);
    assert_int_equal(cl->closes, 1);
}

static void expect_explained(const struct client *cl, const char *part)
{
    if (!strstr(cl->explained, part))
        fail_msg("nc_conn_explain does not say \"%s\": %s", part,
                 cl->explained);
}

/* ---- cases ------------------------------------------------------------- */

static void both_paths_work_and_ipv6_wins(void **state)
{
    struct client cl;
    (void)state;
    dial(NULL, &cl, 3000);
    assert_int_equal(cl.opens, 1);
    assert_int_equal(cl.reason, NC_CLOSE_LOCAL);
    assert_string_equal(cl.peer, "[2001:db8::1]:7000");
    /* The first attempt connected: no delay was waited. */
    assert_true(cl.opened_at - cl.started < SLACK_MS);
    expect_explained(&cl, "connected to both.test:7000 at [2001:db8::1]:7000");
}

static void ipv4_first_when_asked(void **state)
{
    struct client cl;
    nc_connect_options o = { .family = NC_FAMILY_IPV4_FIRST };
    (void)state;
    dial(&o, &cl, 3000);
    assert_int_equal(cl.opens, 1);
    assert_string_equal(cl.peer, "192.0.2.1:7000");
}

/* The case: IPv6 is black-holed, IPv4 works. IPv4 connects once
 * the attempt delay (250 ms) has passed, plus a round trip, not after a
 * connect timeout; the IPv6 attempt is closed and never reported. */
static void ipv6_black_hole_falls_back_to_ipv4_after_the_attempt_delay(
    void **state)
{
    struct client cl;
    nc_connect_options o = { .conn.connect_timeout_ms = 10000 };
    (void)state;
    server_firewall("ip6", "drop");
    dial(&o, &cl, 5000);
    assert_int_equal(cl.opens, 1);
    assert_string_equal(cl.peer, "192.0.2.1:7000");
    uint64_t took = cl.opened_at - cl.started;
    print_message("IPv4 connected after %llu ms\n", (unsigned long long)took);
    if (took < 240 || took > 300 + SLACK_MS)
        fail_msg("IPv4 connected after %llu ms, not within 300 ms plus a "
                 "round trip", (unsigned long long)took);
    expect_explained(&cl, "[2001:db8::1]:7000 was abandoned when another "
                          "address connected");
    /* The IPv6 attempt's socket is gone, not left retrying its SYN. */
    assert_int_equal(syn_sent_to_port(), 0);
    assert_int_equal(T.accepted, 1);
}

static void shorter_attempt_delay_is_honoured(void **state)
{
    struct client cl;
    nc_connect_options o = { .attempt_delay_ms = 100 };
    (void)state;
    server_firewall("ip6", "drop");
    dial(&o, &cl, 5000);
    assert_int_equal(cl.opens, 1);
    assert_string_equal(cl.peer, "192.0.2.1:7000");
    uint64_t took = cl.opened_at - cl.started;
    if (took < 90 || took > 100 + SLACK_MS)
        fail_msg("IPv4 connected after %llu ms with a 100 ms attempt delay",
                 (unsigned long long)took);
}

/* A rejected attempt fails at once, and the next starts at once. */
static void rejected_ipv6_moves_on_without_waiting(void **state)
{
    struct client cl;
    (void)state;
    server_firewall("ip6", "reject with tcp reset");
    dial(NULL, &cl, 5000);
    assert_int_equal(cl.opens, 1);
    assert_string_equal(cl.peer, "192.0.2.1:7000");
    assert_true(cl.opened_at - cl.started < SLACK_MS);
    expect_explained(&cl, "[2001:db8::1]:7000 was refused");
}

static void both_refused_names_each_address(void **state)
{
    struct client cl;
    (void)state;
    server_firewall("ip6", "reject with tcp reset");
    server_firewall("ip", "reject with tcp reset");
    dial(NULL, &cl, 5000);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ECONNREFUSED);
    expect_explained(&cl, "could not connect to both.test:7000: "
                          "[2001:db8::1]:7000 was refused (nothing listens "
                          "on that port there), 192.0.2.1:7000 was refused");
}

/* Everything dropped: the connect timeout ends it, with every attempt
 * named as timed out; the error of an unreachable family comes second
 * to a refusal, but here both just time out. */
static void all_dropped_times_out_naming_both(void **state)
{
    struct client cl;
    nc_connect_options o = { .conn.connect_timeout_ms = 600 };
    (void)state;
    server_firewall("ip6", "drop");
    server_firewall("ip", "drop");
    dial(&o, &cl, 5000);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_CONNECT_FAILED);
    assert_int_equal(cl.err, -ETIMEDOUT);
    uint64_t took = cl.closed_at - cl.started;
    assert_true(took >= 600 && took < 600 + SLACK_MS * 2);
    expect_explained(&cl, "within the connect timeout (600 ms): "
                          "[2001:db8::1]:7000 timed out");
    expect_explained(&cl, "192.0.2.1:7000 timed out");
    assert_int_equal(syn_sent_to_port(), 0);
    assert_int_equal(T.accepted, 0);
}

static void fire_close(nc_timer *t, void *ud)
{
    (void)t;
    nc_conn_close(ud);
}

/* Closed while an attempt hangs: one on_close (NC_CLOSE_LOCAL), and the
 * attempt's socket is gone at once. */
static void close_during_the_attempts_reports_once(void **state)
{
    struct client cl = {0};
    nc_connect_options o = { .attempt_delay_ms = 2000 };
    nc_conn *c;
    nc_timer *t;
    (void)state;
    server_firewall("ip6", "drop");
    assert_int_equal(nc_connect(T.loop, EP, &o, &cl_cbs, &cl, &c), 0);
    assert_int_equal(nc_timer_new(T.loop, fire_close, c, &t), 0);
    assert_int_equal(nc_timer_start(t, 150, 0), 0);
    assert_true(run_until(T.loop, closed, &cl, 3000));
    nc_loop_run(T.loop, NC_RUN_NOWAIT);
    nc_timer_free(t);
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.opens, 0);
    assert_int_equal(cl.reason, NC_CLOSE_LOCAL);
    expect_explained(&cl, "[2001:db8::1]:7000 was abandoned (the connection "
                          "was closed)");
    assert_int_equal(syn_sent_to_port(), 0);
}

int main(void)
{
    world_why = dnsworld_enter();
    const struct CMUnitTest tests[] = {
#define CASE(name) cmocka_unit_test_setup_teardown(name, hosts_up, hosts_down)
        CASE(both_paths_work_and_ipv6_wins),
        CASE(ipv4_first_when_asked),
        CASE(ipv6_black_hole_falls_back_to_ipv4_after_the_attempt_delay),
        CASE(shorter_attempt_delay_is_honoured),
        CASE(rejected_ipv6_moves_on_without_waiting),
        CASE(both_refused_names_each_address),
        CASE(all_dropped_times_out_naming_both),
        CASE(close_during_the_attempts_reports_once),
#undef CASE
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
