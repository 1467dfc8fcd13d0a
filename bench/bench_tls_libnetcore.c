/*
 * bench_tls_libnetcore.c - TLS handshakes and bulk throughput through a
 * libnetcore TLS echo server, compared with bench_tls_libevent (libevent's
 * bufferevent_openssl doing the same job). The jobs, the load client and
 * the output are in tls_load.h.
 * Usage: bench_tls_libnetcore [handshakes [concurrency [bulk_MiB]]]
 *        bench_tls_libnetcore --serve | --load ...   (see tls_load.h)
 * Output: "tls <job> libnetcore <value> <unit>", one line per job.
 *
 * The server is what a user would write: a server context from
 * nc_tls_server_new() with the certificate and key (the library's
 * defaults: TLS 1.2 and 1.3, OpenSSL's default ciphers, renegotiation
 * refused, SSL_MODE_RELEASE_BUFFERS, session tickets on), a listener with
 * default options otherwise (TCP_NODELAY, 64 KiB high-water mark), and an
 * on_data that writes every byte straight back. The library answers the
 * client's close_notify with its own and closes. Negotiated with the
 * bench's client: TLSv1.3, TLS_AES_256_GCM_SHA384 (printed once).
 *
 * A library built without TLS (no libssl-dev) has nothing to measure:
 * the program says so and exits with status 0, printing no result.
 */
#include "netcore.h"

#include "tls_load.h"

static const char LIB[] = "libnetcore";

static void on_open(nc_conn *c, void *ud)
{
    nc_tls_info info;
    (void)ud;
    if (nc_conn_tls_info(c, &info) == 0)
        tls_server_says(LIB, info.protocol, info.cipher);
}

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (nc_conn_write(c, data, len) < 0)
        nc_conn_close(c);
    return len;
}

static void on_stop(nc_watch *w, int fd, unsigned events, void *ud)
{
    (void)w;
    (void)fd;
    (void)events;
    nc_loop_stop(ud);
}

static int serve(const tls_server_cfg *cfg)
{
    static const nc_conn_callbacks cbs = {on_open, on_data, NULL, NULL};
    nc_tls_options o = {.cert_file = cfg->cert_file,
                        .key_file = cfg->key_file};
    nc_tls_ctx *ctx = NULL;
    nc_loop *loop = NULL;
    nc_listener *l = NULL;
    nc_watch *stop = NULL;
    nc_addr addr;
    char why[256] = "";
    int err = nc_tls_server_new(&o, &ctx, why, sizeof why);
    if (err < 0) {
        fprintf(stderr, "bench_tls (%s): %s\n", LIB, why);
        return err;
    }
    nc_listener_options lo = {.tls = ctx};
    if ((err = nc_loop_new(&loop)) < 0 ||
        (err = nc_listen(loop, "127.0.0.1:0", &lo, &cbs, NULL, &l)) < 0 ||
        (err = nc_listener_addr(l, 0, &addr)) < 0 ||
        (err = nc_watch_start(loop, cfg->stop_fd, NC_READABLE, on_stop, loop,
                              &stop)) < 0)
        goto out;
    tls_announce(cfg, nc_addr_port(&addr));
    err = nc_loop_run(loop, NC_RUN_FOREVER);
out:
    nc_watch_close(stop);
    nc_listener_close(l);
    nc_loop_free(loop);
    nc_tls_ctx_free(ctx);
    return err;
}

int main(int argc, char **argv)
{
    static const tls_server_ops ops = {LIB, serve};
    /* Without verification: no CA store is loaded just to ask. */
    nc_tls_options cheap = {.verify_peer_off = true};
    nc_tls_ctx *probe = NULL;
    if (nc_tls_client_new(&cheap, &probe, NULL, 0) == -ENOTSUP) {
        fprintf(stderr, "bench_tls_libnetcore: this libnetcore was built "
                "without TLS; nothing to measure\n");
        return 0;
    }
    nc_tls_ctx_free(probe);
    return tls_bench_main(argc, argv, &ops);
}
