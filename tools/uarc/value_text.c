/* Typed values from command-line text: a scalar of a built-in type, or a JSON array of them
 * (ops_parse_value, declared in ops.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/uarc.h"
#include "ops.h"

/* ---- typed values from text ---- */

static bool parse_integer(const char *text, long long min, unsigned long long max,
                          long long *signed_out, unsigned long long *unsigned_out)
{
    /* decimal, or hex with 0x; never octal (a leading zero is just a zero: "010" is ten) */
    const char *digits = text + (text[0] == '-' || text[0] == '+');
    int base = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') ? 16 : 10;
    char *end;
    errno = 0;
    if (min < 0) {
        long long v = strtoll(text, &end, base);
        if (errno || end == text || *end || v < min || (v > 0 && (unsigned long long)v > max))
            return false;
        *signed_out = v;
    } else {
        if (text[0] == '-')
            return false;
        unsigned long long v = strtoull(text, &end, base);
        if (errno || end == text || *end || v > max)
            return false;
        *unsigned_out = v;
    }
    return true;
}

/* The built-in type `name` a value text may have; NULL with `detail` (naming the TYPE argument
 * `shown`) for any other. */
static const uarc_type *value_type(const char *name, const char *shown, char *detail,
                                   size_t detail_size)
{
    const uarc_type *type = uarc_type_by_name(name);
    if (!type || type->kind > UARC_KIND_LOCALIZEDTEXT) {
        snprintf(detail, detail_size,
                 "unsupported type \"%s\" (use a built-in scalar type such as Boolean, Int32, "
                 "Double, String, DateTime, NodeId, or an array of one: Int32[])",
                 shown);
        return NULL;
    }
    return type;
}

static bool parse_scalar(const uarc_type *type, const char *text, uarc_variant *out, char *detail,
                         size_t detail_size)
{
    memset(out, 0, sizeof *out);
    union {
        bool b;
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        float f;
        double d;
        uarc_string s;
        uarc_datetime t;
        uarc_guid g;
        uarc_nodeid n;
        uarc_expanded_nodeid x;
        uarc_qualified_name q;
        uarc_localized_text l;
    } v;
    memset(&v, 0, sizeof v);
    long long sv = 0;
    unsigned long long uv = 0;
    bool ok = true;
    char *end;
    switch (type->kind) {
    case UARC_KIND_BOOLEAN:
        ok = strcmp(text, "true") == 0 || strcmp(text, "false") == 0 || strcmp(text, "1") == 0 ||
             strcmp(text, "0") == 0;
        v.b = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        break;
    case UARC_KIND_SBYTE:
        ok = parse_integer(text, INT8_MIN, INT8_MAX, &sv, &uv), v.i8 = (int8_t)sv;
        break;
    case UARC_KIND_BYTE:
        ok = parse_integer(text, 0, UINT8_MAX, &sv, &uv), v.u8 = (uint8_t)uv;
        break;
    case UARC_KIND_INT16:
        ok = parse_integer(text, INT16_MIN, INT16_MAX, &sv, &uv), v.i16 = (int16_t)sv;
        break;
    case UARC_KIND_UINT16:
        ok = parse_integer(text, 0, UINT16_MAX, &sv, &uv), v.u16 = (uint16_t)uv;
        break;
    case UARC_KIND_INT32:
        ok = parse_integer(text, INT32_MIN, INT32_MAX, &sv, &uv), v.i32 = (int32_t)sv;
        break;
    case UARC_KIND_UINT32:
    case UARC_KIND_STATUSCODE:
        ok = parse_integer(text, 0, UINT32_MAX, &sv, &uv), v.u32 = (uint32_t)uv;
        if (!ok && type->kind == UARC_KIND_STATUSCODE)
            ok = uarc_status_from_name(text, &v.u32);
        break;
    case UARC_KIND_INT64:
        ok = parse_integer(text, INT64_MIN, INT64_MAX, &sv, &uv), v.i64 = sv;
        break;
    case UARC_KIND_UINT64:
        ok = parse_integer(text, 0, UINT64_MAX, &sv, &uv), v.u64 = uv;
        break;
    case UARC_KIND_FLOAT:
    case UARC_KIND_DOUBLE: {
        errno = 0;
        double d = strtod(text, &end);
        ok = !errno && end != text && !*end;
        if (type->kind == UARC_KIND_FLOAT)
            v.f = (float)d;
        else
            v.d = d;
        break;
    }
    case UARC_KIND_STRING:
    case UARC_KIND_XMLELEMENT:
    case UARC_KIND_BYTESTRING:
        v.s = (uarc_string){strlen(text), strlen(text) ? (uint8_t *)text : UARC_EMPTY};
        break;
    case UARC_KIND_DATETIME:
        ok = strcmp(text, "now") == 0 ? (v.t = uarc_datetime_now(), true)
                                      : uarc_datetime_parse(text, strlen(text), &v.t);
        break;
    case UARC_KIND_GUID:
        ok = uarc_guid_parse(text, strlen(text), &v.g);
        break;
    case UARC_KIND_NODEID:
        ok = uarc_nodeid_parse(text, SIZE_MAX, &v.n) == UARC_Good;
        break;
    case UARC_KIND_EXPANDEDNODEID:
        ok = uarc_expanded_nodeid_parse(text, SIZE_MAX, &v.x) == UARC_Good;
        break;
    case UARC_KIND_QUALIFIEDNAME: {
        const char *colon = strchr(text, ':');
        unsigned long ns = 0;
        const char *name = text;
        if (colon) {
            ns = strtoul(text, &end, 10);
            if (end == colon && ns <= UINT16_MAX)
                name = colon + 1;
            else
                ns = 0;
        }
        v.q.namespace_index = (uint16_t)ns;
        v.q.name = (uarc_string){strlen(name), strlen(name) ? (uint8_t *)name : UARC_EMPTY};
        break;
    }
    case UARC_KIND_LOCALIZEDTEXT:
        v.l.text = (uarc_string){strlen(text), strlen(text) ? (uint8_t *)text : UARC_EMPTY};
        break;
    default:
        ok = false;
    }
    if (!ok) {
        snprintf(detail, detail_size, "\"%s\" is not a valid %s", text, type->name);
        return false;
    }
    uarc_status s = uarc_variant_set_scalar(out, &v, type);
    if (type->kind == UARC_KIND_NODEID)
        uarc_clear(&v.n, type);
    if (type->kind == UARC_KIND_EXPANDEDNODEID)
        uarc_clear(&v.x, type);
    if (s != UARC_Good) {
        snprintf(detail, detail_size, "out of memory");
        return false;
    }
    return true;
}

/* ---- arrays from JSON text ---- */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The value of four hex digits; -1 if they are not (stops at the NUL). */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Appends the UTF-8 form of a code point (below 0x110000, not a surrogate). */
static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The character a one-letter JSON escape stands for; '\0' if there is no such escape. */
static char simple_escape(char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '/':
        return c;
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return '\0';
    }
}

/*
 * The JSON string whose opening quote is at *pos, unescaped into `out` (which has room: the text
 * never gets longer by unescaping) and NUL-terminated; *pos moves past the closing quote. NUL
 * (\u0000) is refused, as the scalar parser takes C strings. Returns NULL, or what is wrong.
 */
static const char *json_string(const char **pos, char *out)
{
    const char *p = *pos + 1;
    size_t n = 0;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == '\0')
            return "a string has no closing quote";
        if (c < 0x20)
            return "a control character in a string (escape it)";
        if (c != '\\') {
            out[n++] = (char)c;
            p++;
        } else if (simple_escape(p[1])) {
            out[n++] = simple_escape(p[1]);
            p += 2;
        } else if (p[1] == 'u') {
            long cp = hex4(p + 2);
            p += cp < 0 ? 2 : 6;
            if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
                long low = hex4(p + 2);
                if (low >= 0xdc00 && low < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                    p += 6;
                }
            }
            if (cp < 0 || (cp >= 0xd800 && cp < 0xe000))
                return "a bad \\u escape in a string";
            if (cp == 0)
                return "\\u0000 in a string";
            n += put_utf8(out + n, (unsigned long)cp);
        } else {
            return "an unknown escape in a string";
        }
    }
    out[n] = '\0';
    *pos = p + 1;
    return NULL;
}

/* Whether p[0..n) is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *p, size_t n)
{
    const char *end = p + n;
    size_t digits;
    if (p < end && *p == '-')
        p++;
    digits = strspn(p, "0123456789");
    if (digits == 0 || (digits > 1 && *p == '0') || p + digits > end)
        return false;
    p += digits;
    if (p < end && *p == '.') {
        digits = strspn(++p, "0123456789");
        if (digits == 0 || p + digits > end)
            return false;
        p += digits;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        digits = strspn(p, "0123456789");
        if (digits == 0 || p + digits > end)
            return false;
        p += digits;
    }
    return p == end;
}

/* The bare JSON literal at *pos (a number, true or false), copied into `out` and NUL-terminated;
 * *pos moves past it. Returns NULL, or what is wrong. */
static const char *json_literal(const char **pos, char *out)
{
    const char *p = *pos;
    size_t n = strcspn(p, " \t\n\r,]");
    bool word = (n == 4 && strncmp(p, "true", 4) == 0) || (n == 5 && strncmp(p, "false", 5) == 0);
    if (n == 0)
        return "an element is missing";
    if (n == 4 && strncmp(p, "null", 4) == 0)
        return "null is not an element value";
    if (!word && !is_json_number(p, n))
        return "an element is neither a JSON string, number, true nor false";
    memcpy(out, p, n);
    out[n] = '\0';
    *pos = p + n;
    return NULL;
}

/*
 * A one-dimensional array of `type` from the JSON array `text`, each element a JSON string, number,
 * true or false whose text the scalar parser takes: "[1,-2]", "[\"a\",\"b\"]", "[]".
 */
static bool parse_array(const uarc_type *type, const char *text, uarc_variant *out, char *detail,
                        size_t detail_size)
{
    memset(out, 0, sizeof *out);
    const char *p = skip_space(text);
    const char *problem = NULL;
    bool ok = false;
    uint8_t *values = NULL; /* `count` values of `type`, owned */
    size_t count = 0, capacity = 0;
    char *element = malloc(strlen(text) + 1);
    if (!element) {
        snprintf(detail, detail_size, "out of memory");
        return false;
    }
    if (*p != '[') {
        problem = "it does not start with [";
        goto done;
    }
    p = skip_space(p + 1);
    bool closed = *p == ']';
    if (closed)
        p++;
    while (!closed) {
        p = skip_space(p);
        if (!*p) {
            problem = "no closing ]";
            goto done;
        }
        problem = *p == '"' ? json_string(&p, element) : json_literal(&p, element);
        if (problem)
            goto done;
        if (count == capacity) {
            size_t more = capacity ? capacity * 2 : 8;
            uint8_t *grown = realloc(values, more * type->size);
            if (!grown) {
                problem = "out of memory";
                goto done;
            }
            values = grown;
            capacity = more;
        }
        uarc_variant scalar;
        char why[200];
        if (!parse_scalar(type, element, &scalar, why, sizeof why)) {
            snprintf(detail, detail_size, "element %zu of the %s[] array: %s", count, type->name,
                     why);
            goto done;
        }
        /* The element's value moves into the array: the scalar keeps a zero-filled value, which
         * owns nothing, and clearing it frees only its box. */
        memcpy(values + count++ * type->size, scalar.data, type->size);
        memset(scalar.data, 0, type->size);
        uarc_clear(&scalar, UARC_T(Variant));
        p = skip_space(p);
        if (*p != ',' && *p != ']') {
            problem = *p ? "expected , or ] after an element" : "no closing ]";
            goto done;
        }
        closed = *p++ == ']';
    }
    p = skip_space(p);
    if (*p) {
        problem = "text after the closing ]";
    } else if (uarc_variant_set_array(out, count ? values : UARC_EMPTY, count, type)) {
        snprintf(detail, detail_size, "out of memory");
    } else {
        ok = true;
    }
done:
    if (problem)
        snprintf(detail, detail_size, "\"%s\" is not a JSON array of %s: %s (at offset %zu)", text,
                 type->name, problem, (size_t)(p - text));
    for (size_t i = 0; i < count; i++)
        uarc_clear(values + i * type->size, type);
    free(values);
    free(element);
    return ok;
}

bool ops_parse_value(const char *type_name, const char *text, uarc_variant *out, char *detail,
                     size_t detail_size)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(type_name);
    bool array = n > 2 && strcmp(type_name + n - 2, "[]") == 0;
    char scalar_name[64] = "";
    if (array)
        snprintf(scalar_name, sizeof scalar_name, "%.*s", (int)(n - 2), type_name);
    const uarc_type *type =
        value_type(array ? scalar_name : type_name, type_name, detail, detail_size);
    if (!type)
        return false;
    return array ? parse_array(type, text, out, detail, detail_size)
                 : parse_scalar(type, text, out, detail, detail_size);
}
