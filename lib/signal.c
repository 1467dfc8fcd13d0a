/*
 * signal.c - signal handlers run inside the loop, read from one signalfd
 * per loop. Handled signals are blocked in the thread that starts them so
 * that they stay pending until the signalfd is read.
 */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SIGNAL_MAX 64

struct nc_signal {
    nc_loop *loop;
    int signum;
    bool was_blocked;      /* blocked before we started: leave it blocked */
    nc_signal_fn fn;
    void *ud;
    struct handle h;
};

struct signal_state {
    int fd;
    sigset_t mask;
    struct watch w;        /* attached (and counted) while handlers exist */
    unsigned count;
    nc_signal *handlers[SIGNAL_MAX + 1];
};

static void signal_ready(struct watch *w, unsigned events)
{
    struct signal_state *st = container_of(w, struct signal_state, w);
    struct signalfd_siginfo info[16];
    (void)events;
    for (;;) {
        ssize_t n = read(st->fd, info, sizeof(info));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        size_t count = (size_t)n / sizeof(info[0]);
        for (size_t i = 0; i < count; i++) {
            uint32_t signo = info[i].ssi_signo;
            /* Looked up now: an earlier handler may have closed this one. */
            nc_signal *s = signo <= SIGNAL_MAX ? st->handlers[signo] : NULL;
            if (s)
                s->fn(s, (int)signo, s->ud);
        }
    }
}

static int state_get(nc_loop *loop, struct signal_state **out);

int nc__signals_prepare(nc_loop *loop)
{
    struct signal_state *st;
    return state_get(loop, &st);
}

static int state_get(nc_loop *loop, struct signal_state **out)
{
    if (loop->signals) {
        *out = loop->signals;
        return 0;
    }
    struct signal_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    sigemptyset(&st->mask);
    st->fd = signalfd(-1, &st->mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (st->fd < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    loop->signals = st;
    *out = st;
    return 0;
}

static void signal_handle_close(struct handle *h)
{
    nc_signal_close(container_of(h, nc_signal, h));
}

int nc_signal_start(nc_loop *loop, int signum, nc_signal_fn fn, void *ud,
                    nc_signal **out)
{
    sigset_t one;
    sigemptyset(&one);
    if (!loop || !fn || !out || signum < 1 || signum > SIGNAL_MAX ||
        signum == SIGKILL || signum == SIGSTOP)
        return -EINVAL;
    /* glibc refuses the signals it reserves for itself. */
    if (sigaddset(&one, signum) < 0)
        return -EINVAL;
    struct signal_state *st = NULL;
    int rc = state_get(loop, &st);
    if (rc < 0)
        return rc;
    if (st->handlers[signum])
        return -EEXIST;
    nc_signal *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (st->count == 0) {
        rc = nc__watch_init(loop, &st->w, st->fd, signal_ready, true);
        if (rc == 0)
            rc = nc__watch_update(&st->w, EV_READ);
        if (rc < 0)
            goto fail_watch;
    }
    sigset_t old;
    rc = -pthread_sigmask(SIG_BLOCK, &one, &old);
    if (rc < 0)
        goto fail_watch;
    s->was_blocked = sigismember(&old, signum) == 1;
    sigset_t mask = st->mask;
    sigaddset(&mask, signum);
    if (signalfd(st->fd, &mask, 0) < 0) {
        rc = -errno;
        if (!s->was_blocked)
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        goto fail_watch;
    }
    st->mask = mask;
    st->handlers[signum] = s;
    st->count++;
    s->loop = loop;
    s->signum = signum;
    s->fn = fn;
    s->ud = ud;
    s->h.close = signal_handle_close;
    nc__loop_handle_add(loop, &s->h, HANDLE_USER);
    *out = s;
    return 0;
fail_watch:
    if (st->count == 0)
        nc__watch_stop(&st->w);
    free(s);
    return rc;
}

void nc_signal_close(nc_signal *s)
{
    if (!s)
        return;
    nc_loop *loop = s->loop;
    struct signal_state *st = loop->signals;
    st->handlers[s->signum] = NULL;
    sigdelset(&st->mask, s->signum);
    signalfd(st->fd, &st->mask, 0);
    if (!s->was_blocked) {
        /* An instance that arrived before the close and was never read
         * would hit the default action (often: terminate) once unblocked.
         * It was meant for this handler: discard it. */
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, s->signum);
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&one, NULL, &zero) == s->signum)
            continue;
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    if (--st->count == 0)
        nc__watch_stop(&st->w);
    nc__loop_handle_remove(&s->h);
    free(s);
}

void nc__signals_free(nc_loop *loop)
{
    struct signal_state *st = loop->signals;
    if (!st)
        return;
    for (int i = 1; i <= SIGNAL_MAX; i++)
        nc_signal_close(st->handlers[i]);
    nc__watch_stop(&st->w);
    close(st->fd);
    free(st);
    loop->signals = NULL;
}
