/*
 * http_libnetcore.c - the minimal HTTP server of bench/churn.sh and
 * bench/callgrind.sh on libnetcore ("nc-mini" in their tables).
 * Usage: http_libnetcore [PORT]   (see mini_server.h)
 *
 * The same server as http_epoll, http_libev and http_libuv with
 * libnetcore as the loop, single-threaded like them: nc_listen with
 * default options, an on_data that answers the complete requests it is
 * given with one nc_conn_write and returns how many bytes it used (the
 * library keeps a partial request), no state of its own per connection.
 * examples/http-hello, the "libnetcore" row, is a fuller server: it
 * validates every request head and runs its loop in a worker thread.
 * An nc_signal ends it on SIGTERM.
 */
#include "netcore.h"

#include "mini_server.h"

#define PROG "http_libnetcore"

static char out_buf[MINI_HTTP_OUT];

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    size_t used;
    bool close_after;
    (void)ud;
    size_t outlen = mini_http_answer(data, len, &used, out_buf, &close_after);
    if ((outlen > 0 && nc_conn_write(c, out_buf, outlen) < 0) || close_after)
        nc_conn_close(c);
    return used;
}

static void on_term(nc_signal *sig, int signum, void *ud)
{
    (void)sig;
    (void)signum;
    nc_loop_stop(ud);
}

int main(int argc, char **argv)
{
    static const nc_conn_callbacks cbs = {NULL, on_data, NULL, NULL};
    int port = mini_server_init(argc, argv);
    nc_loop *loop = NULL;
    nc_listener *l = NULL;
    nc_signal *term = NULL;
    nc_addr addr;
    char spec[32];
    int err;

    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    if ((err = nc_loop_new(&loop)) < 0 ||
        (err = nc_listen(loop, spec, NULL, &cbs, NULL, &l)) < 0 ||
        (err = nc_listener_addr(l, 0, &addr)) < 0 ||
        (err = nc_signal_start(loop, SIGTERM, on_term, loop, &term)) < 0) {
        mini_fail(PROG, "cannot start", err);
        nc_listener_close(l);
        nc_loop_free(loop);
        return 1;
    }
    mini_announce(nc_addr_port(&addr));
    err = nc_loop_run(loop, NC_RUN_FOREVER);
    if (err < 0)
        mini_fail(PROG, "nc_loop_run", err);
    nc_signal_close(term);
    nc_listener_close(l);
    nc_loop_free(loop);
    return err < 0 ? 1 : 0;
}
