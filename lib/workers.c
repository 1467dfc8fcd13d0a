/*
 * workers.c - N threads, one loop each: starting them, calls posted to
 * them, their graceful stop, joining them, and their counters.
 *
 * A worker serves until a stop is requested (stop_gen moves: its loop is
 * stopped so that nc_loop_run returns), then runs nc_loop_shutdown and its
 * loop again until the shutdown is done, then on_stop, then frees its
 * loop. Stopping needs no memory: a flag and nc_loop_stop per worker.
 */
#include "workers.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The worker the calling thread is, if any. */
static _Thread_local struct worker *current;

bool nc__workers_in_worker(const nc_workers *ws)
{
    return current && current->ws == ws;
}

/* ---- posts ---------------------------------------------------------------- */

int nc__workers_post(struct worker *wk, nc_call_fn fn, void *arg)
{
    pthread_mutex_lock(&wk->lock);
    int rc = wk->gone ? -ESHUTDOWN : nc_loop_post(wk->loop, fn, arg);
    pthread_mutex_unlock(&wk->lock);
    return rc;
}

struct sync_call {
    void (*fn)(struct worker *wk, void *arg);
    void *arg;
    struct worker *wk;
    bool done;
};

static void sync_call_run(void *p)
{
    struct sync_call *sc = p;
    nc_workers *ws = sc->wk->ws;
    sc->fn(sc->wk, sc->arg);
    pthread_mutex_lock(&ws->lock);
    sc->done = true;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->lock);
}

int nc__workers_call(struct worker *wk,
                     void (*fn)(struct worker *wk, void *arg), void *arg)
{
    struct sync_call sc = { fn, arg, wk, false };
    nc_workers *ws = wk->ws;
    /* Posted calls run even in a worker that is ending (inside
     * nc_loop_free), so an accepted call always completes. */
    int rc = nc__workers_post(wk, sync_call_run, &sc);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ws->lock);
    while (!sc.done)
        pthread_cond_wait(&ws->cond, &ws->lock);
    pthread_mutex_unlock(&ws->lock);
    return 0;
}

struct worker_call {
    nc_worker_fn fn;
    void *arg;
    struct worker *wk;
};

static void worker_call_run(void *p)
{
    struct worker_call c = *(struct worker_call *)p;
    free(p);
    c.fn(c.wk->loop, c.wk->index, c.arg);
}

int nc_workers_post(nc_workers *w, unsigned index, nc_worker_fn fn,
                    void *arg)
{
    if (!w || !fn || index >= w->n)
        return -EINVAL;
    struct worker_call *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (struct worker_call){ fn, arg, &w->w[index] };
    int rc = nc__workers_post(&w->w[index], worker_call_run, c);
    if (rc < 0)
        free(c);
    return rc;
}

int nc_workers_post_all(nc_workers *w, nc_worker_fn fn, void *arg)
{
    if (!w || !fn)
        return -EINVAL;
    int queued = 0;
    for (unsigned i = 0; i < w->n; i++)
        if (nc_workers_post(w, i, fn, arg) == 0)
            queued++;
    return queued;
}

/* ---- a worker's thread -------------------------------------------------------- */

static int pin(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return -pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
}

/* Serve until a requested stop's shutdown is done (or the loop fails). */
static void serve(struct worker *wk)
{
    nc_workers *ws = wk->ws;
    unsigned seen = 0;
    for (;;) {
        int rc = nc_loop_run(wk->loop, NC_RUN_FOREVER);
        if (rc < 0) {
            wk->run_rc = rc;
            return;
        }
        unsigned gen = atomic_load(&ws->stop_gen);
        if (gen != seen) {
            seen = gen;
            rc = nc_loop_shutdown(wk->loop, atomic_load(&ws->grace_ms));
            if (rc < 0) {
                wk->run_rc = rc;
                return;
            }
        }
        /* Also when the user shut this loop down alone. Any other return
         * (an nc_loop_stop of the user's) just runs on. */
        if (nc__loop_shutdown_done(wk->loop))
            return;
    }
}

/* Whatever on_stop left open is reset, so that the last counters are
 * complete and every on_close runs before the loop is freed. */
static void close_leftovers(struct worker *wk)
{
    if (wk->run_rc < 0 || nc_loop_shutdown(wk->loop, 0) < 0)
        return;
    while (!nc__loop_shutdown_done(wk->loop))
        if (nc_loop_run(wk->loop, NC_RUN_FOREVER) < 0)
            return;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    nc_workers *ws = wk->ws;
    current = wk;
    int rc = wk->cpu >= 0 ? pin(wk->cpu) : 0;
    if (rc == 0 && ws->opt.on_start)
        rc = ws->opt.on_start(wk->loop, wk->index, ws->opt.ud);
    pthread_mutex_lock(&ws->lock);
    wk->start_rc = rc;
    ws->reported++;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->lock);
    if (rc == 0) {
        serve(wk);
        if (ws->opt.on_stop)
            ws->opt.on_stop(wk->loop, wk->index, ws->opt.ud);
        close_leftovers(wk);
    }
    /* From here on no other thread touches the loop. Posts accepted
     * before run inside nc_loop_free, in this thread. */
    pthread_mutex_lock(&wk->lock);
    nc_loop_stats_get(wk->loop, &wk->final);
    wk->gone = true;
    pthread_mutex_unlock(&wk->lock);
    nc_loop_free(wk->loop);
    pthread_mutex_lock(&ws->lock);
    if (++ws->ended == ws->n && ws->waiter)
        nc_loop_stop(ws->waiter);
    pthread_mutex_unlock(&ws->lock);
    return NULL;
}

/* ---- starting ------------------------------------------------------------------- */

/* The CPUs this thread may run on, in order; their number. */
static int allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return -errno;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n > 0 ? n : -EINVAL;
}

static void workers_destroy(nc_workers *ws)
{
    nc_loop_free(ws->run_loop);
    nc__workers_routes_free(ws);
    for (unsigned i = 0; i < ws->n; i++)
        pthread_mutex_destroy(&ws->w[i].lock);
    pthread_mutex_destroy(&ws->lock);
    pthread_cond_destroy(&ws->cond);
    pthread_mutex_destroy(&ws->join_lock);
    pthread_mutex_destroy(&ws->listen_lock);
    free(ws->addrs);
    free(ws->w);
    free(ws);
}

static int workers_alloc(const nc_workers_options *o, unsigned n,
                         nc_workers **out)
{
    nc_workers *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -ENOMEM;
    ws->w = calloc(n, sizeof(*ws->w));
    if (!ws->w) {
        free(ws);
        return -ENOMEM;
    }
    if (o)
        ws->opt = *o;
    ws->n = n;
    atomic_init(&ws->stop_gen, 0);
    atomic_init(&ws->grace_ms, UINT32_MAX);
    pthread_mutex_init(&ws->lock, NULL);
    pthread_cond_init(&ws->cond, NULL);
    pthread_mutex_init(&ws->join_lock, NULL);
    pthread_mutex_init(&ws->listen_lock, NULL);
    for (unsigned i = 0; i < n; i++) {
        ws->w[i].ws = ws;
        ws->w[i].index = i;
        ws->w[i].cpu = -1;
        pthread_mutex_init(&ws->w[i].lock, NULL);
    }
    *out = ws;
    return 0;
}

/* Create the threads with the signals a server handles elsewhere
 * blocked: threads inherit the creator's mask, which is then restored. */
static int create_threads(nc_workers *ws)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = 0;
    for (unsigned i = 0; i < ws->n && rc == 0; i++) {
        struct worker *wk = &ws->w[i];
        rc = -pthread_create(&wk->thread, NULL, worker_main, wk);
        if (rc == 0)
            wk->created = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Stop and join what started, free the loops no thread took. */
static void start_failed(nc_workers *ws)
{
    nc_workers_stop(ws, 0);
    nc_workers_wait(ws);
    for (unsigned i = 0; i < ws->n; i++)
        if (!ws->w[i].created)
            nc_loop_free(ws->w[i].loop);
    workers_destroy(ws);
}

int nc_workers_start(const nc_workers_options *opts, nc_workers **out)
{
    if (!out || (opts && opts->threads > WORKERS_MAX))
        return -EINVAL;
    unsigned n = opts ? opts->threads : 0;
    if (n == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online < 1 ? 1 : online > WORKERS_MAX ? WORKERS_MAX
                                                  : (unsigned)online;
    }
    nc_workers *ws;
    int rc = workers_alloc(opts, n, &ws);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = nc_loop_new(&ws->w[i].loop);
    if (rc == 0)
        rc = nc_loop_new(&ws->run_loop);
    if (rc == 0)
        rc = nc__signals_prepare(ws->run_loop);
    if (rc == 0 && ws->opt.pin) {
        int cpus[CPU_SETSIZE];
        int ncpu = allowed_cpus(cpus, CPU_SETSIZE);
        rc = ncpu < 0 ? ncpu : 0;
        for (unsigned i = 0; i < n && rc == 0; i++)
            ws->w[i].cpu = cpus[i % (unsigned)ncpu];
    }
    if (rc < 0) {
        for (unsigned i = 0; i < n; i++)
            nc_loop_free(ws->w[i].loop);
        workers_destroy(ws);
        return rc;
    }
    rc = create_threads(ws);
    unsigned created = 0;
    for (unsigned i = 0; i < n; i++)
        created += ws->w[i].created;
    pthread_mutex_lock(&ws->lock);
    while (ws->reported < created)
        pthread_cond_wait(&ws->cond, &ws->lock);
    pthread_mutex_unlock(&ws->lock);
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = ws->w[i].start_rc;
    if (rc < 0) {
        start_failed(ws);
        return rc;
    }
    *out = ws;
    return 0;
}

/* ---- stopping and waiting ----------------------------------------------------- */

int nc_workers_stop(nc_workers *w, uint32_t grace_ms)
{
    if (!w || grace_ms > 0x7fffffffu)
        return -EINVAL;
    /* Keep the smallest grace any call asked for, then tell every
     * worker: its nc_loop_run returns and it starts the shutdown. */
    unsigned old = atomic_load(&w->grace_ms);
    while (grace_ms < old &&
           !atomic_compare_exchange_weak(&w->grace_ms, &old, grace_ms))
        continue;
    atomic_fetch_add(&w->stop_gen, 1);
    for (unsigned i = 0; i < w->n; i++) {
        struct worker *wk = &w->w[i];
        pthread_mutex_lock(&wk->lock);
        if (!wk->gone && wk->loop)
            nc_loop_stop(wk->loop);
        pthread_mutex_unlock(&wk->lock);
    }
    return 0;
}

int nc_workers_wait(nc_workers *w)
{
    if (!w)
        return -EINVAL;
    if (nc__workers_in_worker(w))
        return -EDEADLK;
    pthread_mutex_lock(&w->join_lock);
    if (!w->joined) {
        w->result = 0;
        for (unsigned i = 0; i < w->n; i++) {
            struct worker *wk = &w->w[i];
            if (!wk->created)
                continue;
            pthread_join(wk->thread, NULL);
            if (wk->run_rc < 0 && w->result == 0)
                w->result = wk->run_rc;
        }
        w->joined = true;
    }
    int rc = w->result;
    pthread_mutex_unlock(&w->join_lock);
    return rc;
}

struct run_ctx {
    nc_workers *w;
    uint32_t grace_ms;
    unsigned signals;
};

static void run_signal(nc_signal *s, int signum, void *ud)
{
    struct run_ctx *ctx = ud;
    (void)s;
    (void)signum;
    /* The first asks for a graceful stop, another one for no grace. */
    nc_workers_stop(ctx->w, ctx->signals++ == 0 ? ctx->grace_ms : 0);
}

int nc_workers_run(nc_workers *w, uint32_t grace_ms)
{
    if (!w || grace_ms > 0x7fffffffu)
        return -EINVAL;
    if (nc__workers_in_worker(w))
        return -EDEADLK;
    struct run_ctx ctx = { w, grace_ms, 0 };
    nc_loop *loop;
    nc_signal *sint, *sterm;
    pthread_mutex_lock(&w->lock);
    loop = w->run_loop;
    w->run_loop = NULL;
    pthread_mutex_unlock(&w->lock);
    int rc = loop ? 0 : nc_loop_new(&loop);
    if (rc == 0)
        rc = nc_signal_start(loop, SIGINT, run_signal, &ctx, &sint);
    if (rc == 0)
        rc = nc_signal_start(loop, SIGTERM, run_signal, &ctx, &sterm);
    bool run = false;
    if (rc == 0) {
        pthread_mutex_lock(&w->lock);
        if (w->waiter)
            rc = -EBUSY;
        else if (w->ended < w->n)
            w->waiter = loop, run = true;
        pthread_mutex_unlock(&w->lock);
    }
    if (run) {
        rc = nc_loop_run(loop, NC_RUN_FOREVER);
        pthread_mutex_lock(&w->lock);
        w->waiter = NULL;
        pthread_mutex_unlock(&w->lock);
    }
    nc_loop_free(loop);    /* ends the handlers; the mask is restored */
    if (rc == -EBUSY)
        return rc;
    if (rc < 0)
        nc_workers_stop(w, grace_ms);
    int wrc = nc_workers_wait(w);
    return rc < 0 ? rc : wrc;
}

void nc_workers_free(nc_workers *w)
{
    if (!w || nc__workers_in_worker(w))
        return;
    nc_workers_stop(w, 0);
    nc_workers_wait(w);
    workers_destroy(w);
}

/* ---- reading ----------------------------------------------------------------------- */

unsigned nc_workers_count(const nc_workers *w)
{
    return w ? w->n : 0;
}

nc_loop *nc_workers_loop(const nc_workers *w, unsigned index)
{
    return w && index < w->n ? w->w[index].loop : NULL;
}

static void stats_add(nc_loop_stats *sum, const nc_loop_stats *s)
{
    sum->iterations += s->iterations;
    sum->events += s->events;
    sum->blocked_ns += s->blocked_ns;
    sum->busy_ns += s->busy_ns;
    sum->accepted += s->accepted;
    sum->connected += s->connected;
    sum->open += s->open;
    for (int r = 0; r <= NC_CLOSE_REASON_LAST; r++)
        sum->closed[r] += s->closed[r];
    sum->connect_failed += s->connect_failed;
    sum->bytes_in += s->bytes_in;
    sum->bytes_out += s->bytes_out;
    sum->accept_errors += s->accept_errors;
    sum->fd_exhausted += s->fd_exhausted;
    sum->shed += s->shed;
    sum->evicted += s->evicted;
}

int nc_workers_stats(const nc_workers *w, nc_loop_stats *per_worker,
                     size_t n, nc_loop_stats *total)
{
    if (!w || (!per_worker && n > 0))
        return -EINVAL;
    nc_loop_stats sum;
    memset(&sum, 0, sizeof(sum));
    for (unsigned i = 0; i < w->n; i++) {
        struct worker *wk = &w->w[i];
        nc_loop_stats s;
        pthread_mutex_lock(&wk->lock);
        if (wk->gone)
            s = wk->final;
        else
            nc_loop_stats_get(wk->loop, &s);
        pthread_mutex_unlock(&wk->lock);
        if (i < n)
            per_worker[i] = s;
        stats_add(&sum, &s);
    }
    if (total)
        *total = sum;
    return (int)w->n;
}

int nc_workers_addrs(const nc_workers *w, nc_addr *out, size_t max,
                     size_t *count)
{
    if (!w || !count || (!out && max > 0))
        return -EINVAL;
    nc_workers *ws = (nc_workers *)w;
    pthread_mutex_lock(&ws->lock);
    for (size_t i = 0; i < ws->naddrs && i < max; i++)
        out[i] = ws->addrs[i];
    *count = ws->naddrs;
    pthread_mutex_unlock(&ws->lock);
    return 0;
}
