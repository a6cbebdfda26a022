/*
 * fleetsim's protocol state, driven as a client would drive it: requests encoded with the public
 * codec, fed as bytes with an injected time, and the bytes it queues decoded back. No sockets.
 */
#include "fleetsim_peer.h"

/* ---- UA-TCP and the secure channel -------------------------------------------------------- */

static void test_rhe_hel_ack(void **state)
{
    (void)state;
    client c;
    client_init(&c, 1, 3);
    sim_conn_start(&c.conn, &c.server, T0);
    char kind[5];
    uint8_t *msg;
    size_t size = take(&c, kind, &msg);
    assert_string_equal(kind, "RHEF");
    assert_int_equal(u32(msg + 8), strlen("urn:fleetsim:7"));
    assert_memory_equal(msg + 12, "urn:fleetsim:7", 14);
    assert_int_equal(size, 8 + 4 + 14 + 4 + strlen("opc.tcp://localhost:4840/fleetsim/7"));
    free(msg);
    hel(&c, 8192);
    size = take(&c, kind, &msg);
    assert_string_equal(kind, "ACKF");
    assert_int_equal(size, 28);
    assert_int_equal(u32(msg + 16), 8192); /* our SendBufferSize follows the client's receive */
    assert_int_equal(u32(msg + 24), 1);    /* one chunk per request */
    free(msg);
    client_clear(&c);
}

static void test_opn_issue_renew_and_expiry(void **state)
{
    (void)state;
    client c;
    client_init(&c, 1, 3);
    connect_channel(&c, T0);
    assert_int_not_equal(c.channel, 0);
    /* Renew: token 2; the old one stays good until the client uses the new one. */
    assert_true(opn(&c, UARC_SecurityTokenRequestType_Renew, 20000, T0 + 1000));
    char kind[5];
    uint8_t *msg;
    size_t size = take(&c, kind, &msg);
    assert_string_equal(kind, "OPNF");
    size_t offset = 8 + 4 + 4 + strlen("http://opcfoundation.org/UA/SecurityPolicy#None") + 8 + 8;
    uarc_nodeid id;
    assert_int_equal(uarc_decode(msg, size, &offset, &id, UARC_T(NodeId), NULL), UARC_Good);
    uarc_OpenSecureChannelResponse r;
    assert_int_equal(uarc_decode(msg, size, &offset, &r, UARC_T(OpenSecureChannelResponse), NULL),
                     UARC_Good);
    assert_int_equal(r.securityToken.tokenId, 2);
    assert_int_equal(r.securityToken.channelId, c.channel);
    assert_int_equal(r.securityToken.revisedLifetime, 20000);
    free(msg);
    uarc_ReadRequest q;
    uarc_init(&q, UARC_T(ReadRequest));
    assert_true(send_request(&c, &q, UARC_T(ReadRequest), T0 + 1000)); /* token 1 still good */
    assert_int_equal(fault_status(&c), UARC_BadSessionIdInvalid);
    c.token = 2;
    uarc_init(&q, UARC_T(ReadRequest));
    assert_true(send_request(&c, &q, UARC_T(ReadRequest), T0 + 1000));
    assert_int_equal(fault_status(&c), UARC_BadSessionIdInvalid);
    c.token = 1; /* now gone */
    uarc_init(&q, UARC_T(ReadRequest));
    assert_false(send_request(&c, &q, UARC_T(ReadRequest), T0 + 1000));
    assert_int_equal(err_status(&c), UARC_BadSecureChannelTokenUnknown);
    client_clear(&c);

    /* A token not renewed within 125 % of its lifetime ends the channel. */
    client_init(&c, 1, 3);
    connect_channel(&c, T0);
    assert_true(sim_conn_tick(&c.conn, T0 + 74999));
    assert_false(sim_conn_tick(&c.conn, T0 + 75000));
    assert_int_equal(err_status(&c), UARC_BadSecureChannelTokenUnknown);
    client_clear(&c);
}

static void test_bad_input_ends_with_err(void **state)
{
    (void)state;
    client c;
    client_init(&c, 1, 3);
    sim_conn_start(&c.conn, &c.server, T0);
    sim_buf_free(&c.conn.out);
    /* MSG before HEL/OPN */
    sim_buf b = {0};
    assert_true(sim_buf_append(&b, "MSGF\x18\0\0\0", 8));
    put_u32(&b, 1);
    put_u32(&b, 1);
    put_u32(&b, 1);
    put_u32(&b, 1);
    assert_false(feed(&c, &b, T0));
    assert_int_equal(err_status(&c), UARC_BadSecureChannelIdInvalid);
    assert_false(sim_conn_receive(&c.conn, (const uint8_t *)"x", 1, T0)); /* stays closed */
    client_clear(&c);

    static const struct {
        const char *bytes;
        uarc_status status;
    } cases[] = {
        {"XYZF\x08\0\0\0", UARC_BadTcpMessageTypeInvalid},
        {"HELF\x04\0\0\0", UARC_BadDecodingError},
        {"HELF\x01\x00\x02\x00", UARC_BadTcpMessageTooLarge},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client_init(&c, 1, 3);
        sim_conn_start(&c.conn, &c.server, T0);
        sim_buf_free(&c.conn.out);
        /* Byte by byte: nothing happens before the header is complete. */
        for (size_t k = 0; k < 7; k++)
            assert_true(sim_conn_receive(&c.conn, (const uint8_t *)cases[i].bytes + k, 1, T0));
        assert_int_equal(c.conn.out.length, 0);
        assert_false(sim_conn_receive(&c.conn, (const uint8_t *)cases[i].bytes + 7, 1, T0));
        assert_int_equal(err_status(&c), cases[i].status);
        client_clear(&c);
    }
}

/* ---- session, Read, Browse ---------------------------------------------------------------- */

static void read_one(client *c, uarc_nodeid node, uint32_t attribute, int64_t now,
                     uarc_data_value *out)
{
    uarc_ReadRequest q;
    uarc_init(&q, UARC_T(ReadRequest));
    q.nodesToRead = uarc_new(UARC_T(ReadValueId));
    q.nodesToReadSize = 1;
    q.nodesToRead[0].nodeId = node;
    q.nodesToRead[0].attributeId = attribute;
    assert_true(send_request(c, &q, UARC_T(ReadRequest), now));
    uarc_ReadResponse r;
    response(c, UARC_T(ReadResponse), &r);
    assert_int_equal(r.resultsSize, 1);
    *out = r.results[0];
    memset(&r.results[0], 0, sizeof r.results[0]);
    uarc_clear(&r, UARC_T(ReadResponse));
}

static void test_session_read_browse(void **state)
{
    (void)state;
    client c;
    client_init(&c, 2, 5);
    connect_channel(&c, T0);
    /* No session yet. */
    uarc_data_value v;
    uarc_ReadRequest q;
    uarc_init(&q, UARC_T(ReadRequest));
    assert_true(send_request(&c, &q, UARC_T(ReadRequest), T0));
    assert_int_equal(fault_status(&c), UARC_BadSessionIdInvalid);
    sim_conn_closed(&c.conn);
    open_session(&c, T0);

    /* 2 Hz: 1.5 s after the start the counter changed 3 times. */
    read_one(&c, uarc_nodeid_string(1, "Counter"), UARC_ATTRIBUTEID_Value, T0 + 1500, &v);
    assert_ptr_equal(v.value.type, UARC_T(UInt32));
    assert_int_equal(*(uint32_t *)v.value.data, 3);
    assert_true(v.source_timestamp == sim_datetime(T0 + 1500));
    uarc_clear(&v, UARC_T(DataValue));
    read_one(&c, uarc_nodeid_numeric(1, 1004), UARC_ATTRIBUTEID_Value, T0 + 1500, &v);
    assert_ptr_equal(v.value.type, UARC_T(Double));
    assert_true(*(double *)v.value.data == 3.004);
    uarc_clear(&v, UARC_T(DataValue));
    read_one(&c, uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime),
             UARC_ATTRIBUTEID_Value, T0 + 1234, &v);
    assert_true(*(uarc_datetime *)v.value.data == sim_datetime(T0 + 1234));
    uarc_clear(&v, UARC_T(DataValue));
    read_one(&c, uarc_nodeid_numeric(0, UARC_NS0ID_Server_NamespaceArray), UARC_ATTRIBUTEID_Value,
             T0, &v);
    assert_ptr_equal(v.value.type, UARC_T(String));
    assert_int_equal(v.value.array_length, 2);
    assert_true(uarc_string_equal_cstr(&((uarc_string *)v.value.data)[1], "urn:fleetsim:7"));
    uarc_clear(&v, UARC_T(DataValue));
    read_one(&c, uarc_nodeid_numeric(1, 1005), UARC_ATTRIBUTEID_Value, T0, &v);
    assert_int_equal(v.status, UARC_BadNodeIdUnknown);
    uarc_clear(&v, UARC_T(DataValue));
    read_one(&c, uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder), UARC_ATTRIBUTEID_Value, T0, &v);
    assert_int_equal(v.status, UARC_BadAttributeIdInvalid);
    uarc_clear(&v, UARC_T(DataValue));
    read_one(&c, uarc_nodeid_numeric(1, 1002), UARC_ATTRIBUTEID_BrowseName, T0, &v);
    assert_true(uarc_string_equal_cstr(&((uarc_qualified_name *)v.value.data)->name, "Item2"));
    uarc_clear(&v, UARC_T(DataValue));

    uarc_BrowseRequest b;
    uarc_init(&b, UARC_T(BrowseRequest));
    b.nodesToBrowse = uarc_new(UARC_T(BrowseDescription));
    b.nodesToBrowseSize = 1;
    b.nodesToBrowse[0].nodeId = uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder);
    b.nodesToBrowse[0].referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences);
    assert_true(send_request(&c, &b, UARC_T(BrowseRequest), T0));
    uarc_BrowseResponse br;
    response(&c, UARC_T(BrowseResponse), &br);
    assert_int_equal(br.results[0].referencesSize, 2 + 5); /* Server, Counter, 5 items */
    uarc_clear(&br, UARC_T(BrowseResponse));

    uarc_CloseSessionRequest close;
    uarc_init(&close, UARC_T(CloseSessionRequest));
    assert_true(send_request(&c, &close, UARC_T(CloseSessionRequest), T0));
    uarc_CloseSessionResponse cr;
    response(&c, UARC_T(CloseSessionResponse), &cr);
    assert_null(c.server.sessions);
    client_clear(&c);
}

/* A response bigger than the client's receive buffer comes in several chunks. */
static void test_large_response_is_chunked(void **state)
{
    (void)state;
    client c;
    client_init(&c, 1, 1000);
    sim_conn_start(&c.conn, &c.server, T0);
    sim_buf_free(&c.conn.out);
    hel(&c, 8192);
    sim_buf_free(&c.conn.out);
    c.channel = 0;
    assert_true(opn(&c, UARC_SecurityTokenRequestType_Issue, 60000, T0));
    c.channel = u32(c.conn.out.data + 8);
    c.token = 1;
    sim_buf_consume(&c.conn.out, u32(c.conn.out.data + 4));
    uarc_CreateSessionRequest q;
    uarc_init(&q, UARC_T(CreateSessionRequest));
    assert_true(send_request(&c, &q, UARC_T(CreateSessionRequest), T0));
    uarc_CreateSessionResponse r;
    response(&c, UARC_T(CreateSessionResponse), &r);
    c.auth = r.authenticationToken;
    r.authenticationToken = (uarc_nodeid){0};
    uarc_clear(&r, UARC_T(CreateSessionResponse));
    activate(&c, T0, UARC_Good);
    uarc_BrowseRequest b;
    uarc_init(&b, UARC_T(BrowseRequest));
    b.nodesToBrowse = uarc_new(UARC_T(BrowseDescription));
    b.nodesToBrowseSize = 1;
    b.nodesToBrowse[0].nodeId = uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder);
    assert_true(send_request(&c, &b, UARC_T(BrowseRequest), T0));
    assert_true(c.conn.out.length > 3 * 8192);
    assert_memory_equal(c.conn.out.data, "MSGC", 4);
    assert_true(u32(c.conn.out.data + 4) <= 8192);
    uarc_BrowseResponse br;
    response(&c, UARC_T(BrowseResponse), &br);
    assert_int_equal(br.results[0].referencesSize, 1002);
    uarc_clear(&br, UARC_T(BrowseResponse));
    client_clear(&c);
}

/* ---- subscriptions ------------------------------------------------------------------------ */

static void test_publish_every_change_once_then_keepalive(void **state)
{
    (void)state;
    client c;
    client_init(&c, 10, 0);
    open_session(&c, T0);
    uint32_t sub = subscribe(&c, T0, 3);
    publish(&c, T0, sub, 0);
    assert_int_equal(c.conn.out.length, 0); /* waits for the first cycle */
    sim_subscriptions_tick(&c.server, T0 + 100);
    uarc_PublishResponse r;
    response(&c, UARC_T(PublishResponse), &r);
    uint32_t v[32];
    assert_int_equal(values(&r.notificationMessage, v, 32), 1); /* the initial value */
    assert_int_equal(v[0], 1);
    assert_int_equal(r.notificationMessage.sequenceNumber, 1);
    uarc_clear(&r, UARC_T(PublishResponse));

    /* No Publish request for a second: the ten changes wait, then come in one message. */
    for (int64_t t = T0 + 200; t <= T0 + 1100; t += 100)
        sim_subscriptions_tick(&c.server, t);
    assert_int_equal(c.conn.out.length, 0);
    publish(&c, T0 + 1150, sub, 1);
    response(&c, UARC_T(PublishResponse), &r);
    assert_int_equal(values(&r.notificationMessage, v, 32), 10);
    for (uint32_t i = 0; i < 10; i++)
        assert_int_equal(v[i], 2 + i);
    assert_int_equal(r.notificationMessage.sequenceNumber, 2);
    assert_int_equal(r.resultsSize, 1);
    assert_int_equal(r.results[0], UARC_Good); /* seq 1 acknowledged */
    assert_int_equal(c.stats.acknowledged, 1); /* its one value */
    assert_int_equal(r.availableSequenceNumbersSize, 1);
    assert_int_equal(r.availableSequenceNumbers[0], 2);
    uarc_clear(&r, UARC_T(PublishResponse));

    /* Republish: 2 is kept, 1 was acknowledged. */
    republish(&c, T0 + 1150, sub, 2);
    assert_int_equal(republished(&c, v, 32), 10);
    assert_int_equal(v[9], 11);
    republish(&c, T0 + 1150, sub, 1);
    assert_int_equal(fault_status(&c), UARC_BadMessageNotAvailable);
    client_clear(&c);

    /* Rate 0: nothing changes; a keep-alive after 3 empty cycles, with the next number. */
    client_init(&c, 0, 0);
    open_session(&c, T0);
    sub = subscribe(&c, T0, 3);
    publish(&c, T0, sub, 0);
    publish(&c, T0, sub, 0);
    sim_subscriptions_tick(&c.server, T0 + 100);
    response(&c, UARC_T(PublishResponse), &r); /* initial value */
    assert_int_equal(values(&r.notificationMessage, v, 32), 1);
    uarc_clear(&r, UARC_T(PublishResponse));
    sim_subscriptions_tick(&c.server, T0 + 200);
    sim_subscriptions_tick(&c.server, T0 + 300);
    assert_int_equal(c.conn.out.length, 0);
    sim_subscriptions_tick(&c.server, T0 + 400);
    response(&c, UARC_T(PublishResponse), &r);
    assert_int_equal(r.notificationMessage.notificationDataSize, 0);
    assert_int_equal(r.notificationMessage.sequenceNumber, 2);
    uarc_clear(&r, UARC_T(PublishResponse));
    client_clear(&c);
}

/* The connection ends with a response lost: the session is re-activated on a new channel, the
 * lost message is republished; after a restart the session and subscription are gone. */
static void test_resume_republish_and_restart(void **state)
{
    (void)state;
    client c;
    client_init(&c, 10, 0);
    open_session(&c, T0);
    uint32_t sub = subscribe(&c, T0, 3);
    publish(&c, T0, sub, 0);
    sim_subscriptions_tick(&c.server, T0 + 100);
    publish(&c, T0 + 150, sub, 0); /* waits: answered on the next cycle */
    sim_conn_closed(&c.conn);      /* message 1 lost in flight, request 2 gone */
    assert_null(c.server.sessions->conn);
    sim_subscriptions_tick(&c.server, T0 + 200);

    connect_channel(&c, T0 + 300);
    uarc_ReadRequest q;
    uarc_init(&q, UARC_T(ReadRequest));
    assert_true(send_request(&c, &q, UARC_T(ReadRequest), T0 + 300));
    assert_int_equal(fault_status(&c), UARC_BadSessionNotActivated);
    activate(&c, T0 + 300, UARC_Good);
    republish(&c, T0 + 300, sub, 1);
    uint32_t v[32];
    assert_int_equal(republished(&c, v, 32), 1);
    assert_int_equal(v[0], 1);
    publish(&c, T0 + 300, sub, 1);
    uarc_PublishResponse r;
    response(&c, UARC_T(PublishResponse), &r); /* changes 2 and 3 waited */
    assert_int_equal(values(&r.notificationMessage, v, 32), 2);
    assert_int_equal(v[0], 2);
    assert_int_equal(r.notificationMessage.sequenceNumber, 2);
    uarc_clear(&r, UARC_T(PublishResponse));

    /* A second session takes the subscription over. */
    sim_conn_closed(&c.conn);
    uarc_nodeid first = c.auth;
    c.auth = (uarc_nodeid){0};
    open_session(&c, T0 + 400);
    uarc_TransferSubscriptionsRequest tq;
    uarc_init(&tq, UARC_T(TransferSubscriptionsRequest));
    tq.subscriptionIds = malloc(2 * sizeof(uint32_t));
    tq.subscriptionIds[0] = sub;
    tq.subscriptionIds[1] = sub + 1000;
    tq.subscriptionIdsSize = 2;
    tq.sendInitialValues = true;
    assert_true(send_request(&c, &tq, UARC_T(TransferSubscriptionsRequest), T0 + 400));
    uarc_TransferSubscriptionsResponse tr;
    response(&c, UARC_T(TransferSubscriptionsResponse), &tr);
    assert_int_equal(tr.results[0].statusCode, UARC_Good);
    assert_int_equal(tr.results[0].availableSequenceNumbersSize, 1);
    assert_int_equal(tr.results[0].availableSequenceNumbers[0], 2);
    assert_int_equal(tr.results[1].statusCode, UARC_BadSubscriptionIdInvalid);
    uarc_clear(&tr, UARC_T(TransferSubscriptionsResponse));
    assert_int_equal(c.stats.transfers, 1);
    uarc_clear(&first, UARC_T(NodeId));
    /* sendInitialValues: the values queued meanwhile come, the current one last (Part 4
     * 5.14.7.2), none of them dropped for it. */
    publish(&c, T0 + 400, sub, 0);
    sim_subscriptions_tick(&c.server, T0 + 500);
    response(&c, UARC_T(PublishResponse), &r);
    assert_int_equal(values(&r.notificationMessage, v, 32), 2);
    assert_int_equal(v[0], 4);
    assert_int_equal(v[1], 5);
    uarc_clear(&r, UARC_T(PublishResponse));

    /* Restart: the session is unknown on the next channel. */
    sim_conn_closed(&c.conn);
    sim_server_restart(&c.server, T0 + 500);
    assert_null(c.server.sessions);
    connect_channel(&c, T0 + 600);
    activate(&c, T0 + 600, UARC_BadSessionIdInvalid);
    client_clear(&c);
}

/* Chaos: the PublishResponse with the next message is lost with the connection; the message
 * stays for Republish on the next channel. */
static void test_lost_publish_response_is_republished(void **state)
{
    (void)state;
    client c;
    client_init(&c, 10, 0);
    open_session(&c, T0);
    uint32_t sub = subscribe(&c, T0, 3);
    publish(&c, T0, sub, 0);
    c.conn.lose_next_publish = true;
    sim_subscriptions_tick(&c.server, T0 + 100);
    assert_int_equal(c.conn.out.length, 0);
    assert_false(sim_conn_tick(&c.conn, T0 + 100));
    assert_null(c.server.sessions->conn);
    sim_conn_closed(&c.conn);
    connect_channel(&c, T0 + 200);
    activate(&c, T0 + 200, UARC_Good);
    republish(&c, T0 + 200, sub, 1);
    uint32_t v[4];
    assert_int_equal(republished(&c, v, 4), 1);
    assert_int_equal(v[0], 1);
    client_clear(&c);
}

static void test_orphaned_session_expires(void **state)
{
    (void)state;
    client c;
    client_init(&c, 1, 0);
    open_session(&c, T0);
    sim_conn_closed(&c.conn);
    sim_subscriptions_tick(&c.server, T0 + 30000);
    assert_non_null(c.server.sessions);
    sim_subscriptions_tick(&c.server, T0 + 30001);
    assert_null(c.server.sessions);
    client_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rhe_hel_ack),
        cmocka_unit_test(test_opn_issue_renew_and_expiry),
        cmocka_unit_test(test_bad_input_ends_with_err),
        cmocka_unit_test(test_session_read_browse),
        cmocka_unit_test(test_large_response_is_chunked),
        cmocka_unit_test(test_publish_every_change_once_then_keepalive),
        cmocka_unit_test(test_resume_republish_and_restart),
        cmocka_unit_test(test_lost_publish_response_is_republished),
        cmocka_unit_test(test_orphaned_session_expires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
