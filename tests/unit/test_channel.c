/*
 * Secure channel state machine, from bytes written by hand (channel_peer.h): HEL/ACK/ERR, MSG
 * chunks joined and checked, requests split into chunks, CLO, failing allocations. The OPN
 * exchange (Issue, renewals, token overlap) is in test_channel_open.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel_peer.h"

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

/* ---- the output buffer's size ------------------------------------------------------------- */

/* Bytes held through the allocator, each block's size kept in front of it. */
static size_t live_bytes;

static void *count_malloc(size_t size, void *u)
{
    (void)u;
    size_t *p = malloc(sizeof(size_t) * 2 + size);
    if (!p)
        return NULL;
    p[0] = size;
    live_bytes += size;
    return p + 2;
}

static void count_free(void *q, void *u)
{
    (void)u;
    if (!q)
        return;
    size_t *p = (size_t *)q - 2;
    live_bytes -= p[0];
    free(p);
}

static void *count_realloc(void *q, size_t size, void *u)
{
    void *grown = count_malloc(size, u);
    if (grown && q) {
        size_t old = ((size_t *)q - 2)[0];
        memcpy(grown, q, old < size ? old : size);
        count_free(q, u);
    }
    return grown;
}

/* A short request reserves what it needs, not a chunk of the peer's 64 KiB buffer, also behind
 * output not yet sent; a big buffer goes once its bytes are sent. */
static void test_output_buffer_sized_and_released(void **state)
{
    (void)state;
    uarc_allocator counting = {count_malloc, count_realloc, count_free, NULL};
    uarc_set_allocator(&counting);
    fixture *f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    take(f);
    size_t before = live_bytes;
    send_read(f);
    send_read(f); /* behind the first, not yet taken */
    assert_true(live_bytes - before < 8192);
    take(f);
    uarc_CreateSessionRequest r;
    big_request(&r, sizeof big_blob);
    uint32_t id;
    assert_int_equal(uarc__channel_send_request(f->ch, &r, UARC_T(CreateSessionRequest), &id),
                     UARC_Good);
    assert_true(live_bytes - before >= sizeof big_blob);
    take(f);
    assert_true(live_bytes <= before + 8192);
    free_fixture(f);
    uarc_set_allocator(NULL);
    assert_int_equal(live_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hel_bytes),
        cmocka_unit_test(test_config_rules),
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
        cmocka_unit_test(test_request_split_into_chunks),
        cmocka_unit_test(test_request_too_large),
        cmocka_unit_test(test_send_before_open),
        cmocka_unit_test(test_clo_bytes),
        cmocka_unit_test(test_connection_lost),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_failing_allocations),
        cmocka_unit_test(test_output_buffer_sized_and_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
