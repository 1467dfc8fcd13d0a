/*
 * test_loop.c - the event loop: readiness delivery on real fds, interest
 * changes, events dropped for watchers stopped earlier in the same batch,
 * run modes, deferred calls, and teardown of a loop with live things.
 *
 * Every case is bounded by a watchdog thread that calls nc_loop_stop()
 * (which may come from any thread) if a run is still going after
 * WATCHDOG_MS; the case then fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_MS 3000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- watchdog: stops the loop from another thread after a deadline ---- */

struct watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    atomic_bool fired;
    nc_loop *loop;
};

static void *watchdog_main(void *arg)
{
    struct watchdog *wd = arg;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += WATCHDOG_MS / 1000;
    pthread_mutex_lock(&wd->lock);
    while (!wd->done) {
        if (pthread_cond_timedwait(&wd->cond, &wd->lock, &deadline) ==
            ETIMEDOUT) {
            if (!wd->done) {
                atomic_store(&wd->fired, true);
                nc_loop_stop(wd->loop);
            }
            break;
        }
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

static void watchdog_start(struct watchdog *wd, nc_loop *loop)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&wd->lock, NULL);
    wd->done = false;
    atomic_init(&wd->fired, false);
    wd->loop = loop;
    assert_int_equal(pthread_create(&wd->thread, NULL, watchdog_main, wd), 0);
}

/* Returns true if the watchdog had to stop the loop. */
static bool watchdog_end(struct watchdog *wd)
{
    pthread_mutex_lock(&wd->lock);
    wd->done = true;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->lock);
    return atomic_load(&wd->fired);
}

/* ---- shared fixtures ------------------------------------------------------- */

struct rec {
    int calls;
    unsigned events;
    int fd;
};

static void record_cb(nc_watch *w, int fd, unsigned events, void *ud)
{
    struct rec *r = ud;
    (void)w;
    r->calls++;
    r->events |= events;
    r->fd = fd;
}

/* Every case gets a fresh loop and a watchdog on it; the case fails if
 * the watchdog had to stop a run. */
static int setup_loop(void **state)
{
    struct watchdog *wd = calloc(1, sizeof(*wd));
    nc_loop *loop = NULL;
    if (!wd || nc_loop_new(&loop) < 0) {
        free(wd);
        return -1;
    }
    watchdog_start(wd, loop);
    *state = wd;
    return 0;
}

static int teardown_loop(void **state)
{
    struct watchdog *wd = *state;
    bool fired = watchdog_end(wd);
    nc_loop_free(wd->loop);
    free(wd);
    if (fired)
        print_error("the watchdog stopped a run after %d ms\n", WATCHDOG_MS);
    return fired ? -1 : 0;
}

static nc_loop *loop_of(void **state)
{
    return ((struct watchdog *)*state)->loop;
}

static void write_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void make_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
}

static void close_pair(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

/* A watcher that records its calls into r. */
static nc_watch *watch_rec(nc_loop *loop, int fd, unsigned events,
                           struct rec *r)
{
    nc_watch *w = NULL;
    assert_int_equal(nc_watch_start(loop, fd, events, record_cb, r, &w), 0);
    return w;
}

/* ---- readiness ------------------------------------------------------------- */

static void pipe_readable_after_write_is_reported(void **state)
{
    nc_loop *loop = loop_of(state);
    int p[2];
    make_pipe(p);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, p[0], NC_READABLE, &r);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);

    write_byte(p[1]);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(r.calls, 1);
    assert_true(r.events & NC_READABLE);
    assert_int_equal(r.fd, p[0]);

    /* Level-triggered: still readable, so reported again. */
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 2);
    nc_watch_close(w);
    close_pair(p);
}

static void socketpair_writable_is_reported(void **state)
{
    nc_loop *loop = loop_of(state);
    int sv[2];
    make_socketpair(sv);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, sv[0], NC_WRITABLE, &r);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.events & (NC_READABLE | NC_WRITABLE), NC_WRITABLE);
    nc_watch_close(w);
    close_pair(sv);
}

static void interest_zero_reports_nothing_until_writable_is_asked(void **state)
{
    nc_loop *loop = loop_of(state);
    int sv[2];
    make_socketpair(sv);
    write_byte(sv[1]);   /* readable too, but nobody asks */
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, sv[0], 0, &r);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);

    assert_int_equal(nc_watch_set(w, NC_WRITABLE), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.events, NC_WRITABLE);

    assert_int_equal(nc_watch_set(w, 0), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 1);

    r.events = 0;
    assert_int_equal(nc_watch_set(w, NC_READABLE), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.events, NC_READABLE);
    nc_watch_close(w);
    close_pair(sv);
}

static void hangup_reported_when_socketpair_peer_closes(void **state)
{
    nc_loop *loop = loop_of(state);
    int sv[2];
    make_socketpair(sv);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, sv[0], NC_READABLE, &r);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(r.calls, 0);
    close(sv[1]);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(r.calls, 1);
    assert_true(r.events & NC_HANGUP);
    nc_watch_close(w);
    close(sv[0]);
}

static void high_fd_numbers_grow_the_table(void **state)
{
    nc_loop *loop = loop_of(state);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 1000) {
        print_message("RLIMIT_NOFILE %lu is too low for this test\n",
                      (unsigned long)rl.rlim_cur);
        skip();
    }
    int want = rl.rlim_cur > 20001 ? 20000 : (int)rl.rlim_cur - 1;
    int p[2];
    make_pipe(p);
    int high = fcntl(p[0], F_DUPFD_CLOEXEC, want);
    assert_true(high >= want);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, high, NC_READABLE, &r);
    write_byte(p[1]);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, high);
    nc_watch_close(w);
    close(high);
    close_pair(p);
}

/* ---- watchers stopped earlier in the same batch ---------------------------- */

struct pair {
    nc_loop *loop;
    int fds[2];            /* read ends, both made ready */
    int writers[2];
    nc_watch *w[2];
    int calls[2];
    bool lower;            /* change the other's interest, not close it */
    bool reuse;            /* close it and reuse its fd number */
    int spare[2];          /* a fresh, never-ready pipe */
    nc_watch *replacement;
    struct rec replaced;
};

static void pair_cb(nc_watch *w, int fd, unsigned events, void *ud)
{
    struct pair *p = ud;
    int me = w == p->w[0] ? 0 : 1;
    int other = 1 - me;
    (void)fd;
    (void)events;
    p->calls[me]++;
    if (!p->w[other])
        return;
    if (p->lower) {
        /* Still watched, but no longer for reading (a pipe's read end is
         * never writable). */
        assert_int_equal(nc_watch_set(p->w[other], NC_WRITABLE), 0);
        return;
    }
    nc_watch_close(p->w[other]);
    p->w[other] = NULL;
    if (p->reuse) {
        /* Same fd number, a different (idle) file, a new watcher: the
         * event already fetched for the old one must not reach it. */
        assert_int_equal(dup2(p->spare[0], p->fds[other]), p->fds[other]);
        assert_int_equal(nc_watch_start(p->loop, p->fds[other], NC_READABLE,
                                        record_cb, &p->replaced,
                                        &p->replacement), 0);
    }
}

static void run_pair(nc_loop *loop, bool lower, bool reuse)
{
    struct pair p = { .loop = loop, .lower = lower, .reuse = reuse };
    for (int i = 0; i < 2; i++) {
        int fds[2];
        make_pipe(fds);
        p.fds[i] = fds[0];
        p.writers[i] = fds[1];
    }
    assert_int_equal(pipe2(p.spare, O_NONBLOCK | O_CLOEXEC), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(nc_watch_start(loop, p.fds[i], NC_READABLE, pair_cb,
                                        &p, &p.w[i]), 0);
    /* Both ready before the loop polls: one batch holds both events. */
    write_byte(p.writers[0]);
    write_byte(p.writers[1]);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(p.calls[0] + p.calls[1], 1);
    if (reuse) {
        assert_int_equal(p.replaced.calls, 0);
        assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
        assert_int_equal(p.replaced.calls, 0);
        nc_watch_close(p.replacement);
    }
    nc_watch_close(p.w[0]);
    nc_watch_close(p.w[1]);
    for (int i = 0; i < 2; i++) {
        close(p.fds[i]);
        close(p.writers[i]);
        close(p.spare[i]);
    }
}

static void watcher_closed_by_other_callback_in_batch_gets_no_event(
    void **state)
{
    run_pair(loop_of(state), false, false);
}

static void new_watcher_on_reused_fd_in_batch_gets_no_stale_event(
    void **state)
{
    run_pair(loop_of(state), false, true);
}

static void close_self_cb(nc_watch *w, int fd, unsigned events, void *ud)
{
    (void)fd;
    (void)events;
    (*(int *)ud)++;
    nc_watch_close(w);
}

static void interest_changed_in_batch_drops_pending_event(void **state)
{
    run_pair(loop_of(state), true, false);
}

static void watcher_may_close_itself_in_its_callback(void **state)
{
    nc_loop *loop = loop_of(state);
    int p[2];
    make_pipe(p);
    int calls = 0;
    nc_watch *w;
    assert_int_equal(nc_watch_start(loop, p[0], NC_READABLE, close_self_cb,
                                    &calls, &w), 0);
    write_byte(p[1]);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    assert_int_equal(calls, 1);
    close_pair(p);
}

/* ---- start errors ---------------------------------------------------------- */

static void watch_start_rejects_closed_duplicate_and_regular_fds(void **state)
{
    nc_loop *loop = loop_of(state);
    struct rec r = { 0 };
    nc_watch *w = NULL, *w2 = NULL;
    int p[2];
    make_pipe(p);
    close(p[1]);
    assert_int_equal(nc_watch_start(loop, p[1], NC_READABLE, record_cb, &r,
                                    &w), -EBADF);
    w = watch_rec(loop, p[0], NC_READABLE, &r);
    assert_int_equal(nc_watch_start(loop, p[0], NC_READABLE, record_cb, &r,
                                    &w2), -EEXIST);
    assert_int_equal(nc_watch_start(loop, p[0], 0, NULL, &r, &w2), -EINVAL);

    char path[] = "/tmp/test_loop_XXXXXX";
    int f = mkstemp(path);
    assert_true(f >= 0);
    unlink(path);
    assert_int_equal(nc_watch_start(loop, f, NC_READABLE, record_cb, &r,
                                    &w2), -EPERM);
    assert_int_equal(nc_watch_start(loop, f, 0, record_cb, &r, &w2), -EPERM);
    close(f);

    /* A failed start leaves the fd free for a later watcher. */
    nc_watch_close(w);
    w = watch_rec(loop, p[0], NC_READABLE, &r);
    nc_watch_close(w);
    nc_watch_close(NULL);
    close(p[0]);
}

static void watch_set_on_fd_closed_behind_its_back_fails(void **state)
{
    nc_loop *loop = loop_of(state);
    int sv[2];
    make_socketpair(sv);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, sv[0], NC_READABLE, &r);
    close(sv[0]);
    assert_int_equal(nc_watch_set(w, NC_WRITABLE), -EBADF);
    nc_watch_close(w);
    close(sv[1]);
}

/* A callback that closes its own fd without stopping its watcher (a
 * misuse the library cannot prevent): the watcher falls silent, as with
 * epoll, which forgets a closed file, instead of waking the loop forever. */
static void close_own_fd(nc_watch *w, int fd, unsigned events, void *ud)
{
    struct rec *r = ud;
    (void)w;
    (void)events;
    r->calls++;
    close(fd);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static bool called(void *arg)
{
    return ((struct rec *)arg)->calls > 0;
}

static void watcher_whose_fd_closed_behind_it_falls_silent(void **state)
{
    nc_loop *loop = loop_of(state);
    int sv[2];
    make_socketpair(sv);
    struct rec r = { 0 };
    nc_watch *w = NULL;
    assert_int_equal(nc_watch_start(loop, sv[0], NC_READABLE, close_own_fd,
                                    &r, &w), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_true(run_until(loop, called, &r, 2000));
    nc_loop_stats before, after;
    assert_int_equal(nc_loop_stats_get(loop, &before), 0);
    run_until(loop, never, NULL, 100);
    assert_int_equal(nc_loop_stats_get(loop, &after), 0);
    assert_int_equal(r.calls, 1);
    assert_true(after.iterations - before.iterations < 20);
    nc_watch_close(w);
    close(sv[1]);
}

/* ---- run modes ------------------------------------------------------------- */

static void timer_cb_count(nc_timer *t, void *ud)
{
    (void)t;
    (*(int *)ud)++;
}

static void run_default_returns_when_nothing_is_active(void **state)
{
    nc_loop *loop = loop_of(state);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);

    int p[2];
    make_pipe(p);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, p[0], NC_READABLE, &r);
    nc_watch_close(w);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);

    /* A one-shot timer keeps it running until it has fired. */
    int fired = 0;
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, timer_cb_count, &fired, &t), 0);
    assert_int_equal(nc_timer_start(t, 5, 0), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(fired, 1);
    nc_timer_free(t);
    close_pair(p);
}

static void run_nowait_returns_at_once(void **state)
{
    nc_loop *loop = loop_of(state);
    int p[2];
    make_pipe(p);
    struct rec r = { 0 };
    nc_watch *w = watch_rec(loop, p[0], NC_READABLE, &r);
    nc_timer *t;
    int fired = 0;
    assert_int_equal(nc_timer_new(loop, timer_cb_count, &fired, &t), 0);
    assert_int_equal(nc_timer_start(t, 60000, 0), 0);

    uint64_t t0 = now_ms();
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    uint64_t elapsed = now_ms() - t0;
    assert_true(elapsed < WATCHDOG_MS / 2);
    assert_int_equal(r.calls, 0);
    assert_int_equal(fired, 0);
    nc_timer_free(t);
    nc_watch_close(w);
    close_pair(p);
}

/* A writable socket's callback: re-enters the loop, or stops it. */
struct nested {
    nc_loop *loop;
    bool stop;
    int calls;
    int rc;
};

static void nested_cb(nc_watch *w, int fd, unsigned events, void *ud)
{
    struct nested *n = ud;
    (void)w;
    (void)fd;
    (void)events;
    n->calls++;
    if (n->stop)
        nc_loop_stop(n->loop);
    else
        n->rc = nc_loop_run(n->loop, NC_RUN_NOWAIT);
}

static void run_nested(nc_loop *loop, struct nested *n, nc_run_mode mode)
{
    int sv[2];
    make_socketpair(sv);
    nc_watch *w;
    assert_int_equal(nc_watch_start(loop, sv[0], NC_WRITABLE, nested_cb, n,
                                    &w), 0);
    assert_int_equal(nc_loop_run(loop, mode), 0);
    assert_int_equal(n->calls, 1);
    nc_watch_close(w);
    close_pair(sv);
}

static void run_from_inside_a_callback_returns_ebusy(void **state)
{
    struct nested n = { .loop = loop_of(state) };
    run_nested(n.loop, &n, NC_RUN_ONCE);
    assert_int_equal(n.rc, -EBUSY);
}

static void stop_from_callback_ends_forever_run(void **state)
{
    struct nested n = { .loop = loop_of(state), .stop = true };
    run_nested(n.loop, &n, NC_RUN_FOREVER);
}

/* ---- deferred calls -------------------------------------------------------- */

struct trace {
    nc_loop *loop;
    char log[16];
    int n;
    nc_watch *w[2];
};

static void trace_add(struct trace *t, char c)
{
    assert_true(t->n < (int)sizeof(t->log) - 1);
    t->log[t->n++] = c;
}

static void deferred_c(void *arg)
{
    trace_add(arg, 'C');
}

static void deferred_a(void *arg)
{
    struct trace *t = arg;
    trace_add(t, 'A');
    assert_int_equal(nc_loop_defer(t->loop, deferred_c, t), 0);
}

static void deferred_b(void *arg)
{
    trace_add(arg, 'B');
}

static void trace_cb(nc_watch *w, int fd, unsigned events, void *ud)
{
    struct trace *t = ud;
    (void)w;
    (void)fd;
    (void)events;
    trace_add(t, 'w');
    if (t->n == 1) {
        assert_int_equal(nc_loop_defer(t->loop, deferred_a, t), 0);
        assert_int_equal(nc_loop_defer(t->loop, deferred_b, t), 0);
    }
}

static void defer_runs_in_order_after_the_whole_batch(void **state)
{
    nc_loop *loop = loop_of(state);
    struct trace t = { .loop = loop };
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    assert_int_equal(nc_watch_start(loop, a[0], NC_READABLE, trace_cb, &t,
                                    &t.w[0]), 0);
    assert_int_equal(nc_watch_start(loop, b[0], NC_READABLE, trace_cb, &t,
                                    &t.w[1]), 0);
    write_byte(a[1]);
    write_byte(b[1]);
    assert_int_equal(nc_loop_run(loop, NC_RUN_ONCE), 0);
    t.log[t.n] = '\0';
    assert_string_equal(t.log, "wwABC");
    assert_int_equal(nc_loop_defer(loop, NULL, NULL), -EINVAL);
    nc_watch_close(t.w[0]);
    nc_watch_close(t.w[1]);
    close_pair(a);
    close_pair(b);
}

/* ---- teardown -------------------------------------------------------------- */

static void never_signal(nc_signal *s, int signum, void *ud)
{
    (void)s;
    (void)signum;
    (void)ud;
}

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

static void loop_free_releases_live_watchers_timers_and_signals(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    int p[2], sv[2];
    make_pipe(p);
    make_socketpair(sv);
    struct rec r = { 0 };
    watch_rec(loop, p[0], NC_READABLE, &r);   /* left for free to release */
    watch_rec(loop, sv[0], 0, &r);
    int fired = 0;
    nc_timer *t1, *t2, *t3;
    assert_int_equal(nc_timer_new(loop, timer_cb_count, &fired, &t1), 0);
    assert_int_equal(nc_timer_new(loop, timer_cb_count, &fired, &t2), 0);
    assert_int_equal(nc_timer_new(loop, timer_cb_count, &fired, &t3), 0);
    assert_int_equal(nc_timer_start(t1, 1000, 0), 0);
    assert_int_equal(nc_timer_start(t2, 5, 5), 0);

    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    nc_signal *s;
    assert_int_equal(nc_signal_start(loop, SIGUSR2, never_signal, NULL, &s),
                     0);
    int ran = 0;
    assert_int_equal(nc_loop_defer(loop, count_call, &ran), 0);
    assert_int_equal(nc_loop_post(loop, count_call, &ran), 0);

    nc_loop_free(loop);
    /* The posted and the deferred call both still ran, once each. */
    assert_int_equal(ran, 2);
    assert_int_equal(fired, 0);
    assert_int_equal(r.calls, 0);
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    assert_int_equal(sigismember(&after, SIGUSR2),
                     sigismember(&before, SIGUSR2));
    close_pair(p);
    close_pair(sv);
}

static void loop_now_advances_in_milliseconds(void **state)
{
    nc_loop *loop = loop_of(state);
    int fired = 0;
    nc_timer *t;
    assert_int_equal(nc_timer_new(loop, timer_cb_count, &fired, &t), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_NOWAIT), 0);
    uint64_t before = nc_loop_now(loop);
    assert_int_equal(nc_timer_start(t, 20, 0), 0);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    assert_int_equal(fired, 1);
    assert_true(nc_loop_now(loop) >= before + 20);
    nc_timer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup_loop, teardown_loop)
        T(pipe_readable_after_write_is_reported),
        T(socketpair_writable_is_reported),
        T(interest_zero_reports_nothing_until_writable_is_asked),
        T(hangup_reported_when_socketpair_peer_closes),
        T(high_fd_numbers_grow_the_table),
        T(watcher_closed_by_other_callback_in_batch_gets_no_event),
        T(new_watcher_on_reused_fd_in_batch_gets_no_stale_event),
        T(interest_changed_in_batch_drops_pending_event),
        T(watcher_may_close_itself_in_its_callback),
        T(watch_start_rejects_closed_duplicate_and_regular_fds),
        T(watch_set_on_fd_closed_behind_its_back_fails),
        T(watcher_whose_fd_closed_behind_it_falls_silent),
        T(run_default_returns_when_nothing_is_active),
        T(run_nowait_returns_at_once),
        T(run_from_inside_a_callback_returns_ebusy),
        T(stop_from_callback_ends_forever_run),
        T(defer_runs_in_order_after_the_whole_batch),
        T(loop_now_advances_in_milliseconds),
        cmocka_unit_test(loop_free_releases_live_watchers_timers_and_signals),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
