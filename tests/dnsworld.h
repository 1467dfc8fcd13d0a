/* dnsworld.h - a private world for the tests of host names: this
 * process's own mount and network namespaces, where /etc/resolv.conf,
 * /etc/hosts and /etc/nsswitch.conf are files the test writes (bind
 * mounts nobody else sees), loopback is its own, and DNS servers are
 * dnsmasq processes the test starts on 127.0.0.x:53, or sockets that
 * never answer. The machine's own resolver and its configuration are
 * never touched nor asked: a test that cannot build the world skips
 * (fails under CI=true). */
#ifndef NC_TEST_DNSWORLD_H
#define NC_TEST_DNSWORLD_H

#include <stdbool.h>
#include <sys/types.h>

/* Enter the world: call first in main(), before any thread exists (the
 * namespaces are the calling thread's, and threads created later
 * inherit them). Returns NULL, or why the world cannot be built here. */
const char *dnsworld_enter(void);
/* Whether dnsworld_enter() succeeded. */
bool dnsworld_ready(void);
/* Skip the calling test (fail it under CI=true), saying why. */
void dnsworld_skip(const char *why);
/* Replace the world's /etc/resolv.conf and /etc/hosts. */
void dnsworld_resolv(const char *text);
void dnsworld_hosts(const char *text);
/* The path of the file behind the world's /etc/hosts. */
const char *dnsworld_hosts_path(void);

/* dnsmasq serving records (its command-line options, NULL-terminated:
 * "--host-record=a.test,127.0.0.1", ...) on the IPv4 address addr, port
 * 53, in the current network namespace; returns once it answers a query
 * there (at most 3 s). Returns 0 or a negative errno. */
struct dnsmasq {
    pid_t pid;
};
int dnsmasq_start(struct dnsmasq *d, const char *addr,
                  const char *const *records);
void dnsmasq_stop(struct dnsmasq *d);

/* A DNS server that never answers: a UDP socket bound to addr:53 that
 * nobody reads. Returns the fd (close it to end it) or -errno. */
int silent_server(const char *addr);

/* An upstream server that answers every query with SERVFAIL, on
 * addr:53 (UDP), from a thread of its own, for dnsmasq to forward a
 * domain to. Returns 0 or a negative errno. */
struct servfail {
    int fd, stop[2];
    unsigned long answered;
    void *thread;
};
int servfail_start(struct servfail *s, const char *addr);
void servfail_stop(struct servfail *s);

#endif
