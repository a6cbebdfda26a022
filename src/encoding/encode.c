/*
 * The binary encoder: the same descriptor walk as the decoder, writing into a caller's buffer
 * with a room check before every write.
 */
#include <string.h>

#include "core/alloc.h"
#include "uarc/types.h"
#include "core/endian.h"

#define MAX_ENCODE_DEPTH 100

typedef struct enc {
    uint8_t *pos;
    uint8_t *end;
    uint32_t depth_left;
    bool full; /* failed for lack of room, not because of the value */
} enc;

typedef uarc_status (*enc_fn)(enc *e, const void *src, const uarc_type *t);

static const enc_fn enc_table[UARC_KIND_STRUCT + 1];

#if defined(__GNUC__)
#define COLD        __attribute__((cold, noinline))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define COLD
#define UNLIKELY(x) (x)
#endif

static COLD uarc_status no_room(enc *e)
{
    e->full = true;
    return UARC_BadEncodingLimitsExceeded;
}

#define ROOM(e, n)                                                                                 \
    do {                                                                                           \
        if (UNLIKELY((size_t)((e)->end - (e)->pos) < (size_t)(n)))                                 \
            return no_room(e);                                                                     \
    } while (0)

#define ENTER(e)                                                                                   \
    do {                                                                                           \
        if (UNLIKELY((e)->depth_left == 0))                                                        \
            return UARC_BadEncodingLimitsExceeded;                                                 \
        (e)->depth_left--;                                                                         \
    } while (0)

#define LEAVE(e) ((e)->depth_left++)

static inline void put8(enc *e, uint8_t v)
{
    *e->pos++ = v;
}

static inline void put16(enc *e, uint16_t v)
{
    uarc__st16(e->pos, v);
    e->pos += 2;
}

static inline void put32(enc *e, uint32_t v)
{
    uarc__st32(e->pos, v);
    e->pos += 4;
}

static inline void put64(enc *e, uint64_t v)
{
    uarc__st64(e->pos, v);
    e->pos += 8;
}

/* ---- Fixed-size values ------------------------------------------------------------------- */

static uarc_status enc_boolean(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    ROOM(e, 1);
    put8(e, *(const bool *)src ? 1 : 0);
    return UARC_Good;
}

static uarc_status enc_fixed1(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    ROOM(e, 1);
    put8(e, *(const uint8_t *)src);
    return UARC_Good;
}

static uarc_status enc_fixed2(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    uint16_t v;
    memcpy(&v, src, 2);
    ROOM(e, 2);
    put16(e, v);
    return UARC_Good;
}

static uarc_status enc_fixed4(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    uint32_t v;
    memcpy(&v, src, 4);
    ROOM(e, 4);
    put32(e, v);
    return UARC_Good;
}

static uarc_status enc_fixed8(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    uint64_t v;
    memcpy(&v, src, 8);
    ROOM(e, 8);
    put64(e, v);
    return UARC_Good;
}

static inline void put_guid(enc *e, const uarc_guid *g)
{
    put32(e, g->data1);
    put16(e, g->data2);
    put16(e, g->data3);
    memcpy(e->pos, g->data4, 8);
    e->pos += 8;
}

static uarc_status enc_guid(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    ROOM(e, 16);
    put_guid(e, src);
    return UARC_Good;
}

/* ---- Strings and arrays ------------------------------------------------------------------ */

static uarc_status enc_string(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_string *s = src;
    if (!s->data) {
        if (s->length)
            return UARC_BadEncodingError;
        ROOM(e, 4);
        put32(e, UINT32_MAX);
        return UARC_Good;
    }
    if (s->length > INT32_MAX)
        return UARC_BadEncodingError;
    ROOM(e, 4 + s->length);
    put32(e, (uint32_t)s->length);
    if (s->length)
        memcpy(e->pos, s->data, s->length);
    e->pos += s->length;
    return UARC_Good;
}

static const uint8_t memcpy_size[UARC_KIND_STRUCT + 1] = {
    [UARC_KIND_SBYTE] = 1,      [UARC_KIND_BYTE] = 1,     [UARC_KIND_INT16] = 2,
    [UARC_KIND_UINT16] = 2,     [UARC_KIND_INT32] = 4,    [UARC_KIND_UINT32] = 4,
    [UARC_KIND_INT64] = 8,      [UARC_KIND_UINT64] = 8,   [UARC_KIND_FLOAT] = 4,
    [UARC_KIND_DOUBLE] = 8,     [UARC_KIND_DATETIME] = 8, [UARC_KIND_GUID] = 16,
    [UARC_KIND_STATUSCODE] = 4, [UARC_KIND_ENUM] = 4,
};

static uarc_status enc_elements(enc *e, const uint8_t *p, size_t n, const uarc_type *et)
{
    size_t wire = UARC__BIG_ENDIAN ? 0 : memcpy_size[et->kind];
    if (wire) {
        ROOM(e, n * wire);
        memcpy(e->pos, p, n * wire);
        e->pos += n * wire;
        return UARC_Good;
    }
    enc_fn fn = enc_table[et->kind];
    size_t size = et->size;
    for (size_t i = 0; i < n; i++) {
        uarc_status s = fn(e, p + i * size, et);
        if (UNLIKELY(s))
            return s;
    }
    return UARC_Good;
}

static uarc_status enc_array(enc *e, const void *data, size_t n, const uarc_type *et)
{
    if (!data || n == 0) {
        if (n)
            return UARC_BadEncodingError;
        ROOM(e, 4);
        put32(e, data ? 0 : UINT32_MAX);
        return UARC_Good;
    }
    if (n > INT32_MAX)
        return UARC_BadEncodingError;
    ROOM(e, 4);
    put32(e, (uint32_t)n);
    return enc_elements(e, data, n, et);
}

/* ---- NodeIds ----------------------------------------------------------------------------- */

/* Writes a NodeId with `flags` (ExpandedNodeId bits) or'ed into its encoding byte. */
static uarc_status put_nodeid(enc *e, const uarc_nodeid *id, uint8_t flags)
{
    switch (id->identifier_type) {
    case UARC_NODEID_NUMERIC: {
        uint32_t n = id->identifier.numeric;
        if (id->namespace_index == 0 && n <= 0xFF) {
            ROOM(e, 2);
            put8(e, flags | 0);
            put8(e, (uint8_t)n);
        } else if (id->namespace_index <= 0xFF && n <= 0xFFFF) {
            ROOM(e, 4);
            put8(e, flags | 1);
            put8(e, (uint8_t)id->namespace_index);
            put16(e, (uint16_t)n);
        } else {
            ROOM(e, 7);
            put8(e, flags | 2);
            put16(e, id->namespace_index);
            put32(e, n);
        }
        return UARC_Good;
    }
    case UARC_NODEID_STRING:
    case UARC_NODEID_BYTESTRING:
        ROOM(e, 3);
        put8(e, flags | (id->identifier_type == UARC_NODEID_STRING ? 3 : 5));
        put16(e, id->namespace_index);
        return enc_string(e, &id->identifier.string, NULL);
    case UARC_NODEID_GUID:
        ROOM(e, 19);
        put8(e, flags | 4);
        put16(e, id->namespace_index);
        put_guid(e, &id->identifier.guid);
        return UARC_Good;
    }
    return UARC_BadEncodingError;
}

static uarc_status enc_nodeid(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    return put_nodeid(e, src, 0);
}

static uarc_status enc_expanded_nodeid(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_expanded_nodeid *x = src;
    uint8_t flags = (x->namespace_uri.data ? 0x80 : 0) | (x->server_index ? 0x40 : 0);
    uarc_status s = put_nodeid(e, &x->node_id, flags);
    if (!s && x->namespace_uri.data)
        s = enc_string(e, &x->namespace_uri, NULL);
    if (!s && x->server_index) {
        ROOM(e, 4);
        put32(e, x->server_index);
    }
    return s;
}

/* ---- Other built-ins --------------------------------------------------------------------- */

static uarc_status enc_qualified_name(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_qualified_name *q = src;
    ROOM(e, 2);
    put16(e, q->namespace_index);
    return enc_string(e, &q->name, NULL);
}

static uarc_status enc_localized_text(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_localized_text *lt = src;
    ROOM(e, 1);
    put8(e, (lt->locale.data ? 0x01 : 0) | (lt->text.data ? 0x02 : 0));
    uarc_status s = UARC_Good;
    if (lt->locale.data)
        s = enc_string(e, &lt->locale, NULL);
    if (!s && lt->text.data)
        s = enc_string(e, &lt->text, NULL);
    return s;
}

static uarc_status enc_struct(enc *e, const void *src, const uarc_type *t);

/* Writes a structure as an ExtensionObject with a binary body. */
static uarc_status put_extension_body(enc *e, const void *data, const uarc_type *t)
{
    if (t->kind != UARC_KIND_STRUCT || !t->binary_encoding_id || !data)
        return UARC_BadEncodingError;
    uarc_nodeid id = {.identifier.numeric = t->binary_encoding_id};
    uarc_status s = put_nodeid(e, &id, 0);
    if (s)
        return s;
    ROOM(e, 5);
    put8(e, 1);
    uint8_t *len_at = e->pos;
    e->pos += 4;
    s = enc_struct(e, data, t);
    if (s)
        return s;
    size_t len = (size_t)(e->pos - len_at - 4);
    if (len > INT32_MAX)
        return UARC_BadEncodingError;
    uarc__st32(len_at, (uint32_t)len);
    return UARC_Good;
}

static uarc_status enc_extension_object(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_extension_object *eo = src;
    uarc_status s;
    switch (eo->encoding) {
    case UARC_EXTENSION_OBJECT_EMPTY:
        s = put_nodeid(e, &eo->content.encoded.type_id, 0);
        if (s)
            return s;
        ROOM(e, 1);
        put8(e, 0);
        return UARC_Good;
    case UARC_EXTENSION_OBJECT_BINARY:
    case UARC_EXTENSION_OBJECT_XML:
        s = put_nodeid(e, &eo->content.encoded.type_id, 0);
        if (s)
            return s;
        ROOM(e, 1);
        put8(e, eo->encoding == UARC_EXTENSION_OBJECT_BINARY ? 1 : 2);
        return enc_string(e, &eo->content.encoded.body, NULL);
    case UARC_EXTENSION_OBJECT_DECODED:
        if (!eo->content.decoded.type)
            return UARC_BadEncodingError;
        return put_extension_body(e, eo->content.decoded.data, eo->content.decoded.type);
    }
    return UARC_BadEncodingError;
}

static uarc_status enc_variant(enc *e, const void *src, const uarc_type *t);

static uarc_status enc_data_value(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_data_value *dv = src;
    uint8_t mask = (dv->has_value ? 0x01 : 0) | (dv->has_status ? 0x02 : 0) |
                   (dv->has_source_timestamp ? 0x04 : 0) | (dv->has_server_timestamp ? 0x08 : 0) |
                   (dv->has_source_picoseconds ? 0x10 : 0) |
                   (dv->has_server_picoseconds ? 0x20 : 0);
    ROOM(e, 1);
    put8(e, mask);
    if (dv->has_value) {
        uarc_status s = enc_variant(e, &dv->value, NULL);
        if (s)
            return s;
    }
    /* Everything after the Value takes at most 24 bytes: one room check. */
    if (UNLIKELY((size_t)(e->end - e->pos) < 24)) {
        size_t need = (dv->has_status ? 4u : 0u) + (dv->has_source_timestamp ? 8u : 0u) +
                      (dv->has_source_picoseconds ? 2u : 0u) +
                      (dv->has_server_timestamp ? 8u : 0u) + (dv->has_server_picoseconds ? 2u : 0u);
        ROOM(e, need);
    }
    if (dv->has_status)
        put32(e, dv->status);
    if (dv->has_source_timestamp)
        put64(e, (uint64_t)dv->source_timestamp);
    if (dv->has_source_picoseconds)
        put16(e, dv->source_picoseconds);
    if (dv->has_server_timestamp)
        put64(e, (uint64_t)dv->server_timestamp);
    if (dv->has_server_picoseconds)
        put16(e, dv->server_picoseconds);
    return UARC_Good;
}

static uarc_status enc_variant_body(enc *e, const uarc_variant *v)
{
    const uarc_type *et = v->type;
    if (!et) {
        ROOM(e, 1);
        put8(e, 0);
        return UARC_Good;
    }
    /* Structures travel as ExtensionObjects, enumerations as Int32. */
    uint8_t id = et->kind;
    if (id == UARC_KIND_STRUCT)
        id = UARC_KIND_EXTENSIONOBJECT;
    else if (id == UARC_KIND_ENUM)
        id = UARC_KIND_INT32;
    if (!v->is_array) {
        if (!v->data || v->array_dimensions_size)
            return UARC_BadEncodingError;
        ROOM(e, 1);
        put8(e, id);
        if (et->kind == UARC_KIND_STRUCT)
            return put_extension_body(e, v->data, et);
        return enc_table[et->kind](e, v->data, et);
    }
    ROOM(e, 1);
    put8(e, (uint8_t)(id | 0x80 | (v->array_dimensions_size ? 0x40 : 0)));
    uarc_status s;
    if (et->kind == UARC_KIND_STRUCT) {
        if (!v->data || v->array_length == 0 || v->array_length > INT32_MAX) {
            s = enc_array(e, v->data, v->array_length, et);
        } else {
            ROOM(e, 4);
            put32(e, (uint32_t)v->array_length);
            s = UARC_Good;
            for (size_t i = 0; i < v->array_length && !s; i++)
                s = put_extension_body(e, (const uint8_t *)v->data + i * et->size, et);
        }
    } else {
        s = enc_array(e, v->data, v->array_length, et);
    }
    if (s || !v->array_dimensions_size)
        return s;
    if (!v->array_dimensions || v->array_dimensions_size > INT32_MAX || !v->data)
        return UARC_BadEncodingError;
    uint64_t product = 1;
    bool zero = false;
    for (size_t i = 0; i < v->array_dimensions_size; i++) {
        int32_t dim = v->array_dimensions[i];
        if (dim < 0)
            return UARC_BadEncodingError;
        if (dim == 0)
            zero = true;
        else if (product <= v->array_length)
            product *= (uint64_t)dim;
    }
    if ((zero ? 0 : product) != v->array_length)
        return UARC_BadEncodingError;
    return enc_array(e, v->array_dimensions, v->array_dimensions_size, UARC_T(Int32));
}

static uarc_status enc_variant(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    ENTER(e);
    uarc_status s = enc_variant_body(e, src);
    LEAVE(e);
    return s;
}

static uarc_status enc_diagnostic_info(enc *e, const void *src, const uarc_type *t)
{
    (void)t;
    const uarc_diagnostic_info *di = src;
    bool inner = di->has_inner_diagnostic_info && di->inner_diagnostic_info;
    uint8_t mask = (di->has_symbolic_id ? 0x01 : 0) | (di->has_namespace_uri ? 0x02 : 0) |
                   (di->has_localized_text ? 0x04 : 0) | (di->has_locale ? 0x08 : 0) |
                   (di->has_additional_info ? 0x10 : 0) | (di->has_inner_status_code ? 0x20 : 0) |
                   (inner ? 0x40 : 0);
    ROOM(e, 17);
    put8(e, mask);
    if (di->has_symbolic_id)
        put32(e, (uint32_t)di->symbolic_id);
    if (di->has_namespace_uri)
        put32(e, (uint32_t)di->namespace_uri);
    if (di->has_locale)
        put32(e, (uint32_t)di->locale);
    if (di->has_localized_text)
        put32(e, (uint32_t)di->localized_text);
    uarc_status s;
    if (di->has_additional_info && (s = enc_string(e, &di->additional_info, NULL)))
        return s;
    if (di->has_inner_status_code) {
        ROOM(e, 4);
        put32(e, di->inner_status_code);
    }
    if (inner) {
        ENTER(e);
        s = enc_diagnostic_info(e, di->inner_diagnostic_info, NULL);
        LEAVE(e);
        return s;
    }
    return UARC_Good;
}

/* ---- Structures -------------------------------------------------------------------------- */

static uarc_status enc_struct(enc *e, const void *src, const uarc_type *t)
{
    ENTER(e);
    const uint8_t *base = src;
    for (uint16_t i = 0; i < t->member_count; i++) {
        const uarc_member *m = &t->members[i];
        uarc_status s;
        if (m->is_array)
            s = enc_array(e, *(void *const *)(base + m->offset),
                          *(const size_t *)(base + m->size_offset), m->type);
        else
            s = enc_table[m->type->kind](e, base + m->offset, m->type);
        if (UNLIKELY(s)) {
            LEAVE(e);
            return s;
        }
    }
    LEAVE(e);
    return UARC_Good;
}

static const enc_fn enc_table[UARC_KIND_STRUCT + 1] = {
    [UARC_KIND_BOOLEAN] = enc_boolean,
    [UARC_KIND_SBYTE] = enc_fixed1,
    [UARC_KIND_BYTE] = enc_fixed1,
    [UARC_KIND_INT16] = enc_fixed2,
    [UARC_KIND_UINT16] = enc_fixed2,
    [UARC_KIND_INT32] = enc_fixed4,
    [UARC_KIND_UINT32] = enc_fixed4,
    [UARC_KIND_INT64] = enc_fixed8,
    [UARC_KIND_UINT64] = enc_fixed8,
    [UARC_KIND_FLOAT] = enc_fixed4,
    [UARC_KIND_DOUBLE] = enc_fixed8,
    [UARC_KIND_STRING] = enc_string,
    [UARC_KIND_DATETIME] = enc_fixed8,
    [UARC_KIND_GUID] = enc_guid,
    [UARC_KIND_BYTESTRING] = enc_string,
    [UARC_KIND_XMLELEMENT] = enc_string,
    [UARC_KIND_NODEID] = enc_nodeid,
    [UARC_KIND_EXPANDEDNODEID] = enc_expanded_nodeid,
    [UARC_KIND_STATUSCODE] = enc_fixed4,
    [UARC_KIND_QUALIFIEDNAME] = enc_qualified_name,
    [UARC_KIND_LOCALIZEDTEXT] = enc_localized_text,
    [UARC_KIND_EXTENSIONOBJECT] = enc_extension_object,
    [UARC_KIND_DATAVALUE] = enc_data_value,
    [UARC_KIND_VARIANT] = enc_variant,
    [UARC_KIND_DIAGNOSTICINFO] = enc_diagnostic_info,
    [UARC_KIND_ENUM] = enc_fixed4,
    [UARC_KIND_STRUCT] = enc_struct,
};

/* ---- Entry points ------------------------------------------------------------------------ */

static uarc_status encode(const void *src, const uarc_type *type, uint8_t *buf, size_t capacity,
                          size_t *offset, bool *full)
{
    enc e = {buf + *offset, buf + capacity, MAX_ENCODE_DEPTH, false};
    uarc_status s = enc_table[type->kind](&e, src, type);
    *full = e.full;
    if (s == UARC_Good)
        *offset = (size_t)(e.pos - buf);
    return s;
}

UARC_API uarc_status uarc_encode(const void *src, const uarc_type *type, void *buf, size_t capacity,
                                 size_t *offset)
{
    if (!src || !type || !offset || *offset > capacity || (!buf && capacity))
        return UARC_BadInvalidArgument;
    bool full;
    if (!buf) {
        uint8_t none;
        return encode(src, type, &none, 0, offset, &full);
    }
    return encode(src, type, buf, capacity, offset, &full);
}

UARC_API uarc_status uarc_encode_alloc(const void *src, const uarc_type *type, uint8_t **out,
                                       size_t *length)
{
    if (!src || !type || !out || !length)
        return UARC_BadInvalidArgument;
    *out = NULL;
    *length = 0;
    size_t capacity = 256;
    for (;;) {
        uint8_t *buf = uarc__malloc(capacity);
        if (!buf)
            return UARC_BadOutOfMemory;
        size_t offset = 0;
        bool full;
        uarc_status s = encode(src, type, buf, capacity, &offset, &full);
        if (s == UARC_Good) {
            *out = buf;
            *length = offset;
            return UARC_Good;
        }
        uarc__free(buf);
        if (!full || capacity > SIZE_MAX / 4)
            return s;
        capacity *= 4;
    }
}
