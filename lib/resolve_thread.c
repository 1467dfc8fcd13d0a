/*
 * resolve_thread.c - looking names up without c-ares: getaddrinfo() on
 * helper threads, which post each answer back to the loop
 * (nc_loop_post), so that the loop never blocks on DNS.
 *
 * Each loop has a pool of at most POOL_THREADS threads, started when a
 * lookup finds none idle, with every signal blocked (a signal a loop
 * handles through signalfd must never be delivered to them), detached,
 * and ended after IDLE_S seconds without work. The pool is shared with
 * its threads and counted: the loop's reference is dropped when the loop
 * is freed, and a thread still inside getaddrinfo() then (a server that
 * does not answer) finds the loop gone when it returns, drops its answer
 * and ends; the last one frees the pool.
 *
 * What belongs to whom: a job in the queue belongs to the pool (under
 * its lock); a thread takes it out and owns it until it hands it to the
 * loop (a posted call), or frees it when its query was cancelled
 * meanwhile (job->q cleared, under the lock). A job the thread cannot
 * post (the loop is being freed) is left to the loop's side, which
 * frees it when it cancels the query: until then that side may still
 * reach it through the query.
 */
#include "resolve.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_THREADS 4
#define IDLE_S 10

struct job {
    struct job *next;
    struct pool *pool;
    struct query *q;           /* NULL: cancelled (under the pool's lock
                                  while a thread has the job) */
    bool orphan;               /* could not be posted: the loop's side
                                  frees it */
    int family;
    int status;                /* getaddrinfo's */
    struct addrinfo *res;
    char name[];
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    nc_loop *loop;             /* NULL once the loop is freed */
    struct job *head, *tail;   /* waiting for a thread */
    unsigned threads, idle;
    unsigned refs;             /* the loop's, and one per thread */
};

const char *nc__lookup_describe(void)
{
    return "getaddrinfo() on helper threads (built without c-ares)";
}

static void pool_unref_locked(struct pool *p)
{
    if (--p->refs > 0) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    free(p);
}

static void job_free(struct job *j)
{
    if (j->res)
        freeaddrinfo(j->res);
    free(j);
}

static int error_of(int status)
{
    switch (status) {
    case 0:
        return 0;
    case EAI_NONAME:
        return -NC_EDNS_NOT_FOUND;
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_ADDRFAMILY:
        return -NC_EDNS_NO_ADDRESS;
    case EAI_AGAIN:
        /* A server that failed and one that did not answer alike. */
        return -NC_EDNS_SERVER_FAILED;
    case EAI_FAIL:
        return -NC_EDNS_BAD_ANSWER;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return errno ? -errno : -EIO;
    default:
        return -EIO;
    }
}

/* In the loop's thread: the answer of a job. */
static void job_done(void *arg)
{
    struct job *j = arg;
    struct query *q = j->q;
    if (q) {
        q->impl = NULL;
        q->err = error_of(j->status);
        for (struct addrinfo *a = j->status ? NULL : j->res; a;
             a = a->ai_next)
            nc__query_add(q, a->ai_addr, a->ai_addrlen);
        if (q->err == 0 && q->count == 0)
            q->err = -NC_EDNS_NO_ADDRESS;
        memcpy(q->source, "getaddrinfo()", sizeof("getaddrinfo()"));
        nc__query_answered(q);
    }
    job_free(j);
}

static void *worker(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && p->loop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_S;
            if (pthread_cond_timedwait(&p->work, &p->lock, &until) ==
                    ETIMEDOUT && !p->head)
                break;
        }
        struct job *j = p->head;
        if (!j || !p->loop)
            break;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->idle--;
        pthread_mutex_unlock(&p->lock);

        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = j->family;
        hints.ai_socktype = SOCK_STREAM;
        j->status = getaddrinfo(j->name, NULL, &hints, &j->res);
        if (j->status == EAI_SYSTEM && errno == 0)
            j->status = EAI_FAIL;

        pthread_mutex_lock(&p->lock);
        p->idle++;
        /* The loop is alive while p->loop is set: its memory cannot go
         * away under the post (nc__lookup_close clears it under this
         * lock). */
        if (!j->q)
            job_free(j);
        else if (!p->loop || nc_loop_post(p->loop, job_done, j) < 0)
            j->orphan = true;
    }
    p->threads--;
    p->idle--;
    pool_unref_locked(p);
    return NULL;
}

/* A thread more, if none is idle and the pool may grow. Under p->lock. */
static void grow(struct pool *p)
{
    if (p->idle > 0 || p->threads >= POOL_THREADS)
        return;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    p->refs++;
    p->threads++;
    p->idle++;
    if (pthread_create(&t, &attr, worker, p) != 0) {
        p->refs--;
        p->threads--;
        p->idle--;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

static int pool_new(nc_loop *loop, struct pool **out)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return -ENOMEM;
    }
    if (pthread_cond_init(&p->work, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return -ENOMEM;
    }
    p->loop = loop;
    p->refs = 1;
    *out = p;
    return 0;
}

int nc__lookup_send(struct resolver *r, struct query *q)
{
    if (!r->impl) {
        struct pool *p;
        int rc = pool_new(r->loop, &p);
        if (rc < 0)
            return rc;
        r->impl = p;
    }
    struct pool *p = r->impl;
    size_t n = strlen(q->name);
    struct job *j = calloc(1, sizeof(*j) + n + 1);
    if (!j)
        return -ENOMEM;
    memcpy(j->name, q->name, n + 1);
    j->pool = p;
    j->q = q;
    j->family = q->family;
    q->impl = j;
    pthread_mutex_lock(&p->lock);
    grow(p);
    if (p->threads == 0) {
        pthread_mutex_unlock(&p->lock);
        free(j);
        return -EAGAIN;     /* no thread could be created */
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void nc__lookup_cancel(struct resolver *r, struct query *q)
{
    struct pool *p = r->impl;
    struct job *j = q->impl;
    bool mine = false;
    pthread_mutex_lock(&p->lock);
    for (struct job **link = &p->head; *link; link = &(*link)->next) {
        if (*link == j) {
            *link = j->next;
            if (p->tail == j) {
                p->tail = NULL;
                for (struct job *k = p->head; k; k = k->next)
                    p->tail = k;
            }
            mine = true;
            break;
        }
    }
    if (j && !mine) {
        mine = j->orphan;
        j->q = NULL;    /* a thread, or job_done, drops it */
    }
    pthread_mutex_unlock(&p->lock);
    if (mine)
        job_free(j);
    nc__query_free(q);
}

void nc__lookup_close(struct resolver *r)
{
    struct pool *p = r->impl;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    /* Every query was cancelled, so the queue is empty. */
    p->loop = NULL;
    pthread_cond_broadcast(&p->work);
    pool_unref_locked(p);
    r->impl = NULL;
}
