#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/uarc.h"
#include "ops.h"
#include "output.h"

static void begin(out_line *line, const ops_context *ctx, const char *event)
{
    out_begin(line, ctx->json, event);
    if (ctx->server_uri)
        out_field_str(line, "server_uri", ctx->server_uri);
}

static void add_nodeid(out_line *line, const char *key, const uarc_nodeid *id)
{
    char text[512];
    uarc_nodeid_print(id, text, sizeof text);
    out_field_str(line, key, text);
}

/* An `error` event: the step could not be carried out, so it has no event of its own. */
static void print_error(const ops_context *ctx, const char *step, const char *status,
                        const char *reason)
{
    out_line line;
    begin(&line, ctx, "error");
    out_field_str(&line, "step", step);
    out_field_str(&line, "status", status);
    out_field_str(&line, "reason", reason);
    if (ctx->end && ctx->end[0])
        out_field_str(&line, "end", ctx->end);
    if (ctx->cause && ctx->cause[0])
        out_field_str(&line, "cause", ctx->cause);
    if (ctx->peer && ctx->peer[0])
        out_field_str(&line, "peer", ctx->peer);
    out_end(&line);
}

void ops_report_error(const ops_context *ctx, uarc_status status)
{
    ops_report_detail(ctx, status, uarc_client_error(ctx->client));
}

/* The step is the part of the detail before the first ": "; the status name after it is left
 * out of the reason (it has its own field). */
void ops_report_detail(const ops_context *ctx, uarc_status status, const char *detail)
{
    const char *colon = strstr(detail, ": ");
    char step[64] = "unknown";
    const char *reason = detail;
    if (colon && (size_t)(colon - detail) < sizeof step) {
        memcpy(step, detail, (size_t)(colon - detail));
        step[colon - detail] = '\0';
        reason = colon + 2;
        const char *second = strstr(reason, ": ");
        if (second)
            reason = second + 2;
    }
    print_error(ctx, step, uarc_status_name(status), reason);
    if (ctx->json)
        fprintf(stderr, "uarc: %s\n", detail[0] ? detail : uarc_status_name(status));
}

bool ops_parse_node(const ops_context *ctx, const char *text, uarc_nodeid *id)
{
    if (uarc_nodeid_parse(text, SIZE_MAX, id) == UARC_Good)
        return true;
    char reason[600];
    snprintf(reason, sizeof reason, "not a NodeId: \"%s\" (try i=2258 or ns=1;s=Name)", text);
    print_error(ctx, "arguments", "BadNodeIdInvalid", reason);
    return false;
}

static void add_json(out_line *line, const char *key, char *json)
{
    out_field_raw(line, key, json ? json : "null");
    uarc_free(json);
}

/* `key`: a JSON array of status names, as every other status the tool prints. */
static void add_status_names(out_line *line, const char *key, const uarc_status *codes,
                             size_t count)
{
    size_t size = 3, used = 0;
    for (size_t i = 0; i < count; i++)
        size += strlen(uarc_status_name(codes[i])) + 3;
    char *json = malloc(size);
    if (!json) {
        line->failed = true;
        return;
    }
    json[used++] = '[';
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(json + used, size - used, "%s\"%s\"", i ? "," : "",
                                 uarc_status_name(codes[i]));
    snprintf(json + used, size - used, "]");
    out_field_raw(line, key, json);
    free(json);
}

/* The value's type as the tool names it: "Double", "Double[]" for an array, "Double[3,4]" for a
 * matrix (its ArrayDimensions; a one-dimensional array shows no length, the value has it). */
static void add_type(out_line *line, const uarc_variant *v)
{
    size_t dims = v->is_array && v->array_dimensions ? v->array_dimensions_size : 0;
    if (dims < 2)
        dims = 0;
    size_t size = strlen(v->type->name) + 3 + dims * 12;
    char *name = malloc(size);
    if (!name) {
        line->failed = true;
        return;
    }
    size_t used = (size_t)snprintf(name, size, "%s%s", v->type->name, v->is_array ? "[" : "");
    for (size_t i = 0; i < dims; i++)
        used += (size_t)snprintf(name + used, size - used, "%s%d", i ? "," : "",
                                 (int)v->array_dimensions[i]);
    snprintf(name + used, size - used, "%s", v->is_array ? "]" : "");
    out_field_str(line, "type", name);
    free(name);
}

void ops_add_nodeid(out_line *line, const char *key, const uarc_nodeid *id)
{
    add_nodeid(line, key, id);
}

void ops_add_data_value(out_line *line, const uarc_data_value *value)
{
    uarc_status value_status = value->has_status ? value->status : UARC_Good;
    out_field_str(line, "status", uarc_status_name(value_status));
    if (value->has_value && value->value.type) {
        add_type(line, &value->value);
        add_json(line, "value", uarc_variant_to_json(&value->value, NULL));
    } else {
        out_field_raw(line, "type", line->json ? "null" : "-");
        out_field_raw(line, "value", "null");
    }
    char t[UARC_DATETIME_TEXT_SIZE];
    if (value->has_source_timestamp) {
        uarc_datetime_print(value->source_timestamp, t);
        out_field_str(line, "source_timestamp", t);
    }
    if (value->has_server_timestamp) {
        uarc_datetime_print(value->server_timestamp, t);
        out_field_str(line, "server_timestamp", t);
    }
}

uarc_status ops_print_read(const ops_context *ctx, const uarc_nodeid *id,
                           const uarc_data_value *value)
{
    out_line line;
    begin(&line, ctx, "read");
    add_nodeid(&line, "node", id);
    uarc_status value_status = value->has_status ? value->status : UARC_Good;
    out_field_str(&line, "status", uarc_status_name(value_status));
    const uarc_type *type = value->has_value ? value->value.type : NULL;
    if (type) {
        add_type(&line, &value->value);
        add_json(&line, "value", uarc_variant_to_json(&value->value, NULL));
    } else {
        out_field_raw(&line, "type", ctx->json ? "null" : "-");
        out_field_raw(&line, "value", "null");
    }
    if (value->has_source_timestamp) {
        char t[UARC_DATETIME_TEXT_SIZE];
        uarc_datetime_print(value->source_timestamp, t);
        out_field_str(&line, "source_timestamp", t);
    }
    out_end(&line);
    return uarc_status_is_bad(value_status) ? value_status : UARC_Good;
}

uarc_status ops_read(const ops_context *ctx, char *const *node_texts, size_t count)
{
    uarc_ReadValueId *ids = calloc(count ? count : 1, sizeof *ids);
    uarc_data_value *values = calloc(count ? count : 1, sizeof *values);
    uarc_status result = UARC_Good;
    size_t n = 0;
    if (!ids || !values) {
        result = UARC_BadOutOfMemory;
        ops_report_error(ctx, result);
        goto done;
    }
    /* A node that does not parse gets its error event; the others are read all in one request. */
    for (size_t i = 0; i < count; i++) {
        if (!ops_parse_node(ctx, node_texts[i], &ids[n].nodeId)) {
            result = UARC_BadNodeIdInvalid;
            continue;
        }
        ids[n++].attributeId = UARC_ATTRIBUTEID_Value;
    }
    if (n == 0)
        goto done;
    uarc_status status = uarc_client_read(ctx->client, ids, n, values);
    if (status != UARC_Good) {
        ops_report_error(ctx, status);
        result = status;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        uarc_status s = ops_print_read(ctx, &ids[i].nodeId, &values[i]);
        if (result == UARC_Good)
            result = s;
        uarc_clear(&values[i], UARC_T(DataValue));
    }
done:
    for (size_t i = 0; i < n; i++)
        uarc_clear(&ids[i].nodeId, UARC_T(NodeId));
    free(ids);
    free(values);
    return result;
}

/* The schema's name of an enumeration value, or `fallback` for a value the schema does not have. */
static const char *enum_name(const uarc_type *type, int32_t value, const char *fallback)
{
    const char *name = uarc_enum_name(type, value);
    return name ? name : fallback;
}

/* A reference as a JSON object (the text form prints the same JSON). */
static void append_reference(char **buf, size_t *len, size_t *cap, bool first,
                             const uarc_ReferenceDescription *r)
{
    char node[512], name[600];
    uarc_expanded_nodeid_print(&r->nodeId, node, sizeof node);
    const uarc_string *bn = &r->browseName.name;
    if (r->browseName.namespace_index)
        snprintf(name, sizeof name, "%u:%.*s", r->browseName.namespace_index, (int)bn->length,
                 bn->length ? (const char *)bn->data : "");
    else
        snprintf(name, sizeof name, "%.*s", (int)bn->length,
                 bn->length ? (const char *)bn->data : "");
    uarc_string node_s = {strlen(node), (uint8_t *)node};
    uarc_string name_s = {strlen(name), (uint8_t *)name};
    char *node_json = uarc_json_encode(&node_s, UARC_T(String), NULL);
    char *name_json = uarc_json_encode(&name_s, UARC_T(String), NULL);
    char *display_json = uarc_json_encode(&r->displayName.text, UARC_T(String), NULL);
    size_t need = strlen(node_json ? node_json : "null") + strlen(name_json ? name_json : "null") +
                  strlen(display_json ? display_json : "null") + 128;
    if (*len + need > *cap) {
        size_t ncap = *cap ? *cap : 1024;
        while (ncap < *len + need)
            ncap *= 2;
        char *grown = realloc(*buf, ncap);
        if (!grown)
            goto done;
        *buf = grown;
        *cap = ncap;
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len,
                             "%s{\"node\":%s,\"browse_name\":%s,\"display_name\":%s,"
                             "\"node_class\":\"%s\"}",
                             first ? "" : ",", node_json ? node_json : "null",
                             name_json ? name_json : "null", display_json ? display_json : "null",
                             enum_name(UARC_T(NodeClass), (int32_t)r->nodeClass, "Unspecified"));
done:
    uarc_free(node_json);
    uarc_free(name_json);
    uarc_free(display_json);
}

void ops_print_browse(const ops_context *ctx, const uarc_nodeid *id,
                      const uarc_ReferenceDescription *refs, size_t count)
{
    char *list = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < count; i++)
        append_reference(&list, &len, &cap, i == 0, &refs[i]);
    size_t raw_len = len + 3;
    char *raw = malloc(raw_len);
    if (raw)
        snprintf(raw, raw_len, "[%s]", list ? list : "");
    out_line line;
    begin(&line, ctx, "browse");
    add_nodeid(&line, "node", id);
    out_field_raw(&line, "references", raw ? raw : "[]");
    out_end(&line);
    free(raw);
    free(list);
}

typedef struct visited {
    char **nodes;
    size_t count, capacity;
} visited;

static bool visit(visited *v, const char *node)
{
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->nodes[i], node) == 0)
            return false;
    if (v->count == v->capacity) {
        size_t cap = v->capacity ? v->capacity * 2 : 64;
        char **grown = realloc(v->nodes, cap * sizeof *grown);
        if (!grown)
            return false;
        v->nodes = grown;
        v->capacity = cap;
    }
    v->nodes[v->count++] = strdup(node);
    return true;
}

static uarc_status browse_one(const ops_context *ctx, const uarc_nodeid *id, bool recursive,
                              visited *seen, unsigned depth)
{
    uarc_ReferenceDescription *refs = NULL;
    size_t count = 0;
    uarc_status status = uarc_client_browse(ctx->client, id, &refs, &count);
    if (status != UARC_Good) {
        ops_report_error(ctx, status);
        return status;
    }
    ops_print_browse(ctx, id, refs, count);
    for (size_t i = 0; recursive && i < count && status == UARC_Good && depth < 64; i++) {
        const uarc_expanded_nodeid *target = &refs[i].nodeId;
        if (target->server_index != 0 || target->namespace_uri.data)
            continue;
        char text[512];
        uarc_nodeid_print(&target->node_id, text, sizeof text);
        if (visit(seen, text))
            status = browse_one(ctx, &target->node_id, true, seen, depth + 1);
    }
    uarc_array_delete(refs, count, UARC_T(ReferenceDescription));
    return status;
}

uarc_status ops_browse(const ops_context *ctx, const char *node_text, bool recursive)
{
    uarc_nodeid id;
    if (!ops_parse_node(ctx, node_text ? node_text : "i=85", &id))
        return UARC_BadNodeIdInvalid;
    visited seen = {0};
    char text[512];
    uarc_nodeid_print(&id, text, sizeof text);
    visit(&seen, text);
    uarc_status status = browse_one(ctx, &id, recursive, &seen, 0);
    for (size_t i = 0; i < seen.count; i++)
        free(seen.nodes[i]);
    free(seen.nodes);
    uarc_clear(&id, UARC_T(NodeId));
    return status;
}

uarc_status ops_endpoints(const ops_context *ctx)
{
    uarc_GetEndpointsResponse resp;
    uarc_status status = uarc_client_get_endpoints(ctx->client, &resp);
    if (status != UARC_Good) {
        ops_report_error(ctx, status);
        uarc_clear(&resp, UARC_T(GetEndpointsResponse));
        return status;
    }
    for (size_t i = 0; i < resp.endpointsSize; i++) {
        const uarc_EndpointDescription *e = &resp.endpoints[i];
        out_line line;
        begin(&line, ctx, "endpoint");
        out_field(&line, "endpoint_url", (const char *)e->endpointUrl.data, e->endpointUrl.length);
        out_field(&line, "server_application_uri", (const char *)e->server.applicationUri.data,
                  e->server.applicationUri.length);
        out_field(&line, "security_policy", (const char *)e->securityPolicyUri.data,
                  e->securityPolicyUri.length);
        out_field_str(&line, "security_mode",
                      enum_name(UARC_T(MessageSecurityMode), (int32_t)e->securityMode, "Invalid"));
        char level[8];
        snprintf(level, sizeof level, "%u", e->securityLevel);
        out_field_raw(&line, "security_level", level);
        char cert[32];
        snprintf(cert, sizeof cert, "%zu", e->serverCertificate.length);
        out_field_raw(&line, "certificate_bytes", cert);
        char tokens[1024] = "[";
        size_t used = 1;
        for (size_t j = 0; j < e->userIdentityTokensSize && used < sizeof tokens - 32; j++)
            used +=
                (size_t)snprintf(tokens + used, sizeof tokens - used, "%s\"%s\"", j ? "," : "",
                                 enum_name(UARC_T(UserTokenType),
                                           (int32_t)e->userIdentityTokens[j].tokenType, "Unknown"));
        snprintf(tokens + used, sizeof tokens - used, "]");
        out_field_raw(&line, "user_tokens", tokens);
        out_end(&line);
    }
    uarc_clear(&resp, UARC_T(GetEndpointsResponse));
    return UARC_Good;
}

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

uarc_status ops_write(const ops_context *ctx, const char *node_text, const char *type_name,
                      const char *value_text)
{
    uarc_nodeid id;
    if (!ops_parse_node(ctx, node_text, &id))
        return UARC_BadNodeIdInvalid;
    uarc_variant value;
    char detail[256];
    if (!ops_parse_value(type_name, value_text, &value, detail, sizeof detail)) {
        print_error(ctx, "arguments", "BadTypeMismatch", detail);
        uarc_clear(&id, UARC_T(NodeId));
        return UARC_BadTypeMismatch;
    }
    /* The Write service by hand rather than uarc_client_write_value(), which folds the service's
     * status and the node's result into one: only a node's result gets a `write` event. */
    uarc_WriteValue node = {.nodeId = id, .attributeId = UARC_ATTRIBUTEID_Value};
    node.value.value = value;
    node.value.has_value = true;
    uarc_WriteRequest request;
    uarc_init(&request, UARC_T(WriteRequest));
    request.nodesToWriteSize = 1;
    request.nodesToWrite = &node;
    uarc_WriteResponse response;
    uarc_status status = uarc_client_call(ctx->client, &request, UARC_T(WriteRequest), &response,
                                          UARC_T(WriteResponse));
    if (status != UARC_Good) {
        ops_report_error(ctx, status);
    } else if (response.resultsSize != 1) {
        status = UARC_BadUnexpectedError;
        char reason[64];
        snprintf(reason, sizeof reason, "%zu results for 1 node", response.resultsSize);
        print_error(ctx, "Write", uarc_status_name(status), reason);
    } else {
        uarc_status result = response.results[0];
        out_line line;
        begin(&line, ctx, "write");
        add_nodeid(&line, "node", &id);
        out_field_str(&line, "status", uarc_status_name(result));
        out_field_str(&line, "type", type_name);
        add_json(&line, "value", uarc_variant_to_json(&value, NULL));
        out_end(&line);
        status = uarc_status_is_bad(result) ? result : UARC_Good; /* as for a read */
    }
    uarc_clear(&response, UARC_T(WriteResponse));
    uarc_clear(&value, UARC_T(Variant));
    uarc_clear(&id, UARC_T(NodeId));
    return status;
}

uarc_status ops_call(const ops_context *ctx, const char *object_text, const char *method_text,
                     char **inputs, size_t input_count)
{
    uarc_nodeid object, method;
    if (!ops_parse_node(ctx, object_text, &object))
        return UARC_BadNodeIdInvalid;
    if (!ops_parse_node(ctx, method_text, &method)) {
        uarc_clear(&object, UARC_T(NodeId));
        return UARC_BadNodeIdInvalid;
    }
    uarc_variant *args = calloc(input_count ? input_count : 1, sizeof *args);
    uarc_status status = args ? UARC_Good : UARC_BadOutOfMemory;
    for (size_t i = 0; i < input_count && status == UARC_Good; i++) {
        char type[64], detail[256];
        const char *colon = strchr(inputs[i], ':');
        if (!colon || (size_t)(colon - inputs[i]) >= sizeof type) {
            snprintf(detail, sizeof detail, "argument \"%s\" is not TYPE:VALUE", inputs[i]);
            status = UARC_BadTypeMismatch;
        } else {
            memcpy(type, inputs[i], (size_t)(colon - inputs[i]));
            type[colon - inputs[i]] = '\0';
            if (!ops_parse_value(type, colon + 1, &args[i], detail, sizeof detail))
                status = UARC_BadTypeMismatch;
        }
        if (status != UARC_Good)
            print_error(ctx, "arguments", uarc_status_name(status), detail);
    }
    /* The Call service by hand rather than uarc_client_call_method(), which folds the service's
     * status and the method's result into one: as for a write, a result the server gave gets a
     * `call` event, Bad included, and `error` is for a call that got no result. */
    if (status == UARC_Good) {
        uarc_CallMethodRequest method_call = {.objectId = object,
                                              .methodId = method,
                                              .inputArgumentsSize = input_count,
                                              .inputArguments = input_count ? args : NULL};
        uarc_CallRequest request;
        uarc_init(&request, UARC_T(CallRequest));
        request.methodsToCallSize = 1;
        request.methodsToCall = &method_call;
        uarc_CallResponse response;
        status = uarc_client_call(ctx->client, &request, UARC_T(CallRequest), &response,
                                  UARC_T(CallResponse));
        if (status != UARC_Good) {
            ops_report_error(ctx, status);
        } else if (response.resultsSize != 1) {
            status = UARC_BadUnexpectedError;
            char reason[64];
            snprintf(reason, sizeof reason, "%zu results for 1 method", response.resultsSize);
            print_error(ctx, "Call", uarc_status_name(status), reason);
        } else {
            const uarc_CallMethodResult *result = &response.results[0];
            uarc_variant all = {0};
            uarc_variant_set_array(&all, result->outputArguments, result->outputArgumentsSize,
                                   UARC_T(Variant));
            out_line line;
            begin(&line, ctx, "call");
            add_nodeid(&line, "object", &object);
            add_nodeid(&line, "method", &method);
            out_field_str(&line, "status", uarc_status_name(result->statusCode));
            if (result->inputArgumentResultsSize)
                add_status_names(&line, "input_results", result->inputArgumentResults,
                                 result->inputArgumentResultsSize);
            add_json(&line, "outputs", uarc_variant_to_json(&all, NULL));
            out_end(&line);
            uarc_clear(&all, UARC_T(Variant));
            status = uarc_status_is_bad(result->statusCode) ? result->statusCode : UARC_Good;
        }
        uarc_clear(&response, UARC_T(CallResponse));
    }
    if (args)
        for (size_t i = 0; i < input_count; i++)
            uarc_clear(&args[i], UARC_T(Variant));
    free(args);
    uarc_clear(&object, UARC_T(NodeId));
    uarc_clear(&method, UARC_T(NodeId));
    return status;
}
