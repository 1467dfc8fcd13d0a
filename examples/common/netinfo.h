/*
 * netinfo.h - printing addresses, interfaces and connect failures the
 * same way in every example program.
 */
#ifndef EXAMPLES_NETINFO_H
#define EXAMPLES_NETINFO_H

#include <stdbool.h>
#include <stdio.h>

#include "netcore.h"

/* The host part of a, without the port: "192.0.2.1", "::1",
 * "fe80::1%eth0", or "unix:/path". Returns the length, or -EINVAL,
 * -ENOSPC. */
int netinfo_host(const nc_addr *a, char *buf, size_t len);

/* The interface in list holding a (an exact address, else the one whose
 * prefix contains it), or NULL. */
const nc_iface *netinfo_iface_of(const nc_iface_list *list, const nc_addr *a);

/* Where a bound address accepts connections, for "listening on A (WHERE)":
 * the interface's name ("eth0"), "all interfaces" for a wildcard, "unix",
 * or "no interface holds it". Returns buf. */
const char *netinfo_where(const nc_iface_list *list, const nc_addr *a,
                          char *buf, size_t len);

/* Print "listening on ADDRESS (WHERE; HOW)" for each of the n addresses
 * and flush f at once: scripts wait for these lines. how says how it is
 * served ("io_uring", "epoll, TLS"). */
void netinfo_print_listening(FILE *f, const nc_iface_list *list,
                             const nc_addr *addrs, size_t n,
                             const char *how);

/* When no other host can reach any of the n addresses, print the
 * library's warning to f, first line prefixed "PROG: warning: ". Returns
 * whether it printed. */
bool netinfo_print_reach_warning(FILE *f, const char *prog,
                                 const nc_iface_list *list,
                                 const nc_addr *addrs, size_t n);

/* Print "PROG: connect to TARGET failed: TEXT (ENAME)" and, on the next
 * line, the library's explanation of err for a connect. */
void netinfo_print_connect_failure(FILE *f, const char *prog,
                                   const char *target, int err);

/* For a connection to a host name whose addresses all failed (inside
 * on_close, with its err): print "PROG: " and nc_conn_explain()'s
 * sentence, which names every address tried and what happened to it.
 * Prints nothing for other connections, nor when the name itself could
 * not be looked up (netinfo_print_connect_failure said all there is). */
void netinfo_print_attempts(FILE *f, const char *prog, const nc_conn *c,
                            int err);

/* Why a backend cannot run here, in words, for nc_loop_new_with()'s err
 * with that backend asked for. */
const char *netinfo_backend_trouble(int err);

/* Why no loop could be made (nc_loop_new(), nc_workers_start()), in
 * words: NC_BACKEND's complaint when it names no backend, why the one it
 * names cannot run here, or the system's text for err. Returns buf (len
 * bytes) or a static string. */
const char *netinfo_loop_trouble(int err, char *buf, size_t len);

#endif /* EXAMPLES_NETINFO_H */
