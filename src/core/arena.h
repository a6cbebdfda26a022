/* The decode arena (uarc_arena): bump allocation in big blocks. Internal. */
#ifndef UARC_CORE_ARENA_H
#define UARC_CORE_ARENA_H

#include <stddef.h>

#include "uarc/common.h"

typedef struct uarc__block {
    struct uarc__block *prev;
    size_t size; /* usable bytes after the header */
    size_t used;
    size_t pad_; /* keeps the data 16-byte aligned */
} uarc__block;

struct uarc_arena {
    uarc__block *head;
    size_t block_size;
    uarc__block *embedded; /* a first block allocated with the arena itself, never freed alone */
};

/* A position in the arena to roll back to when a decode fails. */
typedef struct uarc__arena_mark {
    uarc__block *head;
    size_t used;
} uarc__arena_mark;

/* An arena for the values decoded from `encoded_length` bytes: decoded values take about four
 * times their encoded size (a data change of 27 bytes is a DataValue of 80 and its scalar), so
 * the first block (at least 8 KiB, at most 1 MiB) usually holds them all; more grows it
 * geometrically. NULL when out of memory. */
uarc_arena *uarc__arena_new_for_decode(size_t encoded_length);
void *uarc__arena_alloc_slow(uarc_arena *arena, size_t size);
uarc__arena_mark uarc__arena_mark_get(const uarc_arena *arena);
/* Frees every block allocated after `mark` and forgets the allocations made since. */
void uarc__arena_release(uarc_arena *arena, uarc__arena_mark mark);

/* `size` bytes, 8-byte aligned; NULL when out of memory. */
static inline void *uarc__arena_alloc(uarc_arena *arena, size_t size)
{
    uarc__block *b = arena->head;
    size = (size + 7) & ~(size_t)7;
    if (b && b->size - b->used >= size) {
        void *p = (char *)(b + 1) + b->used;
        b->used += size;
        return p;
    }
    return uarc__arena_alloc_slow(arena, size);
}

#endif
