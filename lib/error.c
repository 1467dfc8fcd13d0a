/*
 * error.c - the library's version and the names of errno values.
 *
 * The text comes from glibc's strerrordesc_np/strerrorname_np (glibc 2.32
 * and later): both return static strings, so unlike strerror() they are
 * thread-safe and never depend on the locale.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

const char *nc_version(void)
{
    return STR(NC_VERSION_MAJOR) "." STR(NC_VERSION_MINOR) "."
           STR(NC_VERSION_PATCH);
}

int nc__positive_errno(int err)
{
    if (err == INT_MIN)
        return -1;
    return err < 0 ? -err : err;
}

/* The library's own codes, above errno's range: TLS failures and name
 * lookup failures. */
static const struct {
    int code;
    const char *name;
    const char *text;
} tls_codes[] = {
    { NC_ETLS_NOT_TLS, "NC_ETLS_NOT_TLS", "Peer does not speak TLS" },
    { NC_ETLS_VERSION, "NC_ETLS_VERSION", "No TLS version in common" },
    { NC_ETLS_CERT_EXPIRED, "NC_ETLS_CERT_EXPIRED",
      "Peer's certificate expired or not yet valid" },
    { NC_ETLS_CERT_UNTRUSTED, "NC_ETLS_CERT_UNTRUSTED",
      "Peer's certificate not signed by a trusted CA" },
    { NC_ETLS_CERT_NAME, "NC_ETLS_CERT_NAME",
      "Peer's certificate is for another name" },
    { NC_ETLS_NO_CERT, "NC_ETLS_NO_CERT", "Peer sent no certificate" },
    { NC_ETLS_PEER_REJECTED, "NC_ETLS_PEER_REJECTED",
      "Peer rejected the TLS handshake" },
    { NC_ETLS_TRUNCATED, "NC_ETLS_TRUNCATED",
      "Peer closed without TLS close_notify" },
    { NC_ETLS_PROTOCOL, "NC_ETLS_PROTOCOL", "TLS protocol error" },
    { NC_ETLS_RENEGOTIATION, "NC_ETLS_RENEGOTIATION",
      "TLS renegotiation refused" },
    { NC_EDNS_NOT_FOUND, "NC_EDNS_NOT_FOUND", "No such host name" },
    { NC_EDNS_NO_ADDRESS, "NC_EDNS_NO_ADDRESS",
      "Host name has no address of that family" },
    { NC_EDNS_SERVER_FAILED, "NC_EDNS_SERVER_FAILED",
      "DNS server failed to answer" },
    { NC_EDNS_REFUSED, "NC_EDNS_REFUSED", "DNS server refused the query" },
    { NC_EDNS_TIMEOUT, "NC_EDNS_TIMEOUT", "No answer from the DNS servers" },
    { NC_EDNS_NO_SERVER, "NC_EDNS_NO_SERVER", "No DNS server reachable" },
    { NC_EDNS_BAD_ANSWER, "NC_EDNS_BAD_ANSWER",
      "Malformed or unsupported DNS answer" },
};

static int tls_index(int e)
{
    for (size_t i = 0; i < sizeof(tls_codes) / sizeof(tls_codes[0]); i++)
        if (tls_codes[i].code == e)
            return (int)i;
    return -1;
}

const char *nc_strerror(int err)
{
    int e = nc__positive_errno(err);
    const char *text;

    if (e == 0)
        return "Success";
    if (tls_index(e) >= 0)
        return tls_codes[tls_index(e)].text;
    text = e > 0 ? strerrordesc_np(e) : NULL;
    return text ? text : "Unknown error";
}

const char *nc_errname(int err)
{
    int e = nc__positive_errno(err);
    const char *name;

    if (e == 0)
        return "0";
    if (tls_index(e) >= 0)
        return tls_codes[tls_index(e)].name;
    name = e > 0 ? strerrorname_np(e) : NULL;
    return name ? name : "E?";
}

void nc__errbuf_set(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(buf, len, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
}
