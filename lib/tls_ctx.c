/*
 * tls_ctx.c - TLS contexts: certificates and keys from PEM files, trust
 * (a CA file or the system's store), ALPN, SNI certificates, a server's
 * certificate replaced while it serves, and the client's cache of
 * sessions to resume. See tls_ctx.h.
 */
#include "tls_ctx.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* OpenSSL's first queued error, as text, for messages. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "no detail";
}

/* A file OpenSSL is about to read: its own errno if it cannot be opened,
 * which says more than OpenSSL's error queue. */
static int readable(const char *what, const char *path, char *errbuf,
                    size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        say(errbuf, errlen, "cannot read %s '%s': %s", what, path,
            nc_strerror(err));
        return err;
    }
    close(fd);
    return 0;
}

/* Load a certificate chain and its key into ssl. */
static int load_pair(SSL_CTX *ssl, const char *cert, const char *key,
                     char *errbuf, size_t errlen)
{
    int rc = readable("certificate file", cert, errbuf, errlen);
    if (rc == 0)
        rc = readable("key file", key, errbuf, errlen);
    if (rc < 0)
        return rc;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1) {
        say(errbuf, errlen, "'%s' holds no usable PEM certificate: %s", cert,
            ssl_reason());
        return -EBADMSG;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) ==
            X509_R_KEY_VALUES_MISMATCH) {
            say(errbuf, errlen, "the key in '%s' does not match the "
                "certificate in '%s'", key, cert);
            return -EINVAL;
        }
        say(errbuf, errlen, "'%s' holds no usable PEM private key: %s", key,
            ssl_reason());
        return -EBADMSG;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
        say(errbuf, errlen, "the key in '%s' does not match the certificate "
            "in '%s'", key, cert);
        return -EINVAL;
    }
    return 0;
}

/* "h2,http/1.1" in ALPN's wire format: each name preceded by its length. */
static int alpn_wire(const char *list, unsigned char **out, unsigned *outlen,
                     char *errbuf, size_t errlen)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    if (!w)
        return -ENOMEM;
    size_t len = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t k = end ? (size_t)(end - p) : strlen(p);
        if (k == 0 || k > 255) {
            free(w);
            say(errbuf, errlen, "malformed ALPN list '%s': empty or too long "
                "protocol name", list);
            return -EINVAL;
        }
        w[len++] = (unsigned char)k;
        memcpy(w + len, p, k);
        len += k;
        if (!end)
            break;
        p = end + 1;
    }
    *out = w;
    *outlen = (unsigned)len;
    return 0;
}

/* Server: pick our first protocol the client also offers. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    nc_tls_ctx *ctx = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ctx->alpn, ctx->alpn_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static bool name_matches(const char *pattern, const char *name)
{
    if (strncmp(pattern, "*.", 2) == 0) {
        const char *dot = strchr(name, '.');
        return dot && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

/* Server: switch to the certificate registered for the client's SNI,
 * else to the one nc_tls_set_cert() put in place of the context's own.
 * OpenSSL calls this for every ClientHello, with SNI or without. */
static int sni_select(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    nc_tls_ctx *ctx = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    for (size_t i = 0; name && i < ctx->nnames; i++) {
        if (name_matches(ctx->names[i].name, name)) {
            SSL_set_SSL_CTX(ssl, ctx->names[i].ssl);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    if (atomic_load_explicit(&ctx->cert_set, memory_order_acquire)) {
        pthread_mutex_lock(&ctx->cert_lock);
        SSL_set_SSL_CTX(ssl, ctx->cert);
        pthread_mutex_unlock(&ctx->cert_lock);
    }
    return SSL_TLSEXT_ERR_OK;
}

/* A server's TLS 1.2 suites, in its order of preference: forward secrecy
 * (ECDHE) and AEAD only, AES-GCM first (hardware) then ChaCha20-Poly1305;
 * no CBC, whose MAC-then-encrypt invites padding oracles (LUCKY13). TLS
 * 1.3's suites are all AEAD, and OpenSSL's defaults stay. */
#define SERVER_TLS12_SUITES \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Settings every SSL_CTX of ours shares. */
static SSL_CTX *ssl_ctx_new(bool server)
{
    SSL_CTX *s = SSL_CTX_new(server ? TLS_server_method()
                                    : TLS_client_method());
    if (!s)
        return NULL;
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    /* The server chooses, by its order; a client that puts ChaCha20
     * first (one without AES instructions, as phones) gets it. */
    if (server && (SSL_CTX_set_cipher_list(s, SERVER_TLS12_SUITES) != 1 ||
                   !SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE |
                                           SSL_OP_PRIORITIZE_CHACHA))) {
        SSL_CTX_free(s);
        return NULL;
    }
    /* Renegotiation is refused; buffers of idle connections are released
     * (an idle TLS connection holds no 16 KiB record buffers). */
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_info_callback(s, nc__tls_info);
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    return s;
}

static nc_tls_ctx *ctx_alloc(bool server, const nc_tls_options *o)
{
    nc_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    ctx->server = server;
    ctx->handshake_ms = o && o->handshake_timeout_ms ? o->handshake_timeout_ms
                                                     : 10000;
    atomic_init(&ctx->refs, 1);
    atomic_init(&ctx->cert_set, false);
    if (pthread_mutex_init(&ctx->cache_lock, NULL) != 0) {
        free(ctx);
        return NULL;
    }
    if (pthread_mutex_init(&ctx->cert_lock, NULL) != 0) {
        pthread_mutex_destroy(&ctx->cache_lock);
        free(ctx);
        return NULL;
    }
    ctx->ssl = ssl_ctx_new(server);
    ctx->bio = nc__tls_bio_method_new();
    if (!ctx->ssl || !ctx->bio) {
        nc__tls_ctx_unref(ctx);
        return NULL;
    }
    return ctx;
}

static int trust(nc_tls_ctx *ctx, const char *ca_file, char *errbuf,
                 size_t errlen)
{
    if (!ca_file) {
        if (SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
            say(errbuf, errlen, "cannot load the system's CA store: %s",
                ssl_reason());
            return -EBADMSG;
        }
        return 0;
    }
    int rc = readable("CA file", ca_file, errbuf, errlen);
    if (rc < 0)
        return rc;
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1) {
        say(errbuf, errlen, "'%s' holds no usable PEM certificate: %s",
            ca_file, ssl_reason());
        return -EBADMSG;
    }
    return 0;
}

static int finish(nc_tls_ctx *ctx, int rc, nc_tls_ctx **out)
{
    if (rc < 0) {
        nc__tls_ctx_unref(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int nc_tls_server_new(const nc_tls_options *o, nc_tls_ctx **out,
                      char *errbuf, size_t errlen)
{
    if (!o || !out) {
        say(errbuf, errlen, "no options or no result pointer");
        return -EINVAL;
    }
    if (!o->cert_file || !o->key_file) {
        say(errbuf, errlen, "a TLS server needs a certificate file and a "
            "key file");
        return -EINVAL;
    }
    if (o->require_peer_cert && !o->ca_file) {
        say(errbuf, errlen, "require_peer_cert needs a CA file to verify "
            "client certificates with");
        return -EINVAL;
    }
    nc_tls_ctx *ctx = ctx_alloc(true, o);
    if (!ctx)
        return -ENOMEM;
    int rc = load_pair(ctx->ssl, o->cert_file, o->key_file, errbuf, errlen);
    if (rc == 0 && o->require_peer_cert) {
        rc = trust(ctx, o->ca_file, errbuf, errlen);
        ctx->verify = true;
        SSL_CTX_set_verify(ctx->ssl,
                           SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           nc__tls_verify);
    }
    if (rc == 0 && o->alpn) {
        rc = alpn_wire(o->alpn, &ctx->alpn, &ctx->alpn_len, errbuf, errlen);
        if (rc == 0)
            SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
    }
    if (rc == 0) {
        SSL_CTX_set_tlsext_servername_callback(ctx->ssl, sni_select);
        SSL_CTX_set_tlsext_servername_arg(ctx->ssl, ctx);
    }
    return finish(ctx, rc, out);
}

int nc_tls_client_new(const nc_tls_options *o, nc_tls_ctx **out,
                      char *errbuf, size_t errlen)
{
    if (!out) {
        say(errbuf, errlen, "no result pointer");
        return -EINVAL;
    }
    nc_tls_options none = { 0 };
    if (!o)
        o = &none;
    if ((o->cert_file == NULL) != (o->key_file == NULL)) {
        say(errbuf, errlen, "a client certificate needs both a certificate "
            "file and a key file");
        return -EINVAL;
    }
    nc_tls_ctx *ctx = ctx_alloc(false, o);
    if (!ctx)
        return -ENOMEM;
    int rc = 0;
    if (o->cert_file)
        rc = load_pair(ctx->ssl, o->cert_file, o->key_file, errbuf, errlen);
    ctx->verify = !o->verify_peer_off;
    if (rc == 0 && ctx->verify) {
        rc = trust(ctx, o->ca_file, errbuf, errlen);
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, nc__tls_verify);
    }
    if (rc == 0 && o->alpn) {
        rc = alpn_wire(o->alpn, &ctx->alpn, &ctx->alpn_len, errbuf, errlen);
        if (rc == 0 && SSL_CTX_set_alpn_protos(ctx->ssl, ctx->alpn,
                                               ctx->alpn_len) != 0)
            rc = -ENOMEM;
    }
    if (rc == 0) {
        SSL_CTX_set_session_cache_mode(ctx->ssl,
                                       SSL_SESS_CACHE_CLIENT |
                                       SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx->ssl, nc__tls_new_session);
    }
    return finish(ctx, rc, out);
}

/* A server SSL_CTX for another certificate of ctx (SNI, or one that
 * replaces its own): a handshake switched to it must verify clients and
 * choose ALPN as ctx does, so it gets the same mode and trusted CAs. */
static int cert_ctx_new(nc_tls_ctx *ctx, const char *cert_file,
                        const char *key_file, SSL_CTX **out, char *errbuf,
                        size_t errlen)
{
    SSL_CTX *n = ssl_ctx_new(true);
    if (!n)
        return -ENOMEM;
    int rc = load_pair(n, cert_file, key_file, errbuf, errlen);
    if (rc < 0) {
        SSL_CTX_free(n);
        return rc;
    }
    SSL_CTX_set_verify(n, SSL_CTX_get_verify_mode(ctx->ssl), nc__tls_verify);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx->ssl);
    if (ctx->verify && store && X509_STORE_up_ref(store))
        SSL_CTX_set_cert_store(n, store);
    if (ctx->alpn)
        SSL_CTX_set_alpn_select_cb(n, alpn_select, ctx);
    *out = n;
    return 0;
}

int nc_tls_add_name(nc_tls_ctx *ctx, const char *name, const char *cert_file,
                    const char *key_file, char *errbuf, size_t errlen)
{
    if (!ctx || !name || !*name || !cert_file || !key_file) {
        say(errbuf, errlen, "a name, a certificate file and a key file are "
            "needed");
        return -EINVAL;
    }
    if (!ctx->server) {
        say(errbuf, errlen, "SNI certificates belong to server contexts");
        return -EINVAL;
    }
    struct tls_name *names = realloc(ctx->names,
                                     (ctx->nnames + 1) * sizeof(*names));
    if (!names)
        return -ENOMEM;
    ctx->names = names;
    struct tls_name *n = &names[ctx->nnames];
    n->name = strdup(name);
    int rc = !n->name ? -ENOMEM
           : cert_ctx_new(ctx, cert_file, key_file, &n->ssl, errbuf, errlen);
    if (rc < 0) {
        free(n->name);
        return rc;
    }
    ctx->nnames++;
    return 0;
}

int nc_tls_set_cert(nc_tls_ctx *ctx, const char *cert_file,
                    const char *key_file, char *errbuf, size_t errlen)
{
    if (!ctx || !cert_file || !key_file) {
        say(errbuf, errlen, "a context, a certificate file and a key file "
            "are needed");
        return -EINVAL;
    }
    if (!ctx->server) {
        say(errbuf, errlen, "only a server context's certificate can be "
            "replaced");
        return -EINVAL;
    }
    SSL_CTX *n;
    int rc = cert_ctx_new(ctx, cert_file, key_file, &n, errbuf, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&ctx->cert_lock);
    SSL_CTX *old = ctx->cert;
    ctx->cert = n;
    pthread_mutex_unlock(&ctx->cert_lock);
    atomic_store_explicit(&ctx->cert_set, true, memory_order_release);
    /* Handshakes that switched to it hold references of their own. */
    SSL_CTX_free(old);
    return 0;
}

void nc__tls_ctx_ref(nc_tls_ctx *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void nc__tls_ctx_unref(nc_tls_ctx *ctx)
{
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ctx->nnames; i++) {
        free(ctx->names[i].name);
        SSL_CTX_free(ctx->names[i].ssl);
    }
    free(ctx->names);
    SSL_CTX_free(ctx->cert);
    pthread_mutex_destroy(&ctx->cert_lock);
    for (size_t i = 0; i < ctx->ncache; i++) {
        free(ctx->cache[i].key);
        SSL_SESSION_free(ctx->cache[i].sess);
    }
    pthread_mutex_destroy(&ctx->cache_lock);
    SSL_CTX_free(ctx->ssl);
    BIO_meth_free(ctx->bio);
    free(ctx->alpn);
    free(ctx);
}

void nc_tls_ctx_free(nc_tls_ctx *ctx)
{
    if (ctx)
        nc__tls_ctx_unref(ctx);
}

bool nc__tls_ctx_is_server(const nc_tls_ctx *ctx)
{
    return ctx->server;
}

uint32_t nc__tls_ctx_handshake_ms(const nc_tls_ctx *ctx)
{
    return ctx->handshake_ms;
}

/* ---- the client's sessions ------------------------------------------------- */

SSL_SESSION *nc__tls_session_get(nc_tls_ctx *ctx, const char *key)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&ctx->cache_lock);
    for (size_t i = 0; i < ctx->ncache; i++) {
        if (strcmp(ctx->cache[i].key, key) == 0) {
            s = ctx->cache[i].sess;
            SSL_SESSION_up_ref(s);
            break;
        }
    }
    pthread_mutex_unlock(&ctx->cache_lock);
    return s;
}

void nc__tls_session_put(nc_tls_ctx *ctx, const char *key,
                         SSL_SESSION *sess)
{
    char *k = strdup(key);
    if (!k)
        return;
    SSL_SESSION_up_ref(sess);
    pthread_mutex_lock(&ctx->cache_lock);
    size_t slot = 0;
    while (slot < ctx->ncache && strcmp(ctx->cache[slot].key, key) != 0)
        slot++;
    if (slot == ctx->ncache) {          /* a server not seen yet */
        if (ctx->ncache < TLS_CACHE_MAX) {
            ctx->ncache++;
        } else {                        /* full: replace in turn */
            slot = ctx->cache_next;
            ctx->cache_next = (ctx->cache_next + 1) % TLS_CACHE_MAX;
        }
    }
    struct tls_session old = ctx->cache[slot];
    ctx->cache[slot] = (struct tls_session){ k, sess };
    pthread_mutex_unlock(&ctx->cache_lock);
    free(old.key);
    if (old.sess)
        SSL_SESSION_free(old.sess);
}
