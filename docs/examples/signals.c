/* signals.c - handle SIGUSR1 as a callback in the loop's thread.
 * Build: cc signals.c $(pkg-config --cflags --libs libnetcore) */
#include <signal.h>
#include <stdio.h>
#include <netcore.h>

static void on_signal(nc_signal *s, int signum, void *ud)
{
    printf("got signal %d in the loop\n", signum);
    *(int *)ud = 1;
    nc_signal_close(s);   /* the loop then has nothing active */
}

int main(void)
{
    nc_loop *loop;
    nc_signal *s;
    int got = 0;
    int err = nc_loop_new(&loop);

    if (err == 0)   /* blocks SIGUSR1 in this thread */
        err = nc_signal_start(loop, SIGUSR1, on_signal, &got, &s);
    if (err < 0) {
        fprintf(stderr, "signal: %s\n", nc_strerror(err));
        return 1;
    }
    raise(SIGUSR1);   /* stays pending until the loop reads it */
    nc_loop_run(loop, NC_RUN_DEFAULT);
    nc_loop_free(loop);
    return got ? 0 : 1;
}
