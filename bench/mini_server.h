/*
 * mini_server.h - what the stand-alone benchmark servers share: the
 * idle_<lib> servers that bench_idle.c measures.
 *
 * Header-only (every function static inline), like echo_load.h: the
 * Makefile builds each bench/<name>.c into its own binary.
 *
 * Each server is a program of its own, so that its memory, CPU time and
 * system calls can be read from outside (/proc, strace, callgrind) with
 * nothing else in the process:
 *   <server> [PORT]
 * listens on 127.0.0.1:PORT (0, the default, lets the kernel choose),
 * prints "listening on 127.0.0.1:PORT" on stdout once it accepts
 * connections, serves until SIGTERM, then stops its loop, frees the loop
 * and the listener and exits with status 0. Connections still open at
 * that moment are left to exit(): the harnesses close theirs first.
 * Should a harness die without stopping it, alarm() ends the server after
 * MINI_LIFETIME_S seconds (NC_BENCH_SERVER_LIFETIME overrides).
 *
 * The idle protocol: a request is a line, anything ending in '\n'; each
 * is answered with MINI_IDLE_REPLY. The servers need no per-request
 * state: every '\n' received completes one request.
 */
#ifndef MINI_SERVER_H
#define MINI_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MINI_LIFETIME_S 1800

/* ---- start-up -------------------------------------------------------- */

/* Parse "[PORT]", ignore SIGPIPE (not every library sends with
 * MSG_NOSIGNAL) and arm the lifetime alarm. Returns the port; exits with
 * status 2 on a bad argument. */
static inline int mini_server_init(int argc, char **argv)
{
    long port = 0, life = MINI_LIFETIME_S;
    const char *env = getenv("NC_BENCH_SERVER_LIFETIME");
    char *end;

    if (argc > 2 || (argc == 2 && (port = strtol(argv[1], &end, 10),
                                   *end != '\0' || port < 0 || port > 65535))) {
        fprintf(stderr, "usage: %s [PORT]\n"
                "  serve on 127.0.0.1:PORT (default 0: any free port) "
                "until SIGTERM\n", argv[0]);
        exit(2);
    }
    if (env && *env) {
        life = strtol(env, &end, 10);
        if (*end != '\0' || life <= 0)
            life = MINI_LIFETIME_S;
    }
    signal(SIGPIPE, SIG_IGN);
    /* SIGALRM's default action ends the process: no handler, no timer in
     * the loop being measured. */
    alarm((unsigned)life);
    return (int)port;
}

/* The line the harnesses wait for. */
static inline void mini_announce(int port)
{
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
}

static inline int mini_fd_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    return ntohs(a.sin_port);
}

/* A non-blocking, close-on-exec listening socket on 127.0.0.1:port, for
 * the servers whose library has no listener of its own (epoll, libev).
 * Sets *bound to the port it got. Returns the fd or a negative errno. */
static inline int mini_listen(int port, int *bound)
{
    struct sockaddr_in a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *bound = mini_fd_port(fd);
    return fd;
}

/* 127.0.0.1:port for the libraries that bind themselves. */
static inline struct sockaddr_in mini_loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

static inline void mini_fail(const char *prog, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err < 0 ? -err : err));
}

/* Send all of data[0..len) now. The servers' answers are small and their
 * clients wait for each one, so the kernel always takes it whole; a short
 * send means a client that does not read, and the caller closes it.
 * Returns 0, or -1 (close the connection). */
static inline int mini_send_all(int fd, const void *data, size_t len)
{
    ssize_t n;
    do
        n = send(fd, data, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

/* ---- the idle protocol ------------------------------------------------ */

#define MINI_IDLE_REPLY "ok\n"
#define MINI_IDLE_REPLY_LEN 3
#define MINI_REPLY4_ MINI_IDLE_REPLY MINI_IDLE_REPLY MINI_IDLE_REPLY MINI_IDLE_REPLY
#define MINI_REPLY16_ MINI_REPLY4_ MINI_REPLY4_ MINI_REPLY4_ MINI_REPLY4_
/* Up to MINI_REPLIES answers in one write. */
#define MINI_REPLIES 64
static const char mini_replies[] =
    MINI_REPLY16_ MINI_REPLY16_ MINI_REPLY16_ MINI_REPLY16_;

/* Requests completed by these bytes: one per '\n'. */
static inline size_t mini_count_lines(const void *data, size_t len)
{
    const char *p = data, *end = p + len;
    size_t n = 0;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* The next write for *pending answers: a pointer into mini_replies and
 * its length; *pending is reduced by the answers it holds. */
static inline const char *mini_reply_chunk(size_t *pending, size_t *len)
{
    size_t n = *pending < MINI_REPLIES ? *pending : MINI_REPLIES;
    *pending -= n;
    *len = n * MINI_IDLE_REPLY_LEN;
    return mini_replies;
}

#endif /* MINI_SERVER_H */
