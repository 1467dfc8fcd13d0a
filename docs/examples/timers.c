/* timers.c - a repeating timer that stops itself after three ticks.
 * Build: cc timers.c $(pkg-config --cflags --libs libnetcore) */
#include <stdio.h>
#include <netcore.h>

static int ticks;

static void on_tick(nc_timer *t, void *loop)
{
    printf("tick %d at %llu ms\n", ++ticks,
           (unsigned long long)nc_loop_now(loop));
    if (ticks == 3)
        nc_timer_stop(t);   /* the loop then has nothing active */
}

int main(void)
{
    nc_loop *loop;
    nc_timer *t;
    int err = nc_loop_new(&loop);

    if (err == 0)
        err = nc_timer_new(loop, on_tick, loop, &t);
    if (err == 0)
        err = nc_timer_start(t, 10, 20);   /* 10 ms, then every 20 */
    if (err < 0) {
        fprintf(stderr, "timer: %s\n", nc_strerror(err));
        return 1;
    }
    printf("active: %d\n", nc_timer_active(t));
    nc_loop_run(loop, NC_RUN_DEFAULT);
    printf("active: %d after %d ticks\n", nc_timer_active(t), ticks);
    nc_timer_free(t);
    nc_loop_free(loop);
    return ticks == 3 ? 0 : 1;
}
