/*
 * bench_echo_libuv.c - the jobs of bench_echo.c against a libuv echo
 * server, for comparison.
 * Usage: bench_echo_libuv [connections [round_trips [stream_MiB]]]
 * Output: "echo <job> libuv <value> <unit>".
 *
 * Reads land in one server-wide buffer and are written back at once with
 * uv_try_write; what the kernel does not take is copied and queued with
 * uv_write, and reading stops until that write completes. uv_async_send
 * stops the server, which then closes every handle.
 */
#include <uv.h>

#include "echo_load.h"

typedef struct conn {
    uv_tcp_t tcp;              /* first: the handle's address is the conn's */
    uv_write_t req;            /* at most one write is ever queued */
    echo_pending pending;
} conn;

typedef struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    char buf[ECHO_CHUNK];
} server;

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (c) {
        echo_pending_free(&c->pending);
        free(c);
    }
}

static void conn_close(conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    server *s = h->loop->data;
    (void)hint;
    *buf = uv_buf_init(s->buf, sizeof s->buf);
}

static void on_written(uv_write_t *req, int status)
{
    conn *c = req->data;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->pending.len = 0;
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = stream->data;
    if (nread == 0)
        return;   /* EAGAIN */
    if (nread < 0) {
        conn_close(c);
        return;
    }
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
    int n = uv_try_write(stream, &out, 1);
    if (n == nread)
        return;
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0)
        goto fail;
    size_t left = (size_t)nread - (size_t)n;
    if (!c->pending.buf && !(c->pending.buf = malloc(ECHO_CHUNK)))
        goto fail;
    memcpy(c->pending.buf, buf->base + n, left);
    c->pending.len = left;
    out = uv_buf_init(c->pending.buf, (unsigned)left);
    c->req.data = c;
    if (uv_write(&c->req, stream, &out, 1, on_written) < 0 ||
        uv_read_stop(stream) < 0)
        goto fail;
    return;
fail:
    conn_close(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(listener->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 ||
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

static void on_stop(uv_async_t *a)
{
    uv_walk(a->loop, close_any, NULL);
}

static int serve(void *p, echo_ready *ready)
{
    server *s = p;
    struct sockaddr_in a;
    int alen = sizeof a;
    int err = uv_loop_init(&s->loop);
    if (err < 0) {
        echo_ready_set(ready, err);
        return err;
    }
    s->loop.data = s;
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = NULL;
    uv_async_init(&s->loop, &s->stop_async, on_stop);
    s->stop_async.data = NULL;
    if ((err = uv_ip4_addr("127.0.0.1", 0, &a)) == 0 &&
        (err = uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0)) == 0 &&
        (err = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN,
                         on_connection)) == 0)
        err = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&a, &alen);
    echo_ready_set(ready, err < 0 ? err : ntohs(a.sin_port));
    if (err < 0)
        uv_walk(&s->loop, close_any, NULL);
    /* Runs until on_stop (or the failure above) closed every handle. */
    int rc = uv_run(&s->loop, UV_RUN_DEFAULT);
    if (err == 0 && rc != 0)
        err = -EBUSY;
    int cerr = uv_loop_close(&s->loop);
    return err < 0 ? err : cerr;
}

static void stop(void *p)
{
    server *s = p;
    uv_async_send(&s->stop_async);
}

int main(int argc, char **argv)
{
    static const echo_server_ops ops = {"libuv", serve, stop};
    server *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    int rc = echo_bench_main(argc, argv, &ops, s);
    free(s);
    return rc;
}
