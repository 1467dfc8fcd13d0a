/*
 * listener.h - what connections tell their listener (listener.c).
 */
#ifndef NC_LISTENER_H
#define NC_LISTENER_H

#include "common.h"

/* A connection accepted by l was closed (called once, from its
 * teardown): l may resume accepting. */
void nc__listener_conn_gone(nc_listener *l);

#endif /* NC_LISTENER_H */
