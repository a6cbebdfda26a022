/* JSON output of any value (OPC UA Part 6 §5.4, the non-reversible form). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/text.h"

#define MAX_JSON_DEPTH 256

typedef struct jw {
    uarc__buf b;
    uint32_t depth_left;
} jw;

static void json_value(jw *w, const void *v, const uarc_type *t);

/* Writes a JSON string (the rules are in uarc_json_string()'s header comment). */
static void buf_json_string(uarc__buf *b, const uint8_t *s, size_t n)
{
    uarc__buf_putc(b, '"');
    size_t run = 0; /* start of bytes that need no escaping */
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
            i++;
            continue;
        }
        size_t len = 0;
        if (c >= 0x80) {
            uint32_t cp = 0;
            if (c >= 0xC2 && c <= 0xDF)
                len = 2, cp = c & 0x1F;
            else if (c >= 0xE0 && c <= 0xEF)
                len = 3, cp = c & 0x0F;
            else if (c >= 0xF0 && c <= 0xF4)
                len = 4, cp = c & 0x07;
            bool ok = len && i + len <= n;
            for (size_t k = 1; ok && k < len; k++) {
                ok = (s[i + k] & 0xC0) == 0x80;
                cp = cp << 6 | (s[i + k] & 0x3F);
            }
            if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                       (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
                ok = false;
            if (ok) {
                i += len;
                continue;
            }
        }
        uarc__buf_append(b, s + run, i - run);
        switch (c) {
        case '"':
            uarc__buf_puts(b, "\\\"");
            break;
        case '\\':
            uarc__buf_puts(b, "\\\\");
            break;
        case '\n':
            uarc__buf_puts(b, "\\n");
            break;
        case '\r':
            uarc__buf_puts(b, "\\r");
            break;
        case '\t':
            uarc__buf_puts(b, "\\t");
            break;
        default: /* DEL too: a terminal would act on it */
            if (c < 0x20 || c == 0x7f)
                uarc__buf_printf(b, "\\u%04x", c);
            else
                uarc__buf_puts(b, "\\ufffd");
        }
        i++;
        run = i;
    }
    uarc__buf_append(b, s + run, n - run);
    uarc__buf_putc(b, '"');
}

static void json_string_bytes(jw *w, const uint8_t *s, size_t n)
{
    buf_json_string(&w->b, s, n);
}

static void json_cstr(jw *w, const char *s)
{
    json_string_bytes(w, (const uint8_t *)s, strlen(s));
}

static void json_string(jw *w, const uarc_string *s)
{
    if (!s->data)
        uarc__buf_puts(&w->b, "null");
    else
        json_string_bytes(w, s->length ? s->data : (const uint8_t *)"", s->length);
}

static void json_key(jw *w, bool *first, const char *key)
{
    if (!*first)
        uarc__buf_putc(&w->b, ',');
    *first = false;
    json_cstr(w, key);
    uarc__buf_putc(&w->b, ':');
}

static void json_double(jw *w, double d)
{
    if (isnan(d)) {
        uarc__buf_puts(&w->b, "\"NaN\"");
    } else if (isinf(d)) {
        uarc__buf_puts(&w->b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
        /* The shortest of 15 or 17 significant digits that reads back as the same double. */
        char tmp[40];
        snprintf(tmp, sizeof tmp, "%.15g", d);
        if (strtod(tmp, NULL) != d)
            snprintf(tmp, sizeof tmp, "%.17g", d);
        uarc__buf_puts(&w->b, tmp);
    }
}

static void json_datetime(jw *w, uarc_datetime t)
{
    char s[UARC_DATETIME_TEXT_SIZE];
    uarc_datetime_print(t, s);
    json_cstr(w, s);
}

static void json_status(jw *w, uarc_status s)
{
    uarc__buf_printf(&w->b, "{\"Code\":%u,\"Symbol\":", (unsigned)s);
    json_cstr(w, uarc_status_name(s));
    uarc__buf_putc(&w->b, '}');
}

static void json_bytes(jw *w, const uarc_string *s)
{
    if (!s->data) {
        uarc__buf_puts(&w->b, "null");
        return;
    }
    uarc__buf_putc(&w->b, '"');
    if (s->length)
        uarc__buf_base64(&w->b, s->data, s->length);
    uarc__buf_putc(&w->b, '"');
}

static void json_text_nodeid(jw *w, const uarc_nodeid *id)
{
    uarc__buf tmp = {0};
    uarc__buf_nodeid(&tmp, id);
    if (tmp.failed)
        w->b.failed = true;
    else
        json_string_bytes(w, (const uint8_t *)tmp.data, tmp.length);
    uarc__buf_free(&tmp);
}

static void json_text_expanded_nodeid(jw *w, const uarc_expanded_nodeid *id)
{
    uarc__buf tmp = {0};
    uarc__buf_expanded_nodeid(&tmp, id);
    if (tmp.failed)
        w->b.failed = true;
    else
        json_string_bytes(w, (const uint8_t *)tmp.data, tmp.length);
    uarc__buf_free(&tmp);
}

static void json_array(jw *w, const void *data, size_t n, const uarc_type *t)
{
    if (!data) {
        uarc__buf_puts(&w->b, "null");
        return;
    }
    uarc__buf_putc(&w->b, '[');
    for (size_t i = 0; i < n && !w->b.failed; i++) {
        if (i)
            uarc__buf_putc(&w->b, ',');
        json_value(w, (const uint8_t *)data + i * t->size, t);
    }
    uarc__buf_putc(&w->b, ']');
}

/* Nested arrays for a multi-dimensional Variant: dimension `dim` of `count` elements. */
static void json_dims(jw *w, const uarc_variant *v, size_t dim, size_t *index)
{
    uarc__buf_putc(&w->b, '[');
    size_t n = (size_t)v->array_dimensions[dim];
    for (size_t i = 0; i < n && !w->b.failed; i++) {
        if (i)
            uarc__buf_putc(&w->b, ',');
        if (dim + 1 < v->array_dimensions_size) {
            json_dims(w, v, dim + 1, index);
        } else {
            json_value(w, (const uint8_t *)v->data + *index * v->type->size, v->type);
            (*index)++;
        }
    }
    uarc__buf_putc(&w->b, ']');
}

static bool dims_match(const uarc_variant *v)
{
    if (!v->array_dimensions || v->array_dimensions_size < 2 || !v->data)
        return false;
    uint64_t product = 1;
    for (size_t i = 0; i < v->array_dimensions_size; i++) {
        if (v->array_dimensions[i] < 0)
            return false;
        product *= (uint64_t)v->array_dimensions[i];
        if (product > v->array_length)
            return false;
    }
    return product == v->array_length;
}

static void json_variant(jw *w, const uarc_variant *v)
{
    if (!v->type || (!v->is_array && !v->data)) {
        uarc__buf_puts(&w->b, "null");
    } else if (!v->is_array) {
        json_value(w, v->data, v->type);
    } else if (dims_match(v) && v->array_length) {
        size_t index = 0;
        json_dims(w, v, 0, &index);
    } else {
        json_array(w, v->data, v->array_length, v->type);
    }
}

static void json_data_value(jw *w, const uarc_data_value *dv)
{
    bool first = true;
    uarc__buf_putc(&w->b, '{');
    if (dv->has_value) {
        json_key(w, &first, "Value");
        json_variant(w, &dv->value);
    }
    if (dv->has_status) {
        json_key(w, &first, "Status");
        json_status(w, dv->status);
    }
    if (dv->has_source_timestamp) {
        json_key(w, &first, "SourceTimestamp");
        json_datetime(w, dv->source_timestamp);
    }
    if (dv->has_source_picoseconds) {
        json_key(w, &first, "SourcePicoseconds");
        uarc__buf_printf(&w->b, "%u", dv->source_picoseconds);
    }
    if (dv->has_server_timestamp) {
        json_key(w, &first, "ServerTimestamp");
        json_datetime(w, dv->server_timestamp);
    }
    if (dv->has_server_picoseconds) {
        json_key(w, &first, "ServerPicoseconds");
        uarc__buf_printf(&w->b, "%u", dv->server_picoseconds);
    }
    uarc__buf_putc(&w->b, '}');
}

static void json_diagnostic_info(jw *w, const uarc_diagnostic_info *di)
{
    bool first = true;
    uarc__buf_putc(&w->b, '{');
    const struct {
        bool has;
        const char *key;
        int32_t value;
    } ints[] = {{di->has_symbolic_id, "SymbolicId", di->symbolic_id},
                {di->has_namespace_uri, "NamespaceUri", di->namespace_uri},
                {di->has_locale, "Locale", di->locale},
                {di->has_localized_text, "LocalizedText", di->localized_text}};
    for (size_t i = 0; i < 4; i++) {
        if (ints[i].has) {
            json_key(w, &first, ints[i].key);
            uarc__buf_printf(&w->b, "%d", (int)ints[i].value);
        }
    }
    if (di->has_additional_info) {
        json_key(w, &first, "AdditionalInfo");
        json_string(w, &di->additional_info);
    }
    if (di->has_inner_status_code) {
        json_key(w, &first, "InnerStatusCode");
        json_status(w, di->inner_status_code);
    }
    if (di->has_inner_diagnostic_info && di->inner_diagnostic_info) {
        json_key(w, &first, "InnerDiagnosticInfo");
        json_value(w, di->inner_diagnostic_info, UARC_T(DiagnosticInfo));
    }
    uarc__buf_putc(&w->b, '}');
}

static void json_extension_object(jw *w, const uarc_extension_object *eo)
{
    if (eo->encoding == UARC_EXTENSION_OBJECT_DECODED) {
        if (eo->content.decoded.type && eo->content.decoded.data)
            json_value(w, eo->content.decoded.data, eo->content.decoded.type);
        else
            uarc__buf_puts(&w->b, "null");
        return;
    }
    if (eo->encoding == UARC_EXTENSION_OBJECT_EMPTY) {
        uarc__buf_puts(&w->b, "null");
        return;
    }
    /* A body the codec does not know: its type id and raw bytes. */
    bool first = true;
    uarc__buf_putc(&w->b, '{');
    json_key(w, &first, "TypeId");
    json_text_nodeid(w, &eo->content.encoded.type_id);
    json_key(w, &first, "Body");
    if (eo->encoding == UARC_EXTENSION_OBJECT_XML)
        json_string(w, &eo->content.encoded.body);
    else
        json_bytes(w, &eo->content.encoded.body);
    uarc__buf_putc(&w->b, '}');
}

/* Null fields of a structure are left out (Part 6 §5.4.2.1). */
static bool is_null_field(const void *v, const uarc_type *t)
{
    switch (t->kind) {
    case UARC_KIND_STRING:
    case UARC_KIND_BYTESTRING:
    case UARC_KIND_XMLELEMENT:
        return ((const uarc_string *)v)->data == NULL;
    case UARC_KIND_VARIANT:
        return ((const uarc_variant *)v)->type == NULL;
    case UARC_KIND_EXTENSIONOBJECT:
        return ((const uarc_extension_object *)v)->encoding == UARC_EXTENSION_OBJECT_EMPTY;
    default:
        return false;
    }
}

static void json_struct(jw *w, const uint8_t *base, const uarc_type *t)
{
    bool first = true;
    uarc__buf_putc(&w->b, '{');
    for (uint16_t i = 0; i < t->member_count && !w->b.failed; i++) {
        const uarc_member *m = &t->members[i];
        const void *f = base + m->offset;
        if (m->is_array ? *(void *const *)f == NULL : is_null_field(f, m->type))
            continue;
        /* The schema's field name: the member name with its first letter raised. */
        char key[96];
        size_t n = strlen(m->name);
        if (n && m->name[n - 1] == '_')
            n--;
        if (n >= sizeof key)
            n = sizeof key - 1;
        memcpy(key, m->name, n);
        key[n] = '\0';
        key[0] = (char)toupper((unsigned char)key[0]);
        json_key(w, &first, key);
        if (m->is_array)
            json_array(w, *(void *const *)f, *(const size_t *)(base + m->size_offset), m->type);
        else
            json_value(w, f, m->type);
    }
    uarc__buf_putc(&w->b, '}');
}

static void json_value(jw *w, const void *v, const uarc_type *t)
{
    if (w->depth_left == 0) {
        w->b.failed = true;
        return;
    }
    w->depth_left--;
    char g[UARC_GUID_TEXT_SIZE];
    switch (t->kind) {
    case UARC_KIND_BOOLEAN:
        uarc__buf_puts(&w->b, *(const bool *)v ? "true" : "false");
        break;
    case UARC_KIND_SBYTE:
        uarc__buf_printf(&w->b, "%d", *(const int8_t *)v);
        break;
    case UARC_KIND_BYTE:
        uarc__buf_printf(&w->b, "%u", *(const uint8_t *)v);
        break;
    case UARC_KIND_INT16:
        uarc__buf_printf(&w->b, "%d", *(const int16_t *)v);
        break;
    case UARC_KIND_UINT16:
        uarc__buf_printf(&w->b, "%u", *(const uint16_t *)v);
        break;
    case UARC_KIND_INT32:
    case UARC_KIND_ENUM:
        uarc__buf_printf(&w->b, "%d", (int)*(const int32_t *)v);
        break;
    case UARC_KIND_UINT32:
        uarc__buf_printf(&w->b, "%u", (unsigned)*(const uint32_t *)v);
        break;
    case UARC_KIND_INT64:
        uarc__buf_printf(&w->b, "\"%lld\"", (long long)*(const int64_t *)v);
        break;
    case UARC_KIND_UINT64:
        uarc__buf_printf(&w->b, "\"%llu\"", (unsigned long long)*(const uint64_t *)v);
        break;
    case UARC_KIND_FLOAT:
        json_double(w, *(const float *)v);
        break;
    case UARC_KIND_DOUBLE:
        json_double(w, *(const double *)v);
        break;
    case UARC_KIND_STRING:
    case UARC_KIND_XMLELEMENT:
        json_string(w, v);
        break;
    case UARC_KIND_DATETIME:
        json_datetime(w, *(const uarc_datetime *)v);
        break;
    case UARC_KIND_GUID:
        uarc_guid_print(v, g);
        json_cstr(w, g);
        break;
    case UARC_KIND_BYTESTRING:
        json_bytes(w, v);
        break;
    case UARC_KIND_NODEID:
        json_text_nodeid(w, v);
        break;
    case UARC_KIND_EXPANDEDNODEID:
        json_text_expanded_nodeid(w, v);
        break;
    case UARC_KIND_STATUSCODE:
        json_status(w, *(const uarc_status *)v);
        break;
    case UARC_KIND_QUALIFIEDNAME: {
        const uarc_qualified_name *q = v;
        uarc__buf tmp = {0};
        if (q->namespace_index)
            uarc__buf_printf(&tmp, "%u:", (unsigned)q->namespace_index);
        if (q->name.data)
            uarc__buf_append(&tmp, q->name.data, q->name.length);
        else
            uarc__buf_append(&tmp, "", 0);
        if (tmp.failed)
            w->b.failed = true;
        else
            json_string_bytes(w, (const uint8_t *)tmp.data, tmp.length);
        uarc__buf_free(&tmp);
        break;
    }
    case UARC_KIND_LOCALIZEDTEXT: {
        const uarc_localized_text *lt = v;
        bool first = true;
        uarc__buf_putc(&w->b, '{');
        if (lt->locale.data) {
            json_key(w, &first, "Locale");
            json_string(w, &lt->locale);
        }
        if (lt->text.data) {
            json_key(w, &first, "Text");
            json_string(w, &lt->text);
        }
        uarc__buf_putc(&w->b, '}');
        break;
    }
    case UARC_KIND_EXTENSIONOBJECT:
        json_extension_object(w, v);
        break;
    case UARC_KIND_DATAVALUE:
        json_data_value(w, v);
        break;
    case UARC_KIND_VARIANT:
        json_variant(w, v);
        break;
    case UARC_KIND_DIAGNOSTICINFO:
        json_diagnostic_info(w, v);
        break;
    case UARC_KIND_STRUCT:
        json_struct(w, v, t);
        break;
    default:
        w->b.failed = true;
    }
    w->depth_left++;
}

UARC_API char *uarc_json_encode(const void *value, const uarc_type *type, size_t *length)
{
    jw w = {{0}, MAX_JSON_DEPTH};
    if (length)
        *length = 0;
    if (!value || !type)
        return NULL;
    json_value(&w, value, type);
    if (w.b.failed || !w.b.data) {
        uarc__buf_free(&w.b);
        return NULL;
    }
    if (length)
        *length = w.b.length;
    return w.b.data;
}

UARC_API char *uarc_json_string(const void *data, size_t length, size_t *json_length)
{
    uarc__buf b = {0};
    if (json_length)
        *json_length = 0;
    buf_json_string(&b, length ? data : (const void *)"", length);
    if (b.failed || !b.data) {
        uarc__buf_free(&b);
        return NULL;
    }
    if (json_length)
        *json_length = b.length;
    return b.data;
}

UARC_API char *uarc_variant_to_json(const uarc_variant *variant, size_t *length)
{
    return uarc_json_encode(variant, UARC_T(Variant), length);
}
