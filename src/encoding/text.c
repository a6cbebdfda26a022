/* Text forms: NodeId, ExpandedNodeId, Guid, DateTime, base64, and the growable text buffer. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "encoding/text.h"

/* ---- Growable buffer --------------------------------------------------------------------- */

static bool buf_reserve(uarc__buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra >= SIZE_MAX / 2 - b->length) {
        b->failed = true;
        return false;
    }
    size_t need = b->length + extra + 1;
    if (need <= b->capacity)
        return true;
    size_t cap = b->capacity ? b->capacity : 64;
    while (cap < need)
        cap *= 2;
    char *p = uarc__realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->capacity = cap;
    return true;
}

void uarc__buf_append(uarc__buf *b, const void *data, size_t length)
{
    if (!buf_reserve(b, length))
        return;
    if (length)
        memcpy(b->data + b->length, data, length);
    b->length += length;
    b->data[b->length] = '\0';
}

void uarc__buf_putc(uarc__buf *b, char c)
{
    uarc__buf_append(b, &c, 1);
}

void uarc__buf_puts(uarc__buf *b, const char *s)
{
    uarc__buf_append(b, s, strlen(s));
}

void uarc__buf_printf(uarc__buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        uarc__buf_append(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->length, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->length += (size_t)n;
}

/* Writes the digits of v backwards from `end`; returns where they start. */
static char *digits_before(char *end, uint64_t v)
{
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

void uarc__buf_uint(uarc__buf *b, uint64_t v)
{
    char text[24];
    char *start = digits_before(text + sizeof text, v);
    uarc__buf_append(b, start, (size_t)(text + sizeof text - start));
}

void uarc__buf_int(uarc__buf *b, int64_t v)
{
    char text[24];
    char *start = digits_before(text + sizeof text, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--start = '-';
    uarc__buf_append(b, start, (size_t)(text + sizeof text - start));
}

void uarc__buf_free(uarc__buf *b)
{
    uarc__free(b->data);
    *b = (uarc__buf){0};
}

/* ---- Base64 (RFC 4648, with padding) ----------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void uarc__buf_base64(uarc__buf *b, const uint8_t *data, size_t length)
{
    if (!buf_reserve(b, (length + 2) / 3 * 4))
        return;
    char *o = b->data + b->length;
    size_t i = 0;
    for (; i + 3 <= length; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (i < length) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < length ? (uint32_t)data[i + 1] << 8 : 0);
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < length ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->length = (size_t)(o - b->data);
    b->data[b->length] = '\0';
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 (standard or URL alphabet, padding optional) into a new string. */
static bool base64_decode(const char *text, size_t length, uarc_string *out)
{
    while (length && text[length - 1] == '=')
        length--;
    if (length % 4 == 1)
        return false;
    size_t n = length / 4 * 3 + (length % 4 ? length % 4 - 1 : 0);
    out->length = 0;
    if (n == 0) {
        out->data = UARC_EMPTY;
        return true;
    }
    uint8_t *p = uarc__malloc(n);
    if (!p)
        return false;
    uint32_t acc = 0;
    size_t bits = 0, w = 0;
    for (size_t i = 0; i < length; i++) {
        int v = b64_value(text[i]);
        if (v < 0) {
            uarc__free(p);
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[w++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = p;
    out->length = w;
    return true;
}

/* ---- Guid -------------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

UARC_API bool uarc_guid_parse(const char *text, size_t length, uarc_guid *out)
{
    if (length == SIZE_MAX)
        length = strlen(text);
    if (length == 38 && text[0] == '{' && text[37] == '}') {
        text++;
        length -= 2;
    }
    if (length != 36)
        return false;
    uint8_t bytes[16];
    size_t k = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        bytes[k++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    out->data1 =
        (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
    out->data2 = (uint16_t)(bytes[4] << 8 | bytes[5]);
    out->data3 = (uint16_t)(bytes[6] << 8 | bytes[7]);
    memcpy(out->data4, bytes + 8, 8);
    return true;
}

UARC_API void uarc_guid_print(const uarc_guid *g, char buf[UARC_GUID_TEXT_SIZE])
{
    snprintf(buf, UARC_GUID_TEXT_SIZE, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             (unsigned)g->data1, (unsigned)g->data2, (unsigned)g->data3, g->data4[0], g->data4[1],
             g->data4[2], g->data4[3], g->data4[4], g->data4[5], g->data4[6], g->data4[7]);
}

/* ---- NodeId ------------------------------------------------------------------------------ */

static void buf_identifier(uarc__buf *b, const uarc_nodeid *id)
{
    char g[UARC_GUID_TEXT_SIZE];
    switch (id->identifier_type) {
    case UARC_NODEID_NUMERIC:
        uarc__buf_puts(b, "i=");
        uarc__buf_uint(b, id->identifier.numeric);
        break;
    case UARC_NODEID_STRING:
        uarc__buf_puts(b, "s=");
        if (id->identifier.string.data)
            uarc__buf_append(b, id->identifier.string.data, id->identifier.string.length);
        break;
    case UARC_NODEID_GUID:
        uarc_guid_print(&id->identifier.guid, g);
        uarc__buf_puts(b, "g=");
        uarc__buf_puts(b, g);
        break;
    case UARC_NODEID_BYTESTRING:
        uarc__buf_puts(b, "b=");
        if (id->identifier.bytestring.data)
            uarc__buf_base64(b, id->identifier.bytestring.data, id->identifier.bytestring.length);
        break;
    }
}

void uarc__buf_nodeid(uarc__buf *b, const uarc_nodeid *id)
{
    if (id->namespace_index) {
        uarc__buf_puts(b, "ns=");
        uarc__buf_uint(b, id->namespace_index);
        uarc__buf_putc(b, ';');
    }
    buf_identifier(b, id);
}

void uarc__buf_expanded_nodeid(uarc__buf *b, const uarc_expanded_nodeid *id)
{
    if (id->server_index)
        uarc__buf_printf(b, "svr=%u;", (unsigned)id->server_index);
    if (!id->namespace_uri.data) {
        uarc__buf_nodeid(b, &id->node_id);
        return;
    }
    /* ';' and '%' inside the URI are percent-encoded so the text stays unambiguous. */
    uarc__buf_puts(b, "nsu=");
    for (size_t i = 0; i < id->namespace_uri.length; i++) {
        uint8_t c = id->namespace_uri.data[i];
        if (c == ';' || c == '%')
            uarc__buf_printf(b, "%%%02X", c);
        else
            uarc__buf_putc(b, (char)c);
    }
    uarc__buf_putc(b, ';');
    buf_identifier(b, &id->node_id);
}

static size_t print_buf(uarc__buf *b, char *out, size_t size)
{
    size_t n = b->failed ? 0 : b->length;
    if (size) {
        size_t k = n < size - 1 ? n : size - 1;
        if (k)
            memcpy(out, b->data, k);
        out[k] = '\0';
    }
    uarc__buf_free(b);
    return n;
}

UARC_API size_t uarc_nodeid_print(const uarc_nodeid *id, char *buf, size_t size)
{
    uarc__buf b = {0};
    uarc__buf_nodeid(&b, id);
    return print_buf(&b, buf, size);
}

UARC_API size_t uarc_expanded_nodeid_print(const uarc_expanded_nodeid *id, char *buf, size_t size)
{
    uarc__buf b = {0};
    uarc__buf_expanded_nodeid(&b, id);
    return print_buf(&b, buf, size);
}

/* Parses a decimal number of at most `max`; advances *p. */
static bool parse_uint(const char **p, const char *end, uint32_t max, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s == end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return false;
        s++;
    }
    *p = s;
    *out = (uint32_t)v;
    return true;
}

static bool starts(const char *p, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - p) >= n && memcmp(p, prefix, n) == 0;
}

/* Parses "<t>=<value>" (the identifier part) into id; namespace already set. */
static uarc_status parse_identifier(const char *p, const char *end, uarc_nodeid *id)
{
    if (end - p < 2 || p[1] != '=')
        return UARC_BadNodeIdInvalid;
    char t = p[0];
    p += 2;
    size_t n = (size_t)(end - p);
    switch (t) {
    case 'i': {
        uint32_t v;
        if (!parse_uint(&p, end, UINT32_MAX, &v) || p != end)
            return UARC_BadNodeIdInvalid;
        id->identifier_type = UARC_NODEID_NUMERIC;
        id->identifier.numeric = v;
        return UARC_Good;
    }
    case 's': {
        id->identifier_type = UARC_NODEID_STRING;
        id->identifier.string.length = 0;
        id->identifier.string.data = UARC_EMPTY;
        if (n == 0)
            return UARC_Good;
        uint8_t *d = uarc__malloc(n);
        if (!d)
            return UARC_BadOutOfMemory;
        memcpy(d, p, n);
        id->identifier.string.data = d;
        id->identifier.string.length = n;
        return UARC_Good;
    }
    case 'g':
        if (!uarc_guid_parse(p, n, &id->identifier.guid))
            return UARC_BadNodeIdInvalid;
        id->identifier_type = UARC_NODEID_GUID;
        return UARC_Good;
    case 'b':
        if (!base64_decode(p, n, &id->identifier.bytestring))
            return UARC_BadNodeIdInvalid;
        id->identifier_type = UARC_NODEID_BYTESTRING;
        return UARC_Good;
    default:
        return UARC_BadNodeIdInvalid;
    }
}

UARC_API uarc_status uarc_nodeid_parse(const char *text, size_t length, uarc_nodeid *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return UARC_BadNodeIdInvalid;
    if (length == SIZE_MAX)
        length = strlen(text);
    const char *p = text, *end = text + length;
    if (starts(p, end, "ns=")) {
        p += 3;
        uint32_t ns;
        if (!parse_uint(&p, end, UINT16_MAX, &ns) || p == end || *p != ';')
            return UARC_BadNodeIdInvalid;
        p++;
        out->namespace_index = (uint16_t)ns;
    }
    uarc_status s = parse_identifier(p, end, out);
    if (s)
        memset(out, 0, sizeof *out);
    return s;
}

UARC_API uarc_status uarc_expanded_nodeid_parse(const char *text, size_t length,
                                                uarc_expanded_nodeid *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return UARC_BadNodeIdInvalid;
    if (length == SIZE_MAX)
        length = strlen(text);
    const char *p = text, *end = text + length;
    if (starts(p, end, "svr=")) {
        p += 4;
        if (!parse_uint(&p, end, UINT32_MAX, &out->server_index) || p == end || *p != ';')
            return UARC_BadNodeIdInvalid;
        p++;
    }
    if (!starts(p, end, "nsu=")) {
        uarc_status s = uarc_nodeid_parse(p, (size_t)(end - p), &out->node_id);
        if (s)
            out->server_index = 0;
        return s;
    }
    p += 4;
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (!semi)
        return UARC_BadNodeIdInvalid;
    size_t n = (size_t)(semi - p);
    uint8_t *uri = uarc__malloc(n ? n : 1);
    if (!uri)
        return UARC_BadOutOfMemory;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = hex_value(p[i + 1])) >= 0 &&
            (lo = hex_value(p[i + 2])) >= 0) {
            uri[w++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            uri[w++] = (uint8_t)p[i];
        }
    }
    uarc_status s = parse_identifier(semi + 1, end, &out->node_id);
    if (s) {
        uarc__free(uri);
        memset(out, 0, sizeof *out);
        return s;
    }
    if (w == 0) {
        uarc__free(uri);
        out->namespace_uri.data = UARC_EMPTY;
    } else {
        out->namespace_uri.data = uri;
        out->namespace_uri.length = w;
    }
    return UARC_Good;
}

/* ---- DateTime ---------------------------------------------------------------------------- */

#define TICKS_PER_DAY (INT64_C(86400) * UARC_DATETIME_TICKS_PER_SECOND)
/* Days from 1601-01-01 to 1970-01-01. */
#define DAYS_1601_TO_1970 INT64_C(134774)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (years counted from March). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t ticks_of_date(int64_t y, unsigned m, unsigned d)
{
    return (days_from_civil(y, m, d) + DAYS_1601_TO_1970) * TICKS_PER_DAY;
}

UARC_API void uarc_datetime_print(uarc_datetime t, char buf[UARC_DATETIME_TEXT_SIZE])
{
    int64_t min = ticks_of_date(1, 1, 1);
    int64_t max = ticks_of_date(10000, 1, 1) - 1;
    if (t < min)
        t = min;
    if (t > max)
        t = max;
    int64_t days = floor_div(t, TICKS_PER_DAY);
    int64_t rest = t - days * TICKS_PER_DAY;
    int64_t y;
    unsigned mo, d;
    civil_from_days(days - DAYS_1601_TO_1970, &y, &mo, &d);
    int64_t secs = rest / UARC_DATETIME_TICKS_PER_SECOND;
    unsigned frac = (unsigned)(rest % UARC_DATETIME_TICKS_PER_SECOND);
    /* By hand rather than with snprintf: monitors print two of these per data change. */
    unsigned fields[6] = {
        (unsigned)y,          mo, d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
        (unsigned)(secs % 60)};
    static const char separators[6] = {'-', '-', 'T', ':', ':', '\0'};
    char *p = buf;
    for (int i = 0; i < 6; i++) {
        int width = i == 0 ? 4 : 2;
        for (int k = width - 1; k >= 0; k--, fields[i] /= 10)
            p[k] = (char)('0' + fields[i] % 10);
        p += width;
        if (separators[i])
            *p++ = separators[i];
    }
    if (frac) {
        int k = 7;
        while (frac % 10 == 0)
            frac /= 10, k--;
        *p++ = '.';
        for (int i = k - 1; i >= 0; i--, frac /= 10)
            p[i] = (char)('0' + frac % 10);
        p += k;
    }
    *p++ = 'Z';
    *p = '\0';
}

static bool digits(const char **p, const char *end, int count, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < count; i++) {
        if (*p == end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (unsigned)(**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static bool expect(const char **p, const char *end, char c)
{
    if (*p == end || **p != c)
        return false;
    (*p)++;
    return true;
}

UARC_API bool uarc_datetime_parse(const char *text, size_t length, uarc_datetime *out)
{
    if (length == SIZE_MAX)
        length = strlen(text);
    const char *p = text, *end = text + length;
    unsigned y, mo, d, h, mi, s;
    if (!digits(&p, end, 4, &y) || !expect(&p, end, '-') || !digits(&p, end, 2, &mo) ||
        !expect(&p, end, '-') || !digits(&p, end, 2, &d) ||
        (!expect(&p, end, 'T') && !expect(&p, end, 't')) || !digits(&p, end, 2, &h) ||
        !expect(&p, end, ':') || !digits(&p, end, 2, &mi) || !expect(&p, end, ':') ||
        !digits(&p, end, 2, &s))
        return false;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return false;
    int64_t frac = 0;
    if (p < end && (*p == '.' || *p == ',')) {
        p++;
        int k = 0;
        if (p == end || *p < '0' || *p > '9')
            return false;
        for (; p < end && *p >= '0' && *p <= '9'; p++, k++)
            if (k < 7)
                frac = frac * 10 + (*p - '0');
        for (; k < 7; k++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p == '-' ? -1 : 1;
        unsigned oh, om;
        p++;
        if (!digits(&p, end, 2, &oh) || !expect(&p, end, ':') || !digits(&p, end, 2, &om) ||
            oh > 23 || om > 59)
            return false;
        offset = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (p != end)
        return false;
    int64_t secs = (int64_t)h * 3600 + mi * 60 + s - offset;
    *out = ticks_of_date(y, mo, d) + secs * UARC_DATETIME_TICKS_PER_SECOND + frac;
    return true;
}

UARC_API uarc_datetime uarc_datetime_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return UARC_DATETIME_UNIX_EPOCH + (int64_t)ts.tv_sec * UARC_DATETIME_TICKS_PER_SECOND +
           ts.tv_nsec / 100;
}
