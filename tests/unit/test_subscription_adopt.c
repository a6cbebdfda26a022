/*
 * uarc_subscription_adopt() in byte mode against a scripted server: a subscription another
 * client left is transferred, Republished from the number given and its items taken over; a
 * refused transfer is a gap and a new subscription. The clock is the test's; nothing sleeps.
 */
#include "subscription_peer.h"

/* A client with a session, and a subscription adopted with one item (handle 1); returns it with
 * the TransferSubscriptions request popped (its request id in *rid). */
static uarc_subscription *adopt(byte_peer *p, recorder *r, uarc_subscription_config *cfg,
                                uint32_t next, uint32_t *rid)
{
    memset(r, 0, sizeof *r);
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    sub_peer_open(p, &ccfg);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_adopt(p->client, SUB_ID, next, cfg, &s), UARC_Good);
    uarc_monitored_item_params item = {.node = uarc_nodeid_string(1, "Counter"), .queue_size = 100};
    uint32_t handle;
    assert_int_equal(uarc_subscription_add_item(s, &item, &handle), UARC_Good);
    uarc_clear(&item.node, UARC_T(NodeId));
    assert_int_equal(handle, 1);
    uarc_TransferSubscriptionsRequest treq;
    *rid = peer_pop_request(p, UARC_T(TransferSubscriptionsRequest), &treq);
    assert_int_equal(treq.subscriptionIdsSize, 1);
    assert_int_equal(treq.subscriptionIds[0], SUB_ID);
    assert_true(treq.sendInitialValues);
    uarc_clear(&treq, UARC_T(TransferSubscriptionsRequest));
    /* Nothing else touches it before the answer: no item created, no Publish for it. */
    assert_true(peer_silent(p));
    return s;
}

static void reply_transfer(byte_peer *p, uint32_t rid, uarc_status status, uint32_t *available,
                           size_t n)
{
    uarc_TransferResult result = {.statusCode = status,
                                  .availableSequenceNumbersSize = n,
                                  .availableSequenceNumbers = available};
    uarc_TransferSubscriptionsResponse tr;
    uarc_init(&tr, UARC_T(TransferSubscriptionsResponse));
    tr.resultsSize = 1;
    tr.results = &result;
    peer_reply(p, rid, &tr, UARC_T(TransferSubscriptionsResponse));
}

static void test_adopted_is_transferred_republished_then_gap(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t rid;
    /* The previous client passed on everything before 50. */
    uarc_subscription *s = adopt(&p, &r, &cfg, 50, &rid);
    uint32_t available[] = {50, 51};
    reply_transfer(&p, rid, UARC_Good, available, 2);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_TRANSFERRED);
    assert_int_equal(uarc_subscription_id(s), SUB_ID);
    uint32_t seq;
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 50);
    reply_republish(&p, rid, 50, 500);
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 51);
    reply_republish(&p, rid, 51, 501);
    rid = pop_republish(&p, &seq);
    assert_int_equal(seq, 52);
    peer_fault(&p, rid, UARC_BadMessageNotAvailable);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.seq[0], 50);
    assert_int_equal(r.seq[1], 51);
    /* Caught up: the server is asked which items it has; item 1 is there, nothing is created. */
    uint32_t handles[] = {1};
    reply_server_items(&p, handles, 1, UARC_Good);
    uint32_t pub = pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    /* The server had dropped 52 and 53 before the transfer: the next message shows the hole. */
    uint32_t later[] = {54};
    reply_publish(&p, pub, SUB_ID, 54, 504, later, 1);
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_from[0], 52);
    assert_int_equal(r.gap_to[0], 53);
    assert_int_equal(r.gap_reason[0], UARC_BadMessageNotAvailable);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.seq[2], 54);
    assert_int_equal(r.value[2], 504);
    /* That gap needs no Server.ResendData: the transfer asked for initial values. */
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    uarc_client_delete(p.client);
}

static void test_refused_transfer_is_a_gap_and_a_new_subscription(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t rid;
    uarc_subscription *s = adopt(&p, &r, &cfg, 50, &rid);
    /* Another user, or anonymous over SecurityMode None (Part 4 §5.13.7). */
    reply_transfer(&p, rid, UARC_BadUserAccessDenied, NULL, 0);
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_from[0], 50);
    assert_int_equal(r.gap_to[0], 0);
    assert_int_equal(r.gap_reason[0], UARC_BadUserAccessDenied);
    reply_create(&p, 77);
    assert_int_equal(uarc_subscription_id(s), 77);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_RECREATED);
    reply_limits(&p, UARC_Good, 0);
    uint32_t pub = pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(reply_items(&p, 77), 1);
    reply_publish(&p, pub, 77, 1, 7, NULL, 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.value[0], 7);
    assert_int_equal(r.gaps, 1);
    uarc_client_delete(p.client);
}

static void test_adopted_before_the_session_waits_for_it(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    memset(&r, 0, sizeof r);
    uarc_subscription_config cfg = config_for(&r);
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    memset(&p, 0, sizeof p);
    p.now = PEER_START_MS;
    p.sequence = 1;
    p.client = uarc_client_new(&ccfg);
    assert_non_null(p.client);
    uarc_subscription_set_publish_spare(p.client, 0);
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_adopt(p.client, 0, 0, &cfg, &s),
                     UARC_BadSubscriptionIdInvalid);
    assert_null(s);
    /* Number unknown (0): after the transfer nothing is republished. */
    assert_int_equal(uarc_subscription_adopt(p.client, SUB_ID, 0, &cfg, &s), UARC_Good);
    uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(0, 2258)};
    uarc_subscription_add_item(s, &item, NULL);
    uarc_subscription_add_item(s, &item, NULL);
    peer_open_channel(&p);
    peer_new_session(&p, 80);
    uarc_TransferSubscriptionsRequest treq;
    uint32_t rid = peer_pop_request(&p, UARC_T(TransferSubscriptionsRequest), &treq);
    assert_int_equal(treq.subscriptionIds[0], SUB_ID);
    uarc_clear(&treq, UARC_T(TransferSubscriptionsRequest));
    assert_true(peer_silent(&p));
    reply_transfer(&p, rid, UARC_Good, NULL, 0);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_TRANSFERRED);
    /* The server has item 2 only: item 1 alone is created (after the limits are read). */
    uint32_t handles[] = {2};
    reply_server_items(&p, handles, 1, UARC_Good);
    uint32_t pub = pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    reply_limits(&p, UARC_Good, 0);
    assert_int_equal(reply_items(&p, SUB_ID), 1);
    reply_publish(&p, pub, SUB_ID, 9, 90, NULL, 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.seq[0], 9);
    assert_int_equal(r.gaps, 0);
    uarc_client_delete(p.client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adopted_is_transferred_republished_then_gap),
        cmocka_unit_test(test_refused_transfer_is_a_gap_and_a_new_subscription),
        cmocka_unit_test(test_adopted_before_the_session_waits_for_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
