/*
 * The secure channel's OPN exchange, from bytes written by hand (channel_peer.h): the Issue byte
 * for byte, renewals at 75 % of the token lifetime and their floor, the old token's overlap, a
 * reused token id, handshake and renewal timeouts, a ServiceFault for OPN.
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
    assert_false(uarc__channel_awaiting(f->ch));

    uarc__channel_tick(f->ch, 4000); /* 75 % of 4000 ms */
    take(f);
    uint32_t renew_id = check_renew(f);
    assert_true(uarc__channel_awaiting(f->ch)); /* its answer is awaited */
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
    assert_false(uarc__channel_awaiting(f->ch));

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_and_opn_issue),        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_renewal_overlap_ends),     cmocka_unit_test(test_renewal_timeout),
        cmocka_unit_test(test_renewal_reusing_token_id), cmocka_unit_test(test_renewal_floor),
        cmocka_unit_test(test_handshake_timeouts),       cmocka_unit_test(test_opn_service_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
