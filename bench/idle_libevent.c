/*
 * idle_libevent.c - the idle-memory server of bench_idle.c on libevent.
 * Usage: idle_libevent [PORT]   (see mini_server.h; bench_idle runs it)
 *
 * Answers each line with "ok\n" (the idle protocol of mini_server.h).
 * Per connection: what a typical libevent user writes, a bufferevent
 * (which brings its own input and output evbuffers) from an
 * evconnlistener, freed on end of stream or error. An evsignal ends it on
 * SIGTERM.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "mini_server.h"

#define PROG "idle_libevent"

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[4096];
    size_t pending = 0, len;
    int n;
    (void)arg;
    while ((n = evbuffer_remove(in, buf, sizeof buf)) > 0)
        pending += mini_count_lines(buf, (size_t)n);
    while (pending > 0) {
        const char *reply = mini_reply_chunk(&pending, &len);
        if (bufferevent_write(bev, reply, len) < 0) {
            bufferevent_free(bev);
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);   /* closes the socket too */
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    struct event_base *base = evconnlistener_get_base(l);
    (void)sa;
    (void)salen;
    (void)arg;
    struct bufferevent *bev =
        bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    if (bufferevent_enable(bev, EV_READ) < 0)
        bufferevent_free(bev);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    int port = mini_server_init(argc, argv);
    struct sockaddr_in a = mini_loopback(port);
    struct evconnlistener *l = NULL;
    struct event *term = NULL;
    struct event_base *base = event_base_new();
    int rc = 1;

    if (!base) {
        fprintf(stderr, "%s: cannot create the event base\n", PROG);
        return 1;
    }
    l = evconnlistener_new_bind(base, on_accept, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                    LEV_OPT_CLOSE_ON_EXEC,
                                SOMAXCONN, (struct sockaddr *)&a, sizeof a);
    if (!l) {
        mini_fail(PROG, "cannot listen", errno);
        goto out;
    }
    term = evsignal_new(base, SIGTERM, on_term, base);
    if (!term || event_add(term, NULL) < 0) {
        fprintf(stderr, "%s: cannot handle SIGTERM\n", PROG);
        goto out;
    }
    mini_announce(mini_fd_port(evconnlistener_get_fd(l)));
    rc = event_base_dispatch(base) < 0 ? 1 : 0;
out:
    if (term)
        event_free(term);
    if (l)
        evconnlistener_free(l);
    event_base_free(base);
    libevent_global_shutdown();
    return rc;
}
