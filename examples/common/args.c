/*
 * args.c - command-line helpers shared by the example programs.
 */
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int args_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long value;
    char *end;

    if (text == NULL || *text < '0' || *text > '9')
        return -EINVAL;    /* strtoull would accept "-1" and " 1" */
    errno = 0;
    value = strtoull(text, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || value < min || value > max)
        return -ERANGE;
    *out = value;
    return 0;
}

int args_seconds_ms(const char *text, uint32_t *out_ms)
{
    double seconds;
    char *end;

    /* Digits or '.' first: strtod would also take "inf", "nan", "-1". */
    if (text == NULL || ((*text < '0' || *text > '9') && *text != '.'))
        return -EINVAL;
    seconds = strtod(text, &end);
    if (*end != '\0' || end == text)
        return -EINVAL;
    if (!(seconds * 1000.0 + 0.5 < (double)UINT32_MAX))
        return -ERANGE;
    *out_ms = (uint32_t)(seconds * 1000.0 + 0.5);
    return 0;
}

void args_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s --help)\n", prog);
    exit(ARGS_EXIT_USAGE);
}

/* HOST:PORT with a dot in HOST: nc_connect() looks such a name up when
 * it is no interface (netcore.h, "Host names"). */
static bool connect_name(const char *text)
{
    const char *colon = strchr(text, ':');

    return colon != NULL && strchr(colon + 1, ':') == NULL &&
           text[0] != '[' && strncmp(text, "unix:", 5) != 0 &&
           memchr(text, '.', (size_t)(colon - text)) != NULL;
}

void args_endpoint(const char *prog, const char *option, const char *text,
                   bool for_connect, nc_endpoint *ep)
{
    char why[256];
    nc_endpoint parsed;
    int err = nc_endpoint_parse(&parsed, text, why, sizeof why);

    if (for_connect && (err == -ENODEV || err == -ENAMETOOLONG) &&
        connect_name(text))
        return;   /* a host name: nc_connect() looks it up */
    if (err < 0)
        args_usage_error(prog, "%s '%s': %s", option, text, why);
    if (for_connect && parsed.kind == NC_EP_ANY)
        args_usage_error(prog, "%s '%s': cannot connect to all addresses; "
                         "name one (127.0.0.1:%u, say)", option, text,
                         (unsigned)parsed.port);
    if (ep != NULL)
        *ep = parsed;
}

void args_version(const char *prog)
{
    printf("%s (libnetcore %s)\n", prog, nc_version());
    exit(fflush(stdout) == 0 ? 0 : 1);
}

void args_bad_option(const char *prog, int c, int optopt_value,
                     char *const argv[], int optind_value)
{
    const char *text = optind_value > 0 ? argv[optind_value - 1] : "?";

    if (c == ':')
        args_usage_error(prog, "option '%s' needs a value", text);
    if (strncmp(text, "--", 2) != 0 && optopt_value > ' ' &&
        optopt_value < 0x7f)
        args_usage_error(prog, "unknown option '-%c'", optopt_value);
    args_usage_error(prog, "unknown option '%s'", text);
}
