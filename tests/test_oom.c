/* test_oom.c - running out of memory changes nothing that was promised:
 * a write is all or nothing, a failed nc_listen leaves no Unix socket file
 * behind, a connection that cannot get memory is closed once with
 * -ENOMEM. The library's allocations are made to fail on purpose: this
 * program is linked with -Wl,--wrap=malloc,--wrap=realloc,--wrap=calloc
 * (see the Makefile), so the calls in lib/ go through the wrappers below. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- failure injection --------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t k, size_t n);

/* The next `skip` calls of the armed kind succeed, then `fail` fail. */
static struct {
    enum { NONE, ANY, REALLOC } kind;
    int skip;
    int fail;
    int failed;
} oom;

static void oom_arm(int kind, int skip, int fail)
{
    oom.kind = kind;
    oom.skip = skip;
    oom.fail = fail;
    oom.failed = 0;
}

static bool oom_now(int kind)
{
    if (oom.kind == NONE || (oom.kind == REALLOC && kind != REALLOC))
        return false;
    if (oom.skip > 0) {
        oom.skip--;
        return false;
    }
    if (oom.fail > 0) {
        oom.fail--;
        oom.failed++;
        if (oom.fail == 0)
            oom.kind = NONE;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
    return oom_now(ANY) ? NULL : __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
    return oom_now(REALLOC) ? NULL : __real_realloc(p, n);
}

void *__wrap_calloc(size_t k, size_t n);
void *__wrap_calloc(size_t k, size_t n)
{
    return oom_now(ANY) ? NULL : __real_calloc(k, n);
}

/* ---- a server handing its connection to the test --------------------- */

struct held {
    nc_conn *c;
    int opens, closes;
    nc_close_reason reason;
    int err;
    size_t consume;          /* on_data consumes at most this per call */
    bool fail_after_data;    /* make the next allocations fail */
};

static void h_open(nc_conn *c, void *ud)
{
    struct held *h = ud;
    h->c = c;
    h->opens++;
}

static size_t h_data(nc_conn *c, const void *d, size_t n, void *ud)
{
    (void)c;
    (void)d;
    struct held *h = ud;
    if (h->fail_after_data)
        oom_arm(ANY, 0, 3);
    return n < h->consume ? n : h->consume;
}

static void h_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    struct held *h = ud;
    h->closes++;
    h->reason = reason;
    h->err = err;
    h->c = NULL;
}

static const nc_conn_callbacks h_cbs = { h_open, h_data, NULL, h_close };

static bool h_opened(void *arg)
{
    return ((struct held *)arg)->c != NULL;
}

static bool h_closed(void *arg)
{
    return ((struct held *)arg)->closes > 0;
}

struct fixture {
    nc_loop *loop;
    nc_listener *l;
    struct held h;
    int fd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h.consume = SIZE_MAX;
    assert_int_equal(nc_loop_new(&f->loop), 0);
    assert_int_equal(nc_listen(f->loop, "127.0.0.1:0", NULL, &h_cbs, &f->h,
                               &f->l), 0);
    nc_addr a = listener_addr0(f->l);
    f->fd = client_connect(&a);
    assert_true(f->fd >= 0);
    assert_true(run_until(f->loop, h_opened, &f->h, 3000));
    int small = 4096;
    setsockopt(nc_conn_fd(f->h.c), SOL_SOCKET, SO_SNDBUF, &small,
               sizeof(small));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    oom_arm(NONE, 0, 0);
    if (f->fd >= 0)
        close(f->fd);
    nc_loop_free(f->loop);
    assert_true(f->h.closes <= 1);
    free(f);
    return 0;
}

struct sink {
    int fd;
    char *buf;
    size_t len, got;
};

static bool sink_step(void *arg)
{
    struct sink *s = arg;
    while (s->got < s->len) {
        ssize_t n = recv(s->fd, s->buf + s->got, s->len - s->got,
                         MSG_DONTWAIT);
        if (n <= 0)
            break;
        s->got += (size_t)n;
    }
    return s->got == s->len;
}

/* With output queued, a write that cannot get memory is refused whole:
 * nothing of it is queued, and a retry sends it exactly once. */
static void write_refused_for_memory_queues_nothing(void **state)
{
    struct fixture *f = *state;
    enum { BIG = 1 << 20 };
    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'a', BIG);
    assert_int_equal(nc_conn_write(f->h.c, big, BIG), 0);
    size_t queued = nc_conn_queued(f->h.c);
    assert_true(queued > 0);

    struct iovec iov[3] = { { "111", 3 }, { big, 100000 }, { "333", 3 } };
    oom_arm(ANY, 0, 1);
    assert_int_equal(nc_conn_writev(f->h.c, iov, 3), -ENOMEM);
    assert_int_equal(oom.failed, 1);
    assert_int_equal(nc_conn_queued(f->h.c), queued);
    assert_int_equal(nc_conn_writev(f->h.c, iov, 3), 0);   /* the retry */

    size_t total = BIG + 100006;
    struct sink s = { f->fd, malloc(total), total, 0 };
    assert_true(run_until(f->loop, sink_step, &s, 10000));
    assert_memory_equal(s.buf + BIG, "111", 3);
    assert_memory_equal(s.buf + BIG + 100003, "333", 3);
    assert_false(wait_readable(f->fd, 50));   /* nothing twice */
    assert_int_equal(f->h.closes, 0);
    free(s.buf);
    free(big);
}

/* With nothing queued, part of a write goes out at once; if the rest
 * cannot be queued the stream is broken: the connection is closed with
 * -ENOMEM, and the write says so. */
static void memory_lost_after_a_partial_send_closes(void **state)
{
    struct fixture *f = *state;
    enum { BIG = 4 << 20 };
    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'b', BIG);
    oom_arm(ANY, 0, 4);     /* the cold part and the chunk */
    assert_int_equal(nc_conn_write(f->h.c, big, BIG), -ENOMEM);
    oom_arm(NONE, 0, 0);
    assert_true(run_until(f->loop, h_closed, &f->h, 3000));
    assert_int_equal(f->h.reason, NC_CLOSE_ERROR);
    assert_int_equal(f->h.err, -ENOMEM);
    free(big);
}

/* Unconsumed input that cannot be kept: closed once, with -ENOMEM. */
static void input_that_cannot_be_kept_closes_once(void **state)
{
    struct fixture *f = *state;
    f->h.consume = 0;
    f->h.fail_after_data = true;
    assert_int_equal(send(f->fd, "hello", 5, 0), 5);
    assert_true(run_until(f->loop, h_closed, &f->h, 3000));
    oom_arm(NONE, 0, 0);
    assert_int_equal(f->h.closes, 1);
    assert_int_equal(f->h.reason, NC_CLOSE_ERROR);
    assert_int_equal(f->h.err, -ENOMEM);
}

/* A Unix listener that fails after its bind removes the file it made. */
static void failed_unix_listen_leaves_no_file(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/nc-oom-%d.sock", (int)getpid());
    char spec[80];
    snprintf(spec, sizeof(spec), "unix:%s", path);
    unlink(path);
    /* Make the timeout lists exist, so that the only allocation after
     * the bind is the fd table growing for a high descriptor. */
    nc_listener *first;
    assert_int_equal(nc_listen(loop, spec, NULL, &h_cbs, NULL, &first), 0);
    nc_listener_close(first);
    nc_loop_run(loop, NC_RUN_NOWAIT);
    assert_int_equal(access(path, F_OK), -1);
    int low[200];
    int n = 0;
    while (n < 200) {
        low[n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(low[n] >= 0);
        if (low[n++] > 150)
            break;
    }
    oom_arm(REALLOC, 0, 1);
    nc_listener *l = NULL;
    assert_int_equal(nc_listen(loop, spec, NULL, &h_cbs, NULL, &l), -ENOMEM);
    assert_int_equal(oom.failed, 1);
    assert_null(l);
    assert_int_equal(access(path, F_OK), -1);
    oom_arm(NONE, 0, 0);
    for (int i = 0; i < n; i++)
        close(low[i]);
    nc_loop_free(loop);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(write_refused_for_memory_queues_nothing),
        T(memory_lost_after_a_partial_send_closes),
        T(input_that_cannot_be_kept_closes_once),
        cmocka_unit_test(failed_unix_listen_leaves_no_file),
    };
    return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
