/*
 * serve.c - one loop per thread, each with its own listeners on the same
 * addresses (SO_REUSEPORT lets the kernel spread connections over them),
 * and the main thread's loop waiting for SIGINT/SIGTERM.
 */
#include "serve.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "netinfo.h"

struct worker {
    const serve_config *cfg;
    size_t index;
    char **specs;               /* this worker's copy of cfg->specs */
    nc_loop *loop;
    nc_listener **listeners;    /* one per spec; NULL where not served */
    uint16_t *ports;            /* per spec: the port its first socket got */
    nc_addr *addrs;             /* every bound address, for printing */
    size_t naddrs;
    int err;                    /* why listening failed, and on which spec */
    size_t failed_spec;         /* NO_SPEC: it failed before listening */
    sem_t ready;
    pthread_t thread;
};

#define NO_SPEC ((size_t)-1)

struct server {
    const serve_config *cfg;
    nc_loop *loop;              /* the main thread's */
    nc_signal *sigint, *sigterm;
    struct worker *workers;
    size_t started;             /* workers whose threads run */
};

static bool is_unix_spec(const char *spec)
{
    return strncmp(spec, "unix:", 5) == 0;
}

static void close_listeners(struct worker *w)
{
    size_t i;

    for (i = 0; i < w->cfg->nspecs; i++) {
        nc_listener_close(w->listeners[i]);
        w->listeners[i] = NULL;
    }
}

/* Listen on every spec in w's loop, from w's thread. */
static int worker_listen(struct worker *w)
{
    const serve_config *cfg = w->cfg;
    void *ud = (char *)cfg->worker_data + w->index * cfg->worker_data_size;
    nc_listener_options opts = cfg->options;
    size_t i, j, total = 0;

    opts.reuseport = cfg->threads > 1;
    /* Callbacks reach this thread's block through the loop, too. */
    nc_loop_set_data(w->loop, ud);
    for (i = 0; i < cfg->nspecs; i++) {
        /* Two sockets cannot bind one path: a Unix socket gets one thread. */
        if (w->index > 0 && is_unix_spec(w->specs[i]))
            continue;
        w->err = nc_listen(w->loop, w->specs[i], &opts, cfg->callbacks, ud,
                           &w->listeners[i]);
        if (w->err < 0) {
            w->failed_spec = i;
            close_listeners(w);
            return w->err;
        }
        total += nc_listener_count(w->listeners[i]);
    }

    w->addrs = calloc(total ? total : 1, sizeof *w->addrs);
    if (w->addrs == NULL) {
        close_listeners(w);
        w->failed_spec = NO_SPEC;
        return w->err = -ENOMEM;
    }
    for (i = 0; i < cfg->nspecs; i++) {
        const nc_listener *l = w->listeners[i];
        for (j = 0; l != NULL && j < nc_listener_count(l); j++) {
            if (nc_listener_addr(l, j, &w->addrs[w->naddrs]) < 0)
                continue;
            if (j == 0)
                w->ports[i] = nc_addr_port(&w->addrs[w->naddrs]);
            w->naddrs++;
        }
    }
    return 0;
}

/* Posted to a worker's loop by the main thread: runs in the worker. */
static void worker_stop(void *arg)
{
    struct worker *w = arg;

    close_listeners(w);
    nc_loop_stop(w->loop);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int err;

    w->err = nc_loop_new(&w->loop);
    if (w->err < 0) {
        w->failed_spec = NO_SPEC;
    } else if (worker_listen(w) < 0) {
        nc_loop_free(w->loop);
        w->loop = NULL;
    }
    err = w->err;
    sem_post(&w->ready);   /* after this, main reads w->err, w->addrs */
    if (err < 0)
        return NULL;
    err = nc_loop_run(w->loop, NC_RUN_FOREVER);
    if (err < 0)
        fprintf(stderr, "%s: thread %zu: event loop failed: %s\n",
                w->cfg->prog, w->index, nc_strerror(err));
    close_listeners(w);
    nc_loop_free(w->loop);  /* closes what is left, running on_close */
    return NULL;
}

static void stop_workers(struct server *s)
{
    size_t i;

    for (i = 0; i < s->started; i++)
        if (nc_loop_post(s->workers[i].loop, worker_stop, &s->workers[i]) < 0)
            nc_loop_stop(s->workers[i].loop);
    for (i = 0; i < s->started; i++)
        pthread_join(s->workers[i].thread, NULL);
    s->started = 0;
}

static void on_signal(nc_signal *sig, int signum, void *ud)
{
    struct server *s = ud;

    (void)sig;
    (void)signum;
    if (s->cfg->threads > 1)
        stop_workers(s);
    else
        close_listeners(&s->workers[0]);
    nc_signal_close(s->sigint);
    nc_signal_close(s->sigterm);
    s->sigint = s->sigterm = NULL;
    nc_loop_stop(s->loop);
}

/* The spec worker i > 0 listens on: worker 0's, with the port worker 0
 * was given where it asked for port 0. */
static char *spec_for_worker(const struct worker *first, size_t i)
{
    nc_endpoint ep;
    char text[NC_ADDRSTRLEN];

    if (nc_endpoint_parse(&ep, first->specs[i], NULL, 0) < 0 ||
        ep.kind == NC_EP_UNIX || ep.port != 0)
        return strdup(first->specs[i]);
    ep.port = first->ports[i];
    if (nc_endpoint_format(&ep, text, sizeof text) < 0)
        return strdup(first->specs[i]);
    return strdup(text);
}

static int start_worker(struct server *s, size_t index)
{
    struct worker *w = &s->workers[index];
    int err;

    if (sem_init(&w->ready, 0, 0) < 0)
        return -errno;
    err = -pthread_create(&w->thread, NULL, worker_main, w);
    if (err == 0) {
        while (sem_wait(&w->ready) < 0 && errno == EINTR)
            continue;
        err = w->err;
        if (err < 0)
            pthread_join(w->thread, NULL);
        else
            s->started++;
    }
    sem_destroy(&w->ready);
    return err;
}

static int alloc_workers(struct server *s)
{
    const serve_config *cfg = s->cfg;
    size_t i, j;

    s->workers = calloc(cfg->threads, sizeof *s->workers);
    if (s->workers == NULL)
        return -ENOMEM;
    for (i = 0; i < cfg->threads; i++) {
        struct worker *w = &s->workers[i];
        w->cfg = cfg;
        w->index = i;
        w->specs = calloc(cfg->nspecs, sizeof *w->specs);
        w->listeners = calloc(cfg->nspecs, sizeof *w->listeners);
        w->ports = calloc(cfg->nspecs, sizeof *w->ports);
        if (w->specs == NULL || w->listeners == NULL || w->ports == NULL)
            return -ENOMEM;
        if (i == 0)
            for (j = 0; j < cfg->nspecs; j++)
                if ((w->specs[j] = strdup(cfg->specs[j])) == NULL)
                    return -ENOMEM;
    }
    return 0;
}

static void free_workers(struct server *s)
{
    size_t i, j;

    for (i = 0; s->workers != NULL && i < s->cfg->threads; i++) {
        struct worker *w = &s->workers[i];
        for (j = 0; w->specs != NULL && j < s->cfg->nspecs; j++)
            free(w->specs[j]);
        free(w->specs);
        free(w->listeners);
        free(w->ports);
        free(w->addrs);
    }
    free(s->workers);
}

/* Bind everything: in the main loop, or worker by worker. */
static int listen_all(struct server *s)
{
    const serve_config *cfg = s->cfg;
    struct worker *first = &s->workers[0];
    size_t i, j;
    int err;

    if (cfg->threads <= 1) {
        first->loop = s->loop;
        return worker_listen(first);
    }
    err = start_worker(s, 0);
    for (i = 1; err == 0 && i < cfg->threads; i++) {
        struct worker *w = &s->workers[i];
        for (j = 0; j < cfg->nspecs; j++)
            if ((w->specs[j] = spec_for_worker(first, j)) == NULL)
                return -ENOMEM;
        err = start_worker(s, i);
    }
    return err;
}

static void report_start_failure(const struct server *s, int err)
{
    size_t i;

    for (i = 0; s->workers != NULL && i < s->cfg->threads; i++) {
        const struct worker *w = &s->workers[i];
        if (w->err < 0 && w->failed_spec == NO_SPEC) {
            fprintf(stderr, "%s: thread %zu cannot start: %s\n",
                    s->cfg->prog, i, nc_strerror(w->err));
            return;
        }
        if (w->err < 0) {
            fprintf(stderr, "%s: cannot listen on %s: %s (%s)\n%s: %s\n",
                    s->cfg->prog, w->specs[w->failed_spec],
                    nc_strerror(w->err), nc_errname(w->err), s->cfg->prog,
                    nc_explain(NC_OP_BIND, w->err));
            return;
        }
    }
    fprintf(stderr, "%s: cannot start: %s\n", s->cfg->prog,
            nc_strerror(err));
}

static void announce(const struct server *s)
{
    const struct worker *first = &s->workers[0];
    nc_iface_list *ifaces = NULL;
    int err = nc_iface_list_get(&ifaces);

    if (err < 0)
        fprintf(stderr, "%s: cannot list interfaces: %s\n", s->cfg->prog,
                nc_strerror(err));
    netinfo_print_listening(stdout, ifaces, first->addrs, first->naddrs);
    if (ifaces != NULL)
        netinfo_print_reach_warning(stderr, s->cfg->prog, ifaces,
                                    first->addrs, first->naddrs);
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

int serve_run(const serve_config *cfg)
{
    struct server s;
    int err;

    memset(&s, 0, sizeof s);
    /* A closed stdout (a log reader that went away, "| true") must not
     * kill the server with SIGPIPE; the library itself never raises it. */
    signal(SIGPIPE, SIG_IGN);
    s.cfg = cfg;
    err = nc_loop_new(&s.loop);
    if (err < 0) {
        fprintf(stderr, "%s: cannot create a loop: %s\n", cfg->prog,
                nc_strerror(err));
        return err;
    }
    /* Before any thread starts: threads inherit the blocked signals, so
     * only the main loop's signalfd receives them. */
    err = nc_signal_start(s.loop, SIGINT, on_signal, &s, &s.sigint);
    if (err == 0)
        err = nc_signal_start(s.loop, SIGTERM, on_signal, &s, &s.sigterm);
    if (err < 0)
        fprintf(stderr, "%s: cannot handle signals: %s\n", cfg->prog,
                nc_strerror(err));
    if (err == 0) {
        err = alloc_workers(&s);
        if (err == 0)
            err = listen_all(&s);
        if (err < 0)
            report_start_failure(&s, err);
    }
    if (err == 0) {
        announce(&s);
        err = nc_loop_run(s.loop, NC_RUN_FOREVER);
        if (err < 0)
            fprintf(stderr, "%s: event loop failed: %s\n", cfg->prog,
                    nc_strerror(err));
    }
    stop_workers(&s);
    if (s.workers != NULL && cfg->threads <= 1)
        close_listeners(&s.workers[0]);
    nc_loop_free(s.loop);   /* also ends the signal handlers */
    free_workers(&s);
    return err;
}

/* The shared options, then extra's: one table for getopt_long. */
static struct option *option_table(const serve_extra *extra)
{
    static const struct option shared[] = {
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"max-conns", required_argument, NULL, 'm'},
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
    struct option *longopts = option_table(extra);
    const char *why;
    uint64_t value;
    int c;

    if (longopts == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->prog = prog;
    cfg->threads = 1;
    cfg->options.conn.idle_timeout_ms = 60000;
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
            if (args_uint(optarg, 1, SERVE_MAX_THREADS, &value) < 0)
                args_usage_error(prog, "--threads '%s' is not a number from "
                                 "1 to %d", optarg, SERVE_MAX_THREADS);
            cfg->threads = (unsigned)value;
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
    if (optind < argc)
        args_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    if (cfg->nspecs == 0)
        cfg->specs[cfg->nspecs++] = default_spec;
}
