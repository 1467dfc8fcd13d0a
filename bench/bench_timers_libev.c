/*
 * bench_timers_libev.c - the jobs of bench_timers.c with libev's
 * ev_timer, for comparison. Usage: bench_timers_libev [N]
 * Output: "timers <job> libev <value> ns/op".
 */
#include <ev.h>

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

static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static long fired;

static void on_fire(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    fired++;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    uint32_t *start_stop_ms = malloc((size_t)n * sizeof(uint32_t));
    uint32_t *fire_ms = malloc((size_t)n * sizeof(uint32_t));
    ev_timer *timers = calloc((size_t)n, sizeof(*timers));
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    if (n <= 0 || !start_stop_ms || !fire_ms || !timers || !loop) {
        fprintf(stderr, "bench_timers_libev: setup failed\n");
        return 1;
    }
    uint32_t seed = 1;
    for (long i = 0; i < n; i++) {
        start_stop_ms[i] = next_random(&seed) % 1000000;
        fire_ms[i] = next_random(&seed) % 100;
    }
    for (long i = 0; i < n; i++)
        ev_timer_init(&timers[i], on_fire, 0., 0.);

    ev_now_update(loop);
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        ev_timer_set(&timers[i], start_stop_ms[i] / 1e3, 0.);
        ev_timer_start(loop, &timers[i]);
    }
    for (long i = 0; i < n; i++)
        ev_timer_stop(loop, &timers[i]);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC);
    printf("timers start_stop libev %.1f ns/op\n",
           (double)(t1 - t0) / (double)n);

    ev_now_update(loop);
    for (long i = 0; i < n; i++) {
        ev_timer_set(&timers[i], fire_ms[i] / 1e3, 0.);
        ev_timer_start(loop, &timers[i]);
    }
    t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    ev_run(loop, 0);
    t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (fired != n) {
        fprintf(stderr, "bench_timers_libev: %ld of %ld timers fired\n",
                fired, n);
        return 1;
    }
    printf("timers fire libev %.1f ns/op\n", (double)(t1 - t0) / (double)n);
    fflush(stdout);

    ev_loop_destroy(loop);
    free(timers);
    free(fire_ms);
    free(start_stop_ms);
    return 0;
}
