/* names.c - look a host name up without blocking the loop, then connect
 * to "host:port" (Happy Eyeballs for a name) and say how it went.
 * Build: cc names.c $(pkg-config --cflags --libs libnetcore)
 * Run:   ./names [HOST [HOST:PORT]]   (default: localhost, and a listener
 *        of its own; it asks no DNS server unless you name a host) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netcore.h>

static int status = 1;

static void resolved(nc_resolve_req *req, int err,
                     const nc_resolve_result *res, void *ud)
{
    char text[NC_ADDRSTRLEN];

    (void)req;
    (void)ud;
    if (err < 0) {
        printf("%s: %s (%s)\n%s\n", res->name, nc_strerror(err),
               res->source, nc_explain(NC_OP_CONNECT, err));
        return;
    }
    printf("%s: from %s in %.3f ms\n", res->name, res->source,
           res->elapsed_us / 1000.0);
    for (size_t i = 0; i < res->count; i++)
        if (nc_addr_format(&res->addrs[i], text, sizeof text) > 0)
            printf("  %s\n", text);   /* port 0: a lookup has no port */
}

static void on_open(nc_conn *c, void *ud)
{
    char how[512];

    (void)ud;
    nc_conn_explain(c, how, sizeof how);
    printf("open: %s\n", how);
    status = 0;
    nc_conn_close(c);
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    char why[1024];

    (void)ud;
    if (reason == NC_CLOSE_CONNECT_FAILED) {
        /* For a name: every address tried, and what happened to each. */
        nc_conn_explain(c, why, sizeof why);
        printf("failed: %s\n%s\n", nc_strerror(err), why);
    }
    nc_loop_stop(nc_conn_loop(c));
}

int main(int argc, char **argv)
{
    const nc_conn_callbacks cbs = {.on_open = on_open, .on_close = on_close};
    const nc_conn_callbacks none = {0};
    nc_connect_options o = {.family = NC_FAMILY_ANY,  /* IPv6 first */
                            .attempt_delay_ms = 250,
                            .conn.connect_timeout_ms = 5000};
    char target[300];
    nc_listener *l = NULL;
    nc_loop *loop;
    nc_addr a;

    if (nc_loop_new(&loop) < 0)
        return 1;
    printf("resolver: %s\n", nc_resolver_name());
    /* The callback runs from the loop, never inside nc_resolve(). By
     * default only the IPv4 localhost, which every /etc/hosts has: what a
     * hosts file lacks goes to the DNS servers. */
    if (nc_resolve(loop, argc > 1 ? argv[1] : "localhost",
                   argc > 1 ? NC_FAMILY_ANY : NC_FAMILY_IPV4, resolved, NULL,
                   NULL) < 0)
        return 1;
    nc_loop_run(loop, NC_RUN_DEFAULT);

    if (argc > 2) {
        snprintf(target, sizeof target, "%s", argv[2]);
    } else {
        if (nc_listen(loop, "127.0.0.1:0", NULL, &none, NULL, &l) < 0 ||
            nc_listener_addr(l, 0, &a) < 0)
            return 1;
        snprintf(target, sizeof target, "127.0.0.1:%u", nc_addr_port(&a));
    }
    /* A name ("example.com:443") is looked up and its addresses raced;
     * an address is connected to as it is. Either way: one on_open or
     * one on_close. */
    if (nc_connect(loop, target, &o, &cbs, NULL, NULL) < 0)
        return 1;
    nc_loop_run(loop, NC_RUN_DEFAULT);
    nc_loop_free(loop);
    return status;
}
