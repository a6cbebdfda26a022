/*
 * Server.ResendData after a gap, in byte mode against a scripted server: the call and its ids,
 * what is delivered after it (only the values that changed inside the gap), one call at a time,
 * a server that cannot, the option off, and no call after a re-creation.
 */
#include "subscription_peer.h"

/* setup() and a second item (handle 2), created. */
static uarc_subscription *setup_two(byte_peer *p, recorder *r, uarc_subscription_config *cfg,
                                    uint32_t pub[2])
{
    uarc_subscription *s = setup(p, r, cfg, pub);
    uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, 7)};
    uint32_t handle;
    assert_int_equal(uarc_subscription_add_item(s, &item, &handle), UARC_Good);
    assert_int_equal(handle, 2);
    assert_int_equal(reply_items(p, SUB_ID), 1);
    assert_true(peer_silent(p));
    return s;
}

/* Answers Publish `rid` with message `seq`: item 1 `a`, item 2 `b` (a value < 0: not in it),
 * each with its source timestamp. */
static void reply_two(byte_peer *p, uint32_t rid, uint32_t seq, int32_t a, uarc_datetime ta,
                      int32_t b, uarc_datetime tb, const uint32_t *available, size_t n)
{
    int32_t boxed[2] = {a, b};
    uarc_datetime ts[2] = {ta, tb};
    uarc_MonitoredItemNotification mn[2];
    size_t count = 0;
    for (uint32_t i = 0; i < 2; i++) {
        if (boxed[i] < 0)
            continue;
        mn[count] = (uarc_MonitoredItemNotification){.clientHandle = i + 1};
        mn[count].value = (uarc_data_value){.has_value = true,
                                            .value = {.type = UARC_T(Int32), .data = &boxed[i]},
                                            .has_source_timestamp = true,
                                            .source_timestamp = ts[i]};
        count++;
    }
    uarc_DataChangeNotification dcn = {.monitoredItemsSize = count, .monitoredItems = mn};
    uarc_extension_object e = {.encoding = UARC_EXTENSION_OBJECT_DECODED};
    e.content.decoded.type = UARC_T(DataChangeNotification);
    e.content.decoded.data = &dcn;
    uarc_PublishResponse r;
    uarc_init(&r, UARC_T(PublishResponse));
    r.subscriptionId = SUB_ID;
    r.availableSequenceNumbersSize = n;
    r.availableSequenceNumbers = (uint32_t *)available;
    r.notificationMessage.sequenceNumber = seq;
    r.notificationMessage.notificationDataSize = 1;
    r.notificationMessage.notificationData = &e;
    peer_reply(p, rid, &r, UARC_T(PublishResponse));
}

/* Message 1 (item 1: 10, item 2: 20), then message 3 with 2 lost (item 1: 12): the gap of 2.
 * Returns the PublishRequest left outstanding in *next. */
static void lose_message_2(byte_peer *p, recorder *r, const uint32_t pub[2], uint32_t *next)
{
    reply_two(p, pub[0], 1, 10, 1000, 20, 1000, NULL, 0);
    uint32_t a = pop_publish(p, NULL, NULL);
    uint32_t available[] = {3};
    reply_two(p, pub[1], 3, 12, 3000, -1, 0, available, 1);
    assert_int_equal(r->gaps, 1);
    assert_int_equal(r->gap_from[0], 2);
    assert_int_equal(r->gap_to[0], 2);
    assert_int_equal(r->gap_reason[0], UARC_BadMessageNotAvailable);
    assert_int_equal(r->count, 3);
    *next = a;
}

static void test_gap_resends_and_delivers_what_changed(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2], next;
    uarc_subscription *s = setup_two(&p, &r, &cfg, pub);
    lose_message_2(&p, &r, pub, &next);
    assert_true(r.gap_resend[0]); /* asked before the gap was told */
    uint32_t rid = pop_resend(&p, SUB_ID);
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    reply_call(&p, rid, UARC_Good);
    assert_false(uarc_subscription_resend_pending(s));
    assert_true(peer_silent(&p));
    /* The resent values: item 1 as delivered in 3 (dropped), item 2 changed in the lost 2. */
    reply_two(&p, next, 4, 12, 3000, 21, 2000, NULL, 0);
    assert_int_equal(r.count, 4);
    assert_int_equal(r.value[3], 21);
    assert_int_equal(r.seq[3], 4);
    pop_publish(&p, NULL, NULL);
    /* A later gap, once that call was answered, asks again. */
    uint32_t available[] = {6};
    reply_two(&p, next2, 6, 13, 6000, -1, 0, available, 1);
    assert_int_equal(r.gaps, 2);
    pop_resend(&p, SUB_ID);
    uarc_client_delete(p.client);
}

static void test_one_resend_in_flight(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2], next;
    setup_two(&p, &r, &cfg, pub);
    lose_message_2(&p, &r, pub, &next);
    uint32_t rid = pop_resend(&p, SUB_ID);
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    /* 4 lost too while the call is unanswered: a gap, no second call. */
    uint32_t available[] = {5};
    reply_two(&p, next, 5, 15, 5000, -1, 0, available, 1);
    assert_int_equal(r.gaps, 2);
    uint32_t next3 = pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    reply_call(&p, rid, UARC_Good);
    assert_true(peer_silent(&p));
    /* Answered: the next gap asks again. */
    uint32_t available2[] = {7};
    reply_two(&p, next2, 7, 17, 7000, -1, 0, available2, 1);
    assert_int_equal(r.gaps, 3);
    pop_resend(&p, SUB_ID);
    (void)next3;
    uarc_client_delete(p.client);
}

/* A server without the method is asked once per session: `fault` true fails the Call as a
 * whole, else its result says `status`. */
static void unsupported(uarc_status status, bool fault)
{
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2], next;
    setup_two(&p, &r, &cfg, pub);
    lose_message_2(&p, &r, pub, &next);
    uint32_t rid = pop_resend(&p, SUB_ID);
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    if (fault)
        peer_fault(&p, rid, status);
    else
        reply_call(&p, rid, status);
    uint32_t available[] = {5};
    reply_two(&p, next, 5, 15, 5000, 25, 5000, available, 1);
    assert_int_equal(r.gaps, 2);
    /* Delivery went on; no second call. */
    assert_int_equal(r.count, 5);
    assert_int_equal(r.value[4], 25);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    (void)next2;
    uarc_client_delete(p.client);
}

static void test_server_without_the_method_not_asked_again(void **state)
{
    (void)state;
    unsupported(UARC_BadMethodInvalid, false);
    unsupported(UARC_BadUserAccessDenied, false);
    unsupported(UARC_BadServiceUnsupported, true);
}

static void test_option_off_no_call(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    cfg.no_resend_after_gap = true;
    uint32_t pub[2], next;
    setup_two(&p, &r, &cfg, pub);
    lose_message_2(&p, &r, pub, &next);
    assert_false(r.gap_resend[0]);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    uarc_client_delete(p.client);
}

static void test_recreation_gap_no_call(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    pop_publish(&p, NULL, NULL);
    /* Stalled; the probe finds the subscription gone: a gap to 0, then only the creation. */
    p.now += 3000;
    assert_int_equal(uarc_client_tick(p.client, p.now), UARC_Good);
    uint32_t seq;
    peer_fault(&p, pop_republish(&p, &seq), UARC_BadSubscriptionIdInvalid);
    assert_int_equal(r.gaps, 1);
    assert_int_equal(r.gap_to[0], 0);
    assert_int_equal(r.gap_reason[0], UARC_BadSubscriptionIdInvalid);
    assert_false(r.gap_resend[0]);
    reply_create(&p, 88);
    assert_int_equal(reply_items(&p, 88), 1);
    assert_true(peer_silent(&p));
    uarc_client_delete(p.client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap_resends_and_delivers_what_changed),
        cmocka_unit_test(test_one_resend_in_flight),
        cmocka_unit_test(test_server_without_the_method_not_asked_again),
        cmocka_unit_test(test_option_off_no_call),
        cmocka_unit_test(test_recreation_gap_no_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
