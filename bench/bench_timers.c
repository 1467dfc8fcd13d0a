/*
 * bench_timers.c - libnetcore timer cost, compared with bench_timers_libuv
 * and bench_timers_libev (same jobs, same pseudo-random timeouts):
 *   start_stop: start N timers with random timeouts, then stop each;
 *               wall time per start+stop pair.
 *   fire:       start N timers with timeouts spread over 0..99 ms and run
 *               the loop until all fired; the loop thread's CPU time per
 *               firing (time spent waiting for deadlines is not counted).
 * Usage: bench_timers [N]   (default 1000000)
 * Output: "timers <job> libnetcore <value> ns/op", one line per job.
 */
#include "netcore.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The same sequence in all three programs. */
static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static void on_fire(nc_timer *t, void *ud)
{
    (void)t;
    (*(long *)ud)++;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    uint32_t *start_stop_ms = malloc((size_t)n * sizeof(uint32_t));
    uint32_t *fire_ms = malloc((size_t)n * sizeof(uint32_t));
    nc_timer **timers = malloc((size_t)n * sizeof(*timers));
    nc_loop *loop;
    long fired = 0;
    if (n <= 0 || !start_stop_ms || !fire_ms || !timers ||
        nc_loop_new(&loop) < 0) {
        fprintf(stderr, "bench_timers: setup failed\n");
        return 1;
    }
    uint32_t seed = 1;
    for (long i = 0; i < n; i++) {
        start_stop_ms[i] = next_random(&seed) % 1000000;
        fire_ms[i] = next_random(&seed) % 100;
    }
    for (long i = 0; i < n; i++) {
        if (nc_timer_new(loop, on_fire, &fired, &timers[i]) < 0) {
            fprintf(stderr, "bench_timers: nc_timer_new failed\n");
            return 1;
        }
    }

    uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++)
        nc_timer_start(timers[i], start_stop_ms[i], 0);
    for (long i = 0; i < n; i++)
        nc_timer_stop(timers[i]);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC);
    printf("timers start_stop libnetcore %.1f ns/op\n",
           (double)(t1 - t0) / (double)n);

    for (long i = 0; i < n; i++)
        nc_timer_start(timers[i], fire_ms[i], 0);
    t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    nc_loop_run(loop, NC_RUN_DEFAULT);
    t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (fired != n) {
        fprintf(stderr, "bench_timers: %ld of %ld timers fired\n", fired, n);
        return 1;
    }
    printf("timers fire libnetcore %.1f ns/op\n",
           (double)(t1 - t0) / (double)n);
    fflush(stdout);

    nc_loop_free(loop);
    free(timers);
    free(fire_ms);
    free(start_stop_ms);
    return 0;
}
