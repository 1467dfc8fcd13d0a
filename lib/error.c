/*
 * error.c - the library's version and the names of errno values.
 *
 * The text comes from glibc's strerrordesc_np/strerrorname_np (glibc 2.32
 * and later): both return static strings, so unlike strerror() they are
 * thread-safe and never depend on the locale.
 */
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

const char *nc_version(void)
{
    return STR(NC_VERSION_MAJOR) "." STR(NC_VERSION_MINOR) "."
           STR(NC_VERSION_PATCH);
}

int nc__positive_errno(int err)
{
    if (err == INT_MIN)
        return -1;
    return err < 0 ? -err : err;
}

const char *nc_strerror(int err)
{
    int e = nc__positive_errno(err);
    const char *text;

    if (e == 0)
        return "Success";
    text = e > 0 ? strerrordesc_np(e) : NULL;
    return text ? text : "Unknown error";
}

const char *nc_errname(int err)
{
    int e = nc__positive_errno(err);
    const char *name;

    if (e == 0)
        return "0";
    name = e > 0 ? strerrorname_np(e) : NULL;
    return name ? name : "E?";
}

void nc__errbuf_set(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(buf, len, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
}
