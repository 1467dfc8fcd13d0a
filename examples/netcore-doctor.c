/*
 * netcore-doctor - the usual "why can't it connect?" session as one
 * command.
 *
 *   netcore-doctor ifaces          interfaces, addresses, the primary one
 *   netcore-doctor port PORT       who listens on PORT, whether other hosts
 *                                  can reach it, sockets by TCP state
 *   netcore-doctor connect SPEC [--timeout SECONDS]
 *                                  try to connect and explain the outcome
 *                                  (SPEC may be a host name: host:port)
 *   netcore-doctor resolve NAME    what the resolver answers for NAME, from
 *                                  where, how fast, and which family Happy
 *                                  Eyeballs would try first
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netcore.h"
#include "common/args.h"
#include "common/netinfo.h"

#define PROG "netcore-doctor"
#define MAX_LISTENERS 256

/* ---- ifaces ---------------------------------------------------------------- */

/* The address other hosts would use: the first IPv4 one, else the first
 * IPv6 one that is not link-local. NULL if none. */
static const nc_addr *reachable_addr(const nc_iface *ifc)
{
    size_t i;

    for (i = 0; i < ifc->naddrs; i++)
        if (ifc->addrs[i].addr.u.sa.sa_family == AF_INET)
            return &ifc->addrs[i].addr;
    for (i = 0; i < ifc->naddrs; i++)
        if (!IN6_IS_ADDR_LINKLOCAL(&ifc->addrs[i].addr.u.in6.sin6_addr))
            return &ifc->addrs[i].addr;
    return NULL;
}

static int cmd_ifaces(const nc_iface_list *list)
{
    const nc_iface *primary = nc_iface_primary(list);
    const nc_addr *paddr = primary ? reachable_addr(primary) : NULL;
    char host[NC_ADDRSTRLEN];
    size_t i, j;

    for (i = 0; i < list->count; i++) {
        const nc_iface *ifc = &list->ifaces[i];
        printf("%s (index %u): %s%s%s%s\n", ifc->name, ifc->index,
               ifc->flags & NC_IFACE_UP ? "up" : "down",
               ifc->flags & NC_IFACE_RUNNING ? ", running" : "",
               ifc->flags & NC_IFACE_LOOPBACK ? ", loopback" : "",
               ifc == primary ? "  [primary]" : "");
        for (j = 0; j < ifc->naddrs; j++) {
            if (netinfo_host(&ifc->addrs[j].addr, host, sizeof host) < 0)
                continue;
            printf("    %s/%u\n", host, ifc->addrs[j].prefix_len);
        }
    }
    if (primary == NULL || paddr == NULL ||
        netinfo_host(paddr, host, sizeof host) < 0) {
        printf("primary: none (no up, non-loopback interface has an "
               "address: only this host can connect to servers here)\n");
        return 0;
    }
    printf("primary: %s %s\n", primary->name, host);
    printf("other hosts reach this host through %s; a server bound to "
           "%s:PORT, %s%s%s:PORT or *:PORT accepts them, one bound to "
           "127.0.0.1 does not\n", primary->name, primary->name,
           paddr->u.sa.sa_family == AF_INET6 ? "[" : "", host,
           paddr->u.sa.sa_family == AF_INET6 ? "]" : "");
    return 0;
}

/* ---- port ------------------------------------------------------------------ */

struct listen_entry {
    nc_addr addr;
    unsigned sockets;       /* several with SO_REUSEPORT */
};

struct port_report {
    uint16_t port;
    unsigned states[TCP_CLOSING + 1];
    struct listen_entry listeners[MAX_LISTENERS];
    size_t nlisteners;
};

/* /proc/net/tcp prints each 32-bit word of the address as the number it
 * is in memory (%08X of a __be32): reading it back as a number and
 * storing that number restores the bytes. */
static bool parse_proc_addr(const char *hex, int family, uint16_t port,
                            nc_addr *out)
{
    size_t words = family == AF_INET ? 1 : 4, i;
    uint32_t w[4];

    if (strlen(hex) != words * 8)
        return false;
    for (i = 0; i < words; i++) {
        char part[9];
        memcpy(part, hex + i * 8, 8);
        part[8] = '\0';
        w[i] = (uint32_t)strtoul(part, NULL, 16);
    }
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons(port);
        memcpy(&out->u.in4.sin_addr, w, 4);
        out->len = sizeof out->u.in4;
    } else {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        memcpy(&out->u.in6.sin6_addr, w, 16);
        out->len = sizeof out->u.in6;
    }
    return true;
}

static void add_listener(struct port_report *r, const nc_addr *a)
{
    size_t i;

    for (i = 0; i < r->nlisteners; i++) {
        if (r->listeners[i].addr.len == a->len &&
            memcmp(&r->listeners[i].addr.u, &a->u, a->len) == 0) {
            r->listeners[i].sockets++;
            return;
        }
    }
    if (r->nlisteners < MAX_LISTENERS) {
        r->listeners[r->nlisteners].addr = *a;
        r->listeners[r->nlisteners++].sockets = 1;
    }
}

/* Read one /proc/net/tcp{,6} table. Returns 0, or -errno if the file
 * cannot be opened. */
static int scan_proc(const char *path, int family, struct port_report *r)
{
    FILE *f = fopen(path, "r");
    char line[512];

    if (f == NULL)
        return -errno;
    if (fgets(line, sizeof line, f) == NULL) {   /* the header line */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char local[40], remote[40];
        unsigned lport, rport, state;
        nc_addr a;

        if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x",
                   local, &lport, remote, &rport, &state) != 5)
            continue;
        if (lport != r->port || state > TCP_CLOSING)
            continue;
        r->states[state]++;
        if (state == TCP_LISTEN && parse_proc_addr(local, family,
                                                   (uint16_t)lport, &a))
            add_listener(r, &a);
    }
    fclose(f);
    return 0;
}

static void print_listener(const nc_iface_list *list, const nc_iface *primary,
                           const struct listen_entry *e, uint16_t port)
{
    char text[NC_ADDRSTRLEN], host[NC_ADDRSTRLEN], where[64];
    const nc_addr *paddr = primary ? reachable_addr(primary) : NULL;

    if (nc_addr_format(&e->addr, text, sizeof text) < 0)
        snprintf(text, sizeof text, "(unprintable)");
    printf("  %s", text);
    if (e->sockets > 1)
        printf(" (%u sockets, SO_REUSEPORT)", e->sockets);
    if (nc_addr_is_loopback(&e->addr)) {
        printf(": LOOPBACK ONLY - other hosts cannot connect to it\n");
        if (paddr != NULL && netinfo_host(paddr, host, sizeof host) >= 0)
            printf("    bind %s%s%s:%u (%s) or *:%u instead\n",
                   paddr->u.sa.sa_family == AF_INET6 ? "[" : "", host,
                   paddr->u.sa.sa_family == AF_INET6 ? "]" : "",
                   (unsigned)port, primary->name, (unsigned)port);
        else
            printf("    bind *:%u instead (this host has no interface other "
                   "hosts can reach yet)\n", (unsigned)port);
    } else if (nc_iface_reachable(list, &e->addr, 1)) {
        printf(": other hosts can connect (%s)\n",
               netinfo_where(list, &e->addr, where, sizeof where));
    } else {
        printf(": other hosts cannot connect (%s is not up with a "
               "reachable address)\n",
               netinfo_where(list, &e->addr, where, sizeof where));
    }
}

static int cmd_port(const nc_iface_list *list, uint16_t port)
{
    struct port_report *r = calloc(1, sizeof *r);
    unsigned total = 0;
    size_t i;
    int s, err;

    if (r == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return 1;
    }
    r->port = port;
    err = scan_proc("/proc/net/tcp", AF_INET, r);
    if (err < 0) {
        fprintf(stderr, "%s: cannot read /proc/net/tcp: %s\n", PROG,
                nc_strerror(err));
        free(r);
        return 1;
    }
    scan_proc("/proc/net/tcp6", AF_INET6, r);   /* absent without IPv6 */

    printf("port %u\n", (unsigned)port);
    if (r->nlisteners == 0)
        printf("listening: nobody listens on TCP port %u\n", (unsigned)port);
    else
        printf("listening:\n");
    for (i = 0; i < r->nlisteners; i++)
        print_listener(list, nc_iface_primary(list), &r->listeners[i], port);

    printf("sockets with local port %u by TCP state:\n", (unsigned)port);
    for (s = 1; s <= TCP_CLOSING; s++) {
        if (r->states[s] == 0)
            continue;
        printf("  %-12s %u\n", nc_tcp_state_name(s), r->states[s]);
        total += r->states[s];
    }
    if (total == 0)
        printf("  (none)\n");
    if (r->states[TCP_CLOSE_WAIT] == 0) {
        printf("CLOSE_WAIT: none\n");
    } else {
        printf("CLOSE_WAIT: %u socket%s - the peers closed these "
               "connections but the program that owns them never closed "
               "its side; they stay until it calls close() (it must close "
               "when a read returns 0), each holding a descriptor\n",
               r->states[TCP_CLOSE_WAIT],
               r->states[TCP_CLOSE_WAIT] == 1 ? "" : "s");
    }
    free(r);
    return 0;
}

/* ---- connect ----------------------------------------------------------- */

struct tls_args {
    bool on;              /* --tls */
    const char *ca;       /* --tls-ca */
    const char *name;     /* --tls-name */
};

struct probe {
    const char *target;
    bool tls;
    char verify[PATH_MAX + 128];  /* what verification was set to check */
    int status;
};

/* What a TLS handshake agreed, or what the peer's certificate was when it
 * failed; then the verification: its outcome, and what it was set to
 * check (so that a failure before any certificate is not taken for
 * verification being off). */
static void print_tls(nc_conn *c, const struct probe *p)
{
    nc_tls_info t;
    char expiry[64] = "unknown";

    if (nc_conn_tls_info(c, &t) < 0)
        return;
    if (t.peer_not_after > 0) {
        time_t when = (time_t)t.peer_not_after;
        struct tm tm;
        if (gmtime_r(&when, &tm) != NULL)
            strftime(expiry, sizeof expiry, "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
    if (t.protocol[0] != '\0')
        printf("tls: %s, %s%s\n", t.protocol, t.cipher,
               t.resumed ? ", resumed session" : "");
    if (t.peer_subject[0] != '\0') {
        printf("certificate: %s\n", t.peer_subject);
        printf("  issued by: %s\n", t.peer_issuer);
        printf("  expires:   %s%s\n", expiry,
               t.peer_not_after > 0 && t.peer_not_after < (int64_t)time(NULL)
                   ? " (expired)" : "");
    }
    printf("verification: %s\n",
           t.peer_verified ? "ok (the chain and the name check out)"
           : t.verify_result != 0 ? "failed"
           : t.peer_subject[0] != '\0' ? "not finished: the handshake "
                                         "failed after the certificate"
           : "not reached: the handshake failed before the server showed "
             "a certificate");
    printf("  configured: %s\n", p->verify);
}

/* What verification checks: against which CAs, and which name (without
 * --tls-name, the library checks the host name connected to, or the
 * address). */
static void describe_verify(const struct tls_args *tls, const char *target,
                            char *buf, size_t len)
{
    char host[NC_ADDRSTRLEN + 256] = "connected to";
    const char *kind = "address";
    nc_endpoint ep;

    if (nc_endpoint_parse(&ep, target, NULL, 0) < 0) {
        /* main() checked it: a host name, which TLS follows. */
        const char *colon = strrchr(target, ':');
        snprintf(host, sizeof host, "%.*s",
                 (int)(colon ? colon - target : (long)strlen(target)), target);
        kind = "name";
    } else if (ep.kind == NC_EP_ADDR) {
        netinfo_host(&ep.addr, host, sizeof host);
    } else if (ep.kind == NC_EP_LOCALHOST) {
        snprintf(host, sizeof host, "connected to (127.0.0.1 or ::1)");
    }
    snprintf(buf, len, "%s%s, for the %s %s",
             tls->ca != NULL ? "the CAs in " : "the system's CA store",
             tls->ca != NULL ? tls->ca : "",
             tls->name != NULL ? "name" : kind,
             tls->name != NULL ? tls->name : host);
}

static void probe_open(nc_conn *c, void *ud)
{
    struct probe *p = ud;
    char local[NC_ADDRSTRLEN] = "?", peer[NC_ADDRSTRLEN] = "?";
    nc_addr a;
    nc_tcp_info ti;

    if (nc_conn_local_addr(c, &a) == 0)
        nc_addr_format(&a, local, sizeof local);
    if (nc_conn_peer_addr(c, &a) == 0)
        nc_addr_format(&a, peer, sizeof peer);
    printf("connected to %s: from %s to %s", p->target, local, peer);
    if (nc_conn_tcp_info(c, &ti) == 0)
        printf(", %s, rtt %.3f ms", ti.state_name, ti.rtt_us / 1000.0);
    printf("\nsomething is listening there and accepts connections\n");
    {
        /* For a host name: which address won, and what else was tried. */
        char how[1024];
        if (nc_conn_explain(c, how, sizeof how) > 0 &&
            strncmp(how, "connected to ", 13) == 0)
            printf("%s\n", how);
    }
    if (p->tls)
        print_tls(c, p);
    p->status = 0;
    nc_conn_close(c);
}

static void probe_close(nc_conn *c, nc_close_reason reason, int err,
                        void *ud)
{
    struct probe *p = ud;

    if (reason == NC_CLOSE_CONNECT_FAILED) {
        netinfo_print_connect_failure(stdout, PROG, p->target, err);
        netinfo_print_attempts(stdout, PROG, c, err);
    }
    if (reason == NC_CLOSE_TLS && p->status != 0) {
        printf("connected to %s, but the TLS handshake failed\n", p->target);
        print_tls(c, p);
        netinfo_print_connect_failure(stdout, PROG, p->target, err);
    }
    nc_loop_stop(nc_conn_loop(c));
}

static int cmd_connect(const char *target, uint32_t timeout_ms,
                       const struct tls_args *tls)
{
    nc_conn_callbacks cbs = {probe_open, NULL, NULL, probe_close};
    nc_connect_options opts;
    struct probe p = {target, tls->on, "", 1};
    nc_loop *loop;
    int err;

    memset(&opts, 0, sizeof opts);
    opts.conn.connect_timeout_ms = timeout_ms;
    if (tls->on) {
        nc_tls_options o;
        char why[512] = "";

        memset(&o, 0, sizeof o);
        o.ca_file = tls->ca;
        err = nc_tls_client_new(&o, &opts.tls, why, sizeof why);
        if (err < 0) {
            fprintf(stderr, "%s: cannot speak TLS: %s\n", PROG,
                    why[0] ? why : nc_strerror(err));
            return 1;
        }
        opts.server_name = tls->name;
        describe_verify(tls, target, p.verify, sizeof p.verify);
    }
    err = nc_loop_new(&loop);
    if (err < 0) {
        char why[512];
        fprintf(stderr, "%s: cannot create a loop: %s\n", PROG,
                netinfo_loop_trouble(err, why, sizeof why));
        nc_tls_ctx_free(opts.tls);
        return 1;
    }
    err = nc_connect(loop, target, &opts, &cbs, &p, NULL);
    if (err < 0)
        netinfo_print_connect_failure(stdout, PROG, target, err);
    else
        nc_loop_run(loop, NC_RUN_FOREVER);
    nc_loop_free(loop);
    nc_tls_ctx_free(opts.tls);
    fflush(stdout);
    return p.status;
}

/* ---- resolve --------------------------------------------------------------- */

static const char *family_name(const nc_addr *a)
{
    return a->u.sa.sa_family == AF_INET6 ? "IPv6" : "IPv4";
}

static void print_family(const char *what, int err)
{
    if (err == 1)
        return;
    printf("  %-11s %s\n", what, err == 0 ? "found"
           : err == -NC_EDNS_NO_ADDRESS ? "no address of this family"
           : nc_strerror(err));
}

static void resolved(nc_resolve_req *req, int err,
                     const nc_resolve_result *res, void *ud)
{
    int *status = ud;
    char text[NC_ADDRSTRLEN];
    size_t i;

    (void)req;
    printf("%s: ", res->name);
    if (err == 0)
        printf("%zu address%s", res->count, res->count == 1 ? "" : "es");
    else
        printf("%s (%s)", nc_strerror(err), nc_errname(err));
    printf(", from %s, in %.3f ms\n", res->source[0] ? res->source : "?",
           (double)res->elapsed_us / 1000.0);
    for (i = 0; i < res->count; i++) {
        if (netinfo_host(&res->addrs[i], text, sizeof text) < 0)
            continue;
        printf("  %-40s %s\n", text, family_name(&res->addrs[i]));
    }
    print_family("IPv6 (AAAA)", res->err6);
    print_family("IPv4 (A)", res->err4);
    if (err == 0) {
        printf("Happy Eyeballs (nc_connect) would try %s first", 
               family_name(&res->addrs[0]));
        if (netinfo_host(&res->addrs[0], text, sizeof text) >= 0)
            printf(" (%s)", text);
        printf("%s\n", res->count > 1 && res->err6 == 0 && res->err4 == 0
               ? ", then alternate the families every 250 ms until one "
                 "connects" : "");
        *status = 0;
    } else {
        printf("%s: %s\n", PROG, nc_explain(NC_OP_CONNECT, err));
    }
}

static int cmd_resolve(const char *name)
{
    nc_loop *loop;
    int status = 1;
    int err = nc_loop_new(&loop);

    if (err < 0) {
        char why[512];
        fprintf(stderr, "%s: cannot create a loop: %s\n", PROG,
                netinfo_loop_trouble(err, why, sizeof why));
        return 1;
    }
    printf("resolver: %s\n", nc_resolver_name());
    err = nc_resolve(loop, name, NC_FAMILY_ANY, resolved, &status, NULL);
    if (err < 0)
        printf("%s: cannot look '%s' up: %s\n", PROG, name,
               err == -EINVAL ? "not a host name" : nc_strerror(err));
    else
        nc_loop_run(loop, NC_RUN_DEFAULT);
    nc_loop_free(loop);
    fflush(stdout);
    return status;
}

/* ---- backend --------------------------------------------------------------- */

/* Which backends a loop can run on here, and which one it gets by
 * default; with only, whether that one runs (the exit status says). When
 * NC_BACKEND names no backend, or one that cannot run here, every
 * program that leaves the choice to it refuses to start: this says why,
 * and fails as they do. */
static int cmd_backend(const char *only)
{
    static const nc_backend all[] = {NC_BACKEND_EPOLL, NC_BACKEND_IO_URING};
    nc_backend dflt = NC_BACKEND_AUTO;
    const char *env = getenv("NC_BACKEND");
    char why[512];
    nc_loop *loop;
    int status = 0, env_err;
    size_t i;

    env_err = nc_loop_new(&loop);
    if (env_err == 0) {
        dflt = nc_loop_backend(loop);
        nc_loop_free(loop);
    }
    for (i = 0; i < sizeof all / sizeof all[0]; i++) {
        nc_loop_options o;
        int err;

        if (only && strcmp(only, nc_backend_name(all[i])) != 0)
            continue;
        memset(&o, 0, sizeof o);
        o.backend = all[i];
        err = nc_loop_new_with(&loop, &o);
        if (err == 0)
            nc_loop_free(loop);
        printf("%-9s %s%s%s\n", nc_backend_name(all[i]),
               err == 0 ? "available" : "unavailable: ",
               err == 0 ? "" : netinfo_backend_trouble(err),
               all[i] == dflt ? " (the default here)" : "");
        if (err < 0 && only)
            status = 1;
    }
    fflush(stdout);
    if (env_err < 0) {
        fprintf(stderr, "%s: programs that leave the choice to NC_BACKEND "
                "cannot start: %s\n", PROG,
                netinfo_loop_trouble(env_err, why, sizeof why));
        return 1;
    }
    if (!only && env != NULL && *env != '\0')
        printf("NC_BACKEND=%s chooses for programs that do not\n", env);
    return status;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    printf("usage: %s ifaces\n"
           "       %s port PORT\n"
           "       %s connect SPEC [--timeout SECONDS] [--tls [--tls-ca FILE] "
           "[--tls-name NAME]]\n"
           "       %s resolve NAME\n"
           "       %s backend [epoll|io_uring]\n"
           "  ifaces   every interface, its flags and addresses, and the "
           "primary one\n"
           "  port     who listens on TCP port PORT, whether other hosts "
           "can reach it,\n"
           "           and how many sockets on it are in each TCP state "
           "(CLOSE_WAIT flagged)\n"
           "  connect  try to connect to SPEC (an address, or "
           "host:port) and explain the\n"
           "           outcome (timeout default 5 s);\n"
           "           with --tls, also the handshake: protocol, cipher, "
           "certificate, expiry\n"
           "           and verification (against FILE's CAs or the "
           "system's, for NAME)\n"
           "  resolve  look NAME up as nc_connect would: the addresses, "
           "from which source\n"
           "           (hosts file or DNS server), how long it took, and "
           "the family\n"
           "           Happy Eyeballs would try first\n"
           "  backend  which event backends run here, and why one does not;\n"
           "           with a name, the exit status says whether it runs; "
           "status 1 also\n"
           "           when NC_BACKEND names no backend or one that cannot "
           "run, as\n"
           "           every program then refuses to start\n"
           "  --version  print the version and exit\n", PROG, PROG, PROG, PROG,
           PROG);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"tls", no_argument, NULL, 'T'},
        {"tls-ca", required_argument, NULL, 'A'},
        {"tls-name", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    uint32_t timeout_ms = 5000;
    struct tls_args tls = {false, NULL, NULL};
    nc_iface_list *list = NULL;
    const char *cmd;
    uint64_t port = 0;
    int c, nargs, err, status;

    /* Its report may go to a pipe whose reader leaves early. */
    signal(SIGPIPE, SIG_IGN);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (args_seconds_ms(optarg, &timeout_ms) < 0)
                args_usage_error(PROG, "--timeout '%s' is not a number of "
                                 "seconds", optarg);
            break;
        case 'T':
            tls.on = true;
            break;
        case 'A':
            tls.ca = optarg;
            break;
        case 'N':
            tls.name = optarg;
            break;
        case 'h':
            usage();
            return 0;
        case 'V':
            args_version(PROG);
        default:
            args_bad_option(PROG, c, optopt, argv, optind);
        }
    }
    if (optind >= argc)
        args_usage_error(PROG, "no command given (ifaces, port, connect, "
                         "resolve, backend)");
    cmd = argv[optind];
    nargs = argc - optind - 1;

    if (strcmp(cmd, "connect") == 0) {
        if (nargs != 1)
            args_usage_error(PROG, "connect takes one address");
        args_endpoint(PROG, "connect", argv[optind + 1], true, NULL);
        if (!tls.on && (tls.ca != NULL || tls.name != NULL))
            args_usage_error(PROG, "--tls-ca and --tls-name need --tls");
        return cmd_connect(argv[optind + 1], timeout_ms, &tls);
    }
    if (tls.on || tls.ca != NULL || tls.name != NULL)
        args_usage_error(PROG, "--tls goes with connect");
    if (strcmp(cmd, "resolve") == 0) {
        if (nargs != 1)
            args_usage_error(PROG, "resolve takes one host name");
        return cmd_resolve(argv[optind + 1]);
    }
    if (strcmp(cmd, "backend") == 0) {
        if (nargs > 1 || (nargs == 1 &&
                          strcmp(argv[optind + 1], "epoll") != 0 &&
                          strcmp(argv[optind + 1], "io_uring") != 0))
            args_usage_error(PROG, "backend takes epoll, io_uring or "
                             "nothing");
        return cmd_backend(nargs == 1 ? argv[optind + 1] : NULL);
    }
    if (strcmp(cmd, "port") == 0) {
        if (nargs != 1)
            args_usage_error(PROG, "port takes one port number");
        if (args_uint(argv[optind + 1], 1, 65535, &port) < 0)
            args_usage_error(PROG, "port '%s' is not a number from 1 to "
                             "65535", argv[optind + 1]);
    } else if (strcmp(cmd, "ifaces") == 0) {
        if (nargs != 0)
            args_usage_error(PROG, "ifaces takes no argument");
    } else {
        args_usage_error(PROG, "unknown command '%s' (ifaces, port, "
                         "connect, resolve, backend)", cmd);
    }

    err = nc_iface_list_get(&list);
    if (err < 0) {
        fprintf(stderr, "%s: cannot list interfaces: %s\n", PROG,
                nc_strerror(err));
        return 1;
    }
    status = port != 0 ? cmd_port(list, (uint16_t)port) : cmd_ifaces(list);
    nc_iface_list_free(list);
    return status;
}
