/*
 * proc.h - driving the example programs from tests: start one from the
 * build's bin directory with its stdout and stderr on pipes, wait for a
 * line of its output, signal it, reap it; and the plain loopback sockets
 * to talk to it. Every wait has a deadline (longer under valgrind).
 * (test_examples*.c)
 */
#ifndef NC_TEST_PROC_H
#define NC_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OUT_MAX 65536

struct proc {
    pid_t pid;              /* 0 once reaped */
    int fd[2];              /* stdout, stderr pipes; -1 at end of stream */
    char buf[2][OUT_MAX];   /* what each printed, NUL-terminated */
    size_t len[2];
    int status;             /* waitpid status, once reaped */
};

enum { OUT = 0, ERR = 1 };

/* Group setup: find the programs ($NC_BIN_DIR, else ../bin next to the
 * test binary). Per-case teardown: end whatever a case left running. */
int proc_setup(void **state);
int proc_teardown(void **state);
/* The directory the programs are in. */
const char *proc_bin_dir(void);

/* Milliseconds on CLOCK_MONOTONIC; a deadline from now; what is left. */
uint64_t now_ms(void);
uint64_t deadline(void);
int ms_left(uint64_t until);

/* Start program prog (an example's name, or an absolute path) with the
 * NULL-terminated arguments; stdin is /dev/null. Fails the case if it
 * cannot run. */
struct proc *proc_start(const char *prog, ...);
/* Read what is available, waiting until `until`: false when the time ran
 * out or both pipes are at their end. */
bool proc_pump(struct proc *p, uint64_t until);
/* Wait until stream s holds a complete line starting with prefix: that
 * line's start, or NULL at the deadline or the end of output. */
const char *proc_wait_line(struct proc *p, int s, const char *prefix);
/* Read both pipes to their end and reap it (killed if late): its exit
 * status, or -1 if it was killed. */
int proc_finish(struct proc *p);
/* Send sig, then proc_finish(). */
int proc_stop(struct proc *p, int sig);
/* The port of its first "listening on ADDRESS:PORT (...)" line. */
unsigned listen_port(struct proc *p);

/* A connected TCP socket to 127.0.0.1:port. */
int tcp_connect(unsigned port);
/* Send all of data (fails the case otherwise). */
void send_all(int fd, const void *data, size_t len);
/* Read until the peer closes, max bytes or the deadline: the byte count;
 * buf is NUL-terminated, *eof tells whether the end came. */
size_t read_until_eof(int fd, char *buf, size_t max, bool *eof);
/* Read exactly len bytes (fails the case otherwise). */
void recv_exact(int fd, char *buf, size_t len);

#endif /* NC_TEST_PROC_H */
