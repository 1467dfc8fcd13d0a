/*
 * hosts.c - the hosts file, read once per loop and again when it changes
 * (see hosts.h). The format is hosts(5): an address, then a canonical
 * name and aliases, separated by blanks; '#' starts a comment. Lines
 * whose address inet_pton() does not read are skipped, as glibc and
 * c-ares skip them.
 */
#include "hosts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define HOSTS_PATH "/etc/hosts"

struct host_entry {
    nc_addr addr;
    char *names;           /* NUL-separated, ending with an empty one */
};

struct hosts {
    char path[256];
    struct stat st;        /* the file as it was read (st_ino 0: none) */
    uint64_t checked_ns;   /* the loop time it was last looked at */
    struct host_entry *e;
    size_t n, cap;
};

static void clear(struct hosts *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->e[i].names);
    h->n = 0;
}

static void add_line(struct hosts *h, char *line)
{
    char *save = NULL, *tok;
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    tok = strtok_r(line, " \t\r\n", &save);
    if (!tok)
        return;
    struct host_entry e;
    memset(&e, 0, sizeof(e));
    if (inet_pton(AF_INET, tok, &e.addr.u.in4.sin_addr) == 1) {
        e.addr.u.in4.sin_family = AF_INET;
        e.addr.len = sizeof(e.addr.u.in4);
    } else if (inet_pton(AF_INET6, tok, &e.addr.u.in6.sin6_addr) == 1) {
        e.addr.u.in6.sin6_family = AF_INET6;
        e.addr.len = sizeof(e.addr.u.in6);
    } else {
        return;
    }
    /* The rest of the line: the names, NUL-separated. */
    size_t len = 0;
    char *names = NULL;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
        size_t k = strlen(tok);
        char *more = realloc(names, len + k + 2);
        if (!more) {
            free(names);
            return;
        }
        names = more;
        memcpy(names + len, tok, k + 1);
        len += k + 1;
        names[len] = '\0';
    }
    if (!names)
        return;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct host_entry *more = realloc(h->e, cap * sizeof(*more));
        if (!more) {
            free(names);
            return;
        }
        h->e = more;
        h->cap = cap;
    }
    e.names = names;
    h->e[h->n++] = e;
}

/* Read the file again if it is not the one read last. */
static void refresh(struct hosts *h, uint64_t now_ns)
{
    struct stat st;
    if (h->checked_ns == now_ns && now_ns)
        return;
    h->checked_ns = now_ns;
    if (stat(h->path, &st) != 0)
        memset(&st, 0, sizeof(st));
    if (st.st_ino == h->st.st_ino && st.st_dev == h->st.st_dev &&
        st.st_size == h->st.st_size &&
        st.st_mtim.tv_sec == h->st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == h->st.st_mtim.tv_nsec)
        return;
    clear(h);
    h->st = st;
    FILE *f = st.st_ino ? fopen(h->path, "re") : NULL;
    char line[1024];
    while (f && fgets(line, sizeof(line), f))
        add_line(h, line);
    if (f)
        fclose(f);
}

size_t nc__hosts_find(struct hosts **hp, uint64_t now_ns, const char *name,
                      int family, nc_addr *out, size_t max,
                      const char **path)
{
    struct hosts *h = *hp;
    if (!h) {
        h = calloc(1, sizeof(*h));
        if (!h)
            return 0;
        const char *env = getenv("CARES_HOSTS");
        snprintf(h->path, sizeof(h->path), "%s", env ? env : HOSTS_PATH);
        *hp = h;
    }
    *path = h->path;
    refresh(h, now_ns);
    size_t found = 0;
    for (size_t i = 0; i < h->n && found < max; i++) {
        if (h->e[i].addr.u.sa.sa_family != family)
            continue;
        for (const char *nm = h->e[i].names; *nm; nm += strlen(nm) + 1) {
            if (strcasecmp(nm, name) == 0) {
                out[found++] = h->e[i].addr;
                break;
            }
        }
    }
    return found;
}

void nc__hosts_free(struct hosts *h)
{
    if (!h)
        return;
    clear(h);
    free(h->e);
    free(h);
}
