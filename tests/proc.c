/*
 * proc.c - driving the example programs from tests (proc.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Every process a case starts, so teardown can end it if the case fails. */
static struct proc procs[4];
static char bin_dir[PATH_MAX];

uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Deadlines: generous, as the programs may run under sanitizers. */
uint64_t deadline(void)
{
    const char *v = getenv("NC_UNDER_VALGRIND");

    return now_ms() + (v != NULL && strcmp(v, "1") == 0 ? 60000 : 10000);
}

int ms_left(uint64_t until)
{
    uint64_t now = now_ms();

    return now >= until ? 0 : (int)(until - now);
}

/* ---- processes ---------------------------------------------------------- */

struct proc *proc_start(const char *prog, ...)
{
    char path[PATH_MAX + 64];
    char *argv[32];
    posix_spawn_file_actions_t fa;
    int out[2], err[2], argc = 0, rc;
    struct proc *p = NULL;
    va_list ap;
    size_t i;

    for (i = 0; i < sizeof procs / sizeof procs[0]; i++)
        if (procs[i].pid == 0 && procs[i].fd[0] < 0 && procs[i].fd[1] < 0)
            p = &procs[i];
    assert_non_null(p);
    if (prog[0] == '/')
        snprintf(path, sizeof path, "%s", prog);    /* not an example */
    else
        snprintf(path, sizeof path, "%s/%s", bin_dir, prog);
    argv[argc++] = path;
    va_start(ap, prog);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;

    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    memset(p, 0, sizeof *p);
    rc = posix_spawn(&p->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    p->fd[OUT] = out[0];
    p->fd[ERR] = err[0];
    if (rc != 0) {
        p->pid = 0;
        fail_msg("cannot run %s: %s (build the examples first)", path,
                 strerror(rc));
    }
    return p;
}

/* Read what is available on the process's pipes, waiting until `until`.
 * Returns false when the time ran out or both pipes are at their end. */
bool proc_pump(struct proc *p, uint64_t until)
{
    struct pollfd pfd[2];
    int i, n = 0, map[2];

    for (i = 0; i < 2; i++) {
        if (p->fd[i] < 0)
            continue;
        pfd[n].fd = p->fd[i];
        pfd[n].events = POLLIN;
        map[n++] = i;
    }
    if (n == 0 || poll(pfd, (nfds_t)n, ms_left(until)) <= 0)
        return false;
    for (i = 0; i < n; i++) {
        int s = map[i];
        ssize_t got;
        if (pfd[i].revents == 0)
            continue;
        got = read(p->fd[s], p->buf[s] + p->len[s], OUT_MAX - 1 - p->len[s]);
        if (got <= 0) {
            close(p->fd[s]);
            p->fd[s] = -1;
            continue;
        }
        p->len[s] += (size_t)got;
        p->buf[s][p->len[s]] = '\0';
    }
    return true;
}

/* Wait until stream s holds a complete line starting with prefix; returns
 * that line's start, or NULL at the deadline or end of output. */
const char *proc_wait_line(struct proc *p, int s, const char *prefix)
{
    uint64_t until = deadline();

    for (;;) {
        const char *line = p->buf[s];
        while (line != NULL && *line != '\0') {
            const char *nl = strchr(line, '\n');
            if (nl == NULL)
                break;
            if (strncmp(line, prefix, strlen(prefix)) == 0)
                return line;
            line = nl + 1;
        }
        if (!proc_pump(p, until))
            return NULL;
    }
}

/* Read both pipes to their end and reap the process; kill it if it does
 * not finish in time. Returns its exit status, or -1 if it was killed. */
int proc_finish(struct proc *p)
{
    uint64_t until = deadline();

    while (proc_pump(p, until))
        continue;
    if (p->fd[OUT] >= 0 || p->fd[ERR] >= 0)
        kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->status, 0);
    p->pid = 0;
    while (proc_pump(p, until))
        continue;
    return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

int proc_stop(struct proc *p, int sig)
{
    assert_int_equal(kill(p->pid, sig), 0);
    return proc_finish(p);
}

int proc_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        struct proc *p = &procs[i];
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
        if (p->fd[OUT] >= 0)
            close(p->fd[OUT]);
        if (p->fd[ERR] >= 0)
            close(p->fd[ERR]);
        p->fd[OUT] = p->fd[ERR] = -1;
    }
    return 0;
}

/* The port of the first "listening on ADDRESS:PORT (WHERE)" line. */
unsigned listen_port(struct proc *p)
{
    const char *line = proc_wait_line(p, OUT, "listening on ");
    const char *paren, *colon;

    if (line == NULL)
        fail_msg("no 'listening on' line; stdout: %s stderr: %s",
                 p->buf[OUT], p->buf[ERR]);
    paren = strstr(line, " (");
    assert_non_null(paren);
    for (colon = paren; colon > line && *colon != ':'; colon--)
        continue;
    return (unsigned)strtoul(colon + 1, NULL, 10);
}

/* ---- plain sockets -------------------------------------------------------- */

int tcp_connect(unsigned port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

void send_all(int fd, const void *data, size_t len)
{
    const char *d = data;

    while (len > 0) {
        ssize_t n = send(fd, d, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        d += n;
        len -= (size_t)n;
    }
}

/* Read until the peer closes (or max bytes, or the deadline). Returns the
 * byte count; buf is NUL-terminated. *eof tells whether the end came. */
size_t read_until_eof(int fd, char *buf, size_t max, bool *eof)
{
    uint64_t until = deadline();
    size_t len = 0;

    *eof = false;
    while (len < max - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, ms_left(until)) <= 0)
            break;
        n = recv(fd, buf + len, max - 1 - len, 0);
        if (n <= 0) {
            *eof = true;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

void recv_exact(int fd, char *buf, size_t len)
{
    uint64_t until = deadline();
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        assert_true(poll(&pfd, 1, ms_left(until)) == 1);
        n = recv(fd, buf + got, len - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
}

int proc_setup(void **state)
{
    const char *env = getenv("NC_BIN_DIR");
    char self[PATH_MAX - 16];
    ssize_t n;
    char *slash;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof procs / sizeof procs[0]; i++)
        procs[i].fd[OUT] = procs[i].fd[ERR] = -1;
    if (env != NULL && *env != '\0') {
        snprintf(bin_dir, sizeof bin_dir, "%s", env);
        return 0;
    }
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    slash = strrchr(self, '/');    /* build/tests/test_examples */
    if (slash == NULL)
        return -1;
    *slash = '\0';
    snprintf(bin_dir, sizeof bin_dir, "%s/../bin", self);
    return 0;
}

const char *proc_bin_dir(void)
{
    return bin_dir;
}
