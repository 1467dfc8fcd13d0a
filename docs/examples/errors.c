/* errors.c - the library's version, and a negative errno as text.
 * Build: cc errors.c $(pkg-config --cflags --libs libnetcore) */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netcore.h>

int main(void)
{
    char header[32];
    int err = -ECONNREFUSED;   /* as a library function returns it */

    snprintf(header, sizeof header, "%d.%d.%d", NC_VERSION_MAJOR,
             NC_VERSION_MINOR, NC_VERSION_PATCH);
    printf("library %s, header %s\n", nc_version(), header);
    if (strcmp(nc_version(), header) != 0) {
        fprintf(stderr, "header and library differ\n");
        return 1;
    }

    printf("%s: %s\n", nc_errname(err), nc_strerror(err));
    printf("connect: %s\n", nc_explain(NC_OP_CONNECT, err));
    printf("bind: %s\n", nc_explain(NC_OP_BIND, -EADDRINUSE));
    return strcmp(nc_errname(err), "ECONNREFUSED") == 0 ? 0 : 1;
}
