/*
 * bench_tls_libevent.c - the jobs of bench_tls_libnetcore.c against a TLS
 * echo server on libevent 2.1's bufferevent_openssl, for comparison.
 * Usage: bench_tls_libevent [handshakes [concurrency [bulk_MiB]]]
 *        bench_tls_libevent --serve | --load ...   (see tls_load.h)
 * Output: "tls <job> libevent <value> <unit>".
 *
 * What a libevent user would write, set up like libnetcore's server:
 * - the SSL_CTX has libnetcore's settings (lib/tls_ctx.c): TLS_server_method
 *   with TLS 1.2 as the minimum, OpenSSL's default ciphers, groups and
 *   session tickets, SSL_OP_NO_RENEGOTIATION, SSL_MODE_RELEASE_BUFFERS,
 *   the same certificate and key. Negotiated with the bench's client:
 *   TLSv1.3, TLS_AES_256_GCM_SHA384 (printed once, like libnetcore's);
 * - an evconnlistener; every accepted socket gets its own SSL and a
 *   bufferevent_openssl_socket_new(..., BUFFEREVENT_SSL_ACCEPTING,
 *   BEV_OPT_CLOSE_ON_FREE): the socket BIO, OpenSSL reads and writes the
 *   descriptor itself;
 * - TCP_NODELAY on the listening socket, which accepted sockets inherit
 *   (libnetcore does the same: no system call per connection);
 * - the read callback moves the input buffer to the output buffer
 *   (evbuffer_add_buffer: no copy) and, above 64 KiB of output, stops
 *   reading until the output has drained to 16 KiB: libnetcore's default
 *   high- and low-water marks;
 * - at the client's close_notify (BEV_EVENT_EOF) the server sends its own
 *   close_notify (SSL_shutdown; the output is empty by then, the client
 *   has read its echo) and frees the bufferevent, which closes the socket.
 *   libnetcore does both by itself.
 * The loop stops when stop_fd becomes readable (event_base_loopbreak from
 * an event of its own loop).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "tls_load.h"

#define HIGH_WATER (64 * 1024)
#define LOW_WATER (HIGH_WATER / 4)

static const char LIB[] = "libevent";

typedef struct conn {
    struct bufferevent *bev;
    struct server *server;
    struct conn *prev, *next;
} conn;

typedef struct server {
    struct event_base *base;
    SSL_CTX *ctx;
    conn *conns;               /* every open connection, for shutdown */
} server;

static void conn_free(conn *c)
{
    server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);  /* SSL_free, close */
    free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    (void)arg;
    if (evbuffer_add_buffer(out, bufferevent_get_input(bev)) < 0) {
        conn_free(arg);
        return;
    }
    if (evbuffer_get_length(out) > HIGH_WATER)
        bufferevent_disable(bev, EV_READ);
}

/* The output fell to LOW_WATER (the write watermark): read again. */
static void on_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (!(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (what & BEV_EVENT_CONNECTED) {
        tls_server_says(LIB, SSL_get_version(ssl), SSL_get_cipher_name(ssl));
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* The client's close_notify: answer with ours. */
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    server *s = arg;
    conn *c = calloc(1, sizeof *c);
    SSL *ssl = SSL_new(s->ctx);
    (void)l;
    (void)sa;
    (void)salen;
    if (!c || !ssl)
        goto fail;
    /* evconnlistener made fd non-blocking and close-on-exec. */
    c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl,
                                            BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        goto fail;
    c->server = s;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, LOW_WATER, 0);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
        conn_free(c);
    return;
fail:
    SSL_free(ssl);
    free(c);
    close(fd);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(s->base);
}

/* libnetcore's server context (lib/tls_ctx.c), for libevent. */
static SSL_CTX *server_ctx(const tls_server_cfg *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_fail(LIB, "certificate or key", EBADMSG);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int serve(const tls_server_cfg *cfg)
{
    server s = {NULL, NULL, NULL};
    struct evconnlistener *l = NULL;
    struct event *stop_ev = NULL;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int one = 1, err = 0;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!(s.ctx = server_ctx(cfg)))
        return -EBADMSG;
    if (!(s.base = event_base_new())) {
        SSL_CTX_free(s.ctx);
        return -ENOMEM;
    }
    errno = 0;
    l = evconnlistener_new_bind(s.base, on_accept, &s,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                    LEV_OPT_CLOSE_ON_EXEC,
                                SOMAXCONN, (struct sockaddr *)&a, sizeof a);
    if (!l)
        err = errno ? -errno : -EADDRNOTAVAIL;
    else if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a,
                         &alen) < 0 ||
             setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY,
                        &one, sizeof one) < 0)
        err = -errno;
    if (err == 0) {
        stop_ev = event_new(s.base, cfg->stop_fd, EV_READ, on_stop, &s);
        if (!stop_ev || event_add(stop_ev, NULL) < 0)
            err = -ENOMEM;
    }
    if (err == 0) {
        tls_announce(cfg, ntohs(a.sin_port));
        if (event_base_dispatch(s.base) < 0)
            err = -EIO;
    }
    while (s.conns)
        conn_free(s.conns);
    if (stop_ev)
        event_free(stop_ev);
    if (l)
        evconnlistener_free(l);
    event_base_free(s.base);
    SSL_CTX_free(s.ctx);
    return err;
}

int main(int argc, char **argv)
{
    static const tls_server_ops ops = {LIB, serve};
    return tls_bench_main(argc, argv, &ops);
}
