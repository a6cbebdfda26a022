/*
 * Subscriptions in byte mode against a scripted server: the publish pipeline, ordering by
 * sequence number (wrap, duplicates, keep-alives), Republish of holes, gaps, acknowledgements,
 * and recovery across a lost connection. The clock is the test's; nothing sleeps.
 */
#include "subscription_peer.h"

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
    pop_resend(&p, SUB_ID); /* the values changed inside the gap (test_subscription_resend.c) */
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

/* Answers the one PublishRequest out (`*rid`) with message `seq` and pops the one sent in its
 * place; the pipeline stays at one. */
static void publish_one(byte_peer *p, uint32_t *rid, uint32_t seq)
{
    reply_publish(p, *rid, SUB_ID, seq, (int32_t)seq, NULL, 0);
    *rid = pop_publish(p, NULL, NULL);
    assert_true(peer_silent(p));
}

/* The throttle is not for ever: after good responses one more PublishRequest is tried, up to the
 * cap; a new refusal lowers it again and doubles the wait before the next try. */
static void test_publish_throttle_rises_again(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    uarc_subscription_set_publish_cap(p.client, 2);
    /* The server holds one: the pipeline drops to one. */
    peer_fault(&p, pub[0], UARC_BadTooManyPublishRequests);
    assert_true(peer_silent(&p));
    uint32_t rid = pub[1], seq = 1;
    publish_one(&p, &rid, seq++); /* 1 good response: the wait is 2 x 1 */
    /* The second brings the pipeline back to the cap: two go out in place of one. */
    reply_publish(&p, rid, SUB_ID, seq, (int32_t)seq, NULL, 0);
    seq++;
    uint32_t a = pop_publish(&p, NULL, NULL), b = pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    /* Still held: refused again (the oldest), back to one; the wait doubles to 4. Delivery did
     * not stop: the other request still waits on the server. */
    peer_fault(&p, a, UARC_BadTooManyPublishRequests);
    assert_true(peer_silent(&p));
    rid = b;
    for (int i = 0; i < 3; i++)
        publish_one(&p, &rid, seq++);
    reply_publish(&p, rid, SUB_ID, seq, (int32_t)seq, NULL, 0);
    pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    assert_int_equal(r.count, seq);
    assert_int_equal(r.gaps, 0);
    uarc_client_delete(p.client);
}

/* A session with the default spare (refilled to the cap) and one subscription of one item,
 * created; the five PublishRequests it sends at once are in out[0..4]. The item's NodeId is for
 * the caller to clear. */
static void open_at_cap(byte_peer *p, recorder *r, uarc_monitored_item_params *item,
                        uint32_t out[5])
{
    uarc_subscription_config cfg = config_for(r);
    uarc_client_config ccfg = {.request_timeout_ms = 2000, .keepalive_interval_ms = 60000};
    peer_open(p, &ccfg); /* not sub_peer_open(): the default spare */
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p->client, &cfg, &s), UARC_Good);
    *item = (uarc_monitored_item_params){.node = uarc_nodeid_numeric(1, 7)};
    assert_int_equal(uarc_subscription_add_item(s, item, NULL), UARC_Good);
    reply_create(p, SUB_ID);
    reply_limits(p, UARC_Good, 0);
    for (int i = 0; i < 5; i++) /* one subscription wants two: filled to the cap */
        out[i] = pop_publish(p, NULL, NULL);
    assert_int_equal(reply_items(p, SUB_ID), 1);
    assert_true(peer_silent(p));
}

/* A refill to the cap sends five PublishRequests at once; a server that holds one refuses four
 * of them, one after another. That is one refusal, not four: the throttle falls to one, and one
 * more is tried after 2 x 1 good responses (not after a wait doubled three times). */
static void test_publish_refusals_of_one_refill_count_once(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_monitored_item_params item;
    uint32_t out[5];
    open_at_cap(&p, &r, &item, out);
    for (int i = 0; i < 4; i++) {
        peer_fault(&p, out[i], UARC_BadTooManyPublishRequests);
        assert_true(peer_silent(&p));
    }
    uint32_t rid = out[4], seq = 1;
    publish_one(&p, &rid, seq++); /* one good response of the two */
    reply_publish(&p, rid, SUB_ID, seq, (int32_t)seq, NULL, 0);
    pop_publish(&p, NULL, NULL); /* the second: two are tried */
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    assert_int_equal(r.count, seq);
    assert_int_equal(r.gaps, 0);
    uarc_clear(&item.node, UARC_T(NodeId));
    uarc_client_delete(p.client);
}

/* A server with more notifications than one message holds says so (moreNotifications): the
 * pipeline goes to the cap (5) so that the rest comes without a round trip per message, and
 * back to one per subscription and one more once the backlog is out. */
static void test_backlog_fills_the_pipeline(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    uint32_t out[8];
    size_t first = 0, count = 0;
    out[count++] = pub[1];
    publish_more = true;
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    for (int i = 0; i < 4; i++) /* one was still out: four more make five */
        out[count++] = pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    reply_publish(&p, out[first++], SUB_ID, 2, 2, NULL, 0);
    out[count++] = pop_publish(&p, NULL, NULL); /* back to five */
    assert_true(peer_silent(&p));
    /* The backlog is out: the five requests still there are used up before one is sent again. */
    publish_more = false;
    reply_publish(&p, out[first++], SUB_ID, 3, 3, NULL, 0);
    assert_true(peer_silent(&p));
    reply_publish(&p, out[first++], SUB_ID, 4, 4, NULL, 0);
    reply_publish(&p, out[first++], SUB_ID, 5, 5, NULL, 0);
    assert_true(peer_silent(&p)); /* two out */
    reply_publish(&p, out[first++], SUB_ID, 6, 6, NULL, 0);
    out[count++] = pop_publish(&p, NULL, NULL); /* one left: refilled to two */
    assert_true(peer_silent(&p));
    assert_int_equal(count - first, 2);
    assert_int_equal(r.count, 6);
    assert_int_equal(r.seq[5], 6);
    assert_int_equal(r.gaps, 0);
    uarc_client_delete(p.client);
}

/* By default a refill tops the pipeline up to the cap: one steady subscription (two wanted, cap
 * 5) gets four PublishRequests every fourth response, in one write, and never has fewer than
 * one out. A spare of 1 gets a pair every second response; never beyond the cap. */
static void test_publish_spare(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_monitored_item_params item;
    uint32_t out[32];
    open_at_cap(&p, &r, &item, out);
    size_t first = 0, count = 5;
    uint32_t seq = 1;
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 3; k++) {
            reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
            seq++;
            assert_true(peer_silent(&p)); /* four, three, two still out: not below two */
        }
        reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
        seq++;
        for (int k = 0; k < 4; k++) /* one out: back to five */
            out[count++] = pop_publish(&p, NULL, NULL);
        assert_true(peer_silent(&p));
    }
    /* A spare of 1: refilled to three when it falls below two. */
    uarc_subscription_set_publish_spare(p.client, 1);
    for (int k = 0; k < 3; k++) {
        reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
        seq++;
        assert_true(peer_silent(&p)); /* four, three, two */
    }
    for (int round = 0; round < 2; round++) {
        reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
        seq++;
        out[count++] = pop_publish(&p, NULL, NULL); /* one out: a pair goes */
        out[count++] = pop_publish(&p, NULL, NULL);
        assert_true(peer_silent(&p));
        reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
        seq++;
        assert_true(peer_silent(&p)); /* two still out: as many as wanted */
    }
    /* Within the cap: at two, a refill brings it to two, one at a time. */
    uarc_subscription_set_publish_cap(p.client, 2);
    reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
    seq++;
    out[count++] = pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    reply_publish(&p, out[first++], SUB_ID, seq, (int32_t)seq, NULL, 0);
    seq++;
    out[count++] = pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p));
    assert_int_equal(count - first, 2);
    assert_int_equal(r.count, seq - 1);
    assert_int_equal(r.gaps, 0);
    uarc_clear(&item.node, UARC_T(NodeId));
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
    peer_reconnect(&p);
    peer_resume_session(&p);
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
    peer_reconnect(&p);
    peer_replace_session(&p, 90);
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

/* The last value of an item is kept in place when its type stays the same: what is kept must
 * still be the value and timestamp delivered last. */
static void test_repeat_judged_by_the_value_kept_in_place(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    message_timestamp = 1000;
    reply_publish(&p, pub[0], SUB_ID, 1, 7, NULL, 0); /* the first value: a copy is made */
    uint32_t next = pop_publish(&p, NULL, NULL);
    message_timestamp = 2000;
    reply_publish(&p, pub[1], SUB_ID, 2, 8, NULL, 0); /* kept in the first one's place */
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    reply_publish(&p, next, SUB_ID, 3, 8, NULL, 0); /* the same again: dropped */
    uint32_t next3 = pop_publish(&p, NULL, NULL);
    reply_publish(&p, next2, SUB_ID, 4, 9, NULL, 0); /* another value, same time: delivered */
    reply_publish(&p, next3, SUB_ID, 5, 7, NULL, 0); /* the first value again, later: delivered */
    message_timestamp = 0;
    assert_int_equal(r.count, 4);
    assert_int_equal(r.value[1], 8);
    assert_int_equal(r.seq[2], 4);
    assert_int_equal(r.value[2], 9);
    assert_int_equal(r.seq[3], 5);
    uarc_client_delete(p.client);
}

/* A plain scalar is kept inside the item, whose array moves when items are added: the value
 * kept must be found again there (under ASan or valgrind a stale place is an error too). */
static void test_repeat_judged_after_the_items_moved(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    uarc_subscription *s = setup(&p, &r, &cfg, pub);
    message_timestamp = 1000;
    reply_publish(&p, pub[0], SUB_ID, 1, 7, NULL, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    for (int i = 0; i < 8; i++) { /* the room for 8 items grows, and moves */
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, 100 + (uint32_t)i)};
        assert_int_equal(uarc_subscription_add_item(s, &item, NULL), UARC_Good);
    }
    size_t created = 0;
    while (created < 8) /* one batch at a time */
        created += reply_items(&p, SUB_ID);
    reply_publish(&p, pub[1], SUB_ID, 2, 7, NULL, 0); /* the same again: dropped */
    uint32_t next2 = pop_publish(&p, NULL, NULL);
    reply_publish(&p, next, SUB_ID, 3, 9, NULL, 0); /* another value, same time: delivered */
    message_timestamp = 0;
    reply_publish(&p, next2, SUB_ID, 4, 9, NULL, 0);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.seq[0], 1);
    assert_int_equal(r.seq[1], 3);
    assert_int_equal(r.value[1], 9);
    assert_int_equal(r.seq[2], 4);
    uarc_client_delete(p.client);
}

/* Answers Publish `rid` with message `seq`: item 1 changed to the string `text` (NULL: a bad
 * status and no value), at message_timestamp. */
static void reply_publish_text(byte_peer *p, uint32_t rid, uint32_t seq, const char *text)
{
    uarc_DataChangeNotification dcn;
    uarc_MonitoredItemNotification mn;
    uarc_extension_object e;
    int32_t boxed;
    uarc_PublishResponse r;
    uarc_init(&r, UARC_T(PublishResponse));
    r.subscriptionId = SUB_ID;
    make_message(&r.notificationMessage, seq, 0, &dcn, &mn, &e, &boxed);
    uarc_string str = uarc_string_from(text ? text : "");
    mn.value.has_value = text != NULL;
    mn.value.value.type = text ? UARC_T(String) : NULL;
    mn.value.value.data = text ? &str : NULL;
    mn.value.has_status = text == NULL;
    mn.value.status = text ? UARC_Good : UARC_BadNodeIdUnknown;
    peer_reply(p, rid, &r, UARC_T(PublishResponse));
    uarc_clear(&str, UARC_T(String));
}

/* A value that is not a plain scalar is kept whole on the heap: a string or a status without a
 * value is judged a repeat by all of it, and what was kept is freed when a scalar follows
 * (valgrind and ASan tell a leak or a stale read). */
static void test_repeat_of_a_value_kept_on_the_heap(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    message_timestamp = 1000;
    uint32_t rid[8] = {pub[0], pub[1]};
    size_t out = 2, seq = 1;
    reply_publish_text(&p, rid[seq - 1], (uint32_t)seq, "alpha"); /* delivered */
    rid[out++] = pop_publish(&p, NULL, NULL), seq++;
    reply_publish_text(&p, rid[seq - 1], (uint32_t)seq, "alpha"); /* the same again: dropped */
    rid[out++] = pop_publish(&p, NULL, NULL), seq++;
    reply_publish_text(&p, rid[seq - 1], (uint32_t)seq, "beta"); /* another, same time */
    rid[out++] = pop_publish(&p, NULL, NULL), seq++;
    reply_publish_text(&p, rid[seq - 1], (uint32_t)seq, NULL); /* a bad status: delivered */
    rid[out++] = pop_publish(&p, NULL, NULL), seq++;
    reply_publish_text(&p, rid[seq - 1], (uint32_t)seq, NULL); /* again: dropped */
    rid[out++] = pop_publish(&p, NULL, NULL), seq++;
    reply_publish(&p, rid[seq - 1], SUB_ID, (uint32_t)seq, 5, NULL, 0); /* a scalar after it */
    rid[out++] = pop_publish(&p, NULL, NULL), seq++;
    reply_publish(&p, rid[seq - 1], SUB_ID, (uint32_t)seq, 5, NULL, 0); /* again: dropped */
    message_timestamp = 0;
    assert_int_equal(r.count, 4);
    assert_int_equal(r.seq[0], 1);
    assert_int_equal(r.seq[1], 3);
    assert_int_equal(r.seq[2], 4);
    assert_int_equal(r.value[2], -1);
    assert_int_equal(r.seq[3], 6);
    assert_int_equal(r.value[3], 5);
    uarc_client_delete(p.client);
}

static void test_far_keepalive_is_one_gap(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    cfg.no_resend_after_gap = true; /* only the gaps here */
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

static void test_half_way_sequence_is_not_ahead(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    reply_publish(&p, pub[0], SUB_ID, 1, 1, NULL, 0);
    uint32_t next = pop_publish(&p, NULL, NULL);
    /* 2^31 after the message delivered: as much before it as after it. Not taken as ahead (it
     * would be delivered after a gap, out of order with 1), dropped as an old number. */
    uint32_t available[] = {2, 0x80000001u};
    reply_publish(&p, pub[1], SUB_ID, 0x80000001u, 2, available, 2);
    pop_publish(&p, NULL, NULL);
    assert_true(peer_silent(&p)); /* no Republish: nothing is missing */
    assert_int_equal(r.count, 1);
    assert_int_equal(r.gaps, 0);
    reply_publish(&p, next, SUB_ID, 2, 3, NULL, 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.seq[1], 2);
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
        cmocka_unit_test(test_publish_throttle_rises_again),
        cmocka_unit_test(test_publish_refusals_of_one_refill_count_once),
        cmocka_unit_test(test_backlog_fills_the_pipeline),
        cmocka_unit_test(test_publish_spare),
        cmocka_unit_test(test_deferred_ack),
        cmocka_unit_test(test_resume_republishes_until_not_available),
        cmocka_unit_test(test_new_session_transfer_fails_then_recreate_with_gap),
        cmocka_unit_test(test_new_session_transfer_succeeds),
        cmocka_unit_test(test_stalled_on_the_given_clock),
        cmocka_unit_test(test_stalled_and_lost_is_recreated),
        cmocka_unit_test(test_delete_from_own_callback),
        cmocka_unit_test(test_same_value_again_dropped),
        cmocka_unit_test(test_repeat_judged_by_the_value_kept_in_place),
        cmocka_unit_test(test_repeat_judged_after_the_items_moved),
        cmocka_unit_test(test_repeat_of_a_value_kept_on_the_heap),
        cmocka_unit_test(test_far_keepalive_is_one_gap),
        cmocka_unit_test(test_half_way_sequence_is_not_ahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
