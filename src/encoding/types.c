/* Generic operations over the type descriptors: init, clear, copy, equal, lookups. */
#include <string.h>

#include "core/alloc.h"
#include "encoding/type_table.h"
#include "uarc/types.h"

static bool is_real(const void *p)
{
    return p && p != UARC_EMPTY;
}

/* ---- Lookups ----------------------------------------------------------------------------- */

UARC_API const uarc_type *uarc_type_by_encoding_id(uint32_t id)
{
    size_t lo = 0, hi = uarc__types_by_encoding_id_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = uarc__types_by_encoding_id[mid].id;
        if (v == id)
            return &uarc_types[uarc__types_by_encoding_id[mid].index];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

UARC_API const uarc_type *uarc_type_by_type_id(uint32_t type_id)
{
    for (size_t i = 0; type_id && i < UARC_TYPE_COUNT; i++)
        if (uarc_types[i].type_id == type_id)
            return &uarc_types[i];
    return NULL;
}

UARC_API const uarc_type *uarc_type_by_name(const char *name)
{
    for (size_t i = 0; name && i < UARC_TYPE_COUNT; i++)
        if (strcmp(uarc_types[i].name, name) == 0)
            return &uarc_types[i];
    return NULL;
}

UARC_API const char *uarc_enum_name(const uarc_type *type, int32_t value)
{
    if (!type || type->index < uarc__enum_first ||
        type->index - uarc__enum_first >= uarc__enum_table_count)
        return NULL;
    const uarc__enum_table *t = &uarc__enum_tables[type->index - uarc__enum_first];
    for (size_t i = 0; i < t->count; i++)
        if (t->values[i].value == value)
            return t->values[i].name;
    return NULL;
}

UARC_API const char *uarc_attribute_name(uint32_t attribute_id)
{
    return attribute_id < uarc__attribute_name_count ? uarc__attribute_names[attribute_id] : NULL;
}

/* ---- Clear ------------------------------------------------------------------------------- */

static void clear_value(void *p, const uarc_type *t);

static void clear_string(uarc_string *s)
{
    if (is_real(s->data))
        uarc__free(s->data);
    s->data = NULL;
    s->length = 0;
}

static void clear_array(void *data, size_t n, const uarc_type *t)
{
    if (!is_real(data))
        return;
    if (!t->pointer_free)
        for (size_t i = 0; i < n; i++)
            clear_value((uint8_t *)data + i * t->size, t);
    uarc__free(data);
}

static void clear_nodeid(uarc_nodeid *id)
{
    if (id->identifier_type == UARC_NODEID_STRING || id->identifier_type == UARC_NODEID_BYTESTRING)
        clear_string(&id->identifier.string);
}

static void clear_value(void *p, const uarc_type *t)
{
    if (t->pointer_free)
        return;
    switch (t->kind) {
    case UARC_KIND_STRING:
    case UARC_KIND_BYTESTRING:
    case UARC_KIND_XMLELEMENT:
        clear_string(p);
        break;
    case UARC_KIND_NODEID:
        clear_nodeid(p);
        break;
    case UARC_KIND_EXPANDEDNODEID: {
        uarc_expanded_nodeid *x = p;
        clear_nodeid(&x->node_id);
        clear_string(&x->namespace_uri);
        break;
    }
    case UARC_KIND_QUALIFIEDNAME:
        clear_string(&((uarc_qualified_name *)p)->name);
        break;
    case UARC_KIND_LOCALIZEDTEXT:
        clear_string(&((uarc_localized_text *)p)->locale);
        clear_string(&((uarc_localized_text *)p)->text);
        break;
    case UARC_KIND_EXTENSIONOBJECT: {
        uarc_extension_object *eo = p;
        if (eo->encoding == UARC_EXTENSION_OBJECT_DECODED) {
            if (eo->content.decoded.type && eo->content.decoded.data)
                uarc_delete(eo->content.decoded.data, eo->content.decoded.type);
        } else {
            clear_nodeid(&eo->content.encoded.type_id);
            clear_string(&eo->content.encoded.body);
        }
        break;
    }
    case UARC_KIND_DATAVALUE:
        clear_value(&((uarc_data_value *)p)->value, UARC_T(Variant));
        break;
    case UARC_KIND_VARIANT: {
        uarc_variant *v = p;
        if (v->type) {
            if (v->is_array)
                clear_array(v->data, v->array_length, v->type);
            else if (v->data)
                uarc_delete(v->data, v->type);
        }
        if (is_real(v->array_dimensions))
            uarc__free(v->array_dimensions);
        break;
    }
    case UARC_KIND_DIAGNOSTICINFO: {
        uarc_diagnostic_info *di = p;
        clear_string(&di->additional_info);
        if (di->inner_diagnostic_info)
            uarc_delete(di->inner_diagnostic_info, UARC_T(DiagnosticInfo));
        break;
    }
    case UARC_KIND_STRUCT:
        for (uint16_t i = 0; i < t->member_count; i++) {
            const uarc_member *m = &t->members[i];
            uint8_t *f = (uint8_t *)p + m->offset;
            if (m->is_array)
                clear_array(*(void **)f, *(size_t *)((uint8_t *)p + m->size_offset), m->type);
            else
                clear_value(f, m->type);
        }
        break;
    default:
        break;
    }
}

UARC_API void uarc_init(void *value, const uarc_type *type)
{
    memset(value, 0, type->size);
}

UARC_API void uarc_clear(void *value, const uarc_type *type)
{
    if (!value)
        return;
    clear_value(value, type);
    memset(value, 0, type->size);
}

UARC_API void *uarc_new(const uarc_type *type)
{
    return uarc__calloc(1, type->size);
}

UARC_API void uarc_delete(void *value, const uarc_type *type)
{
    if (!value)
        return;
    clear_value(value, type);
    uarc__free(value);
}

UARC_API void uarc_array_delete(void *array, size_t count, const uarc_type *type)
{
    clear_array(array, count, type);
}

UARC_API void uarc_free(void *ptr)
{
    uarc__free(ptr);
}

/* ---- Copy -------------------------------------------------------------------------------- */

static uarc_status copy_value(const void *src, void *dst, const uarc_type *t);

static uarc_status copy_string(const uarc_string *src, uarc_string *dst)
{
    dst->length = 0;
    dst->data = src->data == UARC_EMPTY || (src->data && !src->length) ? UARC_EMPTY : NULL;
    if (!is_real(src->data) || !src->length)
        return UARC_Good;
    dst->data = uarc__malloc(src->length);
    if (!dst->data)
        return UARC_BadOutOfMemory;
    memcpy(dst->data, src->data, src->length);
    dst->length = src->length;
    return UARC_Good;
}

/* Copies an array; *dst is NULL, UARC_EMPTY or a new array of n values. */
static uarc_status copy_array(const void *src, size_t n, void **dst, const uarc_type *t)
{
    *dst = src ? UARC_EMPTY : NULL;
    if (!is_real(src) || n == 0)
        return UARC_Good;
    if (n > SIZE_MAX / t->size)
        return UARC_BadOutOfMemory;
    uint8_t *p = uarc__calloc(n, t->size);
    if (!p)
        return UARC_BadOutOfMemory;
    *dst = p;
    if (t->pointer_free) {
        memcpy(p, src, n * t->size);
        return UARC_Good;
    }
    for (size_t i = 0; i < n; i++) {
        uarc_status s = copy_value((const uint8_t *)src + i * t->size, p + i * t->size, t);
        if (s)
            return s;
    }
    return UARC_Good;
}

static uarc_status copy_nodeid(const uarc_nodeid *src, uarc_nodeid *dst)
{
    *dst = *src;
    if (src->identifier_type == UARC_NODEID_STRING ||
        src->identifier_type == UARC_NODEID_BYTESTRING)
        return copy_string(&src->identifier.string, &dst->identifier.string);
    return UARC_Good;
}

/* A new heap copy of one value. */
static uarc_status copy_new(const void *src, const uarc_type *t, void **out)
{
    *out = uarc__calloc(1, t->size);
    if (!*out)
        return UARC_BadOutOfMemory;
    return copy_value(src, *out, t);
}

/* Copies into zero-filled `dst`; on failure `dst` holds a partial copy that clear can free. */
static uarc_status copy_value(const void *src, void *dst, const uarc_type *t)
{
    if (t->pointer_free) {
        memcpy(dst, src, t->size);
        return UARC_Good;
    }
    switch (t->kind) {
    case UARC_KIND_STRING:
    case UARC_KIND_BYTESTRING:
    case UARC_KIND_XMLELEMENT:
        return copy_string(src, dst);
    case UARC_KIND_NODEID:
        return copy_nodeid(src, dst);
    case UARC_KIND_EXPANDEDNODEID: {
        const uarc_expanded_nodeid *s = src;
        uarc_expanded_nodeid *d = dst;
        d->server_index = s->server_index;
        uarc_status st = copy_nodeid(&s->node_id, &d->node_id);
        return st ? st : copy_string(&s->namespace_uri, &d->namespace_uri);
    }
    case UARC_KIND_QUALIFIEDNAME: {
        const uarc_qualified_name *s = src;
        uarc_qualified_name *d = dst;
        d->namespace_index = s->namespace_index;
        return copy_string(&s->name, &d->name);
    }
    case UARC_KIND_LOCALIZEDTEXT: {
        const uarc_localized_text *s = src;
        uarc_localized_text *d = dst;
        uarc_status st = copy_string(&s->locale, &d->locale);
        return st ? st : copy_string(&s->text, &d->text);
    }
    case UARC_KIND_EXTENSIONOBJECT: {
        const uarc_extension_object *s = src;
        uarc_extension_object *d = dst;
        d->encoding = s->encoding;
        if (s->encoding == UARC_EXTENSION_OBJECT_DECODED) {
            d->content.decoded.type = s->content.decoded.type;
            d->content.decoded.data = NULL;
            if (!s->content.decoded.type || !s->content.decoded.data)
                return UARC_Good;
            return copy_new(s->content.decoded.data, s->content.decoded.type,
                            &d->content.decoded.data);
        }
        uarc_status st = copy_nodeid(&s->content.encoded.type_id, &d->content.encoded.type_id);
        return st ? st : copy_string(&s->content.encoded.body, &d->content.encoded.body);
    }
    case UARC_KIND_DATAVALUE: {
        const uarc_data_value *s = src;
        uarc_data_value *d = dst;
        *d = *s;
        d->value = (uarc_variant){0};
        return copy_value(&s->value, &d->value, UARC_T(Variant));
    }
    case UARC_KIND_VARIANT: {
        const uarc_variant *s = src;
        uarc_variant *d = dst;
        d->type = s->type;
        d->is_array = s->is_array;
        uarc_status st = UARC_Good;
        if (s->type && s->is_array) {
            st = copy_array(s->data, s->array_length, &d->data, s->type);
            if (d->data != UARC_EMPTY && d->data)
                d->array_length = s->array_length;
        } else if (s->type && s->data) {
            st = copy_new(s->data, s->type, &d->data);
        }
        if (st)
            return st;
        void *dims;
        st = copy_array(s->array_dimensions, s->array_dimensions_size, &dims, UARC_T(Int32));
        d->array_dimensions = dims;
        if (is_real(dims))
            d->array_dimensions_size = s->array_dimensions_size;
        return st;
    }
    case UARC_KIND_DIAGNOSTICINFO: {
        const uarc_diagnostic_info *s = src;
        uarc_diagnostic_info *d = dst;
        *d = *s;
        d->additional_info = (uarc_string){0, NULL};
        d->inner_diagnostic_info = NULL;
        uarc_status st = copy_string(&s->additional_info, &d->additional_info);
        if (!st && s->inner_diagnostic_info)
            st = copy_new(s->inner_diagnostic_info, UARC_T(DiagnosticInfo),
                          (void **)&d->inner_diagnostic_info);
        return st;
    }
    case UARC_KIND_STRUCT:
        for (uint16_t i = 0; i < t->member_count; i++) {
            const uarc_member *m = &t->members[i];
            const uint8_t *sf = (const uint8_t *)src + m->offset;
            uint8_t *df = (uint8_t *)dst + m->offset;
            uarc_status st;
            if (m->is_array) {
                size_t n = *(const size_t *)((const uint8_t *)src + m->size_offset);
                st = copy_array(*(void *const *)sf, n, (void **)df, m->type);
                if (is_real(*(void **)df))
                    *(size_t *)((uint8_t *)dst + m->size_offset) = n;
            } else {
                st = copy_value(sf, df, m->type);
            }
            if (st)
                return st;
        }
        return UARC_Good;
    default:
        memcpy(dst, src, t->size);
        return UARC_Good;
    }
}

UARC_API uarc_status uarc_copy(const void *src, void *dst, const uarc_type *type)
{
    memset(dst, 0, type->size);
    uarc_status s = copy_value(src, dst, type);
    if (s)
        uarc_clear(dst, type);
    return s;
}

/* ---- Equal ------------------------------------------------------------------------------- */

static bool equal_value(const void *a, const void *b, const uarc_type *t);

static bool equal_string(const uarc_string *a, const uarc_string *b)
{
    if (!a->data || !b->data)
        return !a->data && !b->data;
    if (a->length != b->length)
        return false;
    if (a->length == 0)
        return true;
    return memcmp(a->data, b->data, a->length) == 0;
}

static bool equal_array(const void *a, size_t na, const void *b, size_t nb, const uarc_type *t)
{
    if (!a || !b)
        return !a && !b;
    if (na != nb)
        return false;
    if (na == 0)
        return true;
    if (t->pointer_free && t->kind != UARC_KIND_STRUCT)
        return memcmp(a, b, na * t->size) == 0;
    for (size_t i = 0; i < na; i++)
        if (!equal_value((const uint8_t *)a + i * t->size, (const uint8_t *)b + i * t->size, t))
            return false;
    return true;
}

static bool equal_nodeid(const uarc_nodeid *a, const uarc_nodeid *b)
{
    if (a->namespace_index != b->namespace_index || a->identifier_type != b->identifier_type)
        return false;
    switch (a->identifier_type) {
    case UARC_NODEID_NUMERIC:
        return a->identifier.numeric == b->identifier.numeric;
    case UARC_NODEID_GUID:
        return memcmp(&a->identifier.guid, &b->identifier.guid, sizeof(uarc_guid)) == 0;
    default:
        return equal_string(&a->identifier.string, &b->identifier.string);
    }
}

static bool equal_value(const void *a, const void *b, const uarc_type *t)
{
    switch (t->kind) {
    case UARC_KIND_BOOLEAN:
        return *(const bool *)a == *(const bool *)b;
    case UARC_KIND_STRING:
    case UARC_KIND_BYTESTRING:
    case UARC_KIND_XMLELEMENT:
        return equal_string(a, b);
    case UARC_KIND_NODEID:
        return equal_nodeid(a, b);
    case UARC_KIND_EXPANDEDNODEID: {
        const uarc_expanded_nodeid *x = a, *y = b;
        return x->server_index == y->server_index && equal_nodeid(&x->node_id, &y->node_id) &&
               equal_string(&x->namespace_uri, &y->namespace_uri);
    }
    case UARC_KIND_QUALIFIEDNAME: {
        const uarc_qualified_name *x = a, *y = b;
        return x->namespace_index == y->namespace_index && equal_string(&x->name, &y->name);
    }
    case UARC_KIND_LOCALIZEDTEXT: {
        const uarc_localized_text *x = a, *y = b;
        return equal_string(&x->locale, &y->locale) && equal_string(&x->text, &y->text);
    }
    case UARC_KIND_EXTENSIONOBJECT: {
        const uarc_extension_object *x = a, *y = b;
        if (x->encoding != y->encoding)
            return false;
        if (x->encoding == UARC_EXTENSION_OBJECT_DECODED) {
            const uarc_type *xt = x->content.decoded.type;
            if (xt != y->content.decoded.type)
                return false;
            if (!x->content.decoded.data || !y->content.decoded.data)
                return x->content.decoded.data == y->content.decoded.data;
            return !xt || equal_value(x->content.decoded.data, y->content.decoded.data, xt);
        }
        return equal_nodeid(&x->content.encoded.type_id, &y->content.encoded.type_id) &&
               equal_string(&x->content.encoded.body, &y->content.encoded.body);
    }
    case UARC_KIND_DATAVALUE: {
        const uarc_data_value *x = a, *y = b;
        if (x->has_value != y->has_value || x->has_status != y->has_status ||
            x->has_source_timestamp != y->has_source_timestamp ||
            x->has_server_timestamp != y->has_server_timestamp ||
            x->has_source_picoseconds != y->has_source_picoseconds ||
            x->has_server_picoseconds != y->has_server_picoseconds)
            return false;
        if (x->has_value && !equal_value(&x->value, &y->value, UARC_T(Variant)))
            return false;
        return (!x->has_status || x->status == y->status) &&
               (!x->has_source_timestamp || x->source_timestamp == y->source_timestamp) &&
               (!x->has_server_timestamp || x->server_timestamp == y->server_timestamp) &&
               (!x->has_source_picoseconds || x->source_picoseconds == y->source_picoseconds) &&
               (!x->has_server_picoseconds || x->server_picoseconds == y->server_picoseconds);
    }
    case UARC_KIND_VARIANT: {
        const uarc_variant *x = a, *y = b;
        if (x->type != y->type)
            return false;
        if (!x->type)
            return true;
        if (x->is_array != y->is_array ||
            !equal_array(x->array_dimensions, x->array_dimensions_size, y->array_dimensions,
                         y->array_dimensions_size, UARC_T(Int32)))
            return false;
        if (x->is_array)
            return equal_array(x->data, x->array_length, y->data, y->array_length, x->type);
        if (!x->data || !y->data)
            return x->data == y->data;
        return equal_value(x->data, y->data, x->type);
    }
    case UARC_KIND_DIAGNOSTICINFO: {
        const uarc_diagnostic_info *x = a, *y = b;
        if (x->has_symbolic_id != y->has_symbolic_id ||
            x->has_namespace_uri != y->has_namespace_uri ||
            x->has_localized_text != y->has_localized_text || x->has_locale != y->has_locale ||
            x->has_additional_info != y->has_additional_info ||
            x->has_inner_status_code != y->has_inner_status_code)
            return false;
        if ((x->has_symbolic_id && x->symbolic_id != y->symbolic_id) ||
            (x->has_namespace_uri && x->namespace_uri != y->namespace_uri) ||
            (x->has_localized_text && x->localized_text != y->localized_text) ||
            (x->has_locale && x->locale != y->locale) ||
            (x->has_additional_info && !equal_string(&x->additional_info, &y->additional_info)) ||
            (x->has_inner_status_code && x->inner_status_code != y->inner_status_code))
            return false;
        const uarc_diagnostic_info *xi =
            x->has_inner_diagnostic_info ? x->inner_diagnostic_info : NULL;
        const uarc_diagnostic_info *yi =
            y->has_inner_diagnostic_info ? y->inner_diagnostic_info : NULL;
        if (!xi || !yi)
            return !xi && !yi;
        return equal_value(xi, yi, t);
    }
    case UARC_KIND_STRUCT:
        for (uint16_t i = 0; i < t->member_count; i++) {
            const uarc_member *m = &t->members[i];
            const uint8_t *fa = (const uint8_t *)a + m->offset;
            const uint8_t *fb = (const uint8_t *)b + m->offset;
            bool eq;
            if (m->is_array)
                eq = equal_array(*(void *const *)fa,
                                 *(const size_t *)((const uint8_t *)a + m->size_offset),
                                 *(void *const *)fb,
                                 *(const size_t *)((const uint8_t *)b + m->size_offset), m->type);
            else
                eq = equal_value(fa, fb, m->type);
            if (!eq)
                return false;
        }
        return true;
    default:
        return memcmp(a, b, t->size) == 0;
    }
}

UARC_API bool uarc_equal(const void *a, const void *b, const uarc_type *type)
{
    return equal_value(a, b, type);
}

/* ---- Small constructors ------------------------------------------------------------------ */

UARC_API uarc_string uarc_string_from(const char *text)
{
    uarc_string s = {0, NULL};
    if (!text)
        return s;
    size_t n = strlen(text);
    if (n == 0) {
        s.data = UARC_EMPTY;
        return s;
    }
    s.data = uarc__malloc(n);
    if (s.data) {
        memcpy(s.data, text, n);
        s.length = n;
    }
    return s;
}

UARC_API bool uarc_string_equal_cstr(const uarc_string *s, const char *text)
{
    if (!s->data || !text)
        return !s->data && !text;
    size_t n = strlen(text);
    return n == s->length && (n == 0 || memcmp(s->data, text, n) == 0);
}

UARC_API uarc_nodeid uarc_nodeid_numeric(uint16_t namespace_index, uint32_t identifier)
{
    uarc_nodeid id = {.namespace_index = namespace_index,
                      .identifier_type = UARC_NODEID_NUMERIC,
                      .identifier.numeric = identifier};
    return id;
}

UARC_API uarc_nodeid uarc_nodeid_string(uint16_t namespace_index, const char *text)
{
    uarc_nodeid id = {.namespace_index = namespace_index, .identifier_type = UARC_NODEID_STRING};
    id.identifier.string = uarc_string_from(text);
    return id;
}

UARC_API uarc_status uarc_variant_set_scalar(uarc_variant *variant, const void *value,
                                             const uarc_type *type)
{
    void *p;
    memset(variant, 0, sizeof *variant);
    uarc_status s = copy_new(value, type, &p);
    if (s) {
        if (p)
            uarc_delete(p, type);
        return s;
    }
    variant->type = type;
    variant->data = p;
    return UARC_Good;
}

UARC_API uarc_status uarc_variant_set_array(uarc_variant *variant, const void *array, size_t count,
                                            const uarc_type *type)
{
    memset(variant, 0, sizeof *variant);
    void *p;
    uarc_status s = copy_array(array, count, &p, type);
    if (s) {
        clear_array(p, count, type);
        return s;
    }
    variant->type = type;
    variant->is_array = true;
    variant->data = p;
    variant->array_length = is_real(p) ? count : 0;
    return UARC_Good;
}
