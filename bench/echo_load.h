/*
 * echo_load.h - the load client and harness shared by bench/bench_echo*.c.
 *
 * Header-only (every function static inline): the Makefile builds each
 * bench/<name>.c into its own binary and links no shared bench object.
 *
 * A bench_echo_<lib> program fills an echo_server_ops and calls
 * echo_bench_main(). That starts the library's echo server on
 * 127.0.0.1, port 0, in a second thread, then runs two jobs from the main
 * thread with plain non-blocking sockets and one epoll loop:
 *   rtt_rate: C connections (default 50) each ping-pong a 64-byte message,
 *             a new one as soon as the last came back, until R round trips
 *             (default 200000) are done; round trips per second. One
 *             untimed round trip per connection comes first (warm-up).
 *             Also the server thread's CPU time per round trip, which
 *             shows the library's own cost with less scheduling noise.
 *   stream:   one connection sends S MiB (default 256) while reading the
 *             echo back; MiB per second of echoed bytes received, and
 *             the server thread's CPU time per MiB.
 * Each job stops at a 30 s wall-clock cap and then reports what it did
 * (with a note on stderr). Every echoed byte is checked. Output, after the
 * server thread has been stopped and joined:
 *   echo rtt_rate <lib> <value> rt/s
 *   echo rtt_server_cpu <lib> <value> ns/rt
 *   echo stream <lib> <value> MiB/s
 *   echo stream_server_cpu <lib> <value> us/MiB
 * Usage: bench_echo_<lib> [connections [round_trips [stream_MiB]]]
 *        bench_echo_<lib> --serve
 * With --serve the program runs the server alone, in the foreground,
 * until SIGTERM or SIGINT (echo_serve_alone): bench/backends.sh measures
 * the peers' echo servers that way, as processes of their own.
 *
 * The hand-written servers (epoll, libev, libevent) also share the socket
 * helpers below, so that they differ only in the event library.
 */
#ifndef ECHO_LOAD_H
#define ECHO_LOAD_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_MSG_LEN 64
#define ECHO_CHUNK 65536               /* read/write size on both sides */
/* The wall-clock cap of each job (override with -DECHO_CAP_NS=N to test). */
#ifndef ECHO_CAP_NS
#define ECHO_CAP_NS (30ull * 1000000000u)
#endif
#define ECHO_SETUP_NS (10ull * 1000000000u)  /* server start, warm-up, join */
#define ECHO_MAX_CONNS 10000
/* The stream pattern repeats every ECHO_PERIOD bytes: a prime, so that a
 * byte echoed at the wrong offset is noticed. Must be >= ECHO_CHUNK. */
#define ECHO_PERIOD 65537u

/* ---- the server side's contract -------------------------------------- */

/* How the server thread tells the main thread its port (or failure). */
typedef struct echo_ready {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int port;              /* > 0, or a negative errno */
} echo_ready;

/* One echo server under test.
 * serve(server, ready) runs in the server thread. It sets the server up
 * on 127.0.0.1 port 0 and calls echo_ready_set(ready, port), or
 * echo_ready_set(ready, -errno) and returns on failure; then it runs the
 * loop until stop() is called, frees everything it made and returns 0 or a
 * negative errno.
 * stop(server) is called once from the main thread after the port was
 * published; it must make serve() return soon (any wake-up mechanism). */
typedef struct echo_server_ops {
    const char *lib;
    int (*serve)(void *server, echo_ready *ready);
    void (*stop)(void *server);
} echo_server_ops;

static inline uint64_t echo_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void echo_ready_set(echo_ready *r, int port)
{
    pthread_mutex_lock(&r->lock);
    if (!r->done) {
        r->done = true;
        r->port = port;
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- socket helpers for the hand-written servers ----------------------- */

/* A non-blocking listening socket on 127.0.0.1 with a kernel-chosen port.
 * Returns the fd and sets *port, or returns a negative errno. */
static inline int echo_listen_loopback(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static inline int echo_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0
               ? -errno : 0;
}

/* Accept one connection: non-blocking, close-on-exec, TCP_NODELAY.
 * Returns the fd, -EAGAIN when none is pending, or another negative errno
 * (transient ones such as ECONNABORTED included: the caller goes on). */
static inline int echo_accept(int listen_fd)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    int err = echo_set_nodelay(fd);
    if (err < 0) {
        close(fd);
        return err;
    }
    return fd;
}

/* Bytes a connection could not write yet, kept until it is writable. The
 * servers stop reading while some are kept, so this never exceeds one
 * read (ECHO_CHUNK). */
typedef struct echo_pending {
    char *buf;
    size_t off, len;
} echo_pending;

static inline void echo_pending_free(echo_pending *p)
{
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
}

/* Send from data until len bytes are sent or the socket is full. Returns
 * the bytes sent, or a negative errno (close the connection). */
static inline ssize_t echo_send_some(int fd, const void *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, (const char *)data + done, len - done,
                         MSG_NOSIGNAL);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else if (!(n < 0 && errno == EINTR))
            return n < 0 ? -errno : -EIO;
    }
    return (ssize_t)done;
}

/* Send data[0..len) now; keep in p what the kernel does not take.
 * Returns 0 when all is sent, 1 when bytes are kept (wait for writable,
 * stop reading), or a negative errno (close the connection). */
static inline int echo_send_or_keep(int fd, echo_pending *p, const char *data,
                                    size_t len)
{
    ssize_t n = echo_send_some(fd, data, len);
    if (n < 0 || (size_t)n == len)
        return n < 0 ? (int)n : 0;
    size_t left = len - (size_t)n;
    if (left > ECHO_CHUNK)
        return -EMSGSIZE;
    if (!p->buf && !(p->buf = malloc(ECHO_CHUNK)))
        return -ENOMEM;
    memcpy(p->buf, data + n, left);
    p->off = 0;
    p->len = left;
    return 1;
}

/* Send what p keeps. Returns 0 when p is empty (resume reading), 1 when
 * bytes remain, or a negative errno. */
static inline int echo_flush(int fd, echo_pending *p)
{
    ssize_t n = echo_send_some(fd, p->buf + p->off, p->len - p->off);
    if (n < 0)
        return (int)n;
    p->off += (size_t)n;
    if (p->off < p->len)
        return 1;
    p->off = p->len = 0;
    return 0;
}

/* ---- the load client ------------------------------------------------- */

typedef struct echo_client_conn {
    int fd;
    bool busy;              /* a message is out and not fully back */
    bool want_out;          /* EPOLLOUT is registered */
    uint64_t seq;
    size_t sent, recvd;
    unsigned char out[ECHO_MSG_LEN];
    unsigned char in[ECHO_MSG_LEN];
} echo_client_conn;

/* Print what failed; err is an errno of either sign. The client reports
 * EPIPE for a server that closed, EBADMSG and EPROTO for a wrong echo. */
static inline int echo_fail(const char *lib, const char *what, int err)
{
    int e = err < 0 ? -err : err;
    const char *why = strerror(e);
    if (e == EPIPE)
        why = "the server closed the connection";
    else if (e == EBADMSG)
        why = "an echoed byte differs from what was sent";
    else if (e == EPROTO)
        why = "more bytes came back than were sent";
    fprintf(stderr, "bench_echo (%s): %s: %s\n", lib, what, why);
    return -e;
}

/* A connected, non-blocking TCP_NODELAY socket to 127.0.0.1:port. The
 * connect itself is blocking, bounded by SO_SNDTIMEO. */
static inline int echo_connect(int port)
{
    struct sockaddr_in a;
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int flags;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        echo_set_nodelay(fd) < 0 || (flags = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* Milliseconds to wait in epoll_wait: until the deadline, at most 1 s;
 * -1 when the deadline has passed. */
static inline int echo_wait_ms(uint64_t deadline)
{
    uint64_t now = echo_now_ns();
    if (now >= deadline)
        return -1;
    uint64_t ms = (deadline - now + 999999u) / 1000000u;
    return ms > 1000 ? 1000 : (int)ms;
}

static inline int echo_interest(int ep, echo_client_conn *c, uint32_t idx,
                                bool want_out)
{
    struct epoll_event ev = {
        .events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.u32 = idx};
    if (c->want_out == want_out)
        return 0;
    c->want_out = want_out;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

static inline int echo_msg_send(int ep, echo_client_conn *c, uint32_t idx)
{
    ssize_t n = echo_send_some(c->fd, c->out + c->sent,
                               ECHO_MSG_LEN - c->sent);
    if (n < 0)
        return (int)n;
    c->sent += (size_t)n;
    return echo_interest(ep, c, idx, c->sent < ECHO_MSG_LEN);
}

/* Start the next message of c: its sequence number, then bytes that
 * depend on the connection and the sequence number. */
static inline int echo_msg_start(int ep, echo_client_conn *c, uint32_t idx)
{
    c->seq++;
    memcpy(c->out, &c->seq, sizeof c->seq);
    for (size_t i = sizeof c->seq; i < ECHO_MSG_LEN; i++)
        c->out[i] = (unsigned char)(idx * 131u + c->seq * 7u + i);
    c->sent = c->recvd = 0;
    c->busy = true;
    return echo_msg_send(ep, c, idx);
}

/* Ping-pong on n connections until target more round trips are done or
 * deadline passes. Adds the completed round trips to *done. */
static inline int echo_pingpong(int ep, echo_client_conn *conns, uint32_t n,
                                uint64_t target, uint64_t deadline,
                                uint64_t *done)
{
    struct epoll_event evs[256];
    uint64_t issued = 0, finished = 0;
    int err;
    for (uint32_t i = 0; i < n && issued < target; i++, issued++)
        if ((err = echo_msg_start(ep, &conns[i], i)) < 0)
            return err;
    while (finished < target) {
        int ms = echo_wait_ms(deadline);
        if (ms < 0)
            break;
        int k = epoll_wait(ep, evs, 256, ms);
        if (k < 0 && errno != EINTR)
            return -errno;
        for (int e = 0; e < k; e++) {
            uint32_t idx = evs[e].data.u32;
            echo_client_conn *c = &conns[idx];
            if ((evs[e].events & EPOLLOUT) && c->busy &&
                (err = echo_msg_send(ep, c, idx)) < 0)
                return err;
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            if (!c->busy)
                return -EPROTO;        /* bytes nobody asked for */
            ssize_t r = recv(c->fd, c->in + c->recvd,
                             ECHO_MSG_LEN - c->recvd, 0);
            if (r == 0)
                return -EPIPE;         /* the server closed on us */
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    continue;
                return -errno;
            }
            c->recvd += (size_t)r;
            if (c->recvd > c->sent)
                return -EPROTO;
            if (c->recvd < ECHO_MSG_LEN)
                continue;
            if (memcmp(c->in, c->out, ECHO_MSG_LEN) != 0)
                return -EBADMSG;
            c->busy = false;
            finished++;
            if (issued < target) {
                issued++;
                if ((err = echo_msg_start(ep, c, idx)) < 0)
                    return err;
            }
        }
    }
    *done += finished;
    return 0;
}

static inline uint64_t echo_cpu_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sets *rate (round trips per second) and *server_ns (the server
 * thread's CPU time per round trip, read from its clock server_cpu). */
static inline int echo_job_rtt(const char *lib, int port, uint32_t nconns,
                               uint64_t round_trips, clockid_t server_cpu,
                               double *rate, double *server_ns)
{
    echo_client_conn *conns = calloc(nconns, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint32_t opened = 0;
    uint64_t warm = 0, done = 0;
    int err = 0;
    if (!conns || ep < 0) {
        err = echo_fail(lib, "rtt setup", conns ? errno : ENOMEM);
        goto out;
    }
    for (; opened < nconns; opened++) {
        echo_client_conn *c = &conns[opened];
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = opened};
        if ((c->fd = echo_connect(port)) < 0) {
            err = echo_fail(lib, "connect to the server", c->fd);
            goto out;
        }
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            err = echo_fail(lib, "epoll_ctl", errno);
            close(c->fd);
            goto out;
        }
    }
    err = echo_pingpong(ep, conns, nconns, nconns,
                        echo_now_ns() + ECHO_SETUP_NS, &warm);
    if (err == 0 && warm < nconns)
        err = -ETIMEDOUT;
    if (err < 0) {
        err = echo_fail(lib, "rtt warm-up", err);
        goto out;
    }
    uint64_t c0 = echo_cpu_ns(server_cpu), t0 = echo_now_ns();
    err = echo_pingpong(ep, conns, nconns, round_trips, t0 + ECHO_CAP_NS,
                        &done);
    uint64_t t1 = echo_now_ns(), c1 = echo_cpu_ns(server_cpu);
    if (err < 0) {
        err = echo_fail(lib, "rtt", err);
        goto out;
    }
    *rate = (double)done * 1e9 / (double)(t1 - t0);
    *server_ns = done ? (double)(c1 - c0) / (double)done : 0;
    if (done < round_trips)
        fprintf(stderr, "bench_echo (%s): rtt: %.0f s cap reached after "
                "%llu of %llu round trips\n", lib, (double)ECHO_CAP_NS / 1e9,
                (unsigned long long)done, (unsigned long long)round_trips);
out:
    for (uint32_t i = 0; i < opened; i++)
        close(conns[i].fd);
    if (ep >= 0)
        close(ep);
    free(conns);
    return err;
}

static inline unsigned char echo_pattern_byte(uint32_t i)
{
    return (unsigned char)((i * 2654435761u) >> 24);
}

/* Stream total bytes out and back on one connection, checking each echoed
 * byte against the pattern at its offset. */
static inline int echo_stream_run(int ep, int fd, const unsigned char *pat,
                                  unsigned char *in, uint64_t total,
                                  uint64_t deadline, uint64_t *received)
{
    struct epoll_event evs[4];
    uint64_t sent = 0, recvd = 0;
    bool want_out = true;
    while (recvd < total) {
        int ms = echo_wait_ms(deadline);
        if (ms < 0)
            break;
        int k = epoll_wait(ep, evs, 4, ms);
        if (k < 0 && errno != EINTR)
            return -errno;
        for (int e = 0; e < k; e++) {
            if ((evs[e].events & EPOLLOUT) && sent < total) {
                uint64_t left = total - sent;
                size_t len = left < ECHO_CHUNK ? (size_t)left : ECHO_CHUNK;
                ssize_t n = send(fd, pat + sent % ECHO_PERIOD, len,
                                 MSG_NOSIGNAL);
                if (n > 0)
                    sent += (uint64_t)n;
                else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                    return n < 0 ? -errno : -EIO;
                if (sent == total && want_out) {
                    struct epoll_event ev = {.events = EPOLLIN};
                    want_out = false;
                    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
                        return -errno;
                }
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = recv(fd, in, ECHO_CHUNK, 0);
            if (r == 0)
                return -EPIPE;
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                return -errno;
            }
            if ((uint64_t)r > sent - recvd)
                return -EPROTO;
            if (memcmp(in, pat + recvd % ECHO_PERIOD, (size_t)r) != 0)
                return -EBADMSG;
            recvd += (uint64_t)r;
        }
    }
    *received = recvd;
    return 0;
}

/* Sets *rate (MiB per second) and *server_us (the server thread's CPU
 * time per MiB, in microseconds). */
static inline int echo_job_stream(const char *lib, int port, uint64_t total,
                                  clockid_t server_cpu, double *rate,
                                  double *server_us)
{
    /* Two periods, so that any window of ECHO_CHUNK bytes is contiguous. */
    unsigned char *pat = malloc(2 * ECHO_PERIOD);
    unsigned char *in = malloc(ECHO_CHUNK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int fd = -1, err = 0;
    uint64_t recvd = 0;
    if (!pat || !in || ep < 0) {
        err = echo_fail(lib, "stream setup", ep < 0 ? errno : ENOMEM);
        goto out;
    }
    for (uint32_t i = 0; i < 2 * ECHO_PERIOD; i++)
        pat[i] = echo_pattern_byte(i % ECHO_PERIOD);
    if ((fd = echo_connect(port)) < 0) {
        err = echo_fail(lib, "connect to the server", fd);
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        err = echo_fail(lib, "epoll_ctl", errno);
        goto out;
    }
    uint64_t c0 = echo_cpu_ns(server_cpu), t0 = echo_now_ns();
    err = echo_stream_run(ep, fd, pat, in, total, t0 + ECHO_CAP_NS, &recvd);
    uint64_t t1 = echo_now_ns(), c1 = echo_cpu_ns(server_cpu);
    if (err < 0) {
        err = echo_fail(lib, "stream", err);
        goto out;
    }
    double mib = (double)recvd / (1024.0 * 1024.0);
    *rate = mib * 1e9 / (double)(t1 - t0);
    *server_us = mib > 0 ? (double)(c1 - c0) / 1000.0 / mib : 0;
    if (recvd < total)
        fprintf(stderr, "bench_echo (%s): stream: %.0f s cap reached after "
                "%llu of %llu bytes\n", lib, (double)ECHO_CAP_NS / 1e9,
                (unsigned long long)recvd, (unsigned long long)total);
out:
    if (fd >= 0)
        close(fd);
    if (ep >= 0)
        close(ep);
    free(in);
    free(pat);
    return err;
}

/* ---- the harness ----------------------------------------------------- */

typedef struct echo_thread_arg {
    const echo_server_ops *ops;
    void *server;
    echo_ready *ready;
    int rc;
} echo_thread_arg;

static inline void *echo_server_thread(void *p)
{
    echo_thread_arg *a = p;
    a->rc = a->ops->serve(a->server, a->ready);
    /* A serve() that returned without publishing a port failed. */
    echo_ready_set(a->ready, a->rc < 0 ? a->rc : -EPROTO);
    return NULL;
}

/* Wait for the server's port, at most ECHO_SETUP_NS. Returns the port, a
 * negative errno from the server, or -ETIMEDOUT. */
static inline int echo_ready_wait(echo_ready *r)
{
    struct timespec until;
    int rc = 0;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ECHO_SETUP_NS / 1000000000u);
    pthread_mutex_lock(&r->lock);
    while (!r->done && rc == 0)
        rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
    int port = r->done ? r->port : -ETIMEDOUT;
    pthread_mutex_unlock(&r->lock);
    return port;
}

static inline void echo_ready_init(echo_ready *r)
{
    pthread_condattr_t ca;
    r->done = false;
    r->port = 0;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
}

static inline void echo_ready_destroy(echo_ready *r)
{
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
}

/* Start targ's server in a thread of its own (*tid) and wait for its
 * port. Returns the port, or a negative errno (said on stderr; no thread
 * is left running). */
static inline int echo_server_start(echo_thread_arg *targ, pthread_t *tid)
{
    const char *lib = targ->ops->lib;
    if (pthread_create(tid, NULL, echo_server_thread, targ) != 0) {
        fprintf(stderr, "bench_echo (%s): cannot start the server thread\n",
                lib);
        return -EAGAIN;
    }
    int port = echo_ready_wait(targ->ready);
    if (port == -ETIMEDOUT) {
        echo_fail(lib, "server start", port);
        _exit(1);   /* stuck in setup: nothing to stop it with */
    }
    if (port < 0) {
        echo_fail(lib, "server start", port);
        pthread_join(*tid, NULL);
    }
    return port;
}

/* Stop the server started by echo_server_start and join its thread (at
 * most ECHO_SETUP_NS). Returns 0, or -1 when the server failed. */
static inline int echo_server_stop(echo_thread_arg *targ, pthread_t tid)
{
    struct timespec until;
    targ->ops->stop(targ->server);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ECHO_SETUP_NS / 1000000000u);
    if (pthread_timedjoin_np(tid, NULL, &until) != 0) {
        fprintf(stderr, "bench_echo (%s): the server did not stop within "
                "10 s\n", targ->ops->lib);
        _exit(1);   /* its thread still uses what main would free */
    }
    if (targ->rc < 0) {
        echo_fail(targ->ops->lib, "server", targ->rc);
        return -1;
    }
    return 0;
}

/* How long a server started with --serve lives at most, should whoever
 * started it die without stopping it (as mini_server.h's servers). */
#define ECHO_SERVE_LIFETIME_S 1800

/* bench_echo_<lib> --serve: the server alone, a process of its own that
 * bench/backends.sh measures from outside (/proc, strace). The server
 * runs in its thread as in the benchmark; the main thread prints
 * "listening on 127.0.0.1:PORT" and waits for SIGTERM or SIGINT, then
 * stops the server and exits (status 0 when it stopped cleanly). */
static inline int echo_serve_alone(const echo_server_ops *ops, void *server)
{
    echo_ready ready;
    echo_thread_arg targ = {ops, server, &ready, 0};
    sigset_t stop;
    pthread_t tid;
    int sig, rc = 1;

    /* Blocked before the server thread exists, so that it inherits the
     * mask and only sigwait() below takes them. SIGALRM's default action
     * ends the process. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(ECHO_SERVE_LIFETIME_S);
    echo_ready_init(&ready);
    int port = echo_server_start(&targ, &tid);
    if (port > 0) {
        printf("listening on 127.0.0.1:%d\n", port);
        fflush(stdout);
        while (sigwait(&stop, &sig) != 0)
            ;
        rc = echo_server_stop(&targ, tid) == 0 ? 0 : 1;
    }
    echo_ready_destroy(&ready);
    return rc;
}

static inline long echo_arg(int argc, char **argv, int i, long def, long max)
{
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    return *end == '\0' && v > 0 && v <= max ? v : -1;
}

/* The program's main: the benchmark, or with --serve the server alone. */
static inline int echo_bench_main(int argc, char **argv,
                                  const echo_server_ops *ops, void *server)
{
    if (argc == 2 && strcmp(argv[1], "--serve") == 0)
        return echo_serve_alone(ops, server);
    long nconns = echo_arg(argc, argv, 1, 50, ECHO_MAX_CONNS);
    long round_trips = echo_arg(argc, argv, 2, 200000, 1000000000L);
    long stream_mib = echo_arg(argc, argv, 3, 256, 1L << 20);
    double rtt = 0, rtt_cpu = 0, stream = 0, stream_cpu = 0;
    clockid_t server_cpu;
    echo_ready ready;
    echo_thread_arg targ = {ops, server, &ready, 0};
    pthread_t tid;
    int ok = 0;

    if (nconns < 0 || round_trips < 0 || stream_mib < 0) {
        fprintf(stderr, "usage: %s [connections [round_trips [stream_MiB]]]\n"
                "       %s --serve\n"
                "  defaults 50, 200000, 256\n", argv[0], argv[0]);
        return 2;
    }
    /* The client sends with MSG_NOSIGNAL; this covers any peer library
     * that does not. */
    signal(SIGPIPE, SIG_IGN);
    echo_ready_init(&ready);
    int port = echo_server_start(&targ, &tid);
    if (port < 0) {
        ok = -1;
        goto out;
    }
    if (pthread_getcpuclockid(tid, &server_cpu) != 0) {
        echo_fail(ops->lib, "the server thread's CPU clock", ESRCH);
        ok = -1;
    } else if (echo_job_rtt(ops->lib, port, (uint32_t)nconns,
                            (uint64_t)round_trips, server_cpu, &rtt,
                            &rtt_cpu) < 0 ||
               echo_job_stream(ops->lib, port, (uint64_t)stream_mib << 20,
                               server_cpu, &stream, &stream_cpu) < 0) {
        ok = -1;
    }
    if (echo_server_stop(&targ, tid) < 0)
        ok = -1;
    if (ok == 0) {
        printf("echo rtt_rate %s %.1f rt/s\n", ops->lib, rtt);
        printf("echo rtt_server_cpu %s %.1f ns/rt\n", ops->lib, rtt_cpu);
        printf("echo stream %s %.1f MiB/s\n", ops->lib, stream);
        printf("echo stream_server_cpu %s %.1f us/MiB\n", ops->lib,
               stream_cpu);
        fflush(stdout);
    }
out:
    echo_ready_destroy(&ready);
    return ok == 0 ? 0 : 1;
}

#endif /* ECHO_LOAD_H */
