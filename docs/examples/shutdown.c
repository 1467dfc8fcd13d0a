/* shutdown.c - stop a loop's service gracefully, then read its counters.
 * Build: cc shutdown.c $(pkg-config --cflags --libs libnetcore) */
#include <inttypes.h>
#include <stdio.h>
#include <netcore.h>

static int echoed;

static size_t server_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    nc_conn_write(c, data, len);
    return len;
}

static void client_open(nc_conn *c, void *ud)
{
    (void)ud;
    nc_conn_write(c, "hello", 5);
}

static size_t client_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    printf("echoed: %.*s\n", (int)len, (const char *)data);
    echoed = 1;
    /* Stop serving: the listener's socket closes at once, both ends of
     * the connection close (flushing first), then nc_loop_run returns. */
    nc_loop_shutdown(nc_conn_loop(c), 1000);
    return len;
}

int main(void)
{
    static const nc_conn_callbacks server = {.on_data = server_data};
    static const nc_conn_callbacks client = {.on_open = client_open,
                                             .on_data = client_data};
    char target[NC_ADDRSTRLEN];
    nc_loop *loop;
    nc_listener *l;
    nc_addr a;
    nc_loop_stats st;
    int err = nc_loop_new(&loop);

    if (err == 0)
        err = nc_listen(loop, "127.0.0.1:0", NULL, &server, NULL, &l);
    if (err == 0 && (err = nc_listener_addr(l, 0, &a)) == 0 &&
        (err = nc_addr_format(&a, target, sizeof target)) > 0)
        err = nc_connect(loop, target, NULL, &client, NULL, NULL);
    if (err < 0) {
        fprintf(stderr, "shutdown: %s\n", nc_strerror(err));
        return 1;
    }
    nc_loop_run(loop, NC_RUN_FOREVER);   /* until the shutdown is over */
    nc_loop_stats_get(loop, &st);
    printf("accepted %" PRIu64 ", connected %" PRIu64 ", open %" PRIu64
           ", closed by shutdown %" PRIu64 "; %" PRIu64 " iterations\n",
           st.accepted, st.connected, st.open, st.closed[NC_CLOSE_SHUTDOWN],
           st.iterations);
    nc_loop_free(loop);
    return echoed && st.open == 0 ? 0 : 1;
}
