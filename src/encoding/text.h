/* Growable text buffer and text helpers shared by the text forms and JSON. Internal. */
#ifndef UARC_ENCODING_TEXT_H
#define UARC_ENCODING_TEXT_H

#include <stdarg.h>

#include "uarc/types.h"

/* A growable NUL-terminated buffer. After an allocation failure `failed` is set and further
 * appends do nothing, so callers check once at the end. */
typedef struct uarc__buf {
    char *data;
    size_t length;
    size_t capacity;
    bool failed;
} uarc__buf;

void uarc__buf_append(uarc__buf *b, const void *data, size_t length);
void uarc__buf_putc(uarc__buf *b, char c);
void uarc__buf_puts(uarc__buf *b, const char *s);
void uarc__buf_printf(uarc__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal text of an integer (what "%llu" and "%lld" give), without the cost of printf. */
void uarc__buf_uint(uarc__buf *b, uint64_t v);
void uarc__buf_int(uarc__buf *b, int64_t v);
void uarc__buf_base64(uarc__buf *b, const uint8_t *data, size_t length);
/* Frees the buffer's memory. */
void uarc__buf_free(uarc__buf *b);

/* Appends the text forms (no quoting). */
void uarc__buf_nodeid(uarc__buf *b, const uarc_nodeid *id);
void uarc__buf_expanded_nodeid(uarc__buf *b, const uarc_expanded_nodeid *id);

#endif
