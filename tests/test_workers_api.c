/*
 * test_workers_api.c - the workers' life and contract: threads 0 means
 * one per CPU, pinning puts worker i on the i-th CPU, a failing on_start
 * fails the start and leaves nothing running, posts run on their worker
 * exactly once (also posts to all workers while they stop), stop from a
 * signal (nc_workers_run, and an nc_signal of a worker), and every bad
 * argument refused without a change.
 *
 * Runs under ThreadSanitizer.
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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXW 8

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct rec {
    pthread_t thread[MAXW];
    atomic_int started[MAXW];
    atomic_int stopped[MAXW];
    int fail_index;         /* on_start of this worker fails; -1: none */
    int cpu[MAXW];          /* the one CPU each worker may run on */
    int ncpus[MAXW];
    _Atomic(nc_workers *) aw;   /* for callbacks that stop */
};

static int rec_start(nc_loop *loop, unsigned index, void *ud)
{
    struct rec *r = ud;
    cpu_set_t set;
    (void)loop;
    r->thread[index] = pthread_self();
    atomic_fetch_add(&r->started[index], 1);
    if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) == 0) {
        r->ncpus[index] = CPU_COUNT(&set);
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) {
                r->cpu[index] = c;
                break;
            }
    }
    return (int)index == r->fail_index ? -EPROTO : 0;
}

static void rec_stop(nc_loop *loop, unsigned index, void *ud)
{
    struct rec *r = ud;
    (void)loop;
    assert_true(pthread_equal(pthread_self(), r->thread[index]));
    atomic_fetch_add(&r->stopped[index], 1);
}

static nc_workers *start(struct rec *r, unsigned threads, bool pin)
{
    nc_workers_options o = { .threads = threads, .pin = pin,
                             .on_start = rec_start, .on_stop = rec_stop,
                             .ud = r };
    nc_workers *w = NULL;
    assert_int_equal(nc_workers_start(&o, &w), 0);
    atomic_store(&r->aw, w);
    return w;
}

/* ---- life ------------------------------------------------------------------ */

static void zero_threads_means_one_per_cpu(void **state)
{
    (void)state;
    struct rec r = { .fail_index = -1 };
    nc_workers *w = start(&r, 0, false);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(nc_workers_count(w), (unsigned)cpus);
    for (long i = 0; i < cpus; i++) {
        assert_int_equal(atomic_load(&r.started[i]), 1);
        assert_non_null(nc_workers_loop(w, (unsigned)i));
    }
    assert_null(nc_workers_loop(w, (unsigned)cpus));
    nc_workers_free(w);   /* stops and joins by itself */
    for (long i = 0; i < cpus; i++)
        assert_int_equal(atomic_load(&r.stopped[i]), 1);
}

static void pin_puts_worker_i_on_the_ith_cpu(void **state)
{
    (void)state;
    cpu_set_t set;
    int allowed[CPU_SETSIZE], n = 0;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            allowed[n++] = c;
    struct rec r = { .fail_index = -1 };
    const unsigned W = 3;       /* one more than this machine's CPUs */
    nc_workers *w = start(&r, W, true);
    for (unsigned i = 0; i < W; i++) {
        assert_int_equal(r.ncpus[i], 1);
        assert_int_equal(r.cpu[i], allowed[i % (unsigned)n]);
    }
    nc_workers_free(w);

    /* Without pin: every CPU of the process. */
    struct rec r2 = { .fail_index = -1 };
    w = start(&r2, 2, false);
    assert_int_equal(r2.ncpus[0], n);
    nc_workers_free(w);
}

static void a_failing_on_start_fails_the_start(void **state)
{
    (void)state;
    struct rec r = { .fail_index = 1 };
    nc_workers_options o = { .threads = 3, .on_start = rec_start,
                             .on_stop = rec_stop, .ud = &r };
    nc_workers *w = (nc_workers *)&r;    /* must stay untouched */
    assert_int_equal(nc_workers_start(&o, &w), -EPROTO);
    assert_ptr_equal(w, (nc_workers *)&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&r.started[i]), 1);
    /* on_stop for those whose on_start succeeded, and only for them. */
    assert_int_equal(atomic_load(&r.stopped[0]), 1);
    assert_int_equal(atomic_load(&r.stopped[1]), 0);
    assert_int_equal(atomic_load(&r.stopped[2]), 1);
}

/* ---- posts ---------------------------------------------------------------- */

struct posted {
    struct rec *r;
    nc_workers *w;
    atomic_long runs;
    atomic_long wrong;      /* ran on another thread or with another loop */
    atomic_int rc_wait, rc_listen, rc_run;
};

static void count_call(nc_loop *loop, unsigned index, void *arg)
{
    struct posted *p = arg;
    if (!pthread_equal(pthread_self(), p->r->thread[index]) ||
        loop != nc_workers_loop(p->w, index))
        atomic_fetch_add(&p->wrong, 1);
    atomic_fetch_add(&p->runs, 1);
}

struct poster {
    struct posted *p;
    long accepted;         /* the sum of what post_all returned */
    long rounds;
    atomic_bool go_stop;
};

static void *poster_main(void *arg)
{
    struct poster *ps = arg;
    for (;;) {
        int n = nc_workers_post_all(ps->p->w, count_call, ps->p);
        if (n < 0)
            break;
        ps->accepted += n;
        if (++ps->rounds == 200)
            atomic_store(&ps->go_stop, true);
        if (n == 0)        /* every worker has ended */
            break;
    }
    return NULL;
}

static void posts_to_all_while_they_stop_run_once_each(void **state)
{
    (void)state;
    struct rec r = { .fail_index = -1 };
    nc_workers *w = start(&r, 3, false);
    struct posted p = { .r = &r, .w = w };
    struct poster ps = { .p = &p };
    atomic_init(&ps.go_stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, poster_main, &ps), 0);
    uint64_t until = now_ms() + 5000;
    while (!atomic_load(&ps.go_stop) && now_ms() < until)
        sched_yield();
    assert_true(atomic_load(&ps.go_stop));
    assert_int_equal(nc_workers_stop(w, 1000), 0);
    pthread_join(th, NULL);
    assert_int_equal(nc_workers_wait(w), 0);
    /* Every call post_all counted ran exactly once, on its worker. */
    assert_int_equal(atomic_load(&p.runs), ps.accepted);
    assert_true(ps.accepted >= 200);
    assert_int_equal(atomic_load(&p.wrong), 0);
    assert_int_equal(nc_workers_post(w, 0, count_call, &p), -ESHUTDOWN);
    assert_int_equal(nc_workers_post_all(w, count_call, &p), 0);
    nc_workers_free(w);
}

/* From inside a worker, the calls that would wait for the workers. */
static void call_from_worker(nc_loop *loop, unsigned index, void *arg)
{
    struct posted *p = arg;
    (void)loop;
    (void)index;
    atomic_store(&p->rc_wait, nc_workers_wait(p->w));
    atomic_store(&p->rc_listen, nc_workers_listen(p->w, "127.0.0.1:0", NULL,
                                                  NULL, NULL));
    atomic_store(&p->rc_run, nc_workers_run(p->w, 0));
    atomic_fetch_add(&p->runs, 1);
}

static void bad_arguments_are_refused_and_change_nothing(void **state)
{
    (void)state;
    nc_workers *w = NULL;
    nc_workers_options many = { .threads = 1025 };
    assert_int_equal(nc_workers_start(&many, &w), -EINVAL);
    assert_int_equal(nc_workers_start(NULL, NULL), -EINVAL);
    assert_null(w);

    struct rec r = { .fail_index = -1 };
    w = start(&r, 2, false);
    struct posted p = { .r = &r, .w = w };
    assert_int_equal(nc_workers_post(NULL, 0, count_call, &p), -EINVAL);
    assert_int_equal(nc_workers_post(w, 2, count_call, &p), -EINVAL);
    assert_int_equal(nc_workers_post(w, 0, NULL, &p), -EINVAL);
    assert_int_equal(nc_workers_post_all(w, NULL, &p), -EINVAL);
    assert_int_equal(nc_workers_post_all(NULL, count_call, &p), -EINVAL);
    assert_int_equal(nc_workers_stop(NULL, 0), -EINVAL);
    assert_int_equal(nc_workers_stop(w, 0x80000000u), -EINVAL);
    assert_int_equal(nc_workers_run(w, 0x80000000u), -EINVAL);
    assert_int_equal(nc_workers_wait(NULL), -EINVAL);
    assert_int_equal(nc_workers_stats(NULL, NULL, 0, NULL), -EINVAL);
    assert_int_equal(nc_workers_stats(w, NULL, 1, NULL), -EINVAL);
    size_t n = 99;
    assert_int_equal(nc_workers_addrs(w, NULL, 1, &n), -EINVAL);
    assert_int_equal(nc_workers_addrs(w, NULL, 0, NULL), -EINVAL);
    assert_int_equal(nc_workers_count(NULL), 0);
    assert_null(nc_workers_loop(NULL, 0));

    /* Bad endpoints, and one in use: nothing is bound anywhere. */
    assert_int_equal(nc_workers_listen(w, "[::1:7000", NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:70000", NULL, NULL,
                                       NULL), -ERANGE);
    assert_int_equal(nc_workers_listen(NULL, "127.0.0.1:0", NULL, NULL,
                                       NULL), -EINVAL);
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    nc_addr ba = { .len = sizeof(struct sockaddr_in) };
    ba.u.in4.sin_family = AF_INET;
    ba.u.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(busy, &ba.u.sa, ba.len), 0);
    assert_int_equal(listen(busy, 1), 0);
    socklen_t bl = ba.len;
    assert_int_equal(getsockname(busy, &ba.u.sa, &bl), 0);
    char spec[NC_ADDRSTRLEN];
    assert_true(nc_addr_format(&ba, spec, sizeof(spec)) > 0);
    assert_int_equal(nc_workers_listen(w, spec, NULL, NULL, NULL),
                     -EADDRINUSE);
    close(busy);
    assert_int_equal(nc_workers_addrs(w, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    char path[64];
    snprintf(path, sizeof(path), "unix:/tmp/nc-wapi-%d.sock", (int)getpid());
    nc_workers_free(w);

    /* Forcing SO_REUSEPORT on a unix: path cannot work. */
    nc_workers_options o = { .threads = 2,
                             .accept = NC_WORKERS_ACCEPT_REUSEPORT };
    assert_int_equal(nc_workers_start(&o, &w), 0);
    assert_int_equal(nc_workers_listen(w, path, NULL, NULL, NULL),
                     -ENOPROTOOPT);
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:0", NULL, NULL, NULL),
                     NC_WORKERS_ACCEPT_REUSEPORT);
    assert_int_equal(nc_workers_addrs(w, NULL, 0, &n), 0);
    assert_int_equal(n, 1);

    /* From a worker: what would wait for the workers is refused. */
    struct posted q = { .r = &r, .w = w };
    assert_int_equal(nc_workers_post(w, 1, call_from_worker, &q), 0);
    nc_workers_stop(w, 0);
    assert_int_equal(nc_workers_wait(w), 0);
    assert_int_equal(atomic_load(&q.runs), 1);
    assert_int_equal(atomic_load(&q.rc_wait), -EDEADLK);
    assert_int_equal(atomic_load(&q.rc_listen), -EDEADLK);
    assert_int_equal(atomic_load(&q.rc_run), -EDEADLK);
    /* Stopped: listening is over; stop and wait again are harmless. */
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:0", NULL, NULL, NULL),
                     -ESHUTDOWN);
    assert_int_equal(nc_workers_stop(w, 0), 0);
    assert_int_equal(nc_workers_wait(w), 0);
    nc_workers_free(w);
    nc_workers_free(NULL);
}

/* ---- one port, one server ------------------------------------------------- */

static nc_addr first_bound(nc_workers *w)
{
    nc_addr a;
    size_t n = 0;
    assert_int_equal(nc_workers_addrs(w, &a, 1, &n), 0);
    assert_int_equal(n, 1);
    return a;
}

/* A TCP socket of "another program" listening on 127.0.0.1 with
 * SO_REUSEPORT set before its bind; its port in *port. */
static int reuseport_listener(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    nc_addr a = { .len = sizeof(struct sockaddr_in) };
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
                                sizeof(on)), 0);
    assert_int_equal(bind(fd, &a.u.sa, a.len), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = a.len;
    assert_int_equal(getsockname(fd, &a.u.sa, &len), 0);
    *port = nc_addr_port(&a);
    return fd;
}

/* Workers share their port with one another, never with a second server:
 * the second group's bind fails, and errbuf names who holds the port. */
static void a_second_server_on_a_taken_port_fails_naming_the_holder(void **state)
{
    (void)state;
    const nc_conn_callbacks cbs = { 0 };
    char why[256], spec[NC_ADDRSTRLEN], held[64];
    nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    snprintf(held, sizeof(held), "; held by %s (pid %d)", self_comm(),
             (int)getpid());
    for (unsigned threads = 1; threads <= 2; threads++) {
        struct rec r1 = { .fail_index = -1 }, r2 = { .fail_index = -1 };
        nc_workers *first = start(&r1, threads, false);
        nc_workers *second = start(&r2, threads, false);
        assert_int_equal(nc_workers_listen(first, "127.0.0.1:0", NULL, &cbs,
                                           NULL), NC_WORKERS_ACCEPT_REUSEPORT);
        nc_addr a = first_bound(first);
        assert_true(nc_addr_format(&a, spec, sizeof(spec)) > 0);
        assert_int_equal(nc_workers_listen(second, spec, &o, &cbs, NULL),
                         -EADDRINUSE);
        if (!strstr(why, "Address already in use") || !strstr(why, held))
            fail_msg("errbuf \"%s\" does not say \"%s\"", why, held);
        size_t n = 99;
        assert_int_equal(nc_workers_addrs(second, NULL, 0, &n), 0);
        assert_int_equal(n, 0);

        /* Nor with another program's socket that allows sharing. */
        unsigned port;
        int other = reuseport_listener(&port);
        snprintf(spec, sizeof(spec), "127.0.0.1:%u", port);
        assert_int_equal(nc_workers_listen(second, spec, &o, &cbs, NULL),
                         -EADDRINUSE);
        assert_non_null(strstr(why, held));
        close(other);
        nc_workers_free(second);
        nc_workers_free(first);
    }
}

static void workers_of_one_group_share_the_port_and_all_accept(void **state)
{
    (void)state;
    const unsigned W = 4, N = 64;
    const nc_conn_callbacks cbs = { 0 };
    struct rec r = { .fail_index = -1 };
    nc_workers *w = start(&r, W, false);
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:0", NULL, &cbs, NULL),
                     NC_WORKERS_ACCEPT_REUSEPORT);
    nc_addr a = first_bound(w);
    int fds[64];
    for (unsigned i = 0; i < N; i++) {
        fds[i] = client_connect(&a);
        assert_true(fds[i] >= 0);
    }
    /* The kernel spreads them by a hash of their ports: with 64 clients,
     * a worker left without any would happen once in 10^7 runs. */
    nc_loop_stats per[MAXW], sum;
    uint64_t until = now_ms() + 5000;
    do {
        assert_int_equal(nc_workers_stats(w, per, MAXW, &sum), (int)W);
    } while (sum.accepted < N && now_ms() < until && sched_yield() == 0);
    assert_int_equal(sum.accepted, N);
    for (unsigned i = 0; i < W; i++)
        if (per[i].accepted == 0)
            fail_msg("worker %u accepted nothing", i);
    for (unsigned i = 0; i < N; i++)
        close(fds[i]);
    nc_workers_free(w);
}

/* ---- signals ---------------------------------------------------------------- */

static void sigterm_stops_nc_workers_run_gracefully(void **state)
{
    (void)state;
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    /* Blocked first, as the header asks: pending until run reads it. */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
    struct rec r = { .fail_index = -1 };
    nc_workers *w = start(&r, 2, false);
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:0", NULL, NULL, NULL),
                     NC_WORKERS_ACCEPT_REUSEPORT);
    nc_addr a;
    size_t n;
    assert_int_equal(nc_workers_addrs(w, &a, 1, &n), 0);
    int idle = client_connect(&a);
    assert_true(idle >= 0);
    nc_loop_stats st;
    uint64_t until = now_ms() + 5000;
    do
        nc_workers_stats(w, NULL, 0, &st);
    while (st.accepted == 0 && now_ms() < until);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(nc_workers_run(w, 5000), 0);
    char c;
    assert_int_equal(read_full(idle, &c, 1, 2000), 0);   /* FIN */
    close(idle);
    assert_int_equal(nc_workers_stats(w, NULL, 0, &st), 2);
    assert_int_equal(st.closed[NC_CLOSE_SHUTDOWN], 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(atomic_load(&r.stopped[i]), 1);
    nc_workers_free(w);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGTERM));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Clients can take every descriptor the moment the listeners are open
 * (and an example announces them): nc_workers_run must still start, so
 * the loop it serves signals on, and its signalfd, are made by
 * nc_workers_start. Here the process has no descriptor left when
 * nc_workers_run is called; SIGTERM, pending, stops it gracefully. */
static void nc_workers_run_needs_no_descriptor(void **state)
{
    (void)state;
    if (under_valgrind()) {
        /* valgrind keeps descriptors of its own below the limit. */
        print_message("skipped: valgrind virtualises RLIMIT_NOFILE\n");
        skip();
    }
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
    struct rec r = { .fail_index = -1 };
    nc_workers *w = start(&r, 1, false);
    assert_true(nc_workers_listen(w, "127.0.0.1:0", NULL, NULL, NULL) >= 0);
    struct rlimit lim, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
    low = lim;
    low.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int held[256];
    int nheld = 0;
    for (int fd; nheld < 256 && (fd = open("/dev/null", O_RDONLY)) >= 0;)
        held[nheld++] = fd;
    assert_int_equal(open("/dev/null", O_RDONLY), -1);
    assert_int_equal(errno, EMFILE);
    assert_int_equal(raise(SIGTERM), 0);
    int rc = nc_workers_run(w, 5000);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    setrlimit(RLIMIT_NOFILE, &lim);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&r.stopped[0]), 1);
    nc_workers_free(w);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGTERM));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void usr1_stop(nc_signal *s, int signum, void *ud)
{
    struct rec *r = ud;
    (void)s;
    (void)signum;
    nc_workers_stop(atomic_load(&r->aw), 1000);
}

static int start_with_usr1(nc_loop *loop, unsigned index, void *ud)
{
    nc_signal *s;
    rec_start(loop, index, ud);
    return index == 0 ? nc_signal_start(loop, SIGUSR1, usr1_stop, ud, &s) : 0;
}

static void a_signal_handled_by_a_worker_stops_all(void **state)
{
    (void)state;
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    /* Blocked here before the threads start: they inherit it, and only
     * worker 0's signalfd takes it. */
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
    struct rec r = { .fail_index = -1 };
    nc_workers_options o = { .threads = 3, .on_start = start_with_usr1,
                             .on_stop = rec_stop, .ud = &r };
    nc_workers *w;
    assert_int_equal(nc_workers_start(&o, &w), 0);
    atomic_store(&r.aw, w);
    /* To worker 0's thread: its signalfd reads what is pending for it. */
    assert_int_equal(pthread_kill(r.thread[0], SIGUSR1), 0);
    assert_int_equal(nc_workers_wait(w), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&r.stopped[i]), 1);
    nc_workers_free(w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zero_threads_means_one_per_cpu),
        cmocka_unit_test(pin_puts_worker_i_on_the_ith_cpu),
        cmocka_unit_test(a_failing_on_start_fails_the_start),
        cmocka_unit_test(posts_to_all_while_they_stop_run_once_each),
        cmocka_unit_test(bad_arguments_are_refused_and_change_nothing),
        cmocka_unit_test(a_second_server_on_a_taken_port_fails_naming_the_holder),
        cmocka_unit_test(workers_of_one_group_share_the_port_and_all_accept),
        cmocka_unit_test(sigterm_stops_nc_workers_run_gracefully),
        cmocka_unit_test(nc_workers_run_needs_no_descriptor),
        cmocka_unit_test(a_signal_handled_by_a_worker_stops_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
