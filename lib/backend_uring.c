/*
 * backend_uring.c - the completion backend: the only file that calls
 * liburing. One ring per loop, a ring of receive buffers the kernel picks
 * from, and one io_uring_enter() per iteration that submits the
 * iteration's requests (sends first of all) and waits (ring.h).
 *
 * Watches (listening sockets, the wake-up eventfd, the signalfd, public
 * nc_watch) get one-shot poll requests, armed again after each event
 * while the interest lasts: the level-triggered behaviour epoll gives.
 * A listening socket on a completion loop asks for EV_ACCEPT instead and
 * gets a multishot accept.
 *
 * Waiting: sends are non-blocking (MSG_DONTWAIT), so each one's
 * completion is posted during the submission itself. The wait asks for
 * one completion more than the sends submitted ("expected"), so that an
 * iteration that sends a response and then waits for the next request
 * costs one system call, not two. Only sends nothing waits on are
 * counted (not those a close, a shutdown or backpressure waits to see
 * end), and while any is, the wait lasts at most EXPECT_WAIT_MS: a send
 * that found the socket full has a poll to arm for the rest. (A
 * cancelled request's completion is never counted: it may have been
 * posted already.)
 *
 * User data: the object's token (watch.h) above 8 bits, a sequence number
 * for watch requests in bits 3-7, the request kind (ring.h) in bits 0-2.
 * A completion is delivered only while its token (and sequence) still
 * names the request the object has in the kernel.
 */
#include "ring.h"
#include "dispatch.h"

#include <liburing.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RING_ENTRIES 1024
#define RING_CQ_ENTRIES 8192
#define RECV_BUFS 64           /* a power of two */
#define RECV_BUF_SIZE 65536    /* as large as an epoll read: streams
                                  take as few turns as with epoll */
#define RECV_GROUP 0
#define SEND_IOV 64
#define EXPECT_WAIT_MS 1        /* see uring_wait() */
#define FREE_WAIT_MS 2000      /* nc_loop_free waits this long at most
                                  for cancelled requests to end */

/* The request a watched fd has in the kernel, by fd. */
struct wstate {
    uint64_t token;            /* the watch's, 0 when not watched */
    unsigned want;             /* its interest (EV_*, EV_ACCEPT) */
    uint64_t armed_token;      /* what the request was armed with */
    unsigned armed_events;
    uint8_t seq;               /* of the request armed last */
    bool armed;
    bool canceling;
};

/* A message for a send of several pieces; each is allocated once and
 * kept, so that its address stays valid until the submission. */
struct msg_slot {
    struct msghdr msg;
    struct iovec iov[SEND_IOV];
};

struct ring {
    struct backend base;
    nc_loop *loop;
    struct io_uring uring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *bufs;                /* RECV_BUFS buffers of RECV_BUF_SIZE */
    unsigned expect;           /* completions posted by the submission */
    bool enabled;              /* the kernel takes submissions (see
                                  ring_enable) */
    bool single;               /* SINGLE_ISSUER and DEFER_TASKRUN */
    bool registered;           /* enabled and its fd registered by the
                                  loop's thread (ring_enable) */
    pthread_t owner;           /* that thread */
    struct io_uring_sqe *early;    /* requests made before the first run
                                      that the submission queue had no
                                      room for: it cannot be submitted
                                      yet */
    size_t nearly, early_cap;
    unsigned live;             /* requests whose last completion is due */
    bool dying;                /* nc_loop_free: deliver nothing */
    struct wstate *ws;
    size_t nws;
    uint64_t *sendq;           /* tokens of connections with a send due */
    size_t nsend, send_cap;
    struct msg_slot **slots;
    size_t nslots;
};

/* ---- user data ------------------------------------------------------------ */

static inline uint64_t ud_make(uint64_t token, unsigned seq,
                               enum ring_req kind)
{
    return token << 8 | (uint64_t)(seq & 31) << 3 | (uint64_t)kind;
}

static inline enum ring_req ud_kind(uint64_t ud)
{
    return (enum ring_req)(ud & 7);
}

static inline unsigned ud_seq(uint64_t ud)
{
    return (unsigned)(ud >> 3) & 31;
}

static inline uint64_t ud_token(uint64_t ud)
{
    return ud >> 8;
}

/* ---- submission ------------------------------------------------------------ */

/* Room for one more request made before the first run (a program that
 * connects to 2,000 servers, then runs the loop): kept aside until
 * ring_enable queues it. */
static struct io_uring_sqe *early_get(struct ring *r)
{
    if (r->nearly == r->early_cap) {
        size_t cap = r->early_cap ? r->early_cap * 2 : 256;
        struct io_uring_sqe *v = realloc(r->early, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->early = v;
        r->early_cap = cap;
    }
    struct io_uring_sqe *s = &r->early[r->nearly++];
    memset(s, 0, sizeof(*s));
    return s;
}

/* A free entry, submitting what is queued if the queue is full (before
 * the first run: kept aside). NULL only if the kernel takes nothing (it
 * is overloaded) or memory is short. */
static struct io_uring_sqe *sqe_get(struct ring *r)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&r->uring);
    if (!s && !r->enabled)
        return early_get(r);
    if (!s) {
        nc__ring_submit(r);
        s = io_uring_get_sqe(&r->uring);
    }
    return s;
}

/* With DEFER_TASKRUN, what a submission or a synchronous cancel sets in
 * motion (a cancelled receive ending and letting go of its socket, a
 * close linked behind it) happens only when the loop's thread asks for
 * completions, which a wait does: outside one, ask now, until the kernel
 * flags none left (TASKRUN_FLAG; one call runs a bounded batch). */
static void run_deferred(struct ring *r)
{
    for (int i = 0; i < 64 && r->single &&
                    (IO_URING_READ_ONCE(*r->uring.sq.kflags) &
                     IORING_SQ_TASKRUN);
         i++)
        io_uring_get_events(&r->uring);
}

void nc__ring_submit(struct ring *r)
{
    if (!r->enabled)
        return;
    io_uring_submit_and_get_events(&r->uring);
    run_deferred(r);
}

/* Requests not submitted yet (made in this iteration, or before the
 * first run) are entries of the submission queue, or kept aside. Those
 * that match (user data ud, or any request on fd when ud is 0) become
 * no-ops that nothing waits for, as a synchronous cancel would have
 * ended them. */
static void defuse_one(struct ring *r, struct io_uring_sqe *s, uint64_t ud,
                       int fd)
{
    if (ud ? s->user_data != ud : s->fd != fd || s->opcode == IORING_OP_NOP)
        return;
    enum ring_req kind = ud_kind(s->user_data);
    if (kind != RQ_NONE && kind != RQ_SEND)
        r->live--;
    io_uring_prep_nop(s);
    io_uring_sqe_set_data64(s, RQ_NONE);
}

static void defuse_queued(struct ring *r, uint64_t ud, int fd)
{
    struct io_uring_sq *sq = &r->uring.sq;
    for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++)
        defuse_one(r, &sq->sqes[i & sq->ring_mask], ud, fd);
    for (size_t i = 0; i < r->nearly; i++)
        defuse_one(r, &r->early[i], ud, fd);
}

/* A synchronous cancel returns once the request is marked; with
 * DEFER_TASKRUN it ends, and lets go of its file (a listening socket, a
 * connection's FIN), only when the loop's thread runs its task work:
 * now, since the caller closes the file next. */
static void finish_cancelled(struct ring *r)
{
    if (r->single)
        io_uring_get_events(&r->uring);
    run_deferred(r);
}

/* Cancel the request with user data ud now, and wait until it is gone. */
static void cancel_now(struct ring *r, uint64_t ud)
{
    /* Not submitted yet (armed in this iteration, or before the first
     * run): the kernel has nothing to cancel, and must never see it. */
    defuse_queued(r, ud, -1);
    if (!r->enabled)
        return;
    struct io_uring_sync_cancel_reg reg = {
        .addr = ud, .fd = -1, .flags = 0,
        .timeout = { .tv_sec = -1, .tv_nsec = -1 },
    };
    io_uring_register_sync_cancel(&r->uring, &reg);
    finish_cancelled(r);
}

static void cancel_later(struct ring *r, uint64_t ud)
{
    struct io_uring_sqe *s = sqe_get(r);
    if (!s) {
        cancel_now(r, ud);
        return;
    }
    io_uring_prep_cancel64(s, ud, 0);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, RQ_NONE);
}

/* ---- connections' requests ---------------------------------------------- */

int nc__ring_recv(struct ring *r, int fd, uint64_t token, bool drained)
{
    struct io_uring_sqe *s = sqe_get(r);
    if (!s)
        return -EBUSY;
    /* One-shot, armed again after each completion: a connection paused
     * by backpressure simply does not arm it, and holds at most the one
     * receive in flight. (A multishot receive can be cancelled only with
     * DEFER_TASKRUN: with cooperative task work every cancel of one whose
     * socket streams failed with -ENOENT. Where it can, it still took up
     * to 4 MiB from a streaming peer in one wait, bounded only by the
     * buffers, and it did not measure cheaper: docs/performance.md.) */
    io_uring_prep_recv(s, fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = RECV_GROUP;
    /* The last receive emptied the socket (a request answered, the next
     * not sent yet): the kernel's first try would only find it empty,
     * so it waits for data at once (Linux 5.19). */
    if (drained)
        s->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(s, ud_make(token, 0, RQ_RECV));
    r->live++;
    return 0;
}

int nc__ring_poll(struct ring *r, int fd, uint64_t token, unsigned events,
                  bool multishot)
{
    struct io_uring_sqe *s = sqe_get(r);
    if (!s)
        return -EBUSY;
    if (multishot)
        io_uring_prep_poll_multishot(s, fd, events);
    else
        io_uring_prep_poll_add(s, fd, events);
    io_uring_sqe_set_data64(s, ud_make(token, 0, RQ_POLL));
    r->live++;
    return 0;
}

void nc__ring_cancel(struct ring *r, uint64_t token, enum ring_req kind)
{
    cancel_later(r, ud_make(token, 0, kind));
}

/* Cancel every request on fd and wait until they are gone. */
static void cancel_fd_now(struct ring *r, int fd)
{
    defuse_queued(r, 0, fd);
    if (!r->enabled)
        return;
    struct io_uring_sync_cancel_reg reg = {
        .fd = fd, .flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL,
        .timeout = { .tv_sec = -1, .tv_nsec = -1 },
    };
    io_uring_register_sync_cancel(&r->uring, &reg);
    finish_cancelled(r);
}

void nc__ring_close(struct ring *r, int fd, bool cancel, bool now)
{
    /* Outside the loop nothing waits for a close through the ring to
     * finish (with DEFER_TASKRUN its last step is task work run by a
     * wait), and before the first run nothing is in the kernel: at
     * once, then. */
    struct io_uring_sqe *s = NULL;
    if (!now && r->loop->running && r->enabled)
        s = sqe_get(r);
    if (!s) {
        if (cancel)
            cancel_fd_now(r, fd);
        else
            defuse_queued(r, 0, fd);
        close(fd);
        return;
    }
    if (cancel) {
        io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
        /* The close runs whether or not there was anything to cancel. */
        s->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(s, RQ_NONE);
        s = sqe_get(r);
        if (!s) {
            nc__ring_submit(r);   /* the cancel goes first */
            close(fd);
            return;
        }
    }
    io_uring_prep_close(s, fd);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, RQ_NONE);
}

int nc__ring_send_later(struct ring *r, uint64_t token)
{
    if (r->nsend == r->send_cap) {
        size_t cap = r->send_cap ? r->send_cap * 2 : 64;
        uint64_t *q = realloc(r->sendq, cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        r->sendq = q;
        r->send_cap = cap;
    }
    r->sendq[r->nsend++] = token;
    return 0;
}

static nc_conn *conn_of(nc_loop *loop, uint64_t token)
{
    uint32_t fd = (uint32_t)token;
    if (fd >= loop->nfds)
        return NULL;
    uintptr_t e = loop->fds[fd];
    if (!(e & FD_TAG_CONN))
        return NULL;
    nc_conn *c = (nc_conn *)(e & ~FD_TAG_CONN);
    return c->idle.tag == (uint16_t)(token >> 32) ? c : NULL;
}

static struct msg_slot *slot_get(struct ring *r, size_t i)
{
    if (i == r->nslots) {
        struct msg_slot **v = realloc(r->slots, (i + 1) * sizeof(*v));
        if (!v)
            return NULL;
        r->slots = v;
        v[i] = malloc(sizeof(**v));
        if (!v[i])
            return NULL;
        r->nslots = i + 1;
    }
    return r->slots[i];
}

/* Prepare a send for every connection that asked for one. */
static void flush_sends(struct ring *r)
{
    size_t used = 0;
    for (size_t i = 0; i < r->nsend; i++) {
        uint64_t token = r->sendq[i];
        nc_conn *c = conn_of(r->loop, token);
        if (!c)
            continue;
        struct iovec iov[SEND_IOV];
        int cnt = nc__conn_send_iov(c, iov, SEND_IOV);
        if (cnt == 0)
            continue;
        struct msg_slot *m = cnt > 1 ? slot_get(r, used) : NULL;
        struct io_uring_sqe *s = (cnt == 1 || m) ? sqe_get(r) : NULL;
        if (!s) {
            c->cold->sending = 0;       /* nothing went */
            nc__conn_fail(c, NC_OP_WRITE, -ENOMEM);
            continue;
        }
        if (cnt == 1) {
            io_uring_prep_send(s, c->fd, iov[0].iov_base, iov[0].iov_len,
                               MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            memcpy(m->iov, iov, (size_t)cnt * sizeof(*iov));
            memset(&m->msg, 0, sizeof(m->msg));
            m->msg.msg_iov = m->iov;
            m->msg.msg_iovlen = (size_t)cnt;
            io_uring_prep_sendmsg(s, c->fd, &m->msg,
                                  MSG_DONTWAIT | MSG_NOSIGNAL);
            used++;
        }
        io_uring_sqe_set_data64(s, ud_make(token, 0, RQ_SEND));
        /* Nothing waits for this send to end (no close, shutdown or
         * backpressure behind it): its completion need not wake us. */
        if (conn_state(c) == CS_OPEN &&
            !(c->flags & (CF_SHUT_WANTED | CF_BACKPRESSURE)))
            r->expect++;
    }
    r->nsend = 0;
}

void nc__ring_loop_exit(struct ring *r)
{
    /* Sent here and now, with the system call of the epoll backend, so
     * that the queue says what the kernel has not taken when the program
     * looks at it before the loop runs again. */
    size_t n = r->nsend;
    r->nsend = 0;
    for (size_t i = 0; i < n; i++) {
        nc_conn *c = conn_of(r->loop, r->sendq[i]);
        if (!c)
            continue;
        c->flags &= ~CF_SEND_QUEUED;
        if (conn_state(c) != CS_CLOSED && conn_state(c) != CS_CONNECTING &&
            conn_queued(c) > 0 && !(c->flags & CF_FULL))
            nc__conn_flush(c);
    }
    if (io_uring_sq_ready(&r->uring) > 0)
        nc__ring_submit(r);
}

/* ---- watches ---------------------------------------------------------------- */

static struct wstate *wstate_of(struct ring *r, int fd, bool grow)
{
    if ((size_t)fd < r->nws)
        return &r->ws[fd];
    if (!grow)
        return NULL;
    size_t n = r->nws ? r->nws : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct wstate *v = realloc(r->ws, n * sizeof(*v));
    if (!v)
        return NULL;
    memset(v + r->nws, 0, (n - r->nws) * sizeof(*v));
    r->ws = v;
    r->nws = n;
    return &r->ws[fd];
}

static enum ring_req watch_kind(unsigned events)
{
    return events & EV_ACCEPT ? RQ_ACCEPT : RQ_WATCH;
}

/* Bring fd's request in line with its watch's interest. */
static int watch_sync(struct ring *r, int fd)
{
    struct wstate *w = &r->ws[fd];
    if (w->armed) {
        if (w->want == w->armed_events && w->token == w->armed_token)
            return 0;
        if (!w->canceling) {
            w->canceling = true;
            cancel_later(r, ud_make(w->armed_token, w->seq,
                                    watch_kind(w->armed_events)));
        }
        return 0;     /* armed again when its last completion comes */
    }
    if (!w->want)
        return 0;
    struct io_uring_sqe *s = sqe_get(r);
    if (!s)
        return -EBUSY;
    w->seq++;
    if (w->want & EV_ACCEPT)
        io_uring_prep_multishot_accept(s, fd, NULL, NULL,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    else
        io_uring_prep_poll_add(s, fd, w->want);
    io_uring_sqe_set_data64(s, ud_make(w->token, w->seq,
                                       watch_kind(w->want)));
    w->armed = true;
    w->canceling = false;
    w->armed_token = w->token;
    w->armed_events = w->want;
    r->live++;
    return 0;
}

/* What epoll_ctl would refuse at once. */
static int check_pollable(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    return 0;
}

static int uring_set(struct backend *b, int fd, uint64_t token, int op,
                     unsigned events)
{
    struct ring *r = (struct ring *)b;
    if (op != BACKEND_DEL) {
        int rc = check_pollable(fd);
        if (rc < 0)
            return rc;
    }
    struct wstate *w = wstate_of(r, fd, op != BACKEND_DEL);
    if (!w)
        return op == BACKEND_DEL ? 0 : -ENOMEM;
    if (op == BACKEND_DEL) {
        w->token = 0;
        w->want = 0;
        if (w->armed) {
            /* At once: the caller may close fd next, and a request would
             * keep the file (a listening socket, its port) open. */
            cancel_now(r, ud_make(w->armed_token, w->seq,
                                  watch_kind(w->armed_events)));
            w->armed = false;
            w->canceling = false;
        }
        return 0;
    }
    w->token = token;
    w->want = events;
    return watch_sync(r, fd);
}

static struct watch *watch_of(nc_loop *loop, uint64_t token)
{
    uint32_t fd = (uint32_t)token;
    if (fd >= loop->nfds || !loop->fds[fd] ||
        (loop->fds[fd] & FD_TAG_CONN))
        return NULL;
    struct watch *w = (struct watch *)loop->fds[fd];
    return w->gen == (uint16_t)(token >> 32) ? w : NULL;
}

static void watch_complete(struct ring *r, uint64_t ud, int res,
                           uint32_t cflags)
{
    uint64_t token = ud_token(ud);
    int fd = (int)(uint32_t)token;
    bool last = !(cflags & IORING_CQE_F_MORE);
    enum ring_req kind = ud_kind(ud);
    struct wstate *w = wstate_of(r, fd, false);
    if (!w || !w->armed || w->armed_token != token ||
        (w->seq & 31) != ud_seq(ud) || r->dying) {
        if (kind == RQ_ACCEPT && res >= 0) {
            /* Accepted before a pause took effect: the listener keeps
             * it; a listener that is gone cannot. */
            struct watch *wt = r->dying ? NULL : watch_of(r->loop, token);
            if (wt && wt->accept_fn)
                wt->accept_fn(wt, res);
            else
                close(res);
        }
        return;
    }
    if (last) {
        w->armed = false;
        w->canceling = false;
    }
    if (res != -ECANCELED) {
        if (kind == RQ_ACCEPT) {
            struct watch *wt = watch_of(r->loop, token);
            if (wt && wt->accept_fn)
                wt->accept_fn(wt, res);
            else if (res >= 0)
                close(res);
        } else if (res > 0) {
            fd_deliver(r->loop, token, (unsigned)res);
        } else if (res < 0) {
            /* The fd was closed behind the watch's back (-EBADF): like
             * epoll, which forgets a closed file, ask no more. */
            r->ws[fd].want = 0;
        }
    }
    if (last) {
        watch_sync(r, fd);      /* level-triggered: ask again */
    } else if (r->ws[fd].canceling) {
        /* A cancel that found the request running (-ENOENT, -EALREADY)
         * leaves it armed and completing: ask again. (r->ws may have
         * moved in the callback.) */
        r->ws[fd].canceling = false;
        watch_sync(r, fd);
    }
}

/* ---- completions ------------------------------------------------------------- */

static void give_back(struct ring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->br, r->bufs + (size_t)bid * RECV_BUF_SIZE,
                          RECV_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(RECV_BUFS), 0);
    io_uring_buf_ring_advance(r->br, 1);
}

static void complete(struct ring *r, uint64_t ud, int res, uint32_t cflags)
{
    enum ring_req kind = ud_kind(ud);
    bool last = !(cflags & IORING_CQE_F_MORE);
    if (kind != RQ_NONE && kind != RQ_SEND && last)
        r->live--;
    switch (kind) {
    case RQ_WATCH:
    case RQ_ACCEPT:
        watch_complete(r, ud, res, cflags);
        return;
    case RQ_RECV:
    case RQ_POLL:
    case RQ_SEND: {
        const char *data = NULL;
        bool buffer = cflags & IORING_CQE_F_BUFFER;
        unsigned bid = cflags >> IORING_CQE_BUFFER_SHIFT;
        if (buffer)
            data = r->bufs + (size_t)bid * RECV_BUF_SIZE;
        nc_conn *c = r->dying ? NULL : conn_of(r->loop, ud_token(ud));
        if (c)
            nc__ring_conn_complete(c, kind, res, cflags, data);
        if (buffer)
            give_back(r, bid);
        return;
    }
    default:
        return;
    }
}

/* Handle every completion posted; returns how many. */
static int reap(struct ring *r)
{
    int n = 0;
    for (;;) {
        struct io_uring_cqe *cqe;
        if (io_uring_peek_cqe(&r->uring, &cqe) != 0)
            break;
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        uint32_t cflags = cqe->flags;
        io_uring_cqe_seen(&r->uring, cqe);
        complete(r, ud, res, cflags);
        n++;
    }
    return n;
}

/* The submission failed before the kernel took everything (-EBUSY while
 * its completion queue overflows, -EAGAIN short of memory), so requests
 * wait in the submission queue for the next try. A send among them
 * points into a connection's output queue and a message slot, which the
 * callbacks about to run may free (a close) or reuse (the next
 * iteration's sends): each becomes a no-op with the send's user data,
 * whose completion (0 bytes) reads as a socket found full, so the bytes
 * are sent again once it is writable. liburing keeps the submission
 * array in ring order (index i is entry i), so the entries not taken yet
 * are those from the kernel's head to liburing's tail. */
static void defuse_sends(struct ring *r)
{
    struct io_uring_sq *sq = &r->uring.sq;
    unsigned head = io_uring_smp_load_acquire(sq->khead);
    for (unsigned i = head; i != sq->sqe_tail; i++) {
        struct io_uring_sqe *s = &sq->sqes[i & sq->ring_mask];
        uint64_t ud = s->user_data;
        if (ud_kind(ud) != RQ_SEND)
            continue;
        io_uring_prep_nop(s);
        io_uring_sqe_set_data64(s, ud);
    }
}

/* The first run: a loop may be made in one thread and run in another
 * (nc_workers makes every worker's loop in the caller's thread), and a
 * SINGLE_ISSUER ring belongs to the thread that enables it, so it is
 * made disabled and enabled here, by the thread that runs it. The ring's
 * own descriptor is registered for that thread too, which spares every
 * io_uring_enter() the lookup of the file (a thread with 16 registered
 * already goes without). */
static int ring_enable(struct ring *r)
{
    if (!r->enabled) {
        /* liburing 2.3 declares io_uring_enable_rings() but does not
         * export it. */
        if (syscall(__NR_io_uring_register, r->uring.ring_fd,
                    IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
            return -errno;
        r->enabled = true;
        /* Behind what the queue holds, in the order they were made. */
        for (size_t i = 0; i < r->nearly; i++) {
            struct io_uring_sqe *s = sqe_get(r);
            if (!s)
                return -EBUSY;
            *s = r->early[i];
        }
        free(r->early);
        r->early = NULL;
        r->nearly = r->early_cap = 0;
    }
    r->registered = true;
    r->owner = pthread_self();
    io_uring_register_ring_fd(&r->uring);
    return 0;
}

static int uring_wait(struct backend *b, nc_loop *loop, int timeout_ms)
{
    struct ring *r = (struct ring *)b;
    if (!r->registered) {
        int rc = ring_enable(r);
        if (rc < 0)
            return rc;
    } else if (!pthread_equal(r->owner, pthread_self())) {
        /* The ring, and its registered fd, are the first running
         * thread's: another's requests would fail one by one. */
        return -EEXIST;
    }
    flush_sends(r);
    struct __kernel_timespec ts = { 0 };
    struct __kernel_timespec *tsp = NULL;
    unsigned wait_nr = r->expect + 1;
    /* A send that found the socket full needs a poll armed for the rest:
     * such a send is not waited past EXPECT_WAIT_MS. */
    if (r->expect > 0 && (timeout_ms < 0 || timeout_ms > EXPECT_WAIT_MS))
        timeout_ms = EXPECT_WAIT_MS;
    if (timeout_ms == 0) {
        wait_nr = 0;
        tsp = &ts;
    } else if (timeout_ms > 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
        tsp = &ts;
    }
    struct io_uring_cqe *cqe = NULL;
    int rc = io_uring_submit_and_wait_timeout(&r->uring, &cqe, wait_nr, tsp,
                                              NULL);
    nc__loop_woke(loop);
    r->expect = 0;
    if (io_uring_sq_ready(&r->uring) > 0)
        defuse_sends(r);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
        rc != -EBUSY)
        return rc;
    return reap(r);
}

/* ---- life ------------------------------------------------------------------ */

static void ring_release(struct ring *r)
{
    if (r->br)
        munmap(r->br, r->br_bytes);
    free(r->bufs);
    free(r->ws);
    free(r->sendq);
    free(r->early);
    for (size_t i = 0; i < r->nslots; i++)
        free(r->slots[i]);
    free(r->slots);
    free(r);
}

static void uring_free(struct backend *b)
{
    struct ring *r = (struct ring *)b;
    r->dying = true;
    if (!r->enabled)
        r->live = 0;    /* never submitted: nothing is in the kernel */
    /* Whatever is still in the kernel is cancelled, and its last
     * completion awaited, before the buffers it may write go away. */
    struct io_uring_sqe *s = r->enabled ? sqe_get(r) : NULL;
    if (s) {
        io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY |
                                         IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(s, RQ_NONE);
    }
    nc__ring_submit(r);
    uint64_t deadline = clock_now_ns() + (uint64_t)FREE_WAIT_MS * NS_PER_MS;
    while (r->live > 0 && clock_now_ns() < deadline) {
        struct __kernel_timespec ts = { .tv_nsec = 10 * 1000000 };
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
        reap(r);
    }
    run_deferred(r);    /* closes linked behind cancels */
    io_uring_queue_exit(&r->uring);
    r->loop->ring = NULL;
    ring_release(r);
}

static const struct backend_ops uring_ops = {
    .kind = NC_BACKEND_IO_URING,
    .set = uring_set,
    .wait = uring_wait,
    .free = uring_free,
};

/* The kernel must have what this file relies on: waiting with a timeout
 * in the same call (EXT_ARG), no dropped completions, stable submissions,
 * and the operations of Linux 6.0 (multishot accept and provided buffer
 * rings are older; its zero-copy send is the opcode that shows the
 * version). */
static int check_kernel(struct ring *r, const struct io_uring_params *p)
{
    unsigned need = IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP |
                    IORING_FEAT_SUBMIT_STABLE;
    if ((p->features & need) != need)
        return -ENOSYS;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->uring);
    if (!probe)
        return -ENOSYS;
    bool ok = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
              io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
              io_uring_opcode_supported(probe, IORING_OP_RECV);
    io_uring_free_probe(probe);
    return ok ? 0 : -ENOSYS;
}

static int setup_buffers(struct ring *r)
{
    r->br_bytes = RECV_BUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, r->br_bytes, PROT_READ | PROT_WRITE,
                    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED)
        return -ENOMEM;
    r->br = br;
    r->bufs = malloc((size_t)RECV_BUFS * RECV_BUF_SIZE);
    if (!r->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)r->br,
        .ring_entries = RECV_BUFS,
        .bgid = RECV_GROUP,
    };
    int rc = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (rc < 0)
        return rc == -EINVAL ? -ENOSYS : rc;
    io_uring_buf_ring_init(r->br);
    for (unsigned i = 0; i < RECV_BUFS; i++)
        io_uring_buf_ring_add(r->br, r->bufs + (size_t)i * RECV_BUF_SIZE,
                              RECV_BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(RECV_BUFS), (int)i);
    io_uring_buf_ring_advance(r->br, RECV_BUFS);
    return 0;
}

int nc__uring_new(nc_loop *loop, struct backend **out)
{
    struct ring *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base.ops = &uring_ops;
    r->loop = loop;
    /* Completions' task work runs only when the loop waits
     * (DEFER_TASKRUN, Linux 6.1), not at any system call of the thread:
     * the kernel batches it, and a cancel, submitted before the wait
     * runs any, always finds a multishot request armed. It needs
     * SINGLE_ISSUER, hence R_DISABLED (ring_enable). Older kernels
     * refuse the flags (EINVAL): cooperative task work then, the ring
     * enabled at once. */
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_R_DISABLED | IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = RING_CQ_ENTRIES;
    int rc = io_uring_queue_init_params(RING_ENTRIES, &r->uring, &p);
    r->single = rc == 0;
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        p.cq_entries = RING_CQ_ENTRIES;
        rc = io_uring_queue_init_params(RING_ENTRIES, &r->uring, &p);
        r->enabled = rc == 0;
    }
    if (rc < 0) {
        free(r);
        /* An unknown flag: a kernel before 5.19, too old for us. */
        return rc == -EINVAL ? -ENOSYS : rc;
    }
    rc = check_kernel(r, &p);
    if (rc == 0)
        rc = setup_buffers(r);
    if (rc < 0) {
        io_uring_queue_exit(&r->uring);
        ring_release(r);
        return rc;
    }
    loop->ring = r;
    *out = &r->base;
    return 0;
}
