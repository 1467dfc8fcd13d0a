/*
 * test_addr.c - the endpoint grammar (parse, format, resolve) and the
 * queries on concrete addresses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* One row: the input, what parse returns, and for a good input its kind,
 * port and formatted text (NULL: the input itself); for a bad one a piece
 * of the message. */
struct row {
    const char *in;
    int ret;
    nc_endpoint_kind kind;
    unsigned port;
    const char *text;
};

#define GOOD(in, kind, port, text) { in, 0, kind, port, text }
#define BAD(in, err, why) { in, err, 0, 0, why }

#define A10 "aaaaaaaaaa"
/* 107 bytes: the longest path sun_path holds with its NUL. */
#define PATH107 "/tmp/" A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 "bb"
#define PATH108 PATH107 "c"

static const struct row rows[] = {
    /* IPv4 */
    GOOD("192.168.1.104:7000", NC_EP_ADDR, 7000, NULL),
    GOOD("127.0.0.1:0", NC_EP_ADDR, 0, NULL),
    GOOD("0.0.0.0:80", NC_EP_ADDR, 80, NULL),
    GOOD("255.255.255.255:65535", NC_EP_ADDR, 65535, NULL),
    GOOD("192.0.2.1:007", NC_EP_ADDR, 7, "192.0.2.1:7"),
    /* IPv6 */
    GOOD("[::1]:7000", NC_EP_ADDR, 7000, NULL),
    GOOD("[::]:7000", NC_EP_ADDR, 7000, NULL),
    GOOD("[2001:db8::1]:443", NC_EP_ADDR, 443, NULL),
    GOOD("[2001:DB8:0::A]:1", NC_EP_ADDR, 1, "[2001:db8::a]:1"),
    GOOD("[::ffff:192.0.2.1]:8080", NC_EP_ADDR, 8080, NULL),
    GOOD("[fe80::1%lo]:7000", NC_EP_ADDR, 7000, NULL),
    GOOD("[ff02::1%lo]:5353", NC_EP_ADDR, 5353, NULL),
    /* all addresses */
    GOOD("*:7000", NC_EP_ANY, 7000, NULL),
    GOOD(":7000", NC_EP_ANY, 7000, "*:7000"),
    GOOD("7000", NC_EP_ANY, 7000, "*:7000"),
    GOOD("0", NC_EP_ANY, 0, "*:0"),
    GOOD("*:0", NC_EP_ANY, 0, NULL),
    GOOD("65535", NC_EP_ANY, 65535, "*:65535"),
    /* localhost, interfaces, Unix */
    GOOD("localhost:7000", NC_EP_LOCALHOST, 7000, NULL),
    GOOD("LocalHost:1", NC_EP_LOCALHOST, 1, "localhost:1"),
    GOOD("lo:7000", NC_EP_IFACE, 7000, NULL),
    GOOD("lo:0", NC_EP_IFACE, 0, NULL),
    GOOD("unix:/tmp/nc.sock", NC_EP_UNIX, 0, NULL),
    GOOD("unix:relative.sock", NC_EP_UNIX, 0, NULL),
    GOOD("unix:/tmp/with:colon", NC_EP_UNIX, 0, NULL),
    GOOD("unix:@nc-abstract", NC_EP_UNIX, 0, NULL),
    GOOD("unix:" PATH107, NC_EP_UNIX, 0, NULL),

    BAD("", -EINVAL, "empty endpoint"),
    /* ports */
    BAD("192.168.1.104:70000", -ERANGE, "port 70000 is out of range (0-65535)"),
    BAD("192.168.1.104:65536", -ERANGE, "out of range"),
    BAD("70000", -ERANGE, "out of range"),
    BAD("*:99999999999999999999", -ERANGE, "out of range"),
    BAD("[::1]:65536", -ERANGE, "out of range"),
    BAD("192.168.1.104:abc", -EINVAL, "port 'abc' is not a number"),
    BAD("192.168.1.104:+7000", -EINVAL, "not a number"),
    BAD("192.168.1.104:-1", -EINVAL, "not a number"),
    BAD("192.168.1.104: 7000", -EINVAL, "not a number"),
    BAD("192.168.1.104:0x1F", -EINVAL, "not a number"),
    BAD("192.168.1.104:7000 ", -EINVAL, "not a number"),
    BAD("+7000", -EINVAL, "not a number"),
    BAD("-7000", -EINVAL, "not a number"),
    BAD(" 7000", -EINVAL, "not a number"),
    BAD("0x1F", -EINVAL, "not a number"),
    BAD("7000 ", -EINVAL, "not a number"),
    BAD("[::1]:7000x", -EINVAL, "not a number"),
    BAD("192.168.1.104:", -EINVAL, "missing port"),
    BAD("192.168.1.104", -EINVAL, "missing port"),
    BAD("lo", -EINVAL, "missing port"),
    BAD("*", -EINVAL, "missing port"),
    BAD("localhost", -EINVAL, "missing port"),
    BAD("[::1]", -EINVAL, "missing port"),
    BAD("[::1]:", -EINVAL, "missing port"),
    BAD("[fe80::1%lo]", -EINVAL, "missing port"),
    /* brackets */
    BAD("[::1:7000", -EINVAL, "missing ']'"),
    BAD("::1]:7000", -EINVAL, "unexpected ']'"),
    BAD("[[::1]]:7000", -EINVAL, "unexpected '['"),
    BAD("192.0.2.1[:80", -EINVAL, "unexpected '['"),
    BAD("[::1]x", -EINVAL, "unexpected text 'x' after ']'"),
    BAD("[::1]7000", -EINVAL, "after ']'"),
    BAD("[]:7000", -EINVAL, "empty host"),
    BAD("[%lo]:7000", -EINVAL, "empty host"),
    /* IPv4 literals */
    BAD("256.1.1.1:80", -EINVAL, "bad IPv4 address '256.1.1.1'"),
    BAD("1.2.3:80", -EINVAL, "bad IPv4 address"),
    BAD("1.2.3.4.5:80", -EINVAL, "bad IPv4 address"),
    BAD("01.2.3.4:80", -EINVAL, "bad IPv4 address"),
    BAD("1234:80", -EINVAL, "bad IPv4 address"),
    BAD("[192.0.2.1]:80", -EINVAL, "is an IPv4 address"),
    /* IPv6 literals */
    BAD("[::g]:80", -EINVAL, "bad IPv6 address '::g'"),
    BAD("[1:2:3:4:5:6:7:8:9]:80", -EINVAL, "bad IPv6 address"),
    BAD("::1:7000", -EINVAL, "[::1]:7000"),
    BAD("2001:db8::1:80", -EINVAL, "brackets"),
    BAD("fe80::1", -EINVAL, "brackets"),
    BAD("lo:7000:", -EINVAL, "too many ':'"),
    /* scopes */
    BAD("[2001:db8::1%lo]:80", -EINVAL, "not a link-local address"),
    BAD("192.0.2.1%lo:80", -EINVAL, "only allowed on an IPv6 link-local"),
    BAD("[fe80::1%nosuchif0]:80", -ENODEV,
        "unknown scope interface 'nosuchif0'"),
    BAD("[fe80::1%4000000000]:80", -ENODEV, "unknown scope interface index"),
    BAD("[fe80::1%99999999999999999999]:80", -ENODEV,
        "unknown scope interface index"),
    BAD("[fe80::1%0]:80", -ENODEV, "unknown scope interface index 0"),
    BAD("[fe80::1%]:80", -EINVAL, "empty scope"),
    BAD("[fe80::1]:80", -EINVAL, "needs a scope"),
    BAD("[fe80::1%abcdefghijklmnopq]:80", -ENAMETOOLONG, "too long"),
    /* interfaces */
    BAD("nosuchif0:7000", -ENODEV, "unknown interface 'nosuchif0'"),
    BAD("example.com:80", -ENODEV, "host names are not looked up"),
    BAD("abcdefghijklmnop:7000", -ENAMETOOLONG, "interface name"),
    BAD("eth 0:80", -EINVAL, "not an IP address, an interface name"),
    BAD("a/b:80", -EINVAL, "not an IP address"),
    /* Unix */
    BAD("unix:", -EINVAL, "empty Unix socket path"),
    BAD("unix:@", -EINVAL, "empty abstract socket name"),
    BAD("unix:" PATH108, -ENAMETOOLONG, "the limit is 107"),
    BAD("unix:@" PATH108, -ENAMETOOLONG, "the limit is 107"),
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static bool addr_equal(const nc_addr *a, const nc_addr *b)
{
    if (a->len != b->len || a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return a->u.in4.sin_port == b->u.in4.sin_port &&
               a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
    case AF_INET6:
        return a->u.in6.sin6_port == b->u.in6.sin6_port &&
               a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id &&
               memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0;
    case AF_UNIX:
        return memcmp(a->u.un.sun_path, b->u.un.sun_path,
                      a->len - offsetof(struct sockaddr_un, sun_path)) == 0;
    default:
        return false;
    }
}

static bool ep_equal(const nc_endpoint *a, const nc_endpoint *b)
{
    if (a->kind != b->kind || a->port != b->port)
        return false;
    if (a->kind == NC_EP_IFACE)
        return strcmp(a->iface, b->iface) == 0;
    if (a->kind == NC_EP_ADDR || a->kind == NC_EP_UNIX)
        return addr_equal(&a->addr, &b->addr);
    return true;
}

static void table_has_enough_rows(void **state)
{
    (void)state;
    assert_true(NROWS >= 60);
}

static void good_inputs_parse_to_kind_port_and_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        const char *want = r->text ? r->text : r->in;
        char why[160] = "untouched", text[NC_ADDRSTRLEN];
        nc_endpoint ep;
        int rc;

        if (r->ret != 0)
            continue;
        rc = nc_endpoint_parse(&ep, r->in, why, sizeof(why));
        if (rc != 0)
            fail_msg("'%s': %d (%s)", r->in, rc, why);
        assert_string_equal(why, "");
        assert_int_equal(ep.kind, r->kind);
        assert_int_equal(ep.port, r->port);
        if (ep.kind == NC_EP_ADDR)
            assert_int_equal(nc_addr_port(&ep.addr), r->port);
        rc = nc_endpoint_format(&ep, text, sizeof(text));
        assert_int_equal(rc, (int)strlen(want));
        assert_string_equal(text, want);
    }
}

static void good_inputs_round_trip_through_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        char text[NC_ADDRSTRLEN], again[NC_ADDRSTRLEN];
        nc_endpoint ep, back;

        if (rows[i].ret != 0)
            continue;
        assert_int_equal(nc_endpoint_parse(&ep, rows[i].in, NULL, 0), 0);
        assert_true(nc_endpoint_format(&ep, text, sizeof(text)) > 0);
        if (nc_endpoint_parse(&back, text, NULL, 0) != 0)
            fail_msg("'%s' formatted as '%s', which does not parse",
                     rows[i].in, text);
        if (!ep_equal(&ep, &back))
            fail_msg("'%s' -> '%s' parses to another value", rows[i].in,
                     text);
        assert_true(nc_endpoint_format(&back, again, sizeof(again)) > 0);
        assert_string_equal(text, again);
    }
}

static void bad_inputs_fail_with_errno_and_message_and_keep_ep(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        nc_endpoint ep, before;
        char why[200];
        int rc;

        if (r->ret == 0)
            continue;
        memset(&ep, 0xa5, sizeof(ep));
        memcpy(&before, &ep, sizeof(ep));
        memset(why, 0, sizeof(why));
        rc = nc_endpoint_parse(&ep, r->in, why, sizeof(why));
        if (rc != r->ret)
            fail_msg("'%s': got %d, want %d (%s)", r->in, rc, r->ret, why);
        if (strstr(why, r->text) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", r->in, why, r->text);
        assert_null(strchr(why, '\n'));
        assert_memory_equal(&ep, &before, sizeof(ep));
        /* A NULL message buffer is allowed and changes nothing else. */
        assert_int_equal(nc_endpoint_parse(&ep, r->in, NULL, 0), r->ret);
        assert_memory_equal(&ep, &before, sizeof(ep));
    }
}

static void null_arguments_are_einval(void **state)
{
    nc_endpoint ep;
    char why[100];

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, NULL, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "NULL"));
    assert_int_equal(nc_endpoint_parse(NULL, "7000", why, sizeof(why)),
                     -EINVAL);
    assert_int_equal(nc_endpoint_parse(NULL, NULL, NULL, 0), -EINVAL);
}

static void small_why_buffer_is_truncated_and_terminated(void **state)
{
    nc_endpoint ep;
    char why[9];

    (void)state;
    memset(why, 'x', sizeof(why));
    assert_int_equal(nc_endpoint_parse(&ep, "1.2.3.4:70000", why, sizeof(why)),
                     -ERANGE);
    assert_string_equal(why, "port 700");
    memset(why, 'x', sizeof(why));
    assert_int_equal(nc_endpoint_parse(&ep, "1.2.3.4:1", why, 1), 0);
    assert_int_equal(why[0], '\0');
    assert_int_equal(why[1], 'x');
}

static void parsed_addresses_have_bind_lengths(void **state)
{
    nc_endpoint ep;

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "192.0.2.1:80", NULL, 0), 0);
    assert_int_equal(ep.addr.len, sizeof(struct sockaddr_in));
    assert_int_equal(ep.addr.u.in4.sin_family, AF_INET);
    assert_int_equal(ep.addr.u.in4.sin_addr.s_addr, htonl(0xc0000201));
    assert_int_equal(nc_endpoint_parse(&ep, "[::1]:80", NULL, 0), 0);
    assert_int_equal(ep.addr.len, sizeof(struct sockaddr_in6));
    assert_true(IN6_IS_ADDR_LOOPBACK(&ep.addr.u.in6.sin6_addr));
    assert_int_equal(ep.addr.u.in6.sin6_scope_id, 0);
    assert_int_equal(nc_endpoint_parse(&ep, "unix:/tmp/s", NULL, 0), 0);
    assert_int_equal(ep.addr.len, offsetof(struct sockaddr_un, sun_path) +
                                      sizeof("/tmp/s"));
    assert_string_equal(ep.addr.u.un.sun_path, "/tmp/s");
    assert_int_equal(nc_endpoint_parse(&ep, "lo:9", NULL, 0), 0);
    assert_string_equal(ep.iface, "lo");
}

static void abstract_unix_name_maps_to_leading_nul(void **state)
{
    nc_endpoint ep;

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "unix:@nc-test", NULL, 0), 0);
    assert_int_equal(ep.addr.u.un.sun_path[0], '\0');
    assert_memory_equal(ep.addr.u.un.sun_path + 1, "nc-test", 7);
    /* No NUL terminator: the name is exactly len bytes. */
    assert_int_equal(ep.addr.len,
                     offsetof(struct sockaddr_un, sun_path) + 1 + 7);
}

static void scope_by_name_and_by_index_give_the_same_id(void **state)
{
    unsigned lo = if_nametoindex("lo");
    char text[64], out[NC_ADDRSTRLEN];
    nc_endpoint by_name, by_index;

    (void)state;
    assert_true(lo > 0);
    assert_int_equal(nc_endpoint_parse(&by_name, "[fe80::1%lo]:7000", NULL, 0),
                     0);
    assert_int_equal(by_name.addr.u.in6.sin6_scope_id, lo);
    snprintf(text, sizeof(text), "[fe80::1%%%u]:7000", lo);
    assert_int_equal(nc_endpoint_parse(&by_index, text, NULL, 0), 0);
    assert_true(ep_equal(&by_name, &by_index));
    /* Printed by name when the index has one. */
    assert_true(nc_endpoint_format(&by_index, out, sizeof(out)) > 0);
    assert_string_equal(out, "[fe80::1%lo]:7000");
}

static void unknown_scope_index_is_printed_as_a_number(void **state)
{
    nc_addr a;
    char out[NC_ADDRSTRLEN];

    (void)state;
    memset(&a, 0, sizeof(a));
    a.u.in6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "fe80::2", &a.u.in6.sin6_addr), 1);
    a.u.in6.sin6_port = htons(9);
    a.u.in6.sin6_scope_id = 4000000000u;
    a.len = sizeof(a.u.in6);
    assert_int_equal(nc_addr_format(&a, out, sizeof(out)),
                     (int)strlen("[fe80::2%4000000000]:9"));
    assert_string_equal(out, "[fe80::2%4000000000]:9");
}

static void format_reports_enospc_and_einval(void **state)
{
    nc_endpoint ep;
    char buf[NC_ADDRSTRLEN];
    const char *text = "192.168.1.104:7000";
    size_t n = strlen(text);

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, text, NULL, 0), 0);
    for (size_t len = 0; len <= n; len++) {
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(nc_endpoint_format(&ep, buf, len), -ENOSPC);
        if (len > 0)
            assert_int_equal(buf[0], '\0');
    }
    assert_int_equal(nc_endpoint_format(&ep, buf, n + 1), (int)n);
    assert_int_equal(nc_addr_format(&ep.addr, buf, 5), -ENOSPC);
    assert_int_equal(nc_endpoint_format(NULL, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(nc_endpoint_format(&ep, NULL, 10), -EINVAL);
    ep.kind = (nc_endpoint_kind)99;
    assert_int_equal(nc_endpoint_format(&ep, buf, sizeof(buf)), -EINVAL);
    ep.kind = NC_EP_UNIX;   /* with an IPv4 address */
    assert_int_equal(nc_endpoint_format(&ep, buf, sizeof(buf)), -EINVAL);
    memset(&ep, 0, sizeof(ep));
    ep.kind = NC_EP_IFACE;  /* empty name */
    assert_int_equal(nc_endpoint_format(&ep, buf, sizeof(buf)), -EINVAL);
    ep.kind = NC_EP_ADDR;   /* no family */
    assert_int_equal(nc_endpoint_format(&ep, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(nc_addr_format(&ep.addr, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(nc_addr_format(NULL, buf, sizeof(buf)), -EINVAL);
}

static void endpoint_port_field_wins_over_address_port(void **state)
{
    nc_endpoint ep;
    nc_addr out[2];
    size_t n;
    char buf[NC_ADDRSTRLEN];

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "192.0.2.1:80", NULL, 0), 0);
    ep.port = 8080;
    assert_true(nc_endpoint_format(&ep, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "192.0.2.1:8080");
    assert_int_equal(nc_endpoint_resolve(&ep, out, 2, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(nc_addr_port(&out[0]), 8080);
}

static void resolve_any_gives_ipv6_then_ipv4_wildcard(void **state)
{
    nc_endpoint ep;
    nc_addr out[4];
    char buf[NC_ADDRSTRLEN];
    size_t n = 99;

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "*:7000", NULL, 0), 0);
    assert_int_equal(nc_endpoint_resolve(&ep, out, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_true(nc_addr_format(&out[0], buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "[::]:7000");
    assert_int_equal(out[0].len, sizeof(struct sockaddr_in6));
    assert_true(nc_addr_is_any(&out[0]));
    assert_true(nc_addr_format(&out[1], buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "0.0.0.0:7000");
    assert_int_equal(out[1].len, sizeof(struct sockaddr_in));
    assert_true(nc_addr_is_any(&out[1]));
}

static void resolve_localhost_gives_127_0_0_1_then_ipv6_loopback(void **state)
{
    nc_endpoint ep;
    nc_addr out[2];
    char buf[NC_ADDRSTRLEN];
    size_t n;

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "localhost:7001", NULL, 0), 0);
    assert_int_equal(nc_endpoint_resolve(&ep, out, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_true(nc_addr_format(&out[0], buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "127.0.0.1:7001");
    assert_true(nc_addr_format(&out[1], buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "[::1]:7001");
    assert_true(nc_addr_is_loopback(&out[0]));
    assert_true(nc_addr_is_loopback(&out[1]));
}

static void resolve_counts_all_but_writes_at_most_max(void **state)
{
    nc_endpoint ep;
    nc_addr out[2];
    size_t n;

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "*:1", NULL, 0), 0);
    memset(out, 0x5a, sizeof(out));
    assert_int_equal(nc_endpoint_resolve(&ep, out, 1, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].u.sa.sa_family, AF_INET6);
    assert_int_equal(out[1].u.sa.sa_family, 0x5a5a);
    assert_int_equal(nc_endpoint_resolve(&ep, NULL, 0, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nc_endpoint_resolve(&ep, NULL, 1, &n), -EINVAL);
    assert_int_equal(nc_endpoint_resolve(&ep, out, 1, NULL), -EINVAL);
    assert_int_equal(nc_endpoint_resolve(NULL, out, 1, &n), -EINVAL);
}

static void resolve_address_and_unix_give_themselves(void **state)
{
    const char *in[] = { "192.0.2.7:65535", "[2001:db8::5]:1",
                         "[fe80::1%lo]:2", "unix:/tmp/x.sock", "unix:@abs" };
    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        nc_endpoint ep;
        nc_addr out[1];
        size_t n;
        char buf[NC_ADDRSTRLEN];
        assert_int_equal(nc_endpoint_parse(&ep, in[i], NULL, 0), 0);
        assert_int_equal(nc_endpoint_resolve(&ep, out, 1, &n), 0);
        assert_int_equal(n, 1);
        assert_true(addr_equal(&out[0], &ep.addr));
        assert_true(nc_addr_format(&out[0], buf, sizeof(buf)) > 0);
        assert_string_equal(buf, in[i]);
    }
}

static void resolve_loopback_interface_includes_127_0_0_1(void **state)
{
    nc_endpoint ep;
    nc_addr out[16];
    size_t n;
    bool seen = false;

    (void)state;
    assert_int_equal(nc_endpoint_parse(&ep, "lo:7002", NULL, 0), 0);
    assert_int_equal(nc_endpoint_resolve(&ep, out, 16, &n), 0);
    assert_true(n >= 1);
    assert_int_equal(out[0].u.sa.sa_family, AF_INET);   /* IPv4 first */
    for (size_t i = 0; i < n && i < 16; i++) {
        assert_int_equal(nc_addr_port(&out[i]), 7002);
        if (out[i].u.sa.sa_family == AF_INET &&
            out[i].u.in4.sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            seen = true;
    }
    assert_true(seen);
}

static void resolve_vanished_interface_is_enodev(void **state)
{
    nc_endpoint ep;
    nc_addr out[4];
    size_t n = 7;

    (void)state;
    memset(&ep, 0, sizeof(ep));
    ep.kind = NC_EP_IFACE;
    ep.port = 1;
    strcpy(ep.iface, "nosuchif0");
    assert_int_equal(nc_endpoint_resolve(&ep, out, 4, &n), -ENODEV);
    assert_int_equal(n, 0);
    ep.iface[0] = '\0';
    assert_int_equal(nc_endpoint_resolve(&ep, out, 4, &n), -EINVAL);
}

static void from_sockaddr_of_a_real_socket_formats_its_port(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct sockaddr_in sin;
    nc_addr a;
    char buf[NC_ADDRSTRLEN], want[NC_ADDRSTRLEN];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    (void)state;
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    close(fd);
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&ss, len),
                     0);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_true(nc_addr_port(&a) > 0);
    snprintf(want, sizeof(want), "127.0.0.1:%u", nc_addr_port(&a));
    assert_true(nc_addr_format(&a, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, want);
}

static void from_sockaddr_handles_ipv6_unix_and_rejects_others(void **state)
{
    struct sockaddr_in6 s6;
    struct sockaddr_un un;
    struct sockaddr_storage big;
    nc_addr a;
    char buf[NC_ADDRSTRLEN];
    socklen_t ulen;

    (void)state;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(443);
    s6.sin6_scope_id = if_nametoindex("lo");
    assert_int_equal(inet_pton(AF_INET6, "fe80::9", &s6.sin6_addr), 1);
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&s6,
                                           sizeof(s6)), 0);
    assert_true(nc_addr_format(&a, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "[fe80::9%lo]:443");

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "/tmp/p.sock");
    ulen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 12);
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&un, ulen),
                     0);
    assert_int_equal(a.len, ulen);
    assert_true(nc_addr_format(&a, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "unix:/tmp/p.sock");
    assert_int_equal(nc_addr_port(&a), 0);

    /* An unnamed peer (a client that never bound) has only the family. */
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&un,
                                           sizeof(sa_family_t)), 0);
    assert_true(nc_addr_format(&a, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "unix:");

    memset(&big, 0, sizeof(big));
    big.ss_family = AF_PACKET;
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&big, 20),
                     -EAFNOSUPPORT);
    big.ss_family = AF_INET;
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&big, 8),
                     -EINVAL);
    assert_int_equal(nc_addr_from_sockaddr(&a, (struct sockaddr *)&big,
                                           sizeof(big) + 1), -EINVAL);
    assert_int_equal(nc_addr_from_sockaddr(&a, NULL, 16), -EINVAL);
    assert_int_equal(nc_addr_from_sockaddr(NULL, (struct sockaddr *)&s6,
                                           sizeof(s6)), -EINVAL);
}

static void abstract_name_with_embedded_nul_cannot_be_formatted(void **state)
{
    nc_addr a;
    char buf[NC_ADDRSTRLEN];

    (void)state;
    memset(&a, 0, sizeof(a));
    a.u.un.sun_family = AF_UNIX;
    memcpy(a.u.un.sun_path, "\0ab\0c", 5);
    a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 5);
    assert_int_equal(nc_addr_format(&a, buf, sizeof(buf)), -EINVAL);
}

static nc_addr text_addr(const char *text)
{
    nc_endpoint ep;
    int rc = nc_endpoint_parse(&ep, text, NULL, 0);

    if (rc != 0)
        fail_msg("'%s' does not parse: %d", text, rc);
    return ep.addr;
}

static void loopback_and_any_are_recognised(void **state)
{
    static const struct {
        const char *in;
        bool loopback, any;
    } cases[] = {
        { "127.0.0.1:1", true, false },
        { "127.255.0.9:1", true, false },
        { "128.0.0.1:1", false, false },
        { "192.0.2.1:1", false, false },
        { "0.0.0.0:1", false, true },
        { "[::1]:1", true, false },
        { "[::]:1", false, true },
        { "[::2]:1", false, false },
        { "[::ffff:127.0.0.1]:1", true, false },
        { "[::ffff:127.1.2.3]:1", true, false },
        { "[::ffff:192.0.2.1]:1", false, false },
        { "[::ffff:0.0.0.0]:1", false, false },
        { "[fe80::1%lo]:1", false, false },
        { "unix:/tmp/s", true, false },
        { "unix:@s", true, false },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nc_addr a = text_addr(cases[i].in);
        if (nc_addr_is_loopback(&a) != cases[i].loopback ||
            nc_addr_is_any(&a) != cases[i].any)
            fail_msg("%s: loopback %d any %d", cases[i].in,
                     nc_addr_is_loopback(&a), nc_addr_is_any(&a));
    }
    assert_false(nc_addr_is_loopback(NULL));
    assert_false(nc_addr_is_any(NULL));
    assert_int_equal(nc_addr_port(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_has_enough_rows),
        cmocka_unit_test(good_inputs_parse_to_kind_port_and_text),
        cmocka_unit_test(good_inputs_round_trip_through_format),
        cmocka_unit_test(bad_inputs_fail_with_errno_and_message_and_keep_ep),
        cmocka_unit_test(null_arguments_are_einval),
        cmocka_unit_test(small_why_buffer_is_truncated_and_terminated),
        cmocka_unit_test(parsed_addresses_have_bind_lengths),
        cmocka_unit_test(abstract_unix_name_maps_to_leading_nul),
        cmocka_unit_test(scope_by_name_and_by_index_give_the_same_id),
        cmocka_unit_test(unknown_scope_index_is_printed_as_a_number),
        cmocka_unit_test(format_reports_enospc_and_einval),
        cmocka_unit_test(endpoint_port_field_wins_over_address_port),
        cmocka_unit_test(resolve_any_gives_ipv6_then_ipv4_wildcard),
        cmocka_unit_test(resolve_localhost_gives_127_0_0_1_then_ipv6_loopback),
        cmocka_unit_test(resolve_counts_all_but_writes_at_most_max),
        cmocka_unit_test(resolve_address_and_unix_give_themselves),
        cmocka_unit_test(resolve_loopback_interface_includes_127_0_0_1),
        cmocka_unit_test(resolve_vanished_interface_is_enodev),
        cmocka_unit_test(from_sockaddr_of_a_real_socket_formats_its_port),
        cmocka_unit_test(from_sockaddr_handles_ipv6_unix_and_rejects_others),
        cmocka_unit_test(abstract_name_with_embedded_nul_cannot_be_formatted),
        cmocka_unit_test(loopback_and_any_are_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
