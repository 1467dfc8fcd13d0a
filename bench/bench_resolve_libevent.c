/* bench_resolve_libevent.c - connects by name with libevent:
 * bufferevent_socket_connect_hostname() with an evdns base (which reads
 * /etc/resolv.conf), reset and freed once connected. See
 * resolve_load.h. */
#include "resolve_load.h"

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <sys/socket.h>

static struct resolve_load L;
static struct event_base *base;
static struct evdns_base *dns;

static void start(void);

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (!(what & BEV_EVENT_CONNECTED)) {
        if (L.failed++ == 0)
            fprintf(stderr, "connect: events 0x%x, dns %d\n", what,
                    bufferevent_socket_get_dns_error(bev));
    }
    L.done++;
    /* Reset, as the others do: no TIME_WAIT left. */
    struct linger lg = { 1, 0 };
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    bufferevent_free(bev);
    start();
}

static void start(void)
{
    if (!rl_want_more(&L)) {
        if (L.done >= L.total)
            event_base_loopbreak(base);
        return;
    }
    struct bufferevent *bev =
        bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, NULL, NULL, on_event, NULL);
    if (bufferevent_socket_connect_hostname(bev, dns, AF_UNSPEC, L.name,
                                            (int)L.port) < 0) {
        /* On failure the callback has run already (libevent 2.1). */
        return;
    }
}

int main(int argc, char **argv)
{
    rl_init(&L, argc, argv);
    base = event_base_new();
    dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!base || !dns)
        return 1;
    for (unsigned long i = 0; i < L.concurrency; i++)
        start();
    event_base_dispatch(base);
    int rc = rl_report(&L, "libevent");
    evdns_base_free(dns, 0);
    event_base_free(base);
    return rc;
}
