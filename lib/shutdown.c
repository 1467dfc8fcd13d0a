/*
 * shutdown.c - a loop's graceful stop (nc_loop_shutdown): listeners
 * stopped at once, connections closed gracefully, what is left reset at
 * the deadline, and nc_loop_run() returning once the last on_close ran.
 *
 * The loop calls nc__loop_shutdown_poll() at the end of every iteration
 * while a shutdown is in progress. It sweeps the connections again only
 * when one opened since the last sweep (the accepted and connected
 * counters moved), so that an iteration of a loop with thousands of
 * connections flushing costs two counter reads.
 */
#include "conn.h"
#include "listener.h"

#include <errno.h>
#include <stdlib.h>

struct loop_shutdown {
    struct handle h;       /* a user handle: nc_loop_free() frees it */
    nc_loop *loop;
    nc_timer grace;        /* the deadline; not counted */
    uint64_t deadline_ns;
    uint64_t opened;       /* accepted + connected at the last sweep */
    bool aborting;         /* the deadline passed: reset what is left */
    bool done;             /* no connection was left: the run returned */
};

static uint64_t opened_count(nc_loop *loop)
{
    return counter_get(&loop->ctr.accepted) + counter_get(&loop->ctr.connected);
}

static void close_one(nc_conn *c, void *arg)
{
    const struct loop_shutdown *s = arg;
    if (s->aborting) {
        nc__conn_teardown(c, NC_CLOSE_SHUTDOWN, -ETIMEDOUT, true);
        return;
    }
    switch (conn_state(c)) {
    case CS_CONNECTING:
    case CS_HANDSHAKE:     /* on_open has not run: nothing to flush */
        nc__conn_teardown(c, NC_CLOSE_SHUTDOWN, 0, false);
        break;
    case CS_OPEN:
        nc__conn_begin_close(c, NC_CLOSE_SHUTDOWN, 0);
        break;
    default:
        break;         /* already closing: it finishes as it was */
    }
}

static void sweep(struct loop_shutdown *s)
{
    s->opened = opened_count(s->loop);
    nc__listeners_stop(s->loop);
    nc__conn_each(s->loop, close_one, s);
}

/* Done once every connection is gone and its on_close has run (the slab
 * frees a connection after its on_close returns). */
static void check_done(struct loop_shutdown *s)
{
    nc_loop *loop = s->loop;
    if (s->done || loop->conn_slab.live > 0 || loop->defer_head)
        return;
    s->done = true;
    nc__timer_stop(&s->grace);
    nc_loop_stop(loop);
}

static void grace_over(nc_timer *t, void *ud)
{
    struct loop_shutdown *s = ud;
    (void)t;
    s->aborting = true;
    sweep(s);
}

void nc__loop_shutdown_poll(nc_loop *loop)
{
    struct loop_shutdown *s = loop->shutdown;
    if (s->done)
        return;
    if (opened_count(loop) != s->opened)
        sweep(s);
    check_done(s);
}

bool nc__loop_shutdown_done(const nc_loop *loop)
{
    return loop->shutdown && loop->shutdown->done;
}

static void shutdown_free(struct handle *h)
{
    struct loop_shutdown *s = container_of(h, struct loop_shutdown, h);
    nc__timer_stop(&s->grace);
    s->loop->shutdown = NULL;
    free(s);
}

int nc_loop_shutdown(nc_loop *loop, uint32_t grace_ms)
{
    if (!loop || grace_ms > TIMEOUT_MAX_MS)
        return -EINVAL;
    uint64_t deadline = clock_now_ns() + (uint64_t)grace_ms * NS_PER_MS;
    struct loop_shutdown *s = loop->shutdown;
    if (s && !s->done) {
        /* In progress: the deadline can only come closer. The timer is
         * in the heap already, so moving it needs no memory. */
        if (deadline < s->deadline_ns) {
            s->deadline_ns = deadline;
            nc__timer_start_at(&s->grace, deadline);
        }
        return 0;
    }
    bool fresh = !s;
    if (fresh) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -ENOMEM;
        s->loop = loop;
        nc__timer_init(loop, &s->grace, grace_over, s, false);
    }
    int rc = nc__timer_start_at(&s->grace, deadline);
    if (rc < 0) {
        if (fresh)
            free(s);
        return rc;
    }
    if (fresh) {
        s->h.close = shutdown_free;
        nc__loop_handle_add(loop, &s->h, HANDLE_USER);
        loop->shutdown = s;
    }
    s->deadline_ns = deadline;
    s->aborting = false;
    s->done = false;
    sweep(s);
    /* Nothing to wait for: without this, a loop with nothing else to do
     * would sleep until the grace timer. */
    check_done(s);
    return 0;
}
