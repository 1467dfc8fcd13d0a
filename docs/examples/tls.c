/* tls.c - a TLS echo server and a client that verifies it, on loopback.
 * Build: cc tls.c $(pkg-config --cflags --libs libnetcore)
 * Run next to server.pem, server.key and ca.pem (a certificate for
 * localhost and 127.0.0.1, its key, and the CA that signed it; the
 * library's tests/tls-certs.sh DIR makes a set), or name them:
 *   ./tls [CERT KEY CA] */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netcore.h>

static int done;

static size_t echo(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    if (nc_conn_write(c, data, len) < 0)   /* plain text in, plain out */
        nc_conn_close(c);
    return len;
}

/* Runs once the handshake is complete: the connection is verified. */
static void client_open(nc_conn *c, void *ud)
{
    nc_tls_info info;
    (void)ud;
    if (nc_conn_tls_info(c, &info) == 0)
        printf("%s, %s, server %s, verified: %s\n", info.protocol,
               info.cipher, info.peer_subject,
               info.peer_verified ? "yes" : "no");
    nc_conn_write(c, "hello over TLS", 14);
}

static size_t client_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    printf("echo: %.*s\n", (int)len, (const char *)data);
    nc_conn_close(c);              /* close_notify, then FIN */
    return len;
}

static void client_close(nc_conn *c, nc_close_reason why, int err, void *ud)
{
    (void)c;
    (void)ud;
    if (why == NC_CLOSE_TLS)       /* the handshake failed: say why */
        fprintf(stderr, "TLS: %s: %s\n", nc_strerror(err),
                nc_explain(NC_OP_CONNECT, err));
    done = why == NC_CLOSE_LOCAL ? 1 : -1;
}

int main(int argc, char **argv)
{
    const char *crt = argc > 3 ? argv[1] : "server.pem";
    const char *key = argc > 3 ? argv[2] : "server.key";
    const char *ca = argc > 3 ? argv[3] : "ca.pem";
    static const nc_conn_callbacks server_cbs = { NULL, echo, NULL, NULL };
    static const nc_conn_callbacks client_cbs = { client_open, client_data,
                                                  NULL, client_close };
    nc_tls_options so = { .cert_file = crt, .key_file = key };
    nc_tls_options co = { .ca_file = ca };
    nc_tls_ctx *server_ctx = NULL, *client_ctx = NULL;
    char why[256], where[NC_ADDRSTRLEN];
    nc_loop *loop;
    nc_listener *l;
    nc_addr a;
    int err;

    err = nc_tls_server_new(&so, &server_ctx, why, sizeof why);
    if (err == -ENOTSUP) {
        printf("this libnetcore was built without TLS\n");
        return 0;
    }
    if (err < 0 || (err = nc_tls_client_new(&co, &client_ctx, why,
                                            sizeof why)) < 0) {
        fprintf(stderr, "tls: %s\n", why);
        return 1;
    }
    nc_listener_options lo = { .tls = server_ctx };
    if (nc_loop_new(&loop) < 0 ||
        nc_listen(loop, "127.0.0.1:0", &lo, &server_cbs, NULL, &l) < 0 ||
        nc_listener_addr(l, 0, &a) < 0 ||
        nc_addr_format(&a, where, sizeof where) < 0)
        return 1;
    /* The server's certificate must name the address connected to
     * (127.0.0.1), or set server_name. */
    nc_connect_options opts = { .tls = client_ctx };
    if (nc_connect(loop, where, &opts, &client_cbs, NULL, NULL) < 0)
        return 1;
    while (!done && nc_loop_run(loop, NC_RUN_ONCE) == 0)
        continue;
    nc_loop_free(loop);
    nc_tls_ctx_free(server_ctx);   /* the listener held its own reference */
    nc_tls_ctx_free(client_ctx);
    return done == 1 ? 0 : 1;
}
