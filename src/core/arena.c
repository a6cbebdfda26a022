#include <stdint.h>

#include "core/alloc.h"
#include "core/arena.h"

#define DEFAULT_BLOCK_SIZE ((size_t)64 * 1024)

UARC_API uarc_arena *uarc_arena_new(size_t block_size)
{
    uarc_arena *a = uarc__malloc(sizeof *a);
    if (!a)
        return NULL;
    a->head = NULL;
    a->block_size = block_size ? block_size : DEFAULT_BLOCK_SIZE;
    return a;
}

#define DECODE_FIRST_MIN ((size_t)8 * 1024)
#define DECODE_FIRST_MAX ((size_t)1024 * 1024)

uarc_arena *uarc__arena_new_for_decode(size_t encoded_length)
{
    size_t first = encoded_length < DECODE_FIRST_MAX / 4 ? encoded_length * 4 : DECODE_FIRST_MAX;
    return uarc_arena_new(first < DECODE_FIRST_MIN ? DECODE_FIRST_MIN : first);
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
        uarc__free(arena->head);
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
                uarc__free(keep);
            keep = b;
        } else {
            uarc__free(b);
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
        uarc__free(arena->head);
        arena->head = prev;
    }
    uarc__free(arena);
}
