/* bench_resolve_libnetcore.c - connects by name with libnetcore:
 * nc_connect("NAME:PORT") (the lookup and Happy Eyeballs inside), closed
 * on open. See resolve_load.h. */
#include "resolve_load.h"

#include <netcore.h>

static struct resolve_load L;
static char target[300];
static nc_loop *loop;

static void start(void);

static void on_open(nc_conn *c, void *ud)
{
    (void)ud;
    L.done++;
    nc_conn_abort(c);     /* reset, as the peers do: no TIME_WAIT left */
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    (void)ud;
    if (reason == NC_CLOSE_CONNECT_FAILED) {
        if (L.failed++ == 0)
            fprintf(stderr, "connect: %s\n", nc_strerror(err));
        L.done++;
    }
    start();
}

static const nc_conn_callbacks cbs = { .on_open = on_open,
                                       .on_close = on_close };

static void start(void)
{
    if (!rl_want_more(&L)) {
        if (L.done >= L.total)
            nc_loop_stop(loop);
        return;
    }
    if (nc_connect(loop, target, NULL, &cbs, NULL, NULL) < 0) {
        L.failed++;
        L.done++;
    }
}

int main(int argc, char **argv)
{
    rl_init(&L, argc, argv);
    snprintf(target, sizeof(target), "%s:%u", L.name, L.port);
    if (nc_loop_new(&loop) < 0)
        return 1;
    for (unsigned long i = 0; i < L.concurrency; i++)
        start();
    nc_loop_run(loop, NC_RUN_FOREVER);
    int rc = rl_report(&L, "libnetcore");
    nc_loop_free(loop);
    return rc;
}
