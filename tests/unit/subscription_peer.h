/*
 * The scripted server of the subscription tests: a byte-mode client with a session, a recorder
 * of what the subscription delivered, and the requests popped and answered one by one.
 */
#ifndef UARC_TEST_SUBSCRIPTION_PEER_H
#define UARC_TEST_SUBSCRIPTION_PEER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_server.h"
#include "byte_peer.h"

#define SUB_ID      5u
#define INTERVAL_MS 100.0
#define KEEPALIVE   10u

typedef struct recorder {
    uint32_t seq[64];
    int32_t value[64];
    size_t count;
    uint32_t gap_from[8], gap_to[8];
    uarc_status gap_reason[8];
    bool gap_resend[8]; /* uarc_subscription_resend_pending() in the callback */
    size_t gaps;
    uarc_subscription_state states[16];
    size_t state_count;
    size_t delivered_messages;
    uarc_subscription *delete_on_data; /* deletes this subscription from the data callback */
} recorder;

static inline void on_data(void *user_data, const uarc_data_change *c)
{
    recorder *r = user_data;
    assert_true(r->count < 64);
    r->seq[r->count] = c->sequence_number;
    r->value[r->count] = c->value->has_value && c->value->value.type == UARC_T(Int32)
                             ? *(int32_t *)c->value->value.data
                             : -1;
    r->count++;
    if (r->delete_on_data) {
        uarc_subscription_delete(r->delete_on_data);
        r->delete_on_data = NULL;
    }
}

static inline void on_delivered(void *user_data, uarc_subscription *s, uint32_t sequence)
{
    (void)s, (void)sequence;
    ((recorder *)user_data)->delivered_messages++;
}

static inline void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                          uarc_status reason)
{
    recorder *r = user_data;
    assert_true(r->gaps < 8);
    r->gap_resend[r->gaps] = uarc_subscription_resend_pending(s);
    r->gap_from[r->gaps] = from;
    r->gap_to[r->gaps] = to;
    r->gap_reason[r->gaps] = reason;
    r->gaps++;
}

static inline void on_state(void *user_data, uarc_subscription *s, uarc_subscription_state state,
                            uarc_status status)
{
    (void)s, (void)status;
    recorder *r = user_data;
    assert_true(r->state_count < 16);
    r->states[r->state_count++] = state;
}

static inline uarc_subscription_config config_for(recorder *r)
{
    memset(r, 0, sizeof *r);
    uarc_subscription_config cfg = {.publishing_interval_ms = INTERVAL_MS,
                                    .max_keepalive_count = KEEPALIVE};
    cfg.callbacks = (uarc_subscription_callbacks){.data_change = on_data,
                                                  .message_delivered = on_delivered,
                                                  .gap = on_gap,
                                                  .state_changed = on_state,
                                                  .user_data = r};
    return cfg;
}

/* Answers CreateSubscription `rid`: subscription `id` publishing every `interval` ms, with
 * KEEPALIVE. */
static inline void answer_create_every(byte_peer *p, uint32_t rid, uint32_t id, double interval)
{
    uarc_CreateSubscriptionResponse r;
    uarc_init(&r, UARC_T(CreateSubscriptionResponse));
    r.subscriptionId = id;
    r.revisedPublishingInterval = interval;
    r.revisedMaxKeepAliveCount = KEEPALIVE;
    r.revisedLifetimeCount = 1200;
    peer_reply(p, rid, &r, UARC_T(CreateSubscriptionResponse));
}

/* Answers CreateSubscription `rid`: subscription `id` with INTERVAL_MS and KEEPALIVE. */
static inline void answer_create(byte_peer *p, uint32_t rid, uint32_t id)
{
    answer_create_every(p, rid, id, INTERVAL_MS);
}

/* Pops the CreateSubscription the client sent next and answers it (answer_create). */
static inline void reply_create(byte_peer *p, uint32_t id)
{
    uarc_CreateSubscriptionRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(CreateSubscriptionRequest), &req);
    assert_true(req.requestedLifetimeCount >= 3 * req.requestedMaxKeepAliveCount);
    answer_create(p, rid, id);
}

/* Answers a CreateMonitoredItems with `count` Good results; returns how many items it asked. */
static inline size_t reply_items(byte_peer *p, uint32_t subscription_id)
{
    uarc_CreateMonitoredItemsRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(CreateMonitoredItemsRequest), &req);
    assert_int_equal(req.subscriptionId, subscription_id);
    size_t n = req.itemsToCreateSize;
    uarc_MonitoredItemCreateResult results[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        results[i] = (uarc_MonitoredItemCreateResult){.statusCode = UARC_Good,
                                                      .monitoredItemId = 100 + (uint32_t)i};
    uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
    uarc_CreateMonitoredItemsResponse r;
    uarc_init(&r, UARC_T(CreateMonitoredItemsResponse));
    r.resultsSize = n;
    r.results = results;
    peer_reply(p, rid, &r, UARC_T(CreateMonitoredItemsResponse));
    return n;
}

/* Answers the Read of MaxMonitoredItemsPerCall: a UInt32 `limit`, or `status` when it is bad. */
static inline void reply_limits(byte_peer *p, uarc_status status, uint32_t limit)
{
    uarc_ReadRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(ReadRequest), &req);
    assert_int_equal(req.nodesToReadSize, 1);
    assert_int_equal(req.nodesToRead[0].nodeId.namespace_index, 0);
    assert_int_equal(req.nodesToRead[0].nodeId.identifier.numeric,
                     UARC_NS0ID_Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall);
    assert_int_equal(req.nodesToRead[0].attributeId, UARC_ATTRIBUTEID_Value);
    uarc_clear(&req, UARC_T(ReadRequest));
    uarc_data_value v = {.status = status, .has_status = status != UARC_Good};
    if (status == UARC_Good) {
        v.has_value = true;
        v.value.type = UARC_T(UInt32);
        v.value.data = &limit;
    }
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    r.resultsSize = 1;
    r.results = &v;
    peer_reply(p, rid, &r, UARC_T(ReadResponse));
}

/* Pops a PublishRequest; its acknowledgements' sequence numbers go to acks (may be NULL). */
static inline uint32_t pop_publish(byte_peer *p, uint32_t *acks, size_t *ack_count)
{
    uarc_PublishRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(PublishRequest), &req);
    if (ack_count) {
        *ack_count = req.subscriptionAcknowledgementsSize;
        for (size_t i = 0; i < req.subscriptionAcknowledgementsSize; i++)
            acks[i] = req.subscriptionAcknowledgements[i].sequenceNumber;
    }
    uarc_clear(&req, UARC_T(PublishRequest));
    return rid;
}

/* Non-zero: the source timestamp of the values make_message() builds. */
static uarc_datetime message_timestamp;
/* The moreNotifications of the PublishResponses reply_publish() sends. */
static bool publish_more;

/* A NotificationMessage `seq` with one data change of item 1 to `value` (value < 0: a
 * keep-alive). The message borrows `dcn` and `mn`. */
static inline void make_message(uarc_NotificationMessage *m, uint32_t seq, int32_t value,
                                uarc_DataChangeNotification *dcn,
                                uarc_MonitoredItemNotification *mn, uarc_extension_object *e,
                                int32_t *boxed)
{
    memset(m, 0, sizeof *m);
    m->sequenceNumber = seq;
    if (value < 0)
        return;
    *boxed = value;
    memset(mn, 0, sizeof *mn);
    mn->clientHandle = 1;
    mn->value.has_value = true;
    mn->value.value.type = UARC_T(Int32);
    mn->value.value.data = boxed;
    mn->value.has_source_timestamp = message_timestamp != 0;
    mn->value.source_timestamp = message_timestamp;
    *dcn = (uarc_DataChangeNotification){.monitoredItemsSize = 1, .monitoredItems = mn};
    *e = (uarc_extension_object){.encoding = UARC_EXTENSION_OBJECT_DECODED};
    e->content.decoded.type = UARC_T(DataChangeNotification);
    e->content.decoded.data = dcn;
    m->notificationDataSize = 1;
    m->notificationData = e;
}

/* Answers Publish `rid` with message `seq` (value < 0: keep-alive), listing `available`. */
static inline void reply_publish(byte_peer *p, uint32_t rid, uint32_t subscription_id, uint32_t seq,
                                 int32_t value, const uint32_t *available, size_t available_count)
{
    uarc_DataChangeNotification dcn;
    uarc_MonitoredItemNotification mn;
    uarc_extension_object e;
    int32_t boxed;
    uarc_PublishResponse r;
    uarc_init(&r, UARC_T(PublishResponse));
    r.subscriptionId = subscription_id;
    r.availableSequenceNumbersSize = available_count;
    r.availableSequenceNumbers = (uint32_t *)available;
    r.moreNotifications = publish_more;
    make_message(&r.notificationMessage, seq, value, &dcn, &mn, &e, &boxed);
    peer_reply(p, rid, &r, UARC_T(PublishResponse));
}

static inline void reply_republish(byte_peer *p, uint32_t rid, uint32_t seq, int32_t value)
{
    uarc_DataChangeNotification dcn;
    uarc_MonitoredItemNotification mn;
    uarc_extension_object e;
    int32_t boxed;
    uarc_RepublishResponse r;
    uarc_init(&r, UARC_T(RepublishResponse));
    make_message(&r.notificationMessage, seq, value, &dcn, &mn, &e, &boxed);
    peer_reply(p, rid, &r, UARC_T(RepublishResponse));
}

static inline uint32_t pop_republish(byte_peer *p, uint32_t *seq)
{
    uarc_RepublishRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(RepublishRequest), &req);
    *seq = req.retransmitSequenceNumber;
    return rid;
}

/* Answers Server.GetMonitoredItems(SUB_ID) with the items the server has: client handles
 * `handles`, server ids 200 + handle; `status` Bad: the call fails with it instead. */
static inline void reply_server_items(byte_peer *p, const uint32_t *handles, size_t n,
                                      uarc_status status)
{
    uarc_CallRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(CallRequest), &req);
    assert_int_equal(req.methodsToCallSize, 1);
    const uarc_CallMethodRequest *m = req.methodsToCall;
    assert_int_equal(m->objectId.identifier.numeric, UARC_NS0ID_Server);
    assert_int_equal(m->methodId.identifier.numeric, 11492); /* GetMonitoredItems */
    assert_int_equal(m->inputArgumentsSize, 1);
    assert_ptr_equal(m->inputArguments[0].type, UARC_T(UInt32));
    assert_int_equal(*(uint32_t *)m->inputArguments[0].data, SUB_ID);
    uarc_clear(&req, UARC_T(CallRequest));
    uint32_t server[8], client[8];
    for (size_t i = 0; i < n; i++) {
        client[i] = handles[i];
        server[i] = 200 + handles[i];
    }
    uarc_variant out[2] = {
        {.type = UARC_T(UInt32), .data = server, .array_length = n, .is_array = true},
        {.type = UARC_T(UInt32), .data = client, .array_length = n, .is_array = true}};
    uarc_CallMethodResult result = {.statusCode = status};
    if (status == UARC_Good) {
        result.outputArgumentsSize = 2;
        result.outputArguments = out;
    }
    uarc_CallResponse r;
    uarc_init(&r, UARC_T(CallResponse));
    r.resultsSize = 1;
    r.results = &result;
    peer_reply(p, rid, &r, UARC_T(CallResponse));
}

/* Pops a Call of Server.ResendData for `subscription_id`; returns its request id. */
static inline uint32_t pop_resend(byte_peer *p, uint32_t subscription_id)
{
    uarc_CallRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(CallRequest), &req);
    assert_int_equal(req.methodsToCallSize, 1);
    const uarc_CallMethodRequest *m = req.methodsToCall;
    assert_int_equal(m->objectId.identifier.numeric, UARC_NS0ID_Server);
    assert_int_equal(m->methodId.identifier.numeric, 12873); /* ResendData */
    assert_int_equal(m->inputArgumentsSize, 1);
    assert_ptr_equal(m->inputArguments[0].type, UARC_T(UInt32));
    assert_false(m->inputArguments[0].is_array);
    assert_int_equal(*(uint32_t *)m->inputArguments[0].data, subscription_id);
    uarc_clear(&req, UARC_T(CallRequest));
    return rid;
}

/* Answers a Call of one method with `status` and no outputs. */
static inline void reply_call(byte_peer *p, uint32_t rid, uarc_status status)
{
    uarc_CallMethodResult result = {.statusCode = status};
    uarc_CallResponse r;
    uarc_init(&r, UARC_T(CallResponse));
    r.resultsSize = 1;
    r.results = &result;
    peer_reply(p, rid, &r, UARC_T(CallResponse));
}

/* peer_open(), the pipeline refilled one PublishRequest for each response, as the tests count
 * them (test_publish_spare has the default, up to the cap). */
static inline void sub_peer_open(byte_peer *p, const uarc_client_config *cfg)
{
    peer_open(p, cfg);
    uarc_subscription_set_publish_spare(p->client, 0);
}

/* A session, a subscription with one item, created; the two PublishRequests it keeps out are in
 * pub[0], pub[1]. */
static inline uarc_subscription *setup(byte_peer *p, recorder *r, uarc_subscription_config *cfg,
                                       uint32_t pub[2])
{
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    sub_peer_open(p, &ccfg);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p->client, cfg, &s), UARC_Good);
    uarc_monitored_item_params item = {.node = uarc_nodeid_string(1, "Counter"), .queue_size = 100};
    uint32_t handle;
    assert_int_equal(uarc_subscription_add_item(s, &item, &handle), UARC_Good);
    uarc_clear(&item.node, UARC_T(NodeId)); /* the subscription keeps its own copy */
    assert_int_equal(handle, 1);
    reply_create(p, SUB_ID);
    assert_int_equal(uarc_subscription_id(s), SUB_ID);
    assert_int_equal(r->states[0], UARC_SUBSCRIPTION_CREATED);
    /* Before the first items, the server's MaxMonitoredItemsPerCall is read; meanwhile the
     * pipeline goes out (one subscription, two PublishRequests), then the item. */
    reply_limits(p, UARC_Good, 0);
    pub[0] = pop_publish(p, NULL, NULL);
    pub[1] = pop_publish(p, NULL, NULL);
    assert_int_equal(reply_items(p, SUB_ID), 1);
    assert_true(peer_silent(p));
    return s;
}

#endif
