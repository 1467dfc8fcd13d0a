/*
 * test_workers.c - worker loops under load and in a graceful stop:
 * 4 workers echo for 2,000 clients, every echo correct, every connection
 * closed exactly once on the worker (thread) that opened it, with the
 * counters read from another thread all along and adding up; a stop with
 * idle connections and replies in flight (new connections refused at
 * once, the replies arriving whole, then end of stream); the deadline
 * resetting a reply nobody reads; and the fallback acceptor on a unix:
 * endpoint (and forced on TCP) spreading connections round-robin.
 *
 * Runs under ThreadSanitizer: the workers share nothing but what the
 * library shares (posts, counters), and the test reads atomics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXW 8
#define MSG_LEN 32
#define REPLY_LEN (2u << 20)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the server: per-worker state, reached through the loop ----------- */

struct wstate {                 /* written by its worker only */
    unsigned index;
    pthread_t thread;
    unsigned long opens, closes, foreign_closes;
    unsigned long long bytes;
    unsigned long by_reason[NC_CLOSE_REASON_LAST + 1];
    int last_err[NC_CLOSE_REASON_LAST + 1];
    long open_at_stop;          /* opens - closes when on_stop ran */
    atomic_ulong a_opens;       /* the same, for the test thread */
    atomic_ulong a_closes;
    atomic_ulong a_replies;     /* big replies queued */
    atomic_bool stopped;
};

struct app {
    nc_workers *w;
    struct wstate ws[MAXW];
    const char *reply;
};

static struct app app;

struct sconn {
    unsigned worker;
};

static int on_start(nc_loop *loop, unsigned index, void *ud)
{
    struct app *a = ud;
    struct wstate *s = &a->ws[index];
    s->index = index;
    s->thread = pthread_self();
    nc_loop_set_data(loop, s);
    return 0;
}

static void on_stop(nc_loop *loop, unsigned index, void *ud)
{
    struct app *a = ud;
    struct wstate *s = nc_loop_data(loop);
    assert_ptr_equal(s, &a->ws[index]);
    s->open_at_stop = (long)(s->opens - s->closes);
    atomic_store(&s->stopped, true);
}

static void srv_open(nc_conn *c, void *ud)
{
    struct wstate *s = nc_loop_data(nc_conn_loop(c));
    struct sconn *sc = malloc(sizeof(*sc));
    int small = 4096;
    (void)ud;
    assert_non_null(sc);
    assert_true(pthread_equal(pthread_self(), s->thread));
    sc->worker = s->index;
    nc_conn_set_data(c, sc);
    s->opens++;
    atomic_fetch_add(&s->a_opens, 1);
    if (app.reply)   /* big replies must queue in the library */
        setsockopt(nc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

/* Echo; a message starting with 'R' gets the big reply instead. */
static size_t srv_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct wstate *s = nc_loop_data(nc_conn_loop(c));
    (void)ud;
    s->bytes += len;
    if (app.reply && *(const char *)data == 'R') {
        assert_int_equal(nc_conn_write(c, app.reply, REPLY_LEN), 0);
        atomic_fetch_add(&s->a_replies, 1);
    } else {
        assert_int_equal(nc_conn_write(c, data, len), 0);
    }
    return len;
}

static void srv_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct wstate *s = nc_loop_data(nc_conn_loop(c));
    struct sconn *sc = ud;
    if (sc->worker != s->index || !pthread_equal(pthread_self(), s->thread))
        s->foreign_closes++;
    s->closes++;
    s->by_reason[reason]++;
    s->last_err[reason] = err;
    atomic_fetch_add(&s->a_closes, 1);
    free(sc);
}

static const nc_conn_callbacks srv_cbs = {
    .on_open = srv_open, .on_data = srv_data, .on_close = srv_close,
};

static void start_app(unsigned threads, nc_workers_accept accept)
{
    memset(&app, 0, sizeof(app));
    nc_workers_options o = {
        .threads = threads, .accept = accept,
        .on_start = on_start, .on_stop = on_stop, .ud = &app,
    };
    assert_int_equal(nc_workers_start(&o, &app.w), 0);
    assert_int_equal(nc_workers_count(app.w), threads);
}

static nc_addr first_addr(void)
{
    nc_addr a[4];
    size_t n = 0;
    assert_int_equal(nc_workers_addrs(app.w, a, 4, &n), 0);
    assert_true(n >= 1);
    return a[0];
}

static unsigned long total(atomic_ulong *first_field_of_ws0, size_t stride,
                           unsigned n)
{
    unsigned long sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += atomic_load((atomic_ulong *)((char *)first_field_of_ws0 +
                                            i * stride));
    return sum;
}

#define TOTAL(field, n) total(&app.ws[0].field, sizeof(struct wstate), (n))

/* Wait (bounded) until cond holds; polls, no fixed sleep. */
#define WAIT_FOR(cond, ms)                                              \
    do {                                                                \
        uint64_t until_ = now_ms() + (ms);                              \
        while (!(cond) && now_ms() < until_)                            \
            sched_yield();                                              \
        assert_true(cond);                                              \
    } while (0)

static uint64_t closed_sum(const nc_loop_stats *s)
{
    uint64_t sum = 0;
    for (int r = 0; r <= NC_CLOSE_REASON_LAST; r++)
        sum += s->closed[r];
    return sum;
}

/* ---- clients on a loop of the test thread ------------------------------ */

struct clients {
    nc_loop *loop;
    const char *target;
    int total, started, done, correct, failed;
    int in_flight, max_in_flight;
};

struct client {
    struct clients *cl;
    char msg[MSG_LEN];
    char got[MSG_LEN];
    size_t len;
};

static void start_clients(struct clients *cl);

static void cli_open(nc_conn *c, void *ud)
{
    struct client *k = ud;
    assert_int_equal(nc_conn_write(c, k->msg, MSG_LEN), 0);
}

static size_t cli_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct client *k = ud;
    size_t n = len < MSG_LEN - k->len ? len : MSG_LEN - k->len;
    memcpy(k->got + k->len, data, n);
    k->len += n;
    if (k->len == MSG_LEN) {
        if (memcmp(k->got, k->msg, MSG_LEN) == 0)
            k->cl->correct++;
        nc_conn_close(c);
    }
    return len;
}

static void cli_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct client *k = ud;
    struct clients *cl = k->cl;
    (void)c;
    (void)err;
    if (reason != NC_CLOSE_LOCAL)
        cl->failed++;
    cl->done++;
    cl->in_flight--;
    free(k);
    start_clients(cl);
}

static const nc_conn_callbacks cli_cbs = {
    .on_open = cli_open, .on_data = cli_data, .on_close = cli_close,
};

static void start_clients(struct clients *cl)
{
    while (cl->started < cl->total && cl->in_flight < cl->max_in_flight) {
        struct client *k = calloc(1, sizeof(*k));
        assert_non_null(k);
        k->cl = cl;
        snprintf(k->msg, MSG_LEN, "client %06d says hello", cl->started);
        memset(k->msg + strlen(k->msg), '.', MSG_LEN - strlen(k->msg));
        assert_int_equal(nc_connect(cl->loop, cl->target, NULL, &cli_cbs, k,
                                    NULL), 0);
        cl->started++;
        cl->in_flight++;
    }
}

static bool clients_done(void *arg)
{
    struct clients *cl = arg;
    return cl->done == cl->total;
}

/* ---- a thread reading the counters all along ------------------------ */

struct reader {
    atomic_bool stop;
    long reads, bad, backwards;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    nc_loop_stats prev[MAXW];
    memset(prev, 0, sizeof(prev));
    while (!atomic_load(&r->stop)) {
        nc_loop_stats per[MAXW], sum;
        int n = nc_workers_stats(app.w, per, MAXW, &sum);
        if (n <= 0)
            break;
        r->reads++;
        uint64_t open = 0;
        for (int i = 0; i < n; i++) {
            if (per[i].accepted + per[i].connected !=
                per[i].open + closed_sum(&per[i]))
                r->bad++;
            if (per[i].accepted < prev[i].accepted ||
                closed_sum(&per[i]) < closed_sum(&prev[i]))
                r->backwards++;
            open += per[i].open;
            prev[i] = per[i];
        }
        if (sum.open != open || sum.accepted != sum.open + closed_sum(&sum))
            r->bad++;
    }
    return NULL;
}

/* ---- the cases ------------------------------------------------------------- */

static void four_workers_echo_for_2000_clients(void **state)
{
    (void)state;
    const unsigned W = 4;
    int clients = under_valgrind() ? 200 : 2000;
    start_app(W, NC_WORKERS_ACCEPT_AUTO);
    assert_int_equal(nc_workers_listen(app.w, "127.0.0.1:0", NULL, &srv_cbs,
                                       NULL), NC_WORKERS_ACCEPT_REUSEPORT);
    nc_addr a = first_addr();
    char target[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&a, target, sizeof(target)) > 0);

    struct reader r = { .reads = 0 };
    atomic_init(&r.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);

    struct clients cl = { .target = target, .total = clients,
                          .max_in_flight = clients };
    assert_int_equal(nc_loop_new(&cl.loop), 0);
    start_clients(&cl);
    assert_true(run_until(cl.loop, clients_done, &cl, 60000));
    nc_loop_free(cl.loop);
    assert_int_equal(cl.correct, clients);
    assert_int_equal(cl.failed, 0);

    /* The server ends close when they see the clients' FIN. */
    WAIT_FOR(TOTAL(a_closes, W) == (unsigned long)clients, 10000);
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    assert_true(r.reads > 0);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.backwards, 0);

    nc_loop_stats per[MAXW], sum;
    assert_int_equal(nc_workers_stats(app.w, per, MAXW, &sum), (int)W);
    assert_int_equal(sum.accepted, (uint64_t)clients);
    assert_int_equal(sum.open, 0);
    assert_int_equal(closed_sum(&sum), (uint64_t)clients);
    assert_int_equal(sum.bytes_in, (uint64_t)clients * MSG_LEN);
    assert_int_equal(sum.bytes_out, (uint64_t)clients * MSG_LEN);

    assert_int_equal(nc_workers_stop(app.w, 1000), 0);
    assert_int_equal(nc_workers_wait(app.w), 0);
    for (unsigned i = 0; i < W; i++) {
        struct wstate *s = &app.ws[i];
        /* The kernel spread them: with 2,000 clients no worker is left
         * out (the chance is (3/4)^2000). */
        assert_true(s->opens > 0);
        assert_int_equal(s->closes, s->opens);
        assert_int_equal(s->foreign_closes, 0);
        assert_int_equal(s->by_reason[NC_CLOSE_PEER], s->opens);
        assert_true(atomic_load(&s->stopped));
        assert_int_equal(s->open_at_stop, 0);
        /* The counters of an ended worker are kept, and match. */
        assert_int_equal(nc_workers_stats(app.w, per, MAXW, NULL), (int)W);
        assert_int_equal(per[i].accepted, s->opens);
        assert_int_equal(per[i].closed[NC_CLOSE_PEER], s->closes);
        assert_int_equal(per[i].bytes_in, s->bytes);
        assert_true(per[i].iterations > 0);
        assert_true(per[i].blocked_ns > 0);
    }
    nc_workers_free(app.w);
}

static int raw_client(const nc_addr *a, int rcvbuf)
{
    int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (connect(fd, &a->u.sa, a->len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static bool every_worker(unsigned W, bool (*pred)(struct wstate *s))
{
    for (unsigned i = 0; i < W; i++)
        if (!pred(&app.ws[i]))
            return false;
    return true;
}

static bool has_open(struct wstate *s)
{
    return atomic_load(&s->a_opens) > 0;
}

static bool has_reply(struct wstate *s)
{
    return atomic_load(&s->a_replies) > 0;
}

/* Read until end of stream or an error: the bytes, or -errno. */
static long read_all(int fd, char *buf, size_t max)
{
    size_t got = 0;
    uint64_t until = now_ms() + 20000;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= until || !wait_readable(fd, (unsigned)(until - now)))
            return -ETIMEDOUT;
        ssize_t n = read(fd, buf + got, max - got);
        if (n == 0 || (n > 0 && (got += (size_t)n) == max))
            return (long)got;
        if (n < 0)
            return -errno;
    }
}

static char *make_reply(void)
{
    char *r = malloc(REPLY_LEN);
    assert_non_null(r);
    for (size_t i = 0; i < REPLY_LEN; i++)
        r[i] = (char)('A' + i % 19);
    return r;
}

#define MAX_CLIENTS 64

static void graceful_stop_flushes_replies_and_closes_idle(void **state)
{
    (void)state;
    const unsigned W = 2;
    char *reply = make_reply();
    start_app(W, NC_WORKERS_ACCEPT_AUTO);
    app.reply = reply;
    assert_int_equal(nc_workers_listen(app.w, "127.0.0.1:0", NULL, &srv_cbs,
                                       NULL), NC_WORKERS_ACCEPT_REUSEPORT);
    nc_addr a = first_addr();

    /* Idle clients until every worker has one: their end of stream then
     * proves that every worker began its shutdown. */
    int idle[MAX_CLIENTS], big[MAX_CLIENTS], nidle = 0, nbig = 0;
    while (!every_worker(W, has_open) && nidle < MAX_CLIENTS) {
        idle[nidle++] = raw_client(&a, 0);
        assert_true(idle[nidle - 1] >= 0);
        WAIT_FOR(TOTAL(a_opens, W) == (unsigned long)nidle, 5000);
    }
    assert_true(every_worker(W, has_open));
    /* Clients asking for a big reply, until every worker sends one. */
    while (!every_worker(W, has_reply) && nbig < MAX_CLIENTS) {
        big[nbig] = raw_client(&a, 4096);
        assert_true(big[nbig] >= 0);
        assert_int_equal(write(big[nbig], "R", 1), 1);
        nbig++;
        WAIT_FOR(TOTAL(a_replies, W) == (unsigned long)nbig, 5000);
    }
    assert_true(every_worker(W, has_reply));

    uint64_t t0 = now_ms();
    assert_int_equal(nc_workers_stop(app.w, 20000), 0);
    assert_true(now_ms() - t0 < 1000);      /* it returns at once */
    char buf[16];
    for (int i = 0; i < nidle; i++) {
        assert_int_equal(read_all(idle[i], buf, sizeof(buf)), 0);
        close(idle[i]);
    }
    /* Every worker's listener is closed: refused by the kernel. */
    assert_int_equal(raw_client(&a, 0), -ECONNREFUSED);
    /* The idle ones' on_close ran (their FIN comes a moment before);
     * the big replies are still flushing. */
    WAIT_FOR(TOTAL(a_closes, W) == (unsigned long)nidle, 5000);
    nc_loop_stats sum;
    assert_int_equal(nc_workers_stats(app.w, NULL, 0, &sum), (int)W);
    assert_int_equal(sum.open, (uint64_t)nbig);

    char *got = malloc(REPLY_LEN + 1);
    assert_non_null(got);
    for (int i = 0; i < nbig; i++) {
        assert_int_equal(read_all(big[i], got, REPLY_LEN + 1), REPLY_LEN);
        assert_memory_equal(got, reply, REPLY_LEN);
        close(big[i]);
    }
    free(got);
    assert_int_equal(nc_workers_wait(app.w), 0);
    for (unsigned i = 0; i < W; i++) {
        struct wstate *s = &app.ws[i];
        assert_int_equal(s->closes, s->opens);
        assert_int_equal(s->by_reason[NC_CLOSE_SHUTDOWN], s->opens);
        assert_int_equal(s->last_err[NC_CLOSE_SHUTDOWN], 0);
        assert_int_equal(s->foreign_closes, 0);
        assert_int_equal(s->open_at_stop, 0);
    }
    nc_workers_free(app.w);
    free(reply);
}

static void grace_deadline_resets_unread_replies(void **state)
{
    (void)state;
    char *reply = make_reply();
    start_app(2, NC_WORKERS_ACCEPT_AUTO);
    app.reply = reply;
    assert_true(nc_workers_listen(app.w, "127.0.0.1:0", NULL, &srv_cbs,
                                  NULL) > 0);
    nc_addr a = first_addr();
    int fd = raw_client(&a, 4096);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "R", 1), 1);
    WAIT_FOR(TOTAL(a_replies, 2) == 1, 5000);
    uint64_t t0 = now_ms();
    assert_int_equal(nc_workers_stop(app.w, 100), 0);
    assert_int_equal(nc_workers_wait(app.w), 0);
    uint64_t took = now_ms() - t0;
    assert_true(took >= 100);
    assert_true(took < 10000);
    char *got = malloc(REPLY_LEN);
    assert_non_null(got);
    assert_int_equal(read_all(fd, got, REPLY_LEN), -ECONNRESET);
    free(got);
    close(fd);
    unsigned long resets = 0;
    for (unsigned i = 0; i < 2; i++) {
        resets += app.ws[i].by_reason[NC_CLOSE_SHUTDOWN];
        if (app.ws[i].by_reason[NC_CLOSE_SHUTDOWN])
            assert_int_equal(app.ws[i].last_err[NC_CLOSE_SHUTDOWN], -ETIMEDOUT);
    }
    assert_int_equal(resets, 1);
    nc_workers_free(app.w);
    free(reply);
}

/* Sequential clients of a hand-off: client k lands on worker k mod W. */
static void echo_sequentially(const nc_addr *a, unsigned W, int n)
{
    char msg[MSG_LEN], back[MSG_LEN];
    for (int k = 0; k < n; k++) {
        int fd = raw_client(a, 0);
        assert_true(fd >= 0);
        memset(msg, '.', sizeof(msg));
        snprintf(msg, sizeof(msg), "sequential %d", k);
        assert_int_equal(write(fd, msg, sizeof(msg)), (long)sizeof(msg));
        assert_int_equal(read_full(fd, back, sizeof(back), 5000),
                         (long)sizeof(back));
        assert_memory_equal(msg, back, sizeof(msg));
        assert_int_equal(atomic_load(&app.ws[k % W].a_opens),
                         (unsigned long)(k / (int)W + 1));
        close(fd);
    }
}

static void fallback_acceptor_on_unix_endpoint_is_round_robin(void **state)
{
    (void)state;
    const unsigned W = 3;
    char spec[80];
    snprintf(spec, sizeof(spec), "unix:/tmp/nc-workers-%d.sock", (int)getpid());
    start_app(W, NC_WORKERS_ACCEPT_AUTO);
    assert_int_equal(nc_workers_listen(app.w, spec, NULL, &srv_cbs, NULL),
                     NC_WORKERS_ACCEPT_HANDOFF);
    nc_addr a = first_addr();
    char text[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&a, text, sizeof(text)) > 0);
    assert_string_equal(text, spec);
    echo_sequentially(&a, W, 30);
    WAIT_FOR(TOTAL(a_closes, W) == 30, 5000);
    nc_loop_stats per[MAXW];
    assert_int_equal(nc_workers_stats(app.w, per, MAXW, NULL), (int)W);
    for (unsigned i = 0; i < W; i++) {
        assert_int_equal(per[i].accepted, 10);
        assert_int_equal(per[i].closed[NC_CLOSE_PEER], 10);
        assert_int_equal(per[i].bytes_in, 10 * MSG_LEN);
    }
    assert_int_equal(nc_workers_stop(app.w, 1000), 0);
    assert_int_equal(nc_workers_wait(app.w), 0);
    assert_int_equal(raw_client(&a, 0), -ENOENT);   /* the path is gone */
    for (unsigned i = 0; i < W; i++) {
        assert_int_equal(app.ws[i].opens, 10);
        assert_int_equal(app.ws[i].closes, 10);
        assert_int_equal(app.ws[i].foreign_closes, 0);
    }
    nc_workers_free(app.w);
}

static void handoff_forced_on_tcp_with_a_limit_per_worker(void **state)
{
    (void)state;
    const unsigned W = 2;
    start_app(W, NC_WORKERS_ACCEPT_HANDOFF);
    assert_int_equal(nc_workers_listen(app.w, "127.0.0.1:0", NULL, &srv_cbs,
                                       NULL), NC_WORKERS_ACCEPT_HANDOFF);
    nc_addr a = first_addr();
    echo_sequentially(&a, W, 6);
    WAIT_FOR(TOTAL(a_closes, W) == 6, 5000);
    nc_workers_free(app.w);

    /* max_conns 1 per worker: a third open client is reset and shed. */
    start_app(W, NC_WORKERS_ACCEPT_HANDOFF);
    nc_listener_options o = { .max_conns = 1 };
    assert_int_equal(nc_workers_listen(app.w, "127.0.0.1:0", &o, &srv_cbs,
                                       NULL), NC_WORKERS_ACCEPT_HANDOFF);
    a = first_addr();
    int c1 = raw_client(&a, 0), c2 = raw_client(&a, 0);
    WAIT_FOR(TOTAL(a_opens, W) == 2, 5000);
    int c3 = raw_client(&a, 0);
    assert_true(c1 >= 0 && c2 >= 0 && c3 >= 0);
    char b;
    assert_int_equal(read_all(c3, &b, 1), -ECONNRESET);
    nc_loop_stats per[MAXW];
    assert_int_equal(nc_workers_stats(app.w, per, MAXW, NULL), (int)W);
    assert_int_equal(per[0].shed, 1);
    assert_int_equal(per[0].accepted, 1);
    assert_int_equal(per[1].accepted, 1);
    close(c1);
    close(c2);
    close(c3);
    nc_workers_free(app.w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(four_workers_echo_for_2000_clients),
        cmocka_unit_test(graceful_stop_flushes_replies_and_closes_idle),
        cmocka_unit_test(grace_deadline_resets_unread_replies),
        cmocka_unit_test(fallback_acceptor_on_unix_endpoint_is_round_robin),
        cmocka_unit_test(handoff_forced_on_tcp_with_a_limit_per_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
