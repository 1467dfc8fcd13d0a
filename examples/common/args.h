/*
 * args.h - command-line helpers shared by the example programs: number
 * parsing and the one-line usage error (exit status 2).
 */
#ifndef EXAMPLES_ARGS_H
#define EXAMPLES_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "netcore.h"

/* Exit status for bad arguments. */
#define ARGS_EXIT_USAGE 2

/* Parse text as a decimal integer in [min, max]. Returns 0, or -EINVAL
 * (not a number) or -ERANGE (outside the range). */
int args_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* Parse a duration in seconds ("60", "0.25") into milliseconds that fit a
 * uint32_t. Returns 0, -EINVAL or -ERANGE. */
int args_seconds_ms(const char *text, uint32_t *out_ms);

/* Print "PROG: MESSAGE (see PROG --help)" on one line to stderr and exit
 * with ARGS_EXIT_USAGE. */
_Noreturn void args_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Check an endpoint string the way nc_listen()/nc_connect() will read it;
 * exits through args_usage_error() naming what is wrong. With
 * for_connect, wildcard endpoints ("*:7000") are refused too, and a host
 * name with a dot ("example.com:443") is accepted as it is, for
 * nc_connect() to look up (*ep is then left alone). Fills *ep when ep is
 * not NULL. */
void args_endpoint(const char *prog, const char *option, const char *text,
                   bool for_connect, nc_endpoint *ep);

/* Print "PROG (libnetcore X.Y.Z)" to stdout and exit 0: --version. */
_Noreturn void args_version(const char *prog);

/* The message getopt_long() would print for the option at optind-1 that it
 * rejected (c is its return value: '?' or ':'); exits with status 2. */
_Noreturn void args_bad_option(const char *prog, int c, int optopt_value,
                               char *const argv[], int optind_value);

#endif /* EXAMPLES_ARGS_H */
