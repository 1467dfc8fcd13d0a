/*
 * conn.h - the connection object, shared by conn.c (lifecycle and
 * reading), conn_write.c (writes and backpressure) and connect.c
 * (outgoing connects).
 */
#ifndef NC_CONN_H
#define NC_CONN_H

#include "internal.h"

enum conn_state { CONN_CONNECTING, CONN_OPEN, CONN_CLOSING, CONN_CLOSED };

struct nc_conn {
    struct handle handle;      /* on the loop's I/O list */
    struct conn_link link;     /* on the listener's list */
    nc_loop *loop;
    nc_listener *listener;     /* NULL for outgoing connections */
    struct watch w;
    nc_timer timer;            /* connect timeout, then idle timeout */
    nc_conn_callbacks cbs;
    void *ud;
    nc_conn_options opt;
    struct outq out;
    char *in;                  /* unconsumed input */
    size_t in_len, in_cap;
    uint64_t last_active_ns;
    int fd;
    enum conn_state state;
    bool read_paused;          /* nc_conn_read_stop */
    bool backpressure;         /* output above high_water: reading paused */
    bool eof;                  /* peer closed its side (keep_half_open) */
    bool shut_wanted;          /* nc_conn_shutdown: SHUT_WR after flush */
    bool shut_done;
    nc_close_reason reason;
    int err;
    struct defer_node close_node;  /* delivers on_close, then frees */
};

/* conn.c */
/* Wrap socket fd of family (AF_INET, AF_INET6 or AF_UNIX): TCP options
 * are applied to the first two. */
nc_conn *conn_alloc(nc_loop *loop, int fd, int family,
                    const nc_conn_options *opt,
                    const nc_conn_callbacks *cbs, void *ud, int *err);
/* Bring the kernel's interest in line with the state (a syscall only when
 * it changed); closes c if that fails. */
void conn_rearm(nc_conn *c);
/* Close now with reason and err (0 or negative errno); on_close is
 * deferred to the end of the iteration. reset sends RST. Idempotent. */
void conn_teardown(nc_conn *c, nc_close_reason reason, int err, bool reset);
void conn_finish(nc_conn *c, nc_close_reason reason, int err);
/* Close for an I/O failure err (negative errno) seen during op. */
void conn_fail(nc_conn *c, nc_op op, int err);
/* The queue became empty: do what waited for the flush. */
void conn_flushed(nc_conn *c);
/* The connect completed or the socket was accepted: open it. */
void conn_became_open(nc_conn *c);

/* conn_write.c */
/* Send queued output on writability. */
void conn_flush(nc_conn *c);
/* The queue changed: update backpressure and interest, maybe on_drain. */
void queue_changed(nc_conn *c);

/* connect.c */
/* Writability while connecting: read the outcome and open or fail. */
void conn_connected(nc_conn *c);

#endif
