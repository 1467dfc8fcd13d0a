/*
 * test_examples_limits.c - the example servers defending what they hold:
 * a second server on a port that one already serves exits saying so and
 * naming the holder (instead of the kernel splitting the clients between
 * the two), and under a descriptor limit (prlimit --nofile) a flood of
 * idle connections from one address, or from several, does not lock out
 * a client from another address.
 *
 * The programs are found as test_examples.c finds them ($NC_BIN_DIR, else
 * ../bin next to this binary). Every wait has a deadline; every client is
 * on loopback (127.0.0.0/8).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netcore.h"
#include "proc.h"

static void a_second_echo_server_on_a_taken_port_exits_naming_the_first(
    void **state)
{
    char port[16], held[64];
    struct proc *first, *second;
    int status;

    (void)state;
    first = proc_start("echo-server", "--listen", "127.0.0.1:0", NULL);
    snprintf(port, sizeof port, "127.0.0.1:%u", listen_port(first));
    second = proc_start("echo-server", "--listen", port, NULL);
    status = proc_finish(second);
    if (status != 1)
        fail_msg("the second server exited with %d; stdout: %s stderr: %s",
                 status, second->buf[OUT], second->buf[ERR]);
    assert_null(strstr(second->buf[OUT], "listening on"));
    assert_non_null(strstr(second->buf[ERR], "Address already in use"));
    snprintf(held, sizeof held, "held by echo-server (pid %d)",
             (int)first->pid);
    if (strstr(second->buf[ERR], held) == NULL)
        fail_msg("stderr does not say \"%s\": %s", held, second->buf[ERR]);
    /* The first one serves on, alone. */
    assert_int_equal(proc_stop(first, SIGTERM), 0);
}

/* ---- under a descriptor limit ----------------------------------------- */

#define NOFILE "--nofile=256"
#define FLOOD 400           /* more than the server's 256 descriptors */

/* A TCP socket from src (port chosen by the kernel) connecting to
 * 127.0.0.1:port, non-blocking: the kernel completes the handshake into
 * the server's backlog whether or not the server accepts it. */
static int connect_from(const char *src, unsigned port)
{
    struct sockaddr_in from, to;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    assert_true(fd >= 0);
    memset(&from, 0, sizeof from);
    from.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0)
        assert_int_equal(errno, EINPROGRESS);
    return fd;
}

/* Open n idle connections from src that stay silent, each established
 * (in the server's backlog at least) before the next. */
static void flood(const char *src, unsigned port, int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        struct pollfd p;
        fds[i] = connect_from(src, port);
        p.fd = fds[i];
        p.events = POLLOUT;
        assert_int_equal(poll(&p, 1, ms_left(deadline())), 1);
    }
}

/* A client from src sends a line and gets it back: true, or false if it
 * was reset, refused or not answered in time. */
static bool answered(const char *src, unsigned port)
{
    static const char line[] = "still served?\n";
    char back[sizeof line];
    size_t got = 0;
    uint64_t until = deadline();
    int fd = connect_from(src, port);
    struct pollfd p = {fd, POLLOUT, 0};
    bool ok = poll(&p, 1, ms_left(until)) == 1 &&
              send(fd, line, sizeof line - 1, MSG_NOSIGNAL) ==
                  (ssize_t)(sizeof line - 1);

    while (ok && got < sizeof line - 1) {
        ssize_t n;
        p.events = POLLIN;
        ok = poll(&p, 1, ms_left(until)) == 1 &&
             (n = recv(fd, back + got, sizeof line - 1 - got, 0)) > 0;
        if (ok)
            got += (size_t)n;
    }
    close(fd);
    return ok && memcmp(back, line, sizeof line - 1) == 0;
}

/* echo-server under prlimit --nofile=256, on 127.0.0.1 with a port the
 * kernel chooses. */
static struct proc *limited_echo_server(unsigned *port)
{
    char path[4200];
    struct proc *p;

    snprintf(path, sizeof path, "%s/echo-server", proc_bin_dir());
    p = proc_start("/usr/bin/prlimit", NOFILE, path, "--listen",
                   "127.0.0.1:0", NULL);
    *port = listen_port(p);
    return p;
}

static void close_all(int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++)
        close(fds[i]);
}

/* 400 idle connections from one address: past its cap (128 by default)
 * each is reset at once, so descriptors stay free for everyone else. */
static void idle_flood_from_one_address_leaves_room_for_another(void **state)
{
    static int fds[FLOOD];
    unsigned port;
    struct proc *p = limited_echo_server(&port);
    const char *total;
    unsigned long shed = 0;

    (void)state;
    flood("127.0.0.1", port, fds, FLOOD);
    if (!answered("127.0.0.2", port)) {
        proc_stop(p, SIGTERM);
        fail_msg("a client from 127.0.0.2 got no answer while 127.0.0.1 "
                 "held %d idle connections; the server said: %s%s", FLOOD,
                 p->buf[OUT], p->buf[ERR]);
    }
    close_all(fds, FLOOD);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
    total = strstr(p->buf[OUT], "total: ");
    assert_non_null(total);
    assert_non_null(strstr(total, " accept errors, "));
    /* 272 on epoll; on io_uring the kernel accepts ahead of the program
     * and can meet the limit first, so a few go by eviction instead. */
    shed = strtoul(strstr(total, " accept errors, ") + 16, NULL, 10);
    if (shed < FLOOD / 2)
        fail_msg("shed %lu: %s", shed, p->buf[OUT]);
}

/* 400 idle connections from four addresses, each under the cap, exhaust
 * the descriptors: a newcomer closes the longest-idle one (evict_idle)
 * instead of being reset. */
static void idle_flood_from_many_addresses_gives_way_to_a_newcomer(
    void **state)
{
    static int fds[FLOOD];
    static const char *from[] = {"127.0.0.11", "127.0.0.12", "127.0.0.13",
                                 "127.0.0.14"};
    unsigned port;
    struct proc *p = limited_echo_server(&port);
    int i, each = FLOOD / 4;

    (void)state;
    for (i = 0; i < 4; i++)
        flood(from[i], port, fds + i * each, each);
    if (!answered("127.0.0.2", port)) {
        proc_stop(p, SIGTERM);
        fail_msg("a client from 127.0.0.2 got no answer while four "
                 "addresses held %d idle connections; the server said: "
                 "%s%s", FLOOD, p->buf[OUT], p->buf[ERR]);
    }
    close_all(fds, FLOOD);
    assert_int_equal(proc_stop(p, SIGTERM), 0);
}

#define CASE(f) cmocka_unit_test_teardown(f, proc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(a_second_echo_server_on_a_taken_port_exits_naming_the_first),
        CASE(idle_flood_from_one_address_leaves_room_for_another),
        CASE(idle_flood_from_many_addresses_gives_way_to_a_newcomer),
    };
    return cmocka_run_group_tests_name("examples_limits", tests, proc_setup,
                                       NULL);
}
