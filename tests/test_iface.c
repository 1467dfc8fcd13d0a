/*
 * test_iface.c - interface snapshots, the primary interface and the
 * reachability warning: on the real loopback, on hand-built lists, and
 * inside network namespaces the tests create in forked children (so
 * nothing on the host's interfaces is touched and nothing needs cleanup).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_ENV 77       /* the child could not build its namespace */
#define CHILD_DEADLINE_MS 20000

static nc_addr addr_of(const char *text)
{
    nc_endpoint ep;
    int rc = nc_endpoint_parse(&ep, text, NULL, 0);

    if (rc != 0 || (ep.kind != NC_EP_ADDR && ep.kind != NC_EP_UNIX))
        fail_msg("'%s' is not an address: %d", text, rc);
    return ep.addr;
}

static bool has_addr(const nc_iface *ifc, const char *host, unsigned prefix)
{
    char text[INET6_ADDRSTRLEN];

    for (size_t i = 0; i < ifc->naddrs; i++) {
        const nc_addr *a = &ifc->addrs[i].addr;
        const void *p = a->u.sa.sa_family == AF_INET
                            ? (const void *)&a->u.in4.sin_addr
                            : (const void *)&a->u.in6.sin6_addr;
        inet_ntop(a->u.sa.sa_family, p, text, sizeof(text));
        if (strcmp(text, host) == 0 && ifc->addrs[i].prefix_len == prefix)
            return true;
    }
    return false;
}

static bool ipv6_enabled_on_lo(void)
{
    FILE *f = fopen("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "r");
    int c;

    if (f == NULL)
        return false;
    c = fgetc(f);
    fclose(f);
    return c == '0';
}

/* ---- the real machine ------------------------------------------------ */

static void loopback_is_listed_up_with_its_addresses(void **state)
{
    nc_iface_list *list = NULL;
    const nc_iface *lo;

    (void)state;
    assert_int_equal(nc_iface_list_get(&list), 0);
    lo = nc_iface_find(list, "lo");
    assert_non_null(lo);
    assert_int_equal(lo->index, if_nametoindex("lo"));
    assert_true(lo->flags & NC_IFACE_LOOPBACK);
    assert_true(lo->flags & NC_IFACE_UP);
    assert_true(has_addr(lo, "127.0.0.1", 8));
    if (ipv6_enabled_on_lo())
        assert_true(has_addr(lo, "::1", 128));
    assert_int_equal(lo->addrs[0].addr.u.sa.sa_family, AF_INET);
    assert_int_equal(nc_addr_port(&lo->addrs[0].addr), 0);
    nc_iface_list_free(list);
}

static void list_is_in_index_order_with_ipv4_before_ipv6(void **state)
{
    nc_iface_list *list = NULL;

    (void)state;
    assert_int_equal(nc_iface_list_get(&list), 0);
    assert_true(list->count >= 1);
    for (size_t i = 0; i < list->count; i++) {
        const nc_iface *ifc = &list->ifaces[i];
        bool seen6 = false;
        if (i > 0)
            assert_true(list->ifaces[i - 1].index < ifc->index);
        assert_int_equal(if_nametoindex(ifc->name), ifc->index);
        assert_true(ifc->naddrs == 0 || ifc->addrs != NULL);
        for (size_t k = 0; k < ifc->naddrs; k++) {
            const nc_iface_addr *ia = &ifc->addrs[k];
            if (ia->addr.u.sa.sa_family == AF_INET6) {
                seen6 = true;
                assert_true(ia->prefix_len <= 128);
                assert_int_equal(ia->addr.len, sizeof(struct sockaddr_in6));
                if (IN6_IS_ADDR_LINKLOCAL(&ia->addr.u.in6.sin6_addr))
                    assert_int_equal(ia->addr.u.in6.sin6_scope_id,
                                     ifc->index);
            } else {
                assert_int_equal(ia->addr.u.sa.sa_family, AF_INET);
                assert_false(seen6);
                assert_true(ia->prefix_len <= 32);
                assert_int_equal(ia->addr.len, sizeof(struct sockaddr_in));
            }
        }
    }
    nc_iface_list_free(list);
}

static void find_and_free_accept_missing_names_and_null(void **state)
{
    nc_iface_list *list = NULL;

    (void)state;
    assert_int_equal(nc_iface_list_get(NULL), -EINVAL);
    assert_int_equal(nc_iface_list_get(&list), 0);
    assert_null(nc_iface_find(list, "nosuchif0"));
    assert_null(nc_iface_find(list, NULL));
    assert_null(nc_iface_find(NULL, "lo"));
    assert_null(nc_iface_primary(NULL));
    nc_iface_list_free(list);
    nc_iface_list_free(NULL);
}

/* ---- hand-built lists ------------------------------------------------ */

/* lo; nctA up with an IPv4 and a link-local address; nctB down with an
 * address; nctC up without addresses. Names no host route points at. */
struct fake {
    nc_iface_list list;
    nc_iface ifaces[4];
    nc_iface_addr lo_addrs[2], a_addrs[2], b_addrs[1];
};

static void fake_addr(nc_iface_addr *ia, const char *text, unsigned prefix)
{
    ia->addr = addr_of(text);
    ia->prefix_len = prefix;
}

static void fake_iface(nc_iface *ifc, const char *name, unsigned index,
                       unsigned flags, nc_iface_addr *addrs, size_t n)
{
    memset(ifc, 0, sizeof(*ifc));
    strcpy(ifc->name, name);
    ifc->index = index;
    ifc->flags = flags;
    ifc->addrs = addrs;
    ifc->naddrs = n;
}

static void fake_build(struct fake *f, bool with_a_ipv4, bool with_a_ipv6)
{
    nc_iface_addr *a = f->a_addrs;
    size_t na = 0;

    memset(f, 0, sizeof(*f));
    fake_addr(&f->lo_addrs[0], "127.0.0.1:0", 8);
    fake_addr(&f->lo_addrs[1], "[::1]:0", 128);
    if (with_a_ipv4)
        fake_addr(&a[na++], "192.0.2.2:0", 24);
    if (with_a_ipv6)
        fake_addr(&a[na++], "[2001:db8::2]:0", 64);
    fake_addr(&f->b_addrs[0], "192.0.2.3:0", 24);
    fake_iface(&f->ifaces[0], "lo", 1, NC_IFACE_UP | NC_IFACE_LOOPBACK,
               f->lo_addrs, 2);
    fake_iface(&f->ifaces[1], "nctA", 7, NC_IFACE_UP | NC_IFACE_RUNNING, a,
               na);
    fake_iface(&f->ifaces[2], "nctB", 8, 0, f->b_addrs, 1);
    fake_iface(&f->ifaces[3], "nctC", 9, NC_IFACE_UP, NULL, 0);
    f->list.count = 4;
    f->list.ifaces = f->ifaces;
}

static const char loopback_warning[] =
    "bound to 127.0.0.1:7000, [::1]:7000\n"
    "only this host can connect to it (loopback addresses and Unix sockets "
    "cannot be reached from other hosts)\n"
    "other hosts could reach this server at:\n"
    "  nctA  192.0.2.2/24  2001:db8::2/64\n"
    "bind an interface name such as nctA:7000, an address above, or *:7000";

static void warning_for_loopback_bind_lists_reachable_interfaces(void **s)
{
    struct fake f;
    nc_addr bound[2];
    char buf[1024];

    (void)s;
    fake_build(&f, true, true);
    bound[0] = addr_of("127.0.0.1:7000");
    bound[1] = addr_of("[::1]:7000");
    assert_false(nc_iface_reachable(&f.list, bound, 2));
    assert_int_equal(nc_iface_reach_warning(&f.list, bound, 2, buf,
                                            sizeof(buf)),
                     (int)strlen(loopback_warning));
    assert_string_equal(buf, loopback_warning);
}

static void warning_needs_room_for_all_of_it(void **state)
{
    struct fake f;
    nc_addr bound[2];
    char buf[sizeof(loopback_warning)];
    size_t n = strlen(loopback_warning);

    (void)state;
    fake_build(&f, true, true);
    bound[0] = addr_of("127.0.0.1:7000");
    bound[1] = addr_of("[::1]:7000");
    for (size_t len = 0; len <= n; len++) {
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(nc_iface_reach_warning(&f.list, bound, 2, buf, len),
                         -ENOSPC);
        if (len > 0)
            assert_int_equal(buf[0], '\0');
    }
    assert_int_equal(nc_iface_reach_warning(&f.list, bound, 2, buf, n + 1),
                     (int)n);
}

static void warning_without_reachable_interface_says_so(void **state)
{
    struct fake f;
    nc_addr bound[1];
    char buf[1024];
    int n;

    (void)state;
    fake_build(&f, false, false);
    bound[0] = addr_of("unix:/tmp/nc-test.sock");
    n = nc_iface_reach_warning(&f.list, bound, 1, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(buf));
    assert_string_equal(buf,
        "bound to unix:/tmp/nc-test.sock\n"
        "only this host can connect to it (loopback addresses and Unix "
        "sockets cannot be reached from other hosts)\n"
        "this host has no interface other hosts can reach (no non-loopback "
        "interface is up with an address)");
}

static void wildcard_needs_an_address_of_a_usable_family(void **state)
{
    struct fake f;
    nc_addr v4 = addr_of("0.0.0.0:80"), v6 = addr_of("[::]:80");
    char buf[1024];

    (void)state;
    fake_build(&f, false, false);
    assert_false(nc_iface_reachable(&f.list, &v4, 1));
    assert_false(nc_iface_reachable(&f.list, &v6, 1));
    assert_true(nc_iface_reach_warning(&f.list, &v4, 1, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "bound to 0.0.0.0:80\nonly this host can "
                                "connect to it\nthis host has no interface"));
    fake_build(&f, false, true);
    assert_false(nc_iface_reachable(&f.list, &v4, 1));
    assert_true(nc_iface_reachable(&f.list, &v6, 1));
    fake_build(&f, true, false);
    assert_true(nc_iface_reachable(&f.list, &v4, 1));
    assert_true(nc_iface_reachable(&f.list, &v6, 1));
}

static void reachable_ignores_loopback_and_unix_only(void **state)
{
    struct fake f;
    nc_addr mixed[3];
    char buf[64];

    (void)state;
    fake_build(&f, true, true);
    mixed[0] = addr_of("127.0.0.1:1");
    mixed[1] = addr_of("unix:@nc");
    mixed[2] = addr_of("192.0.2.2:1");
    assert_false(nc_iface_reachable(&f.list, mixed, 2));
    assert_true(nc_iface_reachable(&f.list, mixed, 3));
    assert_false(nc_iface_reachable(&f.list, mixed, 0));
    assert_false(nc_iface_reachable(&f.list, NULL, 1));
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(nc_iface_reach_warning(&f.list, mixed, 3, buf,
                                            sizeof(buf)), 0);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(nc_iface_reach_warning(NULL, mixed, 3, buf, sizeof(buf)),
                     -EINVAL);
    assert_int_equal(nc_iface_reach_warning(&f.list, NULL, 3, buf,
                                            sizeof(buf)), -EINVAL);
    assert_int_equal(nc_iface_reach_warning(&f.list, mixed, 0, buf,
                                            sizeof(buf)), -EINVAL);
    assert_int_equal(nc_iface_reach_warning(&f.list, mixed, 3, NULL, 10),
                     -EINVAL);
}

static void primary_of_a_list_is_never_down_or_loopback(void **state)
{
    struct fake f;

    (void)state;
    fake_build(&f, true, true);
    assert_ptr_equal(nc_iface_primary(&f.list), &f.ifaces[1]);
    fake_build(&f, false, true);
    assert_null(nc_iface_primary(&f.list));
}

/* ---- network namespaces (forked children) ------------------------------ */

static int child_fd = -1;     /* the child's end of the report pipe */
static int child_failures;

static void child_say(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void child_say(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0 && write(child_fd, buf, strlen(buf)) < 0)
        _exit(2);
}

#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond)) {                                                 \
            child_failures++;                                          \
            child_say("line %d: CHECK(%s) failed\n", __LINE__, #cond); \
        }                                                              \
    } while (0)

/* Run a setup command in the child's namespace; failure means the
 * environment cannot host the test. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc != 0) {
        child_say("setup command failed (status %d): %s\n", rc, cmd);
        _exit(EXIT_ENV);
    }
}

static void skip_or_fail(const char *why)
{
    const char *ci = getenv("CI");

    if (ci != NULL && strcmp(ci, "true") == 0)
        fail_msg("network-namespace test cannot run with CI=true: %s", why);
    print_message("SKIP: %s (this test needs root, `ip` and network "
                  "namespaces)\n", why);
    skip();
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* `ip` lives in an sbin directory that a non-login PATH may lack. */
#define SBIN_DIRS "/usr/local/sbin:/usr/sbin:/sbin"

static void add_sbin_to_path(void)
{
    const char *old = getenv("PATH");
    char path[4096];

    snprintf(path, sizeof(path), "%s:%s", old ? old : "/usr/bin:/bin",
             SBIN_DIRS);
    setenv("PATH", path, 1);
}

/* Fork; the child enters a fresh network namespace, runs body and exits
 * with its verdict; the parent collects the report and asserts. */
static void run_in_netns(void (*body)(void))
{
    char report[8192];
    size_t used = 0;
    uint64_t deadline;
    int p[2], status;
    pid_t pid;

    if (geteuid() != 0) {
        skip_or_fail("not running as root");
        return;
    }
    if (system("PATH=\"$PATH:" SBIN_DIRS "\" command -v ip >/dev/null 2>&1")
        != 0) {
        skip_or_fail("the `ip` command is not installed");
        return;
    }
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's handlers would longjmp into the parent's test state. */
        int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        close(p[0]);
        child_fd = p[1];
        add_sbin_to_path();
        if (unshare(CLONE_NEWNET) != 0) {
            child_say("unshare(CLONE_NEWNET): %s\n", strerror(errno));
            _exit(EXIT_ENV);
        }
        body();
        _exit(child_failures ? 1 : 0);
    }
    close(p[1]);
    deadline = now_ms() + CHILD_DEADLINE_MS;
    for (;;) {
        struct pollfd pfd = { p[0], POLLIN, 0 };
        uint64_t now = now_ms();
        ssize_t r;
        if (now >= deadline ||
            poll(&pfd, 1, (int)(deadline - now)) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(p[0]);
            fail_msg("namespace child did not finish within %d ms",
                     CHILD_DEADLINE_MS);
        }
        r = read(p[0], report + used, sizeof(report) - 1 - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        used += (size_t)r;
        if (used == sizeof(report) - 1)
            break;
    }
    report[used] = '\0';
    close(p[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_ENV) {
        print_message("%s", report);
        skip_or_fail("could not set up a network namespace");
        return;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_message("%s", report);
        fail_msg("namespace child failed (status 0x%x)", (unsigned)status);
    }
}

/* Poll the snapshot until name is RUNNING: carrier reaches the flags
 * through the kernel's link watcher, a little after "ip link set up". */
static bool wait_running(const char *name)
{
    uint64_t deadline = now_ms() + 3000;

    for (;;) {
        nc_iface_list *list;
        const nc_iface *ifc;
        bool running = false;
        if (nc_iface_list_get(&list) == 0) {
            ifc = nc_iface_find(list, name);
            running = ifc != NULL && (ifc->flags & NC_IFACE_RUNNING);
            nc_iface_list_free(list);
        }
        if (running)
            return true;
        if (now_ms() >= deadline)
            return false;
        poll(NULL, 0, 10);
    }
}

/* A veth pair nct0/nct1 without automatic link-local addresses. */
static void make_pair(void)
{
    sh("ip link set lo up");
    sh("ip link add nct0 type veth peer name nct1");
    sh("ip link set nct0 addrgenmode none");
    sh("ip link set nct1 addrgenmode none");
}

/* nct0: 192.0.2.1/24, 2001:db8::1/64, fe80::1/64, default route; nct1 up
 * without addresses. */
static void lan_setup(void)
{
    make_pair();
    sh("ip addr add 192.0.2.1/24 dev nct0");
    sh("ip -6 addr add 2001:db8::1/64 dev nct0 nodad");
    sh("ip -6 addr add fe80::1/64 dev nct0 nodad");
    sh("ip link set nct0 up");
    sh("ip link set nct1 up");
    sh("ip route add default via 192.0.2.254 dev nct0");
}

static const char *addr_text(const nc_addr *a, char *buf, size_t len)
{
    if (nc_addr_format(a, buf, len) < 0)
        snprintf(buf, len, "(unformattable)");
    return buf;
}

static void body_lan_list(void)
{
    nc_iface_list *list = NULL;
    const nc_iface *n0, *n1, *lo;
    unsigned idx;

    lan_setup();
    idx = if_nametoindex("nct0");
    CHECK(wait_running("nct0"));
    CHECK(nc_iface_list_get(&list) == 0);
    if (list == NULL)
        return;
    n0 = nc_iface_find(list, "nct0");
    n1 = nc_iface_find(list, "nct1");
    lo = nc_iface_find(list, "lo");
    CHECK(n0 != NULL && n1 != NULL && lo != NULL);
    if (n0 == NULL || n1 == NULL || lo == NULL)
        return;
    CHECK(n0->index == idx);
    CHECK(n0->flags == (NC_IFACE_UP | NC_IFACE_RUNNING));
    CHECK(n0->naddrs == 3);
    CHECK(n0->addrs[0].addr.u.sa.sa_family == AF_INET);
    CHECK(has_addr(n0, "192.0.2.1", 24));
    CHECK(has_addr(n0, "2001:db8::1", 64));
    CHECK(has_addr(n0, "fe80::1", 64));
    for (size_t i = 1; i < n0->naddrs; i++) {
        const struct sockaddr_in6 *in6 = &n0->addrs[i].addr.u.in6;
        CHECK(in6->sin6_family == AF_INET6);
        CHECK(in6->sin6_scope_id ==
              (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ? idx : 0));
    }
    /* Up, with no address at all: still listed. */
    CHECK(n1->naddrs == 0 && n1->addrs == NULL);
    CHECK(n1->flags & NC_IFACE_UP);
    CHECK(!(n1->flags & NC_IFACE_LOOPBACK));
    CHECK(lo->flags & NC_IFACE_LOOPBACK);
    CHECK(has_addr(lo, "127.0.0.1", 8));
    for (size_t i = 1; i < list->count; i++)
        CHECK(list->ifaces[i - 1].index < list->ifaces[i].index);
    CHECK(nc_iface_primary(list) == n0);
    nc_iface_list_free(list);
}

static void netns_veth_addresses_prefixes_and_flags_are_exact(void **state)
{
    (void)state;
    run_in_netns(body_lan_list);
}

static void body_lan_resolve(void)
{
    unsigned idx;
    nc_endpoint ep, quiet;
    nc_addr out[8];
    char text[NC_ADDRSTRLEN], why[128];
    size_t n = 0;
    bool saw_global = false, saw_local = false;

    lan_setup();
    idx = if_nametoindex("nct0");
    CHECK(nc_endpoint_parse(&ep, "nct0:7000", why, sizeof(why)) == 0);
    CHECK(ep.kind == NC_EP_IFACE && ep.port == 7000);
    CHECK(nc_endpoint_resolve(&ep, out, 8, &n) == 0);
    CHECK(n == 3);
    if (n != 3)
        return;
    CHECK(strcmp(addr_text(&out[0], text, sizeof(text)),
                 "192.0.2.1:7000") == 0);
    for (size_t i = 1; i < 3; i++) {
        addr_text(&out[i], text, sizeof(text));
        if (strcmp(text, "[2001:db8::1]:7000") == 0) {
            saw_global = true;
            CHECK(out[i].u.in6.sin6_scope_id == 0);
        } else if (strcmp(text, "[fe80::1%nct0]:7000") == 0) {
            saw_local = true;
            CHECK(out[i].u.in6.sin6_scope_id == idx);
        } else {
            child_say("unexpected address %s\n", text);
            child_failures++;
        }
    }
    CHECK(saw_global && saw_local);
    /* Each resolved address can really be bound. */
    for (size_t i = 0; i < 3; i++) {
        nc_addr a = out[i];
        int fd = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (a.u.sa.sa_family == AF_INET)
            a.u.in4.sin_port = 0;
        else
            a.u.in6.sin6_port = 0;
        CHECK(fd >= 0);
        CHECK(bind(fd, &a.u.sa, a.len) == 0);
        close(fd);
    }
    /* An interface that is up but has no address. */
    CHECK(nc_endpoint_parse(&quiet, "nct1:1", NULL, 0) == 0);
    CHECK(nc_endpoint_resolve(&quiet, out, 8, &n) == -EADDRNOTAVAIL);
    /* The interface vanishes after parsing. */
    sh("ip link del nct0");
    CHECK(nc_endpoint_resolve(&ep, out, 8, &n) == -ENODEV);
    CHECK(nc_endpoint_parse(&ep, "nct0:7000", why, sizeof(why)) == -ENODEV);
    CHECK(strstr(why, "unknown interface 'nct0'") != NULL);
}

static void netns_interface_endpoint_resolves_to_each_address(void **state)
{
    (void)state;
    run_in_netns(body_lan_resolve);
}

static void body_scoped(void)
{
    unsigned i0, i1;
    char text[64], out[NC_ADDRSTRLEN];
    nc_endpoint by_name, by_index, other;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    nc_addr bound, got;
    int fd;

    lan_setup();
    i0 = if_nametoindex("nct0");
    i1 = if_nametoindex("nct1");
    CHECK(i0 > 0 && i1 > 0);
    CHECK(nc_endpoint_parse(&by_name, "[fe80::1%nct0]:7000", NULL, 0) == 0);
    CHECK(by_name.kind == NC_EP_ADDR);
    CHECK(by_name.addr.u.in6.sin6_scope_id == i0);
    snprintf(text, sizeof(text), "[fe80::1%%%u]:7000", i0);
    CHECK(nc_endpoint_parse(&by_index, text, NULL, 0) == 0);
    CHECK(by_index.addr.u.in6.sin6_scope_id == i0);
    CHECK(nc_endpoint_format(&by_index, out, sizeof(out)) > 0);
    CHECK(strcmp(out, "[fe80::1%nct0]:7000") == 0);
    CHECK(nc_endpoint_parse(&other, "[fe80::1%nct1]:7000", NULL, 0) == 0);
    CHECK(other.addr.u.in6.sin6_scope_id == i1);

    /* Bind the scoped address and read it back from the kernel. */
    bound = by_name.addr;
    bound.u.in6.sin6_port = 0;
    fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK(bind(fd, &bound.u.sa, bound.len) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
    close(fd);
    CHECK(nc_addr_from_sockaddr(&got, (struct sockaddr *)&ss, len) == 0);
    CHECK(got.u.in6.sin6_scope_id == i0);
    snprintf(text, sizeof(text), "[fe80::1%%nct0]:%u", nc_addr_port(&got));
    CHECK(strcmp(addr_text(&got, out, sizeof(out)), text) == 0);
}

static void netns_scoped_link_local_carries_interface_index(void **state)
{
    (void)state;
    run_in_netns(body_scoped);
}

static void body_warning(void)
{
    nc_iface_list *list = NULL;
    nc_addr bound[4];
    char buf[2048];
    int n;

    lan_setup();
    CHECK(nc_iface_list_get(&list) == 0);
    if (list == NULL)
        return;
    bound[0] = addr_of("127.0.0.1:7000");
    n = nc_iface_reach_warning(list, bound, 1, buf, sizeof(buf));
    CHECK(n > 0 && (size_t)n == strlen(buf));
    CHECK(strncmp(buf, "bound to 127.0.0.1:7000\nonly this host can connect",
                  50) == 0);
    CHECK(strstr(buf, "\nother hosts could reach this server at:\n  nct0  "
                      "192.0.2.1/24  ") != NULL);
    CHECK(strstr(buf, "  2001:db8::1/64") != NULL);
    CHECK(strstr(buf, "  fe80::1%nct0/64") != NULL);
    CHECK(strstr(buf, "\nbind an interface name such as nct0:7000, an "
                      "address above, or *:7000") != NULL);
    CHECK(strstr(buf, "nct1") == NULL);     /* no address */
    CHECK(strstr(buf, "\n  lo") == NULL);   /* loopback */
    CHECK(buf[n - 1] != '\n');
    if (child_failures)
        child_say("warning was:\n%s\n", buf);

    CHECK(!nc_iface_reachable(list, bound, 1));
    bound[1] = addr_of("[::1]:7000");
    bound[2] = addr_of("unix:/tmp/nc-netns.sock");
    CHECK(!nc_iface_reachable(list, bound, 3));
    bound[3] = addr_of("192.0.2.1:7000");
    CHECK(nc_iface_reachable(list, bound, 4));
    CHECK(nc_iface_reachable(list, &bound[3], 1));
    bound[0] = addr_of("0.0.0.0:7000");
    bound[1] = addr_of("[::]:7000");
    bound[2] = addr_of("[fe80::1%nct0]:7000");
    CHECK(nc_iface_reachable(list, &bound[0], 1));
    CHECK(nc_iface_reachable(list, &bound[1], 1));
    CHECK(nc_iface_reachable(list, &bound[2], 1));
    CHECK(nc_iface_reach_warning(list, &bound[0], 1, buf, sizeof(buf)) == 0);
    CHECK(buf[0] == '\0');
    nc_iface_list_free(list);
}

static void netns_loopback_warning_names_reachable_interface(void **state)
{
    (void)state;
    run_in_netns(body_warning);
}

/* The lower- and higher-index ends of the pair. */
static void pair_order(const char **low, const char **high)
{
    bool zero_first = if_nametoindex("nct0") < if_nametoindex("nct1");

    *low = zero_first ? "nct0" : "nct1";
    *high = zero_first ? "nct1" : "nct0";
}

static const char *primary_name(void)
{
    static char name[NC_IFNAMSIZ];
    nc_iface_list *list = NULL;
    const nc_iface *p;

    name[0] = '\0';
    if (nc_iface_list_get(&list) != 0)
        return "(no list)";
    p = nc_iface_primary(list);
    snprintf(name, sizeof(name), "%s", p ? p->name : "(none)");
    nc_iface_list_free(list);
    return name;
}

#define CHECK_PRIMARY(want)                                            \
    do {                                                               \
        const char *got_ = primary_name();                             \
        if (strcmp(got_, (want)) != 0) {                               \
            child_failures++;                                          \
            child_say("line %d: primary is %s, want %s\n", __LINE__,   \
                      got_, (want));                                   \
        }                                                              \
    } while (0)

/* Both ends have IPv4; the default route goes through the higher index,
 * which the fallback (first up interface with IPv4) would not pick. */
static void body_primary_route4(void)
{
    const char *low, *high;

    make_pair();
    pair_order(&low, &high);
    sh("ip addr add 192.0.2.1/25 dev nct0");
    sh("ip addr add 192.0.2.129/25 dev nct1");
    sh("ip link set nct0 up");
    sh("ip link set nct1 up");
    CHECK_PRIMARY(low);
    sh("ip route add default via %s dev %s",
       strcmp(high, "nct0") == 0 ? "192.0.2.126" : "192.0.2.254", high);
    CHECK_PRIMARY(high);
}

static void netns_primary_follows_ipv4_default_route(void **state)
{
    (void)state;
    run_in_netns(body_primary_route4);
}

/* The lower index has IPv4 but no route; the higher one holds the only
 * default route, an IPv6 one. */
static void body_primary_route6(void)
{
    const char *low, *high;

    make_pair();
    pair_order(&low, &high);
    sh("ip addr add 192.0.2.1/24 dev %s", low);
    sh("ip -6 addr add 2001:db8::2/64 dev %s nodad", high);
    sh("ip link set nct0 up");
    sh("ip link set nct1 up");
    CHECK_PRIMARY(low);
    sh("ip -6 route add default via 2001:db8::fe dev %s", high);
    CHECK_PRIMARY(high);
}

static void netns_primary_follows_ipv6_default_route(void **state)
{
    (void)state;
    run_in_netns(body_primary_route6);
}

/* No default route: the first up interface with IPv4, skipping down ones. */
static void body_primary_fallback(void)
{
    const char *low, *high;

    make_pair();
    pair_order(&low, &high);
    sh("ip addr add 192.0.2.1/25 dev nct0");
    sh("ip addr add 192.0.2.129/25 dev nct1");
    CHECK_PRIMARY("(none)");            /* both down */
    sh("ip link set nct0 up");
    sh("ip link set nct1 up");
    CHECK_PRIMARY(low);
    sh("ip link set %s down", low);
    CHECK_PRIMARY(high);
}

static void netns_primary_falls_back_to_first_up_ipv4_interface(void **s)
{
    (void)s;
    run_in_netns(body_primary_fallback);
}

static void body_loopback_only(void)
{
    nc_iface_list *list = NULL;
    nc_addr bound[2];
    char buf[1024];
    int n;

    sh("ip link set lo up");
    CHECK(nc_iface_list_get(&list) == 0);
    if (list == NULL)
        return;
    CHECK(nc_iface_find(list, "lo") != NULL);
    for (size_t i = 0; i < list->count; i++)
        CHECK((list->ifaces[i].flags & NC_IFACE_LOOPBACK) ||
              !(list->ifaces[i].flags & NC_IFACE_UP));
    CHECK(nc_iface_primary(list) == NULL);
    bound[0] = addr_of("127.0.0.1:7000");
    bound[1] = addr_of("0.0.0.0:7000");
    CHECK(!nc_iface_reachable(list, bound, 2));
    n = nc_iface_reach_warning(list, bound, 1, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK(strstr(buf, "only this host") != NULL);
    CHECK(strstr(buf, "\nthis host has no interface other hosts can reach")
          != NULL);
    CHECK(strstr(buf, "could reach this server at") == NULL);
    nc_iface_list_free(list);
}

static void netns_with_only_loopback_has_no_primary_and_says_so(void **s)
{
    (void)s;
    run_in_netns(body_loopback_only);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loopback_is_listed_up_with_its_addresses),
        cmocka_unit_test(list_is_in_index_order_with_ipv4_before_ipv6),
        cmocka_unit_test(find_and_free_accept_missing_names_and_null),
        cmocka_unit_test(warning_for_loopback_bind_lists_reachable_interfaces),
        cmocka_unit_test(warning_needs_room_for_all_of_it),
        cmocka_unit_test(warning_without_reachable_interface_says_so),
        cmocka_unit_test(wildcard_needs_an_address_of_a_usable_family),
        cmocka_unit_test(reachable_ignores_loopback_and_unix_only),
        cmocka_unit_test(primary_of_a_list_is_never_down_or_loopback),
        cmocka_unit_test(netns_veth_addresses_prefixes_and_flags_are_exact),
        cmocka_unit_test(netns_interface_endpoint_resolves_to_each_address),
        cmocka_unit_test(netns_scoped_link_local_carries_interface_index),
        cmocka_unit_test(netns_loopback_warning_names_reachable_interface),
        cmocka_unit_test(netns_primary_follows_ipv4_default_route),
        cmocka_unit_test(netns_primary_follows_ipv6_default_route),
        cmocka_unit_test(netns_primary_falls_back_to_first_up_ipv4_interface),
        cmocka_unit_test(netns_with_only_loopback_has_no_primary_and_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
