/* The fuzz_client harness's client side: the callbacks, which check what the client reports, and
 * the actions the script's records ask of it (requests, browse, blocking helpers, subscriptions).
 */
#include <string.h>

#include "client_harness.h"

/* ---- the client's callbacks ---- */

ticket *new_ticket(const uarc_type *response_type)
{
    if (h.ticket_count == MAX_TICKETS)
        return NULL;
    ticket *t = &h.tickets[h.ticket_count++];
    *t = (ticket){false, response_type == NULL, 0, response_type};
    return t;
}

void on_response(void *user_data, uarc_status status, void *response)
{
    ticket *t = user_data;
    require(!t->done && !t->browse);
    t->done = true;
    t->status = status;
    trace("callback %d: %s%s", (int)(t - h.tickets), uarc_status_name(status),
          response ? "" : " (no response)");
    require(status != UARC_Good || response);
    if (response) { /* a whole value of the type asked for, as long as the callback runs */
        void *copy = uarc_new(t->response_type);
        require(copy && uarc_copy(response, copy, t->response_type) == UARC_Good);
        require(uarc_equal(response, copy, t->response_type));
        uarc_delete(copy, t->response_type);
    }
}

static void on_browse(void *user_data, uarc_status status, uarc_ReferenceDescription *references,
                      size_t count)
{
    ticket *t = user_data;
    require(!t->done && t->browse);
    t->done = true;
    t->status = status;
    trace("browse %d: %s, %zu references", (int)(t - h.tickets), uarc_status_name(status), count);
    if (status != UARC_Good)
        require(!references && count == 0);
    uarc_array_delete(references, count, UARC_T(ReferenceDescription));
}

void on_state(void *user_data, uarc_client_state state, uarc_status status)
{
    (void)user_data;
    trace("state %s (%s)", uarc_client_state_name(state), uarc_status_name(status));
    if (state == UARC_CLIENT_DISCONNECTED)
        require(uarc_status_is_bad(status));
    else
        require(status == UARC_Good);
}

void on_log(void *user_data, uarc_log_level level, const char *category, const char *message)
{
    (void)user_data;
    require(level <= UARC_LOG_ERROR && category && message);
    if (level >= UARC_LOG_INFO)
        trace("log %s: %s", category, message);
    volatile size_t sink = strlen(category) + strlen(message); /* both readable and terminated */
    (void)sink;
}

/* ---- client actions ---- */

void finish_send(ticket *t, uarc_status status)
{
    if (status != UARC_Good) {
        require(uarc_client_error(h.client)[0]);
        t->done = true; /* no callback follows a refused send */
    }
}

void send_service(unsigned p)
{
    uint32_t timeout = p & 8 ? 100 : 0;
    uarc_ReadValueId nodes[3] = {
        {.nodeId = uarc_nodeid_numeric(0, 2258), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = uarc_nodeid_string(1, "Temperature"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = uarc_nodeid_numeric(0, 85), .attributeId = UARC_ATTRIBUTEID_BrowseName}};
    uarc_bytestring point = {3, (uint8_t *)"cp0"};
    double number = 21.5;
    uarc_WriteValue write = {.nodeId = uarc_nodeid_string(1, "Setpoint"),
                             .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_variant_set_scalar(&write.value.value, &number, UARC_T(Double));
    write.value.has_value = true;
    uarc_CallMethodRequest method = {.objectId = uarc_nodeid_numeric(1, 1),
                                     .methodId = uarc_nodeid_numeric(1, 2)};
    uarc_RelativePathElement element = {
        .referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
        .includeSubtypes = true,
        .targetName = {0, view("Server")}};
    uarc_BrowsePath path = {.startingNode = uarc_nodeid_numeric(0, 84),
                            .relativePath = {1, &element}};
    uarc_BrowseDescription browse = {.nodeId = uarc_nodeid_numeric(0, 85),
                                     .referenceTypeId =
                                         uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
                                     .includeSubtypes = true,
                                     .resultMask = 0x3F};
    const uarc_type *type;
    union {
        uarc_ReadRequest read;
        uarc_WriteRequest write;
        uarc_CallRequest call;
        uarc_TranslateBrowsePathsToNodeIdsRequest translate;
        uarc_GetEndpointsRequest endpoints;
        uarc_BrowseNextRequest next;
        uarc_BrowseRequest browse;
    } r;
    switch (p & 7) {
    case 0:
    case 1:
        type = UARC_T(ReadRequest);
        uarc_init(&r.read, type);
        r.read.nodesToReadSize = p & 1 ? 3 : 1;
        r.read.nodesToRead = nodes;
        break;
    case 2:
        type = UARC_T(WriteRequest);
        uarc_init(&r.write, type);
        r.write.nodesToWriteSize = 1;
        r.write.nodesToWrite = &write;
        break;
    case 3:
        type = UARC_T(CallRequest);
        uarc_init(&r.call, type);
        r.call.methodsToCallSize = 1;
        r.call.methodsToCall = &method;
        break;
    case 4:
        type = UARC_T(TranslateBrowsePathsToNodeIdsRequest);
        uarc_init(&r.translate, type);
        r.translate.browsePathsSize = 1;
        r.translate.browsePaths = &path;
        break;
    case 5:
        type = UARC_T(GetEndpointsRequest);
        uarc_init(&r.endpoints, type);
        r.endpoints.endpointUrl = view(URL);
        break;
    case 6:
        type = UARC_T(BrowseNextRequest);
        uarc_init(&r.next, type);
        r.next.continuationPointsSize = 1;
        r.next.continuationPoints = &point;
        break;
    default:
        type = UARC_T(BrowseRequest);
        uarc_init(&r.browse, type);
        r.browse.nodesToBrowseSize = 1;
        r.browse.nodesToBrowse = &browse;
        break;
    }
    ticket *t = new_ticket(response_type_of(type));
    uarc_status status =
        t ? uarc_client_send(h.client, &r, type, t->response_type, timeout, on_response, t, NULL)
          : UARC_Good;
    uarc_clear(&write.value.value, UARC_T(Variant));
    uarc_clear(&nodes[1].nodeId, UARC_T(NodeId));
    uarc_clear(&write.nodeId, UARC_T(NodeId));
    if (t)
        finish_send(t, status);
}

void start_browse(void)
{
    ticket *t = new_ticket(NULL);
    if (!t)
        return;
    uarc_nodeid objects = uarc_nodeid_numeric(0, 85);
    finish_send(t, uarc_client_browse_send(h.client, &objects, on_browse, t));
}

/* A blocking helper failed: the client must say why. */
static void blocking_result(uarc_status status)
{
    trace("blocking call: %s; %s", uarc_status_name(status), uarc_client_error(h.client));
    if (status != UARC_Good)
        require(uarc_client_error(h.client)[0]);
}

void run_blocking(unsigned p)
{
    uarc_client *c = h.client;
    uarc_nodeid server_status = uarc_nodeid_numeric(0, 2256);
    uarc_status status;
    h.blocking = true;
    h.idle_polls = 0;
    switch (p % 9) {
    case 0: {
        uarc_ReadValueId nodes[2] = {{.nodeId = server_status, .attributeId = 13},
                                     {.nodeId = server_status, .attributeId = 3}};
        uarc_data_value values[2];
        status = uarc_client_read(c, nodes, 2, values);
        for (int i = 0; i < 2; i++) {
            if (status != UARC_Good)
                require(!values[i].has_value && !values[i].value.type);
            uarc_clear(&values[i], UARC_T(DataValue));
        }
        break;
    }
    case 1: {
        uarc_data_value value;
        status = uarc_client_read_attribute(c, &server_status, 13, &value);
        uarc_clear(&value, UARC_T(DataValue));
        break;
    }
    case 2: {
        uarc_variant v;
        uarc_init(&v, UARC_T(Variant));
        int32_t number = 7;
        uarc_variant_set_scalar(&v, &number, UARC_T(Int32));
        status = uarc_client_write_value(c, &server_status, &v);
        uarc_clear(&v, UARC_T(Variant));
        break;
    }
    case 3: {
        uarc_ReferenceDescription *references;
        size_t count;
        status = uarc_client_browse(c, &server_status, &references, &count);
        if (status != UARC_Good)
            require(!references && count == 0);
        uarc_array_delete(references, count, UARC_T(ReferenceDescription));
        break;
    }
    case 4: {
        uarc_variant in[1];
        double x = 1.0;
        uarc_init(&in[0], UARC_T(Variant));
        uarc_variant_set_scalar(&in[0], &x, UARC_T(Double));
        uarc_variant *outputs;
        size_t count;
        status =
            uarc_client_call_method(c, &server_status, &server_status, in, 1, &outputs, &count);
        if (status != UARC_Good)
            require(!outputs && count == 0);
        uarc_array_delete(outputs, count, UARC_T(Variant));
        uarc_clear(&in[0], UARC_T(Variant));
        break;
    }
    case 5: {
        uarc_nodeid target;
        uarc_nodeid root = uarc_nodeid_numeric(0, 84);
        status = uarc_client_translate_path(c, &root, "/0:Objects/0:Server", &target);
        uarc_clear(&target, UARC_T(NodeId));
        break;
    }
    case 6: {
        uarc_GetEndpointsResponse response;
        status = uarc_client_get_endpoints(c, &response);
        uarc_clear(&response, UARC_T(GetEndpointsResponse));
        break;
    }
    case 7:
        status = uarc_client_create_session(c);
        break;
    default: {
        uarc_ReadValueId node = {.nodeId = server_status, .attributeId = 13};
        uarc_ReadRequest request;
        uarc_init(&request, UARC_T(ReadRequest));
        request.nodesToReadSize = 1;
        request.nodesToRead = &node;
        uarc_ReadResponse response;
        status =
            uarc_client_call(c, &request, UARC_T(ReadRequest), &response, UARC_T(ReadResponse));
        uarc_clear(&response, UARC_T(ReadResponse));
        break;
    }
    }
    h.blocking = false;
    blocking_result(status);
}

/* ---- subscriptions ---- */

static struct watched *watched_of(const uarc_subscription *s)
{
    for (size_t i = 0; i < h.sub_count; i++)
        if (h.subs[i].subscription == s)
            return &h.subs[i];
    require(false); /* a callback of a deleted subscription */
    return NULL;
}

/* Every sequence number of a subscription id is delivered or inside a reported gap, once and in
 * order: what comes next is the number right after where the subscription was. (A comparison
 * with the last number delivered would not do: steps over gaps, each less than half the number
 * space, may together go round it.) */
static void require_next(const struct watched *w, uint32_t id, uint32_t sequence)
{
    if (w->last_id == id && w->last_sequence)
        require(sequence == (w->last_sequence == UINT32_MAX ? 1 : w->last_sequence + 1));
}

static void on_data_change(void *user_data, const uarc_data_change *c)
{
    (void)user_data;
    struct watched *w = watched_of(c->subscription);
    require(c->sequence_number != 0);
    require(c->node && c->value && c->item == 1);
    require_next(w, c->subscription_id, c->sequence_number);
}

static void on_message_delivered(void *user_data, uarc_subscription *s, uint32_t sequence)
{
    (void)user_data;
    struct watched *w = watched_of(s);
    uint32_t id = uarc_subscription_id(s);
    require_next(w, id, sequence);
    w->last_id = id;
    w->last_sequence = sequence;
    if (uarc_subscription_ack(s, sequence) == UARC_Good)
        trace("acknowledged %u", sequence);
}

static void on_event(void *user_data, const uarc_event *e)
{
    (void)user_data;
    watched_of(e->subscription);
    require(e->item == 1 && e->node && (e->fields || e->field_count == 0));
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    (void)user_data;
    struct watched *w = watched_of(s);
    require(from != 0 && uarc_status_is_bad(reason));
    trace("gap %u..%u %s", from, to, uarc_status_name(reason));
    if (!to)
        return; /* the subscription is lost and made again (told next) */
    require((uint32_t)(to - from) < 0x80000000u); /* a range forward from `from` */
    uint32_t id = uarc_subscription_id(s);
    require_next(w, id, from);
    w->last_id = id;
    w->last_sequence = to;
}

static void on_subscription_state(void *user_data, uarc_subscription *s,
                                  uarc_subscription_state state, uarc_status status)
{
    (void)user_data;
    struct watched *w = watched_of(s);
    if (state == UARC_SUBSCRIPTION_RECREATED)
        w->last_sequence = 0; /* a new subscription, whatever id the server gives it */
    trace("subscription %s (%s)", uarc_subscription_state_name(state), uarc_status_name(status));
}

void subscribe(unsigned p)
{
    if (p == 4) {
        for (size_t i = h.sub_count; i-- > 0;)
            if (h.subs[i].subscription) {
                uarc_subscription_delete(h.subs[i].subscription);
                h.subs[i].subscription = NULL;
                break;
            }
        return;
    }
    if (p > 5 || h.sub_count == MAX_SUBSCRIPTIONS)
        return;
    uarc_subscription_config config = {.publishing_interval_ms = 100, .deferred_ack = p & 1};
    config.callbacks = (uarc_subscription_callbacks){.data_change = on_data_change,
                                                     .message_delivered = on_message_delivered,
                                                     .gap = on_gap,
                                                     .state_changed = on_subscription_state,
                                                     .event = on_event};
    uarc_subscription *s;
    require(uarc_subscription_new(h.client, &config, &s) == UARC_Good);
    h.subs[h.sub_count++] = (struct watched){s, 0, 0};
    if (p == 5) {
        const char *select[] = {"Message", "EnabledState/Id"};
        uarc_event_item_params events = {.node = uarc_nodeid_numeric(0, 2253),
                                         .select = select,
                                         .select_count = 2,
                                         .of_type = uarc_nodeid_numeric(0, 2041)};
        require(uarc_subscription_add_event_item(s, &events, NULL) == UARC_Good);
    } else if (!(p & 2)) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, 1), .queue_size = 10};
        require(uarc_subscription_add_item(s, &item, NULL) == UARC_Good);
    }
}
