/*
 * backend.c - choosing a loop's backend: the program's option, else the
 * NC_BACKEND environment variable (nc_backend_from_env), else io_uring
 * where it works and epoll otherwise. An explicit choice that cannot run
 * is an error; only the automatic one falls back.
 */
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *nc_backend_name(nc_backend backend)
{
    switch (backend) {
    case NC_BACKEND_AUTO: return "auto";
    case NC_BACKEND_EPOLL: return "epoll";
    case NC_BACKEND_IO_URING: return "io_uring";
    }
    return "unknown";
}

int nc_backend_from_env(nc_backend *out, char *errbuf, size_t errlen)
{
    if (!out)
        return -EINVAL;
    const char *v = getenv("NC_BACKEND");
    *out = NC_BACKEND_AUTO;
    if (!v || !*v || strcmp(v, "auto") == 0)
        return 0;
    if (strcmp(v, "epoll") == 0) {
        *out = NC_BACKEND_EPOLL;
        return 0;
    }
    if (strcmp(v, "io_uring") == 0) {
        *out = NC_BACKEND_IO_URING;
        return 0;
    }
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "the environment variable NC_BACKEND=%.64s "
                 "names no event backend: it may be epoll, io_uring, auto "
                 "or empty (the names are lower case)", v);
    return -EINVAL;
}

static int open_uring(nc_loop *loop, struct backend **out)
{
#ifdef NC_HAVE_URING
    return nc__uring_new(loop, out);
#else
    (void)loop;
    (void)out;
    return -ENOTSUP;   /* built without liburing */
#endif
}

int nc__backend_new(nc_loop *loop, const nc_loop_options *o,
                    struct backend **out)
{
    nc_backend want = o ? o->backend : NC_BACKEND_AUTO;
    if ((unsigned)want > NC_BACKEND_IO_URING)
        return -EINVAL;
    if (want == NC_BACKEND_AUTO) {
        int rc = nc_backend_from_env(&want, NULL, 0);
        if (rc < 0)
            return rc;
    }
    switch (want) {
    case NC_BACKEND_EPOLL:
        return nc__epoll_new(out);
    case NC_BACKEND_IO_URING:
        return open_uring(loop, out);
    default:
        break;
    }
    /* Automatic: io_uring unless it cannot run here. Running out of
     * memory or descriptors is not a reason to try epoll instead. */
    int rc = open_uring(loop, out);
    if (rc == 0 || rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE)
        return rc;
    return nc__epoll_new(out);
}

nc_backend nc_loop_backend(const nc_loop *loop)
{
    return loop ? loop->backend->ops->kind : NC_BACKEND_AUTO;
}
