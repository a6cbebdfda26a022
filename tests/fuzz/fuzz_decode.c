/*
 * libFuzzer target for the binary decoder. The first two bytes choose the type (15 bits, modulo
 * the number of types) and whether to decode into an arena (top bit); the rest is decoded under
 * tight limits. Whatever decodes must encode, and the encoding must decode to an equal value;
 * copy, equality and JSON output are exercised on the way. Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/uarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uarc_arena *arena;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t index = ((size_t)(data[0] & 0x7F) << 8 | data[1]) % UARC_TYPE_COUNT;
    bool use_arena = data[0] & 0x80;
    const uarc_type *type = &uarc_types[index];
    if (!arena)
        arena = uarc_arena_new(0);
    char detail[256];
    uarc_decode_config o = {.max_string_length = 1 << 16,
                            .max_array_length = 1 << 14,
                            .max_depth = 32,
                            .max_alloc = 1 << 24,
                            .arena = use_arena ? arena : NULL,
                            .detail = detail,
                            .detail_size = sizeof detail};
    void *value = malloc(type->size);
    void *again = malloc(type->size);
    size_t pos = 2;
    uarc_status s = uarc_decode(data, size, &pos, value, type, &o);
    if (s != UARC_Good) {
        if (s != UARC_BadDecodingError && s != UARC_BadEncodingLimitsExceeded)
            abort();
        free(value);
        free(again);
        uarc_arena_reset(arena);
        return 0;
    }
    uint8_t *bytes;
    size_t len;
    if (uarc_encode_alloc(value, type, &bytes, &len) != UARC_Good)
        abort();
    size_t pos2 = 0;
    o.arena = NULL;
    if (uarc_decode(bytes, len, &pos2, again, type, &o) != UARC_Good || pos2 != len)
        abort();
    if (!uarc_equal(value, again, type))
        abort();
    void *copy = malloc(type->size);
    if (uarc_copy(value, copy, type) != UARC_Good || !uarc_equal(copy, value, type))
        abort();
    char *json = uarc_json_encode(value, type, NULL);
    if (!json)
        abort();
    uarc_free(json);
    uarc_clear(copy, type);
    uarc_clear(again, type);
    if (!use_arena)
        uarc_clear(value, type);
    uarc_arena_reset(arena);
    uarc_free(bytes);
    free(copy);
    free(value);
    free(again);
    return 0;
}
