/*
 * explain.c - the likely cause of an error, in plain words, for the person
 * reading a log. Each text says what happened and what to check; the
 * system's own text is nc_strerror()'s job.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>

static const char generic_text[] =
    "no specific explanation for this error during this operation; "
    "see the system error text";

/* Errors of endpoint text, the same for nc_listen and nc_connect. */
static const char *explain_endpoint(int e)
{
    switch (e) {
    case ENODEV:
        return "unknown interface or scope: no network interface has that "
               "name (a word without a dot is an interface name and is not "
               "looked up; to connect to a host, write its name with the "
               "domain, example.com:443, or end it with a dot, myhost.:80; "
               "listening takes an IP address, an interface name or "
               "localhost); list the interfaces with netcore-doctor ifaces";
    case ERANGE:
        return "the port is out of range: a port is a decimal number from "
               "0 to 65535 (0, when listening, lets the kernel choose)";
    case ENAMETOOLONG:
        return "a name is too long: a Unix socket path has at most 107 "
               "bytes, an interface name at most 15";
    default:
        return NULL;
    }
}

#define ENDPOINT_FORMS \
    "an IPv4 address is four numbers from 0 to 255 (192.0.2.1:7000), an " \
    "IPv6 address needs brackets before a port ([::1]:7000); the other " \
    "forms are IFACE:PORT, *:PORT, localhost:PORT and unix:/path"

static const char *explain_connect(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return "connection refused: nothing is listening at that address "
               "and port; if the server runs on another host, check it is "
               "not bound to loopback (127.0.0.1 or ::1) only, and that it "
               "is running";
    case EHOSTUNREACH:
        return "no route to host: a firewall on the server host or on the "
               "path is rejecting the port (e.g. firewalld answers with "
               "ICMP admin-prohibited), or there is no route to that host";
    case ENETUNREACH:
        return "network unreachable: this host has no route to that "
               "network; check the address, that an interface is up on "
               "that network, and the default route";
    case ETIMEDOUT:
        return "no answer: packets are being dropped silently, by a "
               "firewall or because the host is down (or the address "
               "belongs to no host)";
    case ECONNRESET:
        return "the server reset the connection while it was being set "
               "up: the server or a firewall on the path answered with a "
               "reset (RST), e.g. because its accept queue is full";
    case EADDRNOTAVAIL:
        return "no local address is available: the local address to bind "
               "is not on any interface of this host, or every local port "
               "toward that server is in use (many connections in "
               "TIME_WAIT; see net.ipv4.ip_local_port_range)";
    case EACCES:
    case EPERM:
        /* Linux reports an ICMPv6 administratively-prohibited answer (a
         * firewall rejecting the port on the server host) as EACCES too. */
        return "the connection was blocked by a firewall: on the server "
               "host or the path, a rule rejecting the port (over IPv6 an "
               "ICMPv6 'administratively prohibited' answer reads as "
               "permission denied), or on this host a local firewall rule "
               "(iptables/nftables), a bpf program or a security policy "
               "(SELinux, seccomp)";
    case EAFNOSUPPORT:
        return "address family not supported: the address does not match "
               "the socket's family (IPv4 vs IPv6), or IPv6 is disabled on "
               "this host";
    case EINVAL:
        return "invalid endpoint: the text is malformed, or it is *:PORT, "
               "which stands for all addresses and cannot be connected to "
               "(name one); " ENDPOINT_FORMS "; for a connect() of your "
               "own, the address does not fit the socket";
    case ENOENT:
        return "no Unix socket at that path: the server is not running, or "
               "it listens on another path (a libnetcore server removes its "
               "socket file when it stops)";
    default:
        return explain_endpoint(e);
    }
}

static const char *explain_accept(int e)
{
    switch (e) {
    case EMFILE:
        return "out of file descriptors (this process's limit): raise the "
               "limit (ulimit -n, LimitNOFILE=) or close idle connections; "
               "the library sheds the connection (accepts and closes it at "
               "once) so the listener does not spin";
    case ENFILE:
        return "out of file descriptors (the whole system's limit, "
               "fs.file-max): raise the limit or close idle connections; "
               "the library sheds the connection (accepts and closes it at "
               "once) so the listener does not spin";
    case ECONNABORTED:
        return "a client gave up its connection before it was accepted; "
               "harmless, the listener carries on";
    case EPROTO:
        return "a pending connection failed with a protocol error before "
               "it was accepted; harmless, the listener carries on";
    case ENOBUFS:
    case ENOMEM:
        return "the kernel is short of memory for sockets: the listener "
               "backs off and retries; check the host's memory and the TCP "
               "memory limits (net.ipv4.tcp_mem)";
    default:
        return NULL;
    }
}

static const char *explain_bind(int e)
{
    switch (e) {
    case EADDRINUSE:
        return "address already in use: another socket holds that address "
               "and port (find it with ss -ltnp); a previous server whose "
               "connections are in TIME_WAIT is not the cause, since the "
               "library sets SO_REUSEADDR; for a unix: path, a server is "
               "listening on it, or something that is not a stale socket "
               "file is there (a file, a directory, a symbolic link), which "
               "the library never removes";
    case EADDRNOTAVAIL:
        return "that address is not on any interface of this host: list "
               "them with netcore-doctor ifaces, then bind one of them, an "
               "interface name, or all addresses";
    case EACCES:
        return "permission denied: ports below 1024 need root or "
               "CAP_NET_BIND_SERVICE; for a Unix socket, the directory must "
               "be writable";
    case ENOENT:
        return "the directory of the Unix socket path does not exist";
    case EINVAL:
        return "invalid endpoint: the text is not an address, interface or "
               "port the library can read; " ENDPOINT_FORMS "; for a bind() "
               "of your own, the socket may already be bound";
    default:
        return explain_endpoint(e);
    }
}

static const char *explain_stream(int e)
{
    switch (e) {
    case ECONNRESET:
        return "the peer reset the connection (RST): it crashed, was "
               "killed, aborted, or closed with unread data; what was still "
               "in flight is lost";
    case EPIPE:
        return "broken pipe: writing after the connection was closed (the "
               "peer reset it, or this side shut down writing); the library "
               "sends with MSG_NOSIGNAL, so this is an error, not SIGPIPE";
    case ETIMEDOUT:
        return "the connection timed out: keepalive or retransmission gave "
               "up after the peer stopped answering (host down, network "
               "cut, or a firewall or NAT dropped the connection)";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "the peer became unreachable: an ICMP error reported that "
               "the route to it is gone or a firewall now rejects it";
    case ENOTCONN:
        return "the socket is not connected: the connection never "
               "completed, or it was shut down";
    default:
        return NULL;
    }
}

/* TLS failures: whatever the operation, reported with NC_CLOSE_TLS. */
static const char *explain_tls(int e)
{
    switch (e) {
    case NC_ETLS_NOT_TLS:
        return "the peer does not speak TLS: most likely plain HTTP (or "
               "another clear-text protocol) sent to a TLS port, or a TLS "
               "client talking to a plain-text server; check the port and "
               "the scheme (http vs https)";
    case NC_ETLS_VERSION:
        return "the two sides have no TLS version in common: this library "
               "speaks TLS 1.2 and 1.3; the peer is too old, or configured "
               "for other versions";
    case NC_ETLS_CERT_EXPIRED:
        return "the peer's certificate has expired (or is not valid yet): "
               "renew the certificate, and check that both hosts' clocks "
               "are right";
    case NC_ETLS_CERT_UNTRUSTED:
        return "the peer's certificate is not signed by a CA this side "
               "trusts (an unknown or private CA, or a self-signed "
               "certificate): give its CA as ca_file, or fix the chain the "
               "server sends";
    case NC_ETLS_CERT_NAME:
        return "the peer's certificate is for another host name or address "
               "than the one connected to: connect by a name the "
               "certificate lists (server_name), or issue a certificate "
               "for this name";
    case NC_ETLS_NO_CERT:
        return "a certificate was required and the peer sent none: the "
               "server asks for client certificates; give the client one "
               "(cert_file, key_file)";
    case NC_ETLS_PEER_REJECTED:
        return "the peer ended the handshake with an alert: it did not "
               "accept our certificate (unknown CA, expired, wrong name) "
               "or our parameters; its own log says which";
    case NC_ETLS_TRUNCATED:
        return "the peer closed the connection without TLS's close_notify: "
               "it crashed, was killed, or something on the path cut the "
               "connection; data may be missing at the end";
    case NC_ETLS_PROTOCOL:
        return "the peer sent malformed or unexpected TLS data";
    case NC_ETLS_RENEGOTIATION:
        return "the peer asked to renegotiate the TLS session, which this "
               "library refuses (renegotiation is a known attack surface)";
    default:
        return NULL;
    }
}

/* Name lookup failures: whatever the operation. */
static const char *explain_dns(int e)
{
    switch (e) {
    case NC_EDNS_NOT_FOUND:
        return "no such host name: the DNS says the name does not exist "
               "(NXDOMAIN) and no hosts file has it; check the spelling, "
               "the domain, and the search domains of /etc/resolv.conf "
               "(netcore-doctor resolve NAME shows what is asked)";
    case NC_EDNS_NO_ADDRESS:
        return "the host name exists but has no address of the family "
               "asked (no AAAA record for IPv6, or no A record for IPv4); "
               "allow the other family, or add the record";
    case NC_EDNS_SERVER_FAILED:
        return "the DNS server could not answer (SERVFAIL: its upstream or "
               "the name's own servers failed, or a DNSSEC check failed), "
               "or, without c-ares, no server answered in time; try again "
               "later, or check the servers in /etc/resolv.conf";
    case NC_EDNS_REFUSED:
        return "the DNS server refused the query: it does not serve this "
               "host (an authoritative-only server, or one that answers its "
               "own network only); fix the nameserver lines of "
               "/etc/resolv.conf";
    case NC_EDNS_TIMEOUT:
        return "no DNS server answered in time: the servers in "
               "/etc/resolv.conf are down, unreachable, or a firewall drops "
               "DNS (UDP and TCP port 53)";
    case NC_EDNS_NO_SERVER:
        return "no DNS server could be reached: nothing listens on port 53 "
               "at the addresses in /etc/resolv.conf (the connection was "
               "refused), or none is configured";
    case NC_EDNS_BAD_ANSWER:
        return "the DNS server sent an answer that could not be understood, "
               "or does not implement the query; check the server";
    default:
        return NULL;
    }
}

/* Errors that mean the same whatever the operation. */
static const char *explain_any(int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK)
        return "not an error: the operation would block; wait until the "
               "socket is ready and try again";
    switch (e) {
    case 0:
        return "no error";
    case EINTR:
        return "interrupted by a signal before anything happened; retry";
    case EMFILE:
    case ENFILE:
        return "out of file descriptors: raise the limit (ulimit -n, "
               "LimitNOFILE=) or close idle connections";
    case ENOBUFS:
    case ENOMEM:
        return "out of memory for socket buffers; check the host's memory";
    case EBADF:
    case ENOTSOCK:
        return "the descriptor is closed or is not a socket: a descriptor "
               "was used after being closed (a bug in the program)";
    default:
        return NULL;
    }
}

const char *nc_explain(nc_op op, int err)
{
    int e = nc__positive_errno(err);
    const char *text = NULL;

    switch (op) {
    case NC_OP_CONNECT:
        text = explain_connect(e);
        break;
    case NC_OP_ACCEPT:
        text = explain_accept(e);
        break;
    case NC_OP_BIND:
        text = explain_bind(e);
        break;
    case NC_OP_READ:
    case NC_OP_WRITE:
        text = explain_stream(e);
        break;
    }
    if (!text)
        text = explain_tls(e);
    if (!text)
        text = explain_dns(e);
    if (!text)
        text = explain_any(e);
    return text ? text : generic_text;
}
