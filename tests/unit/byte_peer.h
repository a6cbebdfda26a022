/*
 * A byte-mode client and the scripted server around it, for tests: the test is the transport (it
 * takes the client's output and feeds it server frames) and the clock (a number it advances).
 * Include after <cmocka.h> and "fake_server.h".
 */
#ifndef UARC_TESTS_BYTE_PEER_H
#define UARC_TESTS_BYTE_PEER_H

#include "uarc/uarc.h"

#define PEER_URL        "opc.tcp://fake:4840"
#define PEER_CHANNEL_ID 9u
#define PEER_TOKEN_ID   3u
#define PEER_START_MS   1000000

typedef struct byte_peer {
    uarc_client *client;
    int64_t now;
    uint32_t sequence;
    uint8_t out[70000]; /* what the client sent, not yet popped by the test */
    size_t out_length;
    uint8_t message[70000]; /* the last popped request */
    size_t message_length;
} byte_peer;

/* Takes everything the client has to send. */
static inline void peer_pull(byte_peer *p)
{
    const uint8_t *data;
    size_t n;
    while ((n = uarc_client_output_bytes(p->client, &data)) > 0) {
        assert_true(p->out_length + n <= sizeof p->out);
        memcpy(p->out + p->out_length, data, n);
        p->out_length += n;
        uarc_client_output_consumed(p->client, n);
    }
}

/* Pops the next whole message the client sent into p->message and checks its type ("HELF"). */
static inline void peer_pop(byte_peer *p, const char *type)
{
    peer_pull(p);
    assert_true(p->out_length >= 8);
    assert_memory_equal(p->out, type, 4);
    uint32_t size = get_u32(p->out + 4);
    assert_true(size >= 8 && size <= p->out_length);
    memcpy(p->message, p->out, size);
    p->message_length = size;
    memmove(p->out, p->out + size, p->out_length - size);
    p->out_length -= size;
}

static inline bool peer_silent(byte_peer *p)
{
    peer_pull(p);
    return p->out_length == 0;
}

/* Pops the next MSG request: the numeric id of its encoding NodeId; *body (may be NULL) gets
 * where the request after that NodeId starts in p->message. */
static inline uint32_t peer_pop_any(byte_peer *p, size_t *body)
{
    peer_pop(p, "MSGF");
    size_t offset = 0;
    uarc_nodeid id;
    assert_int_equal(
        uarc_decode(p->message + 24, p->message_length - 24, &offset, &id, UARC_T(NodeId), NULL),
        UARC_Good);
    assert_int_equal(id.identifier_type, UARC_NODEID_NUMERIC);
    if (body)
        *body = 24 + offset;
    return id.identifier.numeric;
}

/* Decodes the request peer_pop_any() popped, from `body` on, into `request` (uarc_clear it) and
 * returns its RequestId. */
static inline uint32_t peer_decode_request(byte_peer *p, size_t body, const uarc_type *type,
                                           void *request)
{
    size_t offset = 0;
    assert_int_equal(
        uarc_decode(p->message + body, p->message_length - body, &offset, request, type, NULL),
        UARC_Good);
    return get_u32(p->message + 20);
}

/* Pops a MSG request of `type`, decodes it into `request` (may be NULL; uarc_clear it) and
 * returns its RequestId. */
static inline uint32_t peer_pop_request(byte_peer *p, const uarc_type *type, void *request)
{
    size_t body;
    uint32_t encoding = peer_pop_any(p, &body);
    if (encoding != type->binary_encoding_id)
        fail_msg("expected a %s, got encoding i=%u", type->name, encoding);
    if (request)
        peer_decode_request(p, body, type, request);
    return get_u32(p->message + 20);
}

static inline uarc_status peer_feed(byte_peer *p, const fake_frame *f)
{
    return uarc_client_receive_bytes(p->client, f->bytes, f->length, p->now);
}

static inline void peer_reply(byte_peer *p, uint32_t request_id, void *response,
                              const uarc_type *type)
{
    static fake_frame f;
    frame_msg_response(&f, PEER_CHANNEL_ID, PEER_TOKEN_ID, p->sequence++, request_id, response,
                       type);
    assert_int_equal(peer_feed(p, &f), UARC_Good);
}

/* Answers `request_id` with a ServiceFault carrying `status`. */
static inline void peer_fault(byte_peer *p, uint32_t request_id, uarc_status status)
{
    uarc_ServiceFault fault;
    uarc_init(&fault, UARC_T(ServiceFault));
    fault.responseHeader.serviceResult = status;
    peer_reply(p, request_id, &fault, UARC_T(ServiceFault));
}

/* Pops the client's OPN request and answers it (Issue, SecurityPolicy None) with the next
 * sequence number: what the client's processing returned. */
static inline uarc_status peer_answer_opn(byte_peer *p)
{
    peer_pop(p, "OPNF");
    const uint8_t *buf = p->message;
    size_t pos = 12; /* after the three strings of the asymmetric header: sequence, request id */
    for (int i = 0; i < 3; i++) {
        int32_t len = (int32_t)get_u32(buf + pos);
        pos += 4 + (len > 0 ? (size_t)len : 0);
    }
    fake_frame f;
    frame_opn_response(&f, PEER_CHANNEL_ID, PEER_TOKEN_ID, p->sequence++, get_u32(buf + pos + 4));
    return peer_feed(p, &f);
}

/* HEL, ACK, OPN: the channel of a (re)started byte-mode connection. */
static inline void peer_open_channel(byte_peer *p)
{
    assert_int_equal(uarc_client_start_bytes(p->client, PEER_URL, p->now), UARC_Good);
    peer_pop(p, "HELF");
    fake_frame f;
    frame_ack(&f);
    assert_int_equal(peer_feed(p, &f), UARC_Good);
    assert_int_equal(peer_answer_opn(p), UARC_Good);
}

/* CreateSession and ActivateSession answered: a new session. */
static inline void peer_new_session(byte_peer *p, uint32_t token)
{
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, token - 1);
    cs.authenticationToken = uarc_nodeid_numeric(1, token);
    cs.revisedSessionTimeout = 60000;
    peer_reply(p, peer_pop_request(p, UARC_T(CreateSessionRequest), NULL), &cs,
               UARC_T(CreateSessionResponse));
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    peer_reply(p, peer_pop_request(p, UARC_T(ActivateSessionRequest), NULL), &as,
               UARC_T(ActivateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_SESSION_ACTIVE);
}

/* The connection drops (its transport closes) and a new one is opened a second later, up to the
 * client's ActivateSession. */
static inline void peer_reconnect(byte_peer *p)
{
    assert_int_equal(uarc_client_transport_closed(p->client, UARC_Good), UARC_BadConnectionClosed);
    p->now += 1000;
    peer_open_channel(p);
}

/* Answers the client's ActivateSession Good: the session is resumed. */
static inline void peer_resume_session(byte_peer *p)
{
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    peer_reply(p, peer_pop_request(p, UARC_T(ActivateSessionRequest), NULL), &as,
               UARC_T(ActivateSessionResponse));
}

/* The server lost the session: the client's ActivateSession is refused (BadSessionIdInvalid)
 * and a new session is made (authentication token `token`). */
static inline void peer_replace_session(byte_peer *p, uint32_t token)
{
    peer_fault(p, peer_pop_request(p, UARC_T(ActivateSessionRequest), NULL),
               UARC_BadSessionIdInvalid);
    peer_new_session(p, token);
}

/* A byte-mode client of `cfg` at PEER_START_MS, not started. */
static inline void peer_new(byte_peer *p, const uarc_client_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->now = PEER_START_MS;
    p->sequence = 1;
    p->client = uarc_client_new(cfg);
    assert_non_null(p->client);
}

/* A byte-mode client with an active session at PEER_START_MS. */
static inline void peer_open(byte_peer *p, const uarc_client_config *cfg)
{
    peer_new(p, cfg);
    peer_open_channel(p);
    peer_new_session(p, 78);
}

#endif
