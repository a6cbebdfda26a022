/*
 * libFuzzer target for fleetsim's server side (tools/fleetsim): what a client sends it.
 *
 * The first byte picks the mode. Even: the rest goes as raw bytes to a fresh connection in one
 * call, and byte by byte to another (of another server with the same start), and both must end
 * the same way; with bit 1 set the servers also offer Basic256Sha256 (their own certificates of
 * one key made once), so OPN chunks naming it go through the secured header and chunk code. Odd:
 * the target opens a channel and an activated session itself, then reads the rest as requests: one
 * byte choosing the service, two bytes of length, that many bytes of body after a valid
 * RequestHeader, each sent in a MSG chunk of the channel; the simulated time moves 50 ms between
 * requests. Besides "no crash, no leak", it checks that a connection that ended for an error (not a
 * CLO) queued an ERR as its last message.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define T0 1700000000000LL

static void require(int condition)
{
    if (!condition)
        abort();
}

static void put_u32(sim_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sim_buf_append(b, x, 4);
}

static void patch_size(sim_buf *b)
{
    uint32_t n = (uint32_t)b->length;
    uint8_t x[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    memcpy(b->data + 4, x, 4);
}

static void encode(sim_buf *b, const void *value, const uarc_type *type)
{
    uint8_t *bytes;
    size_t length;
    require(uarc_encode_alloc(value, type, &bytes, &length) == UARC_Good);
    sim_buf_append(b, bytes, length);
    uarc_free(bytes);
}

/* A MSG chunk on the channel of `conn` carrying the type id of `type` and then `body`. */
static bool send_msg(sim_conn *conn, const uarc_type *type, const sim_buf *body, uint32_t id,
                     int64_t now)
{
    sim_buf b = {0};
    sim_buf_append(&b, "MSGF\0\0\0\0", 8);
    put_u32(&b, conn->channel_id);
    put_u32(&b, conn->token_id);
    put_u32(&b, id);
    put_u32(&b, id);
    uarc_nodeid node = uarc_nodeid_numeric(0, type->binary_encoding_id);
    encode(&b, &node, UARC_T(NodeId));
    sim_buf_append(&b, body->data, body->length);
    patch_size(&b);
    bool ok = sim_conn_receive(conn, b.data, b.length, now);
    sim_buf_free(&b);
    return ok;
}

/* The last message queued by a connection that ended for an error is an ERR. */
static void ends_with_err(const sim_conn *conn)
{
    const sim_buf *out = &conn->out;
    if (conn->end_status == UARC_Good)
        return; /* CLO */
    size_t at = 0, last = SIZE_MAX;
    while (out->length - at >= 8) {
        uint32_t size = (uint32_t)out->data[at + 4] | (uint32_t)out->data[at + 5] << 8 |
                        (uint32_t)out->data[at + 6] << 16 | (uint32_t)out->data[at + 7] << 24;
        require(size >= 8 && size <= out->length - at);
        last = at;
        at += size;
    }
    require(last != SIZE_MAX && memcmp(out->data + last, "ERRF", 4) == 0);
}

static void raw(const sim_config *config, const uint8_t *data, size_t size)
{
    sim_server one, other;
    sim_conn whole, bytewise;
    require(sim_server_init(&one, config, 1, T0));
    require(sim_server_init(&other, config, 1, T0));
    sim_conn_start(&whole, &one, T0);
    sim_conn_start(&bytewise, &other, T0);
    bool a = sim_conn_receive(&whole, data, size, T0);
    bool b = true;
    for (size_t i = 0; i < size && b; i++)
        b = sim_conn_receive(&bytewise, data + i, 1, T0);
    require(a == b);
    if (!a) {
        ends_with_err(&whole);
        ends_with_err(&bytewise);
    }
    sim_conn_closed(&whole);
    sim_conn_closed(&bytewise);
    sim_server_clear(&one);
    sim_server_clear(&other);
}

/* HEL, OPN, CreateSession, ActivateSession; returns the session's token. */
static uarc_nodeid handshake(sim_conn *conn, int64_t now)
{
    static const uint8_t hel[] = {'H', 'E', 'L', 'F', 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
                                  0,   0,   1,   0,   0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    require(sim_conn_receive(conn, hel, sizeof hel, now));
    sim_buf b = {0};
    sim_buf_append(&b, "OPNF\0\0\0\0", 8);
    put_u32(&b, 0);
    uarc_string policy = uarc_string_from("http://opcfoundation.org/UA/SecurityPolicy#None");
    encode(&b, &policy, UARC_T(String));
    uarc_clear(&policy, UARC_T(String));
    put_u32(&b, 0xFFFFFFFFu);
    put_u32(&b, 0xFFFFFFFFu);
    put_u32(&b, 1);
    put_u32(&b, 1);
    uarc_nodeid id = uarc_nodeid_numeric(0, UARC_T(OpenSecureChannelRequest)->binary_encoding_id);
    encode(&b, &id, UARC_T(NodeId));
    uarc_OpenSecureChannelRequest opn;
    uarc_init(&opn, UARC_T(OpenSecureChannelRequest));
    opn.requestedLifetime = 600000;
    encode(&b, &opn, UARC_T(OpenSecureChannelRequest));
    patch_size(&b);
    require(sim_conn_receive(conn, b.data, b.length, now));
    sim_buf_free(&b);

    uarc_CreateSessionRequest create;
    uarc_init(&create, UARC_T(CreateSessionRequest));
    encode(&b, &create, UARC_T(CreateSessionRequest));
    require(send_msg(conn, UARC_T(CreateSessionRequest), &b, 2, now));
    sim_buf_free(&b);
    uarc_nodeid token = uarc_nodeid_numeric(1, conn->server->sessions->token);
    uarc_ActivateSessionRequest activate;
    uarc_init(&activate, UARC_T(ActivateSessionRequest));
    activate.requestHeader.authenticationToken = token;
    encode(&b, &activate, UARC_T(ActivateSessionRequest));
    require(send_msg(conn, UARC_T(ActivateSessionRequest), &b, 3, now));
    sim_buf_free(&b);
    require(conn->server->sessions->activated);
    return token;
}

static void services(const sim_config *config, const uint8_t *data, size_t size)
{
    static const uarc_type *const types[] = {
        UARC_T(ReadRequest),
        UARC_T(BrowseRequest),
        UARC_T(CreateSubscriptionRequest),
        UARC_T(ModifySubscriptionRequest),
        UARC_T(DeleteSubscriptionsRequest),
        UARC_T(SetPublishingModeRequest),
        UARC_T(CreateMonitoredItemsRequest),
        UARC_T(DeleteMonitoredItemsRequest),
        UARC_T(SetMonitoringModeRequest),
        UARC_T(PublishRequest),
        UARC_T(RepublishRequest),
        UARC_T(TransferSubscriptionsRequest),
        UARC_T(CloseSessionRequest),
        UARC_T(GetEndpointsRequest),
        UARC_T(CreateSessionRequest),
        UARC_T(ActivateSessionRequest),
        UARC_T(WriteRequest),
    };
    sim_server server;
    sim_conn conn;
    sim_server_init(&server, config, 1, T0);
    sim_conn_start(&conn, &server, T0);
    int64_t now = T0;
    uarc_nodeid token = handshake(&conn, now);
    uarc_RequestHeader header;
    uarc_init(&header, UARC_T(RequestHeader));
    header.authenticationToken = token;
    bool open = true;
    for (uint32_t id = 10; open && size >= 3; id++) {
        const uarc_type *type = types[data[0] % (sizeof types / sizeof types[0])];
        size_t n = (size_t)data[1] | (size_t)data[2] << 8;
        data += 3;
        size -= 3;
        if (n > size)
            n = size;
        sim_buf body = {0};
        header.requestHandle = id;
        encode(&body, &header, UARC_T(RequestHeader));
        sim_buf_append(&body, data, n);
        data += n;
        size -= n;
        now += 50;
        open = send_msg(&conn, type, &body, id, now) && sim_conn_tick(&conn, now);
        sim_buf_free(&body);
        sim_subscriptions_tick(&server, now);
        if (conn.out.length > (1u << 20))
            sim_buf_free(&conn.out);
    }
    if (!open)
        ends_with_err(&conn);
    sim_conn_closed(&conn);
    sim_server_clear(&server);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sim_stats stats;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sim_config config = {.items = 3, .rate_hz = 20, .stats = &stats};
    static sim_config secured = {.items = 3, .rate_hz = 20, .stats = &stats};
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        services(&config, data + 1, size - 1);
    } else if (data[0] & 2) {
        if (!secured.security) {
            secured.security =
                sim_security_new("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256");
            require(secured.security != NULL);
        }
        raw(&secured, data + 1, size - 1);
    } else {
        raw(&config, data + 1, size - 1);
    }
    return 0;
}
