/*
 * tls_ctx.h - a TLS context as tls.c and tls_ctx.c see it (OpenSSL
 * builds only).
 *
 * Everything but the session cache, the replaced certificate and the
 * reference count is written while the context is set up and only read
 * afterwards, so that loops of several threads may share it: the cache
 * and the certificate have a lock each, the count is atomic.
 */
#ifndef NC_TLS_CTX_H
#define NC_TLS_CTX_H

#include "tls.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

#define TLS_CACHE_MAX 64   /* client sessions kept, by server name */

struct tls_name {          /* an SNI certificate (server) */
    char *name;            /* "example.com" or "*.example.com" */
    SSL_CTX *ssl;
};

struct tls_session {       /* a client session to resume */
    char *key;             /* server name or address */
    SSL_SESSION *sess;
};

struct nc_tls_ctx {
    SSL_CTX *ssl;
    BIO_METHOD *bio;       /* tls.c's BIO over a connection's I/O */
    bool server;
    bool verify;           /* verify the peer's certificate */
    uint32_t handshake_ms;
    unsigned char *alpn;   /* ALPN protocols in wire format */
    unsigned alpn_len;
    struct tls_name *names;
    size_t nnames;
    /* nc_tls_set_cert: the SSL_CTX holding the certificate that new
     * handshakes switch to (in the SNI callback) instead of ssl's own.
     * cert_set is set once, before cert is first published; cert is
     * swapped and used under cert_lock, so that a replaced one is freed
     * only when no handshake is switching to it (SSL_set_SSL_CTX takes
     * its own reference). */
    pthread_mutex_t cert_lock;
    SSL_CTX *cert;
    atomic_bool cert_set;
    atomic_uint refs;
    pthread_mutex_t cache_lock;
    struct tls_session cache[TLS_CACHE_MAX];
    size_t ncache, cache_next;
};

/* tls.c: the BIO method of a new context. NULL when memory is short. */
BIO_METHOD *nc__tls_bio_method_new(void);
/* tls.c: OpenSSL's new-session callback of client contexts: keeps the
 * session (a ticket the server sent) to resume the next connection to
 * the same server. */
int nc__tls_new_session(SSL *ssl, SSL_SESSION *sess);

/* tls.c: OpenSSL's verify callback of every verifying context: keeps the
 * peer's certificate when it is refused, so that nc_conn_tls_info() in
 * on_close can still show it (OpenSSL keeps only accepted ones). */
int nc__tls_verify(int ok, X509_STORE_CTX *store);

/* tls.c: OpenSSL's info callback of every context: notes the alerts a
 * connection sends, so that a peer's answer to our refusal of
 * renegotiation is reported as NC_ETLS_RENEGOTIATION. */
void nc__tls_info(const SSL *ssl, int where, int ret);

/* tls_ctx.c: a copy of the session last kept for key (the caller frees
 * it with SSL_SESSION_free), or NULL. Any thread. */
SSL_SESSION *nc__tls_session_get(nc_tls_ctx *ctx, const char *key);
/* Keep sess (a reference is taken) as the one to resume for key. */
void nc__tls_session_put(nc_tls_ctx *ctx, const char *key,
                         SSL_SESSION *sess);

#endif /* NC_TLS_CTX_H */
