/*
 * http-hello - an HTTP/1.1 keep-alive server answering every GET with
 * "Hello, World!". The program wrk benchmarks load.
 *
 *   http-hello [--listen SPEC ...] [--threads N] [--idle-timeout SECONDS]
 *
 * on_data hands us everything received and not yet consumed; we frame as
 * many whole requests as it holds (pipelining), answer them in order with
 * one write, and return how many bytes we used: the library keeps the rest
 * and calls again when more arrives.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netcore.h"
#include "common/http.h"
#include "common/serve.h"

#define PROG "http-hello"
/* After the last answer on a connection, how long to wait for the client
 * to close before closing anyway. */
#define LINGER_MS 2000

static const char hello[] = "Hello, World!";

/* One per thread. */
struct http_stats {
    uint64_t connections;
    uint64_t requests;
    uint64_t status[6];     /* 200, 400, 405, 431, 501, other */
};

/* One per connection. */
struct http_conn {
    struct http_stats *stats;
    uint64_t skip;          /* request body bytes still to discard */
    bool done;              /* last answer sent: discard input until close */
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

static void on_open(nc_conn *c, void *ud)
{
    struct http_conn *hc = calloc(1, sizeof *hc);

    if (hc == NULL) {
        nc_conn_set_data(c, NULL);   /* on_close must not free ud */
        nc_conn_abort(c);
        return;
    }
    hc->stats = ud;
    hc->stats->connections++;
    nc_conn_set_data(c, hc);
}

/* The last answer is queued: send it, then half-close. Closing at once
 * could make the kernel answer the client's unread bytes with a reset
 * that destroys our answer before the client reads it; so we keep reading
 * (and discarding) until the client closes, for at most LINGER_MS. */
static void finish(nc_conn *c, struct http_conn *hc)
{
    hc->done = true;
    if (nc_conn_shutdown(c) < 0 || nc_conn_set_idle_timeout(c, LINGER_MS) < 0)
        nc_conn_close(c);
}

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct http_conn *hc = ud;
    const char *in = data;
    char out[16384];
    size_t used = 0, outlen = 0;
    bool last = false;

    if (hc == NULL || hc->done)
        return len;
    while (used < len && !last) {
        http_request req;
        http_frame_result r;
        int status;

        if (hc->skip > 0) {
            size_t n = len - used < hc->skip ? len - used : (size_t)hc->skip;
            hc->skip -= n;
            used += n;
            continue;
        }
        if (sizeof out - outlen < 512) {
            if (nc_conn_write(c, out, outlen) < 0) {
                nc_conn_close(c);
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
            hc->stats->status[status_slot(status)]++;
            used = len;
            last = true;
            break;
        }
        hc->stats->requests++;
        status = req.method == HTTP_OTHER ? 405 : 200;
        last = !req.keep_alive;
        outlen += put_response(out + outlen, sizeof out - outlen, status,
                               req.method == HTTP_HEAD,
                               last ? CONN_CLOSE
                               : req.minor_version == 0 ? CONN_KEEP_ALIVE
                               : CONN_NONE);
        hc->stats->status[status_slot(status)]++;
        used += req.head_len;
        hc->skip = req.body_len;
    }
    if (outlen > 0 && nc_conn_write(c, out, outlen) < 0) {
        nc_conn_close(c);
        return len;
    }
    if (last) {
        finish(c, hc);
        return len;
    }
    return used;
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    (void)reason;
    (void)err;
    free(ud);
}

static void print_summary(const struct http_stats *per_thread, size_t n)
{
    static const char *const names[] = {"200", "400", "405", "431", "501",
                                        "other"};
    struct http_stats sum;
    const char *sep = "";
    size_t i, s;

    memset(&sum, 0, sizeof sum);
    for (i = 0; i < n; i++) {
        sum.connections += per_thread[i].connections;
        sum.requests += per_thread[i].requests;
        for (s = 0; s < 6; s++)
            sum.status[s] += per_thread[i].status[s];
    }
    printf("%s: served %" PRIu64 " connections, %" PRIu64 " requests;"
           " answers:", PROG, sum.connections, sum.requests);
    for (s = 0; s < 6; s++) {
        if (sum.status[s] == 0)
            continue;
        printf("%s %s %" PRIu64, sep, names[s], sum.status[s]);
        sep = ",";
    }
    printf("%s\n", *sep ? "" : " none");
    fflush(stdout);
}

static void usage(void)
{
    printf("usage: %s [--listen SPEC ...] [--threads N] "
           "[--idle-timeout SECONDS]\n"
           "HTTP/1.1 keep-alive server: every GET gets 200 and "
           "\"Hello, World!\".\n"
           "  --listen SPEC          endpoint to listen on, repeatable "
           "(default *:8080)\n"
           "  --threads N            N threads, each with its own loop "
           "(default 1)\n"
           "  --idle-timeout SECONDS close connections idle this long "
           "(default 60, 0 = never)\n", PROG);
}

int main(int argc, char **argv)
{
    static const nc_conn_callbacks cbs = {on_open, on_data, NULL, on_close};
    struct http_stats *stats;
    serve_config cfg;
    int err;

    serve_parse_args(&cfg, argc, argv, PROG, "*:8080", false, usage);
    /* One block of counters per thread, summed up at the end. */
    stats = calloc(cfg.threads, sizeof *stats);
    if (stats == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return 1;
    }
    cfg.callbacks = &cbs;
    cfg.worker_data = stats;
    cfg.worker_data_size = sizeof *stats;

    err = serve_run(&cfg);   /* until SIGINT or SIGTERM */
    if (err == 0)
        print_summary(stats, cfg.threads);
    free(stats);
    return err == 0 ? 0 : 1;
}
