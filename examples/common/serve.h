/*
 * serve.h - the part every example server shares: worker threads from
 * the library (nc_workers), listening on some endpoints, saying where,
 * running until SIGINT or SIGTERM, then a graceful stop and a summary
 * line per worker; SIGHUP reads the TLS certificate and key again.
 */
#ifndef EXAMPLES_SERVE_H
#define EXAMPLES_SERVE_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "netcore.h"

#define SERVE_MAX_SPECS 64
#define SERVE_MAX_THREADS 1024

typedef struct serve_config {
    const char *prog;               /* for messages: "echo-server" */
    const char *specs[SERVE_MAX_SPECS];  /* endpoint strings to listen on */
    size_t nspecs;
    unsigned threads;               /* workers; 0 = one per CPU */
    bool pin;                       /* worker i on CPU i */
    uint32_t grace_ms;              /* how long a stop lets replies flush */
    nc_listener_options options;
    const char *tls_cert;           /* --tls-cert: serve TLS with this */
    const char *tls_key;            /* --tls-key */
    const nc_conn_callbacks *callbacks;
    /* Each worker gets a zeroed block of this many bytes as its loop's
     * data (nc_loop_data), so that it counts without locks. */
    size_t worker_data_size;
    /* After the workers ended: the program's own summary from the n
     * blocks and the library's counters summed over the workers. */
    void (*summary)(void *const *blocks, unsigned n,
                    const nc_loop_stats *total);
} serve_config;

/* Options of one program's own, besides the shared ones. */
typedef struct serve_extra {
    const struct option *options;   /* val >= 256; ends with a zero entry */
    /* Take option val with its argument (NULL for no_argument): NULL, or
     * the text of a usage error. */
    const char *(*parse)(int val, const char *arg);
} serve_extra;

/* Fill cfg (zeroing it first) from the options every example server
 * takes: --listen SPEC (repeatable; default_spec when none), --threads N
 * (default 1, 0 = one per CPU), --pin, --grace SECONDS (default 5),
 * --idle-timeout SECONDS (default 60, 0 = never), --max-per-addr N
 * (connections one client address may hold per worker: default 128, 0 =
 * no cap), --tls-cert FILE and --tls-key FILE (PEM; both or neither: then
 * every listener speaks TLS only) and, when max_conns_ok, --max-conns N.
 * evict_idle is always on: out of descriptors, the longest-idle
 * connection is closed to admit a new one. --help calls usage() and
 * exits 0, --version prints the program's and the library's version and
 * exits 0; extra (may be NULL) adds the program's own. A bad argument
 * exits with status 2 after one line on stderr. */
void serve_parse_args(serve_config *cfg, int argc, char **argv,
                      const char *prog, const char *default_spec,
                      bool max_conns_ok, const serve_extra *extra,
                      void (*usage)(void));

/* Start the workers, listen on every spec in each of them (SO_REUSEPORT
 * among the workers only: a port another server holds is an error that
 * names the holder; unix: paths through one acceptor), print "listening
 * on ADDRESS (WHERE; BACKEND[, TLS])" per bound address to stdout and,
 * when other hosts cannot connect, the library's warning to stderr. Then
 * serve until SIGINT or SIGTERM (SIGHUP: --tls-cert and --tls-key are
 * read again for new handshakes, nc_tls_set_cert(), and one line says
 * what happened; without TLS the line says there is nothing to read):
 * stop accepting, let replies flush for grace_ms, close everything, print
 * "worker I: ..." per worker and "total: ...", then the program's
 * summary. Returns 0 after such a stop, or a negative
 * errno after printing to stderr why it could not start or run. */
int serve_run(const serve_config *cfg);

/* Print a line made from fmt to stdout; if stdout is gone (its reader
 * closed it), to stderr instead, so that the summary is not lost. */
void serve_print_summary(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* "peer closed 2, shutting down 1" (or "none") from closed counters. */
void serve_format_closed(const nc_loop_stats *s, char *buf, size_t len);

#endif /* EXAMPLES_SERVE_H */
