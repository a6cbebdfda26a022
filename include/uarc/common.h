/*
 * Things every layer of uarc shares: the export macro, the status type, the allocator hook, the
 * logging hook, the byte view, the arena and the byte escaper.
 *
 * Threads: uarc objects belong to one thread each. The functions in this header are safe to call
 * from any thread, except uarc_set_allocator(), which must run before any other uarc call.
 */
#ifndef UARC_COMMON_H
#define UARC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/status_codes.h"
#include "uarc/version.h"

#if defined(UARC_BUILDING) && defined(__GNUC__)
#define UARC_API __attribute__((visibility("default")))
#else
#define UARC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* An OPC UA StatusCode. The top two bits give the severity: 00 good, 01 uncertain, 10 bad. */
typedef uint32_t uarc_status;

#define uarc_status_is_good(s) (((s)&0xC0000000u) == 0)
#define uarc_status_is_bad(s)  (((s)&0x80000000u) != 0)
/* The info bits of a data value's status say InfoType DataValue with the Overflow bit (0x480):
 * the server's queue of the monitored item was full and dropped values next to this one
 * (Part 4, StatusCode InfoBits). */
#define uarc_status_is_overflow(s) (((s)&0x00000C80u) == 0x00000480u)

/* Name of a standard status code ("BadTimeout"), ignoring the info bits (low 16 bits).
 * Returns "Unknown" for a code that is not in StatusCode.csv. The string is static. */
UARC_API const char *uarc_status_name(uarc_status status);

/* Looks a status code up by its standard name. Returns false when the name is unknown. */
UARC_API bool uarc_status_from_name(const char *name, uarc_status *out);

/* A borrowed view of bytes; it owns nothing. `data` may be NULL only when `length` is 0. */
typedef struct uarc_view {
    const uint8_t *data;
    size_t length;
} uarc_view;

/*
 * Allocator hook for embedders. Every allocation uarc makes goes through it. All three functions
 * must be set. Install it once, before creating any uarc object; the default uses malloc/free.
 */
typedef struct uarc_allocator {
    void *(*malloc)(size_t size, void *user_data);
    void *(*realloc)(void *ptr, size_t size, void *user_data);
    void (*free)(void *ptr, void *user_data);
    void *user_data;
} uarc_allocator;

/* Installs `allocator` (copied), or restores the default when it is NULL. */
UARC_API void uarc_set_allocator(const uarc_allocator *allocator);

typedef enum uarc_log_level {
    UARC_LOG_DEBUG = 0,
    UARC_LOG_INFO = 1,
    UARC_LOG_WARNING = 2,
    UARC_LOG_ERROR = 3,
} uarc_log_level;

/*
 * Logging hook. uarc never prints; it hands messages to this function. `category` names the layer
 * ("listener", "channel", ...). `message` is valid only during the call.
 */
typedef void (*uarc_log_fn)(void *user_data, uarc_log_level level, const char *category,
                            const char *message);

typedef struct uarc_logger {
    uarc_log_fn fn;           /* NULL: no logging (the default) */
    void *user_data;          /* passed to fn */
    uarc_log_level min_level; /* messages below this level are not formatted. Default: DEBUG */
} uarc_logger;

/* ---- Arena ------------------------------------------------------------------------------- */

/*
 * A bump allocator for decoding: every allocation of a decode goes into big blocks, so decoding
 * allocates nothing per value and releasing is one call. Values decoded into an arena are valid
 * until the arena is reset or deleted.
 */
typedef struct uarc_arena uarc_arena;

/* A new arena whose first block holds `block_size` bytes (0: 64 KiB). NULL when out of memory. */
UARC_API uarc_arena *uarc_arena_new(size_t block_size);
/* Forgets every allocation. Keeps the largest block so the next message reuses it. */
UARC_API void uarc_arena_reset(uarc_arena *arena);
/* Frees the arena and everything in it. NULL is ignored. */
UARC_API void uarc_arena_delete(uarc_arena *arena);

/*
 * Writes `data` into `out` as readable text: printable ASCII as is, backslash as "\\", anything
 * else as \xHH. Truncates with "..." when `out` is too small; always NUL-terminates when
 * out_size > 0. Returns out.
 */
UARC_API char *uarc_escape_bytes(char *out, size_t out_size, const uint8_t *data, size_t length);

#ifdef __cplusplus
}
#endif

#endif
