/*
 * The client in byte mode: no socket and no clock of its own. The test is the transport (it takes
 * the client's output and feeds it scripted server frames) and the clock (a number it advances),
 * so timeouts and keep-alives are checked without sleeping. The same fake server plays a machine in
 * the middle for the session's security checks: the key a password is encrypted for, the server
 * nonce, and serverEndpoints against the discovery result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fake_server.h"
#include "uarc/uarc.h"

#define URL                "opc.tcp://fake:4840"
#define CHANNEL_ID         9u
#define TOKEN_ID           3u
#define START_MS           1000000
#define REQUEST_TIMEOUT_MS 2000u
#define KEEPALIVE_MS       3000u
#define NONE_URI           "http://opcfoundation.org/UA/SecurityPolicy#None"
#define B256_URI           "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
#define USER               "operator"
#define PASSWORD           "s3cret-Pa55word"

/* The application around a byte-mode client: transport, clock and the bytes not yet read. */
typedef struct peer {
    uarc_client *client;
    int64_t now;
    uint32_t sequence;
    uint8_t out[70000]; /* what the client sent, not yet popped by the test */
    size_t out_length;
} peer;

/* Takes everything the client has to send, as an application's send loop would. */
static void pull(peer *p)
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

/* Pops the next whole message the client sent into buf and checks its type and chunk
 * ("HELF"); returns its size. */
static size_t pop(peer *p, const char *type, uint8_t *buf, size_t capacity)
{
    pull(p);
    assert_true(p->out_length >= 8);
    assert_memory_equal(p->out, type, 4);
    uint32_t size = get_u32(p->out + 4);
    assert_true(size >= 8 && size <= p->out_length && size <= capacity);
    memcpy(buf, p->out, size);
    memmove(p->out, p->out + size, p->out_length - size);
    p->out_length -= size;
    return size;
}

static void expect_silence(peer *p)
{
    pull(p);
    assert_int_equal(p->out_length, 0);
}

/* Pops a MSG request: its RequestId; *type_id gets the numeric id of its encoding NodeId. */
static uint32_t pop_request(peer *p, uint32_t *type_id)
{
    static uint8_t buf[70000];
    size_t size = pop(p, "MSGF", buf, sizeof buf);
    size_t offset = 0;
    uarc_nodeid id;
    assert_int_equal(uarc_decode(buf + 24, size - 24, &offset, &id, UARC_T(NodeId), NULL),
                     UARC_Good);
    assert_int_equal(id.identifier_type, UARC_NODEID_NUMERIC);
    *type_id = id.identifier.numeric;
    return get_u32(buf + 20);
}

static uint32_t pop_request_of(peer *p, const uarc_type *type)
{
    uint32_t type_id;
    uint32_t request_id = pop_request(p, &type_id);
    assert_int_equal(type_id, type->binary_encoding_id);
    return request_id;
}

static uarc_status feed(peer *p, const fake_frame *f)
{
    return uarc_client_receive_bytes(p->client, f->bytes, f->length, p->now);
}

static void reply(peer *p, uint32_t request_id, void *response, const uarc_type *type)
{
    fake_frame f;
    frame_msg_response(&f, CHANNEL_ID, TOKEN_ID, p->sequence++, request_id, response, type);
    assert_int_equal(feed(p, &f), UARC_Good);
}

/* Through HEL and OPN (SecurityPolicy None) to the CreateSession request: its RequestId. */
static uint32_t start_session(peer *p)
{
    assert_int_equal(uarc_client_start_bytes(p->client, URL, p->now), UARC_Good);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_HELLO);
    assert_int_equal(uarc_client_fd(p->client), -1);
    assert_int_equal(uarc_client_poll_events(p->client), 0);

    uint8_t buf[4096];
    pop(p, "HELF", buf, sizeof buf);
    expect_silence(p);
    fake_frame f;
    frame_ack(&f);
    assert_int_equal(feed(p, &f), UARC_Good);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_OPENING);

    pop(p, "OPNF", buf, sizeof buf);
    size_t pos = 12; /* after the three strings of the asymmetric header: sequence, request id */
    for (int i = 0; i < 3; i++) {
        int32_t len = (int32_t)get_u32(buf + pos);
        pos += 4 + (len > 0 ? (size_t)len : 0);
    }
    frame_opn_response(&f, CHANNEL_ID, TOKEN_ID, p->sequence++, get_u32(buf + pos + 4));
    assert_int_equal(feed(p, &f), UARC_Good);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_CREATING_SESSION);
    return pop_request_of(p, UARC_T(CreateSessionRequest));
}

/* A byte-mode client of `cfg` at START_MS, not started. */
static void new_peer(peer *p, const uarc_client_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->now = START_MS;
    p->sequence = 1;
    p->client = uarc_client_new(cfg);
    assert_non_null(p->client);
}

/* A client in byte mode through HEL, OPN, CreateSession and ActivateSession at START_MS, sharing
 * `budget` (may be NULL). */
static void open_peer_with(peer *p, const uarc_client_config *cfg)
{
    new_peer(p, cfg);
    uint32_t create_session = start_session(p);

    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = 60000;
    reply(p, create_session, &cs, UARC_T(CreateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_ACTIVATING_SESSION);

    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    reply(p, pop_request_of(p, UARC_T(ActivateSessionRequest)), &as,
          UARC_T(ActivateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_SESSION_ACTIVE);
    expect_silence(p);
}

static void open_peer_in(peer *p, uarc_memory_budget *budget)
{
    uarc_client_config cfg = {.request_timeout_ms = REQUEST_TIMEOUT_MS,
                              .keepalive_interval_ms = KEEPALIVE_MS,
                              .keepalive_exact = true,
                              .memory_budget = budget};
    open_peer_with(p, &cfg);
}

static void open_peer(peer *p)
{
    open_peer_in(p, NULL);
}

typedef struct outcome {
    int calls;
    uarc_status status;
    bool had_response;
} outcome;

static void record(void *user_data, uarc_status status, void *response)
{
    outcome *o = user_data;
    o->calls++;
    o->status = status;
    o->had_response = response != NULL;
}

static void send_read(peer *p, outcome *o)
{
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus),
                             .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.nodesToReadSize = 1;
    req.nodesToRead = &node;
    assert_int_equal(uarc_client_send(p->client, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                      record, o, NULL),
                     UARC_Good);
}

static void test_read_answered(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    outcome o = {0};
    send_read(&p, &o);
    uint32_t id = pop_request_of(&p, UARC_T(ReadRequest));
    /* The answer arrives one byte at a time: any split of the stream works. */
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    fake_frame f;
    frame_msg_response(&f, CHANNEL_ID, TOKEN_ID, p.sequence++, id, &r, UARC_T(ReadResponse));
    for (size_t i = 0; i < f.length; i++) {
        assert_int_equal(o.calls, 0);
        assert_int_equal(uarc_client_receive_bytes(p.client, f.bytes + i, 1, p.now), UARC_Good);
    }
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_Good);
    assert_true(o.had_response);
    uarc_client_delete(p.client);
}

static void test_request_times_out_on_the_given_clock(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    p.now += 500; /* a while after the session came up */
    assert_int_equal(uarc_client_tick(p.client, p.now), UARC_Good);
    outcome o = {0};
    send_read(&p, &o);
    pop_request_of(&p, UARC_T(ReadRequest));
    assert_int_equal(uarc_client_timeout_ms(p.client), REQUEST_TIMEOUT_MS);
    assert_int_equal(uarc_client_tick(p.client, p.now + REQUEST_TIMEOUT_MS - 1), UARC_Good);
    assert_int_equal(o.calls, 0);
    assert_int_equal(uarc_client_timeout_ms(p.client), 1);
    assert_int_equal(uarc_client_tick(p.client, p.now + REQUEST_TIMEOUT_MS), UARC_Good);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_BadTimeout);
    assert_false(o.had_response);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(p.client);
}

/* Sessions that became active at the same moment do not keep their keep-alives in step: each
 * client's interval is scaled by its seed's factor (0.8 to 1), the same seed gives the same
 * interval, and the keep-alive goes out exactly when that interval has passed. */
static void test_keepalive_jitter_spreads_sessions(void **state)
{
    (void)state;
    enum { SESSIONS = 40 };
    int64_t intervals[SESSIONS];
    int distinct = 0;
    for (uint32_t seed = 1; seed <= SESSIONS; seed++) {
        uarc_client_config cfg = {.request_timeout_ms = REQUEST_TIMEOUT_MS,
                                  .keepalive_interval_ms = KEEPALIVE_MS,
                                  .keepalive_jitter_seed = seed};
        peer p;
        open_peer_with(&p, &cfg);
        int t = uarc_client_timeout_ms(p.client);
        assert_in_range(t, KEEPALIVE_MS * 8 / 10, KEEPALIVE_MS);
        intervals[seed - 1] = t;
        bool seen = false;
        for (uint32_t k = 0; k + 1 < seed; k++)
            seen |= intervals[k] == t;
        distinct += !seen;
        assert_int_equal(uarc_client_tick(p.client, START_MS + t - 1), UARC_Good);
        expect_silence(&p);
        assert_int_equal(uarc_client_tick(p.client, START_MS + t), UARC_Good);
        pop_request_of(&p, UARC_T(ReadRequest));
        uarc_client_delete(p.client);

        peer again;
        open_peer_with(&again, &cfg);
        assert_int_equal(uarc_client_timeout_ms(again.client), t);
        uarc_client_delete(again.client);
    }
    assert_true(distinct > SESSIONS * 3 / 4);
}

static void test_keepalive_after_idle_interval(void **state)
{
    (void)state;
    peer p;
    open_peer(&p); /* ActivateSession, the last request, went out at START_MS */
    assert_int_equal(uarc_client_timeout_ms(p.client), KEEPALIVE_MS);
    assert_int_equal(uarc_client_tick(p.client, START_MS + KEEPALIVE_MS - 1), UARC_Good);
    expect_silence(&p);
    assert_int_equal(uarc_client_tick(p.client, START_MS + KEEPALIVE_MS), UARC_Good);
    uint32_t id = pop_request_of(&p, UARC_T(ReadRequest));
    expect_silence(&p);
    p.now = START_MS + KEEPALIVE_MS + 10;
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    reply(&p, id, &r, UARC_T(ReadResponse));
    /* The next one is due an interval after that keep-alive went out. */
    assert_int_equal(uarc_client_tick(p.client, START_MS + 2 * KEEPALIVE_MS - 1), UARC_Good);
    expect_silence(&p);
    assert_int_equal(uarc_client_tick(p.client, START_MS + 2 * KEEPALIVE_MS), UARC_Good);
    pop_request_of(&p, UARC_T(ReadRequest));
    uarc_client_delete(p.client);
}

static void test_transport_closed_fails_pending(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    outcome a = {0}, b = {0};
    send_read(&p, &a);
    send_read(&p, &b);
    pop_request_of(&p, UARC_T(ReadRequest));
    /* As when a socket reaches EOF: the connection ends with BadConnectionClosed, and requests
     * in flight on the open channel learn that it is gone. */
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    assert_non_null(strstr(uarc_client_error(p.client), "BadConnectionClosed"));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, UARC_BadSecureChannelClosed);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, UARC_BadSecureChannelClosed);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_DISCONNECTED);
    /* The second Read, never taken, is dropped with the transport. */
    const uint8_t *data;
    assert_int_equal(uarc_client_output_bytes(p.client, &data), 0);
    assert_int_equal(uarc_client_timeout_ms(p.client), -1);
    uarc_client_delete(p.client);
}

static void test_blocking_calls_refused(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus);
    uarc_data_value value;
    assert_int_equal(uarc_client_read_attribute(p.client, &node, UARC_ATTRIBUTEID_Value, &value),
                     UARC_BadInvalidState);
    assert_non_null(strstr(uarc_client_error(p.client), "byte mode"));
    assert_int_equal(uarc_client_process(p.client, 0), UARC_BadInvalidState);
    expect_silence(&p); /* nothing was sent */
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(p.client);
}

static void test_disconnect_leaves_close_bytes(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    assert_int_equal(uarc_client_disconnect(p.client), UARC_Good);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_DISCONNECTED);
    pop_request_of(&p, UARC_T(CloseSessionRequest));
    uint8_t buf[256];
    pop(&p, "CLOF", buf, sizeof buf);
    expect_silence(&p);
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_Good);
    uarc_client_delete(p.client);
}

typedef struct browse_outcome {
    int calls;
    uarc_status status;
    size_t count;
} browse_outcome;

static void record_browse(void *user_data, uarc_status status,
                          uarc_ReferenceDescription *references, size_t count)
{
    browse_outcome *o = user_data;
    o->calls++;
    o->status = status;
    o->count = count;
    uarc_array_delete(references, count, UARC_T(ReferenceDescription));
}

static void test_browse_send(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    browse_outcome o = {0};
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder);
    assert_int_equal(uarc_client_browse_send(p.client, &node, record_browse, &o), UARC_Good);
    uint32_t id = pop_request_of(&p, UARC_T(BrowseRequest));
    uarc_BrowseResult result = {.statusCode = UARC_Good};
    uarc_BrowseResponse r;
    uarc_init(&r, UARC_T(BrowseResponse));
    r.resultsSize = 1;
    r.results = &result;
    reply(&p, id, &r, UARC_T(BrowseResponse));
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_Good);
    assert_int_equal(o.count, 0);
    expect_silence(&p); /* no continuation point: no BrowseNext */
    uarc_client_delete(p.client);
}

static void test_connect_times_out_on_the_given_clock(void **state)
{
    (void)state;
    uarc_client_config cfg = {.connect_timeout_ms = 5000};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_start_bytes(c, URL, 0), UARC_Good);
    assert_int_equal(uarc_client_timeout_ms(c), 5000);
    assert_int_equal(uarc_client_tick(c, 4999), UARC_Good);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_HELLO);
    assert_int_equal(uarc_client_tick(c, 5000), UARC_BadTimeout);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    assert_non_null(strstr(uarc_client_error(c), "HEL"));
    uarc_client_delete(c);
}

static void test_calls_outside_byte_mode_refused(void **state)
{
    (void)state;
    uarc_client *c = uarc_client_new(NULL);
    assert_non_null(c);
    uint8_t byte = 0;
    assert_int_equal(uarc_client_receive_bytes(c, &byte, 1, 0), UARC_BadInvalidState);
    assert_int_equal(uarc_client_tick(c, 0), UARC_BadInvalidState);
    const uint8_t *data;
    assert_int_equal(uarc_client_output_bytes(c, &data), 0);
    uarc_client_delete(c);
}

static void expect_end(peer *p, uarc_status status, const char *reason, const char *kind)
{
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_DISCONNECTED);
    assert_string_equal(uarc_client_end_reason(p->client), reason);
    assert_string_equal(uarc_client_end_kind(p->client), kind);
    assert_int_equal(uarc_client_end_status(p->client), status);
    assert_string_equal(uarc_client_peer(p->client), ""); /* byte mode: no socket */
}

/* One MSG chunk of `type` ("MSGC", "MSGF") on `channel_id` carrying `body_length` bytes for
 * `request_id`, in a heap buffer of *length bytes. */
static uint8_t *msg_chunk(peer *p, const char *type, uint32_t channel_id, uint32_t request_id,
                          size_t body_length, size_t *length)
{
    *length = 24 + body_length;
    uint8_t *b = calloc(1, *length);
    assert_non_null(b);
    uint32_t fields[6] = {0, (uint32_t)*length, channel_id, TOKEN_ID, p->sequence++, request_id};
    for (int i = 1; i < 6; i++)
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(fields[i] >> (8 * k));
    memcpy(b, type, 4);
    return b;
}

static uarc_status feed_chunk(peer *p, const char *type, uint32_t channel_id, uint32_t request_id,
                              size_t body_length)
{
    size_t length;
    uint8_t *b = msg_chunk(p, type, channel_id, request_id, body_length, &length);
    uarc_status status = uarc_client_receive_bytes(p->client, b, length, p->now);
    free(b);
    return status;
}

/* Each kind of end is told apart: the status of the cause, not only the BadSecureChannelClosed
 * that requests in flight get, and a reason. */
static void test_end_reasons(void **state)
{
    (void)state;
    peer p;
    outcome o = {0};

    open_peer(&p);
    send_read(&p, &o);
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    assert_int_equal(o.status, UARC_BadSecureChannelClosed);
    expect_end(&p, UARC_BadConnectionClosed, "closed by peer", "closed");
    uarc_client_delete(p.client);

    open_peer(&p);
    feed_chunk(&p, "MSGF", CHANNEL_ID + 1, 1, 8);
    expect_end(&p, UARC_BadSecureChannelIdInvalid, "protocol violation", "error");
    uarc_client_delete(p.client);

    open_peer(&p);
    assert_int_equal(uarc_client_tick(p.client, START_MS + KEEPALIVE_MS), UARC_Good);
    pop_request_of(&p, UARC_T(ReadRequest));
    uarc_client_tick(p.client, START_MS + KEEPALIVE_MS + REQUEST_TIMEOUT_MS);
    expect_end(&p, UARC_BadTimeout, "keep-alive timeout", "timeout");
    uarc_client_delete(p.client);

    open_peer(&p);
    fake_frame f;
    frame_begin(&f, "CLOF");
    frame_u32(&f, CHANNEL_ID);
    frame_u32(&f, TOKEN_ID);
    frame_u32(&f, p.sequence++);
    frame_u32(&f, 0);
    frame_end(&f);
    feed(&p, &f);
    expect_end(&p, UARC_BadSecureChannelClosed, "CLO from server", "closed");
    uarc_client_delete(p.client);

    open_peer(&p);
    frame_begin(&f, "ERRF");
    frame_u32(&f, UARC_BadTcpServerTooBusy);
    frame_cstring(&f, "busy");
    frame_end(&f);
    feed(&p, &f);
    expect_end(&p, UARC_BadTcpServerTooBusy, "ERR from server", "error");
    uarc_client_delete(p.client);

    open_peer(&p);
    assert_int_equal(uarc_client_abort(p.client, UARC_BadConnectionClosed, "superseded"),
                     UARC_Good);
    expect_end(&p, UARC_BadConnectionClosed, "superseded", "error");
    uarc_client_delete(p.client);

    /* the socket edge's reasons for ECONNRESET and ETIMEDOUT (TCP keepalive, user timeout) */
    const char *edge[][2] = {{"reset by peer", "reset"}, {"TCP keepalive", "keepalive"}};
    for (int i = 0; i < 2; i++) {
        open_peer(&p);
        uarc_client_abort(p.client, UARC_BadConnectionClosed, edge[i][0]);
        expect_end(&p, UARC_BadConnectionClosed, edge[i][0], edge[i][1]);
        uarc_client_delete(p.client);
    }

    open_peer(&p);
    uarc_client_disconnect(p.client);
    expect_end(&p, UARC_Good, "closed by client", "client");
    uarc_client_delete(p.client);

    uarc_client_config cfg = {.connect_timeout_ms = 5000};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_start_bytes(c, URL, 0), UARC_Good);
    assert_string_equal(uarc_client_end_reason(c), "");
    uarc_client_tick(c, 5000);
    assert_int_equal(uarc_client_end_status(c), UARC_BadTimeout);
    assert_string_equal(uarc_client_end_reason(c), "connect timeout");
    assert_string_equal(uarc_client_end_kind(c), "timeout");
    uarc_client_delete(c);

    /* a frame shorter than its own header is malformed, not too large */
    c = uarc_client_new(NULL);
    assert_int_equal(uarc_client_start_bytes(c, URL, 0), UARC_Good);
    uarc_client_receive_bytes(c, (const uint8_t *)"ACKF\x04\x00\x00\x00", 8, 0);
    assert_int_equal(uarc_client_end_status(c), UARC_BadDecodingError);
    assert_string_equal(uarc_client_end_reason(c), "protocol violation");
    uarc_client_delete(c);
}

/* Responses to nothing we asked are counted; past the bound the connection is dropped. Late
 * answers to requests that timed out are not held against the server. */
static void test_unsolicited_responses_dropped(void **state)
{
    (void)state;
    peer p;
    open_peer(&p);
    outcome o = {0};
    send_read(&p, &o);
    uint32_t late = pop_request_of(&p, UARC_T(ReadRequest));
    p.now += REQUEST_TIMEOUT_MS;
    uarc_client_tick(p.client, p.now);
    assert_int_equal(o.status, UARC_BadTimeout);
    for (int i = 0; i < 150; i++)
        assert_int_equal(feed_chunk(&p, "MSGF", CHANNEL_ID, late, 8), UARC_Good);
    for (int i = 0; i < 100; i++)
        assert_int_equal(feed_chunk(&p, "MSGF", CHANNEL_ID, 9999, 8), UARC_Good);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(feed_chunk(&p, "MSGF", CHANNEL_ID, 9999, 8), UARC_BadUnknownResponse);
    expect_end(&p, UARC_BadUnknownResponse, "unsolicited responses", "error");
    assert_non_null(strstr(uarc_client_error(p.client), "more than 100"));
    uarc_client_delete(p.client);
}

#define FLOODERS     12
#define FLOOD_CHUNK  60000
#define FLOOD_ROUNDS 40
#define BUDGET       ((size_t)2 * 1024 * 1024)

/* Many servers stream endless responses into clients sharing one budget: the budget holds at
 * every step, each flooded response fails with BadResponseTooLarge while its connection lives
 * on, and an honest server's session keeps answering in the middle of the flood. */
static void test_budget_holds_against_flooding_servers(void **state)
{
    (void)state;
    uarc_memory_budget *budget = uarc_memory_budget_new(BUDGET);
    assert_non_null(budget);
    assert_int_equal(uarc_memory_budget_limit(budget), BUDGET);
    peer *flood = calloc(FLOODERS, sizeof *flood);
    peer *honest = calloc(1, sizeof *honest);
    assert_non_null(flood);
    assert_non_null(honest);
    outcome o[FLOODERS] = {{0}};
    uint32_t id[FLOODERS];
    open_peer_in(honest, budget);
    for (int i = 0; i < FLOODERS; i++) {
        open_peer_in(&flood[i], budget);
        send_read(&flood[i], &o[i]);
        id[i] = pop_request_of(&flood[i], UARC_T(ReadRequest));
    }
    int honest_answers = 0;
    for (int round = 0; round < FLOOD_ROUNDS; round++) {
        for (int i = 0; i < FLOODERS; i++) {
            assert_int_equal(feed_chunk(&flood[i], "MSGC", CHANNEL_ID, id[i], FLOOD_CHUNK),
                             UARC_Good);
            assert_true(uarc_memory_budget_used(budget) <= BUDGET);
        }
        if (round % 10 == 5) { /* the honest server, while the flood fills the budget */
            outcome h = {0};
            send_read(honest, &h);
            uarc_ReadResponse r;
            uarc_init(&r, UARC_T(ReadResponse));
            reply(honest, pop_request_of(honest, UARC_T(ReadRequest)), &r, UARC_T(ReadResponse));
            assert_int_equal(h.calls, 1);
            assert_int_equal(h.status, UARC_Good);
            honest_answers++;
        }
    }
    assert_int_equal(honest_answers, 4);
    assert_true(uarc_memory_budget_peak(budget) <= BUDGET);
    assert_true(uarc_memory_budget_peak(budget) > BUDGET / 2); /* the flood did fill it */
    for (int i = 0; i < FLOODERS; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, UARC_BadResponseTooLarge);
        assert_non_null(strstr(uarc_client_error(flood[i].client), "memory budget"));
        assert_int_equal(uarc_client_state_get(flood[i].client), UARC_CLIENT_SESSION_ACTIVE);
        uarc_client_delete(flood[i].client);
    }
    uarc_client_delete(honest->client);
    assert_int_equal(uarc_memory_budget_used(budget), 0); /* everything charged was given back */
    free(flood);
    free(honest);
    uarc_memory_budget_delete(budget);
}

/* A decoded response is charged while it lives: one that would not fit fails, the next fits. */
static void test_budget_bounds_decoded_responses(void **state)
{
    (void)state;
    uarc_memory_budget *budget = uarc_memory_budget_new(256 * 1024);
    peer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    open_peer_in(p, budget);
    /* 12000 DataValues of one byte each (24 KB) decode to far more than the 256 KiB budget */
    outcome o = {0};
    send_read(p, &o);
    uint32_t id = pop_request_of(p, UARC_T(ReadRequest));
    uarc_ReadResponse big;
    uarc_init(&big, UARC_T(ReadResponse));
    big.resultsSize = 12000;
    big.results = calloc(big.resultsSize, sizeof *big.results); /* each encodes as one byte */
    assert_non_null(big.results);
    uint8_t *encoded;
    size_t encoded_length, length;
    assert_int_equal(uarc_encode_alloc(&big, UARC_T(ReadResponse), &encoded, &encoded_length),
                     UARC_Good);
    free(big.results);
    uint8_t *b = msg_chunk(p, "MSGF", CHANNEL_ID, id, 4 + encoded_length, &length);
    memcpy(b + 24, "\x01\x00\x7a\x02", 4); /* i=634, ReadResponse */
    memcpy(b + 28, encoded, encoded_length);
    uarc_free(encoded);
    assert_int_equal(uarc_client_receive_bytes(p->client, b, length, p->now), UARC_Good);
    free(b);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_BadResponseTooLarge);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_SESSION_ACTIVE);
    outcome small = {0};
    send_read(p, &small);
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    reply(p, pop_request_of(p, UARC_T(ReadRequest)), &r, UARC_T(ReadResponse));
    assert_int_equal(small.status, UARC_Good);
    uarc_client_delete(p->client);
    assert_int_equal(uarc_memory_budget_used(budget), 0);
    free(p);
    uarc_memory_budget_delete(budget);
}

/* A chunk whose receive buffer would not fit in the budget ends that connection with
 * BadTcpNotEnoughResources, reason "memory budget"; a client sharing the budget goes on. */
static void test_budget_ends_connection_whose_buffer_does_not_fit(void **state)
{
    (void)state;
    uarc_memory_budget *budget = uarc_memory_budget_new(32 * 1024);
    peer *hostile = calloc(1, sizeof *hostile), *honest = calloc(1, sizeof *honest);
    assert_non_null(hostile);
    assert_non_null(honest);
    open_peer_in(hostile, budget);
    open_peer_in(honest, budget);
    outcome o = {0};
    send_read(hostile, &o);
    uint32_t id = pop_request_of(hostile, UARC_T(ReadRequest));
    assert_int_equal(feed_chunk(hostile, "MSGC", CHANNEL_ID, id, 40000),
                     UARC_BadTcpNotEnoughResources);
    expect_end(hostile, UARC_BadTcpNotEnoughResources, "memory budget", "error");
    assert_int_equal(o.status, UARC_BadSecureChannelClosed);
    assert_true(uarc_memory_budget_peak(budget) <= 32 * 1024);

    outcome h = {0};
    send_read(honest, &h);
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    reply(honest, pop_request_of(honest, UARC_T(ReadRequest)), &r, UARC_T(ReadResponse));
    assert_int_equal(h.status, UARC_Good);
    uarc_client_delete(hostile->client);
    uarc_client_delete(honest->client);
    assert_int_equal(uarc_memory_budget_used(budget), 0);
    free(hostile);
    free(honest);
    uarc_memory_budget_delete(budget);
}

/* ---- the session's security checks ---- */

/* Two server certificates for urn:fake:server: the real one and a substitute (another key). */
static uint8_t *cert_real, *cert_other;
static size_t cert_real_length, cert_other_length;

static int make_certificates(void **state)
{
    (void)state;
    uint8_t *key;
    size_t key_length;
    if (uarc_certificate_generate("urn:fake:server", &cert_real, &cert_real_length, &key,
                                  &key_length) != UARC_Good)
        return -1;
    uarc_free(key);
    if (uarc_certificate_generate("urn:fake:server", &cert_other, &cert_other_length, &key,
                                  &key_length) != UARC_Good)
        return -1;
    uarc_free(key);
    return 0;
}

static int free_certificates(void **state)
{
    (void)state;
    uarc_free(cert_real);
    uarc_free(cert_other);
    return 0;
}

/* An endpoint of `policy` and `mode` with `cert` (NULL: none) and, for mode None, a UserName
 * token policy whose passwords are encrypted with Basic256Sha256. */
static uarc_EndpointDescription endpoint(const char *policy, uarc_MessageSecurityMode mode,
                                         const uint8_t *cert, size_t cert_length)
{
    static uarc_UserTokenPolicy tokens[] = {{
        .policyId = {8, (uint8_t *)"username"},
        .tokenType = UARC_UserTokenType_UserName,
        .securityPolicyUri = {sizeof B256_URI - 1, (uint8_t *)B256_URI},
    }};
    uarc_EndpointDescription e;
    uarc_init(&e, UARC_T(EndpointDescription));
    e.endpointUrl = (uarc_string){strlen(URL), (uint8_t *)URL};
    e.securityPolicyUri = (uarc_string){strlen(policy), (uint8_t *)policy};
    e.securityMode = mode;
    e.serverCertificate = (uarc_bytestring){cert ? cert_length : 0, (uint8_t *)cert};
    if (mode == UARC_MessageSecurityMode_None) {
        e.userIdentityTokensSize = 1;
        e.userIdentityTokens = tokens;
    }
    return e;
}

/* Answers CreateSession as a server with `cert` (NULL: none), a nonce of `nonce_length` bytes
 * and `endpoints` (NULL: one None endpoint with `cert` and the UserName policy above). Returns
 * what the client's processing returned. */
static uarc_status answer_create_session(peer *p, uint32_t request_id, const uint8_t *cert,
                                         size_t cert_length, size_t nonce_length,
                                         uarc_EndpointDescription *endpoints, size_t count)
{
    static uint8_t nonce[64];
    memset(nonce, 0xA5, sizeof nonce);
    uarc_EndpointDescription none =
        endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert, cert_length);
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = 60000;
    cs.serverCertificate = (uarc_bytestring){cert ? cert_length : 0, (uint8_t *)cert};
    cs.serverNonce = (uarc_bytestring){nonce_length, nonce_length ? nonce : NULL};
    cs.serverEndpointsSize = endpoints ? count : 1;
    cs.serverEndpoints = endpoints ? endpoints : &none;
    fake_frame f;
    frame_msg_response(&f, CHANNEL_ID, TOKEN_ID, p->sequence++, request_id, &cs,
                       UARC_T(CreateSessionResponse));
    return feed(p, &f);
}

/* A client logging in as USER with PASSWORD; `cfg` adds the trust settings. */
static void new_user_peer(peer *p, uarc_client_config cfg)
{
    cfg.user_name = USER;
    cfg.password = PASSWORD;
    new_peer(p, &cfg);
}

/* The connect ended at ActivateSession with `status` before any ActivateSession went out, and
 * not one byte of what the client sent after CreateSession holds the password. */
static void expect_refused_at_activate(peer *p, uarc_status returned, uarc_status status,
                                       const char *reason)
{
    assert_int_equal(returned, status);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_DISCONNECTED);
    const char *error = uarc_client_error(p->client);
    assert_non_null(strstr(error, "ActivateSession: "));
    assert_non_null(strstr(error, uarc_status_name(status)));
    if (!strstr(error, reason))
        fail_msg("\"%s\" does not say \"%s\"", error, reason);
    pull(p);
    assert_null(memmem(p->out, p->out_length, PASSWORD, strlen(PASSWORD)));
    /* all that may follow is the CLO of the teardown */
    assert_true(p->out_length == 0 || memcmp(p->out, "CLOF", 4) == 0);
}

/* Issue 14, finding 1: on a None channel a machine in the middle answers CreateSession with its
 * own certificate and a token policy naming Basic256Sha256. Nothing vouches for that key (no
 * trust list, pin, store or accept-any), so the password is not encrypted for it. */
static void test_password_not_encrypted_for_an_unverified_key(void **state)
{
    (void)state;
    size_t nonces[] = {0, 32};
    for (size_t i = 0; i < 2; i++) {
        peer p;
        new_user_peer(&p, (uarc_client_config){0});
        uint32_t id = start_session(&p);
        uarc_status s =
            answer_create_session(&p, id, cert_other, cert_other_length, nonces[i], NULL, 0);
        expect_refused_at_activate(&p, s, UARC_BadSecurityChecksFailed, "not trusted");
        assert_non_null(strstr(uarc_client_error(p.client), "trust_store_dir"));
        uarc_client_delete(p.client);
    }
}

/* A trusted (pinned) key with no nonce or a short one: an encrypted password could be replayed. */
static void test_password_needs_a_long_nonce(void **state)
{
    (void)state;
    size_t nonces[] = {0, 16, 31};
    for (size_t i = 0; i < 3; i++) {
        peer p;
        new_user_peer(&p, (uarc_client_config){.server_certificate = cert_real,
                                               .server_certificate_length = cert_real_length});
        uint32_t id = start_session(&p);
        uarc_status s =
            answer_create_session(&p, id, cert_real, cert_real_length, nonces[i], NULL, 0);
        expect_refused_at_activate(&p, s, UARC_BadNonceInvalid, "fewer than 32");
        uarc_client_delete(p.client);
    }
}

/* The pin is the endpoint's certificate: another one in CreateSession is refused. */
static void test_password_only_for_the_pinned_key(void **state)
{
    (void)state;
    peer p;
    new_user_peer(&p, (uarc_client_config){.server_certificate = cert_real,
                                           .server_certificate_length = cert_real_length});
    uint32_t id = start_session(&p);
    uarc_status s = answer_create_session(&p, id, cert_other, cert_other_length, 32, NULL, 0);
    expect_refused_at_activate(&p, s, UARC_BadSecurityChecksFailed, "not the pinned certificate");
    uarc_client_delete(p.client);
}

/* Pops the ActivateSession request and answers it with a nonce of `nonce_length` bytes; checks
 * that the password went out encrypted. */
static void answer_activate(peer *p, size_t nonce_length)
{
    pull(p);
    assert_null(memmem(p->out, p->out_length, PASSWORD, strlen(PASSWORD)));
    uint32_t id = pop_request_of(p, UARC_T(ActivateSessionRequest));
    static uint8_t nonce[32];
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    as.serverNonce = (uarc_bytestring){nonce_length, nonce_length ? nonce : NULL};
    reply(p, id, &as, UARC_T(ActivateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_SESSION_ACTIVE);
}

/* The pin as a file (server_certificate_file, `uarc --server-certificate`) vouches on a None
 * channel as the pin in memory does: the password goes out, encrypted for it. */
static void test_password_for_a_pinned_key_file(void **state)
{
    (void)state;
    char path[] = "/tmp/uarc-pin-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, cert_real, cert_real_length), (ssize_t)cert_real_length);
    close(fd);
    peer p;
    new_user_peer(&p, (uarc_client_config){.server_certificate_file = path});
    uint32_t id = start_session(&p);
    uarc_status s = answer_create_session(&p, id, cert_real, cert_real_length, 32, NULL, 0);
    assert_int_equal(s, UARC_Good);
    answer_activate(&p, 32);
    uarc_client_delete(p.client);
    unlink(path);
}

/* accept_untrusted_server_certificate is an explicit choice: the password goes out encrypted.
 * The ActivateSession response brings no nonce; re-activating the session after the connection
 * dropped must not reuse the previous nonce, which the server has seen used. */
static void test_nonce_of_activate_session_replaces_the_previous(void **state)
{
    (void)state;
    peer p;
    new_user_peer(&p, (uarc_client_config){.accept_untrusted_server_certificate = true});
    uint32_t id = start_session(&p);
    assert_int_equal(answer_create_session(&p, id, cert_other, cert_other_length, 32, NULL, 0),
                     UARC_Good);
    answer_activate(&p, 0);
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    p.out_length = 0;

    assert_int_equal(uarc_client_start_bytes(p.client, URL, p.now), UARC_Good);
    uint8_t buf[4096];
    pop(&p, "HELF", buf, sizeof buf);
    fake_frame f;
    frame_ack(&f);
    assert_int_equal(feed(&p, &f), UARC_Good);
    pop(&p, "OPNF", buf, sizeof buf);
    size_t pos = 12;
    for (int i = 0; i < 3; i++) {
        int32_t len = (int32_t)get_u32(buf + pos);
        pos += 4 + (len > 0 ? (size_t)len : 0);
    }
    frame_opn_response(&f, CHANNEL_ID, TOKEN_ID, p.sequence++, get_u32(buf + pos + 4));
    uarc_status s = feed(&p, &f); /* the resume's ActivateSession would follow at once */
    expect_refused_at_activate(&p, s, UARC_BadNonceInvalid, "fewer than 32");
    uarc_client_delete(p.client);
}

/* Trust on first use on a None channel: the first certificate seen for the endpoint URL is
 * recorded; a client that later meets a substitute refuses to encrypt the password for it. */
static void test_trust_store_refuses_a_substituted_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/uarc-client-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uarc_client_config cfg = {.trust_store_dir = dir};
    peer p;
    new_user_peer(&p, cfg);
    uint32_t id = start_session(&p);
    assert_int_equal(answer_create_session(&p, id, cert_real, cert_real_length, 32, NULL, 0),
                     UARC_Good);
    answer_activate(&p, 32);
    uarc_client_delete(p.client);

    new_user_peer(&p, cfg);
    id = start_session(&p);
    uarc_status s = answer_create_session(&p, id, cert_other, cert_other_length, 32, NULL, 0);
    expect_refused_at_activate(&p, s, UARC_BadSecurityChecksFailed,
                               "not the one recorded on first use");
    assert_non_null(strstr(uarc_client_error(p.client), dir));
    uarc_client_delete(p.client);

    new_user_peer(&p, cfg); /* the recorded one is still trusted */
    id = start_session(&p);
    assert_int_equal(answer_create_session(&p, id, cert_real, cert_real_length, 32, NULL, 0),
                     UARC_Good);
    answer_activate(&p, 32);
    uarc_client_delete(p.client);

    char command[128];
    snprintf(command, sizeof command, "rm -r %s", dir);
    assert_int_equal(system(command), 0);
}

/* Issue 14, finding 4: serverEndpoints against the endpoints GetEndpoints gave (Part 4 §5.6.2). */
static void test_server_endpoints_must_match_discovery(void **state)
{
    (void)state;
    uarc_EndpointDescription discovered[] = {
        endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length),
        endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, cert_real, cert_real_length),
    };
    struct {
        uarc_EndpointDescription session[3];
        size_t count;
        const char *reason;
    } cases[] = {
        /* the secured endpoint hidden from GetEndpoints' reader: a downgrade */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length)},
         1,
         "Basic256Sha256 in mode SignAndEncrypt with that certificate: GetEndpoints offered it"},
        /* another certificate */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length),
          endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, cert_other,
                   cert_other_length)},
         2,
         "GetEndpoints offered it"},
        /* one more endpoint than GetEndpoints gave */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length),
          endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, cert_real, cert_real_length),
          endpoint(B256_URI, UARC_MessageSecurityMode_Sign, cert_real, cert_real_length)},
         3,
         "Basic256Sha256 in mode Sign with that certificate: CreateSession's serverEndpoints "
         "offer it"},
        /* the same, certificates left out as Part 4 allows: accepted */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, NULL, 0),
          endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, NULL, 0)},
         2,
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        peer p;
        new_peer(&p, &(uarc_client_config){0});
        assert_int_equal(uarc_client_set_endpoints(p.client, discovered, 2), UARC_Good);
        uint32_t id = start_session(&p);
        uarc_status s = answer_create_session(&p, id, cert_real, cert_real_length, 32,
                                              cases[i].session, cases[i].count);
        if (!cases[i].reason) {
            assert_int_equal(s, UARC_Good);
            assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_ACTIVATING_SESSION);
        } else {
            assert_int_equal(s, UARC_BadSecurityChecksFailed);
            const char *error = uarc_client_error(p.client);
            assert_non_null(strstr(error, "CreateSession: BadSecurityChecksFailed: "));
            if (!strstr(error, cases[i].reason))
                fail_msg("\"%s\" does not say \"%s\"", error, cases[i].reason);
            pull(&p);
            assert_null(memmem(p.out, p.out_length, "\x01\x00\xd3\x01", 4)); /* i=467 */
        }
        uarc_client_delete(p.client);
    }
}

/* ---- X509 user identity -------------------------------------------------------------------- */

#define RSA_SHA256_URI "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define RSA_PSS_URI    "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"
#define POLICY_URI(n)  "http://opcfoundation.org/UA/SecurityPolicy#" n

/* The user's certificate and key, and what the fake server sends in CreateSession. */
typedef struct x509_fixture {
    uint8_t *user_cert, *user_key, *server_cert, *server_key;
    size_t user_cert_length, user_key_length, server_cert_length, server_key_length;
    uint8_t server_nonce[32];
} x509_fixture;

static void x509_fixture_init(x509_fixture *x)
{
    memset(x, 0, sizeof *x);
    assert_int_equal(uarc_certificate_generate("urn:user:alice", &x->user_cert,
                                               &x->user_cert_length, &x->user_key,
                                               &x->user_key_length),
                     UARC_Good);
    assert_int_equal(uarc_certificate_generate("urn:fake:server", &x->server_cert,
                                               &x->server_cert_length, &x->server_key,
                                               &x->server_key_length),
                     UARC_Good);
    for (size_t i = 0; i < sizeof x->server_nonce; i++)
        x->server_nonce[i] = (uint8_t)(0xA0 + i);
}

static void x509_fixture_clear(x509_fixture *x)
{
    uarc_free(x->user_cert);
    uarc_free(x->user_key);
    uarc_free(x->server_cert);
    uarc_free(x->server_key);
}

/*
 * A client with the X509 identity of `x` on a None channel; the fake server's CreateSession
 * offers one Certificate token policy "x509" naming `token_policy_uri` (NULL: none). *out gets
 * the ActivateSessionRequest the client sent (heap-owned: uarc_clear it).
 */
/* A borrowed view of a C string (the values below are stack values, never cleared). */
static uarc_string text(const char *s)
{
    return (uarc_string){strlen(s), (uint8_t *)(uintptr_t)s};
}

static void activate_x509(peer *p, const x509_fixture *x, const char *token_policy_uri,
                          uarc_ActivateSessionRequest *out)
{
    uarc_client_config cfg = {.request_timeout_ms = REQUEST_TIMEOUT_MS,
                              .user_certificate = x->user_cert,
                              .user_certificate_length = x->user_cert_length,
                              .user_private_key = x->user_key,
                              .user_private_key_length = x->user_key_length};
    new_peer(p, &cfg);
    uint32_t create_id = start_session(p);
    uarc_UserTokenPolicy token = {.policyId = text("x509"),
                                  .tokenType = UARC_UserTokenType_Certificate};
    if (token_policy_uri)
        token.securityPolicyUri = text(token_policy_uri);
    uarc_EndpointDescription endpoint;
    uarc_init(&endpoint, UARC_T(EndpointDescription));
    endpoint.securityPolicyUri = text(POLICY_URI("None"));
    endpoint.securityMode = UARC_MessageSecurityMode_None;
    endpoint.userIdentityTokensSize = 1;
    endpoint.userIdentityTokens = &token;
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = 60000;
    cs.serverCertificate = (uarc_bytestring){x->server_cert_length, x->server_cert};
    cs.serverNonce = (uarc_bytestring){sizeof x->server_nonce, (uint8_t *)x->server_nonce};
    cs.serverEndpointsSize = 1;
    cs.serverEndpoints = &endpoint;
    reply(p, create_id, &cs, UARC_T(CreateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_ACTIVATING_SESSION);

    static uint8_t buf[70000];
    size_t size = pop(p, "MSGF", buf, sizeof buf);
    size_t offset = 24;
    uarc_nodeid id;
    assert_int_equal(uarc_decode(buf, size, &offset, &id, UARC_T(NodeId), NULL), UARC_Good);
    assert_int_equal(id.identifier.numeric, UARC_T(ActivateSessionRequest)->binary_encoding_id);
    assert_int_equal(uarc_decode(buf, size, &offset, out, UARC_T(ActivateSessionRequest), NULL),
                     UARC_Good);
}

/* True when `signature` verifies over serverCertificate + serverNonce with the user's public
 * key, by RSA-SHA256 PKCS#1 v1.5 or, with `pss`, RSA-PSS-SHA256. */
static bool user_signature_verifies(const x509_fixture *x, const uarc_bytestring *signature,
                                    bool pss)
{
    const unsigned char *p = x->user_cert;
    X509 *cert = d2i_X509(NULL, &p, (long)x->user_cert_length);
    EVP_PKEY *key = cert ? X509_get_pubkey(cert) : NULL;
    uint8_t data[4096];
    assert_true(x->server_cert_length + sizeof x->server_nonce <= sizeof data);
    memcpy(data, x->server_cert, x->server_cert_length);
    memcpy(data + x->server_cert_length, x->server_nonce, sizeof x->server_nonce);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok =
        key && md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(pctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) > 0 &&
        (!pss || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) > 0) &&
        EVP_DigestVerify(md, signature->data, signature->length, data,
                         x->server_cert_length + sizeof x->server_nonce) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    X509_free(cert);
    return ok;
}

static const uarc_X509IdentityToken *x509_token(const uarc_ActivateSessionRequest *req)
{
    assert_int_equal(req->userIdentityToken.encoding, UARC_EXTENSION_OBJECT_DECODED);
    assert_ptr_equal(req->userIdentityToken.content.decoded.type, UARC_T(X509IdentityToken));
    return req->userIdentityToken.content.decoded.data;
}

/* The token carries the user's certificate and the server's policy id; the signature is the
 * token policy's algorithm over the server's certificate and nonce, with the user's key. */
static void test_x509_identity_signed_per_token_policy(void **state)
{
    (void)state;
    static const struct {
        const char *policy, *algorithm;
        bool pss;
    } cases[] = {
        {POLICY_URI("Basic256Sha256"), RSA_SHA256_URI, false},
        {POLICY_URI("Aes128_Sha256_RsaOaep"), RSA_SHA256_URI, false},
        {POLICY_URI("Aes256_Sha256_RsaPss"), RSA_PSS_URI, true},
    };
    x509_fixture x;
    x509_fixture_init(&x);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        peer p;
        uarc_ActivateSessionRequest req;
        activate_x509(&p, &x, cases[i].policy, &req);
        const uarc_X509IdentityToken *t = x509_token(&req);
        assert_true(uarc_string_equal_cstr(&t->policyId, "x509"));
        assert_int_equal(t->certificateData.length, x.user_cert_length);
        assert_memory_equal(t->certificateData.data, x.user_cert, x.user_cert_length);
        assert_true(uarc_string_equal_cstr(&req.userTokenSignature.algorithm, cases[i].algorithm));
        assert_int_equal(req.userTokenSignature.signature.length, 256); /* RSA-2048 */
        assert_true(user_signature_verifies(&x, &req.userTokenSignature.signature, cases[i].pss));
        /* not the application's signature: a None channel has none */
        assert_int_equal(req.clientSignature.signature.length, 0);
        uarc_clear(&req, UARC_T(ActivateSessionRequest));
        uarc_client_delete(p.client);
    }
    x509_fixture_clear(&x);
}

/* A serverCertificate that is a chain (the server's certificate, then an issuer): the signature
 * covers only the first certificate and the nonce (Part 4 §5.6.3.2; node-opcua refuses any
 * other). */
static void test_x509_identity_signs_the_leaf_of_a_chain(void **state)
{
    (void)state;
    x509_fixture x;
    x509_fixture_init(&x);
    static uint8_t chain[8192];
    assert_true(x.server_cert_length + x.user_cert_length <= sizeof chain);
    memcpy(chain, x.server_cert, x.server_cert_length);
    memcpy(chain + x.server_cert_length, x.user_cert, x.user_cert_length);
    x509_fixture chained = x;
    chained.server_cert = chain;
    chained.server_cert_length = x.server_cert_length + x.user_cert_length;
    peer p;
    uarc_ActivateSessionRequest req;
    activate_x509(&p, &chained, POLICY_URI("Basic256Sha256"), &req);
    assert_true(user_signature_verifies(&x, &req.userTokenSignature.signature, false));
    uarc_clear(&req, UARC_T(ActivateSessionRequest));
    uarc_client_delete(p.client);
    x509_fixture_clear(&x);
}

/* A token policy that names no SecurityPolicy on a None channel: nothing to sign with, so the
 * token goes unsigned (the server decides). */
static void test_x509_identity_unsigned_without_token_policy(void **state)
{
    (void)state;
    x509_fixture x;
    x509_fixture_init(&x);
    peer p;
    uarc_ActivateSessionRequest req;
    activate_x509(&p, &x, NULL, &req);
    assert_int_equal(x509_token(&req)->certificateData.length, x.user_cert_length);
    assert_int_equal(req.userTokenSignature.signature.length, 0);
    assert_int_equal(req.userTokenSignature.algorithm.length, 0);
    uarc_clear(&req, UARC_T(ActivateSessionRequest));
    uarc_client_delete(p.client);
    x509_fixture_clear(&x);
}

/* Configuration errors stop the connect before a byte is queued. */
static void test_x509_identity_configuration_errors(void **state)
{
    (void)state;
    x509_fixture x;
    x509_fixture_init(&x);
    uarc_client_config no_key = {.user_certificate = x.user_cert,
                                 .user_certificate_length = x.user_cert_length};
    uarc_client_config both = {.user_name = "alice",
                               .user_certificate = x.user_cert,
                               .user_certificate_length = x.user_cert_length,
                               .user_private_key = x.user_key,
                               .user_private_key_length = x.user_key_length};
    uarc_client_config missing = {.user_certificate_file = "/nonexistent/user.pem",
                                  .user_private_key_file = "/nonexistent/user.key"};
    const uarc_client_config *configs[] = {&no_key, &both, &missing};
    const uarc_status expected[] = {UARC_BadInvalidArgument, UARC_BadInvalidArgument,
                                    UARC_BadNotFound};
    for (size_t i = 0; i < 3; i++) {
        uarc_client *c = uarc_client_new(configs[i]);
        assert_non_null(c);
        assert_int_equal(uarc_client_start_bytes(c, URL, START_MS), expected[i]);
        assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
        assert_true(strncmp(uarc_client_error(c), "connect: ", 9) == 0);
        const uint8_t *data;
        assert_int_equal(uarc_client_output_bytes(c, &data), 0);
        uarc_client_delete(c);
    }
    x509_fixture_clear(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_answered),
        cmocka_unit_test(test_request_times_out_on_the_given_clock),
        cmocka_unit_test(test_keepalive_after_idle_interval),
        cmocka_unit_test(test_keepalive_jitter_spreads_sessions),
        cmocka_unit_test(test_transport_closed_fails_pending),
        cmocka_unit_test(test_blocking_calls_refused),
        cmocka_unit_test(test_disconnect_leaves_close_bytes),
        cmocka_unit_test(test_browse_send),
        cmocka_unit_test(test_connect_times_out_on_the_given_clock),
        cmocka_unit_test(test_calls_outside_byte_mode_refused),
        cmocka_unit_test(test_end_reasons),
        cmocka_unit_test(test_unsolicited_responses_dropped),
        cmocka_unit_test(test_budget_holds_against_flooding_servers),
        cmocka_unit_test(test_budget_bounds_decoded_responses),
        cmocka_unit_test(test_budget_ends_connection_whose_buffer_does_not_fit),
        cmocka_unit_test(test_x509_identity_signed_per_token_policy),
        cmocka_unit_test(test_x509_identity_signs_the_leaf_of_a_chain),
        cmocka_unit_test(test_x509_identity_unsigned_without_token_policy),
        cmocka_unit_test(test_x509_identity_configuration_errors),
        cmocka_unit_test(test_password_not_encrypted_for_an_unverified_key),
        cmocka_unit_test(test_password_needs_a_long_nonce),
        cmocka_unit_test(test_password_only_for_the_pinned_key),
        cmocka_unit_test(test_password_for_a_pinned_key_file),
        cmocka_unit_test(test_nonce_of_activate_session_replaces_the_previous),
        cmocka_unit_test(test_trust_store_refuses_a_substituted_key),
        cmocka_unit_test(test_server_endpoints_must_match_discovery),
    };
    return cmocka_run_group_tests(tests, make_certificates, free_certificates);
}
