/*
 * http-hello - an HTTP/1.1 keep-alive server answering every GET with
 * "Hello, World!". The program wrk benchmarks load.
 *
 *   http-hello [--listen SPEC ...] [--threads N] [--pin] [--grace SECONDS]
 *              [--idle-timeout SECONDS] [--header-timeout SECONDS]
 *              [--max-per-addr N] [--body-timeout SECONDS]
 *              [--body-min-rate RATE] [--defer-accept]
 *              [--tls-cert FILE --tls-key FILE]
 *
 * on_data hands us everything received and not yet consumed; we frame as
 * many whole requests as it holds (pipelining), answer them in order with
 * one write, and return how many bytes we used: the library keeps the rest
 * and calls again when more arrives.
 *
 * Each request head must be complete within --header-timeout of its
 * first byte (a deadline the library enforces, which bytes trickling in
 * do not extend: the defence against "slowloris" clients holding
 * connections). A body must keep arriving at --body-min-rate: RATE x
 * SECONDS bytes within --body-timeout of the head, and again within it
 * of each time they did, so a slow but honest upload goes on and a body
 * trickled a byte at a time is cut off. An idle keep-alive connection
 * costs this program nothing: it keeps state only while a request is
 * incomplete. Out of descriptors, the longest-idle one is closed to
 * admit a new client, and one client address may hold at most
 * --max-per-addr connections (common/serve.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netcore.h"
#include "common/args.h"
#include "common/http.h"
#include "common/serve.h"

#define PROG "http-hello"

static const char hello[] = "Hello, World!";

/* How long a request head may take to arrive (--header-timeout). */
static uint32_t header_timeout_ms = 10000;

/* A request body must bring body_quota bytes (--body-min-rate times
 * --body-timeout) within body_timeout_ms of its head, and again within
 * body_timeout_ms of each time it did: a body arriving at the minimum
 * rate or faster is never cut off, one trickling in is. 0: no limit. */
static uint32_t body_timeout_ms = 20000;
static uint64_t body_min_rate = 500;
static uint64_t body_quota;

/* One per worker thread, found through the loop (nc_loop_data); the
 * library counts connections and bytes itself. */
struct http_stats {
    uint64_t answers;       /* every response sent, whatever its status */
    uint64_t status[6];     /* 200, 400, 405, 431, 501, other */
};

/* What part of a request is incomplete, and so what the connection's
 * deadline (nc_conn_set_deadline) bounds. */
enum { PENDING_NONE, PENDING_HEAD, PENDING_BODY };

/* Per connection, only while a request is incomplete (else NULL). */
struct http_partial {
    uint64_t skip;          /* request body bytes still to discard */
    uint64_t due;           /* body bytes due before the deadline moves */
    int pending;            /* PENDING_HEAD or PENDING_BODY */
};

enum { CONN_NONE, CONN_KEEP_ALIVE, CONN_CLOSE };

static int status_slot(int status)
{
    switch (status) {
    case 200: return 0;
    case 400: return 1;
    case 405: return 2;
    case 431: return 3;
    case 501: return 4;
    default: return 5;
    }
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    default: return "Error";
    }
}

/* Append one response to out (room bytes free). Returns its length. */
static size_t put_response(char *out, size_t room, int status, bool head,
                           int connection)
{
    /* The answer wrk sees a million times: no formatting. */
    static const char ok_keep_alive[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        "Content-Length: 13\r\n\r\nHello, World!";
    char body[64];
    int n;

    if (status == 200 && !head && connection == CONN_NONE &&
        room >= sizeof ok_keep_alive - 1) {
        memcpy(out, ok_keep_alive, sizeof ok_keep_alive - 1);
        return sizeof ok_keep_alive - 1;
    }
    if (status == 200)
        snprintf(body, sizeof body, "%s", hello);
    else
        snprintf(body, sizeof body, "%s\n", status_text(status));
    n = snprintf(out, room,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                 "Content-Length: %zu\r\n%s%s\r\n%s",
                 status, status_text(status), strlen(body),
                 status == 405 ? "Allow: GET, HEAD\r\n" : "",
                 connection == CONN_CLOSE ? "Connection: close\r\n"
                 : connection == CONN_KEEP_ALIVE ? "Connection: keep-alive\r\n"
                 : "", head ? "" : body);
    return n > 0 && (size_t)n < room ? (size_t)n : 0;
}

static struct http_stats *stats_of(nc_conn *c)
{
    return nc_loop_data(nc_conn_loop(c));
}

static void on_open(nc_conn *c, void *ud)
{
    (void)ud;
    nc_conn_set_data(c, NULL);   /* no state until a request is partial */
}

/* Keep, or drop, the state of an incomplete request, and bound it in
 * time. want is what is incomplete once the bytes just received are used
 * (PENDING_*), fresh says that it began in them (the request before it
 * was completed there), skip how much of a pending body is still to come
 * and body_n how many of its bytes these were. A head gets
 * --header-timeout from its first byte; a body --body-timeout from the
 * end of its head, restarted each time body_quota more bytes came. */
static void track_partial(nc_conn *c, struct http_partial *p, int want,
                          bool fresh, uint64_t skip, uint64_t body_n)
{
    bool restart = fresh || p == NULL || p->pending != want;

    if (want == PENDING_NONE) {
        if (p != NULL) {
            nc_conn_set_deadline(c, 0);
            free(p);
            nc_conn_set_data(c, NULL);
        }
        return;
    }
    if (p == NULL) {
        if ((p = calloc(1, sizeof *p)) == NULL) {
            nc_conn_abort(c);
            return;
        }
        nc_conn_set_data(c, p);
    }
    p->skip = skip;
    if (want == PENDING_BODY && !restart && body_quota > 0) {
        if (body_n >= p->due)
            restart = true;     /* the quota came in time: a new window */
        else
            p->due -= body_n;
    }
    if (!restart)
        return;
    p->pending = want;
    p->due = body_quota;
    if (nc_conn_set_deadline(c, want == PENDING_HEAD ? header_timeout_ms
                                                     : body_timeout_ms) < 0)
        nc_conn_abort(c);
}

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct http_partial *p = ud;
    struct http_stats *stats = stats_of(c);
    const char *in = data;
    char out[16384];
    size_t used = 0, outlen = 0;
    uint64_t skip = p != NULL ? p->skip : 0, body_n = 0;
    bool last = false, framed = false;

    while (used < len && !last) {
        http_request req;
        http_frame_result r;
        int status;

        if (skip > 0) {
            size_t n = len - used < skip ? len - used : (size_t)skip;
            skip -= n;
            used += n;
            body_n += n;
            continue;
        }
        if (sizeof out - outlen < 512) {
            if (nc_conn_write(c, out, outlen) < 0) {
                nc_conn_abort(c);
                return len;
            }
            outlen = 0;
        }
        r = http_frame(in + used, len - used, &req);
        if (r == HTTP_FRAME_NEED_MORE)
            break;
        if (r != HTTP_FRAME_REQUEST) {
            status = http_frame_status(r);
            outlen += put_response(out + outlen, sizeof out - outlen, status,
                                   false, CONN_CLOSE);
            last = true;
        } else {
            status = req.method == HTTP_OTHER ? 405 : 200;
            last = !req.keep_alive;
            outlen += put_response(out + outlen, sizeof out - outlen, status,
                                   req.method == HTTP_HEAD,
                                   last ? CONN_CLOSE
                                   : req.minor_version == 0 ? CONN_KEEP_ALIVE
                                   : CONN_NONE);
            used += req.head_len;
            skip = req.body_len;
            body_n = 0;
            framed = true;
        }
        stats->answers++;
        stats->status[status_slot(status)]++;
    }
    if (outlen > 0 && nc_conn_write(c, out, outlen) < 0) {
        nc_conn_abort(c);
        return len;
    }
    if (last) {
        /* The library sends what is queued, then closes; if the client
         * may still be sending, it waits for its FIN first, so that no
         * reset destroys the answers in flight. */
        nc_conn_close(c);
        return len;
    }
    track_partial(c, p, skip > 0 ? PENDING_BODY
                        : used < len ? PENDING_HEAD : PENDING_NONE,
                  framed, skip, body_n);
    return used;
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    (void)reason;
    (void)err;
    free(ud);
}

static void summary(void *const *blocks, unsigned n,
                    const nc_loop_stats *total)
{
    static const char *const names[] = {"200", "400", "405", "431", "501",
                                        "other"};
    struct http_stats sum;
    char by_status[256];
    size_t s, used = 0;
    unsigned i;

    memset(&sum, 0, sizeof sum);
    for (i = 0; i < n; i++) {
        const struct http_stats *w = blocks[i];
        sum.answers += w->answers;
        for (s = 0; s < 6; s++)
            sum.status[s] += w->status[s];
    }
    by_status[0] = '\0';
    for (s = 0; s < 6; s++) {
        if (sum.status[s] == 0)
            continue;
        used += (size_t)snprintf(by_status + used, sizeof by_status - used,
                                 "%s %s %" PRIu64, used ? "," : "",
                                 names[s], sum.status[s]);
    }
    serve_print_summary("%s: served %" PRIu64 " connections, %" PRIu64
                        " answers by status:%s\n", PROG, total->accepted,
                        sum.answers, used ? by_status : " none");
}

/* --defer-accept: accept a connection only once its request is there. */
static bool defer_accept;

static const char *parse_option(int val, const char *arg)
{
    switch (val) {
    case 256:
        if (args_seconds_ms(arg, &header_timeout_ms) < 0 ||
            header_timeout_ms > 0x7fffffffu)
            return "--header-timeout is not a number of seconds";
        break;
    case 257:
        defer_accept = true;
        break;
    case 258:
        if (args_seconds_ms(arg, &body_timeout_ms) < 0 ||
            body_timeout_ms > 0x7fffffffu)
            return "--body-timeout is not a number of seconds";
        break;
    case 259:
        if (args_uint(arg, 0, UINT32_MAX, &body_min_rate) < 0)
            return "--body-min-rate is not a number of bytes per second";
        break;
    }
    return NULL;
}

static void usage(void)
{
    printf("usage: %s [--listen SPEC ...] [--threads N] [--pin] "
           "[--grace SECONDS]\n"
           "       [--idle-timeout SECONDS] [--header-timeout SECONDS] "
           "[--max-per-addr N]\n"
           "       [--defer-accept] [--body-timeout SECONDS] "
           "[--body-min-rate RATE]\n"
           "       [--tls-cert FILE --tls-key FILE] [--version]\n"
           "HTTP/1.1 keep-alive server: every GET gets 200 and "
           "\"Hello, World!\".\n"
           "  --listen SPEC            endpoint to listen on, repeatable "
           "(default *:8080)\n"
           "  --threads N              N worker threads, each with its own "
           "loop (default 1,\n"
           "                           0 = one per CPU)\n"
           "  --pin                    run worker i on CPU i\n"
           "  --grace SECONDS          on SIGINT/SIGTERM, let replies flush "
           "this long\n"
           "                           (default 5)\n"
           "  --idle-timeout SECONDS   close connections idle this long "
           "(default 60, 0 = never)\n"
           "  --header-timeout SECONDS a request head must arrive within "
           "this long of\n"
           "                           its first byte (default 10, 0 = "
           "no limit)\n"
           "  --max-per-addr N         reset a client address's connections "
           "past N open\n"
           "                           per thread (default 128, 0 = no "
           "cap)\n"
           "  --body-timeout SECONDS   a request body must keep arriving: "
           "RATE x SECONDS\n"
           "                           bytes of it within this long of "
           "the head, and again\n"
           "                           within this long of each time they "
           "did, or the\n"
           "                           connection closes (default 20, 0 = "
           "no limit)\n"
           "  --body-min-rate RATE     that minimum rate, in bytes per "
           "second (default 500;\n"
           "                           0 = the whole body within "
           "--body-timeout)\n"
           "  --defer-accept           accept a connection only once its "
           "request has\n"
           "                           arrived (TCP_DEFER_ACCEPT)\n"
           "  --tls-cert FILE          serve HTTPS only, with this "
           "certificate chain (PEM)\n"
           "  --tls-key FILE           and this private key (PEM)\n"
           "  --version                print the version and exit\n"
           "The \"listening on\" lines name the event backend (io_uring or "
           "epoll; NC_BACKEND\n"
           "chooses) and TLS. Out of descriptors, the longest-idle "
           "connection is closed to\n"
           "admit a new one. SIGHUP reads --tls-cert and --tls-key again "
           "for the\n"
           "connections to come (those open keep theirs); without TLS it "
           "says so. Either\n"
           "way the server goes on serving.\n", PROG);
}

int main(int argc, char **argv)
{
    static const nc_conn_callbacks cbs = {on_open, on_data, NULL, on_close};
    static const struct option own[] = {
        {"header-timeout", required_argument, NULL, 256},
        {"defer-accept", no_argument, NULL, 257},
        {"body-timeout", required_argument, NULL, 258},
        {"body-min-rate", required_argument, NULL, 259},
        {NULL, 0, NULL, 0},
    };
    static const serve_extra extra = {own, parse_option};
    serve_config cfg;

    serve_parse_args(&cfg, argc, argv, PROG, "*:8080", false, &extra,
                     usage);
    body_quota = body_min_rate * body_timeout_ms / 1000;
    /* The client speaks first in HTTP: with --defer-accept the kernel
     * hands over a connection only when its request has arrived, and the
     * library reads it at once (TCP_DEFER_ACCEPT, nginx's "deferred"). A
     * client that connects and says nothing is accepted after 10 s. */
    if (defer_accept)
        cfg.options.defer_accept_s = 10;
    cfg.callbacks = &cbs;
    cfg.worker_data_size = sizeof(struct http_stats);
    cfg.summary = summary;
    /* Until SIGINT or SIGTERM; then a line per worker and the summary. */
    return serve_run(&cfg) == 0 ? 0 : 1;
}
