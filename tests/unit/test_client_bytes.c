/*
 * The client in byte mode: no socket and no clock of its own. The test is the transport (it takes
 * the client's output and feeds it scripted server frames, byte_peer.h) and the clock (a number it
 * advances), so timeouts and keep-alives are checked without sleeping; also how connections end
 * and the memory budget against flooding servers. The session's security checks in byte mode are
 * in test_client_bytes_security.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_server.h"
#include "byte_peer.h"
#include "uarc/uarc.h"

#define REQUEST_TIMEOUT_MS 2000u
#define KEEPALIVE_MS       3000u

/* Through HEL and OPN (SecurityPolicy None) to the CreateSession request: its RequestId. */
static uint32_t start_session(byte_peer *p)
{
    assert_int_equal(uarc_client_start_bytes(p->client, PEER_URL, p->now), UARC_Good);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_HELLO);
    assert_int_equal(uarc_client_fd(p->client), -1);
    assert_int_equal(uarc_client_poll_events(p->client), 0);

    peer_pop(p, "HELF");
    assert_true(peer_silent(p));
    fake_frame f;
    frame_ack(&f);
    assert_int_equal(peer_feed(p, &f), UARC_Good);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_OPENING);

    assert_int_equal(peer_answer_opn(p), UARC_Good);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_CREATING_SESSION);
    return peer_pop_request(p, UARC_T(CreateSessionRequest), NULL);
}

/* A client in byte mode through HEL, OPN, CreateSession and ActivateSession at PEER_START_MS. */
static void open_peer_with(byte_peer *p, const uarc_client_config *cfg)
{
    peer_new(p, cfg);
    uint32_t create_session = start_session(p);

    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = 60000;
    peer_reply(p, create_session, &cs, UARC_T(CreateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_ACTIVATING_SESSION);

    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    peer_reply(p, peer_pop_request(p, UARC_T(ActivateSessionRequest), NULL), &as,
               UARC_T(ActivateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_SESSION_ACTIVE);
    assert_true(peer_silent(p));
}

static void open_peer_in(byte_peer *p, uarc_memory_budget *budget)
{
    uarc_client_config cfg = {.request_timeout_ms = REQUEST_TIMEOUT_MS,
                              .keepalive_interval_ms = KEEPALIVE_MS,
                              .keepalive_exact = true,
                              .memory_budget = budget};
    open_peer_with(p, &cfg);
}

static void open_peer(byte_peer *p)
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

static void send_read(byte_peer *p, outcome *o)
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
    byte_peer p;
    open_peer(&p);
    outcome o = {0};
    send_read(&p, &o);
    uint32_t id = peer_pop_request(&p, UARC_T(ReadRequest), NULL);
    /* The answer arrives one byte at a time: any split of the stream works. */
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    fake_frame f;
    frame_msg_response(&f, PEER_CHANNEL_ID, PEER_TOKEN_ID, p.sequence++, id, &r,
                       UARC_T(ReadResponse));
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
    byte_peer p;
    open_peer(&p);
    p.now += 500; /* a while after the session came up */
    assert_int_equal(uarc_client_tick(p.client, p.now), UARC_Good);
    outcome o = {0};
    send_read(&p, &o);
    peer_pop_request(&p, UARC_T(ReadRequest), NULL);
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
        byte_peer p;
        open_peer_with(&p, &cfg);
        int t = uarc_client_timeout_ms(p.client);
        assert_in_range(t, KEEPALIVE_MS * 8 / 10, KEEPALIVE_MS);
        intervals[seed - 1] = t;
        bool seen = false;
        for (uint32_t k = 0; k + 1 < seed; k++)
            seen |= intervals[k] == t;
        distinct += !seen;
        assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + t - 1), UARC_Good);
        assert_true(peer_silent(&p));
        assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + t), UARC_Good);
        peer_pop_request(&p, UARC_T(ReadRequest), NULL);
        uarc_client_delete(p.client);

        byte_peer again;
        open_peer_with(&again, &cfg);
        assert_int_equal(uarc_client_timeout_ms(again.client), t);
        uarc_client_delete(again.client);
    }
    assert_true(distinct > SESSIONS * 3 / 4);
}

static void test_keepalive_after_idle_interval(void **state)
{
    (void)state;
    byte_peer p;
    open_peer(&p); /* ActivateSession, the last request, went out at PEER_START_MS */
    assert_int_equal(uarc_client_timeout_ms(p.client), KEEPALIVE_MS);
    assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + KEEPALIVE_MS - 1), UARC_Good);
    assert_true(peer_silent(&p));
    assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + KEEPALIVE_MS), UARC_Good);
    uint32_t id = peer_pop_request(&p, UARC_T(ReadRequest), NULL);
    assert_true(peer_silent(&p));
    p.now = PEER_START_MS + KEEPALIVE_MS + 10;
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    peer_reply(&p, id, &r, UARC_T(ReadResponse));
    /* The next one is due an interval after that keep-alive went out. */
    assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + 2 * KEEPALIVE_MS - 1), UARC_Good);
    assert_true(peer_silent(&p));
    assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + 2 * KEEPALIVE_MS), UARC_Good);
    peer_pop_request(&p, UARC_T(ReadRequest), NULL);
    uarc_client_delete(p.client);
}

static void test_transport_closed_fails_pending(void **state)
{
    (void)state;
    byte_peer p;
    open_peer(&p);
    outcome a = {0}, b = {0};
    send_read(&p, &a);
    send_read(&p, &b);
    peer_pop_request(&p, UARC_T(ReadRequest), NULL);
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

/* An allocator that counts big blocks (an error's text is one) and can refuse them. */
static size_t big_blocks;
static bool refuse_big;

static void *big_malloc(size_t size, void *u)
{
    (void)u;
    if (size >= 1024) {
        big_blocks++;
        if (refuse_big)
            return NULL;
    }
    return malloc(size);
}

static void *big_realloc(void *q, size_t size, void *u)
{
    (void)u;
    return realloc(q, size);
}

static void big_free(void *q, void *u)
{
    (void)u;
    free(q);
}

/* A healthy session holds no buffer for an error's text; without memory for it at the failure,
 * uarc_client_error() still names the failure by its status; with memory, the whole text. */
static void test_error_text_made_at_the_first_failure(void **state)
{
    (void)state;
    uarc_set_allocator(&(uarc_allocator){big_malloc, big_realloc, big_free, NULL});
    for (int refused = 1; refused >= 0; refused--) {
        byte_peer p;
        open_peer(&p);
        outcome o = {0};
        send_read(&p, &o);
        uarc_ReadResponse r;
        uarc_init(&r, UARC_T(ReadResponse));
        big_blocks = 0;
        peer_reply(&p, peer_pop_request(&p, UARC_T(ReadRequest), NULL), &r, UARC_T(ReadResponse));
        assert_int_equal(o.status, UARC_Good);
        assert_string_equal(uarc_client_error(p.client), "");
        assert_int_equal(big_blocks, 0);
        refuse_big = refused;
        assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good),
                         UARC_BadConnectionClosed);
        refuse_big = false;
        assert_true(big_blocks >= 1); /* asked for at the failure (again at the next, if refused) */
        if (refused)
            assert_string_equal(uarc_client_error(p.client), "BadConnectionClosed");
        else
            assert_non_null(strstr(uarc_client_error(p.client), ": BadConnectionClosed: "));
        uarc_client_delete(p.client);
    }
    uarc_set_allocator(NULL);
}

static void test_blocking_calls_refused(void **state)
{
    (void)state;
    byte_peer p;
    open_peer(&p);
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus);
    uarc_data_value value;
    assert_int_equal(uarc_client_read_attribute(p.client, &node, UARC_ATTRIBUTEID_Value, &value),
                     UARC_BadInvalidState);
    assert_non_null(strstr(uarc_client_error(p.client), "byte mode"));
    assert_int_equal(uarc_client_process(p.client, 0), UARC_BadInvalidState);
    assert_true(peer_silent(&p)); /* nothing was sent */
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(p.client);
}

static void test_disconnect_leaves_close_bytes(void **state)
{
    (void)state;
    byte_peer p;
    open_peer(&p);
    assert_int_equal(uarc_client_disconnect(p.client), UARC_Good);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_DISCONNECTED);
    peer_pop_request(&p, UARC_T(CloseSessionRequest), NULL);
    peer_pop(&p, "CLOF");
    assert_true(peer_silent(&p));
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
    byte_peer p;
    open_peer(&p);
    browse_outcome o = {0};
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder);
    assert_int_equal(uarc_client_browse_send(p.client, &node, record_browse, &o), UARC_Good);
    uint32_t id = peer_pop_request(&p, UARC_T(BrowseRequest), NULL);
    uarc_BrowseResult result = {.statusCode = UARC_Good};
    uarc_BrowseResponse r;
    uarc_init(&r, UARC_T(BrowseResponse));
    r.resultsSize = 1;
    r.results = &result;
    peer_reply(&p, id, &r, UARC_T(BrowseResponse));
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_Good);
    assert_int_equal(o.count, 0);
    assert_true(peer_silent(&p)); /* no continuation point: no BrowseNext */
    uarc_client_delete(p.client);
}

static void test_connect_times_out_on_the_given_clock(void **state)
{
    (void)state;
    uarc_client_config cfg = {.connect_timeout_ms = 5000};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_start_bytes(c, PEER_URL, 0), UARC_Good);
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

static void expect_end(byte_peer *p, uarc_status status, const char *reason, const char *kind)
{
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_DISCONNECTED);
    assert_string_equal(uarc_client_end_reason(p->client), reason);
    assert_string_equal(uarc_client_end_kind(p->client), kind);
    assert_int_equal(uarc_client_end_status(p->client), status);
    assert_string_equal(uarc_client_peer(p->client), ""); /* byte mode: no socket */
}

/* One MSG chunk of `type` ("MSGC", "MSGF") on `channel_id` carrying `body_length` bytes for
 * `request_id`, in a heap buffer of *length bytes. */
static uint8_t *msg_chunk(byte_peer *p, const char *type, uint32_t channel_id, uint32_t request_id,
                          size_t body_length, size_t *length)
{
    *length = 24 + body_length;
    uint8_t *b = calloc(1, *length);
    assert_non_null(b);
    uint32_t fields[6] = {0,         (uint32_t)*length, channel_id, PEER_TOKEN_ID, p->sequence++,
                          request_id};
    for (int i = 1; i < 6; i++)
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(fields[i] >> (8 * k));
    memcpy(b, type, 4);
    return b;
}

static uarc_status feed_chunk(byte_peer *p, const char *type, uint32_t channel_id,
                              uint32_t request_id, size_t body_length)
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
    byte_peer p;
    outcome o = {0};

    open_peer(&p);
    send_read(&p, &o);
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    assert_int_equal(o.status, UARC_BadSecureChannelClosed);
    expect_end(&p, UARC_BadConnectionClosed, "closed by peer", "closed");
    uarc_client_delete(p.client);

    open_peer(&p);
    feed_chunk(&p, "MSGF", PEER_CHANNEL_ID + 1, 1, 8);
    expect_end(&p, UARC_BadSecureChannelIdInvalid, "protocol violation", "error");
    uarc_client_delete(p.client);

    open_peer(&p);
    assert_int_equal(uarc_client_tick(p.client, PEER_START_MS + KEEPALIVE_MS), UARC_Good);
    peer_pop_request(&p, UARC_T(ReadRequest), NULL);
    uarc_client_tick(p.client, PEER_START_MS + KEEPALIVE_MS + REQUEST_TIMEOUT_MS);
    expect_end(&p, UARC_BadTimeout, "keep-alive timeout", "timeout");
    uarc_client_delete(p.client);

    open_peer(&p);
    fake_frame f;
    frame_begin(&f, "CLOF");
    frame_u32(&f, PEER_CHANNEL_ID);
    frame_u32(&f, PEER_TOKEN_ID);
    frame_u32(&f, p.sequence++);
    frame_u32(&f, 0);
    frame_end(&f);
    peer_feed(&p, &f);
    expect_end(&p, UARC_BadSecureChannelClosed, "CLO from server", "closed");
    uarc_client_delete(p.client);

    open_peer(&p);
    frame_begin(&f, "ERRF");
    frame_u32(&f, UARC_BadTcpServerTooBusy);
    frame_cstring(&f, "busy");
    frame_end(&f);
    peer_feed(&p, &f);
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
    assert_int_equal(uarc_client_start_bytes(c, PEER_URL, 0), UARC_Good);
    assert_string_equal(uarc_client_end_reason(c), "");
    uarc_client_tick(c, 5000);
    assert_int_equal(uarc_client_end_status(c), UARC_BadTimeout);
    assert_string_equal(uarc_client_end_reason(c), "connect timeout");
    assert_string_equal(uarc_client_end_kind(c), "timeout");
    uarc_client_delete(c);

    /* a frame shorter than its own header is malformed, not too large */
    c = uarc_client_new(NULL);
    assert_int_equal(uarc_client_start_bytes(c, PEER_URL, 0), UARC_Good);
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
    byte_peer p;
    open_peer(&p);
    outcome o = {0};
    send_read(&p, &o);
    uint32_t late = peer_pop_request(&p, UARC_T(ReadRequest), NULL);
    p.now += REQUEST_TIMEOUT_MS;
    uarc_client_tick(p.client, p.now);
    assert_int_equal(o.status, UARC_BadTimeout);
    for (int i = 0; i < 150; i++)
        assert_int_equal(feed_chunk(&p, "MSGF", PEER_CHANNEL_ID, late, 8), UARC_Good);
    for (int i = 0; i < 100; i++)
        assert_int_equal(feed_chunk(&p, "MSGF", PEER_CHANNEL_ID, 9999, 8), UARC_Good);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(feed_chunk(&p, "MSGF", PEER_CHANNEL_ID, 9999, 8), UARC_BadUnknownResponse);
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
    byte_peer *flood = calloc(FLOODERS, sizeof *flood);
    byte_peer *honest = calloc(1, sizeof *honest);
    assert_non_null(flood);
    assert_non_null(honest);
    outcome o[FLOODERS] = {{0}};
    uint32_t id[FLOODERS];
    open_peer_in(honest, budget);
    for (int i = 0; i < FLOODERS; i++) {
        open_peer_in(&flood[i], budget);
        send_read(&flood[i], &o[i]);
        id[i] = peer_pop_request(&flood[i], UARC_T(ReadRequest), NULL);
    }
    int honest_answers = 0;
    for (int round = 0; round < FLOOD_ROUNDS; round++) {
        for (int i = 0; i < FLOODERS; i++) {
            assert_int_equal(feed_chunk(&flood[i], "MSGC", PEER_CHANNEL_ID, id[i], FLOOD_CHUNK),
                             UARC_Good);
            assert_true(uarc_memory_budget_used(budget) <= BUDGET);
        }
        if (round % 10 == 5) { /* the honest server, while the flood fills the budget */
            outcome h = {0};
            send_read(honest, &h);
            uarc_ReadResponse r;
            uarc_init(&r, UARC_T(ReadResponse));
            peer_reply(honest, peer_pop_request(honest, UARC_T(ReadRequest), NULL), &r,
                       UARC_T(ReadResponse));
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
    byte_peer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    open_peer_in(p, budget);
    /* 12000 DataValues of one byte each (24 KB) decode to far more than the 256 KiB budget */
    outcome o = {0};
    send_read(p, &o);
    uint32_t id = peer_pop_request(p, UARC_T(ReadRequest), NULL);
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
    uint8_t *b = msg_chunk(p, "MSGF", PEER_CHANNEL_ID, id, 4 + encoded_length, &length);
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
    peer_reply(p, peer_pop_request(p, UARC_T(ReadRequest), NULL), &r, UARC_T(ReadResponse));
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
    byte_peer *hostile = calloc(1, sizeof *hostile), *honest = calloc(1, sizeof *honest);
    assert_non_null(hostile);
    assert_non_null(honest);
    open_peer_in(hostile, budget);
    open_peer_in(honest, budget);
    outcome o = {0};
    send_read(hostile, &o);
    uint32_t id = peer_pop_request(hostile, UARC_T(ReadRequest), NULL);
    assert_int_equal(feed_chunk(hostile, "MSGC", PEER_CHANNEL_ID, id, 40000),
                     UARC_BadTcpNotEnoughResources);
    expect_end(hostile, UARC_BadTcpNotEnoughResources, "memory budget", "error");
    assert_int_equal(o.status, UARC_BadSecureChannelClosed);
    assert_true(uarc_memory_budget_peak(budget) <= 32 * 1024);

    outcome h = {0};
    send_read(honest, &h);
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    peer_reply(honest, peer_pop_request(honest, UARC_T(ReadRequest), NULL), &r,
               UARC_T(ReadResponse));
    assert_int_equal(h.status, UARC_Good);
    uarc_client_delete(hostile->client);
    uarc_client_delete(honest->client);
    assert_int_equal(uarc_memory_budget_used(budget), 0);
    free(hostile);
    free(honest);
    uarc_memory_budget_delete(budget);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_answered),
        cmocka_unit_test(test_request_times_out_on_the_given_clock),
        cmocka_unit_test(test_keepalive_after_idle_interval),
        cmocka_unit_test(test_keepalive_jitter_spreads_sessions),
        cmocka_unit_test(test_transport_closed_fails_pending),
        cmocka_unit_test(test_error_text_made_at_the_first_failure),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
