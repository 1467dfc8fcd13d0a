/*
 * bench_idle.c - what an idle connection costs a server in user-space
 * memory, for libnetcore, an epoll floor, libev, libevent and libuv.
 *
 * For each mode and library it starts that library's idle server
 * (idle_<lib>, found next to this binary; the servers and their line
 * protocol are described in mini_server.h), then:
 *   1. warm-up: opens W connections (default 300) at once, sends each one
 *      request and reads its answer, closes them all and waits until the
 *      server has closed them too, so that one-time allocations are done;
 *      then opens W such connections again and keeps them: they take up
 *      the memory the first ones freed, which the server's allocator
 *      keeps (in RSS) and would otherwise hand to the first W measured
 *      connections, making them look free;
 *   2. baseline: reads the server's VmRSS from /proc/PID/status;
 *   3. load: P client processes (default 4; process k binds its sockets to
 *      source address 127.0.0.k+1, so that ephemeral ports do not run out
 *      and no process holds too many descriptors) open N connections in
 *      all (default 10,000) and keep them open:
 *        keepalive: each connection sends one request, reads the answer,
 *                   then stays idle;
 *        unused:    each connection only connects and sends nothing;
 *   4. waits until the server holds all N (the count of /proc/PID/fd) and
 *      sleeps in its loop, then reads VmRSS again;
 *   5. closes the clients and the W held connections, waits until the
 *      server has closed them all, stops it with SIGTERM and checks that
 *      it exits with status 0.
 * The result is (VmRSS at 4 - VmRSS at 2) / N, in bytes per connection:
 * the user-space memory an idle connection holds. Kernel memory is not in
 * RSS: where /proc/slabinfo can be read (root), the growth of all slab
 * caches between the same two points, per connection, is reported too
 * (idle_kmem). It holds both ends' sockets, the same for every server,
 * and what the server's kernel interface keeps per connection: an epoll
 * registration, or on io_uring a receive waiting in the kernel. Other
 * processes allocate meanwhile: compare the libraries within a run.
 * VmRSS counts kB, so with N = 10,000 the resolution is 0.1 B. Tables
 * indexed by descriptor that grow by doubling (libnetcore's, libev's,
 * libuv's) make the figure depend a little on N: each connection pays its
 * share of the table size N and W lead to.
 *
 * Usage: bench_idle [-n CONNS] [-p PROCS] [-w WARMUP] [-m MODE] [LIB...]
 *   CONNS  connections held (default 10000, or $NC_IDLE_CONNS)
 *   PROCS  client processes (default 4, at most 64)
 *   WARMUP warm-up connections, served and closed, then as many held
 *          (default 300)
 *   MODE   keepalive, unused or both (default both)
 *   LIB    libnetcore epoll libev libevent libuv (default all, this order)
 * Output, in bench/run.sh's format, one line per mode and library:
 *   idle_mem keepalive libnetcore 56.3 B/conn
 *   idle_kmem keepalive libnetcore 5210 B/conn   (root only)
 * and a line per measurement on stderr with the raw figures. Every wait
 * has a time limit; a server or client that outlives it is killed by its
 * PID and the library's line is not printed (exit status 1).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define PROG "bench_idle"
#define MAX_PROCS 64
/* The server holds every connection (CONNS + WARMUP), and a process may
 * open at most 20,000 descriptors on this machine. */
#define MAX_CONNS 19000

/* Time limits, in milliseconds. */
#define START_MS 10000      /* a server announcing its port */
#define OPEN_MS 120000      /* every client opening its connections */
#define SETTLE_MS 60000     /* the server taking them all and going idle */
#define CLOSE_MS 30000      /* clients exiting, the server closing all */
#define STOP_MS 10000       /* a server exiting after SIGTERM */
#define HOLD_MS 600000      /* a client waiting to be told to close */
#define IO_TIMEOUT_S 5      /* one connect, send or receive */

static const char *const all_libs[] = {"libnetcore", "epoll", "libev",
                                       "libevent", "libuv"};
static const char request[] = "hello\n";

static char bin_dir[4096];

/* ---- small helpers -------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        continue;
}

/* Open descriptors of pid, or -1. */
static int fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* VmRSS of pid in kB, or -1. */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Bytes in all the kernel's slab caches (/proc/slabinfo: objects times
 * their size), or -1 where it cannot be read (it takes root). */
static long long slab_bytes(void)
{
    FILE *f = fopen("/proc/slabinfo", "r");
    if (!f)
        return -1;
    char line[512], name[128];
    long long total = 0;
    long active, objs, size;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%127s %ld %ld %ld", name, &active, &objs, &size) == 4)
            total += (long long)objs * size;
    fclose(f);
    return total;
}

/* The state letter of pid (R, S, ...), or 0. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Wait until pid holds want descriptors (at least want when at_least) and
 * has been asleep in its loop with that count for three samples in a row
 * (60 ms): every connection is accepted and dealt with. Returns the count
 * it settled at, or -1 after limit_ms. */
static int wait_settled(pid_t pid, int want, bool at_least, unsigned limit_ms)
{
    uint64_t deadline = now_ms() + limit_ms;
    int last = -1, calm = 0;
    while (now_ms() < deadline) {
        int n = fd_count(pid);
        if (n < 0)
            return -1;   /* the server is gone */
        bool there = at_least ? n >= want : n == want;
        if (there && n == last && proc_state(pid) == 'S')
            calm++;
        else
            calm = 0;
        if (calm >= 3)
            return n;
        last = n;
        sleep_ms(20);
    }
    return -1;
}

/* Reap pid within limit_ms, else kill it (by its PID). Returns true when
 * it exited by itself with status 0. */
static bool reap(pid_t pid, unsigned limit_ms)
{
    uint64_t deadline = now_ms() + limit_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (r < 0 && errno != EINTR)
            return false;
        if (now_ms() >= deadline)
            break;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    return false;
}

/* ---- the server ------------------------------------------------------ */

/* Start idle_<lib>; set *port from its announcement. Returns its PID, or
 * -1 (after saying why). */
static pid_t start_server(const char *lib, int *port)
{
    char path[4200], line[128];
    int p[2];
    snprintf(path, sizeof path, "%s/idle_%s", bin_dir, lib);
    if (access(path, X_OK) < 0) {
        fprintf(stderr, "%s: %s: %s (build with make bench)\n", PROG, path,
                strerror(errno));
        return -1;
    }
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* If this driver dies, the server is told to stop. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (dup2(p[1], STDOUT_FILENO) < 0)
            _exit(127);
        execl(path, path, "0", (char *)NULL);
        fprintf(stderr, "%s: cannot run %s: %s\n", PROG, path,
                strerror(errno));
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    /* Read "listening on 127.0.0.1:PORT\n", within START_MS. */
    size_t len = 0;
    uint64_t deadline = now_ms() + START_MS;
    *port = 0;
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        uint64_t now = now_ms();
        if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
            break;
        ssize_t n = read(p[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    line[len] = '\0';
    if (sscanf(line, "listening on 127.0.0.1:%d", port) != 1 || *port <= 0) {
        fprintf(stderr, "%s: idle_%s did not start\n", PROG, lib);
        reap(pid, 0);
        return -1;
    }
    return pid;
}

/* ---- the clients ----------------------------------------------------- */

/* A blocking connection to 127.0.0.1:port from 127.0.0.src, every call on
 * it bounded by IO_TIMEOUT_S. With ask, one request is sent and its
 * answer read. Returns the fd or a negative errno. */
static int open_conn(int port, int src, bool ask)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    struct sockaddr_in a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)src);
    /* The port is chosen at connect, per destination, not at bind. */
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        goto fail;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        goto fail;
    if (ask) {
        char in[8];
        size_t got = 0;
        if (send(fd, request, sizeof request - 1, MSG_NOSIGNAL) !=
            (ssize_t)(sizeof request - 1))
            goto fail;
        while (got < 3) {
            ssize_t n = recv(fd, in + got, 3 - got, 0);
            if (n <= 0) {
                if (n == 0)
                    errno = EPIPE;
                goto fail;
            }
            got += (size_t)n;
        }
        if (memcmp(in, "ok\n", 3) != 0) {
            errno = EBADMSG;
            goto fail;
        }
    }
    return fd;
fail:;
    int err = errno ? -errno : -EIO;
    close(fd);
    return err;
}

/* What a client process reports once it has opened its connections. */
typedef struct client_report {
    int index;
    int opened;
    int err;              /* 0 or the first negative errno */
} client_report;

/* The body of client process index: open count connections from source
 * address 127.0.0.index+1, report, hold them until the driver closes the
 * control pipe (or HOLD_MS passed), then exit, which closes them. */
static void client_main(int index, int port, int count, bool ask,
                        int report_fd, int ctl_fd)
{
    client_report rep = {index, 0, 0};
    uint64_t deadline = now_ms() + OPEN_MS;
    for (; rep.opened < count; rep.opened++) {
        if (now_ms() >= deadline) {
            rep.err = -ETIMEDOUT;
            break;
        }
        int fd = open_conn(port, index + 1, ask);
        if (fd < 0) {
            rep.err = fd;
            break;
        }
    }
    /* One record, smaller than PIPE_BUF: written whole. */
    if (write(report_fd, &rep, sizeof rep) != (ssize_t)sizeof rep)
        _exit(1);
    struct pollfd pfd = {ctl_fd, POLLIN, 0};
    while (poll(&pfd, 1, HOLD_MS) < 0 && errno == EINTR)
        continue;
    _exit(rep.err == 0 ? 0 : 1);
}

/* ---- one measurement ------------------------------------------------- */

typedef struct config {
    int conns, procs, warmup;
} config;

/* Open n connections to port from 127.0.0.1 at once, each asking once,
 * into fds. Returns how many were opened; *err is 0 or why it stopped. */
static int open_asking(int port, int *fds, int n, int *err)
{
    int i = 0;
    *err = 0;
    for (; i < n; i++)
        if ((fds[i] = open_conn(port, 1, true)) < 0) {
            *err = fds[i];
            break;
        }
    return i;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Measure lib in one mode; print its result line. Returns 0 or -1. */
static int measure(const config *cfg, const char *lib, bool keepalive)
{
    const char *mode = keepalive ? "keepalive" : "unused";
    pid_t clients[MAX_PROCS];
    int nclients = 0, port, report[2] = {-1, -1}, ctl[2] = {-1, -1};
    int opened = 0, ok = -1;
    uint64_t t0 = now_ms();

    int *held_fds = calloc((size_t)cfg->warmup + 1, sizeof *held_fds);
    int nheld = 0, err;
    pid_t server = held_fds ? start_server(lib, &port) : -1;
    if (server < 0) {
        free(held_fds);
        return -1;
    }
    int base_fds = fd_count(server);
    /* Warm-up: serve and close W connections, then hold W more. */
    nheld = open_asking(port, held_fds, cfg->warmup, &err);
    close_all(held_fds, nheld);
    nheld = 0;
    if (err == 0 && wait_settled(server, base_fds, false, SETTLE_MS) < 0)
        err = -ETIMEDOUT;
    if (err == 0)
        nheld = open_asking(port, held_fds, cfg->warmup, &err);
    if (err == 0 && wait_settled(server, base_fds + nheld, false,
                                 SETTLE_MS) < 0)
        err = -ETIMEDOUT;
    if (err < 0) {
        fprintf(stderr, "%s: %s %s: warm-up: %s\n", PROG, mode, lib,
                strerror(-err));
        goto out;
    }
    base_fds += nheld;
    long rss0 = rss_kb(server);
    long long slab0 = slab_bytes();

    if (pipe2(report, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0) {
        perror(PROG ": pipe");
        goto out;
    }
    for (int k = 0; k < cfg->procs; k++) {
        int count = cfg->conns / cfg->procs + (k < cfg->conns % cfg->procs);
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(report[0]);
            close(ctl[1]);   /* or closing the driver's end is no EOF */
            close_all(held_fds, nheld);   /* the driver's to close */
            client_main(k, port, count, keepalive, report[1], ctl[0]);
        }
        if (pid < 0) {
            perror(PROG ": fork");
            goto out;
        }
        clients[nclients++] = pid;
    }
    close(report[1]);
    report[1] = -1;

    /* Every client reports once, within OPEN_MS. */
    uint64_t deadline = now_ms() + OPEN_MS + 5000;
    int reports = 0;
    bool failed = false;
    while (reports < nclients) {
        client_report rep;
        struct pollfd pfd = {report[0], POLLIN, 0};
        uint64_t now = now_ms();
        if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0 ||
            read(report[0], &rep, sizeof rep) != (ssize_t)sizeof rep)
            break;
        reports++;
        opened += rep.opened;
        if (rep.err < 0) {
            fprintf(stderr, "%s: %s %s: client %d (source 127.0.0.%d): %s "
                    "after %d connections\n", PROG, mode, lib, rep.index,
                    rep.index + 1, strerror(-rep.err), rep.opened);
            failed = true;
        }
    }
    if (failed || reports < nclients) {
        if (reports < nclients)
            fprintf(stderr, "%s: %s %s: only %d of %d clients reported\n",
                    PROG, mode, lib, reports, nclients);
        goto out;
    }
    int held = wait_settled(server, base_fds + cfg->conns, true, SETTLE_MS);
    if (held < 0) {
        fprintf(stderr, "%s: %s %s: the server did not take all %d "
                "connections (it holds %d descriptors)\n", PROG, mode, lib,
                cfg->conns, fd_count(server) - base_fds);
        goto out;
    }
    long rss1 = rss_kb(server);
    long long slab1 = slab_bytes();
    if (held != base_fds + cfg->conns)
        fprintf(stderr, "%s: %s %s: note: %d descriptors more than "
                "expected\n", PROG, mode, lib, held - base_fds - cfg->conns);

    /* Let the clients go; the server must close every connection. */
    close(ctl[1]);
    ctl[1] = -1;
    for (int k = 0; k < nclients; k++)
        if (!reap(clients[k], CLOSE_MS))
            fprintf(stderr, "%s: %s %s: client %d did not exit cleanly\n",
                    PROG, mode, lib, k);
    nclients = 0;
    close_all(held_fds, nheld);
    base_fds -= nheld;
    nheld = 0;
    if (wait_settled(server, base_fds, false, CLOSE_MS) < 0) {
        fprintf(stderr, "%s: %s %s: the server still holds %d connections "
                "after the clients closed them\n", PROG, mode, lib,
                fd_count(server) - base_fds);
        goto out;
    }
    ok = 0;
    fprintf(stderr, "%s: %s %s: %d connections, VmRSS %ld -> %ld kB, "
            "%.1f s\n", PROG, mode, lib, opened, rss0, rss1,
            (double)(now_ms() - t0) / 1000.0);
    if (rss0 < 0 || rss1 < 0) {
        fprintf(stderr, "%s: %s %s: cannot read VmRSS\n", PROG, mode, lib);
        ok = -1;
    } else {
        printf("idle_mem %s %s %.1f B/conn\n", mode, lib,
               (double)(rss1 - rss0) * 1024.0 / cfg->conns);
        if (slab0 >= 0 && slab1 >= 0)
            printf("idle_kmem %s %s %.0f B/conn\n", mode, lib,
                   (double)(slab1 - slab0) / cfg->conns);
        fflush(stdout);
    }
out:
    close_all(held_fds, nheld);
    free(held_fds);
    if (ctl[1] >= 0)
        close(ctl[1]);   /* clients still holding connections exit */
    for (int k = 0; k < nclients; k++)
        reap(clients[k], CLOSE_MS);
    for (int i = 0; i < 2; i++) {
        if (report[i] >= 0)
            close(report[i]);
        if (i == 0 && ctl[i] >= 0)
            close(ctl[i]);
    }
    if (server > 0) {
        kill(server, SIGTERM);
        if (!reap(server, STOP_MS)) {
            fprintf(stderr, "%s: %s %s: the server did not exit cleanly on "
                    "SIGTERM\n", PROG, mode, lib);
            ok = -1;
        }
    }
    return ok;
}

/* ---- main ------------------------------------------------------------ */

static int int_arg(const char *s, int min, int max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v >= min && v <= max ? (int)v : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-n CONNS] [-p PROCS] [-w WARMUP] "
            "[-m keepalive|unused|both] [LIB...]\n"
            "  defaults: -n 10000 ($NC_IDLE_CONNS), -p 4, -w 300, -m both;\n"
            "  LIB: libnetcore epoll libev libevent libuv (default all)\n",
            PROG);
    exit(2);
}

int main(int argc, char **argv)
{
    config cfg = {10000, 4, 300};
    const char *env = getenv("NC_IDLE_CONNS");
    bool modes[2] = {true, true};   /* keepalive, unused */
    int c;

    if (env && *env && (cfg.conns = int_arg(env, 1, MAX_CONNS)) < 0) {
        fprintf(stderr, "%s: NC_IDLE_CONNS must be 1..%d\n", PROG, MAX_CONNS);
        return 2;
    }
    while ((c = getopt(argc, argv, "n:p:w:m:h")) != -1) {
        switch (c) {
        case 'n':
            if ((cfg.conns = int_arg(optarg, 1, MAX_CONNS)) < 0)
                usage();
            break;
        case 'p':
            if ((cfg.procs = int_arg(optarg, 1, MAX_PROCS)) < 0)
                usage();
            break;
        case 'w':
            if ((cfg.warmup = int_arg(optarg, 0, 5000)) < 0)
                usage();
            break;
        case 'm':
            modes[0] = !strcmp(optarg, "keepalive") || !strcmp(optarg, "both");
            modes[1] = !strcmp(optarg, "unused") || !strcmp(optarg, "both");
            if (!modes[0] && !modes[1])
                usage();
            break;
        default:
            usage();
        }
    }
    if (cfg.conns + cfg.warmup > MAX_CONNS) {
        fprintf(stderr, "%s: the server would hold more than %d "
                "connections (CONNS + WARMUP)\n", PROG, MAX_CONNS);
        return 2;
    }
    const char *const *libs = all_libs;
    int nlibs = (int)(sizeof all_libs / sizeof *all_libs);
    if (optind < argc) {
        libs = (const char *const *)argv + optind;
        nlibs = argc - optind;
    }

    /* The servers live next to this program. */
    ssize_t n = readlink("/proc/self/exe", bin_dir, sizeof bin_dir - 1);
    if (n <= 0) {
        perror(PROG ": /proc/self/exe");
        return 1;
    }
    bin_dir[n] = '\0';
    char *slash = strrchr(bin_dir, '/');
    if (slash)
        *slash = '\0';

    int rc = 0;
    for (int m = 0; m < 2; m++)
        for (int i = 0; modes[m] && i < nlibs; i++)
            if (measure(&cfg, libs[i], m == 0) < 0)
                rc = 1;
    return rc;
}
