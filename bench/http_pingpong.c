/*
 * http_pingpong.c - the load client of bench/callgrind.sh and
 * bench/backends.sh: HTTP/1.1 keep-alive requests, or echo messages, on
 * a number of connections, each waiting for its answers before it sends
 * again.
 *
 * Usage: http_pingpong [-d DEPTH] [-e SIZE] [-m SECONDS [-p PID]]
 *                      PORT [CONNS [REQUESTS [SECONDS]]]
 *   Opens CONNS connections to 127.0.0.1:PORT (default 1, at most 1000).
 *   Each sends DEPTH requests back to back (default 1: ping-pong) and
 *   reads all DEPTH answers before it sends the next DEPTH, until
 *   REQUESTS answers have arrived in all (default 10000) or SECONDS have
 *   passed (default 300). Then it closes the connections and exits:
 *   status 0 when every request was answered, 1 otherwise (with the
 *   reason).
 *   A request is "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" and its
 *   answer a whole HTTP response (a "HTTP/1.1 200" status line, the head,
 *   Content-Length bytes of body); with -e SIZE it is a message of SIZE
 *   bytes (1 to 65536) and its answer the same bytes back, every byte
 *   checked (the bytes change from one round to the next).
 *   -d DEPTH    requests in flight per connection, 1 to 64.
 *   -m SECONDS  measure: first one untimed round on every connection
 *               (DEPTH requests each: the warm-up), then REQUESTS more
 *               answers, but stop sending once SECONDS have passed (the
 *               requests in flight are then answered; that is not a
 *               failure). Prints on stdout
 *                 requests N seconds S server_ticks T
 *               for the measured part only: its answers, its wall time
 *               and, with -p PID, the utime + stime of process PID over
 *               it in clock ticks (/proc/PID/stat; -1 without -p).
 * Prints one line to stderr: requests, connections, seconds, rate. The
 * rate is not a result under callgrind or strace: it measures those.
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
#define MAX_DEPTH 64
#define MAX_ECHO 65536
#define RESP_MAX 4096    /* longest answer accepted */
/* Echo rounds start at one of this many offsets of the pattern, so that
 * an answer from an earlier round does not match. */
#define ECHO_SHIFTS 251

static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/* What every connection sends and expects. */
typedef struct load {
    int depth;
    size_t echo;             /* message size, 0 for HTTP */
    char *out;               /* HTTP: depth requests; echo: the pattern */
    size_t bufsize;          /* each connection's receive buffer */
} load;

typedef struct conn {
    int fd;
    bool want_out;           /* EPOLLOUT is registered */
    int batch;               /* requests of this round, 0 when idle */
    int answered;            /* of them */
    uint64_t round;
    const char *msg;         /* this round's bytes */
    size_t msg_len, sent;
    size_t got, parsed;      /* bytes received, of them answers */
    char *buf;
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

static int want_out(int ep, conn *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u),
                             .data.ptr = c};
    if (c->want_out == on)
        return 0;
    c->want_out = on;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

/* Send what is left of this round's bytes; what the socket does not take
 * goes when it is writable. */
static int send_rest(int ep, conn *c)
{
    while (c->sent < c->msg_len) {
        ssize_t n = send(c->fd, c->msg + c->sent, c->msg_len - c->sent,
                         MSG_NOSIGNAL);
        if (n > 0)
            c->sent += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else if (!(n < 0 && errno == EINTR))
            return n < 0 ? -errno : -EIO;
    }
    return want_out(ep, c, c->sent < c->msg_len);
}

/* Start a round of n requests on c. */
static int round_start(int ep, const load *ld, conn *c, int n)
{
    c->batch = n;
    c->answered = 0;
    c->got = c->parsed = c->sent = 0;
    c->round++;
    if (ld->echo) {
        c->msg = ld->out + c->round % ECHO_SHIFTS;
        c->msg_len = (size_t)n * ld->echo;
    } else {
        c->msg = ld->out;
        c->msg_len = (size_t)n * (sizeof request - 1);
    }
    return send_rest(ep, c);
}

/* The length of the whole answer at the start of buf[0..len): > 0, 0 not
 * yet, or a negative errno (-EBADMSG not a 200, -EMSGSIZE too long). */
static long answer_len(const char *buf, size_t len)
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
    if (head + body > RESP_MAX)
        return -EMSGSIZE;
    return len < head + body ? 0 : (long)(head + body);
}

/* Count the answers c->buf holds now. Returns 0, or a negative errno
 * (-EPROTO: more bytes than the round's answers). */
static int take_answers(const load *ld, conn *c)
{
    if (ld->echo) {
        if (c->got > c->msg_len)
            return -EPROTO;
        /* Checked in whole messages, as they complete. */
        size_t whole = c->got / ld->echo * ld->echo;
        if (whole > c->parsed) {
            if (memcmp(c->buf + c->parsed, c->msg + c->parsed,
                       whole - c->parsed) != 0)
                return -EBADMSG;
            c->answered = (int)(whole / ld->echo);
            c->parsed = whole;
        }
        return 0;
    }
    while (c->answered < c->batch) {
        long k = answer_len(c->buf + c->parsed, c->got - c->parsed);
        if (k <= 0)
            return (int)k;
        c->parsed += (size_t)k;
        c->answered++;
    }
    return c->parsed == c->got ? 0 : -EPROTO;
}

/* Read what arrived on c. Returns the answers it completed (0 or more),
 * or a negative errno. */
static int on_readable(const load *ld, conn *c)
{
    if (c->batch == 0)
        return -EPROTO;      /* bytes nobody asked for */
    ssize_t r = recv(c->fd, c->buf + c->got, ld->bufsize - c->got, 0);
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (r == 0) {
        fprintf(stderr, "%s: (the server closed a connection)\n", PROG);
        return -EPIPE;
    }
    c->got += (size_t)r;
    int before = c->answered;
    int err = take_answers(ld, c);
    if (err < 0)
        return err;
    if (c->answered == before && c->got == ld->bufsize)
        return -EMSGSIZE;
    return c->answered - before;
}

/* Run rounds on every connection until target answers have arrived, or
 * until stop_at (then no round starts; those in flight end). Past
 * deadline it fails. Adds the answers to *done. */
static int pingpong(int ep, const load *ld, conn *conns, int nconns,
                    uint64_t target, uint64_t stop_at, uint64_t deadline,
                    uint64_t *done)
{
    struct epoll_event evs[64];
    uint64_t issued = 0, finished = 0;
    int err, busy = 0;
    bool stopping = false;

    for (int i = 0; i < nconns && issued < target; i++, busy++) {
        int n = target - issued < (uint64_t)ld->depth
                    ? (int)(target - issued) : ld->depth;
        issued += (uint64_t)n;
        if ((err = round_start(ep, ld, &conns[i], n)) < 0)
            return fail("send", err);
    }
    while (busy > 0) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            fprintf(stderr, "%s: time limit reached after %llu of %llu "
                    "requests\n", PROG, (unsigned long long)(*done + finished),
                    (unsigned long long)(*done + target));
            *done += finished;
            return -ETIMEDOUT;
        }
        stopping = stopping || now >= stop_at;
        uint64_t ms = (deadline - now) / 1000000u + 1;
        int n = epoll_wait(ep, evs, 64, ms > 1000 ? 1000 : (int)ms);
        if (n < 0 && errno != EINTR)
            return fail("epoll_wait", errno);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if ((evs[i].events & EPOLLOUT) && c->batch > 0 &&
                (err = send_rest(ep, c)) < 0)
                return fail("send", err);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            int k = on_readable(ld, c);
            if (k < 0)
                return fail("answer", k);
            finished += (uint64_t)k;
            if (c->answered < c->batch)
                continue;
            c->batch = 0;
            busy--;
            if (issued < target && !stopping) {
                int m = target - issued < (uint64_t)ld->depth
                            ? (int)(target - issued) : ld->depth;
                issued += (uint64_t)m;
                busy++;
                if ((err = round_start(ep, ld, c, m)) < 0)
                    return fail("send", err);
            }
        }
    }
    *done += finished;
    return 0;
}

/* utime + stime of process pid, in clock ticks; -1 if unknown. */
static long long cpu_ticks(long pid)
{
    char path[64], line[1024];
    unsigned long long ut, st;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* After "(comm) ", which may hold spaces: field 3 (state) on; utime
     * and stime are fields 14 and 15. */
    const char *p = strrchr(line, ')');
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

static int load_init(load *ld)
{
    size_t unit = ld->echo ? ld->echo : sizeof request - 1;
    size_t len = (size_t)ld->depth * unit + (ld->echo ? ECHO_SHIFTS : 0);
    if (!(ld->out = malloc(len)))
        return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        ld->out[i] = ld->echo ? (char)(i * 2654435761u >> 24)
                              : request[i % unit];
    ld->bufsize = (size_t)ld->depth * (ld->echo ? ld->echo : RESP_MAX);
    return 0;
}

typedef struct run_args {
    int port, nconns;
    uint64_t requests, deadline;
    double measure_s;        /* -m; 0 without */
    long pid;                /* -p; 0 without */
} run_args;

/* Open the connections and run the load: all of it, or the warm-up and
 * the measured part (printed on stdout). Sets *done to the answers of
 * what counts (everything, or the measured part) and *secs to its time. */
static int run(const run_args *a, const load *ld, uint64_t *done,
               double *secs)
{
    uint64_t start = now_ns();
    conn *conns = calloc((size_t)a->nconns, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC), opened = 0, err = 0;

    if (!conns || ep < 0) {
        err = fail("setup", conns ? errno : ENOMEM);
        goto out;
    }
    for (; opened < a->nconns; opened++) {
        conn *c = &conns[opened];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!(c->buf = malloc(ld->bufsize))) {
            err = fail("setup", ENOMEM);
            goto out;
        }
        if ((c->fd = conn_open(a->port)) < 0) {
            err = fail("connect", c->fd);
            free(c->buf);
            goto out;
        }
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            err = fail("epoll_ctl", errno);
            close(c->fd);
            free(c->buf);
            goto out;
        }
    }
    if (a->measure_s <= 0) {
        err = pingpong(ep, ld, conns, a->nconns, a->requests, UINT64_MAX,
                       a->deadline, done);
        *secs = (double)(now_ns() - start) / 1e9;
        goto out;
    }
    uint64_t warm = 0;
    err = pingpong(ep, ld, conns, a->nconns,
                   (uint64_t)a->nconns * (uint64_t)ld->depth, UINT64_MAX,
                   a->deadline, &warm);
    if (err < 0)
        goto out;
    long long k0 = a->pid ? cpu_ticks(a->pid) : -1;
    uint64_t t0 = now_ns();
    err = pingpong(ep, ld, conns, a->nconns, a->requests,
                   t0 + (uint64_t)(a->measure_s * 1e9), a->deadline, done);
    uint64_t t1 = now_ns();
    long long k1 = a->pid ? cpu_ticks(a->pid) : -1;
    *secs = (double)(t1 - t0) / 1e9;
    if (err == 0)
        printf("requests %llu seconds %.6f server_ticks %lld\n",
               (unsigned long long)*done, *secs,
               k0 >= 0 && k1 >= 0 ? k1 - k0 : -1);
out:
    for (int i = 0; i < opened; i++) {
        close(conns[i].fd);
        free(conns[i].buf);
    }
    if (ep >= 0)
        close(ep);
    free(conns);
    return err;
}

static long number(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && *end == '\0' && v >= min && v <= max ? v : -1;
}

static long arg(int argc, char **argv, int i, long def, long min, long max)
{
    return argc <= i ? def : number(argv[i], min, max);
}

static int usage(void)
{
    fprintf(stderr, "usage: %s [-d DEPTH] [-e SIZE] [-m SECONDS [-p PID]] "
            "PORT [CONNS [REQUESTS [SECONDS]]]\n"
            "  defaults: depth 1, HTTP, 1 connection, 10000 requests, "
            "300 s\n", PROG);
    return 2;
}

int main(int argc, char **argv)
{
    load ld = {.depth = 1, .echo = 0, .out = NULL, .bufsize = 0};
    run_args a = {.measure_s = 0, .pid = 0};
    long v = 0;
    int opt;
    char *end;

    while ((opt = getopt(argc, argv, "d:e:m:p:")) != -1) {
        switch (opt) {
        case 'd':
            if ((v = number(optarg, 1, MAX_DEPTH)) < 0)
                return usage();
            ld.depth = (int)v;
            break;
        case 'e':
            if ((v = number(optarg, 1, MAX_ECHO)) < 0)
                return usage();
            ld.echo = (size_t)v;
            break;
        case 'm':
            a.measure_s = strtod(optarg, &end);
            if (*end != '\0' || !(a.measure_s > 0 && a.measure_s <= 86400))
                return usage();
            break;
        case 'p':
            if ((v = number(optarg, 1, 1L << 30)) < 0)
                return usage();
            a.pid = v;
            break;
        default:
            return usage();
        }
    }
    argc -= optind - 1;
    argv += optind - 1;
    long port = arg(argc, argv, 1, -1, 1, 65535);
    long nconns = arg(argc, argv, 2, 1, 1, MAX_CONNS);
    long requests = arg(argc, argv, 3, 10000, 1, 1000000000L);
    long seconds = arg(argc, argv, 4, 300, 1, 86400);
    if (argc > 5 || port < 0 || nconns < 0 || requests < 0 || seconds < 0 ||
        (a.pid && a.measure_s <= 0))
        return usage();
    if (load_init(&ld) < 0) {
        fail("setup", ENOMEM);
        return 1;
    }

    uint64_t done = 0;
    double s = 0;
    a.port = (int)port;
    a.nconns = (int)nconns;
    a.requests = (uint64_t)requests;
    a.deadline = now_ns() + (uint64_t)seconds * 1000000000u;
    int err = run(&a, &ld, &done, &s);
    fprintf(stderr, "%s: %llu requests on %ld connections in %.2f s "
            "(%.0f req/s)%s\n", PROG, (unsigned long long)done, nconns, s,
            s > 0 ? (double)done / s : 0.0,
            a.measure_s > 0 ? ", measured after the warm-up" : "");
    free(ld.out);
    if (err < 0)
        return 1;
    return a.measure_s > 0 ? (done > 0 ? 0 : 1)
                           : (done == (uint64_t)requests ? 0 : 1);
}
