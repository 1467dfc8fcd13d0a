/*
 * echo-server - send every byte back to whoever sent it.
 *
 *   echo-server --listen SPEC [--listen SPEC ...] [--idle-timeout SECONDS]
 *               [--max-conns N] [--threads N]
 *
 * The library does the hard parts: it accepts without blocking, closes a
 * connection as soon as the peer closes (no CLOSE_WAIT pile-up), closes
 * idle ones, and pauses reading while a slow peer's output queue is full.
 * This file only echoes, counts, and prints a summary when stopped; the
 * loop, listeners, threads and the SIGTERM shutdown are in common/serve.c,
 * shared with http-hello.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netcore.h"
#include "common/serve.h"

#define PROG "echo-server"

/* One per thread: only that thread's connections touch it. */
struct echo_stats {
    uint64_t connections;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t closed[NC_CLOSE_REASON_LAST + 1];  /* by nc_close_reason */
};

static void on_open(nc_conn *c, void *ud)
{
    struct echo_stats *st = ud;

    (void)c;
    st->connections++;
}

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct echo_stats *st = ud;

    st->bytes_in += len;
    /* Queued if the peer is slow to read; past the high-water mark the
     * library stops reading from this peer until it catches up. */
    if (nc_conn_write(c, data, len) == 0)
        st->bytes_out += len;
    else
        nc_conn_close(c);
    return len;
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct echo_stats *st = ud;

    (void)c;
    (void)err;
    if (reason >= NC_CLOSE_PEER && reason <= NC_CLOSE_REASON_LAST)
        st->closed[reason]++;
}

static void print_summary(const struct echo_stats *per_thread, size_t n)
{
    struct echo_stats sum;
    char closed[512];
    size_t i, used = 0;
    int r;

    memset(&sum, 0, sizeof sum);
    for (i = 0; i < n; i++) {
        sum.connections += per_thread[i].connections;
        sum.bytes_in += per_thread[i].bytes_in;
        sum.bytes_out += per_thread[i].bytes_out;
        for (r = NC_CLOSE_PEER; r <= NC_CLOSE_REASON_LAST; r++)
            sum.closed[r] += per_thread[i].closed[r];
    }
    closed[0] = '\0';
    for (r = NC_CLOSE_PEER; r <= NC_CLOSE_REASON_LAST; r++) {
        if (sum.closed[r] == 0)
            continue;
        used += (size_t)snprintf(closed + used, sizeof closed - used,
                                 "%s %s %" PRIu64, used ? "," : "",
                                 nc_close_reason_name(r), sum.closed[r]);
    }
    serve_print_summary("%s: served %" PRIu64 " connections, %" PRIu64
                        " bytes in, %" PRIu64 " bytes out; closed:%s\n",
                        PROG, sum.connections, sum.bytes_in, sum.bytes_out,
                        used ? closed : " none");
}

static void usage(void)
{
    printf("usage: %s [--listen SPEC ...] [--idle-timeout SECONDS]\n"
           "       [--max-conns N] [--threads N] [--version]\n"
           "Echo every byte back. Stop with SIGINT or SIGTERM.\n"
           "  --listen SPEC          endpoint to listen on, repeatable "
           "(default *:7000):\n"
           "                         192.0.2.1:7000, [::1]:7000, eth0:7000, "
           "*:7000,\n"
           "                         localhost:7000, unix:/tmp/echo.sock; "
           "port 0 = any\n"
           "  --idle-timeout SECONDS close connections idle this long "
           "(default 60, 0 = never)\n"
           "  --max-conns N          pause accepting at N open connections "
           "per listener and thread\n"
           "  --threads N            N threads, each with its own loop "
           "(default 1)\n"
           "  --version              print the version and exit\n", PROG);
}

int main(int argc, char **argv)
{
    static const nc_conn_callbacks cbs = {on_open, on_data, NULL, on_close};
    struct echo_stats *stats;
    serve_config cfg;
    int err;

    serve_parse_args(&cfg, argc, argv, PROG, "*:7000", true, NULL, usage);
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
