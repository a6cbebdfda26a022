/*
 * The service helpers: GetEndpoints, Read, Write, Browse (with BrowseNext), Call and
 * TranslateBrowsePathsToNodeIds over the request table.
 */
#include <stdlib.h>
#include <string.h>

#include "uarc/nodeids.h"
#include "uarc/attributes.h"
#include "client/client_internal.h"
#include "core/alloc.h"

UARC_API uarc_status uarc_client_get_endpoints(uarc_client *c, uarc_GetEndpointsResponse *response)
{
    uarc_GetEndpointsRequest req;
    uarc_init(&req, UARC_T(GetEndpointsRequest));
    req.endpointUrl = (uarc_string){strlen(c->endpoint_url), (uint8_t *)c->endpoint_url};
    uarc_status status = uarc_client_call(c, &req, UARC_T(GetEndpointsRequest), response,
                                          UARC_T(GetEndpointsResponse));
    if (status == UARC_Good)
        status = uarc__client_keep_endpoints(c, response->endpoints, response->endpointsSize);
    return status;
}

UARC_API uarc_status uarc_client_read(uarc_client *c, const uarc_ReadValueId *nodes, size_t count,
                                      uarc_data_value *values)
{
    for (size_t i = 0; i < count; i++)
        uarc_init(&values[i], UARC_T(DataValue));
    if (count == 0) {
        uarc__client_set_error(c, "Read", UARC_BadNothingToDo, "no node to read");
        return UARC_BadNothingToDo;
    }
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.timestampsToReturn = UARC_TimestampsToReturn_Both;
    req.nodesToReadSize = count;
    req.nodesToRead = (uarc_ReadValueId *)nodes; /* only encoded, never changed */
    uarc_ReadResponse resp;
    uarc_status status =
        uarc_client_call(c, &req, UARC_T(ReadRequest), &resp, UARC_T(ReadResponse));
    if (status == UARC_Good && resp.resultsSize != count) {
        uarc__client_set_error(c, "Read", UARC_BadUnexpectedError, "%zu results for %zu nodes",
                               resp.resultsSize, count);
        status = UARC_BadUnexpectedError;
    }
    if (status == UARC_Good) {
        memcpy(values, resp.results, count * sizeof *values);
        memset(resp.results, 0, count * sizeof *resp.results);
    }
    uarc_clear(&resp, UARC_T(ReadResponse));
    return status;
}

UARC_API uarc_status uarc_client_read_attribute(uarc_client *c, const uarc_nodeid *node,
                                                uint32_t attribute_id, uarc_data_value *value)
{
    uarc_ReadValueId id = {.nodeId = *node, .attributeId = attribute_id};
    return uarc_client_read(c, &id, 1, value);
}

UARC_API uarc_status uarc_client_write_value(uarc_client *c, const uarc_nodeid *node,
                                             const uarc_variant *value)
{
    uarc_WriteValue wv = {.nodeId = *node, .attributeId = UARC_ATTRIBUTEID_Value};
    wv.value.value = *value;
    wv.value.has_value = true;
    uarc_WriteRequest req;
    uarc_init(&req, UARC_T(WriteRequest));
    req.nodesToWriteSize = 1;
    req.nodesToWrite = &wv;
    uarc_WriteResponse resp;
    uarc_status status =
        uarc_client_call(c, &req, UARC_T(WriteRequest), &resp, UARC_T(WriteResponse));
    if (status == UARC_Good) {
        status = resp.resultsSize == 1 ? resp.results[0] : UARC_BadUnexpectedError;
        if (status != UARC_Good)
            uarc__client_set_error(c, "Write", status, "the server refused the value");
    }
    uarc_clear(&resp, UARC_T(WriteResponse));
    return status;
}

/* A browse in progress: Browse, then BrowseNext for as long as the server hands out continuation
 * points; references gathered as they come. */
typedef struct browse_job {
    uarc_client *client;
    uarc_browse_fn callback;
    void *user_data;
    uarc_ReferenceDescription *references;
    size_t count, capacity;
    uarc_bytestring point; /* the continuation point the next BrowseNext uses */
} browse_job;

/* Appends the references of `result` to the job's array, moving them. */
static uarc_status take_references(browse_job *job, uarc_BrowseResult *result)
{
    if (job->count + result->referencesSize > job->capacity) {
        size_t cap = job->capacity ? job->capacity : 64;
        while (cap < job->count + result->referencesSize)
            cap *= 2;
        uarc_ReferenceDescription *grown = uarc__realloc(job->references, cap * sizeof *grown);
        if (!grown)
            return UARC_BadOutOfMemory;
        job->references = grown;
        job->capacity = cap;
    }
    if (result->referencesSize) {
        memcpy(job->references + job->count, result->references,
               result->referencesSize * sizeof *result->references);
        job->count += result->referencesSize;
        memset(result->references, 0, result->referencesSize * sizeof *result->references);
    }
    return UARC_Good;
}

/* Ends the job: the callback gets the references (or the failure) and the job is freed. A
 * continuation point still held is released on the server, without waiting for the answer. */
static void browse_finish(browse_job *job, uarc_status status)
{
    uarc_client *c = job->client;
    if (job->point.length > 0 && uarc__client_connected_state(c->state)) {
        uarc_BrowseNextRequest release;
        uarc_init(&release, UARC_T(BrowseNextRequest));
        release.releaseContinuationPoints = true;
        release.continuationPointsSize = 1;
        release.continuationPoints = &job->point;
        uarc_client_send(c, &release, UARC_T(BrowseNextRequest), UARC_T(BrowseNextResponse), 0,
                         uarc__client_ignore_response, NULL, NULL);
    }
    uarc_clear(&job->point, UARC_T(ByteString));
    if (status != UARC_Good) {
        uarc_array_delete(job->references, job->count, UARC_T(ReferenceDescription));
        job->references = NULL;
        job->count = 0;
    }
    job->callback(job->user_data, status, job->references, job->count);
    uarc__free(job);
}

static void on_browse_next_response(void *user_data, uarc_status status, void *response);

/* Sends BrowseNext for the job's continuation point. */
static void browse_next(browse_job *job)
{
    uarc_BrowseNextRequest next;
    uarc_init(&next, UARC_T(BrowseNextRequest));
    next.continuationPointsSize = 1;
    next.continuationPoints = &job->point;
    uarc_status status =
        uarc_client_send(job->client, &next, UARC_T(BrowseNextRequest), UARC_T(BrowseNextResponse),
                         0, on_browse_next_response, job, NULL);
    if (status != UARC_Good)
        browse_finish(job, status);
}

/* One step of the job with the results of a Browse or BrowseNext response. */
static void browse_step(browse_job *job, uarc_status status, size_t results_size,
                        uarc_BrowseResult *results)
{
    uarc_client *c = job->client;
    if (status == UARC_Good && results_size != 1) {
        status = UARC_BadUnexpectedError;
        uarc__client_set_error(c, "Browse", status, "%zu results for 1 node", results_size);
    } else if (status == UARC_Good && uarc_status_is_bad(results[0].statusCode)) {
        status = results[0].statusCode;
        uarc__client_set_error(c, "Browse", status, "the server could not browse the node");
    }
    if (status == UARC_Good) {
        /* The server has answered for the point the request named; from here on it holds the one
         * this result hands out, which is what a failure below must release. */
        uarc_clear(&job->point, UARC_T(ByteString));
        job->point = results[0].continuationPoint;
        results[0].continuationPoint = (uarc_bytestring){0, NULL};
        status = take_references(job, &results[0]);
        if (status != UARC_Good)
            uarc__client_set_error(c, "Browse", status, "no memory for the references");
    }
    if (status != UARC_Good) {
        browse_finish(job, status);
        return;
    }
    if (job->point.length > 0)
        browse_next(job);
    else
        browse_finish(job, UARC_Good);
}

static void on_browse_response(void *user_data, uarc_status status, void *response)
{
    uarc_BrowseResponse *r = response;
    browse_step(user_data, status, r ? r->resultsSize : 0, r ? r->results : NULL);
}

static void on_browse_next_response(void *user_data, uarc_status status, void *response)
{
    uarc_BrowseNextResponse *r = response;
    browse_step(user_data, status, r ? r->resultsSize : 0, r ? r->results : NULL);
}

UARC_API uarc_status uarc_client_browse_send(uarc_client *c, const uarc_nodeid *node,
                                             uarc_browse_fn callback, void *user_data)
{
    if (!callback)
        return UARC_BadInvalidArgument;
    browse_job *job = uarc__calloc(1, sizeof *job);
    if (!job)
        return UARC_BadOutOfMemory;
    *job = (browse_job){.client = c, .callback = callback, .user_data = user_data};
    uarc_BrowseDescription d = {
        .nodeId = *node,
        .browseDirection = UARC_BrowseDirection_Forward,
        .referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
        .includeSubtypes = true,
        .resultMask = 0x3F,
    };
    uarc_BrowseRequest req;
    uarc_init(&req, UARC_T(BrowseRequest));
    req.nodesToBrowseSize = 1;
    req.nodesToBrowse = &d;
    uarc_status status = uarc_client_send(c, &req, UARC_T(BrowseRequest), UARC_T(BrowseResponse), 0,
                                          on_browse_response, job, NULL);
    if (status != UARC_Good)
        uarc__free(job);
    return status;
}

typedef struct blocking_browse {
    bool done;
    uarc_status status;
    uarc_ReferenceDescription *references;
    size_t count;
} blocking_browse;

static void on_blocking_browse(void *user_data, uarc_status status,
                               uarc_ReferenceDescription *references, size_t count)
{
    blocking_browse *b = user_data;
    *b = (blocking_browse){true, status, references, count};
}

UARC_API uarc_status uarc_client_browse(uarc_client *c, const uarc_nodeid *node,
                                        uarc_ReferenceDescription **references, size_t *count)
{
    *references = NULL;
    *count = 0;
    if (uarc__client_refuse_inside_receive(c, "Browse"))
        return UARC_BadInvalidState;
    blocking_browse b = {false, UARC_Good, NULL, 0};
    uarc_status status = uarc_client_browse_send(c, node, on_blocking_browse, &b);
    if (status != UARC_Good)
        return status;
    while (!b.done)
        uarc_client_process(c, -1);
    *references = b.references;
    *count = b.count;
    return b.status;
}

UARC_API uarc_status uarc_client_call_method(uarc_client *c, const uarc_nodeid *object,
                                             const uarc_nodeid *method, const uarc_variant *inputs,
                                             size_t input_count, uarc_variant **outputs,
                                             size_t *output_count)
{
    *outputs = NULL;
    *output_count = 0;
    uarc_CallMethodRequest m = {.objectId = *object,
                                .methodId = *method,
                                .inputArgumentsSize = input_count,
                                .inputArguments = input_count ? (uarc_variant *)inputs : NULL};
    uarc_CallRequest req;
    uarc_init(&req, UARC_T(CallRequest));
    req.methodsToCallSize = 1;
    req.methodsToCall = &m;
    uarc_CallResponse resp;
    uarc_status status =
        uarc_client_call(c, &req, UARC_T(CallRequest), &resp, UARC_T(CallResponse));
    if (status == UARC_Good) {
        if (resp.resultsSize != 1) {
            status = UARC_BadUnexpectedError;
            uarc__client_set_error(c, "Call", status, "%zu results for 1 method", resp.resultsSize);
        } else if (uarc_status_is_bad(resp.results[0].statusCode)) {
            status = resp.results[0].statusCode;
            for (size_t i = 0; i < resp.results[0].inputArgumentResultsSize; i++)
                if (uarc_status_is_bad(resp.results[0].inputArgumentResults[i])) {
                    uarc__client_set_error(
                        c, "Call", status, "input argument %zu: %s", i,
                        uarc_status_name(resp.results[0].inputArgumentResults[i]));
                    break;
                }
            if (c->last_status != status)
                uarc__client_set_error(c, "Call", status, "the method failed");
        } else {
            *outputs = resp.results[0].outputArguments;
            *output_count = resp.results[0].outputArgumentsSize;
            resp.results[0].outputArguments = NULL;
            resp.results[0].outputArgumentsSize = 0;
        }
    }
    uarc_clear(&resp, UARC_T(CallResponse));
    return status;
}

UARC_API uarc_status uarc_client_translate_path(uarc_client *c, const uarc_nodeid *start,
                                                const char *path, uarc_nodeid *target)
{
    uarc_init(target, UARC_T(NodeId));
    /* Split "/1:Name/Other" into elements; each is "[ns:]BrowseName". */
    size_t count = 0;
    for (const char *p = path; *p; p++)
        count += *p == '/';
    count += path[0] != '/';
    uarc_RelativePathElement *elements = uarc__calloc(count ? count : 1, sizeof *elements);
    if (!elements)
        return UARC_BadOutOfMemory;
    size_t n = 0;
    uarc_status status = UARC_Good;
    for (const char *p = path; *p && status == UARC_Good;) {
        if (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *name = p;
        unsigned long ns = 0;
        const char *colon = memchr(p, ':', len);
        if (colon) {
            char *digits_end;
            ns = strtoul(p, &digits_end, 10);
            if (digits_end == colon && colon > p && ns <= UINT16_MAX)
                name = colon + 1;
            else
                ns = 0;
        }
        size_t name_len = len - (size_t)(name - p);
        if (name_len == 0) {
            status = UARC_BadBrowseNameInvalid;
            uarc__client_set_error(c, "TranslateBrowsePathsToNodeIds", status,
                                   "empty element in path \"%s\"", path);
            break;
        }
        uarc_RelativePathElement *e = &elements[n++];
        e->referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences);
        e->includeSubtypes = true;
        e->targetName.namespace_index = (uint16_t)ns;
        e->targetName.name = (uarc_string){name_len, (uint8_t *)name};
        p += len;
    }
    if (status == UARC_Good) {
        uarc_BrowsePath bp = {.startingNode = *start, .relativePath = {n, elements}};
        uarc_TranslateBrowsePathsToNodeIdsRequest req;
        uarc_init(&req, UARC_T(TranslateBrowsePathsToNodeIdsRequest));
        req.browsePathsSize = 1;
        req.browsePaths = &bp;
        uarc_TranslateBrowsePathsToNodeIdsResponse resp;
        status = uarc_client_call(c, &req, UARC_T(TranslateBrowsePathsToNodeIdsRequest), &resp,
                                  UARC_T(TranslateBrowsePathsToNodeIdsResponse));
        if (status == UARC_Good) {
            const uarc_BrowsePathResult *r = resp.resultsSize == 1 ? resp.results : NULL;
            if (!r)
                status = UARC_BadUnexpectedError;
            else if (uarc_status_is_bad(r->statusCode))
                status = r->statusCode;
            else if (r->targetsSize == 0)
                status = UARC_BadNoMatch;
            else
                status = uarc_copy(&r->targets[0].targetId.node_id, target, UARC_T(NodeId));
            if (status != UARC_Good)
                uarc__client_set_error(c, "TranslateBrowsePathsToNodeIds", status,
                                       "path \"%s\" not resolved", path);
        }
        uarc_clear(&resp, UARC_T(TranslateBrowsePathsToNodeIdsResponse));
    }
    uarc__free(elements);
    return status;
}
