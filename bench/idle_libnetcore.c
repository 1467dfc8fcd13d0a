/*
 * idle_libnetcore.c - the idle-memory server of bench_idle.c on
 * libnetcore.
 * Usage: idle_libnetcore [PORT]   (see mini_server.h; bench_idle runs it)
 *
 * Answers each line with "ok\n" (the idle protocol of mini_server.h).
 * What a libnetcore user writes: nc_listen with default options, an
 * on_data that answers and consumes everything, and no per-connection
 * allocation of our own: every connection gets the same user pointer, the
 * server's. Whatever a connection costs here is the library's. An
 * nc_signal ends it on SIGTERM.
 */
#include "netcore.h"

#include "mini_server.h"

#define PROG "idle_libnetcore"

typedef struct server {
    nc_loop *loop;
    uint64_t requests;       /* what the shared user pointer is for */
} server;

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    server *s = ud;
    size_t pending = mini_count_lines(data, len), n;
    s->requests += pending;
    while (pending > 0) {
        const char *reply = mini_reply_chunk(&pending, &n);
        if (nc_conn_write(c, reply, n) < 0) {
            nc_conn_close(c);
            break;
        }
    }
    return len;   /* a partial line needs no keeping: only '\n' counts */
}

static void on_term(nc_signal *sig, int signum, void *ud)
{
    server *s = ud;
    (void)sig;
    (void)signum;
    nc_loop_stop(s->loop);
}

int main(int argc, char **argv)
{
    static const nc_conn_callbacks cbs = {NULL, on_data, NULL, NULL};
    int port = mini_server_init(argc, argv);
    server s = {NULL, 0};
    nc_listener *l = NULL;
    nc_signal *term = NULL;
    nc_addr addr;
    char spec[32];
    int err;

    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    if ((err = nc_loop_new(&s.loop)) < 0 ||
        (err = nc_listen(s.loop, spec, NULL, &cbs, &s, &l)) < 0 ||
        (err = nc_listener_addr(l, 0, &addr)) < 0 ||
        (err = nc_signal_start(s.loop, SIGTERM, on_term, &s, &term)) < 0) {
        mini_fail(PROG, "cannot start", err);
        nc_listener_close(l);
        nc_loop_free(s.loop);
        return 1;
    }
    mini_announce(nc_addr_port(&addr));
    err = nc_loop_run(s.loop, NC_RUN_FOREVER);
    if (err < 0)
        mini_fail(PROG, "nc_loop_run", err);
    nc_signal_close(term);
    nc_listener_close(l);
    nc_loop_free(s.loop);
    return err < 0 ? 1 : 0;
}
