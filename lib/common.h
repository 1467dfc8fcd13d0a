/*
 * common.h - small helpers every module of the library uses.
 *
 * Naming: functions shared between library files but not public carry the
 * reserved prefix nc__ (two underscores), so that a program linking the
 * static archive never collides with them; tests/check-symbols.sh checks
 * the archive and the shared library for it. Static and static inline
 * functions need no prefix. Internal headers include this one; public
 * declarations live only in include/netcore.h.
 */
#ifndef NC_COMMON_H
#define NC_COMMON_H

#include "netcore.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define NS_PER_MS 1000000u

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The positive errno for err of either sign (the library returns negative
 * ones, errno holds positive ones); -1, matching nothing, for INT_MIN,
 * whose negation would overflow. (error.c) */
int nc__positive_errno(int err);

/* A non-blocking, close-on-exec socket: its fd, or a negative errno.
 * (io.c) */
int nc__socket_nb(int family, int type);

/* setsockopt of one int; 0 or a negative errno. (io.c) */
int nc__set_int_option(int fd, int level, int name, int value);

/* TCP keepalive as o asks (nothing when keepalive_idle_s is 0); 0 or a
 * negative errno. (io.c) */
int nc__set_keepalive(int fd, const nc_conn_options *o);

/* Make the next close() of fd send a reset (SO_LINGER with timeout 0).
 * (io.c) */
void nc__set_linger_reset(int fd);

/* Write one line into a caller's error buffer (the errbuf of the option
 * structs): printf-style, truncated to len bytes and always
 * NUL-terminated. Does nothing when buf is NULL or len is 0. (error.c) */
void nc__errbuf_set(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* NC_COMMON_H */
