/*
 * A test client of fleetsim's protocol state (test_fleetsim*.c): requests encoded with the public
 * codec and fed as bytes with an injected time, the bytes fleetsim queues decoded back, and the
 * steps every test takes (HEL, OPN, a session, a subscription of the counter).
 */
#ifndef UARC_TEST_FLEETSIM_PEER_H
#define UARC_TEST_FLEETSIM_PEER_H

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

static inline uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_u32(sim_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    assert_true(sim_buf_append(b, x, 4));
}

static inline void put_string(sim_buf *b, const char *s)
{
    if (!s) {
        put_u32(b, 0xFFFFFFFFu);
        return;
    }
    put_u32(b, (uint32_t)strlen(s));
    assert_true(sim_buf_append(b, s, strlen(s)));
}

static inline void patch_size(sim_buf *b)
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

static inline void append_body(sim_buf *b, const void *value, const uarc_type *type)
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

static inline bool feed(client *c, sim_buf *b, int64_t now)
{
    bool ok = sim_conn_receive(&c->conn, b->data, b->length, now);
    sim_buf_free(b);
    return ok;
}

static inline void hel(client *c, uint32_t receive_buffer)
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

static inline bool opn(client *c, uarc_SecurityTokenRequestType type, uint32_t lifetime,
                       int64_t now)
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
static inline bool send_request(client *c, void *request, const uarc_type *type, int64_t now)
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
static inline size_t take(client *c, char type[5], uint8_t **message)
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
static inline void response(client *c, const uarc_type *type, void *out)
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

static inline uarc_status fault_status(client *c)
{
    uarc_ServiceFault fault;
    response(c, UARC_T(ServiceFault), &fault);
    uarc_status s = fault.responseHeader.serviceResult;
    uarc_clear(&fault, UARC_T(ServiceFault));
    return s;
}

/* ERR queued last: its status. */
static inline uarc_status err_status(client *c)
{
    char kind[5];
    uint8_t *msg;
    take(c, kind, &msg);
    assert_string_equal(kind, "ERRF");
    uarc_status s = u32(msg + 8);
    free(msg);
    return s;
}

static inline void client_init(client *c, double rate, uint32_t items)
{
    memset(c, 0, sizeof *c);
    c->config = (sim_config){.items = items, .rate_hz = rate, .stats = &c->stats};
    sim_server_init(&c->server, &c->config, 7, T0);
}

/* A new connection of the same server: RHE, HEL/ACK, OPN. */
static inline void connect_channel(client *c, int64_t now)
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

static inline void activate(client *c, int64_t now, uarc_status expected)
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

static inline void open_session(client *c, int64_t now)
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

static inline void client_clear(client *c)
{
    sim_conn_closed(&c->conn);
    sim_server_clear(&c->server);
    uarc_clear(&c->auth, UARC_T(NodeId));
}

/* ---- subscriptions ------------------------------------------------------------------------ */

static inline uint32_t subscribe(client *c, int64_t now, uint32_t keepalive)
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

static inline void publish(client *c, int64_t now, uint32_t subscription, uint32_t ack)
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
static inline size_t values(const uarc_NotificationMessage *m, uint32_t *out, size_t max)
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
static inline void republish(client *c, int64_t now, uint32_t subscription, uint32_t sequence)
{
    uarc_RepublishRequest q;
    uarc_init(&q, UARC_T(RepublishRequest));
    q.subscriptionId = subscription;
    q.retransmitSequenceNumber = sequence;
    assert_true(send_request(c, &q, UARC_T(RepublishRequest), now));
}

/* Takes the Republish response: the counter values of its message (values()). */
static inline size_t republished(client *c, uint32_t *out, size_t max)
{
    uarc_RepublishResponse r;
    response(c, UARC_T(RepublishResponse), &r);
    size_t n = values(&r.notificationMessage, out, max);
    uarc_clear(&r, UARC_T(RepublishResponse));
    return n;
}

#endif
