/*
 * splice.h - zero-copy forwarding between two connections of a loop
 * (nc_conn_splice): what arrives on one socket is moved into a pipe and
 * from the pipe into the other socket with splice(2), never copied into
 * user memory.
 *
 * One direction, "from" to "to", is a struct splice_dir that both
 * connections point to (from->cold->splice_out, to->cold->splice_in).
 * The pipe is borrowed from a per-loop pool while bytes are in flight and
 * given back once it is empty, so an idle pair holds no pipe. Flow
 * control is the pipe: from is read only while the pipe has room, and
 * the pipe is emptied into to only while to's own output queue is empty
 * (what was written to to before goes first). The end of from's stream
 * is passed on as a shutdown of to once the pipe is empty, then reported
 * on from as any end of stream (the end call, then a close, or with
 * half_close nothing more). Closing either connection ends the splice;
 * what the pipe held is dropped with it.
 */
#ifndef NC_SPLICE_H
#define NC_SPLICE_H

#include "conn.h"

struct splice_dir {
    nc_conn *from, *to;
    int pipe[2];            /* borrowed from the pool; -1 when none */
    size_t in_pipe;         /* bytes in the pipe */
    bool eof;               /* from's end was read: pass it on */
};

/* from is readable (or hung up): move its bytes towards to. */
void nc__splice_pump_in(nc_conn *from);
/* to (a splice's target) can take bytes, or its own queue emptied: move
 * the pipe's bytes into it. */
void nc__splice_pump_out(nc_conn *to);
/* Whether from wants its socket read (its pipe has room). */
bool nc__splice_wants_read(const nc_conn *from);
/* Whether to has bytes waiting in a pipe for room in its socket. */
bool nc__splice_wants_write(const nc_conn *to);
/* from's kept input (unconsumed, or received before the splice began)
 * goes to to's queue, ahead of what the pipe brings; dropped if to no
 * longer takes writes. */
void nc__splice_forward_kept(nc_conn *from);
/* c begins a graceful close: what its splices' pipes hold joins the
 * targets' queues (a copy), then the splices end; c's input is read and
 * discarded from now on, as any closing connection's. */
void nc__splice_settle(nc_conn *c);
/* c is closing: end the splices it is part of (both ways). */
void nc__splice_end(nc_conn *c);
/* The loop ends: close the pipes kept for reuse. */
void nc__splice_pool_free(nc_loop *loop);

#endif /* NC_SPLICE_H */
