/*
 * tcp-proxy - forward every connection to an upstream server, both ways.
 *
 *   tcp-proxy --listen SPEC [--listen SPEC ...] --to UPSTREAM
 *             [--threads N] [--idle-timeout SECONDS]
 *             [--connect-timeout SECONDS] [--log] [--splice]
 *             [--tls-cert FILE --tls-key FILE]
 *             [--to-tls [--tls-ca FILE] [--tls-name NAME] [--tls-no-verify]]
 *
 * Each accepted client gets its own connection to UPSTREAM; the two are a
 * pair, and what one side sends the other side writes. Four things make
 * it a proxy people can deploy, and the library does each:
 *
 * - Half-close (half_close): a client that sends its request and shuts
 *   down its sending side still gets the answer. The end of one side's
 *   stream is passed on with nc_conn_shutdown() on the other side, which
 *   stays open for the other direction until it ends too.
 * - Flow control: when one side's output queue (what its peer has not
 *   taken yet, nc_conn_queued) goes above PAUSE_AT, reading from the
 *   other side pauses; on_drain (at RESUME_AT) resumes it. Memory per
 *   pair stays bounded however fast one side sends and however slowly
 *   the other reads. The library's own pause (high_water: a connection
 *   whose output is stuck stops being read) is off: in a proxy it would
 *   tie the two directions together.
 * - A reset on one side is passed on as a reset (nc_conn_abort); an
 *   upstream that refuses or does not answer in time closes the client,
 *   with the reason in the log.
 * - TLS on either side: --tls-cert/--tls-key terminate it, --to-tls
 *   originates it, so plain-to-TLS, TLS-to-plain and TLS-to-TLS all work.
 *
 * Worker threads, listeners and the graceful stop on SIGTERM are in
 * common/serve.c, shared with the other example servers.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netcore.h"
#include "common/args.h"
#include "common/serve.h"

#define PROG "tcp-proxy"

/* A side's output queue above PAUSE_AT pauses reading the other side;
 * on_drain, once it is back at RESUME_AT, resumes it. */
#define PAUSE_AT (256u << 10)
#define RESUME_AT (64u << 10)

/* What one pair of connections shares, freed when both have closed. */
struct pair {
    nc_conn *side[2];           /* [CLIENT], [UPSTREAM]; NULL once closed */
    uint64_t bytes[2];          /* received from each side */
    nc_close_reason reason[2];
    int err[2];
    uint64_t started_ms;
    char client_addr[NC_ADDRSTRLEN];
    int closed;                 /* sides that have closed: free at 2 */
};

enum { CLIENT = 0, UPSTREAM = 1 };

/* The program's settings, shared read-only by every worker. */
static struct {
    const char *to;             /* --to */
    uint32_t connect_timeout_ms;
    bool log;                   /* --log: a line per pair */
    bool to_tls;                /* --to-tls */
    const char *tls_ca, *tls_name;
    bool tls_no_verify;
    bool splice;                /* --splice: plain bytes move in the kernel */
    bool client_tls;            /* --tls-cert: clients speak TLS */
    nc_tls_ctx *upstream_tls;   /* made from the --to-tls options */
    nc_conn_options conn;       /* what both sides use */
} opt = { .connect_timeout_ms = 10000 };

/* The side of the pair that c is, and the other one. */
static int side_of(const struct pair *p, const nc_conn *c)
{
    return p->side[UPSTREAM] == c ? UPSTREAM : CLIENT;
}

static void log_pair(const struct pair *p, nc_loop *loop)
{
    char up_err[64] = "", cl_err[64] = "";
    if (p->err[CLIENT])
        snprintf(cl_err, sizeof cl_err, " (%s)", nc_strerror(p->err[CLIENT]));
    if (p->err[UPSTREAM])
        snprintf(up_err, sizeof up_err, " (%s)",
                 nc_strerror(p->err[UPSTREAM]));
    printf("%s -> %s: %" PRIu64 " bytes up, %" PRIu64 " bytes down, "
           "%.3f s; client: %s%s; upstream: %s%s\n", p->client_addr, opt.to,
           p->bytes[CLIENT], p->bytes[UPSTREAM],
           (double)(nc_loop_now(loop) - p->started_ms) / 1000.0,
           nc_close_reason_name(p->reason[CLIENT]), cl_err,
           nc_close_reason_name(p->reason[UPSTREAM]), up_err);
}

/* Bytes from one side: the other side writes them. Above its high-water
 * mark, reading from this side pauses until the other side drains. */
static size_t on_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct pair *p = ud;
    int me = side_of(p, c);
    nc_conn *other = p->side[!me];

    p->bytes[me] += len;
    if (other == NULL) {
        /* The other side is gone (closing): nothing to pass on. */
        return len;
    }
    if (len > 0 && nc_conn_write(other, data, len) < 0) {
        nc_conn_close(c);       /* the other side failed: on_close says */
        return len;
    }
    if (nc_conn_eof(c)) {
        /* This side ended its stream: so does the other, once what is
         * queued for it has gone (half-close). */
        nc_conn_shutdown(other);
    } else if (nc_conn_queued(other) > PAUSE_AT) {
        nc_conn_read_stop(c);
    }
    return len;
}

/* The other side's queue fell to its low-water mark: read this side
 * again. */
static void on_drain(nc_conn *c, void *ud)
{
    struct pair *p = ud;
    nc_conn *other = p->side[!side_of(p, c)];

    if (other != NULL)
        nc_conn_read_start(other);
}

static void on_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    struct pair *p = ud;

    /* A client whose TLS handshake failed closes without having opened:
     * ud is then the listener's pointer (none), and there is no pair. */
    if (p == NULL)
        return;
    int me = side_of(p, c);
    nc_conn *other = p->side[!me];

    p->side[me] = NULL;
    p->reason[me] = reason;
    p->err[me] = err;
    p->bytes[me] += nc_conn_bytes_spliced(c);
    if (other != NULL) {
        if (reason == NC_CLOSE_RESET)
            nc_conn_abort(other);       /* a reset is passed on as one */
        else if (reason != NC_CLOSE_PEER)
            nc_conn_close(other);       /* sends what is queued, then FIN */
        /* NC_CLOSE_PEER: both directions of this side ended, and its end
         * was passed on; the other side closes when its own peer ends. */
    }
    if (++p->closed == 2) {
        if (opt.log)
            log_pair(p, nc_conn_loop(c));
        free(p);
    }
}

static void upstream_open(nc_conn *c, void *ud)
{
    struct pair *p = ud;

    if (p->side[CLIENT] == NULL)
        return;
    /* Plain on both sides, with --splice: the kernel moves the bytes
     * (the client's first ones, waiting in its input buffer, go first);
     * the ends and resets are passed on as before. */
    if (opt.splice && !opt.client_tls && !opt.to_tls &&
        nc_conn_splice(p->side[CLIENT], c) == 0)
        nc_conn_splice(c, p->side[CLIENT]);
    /* The client's first bytes waited in its input buffer; they are
     * handed over now, without waiting for more. */
    nc_conn_read_start(p->side[CLIENT]);
}

static const nc_conn_callbacks upstream_cbs = {
    upstream_open, on_data, on_drain, on_close
};

/* A client came: connect to the upstream, and hold the client's bytes
 * until that connection is open. */
static void client_open(nc_conn *c, void *ud)
{
    nc_connect_options co;
    struct pair *p = calloc(1, sizeof *p);
    nc_addr peer;
    int err;

    (void)ud;
    if (p == NULL) {
        nc_conn_abort(c);
        return;
    }
    p->side[CLIENT] = c;
    p->started_ms = nc_loop_now(nc_conn_loop(c));
    /* A client that reset before this ran has no address left to ask
     * the kernel for: say so rather than log an empty name. */
    if (nc_conn_peer_addr(c, &peer) == 0)
        nc_addr_format(&peer, p->client_addr, sizeof p->client_addr);
    else
        snprintf(p->client_addr, sizeof p->client_addr,
                 "(a client that reset at once)");
    nc_conn_set_data(c, p);
    nc_conn_read_stop(c);

    memset(&co, 0, sizeof co);
    co.conn = opt.conn;
    co.conn.connect_timeout_ms = opt.connect_timeout_ms;
    co.tls = opt.upstream_tls;
    co.server_name = opt.tls_name;
    err = nc_connect(nc_conn_loop(c), opt.to, &co, &upstream_cbs, p,
                     &p->side[UPSTREAM]);
    if (err < 0) {
        /* Nothing started: the client's on_close ends the pair alone. */
        p->reason[UPSTREAM] = NC_CLOSE_CONNECT_FAILED;
        p->err[UPSTREAM] = err;
        p->closed = 1;
        nc_conn_close(c);
    }
}

static void summary(void *const *blocks, unsigned n,
                    const nc_loop_stats *total)
{
    char closed[512];

    (void)blocks;
    (void)n;
    serve_format_closed(total, closed, sizeof closed);
    serve_print_summary("%s: %" PRIu64 " clients, %" PRIu64 " upstream "
                        "connections (%" PRIu64 " failed), %" PRIu64
                        " bytes in, %" PRIu64 " bytes out; closed: %s\n",
                        PROG, total->accepted, total->connected,
                        total->connect_failed, total->bytes_in,
                        total->bytes_out, closed);
}

static void usage(void)
{
    printf("usage: %s --listen SPEC [--listen SPEC ...] --to UPSTREAM\n"
           "       [--threads N] [--pin] [--grace SECONDS] "
           "[--idle-timeout SECONDS]\n"
           "       [--connect-timeout SECONDS] [--log] [--max-conns N]\n"
           "       [--max-per-addr N]\n"
           "       [--tls-cert FILE --tls-key FILE]\n"
           "       [--to-tls [--tls-ca FILE] [--tls-name NAME] "
           "[--tls-no-verify]] [--version]\n"
           "Forward every connection to UPSTREAM, both ways. Stop with "
           "SIGINT or SIGTERM.\n"
           "  --listen SPEC           endpoint to listen on, repeatable "
           "(default *:7000)\n"
           "  --to UPSTREAM           where to forward: 192.0.2.1:80, "
           "[::1]:8080, unix:/path\n"
           "  --idle-timeout SECONDS  close a pair after this long with "
           "nothing moving on\n"
           "                          a side (default 60, 0 = never)\n"
           "  --connect-timeout SECONDS  give up on the upstream after "
           "this long (default 10)\n"
           "  --log                   print a line per pair when it ends: "
           "bytes each way,\n"
           "                          duration, and why each side closed\n"
           "  --splice                plain on both sides: move the bytes "
           "inside the kernel\n"
           "                          (splice through pipes, no copy into "
           "this process)\n"
           "  --threads N             N worker threads (default 1, 0 = one "
           "per CPU)\n"
           "  --pin                   run worker i on CPU i\n"
           "  --grace SECONDS         on SIGINT/SIGTERM, let queued bytes "
           "flush this long\n"
           "                          (default 5)\n"
           "  --max-conns N           pause accepting at N clients per "
           "listener and thread\n"
           "  --max-per-addr N        reset a client address's connections "
           "past N open per\n"
           "                          thread (default 128, 0 = no cap)\n"
           "  --tls-cert FILE         clients speak TLS: this certificate "
           "chain (PEM)\n"
           "  --tls-key FILE          and this private key (PEM)\n"
           "  --to-tls                speak TLS to the upstream, verifying "
           "its certificate\n"
           "  --tls-ca FILE           trust the CAs in FILE (PEM) instead "
           "of the system's\n"
           "  --tls-name NAME         the name the upstream's certificate "
           "must carry (and SNI)\n"
           "  --tls-no-verify         do not check the upstream's "
           "certificate (testing only)\n"
           "  --version               print the version and exit\n", PROG);
}

enum { OPT_TO = 256, OPT_CONNECT_TIMEOUT, OPT_LOG, OPT_TO_TLS, OPT_TLS_CA,
       OPT_TLS_NAME, OPT_TLS_NO_VERIFY, OPT_SPLICE };

static const struct option proxy_options[] = {
    {"to", required_argument, NULL, OPT_TO},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"log", no_argument, NULL, OPT_LOG},
    {"to-tls", no_argument, NULL, OPT_TO_TLS},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-name", required_argument, NULL, OPT_TLS_NAME},
    {"tls-no-verify", no_argument, NULL, OPT_TLS_NO_VERIFY},
    {"splice", no_argument, NULL, OPT_SPLICE},
    {NULL, 0, NULL, 0},
};

static const char *parse_option(int val, const char *arg)
{
    switch (val) {
    case OPT_TO:
        args_endpoint(PROG, "--to", arg, true, NULL);
        opt.to = arg;
        return NULL;
    case OPT_CONNECT_TIMEOUT:
        if (args_seconds_ms(arg, &opt.connect_timeout_ms) < 0)
            return "--connect-timeout is not a number of seconds";
        return NULL;
    case OPT_LOG:
        opt.log = true;
        return NULL;
    case OPT_TO_TLS:
        opt.to_tls = true;
        return NULL;
    case OPT_TLS_CA:
        opt.tls_ca = arg;
        return NULL;
    case OPT_TLS_NAME:
        opt.tls_name = arg;
        return NULL;
    case OPT_TLS_NO_VERIFY:
        opt.tls_no_verify = true;
        return NULL;
    case OPT_SPLICE:
        opt.splice = true;
        return NULL;
    }
    return "unknown option";
}

/* The client TLS context for the upstream (--to-tls); exits on failure. */
static void upstream_tls_context(void)
{
    nc_tls_options o;
    char why[512] = "";
    int err;

    if (!opt.to_tls) {
        if (opt.tls_ca || opt.tls_name || opt.tls_no_verify)
            args_usage_error(PROG, "--tls-ca, --tls-name and "
                             "--tls-no-verify need --to-tls");
        return;
    }
    memset(&o, 0, sizeof o);
    o.ca_file = opt.tls_ca;
    o.verify_peer_off = opt.tls_no_verify;
    err = nc_tls_client_new(&o, &opt.upstream_tls, why, sizeof why);
    if (err < 0) {
        fprintf(stderr, "%s: cannot speak TLS to the upstream: %s\n", PROG,
                why[0] ? why : nc_strerror(err));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    static const nc_conn_callbacks client_cbs = {
        client_open, on_data, on_drain, on_close
    };
    static const serve_extra extra = { proxy_options, parse_option };
    serve_config cfg;
    int err;

    serve_parse_args(&cfg, argc, argv, PROG, "*:7000", true, &extra, usage);
    /* A log line per pair, written whole even when stdout is a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (opt.to == NULL)
        args_usage_error(PROG, "--to UPSTREAM is required");
    upstream_tls_context();
    opt.client_tls = cfg.tls_cert != NULL;
    /* Both sides: half-close, and the same idle timeout. The flow
     * control is the pair's own (PAUSE_AT, on_drain at RESUME_AT): the
     * library's high_water would also pause reading a side whose own
     * output is stuck, which ties the two directions together, and an
     * upstream that does the same (an echo) then waits on us while we
     * wait on it. */
    cfg.options.conn.half_close = true;
    cfg.options.conn.high_water = SIZE_MAX;
    cfg.options.conn.low_water = RESUME_AT;
    opt.conn = cfg.options.conn;
    cfg.callbacks = &client_cbs;
    cfg.summary = summary;
    err = serve_run(&cfg);
    nc_tls_ctx_free(opt.upstream_tls);
    return err == 0 ? 0 : 1;
}
