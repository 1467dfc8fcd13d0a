/*
 * serve.h - the part every example server shares: listen on some
 * endpoints with one loop per thread, say where it listens, run until
 * SIGINT or SIGTERM, then close every connection.
 */
#ifndef EXAMPLES_SERVE_H
#define EXAMPLES_SERVE_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "netcore.h"

#define SERVE_MAX_SPECS 64
#define SERVE_MAX_THREADS 256

typedef struct serve_config {
    const char *prog;               /* for messages: "echo-server" */
    const char *specs[SERVE_MAX_SPECS];  /* endpoint strings to listen on */
    size_t nspecs;
    unsigned threads;               /* 1: everything in the main thread */
    nc_listener_options options;    /* reuseport is set for threads > 1 */
    const nc_conn_callbacks *callbacks;
    /* threads blocks of worker_data_size bytes: every connection accepted
     * by thread i starts with user pointer worker_data + i * size, so each
     * thread counts into its own block without locks. */
    void *worker_data;
    size_t worker_data_size;
} serve_config;

/* Options of one program's own, besides the shared ones. */
typedef struct serve_extra {
    const struct option *options;   /* val >= 256; ends with a zero entry */
    /* Take option val with its argument (NULL for no_argument): NULL, or
     * the text of a usage error. */
    const char *(*parse)(int val, const char *arg);
} serve_extra;

/* Fill cfg (zeroing it first) from the options every example server
 * takes: --listen SPEC (repeatable; default_spec when none), --threads N,
 * --idle-timeout SECONDS (default 60, 0 = never) and, when max_conns_ok,
 * --max-conns N. --help calls usage() and exits 0, --version prints the
 * program's and the library's version and exits 0; extra (may be NULL)
 * adds the program's own. A bad argument exits with status 2 after one
 * line on stderr. */
void serve_parse_args(serve_config *cfg, int argc, char **argv,
                      const char *prog, const char *default_spec,
                      bool max_conns_ok, const serve_extra *extra,
                      void (*usage)(void));

/* Listen on every spec (in every thread: a TCP endpoint with port 0 gets
 * the port the first thread was given; a Unix socket is served by the
 * first thread only), print "listening on ADDRESS (WHERE)" per bound
 * address to stdout and, when other hosts cannot connect, the library's
 * warning to stderr. Then serve until SIGINT or SIGTERM: stop accepting,
 * close every connection (NC_CLOSE_SHUTDOWN) and free everything.
 * Returns 0 after such a shutdown (every on_close has run), or a negative
 * errno after printing to stderr why it could not start or run. */
int serve_run(const serve_config *cfg);

/* Print a line made from fmt to stdout; if stdout is gone (its reader
 * closed it), to stderr instead, so that the summary is not lost. */
void serve_print_summary(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif /* EXAMPLES_SERVE_H */
