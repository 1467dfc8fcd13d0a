/*
 * listener.h - what connections tell their listener (listener.c).
 */
#ifndef NC_LISTENER_H
#define NC_LISTENER_H

#include "common.h"

/* A connection accepted by l, on fd, was closed (called once, from its
 * teardown; fd is closed already): l uncounts it from its peer's address
 * and may resume accepting. */
void nc__listener_conn_gone(nc_listener *l, int fd);

/* Stop every listener of the loop (nc_listener_stop): a shutdown. */
void nc__listeners_stop(nc_loop *loop);

/* ---- one listening socket (listen_socket.c) ---------------------------- */
/* A non-blocking, close-on-exec socket listening on a with o's options
 * (SO_REUSEADDR, SO_REUSEPORT, TCP_NODELAY and keepalive for its
 * connections to inherit, TCP_DEFER_ACCEPT; IPV6_V6ONLY as v6only), in
 * *out. A unix: path that is taken is bound anyway only if it holds a
 * stale socket file (not a link to one), which is removed first.
 * share_after_bind: bind without SO_REUSEPORT, so that any other holder
 * of the address makes the bind fail, even one that allows sharing, then
 * set it before listen() (nc__listen_first). On failure nothing is left
 * open or created, and o->errbuf says which step failed on which address
 * and, for an address in use, what holds it. */
int nc__listen_socket(const nc_listener_options *o, const nc_addr *a,
                      bool v6only, bool share_after_bind, int *out);
/* Write "STEP ADDRESS: system text" into o->errbuf; returns err. */
int nc__listen_failed(const nc_listener_options *o, const char *step,
                      const nc_addr *a, int err);
/* A unix: endpoint with a path in the file system (not an abstract
 * name). */
bool nc__is_unix_path(const nc_addr *a);

/* ---- who holds an address (holder.c) ---------------------------------- */
/* The process holding a listening socket on a's address (TCP: the same
 * port on an overlapping address; unix: the same path): its pid, with its
 * name (comm) in name (len bytes, NUL-terminated). Best effort, for
 * messages: -ENOENT when none can be seen (another user's process,
 * another network namespace), -EINVAL when len is 0. */
int nc__socket_holder(const nc_addr *a, char *name, size_t len);

/* ---- the workers' port (workers_listen.c) ----------------------------- */
/* nc_listen for the first of the listeners that share a port: each socket
 * binds without SO_REUSEPORT (opts->reuseport is ignored), so that the
 * bind fails with -EADDRINUSE while anything else holds the address, even
 * a socket that allows sharing, and sets it after the bind, before
 * listen(), so that the listeners bound next with opts->reuseport join
 * this one. */
int nc__listen_first(nc_loop *loop, const char *endpoint,
                     const nc_listener_options *opts,
                     const nc_conn_callbacks *cbs, void *ud,
                     nc_listener **out);

/* ---- the workers' accept hand-off (workers_listen.c) ----------------- */
/* Given every socket l accepts, instead of a connection of l: fn owns fd
 * from then on (it must close it if it cannot hand it on). */
typedef void (*listener_handoff_fn)(void *arg, int fd);
void nc__listener_set_handoff(nc_listener *l, listener_handoff_fn fn,
                              void *arg);
/* A listener without sockets, whose connections are sockets accepted
 * elsewhere and given to nc__listener_adopt(), in loop's thread. tcp:
 * whether they are TCP sockets. Errors: nc_listen's -EINVAL, -ENOMEM. */
int nc__listener_new_adopter(nc_loop *loop, const nc_listener_options *opts,
                             const nc_conn_callbacks *cbs, void *ud, bool tcp,
                             nc_listener **out);
/* Open fd as a connection of l (on_open runs inside). A stopped l resets
 * and closes it unseen, as the kernel resets a closed listener's backlog;
 * at max_conns it is reset and counted as shed. fd is always consumed. */
void nc__listener_adopt(nc_listener *l, int fd);

#endif /* NC_LISTENER_H */
