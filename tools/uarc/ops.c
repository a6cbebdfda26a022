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
