/*
 * idle_libuv.c - the idle-memory server of bench_idle.c on libuv.
 * Usage: idle_libuv [PORT]   (see mini_server.h; bench_idle runs it)
 *
 * Answers each line with "ok\n" (the idle protocol of mini_server.h).
 * Per connection: what a libuv user writes, a malloc'd uv_tcp_t reading
 * into one shared buffer (the alloc callback hands out the same one every
 * time), answered with uv_write and a malloc'd uv_write_t that is freed
 * once written. A uv_signal_t ends it on SIGTERM: every handle is closed
 * and the loop closed.
 */
#include <uv.h>

#include "mini_server.h"

#define PROG "idle_libuv"

static char buf[65536];
static uv_tcp_t listener;
static uv_signal_t term;

static void on_closed(uv_handle_t *h)
{
    if (h != (uv_handle_t *)&listener && h != (uv_handle_t *)&term)
        free(h);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    (void)h;
    (void)hint;
    *out = uv_buf_init(buf, sizeof buf);
}

static void on_written(uv_write_t *req, int status)
{
    if (status < 0 && !uv_is_closing((uv_handle_t *)req->handle))
        uv_close((uv_handle_t *)req->handle, on_closed);
    free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *in)
{
    if (nread < 0) {           /* UV_EOF or an error */
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    size_t pending = mini_count_lines(in->base, (size_t)nread), len;
    while (pending > 0) {
        /* The answers are static: nothing to keep alive but the request. */
        const char *reply = mini_reply_chunk(&pending, &len);
        uv_buf_t b = uv_buf_init((char *)reply, (unsigned)len);
        uv_write_t *req = malloc(sizeof *req);
        if (!req || uv_write(req, s, &b, 1, on_written) < 0) {
            free(req);
            uv_close((uv_handle_t *)s, on_closed);
            return;
        }
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    if (!c)
        return;
    uv_tcp_init(l->loop, c);
    if (uv_accept(l, (uv_stream_t *)c) < 0 ||
        uv_read_start((uv_stream_t *)c, on_alloc, on_read) < 0)
        uv_close((uv_handle_t *)c, on_closed);
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
