/*
 * test_examples_tls.c - the example programs with TLS, as a user runs
 * them: http-hello serving HTTPS to curl (keep-alive) and refusing plain
 * HTTP, echo-server and echo-client verifying certificates and names,
 * netcore-doctor showing a handshake and a refused certificate.
 * Certificates are made fresh by
 * tests/tls-certs.sh; everything talks over loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netcore.h"
#include "proc.h"

#define CURL "/usr/bin/curl"

static char certs[PATH_MAX];

/* The path of one of the certificate files, in a static buffer of its
 * own per slot (a case needs at most four at once). */
static const char *cert(const char *name)
{
    static char paths[4][PATH_MAX + 80];
    static unsigned next;
    char *p = paths[next++ % 4];

    snprintf(p, PATH_MAX + 80, "%.*s/%.63s", PATH_MAX, certs, name);
    return p;
}

/* A TLS server: "echo-server" or "http-hello" with cert NAME.pem/.key. */
static struct proc *tls_server(const char *prog, const char *name)
{
    char crt[64], key[64];
    struct proc *p;

    snprintf(crt, sizeof crt, "%s.pem", name);
    snprintf(key, sizeof key, "%s.key", name);
    p = proc_start(prog, "--listen", "127.0.0.1:0", "--tls-cert", cert(crt),
                   "--tls-key", cert(key), NULL);
    return p;
}

static void https_keep_alive_with_curl(void **state)
{
    struct proc *srv = tls_server("http-hello", "server");
    char url[64], port[16];
    const char *line;
    struct proc *c;

    (void)state;
    if (access(CURL, X_OK) != 0)
        skip();
    snprintf(port, sizeof port, "%u", listen_port(srv));
    line = proc_wait_line(srv, OUT, "listening on 127.0.0.1:");
    assert_non_null(line);
    assert_non_null(strstr(line, ", TLS)\n"));
    snprintf(url, sizeof url, "https://localhost:%s/", port);
    /* Two requests, one connection: the second reuses the first's. */
    c = proc_start(CURL, "-sS", "--cacert", cert("ca.pem"), "-w",
                   " connects=%{num_connects}\n", url, url, NULL);
    assert_int_equal(proc_finish(c), 0);
    assert_string_equal(c->buf[OUT], "Hello, World! connects=1\n"
                                     "Hello, World! connects=0\n");
    /* Without the CA, curl refuses the certificate. */
    c = proc_start(CURL, "-sS", url, NULL);
    assert_int_not_equal(proc_finish(c), 0);
    assert_int_equal(proc_stop(srv, SIGTERM), 0);
    assert_non_null(strstr(srv->buf[OUT], "2 answers by status: 200 2"));
    assert_non_null(strstr(srv->buf[OUT], "TLS failure 1"));
}

/* Plain HTTP to the TLS port: no answer, the connection is closed, and
 * the server counts a TLS failure. */
static void plain_http_to_https_gets_nothing(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct proc *srv = tls_server("http-hello", "server");
    char buf[256];
    bool eof;
    int fd;

    (void)state;
    fd = tcp_connect(listen_port(srv));
    send_all(fd, req, sizeof req - 1);
    assert_true(read_until_eof(fd, buf, sizeof buf, &eof) < 8 ||
                strncmp(buf, "HTTP/", 5) != 0);
    assert_true(eof);
    close(fd);
    assert_int_equal(proc_stop(srv, SIGTERM), 0);
    assert_non_null(strstr(srv->buf[OUT], "TLS failure 1"));
}

static void echo_client_verifies_the_server(void **state)
{
    struct proc *srv = tls_server("echo-server", "server");
    char target[32];
    struct proc *c;

    (void)state;
    snprintf(target, sizeof target, "localhost:%u", listen_port(srv));
    c = proc_start("echo-client", target, "--tls", "--tls-ca", cert("ca.pem"),
                   "--message", "over tls", NULL);
    assert_int_equal(proc_finish(c), 0);
    assert_string_equal(c->buf[OUT], "over tls\n");
    /* A name the certificate does not list. */
    c = proc_start("echo-client", target, "--tls", "--tls-ca", cert("ca.pem"),
                   "--tls-name", "elsewhere.example", "--message", "x", NULL);
    assert_int_equal(proc_finish(c), 1);
    assert_non_null(strstr(c->buf[ERR], "NC_ETLS_CERT_NAME"));
    assert_non_null(strstr(c->buf[ERR], "another host name"));
    /* The system's CAs do not know the test CA. */
    c = proc_start("echo-client", target, "--tls", "--message", "x", NULL);
    assert_int_equal(proc_finish(c), 1);
    assert_non_null(strstr(c->buf[ERR], "NC_ETLS_CERT_UNTRUSTED"));
    assert_int_equal(proc_stop(srv, SIGTERM), 0);
}

static void doctor_shows_the_handshake_and_an_expired_certificate(void **s)
{
    struct proc *good = tls_server("echo-server", "server");
    struct proc *old = tls_server("echo-server", "expired");
    char target[32];
    struct proc *d;

    (void)s;
    snprintf(target, sizeof target, "127.0.0.1:%u", listen_port(good));
    d = proc_start("netcore-doctor", "connect", target, "--tls", "--tls-ca",
                   cert("ca.pem"), NULL);
    assert_int_equal(proc_finish(d), 0);
    assert_non_null(strstr(d->buf[OUT], "\ntls: TLSv1.3, "));
    assert_non_null(strstr(d->buf[OUT], "\ncertificate: CN = localhost\n"));
    assert_non_null(strstr(d->buf[OUT], "\n  expires:   "));
    assert_non_null(strstr(d->buf[OUT], "\nverification: ok"));
    snprintf(target, sizeof target, "127.0.0.1:%u", listen_port(old));
    d = proc_start("netcore-doctor", "connect", target, "--tls", "--tls-ca",
                   cert("ca.pem"), NULL);
    assert_int_equal(proc_finish(d), 1);
    assert_non_null(strstr(d->buf[OUT], "the TLS handshake failed"));
    assert_non_null(strstr(d->buf[OUT], " (expired)\n"));
    assert_non_null(strstr(d->buf[OUT], "NC_ETLS_CERT_EXPIRED"));
    assert_int_equal(proc_stop(good, SIGTERM), 0);
    assert_int_equal(proc_stop(old, SIGTERM), 0);
}

/* --tls against a server that speaks no TLS: the doctor says how it
 * would have verified (which CAs, which name) and that the handshake
 * failed before there was a certificate to verify, not "off". */
static void doctor_tls_to_a_plain_server_says_what_was_configured(void **s)
{
    struct proc *plain = proc_start("echo-server", "--listen", "127.0.0.1:0",
                                    NULL);
    char target[32], want[PATH_MAX + 64];
    struct proc *d;

    (void)s;
    snprintf(target, sizeof target, "127.0.0.1:%u", listen_port(plain));
    d = proc_start("netcore-doctor", "connect", target, "--tls", "--tls-ca",
                   cert("ca.pem"), NULL);
    assert_int_equal(proc_finish(d), 1);
    assert_null(strstr(d->buf[OUT], "verification: off"));
    assert_non_null(strstr(d->buf[OUT], "\nverification: not reached: the "
                                        "handshake failed before the server "
                                        "showed a certificate\n"));
    snprintf(want, sizeof want, "\n  configured: the CAs in %s, for the "
             "address 127.0.0.1\n", cert("ca.pem"));
    assert_non_null(strstr(d->buf[OUT], want));
    assert_non_null(strstr(d->buf[OUT], "connect to 127.0.0.1:"));
    d = proc_start("netcore-doctor", "connect", target, "--tls",
                   "--tls-name", "example.test", NULL);
    assert_int_equal(proc_finish(d), 1);
    assert_non_null(strstr(d->buf[OUT], "\n  configured: the system's CA "
                                        "store, for the name example.test\n"));
    assert_int_equal(proc_stop(plain, SIGTERM), 0);
}

static void bad_tls_arguments_are_named(void **state)
{
    struct proc *p;

    (void)state;
    p = proc_start("echo-server", "--listen", "127.0.0.1:0", "--tls-cert",
                   cert("server.pem"), NULL);
    assert_int_equal(proc_finish(p), 2);
    assert_non_null(strstr(p->buf[ERR], "--tls-cert and --tls-key go "
                                        "together"));
    p = proc_start("http-hello", "--listen", "127.0.0.1:0", "--tls-cert",
                   "/nonexistent/cert.pem", "--tls-key", cert("server.key"),
                   NULL);
    assert_int_equal(proc_finish(p), 1);
    assert_non_null(strstr(p->buf[ERR], "/nonexistent/cert.pem"));
    p = proc_start("echo-client", "127.0.0.1:9", "--tls-ca", cert("ca.pem"),
                   NULL);
    assert_int_equal(proc_finish(p), 2);
    assert_non_null(strstr(p->buf[ERR], "need --tls"));
}

/* ---- SIGHUP: the certificate read again --------------------------------------- */

/* Put a copy of certificate file NAME at path, replacing what is there
 * in one step (rename), as a renewal script would. */
static void install_cert(const char *name, const char *path)
{
    char tmp[PATH_MAX + 64], cmd[2 * PATH_MAX + 160];

    snprintf(tmp, sizeof tmp, "%s.new", path);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", cert(name), tmp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* One TLS client connection of our own that sends a large message and
 * checks its echo, byte for byte. */
struct big_echo {
    const char *out;
    size_t total, got;
    bool mismatch, closed;
    nc_tls_info info;       /* as of on_open */
};

static void big_open(nc_conn *c, void *ud)
{
    struct big_echo *b = ud;

    nc_conn_tls_info(c, &b->info);
    if (nc_conn_write(c, b->out, b->total) < 0)
        nc_conn_abort(c);
}

static size_t big_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct big_echo *b = ud;

    if (b->got + len > b->total || memcmp(data, b->out + b->got, len) != 0)
        b->mismatch = true;
    b->got += len;
    if (b->got >= b->total)
        nc_conn_close(c);
    return len;
}

static void big_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    (void)reason;
    (void)err;
    ((struct big_echo *)ud)->closed = true;
}

/* Run loop until at least want bytes of the echo came back, or it
 * closed, or 10 s passed. */
static void big_run(nc_loop *loop, struct big_echo *b, size_t want)
{
    uint64_t until = deadline();

    while (b->got < want && !b->closed && ms_left(until) > 0)
        assert_true(nc_loop_run(loop, NC_RUN_ONCE) >= 0);
}

/* SIGHUP to a TLS server: it reads --tls-cert and --tls-key again. A
 * large echo in flight (over TLS, under the old certificate) arrives
 * whole, and a new handshake is shown the new certificate: here one for
 * the same names, by another CA (a renewal by a new issuer). */
static void sighup_reads_the_certificate_again_for_new_handshakes(void **s)
{
    static const nc_conn_callbacks cbs = {big_open, big_data, NULL,
                                          big_close};
    enum { TOTAL = 4 << 20 };
    char crt[PATH_MAX + 80], key[PATH_MAX + 80];   /* cert() reuses its */
    struct big_echo b = {NULL, TOTAL, 0, false, false, {0}};
    nc_tls_options to = {0};
    nc_connect_options co;
    char target[32], *out = malloc(TOTAL);
    struct proc *srv, *d;
    nc_loop *loop;
    size_t k;

    (void)s;
    snprintf(crt, sizeof crt, "%s", cert("live.pem"));
    snprintf(key, sizeof key, "%s", cert("live.key"));
    assert_non_null(out);
    for (k = 0; k < TOTAL; k++)
        out[k] = (char)('a' + k % 26);
    b.out = out;
    install_cert("server.pem", crt);
    install_cert("server.key", key);
    srv = proc_start("echo-server", "--listen", "127.0.0.1:0", "--tls-cert",
                     crt, "--tls-key", key, NULL);
    snprintf(target, sizeof target, "127.0.0.1:%u", listen_port(srv));

    memset(&co, 0, sizeof co);
    to.ca_file = cert("ca.pem");
    assert_int_equal(nc_tls_client_new(&to, &co.tls, NULL, 0), 0);
    co.conn.high_water = 2 * TOTAL;    /* our message must not stop our
                                          reading of its echo */
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(nc_connect(loop, target, &co, &cbs, &b, NULL), 0);
    big_run(loop, &b, 1);
    assert_true(b.got > 0 && b.got < TOTAL);

    install_cert("untrusted.pem", crt);
    install_cert("untrusted.key", key);
    assert_int_equal(kill(srv->pid, SIGHUP), 0);
    assert_non_null(proc_wait_line(srv, OUT, "echo-server: SIGHUP: new "
                                             "connections get the TLS "
                                             "certificate now in "));
    big_run(loop, &b, TOTAL);
    assert_int_equal(b.got, TOTAL);
    assert_false(b.mismatch);
    assert_string_equal(b.info.peer_issuer, "CN = libnetcore test CA");
    nc_loop_free(loop);
    nc_tls_ctx_free(co.tls);
    free(out);

    d = proc_start("netcore-doctor", "connect", target, "--tls", "--tls-ca",
                   cert("other-ca.pem"), NULL);
    assert_int_equal(proc_finish(d), 0);
    assert_non_null(strstr(d->buf[OUT], "\n  issued by: CN = someone else's "
                                        "CA\n"));
    assert_non_null(strstr(d->buf[OUT], "\nverification: ok"));
    /* A key that does not match: the server says so, keeps the one it
     * has, and goes on serving. */
    install_cert("server.pem", crt);
    assert_int_equal(kill(srv->pid, SIGHUP), 0);
    assert_non_null(proc_wait_line(srv, ERR, "echo-server: SIGHUP: kept the "
                                             "TLS certificate in use: "));
    d = proc_start("netcore-doctor", "connect", target, "--tls", "--tls-ca",
                   cert("other-ca.pem"), NULL);
    assert_int_equal(proc_finish(d), 0);
    assert_int_equal(proc_stop(srv, SIGTERM), 0);
}

/* ---- setup ------------------------------------------------------------------- */

static int make_certs(void **state)
{
    char tmpl[] = "/tmp/nc-test-examples-tls.XXXXXX";
    const char *root = getenv("NC_SOURCE_DIR");
    char cmd[PATH_MAX * 2 + 64];

    if (proc_setup(state) < 0 || !mkdtemp(tmpl))
        return -1;
    snprintf(certs, sizeof certs, "%s", tmpl);
    snprintf(cmd, sizeof cmd, "bash '%s/tests/tls-certs.sh' '%s'",
             root ? root : ".", certs);
    return system(cmd) == 0 ? 0 : -1;
}

static int remove_certs(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs);
    return system(cmd) == 0 ? 0 : -1;
}

#define CASE(f) cmocka_unit_test_teardown(f, proc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(https_keep_alive_with_curl),
        CASE(plain_http_to_https_gets_nothing),
        CASE(echo_client_verifies_the_server),
        CASE(doctor_shows_the_handshake_and_an_expired_certificate),
        CASE(doctor_tls_to_a_plain_server_says_what_was_configured),
        CASE(bad_tls_arguments_are_named),
        CASE(sighup_reads_the_certificate_again_for_new_handshakes),
    };
    nc_tls_ctx *probe = NULL;

    if (nc_tls_client_new(NULL, &probe, NULL, 0) == -ENOTSUP) {
        const char *ci = getenv("CI");
        printf("test_examples_tls: built without TLS%s\n",
               ci && strcmp(ci, "true") == 0 ? ": failing, CI needs TLS"
                                             : ": skipped");
        return ci && strcmp(ci, "true") == 0 ? 1 : 0;
    }
    nc_tls_ctx_free(probe);
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("examples_tls", tests, make_certs,
                                       remove_certs);
}
