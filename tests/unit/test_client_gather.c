/*
 * uarc_client_gather_ms(), in byte mode against a scripted server: how long a client's incoming
 * data may wait unread. -1 when nothing is expected, 0 while anything but a steady subscription
 * waits (a handshake, a request other than Publish, a subscription being made, a message half
 * read), else 1/20 of the shortest publishing interval, at most 50 ms.
 */
#include "subscription_peer.h"

/* Answers the CreateSubscription the client sent next with `interval` ms. */
static void reply_create_every(byte_peer *p, uint32_t id, double interval)
{
    answer_create_every(p, peer_pop_request(p, UARC_T(CreateSubscriptionRequest), NULL), id,
                        interval);
}

static void on_response(void *user_data, uarc_status status, void *response)
{
    (void)response;
    *(uarc_status *)user_data = status;
}

static void test_nothing_expected(void **state)
{
    (void)state;
    byte_peer p;
    peer_new(&p, &(uarc_client_config){0});
    assert_int_equal(uarc_client_gather_ms(p.client), -1); /* not connected */
    assert_int_equal(uarc_client_start_bytes(p.client, "opc.tcp://server:4840", p.now), UARC_Good);
    assert_int_equal(uarc_client_gather_ms(p.client), 0); /* HEL out, ACK awaited */
    uarc_client_delete(p.client);
    peer_open(&p, &(uarc_client_config){.keepalive_interval_ms = 60000});
    assert_int_equal(uarc_client_gather_ms(p.client), -1); /* a session, no subscription */
    uarc_client_delete(p.client);
}

/* A live subscription publishing every 100 ms: 5 ms. A Read in flight: 0 until it is answered. */
static void test_a_twentieth_of_the_interval_unless_a_request_waits(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    assert_int_equal(uarc_client_gather_ms(p.client), (int)(INTERVAL_MS / 20));

    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(1, 7), .attributeId = 13};
    uarc_ReadRequest read;
    uarc_init(&read, UARC_T(ReadRequest));
    read.nodesToReadSize = 1;
    read.nodesToRead = &node;
    uarc_status answered = UARC_BadInternalError;
    assert_int_equal(uarc_client_send(p.client, &read, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                      on_response, &answered, NULL),
                     UARC_Good);
    assert_int_equal(uarc_client_gather_ms(p.client), 0);
    uint32_t rid = peer_pop_request(&p, UARC_T(ReadRequest), NULL);
    uarc_ReadResponse rr;
    uarc_init(&rr, UARC_T(ReadResponse));
    peer_reply(&p, rid, &rr, UARC_T(ReadResponse));
    assert_int_equal(answered, UARC_Good);
    assert_int_equal(uarc_client_gather_ms(p.client), (int)(INTERVAL_MS / 20));
    uarc_client_delete(p.client);
}

/* The shortest interval of the live subscriptions counts, at most 50 ms; a subscription being
 * made holds it at 0; none left: -1. */
static void test_shortest_interval_capped(void **state)
{
    (void)state;
    byte_peer p;
    peer_open(&p, &(uarc_client_config){.keepalive_interval_ms = 60000});
    uarc_subscription_set_publish_spare(p.client, 0);
    uarc_subscription_config cfg = {.publishing_interval_ms = 5000};
    uarc_subscription *slow, *fast;
    assert_int_equal(uarc_subscription_new(p.client, &cfg, &slow), UARC_Good);
    assert_int_equal(uarc_client_gather_ms(p.client), 0); /* CreateSubscription in flight */
    reply_create_every(&p, 21, 5000);
    pop_publish(&p, NULL, NULL);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(uarc_client_gather_ms(p.client), 50); /* 250 ms, capped */
    cfg.publishing_interval_ms = 600;
    assert_int_equal(uarc_subscription_new(p.client, &cfg, &fast), UARC_Good);
    assert_int_equal(uarc_client_gather_ms(p.client), 0);
    reply_create_every(&p, 22, 600);
    pop_publish(&p, NULL, NULL);
    assert_int_equal(uarc_client_gather_ms(p.client), 30);
    uarc_subscription_delete(fast);
    uint32_t rid = peer_pop_request(&p, UARC_T(DeleteSubscriptionsRequest), NULL);
    uarc_DeleteSubscriptionsResponse dr;
    uarc_init(&dr, UARC_T(DeleteSubscriptionsResponse));
    uarc_status good = UARC_Good;
    dr.resultsSize = 1;
    dr.results = &good;
    assert_int_equal(uarc_client_gather_ms(p.client), 0); /* the deletion in flight */
    peer_reply(&p, rid, &dr, UARC_T(DeleteSubscriptionsResponse));
    assert_int_equal(uarc_client_gather_ms(p.client), 50);
    uarc_client_delete(p.client);
}

/* A subscription the server refused waits for nothing (it is made again with the next
 * session): it does not hold the answer at 0. */
static void test_failed_subscription_expects_nothing(void **state)
{
    (void)state;
    byte_peer p;
    peer_open(&p, &(uarc_client_config){.keepalive_interval_ms = 60000});
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(p.client, &(uarc_subscription_config){0}, &s),
                     UARC_Good);
    assert_int_equal(uarc_client_gather_ms(p.client), 0);
    peer_fault(&p, peer_pop_request(&p, UARC_T(CreateSubscriptionRequest), NULL),
               UARC_BadTooManySubscriptions);
    assert_int_equal(uarc_subscription_state_get(s), UARC_SUBSCRIPTION_FAILED);
    assert_int_equal(uarc_client_gather_ms(p.client), -1);
    uarc_client_delete(p.client);
}

/* A PublishResponse that has partly arrived: 0 until the rest is there. */
static void test_half_read_message(void **state)
{
    (void)state;
    byte_peer p;
    recorder r;
    uarc_subscription_config cfg = config_for(&r);
    uint32_t pub[2];
    setup(&p, &r, &cfg, pub);
    uarc_NotificationMessage m;
    uarc_DataChangeNotification dcn;
    uarc_MonitoredItemNotification mn;
    uarc_extension_object e;
    int32_t boxed;
    make_message(&m, 1, 42, &dcn, &mn, &e, &boxed);
    uarc_PublishResponse pr;
    uarc_init(&pr, UARC_T(PublishResponse));
    pr.subscriptionId = SUB_ID;
    pr.notificationMessage = m;
    static fake_frame f;
    frame_msg_response(&f, PEER_CHANNEL_ID, PEER_TOKEN_ID, p.sequence++, pub[0], &pr,
                       UARC_T(PublishResponse));
    size_t half = f.length / 2;
    assert_int_equal(uarc_client_receive_bytes(p.client, f.bytes, half, p.now), UARC_Good);
    assert_int_equal(r.count, 0);
    assert_int_equal(uarc_client_gather_ms(p.client), 0);
    assert_int_equal(uarc_client_receive_bytes(p.client, f.bytes + half, f.length - half, p.now),
                     UARC_Good);
    assert_int_equal(r.count, 1);
    pop_publish(&p, NULL, NULL); /* the pipeline refilled */
    assert_int_equal(uarc_client_gather_ms(p.client), (int)(INTERVAL_MS / 20));
    uarc_client_delete(p.client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_expected),
        cmocka_unit_test(test_a_twentieth_of_the_interval_unless_a_request_waits),
        cmocka_unit_test(test_shortest_interval_capped),
        cmocka_unit_test(test_failed_subscription_expects_nothing),
        cmocka_unit_test(test_half_read_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
