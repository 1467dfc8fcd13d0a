/*
 * spread.c - how SO_REUSEPORT spreads a few clients over worker loops.
 *
 *   spread [TRIALS]        (default 300)
 *
 * For W = 2 and 4 workers listening on 127.0.0.1 with SO_REUSEPORT
 * (nc_workers_listen), and for k = 1..8 clients: TRIALS times, open k
 * connections at once from fresh ports, count the workers that accepted
 * none, then reset them all (no TIME_WAIT is left behind). The kernel
 * picks a listening socket by a hash of the connection's addresses and
 * ports, so the expectation for a uniform hash is printed beside the
 * measurement: E[idle] = W (1 - 1/W)^k, and the chance that at least one
 * worker is idle. The last rows use the hand-off acceptor instead
 * (round-robin): no worker idles once k >= W.
 *
 * Output: one line per (mode, W, k), "spread MODE W K mean_idle p_idle
 * expected_idle expected_p", then a markdown table on stderr.
 */
#include <errno.h>
#include <netcore.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXW 4
#define MAXK 8

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int die(const char *what, int err)
{
    fprintf(stderr, "spread: %s: %s\n", what, nc_strerror(err));
    exit(1);
}

/* Poll the workers' counters until total accepted reaches goal and open
 * falls to want_open (bounded: 5 s). */
static void wait_counts(nc_workers *w, uint64_t goal, uint64_t want_open,
                        nc_loop_stats *per)
{
    uint64_t until = now_ms() + 5000;
    nc_loop_stats sum;
    do {
        nc_workers_stats(w, per, MAXW, &sum);
        if (sum.accepted >= goal && sum.open == want_open)
            return;
        sched_yield();
    } while (now_ms() < until);
    die("the workers did not accept in time", -ETIMEDOUT);
}

static double expected_idle(unsigned W, unsigned k)
{
    double p = 1.0;
    for (unsigned i = 0; i < k; i++)
        p *= 1.0 - 1.0 / W;
    return W * p;
}

/* P(some worker gets none) for k uniform throws into W bins. */
static double expected_p(unsigned W, unsigned k)
{
    double all = 0, binom = 1;
    for (unsigned j = 0; j <= W; j++) {
        double q = 1.0;
        for (unsigned i = 0; i < k; i++)
            q *= 1.0 - (double)j / W;
        all += (j % 2 ? -1 : 1) * binom * q;
        binom = binom * (W - j) / (j + 1);
    }
    return 1.0 - all;
}

static void measure(const char *mode, nc_workers_accept accept, unsigned W,
                    int trials, double idle_out[MAXK + 1],
                    double p_out[MAXK + 1])
{
    nc_workers_options o = { .threads = W, .accept = accept };
    nc_workers *w;
    nc_addr a;
    size_t n;
    int rc = nc_workers_start(&o, &w);
    if (rc < 0)
        die("nc_workers_start", rc);
    rc = nc_workers_listen(w, "127.0.0.1:0", NULL, NULL, NULL);
    if (rc < 0)
        die("nc_workers_listen", rc);
    nc_workers_addrs(w, &a, 1, &n);
    uint64_t accepted = 0;
    for (unsigned k = 1; k <= MAXK; k++) {
        long idle_sum = 0, some_idle = 0;
        for (int t = 0; t < trials; t++) {
            nc_loop_stats before[MAXW], after[MAXW];
            int fds[MAXK];
            nc_workers_stats(w, before, MAXW, NULL);
            for (unsigned i = 0; i < k; i++) {
                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fds[i] < 0 || connect(fds[i], &a.u.sa, a.len) < 0)
                    die("connect", -errno);
            }
            accepted += k;
            wait_counts(w, accepted, k, after);
            unsigned idle = 0;
            for (unsigned i = 0; i < W; i++)
                idle += after[i].accepted == before[i].accepted;
            idle_sum += idle;
            some_idle += idle > 0;
            for (unsigned i = 0; i < k; i++) {
                struct linger l = { 1, 0 };   /* reset: no TIME_WAIT */
                setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                close(fds[i]);
            }
            wait_counts(w, accepted, 0, after);
        }
        idle_out[k] = (double)idle_sum / trials;
        p_out[k] = (double)some_idle / trials;
        printf("spread %s %u %u %.3f %.3f %.3f %.3f\n", mode, W, k,
               idle_out[k], p_out[k], expected_idle(W, k), expected_p(W, k));
    }
    nc_workers_free(w);
}

int main(int argc, char **argv)
{
    int trials = argc > 1 ? atoi(argv[1]) : 300;
    double idle[3][MAXK + 1], p[3][MAXK + 1];
    if (trials < 1)
        trials = 1;
    measure("reuseport", NC_WORKERS_ACCEPT_REUSEPORT, 2, trials, idle[0], p[0]);
    measure("reuseport", NC_WORKERS_ACCEPT_REUSEPORT, 4, trials, idle[1], p[1]);
    measure("handoff", NC_WORKERS_ACCEPT_HANDOFF, 4, trials, idle[2], p[2]);
    fprintf(stderr, "\n%d trials per row; idle = workers that accepted none "
            "of the k clients\n\n", trials);
    fprintf(stderr, "| clients k | 2 workers: idle, P(any idle) | uniform "
            "hash | 4 workers: idle, P(any idle) | uniform hash | 4 workers, "
            "hand-off: idle |\n|---:|---:|---:|---:|---:|---:|\n");
    for (unsigned k = 1; k <= MAXK; k++)
        fprintf(stderr, "| %u | %.2f, %.0f%% | %.2f, %.0f%% | %.2f, %.0f%% | "
                "%.2f, %.0f%% | %.2f |\n", k, idle[0][k], 100 * p[0][k],
                expected_idle(2, k), 100 * expected_p(2, k), idle[1][k],
                100 * p[1][k], expected_idle(4, k), 100 * expected_p(4, k),
                idle[2][k]);
    return 0;
}
