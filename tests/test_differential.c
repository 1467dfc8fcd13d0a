/* test_differential.c - seeded differential scenarios: one peer behaviour
 * and one application behaviour, run on four configurations (epoll plain,
 * io_uring plain, epoll TLS, io_uring TLS), which must agree with each
 * other and with the contract of include/netcore.h.
 *
 * A scenario (struct scen, printed as one line, see scen_format) has:
 *
 * - options: high_water and low_water (small, large, default, low_water
 *   above high_water), keep_half_open, an idle timeout (only in the
 *   "slow reader drains a large reply after a close" shape), small socket
 *   buffers (SO_SNDBUF 4 KiB on the server's socket, SO_RCVBUF 4 KiB on
 *   the peer's) so that output queues up in the library, echo on or off,
 *   and the write call the application uses (nc_conn_write, writev in
 *   pieces, nc_conn_write_owned).
 * - the input, as messages (1 byte to 256 KiB) and a trailing partial
 *   message: the application consumes whole messages only, so what it
 *   consumes does not depend on how the bytes were split into reads.
 * - the peer's script: sends (split into send calls of a chunk size, not
 *   aligned to messages), waits expressed as "until on_data has seen N
 *   bytes", "until the peer received N bytes", "for K loop iterations",
 *   "until the application is quiet" (never a sleep), read modes
 *   (normal; slow: at most R bytes per loop iteration; stopped for K
 *   iterations; paced: R bytes every 2 ms, only in the idle-timeout
 *   shape, where the reader must stay slower than the timeout), and its
 *   end: FIN (TLS:
 *   close_notify then FIN), close_notify alone (TLS; FIN in plain), a raw
 *   FIN (TLS without close_notify: the one place where TLS may differ),
 *   or RST (SO_LINGER 0 and close).
 * - the application's acts at message boundaries (after consuming the
 *   Nth message; 0 is on_open, "e" the end call of keep_half_open):
 *   pause reading (nc_conn_read_stop) and resume from nc_loop_defer, from
 *   a timer, or from the test between loop iterations after K of them;
 *   write N extra bytes now, or later from one of those three places
 *   (reading is stopped meanwhile, so the output stays in a known
 *   order); nc_conn_shutdown; nc_conn_close now or later; nc_conn_abort.
 *
 * The peer is a non-blocking socket (and for TLS an OpenSSL client over
 * it) pumped from the loop's thread between iterations; an nc_watch on
 * its descriptor only wakes the loop when the peer has something to do,
 * and a guard timer bounds every iteration. A model (model_run) computes
 * what the contract promises: the bytes on_data consumes, the bytes the
 * application wrote (and which writes fail with -EPIPE after a
 * shutdown), the close reason and err, the end call, and how the peer's
 * stream ends. Every byte on_data sees and every byte the peer receives
 * is checked against its source offset. A run that loops without doing
 * anything (many iterations in which no callback ran, no byte moved, the
 * guard timer did not fire and the peer did nothing) is reported as
 * spinning. Every run is bounded (3 s; 60 s under valgrind).
 *
 * A failing scenario prints the command that replays it alone (its seed,
 * and its description), the model's expectations, the four observations
 * side by side (bytes consumed, seen, written, received by the peer, how
 * the peer's stream ended, the close reason and err), the first differing
 * byte offsets between configurations, and each violation.
 *
 * Differences allowed between the configurations, and why:
 * - a TLS peer that ends with a raw FIN (no close_notify) gives
 *   NC_CLOSE_PEER with -NC_ETLS_TRUNCATED where plain gives 0 (the header,
 *   nc_close_reason); every byte is still delivered first.
 * - NC_CLOSE_RESET carries -ECONNRESET or -EPIPE: which one depends on
 *   whether the library was reading or writing when the RST came.
 * - after nc_conn_abort the peer may receive any prefix of what was
 *   written (a RST discards what is in flight); on_data's bytes are still
 *   compared exactly. After the peer's own RST, likewise for the peer's
 *   side.
 * - how many bytes on_data saw beyond what it consumed before a local
 *   close (the library may hand more in the same call).
 *
 * Scenarios avoid races that the contract leaves open: a peer ends only
 * once the application is quiet when the application closes on its own
 * (who closed first would otherwise be timing), and resets only once the
 * application is quiet.
 *
 * Environment: NC_DIFF_SEED (first seed), NC_DIFF_COUNT (how many),
 * NC_DIFF_SCENARIO (run one scenario given as its printed line),
 * NC_DIFF_CONFIGS (a subset: "epoll/plain,io_uring/tls"), NC_DIFF_VERBOSE=1
 * (print every scenario), NC_DIFF_SHRINK=1 (minimise each failing
 * scenario: drop acts and peer steps, merge sends, drop and halve
 * messages and writes, options back to defaults, as long as one kind of
 * violation stays in one configuration: NC_DIFF_SHRINK_TARGET picks it,
 * as "io_uring/tls:spin"; NC_DIFF_SHRINK_TRIES runs per candidate,
 * default 2), NC_DIFF_REPEAT=N (run each scenario N times). Without a seed,
 * the pass with NC_BACKEND=epoll (or none) runs seeds 1..100 and the pass
 * with NC_BACKEND=io_uring seeds 101..200: each pass runs all four
 * configurations (the comparison needs them side by side), and the two
 * passes of make check cover 200 different scenarios. Under valgrind only
 * the two epoll configurations run (valgrind cannot follow io_uring), on
 * 8 seeds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<openssl/ssl.h>)
#define DIFF_TLS 1
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif
#endif
#ifndef DIFF_TLS
#define DIFF_TLS 0
#endif

/* ---- scenarios -------------------------------------------------------- */

enum { MAXMSG = 10, MAXPOP = 48, MAXACT = 24 };

enum pop_kind {
    P_SEND,    /* a: bytes, b: per send call (0: all) */
    P_WSEEN,   /* until on_data has seen a bytes (or the app closed) */
    P_WRECV,   /* until the peer received a bytes (or its stream ended) */
    P_WITER,   /* a loop iterations */
    P_WQUIET,  /* until the app saw all that was sent and waits for nothing */
    P_READ,    /* sub: read mode; a: bytes per step when slow */
    P_END,     /* sub: end kind */
    P_RST      /* SO_LINGER 0 and close */
};
enum { RD_NORMAL, RD_SLOW, RD_STOP, RD_PACED };
enum { END_FIN, END_NOTIFY, END_RAW };
enum act_kind { A_PAUSE, A_WRITE, A_SHUT, A_CLOSE, A_ABORT };
enum how { H_NOW, H_DEFER, H_TIMER, H_DRIVER };
#define B_END 0xFFFFu

struct pop {
    uint8_t kind, sub;
    uint32_t a, b;
};

struct act {
    uint8_t kind, how;
    uint16_t at;       /* messages consumed; 0 on_open; B_END the end call */
    uint32_t n, k;     /* bytes to write; iterations for H_DRIVER */
};

struct scen {
    uint64_t seed;
    uint32_t hw, lw, idle_ms;
    bool khalf, small_bufs, echo;
    unsigned wmode;    /* 0 write, 1 writev, 2 write_owned */
    unsigned nmsg;
    uint32_t msg[MAXMSG];
    uint32_t trail;
    unsigned npop;
    struct pop pop[MAXPOP];
    unsigned nact;
    struct act act[MAXACT];
};

static uint64_t scen_total(const struct scen *s)
{
    uint64_t t = s->trail;
    for (unsigned i = 0; i < s->nmsg; i++)
        t += s->msg[i];
    return t;
}

/* ---- deterministic bytes ---------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

static void fill_bytes(uint8_t *p, size_t n, uint64_t salt, uint64_t off)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t o = off + i;
        uint64_t x = mix64((o >> 3) ^ salt);
        p[i] = (uint8_t)(x >> ((o & 7) * 8));
    }
}

static uint64_t input_salt(const struct scen *s)
{
    return mix64(s->seed * 0x9E3779B97F4A7C15ull + 17);
}

static uint64_t extra_salt(const struct scen *s, unsigned block)
{
    return mix64(s->seed * 0x9E3779B97F4A7C15ull + 1000003ull * (block + 1));
}

/* ---- random ------------------------------------------------------------ */

struct rng {
    uint64_t s;
};

static uint64_t rnext(struct rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return mix64(r->s);
}

static uint32_t rnd(struct rng *r, uint32_t n)
{
    return n ? (uint32_t)(rnext(r) % n) : 0;
}

/* Log-uniform in [lo, hi]. */
static uint32_t logu(struct rng *r, uint32_t lo, uint32_t hi)
{
    unsigned bits = 0;
    while (((uint64_t)lo << bits) < hi)
        bits++;
    uint64_t top = (uint64_t)lo << rnd(r, bits + 1);
    if (top > hi)
        top = hi;
    uint64_t base = top / 2 > lo ? top / 2 : lo;
    return (uint32_t)(base + rnd(r, (uint32_t)(top - base + 1)));
}

/* ---- the model ---------------------------------------------------------- */

struct model {
    uint64_t total;      /* bytes the peer sends */
    uint64_t consumed;   /* bytes on_data consumes */
    uint64_t out;        /* bytes the application's accepted writes hold */
    unsigned epipe;      /* writes refused with -EPIPE after the shutdown */
    int terminal;        /* -1, A_CLOSE or A_ABORT */
    bool shut;           /* nc_conn_shutdown was called */
    int end;             /* the peer's end: -1 none, END_*, 3 = RST */
    bool end_call;       /* keep_half_open's end call happens */
    uint64_t end_len;
};

/* What the application has done once it consumed every whole message in
 * the first upto bytes (upto = total: the whole run). */
static void model_run(const struct scen *s, uint64_t upto, struct model *m)
{
    memset(m, 0, sizeof(*m));
    m->terminal = -1;
    m->end = -1;
    m->total = scen_total(s);
    for (unsigned i = 0; i < s->npop; i++) {
        if (s->pop[i].kind == P_END)
            m->end = s->pop[i].sub;
        if (s->pop[i].kind == P_RST)
            m->end = 3;
    }
    unsigned ai = 0;
    uint64_t off = 0;
    for (unsigned b = 0; b <= s->nmsg; b++) {
        if (b > 0) {
            if (off + s->msg[b - 1] > upto)
                return;
            off += s->msg[b - 1];
            m->consumed = off;
            if (s->echo) {
                if (m->shut)
                    m->epipe++;
                else
                    m->out += s->msg[b - 1];
            }
        }
        for (; ai < s->nact && s->act[ai].at == b; ai++) {
            const struct act *a = &s->act[ai];
            switch (a->kind) {
            case A_WRITE:
                if (m->shut)
                    m->epipe++;
                else
                    m->out += a->n;
                break;
            case A_SHUT:
                m->shut = true;
                break;
            case A_CLOSE:
            case A_ABORT:
                m->terminal = a->kind;
                return;
            default:
                break;
            }
        }
    }
    if (upto < m->total || !s->khalf || m->end < 0 || m->end == 3)
        return;
    m->end_call = true;
    m->end_len = s->trail;
    m->consumed += s->trail;
    if (s->trail && s->echo) {
        if (m->shut)
            m->epipe++;
        else
            m->out += s->trail;
    }
    for (; ai < s->nact && s->act[ai].at == B_END; ai++) {
        const struct act *a = &s->act[ai];
        if (a->kind == A_WRITE) {
            if (m->shut)
                m->epipe++;
            else
                m->out += a->n;
        }
        if (a->kind == A_CLOSE || a->kind == A_ABORT) {
            m->terminal = a->kind;
            return;
        }
    }
}

/* ---- the generator ------------------------------------------------------ */

static void add_pop(struct scen *s, uint8_t kind, uint8_t sub, uint32_t a,
                    uint32_t b)
{
    if (s->npop < MAXPOP)
        s->pop[s->npop++] = (struct pop){ kind, sub, a, b };
}

static void add_act(struct scen *s, uint8_t kind, uint8_t how, unsigned at,
                    uint32_t n, uint32_t k)
{
    if (s->nact < MAXACT)
        s->act[s->nact++] = (struct act){ kind, how, (uint16_t)at, n, k };
}

/* A stop of reading is always followed by a bounded wait and a resume. */
static void add_read_stop(struct scen *s, struct rng *r)
{
    add_pop(s, P_READ, RD_STOP, 0, 0);
    add_pop(s, P_WITER, 0, 1 + rnd(r, 8), 0);
    if (rnd(r, 3) == 0)
        add_pop(s, P_READ, RD_SLOW, logu(r, 512, 16384), 0);
    else
        add_pop(s, P_READ, RD_NORMAL, 0, 0);
}

static void gen_idle(struct scen *s, struct rng *r)
{
    /* A slow reader drains a large reply while the connection closes
     * gracefully: write progress counts as activity for the idle timeout.
     * Three ways to be closing: nc_conn_close after the write; the reply
     * written in keep_half_open's end call; the reply written before the
     * peer's FIN, flushed after it. */
    s->idle_ms = 200;
    s->small_bufs = true;
    s->echo = true;
    s->nmsg = 1 + rnd(r, 3);
    for (unsigned i = 0; i < s->nmsg; i++)
        s->msg[i] = logu(r, 1, 2000);
    /* 64 or more paced reads of 2 ms: longer than the idle timeout */
    uint32_t big = 256 * 1024 + rnd(r, 256 * 1024);
    unsigned shape = rnd(r, 3);
    if (shape == 1) {
        s->khalf = true;
        add_act(s, A_WRITE, H_NOW, B_END, big, 0);
    } else {
        add_act(s, A_WRITE, H_NOW, s->nmsg, big, 0);
        if (shape == 0)
            add_act(s, A_CLOSE, H_NOW, s->nmsg, 0, 0);
    }
    add_pop(s, P_READ, RD_PACED, 1024 + rnd(r, 1024), 0);
    add_pop(s, P_SEND, 0, (uint32_t)scen_total(s), 0);
    if (shape == 0) {
        add_pop(s, P_WQUIET, 0, 0, 0);
        if (rnd(r, 2))
            add_pop(s, P_END, (uint8_t)rnd(r, 3), 0, 0);
    } else {
        add_pop(s, P_END, (uint8_t)rnd(r, 3), 0, 0);
    }
}

static void gen(struct scen *s, uint64_t seed)
{
    struct rng r = { seed * 0xD1B54A32D192ED03ull + 7 };
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->wmode = rnd(&r, 3);
    if (rnd(&r, 100) < 6) {
        gen_idle(s, &r);
        return;
    }
    static const uint32_t hws[] = { 0, 1024, 4096, 16384, 65536, 262144 };
    s->hw = hws[rnd(&r, 6)];
    if (s->hw) {
        switch (rnd(&r, 4)) {
        case 1: s->lw = s->hw / 2; break;
        case 2: s->lw = 1; break;
        case 3: s->lw = s->hw * 2 + 1; break;   /* taken as hw / 4 */
        default: break;
        }
    }
    s->khalf = rnd(&r, 2);
    s->small_bufs = rnd(&r, 10) < 3;
    s->echo = rnd(&r, 100) < 85;
    s->nmsg = 1 + rnd(&r, 6) + (rnd(&r, 4) == 0 ? rnd(&r, 4) : 0);
    uint64_t sum = 0;
    for (unsigned i = 0; i < s->nmsg; i++) {
        s->msg[i] = rnd(&r, 3) ? logu(&r, 1, 262144) : logu(&r, 1, 64);
        if (sum + s->msg[i] > 1024 * 1024)
            s->msg[i] = 1 + rnd(&r, 1000);
        sum += s->msg[i];
    }
    s->trail = rnd(&r, 10) < 3 ? 1 + rnd(&r, 3000) : 0;

    /* The application's acts. */
    bool terminal = false, shut = false;
    for (unsigned b = 0; b <= s->nmsg && !terminal; b++) {
        unsigned n = rnd(&r, 100) < 30 ? 1 + (rnd(&r, 4) == 0) : 0;
        for (unsigned j = 0; j < n && !terminal; j++) {
            unsigned k = rnd(&r, 100);
            uint8_t how = (uint8_t)(1 + rnd(&r, 3));   /* later */
            uint32_t iters = 1 + rnd(&r, 6);
            if (k < 35) {
                add_act(s, A_PAUSE, how, b, 0, iters);
            } else if (k < 72) {
                uint32_t bytes = rnd(&r, 4) ? logu(&r, 1, 65536)
                                            : logu(&r, 65536, 1024 * 1024);
                add_act(s, A_WRITE, rnd(&r, 2) ? H_NOW : how, b, bytes,
                        iters);
            } else if (k < 82) {
                if (!shut)
                    add_act(s, A_SHUT, H_NOW, b, 0, 0);
                shut = true;
            } else if (k < 93) {
                add_act(s, A_CLOSE, rnd(&r, 2) ? H_NOW : how, b, 0, iters);
                terminal = true;
            } else {
                add_act(s, A_ABORT, H_NOW, b, 0, 0);
                terminal = true;
            }
        }
    }
    if (!terminal && s->khalf && rnd(&r, 4) == 0)
        add_act(s, A_WRITE, H_NOW, B_END, logu(&r, 1, 300000), 0);

    /* The peer's script. */
    uint64_t total = scen_total(s);
    if (rnd(&r, 5) == 0)
        add_pop(s, P_READ, RD_SLOW, logu(&r, 512, 16384), 0);
    if (rnd(&r, 8) == 0)
        add_read_stop(s, &r);
    unsigned nseg = 1 + rnd(&r, 4);
    uint64_t cuts[5];
    for (unsigned i = 0; i + 1 < nseg; i++)
        cuts[i] = total ? rnext(&r) % (total + 1) : 0;
    cuts[nseg - 1] = total;
    for (unsigned i = 0; i + 1 < nseg; i++)      /* sort */
        for (unsigned j = i + 1; j + 1 < nseg; j++)
            if (cuts[j] < cuts[i]) {
                uint64_t t = cuts[i];
                cuts[i] = cuts[j];
                cuts[j] = t;
            }
    uint64_t sent = 0;
    for (unsigned i = 0; i < nseg; i++) {
        uint64_t len = cuts[i] - sent;
        if (len == 0 && i + 1 < nseg)
            continue;
        if (len)
            add_pop(s, P_SEND, 0, (uint32_t)len,
                    rnd(&r, 3) == 0 ? 0 : logu(&r, 1, 65536));
        sent += len;
        if (i + 1 == nseg)
            break;
        switch (rnd(&r, 6)) {
        case 0:
            add_pop(s, P_WSEEN, 0, (uint32_t)sent, 0);
            break;
        case 1:
            add_pop(s, P_WITER, 0, 1 + rnd(&r, 8), 0);
            break;
        case 2: {
            struct model m;
            model_run(s, sent, &m);
            if (m.out)
                add_pop(s, P_WRECV, 0, (uint32_t)(1 + rnext(&r) % m.out), 0);
            break;
        }
        case 3:
            add_read_stop(s, &r);
            break;
        case 4:
            add_pop(s, P_READ, rnd(&r, 2) ? RD_SLOW : RD_NORMAL,
                    logu(&r, 512, 16384), 0);
            break;
        default:
            break;
        }
    }
    unsigned e = rnd(&r, 100);
    if (terminal) {
        /* Who closes first must not be a race: the application, and the
         * peer's end follows once it is quiet. */
        add_pop(s, P_WQUIET, 0, 0, 0);
        if (e < 35)
            add_pop(s, P_END, END_FIN, 0, 0);
        else if (e < 50)
            add_pop(s, P_END, END_NOTIFY, 0, 0);
        else if (e < 65)
            add_pop(s, P_END, END_RAW, 0, 0);
    } else if (e < 15) {
        add_pop(s, P_WQUIET, 0, 0, 0);
        add_pop(s, P_RST, 0, 0, 0);
    } else {
        add_pop(s, P_END, e < 65 ? END_FIN : e < 82 ? END_NOTIFY : END_RAW,
                0, 0);
    }
}

/* ---- printing and parsing a scenario ------------------------------------ */

static const char how_ch[] = "ndtx";

static void scen_format(const struct scen *s, char *buf, size_t len)
{
    size_t o = 0;
#define OUT(...)                                                         \
    do {                                                                 \
        int w_ = snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__); \
        if (w_ > 0)                                                      \
            o += (size_t)w_;                                             \
    } while (0)
    OUT("hw=%u lw=%u kh=%d idle=%u sb=%d echo=%d wm=%u | m=", s->hw, s->lw,
        s->khalf, s->idle_ms, s->small_bufs, s->echo, s->wmode);
    for (unsigned i = 0; i < s->nmsg; i++)
        OUT("%s%u", i ? "," : "", s->msg[i]);
    OUT("+%u | p=", s->trail);
    for (unsigned i = 0; i < s->npop; i++) {
        const struct pop *p = &s->pop[i];
        if (i)
            OUT(",");
        switch (p->kind) {
        case P_SEND: OUT("S%u/%u", p->a, p->b); break;
        case P_WSEEN: OUT("WS%u", p->a); break;
        case P_WRECV: OUT("WR%u", p->a); break;
        case P_WITER: OUT("WI%u", p->a); break;
        case P_WQUIET: OUT("WQ"); break;
        case P_READ:
            if (p->sub == RD_SLOW || p->sub == RD_PACED)
                OUT("R%c%u", p->sub == RD_SLOW ? 'S' : 'P', p->a);
            else
                OUT("R%c", p->sub == RD_STOP ? 'X' : 'N');
            break;
        case P_END: OUT("E%c", "FNR"[p->sub % 3]); break;
        case P_RST: OUT("X"); break;
        default: OUT("?"); break;
        }
    }
    OUT(" | a=");
    for (unsigned i = 0; i < s->nact; i++) {
        const struct act *a = &s->act[i];
        if (i)
            OUT(",");
        if (a->at == B_END)
            OUT("e");
        else
            OUT("%u", a->at);
        switch (a->kind) {
        case A_PAUSE: OUT("P"); break;
        case A_WRITE: OUT("W%u", a->n); break;
        case A_SHUT: OUT("H"); break;
        case A_CLOSE: OUT("C"); break;
        default: OUT("A"); break;
        }
        if (a->kind == A_PAUSE || a->kind == A_WRITE || a->kind == A_CLOSE) {
            OUT("%c", how_ch[a->how & 3]);
            if (a->how == H_DRIVER)
                OUT("%u", a->k);
        }
    }
#undef OUT
}

static bool parse_u32(const char **p, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(*p, &end, 10);
    if (end == *p || errno || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    *p = end;
    return true;
}

static bool parse_how(const char **p, struct act *a)
{
    const char *h = strchr(how_ch, **p);
    if (!**p || !h)
        return false;
    a->how = (uint8_t)(h - how_ch);
    (*p)++;
    if (a->how == H_DRIVER && !parse_u32(p, &a->k))
        return false;
    return true;
}

static bool scen_parse(const char *text, struct scen *s)
{
    memset(s, 0, sizeof(*s));
    int kh, sb, echo;
    int n = 0;
    if (sscanf(text, "hw=%u lw=%u kh=%d idle=%u sb=%d echo=%d wm=%u | m=%n",
               &s->hw, &s->lw, &kh, &s->idle_ms, &sb, &echo, &s->wmode,
               &n) != 7 || n == 0)
        return false;
    s->khalf = kh;
    s->small_bufs = sb;
    s->echo = echo;
    const char *p = text + n;
    while (*p && *p != '+') {
        if (s->nmsg == MAXMSG || !parse_u32(&p, &s->msg[s->nmsg++]))
            return false;
        if (*p == ',')
            p++;
    }
    if (*p++ != '+' || !parse_u32(&p, &s->trail))
        return false;
    if (strncmp(p, " | p=", 5) != 0)
        return false;
    p += 5;
    while (*p && *p != ' ') {
        struct pop o = { 0 };
        switch (*p++) {
        case 'S':
            o.kind = P_SEND;
            if (!parse_u32(&p, &o.a) || *p++ != '/' || !parse_u32(&p, &o.b))
                return false;
            break;
        case 'W':
            switch (*p++) {
            case 'S': o.kind = P_WSEEN; break;
            case 'R': o.kind = P_WRECV; break;
            case 'I': o.kind = P_WITER; break;
            case 'Q': o.kind = P_WQUIET; break;
            default: return false;
            }
            if (o.kind != P_WQUIET && !parse_u32(&p, &o.a))
                return false;
            break;
        case 'R':
            o.kind = P_READ;
            switch (*p++) {
            case 'N': o.sub = RD_NORMAL; break;
            case 'X': o.sub = RD_STOP; break;
            case 'S':
            case 'P':
                o.sub = p[-1] == 'S' ? RD_SLOW : RD_PACED;
                if (!parse_u32(&p, &o.a))
                    return false;
                break;
            default: return false;
            }
            break;
        case 'E': {
            const char *k = strchr("FNR", *p);
            if (!*p || !k)
                return false;
            o.kind = P_END;
            o.sub = (uint8_t)(k - "FNR");
            p++;
            break;
        }
        case 'X': o.kind = P_RST; break;
        default: return false;
        }
        if (s->npop == MAXPOP)
            return false;
        s->pop[s->npop++] = o;
        if (*p == ',')
            p++;
    }
    if (strncmp(p, " | a=", 5) != 0)
        return false;
    p += 5;
    while (*p) {
        struct act a = { 0 };
        uint32_t at;
        if (*p == 'e') {
            a.at = B_END;
            p++;
        } else {
            if (!parse_u32(&p, &at) || at > s->nmsg)
                return false;
            a.at = (uint16_t)at;
        }
        switch (*p++) {
        case 'P':
            a.kind = A_PAUSE;
            if (!parse_how(&p, &a))
                return false;
            break;
        case 'W':
            a.kind = A_WRITE;
            if (!parse_u32(&p, &a.n) || !parse_how(&p, &a))
                return false;
            break;
        case 'H': a.kind = A_SHUT; break;
        case 'C':
            a.kind = A_CLOSE;
            if (!parse_how(&p, &a))
                return false;
            break;
        case 'A': a.kind = A_ABORT; break;
        default: return false;
        }
        if (s->nact == MAXACT)
            return false;
        s->act[s->nact++] = a;
        if (*p == ',')
            p++;
    }
    return true;
}

/* ---- configurations ------------------------------------------------------ */

struct cfgdef {
    const char *name;
    nc_backend backend;
    bool tls;
};

static const struct cfgdef cfgs[4] = {
    { "epoll/plain", NC_BACKEND_EPOLL, false },
    { "io_uring/plain", NC_BACKEND_IO_URING, false },
    { "epoll/tls", NC_BACKEND_EPOLL, true },
    { "io_uring/tls", NC_BACKEND_IO_URING, true },
};

static bool cfg_on[4];
static const char *cfg_off_why[4];
static char certs[PATH_MAX];
static nc_tls_ctx *server_tls;
#if DIFF_TLS
static SSL_CTX *client_tls;
#endif

/* ---- one run: the application ------------------------------------------- */

struct run;

struct app {
    struct run *r;
    nc_conn *c;
    bool opened, terminal;
    int closes;
    nc_close_reason reason;
    int err;
    uint64_t consumed, seen;
    unsigned next_msg, next_act;
    bool shut;
    int shut_rc;
    bool pending;
    uint8_t pkind, phow;
    uint32_t pn, countdown;
    nc_timer *timer;
    uint8_t *w;
    size_t wlen, wcap;
    unsigned epipe;
    int other_werr;
    unsigned extra_blocks;
    unsigned eof_calls, zero_len_calls;
    uint64_t end_len;
    int64_t bad_in;
    bool data_while_paused, data_after_close;
    unsigned long callbacks;
    uint8_t *scratch;
    size_t scratch_cap;
};

enum { PE_NONE, PE_CLEAN, PE_TRUNC, PE_RESET, PE_ERROR };
static const char *const pe_name[] = { "none", "clean", "trunc", "reset",
                                       "error" };

struct peer {
    struct run *r;
    int fd;
#if DIFF_TLS
    SSL *ssl;
#endif
    bool tls, connected, hs_done, hs_failed;
    unsigned pc;
    bool op_started;
    uint64_t op_left;
    uint32_t op_iters;
    uint64_t sent;
    int rmode;
    uint32_t slow;
    uint8_t *in;
    size_t in_len, in_cap;
    int end, end_errno;
    bool sent_notify, sent_fin, did_rst, closed, send_failed;
    int send_errno;
    bool want_write, want_read_hs, want_write_hs, script_done;
    nc_watch *w;
    unsigned interest;
    unsigned long progress;
    uint64_t paced_at;
};

struct run {
    const struct scen *s;
    const uint8_t *input;
    const struct cfgdef *cfg;
    nc_loop *loop;
    nc_listener *l;
    nc_timer *guard;
    bool guard_fired;
    struct app app;
    struct peer peer;
    unsigned iters, empty;
    bool timeout;
    int setup_err;
    const char *setup_what;
    double ms;
};

static void app_grow(struct app *a, size_t n)
{
    if (a->wlen + n > a->wcap) {
        size_t cap = a->wcap ? a->wcap : 65536;
        while (cap < a->wlen + n)
            cap *= 2;
        a->w = realloc(a->w, cap);
        assert_non_null(a->w);
        a->wcap = cap;
    }
}

static void owned_free(void *data, void *arg)
{
    (void)arg;
    free(data);
}

static void app_write(struct app *a, const uint8_t *p, size_t n)
{
    const struct scen *s = a->r->s;
    int rc;
    if (s->wmode == 1 && n >= 3) {
        struct iovec iov[3] = {
            { (void *)p, n / 3 },
            { (void *)(p + n / 3), n / 3 },
            { (void *)(p + 2 * (n / 3)), n - 2 * (n / 3) },
        };
        rc = nc_conn_writev(a->c, iov, 3);
    } else if (s->wmode == 2) {
        void *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, p, n);
        rc = nc_conn_write_owned(a->c, copy, n, owned_free, NULL);
        if (rc < 0)
            free(copy);
    } else {
        rc = nc_conn_write(a->c, p, n);
    }
    if (rc == 0) {
        app_grow(a, n);
        memcpy(a->w + a->wlen, p, n);
        a->wlen += n;
    } else if (rc == -EPIPE && a->shut) {
        a->epipe++;
    } else if (!a->other_werr) {
        a->other_werr = rc;
    }
}

static void app_extra(struct app *a, uint32_t n)
{
    if (n > a->scratch_cap) {
        free(a->scratch);
        a->scratch = malloc(n);
        assert_non_null(a->scratch);
        a->scratch_cap = n;
    }
    fill_bytes(a->scratch, n, extra_salt(a->r->s, a->extra_blocks++), 0);
    app_write(a, a->scratch, n);
}

static void pending_fire(struct app *a);

static void pending_defer(void *arg)
{
    pending_fire(arg);
}

static void pending_timer(nc_timer *t, void *ud)
{
    (void)t;
    pending_fire(ud);
}

static void set_pending(struct app *a, uint8_t kind, uint8_t how, uint32_t n,
                        uint32_t k)
{
    a->pending = true;
    a->pkind = kind;
    a->phow = how;
    a->pn = n;
    switch (how) {
    case H_DEFER:
        assert_int_equal(nc_loop_defer(a->r->loop, pending_defer, a), 0);
        break;
    case H_TIMER:
        assert_int_equal(nc_timer_start(a->timer, k % 2, 0), 0);
        break;
    default:
        a->countdown = k ? k : 1;
        break;
    }
}

/* Run the acts at boundary `at`. now_only (the end call): pauses are
 * pointless and later acts happen now; the output is the same. Returns
 * true when the application must stop consuming. */
static bool run_acts(struct app *a, unsigned at, bool now_only)
{
    const struct scen *s = a->r->s;
    while (a->next_act < s->nact && s->act[a->next_act].at == at) {
        const struct act *x = &s->act[a->next_act++];
        uint8_t how = now_only ? H_NOW : x->how;
        switch (x->kind) {
        case A_PAUSE:
            if (how == H_NOW)
                break;
            nc_conn_read_stop(a->c);
            set_pending(a, A_PAUSE, how, 0, x->k);
            return true;
        case A_WRITE:
            if (how == H_NOW) {
                app_extra(a, x->n);
                break;
            }
            nc_conn_read_stop(a->c);
            set_pending(a, A_WRITE, how, x->n, x->k);
            return true;
        case A_SHUT:
            a->shut_rc = nc_conn_shutdown(a->c);
            a->shut = true;
            break;
        case A_CLOSE:
            if (how == H_NOW) {
                a->terminal = true;
                nc_conn_close(a->c);
                return true;
            }
            nc_conn_read_stop(a->c);
            set_pending(a, A_CLOSE, how, 0, x->k);
            return true;
        default:
            a->terminal = true;
            nc_conn_abort(a->c);
            return true;
        }
    }
    return false;
}

static void pending_fire(struct app *a)
{
    if (!a->pending)
        return;
    a->pending = false;
    a->countdown = 0;
    if (a->closes || a->terminal || !a->c)
        return;
    a->callbacks++;
    if (a->pkind == A_WRITE) {
        app_extra(a, a->pn);
    } else if (a->pkind == A_CLOSE) {
        a->terminal = true;
        nc_conn_close(a->c);
        return;
    }
    if (run_acts(a, a->next_msg, false))
        return;
    nc_conn_read_start(a->c);
}

static void app_open(nc_conn *c, void *ud)
{
    struct app *a = ud;
    a->c = c;
    a->opened = true;
    a->callbacks++;
    if (a->r->s->small_bufs) {
        int v = 4096;
        setsockopt(nc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    }
    run_acts(a, 0, false);
}

static size_t app_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct app *a = ud;
    const struct scen *s = a->r->s;
    const uint8_t *d = data;
    a->callbacks++;
    if (a->terminal || a->closes) {
        a->data_after_close = true;
        return len;
    }
    if (a->pending) {
        a->data_while_paused = true;
        return 0;
    }
    uint64_t total = scen_total(s);
    if (a->bad_in < 0) {
        for (size_t i = 0; i < len; i++) {
            if (a->consumed + i >= total ||
                d[i] != a->r->input[a->consumed + i]) {
                a->bad_in = (int64_t)(a->consumed + i);
                break;
            }
        }
    }
    if (a->consumed + len > a->seen)
        a->seen = a->consumed + len;
    bool eof = nc_conn_eof(c);
    bool end_call = eof && s->khalf;
    if (len == 0)
        a->zero_len_calls++;
    if (end_call)
        a->eof_calls++;
    size_t used = 0;
    bool stop = false;
    while (!stop && a->next_msg < s->nmsg &&
           used + s->msg[a->next_msg] <= len) {
        size_t m = s->msg[a->next_msg];
        if (s->echo)
            app_write(a, d + used, m);
        used += m;
        a->consumed += m;
        a->next_msg++;
        stop = run_acts(a, a->next_msg, end_call);
    }
    if (end_call && !stop) {
        size_t rest = len - used;
        a->end_len = rest;
        if (rest && s->echo)
            app_write(a, d + used, rest);
        used += rest;
        a->consumed += rest;
        /* Acts at the last boundary that the library handed over only
         * now, then those of the end call. */
        if (!run_acts(a, a->next_msg, true))
            run_acts(a, B_END, true);
    }
    return used;
}

static void app_close(nc_conn *c, nc_close_reason reason, int err, void *ud)
{
    (void)c;
    struct app *a = ud;
    a->callbacks++;
    a->closes++;
    a->reason = reason;
    a->err = err;
    a->c = NULL;
}

static const nc_conn_callbacks app_cbs = {
    .on_open = app_open,
    .on_data = app_data,
    .on_close = app_close,
};

static bool app_quiet(const struct app *a, const struct peer *p)
{
    return a->closes || a->terminal || (!a->pending && a->seen >= p->sent);
}

/* ---- one run: the peer ---------------------------------------------------- */

static void peer_in_grow(struct peer *p, size_t n)
{
    if (p->in_len + n > p->in_cap) {
        size_t cap = p->in_cap ? p->in_cap : 65536;
        while (cap < p->in_len + n)
            cap *= 2;
        p->in = realloc(p->in, cap);
        assert_non_null(p->in);
        p->in_cap = cap;
    }
}

static void peer_set_end(struct peer *p, int end, int e)
{
    if (p->end == PE_NONE) {
        p->end = end;
        p->end_errno = e;
    }
}

static uint64_t mono_us(void);

/* A paced reader reads once per this many microseconds: with 1-2 KiB a
 * read (0.5-1 MB/s), a quarter of a megabyte takes longer than the idle
 * timeout (200 ms), and 64 KiB (what the kernel holds for it) less. */
enum { PACE_US = 2000 };

/* Read what the mode allows. */
static void peer_read(struct peer *p)
{
    if (p->rmode == RD_PACED) {
        uint64_t now = mono_us();
        if (now - p->paced_at < PACE_US)
            return;
        p->paced_at = now;
    }
    while (p->end == PE_NONE && !p->closed && p->hs_done &&
           p->rmode != RD_STOP) {
        size_t want = p->rmode == RD_SLOW || p->rmode == RD_PACED
                          ? p->slow : 65536;
        if (want == 0)
            want = 1;
        peer_in_grow(p, want);
        if (p->tls) {
#if DIFF_TLS
            ERR_clear_error();
            int n = SSL_read(p->ssl, p->in + p->in_len, (int)want);
            if (n > 0) {
                p->in_len += (size_t)n;
                p->progress++;
            } else {
                int e = SSL_get_error(p->ssl, n);
                int sys = errno;
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    ERR_clear_error();
                    return;
                }
                p->progress++;
                if (e == SSL_ERROR_ZERO_RETURN)
                    peer_set_end(p, PE_CLEAN, 0);
                else if (e == SSL_ERROR_SYSCALL &&
                         (sys == ECONNRESET || sys == EPIPE))
                    peer_set_end(p, PE_RESET, sys);
                else if (e == SSL_ERROR_SYSCALL)
                    peer_set_end(p, sys ? PE_ERROR : PE_TRUNC, sys);
                else if (e == SSL_ERROR_SSL &&
                         ERR_GET_REASON(ERR_peek_error()) ==
                             SSL_R_UNEXPECTED_EOF_WHILE_READING)
                    peer_set_end(p, PE_TRUNC, 0);
                else
                    peer_set_end(p, PE_ERROR, -(int)ERR_peek_error());
                ERR_clear_error();
                return;
            }
#endif
        } else {
            ssize_t n = recv(p->fd, p->in + p->in_len, want, MSG_DONTWAIT);
            if (n > 0) {
                p->in_len += (size_t)n;
                p->progress++;
            } else if (n == 0) {
                p->progress++;
                peer_set_end(p, PE_CLEAN, 0);
                return;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            } else if (errno != EINTR) {
                p->progress++;
                peer_set_end(p, errno == ECONNRESET || errno == EPIPE
                                    ? PE_RESET : PE_ERROR, errno);
                return;
            }
        }
        if (p->rmode == RD_SLOW || p->rmode == RD_PACED)
            return;
    }
}

/* Send up to n bytes: how many went, 0 when it would block, -1 failed. */
static long peer_send(struct peer *p, const uint8_t *buf, size_t n)
{
    if (p->tls) {
#if DIFF_TLS
        ERR_clear_error();
        int w = SSL_write(p->ssl, buf, (int)(n > INT_MAX ? INT_MAX : n));
        if (w > 0)
            return w;
        int e = SSL_get_error(p->ssl, w);
        int sys = errno;
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        p->send_errno = e == SSL_ERROR_SYSCALL ? sys : -e;
        return -1;
#else
        return -1;
#endif
    }
    ssize_t w = send(p->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0)
        return w;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    p->send_errno = errno;
    return -1;
}

/* The peer's end of stream; false to retry later. */
static bool peer_end_op(struct peer *p, int kind)
{
    if (p->closed)
        return true;
#if DIFF_TLS
    if (p->tls && kind != END_RAW && !p->sent_notify) {
        ERR_clear_error();
        int rc = SSL_shutdown(p->ssl);
        if (rc < 0) {
            int e = SSL_get_error(p->ssl, rc);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                p->want_write = true;
                return false;
            }
        }
        p->sent_notify = true;
        p->progress++;
    }
#endif
    if (!p->tls || kind == END_FIN || kind == END_RAW) {
        shutdown(p->fd, SHUT_WR);
        p->sent_fin = true;
        p->progress++;
    }
    return true;
}

static void peer_close_fd(struct peer *p, bool rst)
{
    if (p->closed)
        return;
    if (p->w) {
        nc_watch_close(p->w);
        p->w = NULL;
    }
    if (rst) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(p->fd);
    p->fd = -1;
    p->closed = true;
    p->progress++;
}

static void peer_script(struct peer *p)
{
    struct run *r = p->r;
    const struct scen *s = r->s;
    struct app *a = &r->app;
    while (p->pc < s->npop && !p->closed) {
        const struct pop *o = &s->pop[p->pc];
        switch (o->kind) {
        case P_SEND:
            if (!p->op_started) {
                p->op_left = o->a;
                p->op_started = true;
            }
            while (p->op_left && !p->send_failed) {
                size_t chunk = o->b && o->b < p->op_left ? o->b : p->op_left;
                long n = peer_send(p, r->input + p->sent, chunk);
                if (n == 0) {
                    p->want_write = true;
                    return;
                }
                if (n < 0) {
                    p->send_failed = true;
                    p->progress++;
                    /* A send can be the call that collects the reset:
                     * the next read then returns 0, not the error. */
                    if (p->send_errno == ECONNRESET ||
                        p->send_errno == EPIPE)
                        peer_set_end(p, PE_RESET, p->send_errno);
                    break;
                }
                p->sent += (uint64_t)n;
                p->op_left -= (uint64_t)n;
                p->progress++;
            }
            break;
        case P_WSEEN:
            if (a->seen < o->a && !a->closes && !a->terminal)
                return;
            break;
        case P_WRECV:
            if (p->in_len < o->a && p->end == PE_NONE)
                return;
            break;
        case P_WITER:
            if (!p->op_started) {
                p->op_iters = o->a;
                p->op_started = true;
            }
            if (p->op_iters > 0) {
                p->op_iters--;
                return;
            }
            break;
        case P_WQUIET:
            if (!app_quiet(a, p))
                return;
            break;
        case P_READ:
            p->rmode = o->sub;
            p->slow = o->a;
            break;
        case P_END:
            if (!peer_end_op(p, o->sub))
                return;
            break;
        case P_RST:
            p->did_rst = true;
            peer_close_fd(p, true);
            break;
        default:
            break;
        }
        p->pc++;
        p->op_started = false;
    }
    if (!p->script_done) {
        p->script_done = true;
        if (p->rmode == RD_STOP)
            p->rmode = RD_NORMAL;
    }
}

static void peer_watch_cb(nc_watch *w, int fd, unsigned events, void *ud)
{
    (void)w;
    (void)fd;
    (void)events;
    (void)ud;
}

static void peer_update_watch(struct peer *p)
{
    if (p->closed || !p->w)
        return;
    unsigned want = 0;
    if (!p->connected) {
        want = NC_WRITABLE;
    } else if (!p->hs_done) {
        want = (p->want_read_hs ? NC_READABLE : 0) |
               (p->want_write_hs ? NC_WRITABLE : 0);
    } else {
        if ((p->rmode == RD_NORMAL || p->rmode == RD_SLOW) &&
            p->end == PE_NONE)
            want |= NC_READABLE;
        if (p->want_write)
            want |= NC_WRITABLE;
    }
    if (want != p->interest) {
        assert_int_equal(nc_watch_set(p->w, want), 0);
        p->interest = want;
    }
}

static void peer_handshake(struct peer *p)
{
    if (!p->connected) {
        int e = 0;
        socklen_t el = sizeof(e);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getpeername(p->fd, (struct sockaddr *)&ss, &sl) == 0) {
            p->connected = true;
        } else {
            getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &el);
            if (e && e != EINPROGRESS) {
                p->hs_failed = true;
                return;
            }
            return;
        }
        if (!p->tls)
            p->hs_done = true;
        p->progress++;
    }
#if DIFF_TLS
    if (p->tls && !p->hs_done) {
        ERR_clear_error();
        int rc = SSL_do_handshake(p->ssl);
        p->want_read_hs = p->want_write_hs = false;
        if (rc == 1) {
            p->hs_done = true;
            p->progress++;
        } else {
            int e = SSL_get_error(p->ssl, rc);
            if (e == SSL_ERROR_WANT_READ)
                p->want_read_hs = true;
            else if (e == SSL_ERROR_WANT_WRITE)
                p->want_write_hs = true;
            else
                p->hs_failed = true;
        }
        ERR_clear_error();
    }
#endif
}

static void peer_step(struct peer *p)
{
    if (p->closed)
        return;
    p->want_write = false;
    if (!p->hs_done) {
        peer_handshake(p);
        if (!p->hs_done || !p->r->app.opened)
            return;
    }
    peer_read(p);
    peer_script(p);
    peer_read(p);
    /* Done with the script and the server's end seen: close, as any
     * client would (a plain close; the server's linger ends with it). */
    if (p->script_done && p->end != PE_NONE && !p->closed) {
#if DIFF_TLS
        if (p->tls && !p->sent_notify && p->end == PE_CLEAN) {
            ERR_clear_error();
            SSL_shutdown(p->ssl);
            ERR_clear_error();
            p->sent_notify = true;
        }
#endif
        peer_close_fd(p, false);
    }
}

static bool peer_immediate(const struct peer *p)
{
    if (p->closed)
        return false;
    if (p->pc < p->r->s->npop && p->r->s->pop[p->pc].kind == P_WITER)
        return true;
#if DIFF_TLS
    if (p->tls && p->hs_done && p->end == PE_NONE &&
        (p->rmode == RD_NORMAL || p->rmode == RD_SLOW) &&
        SSL_pending(p->ssl) > 0)
        return true;
#endif
    return false;
}

/* ---- one run ----------------------------------------------------------------- */

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void guard_cb(nc_timer *t, void *ud)
{
    (void)t;
    *(bool *)ud = true;
}

static unsigned run_limit_ms(void)
{
    return under_valgrind() ? 60000 : 3000;
}

static bool run_done(const struct run *r)
{
    const struct peer *p = &r->peer;
    if (p->hs_failed)
        return r->app.closes > 0;
    return r->app.closes > 0 && p->closed;
}

static void run_one(struct run *r)
{
    const struct scen *s = r->s;
    struct app *a = &r->app;
    struct peer *p = &r->peer;
    a->r = r;
    a->bad_in = -1;
    p->r = r;
    p->fd = -1;
    p->tls = r->cfg->tls;
    uint64_t t0 = mono_us();

    nc_loop_options lo = { .backend = r->cfg->backend };
    int rc = nc_loop_new_with(&r->loop, &lo);
    if (rc < 0) {
        r->setup_err = rc;
        r->setup_what = "nc_loop_new_with";
        return;
    }
    nc_listener_options o = {
        .conn = { .high_water = s->hw, .low_water = s->lw,
                  .keep_half_open = s->khalf, .idle_timeout_ms = s->idle_ms },
        .tls = r->cfg->tls ? server_tls : NULL,
    };
    if (under_valgrind() && s->idle_ms)
        o.conn.idle_timeout_ms = s->idle_ms * 10;
    rc = nc_listen(r->loop, "127.0.0.1:0", &o, &app_cbs, a, &r->l);
    assert_int_equal(rc, 0);
    assert_int_equal(nc_timer_new(r->loop, guard_cb, &r->guard_fired,
                                  &r->guard), 0);
    assert_int_equal(nc_timer_new(r->loop, pending_timer, a, &a->timer), 0);

    nc_addr addr = listener_addr0(r->l);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(p->fd >= 0);
    int one = 1;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (s->small_bufs) {
        /* In the idle-timeout shape the peer's buffer (doubled by the
         * kernel) is about the loopback MSS, 64 KiB: much smaller and the
         * receiver holds back its window updates (silly-window avoidance)
         * while the sender waits for its persist timer, 200 ms or more
         * with nothing moving; much larger and the last of the reply sits
         * in the kernel longer than the idle timeout while the peer
         * drains it, where the library sees no progress either. Both end
         * the connection rightly, as idle. */
        int v = s->idle_ms ? 32768 : 4096;
        setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    }
    rc = connect(p->fd, &addr.u.sa, addr.len);
    assert_true(rc == 0 || errno == EINPROGRESS);
#if DIFF_TLS
    if (p->tls) {
        p->ssl = SSL_new(client_tls);
        assert_non_null(p->ssl);
        SSL_set_fd(p->ssl, p->fd);
        SSL_set_connect_state(p->ssl);
    }
#endif
    assert_int_equal(nc_watch_start(r->loop, p->fd, NC_WRITABLE,
                                    peer_watch_cb, p, &p->w), 0);
    p->interest = NC_WRITABLE;

    uint64_t deadline = t0 + (uint64_t)run_limit_ms() * 1000u;
    nc_loop_stats st0, st1;
    while (!run_done(r)) {
        if (mono_us() >= deadline) {
            r->timeout = true;
            break;
        }
        unsigned long before = a->callbacks + p->progress;
        peer_step(p);
        if (a->pending && a->phow == H_DRIVER && a->countdown > 0 &&
            --a->countdown == 0)
            pending_fire(a);
        if (run_done(r))
            break;
        peer_update_watch(p);
        unsigned wait = 50;
        if ((a->pending && a->phow == H_DRIVER) || peer_immediate(p))
            wait = 0;
        else if (!p->closed && p->hs_done && p->rmode == RD_PACED &&
                 p->end == PE_NONE)
            wait = PACE_US / 1000;
        r->guard_fired = false;
        nc_timer_start(r->guard, wait, 0);
        nc_loop_stats_get(r->loop, &st0);
        rc = nc_loop_run(r->loop, NC_RUN_ONCE);
        assert_int_equal(rc, 0);
        nc_loop_stats_get(r->loop, &st1);
        r->iters++;
        if (!r->guard_fired && a->callbacks + p->progress == before &&
            st1.bytes_in == st0.bytes_in && st1.bytes_out == st0.bytes_out)
            r->empty++;
    }
    if (!p->closed)
        peer_close_fd(p, false);
    nc_timer_free(r->guard);
    nc_loop_free(r->loop);
    r->loop = NULL;
#if DIFF_TLS
    if (p->ssl)
        SSL_free(p->ssl);
    p->ssl = NULL;
#endif
    r->ms = (double)(mono_us() - t0) / 1000.0;
}

/* ---- checking ------------------------------------------------------------------- */

/* Kinds of violation, for minimising: a smaller scenario must keep one. */
enum {
    C_OPEN, C_TIMEOUT, C_CLOSES, C_BAD_IN, C_PAUSED, C_AFTER_CLOSE,
    C_BAD_RCV, C_SHUT, C_SPIN, C_CONSUMED, C_WRITTEN, C_EPIPE, C_WERR,
    C_ZERO, C_REASON, C_LOST, C_ENDCALL, C_PEER_END, C_RCVD, C_PEER_SEND,
    C_COUNT
};
static const char *const cat_name[C_COUNT] = {
    "open", "timeout", "closes", "bad-input", "data-while-paused",
    "data-after-close", "bad-output", "shutdown", "spin", "consumed",
    "written", "epipe", "write-error", "zero-len", "close-reason",
    "lost-before-end", "end-call", "peer-end", "peer-received", "peer-send",
};

struct obs {
    bool ran;
    const char *skip;
    uint64_t consumed, seen, written, rcvd;
    int64_t bad_in, bad_rcv;
    unsigned epipe;
    int other_werr, shut_rc;
    int peer_end, peer_errno;
    bool peer_send_failed;
    int send_errno;
    int closes;
    nc_close_reason reason;
    int err;
    unsigned eof_calls, zero_len_calls;
    uint64_t end_len;
    bool data_while_paused, data_after_close, timeout, hs_failed, opened;
    unsigned iters, empty;
    double ms;
    uint8_t *w, *in;   /* kept for the comparison between configurations */
    unsigned cats;     /* the kinds of violation, 1 << C_* */
    char why[1024];
};

static void why_add(struct obs *o, unsigned cat, const char *fmt, ...)
{
    o->cats |= 1u << cat;
    size_t n = strlen(o->why);
    if (n + 4 >= sizeof(o->why))
        return;
    if (n)
        n += (size_t)snprintf(o->why + n, sizeof(o->why) - n, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->why + n, sizeof(o->why) - n, fmt, ap);
    va_end(ap);
}

static const char *reason_short(nc_close_reason r)
{
    static const char *const names[] = { "?", "PEER", "RESET", "IDLE",
                                         "LOCAL", "ERROR", "SHUTDOWN",
                                         "CONNECT_FAILED", "DEADLINE",
                                         "TLS" };
    return (unsigned)r <= NC_CLOSE_TLS ? names[r] : "?";
}

static void obs_from_run(struct obs *o, struct run *r)
{
    struct app *a = &r->app;
    struct peer *p = &r->peer;
    o->ran = true;
    o->consumed = a->consumed;
    o->seen = a->seen;
    o->written = a->wlen;
    o->rcvd = p->in_len;
    o->bad_in = a->bad_in;
    o->bad_rcv = -1;
    for (size_t i = 0; i < p->in_len; i++) {
        if (i >= a->wlen || p->in[i] != a->w[i]) {
            o->bad_rcv = (int64_t)i;
            break;
        }
    }
    o->epipe = a->epipe;
    o->other_werr = a->other_werr;
    o->shut_rc = a->shut_rc;
    o->peer_end = p->end;
    o->peer_errno = p->end_errno;
    o->peer_send_failed = p->send_failed;
    o->send_errno = p->send_errno;
    o->closes = a->closes;
    o->reason = a->reason;
    o->err = a->err;
    o->eof_calls = a->eof_calls;
    o->zero_len_calls = a->zero_len_calls;
    o->end_len = a->end_len;
    o->data_while_paused = a->data_while_paused;
    o->data_after_close = a->data_after_close;
    o->timeout = r->timeout;
    o->hs_failed = p->hs_failed;
    o->opened = a->opened;
    o->iters = r->iters;
    o->empty = r->empty;
    o->ms = r->ms;
    o->w = a->w;
    o->in = p->in;
    a->w = NULL;
    p->in = NULL;
    free(a->scratch);
}

/* A run spinning: many loop iterations in which nothing happened (no
 * callback, no byte moved, the guard timer did not fire, the peer did
 * nothing), and most of its iterations such. Healthy runs have next to
 * none: a wait ends with an event that moves something, or the guard. */
static bool spinning(const struct obs *o)
{
    return o->empty >= 100 && o->empty * 2 > o->iters;
}

/* Check one configuration against the model. */
static void check_obs(const struct scen *s, const struct model *m,
                      const struct cfgdef *cfg, struct obs *o)
{
    if (!o->opened) {
        why_add(o, C_OPEN, "never opened (close %s %s)", reason_short(o->reason),
                nc_errname(o->err));
        return;
    }
    if (o->timeout)
        why_add(o, C_TIMEOUT, "did not end within %u ms", run_limit_ms());
    if (o->closes != 1)
        why_add(o, C_CLOSES, "on_close ran %d times", o->closes);
    if (o->bad_in >= 0)
        why_add(o, C_BAD_IN, "on_data saw a wrong byte at input offset %lld",
                (long long)o->bad_in);
    if (o->data_while_paused)
        why_add(o, C_PAUSED, "on_data called while reading was stopped");
    if (o->data_after_close)
        why_add(o, C_AFTER_CLOSE, "on_data called after nc_conn_close/abort");
    if (o->bad_rcv >= 0)
        why_add(o, C_BAD_RCV, "peer received a wrong byte at output offset %lld",
                (long long)o->bad_rcv);
    if (o->shut_rc)
        why_add(o, C_SHUT, "nc_conn_shutdown returned %s", nc_errname(o->shut_rc));
    if (spinning(o))
        why_add(o, C_SPIN, "spinning: %u loop iterations without progress",
                o->empty);
    /* A peer's reset may destroy what it sent and the application had not
     * taken yet: with reading paused (backpressure or read_stop) the
     * reset is seen at once, as the header says, so consumption may stop
     * anywhere before the model's (what was consumed is still checked
     * byte by byte), and what follows from it (the echo, later writes)
     * with it. */
    bool reset_cut = m->end == 3 && o->closes == 1 &&
                     o->reason == NC_CLOSE_RESET && o->consumed < m->consumed;
    if (o->consumed != m->consumed && !reset_cut)
        why_add(o, C_CONSUMED, "on_data consumed %llu bytes, the model %llu (first "
                "differing input offset %llu)",
                (unsigned long long)o->consumed,
                (unsigned long long)m->consumed,
                (unsigned long long)(o->consumed < m->consumed
                                         ? o->consumed : m->consumed));
    if (o->written != m->out && !reset_cut)
        why_add(o, C_WRITTEN, "the application's writes took %llu bytes, the model "
                "%llu", (unsigned long long)o->written,
                (unsigned long long)m->out);
    if (o->epipe != m->epipe && !reset_cut)
        why_add(o, C_EPIPE, "%u writes refused with EPIPE after the shutdown, the "
                "model %u", o->epipe, m->epipe);
    if (o->other_werr)
        why_add(o, C_WERR, "a write failed with %s", nc_errname(o->other_werr));
    if (o->zero_len_calls && !s->khalf)
        why_add(o, C_ZERO, "on_data with len 0 without keep_half_open");
    if (o->zero_len_calls > o->eof_calls)
        why_add(o, C_ZERO, "on_data with len 0 that is not the end call");

    /* The close. */
    nc_close_reason want = NC_CLOSE_LOCAL;
    bool reset_ok = false;
    int want_err = 0;
    if (m->terminal < 0) {
        if (m->end == 3) {
            want = NC_CLOSE_RESET;
            reset_ok = true;
        } else {
            want = NC_CLOSE_PEER;
            if (cfg->tls && m->end == END_RAW)
                want_err = -NC_ETLS_TRUNCATED;
        }
    }
    if (o->closes == 1) {
        bool ok = o->reason == want &&
                  (reset_ok ? (o->err == -ECONNRESET || o->err == -EPIPE)
                            : o->err == want_err);
        if (!ok)
            why_add(o, C_REASON, "closed %s %s, the model %s %s",
                    reason_short(o->reason), nc_errname(o->err),
                    reason_short(want),
                    reset_ok ? "ECONNRESET|EPIPE" : nc_errname(want_err));
    }
    /* Every byte before the peer's end of stream is delivered. */
    if (o->reason == NC_CLOSE_PEER && o->seen != m->total)
        why_add(o, C_LOST, "the peer's end reported after on_data saw %llu of %llu "
                "bytes (first lost input offset %llu)",
                (unsigned long long)o->seen, (unsigned long long)m->total,
                (unsigned long long)o->seen);
    if (m->terminal < 0 && o->seen != m->total && o->closes == 1 &&
        !reset_cut)
        if (o->reason != NC_CLOSE_PEER)
            why_add(o, C_LOST, "on_data saw %llu of %llu bytes",
                    (unsigned long long)o->seen,
                    (unsigned long long)m->total);
    if (s->khalf) {
        unsigned want_calls = m->end_call ? 1 : 0;
        if (o->eof_calls != want_calls)
            why_add(o, C_ENDCALL, "%u end calls, the model %u", o->eof_calls,
                    want_calls);
        else if (want_calls && o->end_len != m->end_len)
            why_add(o, C_ENDCALL, "the end call carried %llu bytes, the model %llu",
                    (unsigned long long)o->end_len,
                    (unsigned long long)m->end_len);
    }
    /* Every byte written before a graceful close reaches the peer. */
    bool aborted = m->terminal == A_ABORT;
    if (m->end == 3) {
        /* the peer reset: what it read before is a prefix */
    } else if (aborted) {
        /* A TLS peer's own write may collect the reset (an alert, a
         * key update), leaving its read at a bare end: a truncation. */
        int want_end = m->shut ? PE_CLEAN : PE_RESET;
        if (o->peer_end != want_end && o->peer_end != PE_RESET &&
            !(cfg->tls && o->peer_end == PE_TRUNC))
            why_add(o, C_PEER_END, "after the abort the peer saw %s",
                    pe_name[o->peer_end]);
    } else {
        if (o->rcvd != o->written)
            why_add(o, C_RCVD, "the peer received %llu of %llu bytes written "
                    "(first missing output offset %llu)",
                    (unsigned long long)o->rcvd,
                    (unsigned long long)o->written,
                    (unsigned long long)o->rcvd);
        /* After a graceful close the library lingers only while it knows
         * the peer is sending (bytes it left unread); a peer that starts
         * sending after a close that found it silent is met with a reset
         * by the kernel. Nothing written is lost then, which the check
         * above holds. */
        bool late_sender = m->terminal == A_CLOSE && o->rcvd == o->written &&
                           o->peer_end == PE_RESET;
        if (o->peer_end != PE_CLEAN && !late_sender)
            why_add(o, C_PEER_END, "the peer's stream ended %s (%s), not clean",
                    pe_name[o->peer_end], strerror(o->peer_errno > 0
                                                       ? o->peer_errno : 0));
    }
    if (o->peer_send_failed && m->terminal < 0 && m->end != 3)
        why_add(o, C_PEER_SEND, "a peer send failed (%s)", strerror(o->send_errno > 0
                                                           ? o->send_errno
                                                           : 0));
}

/* ---- running a scenario on every configuration --------------------------------- */

static const char *argv0 = "build/tests/test_differential";
static bool verbose;

static void print_obs_table(const struct obs *obs)
{
    printf("    %-15s %9s %9s %9s %9s %6s %-22s %4s %6s %6s %8s\n", "config",
           "consumed", "seen", "written", "rcvd", "end", "close", "eof",
           "iters", "empty", "ms");
    for (int i = 0; i < 4; i++) {
        const struct obs *o = &obs[i];
        if (!o->ran) {
            printf("    %-15s (not run: %s)\n", cfgs[i].name,
                   o->skip ? o->skip : "?");
            continue;
        }
        char close[64];
        snprintf(close, sizeof(close), "%s %s", reason_short(o->reason),
                 nc_errname(o->err));
        printf("    %-15s %9llu %9llu %9llu %9llu %6s %-22s %4u %6u %6u "
               "%8.1f\n", cfgs[i].name, (unsigned long long)o->consumed,
               (unsigned long long)o->seen, (unsigned long long)o->written,
               (unsigned long long)o->rcvd, pe_name[o->peer_end], close,
               o->eof_calls, o->iters, o->empty, o->ms);
    }
}

/* First offset where two byte streams differ (or the shorter length). */
static uint64_t first_diff(const uint8_t *a, uint64_t na, const uint8_t *b,
                           uint64_t nb)
{
    uint64_t n = na < nb ? na : nb;
    for (uint64_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return n;
}

static void print_divergence(const struct obs *obs)
{
    int ref = -1;
    for (int i = 0; i < 4 && ref < 0; i++)
        if (obs[i].ran)
            ref = i;
    if (ref < 0)
        return;
    for (int i = ref + 1; i < 4; i++) {
        const struct obs *a = &obs[ref], *b = &obs[i];
        if (!b->ran)
            continue;
        if (a->consumed != b->consumed || a->bad_in != b->bad_in)
            printf("    on_data: %s and %s differ from input offset %llu\n",
                   cfgs[ref].name, cfgs[i].name,
                   (unsigned long long)(a->consumed < b->consumed
                                            ? a->consumed : b->consumed));
        if (a->rcvd != b->rcvd ||
            first_diff(a->in, a->rcvd, b->in, b->rcvd) < a->rcvd)
            printf("    peer received: %s and %s differ from output offset "
                   "%llu\n", cfgs[ref].name, cfgs[i].name,
                   (unsigned long long)first_diff(a->in, a->rcvd, b->in,
                                                  b->rcvd));
        if (a->reason != b->reason || a->err != b->err)
            printf("    close: %s %s %s | %s %s %s\n", cfgs[ref].name,
                   reason_short(a->reason), nc_errname(a->err), cfgs[i].name,
                   reason_short(b->reason), nc_errname(b->err));
    }
}

static void model_print(const struct model *m)
{
    printf("    model: consumed %llu of %llu, written %llu, %u EPIPE, "
           "end call %s (%llu bytes), close %s\n",
           (unsigned long long)m->consumed, (unsigned long long)m->total,
           (unsigned long long)m->out, m->epipe, m->end_call ? "yes" : "no",
           (unsigned long long)m->end_len,
           m->terminal >= 0 ? "LOCAL 0"
           : m->end == 3    ? "RESET"
           : m->end == END_RAW ? "PEER 0 (TLS: NC_ETLS_TRUNCATED)"
                               : "PEER 0");
}

/* Run s on every configuration that is on; true if all is well. With
 * quiet, print nothing. */
static bool run_scen(const struct scen *s, bool quiet, struct obs *out)
{
    uint64_t total = scen_total(s);
    uint8_t *input = malloc(total ? total : 1);
    assert_non_null(input);
    fill_bytes(input, total, input_salt(s), 0);
    struct model m;
    model_run(s, total, &m);
    struct obs obs[4];
    memset(obs, 0, sizeof(obs));
    bool ok = true;
    for (int i = 0; i < 4; i++) {
        if (!cfg_on[i]) {
            obs[i].skip = cfg_off_why[i];
            continue;
        }
        struct run *r = calloc(1, sizeof(*r));
        assert_non_null(r);
        r->s = s;
        r->input = input;
        r->cfg = &cfgs[i];
        run_one(r);
        if (r->setup_err) {
            obs[i].skip = r->setup_what;
            free(r->app.w);
            free(r->peer.in);
            free(r->app.scratch);
            free(r);
            continue;
        }
        obs_from_run(&obs[i], r);
        free(r);
        check_obs(s, &m, &cfgs[i], &obs[i]);
        if (obs[i].why[0])
            ok = false;
    }
    if ((!ok && !quiet) || verbose) {
        char desc[4096];
        scen_format(s, desc, sizeof(desc));
        if (!ok) {
            printf("FAIL seed %llu\n", (unsigned long long)s->seed);
            if (s->seed)
                printf("    replay: NC_DIFF_SEED=%llu NC_DIFF_COUNT=1 %s\n",
                       (unsigned long long)s->seed, argv0);
            printf("    replay: NC_DIFF_SCENARIO='%s' %s\n", desc, argv0);
        } else {
            printf("ok   seed %llu\n", (unsigned long long)s->seed);
        }
        printf("    scenario: %s\n", desc);
        model_print(&m);
        print_obs_table(obs);
        print_divergence(obs);
        for (int i = 0; i < 4; i++)
            if (obs[i].why[0])
                printf("    %s: %s\n", cfgs[i].name, obs[i].why);
        fflush(stdout);
    }
    for (int i = 0; i < 4; i++) {
        if (out)
            out[i] = obs[i];
        free(obs[i].w);
        free(obs[i].in);
        if (out)
            out[i].w = out[i].in = NULL;
    }
    free(input);
    return ok;
}

/* ---- minimising a failing scenario ------------------------------------------ */

static uint64_t env_u64(const char *name, uint64_t dflt);

/* What minimising keeps: a kind of violation in one configuration. */
static int shrink_cfg, shrink_cat;

/* Whether s still shows the kept violation, trying up to tries times. */
static bool still_fails(const struct scen *s, unsigned tries)
{
    for (unsigned i = 0; i < tries; i++) {
        struct obs obs[4];
        run_scen(s, true, obs);
        if (obs[shrink_cfg].cats & (1u << shrink_cat))
            return true;
    }
    return false;
}

/* The violation to keep: NC_DIFF_SHRINK_TARGET ("io_uring/tls:spin"), or
 * the first of the most telling kinds. */
static bool shrink_pick(const struct obs *obs)
{
    static const int order[] = { C_PAUSED, C_SPIN, C_TIMEOUT, C_LOST,
                                 C_REASON, C_WERR, C_ENDCALL, C_CONSUMED,
                                 C_EPIPE, C_RCVD, C_PEER_END, C_WRITTEN };
    const char *t = getenv("NC_DIFF_SHRINK_TARGET");
    if (t && *t) {
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < C_COUNT; c++) {
                char name[64];
                snprintf(name, sizeof(name), "%s:%s", cfgs[i].name,
                         cat_name[c]);
                if (strcmp(name, t) == 0 && (obs[i].cats & (1u << c))) {
                    shrink_cfg = i;
                    shrink_cat = c;
                    return true;
                }
            }
        return false;
    }
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        for (int i = 0; i < 4; i++)
            if (obs[i].cats & (1u << order[k])) {
                shrink_cfg = i;
                shrink_cat = order[k];
                return true;
            }
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < C_COUNT; c++)
            if (obs[i].cats & (1u << c)) {
                shrink_cfg = i;
                shrink_cat = c;
                return true;
            }
    return false;
}

/* Remove the sends' dependence on the message sizes: one send of the
 * whole input, with the chunk size of the first send. */
static void resend_all(struct scen *s)
{
    uint32_t chunk = 0;
    unsigned j = 0;
    bool done = false;
    for (unsigned i = 0; i < s->npop; i++) {
        if (s->pop[i].kind == P_SEND) {
            if (done)
                continue;
            chunk = s->pop[i].b;
            s->pop[j] = s->pop[i];
            s->pop[j].a = (uint32_t)scen_total(s);
            s->pop[j].b = chunk;
            j++;
            done = true;
            continue;
        }
        if (s->pop[i].kind == P_WSEEN || s->pop[i].kind == P_WRECV)
            continue;
        s->pop[j++] = s->pop[i];
    }
    s->npop = j;
}

/* A scenario that ends: the application closes, or the peer ends or
 * resets. */
static bool scen_ends(const struct scen *s)
{
    for (unsigned i = 0; i < s->nact; i++)
        if (s->act[i].kind == A_CLOSE || s->act[i].kind == A_ABORT)
            return true;
    for (unsigned i = 0; i < s->npop; i++)
        if (s->pop[i].kind == P_END || s->pop[i].kind == P_RST)
            return true;
    return false;
}

static bool sends_ok(const struct scen *s)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < s->npop; i++)
        if (s->pop[i].kind == P_SEND)
            sum += s->pop[i].a;
    return sum == scen_total(s);
}

static void shrink(struct scen *best)
{
    unsigned tries = (unsigned)env_u64("NC_DIFF_SHRINK_TRIES", 2);
    bool progress = true;
    while (progress) {
        progress = false;
        struct scen c;
        /* Drop an act. */
        for (unsigned i = 0; i < best->nact; i++) {
            c = *best;
            memmove(&c.act[i], &c.act[i + 1],
                    (c.nact - i - 1) * sizeof(c.act[0]));
            c.nact--;
            if (scen_ends(&c) && still_fails(&c, tries)) {
                *best = c;
                progress = true;
                i--;
            }
        }
        /* Drop a wait or a change of read mode (never the end, the reset,
         * or the wait for quiet that keeps them out of a race). */
        for (unsigned i = 0; i < best->npop; i++) {
            uint8_t k = best->pop[i].kind;
            if (k == P_SEND || k == P_END || k == P_RST || k == P_WQUIET)
                continue;
            c = *best;
            memmove(&c.pop[i], &c.pop[i + 1],
                    (c.npop - i - 1) * sizeof(c.pop[0]));
            c.npop--;
            if (still_fails(&c, tries)) {
                *best = c;
                progress = true;
                i--;
            }
        }
        /* One send of everything. */
        c = *best;
        resend_all(&c);
        if (c.npop != best->npop && still_fails(&c, tries)) {
            *best = c;
            progress = true;
        }
        /* Drop a message (acts after it move down one boundary). */
        for (unsigned i = 0; best->nmsg > 1 && i < best->nmsg; i++) {
            c = *best;
            uint32_t gone = c.msg[i];
            memmove(&c.msg[i], &c.msg[i + 1],
                    (c.nmsg - i - 1) * sizeof(c.msg[0]));
            c.nmsg--;
            for (unsigned j = 0; j < c.nact; j++)
                if (c.act[j].at != B_END && c.act[j].at > i)
                    c.act[j].at--;
            /* the sends shrink by the same amount: take it off the last
             * send that is long enough */
            for (unsigned j = c.npop; j-- > 0;) {
                if (c.pop[j].kind == P_SEND && c.pop[j].a >= gone) {
                    c.pop[j].a -= gone;
                    break;
                }
            }
            for (unsigned j = 0; j < c.npop; j++)
                if ((c.pop[j].kind == P_WSEEN) && c.pop[j].a > scen_total(&c))
                    c.pop[j].a = (uint32_t)scen_total(&c);
            if (sends_ok(&c) && still_fails(&c, tries)) {
                *best = c;
                progress = true;
                i--;
            }
        }
        /* Halve a message, a write, the trailing bytes. */
        for (unsigned i = 0; i < best->nmsg; i++) {
            if (best->msg[i] < 2)
                continue;
            c = *best;
            uint32_t cut = c.msg[i] - c.msg[i] / 2;
            c.msg[i] /= 2;
            for (unsigned j = c.npop; j-- > 0;) {
                if (c.pop[j].kind == P_SEND && c.pop[j].a >= cut) {
                    c.pop[j].a -= cut;
                    break;
                }
            }
            for (unsigned j = 0; j < c.npop; j++)
                if ((c.pop[j].kind == P_WSEEN) && c.pop[j].a > scen_total(&c))
                    c.pop[j].a = (uint32_t)scen_total(&c);
            if (sends_ok(&c) && still_fails(&c, tries)) {
                *best = c;
                progress = true;
            }
        }
        for (unsigned i = 0; i < best->nact; i++) {
            if (best->act[i].kind != A_WRITE || best->act[i].n < 2)
                continue;
            c = *best;
            c.act[i].n /= 2;
            if (still_fails(&c, tries)) {
                *best = c;
                progress = true;
            }
        }
        if (best->trail) {
            c = *best;
            uint32_t cut = c.trail;
            c.trail = 0;
            for (unsigned j = c.npop; j-- > 0;) {
                if (c.pop[j].kind == P_SEND && c.pop[j].a >= cut) {
                    c.pop[j].a -= cut;
                    break;
                }
            }
            if (sends_ok(&c) && still_fails(&c, tries)) {
                *best = c;
                progress = true;
            }
        }
        /* Options back to their defaults. */
        uint32_t *opts[] = { &best->hw, &best->lw };
        for (unsigned i = 0; i < 2; i++) {
            if (!*opts[i])
                continue;
            c = *best;
            if (i == 0)
                c.hw = 0;
            else
                c.lw = 0;
            if (still_fails(&c, tries)) {
                *best = c;
                progress = true;
            }
        }
        if (best->small_bufs || best->wmode || !best->echo) {
            c = *best;
            c.small_bufs = false;
            c.wmode = 0;
            if (still_fails(&c, tries)) {
                *best = c;
                progress = true;
            }
        }
    }
}

/* ---- main ----------------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    return strtoull(v, NULL, 10);
}

static void setup_configs(void)
{
    const char *only = getenv("NC_DIFF_CONFIGS");
    for (int i = 0; i < 4; i++) {
        cfg_on[i] = true;
        if (only && *only && !strstr(only, cfgs[i].name)) {
            cfg_on[i] = false;
            cfg_off_why[i] = "not in NC_DIFF_CONFIGS";
            continue;
        }
        if (under_valgrind() && cfgs[i].backend == NC_BACKEND_IO_URING) {
            cfg_on[i] = false;
            cfg_off_why[i] = "valgrind cannot follow io_uring";
            continue;
        }
        nc_loop_options lo = { .backend = cfgs[i].backend };
        nc_loop *l = NULL;
        int rc = nc_loop_new_with(&l, &lo);
        if (rc < 0) {
            cfg_on[i] = false;
            cfg_off_why[i] = "the backend cannot run here";
            continue;
        }
        nc_loop_free(l);
        if (cfgs[i].tls && !server_tls) {
            cfg_on[i] = false;
            cfg_off_why[i] = "no TLS in this build";
        }
    }
}

static int make_tls(void)
{
#if DIFF_TLS
    nc_tls_ctx *probe = NULL;
    if (nc_tls_client_new(NULL, &probe, NULL, 0) == -ENOTSUP)
        return 0;
    nc_tls_ctx_free(probe);
    char tmpl[] = "/tmp/nc-test-diff.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(certs, sizeof(certs), "%s", tmpl);
    const char *root = getenv("NC_SOURCE_DIR");
    char cmd[PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/tls-certs.sh' '%s'",
             root ? root : ".", certs);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_differential: cannot make certificates (%s)\n",
                cmd);
        return -1;
    }
    char crt[PATH_MAX + 32], key[PATH_MAX + 32];
    snprintf(crt, sizeof(crt), "%s/server.pem", certs);
    snprintf(key, sizeof(key), "%s/server.key", certs);
    nc_tls_options o = { .cert_file = crt, .key_file = key };
    char why[256] = "";
    if (nc_tls_server_new(&o, &server_tls, why, sizeof(why)) < 0) {
        fprintf(stderr, "test_differential: %s\n", why);
        return -1;
    }
    client_tls = SSL_CTX_new(TLS_client_method());
    if (!client_tls)
        return -1;
    SSL_CTX_set_verify(client_tls, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(client_tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#endif
    return 0;
}

static void drop_tls(void)
{
    nc_tls_ctx_free(server_tls);
    server_tls = NULL;
#if DIFF_TLS
    SSL_CTX_free(client_tls);
    client_tls = NULL;
#endif
    if (certs[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
        if (system(cmd) != 0)
            fprintf(stderr, "test_differential: cannot remove %s\n", certs);
    }
}

static void differential_scenarios(void **state)
{
    (void)state;
    verbose = env_u64("NC_DIFF_VERBOSE", 0) != 0;
    bool do_shrink = env_u64("NC_DIFF_SHRINK", 0) != 0;
    unsigned repeat = (unsigned)env_u64("NC_DIFF_REPEAT", 1);
    if (repeat == 0)
        repeat = 1;
    const char *backend = getenv("NC_BACKEND");
    bool uring_pass = backend && strcmp(backend, "io_uring") == 0;
    uint64_t first = env_u64("NC_DIFF_SEED", uring_pass ? 101 : 1);
    uint64_t count = env_u64("NC_DIFF_COUNT",
                             getenv("NC_DIFF_SEED") ? 1
                             : under_valgrind()     ? 8 : 100);
    const char *text = getenv("NC_DIFF_SCENARIO");
    for (int i = 0; i < 4; i++)
        if (!cfg_on[i])
            printf("differential: %s not run: %s\n", cfgs[i].name,
                   cfg_off_why[i]);

    unsigned failed = 0, runs = 0;
    uint64_t t0 = mono_us();
    char failing[4096] = "";
    if (text) {
        struct scen s;
        if (!scen_parse(text, &s) || !sends_ok(&s))
            fail_msg("NC_DIFF_SCENARIO: cannot read '%s' (or its sends do "
                     "not add up to its messages)", text);
        for (unsigned k = 0; k < repeat; k++, runs++)
            if (!run_scen(&s, false, NULL))
                failed++;
    } else {
        for (uint64_t seed = first; seed < first + count; seed++) {
            struct scen s;
            gen(&s, seed);
            bool bad = false;
            struct obs last[4];
            for (unsigned k = 0; k < repeat; k++, runs++)
                if (!run_scen(&s, false, last))
                    bad = true;
            if (!bad)
                continue;
            failed++;
            size_t n = strlen(failing);
            snprintf(failing + n, sizeof(failing) - n, "%s%llu",
                     n ? " " : "", (unsigned long long)seed);
            if (do_shrink && shrink_pick(last)) {
                struct scen small = s;
                bool saved[4];
                memcpy(saved, cfg_on, sizeof(saved));
                for (int i = 0; i < 4; i++)
                    cfg_on[i] = saved[i] && i == shrink_cfg;
                shrink(&small);
                memcpy(cfg_on, saved, sizeof(saved));
                small.seed = 0;
                char desc[4096];
                scen_format(&small, desc, sizeof(desc));
                printf("MINIMISED seed %llu, keeping %s:%s:\n"
                       "    NC_DIFF_SCENARIO='%s' %s\n",
                       (unsigned long long)seed, cfgs[shrink_cfg].name,
                       cat_name[shrink_cat], desc, argv0);
                run_scen(&small, false, NULL);
            }
        }
    }
    printf("differential: %u scenario runs, %u failed, %.1f s\n", runs,
           failed, (double)(mono_us() - t0) / 1e6);
    if (failing[0])
        printf("differential: failing seeds: %s\n", failing);
    fflush(stdout);
    if (failed)
        fail_msg("%u of %u scenarios failed (see above)", failed, runs);
}

static int group_setup(void **state)
{
    (void)state;
    if (make_tls() < 0)
        return -1;
    setup_configs();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    drop_tls();
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (argv[0])
        argv0 = argv[0];
    signal(SIGPIPE, SIG_IGN);   /* OpenSSL's socket writes */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(differential_scenarios),
    };
    return cmocka_run_group_tests_name("differential", tests, group_setup,
                                       group_teardown);
}
