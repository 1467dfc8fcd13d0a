/*
 * resolve.h - looking host names up without blocking the loop: one
 * lookup of one family (a query) is what nc_resolve() and Happy Eyeballs
 * (dial.c) are built from.
 *
 * resolve.c owns the queries and the loop's resolver; a backend sends
 * them: resolve_ares.c (c-ares inside the loop: its sockets on the loop's
 * watchers, its timeouts on a loop timer) or, without c-ares,
 * resolve_thread.c (getaddrinfo on helper threads that post the answers
 * back). Exactly one of the two is built.
 *
 * A query's answer is never handed over inside the call that started it,
 * nor inside the backend: the backend fills it in and calls
 * nc__query_answered(), which defers the query's function to the end of
 * the iteration. So the function may cancel queries, start new ones and
 * close connections, and the backend is never re-entered.
 */
#ifndef NC_RESOLVE_H
#define NC_RESOLVE_H

#include "loop.h"

#define QUERY_SOURCE_LEN 160
#define QUERY_MAX_ADDRS 16     /* addresses kept per family */

struct query;
/* The answer is in q (err, addrs, count, source); q is freed when this
 * returns. */
typedef void (*query_fn)(struct query *q, void *arg);

struct query {
    nc_loop *loop;
    query_fn fn;               /* NULL once cancelled */
    void *arg;
    int family;                /* AF_INET6 (AAAA) or AF_INET (A) */
    int err;                   /* 0, or a negative errno or NC_EDNS_* */
    nc_addr addrs[QUERY_MAX_ADDRS];   /* port 0 */
    size_t count;
    char source[QUERY_SOURCE_LEN];    /* where the answer came from */
    uint64_t started_ns;
    uint64_t answered_ns;
    bool answered;             /* the answer is in; its delivery queued */
    struct defer_node node;
    void *impl;                /* the backend's own */
    char name[];
};

/* The loop's resolver: what nc_loop_free() must end (a user handle, so
 * that it ends after the connections, whose lookups are cancelled by
 * then), the public requests it must report, and the backend's state. */
struct resolver {
    struct handle h;
    nc_loop *loop;
    struct nc_resolve_req *reqs;   /* public requests pending */
    void *impl;                /* the backend's state, NULL until used */
    int ifq_fd;                /* a socket for interface queries, or -1 */
};

/* ---- resolve.c --------------------------------------------------------- */
/* Look name up for family (AF_INET6 or AF_INET). fn(q, arg) follows from
 * the loop, unless nc__query_cancel() comes first. A literal address
 * answers at once (still from the loop). Errors: -EINVAL (a bad name),
 * -ENOMEM, the backend's. */
int nc__query_start(nc_loop *loop, const char *name, int family,
                    query_fn fn, void *arg, struct query **out);
/* fn will not run; q is freed (now or when the backend lets go of it). */
void nc__query_cancel(struct query *q);
/* For backends: the answer is in q; deliver it from the loop (or free q
 * if it was cancelled). */
void nc__query_answered(struct query *q);
/* For backends: free a query they held after it was cancelled. */
void nc__query_free(struct query *q);
/* Add a to q's answer, skipping duplicates and what does not fit. */
void nc__query_add(struct query *q, const struct sockaddr *sa,
                   socklen_t len);

/* The address families f asks for, in its order, into fam; returns how
 * many (1 or 2). */
int nc__family_order(nc_family f, int fam[2]);
/* Of two lookup outcomes (0, a negative error, 1 for "not asked"), the
 * more telling failure: a name that does not exist, then a server's
 * trouble, then a family without addresses. */
int nc__lookup_telling(int a, int b);

/* Whether an interface called name exists: nc_connect() asks before it
 * takes name for a host (an interface wins). One ioctl on a socket the
 * resolver keeps, where if_nametoindex() opens and closes one each time
 * (the socket answers for the network namespace it was made in: the
 * loop's first lookup's). */
bool nc__resolver_is_iface(nc_loop *loop, const char *name);

/* ---- the backend (resolve_ares.c or resolve_thread.c) ------------------ */
/* Send q (its name, its family). Later the backend calls
 * nc__query_answered(q), or nc__query_free(q) if it was cancelled.
 * Errors: -ENOMEM, or what setting the backend up failed with. */
int nc__lookup_send(struct resolver *r, struct query *q);
/* q->fn was cleared: drop it. The backend frees q now, or once it no
 * longer uses it. */
void nc__lookup_cancel(struct resolver *r, struct query *q);
/* The loop is being freed, every query was cancelled: release
 * everything (the state in r->impl). */
void nc__lookup_close(struct resolver *r);
/* One line for netcore-doctor: what does the looking up
 * ("c-ares 1.18.1 in the loop", "getaddrinfo on helper threads"). */
const char *nc__lookup_describe(void);

#endif /* NC_RESOLVE_H */
