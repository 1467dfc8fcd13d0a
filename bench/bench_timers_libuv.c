/*
 * bench_timers_libuv.c - the jobs of bench_timers.c with libuv's
 * uv_timer_t, for comparison. Usage: bench_timers_libuv [N]
 * Output: "timers <job> libuv <value> ns/op".
 */
#include <uv.h>

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

static void on_fire(uv_timer_t *t)
{
    (void)t;
    fired++;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    uint32_t *start_stop_ms = malloc((size_t)n * sizeof(uint32_t));
    uint32_t *fire_ms = malloc((size_t)n * sizeof(uint32_t));
    uv_timer_t *timers = calloc((size_t)n, sizeof(*timers));
    uv_loop_t loop;
    if (n <= 0 || !start_stop_ms || !fire_ms || !timers ||
        uv_loop_init(&loop) != 0) {
        fprintf(stderr, "bench_timers_libuv: setup failed\n");
        return 1;
    }
    uint32_t seed = 1;
    for (long i = 0; i < n; i++) {
        start_stop_ms[i] = next_random(&seed) % 1000000;
        fire_ms[i] = next_random(&seed) % 100;
    }
    for (long i = 0; i < n; i++)
        uv_timer_init(&loop, &timers[i]);

    uv_update_time(&loop);
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++)
        uv_timer_start(&timers[i], on_fire, start_stop_ms[i], 0);
    for (long i = 0; i < n; i++)
        uv_timer_stop(&timers[i]);
    uint64_t t1 = clock_ns(CLOCK_MONOTONIC);
    printf("timers start_stop libuv %.1f ns/op\n",
           (double)(t1 - t0) / (double)n);

    uv_update_time(&loop);
    for (long i = 0; i < n; i++)
        uv_timer_start(&timers[i], on_fire, fire_ms[i], 0);
    t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uv_run(&loop, UV_RUN_DEFAULT);
    t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (fired != n) {
        fprintf(stderr, "bench_timers_libuv: %ld of %ld timers fired\n",
                fired, n);
        return 1;
    }
    printf("timers fire libuv %.1f ns/op\n", (double)(t1 - t0) / (double)n);
    fflush(stdout);

    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&timers[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(timers);
    free(fire_ms);
    free(start_stop_ms);
    return 0;
}
