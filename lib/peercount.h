/*
 * peercount.h - a listener's open connections counted by peer address,
 * for max_conns_per_addr (peercount.c).
 *
 * Two arrays, both grown only when they must be: an open-addressing
 * table (linear probing, at most half full, deletion by backward shift)
 * from an address to its count, and the address each counted descriptor
 * holds, indexed by fd, so that a close finds what to uncount from the
 * fd alone. A zeroed struct counts nothing and owns nothing: a listener
 * without the cap never allocates.
 */
#ifndef NC_PEERCOUNT_H
#define NC_PEERCOUNT_H

#include "common.h"

#include <sys/socket.h>

/* An IP address as 16 bytes, IPv4 as ::ffff:a.b.c.d (so an IPv4-mapped
 * IPv6 peer counts as its IPv4 address); all zero for no address. */
struct peer_key {
    uint64_t w[2];
};

struct peer_slot {
    struct peer_key key;
    uint32_t count;            /* 0: the slot is empty */
};

struct peercount {
    unsigned max;              /* connections allowed per address */
    uint64_t seed;             /* of the hash: a flood of chosen addresses
                                  cannot aim at one chain */
    struct peer_slot *slots;   /* mask + 1 of them, or NULL */
    uint32_t mask, used;
    struct peer_key *by_fd;    /* the address fd was counted under */
    size_t nfd;
};

enum peer_verdict {
    PEER_IN,                   /* counted (or not an IP peer: not capped) */
    PEER_OVER,                 /* its address has max connections open */
    PEER_NOMEM                 /* counting it needs memory there is not */
};

/* Start counting with max per address (0: never counts). */
void nc__peercount_init(struct peercount *pc, unsigned max);
/* Count the connection on fd from peer (len bytes; AF_INET or AF_INET6
 * are counted, other families are let in uncounted). fd must not be
 * counted already: each add is paired with one remove. */
enum peer_verdict nc__peercount_add(struct peercount *pc, int fd,
                                    const struct sockaddr *peer,
                                    socklen_t len);
/* The connection on fd is gone: uncount it, once (nothing if fd was not
 * counted). */
void nc__peercount_remove(struct peercount *pc, int fd);
/* How many connections from peer are counted now. */
unsigned nc__peercount_get(const struct peercount *pc,
                           const struct sockaddr *peer, socklen_t len);
/* Free what it holds; it counts nothing afterwards. */
void nc__peercount_free(struct peercount *pc);

#endif /* NC_PEERCOUNT_H */
