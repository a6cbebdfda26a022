/*
 * The secure channel tests' two sides: the server's messages built byte by byte after Part 6
 * §7.1.2 (HEL/ACK/ERR) and §6.7.2 (OPN/MSG/CLO chunks), never with the library's encoder, and a
 * channel under test with a recorder of its events. Include after <cmocka.h>.
 */
#ifndef UARC_TESTS_CHANNEL_PEER_H
#define UARC_TESTS_CHANNEL_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static inline void put(bytes *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->data);
    memcpy(b->data + b->n, p, n);
    b->n += n;
}

static inline void put32(bytes *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}

static inline void put_string(bytes *b, const char *s)
{
    if (!s) {
        put32(b, 0xFFFFFFFFu);
        return;
    }
    put32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Starts a message "TTTc" with a size placeholder; end_message() patches the size. */
static inline size_t begin_message(bytes *b, const char *type_and_chunk)
{
    size_t start = b->n;
    put(b, type_and_chunk, 4);
    put32(b, 0);
    return start;
}

static inline void end_message(bytes *b, size_t start)
{
    uint32_t size = (uint32_t)(b->n - start);
    b->data[start + 4] = (uint8_t)size;
    b->data[start + 5] = (uint8_t)(size >> 8);
    b->data[start + 6] = (uint8_t)(size >> 16);
    b->data[start + 7] = (uint8_t)(size >> 24);
}

static inline void ack(bytes *b, uint32_t receive, uint32_t send, uint32_t max_message,
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
static inline void opn_response(bytes *b, uint32_t channel_id, uint32_t sequence,
                                uint32_t request_id, uint32_t token_id, uint32_t lifetime)
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

static inline void msg_chunk(bytes *b, char chunk_type, uint32_t token_id, uint32_t sequence,
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

static inline void on_opened(void *u)
{
    ((recorder *)u)->opened++;
}

static inline void on_message(void *u, uint32_t id, const uint8_t *body, size_t length)
{
    recorder *r = u;
    r->messages++;
    r->message_id = id;
    r->message.n = 0;
    put(&r->message, body, length);
}

static inline void on_failed(void *u, uint32_t id, uarc_status status, const char *reason)
{
    recorder *r = u;
    r->failures++;
    r->failed_id = id;
    r->failed_status = status;
    snprintf(r->failed_reason, sizeof r->failed_reason, "%s", reason);
}

static inline void on_closed(void *u, uarc_status status, const char *reason)
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

static inline fixture *new_fixture(const uarc__channel_config *config)
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

static inline void free_fixture(fixture *f)
{
    uarc__channel_delete(f->ch);
    free(f);
}

/* Moves the channel's output into f->out (replacing it). */
static inline void take(fixture *f)
{
    const uint8_t *p;
    size_t n = uarc__channel_output(f->ch, &p);
    f->out.n = 0;
    if (n)
        put(&f->out, p, n);
    uarc__channel_output_done(f->ch, n);
}

static inline uarc_status feed(fixture *f, bytes *b, int64_t now)
{
    uarc_status s = uarc__channel_receive(f->ch, b->data, b->n, now);
    b->n = 0;
    return s;
}

static inline uarc_status feed_bytewise(fixture *f, bytes *b, int64_t now)
{
    uarc_status s = UARC_Good;
    for (size_t i = 0; i < b->n && s == UARC_Good; i++)
        s = uarc__channel_receive(f->ch, b->data + i, 1, now);
    b->n = 0;
    return s;
}

/* HEL → ACK → OPN → response: leaves the channel OPEN with CHANNEL_ID/TOKEN_ID. */
static inline void open_channel(fixture *f, uint32_t peer_receive, uint32_t peer_max_message,
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
static inline uint32_t send_read(fixture *f)
{
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    uint32_t id = 0;
    assert_int_equal(uarc__channel_send_request(f->ch, &request, UARC_T(ReadRequest), &id),
                     UARC_Good);
    return id;
}

static inline void server_reply(fixture *f, uint32_t token, uint32_t request_id, const char *text)
{
    msg_chunk(&f->in, 'F', token, f->server_sequence++, request_id, text, strlen(text));
    assert_int_equal(feed(f, &f->in, 0), UARC_Good);
    assert_int_equal(f->rec.message_id, request_id);
    assert_int_equal(f->rec.message.n, strlen(text));
    assert_memory_equal(f->rec.message.data, text, strlen(text));
}

static inline void expect_closed(fixture *f, uarc_status status)
{
    assert_int_equal(f->rec.closes, 1);
    assert_int_equal(f->rec.closed_status, status);
    assert_int_equal(uarc__channel_get_state(f->ch), UARC__CHANNEL_CLOSED);
}

#endif
