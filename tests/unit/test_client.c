/*
 * The client's state machine against a scripted server on a socketpair, all in one thread: the
 * test writes the server's bytes into its end, then lets the client process them. Covers what
 * application callbacks may do from inside the client's processing: disconnect, and blocking
 * calls (refused there, instead of losing the bytes the inner call would read).
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "fake_server.h"
#include "uarc/uarc.h"

#define URL        "opc.tcp://fake:4840"
#define CHANNEL_ID 9u
#define TOKEN_ID   3u

typedef struct server {
    int fd;
    uint32_t sequence;
} server;

/* The revisedSessionTimeout serve_handshake() answers CreateSession with. */
static double revised_session_timeout = 60000;

/* Reads one whole message into buf; returns its size. */
static size_t read_message(server *s, uint8_t *buf, size_t capacity)
{
    assert_true(recv_exact(s->fd, buf, 8));
    uint32_t size = get_u32(buf + 4);
    assert_true(size >= 8 && size <= capacity);
    assert_true(recv_exact(s->fd, buf + 8, size - 8));
    return size;
}

static uint8_t request_buf[70000];
static size_t request_size;

/* Reads a MSG request (kept in request_buf): its RequestId and the numeric id of its encoding
 * NodeId. */
static void read_request(server *s, uint32_t *request_id, uint32_t *type_id)
{
    uint8_t *buf = request_buf;
    size_t size = request_size = read_message(s, buf, sizeof request_buf);
    assert_memory_equal(buf, "MSGF", 4);
    *request_id = get_u32(buf + 20);
    size_t offset = 0;
    uarc_nodeid id;
    assert_int_equal(uarc_decode(buf + 24, size - 24, &offset, &id, UARC_T(NodeId), NULL),
                     UARC_Good);
    *type_id = id.identifier.numeric;
}

/* Answers `request_id` with `response` (a struct of `type`) in one MSG chunk. */
static void reply(server *s, uint32_t request_id, void *response, const uarc_type *type)
{
    fake_frame f;
    frame_msg_response(&f, CHANNEL_ID, TOKEN_ID, s->sequence++, request_id, response, type);
    send_all(s->fd, f.bytes, f.length);
}

static void ack(server *s)
{
    fake_frame f;
    frame_ack(&f);
    send_all(s->fd, f.bytes, f.length);
}

static void opn_response(server *s, uint32_t request_id)
{
    fake_frame f;
    frame_opn_response(&f, CHANNEL_ID, TOKEN_ID, s->sequence++, request_id);
    send_all(s->fd, f.bytes, f.length);
}

/* Drives the client until its state is `target` (or it disconnects). */
static void process_until(uarc_client *c, uarc_client_state target)
{
    for (int i = 0; i < 50 && uarc_client_state_get(c) != target &&
                    uarc_client_state_get(c) != UARC_CLIENT_DISCONNECTED;
         i++)
        uarc_client_process(c, 100);
    assert_int_equal(uarc_client_state_get(c), target);
}

/* A client on one end of a socketpair, the scripted server on the other. */
static uarc_client *new_client(uarc_client_config *cfg, server *s)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *s = (server){sv[1], 1};
    set_read_timeout(s->fd, FAKE_READ_TIMEOUT_MS);
    uarc_client *c = uarc_client_new(cfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_start_socket(c, sv[0], URL), UARC_Good);
    return c;
}

/* HEL/ACK and OPN; with a session also CreateSession and ActivateSession. Answers the last
 * step and returns before the client has processed that answer. */
static void serve_handshake(uarc_client *c, server *s, bool session)
{
    uint8_t buf[4096];
    read_message(s, buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4);
    ack(s);
    process_until(c, UARC_CLIENT_OPENING);
    read_message(s, buf, sizeof buf);
    assert_memory_equal(buf, "OPNF", 4);
    size_t pos = 12; /* after the three strings of the asymmetric header: sequence, request id */
    for (int i = 0; i < 3; i++) {
        int32_t len = (int32_t)get_u32(buf + pos);
        pos += 4 + (len > 0 ? (size_t)len : 0);
    }
    opn_response(s, get_u32(buf + pos + 4));
    if (!session)
        return;
    process_until(c, UARC_CLIENT_CREATING_SESSION);
    uint32_t id, type;
    read_request(s, &id, &type);
    assert_int_equal(type, UARC_T(CreateSessionRequest)->binary_encoding_id);
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = revised_session_timeout;
    reply(s, id, &cs, UARC_T(CreateSessionResponse));
    process_until(c, UARC_CLIENT_ACTIVATING_SESSION);
    read_request(s, &id, &type);
    assert_int_equal(type, UARC_T(ActivateSessionRequest)->binary_encoding_id);
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    reply(s, id, &as, UARC_T(ActivateSessionResponse));
}

static uarc_client *open_client(uarc_client_config *cfg, server *s)
{
    uarc_client *c = new_client(cfg, s);
    serve_handshake(c, s, true);
    process_until(c, UARC_CLIENT_SESSION_ACTIVE);
    return c;
}

static void send_read(uarc_client *c, uarc_response_fn callback, void *user_data)
{
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, 2258), .attributeId = 13};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.nodesToReadSize = 1;
    req.nodesToRead = &node;
    assert_int_equal(uarc_client_send(c, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                      callback, user_data, NULL),
                     UARC_Good);
}

static void reply_read(server *s, uint32_t request_id)
{
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    reply(s, request_id, &r, UARC_T(ReadResponse));
}

/* ---- disconnect from inside a callback ---- */

typedef struct outcome {
    uarc_client *client;
    int calls;
    uarc_status status;
} outcome;

static void disconnect_in_response(void *user_data, uarc_status status, void *response)
{
    outcome *o = user_data;
    (void)response;
    o->calls++;
    o->status = status;
    assert_int_equal(uarc_client_disconnect(o->client), UARC_Good);
}

/* The server sees CloseSession (when `session`), then CLO, then the end of the stream. */
static void expect_close_sequence(server *s, bool session)
{
    uint8_t buf[4096];
    if (session) {
        uint32_t id, type;
        read_request(s, &id, &type);
        assert_int_equal(type, UARC_T(CloseSessionRequest)->binary_encoding_id);
    }
    read_message(s, buf, sizeof buf);
    assert_memory_equal(buf, "CLOF", 4);
    expect_eof(s->fd);
}

static void test_disconnect_from_response_callback(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    outcome o = {c, 0, 0};
    send_read(c, disconnect_in_response, &o);
    uint32_t id, type;
    read_request(&s, &id, &type);
    reply_read(&s, id);
    uarc_client_process(c, 1000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_Good);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    assert_int_equal(uarc_client_fd(c), -1);
    expect_close_sequence(&s, true);
    /* the session was closed on purpose: the next connect must not try to re-activate it */
    assert_false(uarc_client_session_resumed(c));
    uarc_client_delete(c);
    close(s.fd);
}

typedef struct state_log {
    uarc_client *client;
    uarc_client_state disconnect_at;
    int disconnected;
    uarc_status blocking_status;
    bool call_blocking;
} state_log;

static void on_state(void *user_data, uarc_client_state st, uarc_status status)
{
    state_log *log = user_data;
    (void)status;
    if (!log->client)
        return;
    if (st == UARC_CLIENT_DISCONNECTED)
        log->disconnected++;
    if (st == log->disconnect_at)
        assert_int_equal(uarc_client_disconnect(log->client), UARC_Good);
    if (st == UARC_CLIENT_SESSION_ACTIVE && log->call_blocking) {
        log->call_blocking = false;
        uarc_nodeid node = uarc_nodeid_numeric(0, 2258);
        uarc_data_value value;
        log->blocking_status = uarc_client_read_attribute(log->client, &node, 13, &value);
        uarc_clear(&value, UARC_T(DataValue));
    }
}

/* state_changed(SESSION_ACTIVE) runs from inside the channel's receive loop. */
static void test_disconnect_from_state_callback(void **state)
{
    (void)state;
    state_log log = {NULL, UARC_CLIENT_SESSION_ACTIVE, 0, UARC_Good, false};
    uarc_client_config cfg = {.callbacks = {on_state, &log}};
    server s;
    uarc_client *c = new_client(&cfg, &s);
    log.client = c;
    serve_handshake(c, &s, true);
    uarc_client_process(c, 1000);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    assert_int_equal(log.disconnected, 1);
    expect_close_sequence(&s, true);
    uarc_client_delete(c);
    close(s.fd);
}

static void record_response(void *user_data, uarc_status status, void *response)
{
    outcome *o = user_data;
    (void)response;
    o->calls++;
    o->status = status;
}

/* disconnect_now from an event loop: a request in flight fails at once, the state callback sees
 * DISCONNECTED once, and the server still gets CloseSession, CLO and the end of the stream. */
static void test_disconnect_now(void **state)
{
    (void)state;
    state_log log = {NULL, UARC_CLIENT_CLOSING, 0, UARC_Good, false};
    uarc_client_config cfg = {.callbacks = {on_state, &log}};
    server s;
    uarc_client *c = open_client(&cfg, &s);
    outcome o = {c, 0, 0};
    send_read(c, record_response, &o);
    uint32_t id, type;
    read_request(&s, &id, &type);
    log.client = c;
    log.disconnect_at = UARC_CLIENT_DISCONNECTED; /* a repeat from the callback is a no-op */
    assert_int_equal(uarc_client_disconnect_now(c), UARC_Good);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    assert_int_equal(uarc_client_fd(c), -1);
    assert_int_equal(log.disconnected, 1);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_BadConnectionClosed);
    expect_close_sequence(&s, true);
    assert_false(uarc_client_session_resumed(c));
    assert_int_equal(uarc_client_disconnect_now(c), UARC_Good);
    uarc_client_delete(c);
    close(s.fd);
}

static void count_response(void *user_data, uarc_status status, void *response)
{
    outcome *o = user_data;
    o->calls++;
    o->status = response ? status : UARC_BadUnexpectedError;
}

/* A blocking call from inside a callback cannot be served (the channel is in the middle of
 * its receive loop): it fails at once, and the connection goes on unharmed. */
static void test_blocking_call_from_callback_refused(void **state)
{
    (void)state;
    state_log log = {NULL, (uarc_client_state)-1, 0, UARC_Good, true};
    uarc_client_config cfg = {.callbacks = {on_state, &log}, .request_timeout_ms = 300};
    server s;
    uarc_client *c = new_client(&cfg, &s);
    log.client = c;
    serve_handshake(c, &s, true);
    process_until(c, UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(log.blocking_status, UARC_BadInvalidState);
    /* The connection still works: a request and its response. */
    outcome o = {c, 0, UARC_BadUnexpectedError};
    send_read(c, count_response, &o);
    uint32_t id, type;
    read_request(&s, &id, &type);
    assert_int_equal(type, UARC_T(ReadRequest)->binary_encoding_id);
    reply_read(&s, id);
    for (int i = 0; i < 20 && !o.calls; i++)
        uarc_client_process(c, 100);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, UARC_Good);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(c);
    close(s.fd);
}

static void *no_malloc(size_t size, void *user_data)
{
    (void)size, (void)user_data;
    return NULL;
}

static void *no_realloc(void *p, size_t size, void *user_data)
{
    (void)p, (void)size, (void)user_data;
    return NULL;
}

static void plain_free(void *p, void *user_data)
{
    (void)user_data;
    free(p);
}

/* A keep-alive that cannot be sent (out of memory) is retried an interval later: the client's
 * timeout does not stay at 0, which would make every event loop spin. */
static void test_keepalive_send_failure_does_not_spin(void **state)
{
    (void)state;
    uarc_client_config cfg = {.keepalive_interval_ms = 50};
    server s;
    uarc_client *c = open_client(&cfg, &s);
    /* Wait for the keep-alive to fall due by the client's own deadline, without processing. */
    for (int waited = 0, t; (t = uarc_client_timeout_ms(c)) != 0; waited += t) {
        assert_true(t > 0);
        if (waited > 10000)
            fail_msg("the keep-alive is not due after %d ms", waited);
        poll(NULL, 0, t);
    }
    uarc_set_allocator(&(uarc_allocator){no_malloc, no_realloc, plain_free, NULL});
    uarc_client_process(c, 0);
    uarc_set_allocator(NULL);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    assert_true(uarc_client_timeout_ms(c) > 0);
    uarc_client_delete(c);
    close(s.fd);
}

/* uarc_client_forget_session() while the session is active: requests go on with its token;
 * only the next connect creates a new session. */
static void test_forget_session_while_active(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    uarc_client_forget_session(c);
    outcome o = {c, 0, UARC_BadUnexpectedError};
    send_read(c, count_response, &o);
    uint32_t id, type;
    read_request(&s, &id, &type);
    size_t offset = 24;
    uarc_nodeid type_id;
    assert_int_equal(
        uarc_decode(request_buf, request_size, &offset, &type_id, UARC_T(NodeId), NULL), UARC_Good);
    uarc_ReadRequest req;
    assert_int_equal(
        uarc_decode(request_buf, request_size, &offset, &req, UARC_T(ReadRequest), NULL),
        UARC_Good);
    const uarc_nodeid *token = &req.requestHeader.authenticationToken;
    assert_int_equal(token->identifier_type, UARC_NODEID_NUMERIC);
    assert_int_equal(token->namespace_index, 1);
    assert_int_equal(token->identifier.numeric, 78);
    uarc_clear(&req, UARC_T(ReadRequest));
    uarc_client_delete(c);
    close(s.fd);
}

/* A server may revise the session timeout to any Double: the keep-alive interval made from it is
 * still a few seconds (a third of 1e300 converted to an integer was undefined behaviour, and in
 * practice a negative interval, so no keep-alive at all). */
static void test_huge_revised_session_timeout(void **state)
{
    (void)state;
    revised_session_timeout = 1e300;
    server s;
    uarc_client *c = open_client(NULL, &s);
    revised_session_timeout = 60000;
    int timeout = uarc_client_timeout_ms(c);
    assert_true(timeout > 0 && timeout <= 5000);
    uarc_client_delete(c);
    close(s.fd);
}

/* ---- ServiceFaults ---- */

typedef struct response_log {
    int calls;
    uarc_status status;
    bool had_response;
} response_log;

static void log_response(void *user_data, uarc_status status, void *response)
{
    response_log *r = user_data;
    r->calls++;
    r->status = status;
    r->had_response = response != NULL;
}

/* A ServiceFault is a failure even when its code is not Bad: the request fails with a Bad status
 * and no response, and the connection goes on. */
static void test_service_fault_without_bad_code(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    response_log r = {0, UARC_Good, true};
    send_read(c, log_response, &r);
    uint32_t id, type;
    read_request(&s, &id, &type);
    uarc_ServiceFault fault;
    uarc_init(&fault, UARC_T(ServiceFault));
    fault.responseHeader.serviceResult = UARC_UncertainNoCommunicationLastUsableValue;
    reply(&s, id, &fault, UARC_T(ServiceFault));
    for (int i = 0; i < 20 && !r.calls; i++)
        uarc_client_process(c, 100);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, UARC_BadUnexpectedError);
    assert_false(r.had_response);
    assert_non_null(strstr(uarc_client_error(c), "UncertainNoCommunicationLastUsableValue"));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(c);
    close(s.fd);
}

/* A Read is answered by two MSG chunks (C, then F) without any body: the Read fails with
 * BadDecodingError. The joined body the channel hands over is then NULL, on which nothing may do
 * pointer arithmetic (UBSan builds caught it). */
static void test_empty_response_body(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    response_log r = {0, UARC_Good, true};
    send_read(c, log_response, &r);
    uint32_t id, type;
    read_request(&s, &id, &type);
    for (int i = 0; i < 2; i++) {
        fake_frame f;
        frame_begin(&f, i == 0 ? "MSGC" : "MSGF");
        frame_u32(&f, CHANNEL_ID);
        frame_u32(&f, TOKEN_ID);
        frame_u32(&f, s.sequence++);
        frame_u32(&f, id);
        frame_end(&f);
        send_all(s.fd, f.bytes, f.length);
    }
    for (int i = 0; i < 20 && !r.calls; i++)
        uarc_client_process(c, 100);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, UARC_BadDecodingError);
    assert_false(r.had_response);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(c);
    close(s.fd);
}

static void record_state(void *user_data, uarc_client_state st, uarc_status status)
{
    uarc_status *last = user_data;
    if (st == UARC_CLIENT_DISCONNECTED)
        *last = status;
}

/* A fault without a Bad code to CreateSession fails the connect with a Bad status, which is what
 * the state callback and uarc_client_process() report. */
static void test_create_session_fault_without_bad_code(void **state)
{
    (void)state;
    uarc_status disconnected = UARC_Good;
    uarc_client_config cfg = {.callbacks = {record_state, &disconnected}};
    server s;
    uarc_client *c = new_client(&cfg, &s);
    serve_handshake(c, &s, false);
    process_until(c, UARC_CLIENT_CREATING_SESSION);
    uint32_t id, type;
    read_request(&s, &id, &type);
    assert_int_equal(type, UARC_T(CreateSessionRequest)->binary_encoding_id);
    uarc_ServiceFault fault;
    uarc_init(&fault, UARC_T(ServiceFault));
    fault.responseHeader.serviceResult = UARC_Uncertain;
    reply(&s, id, &fault, UARC_T(ServiceFault));
    process_until(c, UARC_CLIENT_DISCONNECTED);
    assert_true(uarc_status_is_bad(disconnected));
    assert_true(uarc_status_is_bad(uarc_client_process(c, 0)));
    assert_non_null(strstr(uarc_client_error(c), "CreateSession"));
    uarc_client_delete(c);
    close(s.fd);
}

/* ---- Browse continuation points ---- */

typedef struct browse_outcome {
    int calls;
    uarc_status status;
    uarc_ReferenceDescription *references;
    size_t count;
} browse_outcome;

static void on_browse_done(void *user_data, uarc_status status,
                           uarc_ReferenceDescription *references, size_t count)
{
    browse_outcome *b = user_data;
    *b = (browse_outcome){b->calls + 1, status, references, count};
}

/* Decodes the request last read by read_request(). */
static void decode_request(void *request, const uarc_type *type)
{
    size_t offset = 24;
    uarc_nodeid type_id;
    assert_int_equal(
        uarc_decode(request_buf, request_size, &offset, &type_id, UARC_T(NodeId), NULL), UARC_Good);
    assert_int_equal(uarc_decode(request_buf, request_size, &offset, request, type, NULL),
                     UARC_Good);
}

/* Reads the next request, which must be a BrowseNext for `point` alone, with `release`. */
static uint32_t expect_browse_next(server *s, const char *point, bool release)
{
    uint32_t id, type;
    read_request(s, &id, &type);
    assert_int_equal(type, UARC_T(BrowseNextRequest)->binary_encoding_id);
    uarc_BrowseNextRequest next;
    decode_request(&next, UARC_T(BrowseNextRequest));
    assert_int_equal(next.releaseContinuationPoints, release);
    assert_int_equal(next.continuationPointsSize, 1);
    assert_int_equal(next.continuationPoints[0].length, strlen(point));
    assert_memory_equal(next.continuationPoints[0].data, point, strlen(point));
    uarc_clear(&next, UARC_T(BrowseNextRequest));
    return id;
}

/* Starts a browse of i=85 and answers its Browse with one reference and continuation point
 * "cp-1"; returns when the client has asked for the rest with BrowseNext("cp-1"), whose
 * RequestId goes to *next_id. */
static void browse_until_next(uarc_client *c, server *s, browse_outcome *b, uint32_t *next_id)
{
    uarc_nodeid objects = uarc_nodeid_numeric(0, 85);
    assert_int_equal(uarc_client_browse_send(c, &objects, on_browse_done, b), UARC_Good);
    uint32_t id, type;
    read_request(s, &id, &type);
    assert_int_equal(type, UARC_T(BrowseRequest)->binary_encoding_id);
    uarc_ReferenceDescription reference;
    uarc_init(&reference, UARC_T(ReferenceDescription));
    reference.nodeId.node_id = uarc_nodeid_numeric(0, 2253);
    uarc_BrowseResult result = {.statusCode = UARC_Good,
                                .continuationPoint = {4, (uint8_t *)"cp-1"},
                                .referencesSize = 1,
                                .references = &reference};
    uarc_BrowseResponse response;
    uarc_init(&response, UARC_T(BrowseResponse));
    response.resultsSize = 1;
    response.results = &result;
    reply(s, id, &response, UARC_T(BrowseResponse));
    uarc_client_process(c, 1000);
    *next_id = expect_browse_next(s, "cp-1", false);
    assert_int_equal(b->calls, 0);
}

/* The server cannot serve BrowseNext for now (a ServiceFault): the browse fails, and the
 * continuation point it still holds is released with BrowseNext(releaseContinuationPoints). */
static void test_browse_failure_releases_continuation_point(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    browse_outcome b = {0, UARC_Good, NULL, 0};
    uint32_t next_id;
    browse_until_next(c, &s, &b, &next_id);
    uarc_ServiceFault fault;
    uarc_init(&fault, UARC_T(ServiceFault));
    fault.responseHeader.serviceResult = UARC_BadServerTooBusy;
    reply(&s, next_id, &fault, UARC_T(ServiceFault));
    for (int i = 0; i < 20 && !b.calls; i++)
        uarc_client_process(c, 100);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, UARC_BadServerTooBusy);
    assert_null(b.references);
    assert_int_equal(b.count, 0);
    expect_browse_next(&s, "cp-1", true);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_delete(c);
    close(s.fd);
}

/* The client gives up on a BrowseNext that gets no answer: the continuation point is released
 * just the same. */
static void test_browse_timeout_releases_continuation_point(void **state)
{
    (void)state;
    uarc_client_config cfg = {.request_timeout_ms = 200};
    server s;
    uarc_client *c = open_client(&cfg, &s);
    browse_outcome b = {0, UARC_Good, NULL, 0};
    uint32_t next_id;
    browse_until_next(c, &s, &b, &next_id);
    for (int i = 0; i < 50 && !b.calls; i++)
        uarc_client_process(c, 100);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, UARC_BadTimeout);
    assert_null(b.references);
    expect_browse_next(&s, "cp-1", true);
    uarc_client_delete(c);
    close(s.fd);
}

/* The last BrowseNext hands out no continuation point: nothing is left to release, and nothing
 * more is sent. */
static void test_browse_complete_releases_nothing(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    browse_outcome b = {0, UARC_Good, NULL, 0};
    uint32_t next_id;
    browse_until_next(c, &s, &b, &next_id);
    uarc_BrowseResult result = {.statusCode = UARC_Good};
    uarc_BrowseNextResponse response;
    uarc_init(&response, UARC_T(BrowseNextResponse));
    response.resultsSize = 1;
    response.results = &result;
    reply(&s, next_id, &response, UARC_T(BrowseNextResponse));
    for (int i = 0; i < 20 && !b.calls; i++)
        uarc_client_process(c, 100);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, UARC_Good);
    assert_int_equal(b.count, 1);
    uarc_array_delete(b.references, b.count, UARC_T(ReferenceDescription));
    /* what the server sees next is the close sequence: no BrowseNext came in between */
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    expect_close_sequence(&s, true);
    uarc_client_delete(c);
    close(s.fd);
}

static size_t failing_realloc_size; /* a realloc to exactly this size fails */

static void *plain_malloc(size_t size, void *user_data)
{
    (void)user_data;
    return malloc(size);
}

static void *realloc_failing_at(void *p, size_t size, void *user_data)
{
    (void)user_data;
    return size == failing_realloc_size ? NULL : realloc(p, size);
}

/* Out of memory for the references of a Browse response that handed out "cp-1": the browse fails,
 * and "cp-1", which the server now holds, is released. */
static void test_browse_out_of_memory_releases_new_point(void **state)
{
    (void)state;
    server s;
    uarc_client *c = open_client(NULL, &s);
    browse_outcome b = {0, UARC_Good, NULL, 0};
    uarc_nodeid objects = uarc_nodeid_numeric(0, 85);
    assert_int_equal(uarc_client_browse_send(c, &objects, on_browse_done, &b), UARC_Good);
    uint32_t id, type;
    read_request(&s, &id, &type);
    uarc_ReferenceDescription reference;
    uarc_init(&reference, UARC_T(ReferenceDescription));
    uarc_BrowseResult result = {.statusCode = UARC_Good,
                                .continuationPoint = {4, (uint8_t *)"cp-1"},
                                .referencesSize = 1,
                                .references = &reference};
    uarc_BrowseResponse response;
    uarc_init(&response, UARC_T(BrowseResponse));
    response.resultsSize = 1;
    response.results = &result;
    reply(&s, id, &response, UARC_T(BrowseResponse));
    /* the first array of references the client grows holds 64 of them */
    failing_realloc_size = 64 * sizeof(uarc_ReferenceDescription);
    uarc_set_allocator(&(uarc_allocator){plain_malloc, realloc_failing_at, plain_free, NULL});
    for (int i = 0; i < 20 && !b.calls; i++)
        uarc_client_process(c, 100);
    uarc_set_allocator(NULL);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, UARC_BadOutOfMemory);
    assert_null(b.references);
    expect_browse_next(&s, "cp-1", true);
    uarc_client_delete(c);
    close(s.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disconnect_from_response_callback),
        cmocka_unit_test(test_disconnect_from_state_callback),
        cmocka_unit_test(test_disconnect_now),
        cmocka_unit_test(test_blocking_call_from_callback_refused),
        cmocka_unit_test(test_keepalive_send_failure_does_not_spin),
        cmocka_unit_test(test_forget_session_while_active),
        cmocka_unit_test(test_huge_revised_session_timeout),
        cmocka_unit_test(test_service_fault_without_bad_code),
        cmocka_unit_test(test_empty_response_body),
        cmocka_unit_test(test_create_session_fault_without_bad_code),
        cmocka_unit_test(test_browse_failure_releases_continuation_point),
        cmocka_unit_test(test_browse_timeout_releases_continuation_point),
        cmocka_unit_test(test_browse_complete_releases_nothing),
        cmocka_unit_test(test_browse_out_of_memory_releases_new_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
