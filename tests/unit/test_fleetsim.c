/*
 * fleetsim's protocol state, driven as a client would drive it: requests encoded with the public
 * codec, fed as bytes with an injected time, and the bytes it queues decoded back. No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#define T0 1700000000000LL /* an arbitrary start, in Unix milliseconds */

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(sim_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    assert_true(sim_buf_append(b, x, 4));
}

static void put_string(sim_buf *b, const char *s)
{
    if (!s) {
        put_u32(b, 0xFFFFFFFFu);
        return;
    }
    put_u32(b, (uint32_t)strlen(s));
    assert_true(sim_buf_append(b, s, strlen(s)));
}

static void patch_size(sim_buf *b)
{
    uint32_t n = (uint32_t)b->length;
    uint8_t x[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    memcpy(b->data + 4, x, 4);
}

/* A test client: the connection under test and what the client knows of its channel. */
typedef struct client {
    sim_server server;
    sim_config config;
    sim_stats stats;
    sim_conn conn;
    uint32_t channel;
    uint32_t token;
    uint32_t request_id;
    uarc_nodeid auth;
} client;

static void append_body(sim_buf *b, const void *value, const uarc_type *type)
{
    uarc_nodeid id = uarc_nodeid_numeric(0, type->binary_encoding_id);
    uint8_t *body;
    size_t length;
    assert_int_equal(uarc_encode_alloc(&id, UARC_T(NodeId), &body, &length), UARC_Good);
    assert_true(sim_buf_append(b, body, length));
    uarc_free(body);
    assert_int_equal(uarc_encode_alloc(value, type, &body, &length), UARC_Good);
    assert_true(sim_buf_append(b, body, length));
    uarc_free(body);
}

static bool feed(client *c, sim_buf *b, int64_t now)
{
    bool ok = sim_conn_receive(&c->conn, b->data, b->length, now);
    sim_buf_free(b);
    return ok;
}

static void hel(client *c, uint32_t receive_buffer)
{
    sim_buf b = {0};
    assert_true(sim_buf_append(&b, "HELF\0\0\0\0", 8));
    put_u32(&b, 0);
    put_u32(&b, receive_buffer);
    put_u32(&b, 65536);
    put_u32(&b, 0);
    put_u32(&b, 0);
    put_string(&b, c->server.endpoint);
    patch_size(&b);
    assert_true(feed(c, &b, T0));
}

static bool opn(client *c, uarc_SecurityTokenRequestType type, uint32_t lifetime, int64_t now)
{
    sim_buf b = {0};
    assert_true(sim_buf_append(&b, "OPNF\0\0\0\0", 8));
    put_u32(&b, c->channel);
    put_string(&b, "http://opcfoundation.org/UA/SecurityPolicy#None");
    put_string(&b, NULL);
    put_string(&b, NULL);
    put_u32(&b, 1);
    put_u32(&b, ++c->request_id);
    uarc_OpenSecureChannelRequest r;
    uarc_init(&r, UARC_T(OpenSecureChannelRequest));
    r.requestType = type;
    r.securityMode = UARC_MessageSecurityMode_None;
    r.requestedLifetime = lifetime;
    append_body(&b, &r, UARC_T(OpenSecureChannelRequest));
    patch_size(&b);
    return feed(c, &b, now);
}

/* Sends a request (a struct of `type`, its header's token set here). */
static bool send_request(client *c, void *request, const uarc_type *type, int64_t now)
{
    uarc_RequestHeader *h = request;
    uarc_clear(&h->authenticationToken, UARC_T(NodeId));
    assert_int_equal(uarc_copy(&c->auth, &h->authenticationToken, UARC_T(NodeId)), UARC_Good);
    h->requestHandle = c->request_id + 1;
    sim_buf b = {0};
    assert_true(sim_buf_append(&b, "MSGF\0\0\0\0", 8));
    put_u32(&b, c->channel);
    put_u32(&b, c->token);
    put_u32(&b, c->request_id + 10);
    put_u32(&b, ++c->request_id);
    append_body(&b, request, type);
    patch_size(&b);
    uarc_clear(request, type);
    return feed(c, &b, now);
}

/* Takes the first queued message: its 4 type bytes and the whole message, copied. */
static size_t take(client *c, char type[5], uint8_t **message)
{
    sim_buf *out = &c->conn.out;
    assert_true(out->length >= 8);
    size_t size = u32(out->data + 4);
    assert_true(out->length >= size);
    memcpy(type, out->data, 4);
    type[4] = '\0';
    *message = malloc(size);
    memcpy(*message, out->data, size);
    sim_buf_consume(out, size);
    return size;
}

/* Takes one response (reassembling chunks) and decodes it as `type` into `out`. */
static void response(client *c, const uarc_type *type, void *out)
{
    sim_buf body = {0};
    char kind[5];
    uint8_t *msg;
    size_t size;
    do {
        size = take(c, kind, &msg);
        assert_memory_equal(kind, "MSG", 3);
        assert_int_equal(u32(msg + 8), c->channel);
        assert_true(sim_buf_append(&body, msg + 24, size - 24));
        free(msg);
    } while (kind[3] == 'C');
    assert_int_equal(kind[3], 'F');
    size_t offset = 0;
    uarc_nodeid id;
    assert_int_equal(uarc_decode(body.data, body.length, &offset, &id, UARC_T(NodeId), NULL),
                     UARC_Good);
    const uarc_type *got = uarc_type_by_encoding_id(id.identifier.numeric);
    if (got == UARC_T(ServiceFault) && type != got) {
        uarc_ServiceFault fault;
        assert_int_equal(
            uarc_decode(body.data, body.length, &offset, &fault, UARC_T(ServiceFault), NULL),
            UARC_Good);
        fail_msg("%s answered with a ServiceFault: %s", type->name,
                 uarc_status_name(fault.responseHeader.serviceResult));
    }
    assert_ptr_equal(got, type);
    assert_int_equal(uarc_decode(body.data, body.length, &offset, out, type, NULL), UARC_Good);
    assert_int_equal(offset, body.length);
    sim_buf_free(&body);
}

static uarc_status fault_status(client *c)
{
    uarc_ServiceFault fault;
    response(c, UARC_T(ServiceFault), &fault);
    uarc_status s = fault.responseHeader.serviceResult;
    uarc_clear(&fault, UARC_T(ServiceFault));
    return s;
}

/* ERR queued last: its status. */
static uarc_status err_status(client *c)
{
    char kind[5];
    uint8_t *msg;
    take(c, kind, &msg);
    assert_string_equal(kind, "ERRF");
    uarc_status s = u32(msg + 8);
    free(msg);
    return s;
}

static void client_init(client *c, double rate, uint32_t items)
{
    memset(c, 0, sizeof *c);
    c->config = (sim_config){.items = items, .rate_hz = rate, .stats = &c->stats};
    sim_server_init(&c->server, &c->config, 7, T0);
}

/* A new connection of the same server: RHE, HEL/ACK, OPN. */
static void connect_channel(client *c, int64_t now)
{
    sim_conn_start(&c->conn, &c->server, now);
    char kind[5];
    uint8_t *msg;
    take(c, kind, &msg);
    free(msg);
    hel(c, 65536);
    take(c, kind, &msg);
    free(msg);
    c->channel = 0;
    assert_true(opn(c, UARC_SecurityTokenRequestType_Issue, 60000, now));
    take(c, kind, &msg);
    assert_string_equal(kind, "OPNF");
    c->channel = u32(msg + 8);
    c->token = 1;
    free(msg);
}

static void activate(client *c, int64_t now, uarc_status expected)
{
    uarc_ActivateSessionRequest a;
    uarc_init(&a, UARC_T(ActivateSessionRequest));
    assert_true(send_request(c, &a, UARC_T(ActivateSessionRequest), now));
    if (expected != UARC_Good) {
        assert_int_equal(fault_status(c), expected);
        return;
    }
    uarc_ActivateSessionResponse r;
    response(c, UARC_T(ActivateSessionResponse), &r);
    assert_int_equal(r.serverNonce.length, 32);
    uarc_clear(&r, UARC_T(ActivateSessionResponse));
}

static void open_session(client *c, int64_t now)
{
    connect_channel(c, now);
    uarc_CreateSessionRequest q;
    uarc_init(&q, UARC_T(CreateSessionRequest));
    q.requestedSessionTimeout = 30000;
    assert_true(send_request(c, &q, UARC_T(CreateSessionRequest), now));
    uarc_CreateSessionResponse r;
    response(c, UARC_T(CreateSessionResponse), &r);
    assert_int_equal(r.revisedSessionTimeout, 30000);
    assert_int_equal(r.serverEndpointsSize, 1);
    assert_true(
        uarc_string_equal_cstr(&r.serverEndpoints[0].server.applicationUri, "urn:fleetsim:7"));
    uarc_clear(&c->auth, UARC_T(NodeId));
    c->auth = r.authenticationToken;
    r.authenticationToken = (uarc_nodeid){0};
    uarc_clear(&r, UARC_T(CreateSessionResponse));
    activate(c, now, UARC_Good);
}

static void client_clear(client *c)
{
    sim_conn_closed(&c->conn);
    sim_server_clear(&c->server);
    uarc_clear(&c->auth, UARC_T(NodeId));
}

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

static uint32_t subscribe(client *c, int64_t now, uint32_t keepalive)
{
    uarc_CreateSubscriptionRequest q;
    uarc_init(&q, UARC_T(CreateSubscriptionRequest));
    q.requestedPublishingInterval = 100;
    q.requestedMaxKeepAliveCount = keepalive;
    q.publishingEnabled = true;
    assert_true(send_request(c, &q, UARC_T(CreateSubscriptionRequest), now));
    uarc_CreateSubscriptionResponse r;
    response(c, UARC_T(CreateSubscriptionResponse), &r);
    assert_int_equal(r.revisedPublishingInterval, 100);
    uint32_t id = r.subscriptionId;

    uarc_CreateMonitoredItemsRequest m;
    uarc_init(&m, UARC_T(CreateMonitoredItemsRequest));
    m.subscriptionId = id;
    m.itemsToCreate = calloc(2, sizeof *m.itemsToCreate);
    m.itemsToCreateSize = 2;
    m.itemsToCreate[0].itemToMonitor.nodeId = uarc_nodeid_string(1, "Counter");
    m.itemsToCreate[0].itemToMonitor.attributeId = UARC_ATTRIBUTEID_Value;
    m.itemsToCreate[0].monitoringMode = UARC_MonitoringMode_Reporting;
    m.itemsToCreate[0].requestedParameters.clientHandle = 42;
    m.itemsToCreate[0].requestedParameters.queueSize = 20;
    m.itemsToCreate[1].itemToMonitor.nodeId = uarc_nodeid_string(1, "Nothing");
    m.itemsToCreate[1].itemToMonitor.attributeId = UARC_ATTRIBUTEID_Value;
    assert_true(send_request(c, &m, UARC_T(CreateMonitoredItemsRequest), now));
    uarc_CreateMonitoredItemsResponse mr;
    response(c, UARC_T(CreateMonitoredItemsResponse), &mr);
    assert_int_equal(mr.results[0].statusCode, UARC_Good);
    assert_int_equal(mr.results[0].revisedQueueSize, 20);
    assert_int_equal(mr.results[1].statusCode, UARC_BadNodeIdUnknown);
    uarc_clear(&mr, UARC_T(CreateMonitoredItemsResponse));
    return id;
}

static void publish(client *c, int64_t now, uint32_t subscription, uint32_t ack)
{
    uarc_PublishRequest q;
    uarc_init(&q, UARC_T(PublishRequest));
    if (ack) {
        q.subscriptionAcknowledgements = uarc_new(UARC_T(SubscriptionAcknowledgement));
        q.subscriptionAcknowledgementsSize = 1;
        q.subscriptionAcknowledgements[0].subscriptionId = subscription;
        q.subscriptionAcknowledgements[0].sequenceNumber = ack;
    }
    assert_true(send_request(c, &q, UARC_T(PublishRequest), now));
}

/* The counter values of a PublishResponse, in order; returns how many. */
static size_t values(const uarc_NotificationMessage *m, uint32_t *out, size_t max)
{
    if (m->notificationDataSize == 0)
        return 0;
    const uarc_extension_object *o = &m->notificationData[0];
    assert_ptr_equal(o->content.decoded.type, UARC_T(DataChangeNotification));
    const uarc_DataChangeNotification *d = o->content.decoded.data;
    assert_true(d->monitoredItemsSize <= max);
    for (size_t i = 0; i < d->monitoredItemsSize; i++) {
        assert_int_equal(d->monitoredItems[i].clientHandle, 42);
        out[i] = *(uint32_t *)d->monitoredItems[i].value.value.data;
    }
    return d->monitoredItemsSize;
}

/* Asks for message `sequence` of `subscription` again. */
static void republish(client *c, int64_t now, uint32_t subscription, uint32_t sequence)
{
    uarc_RepublishRequest q;
    uarc_init(&q, UARC_T(RepublishRequest));
    q.subscriptionId = subscription;
    q.retransmitSequenceNumber = sequence;
    assert_true(send_request(c, &q, UARC_T(RepublishRequest), now));
}

/* Takes the Republish response: the counter values of its message (values()). */
static size_t republished(client *c, uint32_t *out, size_t max)
{
    uarc_RepublishResponse r;
    response(c, UARC_T(RepublishResponse), &r);
    size_t n = values(&r.notificationMessage, out, max);
    uarc_clear(&r, UARC_T(RepublishResponse));
    return n;
}

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
