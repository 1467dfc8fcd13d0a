/*
 * bench_echo.c - echo round trips and streaming through a libnetcore
 * server, compared with bench_echo_epoll (a hand-written epoll loop, the
 * floor), bench_echo_libuv, bench_echo_libevent and bench_echo_libev.
 * The jobs, the load client and the output are in echo_load.h.
 * Usage: bench_echo [connections [round_trips [stream_MiB]]]
 * Output: "echo <job> libnetcore <value> <unit>", one line per job.
 *
 * The server is what a user would write: a listener with default options
 * (TCP_NODELAY on, 1 MiB high-water mark) and an on_data that writes
 * every byte straight back.
 */
#include "netcore.h"

#include "echo_load.h"

typedef struct server {
    nc_loop *loop;
} server;

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (nc_conn_write(c, data, len) < 0)
        nc_conn_close(c);
    return len;
}

static int serve(void *p, echo_ready *ready)
{
    static const nc_conn_callbacks cbs = {NULL, on_data, NULL, NULL};
    server *s = p;
    nc_listener *l = NULL;
    nc_addr addr;
    int err = nc_loop_new(&s->loop);
    if (err < 0) {
        echo_ready_set(ready, err);
        return err;
    }
    if ((err = nc_listen(s->loop, "127.0.0.1:0", NULL, &cbs, NULL, &l)) < 0 ||
        (err = nc_listener_addr(l, 0, &addr)) < 0) {
        echo_ready_set(ready, err);
        nc_listener_close(l);
        nc_loop_free(s->loop);
        return err;
    }
    echo_ready_set(ready, nc_addr_port(&addr));
    err = nc_loop_run(s->loop, NC_RUN_FOREVER);
    nc_listener_close(l);
    nc_loop_free(s->loop);
    return err;
}

static void stop(void *p)
{
    server *s = p;
    nc_loop_stop(s->loop);
}

int main(int argc, char **argv)
{
    static const echo_server_ops ops = {"libnetcore", serve, stop};
    server s = {NULL};
    return echo_bench_main(argc, argv, &ops, &s);
}
