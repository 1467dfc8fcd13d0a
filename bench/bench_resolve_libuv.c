/* bench_resolve_libuv.c - connects by name with libuv: uv_getaddrinfo()
 * (getaddrinfo on libuv's thread pool), then uv_tcp_connect() to the
 * first address, reset once connected. See resolve_load.h. */
#include "resolve_load.h"

#include <netdb.h>
#include <string.h>
#include <uv.h>

static struct resolve_load L;
static uv_loop_t *loop;

struct attempt {
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    uv_tcp_t tcp;
};

static void start(void);

static void fail(const char *what, int status)
{
    if (L.failed++ == 0)
        fprintf(stderr, "%s: %s\n", what, uv_strerror(status));
    L.done++;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
    start();
}

static void on_connect(uv_connect_t *req, int status)
{
    struct attempt *a = req->data;
    if (status < 0) {
        fail("connect", status);
        uv_close((uv_handle_t *)&a->tcp, on_closed);
        return;
    }
    L.done++;
    /* Reset, as the others do: no TIME_WAIT left. */
    uv_tcp_close_reset(&a->tcp, on_closed);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res)
{
    struct attempt *a = req->data;
    if (status < 0) {
        fail("getaddrinfo", status);
        free(a);
        start();
        return;
    }
    struct sockaddr_storage to;
    memcpy(&to, res->ai_addr, res->ai_addrlen);
    if (to.ss_family == AF_INET)
        ((struct sockaddr_in *)&to)->sin_port = htons((uint16_t)L.port);
    else
        ((struct sockaddr_in6 *)&to)->sin6_port = htons((uint16_t)L.port);
    uv_freeaddrinfo(res);
    uv_tcp_init(loop, &a->tcp);
    a->tcp.data = a;
    a->connect.data = a;
    uv_tcp_connect(&a->connect, &a->tcp, (struct sockaddr *)&to, on_connect);
}

static void start(void)
{
    if (!rl_want_more(&L)) {
        if (L.done >= L.total)
            uv_stop(loop);
        return;
    }
    struct attempt *a = calloc(1, sizeof(*a));
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    a->gai.data = a;
    int rc = uv_getaddrinfo(loop, &a->gai, on_resolved, L.name, NULL, &hints);
    if (rc < 0) {
        fail("uv_getaddrinfo", rc);
        free(a);
    }
}

int main(int argc, char **argv)
{
    rl_init(&L, argc, argv);
    loop = uv_default_loop();
    for (unsigned long i = 0; i < L.concurrency; i++)
        start();
    uv_run(loop, UV_RUN_DEFAULT);
    return rl_report(&L, "libuv");
}
