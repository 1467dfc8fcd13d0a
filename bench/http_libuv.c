/*
 * http_libuv.c - the minimal HTTP server of bench/churn.sh and
 * bench/callgrind.sh on libuv.
 * Usage: http_libuv [PORT]   (see mini_server.h)
 *
 * The same server as http_epoll with libuv as the loop: a malloc'd
 * connection around its uv_tcp_t; the alloc callback hands out the shared
 * buffer (or the connection's own while a request head is split). The
 * answers go out at once with uv_try_write, as bench_echo_libuv sends;
 * the kernel always takes these small answers whole, and a connection
 * where it does not is closed (see mini_send_all). Accepted sockets get
 * TCP_NODELAY. A uv_signal_t ends it on SIGTERM: every handle is closed
 * and the loop closed.
 */
#include <uv.h>

#include "mini_server.h"

#define PROG "http_libuv"

typedef struct conn {
    uv_tcp_t tcp;              /* first: the handle's address is the conn's */
    mini_partial partial;
} conn;

static char in_buf[MINI_HTTP_IN];
static char out_buf[MINI_HTTP_OUT];
static uv_tcp_t listener;
static uv_signal_t term;

static void on_closed(uv_handle_t *h)
{
    if (h == (uv_handle_t *)&listener || h == (uv_handle_t *)&term)
        return;
    conn *c = (conn *)h;
    mini_partial_free(&c->partial);
    free(c);
}

static void conn_close(conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    conn *c = (conn *)h;
    size_t room;
    (void)hint;
    char *at = mini_http_rdbuf(&c->partial, in_buf, &room);
    *out = uv_buf_init(at, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *in)
{
    conn *c = (conn *)s;
    bool close_after;
    (void)in;
    if (nread == 0)
        return;   /* EAGAIN */
    if (nread < 0) {
        conn_close(c);
        return;
    }
    size_t outlen = mini_http_feed(&c->partial, in_buf, (size_t)nread,
                                   out_buf, &close_after);
    if (outlen > 0) {
        uv_buf_t b = uv_buf_init(out_buf, (unsigned)outlen);
        if (uv_try_write(s, &b, 1) != (int)outlen)
            close_after = true;
    }
    if (close_after)
        conn_close(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(l->loop, &c->tcp);
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 ||
        uv_tcp_nodelay(&c->tcp, 1) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

static void on_term(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_walk(s->loop, close_any, NULL);
}

int main(int argc, char **argv)
{
    int port = mini_server_init(argc, argv);
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in a = mini_loopback(port);
    int alen = sizeof a, err;

    uv_tcp_init(loop, &listener);
    uv_signal_init(loop, &term);
    if ((err = uv_tcp_bind(&listener, (struct sockaddr *)&a, 0)) < 0 ||
        (err = uv_listen((uv_stream_t *)&listener, SOMAXCONN,
                         on_connection)) < 0 ||
        (err = uv_tcp_getsockname(&listener, (struct sockaddr *)&a,
                                  &alen)) < 0 ||
        (err = uv_signal_start(&term, on_term, SIGTERM)) < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", PROG, uv_strerror(err));
        return 1;
    }
    mini_announce(ntohs(a.sin_port));
    /* Runs until on_term has closed every handle. */
    uv_run(loop, UV_RUN_DEFAULT);
    err = uv_loop_close(loop);
    if (err < 0)
        fprintf(stderr, "%s: uv_loop_close: %s\n", PROG, uv_strerror(err));
    return err < 0 ? 1 : 0;
}
