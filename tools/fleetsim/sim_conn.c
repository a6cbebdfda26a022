/*
 * The server side of UA-TCP: RHE out, HEL → ACK, OPN (issue and renew), MSG and CLO, ERR on
 * anything else. uarc's library is a client, so the server-side framing of SecurityPolicy None is
 * written here; secured chunks go through sim_crypto.c; every structured value goes through the
 * public codec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define HEADER_SIZE     8u
#define SYMMETRIC_SIZE  24u /* header, channel, token, sequence, request id */
#define POLICY_NONE     "http://opcfoundation.org/UA/SecurityPolicy#None"
#define MIN_LIFETIME_MS 10000u
#define MAX_LIFETIME_MS 3600000u

/* Peer input limits: nothing in a request of this small server needs more. */
static const uarc_decode_config decode_limits = {
    .max_string_length = 16384,
    .max_array_length = 10000,
    .max_depth = 16,
    .max_alloc = 4u * 1024 * 1024,
};

/* ---- buffers and small helpers ----------------------------------------------------------- */

bool sim_buf_append(sim_buf *buf, const void *data, size_t length)
{
    if (length > buf->capacity - buf->length) {
        size_t capacity = buf->capacity ? buf->capacity : 512;
        while (capacity - buf->length < length)
            capacity *= 2;
        uint8_t *grown = realloc(buf->data, capacity);
        if (!grown)
            return false;
        buf->data = grown;
        buf->capacity = capacity;
    }
    if (length && data) /* no data: room the caller fills */
        memcpy(buf->data + buf->length, data, length);
    buf->length += length;
    return true;
}

void sim_buf_consume(sim_buf *buf, size_t n)
{
    if (n >= buf->length) {
        buf->length = 0;
    } else {
        memmove(buf->data, buf->data + n, buf->length - n);
        buf->length -= n;
    }
    /* Idle connections of a large fleet should not keep a grown buffer. */
    if (buf->length == 0 && buf->capacity > 4096) {
        sim_buf_free(buf);
    }
}

void sim_buf_free(sim_buf *buf)
{
    free(buf->data);
    *buf = (sim_buf){0};
}

static void put_u32(sim_buf *buf, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sim_buf_append(buf, b, 4);
}

static void put_string(sim_buf *buf, const char *s)
{
    if (!s) {
        put_u32(buf, 0xFFFFFFFFu);
        return;
    }
    put_u32(buf, (uint32_t)strlen(s));
    sim_buf_append(buf, s, strlen(s));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Starts a message of `type` ("ACKF"); returns the offset of its size field for end_message. */
static size_t begin_message(sim_buf *buf, const char type[4])
{
    sim_buf_append(buf, type, 4);
    size_t at = buf->length;
    put_u32(buf, 0);
    return at;
}

static void end_message(sim_buf *buf, size_t size_at)
{
    if (!buf->data || size_at + 4 > buf->length)
        return;
    uint32_t size = (uint32_t)(buf->length - (size_at - 4));
    uint8_t b[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16),
                    (uint8_t)(size >> 24)};
    memcpy(buf->data + size_at, b, 4);
}

uint32_t sim_random(sim_server *server)
{
    uint64_t x = server->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    server->random = x;
    return (uint32_t)(x >> 16);
}

uarc_datetime sim_datetime(int64_t ms)
{
    return UARC_DATETIME_UNIX_EPOCH + ms * 10000;
}

/* ---- servers ------------------------------------------------------------------------------ */

bool sim_server_init(sim_server *server, const sim_config *config, uint32_t index, int64_t now_ms)
{
    memset(server, 0, sizeof *server);
    server->config = config;
    server->index = index;
    snprintf(server->uri, sizeof server->uri, "%s%u",
             config->uri_prefix ? config->uri_prefix : "urn:fleetsim:", (unsigned)index);
    snprintf(server->endpoint, sizeof server->endpoint, "%s/%u",
             config->endpoint ? config->endpoint : "opc.tcp://localhost:4840/fleetsim",
             (unsigned)index);
    server->random = 0x9E3779B97F4A7C15ull ^ ((uint64_t)index << 20) ^ (uint64_t)now_ms;
    server->started_ms = now_ms;
    server->next_id = 1;
    return sim_identity_make(server);
}

void sim_server_restart(sim_server *server, int64_t now_ms)
{
    while (server->sessions)
        sim_session_delete(server, server->sessions);
    server->started_ms = now_ms;
    /* Ids of a restarted server start again, as they would in a real process. */
    server->next_id = 1;
}

void sim_server_clear(sim_server *server)
{
    while (server->sessions)
        sim_session_delete(server, server->sessions);
    sim_identity_free(server);
}

/* ---- connections -------------------------------------------------------------------------- */

void sim_conn_start(sim_conn *conn, sim_server *server, int64_t now_ms)
{
    (void)now_ms;
    memset(conn, 0, sizeof *conn);
    conn->server = server;
    conn->state = SIM_CONN_HELLO;
    conn->send_sequence = 1;
    conn->peer_receive_buffer = 8192;
    size_t at = begin_message(&conn->out, "RHEF");
    put_string(&conn->out, server->uri);
    put_string(&conn->out, server->endpoint);
    end_message(&conn->out, at);
}

/* Queues ERR and marks the connection to end. Returns false for the caller to pass on. */
static bool fail(sim_conn *conn, uarc_status status, const char *reason)
{
    size_t at = begin_message(&conn->out, "ERRF");
    put_u32(&conn->out, status);
    put_string(&conn->out, reason);
    end_message(&conn->out, at);
    conn->state = SIM_CONN_CLOSED;
    conn->end_status = status;
    snprintf(conn->end_reason, sizeof conn->end_reason, "%s", reason);
    if (conn->server->config->stats)
        conn->server->config->stats->protocol_errors++;
    return false;
}

static bool on_hello(sim_conn *conn, const uint8_t *msg, uint32_t size)
{
    if (conn->state != SIM_CONN_HELLO)
        return fail(conn, UARC_BadTcpMessageTypeInvalid, "HEL on an open connection");
    if (size < HEADER_SIZE + 20 + 4)
        return fail(conn, UARC_BadDecodingError, "HEL too short");
    uint32_t receive = get_u32(msg + 12);
    uint32_t send = get_u32(msg + 16);
    uint32_t max_message = get_u32(msg + 20);
    if (receive < 8192 || send < 8192)
        return fail(conn, UARC_BadTcpNotEnoughResources, "HEL buffers below 8192");
    conn->peer_receive_buffer =
        receive < SIM_RECEIVE_BUFFER_SIZE ? receive : SIM_RECEIVE_BUFFER_SIZE;
    conn->peer_max_message = max_message;
    uint32_t ours = send < SIM_RECEIVE_BUFFER_SIZE ? send : SIM_RECEIVE_BUFFER_SIZE;
    size_t at = begin_message(&conn->out, "ACKF");
    put_u32(&conn->out, 0);
    put_u32(&conn->out, ours);                      /* ReceiveBufferSize */
    put_u32(&conn->out, conn->peer_receive_buffer); /* SendBufferSize */
    put_u32(&conn->out, ours);                      /* MaxMessageSize: one chunk */
    put_u32(&conn->out, 1);                         /* MaxChunkCount */
    end_message(&conn->out, at);
    conn->state = SIM_CONN_ACKED;
    return true;
}

/* Decodes the type NodeId of a message body and returns the type it names (NULL if none). */
static const uarc_type *body_type(const uint8_t *msg, uint32_t size, size_t *offset)
{
    uarc_nodeid id;
    if (uarc_decode(msg, size, offset, &id, UARC_T(NodeId), &decode_limits) != UARC_Good)
        return NULL;
    const uarc_type *type = NULL;
    if (id.namespace_index == 0 && id.identifier_type == UARC_NODEID_NUMERIC)
        type = uarc_type_by_encoding_id(id.identifier.numeric);
    uarc_clear(&id, UARC_T(NodeId));
    return type;
}

/* The plain OPN of SecurityPolicy None: *body points after the sequence header. */
static bool open_plain(sim_conn *conn, const uint8_t *msg, uint32_t size, size_t offset,
                       uint32_t *request_id, const uint8_t **body, size_t *body_length)
{
    uarc_bytestring certificate, thumbprint;
    if (uarc_decode(msg, size, &offset, &certificate, UARC_T(ByteString), &decode_limits) !=
        UARC_Good)
        return fail(conn, UARC_BadDecodingError, "OPN: SenderCertificate");
    uarc_clear(&certificate, UARC_T(ByteString));
    if (uarc_decode(msg, size, &offset, &thumbprint, UARC_T(ByteString), &decode_limits) !=
        UARC_Good)
        return fail(conn, UARC_BadDecodingError, "OPN: ReceiverCertificateThumbprint");
    uarc_clear(&thumbprint, UARC_T(ByteString));
    if (size - offset < 8)
        return fail(conn, UARC_BadDecodingError, "OPN: sequence header");
    *request_id = get_u32(msg + offset + 4);
    *body = msg + offset + 8;
    *body_length = size - offset - 8;
    return true;
}

/* Queues the OPN response: plain for None, else signed and encrypted for the client. */
static bool send_open(sim_conn *conn, uint32_t request_id, uarc_OpenSecureChannelResponse *response)
{
    uint8_t *body;
    size_t length;
    uarc_nodeid id = uarc_nodeid_numeric(0, UARC_T(OpenSecureChannelResponse)->binary_encoding_id);
    uint8_t prefix[8];
    size_t prefix_length = 0;
    if (uarc_encode(&id, UARC_T(NodeId), prefix, sizeof prefix, &prefix_length) != UARC_Good ||
        uarc_encode_alloc(response, UARC_T(OpenSecureChannelResponse), &body, &length) != UARC_Good)
        return fail(conn, UARC_BadOutOfMemory, "OPN: encoding the response");
    bool ok = true;
    if (conn->mode) {
        uint8_t *whole = malloc(prefix_length + length);
        if (whole) {
            memcpy(whole, prefix, prefix_length);
            memcpy(whole + prefix_length, body, length);
        }
        ok = whole && sim_secure_seal(conn, true, 'F', request_id, whole, prefix_length + length);
        free(whole);
    } else {
        size_t at = begin_message(&conn->out, "OPNF");
        put_u32(&conn->out, conn->channel_id);
        put_string(&conn->out, POLICY_NONE);
        put_string(&conn->out, NULL);
        put_string(&conn->out, NULL);
        put_u32(&conn->out, conn->send_sequence++);
        put_u32(&conn->out, request_id);
        sim_buf_append(&conn->out, prefix, prefix_length);
        sim_buf_append(&conn->out, body, length);
        end_message(&conn->out, at);
    }
    uarc_free(body);
    return ok ? true : fail(conn, UARC_BadEncodingError, "OPN: securing the response");
}

static bool on_open(sim_conn *conn, uint8_t *msg, uint32_t size, int64_t now_ms)
{
    if (conn->state == SIM_CONN_HELLO)
        return fail(conn, UARC_BadTcpMessageTypeInvalid, "OPN before HEL");
    if (size < HEADER_SIZE + 4)
        return fail(conn, UARC_BadDecodingError, "OPN: too short");
    uint32_t channel_id = get_u32(msg + 8);
    size_t offset = 12;
    uarc_string policy;
    uarc_status s = uarc_decode(msg, size, &offset, &policy, UARC_T(String), &decode_limits);
    if (s != UARC_Good)
        return fail(conn, UARC_BadDecodingError, "OPN: SecurityPolicyUri");
    bool none = uarc_string_equal_cstr(&policy, POLICY_NONE);
    uarc_clear(&policy, UARC_T(String));
    if (conn->state == SIM_CONN_SECURE && none != !conn->mode)
        return fail(conn, UARC_BadSecurityPolicyRejected, "OPN: renewal with another policy");
    uint32_t request_id;
    const uint8_t *body;
    size_t body_length;
    if (none) {
        if (!open_plain(conn, msg, size, offset, &request_id, &body, &body_length))
            return false;
    } else {
        s = sim_secure_open_asym(conn, msg, size, &request_id, &body, &body_length);
        if (s == UARC_BadSecurityPolicyRejected)
            return fail(conn, s,
                        conn->server->config->security ? "OPN: a policy this server does not offer"
                                                       : "OPN: only SecurityPolicy None");
        if (s != UARC_Good)
            return fail(conn, s, "OPN: the secured chunk does not open");
    }
    offset = 0;
    const uarc_type *type = body_type(body, (uint32_t)body_length, &offset);
    if (type != UARC_T(OpenSecureChannelRequest))
        return fail(conn, UARC_BadDecodingError, "OPN: not an OpenSecureChannelRequest");
    uarc_OpenSecureChannelRequest request;
    if (uarc_decode(body, body_length, &offset, &request, type, &decode_limits) != UARC_Good)
        return fail(conn, UARC_BadDecodingError, "OPN: OpenSecureChannelRequest");
    bool renew = request.requestType == UARC_SecurityTokenRequestType_Renew;
    uint32_t lifetime = request.requestedLifetime;
    uint32_t handle = request.requestHeader.requestHandle;
    if (renew != (conn->state == SIM_CONN_SECURE) || (renew && channel_id != conn->channel_id)) {
        uarc_clear(&request, type);
        return fail(conn, UARC_BadSecureChannelIdInvalid, "OPN: renew of another channel");
    }
    uarc_OpenSecureChannelResponse response;
    uarc_init(&response, UARC_T(OpenSecureChannelResponse));
    if (!none) {
        s = sim_secure_new_token(conn, request.securityMode, &request.clientNonce,
                                 &response.serverNonce);
        if (s != UARC_Good) {
            uarc_clear(&request, type);
            uarc_clear(&response, UARC_T(OpenSecureChannelResponse));
            return fail(conn, s, "OPN: security mode or client nonce refused");
        }
    }
    uarc_clear(&request, type);
    if (!renew) {
        conn->channel_id = conn->server->next_id++ | (conn->server->index << 16);
        conn->token_id = 0;
    }
    conn->previous_token_id = conn->token_id;
    conn->token_id++;
    if (lifetime < MIN_LIFETIME_MS)
        lifetime = MIN_LIFETIME_MS;
    if (lifetime > MAX_LIFETIME_MS)
        lifetime = MAX_LIFETIME_MS;
    conn->token_deadline_ms = now_ms + (int64_t)lifetime * 5 / 4;
    conn->state = SIM_CONN_SECURE;

    response.responseHeader.timestamp = sim_datetime(now_ms);
    response.responseHeader.requestHandle = handle;
    response.serverProtocolVersion = 0;
    response.securityToken.channelId = conn->channel_id;
    response.securityToken.tokenId = conn->token_id;
    response.securityToken.createdAt = sim_datetime(now_ms);
    response.securityToken.revisedLifetime = lifetime;
    bool ok = send_open(conn, request_id, &response);
    uarc_clear(&response, UARC_T(OpenSecureChannelResponse));
    return ok;
}

static bool on_message(sim_conn *conn, uint8_t *msg, uint32_t size, bool close, int64_t now_ms)
{
    if (conn->state != SIM_CONN_SECURE)
        return fail(conn, UARC_BadSecureChannelIdInvalid, "MSG before OPN");
    if (size < SYMMETRIC_SIZE)
        return fail(conn, UARC_BadDecodingError, "MSG too short");
    if (get_u32(msg + 8) != conn->channel_id)
        return fail(conn, UARC_BadSecureChannelIdInvalid, "MSG of another channel");
    uint32_t token = get_u32(msg + 12);
    if (token == conn->token_id) {
        conn->previous_token_id = 0;
    } else if (token != conn->previous_token_id || token == 0) {
        return fail(conn, UARC_BadSecureChannelTokenUnknown, "MSG with an unknown token");
    }
    if (msg[3] == 'A')
        return true; /* an aborted request: nothing to answer */
    if (msg[3] != 'F')
        return fail(conn, UARC_BadTcpMessageTooLarge, "requests must fit one chunk");
    uint32_t request_id = get_u32(msg + 20);
    const uint8_t *body = msg + SYMMETRIC_SIZE;
    size_t length = size - SYMMETRIC_SIZE;
    if (conn->mode) {
        uarc_status s = sim_secure_open_sym(conn, msg, size, token != conn->token_id, &request_id,
                                            &body, &length);
        if (s != UARC_Good)
            return fail(conn, s, "MSG: the secured chunk does not open");
    }
    size_t offset = 0;
    const uarc_type *type = body_type(body, (uint32_t)length, &offset);
    if (close) {
        conn->state = SIM_CONN_CLOSED;
        conn->end_status = UARC_Good;
        snprintf(conn->end_reason, sizeof conn->end_reason, "CLO from client");
        return false;
    }
    /* Every request starts with its RequestHeader: read it alone first, so that a request of a
     * type this server does not decode still gets a ServiceFault with the right handle. */
    size_t header_offset = offset;
    uarc_RequestHeader header;
    if (uarc_decode(body, length, &header_offset, &header, UARC_T(RequestHeader), &decode_limits) !=
        UARC_Good)
        return fail(conn, UARC_BadDecodingError, "MSG: RequestHeader");
    uint32_t handle = header.requestHandle;
    uarc_clear(&header, UARC_T(RequestHeader));
    if (!type || type->kind != UARC_KIND_STRUCT || type->member_count == 0 ||
        type->members[0].type != UARC_T(RequestHeader)) {
        sim_fault(conn, request_id, handle, UARC_BadServiceUnsupported, now_ms);
        return true;
    }
    void *request = malloc(type->size);
    if (!request)
        return fail(conn, UARC_BadOutOfMemory, "MSG: no memory");
    char detail[160] = "";
    uarc_decode_config limits = decode_limits;
    limits.detail = detail;
    limits.detail_size = sizeof detail;
    if (uarc_decode(body, length, &offset, request, type, &limits) != UARC_Good) {
        free(request);
        return fail(conn, UARC_BadDecodingError, detail[0] ? detail : "MSG: request body");
    }
    sim_service(conn, request_id, request, type, now_ms);
    uarc_clear(request, type);
    free(request);
    return true;
}

bool sim_conn_receive(sim_conn *conn, const uint8_t *data, size_t length, int64_t now_ms)
{
    if (conn->state == SIM_CONN_CLOSED)
        return false;
    if (!sim_buf_append(&conn->in, data, length))
        return fail(conn, UARC_BadOutOfMemory, "no memory for input");
    while (conn->in.length >= HEADER_SIZE) {
        uint8_t *msg = conn->in.data; /* secured chunks are opened in place */
        uint32_t size = get_u32(msg + 4);
        if (size < HEADER_SIZE)
            return fail(conn, UARC_BadDecodingError, "message size below its header");
        if (size > SIM_RECEIVE_BUFFER_SIZE)
            return fail(conn, UARC_BadTcpMessageTooLarge, "message above the receive buffer");
        if (conn->in.length < size)
            return true;
        bool ok;
        if (memcmp(msg, "HELF", 4) == 0)
            ok = on_hello(conn, msg, size);
        else if (memcmp(msg, "OPNF", 4) == 0)
            ok = on_open(conn, msg, size, now_ms);
        else if (memcmp(msg, "MSG", 3) == 0 && (msg[3] == 'F' || msg[3] == 'C' || msg[3] == 'A'))
            ok = on_message(conn, msg, size, false, now_ms);
        else if (memcmp(msg, "CLOF", 4) == 0)
            ok = on_message(conn, msg, size, true, now_ms);
        else
            ok = fail(conn, UARC_BadTcpMessageTypeInvalid, "unknown message type");
        if (!ok || conn->state == SIM_CONN_CLOSED)
            return false;
        sim_buf_consume(&conn->in, size);
    }
    return true;
}

bool sim_conn_tick(sim_conn *conn, int64_t now_ms)
{
    if (conn->state == SIM_CONN_CLOSED)
        return false;
    if (conn->state == SIM_CONN_SECURE && now_ms >= conn->token_deadline_ms)
        return fail(conn, UARC_BadSecureChannelTokenUnknown, "security token expired");
    return true;
}

void sim_conn_closed(sim_conn *conn)
{
    if (conn->server) {
        for (sim_session *s = conn->server->sessions; s; s = s->next) {
            if (s->conn == conn)
                sim_session_detached(s);
        }
    }
    sim_secure_closed(conn);
    sim_buf_free(&conn->in);
    sim_buf_free(&conn->out);
}

/* The chunks of a secured response, each as large as the client's receive buffer allows. */
static void send_secured(sim_conn *conn, uint32_t request_id, const uint8_t *prefix,
                         size_t prefix_length, const uint8_t *body, size_t length)
{
    size_t total = prefix_length + length, room = sim_secure_room(conn);
    uint8_t *whole = malloc(total);
    if (!whole || room == 0) {
        free(whole);
        fail(conn, UARC_BadOutOfMemory, "securing a response");
        return;
    }
    memcpy(whole, prefix, prefix_length);
    memcpy(whole + prefix_length, body, length);
    for (size_t done = 0; done < total;) {
        size_t n = total - done < room ? total - done : room;
        if (!sim_secure_seal(conn, false, done + n == total ? 'F' : 'C', request_id, whole + done,
                             n)) {
            fail(conn, UARC_BadEncodingError, "securing a response");
            break;
        }
        done += n;
    }
    free(whole);
}

void sim_conn_send(sim_conn *conn, uint32_t request_id, void *response, const uarc_type *type)
{
    uarc_nodeid id = uarc_nodeid_numeric(0, type->binary_encoding_id);
    uint8_t prefix[8];
    size_t prefix_length = 0;
    uint8_t *body = NULL;
    size_t length = 0;
    if (uarc_encode(&id, UARC_T(NodeId), prefix, sizeof prefix, &prefix_length) != UARC_Good ||
        uarc_encode_alloc(response, type, &body, &length) != UARC_Good) {
        fail(conn, UARC_BadEncodingError, "encoding a response");
        return;
    }
    size_t total = prefix_length + length;
    if (conn->peer_max_message && total > conn->peer_max_message) {
        uarc_free(body);
        uint32_t handle = ((uarc_ResponseHeader *)response)->requestHandle;
        sim_fault(conn, request_id, handle, UARC_BadResponseTooLarge, 0);
        return;
    }
    if (conn->mode) {
        send_secured(conn, request_id, prefix, prefix_length, body, length);
        uarc_free(body);
        return;
    }
    size_t room = conn->peer_receive_buffer - SYMMETRIC_SIZE;
    size_t done = 0;
    do {
        size_t n = total - done < room ? total - done : room;
        size_t at = begin_message(&conn->out, done + n == total ? "MSGF" : "MSGC");
        put_u32(&conn->out, conn->channel_id);
        put_u32(&conn->out, conn->token_id);
        put_u32(&conn->out, conn->send_sequence++);
        put_u32(&conn->out, request_id);
        /* The prefix is a few bytes and the room thousands: it always goes in the first chunk. */
        size_t from_prefix = done < prefix_length ? prefix_length - done : 0;
        if (from_prefix)
            sim_buf_append(&conn->out, prefix + done, from_prefix);
        sim_buf_append(&conn->out, body + (done + from_prefix - prefix_length), n - from_prefix);
        end_message(&conn->out, at);
        done += n;
    } while (done < total);
    uarc_free(body);
}
