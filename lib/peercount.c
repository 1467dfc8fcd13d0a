/*
 * peercount.c - a listener's open connections counted by peer address
 * (peercount.h), for max_conns_per_addr.
 */
#include "peercount.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FIRST_SLOTS 16u
#define FIRST_FDS 64u

static bool key_of(const struct sockaddr *sa, socklen_t len,
                   struct peer_key *k)
{
    unsigned char b[16];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        memset(b, 0, 10);
        b[10] = b[11] = 0xff;
        memcpy(b + 12, &((const struct sockaddr_in *)(const void *)sa)
                            ->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 &&
               len >= sizeof(struct sockaddr_in6)) {
        memcpy(b, &((const struct sockaddr_in6 *)(const void *)sa)
                       ->sin6_addr, 16);
    } else {
        return false;
    }
    memcpy(k->w, b, sizeof(k->w));
    return (k->w[0] | k->w[1]) != 0;    /* "::" is no peer's address */
}

static bool same(const struct peer_key *a, const struct peer_key *b)
{
    return a->w[0] == b->w[0] && a->w[1] == b->w[1];
}

/* MurmurHash3's finalizer: every input bit moves every output bit. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static uint32_t home(const struct peercount *pc, const struct peer_key *k)
{
    return (uint32_t)mix(mix(k->w[0] ^ pc->seed) ^ k->w[1]) & pc->mask;
}

/* The slot holding k, or the empty slot where it would go. */
static struct peer_slot *find(const struct peercount *pc,
                              const struct peer_key *k)
{
    uint32_t i = home(pc, k);
    while (pc->slots[i].count && !same(&pc->slots[i].key, k))
        i = (i + 1) & pc->mask;
    return &pc->slots[i];
}

static int grow_table(struct peercount *pc)
{
    uint32_t n = pc->slots ? (pc->mask + 1) * 2 : FIRST_SLOTS;
    struct peer_slot *old = pc->slots;
    uint32_t old_n = old ? pc->mask + 1 : 0;
    struct peer_slot *s = calloc(n, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pc->slots = s;
    pc->mask = n - 1;
    for (uint32_t i = 0; i < old_n; i++)
        if (old[i].count)
            *find(pc, &old[i].key) = old[i];
    free(old);
    return 0;
}

static int grow_fds(struct peercount *pc, int fd)
{
    size_t n = pc->nfd ? pc->nfd : FIRST_FDS;
    while (n <= (size_t)fd)
        n *= 2;
    struct peer_key *v = realloc(pc->by_fd, n * sizeof(*v));
    if (!v)
        return -ENOMEM;
    memset(v + pc->nfd, 0, (n - pc->nfd) * sizeof(*v));
    pc->by_fd = v;
    pc->nfd = n;
    return 0;
}

void nc__peercount_init(struct peercount *pc, unsigned max)
{
    memset(pc, 0, sizeof(*pc));
    pc->max = max;
    if (max && getrandom(&pc->seed, sizeof(pc->seed), GRND_NONBLOCK) !=
                   (ssize_t)sizeof(pc->seed))
        pc->seed = clock_now_ns() ^ (uint64_t)(uintptr_t)pc;
}

enum peer_verdict nc__peercount_add(struct peercount *pc, int fd,
                                    const struct sockaddr *peer,
                                    socklen_t len)
{
    struct peer_key k;
    if (pc->max == 0 || fd < 0 || !peer || !key_of(peer, len, &k))
        return PEER_IN;
    if ((size_t)fd >= pc->nfd && grow_fds(pc, fd) < 0)
        return PEER_NOMEM;
    struct peer_slot *s = pc->slots ? find(pc, &k) : NULL;
    if (s && s->count >= pc->max)
        return PEER_OVER;
    if (!s || !s->count) {
        if ((!pc->slots || (pc->used + 1) * 2 > pc->mask + 1) &&
            grow_table(pc) < 0)
            return PEER_NOMEM;
        s = find(pc, &k);
        s->key = k;
        pc->used++;
    }
    s->count++;
    pc->by_fd[fd] = k;
    return PEER_IN;
}

/* Empty slot i, moving back the entries after it that could not be found
 * past an empty slot otherwise (deletion from linear probing without
 * tombstones). */
static void empty_slot(struct peercount *pc, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & pc->mask;
        if (!pc->slots[j].count)
            break;
        uint32_t h = home(pc, &pc->slots[j].key);
        /* It moves to i unless its home lies in (i, j], cyclically. */
        bool stays = i < j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            pc->slots[i] = pc->slots[j];
            i = j;
        }
    }
    memset(&pc->slots[i], 0, sizeof(pc->slots[i]));
    pc->used--;
}

void nc__peercount_remove(struct peercount *pc, int fd)
{
    if (fd < 0 || (size_t)fd >= pc->nfd)
        return;
    struct peer_key k = pc->by_fd[fd];
    if ((k.w[0] | k.w[1]) == 0)
        return;
    memset(&pc->by_fd[fd], 0, sizeof(pc->by_fd[fd]));
    struct peer_slot *s = find(pc, &k);
    if (s->count && --s->count == 0)
        empty_slot(pc, (uint32_t)(s - pc->slots));
}

unsigned nc__peercount_get(const struct peercount *pc,
                           const struct sockaddr *peer, socklen_t len)
{
    struct peer_key k;
    if (!pc->slots || !key_of(peer, len, &k))
        return 0;
    return find(pc, &k)->count;
}

void nc__peercount_free(struct peercount *pc)
{
    free(pc->slots);
    free(pc->by_fd);
    memset(pc, 0, sizeof(*pc));
}
