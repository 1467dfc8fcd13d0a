/*
 * resolve_load.h - what the three bench_resolve_* programs share: the
 * settings (from the environment), the clock and CPU time, and the one
 * result line each prints for bench/table.awk.
 *
 * Each program connects to NAME:PORT (a name the local DNS server of
 * bench/resolve.sh answers with 127.0.0.1) TOTAL times, CONCURRENCY at a
 * time: look the name up, connect, close once connected, start the next.
 * Nothing is cached by any of the three libraries, so every connect asks
 * the server again.
 */
#ifndef BENCH_RESOLVE_LOAD_H
#define BENCH_RESOLVE_LOAD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

struct resolve_load {
    const char *name;
    unsigned port;
    unsigned long total, concurrency;
    unsigned long started, done, failed;
    uint64_t t0_ns;
    double cpu0_s;
};

static inline uint64_t rl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process, every thread included (libuv's
 * getaddrinfo runs on its thread pool). */
static inline double rl_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static inline unsigned long rl_env(const char *var, unsigned long dflt)
{
    const char *v = getenv(var);
    return v && *v ? strtoul(v, NULL, 10) : dflt;
}

static inline void rl_init(struct resolve_load *l, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT (environment: "
                "NC_BENCH_RESOLVE_NAME, _TOTAL, _CONCURRENCY)\n", argv[0]);
        exit(2);
    }
    l->port = (unsigned)strtoul(argv[1], NULL, 10);
    l->name = getenv("NC_BENCH_RESOLVE_NAME");
    if (!l->name)
        l->name = "bench.test";
    l->total = rl_env("NC_BENCH_RESOLVE_TOTAL", 20000);
    l->concurrency = rl_env("NC_BENCH_RESOLVE_CONCURRENCY", 32);
    l->t0_ns = rl_now_ns();
    l->cpu0_s = rl_cpu_s();
}

/* Whether another connect should start now. */
static inline int rl_want_more(struct resolve_load *l)
{
    if (l->started >= l->total)
        return 0;
    l->started++;
    return 1;
}

/* The result lines: connects per second and CPU per connect. Exits 1 when
 * any connect failed (the numbers would not compare). */
static inline int rl_report(struct resolve_load *l, const char *lib)
{
    double wall = (rl_now_ns() - l->t0_ns) / 1e9;
    double cpu = rl_cpu_s() - l->cpu0_s;
    printf("resolve connects_by_name %s %.0f conn/s\n", lib, l->done / wall);
    printf("resolve cpu_per_connect %s %.1f us/conn\n", lib,
           cpu * 1e6 / (double)(l->done ? l->done : 1));
    fprintf(stderr, "bench_resolve (%s): %lu connects, %lu failed, %.3f s, "
            "%.3f s CPU\n", lib, l->done, l->failed, wall, cpu);
    return l->failed ? 1 : 0;
}

#endif
