/*
 * dial.h - connecting to a host name (dial.c), and what it shares with
 * connect.c, which connects to addresses.
 *
 * A connection to a name exists before it has a socket: nc_connect()
 * returns it at once, in CS_CONNECTING with fd -1, in its profile's
 * connect timeout list (so the timeout covers the lookup too), counted
 * as active. Its profile holds the dial: the lookups of both families
 * and the attempts, each a socket of its own on an internal watcher.
 * The first attempt to connect gives the connection its socket (the fd
 * table then points at the connection) and opens it as a plain connect
 * would; the others are closed at once and never reported. Closing the
 * connection meanwhile (nc_conn_close, its loop's shutdown or free, the
 * connect timeout) stops the dial through the connection's one teardown
 * (nc__dial_stop), so every path reports exactly once. The dial lives
 * until the profile is freed, after on_close, so that nc_conn_explain()
 * can still say what was tried.
 */
#ifndef NC_DIAL_H
#define NC_DIAL_H

#include "conn.h"

struct dial;

/* Where a failing nc_connect() says why: the caller's errbuf, if any. */
struct connect_why {
    char *buf;
    size_t len;
};

/* ---- connect.c --------------------------------------------------------- */
/* A profile of its own for one outgoing connection (family: its
 * address family, AF_INET6 for a name). Errors: -EINVAL (a server TLS
 * context, a timeout too long), -ENOMEM, the timeout lists'. */
int nc__connect_profile(nc_loop *loop, const nc_connect_options *opts,
                        const nc_conn_callbacks *cbs, int family,
                        struct conn_profile **out,
                        const struct connect_why *w);
/* Bind fd to the local endpoint spec, choosing an address of family. */
int nc__connect_bind(int fd, int family, const char *spec,
                     const struct connect_why *w);

/* ---- dial.c ------------------------------------------------------------ */
/* nc_connect() to host:port (host as nc__endpoint_name gave it). 0 and
 * *out, or a negative errno with nothing started. */
int nc__dial_start(nc_loop *loop, const char *host, uint16_t port,
                   const nc_connect_options *opts,
                   const nc_conn_callbacks *cbs, void *ud, nc_conn **out,
                   const struct connect_why *w);
/* The connection is being closed with reason and err: stop looking up,
 * close the attempts still going. Idempotent; no callback runs. */
void nc__dial_stop(struct dial *d, nc_close_reason reason, int err);
/* Free what the dial holds (with its profile, after on_close). */
void nc__dial_free(struct dial *d);

#endif /* NC_DIAL_H */
