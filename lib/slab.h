/*
 * slab.h - a per-loop pool of fixed-size objects (connections and their
 * cold state). Objects are carved from blocks that grow geometrically and
 * are returned to the system only when the pool is destroyed, so an object
 * costs its size and nothing more (no allocator header), and allocation is
 * a pointer pop. Not thread-safe: a pool belongs to one loop.
 *
 * Under AddressSanitizer free objects are poisoned, so a use after
 * nc__slab_free() is still reported.
 */
#ifndef NC_SLAB_H
#define NC_SLAB_H

#include "common.h"

struct slab_block;

struct slab {
    size_t size;                /* object size, a multiple of 8 */
    void *free;                 /* freed objects, linked through their
                                   first word */
    char *fresh, *fresh_end;    /* never handed out yet, in the newest
                                   block: carved on demand, so a block's
                                   untouched pages cost no memory */
    struct slab_block *blocks;
    size_t next_count;          /* objects in the next block */
    size_t live;                /* objects handed out */
};

/* Prepare an empty pool of objects of size bytes (no memory yet). */
void nc__slab_init(struct slab *s, size_t size);

/* A zeroed object, or NULL when memory is short. */
void *nc__slab_alloc(struct slab *s);

/* Give obj back to s. NULL is allowed. */
void nc__slab_free(struct slab *s, void *obj);

/* Release every block; objects still handed out become invalid. */
void nc__slab_destroy(struct slab *s);

#endif /* NC_SLAB_H */
