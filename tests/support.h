/* support.h - helpers shared by the test programs: run a loop until a
 * condition holds (with a bound), plain blocking client sockets, and a
 * look at the kernel's socket table. */
#ifndef NC_TEST_SUPPORT_H
#define NC_TEST_SUPPORT_H

#include "netcore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Run loop one iteration at a time until pred(arg) is true or timeout_ms
 * of real time passed. A guard timer wakes the loop so the bound holds
 * even when no event comes. Returns pred's final value. */
bool run_until(nc_loop *loop, bool (*pred)(void *), void *arg,
               unsigned timeout_ms);

/* cmocka fixtures: a fresh loop in *state, freed afterwards. */
int loop_setup(void **state);
int loop_teardown(void **state);

/* Run loop for ms of real time in which nothing is expected to happen,
 * and return how many iterations it made: a loop that waits makes a few,
 * one that spins hundreds of thousands. */
uint64_t iterations_during(nc_loop *loop, unsigned ms);

/* Wait until poll() reports any of events on fd (POLLRDHUP, POLLERR...);
 * true if one came within timeout_ms. */
bool wait_events(int fd, short events, unsigned timeout_ms);

/* Predicate for run_until: *(bool *)arg. */
bool flag_set(void *arg);

/* Predicate for run_until on a counter: ((struct count_goal *)arg). */
struct count_goal {
    const unsigned long *counter;
    unsigned long goal;
};
bool count_reached(void *arg);

/* A blocking client socket connected to a (any family); -errno on failure. */
int client_connect(const nc_addr *a);

/* Read exactly len bytes within timeout_ms; returns len, 0 at end of
 * stream, or -errno (-ETIMEDOUT when the time ran out). */
long read_full(int fd, void *buf, size_t len, unsigned timeout_ms);

/* Wait until fd is readable; returns true if it became readable in time. */
bool wait_readable(int fd, unsigned timeout_ms);

/* How many TCP sockets with local port `port` are in kernel state `state`
 * (e.g. 8 = CLOSE_WAIT), from /proc/net/tcp and /proc/net/tcp6. */
int count_tcp_state(unsigned port, int state);

/* The listener's first bound address, for clients to connect to. */
nc_addr listener_addr0(const nc_listener *l);

/* This process's name as the kernel keeps it (/proc/self/comm, at most
 * 15 characters): what a message naming the holder of a port says. */
const char *self_comm(void);

/* True when the tests run under valgrind (NC_UNDER_VALGRIND=1): scale
 * loads down. */
bool under_valgrind(void);

/* The entries of /proc/self/fd: the descriptors this process has open,
 * plus the directory's own and "." and "..". */
int count_fds(void);

/* ---- a test server: echo (or another mode) with exact close accounting */

enum server_mode {
    SERVER_ECHO = 0,       /* write back every byte */
    SERVER_CLOSE_IN_DATA,  /* reply "bye", then nc_conn_close in on_data */
    SERVER_ABORT_IN_DATA,  /* nc_conn_abort in on_data */
    SERVER_CLOSE_IN_OPEN,  /* nc_conn_close in on_open */
    SERVER_HOARD,          /* never consume input */
    SERVER_SINK,           /* consume and drop (recorded in the rec) */
    SERVER_LINES           /* answer each complete line ("...\n") with
                              itself; leave a partial line unconsumed.
                              With pause_each: nc_conn_read_stop after
                              each line, nc_conn_read_start from a
                              deferred call */
};

/* One accepted connection's record (stays valid until server_free). */
struct conn_rec {
    nc_conn *conn;         /* NULL once closed */
    int closes;            /* on_close calls seen: must end as 1 */
    nc_close_reason reason;
    int err;
    unsigned long long bytes;
    char data[4096];       /* SINK and LINES: the first bytes consumed */
    size_t len;
    int eof_calls;         /* on_data calls with nc_conn_eof() true */
    char eof_data[256];    /* what the last of them carried */
    size_t eof_len;
};

struct server {
    nc_loop *loop;
    nc_listener *l;
    nc_addr addr;
    enum server_mode mode;
    unsigned long opened, closed, drained;
    unsigned long by_reason[16];
    bool pause_each;       /* SERVER_LINES: see above */
    size_t max_queue;      /* SERVER_LINES: take no more lines while more
                              than this is queued (0: no limit) */
    int sndbuf;            /* SO_SNDBUF for accepted sockets (0: kernel's),
                              to make output queue up in the library */
    nc_close_reason last_reason;
    int last_err;
    size_t max_queued;
    unsigned long long bytes_in;
    struct conn_rec **recs;
    size_t nrecs, cap;
    int write_err;         /* first error nc_conn_write returned */
};

/* Listen on spec with o (may be NULL) and the server's callbacks.
 * Returns nc_listen's result. */
int server_start(struct server *s, nc_loop *loop, const char *spec,
                 const nc_listener_options *o, enum server_mode mode);
/* True if every opened connection saw on_close exactly once. */
bool server_all_closed_once(const struct server *s);
/* Run the loop until the server opened (closed) n connections in all,
 * for at most 5 s; whether it did. */
bool server_wait_opened(struct server *s, unsigned long n);
bool server_wait_closed(struct server *s, unsigned long n);
/* Run the loop until the server received n bytes in all, or timeout_ms. */
bool server_wait_bytes(struct server *s, unsigned long long n,
                       unsigned timeout_ms);
/* Free the records (the listener is closed by nc_loop_free or by you). */
void server_free(struct server *s);

#endif
