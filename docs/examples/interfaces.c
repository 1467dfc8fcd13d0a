/* interfaces.c - list the interfaces; warn about a loopback bind.
 * Build: cc interfaces.c $(pkg-config --cflags --libs libnetcore) */
#include <stdio.h>
#include <netcore.h>

int main(void)
{
    nc_iface_list *list;
    const nc_iface *lo, *primary;
    nc_endpoint ep;
    char buf[NC_ADDRSTRLEN], warning[2048];
    int err = nc_iface_list_get(&list);

    if (err < 0) {
        fprintf(stderr, "interfaces: %s\n", nc_strerror(err));
        return 1;
    }
    for (size_t i = 0; i < list->count; i++) {
        const nc_iface *f = &list->ifaces[i];
        printf("%u: %s%s\n", f->index, f->name,
               f->flags & NC_IFACE_UP ? " up" : "");
        for (size_t j = 0; j < f->naddrs; j++) {
            nc_addr_format(&f->addrs[j].addr, buf, sizeof buf);
            printf("    %s/%u\n", buf, f->addrs[j].prefix_len);
        }
    }
    lo = nc_iface_find(list, "lo");
    primary = nc_iface_primary(list);
    printf("lo is %s\n", lo && (lo->flags & NC_IFACE_LOOPBACK)
                             ? "the loopback" : "missing");
    printf("primary: %s\n", primary ? primary->name : "none");

    /* A server bound to 127.0.0.1 only: who can reach it? */
    nc_endpoint_parse(&ep, "127.0.0.1:7000", NULL, 0);
    printf("reachable: %s\n",
           nc_iface_reachable(list, &ep.addr, 1) ? "yes" : "no");
    err = nc_iface_reach_warning(list, &ep.addr, 1, warning,
                                 sizeof warning);
    if (err > 0)
        printf("warning: %s\n", warning);
    nc_iface_list_free(list);
    return err > 0 && lo ? 0 : 1;
}
