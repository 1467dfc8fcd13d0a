/*
 * bench_echo_libev.c - the jobs of bench_echo.c against an echo server
 * on libev's ev_io watchers (epoll backend), for comparison.
 * Usage: bench_echo_libev [connections [round_trips [stream_MiB]]]
 * Output: "echo <job> libev <value> <unit>".
 *
 * The same server as bench_echo_epoll with libev as the loop: one read per
 * readiness, written back at once, the rest kept while the watcher waits
 * for EV_WRITE instead of EV_READ. ev_async_send stops it.
 */
#include <ev.h>

#include "echo_load.h"

typedef struct conn {
    ev_io io;
    echo_pending pending;
    struct server *server;
    struct conn *prev, *next;
} conn;

typedef struct server {
    struct ev_loop *loop;
    ev_io accept_io;
    ev_async stop_async;
    conn *conns;               /* every open connection, for shutdown */
    char buf[ECHO_CHUNK];
} server;

static void conn_close(conn *c)
{
    server *s = c->server;
    ev_io_stop(s->loop, &c->io);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->io.fd);
    echo_pending_free(&c->pending);
    free(c);
}

static void conn_want(conn *c, int events)
{
    ev_io_stop(c->server->loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    ev_io_start(c->server->loop, &c->io);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)w;
    server *s = c->server;
    int rc;
    (void)loop;
    if (revents & EV_WRITE) {
        rc = echo_flush(w->fd, &c->pending);
        if (rc == 0)
            conn_want(c, EV_READ);
        else if (rc < 0)
            conn_close(c);
        return;
    }
    ssize_t n = read(w->fd, s->buf, sizeof s->buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    rc = echo_send_or_keep(w->fd, &c->pending, s->buf, (size_t)n);
    if (rc == 1)
        conn_want(c, EV_WRITE);
    else if (rc < 0)
        conn_close(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    server *s = w->data;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        int fd = echo_accept(w->fd);
        if (fd == -EAGAIN)
            return;
        if (fd < 0)
            continue;
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->server = s;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int serve(void *p, echo_ready *ready)
{
    server *s = p;
    int port = 0;
    int fd = echo_listen_loopback(&port);
    if (fd < 0) {
        echo_ready_set(ready, fd);
        return fd;
    }
    s->loop = ev_loop_new(EVBACKEND_EPOLL);
    if (!s->loop) {
        close(fd);
        echo_ready_set(ready, -ENOMEM);
        return -ENOMEM;
    }
    ev_io_init(&s->accept_io, on_accept, fd, EV_READ);
    s->accept_io.data = s;
    ev_io_start(s->loop, &s->accept_io);
    ev_async_init(&s->stop_async, on_stop);
    ev_async_start(s->loop, &s->stop_async);
    echo_ready_set(ready, port);
    ev_run(s->loop, 0);
    while (s->conns)
        conn_close(s->conns);
    ev_io_stop(s->loop, &s->accept_io);
    ev_async_stop(s->loop, &s->stop_async);
    close(fd);
    ev_loop_destroy(s->loop);
    return 0;
}

static void stop(void *p)
{
    server *s = p;
    ev_async_send(s->loop, &s->stop_async);
}

int main(int argc, char **argv)
{
    static const echo_server_ops ops = {"libev", serve, stop};
    server *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    int rc = echo_bench_main(argc, argv, &ops, s);
    free(s);
    return rc;
}
