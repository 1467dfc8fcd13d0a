/* support.c - see support.h. */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void guard_fired(nc_timer *t, void *ud)
{
    (void)t;
    *(bool *)ud = true;
}

bool run_until(nc_loop *loop, bool (*pred)(void *), void *arg,
               unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    bool fired = false;
    nc_timer *guard = NULL;
    if (nc_timer_new(loop, guard_fired, &fired, &guard) < 0)
        return pred(arg);
    while (!pred(arg)) {
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        fired = false;
        nc_timer_start(guard, deadline - now, 0);
        if (nc_loop_run(loop, NC_RUN_ONCE) < 0)
            break;
    }
    nc_timer_free(guard);
    return pred(arg);
}

int loop_setup(void **state)
{
    nc_loop *loop = NULL;
    if (nc_loop_new(&loop) < 0)
        return -1;
    *state = loop;
    return 0;
}

int loop_teardown(void **state)
{
    nc_loop_free(*state);
    return 0;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

uint64_t iterations_during(nc_loop *loop, unsigned ms)
{
    nc_loop_stats before, after;
    if (nc_loop_stats_get(loop, &before) < 0)
        return UINT64_MAX;
    run_until(loop, never, NULL, ms);
    if (nc_loop_stats_get(loop, &after) < 0)
        return UINT64_MAX;
    return after.iterations - before.iterations;
}

bool wait_events(int fd, short events, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        uint64_t now = now_ms();
        if (now >= deadline)
            return false;
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc == 1)
            return (p.revents & events) != 0;
        if (rc == 0 || errno != EINTR)
            return false;
    }
}

bool flag_set(void *arg)
{
    return *(const bool *)arg;
}

bool count_reached(void *arg)
{
    const struct count_goal *g = arg;
    return *g->counter >= g->goal;
}

int client_connect(const nc_addr *a)
{
    int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, &a->u.sa, a->len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

bool wait_readable(int fd, unsigned timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int rc;
    do {
        rc = poll(&p, 1, (int)timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc == 1;
}

long read_full(int fd, void *buf, size_t len, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    size_t got = 0;
    while (got < len) {
        uint64_t now = now_ms();
        if (now >= deadline || !wait_readable(fd, (unsigned)(deadline - now)))
            return -ETIMEDOUT;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return (long)got;
}

static int count_in(const char *path, unsigned port, int state)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        char local[128];
        unsigned st;
        if (sscanf(line, "%*s %127s %*s %x", local, &st) != 2)
            continue;
        char *colon = strrchr(local, ':');
        if (colon && strtoul(colon + 1, NULL, 16) == port && (int)st == state)
            n++;
    }
    fclose(f);
    return n;
}

int count_tcp_state(unsigned port, int state)
{
    return count_in("/proc/net/tcp", port, state) +
           count_in("/proc/net/tcp6", port, state);
}

nc_addr listener_addr0(const nc_listener *l)
{
    nc_addr a;
    memset(&a, 0, sizeof(a));
    nc_listener_addr(l, 0, &a);
    return a;
}

const char *self_comm(void)
{
    static char name[32];
    FILE *f = fopen("/proc/self/comm", "r");
    if (!f || !fgets(name, sizeof(name), f))
        abort();
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    return name;
}

bool under_valgrind(void)
{
    const char *v = getenv("NC_UNDER_VALGRIND");
    return v && strcmp(v, "1") == 0;
}

/* ---- test server ----------------------------------------------------- */

static void srv_open(nc_conn *c, void *ud)
{
    struct server *s = ud;
    struct conn_rec *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    if (s->nrecs == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->recs = realloc(s->recs, s->cap * sizeof(*s->recs));
        if (!s->recs)
            abort();
    }
    s->recs[s->nrecs++] = r;
    r->conn = c;
    s->opened++;
    /* Each connection gets its record as user pointer; the server is
     * reached through the record's slot in s->recs. */
    nc_conn_set_data(c, r);
    if (s->sndbuf)
        setsockopt(nc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &s->sndbuf,
                   sizeof(s->sndbuf));
    if (s->mode == SERVER_CLOSE_IN_OPEN)
        nc_conn_close(c);
}

static struct server *srv_of(nc_conn *c);

static void record(struct conn_rec *r, const char *data, size_t len)
{
    size_t room = sizeof(r->data) - r->len;
    size_t n = len < room ? len : room;
    memcpy(r->data + r->len, data, n);
    r->len += n;
}

static void srv_resume(void *arg)
{
    nc_conn_read_start(arg);
}

/* SERVER_LINES: answer complete lines, keep a partial one. */
static size_t srv_lines(struct server *s, nc_conn *c, struct conn_rec *r,
                        const char *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        if (s->max_queue && nc_conn_queued(c) > s->max_queue)
            break;
        const char *nl = memchr(data + used, '\n', len - used);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (data + used)) + 1;
        int rc = nc_conn_write(c, data + used, n);
        if (rc < 0 && s->write_err == 0)
            s->write_err = rc;
        record(r, data + used, n);
        used += n;
        if (s->pause_each) {
            nc_conn_read_stop(c);
            nc_loop_defer(nc_conn_loop(c), srv_resume, c);
            break;
        }
    }
    return used;
}

static size_t srv_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct conn_rec *r = ud;
    struct server *s = srv_of(c);
    if (nc_conn_eof(c)) {
        r->eof_calls++;
        r->eof_len = len < sizeof(r->eof_data) ? len : sizeof(r->eof_data);
        memcpy(r->eof_data, data, r->eof_len);
    }
    r->bytes += len;
    s->bytes_in += len;
    int rc = 0;
    switch (s->mode) {
    case SERVER_ECHO:
        rc = nc_conn_write(c, data, len);
        break;
    case SERVER_CLOSE_IN_DATA:
        rc = nc_conn_write(c, "bye", 3);
        nc_conn_close(c);
        break;
    case SERVER_ABORT_IN_DATA:
        nc_conn_abort(c);
        break;
    case SERVER_HOARD:
        return 0;
    case SERVER_SINK:
        record(r, data, len);
        break;
    case SERVER_LINES:
        return srv_lines(s, c, r, data, len);
    default:
        break;
    }
    if (rc < 0 && s->write_err == 0)
        s->write_err = rc;
    size_t q = nc_conn_queued(c);
    if (q > s->max_queued)
        s->max_queued = q;
    return len;
}

static void srv_drain(nc_conn *c, void *ud)
{
    (void)ud;
    srv_of(c)->drained++;
}

static void srv_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct conn_rec *r = ud;
    struct server *s = srv_of(c);
    r->closes++;
    r->reason = reason;
    r->err = err;
    r->conn = NULL;
    s->closed++;
    if ((unsigned)reason < 16)
        s->by_reason[reason]++;
    s->last_reason = reason;
    s->last_err = err;
}

static const nc_conn_callbacks srv_cbs = {
    .on_open = srv_open,
    .on_data = srv_data,
    .on_drain = srv_drain,
    .on_close = srv_close,
};

/* Connections carry their record; the record set belongs to the one server
 * whose loop they live on. Tests run one server per loop. */
struct loop_server {
    nc_loop *loop;
    struct server *s;
};
static struct loop_server servers[16];

static struct server *srv_of(nc_conn *c)
{
    nc_loop *loop = nc_conn_loop(c);
    for (size_t i = 0; i < 16; i++)
        if (servers[i].loop == loop)
            return servers[i].s;
    abort();
}

int server_start(struct server *s, nc_loop *loop, const char *spec,
                 const nc_listener_options *o, enum server_mode mode)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->mode = mode;
    int rc = nc_listen(loop, spec, o, &srv_cbs, s, &s->l);
    if (rc < 0)
        return rc;
    s->addr = listener_addr0(s->l);
    for (size_t i = 0; i < 16; i++) {
        if (servers[i].loop == NULL || servers[i].loop == loop) {
            servers[i].loop = loop;
            servers[i].s = s;
            return 0;
        }
    }
    abort();
}

bool server_all_closed_once(const struct server *s)
{
    for (size_t i = 0; i < s->nrecs; i++)
        if (s->recs[i]->closes != 1)
            return false;
    return true;
}

void server_free(struct server *s)
{
    for (size_t i = 0; i < s->nrecs; i++)
        free(s->recs[i]);
    free(s->recs);
    s->recs = NULL;
    s->nrecs = s->cap = 0;
    for (size_t i = 0; i < 16; i++)
        if (servers[i].s == s)
            servers[i].loop = NULL, servers[i].s = NULL;
}

struct bytes_goal {
    const struct server *s;
    unsigned long long n;
};

static bool bytes_reached(void *arg)
{
    const struct bytes_goal *g = arg;
    return g->s->bytes_in >= g->n;
}

bool server_wait_opened(struct server *s, unsigned long n)
{
    struct count_goal g = { &s->opened, n };
    return run_until(s->loop, count_reached, &g, 5000);
}

bool server_wait_closed(struct server *s, unsigned long n)
{
    struct count_goal g = { &s->closed, n };
    return run_until(s->loop, count_reached, &g, 5000);
}

bool server_wait_bytes(struct server *s, unsigned long long n,
                       unsigned timeout_ms)
{
    struct bytes_goal g = { s, n };
    return run_until(s->loop, bytes_reached, &g, timeout_ms);
}

int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}
