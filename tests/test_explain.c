/*
 * test_explain.c - nc_explain's texts name the likely cause in words a
 * log reader can act on; nc_strerror, nc_errname and nc_version basics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

struct expect {
    nc_op op;
    int err;
    const char *words[3];   /* each must appear in the text; NULL ends */
};

static const struct expect cases[] = {
    {NC_OP_CONNECT, ECONNREFUSED, {"listening", "loopback", "127.0.0.1"}},
    {NC_OP_CONNECT, EHOSTUNREACH, {"firewall", "no route", "admin-prohibited"}},
    {NC_OP_CONNECT, ENETUNREACH, {"network unreachable", "route", NULL}},
    {NC_OP_CONNECT, ETIMEDOUT, {"dropped", "firewall", "down"}},
    {NC_OP_CONNECT, ECONNRESET, {"reset", NULL, NULL}},
    {NC_OP_CONNECT, EADDRNOTAVAIL, {"local", "interface", "TIME_WAIT"}},
    {NC_OP_CONNECT, EACCES, {"firewall", "server host", "ICMPv6"}},
    {NC_OP_CONNECT, EPERM, {"firewall", "bpf", NULL}},
    {NC_OP_CONNECT, EAFNOSUPPORT, {"IPv4", "IPv6", NULL}},
    {NC_OP_CONNECT, EINVAL, {"invalid endpoint", "*:PORT", "brackets"}},
    {NC_OP_CONNECT, ENOENT, {"no Unix socket", "not running",
                             "another path"}},
    {NC_OP_CONNECT, ENODEV, {"unknown interface", "not looked up",
                             "netcore-doctor ifaces"}},
    {NC_OP_CONNECT, ERANGE, {"port", "0 to 65535", NULL}},
    {NC_OP_CONNECT, ENAMETOOLONG, {"107", "15", NULL}},
    {NC_OP_ACCEPT, EMFILE, {"file descriptors", "limit", "sheds"}},
    {NC_OP_ACCEPT, ENFILE, {"file descriptors", "limit", "sheds"}},
    {NC_OP_ACCEPT, ECONNABORTED, {"before it was accepted", "harmless", NULL}},
    {NC_OP_ACCEPT, EPROTO, {"protocol", "harmless", NULL}},
    {NC_OP_ACCEPT, ENOBUFS, {"memory", "retries", NULL}},
    {NC_OP_ACCEPT, ENOMEM, {"memory", "retries", NULL}},
    {NC_OP_BIND, EADDRINUSE, {"another socket", "TIME_WAIT", "SO_REUSEADDR"}},
    {NC_OP_BIND, EADDRNOTAVAIL, {"not on any interface",
                                 "netcore-doctor ifaces", NULL}},
    {NC_OP_BIND, EACCES, {"1024", "CAP_NET_BIND_SERVICE", "root"}},
    {NC_OP_BIND, ENOENT, {"Unix socket", "directory", NULL}},
    {NC_OP_BIND, EINVAL, {"invalid endpoint", "four numbers", "brackets"}},
    {NC_OP_BIND, ENODEV, {"unknown interface", "not looked up",
                          "netcore-doctor ifaces"}},
    {NC_OP_BIND, ERANGE, {"port", "0 to 65535", "kernel choose"}},
    {NC_OP_BIND, ENAMETOOLONG, {"Unix socket path", "107", "15"}},
    {NC_OP_READ, ECONNRESET, {"peer reset", NULL, NULL}},
    {NC_OP_WRITE, ECONNRESET, {"peer reset", NULL, NULL}},
    {NC_OP_READ, EPIPE, {"broken pipe", NULL, NULL}},
    {NC_OP_WRITE, EPIPE, {"broken pipe", "MSG_NOSIGNAL", NULL}},
    {NC_OP_READ, ETIMEDOUT, {"keepalive", "retransmission", NULL}},
    {NC_OP_WRITE, ETIMEDOUT, {"keepalive", "retransmission", NULL}},
    {NC_OP_READ, EHOSTUNREACH, {"unreachable", NULL, NULL}},
    {NC_OP_WRITE, ENETUNREACH, {"unreachable", NULL, NULL}},
    {NC_OP_READ, ENOTCONN, {"not connected", NULL, NULL}},
    /* the same for every operation */
    {NC_OP_READ, EAGAIN, {"not an error", "would block", NULL}},
    {NC_OP_WRITE, EWOULDBLOCK, {"not an error", "would block", NULL}},
    {NC_OP_CONNECT, EINTR, {"signal", "retry", NULL}},
    {NC_OP_CONNECT, EMFILE, {"file descriptors", NULL, NULL}},
    {NC_OP_WRITE, ENOBUFS, {"memory", NULL, NULL}},
    {NC_OP_READ, EBADF, {"closed", NULL, NULL}},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const char *generic(void)
{
    /* EDOM means nothing for a socket: it gets the generic sentence. */
    return nc_explain(NC_OP_CONNECT, EDOM);
}

static void each_case_names_its_cause(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        const char *text = nc_explain(cases[i].op, cases[i].err);
        assert_non_null(text);
        if (text == generic())
            fail_msg("op %d %s: generic text", (int)cases[i].op,
                     nc_errname(cases[i].err));
        for (size_t w = 0; w < 3 && cases[i].words[w]; w++)
            if (!strstr(text, cases[i].words[w]))
                fail_msg("op %d %s: \"%s\" lacks \"%s\"", (int)cases[i].op,
                         nc_errname(cases[i].err), text, cases[i].words[w]);
    }
}

static void negative_and_positive_err_give_the_same_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++)
        assert_ptr_equal(nc_explain(cases[i].op, cases[i].err),
                         nc_explain(cases[i].op, -cases[i].err));
    assert_ptr_equal(nc_explain(NC_OP_CONNECT, -EDOM), generic());
}

static void connect_refused_points_at_loopback_only_servers(void **state)
{
    const char *t = nc_explain(NC_OP_CONNECT, -ECONNREFUSED);

    (void)state;
    assert_non_null(strstr(t, "nothing is listening"));
    assert_non_null(strstr(t, "loopback"));
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, -EHOSTUNREACH),
                           "firewall"));
}

/* What nc_listen and nc_connect return for mistyped endpoints, explained
 * as endpoint errors: never the generic sentence, and EINVAL never as a
 * socket already bound (nc_listen's sockets are always new). */
static void endpoint_errors_are_explained_as_such(void **state)
{
    static const char *const specs[] = {"eth99:80", ":70000",
                                        "999.1.1.1:80", "[::1",
                                        "localhost:x", "127.1:80"};
    static const nc_op ops[] = {NC_OP_BIND, NC_OP_CONNECT};

    (void)state;
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        nc_endpoint ep;
        int err = nc_endpoint_parse(&ep, specs[i], NULL, 0);
        assert_true(err < 0);
        for (size_t o = 0; o < 2; o++) {
            const char *text = nc_explain(ops[o], err);
            if (text == generic() || strstr(text, "already bound") == text ||
                (err == -EINVAL && strncmp(text, "invalid endpoint", 16)) ||
                (err == -ERANGE && !strstr(text, "65535")) ||
                (err == -ENODEV && !strstr(text, "interface")))
                fail_msg("%s (%s), op %d: \"%s\"", specs[i], nc_errname(err),
                         (int)ops[o], text);
        }
    }
    /* A Unix socket nobody listens on, for connect; a missing directory
     * for bind. */
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, -ENOENT),
                           "no Unix socket at that path"));
    assert_non_null(strstr(nc_explain(NC_OP_BIND, -ENOENT), "directory"));
}

static void same_errno_explained_per_operation(void **state)
{
    (void)state;
    /* EADDRNOTAVAIL: a bind names the missing interface address, a
     * connect the exhausted local ports. */
    assert_string_not_equal(nc_explain(NC_OP_BIND, EADDRNOTAVAIL),
                            nc_explain(NC_OP_CONNECT, EADDRNOTAVAIL));
    assert_string_not_equal(nc_explain(NC_OP_CONNECT, ETIMEDOUT),
                            nc_explain(NC_OP_READ, ETIMEDOUT));
    assert_string_not_equal(nc_explain(NC_OP_CONNECT, ECONNRESET),
                            nc_explain(NC_OP_READ, ECONNRESET));
    assert_string_not_equal(nc_explain(NC_OP_BIND, EACCES),
                            nc_explain(NC_OP_CONNECT, EACCES));
}

static void unknown_errors_get_the_generic_text(void **state)
{
    const char *g = generic();

    (void)state;
    assert_non_null(strstr(g, "see the system error text"));
    assert_ptr_equal(nc_explain(NC_OP_READ, 9999), g);
    assert_ptr_equal(nc_explain(NC_OP_BIND, -9999), g);
    assert_ptr_equal(nc_explain(NC_OP_BIND, INT_MIN), g);
    assert_ptr_equal(nc_explain(NC_OP_BIND, INT_MAX), g);
    /* a connect error explained for accept does not borrow its text */
    assert_ptr_equal(nc_explain(NC_OP_ACCEPT, ECONNREFUSED), g);
    assert_ptr_equal(nc_explain((nc_op)0, EDOM), g);
    assert_ptr_equal(nc_explain((nc_op)42, -EDOM), g);
    assert_non_null(nc_explain((nc_op)42, ECONNREFUSED));
    assert_non_null(strstr(nc_explain(NC_OP_READ, 0), "no error"));
}

static void strerror_names_both_signs(void **state)
{
    (void)state;
    assert_string_equal(nc_strerror(-ECONNREFUSED), "Connection refused");
    assert_string_equal(nc_strerror(ECONNREFUSED), "Connection refused");
    assert_string_equal(nc_strerror(0), "Success");
    assert_string_equal(nc_strerror(-EAGAIN),
                        "Resource temporarily unavailable");
    assert_string_equal(nc_strerror(9999), "Unknown error");
    assert_string_equal(nc_strerror(-9999), "Unknown error");
    assert_string_equal(nc_strerror(INT_MIN), "Unknown error");
    assert_string_equal(nc_strerror(INT_MAX), "Unknown error");
}

static void errname_names_both_signs(void **state)
{
    (void)state;
    assert_string_equal(nc_errname(-EAGAIN), "EAGAIN");
    assert_string_equal(nc_errname(EAGAIN), "EAGAIN");
    assert_string_equal(nc_errname(-ECONNREFUSED), "ECONNREFUSED");
    assert_string_equal(nc_errname(EHOSTUNREACH), "EHOSTUNREACH");
    assert_string_equal(nc_errname(0), "0");
    assert_string_equal(nc_errname(9999), "E?");
    assert_string_equal(nc_errname(-9999), "E?");
    assert_string_equal(nc_errname(INT_MIN), "E?");
}

static void version_is_built_from_the_header_macros(void **state)
{
    char want[32];

    (void)state;
    snprintf(want, sizeof(want), "%d.%d.%d", NC_VERSION_MAJOR,
             NC_VERSION_MINOR, NC_VERSION_PATCH);
    assert_string_equal(nc_version(), want);
    assert_string_equal(nc_version(), "0.1.0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_case_names_its_cause),
        cmocka_unit_test(negative_and_positive_err_give_the_same_text),
        cmocka_unit_test(connect_refused_points_at_loopback_only_servers),
        cmocka_unit_test(endpoint_errors_are_explained_as_such),
        cmocka_unit_test(same_errno_explained_per_operation),
        cmocka_unit_test(unknown_errors_get_the_generic_text),
        cmocka_unit_test(strerror_names_both_signs),
        cmocka_unit_test(errname_names_both_signs),
        cmocka_unit_test(version_is_built_from_the_header_macros),
    };
    return cmocka_run_group_tests_name("explain", tests, NULL, NULL);
}
