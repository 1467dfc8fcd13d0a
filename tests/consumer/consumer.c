/*
 * consumer.c - a program outside the tree, built only with the flags
 * `pkg-config --cflags --libs libnetcore` gives, to prove an installed
 * libnetcore works: it echoes "ping" over loopback through its own
 * listener and prints "consumer ok".
 */
#include <netcore.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define DEADLINE_MS 5000

static const char ping[] = "ping";
#define PING_LEN (sizeof ping - 1)

struct consumer {
    nc_loop *loop;
    nc_listener *listener;
    nc_timer *deadline;
    char reply[PING_LEN];
    size_t reply_len;
    bool done;
    bool tearing_down;  /* set before the final frees; see main() */
    char failure[512];
};

/* Record the first failure and stop the loop. */
static void fail(struct consumer *st, const char *fmt, ...)
{
    if (st->failure[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->failure, sizeof st->failure, fmt, ap);
        va_end(ap);
    }
    nc_loop_stop(st->loop);
}

/* Everything is over, well or not: release what keeps the loop busy. */
static void finish(struct consumer *st)
{
    nc_timer_stop(st->deadline);
    nc_listener_close(st->listener);
    st->listener = NULL;
    nc_loop_stop(st->loop);
}

static void on_deadline(nc_timer *t, void *ud)
{
    (void)t;
    fail(ud, "no echo within %d ms", DEADLINE_MS);
}

/* Server side: send back whatever arrives. */
static size_t server_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    int err = nc_conn_write(c, data, len);
    if (err < 0)
        fail(ud, "server: nc_conn_write: %s", nc_strerror(err));
    return len;
}

static void client_open(nc_conn *c, void *ud)
{
    int err = nc_conn_write(c, ping, PING_LEN);
    if (err < 0)
        fail(ud, "client: nc_conn_write: %s", nc_strerror(err));
}

static size_t client_data(nc_conn *c, const void *data, size_t len, void *ud)
{
    struct consumer *st = ud;
    size_t room = PING_LEN - st->reply_len;
    size_t take = len < room ? len : room;

    memcpy(st->reply + st->reply_len, data, take);
    st->reply_len += take;
    if (st->reply_len == PING_LEN) {
        if (memcmp(st->reply, ping, PING_LEN) != 0)
            fail(st, "echo was '%.*s', expected '%s'", (int)PING_LEN,
                 st->reply, ping);
        else
            st->done = true;
        nc_conn_close(c);
    }
    return len;
}

static void client_close(nc_conn *c, nc_close_reason reason, int err,
                         void *ud)
{
    struct consumer *st = ud;
    (void)c;
    if (st->tearing_down)
        return;
    if (!st->done) {
        if (reason == NC_CLOSE_CONNECT_FAILED)
            fail(st, "connect failed: %s (%s)", nc_strerror(err),
                 nc_explain(NC_OP_CONNECT, err));
        else
            fail(st, "connection closed before the echo: %s%s%s",
                 nc_close_reason_name(reason), err ? ": " : "",
                 err ? nc_strerror(err) : "");
    }
    finish(st);
}

static int run(struct consumer *st)
{
    static const nc_conn_callbacks server = {.on_data = server_data};
    static const nc_conn_callbacks client = {
        .on_open = client_open,
        .on_data = client_data,
        .on_close = client_close,
    };
    char why[256] = "";
    char text[NC_ADDRSTRLEN];
    nc_endpoint ep;
    nc_addr bound;
    int err;

    err = nc_endpoint_parse(&ep, "127.0.0.1:0", why, sizeof why);
    if (err < 0) {
        fail(st, "nc_endpoint_parse: %s (%s)", why, nc_strerror(err));
        return -1;
    }
    err = nc_endpoint_format(&ep, text, sizeof text);
    if (err < 0) {
        fail(st, "nc_endpoint_format: %s", nc_strerror(err));
        return -1;
    }

    err = nc_timer_new(st->loop, on_deadline, st, &st->deadline);
    if (err == 0)
        err = nc_timer_start(st->deadline, DEADLINE_MS, 0);
    if (err < 0) {
        fail(st, "timer: %s", nc_strerror(err));
        return -1;
    }

    err = nc_listen(st->loop, text, NULL, &server, st, &st->listener);
    if (err < 0) {
        fail(st, "nc_listen %s: %s (%s)", text, nc_strerror(err),
             nc_explain(NC_OP_BIND, err));
        return -1;
    }
    err = nc_listener_addr(st->listener, 0, &bound);
    if (err < 0) {
        fail(st, "nc_listener_addr: %s", nc_strerror(err));
        return -1;
    }
    if (nc_addr_port(&bound) == 0) {
        fail(st, "listener reports port 0 after binding");
        return -1;
    }
    err = nc_addr_format(&bound, text, sizeof text);
    if (err < 0) {
        fail(st, "nc_addr_format: %s", nc_strerror(err));
        return -1;
    }

    err = nc_connect(st->loop, text, NULL, &client, st, NULL);
    if (err < 0) {
        fail(st, "nc_connect %s: %s (%s)", text, nc_strerror(err),
             nc_explain(NC_OP_CONNECT, err));
        return -1;
    }

    err = nc_loop_run(st->loop, NC_RUN_DEFAULT);
    if (err < 0) {
        fail(st, "nc_loop_run: %s", nc_strerror(err));
        return -1;
    }
    return st->done ? 0 : -1;
}

int main(void)
{
    struct consumer st = {0};
    int err = nc_loop_new(&st.loop);
    int rc;

    if (err < 0) {
        fprintf(stderr, "consumer: nc_loop_new: %s\n", nc_strerror(err));
        return 1;
    }
    rc = run(&st);
    /* nc_loop_free() closes a connection still open (after a failure) and
     * calls its on_close; by then the timer and listener are gone. */
    st.tearing_down = true;
    nc_listener_close(st.listener);
    st.listener = NULL;
    nc_timer_free(st.deadline);
    st.deadline = NULL;
    nc_loop_free(st.loop);

    if (rc < 0 || !st.done) {
        fprintf(stderr, "consumer: %s\n",
                st.failure[0] ? st.failure : "the loop ended without an echo");
        return 1;
    }
    printf("consumer ok\n");
    return 0;
}
