/*
 * addr.c - the endpoint grammar: parsing, formatting and resolving
 * endpoint strings, and small queries on concrete addresses.
 *
 * Literals go through inet_pton/inet_ntop only: no inet_addr, no
 * getaddrinfo, no DNS. Interface names are checked with if_nametoindex.
 *
 * Scope choice: a "%scope" is accepted only on addresses that need one
 * (link-local unicast fe80::/10, and interface- or link-local multicast
 * ff01::/16, ff02::/16); on any other IPv6 address, and on IPv4, it is
 * rejected because the kernel would silently ignore it. A link-local
 * address without a scope is rejected too, since bind() and connect()
 * would fail with a bare EINVAL.
 *
 * Unix endpoints: "unix:PATH" (absolute or relative), and "unix:@NAME"
 * for a Linux abstract socket (sun_path[0] is NUL, the name is exactly
 * the following bytes: len counts no terminator).
 *
 * Host names are not part of the grammar nc_endpoint_parse() reads (it
 * is also what nc_listen() binds): nc_connect() asks nc__endpoint_name()
 * first, which takes "NAME:PORT" with a dot in NAME when NAME is not an
 * IPv4 address nor an existing interface.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNIX_PREFIX "unix:"
#define UNIX_PREFIX_LEN (sizeof(UNIX_PREFIX) - 1)
#define UNIX_PATH_OFFSET offsetof(struct sockaddr_un, sun_path)
/* Longest piece of user input quoted back in a message. */
#define QUOTE_MAX 64
#define QUOTE(n) ((int)((n) > QUOTE_MAX ? QUOTE_MAX : (n)))

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* snprintf into buf; -ENOSPC (and an empty buf) when it does not fit. */
static int put(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int put(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (buf == NULL)
        return -EINVAL;
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= len) {
        if (len > 0)
            buf[0] = '\0';
        return -ENOSPC;
    }
    return n;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* Decimal digits only: no sign, no spaces, no hex. */
static int parse_port(const char *s, size_t n, uint16_t *port, char *why,
                      size_t whylen)
{
    unsigned long v = 0;

    if (n == 0) {
        set_why(why, whylen, "missing port after ':'");
        return -EINVAL;
    }
    if (!all_digits(s, n)) {
        set_why(why, whylen,
                "port '%.*s' is not a number (use decimal digits only)",
                QUOTE(n), s);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (v <= 65535)
            v = v * 10 + (unsigned long)(s[i] - '0');
    if (v > 65535) {
        set_why(why, whylen, "port %.*s is out of range (0-65535)",
                QUOTE(n), s);
        return -ERANGE;
    }
    *port = (uint16_t)v;
    return 0;
}

static bool needs_scope(const struct in6_addr *a)
{
    return IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MC_LINKLOCAL(a) ||
           IN6_IS_ADDR_MC_NODELOCAL(a);
}

/* A scope after '%': an interface name or a decimal interface index. */
static int parse_scope(const char *s, uint32_t *scope, char *why,
                       size_t whylen)
{
    size_t n = strlen(s);
    char name[IF_NAMESIZE];

    if (n == 0) {
        set_why(why, whylen, "empty scope after '%%' (give an interface "
                "name or index)");
        return -EINVAL;
    }
    if (all_digits(s, n)) {
        unsigned long long v = 0;
        for (size_t i = 0; i < n && v <= UINT32_MAX; i++)
            v = v * 10 + (unsigned long long)(s[i] - '0');
        if (v == 0 || v > UINT32_MAX ||
            if_indextoname((unsigned)v, name) == NULL) {
            set_why(why, whylen, "unknown scope interface index %.*s",
                    QUOTE(n), s);
            return -ENODEV;
        }
        *scope = (uint32_t)v;
        return 0;
    }
    if (n >= NC_IFNAMSIZ) {
        set_why(why, whylen, "scope interface name '%.*s' is too long "
                "(at most %d characters)", QUOTE(n), s, NC_IFNAMSIZ - 1);
        return -ENAMETOOLONG;
    }
    *scope = if_nametoindex(s);
    if (*scope == 0) {
        set_why(why, whylen, "unknown scope interface '%s'", s);
        return -ENODEV;
    }
    return 0;
}

/* The text inside "[...]": an IPv6 literal with an optional %scope. */
static int parse_ipv6(nc_endpoint *ep, const char *host, size_t n,
                      char *why, size_t whylen)
{
    char text[INET6_ADDRSTRLEN + 1 + NC_IFNAMSIZ + 16];
    struct sockaddr_in6 *in6 = &ep->addr.u.in6;
    struct in_addr v4;
    char *pct;
    uint32_t scope = 0;
    int rc;

    if (n >= sizeof(text)) {
        set_why(why, whylen, "bad IPv6 address '%.*s' (too long)",
                QUOTE(n), host);
        return -EINVAL;
    }
    memcpy(text, host, n);
    text[n] = '\0';
    pct = strchr(text, '%');
    if (pct != NULL)
        *pct = '\0';
    if (text[0] == '\0') {
        set_why(why, whylen, "empty host between '[' and ']'");
        return -EINVAL;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) {
        if (inet_pton(AF_INET, text, &v4) == 1)
            set_why(why, whylen, "'%s' is an IPv4 address: write it "
                    "without brackets", text);
        else
            set_why(why, whylen, "bad IPv6 address '%s'", text);
        return -EINVAL;
    }
    if (pct != NULL) {
        if (!needs_scope(&in6->sin6_addr)) {
            set_why(why, whylen, "scope '%%%s' given for %s, which is not "
                    "a link-local address (fe80::/10)", pct + 1, text);
            return -EINVAL;
        }
        rc = parse_scope(pct + 1, &scope, why, whylen);
        if (rc < 0)
            return rc;
    } else if (needs_scope(&in6->sin6_addr)) {
        set_why(why, whylen, "link-local address %s needs a scope, e.g. "
                "[%s%%eth0]:PORT", text, text);
        return -EINVAL;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_scope_id = scope;
    ep->addr.len = sizeof(*in6);
    ep->kind = NC_EP_ADDR;
    return 0;
}

/* "[addr%scope]:port" */
static int parse_bracketed(nc_endpoint *ep, const char *text, char *why,
                           size_t whylen)
{
    const char *close = strchr(text, ']');
    const char *open2 = strchr(text + 1, '[');
    const char *port;
    int rc;

    if (open2 != NULL && (close == NULL || open2 < close)) {
        set_why(why, whylen, "unexpected '[' inside brackets");
        return -EINVAL;
    }
    if (close == NULL) {
        set_why(why, whylen, "missing ']' after IPv6 address");
        return -EINVAL;
    }
    if (close[1] == '\0') {
        set_why(why, whylen, "missing port after ']' (expected "
                "[ADDRESS]:PORT)");
        return -EINVAL;
    }
    if (close[1] != ':') {
        set_why(why, whylen, "unexpected text '%.*s' after ']' (expected "
                ":PORT)", QUOTE(strlen(close + 1)), close + 1);
        return -EINVAL;
    }
    rc = parse_ipv6(ep, text + 1, (size_t)(close - text - 1), why, whylen);
    if (rc < 0)
        return rc;
    port = close + 2;
    rc = parse_port(port, strlen(port), &ep->port, why, whylen);
    if (rc < 0)
        return rc;
    ep->addr.u.in6.sin6_port = htons(ep->port);
    return 0;
}

/* True if the first n bytes of s (up to an optional '%') are an IPv6
 * literal. */
static bool looks_ipv6(const char *s, size_t n)
{
    char text[INET6_ADDRSTRLEN];
    struct in6_addr a;
    const char *pct = memchr(s, '%', n);

    if (pct != NULL)
        n = (size_t)(pct - s);
    if (n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(AF_INET6, text, &a) == 1;
}

/* Text with more than one ':' and no brackets. */
static int reject_unbracketed(const char *text, const char *last_colon,
                              char *why, size_t whylen)
{
    size_t host_n = (size_t)(last_colon - text);
    bool whole = looks_ipv6(text, strlen(text));
    bool host = looks_ipv6(text, host_n);

    if (whole && host)
        set_why(why, whylen, "'%.*s' is ambiguous: put the IPv6 address in "
                "brackets, e.g. [%.*s]:%s", QUOTE(strlen(text)), text,
                QUOTE(host_n), text, last_colon + 1);
    else if (whole)
        set_why(why, whylen, "IPv6 address '%.*s' needs brackets and a "
                "port: [%.*s]:PORT", QUOTE(strlen(text)), text,
                QUOTE(strlen(text)), text);
    else if (host)
        set_why(why, whylen, "an IPv6 address needs brackets when a port "
                "is given: use [%.*s]:%s", QUOTE(host_n), text,
                last_colon + 1);
    else
        set_why(why, whylen, "too many ':' in '%.*s' (an IPv6 address goes "
                "in brackets: [ADDRESS]:PORT)", QUOTE(strlen(text)), text);
    return -EINVAL;
}

/* Text without ':' or brackets: a bare port ("7000") or a forgotten one. */
static int parse_bare(nc_endpoint *ep, const char *text, char *why,
                      size_t whylen)
{
    size_t n = strlen(text);
    char c = text[0];

    if (all_digits(text, n) || c == '+' || c == '-' || c == ' ' ||
        c == '\t' || (is_digit(c) && strchr(text, '.') == NULL)) {
        ep->kind = NC_EP_ANY;
        return parse_port(text, n, &ep->port, why, whylen);
    }
    set_why(why, whylen, "missing port: expected %.*s:PORT", QUOTE(n), text);
    return -EINVAL;
}

/* Dotted-quad only: inet_pton rejects short forms, octal and hex. */
static int parse_ipv4(nc_endpoint *ep, const char *host, size_t n,
                      char *why, size_t whylen)
{
    char text[INET_ADDRSTRLEN];

    if (n < sizeof(text)) {
        memcpy(text, host, n);
        text[n] = '\0';
        if (inet_pton(AF_INET, text, &ep->addr.u.in4.sin_addr) == 1) {
            ep->addr.u.in4.sin_family = AF_INET;
            ep->addr.len = sizeof(ep->addr.u.in4);
            ep->kind = NC_EP_ADDR;
            return 0;
        }
    }
    set_why(why, whylen, "bad IPv4 address '%.*s'", QUOTE(n), host);
    return -EINVAL;
}

static int parse_host(nc_endpoint *ep, const char *host, size_t n,
                      char *why, size_t whylen)
{
    if (n == 0 || (n == 1 && host[0] == '*')) {
        ep->kind = NC_EP_ANY;
        return 0;
    }
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0) {
        ep->kind = NC_EP_LOCALHOST;
        return 0;
    }
    if (memchr(host, '%', n) != NULL) {
        set_why(why, whylen, "a scope ('%%') is only allowed on an IPv6 "
                "link-local address in brackets: [fe80::1%%eth0]:PORT");
        return -EINVAL;
    }
    if (strspn(host, "0123456789.") >= n)
        return parse_ipv4(ep, host, n, why, whylen);
    for (size_t i = 0; i < n; i++) {
        if (host[i] == '/' || host[i] == ' ' || host[i] == '\t' ||
            (unsigned char)host[i] < 0x20) {
            set_why(why, whylen, "'%.*s' is not an IP address, an interface "
                    "name, '*' or 'localhost'", QUOTE(n), host);
            return -EINVAL;
        }
    }
    if (n >= NC_IFNAMSIZ) {
        set_why(why, whylen, "interface name '%.*s' is too long (at most %d "
                "characters)", QUOTE(n), host, NC_IFNAMSIZ - 1);
        return -ENAMETOOLONG;
    }
    memcpy(ep->iface, host, n);
    ep->iface[n] = '\0';
    if (if_nametoindex(ep->iface) == 0) {
        set_why(why, whylen, "unknown interface '%s'%s", ep->iface,
                memchr(host, '.', n) != NULL ? " (host names are not looked "
                "up: give an IP address or an interface name)" : "");
        return -ENODEV;
    }
    ep->kind = NC_EP_IFACE;
    return 0;
}

static int parse_inet(nc_endpoint *ep, const char *text, char *why,
                      size_t whylen)
{
    const char *colon;
    int rc;

    if (text[0] == '[')
        return parse_bracketed(ep, text, why, whylen);
    if (strchr(text, ']') != NULL) {
        set_why(why, whylen, "unexpected ']' without a matching '['");
        return -EINVAL;
    }
    if (strchr(text, '[') != NULL) {
        set_why(why, whylen, "unexpected '[' (brackets enclose the whole "
                "IPv6 address: [ADDRESS]:PORT)");
        return -EINVAL;
    }
    colon = strrchr(text, ':');
    if (colon == NULL)
        return parse_bare(ep, text, why, whylen);
    if (colon != strchr(text, ':'))
        return reject_unbracketed(text, colon, why, whylen);
    rc = parse_host(ep, text, (size_t)(colon - text), why, whylen);
    if (rc < 0)
        return rc;
    rc = parse_port(colon + 1, strlen(colon + 1), &ep->port, why, whylen);
    if (rc < 0)
        return rc;
    if (ep->kind == NC_EP_ADDR)
        ep->addr.u.in4.sin_port = htons(ep->port);
    return 0;
}

/* "unix:/path", "unix:relative" or "unix:@abstract" (leading NUL). */
static int parse_unix(nc_endpoint *ep, const char *path, char *why,
                      size_t whylen)
{
    struct sockaddr_un *un = &ep->addr.u.un;
    size_t max = sizeof(un->sun_path) - 1;
    size_t n;

    if (path[0] == '@') {
        n = strlen(path + 1);
        if (n == 0) {
            set_why(why, whylen, "empty abstract socket name after "
                    "'unix:@'");
            return -EINVAL;
        }
        if (n > max) {
            set_why(why, whylen, "abstract socket name is %zu bytes long; "
                    "the limit is %zu", n, max);
            return -ENAMETOOLONG;
        }
        memcpy(un->sun_path + 1, path + 1, n);
        ep->addr.len = (socklen_t)(UNIX_PATH_OFFSET + 1 + n);
    } else {
        n = strlen(path);
        if (n == 0) {
            set_why(why, whylen, "empty Unix socket path after 'unix:'");
            return -EINVAL;
        }
        if (n > max) {
            set_why(why, whylen, "Unix socket path is %zu bytes long; the "
                    "limit is %zu", n, max);
            return -ENAMETOOLONG;
        }
        memcpy(un->sun_path, path, n);
        ep->addr.len = (socklen_t)(UNIX_PATH_OFFSET + n + 1);
    }
    un->sun_family = AF_UNIX;
    ep->kind = NC_EP_UNIX;
    return 0;
}

/* Letters, digits, '-' and '_' in labels of 1 to 63, separated by dots,
 * with a dot somewhere (a single label with a final dot is absolute). */
static bool host_name_like(const char *s, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 254 || (n == 254 && s[n - 1] != '.') ||
        !memchr(s, '.', n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   is_digit(c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

int nc__endpoint_name(const char *text, char *host, size_t hostlen,
                      uint16_t *port, char *why, size_t whylen)
{
    const char *colon = strchr(text, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL ||
        strncmp(text, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
        return 0;
    size_t n = (size_t)(colon - text);
    if (n >= hostlen || strspn(text, "0123456789.") >= n ||
        !host_name_like(text, n))
        return 0;
    memcpy(host, text, n);
    host[n] = '\0';
    int rc = parse_port(colon + 1, strlen(colon + 1), port, why, whylen);
    return rc < 0 ? rc : 1;
}

int nc_endpoint_parse(nc_endpoint *ep, const char *text, char *why,
                      size_t whylen)
{
    nc_endpoint tmp;
    int rc;

    if (ep == NULL || text == NULL) {
        set_why(why, whylen, "no endpoint given (NULL)");
        return -EINVAL;
    }
    if (text[0] == '\0') {
        set_why(why, whylen, "empty endpoint: expected HOST:PORT, *:PORT, "
                "PORT or unix:/path");
        return -EINVAL;
    }
    memset(&tmp, 0, sizeof(tmp));
    if (strncmp(text, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
        rc = parse_unix(&tmp, text + UNIX_PREFIX_LEN, why, whylen);
    else
        rc = parse_inet(&tmp, text, why, whylen);
    if (rc < 0)
        return rc;
    memcpy(ep, &tmp, sizeof(*ep));
    set_why(why, whylen, "%s", "");
    return 0;
}

static int format_unix(const nc_addr *a, char *buf, size_t len)
{
    const struct sockaddr_un *un = &a->u.un;
    size_t n;

    if (a->len > sizeof(*un))
        return -EINVAL;
    /* An unnamed socket (an unbound client seen by accept) has no path:
     * "unix:" is the only text that does not parse back. */
    if (a->len <= UNIX_PATH_OFFSET)
        return put(buf, len, "%s", UNIX_PREFIX);
    n = a->len - UNIX_PATH_OFFSET;
    if (un->sun_path[0] == '\0') {
        /* Abstract: the name is exactly the bytes after the NUL. An
         * embedded NUL cannot be written as an endpoint string. */
        if (memchr(un->sun_path + 1, '\0', n - 1) != NULL)
            return -EINVAL;
        return put(buf, len, "%s@%.*s", UNIX_PREFIX, (int)(n - 1),
                   un->sun_path + 1);
    }
    return put(buf, len, "%s%.*s", UNIX_PREFIX,
               (int)strnlen(un->sun_path, n), un->sun_path);
}

int nc_addr_format(const nc_addr *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    char scope[IF_NAMESIZE];

    if (a == NULL || buf == NULL)
        return -EINVAL;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        if (inet_ntop(AF_INET, &a->u.in4.sin_addr, host, sizeof(host)) ==
            NULL)
            return -EINVAL;
        return put(buf, len, "%s:%u", host, ntohs(a->u.in4.sin_port));
    case AF_INET6:
        if (inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host)) ==
            NULL)
            return -EINVAL;
        if (a->u.in6.sin6_scope_id == 0)
            return put(buf, len, "[%s]:%u", host, ntohs(a->u.in6.sin6_port));
        if (if_indextoname(a->u.in6.sin6_scope_id, scope) == NULL)
            snprintf(scope, sizeof(scope), "%u",
                     (unsigned)a->u.in6.sin6_scope_id);
        return put(buf, len, "[%s%%%s]:%u", host, scope,
                   ntohs(a->u.in6.sin6_port));
    case AF_UNIX:
        return format_unix(a, buf, len);
    default:
        return -EINVAL;
    }
}

/* ep->iface holds a non-empty, NUL-terminated name. */
static bool iface_name_ok(const nc_endpoint *ep)
{
    size_t n = strnlen(ep->iface, sizeof(ep->iface));
    return n > 0 && n < sizeof(ep->iface);
}

/* ep->addr with ep->port: the port field of the endpoint is the truth for
 * every kind but UNIX. */
static int endpoint_addr(const nc_endpoint *ep, nc_addr *out)
{
    int family = ep->addr.u.sa.sa_family;

    memcpy(out, &ep->addr, sizeof(*out));
    if (family == AF_INET) {
        out->u.in4.sin_port = htons(ep->port);
        out->len = sizeof(out->u.in4);
    } else if (family == AF_INET6) {
        out->u.in6.sin6_port = htons(ep->port);
        out->len = sizeof(out->u.in6);
    } else {
        return -EINVAL;
    }
    return 0;
}

int nc_endpoint_format(const nc_endpoint *ep, char *buf, size_t len)
{
    nc_addr a;

    if (ep == NULL || buf == NULL)
        return -EINVAL;
    switch (ep->kind) {
    case NC_EP_ADDR:
        if (endpoint_addr(ep, &a) < 0)
            return -EINVAL;
        return nc_addr_format(&a, buf, len);
    case NC_EP_ANY:
        return put(buf, len, "*:%u", ep->port);
    case NC_EP_LOCALHOST:
        return put(buf, len, "localhost:%u", ep->port);
    case NC_EP_IFACE:
        if (!iface_name_ok(ep))
            return -EINVAL;
        return put(buf, len, "%s:%u", ep->iface, ep->port);
    case NC_EP_UNIX:
        if (ep->addr.u.sa.sa_family != AF_UNIX)
            return -EINVAL;
        return nc_addr_format(&ep->addr, buf, len);
    default:
        return -EINVAL;
    }
}

static void emit(nc_addr *out, size_t max, size_t *n, const nc_addr *a)
{
    if (*n < max)
        out[*n] = *a;
    (*n)++;
}

static void make_inet(nc_addr *a, int family, const void *host,
                      uint16_t port)
{
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        a->u.in4.sin_family = AF_INET;
        memcpy(&a->u.in4.sin_addr, host, sizeof(a->u.in4.sin_addr));
        a->u.in4.sin_port = htons(port);
        a->len = sizeof(a->u.in4);
    } else {
        a->u.in6.sin6_family = AF_INET6;
        memcpy(&a->u.in6.sin6_addr, host, sizeof(a->u.in6.sin6_addr));
        a->u.in6.sin6_port = htons(port);
        a->len = sizeof(a->u.in6);
    }
}

static int resolve_iface(const nc_endpoint *ep, nc_addr *out, size_t max,
                         size_t *count)
{
    nc_iface_list *list;
    const nc_iface *ifc;
    int rc;

    if (!iface_name_ok(ep))
        return -EINVAL;
    rc = nc_iface_list_get(&list);
    if (rc < 0)
        return rc;
    ifc = nc_iface_find(list, ep->iface);
    if (ifc == NULL) {
        rc = -ENODEV;
    } else if (ifc->naddrs == 0) {
        rc = -EADDRNOTAVAIL;
    } else {
        for (size_t i = 0; i < ifc->naddrs; i++) {
            nc_addr a = ifc->addrs[i].addr;
            if (a.u.sa.sa_family == AF_INET)
                a.u.in4.sin_port = htons(ep->port);
            else
                a.u.in6.sin6_port = htons(ep->port);
            emit(out, max, count, &a);
        }
    }
    nc_iface_list_free(list);
    return rc;
}

int nc_endpoint_resolve(const nc_endpoint *ep, nc_addr *out, size_t max,
                        size_t *count)
{
    static const struct in_addr v4_any = { INADDR_ANY };
    const struct in_addr v4_loop = { htonl(INADDR_LOOPBACK) };
    nc_addr a;

    if (ep == NULL || count == NULL || (out == NULL && max > 0))
        return -EINVAL;
    *count = 0;
    switch (ep->kind) {
    case NC_EP_ADDR:
        if (endpoint_addr(ep, &a) < 0)
            return -EINVAL;
        emit(out, max, count, &a);
        return 0;
    case NC_EP_UNIX:
        if (ep->addr.u.sa.sa_family != AF_UNIX ||
            ep->addr.len < sizeof(sa_family_t) ||
            ep->addr.len > sizeof(ep->addr.u.un))
            return -EINVAL;
        emit(out, max, count, &ep->addr);
        return 0;
    case NC_EP_ANY:
        make_inet(&a, AF_INET6, &in6addr_any, ep->port);
        emit(out, max, count, &a);
        make_inet(&a, AF_INET, &v4_any, ep->port);
        emit(out, max, count, &a);
        return 0;
    case NC_EP_LOCALHOST:
        make_inet(&a, AF_INET, &v4_loop, ep->port);
        emit(out, max, count, &a);
        make_inet(&a, AF_INET6, &in6addr_loopback, ep->port);
        emit(out, max, count, &a);
        return 0;
    case NC_EP_IFACE:
        return resolve_iface(ep, out, max, count);
    default:
        return -EINVAL;
    }
}

int nc_addr_from_sockaddr(nc_addr *out, const struct sockaddr *sa,
                          socklen_t len)
{
    nc_addr a;
    socklen_t need;

    if (out == NULL || sa == NULL || len < sizeof(sa_family_t) ||
        len > sizeof(a.u))
        return -EINVAL;
    switch (sa->sa_family) {
    case AF_INET:
        need = sizeof(struct sockaddr_in);
        break;
    case AF_INET6:
        need = sizeof(struct sockaddr_in6);
        break;
    case AF_UNIX:
        need = sizeof(sa_family_t);
        if (len > sizeof(struct sockaddr_un))
            return -EINVAL;
        break;
    default:
        return -EAFNOSUPPORT;
    }
    if (len < need)
        return -EINVAL;
    memset(&a, 0, sizeof(a));
    memcpy(&a.u, sa, len);
    a.len = sa->sa_family == AF_UNIX ? len : need;
    *out = a;
    return 0;
}

uint16_t nc_addr_port(const nc_addr *a)
{
    if (a == NULL)
        return 0;
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in4.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return 0;
}

bool nc_addr_is_loopback(const nc_addr *a)
{
    const struct in6_addr *v6;

    if (a == NULL)
        return false;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return (ntohl(a->u.in4.sin_addr.s_addr) >> 24) == 127;
    case AF_INET6:
        v6 = &a->u.in6.sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(v6) ||
               (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
    case AF_UNIX:
        return true;
    default:
        return false;
    }
}

bool nc_addr_is_any(const nc_addr *a)
{
    if (a == NULL)
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->u.sa.sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
    return false;
}
