/*
 * tls_load.h - the harness and the load client shared by
 * bench/bench_tls_*.c: full TLS 1.3 handshakes and bulk throughput
 * through a TLS echo server, one per library.
 *
 * Header-only (every function static inline), like echo_load.h, whose
 * socket and clock helpers it reuses.
 *
 * A bench_tls_<lib> program fills a tls_server_ops and calls
 * tls_bench_main(). By default it forks: the child runs the library's
 * echo server on 127.0.0.1 (port chosen by the kernel), pinned to core 1;
 * the parent is the load client, pinned to core 0 (no pinning, with a note,
 * where cores 0 and 1 are not both allowed). The client is the same
 * code for every server: plain OpenSSL on non-blocking sockets and one
 * epoll loop. Two jobs:
 *   handshakes: N connections (default 4000), at most C at a time (default
 *               8; 1 is one after another). Each is a full TLS 1.3 handshake
 *               (a client context without a session cache, SSL_OP_NO_TICKET,
 *               no session ever offered: every handshake is checked not to
 *               be a resumption; the server's certificate is verified
 *               against ca.pem for 127.0.0.1), one 64-byte echo (every
 *               byte checked), then the client's close_notify and FIN,
 *               and the client reads until the server's FIN. Untimed
 *               warm-up: 20 such connections.
 *               handshake_rate: connections completed per second;
 *               handshake_cpu: the server process's CPU time (user +
 *               system, clock_getcpuclockid: nanosecond resolution) per
 *               connection, in microseconds.
 *   bulk:       one connection (handshake untimed) streams S MiB (default
 *               256) through the echo in 16 KiB SSL_writes while reading
 *               the echo back; every byte is checked against a pattern
 *               with a prime period. bulk_rate: echoed MiB per second;
 *               bulk_cpu: the server's CPU time per MiB, in microseconds.
 * Each job stops at a 30 s wall-clock cap and reports what it did (with a
 * note on stderr). The client offers TLS 1.3 only, OpenSSL's default
 * ciphers and groups: what is negotiated is printed once per process on
 * stderr, by the server (protocol, cipher) and by the client (key
 * exchange group, signature). With OpenSSL 3.0 and the ECDSA P-256
 * certificate of tests/tls-certs.sh that is TLSv1.3,
 * TLS_AES_256_GCM_SHA384, X25519, ECDSA with SHA256 for both servers.
 * Output (stdout, bench/run.sh's format), after the server exited:
 *   tls handshake_rate <lib> <value> hs/s
 *   tls handshake_cpu <lib> <value> us/hs
 *   tls bulk_rate <lib> <value> MiB/s
 *   tls bulk_cpu <lib> <value> us/MiB
 * and on stderr the client's own CPU time per handshake and per MiB,
 * which tells whether the client (one core) bounds the rates.
 *
 * Usage:
 *   bench_tls_<lib> [handshakes [concurrency [bulk_MiB]]]
 *       defaults from $NC_BENCH_TLS_HANDSHAKES, $NC_BENCH_TLS_CONCURRENCY
 *       and $NC_BENCH_TLS_MIB, or 4000, 8 and 256 (bench/run.sh passes no
 *       arguments)
 *   bench_tls_<lib> --serve
 *       the server alone, in the foreground (for callgrind, strace):
 *       prints "listening on 127.0.0.1:PORT" on stdout, serves until
 *       SIGTERM or SIGINT, at most 1800 s (alarm).
 *   bench_tls_<lib> --load PORT handshakes N [C] | --load PORT bulk MiB
 *       the client alone against a server started with --serve (C
 *       defaults to 1 here); prints what it did on stderr.
 * The certificate, its key and the CA are server.pem, server.key and
 * ca.pem in $NC_BENCH_TLS_CERTS, by default the directory tls-certs next
 * to the program (the Makefile makes it with tests/tls-certs.sh).
 *
 * Bounds: at most 1000 connections at a time (C), so a process holds
 * fewer than 1100 descriptors; every wait is bounded (connect by
 * SO_SNDTIMEO, the jobs by the cap, the server's start and exit by 10 s,
 * after which the client kills it by its PID).
 */
#ifndef TLS_LOAD_H
#define TLS_LOAD_H

#include "echo_load.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define TLS_MSG_LEN 64
#define TLS_CHUNK 16384            /* the client's SSL_write and SSL_read */
#define TLS_WARMUP 20
#define TLS_MAX_CONNS 1000
#define TLS_SERVER_LIFETIME_S 1800
#define TLS_SERVER_CPU 1
#define TLS_CLIENT_CPU 0
/* The same prime period as the echo stream: a byte echoed at the wrong
 * offset is noticed. */
#define TLS_PERIOD ECHO_PERIOD
#ifndef TLS_CAP_NS
#define TLS_CAP_NS (30ull * 1000000000u)
#endif

/* ---- the server side's contract -------------------------------------- */

/* What a server gets. It listens on 127.0.0.1 port 0 with cert_file and
 * key_file (TLS 1.2 and 1.3 accepted, like libnetcore's server
 * contexts), calls tls_announce() with its port, echoes every byte it
 * receives, answers the client's close_notify with its own and closes,
 * and returns (0, or a negative errno) once stop_fd is readable: a pipe
 * whose writer closed, or a signalfd. It returns without announcing when
 * it cannot start. */
typedef struct tls_server_cfg {
    const char *cert_file, *key_file;
    int stop_fd;
    int ready_fd;          /* the port goes here; -1: printed on stdout */
} tls_server_cfg;

typedef struct tls_server_ops {
    const char *lib;
    int (*serve)(const tls_server_cfg *cfg);
} tls_server_ops;

static inline void tls_announce(const tls_server_cfg *cfg, int port)
{
    if (cfg->ready_fd < 0) {
        printf("listening on 127.0.0.1:%d\n", port);
        fflush(stdout);
    } else if (write(cfg->ready_fd, &port, sizeof port) != sizeof port) {
        fprintf(stderr, "bench_tls: cannot announce the port: %s\n",
                strerror(errno));
    }
}

/* The server's half of "what was negotiated", printed once. */
static inline void tls_server_says(const char *lib, const char *protocol,
                                   const char *cipher)
{
    static bool said;
    if (said)
        return;
    said = true;
    fprintf(stderr, "bench_tls (%s server): %s, %s\n", lib, protocol, cipher);
}

/* ---- small helpers ---------------------------------------------------- */

static inline int tls_fail(const char *lib, const char *what, int err)
{
    int e = err < 0 ? -err : err;
    const char *why = strerror(e);
    if (e == EPIPE)
        why = "the server closed the connection";
    else if (e == EBADMSG)
        why = "an echoed byte differs from what was sent";
    else if (e == EPROTO)
        why = "a TLS failure or a resumed session";
    fprintf(stderr, "bench_tls (%s): %s: %s\n", lib, what, why);
    unsigned long ssl_err;
    while ((ssl_err = ERR_get_error()) != 0) {
        char text[256];
        ERR_error_string_n(ssl_err, text, sizeof text);
        fprintf(stderr, "  %s\n", text);
    }
    return -e;
}

/* Pin the calling process to cpu when it and the other core of the pair
 * are both allowed; say so once otherwise. */
static inline void tls_pin(int cpu)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 &&
        CPU_ISSET(TLS_SERVER_CPU, &allowed) &&
        CPU_ISSET(TLS_CLIENT_CPU, &allowed)) {
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) == 0)
            return;
    }
    if (cpu == TLS_CLIENT_CPU)
        fprintf(stderr, "bench_tls: cores %d and %d are not both usable: "
                "client and server are not pinned\n", TLS_CLIENT_CPU,
                TLS_SERVER_CPU);
}

/* The directory of the certificates, into buf. */
static inline int tls_cert_dir(char *buf, size_t len)
{
    const char *env = getenv("NC_BENCH_TLS_CERTS");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return 0;
    }
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0 || (size_t)n >= len - 1)
        return -ENAMETOOLONG;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash || (size_t)(slash - buf) + sizeof "/tls-certs" > len)
        return -ENAMETOOLONG;
    strcpy(slash, "/tls-certs");
    return 0;
}

typedef struct tls_files {
    char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
} tls_files;

static inline int tls_files_find(tls_files *f)
{
    char dir[PATH_MAX - 16];
    if (tls_cert_dir(dir, sizeof dir) < 0) {
        fprintf(stderr, "bench_tls: cannot find the certificate directory\n");
        return -1;
    }
    snprintf(f->cert, sizeof f->cert, "%s/server.pem", dir);
    snprintf(f->key, sizeof f->key, "%s/server.key", dir);
    snprintf(f->ca, sizeof f->ca, "%s/ca.pem", dir);
    if (access(f->cert, R_OK) < 0 || access(f->key, R_OK) < 0 ||
        access(f->ca, R_OK) < 0) {
        fprintf(stderr, "bench_tls: no server.pem, server.key and ca.pem in "
                "%s: make them with bash tests/tls-certs.sh %s (make bench "
                "does), or set NC_BENCH_TLS_CERTS\n", dir, dir);
        return -1;
    }
    return 0;
}

/* ---- the load client ---------------------------------------------------- */

typedef struct tls_client {
    const char *lib;
    SSL_CTX *ctx;
    int port;
    uint64_t seq;          /* messages started, for their contents */
    bool said;             /* the negotiated parameters were printed */
} tls_client;

/* A client context: TLS 1.3 only, default ciphers and groups, the
 * server's certificate verified against ca, no session cache and no
 * tickets, so that every handshake is a full one. */
static inline SSL_CTX *tls_client_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* Fewer reads for the client; the servers are not affected. */
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

static inline SSL *tls_client_ssl(tls_client *cl, int fd)
{
    SSL *ssl = SSL_new(cl->ctx);
    if (!ssl)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

/* After a handshake: a full one, verified; say what was negotiated once. */
static inline int tls_client_check(tls_client *cl, SSL *ssl)
{
    if (SSL_session_reused(ssl) || SSL_get_verify_result(ssl) != X509_V_OK)
        return -EPROTO;
    if (!cl->said) {
        int group = SSL_get_negotiated_group(ssl), type = 0, hash = 0;
        SSL_get_peer_signature_type_nid(ssl, &type);
        SSL_get_peer_signature_nid(ssl, &hash);
        fprintf(stderr, "bench_tls (%s client): %s, %s, %s, %s with %s\n",
                cl->lib, SSL_get_version(ssl), SSL_get_cipher_name(ssl),
                group ? OBJ_nid2sn(group) : "?",
                type == EVP_PKEY_EC ? "ECDSA" : type ? OBJ_nid2sn(type) : "?",
                hash ? OBJ_nid2sn(hash) : "?");
        cl->said = true;
    }
    return 0;
}

/* What an SSL call that returned r waits for: EPOLLIN, EPOLLOUT, or a
 * negative errno (-EPIPE for the server's close_notify, -EPROTO for a TLS
 * failure). */
static inline int tls_want(SSL *ssl, int r)
{
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return EPOLLIN;
    case SSL_ERROR_WANT_WRITE:
        return EPOLLOUT;
    case SSL_ERROR_ZERO_RETURN:
        return -EPIPE;
    case SSL_ERROR_SYSCALL:
        return errno ? -errno : -EPIPE;
    default:
        return -EPROTO;
    }
}

/* One connection of the handshake job. */
enum { HS_HANDSHAKE, HS_WRITE, HS_READ, HS_SHUTDOWN, HS_DRAIN };

typedef struct tls_hs_conn {
    int fd;
    SSL *ssl;
    int phase;
    uint32_t events;       /* registered with epoll */
    uint64_t seq;
    size_t got;
    unsigned char out[TLS_MSG_LEN], in[TLS_MSG_LEN];
} tls_hs_conn;

static inline void tls_hs_drop(tls_hs_conn *c)
{
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

static inline int tls_hs_interest(int ep, tls_hs_conn *c, uint32_t idx,
                                  uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = idx};
    if (c->events == events)
        return 0;
    c->events = events;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

/* Take connection idx as far as it goes without waiting. Returns 0 when
 * it waits (interest updated), 1 when it is done and closed, or a
 * negative errno. */
static inline int tls_hs_step(tls_client *cl, int ep, tls_hs_conn *c,
                              uint32_t idx)
{
    for (;;) {
        int r, want;
        ERR_clear_error();
        errno = 0;
        switch (c->phase) {
        case HS_HANDSHAKE:
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                if ((want = tls_client_check(cl, c->ssl)) < 0)
                    return want;
                c->phase = HS_WRITE;
                continue;
            }
            break;
        case HS_WRITE:
            r = SSL_write(c->ssl, c->out, TLS_MSG_LEN);
            if (r == TLS_MSG_LEN) {
                c->phase = HS_READ;
                continue;
            }
            break;
        case HS_READ:
            r = SSL_read(c->ssl, c->in + c->got, (int)(TLS_MSG_LEN - c->got));
            if (r > 0) {
                c->got += (size_t)r;
                if (c->got < TLS_MSG_LEN)
                    continue;
                if (memcmp(c->in, c->out, TLS_MSG_LEN) != 0)
                    return -EBADMSG;
                c->phase = HS_SHUTDOWN;
                continue;
            }
            break;
        case HS_SHUTDOWN:
            /* close_notify, then FIN; the server answers with its own
             * close_notify and FIN, which the client reads and drops. */
            r = SSL_shutdown(c->ssl);
            if (r >= 0) {
                if (shutdown(c->fd, SHUT_WR) < 0)
                    return -errno;
                c->phase = HS_DRAIN;
                continue;
            }
            break;
        default: {   /* HS_DRAIN */
            char buf[512];
            ssize_t n = read(c->fd, buf, sizeof buf);
            if (n > 0)
                continue;
            if (n == 0) {
                tls_hs_drop(c);
                return 1;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            return tls_hs_interest(ep, c, idx, EPOLLIN);
        }
        }
        want = tls_want(c->ssl, r);
        if (want < 0)
            return want;
        return tls_hs_interest(ep, c, idx, (uint32_t)want);
    }
}

/* Open connection idx and send its ClientHello. */
static inline int tls_hs_start(tls_client *cl, int ep, tls_hs_conn *c,
                               uint32_t idx)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};
    memset(c, 0, sizeof *c);
    c->fd = echo_connect(cl->port);
    if (c->fd < 0)
        return c->fd;
    c->ssl = tls_client_ssl(cl, c->fd);
    if (!c->ssl || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        int err = c->ssl ? -errno : -ENOMEM;
        tls_hs_drop(c);
        return err;
    }
    c->events = EPOLLIN;
    c->seq = ++cl->seq;
    memcpy(c->out, &c->seq, sizeof c->seq);
    for (size_t i = sizeof c->seq; i < TLS_MSG_LEN; i++)
        c->out[i] = (unsigned char)(idx * 131u + c->seq * 7u + i);
    c->phase = HS_HANDSHAKE;
    return tls_hs_step(cl, ep, c, idx);
}

/* target connections, at most nconns at a time, until deadline. Adds the
 * completed ones to *done. */
static inline int tls_hs_run(tls_client *cl, uint32_t nconns, uint64_t target,
                             uint64_t deadline, uint64_t *done)
{
    tls_hs_conn *conns = calloc(nconns, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    uint64_t issued = 0, finished = 0;
    int err = 0;
    if (!conns || ep < 0) {
        err = conns ? -errno : -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < nconns; i++)
        conns[i].fd = -1;
    for (uint32_t i = 0; i < nconns && issued < target; i++, issued++) {
        if ((err = tls_hs_start(cl, ep, &conns[i], i)) < 0)
            goto out;
        if (err == 1) {            /* cannot happen: the server speaks */
            err = -EPROTO;
            goto out;
        }
    }
    while (finished < target) {
        struct epoll_event evs[256];
        int ms = echo_wait_ms(deadline);
        if (ms < 0)
            break;
        int k = epoll_wait(ep, evs, 256, ms);
        if (k < 0 && errno != EINTR) {
            err = -errno;
            goto out;
        }
        for (int e = 0; e < k; e++) {
            uint32_t idx = evs[e].data.u32;
            tls_hs_conn *c = &conns[idx];
            if (c->fd < 0)
                continue;
            err = tls_hs_step(cl, ep, c, idx);
            while (err == 1) {     /* done: the next one takes its place */
                finished++;
                err = 0;
                if (issued < target) {
                    issued++;
                    err = tls_hs_start(cl, ep, c, idx);
                }
            }
            if (err < 0)
                goto out;
        }
    }
    err = 0;
out:
    for (uint32_t i = 0; conns && i < nconns; i++)
        if (conns[i].fd >= 0)
            tls_hs_drop(&conns[i]);
    if (ep >= 0)
        close(ep);
    free(conns);
    *done += finished;
    return err;
}

/* What a job measured: the rate, and the server's and the client's CPU
 * time per unit (handshake or MiB), in microseconds. */
typedef struct tls_result {
    double rate, server_us, client_us;
} tls_result;

/* The handshake job; without measure_cpu (--load) no server figure. */
static inline int tls_job_handshakes(tls_client *cl, uint32_t nconns,
                                     uint64_t n, clockid_t server_cpu,
                                     bool measure_cpu, tls_result *res)
{
    uint64_t warm = 0, done = 0;
    int err = tls_hs_run(cl, nconns, TLS_WARMUP,
                         echo_now_ns() + ECHO_SETUP_NS, &warm);
    if (err == 0 && warm < TLS_WARMUP)
        err = -ETIMEDOUT;
    if (err < 0)
        return tls_fail(cl->lib, "handshake warm-up", err);
    uint64_t c0 = measure_cpu ? echo_cpu_ns(server_cpu) : 0;
    uint64_t k0 = echo_cpu_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = echo_now_ns();
    err = tls_hs_run(cl, nconns, n, t0 + TLS_CAP_NS, &done);
    uint64_t t1 = echo_now_ns(), k1 = echo_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t c1 = measure_cpu ? echo_cpu_ns(server_cpu) : 0;
    if (err < 0)
        return tls_fail(cl->lib, "handshakes", err);
    res->rate = (double)done * 1e9 / (double)(t1 - t0);
    res->server_us = done ? (double)(c1 - c0) / 1000.0 / (double)done : 0;
    res->client_us = done ? (double)(k1 - k0) / 1000.0 / (double)done : 0;
    if (done < n)
        fprintf(stderr, "bench_tls (%s): handshakes: %.0f s cap reached "
                "after %llu of %llu\n", cl->lib, (double)TLS_CAP_NS / 1e9,
                (unsigned long long)done, (unsigned long long)n);
    return 0;
}

/* Wait until fd is ready for what ssl wants after r, at most until
 * deadline. 0, or a negative errno. */
static inline int tls_wait(SSL *ssl, int fd, int r, uint64_t deadline)
{
    int want = tls_want(ssl, r);
    if (want < 0)
        return want;
    struct pollfd p = {.fd = fd, .events = want == EPOLLIN ? POLLIN : POLLOUT};
    int ms = echo_wait_ms(deadline);
    if (ms < 0)
        return -ETIMEDOUT;
    if (poll(&p, 1, ms) < 0 && errno != EINTR)
        return -errno;
    return 0;
}

/* Stream total bytes through the echo on ssl, checking each. */
static inline int tls_stream(SSL *ssl, int fd, const unsigned char *pat,
                             unsigned char *in, uint64_t total,
                             uint64_t deadline, uint64_t *received)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};
    uint32_t events = ev.events;
    uint64_t sent = 0, recvd = 0;
    int err = 0;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        err = -errno;
        goto out;
    }
    while (recvd < total) {
        int ms = echo_wait_ms(deadline);
        if (ms < 0)
            break;
        int k = epoll_wait(ep, &ev, 1, ms);
        if (k < 0 && errno != EINTR) {
            err = -errno;
            goto out;
        }
        /* Write until the socket is full, then read until OpenSSL needs
         * more bytes: whatever woke us, nothing is left undone. */
        bool blocked = false;
        while (sent < total && !blocked) {
            uint64_t left = total - sent;
            int len = left < TLS_CHUNK ? (int)left : TLS_CHUNK;
            ERR_clear_error();
            /* A retry after WANT_WRITE passes the same pointer and length:
             * sent has not moved. */
            int r = SSL_write(ssl, pat + sent % TLS_PERIOD, len);
            if (r > 0) {
                sent += (uint64_t)r;
                continue;
            }
            int want = tls_want(ssl, r);
            if (want < 0) {
                err = want;
                goto out;
            }
            blocked = true;
        }
        for (;;) {
            ERR_clear_error();
            int r = SSL_read(ssl, in, TLS_CHUNK);
            if (r > 0) {
                if ((uint64_t)r > sent - recvd) {
                    err = -EPROTO;
                    goto out;
                }
                if (memcmp(in, pat + recvd % TLS_PERIOD, (size_t)r) != 0) {
                    err = -EBADMSG;
                    goto out;
                }
                recvd += (uint64_t)r;
                continue;
            }
            int want = tls_want(ssl, r);
            if (want < 0) {
                err = want;
                goto out;
            }
            break;
        }
        uint32_t want_events = EPOLLIN | (sent < total ? EPOLLOUT : 0u);
        if (want_events != events) {
            ev.events = events = want_events;
            if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) {
                err = -errno;
                goto out;
            }
        }
    }
out:
    if (ep >= 0)
        close(ep);
    *received = recvd;
    return err;
}

/* The bulk job. */
static inline int tls_job_bulk(tls_client *cl, uint64_t total,
                               clockid_t server_cpu, bool measure_cpu,
                               tls_result *res)
{
    /* Two periods, so that any window of TLS_CHUNK bytes is contiguous. */
    unsigned char *pat = malloc(2 * TLS_PERIOD);
    unsigned char *in = malloc(TLS_CHUNK);
    SSL *ssl = NULL;
    uint64_t recvd = 0, setup = echo_now_ns() + ECHO_SETUP_NS;
    int fd = -1, err = 0, r;
    if (!pat || !in) {
        err = tls_fail(cl->lib, "bulk setup", ENOMEM);
        goto out;
    }
    for (uint32_t i = 0; i < 2 * TLS_PERIOD; i++)
        pat[i] = echo_pattern_byte(i % TLS_PERIOD);
    if ((fd = echo_connect(cl->port)) < 0) {
        err = tls_fail(cl->lib, "connect to the server", fd);
        goto out;
    }
    if (!(ssl = tls_client_ssl(cl, fd))) {
        err = tls_fail(cl->lib, "bulk setup", ENOMEM);
        goto out;
    }
    while (ERR_clear_error(), (r = SSL_do_handshake(ssl)) != 1) {
        if ((err = tls_wait(ssl, fd, r, setup)) < 0) {
            err = tls_fail(cl->lib, "bulk handshake", err);
            goto out;
        }
    }
    if ((err = tls_client_check(cl, ssl)) < 0) {
        err = tls_fail(cl->lib, "bulk handshake", err);
        goto out;
    }
    uint64_t c0 = measure_cpu ? echo_cpu_ns(server_cpu) : 0;
    uint64_t k0 = echo_cpu_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = echo_now_ns();
    err = tls_stream(ssl, fd, pat, in, total, t0 + TLS_CAP_NS, &recvd);
    uint64_t t1 = echo_now_ns(), k1 = echo_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t c1 = measure_cpu ? echo_cpu_ns(server_cpu) : 0;
    if (err < 0) {
        err = tls_fail(cl->lib, "bulk", err);
        goto out;
    }
    double mib = (double)recvd / (1024.0 * 1024.0);
    res->rate = mib * 1e9 / (double)(t1 - t0);
    res->server_us = mib > 0 ? (double)(c1 - c0) / 1000.0 / mib : 0;
    res->client_us = mib > 0 ? (double)(k1 - k0) / 1000.0 / mib : 0;
    if (recvd < total)
        fprintf(stderr, "bench_tls (%s): bulk: %.0f s cap reached after "
                "%llu of %llu bytes\n", cl->lib, (double)TLS_CAP_NS / 1e9,
                (unsigned long long)recvd, (unsigned long long)total);
    /* The same orderly end as the handshake job, bounded. */
    setup = echo_now_ns() + ECHO_SETUP_NS;
    while (ERR_clear_error(), (r = SSL_shutdown(ssl)) < 0)
        if (tls_wait(ssl, fd, r, setup) < 0)
            break;
    if (shutdown(fd, SHUT_WR) == 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[512];
        while (echo_wait_ms(setup) >= 0 &&
               poll(&p, 1, echo_wait_ms(setup)) > 0 &&
               read(fd, buf, sizeof buf) > 0)
            continue;
    }
out:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    free(in);
    free(pat);
    return err;
}

/* ---- the harness ----------------------------------------------------- */

/* Wait at most 10 s for the child's port on fd. */
static inline int tls_read_port(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int port = 0;
    if (poll(&p, 1, (int)(ECHO_SETUP_NS / 1000000u)) <= 0)
        return -ETIMEDOUT;
    ssize_t n = read(fd, &port, sizeof port);
    return n == sizeof port && port > 0 ? port : -EPIPE;
}

/* Wait at most 10 s for pid to exit; kill it (by its PID) after that.
 * Returns its exit status, or -1. */
static inline int tls_reap(const char *lib, pid_t pid)
{
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w < 0)
            return -1;
        usleep(10000);
    }
    fprintf(stderr, "bench_tls (%s): the server did not stop within 10 s; "
            "killing it\n", lib);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* The server alone (--serve): stops on SIGTERM or SIGINT. */
static inline int tls_serve_alone(const tls_server_ops *ops,
                                  const tls_files *f)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return 1;
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        tls_fail(ops->lib, "signalfd", errno);
        return 1;
    }
    alarm(TLS_SERVER_LIFETIME_S);
    tls_server_cfg cfg = {f->cert, f->key, sfd, -1};
    int rc = ops->serve(&cfg);
    close(sfd);
    if (rc < 0) {
        tls_fail(ops->lib, "server", rc);
        return 1;
    }
    return 0;
}

static inline int tls_client_init(tls_client *cl, const char *lib,
                                  const tls_files *f, int port)
{
    memset(cl, 0, sizeof *cl);
    cl->lib = lib;
    cl->port = port;
    cl->ctx = tls_client_ctx(f->ca);
    if (!cl->ctx) {
        tls_fail(lib, "client context", EPROTO);
        return -1;
    }
    return 0;
}

/* The client alone (--load PORT handshakes N [C] | bulk MiB). */
static inline int tls_load_alone(const char *lib, const tls_files *f,
                                 int argc, char **argv)
{
    tls_client cl;
    tls_result res = {0, 0, 0};
    long port = echo_arg(argc, argv, 2, -1, 65535);
    bool hs = argc > 3 && strcmp(argv[3], "handshakes") == 0;
    bool bulk = argc > 3 && strcmp(argv[3], "bulk") == 0;
    long n = echo_arg(argc, argv, 4, -1, 100000000L);
    long conns = echo_arg(argc, argv, 5, 1, TLS_MAX_CONNS);
    if (port < 0 || (!hs && !bulk) || n < 0 || conns < 0 ||
        argc > (hs ? 6 : 5)) {
        fprintf(stderr, "usage: %s --load PORT handshakes N [C] | "
                "--load PORT bulk MiB\n", argv[0]);
        return 2;
    }
    if (tls_client_init(&cl, lib, f, (int)port) < 0)
        return 1;
    int rc = hs ? tls_job_handshakes(&cl, (uint32_t)conns, (uint64_t)n, 0,
                                     false, &res)
                : tls_job_bulk(&cl, (uint64_t)n << 20, 0, false, &res);
    SSL_CTX_free(cl.ctx);
    if (rc < 0)
        return 1;
    fprintf(stderr, "bench_tls load: %ld %s, %.1f %s, client CPU %.1f us/%s\n",
            n, hs ? "handshakes" : "MiB", res.rate, hs ? "hs/s" : "MiB/s",
            res.client_us, hs ? "hs" : "MiB");
    return 0;
}

/* Argument i, else the environment variable env, else def; -1 when
 * either is not a number in 1..max. */
static inline long tls_arg(int argc, char **argv, int i, const char *env,
                           long def, long max)
{
    const char *e = getenv(env);
    if (argc <= i && e && *e) {
        char *args[2] = {argv[0], (char *)e};
        return echo_arg(2, args, 1, def, max);
    }
    return echo_arg(argc, argv, i, def, max);
}

static inline int tls_bench_main(int argc, char **argv,
                                 const tls_server_ops *ops)
{
    tls_files f;
    /* The client sends with MSG_NOSIGNAL, OpenSSL's socket BIO (the
     * client's, libevent's) does not. */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "--serve") == 0) {
        if (argc > 2) {
            fprintf(stderr, "usage: %s --serve\n", argv[0]);
            return 2;
        }
        return tls_files_find(&f) < 0 ? 1 : tls_serve_alone(ops, &f);
    }
    if (argc > 1 && strcmp(argv[1], "--load") == 0)
        return tls_files_find(&f) < 0 ? 1 : tls_load_alone(ops->lib, &f,
                                                            argc, argv);

    long handshakes = tls_arg(argc, argv, 1, "NC_BENCH_TLS_HANDSHAKES", 4000,
                              100000000L);
    long conns = tls_arg(argc, argv, 2, "NC_BENCH_TLS_CONCURRENCY", 8,
                         TLS_MAX_CONNS);
    long bulk_mib = tls_arg(argc, argv, 3, "NC_BENCH_TLS_MIB", 256, 1L << 20);
    if (handshakes < 0 || conns < 0 || bulk_mib < 0 || argc > 4) {
        fprintf(stderr, "usage: %s [handshakes [concurrency [bulk_MiB]]]\n"
                "       %s --serve\n"
                "       %s --load PORT handshakes N [C] | "
                "--load PORT bulk MiB\n"
                "  defaults 4000, 8, 256\n", argv[0], argv[0], argv[0]);
        return 2;
    }
    if (tls_files_find(&f) < 0)
        return 1;

    int ready[2], stop[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(stop, O_CLOEXEC) < 0) {
        tls_fail(ops->lib, "pipe", errno);
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        tls_fail(ops->lib, "fork", errno);
        return 1;
    }
    if (pid == 0) {
        close(ready[0]);
        close(stop[1]);
        tls_pin(TLS_SERVER_CPU);
        tls_server_cfg cfg = {f.cert, f.key, stop[0], ready[1]};
        int rc = ops->serve(&cfg);
        if (rc < 0)
            tls_fail(ops->lib, "server", rc);
        _exit(rc < 0 ? 1 : 0);
    }
    close(ready[1]);
    close(stop[0]);
    tls_pin(TLS_CLIENT_CPU);

    tls_client cl = {0};
    clockid_t server_cpu;
    tls_result hs = {0, 0, 0}, bulk = {0, 0, 0};
    int ok = -1, port = tls_read_port(ready[0]), err;
    close(ready[0]);
    if (port < 0)
        tls_fail(ops->lib, "server start", port);
    else if ((err = clock_getcpuclockid(pid, &server_cpu)) != 0)
        tls_fail(ops->lib, "the server's CPU clock", err);
    else if (tls_client_init(&cl, ops->lib, &f, port) == 0) {
        if (tls_job_handshakes(&cl, (uint32_t)conns, (uint64_t)handshakes,
                               server_cpu, true, &hs) == 0 &&
            tls_job_bulk(&cl, (uint64_t)bulk_mib << 20, server_cpu, true,
                         &bulk) == 0)
            ok = 0;
    }
    SSL_CTX_free(cl.ctx);
    close(stop[1]);                /* the server's signal to stop */
    if (tls_reap(ops->lib, pid) != 0) {
        fprintf(stderr, "bench_tls (%s): the server failed\n", ops->lib);
        ok = -1;
    }
    if (ok == 0) {
        printf("tls handshake_rate %s %.1f hs/s\n", ops->lib, hs.rate);
        printf("tls handshake_cpu %s %.1f us/hs\n", ops->lib, hs.server_us);
        printf("tls bulk_rate %s %.1f MiB/s\n", ops->lib, bulk.rate);
        printf("tls bulk_cpu %s %.1f us/MiB\n", ops->lib, bulk.server_us);
        fflush(stdout);
        /* Which side bounds the rates. */
        fprintf(stderr, "bench_tls (%s): the client's CPU: %.1f us/hs, "
                "%.1f us/MiB\n", ops->lib, hs.client_us, bulk.client_us);
    }
    return ok == 0 ? 0 : 1;
}

#endif /* TLS_LOAD_H */
