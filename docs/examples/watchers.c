/* watchers.c - watch a pipe for readability with an fd watcher.
 * Build: cc watchers.c $(pkg-config --cflags --libs libnetcore) */
#include <stdio.h>
#include <unistd.h>
#include <netcore.h>

static void on_ready(nc_watch *w, int fd, unsigned events, void *ud)
{
    char buf[64];
    ssize_t n = 0;

    if (events & NC_READABLE)
        n = read(fd, buf, sizeof buf);
    if (n > 0) {
        printf("read %d bytes: %.*s\n", (int)n, (int)n, buf);
        return;   /* level-triggered: called again while data waits */
    }
    printf("end of the pipe\n");
    *(int *)ud = 1;
    nc_watch_close(w);   /* allowed inside its own callback */
}

int main(void)
{
    nc_loop *loop;
    nc_watch *w;
    int fds[2], done = 0;

    if (pipe(fds) < 0 || nc_loop_new(&loop) < 0)
        return 1;
    if (nc_watch_start(loop, fds[0], 0, on_ready, &done, &w) < 0 ||
        nc_watch_set(w, NC_READABLE) < 0)   /* idle, then reading */
        return 1;
    if (write(fds[1], "hello", 5) != 5)
        return 1;
    close(fds[1]);
    /* Runs while the watcher exists. */
    nc_loop_run(loop, NC_RUN_DEFAULT);
    close(fds[0]);
    nc_loop_free(loop);
    return done ? 0 : 1;
}
