/* test_peercount.c - max_conns_per_addr: a listener caps the connections
 * one peer address holds (the rest are reset at accept and counted as
 * shed) while other addresses are admitted, the count stays exact however
 * connections close, IPv4-mapped peers count as IPv4, Unix peers are not
 * capped; and the table behind it (lib/peercount.c) under many addresses
 * and churn. Clients come from several loopback addresses (127.0.0.0/8). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"
#include "peercount.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A blocking TCP client from source address src (port chosen by the
 * kernel) to a; -errno on failure. */
static int client_from(const char *src, const nc_addr *a)
{
    struct sockaddr_in from = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    if (connect(fd, &a->u.sa, a->len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static bool shed_n_goal(void *arg)
{
    struct server *s = arg;
    nc_listener_stats st;
    nc_listener_stats_get(s->l, &st);
    return st.shed >= (uint64_t)s->last_err;
}

/* Run s's loop until its listener has shed n connections. */
static bool shed_n(struct server *s, int n)
{
    s->last_err = n;
    bool ok = run_until(s->loop, shed_n_goal, s, 5000);
    s->last_err = 0;
    return ok;
}

/* The server resets fd at accept: the client reads ECONNRESET. Runs the
 * loop until the listener counted it. */
static void assert_reset(struct server *s, int fd, int shed_so_far)
{
    assert_true(fd >= 0);
    assert_true(shed_n(s, shed_so_far));
    char c;
    assert_int_equal(read_full(fd, &c, 1, 2000), -ECONNRESET);
    close(fd);
}

static void over_the_cap_one_address_is_reset_while_another_is_admitted(
    void **state)
{
    (void)state;
    nc_loop *loop;
    struct server s;
    nc_listener_options o = { .max_conns_per_addr = 3 };
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", &o, SERVER_ECHO),
                     0);
    int one[3];
    for (int i = 0; i < 3; i++) {
        one[i] = client_from("127.0.0.1", &s.addr);
        assert_true(one[i] >= 0);
    }
    assert_true(server_wait_opened(&s, 3));
    /* A fourth from 127.0.0.1 is reset; 127.0.0.2 is let in. */
    assert_reset(&s, client_from("127.0.0.1", &s.addr), 1);
    int two = client_from("127.0.0.2", &s.addr);
    assert_true(two >= 0);
    assert_true(server_wait_opened(&s, 4));
    nc_listener_stats st;
    nc_listener_stats_get(s.l, &st);
    assert_int_equal(st.accepted, 4);
    assert_int_equal(st.active, 4);
    assert_int_equal(st.shed, 1);
    nc_loop_stats ls;
    assert_int_equal(nc_loop_stats_get(loop, &ls), 0);
    assert_int_equal(ls.shed, 1);
    assert_int_equal(ls.accepted, 4);

    /* One of 127.0.0.1's closes: the next one from there is admitted,
     * and the one after it is reset again. */
    close(one[0]);
    assert_true(server_wait_closed(&s, 1));
    one[0] = client_from("127.0.0.1", &s.addr);
    assert_true(one[0] >= 0);
    assert_true(server_wait_opened(&s, 5));
    assert_int_equal(write(one[0], "hi", 2), 2);
    char buf[2];
    assert_true(server_wait_bytes(&s, 2, 2000));
    assert_int_equal(read_full(one[0], buf, 2, 2000), 2);
    assert_reset(&s, client_from("127.0.0.1", &s.addr), 2);
    for (int i = 0; i < 3; i++)
        close(one[i]);
    close(two);
    nc_loop_free(loop);
    assert_true(server_all_closed_once(&s));
    server_free(&s);
}

/* Close connections from one address every way a connection closes: the
 * peer's FIN, the peer's reset, the server's close, the idle timeout, the
 * listener's close. Each must give back exactly one place: afterwards
 * the cap admits exactly cap connections again. */
static void count_stays_exact_however_connections_close(void **state)
{
    (void)state;
    enum { CAP = 2, ROUNDS = 8 };
    nc_loop *loop;
    struct server s;
    nc_listener_options o = { .max_conns_per_addr = CAP,
                              .conn.idle_timeout_ms = 100 };
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, "127.0.0.1:0", &o,
                                  SERVER_CLOSE_IN_DATA), 0);
    unsigned long opened = 0, closed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int fd[CAP], how[CAP];
        for (int i = 0; i < CAP; i++) {
            fd[i] = client_from("127.0.0.3", &s.addr);
            assert_true(fd[i] >= 0);
        }
        opened += CAP;
        assert_true(server_wait_opened(&s, opened));
        for (int i = 0; i < CAP; i++) {
            how[i] = (r * CAP + i) % 4;
            if (how[i] == 1) {          /* the peer resets */
                struct linger lg = { 1, 0 };
                setsockopt(fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            }
            if (how[i] <= 1)            /* 0: the peer closes (FIN) */
                close(fd[i]);
            else if (how[i] == 2)       /* the server closes ("bye") */
                assert_int_equal(write(fd[i], "x", 1), 1);
            /* 3: the idle timeout closes it */
        }
        closed += CAP;
        assert_true(server_wait_closed(&s, closed));
        for (int i = 0; i < CAP; i++) {
            char buf[8];
            if (how[i] >= 2) {
                assert_true(read_full(fd[i], buf, sizeof(buf), 2000) >= 0);
                close(fd[i]);
            }
        }
    }
    assert_true(s.by_reason[NC_CLOSE_PEER] > 0);
    assert_true(s.by_reason[NC_CLOSE_RESET] > 0);
    assert_true(s.by_reason[NC_CLOSE_LOCAL] > 0);
    assert_true(s.by_reason[NC_CLOSE_IDLE] > 0);
    /* Exactly CAP again, then a reset. */
    int fd[CAP];
    for (int i = 0; i < CAP; i++)
        fd[i] = client_from("127.0.0.3", &s.addr);
    assert_true(server_wait_opened(&s, opened + CAP));
    assert_reset(&s, client_from("127.0.0.3", &s.addr), 1);
    /* The listener's close closes them too. */
    nc_listener_close(s.l);
    assert_true(server_wait_closed(&s, closed + CAP));
    for (int i = 0; i < CAP; i++)
        close(fd[i]);
    nc_loop_free(loop);
    assert_true(server_all_closed_once(&s));
    server_free(&s);
}

static void unix_peers_are_not_capped(void **state)
{
    (void)state;
    char spec[64];
    snprintf(spec, sizeof(spec), "unix:/tmp/nc-peercount-%d.sock",
             (int)getpid());
    nc_loop *loop;
    struct server s;
    nc_listener_options o = { .max_conns_per_addr = 1 };
    assert_int_equal(nc_loop_new(&loop), 0);
    assert_int_equal(server_start(&s, loop, spec, &o, SERVER_ECHO), 0);
    int fd[3];
    for (int i = 0; i < 3; i++)
        fd[i] = client_connect(&s.addr);
    assert_true(server_wait_opened(&s, 3));
    nc_listener_stats st;
    nc_listener_stats_get(s.l, &st);
    assert_int_equal(st.shed, 0);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    nc_loop_free(loop);
    server_free(&s);
}

/* Behind the workers' hand-off the cap is each worker's: its adopter
 * asks the socket for its peer. Worker 0 takes client 1 and 3, worker 1
 * client 2: with a cap of 1, client 3 is reset. */
static void cap_applies_per_worker_behind_the_hand_off(void **state)
{
    (void)state;
    nc_workers_options wo = { .threads = 2,
                              .accept = NC_WORKERS_ACCEPT_HANDOFF };
    nc_workers *w;
    nc_listener_options o = { .max_conns_per_addr = 1 };
    const nc_conn_callbacks cbs = { 0 };
    assert_int_equal(nc_workers_start(&wo, &w), 0);
    assert_int_equal(nc_workers_listen(w, "127.0.0.1:0", &o, &cbs, NULL),
                     NC_WORKERS_ACCEPT_HANDOFF);
    nc_addr a;
    size_t n;
    assert_int_equal(nc_workers_addrs(w, &a, 1, &n), 0);
    int fd[3];
    nc_loop_stats sum;
    for (int i = 0; i < 3; i++) {
        fd[i] = client_from("127.0.0.4", &a);
        assert_true(fd[i] >= 0);
        /* One at a time, so that the turns are known. */
        time_t until = time(NULL) + 5;
        do
            assert_true(nc_workers_stats(w, NULL, 0, &sum) >= 0);
        while (sum.accepted + sum.shed < (uint64_t)i + 1 &&
               time(NULL) <= until && sched_yield() == 0);
        assert_int_equal(sum.accepted + sum.shed, i + 1);
    }
    assert_int_equal(sum.accepted, 2);
    assert_int_equal(sum.shed, 1);
    char c;
    assert_int_equal(read_full(fd[2], &c, 1, 2000), -ECONNRESET);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    nc_workers_free(w);
}

/* ---- the table ---------------------------------------------------------- */

static struct sockaddr_in v4(uint32_t host_order)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(host_order);
    return a;
}

static struct sockaddr_in6 v6(const char *text)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
    assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
    return a;
}

#define SA(x) ((const struct sockaddr *)&(x)), sizeof(x)

static void ipv4_mapped_peers_count_as_ipv4(void **state)
{
    (void)state;
    struct peercount pc;
    nc__peercount_init(&pc, 2);
    struct sockaddr_in a = v4(0x7f000001);
    struct sockaddr_in6 mapped = v6("::ffff:127.0.0.1"), one = v6("::1");
    assert_int_equal(nc__peercount_add(&pc, 10, SA(a)), PEER_IN);
    assert_int_equal(nc__peercount_add(&pc, 11, SA(mapped)), PEER_IN);
    assert_int_equal(nc__peercount_add(&pc, 12, SA(a)), PEER_OVER);
    assert_int_equal(nc__peercount_add(&pc, 12, SA(mapped)), PEER_OVER);
    assert_int_equal(nc__peercount_add(&pc, 12, SA(one)), PEER_IN);
    assert_int_equal(nc__peercount_get(&pc, SA(a)), 2);
    nc__peercount_remove(&pc, 11);
    nc__peercount_remove(&pc, 11);      /* once only */
    assert_int_equal(nc__peercount_get(&pc, SA(mapped)), 1);
    /* Not IP: let in, never counted. */
    struct sockaddr_un { sa_family_t f; char p[8]; } un = { AF_UNIX, "x" };
    assert_int_equal(nc__peercount_add(&pc, 13, SA(un)), PEER_IN);
    nc__peercount_remove(&pc, 13);
    assert_int_equal(nc__peercount_get(&pc, SA(a)), 1);
    nc__peercount_free(&pc);

    /* Off (0): counts nothing and allocates nothing. */
    nc__peercount_init(&pc, 0);
    assert_int_equal(nc__peercount_add(&pc, 10, SA(a)), PEER_IN);
    assert_null(pc.slots);
    assert_null(pc.by_fd);
    nc__peercount_free(&pc);
}

/* Thousands of addresses come and go in random order: every count stays
 * exact (checked against a plain array), and the table does not keep
 * what has gone. */
static void many_addresses_churn_and_counts_stay_exact(void **state)
{
    (void)state;
    enum { FDS = 4000, ADDRS = 1500, STEPS = 60000 };
    struct peercount pc;
    nc__peercount_init(&pc, 3);
    static uint32_t addr_of[FDS];       /* 0: fd not counted */
    static unsigned count[ADDRS];
    srand(21);
    for (int step = 0; step < STEPS; step++) {
        int fd = rand() % FDS;
        if (addr_of[fd]) {
            count[addr_of[fd] - 1]--;
            addr_of[fd] = 0;
            nc__peercount_remove(&pc, fd);
            continue;
        }
        uint32_t k = (uint32_t)(rand() % ADDRS);
        struct sockaddr_in a = v4(0x0a000000u + k * 7919u);
        enum peer_verdict v = nc__peercount_add(&pc, fd, SA(a));
        assert_int_equal(v, count[k] < 3 ? PEER_IN : PEER_OVER);
        if (v == PEER_IN) {
            count[k]++;
            addr_of[fd] = k + 1;
        }
    }
    unsigned live = 0;
    for (uint32_t k = 0; k < ADDRS; k++) {
        struct sockaddr_in a = v4(0x0a000000u + k * 7919u);
        assert_int_equal(nc__peercount_get(&pc, SA(a)), count[k]);
        live += count[k] > 0;
    }
    assert_int_equal(pc.used, live);
    for (int fd = 0; fd < FDS; fd++)
        nc__peercount_remove(&pc, fd);
    assert_int_equal(pc.used, 0);
    nc__peercount_free(&pc);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(over_the_cap_one_address_is_reset_while_another_is_admitted),
        cmocka_unit_test(count_stays_exact_however_connections_close),
        cmocka_unit_test(unix_peers_are_not_capped),
        cmocka_unit_test(cap_applies_per_worker_behind_the_hand_off),
        cmocka_unit_test(ipv4_mapped_peers_count_as_ipv4),
        cmocka_unit_test(many_addresses_churn_and_counts_stay_exact),
    };
    return cmocka_run_group_tests_name("peercount", tests, NULL, NULL);
}
