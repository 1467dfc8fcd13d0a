/*
 * http_libevent.c - the minimal HTTP server of bench/churn.sh and
 * bench/callgrind.sh on libevent.
 * Usage: http_libevent [PORT]   (see mini_server.h)
 *
 * What a typical libevent user writes (as idle_libevent): a bufferevent
 * per connection from an evconnlistener. The read callback answers every
 * whole request in the input evbuffer with bufferevent_write; libevent
 * sends the output on a later loop iteration, when the socket is
 * writable. A connection to close stops reading and is freed by the write
 * callback once its output is flushed. Accepted sockets get TCP_NODELAY.
 * An evsignal ends it on SIGTERM.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "mini_server.h"

#define PROG "http_libevent"

static char out_buf[MINI_HTTP_OUT];

static void on_flushed(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_free(bev);   /* closes the socket too */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len, used = 0;
    bool close_after = false;
    (void)arg;
    /* Whole requests, at most MINI_HTTP_IN bytes at a time, until only an
     * incomplete head (or nothing) is left. */
    while (!close_after && (len = evbuffer_get_length(in)) > 0) {
        if (len > MINI_HTTP_IN)
            len = MINI_HTTP_IN;
        /* Contiguous bytes to scan: one chain in practice, so no copy. */
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        size_t outlen = mini_http_answer(data, len, &used, out_buf,
                                         &close_after);
        evbuffer_drain(in, used);
        if (outlen > 0 && bufferevent_write(bev, out_buf, outlen) < 0) {
            bufferevent_free(bev);
            return;
        }
        if (used == 0)
            break;
    }
    if (close_after) {
        bufferevent_disable(bev, EV_READ);
        bufferevent_setcb(bev, NULL, on_flushed, on_event, NULL);
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            bufferevent_free(bev);   /* nothing to flush: no callback */
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    struct event_base *base = evconnlistener_get_base(l);
    (void)sa;
    (void)salen;
    (void)arg;
    if (mini_nodelay(fd) < 0) {
        close(fd);
        return;
    }
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
