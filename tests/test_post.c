/*
 * test_post.c - calls posted from other threads: each accepted call runs
 * exactly once, in order per posting thread; nc_loop_stop from another
 * thread wakes a blocked loop; posts are refused with -ESHUTDOWN once
 * nc_loop_free has started.
 *
 * What is safe around nc_loop_free: a thread may call nc_loop_post while
 * the loop is being freed (it gets -ESHUTDOWN) but not after nc_loop_free
 * has returned, when the pointer is gone. So the freeing thread must know
 * that every poster is done with the loop before free returns. Here a call
 * posted just before nc_loop_free joins the poster: it runs inside
 * nc_loop_free, after posts are refused and before any memory is
 * released, and the poster stops at its first -ESHUTDOWN.
 *
 * Runs under ThreadSanitizer: all sharing goes through the loop's post
 * queue (its mutex), thread joins, or atomics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define GUARD_MS 30000

static int calls_per_thread(void)
{
    const char *v = getenv("NC_UNDER_VALGRIND");
    return v && strcmp(v, "1") == 0 ? 10000 : 100000;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A timer that ends a run that went on too long. */
struct guard {
    nc_loop *loop;
    nc_timer *t;
    bool expired;
};

static void guard_cb(nc_timer *t, void *ud)
{
    struct guard *g = ud;
    (void)t;
    g->expired = true;
    nc_loop_stop(g->loop);
}

static void guard_start(struct guard *g, nc_loop *loop, uint64_t ms)
{
    g->loop = loop;
    g->expired = false;
    assert_int_equal(nc_timer_new(loop, guard_cb, g, &g->t), 0);
    assert_int_equal(nc_timer_start(g->t, ms, 0), 0);
}

/* ---- many threads ---------------------------------------------------------- */

struct fanin;

struct call {
    struct fanin *f;
    int thread;
    int seq;
    int ran;               /* touched only by the loop thread */
};

struct fanin {
    nc_loop *loop;
    int n;
    struct call *calls[THREADS];
    int last_seq[THREADS]; /* loop thread only */
    bool in_order;
    long total;
    int post_errors[THREADS];
};

struct poster {
    struct fanin *f;
    int id;
};

static void on_call(void *arg)
{
    struct call *c = arg;
    struct fanin *f = c->f;
    c->ran++;
    if (c->seq <= f->last_seq[c->thread])
        f->in_order = false;
    f->last_seq[c->thread] = c->seq;
    if (++f->total == (long)THREADS * f->n)
        nc_loop_stop(f->loop);
}

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    struct fanin *f = p->f;
    for (int i = 0; i < f->n; i++) {
        int rc = nc_loop_post(f->loop, on_call, &f->calls[p->id][i]);
        if (rc != 0) {
            f->post_errors[p->id] = rc;
            break;
        }
    }
    return NULL;
}

static void posts_from_four_threads_run_once_each_in_order(void **state)
{
    (void)state;
    struct fanin f = { .n = calls_per_thread(), .in_order = true };
    assert_int_equal(nc_loop_new(&f.loop), 0);
    for (int t = 0; t < THREADS; t++) {
        f.calls[t] = calloc((size_t)f.n, sizeof(struct call));
        assert_non_null(f.calls[t]);
        f.last_seq[t] = -1;
        for (int i = 0; i < f.n; i++)
            f.calls[t][i] = (struct call){ &f, t, i, 0 };
    }
    struct guard g;
    guard_start(&g, f.loop, GUARD_MS);

    pthread_t th[THREADS];
    struct poster p[THREADS];
    for (int t = 0; t < THREADS; t++) {
        p[t] = (struct poster){ &f, t };
        assert_int_equal(pthread_create(&th[t], NULL, poster_main, &p[t]), 0);
    }
    assert_int_equal(nc_loop_run(f.loop, NC_RUN_FOREVER), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);

    assert_false(g.expired);
    assert_true(f.in_order);
    assert_int_equal(f.total, (long)THREADS * f.n);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(f.post_errors[t], 0);
        for (int i = 0; i < f.n; i++)
            if (f.calls[t][i].ran != 1)
                fail_msg("thread %d call %d ran %d times", t, i,
                         f.calls[t][i].ran);
        free(f.calls[t]);
    }
    nc_timer_free(g.t);
    nc_loop_free(f.loop);
}

/* ---- stop from another thread ----------------------------------------------- */

struct stopper {
    nc_loop *loop;
    atomic_bool loop_running;
    pid_t loop_tid;
};

static void mark_running(void *arg)
{
    atomic_store(&((struct stopper *)arg)->loop_running, true);
}

/* True once thread tid sleeps in the kernel (the loop in epoll_wait). */
static bool thread_sleeping(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *end = strrchr(buf, ')');
    return end && end[1] == ' ' && end[2] == 'S';
}

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;
    nc_loop_post(s->loop, mark_running, s);
    uint64_t deadline = now_ms() + 5000;
    while (!atomic_load(&s->loop_running) && now_ms() < deadline)
        sched_yield();
    while (!thread_sleeping(s->loop_tid) && now_ms() < deadline)
        sched_yield();
    nc_loop_stop(s->loop);
    return NULL;
}

static void stop_from_another_thread_wakes_a_blocked_loop(void **state)
{
    (void)state;
    struct stopper s = { .loop_tid = gettid() };
    atomic_init(&s.loop_running, false);
    assert_int_equal(nc_loop_new(&s.loop), 0);
    struct guard g;
    guard_start(&g, s.loop, 5000);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stopper_main, &s), 0);
    assert_int_equal(nc_loop_run(s.loop, NC_RUN_FOREVER), 0);
    pthread_join(th, NULL);
    assert_false(g.expired);
    assert_true(atomic_load(&s.loop_running));
    nc_timer_free(g.t);
    nc_loop_free(s.loop);
}

/* ---- posting while the loop is freed ---------------------------------------- */

#define HAMMER_MAX 20000000L
/* Calls the poster may have queued and not yet run (until free begins),
 * so that it cannot run away from a loop thread that is slow to get the
 * CPU (valgrind runs one thread at a time). */
#define HAMMER_AHEAD 256

struct hammer {
    nc_loop *loop;
    pthread_t thread;
    long accepted;         /* written by the poster, read after join */
    int refusal;
    atomic_long executed;
    atomic_bool freeing;
    long next_expected;    /* loop thread only */
    long ran;
    bool in_order;
};

struct hammer_call {
    struct hammer *h;
    long seq;
};

static void hammer_call_run(void *arg)
{
    struct hammer_call *c = arg;
    struct hammer *h = c->h;
    if (c->seq != h->next_expected)
        h->in_order = false;
    h->next_expected = c->seq + 1;
    h->ran++;
    atomic_fetch_add(&h->executed, 1);
    free(c);
}

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (long i = 0; i < HAMMER_MAX; i++) {
        while (h->accepted - atomic_load(&h->executed) > HAMMER_AHEAD &&
               !atomic_load(&h->freeing))
            sched_yield();
        struct hammer_call *c = malloc(sizeof(*c));
        if (!c)
            break;
        *c = (struct hammer_call){ h, i };
        int rc = nc_loop_post(h->loop, hammer_call_run, c);
        if (rc != 0) {
            /* Refused: nothing was kept, and h->loop is not touched again. */
            free(c);
            h->refusal = rc;
            break;
        }
        h->accepted++;
    }
    return NULL;
}

/* Runs inside nc_loop_free, after posts are refused: the poster is bound
 * to stop, and after the join it no longer holds the loop pointer. */
static void join_hammer(void *arg)
{
    struct hammer *h = arg;
    pthread_join(h->thread, NULL);
}

struct late_post {
    nc_loop *loop;
    int rc;
    int ran;
};

static void late_ran(void *arg)
{
    ((struct late_post *)arg)->ran++;
}

static void post_from_inside_free(void *arg)
{
    struct late_post *lp = arg;
    lp->rc = nc_loop_post(lp->loop, late_ran, lp);
}

static void posts_during_free_run_once_or_get_eshutdown(void **state)
{
    (void)state;
    struct hammer h = { .in_order = true };
    atomic_init(&h.executed, 0);
    atomic_init(&h.freeing, false);
    assert_int_equal(nc_loop_new(&h.loop), 0);
    struct late_post lp = { .loop = h.loop, .rc = 1 };
    assert_int_equal(pthread_create(&h.thread, NULL, hammer_main, &h), 0);

    /* Let the loop run some of the calls live, then free it mid-stream. */
    uint64_t deadline = now_ms() + 10000;
    while (h.ran < 1000 && now_ms() < deadline)
        assert_int_equal(nc_loop_run(h.loop, NC_RUN_NOWAIT), 0);
    assert_true(h.ran >= 1000);
    atomic_store(&h.freeing, true);
    assert_int_equal(nc_loop_post(h.loop, post_from_inside_free, &lp), 0);
    assert_int_equal(nc_loop_post(h.loop, join_hammer, &h), 0);
    nc_loop_free(h.loop);

    assert_int_equal(h.refusal, -ESHUTDOWN);
    assert_int_equal(h.ran, h.accepted);
    assert_true(h.in_order);
    assert_int_equal(lp.rc, -ESHUTDOWN);
    assert_int_equal(lp.ran, 0);
}

static void post_rejects_bad_arguments(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(nc_loop_post(NULL, free, NULL), -EINVAL);
    assert_int_equal(nc_loop_post(loop, NULL, NULL), -EINVAL);
    nc_loop_free(loop);
    nc_loop_stop(NULL);
    nc_loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(posts_from_four_threads_run_once_each_in_order),
        cmocka_unit_test(stop_from_another_thread_wakes_a_blocked_loop),
        cmocka_unit_test(posts_during_free_run_once_or_get_eshutdown),
        cmocka_unit_test(post_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
