/*
 * tls_none.c - the library built without OpenSSL: no TLS. The public
 * calls say so with -ENOTSUP; as no context can be made, no connection
 * ever reaches the internal ones, which only keep the linker content.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>

/* Why there is no TLS: the Makefile defines NC_TLS_OFF for TLS=no. */
#ifdef NC_TLS_OFF
#define NO_TLS_WHY "it was switched off: make TLS=no"
#else
#define NO_TLS_WHY "OpenSSL's libssl-dev was not found"
#endif

static int unsupported(char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "this libnetcore was built without TLS "
                 "(" NO_TLS_WHY ")");
    return -ENOTSUP;
}

int nc_tls_server_new(const nc_tls_options *o, nc_tls_ctx **out,
                      char *errbuf, size_t errlen)
{
    (void)o;
    (void)out;
    return unsupported(errbuf, errlen);
}

int nc_tls_client_new(const nc_tls_options *o, nc_tls_ctx **out,
                      char *errbuf, size_t errlen)
{
    (void)o;
    (void)out;
    return unsupported(errbuf, errlen);
}

int nc_tls_add_name(nc_tls_ctx *ctx, const char *name, const char *cert_file,
                    const char *key_file, char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)name;
    (void)cert_file;
    (void)key_file;
    return unsupported(errbuf, errlen);
}

int nc_tls_set_cert(nc_tls_ctx *ctx, const char *cert_file,
                    const char *key_file, char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)cert_file;
    (void)key_file;
    return unsupported(errbuf, errlen);
}

void nc_tls_ctx_free(nc_tls_ctx *ctx)
{
    (void)ctx;
}

int nc_conn_tls_info(const nc_conn *c, nc_tls_info *out)
{
    return !c || !out ? -EINVAL : -ENOTSUP;
}

void nc__tls_ctx_ref(nc_tls_ctx *ctx)
{
    (void)ctx;
}

void nc__tls_ctx_unref(nc_tls_ctx *ctx)
{
    (void)ctx;
}

bool nc__tls_ctx_is_server(const nc_tls_ctx *ctx)
{
    (void)ctx;
    return false;
}

uint32_t nc__tls_ctx_handshake_ms(const nc_tls_ctx *ctx)
{
    (void)ctx;
    return 0;
}

int nc__tls_start(nc_conn *c, nc_tls_ctx *ctx, const char *server_name)
{
    (void)c;
    (void)ctx;
    (void)server_name;
    return -ENOTSUP;
}

void nc__tls_input(nc_conn *c, const char *data, size_t n)
{
    (void)data;
    (void)n;
    nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOTSUP, false);
}

void nc__tls_input_end(nc_conn *c)
{
    nc__conn_teardown(c, NC_CLOSE_ERROR, -ENOTSUP, false);
}

int nc__tls_write(nc_conn *c, const struct iovec *iov, int cnt, size_t total)
{
    (void)c;
    (void)iov;
    (void)cnt;
    (void)total;
    return -ENOTSUP;
}

void nc__tls_close_notify(nc_conn *c)
{
    (void)c;
}

void nc__tls_free(nc_conn *c)
{
    (void)c;
}
