/* dnsworld.c - see dnsworld.h. */
#include "dnsworld.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char resolv_path[96], hosts_path[96];
static bool ready;

static bool write_file(const char *path, const char *text)
{
    /* In place: the bind mount follows the file, not the name. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok;
}

static const char *bind_over(const char *file, const char *target)
{
    static char why[160];
    if (mount(file, target, "none", MS_BIND, NULL) != 0) {
        snprintf(why, sizeof(why), "cannot bind-mount a file over %s: %s",
                 target, strerror(errno));
        return why;
    }
    return NULL;
}

static const char *loopback_up(void)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return "no socket for ioctl";
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    close(fd);
    return ok ? NULL : "cannot bring the namespace's loopback up";
}

const char *dnsworld_enter(void)
{
    static char why[160];
    const char *err;
    char nss[96];

    if (geteuid() != 0)
        return "not running as root";
    if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) {
        snprintf(why, sizeof(why), "unshare(CLONE_NEWNS|CLONE_NEWNET): %s",
                 strerror(errno));
        return why;
    }
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
        return "cannot make the mount namespace private";
    if ((err = loopback_up()) != NULL)
        return err;
    snprintf(dir, sizeof(dir), "/tmp/nc-dnsworld.XXXXXX");
    if (!mkdtemp(dir))
        return "cannot make a temporary directory";
    snprintf(resolv_path, sizeof(resolv_path), "%s/resolv.conf", dir);
    snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", dir);
    snprintf(nss, sizeof(nss), "%s/nsswitch.conf", dir);
    if (!write_file(resolv_path, "nameserver 127.0.0.1\n") ||
        !write_file(hosts_path, "127.0.0.1 localhost\n::1 localhost\n") ||
        !write_file(nss, "hosts: files dns\n"))
        return "cannot write the world's files";
    if ((err = bind_over(resolv_path, "/etc/resolv.conf")) != NULL ||
        (err = bind_over(hosts_path, "/etc/hosts")) != NULL ||
        (err = bind_over(nss, "/etc/nsswitch.conf")) != NULL)
        return err;
    /* The files stay bound; their directory goes when the process does
     * (the mount namespace with it). */
    unlink(nss);
    ready = true;
    return NULL;
}

bool dnsworld_ready(void)
{
    return ready;
}

void dnsworld_skip(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        fail_msg("the name tests cannot run with CI=true: %s", why);
    print_message("SKIP: %s (these tests need root, and mount and network "
                  "namespaces)\n", why);
    skip();
}

void dnsworld_resolv(const char *text)
{
    assert_true(write_file(resolv_path, text));
}

void dnsworld_hosts(const char *text)
{
    assert_true(write_file(hosts_path, text));
}

const char *dnsworld_hosts_path(void)
{
    return hosts_path;
}

static bool find_dnsmasq(char *out, size_t len)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin",
                                       "/sbin", "/usr/bin"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(out, len, "%s/dnsmasq", dirs[i]);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* dnsmasq is up when it answers a query over UDP (it may accept TCP
 * before its UDP socket is bound). One try: a query for "ready.", and up
 * to 100 ms for any answer. */
static bool answers_udp(const char *addr)
{
    static const unsigned char query[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
        5, 'r', 'e', 'a', 'd', 'y', 0, 0, 1, 0, 1
    };
    struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(53) };
    unsigned char reply[512];
    if (inet_pton(AF_INET, addr, &s4.sin_addr) != 1)
        return false;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 &&
              connect(fd, (struct sockaddr *)&s4, sizeof(s4)) == 0 &&
              send(fd, query, sizeof(query), 0) == (ssize_t)sizeof(query);
    if (ok) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ok = poll(&p, 1, 100) == 1 && recv(fd, reply, sizeof(reply), 0) >= 12;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

int dnsmasq_start(struct dnsmasq *d, const char *addr,
                  const char *const *records)
{
    char path[64], listen[80];
    const char *argv[64];
    size_t n = 0;

    d->pid = -1;
    if (!find_dnsmasq(path, sizeof(path)))
        return -ENOENT;
    snprintf(listen, sizeof(listen), "--listen-address=%s", addr);
    argv[n++] = path;
    argv[n++] = "--keep-in-foreground";
    argv[n++] = "--conf-file=/dev/null";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = "--no-poll";
    argv[n++] = "--bind-interfaces";
    argv[n++] = "--port=53";
    argv[n++] = "--pid-file=";
    argv[n++] = "--user=root";
    argv[n++] = listen;
    for (size_t i = 0; records && records[i] && n < 62; i++)
        argv[n++] = records[i];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execv(path, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    uint64_t deadline = now_ms() + 3000;
    while (!answers_udp(addr)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            d->pid = -1;
            return -ECHILD;
        }
        if (now_ms() >= deadline) {
            dnsmasq_stop(d);
            return -ETIMEDOUT;
        }
        /* Refused at once while nothing is bound: a pause between tries. */
        poll(NULL, 0, 2);
    }
    return 0;
}

void dnsmasq_stop(struct dnsmasq *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
    d->pid = -1;
}

int silent_server(const char *addr)
{
    struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(53) };
    if (inet_pton(AF_INET, addr, &s.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&s, sizeof(s)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* Header and question of the query, flagged as a SERVFAIL answer. */
static void *servfail_run(void *arg)
{
    struct servfail *s = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN },
                               { .fd = s->stop[0], .events = POLLIN } };
        unsigned char m[512];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        if (poll(p, 2, -1) < 0 || p[1].revents)
            return NULL;
        ssize_t n = recvfrom(s->fd, m, sizeof(m), 0,
                             (struct sockaddr *)&from, &fl);
        if (n < 12)
            continue;
        size_t at = 12;
        while (at < (size_t)n && m[at] != 0)
            at += 1u + m[at];
        at += 5;                       /* the root label, type, class */
        if (at > (size_t)n)
            continue;
        m[2] |= 0x80;                  /* an answer */
        m[3] = (unsigned char)((m[3] & 0x70) | 0x80 | 2);   /* RA, SERVFAIL */
        memset(m + 6, 0, 6);           /* no answer, authority, extra */
        sendto(s->fd, m, at, 0, (struct sockaddr *)&from, fl);
        s->answered++;
    }
}

int servfail_start(struct servfail *s, const char *addr)
{
    s->fd = silent_server(addr);
    s->thread = NULL;
    s->answered = 0;
    if (s->fd < 0)
        return s->fd;
    if (pipe2(s->stop, O_CLOEXEC) != 0) {
        close(s->fd);
        return -errno;
    }
    pthread_t *t = malloc(sizeof(*t));
    if (!t || pthread_create(t, NULL, servfail_run, s) != 0) {
        free(t);
        close(s->fd);
        close(s->stop[0]);
        close(s->stop[1]);
        return -EAGAIN;
    }
    s->thread = t;
    return 0;
}

void servfail_stop(struct servfail *s)
{
    if (!s->thread)
        return;
    if (write(s->stop[1], "x", 1) != 1)
        return;
    pthread_join(*(pthread_t *)s->thread, NULL);
    free(s->thread);
    s->thread = NULL;
    close(s->fd);
    close(s->stop[0]);
    close(s->stop[1]);
}
