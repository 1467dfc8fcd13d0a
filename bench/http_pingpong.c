/*
 * http_pingpong.c - the load client of bench/callgrind.sh: HTTP/1.1
 * keep-alive ping-pong with one request in flight per connection.
 *
 * Usage: http_pingpong PORT [CONNS [REQUESTS [SECONDS]]]
 *   Opens CONNS connections to 127.0.0.1:PORT (default 1, at most 1000).
 *   Each sends "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" and reads the
 *   whole answer (a "HTTP/1.1 200" status line, the head, Content-Length
 *   bytes of body) before it sends the next request, until REQUESTS
 *   answers have arrived in all (default 10000) or SECONDS have passed
 *   (default 300). Then it closes the connections and exits: status 0
 *   when every request was answered, 1 otherwise (with the reason).
 * Prints one line to stderr: requests, connections, seconds, rate. The
 * rate is not a result: under callgrind or strace it measures those.
 *
 * One epoll loop on non-blocking sockets with TCP_NODELAY; the connects
 * are blocking, bounded by SO_SNDTIMEO.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "http_pingpong"
#define MAX_CONNS 1000
#define RESP_MAX 4096    /* longest answer accepted */

static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

typedef struct conn {
    int fd;
    size_t got;
    char buf[RESP_MAX];
} conn;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(err < 0 ? -err : err));
    return err < 0 ? err : -err;
}

static int conn_open(int port)
{
    struct timeval tv = {5, 0};
    struct sockaddr_in a;
    int one = 1, flags;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        (flags = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* The request is tiny and the socket idle: it goes out whole. */
static int send_request(conn *c)
{
    c->got = 0;
    ssize_t n = send(c->fd, request, sizeof request - 1, MSG_NOSIGNAL);
    if (n == (ssize_t)(sizeof request - 1))
        return 0;
    return n < 0 ? -errno : -EIO;
}

/* Whether buf[0..len) is a whole answer: 1 yes, 0 not yet, or a negative
 * errno (-EBADMSG not a 200, -EPROTO more bytes than the answer). */
static int answer_complete(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len < RESP_MAX ? 0 : -EMSGSIZE;
    if (len < 13 || memcmp(buf, "HTTP/1.1 200 ", 13) != 0)
        return -EBADMSG;
    size_t head = (size_t)(end - buf) + 4, body = 0;
    /* Content-Length, any case; the answers here always carry one. */
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && end - p > 15 &&
            strncasecmp(p, "content-length:", 15) == 0) {
            body = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    if (len < head + body)
        return 0;
    return len == head + body ? 1 : -EPROTO;
}

static int run(int port, int nconns, uint64_t target, uint64_t deadline,
               uint64_t *done)
{
    conn *conns = calloc((size_t)nconns, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC), opened = 0, err = 0;
    uint64_t issued = 0;
    struct epoll_event evs[64];

    if (!conns || ep < 0) {
        err = fail("setup", conns ? errno : ENOMEM);
        goto out;
    }
    for (; opened < nconns; opened++) {
        conn *c = &conns[opened];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if ((c->fd = conn_open(port)) < 0) {
            err = fail("connect", c->fd);
            goto out;
        }
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            err = fail("epoll_ctl", errno);
            close(c->fd);
            goto out;
        }
    }
    for (int i = 0; i < nconns && issued < target; i++, issued++)
        if ((err = send_request(&conns[i])) < 0) {
            fail("send", err);
            goto out;
        }
    while (*done < target) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            fprintf(stderr, "%s: time limit reached after %llu of %llu "
                    "requests\n", PROG, (unsigned long long)*done,
                    (unsigned long long)target);
            err = -ETIMEDOUT;
            goto out;
        }
        uint64_t ms = (deadline - now) / 1000000u + 1;
        int n = epoll_wait(ep, evs, 64, ms > 1000 ? 1000 : (int)ms);
        if (n < 0 && errno != EINTR) {
            err = fail("epoll_wait", errno);
            goto out;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->buf + c->got, RESP_MAX - c->got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                err = fail("receive", r == 0 ? EPIPE : errno);
                if (r == 0)
                    fprintf(stderr, "%s: (the server closed a connection)\n",
                            PROG);
                goto out;
            }
            c->got += (size_t)r;
            int k = answer_complete(c->buf, c->got);
            if (k < 0) {
                err = fail("answer", k);
                goto out;
            }
            if (k == 0)
                continue;
            ++*done;
            if (issued < target) {
                issued++;
                if ((err = send_request(c)) < 0) {
                    fail("send", err);
                    goto out;
                }
            }
        }
    }
out:
    for (int i = 0; i < opened; i++)
        close(conns[i].fd);
    if (ep >= 0)
        close(ep);
    free(conns);
    return err;
}

static long arg(int argc, char **argv, int i, long def, long min, long max)
{
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    return *end == '\0' && v >= min && v <= max ? v : -1;
}

int main(int argc, char **argv)
{
    long port = arg(argc, argv, 1, -1, 1, 65535);
    long nconns = arg(argc, argv, 2, 1, 1, MAX_CONNS);
    long requests = arg(argc, argv, 3, 10000, 1, 1000000000L);
    long seconds = arg(argc, argv, 4, 300, 1, 86400);
    uint64_t done = 0;

    if (argc > 5 || port < 0 || nconns < 0 || requests < 0 || seconds < 0) {
        fprintf(stderr, "usage: %s PORT [CONNS [REQUESTS [SECONDS]]]\n"
                "  defaults: 1 connection, 10000 requests, 300 s\n", PROG);
        return 2;
    }
    uint64_t t0 = now_ns();
    int err = run((int)port, (int)nconns, (uint64_t)requests,
                  t0 + (uint64_t)seconds * 1000000000u, &done);
    double s = (double)(now_ns() - t0) / 1e9;
    fprintf(stderr, "%s: %llu requests on %ld connections in %.2f s "
            "(%.0f req/s)\n", PROG, (unsigned long long)done, nconns, s,
            s > 0 ? (double)done / s : 0.0);
    return err == 0 && done == (uint64_t)requests ? 0 : 1;
}
