/*
 * serve.c - the library's worker threads (nc_workers) serving every
 * --listen spec, the "listening on" lines, the graceful stop on
 * SIGINT/SIGTERM with one summary line per worker, and SIGHUP: the TLS
 * certificate and key read again for new connections.
 */
#include "serve.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "netinfo.h"

#define DEFAULT_GRACE_MS 5000
/* Connections one client address may hold per worker: enough for a
 * browser's six, a proxy or a benchmark's hundred; far fewer than the
 * descriptors a process usually has (1024 by default). */
#define DEFAULT_MAX_PER_ADDR 128
#define MAX_ADDRS 256

struct server {
    const serve_config *cfg;
    nc_workers *workers;
    nc_tls_ctx *tls;                    /* NULL without --tls-cert */
    nc_signal *hup;                     /* SIGHUP, in worker 0's loop */
    void *blocks[SERVE_MAX_THREADS];    /* each worker's data block */
};

/* SIGHUP, the conventional "reload": read the certificate and key files
 * again (a renewed certificate) for the handshakes to come. Connections
 * open go on with theirs; nothing stops. Runs in worker 0's loop. */
static void on_hup(nc_signal *sig, int signum, void *ud)
{
    const serve_config *cfg = ((struct server *)ud)->cfg;
    nc_tls_ctx *tls = ((struct server *)ud)->tls;
    char why[512] = "";
    int err;

    (void)sig;
    (void)signum;
    if (tls == NULL) {
        serve_print_summary("%s: SIGHUP: no TLS certificate to read again "
                            "(no --tls-cert); still serving\n", cfg->prog);
        return;
    }
    err = nc_tls_set_cert(tls, cfg->tls_cert, cfg->tls_key, why, sizeof why);
    if (err < 0)
        fprintf(stderr, "%s: SIGHUP: kept the TLS certificate in use: %s\n",
                cfg->prog, why[0] ? why : nc_strerror(err));
    else
        serve_print_summary("%s: SIGHUP: new connections get the TLS "
                            "certificate now in %s\n", cfg->prog,
                            cfg->tls_cert);
}

/* In each worker's thread: its own block of counters; worker 0 also
 * handles SIGHUP (blocked in every thread, it waits for that loop). */
static int worker_start(nc_loop *loop, unsigned index, void *ud)
{
    struct server *s = ud;
    size_t size = s->cfg->worker_data_size;

    if (size > 0) {
        s->blocks[index] = calloc(1, size);
        if (s->blocks[index] == NULL)
            return -ENOMEM;
        nc_loop_set_data(loop, s->blocks[index]);
    }
    return index == 0 ? nc_signal_start(loop, SIGHUP, on_hup, s, &s->hup)
                      : 0;
}

static void worker_stop(nc_loop *loop, unsigned index, void *ud)
{
    struct server *s = ud;

    (void)loop;
    if (index == 0)
        nc_signal_close(s->hup);
}

/* The TLS context of --tls-cert and --tls-key, shared by every worker's
 * listeners; NULL without them. */
static int tls_context(const serve_config *cfg, nc_tls_ctx **out)
{
    nc_tls_options o;
    char why[512] = "";
    int err;

    *out = NULL;
    if (cfg->tls_cert == NULL)
        return 0;
    memset(&o, 0, sizeof o);
    o.cert_file = cfg->tls_cert;
    o.key_file = cfg->tls_key;
    err = nc_tls_server_new(&o, out, why, sizeof why);
    if (err < 0)
        fprintf(stderr, "%s: cannot serve TLS: %s\n", cfg->prog,
                why[0] ? why : nc_strerror(err));
    return err;
}

static int listen_all(struct server *s, nc_tls_ctx *tls)
{
    const serve_config *cfg = s->cfg;
    nc_listener_options o = cfg->options;
    char why[256];
    size_t i;
    int err;

    o.tls = tls;
    /* The library's own words for a failure: the step and the address,
     * and for an address in use, who holds it. */
    o.errbuf = why;
    o.errbuf_len = sizeof why;
    for (i = 0; i < cfg->nspecs; i++) {
        why[0] = '\0';
        err = nc_workers_listen(s->workers, cfg->specs[i], &o,
                                cfg->callbacks, NULL);
        if (err < 0) {
            if (why[0] != '\0')
                fprintf(stderr, "%s: %s\n", cfg->prog, why);
            else
                fprintf(stderr, "%s: cannot listen on %s: %s (%s)\n",
                        cfg->prog, cfg->specs[i], nc_strerror(err),
                        nc_errname(err));
            fprintf(stderr, "%s: %s\n", cfg->prog,
                    nc_explain(NC_OP_BIND, err));
            return err;
        }
    }
    return 0;
}

static void announce(const struct server *s)
{
    nc_addr addrs[MAX_ADDRS];
    nc_iface_list *ifaces = NULL;
    size_t n = 0;
    int err = nc_iface_list_get(&ifaces);

    if (err < 0)
        fprintf(stderr, "%s: cannot list interfaces: %s\n", s->cfg->prog,
                nc_strerror(err));
    char how[64];

    nc_workers_addrs(s->workers, addrs, MAX_ADDRS, &n);
    if (n > MAX_ADDRS)
        n = MAX_ADDRS;
    snprintf(how, sizeof how, "%s%s",
             nc_backend_name(nc_loop_backend(nc_workers_loop(s->workers, 0))),
             s->cfg->tls_cert != NULL ? ", TLS" : "");
    netinfo_print_listening(stdout, ifaces, addrs, n, how);
    if (ifaces != NULL)
        netinfo_print_reach_warning(stderr, s->cfg->prog, ifaces, addrs, n);
    nc_iface_list_free(ifaces);
}

void serve_print_summary(const char *fmt, ...)
{
    va_list ap;
    int ok;

    va_start(ap, fmt);
    ok = vprintf(fmt, ap) >= 0 && fflush(stdout) == 0;
    va_end(ap);
    if (ok)
        return;
    /* Whoever read stdout has gone: the summary goes to stderr. */
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void serve_format_closed(const nc_loop_stats *s, char *buf, size_t len)
{
    size_t used = 0;
    int r;

    buf[0] = '\0';
    for (r = NC_CLOSE_PEER; r <= NC_CLOSE_REASON_LAST; r++) {
        int n;
        if (s->closed[r] == 0)
            continue;
        n = snprintf(buf + used, len - used, "%s%s %" PRIu64,
                     used ? ", " : "", nc_close_reason_name(r), s->closed[r]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (used == 0)
        snprintf(buf, len, "none");
}

/* "worker 0: accepted 3, open 0, closed: peer closed 3; 12 bytes in, ..." */
static void print_worker_line(const char *who, const nc_loop_stats *s)
{
    char closed[512];
    uint64_t spent = s->busy_ns + s->blocked_ns;

    serve_format_closed(s, closed, sizeof closed);
    serve_print_summary("%s: accepted %" PRIu64 ", open %" PRIu64
                        ", closed: %s; %" PRIu64 " bytes in, %" PRIu64
                        " bytes out; %" PRIu64 " accept errors, %" PRIu64
                        " shed; busy %.1f%%\n", who, s->accepted, s->open,
                        closed, s->bytes_in, s->bytes_out, s->accept_errors,
                        s->shed,
                        spent ? 100.0 * (double)s->busy_ns / (double)spent
                              : 0.0);
}

static void print_summary(const struct server *s)
{
    unsigned n = nc_workers_count(s->workers), i;
    nc_loop_stats *per = calloc(n, sizeof *per), total;
    char who[32];

    if (per == NULL) {
        fprintf(stderr, "%s: out of memory for the summary\n", s->cfg->prog);
        return;
    }
    nc_workers_stats(s->workers, per, n, &total);
    for (i = 0; i < n; i++) {
        snprintf(who, sizeof who, "worker %u", i);
        print_worker_line(who, &per[i]);
    }
    print_worker_line("total", &total);
    if (s->cfg->summary != NULL)
        s->cfg->summary(s->blocks, n, &total);
    free(per);
}

int serve_run(const serve_config *cfg)
{
    struct server s;
    nc_workers_options o;
    sigset_t stop_signals;
    unsigned i;
    int err;

    nc_tls_ctx *tls;

    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    err = tls_context(cfg, &tls);
    if (err < 0)
        return err;
    s.tls = tls;
    /* A closed stdout (a log reader that went away, "| true") must not
     * kill the server with SIGPIPE; the library itself never raises it. */
    signal(SIGPIPE, SIG_IGN);
    /* Blocked from now on, so that a signal sent as soon as the
     * "listening on" line appears waits for nc_workers_run. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    memset(&o, 0, sizeof o);
    o.threads = cfg->threads;
    o.pin = cfg->pin;
    o.on_start = worker_start;
    o.on_stop = worker_stop;
    o.ud = &s;
    err = nc_workers_start(&o, &s.workers);
    if (err < 0) {
        char why[512];
        fprintf(stderr, "%s: cannot start the worker threads: %s\n",
                cfg->prog, netinfo_loop_trouble(err, why, sizeof why));
        for (i = 0; i < SERVE_MAX_THREADS; i++)
            free(s.blocks[i]);
        nc_tls_ctx_free(tls);
        return err;
    }
    err = listen_all(&s, tls);
    if (err == 0) {
        announce(&s);
        err = nc_workers_run(s.workers, cfg->grace_ms);   /* until a signal */
        if (err < 0)
            fprintf(stderr, "%s: a worker failed: %s\n", cfg->prog,
                    nc_strerror(err));
    } else {
        nc_workers_stop(s.workers, 0);
        nc_workers_wait(s.workers);
    }
    if (err == 0)
        print_summary(&s);
    nc_workers_free(s.workers);
    nc_tls_ctx_free(tls);
    for (i = 0; i < SERVE_MAX_THREADS; i++)
        free(s.blocks[i]);
    return err;
}

/* The shared options, then extra's: one table for getopt_long. */
static struct option *option_table(const serve_extra *extra)
{
    static const struct option shared[] = {
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"pin", no_argument, NULL, 'p'},
        {"grace", required_argument, NULL, 'g'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"max-conns", required_argument, NULL, 'm'},
        {"max-per-addr", required_argument, NULL, 'a'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
    };
    size_t n = sizeof shared / sizeof shared[0], k = 0;
    struct option *all;

    while (extra != NULL && extra->options[k].name != NULL)
        k++;
    all = calloc(n + k + 1, sizeof *all);
    if (all == NULL)
        return NULL;
    memcpy(all, shared, sizeof shared);
    if (k > 0)
        memcpy(all + n, extra->options, k * sizeof *all);
    return all;
}

void serve_parse_args(serve_config *cfg, int argc, char **argv,
                      const char *prog, const char *default_spec,
                      bool max_conns_ok, const serve_extra *extra,
                      void (*usage)(void))
{
    /* Static: a usage error exits from inside the loop below, and the
     * table must still be reachable then (LeakSanitizer). */
    static struct option *longopts;
    const char *why;
    uint64_t value;
    int c;

    longopts = option_table(extra);
    if (longopts == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->prog = prog;
    cfg->threads = 1;
    cfg->grace_ms = DEFAULT_GRACE_MS;
    cfg->options.conn.idle_timeout_ms = 60000;
    /* Defences on by default: out of descriptors, the longest-idle
     * connection makes room for a new one (instead of every newcomer
     * being reset while idle ones hold on), and one address cannot take
     * the descriptors alone. */
    cfg->options.evict_idle = true;
    cfg->options.max_conns_per_addr = DEFAULT_MAX_PER_ADDR;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (cfg->nspecs == SERVE_MAX_SPECS)
                args_usage_error(prog, "at most %d --listen options",
                                 SERVE_MAX_SPECS);
            args_endpoint(prog, "--listen", optarg, false, NULL);
            cfg->specs[cfg->nspecs++] = optarg;
            break;
        case 't':
            if (args_uint(optarg, 0, SERVE_MAX_THREADS, &value) < 0)
                args_usage_error(prog, "--threads '%s' is not a number from "
                                 "0 (one per CPU) to %d", optarg,
                                 SERVE_MAX_THREADS);
            cfg->threads = (unsigned)value;
            break;
        case 'p':
            cfg->pin = true;
            break;
        case 'g':
            if (args_seconds_ms(optarg, &cfg->grace_ms) < 0 ||
                cfg->grace_ms > 0x7fffffffu)
                args_usage_error(prog, "--grace '%s' is not a number of "
                                 "seconds", optarg);
            break;
        case 'i':
            if (args_seconds_ms(optarg,
                                &cfg->options.conn.idle_timeout_ms) < 0)
                args_usage_error(prog, "--idle-timeout '%s' is not a number "
                                 "of seconds", optarg);
            break;
        case 'm':
            if (!max_conns_ok)
                args_usage_error(prog, "unknown option '--max-conns'");
            if (args_uint(optarg, 1, UINT32_MAX, &value) < 0)
                args_usage_error(prog, "--max-conns '%s' is not a number "
                                 "from 1 to %u", optarg, UINT32_MAX);
            cfg->options.max_conns = (unsigned)value;
            break;
        case 'a':
            if (args_uint(optarg, 0, UINT32_MAX, &value) < 0)
                args_usage_error(prog, "--max-per-addr '%s' is not a number "
                                 "from 0 (no cap) to %u", optarg,
                                 UINT32_MAX);
            cfg->options.max_conns_per_addr = (unsigned)value;
            break;
        case 'c':
            cfg->tls_cert = optarg;
            break;
        case 'k':
            cfg->tls_key = optarg;
            break;
        case 'h':
            usage();
            exit(0);
        case 'V':
            args_version(prog);
        default:
            if (c >= 256 && extra != NULL) {
                why = extra->parse(c, optarg);
                if (why != NULL)
                    args_usage_error(prog, "%s", why);
                break;
            }
            args_bad_option(prog, c, optopt, argv, optind);
        }
    }
    free(longopts);
    longopts = NULL;
    if (optind < argc)
        args_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    if (cfg->nspecs == 0)
        cfg->specs[cfg->nspecs++] = default_spec;
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        args_usage_error(prog, "--tls-cert and --tls-key go together");
}
