/*
 * hosts.h - the hosts file (/etc/hosts, or $CARES_HOSTS), read once and
 * kept per loop, looked at again only when it changed (one stat() per
 * loop iteration at most). c-ares 1.18 opens and parses the file for
 * every lookup, which cost ten system calls per connect to a name (two
 * families); resolve_ares.c answers from here and asks c-ares for DNS
 * only.
 */
#ifndef NC_HOSTS_H
#define NC_HOSTS_H

#include "common.h"

struct hosts;

/* The addresses of family the file gives name (case-insensitive, by
 * canonical name or alias), at most max into out (port 0): how many it
 * gave. *path is the file's path, for "hosts file PATH". now_ns: the
 * loop's cached time (the file is looked at again only when it moved).
 * *h is created on first use; NULL stays NULL when memory is short (the
 * lookup then goes to DNS alone). */
size_t nc__hosts_find(struct hosts **h, uint64_t now_ns, const char *name,
                      int family, nc_addr *out, size_t max,
                      const char **path);
void nc__hosts_free(struct hosts *h);

#endif /* NC_HOSTS_H */
