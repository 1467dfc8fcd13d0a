/*
 * tls.h - the TLS layer between a connection's socket and its callbacks.
 *
 * tls_ctx.c holds contexts (certificates, trust, ALPN, SNI, the client's
 * session cache); tls.c drives one connection: a custom OpenSSL BIO reads
 * the ciphertext the connection just received and writes ciphertext
 * straight into the connection's send path, so that TLS sits above the
 * backend's I/O and below on_data and nc_conn_write. Built without
 * OpenSSL, tls_none.c stands in and every public call is -ENOTSUP.
 *
 * A TLS connection always has its cold part (conn.h), which holds its
 * per-connection state.
 */
#ifndef NC_TLS_H
#define NC_TLS_H

#include "conn.h"

#include <sys/uio.h>

/* ---- contexts (tls_ctx.c) -------------------------------------------- */
/* Take or drop a reference; the last drop frees the context. */
void nc__tls_ctx_ref(nc_tls_ctx *ctx);
void nc__tls_ctx_unref(nc_tls_ctx *ctx);
bool nc__tls_ctx_is_server(const nc_tls_ctx *ctx);
uint32_t nc__tls_ctx_handshake_ms(const nc_tls_ctx *ctx);

/* ---- connections (tls.c) ----------------------------------------------- */
/* Begin the handshake on c, whose socket is connected: as a server for a
 * server context, else as a client checking server_name (NULL: the
 * peer's address). The client's first flight is sent at once. 0 or a
 * negative errno (nothing started). */
int nc__tls_start(nc_conn *c, nc_tls_ctx *ctx, const char *server_name);
/* n bytes of ciphertext arrived: advance the handshake, or decrypt and
 * hand the plain text to the user. */
void nc__tls_input(nc_conn *c, const char *data, size_t n);
/* The socket reached its end (read returned 0). */
void nc__tls_input_end(nc_conn *c);
/* Encrypt and send (or queue) total bytes of plain text from iov. 0 or a
 * negative errno, as nc_conn_writev(). */
int nc__tls_write(nc_conn *c, const struct iovec *iov, int cnt,
                  size_t total);
/* Queue TLS's close_notify (once; only after the handshake). */
void nc__tls_close_notify(nc_conn *c);
/* Free c's TLS state. */
void nc__tls_free(nc_conn *c);

#endif /* NC_TLS_H */
