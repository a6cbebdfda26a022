/*
 * Monitored items: creation in batches within the server's MaxMonitoredItemsPerCall, data
 * change and event filters (their removal and changes: subscription_changes.c).
 */
#include <string.h>

#include "uarc/attributes.h"
#include "uarc/nodeids.h"
#include "client/subscription_internal.h"
#include "core/alloc.h"

#define MAX_ITEMS           (1u << 24)
#define MAX_SELECT          64u
#define MAX_PATH_NAME       512u
#define DEFAULT_EVENT_QUEUE 100u
/* Server.GetMonitoredItems, a Method (nodeids.h names objects and variables only) */
#define SERVER_GET_MONITORED_ITEMS 11492u

static void read_limits(manager *m);
static void send_creations(uarc_subscription *s);

static void on_items_created(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    s->inflight--;
    s->batch_in_flight = false;
    uarc_CreateMonitoredItemsResponse *r = response;
    /* No answer (the connection went, or the request timed out): the server may have created
     * them all the same. Created again blindly they would exist twice, each reporting. */
    bool unsure = status == UARC_BadTimeout || !session_active(s->mgr);
    size_t k = 0;
    for (size_t i = 0; i < s->item_count; i++) {
        item *it = &s->items[i];
        if (it->state != ITEM_CREATING && it->state != ITEM_DROPPED)
            continue;
        bool dropped = it->state == ITEM_DROPPED;
        if (!r || status != UARC_Good) {
            /* retried with the next batch, or asked about */
            it->state = dropped  ? (unsure ? ITEM_DROPPED_UNSURE : ITEM_REMOVED)
                        : unsure ? ITEM_UNSURE
                                 : ITEM_PENDING;
            continue;
        }
        uarc_status result =
            k < r->resultsSize ? r->results[k].statusCode : UARC_BadUnexpectedError;
        it->server_id = k < r->resultsSize ? r->results[k].monitoredItemId : 0;
        k++;
        if (dropped) {
            /* removed while its creation was in flight: deleted now that it has an id */
            it->state = ITEM_REMOVED;
            if (!uarc_status_is_bad(result))
                uarc__sub_delete_on_server(s, (uint32_t)(i + 1));
            continue;
        }
        it->state = uarc_status_is_bad(result) ? ITEM_FAILED : ITEM_ACTIVE;
        if (s->cfg.callbacks.item_created && !s->deleted) {
            s->delivering++;
            s->cfg.callbacks.item_created(s->cfg.callbacks.user_data, s, (uint32_t)(i + 1), result);
            s->delivering--;
        }
    }
    if (s->deleted) {
        uarc__sub_sweep(s->mgr);
        return;
    }
    if (status == UARC_BadSubscriptionIdInvalid) {
        uarc__sub_make_again(s, status);
        return;
    }
    if (status == UARC_BadTooManyOperations && s->cfg.item_batch_size > 1) {
        /* Beyond the server's MaxMonitoredItemsPerCall: halve the batch and go on. */
        s->cfg.item_batch_size /= 2;
        uarc__sub_log(s, UARC_LOG_INFO,
                      "CreateMonitoredItems: BadTooManyOperations, %u items per call",
                      s->cfg.item_batch_size);
        uarc__sub_send_items(s);
    } else if (status == UARC_Good || (unsure && session_active(s->mgr))) {
        uarc__sub_send_items(s);
    } else if (session_active(s->mgr)) {
        uarc__sub_log(s, UARC_LOG_WARNING, "CreateMonitoredItems: %s", uarc_status_name(status));
    }
}

static uarc_extension_object filter_of(const uarc_monitored_item_params *p,
                                       uarc_DataChangeFilter *f)
{
    uarc_extension_object e = {0};
    if (p->trigger == UARC_MONITOR_TRIGGER_STATUS_VALUE && p->deadband_type == 0)
        return e;
    f->trigger = p->trigger == UARC_MONITOR_TRIGGER_STATUS ? UARC_DataChangeTrigger_Status
                 : p->trigger == UARC_MONITOR_TRIGGER_STATUS_VALUE_TIMESTAMP
                     ? UARC_DataChangeTrigger_StatusValueTimestamp
                     : UARC_DataChangeTrigger_StatusValue;
    f->deadbandType = (uint32_t)p->deadband_type;
    f->deadbandValue = p->deadband_value;
    e.encoding = UARC_EXTENSION_OBJECT_DECODED;
    e.content.decoded.type = UARC_T(DataChangeFilter);
    e.content.decoded.data = f;
    return e;
}

static void on_limits(void *user_data, uarc_status status, void *response)
{
    manager *m = user_data;
    if (m->limits != LIMITS_READING)
        return; /* sent before the connection was lost: read again on this session */
    if (!session_active(m)) {
        m->limits = LIMITS_UNKNOWN;
        return;
    }
    uarc_ReadResponse *r = response;
    const uarc_data_value *v = status == UARC_Good && r && r->resultsSize == 1 ? r->results : NULL;
    /* Anything but a UInt32 (no such node, no access, a fault): no limit known, and a
     * BadTooManyOperations still halves the batch. */
    m->max_items_per_call = v && !uarc_status_is_bad(v->status) &&
                                    v->value.type == UARC_T(UInt32) && !v->value.is_array &&
                                    v->value.data
                                ? *(const uint32_t *)v->value.data
                                : 0;
    m->limits = LIMITS_KNOWN;
    if (m->max_items_per_call)
        uarc__log(uarc__client_logger(m->client), UARC_LOG_DEBUG, "subscription",
                  "MaxMonitoredItemsPerCall %u", m->max_items_per_call);
    for (size_t i = 0; i < m->sub_count; i++)
        uarc__sub_send_items(m->subs[i]);
}

/* Reads Server/ServerCapabilities/OperationLimits/MaxMonitoredItemsPerCall. */
static void read_limits(manager *m)
{
    if (m->limits != LIMITS_UNKNOWN)
        return;
    uarc_ReadValueId id = {
        .nodeId = uarc_nodeid_numeric(
            0, UARC_NS0ID_Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall),
        .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.timestampsToReturn = UARC_TimestampsToReturn_Neither;
    req.nodesToReadSize = 1;
    req.nodesToRead = &id;
    if (uarc_client_send(m->client, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0, on_limits,
                         m, NULL) == UARC_Good)
        m->limits = LIMITS_READING;
}

void uarc__sub_item_parameters(const item *it, uint32_t handle, uarc_MonitoringParameters *p,
                               uarc_DataChangeFilter *f)
{
    p->clientHandle = handle;
    double sampling = it->params.sampling_interval_ms;
    p->samplingInterval = sampling == 0 ? -1 : sampling < 0 ? 0 : sampling;
    p->queueSize = it->params.queue_size ? it->params.queue_size : 1;
    p->discardOldest = !it->params.discard_newest;
    p->filter = filter_of(&it->params, f);
    if (it->event_filter) {
        p->samplingInterval = 0; /* Part 4 5.12.1.2: events ask 0 */
        p->filter =
            (uarc_extension_object){.encoding = UARC_EXTENSION_OBJECT_DECODED,
                                    .content.decoded = {UARC_T(EventFilter), it->event_filter}};
    }
}

/* The UInt32 array of an output argument, or NULL. */
static const uint32_t *u32_array(const uarc_variant *v, size_t *count)
{
    if (v->type != UARC_T(UInt32) || !v->is_array)
        return NULL;
    static const uint32_t none = 0;
    *count = v->array_length;
    return v->array_length ? v->data : &none;
}

static void on_server_items(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    s->inflight--;
    s->asking_items = false;
    if (s->deleted || !session_active(s->mgr)) {
        uarc__sub_sweep(s->mgr); /* else asked again once the session is back */
        return;
    }
    uarc_CallResponse *r = response;
    const uarc_CallMethodResult *res =
        status == UARC_Good && r && r->resultsSize == 1 ? r->results : NULL;
    if (res && res->statusCode == UARC_BadSubscriptionIdInvalid) {
        uarc__sub_make_again(s, res->statusCode);
        return;
    }
    size_t n = 0, n_client = 0;
    const uint32_t *server = NULL, *client = NULL;
    if (res && !uarc_status_is_bad(res->statusCode) && res->outputArgumentsSize == 2) {
        server = u32_array(&res->outputArguments[0], &n);
        client = u32_array(&res->outputArguments[1], &n_client);
    }
    if (!server || !client || n != n_client) {
        /* The server cannot say (no such method, no access, outputs not two UInt32 arrays of one
         * length). Created again beside ones it may have, an item would report twice, and its
         * server id is unknown, so it could not be deleted: the subscription goes, with all its
         * items, and is made again (a gap, state RECREATED). */
        uarc_status why = res && uarc_status_is_bad(res->statusCode) ? res->statusCode
                          : res                                      ? UARC_BadTypeMismatch
                          : uarc_status_is_bad(status)               ? status
                                                                     : UARC_BadUnexpectedError;
        uarc__sub_log(s, UARC_LOG_WARNING,
                      "GetMonitoredItems: %s; the subscription is deleted and created again, so "
                      "that no item exists twice",
                      uarc_status_name(why));
        uarc__sub_send_delete(s->mgr, s->id);
        uarc__sub_make_again(s, why);
        return;
    }
    /* client handles index the items: one pass over the server's list */
    for (size_t k = 0; k < n; k++) {
        item *it = client[k] && client[k] <= s->item_count ? &s->items[client[k] - 1] : NULL;
        if (it && it->state == ITEM_DROPPED_UNSURE) {
            it->state = ITEM_REMOVED;
            it->server_id = server[k];
            uarc__sub_delete_on_server(s, client[k]);
        }
        if (!it || it->state != ITEM_UNSURE)
            continue;
        it->state = ITEM_ACTIVE;
        it->server_id = server[k];
        if (s->cfg.callbacks.item_created && !s->deleted) {
            s->delivering++;
            s->cfg.callbacks.item_created(s->cfg.callbacks.user_data, s, client[k], UARC_Good);
            s->delivering--;
        }
    }
    for (size_t i = 0; i < s->item_count; i++) /* those the server does not have */
        if (s->items[i].state == ITEM_UNSURE)
            s->items[i].state = ITEM_PENDING;
        else if (s->items[i].state == ITEM_DROPPED_UNSURE)
            s->items[i].state = ITEM_REMOVED;
    if (s->deleted)
        uarc__sub_sweep(s->mgr);
    else
        uarc__sub_send_items(s);
}

/* Items whose creation got no answer: asks the server which of them it has (Server.
 * GetMonitoredItems, Part 5 §9.1) before creating the others again, so none exists twice. */
static void ask_server_items(uarc_subscription *s)
{
    if (uarc__sub_call_server(s, SERVER_GET_MONITORED_ITEMS, on_server_items) == UARC_Good)
        s->asking_items = true;
}

uint32_t uarc__sub_batch_limit(uarc_subscription *s)
{
    manager *m = s->mgr;
    if (m->limits != LIMITS_KNOWN) {
        read_limits(m); /* uarc__sub_send_items() runs again when the answer is in */
        return 0;
    }
    uint32_t batch = s->cfg.item_batch_size;
    if (m->max_items_per_call && m->max_items_per_call < batch)
        batch = m->max_items_per_call;
    return batch;
}

void uarc__sub_send_items(uarc_subscription *s)
{
    send_creations(s);
    uarc__sub_send_changes(s);
}

static void send_creations(uarc_subscription *s)
{
    if (s->batch_in_flight || s->asking_items || !s->id || s->phase != PHASE_LIVE ||
        !session_active(s->mgr) || s->deleted)
        return;
    for (size_t i = 0; i < s->item_count; i++)
        if (s->items[i].state == ITEM_UNSURE || s->items[i].state == ITEM_DROPPED_UNSURE) {
            ask_server_items(s);
            return;
        }
    bool pending = false;
    for (size_t i = 0; i < s->item_count && !pending; i++)
        pending = s->items[i].state == ITEM_PENDING;
    uint32_t batch = pending ? uarc__sub_batch_limit(s) : 0;
    if (!batch)
        return;
    uarc_MonitoredItemCreateRequest *reqs = uarc__calloc(batch, sizeof *reqs);
    uarc_DataChangeFilter *filters = uarc__calloc(batch, sizeof *filters);
    size_t n = 0;
    for (size_t i = 0; reqs && filters && i < s->item_count && n < batch; i++) {
        item *it = &s->items[i];
        if (it->state != ITEM_PENDING)
            continue;
        uarc_MonitoredItemCreateRequest *r = &reqs[n];
        r->itemToMonitor.nodeId = it->params.node;
        r->itemToMonitor.attributeId = it->event_filter          ? UARC_ATTRIBUTEID_EventNotifier
                                       : it->params.attribute_id ? it->params.attribute_id
                                                                 : UARC_ATTRIBUTEID_Value;
        r->monitoringMode = it->mode;
        uarc__sub_item_parameters(it, (uint32_t)(i + 1), &r->requestedParameters, &filters[n]);
        n++;
    }
    if (n) {
        uarc_CreateMonitoredItemsRequest req;
        uarc_init(&req, UARC_T(CreateMonitoredItemsRequest));
        req.subscriptionId = s->id;
        req.timestampsToReturn = UARC_TimestampsToReturn_Both;
        req.itemsToCreateSize = n;
        req.itemsToCreate = reqs;
        if (uarc_client_send(s->mgr->client, &req, UARC_T(CreateMonitoredItemsRequest),
                             UARC_T(CreateMonitoredItemsResponse), 0, on_items_created, s,
                             NULL) == UARC_Good) {
            s->inflight++;
            s->batch_in_flight = true;
            /* the same items, in the same order, as the request */
            for (size_t i = 0, k = 0; i < s->item_count && k < n; i++)
                if (s->items[i].state == ITEM_PENDING) {
                    s->items[i].state = ITEM_CREATING;
                    k++;
                }
        }
    }
    uarc__free(reqs);
    uarc__free(filters);
}

/* Doubles the room for items, in an array that starts on a cache line. */
static bool grow_items(uarc_subscription *s)
{
    size_t cap = s->item_capacity ? 2 * s->item_capacity : 8;
    char *raw = uarc__malloc(cap * sizeof(item) + ITEM_ALIGN - 1);
    if (!raw)
        return false;
    item *items = (item *)(raw + (ITEM_ALIGN - (uintptr_t)raw % ITEM_ALIGN) % ITEM_ALIGN);
    if (s->item_count)
        memcpy(items, s->items, s->item_count * sizeof *items);
    uarc__free(s->items_raw);
    s->items_raw = raw;
    s->items = items;
    s->item_capacity = cap;
    return true;
}

/* Adds an item (data, or event with `event_filter`, taken over on success). */
static uarc_status add_item(uarc_subscription *s, const uarc_monitored_item_params *params,
                            uarc_EventFilter *event_filter, uint32_t *handle)
{
    if (s->item_count >= MAX_ITEMS)
        return UARC_BadTooManyMonitoredItems;
    if (s->item_count == s->item_capacity && !grow_items(s))
        return UARC_BadOutOfMemory;
    item *it = &s->items[s->item_count];
    memset(it, 0, sizeof *it);
    it->params = *params;
    if (uarc_copy(&params->node, &it->params.node, UARC_T(NodeId)) != UARC_Good)
        return UARC_BadOutOfMemory;
    /* An adopted subscription's items may be on the server already, under the same handles
     * (the previous client added them in the same order): asked once it is ours. */
    it->state = s->adopting ? ITEM_UNSURE : ITEM_PENDING;
    it->event_filter = event_filter;
    it->mode = UARC_MonitoringMode_Reporting;
    s->item_count++;
    if (handle)
        *handle = (uint32_t)s->item_count;
    uarc__sub_send_items(s);
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_add_item(uarc_subscription *s,
                                                const uarc_monitored_item_params *params,
                                                uint32_t *handle)
{
    return add_item(s, params, NULL, handle);
}

/* Parses "[ns:]Name/[ns:]Name" into qualified names borrowing from `path`. Returns the count,
 * 0 when an element is empty or too long or there are more than `capacity`. */
static size_t parse_path(const char *path, uarc_qualified_name *out, size_t capacity)
{
    size_t n = 0;
    for (const char *p = path;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        uint16_t ns = 0;
        const char *colon = memchr(p, ':', len);
        if (colon && colon > p) {
            unsigned long v = 0;
            const char *d = p;
            while (d < colon && *d >= '0' && *d <= '9' && v <= 65535)
                v = v * 10 + (unsigned long)(*d++ - '0');
            if (d == colon && v <= 65535) {
                ns = (uint16_t)v;
                len -= (size_t)(colon + 1 - p);
                p = colon + 1;
            }
        }
        if (len == 0 || len > MAX_PATH_NAME || n == capacity)
            return 0;
        out[n++] = (uarc_qualified_name){ns, {len, (uint8_t *)p}};
        if (!end)
            return n;
        p = end + 1;
    }
}

UARC_API uarc_status uarc_subscription_add_event_item(uarc_subscription *s,
                                                      const uarc_event_item_params *params,
                                                      uint32_t *handle)
{
    if (params->select_count == 0 || params->select_count > MAX_SELECT || !params->select)
        return UARC_BadEventFilterInvalid;
    enum { MAX_DEPTH = 8 };
    uarc_SimpleAttributeOperand clauses[MAX_SELECT];
    uarc_qualified_name names[MAX_SELECT][MAX_DEPTH];
    for (size_t i = 0; i < params->select_count; i++) {
        size_t depth = params->select[i] ? parse_path(params->select[i], names[i], MAX_DEPTH) : 0;
        if (!depth)
            return UARC_BadEventFilterInvalid;
        clauses[i] = (uarc_SimpleAttributeOperand){
            .typeDefinitionId = uarc_nodeid_numeric(0, UARC_NS0ID_BaseEventType),
            .browsePathSize = depth,
            .browsePath = names[i],
            .attributeId = UARC_ATTRIBUTEID_Value};
    }
    uarc_EventFilter filter = {.selectClausesSize = params->select_count, .selectClauses = clauses};
    uarc_LiteralOperand literal = {{0}};
    uarc_extension_object operand = {.encoding = UARC_EXTENSION_OBJECT_DECODED,
                                     .content.decoded = {UARC_T(LiteralOperand), &literal}};
    uarc_ContentFilterElement of_type = {.filterOperator = UARC_FilterOperator_OfType,
                                         .filterOperandsSize = 1,
                                         .filterOperands = &operand};
    uarc_nodeid null_id = uarc_nodeid_numeric(0, 0);
    if (!uarc_equal(&params->of_type, &null_id, UARC_T(NodeId))) {
        literal.value.type = UARC_T(NodeId);
        literal.value.data = (void *)&params->of_type; /* only copied below */
        filter.whereClause = (uarc_ContentFilter){1, &of_type};
    }
    uarc_EventFilter *owned = uarc_new(UARC_T(EventFilter));
    if (!owned || uarc_copy(&filter, owned, UARC_T(EventFilter)) != UARC_Good) {
        uarc_delete(owned, UARC_T(EventFilter));
        return UARC_BadOutOfMemory;
    }
    uarc_monitored_item_params data = {.node = params->node,
                                       .queue_size = params->queue_size ? params->queue_size
                                                                        : DEFAULT_EVENT_QUEUE,
                                       .user_data = params->user_data};
    uint32_t h;
    uarc_status status = add_item(s, &data, owned, &h);
    if (status != UARC_Good) {
        uarc_delete(owned, UARC_T(EventFilter));
        return status;
    }
    if (handle)
        *handle = h;
    return UARC_Good;
}
