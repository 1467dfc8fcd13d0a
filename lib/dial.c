/*
 * dial.c - nc_connect() to a host name: both families looked up at once,
 * then Happy Eyeballs version 2 (RFC 8305), and nc_conn_explain().
 *
 * The first family (IPv6, or IPv4 with NC_FAMILY_IPV4_FIRST) answering
 * starts the attempts at once; the other family answering first waits
 * resolution_delay_ms for it (section 3). Attempts take the addresses
 * alternately by family, the first family first (section 4, a "First
 * Address Family Count" of 1); a new one starts when the last one has
 * neither connected nor failed within attempt_delay_ms, or at once when
 * one fails (section 5). Addresses that arrive later (the slower family)
 * join the list where it stands. The first attempt that connects gives
 * the connection its socket; every other attempt is closed at once, and
 * the lookups still going are cancelled. The connection's connect
 * timeout, armed by nc_connect(), bounds the whole.
 *
 * Everything here runs from the loop (query answers are deferred calls,
 * attempts are watchers, the delays a timer), and no user code runs
 * inside it but on_open, through nc__conn_connected(), which is always
 * the last thing done.
 */
#include "addr.h"
#include "dial.h"
#include "resolve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTEMPT_DELAY_MS 250
#define ATTEMPT_DELAY_MIN_MS 10
#define RESOLUTION_DELAY_MS 50
#define DELAY_MAX_MS 2000
#define MAX_ATTEMPTS (2 * QUERY_MAX_ADDRS)

enum attempt_state {
    AT_CONNECTING,
    AT_FAILED,      /* err says why */
    AT_WON,
    AT_STOPPED      /* still connecting when the dial stopped */
};

struct attempt {
    struct watch w;            /* the socket, waiting for writability */
    struct dial *d;
    nc_addr addr;
    int err;
    enum attempt_state state;
    uint64_t started_ns, ended_ns;
};

/* One family's lookup and its addresses. */
struct family {
    struct query *q;           /* while it is being looked up */
    int err;                   /* 1: not asked; 0; or the lookup's error */
    bool done;
    nc_addr addrs[QUERY_MAX_ADDRS];   /* with the port */
    size_t count, next;        /* next: the first not tried yet */
    char source[QUERY_SOURCE_LEN];
    uint64_t elapsed_ns;
};

struct dial {
    nc_conn *c;
    nc_loop *loop;
    uint16_t port;
    uint32_t attempt_delay_ms, resolution_delay_ms, timeout_ms;
    char *bind;                /* opts->bind, or NULL */
    struct family fam[2];      /* [0] the first family, [1] the other */
    int turn;                  /* the family the next attempt takes */
    bool started;              /* attempts have begun */
    bool waiting;              /* the timer is the resolution delay */
    bool stopped;              /* won, or the connection closed */
    struct attempt *won;       /* the attempt that connected */
    struct attempt *att[MAX_ATTEMPTS];
    size_t natt;
    unsigned inflight;
    nc_timer timer;            /* resolution or attempt delay; not counted */
    uint64_t started_ns, last_start_ns, ended_ns;
    nc_close_reason end_reason;
    int end_err;
    char host[];
};

static void next_attempt(struct dial *d);

static uint64_t ms_between(uint64_t from, uint64_t to)
{
    return to > from ? (to - from + NS_PER_MS / 2) / NS_PER_MS : 0;
}

/* ---- the end ------------------------------------------------------------ */

static bool lookups_done(const struct dial *d)
{
    return (d->fam[0].done || d->fam[0].err == 1) &&
           (d->fam[1].done || d->fam[1].err == 1);
}

/* Of the attempts' failures, the one a person can act on first: the
 * host answered (refused), then silence, then no route. */
static int attempt_rank(int err)
{
    switch (err) {
    case -ECONNREFUSED:
        return 6;
    case -ECONNRESET:
    case -EACCES:
    case -EPERM:
        return 5;
    case -ETIMEDOUT:
        return 4;
    case -EHOSTUNREACH:
        return 3;
    case -ENETUNREACH:
        return 2;
    case -EADDRNOTAVAIL:
    case -EAFNOSUPPORT:
        return 0;
    default:
        return 1;
    }
}

static int telling_error(const struct dial *d)
{
    int best = 0;
    for (size_t i = 0; i < d->natt; i++)
        if (d->att[i]->state == AT_FAILED &&
            (!best || attempt_rank(d->att[i]->err) > attempt_rank(best)))
            best = d->att[i]->err;
    if (best)
        return best;
    best = nc__lookup_telling(d->fam[0].err, d->fam[1].err);
    return best < 0 ? best : -NC_EDNS_NO_ADDRESS;
}

/* Nothing is left to try: fail the connection (which stops the dial). */
static void give_up(struct dial *d)
{
    nc__conn_teardown(d->c, NC_CLOSE_CONNECT_FAILED, telling_error(d), false);
}

static void attempt_close(struct attempt *a, enum attempt_state state)
{
    int fd = a->w.fd;
    nc__watch_stop(&a->w);
    close(fd);
    a->state = state;
    a->ended_ns = clock_now_ns();
    a->d->inflight--;
}

/* Stop everything still going: the delays, the lookups, the attempts. */
static void halt(struct dial *d)
{
    d->stopped = true;
    d->ended_ns = clock_now_ns();
    nc__timer_stop(&d->timer);
    for (int i = 0; i < 2; i++) {
        nc__query_cancel(d->fam[i].q);
        d->fam[i].q = NULL;
    }
    for (size_t i = 0; i < d->natt; i++)
        if (d->att[i]->state == AT_CONNECTING)
            attempt_close(d->att[i], AT_STOPPED);
}

void nc__dial_stop(struct dial *d, nc_close_reason reason, int err)
{
    if (d->stopped)
        return;
    d->end_reason = reason;
    d->end_err = err;
    halt(d);
}

void nc__dial_free(struct dial *d)
{
    nc__dial_stop(d, NC_CLOSE_LOCAL, 0);
    for (size_t i = 0; i < d->natt; i++)
        free(d->att[i]);
    free(d->bind);
    free(d);
}

/* ---- attempts ------------------------------------------------------------- */

/* The first attempt to connect: the connection takes its socket. */
static void win(struct dial *d, struct attempt *a)
{
    nc_conn *c = d->c;
    int fd = a->w.fd;
    /* With epoll the socket stays in the set, for writability: the
     * connection changes that interest (one epoll_ctl, not a delete and
     * an add). On a ring the watch's poll must be cancelled. */
    bool keep = !d->loop->ring;
    if (keep)
        a->w.events = 0;       /* nc__watch_stop then only detaches */
    nc__watch_stop(&a->w);
    a->state = AT_WON;
    a->ended_ns = clock_now_ns();
    d->inflight--;
    d->won = a;
    halt(d);                   /* the others, and the lookups */
    int rc = nc__fd_attach(d->loop, fd, (uintptr_t)c | FD_TAG_CONN,
                           &c->idle.tag);
    if (rc < 0) {
        close(fd);
        nc__conn_teardown(c, NC_CLOSE_ERROR, rc, false);
        return;
    }
    c->fd = fd;
    if (keep)
        c->flags |= CF_REGISTERED | CF_WANT_WRITE;
    /* What nc__conn_connected() does, but SO_ERROR was read already. */
    counter_add(&d->loop->ctr.connected, 1);
    nc__conn_open(c, false);   /* on_open: the last thing done */
}

static void attempt_ready(struct watch *w, unsigned events)
{
    struct attempt *a = container_of(w, struct attempt, w);
    struct dial *d = a->d;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    (void)events;
    if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (!soerr) {
        win(d, a);
        return;
    }
    a->err = -soerr;
    attempt_close(a, AT_FAILED);
    next_attempt(d);       /* a failure starts the next one at once */
}

/* Connect to addr: 0 when under way, or the negative errno it failed
 * with at once (recorded). */
static int attempt_start(struct dial *d, const nc_addr *addr)
{
    struct attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    d->att[d->natt++] = a;
    a->d = d;
    a->addr = *addr;
    a->started_ns = clock_now_ns();
    a->state = AT_FAILED;
    int family = addr->u.sa.sa_family;
    int fd = nc__socket_nb(family, SOCK_STREAM);
    int rc = fd < 0 ? fd : nc__set_keepalive(fd, &d->c->prof->opt);
    if (rc == 0 && d->bind)
        rc = nc__connect_bind(fd, family, d->bind,
                              &(struct connect_why){ NULL, 0 });
    if (rc == 0) {
        /* Non-blocking: it returns at once. */
        int crc = connect(fd, &addr->u.sa, addr->len);
        int cerr = crc < 0 ? errno : 0;
        nc_io_outcome o = nc_io_classify(NC_OP_CONNECT, crc, cerr);
        if (!(o == NC_IO_PROGRESS || (o == NC_IO_AGAIN && cerr != EAGAIN)))
            rc = -cerr;
    }
    if (rc == 0)
        rc = nc__watch_init(d->loop, &a->w, fd, attempt_ready, false);
    if (rc == 0) {
        rc = nc__watch_update(&a->w, EV_WRITE);
        if (rc < 0)
            nc__watch_stop(&a->w);
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        a->err = rc;
        a->ended_ns = a->started_ns;
        return rc;
    }
    a->state = AT_CONNECTING;
    d->inflight++;
    d->last_start_ns = a->started_ns;
    return 0;
}

/* The next address to try: alternating families, the first one first. */
static const nc_addr *take(struct dial *d)
{
    for (int k = 0; k < 2; k++) {
        struct family *f = &d->fam[(d->turn + k) % 2];
        if (f->next < f->count) {
            d->turn = f == &d->fam[0] ? 1 : 0;
            return &f->addrs[f->next++];
        }
    }
    return NULL;
}

/* Start attempts until one is under way (then wait attempt_delay_ms for
 * it), or nothing is left to try. */
static void next_attempt(struct dial *d)
{
    nc__timer_stop(&d->timer);
    d->waiting = false;
    d->started = true;
    for (;;) {
        const nc_addr *addr = take(d);
        if (!addr) {
            if (d->inflight == 0 && lookups_done(d))
                give_up(d);
            return;    /* the attempts going, or a late answer, go on */
        }
        int rc = attempt_start(d, addr);
        if (rc == -ENOMEM && d->inflight == 0) {
            nc__conn_teardown(d->c, NC_CLOSE_ERROR, rc, false);
            return;
        }
        if (rc == 0) {
            nc__timer_start(&d->timer, d->attempt_delay_ms, 0);
            return;
        }
    }
}

static void timer_fired(nc_timer *t, void *ud)
{
    (void)t;
    next_attempt(ud);
}

/* ---- lookups --------------------------------------------------------------- */

/* Addresses came while attempts are under way: the next one starts when
 * the last attempt has had its attempt delay, or now if it has. */
static void schedule(struct dial *d)
{
    if (timer_active(&d->timer))
        return;
    uint64_t due = d->last_start_ns +
                   (uint64_t)d->attempt_delay_ms * NS_PER_MS;
    if (d->inflight == 0 || due <= clock_now_ns())
        next_attempt(d);
    else
        nc__timer_start_at(&d->timer, due);
}

static void answered(struct query *q, void *arg)
{
    struct dial *d = arg;
    int i = d->fam[0].q == q ? 0 : 1;
    struct family *f = &d->fam[i];
    f->q = NULL;
    f->done = true;
    f->err = q->err;
    f->elapsed_ns = q->answered_ns - q->started_ns;
    memcpy(f->source, q->source, sizeof(f->source));
    for (size_t k = 0; k < q->count; k++) {
        nc_addr a = q->addrs[k];
        if (a.u.sa.sa_family == AF_INET)
            a.u.in4.sin_port = htons(d->port);
        else
            a.u.in6.sin6_port = htons(d->port);
        f->addrs[f->count++] = a;
    }
    if (d->started) {
        if (f->count > 0)
            schedule(d);
        else if (d->inflight == 0 && lookups_done(d))
            give_up(d);
        return;
    }
    /* The first family answering, or the last one: go. The other family
     * answering first waits for the first one a little. */
    if (i == 0 || lookups_done(d)) {
        next_attempt(d);
    } else if (f->count > 0 && !d->waiting) {
        d->waiting = true;
        nc__timer_start(&d->timer, d->resolution_delay_ms, 0);
    }
}

/* ---- starting ------------------------------------------------------------- */

static uint32_t clamp(uint32_t v, uint32_t dflt, uint32_t lo, uint32_t hi)
{
    return v == 0 ? dflt : v < lo ? lo : v > hi ? hi : v;
}

int nc__dial_start(nc_loop *loop, const char *host, uint16_t port,
                   const nc_connect_options *opts,
                   const nc_conn_callbacks *cbs, void *ud, nc_conn **out,
                   const struct connect_why *w)
{
    static const nc_connect_options none;
    const nc_connect_options *o = opts ? opts : &none;
    nc_endpoint bind_ep;
    char msg[256];
    int rc = o->bind ? nc_endpoint_parse(&bind_ep, o->bind, msg,
                                         sizeof(msg)) : 0;
    if (rc < 0) {
        nc__errbuf_set(w->buf, w->len, "local endpoint (bind) '%s': %s",
                       o->bind, msg);
        return rc;
    }
    size_t n = strlen(host);
    struct dial *d = calloc(1, sizeof(*d) + n + 1);
    if (!d)
        return -ENOMEM;
    memcpy(d->host, host, n + 1);
    d->loop = loop;
    d->port = port;
    d->attempt_delay_ms = clamp(o->attempt_delay_ms, ATTEMPT_DELAY_MS,
                                ATTEMPT_DELAY_MIN_MS, DELAY_MAX_MS);
    d->resolution_delay_ms = clamp(o->resolution_delay_ms,
                                   RESOLUTION_DELAY_MS, 1, DELAY_MAX_MS);
    d->timeout_ms = o->conn.connect_timeout_ms;
    d->started_ns = clock_now_ns();
    nc__timer_init(loop, &d->timer, timer_fired, d, false);
    if (o->bind && !(d->bind = strdup(o->bind))) {
        free(d);
        return -ENOMEM;
    }
    struct conn_profile *prof;
    rc = nc__connect_profile(loop, opts, cbs, AF_INET6, &prof, w);
    if (rc < 0) {
        nc__dial_free(d);
        return rc;
    }
    prof->dial = d;
    /* TLS follows the name, unless the options name another. */
    if (prof->tls && !prof->server_name &&
        !(prof->server_name = strndup(host, n - (host[n - 1] == '.'))))
        rc = -ENOMEM;
    int fam[2];
    int nfam = nc__family_order(o->family, fam);
    d->fam[1].err = 1;
    for (int i = 0; rc == 0 && i < nfam; i++) {
        d->fam[i].err = 0;
        rc = nc__query_start(loop, host, fam[i], answered, d,
                             &d->fam[i].q);
    }
    nc_conn *c = NULL;
    if (rc == 0)
        rc = nc__conn_new(prof, -1, ud, &c);
    if (rc < 0) {
        nc__errbuf_set(w->buf, w->len, "cannot look up '%s': %s", host,
                       nc_strerror(rc));
        nc__conn_profile_free(prof);    /* and the dial */
        return rc;
    }
    d->c = c;
    /* The connect timeout covers the lookup and every attempt. */
    nc__tentry_add(loop, &c->idle, prof->connect_list);
    if (out)
        *out = c;
    return 0;
}

/* ---- nc_conn_explain ------------------------------------------------------ */

struct text {
    char *buf;
    size_t len, used;          /* used: the whole length, as snprintf */
};

static void say(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct text *t, const char *fmt, ...)
{
    va_list ap;
    size_t at = t->used < t->len ? t->used : t->len - 1;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + at, t->len - at, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used += (size_t)n;
}

static const char *outcome(const struct dial *d, const struct attempt *a)
{
    int err = a->err;
    if (a->state == AT_CONNECTING)
        return "is being tried";
    if (a->state == AT_WON)
        return "connected";
    if (a->state == AT_STOPPED) {
        if (d->won)
            return "was abandoned when another address connected";
        if (d->end_reason != NC_CLOSE_CONNECT_FAILED ||
            d->end_err != -ETIMEDOUT)
            return "was abandoned (the connection was closed)";
        err = -ETIMEDOUT;
    }
    switch (err) {
    case -ECONNREFUSED:
        return "was refused (nothing listens on that port there)";
    case -ETIMEDOUT:
        return "timed out (no answer: a firewall drops the packets, or the "
               "host is down)";
    case -EHOSTUNREACH:
        return "is unreachable (no route to host: a firewall rejects it, or "
               "the host is down)";
    case -ENETUNREACH:
        return "is on a network this host has no route to";
    case -EACCES:
    case -EPERM:
        return "was blocked by a firewall";
    case -ECONNRESET:
        return "was reset while connecting";
    case -EADDRNOTAVAIL:
        return "could not be tried (no local address or port for it)";
    case -EAFNOSUPPORT:
        return "could not be tried (no local address of its family)";
    default:
        return NULL;
    }
}

static void say_attempts(struct text *t, const struct dial *d, bool won)
{
    bool first = true;
    for (size_t i = 0; i < d->natt; i++) {
        const struct attempt *a = d->att[i];
        char where[NC_ADDRSTRLEN];
        if (won && a->state == AT_WON)
            continue;
        if (nc_addr_format(&a->addr, where, sizeof(where)) < 0)
            snprintf(where, sizeof(where), "?");
        const char *what = outcome(d, a);
        say(t, "%s%s ", first ? "" : ", ", where);
        if (what)
            say(t, "%s", what);
        else
            say(t, "failed (%s)", nc_strerror(a->err));
        first = false;
    }
}

/* "the name was looked up in 3 ms (DNS server 127.0.0.1:53)" */
static void say_lookup(struct text *t, const struct dial *d)
{
    const struct family *f = NULL;
    for (int i = 0; i < 2; i++)
        if (d->fam[i].done && d->fam[i].count > 0 &&
            (!f || d->fam[i].elapsed_ns > f->elapsed_ns))
            f = &d->fam[i];
    if (f)
        say(t, "the name was looked up in %.1f ms (%s)",
            (double)f->elapsed_ns / NS_PER_MS, f->source);
}

/* Why the lookup found nothing: the more telling family's error. */
static void say_lookup_failed(struct text *t, const struct dial *d)
{
    const struct family *f = &d->fam[0];
    if (d->fam[1].err != 1 &&
        nc__lookup_telling(f->err, d->fam[1].err) != f->err)
        f = &d->fam[1];
    if (!f->done) {
        say(t, "the name was still being looked up");
        return;
    }
    say(t, "%s", nc_strerror(f->err < 0 ? f->err : -NC_EDNS_NO_ADDRESS));
    if (f->source[0])
        say(t, " (%s)", f->source);
    say(t, ": %s", nc_explain(NC_OP_CONNECT, f->err < 0 ? f->err
                                             : -NC_EDNS_NO_ADDRESS));
}

static void explain_dial(struct text *t, const struct dial *d)
{
    if (d->won) {
        const struct attempt *a = d->won;
        char where[NC_ADDRSTRLEN];
        if (nc_addr_format(&a->addr, where, sizeof(where)) < 0)
            snprintf(where, sizeof(where), "?");
        say(t, "connected to %s:%u at %s in %llu ms; ", d->host,
            (unsigned)d->port, where,
            (unsigned long long)ms_between(d->started_ns, a->ended_ns));
        say_lookup(t, d);
        if (d->natt > 1) {
            say(t, "; tried before it or alongside: ");
            say_attempts(t, d, true);
        }
        return;
    }
    if (!d->stopped) {
        say(t, "connecting to %s:%u: ", d->host, (unsigned)d->port);
        if (d->natt == 0) {
            say(t, "looking the name up");
            return;
        }
        say_attempts(t, d, false);
        return;
    }
    if (d->end_reason != NC_CLOSE_CONNECT_FAILED) {
        say(t, "the connect to %s:%u was given up after %llu ms (%s)%s",
            d->host, (unsigned)d->port,
            (unsigned long long)ms_between(d->started_ns, d->ended_ns),
            nc_close_reason_name(d->end_reason),
            d->natt ? ": " : ", while looking the name up");
        if (d->natt)
            say_attempts(t, d, false);
        return;
    }
    if (d->end_err == -ETIMEDOUT)
        say(t, "could not connect to %s:%u within the connect timeout "
            "(%u ms): ", d->host, (unsigned)d->port, d->timeout_ms);
    else
        say(t, "could not connect to %s:%u: ", d->host, (unsigned)d->port);
    if (d->natt == 0) {
        say_lookup_failed(t, d);
        return;
    }
    say_attempts(t, d, false);
    say(t, "; ");
    say_lookup(t, d);
}

static void explain_plain(struct text *t, const nc_conn *c)
{
    switch (conn_state(c)) {
    case CS_CONNECTING:
        say(t, "connecting");
        return;
    case CS_CLOSED: {
        nc_close_reason r = conn_reason(c);
        int err = c->done.close_err;
        say(t, "%s", nc_close_reason_name(r));
        if (err)
            say(t, " (%s): %s", nc_errname(err),
                nc_explain(r == NC_CLOSE_CONNECT_FAILED ? NC_OP_CONNECT
                                                        : NC_OP_READ, err));
        return;
    }
    default:
        say(t, "open");
        return;
    }
}

int nc_conn_explain(const nc_conn *c, char *buf, size_t len)
{
    if (!c || !buf || len == 0)
        return -EINVAL;
    struct text t = { buf, len, 0 };
    buf[0] = '\0';
    if (c->prof->dial)
        explain_dial(&t, c->prof->dial);
    else
        explain_plain(&t, c);
    return t.used > INT32_MAX ? INT32_MAX : (int)t.used;
}
