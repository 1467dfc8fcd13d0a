/*
 * http_epoll.c - the minimal HTTP server of bench/churn.sh and
 * bench/callgrind.sh written directly on epoll: the floor.
 * Usage: http_epoll [PORT]   (see mini_server.h)
 *
 * Answers every request with http-hello's fixed 200 response; keeps
 * HTTP/1.1 connections open, closes HTTP/1.0 ones after the answer (the
 * rules are in mini_server.h). Level-triggered, one read of at most
 * MINI_HTTP_IN bytes per readiness into a shared buffer, the answers sent
 * at once with one send. Per connection: an fd-indexed slot that holds a
 * buffer only while a request head is split across reads. Accepted
 * sockets get TCP_NODELAY, as libnetcore and nginx give them. A signalfd
 * ends it on SIGTERM.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

#include "mini_server.h"

#define PROG "http_epoll"

static char in_buf[MINI_HTTP_IN];
static char out_buf[MINI_HTTP_OUT];
static mini_partial *slots;      /* indexed by fd */
static size_t nslots;

static void conn_close(int fd)
{
    mini_partial_free(&slots[fd]);
    close(fd);   /* also leaves the epoll set */
}

static void serve(int fd)
{
    mini_partial *p = &slots[fd];
    size_t room, outlen;
    bool close_after;
    char *at = mini_http_rdbuf(p, in_buf, &room);
    ssize_t n = read(fd, at, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(fd);
        return;
    }
    outlen = mini_http_feed(p, in_buf, (size_t)n, out_buf, &close_after);
    if ((outlen > 0 && mini_send_all(fd, out_buf, outlen) < 0) || close_after)
        conn_close(fd);
}

static void accept_some(int ep, int lfd)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EMFILE ||
                errno == ENFILE)
                return;
            continue;   /* ECONNABORTED and the like: the next one */
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if ((size_t)fd >= nslots || mini_nodelay(fd) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    int port = mini_server_init(argc, argv);
    struct rlimit rl;
    sigset_t term;
    int lfd = -1, sfd = -1, ep = -1, err = 0;

    /* One slot per possible fd; calloc'd pages are only touched when
     * used. */
    nslots = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20
                 ? (size_t)rl.rlim_cur : 1u << 20;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (!(slots = calloc(nslots, sizeof *slots)))
        err = -ENOMEM;
    else if (sigprocmask(SIG_BLOCK, &term, NULL) < 0 ||
             (sfd = signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
             (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        err = -errno;
    else if ((lfd = mini_listen(port, &port)) < 0)
        err = lfd;
    if (err == 0) {
        struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
        struct epoll_event sev = {.events = EPOLLIN, .data.fd = sfd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) < 0)
            err = -errno;
    }
    if (err < 0) {
        mini_fail(PROG, "cannot start", err);
        return 1;
    }
    mini_announce(port);

    struct epoll_event evs[256];
    for (bool running = true; running;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            mini_fail(PROG, "epoll_wait", errno);
            err = -errno;
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == sfd)
                running = false;
            else if (fd == lfd)
                accept_some(ep, lfd);
            else
                serve(fd);
        }
    }
    for (size_t fd = 0; fd < nslots; fd++)
        mini_partial_free(&slots[fd]);
    free(slots);
    close(lfd);
    close(sfd);
    close(ep);
    return err < 0 ? 1 : 0;
}
