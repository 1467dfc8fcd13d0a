/*
 * tls.c - TLS on one connection (see tls.h).
 *
 * OpenSSL reads and writes through a BIO of ours: reading takes from the
 * ciphertext the connection has just received (no copy), writing hands
 * ciphertext to the connection's send path (sent at once, or queued). The
 * BIO never blocks, so SSL_write always completes, and a write stays all
 * or nothing for the caller. Ciphertext OpenSSL has not taken when the
 * read is done (it reads a record at a time) is kept for the next read.
 * Plain text that arrives while the user has paused reading is buffered
 * like any unconsumed input, so OpenSSL never holds decrypted data back.
 */
#include "tls_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_MAX 16384     /* the largest record's plain text */

struct tls_conn {
    SSL *ssl;
    nc_tls_ctx *ctx;        /* a reference */
    const char *in;         /* ciphertext being fed to OpenSSL: the read */
    size_t in_len;          /* buffer, which it takes all of (it keeps a
                             * partial record in its own buffer) */
    char *key;              /* client: the name its sessions go under */
    int send_err;           /* why the last send of ciphertext failed */
    bool handshake_done;
    bool notify_sent;
    bool notify_received;
    bool refused_renegotiation; /* we sent a no_renegotiation alert */
    X509 *refused;          /* the peer's certificate, when verification
                               refused it (a reference) */
};

static struct tls_conn *tls_of(const nc_conn *c)
{
    return c->cold ? c->cold->tls : NULL;
}

/* ---- the BIO ----------------------------------------------------------------- */

static int bio_write(BIO *b, const char *data, int len)
{
    nc_conn *c = BIO_get_data(b);
    struct tls_conn *t = tls_of(c);
    BIO_clear_retry_flags(b);
    int rc = nc__conn_send_bytes(c, data, (size_t)len);
    if (rc < 0) {
        t->send_err = rc;
        return -1;
    }
    return len;
}

static int bio_read(BIO *b, char *out, int len)
{
    nc_conn *c = BIO_get_data(b);
    struct tls_conn *t = tls_of(c);
    BIO_clear_retry_flags(b);
    if (t->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = t->in_len < (size_t)len ? t->in_len : (size_t)len;
    memcpy(out, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    (void)b;
    return 1;
}

BIO_METHOD *nc__tls_bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "libnetcore connection");
    if (!m)
        return NULL;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
}

/* ---- failures ---------------------------------------------------------------- */

static int verify_failure(long v)
{
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return NC_ETLS_CERT_EXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
        return NC_ETLS_CERT_NAME;
    default:
        return NC_ETLS_CERT_UNTRUSTED;
    }
}

/* An alert the peer sent, by its code. */
static int alert_failure(int alert)
{
    switch (alert) {
    case SSL_AD_PROTOCOL_VERSION:
        return NC_ETLS_VERSION;
    case SSL_AD_CERTIFICATE_REQUIRED:
        return NC_ETLS_NO_CERT;
    case SSL_AD_NO_RENEGOTIATION:
        return NC_ETLS_RENEGOTIATION;
    default:
        return NC_ETLS_PEER_REJECTED;
    }
}

/* Which NC_ETLS_* failure OpenSSL's error queue describes (read after an
 * SSL call failed with SSL_ERROR_SSL or SSL_ERROR_SYSCALL); opened: the
 * handshake had finished (OpenSSL's own state says "in init" again once
 * a read failed). */
static int ssl_failure(SSL *ssl, bool opened)
{
    unsigned long e = ERR_peek_error();
    if (e == 0)
        return NC_ETLS_TRUNCATED;   /* SYSCALL with nothing queued: EOF */
    int reason = ERR_GET_REASON(e);
    if (reason >= SSL_AD_REASON_OFFSET)
        return alert_failure(reason - SSL_AD_REASON_OFFSET);
    switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return verify_failure(SSL_get_verify_result(ssl));
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
        /* A peer that finished a handshake speaks TLS: what follows is
         * broken TLS, not plain text. */
        return opened ? NC_ETLS_PROTOCOL : NC_ETLS_NOT_TLS;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
        return NC_ETLS_VERSION;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return NC_ETLS_NO_CERT;
    case SSL_R_NO_RENEGOTIATION:
        return NC_ETLS_RENEGOTIATION;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return NC_ETLS_TRUNCATED;
    default:
        return NC_ETLS_PROTOCOL;
    }
}

/* An SSL call failed with SSL_get_error() e (asked at once: the BIO's
 * retry flags it reads are the connection's, and any write clears them):
 * close c for what went wrong, unless it only waits for more input.
 * Returns true when c was closed. */
static bool failed_with(nc_conn *c, struct tls_conn *t, int e)
{
    if (e == SSL_ERROR_WANT_READ)
        return false;
    if (conn_state(c) == CS_CLOSED)
        return true;        /* the send path already closed it */
    int err;
    if (t->send_err)
        err = t->send_err;
    else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL)
        err = -ssl_failure(t->ssl, conn_state(c) != CS_HANDSHAKE);
    else
        err = -NC_ETLS_PROTOCOL;
    /* A peer that asked to renegotiate and was refused usually gives up
     * with an alert of its own; the cause is still the renegotiation. */
    if (t->refused_renegotiation && err == -NC_ETLS_PEER_REJECTED)
        err = -NC_ETLS_RENEGOTIATION;
    ERR_clear_error();
    nc__conn_teardown(c, err == -ENOMEM ? NC_CLOSE_ERROR : NC_CLOSE_TLS, err,
                      false);
    return true;
}

/* An SSL call returned r: failed_with() its error. */
static bool failed(nc_conn *c, struct tls_conn *t, int r)
{
    return failed_with(c, t, SSL_get_error(t->ssl, r));
}

/* ---- the handshake ------------------------------------------------------------ */

/* Whether text is an IP address literal (no SNI for those). */
static bool is_ip_literal(const char *text)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, text, buf) == 1 ||
           inet_pton(AF_INET6, text, buf) == 1;
}

/* The peer's address without its port, for checking and session keys. */
static int peer_ip(const nc_conn *c, char *buf, size_t len)
{
    nc_addr a;
    int rc = nc_conn_peer_addr(c, &a);
    if (rc < 0)
        return rc;
    const void *bytes = a.u.sa.sa_family == AF_INET6
                            ? (const void *)&a.u.in6.sin6_addr
                            : (const void *)&a.u.in4.sin_addr;
    if (!inet_ntop(a.u.sa.sa_family, bytes, buf, (socklen_t)len))
        return -EAFNOSUPPORT;
    return 0;
}

/* Client: what to verify, SNI, and a session to resume. */
static int client_setup(nc_conn *c, struct tls_conn *t, const char *name)
{
    char ip[INET6_ADDRSTRLEN];
    if (!name) {
        int rc = peer_ip(c, ip, sizeof(ip));
        if (rc < 0)
            return rc;
        name = ip;
    }
    t->key = strdup(name);
    if (!t->key)
        return -ENOMEM;
    bool literal = is_ip_literal(name);
    if (!literal && SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return -ENOMEM;
    if (t->ctx->verify) {
        X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
        if (literal ? X509_VERIFY_PARAM_set1_ip_asc(p, name) != 1
                    : SSL_set1_host(t->ssl, name) != 1)
            return -ENOMEM;
    }
    SSL_SESSION *s = nc__tls_session_get(t->ctx, t->key);
    if (s) {
        SSL_set_session(t->ssl, s);
        SSL_SESSION_free(s);
    }
    return 0;
}

int nc__tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
    nc_conn *c = SSL_get_app_data(ssl);
    struct tls_conn *t = tls_of(c);
    if (t && t->key)
        nc__tls_session_put(t->ctx, t->key, sess);
    return 0;   /* OpenSSL keeps its own reference */
}

int nc__tls_verify(int ok, X509_STORE_CTX *store)
{
    if (ok)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store,
                                          SSL_get_ex_data_X509_STORE_CTX_idx());
    nc_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    struct tls_conn *t = c ? tls_of(c) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    if (t && !t->refused && leaf && X509_up_ref(leaf) == 1)
        t->refused = leaf;
    return ok;
}

void nc__tls_info(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_WRITE_ALERT) || (ret & 0xff) != SSL_AD_NO_RENEGOTIATION)
        return;
    nc_conn *c = SSL_get_app_data(ssl);
    struct tls_conn *t = c ? tls_of(c) : NULL;
    if (t)
        t->refused_renegotiation = true;
}

/* Drive the handshake; on success the connection opens (on_open). */
static void handshake_step(nc_conn *c, struct tls_conn *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->handshake_done = true;
        nc__conn_tls_opened(c);
        return;
    }
    failed(c, t, r);
}

int nc__tls_start(nc_conn *c, nc_tls_ctx *ctx, const char *server_name)
{
    struct conn_cold *k = nc__conn_cold(c);
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (!k || !t) {
        free(t);
        return -ENOMEM;
    }
    t->ctx = ctx;
    nc__tls_ctx_ref(ctx);
    k->tls = t;
    c->flags |= CF_TLS;
    t->ssl = SSL_new(ctx->ssl);
    BIO *b = t->ssl ? BIO_new(ctx->bio) : NULL;
    if (!b)
        return -ENOMEM;
    BIO_set_data(b, c);
    SSL_set_bio(t->ssl, b, b);
    SSL_set_app_data(t->ssl, c);
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
        return 0;
    }
    SSL_set_connect_state(t->ssl);
    int rc = client_setup(c, t, server_name);
    if (rc < 0)
        return rc;
    handshake_step(c, t);     /* sends the ClientHello */
    return 0;
}

/* ---- reading ------------------------------------------------------------------- */

/* Decrypt everything OpenSSL can and hand it to the user. The plain text
 * of consecutive records is gathered before it is handed over: a peer
 * that sends many small records (a byte each) would otherwise cost an
 * on_data call, and a pass over any input the user keeps, per record. */
static void decrypt(nc_conn *c, struct tls_conn *t)
{
    char plain[PLAIN_MAX];
    size_t used = 0;
    while (conn_state(c) == CS_OPEN) {
        ERR_clear_error();
        int r = SSL_read(t->ssl, plain + used, (int)(sizeof(plain) - used));
        if (r > 0) {
            used += (size_t)r;
            if (used == sizeof(plain)) {
                nc__conn_input_plain(c, plain, used);
                used = 0;
            }
            continue;
        }
        /* Asked before on_data can write (which resets the BIO's
         * flags that SSL_get_error reads). */
        int e = SSL_get_error(t->ssl, r);
        if (used > 0) {
            nc__conn_input_plain(c, plain, used);
            used = 0;
            if (conn_state(c) != CS_OPEN)
                return;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* The peer's close_notify: an orderly end of stream. */
            t->notify_received = true;
            nc__conn_input_end(c, 0);
            return;
        }
        if (failed_with(c, t, e))
            return;
        break;
    }
}

void nc__tls_input(nc_conn *c, const char *data, size_t n)
{
    struct tls_conn *t = tls_of(c);
    t->in = data;
    t->in_len = n;
    if (!t->handshake_done)
        handshake_step(c, t);
    if (t->handshake_done && conn_state(c) != CS_CLOSED)
        decrypt(c, t);
    if (t->in_len > 0 && conn_state(c) == CS_CLOSING)
        c->flags |= CF_PEER_SENT;   /* records the close left unread */
    /* OpenSSL stops taking bytes before the end only once the connection
     * is no longer open (closed by a callback or by a failure): what is
     * left would be discarded anyway. */
    t->in = NULL;
    t->in_len = 0;
}

void nc__tls_input_end(nc_conn *c)
{
    struct tls_conn *t = tls_of(c);
    if (!t->handshake_done) {
        /* Closed in the middle of the handshake. */
        nc__conn_teardown(c, NC_CLOSE_TLS, -NC_ETLS_TRUNCATED, false);
        return;
    }
    nc__conn_input_end(c, t->notify_received ? 0 : -NC_ETLS_TRUNCATED);
}

/* ---- writing ------------------------------------------------------------------- */

/* Encrypt len bytes as records and send them. */
static int seal(nc_conn *c, struct tls_conn *t, const char *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : (int)len;
        ERR_clear_error();
        t->send_err = 0;
        int r = SSL_write(t->ssl, data, chunk);
        if (r <= 0) {
            int err = t->send_err;
            if (!failed(c, t, r) || !err)
                err = conn_state(c) == CS_CLOSED ? -EPIPE : -EIO;
            return err;
        }
        data += r;
        len -= (size_t)r;
    }
    return 0;
}

int nc__tls_write(nc_conn *c, const struct iovec *iov, int cnt, size_t total)
{
    struct tls_conn *t = tls_of(c);
    (void)total;
    /* Small buffers are gathered into records of up to 16 KiB, so that a
     * writev of many pieces does not cost a record (and 29 bytes) each. */
    char gather[PLAIN_MAX];
    size_t used = 0;
    for (int i = 0; i < cnt; i++) {
        const char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (len >= sizeof(gather)) {
            int rc = used ? seal(c, t, gather, used) : 0;
            used = 0;
            if (rc == 0)
                rc = seal(c, t, p, len);
            if (rc < 0)
                return rc;
            continue;
        }
        if (used + len > sizeof(gather)) {
            int rc = seal(c, t, gather, used);
            if (rc < 0)
                return rc;
            used = 0;
        }
        memcpy(gather + used, p, len);
        used += len;
    }
    return used ? seal(c, t, gather, used) : 0;
}

void nc__tls_close_notify(nc_conn *c)
{
    struct tls_conn *t = tls_of(c);
    if (!t || !t->handshake_done || t->notify_sent)
        return;
    t->notify_sent = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl);   /* queues close_notify; the peer's may follow */
    ERR_clear_error();
}

void nc__tls_free(nc_conn *c)
{
    struct tls_conn *t = tls_of(c);
    if (!t)
        return;
    SSL_free(t->ssl);
    X509_free(t->refused);
    nc__tls_ctx_unref(t->ctx);
    free(t->key);
    free(t);
    c->cold->tls = NULL;
}

/* ---- information ----------------------------------------------------------------- */

static void name_text(X509_NAME *n, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!n)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    int k = BIO_read(b, buf, (int)len - 1);
    buf[k > 0 ? k : 0] = '\0';
    BIO_free(b);
}

int nc_conn_tls_info(const nc_conn *c, nc_tls_info *out)
{
    if (!c || !out)
        return -EINVAL;
    const struct tls_conn *t = tls_of(c);
    if (!t)
        return -ENOTSUP;
    memset(out, 0, sizeof(*out));
    SSL *ssl = t->ssl;
    out->protocol = t->handshake_done ? SSL_get_version(ssl) : "";
    out->cipher = t->handshake_done ? SSL_get_cipher_name(ssl) : "";
    if (!out->cipher)
        out->cipher = "";
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len >= sizeof(out->alpn))
        alpn_len = sizeof(out->alpn) - 1;
    memcpy(out->alpn, alpn ? (const char *)alpn : "", alpn_len);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni)
        snprintf(out->server_name, sizeof(out->server_name), "%s", sni);
    out->resumed = SSL_session_reused(ssl) == 1;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    out->verify_result = SSL_get_verify_result(ssl);
    out->peer_verified = peer && t->ctx->verify &&
                         out->verify_result == X509_V_OK;
    if (!peer)
        peer = t->refused;
    if (peer) {
        name_text(X509_get_subject_name(peer), out->peer_subject,
                  sizeof(out->peer_subject));
        name_text(X509_get_issuer_name(peer), out->peer_issuer,
                  sizeof(out->peer_issuer));
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(peer), &tm) == 1)
            out->peer_not_after = (int64_t)timegm(&tm);
    }
    return 0;
}
