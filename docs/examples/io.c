/* io.c - classify socket call results; read a socket's TCP state.
 * Build: cc io.c $(pkg-config --cflags --libs libnetcore) */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netcore.h>

int main(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof sin;
    nc_tcp_info info;
    char byte;
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    int cli = socket(AF_INET, SOCK_STREAM, 0);
    int acc, err;
    ssize_t n;

    /* A loopback TCP connection made with plain sockets. */
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (bind(srv, (struct sockaddr *)&sin, len) < 0 ||
        listen(srv, 1) < 0 ||
        getsockname(srv, (struct sockaddr *)&sin, &len) < 0 ||
        connect(cli, (struct sockaddr *)&sin, len) < 0 ||
        (acc = accept(srv, NULL, NULL)) < 0)
        return 1;

    /* Nothing to read yet: a non-blocking read would block. */
    n = recv(acc, &byte, 1, MSG_DONTWAIT);
    printf("read: %s\n",
           nc_io_outcome_name(nc_io_classify(NC_OP_READ, n, errno)));

    if ((err = nc_tcp_info_get(cli, &info)) < 0) {
        fprintf(stderr, "TCP_INFO: %s\n", nc_strerror(err));
        return 1;
    }
    printf("client: %s (%s), rtt %u us\n", info.state_name,
           nc_tcp_state_name(info.state), (unsigned)info.rtt_us);

    close(cli);   /* the peer closes: reading now sees end of stream */
    n = recv(acc, &byte, 1, 0);
    printf("read: %s\n",
           nc_io_outcome_name(nc_io_classify(NC_OP_READ, n, errno)));
    close(acc);
    close(srv);
    return 0;
}
