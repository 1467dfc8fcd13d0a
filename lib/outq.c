/*
 * outq.c - a connection's output queue (see outq.h).
 */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CHUNK_SMALL 1024          /* the first copied chunk at least */
#define CHUNK_LARGE (64u << 10)   /* growth stops doubling here */
#define FLUSH_IOV 64

struct chunk {
    struct chunk *next;
    struct defer_node release;   /* an owned chunk sent or dropped */
    char *data;
    size_t len;     /* bytes in data (the filled part of a copied chunk) */
    size_t off;     /* bytes of data already sent */
    size_t cap;     /* capacity of a copied chunk; 0 for an owned one */
    void (*free_fn)(void *, void *);
    void *arg;
    char inline_data[];
};

static void chunk_link(struct outq *q, struct chunk *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
}

static void release_run(struct defer_node *n)
{
    struct chunk *c = container_of(n, struct chunk, release);
    c->free_fn(c->data, c->arg);
    free(c);
}

static void chunk_free(struct chunk *c, nc_loop *loop)
{
    if (c->cap == 0 && c->free_fn)
        nc__loop_defer(loop, &c->release, release_run);
    else
        free(c);
}

/* Room for need more bytes after the tail's: small at first, doubling
 * while writes keep queueing up, never less than what is needed. */
static size_t chunk_capacity(const struct outq *q, size_t need)
{
    size_t cap = CHUNK_SMALL;
    if (q->tail && q->tail->cap) {
        cap = q->tail->cap * 2;
        if (cap > CHUNK_LARGE)
            cap = CHUNK_LARGE;
    }
    return need > cap ? need : cap;
}

int nc__outq_append_iov(struct outq *q, const struct iovec *iov, int cnt,
                        size_t skip)
{
    size_t total = 0;
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    total -= skip;
    if (total == 0)
        return 0;

    struct chunk *t = q->tail;
    size_t room = t && t->cap ? t->cap - t->len : 0;
    struct chunk *fresh = NULL;
    if (total > room) {
        /* Allocated before anything is copied: all or nothing. */
        size_t cap = chunk_capacity(q, total - room);
        fresh = malloc(sizeof(*fresh) + cap);
        if (!fresh)
            return -ENOMEM;
        fresh->data = fresh->inline_data;
        fresh->len = 0;
        fresh->off = 0;
        fresh->cap = cap;
        fresh->free_fn = NULL;
        fresh->arg = NULL;
    }
    for (int i = 0; i < cnt; i++) {
        const char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        p += skip;
        len -= skip;
        skip = 0;
        if (room > 0) {
            size_t n = len < room ? len : room;
            memcpy(t->data + t->len, p, n);
            t->len += n;
            room -= n;
            p += n;
            len -= n;
        }
        if (len > 0) {
            memcpy(fresh->data + fresh->len, p, len);
            fresh->len += len;
        }
    }
    if (fresh)
        chunk_link(q, fresh);
    q->bytes += total;
    return 0;
}

struct chunk *nc__outq_owned_new(void *data, size_t len,
                                 void (*free_fn)(void *, void *), void *arg)
{
    struct chunk *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    c->data = data;
    c->len = len;
    c->off = 0;
    c->cap = 0;
    c->free_fn = free_fn;
    c->arg = arg;
    return c;
}

void nc__outq_owned_queue(struct outq *q, struct chunk *c, size_t off)
{
    c->off = off;
    chunk_link(q, c);
    q->bytes += c->len - off;
}

void nc__outq_owned_release(struct chunk *c, nc_loop *loop)
{
    chunk_free(c, loop);
}

void nc__outq_owned_drop(struct chunk *c)
{
    free(c);
}

void nc__outq_consume(struct outq *q, size_t n, nc_loop *loop)
{
    q->bytes -= n;
    while (n > 0) {
        struct chunk *c = q->head;
        size_t left = c->len - c->off;
        if (n < left) {
            c->off += n;
            return;
        }
        n -= left;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        chunk_free(c, loop);
    }
}

int nc__outq_peek(const struct outq *q, struct iovec *iov, int max)
{
    int cnt = 0;
    for (struct chunk *c = q->head; c && cnt < max; c = c->next) {
        iov[cnt].iov_base = c->data + c->off;
        iov[cnt].iov_len = c->len - c->off;
        cnt++;
    }
    return cnt;
}

ssize_t nc__outq_flush(struct outq *q, int fd, nc_loop *loop)
{
    size_t total = 0;

    while (q->head) {
        struct iovec iov[FLUSH_IOV];
        int cnt = nc__outq_peek(q, iov, FLUSH_IOV);
        size_t want = 0;
        for (int i = 0; i < cnt; i++)
            want += iov[i].iov_len;
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (nc_io_classify(NC_OP_WRITE, n, errno) == NC_IO_INTR)
                continue;
            return total > 0 ? (ssize_t)total : -errno;
        }
        nc__outq_consume(q, (size_t)n, loop);
        total += (size_t)n;
        if ((size_t)n < want)
            break;      /* the socket is full: wait for writability */
    }
    return (ssize_t)total;
}

void nc__outq_clear(struct outq *q, nc_loop *loop)
{
    struct chunk *c = q->head;
    while (c) {
        struct chunk *next = c->next;
        chunk_free(c, loop);
        c = next;
    }
    q->head = q->tail = NULL;
    q->bytes = 0;
}
