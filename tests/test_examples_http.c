/*
 * test_examples_http.c - http-hello driven as a user drives it: requests
 * over real loopback and Unix sockets (pipelined, malformed, trickling),
 * answers checked byte for byte, then the summary it prints on SIGTERM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "netcore.h"
#include "proc.h"

/* ---- http-hello ------------------------------------------------------------ */

#define OK_BODY "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                "Content-Length: 13\r\n"

static void http_answers_pipelined_requests_in_order(void **state)
{
    static const char reqs[] =
        "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
        "HEAD /2 HTTP/1.1\r\nHost: t\r\n\r\n"
        "POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
        "GET /4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const char want[] =
        OK_BODY "\r\nHello, World!"
        OK_BODY "\r\n"
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
        "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\n"
        "Method Not Allowed\n"
        OK_BODY "Connection: close\r\n\r\nHello, World!";
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                NULL);
    char buf[4096];
    bool eof;
    int fd;

    (void)state;
    fd = tcp_connect(listen_port(p));
    send_all(fd, reqs, sizeof reqs - 1);
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    assert_string_equal(buf, want);
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "http-hello: served 1 connections, "
                                        "4 answers by status: 200 3, 405 1"));
}

/* Send a request, read the answer until the server closes. */
static void http_exchange(unsigned port, const char *req, size_t len,
                          char *buf, size_t max)
{
    bool eof;
    int fd = tcp_connect(port);

    send_all(fd, req, len);
    read_until_eof(fd, buf, max, &eof);
    assert_true(eof);
    close(fd);
}

static void http_answers_400_and_431_then_closes(void **state)
{
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                NULL);
    unsigned port = listen_port(p);
    const char *pad_start = "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    char *big = malloc(16384), buf[4096];
    size_t fixed = strlen(pad_start) + 4, total;

    (void)state;
    assert_non_null(big);
    http_exchange(port, "GET / HTTP/1.1\nHost: t\n\n", 24, buf, sizeof buf);
    assert_non_null(strstr(buf, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));

    /* A head of 8192 + 1 bytes: 431, then the server closes. */
    total = 8193;
    memcpy(big, pad_start, strlen(pad_start));
    memset(big + strlen(pad_start), 'p', total - fixed);
    memcpy(big + total - 4, "\r\n\r\n", 4);
    http_exchange(port, big, total, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 431 Request Header Fields Too "
                                  "Large\r\n", 46), 0);
    assert_non_null(strstr(buf, "Connection: close\r\n"));

    /* Exactly 8 KiB is still fine (closing it with Connection: close). */
    total = 8192;
    pad_start = "GET / HTTP/1.1\r\nConnection: close\r\nHost: t\r\nX-Pad: ";
    fixed = strlen(pad_start) + 4;
    memcpy(big, pad_start, strlen(pad_start));
    memset(big + strlen(pad_start), 'p', total - fixed);
    memcpy(big + total - 4, "\r\n\r\n", 4);
    http_exchange(port, big, total, buf, sizeof buf);
    assert_int_equal(strncmp(buf, OK_BODY, strlen(OK_BODY)), 0);
    free(big);

    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "3 answers by status: 200 1, "
                                        "400 1, 431 1"));
}

/* ---- pipelining over a Unix socket, then the client's end ---------------- */

static int unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Send all of out while reading what comes back (the buffers of a Unix
 * socket are small: the server stops reading while we do not), then
 * half-close and read until the server's end. Returns the bytes read. */
static size_t exchange_all(int fd, const char *out, size_t len, char *in,
                           size_t max, bool *eof)
{
    uint64_t until = deadline();
    size_t sent = 0, got = 0;

    *eof = false;
    while (!*eof && ms_left(until) > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (sent < len)
            pfd.events |= POLLOUT;
        if (poll(&pfd, 1, ms_left(until)) <= 0)
            break;
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(fd, out + sent, len - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0 && (sent += (size_t)n) == len)
                shutdown(fd, SHUT_WR);
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            ssize_t n = recv(fd, in + got, max - got, MSG_DONTWAIT);
            if (n == 0)
                *eof = true;
            else if (n > 0)
                got += (size_t)n;
        }
        assert_true(got < max);
    }
    return got;
}

static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    const char *p = hay, *end = hay + len;

    while ((p = memmem(p, (size_t)(end - p), needle, k)) != NULL) {
        n++;
        p += k;
    }
    return n;
}

/* 3,000 pipelined requests, then the client half-closes (as HTTP/1.0
 * tools and shell pipes do): every answer arrives before the end. With
 * the last one asking for Connection: close, the same. */
static void http_answers_every_pipelined_request_before_closing(void **st)
{
    enum { N = 3000 };
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char last[] =
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char path[64], spec[80];
    size_t rlen = sizeof req - 1, len, got;
    char *out = malloc(N * rlen + sizeof last);
    char *in = malloc(N * 128);
    bool eof;
    int fd, round;

    (void)st;
    assert_non_null(out);
    assert_non_null(in);
    snprintf(path, sizeof path, "/tmp/nc-test-http-%d.sock", (int)getpid());
    snprintf(spec, sizeof spec, "unix:%s", path);
    struct proc *p = proc_start("http-hello", "--listen", spec, NULL);
    listen_port(p);
    for (round = 0; round < 2; round++) {
        for (len = 0; len < (N - 1) * rlen; len += rlen)
            memcpy(out + len, req, rlen);
        /* Round 0 ends with a plain request and the client's end of
         * stream; round 1 with Connection: close. */
        memcpy(out + len, round ? last : req, round ? sizeof last - 1 : rlen);
        len += round ? sizeof last - 1 : rlen;
        fd = unix_connect(path);
        got = exchange_all(fd, out, len, in, N * 128, &eof);
        close(fd);
        assert_true(eof);
        assert_int_equal(count(in, got, "HTTP/1.1 200 OK\r\n"), N);
    }
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    free(out);
    free(in);
}

/* A head arriving a byte at a time ("slowloris") is cut off by
 * --header-timeout, although each byte comes well within the idle
 * timeout; a normal request is served on the same server. */
static void http_header_timeout_ends_a_trickling_head(void **state)
{
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                "--header-timeout", "0.3",
                                "--idle-timeout", "10", NULL);
    unsigned port = listen_port(p);
    uint64_t until = deadline(), start;
    char buf[4096], c;
    bool closed = false;
    int fd;

    (void)state;
    fd = tcp_connect(port);
    start = now_ms();
    send_all(fd, "GET / HTTP/1.1\r\n", 16);
    while (!closed && ms_left(until) > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        /* One byte every 50 ms; the server's end stops the loop. */
        if (poll(&pfd, 1, 50) == 1) {
            closed = recv(fd, &c, 1, 0) <= 0;
            assert_true(closed);
            break;
        }
        send(fd, "X", 1, MSG_NOSIGNAL);
    }
    assert_true(closed);
    assert_true(now_ms() - start >= 300);
    close(fd);
    http_exchange(port, "GET / HTTP/1.0\r\n\r\n", 18, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
}

/* Wait up to ms for the server to answer or close: true if it closed. The
 * pacing of the trickling cases below, which also notices an early end. */
static bool closed_within(int fd, int ms, size_t *answered)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    uint64_t until = now_ms() + (uint64_t)ms;
    char buf[4096];

    while (ms_left(until) > 0) {
        ssize_t n;
        if (poll(&pfd, 1, ms_left(until)) != 1)
            break;
        n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return true;
        if (answered != NULL)
            *answered += count(buf, (size_t)n, "HTTP/1.1 200 OK\r\n");
    }
    return false;
}

/* Pipelined requests whose every write ends in the middle of the next
 * head: each head is complete 100 ms after its first byte, well inside
 * --header-timeout 0.3, but a head is always pending for 0.8 s. Each
 * head gets its own deadline, so none of them is cut off. */
static void http_header_timeout_restarts_for_each_pipelined_head(void **st)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char last[] =
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    enum { ROUNDS = 8, SPLIT = 7 };
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                "--header-timeout", "0.3", NULL);
    size_t answered = 0, n = sizeof req - 1 - SPLIT;
    char buf[4096];
    bool eof;
    int fd, i;

    (void)st;
    fd = tcp_connect(listen_port(p));
    send_all(fd, req, SPLIT);
    for (i = 0; i < ROUNDS; i++) {
        assert_false(closed_within(fd, 100, &answered));
        /* The rest of this head and the start of the next, in one
         * segment: the server never sees a pause between requests. */
        memcpy(buf, req + SPLIT, n);
        memcpy(buf + n, i + 1 < ROUNDS ? req : last, SPLIT);
        send_all(fd, buf, n + SPLIT);
    }
    assert_false(closed_within(fd, 100, &answered));
    send_all(fd, last + SPLIT, sizeof last - 1 - SPLIT);
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    answered += count(buf, strlen(buf), "HTTP/1.1 200 OK\r\n");
    assert_int_equal(answered, ROUNDS + 1);
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_null(strstr(p->buf[OUT], "deadline passed"));
}

/* A body announced as 1,000,000 bytes and sent a byte every 50 ms: each
 * byte keeps the idle timer from firing, but with --body-timeout 0.3 and
 * --body-min-rate 1000 the body owes 300 bytes in every 0.3 s, and the
 * server closes the connection when the first window passes short. */
static void http_body_timeout_ends_a_trickling_body(void **state)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: t\r\n"
                               "Content-Length: 1000000\r\n\r\n";
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                "--body-timeout", "0.3", "--body-min-rate",
                                "1000", "--idle-timeout", "10", NULL);
    unsigned port = listen_port(p);
    uint64_t until = deadline(), start;
    bool closed = false;
    int fd;

    (void)state;
    fd = tcp_connect(port);
    start = now_ms();
    send_all(fd, head, sizeof head - 1);
    while (!closed && ms_left(until) > 0) {
        closed = closed_within(fd, 50, NULL);
        if (!closed)
            send(fd, "b", 1, MSG_NOSIGNAL);
    }
    assert_true(closed);
    assert_true(now_ms() - start >= 300);
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "deadline passed 1"));
}

/* A body that arrives at twice the minimum rate goes on past
 * --body-timeout: 1,200 bytes, 100 every 50 ms, against 300 bytes owed
 * per 0.3 s. The request after it is answered on the same connection. */
static void http_body_at_the_minimum_rate_is_not_cut_off(void **state)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: t\r\n"
                               "Content-Length: 1200\r\n\r\n";
    static const char last[] =
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct proc *p = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                "--body-timeout", "0.3", "--body-min-rate",
                                "1000", NULL);
    char chunk[100], buf[4096];
    bool eof;
    int fd, i;

    (void)state;
    memset(chunk, 'b', sizeof chunk);
    fd = tcp_connect(listen_port(p));
    send_all(fd, head, sizeof head - 1);
    for (i = 0; i < 12; i++) {
        assert_false(closed_within(fd, 50, NULL));
        send_all(fd, chunk, sizeof chunk);
    }
    send_all(fd, last, sizeof last - 1);
    read_until_eof(fd, buf, sizeof buf, &eof);
    assert_true(eof);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    close(fd);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    assert_non_null(strstr(p->buf[OUT], "2 answers by status: 200 1, 405 1"));
    assert_null(strstr(p->buf[OUT], "deadline passed"));
}

#define CASE(f) cmocka_unit_test_teardown(f, proc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(http_answers_pipelined_requests_in_order),
        CASE(http_answers_400_and_431_then_closes),
        CASE(http_answers_every_pipelined_request_before_closing),
        CASE(http_header_timeout_ends_a_trickling_head),
        CASE(http_header_timeout_restarts_for_each_pipelined_head),
        CASE(http_body_timeout_ends_a_trickling_body),
        CASE(http_body_at_the_minimum_rate_is_not_cut_off),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("examples_http", tests, proc_setup,
                                       NULL);
}
