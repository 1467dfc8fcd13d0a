/* test_ring.c - the io_uring backend when the kernel refuses a
 * submission, and its ring before and after a loop runs (made in one
 * thread and run in another, requests made before the first run, closes
 * outside the loop). io_uring_enter can fail before taking the queued requests
 * (-EBUSY while its completion queue overflows, -EAGAIN short of memory);
 * the requests then wait for the next try, and a send among them must not
 * end up carrying another connection's bytes, nor bytes freed meanwhile.
 * This program is linked with -Wl,--wrap=io_uring_submit_and_wait_timeout
 * (see the Makefile), so the wait in lib/backend_uring.c goes through the
 * wrapper below. On epoll there is nothing to test: it says so. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef NC_HAVE_URING
#include <liburing.h>

/* ---- failure injection --------------------------------------------------- */

int __real_io_uring_submit_and_wait_timeout(struct io_uring *ring,
                                            struct io_uring_cqe **cqe_ptr,
                                            unsigned wait_nr,
                                            struct __kernel_timespec *ts,
                                            sigset_t *sigmask);

static struct {
    bool fail_next;         /* the next wait fails with -EBUSY, having
                               submitted nothing */
    int failed;
    nc_call_fn after;       /* deferred from the failed wait */
    void *after_arg;
    nc_loop *loop;
} inject;

int __wrap_io_uring_submit_and_wait_timeout(struct io_uring *ring,
                                            struct io_uring_cqe **cqe_ptr,
                                            unsigned wait_nr,
                                            struct __kernel_timespec *ts,
                                            sigset_t *sigmask)
{
    if (inject.fail_next) {
        inject.fail_next = false;
        inject.failed++;
        if (inject.after)
            nc_loop_defer(inject.loop, inject.after, inject.after_arg);
        return -EBUSY;
    }
    return __real_io_uring_submit_and_wait_timeout(ring, cqe_ptr, wait_nr,
                                                   ts, sigmask);
}

/* ---- two connections and their clients ----------------------------------- */

struct two {
    nc_loop *loop;
    nc_listener *l;
    nc_conn *conns[2];
    int opens;
    int fds[2];             /* the clients, in the same order */
    char *bufs[4];          /* owned buffers: a1, a2, c1, c2 */
    int frees;
};

static void two_open(nc_conn *c, void *ud)
{
    struct two *t = ud;
    t->conns[t->opens++] = c;
}

static void owned_free(void *data, void *arg)
{
    struct two *t = arg;
    if (++t->frees == 4)
        nc_loop_stop(t->loop);
    free(data);
}

static void guard_expired(nc_timer *timer, void *ud)
{
    (void)timer;
    nc_loop_stop(ud);
}

static void write_pair(struct two *t, int conn, int first, char fill)
{
    for (int i = first; i < first + 2; i++) {
        t->bufs[i] = malloc(1000);
        assert_non_null(t->bufs[i]);
        memset(t->bufs[i], fill, 1000);
        /* Two owned buffers: one send of two pieces, through a message
         * slot of the backend. */
        assert_int_equal(nc_conn_write_owned(t->conns[conn], t->bufs[i],
                                             1000, owned_free, t), 0);
    }
}

/* In a callback (a deferred call), so that the writes queue for the
 * iteration's submission; that submission then fails. */
static void write_a(void *arg)
{
    struct two *t = arg;
    write_pair(t, 0, 0, 'a');
    inject.fail_next = true;
}

/* After the failed submission: another connection's send, which takes
 * the first message slot again. */
static void write_c(void *arg)
{
    write_pair(arg, 1, 2, 'c');
}

static bool two_opened(void *arg)
{
    return ((struct two *)arg)->opens == 2;
}

static bool all_freed(void *arg)
{
    return ((struct two *)arg)->frees == 4;
}

/* The first connection's send is left in the submission queue by a
 * failed io_uring_enter; the second's, prepared in the next iteration,
 * reuses its message slot. Each client gets exactly its own bytes. */
static void a_failed_submission_sends_nothing_to_the_wrong_peer(void **state)
{
    (void)state;
    struct two t = { 0 };
    nc_loop_options lo = { .backend = NC_BACKEND_IO_URING };
    assert_int_equal(nc_loop_new_with(&t.loop, &lo), 0);
    inject.loop = t.loop;
    inject.after = write_c;
    inject.after_arg = &t;
    nc_conn_callbacks cbs = { .on_open = two_open };
    assert_int_equal(nc_listen(t.loop, "127.0.0.1:0", NULL, &cbs, &t, &t.l),
                     0);
    nc_addr a = listener_addr0(t.l);
    t.fds[0] = client_connect(&a);
    assert_true(run_until(t.loop, two_opened, &t, 100) || t.opens == 1);
    t.fds[1] = client_connect(&a);
    assert_true(run_until(t.loop, two_opened, &t, 3000));
    /* One run that does not return between iterations: what a callback
     * writes goes out with the next iteration's submission (a run that
     * returns sends it at once instead). */
    assert_int_equal(nc_loop_defer(t.loop, write_a, &t), 0);
    nc_timer *guard;
    assert_int_equal(nc_timer_new(t.loop, guard_expired, t.loop, &guard), 0);
    assert_int_equal(nc_timer_start(guard, 3000, 0), 0);
    assert_int_equal(nc_loop_run(t.loop, NC_RUN_DEFAULT), 0);
    nc_timer_free(guard);
    assert_true(all_freed(&t));
    assert_int_equal(inject.failed, 1);
    char buf[2000];
    char want[2000];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(read_full(t.fds[i], buf, sizeof(buf), 3000),
                         sizeof(buf));
        memset(want, i == 0 ? 'a' : 'c', sizeof(want));
        assert_memory_equal(buf, want, sizeof(buf));
        assert_false(wait_readable(t.fds[i], 50));   /* nothing more */
    }
    nc_loop_free(t.loop);
    close(t.fds[0]);
    close(t.fds[1]);
}

/* ---- a ring made before the first run ------------------------------------ */

static nc_loop *uring_loop(void)
{
    nc_loop *loop;
    nc_loop_options lo = { .backend = NC_BACKEND_IO_URING };
    assert_int_equal(nc_loop_new_with(&loop, &lo), 0);
    return loop;
}

struct runner {
    nc_loop *loop;
    struct server srv;
    int rc;
};

static void *run_and_free(void *arg)
{
    struct runner *r = arg;
    r->rc = nc_loop_run(r->loop, NC_RUN_DEFAULT);
    nc_loop_free(r->loop);
    return NULL;
}

/* nc_workers makes each worker's loop in the caller's thread: a loop
 * made (and given a listener) in one thread runs in another, whose ring
 * then is its own (SINGLE_ISSUER). */
static void a_loop_made_in_one_thread_runs_in_another(void **state)
{
    (void)state;
    struct runner r = { .loop = uring_loop() };
    assert_int_equal(server_start(&r.srv, r.loop, "127.0.0.1:0", NULL,
                                  SERVER_ECHO), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_and_free, &r), 0);
    int fd = client_connect(&r.srv.addr);
    assert_true(fd >= 0);
    char buf[5];
    assert_int_equal(write(fd, "hello", 5), 5);
    assert_int_equal(read_full(fd, buf, 5, 3000), 5);
    assert_memory_equal(buf, "hello", 5);
    close(fd);
    nc_loop_stop(r.loop);
    pthread_join(th, NULL);
    assert_int_equal(r.rc, 0);
    server_free(&r.srv);
}

static void *run_once(void *arg)
{
    struct runner *r = arg;
    r->rc = nc_loop_run(r->loop, NC_RUN_ONCE);
    return NULL;
}

static void ignore_timer(nc_timer *t, void *ud)
{
    (void)t;
    (void)ud;
}

/* The first thread to run a loop is its thread for good: another one's
 * run is refused whole (-EEXIST), and the first can go on. */
static void a_loop_run_by_one_thread_refuses_another(void **state)
{
    (void)state;
    struct runner r = { .loop = uring_loop() };
    nc_timer *t;
    assert_int_equal(nc_timer_new(r.loop, ignore_timer, NULL, &t), 0);
    assert_int_equal(nc_timer_start(t, 1, 0), 0);
    assert_int_equal(nc_loop_run(r.loop, NC_RUN_ONCE), 0);
    assert_int_equal(nc_timer_start(t, 1, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_once, &r), 0);
    pthread_join(th, NULL);
    assert_int_equal(r.rc, -EEXIST);
    assert_int_equal(nc_loop_run(r.loop, NC_RUN_ONCE), 0);
    nc_timer_free(t);
    nc_loop_free(r.loop);
}

struct many {
    unsigned long opened;
};

static void many_open(nc_conn *c, void *ud)
{
    (void)c;
    ((struct many *)ud)->opened++;
}

/* More requests than the submission queue holds (1,024 entries), made
 * before the loop first runs, when none can be submitted yet: each
 * connects. */
static void requests_made_before_the_first_run_wait_for_it(void **state)
{
    (void)state;
    enum { N = 1100 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 64) {
        rl.rlim_cur = rl.rlim_max < 2 * N + 64 ? rl.rlim_max : 2 * N + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 2 * N + 64) {
        print_message("skipped: %lu descriptors allowed\n",
                      (unsigned long)rl.rlim_cur);
        skip();
    }
    nc_loop *loop = uring_loop();
    struct server srv;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1:0", NULL,
                                  SERVER_ECHO), 0);
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&srv.addr, spec, sizeof(spec));
    struct many m = { 0 };
    nc_conn_callbacks cbs = { .on_open = many_open };
    for (int i = 0; i < N; i++)
        assert_int_equal(nc_connect(loop, spec, NULL, &cbs, &m, NULL), 0);
    struct count_goal g = { &m.opened, N };
    assert_true(run_until(loop, count_reached, &g, 10000));
    assert_true(server_wait_opened(&srv, N));
    nc_loop_free(loop);
    assert_true(server_all_closed_once(&srv));
    server_free(&srv);
}

/* A close between runs, and nc_loop_free's, happen outside the loop,
 * where no wait submits requests or runs the kernel's deferred work:
 * each peer still gets its FIN at once, and no descriptor stays open. */
static void closes_outside_the_loop_reach_the_peers(void **state)
{
    (void)state;
    enum { N = 300 };
    int before = count_fds();
    nc_loop *loop = uring_loop();
    struct server srv;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1:0", NULL,
                                  SERVER_ECHO), 0);
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = client_connect(&srv.addr);
        assert_true(fds[i] >= 0);
        assert_int_equal(write(fds[i], "x", 1), 1);
    }
    assert_true(server_wait_bytes(&srv, N, 5000));
    for (int i = 0; i < N; i++) {
        char c;
        for (int tries = 0; tries < 300 && !wait_readable(fds[i], 0); tries++)
            nc_loop_run(loop, NC_RUN_ONCE);
        assert_int_equal(read_full(fds[i], &c, 1, 2000), 1);
    }
    /* One closed between runs: its peer learns of it now, not when the
     * loop runs again. */
    nc_conn_close(srv.recs[0]->conn);
    int ended = -1;
    for (int tries = 0; tries < 200 && ended < 0; tries++) {
        for (int i = 0; i < N && ended < 0; i++)
            if (wait_readable(fds[i], 0))
                ended = i;
        if (ended < 0)
            usleep(10000);
    }
    assert_true(ended >= 0);
    char c;
    assert_int_equal(read_full(fds[ended], &c, 1, 100), 0);
    nc_loop_free(loop);
    for (int i = 0; i < N; i++) {
        assert_int_equal(read_full(fds[i], &c, 1, 2000), 0);
        close(fds[i]);
    }
    assert_int_equal(count_fds(), before);
    server_free(&srv);
}

int main(void)
{
    if (under_valgrind()) {
        printf("test_ring: valgrind cannot follow io_uring: skipped\n");
        return 0;
    }
    nc_loop *probe;
    nc_loop_options lo = { .backend = NC_BACKEND_IO_URING };
    int rc = nc_loop_new_with(&probe, &lo);
    if (rc < 0) {
        printf("test_ring: no io_uring loop here (%s): nothing to test\n",
               nc_strerror(rc));
        return 0;
    }
    nc_loop_free(probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_failed_submission_sends_nothing_to_the_wrong_peer),
        cmocka_unit_test(a_loop_made_in_one_thread_runs_in_another),
        cmocka_unit_test(a_loop_run_by_one_thread_refuses_another),
        cmocka_unit_test(requests_made_before_the_first_run_wait_for_it),
        cmocka_unit_test(closes_outside_the_loop_reach_the_peers),
    };
    return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}

#else

int main(void)
{
    printf("test_ring: built without liburing: nothing to test\n");
    return 0;
}

#endif
