/* test_examples_proxy.c - examples/tcp-proxy with real clients and
 * servers: a client that half-closes still gets its answer (HTTP/1.0
 * with shutdown, socat at the end of its input), bytes keep their order
 * both ways in plain and all TLS combinations, a client whose TLS
 * handshake fails leaves the proxy serving, a reset is passed on as a
 * reset both ways, an upstream that refuses or never answers closes the
 * client with the reason in the log, and SIGTERM lets what is in flight
 * arrive. The programs run as they would for a user; the test is their
 * client (plain sockets, or libnetcore for TLS). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netcore.h"
#include "proc.h"
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char certs[PATH_MAX];

static const char *cert(const char *name, char *buf)
{
    snprintf(buf, PATH_MAX + 80, "%.*s/%.63s", PATH_MAX, certs, name);
    return buf;
}

static char port_arg[4][16];

/* "--splice" while a case runs in the proxy's zero-copy mode, else an
 * argument that changes nothing. */
static const char *mode = "--log";

/* "127.0.0.1:PORT" in one of four static buffers. */
static const char *at(unsigned port, int slot)
{
    snprintf(port_arg[slot], sizeof(port_arg[slot]), "127.0.0.1:%u", port);
    return port_arg[slot];
}

/* ---- a client on the test's own loop, plain or TLS --------------------- */

static char pattern_at(size_t i)
{
    return (char)(i * 7 + i / 251);
}

/* Sends size bytes of the pattern (in pieces, pausing on its queue as any
 * program should), then shuts its side down; checks every byte that
 * comes back against the same pattern until the end. */
struct xfer {
    nc_conn *c;
    size_t size, sent, got;
    bool bad, opened;
    int closes;
    nc_close_reason reason;
    int err;
};

/* A client that streams both ways does its own flow control: it writes
 * while its queue is below XFER_MARK and goes on from on_drain. The
 * library's high_water is off: it would pause reading whenever the
 * output waits, and an echo behind the proxy waits for us to read before
 * it reads more (a deadlock, whichever side's buffers fill first). */
#define XFER_MARK (256u << 10)
#define XFER_CONN \
    { .half_close = true, .high_water = SIZE_MAX, .low_water = 64u << 10 }

static void xfer_push(struct xfer *x)
{
    char buf[16384];
    /* Its own mark (the library's high_water, which would stop it
     * reading the echo while its output waits, is off: see xfer_opts). */
    while (x->c && x->sent < x->size &&
           nc_conn_queued(x->c) + 16384 <= XFER_MARK) {
        size_t n = x->size - x->sent < sizeof(buf) ? x->size - x->sent
                                                   : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_at(x->sent + i);
        assert_int_equal(nc_conn_write(x->c, buf, n), 0);
        x->sent += n;
        if (x->sent == x->size)
            assert_int_equal(nc_conn_shutdown(x->c), 0);
    }
}

static void xfer_open(nc_conn *c, void *ud)
{
    struct xfer *x = ud;
    x->c = c;
    x->opened = true;
    xfer_push(x);
}

static size_t xfer_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)c;
    struct xfer *x = ud;
    const char *d = data;
    for (size_t i = 0; i < len; i++)
        if (d[i] != pattern_at(x->got + i))
            x->bad = true;
    x->got += len;
    return len;
}

static void xfer_drain(nc_conn *c, void *ud)
{
    (void)c;
    xfer_push(ud);
}

static void xfer_close(nc_conn *c, nc_close_reason r, int err, void *ud)
{
    (void)c;
    struct xfer *x = ud;
    x->c = NULL;
    x->closes++;
    x->reason = r;
    x->err = err;
}

static bool xfer_closed(void *arg)
{
    return ((struct xfer *)arg)->closes > 0;
}

/* size bytes through endpoint to an echo behind it and back: every byte,
 * in order, then a clean end. tls: speak TLS to endpoint. */
static void echo_through(const char *endpoint, size_t size, bool tls)
{
    nc_loop *loop;
    assert_int_equal(nc_loop_new(&loop), 0);
    nc_tls_ctx *ctx = NULL;
    char ca[PATH_MAX + 80];
    if (tls) {
        nc_tls_options o = { .ca_file = cert("ca.pem", ca) };
        assert_int_equal(nc_tls_client_new(&o, &ctx, NULL, 0), 0);
    }
    struct xfer x = { .size = size };
    nc_conn_callbacks cbs = { xfer_open, xfer_data, xfer_drain, xfer_close };
    nc_connect_options co = { .tls = ctx,
                              .conn = XFER_CONN };
    assert_int_equal(nc_connect(loop, endpoint, &co, &cbs, &x, NULL), 0);
    assert_true(run_until(loop, xfer_closed, &x, 60000));
    assert_true(x.opened);
    assert_false(x.bad);
    assert_int_equal(x.got, size);
    assert_int_equal(x.reason, NC_CLOSE_PEER);
    assert_int_equal(x.err, 0);
    nc_loop_free(loop);
    nc_tls_ctx_free(ctx);
}

/* ---- the programs -------------------------------------------------------- */

struct chain {
    struct proc *up, *proxy;
    unsigned up_port, proxy_port;
};

/* An echo-server (TLS with up_tls) and a proxy to it (terminating TLS
 * with in_tls), each on a port of the kernel's choice; extra arguments go
 * to the proxy (NULL-terminated). */
static void chain_start(struct chain *ch, bool in_tls, int up_tls, ...)
{
    char crt[PATH_MAX + 80], key[PATH_MAX + 80], ca[PATH_MAX + 80];
    cert("server.pem", crt);
    cert("server.key", key);
    cert("ca.pem", ca);
    if (up_tls)
        ch->up = proc_start("echo-server", "--listen", "127.0.0.1:0",
                            "--tls-cert", crt, "--tls-key", key, NULL);
    else
        ch->up = proc_start("echo-server", "--listen", "127.0.0.1:0", NULL);
    ch->up_port = listen_port(ch->up);
    assert_true(ch->up_port > 0);

    const char *argv[32];
    int n = 0;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--to";
    argv[n++] = at(ch->up_port, 0);
    argv[n++] = "--log";
    argv[n++] = mode;
    if (in_tls) {
        argv[n++] = "--tls-cert";
        argv[n++] = crt;
        argv[n++] = "--tls-key";
        argv[n++] = key;
    }
    if (up_tls) {
        argv[n++] = "--to-tls";
        argv[n++] = "--tls-ca";
        argv[n++] = ca;
    }
    va_list ap;
    va_start(ap, up_tls);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 30;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    ch->proxy = proc_start("tcp-proxy", argv[0], argv[1], argv[2], argv[3],
                           argv[4], argv[5], argv[6], argv[7], argv[8],
                           argv[9], argv[10], argv[11], argv[12], argv[13],
                           argv[14], argv[15], argv[16], argv[17], NULL);
    ch->proxy_port = listen_port(ch->proxy);
    assert_true(ch->proxy_port > 0);
}

static void chain_stop(struct chain *ch)
{
    assert_int_equal(proc_stop(ch->proxy, SIGTERM), 0);
    assert_int_equal(proc_stop(ch->up, SIGTERM), 0);
}

/* ---- half-close ------------------------------------------------------------ */

/* HTTP/1.0 tools send the request and shut their sending side down; the
 * answer must still come back, every time. */
static void http10_clients_that_half_close_get_every_answer(void **state)
{
    (void)state;
    struct proc *up = proc_start("http-hello", "--listen", "127.0.0.1:0",
                                 NULL);
    unsigned up_port = listen_port(up);
    struct proc *px = proc_start("tcp-proxy", "--listen", "127.0.0.1:0",
                                 "--to", at(up_port, 0), mode, NULL);
    unsigned port = listen_port(px);
    for (int i = 0; i < 20; i++) {
        int fd = tcp_connect(port);
        const char req[] = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
        send_all(fd, req, sizeof(req) - 1);
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        char buf[4096];
        bool eof = false;
        size_t n = read_until_eof(fd, buf, sizeof(buf) - 1, &eof);
        assert_true(eof);
        assert_true(n > 0);
        assert_non_null(strstr(buf, " 200 "));
        assert_non_null(strstr(buf, "Hello, World!"));
        close(fd);
    }
    assert_int_equal(proc_stop(px, SIGTERM), 0);
    assert_int_equal(proc_stop(up, SIGTERM), 0);
}

/* socat copies its input to the proxy and, at the end of it, shuts its
 * sending side down and waits for the rest of the answer: the whole echo
 * comes back. */
static void socat_at_the_end_of_its_input_gets_the_whole_echo(void **state)
{
    (void)state;
    char socat[] = "/usr/bin/socat";
    if (access(socat, X_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0)
            fail_msg("socat is missing (make deps installs it)");
        print_message("SKIP: socat is not installed\n");
        skip();
    }
    struct chain ch;
    chain_start(&ch, false, false, NULL);
    char in[] = "/tmp/nc-proxy-in.XXXXXX", out[] = "/tmp/nc-proxy-out.XXXXXX";
    int ifd = mkstemp(in), ofd = mkstemp(out);
    assert_true(ifd >= 0 && ofd >= 0);
    enum { SIZE = 8 << 20 };
    char *data = malloc(SIZE);
    assert_non_null(data);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = pattern_at(i);
    assert_int_equal(write(ifd, data, SIZE), SIZE);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s -t 30 - TCP:127.0.0.1:%u < %s > %s", socat,
             ch.proxy_port, in, out);
    assert_int_equal(system(cmd), 0);
    char *back = malloc(SIZE + 1);
    assert_non_null(back);
    ssize_t n = pread(ofd, back, SIZE + 1, 0);
    assert_int_equal(n, SIZE);
    assert_memory_equal(back, data, SIZE);
    unlink(in);
    unlink(out);
    close(ifd);
    close(ofd);
    free(back);
    free(data);
    chain_stop(&ch);
    /* Both sides of the pair ended cleanly. */
    assert_non_null(strstr(ch.proxy->buf[OUT],
                           "client: peer closed; upstream: peer closed"));
}

/* ---- bytes both ways, plain and TLS ------------------------------------- */

static void bytes_both_ways(bool in_tls, bool up_tls)
{
    struct chain ch;
    chain_start(&ch, in_tls, up_tls, NULL);
    echo_through(at(ch.proxy_port, 1), 8u << 20, in_tls);
    chain_stop(&ch);
}

static void plain_to_plain_keeps_every_byte(void **state)
{
    (void)state;
    bytes_both_ways(false, false);
}

static void plain_to_tls_keeps_every_byte(void **state)
{
    (void)state;
    bytes_both_ways(false, true);
}

static void tls_to_plain_keeps_every_byte(void **state)
{
    (void)state;
    bytes_both_ways(true, false);
}

static void tls_to_tls_keeps_every_byte(void **state)
{
    (void)state;
    bytes_both_ways(true, true);
}

/* Clients whose TLS handshake fails (one speaks plain HTTP, one closes
 * at once) close without a pair: the proxy goes on serving the next. */
static void a_failed_tls_handshake_leaves_the_proxy_serving(void **state)
{
    (void)state;
    struct chain ch;
    chain_start(&ch, true, false, NULL);
    int fd = tcp_connect(ch.proxy_port);
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    send_all(fd, req, sizeof(req) - 1);
    assert_true(wait_readable(fd, 5000));
    close(fd);
    close(tcp_connect(ch.proxy_port));
    echo_through(at(ch.proxy_port, 1), 1u << 16, true);
    chain_stop(&ch);
}

/* ---- resets and failing upstreams --------------------------------------- */

static int listen_raw(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
                     0);
    close(fd);
}

/* What the peer of fd did at its end: 0 FIN, -ECONNRESET a reset. */
static int end_seen(int fd)
{
    char buf[256];
    for (;;) {
        if (!wait_readable(fd, 5000))
            return -ETIMEDOUT;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0)
            continue;
        return n == 0 ? 0 : -errno;
    }
}

/* A client that resets makes the proxy reset the upstream, and an
 * upstream that resets makes it reset the client. */
static void a_reset_is_passed_on_as_a_reset_both_ways(void **state)
{
    (void)state;
    unsigned up_port;
    int lfd = listen_raw(&up_port);
    struct proc *px = proc_start("tcp-proxy", "--listen", "127.0.0.1:0",
                                 "--to", at(up_port, 0), "--log", mode,
                                 NULL);
    unsigned port = listen_port(px);
    for (int dir = 0; dir < 2; dir++) {
        int cfd = tcp_connect(port);
        send_all(cfd, "hi", 2);
        assert_true(wait_readable(lfd, 5000));
        int ufd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(ufd >= 0);
        char buf[2];
        recv_exact(ufd, buf, 2);
        if (dir == 0) {
            reset(cfd);
            assert_int_equal(end_seen(ufd), -ECONNRESET);
            close(ufd);
        } else {
            reset(ufd);
            assert_int_equal(end_seen(cfd), -ECONNRESET);
            close(cfd);
        }
    }
    close(lfd);
    assert_int_equal(proc_stop(px, SIGTERM), 0);
    assert_non_null(strstr(px->buf[OUT], "client: reset"));
    assert_non_null(strstr(px->buf[OUT], "upstream: reset"));
}

/* Nothing listens upstream: the client is closed (FIN), and the log says
 * why. */
static void a_refused_upstream_closes_the_client_and_says_why(void **state)
{
    (void)state;
    unsigned up_port;
    int lfd = listen_raw(&up_port);
    close(lfd);         /* the port is free now: connecting is refused */
    struct proc *px = proc_start("tcp-proxy", "--listen", "127.0.0.1:0",
                                 "--to", at(up_port, 0), "--log", NULL);
    unsigned port = listen_port(px);
    /* Nothing sent: bytes arriving after the proxy closed the client
     * would be met with a reset, whichever came first. */
    int cfd = tcp_connect(port);
    assert_int_equal(end_seen(cfd), 0);
    close(cfd);
    assert_non_null(proc_wait_line(px, OUT, "127.0.0.1:"));
    assert_int_equal(proc_stop(px, SIGTERM), 0);
    assert_non_null(strstr(px->buf[OUT],
                           "upstream: connect failed (Connection refused)"));
}

/* The upstream's host drops every packet (nft, in a network namespace of
 * the test's own): the connect times out after --connect-timeout, the
 * client is closed, and the log says so. Runs in a child that owns the
 * namespace. */
static void black_holed_child(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        _exit(77);
    if (system("ip link set lo up") != 0)
        _exit(77);
    if (system("printf 'table inet nctest {\\n chain in {\\n  type filter "
               "hook input priority 0;\\n  tcp dport 9 drop\\n }\\n}\\n' | "
               "nft -f -") != 0)
        _exit(77);
    int rc = 1;
    struct proc *px = proc_start("tcp-proxy", "--listen", "127.0.0.1:0",
                                 "--to", "127.0.0.1:9", "--connect-timeout",
                                 "0.3", "--log", NULL);
    unsigned port = listen_port(px);
    int cfd = tcp_connect(port);
    uint64_t t0 = now_ms();
    send_all(cfd, "hi", 2);
    int end = end_seen(cfd);
    uint64_t took = now_ms() - t0;
    close(cfd);     /* the proxy's side lingers until this end */
    proc_wait_line(px, OUT, "127.0.0.1:");
    proc_stop(px, SIGTERM);
    if (end == 0 && took >= 300 && took < 5000 &&
        strstr(px->buf[OUT], "upstream: connect failed (Connection timed "
                             "out)"))
        rc = 0;
    else
        fprintf(stderr, "black hole: end %d after %llu ms; log: %s\n", end,
                (unsigned long long)took, px->buf[OUT]);
    _exit(rc);
}

static void a_black_holed_upstream_times_out_and_says_why(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        black_holed_child();
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0)
            fail_msg("cannot make a network namespace with nft (root, ip "
                     "and nft are needed; CI=true requires them)");
        print_message("SKIP: needs root, ip, nft and network namespaces\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- a graceful stop with transfers in flight --------------------------- */

/* A client streams into the proxy while reading slowly, so bytes are
 * queued in the proxy when SIGTERM comes: within the grace they arrive,
 * then a clean end, and the proxy reports and exits 0. */
static void sigterm_lets_what_is_in_flight_arrive(void **state)
{
    (void)state;
    struct chain ch;
    chain_start(&ch, false, false, "--grace", "5", NULL);
    int fd = tcp_connect(ch.proxy_port);
    enum { SIZE = 4 << 20 };
    char *data = malloc(SIZE);
    assert_non_null(data);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = pattern_at(i);
    /* Send as much as goes without blocking, reading nothing yet. */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t sent = 0;
    for (int tries = 0; tries < 200 && sent < SIZE; tries++) {
        ssize_t n = send(fd, data + sent, SIZE - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else
            wait_events(fd, POLLOUT, 5);
    }
    assert_true(sent > 0);
    /* The pair is up and bytes are on their way back: now stop. */
    assert_true(wait_readable(fd, 10000));
    kill(ch.proxy->pid, SIGTERM);
    fcntl(fd, F_SETFL, 0);
    char *back = malloc(SIZE);
    assert_non_null(back);
    size_t got = 0;
    for (;;) {
        assert_true(wait_readable(fd, 10000));
        ssize_t n = recv(fd, back + got, SIZE - got, 0);
        if (n < 0) {
            int e = errno;
            proc_finish(ch.proxy);
            print_message("after %zu of %zu: %s; the proxy said:\n%s\n", got,
                          sent, strerror(e), ch.proxy->buf[OUT]);
        }
        assert_true(n >= 0);        /* a FIN, never a reset */
        if (n == 0)
            break;
        got += (size_t)n;
    }
    assert_true(got > 0 && got <= sent);
    assert_memory_equal(back, data, got);
    assert_int_equal(proc_finish(ch.proxy), 0);
    assert_non_null(strstr(ch.proxy->buf[OUT], "worker 0:"));
    assert_non_null(strstr(ch.proxy->buf[OUT], "tcp-proxy: 1 clients"));
    assert_int_equal(proc_stop(ch.up, SIGTERM), 0);
    close(fd);
    free(back);
    free(data);
}

/* ---- the same, spliced (--splice: the kernel moves the bytes) ------------ */

#define SPLICED(name)                                                        \
    static void name##_spliced(void **state)                                 \
    {                                                                        \
        mode = "--splice";                                                   \
        name(state);                                                         \
        mode = "--log";                                                      \
    }
SPLICED(http10_clients_that_half_close_get_every_answer)
SPLICED(socat_at_the_end_of_its_input_gets_the_whole_echo)
SPLICED(plain_to_plain_keeps_every_byte)
SPLICED(a_reset_is_passed_on_as_a_reset_both_ways)
SPLICED(sigterm_lets_what_is_in_flight_arrive)

/* ---- setup ------------------------------------------------------------------ */

static int make_certs(void **state)
{
    char tmpl[] = "/tmp/nc-test-proxy.XXXXXX";
    const char *root = getenv("NC_SOURCE_DIR");
    char cmd[PATH_MAX * 2 + 64];
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(certs, sizeof certs, "%s", tmpl);
    snprintf(cmd, sizeof cmd, "bash '%s/tests/tls-certs.sh' '%s'",
             root ? root : ".", certs);
    if (system(cmd) != 0)
        return -1;
    return proc_setup(state);
}

static int remove_certs(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    nc_tls_ctx *probe = NULL;
    bool tls = nc_tls_client_new(NULL, &probe, NULL, 0) == 0;
    nc_tls_ctx_free(probe);
#define T(name) cmocka_unit_test_teardown(name, proc_teardown)
    const struct CMUnitTest tests[] = {
        T(http10_clients_that_half_close_get_every_answer),
        T(socat_at_the_end_of_its_input_gets_the_whole_echo),
        T(plain_to_plain_keeps_every_byte),
        T(a_reset_is_passed_on_as_a_reset_both_ways),
        T(a_refused_upstream_closes_the_client_and_says_why),
        T(a_black_holed_upstream_times_out_and_says_why),
        T(sigterm_lets_what_is_in_flight_arrive),
        T(http10_clients_that_half_close_get_every_answer_spliced),
        T(socat_at_the_end_of_its_input_gets_the_whole_echo_spliced),
        T(plain_to_plain_keeps_every_byte_spliced),
        T(a_reset_is_passed_on_as_a_reset_both_ways_spliced),
        T(sigterm_lets_what_is_in_flight_arrive_spliced),
        T(plain_to_tls_keeps_every_byte),
        T(tls_to_plain_keeps_every_byte),
        T(tls_to_tls_keeps_every_byte),
        T(a_failed_tls_handshake_leaves_the_proxy_serving),
    };
    /* Without TLS in this build the last four cannot run. */
    size_t n = sizeof(tests) / sizeof(*tests) - (tls ? 0 : 4);
    return _cmocka_run_group_tests("examples_proxy", tests, n, make_certs,
                                   remove_certs);
}
