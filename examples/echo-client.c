/*
 * echo-client - talk to an echo server, check every echo, or load it.
 *
 *   echo-client SPEC [--message TEXT] [--count N] [--size BYTES]
 *               [--connections N] [--timeout SECONDS] [--bind SPEC]
 *               [--tls [--tls-ca FILE] [--tls-name NAME] [--tls-no-verify]]
 *
 * Without load options it sends TEXT and a newline (or, without
 * --message, what it reads from stdin), checks that the same bytes come
 * back and prints them. With --count, --size or --connections it opens N
 * connections that each make COUNT round trips of one message and reports
 * round trips per second and latency percentiles.
 *
 * SPEC is an address, an interface, or a host name with a port
 * ("example.com:7"), looked up without blocking and connected to with
 * Happy Eyeballs (IPv6 and IPv4 raced). When the connection fails it
 * prints the error and the library's explanation of it (nothing
 * listening, firewall, no route, a certificate that is expired or for
 * another name...) and, for a name, every address tried and what
 * happened to each. With --tls it speaks TLS and checks the server's
 * certificate (against the system's CAs, or FILE) and name (the host of
 * SPEC, or NAME).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netcore.h"
#include "common/args.h"
#include "common/netinfo.h"

#define PROG "echo-client"
#define MAX_ROUND_TRIPS 10000000u
#define MAX_SIZE (64u << 20)
#define MAX_CONNECTIONS 10000u

struct client {
    nc_loop *loop;
    const char *target;
    bool tls;                    /* --tls */
    const char *tls_ca;          /* --tls-ca */
    const char *tls_name;        /* --tls-name */
    bool tls_no_verify;          /* --tls-no-verify */
    uint32_t timeout_ms;
    bool failed;
    size_t open;                 /* connections not yet closed */
    /* one-connection mode */
    const char *message;         /* NULL: read stdin */
    uint64_t connections;
    /* load mode */
    bool load;
    uint64_t count;              /* round trips per connection */
    const char *payload;
    size_t size;
    uint64_t *latency_ns;        /* count per connection */
    uint64_t start_ns, end_ns;
};

struct session {
    struct client *cl;
    nc_conn *conn;
    bool finished;               /* we closed it after the last echo */
    /* one-connection mode: bytes sent whose echo has not come back */
    char *expect;
    size_t expect_len, matched;
    nc_watch *input;             /* stdin, when it can be polled */
    bool input_is_file;          /* a regular file: read it without polling */
    bool input_done;
    nc_timer *reply_timer;
    /* load mode */
    uint64_t rounds;             /* round trips completed */
    uint64_t *latency_ns;        /* this connection's slice */
    uint64_t sent_ns;
    size_t got;                  /* bytes of the current echo received */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(struct session *s, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", PROG, s->cl->target, what);
    s->cl->failed = true;
    if (s->conn != NULL)
        nc_conn_abort(s->conn);
}

/* ---- one connection: send, check, print ------------------------------ */

static int send_checked(struct session *s, const char *data, size_t len)
{
    char *grown = realloc(s->expect, s->expect_len + len);

    if (grown == NULL)
        return -ENOMEM;
    s->expect = grown;
    memcpy(s->expect + s->expect_len, data, len);
    s->expect_len += len;
    if (s->cl->timeout_ms > 0)
        nc_timer_start(s->reply_timer, s->cl->timeout_ms, 0);
    return nc_conn_write(s->conn, data, len);
}

static void finish_if_done(struct session *s)
{
    if (s->input_done && s->matched == s->expect_len) {
        s->finished = true;
        nc_conn_close(s->conn);
    }
}

static void read_input(struct session *s);

static void read_input_deferred(void *arg)
{
    read_input(arg);
}

/* Wait for the next input, now that every echo is back. */
static void want_input(struct session *s)
{
    if (s->input_done)
        return;
    if (s->input != NULL)
        nc_watch_set(s->input, NC_READABLE);
    else if (nc_loop_defer(s->cl->loop, read_input_deferred, s) < 0)
        fail(s, "out of memory");
}

/* One chunk of stdin (a line, on a terminal), sent as it was read. */
static void read_input(struct session *s)
{
    char buf[65536];
    ssize_t n;

    if (s->finished || s->conn == NULL)
        return;     /* a deferred read after the connection ended */
    n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (n < 0)
            fprintf(stderr, "%s: reading stdin: %s\n", PROG, strerror(errno));
        s->input_done = true;
        nc_watch_close(s->input);
        s->input = NULL;
        finish_if_done(s);
        return;
    }
    if (s->input != NULL)
        nc_watch_set(s->input, 0);   /* one chunk in flight at a time */
    if (send_checked(s, buf, (size_t)n) < 0)
        fail(s, "cannot send");
}

static void on_input(nc_watch *w, int fd, unsigned events, void *ud)
{
    (void)w;
    (void)fd;
    (void)events;
    read_input(ud);
}

static void on_reply_timeout(nc_timer *t, void *ud)
{
    struct session *s = ud;
    char what[128];

    (void)t;
    snprintf(what, sizeof what, "no echo within %.3g s",
             s->cl->timeout_ms / 1000.0);
    fail(s, what);
}

static void start_single(struct session *s)
{
    struct client *cl = s->cl;
    int err;

    if (cl->message != NULL) {
        size_t len = strlen(cl->message);
        char *line = malloc(len + 1);
        if (line == NULL) {
            fail(s, "out of memory");
            return;
        }
        memcpy(line, cl->message, len);
        line[len] = '\n';
        s->input_done = true;
        err = send_checked(s, line, len + 1);
        free(line);
        if (err < 0)
            fail(s, "cannot send");
        return;
    }
    err = nc_watch_start(cl->loop, STDIN_FILENO, NC_READABLE, on_input, s,
                         &s->input);
    if (err == -EPERM) {
        s->input_is_file = true;   /* epoll refuses regular files */
        want_input(s);
    } else if (err < 0) {
        s->input_done = true;      /* no usable stdin: nothing to send */
        finish_if_done(s);
    }
}

static void single_data(struct session *s, const char *data, size_t len)
{
    size_t pending = s->expect_len - s->matched;

    if (len > pending || memcmp(data, s->expect + s->matched, len) != 0) {
        fail(s, len > pending ? "the server sent bytes we did not send"
                              : "the echo differs from what we sent");
        return;
    }
    fwrite(data, 1, len, stdout);
    fflush(stdout);
    s->matched += len;
    if (s->matched < s->expect_len)
        return;
    nc_timer_stop(s->reply_timer);
    s->matched = s->expect_len = 0;
    if (s->input_done)
        finish_if_done(s);
    else
        want_input(s);
}

/* ---- load mode: COUNT round trips per connection ----------------------- */

static void send_round(struct session *s)
{
    s->sent_ns = now_ns();
    s->got = 0;
    if (nc_conn_write(s->conn, s->cl->payload, s->cl->size) < 0)
        fail(s, "cannot send");
}

static void load_data(struct session *s, const char *data, size_t len)
{
    struct client *cl = s->cl;

    while (len > 0) {
        size_t n = cl->size - s->got < len ? cl->size - s->got : len;
        if (s->rounds == cl->count) {
            fail(s, "the server sent bytes we did not send");
            return;
        }
        if (memcmp(data, cl->payload + s->got, n) != 0) {
            fail(s, "the echo differs from what we sent");
            return;
        }
        s->got += n;
        data += n;
        len -= n;
        if (s->got < cl->size)
            continue;
        s->latency_ns[s->rounds++] = now_ns() - s->sent_ns;
        s->sent_ns = 0;
        s->got = 0;
        if (s->rounds < cl->count) {
            send_round(s);
        } else {
            s->finished = true;
            nc_conn_close(s->conn);
        }
    }
}

/* ---- connection callbacks --------------------------------------------- */

static void on_open(nc_conn *c, void *ud)
{
    struct session *s = ud;

    s->conn = c;
    if (s->cl->load)
        send_round(s);
    else
        start_single(s);
}

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct session *s = ud;

    (void)c;
    if (s->finished)
        return len;
    if (s->cl->load)
        load_data(s, data, len);
    else
        single_data(s, data, len);
    return len;
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct session *s = ud;
    struct client *cl = s->cl;

    if (reason == NC_CLOSE_CONNECT_FAILED ||
        (reason == NC_CLOSE_TLS && s->conn == NULL)) {
        /* Never opened: the connect or the TLS handshake failed. */
        if (!cl->failed) {
            netinfo_print_connect_failure(stderr, PROG, cl->target, err);
            netinfo_print_attempts(stderr, PROG, c, err);
        }
        cl->failed = true;
    } else if (!s->finished && !cl->failed) {
        if (reason == NC_CLOSE_IDLE)
            fprintf(stderr, "%s: %s: no echo within %.3g s\n", PROG,
                    cl->target, cl->timeout_ms / 1000.0);
        else
            fprintf(stderr, "%s: %s: connection ended early: %s%s%s\n", PROG,
                    cl->target, nc_close_reason_name(reason),
                    err ? ": " : "", err ? nc_strerror(err) : "");
        cl->failed = true;
    }
    nc_watch_close(s->input);
    s->input = NULL;
    if (s->reply_timer != NULL)
        nc_timer_stop(s->reply_timer);
    s->conn = NULL;
    if (--cl->open == 0) {
        cl->end_ns = now_ns();
        nc_loop_stop(cl->loop);
    }
}

/* ---- main ---------------------------------------------------------------- */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void report_load(struct client *cl)
{
    size_t connections = (size_t)cl->connections;
    size_t total = (size_t)cl->count * connections;
    double seconds = (double)(cl->end_ns - cl->start_ns) / 1e9;

    qsort(cl->latency_ns, total, sizeof *cl->latency_ns, compare_u64);
    printf("%s: %zu round trips of %zu bytes over %zu connection%s in %.3f s:"
           " %.0f round trips/s, latency p50 %.1f us, p99 %.1f us\n", PROG,
           total, cl->size, connections, connections == 1 ? "" : "s",
           seconds, seconds > 0 ? (double)total / seconds : 0.0,
           (double)cl->latency_ns[(total - 1) / 2] / 1000.0,
           (double)cl->latency_ns[(total - 1) * 99 / 100] / 1000.0);
}

static void usage(void)
{
    printf("usage: %s SPEC [--message TEXT] [--count N] [--size BYTES]\n"
           "       [--connections N] [--timeout SECONDS] [--bind SPEC]\n"
           "Send to the echo server at SPEC (192.0.2.1:7000, [::1]:7000, "
           "localhost:7000,\n"
           "unix:/tmp/echo.sock) and check every echo.\n"
           "  --message TEXT     send TEXT and a newline (default: stdin)\n"
           "  --count N          load: round trips per connection "
           "(default 1000)\n"
           "  --size BYTES       load: bytes per message (default 64)\n"
           "  --connections N    load: connections at once (default 1)\n"
           "  --timeout SECONDS  for connecting and for each echo "
           "(default 5, 0 = none)\n"
           "  --bind SPEC        local address to connect from "
           "(192.0.2.2:0, eth0:0)\n"
           "  --tls              speak TLS, verifying the server's "
           "certificate and name\n"
           "  --tls-ca FILE      trust the CAs in FILE (PEM) instead of "
           "the system's\n"
           "  --tls-name NAME    the name to check (and send as SNI) "
           "instead of SPEC's host\n"
           "  --tls-no-verify    do not check the certificate (testing "
           "only)\n"
           "  --version          print the version and exit\n", PROG);
}

static void parse_args(int argc, char **argv, struct client *cl,
                       nc_connect_options *opts)
{
    static const struct option longopts[] = {
        {"message", required_argument, NULL, 'm'},
        {"count", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"connections", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"bind", required_argument, NULL, 'b'},
        {"tls", no_argument, NULL, 'T'},
        {"tls-ca", required_argument, NULL, 'A'},
        {"tls-name", required_argument, NULL, 'N'},
        {"tls-no-verify", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    uint64_t size = 64;
    bool size_given = false;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            cl->message = optarg;
            break;
        case 'c':
            if (args_uint(optarg, 1, MAX_ROUND_TRIPS, &cl->count) < 0)
                args_usage_error(PROG, "--count '%s' is not a number from 1 "
                                 "to %u", optarg, MAX_ROUND_TRIPS);
            cl->load = true;
            break;
        case 's':
            if (args_uint(optarg, 1, MAX_SIZE, &size) < 0)
                args_usage_error(PROG, "--size '%s' is not a number from 1 "
                                 "to %u", optarg, MAX_SIZE);
            cl->load = size_given = true;
            break;
        case 'n':
            if (args_uint(optarg, 1, MAX_CONNECTIONS, &cl->connections) < 0)
                args_usage_error(PROG, "--connections '%s' is not a number "
                                 "from 1 to %u", optarg, MAX_CONNECTIONS);
            cl->load = true;
            break;
        case 't':
            if (args_seconds_ms(optarg, &cl->timeout_ms) < 0)
                args_usage_error(PROG, "--timeout '%s' is not a number of "
                                 "seconds", optarg);
            break;
        case 'b':
            args_endpoint(PROG, "--bind", optarg, false, NULL);
            opts->bind = optarg;
            break;
        case 'T':
            cl->tls = true;
            break;
        case 'A':
            cl->tls_ca = optarg;
            break;
        case 'N':
            cl->tls_name = optarg;
            break;
        case 'I':
            cl->tls_no_verify = true;
            break;
        case 'h':
            usage();
            exit(0);
        case 'V':
            args_version(PROG);
        default:
            args_bad_option(PROG, c, optopt, argv, optind);
        }
    }
    if (optind >= argc)
        args_usage_error(PROG, "no server address given");
    if (optind + 1 < argc)
        args_usage_error(PROG, "unexpected argument '%s'", argv[optind + 1]);
    cl->target = argv[optind];
    args_endpoint(PROG, "server address", cl->target, true, NULL);
    if (!cl->tls && (cl->tls_ca || cl->tls_name || cl->tls_no_verify))
        args_usage_error(PROG, "--tls-ca, --tls-name and --tls-no-verify "
                         "need --tls");
    if (!cl->load) {
        cl->connections = 1;
        return;
    }
    if (cl->message != NULL && size_given)
        args_usage_error(PROG, "give --message or --size, not both");
    if (cl->message != NULL && cl->message[0] == '\0')
        args_usage_error(PROG, "--message is empty");
    if (cl->count * cl->connections > MAX_ROUND_TRIPS)
        args_usage_error(PROG, "--count times --connections is over %u",
                         MAX_ROUND_TRIPS);
    cl->size = cl->message != NULL ? strlen(cl->message) : (size_t)size;
}

/* Start every connection; on_open and on_close follow from the loop. */
static void connect_all(struct client *cl, struct session *sessions,
                        const nc_connect_options *opts)
{
    static const nc_conn_callbacks cbs = {on_open, on_data, NULL, on_close};
    uint64_t i;
    int err;

    cl->start_ns = now_ns();
    for (i = 0; i < cl->connections; i++) {
        struct session *s = &sessions[i];
        s->cl = cl;
        s->latency_ns = cl->latency_ns + (cl->load ? i * cl->count : 0);
        if (!cl->load &&
            nc_timer_new(cl->loop, on_reply_timeout, s, &s->reply_timer) < 0) {
            fprintf(stderr, "%s: out of memory\n", PROG);
            cl->failed = true;
            return;
        }
        err = nc_connect(cl->loop, cl->target, opts, &cbs, s, NULL);
        if (err < 0) {
            netinfo_print_connect_failure(stderr, PROG, cl->target, err);
            cl->failed = true;
            return;
        }
        cl->open++;
    }
}

/* The TLS context --tls asks for (NULL without it); exits on failure. */
static nc_tls_ctx *tls_context(const struct client *cl)
{
    nc_tls_options o;
    nc_tls_ctx *ctx = NULL;
    char why[512] = "";
    int err;

    if (!cl->tls)
        return NULL;
    memset(&o, 0, sizeof o);
    o.ca_file = cl->tls_ca;
    o.verify_peer_off = cl->tls_no_verify;
    err = nc_tls_client_new(&o, &ctx, why, sizeof why);
    if (err < 0) {
        fprintf(stderr, "%s: cannot speak TLS: %s\n", PROG,
                why[0] ? why : nc_strerror(err));
        exit(1);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    struct client cl;
    struct session *sessions;
    nc_connect_options opts;
    char *pattern = NULL;
    uint64_t i;
    int err;

    /* Its output may go to a pipe whose reader leaves early ("| head"):
     * that must end the program with an error, not kill it. */
    signal(SIGPIPE, SIG_IGN);
    memset(&cl, 0, sizeof cl);
    memset(&opts, 0, sizeof opts);
    cl.count = 1000;
    cl.connections = 1;
    cl.timeout_ms = 5000;
    parse_args(argc, argv, &cl, &opts);
    opts.tls = tls_context(&cl);
    opts.server_name = cl.tls_name;

    opts.conn.connect_timeout_ms = cl.timeout_ms;
    if (cl.load) {
        pattern = malloc(cl.size);
        for (i = 0; pattern != NULL && i < cl.size; i++)
            pattern[i] = (char)('a' + i % 26);
        cl.payload = cl.message != NULL ? cl.message : pattern;
        /* Nothing came back for this long: the server is stuck. */
        opts.conn.idle_timeout_ms = cl.timeout_ms;
        /* Our own message must not pause our reading: the server only
         * takes more of it while we read its echo. */
        if (cl.size * 2 > (1u << 20))
            opts.conn.high_water = cl.size * 2;
    }
    sessions = calloc(cl.connections, sizeof *sessions);
    cl.latency_ns = calloc(cl.load ? cl.count * cl.connections : 1,
                           sizeof *cl.latency_ns);
    err = nc_loop_new(&cl.loop);
    if (sessions == NULL || cl.latency_ns == NULL ||
        (cl.load && pattern == NULL) || err < 0) {
        char why[512];
        fprintf(stderr, "%s: cannot start: %s\n", PROG,
                netinfo_loop_trouble(err < 0 ? err : -ENOMEM, why,
                                     sizeof why));
        return 1;
    }

    connect_all(&cl, sessions, &opts);
    if (cl.open > 0) {
        err = nc_loop_run(cl.loop, NC_RUN_FOREVER);
        if (err < 0) {
            fprintf(stderr, "%s: event loop failed: %s\n", PROG,
                    nc_strerror(err));
            cl.failed = true;
        }
    }
    nc_loop_free(cl.loop);   /* also frees the timers */
    if (cl.load && !cl.failed)
        report_load(&cl);
    for (i = 0; i < cl.connections; i++)
        free(sessions[i].expect);
    free(sessions);
    free(cl.latency_ns);
    free(pattern);
    nc_tls_ctx_free(opts.tls);
    return cl.failed ? 1 : 0;
}
