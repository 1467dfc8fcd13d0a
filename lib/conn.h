/*
 * conn.h - the connection object, shared by conn.c (life and close),
 * conn_read.c (the input path), conn_write.c (the output path), connect.c
 * (outgoing connects) and listener.c (accepting).
 *
 * A connection is small on purpose (56 bytes, from a per-loop slab): what
 * its listener's connections share lives in a profile they point to, and
 * buffers, a deadline and TLS state live in a "cold" part that exists only
 * while there is something in it. An idle connection owns no buffer.
 *
 * States: CONNECTING (nc_connect in progress) -> HANDSHAKE (TLS only: the
 * socket is open, the handshake runs, on_open has not) -> OPEN (input
 * delivered, writes accepted) -> CLOSING (graceful close: queued output is
 * flushed,
 * input read and discarded) -> LINGER (output sent and FIN sent; input
 * discarded until the peer's FIN or the linger time) -> CLOSED (fd closed;
 * on_close and the free wait at the end of the iteration). Any state can
 * go straight to CLOSED.
 */
#ifndef NC_CONN_H
#define NC_CONN_H

#include "loop.h"
#include "outq.h"
#include "timeout.h"

/* What the connections of one listener, or one nc_connect(), share. */
struct conn_profile {
    nc_loop *loop;
    nc_listener *listener;     /* NULL for an outgoing connection */
    nc_conn_callbacks cbs;
    nc_conn_options opt;       /* with the defaults filled in */
    uint16_t idle_list;        /* list for opt.idle_timeout_ms */
    uint16_t drain_list;       /* bounds a graceful close */
    uint16_t linger_list;      /* bounds the wait for the peer's FIN */
    uint16_t connect_list;     /* opt.connect_timeout_ms (outgoing) */
    uint16_t handshake_list;   /* TLS: bounds the handshake */
    bool tcp;                  /* AF_INET/AF_INET6: TCP options apply */
    bool set_nodelay;          /* set TCP_NODELAY on the connection itself
                                  (not inherited from a listening socket) */
    nc_tls_ctx *tls;           /* a reference, or NULL: no TLS */
    char *server_name;         /* outgoing TLS: the name to check */
    struct dial *dial;         /* nc_connect to a host name (dial.h), or
                                  NULL */
};

struct tls_conn;               /* tls.c */
struct splice_dir;             /* splice.c */

/* The part of a connection that exists only while it holds something. */
struct conn_cold {
    nc_conn *conn;             /* the owner */
    struct outq out;           /* output the kernel has not taken */
    char *in;                  /* unconsumed input: in_len bytes from
                                  in + in_off (consumed from the front
                                  without moving the rest) */
    size_t in_off, in_len, in_cap;
    struct tentry deadline;    /* nc_conn_set_deadline */
    struct defer_node redeliver;   /* hand buffered input back */
    uint16_t idle_override;    /* nc_conn_set_idle_timeout while
                                  connecting: the list to use once open */
    int close_err;             /* the err a graceful close will report,
                                  or the end of stream will (pending) */
    bool in_busy;              /* on_data is reading in: a clear only
                                  empties it, the free waits (conn_read.c) */
    struct tls_conn *tls;      /* TLS state, or NULL */
    size_t sending;            /* io_uring: bytes in the send submitted */
    size_t fresh;              /* io_uring: bytes at the queue's tail not
                                  offered to the kernel yet (see
                                  conn_refused) */
    struct splice_dir *splice_out; /* nc_conn_splice: this one's input
                                      goes to another (splice.h) */
    struct splice_dir *splice_in;  /* ... another's input comes here */
    uint64_t spliced;          /* bytes moved out of this one's input by
                                  splices (nc_conn_bytes_spliced) */
};

enum conn_state {
    CS_CONNECTING = 0,
    CS_HANDSHAKE,
    CS_OPEN,
    CS_CLOSING,
    CS_LINGER,
    CS_CLOSED
};

/* flags: the state, the close reason, and one bit per condition. Every
 * mask is 64 bits wide, so that ~CF_X keeps the upper half. */
#define CF_BIT(n) ((uint64_t)1 << (n))
#define CF_STATE_MASK ((uint64_t)0x7)
#define CF_REASON_SHIFT 3          /* 4 bits: nc_close_reason */
#define CF_REASON_MASK ((uint64_t)0xf << CF_REASON_SHIFT)
#define CF_PAUSED CF_BIT(7)        /* nc_conn_read_stop */
#define CF_BACKPRESSURE CF_BIT(8)  /* output above high water */
#define CF_EOF CF_BIT(9)           /* the peer's end of stream was read */
#define CF_SHUT_WANTED CF_BIT(10)  /* nc_conn_shutdown: FIN after flush */
#define CF_SHUT_DONE CF_BIT(11)
#define CF_SENT CF_BIT(12)         /* a send went out */
#define CF_NODELAY_DONE CF_BIT(13)
#define CF_DRAINED CF_BIT(14)      /* the last read emptied the socket */
#define CF_REDELIVER CF_BIT(15)    /* a redelivery is queued */
#define CF_WANT_READ CF_BIT(16)    /* the kernel watches for input (and the
                                      peer's end: EV_READ | EV_RDHUP) */
#define CF_WANT_WRITE CF_BIT(17)   /* the kernel watches for writability */
#define CF_REGISTERED CF_BIT(18)   /* known to the kernel's epoll set */
#define CF_OPENED CF_BIT(19)       /* the socket opened: counted as open */
#define CF_TLS CF_BIT(20)          /* speaks TLS (cold->tls) */
/* On an io_uring loop (ring.h, conn_ring.c): */
#define CF_RING CF_BIT(21)         /* completes through the ring */
#define CF_R_ARMED CF_BIT(22)      /* a receive is in the kernel */
#define CF_R_CANCEL CF_BIT(23)     /* ... and its cancel was asked for */
#define CF_P_ARMED CF_BIT(24)      /* a poll request is in the kernel */
#define CF_P_OUT CF_BIT(25)        /* ... for POLLOUT (else hang-ups only) */
#define CF_P_CANCEL CF_BIT(26)     /* ... and its cancel was asked for */
#define CF_SEND_QUEUED CF_BIT(27)  /* a send waits for the next submission */
#define CF_FULL CF_BIT(28)         /* the last send found the socket full */
#define CF_EOF_PENDING CF_BIT(29)  /* the end of stream came while input
                                      was not delivered: it follows that
                                      input */
#define CF_PEER_SENT CF_BIT(30)    /* the peer may still be sending: input
                                      came while closing (io_uring), or
                                      was left unconsumed by the close */
#define CF_HUP CF_BIT(31)          /* the kernel reported a hang-up with
                                      no error: nothing is left to watch
                                      for until reading resumes */
#define CF_WAITED CF_BIT(32)       /* output the kernel refused was
                                      queued since the last on_drain */
#define CF_P_IN CF_BIT(35)         /* io_uring: the poll asks for POLLIN
                                      (a spliced connection's input) */
#define CF_SPLICED CF_BIT(34)      /* input goes to another connection
                                      through a pipe (cold->splice_out) */
#define CF_IN_INPUT CF_BIT(33)     /* received bytes are being handed to the
                                      user: a close begun meanwhile decides
                                      between FIN and lingering only once
                                      they all have been (input_done) */

struct nc_conn {
    const struct conn_profile *prof;
    void *ud;
    struct conn_cold *cold;    /* NULL while it would be empty */
    union {
        /* Until closed: its place in a timeout list (idle, connect, drain
         * or linger); idle.tag is the fd-table stamp (watch.h). */
        struct tentry idle;
        /* Closed: queued for on_close. */
        struct {
            struct defer_node close_node;
            int close_err;
        } done;
    };
    int fd;
    uint64_t flags;
};

static inline enum conn_state conn_state(const nc_conn *c)
{
    return (enum conn_state)(c->flags & CF_STATE_MASK);
}

static inline void conn_set_state(nc_conn *c, enum conn_state s)
{
    c->flags = (c->flags & ~CF_STATE_MASK) | (uint64_t)s;
}

static inline nc_close_reason conn_reason(const nc_conn *c)
{
    return (nc_close_reason)((c->flags & CF_REASON_MASK) >> CF_REASON_SHIFT);
}

static inline void conn_set_reason(nc_conn *c, nc_close_reason r)
{
    c->flags = (c->flags & ~CF_REASON_MASK) | ((uint64_t)r << CF_REASON_SHIFT);
}

static inline nc_loop *conn_loop(const nc_conn *c)
{
    return c->prof->loop;
}

static inline size_t conn_queued(const nc_conn *c)
{
    return c->cold ? c->cold->out.bytes : 0;
}

/* What of the queue the kernel refused for lack of room: what flow
 * control sees (backpressure, on_drain, nc_conn_queued). On io_uring a
 * write inside a callback is offered to the kernel with the iteration's
 * submission, where epoll offers it at once: until then it is "fresh",
 * neither sent nor refused, so that both backends show the same queue;
 * past high_water (or 64 KiB) of them they are offered at once (conn_write.c's
 * offer_now). */
static inline size_t conn_refused(const nc_conn *c)
{
    return c->cold ? c->cold->out.bytes - c->cold->fresh : 0;
}

static inline size_t conn_buffered(const nc_conn *c)
{
    return c->cold ? c->cold->in_len : 0;
}

/* True while input is handed to on_data. */
static inline bool conn_delivering(const nc_conn *c)
{
    return conn_state(c) == CS_OPEN &&
           !(c->flags & (CF_PAUSED | CF_BACKPRESSURE | CF_EOF));
}

/* ---- conn.c ---------------------------------------------------------- */
/* Fill *dst with src (NULL = all defaults) and the defaults applied.
 * Errors: -EINVAL (a timeout above 24.8 days). */
int nc__conn_options_resolve(nc_conn_options *dst, const nc_conn_options *src);
/* Resolve the profile's timeout lists (after p->tls is set). Errors:
 * nc__tlist_get's. */
int nc__conn_profile_lists(struct conn_profile *p);
/* Free an outgoing connection's own profile and what it holds. */
void nc__conn_profile_free(struct conn_profile *p);
/* A new connection on fd (registered in the fd table, not yet in the
 * kernel's interest), in no list; CS_CONNECTING. fd -1: a connection to
 * a host name, without a socket until its dial wins (dial.h). Errors:
 * -ENOMEM, the fd table's. The caller closes fd on failure. */
int nc__conn_new(const struct conn_profile *prof, int fd, void *ud,
                 nc_conn **out);
/* The connection is established: open it, arm reading, run on_open.
 * input_waiting: the kernel says input is there already (a deferred
 * accept): read it now, before asking epoll for anything. */
void nc__conn_open(nc_conn *c, bool input_waiting);
/* What c wants from the kernel now: CF_WANT_READ and CF_WANT_WRITE. */
uint64_t nc__conn_interest(const nc_conn *c);
/* Bring the kernel's interest in line with the state (a syscall only
 * when it changed); closes c if that fails. */
void nc__conn_rearm(nc_conn *c);
/* Close now with reason and err (0 or a negative errno); on_close is
 * deferred to the end of the iteration. reset sends RST. Idempotent. */
void nc__conn_teardown(nc_conn *c, nc_close_reason reason, int err,
                       bool reset);
/* Close c (NC_CLOSE_IDLE, -EMFILE) to admit a new connection: its
 * descriptor is free again when this returns, on every backend. */
void nc__conn_evict(nc_conn *c);
/* Close for an I/O failure err (negative errno) seen during op. */
void nc__conn_fail(nc_conn *c, nc_op op, int err);
/* The output queue is empty: finish what waited for it. */
void nc__conn_flushed(nc_conn *c);
/* half_close: the peer's end was delivered and our FIN is out: close
 * (NC_CLOSE_PEER, with the end's err). */
void nc__conn_both_done(nc_conn *c);
/* nc_conn_shutdown() was called, and c is open or closed because both
 * directions are done: writes say -EPIPE, another shutdown 0. */
bool nc__conn_shut_down(const nc_conn *c);
/* Begin a graceful close that reports reason and err once it is done. */
void nc__conn_begin_close(nc_conn *c, nc_close_reason reason, int err);
/* The cold part, created when missing. NULL when memory is short. */
struct conn_cold *nc__conn_cold(nc_conn *c);
/* TLS: the handshake completed; open for the user (on_open). */
void nc__conn_tls_opened(nc_conn *c);
/* Free the cold part if nothing is left in it. */
void nc__conn_cold_release(nc_conn *c);
/* Close with NC_CLOSE_SHUTDOWN (listener or loop going away). */
void nc__conn_shutdown_now(nc_conn *c);
/* Called for every connection of the loop (any state but closed). */
void nc__conn_each(nc_loop *loop, void (*fn)(nc_conn *c, void *arg),
                   void *arg);
/* The longest-idle open connection of the loop, or NULL. */
nc_conn *nc__conn_oldest_idle(nc_loop *loop);

/* The bytes of one receive were handed to the user (CF_IN_INPUT ends): a
 * graceful close begun meanwhile goes on, its queue being empty. */
static inline void nc__conn_input_done(nc_conn *c)
{
    c->flags &= ~CF_IN_INPUT;
    if (conn_state(c) == CS_CLOSING && conn_queued(c) == 0)
        nc__conn_flushed(c);
}

/* ---- conn_read.c ----------------------------------------------------- */
/* The fd table hands a connection its events. */
void nc__conn_ready(nc_conn *c, unsigned events);
/* Read what is there now, as if the socket had been reported readable. */
void nc__conn_read_now(nc_conn *c);
/* Hand n received bytes (plain text) to the user, buffering the rest. */
void nc__conn_input(nc_conn *c, const char *data, size_t n);
/* The peer ended its stream; err (0 or a negative value) is what the
 * close this begins will report. While input before it is not delivered
 * (reading paused, or a redelivery queued) the end waits behind it
 * (CF_EOF_PENDING), on every backend and for TLS alike. */
void nc__conn_input_end(nc_conn *c, int err);
/* Plain text from the TLS layer: delivered like received bytes, or kept
 * unconsumed while the user is not reading. */
void nc__conn_input_plain(nc_conn *c, const char *data, size_t n);
/* Reading resumed: hand buffered input back from the loop. */
void nc__conn_schedule_redeliver(nc_conn *c);
/* Drop the unconsumed input. Its memory is freed at once, or, while
 * on_data is reading it (in_busy), when on_data returns. */
void nc__conn_input_clear(nc_conn *c);
/* io_uring: n bytes arrived (from the ring's buffer); more: the socket
 * holds more. */
void nc__conn_received(nc_conn *c, const char *data, size_t n, bool more);
/* io_uring: the receive ended: res 0 at the peer's end of stream, else a
 * negative errno. */
void nc__conn_recv_end(nc_conn *c, int res);
/* io_uring: a poll request reported events (connect done, room to send,
 * a hang-up). */
void nc__conn_polled(nc_conn *c, unsigned events);
/* Read and drop what the socket holds (at most read_budget bytes),
 * setting CF_DRAINED when it is found empty and CF_EOF at its end.
 * Returns 0 or the read's negative errno. */
int nc__conn_discard_input(nc_conn *c);

/* ---- conn_write.c ---------------------------------------------------- */
/* Send len bytes on the socket now, queueing what the kernel does not
 * take (the TLS layer's ciphertext). 0, or a negative errno after the
 * connection was closed for it. */
int nc__conn_send_bytes(nc_conn *c, const void *data, size_t len);
/* Writable: send queued output. */
void nc__conn_flush(nc_conn *c);
/* io_uring: fill iov (at most max) with the queued output to send now,
 * noting its length in cold->sending; 0 when there is nothing to send. */
int nc__conn_send_iov(nc_conn *c, struct iovec *iov, int max);
/* io_uring: the send of cold->sending bytes completed with res. */
void nc__conn_sent(nc_conn *c, int res);
/* Bytes were queued: backpressure, interest. */
void nc__conn_queue_grew(nc_conn *c);
/* Output went out (or the socket has room again): backpressure released,
 * on_drain, interest. */
void nc__conn_queue_shrank(nc_conn *c);

/* ---- connect.c ------------------------------------------------------- */
/* Writability while connecting: read the outcome and open or fail. */
void nc__conn_connected(nc_conn *c);

#endif /* NC_CONN_H */
