/*
 * netcore.h - libnetcore, a small, fast TCP networking library for Linux.
 *
 * The header netcore.h is the whole public API and its manual: the man
 * pages (one per function, and netcore(3) for the whole library) and
 * docs/api.md are generated from its comments.
 *
 * Conventions
 *
 * - Every function that can fail returns 0 (or a non-negative count or
 *   length) on success and a negative errno value on failure, such as
 *   -ECONNREFUSED, never -1 with errno. nc_strerror() gives the system's
 *   text for such a value, nc_errname() its symbolic name, and
 *   nc_explain() what it likely means, in plain words. Callbacks receive
 *   errors the same way (on_close's err).
 * - Objects are opaque and allocated by the library. Each has exactly one
 *   function that ends it, and each function's comment says who owns what:
 *
 *     object         created by           ended by             owner
 *     nc_loop        nc_loop_new()        nc_loop_free()       the caller
 *     nc_watch       nc_watch_start()     nc_watch_close()     the caller
 *     nc_timer       nc_timer_new()       nc_timer_free()      the caller
 *     nc_signal      nc_signal_start()    nc_signal_close()    the caller
 *     nc_listener    nc_listen()          nc_listener_close()  the caller
 *     nc_conn        accept, nc_connect() on_close returning   the library
 *     nc_resolve_req nc_resolve()         its callback returning, the library
 *                                         or nc_resolve_cancel()
 *     nc_iface_list  nc_iface_list_get()  nc_iface_list_free() the caller
 *     nc_workers     nc_workers_start()   nc_workers_free()    the caller
 *
 *   nc_loop_free() ends everything still alive on that loop, so after it
 *   returns every pointer to that loop's objects is invalid. Plain-data
 *   structs (nc_addr, nc_endpoint, nc_tcp_info, the option structs) belong
 *   to whoever holds them. Callback tables and option structs passed to
 *   nc_listen() and nc_connect() are copied: they need not outlive the
 *   call.
 * - A loop belongs to the thread that runs it. Every function taking a
 *   loop or an object of that loop (watcher, timer, signal handler,
 *   listener, connection) must be called from that thread, except the ones
 *   marked "any thread" (nc_loop_post, nc_loop_stop, nc_loop_stats_get),
 *   which any thread may call while the loop exists. The nc_workers_*
 *   functions are for any thread, some of them not a worker's own. Functions that take no loop and no object
 *   of a loop, and work only on their arguments (errors, addresses,
 *   interfaces, I/O outcomes, TCP state, the *_name functions), are safe
 *   from any thread. The "Thread:" line of each function says which
 *   applies.
 * - All callbacks run in the loop's thread, from inside nc_loop_run() (or
 *   nc_loop_free()). Closing or freeing any object from any callback,
 *   including its own, is always allowed.
 * - Every options struct gives the defaults when zeroed
 *   (nc_listener_options o = {0};), and a NULL options pointer means the
 *   same.
 * - There is no global state: create as many loops as threads you want,
 *   and use nc_listener_options.reuseport to share a port between them;
 *   nc_workers_start() and nc_workers_listen() do exactly that for you.
 * - The library never prints: messages (endpoint parse errors, the
 *   loopback warning, explanations) are handed to you as text.
 * - The library never raises SIGPIPE (it sends with MSG_NOSIGNAL), so a
 *   write to a reset peer becomes -EPIPE or a close with NC_CLOSE_RESET.
 *   Writes you make yourself on sockets must use MSG_NOSIGNAL too, or your
 *   program must ignore SIGPIPE.
 *
 * Building a program
 *
 *   cc app.c $(pkg-config --cflags --libs libnetcore)
 */

/*
 * The comment convention of this header. docs/gen-docs.awk reads it to
 * write the man pages and docs/api.md, and tests/check-docs.sh checks it;
 * keep to it when adding a declaration. Change these comments, never the
 * generated text: `make api-md` regenerates docs/api.md.
 *
 * - A declaration's comment comes right before it, with no blank line in
 *   between. One comment may cover several declarations that follow it
 *   together (nc_conn_read_stop and nc_conn_read_start).
 * - Its first paragraph is a one-sentence summary (the man page's NAME
 *   line). The paragraphs after it are the description: what it does and
 *   who owns what.
 * - Then, each at the start of a line, come the labelled parts, in this
 *   order, each running to the next label or the end of the comment:
 *     Returns:   what the function returns (every non-void function).
 *     Errors:    one negative errno per line, "-ENAME  meaning", with
 *                continuation lines indented deeper; or "Errors: none."
 *                (every function returning int).
 *     Thread:    "any thread" or "the loop's thread", then any note.
 *     See also:  related functions, comma-separated.
 * - Lines starting with "- " are list items (continued two spaces in);
 *   lines indented deeper than the text around them are shown verbatim.
 *   A paragraph of one line with no final punctuation is a heading.
 * - A section of the header starts with a banner comment: a line of
 *   dashes, the section's title, its introduction, and a line
 *   "Example: docs/examples/NAME.c" naming the complete program, compiled
 *   and run by make check, that every man page of the section shows.
 * - Comments inside a struct or enum describe its fields and stay as they
 *   are; the declaration is shown whole.
 */
#ifndef NETCORE_H
#define NETCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is exported from the shared library; the rest
 * of the library is built with hidden visibility. */
#pragma GCC visibility push(default)

/* ------------------------------------------------------------------------
 * Version
 *
 * The version of the header is in three macros; nc_version() gives the
 * version of the library the program runs with.
 *
 * Example: docs/examples/errors.c
 * ---------------------------------------------------------------------- */

/* The version of this header, as three numbers: 0.1.0.
 *
 * Compare them with nc_version() to detect a program that runs with
 * another version of the library than the header it was compiled with.
 */
#define NC_VERSION_MAJOR 0
#define NC_VERSION_MINOR 1
#define NC_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH".
 *
 * The string is built from the three NC_VERSION_* macros of the header the
 * library was compiled with; compare it with the macros of the header your
 * program was compiled with to detect a header/library mismatch.
 *
 * Returns: a static string, such as "0.1.0"; never NULL.
 * Thread: any thread.
 */
const char *nc_version(void);

/* ------------------------------------------------------------------------
 * Errors (lib/error.c, lib/explain.c)
 *
 * Every error is a negative errno value, or for a TLS failure a negative
 * NC_ETLS_* value, or for a host name that could not be looked up a
 * negative NC_EDNS_* value (both above any errno). These functions turn
 * one into text for a log: the description, the symbolic name, and a
 * plain-words explanation of the likely cause for a given operation.
 *
 * Example: docs/examples/errors.c
 * ---------------------------------------------------------------------- */

/* TLS failures, reported as negative values (-NC_ETLS_CERT_EXPIRED) like
 * errno values, in a range no errno uses. nc_strerror(), nc_errname() and
 * nc_explain() know them. */
enum {
    NC_ETLS_NOT_TLS = 4096,  /* the peer does not speak TLS (plain HTTP
                                sent to a TLS port, or the reverse) */
    NC_ETLS_VERSION,         /* no TLS version both sides accept */
    NC_ETLS_CERT_EXPIRED,    /* the peer's certificate expired (or is not
                                valid yet) */
    NC_ETLS_CERT_UNTRUSTED,  /* the peer's certificate is not signed by a
                                CA we trust (unknown CA, self-signed) */
    NC_ETLS_CERT_NAME,       /* the peer's certificate is for another name
                                or address */
    NC_ETLS_NO_CERT,         /* a certificate was required and the peer
                                sent none */
    NC_ETLS_PEER_REJECTED,   /* the peer refused our certificate or our
                                handshake (it sent an alert) */
    NC_ETLS_TRUNCATED,       /* the peer closed without TLS's close_notify:
                                the end may be an attack or a crash */
    NC_ETLS_PROTOCOL,        /* malformed or unexpected TLS data */
    NC_ETLS_RENEGOTIATION,   /* the peer asked to renegotiate: refused */
    NC_ETLS_LAST = NC_ETLS_RENEGOTIATION
};

/* Failures to look a host name up (nc_resolve(), nc_connect() to a
 * name), reported as negative values (-NC_EDNS_NOT_FOUND) in a range no
 * errno uses, above the TLS ones. nc_strerror(), nc_errname() and
 * nc_explain() know them. */
enum {
    NC_EDNS_NOT_FOUND = 4160, /* no such host name: the DNS says it does
                                 not exist (NXDOMAIN), and no hosts file
                                 has it */
    NC_EDNS_NO_ADDRESS,       /* the name exists but has no address of the
                                 family asked (no AAAA, or no A, record) */
    NC_EDNS_SERVER_FAILED,    /* the DNS server could not answer
                                 (SERVFAIL); without c-ares also a server
                                 that did not answer in time (getaddrinfo
                                 cannot tell the two apart) */
    NC_EDNS_REFUSED,          /* the DNS server refused to answer
                                 (REFUSED): it serves other clients */
    NC_EDNS_TIMEOUT,          /* no DNS server answered in time */
    NC_EDNS_NO_SERVER,        /* no DNS server could be reached (its port
                                 is closed), or none is configured */
    NC_EDNS_BAD_ANSWER,       /* the server's answer was malformed, or it
                                 does not implement the query */
    NC_EDNS_LAST = NC_EDNS_BAD_ANSWER
};

/* The system's text for an errno value (or an NC_ETLS_* value).
 *
 * Accepts err < 0 (as returned by this library) or > 0: -ECONNREFUSED and
 * ECONNREFUSED both give "Connection refused". The text is independent of
 * the locale (glibc's strerrordesc_np).
 *
 * Returns: a static string, never NULL: "Success" for 0, "Unknown error"
 * for values neither the C library nor this one knows.
 * Thread: any thread.
 * See also: nc_errname, nc_explain
 */
const char *nc_strerror(int err);

/* The symbolic name of an errno value, such as "ECONNREFUSED".
 *
 * Accepts either sign: -ECONNREFUSED and ECONNREFUSED give the same name.
 * NC_ETLS_* values are named too ("NC_ETLS_CERT_EXPIRED").
 *
 * Returns: a static string, never NULL: "0" for 0 and "E?" for values the
 * C library does not know.
 * Thread: any thread.
 * See also: nc_strerror, nc_explain
 */
const char *nc_errname(int err);

/* What an operation was doing, for nc_explain() and nc_io_classify(). */
typedef enum nc_op {
    NC_OP_READ = 1,
    NC_OP_WRITE,
    NC_OP_ACCEPT,
    NC_OP_CONNECT,
    NC_OP_BIND
} nc_op;

/* A plain-words explanation of the likely cause of error err during op.
 *
 * The text is written for the person reading a log, and says what to
 * check: for NC_OP_CONNECT and -ECONNREFUSED, that nothing listens at that
 * address and that the server may be bound to loopback (127.0.0.1) only.
 * err may have either sign. The same errno gets different texts for
 * different operations: EADDRNOTAVAIL on NC_OP_BIND means the address is
 * not on this host, on NC_OP_CONNECT that the local ports are exhausted.
 * The texts for connect failures are quoted in docs/pitfalls.md.
 *
 * For nc_listen() use NC_OP_BIND, for nc_connect() NC_OP_CONNECT: their
 * endpoint errors (-EINVAL malformed text, -ERANGE a port over 65535,
 * -ENODEV an unknown interface, -ENAMETOOLONG) are explained as such, and
 * -ENOENT after NC_OP_CONNECT as a Unix socket path nobody listens on.
 * The NC_EDNS_* values of a failed lookup are explained the same for
 * every operation (NXDOMAIN, SERVFAIL, a silent server...).
 * The message naming the exact fault comes from the errbuf of the
 * options (see nc_listen).
 *
 *   fprintf(stderr, "connect: %s: %s\n", nc_strerror(err),
 *           nc_explain(NC_OP_CONNECT, err));
 *
 * Returns: a static string, never NULL; for errors without a specific
 * explanation, the generic sentence "no specific explanation for this
 * error during this operation; see the system error text".
 * Thread: any thread.
 * See also: nc_strerror, nc_errname
 */
const char *nc_explain(nc_op op, int err);

/* ------------------------------------------------------------------------
 * Addresses and endpoint strings (lib/addr.c)
 *
 * Endpoint grammar, used everywhere an address is taken:
 *
 *   192.168.1.104:7000        IPv4 literal (dotted quad only)
 *   [::1]:7000                IPv6 literal (brackets required with a port)
 *   [fe80::1%enp0s3]:7000     IPv6 link-local with a scope, by name or index
 *   enp0s3:7000               an interface name: all of its addresses
 *   *:7000  :7000  7000       all addresses (IPv6 dual-stack plus IPv4)
 *   localhost:7000            127.0.0.1 and ::1 (no DNS)
 *   example.com:443           a host name with a dot: nc_connect() only,
 *                             which looks it up (see "Host names")
 *   unix:/path/to/socket      a Unix-domain stream socket (unix:rel too)
 *   unix:@name                a Linux abstract Unix socket (no file; the
 *                             address starts with a NUL byte)
 *
 * Port 0 lets the kernel pick (read the real one back from the listener).
 * Ports are decimal digits only (no sign, spaces or hex), 0 to 65535.
 * Literals are parsed with inet_pton only, so short or octal IPv4 forms
 * (127.1, 01.2.3.4) are rejected. "localhost" is case-insensitive. A scope
 * is required on link-local addresses (fe80::/10, ff01::/16, ff02::/16)
 * and rejected on all others, because the kernel would fail or silently
 * ignore it. nc_endpoint_parse() and nc_listen() never look host names
 * up: an unknown name is reported as an unknown interface, with a hint;
 * nc_connect() looks up the names that cannot be anything else (see
 * "Host names").
 *
 * Example: docs/examples/addresses.c
 * ---------------------------------------------------------------------- */

/* Longest text nc_addr_format() or nc_endpoint_format() can produce,
 * including the terminating NUL. */
#define NC_ADDRSTRLEN 128
/* Longest interface name, including the NUL (IFNAMSIZ). */
#define NC_IFNAMSIZ 16

/* One concrete socket address: IPv4, IPv6 (with scope id) or Unix.
 *
 * Plain data, owned by whoever holds it. len is the length to pass to
 * bind() or connect(): bind(fd, &a.u.sa, a.len).
 */
typedef struct nc_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage storage;
    } u;
    socklen_t len;
} nc_addr;

/* The kind of a parsed endpoint string. */
typedef enum nc_endpoint_kind {
    NC_EP_ADDR = 1,   /* one literal address (IPv4 or IPv6, maybe scoped) */
    NC_EP_ANY,        /* all addresses: "*:P", ":P", "P" */
    NC_EP_IFACE,      /* every address of the interface in .iface */
    NC_EP_LOCALHOST,  /* "localhost:P": 127.0.0.1 and ::1 */
    NC_EP_UNIX        /* "unix:/path" */
} nc_endpoint_kind;

/* A parsed endpoint string.
 *
 * Plain data. For NC_EP_ADDR the port field is authoritative:
 * nc_endpoint_format() and nc_endpoint_resolve() use it rather than the
 * port inside addr.
 */
typedef struct nc_endpoint {
    nc_endpoint_kind kind;
    uint16_t port;             /* host byte order; unused for NC_EP_UNIX */
    char iface[NC_IFNAMSIZ];   /* NC_EP_IFACE: the interface name */
    nc_addr addr;              /* NC_EP_ADDR and NC_EP_UNIX: the address */
} nc_endpoint;

/* Parse an endpoint string into *ep.
 *
 * On failure *ep is unchanged and, when why is not NULL, a one-line
 * message naming what is wrong is written into why (truncated to whylen
 * bytes, always NUL-terminated), for example:
 *
 *   port 70000 is out of range (0-65535)
 *   missing ']' after IPv6 address
 *   unknown interface 'eth9'
 *   link-local address fe80::1 needs a scope, e.g. [fe80::1%eth0]:PORT
 *   'fe80::1:7000' is ambiguous: put the IPv6 address in brackets, e.g.
 *   [fe80::1]:7000
 *
 * On success why is set to the empty string. Does no DNS; checks that a
 * named interface or scope exists (if_nametoindex).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL        malformed text, or a NULL ep or text
 *   -ERANGE        the port is out of range (0-65535)
 *   -ENODEV        unknown interface or scope
 *   -ENAMETOOLONG  a Unix path over 107 bytes, or an interface name over
 *                  15
 * Thread: any thread.
 * See also: nc_endpoint_format, nc_endpoint_resolve
 */
int nc_endpoint_parse(nc_endpoint *ep, const char *text, char *why,
                      size_t whylen);

/* Write ep as an endpoint string.
 *
 * The text is one that nc_endpoint_parse() reads back to the same value:
 * "*:P", "localhost:P", "eth0:P", an address as nc_addr_format() writes
 * it, or "unix:...". NC_ADDRSTRLEN bytes are always enough.
 *
 * Returns: the length written into buf (excluding the NUL), or a negative
 * errno.
 * Errors:
 *   -EINVAL  a NULL or inconsistent endpoint
 *   -ENOSPC  buf (len bytes) is too small; buf is then emptied
 * Thread: any thread.
 * See also: nc_endpoint_parse, nc_addr_format
 */
int nc_endpoint_format(const nc_endpoint *ep, char *buf, size_t len);

/* The concrete addresses an endpoint stands for.
 *
 * They come in the order a listener binds them: NC_EP_ADDR and NC_EP_UNIX
 * one; NC_EP_LOCALHOST 127.0.0.1 then ::1; NC_EP_ANY [::] then 0.0.0.0;
 * NC_EP_IFACE every IPv4 then every IPv6 address of the interface, from a
 * fresh interface snapshot (link-local ones with their scope id). All
 * have ep->port. Writes at most max addresses into out and the total
 * into *count (call with max 0 to count).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL         a NULL ep or count, a NULL out with max > 0, or a bad
 *                   endpoint
 *   -ENODEV         the interface is gone
 *   -EADDRNOTAVAIL  the interface has no address
 *   -ENOMEM         out of memory
 * Thread: any thread.
 * See also: nc_endpoint_parse, nc_listen
 */
int nc_endpoint_resolve(const nc_endpoint *ep, nc_addr *out, size_t max,
                        size_t *count);

/* Write an address as an endpoint string.
 *
 * The forms are "192.0.2.1:7000", "[::1]:7000", "[fe80::1%eth0]:7000"
 * (the scope by interface name, or by number if the interface is gone),
 * "unix:/path" and "unix:@name"; an unnamed Unix socket (a client that
 * never bound, as accept sees it) is "unix:". NC_ADDRSTRLEN bytes are
 * always enough.
 *
 * Returns: the length written into buf (excluding the NUL), or a negative
 * errno.
 * Errors:
 *   -EINVAL  a NULL argument, an unsupported family, or an abstract name
 *            containing a NUL
 *   -ENOSPC  buf (len bytes) is too small; buf is then emptied
 * Thread: any thread.
 * See also: nc_endpoint_format, nc_addr_from_sockaddr
 */
int nc_addr_format(const nc_addr *a, char *buf, size_t len);

/* Build an nc_addr from a sockaddr.
 *
 * sa is len bytes long, as returned by accept(), getsockname() or
 * getpeername().
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL        a NULL argument, or len too short for the family or
 *                  longer than the family's struct
 *   -EAFNOSUPPORT  the family is not AF_INET, AF_INET6 or AF_UNIX
 * Thread: any thread.
 * See also: nc_addr_format
 */
int nc_addr_from_sockaddr(nc_addr *out, const struct sockaddr *sa,
                          socklen_t len);

/* The port of an IPv4 or IPv6 address, in host byte order.
 *
 * Returns: the port; 0 for a Unix address and for NULL.
 * Thread: any thread.
 */
uint16_t nc_addr_port(const nc_addr *a);

/* Whether only this host can connect to an address.
 *
 * True for a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z) and
 * for every Unix socket address.
 *
 * Returns: true or false; false for NULL.
 * Thread: any thread.
 * See also: nc_addr_is_any, nc_iface_reachable
 */
bool nc_addr_is_loopback(const nc_addr *a);

/* Whether an address is the wildcard address (0.0.0.0 or ::).
 *
 * Returns: true or false; false for NULL.
 * Thread: any thread.
 * See also: nc_addr_is_loopback
 */
bool nc_addr_is_any(const nc_addr *a);

/* ------------------------------------------------------------------------
 * Interfaces (lib/iface.c)
 *
 * A snapshot of the machine's network interfaces and their addresses
 * (from getifaddrs), and the answer to the question a server should ask
 * after binding: can another host reach me?
 *
 * Example: docs/examples/interfaces.c
 * ---------------------------------------------------------------------- */

/* Bits of nc_iface.flags, from IFF_UP, IFF_RUNNING and IFF_LOOPBACK. */
enum {
    NC_IFACE_UP = 1u << 0,
    NC_IFACE_RUNNING = 1u << 1,
    NC_IFACE_LOOPBACK = 1u << 2
};

/* One address of an interface, with its prefix length (/24, /64). */
typedef struct nc_iface_addr {
    nc_addr addr;          /* port 0; IPv6 link-local carries its scope */
    unsigned prefix_len;
} nc_iface_addr;

/* One network interface.
 *
 * Interfaces without addresses are listed too (naddrs 0, addrs NULL).
 * IPv4 alias labels (eth0:1) are folded into their interface.
 */
typedef struct nc_iface {
    char name[NC_IFNAMSIZ];
    unsigned index;        /* if_nametoindex */
    unsigned flags;        /* NC_IFACE_* */
    size_t naddrs;
    nc_iface_addr *addrs;  /* IPv4 first, then IPv6, each in kernel order */
} nc_iface;

/* A snapshot of the machine's interfaces. */
typedef struct nc_iface_list {
    size_t count;
    nc_iface *ifaces;      /* in index order */
} nc_iface_list;

/* Take a snapshot of every interface and its IPv4 and IPv6 addresses.
 *
 * The caller owns *out (one allocation) and frees it with
 * nc_iface_list_free(). A list may be read from several threads.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  out is NULL
 *   -ENOMEM  out of memory
 *   any other errno that getifaddrs() reports
 * Thread: any thread.
 * See also: nc_iface_list_free, nc_iface_find, nc_iface_primary
 */
int nc_iface_list_get(nc_iface_list **out);

/* Free a list from nc_iface_list_get().
 *
 * NULL is allowed. Every nc_iface pointer into the list is invalid
 * afterwards.
 *
 * Thread: any thread.
 * See also: nc_iface_list_get
 */
void nc_iface_list_free(nc_iface_list *list);

/* The interface called name in a list.
 *
 * Returns: a pointer into list, or NULL if there is no such interface.
 * Thread: any thread.
 * See also: nc_iface_primary, nc_iface_list_get
 */
const nc_iface *nc_iface_find(const nc_iface_list *list, const char *name);

/* The primary non-loopback interface.
 *
 * That is the interface of the IPv4 default route with the lowest metric
 * (from /proc/net/route) if it is up and not loopback, else that of the
 * IPv6 default route (/proc/net/ipv6_route; reject routes are skipped),
 * else the first up, non-loopback interface with an IPv4 address.
 *
 * Returns: a pointer into list, or NULL if there is no such interface.
 * Thread: any thread.
 * See also: nc_iface_find, nc_iface_reach_warning
 */
const nc_iface *nc_iface_primary(const nc_iface_list *list);

/* Whether another host could connect to one of n bound addresses.
 *
 * A specific non-loopback IP address counts (it is on this host). A
 * wildcard address counts when some up, non-loopback interface has an
 * address it serves: any address for [::] (dual-stack), an IPv4 one for
 * 0.0.0.0. Loopback and Unix addresses never count.
 *
 * Returns: true if at least one of the n addresses in bound is reachable
 * from another host, else false.
 * Thread: any thread.
 * See also: nc_iface_reach_warning, nc_addr_is_loopback
 */
bool nc_iface_reachable(const nc_iface_list *list, const nc_addr *bound,
                        size_t n);

/* The warning a server should show when no other host can reach it.
 *
 * When no other host can reach the n bound addresses, write into buf what
 * is bound, that only this host can connect, and every up, non-loopback
 * interface with its addresses, then a suggestion (the primary interface's
 * name with the common port), or that this host has no reachable
 * interface. Multi-line text, no trailing newline; the exact text is shown
 * in docs/pitfalls.md. The library never prints it by itself: a server
 * calls this after nc_listen(), with the addresses from
 * nc_listener_addr():
 *
 *   nc_addr a[32];
 *   size_t n = nc_listener_count(l);
 *   nc_iface_list *ifs;
 *   char msg[2048];
 *   for (size_t i = 0; i < n && i < 32; i++)
 *       nc_listener_addr(l, i, &a[i]);
 *   if (nc_iface_list_get(&ifs) == 0) {
 *       if (nc_iface_reach_warning(ifs, a, n < 32 ? n : 32, msg,
 *                                  sizeof msg) > 0)
 *           fprintf(stderr, "warning: %s\n", msg);
 *       nc_iface_list_free(ifs);
 *   }
 *
 * Returns: the length of the warning (excluding the NUL); 0, with buf[0]
 * set to '\0', when the addresses are reachable; or a negative errno.
 * Errors:
 *   -ENOSPC  buf (len bytes) is too small; nothing partial is written,
 *            buf is emptied
 *   -EINVAL  a NULL list, bound or buf, or n is 0
 * Thread: any thread.
 * See also: nc_iface_reachable, nc_listener_addr
 */
int nc_iface_reach_warning(const nc_iface_list *list, const nc_addr *bound,
                           size_t n, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * I/O outcomes and TCP state (lib/io.c)
 *
 * What the result of one system call on a non-blocking socket means, and
 * a TCP socket's state from TCP_INFO.
 *
 * Example: docs/examples/io.c
 * ---------------------------------------------------------------------- */

/* The outcome of one read/write/accept/connect call on a non-blocking
 * socket. */
typedef enum nc_io_outcome {
    NC_IO_PROGRESS = 0,  /* it did something: bytes moved, fd accepted */
    NC_IO_AGAIN,         /* would block (EAGAIN or EWOULDBLOCK), or a
                            connect in progress: wait for readiness */
    NC_IO_INTR,          /* interrupted by a signal (EINTR): just retry */
    NC_IO_EOF,           /* read returned 0: the peer closed its side */
    NC_IO_RESET,         /* the peer is gone: ECONNRESET, EPIPE,
                            ECONNABORTED, ETIMEDOUT, EPROTO on accept */
    NC_IO_ERROR          /* anything else: a real error */
} nc_io_outcome;

/* Classify the result of a system call on a non-blocking socket.
 *
 * ret is the call's return value and errnum the errno it left (either
 * sign; read only when ret < 0). EAGAIN and EWOULDBLOCK are both checked,
 * even where they are equal. The library uses it for every socket call it
 * makes:
 *
 *   ret > 0; ret == 0 except for NC_OP_READ         NC_IO_PROGRESS
 *   ret == 0 for NC_OP_READ                         NC_IO_EOF
 *   EAGAIN or EWOULDBLOCK, any op                   NC_IO_AGAIN
 *   EINPROGRESS, EALREADY for NC_OP_CONNECT         NC_IO_AGAIN
 *   EINTR                                           NC_IO_INTR
 *   ECONNRESET, EPIPE, ECONNABORTED, ETIMEDOUT      NC_IO_RESET
 *   ENOTCONN, EHOSTUNREACH, ENETUNREACH on read or
 *   write                                           NC_IO_RESET
 *   EPROTO on accept                                NC_IO_RESET
 *   anything else (ECONNREFUSED, EMFILE, ...)       NC_IO_ERROR
 *
 * Returns: the outcome.
 * Thread: any thread.
 * See also: nc_io_outcome_name
 */
nc_io_outcome nc_io_classify(nc_op op, ssize_t ret, int errnum);

/* The name of an I/O outcome.
 *
 * Returns: "progress", "would block", "interrupted", "end of stream",
 * "reset" or "error"; "unknown" for other values. A static string.
 * Thread: any thread.
 * See also: nc_io_classify
 */
const char *nc_io_outcome_name(nc_io_outcome o);

/* A TCP socket's state and its most useful counters, from TCP_INFO. */
typedef struct nc_tcp_info {
    int state;               /* the kernel's TCP_ESTABLISHED .. TCP_CLOSING */
    const char *state_name;  /* "ESTABLISHED", "CLOSE_WAIT", ... static */
    uint32_t rtt_us;         /* smoothed round-trip time */
    uint32_t rttvar_us;
    uint32_t retransmits;    /* retransmits of the current segment */
    uint32_t total_retrans;
    uint32_t unacked;        /* segments sent and not yet acknowledged */
    uint32_t lost;
    uint32_t snd_cwnd;
    uint32_t rcv_space;
} nc_tcp_info;

/* Read a TCP socket's state and counters.
 *
 * Uses getsockopt(TCP_INFO) on fd: state is the kernel's TCP_ESTABLISHED
 * (1) .. TCP_CLOSING (11), state_name its static name, then the smoothed
 * round-trip time and its variance in microseconds, retransmits of the
 * current segment, total retransmits, unacknowledged and lost segments,
 * the congestion window and the receive space. Once a connection enters
 * TIME_WAIT the socket behind the fd reports CLOSE; ss and netstat show
 * the TIME_WAIT entry.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EBADF       fd is negative or not open
 *   -ENOTSOCK    fd is not a socket
 *   -EOPNOTSUPP  not an IPv4 or IPv6 TCP socket (a Unix or UDP socket)
 *   -EINVAL      out is NULL
 *   any other errno that getsockopt() reports
 * Thread: any thread.
 * See also: nc_tcp_state_name, nc_conn_tcp_info
 */
int nc_tcp_info_get(int fd, nc_tcp_info *out);

/* The name of a kernel TCP state number.
 *
 * Returns: for 1 to 11, "ESTABLISHED", "SYN_SENT", "SYN_RECV",
 * "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
 * "LAST_ACK", "LISTEN", "CLOSING"; "UNKNOWN" otherwise. A static string.
 * Thread: any thread.
 * See also: nc_tcp_info_get
 */
const char *nc_tcp_state_name(int state);

/* ------------------------------------------------------------------------
 * Event loop (lib/loop.c, lib/backend_epoll.c, lib/backend_uring.c)
 *
 * One kernel interface per loop, its backend: io_uring where it works,
 * epoll otherwise (see nc_backend), with timers, deferred calls and calls
 * posted from other threads. One iteration: read the clock, wait (up to
 * the next timer deadline; with io_uring, the same system call submits
 * the iteration's sends), read the clock again, dispatch what happened,
 * fire due timers, run deferred calls. Every promise of this header holds
 * on both backends.
 *
 * Example: docs/examples/loop.c
 * ---------------------------------------------------------------------- */

/* An event loop (opaque). */
typedef struct nc_loop nc_loop;

/* Create a loop.
 *
 * The same as nc_loop_new_with(out, NULL): the backend is chosen by the
 * NC_BACKEND environment variable, or automatically (io_uring where it
 * works, epoll otherwise). The caller owns *out and frees it with
 * nc_loop_free(); on failure *out is not written. Any thread may create a
 * loop; it then belongs to the thread that runs it.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL   out is NULL, or NC_BACKEND names no backend
 *   -ENOTSUP  NC_BACKEND=io_uring, but built without liburing
 *   -ENOSYS   NC_BACKEND=io_uring, but the kernel cannot run it
 *   -EPERM    NC_BACKEND=io_uring, but it is forbidden here
 *   -ENOMEM   out of memory
 *   -EMFILE   the process has no descriptor left
 *   any other errno of nc_loop_new_with()
 * Thread: any thread.
 * See also: nc_loop_new_with, nc_loop_free, nc_loop_run
 */
int nc_loop_new(nc_loop **out);

/* The kernel interface a loop runs on.
 *
 * NC_BACKEND_EPOLL: level-triggered epoll; the library reads and writes
 * with system calls of its own (about three per request and response).
 * NC_BACKEND_IO_URING: io_uring (Linux 6.0 or later, and liburing at
 * build time): connections are accepted, received (into a ring of
 * buffers the loop owns and lends for the duration of on_data) and sent
 * by requests, and one io_uring_enter() per iteration both submits and
 * waits (about one system call per request and response). NC_BACKEND_AUTO
 * asks for io_uring where it works and epoll otherwise.
 */
typedef enum nc_backend {
    NC_BACKEND_AUTO = 0,
    NC_BACKEND_EPOLL,
    NC_BACKEND_IO_URING
} nc_backend;

/* Options of nc_loop_new_with(). Zero (or NULL) means the defaults. */
typedef struct nc_loop_options {
    /* NC_BACKEND_AUTO (0): the NC_BACKEND environment variable ("epoll"
     * or "io_uring") if set, else io_uring where it works, else epoll. An
     * explicit choice here wins over the environment. */
    nc_backend backend;
} nc_loop_options;

/* Create a loop with options (NULL: the defaults).
 *
 * An explicit backend (here or in NC_BACKEND) that cannot run is an
 * error, never a silent fallback; NC_BACKEND_AUTO falls back to epoll
 * when io_uring is missing, disabled (kernel.io_uring_disabled), refused
 * by a seccomp filter, or too old. The loop's descriptors are
 * close-on-exec. The caller owns *out and frees it with nc_loop_free();
 * on failure *out is not written.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL   out is NULL, o->backend is not an nc_backend, or NC_BACKEND
 *             names none ("epoll" and "io_uring" are valid)
 *   -ENOTSUP  io_uring asked for, but this libnetcore was built without
 *             liburing
 *   -ENOSYS   io_uring asked for, but the kernel has no io_uring, or one
 *             older than 6.0, or a seccomp filter answers ENOSYS
 *   -EPERM    io_uring asked for, but kernel.io_uring_disabled or a
 *             seccomp filter forbids it
 *   -ENOMEM   out of memory
 *   -EMFILE   the process has no descriptor left
 *   -ENFILE   the system has no descriptor left
 *   any other errno that epoll_create1(), eventfd() or io_uring_setup()
 *   reports
 * Thread: any thread.
 * See also: nc_loop_backend, nc_backend_name
 */
int nc_loop_new_with(nc_loop **out, const nc_loop_options *o);

/* The backend loop runs on: NC_BACKEND_EPOLL or NC_BACKEND_IO_URING
 * (never NC_BACKEND_AUTO).
 *
 * Returns: the backend; NC_BACKEND_AUTO for NULL.
 * Thread: any thread.
 * See also: nc_loop_new_with, nc_backend_name
 */
nc_backend nc_loop_backend(const nc_loop *loop);

/* A backend's name: "epoll", "io_uring" or "auto".
 *
 * Returns: a static string; "unknown" for other values.
 * Thread: any thread.
 * See also: nc_loop_backend
 */
const char *nc_backend_name(nc_backend backend);

/* What the NC_BACKEND environment variable asks for.
 *
 * The rule nc_loop_new() applies, for a program to check or explain:
 * unset, empty or "auto" is NC_BACKEND_AUTO; "epoll" and "io_uring"
 * (lower case, exactly) name a backend; anything else names none, and a
 * one-line message naming the variable, its value and the values it may
 * hold is written into errbuf (errlen bytes) when errbuf is not NULL.
 * Whether the backend can run here is nc_loop_new_with()'s to say.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  out is NULL, or NC_BACKEND names no backend (then
 *            nc_loop_new() fails with -EINVAL too)
 * Thread: any thread (it reads the environment, which no other thread
 * may be changing).
 * See also: nc_loop_new, nc_backend_name
 */
int nc_backend_from_env(nc_backend *out, char *errbuf, size_t errlen);

/* Free a loop and everything still alive on it.
 *
 * Call it from the loop's own thread, when the loop is not running:
 * called from inside one of its callbacks it does nothing. NULL is
 * allowed. In order: posts from other threads are refused with -ESHUTDOWN
 * from the moment this starts; calls already posted run first (each
 * exactly once); every listener and every live connection is closed
 * (on_close with NC_CLOSE_SHUTDOWN, also for those still connecting);
 * then the remaining watchers, timers and signal handlers are released
 * (signal masks restored); deferred calls run between these steps;
 * finally all memory is freed. Every pointer to the loop's objects is
 * invalid afterwards. Another thread that may still post must be known to
 * have finished before this returns.
 *
 * Thread: the loop's thread.
 * See also: nc_loop_new, nc_loop_post
 */
void nc_loop_free(nc_loop *loop);

/* How long nc_loop_run() runs. */
typedef enum nc_run_mode {
    NC_RUN_DEFAULT = 0,  /* until nc_loop_stop() or nothing is active */
    NC_RUN_FOREVER,      /* until nc_loop_stop(), even with nothing active
                            (a worker that only receives posted calls) */
    NC_RUN_ONCE,         /* one iteration, waiting for an event if needed */
    NC_RUN_NOWAIT        /* one iteration, without waiting */
} nc_run_mode;

/* Run the loop in the calling thread.
 *
 * - NC_RUN_DEFAULT: until nc_loop_stop(), or until nothing is active and
 *   no deferred call is pending. What is active, and so keeps it running:
 *   open and connecting connections, listener sockets (until stopped),
 *   nc_watch watchers (even with interest 0), started timers (including a
 *   connection's idle or connect timer), signal handlers, and pending
 *   deferred calls (nc_loop_defer). Calls posted with nc_loop_post() do
 *   not keep it running.
 * - In any mode, a graceful stop (nc_loop_shutdown) ends the run once its
 *   last connection has closed.
 * - NC_RUN_FOREVER: until nc_loop_stop(), even with nothing active (a
 *   worker that only receives posted calls).
 * - NC_RUN_ONCE: one iteration, waiting for an event or the next timer if
 *   anything is active (if nothing is, it does not wait).
 * - NC_RUN_NOWAIT: one iteration without waiting.
 *
 * Returns: 0 when it stopped (nc_loop_stop, or a completed
 * nc_loop_shutdown), ran out of active things (NC_RUN_DEFAULT) or
 * finished its iteration; or a negative errno.
 * Errors:
 *   -EINVAL  loop is NULL, or mode is unknown
 *   -EBUSY   the loop is already running (called from one of its
 *            callbacks)
 *   -EEXIST  io_uring: another thread ran this loop before (the first
 *            thread to run a loop is its thread for good: its ring
 *            accepts requests from that thread only)
 *   any other errno of a failed epoll_wait() or io_uring_enter() (EINTR
 *   is not a failure)
 * Thread: the loop's thread: any thread until the loop first runs, then
 * the one that ran it.
 * See also: nc_loop_stop, nc_loop_new
 */
int nc_loop_run(nc_loop *loop, nc_run_mode mode);

/* Ask the loop to return from nc_loop_run() after the current iteration.
 *
 * The iteration's timers and deferred calls still run. From another
 * thread it wakes a waiting loop. A stop requested while the loop is not
 * running makes the next nc_loop_run() return after one iteration that
 * does not wait; the request is cleared when nc_loop_run() returns. NULL
 * is allowed.
 *
 * Thread: any thread, while the loop exists. It is not async-signal-safe
 * (it takes a mutex): do not call it from a signal handler; to stop on a
 * signal, use nc_signal_start() and call it from that callback.
 * See also: nc_loop_run, nc_signal_start
 */
void nc_loop_stop(nc_loop *loop);

/* The loop's cached time in milliseconds, on CLOCK_MONOTONIC.
 *
 * Updated when an iteration starts and when its wait returns, so every
 * callback of one iteration sees the same value.
 *
 * Returns: the time in milliseconds; 0 for NULL.
 * Thread: the loop's thread.
 * See also: nc_timer_start
 */
uint64_t nc_loop_now(const nc_loop *loop);

/* Set or get a user pointer kept with the loop.
 *
 * For per-loop (per-thread) state that callbacks reach through
 * nc_conn_loop() instead of a pointer per connection. NULL until set; the
 * library never reads it.
 *
 * Returns: nc_loop_data() returns the pointer; NULL for NULL.
 * Thread: the loop's thread.
 * See also: nc_conn_loop, nc_conn_set_data
 */
void nc_loop_set_data(nc_loop *loop, void *data);
void *nc_loop_data(const nc_loop *loop);

/* A function the loop calls later with its argument. */
typedef void (*nc_call_fn)(void *arg);

/* Call fn(arg) at the end of this iteration, in the loop's thread.
 *
 * The call runs after every event of the current batch has been
 * dispatched and due timers have fired; outside a run, at the end of the
 * next iteration or inside nc_loop_free(). Calls run in the order
 * deferred; a call deferred by a deferred call runs in the same pass. A
 * pending deferred call keeps NC_RUN_DEFAULT running and makes the next
 * wait non-blocking. Use it to release things (your own objects too)
 * safely from inside callbacks.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  loop or fn is NULL
 *   -ENOMEM  out of memory
 * Thread: the loop's thread.
 * See also: nc_loop_post
 */
int nc_loop_defer(nc_loop *loop, nc_call_fn fn, void *arg);

/* Run fn(arg) in the loop's thread, soon.
 *
 * The call is queued under a mutex and the loop is woken through its
 * eventfd; queued calls run while the loop dispatches events, or inside
 * nc_loop_free(). Every accepted call runs exactly once; calls from one
 * thread run in the order posted. Posted calls do not keep NC_RUN_DEFAULT
 * running: a worker loop waiting for posts uses NC_RUN_FOREVER.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL     loop or fn is NULL
 *   -ENOMEM     out of memory
 *   -ESHUTDOWN  nc_loop_free() has started: fn will not run and nothing
 *               was kept
 * Thread: any thread, as long as the loop has not been freed.
 * See also: nc_loop_defer, nc_loop_stop
 */
int nc_loop_post(nc_loop *loop, nc_call_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * fd watchers (lib/loop.c)
 *
 * Level-triggered: a watcher is called in every iteration in which its fd
 * is ready, so a callback may read as little as it likes (fairness) and
 * never needs to read until EAGAIN. Interest is only changed in the kernel
 * when it really changes.
 *
 * Example: docs/examples/watchers.c
 * ---------------------------------------------------------------------- */

/* A watcher of one file descriptor (opaque). */
typedef struct nc_watch nc_watch;

/* Events of a watcher.
 *
 * NC_HANGUP reports EPOLLHUP or EPOLLRDHUP; put it in the interest to ask
 * for EPOLLRDHUP (the peer closed its side). NC_ERROR reports EPOLLERR;
 * it is accepted in the interest and ignored (the kernel always reports
 * it).
 */
enum {
    NC_READABLE = 1u << 0,
    NC_WRITABLE = 1u << 1,
    NC_HANGUP = 1u << 2,   /* reported only: EPOLLHUP or EPOLLRDHUP */
    NC_ERROR = 1u << 3     /* reported only: EPOLLERR */
};

/* Called with the events that are ready (NC_READABLE, NC_WRITABLE,
 * NC_HANGUP, NC_ERROR) and the user pointer given at start.
 *
 * The events are the ready ones limited to the current interest, plus
 * NC_HANGUP and NC_ERROR.
 */
typedef void (*nc_watch_fn)(nc_watch *w, int fd, unsigned events, void *ud);

/* Watch a file descriptor for readiness.
 *
 * fd is watched for events (NC_READABLE | NC_WRITABLE, optionally
 * NC_HANGUP; 0 = registered but idle: nothing goes to the kernel and
 * nothing is reported). fd stays the caller's and is never closed by the
 * library. One watcher per fd per loop, counting the library's own
 * sockets (a connection's or a listener's fd). The caller owns *out and
 * releases it with nc_watch_close() (or nc_loop_free()).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  a NULL argument, fd < 0, or unknown bits in events
 *   -EBADF   fd is not open
 *   -EEXIST  fd is already watched by this loop
 *   -EPERM   fd cannot be polled (a regular file or a directory)
 *   -ENOMEM  out of memory
 *   any other errno that epoll_ctl() reports
 * Thread: the loop's thread.
 * On io_uring a watcher is a poll request armed again after each call
 * while its interest lasts: the same level-triggered behaviour.
 * See also: nc_watch_set, nc_watch_close
 */
int nc_watch_start(nc_loop *loop, int fd, unsigned events, nc_watch_fn fn,
                   void *ud, nc_watch **out);

/* Change the events a watcher waits for.
 *
 * Costs a system call only if they differ from the current ones (0
 * removes the fd from epoll, or cancels its poll request at once on
 * io_uring; there the new events are checked with fstat). If the fd was
 * closed and its number reused
 * behind the watcher's back, the new file is registered afresh.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  w is NULL, events has unknown bits, or the watcher is no
 *            longer attached
 *   -EBADF   the fd was closed behind the watcher's back
 *   -ENOMEM  out of memory
 *   any other errno that epoll_ctl() reports
 * Thread: the loop's thread.
 * See also: nc_watch_start
 */
int nc_watch_set(nc_watch *w, unsigned events);

/* Stop watching and free a watcher; the fd stays open.
 *
 * Safe from any callback, including w's own and while an event for w is
 * pending in this iteration: no event is ever delivered after this, even
 * to a new watcher started on the same fd number in the same iteration.
 * NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_watch_start
 */
void nc_watch_close(nc_watch *w);

/* ------------------------------------------------------------------------
 * Timers (lib/timer.c)
 *
 * A 4-ary heap on CLOCK_MONOTONIC, millisecond resolution. A timer never
 * fires before its timeout has elapsed; one that is overdue fires once (a
 * repeating one then keeps its phase).
 *
 * Example: docs/examples/timers.c
 * ---------------------------------------------------------------------- */

/* A timer (opaque). */
typedef struct nc_timer nc_timer;

/* Called when a timer fires, with the user pointer given to
 * nc_timer_new(). */
typedef void (*nc_timer_fn)(nc_timer *t, void *ud);

/* Create a stopped timer.
 *
 * The caller owns *out and releases it with nc_timer_free() (or
 * nc_loop_free()).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  a NULL argument
 *   -ENOMEM  out of memory
 * Thread: the loop's thread.
 * See also: nc_timer_start, nc_timer_free
 */
int nc_timer_new(nc_loop *loop, nc_timer_fn fn, void *ud, nc_timer **out);

/* Start or restart a timer.
 *
 * t fires timeout_ms after now, measured with a fresh clock read (not the
 * loop's cached time, so a long callback cannot make it early), then
 * every repeat_ms if repeat_ms is not 0. A repeating timer keeps its
 * phase (next deadline = previous deadline + period); if it is overdue by
 * several periods it fires once and skips to the first period after now.
 * Restarting a running timer moves it. Timers with equal deadlines fire
 * in the order they were started. A timer (re)started with timeout 0 from
 * a timer callback fires in the next iteration, not in the same pass.
 * Legal from any callback, including t's own. O(log n).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  t is NULL, or a timeout or period over about 146 years
 *   -ENOMEM  the heap could not grow; t stays stopped
 * Thread: the loop's thread.
 * See also: nc_timer_stop, nc_timer_active
 */
int nc_timer_start(nc_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);

/* Stop a timer if it runs.
 *
 * O(log n). Safe from any callback. NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_timer_start, nc_timer_free
 */
void nc_timer_stop(nc_timer *t);

/* Whether a timer is started and has not fired its last time.
 *
 * A repeating timer stays active until stopped; a one-shot timer is
 * already inactive inside its own callback.
 *
 * Returns: true while t is started and has not fired its last time;
 * false otherwise and for NULL.
 * Thread: the loop's thread.
 * See also: nc_timer_start
 */
bool nc_timer_active(const nc_timer *t);

/* Stop and free a timer.
 *
 * Safe from any callback, including t's own. NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_timer_new
 */
void nc_timer_free(nc_timer *t);

/* ------------------------------------------------------------------------
 * Signals (lib/signal.c)
 *
 * Signals are read through one signalfd per loop and delivered as
 * ordinary callbacks in the loop's thread. nc_signal_start() blocks
 * signum in the calling thread so the signalfd receives it. Block it in
 * every other thread too (create loops and handlers before starting
 * threads, whose masks are inherited), or another thread may take the
 * signal. nc_workers_start() creates its threads with SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT blocked.
 *
 * Example: docs/examples/signals.c
 * ---------------------------------------------------------------------- */

/* A signal handler of a loop (opaque). */
typedef struct nc_signal nc_signal;

/* Called in the loop's thread when the signal arrives, with the user
 * pointer given to nc_signal_start(). */
typedef void (*nc_signal_fn)(nc_signal *s, int signum, void *ud);

/* Call fn in the loop's thread each time a signal arrives.
 *
 * Instances of signum that arrive before the loop reads them may merge,
 * as for any standard signal. signum is blocked in the calling thread so
 * that it stays pending for the signalfd: block it in every other thread
 * too, for instance by starting handlers before creating threads (threads
 * inherit the mask), or another thread may take it. One handler per
 * signal per loop; a handler counts as active for NC_RUN_DEFAULT. The
 * caller owns *out and releases it with nc_signal_close(), which restores
 * the thread's signal mask for signum.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  a NULL argument, or a bad or uncatchable signal: signum
 *            outside 1..64, SIGKILL, SIGSTOP, or a signal glibc reserves
 *   -EEXIST  signum is already handled by this loop
 *   -ENOMEM  out of memory
 *   any other errno that signalfd() reports
 * Thread: the loop's thread.
 * See also: nc_signal_close, nc_loop_stop
 */
int nc_signal_start(nc_loop *loop, int signum, nc_signal_fn fn, void *ud,
                    nc_signal **out);

/* Stop handling the signal and free s.
 *
 * If the signal was not blocked before nc_signal_start(), an instance
 * still pending is discarded (it was meant for this handler and would
 * otherwise hit the default action) and the thread's mask is restored; a
 * signal that was already blocked stays blocked. Safe from any callback,
 * including s's own. NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_signal_start
 */
void nc_signal_close(nc_signal *s);

/* ------------------------------------------------------------------------
 * Host names (lib/resolve.c, lib/resolve_ares.c, lib/resolve_thread.c,
 * lib/dial.c)
 *
 * Names are looked up without ever blocking the loop. Built with c-ares
 * (libc-ares-dev; make CARES=auto, the default, when pkg-config finds
 * it), the queries go out from the loop's own thread: their sockets are
 * watched by the loop and their timeouts run on its timers, on either
 * backend. Without it (make CARES=no), getaddrinfo() runs on up to 4
 * helper threads per loop (created when needed, with every signal
 * blocked, gone after 10 s without work), which post each answer back:
 * the loop never waits for them. Either way the system's configuration
 * applies: the hosts file (/etc/hosts) and DNS in the order
 * /etc/nsswitch.conf gives, and the servers, search domains, ndots,
 * timeout and attempts of /etc/resolv.conf. With c-ares, a loop reads
 * /etc/resolv.conf when it makes its first lookup, and the hosts file
 * then and again whenever it changed (looked at once per loop iteration
 * at most), always before DNS; the environment variables LOCALDOMAIN and
 * RES_OPTIONS apply as for the C library, and CARES_HOSTS names another
 * hosts file. A loop looks names up in the network namespace that was
 * current when it made its first lookup.
 *
 * nc_resolve() looks a name up. nc_connect() takes "host:port" as well
 * as addresses ("[2001:db8::1]:443", "192.0.2.1:443") and connects to a
 * name with Happy Eyeballs (RFC 8305): it asks for the IPv6 (AAAA) and
 * IPv4 (A) addresses at once; when the IPv4 answer comes first it waits
 * resolution_delay_ms (50) more for the IPv6 one; then it tries the
 * addresses one after another, alternating the families, IPv6 first,
 * starting the next one whenever the last one has not connected within
 * attempt_delay_ms (250) or has failed; the first to connect wins, and
 * every other attempt is closed at once and never reported. So a broken
 * IPv6 path costs 250 ms, not a connect timeout. connect_timeout_ms
 * covers everything, the lookup included. The connection exists from
 * nc_connect()'s return, as for an address; it has no socket until an
 * attempt wins (nc_conn_fd() is -1 meanwhile), and exactly one on_open
 * or on_close follows. When no address connects, on_close's err is the
 * most telling of the failures (refused before timed out before
 * unreachable), and nc_conn_explain() names every address tried and
 * what happened to each. With TLS, the certificate is checked against
 * the host name, which is also sent as SNI, unless
 * nc_connect_options.server_name names another.
 *
 * Which text is a name: in "host:port" the host is looked up when it is
 * not an IPv4 address, not "localhost", not an existing interface, and
 * contains a dot: "example.com:443", "db.internal:5432", or a single
 * label written absolute, with a final dot ("db.:5432", which the search
 * domains do not extend). A single label without a dot ("eth0:80",
 * "db:5432") stays an interface name, as before, so that a mistyped
 * interface fails at once with -ENODEV rather than after a DNS timeout;
 * an interface whose name has a dot (a VLAN, "eth0.100") wins over the
 * host of that name. nc_endpoint_parse() and nc_listen() never look
 * names up. nc_resolve() takes any name, single labels included (the
 * search domains of resolv.conf then apply).
 *
 * Example: docs/examples/names.c
 * ---------------------------------------------------------------------- */

/* Which address families a lookup or a connect to a name uses, in which
 * order. */
typedef enum nc_family {
    NC_FAMILY_ANY = 0,       /* both, IPv6 first (RFC 8305) */
    NC_FAMILY_IPV4_FIRST,    /* both, IPv4 first */
    NC_FAMILY_IPV6,          /* IPv6 only (AAAA) */
    NC_FAMILY_IPV4           /* IPv4 only (A) */
} nc_family;

/* A lookup in progress (opaque), owned by the library. */
typedef struct nc_resolve_req nc_resolve_req;

/* What a lookup found: what nc_resolve()'s callback is handed.
 *
 * Valid only during the callback. The addresses alternate between the
 * families, the first family of nc_family first: the order in which
 * nc_connect() would try them.
 */
typedef struct nc_resolve_result {
    const char *name;          /* the name asked for */
    const nc_addr *addrs;      /* count addresses, port 0 */
    size_t count;
    int err6;                  /* the IPv6 (AAAA) lookup: 0, a negative
                                  error, or 1 when it was not asked for */
    int err4;                  /* the IPv4 (A) lookup, the same */
    const char *source;        /* where the answers came from: "hosts file
                                  /etc/hosts", "DNS server 127.0.0.1:53",
                                  "getaddrinfo()", "a literal address";
                                  both, by family, when they differ */
    uint64_t elapsed_us;       /* from nc_resolve() to the last answer */
} nc_resolve_result;

/* Called once with the outcome of nc_resolve(): err 0 with at least one
 * address, or the error. res is never NULL, and holds what each family
 * found even when err is not 0. */
typedef void (*nc_resolve_fn)(nc_resolve_req *req, int err,
                              const nc_resolve_result *res, void *ud);

/* Look a host name up without blocking the loop.
 *
 * Asks for the addresses of name (IPv6 and IPv4 at once for
 * NC_FAMILY_ANY and NC_FAMILY_IPV4_FIRST) as the system is configured
 * (see above: hosts file, DNS servers, search domains), and calls fn
 * once, from the loop, never from inside this call, with the addresses
 * in the order nc_connect() would try them. A literal address is handed
 * back as it is. fn runs exactly once for every call that returned 0,
 * unless nc_resolve_cancel() comes first: with err 0 when either family
 * found an address; otherwise with the telling error, a name that does
 * not exist (-NC_EDNS_NOT_FOUND) before a server that failed or timed
 * out, before a family without addresses (-NC_EDNS_NO_ADDRESS); with
 * -ECANCELED when the loop is freed first. The request keeps
 * nc_loop_run(NC_RUN_DEFAULT) going. fn may call anything, cancel other
 * requests, start new ones, free what it likes; the request is freed
 * when fn returns. *out (when out is not NULL) is the request, for
 * nc_resolve_cancel().
 *
 * Returns: 0 on success, or a negative errno; then fn will not run.
 * Errors:
 *   -EINVAL   loop, name or fn is NULL, family is not an nc_family, or
 *             name is empty, longer than 253 characters, or holds
 *             characters no host name has (a space, a '/', a ':')
 *   -ENOMEM   out of memory
 *   any other errno with which the resolver could not be set up (c-ares
 *   found no usable configuration: -ENOMEM, -EIO)
 * Thread: the loop's thread.
 * See also: nc_resolve_cancel, nc_connect, nc_explain
 */
int nc_resolve(nc_loop *loop, const char *name, nc_family family,
               nc_resolve_fn fn, void *ud, nc_resolve_req **out);

/* Cancel a lookup: its callback will not run.
 *
 * The request is freed; what the resolver still does for it (a query in
 * flight, a getaddrinfo() on a helper thread) ends on its own and is
 * dropped. Calling it from the request's own callback, or after that
 * callback, is not allowed (the request is gone); from any other
 * callback it is. NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_resolve
 */
void nc_resolve_cancel(nc_resolve_req *req);

/* What looks names up in this build: "c-ares 1.18.1, in the loop" or
 * "getaddrinfo() on helper threads (built without c-ares)".
 *
 * Returns: a static string.
 * Thread: any thread.
 * See also: nc_resolve
 */
const char *nc_resolver_name(void);

/* ------------------------------------------------------------------------
 * Connections (lib/conn.c, lib/conn_write.c, lib/connect.c, lib/buf.c)
 *
 * A TCP (IPv4 or IPv6) or Unix stream connection, accepted by a listener
 * or opened with nc_connect().
 *
 * Lifecycle: on_open, then any number of on_data and on_drain, then
 * on_close exactly once. The library owns the nc_conn from its creation
 * (the accept, or a successful nc_connect(), before on_open) until
 * on_close returns; do not use the pointer after that. Calling
 * nc_conn_close() or nc_conn_abort() from any callback, including on_data
 * of the same connection, is always safe: the socket is closed at once,
 * no further callback of the connection runs, and on_close follows at
 * the end of the loop iteration.
 *
 * Calling back into the library. Every callback of a loop (on_open,
 * on_data, on_drain, on_close, a write's free_fn, timers, deferred and
 * posted calls, signal handlers, worker hooks) may call any function on
 * any object of that loop, its own connection and listener included:
 * write, close, abort, shutdown, pause or resume reading, set timeouts,
 * stop or close a listener, stop or shut down the loop, stop or free a
 * timer. Each call either works or returns the error documented for the
 * object's state at that moment; none frees memory a callback is still
 * reading, closes a descriptor it no longer owns, or runs another
 * callback of the same connection nested inside it. Per callback:
 *
 * - on_open: the connection is open; everything applies.
 * - on_data: data stays valid for the whole call, whatever the call
 *   does (closing or aborting its own connection, or closing another
 *   one, included). After a close from inside it, no further on_data of
 *   that connection runs.
 * - on_drain: everything applies.
 * - on_close: the connection is closed: writes and nc_conn_shutdown()
 *   return -ENOTCONN (closed because both directions are done after
 *   nc_conn_shutdown(): writes -EPIPE, nc_conn_shutdown() 0),
 *   nc_conn_close(), nc_conn_abort() and
 *   reading calls do nothing; other objects are unaffected.
 * - a write's free_fn (nc_conn_write_owned): runs from the loop at the
 *   end of the iteration in which the buffer was sent or dropped, never
 *   inside nc_conn_write_owned() nor another library call; everything
 *   applies, as from a deferred call.
 * - nc_loop_run() from inside the loop returns -EBUSY; nc_loop_free()
 *   from inside it does nothing.
 *
 * Example: docs/examples/connections.c
 * ---------------------------------------------------------------------- */

/* A connection (opaque), owned by the library. */
typedef struct nc_conn nc_conn;

/* Why a connection ended.
 *
 *   reason                   err passed to on_close
 *   NC_CLOSE_PEER            0 (the peer's FIN, or a hang-up)
 *   NC_CLOSE_RESET           -ECONNRESET, -EPIPE, -ETIMEDOUT, ...
 *   NC_CLOSE_IDLE            -ETIMEDOUT; -EMFILE when evicted to admit a
 *                            new connection (evict_idle)
 *   NC_CLOSE_LOCAL           0
 *   NC_CLOSE_ERROR           -EMSGSIZE (input over max_input), -ENOMEM,
 *                            any other error
 *   NC_CLOSE_SHUTDOWN        0; -ETIMEDOUT when reset at the end of a
 *                            shutdown's grace period (nc_loop_shutdown)
 *   NC_CLOSE_CONNECT_FAILED  -ECONNREFUSED, -ETIMEDOUT, -ENOENT, ...
 *   NC_CLOSE_DEADLINE        -ETIMEDOUT
 *   NC_CLOSE_TLS             -NC_ETLS_... (which failure), -ETIMEDOUT
 *
 * With TLS, a peer that closes without TLS's close_notify ends with
 * NC_CLOSE_PEER and err -NC_ETLS_TRUNCATED instead of 0.
 */
typedef enum nc_close_reason {
    NC_CLOSE_PEER = 1,       /* the peer closed: end of stream */
    NC_CLOSE_RESET,          /* the peer reset the connection (RST, EPIPE) */
    NC_CLOSE_IDLE,           /* no progress within the idle timeout: nothing
                                received, nothing sent */
    NC_CLOSE_LOCAL,          /* nc_conn_close() or nc_conn_abort() */
    NC_CLOSE_ERROR,          /* an I/O error; err says which (-EMSGSIZE:
                                unconsumed input grew over max_input) */
    NC_CLOSE_SHUTDOWN,       /* its listener or loop was closed, or the
                                loop shut down (nc_loop_shutdown) */
    NC_CLOSE_CONNECT_FAILED, /* an outgoing connect failed or timed out */
    NC_CLOSE_DEADLINE,       /* the deadline of nc_conn_set_deadline()
                                passed (err -ETIMEDOUT) */
    NC_CLOSE_TLS             /* the TLS handshake failed, or TLS broke
                                (err -NC_ETLS_..., or -ETIMEDOUT for the
                                handshake timeout) */
} nc_close_reason;

/* The highest nc_close_reason value, for arrays indexed by reason. */
#define NC_CLOSE_REASON_LAST NC_CLOSE_TLS

/* The name of a close reason.
 *
 * Returns: "peer closed", "reset", "idle timeout", "closed locally",
 * "I/O error", "shutting down", "connect failed" or "deadline passed";
 * "unknown" for other values. A static string.
 * Thread: any thread.
 * See also: nc_strerror
 */
const char *nc_close_reason_name(nc_close_reason reason);

/* Callbacks for a connection.
 *
 * ud is the connection's user pointer: the one given to nc_listen() or
 * nc_connect() until nc_conn_set_data() sets another. Any callback may be
 * NULL; with on_data NULL, input is discarded. The table is copied.
 *
 * - on_open: for an accepted connection it runs inside the listener's
 *   accept loop; for nc_connect() when the connect completes, never
 *   inside nc_connect().
 * - on_data: return how many bytes you consumed (0..len; more is taken as
 *   len). What you leave is kept (sized to what it holds, up to
 *   max_input) and handed to you again with the next bytes appended, or
 *   on its own when reading resumes after nc_conn_read_start() or after
 *   backpressure, so a pipelining peer that has sent everything is never
 *   left waiting. With keep_half_open the peer's end of stream is one
 *   last call, the end call, carrying whatever is still unconsumed (len
 *   may be 0) with nc_conn_eof() true: queue any reply before returning,
 *   since the connection then closes once its queue is empty. A call with
 *   len == 0 is always the end call.
 * - on_close: the fd is already closed (nc_conn_fd() returns -1) and
 *   writes fail with -ENOTCONN; c is freed when it returns.
 */
typedef struct nc_conn_callbacks {
    /* The connection is established (accepted, or connect succeeded). */
    void (*on_open)(nc_conn *c, void *ud);
    /* Bytes arrived. Return how many you consumed (0..len); the rest stays
     * buffered and is handed to you again, with the next bytes appended.
     * data is valid only during the call. With keep_half_open, the end
     * call (nc_conn_eof() true) carries what is left at the peer's end. */
    size_t (*on_data)(nc_conn *c, const void *data, size_t len, void *ud);
    /* Output the kernel had refused went out, and what it still refuses
     * (nc_conn_queued) is at most low_water; reading, if high_water had
     * paused it, has resumed. Once per such fall: after any write that
     * left bytes queued (not only above high_water), so that pausing
     * another connection at any threshold of nc_conn_queued() never
     * stalls. */
    void (*on_drain)(nc_conn *c, void *ud);
    /* The connection ended; err is 0 or the negative errno behind reason.
     * Called exactly once for every opened connection (and for every
     * nc_connect() that returned 0). The fd is already closed. */
    void (*on_close)(nc_conn *c, nc_close_reason reason, int err, void *ud);
} nc_conn_callbacks;

/* Per-connection settings. A zeroed struct gives the defaults.
 *
 * The socket options (TCP_NODELAY, keepalive) apply to TCP sockets only;
 * Unix connections ignore them. A low_water set above high_water is taken
 * as high_water / 4. Over max_input the connection closes with
 * NC_CLOSE_ERROR and -EMSGSIZE. read_budget is per connection per
 * iteration, for fairness (epoll; on io_uring each turn is one receive
 * of at most 64 KiB, and input that arrives while reading is paused
 * waits in the connection, within one iteration's worth, as it would
 * wait in the socket with epoll). connect_timeout_ms 0 leaves the kernel's
 * timeout (about 2 minutes). Timeouts are at most 2^31-1 ms (24.8 days);
 * larger ones are refused with -EINVAL.
 *
 * At the peer's end of stream the connection stops reading, sends what is
 * still queued for the peer (a half-closed peer still reads), then closes
 * with NC_CLOSE_PEER; keep_half_open first hands on_data the end call.
 * With half_close the connection stays open for writing after the end
 * call, as long as you like: a proxy passes the end on with
 * nc_conn_shutdown() on the other side, and that side closes with
 * NC_CLOSE_PEER once its own output is sent and its peer's end has come.
 * While a graceful close flushes, write progress counts as activity for
 * the idle timeout; without an idle timeout the flush may stall at most
 * 30 s. Once all is sent, if the peer may still be sending, the library
 * sends FIN and discards input until the peer's FIN, for at most
 * linger_ms: closing with unread input would send RST, and a reset
 * destroys an answer still in flight.
 */
typedef struct nc_conn_options {
    size_t high_water;       /* queued output that pauses reading
                                (default 64 KiB) */
    size_t low_water;        /* queued output at which reading resumes and
                                on_drain runs (default high_water / 4) */
    size_t max_input;        /* unconsumed input allowed (default 1 MiB) */
    size_t read_budget;      /* bytes read per iteration (default 256 KiB) */
    uint32_t idle_timeout_ms;    /* close after this long with no
                                    progress either way: nothing received
                                    and nothing of the output taken by the
                                    kernel (0 = never) */
    uint32_t connect_timeout_ms; /* nc_connect only (0 = the kernel's) */
    bool no_delay_off;       /* leave Nagle on (TCP_NODELAY is on by
                                default) */
    bool keep_half_open;     /* at the peer's end of stream, call on_data
                                once more (the end call: what is still
                                unconsumed, nc_conn_eof() true) before the
                                queue is flushed and the connection closed */
    bool half_close;         /* full-duplex half-close: the peer's end of
                                stream (FIN, or TLS close_notify) ends only
                                its direction. on_data gets the end call,
                                and the connection stays open for writing
                                until you call nc_conn_shutdown() (then,
                                the output sent, FIN and the close) or
                                nc_conn_close(); the idle timeout still
                                bounds it */
    uint32_t keepalive_idle_s;   /* TCP keepalive after this many idle
                                    seconds (0 = off) */
    uint32_t keepalive_interval_s; /* between probes (0 = kernel default) */
    uint32_t keepalive_count;      /* probes before reset (0 = default) */
    uint32_t linger_ms;      /* after a graceful close has sent everything
                                and FIN, how long to wait for the peer's
                                FIN while discarding its input (default
                                2000) */
} nc_conn_options;

/* A TLS context (opaque): certificates, trust and settings shared by the
 * connections and listeners that use it. See nc_tls_server_new(). */
typedef struct nc_tls_ctx nc_tls_ctx;

/* Options for nc_connect() and nc_connect_addr(). A zeroed struct gives
 * the defaults.
 *
 * errbuf and errbuf_len are a place for a failing nc_connect() to say why
 * (see nc_connect); failures reported later, through on_close, are not
 * written there.
 */
typedef struct nc_connect_options {
    nc_conn_options conn;
    const char *bind;        /* local endpoint to bind first, with a port
                                (0 = any): "192.0.2.2:0", "[::1]:0", or an
                                interface name ("eth0:0": its first address
                                of the target's family); NULL = the kernel
                                chooses */
    nc_tls_ctx *tls;         /* a client context: speak TLS (NULL = no) */
    const char *server_name; /* with tls: the name the server's certificate
                                must carry, also sent as SNI; NULL = the
                                address connected to (checked as an IP
                                address, no SNI) */
    char *errbuf;            /* NULL, or where a failing call writes one
                                line naming what is wrong; emptied when it
                                returns 0 */
    size_t errbuf_len;       /* its size in bytes (256 is plenty) */
    /* Connecting to a host name (Happy Eyeballs; see "Host names"). They
     * do not apply to addresses. */
    nc_family family;        /* which families, in which order (default
                                NC_FAMILY_ANY: both, IPv6 first) */
    uint32_t attempt_delay_ms;    /* start the next address when the last
                                     attempt has neither connected nor
                                     failed within this (default 250; at
                                     least 10, at most 2000: RFC 8305) */
    uint32_t resolution_delay_ms; /* when the other family's answer comes
                                     first, wait this long for the first
                                     family's before connecting (default
                                     50; at most 2000) */
} nc_connect_options;

/* Start a non-blocking connect to an endpoint.
 *
 * endpoint is an address, "localhost:P" (127.0.0.1), an interface name
 * (its first address, IPv4 before IPv6), "unix:/path", or a host name
 * with a dot and a port ("example.com:443"; see "Host names" for the
 * rule), which is looked up and connected to with Happy Eyeballs, never
 * blocking the loop. opts->bind, if not NULL, is an endpoint string with
 * a port (0 = any); its first address of the target's family is bound
 * first (for a name, that of each address tried).
 *
 * On success *out (if out is not NULL) is the connection. It is owned by
 * the library from this moment, before on_open, until on_close returns.
 * Exactly one of on_open or on_close follows from the loop, never from
 * inside this call: on_close gets NC_CLOSE_CONNECT_FAILED with the errno
 * (-ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT after connect_timeout_ms,
 * -ENOENT for a missing Unix path, -EAGAIN for a full Unix backlog, a
 * -NC_EDNS_* value for a name that could not be looked up), or
 * NC_CLOSE_LOCAL or NC_CLOSE_SHUTDOWN if you close it or its loop first,
 * also while a name is still being looked up. Write from on_open: before
 * it, writes fail with -ENOTCONN. nc_explain(NC_OP_CONNECT, err)
 * explains either kind of failure; for a name, nc_conn_explain() says
 * which addresses were tried and what happened to each.
 *
 * When it fails and opts->errbuf is set, one line naming what is wrong is
 * written there (at most errbuf_len bytes, NUL-terminated): for endpoint
 * text, the message nc_endpoint_parse() gives ("unknown interface
 * 'eth99'"); otherwise the step that failed ("cannot bind local address
 * 192.0.2.9:0: Cannot assign requested address"). When it returns 0,
 * errbuf is emptied.
 *
 * Returns: 0 on success, or a negative errno; then nothing was started,
 * no callback will run and *out is untouched.
 * Errors:
 *   -EINVAL         loop or endpoint is NULL, a wildcard endpoint, a
 *                   malformed bind, malformed endpoint text, opts->tls
 *                   is a server context, or opts->family is not an
 *                   nc_family
 *   -ERANGE         the port is out of range (from parsing the endpoint)
 *   -ENODEV         unknown interface or scope
 *   -ENAMETOOLONG   a Unix path or interface name too long
 *   -EADDRNOTAVAIL  the interface has no address, or the bind address is
 *                   not on this host
 *   -EAFNOSUPPORT   bind has no address of the target's family
 *   -EADDRINUSE     the bind address and port are in use
 *   -EACCES         binding that port is not permitted
 *   -ENOMEM         out of memory
 *   -EMFILE         the process has no descriptor left
 *   -ENFILE         the system has no descriptor left
 *   any other errno that socket() or bind() reports
 * Thread: the loop's thread.
 * See also: nc_conn_write, nc_conn_close, nc_listen
 */
int nc_connect(nc_loop *loop, const char *endpoint,
               const nc_connect_options *opts, const nc_conn_callbacks *cbs,
               void *ud, nc_conn **out);

/* Start a non-blocking connect to an address you already hold.
 *
 * Like nc_connect(), without formatting an address and parsing it back:
 * addr is an IPv4, IPv6 (with its scope id) or named Unix address, such
 * as one from nc_listener_addr(), nc_endpoint_resolve() or
 * nc_conn_peer_addr(). *addr is copied. Everything else, opts->bind and
 * errbuf included, is as for nc_connect(): exactly one of on_open or
 * on_close follows from the loop.
 *
 * Returns: 0 on success, or a negative errno; then nothing was started,
 * no callback will run and *out is untouched.
 * Errors:
 *   -EINVAL         loop or addr is NULL, addr->len does not fit its
 *                   family, an unnamed Unix address, a malformed bind, or
 *                   opts->tls is a server context
 *   -EAFNOSUPPORT   addr's family is not AF_INET, AF_INET6 or AF_UNIX, or
 *                   bind has no address of that family
 *   -EADDRNOTAVAIL  the bind address is not on this host
 *   -EADDRINUSE     the bind address and port are in use
 *   -EACCES         binding that port is not permitted
 *   -ENOMEM         out of memory
 *   -EMFILE         the process has no descriptor left
 *   -ENFILE         the system has no descriptor left
 *   any other errno that socket() or bind() reports
 * Thread: the loop's thread.
 * See also: nc_connect, nc_listener_addr, nc_endpoint_resolve
 */
int nc_connect_addr(nc_loop *loop, const nc_addr *addr,
                    const nc_connect_options *opts,
                    const nc_conn_callbacks *cbs, void *ud, nc_conn **out);

/* Queue bytes for sending on a connection.
 *
 * When nothing is queued, what the kernel takes now is sent at once
 * (MSG_NOSIGNAL); the rest is copied (into chunks sized to it, coalescing
 * small writes) and sent as the socket becomes writable. On io_uring,
 * inside the loop's callbacks, the bytes are copied and sent with the
 * iteration's submission instead (the same system call that waits for
 * the next event); outside the loop they are sent at once as with epoll,
 * and when nc_loop_run() returns nothing written is left unsent. A write
 * is all or nothing: accepted whole, or refused with nothing queued.
 * Above high_water reading pauses until the queue falls to low_water
 * (see on_drain). A zero-length write does nothing.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c is NULL, or data is NULL with len > 0
 *   -ENOTCONN  not open yet (still connecting), closing or closed: nothing
 *              is queued
 *   -EPIPE     the write side was shut down with nc_conn_shutdown()
 *   -ENOMEM    out of memory: nothing is queued; if part of the data had
 *              already gone out, the connection is closed with
 *              NC_CLOSE_ERROR, since the stream cannot be resumed
 *   other      the immediate send failed with this errno (-ECONNRESET,
 *              -EPIPE, ...): the connection is being closed and on_close
 *              follows with the same errno (NC_CLOSE_RESET or
 *              NC_CLOSE_ERROR); a send submitted later (io_uring, or what
 *              was queued) reports its failure through on_close alone
 * Thread: the loop's thread.
 * See also: nc_conn_writev, nc_conn_write_owned, nc_conn_queued
 */
int nc_conn_write(nc_conn *c, const void *data, size_t len);

/* Queue cnt buffers for sending, in order.
 *
 * Like nc_conn_write() for the cnt buffers of iov, sent in order.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c is NULL, cnt < 0, iov is NULL with cnt > 0, a buffer is
 *              NULL with a length, or the lengths add up to more than
 *              SSIZE_MAX: nothing is sent
 *   -ENOTCONN  not open yet (still connecting), closing or closed: nothing
 *              is queued
 *   -EPIPE     the write side was shut down with nc_conn_shutdown()
 *   -ENOMEM    out of memory, as for nc_conn_write()
 *   other      the immediate send failed, as for nc_conn_write()
 * Thread: the loop's thread.
 * See also: nc_conn_write
 */
int nc_conn_writev(nc_conn *c, const struct iovec *iov, int cnt);

/* Zero-copy write: queue data without copying it.
 *
 * The library takes ownership of data and calls free_fn(data, arg) once
 * it is sent (with TLS: encrypted) or dropped (by a close), always from
 * the loop: at the end of the iteration in which that happened (for a
 * write made outside nc_loop_run(), in the next run, or in
 * nc_loop_free()), never inside this call nor nested in another library
 * call, so free_fn may call any function (close its connection, write
 * the next buffer: no recursion however many the kernel takes at once).
 * free_fn may be NULL. On error the caller keeps ownership.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c is NULL, or data is NULL with len > 0
 *   -ENOTCONN  not open yet (still connecting), closing or closed
 *   -EPIPE     the write side was shut down with nc_conn_shutdown()
 *   -ENOMEM    out of memory, as for nc_conn_write()
 *   other      the immediate send failed, as for nc_conn_write()
 * Thread: the loop's thread.
 * See also: nc_conn_write
 */
int nc_conn_write_owned(nc_conn *c, void *data, size_t len,
                        void (*free_fn)(void *data, void *arg), void *arg);

/* Bytes queued on a connection that the kernel refused for lack of room.
 *
 * What waits because the peer reads slower than you write: the number
 * flow control works with (high_water pauses reading above it, on_drain
 * runs when it falls to low_water). It is the same on both backends: on
 * io_uring, bytes written inside a callback are offered to the kernel
 * with the iteration's submission (epoll offers them at once) and count
 * here only once refused; but once more than high_water (or 64 KiB) of
 * them wait, they are offered at once, as epoll would have, so a loop
 * that writes while this is below a mark stops near the mark on either
 * backend.
 *
 * Returns: the number of bytes queued; 0 for NULL.
 * Thread: the loop's thread.
 * See also: nc_conn_write, nc_conn_high_water, nc_conn_callbacks
 */
size_t nc_conn_queued(const nc_conn *c);

/* The connection's water marks (nc_conn_options, defaults filled in).
 *
 * Above high_water of nc_conn_queued() reading pauses; at low_water it
 * resumes and on_drain runs. A program pausing another connection on
 * this one's queue can pause at any threshold: on_drain follows.
 *
 * Returns: the mark in bytes; 0 for NULL.
 * Thread: the loop's thread.
 * See also: nc_conn_queued, nc_conn_options
 */
size_t nc_conn_high_water(const nc_conn *c);
size_t nc_conn_low_water(const nc_conn *c);

/* Close a connection gracefully.
 *
 * Input is no longer delivered (it is read and discarded); what is queued
 * is sent; then, if the last read found the socket empty (or the peer's
 * end came), the socket is closed at once, with FIN; otherwise the
 * library sends FIN and waits up to linger_ms for the peer's (see
 * nc_conn_options). While still connecting it closes at once. on_close
 * follows with NC_CLOSE_LOCAL, or with NC_CLOSE_IDLE (-ETIMEDOUT) if the
 * peer stopped reading: the flush is bounded by the idle timeout with
 * write progress as activity (30 s without one). Repeated calls do
 * nothing; NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_conn_abort, nc_conn_shutdown
 */
void nc_conn_close(nc_conn *c);

/* Close a connection now and reset it.
 *
 * SO_LINGER 0 sends RST; queued output is dropped (owned buffers are
 * handed to their free_fn). on_close follows with NC_CLOSE_LOCAL. Also
 * ends a graceful close in progress or a pending connect. NULL is
 * allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_conn_close
 */
void nc_conn_abort(nc_conn *c);

/* Half-close: shut down the write side once the queue is sent.
 *
 * After the queued output is sent, the write side is shut down (the peer
 * reads end of stream); reading goes on and later writes fail with
 * -EPIPE. Once the peer's end of stream comes too (or with half_close,
 * if it came already), the connection closes with NC_CLOSE_PEER.
 *
 * With TLS, the close_notify goes first (after what is queued); if it
 * cannot be sent (the peer reset the connection) the connection is
 * closed and the send's error returned. Calling it again returns 0, and
 * writes return -EPIPE, also once the connection has closed because both
 * directions are done (on either backend, whenever that happened; the
 * handle is valid until its on_close has returned).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c is NULL
 *   -ENOTCONN  not open: connecting, closing or closed
 *   other      TLS: the close_notify's send failed with this errno
 *              (-ECONNRESET, -EPIPE, ...): the connection is being closed
 *              and on_close follows with the same errno
 * Thread: the loop's thread.
 * See also: nc_conn_close, nc_conn_options
 */
int nc_conn_shutdown(nc_conn *c);

/* Forward what arrives on from to to inside the kernel (zero copy).
 *
 * From now on the bytes from's peer sends are moved into to's socket
 * through a pipe with splice(2), never copied into this process, and
 * on_data of from is no longer called for them. What from received
 * before and on_data left unconsumed (or leaves, if this is called from
 * that on_data) goes first, through to's queue, then the pipe's bytes,
 * in order. Flow control is the pipe's: from is read only while to takes
 * what came (its output queue empty and its socket with room), so memory
 * stays bounded whatever the two peers' speeds. The end of from's stream
 * is passed on: to is shut down (FIN) once everything has gone, then
 * from reports the end as any end of stream (the end call with
 * keep_half_open or half_close, then the close, or with half_close
 * nothing more). A reset or an error on either is reported on that
 * connection as usual. Idle timeouts count the moved bytes as progress
 * on both. Closing either ends the splice: a graceful close first hands
 * what the pipe holds to the target's queue (sent as any queued bytes),
 * an abort or a failure drops it.
 * A splice is one way: call it twice, (a, b) and (b, a), for both.
 * Pipes are borrowed from a per-loop pool while bytes are in flight, so
 * idle pairs hold none. Plain TCP and Unix stream connections only.
 *
 * Returns: 0 on success, or a negative errno (then nothing changed).
 * Errors:
 *   -EINVAL      from or to is NULL, they are the same, or of two loops
 *   -ENOTCONN    either is not open, or from's peer already ended
 *   -EPIPE       to's write side was shut down (nc_conn_shutdown)
 *   -EOPNOTSUPP  either speaks TLS (its bytes must be decrypted)
 *   -EBUSY       from is already spliced, or to is already a splice's
 *                target
 *   -ENOMEM      out of memory
 * Thread: the loop's thread.
 * See also: nc_conn_shutdown, nc_conn_options
 */
int nc_conn_splice(nc_conn *from, nc_conn *to);

/* Bytes the splices of from (nc_conn_splice) have moved to their target.
 *
 * What went through the pipe, counted as it entered the target's socket,
 * and the bytes from had kept that were handed to the target's queue
 * when the splice began; readable until on_close of from returns (a
 * proxy logging a pair's traffic reads it there).
 *
 * Returns: the count; 0 for NULL or a connection never spliced.
 * Thread: the loop's thread.
 * See also: nc_conn_splice
 */
uint64_t nc_conn_bytes_spliced(const nc_conn *from);

/* Pause or resume reading from c (for flow control of your own).
 *
 * Independent of the pause caused by high_water: reading happens only
 * when neither applies. While reading is paused the peer's end of stream
 * is not seen either (a reset is), and nothing is lost for it: with TLS,
 * plain text decrypted before the pause and a close_notify behind it, or
 * after nc_conn_shutdown() the peer's last bytes and its end (both
 * directions closed), wait until reading resumes, then arrive in order
 * with the end last. When reading resumes, input left unconsumed is
 * handed to on_data again from the loop, without waiting for new bytes.
 * NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_conn_options
 */
void nc_conn_read_stop(nc_conn *c);
void nc_conn_read_start(nc_conn *c);

/* Replace a connection's idle timeout, counted from now.
 *
 * ms 0 means no idle timeout. On a connection still connecting it applies
 * from on_open.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c is NULL, or ms is above 2^31-1 (24.8 days)
 *   -ENOTCONN  the connection is closing or closed
 *   -ENOMEM    out of memory
 * Thread: the loop's thread.
 * See also: nc_conn_options, nc_conn_set_deadline
 */
int nc_conn_set_idle_timeout(nc_conn *c, uint32_t ms);

/* Give a connection a deadline: closed when it passes.
 *
 * Unless the connection is closed within ms from now, it is closed with
 * NC_CLOSE_DEADLINE and err -ETIMEDOUT. Unlike the idle timeout, received
 * bytes do not extend it: it says "this message must be complete by
 * then", the defence against a peer that trickles a request a byte at a
 * time to hold the connection. Setting it again replaces it; ms 0 removes
 * it. It is never early.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c is NULL, or ms is above 2^31-1 (24.8 days)
 *   -ENOTCONN  the connection is closing or closed
 *   -ENOMEM    out of memory
 * Thread: the loop's thread.
 * See also: nc_conn_set_idle_timeout, nc_close_reason
 */
int nc_conn_set_deadline(nc_conn *c, uint32_t ms);

/* Whether the peer has ended its stream.
 *
 * True once the peer's end of stream was read. With keep_half_open this
 * is how on_data's end call, which carries the bytes still unconsumed,
 * tells itself apart from the others.
 *
 * Returns: true after the peer's end of stream; false before, and for
 * NULL.
 * Thread: the loop's thread.
 * See also: nc_conn_options, nc_conn_callbacks
 */
bool nc_conn_eof(const nc_conn *c);

/* Set or get the user pointer handed to the connection's callbacks.
 *
 * Returns: nc_conn_data() returns the user pointer; NULL for NULL.
 * Thread: the loop's thread.
 * See also: nc_conn_callbacks
 */
void nc_conn_set_data(nc_conn *c, void *ud);
void *nc_conn_data(const nc_conn *c);

/* The connection's socket.
 *
 * The socket is owned by the library: do not close it.
 *
 * Returns: the fd, or -1 once the connection is closed (including inside
 * on_close), while a connection to a host name has no socket yet (it is
 * looking the name up, or its attempts have not connected), and for
 * NULL.
 * Errors: none; -1 is not an errno value.
 * Thread: the loop's thread.
 * See also: nc_conn_tcp_info
 */
int nc_conn_fd(const nc_conn *c);

/* How a connection's connect went, in one sentence a person can act on.
 *
 * For a connection nc_connect() made to a host name, from nc_connect()'s
 * return until on_close returns: the name, how the lookup went (from
 * which source, how long it took, or why it failed), and each address
 * tried with what happened to it, such as
 *
 *   could not connect to www.example.com:443: [2001:db8::1]:443 timed out
 *   (no answer: a firewall drops the packets, or the host is down),
 *   192.0.2.1:443 was refused (nothing listens on that port there); the
 *   name was looked up in 2 ms (DNS server 127.0.0.1:53)
 *
 * or, once open, "connected to www.example.com:443 at
 * [2001:db8::1]:443 ...". For any other connection, the close reason
 * and nc_explain()'s text once it closed, or its state before. At most
 * len bytes are written, always NUL-terminated.
 *
 * Returns: the length of the whole sentence (a value of len or more
 * means it was cut short), or a negative errno.
 * Errors:
 *   -EINVAL  c or buf is NULL, or len is 0
 * Thread: the loop's thread.
 * See also: nc_connect, nc_explain
 */
int nc_conn_explain(const nc_conn *c, char *buf, size_t len);

/* The loop the connection lives on.
 *
 * Returns: the loop; NULL for NULL.
 * Thread: the loop's thread.
 */
nc_loop *nc_conn_loop(const nc_conn *c);

/* The peer's / the local address of a connection.
 *
 * From getpeername() and getsockname(); a Unix client is often unnamed,
 * "unix:" as nc_addr_format() writes it.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c or out is NULL
 *   -ENOTCONN  the connection is closed; for the peer address, also while
 *              it is still connecting
 *   any other errno that getpeername() or getsockname() reports
 * Thread: the loop's thread.
 * See also: nc_addr_format
 */
int nc_conn_peer_addr(const nc_conn *c, nc_addr *out);
int nc_conn_local_addr(const nc_conn *c, nc_addr *out);

/* The connection's TCP_INFO (see nc_tcp_info_get).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL      c or out is NULL
 *   -ENOTCONN    the connection is closed
 *   -EOPNOTSUPP  a Unix connection
 *   any other errno that getsockopt() reports
 * Thread: the loop's thread.
 * See also: nc_tcp_info_get
 */
int nc_conn_tcp_info(const nc_conn *c, nc_tcp_info *out);

/* ------------------------------------------------------------------------
 * Listeners (lib/listener.c)
 *
 * A listener accepts connections on every address an endpoint stands for.
 *
 * Running out of descriptors: a listener keeps one spare descriptor
 * (/dev/null). When accept() fails with EMFILE or ENFILE, the spare is
 * closed, the pending connection is accepted and reset at once (so the
 * client learns now instead of waiting in the backlog), and the spare is
 * reopened; this repeats while connections are pending, then the listener
 * waits for the next readiness. If shedding is impossible, or on other
 * resource errors (ENOBUFS, ENOMEM), accepting pauses for 100 ms, or until
 * one of its connections closes. Level-triggered epoll therefore never
 * spins on an unacceptable connection.
 *
 * On io_uring the kernel accepts (a multishot accept per socket). A
 * connection it accepted while the listener is at max_conns or paused is
 * kept aside, as the backlog would keep it, and opened when accepting
 * resumes; out of descriptors with nobody to shed, the listener waits for
 * the next pending connection as epoll does. accept_budget does not apply
 * there.
 *
 * Example: docs/examples/listeners.c
 * ---------------------------------------------------------------------- */

/* A listener (opaque). */
typedef struct nc_listener nc_listener;

/* Listener settings. A zeroed struct gives the defaults.
 *
 * errbuf and errbuf_len are not settings but a place for nc_listen() to
 * say why it failed: see nc_listen. reuseport lets one listener per thread
 * share a port (the kernel spreads the connections); it shares the port
 * with any socket of the same user that sets SO_REUSEPORT, another
 * process's too, so a second server on that port would not fail:
 * nc_workers_listen() shares a port between its workers only. max_conns
 * counts this listener's open connections; accepting resumes as soon as
 * one closes. accept_budget bounds the accepts per socket per iteration
 * so one busy listener cannot starve the loop; leftover connections are
 * taken in the next iteration.
 *
 * max_conns_per_addr keeps one client from holding every descriptor: a
 * connection whose peer IP address has that many open on this listener
 * already is accepted, reset at once (RST) and counted as shed (in
 * nc_listener_stats and nc_loop_stats), and never reaches on_open; as
 * soon as one of them closes, the next is admitted. An IPv4-mapped IPv6
 * peer (::ffff:a.b.c.d, on a dual-stack socket) counts as its IPv4
 * address; an IPv6 address counts alone (a host often has a whole /64);
 * Unix peers are not capped. With nc_workers_listen() the cap applies per
 * worker (each has its own listener). Off (0), accepting costs nothing
 * more; on, each listener keeps a small table of the addresses it holds
 * and, on io_uring or behind the workers' hand-off, asks each accepted
 * socket for its peer (getpeername). Together with evict_idle it stops a
 * flood of idle connections from locking new clients out.
 */
typedef struct nc_listener_options {
    int backlog;              /* 0 = SOMAXCONN */
    bool reuseaddr_off;       /* SO_REUSEADDR is on unless this is set */
    bool reuseport;           /* SO_REUSEPORT (one listener per thread) */
    bool ipv6_only;           /* IPV6_V6ONLY on IPv6 sockets; "*" then binds
                                 [::] and 0.0.0.0 separately */
    unsigned max_conns;       /* pause accepting at this many open
                                 connections (0 = no limit) */
    unsigned max_conns_per_addr;  /* open connections from one peer IP
                                 address, per listener (0 = no cap): one
                                 more is reset at accept and counted as
                                 shed; see below */
    unsigned accept_budget;   /* accepts per socket per iteration
                                 (default 64) */
    uint32_t defer_accept_s;  /* TCP_DEFER_ACCEPT: a connection is accepted
                                 only once its client has sent data (or
                                 after this many seconds), and read at once,
                                 before it is registered with epoll: one
                                 system call less per short connection,
                                 for protocols where the client speaks
                                 first (HTTP). 0 = off; TCP only. (On
                                 io_uring the receive armed at accept
                                 finds the data: no read at once.) */
    bool evict_idle;          /* out of descriptors (EMFILE): close the
                                 loop's longest-idle connection (on_close
                                 NC_CLOSE_IDLE, -EMFILE) to admit the new
                                 one, instead of shedding the new one */
    nc_tls_ctx *tls;          /* a server context: every accepted
                                 connection speaks TLS (NULL = no) */
    nc_conn_options conn;     /* for every accepted connection */
    char *errbuf;             /* NULL, or where a failing nc_listen()
                                 writes one line naming what is wrong (see
                                 nc_listen); emptied on success */
    size_t errbuf_len;        /* its size in bytes (256 is plenty) */
} nc_listener_options;

/* Counters of a listener.
 *
 * accept_errors counts transient failures such as ECONNABORTED, EPROTO,
 * EINTR, ENOBUFS and ENOMEM.
 */
typedef struct nc_listener_stats {
    uint64_t accepted;        /* connections opened */
    uint64_t active;          /* connections open now */
    uint64_t shed;            /* accepted and reset at once because the
                                 process was out of descriptors, or over
                                 max_conns_per_addr */
    uint64_t fd_exhausted;    /* times accept() failed with EMFILE/ENFILE */
    uint64_t accept_errors;   /* transient accept errors survived */
    uint64_t paused;          /* times accepting was paused (limit, back-off) */
    uint64_t evicted;         /* idle connections closed to admit new ones
                                 (evict_idle) */
} nc_listener_stats;

/* Listen on every address an endpoint stands for.
 *
 * One non-blocking, close-on-exec socket per address (at most 32):
 *
 * - an address: one socket;
 * - "localhost:P": 127.0.0.1 and ::1;
 * - "*:P": one dual-stack [::] socket (IPV6_V6ONLY off, set explicitly),
 *   or 0.0.0.0 alone where IPv6 is unavailable; with ipv6_only, two
 *   sockets, [::] and 0.0.0.0;
 * - an interface name: each of its addresses, IPv4 then IPv6; an address
 *   that cannot be bound yet (EADDRNOTAVAIL, an IPv6 address still in
 *   duplicate address detection) is skipped if another one works;
 * - "unix:/path": one socket. When something is at the path already,
 *   only a socket file that nobody listens on (left by a dead server:
 *   connecting to it is refused) is removed and the path bound again.
 *   Anything else is left exactly as it is and gives -EADDRINUSE: a live
 *   socket, a regular file, a directory, or a symbolic link (never
 *   followed nor removed, even to a stale socket).
 *
 * With port 0 and several addresses, all sockets share the port the
 * kernel chose for the first. Every accepted connection is non-blocking
 * and close-on-exec, gets opts->conn and the callbacks cbs (copied), and
 * starts with user pointer ud; on_open runs inside the accept loop. The
 * caller owns *out until nc_listener_close(). The library does not warn
 * about a loopback-only bind by itself: see nc_iface_reach_warning().
 *
 * When it fails and opts->errbuf is set, one line naming what is wrong is
 * written there (at most errbuf_len bytes, NUL-terminated): for endpoint
 * text, the message nc_endpoint_parse() gives ("unknown interface
 * 'eth99'", "port 70000 is out of range (0-65535)", "bad IPv4 address
 * '999.1.1.1'"); otherwise the step that failed with the address it
 * failed on ("cannot bind 127.0.0.1:80: Permission denied"). For an
 * address in use it adds what holds it, where this process can see that
 * (in /proc): "cannot bind 127.0.0.1:7000: Address already in use; held
 * by echo-server (pid 4242)"; for a unix: path, what is there ("...; that
 * path is a regular file, not a socket, and is left alone: remove it or
 * choose another path"). On success errbuf is emptied. With
 * nc_explain(NC_OP_BIND, err), the likely cause:
 *
 *   char why[256];
 *   nc_listener_options o = { .errbuf = why, .errbuf_len = sizeof why };
 *   int err = nc_listen(loop, "eth99:80", &o, &cbs, NULL, &l);
 *   if (err < 0)
 *       fprintf(stderr, "listen: %s\n%s\n", why,
 *               nc_explain(NC_OP_BIND, err));
 *
 * Returns: 0 on success, or a negative errno; then nothing is left bound
 * and *out is untouched.
 * Errors:
 *   -EINVAL         loop, endpoint or out is NULL, malformed endpoint
 *                   text, or opts->tls is a client context
 *   -ERANGE         the port is out of range (from parsing the endpoint)
 *   -ENODEV         unknown interface or scope
 *   -ENAMETOOLONG   a Unix path or interface name too long
 *   -EADDRINUSE     the address and port are in use, or a unix: path
 *                   holds a live socket or something other than a socket
 *   -EADDRNOTAVAIL  the address is not on this host
 *   -EACCES         binding that port (or path) is not permitted
 *   -ENOENT         the directory of a Unix socket path does not exist
 *   -EAFNOSUPPORT   the address family is not supported here
 *   -ENOMEM         out of memory
 *   -EMFILE         the process has no descriptor left
 *   -ENFILE         the system has no descriptor left
 *   any other errno that socket(), setsockopt() or listen() reports
 * Thread: the loop's thread.
 * See also: nc_listener_addr, nc_listener_close, nc_iface_reach_warning
 */
int nc_listen(nc_loop *loop, const char *endpoint,
              const nc_listener_options *opts, const nc_conn_callbacks *cbs,
              void *ud, nc_listener **out);

/* How many sockets a listener has bound.
 *
 * Returns: the number of sockets; 0 for NULL.
 * Thread: the loop's thread.
 * See also: nc_listener_addr
 */
size_t nc_listener_count(const nc_listener *l);

/* The real address of a listener's bound socket i.
 *
 * The address was recorded when the socket was bound, with the kernel's
 * port when port 0 was asked for.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  a NULL argument, or the listener has no socket i
 * Thread: the loop's thread.
 * See also: nc_listener_count, nc_addr_format
 */
int nc_listener_addr(const nc_listener *l, size_t i, nc_addr *out);

/* Copy the listener's counters into *out.
 *
 * Nothing happens if l or out is NULL.
 *
 * Thread: the loop's thread.
 * See also: nc_listen
 */
void nc_listener_stats_get(const nc_listener *l, nc_listener_stats *out);

/* Stop accepting but keep the open connections.
 *
 * The listening sockets are closed (new connections are refused by the
 * kernel) and a Unix socket's path is unlinked, but open connections
 * stay. The listener no longer keeps NC_RUN_DEFAULT running. Idempotent;
 * NULL is allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_listener_close
 */
void nc_listener_stop(nc_listener *l);

/* Close a listener and every connection still open from it.
 *
 * Stops the listener (its sockets are closed and a Unix socket's path is
 * unlinked), closes every connection still open from it (on_close with
 * NC_CLOSE_SHUTDOWN, at the end of the iteration), releases its reserved
 * descriptor and frees l at the end of the iteration. Safe from any
 * callback, including on_open of one of its own connections. NULL is
 * allowed.
 *
 * Thread: the loop's thread.
 * See also: nc_listener_stop, nc_listen
 */
void nc_listener_close(nc_listener *l);

/* ------------------------------------------------------------------------
 * TLS (lib/tls_ctx.c, lib/tls.c), through OpenSSL 3
 *
 * TLS is a layer between the socket and your callbacks: set a context in
 * nc_listener_options.tls or nc_connect_options.tls and everything else
 * stays the same. on_data receives plain text and nc_conn_write() takes
 * plain text; backpressure, timeouts, close reasons and counters work as
 * without TLS (queued sizes and byte counters are of the encrypted
 * stream).
 *
 * The handshake is part of opening: on_open runs once it has completed,
 * and writes before that fail with -ENOTCONN. A failed handshake ends with
 * on_close(NC_CLOSE_TLS, -NC_ETLS_...): nc_explain() says what went wrong
 * (an expired certificate, an unknown CA, a name mismatch, no common
 * version, plain HTTP sent to a TLS port, ...). For an accepted
 * connection that on_close comes without an on_open, with the listener's
 * user pointer. A graceful close (nc_conn_close, or the peer's end of
 * stream) sends TLS's close_notify before FIN; a peer that closes without
 * one is reported with err -NC_ETLS_TRUNCATED. Renegotiation is refused.
 *
 * Contexts hold no global state of the library and may be shared by the
 * loops of several threads once configured; each connection and listener
 * keeps its context alive. The record layer runs in OpenSSL, in user
 * space, between the socket and your callbacks, the same way on every
 * backend; the kernel's TLS offload (kTLS) is not used.
 *
 * Built without OpenSSL (no libssl-dev), the library has no TLS: every
 * function here returns -ENOTSUP.
 *
 * Example: docs/examples/tls.c
 * ---------------------------------------------------------------------- */

/* Settings of a TLS context. A zeroed struct gives the defaults. */
typedef struct nc_tls_options {
    const char *cert_file;   /* PEM: our certificate, then its chain; a
                                server needs one, a client only for client
                                certificates */
    const char *key_file;    /* PEM: the certificate's private key */
    const char *ca_file;     /* PEM: the CAs to trust for the peer's
                                certificate; NULL = the system's store
                                (clients) */
    bool verify_peer_off;    /* client: accept any server certificate
                                (testing only; verification is on by
                                default) */
    bool require_peer_cert;  /* server: ask every client for a certificate
                                and verify it against ca_file */
    const char *alpn;        /* protocols by preference, comma-separated:
                                "h2,http/1.1"; NULL = no ALPN */
    uint32_t handshake_timeout_ms;  /* a handshake must complete in this
                                       long (default 10000) */
} nc_tls_options;

/* Create a TLS context for servers (listeners).
 *
 * Loads the certificate chain and key (they must match), and ca_file for
 * client certificates when require_peer_cert is set. TLS 1.2 and 1.3 are
 * accepted; on TLS 1.2 only forward-secret AEAD suites are offered (ECDHE
 * with AES-GCM or ChaCha20-Poly1305: no CBC), and the server chooses by
 * its own order of preference, not the client's (a client that prefers
 * ChaCha20, one without AES instructions, gets it); TLS 1.3's suites are
 * all AEAD. Renegotiation is refused; session tickets let clients
 * resume. On failure a one-line message naming the file and what is
 * wrong with it is written into errbuf (errlen bytes) when errbuf is not
 * NULL. *out is owned by the caller: free it with nc_tls_ctx_free().
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    out or o is NULL, cert_file or key_file missing, the key
 *              does not match the certificate, a malformed alpn list, or
 *              require_peer_cert without ca_file
 *   -ENOENT    a file does not exist
 *   -EACCES    a file cannot be read
 *   -EBADMSG   a file holds no valid PEM certificate or key
 *   -ENOMEM    out of memory
 *   -ENOTSUP   the library was built without OpenSSL
 * Thread: any thread.
 * See also: nc_tls_client_new, nc_tls_add_name, nc_tls_set_cert,
 * nc_tls_ctx_free
 */
int nc_tls_server_new(const nc_tls_options *o, nc_tls_ctx **out,
                      char *errbuf, size_t errlen);

/* Create a TLS context for clients (nc_connect).
 *
 * The server's certificate is verified by default, against ca_file or
 * the system's store, and must carry the name in
 * nc_connect_options.server_name (or the address connected to). Sessions
 * are kept per server name in the context, so that a second connection
 * to a server resumes (a shorter handshake). o may be NULL: all the
 * defaults. errbuf and errlen as for nc_tls_server_new().
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    out is NULL, a key without a certificate or the reverse, a
 *              key that does not match, or a malformed alpn list
 *   -ENOENT    a file does not exist
 *   -EACCES    a file cannot be read
 *   -EBADMSG   a file holds no valid PEM certificate or key
 *   -ENOMEM    out of memory
 *   -ENOTSUP   the library was built without OpenSSL
 * Thread: any thread.
 * See also: nc_tls_server_new, nc_connect, nc_tls_ctx_free
 */
int nc_tls_client_new(const nc_tls_options *o, nc_tls_ctx **out,
                      char *errbuf, size_t errlen);

/* Serve another certificate to clients that ask for name (SNI).
 *
 * A server context answers a client whose SNI matches name with this
 * certificate and key, and every other client with the context's own.
 * name is a DNS name, or "*.example.com" for one label below it. Call it
 * before the context is in use. errbuf and errlen as for
 * nc_tls_server_new().
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    a NULL argument, an empty name, a client context, or a key
 *              that does not match the certificate
 *   -ENOENT    a file does not exist
 *   -EACCES    a file cannot be read
 *   -EBADMSG   a file holds no valid PEM certificate or key
 *   -ENOMEM    out of memory
 *   -ENOTSUP   the library was built without OpenSSL
 * Thread: any thread, before the context is used by a loop.
 * See also: nc_tls_server_new
 */
int nc_tls_add_name(nc_tls_ctx *ctx, const char *name, const char *cert_file,
                    const char *key_file, char *errbuf, size_t errlen);

/* Replace a server context's certificate and key, for new handshakes.
 *
 * Loads cert_file (the chain, PEM) and key_file as nc_tls_server_new()
 * does; every handshake that starts afterwards, in any loop or thread
 * using ctx, presents them. Connections already open, or with their
 * handshake under way, keep the certificate they have, and the rest of
 * the context stays: trust for client certificates, ALPN, session
 * tickets (a session resumed across the change keeps the certificate it
 * was made with), and the SNI certificates of nc_tls_add_name(), which
 * are not replaced. This is what a server does on SIGHUP once a renewed
 * certificate has been written: the example servers do. On failure
 * nothing changes, and errbuf and errlen are as for nc_tls_server_new().
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    a NULL argument, a client context, or a key that does not
 *              match the certificate
 *   -ENOENT    a file does not exist
 *   -EACCES    a file cannot be read
 *   -EBADMSG   a file holds no valid PEM certificate or key
 *   -ENOMEM    out of memory
 *   -ENOTSUP   the library was built without OpenSSL
 * Thread: any thread, also while loops of other threads use ctx.
 * See also: nc_tls_server_new, nc_tls_add_name
 */
int nc_tls_set_cert(nc_tls_ctx *ctx, const char *cert_file,
                    const char *key_file, char *errbuf, size_t errlen);

/* Release the caller's reference to a TLS context.
 *
 * Listeners and connections that use the context keep it alive until
 * they end; it is freed with the last of them. NULL is allowed.
 *
 * Thread: any thread.
 * See also: nc_tls_server_new, nc_tls_client_new
 */
void nc_tls_ctx_free(nc_tls_ctx *ctx);

/* What the TLS handshake of a connection agreed, and about whom. */
typedef struct nc_tls_info {
    const char *protocol;    /* "TLSv1.3", "TLSv1.2" (static); "" before
                                the handshake completed */
    const char *cipher;      /* "TLS_AES_256_GCM_SHA384" (static) or "" */
    char alpn[32];           /* the protocol ALPN selected, or "" */
    char server_name[256];   /* the SNI name (asked for, or sent), or "" */
    bool resumed;            /* a resumed session: no full handshake */
    bool peer_verified;      /* the peer's certificate was verified */
    long verify_result;      /* OpenSSL's X509_V_* code (0 = ok) */
    char peer_subject[256];  /* "CN=localhost", or "" without one */
    char peer_issuer[256];
    int64_t peer_not_after;  /* the certificate's expiry, seconds since the
                                epoch; 0 without one */
} nc_tls_info;

/* What the TLS handshake of connection c agreed.
 *
 * Also valid inside on_close, to tell why a handshake failed: the peer's
 * certificate (subject, issuer, expiry) is there even when verification
 * refused it, with verify_result saying why.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL    c or out is NULL
 *   -ENOTSUP   c does not speak TLS, or the library has no TLS
 * Thread: the loop's thread.
 * See also: nc_tls_server_new, nc_conn_tcp_info
 */
int nc_conn_tls_info(const nc_conn *c, nc_tls_info *out);

/* ------------------------------------------------------------------------
 * Counters and graceful stop (lib/stats.c, lib/shutdown.c)
 *
 * Every loop counts, without locks, what it does: iterations, events, the
 * time it spent blocked in the kernel and running callbacks (how busy it
 * is), and its connections: opened, open now, closed by reason, bytes in
 * and out, accept errors and descriptor shortages. Any thread may read
 * them while the loop runs. nc_loop_shutdown() ends a loop's service
 * gracefully: no new connections, idle ones closed, replies in flight
 * flushed, the rest reset at a deadline.
 *
 * Example: docs/examples/shutdown.c
 * ---------------------------------------------------------------------- */

/* A loop's counters, from nc_loop_stats_get().
 *
 * The connection counters add up: accepted + connected == open + the sum
 * of closed[]. Outgoing connects that failed before opening are counted
 * in connect_failed only. blocked_ns and busy_ns count completed waits
 * and completed stretches of work, so a loop blocked right now shows the
 * current wait only once it ends; busy_ns / (busy_ns + blocked_ns) over
 * an interval is how busy the loop was (libuv's uv_metrics_idle_time is
 * blocked_ns).
 */
typedef struct nc_loop_stats {
    uint64_t iterations;      /* loop iterations (waits: epoll_wait, or
                                 io_uring_enter) */
    uint64_t events;          /* events dispatched (readiness events, or
                                 completions) */
    uint64_t blocked_ns;      /* time blocked in the wait */
    uint64_t busy_ns;         /* time outside it: callbacks, timers, I/O */
    uint64_t accepted;        /* connections accepted and opened */
    uint64_t connected;       /* outgoing connections opened */
    uint64_t open;            /* opened and not yet closed */
    uint64_t closed[NC_CLOSE_REASON_LAST + 1];  /* opened connections
                                 closed, by nc_close_reason; [0] unused */
    uint64_t connect_failed;  /* outgoing connects that never opened */
    uint64_t bytes_in;        /* bytes received on connections */
    uint64_t bytes_out;       /* bytes the kernel took for sending */
    uint64_t accept_errors;   /* transient accept failures survived */
    uint64_t fd_exhausted;    /* accept() failed for lack of descriptors */
    uint64_t shed;            /* connections reset at once because the
                                 process was out of descriptors, over
                                 max_conns_per_addr, or over a worker's
                                 max_conns (nc_workers_listen) */
    uint64_t evicted;         /* idle connections closed to admit new
                                 ones (evict_idle) */
} nc_loop_stats;

/* Read a loop's counters into *out.
 *
 * The counters are written by the loop's thread alone, without locks
 * (relaxed atomic stores); this reads them without stopping the loop.
 * From another thread the values are a few nanoseconds apart, not one
 * instant, but the connection counters always add up: a read that falls
 * between the two counters of one opening or closing is repeated.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  loop or out is NULL
 * Thread: any thread, while the loop exists.
 * See also: nc_workers_stats, nc_listener_stats_get
 */
int nc_loop_stats_get(const nc_loop *loop, nc_loop_stats *out);

/* Stop a loop's service gracefully, bounded by a deadline.
 *
 * At once, every listener of the loop is stopped (nc_listener_stop: its
 * sockets are closed, so the kernel refuses new connections rather than
 * the library accepting and dropping them), connections still connecting
 * or in their TLS handshake are closed (on_open never ran for them), and
 * every open connection is closed gracefully, as by
 * nc_conn_close(): one with nothing queued goes at once with FIN, one
 * with queued output first sends it all, then FIN, and waits for the
 * peer's FIN (up to linger_ms) rather than answer a peer that was still
 * sending with a reset that could destroy the end of the reply. Their
 * on_close reports NC_CLOSE_SHUTDOWN with err 0. Connections already
 * closing finish as
 * they were. A connection that opens later during the shutdown (an
 * nc_connect() made meanwhile, or one handed over by the workers'
 * acceptor) is closed the same way.
 *
 * When grace_ms have passed, whatever is left is reset (RST; queued
 * output is dropped) and reported as NC_CLOSE_SHUTDOWN with -ETIMEDOUT.
 * grace_ms 0 resets at the next iteration everything that could not
 * close at once.
 *
 * Once no connection is left and every on_close has run, nc_loop_run()
 * returns, in any run mode, even with timers, watchers or signal
 * handlers still active (they stay yours); called while the loop does not
 * run, the next nc_loop_run() does that. Every on_close runs exactly
 * once, in the loop's thread. A call during a shutdown in progress can
 * only bring its deadline closer (a second Ctrl-C: grace_ms 0); a call
 * after a shutdown completed starts a new one.
 *
 * Returns: 0 on success, or a negative errno; then nothing changed.
 * Errors:
 *   -EINVAL  loop is NULL, or grace_ms is above 2^31-1 (24.8 days)
 *   -ENOMEM  out of memory
 * Thread: the loop's thread. To stop on a signal, call it from an
 * nc_signal_start() callback; for a loop of nc_workers, use
 * nc_workers_stop().
 * See also: nc_workers_stop, nc_listener_stop, nc_conn_close
 */
int nc_loop_shutdown(nc_loop *loop, uint32_t grace_ms);

/* ------------------------------------------------------------------------
 * Workers (lib/workers.c, lib/workers_listen.c)
 *
 * The standard shape of a multi-core server on Linux: N threads, each
 * running its own loop, each with its own listening socket on the same
 * address (SO_REUSEPORT), so that the kernel spreads the connections and
 * no lock is shared on the hot path. Every connection lives its whole
 * life, from on_open to on_close, on the worker that accepted it.
 *
 * Where SO_REUSEPORT cannot serve (unix: endpoints, or a kernel that
 * refuses it), worker 0 accepts alone and hands each accepted socket to
 * the workers in turn (round-robin) through nc_loop_post(); the
 * connection is then opened on its worker, with the same callbacks, and
 * nothing in them can tell the difference.
 *
 * A typical main():
 *
 *   nc_workers_options o = {.threads = 0, .on_start = start};
 *   nc_workers *w;
 *   if (nc_workers_start(&o, &w) == 0 &&
 *       nc_workers_listen(w, "*:8080", NULL, &cbs, NULL) > 0)
 *       nc_workers_run(w, 5000);      // until SIGINT or SIGTERM
 *   nc_workers_free(w);
 *
 * Example: docs/examples/workers.c
 * ---------------------------------------------------------------------- */

/* A group of worker threads, each with its own loop (opaque). */
typedef struct nc_workers nc_workers;

/* How nc_workers_listen() spreads connections over the workers. */
typedef enum nc_workers_accept {
    NC_WORKERS_ACCEPT_AUTO = 0,    /* SO_REUSEPORT, or the acceptor where
                                      that cannot serve */
    NC_WORKERS_ACCEPT_REUSEPORT,   /* one socket per worker; the kernel
                                      hashes each connection to one */
    NC_WORKERS_ACCEPT_HANDOFF      /* worker 0 accepts, and hands the
                                      sockets out round-robin */
} nc_workers_accept;

/* Settings of nc_workers_start(). A zeroed struct gives the defaults.
 *
 * on_start runs first in each worker's thread, with its loop: create the
 * worker's own state there (nc_loop_set_data), start timers, open client
 * connections. A negative return fails nc_workers_start(). on_stop runs
 * in the worker's thread when it ends, after every connection of its
 * loop has closed (every on_close has run) and before the loop is freed.
 * Both are called with ud.
 */
typedef struct nc_workers_options {
    unsigned threads;          /* workers (0 = one per online CPU; at
                                  most 1024) */
    bool pin;                  /* worker i runs on the i-th CPU the
                                  process may use (sched_getaffinity),
                                  wrapping around */
    nc_workers_accept accept;  /* default NC_WORKERS_ACCEPT_AUTO */
    int (*on_start)(nc_loop *loop, unsigned index, void *ud);
    void (*on_stop)(nc_loop *loop, unsigned index, void *ud);
    void *ud;
} nc_workers_options;

/* Start worker threads, each running its own loop.
 *
 * Creates the loops (and the one nc_workers_run() will serve signals on,
 * with its signalfd, so that clients who take every descriptor once the
 * listeners are open cannot keep it from starting), then the threads,
 * and returns when every worker's on_start has returned: the loops then
 * run (NC_RUN_FOREVER) until
 * nc_workers_stop(). The threads are created with SIGINT, SIGTERM, SIGHUP
 * and SIGQUIT blocked, so that a handler for them on another loop
 * (nc_workers_run(), nc_signal_start()) receives them; the caller's own
 * mask is unchanged. With pin, each thread is bound to one CPU before
 * on_start runs. The caller owns *out and frees it with
 * nc_workers_free().
 *
 * Returns: 0 on success, or a negative errno; then every worker that had
 * started has been stopped (its on_stop ran if its on_start had
 * succeeded), nothing is left running and *out is untouched.
 * Errors:
 *   -EINVAL  out is NULL, or threads is above 1024
 *   -ENOMEM  out of memory
 *   -EAGAIN  a thread could not be created (a system limit)
 *   -EMFILE  the process has no descriptor left for a loop
 *   other    the negative value an on_start returned, or the errno of
 *            pthread_setaffinity_np() with pin
 * Thread: any thread but a worker's.
 * See also: nc_workers_listen, nc_workers_stop, nc_workers_free
 */
int nc_workers_start(const nc_workers_options *opts, nc_workers **out);

/* Listen on an endpoint in every worker.
 *
 * With SO_REUSEPORT (NC_WORKERS_ACCEPT_REUSEPORT, or AUTO for IP
 * endpoints) each worker binds its own listener on the endpoint, as
 * nc_listen() with opts, cbs and ud would, plus reuseport; with port 0
 * every worker gets the port the kernel gave the first. Only the workers
 * share it: worker 0 binds first without SO_REUSEPORT and sets it only
 * before listen(), so that a port any other socket holds (another server,
 * even one that allows sharing) fails with -EADDRINUSE, as with one
 * nc_listen(), and opts->errbuf names the holder. The kernel
 * spreads the connections by a hash of their addresses and ports, which
 * can leave a worker idle when there are few clients (see
 * docs/performance.md). With NC_WORKERS_ACCEPT_HANDOFF, or AUTO for
 * unix: endpoints or where the kernel refuses SO_REUSEPORT, worker 0
 * binds the one listener and hands the accepted sockets to the workers in
 * turn; its own connections are opened like the others. Then max_conns
 * counts each worker's connections: one handed to a worker at its limit
 * is reset and counted as shed. Either way callbacks run on the worker
 * that owns the connection: the same ud for all, per-worker state through
 * nc_loop_data(nc_conn_loop(c)). The addresses bound are added to
 * nc_workers_addrs(). Listeners stay until the workers stop. A failure
 * is said in opts->errbuf as nc_listen() says it.
 *
 * Returns: NC_WORKERS_ACCEPT_REUSEPORT or NC_WORKERS_ACCEPT_HANDOFF (both
 * positive), the way connections are spread; or a negative errno, and
 * then nothing is left bound in any worker.
 * Errors:
 *   -EINVAL      w or endpoint is NULL, or the endpoint text is malformed
 *   -ESHUTDOWN   nc_workers_stop() was called
 *   -EDEADLK     called from a worker's thread
 *   -ENOPROTOOPT NC_WORKERS_ACCEPT_REUSEPORT where the kernel refuses it
 *                (or for a unix: endpoint, which cannot share a path)
 *   any error of nc_listen(): -EADDRINUSE, -EACCES, -ENODEV, ...
 * Thread: any thread but a worker's; it waits for the workers to bind.
 * See also: nc_workers_addrs, nc_listen, nc_listener_options
 */
int nc_workers_listen(nc_workers *w, const char *endpoint,
                      const nc_listener_options *opts,
                      const nc_conn_callbacks *cbs, void *ud);

/* The addresses the workers listen on.
 *
 * Every address nc_workers_listen() bound, in the order of the calls and
 * of each listener's sockets, with the real port (as nc_listener_addr()
 * gives them): each worker has the same ones. For "listening on" lines
 * and nc_iface_reach_warning(). Writes at most max addresses into out and
 * the total into *count (call with max 0 to count).
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  w or count is NULL, or out is NULL with max > 0
 * Thread: any thread.
 * See also: nc_workers_listen, nc_addr_format
 */
int nc_workers_addrs(const nc_workers *w, nc_addr *out, size_t max,
                     size_t *count);

/* The number of workers.
 *
 * Returns: the number of workers; 0 for NULL.
 * Thread: any thread.
 * See also: nc_workers_loop
 */
unsigned nc_workers_count(const nc_workers *w);

/* The loop of worker index.
 *
 * For use in that worker's own thread (on_start, on_stop, callbacks,
 * posted calls), like any loop. Another thread must not use it once the
 * worker may have ended: it reaches a worker with nc_workers_post() and
 * reads its counters with nc_workers_stats(), which are safe at any time.
 * Calling nc_loop_shutdown() on it ends that worker alone, once the
 * shutdown completes; nc_loop_stop() on it is ignored (the worker runs
 * on).
 *
 * Returns: the loop; NULL for a NULL w or an index out of range.
 * Thread: any thread.
 * See also: nc_workers_post, nc_workers_count
 */
nc_loop *nc_workers_loop(const nc_workers *w, unsigned index);

/* A function run in a worker's thread by nc_workers_post(). */
typedef void (*nc_worker_fn)(nc_loop *loop, unsigned index, void *arg);

/* Run fn(loop, index, arg) in worker index's thread, soon.
 *
 * Through the worker's nc_loop_post(): calls from one thread run in the
 * order posted, each accepted call exactly once, even when the worker is
 * stopping (it runs before the worker's loop is freed).
 *
 * Returns: 0 on success, or a negative errno; then fn will not run.
 * Errors:
 *   -EINVAL     w or fn is NULL, or index is out of range
 *   -ENOMEM     out of memory
 *   -ESHUTDOWN  the worker has ended
 * Thread: any thread, while w exists (also a worker's).
 * See also: nc_workers_post_all, nc_loop_post
 */
int nc_workers_post(nc_workers *w, unsigned index, nc_worker_fn fn,
                    void *arg);

/* Run fn in every worker's thread, soon.
 *
 * As nc_workers_post() for each worker in turn. Workers that have ended
 * (or a post that finds no memory) are skipped: the count returned is
 * how many times fn will run, which is what to wait for before freeing
 * arg.
 *
 * Returns: the number of workers that will run fn (0 when all have
 * ended), or a negative errno.
 * Errors:
 *   -EINVAL  w or fn is NULL
 * Thread: any thread, while w exists (also a worker's).
 * See also: nc_workers_post
 */
int nc_workers_post_all(nc_workers *w, nc_worker_fn fn, void *arg);

/* Stop the workers gracefully; returns at once.
 *
 * Each worker runs nc_loop_shutdown(grace_ms) on its loop: its listeners
 * are closed at once (the kernel refuses new connections), idle
 * connections close, those with queued output flush it first, and what
 * is left after grace_ms is reset. A worker then runs on_stop and ends.
 * Calling it again can only bring the deadline closer (grace_ms 0:
 * reset what is left now). Use nc_workers_wait() to join the threads.
 *
 * Returns: 0 on success, or a negative errno.
 * Errors:
 *   -EINVAL  w is NULL, or grace_ms is above 2^31-1
 * Thread: any thread, while w exists: also from a worker's callbacks,
 * and from an nc_signal_start() callback of any loop (it takes a mutex:
 * never from an asynchronous signal handler).
 * See also: nc_workers_wait, nc_workers_run, nc_loop_shutdown
 */
int nc_workers_stop(nc_workers *w, uint32_t grace_ms);

/* Wait until every worker has ended, and join the threads.
 *
 * Blocks until the workers are stopped (nc_workers_stop(), or
 * nc_workers_run() in another thread). Calling it again returns the same
 * result at once.
 *
 * Returns: 0 when every worker ended normally, or the first negative
 * errno with which a worker's nc_loop_run() failed.
 * Errors:
 *   -EINVAL   w is NULL
 *   -EDEADLK  called from a worker's thread
 *   other     a worker's loop failed with it (its connections were then
 *             closed by nc_loop_free())
 * Thread: any thread but a worker's.
 * See also: nc_workers_stop, nc_workers_free
 */
int nc_workers_wait(nc_workers *w);

/* Serve until SIGINT or SIGTERM: the rest of a server's main().
 *
 * Handles SIGINT and SIGTERM on a loop of its own in the calling thread
 * (nc_signal_start(): the signals are blocked in the calling thread
 * meanwhile, and are already blocked in the workers). The first of them
 * calls nc_workers_stop(w, grace_ms), a second one nc_workers_stop(w, 0).
 * Returns when every worker has ended, however they were stopped. Block
 * SIGINT and SIGTERM before printing anything that makes someone send
 * them (a "listening on" line): until this runs, they would take their
 * default action. Other signals keep theirs: SIGHUP (a "reload", or a
 * terminal that closed) and SIGQUIT end the process on the spot, replies
 * in flight and all. Block SIGHUP in this thread too and handle it with
 * nc_signal_start() on a worker's loop (the workers have it blocked), as
 * the example servers do to read their TLS certificate again
 * (nc_tls_set_cert()).
 *
 * Returns: what nc_workers_wait() returns, or a negative errno.
 * Errors:
 *   -EINVAL   w is NULL, or grace_ms is above 2^31-1
 *   -EDEADLK  called from a worker's thread
 *   -ENOMEM   out of memory
 *   any other errno of nc_signal_start(), or of nc_loop_new() when a
 *   second call makes its own loop (the first uses the one
 *   nc_workers_start() made: it needs no descriptor); after any of these
 *   the workers are stopped with grace_ms and waited for
 * Thread: any thread but a worker's; usually main().
 * See also: nc_workers_stop, nc_workers_wait, nc_signal_start
 */
int nc_workers_run(nc_workers *w, uint32_t grace_ms);

/* Read every worker's counters, and their sum.
 *
 * Writes the counters of workers 0 to n-1 into per_worker (fewer if there
 * are fewer workers) and the sum over all workers into *total; either
 * may be NULL. The workers are not stopped: each worker's counters are
 * read as nc_loop_stats_get() reads them. A worker that has ended keeps
 * the counters it had when its loop was freed, so a summary can be
 * printed after nc_workers_wait().
 *
 * Returns: the number of workers, or a negative errno.
 * Errors:
 *   -EINVAL  w is NULL, or per_worker is NULL with n > 0
 * Thread: any thread, while w exists.
 * See also: nc_loop_stats_get, nc_workers_count
 */
int nc_workers_stats(const nc_workers *w, nc_loop_stats *per_worker,
                     size_t n, nc_loop_stats *total);

/* Stop the workers if they run, wait for them, and free w.
 *
 * Workers still running are stopped with no grace (as
 * nc_workers_stop(w, 0)) and joined first. NULL is allowed. Every
 * pointer to the workers' loops and their objects is invalid afterwards.
 *
 * Thread: any thread but a worker's (from a worker it does nothing).
 * See also: nc_workers_start, nc_workers_wait
 */
void nc_workers_free(nc_workers *w);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* NETCORE_H */
