/*
 * resolve_ares.c - looking names up with c-ares, inside the loop: one
 * channel per loop, made at its first lookup (reading /etc/resolv.conf
 * then), whose sockets the loop watches (ARES_OPT_SOCK_STATE_CB: c-ares
 * says which sockets to watch for what, and calls it with neither before
 * it closes one) and whose timeouts run on one loop timer, re-armed from
 * ares_timeout() after every call into c-ares. Works the same on both
 * backends: it only uses the loop's internal watchers and timers.
 *
 * The hosts file is read here (hosts.c: once, and again when it
 * changes), before DNS, as nsswitch.conf's usual "files dns" orders
 * them; c-ares is asked for DNS only (lookups "b"): it would open and
 * parse the file for every query. Where an answer came from: the hosts
 * file, or a server: c-ares answers inside ares_process_fd() for the
 * socket that brought the answer, whose peer is that server (asked once
 * per socket). A failure that no socket brought (a timeout) names the
 * servers asked.
 *
 * c-ares 1.18 cannot cancel one query: a cancelled query stays in the
 * channel until it ends (bounded by resolv.conf's timeout and attempts)
 * and its callback then frees it.
 *
 * At most IN_FLIGHT queries are in the channel at a time; the others
 * wait here, in order, and a cancelled one that waits is simply
 * dropped. c-ares sends every query at once otherwise: a thousand
 * lookups are two thousand datagrams to one server, more than its
 * socket buffer holds, and the ones it drops come back as timeouts.
 *
 * ARES_FLAG_NOCHECKRESP: c-ares 1.18 reports a server's SERVFAIL or
 * REFUSED as ARES_ECONNREFUSED once it has asked every server, which
 * would read "no server reachable" when one was and failed. With the
 * flag the first such answer is final and named for what it is; glibc
 * would ask the next server instead (left alone: with one server, the
 * usual case, the outcome is the same).
 *
 * c-ares 1.18 reads the servers, search domains, ndots and rotate of
 * resolv.conf itself, but knows its timeout and retries only as
 * "retrans:" and "retry:": glibc's "timeout:" and "attempts:" (what
 * resolv.conf(5) documents, and what every system writes) are read here
 * and handed over as options, as glibc applies them (RES_OPTIONS
 * after the file; timeout at most 30 s, attempts at most 5).
 */
#include "hosts.h"
#include "resolve.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define RESOLV_CONF "/etc/resolv.conf"
#define IN_FLIGHT 100

/* One socket of the channel, watched by the loop. */
struct sock {
    struct watch w;
    struct sock *next;
    struct channel *ch;
    char peer[NC_ADDRSTRLEN];  /* its server, once asked; "" before */
};

struct channel {
    nc_loop *loop;
    ares_channel ares;
    nc_timer timer;            /* c-ares' next timeout; not counted */
    struct sock *socks;
    struct sock *reading;      /* the socket being processed, or NULL */
    bool starting;             /* inside ares_getaddrinfo() */
    struct hosts *hosts;       /* the hosts file, read when first needed */
    unsigned in_flight;        /* queries in the channel */
    struct query *wait_head, *wait_tail;   /* the others, by q->impl */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status;

static void library_init(void)
{
    init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static pthread_once_t describe_once = PTHREAD_ONCE_INIT;
static char describe_text[64];

static void describe_init(void)
{
    snprintf(describe_text, sizeof(describe_text), "c-ares %s, in the loop",
             ares_version(NULL));
}

const char *nc__lookup_describe(void)
{
    pthread_once(&describe_once, describe_init);
    return describe_text;
}

static int error_of(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENODATA:
        return -NC_EDNS_NO_ADDRESS;
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
        return -NC_EDNS_NOT_FOUND;
    case ARES_ESERVFAIL:
        return -NC_EDNS_SERVER_FAILED;
    case ARES_EREFUSED:
        return -NC_EDNS_REFUSED;
    case ARES_ETIMEOUT:
        return -NC_EDNS_TIMEOUT;
    case ARES_ECONNREFUSED:
    case ARES_EOF:
        return -NC_EDNS_NO_SERVER;
    case ARES_EFORMERR:
    case ARES_ENOTIMP:
    case ARES_EBADRESP:
        return -NC_EDNS_BAD_ANSWER;
    case ARES_ENOMEM:
        return -ENOMEM;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return -ECANCELED;
    case ARES_EBADNAME:
    case ARES_EBADFAMILY:
    case ARES_EBADHINTS:
    case ARES_EBADFLAGS:
    case ARES_EBADSTR:
    case ARES_EBADQUERY:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* ---- timeouts and sockets ----------------------------------------------- */

static void rearm(struct channel *ch)
{
    struct timeval tv;
    if (!ares_timeout(ch->ares, NULL, &tv)) {
        nc__timer_stop(&ch->timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u +
                  ((uint64_t)tv.tv_usec + 999u) / 1000u;
    nc__timer_start(&ch->timer, ms, 0);
}

static void timeout_fired(nc_timer *t, void *ud)
{
    struct channel *ch = ud;
    (void)t;
    ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(ch);
}

static void sock_ready(struct watch *w, unsigned events)
{
    struct sock *s = container_of(w, struct sock, w);
    struct channel *ch = s->ch;
    int fd = w->fd;
    /* s may be freed inside (c-ares closes the socket): sock_forget then
     * clears ch->reading. */
    ch->reading = s;
    ares_process_fd(ch->ares,
                    events & (EV_READ | EV_HUP | EV_ERR) ? fd : ARES_SOCKET_BAD,
                    events & EV_WRITE ? fd : ARES_SOCKET_BAD);
    ch->reading = NULL;
    rearm(ch);
}

static void sock_forget(struct sock **link)
{
    struct sock *s = *link;
    *link = s->next;
    if (s->ch->reading == s)
        s->ch->reading = NULL;
    nc__watch_stop(&s->w);
    free(s);
}

static void sock_state(void *data, ares_socket_t fd, int readable,
                       int writable)
{
    struct channel *ch = data;
    struct sock **link = &ch->socks;
    while (*link && (*link)->w.fd != fd)
        link = &(*link)->next;
    if (!readable && !writable) {
        if (*link)
            sock_forget(link);
        return;
    }
    struct sock *s = *link;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return;     /* unwatched: the query times out on the timer */
        s->ch = ch;
        if (nc__watch_init(ch->loop, &s->w, fd, sock_ready, false) < 0) {
            free(s);
            return;
        }
        s->next = ch->socks;
        ch->socks = s;
    }
    nc__watch_update(&s->w, (readable ? EV_READ : 0) |
                                (writable ? EV_WRITE : 0));
}

/* ---- queries ------------------------------------------------------------ */

/* "DNS server 127.0.0.1:53", or the servers configured when no one
 * socket brought the answer. */
static void describe_servers(struct channel *ch, char *out, size_t len)
{
    struct ares_addr_port_node *servers = NULL, *n;
    size_t used = 0;
    out[0] = '\0';
    if (ares_get_servers_ports(ch->ares, &servers) != ARES_SUCCESS)
        return;
    for (n = servers; n && used + 1 < len; n = n->next) {
        char host[INET6_ADDRSTRLEN];
        if (!inet_ntop(n->family, &n->addr, host, sizeof(host)))
            continue;
        bool v6 = n->family == AF_INET6;
        int w = snprintf(out + used, len - used, "%s%s%s%s:%d",
                         used ? ", " : n->next ? "DNS servers "
                                               : "DNS server ",
                         v6 ? "[" : "", host, v6 ? "]" : "",
                         n->udp_port ? n->udp_port : 53);
        if (w < 0)
            break;
        used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
    ares_free_data(servers);
    if (!out[0])
        snprintf(out, len, "no DNS server configured");
}

static void describe_source(struct channel *ch, char *out, size_t len)
{
    struct sock *s = ch->reading;
    if (s && !s->peer[0]) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        nc_addr a;
        if (getpeername(s->w.fd, (struct sockaddr *)&ss, &sl) != 0 ||
            nc_addr_from_sockaddr(&a, (struct sockaddr *)&ss, sl) != 0 ||
            nc_addr_format(&a, s->peer, sizeof(s->peer)) <= 0)
            s->peer[0] = '\0';
    }
    if (s && s->peer[0])
        snprintf(out, len, "DNS server %s", s->peer);
    else
        describe_servers(ch, out, len);
}

static void send_waiting(struct channel *ch);

static void answered(void *arg, int status, int timeouts,
                     struct ares_addrinfo *res)
{
    struct query *q = arg;
    struct channel *ch = q->impl;
    (void)timeouts;
    ch->in_flight--;
    /* (Inside send_query, the loop sending is already at work.) */
    if (status != ARES_EDESTRUCTION && !ch->starting)
        send_waiting(ch);
    if (!q->fn) {
        /* Cancelled, or the channel is being destroyed: dropped. */
        ares_freeaddrinfo(res);
        nc__query_free(q);
        return;
    }
    q->err = error_of(status);
    for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n;
         n = n->ai_next)
        nc__query_add(q, n->ai_addr, n->ai_addrlen);
    if (q->err == 0 && q->count == 0)
        q->err = -NC_EDNS_NO_ADDRESS;
    describe_source(ch, q->source, sizeof(q->source));
    ares_freeaddrinfo(res);
    nc__query_answered(q);
}

/* glibc's "timeout:N" and "attempts:N" in one options text. */
static void options_of(const char *text, int *timeout_s, int *tries)
{
    for (const char *p = text; (p = strpbrk(p, "ta")) != NULL; p++) {
        if (p != text && p[-1] != ' ' && p[-1] != '\t')
            continue;
        if (strncmp(p, "timeout:", 8) == 0)
            *timeout_s = atoi(p + 8);
        else if (strncmp(p, "attempts:", 9) == 0)
            *tries = atoi(p + 9);
    }
}

static void resolv_options(int *timeout_ms, int *tries)
{
    int timeout_s = 0, n = 0;
    char line[512];
    FILE *f = fopen(RESOLV_CONF, "re");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "options", 7) == 0 &&
            (line[7] == ' ' || line[7] == '\t'))
            options_of(line + 8, &timeout_s, &n);
    if (f)
        fclose(f);
    const char *env = getenv("RES_OPTIONS");
    if (env)
        options_of(env, &timeout_s, &n);
    *timeout_ms = timeout_s <= 0 ? 0 : (timeout_s > 30 ? 30 : timeout_s) * 1000;
    *tries = n <= 0 ? 0 : n > 5 ? 5 : n;
}

static void send_query(struct channel *ch, struct query *q)
{
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = q->family;
    hints.ai_socktype = SOCK_STREAM;
    /* Our own order (Happy Eyeballs). */
    hints.ai_flags = ARES_AI_NOSORT;
    ch->in_flight++;
    ch->starting = true;
    ares_getaddrinfo(ch->ares, q->name, NULL, &hints, answered, q);
    ch->starting = false;
}

/* A query left the channel: the next waiting ones go in. (Called from
 * inside c-ares, which takes new queries from its callbacks.) */
static void send_waiting(struct channel *ch)
{
    while (ch->wait_head && ch->in_flight < IN_FLIGHT) {
        struct query *q = ch->wait_head;
        ch->wait_head = q->node.next ? container_of(q->node.next,
                                                    struct query, node)
                                     : NULL;
        if (!ch->wait_head)
            ch->wait_tail = NULL;
        /* An answer that comes inside (an error) is no server's. */
        struct sock *reading = ch->reading;
        ch->reading = NULL;
        send_query(ch, q);
        ch->reading = reading;
    }
}

static int channel_new(nc_loop *loop, struct channel **out)
{
    pthread_once(&init_once, library_init);
    if (init_status != ARES_SUCCESS)
        return error_of(init_status);
    struct channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->loop = loop;
    nc__timer_init(loop, &ch->timer, timeout_fired, ch, false);
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = ch;
    o.flags = ARES_FLAG_NOCHECKRESP;
    o.lookups = (char *)"b";      /* DNS: the hosts file is ours */
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_LOOKUPS;
    resolv_options(&o.timeout, &o.tries);
    if (o.timeout)
        mask |= ARES_OPT_TIMEOUTMS;
    if (o.tries)
        mask |= ARES_OPT_TRIES;
    int status = ares_init_options(&ch->ares, &o, mask);
    if (status != ARES_SUCCESS) {
        free(ch);
        return error_of(status);
    }
    *out = ch;
    return 0;
}

int nc__lookup_send(struct resolver *r, struct query *q)
{
    if (!r->impl) {
        struct channel *ch = NULL;
        int rc = channel_new(r->loop, &ch);
        if (rc < 0)
            return rc;
        r->impl = ch;
    }
    struct channel *ch = r->impl;
    q->impl = ch;
    nc_addr from_file[QUERY_MAX_ADDRS];
    const char *path;
    size_t n = nc__hosts_find(&ch->hosts, r->loop->now_ns, q->name,
                              q->family, from_file, QUERY_MAX_ADDRS, &path);
    if (n > 0) {
        for (size_t i = 0; i < n; i++)
            nc__query_add(q, &from_file[i].u.sa, from_file[i].len);
        snprintf(q->source, sizeof(q->source), "hosts file %s", path);
        nc__query_answered(q);     /* from the loop, still */
        return 0;
    }
    if (ch->in_flight >= IN_FLIGHT || ch->wait_head) {
        /* Waits its turn, linked through its node. */
        q->node.next = NULL;
        if (ch->wait_tail)
            ch->wait_tail->node.next = &q->node;
        else
            ch->wait_head = q;
        ch->wait_tail = q;
        return 0;
    }
    send_query(ch, q);
    rearm(ch);
    return 0;
}

void nc__lookup_cancel(struct resolver *r, struct query *q)
{
    struct channel *ch = r->impl;
    /* Waiting: dropped now. In the channel: it runs on, and answered()
     * frees it. */
    struct query **link = &ch->wait_head, *prev = NULL;
    while (*link && *link != q) {
        prev = *link;
        link = (struct query **)&prev->node.next;
    }
    if (!*link)
        return;
    *link = q->node.next ? container_of(q->node.next, struct query, node)
                         : NULL;
    if (ch->wait_tail == q)
        ch->wait_tail = prev;
    nc__query_free(q);
}

void nc__lookup_close(struct resolver *r)
{
    struct channel *ch = r->impl;
    if (!ch)
        return;
    /* Every query was cancelled: the waiting ones are gone, and the
     * callbacks of those in the channel (ARES_EDESTRUCTION) free them. */
    ares_destroy(ch->ares);
    while (ch->socks)
        sock_forget(&ch->socks);
    nc__timer_stop(&ch->timer);
    nc__hosts_free(ch->hosts);
    free(ch);
    r->impl = NULL;
}
