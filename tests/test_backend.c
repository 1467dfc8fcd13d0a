/* test_backend.c - choosing a loop's backend: the option, NC_BACKEND, the
 * automatic choice, and the fallback when io_uring cannot run (a seccomp
 * filter refusing io_uring_setup with EPERM, then with ENOSYS, installed
 * in a child process, as a container runtime would). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The backend a new loop gets with o, or a negative errno. */
static int backend_of(const nc_loop_options *o)
{
    nc_loop *loop = (nc_loop *)&loop;     /* must stay untouched on error */
    nc_loop *const before = loop;
    int rc = nc_loop_new_with(&loop, o);
    if (rc < 0) {
        if (loop != before)
            return -1000;                 /* *out written on failure */
        return rc;
    }
    int b = (int)nc_loop_backend(loop);
    nc_loop_free(loop);
    return b;
}

static int with_env(const char *value, const nc_loop_options *o)
{
    if (value)
        setenv("NC_BACKEND", value, 1);
    else
        unsetenv("NC_BACKEND");
    int rc = backend_of(o);
    unsetenv("NC_BACKEND");
    return rc;
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(nc_backend_name(NC_BACKEND_EPOLL), "epoll");
    assert_string_equal(nc_backend_name(NC_BACKEND_IO_URING), "io_uring");
    assert_string_equal(nc_backend_name(NC_BACKEND_AUTO), "auto");
    assert_string_equal(nc_backend_name((nc_backend)42), "unknown");
    assert_int_equal(nc_loop_backend(NULL), NC_BACKEND_AUTO);
}

/* What asking for io_uring gives here: the backend, or why not. Under
 * CI=true a build with liburing must get it. */
static int uring_here(void)
{
    nc_loop_options uring = { .backend = NC_BACKEND_IO_URING };
    int rc = with_env(NULL, &uring);
#ifdef NC_HAVE_URING
    const char *ci = getenv("CI");
    if (rc != NC_BACKEND_IO_URING && ci && strcmp(ci, "true") == 0)
        fail_msg("io_uring unavailable here (%s): CI needs it",
                 nc_strerror(rc));
#else
    assert_int_equal(rc, -ENOTSUP);    /* built without liburing */
#endif
    if (rc != NC_BACKEND_IO_URING)
        assert_true(rc == -ENOTSUP || rc == -ENOSYS || rc == -EPERM);
    return rc;
}

/* An explicit choice is what the loop runs; a bad one changes nothing. */
static void explicit_choices(void **state)
{
    (void)state;
    nc_loop_options epoll = { .backend = NC_BACKEND_EPOLL };
    nc_loop_options bad = { .backend = (nc_backend)7 };
    assert_int_equal(with_env(NULL, &epoll), NC_BACKEND_EPOLL);
    assert_int_equal(with_env(NULL, &bad), -EINVAL);
    assert_int_equal(nc_loop_new_with(NULL, NULL), -EINVAL);
    uring_here();
}

/* NC_BACKEND decides when the program does not; the program's explicit
 * choice wins over it; a name that is no backend is an error; without
 * either, io_uring where it works. */
static void environment(void **state)
{
    (void)state;
    nc_loop_options epoll = { .backend = NC_BACKEND_EPOLL };
    int uring = uring_here();
    int automatic = uring == NC_BACKEND_IO_URING ? NC_BACKEND_IO_URING
                                                 : NC_BACKEND_EPOLL;
    assert_int_equal(with_env("epoll", NULL), NC_BACKEND_EPOLL);
    assert_int_equal(with_env("kqueue", NULL), -EINVAL);
    assert_int_equal(with_env("IO_URING", NULL), -EINVAL);
    assert_int_equal(with_env("io_uring", &epoll), NC_BACKEND_EPOLL);
    assert_int_equal(with_env("io_uring", NULL), uring);
    assert_int_equal(with_env("", NULL), automatic);
    assert_int_equal(with_env("auto", NULL), automatic);
    assert_int_equal(with_env(NULL, NULL), automatic);
}

/* nc_backend_from_env is the rule nc_loop_new applies: what it accepts
 * a loop runs on, what it refuses makes nc_loop_new fail, and its message
 * names the variable, the value and what is allowed. */
static void environment_rule_is_the_loops_and_says_why(void **state)
{
    static const char *const good[] = {"epoll", "io_uring", "auto", ""};
    static const int want[] = {NC_BACKEND_EPOLL, NC_BACKEND_IO_URING,
                               NC_BACKEND_AUTO, NC_BACKEND_AUTO};
    static const char *const bad[] = {"bogus", "EPOLL", "epoll ", "io-uring"};
    char why[256];
    nc_backend b;

    (void)state;
    unsetenv("NC_BACKEND");
    assert_int_equal(nc_backend_from_env(&b, why, sizeof why), 0);
    assert_int_equal(b, NC_BACKEND_AUTO);
    for (size_t i = 0; i < 4; i++) {
        setenv("NC_BACKEND", good[i], 1);
        strcpy(why, "untouched");
        assert_int_equal(nc_backend_from_env(&b, why, sizeof why), 0);
        assert_int_equal(b, want[i]);
        assert_string_equal(why, "untouched");
    }
    for (size_t i = 0; i < 4; i++) {
        char value[64];
        setenv("NC_BACKEND", bad[i], 1);
        assert_int_equal(nc_backend_from_env(&b, why, sizeof why), -EINVAL);
        snprintf(value, sizeof value, "NC_BACKEND=%s names no", bad[i]);
        assert_non_null(strstr(why, value));
        assert_non_null(strstr(why, "epoll, io_uring"));
        assert_int_equal(nc_backend_from_env(&b, NULL, 0), -EINVAL);
        assert_int_equal(with_env(bad[i], NULL), -EINVAL);
    }
    assert_int_equal(nc_backend_from_env(NULL, why, sizeof why), -EINVAL);
    unsetenv("NC_BACKEND");
}

/* ---- io_uring forbidden ------------------------------------------------- */

/* Make io_uring_setup fail with err in this process, for good. */
static int forbid_io_uring(int err)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        return -errno;
    return 0;
}

/* In a child forbidden io_uring with err: automatic falls back to epoll
 * and still serves; asking for io_uring, by option or by NC_BACKEND, is
 * the error. Returns the child's verdict (0 = as promised). */
static int forbidden_child(int err)
{
    if (forbid_io_uring(err) < 0)
        return 10;
    nc_loop_options uring = { .backend = NC_BACKEND_IO_URING };
    if (with_env(NULL, NULL) != NC_BACKEND_EPOLL)
        return 1;
#ifdef NC_HAVE_URING
    if (with_env(NULL, &uring) != -err)
        return 2;
    if (with_env("io_uring", NULL) != -err)
        return 3;
#else
    if (with_env(NULL, &uring) != -ENOTSUP)
        return 2;
#endif
    /* The fallback loop is a working loop. */
    nc_loop *loop;
    if (nc_loop_new(&loop) < 0)
        return 4;
    struct server s;
    if (server_start(&s, loop, "127.0.0.1:0", NULL, SERVER_ECHO) < 0)
        return 5;
    int fd = client_connect(&s.addr);
    char buf[4];
    bool ok = fd >= 0 && write(fd, "ping", 4) == 4 &&
              server_wait_bytes(&s, 4, 3000) &&
              read_full(fd, buf, 4, 3000) == 4 && memcmp(buf, "ping", 4) == 0;
    if (fd >= 0)
        close(fd);
    nc_loop_free(loop);
    server_free(&s);
    return ok ? 0 : 6;
}

static void check_forbidden(int err)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(forbidden_child(err));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("the child died of signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) == 10)
        skip();     /* no seccomp filters in this kernel */
    if (WEXITSTATUS(status) != 0)
        fail_msg("io_uring forbidden with %s: check %d failed", strerror(err),
                 WEXITSTATUS(status));
}

static void seccomp_eperm_falls_back_to_epoll(void **state)
{
    (void)state;
    check_forbidden(EPERM);
}

static void seccomp_enosys_falls_back_to_epoll(void **state)
{
    (void)state;
    check_forbidden(ENOSYS);
}

int main(void)
{
    unsetenv("NC_BACKEND");    /* the suite may run under either */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(explicit_choices),
        cmocka_unit_test(environment),
        cmocka_unit_test(environment_rule_is_the_loops_and_says_why),
        cmocka_unit_test(seccomp_eperm_falls_back_to_epoll),
        cmocka_unit_test(seccomp_enosys_falls_back_to_epoll),
    };
    return cmocka_run_group_tests_name("backend", tests, NULL, NULL);
}
