/*
 * The decoder's cursor and what it keeps besides the position: the limits the peer's input is
 * held to, the allocations charged against them and the memory budget, and, when a decode
 * fails, the message and the path to the failing field (collected while the calls unwind, so
 * that the successful path pays nothing for it). Internal to src/encoding/decode*.c.
 */
#ifndef UARC_ENCODING_DECODE_CURSOR_H
#define UARC_ENCODING_DECODE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/budget.h"
#include "uarc/types.h"

#define UARC__DEC_MAX_SEGMENTS 16

typedef struct uarc__dec_segment {
    const char *name; /* NULL: an array index */
    size_t index;
} uarc__dec_segment;

typedef struct dec {
    const uint8_t *pos;
    const uint8_t *end;
    uarc_arena *arena;
    size_t alloc_left;
    uarc_memory_budget *budget; /* charged before each allocation; NULL: none */
    size_t charged;             /* charged to `budget` so far */
    size_t credit;              /* of which not yet allocated */
    size_t max_string;
    size_t max_array;
    uint32_t depth_left;
    uint32_t nseg; /* innermost first */
    bool seg_dropped;
    uarc__dec_segment seg[UARC__DEC_MAX_SEGMENTS];
    char msg[160];
} dec;

#if defined(__GNUC__)
#define COLD        __attribute__((cold, noinline))
#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define COLD
#define LIKELY(x)   (x)
#define UNLIKELY(x) (x)
#endif

/* Sets the failure message; returns `status`. */
COLD uarc_status uarc__dec_fail(dec *d, uarc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The input ends before `need` more bytes: BadDecodingError. */
COLD uarc_status uarc__dec_fail_short(dec *d, size_t need);
/* Records one more outer level of the failing field's path; returns `status`. */
COLD uarc_status uarc__dec_at(dec *d, uarc_status status, const char *name, size_t index);
/* "Type.field[3].field: message" into out[0..size). */
COLD void uarc__dec_write_detail(const dec *d, const uarc_type *type, char *out, size_t size);
/* Charges the budget for `size` more bytes than the credit holds; false when it cannot. */
bool uarc__dec_charge(dec *d, size_t size);

#define NEED(d, n)                                                                                 \
    do {                                                                                           \
        if (UNLIKELY((size_t)((d)->end - (d)->pos) < (size_t)(n)))                                 \
            return uarc__dec_fail_short((d), (n));                                                 \
    } while (0)

#define ENTER(d)                                                                                   \
    do {                                                                                           \
        if (UNLIKELY((d)->depth_left == 0))                                                        \
            return uarc__dec_fail((d), UARC_BadEncodingLimitsExceeded,                             \
                                  "nesting exceeds the depth limit");                              \
        (d)->depth_left--;                                                                         \
    } while (0)

#define LEAVE(d) ((d)->depth_left++)

/* `size` zeroed bytes (the arena's, or the heap's), within the message's allocation limit and
 * the budget; NULL with *status set when not. */
static inline void *uarc__dec_alloc(dec *d, size_t size, uarc_status *status)
{
    if (UNLIKELY(size > d->alloc_left)) {
        *status =
            uarc__dec_fail(d, UARC_BadEncodingLimitsExceeded,
                           "allocation of %zu bytes exceeds the message allocation limit", size);
        return NULL;
    }
    if (d->budget && UNLIKELY(size > d->credit) && !uarc__dec_charge(d, size)) {
        *status = uarc__dec_fail(d, UARC_BadResponseTooLarge,
                                 "allocation of %zu bytes exceeds the memory budget", size);
        return NULL;
    }
    d->credit -= d->budget ? size : 0;
    d->alloc_left -= size;
    void *p;
    if (d->arena) {
        p = uarc__arena_alloc(d->arena, size);
    } else {
        p = uarc__malloc(size);
        if (p)
            memset(p, 0, size);
    }
    if (UNLIKELY(!p))
        *status =
            uarc__dec_fail(d, UARC_BadOutOfMemory, "out of memory allocating %zu bytes", size);
    return p;
}

#endif
