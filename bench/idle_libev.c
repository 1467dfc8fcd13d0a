/*
 * idle_libev.c - the idle-memory server of bench_idle.c on libev.
 * Usage: idle_libev [PORT]   (see mini_server.h; bench_idle runs it)
 *
 * Answers each line with "ok\n" (the idle protocol of mini_server.h).
 * Per connection: what a libev user writes, an ev_io watcher in a small
 * malloc'd struct (nothing else is needed: reads go to one shared buffer,
 * the protocol has no state). The listening socket is ours, libev has
 * none. An ev_signal watcher ends it on SIGTERM.
 */
#include <ev.h>

#include "mini_server.h"

#define PROG "idle_libev"

typedef struct conn {
    ev_io io;
} conn;

static char buf[65536];

static void conn_close(struct ev_loop *loop, conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)w;
    (void)revents;
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(loop, c);
        return;
    }
    size_t pending = mini_count_lines(buf, (size_t)n), len;
    while (pending > 0) {
        const char *reply = mini_reply_chunk(&pending, &len);
        if (mini_send_all(w->fd, reply, len) < 0) {
            conn_close(loop, c);
            return;
        }
    }
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
        conn *c = malloc(sizeof *c);
        if (!c) {
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
