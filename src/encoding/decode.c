/*
 * The binary decoder: one walk over the type descriptors with a {pos, end} cursor. Every read is
 * preceded by a bounds check, every allocation by a limit check against lengths already known to
 * fit in the remaining input (the cursor, its allocations and its failure path: decode_cursor.h).
 */
#include <string.h>

#include "uarc/types.h"
#include "core/arena.h"
#include "core/budget.h"
#include "encoding/decode_charged.h"
#include "encoding/decode_cursor.h"
#include "core/endian.h"

typedef uarc_status (*dec_fn)(dec *d, void *dst, const uarc_type *t);

static const dec_fn dec_table[UARC_KIND_STRUCT + 1];

/* ---- Fixed-size values ------------------------------------------------------------------- */

static uarc_status dec_boolean(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 1);
    *(bool *)dst = *d->pos++ != 0;
    return UARC_Good;
}

static uarc_status dec_fixed1(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 1);
    *(uint8_t *)dst = *d->pos++;
    return UARC_Good;
}

static uarc_status dec_fixed2(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 2);
    uint16_t v = uarc__ld16(d->pos);
    memcpy(dst, &v, 2);
    d->pos += 2;
    return UARC_Good;
}

static uarc_status dec_fixed4(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 4);
    uint32_t v = uarc__ld32(d->pos);
    memcpy(dst, &v, 4);
    d->pos += 4;
    return UARC_Good;
}

static uarc_status dec_fixed8(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 8);
    uint64_t v = uarc__ld64(d->pos);
    memcpy(dst, &v, 8);
    d->pos += 8;
    return UARC_Good;
}

static inline void load_guid(const uint8_t *p, uarc_guid *g)
{
    g->data1 = uarc__ld32(p);
    g->data2 = uarc__ld16(p + 4);
    g->data3 = uarc__ld16(p + 6);
    memcpy(g->data4, p + 8, 8);
}

static uarc_status dec_guid(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 16);
    load_guid(d->pos, dst);
    d->pos += 16;
    return UARC_Good;
}

/* ---- Strings and arrays ------------------------------------------------------------------ */

/* Reads the body of a String/ByteString whose Int32 length was already read. */
static uarc_status dec_string_body(dec *d, uarc_string *s, int32_t len)
{
    if (len <= 0) {
        if (len < -1)
            return uarc__dec_fail(d, UARC_BadDecodingError, "string length %d is invalid",
                                  (int)len);
        s->length = 0;
        s->data = len == 0 ? UARC_EMPTY : NULL;
        return UARC_Good;
    }
    if (UNLIKELY((size_t)len > d->max_string))
        return uarc__dec_fail(d, UARC_BadEncodingLimitsExceeded,
                              "string length %d exceeds limit %zu", (int)len, d->max_string);
    NEED(d, (size_t)len);
    uarc_status status;
    uint8_t *p = uarc__dec_alloc(d, (size_t)len, &status);
    if (!p)
        return status;
    memcpy(p, d->pos, (size_t)len);
    d->pos += len;
    s->length = (size_t)len;
    s->data = p;
    return UARC_Good;
}

static uarc_status dec_string(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 4);
    int32_t len = (int32_t)uarc__ld32(d->pos);
    d->pos += 4;
    return dec_string_body(d, dst, len);
}

/* Wire size of kinds whose C layout equals the little-endian wire layout; 0 for the others. */
static const uint8_t memcpy_size[UARC_KIND_STRUCT + 1] = {
    [UARC_KIND_SBYTE] = 1,      [UARC_KIND_BYTE] = 1,     [UARC_KIND_INT16] = 2,
    [UARC_KIND_UINT16] = 2,     [UARC_KIND_INT32] = 4,    [UARC_KIND_UINT32] = 4,
    [UARC_KIND_INT64] = 8,      [UARC_KIND_UINT64] = 8,   [UARC_KIND_FLOAT] = 4,
    [UARC_KIND_DOUBLE] = 8,     [UARC_KIND_DATETIME] = 8, [UARC_KIND_GUID] = 16,
    [UARC_KIND_STATUSCODE] = 4, [UARC_KIND_ENUM] = 4,
};

_Static_assert(sizeof(uarc_guid) == 16, "Guid must have no padding");
_Static_assert(sizeof(uarc_NodeClass) == 4, "enumerations must be 32 bits wide");

/* A value of a kind whose C layout is its wire layout (`wire` bytes, from memcpy_size), read in
 * place: the fields of a data change are mostly such, and a call through dec_table for each
 * costs more than the read. */
static inline uarc_status dec_plain(dec *d, void *dst, size_t wire)
{
    NEED(d, wire);
    uarc__copy_small(dst, d->pos, wire);
    d->pos += wire;
    return UARC_Good;
}

/* Decodes the elements of an array whose memory is allocated; reports the failing index. */
static uarc_status dec_elements(dec *d, uint8_t *p, size_t n, const uarc_type *et)
{
    size_t wire = UARC__BIG_ENDIAN ? 0 : memcpy_size[et->kind];
    if (wire) {
        NEED(d, n * wire);
        memcpy(p, d->pos, n * wire);
        d->pos += n * wire;
        return UARC_Good;
    }
    dec_fn fn = dec_table[et->kind];
    size_t size = et->size;
    for (size_t i = 0; i < n; i++) {
        uarc_status s = fn(d, p + i * size, et);
        if (UNLIKELY(s))
            return uarc__dec_at(d, s, NULL, i);
    }
    return UARC_Good;
}

/* Checks an array length against the limits and the input left, then allocates the array. */
static uarc_status alloc_array(dec *d, int32_t n, const uarc_type *et, void **out)
{
    if (UNLIKELY((size_t)n > d->max_array))
        return uarc__dec_fail(d, UARC_BadEncodingLimitsExceeded,
                              "array length %d exceeds limit %zu", (int)n, d->max_array);
    /* Every element takes at least one byte, except values of a structure without fields. */
    size_t min_wire = memcpy_size[et->kind] ? memcpy_size[et->kind] : 1;
    if (et->kind == UARC_KIND_STRUCT && et->member_count == 0)
        min_wire = 0;
    if (UNLIKELY(min_wire && (size_t)n > (size_t)(d->end - d->pos) / min_wire))
        return uarc__dec_fail(d, UARC_BadDecodingError,
                              "array length %d exceeds the %zu bytes left", (int)n,
                              (size_t)(d->end - d->pos));
    if (UNLIKELY((size_t)n > SIZE_MAX / et->size))
        return uarc__dec_fail(d, UARC_BadEncodingLimitsExceeded, "array length %d is too large",
                              (int)n);
    uarc_status status;
    *out = uarc__dec_alloc(d, (size_t)n * et->size, &status);
    return *out ? UARC_Good : status;
}

static uarc_status dec_array(dec *d, void **data, size_t *count, const uarc_type *et)
{
    NEED(d, 4);
    int32_t n = (int32_t)uarc__ld32(d->pos);
    d->pos += 4;
    if (n <= 0) {
        if (n < -1)
            return uarc__dec_fail(d, UARC_BadDecodingError, "array length %d is invalid", (int)n);
        *data = n == 0 ? UARC_EMPTY : NULL;
        *count = 0;
        return UARC_Good;
    }
    void *p;
    uarc_status s = alloc_array(d, n, et, &p);
    if (s)
        return s;
    *data = p;
    *count = (size_t)n;
    return dec_elements(d, p, (size_t)n, et);
}

/* ---- NodeIds ----------------------------------------------------------------------------- */

static uarc_status dec_nodeid_body(dec *d, uarc_nodeid *id, uint8_t form)
{
    switch (form) {
    case 0:
        NEED(d, 1);
        id->namespace_index = 0;
        id->identifier_type = UARC_NODEID_NUMERIC;
        id->identifier.numeric = d->pos[0];
        d->pos += 1;
        return UARC_Good;
    case 1:
        NEED(d, 3);
        id->namespace_index = d->pos[0];
        id->identifier_type = UARC_NODEID_NUMERIC;
        id->identifier.numeric = uarc__ld16(d->pos + 1);
        d->pos += 3;
        return UARC_Good;
    case 2:
        NEED(d, 6);
        id->namespace_index = uarc__ld16(d->pos);
        id->identifier_type = UARC_NODEID_NUMERIC;
        id->identifier.numeric = uarc__ld32(d->pos + 2);
        d->pos += 6;
        return UARC_Good;
    case 3:
    case 5:
        NEED(d, 2);
        id->namespace_index = uarc__ld16(d->pos);
        d->pos += 2;
        id->identifier_type = form == 3 ? UARC_NODEID_STRING : UARC_NODEID_BYTESTRING;
        id->identifier.string = (uarc_string){0, NULL};
        return dec_string(d, &id->identifier.string, NULL);
    case 4:
        NEED(d, 18);
        id->namespace_index = uarc__ld16(d->pos);
        id->identifier_type = UARC_NODEID_GUID;
        load_guid(d->pos + 2, &id->identifier.guid);
        d->pos += 18;
        return UARC_Good;
    default:
        return uarc__dec_fail(d, UARC_BadDecodingError, "NodeId encoding 0x%02X is invalid", form);
    }
}

static uarc_status dec_nodeid(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    NEED(d, 1);
    uint8_t form = *d->pos++;
    if (form & 0xC0)
        return uarc__dec_fail(d, UARC_BadDecodingError,
                              "NodeId encoding 0x%02X has ExpandedNodeId flags", form);
    return dec_nodeid_body(d, dst, form);
}

static uarc_status dec_expanded_nodeid(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_expanded_nodeid *x = dst;
    NEED(d, 1);
    uint8_t form = *d->pos++;
    uarc_status s = dec_nodeid_body(d, &x->node_id, form & 0x3F);
    if (s)
        return s;
    x->namespace_uri = (uarc_string){0, NULL};
    x->server_index = 0;
    if (form & 0x80) {
        s = dec_string(d, &x->namespace_uri, NULL);
        if (s)
            return uarc__dec_at(d, s, "namespaceUri", 0);
    }
    if (form & 0x40) {
        NEED(d, 4);
        x->server_index = uarc__ld32(d->pos);
        d->pos += 4;
    }
    return UARC_Good;
}

/* ---- Other built-ins --------------------------------------------------------------------- */

static uarc_status dec_qualified_name(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_qualified_name *q = dst;
    NEED(d, 2);
    q->namespace_index = uarc__ld16(d->pos);
    d->pos += 2;
    return dec_string(d, &q->name, NULL);
}

static uarc_status dec_localized_text(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_localized_text *lt = dst;
    NEED(d, 1);
    uint8_t mask = *d->pos++;
    lt->locale = (uarc_string){0, NULL};
    lt->text = (uarc_string){0, NULL};
    uarc_status s;
    if ((mask & 0x01) && (s = dec_string(d, &lt->locale, NULL)))
        return uarc__dec_at(d, s, "locale", 0);
    if ((mask & 0x02) && (s = dec_string(d, &lt->text, NULL)))
        return uarc__dec_at(d, s, "text", 0);
    return UARC_Good;
}

static uarc_status dec_struct(dec *d, void *dst, const uarc_type *t);

static uarc_status dec_extension_object(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_extension_object *eo = dst;
    eo->encoding = UARC_EXTENSION_OBJECT_EMPTY;
    eo->content.encoded.body = (uarc_string){0, NULL};
    uarc_status s = dec_nodeid(d, &eo->content.encoded.type_id, NULL);
    if (s)
        return uarc__dec_at(d, s, "typeId", 0);
    NEED(d, 1);
    uint8_t encoding = *d->pos++;
    if (encoding == 0)
        return UARC_Good;
    if (encoding > 2)
        return uarc__dec_fail(d, UARC_BadDecodingError, "ExtensionObject encoding %u is invalid",
                              encoding);
    NEED(d, 4);
    int32_t len = (int32_t)uarc__ld32(d->pos);
    d->pos += 4;
    const uarc_nodeid *tid = &eo->content.encoded.type_id;
    const uarc_type *bt = NULL;
    if (encoding == 1 && len >= 0 && tid->namespace_index == 0 &&
        tid->identifier_type == UARC_NODEID_NUMERIC)
        bt = uarc_type_by_encoding_id(tid->identifier.numeric);
    if (!bt) {
        eo->encoding = encoding == 1 ? UARC_EXTENSION_OBJECT_BINARY : UARC_EXTENSION_OBJECT_XML;
        s = dec_string_body(d, &eo->content.encoded.body, len);
        return s ? uarc__dec_at(d, s, "body", 0) : UARC_Good;
    }
    NEED(d, (size_t)len);
    void *body = uarc__dec_alloc(d, bt->size, &s);
    if (!body)
        return s;
    /* The numeric type id owns nothing, so the union can switch to the decoded form now. */
    eo->encoding = UARC_EXTENSION_OBJECT_DECODED;
    eo->content.decoded.type = bt;
    eo->content.decoded.data = body;
    const uint8_t *end = d->end;
    d->end = d->pos + len;
    s = dec_struct(d, body, bt);
    d->pos = d->end; /* bytes the known type does not use are skipped */
    d->end = end;
    return s ? uarc__dec_at(d, s, bt->name, 0) : UARC_Good;
}

static uarc_status dec_variant(dec *d, void *dst, const uarc_type *t);

static uarc_status dec_data_value(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_data_value *dv = dst;
    NEED(d, 1);
    uint8_t mask = *d->pos++;
    dv->has_value = mask & 0x01;
    dv->has_status = (mask & 0x02) != 0;
    dv->has_source_timestamp = (mask & 0x04) != 0;
    dv->has_server_timestamp = (mask & 0x08) != 0;
    dv->has_source_picoseconds = (mask & 0x10) != 0;
    dv->has_server_picoseconds = (mask & 0x20) != 0;
    if (mask & 0x01) {
        uarc_status s = dec_variant(d, &dv->value, NULL);
        if (UNLIKELY(s))
            return uarc__dec_at(d, s, "value", 0);
    } else {
        dv->value = (uarc_variant){0};
    }
    dv->status = 0;
    dv->source_timestamp = 0;
    dv->server_timestamp = 0;
    dv->source_picoseconds = 0;
    dv->server_picoseconds = 0;
    if (mask & 0x02) {
        NEED(d, 4);
        dv->status = uarc__ld32(d->pos);
        d->pos += 4;
    }
    if (mask & 0x04) {
        NEED(d, 8);
        dv->source_timestamp = (int64_t)uarc__ld64(d->pos);
        d->pos += 8;
    }
    if (mask & 0x10) {
        NEED(d, 2);
        dv->source_picoseconds = uarc__ld16(d->pos);
        d->pos += 2;
    }
    if (mask & 0x08) {
        NEED(d, 8);
        dv->server_timestamp = (int64_t)uarc__ld64(d->pos);
        d->pos += 8;
    }
    if (mask & 0x20) {
        NEED(d, 2);
        dv->server_picoseconds = uarc__ld16(d->pos);
        d->pos += 2;
    }
    return UARC_Good;
}

static uarc_status dec_dimensions(dec *d, uarc_variant *v)
{
    NEED(d, 4);
    int32_t n = (int32_t)uarc__ld32(d->pos);
    d->pos += 4;
    if (n <= 0)
        return uarc__dec_fail(d, UARC_BadDecodingError, "array dimension count %d is invalid",
                              (int)n);
    void *p;
    uarc_status s = alloc_array(d, n, UARC_T(Int32), &p);
    if (s)
        return s;
    v->array_dimensions = p;
    v->array_dimensions_size = (size_t)n;
    NEED(d, (size_t)n * 4);
    /* The product stops growing once past the length (no overflow); a zero makes it zero. */
    uint64_t product = 1;
    bool zero = false;
    for (int32_t i = 0; i < n; i++) {
        int32_t dim = (int32_t)uarc__ld32(d->pos + 4 * (size_t)i);
        if (dim < 0)
            return uarc__dec_fail(d, UARC_BadDecodingError, "array dimension %d is negative",
                                  (int)i);
        v->array_dimensions[i] = dim;
        if (dim == 0)
            zero = true;
        else if (product <= v->array_length)
            product *= (uint64_t)dim;
    }
    d->pos += (size_t)n * 4;
    if ((zero ? 0 : product) != v->array_length)
        return uarc__dec_fail(d, UARC_BadDecodingError,
                              "array dimensions do not match the array length %zu",
                              v->array_length);
    return UARC_Good;
}

static uarc_status dec_variant(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_variant *v = dst;
    NEED(d, 1);
    uint8_t mask = *d->pos++;
    uint8_t id = mask & 0x3F;
    v->data = NULL;
    v->array_length = 0;
    v->is_array = false;
    v->array_dimensions_size = 0;
    v->array_dimensions = NULL;
    v->type = NULL;
    if (id == 0) {
        if (mask)
            return uarc__dec_fail(d, UARC_BadDecodingError, "empty Variant with flags 0x%02X",
                                  mask);
        return UARC_Good;
    }
    if (id > UARC_KIND_DIAGNOSTICINFO)
        return uarc__dec_fail(d, UARC_BadDecodingError, "Variant type %u is invalid", id);
    const uarc_type *et = &uarc_types[id - 1];
    v->type = et;
    ENTER(d);
    uarc_status s;
    if (!(mask & 0x80)) {
        if (mask & 0x40) {
            LEAVE(d);
            return uarc__dec_fail(d, UARC_BadDecodingError, "scalar Variant with array dimensions");
        }
        v->data = uarc__dec_alloc(d, et->size, &s);
        if (UNLIKELY(!v->data)) {
            LEAVE(d);
            return s;
        }
        size_t wire = UARC__BIG_ENDIAN ? 0 : memcpy_size[id];
        s = wire ? dec_plain(d, v->data, wire) : dec_table[id](d, v->data, et);
        LEAVE(d);
        return s;
    }
    v->is_array = true;
    s = dec_array(d, &v->data, &v->array_length, et);
    if (!s && (mask & 0x40)) {
        if (!v->data)
            s = uarc__dec_fail(d, UARC_BadDecodingError, "null array with array dimensions");
        else
            s = dec_dimensions(d, v);
    }
    LEAVE(d);
    return s;
}

static uarc_status dec_diagnostic_info(dec *d, void *dst, const uarc_type *t)
{
    (void)t;
    uarc_diagnostic_info *di = dst;
    NEED(d, 1);
    uint8_t mask = *d->pos++;
    memset(di, 0, sizeof *di);
    di->has_symbolic_id = mask & 0x01;
    di->has_namespace_uri = (mask & 0x02) != 0;
    di->has_localized_text = (mask & 0x04) != 0;
    di->has_locale = (mask & 0x08) != 0;
    di->has_additional_info = (mask & 0x10) != 0;
    di->has_inner_status_code = (mask & 0x20) != 0;
    di->has_inner_diagnostic_info = (mask & 0x40) != 0;
    int32_t *ints[4] = {&di->symbolic_id, &di->namespace_uri, &di->locale, &di->localized_text};
    static const uint8_t bits[4] = {0x01, 0x02, 0x08, 0x04};
    for (int i = 0; i < 4; i++) {
        if (mask & bits[i]) {
            NEED(d, 4);
            *ints[i] = (int32_t)uarc__ld32(d->pos);
            d->pos += 4;
        }
    }
    uarc_status s;
    if ((mask & 0x10) && (s = dec_string(d, &di->additional_info, NULL)))
        return uarc__dec_at(d, s, "additionalInfo", 0);
    if (mask & 0x20) {
        NEED(d, 4);
        di->inner_status_code = uarc__ld32(d->pos);
        d->pos += 4;
    }
    if (mask & 0x40) {
        ENTER(d);
        di->inner_diagnostic_info = uarc__dec_alloc(d, sizeof *di, &s);
        if (!di->inner_diagnostic_info) {
            LEAVE(d);
            return s;
        }
        s = dec_diagnostic_info(d, di->inner_diagnostic_info, NULL);
        LEAVE(d);
        if (s)
            return uarc__dec_at(d, s, "innerDiagnosticInfo", 0);
    }
    return UARC_Good;
}

/* ---- Structures -------------------------------------------------------------------------- */

static uarc_status dec_struct(dec *d, void *dst, const uarc_type *t)
{
    ENTER(d);
    uint8_t *base = dst;
    for (uint16_t i = 0; i < t->member_count; i++) {
        const uarc_member *m = &t->members[i];
        uarc_status s;
        size_t wire = UARC__BIG_ENDIAN ? 0 : memcpy_size[m->type->kind];
        if (m->is_array)
            s = dec_array(d, (void **)(base + m->offset), (size_t *)(base + m->size_offset),
                          m->type);
        else if (wire)
            s = dec_plain(d, base + m->offset, wire);
        else
            s = dec_table[m->type->kind](d, base + m->offset, m->type);
        if (UNLIKELY(s)) {
            LEAVE(d);
            return uarc__dec_at(d, s, m->name, 0);
        }
    }
    LEAVE(d);
    return UARC_Good;
}

static const dec_fn dec_table[UARC_KIND_STRUCT + 1] = {
    [UARC_KIND_BOOLEAN] = dec_boolean,
    [UARC_KIND_SBYTE] = dec_fixed1,
    [UARC_KIND_BYTE] = dec_fixed1,
    [UARC_KIND_INT16] = dec_fixed2,
    [UARC_KIND_UINT16] = dec_fixed2,
    [UARC_KIND_INT32] = dec_fixed4,
    [UARC_KIND_UINT32] = dec_fixed4,
    [UARC_KIND_INT64] = dec_fixed8,
    [UARC_KIND_UINT64] = dec_fixed8,
    [UARC_KIND_FLOAT] = dec_fixed4,
    [UARC_KIND_DOUBLE] = dec_fixed8,
    [UARC_KIND_STRING] = dec_string,
    [UARC_KIND_DATETIME] = dec_fixed8,
    [UARC_KIND_GUID] = dec_guid,
    [UARC_KIND_BYTESTRING] = dec_string,
    [UARC_KIND_XMLELEMENT] = dec_string,
    [UARC_KIND_NODEID] = dec_nodeid,
    [UARC_KIND_EXPANDEDNODEID] = dec_expanded_nodeid,
    [UARC_KIND_STATUSCODE] = dec_fixed4,
    [UARC_KIND_QUALIFIEDNAME] = dec_qualified_name,
    [UARC_KIND_LOCALIZEDTEXT] = dec_localized_text,
    [UARC_KIND_EXTENSIONOBJECT] = dec_extension_object,
    [UARC_KIND_DATAVALUE] = dec_data_value,
    [UARC_KIND_VARIANT] = dec_variant,
    [UARC_KIND_DIAGNOSTICINFO] = dec_diagnostic_info,
    [UARC_KIND_ENUM] = dec_fixed4,
    [UARC_KIND_STRUCT] = dec_struct,
};

/* ---- Entry point ------------------------------------------------------------------------- */

static uarc_status decode(const void *data, size_t length, size_t *offset, void *dst,
                          const uarc_type *type, const uarc_decode_config *options,
                          uarc_memory_budget *budget, size_t *charged)
{
    static const uarc_decode_config defaults = {0};
    const uarc_decode_config *o = options ? options : &defaults;
    if (!offset || *offset > length || !dst || !type || (!data && length))
        return UARC_BadInvalidArgument;
    static const uint8_t nothing[1];
    const uint8_t *bytes = data ? data : nothing; /* no arithmetic on NULL (length is 0 then) */
    dec d;
    d.pos = bytes + *offset;
    d.end = bytes + length;
    d.arena = o->arena;
    d.alloc_left = o->max_alloc ? o->max_alloc : UARC_DECODE_DEFAULT_MAX_ALLOC;
    d.budget = budget;
    d.charged = d.credit = 0;
    d.max_string =
        o->max_string_length ? o->max_string_length : UARC_DECODE_DEFAULT_MAX_STRING_LENGTH;
    d.max_array = o->max_array_length ? o->max_array_length : UARC_DECODE_DEFAULT_MAX_ARRAY_LENGTH;
    d.depth_left = o->max_depth ? o->max_depth : UARC_DECODE_DEFAULT_MAX_DEPTH;
    d.nseg = 0;
    d.seg_dropped = false;
    d.msg[0] = '\0';
    uarc__arena_mark mark = {NULL, 0};
    if (d.arena)
        mark = uarc__arena_mark_get(d.arena);
    memset(dst, 0, type->size);
    uarc_status s = dec_table[type->kind](&d, dst, type);
    if (LIKELY(s == UARC_Good)) {
        *offset = (size_t)(d.pos - (const uint8_t *)data);
        uarc__budget_release(d.budget, d.credit);
        if (charged)
            *charged = d.charged - d.credit;
        return UARC_Good;
    }
    uarc__dec_write_detail(&d, type, o->detail, o->detail_size);
    if (d.arena)
        uarc__arena_release(d.arena, mark);
    else
        uarc_clear(dst, type);
    uarc__budget_release(d.budget, d.charged);
    memset(dst, 0, type->size);
    return s;
}

UARC_API uarc_status uarc_decode(const void *data, size_t length, size_t *offset, void *dst,
                                 const uarc_type *type, const uarc_decode_config *options)
{
    return decode(data, length, offset, dst, type, options, NULL, NULL);
}

uarc_status uarc__decode_charged(const void *data, size_t length, size_t *offset, void *dst,
                                 const uarc_type *type, const uarc_decode_config *options,
                                 uarc_memory_budget *budget, size_t *charged)
{
    *charged = 0;
    return decode(data, length, offset, dst, type, options, budget, charged);
}
