/*
 * Removal, modification and monitoring mode of many items in one call, against a scripted
 * server: batches within the configured size and the server's MaxMonitoredItemsPerCall,
 * BadTooManyOperations, one result per item (item_modified, item_removed), a connection lost
 * between batches. The clock is the test's.
 */
#include <stdlib.h>

#include "subscription_peer.h"

#define ITEMS 1200u

static uint8_t modified[ITEMS + 1]; /* item_modified and item_removed calls per handle */
static uarc_status modified_status[ITEMS + 1];
static size_t modified_total;

static void on_item_modified(void *user_data, uarc_subscription *s, uint32_t item,
                             uarc_status status)
{
    (void)user_data, (void)s;
    assert_true(item >= 1 && item <= ITEMS);
    modified[item]++;
    modified_status[item] = status;
    modified_total++;
}

/* The server id of item `handle`. */
static uint32_t server_id(uint32_t handle)
{
    return 1000 + handle;
}

/* The RequestId of the last PublishRequest left aside. */
static uint32_t last_publish;

/* Pops the next request of `type` the client sent, PublishRequests before it left aside; decodes
 * it into `request` (uarc_clear it) and returns its RequestId. */
static uint32_t pop_skipping_publish(byte_peer *p, const uarc_type *type, void *request)
{
    for (;;) {
        size_t body;
        uint32_t encoding = peer_pop_any(p, &body);
        if (encoding == UARC_T(PublishRequest)->binary_encoding_id) {
            last_publish = get_u32(p->message + 20);
            continue;
        }
        if (encoding != type->binary_encoding_id)
            fail_msg("expected a %s, got encoding i=%u", type->name, encoding);
        return peer_decode_request(p, body, type, request);
    }
}

/* Whether the client has sent nothing but PublishRequests. */
static bool only_publishes(byte_peer *p)
{
    while (!peer_silent(p)) {
        if (peer_pop_any(p, NULL) != UARC_T(PublishRequest)->binary_encoding_id)
            return false;
        last_publish = get_u32(p->message + 20);
    }
    return true;
}

/* Answers every CreateMonitoredItems until the client has none to send: Good, server ids
 * server_id(handle). */
static void create_all(byte_peer *p)
{
    size_t created = 0;
    while (created < ITEMS) {
        uarc_CreateMonitoredItemsRequest req;
        uint32_t rid = pop_skipping_publish(p, UARC_T(CreateMonitoredItemsRequest), &req);
        size_t n = req.itemsToCreateSize;
        uarc_MonitoredItemCreateResult *results = calloc(n, sizeof *results);
        assert_non_null(results);
        for (size_t i = 0; i < n; i++)
            results[i] = (uarc_MonitoredItemCreateResult){
                .statusCode = UARC_Good,
                .monitoredItemId =
                    server_id(req.itemsToCreate[i].requestedParameters.clientHandle)};
        uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
        uarc_CreateMonitoredItemsResponse r;
        uarc_init(&r, UARC_T(CreateMonitoredItemsResponse));
        r.resultsSize = n;
        r.results = results;
        peer_reply(p, rid, &r, UARC_T(CreateMonitoredItemsResponse));
        free(results);
        created += n;
    }
    assert_true(only_publishes(p));
}

/* A session, a subscription with ITEMS items (handles 1..ITEMS) created; the server says
 * MaxMonitoredItemsPerCall `limit` (0: none). */
static uarc_subscription *setup_items(byte_peer *p, recorder *r, uint32_t limit, uint32_t *handles)
{
    uarc_subscription_config cfg = config_for(r);
    cfg.callbacks.item_modified = on_item_modified;
    cfg.callbacks.item_removed = on_item_modified;
    memset(modified, 0, sizeof modified);
    modified_total = 0;
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    sub_peer_open(p, &ccfg);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p->client, &cfg, &s), UARC_Good);
    for (uint32_t i = 0; i < ITEMS; i++) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, 5000 + i)};
        assert_int_equal(uarc_subscription_add_item(s, &item, &handles[i]), UARC_Good);
        assert_int_equal(handles[i], i + 1);
    }
    reply_create(p, SUB_ID);
    reply_limits(p, UARC_Good, limit);
    create_all(p);
    return s;
}

typedef enum change { REMOVE, MODIFY, MODE } change;

static const uarc_type *request_type(change c)
{
    return c == REMOVE   ? UARC_T(DeleteMonitoredItemsRequest)
           : c == MODIFY ? UARC_T(ModifyMonitoredItemsRequest)
                         : UARC_T(SetMonitoringModeRequest);
}

/* Pops the next request of change `c`; its items' handles go to `handles`. Returns its
 * RequestId and sets *count. */
static uint32_t pop_change(byte_peer *p, change c, uint32_t *handles, size_t *count)
{
    union {
        uarc_DeleteMonitoredItemsRequest d;
        uarc_ModifyMonitoredItemsRequest m;
        uarc_SetMonitoringModeRequest s;
    } req;
    uint32_t rid = pop_skipping_publish(p, request_type(c), &req);
    if (c == MODIFY) {
        assert_int_equal(req.m.subscriptionId, SUB_ID);
        *count = req.m.itemsToModifySize;
        for (size_t i = 0; i < *count; i++) {
            const uarc_MonitoredItemModifyRequest *m = &req.m.itemsToModify[i];
            handles[i] = m->requestedParameters.clientHandle;
            assert_int_equal(m->monitoredItemId, server_id(handles[i]));
            assert_int_equal(m->requestedParameters.queueSize, 7);
        }
    } else {
        const uint32_t *ids = c == REMOVE ? req.d.monitoredItemIds : req.s.monitoredItemIds;
        *count = c == REMOVE ? req.d.monitoredItemIdsSize : req.s.monitoredItemIdsSize;
        assert_int_equal(c == REMOVE ? req.d.subscriptionId : req.s.subscriptionId, SUB_ID);
        if (c == MODE)
            assert_int_equal(req.s.monitoringMode, UARC_MonitoringMode_Disabled);
        for (size_t i = 0; i < *count; i++)
            handles[i] = ids[i] - 1000;
    }
    uarc_clear(&req, request_type(c));
    return rid;
}

/* Answers request `rid` of change `c` with `count` Good results. */
static void reply_change(byte_peer *p, change c, uint32_t rid, size_t count)
{
    uarc_status *statuses = calloc(count ? count : 1, sizeof *statuses);
    uarc_MonitoredItemModifyResult *mods = calloc(count ? count : 1, sizeof *mods);
    assert_non_null(statuses);
    assert_non_null(mods);
    if (c == MODIFY) {
        uarc_ModifyMonitoredItemsResponse r;
        uarc_init(&r, UARC_T(ModifyMonitoredItemsResponse));
        r.resultsSize = count;
        r.results = mods;
        peer_reply(p, rid, &r, UARC_T(ModifyMonitoredItemsResponse));
    } else if (c == REMOVE) {
        uarc_DeleteMonitoredItemsResponse r;
        uarc_init(&r, UARC_T(DeleteMonitoredItemsResponse));
        r.resultsSize = count;
        r.results = statuses;
        peer_reply(p, rid, &r, UARC_T(DeleteMonitoredItemsResponse));
    } else {
        uarc_SetMonitoringModeResponse r;
        uarc_init(&r, UARC_T(SetMonitoringModeResponse));
        r.resultsSize = count;
        r.results = statuses;
        peer_reply(p, rid, &r, UARC_T(SetMonitoringModeResponse));
    }
    free(statuses);
    free(mods);
}

static uarc_status start(uarc_subscription *s, change c, const uint32_t *handles, size_t count)
{
    uarc_monitored_item_params np = {.queue_size = 7};
    return c == REMOVE   ? uarc_subscription_remove_items(s, handles, count)
           : c == MODIFY ? uarc_subscription_modify_items(s, handles, count, &np)
                         : uarc_subscription_set_monitoring_mode(s, handles, count,
                                                                 UARC_MonitoringMode_Disabled);
}

/* Answers the requests of change `c` one by one, each of `expected` items (the last may have
 * fewer), one in flight at a time; checks every item was in one request once, in order. */
static void answer_batches(byte_peer *p, change c, size_t first, size_t expected, size_t requests)
{
    static uint32_t got[ITEMS];
    size_t next = first;
    for (size_t k = 0; k < requests; k++) {
        size_t n;
        uint32_t rid = pop_change(p, c, got, &n);
        size_t want = ITEMS - next < expected ? ITEMS - next : expected;
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(got[i], next + i + 1);
        next += n;
        assert_true(only_publishes(p)); /* one request at a time */
        reply_change(p, c, rid, n);
    }
    assert_int_equal(next, ITEMS);
    assert_true(only_publishes(p));
}

static void check_each_modified_once(uarc_status status)
{
    assert_int_equal(modified_total, ITEMS);
    for (uint32_t h = 1; h <= ITEMS; h++) {
        assert_int_equal(modified[h], 1);
        assert_int_equal(modified_status[h], status);
    }
}

/* ITEMS items changed in one call go out in batches of `batch` within `limit`. */
static void check_batches(change c, uint32_t limit, size_t batch, size_t requests)
{
    byte_peer p;
    recorder r;
    static uint32_t handles[ITEMS];
    uarc_subscription *s = setup_items(&p, &r, limit, handles);
    assert_int_equal(start(s, c, handles, ITEMS), UARC_Good);
    answer_batches(&p, c, 0, batch, requests);
    check_each_modified_once(UARC_Good);
    if (c == REMOVE)
        assert_int_equal(uarc_subscription_remove_item(s, 1), UARC_BadMonitoredItemIdInvalid);
    uarc_client_delete(p.client);
}

static void test_changes_in_batches_of_500(void **state)
{
    (void)state;
    for (change c = REMOVE; c <= MODE; c++)
        check_batches(c, 0, 500, 3);
}

static void test_changes_within_the_servers_limit(void **state)
{
    (void)state;
    for (change c = REMOVE; c <= MODE; c++)
        check_batches(c, 100, 100, 12);
}

/* The server refuses a batch with BadTooManyOperations: it is halved and the same items go
 * again; the refused batch is not reported. */
static void test_too_many_operations_halves(void **state)
{
    (void)state;
    for (change c = REMOVE; c <= MODE; c++) {
        byte_peer p;
        recorder r;
        static uint32_t handles[ITEMS], got[ITEMS];
        uarc_subscription *s = setup_items(&p, &r, 0, handles);
        assert_int_equal(start(s, c, handles, ITEMS), UARC_Good);
        size_t n;
        uint32_t rid = pop_change(&p, c, got, &n);
        assert_int_equal(n, 500);
        peer_fault(&p, rid, UARC_BadTooManyOperations);
        assert_int_equal(modified_total, 0);
        answer_batches(&p, c, 0, 250, 5);
        check_each_modified_once(UARC_Good);
        uarc_client_delete(p.client);
    }
}

/* A handle given twice in one call goes to the server once and is reported once. */
static void test_duplicate_handles_once(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    static uint32_t handles[ITEMS], twice[2 * ITEMS];
    uarc_subscription *s = setup_items(&p, &r, 0, handles);
    for (size_t i = 0; i < ITEMS; i++)
        twice[2 * i] = twice[2 * i + 1] = handles[i];
    assert_int_equal(start(s, MODE, twice, 2 * ITEMS), UARC_Good);
    answer_batches(&p, MODE, 0, 500, 3);
    check_each_modified_once(UARC_Good);
    uarc_client_delete(p.client);
}

/* The connection drops while the second batch is in flight; the same session is re-activated:
 * the first batch took the change (reported), the second goes again, then the third; each item
 * is reported once. */
static void test_drop_between_batches_resumes(void **state)
{
    (void)state;
    for (change c = REMOVE; c <= MODE; c++) {
        byte_peer p;
        recorder r;
        static uint32_t handles[ITEMS], got[ITEMS];
        uarc_subscription *s = setup_items(&p, &r, 0, handles);
        assert_int_equal(start(s, c, handles, ITEMS), UARC_Good);
        size_t n;
        uint32_t rid = pop_change(&p, c, got, &n);
        reply_change(&p, c, rid, n);
        pop_change(&p, c, got, &n);
        assert_int_equal(got[0], 501);
        assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good),
                         UARC_BadConnectionClosed);
        assert_int_equal(modified_total, 500); /* the lost answer: nothing */
        p.now += 1000;
        peer_open_channel(&p);
        peer_resume_session(&p);
        assert_true(uarc_client_session_resumed(p.client));
        answer_batches(&p, c, 500, 500, 2);
        check_each_modified_once(UARC_Good);
        uarc_client_delete(p.client);
    }
}

/* The connection drops between batches and the server lost the subscription (a new session,
 * TransferSubscriptions refused): the items not yet answered are reported
 * BadSubscriptionIdInvalid and created again with the change. */
static void test_drop_and_subscription_lost(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    static uint32_t handles[ITEMS], got[ITEMS];
    uarc_subscription *s = setup_items(&p, &r, 0, handles);
    assert_int_equal(start(s, MODIFY, handles, ITEMS), UARC_Good);
    size_t n;
    uint32_t rid = pop_change(&p, MODIFY, got, &n);
    reply_change(&p, MODIFY, rid, n);
    pop_change(&p, MODIFY, got, &n);
    peer_reconnect(&p);
    peer_replace_session(&p, 90); /* the session is gone: ActivateSession refused, a new one */
    uarc_TransferSubscriptionsRequest treq;
    rid = pop_skipping_publish(&p, UARC_T(TransferSubscriptionsRequest), &treq);
    uarc_clear(&treq, UARC_T(TransferSubscriptionsRequest));
    uarc_TransferResult tr = {.statusCode = UARC_BadSubscriptionIdInvalid};
    uarc_TransferSubscriptionsResponse tres;
    uarc_init(&tres, UARC_T(TransferSubscriptionsResponse));
    tres.resultsSize = 1;
    tres.results = &tr;
    peer_reply(&p, rid, &tres, UARC_T(TransferSubscriptionsResponse));
    assert_int_equal(modified_total, ITEMS);
    for (uint32_t h = 1; h <= ITEMS; h++) {
        assert_int_equal(modified[h], 1);
        assert_int_equal(modified_status[h], h <= 500 ? UARC_Good : UARC_BadSubscriptionIdInvalid);
    }
    /* created again, every item with the new parameters */
    uarc_CreateSubscriptionRequest creq;
    answer_create(&p, pop_skipping_publish(&p, UARC_T(CreateSubscriptionRequest), &creq), SUB_ID);
    reply_limits(&p, UARC_Good, 0);
    uarc_CreateMonitoredItemsRequest items;
    pop_skipping_publish(&p, UARC_T(CreateMonitoredItemsRequest), &items);
    assert_int_equal(items.itemsToCreateSize, 500);
    for (size_t i = 0; i < items.itemsToCreateSize; i++)
        assert_int_equal(items.itemsToCreate[i].requestedParameters.queueSize, 7);
    uarc_clear(&items, UARC_T(CreateMonitoredItemsRequest));
    assert_int_equal(modified_total, ITEMS);
    uarc_client_delete(p.client);
}

/* The server ends the subscription (a StatusChangeNotification, e.g. its lifetime expired)
 * between batches: the items not yet answered are reported BadSubscriptionIdInvalid, once; the
 * answer of the batch in flight, coming later, reports nothing more. */
static void check_ended_by_the_server_between_batches(change c)
{
    byte_peer p;
    recorder r;
    static uint32_t handles[ITEMS], got[ITEMS];
    uarc_subscription *s = setup_items(&p, &r, 0, handles);
    assert_int_equal(start(s, c, handles, ITEMS), UARC_Good);
    size_t n;
    uint32_t rid = pop_change(&p, c, got, &n);
    reply_change(&p, c, rid, n);
    rid = pop_change(&p, c, got, &n);
    uarc_StatusChangeNotification sc = {.status = UARC_BadTimeout};
    uarc_extension_object e = {.encoding = UARC_EXTENSION_OBJECT_DECODED};
    e.content.decoded.type = UARC_T(StatusChangeNotification);
    e.content.decoded.data = &sc;
    uarc_PublishResponse pr;
    uarc_init(&pr, UARC_T(PublishResponse));
    pr.subscriptionId = SUB_ID;
    pr.notificationMessage.sequenceNumber = 1;
    pr.notificationMessage.notificationDataSize = 1;
    pr.notificationMessage.notificationData = &e;
    peer_reply(&p, last_publish, &pr, UARC_T(PublishResponse));
    assert_int_equal(modified_total, ITEMS);
    for (uint32_t h = 1; h <= ITEMS; h++)
        assert_int_equal(modified_status[h], h <= 500 ? UARC_Good : UARC_BadSubscriptionIdInvalid);
    reply_change(&p, c, rid, n);
    assert_int_equal(modified_total, ITEMS);
    uarc_CreateSubscriptionRequest creq;
    pop_skipping_publish(&p, UARC_T(CreateSubscriptionRequest), &creq);
    uarc_client_delete(p.client);
}

static void test_ended_by_the_server_between_batches(void **state)
{
    (void)state;
    check_ended_by_the_server_between_batches(MODE);
    check_ended_by_the_server_between_batches(REMOVE);
}

/* The subscription is deleted while a batch is in flight: its answer reports nothing and
 * nothing more is sent (valgrind: nothing read after it is freed). */
static void test_deleted_with_a_batch_in_flight(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    static uint32_t handles[ITEMS], got[ITEMS];
    uarc_subscription *s = setup_items(&p, &r, 0, handles);
    assert_int_equal(start(s, MODIFY, handles, ITEMS), UARC_Good);
    size_t n;
    uint32_t rid = pop_change(&p, MODIFY, got, &n);
    uarc_subscription_delete(s);
    uarc_DeleteSubscriptionsRequest d;
    pop_skipping_publish(&p, UARC_T(DeleteSubscriptionsRequest), &d);
    uarc_clear(&d, UARC_T(DeleteSubscriptionsRequest));
    reply_change(&p, MODIFY, rid, n);
    assert_int_equal(modified_total, 0);
    assert_true(only_publishes(&p));
    uarc_client_delete(p.client);
}

/* Answers DeleteMonitoredItems `rid` with `statuses`, one per item. */
static void reply_removed(byte_peer *p, uint32_t rid, uarc_status *statuses, size_t n)
{
    uarc_DeleteMonitoredItemsResponse r;
    uarc_init(&r, UARC_T(DeleteMonitoredItemsResponse));
    r.resultsSize = n;
    r.results = statuses;
    peer_reply(p, rid, &r, UARC_T(DeleteMonitoredItemsResponse));
}

/* The connection drops and the same session is re-activated. */
static void drop_and_resume(byte_peer *p)
{
    peer_reconnect(p);
    peer_resume_session(p);
    assert_true(uarc_client_session_resumed(p->client));
}

/* item_removed tells the server's result per item, the status of a request that failed as a
 * whole, and Good for a removal repeated after a lost answer that the server no longer knows. */
static void test_removal_results(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    static uint32_t handles[ITEMS], got[ITEMS];
    uarc_subscription *s = setup_items(&p, &r, 0, handles);
    size_t n;
    /* one result per item, as the server gave it */
    uint32_t three[] = {1, 2, 3};
    assert_int_equal(uarc_subscription_remove_items(s, three, 3), UARC_Good);
    uint32_t rid = pop_change(&p, REMOVE, got, &n);
    assert_int_equal(n, 3);
    uarc_status results[3] = {UARC_Good, UARC_BadMonitoredItemIdInvalid, UARC_Good};
    reply_removed(&p, rid, results, 3);
    assert_int_equal(modified_total, 3);
    assert_int_equal(modified_status[1], UARC_Good);
    assert_int_equal(modified_status[2], UARC_BadMonitoredItemIdInvalid);
    assert_int_equal(modified_status[3], UARC_Good);
    /* a request that failed as a whole: its status for each item */
    uint32_t two[] = {4, 5};
    assert_int_equal(uarc_subscription_remove_items(s, two, 2), UARC_Good);
    peer_fault(&p, pop_change(&p, REMOVE, got, &n), UARC_BadInternalError);
    assert_int_equal(modified_total, 5);
    assert_int_equal(modified_status[4], UARC_BadInternalError);
    assert_int_equal(modified_status[5], UARC_BadInternalError);
    /* the answer lost with the connection: sent again; the server no longer knows the item,
     * since the first request deleted it */
    assert_int_equal(uarc_subscription_remove_item(s, 6), UARC_Good);
    pop_change(&p, REMOVE, got, &n);
    drop_and_resume(&p);
    assert_int_equal(modified_total, 5);
    rid = pop_change(&p, REMOVE, got, &n);
    assert_int_equal(n, 1);
    assert_int_equal(got[0], 6);
    results[0] = UARC_BadMonitoredItemIdInvalid;
    reply_removed(&p, rid, results, 1);
    assert_int_equal(modified_total, 6);
    assert_int_equal(modified[6], 1);
    assert_int_equal(modified_status[6], UARC_Good);
    /* ... while a first request that the server refuses per item still tells it */
    assert_int_equal(uarc_subscription_remove_item(s, 7), UARC_Good);
    reply_removed(&p, pop_change(&p, REMOVE, got, &n), results, 1);
    assert_int_equal(modified_status[7], UARC_BadMonitoredItemIdInvalid);
    assert_int_equal(modified_total, 7);
    assert_true(only_publishes(&p));
    uarc_client_delete(p.client);
}

/* Items 1, 2, 3 added before the subscription exists; it is created and their
 * CreateMonitoredItems is in flight (returned: its RequestId). */
static uint32_t three_items_in_flight(byte_peer *p, recorder *r, uarc_subscription **s)
{
    uarc_subscription_config cfg = config_for(r);
    cfg.callbacks.item_removed = on_item_modified;
    memset(modified, 0, sizeof modified);
    modified_total = 0;
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    sub_peer_open(p, &ccfg);
    assert_int_equal(uarc_subscription_new(p->client, &cfg, s), UARC_Good);
    for (uint32_t i = 0; i < 3; i++) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, 10 + i)};
        assert_int_equal(uarc_subscription_add_item(*s, &item, NULL), UARC_Good);
    }
    reply_create(p, SUB_ID);
    reply_limits(p, UARC_Good, 0);
    uarc_CreateMonitoredItemsRequest req;
    uint32_t rid = pop_skipping_publish(p, UARC_T(CreateMonitoredItemsRequest), &req);
    assert_int_equal(req.itemsToCreateSize, 3);
    uarc_clear(&req, UARC_T(CreateMonitoredItemsRequest));
    return rid;
}

/* Pops a DeleteMonitoredItems of the one server id `expected` and answers it. */
static void expect_delete_of(byte_peer *p, uint32_t expected)
{
    uarc_DeleteMonitoredItemsRequest d;
    uint32_t rid = pop_skipping_publish(p, UARC_T(DeleteMonitoredItemsRequest), &d);
    assert_int_equal(d.monitoredItemIdsSize, 1);
    assert_int_equal(d.monitoredItemIds[0], expected);
    uarc_clear(&d, UARC_T(DeleteMonitoredItemsRequest));
    reply_change(p, REMOVE, rid, 1);
}

/* An item removed while its CreateMonitoredItems is in flight: the answer's results still go to
 * the right items, and the removed one is deleted on the server once it has an id. */
static void test_removed_while_being_created(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription *s;
    uint32_t rid = three_items_in_flight(&p, &r, &s);
    assert_int_equal(uarc_subscription_remove_item(s, 2), UARC_Good);
    assert_int_equal(uarc_subscription_remove_item(s, 2), UARC_BadMonitoredItemIdInvalid);
    uarc_MonitoredItemCreateResult results[3] = {
        {.monitoredItemId = 101}, {.monitoredItemId = 102}, {.monitoredItemId = 103}};
    uarc_CreateMonitoredItemsResponse cr;
    uarc_init(&cr, UARC_T(CreateMonitoredItemsResponse));
    cr.resultsSize = 3;
    cr.results = results;
    peer_reply(&p, rid, &cr, UARC_T(CreateMonitoredItemsResponse));
    expect_delete_of(&p, 102);
    assert_true(only_publishes(&p));
    assert_int_equal(uarc_subscription_remove_item(s, 3), UARC_Good);
    expect_delete_of(&p, 103);
    assert_int_equal(modified_total, 1);
    assert_int_equal(modified[3], 1);
    uarc_client_delete(p.client);
}

/* The same, and the connection drops before the answer: the server, asked, has all three; the
 * removed one is deleted there, the others are taken over. */
static void test_removed_while_unsure(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription *s;
    three_items_in_flight(&p, &r, &s);
    assert_int_equal(uarc_subscription_remove_item(s, 2), UARC_Good);
    peer_reconnect(&p);
    peer_resume_session(&p);
    uarc_CallRequest creq;
    uint32_t rid = pop_skipping_publish(&p, UARC_T(CallRequest), &creq);
    uarc_clear(&creq, UARC_T(CallRequest));
    uint32_t server[3] = {201, 202, 203}, client[3] = {1, 2, 3};
    uarc_variant out[2] = {
        {.type = UARC_T(UInt32), .data = server, .array_length = 3, .is_array = true},
        {.type = UARC_T(UInt32), .data = client, .array_length = 3, .is_array = true}};
    uarc_CallMethodResult result = {.outputArgumentsSize = 2, .outputArguments = out};
    uarc_CallResponse cres;
    uarc_init(&cres, UARC_T(CallResponse));
    cres.resultsSize = 1;
    cres.results = &result;
    peer_reply(&p, rid, &cres, UARC_T(CallResponse));
    expect_delete_of(&p, 202);
    assert_true(only_publishes(&p)); /* nothing created again */
    assert_int_equal(uarc_subscription_remove_item(s, 3), UARC_Good);
    expect_delete_of(&p, 203);
    /* item 2 was not on the server when it was removed: not reported; item 3 was */
    assert_int_equal(modified_total, 1);
    assert_int_equal(modified[3], 1);
    uarc_client_delete(p.client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes_in_batches_of_500),
        cmocka_unit_test(test_changes_within_the_servers_limit),
        cmocka_unit_test(test_too_many_operations_halves),
        cmocka_unit_test(test_duplicate_handles_once),
        cmocka_unit_test(test_drop_between_batches_resumes),
        cmocka_unit_test(test_drop_and_subscription_lost),
        cmocka_unit_test(test_ended_by_the_server_between_batches),
        cmocka_unit_test(test_deleted_with_a_batch_in_flight),
        cmocka_unit_test(test_removed_while_being_created),
        cmocka_unit_test(test_removed_while_unsure),
        cmocka_unit_test(test_removal_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
