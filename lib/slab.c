/*
 * slab.c - fixed-size object pools (see slab.h).
 */
#include "slab.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define NC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NC_ASAN 1
#endif
#endif

#ifdef NC_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define FIRST_COUNT 32
#define MAX_COUNT 4096

struct slab_block {
    struct slab_block *next;
    size_t count;
    /* objects follow */
};

#define BLOCK_HEADER ((sizeof(struct slab_block) + 15) & ~(size_t)15)

void nc__slab_init(struct slab *s, size_t size)
{
    memset(s, 0, sizeof(*s));
    s->size = (size + 7) & ~(size_t)7;
    s->next_count = FIRST_COUNT;
}

/* A freed object's first word links it to the next freed one. Only that
 * word is unpoisoned while it sits in the list. */
static void push_free(struct slab *s, void *obj)
{
    *(void **)obj = s->free;
    s->free = obj;
    POISON((char *)obj + sizeof(void *), s->size - sizeof(void *));
}

static int grow(struct slab *s)
{
    size_t count = s->next_count;
    struct slab_block *b = malloc(BLOCK_HEADER + count * s->size);
    if (!b)
        return -1;
    b->next = s->blocks;
    b->count = count;
    s->blocks = b;
    if (s->next_count < MAX_COUNT)
        s->next_count *= 2;
    s->fresh = (char *)b + BLOCK_HEADER;
    s->fresh_end = s->fresh + count * s->size;
    POISON(s->fresh, count * s->size);
    return 0;
}

void *nc__slab_alloc(struct slab *s)
{
    void *obj;
    if (s->free) {
        obj = s->free;
        s->free = *(void **)obj;
    } else {
        if (s->fresh == s->fresh_end && grow(s) < 0)
            return NULL;
        obj = s->fresh;
        s->fresh += s->size;
    }
    UNPOISON(obj, s->size);
    memset(obj, 0, s->size);
    s->live++;
    return obj;
}

void nc__slab_free(struct slab *s, void *obj)
{
    if (!obj)
        return;
    s->live--;
    push_free(s, obj);
}

void nc__slab_destroy(struct slab *s)
{
    struct slab_block *b = s->blocks;
    while (b) {
        struct slab_block *next = b->next;
        UNPOISON((char *)b + BLOCK_HEADER, b->count * s->size);
        free(b);
        b = next;
    }
    s->blocks = NULL;
    s->free = NULL;
    s->fresh = s->fresh_end = NULL;
    s->live = 0;
}
