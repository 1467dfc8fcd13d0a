/*
 * echo-server - send every byte back to whoever sent it.
 *
 *   echo-server --listen SPEC [--listen SPEC ...] [--idle-timeout SECONDS]
 *               [--max-conns N] [--max-per-addr N] [--threads N] [--pin]
 *               [--grace SECONDS] [--tls-cert FILE --tls-key FILE]
 *
 * The library does the hard parts: it accepts without blocking, closes a
 * connection as soon as the peer closes (no CLOSE_WAIT pile-up), closes
 * idle ones, and pauses reading while a slow peer's output queue is full.
 * Out of descriptors it closes the longest-idle connection to admit a new
 * one, and it caps the connections one client address may hold, so that
 * a flood of idle connections cannot lock other clients out.
 * This file only echoes and prints a summary from the library's counters
 * when stopped; the worker threads (nc_workers), listeners, the graceful
 * stop on SIGTERM and SIGHUP (the TLS certificate read again) are in
 * common/serve.c, shared with http-hello.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netcore.h"
#include "common/serve.h"

#define PROG "echo-server"

static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    /* Queued if the peer is slow to read; past the high-water mark the
     * library stops reading from this peer until it catches up. */
    if (nc_conn_write(c, data, len) < 0)
        nc_conn_close(c);
    return len;
}

/* The library counts everything this program reports, per worker. */
static void summary(void *const *blocks, unsigned n,
                    const nc_loop_stats *total)
{
    char closed[512];

    (void)blocks;
    (void)n;
    serve_format_closed(total, closed, sizeof closed);
    serve_print_summary("%s: served %" PRIu64 " connections, %" PRIu64
                        " bytes in, %" PRIu64 " bytes out; closed: %s\n",
                        PROG, total->accepted, total->bytes_in,
                        total->bytes_out, closed);
}

static void usage(void)
{
    printf("usage: %s [--listen SPEC ...] [--idle-timeout SECONDS]\n"
           "       [--max-conns N] [--max-per-addr N] [--threads N] [--pin]\n"
           "       [--grace SECONDS] [--tls-cert FILE --tls-key FILE] "
           "[--version]\n"
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
           "  --max-per-addr N       reset a client address's connections "
           "past N open per\n"
           "                         thread (default 128, 0 = no cap)\n"
           "  --threads N            N worker threads, each with its own "
           "loop (default 1,\n"
           "                         0 = one per CPU)\n"
           "  --pin                  run worker i on CPU i\n"
           "  --grace SECONDS        on SIGINT/SIGTERM, let replies flush "
           "this long (default 5)\n"
           "  --tls-cert FILE        serve TLS only, with this certificate "
           "chain (PEM)\n"
           "  --tls-key FILE         and this private key (PEM)\n"
           "  --version              print the version and exit\n"
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
    static const nc_conn_callbacks cbs = {NULL, on_data, NULL, NULL};
    serve_config cfg;

    serve_parse_args(&cfg, argc, argv, PROG, "*:7000", true, NULL, usage);
    cfg.callbacks = &cbs;
    cfg.summary = summary;
    /* Until SIGINT or SIGTERM; then a line per worker and the summary. */
    return serve_run(&cfg) == 0 ? 0 : 1;
}
