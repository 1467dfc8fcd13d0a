/* connections.c - connect to a loopback echo server, talk, close.
 * Build: cc connections.c $(pkg-config --cflags --libs libnetcore) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <netcore.h>

static nc_listener *server;
static int echoed;

static size_t echo(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (nc_conn_write(c, data, len) < 0)   /* queued if need be */
        nc_conn_close(c);
    return len;                            /* consumed it all */
}

static void release(void *data, void *arg)
{
    (void)arg;
    free(data);
}

static void on_open(nc_conn *c, void *ud)
{
    char hello[] = "hello, ", world[] = "world";
    struct iovec iov[2] = { { hello, 7 }, { world, 5 } };
    char *bang = malloc(2), peer[NC_ADDRSTRLEN];
    nc_addr a;
    nc_tcp_info info;

    (void)ud;
    if (nc_conn_peer_addr(c, &a) == 0 &&
        nc_addr_format(&a, peer, sizeof peer) > 0 &&
        nc_conn_tcp_info(c, &info) == 0)
        printf("fd %d connected to %s, %s\n", nc_conn_fd(c), peer,
               info.state_name);
    nc_conn_set_data(c, "client");
    nc_conn_set_idle_timeout(c, 5000);
    nc_conn_writev(c, iov, 2);
    if (bang)
        memcpy(bang, "!\n", 2);
    if (bang && nc_conn_write_owned(c, bang, 2, release, NULL) < 0)
        free(bang);   /* on error the caller keeps ownership */
    printf("queued: %zu bytes\n", nc_conn_queued(c));
}

static size_t on_data(nc_conn *c, const void *data, size_t len,
                      void *ud)
{
    const char *nl = memchr(data, '\n', len);

    if (!nl)
        return 0;   /* stays buffered until the line is whole */
    printf("%s got back: %.*s", (const char *)ud,
           (int)(nl - (const char *)data + 1), (const char *)data);
    echoed = 1;
    nc_conn_close(c);   /* safe inside on_data */
    return len;
}

static void on_close(nc_conn *c, nc_close_reason why, int err,
                     void *ud)
{
    (void)c, (void)ud;
    printf("closed: %s (%s)\n", nc_close_reason_name(why),
           nc_strerror(err));
    nc_listener_close(server);   /* nothing is left: the run ends */
}

int main(void)
{
    nc_loop *loop;
    nc_addr a;
    char why[256] = "";
    nc_connect_options opt = { .conn.connect_timeout_ms = 5000,
                               .errbuf = why, .errbuf_len = sizeof why };
    nc_conn_callbacks srv = { .on_data = echo };
    nc_conn_callbacks cli = { .on_open = on_open,
                              .on_data = on_data,
                              .on_close = on_close };
    int err = nc_loop_new(&loop);

    if (err == 0)
        err = nc_listen(loop, "127.0.0.1:0", NULL, &srv, NULL, &server);
    if (err == 0)
        err = nc_listener_addr(server, 0, &a);
    if (err == 0)   /* the address as it is: nothing to format or parse */
        err = nc_connect_addr(loop, &a, &opt, &cli, NULL, NULL);
    if (err < 0) {
        fprintf(stderr, "%s\n%s\n", why[0] ? why : nc_strerror(err),
                nc_explain(NC_OP_CONNECT, err));
        return 1;
    }
    nc_loop_run(loop, NC_RUN_DEFAULT);
    nc_loop_free(loop);
    return echoed ? 0 : 1;
}
