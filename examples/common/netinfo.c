/*
 * netinfo.c - printing addresses, interfaces and connect failures, and
 * why a loop cannot start.
 */
#include "netinfo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int netinfo_host(const nc_addr *a, char *buf, size_t len)
{
    char text[INET6_ADDRSTRLEN + 1 + IF_NAMESIZE];
    int n;

    if (a == NULL || buf == NULL)
        return -EINVAL;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->u.in4.sin_addr, text, sizeof text);
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, text, sizeof text);
        if (a->u.in6.sin6_scope_id != 0) {
            char name[IF_NAMESIZE];
            size_t used = strlen(text);
            if (if_indextoname(a->u.in6.sin6_scope_id, name) != NULL)
                snprintf(text + used, sizeof text - used, "%%%s", name);
            else
                snprintf(text + used, sizeof text - used, "%%%u",
                         (unsigned)a->u.in6.sin6_scope_id);
        }
        break;
    case AF_UNIX:
        return nc_addr_format(a, buf, len);
    default:
        return -EINVAL;
    }
    n = snprintf(buf, len, "%s", text);
    return (size_t)n < len ? n : -ENOSPC;
}

/* The address bytes of a as IPv4 or IPv6 (an IPv4-mapped IPv6 address
 * counts as IPv4). Returns the family, or 0. */
static int raw_addr(const nc_addr *a, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0xff, 0xff};

    if (a->u.sa.sa_family == AF_INET) {
        memcpy(out, &a->u.in4.sin_addr, 4);
        return AF_INET;
    }
    if (a->u.sa.sa_family == AF_INET6) {
        const unsigned char *b = a->u.in6.sin6_addr.s6_addr;
        if (memcmp(b, mapped, sizeof mapped) == 0) {
            memcpy(out, b + 12, 4);
            return AF_INET;
        }
        memcpy(out, b, 16);
        return AF_INET6;
    }
    return 0;
}

static bool prefix_match(const unsigned char *x, const unsigned char *y,
                         unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(x, y, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((x[whole] ^ y[whole]) & (0xff << (8 - rest))) == 0;
}

const nc_iface *netinfo_iface_of(const nc_iface_list *list, const nc_addr *a)
{
    unsigned char want[16], have[16];
    int family, pass;
    size_t i, j;

    if (list == NULL || a == NULL)
        return NULL;
    family = raw_addr(a, want);
    if (family == 0)
        return NULL;
    /* Pass 0 looks for the address itself, pass 1 for a subnet holding it
     * (127.0.0.2 is served by lo, which holds 127.0.0.1/8). */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < list->count; i++) {
            const nc_iface *ifc = &list->ifaces[i];
            for (j = 0; j < ifc->naddrs; j++) {
                const nc_addr *ia = &ifc->addrs[j].addr;
                unsigned bits = family == AF_INET ? 32 : 128;
                if (raw_addr(ia, have) != family)
                    continue;
                if (family == AF_INET6 && a->u.sa.sa_family == AF_INET6 &&
                    a->u.in6.sin6_scope_id != 0 &&
                    a->u.in6.sin6_scope_id != ifc->index)
                    continue;
                if (pass == 1) {
                    if (ifc->addrs[j].prefix_len == 0)
                        continue;
                    if (ifc->addrs[j].prefix_len < bits)
                        bits = ifc->addrs[j].prefix_len;
                }
                if (prefix_match(want, have, bits))
                    return ifc;
            }
        }
    }
    return NULL;
}

const char *netinfo_where(const nc_iface_list *list, const nc_addr *a,
                          char *buf, size_t len)
{
    const nc_iface *ifc;

    if (a->u.sa.sa_family == AF_UNIX)
        snprintf(buf, len, "unix");
    else if (nc_addr_is_any(a))
        snprintf(buf, len, "all interfaces");
    else if ((ifc = netinfo_iface_of(list, a)) != NULL)
        snprintf(buf, len, "%s", ifc->name);
    else
        snprintf(buf, len, "no interface holds it");
    return buf;
}

void netinfo_print_listening(FILE *f, const nc_iface_list *list,
                             const nc_addr *addrs, size_t n,
                             const char *how)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char text[NC_ADDRSTRLEN], where[64];
        if (nc_addr_format(&addrs[i], text, sizeof text) < 0)
            snprintf(text, sizeof text, "(unprintable address)");
        fprintf(f, "listening on %s (%s; %s)\n", text,
                netinfo_where(list, &addrs[i], where, sizeof where), how);
    }
    fflush(f);
}

bool netinfo_print_reach_warning(FILE *f, const char *prog,
                                 const nc_iface_list *list,
                                 const nc_addr *addrs, size_t n)
{
    size_t size = 2048;
    char *buf = NULL;
    int len = -ENOSPC;

    while (len == -ENOSPC && size <= 1u << 20) {
        char *bigger = realloc(buf, size);
        if (bigger == NULL)
            break;
        buf = bigger;
        len = nc_iface_reach_warning(list, addrs, n, buf, size);
        size *= 2;
    }
    if (len > 0)
        fprintf(f, "%s: warning: %s\n", prog, buf);
    else if (len < 0)
        fprintf(f, "%s: warning: cannot tell whether other hosts can "
                "connect: %s\n", prog, nc_strerror(len));
    fflush(f);
    free(buf);
    return len > 0;
}

void netinfo_print_connect_failure(FILE *f, const char *prog,
                                   const char *target, int err)
{
    fprintf(f, "%s: connect to %s failed: %s (%s)\n", prog, target,
            nc_strerror(err), nc_errname(err));
    fprintf(f, "%s: %s\n", prog, nc_explain(NC_OP_CONNECT, err));
    fflush(f);
}

void netinfo_print_attempts(FILE *f, const char *prog, const nc_conn *c,
                            int err)
{
    char why[1024];

    if (-err >= NC_EDNS_NOT_FOUND && -err <= NC_EDNS_LAST)
        return;
    /* Only a connect to a name says what it tried. */
    if (nc_conn_explain(c, why, sizeof why) > 0 &&
        (strncmp(why, "could not connect to ", 21) == 0 ||
         strncmp(why, "the connect to ", 15) == 0))
        fprintf(f, "%s: %s\n", prog, why);
    fflush(f);
}

const char *netinfo_backend_trouble(int err)
{
    switch (err) {
    case -ENOTSUP:
        return "this libnetcore was built without liburing";
    case -ENOSYS:
        return "the kernel has no io_uring, one older than 6.0, or a seccomp "
               "filter answers ENOSYS";
    case -EPERM:
        return "forbidden: kernel.io_uring_disabled, or a seccomp filter (a "
               "container runtime's)";
    default:
        return nc_strerror(err);
    }
}

const char *netinfo_loop_trouble(int err, char *buf, size_t len)
{
    nc_backend chosen;

    if (nc_backend_from_env(&chosen, buf, len) < 0)
        return buf;
    if (chosen == NC_BACKEND_IO_URING &&
        (err == -ENOTSUP || err == -ENOSYS || err == -EPERM)) {
        snprintf(buf, len, "the environment variable NC_BACKEND=io_uring "
                 "asks for io_uring, which cannot run here: %s (unset it, "
                 "or set NC_BACKEND=epoll)", netinfo_backend_trouble(err));
        return buf;
    }
    return nc_strerror(err);
}
