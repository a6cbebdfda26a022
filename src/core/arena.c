#include <stdint.h>

#include "core/alloc.h"
#include "core/arena.h"

#define DEFAULT_BLOCK_SIZE ((size_t)64 * 1024)

UARC_API uarc_arena *uarc_arena_new(size_t block_size)
{
    uarc_arena *a = uarc__malloc(sizeof *a);
    if (!a)
        return NULL;
    a->head = a->embedded = NULL;
    a->block_size = block_size ? block_size : DEFAULT_BLOCK_SIZE;
    return a;
}

/* A block goes back to the allocator unless it lives inside the arena's own allocation. */
static void free_block(uarc_arena *arena, uarc__block *b)
{
    if (b != arena->embedded)
        uarc__free(b);
}

#define DECODE_FIRST_MIN ((size_t)8 * 1024)
#define DECODE_FIRST_MAX ((size_t)1024 * 1024)

/* The arena and its first block are one allocation: a message decoded and dropped costs one
 * malloc and one free. */
uarc_arena *uarc__arena_new_for_decode(size_t encoded_length)
{
    size_t first = encoded_length < DECODE_FIRST_MAX / 4 ? encoded_length * 4 : DECODE_FIRST_MAX;
    if (first < DECODE_FIRST_MIN)
        first = DECODE_FIRST_MIN;
    /* the block header keeps the data 16-byte aligned; the arena is padded to a header's size */
    size_t head = (sizeof(uarc_arena) + sizeof(uarc__block) - 1) / sizeof(uarc__block);
    uarc__block *whole = uarc__malloc((head + 1) * sizeof(uarc__block) + first);
    if (!whole)
        return NULL;
    uarc_arena *a = (uarc_arena *)(void *)whole;
    uarc__block *b = whole + head;
    *b = (uarc__block){.prev = NULL, .size = first, .used = 0};
    *a = (uarc_arena){.head = b, .block_size = first, .embedded = b};
    return a;
}

void *uarc__arena_alloc_slow(uarc_arena *arena, size_t size)
{
    /* Blocks grow geometrically so a big message needs few of them; reset keeps the largest. */
    size_t want = arena->block_size;
    if (arena->head && arena->head->size <= SIZE_MAX / 2 && arena->head->size * 2 > want)
        want = arena->head->size * 2;
    if (want < size)
        want = size;
    if (want > SIZE_MAX - sizeof(uarc__block))
        return NULL;
    uarc__block *b = uarc__malloc(sizeof(uarc__block) + want);
    if (!b)
        return NULL;
    b->prev = arena->head;
    b->size = want;
    b->used = size;
    arena->head = b;
    return b + 1;
}

uarc__arena_mark uarc__arena_mark_get(const uarc_arena *arena)
{
    return (uarc__arena_mark){arena->head, arena->head ? arena->head->used : 0};
}

void uarc__arena_release(uarc_arena *arena, uarc__arena_mark mark)
{
    while (arena->head && arena->head != mark.head) {
        uarc__block *prev = arena->head->prev;
        free_block(arena, arena->head);
        arena->head = prev;
    }
    if (arena->head)
        arena->head->used = mark.used;
}

UARC_API void uarc_arena_reset(uarc_arena *arena)
{
    if (!arena)
        return;
    uarc__block *keep = NULL;
    for (uarc__block *b = arena->head; b;) {
        uarc__block *prev = b->prev;
        if (!keep || b->size > keep->size) {
            if (keep)
                free_block(arena, keep);
            keep = b;
        } else {
            free_block(arena, b);
        }
        b = prev;
    }
    if (keep) {
        keep->prev = NULL;
        keep->used = 0;
    }
    arena->head = keep;
}

UARC_API void uarc_arena_delete(uarc_arena *arena)
{
    if (!arena)
        return;
    while (arena->head) {
        uarc__block *prev = arena->head->prev;
        free_block(arena, arena->head);
        arena->head = prev;
    }
    uarc__free(arena);
}
