/*
 * netcore.h - libnetcore, a small, fast TCP networking library for Linux.
 *
 * This header is the whole public API and its manual.
 *
 * Conventions
 * - Every function that can fail returns 0 (or a non-negative count) on
 *   success and a negative errno value on failure, never -1 with errno.
 *   nc_strerror() names such a value; nc_explain() says what it likely means.
 * - Objects are opaque and allocated by the library (nc_loop, nc_watch,
 *   nc_timer, nc_signal, nc_listener, nc_conn). Each has one function that
 *   ends it; the header says who owns what.
 * - A loop belongs to the thread that runs it. Every function taking a loop
 *   or an object of that loop must be called from that thread, except the
 *   ones marked "any thread" (nc_loop_post, nc_loop_stop).
 * - There is no global state: create as many loops as threads you want.
 * - The library never prints and never raises SIGPIPE (it sends with
 *   MSG_NOSIGNAL). Writes you make yourself on sockets must do the same,
 *   or ignore SIGPIPE in your program.
 */
#ifndef NETCORE_H
#define NETCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is exported from the shared library; the rest
 * of the library is built with hidden visibility. */
#pragma GCC visibility push(default)

#define NC_VERSION_MAJOR 0
#define NC_VERSION_MINOR 1
#define NC_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH". Static string. */
const char *nc_version(void);

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/* The system's text for an errno value; accepts err < 0 (as returned by
 * this library) or > 0. Static string, never NULL ("Success" for 0). */
const char *nc_strerror(int err);

/* The symbolic name of an errno value ("ECONNREFUSED"); accepts either
 * sign. Static string, never NULL ("E?" style text for unknown values). */
const char *nc_errname(int err);

/* What an operation was doing, for nc_explain() and nc_io_classify(). */
typedef enum nc_op {
    NC_OP_READ = 1,
    NC_OP_WRITE,
    NC_OP_ACCEPT,
    NC_OP_CONNECT,
    NC_OP_BIND
} nc_op;

/* A plain-words explanation of the likely cause of error err during op,
 * written for the person reading a log, e.g. for NC_OP_CONNECT and
 * -ECONNREFUSED: nothing listens at that address; the server may be bound
 * to loopback (127.0.0.1) only. Static string, never NULL; a generic
 * sentence for errors without a specific explanation. */
const char *nc_explain(nc_op op, int err);

/* ------------------------------------------------------------------------
 * Addresses and endpoint strings (lib/addr.c)
 *
 * Endpoint grammar, used everywhere an address is taken:
 *   192.168.1.104:7000        IPv4 literal
 *   [::1]:7000                IPv6 literal (brackets required with a port)
 *   [fe80::1%enp0s3]:7000     IPv6 link-local with a scope, by name or index
 *   enp0s3:7000               an interface name: all of its addresses
 *   *:7000  :7000  7000       all addresses (IPv6 dual-stack plus IPv4)
 *   localhost:7000            127.0.0.1 and ::1 (the only name; no DNS)
 *   unix:/path/to/socket      a Unix-domain stream socket
 *   unix:@name                a Linux abstract Unix socket (no file)
 * Port 0 lets the kernel pick (read the real one back from the listener).
 * Literals are parsed with inet_pton only.
 * ---------------------------------------------------------------------- */

/* Longest text nc_addr_format() or nc_endpoint_format() can produce,
 * including the terminating NUL. */
#define NC_ADDRSTRLEN 128
/* Longest interface name, including the NUL (IFNAMSIZ). */
#define NC_IFNAMSIZ 16

/* One concrete socket address: IPv4, IPv6 (with scope id) or Unix. Plain
 * data, owned by whoever holds it. len is the length to pass to bind(). */
typedef struct nc_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage storage;
    } u;
    socklen_t len;
} nc_addr;

typedef enum nc_endpoint_kind {
    NC_EP_ADDR = 1,   /* one literal address (IPv4 or IPv6, maybe scoped) */
    NC_EP_ANY,        /* all addresses: "*:P", ":P", "P" */
    NC_EP_IFACE,      /* every address of the interface in .iface */
    NC_EP_LOCALHOST,  /* "localhost:P": 127.0.0.1 and ::1 */
    NC_EP_UNIX        /* "unix:/path" */
} nc_endpoint_kind;

/* A parsed endpoint string. Plain data. */
typedef struct nc_endpoint {
    nc_endpoint_kind kind;
    uint16_t port;             /* host byte order; unused for NC_EP_UNIX */
    char iface[NC_IFNAMSIZ];   /* NC_EP_IFACE: the interface name */
    nc_addr addr;              /* NC_EP_ADDR and NC_EP_UNIX: the address */
} nc_endpoint;

/* Parse an endpoint string into *ep. On failure *ep is unchanged and, when
 * why is not NULL, a one-line message naming what is wrong ("port 70000 is
 * out of range (0-65535)", "missing ']' after IPv6 address", "unknown
 * interface 'eth9'") is written into why (whylen bytes, NUL-terminated).
 * Errors: -EINVAL malformed text or NULL argument, -ERANGE port out of
 * range, -ENODEV unknown interface or scope, -ENAMETOOLONG Unix path or
 * interface name too long. Does no DNS; checks that a named interface
 * exists. */
int nc_endpoint_parse(nc_endpoint *ep, const char *text, char *why,
                      size_t whylen);

/* Write ep as an endpoint string that nc_endpoint_parse() reads back to
 * the same value. Returns the length written (excluding NUL), or -EINVAL
 * for a bad endpoint, -ENOSPC if buf (len bytes) is too small. */
int nc_endpoint_format(const nc_endpoint *ep, char *buf, size_t len);

/* The concrete addresses ep stands for, in the order a listener binds
 * them: ADDR and UNIX one; LOCALHOST 127.0.0.1 then ::1; ANY [::] then
 * 0.0.0.0; IFACE every IPv4 then IPv6 address of the interface (link-local
 * ones with their scope id). Writes at most max into out and the total
 * into *count. Errors: -EINVAL bad argument, -ENODEV the interface is gone,
 * -EADDRNOTAVAIL the interface has no address, -ENOMEM. */
int nc_endpoint_resolve(const nc_endpoint *ep, nc_addr *out, size_t max,
                        size_t *count);

/* Write a as "192.0.2.1:7000", "[::1]:7000", "[fe80::1%eth0]:7000" or
 * "unix:/path" (an endpoint string; an unnamed Unix peer, a client that
 * never bound, is "unix:"). Returns the length, or -EINVAL for an
 * unsupported family, -ENOSPC if buf is too small. */
int nc_addr_format(const nc_addr *a, char *buf, size_t len);

/* Build an nc_addr from a sockaddr of len bytes (as returned by accept or
 * getsockname). Errors: -EINVAL NULL or too long, -EAFNOSUPPORT family. */
int nc_addr_from_sockaddr(nc_addr *out, const struct sockaddr *sa,
                          socklen_t len);

/* The port of an IPv4/IPv6 address in host byte order; 0 for others. */
uint16_t nc_addr_port(const nc_addr *a);

/* True if a is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z) or
 * a Unix socket: only this host can connect to it. */
bool nc_addr_is_loopback(const nc_addr *a);

/* True if a is the wildcard address (0.0.0.0 or ::). */
bool nc_addr_is_any(const nc_addr *a);

/* ------------------------------------------------------------------------
 * Interfaces (lib/iface.c), enumerated with getifaddrs
 * ---------------------------------------------------------------------- */

enum {
    NC_IFACE_UP = 1u << 0,
    NC_IFACE_RUNNING = 1u << 1,
    NC_IFACE_LOOPBACK = 1u << 2
};

/* One address of an interface, with its prefix length (/24, /64). */
typedef struct nc_iface_addr {
    nc_addr addr;          /* port 0; IPv6 link-local carries its scope */
    unsigned prefix_len;
} nc_iface_addr;

/* One network interface. */
typedef struct nc_iface {
    char name[NC_IFNAMSIZ];
    unsigned index;        /* if_nametoindex */
    unsigned flags;        /* NC_IFACE_* */
    size_t naddrs;
    nc_iface_addr *addrs;  /* IPv4 first, then IPv6, each in kernel order */
} nc_iface;

/* A snapshot of the machine's interfaces. */
typedef struct nc_iface_list {
    size_t count;
    nc_iface *ifaces;      /* in index order */
} nc_iface_list;

/* Take a snapshot of every interface and its IPv4/IPv6 addresses. The
 * caller owns *out and frees it with nc_iface_list_free().
 * Errors: -ENOMEM, or getifaddrs' errno. */
int nc_iface_list_get(nc_iface_list **out);

/* Free a list from nc_iface_list_get(). NULL is allowed. */
void nc_iface_list_free(nc_iface_list *list);

/* The interface called name in list, or NULL. Points into list. */
const nc_iface *nc_iface_find(const nc_iface_list *list, const char *name);

/* The primary non-loopback interface: the one holding the default route
 * (IPv4, then IPv6) when it is up, else the first up, non-loopback
 * interface with an IPv4 address, else NULL. Points into list. */
const nc_iface *nc_iface_primary(const nc_iface_list *list);

/* True if another host could connect to at least one of the n bound
 * addresses: a wildcard address counts when some up, non-loopback
 * interface has an address of a usable family; loopback and Unix
 * addresses never count. */
bool nc_iface_reachable(const nc_iface_list *list, const nc_addr *bound,
                        size_t n);

/* When no other host can reach the n bound addresses, write the warning a
 * server should show: what is bound, that only this host can connect, and
 * which interfaces and addresses other hosts could reach (or that this
 * host has none). Multi-line text, no trailing newline. Returns its length,
 * 0 (and buf[0] = '\0') when the addresses are reachable, -ENOSPC when buf
 * is too small, -EINVAL on a bad argument. */
int nc_iface_reach_warning(const nc_iface_list *list, const nc_addr *bound,
                           size_t n, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * I/O outcomes and TCP state (lib/io.c)
 * ---------------------------------------------------------------------- */

/* The outcome of one read/write/accept/connect call on a non-blocking
 * socket. */
typedef enum nc_io_outcome {
    NC_IO_PROGRESS = 0,  /* it did something: bytes moved, fd accepted */
    NC_IO_AGAIN,         /* would block (EAGAIN or EWOULDBLOCK), or a
                            connect in progress: wait for readiness */
    NC_IO_INTR,          /* interrupted by a signal (EINTR): just retry */
    NC_IO_EOF,           /* read returned 0: the peer closed its side */
    NC_IO_RESET,         /* the peer is gone: ECONNRESET, EPIPE,
                            ECONNABORTED, ETIMEDOUT, EPROTO on accept */
    NC_IO_ERROR          /* anything else: a real error */
} nc_io_outcome;

/* Classify the result of a system call: ret is its return value and
 * errnum the errno it left (read only when ret < 0). For NC_OP_READ a
 * ret of 0 is NC_IO_EOF; for the others it is progress. EAGAIN and
 * EWOULDBLOCK are both checked, even where they are equal. */
nc_io_outcome nc_io_classify(nc_op op, ssize_t ret, int errnum);

/* "progress", "would block", "interrupted", "end of stream", "reset",
 * "error". Static string. */
const char *nc_io_outcome_name(nc_io_outcome o);

/* A TCP socket's state and its most useful counters, from TCP_INFO. */
typedef struct nc_tcp_info {
    int state;               /* the kernel's TCP_ESTABLISHED .. TCP_CLOSING */
    const char *state_name;  /* "ESTABLISHED", "CLOSE_WAIT", ... static */
    uint32_t rtt_us;         /* smoothed round-trip time */
    uint32_t rttvar_us;
    uint32_t retransmits;    /* retransmits of the current segment */
    uint32_t total_retrans;
    uint32_t unacked;        /* segments sent and not yet acknowledged */
    uint32_t lost;
    uint32_t snd_cwnd;
    uint32_t rcv_space;
} nc_tcp_info;

/* Read fd's TCP state through getsockopt(TCP_INFO). Errors: -EBADF,
 * -ENOTSOCK, -EOPNOTSUPP (not a TCP socket), or getsockopt's errno. */
int nc_tcp_info_get(int fd, nc_tcp_info *out);

/* The name of a kernel TCP state number: "ESTABLISHED", "SYN_SENT",
 * "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
 * "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"; "UNKNOWN" otherwise. */
const char *nc_tcp_state_name(int state);

/* ------------------------------------------------------------------------
 * Event loop (lib/loop.c, lib/backend_epoll.c)
 * ---------------------------------------------------------------------- */

typedef struct nc_loop nc_loop;

/* Create a loop. *out is owned by the caller; free with nc_loop_free().
 * Errors: -ENOMEM, -EMFILE/-ENFILE (epoll or eventfd creation). */
int nc_loop_new(nc_loop **out);

/* Free a loop from its own thread, when it is not running (called from
 * inside one of its callbacks it does nothing). Posts from
 * other threads are refused with -ESHUTDOWN from the moment this starts;
 * calls already posted run first (each exactly once). Then every live
 * connection is closed (on_close with NC_CLOSE_SHUTDOWN), listeners,
 * watchers, timers and signal handlers are released, and all memory is
 * freed. NULL is allowed. */
void nc_loop_free(nc_loop *loop);

typedef enum nc_run_mode {
    NC_RUN_DEFAULT = 0,  /* until nc_loop_stop() or nothing is active */
    NC_RUN_FOREVER,      /* until nc_loop_stop(), even with nothing active
                            (a worker that only receives posted calls) */
    NC_RUN_ONCE,         /* one iteration, waiting for an event if needed */
    NC_RUN_NOWAIT        /* one iteration, without waiting */
} nc_run_mode;

/* Run the loop in its thread. Returns 0 when it stopped (nc_loop_stop),
 * ran out of active things (NC_RUN_DEFAULT) or finished its iteration;
 * -EBUSY if called while it is already running (from a callback);
 * a negative errno if epoll_wait failed for a reason other than EINTR. */
int nc_loop_run(nc_loop *loop, nc_run_mode mode);

/* Ask the loop to return from nc_loop_run() after the current iteration.
 * Any thread; wakes the loop if it is waiting. */
void nc_loop_stop(nc_loop *loop);

/* The loop's cached time in milliseconds on CLOCK_MONOTONIC, updated once
 * per iteration (so all callbacks of one iteration see the same time). */
uint64_t nc_loop_now(const nc_loop *loop);

/* A user pointer kept with the loop, for callbacks to find per-loop (per
 * thread) state through nc_conn_loop(): NULL until set. Loop's thread. */
void nc_loop_set_data(nc_loop *loop, void *data);
void *nc_loop_data(const nc_loop *loop);

/* A function the loop calls later with its argument. */
typedef void (*nc_call_fn)(void *arg);

/* Call fn(arg) at the end of this iteration (after every event of the
 * current batch is dispatched), in the loop's thread. Use it to release
 * things safely from inside callbacks. Calls run in the order deferred.
 * Errors: -EINVAL, -ENOMEM. */
int nc_loop_defer(nc_loop *loop, nc_call_fn fn, void *arg);

/* Run fn(arg) in the loop's thread, soon. Any thread. Every accepted call
 * runs exactly once; calls from one thread run in the order posted.
 * Errors: -EINVAL, -ENOMEM, -ESHUTDOWN (the loop is being freed; fn will
 * not run and nothing was kept). */
int nc_loop_post(nc_loop *loop, nc_call_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * fd watchers (lib/loop.c)
 *
 * Level-triggered: a watcher is called in every iteration in which its fd
 * is ready, so a callback may read as little as it likes (fairness) and
 * never needs to read until EAGAIN. Interest is only changed in the kernel
 * when it really changes.
 * ---------------------------------------------------------------------- */

typedef struct nc_watch nc_watch;

enum {
    NC_READABLE = 1u << 0,
    NC_WRITABLE = 1u << 1,
    NC_HANGUP = 1u << 2,   /* reported only: EPOLLHUP or EPOLLRDHUP */
    NC_ERROR = 1u << 3     /* reported only: EPOLLERR */
};

/* Called with the events that are ready (NC_READABLE, NC_WRITABLE,
 * NC_HANGUP, NC_ERROR) and the user pointer given at start. */
typedef void (*nc_watch_fn)(nc_watch *w, int fd, unsigned events, void *ud);

/* Watch fd (owned by the caller, never closed by the library) for events
 * (NC_READABLE | NC_WRITABLE; 0 = registered but idle). One watcher per fd
 * per loop. *out is released with nc_watch_close().
 * Errors: -EINVAL, -EBADF (fd is not open), -EEXIST (fd already watched
 * by this loop), -EPERM (fd type cannot be polled, e.g. a regular file),
 * -ENOMEM. */
int nc_watch_start(nc_loop *loop, int fd, unsigned events, nc_watch_fn fn,
                   void *ud, nc_watch **out);

/* Change the events w waits for. Costs a system call only if they differ
 * from the current ones. Errors: -EINVAL, -ENOMEM, -EBADF (the fd was
 * closed behind the watcher's back). */
int nc_watch_set(nc_watch *w, unsigned events);

/* Stop watching and free w; the fd stays open. Safe from any callback,
 * including w's own and while an event for w is pending in this
 * iteration: no event is ever delivered after this. NULL is allowed. */
void nc_watch_close(nc_watch *w);

/* ------------------------------------------------------------------------
 * Timers (lib/timer.c): a 4-ary heap on CLOCK_MONOTONIC, millisecond
 * resolution. A timer never fires before its timeout has elapsed; one that
 * is overdue fires once (a repeating one then keeps its phase).
 * ---------------------------------------------------------------------- */

typedef struct nc_timer nc_timer;

typedef void (*nc_timer_fn)(nc_timer *t, void *ud);

/* Create a stopped timer. *out is released with nc_timer_free().
 * Errors: -EINVAL, -ENOMEM. */
int nc_timer_new(nc_loop *loop, nc_timer_fn fn, void *ud, nc_timer **out);

/* (Re)start t: fire after timeout_ms, then every repeat_ms if repeat_ms is
 * not 0. Restarting a running timer moves it. Legal from any callback,
 * including t's own. O(log n). Timers with equal deadlines fire in the
 * order they were started. Errors: -EINVAL, -ENOMEM (the heap could not
 * grow). */
int nc_timer_start(nc_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);

/* Stop t if it runs. O(log n). Safe from any callback. */
void nc_timer_stop(nc_timer *t);

/* True while t is started and has not fired its last time. */
bool nc_timer_active(const nc_timer *t);

/* Stop and free t. Safe from any callback, including t's own. NULL is
 * allowed. */
void nc_timer_free(nc_timer *t);

/* ------------------------------------------------------------------------
 * Signals (lib/signal.c), read through a signalfd inside the loop
 *
 * nc_signal_start() blocks signum in the calling thread so the signalfd
 * receives it. Block it in every other thread too (create loops and
 * handlers before starting threads, whose masks are inherited), or another
 * thread may take the signal.
 * ---------------------------------------------------------------------- */

typedef struct nc_signal nc_signal;

typedef void (*nc_signal_fn)(nc_signal *s, int signum, void *ud);

/* Call fn in the loop's thread each time signum arrives. One handler per
 * signal per loop. *out is released with nc_signal_close(), which restores
 * the thread's signal mask for signum. Errors: -EINVAL (bad or
 * uncatchable signal), -EEXIST (already handled by this loop), -ENOMEM,
 * signalfd's errno. */
int nc_signal_start(nc_loop *loop, int signum, nc_signal_fn fn, void *ud,
                    nc_signal **out);

/* Stop handling the signal and free s. Safe from any callback. NULL is
 * allowed. */
void nc_signal_close(nc_signal *s);

/* ------------------------------------------------------------------------
 * Connections (lib/conn.c, lib/buf.c)
 *
 * Lifecycle: on_open, then any number of on_data and on_drain, then
 * on_close exactly once. The library owns the nc_conn from on_open until
 * on_close returns; do not use the pointer after that. Calling
 * nc_conn_close() or nc_conn_abort() from any callback, including on_data
 * of the same connection, is always safe.
 * ---------------------------------------------------------------------- */

typedef struct nc_conn nc_conn;

/* Why a connection ended. */
typedef enum nc_close_reason {
    NC_CLOSE_PEER = 1,       /* the peer closed: end of stream */
    NC_CLOSE_RESET,          /* the peer reset the connection (RST, EPIPE) */
    NC_CLOSE_IDLE,           /* nothing was received within the idle timeout */
    NC_CLOSE_LOCAL,          /* nc_conn_close() or nc_conn_abort() */
    NC_CLOSE_ERROR,          /* an I/O error; err says which (-EMSGSIZE:
                                unconsumed input grew over max_input) */
    NC_CLOSE_SHUTDOWN,       /* its listener or loop was closed */
    NC_CLOSE_CONNECT_FAILED, /* an outgoing connect failed or timed out */
    NC_CLOSE_DEADLINE        /* the deadline of nc_conn_set_deadline()
                                passed (err -ETIMEDOUT) */
} nc_close_reason;

/* The highest nc_close_reason value, for arrays indexed by reason. */
#define NC_CLOSE_REASON_LAST NC_CLOSE_DEADLINE

/* "peer closed", "reset", "idle timeout", "closed locally", "I/O error",
 * "shutting down", "connect failed". Static string. */
const char *nc_close_reason_name(nc_close_reason reason);

/* Callbacks for a connection. ud is the connection's user pointer: the
 * one given to nc_listen()/nc_connect() until nc_conn_set_data() sets
 * another. Any callback may be NULL. */
typedef struct nc_conn_callbacks {
    /* The connection is established (accepted, or connect succeeded). */
    void (*on_open)(nc_conn *c, void *ud);
    /* Bytes arrived. Return how many you consumed (0..len); the rest stays
     * buffered and is handed to you again, with the next bytes appended.
     * data is valid only during the call. With keep_half_open, a call with
     * len == 0 means the peer closed its side. */
    size_t (*on_data)(nc_conn *c, const void *data, size_t len, void *ud);
    /* The output queue, having gone above high_water, fell to low_water or
     * below; reading (paused meanwhile) has resumed. */
    void (*on_drain)(nc_conn *c, void *ud);
    /* The connection ended; err is 0 or the negative errno behind reason.
     * Called exactly once for every opened connection (and for every
     * nc_connect() that returned 0). The fd is already closed. */
    void (*on_close)(nc_conn *c, nc_close_reason reason, int err, void *ud);
} nc_conn_callbacks;

/* Per-connection settings. A zeroed struct gives the defaults. */
typedef struct nc_conn_options {
    size_t high_water;       /* queued output that pauses reading
                                (default 64 KiB) */
    size_t low_water;        /* queued output at which reading resumes and
                                on_drain runs (default high_water / 4) */
    size_t max_input;        /* unconsumed input allowed (default 1 MiB) */
    size_t read_budget;      /* bytes read per iteration (default 256 KiB) */
    uint32_t idle_timeout_ms;    /* close after this long with nothing
                                    received (0 = never) */
    uint32_t connect_timeout_ms; /* nc_connect only (0 = the kernel's) */
    bool no_delay_off;       /* leave Nagle on (TCP_NODELAY is on by
                                default) */
    bool keep_half_open;     /* on peer EOF, tell on_data (len 0) and close
                                once queued output is flushed, instead of
                                closing at once */
    uint32_t keepalive_idle_s;   /* TCP keepalive after this many idle
                                    seconds (0 = off) */
    uint32_t keepalive_interval_s; /* between probes (0 = kernel default) */
    uint32_t keepalive_count;      /* probes before reset (0 = default) */
    uint32_t linger_ms;      /* after a graceful close has sent everything
                                and FIN, how long to wait for the peer's
                                FIN while discarding its input (default
                                2000) */
} nc_conn_options;

/* Options for nc_connect(). A zeroed struct gives the defaults. */
typedef struct nc_connect_options {
    nc_conn_options conn;
    const char *bind;        /* local endpoint to bind first, with a port
                                (0 = any): "192.0.2.2:0", "[::1]:0", or an
                                interface name ("eth0:0": its first address
                                of the target's family); NULL = the kernel
                                chooses */
} nc_connect_options;

/* Start a non-blocking connect to endpoint (an address, "localhost:P",
 * an interface's first address, or "unix:/path"). On success *out (may be
 * NULL) is the connection, owned by the library; on_open or on_close
 * (NC_CLOSE_CONNECT_FAILED with the errno, e.g. -ECONNREFUSED or
 * -ETIMEDOUT) follows from the loop, never from inside this call.
 * Errors (nothing was started, no callback will run): nc_endpoint_parse's
 * errors, -EINVAL wildcard endpoint or bad argument, -ENOMEM, -EMFILE,
 * socket()/bind() errno. */
int nc_connect(nc_loop *loop, const char *endpoint,
               const nc_connect_options *opts, const nc_conn_callbacks *cbs,
               void *ud, nc_conn **out);

/* Queue len bytes for sending: what the kernel takes now is sent at once,
 * the rest is copied and sent as the socket becomes writable. Above
 * high_water reading pauses until the queue falls to low_water (see
 * on_drain). Errors: -EINVAL, -ENOMEM, -ENOTCONN (not yet open, or
 * closing: nothing is queued), -EPIPE (the write side was shut down). */
int nc_conn_write(nc_conn *c, const void *data, size_t len);

/* Like nc_conn_write() for cnt buffers, sent in order. */
int nc_conn_writev(nc_conn *c, const struct iovec *iov, int cnt);

/* Zero-copy write: the library takes ownership of data and calls
 * free_fn(data, arg) once it is sent or dropped (free_fn may be NULL).
 * On error the caller keeps ownership. Errors as nc_conn_write(). */
int nc_conn_write_owned(nc_conn *c, void *data, size_t len,
                        void (*free_fn)(void *data, void *arg), void *arg);

/* Bytes queued and not yet taken by the kernel. */
size_t nc_conn_queued(const nc_conn *c);

/* Close gracefully: stop reading, send what is queued, then close;
 * on_close follows with NC_CLOSE_LOCAL. A peer that never reads keeps the
 * connection until the idle timeout (write progress counts as activity
 * here) or nc_conn_abort(). Repeated calls do nothing. */
void nc_conn_close(nc_conn *c);

/* Close now and reset the connection (SO_LINGER 0 sends RST); queued
 * output is dropped. on_close follows with NC_CLOSE_LOCAL. */
void nc_conn_abort(nc_conn *c);

/* Half-close: after the queued output is sent, shut down the write side
 * (the peer reads end of stream); reading goes on. Errors: -ENOTCONN. */
int nc_conn_shutdown(nc_conn *c);

/* Pause or resume reading from c (for flow control of your own). */
void nc_conn_read_stop(nc_conn *c);
void nc_conn_read_start(nc_conn *c);

/* Replace the idle timeout (0 = none), counted from now. Errors: -EINVAL,
 * -ENOTCONN. */
int nc_conn_set_idle_timeout(nc_conn *c, uint32_t ms);

/* Close c with NC_CLOSE_DEADLINE (-ETIMEDOUT) unless it is closed within
 * ms from now; received bytes do not extend it (unlike the idle timeout):
 * "this message must be complete by then". Setting it again replaces it;
 * 0 removes it. Errors: -EINVAL (ms above 2^31-1), -ENOTCONN (closing or
 * closed), -ENOMEM. */
int nc_conn_set_deadline(nc_conn *c, uint32_t ms);

/* True once the peer's end of stream was read (with keep_half_open, from
 * the end call of on_data on). */
bool nc_conn_eof(const nc_conn *c);

/* The user pointer handed to callbacks. */
void nc_conn_set_data(nc_conn *c, void *ud);
void *nc_conn_data(const nc_conn *c);

/* The connection's socket (owned by the library: do not close it), or -1
 * after close. */
int nc_conn_fd(const nc_conn *c);

/* The loop the connection lives on. */
nc_loop *nc_conn_loop(const nc_conn *c);

/* The peer's / the local address. Errors: -ENOTCONN, getpeername's. */
int nc_conn_peer_addr(const nc_conn *c, nc_addr *out);
int nc_conn_local_addr(const nc_conn *c, nc_addr *out);

/* The connection's TCP_INFO (see nc_tcp_info_get). */
int nc_conn_tcp_info(const nc_conn *c, nc_tcp_info *out);

/* ------------------------------------------------------------------------
 * Listeners (lib/listener.c)
 * ---------------------------------------------------------------------- */

typedef struct nc_listener nc_listener;

/* Listener settings. A zeroed struct gives the defaults. */
typedef struct nc_listener_options {
    int backlog;              /* 0 = SOMAXCONN */
    bool reuseaddr_off;       /* SO_REUSEADDR is on unless this is set */
    bool reuseport;           /* SO_REUSEPORT (one listener per thread) */
    bool ipv6_only;           /* IPV6_V6ONLY on IPv6 sockets; "*" then binds
                                 [::] and 0.0.0.0 separately */
    unsigned max_conns;       /* pause accepting at this many open
                                 connections (0 = no limit) */
    unsigned accept_budget;   /* accepts per socket per iteration
                                 (default 64) */
    bool evict_idle;          /* out of descriptors (EMFILE): close the
                                 loop's longest-idle connection (on_close
                                 NC_CLOSE_IDLE, -EMFILE) to admit the new
                                 one, instead of shedding the new one */
    nc_conn_options conn;     /* for every accepted connection */
} nc_listener_options;

/* Counters of a listener. */
typedef struct nc_listener_stats {
    uint64_t accepted;        /* connections opened */
    uint64_t active;          /* connections open now */
    uint64_t shed;            /* accepted and closed at once because the
                                 process was out of descriptors */
    uint64_t fd_exhausted;    /* times accept() failed with EMFILE/ENFILE */
    uint64_t accept_errors;   /* transient accept errors survived */
    uint64_t paused;          /* times accepting was paused (limit, back-off) */
    uint64_t evicted;         /* idle connections closed to admit new ones
                                 (evict_idle) */
} nc_listener_stats;

/* Listen on endpoint: one non-blocking, close-on-exec socket per address
 * it stands for (an interface name binds each of its addresses, "*" binds
 * all). Every accepted connection gets cbs and starts with user pointer
 * ud. *out is owned by the caller until nc_listener_close().
 * Errors (nothing is left bound): nc_endpoint_parse's errors,
 * -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -ENOMEM, -EMFILE, socket errno. */
int nc_listen(nc_loop *loop, const char *endpoint,
              const nc_listener_options *opts, const nc_conn_callbacks *cbs,
              void *ud, nc_listener **out);

/* How many sockets the listener has bound. */
size_t nc_listener_count(const nc_listener *l);

/* The real address of bound socket i (with the kernel's port when port 0
 * was asked for), as recorded when it was bound. Errors: -EINVAL (NULL
 * argument or no socket i). */
int nc_listener_addr(const nc_listener *l, size_t i, nc_addr *out);

/* Copy the listener's counters into *out. */
void nc_listener_stats_get(const nc_listener *l, nc_listener_stats *out);

/* Stop accepting (new connections are refused by the kernel) but keep the
 * open connections. Idempotent. */
void nc_listener_stop(nc_listener *l);

/* Close the sockets, close every connection still open from this listener
 * (on_close with NC_CLOSE_SHUTDOWN) and free l; a Unix socket's path is
 * unlinked. Safe from any callback. NULL is allowed. */
void nc_listener_close(nc_listener *l);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* NETCORE_H */
