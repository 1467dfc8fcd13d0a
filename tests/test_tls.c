/* test_tls.c - TLS through the connection API: the handshake opens the
 * connection, each way it can fail is reported once with its reason,
 * SNI, ALPN, client certificates and session resumption work, close_notify
 * is told from a truncation, large transfers keep their bytes and their
 * backpressure, and a context is shared by loops of two threads.
 * Certificates are made fresh by tests/tls-certs.sh (openssl command);
 * everything talks over loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char certs[PATH_MAX];

/* The path of a certificate file. One string per file name, kept for
 * the whole run: options may hold on to them. */
static const char *cert(const char *name)
{
    static struct { const char *name; char path[PATH_MAX + 32]; } files[32];
    for (size_t i = 0; i < 32; i++) {
        if (!files[i].name) {
            files[i].name = name;
            snprintf(files[i].path, sizeof(files[i].path), "%s/%s", certs,
                     name);
        }
        if (strcmp(files[i].name, name) == 0)
            return files[i].path;
    }
    fail_msg("too many certificate names");
    return NULL;
}

/* ---- a side of a TLS conversation: server or client --------------------- */

struct side {
    nc_conn *c;
    int opens, closes;
    nc_close_reason reason;
    int err;
    char *in;               /* what on_data received */
    size_t in_len, in_cap;
    bool echo;              /* write back what arrives */
    bool pause_once;        /* nc_conn_read_stop in the first on_data */
    nc_tls_info info;       /* as of on_open */
    nc_tls_info close_info; /* as of on_close */
};

static void side_open(nc_conn *c, void *ud)
{
    struct side *s = ud;
    s->c = c;
    s->opens++;
    assert_int_equal(nc_conn_tls_info(c, &s->info), 0);
}

static size_t side_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct side *s = ud;
    if (s->in_len + len > s->in_cap) {
        s->in_cap = (s->in_len + len) * 2;
        s->in = realloc(s->in, s->in_cap);
        assert_non_null(s->in);
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    if (s->echo && nc_conn_write(c, data, len) < 0)
        nc_conn_close(c);
    if (s->pause_once) {
        s->pause_once = false;
        nc_conn_read_stop(c);
    }
    return len;
}

static void side_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct side *s = ud;
    s->closes++;
    s->reason = reason;
    s->err = err;
    nc_conn_tls_info(c, &s->close_info);
    s->c = NULL;
}

static const nc_conn_callbacks side_cbs = {
    .on_open = side_open, .on_data = side_data, .on_close = side_close
};

static bool side_closed(void *arg)
{
    return ((struct side *)arg)->closes > 0;
}

static bool side_opened(void *arg)
{
    return ((struct side *)arg)->opens > 0;
}

static bool side_settled(void *arg)
{
    return side_opened(arg) || side_closed(arg);
}

struct pair {
    nc_loop *loop;
    nc_tls_ctx *sctx, *cctx;
    nc_listener *l;
    struct side srv, cli;
    char spec[NC_ADDRSTRLEN];
};

static nc_tls_ctx *server_ctx(const char *crt, const char *key,
                              const nc_tls_options *extra)
{
    nc_tls_options o = extra ? *extra : (nc_tls_options){ 0 };
    o.cert_file = cert(crt);
    o.key_file = cert(key);
    nc_tls_ctx *ctx = NULL;
    char why[256] = "";
    int rc = nc_tls_server_new(&o, &ctx, why, sizeof(why));
    if (rc < 0)
        fail_msg("nc_tls_server_new: %s (%s)", nc_strerror(rc), why);
    return ctx;
}

static nc_tls_ctx *client_ctx(const nc_tls_options *extra)
{
    nc_tls_options o = extra ? *extra : (nc_tls_options){ 0 };
    if (!o.ca_file && !o.verify_peer_off)
        o.ca_file = cert("ca.pem");
    nc_tls_ctx *ctx = NULL;
    char why[256] = "";
    int rc = nc_tls_client_new(&o, &ctx, why, sizeof(why));
    if (rc < 0)
        fail_msg("nc_tls_client_new: %s (%s)", nc_strerror(rc), why);
    return ctx;
}

/* A TLS echo server with sctx, and a client of cctx connecting to it. */
static void pair_start(struct pair *p, nc_tls_ctx *sctx, nc_tls_ctx *cctx,
                       const char *server_name)
{
    memset(p, 0, sizeof(*p));
    p->sctx = sctx;
    p->cctx = cctx;
    p->srv.echo = true;
    assert_int_equal(nc_loop_new(&p->loop), 0);
    nc_listener_options lo = { .tls = sctx };
    assert_int_equal(nc_listen(p->loop, "127.0.0.1:0", &lo, &side_cbs,
                               &p->srv, &p->l), 0);
    nc_addr a = listener_addr0(p->l);
    nc_addr_format(&a, p->spec, sizeof(p->spec));
    nc_connect_options co = { .tls = cctx, .server_name = server_name };
    assert_int_equal(nc_connect(p->loop, p->spec, &co, &side_cbs, &p->cli,
                                NULL), 0);
}

/* The server's side record is shared by every connection it accepted;
 * the client's belongs to one. */
/* A TLS server with sctx and no client yet: its address. */
static nc_addr server_only(struct pair *p, nc_tls_ctx *sctx)
{
    memset(p, 0, sizeof(*p));
    p->sctx = sctx;
    assert_int_equal(nc_loop_new(&p->loop), 0);
    nc_listener_options lo = { .tls = sctx };
    assert_int_equal(nc_listen(p->loop, "127.0.0.1:0", &lo, &side_cbs,
                               &p->srv, &p->l), 0);
    return listener_addr0(p->l);
}

static void pair_end(struct pair *p)
{
    nc_loop_free(p->loop);
    assert_true(p->cli.closes <= 1);
    nc_tls_ctx_free(p->sctx);
    nc_tls_ctx_free(p->cctx);
    free(p->srv.in);
    free(p->cli.in);
}

static bool both_closed(void *arg)
{
    struct pair *p = arg;
    return p->srv.closes > 0 && p->cli.closes > 0;
}

/* ---- the handshake and the data ------------------------------------------ */

static bool echoed(void *arg)
{
    struct pair *p = arg;
    return p->cli.in_len >= 11;
}

static void handshake_opens_then_data_flows_both_ways(void **state)
{
    (void)state;
    struct pair p;
    pair_start(&p, server_ctx("server.pem", "server.key", NULL),
               client_ctx(NULL), NULL);
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_int_equal(nc_conn_write(p.cli.c, "hello, tls!", 11), 0);
    assert_true(run_until(p.loop, echoed, &p, 3000));
    assert_memory_equal(p.cli.in, "hello, tls!", 11);
    assert_string_equal(p.cli.info.protocol, "TLSv1.3");
    assert_true(p.cli.info.cipher[0] != '\0');
    assert_true(p.cli.info.peer_verified);
    assert_non_null(strstr(p.cli.info.peer_subject, "CN = localhost"));
    assert_true(p.cli.info.peer_not_after > 0);
    assert_int_equal(p.srv.opens, 1);
    nc_conn_close(p.cli.c);
    assert_true(run_until(p.loop, both_closed, &p, 3000));
    /* Both closed in order: close_notify, then FIN. */
    assert_int_equal(p.cli.reason, NC_CLOSE_LOCAL);
    assert_int_equal(p.srv.reason, NC_CLOSE_PEER);
    assert_int_equal(p.srv.err, 0);
    pair_end(&p);
}

/* Writes before on_open are refused: the handshake has not finished. */
static void writes_wait_for_the_handshake(void **state)
{
    (void)state;
    struct pair p;
    pair_start(&p, server_ctx("server.pem", "server.key", NULL),
               client_ctx(NULL), NULL);
    nc_conn *c = NULL;
    nc_connect_options co = { .tls = p.cctx };
    struct side early = { 0 };
    assert_int_equal(nc_connect(p.loop, p.spec, &co, &side_cbs, &early, &c),
                     0);
    assert_int_equal(nc_conn_write(c, "x", 1), -ENOTCONN);
    assert_true(run_until(p.loop, side_opened, &early, 3000));
    assert_int_equal(nc_conn_write(c, "x", 1), 0);
    nc_conn_close(c);
    assert_true(run_until(p.loop, side_closed, &early, 3000));
    pair_end(&p);
}

/* ---- each failure, once, with its reason ---------------------------------- */

/* The client refuses the server's certificate: neither side opens, the
 * client learns why, the server that the client said no. */
static void check_refused(const char *crt, const char *key,
                          const char *server_name, int want)
{
    struct pair p;
    pair_start(&p, server_ctx(crt, key, NULL), client_ctx(NULL), server_name);
    assert_true(run_until(p.loop, both_closed, &p, 3000));
    assert_int_equal(p.cli.opens, 0);
    assert_int_equal(p.srv.opens, 0);
    assert_int_equal(p.cli.reason, NC_CLOSE_TLS);
    assert_int_equal(p.cli.err, -want);
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_int_equal(p.srv.err, -NC_ETLS_PEER_REJECTED);
    assert_true(p.cli.close_info.verify_result != 0);
    /* The refused certificate is still there to show. */
    assert_false(p.cli.close_info.peer_verified);
    assert_non_null(strstr(p.cli.close_info.peer_subject, "CN = "));
    assert_true(p.cli.close_info.peer_not_after > 0);
    assert_string_not_equal(nc_explain(NC_OP_CONNECT, p.cli.err),
                            nc_explain(NC_OP_CONNECT, -EPROTO));
    pair_end(&p);
}

static void expired_certificate_is_refused(void **state)
{
    (void)state;
    check_refused("expired.pem", "expired.key", NULL, NC_ETLS_CERT_EXPIRED);
    assert_non_null(strstr(nc_explain(NC_OP_CONNECT, -NC_ETLS_CERT_EXPIRED),
                           "expired"));
}

static void unknown_ca_is_refused(void **state)
{
    (void)state;
    check_refused("untrusted.pem", "untrusted.key", NULL,
                  NC_ETLS_CERT_UNTRUSTED);
}

static void wrong_name_is_refused(void **state)
{
    (void)state;
    /* By address (127.0.0.1 is not in it), and by name. */
    check_refused("wrongname.pem", "wrongname.key", NULL, NC_ETLS_CERT_NAME);
    check_refused("server.pem", "server.key", "elsewhere.example",
                  NC_ETLS_CERT_NAME);
}

/* Plain text sent to a TLS port: the server reports it as not TLS, and
 * never opens. */
static void plain_http_to_a_tls_port_is_named(void **state)
{
    (void)state;
    struct pair p;
    nc_addr a = server_only(&p, server_ctx("server.pem", "server.key", NULL));
    int fd = client_connect(&a);
    assert_true(fd >= 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL),
                     sizeof(req) - 1);
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.opens, 0);
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_int_equal(p.srv.err, -NC_ETLS_NOT_TLS);
    assert_non_null(strstr(nc_explain(NC_OP_ACCEPT, p.srv.err),
                           "plain HTTP"));
    close(fd);
    pair_end(&p);
}

/* A TLS client talking to a plain-text server hears no TLS. */
static size_t answer_plain(nc_conn *c, const void *d, size_t n, void *ud)
{
    (void)d;
    (void)ud;
    nc_conn_write(c, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    nc_conn_close(c);
    return n;
}

static void tls_client_to_a_plain_server_is_named(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_conn_callbacks plain = { .on_data = answer_plain };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", NULL, &plain, NULL, &l),
                     0);
    nc_addr a = listener_addr0(l);
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&a, spec, sizeof(spec));
    nc_tls_ctx *cctx = client_ctx(NULL);
    nc_connect_options co = { .tls = cctx };
    struct side cli = { 0 };
    assert_int_equal(nc_connect(loop, spec, &co, &side_cbs, &cli, NULL), 0);
    assert_true(run_until(loop, side_closed, &cli, 3000));
    assert_int_equal(cli.opens, 0);
    assert_int_equal(cli.reason, NC_CLOSE_TLS);
    assert_int_equal(cli.err, -NC_ETLS_NOT_TLS);
    nc_loop_free(loop);
    nc_tls_ctx_free(cctx);
}

/* Garbage bytes: a TLS failure, one on_close, no on_open. */
static void garbage_is_a_tls_failure(void **state)
{
    (void)state;
    struct pair p;
    nc_addr a = server_only(&p, server_ctx("server.pem", "server.key", NULL));
    int fd = client_connect(&a);
    unsigned char junk[512];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 151 + 7);
    junk[0] = 0x16;     /* looks like a handshake record... */
    junk[1] = 0x03;
    junk[2] = 0x03;     /* ...whose content is not */
    assert_int_equal(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), sizeof(junk));
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.opens, 0);
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_true(p.srv.err <= -NC_ETLS_NOT_TLS && p.srv.err >= -NC_ETLS_LAST);
    close(fd);
    pair_end(&p);
}

/* Bytes that are not TLS records after a finished handshake: the peer
 * speaks TLS, badly; not "does not speak TLS", which sends a reader of
 * nc_explain() looking for plain HTTP on a TLS port. */
static void garbage_after_the_handshake_is_a_protocol_failure(void **state)
{
    (void)state;
    struct pair p;
    pair_start(&p, server_ctx("server.pem", "server.key", NULL),
               client_ctx(NULL), NULL);
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_int_equal(nc_conn_write(p.cli.c, "hello, tls!", 11), 0);
    assert_true(run_until(p.loop, echoed, &p, 3000));
    unsigned char junk[1000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 151 + 7);
    junk[0] = 0x17;     /* application data... */
    junk[1] = 0x01;     /* ...of no TLS version */
    assert_int_equal(send(nc_conn_fd(p.cli.c), junk, sizeof(junk),
                          MSG_NOSIGNAL), sizeof(junk));
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_int_equal(p.srv.err, -NC_ETLS_PROTOCOL);
    pair_end(&p);
}

/* A client that connects and says nothing: the handshake timeout. */
static void silent_client_hits_the_handshake_timeout(void **state)
{
    (void)state;
    struct pair p;
    nc_tls_options o = { .handshake_timeout_ms = 100 };
    nc_addr a = server_only(&p, server_ctx("server.pem", "server.key", &o));
    int fd = client_connect(&a);
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_int_equal(p.srv.err, -ETIMEDOUT);
    assert_int_equal(p.srv.opens, 0);
    close(fd);
    pair_end(&p);
}

/* ---- SNI, ALPN, client certificates, resumption ------------------------- */

static void sni_picks_the_certificate_by_name(void **state)
{
    (void)state;
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    char why[256];
    assert_int_equal(nc_tls_add_name(sctx, "alt.example", cert("alt.pem"),
                                     cert("alt.key"), why, sizeof(why)), 0);
    struct pair p;
    pair_start(&p, sctx, client_ctx(NULL), "alt.example");
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_non_null(strstr(p.cli.info.peer_subject, "alt.example"));
    assert_string_equal(p.cli.info.server_name, "alt.example");
    assert_true(run_until(p.loop, side_opened, &p.srv, 3000));
    assert_string_equal(p.srv.info.server_name, "alt.example");
    nc_conn_close(p.cli.c);
    assert_true(run_until(p.loop, both_closed, &p, 3000));
    pair_end(&p);
}

/* A full handshake with p's server (a client context of its own, so
 * that no session is resumed), with SNI name or none: the issuer of the
 * certificate it was shown. */
static void issuer_seen(struct pair *p, const char *server_name,
                        char *issuer, size_t len)
{
    nc_tls_options off = { .verify_peer_off = true };
    struct side s = { 0 };
    nc_connect_options co = { .tls = client_ctx(&off),
                              .server_name = server_name };
    assert_int_equal(nc_connect(p->loop, p->spec, &co, &side_cbs, &s, NULL),
                     0);
    assert_true(run_until(p->loop, side_opened, &s, 3000));
    assert_false(s.info.resumed);
    snprintf(issuer, len, "%s", s.info.peer_issuer);
    nc_conn_close(s.c);
    assert_true(run_until(p->loop, side_closed, &s, 3000));
    nc_tls_ctx_free(co.tls);
    free(s.in);
}

/* nc_tls_set_cert: handshakes that start afterwards, with SNI or without,
 * see the new certificate; an open connection keeps its own and goes on;
 * SNI certificates stay; a pair that does not match changes nothing. */
static void set_cert_applies_to_new_handshakes_only(void **state)
{
    (void)state;
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    nc_tls_options off = { .verify_peer_off = true };
    char why[256], issuer[256];
    assert_int_equal(nc_tls_add_name(sctx, "alt.example", cert("alt.pem"),
                                     cert("alt.key"), why, sizeof(why)), 0);
    struct pair p;
    pair_start(&p, sctx, client_ctx(&off), NULL);
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_string_equal(p.cli.info.peer_issuer, "CN = libnetcore test CA");

    assert_int_equal(nc_tls_set_cert(sctx, cert("server.pem"),
                                     cert("alt.key"), why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "does not match"));
    issuer_seen(&p, "localhost", issuer, sizeof(issuer));
    assert_string_equal(issuer, "CN = libnetcore test CA");

    assert_int_equal(nc_tls_set_cert(sctx, cert("untrusted.pem"),
                                     cert("untrusted.key"), why,
                                     sizeof(why)), 0);
    issuer_seen(&p, "localhost", issuer, sizeof(issuer));
    assert_string_equal(issuer, "CN = someone else's CA");
    issuer_seen(&p, NULL, issuer, sizeof(issuer));        /* no SNI */
    assert_string_equal(issuer, "CN = someone else's CA");
    issuer_seen(&p, "alt.example", issuer, sizeof(issuer));
    assert_string_equal(issuer, "CN = libnetcore test CA");
    /* Replaced again: the one before is let go, this one is used. */
    assert_int_equal(nc_tls_set_cert(sctx, cert("server.pem"),
                                     cert("server.key"), NULL, 0), 0);
    issuer_seen(&p, NULL, issuer, sizeof(issuer));
    assert_string_equal(issuer, "CN = libnetcore test CA");

    /* The first connection still talks, with what it was shown. */
    assert_int_equal(nc_conn_write(p.cli.c, "hello, tls!", 11), 0);
    assert_true(run_until(p.loop, echoed, &p, 3000));
    assert_string_equal(p.cli.info.peer_issuer, "CN = libnetcore test CA");

    assert_int_equal(nc_tls_set_cert(p.cctx, cert("server.pem"),
                                     cert("server.key"), why, sizeof(why)),
                     -EINVAL);
    assert_int_equal(nc_tls_set_cert(NULL, cert("server.pem"),
                                     cert("server.key"), NULL, 0), -EINVAL);
    assert_int_equal(nc_tls_set_cert(sctx, "/nonexistent.pem",
                                     cert("server.key"), NULL, 0), -ENOENT);
    nc_conn_close(p.cli.c);
    assert_true(run_until(p.loop, side_closed, &p.cli, 3000));
    pair_end(&p);
}

static void alpn_agrees_on_a_protocol(void **state)
{
    (void)state;
    nc_tls_options so = { .alpn = "h2,http/1.1" };
    nc_tls_options co = { .alpn = "http/1.1" };
    struct pair p;
    pair_start(&p, server_ctx("server.pem", "server.key", &so),
               client_ctx(&co), NULL);
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_true(run_until(p.loop, side_opened, &p.srv, 3000));
    assert_string_equal(p.cli.info.alpn, "http/1.1");
    assert_string_equal(p.srv.info.alpn, "http/1.1");
    nc_conn_close(p.cli.c);
    assert_true(run_until(p.loop, both_closed, &p, 3000));
    pair_end(&p);
}

static void client_certificate_required(void **state)
{
    (void)state;
    nc_tls_options so = { .require_peer_cert = true };
    so.ca_file = cert("ca.pem");
    /* Without one: refused. */
    struct pair p;
    pair_start(&p, server_ctx("server.pem", "server.key", &so),
               client_ctx(NULL), NULL);
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.opens, 0);
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_int_equal(p.srv.err, -NC_ETLS_NO_CERT);
    assert_true(run_until(p.loop, side_closed, &p.cli, 3000));
    assert_int_equal(p.cli.reason, NC_CLOSE_TLS);
    pair_end(&p);
    /* With one: the server knows who it is. */
    nc_tls_options co = { 0 };
    co.cert_file = cert("client.pem");
    co.key_file = cert("client.key");
    pair_start(&p, server_ctx("server.pem", "server.key", &so),
               client_ctx(&co), NULL);
    assert_true(run_until(p.loop, side_opened, &p.srv, 3000));
    assert_true(p.srv.info.peer_verified);
    assert_non_null(strstr(p.srv.info.peer_subject, "CN = client"));
    nc_conn_close(p.srv.c);
    assert_true(run_until(p.loop, both_closed, &p, 3000));
    pair_end(&p);
}

/* A second connection with the same client context resumes. */
static size_t sink(nc_conn *c, const void *d, size_t n, void *ud)
{
    (void)c;
    (void)d;
    (void)ud;
    return n;
}

static void second_connection_resumes(void **state)
{
    (void)state;
    struct pair p;
    pair_start(&p, server_ctx("server.pem", "server.key", NULL),
               client_ctx(NULL), NULL);
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_false(p.cli.info.resumed);
    /* TLS 1.3 tickets come after the handshake: exchange a little. */
    assert_int_equal(nc_conn_write(p.cli.c, "ping", 4), 0);
    assert_true(run_until(p.loop, echoed, &p, 3000) || p.cli.in_len == 4);
    struct side again = { 0 };
    nc_connect_options co = { .tls = p.cctx };
    assert_int_equal(nc_connect(p.loop, p.spec, &co, &side_cbs, &again,
                                NULL), 0);
    assert_true(run_until(p.loop, side_opened, &again, 3000));
    assert_true(again.info.resumed);
    nc_conn_close(again.c);
    nc_conn_close(p.cli.c);
    assert_true(run_until(p.loop, side_closed, &again, 3000));
    (void)sink;
    pair_end(&p);
    free(again.in);
}

/* ---- the end: close_notify or a truncation -------------------------------- */

/* The server ends TCP without TLS's close_notify (as if it crashed): the
 * client is told the end may be missing. */
static size_t cut_tcp(nc_conn *c, const void *d, size_t n, void *ud)
{
    (void)d;
    (void)ud;
    shutdown(nc_conn_fd(c), SHUT_WR);
    return n;
}

static void missing_close_notify_is_a_truncation(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    nc_tls_ctx *cctx = client_ctx(NULL);
    nc_conn_callbacks cutter = { .on_data = cut_tcp };
    nc_listener_options lo = { .tls = sctx };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &lo, &cutter, NULL, &l),
                     0);
    nc_addr a = listener_addr0(l);
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&a, spec, sizeof(spec));
    struct side cli = { 0 };
    nc_connect_options co = { .tls = cctx };
    assert_int_equal(nc_connect(loop, spec, &co, &side_cbs, &cli, NULL), 0);
    assert_true(run_until(loop, side_opened, &cli, 3000));
    assert_int_equal(nc_conn_write(cli.c, "bye", 3), 0);
    assert_true(run_until(loop, side_closed, &cli, 3000));
    assert_int_equal(cli.reason, NC_CLOSE_PEER);
    assert_int_equal(cli.err, -NC_ETLS_TRUNCATED);
    nc_loop_free(loop);
    nc_tls_ctx_free(sctx);
    nc_tls_ctx_free(cctx);
    free(cli.in);
}

/* ---- the end of stream waits behind kept plain text ---------------------- */

static void open_paused(nc_conn *c, void *ud)
{
    side_open(c, ud);
    nc_conn_read_stop(c);
}

static const nc_conn_callbacks paused_cbs = {
    .on_open = open_paused, .on_data = side_data, .on_close = side_close
};

static bool queue_empty(void *arg)
{
    struct side *s = arg;
    return s->c && nc_conn_queued(s->c) == 0;
}

/* A server whose accepted connections start with reading paused, and a
 * client connected to it; both open. */
static void paused_pair(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    p->sctx = server_ctx("server.pem", "server.key", NULL);
    p->cctx = client_ctx(NULL);
    assert_int_equal(nc_loop_new(&p->loop), 0);
    nc_listener_options lo = { .tls = p->sctx };
    assert_int_equal(nc_listen(p->loop, "127.0.0.1:0", &lo, &paused_cbs,
                               &p->srv, &p->l), 0);
    nc_addr a = listener_addr0(p->l);
    nc_addr_format(&a, p->spec, sizeof(p->spec));
    nc_connect_options co = { .tls = p->cctx };
    assert_int_equal(nc_connect(p->loop, p->spec, &co, &side_cbs, &p->cli,
                                NULL), 0);
    assert_true(run_until(p->loop, side_opened, &p->cli, 3000));
    assert_true(run_until(p->loop, side_opened, &p->srv, 3000));
}

/* Three records and the close_notify arrive in one read; on_data pauses
 * reading after the first. The plain text of the other two is kept, not
 * dropped by the close_notify behind it: it comes when reading resumes,
 * then the clean end. */
static void close_notify_waits_behind_kept_plain_text(void **state)
{
    (void)state;
    enum { N = 40000 };
    struct pair p;
    paused_pair(&p);
    p.srv.pause_once = true;
    char *src = malloc(N);
    assert_non_null(src);
    for (size_t i = 0; i < N; i++)
        src[i] = (char)('a' + i % 23);
    assert_int_equal(nc_conn_write(p.cli.c, src, N), 0);
    assert_int_equal(nc_conn_shutdown(p.cli.c), 0);
    assert_true(run_until(p.loop, queue_empty, &p.cli, 3000));
    /* Everything, close_notify and FIN included, is in the server's
     * socket before it reads anything. */
    assert_true(wait_events(nc_conn_fd(p.srv.c), POLLRDHUP, 3000));
    nc_conn_read_start(p.srv.c);
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000) ||
                p.srv.in_len > 0);
    if (p.srv.closes == 0) {
        /* Paused after the first record: resume for the rest. */
        nc_conn_read_start(p.srv.c);
        assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    }
    assert_int_equal(p.srv.in_len, N);
    assert_memory_equal(p.srv.in, src, N);
    assert_int_equal(p.srv.reason, NC_CLOSE_PEER);
    assert_int_equal(p.srv.err, 0);
    free(src);
    pair_end(&p);
}

/* The server shut its side down and paused reading; the peer then ends
 * TCP without close_notify. The hang-up (both directions closed) waits
 * for reading to resume, and the end is reported as a truncation. */
static void truncation_after_a_hangup_is_still_a_truncation(void **state)
{
    (void)state;
    struct pair p;
    paused_pair(&p);
    assert_int_equal(nc_conn_shutdown(p.srv.c), 0);
    assert_true(wait_events(nc_conn_fd(p.cli.c), POLLRDHUP, 3000));
    assert_int_equal(shutdown(nc_conn_fd(p.cli.c), SHUT_WR), 0);
    assert_true(wait_events(nc_conn_fd(p.srv.c), POLLRDHUP, 3000));
    /* The hang-up is seen; nothing may close the connection before
     * reading resumes. */
    run_until(p.loop, side_closed, &p.srv, 200);
    assert_int_equal(p.srv.closes, 0);
    nc_conn_read_start(p.srv.c);
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.reason, NC_CLOSE_PEER);
    assert_int_equal(p.srv.err, -NC_ETLS_TRUNCATED);
    pair_end(&p);
}

/* The peer reset the connection; nc_conn_shutdown's close_notify cannot
 * be sent, which closes the connection: the call says so, instead of
 * returning 0 for a shutdown that will never happen. */
static void shutdown_after_a_failed_close_notify_fails(void **state)
{
    (void)state;
    struct pair p;
    paused_pair(&p);
    nc_conn_abort(p.cli.c);
    assert_true(wait_events(nc_conn_fd(p.srv.c), POLLERR | POLLHUP, 3000));
    int rc = nc_conn_shutdown(p.srv.c);
    assert_true(rc == -ECONNRESET || rc == -EPIPE);
    assert_true(run_until(p.loop, side_closed, &p.srv, 3000));
    assert_int_equal(p.srv.closes, 1);
    assert_int_equal(p.srv.reason, NC_CLOSE_RESET);
    assert_int_equal(p.srv.err, rc);
    pair_end(&p);
}

/* ---- full-duplex half-close ---------------------------------------------- */

static bool side_ended(void *arg)
{
    struct side *s = arg;
    return s->c && nc_conn_eof(s->c);
}

/* Both sides with half_close. The client sends its request and its
 * close_notify; the server, its direction ended, answers later and then
 * ends its own: each side reads the other's bytes whole and closes with
 * a clean NC_CLOSE_PEER. */
static void close_notify_ends_one_direction_with_half_close(void **state)
{
    (void)state;
    struct pair p;
    memset(&p, 0, sizeof(p));
    p.sctx = server_ctx("server.pem", "server.key", NULL);
    p.cctx = client_ctx(NULL);
    assert_int_equal(nc_loop_new(&p.loop), 0);
    nc_listener_options lo = { .tls = p.sctx,
                               .conn = { .half_close = true } };
    assert_int_equal(nc_listen(p.loop, "127.0.0.1:0", &lo, &side_cbs,
                               &p.srv, &p.l), 0);
    nc_addr a = listener_addr0(p.l);
    nc_addr_format(&a, p.spec, sizeof(p.spec));
    nc_connect_options co = { .tls = p.cctx,
                              .conn = { .half_close = true } };
    assert_int_equal(nc_connect(p.loop, p.spec, &co, &side_cbs, &p.cli,
                                NULL), 0);
    assert_true(run_until(p.loop, side_opened, &p.cli, 3000));
    assert_true(run_until(p.loop, side_opened, &p.srv, 3000));
    /* TLS bytes cannot be moved undecrypted. */
    assert_int_equal(nc_conn_splice(p.cli.c, p.srv.c), -EOPNOTSUPP);
    assert_int_equal(nc_conn_write(p.cli.c, "request", 7), 0);
    assert_int_equal(nc_conn_shutdown(p.cli.c), 0);
    assert_true(run_until(p.loop, side_ended, &p.srv, 3000));
    assert_int_equal(p.srv.in_len, 7);
    assert_memory_equal(p.srv.in, "request", 7);
    run_until(p.loop, side_closed, &p.srv, 100);
    assert_int_equal(p.srv.closes, 0);
    assert_int_equal(nc_conn_write(p.srv.c, "late reply", 10), 0);
    assert_int_equal(nc_conn_shutdown(p.srv.c), 0);
    assert_true(run_until(p.loop, both_closed, &p, 3000));
    assert_int_equal(p.cli.in_len, 10);
    assert_memory_equal(p.cli.in, "late reply", 10);
    assert_int_equal(p.srv.reason, NC_CLOSE_PEER);
    assert_int_equal(p.srv.err, 0);
    assert_int_equal(p.cli.reason, NC_CLOSE_PEER);
    assert_int_equal(p.cli.err, 0);
    pair_end(&p);
}

/* ---- a TLS close waits for the peer's close_notify ----------------------- */

static size_t reply_and_close(nc_conn *c, const void *d, size_t n, void *ud)
{
    (void)d;
    (void)ud;
    char *r = malloc(200000);
    assert_non_null(r);
    memset(r, 'r', 200000);
    assert_int_equal(nc_conn_write(c, r, 200000), 0);
    free(r);
    nc_conn_close(c);
    return n;
}

static bool some_arrived(void *arg)
{
    return ((struct side *)arg)->in_len > 0;
}

/* The server answers 200 KB and closes; the kernel's buffers take all of
 * it at once, so the server's side is done before the client has read
 * much. The client then ends its own side (close_notify, FIN) and only
 * afterwards reads the rest: the server, having sent its close_notify,
 * waits for the peer's instead of meeting it with a reset that would
 * destroy what the client has not read yet. */
static void a_tls_close_waits_for_the_peers_close_notify(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    nc_tls_ctx *cctx = client_ctx(NULL);
    nc_conn_callbacks srv_cbs = { .on_data = reply_and_close };
    nc_listener_options lo = { .tls = sctx };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &lo, &srv_cbs, NULL, &l),
                     0);
    nc_addr a = listener_addr0(l);
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&a, spec, sizeof(spec));
    struct side cli = { .pause_once = true };
    nc_connect_options co = { .tls = cctx, .conn = { .half_close = true } };
    assert_int_equal(nc_connect(loop, spec, &co, &side_cbs, &cli, NULL), 0);
    assert_true(run_until(loop, side_opened, &cli, 3000));
    assert_int_equal(nc_conn_write(cli.c, "go", 2), 0);
    assert_true(run_until(loop, some_arrived, &cli, 3000));
    run_until(loop, side_closed, &cli, 100);    /* the server closes */
    assert_int_equal(nc_conn_shutdown(cli.c), 0);
    run_until(loop, side_closed, &cli, 100);
    nc_conn_read_start(cli.c);
    assert_true(run_until(loop, side_closed, &cli, 3000));
    assert_int_equal(cli.in_len, 200000);
    assert_int_equal(cli.reason, NC_CLOSE_PEER);
    assert_int_equal(cli.err, 0);
    nc_loop_free(loop);
    nc_tls_ctx_free(sctx);
    nc_tls_ctx_free(cctx);
    free(cli.in);
}

/* ---- a peer of many small records ---------------------------------------- */

struct counted {
    struct side s;
    int calls;
};

static size_t count_and_echo(nc_conn *c, const void *d, size_t n, void *ud)
{
    struct counted *k = ud;
    k->calls++;
    return side_data(c, d, n, &k->s);
}

static void counted_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    side_close(c, r, err, &((struct counted *)ud)->s);
}

static bool echoed_20000(void *arg)
{
    return ((struct side *)arg)->in_len >= 20000;
}

/* 20,000 records of one byte each: the server's on_data gets their plain
 * text gathered (not a call per record), and its echo from inside on_data
 * (a write between two reads of OpenSSL's) does not make the next read
 * look like a truncation. */
static void many_tiny_records_are_gathered_and_echoed(void **state)
{
    (void)state;
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    nc_tls_ctx *cctx = client_ctx(NULL);
    struct counted srv = { .s = { .echo = true } };
    nc_conn_callbacks srv_cbs = { .on_data = count_and_echo,
                                  .on_close = counted_close };
    nc_listener_options lo = { .tls = sctx };
    nc_listener *l;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &lo, &srv_cbs, &srv, &l),
                     0);
    nc_addr a = listener_addr0(l);
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(&a, spec, sizeof(spec));
    struct side cli = { 0 };
    nc_connect_options co = { .tls = cctx };
    assert_int_equal(nc_connect(loop, spec, &co, &side_cbs, &cli, NULL), 0);
    assert_true(run_until(loop, side_opened, &cli, 3000));
    for (int i = 0; i < 20000; i++)
        assert_int_equal(nc_conn_write(cli.c, "x", 1), 0);
    assert_true(run_until(loop, echoed_20000, &cli, 10000));
    assert_int_equal(srv.s.closes, 0);
    assert_int_equal(srv.s.in_len, 20000);
    assert_true(srv.calls < 200);
    nc_loop_free(loop);
    nc_tls_ctx_free(sctx);
    nc_tls_ctx_free(cctx);
    free(cli.in);
    free(srv.s.in);
}

/* ---- large transfers -------------------------------------------------------- */

struct bulk {
    struct pair p;
    size_t size;
    char *src;
    size_t sent;
};

static bool bulk_step(void *arg)
{
    struct bulk *b = arg;
    /* Send in pieces while the queue is under the high-water mark (64
     * KiB): above it the client would stop reading, and with the server
     * stopped too (its echo queued) neither side would move. */
    while (b->p.cli.c && b->sent < b->size &&
           nc_conn_queued(b->p.cli.c) < (32u << 10)) {
        size_t n = b->size - b->sent < 30000 ? b->size - b->sent : 30000;
        assert_int_equal(nc_conn_write(b->p.cli.c, b->src + b->sent, n), 0);
        b->sent += n;
    }
    return b->p.cli.in_len == b->size;
}

/* 16 MiB each way through an echo: every byte back, in order. */
static void large_transfer_both_ways(void **state)
{
    (void)state;
    struct bulk *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->size = under_valgrind() ? (1u << 20) : (16u << 20);
    b->src = malloc(b->size);
    assert_non_null(b->src);
    for (size_t i = 0; i < b->size; i++)
        b->src[i] = (char)(i * 7 + i / 4099);
    pair_start(&b->p, server_ctx("server.pem", "server.key", NULL),
               client_ctx(NULL), NULL);
    assert_true(run_until(b->p.loop, side_opened, &b->p.cli, 3000));
    assert_true(run_until(b->p.loop, bulk_step, b, 60000));
    assert_memory_equal(b->p.cli.in, b->src, b->size);
    assert_int_equal(b->p.srv.in_len, b->size);
    nc_conn_close(b->p.cli.c);
    assert_true(run_until(b->p.loop, both_closed, &b->p, 3000));
    pair_end(&b->p);
    free(b->src);
    free(b);
}

/* ---- another implementation: openssl s_client ---------------------------- */

/* An openssl s_client talking to our server: its stdin is a pipe we
 * write, its stdout a pipe the loop watches. */
struct sclient {
    pid_t pid;
    int in, out;            /* our ends */
    char text[65536];       /* what it printed */
    size_t len;
    bool eof;
    nc_watch *w;
};

static void sclient_output(nc_watch *w, int fd, unsigned events, void *ud)
{
    (void)events;
    struct sclient *s = ud;
    ssize_t n = read(fd, s->text + s->len, sizeof(s->text) - 1 - s->len);
    if (n > 0) {
        s->len += (size_t)n;
        s->text[s->len] = '\0';
    } else if (n == 0 || s->len == sizeof(s->text) - 1) {
        s->eof = true;
        nc_watch_close(w);
        s->w = NULL;
    }
}

/* Starts s_client against a (TLS 1.2, so that it may ask to renegotiate),
 * offering the TLS 1.2 suites of cipher (NULL: its defaults). */
static void sclient_start(struct sclient *s, nc_loop *loop, const nc_addr *a,
                          const char *cipher)
{
    memset(s, 0, sizeof(*s));
    char spec[NC_ADDRSTRLEN];
    nc_addr_format(a, spec, sizeof(spec));
    int to[2], from[2];
    assert_int_equal(pipe(to), 0);
    assert_int_equal(pipe(from), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        dup2(from[1], 2);
        close(to[0]); close(to[1]); close(from[0]); close(from[1]);
        execlp("openssl", "openssl", "s_client", "-connect", spec,
               "-CAfile", cert("ca.pem"), "-tls1_2", "-no_ign_eof",
               cipher ? "-cipher" : (char *)NULL, cipher, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    s->in = to[1];
    s->out = from[0];
    assert_int_equal(nc_watch_start(loop, s->out, NC_READABLE, sclient_output,
                                    s, &s->w), 0);
}

static bool sclient_printed(void *arg)
{
    struct sclient *s = arg;
    return s->eof || strstr(s->text, "echo-me-please") != NULL;
}

static bool sclient_done(void *arg)
{
    return ((struct sclient *)arg)->eof;
}

static void sclient_end(struct sclient *s)
{
    if (s->w)
        nc_watch_close(s->w);
    if (s->in >= 0)
        close(s->in);
    close(s->out);
    int status = 0;
    assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
}

/* Data both ways with s_client, then it closes properly (close_notify
 * when its input ends): the server sees an orderly close, not a
 * truncation. */
static void openssl_s_client_echoes_and_closes_cleanly(void **state)
{
    (void)state;
    struct pair p;
    nc_addr a = server_only(&p, server_ctx("server.pem", "server.key", NULL));
    p.srv.echo = true;
    struct sclient s;
    sclient_start(&s, p.loop, &a, NULL);
    assert_true(run_until(p.loop, side_opened, &p.srv, 10000));
    assert_int_equal(write(s.in, "echo-me-please\n", 15), 15);
    assert_true(run_until(p.loop, sclient_printed, &s, 10000));
    assert_false(s.eof);
    assert_int_equal(p.srv.in_len, 15);
    assert_string_equal(p.srv.info.protocol, "TLSv1.2");
    close(s.in);
    s.in = -1;
    assert_true(run_until(p.loop, side_closed, &p.srv, 10000));
    assert_int_equal(p.srv.reason, NC_CLOSE_PEER);
    assert_int_equal(p.srv.err, 0);
    assert_true(run_until(p.loop, sclient_done, &s, 10000));
    sclient_end(&s);
    pair_end(&p);
}

/* s_client's "R" asks to renegotiate: refused, and reported as that. */
static void renegotiation_is_refused_and_named(void **state)
{
    (void)state;
    struct pair p;
    nc_addr a = server_only(&p, server_ctx("server.pem", "server.key", NULL));
    p.srv.echo = true;
    struct sclient s;
    sclient_start(&s, p.loop, &a, NULL);
    assert_true(run_until(p.loop, side_opened, &p.srv, 10000));
    assert_int_equal(write(s.in, "echo-me-please\n", 15), 15);
    assert_true(run_until(p.loop, sclient_printed, &s, 10000));
    assert_int_equal(write(s.in, "R\n", 2), 2);
    assert_true(run_until(p.loop, side_closed, &p.srv, 10000));
    assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
    assert_int_equal(p.srv.err, -NC_ETLS_RENEGOTIATION);
    assert_non_null(strstr(nc_explain(NC_OP_READ, p.srv.err),
                           "renegotiate"));
    assert_true(run_until(p.loop, sclient_done, &s, 10000));
    sclient_end(&s);
    pair_end(&p);
}

/* One s_client handshake offering only cipher: the suite the server
 * chose ("" when it refused them all). */
static void tls12_handshake(const char *cipher, char *chosen, size_t len)
{
    struct pair p;
    nc_addr a = server_only(&p, server_ctx("server.pem", "server.key", NULL));
    struct sclient s;
    sclient_start(&s, p.loop, &a, cipher);
    assert_true(run_until(p.loop, side_settled, &p.srv, 10000));
    snprintf(chosen, len, "%s", p.srv.opens > 0 ? p.srv.info.cipher : "");
    if (p.srv.opens == 0) {
        assert_int_equal(p.srv.reason, NC_CLOSE_TLS);
        assert_true(run_until(p.loop, sclient_done, &s, 10000));
        assert_non_null(strstr(s.text, "handshake failure"));
    }
    close(s.in);            /* s_client ends at the end of its input */
    s.in = -1;
    assert_true(run_until(p.loop, sclient_done, &s, 10000));
    sclient_end(&s);
    pair_end(&p);
}

/* On TLS 1.2 a server offers only forward-secret AEAD suites (ECDHE with
 * AES-GCM or ChaCha20-Poly1305; no CBC: LUCKY13), and picks by its own
 * order, not the client's. */
static void tls12_offers_only_aead_suites_in_the_servers_order(void **state)
{
    (void)state;
    static const char *const cbc[] = {
        "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
    };
    char chosen[64];
    for (size_t i = 0; i < sizeof(cbc) / sizeof(cbc[0]); i++) {
        tls12_handshake(cbc[i], chosen, sizeof(chosen));
        assert_string_equal(chosen, "");
    }
    tls12_handshake("ECDHE-ECDSA-AES256-GCM-SHA384", chosen, sizeof(chosen));
    assert_string_equal(chosen, "ECDHE-ECDSA-AES256-GCM-SHA384");
    tls12_handshake("ECDHE-ECDSA-CHACHA20-POLY1305", chosen, sizeof(chosen));
    assert_string_equal(chosen, "ECDHE-ECDSA-CHACHA20-POLY1305");
    /* The client prefers CBC, then AES-256: the server's first choice
     * among what it offers wins. */
    tls12_handshake("ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:"
                    "ECDHE-ECDSA-AES128-GCM-SHA256", chosen, sizeof(chosen));
    assert_string_equal(chosen, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

/* ---- contexts: bad files, and sharing across threads ---------------------- */

static void bad_files_are_named(void **state)
{
    (void)state;
    char why[256];
    nc_tls_ctx *ctx = NULL;
    nc_tls_options o = { .cert_file = "/nonexistent/server.pem",
                         .key_file = cert("server.key") };
    assert_int_equal(nc_tls_server_new(&o, &ctx, why, sizeof(why)), -ENOENT);
    assert_non_null(strstr(why, "/nonexistent/server.pem"));
    assert_null(ctx);
    o.cert_file = cert("server.pem");
    o.key_file = cert("alt.key");
    assert_int_equal(nc_tls_server_new(&o, &ctx, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "does not match"));
    o.cert_file = cert("ca.srl");
    o.key_file = cert("server.key");
    assert_int_equal(nc_tls_server_new(&o, &ctx, why, sizeof(why)),
                     -EBADMSG);
    o = (nc_tls_options){ .cert_file = cert("server.pem") };
    assert_int_equal(nc_tls_server_new(&o, &ctx, why, sizeof(why)), -EINVAL);
    o = (nc_tls_options){ .alpn = "h2,,x" };
    assert_int_equal(nc_tls_client_new(&o, &ctx, why, sizeof(why)), -EINVAL);
    /* A server context cannot serve a client, nor the reverse. */
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_connect_options co = { .tls = sctx, .errbuf = why,
                              .errbuf_len = sizeof(why) };
    assert_int_equal(nc_connect(loop, "127.0.0.1:9", &co, &side_cbs, NULL,
                                NULL), -EINVAL);
    assert_string_equal(why, "opts->tls is a server context: a client needs "
                             "one from nc_tls_client_new()");
    nc_tls_ctx *cctx = client_ctx(NULL);
    nc_listener_options lo = { .tls = cctx, .errbuf = why,
                               .errbuf_len = sizeof(why) };
    nc_listener *l = NULL;
    assert_int_equal(nc_listen(loop, "127.0.0.1:0", &lo, &side_cbs, NULL, &l),
                     -EINVAL);
    assert_string_equal(why, "opts->tls is a client context: a listener "
                             "needs one from nc_tls_server_new()");
    nc_loop_free(loop);
    nc_tls_ctx_free(sctx);
    nc_tls_ctx_free(cctx);
}

/* One server and one client context, used by two loops in two threads at
 * once (run under ThreadSanitizer by make tsan). */
struct worker {
    nc_tls_ctx *sctx, *cctx;
    int rounds_ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 5; i++) {
        struct pair p;
        memset(&p, 0, sizeof(p));
        p.srv.echo = true;
        if (nc_loop_new(&p.loop) < 0)
            return NULL;
        nc_listener_options lo = { .tls = w->sctx };
        if (nc_listen(p.loop, "127.0.0.1:0", &lo, &side_cbs, &p.srv,
                      &p.l) < 0)
            return NULL;
        nc_addr a = listener_addr0(p.l);
        nc_addr_format(&a, p.spec, sizeof(p.spec));
        nc_connect_options co = { .tls = w->cctx };
        if (nc_connect(p.loop, p.spec, &co, &side_cbs, &p.cli, NULL) < 0)
            return NULL;
        if (run_until(p.loop, side_opened, &p.cli, 5000) &&
            nc_conn_write(p.cli.c, "hello, tls!", 11) == 0 &&
            run_until(p.loop, echoed, &p, 5000))
            w->rounds_ok++;
        nc_loop_free(p.loop);
        free(p.srv.in);
        free(p.cli.in);
    }
    return NULL;
}

static void contexts_are_shared_across_threads(void **state)
{
    (void)state;
    nc_tls_ctx *sctx = server_ctx("server.pem", "server.key", NULL);
    nc_tls_ctx *cctx = client_ctx(NULL);
    struct worker w[2] = { { sctx, cctx, 0 }, { sctx, cctx, 0 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(w[0].rounds_ok, 5);
    assert_int_equal(w[1].rounds_ok, 5);
    nc_tls_ctx_free(sctx);
    nc_tls_ctx_free(cctx);
}

/* ---- setup --------------------------------------------------------------------- */

static int make_certs(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/nc-test-tls.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(certs, sizeof(certs), "%s", tmpl);
    const char *root = getenv("NC_SOURCE_DIR");
    char cmd[PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/tls-certs.sh' '%s'",
             root ? root : ".", certs);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_tls: cannot make certificates (%s)\n", cmd);
        return -1;
    }
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    nc_tls_ctx *probe = NULL;
    if (nc_tls_client_new(NULL, &probe, NULL, 0) == -ENOTSUP) {
        const char *ci = getenv("CI");
        printf("test_tls: this libnetcore was built without TLS "
               "(libssl-dev missing)%s\n",
               ci && strcmp(ci, "true") == 0 ? ": failing, CI needs TLS"
                                             : ": skipped");
        return ci && strcmp(ci, "true") == 0 ? 1 : 0;
    }
    nc_tls_ctx_free(probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_opens_then_data_flows_both_ways),
        cmocka_unit_test(writes_wait_for_the_handshake),
        cmocka_unit_test(expired_certificate_is_refused),
        cmocka_unit_test(unknown_ca_is_refused),
        cmocka_unit_test(wrong_name_is_refused),
        cmocka_unit_test(plain_http_to_a_tls_port_is_named),
        cmocka_unit_test(tls_client_to_a_plain_server_is_named),
        cmocka_unit_test(garbage_is_a_tls_failure),
        cmocka_unit_test(garbage_after_the_handshake_is_a_protocol_failure),
        cmocka_unit_test(silent_client_hits_the_handshake_timeout),
        cmocka_unit_test(sni_picks_the_certificate_by_name),
        cmocka_unit_test(set_cert_applies_to_new_handshakes_only),
        cmocka_unit_test(alpn_agrees_on_a_protocol),
        cmocka_unit_test(client_certificate_required),
        cmocka_unit_test(second_connection_resumes),
        cmocka_unit_test(missing_close_notify_is_a_truncation),
        cmocka_unit_test(close_notify_waits_behind_kept_plain_text),
        cmocka_unit_test(truncation_after_a_hangup_is_still_a_truncation),
        cmocka_unit_test(shutdown_after_a_failed_close_notify_fails),
        cmocka_unit_test(close_notify_ends_one_direction_with_half_close),
        cmocka_unit_test(a_tls_close_waits_for_the_peers_close_notify),
        cmocka_unit_test(many_tiny_records_are_gathered_and_echoed),
        cmocka_unit_test(large_transfer_both_ways),
        cmocka_unit_test(openssl_s_client_echoes_and_closes_cleanly),
        cmocka_unit_test(tls12_offers_only_aead_suites_in_the_servers_order),
        cmocka_unit_test(renegotiation_is_refused_and_named),
        cmocka_unit_test(bad_files_are_named),
        cmocka_unit_test(contexts_are_shared_across_threads),
    };
    return cmocka_run_group_tests_name("tls", tests, make_certs,
                                       remove_certs);
}
