/*
 * Subscriptions in byte mode against a scripted server: the publish pipeline, ordering by
 * sequence number (wrap, duplicates, keep-alives), Republish of holes, gaps, acknowledgements,
 * and recovery across a lost connection. The clock is the test's; nothing sleeps.
 */
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
    size_t gaps;
    uarc_subscription_state states[16];
    size_t state_count;
    size_t delivered_messages;
    uarc_subscription *delete_on_data; /* deletes this subscription from the data callback */
} recorder;

static void on_data(void *user_data, const uarc_data_change *c)
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

static void on_delivered(void *user_data, uarc_subscription *s, uint32_t sequence)
{
    (void)s, (void)sequence;
    ((recorder *)user_data)->delivered_messages++;
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    (void)s;
    recorder *r = user_data;
    assert_true(r->gaps < 8);
    r->gap_from[r->gaps] = from;
    r->gap_to[r->gaps] = to;
    r->gap_reason[r->gaps] = reason;
    r->gaps++;
}

static void on_state(void *user_data, uarc_subscription *s, uarc_subscription_state state,
                     uarc_status status)
{
    (void)s, (void)status;
    recorder *r = user_data;
    assert_true(r->state_count < 16);
    r->states[r->state_count++] = state;
}

static uarc_subscription_config config_for(recorder *r)
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

static void reply_create(byte_peer *p, uint32_t id)
{
    uarc_CreateSubscriptionRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(CreateSubscriptionRequest), &req);
    assert_true(req.requestedLifetimeCount >= 3 * req.requestedMaxKeepAliveCount);
    uarc_CreateSubscriptionResponse r;
    uarc_init(&r, UARC_T(CreateSubscriptionResponse));
    r.subscriptionId = id;
    r.revisedPublishingInterval = INTERVAL_MS;
    r.revisedMaxKeepAliveCount = KEEPALIVE;
    r.revisedLifetimeCount = 1200;
    peer_reply(p, rid, &r, UARC_T(CreateSubscriptionResponse));
}

/* Answers a CreateMonitoredItems with `count` Good results; returns how many items it asked. */
static size_t reply_items(byte_peer *p, uint32_t subscription_id)
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
static void reply_limits(byte_peer *p, uarc_status status, uint32_t limit)
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
static uint32_t pop_publish(byte_peer *p, uint32_t *acks, size_t *ack_count)
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

/* A NotificationMessage `seq` with one data change of item 1 to `value` (value < 0: a
 * keep-alive). The message borrows `dcn` and `mn`. */
static void make_message(uarc_NotificationMessage *m, uint32_t seq, int32_t value,
                         uarc_DataChangeNotification *dcn, uarc_MonitoredItemNotification *mn,
                         uarc_extension_object *e, int32_t *boxed)
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
static void reply_publish(byte_peer *p, uint32_t rid, uint32_t subscription_id, uint32_t seq,
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
    make_message(&r.notificationMessage, seq, value, &dcn, &mn, &e, &boxed);
    peer_reply(p, rid, &r, UARC_T(PublishResponse));
}

static void reply_republish(byte_peer *p, uint32_t rid, uint32_t seq, int32_t value)
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

static uint32_t pop_republish(byte_peer *p, uint32_t *seq)
{
    uarc_RepublishRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(RepublishRequest), &req);
    *seq = req.retransmitSequenceNumber;
    return rid;
}

/* A session, a subscription with one item, created; the two PublishRequests it keeps out are in
 * pub[0], pub[1]. */
static uarc_subscription *setup(byte_peer *p, recorder *r, uarc_subscription_config *cfg,
                                uint32_t pub[2])
{
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    peer_open(p, &ccfg);
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

static void test_in_order_with_wrap_and_duplicates(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    /* 4294967294, 4294967295, then 1: the number wraps past 0. */
    reply_publish(&p, pub[0], SUB_ID, UINT32_MAX - 1, 10, NULL, 0);
    uint32_t acks[8];
    size_t n;
    uint32_t next = pop_publish(&p, acks, &n);
    assert_int_equal(n, 1);
    assert_int_equal(acks[0], UINT32_MAX - 1);
    reply_publish(&p, pub[1], SUB_ID, UINT32_MAX, 11, NULL, 0);
    uint32_t next2 = pop_publish(&p, acks, &n);
    reply_publish(&p, next, SUB_ID, 1, 12, NULL, 0);
    next = pop_publish(&p, acks, &n);
    /* A duplicate of a delivered message is dropped, not delivered again. */
    reply_publish(&p, next2, SUB_ID, UINT32_MAX, 11, NULL, 0);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.seq[0], UINT32_MAX - 1);
    assert_int_equal(r.seq[1], UINT32_MAX);
    assert_int_equal(r.seq[2], 1);
    assert_int_equal(r.value[2], 12);
    assert_int_equal(r.gaps, 0);
    uarc_client_delete(p.client);
}

static void test_keepalive_does_not_advance(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 7, 1, NULL, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    /* The keep-alive names 8, the next message's number: nothing is missing. */
    reply_publish(&p, pub[1], SUB_ID, 8, -1, NULL, 0);
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    reply_publish(&p, next, SUB_ID, 8, 2, NULL, 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.seq[1], 8);
    assert_int_equal(r.gaps, 0);
    assert_int_equal(r.delivered_messages, 2);
    /* A keep-alive that names 10 after 8 tells that 9 was sent: asked for, as it is available. */
    pop_publish(&p, NULL, NULL);
    uint32_t available[] = {9};
    reply_publish(&p, next2, SUB_ID, 10, -1, available, 1);
    uint32_t seq;
    uint32_t rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 9);
    reply_republish(&p, rid, 9, 3);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.seq[2], 9);
    uarc_client_delete(p.client);
}

static void test_hole_filled_by_republish_in_order(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 10, 100, NULL, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    /* 12 arrives, 11 is missing but still held by the server. */
    uint32_t available[] = {11, 12};
    reply_publish(&p, pub[1], SUB_ID, 12, 102, available, 2);
    uint32_t seq;
    uint32_t rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 11);
    assert_int_equal(r.count, 1); /* 12 waits for 11 */
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    reply_republish(&p, rid, 11, 101);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.seq[1], 11);
    assert_int_equal(r.seq[2], 12);
    assert_int_equal(r.value[2], 102);
    /* 11 and 12 are acknowledged with the next PublishRequest, 11 first. */
    uint32_t acks[8];
    size_t n;
    reply_publish(&p, next, SUB_ID, 13, -1, NULL, 0);
    pop_publish(&p, acks, &n);
    assert_int_equal(n, 2);
    assert_int_equal(acks[0], 11);
    assert_int_equal(acks[1], 12);
    /* 13 is gone from the server: a gap, then 14. */
    uint32_t available2[] = {14};
    reply_publish(&p, next2, SUB_ID, 14, 104, available2, 1);
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_from[0], 13);
    assert_int_equal(r.gap_to[0], 13);
    assert_int_equal(r.gap_reason[0], UARC_BadMessageNotAvailable);
    assert_int_equal(r.count, 4);
    assert_int_equal(r.seq[3], 14);
    uarc_client_delete(p.client);
}

static void test_hole_filled_by_a_late_publish(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    /* 2 is missing, 3 is here: Republish(2) goes out ... */
    uint32_t available[] = {2, 3};
    reply_publish(&p, pub[1], SUB_ID, 3, 3, available, 2);
    uint32_t seq;
    uint32_t rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 2);
    pop_publish(&p, NULL, NULL);
    /* ... but a PublishResponse brings 2 first: 2 and 3 are delivered, and the Republish's
     * BadMessageNotAvailable that follows is no loss. */
    reply_publish(&p, next, SUB_ID, 2, 2, available, 2);
    assert_int_equal(r.count, 3);
    peer_fault(&p, rid, UARC_BadMessageNotAvailable);
    assert_int_equal(r.gaps, 0);
    assert_int_equal(r.seq[1], 2);
    assert_int_equal(r.seq[2], 3);
    uarc_client_delete(p.client);
}

static void test_republish_not_available_as_fault_and_result(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    uint32_t available[] = {2, 3, 4};
    reply_publish(&p, pub[1], SUB_ID, 4, 4, available, 3);
    uint32_t seq;
    uint32_t rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 2);
    pop_publish(&p, NULL, NULL); /* the pipeline refilled meanwhile */
    /* As a fault ... */
    peer_fault(&p, rid, UARC_BadMessageNotAvailable);
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 3);
    /* ... and as a Good answer without the message (CoDeSys, node-opcua #1524): both end the
     * wait for that number with a gap instead of asking forever. */
    reply_republish(&p, rid, 0, -1);
    assert_int_equal(r.gaps, 2);
    assert_int_equal(r.gap_from[0], 2);
    assert_int_equal(r.gap_from[1], 3);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.seq[1], 4);
    assert_true(peer_silent(&p));
    uarc_client_delete(p.client);
}

static void test_too_many_publish_requests(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    (void)s;
    /* Three more subscriptions: four live, so the cap of 5 PublishRequests is reached. */
    uarc_subscription *more[3];
    uint32_t out[5] = {pub[0], pub[1]};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(uarc_subscription_new(p.client, &cfg, &more[i]), UARC_Good);
        reply_create(&p, SUB_ID + 1 + (uint32_t)i);
        out[2 + i] = pop_publish(&p, NULL, NULL); /* one more per live subscription */
    }
    assert_true(peer_silent(&p));
    /* The server holds only four: it answers the oldest with BadTooManyPublishRequests, and no
     * new one goes out until one of the four returns. */
    peer_fault(&p, out[0], UARC_BadTooManyPublishRequests);
    assert_true(peer_silent(&p));
    p.now += 100;
    assert_int_equal(uarc_client_tick(p.client, p.now), UARC_Good);
    assert_true(peer_silent(&p));
    reply_publish(&p, out[1], SUB_ID, 1, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    /* BadNoSubscription is harmless: nothing fails, nothing is re-sent in a loop. */
    peer_fault(&p, out[2], UARC_BadNoSubscription);
    assert_true(peer_silent(&p));
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(r.count, 1);
    uarc_client_delete(p.client);
}

static void test_deferred_ack(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    cfg.deferred_ack = true;
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 3, 1, NULL, 0);
    uint32_t acks[8];
    size_t n;
    uint32_t next = pop_publish(&p, acks, &n);
    assert_int_equal(r.count, 1);
    assert_int_equal(n, 0); /* delivered, not yet acknowledged */
    assert_int_equal(uarc_subscription_ack(s, 3), UARC_Good);
    reply_publish(&p, pub[1], SUB_ID, 4, -1, NULL, 0);
    pop_publish(&p, acks, &n);
    assert_int_equal(n, 1);
    assert_int_equal(acks[0], 3);
    (void)next;
    uarc_client_delete(p.client);
}

static void test_resume_republishes_until_not_available(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 20, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    /* The connection drops with 21 and 22 still unacknowledged on the server. */
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    p.now += 1000;
    peer_open_channel(&p);
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    peer_reply(&p, peer_pop_request(&p, UARC_T(ActivateSessionRequest), NULL), &as,
               UARC_T(ActivateSessionResponse));
    assert_true(uarc_client_session_resumed(p.client));
    /* Republish 21, 22, 23 (gone: caught up), then the pipeline is refilled. */
    uint32_t seq;
    uint32_t rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 21);
    assert_true(peer_silent(&p));
    reply_republish(&p, rid, 21, 2);
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 22);
    reply_republish(&p, rid, 22, 3);
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 23);
    peer_fault(&p, rid, UARC_BadMessageNotAvailable);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_RESUMED);
    uint32_t acks[8];
    size_t n;
    uint32_t next = pop_publish(&p, acks, &n);
    assert_int_equal(n, 2);
    assert_int_equal(acks[0], 21);
    assert_int_equal(acks[1], 22);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    reply_publish(&p, next, SUB_ID, 23, 4, NULL, 0);
    assert_int_equal(r.count, 4);
    assert_int_equal(r.seq[3], 23);
    assert_int_equal(r.gaps, 0);
    uarc_client_delete(p.client);
}

static void test_new_session_transfer_fails_then_recreate_with_gap(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 30, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    /* The server restarted: the session is unknown, a new one is made. */
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    p.now += 1000;
    peer_open_channel(&p);
    peer_fault(&p, peer_pop_request(&p, UARC_T(ActivateSessionRequest), NULL),
               UARC_BadSessionIdInvalid);
    peer_new_session(&p, 90);
    uarc_TransferSubscriptionsRequest treq;
    uint32_t rid = peer_pop_request(&p, UARC_T(TransferSubscriptionsRequest), &treq);
    assert_int_equal(treq.subscriptionIdsSize, 1);
    assert_int_equal(treq.subscriptionIds[0], SUB_ID);
    assert_true(treq.sendInitialValues);
    uarc_clear(&treq, UARC_T(TransferSubscriptionsRequest));
    uarc_TransferResult result = {.statusCode = UARC_BadSubscriptionIdInvalid};
    uarc_TransferSubscriptionsResponse tr;
    uarc_init(&tr, UARC_T(TransferSubscriptionsResponse));
    tr.resultsSize = 1;
    tr.results = &result;
    peer_reply(&p, rid, &tr, UARC_T(TransferSubscriptionsResponse));
    /* Everything after 30 is lost, said as a gap; then the subscription and its item again. */
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_from[0], 31);
    assert_int_equal(r.gap_to[0], 0);
    reply_create(&p, 77);
    assert_int_equal(uarc_subscription_id(s), 77);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_RECREATED);
    /* A new session: its limits are read again before the item. */
    reply_limits(&p, UARC_Good, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(reply_items(&p, 77), 1);
    reply_publish(&p, next, 77, 1, 5, NULL, 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.value[1], 5);
    uarc_client_delete(p.client);
}

static void test_new_session_transfer_succeeds(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 40, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    uarc_client_forget_session(p.client);
    peer_open_channel(&p);
    peer_new_session(&p, 91);
    uint32_t rid = peer_pop_request(&p, UARC_T(TransferSubscriptionsRequest), NULL);
    uint32_t available[] = {41};
    uarc_TransferResult result = {.statusCode = UARC_Good,
                                  .availableSequenceNumbersSize = 1,
                                  .availableSequenceNumbers = available};
    uarc_TransferSubscriptionsResponse tr;
    uarc_init(&tr, UARC_T(TransferSubscriptionsResponse));
    tr.resultsSize = 1;
    tr.results = &result;
    peer_reply(&p, rid, &tr, UARC_T(TransferSubscriptionsResponse));
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_TRANSFERRED);
    uint32_t seq;
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 41);
    reply_republish(&p, rid, 41, 2);
    rid = pop_republish(&p, &seq);
    peer_fault(&p, rid, UARC_BadMessageNotAvailable);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.gaps, 0);
    assert_int_equal(uarc_subscription_id(s), SUB_ID);
    pop_publish(&p, NULL, NULL);
    uarc_client_delete(p.client);
}

static void test_stalled_on_the_given_clock(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    /* keep-alive period 10 x 100 ms, plus one interval and a second of margin */
    int64_t due = p.now + (int64_t)(INTERVAL_MS * (KEEPALIVE + 1)) + 1000;
    assert_true(uarc_client_timeout_ms(p.client) <= due - p.now);
    assert_int_equal(uarc_client_tick(p.client, due - 1), UARC_Good);
    assert_int_not_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_STALLED);
    assert_int_equal(uarc_client_tick(p.client, due), UARC_Good);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_STALLED);
    /* A Republish asks whether the server still has it: it has (the message is just not there). */
    uint32_t seq;
    peer_fault(&p, pop_republish(&p, &seq), UARC_BadMessageNotAvailable);
    assert_int_equal(seq, 1);
    assert_int_equal(r.gaps, 0);
    /* Reported once; a response brings it back. */
    assert_int_equal(uarc_client_tick(p.client, due + 10000), UARC_Good);
    assert_int_equal(r.state_count, 2);
    /* (the two PublishRequests timed out meanwhile and were sent again) */
    uint32_t fresh = pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    p.now = due + 10000;
    reply_publish(&p, fresh, SUB_ID, 1, -1, NULL, 0);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_RESUMED);
    uarc_client_delete(p.client);
}

static void test_stalled_and_lost_is_recreated(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    /* Silence past the keep-alive period; the probe finds the subscription gone. */
    p.now += 3000;
    assert_int_equal(uarc_client_tick(p.client, p.now), UARC_Good);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_STALLED);
    uint32_t seq;
    peer_fault(&p, pop_republish(&p, &seq), UARC_BadSubscriptionIdInvalid);
    assert_int_equal(seq, 2);
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_from[0], 2);
    assert_int_equal(r.gap_to[0], 0);
    reply_create(&p, 88);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_RECREATED);
    assert_int_equal(reply_items(&p, 88), 1);
    uarc_client_delete(p.client);
}

static void test_delete_from_own_callback(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    r.delete_on_data = s;
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    assert_int_equal(r.count, 1);
    peer_pop_request(&p, UARC_T(DeleteSubscriptionsRequest), NULL);
    /* Nothing more of it is delivered and no PublishRequest is sent for it. */
    reply_publish(&p, pub[1], SUB_ID, 2, 2, NULL, 0);
    assert_int_equal(r.count, 1);
    assert_true(peer_silent(&p));
    uarc_client_delete(p.client);
}

static void test_same_value_again_dropped(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    /* node-opcua, after a resumed session, sends a value it had sent already in a new message:
     * same value, same source timestamp. It is not a change and is not delivered twice. */
    message_timestamp = 1000;
    reply_publish(&p, pub[0], SUB_ID, 1, 7, NULL, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    reply_publish(&p, pub[1], SUB_ID, 2, 7, NULL, 0);
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    message_timestamp = 2000; /* the same value at a later time is delivered */
    reply_publish(&p, next, SUB_ID, 3, 7, NULL, 0);
    message_timestamp = 0; /* and without a timestamp nothing is judged a repeat */
    reply_publish(&p, next2, SUB_ID, 4, 7, NULL, 0);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.seq[0], 1);
    assert_int_equal(r.seq[1], 3);
    assert_int_equal(r.seq[2], 4);
    assert_int_equal(r.delivered_messages, 4);
    uarc_client_delete(p.client);
}

static void test_far_keepalive_is_one_gap(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 5, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    /* A keep-alive claiming 2^31 - 2 messages were sent: one gap, found without walking them,
     * ending before the one number the server still lists. */
    uint32_t available[] = {1000};
    reply_publish(&p, pub[1], SUB_ID, 5 + 0x7FFFFFFEu, -1, available, 1);
    uint32_t seq;
    uint32_t rid = pop_republish(&p, &seq);
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_from[0], 6);
    assert_int_equal(r.gap_to[0], 999);
    assert_int_equal(seq, 1000);
    peer_fault(&p, rid, UARC_BadMessageNotAvailable);
    assert_int_equal(r.gaps, 3);
    assert_int_equal(r.gap_from[2], 1001);
    assert_int_equal(r.gap_to[2], 5 + 0x7FFFFFFEu - 1);
    uarc_client_delete(p.client);
}

static void test_modify_publishing_mode_remove(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    assert_int_equal(uarc_subscription_modify(s, 250, 4, 0), UARC_Good);
    uarc_ModifySubscriptionRequest mreq;
    uint32_t rid = peer_pop_request(&p, UARC_T(ModifySubscriptionRequest), &mreq);
    assert_int_equal(mreq.subscriptionId, SUB_ID);
    assert_true(mreq.requestedPublishingInterval == 250);
    assert_int_equal(mreq.requestedMaxKeepAliveCount, 4);
    assert_true(mreq.requestedLifetimeCount >= 12);
    uarc_ModifySubscriptionResponse mr;
    uarc_init(&mr, UARC_T(ModifySubscriptionResponse));
    mr.revisedPublishingInterval = 300;
    mr.revisedMaxKeepAliveCount = 5;
    mr.revisedLifetimeCount = 480;
    peer_reply(&p, rid, &mr, UARC_T(ModifySubscriptionResponse));
    double interval;
    uint32_t keepalive, lifetime;
    uarc_subscription_revised(s, &interval, &keepalive, &lifetime);
    assert_true(interval == 300);
    assert_int_equal(keepalive, 5);
    assert_int_equal(lifetime, 480);

    assert_int_equal(uarc_subscription_set_publishing(s, false), UARC_Good);
    uarc_SetPublishingModeRequest preq;
    peer_pop_request(&p, UARC_T(SetPublishingModeRequest), &preq);
    assert_false(preq.publishingEnabled);
    assert_int_equal(preq.subscriptionIdsSize, 1);
    assert_int_equal(preq.subscriptionIds[0], SUB_ID);
    uarc_clear(&preq, UARC_T(SetPublishingModeRequest));

    /* The item exists on the server (id 100): removing it deletes it there; a data change that
     * still names it is not delivered. */
    assert_int_equal(uarc_subscription_remove_item(s, 1), UARC_Good);
    uarc_DeleteMonitoredItemsRequest dreq;
    peer_pop_request(&p, UARC_T(DeleteMonitoredItemsRequest), &dreq);
    assert_int_equal(dreq.subscriptionId, SUB_ID);
    assert_int_equal(dreq.monitoredItemIdsSize, 1);
    assert_int_equal(dreq.monitoredItemIds[0], 100);
    uarc_clear(&dreq, UARC_T(DeleteMonitoredItemsRequest));
    assert_int_equal(uarc_subscription_remove_item(s, 1), UARC_BadMonitoredItemIdInvalid);
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.delivered_messages, 1);
    uarc_client_delete(p.client);
}

typedef struct event_record {
    size_t count;
    size_t field_count;
    int32_t severity;
} event_record;

static void on_event_cb(void *user_data, const uarc_event *e)
{
    event_record *r = user_data;
    r->count++;
    r->field_count = e->field_count;
    if (e->field_count >= 2 && e->fields[1].type == UARC_T(Int32))
        r->severity = *(int32_t *)e->fields[1].data;
}

static void test_event_item(void **state)
{
    (void)state;
    byte_peer p;
    event_record er = {0};
    uarc_subscription_config cfg = {.publishing_interval_ms = INTERVAL_MS,
                                    .max_keepalive_count = KEEPALIVE};
    cfg.callbacks.event = on_event_cb;
    cfg.callbacks.user_data = &er;
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    peer_open(&p, &ccfg);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p.client, &cfg, &s), UARC_Good);
    const char *select[] = {"Message", "0:Severity", "EnabledState/Id"};
    uarc_event_item_params ep = {.node = uarc_nodeid_numeric(0, UARC_NS0ID_Server),
                                 .select = select,
                                 .select_count = 3,
                                 .of_type = uarc_nodeid_numeric(0, 2041)};
    uint32_t handle;
    assert_int_equal(uarc_subscription_add_event_item(s, &ep, &handle), UARC_Good);
    const char *bad[] = {"Message//x"};
    uarc_event_item_params bp = {.node = ep.node, .select = bad, .select_count = 1};
    assert_int_equal(uarc_subscription_add_event_item(s, &bp, NULL), UARC_BadEventFilterInvalid);
    bp.select_count = 0;
    assert_int_equal(uarc_subscription_add_event_item(s, &bp, NULL), UARC_BadEventFilterInvalid);
    reply_create(&p, SUB_ID);
    reply_limits(&p, UARC_BadNodeIdUnknown, 0); /* a server that does not say */
    uint32_t pub = pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    uarc_CreateMonitoredItemsRequest req;
    uint32_t rid = peer_pop_request(&p, UARC_T(CreateMonitoredItemsRequest), &req);
    assert_int_equal(req.itemsToCreateSize, 1);
    const uarc_MonitoredItemCreateRequest *m = &req.itemsToCreate[0];
    assert_int_equal(m->itemToMonitor.attributeId, UARC_ATTRIBUTEID_EventNotifier);
    assert_true(m->requestedParameters.samplingInterval == 0);
    assert_int_equal(m->requestedParameters.queueSize, 100);
    assert_ptr_equal(m->requestedParameters.filter.content.decoded.type, UARC_T(EventFilter));
    const uarc_EventFilter *f = m->requestedParameters.filter.content.decoded.data;
    assert_int_equal(f->selectClausesSize, 3);
    assert_int_equal(f->selectClauses[2].browsePathSize, 2);
    assert_true(uarc_string_equal_cstr(&f->selectClauses[2].browsePath[1].name, "Id"));
    assert_true(uarc_string_equal_cstr(&f->selectClauses[1].browsePath[0].name, "Severity"));
    assert_int_equal(f->whereClause.elementsSize, 1);
    assert_int_equal(f->whereClause.elements[0].filterOperator, UARC_FilterOperator_OfType);
    const uarc_LiteralOperand *lit =
        f->whereClause.elements[0].filterOperands[0].content.decoded.data;
    assert_ptr_equal(lit->value.type, UARC_T(NodeId));
    uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
    uarc_MonitoredItemCreateResult result = {.statusCode = UARC_Good, .monitoredItemId = 7};
    uarc_CreateMonitoredItemsResponse cr;
    uarc_init(&cr, UARC_T(CreateMonitoredItemsResponse));
    cr.resultsSize = 1;
    cr.results = &result;
    peer_reply(&p, rid, &cr, UARC_T(CreateMonitoredItemsResponse));
    /* An event with its three fields. */
    int32_t severity = 500;
    uarc_variant fields[3] = {{0}};
    fields[1].type = UARC_T(Int32);
    fields[1].data = &severity;
    uarc_EventFieldList efl = {.clientHandle = handle, .eventFieldsSize = 3, .eventFields = fields};
    uarc_EventNotificationList enl = {.eventsSize = 1, .events = &efl};
    uarc_extension_object e = {.encoding = UARC_EXTENSION_OBJECT_DECODED,
                               .content.decoded = {UARC_T(EventNotificationList), &enl}};
    uarc_PublishResponse r;
    uarc_init(&r, UARC_T(PublishResponse));
    r.subscriptionId = SUB_ID;
    r.notificationMessage = (uarc_NotificationMessage){
        .sequenceNumber = 1, .notificationDataSize = 1, .notificationData = &e};
    peer_reply(&p, pub, &r, UARC_T(PublishResponse));
    assert_int_equal(er.count, 1);
    assert_int_equal(er.field_count, 3);
    assert_int_equal(er.severity, 500);
    uarc_client_delete(p.client);
}

static void test_items_in_batches(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    cfg.item_batch_size = 2;
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    peer_open(&p, &ccfg);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p.client, &cfg, &s), UARC_Good);
    for (int i = 0; i < 5; i++) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, (uint32_t)i),
                                           .deadband_type = UARC_DeadbandType_Absolute,
                                           .deadband_value = 0.5};
        assert_int_equal(uarc_subscription_add_item(s, &item, NULL), UARC_Good);
    }
    reply_create(&p, SUB_ID);
    reply_limits(&p, UARC_Good, 3); /* above the configured batch: the batch stays 2 */
    pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    uarc_CreateMonitoredItemsRequest req;
    peer_pop_request(&p, UARC_T(CreateMonitoredItemsRequest), &req);
    assert_int_equal(req.itemsToCreateSize, 2);
    const uarc_extension_object *f = &req.itemsToCreate[1].requestedParameters.filter;
    assert_int_equal(f->encoding, UARC_EXTENSION_OBJECT_DECODED);
    assert_ptr_equal(f->content.decoded.type, UARC_T(DataChangeFilter));
    const uarc_DataChangeFilter *dcf = f->content.decoded.data;
    assert_int_equal(dcf->deadbandType, UARC_DeadbandType_Absolute);
    assert_true(dcf->deadbandValue == 0.5);
    assert_int_equal(req.itemsToCreate[1].requestedParameters.clientHandle, 2);
    assert_true(req.itemsToCreate[0].requestedParameters.samplingInterval == -1);
    uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
    /* The server takes only one per call: the batch is halved and the same items go again. */
    uint32_t items_request = get_u32(p.message + 20);
    peer_fault(&p, items_request, UARC_BadTooManyOperations);
    peer_pop_request(&p, UARC_T(CreateMonitoredItemsRequest), &req);
    assert_int_equal(req.itemsToCreateSize, 1);
    assert_int_equal(req.itemsToCreate[0].requestedParameters.clientHandle, 1);
    uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
    uarc_client_delete(p.client);
}

/* Answers a CreateMonitoredItems with Good results; returns how many items it asked. */
static size_t reply_items_any(byte_peer *p)
{
    uarc_CreateMonitoredItemsRequest req;
    uint32_t rid = peer_pop_request(p, UARC_T(CreateMonitoredItemsRequest), &req);
    size_t n = req.itemsToCreateSize;
    uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
    uarc_MonitoredItemCreateResult results[8] = {{0}};
    assert_true(n <= 8);
    uarc_CreateMonitoredItemsResponse r;
    uarc_init(&r, UARC_T(CreateMonitoredItemsResponse));
    r.resultsSize = n;
    r.results = results;
    peer_reply(p, rid, &r, UARC_T(CreateMonitoredItemsResponse));
    return n;
}

static void test_items_within_the_servers_limit(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r); /* batches of 500 */
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    peer_open(&p, &ccfg);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p.client, &cfg, &s), UARC_Good);
    for (uint32_t i = 0; i < 5; i++) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, i)};
        assert_int_equal(uarc_subscription_add_item(s, &item, NULL), UARC_Good);
    }
    reply_create(&p, SUB_ID);
    /* MaxMonitoredItemsPerCall 2: five items go in calls of 2, 2 and 1, one after the other. */
    reply_limits(&p, UARC_Good, 2);
    pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(reply_items_any(&p), 2);
    assert_int_equal(reply_items_any(&p), 2);
    assert_int_equal(reply_items_any(&p), 1);
    assert_true(peer_silent(&p));
    /* Read once per session: a later item goes out without another Read. */
    for (uint32_t i = 5; i < 8; i++) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, i)};
        assert_int_equal(uarc_subscription_add_item(s, &item, NULL), UARC_Good);
    }
    assert_int_equal(reply_items_any(&p), 1); /* the first was sent as it was added */
    assert_int_equal(reply_items_any(&p), 2);
    assert_true(peer_silent(&p));
    uarc_client_delete(p.client);
}

static uint32_t modified_item[8];
static uarc_status modified_status[8];
static size_t modified_count;

static void on_item_modified(void *user_data, uarc_subscription *s, uint32_t item,
                             uarc_status status)
{
    (void)user_data, (void)s;
    assert_true(modified_count < 8);
    modified_item[modified_count] = item;
    modified_status[modified_count++] = status;
}

static void test_modify_item_and_monitoring_mode(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    cfg.callbacks.item_modified = on_item_modified;
    modified_count = 0;
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    /* ModifyMonitoredItems of item 1 (server id 100): the new parameters on the wire. */
    uarc_monitored_item_params np = {.node = uarc_nodeid_numeric(1, 999), /* ignored */
                                     .sampling_interval_ms = 50,
                                     .queue_size = 5,
                                     .deadband_type = UARC_DeadbandType_Absolute,
                                     .deadband_value = 1.5};
    assert_int_equal(uarc_subscription_modify_item(s, 1, &np), UARC_Good);
    uarc_ModifyMonitoredItemsRequest mreq;
    uint32_t rid = peer_pop_request(&p, UARC_T(ModifyMonitoredItemsRequest), &mreq);
    assert_int_equal(mreq.subscriptionId, SUB_ID);
    assert_int_equal(mreq.itemsToModifySize, 1);
    const uarc_MonitoredItemModifyRequest *m = &mreq.itemsToModify[0];
    assert_int_equal(m->monitoredItemId, 100);
    assert_int_equal(m->requestedParameters.clientHandle, 1);
    assert_true(m->requestedParameters.samplingInterval == 50);
    assert_int_equal(m->requestedParameters.queueSize, 5);
    assert_true(m->requestedParameters.discardOldest);
    assert_ptr_equal(m->requestedParameters.filter.content.decoded.type, UARC_T(DataChangeFilter));
    const uarc_DataChangeFilter *f = m->requestedParameters.filter.content.decoded.data;
    assert_true(f->deadbandValue == 1.5);
    uarc_clear(&mreq, UARC_T(ModifyMonitoredItemsRequest));
    uarc_MonitoredItemModifyResult mres = {.statusCode = UARC_Good, .revisedQueueSize = 5};
    uarc_ModifyMonitoredItemsResponse mr;
    uarc_init(&mr, UARC_T(ModifyMonitoredItemsResponse));
    mr.resultsSize = 1;
    mr.results = &mres;
    peer_reply(&p, rid, &mr, UARC_T(ModifyMonitoredItemsResponse));
    assert_int_equal(modified_count, 1);
    assert_int_equal(modified_item[0], 1);
    assert_int_equal(modified_status[0], UARC_Good);
    /* SetMonitoringMode: Sampling for item 1; the server refuses it for a reason of its own. */
    uint32_t handle = 1;
    assert_int_equal(
        uarc_subscription_set_monitoring_mode(s, &handle, 1, UARC_MonitoringMode_Sampling),
        UARC_Good);
    uarc_SetMonitoringModeRequest sreq;
    rid = peer_pop_request(&p, UARC_T(SetMonitoringModeRequest), &sreq);
    assert_int_equal(sreq.subscriptionId, SUB_ID);
    assert_int_equal(sreq.monitoringMode, UARC_MonitoringMode_Sampling);
    assert_int_equal(sreq.monitoredItemIdsSize, 1);
    assert_int_equal(sreq.monitoredItemIds[0], 100);
    uarc_clear(&sreq, UARC_T(SetMonitoringModeRequest));
    uarc_status sres = UARC_Good;
    uarc_SetMonitoringModeResponse sr;
    uarc_init(&sr, UARC_T(SetMonitoringModeResponse));
    sr.resultsSize = 1;
    sr.results = &sres;
    peer_reply(&p, rid, &sr, UARC_T(SetMonitoringModeResponse));
    assert_int_equal(modified_count, 2);
    assert_int_equal(modified_status[1], UARC_Good);
    /* Refused at once: unknown items, a bad mode, an item still being created; nothing sent. */
    assert_int_equal(uarc_subscription_modify_item(s, 9, &np), UARC_BadMonitoredItemIdInvalid);
    handle = 9;
    assert_int_equal(
        uarc_subscription_set_monitoring_mode(s, &handle, 1, UARC_MonitoringMode_Disabled),
        UARC_BadMonitoredItemIdInvalid);
    handle = 1;
    assert_int_equal(uarc_subscription_set_monitoring_mode(s, &handle, 1, (uarc_MonitoringMode)3),
                     UARC_BadMonitoringModeInvalid);
    uarc_monitored_item_params second = {.node = uarc_nodeid_numeric(1, 2)};
    uint32_t h2;
    assert_int_equal(uarc_subscription_add_item(s, &second, &h2), UARC_Good); /* in flight */
    assert_int_equal(uarc_subscription_modify_item(s, h2, &np), UARC_BadInvalidState);
    uint32_t both[2] = {1, h2};
    assert_int_equal(
        uarc_subscription_set_monitoring_mode(s, both, 2, UARC_MonitoringMode_Disabled),
        UARC_BadInvalidState);
    assert_int_equal(reply_items(&p, SUB_ID), 1);
    assert_true(peer_silent(&p));
    /* The server lost the subscription: it is created again with the modified parameters and
     * the mode. */
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    p.now += 3000;
    assert_int_equal(uarc_client_tick(p.client, p.now), UARC_Good);
    uint32_t seq;
    peer_fault(&p, pop_republish(&p, &seq), UARC_BadSubscriptionIdInvalid);
    reply_create(&p, 88);
    uarc_CreateMonitoredItemsRequest creq;
    peer_pop_request(&p, UARC_T(CreateMonitoredItemsRequest), &creq);
    assert_int_equal(creq.itemsToCreateSize, 2);
    assert_int_equal(creq.itemsToCreate[0].monitoringMode, UARC_MonitoringMode_Sampling);
    assert_int_equal(creq.itemsToCreate[0].requestedParameters.queueSize, 5);
    assert_int_equal(creq.itemsToCreate[0].itemToMonitor.nodeId.identifier_type,
                     UARC_NODEID_STRING);
    assert_int_equal(creq.itemsToCreate[1].monitoringMode, UARC_MonitoringMode_Reporting);
    uarc_clear(&creq, UARC_T(CreateMonitoredItemsRequest));
    uarc_client_delete(p.client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_with_wrap_and_duplicates),
        cmocka_unit_test(test_keepalive_does_not_advance),
        cmocka_unit_test(test_hole_filled_by_republish_in_order),
        cmocka_unit_test(test_hole_filled_by_a_late_publish),
        cmocka_unit_test(test_republish_not_available_as_fault_and_result),
        cmocka_unit_test(test_too_many_publish_requests),
        cmocka_unit_test(test_deferred_ack),
        cmocka_unit_test(test_resume_republishes_until_not_available),
        cmocka_unit_test(test_new_session_transfer_fails_then_recreate_with_gap),
        cmocka_unit_test(test_new_session_transfer_succeeds),
        cmocka_unit_test(test_stalled_on_the_given_clock),
        cmocka_unit_test(test_stalled_and_lost_is_recreated),
        cmocka_unit_test(test_delete_from_own_callback),
        cmocka_unit_test(test_same_value_again_dropped),
        cmocka_unit_test(test_far_keepalive_is_one_gap),
        cmocka_unit_test(test_modify_publishing_mode_remove),
        cmocka_unit_test(test_event_item),
        cmocka_unit_test(test_items_in_batches),
        cmocka_unit_test(test_items_within_the_servers_limit),
        cmocka_unit_test(test_modify_item_and_monitoring_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
