/*
 * mini_server.h - what the stand-alone benchmark servers share: the
 * idle_<lib> servers that bench_idle.c measures, and the http_<lib>
 * servers that bench/churn.sh and bench/callgrind.sh measure.
 *
 * Header-only (every function static, all inline but mini_http_answer),
 * like echo_load.h: the Makefile builds each bench/<name>.c into its own
 * binary.
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
 * Two protocols:
 * - idle (idle_<lib>): a request is a line, anything ending in '\n'; each
 *   is answered with MINI_IDLE_REPLY. The servers need no per-request
 *   state: every '\n' received completes one request.
 * - HTTP (http_<lib>): a request is a head ending in an empty line (no
 *   body: GET); each is answered with the same fixed 200 response
 *   examples/http-hello.c sends, byte for byte. HTTP/1.1 keeps the
 *   connection open unless the request says "Connection: close"; HTTP/1.0
 *   closes it after the answer unless it says "Connection: keep-alive".
 *   These servers only find the end of each head and read the version
 *   and the Connection field; they do not validate requests the way
 *   http-hello does (a malformed one gets no answer, the connection is
 *   closed).
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

/* TCP_NODELAY, as http-hello (the library's default) and nginx set it. */
static inline int mini_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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

/* ---- the HTTP protocol ------------------------------------------------ */

/* What examples/http-hello.c answers a GET with, byte for byte: on a
 * kept-alive connection, and before closing one. */
static const char mini_http_ok[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    "Content-Length: 13\r\n\r\nHello, World!";
static const char mini_http_ok_close[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    "Content-Length: 13\r\nConnection: close\r\n\r\nHello, World!";

/* Unanswered input a connection may hold: a request head longer than
 * this is not answered (the connection is closed). */
#define MINI_HTTP_IN 2048
/* The shortest request: "GET / HTTP/1.1\r\n\r\n". */
#define MINI_HTTP_MIN_REQ 18
/* Room for the answers to a full input buffer of the shortest requests,
 * so that one call always answers everything complete. */
#define MINI_HTTP_OUT \
    ((MINI_HTTP_IN / MINI_HTTP_MIN_REQ + 1) * (sizeof mini_http_ok_close - 1))

/* Whether s[0..n) equals lower, a lower-case literal, ignoring case. */
static inline bool mini_ieq(const char *s, size_t n, const char *lower)
{
    if (strlen(lower) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return true;
}

/* Whether the value v[0..n) of a Connection field lists token. */
static inline bool mini_has_token(const char *v, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (mini_ieq(v + start, end - start, token))
            return true;
    }
    return false;
}

/* Look at the request at the start of in[0..len), one line at a time.
 * Returns 1 with *head_len and *keep_alive set when a whole head is
 * there, 0 when more bytes are needed, -1 when it cannot be a request (a
 * line not ending in CRLF, no "HTTP/1.x" at the end of the first). */
static inline int mini_http_scan(const char *in, size_t len, size_t *head_len,
                                 bool *keep_alive)
{
    const char *line = in, *end = in + len;
    bool first = true, http11 = true, close = false, keep = false;
    for (;;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            return 0;
        if (nl == line || nl[-1] != '\r')
            return -1;
        size_t n = (size_t)(nl - 1 - line);   /* without the CRLF */
        if (first) {
            /* "GET / HTTP/1.1": the version ends the line. */
            if (n < 9 || memcmp(nl - 9, "HTTP/1.", 7) != 0)
                return -1;
            http11 = nl[-2] != '0';
            first = false;
        } else if (n == 0) {
            *head_len = (size_t)(nl + 1 - in);
            *keep_alive = http11 ? !close : keep;
            return 1;
        } else if (n > 11 && (line[0] == 'C' || line[0] == 'c') &&
                   mini_ieq(line, 11, "connection:")) {
            close = close || mini_has_token(line + 11, n - 11, "close");
            keep = keep || mini_has_token(line + 11, n - 11, "keep-alive");
        }
        line = nl + 1;
    }
}

/* Answer every whole request at the start of in[0..len): write the
 * answers into out (MINI_HTTP_OUT bytes), set *used to the bytes of input
 * they answered and *close when the connection is to be closed once the
 * answers are sent (a request asked for it, or the input is not HTTP or
 * its head does not fit in MINI_HTTP_IN). Returns the bytes to send.
 * Never inlined, so that bench/callgrind.sh can tell the server's own
 * request handling from its event library's work. */
__attribute__((noinline, unused))
static size_t mini_http_answer(const char *in, size_t len, size_t *used,
                               char *out, bool *close)
{
    size_t outlen = 0;
    *used = 0;
    *close = false;
    while (*used < len) {
        size_t head;
        bool keep;
        int r = mini_http_scan(in + *used, len - *used, &head, &keep);
        if (r == 0 && len - *used >= MINI_HTTP_IN)
            r = -1;
        if (r < 0)
            *close = true;
        if (r <= 0)
            break;
        const char *answer = keep ? mini_http_ok : mini_http_ok_close;
        size_t alen = keep ? sizeof mini_http_ok - 1
                           : sizeof mini_http_ok_close - 1;
        memcpy(out + outlen, answer, alen);
        outlen += alen;
        *used += head;
        if (!keep) {
            *close = true;
            break;
        }
    }
    return outlen;
}

/* The hand-written HTTP servers (epoll, libev, libuv) read into one
 * shared buffer of MINI_HTTP_IN bytes and keep nothing per connection
 * unless a request head arrives split over two reads: only then does the
 * connection get a buffer of its own, holding the unanswered bytes until
 * the rest arrives (and freed once they are answered). */
typedef struct mini_partial {
    char *buf;               /* NULL unless bytes are kept */
    size_t len;
} mini_partial;

/* Where the next read goes and how much it may read: after the kept
 * bytes, or at the start of shared. */
static inline char *mini_http_rdbuf(const mini_partial *p, char *shared,
                                    size_t *room)
{
    if (p->buf) {
        *room = MINI_HTTP_IN - p->len;
        return p->buf + p->len;
    }
    *room = MINI_HTTP_IN;
    return shared;
}

static inline void mini_partial_free(mini_partial *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = 0;
}

/* n bytes were read where mini_http_rdbuf() said. Answer every whole
 * request (into out, MINI_HTTP_OUT bytes) and keep what follows them.
 * Returns the bytes to send; sets *close when the connection is to be
 * closed after sending them (also when it cannot keep the rest). */
static inline size_t mini_http_feed(mini_partial *p, char *shared, size_t n,
                                    char *out, bool *close)
{
    char *in = p->buf ? p->buf : shared;
    size_t len = (p->buf ? p->len : 0) + n, used;
    size_t outlen = mini_http_answer(in, len, &used, out, close);
    if (*close || used == len) {
        mini_partial_free(p);
        return outlen;
    }
    if (!p->buf && !(p->buf = malloc(MINI_HTTP_IN))) {
        *close = true;
        return outlen;
    }
    memmove(p->buf, in + used, len - used);
    p->len = len - used;
    return outlen;
}

#endif /* MINI_SERVER_H */
