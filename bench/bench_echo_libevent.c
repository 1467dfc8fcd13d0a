/*
 * bench_echo_libevent.c - the jobs of bench_echo.c against an echo server
 * on libevent (evconnlistener and plain events), for comparison.
 * Usage: bench_echo_libevent [connections [round_trips [stream_MiB]]]
 * Output: "echo <job> libevent <value> <unit>".
 *
 * The same server as bench_echo_epoll with libevent as the loop: one read
 * per readiness, written back at once, the rest kept while the write event
 * replaces the read event. Plain events rather than bufferevents because
 * a bufferevent writes only on the next loop iteration, not at once. An
 * eventfd stops it (event_base_loopbreak is not thread-safe without
 * libevent_pthreads).
 */
#include <event2/event.h>
#include <event2/listener.h>
#include <sys/eventfd.h>

#include "echo_load.h"

typedef struct conn {
    int fd;
    struct event *read_ev, *write_ev;
    echo_pending pending;
    struct server *server;
    struct conn *prev, *next;
} conn;

typedef struct server {
    struct event_base *base;
    int stop_fd;
    conn *conns;               /* every open connection, for shutdown */
    char buf[ECHO_CHUNK];
} server;

static void conn_close(conn *c)
{
    server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->read_ev);
    event_free(c->write_ev);
    close(c->fd);
    echo_pending_free(&c->pending);
    free(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)what;
    int rc = echo_flush(fd, &c->pending);
    if (rc == 0 && (event_del(c->write_ev) < 0 ||
                    event_add(c->read_ev, NULL) < 0))
        rc = -EIO;
    if (rc < 0)
        conn_close(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)what;
    ssize_t n = read(fd, c->server->buf, sizeof c->server->buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    int rc = echo_send_or_keep(fd, &c->pending, c->server->buf, (size_t)n);
    if (rc == 1 && (event_del(c->read_ev) < 0 ||
                    event_add(c->write_ev, NULL) < 0))
        rc = -EIO;
    if (rc < 0)
        conn_close(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    server *s = arg;
    conn *c = calloc(1, sizeof *c);
    (void)l;
    (void)sa;
    (void)salen;
    /* evconnlistener made fd non-blocking and close-on-exec. */
    if (!c || echo_set_nodelay(fd) < 0)
        goto fail;
    c->fd = fd;
    c->server = s;
    c->read_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->write_ev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    if (!c->read_ev || !c->write_ev || event_add(c->read_ev, NULL) < 0)
        goto fail;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    return;
fail:
    if (c && c->read_ev)
        event_free(c->read_ev);
    if (c && c->write_ev)
        event_free(c->write_ev);
    free(c);
    close(fd);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(s->base);
}

static int serve(void *p, echo_ready *ready)
{
    server *s = p;
    struct evconnlistener *l = NULL;
    struct event *stop_ev = NULL;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int err = 0;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->base = event_base_new();
    if (!s->base) {
        echo_ready_set(ready, -ENOMEM);
        return -ENOMEM;
    }
    errno = 0;
    l = evconnlistener_new_bind(s->base, on_accept, s,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                    LEV_OPT_CLOSE_ON_EXEC,
                                SOMAXCONN, (struct sockaddr *)&a, sizeof a);
    if (!l)
        err = errno ? -errno : -EADDRNOTAVAIL;
    else if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a,
                         &alen) < 0)
        err = -errno;
    if (err == 0) {
        stop_ev = event_new(s->base, s->stop_fd, EV_READ, on_stop, s);
        if (!stop_ev || event_add(stop_ev, NULL) < 0)
            err = -ENOMEM;
    }
    echo_ready_set(ready, err < 0 ? err : ntohs(a.sin_port));
    if (err == 0 && event_base_dispatch(s->base) < 0)
        err = -EIO;
    while (s->conns)
        conn_close(s->conns);
    if (stop_ev)
        event_free(stop_ev);
    if (l)
        evconnlistener_free(l);
    event_base_free(s->base);
    libevent_global_shutdown();
    return err;
}

static void stop(void *p)
{
    server *s = p;
    uint64_t one = 1;
    if (write(s->stop_fd, &one, sizeof one) != sizeof one)
        fprintf(stderr, "bench_echo_libevent: cannot wake the server: %s\n",
                strerror(errno));
}

int main(int argc, char **argv)
{
    static const echo_server_ops ops = {"libevent", serve, stop};
    server *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    /* Made and closed here: main writes to it after the server's last
     * use, which a close in the server thread would race with. */
    s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = s->stop_fd < 0 ? 1 : echo_bench_main(argc, argv, &ops, s);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    free(s);
    return rc;
}
