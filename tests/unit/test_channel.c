/*
 * Secure channel state machine, from bytes written by hand after Part 6 §7.1.2 (HEL/ACK/ERR) and
 * §6.7.2 (OPN/MSG/CLO chunks). The server side of every conversation is built here field by field,
 * never with the library's encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel/channel.h"
#include "transport/uatcp.h"

#define URL        "opc.tcp://h:4840"
#define NONE_URI   "http://opcfoundation.org/UA/SecurityPolicy#None"
#define CHANNEL_ID 5u
#define TOKEN_ID   7u

/* ---- a byte builder for the server side -------------------------------------------------- */

typedef struct bytes {
    uint8_t data[131072];
    size_t n;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->data);
    memcpy(b->data + b->n, p, n);
    b->n += n;
}

static void put32(bytes *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}

static void put_string(bytes *b, const char *s)
{
    if (!s) {
        put32(b, 0xFFFFFFFFu);
        return;
    }
    put32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Starts a message "TTTc" with a size placeholder; end_message() patches the size. */
static size_t begin_message(bytes *b, const char *type_and_chunk)
{
    size_t start = b->n;
    put(b, type_and_chunk, 4);
    put32(b, 0);
    return start;
}

static void end_message(bytes *b, size_t start)
{
    uint32_t size = (uint32_t)(b->n - start);
    b->data[start + 4] = (uint8_t)size;
    b->data[start + 5] = (uint8_t)(size >> 8);
    b->data[start + 6] = (uint8_t)(size >> 16);
    b->data[start + 7] = (uint8_t)(size >> 24);
}

static void ack(bytes *b, uint32_t receive, uint32_t send, uint32_t max_message,
                uint32_t max_chunks)
{
    size_t m = begin_message(b, "ACKF");
    put32(b, 0);
    put32(b, receive);
    put32(b, send);
    put32(b, max_message);
    put32(b, max_chunks);
    end_message(b, m);
}

/* An OpenSecureChannelResponse chunk (None policy, null certificate and thumbprint). */
static void opn_response(bytes *b, uint32_t channel_id, uint32_t sequence, uint32_t request_id,
                         uint32_t token_id, uint32_t lifetime)
{
    size_t m = begin_message(b, "OPNF");
    put32(b, channel_id);
    put_string(b, NONE_URI);
    put32(b, 0xFFFFFFFFu); /* SenderCertificate */
    put32(b, 0xFFFFFFFFu); /* ReceiverCertificateThumbprint */
    put32(b, sequence);
    put32(b, request_id);
    put(b, "\x01\x00\xC1\x01", 4); /* NodeId i=449, four-byte form */
    put(b, "\0\0\0\0\0\0\0\0", 8); /* ResponseHeader.timestamp */
    put32(b, request_id);          /* requestHandle */
    put32(b, 0);                   /* serviceResult */
    put(b, "\x00", 1);             /* serviceDiagnostics: empty DiagnosticInfo */
    put32(b, 0xFFFFFFFFu);         /* stringTable: null */
    put(b, "\x00\x00\x00", 3);     /* additionalHeader: empty ExtensionObject */
    put32(b, 0);                   /* serverProtocolVersion */
    put32(b, channel_id);          /* securityToken.channelId */
    put32(b, token_id);
    put(b, "\0\0\0\0\0\0\0\0", 8); /* createdAt */
    put32(b, lifetime);
    put32(b, 0); /* serverNonce: empty */
    end_message(b, m);
}

static void msg_chunk(bytes *b, char chunk_type, uint32_t token_id, uint32_t sequence,
                      uint32_t request_id, const void *body, size_t length)
{
    char head[5] = {'M', 'S', 'G', chunk_type, 0};
    size_t m = begin_message(b, head);
    put32(b, CHANNEL_ID);
    put32(b, token_id);
    put32(b, sequence);
    put32(b, request_id);
    put(b, body, length);
    end_message(b, m);
}

/* ---- the client side ------------------------------------------------------------------- */

typedef struct recorder {
    int opened;
    int messages;
    uint32_t message_id;
    bytes message;
    int failures;
    uint32_t failed_id;
    uarc_status failed_status;
    char failed_reason[256];
    int closes;
    uarc_status closed_status;
    char closed_reason[256];
} recorder;

static void on_opened(void *u)
{
    ((recorder *)u)->opened++;
}

static void on_message(void *u, uint32_t id, const uint8_t *body, size_t length)
{
    recorder *r = u;
    r->messages++;
    r->message_id = id;
    r->message.n = 0;
    put(&r->message, body, length);
}

static void on_failed(void *u, uint32_t id, uarc_status status, const char *reason)
{
    recorder *r = u;
    r->failures++;
    r->failed_id = id;
    r->failed_status = status;
    snprintf(r->failed_reason, sizeof r->failed_reason, "%s", reason);
}

static void on_closed(void *u, uarc_status status, const char *reason)
{
    recorder *r = u;
    r->closes++;
    r->closed_status = status;
    snprintf(r->closed_reason, sizeof r->closed_reason, "%s", reason);
}

typedef struct fixture {
    recorder rec;
    uarc__channel *ch;
    bytes out; /* what the channel wrote */
    bytes in;  /* scratch for server messages */
    uint32_t server_sequence;
} fixture;

static fixture *new_fixture(const uarc__channel_config *config)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    uarc__channel_events events = {on_opened, on_message, on_failed, on_closed, &f->rec};
    uarc__channel_config defaults = {.endpoint_url = URL};
    f->ch = uarc__channel_new(config ? config : &defaults, &events);
    assert_non_null(f->ch);
    f->server_sequence = 51;
    return f;
}

static void free_fixture(fixture *f)
{
    uarc__channel_delete(f->ch);
    free(f);
}

/* Moves the channel's output into f->out (replacing it). */
static void take(fixture *f)
{
    const uint8_t *p;
    size_t n = uarc__channel_output(f->ch, &p);
    f->out.n = 0;
    if (n)
        put(&f->out, p, n);
    uarc__channel_output_done(f->ch, n);
}

static uarc_status feed(fixture *f, bytes *b, int64_t now)
{
    uarc_status s = uarc__channel_receive(f->ch, b->data, b->n, now);
    b->n = 0;
    return s;
}

static uarc_status feed_bytewise(fixture *f, bytes *b, int64_t now)
{
    uarc_status s = UARC_Good;
    for (size_t i = 0; i < b->n && s == UARC_Good; i++)
        s = uarc__channel_receive(f->ch, b->data + i, 1, now);
    b->n = 0;
    return s;
}

/* HEL → ACK → OPN → response: leaves the channel OPEN with CHANNEL_ID/TOKEN_ID. */
static void open_channel(fixture *f, uint32_t peer_receive, uint32_t peer_max_message,
                         uint32_t peer_max_chunks, uint32_t lifetime, int64_t now)
{
    assert_int_equal(uarc__channel_start(f->ch, now), UARC_Good);
    take(f);
    ack(&f->in, peer_receive, 65535, peer_max_message, peer_max_chunks);
    assert_int_equal(feed(f, &f->in, now), UARC_Good);
    take(f);
    assert_memory_equal(f->out.data, "OPNF", 4);
    uint32_t request_id = get32(f->out.data + 8 + 4 + 4 + 47 + 8 + 4);
    opn_response(&f->in, CHANNEL_ID, f->server_sequence++, request_id, TOKEN_ID, lifetime);
    assert_int_equal(feed(f, &f->in, now), UARC_Good);
    assert_int_equal(f->rec.opened, 1);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_OPEN);
}

/* Sends a small ReadRequest and returns its request id. */
static uint32_t send_read(fixture *f)
{
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    uint32_t id = 0;
    assert_int_equal(uarc__channel_send_request(f->ch, &request, UARC_T(ReadRequest), &id),
                     UARC_Good);
    return id;
}

static void server_reply(fixture *f, uint32_t token, uint32_t request_id, const char *text)
{
    msg_chunk(&f->in, 'F', token, f->server_sequence++, request_id, text, strlen(text));
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.message_id, request_id);
    assert_int_equal(f->rec.message.n, strlen(text));
    assert_memory_equal(f->rec.message.data, text, strlen(text));
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_hel_bytes(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    assert_int_equal(uarc__channel_start(f->ch, 0), UARC_Good);
    take(f);
    static const uint8_t expected[] = {'H',  'E',  'L', 'F', 48,  0,   0,   0, /* header, size 48 */
                                       0,    0,    0,   0,                     /* ProtocolVersion */
                                       0xFF, 0xFF, 0,   0, /* ReceiveBufferSize 65535 */
                                       0xFF, 0xFF, 0,   0, /* SendBufferSize 65535 */
                                       0,    0,    0,   1, /* MaxMessageSize 16 MiB */
                                       0,    0x10, 0,   0, /* MaxChunkCount 4096 */
                                       16,   0,    0,   0, /* EndpointUrl length */
                                       'o',  'p',  'c', '.', 't', 'c', 'p', ':',
                                       '/',  '/',  'h', ':', '4', '8', '4', '0'};
    assert_int_equal(f->out.n, sizeof expected);
    assert_memory_equal(f->out.data, expected, sizeof expected);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_HEL_SENT);
    assert_int_equal(uarc__channel_start(f->ch, 0), UARC_BadInvalidState);
    free_fixture(f);
}

static void test_config_rules(void **state)
{
    (void)state;
    uarc__channel_config c = {.endpoint_url = URL, .receive_buffer_size = 8191};
    assert_null(uarc__channel_new(&c, NULL));
    c = (uarc__channel_config){.endpoint_url = URL, .security_policy_uri = "urn:nope"};
    assert_null(uarc__channel_new(&c, NULL));
    char long_url[4200];
    memset(long_url, 'a', sizeof long_url - 1);
    long_url[sizeof long_url - 1] = '\0';
    c = (uarc__channel_config){.endpoint_url = long_url};
    assert_null(uarc__channel_new(&c, NULL));
    c = (uarc__channel_config){.endpoint_url = NULL};
    assert_null(uarc__channel_new(&c, NULL));
}

/* ACK → OPN Issue, byte for byte; then the response opens the channel. */
static void test_ack_and_opn_issue(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    assert_int_equal(uarc__channel_start(f->ch, 100), UARC_Good);
    take(f);
    ack(&f->in, 8192, 8192, 0, 0);
    assert_int_equal(feed(f, &f->in, 100), UARC_Good);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_OPN_SENT);
    assert_int_equal(uarc__channel_peer_receive_buffer_size(f->ch), 8192);
    take(f);

    bytes *e = calloc(1, sizeof *e);
    size_t m = begin_message(e, "OPNF");
    put32(e, 0); /* SecureChannelId: 0 for Issue */
    put_string(e, NONE_URI);
    put32(e, 0xFFFFFFFFu);         /* null certificate */
    put32(e, 0xFFFFFFFFu);         /* null thumbprint */
    put32(e, 1);                   /* SequenceNumber */
    put32(e, 1);                   /* RequestId */
    put(e, "\x01\x00\xBE\x01", 4); /* i=446 OpenSecureChannelRequest_Encoding_DefaultBinary */
    put(e, "\x00\x00", 2);         /* authenticationToken i=0 */
    put(e, "\0\0\0\0\0\0\0\0", 8); /* timestamp */
    put32(e, 1);                   /* requestHandle */
    put32(e, 0);                   /* returnDiagnostics */
    put32(e, 0xFFFFFFFFu);         /* auditEntryId */
    put32(e, 10000);               /* timeoutHint */
    put(e, "\x00\x00\x00", 3);     /* additionalHeader */
    put32(e, 0);                   /* clientProtocolVersion */
    put32(e, 0);                   /* requestType Issue */
    put32(e, 1);                   /* securityMode None */
    put32(e, 0);                   /* clientNonce: empty */
    put32(e, 600000);              /* requestedLifetime */
    end_message(e, m);
    assert_int_equal(f->out.n, e->n);
    assert_memory_equal(f->out.data, e->data, e->n);
    free(e);

    assert_int_equal(uarc__channel_next_deadline(f->ch), 100 + 10000);
    opn_response(&f->in, CHANNEL_ID, 51, 1, TOKEN_ID, 60000);
    assert_int_equal(feed_bytewise(f, &f->in, 200), UARC_Good);
    assert_int_equal(f->rec.opened, 1);
    assert_int_equal(uarc__channel_id(f->ch), CHANNEL_ID);
    assert_int_equal(uarc__channel_token_id(f->ch), TOKEN_ID);
    assert_int_equal(uarc__channel_revised_lifetime_ms(f->ch), 60000);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 200 + 45000);
    assert_string_equal(uarc__channel_security_policy_uri(f->ch), NONE_URI);
    free_fixture(f);
}

static void expect_closed(fixture *f, uarc_status status)
{
    assert_int_equal(f->rec.closes, 1);
    assert_int_equal(f->rec.closed_status, status);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_CLOSED);
}

static void test_ack_invalid(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    ack(&f->in, 4096, 65535, 0, 0); /* ReceiveBufferSize below 8192 */
    assert_int_equal(feed(f, &f->in, 0), UARC_BadTcpNotEnoughResources);
    expect_closed(f, UARC_BadTcpNotEnoughResources);
    free_fixture(f);

    f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    size_t m = begin_message(&f->in, "ACKF");
    put32(&f->in, 0);
    put32(&f->in, 65535);
    end_message(&f->in, m); /* too short */
    assert_int_equal(feed(f, &f->in, 0), UARC_BadDecodingError);
    expect_closed(f, UARC_BadDecodingError);
    free_fixture(f);
}

static void test_err_closes_with_status_and_reason(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    static const uint8_t err[] = {'E', 'R', 'R', 'F', 24,  0,   0,   0,   0x00, 0x00, 0x83, 0x80,
                                  8,   0,   0,   0,   'b', 'a', 'd', ' ', 'p',  'a',  't',  'h'};
    assert_int_equal(uarc__channel_receive(f->ch, err, sizeof err, 0),
                     UARC_BadTcpEndpointUrlInvalid);
    expect_closed(f, UARC_BadTcpEndpointUrlInvalid);
    assert_string_equal(f->rec.closed_reason, "bad path");
    assert_string_equal(uarc__channel_error(f->ch), "bad path");
    /* nothing more happens after closed */
    assert_int_equal(uarc__channel_receive(f->ch, err, sizeof err, 0),
                     UARC_BadTcpEndpointUrlInvalid);
    assert_int_equal(f->rec.closes, 1);
    free_fixture(f);

    /* ERR after the channel is open, with a null reason */
    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    size_t m = begin_message(&f->in, "ERRF");
    put32(&f->in, UARC_BadTcpServerTooBusy);
    put32(&f->in, 0xFFFFFFFFu);
    end_message(&f->in, m);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadTcpServerTooBusy);
    expect_closed(f, UARC_BadTcpServerTooBusy);
    free_fixture(f);

    /* a malformed ERR: the reason length runs past the message */
    f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    m = begin_message(&f->in, "ERRF");
    put32(&f->in, UARC_BadTcpServerTooBusy);
    put32(&f->in, 100);
    end_message(&f->in, m);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadDecodingError);
    free_fixture(f);
}

static void test_response_in_three_chunks_bytewise(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint32_t id = send_read(f);
    take(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "first-", 6);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "second-", 7);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "third", 5);
    assert_int_equal(feed_bytewise(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.messages, 1);
    assert_int_equal(f->rec.message_id, id);
    assert_int_equal(f->rec.message.n, 18);
    assert_memory_equal(f->rec.message.data, "first-second-third", 18);
    /* a second response for the same id is no longer expected: dropped */
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "again", 5);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.messages, 1);
    free_fixture(f);
}

static void test_interleaved_responses(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint32_t a = send_read(f), b = send_read(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, a, "a1", 2);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, b, "b1", 2);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, a, "a2", 2);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.message_id, a);
    assert_memory_equal(f->rec.message.data, "a1a2", 4);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, b, "b2", 2);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.message_id, b);
    assert_memory_equal(f->rec.message.data, "b1b2", 4);
    assert_int_equal(f->rec.messages, 2);
    free_fixture(f);
}

static void test_abort_chunk(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint32_t id = send_read(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "part", 4);
    bytes body = {.n = 0};
    put32(&body, UARC_BadResponseTooLarge);
    put_string(&body, "too big");
    msg_chunk(&f->in, 'A', TOKEN_ID, f->server_sequence++, id, body.data, body.n);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.failures, 1);
    assert_int_equal(f->rec.failed_id, id);
    assert_int_equal(f->rec.failed_status, UARC_BadResponseTooLarge);
    assert_string_equal(f->rec.failed_reason, "too big");
    assert_int_equal(f->rec.messages, 0);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_OPEN);
    /* the channel goes on */
    server_reply(f, TOKEN_ID, send_read(f), "ok");
    free_fixture(f);
}

/* A request the caller gave up on: its late response (first chunk before the forget, the rest
 * after) is dropped, and the next request is answered as usual. */
static void test_forgotten_request(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint32_t id = send_read(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "part", 4);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    uarc__channel_forget_request(f->ch, id);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "rest", 4);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.messages, 0);
    assert_int_equal(f->rec.failures, 0);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_OPEN);
    server_reply(f, TOKEN_ID, send_read(f), "ok");
    free_fixture(f);
}

static void test_response_over_our_limits(void **state)
{
    (void)state;
    uarc__channel_config c = {.endpoint_url = URL, .max_message_size = 10, .max_chunk_count = 3};
    fixture *f = new_fixture(&c);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint32_t id = send_read(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "123456", 6);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "789012", 6);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "x", 1);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.failures, 1);
    assert_int_equal(f->rec.failed_status, UARC_BadResponseTooLarge);
    assert_int_equal(f->rec.messages, 0);

    id = send_read(f); /* too many chunks */
    for (int i = 0; i < 3; i++)
        msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "1", 1);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "1", 1);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.failures, 2);
    assert_int_equal(f->rec.failed_id, id);

    id = send_read(f); /* one final chunk too large */
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "12345678901", 11);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.failures, 3);
    server_reply(f, TOKEN_ID, send_read(f), "fits");
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_OPEN);
    free_fixture(f);
}

static void test_oversize_header_rejected_before_body(void **state)
{
    (void)state;
    uarc__channel_config c = {.endpoint_url = URL, .receive_buffer_size = 8192};
    fixture *f = new_fixture(&c);
    open_channel(f, 65535, 0, 0, 60000, 0);
    static const uint8_t header[] = {'M', 'S', 'G', 'F', 0x01, 0x20, 0, 0}; /* 8193 bytes */
    assert_int_equal(uarc__channel_receive(f->ch, header, sizeof header, 0),
                     UARC_BadTcpMessageTooLarge);
    expect_closed(f, UARC_BadTcpMessageTooLarge);
    free_fixture(f);

    /* during the handshake too, and a huge size never allocates */
    f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    static const uint8_t huge[] = {'A', 'C', 'K', 'F', 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(uarc__channel_receive(f->ch, huge, sizeof huge, 0),
                     UARC_BadTcpMessageTooLarge);
    free_fixture(f);

    /* a size smaller than the header itself is malformed (BadDecodingError), not too large */
    f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    static const uint8_t tiny[] = {'A', 'C', 'K', 'F', 7, 0, 0, 0};
    assert_int_equal(uarc__channel_receive(f->ch, tiny, sizeof tiny, 0), UARC_BadDecodingError);
    free_fixture(f);
}

static void expect_type_invalid(const uint8_t header[8], bool open)
{
    fixture *f = new_fixture(NULL);
    if (open)
        open_channel(f, 65535, 0, 0, 60000, 0);
    else
        uarc__channel_start(f->ch, 0);
    assert_int_equal(uarc__channel_receive(f->ch, header, 8, 0), UARC_BadTcpMessageTypeInvalid);
    expect_closed(f, UARC_BadTcpMessageTypeInvalid);
    free_fixture(f);
}

static void test_wrong_message_types(void **state)
{
    (void)state;
    /* handshake: only ACK and ERR */
    expect_type_invalid((const uint8_t *)"MSGF\x20\0\0\0", false);
    expect_type_invalid((const uint8_t *)"OPNF\x20\0\0\0", false);
    expect_type_invalid((const uint8_t *)"HELF\x20\0\0\0", false);
    expect_type_invalid((const uint8_t *)"RHEF\x20\0\0\0", false);
    expect_type_invalid((const uint8_t *)"XYZF\x20\0\0\0", false);
    expect_type_invalid((const uint8_t *)"ACKC\x1c\0\0\0", false);
    /* open: OPN/MSG/CLO/ERR, OPN and CLO only as F */
    expect_type_invalid((const uint8_t *)"ACKF\x1c\0\0\0", true);
    expect_type_invalid((const uint8_t *)"HELF\x20\0\0\0", true);
    expect_type_invalid((const uint8_t *)"OPNC\x20\0\0\0", true);
    expect_type_invalid((const uint8_t *)"CLOA\x20\0\0\0", true);
    expect_type_invalid((const uint8_t *)"MSGX\x20\0\0\0", true);
    expect_type_invalid((const uint8_t *)"msgF\x20\0\0\0", true);

    /* an OPN response nobody asked for */
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    opn_response(&f->in, CHANNEL_ID, f->server_sequence++, 99, TOKEN_ID, 60000);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadTcpMessageTypeInvalid);
    free_fixture(f);

    /* a CLO from the server ends the channel */
    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    size_t m = begin_message(&f->in, "CLOF");
    put32(&f->in, CHANNEL_ID);
    put32(&f->in, TOKEN_ID);
    put32(&f->in, f->server_sequence++);
    put32(&f->in, 1);
    end_message(&f->in, m);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSecureChannelClosed);
    free_fixture(f);
}

static void test_wrong_channel_and_token(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    msg_chunk(&f->in, 'F', TOKEN_ID + 1, f->server_sequence++, 1, "x", 1);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSecureChannelTokenUnknown);
    free_fixture(f);

    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    size_t m = begin_message(&f->in, "MSGF");
    put32(&f->in, CHANNEL_ID + 1);
    put32(&f->in, TOKEN_ID);
    put32(&f->in, f->server_sequence++);
    put32(&f->in, 1);
    end_message(&f->in, m);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSecureChannelIdInvalid);
    free_fixture(f);

    /* an OPN response with another policy */
    f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    ack(&f->in, 65535, 65535, 0, 0);
    feed(f, &f->in, 0);
    m = begin_message(&f->in, "OPNF");
    put32(&f->in, CHANNEL_ID);
    put_string(&f->in, "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256");
    put32(&f->in, 0xFFFFFFFFu);
    put32(&f->in, 0xFFFFFFFFu);
    put32(&f->in, 1);
    put32(&f->in, 1);
    end_message(&f->in, m);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSecurityPolicyRejected);
    free_fixture(f);
}

static void test_sequence_numbers(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0); /* server sequence 51 */
    uint32_t id = send_read(f);
    msg_chunk(&f->in, 'F', TOKEN_ID, 53, id, "x", 1); /* 52 skipped */
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSequenceNumberInvalid);
    expect_closed(f, UARC_BadSequenceNumberInvalid);
    assert_int_equal(f->rec.messages, 0);
    free_fixture(f);

    /* a repeated number */
    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    msg_chunk(&f->in, 'F', TOKEN_ID, 51, 1, "x", 1);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSequenceNumberInvalid);
    free_fixture(f);

    /* the wrap: above 4294966271 the next may be below 1024 */
    f = new_fixture(NULL);
    f->server_sequence = 4294967000u;
    open_channel(f, 65535, 0, 0, 60000, 0);
    server_reply(f, TOKEN_ID, send_read(f), "a"); /* 4294967001 */
    f->server_sequence = 3;
    server_reply(f, TOKEN_ID, send_read(f), "b");
    server_reply(f, TOKEN_ID, send_read(f), "c");
    free_fixture(f);

    /* no wrap allowed from lower numbers */
    f = new_fixture(NULL);
    f->server_sequence = 4294966000u;
    open_channel(f, 65535, 0, 0, 60000, 0);
    msg_chunk(&f->in, 'F', TOKEN_ID, 3, 1, "x", 1);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSequenceNumberInvalid);
    free_fixture(f);

    /* our own numbers: +1 per chunk, and request ids distinct */
    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    take(f);
    uint32_t a = send_read(f), b = send_read(f);
    take(f);
    uint32_t first = get32(f->out.data + 4);
    assert_int_equal(get32(f->out.data + 16), 2); /* OPN was 1 */
    assert_int_equal(get32(f->out.data + 20), a);
    assert_int_equal(get32(f->out.data + first + 16), 3);
    assert_int_equal(get32(f->out.data + first + 20), b);
    assert_int_not_equal(a, b);
    free_fixture(f);
}

/* Parses the renewal OPN the channel wrote: returns its request id, checks RequestType Renew. */
static uint32_t check_renew(fixture *f)
{
    assert_memory_equal(f->out.data, "OPNF", 4);
    assert_int_equal(get32(f->out.data + 8), CHANNEL_ID);
    size_t seq = 8 + 4 + 4 + 47 + 4 + 4;
    uint32_t request_id = get32(f->out.data + seq + 4);
    size_t body = seq + 8;
    /* NodeId(4) RequestHeader(29) clientProtocolVersion(4) then requestType */
    assert_int_equal(get32(f->out.data + body + 4 + 29 + 4), 1);
    return request_id;
}

static void test_renewal(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 4000, 1000);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 1000 + 3000);
    uint32_t before = send_read(f);
    take(f);
    uarc__channel_tick(f->ch, 3999);
    take(f);
    assert_int_equal(f->out.n, 0);

    uarc__channel_tick(f->ch, 4000); /* 75 % of 4000 ms */
    take(f);
    uint32_t renew_id = check_renew(f);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 4000 + 10000);
    uarc__channel_tick(f->ch, 4001); /* nothing new while the renewal is in flight */
    take(f);
    assert_int_equal(f->out.n, 0);

    /* requests sent now still use the old token */
    uint32_t during = send_read(f);
    take(f);
    assert_int_equal(get32(f->out.data + 12), TOKEN_ID);
    server_reply(f, TOKEN_ID, before, "before");

    opn_response(&f->in, CHANNEL_ID, f->server_sequence++, renew_id, TOKEN_ID + 1, 8000);
    assert_int_equal(feed(f, &f->in, 5000), UARC_Good);
    assert_int_equal(f->rec.opened, 1); /* no second `opened` */
    assert_int_equal(uarc__channel_token_id(f->ch), TOKEN_ID + 1);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 5000 + 6000);

    uint32_t after = send_read(f);
    take(f);
    assert_int_equal(get32(f->out.data + 12), TOKEN_ID + 1);
    /* the server answers with the old token until it sees the new one */
    server_reply(f, TOKEN_ID, during, "during");
    server_reply(f, TOKEN_ID + 1, after, "after");
    /* once the new token is used, the old one is refused */
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, send_read(f), "late", 4);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSecureChannelTokenUnknown);
    free_fixture(f);
}

/* A reply under `token` to `request_id`, received at `now`. */
static uarc_status reply_at(fixture *f, uint32_t token, uint32_t request_id, int64_t now)
{
    msg_chunk(&f->in, 'F', token, f->server_sequence++, request_id, "late", 4);
    return feed(f, &f->in, now);
}

/* Renews at 75 % of the current token's lifetime; the new token `token` (lifetime `lifetime`)
 * arrives at `now`. */
static void renew_at(fixture *f, int64_t due, uint32_t token, uint32_t lifetime, int64_t now)
{
    assert_int_equal(uarc__channel_next_deadline(f->ch), due);
    uarc__channel_tick(f->ch, due);
    take(f);
    uint32_t renew_id = check_renew(f);
    opn_response(&f->in, CHANNEL_ID, f->server_sequence++, renew_id, token, lifetime);
    assert_int_equal(feed(f, &f->in, now), UARC_Good);
    assert_int_equal(uarc__channel_token_id(f->ch), token);
}

/* After a renewal the old token is accepted until 25 % of its own lifetime after it expired
 * (Part 4 §5.5.2.1), not for ever: a server still using it after that ends the channel, even
 * though it never used the new token. The clock is the caller's: nothing sleeps. */
static void test_renewal_overlap_ends(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 4000, 1000);
    uint32_t first = send_read(f), second = send_read(f);
    take(f);
    renew_at(f, 4000, TOKEN_ID + 1, 8000, 5000); /* issued at 1000, lifetime 4000: until 6000 */
    assert_int_equal(reply_at(f, TOKEN_ID, first, 5999), UARC_Good);
    assert_int_equal(f->rec.message_id, first);
    uarc__channel_tick(f->ch, 5999);
    assert_int_equal(reply_at(f, TOKEN_ID, second, 6000), UARC_BadSecureChannelTokenUnknown);
    assert_int_equal(f->rec.messages, 1);
    assert_int_equal(f->rec.closes, 1);
    assert_int_equal(f->rec.closed_status, UARC_BadSecureChannelTokenUnknown);
    assert_non_null(strstr(f->rec.closed_reason, "overlap"));
    free_fixture(f);

    /* each token's own lifetime counts; a tick past the overlap forgets the old keys too */
    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 4000, 1000);
    renew_at(f, 4000, TOKEN_ID + 1, 8000, 5000);
    renew_at(f, 5000 + 6000, TOKEN_ID + 2, 8000, 11500); /* issued 5000, 8000: until 15000 */
    uint32_t third = send_read(f), fourth = send_read(f);
    take(f);
    assert_int_equal(get32(f->out.data + 12), TOKEN_ID + 2);
    assert_int_equal(reply_at(f, TOKEN_ID + 1, third, 14999), UARC_Good);
    assert_int_equal(f->rec.message_id, third);
    uarc__channel_tick(f->ch, 15000);
    assert_int_equal(f->rec.closes, 0);
    assert_int_equal(reply_at(f, TOKEN_ID + 1, fourth, 15000), UARC_BadSecureChannelTokenUnknown);
    assert_int_equal(f->rec.messages, 1);
    free_fixture(f);
}

static void test_renewal_timeout(void **state)
{
    (void)state;
    uarc__channel_config c = {.endpoint_url = URL, .handshake_timeout_ms = 500};
    fixture *f = new_fixture(&c);
    open_channel(f, 65535, 0, 0, 4000, 0);
    uarc__channel_tick(f->ch, 3000);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 3500);
    uarc__channel_tick(f->ch, 3499);
    assert_int_equal(f->rec.closes, 0);
    uarc__channel_tick(f->ch, 3500);
    expect_closed(f, UARC_BadTimeout);
    assert_int_equal(uarc__channel_next_deadline(f->ch), -1);
    free_fixture(f);
}

/* A renewal must bring a new TokenId (Part 4 §5.5.2): the same id again is a protocol error, and
 * the old token is not swapped for keys nobody could tell apart from it. */
static void test_renewal_reusing_token_id(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 4000, 0);
    uint32_t read_id = send_read(f);
    take(f);
    uarc__channel_tick(f->ch, 3000);
    take(f);
    uint32_t renew_id = check_renew(f);
    opn_response(&f->in, CHANNEL_ID, f->server_sequence++, renew_id, TOKEN_ID, 4000);
    assert_int_equal(feed(f, &f->in, 3100), UARC_BadSecurityChecksFailed);
    expect_closed(f, UARC_BadSecurityChecksFailed);
    char want[128];
    snprintf(want, sizeof want,
             "OPN Renew: the new token has id %u, the id of the current token %u", TOKEN_ID,
             TOKEN_ID);
    assert_string_equal(f->rec.closed_reason, want);
    assert_string_equal(uarc__channel_error(f->ch), want);
    assert_int_equal(uarc__channel_next_deadline(f->ch), -1);
    assert_int_equal(f->rec.messages + f->rec.failures, 0);
    /* closed for good: nothing more is sent or delivered */
    take(f);
    assert_int_equal(f->out.n, 0);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, read_id, "late", 4);
    assert_int_equal(feed(f, &f->in, 3200), UARC_BadSecurityChecksFailed);
    assert_int_equal(f->rec.messages, 0);
    assert_int_equal(f->rec.closes, 1);
    free_fixture(f);
}

typedef struct log_count {
    int warnings;
    char last[256];
} log_count;

static void count_warnings(void *u, uarc_log_level level, const char *category, const char *text)
{
    log_count *c = u;
    (void)category;
    if (level == UARC_LOG_WARNING) {
        c->warnings++;
        snprintf(c->last, sizeof c->last, "%s", text);
    }
}

/* A server that revises the lifetime to a few ms does not get a renewal every few ms: the next
 * one is due 500 ms after the last token arrived, and the channel says so once. Lifetimes whose
 * 75 % is at least 500 ms keep it. */
static void test_renewal_floor(void **state)
{
    (void)state;
    log_count log = {0};
    uarc__channel_config c = {.endpoint_url = URL, .logger = {count_warnings, &log, 0}};
    fixture *f = new_fixture(&c);
    open_channel(f, 65535, 0, 0, 4, 1000);
    assert_int_equal(uarc__channel_revised_lifetime_ms(f->ch), 4);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 1000 + 500);
    assert_int_equal(log.warnings, 1);
    assert_non_null(strstr(log.last, "lifetime to 4 ms"));
    uarc__channel_tick(f->ch, 1003); /* 75 % of 4 ms is long past: still nothing */
    uarc__channel_tick(f->ch, 1499);
    take(f);
    assert_int_equal(f->out.n, 0);
    uint32_t token = TOKEN_ID;
    int64_t now = 1500;
    for (int i = 0; i < 3; i++) {
        uarc__channel_tick(f->ch, now);
        take(f);
        uint32_t renew_id = check_renew(f);
        /* answered at once, each time with a lifetime of 1 ms */
        opn_response(&f->in, CHANNEL_ID, f->server_sequence++, renew_id, ++token, 1);
        assert_int_equal(feed(f, &f->in, now + 2), UARC_Good);
        assert_int_equal(uarc__channel_token_id(f->ch), token);
        assert_int_equal(uarc__channel_next_deadline(f->ch), now + 2 + 500);
        uarc__channel_tick(f->ch, now + 2 + 499);
        take(f);
        assert_int_equal(f->out.n, 0);
        now += 2 + 500;
    }
    assert_int_equal(log.warnings, 1); /* once per channel, not once per renewal */
    assert_int_equal(f->rec.closes, 0);
    free_fixture(f);

    /* 75 % of 700 ms is 525 ms: the floor does not apply, nothing is logged */
    log = (log_count){0};
    f = new_fixture(&c);
    open_channel(f, 65535, 0, 0, 700, 0);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 525);
    assert_int_equal(log.warnings, 0);
    free_fixture(f);
}

static void test_handshake_timeouts(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    uarc__channel_start(f->ch, 50);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 10050);
    uarc__channel_tick(f->ch, 10049);
    assert_int_equal(f->rec.closes, 0);
    uarc__channel_tick(f->ch, 10050);
    expect_closed(f, UARC_BadTimeout);
    free_fixture(f);

    f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    ack(&f->in, 65535, 65535, 0, 0);
    feed(f, &f->in, 20);
    assert_int_equal(uarc__channel_next_deadline(f->ch), 10020);
    uarc__channel_tick(f->ch, 10020);
    expect_closed(f, UARC_BadTimeout);
    free_fixture(f);
}

static void test_opn_service_fault(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    uarc__channel_start(f->ch, 0);
    ack(&f->in, 65535, 65535, 0, 0);
    feed(f, &f->in, 0);
    size_t m = begin_message(&f->in, "OPNF");
    put32(&f->in, 0);
    put_string(&f->in, NONE_URI);
    put32(&f->in, 0xFFFFFFFFu);
    put32(&f->in, 0xFFFFFFFFu);
    put32(&f->in, 1);
    put32(&f->in, 1);
    put(&f->in, "\x01\x00\x8D\x01", 4); /* i=397 ServiceFault */
    put(&f->in, "\0\0\0\0\0\0\0\0", 8);
    put32(&f->in, 1);
    put32(&f->in, UARC_BadSecurityPolicyRejected);
    put(&f->in, "\x00", 1);
    put32(&f->in, 0xFFFFFFFFu);
    put(&f->in, "\x00\x00\x00", 3);
    end_message(&f->in, m);
    assert_int_equal(feed(f, &f->in, 0), UARC_BadSecurityPolicyRejected);
    expect_closed(f, UARC_BadSecurityPolicyRejected);
    free_fixture(f);
}

/* Fills a CreateSessionRequest whose certificate makes the body about `size` bytes. */
static uint8_t big_blob[40000];

static void big_request(uarc_CreateSessionRequest *r, size_t size)
{
    uarc_init(r, UARC_T(CreateSessionRequest));
    r->clientCertificate.data = big_blob;
    r->clientCertificate.length = size;
}

static void test_request_split_into_chunks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof big_blob; i++)
        big_blob[i] = (uint8_t)(i * 7);
    fixture *f = new_fixture(NULL);
    open_channel(f, 8192, 0, 0, 60000, 0);
    take(f);
    uarc_CreateSessionRequest r;
    big_request(&r, 20000);
    uint32_t id;
    assert_int_equal(uarc__channel_send_request(f->ch, &r, UARC_T(CreateSessionRequest), &id),
                     UARC_Good);
    take(f);

    uint8_t *expected;
    size_t expected_length;
    assert_int_equal(
        uarc_encode_alloc(&r, UARC_T(CreateSessionRequest), &expected, &expected_length),
        UARC_Good);
    bytes *joined = calloc(1, sizeof *joined);
    put(joined, "\x01\x00\xCD\x01", 4); /* i=461 CreateSessionRequest_Encoding_DefaultBinary */
    size_t pos = 0, chunks = 0;
    uint32_t sequence = 2;
    while (pos < f->out.n) {
        const uint8_t *c = f->out.data + pos;
        uint32_t size = get32(c + 4);
        assert_true(size <= 8192);
        assert_memory_equal(c, "MSG", 3);
        chunks++;
        assert_int_equal(c[3], pos + size == f->out.n ? 'F' : 'C');
        assert_int_equal(get32(c + 8), CHANNEL_ID);
        assert_int_equal(get32(c + 12), TOKEN_ID);
        assert_int_equal(get32(c + 16), sequence++);
        assert_int_equal(get32(c + 20), id);
        if (pos + size != f->out.n)
            assert_int_equal(size, 8192); /* intermediate chunks are full */
        /* collect the body to compare with the plain encoding */
        if (chunks == 1)
            assert_memory_equal(c + 24, "\x01\x00\xCD\x01", 4);
        pos += size;
    }
    assert_int_equal(chunks, 3);
    pos = 0;
    joined->n = 0;
    while (pos < f->out.n) {
        uint32_t size = get32(f->out.data + pos + 4);
        put(joined, f->out.data + pos + 24, size - 24);
        pos += size;
    }
    assert_int_equal(joined->n, 4 + expected_length);
    assert_memory_equal(joined->data + 4, expected, expected_length);
    uarc_free(expected);
    free(joined);
    free_fixture(f);
}

static void test_request_too_large(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 8192, 10000, 0, 60000, 0); /* server MaxMessageSize 10000 */
    take(f);
    uarc_CreateSessionRequest r;
    uint32_t id = 12345;
    big_request(&r, 9000);
    assert_int_equal(uarc__channel_send_request(f->ch, &r, UARC_T(CreateSessionRequest), &id),
                     UARC_Good);
    take(f);
    big_request(&r, 20000);
    assert_int_equal(uarc__channel_send_request(f->ch, &r, UARC_T(CreateSessionRequest), &id),
                     UARC_BadRequestTooLarge);
    take(f);
    assert_int_equal(f->out.n, 0);
    /* the failed request consumed no sequence number */
    send_read(f);
    take(f);
    assert_int_equal(get32(f->out.data + 16), 4);
    free_fixture(f);

    f = new_fixture(NULL);
    open_channel(f, 8192, 0, 2, 60000, 0); /* server MaxChunkCount 2 */
    big_request(&r, 16000);
    assert_int_equal(uarc__channel_send_request(f->ch, &r, UARC_T(CreateSessionRequest), &id),
                     UARC_Good);
    big_request(&r, 17000);
    assert_int_equal(uarc__channel_send_request(f->ch, &r, UARC_T(CreateSessionRequest), &id),
                     UARC_BadRequestTooLarge);
    free_fixture(f);
}

static void test_send_before_open(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    uint32_t id;
    assert_int_equal(uarc__channel_send_request(f->ch, &request, UARC_T(ReadRequest), &id),
                     UARC_BadInvalidState);
    uarc__channel_start(f->ch, 0);
    assert_int_equal(uarc__channel_send_request(f->ch, &request, UARC_T(ReadRequest), &id),
                     UARC_BadInvalidState);
    free_fixture(f);
}

static void test_clo_bytes(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    take(f);
    uarc__channel_close(f->ch);
    take(f);
    static const uint8_t expected[] = {'C',  'L',  'O',  'F',  57, 0, 0, 0, /* header */
                                       5,    0,    0,    0,                 /* SecureChannelId */
                                       7,    0,    0,    0,                 /* TokenId */
                                       2,    0,    0,    0,    /* SequenceNumber (OPN was 1) */
                                       2,    0,    0,    0,    /* RequestId */
                                       0x01, 0x00, 0xC4, 0x01, /* i=452 CloseSecureChannelRequest */
                                       0x00, 0x00,             /* authenticationToken */
                                       0,    0,    0,    0,    0,  0, 0, 0, /* timestamp */
                                       2,    0,    0,    0,                 /* requestHandle */
                                       0,    0,    0,    0,                 /* returnDiagnostics */
                                       0xFF, 0xFF, 0xFF, 0xFF,              /* auditEntryId */
                                       0,    0,    0,    0,                 /* timeoutHint */
                                       0x00, 0x00, 0x00};                   /* additionalHeader */
    assert_int_equal(f->out.n, sizeof expected);
    assert_memory_equal(f->out.data, expected, sizeof expected);
    expect_closed(f, UARC_Good);
    uarc__channel_close(f->ch);
    assert_int_equal(f->rec.closes, 1);
    free_fixture(f);
}

static void test_connection_lost(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    send_read(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, 2, "half", 4);
    feed(f, &f->in, 0);
    uarc__channel_connection_lost(f->ch, UARC_BadConnectionClosed, "peer closed");
    expect_closed(f, UARC_BadConnectionClosed);
    assert_string_equal(f->rec.closed_reason, "peer closed");
    free_fixture(f);
}

/* A callback closing the channel from inside `message`. */
static void close_on_message(void *u, uint32_t id, const uint8_t *body, size_t length)
{
    (void)id;
    (void)body;
    (void)length;
    uarc__channel_close(*(uarc__channel **)u);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uarc__channel *ch = f->ch;
    uarc__channel_delete(ch);
    uarc__channel_events events = {NULL, close_on_message, NULL, NULL, &f->ch};
    uarc__channel_config c = {.endpoint_url = URL};
    f->ch = uarc__channel_new(&c, &events);
    f->server_sequence = 51;
    f->rec.opened = 0;
    uarc__channel_start(f->ch, 0);
    ack(&f->in, 65535, 65535, 0, 0);
    feed(f, &f->in, 0);
    opn_response(&f->in, CHANNEL_ID, f->server_sequence++, 1, TOKEN_ID, 60000);
    feed(f, &f->in, 0);
    uint32_t id = send_read(f);
    msg_chunk(&f->in, 'C', TOKEN_ID, f->server_sequence++, id, "a", 1);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "b", 1);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "c", 1);
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_CLOSED);
    free_fixture(f);
}

/* ---- failing allocations ------------------------------------------------------------------ */

static long allocations_left;

static void *fail_malloc(size_t size, void *u)
{
    (void)u;
    return allocations_left-- > 0 ? malloc(size) : NULL;
}

static void *fail_realloc(void *p, size_t size, void *u)
{
    (void)u;
    return allocations_left-- > 0 ? realloc(p, size) : NULL;
}

static void fail_free(void *p, void *u)
{
    (void)u;
    free(p);
}

/* The whole conversation, tolerating any failure; returns true when it got to the end. */
static bool conversation_survives(void)
{
    recorder rec = {0};
    uarc__channel_events events = {on_opened, on_message, on_failed, on_closed, &rec};
    uarc__channel_config c = {.endpoint_url = URL, .receive_buffer_size = 8192};
    uarc__channel *ch = uarc__channel_new(&c, &events);
    if (!ch)
        return false;
    bytes *in = calloc(1, sizeof *in);
    const uint8_t *p;
    bool done = false;
    if (uarc__channel_start(ch, 0) != UARC_Good)
        goto out;
    ack(in, 8192, 8192, 0, 0);
    opn_response(in, CHANNEL_ID, 51, 1, TOKEN_ID, 60000);
    uarc__channel_receive(ch, in->data, in->n, 0);
    in->n = 0;
    uarc_CreateSessionRequest r;
    big_request(&r, 12000);
    uint32_t id = 0;
    if (rec.opened != 1 ||
        uarc__channel_send_request(ch, &r, UARC_T(CreateSessionRequest), &id) != UARC_Good)
        goto out;
    msg_chunk(in, 'C', TOKEN_ID, 52, id, big_blob, 8000);
    msg_chunk(in, 'F', TOKEN_ID, 53, id, big_blob, 5000);
    uarc__channel_receive(ch, in->data, in->n, 0);
    uarc__channel_tick(ch, 50000); /* renewal */
    uarc__channel_output_done(ch, uarc__channel_output(ch, &p));
    uarc__channel_close(ch);
    done = rec.messages == 1 && rec.closes == 1 && rec.closed_status == UARC_Good;
out:
    free(in);
    uarc__channel_delete(ch);
    return done;
}

static void test_failing_allocations(void **state)
{
    (void)state;
    uarc_allocator failing = {fail_malloc, fail_realloc, fail_free, NULL};
    bool survived = false;
    for (long n = 0; n < 400 && !survived; n++) {
        allocations_left = n;
        uarc_set_allocator(&failing);
        survived = conversation_survives();
        uarc_set_allocator(NULL);
    }
    assert_true(survived);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hel_bytes),
        cmocka_unit_test(test_config_rules),
        cmocka_unit_test(test_ack_and_opn_issue),
        cmocka_unit_test(test_ack_invalid),
        cmocka_unit_test(test_err_closes_with_status_and_reason),
        cmocka_unit_test(test_response_in_three_chunks_bytewise),
        cmocka_unit_test(test_interleaved_responses),
        cmocka_unit_test(test_abort_chunk),
        cmocka_unit_test(test_forgotten_request),
        cmocka_unit_test(test_response_over_our_limits),
        cmocka_unit_test(test_oversize_header_rejected_before_body),
        cmocka_unit_test(test_wrong_message_types),
        cmocka_unit_test(test_wrong_channel_and_token),
        cmocka_unit_test(test_sequence_numbers),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_renewal_overlap_ends),
        cmocka_unit_test(test_renewal_timeout),
        cmocka_unit_test(test_renewal_reusing_token_id),
        cmocka_unit_test(test_renewal_floor),
        cmocka_unit_test(test_handshake_timeouts),
        cmocka_unit_test(test_opn_service_fault),
        cmocka_unit_test(test_request_split_into_chunks),
        cmocka_unit_test(test_request_too_large),
        cmocka_unit_test(test_send_before_open),
        cmocka_unit_test(test_clo_bytes),
        cmocka_unit_test(test_connection_lost),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_failing_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
