/*
 * addr.h - what the endpoint grammar (addr.c) offers the rest of the
 * library beyond the public nc_endpoint_* calls.
 */
#ifndef NC_ADDR_H
#define NC_ADDR_H

#include "common.h"

/* Longest host name text, with a final dot and the NUL. */
#define HOST_NAME_LEN 256

/* nc_connect()'s host names (see the header's "Host names"): when text
 * is "NAME:PORT" with NAME shaped like a name to look up (a dot in it,
 * not an IPv4 address), NAME goes to host (hostlen bytes) and the port
 * to *port, and it returns 1; the caller still asks whether an interface
 * has that name, which wins. It returns 0 when text is not of that form
 * (the endpoint grammar then decides), and a negative errno, with a
 * message in why, for such a name with a bad port. */
int nc__endpoint_name(const char *text, char *host, size_t hostlen,
                      uint16_t *port, char *why, size_t whylen);

#endif /* NC_ADDR_H */
