/* loop.c - a loop that another thread stops through a posted call.
 * Build: cc loop.c $(pkg-config --cflags --libs libnetcore) */
#include <pthread.h>
#include <stdio.h>
#include <netcore.h>

static void later(void *loop)
{
    printf("deferred call ran at %llu ms\n",
           (unsigned long long)nc_loop_now(loop));
}

static void stop(void *loop)
{
    printf("posted call ran in the loop's thread\n");
    nc_loop_stop(loop);
}

static void *worker(void *loop)
{
    if (nc_loop_post(loop, stop, loop) < 0)   /* any thread */
        fprintf(stderr, "post failed\n");
    return NULL;
}

int main(void)
{
    nc_loop *loop;
    pthread_t t;
    int err = nc_loop_new(&loop);

    if (err < 0) {
        fprintf(stderr, "loop: %s\n", nc_strerror(err));
        return 1;
    }
    nc_loop_defer(loop, later, loop);
    if (pthread_create(&t, NULL, worker, loop) != 0)
        return 1;
    /* FOREVER: posted calls alone do not keep NC_RUN_DEFAULT going. */
    err = nc_loop_run(loop, NC_RUN_FOREVER);
    pthread_join(t, NULL);
    nc_loop_free(loop);
    return err == 0 ? 0 : 1;
}
