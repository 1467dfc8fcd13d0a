/*
 * buf.c - a connection's output queue: a list of chunks sent with one
 * sendmsg() per flush. Copied bytes go into chunks of at least CHUNK_MIN
 * so that many small writes coalesce; owned buffers are queued as they are
 * (zero copy) and handed back to their free function once sent.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define CHUNK_MIN 16384
#define FLUSH_IOV 64

struct chunk {
    struct chunk *next;
    char *data;
    size_t len;     /* bytes in data (filled part for a copied chunk) */
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

static void chunk_free(struct chunk *c)
{
    if (c->cap == 0 && c->free_fn)
        c->free_fn(c->data, c->arg);
    free(c);
}

int outq_append(struct outq *q, const void *data, size_t len)
{
    const char *p = data;
    struct chunk *t = q->tail;

    if (t && t->cap > t->len) {
        size_t n = t->cap - t->len < len ? t->cap - t->len : len;
        memcpy(t->data + t->len, p, n);
        t->len += n;
        q->bytes += n;
        p += n;
        len -= n;
    }
    if (len == 0)
        return 0;
    size_t cap = len > CHUNK_MIN ? len : CHUNK_MIN;
    struct chunk *c = malloc(sizeof(*c) + cap);
    if (!c)
        return -ENOMEM;
    c->data = c->inline_data;
    memcpy(c->data, p, len);
    c->len = len;
    c->off = 0;
    c->cap = cap;
    c->free_fn = NULL;
    c->arg = NULL;
    chunk_link(q, c);
    q->bytes += len;
    return 0;
}

int outq_append_owned(struct outq *q, void *data, size_t len, size_t off,
                      void (*free_fn)(void *, void *), void *arg)
{
    struct chunk *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->data = data;
    c->len = len;
    c->off = off;
    c->cap = 0;
    c->free_fn = free_fn;
    c->arg = arg;
    chunk_link(q, c);
    q->bytes += len - off;
    return 0;
}

/* Drop n sent bytes from the front of the queue. */
static void consume(struct outq *q, size_t n)
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
        chunk_free(c);
    }
}

ssize_t outq_flush(struct outq *q, int fd)
{
    size_t total = 0;

    while (q->head) {
        struct iovec iov[FLUSH_IOV];
        int cnt = 0;
        size_t want = 0;
        for (struct chunk *c = q->head; c && cnt < FLUSH_IOV; c = c->next) {
            iov[cnt].iov_base = c->data + c->off;
            iov[cnt].iov_len = c->len - c->off;
            want += iov[cnt].iov_len;
            cnt++;
        }
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (nc_io_classify(NC_OP_WRITE, n, errno) == NC_IO_INTR)
                continue;
            return total > 0 ? (ssize_t)total : -errno;
        }
        consume(q, (size_t)n);
        total += (size_t)n;
        if ((size_t)n < want)
            break;      /* the socket is full: wait for writability */
    }
    return (ssize_t)total;
}

void outq_clear(struct outq *q)
{
    struct chunk *c = q->head;
    while (c) {
        struct chunk *next = c->next;
        chunk_free(c);
        c = next;
    }
    q->head = q->tail = NULL;
    q->bytes = 0;
}
