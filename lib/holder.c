/*
 * holder.c - which process holds a listening socket, for the message of
 * a bind that found its address taken: the socket's inode from
 * /proc/net/tcp, tcp6 or unix, then the process with a descriptor that
 * links to socket:[inode], and its name from /proc/PID/comm.
 *
 * Best effort: another user's descriptors are not readable without
 * privilege, and a socket of another network namespace (a container) is
 * not listed at all; then there is no name. Only a failed bind calls it,
 * never a hot path.
 */
#include "listener.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INODES 8
#define TCP_LISTEN_STATE 0x0A
#define UNIX_LISTENING 0x00010000u   /* __SO_ACCEPTCON in /proc/net/unix */

struct inodes {
    unsigned long v[MAX_INODES];
    size_t n;
};

static void add_inode(struct inodes *s, unsigned long ino)
{
    if (ino != 0 && s->n < MAX_INODES)
        s->v[s->n++] = ino;
}

/* An IP address as 16 bytes, IPv4 as ::ffff:a.b.c.d. */
static void ip16(const nc_addr *a, unsigned char out[16])
{
    if (a->u.sa.sa_family == AF_INET6) {
        memcpy(out, &a->u.in6.sin6_addr, 16);
        return;
    }
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &a->u.in4.sin_addr, 4);
}

static bool unspecified(const unsigned char a[16])
{
    static const unsigned char mapped_any[16] = {[10] = 0xff, [11] = 0xff};
    static const unsigned char any[16];
    return memcmp(a, any, 16) == 0 || memcmp(a, mapped_any, 16) == 0;
}

/* /proc/net/tcp prints each 32-bit word of the address as the number it
 * is in memory: read back as a number and stored, it restores the bytes. */
static bool proc_ip(const char *hex, bool v6, unsigned char out[16])
{
    size_t words = v6 ? 4 : 1;
    uint32_t w[4];
    if (strlen(hex) != words * 8)
        return false;
    for (size_t i = 0; i < words; i++) {
        char part[9];
        memcpy(part, hex + i * 8, 8);
        part[8] = '\0';
        w[i] = (uint32_t)strtoul(part, NULL, 16);
    }
    if (v6) {
        memcpy(out, w, 16);
    } else {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, w, 4);
    }
    return true;
}

/* Listening sockets of one /proc/net/tcp{,6} table whose address overlaps
 * want's (the same address, or either one the wildcard) on its port. */
static void tcp_listeners(const char *path, bool v6, const nc_addr *want,
                          struct inodes *out)
{
    FILE *f = fopen(path, "re");
    char line[512];
    unsigned char mine[16];
    ip16(want, mine);
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char hex[33];
        unsigned port, state;
        unsigned long ino;
        unsigned char ip[16];
        if (sscanf(line, " %*u: %32[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u "
                   "%*u %lu", hex, &port, &state, &ino) != 4)
            continue;     /* the header line */
        if (state != TCP_LISTEN_STATE || port != nc_addr_port(want) ||
            !proc_ip(hex, v6, ip))
            continue;
        if (unspecified(ip) || unspecified(mine) || memcmp(ip, mine, 16) == 0)
            add_inode(out, ino);
    }
    fclose(f);
}

/* The listening Unix socket bound to path. */
static void unix_listeners(const char *path, struct inodes *out)
{
    FILE *f = fopen("/proc/net/unix", "re");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        unsigned flags;
        unsigned long ino;
        int end = 0;
        if (sscanf(line, "%*s %*x %*x %x %*x %*x %lu %n", &flags, &ino,
                   &end) != 2 || end == 0)
            continue;
        char *name = line + end;
        name[strcspn(name, "\n")] = '\0';
        if ((flags & UNIX_LISTENING) && strcmp(name, path) == 0)
            add_inode(out, ino);
    }
    fclose(f);
}

static bool holds(int fd_dir, const char *entry, const struct inodes *s)
{
    char link[64];
    unsigned long ino;
    ssize_t n = readlinkat(fd_dir, entry, link, sizeof(link) - 1);
    if (n <= 0)
        return false;
    link[n] = '\0';
    if (sscanf(link, "socket:[%lu]", &ino) != 1)
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == ino)
            return true;
    return false;
}

/* Whether process pid (a /proc entry) has a descriptor for one of s. */
static bool process_holds(const char *pid, const struct inodes *s)
{
    char path[sizeof("/proc//fd") + 256];
    snprintf(path, sizeof(path), "/proc/%s/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return false;     /* another user's, or gone */
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)))
        found = e->d_name[0] != '.' && holds(dirfd(d), e->d_name, s);
    closedir(d);
    return found;
}

static int find_process(const struct inodes *s)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -ENOENT;
    int pid = -ENOENT;
    struct dirent *e;
    while (pid < 0 && (e = readdir(d)))
        if (isdigit((unsigned char)e->d_name[0]) &&
            process_holds(e->d_name, s))
            pid = atoi(e->d_name);
    closedir(d);
    return pid;
}

static void process_name(int pid, char *name, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, name, len - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0) {
        snprintf(name, len, "?");
        return;
    }
    name[n] = '\0';
    name[strcspn(name, "\n")] = '\0';
}

int nc__socket_holder(const nc_addr *a, char *name, size_t len)
{
    struct inodes s = { .n = 0 };
    int family = a->u.sa.sa_family;
    if (len == 0)
        return -EINVAL;
    if (family == AF_UNIX) {
        if (!a->u.un.sun_path[0])
            return -ENOENT;     /* an abstract name: not looked up */
        unix_listeners(a->u.un.sun_path, &s);
    } else if (family == AF_INET || family == AF_INET6) {
        tcp_listeners("/proc/net/tcp", false, a, &s);
        tcp_listeners("/proc/net/tcp6", true, a, &s);
    }
    if (s.n == 0)
        return -ENOENT;
    int pid = find_process(&s);
    if (pid > 0)
        process_name(pid, name, len);
    return pid;
}
