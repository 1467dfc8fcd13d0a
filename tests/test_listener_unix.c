/* test_listener_unix.c - what nc_listen("unix:PATH") does with whatever is
 * already at PATH: only a socket file nobody listens on is replaced;
 * a regular file, a symbolic link (to anything), a directory and a live
 * socket are left exactly as they were, with -EADDRINUSE and a line in
 * errbuf that says what is there. Every case works in a fresh directory
 * under /tmp. */
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
#include <sys/un.h>
#include <unistd.h>

#define PRECIOUS "data nobody may lose\n"

struct dir {
    char path[64];
    char target[96];       /* dir/target: what a link points at */
    char at[96];           /* dir/at: the path nc_listen is given */
    char spec[112];        /* unix:dir/at */
};

static int dir_setup(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    snprintf(d->path, sizeof(d->path), "/tmp/nc-unix-XXXXXX");
    if (!mkdtemp(d->path)) {
        free(d);
        return -1;
    }
    snprintf(d->target, sizeof(d->target), "%s/target", d->path);
    snprintf(d->at, sizeof(d->at), "%s/at", d->path);
    snprintf(d->spec, sizeof(d->spec), "unix:%s", d->at);
    *state = d;
    return 0;
}

static int dir_teardown(void **state)
{
    struct dir *d = *state;
    unlink(d->at);
    unlink(d->target);
    rmdir(d->at);
    rmdir(d->path);
    free(d);
    return 0;
}

static void write_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, PRECIOUS, strlen(PRECIOUS)),
                     (long)strlen(PRECIOUS));
    close(fd);
}

static void assert_file_intact(const char *path)
{
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    assert_true(fd >= 0);
    long n = read(fd, buf, sizeof(buf));
    close(fd);
    assert_int_equal(n, (long)strlen(PRECIOUS));
    assert_memory_equal(buf, PRECIOUS, strlen(PRECIOUS));
}

static void assert_link_intact(const char *link, const char *target)
{
    struct stat st;
    char buf[128];
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    long n = readlink(link, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, target);
}

/* A socket file at path, listening (live) or closed at once (stale). */
static int unix_socket_at(const char *path, bool listening)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    if (!listening) {
        close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, 8), 0);
    return fd;
}

/* nc_listen on d->spec must fail with -EADDRINUSE, leave the loop with
 * nothing to run, and say `says` (and the address) in errbuf. */
static void assert_refused(const struct dir *d, const char *says)
{
    nc_loop *loop;
    char why[256], where[160];
    nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof(why) };
    nc_listener *l = NULL;
    const nc_conn_callbacks cbs = { 0 };

    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(nc_listen(loop, d->spec, &o, &cbs, NULL, &l),
                     -EADDRINUSE);
    assert_null(l);
    snprintf(where, sizeof(where), "cannot bind %s: Address already in use; ",
             d->spec);
    if (strncmp(why, where, strlen(where)) != 0 || !strstr(why, says))
        fail_msg("errbuf \"%s\" does not say \"%s\" after \"%s\"", why, says,
                 where);
    assert_int_equal(nc_loop_run(loop, NC_RUN_DEFAULT), 0);
    nc_loop_free(loop);
}

static void regular_file_at_the_path_is_kept_and_refused(void **state)
{
    struct dir *d = *state;
    write_file(d->at);
    assert_refused(d, "that path is a regular file, not a socket");
    assert_file_intact(d->at);
}

static void symlink_to_a_regular_file_is_kept_and_refused(void **state)
{
    struct dir *d = *state;
    write_file(d->target);
    assert_int_equal(symlink(d->target, d->at), 0);
    assert_refused(d, "that path is a symbolic link");
    assert_link_intact(d->at, d->target);
    assert_file_intact(d->target);
}

static void symlink_to_a_stale_socket_is_kept_and_refused(void **state)
{
    struct dir *d = *state;
    unix_socket_at(d->target, false);
    assert_int_equal(symlink(d->target, d->at), 0);
    assert_refused(d, "that path is a symbolic link");
    assert_link_intact(d->at, d->target);
    struct stat st;
    assert_int_equal(lstat(d->target, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
}

static void live_socket_is_refused_and_its_holder_named(void **state)
{
    struct dir *d = *state;
    int live = unix_socket_at(d->at, true);
    char says[96];
    snprintf(says, sizeof(says), "a server is listening on that socket "
             "(held by %s (pid %d))", self_comm(), (int)getpid());
    assert_refused(d, says);
    /* The live server still has its socket: a client still reaches it. */
    nc_endpoint ep;
    assert_int_equal(nc_endpoint_parse(&ep, d->spec, NULL, 0), 0);
    int c = client_connect(&ep.addr);
    assert_true(c >= 0);
    close(c);
    close(live);
}

static void stale_socket_is_removed_and_bound(void **state)
{
    struct dir *d = *state;
    unix_socket_at(d->at, false);
    nc_loop *loop;
    struct server s;
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, d->spec, NULL, SERVER_ECHO), 0);
    int fd = client_connect(&s.addr);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "up", 2), 2);
    char buf[2];
    assert_true(server_wait_bytes(&s, 2, 2000));
    assert_int_equal(read_full(fd, buf, 2, 2000), 2);
    assert_memory_equal(buf, "up", 2);
    close(fd);
    nc_loop_free(loop);
    server_free(&s);
    struct stat st;
    assert_int_equal(lstat(d->at, &st), -1);   /* and unlinked at the end */
}

static void directory_at_the_path_is_kept_and_refused(void **state)
{
    struct dir *d = *state;
    assert_int_equal(mkdir(d->at, 0700), 0);
    assert_refused(d, "that path is a directory");
    struct stat st;
    assert_int_equal(lstat(d->at, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(regular_file_at_the_path_is_kept_and_refused),
        CASE(symlink_to_a_regular_file_is_kept_and_refused),
        CASE(symlink_to_a_stale_socket_is_kept_and_refused),
        CASE(live_socket_is_refused_and_its_holder_named),
        CASE(stale_socket_is_removed_and_bound),
        CASE(directory_at_the_path_is_kept_and_refused),
    };
    return cmocka_run_group_tests_name("listener_unix", tests, NULL, NULL);
}
