/*
 * listen_socket.c - opening one listening socket: its options, the bind,
 * and, when the address is taken, what is there: the process holding it
 * (holder.c), or for a unix: path, whether it is a stale socket file (the
 * only thing ever removed), a live one, or not a socket at all.
 */
#include "listener.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Options every accepted TCP connection inherits from the listening
 * socket, so that no connection pays a system call for them. */
static int set_inherited(int fd, const nc_conn_options *o)
{
    int rc = 0;
    if (!o->no_delay_off)
        rc = nc__set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    return rc == 0 ? nc__set_keepalive(fd, o) : rc;
}

bool nc__is_unix_path(const nc_addr *a)
{
    return a->u.sa.sa_family == AF_UNIX && a->u.un.sun_path[0];
}

/* Say in the caller's errbuf which step failed on which address, and
 * why when there is more to say than the system's text (NULL: nothing). */
static int failed_because(const nc_listener_options *o, const char *step,
                          const nc_addr *a, int err, const char *why)
{
    char where[NC_ADDRSTRLEN];
    if (nc_addr_format(a, where, sizeof(where)) < 0)
        where[0] = '\0';
    nc__errbuf_set(o->errbuf, o->errbuf_len, "%s %s: %s%s%s", step, where,
                   nc_strerror(err), why ? "; " : "", why ? why : "");
    return err;
}

int nc__listen_failed(const nc_listener_options *o, const char *step,
                      const nc_addr *a, int err)
{
    return failed_because(o, step, a, err, NULL);
}

/* bind() found a taken: -EADDRINUSE, and errbuf says so with why (a
 * printf format). */
__attribute__((format(printf, 3, 4)))
static int taken(const nc_listener_options *o, const nc_addr *a,
                 const char *fmt, ...)
{
    char why[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return failed_because(o, "cannot bind", a, -EADDRINUSE, why);
}

/* "held by NAME (pid N)" for the process listening on a, or "" when
 * none can be seen (or nobody reads errbuf: /proc is not searched). */
static void holder_text(const nc_listener_options *o, const nc_addr *a,
                        char *buf, size_t len)
{
    char name[32];
    int pid = o->errbuf && o->errbuf_len
                  ? nc__socket_holder(a, name, sizeof(name)) : -ENOENT;
    buf[0] = '\0';
    if (pid > 0)
        snprintf(buf, len, "held by %s (pid %d)", name, pid);
}

/* Connect to the Unix socket file of a: 0 when a server is there (it
 * accepted, or its backlog is full), else the negative errno;
 * -ECONNREFUSED means nobody listens: the file is stale. */
static int probe_unix(const nc_addr *a)
{
    int fd = nc__socket_nb(AF_UNIX, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int rc = connect(fd, &a->u.sa, a->len) < 0 ? -errno : 0;
    close(fd);
    return rc == -EAGAIN ? 0 : rc;
}

static const char *not_a_socket(mode_t mode)
{
    if (S_ISREG(mode))
        return "that path is a regular file, not a socket, and is left "
               "alone: remove it or choose another path";
    if (S_ISLNK(mode))
        return "that path is a symbolic link, which is never followed or "
               "removed: remove it or choose another path";
    if (S_ISDIR(mode))
        return "that path is a directory: choose another path";
    return "that path is not a socket (a FIFO or a device), and is left "
           "alone: remove it or choose another path";
}

/* bind() found a's path taken. Only a socket file (not a link to one)
 * that nobody listens on is removed: then 0, and the caller binds again.
 * Anything else stays as it was: -EADDRINUSE, said in errbuf. */
static int reclaim_unix_path(const nc_listener_options *o, const nc_addr *a)
{
    const char *path = a->u.un.sun_path;
    struct stat st, now;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : taken(o, a, "that path cannot be "
                                           "examined: %s", strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return taken(o, a, "%s", not_a_socket(st.st_mode));
    int rc = probe_unix(a);
    if (rc == 0) {
        char held[64];
        holder_text(o, a, held, sizeof(held));
        return taken(o, a, "a server is listening on that socket%s%s%s: "
                     "stop it or choose another path", held[0] ? " (" : "",
                     held, held[0] ? ")" : "");
    }
    if (rc != -ECONNREFUSED)
        return taken(o, a, "a server may be listening on that socket "
                     "(connecting to it: %s), so it is left alone",
                     nc_strerror(rc));
    /* Stale. Removed only while it is still the file that refused. */
    if (lstat(path, &now) < 0)
        return errno == ENOENT ? 0 : taken(o, a, "that path cannot be "
                                           "examined: %s", strerror(errno));
    if (now.st_dev != st.st_dev || now.st_ino != st.st_ino)
        return taken(o, a, "that path changed while it was examined");
    if (unlink(path) < 0 && errno != ENOENT)
        return taken(o, a, "its stale socket file cannot be removed: %s",
                     strerror(errno));
    return 0;
}

/* Bind fd to a. On failure errbuf says why, and for an address in use,
 * what is there. */
static int bind_to(const nc_listener_options *o, int fd, const nc_addr *a)
{
    if (bind(fd, &a->u.sa, a->len) == 0)
        return 0;
    int rc = -errno;
    if (rc == -EADDRINUSE && nc__is_unix_path(a)) {
        rc = reclaim_unix_path(o, a);
        if (rc < 0)
            return rc;
        if (bind(fd, &a->u.sa, a->len) == 0)
            return 0;
        rc = -errno;
    }
    if (rc == -EADDRINUSE) {
        char held[64];
        holder_text(o, a, held, sizeof(held));
        if (held[0])
            return taken(o, a, "%s", held);
    }
    return nc__listen_failed(o, "cannot bind", a, rc);
}

/* share_after_bind: the kernel puts a socket in a reuseport group when
 * it listens, and a later bind with SO_REUSEPORT checks the flag each
 * bound socket has then, so setting it between bind and listen lets the
 * workers join while any other holder still made the bind fail. */
int nc__listen_socket(const nc_listener_options *o, const nc_addr *a,
                      bool v6only, bool share_after_bind, int *out)
{
    int family = a->u.sa.sa_family;
    int fd = nc__socket_nb(family, SOCK_STREAM);
    if (fd < 0)
        return nc__listen_failed(o, "cannot create a socket for", a, fd);
    int rc = 0;
    if (family != AF_UNIX && !o->reuseaddr_off)
        rc = nc__set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && o->reuseport)
        rc = nc__set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && family == AF_INET6)
        rc = nc__set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
    if (rc == 0 && family != AF_UNIX)
        rc = set_inherited(fd, &o->conn);
    if (rc == 0 && family != AF_UNIX && o->defer_accept_s)
        rc = nc__set_int_option(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
                                (int)o->defer_accept_s);
    if (rc < 0) {
        close(fd);
        return nc__listen_failed(o, "cannot set the socket options of", a, rc);
    }
    rc = bind_to(o, fd, a);
    if (rc < 0) {
        close(fd);
        return rc;     /* the path, if any, is not ours to remove */
    }
    if (share_after_bind) {
        rc = nc__set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1);
        if (rc < 0) {
            close(fd);
            return nc__listen_failed(o, "cannot set the socket options of", a, rc);
        }
    }
    if (listen(fd, o->backlog) < 0) {
        rc = -errno;
        close(fd);
        if (nc__is_unix_path(a))
            unlink(a->u.un.sun_path);   /* we created it */
        return nc__listen_failed(o, "cannot listen on", a, rc);
    }
    *out = fd;
    return 0;
}
