/*
 * workers_listen.c - one endpoint served by every worker: a listener per
 * worker sharing the port (SO_REUSEPORT; worker 0 binds first, alone, so
 * that no other server shares it), or one acceptor in worker 0 that hands
 * the sockets it accepts to the workers in turn.
 *
 * The hand-off: every worker has a listener without sockets (an
 * "adopter", listener.c) holding the callbacks and options; worker 0's
 * real listener gives each accepted fd to handoff(), which posts it to
 * the next worker, where the adopter opens it as its own connection. The
 * connection's counters, on_open and on_close are then that worker's,
 * exactly as if it had accepted it.
 *
 * Listeners are created and closed in their worker's thread, through
 * calls that the caller of nc_workers_listen waits for.
 */
#include "workers.h"
#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ADDRS 32          /* sockets per listener, as in listener.c */

struct workers_route {
    struct workers_route *next;    /* ws->routes */
    nc_workers *ws;
    unsigned turn;                 /* worker 0's thread only */
    nc_listener **adopters;        /* one per worker */
};

/* One worker's part of a listen: what to create, and what came of it. */
struct job {
    const char *spec;
    nc_listener_options opts;
    const nc_conn_callbacks *cbs;
    void *ud;
    bool adopter;                  /* an adopter, not a listener */
    bool first;                    /* the first of a shared port's
                                      listeners (nc__listen_first) */
    bool tcp;                      /* adopter: TCP sockets */
    struct workers_route *route;   /* a listener: hand its sockets off */
    nc_listener *made;
    int rc;
    nc_addr *addrs;                /* worker 0: the bound addresses */
    size_t naddrs;
};

/* ---- the hand-off ------------------------------------------------------------ */

struct adoption {
    nc_listener *adopter;
    int fd;
};

static void adopt_posted(void *arg)
{
    struct adoption a = *(struct adoption *)arg;
    free(arg);
    nc__listener_adopt(a.adopter, a.fd);
}

static void reset_fd(int fd)
{
    nc__set_linger_reset(fd);
    close(fd);
}

/* In worker 0: give fd to the next worker in turn; skip workers that have
 * ended (or a post that finds no memory). */
static void handoff(void *arg, int fd)
{
    struct workers_route *r = arg;
    nc_workers *ws = r->ws;
    for (unsigned tries = 0; tries < ws->n; tries++) {
        unsigned i = r->turn;
        r->turn = (r->turn + 1) % ws->n;
        if (i == 0) {
            nc__listener_adopt(r->adopters[0], fd);
            return;
        }
        struct adoption *a = malloc(sizeof(*a));
        if (!a)
            continue;
        *a = (struct adoption){ r->adopters[i], fd };
        if (nc__workers_post(&ws->w[i], adopt_posted, a) == 0)
            return;
        free(a);
    }
    reset_fd(fd);
    counter_add(&ws->w[0].loop->ctr.accept_errors, 1);
}

void nc__workers_routes_free(nc_workers *ws)
{
    while (ws->routes) {
        struct workers_route *r = ws->routes;
        ws->routes = r->next;
        free(r->adopters);
        free(r);
    }
}

/* ---- jobs, in the workers' threads ----------------------------------------------- */

static void job_run(struct worker *wk, void *arg)
{
    struct job *j = arg;
    /* A stop may have come meanwhile: listen no more. */
    if (atomic_load(&wk->ws->stop_gen) != 0) {
        j->rc = -ESHUTDOWN;
        return;
    }
    if (j->adopter)
        j->rc = nc__listener_new_adopter(wk->loop, &j->opts, j->cbs, j->ud,
                                         j->tcp, &j->made);
    else if (j->first)
        j->rc = nc__listen_first(wk->loop, j->spec, &j->opts, j->cbs, j->ud,
                                 &j->made);
    else
        j->rc = nc_listen(wk->loop, j->spec, &j->opts, j->cbs, j->ud,
                          &j->made);
    if (j->rc < 0)
        return;
    if (j->route)
        nc__listener_set_handoff(j->made, handoff, j->route);
    j->naddrs = 0;
    for (size_t i = 0; j->addrs && i < nc_listener_count(j->made) &&
                       i < MAX_ADDRS; i++)
        if (nc_listener_addr(j->made, i, &j->addrs[j->naddrs]) == 0)
            j->naddrs++;
}

static void job_undo(struct worker *wk, void *arg)
{
    (void)wk;
    nc_listener_close(arg);
}

static int run_job(nc_workers *ws, unsigned i, struct job *j)
{
    int rc = nc__workers_call(&ws->w[i], job_run, j);
    return rc < 0 ? rc : j->rc;
}

/* Close what the jobs made, each in its worker. */
static void undo(nc_workers *ws, nc_listener **made)
{
    for (unsigned i = 0; i < ws->n; i++)
        if (made[i])
            nc__workers_call(&ws->w[i], job_undo, made[i]);
}

/* ---- the two ways ---------------------------------------------------------------- */

/* The spec the other workers bind: the same, with the port worker 0 got
 * when it asked for port 0. */
static int spec_with_port(const nc_endpoint *ep, const nc_addr *first,
                          char *buf, size_t len)
{
    nc_endpoint e = *ep;
    if (e.kind != NC_EP_UNIX && e.port == 0)
        e.port = nc_addr_port(first);
    int rc = nc_endpoint_format(&e, buf, len);
    return rc < 0 ? rc : 0;
}

/* Worker 0 takes the port for itself alone (nc__listen_first: a second
 * server on it fails, whether or not its sockets allow sharing), and
 * opens it to the others, which join with SO_REUSEPORT. */
static int listen_reuseport(nc_workers *ws, const char *endpoint,
                            const nc_endpoint *ep, struct job *tmpl,
                            nc_listener **made, nc_addr *addrs,
                            size_t *naddrs)
{
    char spec[NC_ADDRSTRLEN];
    int rc = 0;
    for (unsigned i = 0; i < ws->n && rc == 0; i++) {
        struct job j = *tmpl;
        j.first = i == 0;
        j.opts.reuseport = i > 0;
        j.spec = i == 0 ? endpoint : spec;
        j.addrs = i == 0 ? addrs : NULL;
        rc = run_job(ws, i, &j);
        made[i] = j.made;
        if (rc == 0 && i == 0) {
            *naddrs = j.naddrs;
            rc = j.naddrs > 0 ? spec_with_port(ep, &addrs[0], spec,
                                               sizeof(spec))
                              : -EADDRNOTAVAIL;
        }
    }
    if (rc < 0)
        undo(ws, made);
    return rc;
}

static int listen_handoff(nc_workers *ws, const char *endpoint,
                          const nc_endpoint *ep, struct job *tmpl,
                          nc_addr *addrs, size_t *naddrs)
{
    struct workers_route *r = calloc(1, sizeof(*r));
    if (r)
        r->adopters = calloc(ws->n, sizeof(*r->adopters));
    if (!r || !r->adopters) {
        free(r);
        return -ENOMEM;
    }
    r->ws = ws;
    int rc = 0;
    for (unsigned i = 0; i < ws->n && rc == 0; i++) {
        struct job j = *tmpl;
        j.adopter = true;
        j.tcp = ep->kind != NC_EP_UNIX;
        rc = run_job(ws, i, &j);
        r->adopters[i] = j.made;
    }
    if (rc == 0) {
        /* Connection options, limits and callbacks are the adopters';
         * the acceptor only accepts. */
        struct job j = *tmpl;
        j.spec = endpoint;
        j.cbs = NULL;
        j.ud = NULL;
        j.opts.max_conns = 0;
        j.opts.max_conns_per_addr = 0;
        j.route = r;
        j.addrs = addrs;
        rc = run_job(ws, 0, &j);
        *naddrs = j.naddrs;
    }
    if (rc < 0) {
        undo(ws, r->adopters);
        free(r->adopters);
        free(r);
        return rc;
    }
    r->next = ws->routes;
    ws->routes = r;
    return 0;
}

/* Refusals of SO_REUSEPORT itself, after which one acceptor serves. */
static bool reuseport_refused(int rc, unsigned failed_worker)
{
    if (failed_worker == 0)
        return rc == -ENOPROTOOPT || rc == -EOPNOTSUPP || rc == -EINVAL;
    return rc == -EADDRINUSE;   /* the kernel would not share the port */
}

/* Room for one more listener's addresses, so that recording them after
 * the workers bound cannot fail. */
static int reserve_addrs(nc_workers *ws)
{
    pthread_mutex_lock(&ws->lock);
    int rc = 0;
    if (ws->naddrs + MAX_ADDRS > ws->addrs_cap) {
        size_t cap = (ws->naddrs + MAX_ADDRS) * 2;
        nc_addr *a = realloc(ws->addrs, cap * sizeof(*a));
        if (a) {
            ws->addrs = a;
            ws->addrs_cap = cap;
        } else {
            rc = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&ws->lock);
    return rc;
}

static void add_addrs(nc_workers *ws, const nc_addr *addrs, size_t n)
{
    pthread_mutex_lock(&ws->lock);
    memcpy(ws->addrs + ws->naddrs, addrs, n * sizeof(*addrs));
    ws->naddrs += n;
    pthread_mutex_unlock(&ws->lock);
}

int nc_workers_listen(nc_workers *w, const char *endpoint,
                      const nc_listener_options *opts,
                      const nc_conn_callbacks *cbs, void *ud)
{
    nc_endpoint ep;
    if (!w || !endpoint)
        return -EINVAL;
    if (nc__workers_in_worker(w))
        return -EDEADLK;
    int rc = nc_endpoint_parse(&ep, endpoint, NULL, 0);
    if (rc < 0)
        return rc;
    nc_workers_accept mode = w->opt.accept;
    if (mode == NC_WORKERS_ACCEPT_REUSEPORT && ep.kind == NC_EP_UNIX)
        return -ENOPROTOOPT;
    if (mode == NC_WORKERS_ACCEPT_AUTO && ep.kind == NC_EP_UNIX)
        mode = NC_WORKERS_ACCEPT_HANDOFF;

    struct job tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    if (opts)
        tmpl.opts = *opts;
    tmpl.opts.reuseport = false;
    tmpl.cbs = cbs;
    tmpl.ud = ud;
    nc_listener **made = calloc(w->n, sizeof(*made));
    if (!made)
        return -ENOMEM;
    nc_addr addrs[MAX_ADDRS];
    size_t naddrs = 0;

    pthread_mutex_lock(&w->listen_lock);
    if (atomic_load(&w->stop_gen) != 0)
        rc = -ESHUTDOWN;
    else
        rc = reserve_addrs(w);
    if (rc == 0 && mode != NC_WORKERS_ACCEPT_HANDOFF) {
        rc = listen_reuseport(w, endpoint, &ep, &tmpl, made, addrs, &naddrs);
        unsigned failed = 0;
        while (failed < w->n && made[failed])
            failed++;
        if (rc < 0 && mode == NC_WORKERS_ACCEPT_AUTO &&
            reuseport_refused(rc, failed)) {
            mode = NC_WORKERS_ACCEPT_HANDOFF;
            rc = 0;
        } else {
            mode = NC_WORKERS_ACCEPT_REUSEPORT;
        }
    }
    if (rc == 0 && mode == NC_WORKERS_ACCEPT_HANDOFF)
        rc = listen_handoff(w, endpoint, &ep, &tmpl, addrs, &naddrs);
    if (rc == 0)
        add_addrs(w, addrs, naddrs);
    pthread_mutex_unlock(&w->listen_lock);
    free(made);
    return rc < 0 ? rc : (int)mode;
}
