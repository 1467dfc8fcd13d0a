/*
 * http_libev.c - the minimal HTTP server of bench/churn.sh and
 * bench/callgrind.sh on libev.
 * Usage: http_libev [PORT]   (see mini_server.h)
 *
 * The same server as http_epoll with libev as the loop: an ev_io watcher
 * in a small malloc'd struct per connection, one read per readiness into
 * a shared buffer, the answers sent at once. Accepted sockets get
 * TCP_NODELAY. An ev_signal watcher ends it on SIGTERM.
 */
#include <ev.h>

#include "mini_server.h"

#define PROG "http_libev"

typedef struct conn {
    ev_io io;
    mini_partial partial;
} conn;

static char in_buf[MINI_HTTP_IN];
static char out_buf[MINI_HTTP_OUT];

static void conn_close(struct ev_loop *loop, conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    mini_partial_free(&c->partial);
    free(c);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)w;
    size_t room, outlen;
    bool close_after;
    (void)revents;
    char *at = mini_http_rdbuf(&c->partial, in_buf, &room);
    ssize_t n = read(w->fd, at, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(loop, c);
        return;
    }
    outlen = mini_http_feed(&c->partial, in_buf, (size_t)n, out_buf,
                            &close_after);
    if ((outlen > 0 && mini_send_all(w->fd, out_buf, outlen) < 0) ||
        close_after)
        conn_close(loop, c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EMFILE ||
                errno == ENFILE)
                return;
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        if (!c || mini_nodelay(fd) < 0) {
            free(c);
            close(fd);
            continue;
        }
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static void on_term(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    int port = mini_server_init(argc, argv);
    ev_io accept_io;
    ev_signal term;
    /* ev_signal needs the default loop. */
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    if (!loop) {
        fprintf(stderr, "%s: cannot create the loop\n", PROG);
        return 1;
    }
    int lfd = mini_listen(port, &port);
    if (lfd < 0) {
        mini_fail(PROG, "cannot listen", lfd);
        return 1;
    }
    ev_io_init(&accept_io, on_accept, lfd, EV_READ);
    ev_io_start(loop, &accept_io);
    ev_signal_init(&term, on_term, SIGTERM);
    ev_signal_start(loop, &term);
    mini_announce(port);
    ev_run(loop, 0);
    ev_io_stop(loop, &accept_io);
    ev_signal_stop(loop, &term);
    close(lfd);
    ev_loop_destroy(loop);
    return 0;
}
