/*
 * resolve.c - queries (one name, one family) and the loop's resolver
 * around them, and the public nc_resolve(): two queries at once, their
 * answers merged in the order Happy Eyeballs tries them.
 *
 * A query is answered from the loop, never inside nc__query_start() nor
 * inside the backend: the backend fills the answer in and calls
 * nc__query_answered(), which defers the delivery. Cancelling clears the
 * function; whoever holds the query last frees it (the delivery, or the
 * backend when its own callback comes back for a cancelled query).
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define NAME_MAX_LEN 253

/* ---- the loop's resolver ---------------------------------------------- */

struct nc_resolve_req {
    struct resolver *r;
    struct nc_resolve_req *prev, *next;   /* r->reqs */
    nc_resolve_fn fn;
    void *ud;
    nc_family family;
    struct query *q[2];        /* [0] the first family's, [1] the other's */
    int err[2];                /* their outcome; 1: not asked */
    char source[2][QUERY_SOURCE_LEN];
    nc_addr addrs[2][QUERY_MAX_ADDRS];
    size_t count[2];
    int pending;               /* queries not answered yet */
    uint64_t started_ns, done_ns;
    struct defer_node cancelled;   /* -ECANCELED at loop free */
    char name[];
};

static void req_unlink(struct nc_resolve_req *req)
{
    struct resolver *r = req->r;
    if (req->prev)
        req->prev->next = req->next;
    else if (r->reqs == req)
        r->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

static void deliver_cancelled(struct defer_node *n)
{
    struct nc_resolve_req *req =
        container_of(n, struct nc_resolve_req, cancelled);
    nc_resolve_result res = {
        .name = req->name, .addrs = NULL, .count = 0,
        .err6 = -ECANCELED, .err4 = -ECANCELED, .source = "",
    };
    req->fn(req, -ECANCELED, &res, req->ud);
    free(req);
}

/* nc_loop_free(): the connections are gone (their lookups cancelled);
 * the public requests still pending are told -ECANCELED from the loop's
 * deferred calls, and the backend is released. */
static void resolver_close(struct handle *h)
{
    struct resolver *r = container_of(h, struct resolver, h);
    nc_loop *loop = r->loop;
    while (r->reqs) {
        struct nc_resolve_req *req = r->reqs;
        req_unlink(req);
        for (int i = 0; i < 2; i++)
            if (req->q[i])
                nc__query_cancel(req->q[i]);
        loop->active--;
        nc__loop_defer(loop, &req->cancelled, deliver_cancelled);
    }
    nc__lookup_close(r);
    if (r->ifq_fd >= 0)
        close(r->ifq_fd);
    loop->resolver = NULL;
    free(r);
}

static struct resolver *resolver_of(nc_loop *loop)
{
    if (!loop->resolver) {
        struct resolver *r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
        r->loop = loop;
        r->ifq_fd = -1;
        r->h.close = resolver_close;
        nc__loop_handle_add(loop, &r->h, HANDLE_USER);
        loop->resolver = r;
    }
    return loop->resolver;
}

bool nc__resolver_is_iface(nc_loop *loop, const char *name)
{
    struct resolver *r = resolver_of(loop);
    struct ifreq ifr;
    if (strlen(name) >= sizeof(ifr.ifr_name))
        return false;
    if (r && r->ifq_fd < 0)
        r->ifq_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (!r || r->ifq_fd < 0)
        return if_nametoindex(name) != 0;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, strlen(name));
    return ioctl(r->ifq_fd, SIOCGIFINDEX, &ifr) == 0;
}

/* ---- queries ------------------------------------------------------------ */

/* A host name: at most 253 characters (one more for a final dot), and
 * none that a name never has. Which names exist is the resolver's to
 * say; this only keeps out text that is surely not one. */
static bool name_ok(const char *name)
{
    struct in6_addr a6;
    if (inet_pton(AF_INET6, name, &a6) == 1)
        return true;
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN + (name[n - 1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ':' || ch == '\\' ||
            ch == '[' || ch == ']' || ch == '%' || ch == '@')
            return false;
    }
    return true;
}

void nc__query_free(struct query *q)
{
    free(q);
}

static void deliver(struct defer_node *n)
{
    struct query *q = container_of(n, struct query, node);
    if (q->fn)
        q->fn(q, q->arg);
    nc__query_free(q);
}

void nc__query_answered(struct query *q)
{
    if (!q->fn) {
        nc__query_free(q);
        return;
    }
    q->answered = true;
    q->answered_ns = clock_now_ns();
    nc__loop_defer(q->loop, &q->node, deliver);
}

void nc__query_add(struct query *q, const struct sockaddr *sa,
                   socklen_t len)
{
    nc_addr a;
    if (q->count >= QUERY_MAX_ADDRS || sa->sa_family != q->family ||
        nc_addr_from_sockaddr(&a, sa, len) < 0)
        return;
    if (a.u.sa.sa_family == AF_INET)
        a.u.in4.sin_port = 0;
    else
        a.u.in6.sin6_port = 0;
    for (size_t i = 0; i < q->count; i++)
        if (q->addrs[i].len == a.len &&
            memcmp(&q->addrs[i].u, &a.u, a.len) == 0)
            return;
    q->addrs[q->count++] = a;
}

/* A literal address is its own answer; one of the other family is a
 * name without an address of this one. */
static bool literal(struct query *q)
{
    struct in6_addr a6;
    struct in_addr a4;
    bool is6 = inet_pton(AF_INET6, q->name, &a6) == 1;
    bool is4 = !is6 && inet_pton(AF_INET, q->name, &a4) == 1;
    if (!is6 && !is4)
        return false;
    snprintf(q->source, sizeof(q->source), "a literal address");
    if (is6 && q->family == AF_INET6) {
        struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_addr = a6 };
        nc__query_add(q, (struct sockaddr *)&s, sizeof(s));
    } else if (is4 && q->family == AF_INET) {
        struct sockaddr_in s = { .sin_family = AF_INET, .sin_addr = a4 };
        nc__query_add(q, (struct sockaddr *)&s, sizeof(s));
    } else {
        q->err = -NC_EDNS_NO_ADDRESS;
    }
    return true;
}

int nc__query_start(nc_loop *loop, const char *name, int family,
                    query_fn fn, void *arg, struct query **out)
{
    if (!name_ok(name) || (family != AF_INET && family != AF_INET6))
        return -EINVAL;
    struct resolver *r = resolver_of(loop);
    size_t n = strlen(name);
    struct query *q = calloc(1, sizeof(*q) + n + 1);
    if (!r || !q) {
        free(q);
        return -ENOMEM;
    }
    memcpy(q->name, name, n + 1);
    q->loop = loop;
    q->fn = fn;
    q->arg = arg;
    q->family = family;
    q->started_ns = clock_now_ns();
    if (literal(q)) {
        nc__query_answered(q);
    } else {
        int rc = nc__lookup_send(r, q);
        if (rc < 0) {
            free(q);
            return rc;
        }
    }
    *out = q;
    return 0;
}

void nc__query_cancel(struct query *q)
{
    if (!q || !q->fn)
        return;
    q->fn = NULL;
    /* An answered query waits for its delivery, which frees it. */
    if (!q->answered)
        nc__lookup_cancel(q->loop->resolver, q);
}

/* ---- nc_resolve ------------------------------------------------------- */

static int rank(int err)
{
    return err == -NC_EDNS_NOT_FOUND ? 3 : err == -NC_EDNS_NO_ADDRESS ? 1
         : err >= 0 ? 0 : 2;
}

int nc__lookup_telling(int a, int b)
{
    return rank(b) > rank(a) ? b : a;
}

int nc__family_order(nc_family f, int fam[2])
{
    bool v4_first = f == NC_FAMILY_IPV4_FIRST || f == NC_FAMILY_IPV4;
    fam[0] = v4_first ? AF_INET : AF_INET6;
    fam[1] = v4_first ? AF_INET6 : AF_INET;
    return f == NC_FAMILY_ANY || f == NC_FAMILY_IPV4_FIRST ? 2 : 1;
}

static void req_done(struct nc_resolve_req *req)
{
    nc_addr addrs[2 * QUERY_MAX_ADDRS];
    char source[2 * QUERY_SOURCE_LEN + 32];
    size_t n = 0;
    /* Alternate, the first family first. */
    for (size_t i = 0; i < QUERY_MAX_ADDRS; i++)
        for (int f = 0; f < 2; f++)
            if (i < req->count[f])
                addrs[n++] = req->addrs[f][i];
    bool v6_first = req->family == NC_FAMILY_ANY ||
                    req->family == NC_FAMILY_IPV6;
    int e6 = req->err[v6_first ? 0 : 1], e4 = req->err[v6_first ? 1 : 0];
    const char *s6 = req->source[v6_first ? 0 : 1];
    const char *s4 = req->source[v6_first ? 1 : 0];
    if (e6 == 1 || !s6[0] || strcmp(s6, s4) == 0)
        snprintf(source, sizeof(source), "%s", e4 == 1 ? s6 : s4);
    else if (e4 == 1 || !s4[0])
        snprintf(source, sizeof(source), "%s", s6);
    else
        snprintf(source, sizeof(source), "%s (IPv6), %s (IPv4)", s6, s4);
    nc_resolve_result res = {
        .name = req->name, .addrs = addrs, .count = n, .err6 = e6,
        .err4 = e4, .source = source,
        .elapsed_us = (req->done_ns - req->started_ns) / 1000u,
    };
    int err = n > 0 ? 0 : nc__lookup_telling(req->err[0], req->err[1]);
    if (n == 0 && err >= 0)
        err = -NC_EDNS_NO_ADDRESS;
    req_unlink(req);
    req->r->loop->active--;
    req->fn(req, err, &res, req->ud);
    free(req);
}

static void req_answer(struct query *q, void *arg)
{
    struct nc_resolve_req *req = arg;
    int i = req->q[0] == q ? 0 : 1;
    req->q[i] = NULL;
    req->err[i] = q->err;
    req->count[i] = q->count;
    memcpy(req->addrs[i], q->addrs, q->count * sizeof(nc_addr));
    memcpy(req->source[i], q->source, sizeof(q->source));
    req->done_ns = q->answered_ns;
    if (--req->pending == 0)
        req_done(req);
}

int nc_resolve(nc_loop *loop, const char *name, nc_family family,
               nc_resolve_fn fn, void *ud, nc_resolve_req **out)
{
    if (!loop || !name || !fn || (unsigned)family > NC_FAMILY_IPV4 ||
        !name_ok(name))
        return -EINVAL;
    size_t n = strlen(name);
    struct nc_resolve_req *req = calloc(1, sizeof(*req) + n + 1);
    struct resolver *r = resolver_of(loop);
    if (!req || !r) {
        free(req);
        return -ENOMEM;
    }
    memcpy(req->name, name, n + 1);
    req->r = r;
    req->fn = fn;
    req->ud = ud;
    req->family = family;
    req->started_ns = clock_now_ns();
    int fam[2];
    int nfam = nc__family_order(family, fam);
    req->err[1] = 1;
    for (int i = 0; i < nfam; i++) {
        int rc = nc__query_start(loop, name, fam[i], req_answer, req,
                                 &req->q[i]);
        if (rc < 0) {
            nc__query_cancel(req->q[0]);
            free(req);
            return rc;
        }
        req->err[i] = 0;
        req->pending++;
    }
    req->next = r->reqs;
    if (r->reqs)
        r->reqs->prev = req;
    r->reqs = req;
    loop->active++;
    if (out)
        *out = req;
    return 0;
}

void nc_resolve_cancel(nc_resolve_req *req)
{
    if (!req)
        return;
    for (int i = 0; i < 2; i++)
        nc__query_cancel(req->q[i]);
    req_unlink(req);
    req->r->loop->active--;
    free(req);
}

const char *nc_resolver_name(void)
{
    return nc__lookup_describe();
}
