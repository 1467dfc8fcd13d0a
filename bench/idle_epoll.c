/*
 * idle_epoll.c - the idle-memory server of bench_idle.c written directly
 * on epoll: the floor, what a connection costs with nothing in user space.
 * Usage: idle_epoll [PORT]   (see mini_server.h; bench_idle runs it)
 *
 * Answers each line with "ok\n" (the idle protocol of mini_server.h).
 * Per connection it keeps nothing at all: the epoll entry carries the fd,
 * reads go to one shared buffer, and the protocol needs no state (each
 * '\n' is one request). Level-triggered; a signalfd ends it on SIGTERM.
 */
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "mini_server.h"

#define PROG "idle_epoll"

static char buf[65536];

static void serve(int fd)
{
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close(fd);   /* also leaves the epoll set */
        return;
    }
    size_t pending = mini_count_lines(buf, (size_t)n), len;
    while (pending > 0) {
        const char *reply = mini_reply_chunk(&pending, &len);
        if (mini_send_all(fd, reply, len) < 0) {
            close(fd);
            return;
        }
    }
}

static void accept_some(int ep, int lfd)
{
    /* At most 64 per wake-up, so that open connections are served too. */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EMFILE ||
                errno == ENFILE)
                return;
            continue;   /* ECONNABORTED and the like: the next one */
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    int port = mini_server_init(argc, argv);
    sigset_t term;
    int lfd = -1, sfd = -1, ep = -1, err = 0;

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &term, NULL) < 0 ||
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
    close(lfd);
    close(sfd);
    close(ep);
    return err < 0 ? 1 : 0;
}
