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

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define CASE(f) cmocka_unit_test_teardown(f, proc_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(a_second_echo_server_on_a_taken_port_exits_naming_the_first),
    };
    return cmocka_run_group_tests_name("examples_limits", tests, proc_setup,
                                       NULL);
}
