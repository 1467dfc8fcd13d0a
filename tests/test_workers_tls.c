/*
 * test_workers_tls.c - TLS through the workers: with SO_REUSEPORT and
 * through the hand-off acceptor, a connection handed to a worker does
 * its handshake there and echoes plain text; a graceful stop ends them
 * with the TLS close. Certificates are made by tests/tls-certs.sh.
 * Runs under ThreadSanitizer (the context is shared by the workers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 6

static char certs[PATH_MAX];

static void cert(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", certs, name);
}

/* ---- server: echo, counting opens per worker ---------------------------- */

static atomic_int opens[2];

static int on_start(nc_loop *loop, unsigned index, void *ud)
{
    (void)ud;
    nc_loop_set_data(loop, &opens[index]);
    return 0;
}

static void srv_open(nc_conn *c, void *ud)
{
    (void)ud;
    atomic_fetch_add((atomic_int *)nc_loop_data(nc_conn_loop(c)), 1);
}

static size_t srv_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    nc_conn_write(c, data, len);
    return len;
}

static const nc_conn_callbacks srv_cbs = { .on_open = srv_open,
                                           .on_data = srv_data };

/* ---- clients, one after the other, on a loop of the test thread -------- */

struct client {
    char got[16];
    size_t len;
    bool done;
    nc_close_reason reason;
    char issuer[256];      /* of the certificate the server showed */
};

static void cli_open(nc_conn *c, void *ud)
{
    struct client *k = ud;
    nc_tls_info t;
    if (nc_conn_tls_info(c, &t) == 0)
        snprintf(k->issuer, sizeof(k->issuer), "%s", t.peer_issuer);
    nc_conn_write(c, "hello, tls", 10);
}

static size_t cli_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct client *k = ud;
    size_t n = len < 10 - k->len ? len : 10 - k->len;
    memcpy(k->got + k->len, data, n);
    k->len += n;
    if (k->len == 10)
        nc_conn_close(c);
    return len;
}

static void cli_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct client *k = ud;
    (void)c;
    (void)err;
    k->reason = reason;
    k->done = true;
}

static const nc_conn_callbacks cli_cbs = {
    .on_open = cli_open, .on_data = cli_data, .on_close = cli_close,
};

static void echo_over_tls(nc_workers_accept mode)
{
    char crt[PATH_MAX + 32], key[PATH_MAX + 32], ca[PATH_MAX + 32];
    cert(crt, sizeof(crt), "server.pem");
    cert(key, sizeof(key), "server.key");
    cert(ca, sizeof(ca), "ca.pem");
    nc_tls_options so = { .cert_file = crt, .key_file = key };
    nc_tls_options co = { .ca_file = ca };
    nc_tls_ctx *sctx, *cctx;
    assert_int_equal(nc_tls_server_new(&so, &sctx, NULL, 0), 0);
    assert_int_equal(nc_tls_client_new(&co, &cctx, NULL, 0), 0);

    atomic_store(&opens[0], 0);
    atomic_store(&opens[1], 0);
    nc_workers_options wo = { .threads = 2, .accept = mode,
                              .on_start = on_start };
    nc_workers *w;
    assert_int_equal(nc_workers_start(&wo, &w), 0);
    nc_listener_options lo = { .tls = sctx };
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:0", &lo, &srv_cbs,
                                       NULL), (int)mode);
    nc_tls_ctx_free(sctx);   /* the listeners hold their own references */
    nc_addr a;
    size_t n;
    assert_int_equal(nc_workers_addrs(w, &a, 1, &n), 0);
    char target[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&a, target, sizeof(target)) > 0);

    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    for (int i = 0; i < CLIENTS; i++) {
        struct client k = { .len = 0 };
        nc_connect_options o = { .tls = cctx };
        assert_int_equal(nc_connect(loop, target, &o, &cli_cbs, &k, NULL), 0);
        assert_true(run_until(loop, flag_set, &k.done, 10000));
        assert_int_equal(k.reason, NC_CLOSE_LOCAL);
        assert_memory_equal(k.got, "hello, tls", 10);
    }
    nc_loop_free(loop);
    nc_tls_ctx_free(cctx);
    assert_int_equal(nc_workers_stop(w, 2000), 0);
    assert_int_equal(nc_workers_wait(w), 0);
    nc_loop_stats per[2];
    assert_int_equal(nc_workers_stats(w, per, 2, NULL), 2);
    assert_int_equal(per[0].accepted + per[1].accepted, CLIENTS);
    assert_int_equal(atomic_load(&opens[0]) + atomic_load(&opens[1]),
                     CLIENTS);
    if (mode == NC_WORKERS_ACCEPT_HANDOFF) {   /* round-robin */
        assert_int_equal(atomic_load(&opens[0]), CLIENTS / 2);
        assert_int_equal(per[1].accepted, CLIENTS / 2);
    }
    assert_int_equal(per[0].open + per[1].open, 0);
    assert_int_equal(per[0].closed[NC_CLOSE_TLS] + per[1].closed[NC_CLOSE_TLS],
                     0);
    nc_workers_free(w);
}

static void tls_with_reuseport(void **state)
{
    (void)state;
    echo_over_tls(NC_WORKERS_ACCEPT_REUSEPORT);
}

static void tls_through_the_hand_off(void **state)
{
    (void)state;
    echo_over_tls(NC_WORKERS_ACCEPT_HANDOFF);
}

/* A client that connects and never says hello holds no stop up: a
 * connection still in its handshake is closed at once. */
static void a_handshake_in_progress_does_not_hold_a_stop(void **state)
{
    (void)state;
    char crt[PATH_MAX + 32], key[PATH_MAX + 32];
    cert(crt, sizeof(crt), "server.pem");
    cert(key, sizeof(key), "server.key");
    nc_tls_options so = { .cert_file = crt, .key_file = key,
                          .handshake_timeout_ms = 60000 };
    nc_tls_ctx *sctx;
    assert_int_equal(nc_tls_server_new(&so, &sctx, NULL, 0), 0);
    nc_workers_options wo = { .threads = 2 };
    nc_workers *w;
    assert_int_equal(nc_workers_start(&wo, &w), 0);
    nc_listener_options lo = { .tls = sctx };
    assert_true(nc_workers_listen(w, "127.0.0.1:0", &lo, &srv_cbs, NULL) > 0);
    nc_tls_ctx_free(sctx);
    nc_addr a;
    size_t n;
    assert_int_equal(nc_workers_addrs(w, &a, 1, &n), 0);
    int fd = client_connect(&a);
    assert_true(fd >= 0);
    nc_loop_stats sum;
    for (int i = 0; i < 100000; i++) {
        nc_workers_stats(w, NULL, 0, &sum);
        if (sum.accepted == 1)
            break;
        sched_yield();
    }
    assert_int_equal(sum.accepted, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(nc_workers_stop(w, 30000), 0);
    assert_int_equal(nc_workers_wait(w), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    nc_workers_stats(w, NULL, 0, &sum);
    assert_int_equal(sum.closed[NC_CLOSE_SHUTDOWN], 1);
    char c;
    assert_int_equal(read_full(fd, &c, 1, 5000), 0);
    close(fd);
    nc_workers_free(w);
}

/* ---- the certificate replaced while workers handshake -------------------- */

struct replacer {
    nc_tls_ctx *ctx;
    char crt[2][PATH_MAX + 32], key[2][PATH_MAX + 32];
    atomic_bool stop;
    int calls, failures;
};

static void *replace_certs(void *arg)
{
    struct replacer *r = arg;
    for (int i = 0; i < 400 && !atomic_load(&r->stop); i++) {
        if (nc_tls_set_cert(r->ctx, r->crt[i % 2], r->key[i % 2], NULL,
                            0) < 0)
            r->failures++;
        r->calls++;
        sched_yield();
    }
    return NULL;
}

/* nc_tls_set_cert from one thread while two workers handshake with the
 * same context: every handshake completes, with one whole certificate or
 * the other (run under ThreadSanitizer by make tsan). */
static void set_cert_while_workers_handshake(void **state)
{
    (void)state;
    static struct replacer r;
    memset(&r, 0, sizeof(r));
    cert(r.crt[0], sizeof(r.crt[0]), "untrusted.pem");
    cert(r.key[0], sizeof(r.key[0]), "untrusted.key");
    cert(r.crt[1], sizeof(r.crt[1]), "server.pem");
    cert(r.key[1], sizeof(r.key[1]), "server.key");
    nc_tls_options so = { .cert_file = r.crt[1], .key_file = r.key[1] };
    assert_int_equal(nc_tls_server_new(&so, &r.ctx, NULL, 0), 0);
    nc_workers_options wo = { .threads = 2, .on_start = on_start };
    nc_workers *w;
    assert_int_equal(nc_workers_start(&wo, &w), 0);
    nc_listener_options lo = { .tls = r.ctx };
    assert_true(nc_workers_listen(w, "127.0.0.1:0", &lo, &srv_cbs, NULL) > 0);
    nc_addr a;
    size_t n;
    assert_int_equal(nc_workers_addrs(w, &a, 1, &n), 0);
    char target[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&a, target, sizeof(target)) > 0);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, replace_certs, &r), 0);
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_tls_options co = { .verify_peer_off = true };
    for (int i = 0; i < 4 * CLIENTS; i++) {
        /* A context of its own each time: a full handshake, no session
         * resumed. */
        nc_connect_options o = { .tls = NULL };
        assert_int_equal(nc_tls_client_new(&co, &o.tls, NULL, 0), 0);
        struct client k = { .len = 0 };
        assert_int_equal(nc_connect(loop, target, &o, &cli_cbs, &k, NULL), 0);
        assert_true(run_until(loop, flag_set, &k.done, 10000));
        assert_int_equal(k.reason, NC_CLOSE_LOCAL);
        assert_memory_equal(k.got, "hello, tls", 10);
        assert_true(strcmp(k.issuer, "CN = libnetcore test CA") == 0 ||
                    strcmp(k.issuer, "CN = someone else's CA") == 0);
        nc_tls_ctx_free(o.tls);
    }
    atomic_store(&r.stop, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(r.calls > 0);
    assert_int_equal(r.failures, 0);
    nc_loop_free(loop);
    nc_tls_ctx_free(r.ctx);
    assert_int_equal(nc_workers_stop(w, 2000), 0);
    assert_int_equal(nc_workers_wait(w), 0);
    nc_workers_free(w);
}

static int make_certs(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/nc-test-wtls.XXXXXX";
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
    nc_tls_ctx *probe = NULL;
    if (nc_tls_client_new(NULL, &probe, NULL, 0) == -ENOTSUP) {
        const char *ci = getenv("CI");
        bool in_ci = ci && strcmp(ci, "true") == 0;
        printf("test_workers_tls: built without TLS%s\n",
               in_ci ? ": failing, CI needs TLS" : ": skipped");
        return in_ci ? 1 : 0;
    }
    nc_tls_ctx_free(probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_with_reuseport),
        cmocka_unit_test(tls_through_the_hand_off),
        cmocka_unit_test(a_handshake_in_progress_does_not_hold_a_stop),
        cmocka_unit_test(set_cert_while_workers_handshake),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
