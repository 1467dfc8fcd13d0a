/* workers.c - an echo server on two worker threads, stopped gracefully,
 * then its counters per worker.
 * Build: cc workers.c $(pkg-config --cflags --libs libnetcore) */
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netcore.h>

static size_t echo(nc_conn *c, const void *data, size_t len, void *ud)
{
    (void)ud;
    nc_conn_write(c, data, len);   /* in the worker that accepted c */
    return len;
}

/* Four blocking clients in this thread; the kernel spreads them. */
static int ping(const nc_addr *a)
{
    for (int i = 0; i < 4; i++) {
        char buf[4];
        ssize_t got = 0, n = 1;
        int fd = socket(a->u.sa.sa_family, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, &a->u.sa, a->len) < 0 ||
            write(fd, "ping", 4) != 4)
            return -1;
        while (got < 4 && (n = read(fd, buf + got, 4 - (size_t)got)) > 0)
            got += n;
        close(fd);
        if (got != 4)
            return -1;
    }
    return 0;
}

int main(void)
{
    static const nc_conn_callbacks cbs = {.on_data = echo};
    nc_workers_options o = {.threads = 2};
    nc_loop_stats per[2], total;
    nc_workers *w;
    nc_addr a;
    size_t n = 0;
    int err = nc_workers_start(&o, &w);

    if (err < 0) {
        fprintf(stderr, "workers: %s\n", nc_strerror(err));
        return 1;
    }
    err = nc_workers_listen(w, "127.0.0.1:0", NULL, &cbs, NULL);
    if (err > 0)
        err = nc_workers_addrs(w, &a, 1, &n);
    if (err == 0 && n == 1 && ping(&a) == 0) {
        nc_workers_stop(w, 1000);   /* what nc_workers_run does on SIGTERM */
        err = nc_workers_wait(w);
    } else {
        err = err < 0 ? err : -1;
    }
    nc_workers_stats(w, per, 2, &total);
    for (unsigned i = 0; i < 2; i++)
        printf("worker %u: accepted %" PRIu64 ", %" PRIu64 " bytes in\n", i,
               per[i].accepted, per[i].bytes_in);
    printf("total: accepted %" PRIu64 ", open %" PRIu64 "\n", total.accepted,
           total.open);
    nc_workers_free(w);
    return err == 0 && total.accepted == 4 ? 0 : 1;
}
