/*
 * Listener against peers that do not send one good RHE: malformed frames (an error event, an ERR
 * with the parser's status, a close), peers that stop short or stay silent past the hello
 * timeout, peers that send one byte at a time or interleave, and a flood of garbage.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "listener_fixture.h"

/* Like expect_refusal for a peer that fails and gets no ERR: the socket just closes. */
static void expect_silent_failure(uarc_listener_config *o, const void *bytes, size_t length,
                                  bool close_after_send, uarc_status status, int bound_ms)
{
    events ev;
    uarc_listener *l = start(o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    if (length)
        send_all(fd, bytes, length);
    if (close_after_send) {
        close(fd);
        fd = -1;
    }
    assert_true(drive_until(l, &ev.errors, 1, bound_ms));
    assert_int_equal(ev.status, status);
    assert_string_equal(ev.peer, me);
    assert_int_equal(ev.accepted + ev.rejected + ev.hellos, 0);
    assert_int_equal(uarc_listener_pending_count(l), 0);
    if (fd >= 0) {
        expect_eof(fd);
        close(fd);
    }
    uarc_listener_delete(l);
}

/* ---- malformed frames: error event, ERR with the parser's status, close ---- */

static void refuse_malformed(const fake_frame *f, uarc_status status)
{
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    expect_refusal(&o, f->bytes, f->length, status, false, NULL);
    uarc_allowlist_delete(a);
}

static void test_wrong_message_type(void **state)
{
    (void)state;
    fake_frame f = {0};
    const char *http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    frame_bytes(&f, http, strlen(http));
    refuse_malformed(&f, UARC_BadTcpMessageTypeInvalid);

    /* A normal-direction HEL sent to the reverse listener is the wrong type too. */
    frame_begin(&f, "HELF");
    for (int i = 0; i < 5; i++)
        frame_u32(&f, 8192);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpMessageTypeInvalid);
}

static void test_chunk_type_not_f(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEC");
    frame_cstring(&f, SERVER_URI);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpMessageTypeInvalid);
}

static void test_message_too_large_header_only(void **state)
{
    (void)state;
    /* Only the header is sent: the answer must come without waiting for the body (the hello
     * timeout is far longer than the bound expect_refusal allows). */
    fake_frame f;
    frame_begin(&f, "RHEF");
    f.bytes[4] = 0x00, f.bytes[5] = 0x00, f.bytes[6] = 0x10, f.bytes[7] = 0x00; /* 1 MiB */
    refuse_malformed(&f, UARC_BadTcpMessageTooLarge);

    /* One byte over the spec's largest RHE. */
    uint32_t size = UARC_RHE_MAX_MESSAGE_SIZE + 1;
    frame_begin(&f, "RHEF");
    f.bytes[4] = (uint8_t)size, f.bytes[5] = (uint8_t)(size >> 8);
    refuse_malformed(&f, UARC_BadTcpMessageTooLarge);
}

static void test_message_too_large_configured(void **state)
{
    (void)state;
    /* max_message_size is honoured: a well-formed RHE above it is refused. */
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .max_message_size = 32};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    assert_true(f.length > 32);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpMessageTooLarge, false, NULL);
    uarc_allowlist_delete(a);
}

static void test_message_size_below_16(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_u32(&f, 0);
    frame_end(&f); /* MessageSize 12 */
    refuse_malformed(&f, UARC_BadDecodingError);
}

static void test_negative_string_length(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_string(&f, -2, NULL, 0);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadDecodingError);
}

static void test_string_running_past_frame(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_cstring(&f, SERVER_URI);
    frame_string(&f, 100, "opc.tcp://x", 11);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadDecodingError);
}

static void test_string_4096(void **state)
{
    (void)state;
    static char long_uri[4096];
    memset(long_uri, 'u', sizeof long_uri);
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_string(&f, 4096, long_uri, sizeof long_uri);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpEndpointUrlInvalid);

    static char long_url[4200];
    memcpy(long_url, "opc.tcp://h/", 12);
    memset(long_url + 12, 'p', sizeof long_url - 12);
    frame_begin(&f, "RHEF");
    frame_cstring(&f, SERVER_URI);
    frame_string(&f, 4096, long_url, 4096);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpEndpointUrlInvalid);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_string(&f, 20, SERVER_URI "\0evil", 20); /* 15 bytes, NUL, 4 bytes */
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpEndpointUrlInvalid);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_cstring(&f, SERVER_URI);
    frame_cstring(&f, ENDPOINT_URL);
    frame_bytes(&f, "xyz", 3);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadDecodingError);
}

/* ---- peers that stop short ---- */

static void test_peer_closes_after_nothing(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    expect_silent_failure(&o, NULL, 0, true, UARC_BadConnectionClosed, 3000);
}

static void test_peer_closes_inside_header(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    expect_silent_failure(&o, "RHE", 3, true, UARC_BadConnectionClosed, 3000);
}

static void test_peer_closes_inside_body(void **state)
{
    (void)state;
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    uarc_listener_config o = {0};
    expect_silent_failure(&o, f.bytes, f.length - 10, true, UARC_BadConnectionClosed, 3000);
}

static void test_peer_half_closes_inside_body(void **state)
{
    (void)state;
    /* shutdown(SHUT_WR) rather than close: the fake server can still see the listener hang up. */
    uarc_listener_config o = {0};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, 12);
    assert_true(drive_until_pending(l, 1, 3000));
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(drive_until(l, &ev.errors, 1, 3000));
    assert_int_equal(ev.status, UARC_BadConnectionClosed);
    expect_eof(fd);
    close(fd);
    uarc_listener_delete(l);
}

static void test_hello_timeout(void **state)
{
    (void)state;
    uarc_listener_config o = {.hello_timeout_ms = 200};
    /* Silent from the start. */
    expect_silent_failure(&o, NULL, 0, false, UARC_BadTimeout, 3000);

    /* Part of a frame, then silence: the deadline counts from the connection, not the bytes. */
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    expect_silent_failure(&o, f.bytes, f.length - 1, false, UARC_BadTimeout, 3000);
}

static void test_hello_timeout_not_early(void **state)
{
    (void)state;
    /* The deadline is a deadline: a peer still inside it is not dropped. */
    uarc_listener_config o = {.hello_timeout_ms = 2000};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int64_t connected = now_ms(); /* no later than the listener's accept */
    int fd = connect_to(uarc_listener_port(l));
    assert_true(drive_until_pending(l, 1, 1000));
    assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
    assert_int_equal(ev.errors, 0);
    assert_int_equal(uarc_listener_pending_count(l), 1);
    assert_true(drive_until(l, &ev.errors, 1, 4000));
    assert_int_equal(ev.status, UARC_BadTimeout);
    int64_t waited = now_ms() - connected;
    if (waited < 2000)
        fail_msg("dropped after %lld ms, inside the 2000 ms hello timeout", (long long)waited);
    expect_eof(fd);
    close(fd);
    uarc_listener_delete(l);
}

/* ---- slow, interleaved, silent and hostile peers ---- */

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    assert_true(drive_until_pending(l, 1, 3000));
    int theirs = far_end(fd);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    /* Each byte reaches the listener, which looks at it, before the next one is sent. */
    for (size_t i = 0; i + 1 < f.length; i++) {
        send_all(fd, &f.bytes[i], 1);
        wait_for(theirs, POLLIN);
        assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
        assert_int_equal(ev.hellos + ev.errors + ev.rejected, 0);
    }
    send_all(fd, &f.bytes[f.length - 1], 1);

    uarc_reverse_connection c;
    uarc_status s = uarc_listener_accept(l, 4000, &c);
    assert_int_equal(s, UARC_Good);
    assert_string_equal(c.server_uri, SERVER_URI);
    assert_string_equal(c.endpoint_url, ENDPOINT_URL);
    assert_int_equal(ev.hellos, 1);
    assert_int_equal(ev.accepted, 1);
    assert_int_equal(ev.errors + ev.rejected, 0);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_interleaved_servers(void **state)
{
    (void)state;
    uarc_allowlist *a = allow("urn:test:alpha", NULL);
    assert_int_equal(uarc_allowlist_add(a, "urn:test:beta", NULL), UARC_Good);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);

    int fa = connect_to(uarc_listener_port(l)), fb = connect_to(uarc_listener_port(l));
    char pa[UARC_PEER_SIZE], pb[UARC_PEER_SIZE];
    local_address(fa, pa, sizeof pa);
    local_address(fb, pb, sizeof pb);
    fake_frame ra, rb;
    frame_rhe(&ra, "urn:test:alpha", "opc.tcp://alpha.test:4840");
    frame_rhe(&rb, "urn:test:beta", "opc.tcp://beta.test:48400/a/longer/path");
    /* Alternate small pieces (3 bytes each, so headers are split too), letting the listener
     * run between them. */
    size_t ia = 0, ib = 0;
    while (ia < ra.length || ib < rb.length) {
        size_t na = ra.length - ia < 3 ? ra.length - ia : 3;
        size_t nb = rb.length - ib < 3 ? rb.length - ib : 3;
        if (na)
            send_all(fa, ra.bytes + ia, na);
        ia += na;
        assert_int_equal(uarc_listener_process(l, 1), UARC_Good);
        if (nb)
            send_all(fb, rb.bytes + ib, nb);
        ib += nb;
        assert_int_equal(uarc_listener_process(l, 1), UARC_Good);
    }
    assert_true(drive_until(l, &ev.accepted, 2, 3000));
    assert_int_equal(ev.hellos, 2);
    assert_int_equal(ev.errors + ev.rejected, 0);

    bool seen_alpha = false, seen_beta = false;
    for (int i = 0; i < 2; i++) {
        uarc_reverse_connection c;
        assert_true(uarc_listener_next(l, &c));
        if (strcmp(c.server_uri, "urn:test:alpha") == 0) {
            seen_alpha = true;
            assert_string_equal(c.endpoint_url, "opc.tcp://alpha.test:4840");
            assert_string_equal(c.peer, pa);
        } else {
            seen_beta = true;
            assert_string_equal(c.server_uri, "urn:test:beta");
            assert_string_equal(c.endpoint_url, "opc.tcp://beta.test:48400/a/longer/path");
            assert_string_equal(c.peer, pb);
        }
        /* Each accepted socket is the one its fake server holds. */
        assert_int_equal(send(c.fd, c.server_uri, 9, MSG_NOSIGNAL), 9);
        char buf[9];
        assert_true(recv_exact(strcmp(c.server_uri, "urn:test:alpha") == 0 ? fa : fb, buf, 9));
        assert_memory_equal(buf, c.server_uri, 9);
        uarc_reverse_connection_clear(&c);
    }
    assert_true(seen_alpha && seen_beta);
    close(fa);
    close(fb);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static uint32_t rng_state = 0x2545F491u;

static uint32_t rng(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* Sends what fits without blocking; the listener may close at any time. */
static void send_some(int fd, const uint8_t *data, size_t n)
{
    while (n) {
        ssize_t k = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k <= 0)
            return;
        data += k;
        n -= (size_t)k;
    }
}

#define FLOOD_COUNT 120

static void test_garbage_flood(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .hello_timeout_ms = 1000};
    events ev;
    uarc_listener *l = start(&o, &ev);
    static uint8_t junk[256 * 1024];
    static int fds[FLOOD_COUNT];
    for (int i = 0; i < FLOOD_COUNT; i++) {
        fds[i] = connect_to(uarc_listener_port(l));
        size_t n = 0;
        switch (i % 5) {
        case 0: /* a few random bytes */
            n = 8 + rng() % 64;
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            break;
        case 1: /* a big random payload */
            n = sizeof junk / 2 + rng() % (sizeof junk / 2);
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            break;
        case 2: /* an RHE header announcing a huge frame, then a lot of body */
            n = sizeof junk;
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            memcpy(junk, "RHEF\xff\xff\xff\x7f", 8);
            break;
        case 3: /* a frame of the largest allowed size full of random string lengths */
            n = UARC_RHE_MAX_MESSAGE_SIZE;
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            memcpy(junk, "RHEF", 4);
            junk[4] = (uint8_t)n, junk[5] = (uint8_t)(n >> 8), junk[6] = 0, junk[7] = 0;
            break;
        default: /* something that looks like HTTP */
            n = (size_t)snprintf((char *)junk, sizeof junk, "POST /%u HTTP/1.1\r\n\r\n", rng());
            break;
        }
        /* Random data never opens like an RHE, so every connection must fail on its own. */
        if (i % 5 < 2 && junk[0] == 'R')
            junk[0] = 'r';
        send_some(fds[i], junk, n);
        if (i % 10 == 9)
            assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
    }
    assert_true(drive_until(l, &ev.errors, FLOOD_COUNT, 5000));
    assert_int_equal(ev.accepted + ev.rejected, 0);
    for (int i = 0; i < FLOOD_COUNT; i++) {
        uarc_status s = ev.statuses[i];
        if (s != UARC_BadTcpMessageTypeInvalid && s != UARC_BadTcpMessageTooLarge &&
            s != UARC_BadDecodingError && s != UARC_BadTcpEndpointUrlInvalid)
            fail_msg("flood connection %d ended with %s", i, uarc_status_name(s));
    }
    assert_int_equal(uarc_listener_pending_count(l), 0);
    for (int i = 0; i < FLOOD_COUNT; i++)
        close(fds[i]);

    /* Still serving. */
    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_string_equal(c.server_uri, SERVER_URI);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

int main(void)
{
    raise_fd_limit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_message_type),
        cmocka_unit_test(test_chunk_type_not_f),
        cmocka_unit_test(test_message_too_large_header_only),
        cmocka_unit_test(test_message_too_large_configured),
        cmocka_unit_test(test_message_size_below_16),
        cmocka_unit_test(test_negative_string_length),
        cmocka_unit_test(test_string_running_past_frame),
        cmocka_unit_test(test_string_4096),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_peer_closes_after_nothing),
        cmocka_unit_test(test_peer_closes_inside_header),
        cmocka_unit_test(test_peer_closes_inside_body),
        cmocka_unit_test(test_peer_half_closes_inside_body),
        cmocka_unit_test(test_hello_timeout),
        cmocka_unit_test(test_hello_timeout_not_early),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_interleaved_servers),
        cmocka_unit_test(test_garbage_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
