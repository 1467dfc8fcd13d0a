/*
 * iface.c - a snapshot of the machine's interfaces (getifaddrs), the
 * primary interface (the default route), and the warning a server shows
 * when it is bound where no other host can reach it.
 */
#include "netcore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netpacket/packet.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One interface while the snapshot is being counted. */
struct slot {
    char name[NC_IFNAMSIZ];
    unsigned index;
    unsigned flags;
    size_t n4, n6;
};

struct slots {
    struct slot *v;
    size_t n, cap;
};

static unsigned map_flags(unsigned ifa_flags)
{
    unsigned f = 0;

    if (ifa_flags & IFF_UP)
        f |= NC_IFACE_UP;
    if (ifa_flags & IFF_RUNNING)
        f |= NC_IFACE_RUNNING;
    if (ifa_flags & IFF_LOOPBACK)
        f |= NC_IFACE_LOOPBACK;
    return f;
}

static void copy_name(char dst[NC_IFNAMSIZ], const char *src)
{
    size_t n = strnlen(src, NC_IFNAMSIZ - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static struct slot *slot_by_index(struct slots *s, unsigned index)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].index == index)
            return &s->v[i];
    return NULL;
}

static struct slot *slot_add(struct slots *s, unsigned index)
{
    struct slot *sl = slot_by_index(s, index);

    if (sl != NULL)
        return sl;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct slot *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        s->v = v;
        s->cap = cap;
    }
    sl = &s->v[s->n++];
    memset(sl, 0, sizeof(*sl));
    sl->index = index;
    return sl;
}

static bool is_packet(const struct ifaddrs *ifa)
{
    return ifa->ifa_addr != NULL && ifa->ifa_addr->sa_family == AF_PACKET;
}

static bool is_inet(const struct ifaddrs *ifa)
{
    return ifa->ifa_addr != NULL && (ifa->ifa_addr->sa_family == AF_INET ||
                                     ifa->ifa_addr->sa_family == AF_INET6);
}

/* The interface index of an address entry. IPv4 entries carry the
 * address label ("eth0:1"), which is not a link name; if_nametoindex
 * strips the alias part. */
static unsigned entry_index(const struct slots *s, const struct ifaddrs *ifa)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, ifa->ifa_name) == 0)
            return s->v[i].index;
    return if_nametoindex(ifa->ifa_name);
}

static int cmp_slot(const void *a, const void *b)
{
    const struct slot *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static unsigned prefix_len(const struct sockaddr *mask, int family)
{
    const unsigned char *p;
    size_t n;
    unsigned bits = 0;

    if (family == AF_INET) {
        if (mask == NULL)
            return 32;
        p = (const unsigned char *)&((const struct sockaddr_in *)
                                     (const void *)mask)->sin_addr;
        n = 4;
    } else {
        if (mask == NULL)
            return 128;
        p = ((const struct sockaddr_in6 *)(const void *)mask)
                ->sin6_addr.s6_addr;
        n = 16;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char b = p[i];
        while (b & 0x80) {
            bits++;
            b = (unsigned char)(b << 1);
        }
        if (p[i] != 0xff)
            break;
    }
    return bits;
}

static void fill_addr(nc_iface_addr *out, const struct ifaddrs *ifa,
                      unsigned index)
{
    int family = ifa->ifa_addr->sa_family;

    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        memcpy(&out->addr.u.in4, ifa->ifa_addr, sizeof(out->addr.u.in4));
        out->addr.u.in4.sin_port = 0;
        out->addr.len = sizeof(out->addr.u.in4);
    } else {
        struct sockaddr_in6 *in6 = &out->addr.u.in6;
        memcpy(in6, ifa->ifa_addr, sizeof(*in6));
        in6->sin6_port = 0;
        in6->sin6_flowinfo = 0;
        in6->sin6_scope_id =
            IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ? index : 0;
        out->addr.len = sizeof(*in6);
    }
    out->prefix_len = prefix_len(ifa->ifa_netmask, family);
}

static size_t align_up(size_t n)
{
    size_t a = alignof(max_align_t);
    return (n + a - 1) / a * a;
}

/* Count the interfaces and their addresses; owner[i] receives the index of
 * the interface that entry i of ifs belongs to (0: skipped). */
static int count_slots(struct ifaddrs *ifs, struct slots *s,
                       unsigned *owner)
{
    struct ifaddrs *ifa;
    size_t i;

    /* Link entries first: they give every interface's real name, even
     * those without any address. */
    for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
        unsigned index;
        struct slot *sl;
        if (!is_packet(ifa))
            continue;
        index = (unsigned)((const struct sockaddr_ll *)(const void *)
                           ifa->ifa_addr)->sll_ifindex;
        if (index == 0)
            continue;
        sl = slot_add(s, index);
        if (sl == NULL)
            return -ENOMEM;
        copy_name(sl->name, ifa->ifa_name);
        sl->flags = map_flags(ifa->ifa_flags);
    }
    for (ifa = ifs, i = 0; ifa != NULL; ifa = ifa->ifa_next, i++) {
        unsigned index;
        struct slot *sl;
        owner[i] = 0;
        if (is_packet(ifa))
            continue;
        index = entry_index(s, ifa);
        if (index == 0)
            continue;   /* the interface vanished meanwhile */
        sl = slot_add(s, index);
        if (sl == NULL)
            return -ENOMEM;
        if (sl->name[0] == '\0') {
            copy_name(sl->name, ifa->ifa_name);
            sl->name[strcspn(sl->name, ":")] = '\0';
            sl->flags = map_flags(ifa->ifa_flags);
        }
        if (!is_inet(ifa))
            continue;
        owner[i] = index;
        if (ifa->ifa_addr->sa_family == AF_INET)
            sl->n4++;
        else
            sl->n6++;
    }
    return 0;
}

/* Lay the list out in one block: list, interfaces, then addresses. */
static nc_iface_list *build_list(struct ifaddrs *ifs, struct slots *s,
                                 const unsigned *owner)
{
    size_t naddrs = 0, off_ifaces, off_addrs, pos = 0;
    nc_iface_list *list;
    nc_iface_addr *addrs;
    size_t *next4, *next6;
    struct ifaddrs *ifa;
    char *mem;
    size_t i;

    qsort(s->v, s->n, sizeof(*s->v), cmp_slot);
    for (i = 0; i < s->n; i++)
        naddrs += s->v[i].n4 + s->v[i].n6;
    off_ifaces = align_up(sizeof(*list));
    off_addrs = off_ifaces + align_up(s->n * sizeof(nc_iface));
    mem = calloc(1, off_addrs + naddrs * sizeof(nc_iface_addr));
    next4 = calloc(s->n ? s->n : 1, sizeof(*next4));
    next6 = calloc(s->n ? s->n : 1, sizeof(*next6));
    if (mem == NULL || next4 == NULL || next6 == NULL) {
        free(mem);
        free(next4);
        free(next6);
        return NULL;
    }
    list = (nc_iface_list *)(void *)mem;
    list->count = s->n;
    list->ifaces = (nc_iface *)(void *)(mem + off_ifaces);
    addrs = (nc_iface_addr *)(void *)(mem + off_addrs);
    for (i = 0; i < s->n; i++) {
        nc_iface *ifc = &list->ifaces[i];
        memcpy(ifc->name, s->v[i].name, sizeof(ifc->name));
        ifc->index = s->v[i].index;
        ifc->flags = s->v[i].flags;
        ifc->naddrs = s->v[i].n4 + s->v[i].n6;
        ifc->addrs = ifc->naddrs ? &addrs[pos] : NULL;
        next4[i] = pos;
        next6[i] = pos + s->v[i].n4;
        pos += ifc->naddrs;
    }
    for (ifa = ifs, i = 0; ifa != NULL; ifa = ifa->ifa_next, i++) {
        struct slot key;
        const struct slot *sl;
        size_t k;
        if (owner[i] == 0)
            continue;
        key.index = owner[i];
        sl = bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_slot);
        if (sl == NULL)
            continue;
        k = (size_t)(sl - s->v);
        if (ifa->ifa_addr->sa_family == AF_INET)
            fill_addr(&addrs[next4[k]++], ifa, owner[i]);
        else
            fill_addr(&addrs[next6[k]++], ifa, owner[i]);
    }
    free(next4);
    free(next6);
    return list;
}

int nc_iface_list_get(nc_iface_list **out)
{
    struct ifaddrs *ifs, *ifa;
    struct slots s = { NULL, 0, 0 };
    unsigned *owner;
    size_t entries = 0;
    int rc;

    if (out == NULL)
        return -EINVAL;
    if (getifaddrs(&ifs) != 0)
        return errno ? -errno : -ENOMEM;
    for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next)
        entries++;
    owner = calloc(entries ? entries : 1, sizeof(*owner));
    rc = owner ? count_slots(ifs, &s, owner) : -ENOMEM;
    if (rc == 0) {
        *out = build_list(ifs, &s, owner);
        if (*out == NULL)
            rc = -ENOMEM;
    }
    free(owner);
    free(s.v);
    freeifaddrs(ifs);
    return rc;
}

void nc_iface_list_free(nc_iface_list *list)
{
    free(list);
}

const nc_iface *nc_iface_find(const nc_iface_list *list, const char *name)
{
    if (list == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->ifaces[i].name, name) == 0)
            return &list->ifaces[i];
    return NULL;
}

/* The device of the IPv4 default route with the lowest metric, from
 * /proc/net/route (Iface Destination Gateway Flags RefCnt Use Metric
 * Mask ..., hex in host byte order). */
static bool default_route4(char name[NC_IFNAMSIZ])
{
    FILE *f = fopen("/proc/net/route", "re");
    unsigned long best = ULONG_MAX;
    char line[512];
    bool found = false;

    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL) {
        char dev[64];
        unsigned long dest, gw, flags, refcnt, use, metric, mask;
        if (sscanf(line, "%63s %lx %lx %lx %lu %lu %lu %lx", dev, &dest, &gw,
                   &flags, &refcnt, &use, &metric, &mask) != 8)
            continue;   /* the header line */
        if (dest != 0 || mask != 0 || !(flags & RTF_UP) ||
            (flags & RTF_REJECT) || metric >= best)
            continue;
        best = metric;
        copy_name(name, dev);
        found = true;
    }
    fclose(f);
    return found;
}

/* The device of the IPv6 default route (::/0) with the lowest metric,
 * from /proc/net/ipv6_route (dest plen src plen nexthop metric refcnt use
 * flags dev). The kernel lists unreachable defaults on "lo" with
 * RTF_REJECT: those are skipped. */
static bool default_route6(char name[NC_IFNAMSIZ])
{
    FILE *f = fopen("/proc/net/ipv6_route", "re");
    unsigned long best = ULONG_MAX;
    char line[512];
    bool found = false;

    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL) {
        char dest[33], src[33], hop[33], dev[64];
        unsigned plen, splen;
        unsigned long metric, refcnt, use, flags;
        if (sscanf(line, "%32s %x %32s %x %32s %lx %lx %lx %lx %63s", dest,
                   &plen, src, &splen, hop, &metric, &refcnt, &use, &flags,
                   dev) != 10)
            continue;
        if (strspn(dest, "0") != 32 || plen != 0 || !(flags & RTF_UP) ||
            (flags & RTF_REJECT) || strcmp(dev, "lo") == 0 ||
            metric >= best)
            continue;
        best = metric;
        copy_name(name, dev);
        found = true;
    }
    fclose(f);
    return found;
}

static bool remote_capable(const nc_iface *ifc)
{
    return (ifc->flags & NC_IFACE_UP) && !(ifc->flags & NC_IFACE_LOOPBACK);
}

const nc_iface *nc_iface_primary(const nc_iface_list *list)
{
    char name[NC_IFNAMSIZ];
    const nc_iface *ifc;

    if (list == NULL)
        return NULL;
    if (default_route4(name)) {
        ifc = nc_iface_find(list, name);
        if (ifc != NULL && remote_capable(ifc))
            return ifc;
    }
    if (default_route6(name)) {
        ifc = nc_iface_find(list, name);
        if (ifc != NULL && remote_capable(ifc))
            return ifc;
    }
    for (size_t i = 0; i < list->count; i++) {
        ifc = &list->ifaces[i];
        if (!remote_capable(ifc))
            continue;
        for (size_t k = 0; k < ifc->naddrs; k++)
            if (ifc->addrs[k].addr.u.sa.sa_family == AF_INET)
                return ifc;
    }
    return NULL;
}

/* Some up, non-loopback interface has an address of family (0: IPv4 or
 * IPv6). */
static bool has_remote_address(const nc_iface_list *list, int family)
{
    if (list == NULL)
        return false;
    for (size_t i = 0; i < list->count; i++) {
        const nc_iface *ifc = &list->ifaces[i];
        if (!remote_capable(ifc))
            continue;
        for (size_t k = 0; k < ifc->naddrs; k++)
            if (family == 0 || ifc->addrs[k].addr.u.sa.sa_family == family)
                return true;
    }
    return false;
}

/* A specific, non-loopback address counts as reachable: it was bound, so
 * it belongs to this host, and routing decides who reaches it. A wildcard
 * counts through the interfaces: [::] is dual-stack by default, so any
 * IPv4 or IPv6 address serves it; 0.0.0.0 needs an IPv4 one. */
bool nc_iface_reachable(const nc_iface_list *list, const nc_addr *bound,
                        size_t n)
{
    if (bound == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        const nc_addr *a = &bound[i];
        int family = a->u.sa.sa_family;
        if (family != AF_INET && family != AF_INET6)
            continue;
        if (nc_addr_is_loopback(a))
            continue;
        if (!nc_addr_is_any(a))
            return true;
        if (has_remote_address(list, family == AF_INET ? AF_INET : 0))
            return true;
    }
    return false;
}

/* Bounded text builder: remembers overflow instead of truncating. */
struct text {
    char *buf;
    size_t len, used;
    bool overflow;
};

static void add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->len - t->used) {
        t->overflow = true;
        return;
    }
    t->used += (size_t)n;
}

/* "192.0.2.2/24" or "fe80::1%eth0/64". */
static void add_iface_addr(struct text *t, const nc_iface *ifc,
                           const nc_iface_addr *ia)
{
    char host[INET6_ADDRSTRLEN];
    const nc_addr *a = &ia->addr;

    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.in4.sin_addr, host, sizeof(host));
        add(t, "  %s/%u", host, ia->prefix_len);
    } else {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host));
        if (a->u.in6.sin6_scope_id != 0)
            add(t, "  %s%%%s/%u", host, ifc->name, ia->prefix_len);
        else
            add(t, "  %s/%u", host, ia->prefix_len);
    }
}

/* The one port all bound IP addresses share, as text, else "PORT". */
static void common_port(const nc_addr *bound, size_t n, char out[16])
{
    unsigned port = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned p;
        int family = bound[i].u.sa.sa_family;
        if (family != AF_INET && family != AF_INET6)
            continue;
        p = nc_addr_port(&bound[i]);
        if (p == 0 || (port != 0 && p != port)) {
            port = 0;
            break;
        }
        port = p;
    }
    if (port != 0)
        snprintf(out, 16, "%u", port);
    else
        snprintf(out, 16, "PORT");
}

int nc_iface_reach_warning(const nc_iface_list *list, const nc_addr *bound,
                           size_t n, char *buf, size_t len)
{
    struct text t = { buf, len, 0, false };
    const nc_iface *primary, *suggest = NULL;
    bool all_local = true;
    char port[16];

    if (list == NULL || bound == NULL || n == 0 || buf == NULL)
        return -EINVAL;
    if (len == 0)
        return -ENOSPC;
    if (nc_iface_reachable(list, bound, n)) {
        buf[0] = '\0';
        return 0;
    }
    add(&t, "bound to ");
    for (size_t i = 0; i < n; i++) {
        char text[NC_ADDRSTRLEN];
        if (nc_addr_format(&bound[i], text, sizeof(text)) < 0)
            snprintf(text, sizeof(text), "(address family %d)",
                     bound[i].u.sa.sa_family);
        add(&t, "%s%s", i ? ", " : "", text);
        if (!nc_addr_is_loopback(&bound[i]))
            all_local = false;
    }
    add(&t, "\nonly this host can connect to it%s",
        all_local ? " (loopback addresses and Unix sockets cannot be "
                    "reached from other hosts)" : "");

    primary = nc_iface_primary(list);
    for (size_t i = 0; i < list->count; i++) {
        const nc_iface *ifc = &list->ifaces[i];
        if (!remote_capable(ifc) || ifc->naddrs == 0)
            continue;
        if (suggest == NULL) {
            add(&t, "\nother hosts could reach this server at:");
            suggest = ifc;
        }
        if (ifc == primary)
            suggest = ifc;
        add(&t, "\n  %s", ifc->name);
        for (size_t k = 0; k < ifc->naddrs; k++)
            add_iface_addr(&t, ifc, &ifc->addrs[k]);
    }
    if (suggest != NULL) {
        common_port(bound, n, port);
        add(&t, "\nbind an interface name such as %s:%s, an address above, "
            "or *:%s", suggest->name, port, port);
    } else {
        add(&t, "\nthis host has no interface other hosts can reach (no "
            "non-loopback interface is up with an address)");
    }
    if (t.overflow) {
        buf[0] = '\0';
        return -ENOSPC;
    }
    return (int)t.used;
}
