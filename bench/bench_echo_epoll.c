/*
 * bench_echo_epoll.c - the jobs of bench_echo.c against a hand-written
 * epoll echo server: the floor an event library can at best reach.
 * Usage: bench_echo_epoll [connections [round_trips [stream_MiB]]]
 * Output: "echo <job> epoll <value> <unit>".
 *
 * Level-triggered, one read of up to 64 KiB per readiness, written back at
 * once; what the kernel does not take is kept and the connection waits
 * for EPOLLOUT instead of EPOLLIN until it is sent. An eventfd stops it.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "echo_load.h"

typedef struct conn {
    int fd;
    echo_pending pending;
    struct conn *prev, *next;
} conn;

typedef struct server {
    int ep, listen_fd, stop_fd;
    conn *conns;               /* every open connection, for shutdown */
    char buf[ECHO_CHUNK];
} server;

/* epoll data.ptr: the listener and the eventfd are told apart from
 * connections by these addresses. */
static char listen_tag, stop_tag;

static void conn_close(server *s, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->fd);   /* also removes it from the epoll set */
    echo_pending_free(&c->pending);
    free(c);
}

static int conn_want(server *s, conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void accept_all(server *s)
{
    for (int i = 0; i < 64; i++) {
        int fd = echo_accept(s->listen_fd);
        if (fd == -EAGAIN)
            return;
        if (fd < 0)
            continue;   /* ECONNABORTED and the like: the next one */
        conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
    }
}

static void conn_event(server *s, conn *c, uint32_t events)
{
    int rc;
    if (c->pending.len > 0) {
        rc = echo_flush(c->fd, &c->pending);
        if (rc == 0 && conn_want(s, c, EPOLLIN) < 0)
            rc = -errno;
        if (rc < 0)
            conn_close(s, c);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = read(c->fd, s->buf, sizeof s->buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(s, c);
        return;
    }
    rc = echo_send_or_keep(c->fd, &c->pending, s->buf, (size_t)n);
    if (rc == 1 && conn_want(s, c, EPOLLOUT) < 0)
        rc = -errno;
    if (rc < 0)
        conn_close(s, c);
}

static int run(server *s)
{
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(s->ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &stop_tag)
                return 0;
            if (tag == &listen_tag)
                accept_all(s);
            else
                conn_event(s, tag, evs[i].events);
        }
    }
}

static int serve(void *p, echo_ready *ready)
{
    server *s = p;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stop_tag};
    int port = 0, err = 0;
    if ((s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        err = -errno;
    else if ((s->listen_fd = echo_listen_loopback(&port)) < 0)
        err = s->listen_fd;
    else if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->listen_fd, &lev) < 0 ||
             epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stop_fd, &sev) < 0)
        err = -errno;
    echo_ready_set(ready, err < 0 ? err : port);
    if (err == 0)
        err = run(s);
    while (s->conns)
        conn_close(s, s->conns);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->ep >= 0)
        close(s->ep);
    return err;
}

static void stop(void *p)
{
    server *s = p;
    uint64_t one = 1;
    if (write(s->stop_fd, &one, sizeof one) != sizeof one)
        fprintf(stderr, "bench_echo_epoll: cannot wake the server: %s\n",
                strerror(errno));
}

int main(int argc, char **argv)
{
    static const echo_server_ops ops = {"epoll", serve, stop};
    server *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    s->ep = s->listen_fd = -1;
    /* Made and closed here: main writes to it after the server's last
     * use, which a close in the server thread would race with. */
    s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = s->stop_fd < 0 ? 1 : echo_bench_main(argc, argv, &ops, s);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    free(s);
    return rc;
}
