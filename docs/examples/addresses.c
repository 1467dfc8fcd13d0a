/* addresses.c - parse, resolve and format endpoint strings.
 * Build: cc addresses.c $(pkg-config --cflags --libs libnetcore) */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netcore.h>

static int show(const char *text)
{
    nc_endpoint ep;
    nc_addr addrs[8];
    size_t n;
    char why[128], buf[NC_ADDRSTRLEN];
    int err = nc_endpoint_parse(&ep, text, why, sizeof why);

    if (err < 0) {
        printf("%-22s rejected: %s (%s)\n", text, why,
               nc_errname(err));
        return err;
    }
    nc_endpoint_format(&ep, buf, sizeof buf);
    printf("%-22s parsed as %s\n", text, buf);
    if ((err = nc_endpoint_resolve(&ep, addrs, 8, &n)) < 0)
        return err;
    for (size_t i = 0; i < n && i < 8; i++) {
        nc_addr_format(&addrs[i], buf, sizeof buf);
        printf("%24s %s port %u%s%s\n", "->", buf,
               (unsigned)nc_addr_port(&addrs[i]),
               nc_addr_is_loopback(&addrs[i]) ? " loopback" : "",
               nc_addr_is_any(&addrs[i]) ? " any" : "");
    }
    return 0;
}

int main(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(7000) };
    nc_addr a;
    char buf[NC_ADDRSTRLEN];
    int bad = 0;

    bad |= show("localhost:7000");
    bad |= show("[::1]:8080");
    bad |= show("*:0");
    bad |= show("unix:@netcore-example");
    if (show("127.0.0.1:70000") != -ERANGE)   /* must fail */
        bad = 1;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (nc_addr_from_sockaddr(&a, (struct sockaddr *)&sin,
                              sizeof sin) < 0 ||
        nc_addr_format(&a, buf, sizeof buf) < 0)
        return 1;
    printf("from a sockaddr_in: %s\n", buf);
    return bad ? 1 : 0;
}
