/* listeners.c - an echo server on loopback, and two clients.
 * Build: cc listeners.c $(pkg-config --cflags --libs libnetcore) */
#include <stdio.h>
#include <string.h>
#include <netcore.h>

static nc_listener *server;
static int closed;

static size_t echo(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (nc_conn_write(c, data, len) < 0)
        nc_conn_close(c);
    return len;
}

static void on_open(nc_conn *c, void *ud)
{
    nc_conn_write(c, "ping\n", 5);
    (void)ud;
}

static size_t on_reply(nc_conn *c, const void *data, size_t len,
                       void *ud)
{
    if (!memchr(data, '\n', len))
        return 0;
    printf("client %s: %.*s", (const char *)ud, (int)len,
           (const char *)data);
    nc_conn_close(c);
    return len;
}

static void on_close(nc_conn *c, nc_close_reason why, int err,
                     void *ud)
{
    nc_listener_stats st;

    (void)c, (void)why, (void)err, (void)ud;
    if (++closed < 2)
        return;
    nc_listener_stats_get(server, &st);
    printf("accepted %llu, open %llu\n",
           (unsigned long long)st.accepted,
           (unsigned long long)st.active);
    nc_listener_stop(server);    /* no new connections */
    nc_listener_close(server);   /* and end the open ones */
}

int main(void)
{
    nc_loop *loop;
    nc_addr a;
    char where[NC_ADDRSTRLEN], why[256];
    nc_listener_options opt = { .max_conns = 100,
                                .conn.idle_timeout_ms = 5000,
                                .errbuf = why, .errbuf_len = sizeof why };
    nc_conn_callbacks srv = { .on_data = echo };
    nc_conn_callbacks cli = { .on_open = on_open,
                              .on_data = on_reply,
                              .on_close = on_close };
    int err;

    if (nc_loop_new(&loop) < 0)
        return 1;
    /* port 0: the kernel picks one */
    err = nc_listen(loop, "127.0.0.1:0", &opt, &srv, NULL, &server);
    if (err < 0) {   /* what is wrong, then its likely cause */
        fprintf(stderr, "listen: %s\n%s\n", why,
                nc_explain(NC_OP_BIND, err));
        return 1;
    }
    for (size_t i = 0; i < nc_listener_count(server); i++) {
        nc_listener_addr(server, i, &a);
        nc_addr_format(&a, where, sizeof where);
        printf("listening on %s\n", where);
    }
    /* Connect to the address itself: no text to format and parse. */
    if (nc_connect_addr(loop, &a, NULL, &cli, "one", NULL) < 0 ||
        nc_connect(loop, where, NULL, &cli, "two", NULL) < 0)
        return 1;
    nc_loop_run(loop, NC_RUN_DEFAULT);
    nc_loop_free(loop);
    return closed == 2 ? 0 : 1;
}
