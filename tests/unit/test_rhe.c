/* RHE parser: every rule, from bytes written by hand after Part 6 §7.1.2.6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uarc/rhe.h"

/* Builds a frame: "RHEF", size, then the given body bytes. */
static size_t frame(uint8_t *out, const void *body, size_t body_len)
{
    uint32_t size = (uint32_t)(8 + body_len);
    memcpy(out, "RHEF", 4);
    out[4] = (uint8_t)size;
    out[5] = (uint8_t)(size >> 8);
    out[6] = (uint8_t)(size >> 16);
    out[7] = (uint8_t)(size >> 24);
    memcpy(out + 8, body, body_len);
    return size;
}

static size_t put_string(uint8_t *out, int32_t len, const char *s)
{
    uint32_t u = (uint32_t)len;
    out[0] = (uint8_t)u;
    out[1] = (uint8_t)(u >> 8);
    out[2] = (uint8_t)(u >> 16);
    out[3] = (uint8_t)(u >> 24);
    size_t n = len > 0 ? (size_t)len : 0;
    if (n && s)
        memcpy(out + 4, s, n);
    return 4 + n;
}

static uarc_rhe_result parse(const uint8_t *data, size_t len, uarc_rhe *hello, uarc_rhe_error *e)
{
    return uarc_rhe_parse(data, len, 0, hello, NULL, e);
}

/* The exact bytes node-opcua sends (PEERS.md): size 61, a 20- and a 25-byte string. */
static void test_node_opcua_frame(void **state)
{
    (void)state;
    static const uint8_t wire[] = "RHEF\x3d\x00\x00\x00"
                                  "\x14\x00\x00\x00urn:peer-node:server"
                                  "\x19\x00\x00\x00opc.tcp://127.0.0.1:35263";
    uarc_rhe hello;
    uarc_rhe_error e;
    assert_int_equal(parse(wire, sizeof wire - 1, &hello, &e), UARC_RHE_COMPLETE);
    assert_int_equal(hello.message_size, 61);
    assert_int_equal(hello.server_uri.length, 20);
    assert_memory_equal(hello.server_uri.data, "urn:peer-node:server", 20);
    assert_int_equal(hello.endpoint_url.length, 25);
    assert_memory_equal(hello.endpoint_url.data, "opc.tcp://127.0.0.1:35263", 25);
}

static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    uint8_t body[64], buf[80];
    size_t n = put_string(body, 5, "urn:a");
    n += put_string(body + n, 13, "opc.tcp://h:1");
    size_t size = frame(buf, body, n);
    for (size_t len = 0; len < size; len++) {
        size_t needed = 0;
        uarc_rhe_error e;
        assert_int_equal(uarc_rhe_parse(buf, len, 0, NULL, &needed, &e), UARC_RHE_NEED_MORE);
        assert_int_equal(needed, len < 8 ? 8 : size);
    }
    assert_int_equal(parse(buf, size, NULL, NULL), UARC_RHE_COMPLETE);
}

static void test_extra_bytes_after_frame_are_not_consumed(void **state)
{
    (void)state;
    uint8_t body[64], buf[96];
    size_t n = put_string(body, 5, "urn:a");
    n += put_string(body + n, 13, "opc.tcp://h:1");
    size_t size = frame(buf, body, n);
    memcpy(buf + size, "HELF", 4);
    uarc_rhe hello;
    assert_int_equal(parse(buf, size + 4, &hello, NULL), UARC_RHE_COMPLETE);
    assert_int_equal(hello.message_size, size);
}

static void expect_invalid(const uint8_t *buf, size_t len, uarc_status status, const char *detail)
{
    uarc_rhe_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(parse(buf, len, NULL, &e), UARC_RHE_INVALID);
    assert_int_equal(e.status, status);
    if (!strstr(e.detail, detail))
        fail_msg("detail \"%s\" does not mention \"%s\"", e.detail, detail);
}

static void test_wrong_message_type(void **state)
{
    (void)state;
    expect_invalid((const uint8_t *)"HELF\x10\0\0\0\0\0\0\0\0\0\0\0", 16,
                   UARC_BadTcpMessageTypeInvalid, "got \"HEL\"");
    /* Refused from the first wrong byte, before a whole header is in. */
    expect_invalid((const uint8_t *)"G", 1, UARC_BadTcpMessageTypeInvalid, "got \"G\"");
    expect_invalid((const uint8_t *)"RH\x01", 3, UARC_BadTcpMessageTypeInvalid, "RH\\x01");
}

static void test_chunk_type_not_final(void **state)
{
    (void)state;
    expect_invalid((const uint8_t *)"RHEC", 4, UARC_BadTcpMessageTypeInvalid, "chunk type");
    expect_invalid((const uint8_t *)"RHE\xff\x10\0\0\0", 8, UARC_BadTcpMessageTypeInvalid, "\\xff");
}

static void test_size_below_minimum(void **state)
{
    (void)state;
    expect_invalid((const uint8_t *)"RHEF\x0f\0\0\0", 8, UARC_BadDecodingError, "MessageSize 15");
    expect_invalid((const uint8_t *)"RHEF\0\0\0\0", 8, UARC_BadDecodingError, "MessageSize 0");
}

static void test_size_above_maximum_from_header_alone(void **state)
{
    (void)state;
    expect_invalid((const uint8_t *)"RHEF\xff\xff\xff\xff", 8, UARC_BadTcpMessageTooLarge,
                   "4294967295");
    /* The default maximum is the largest frame the spec allows. */
    uint8_t header[8];
    uint32_t over = UARC_RHE_MAX_MESSAGE_SIZE + 1;
    memcpy(header, "RHEF", 4);
    for (int i = 0; i < 4; i++)
        header[4 + i] = (uint8_t)(over >> (8 * i));
    expect_invalid(header, 8, UARC_BadTcpMessageTooLarge, "8207");
    /* A configured maximum applies too. */
    uarc_rhe_error e;
    assert_int_equal(uarc_rhe_parse((const uint8_t *)"RHEF\x40\0\0\0", 8, 63, NULL, NULL, &e),
                     UARC_RHE_INVALID);
    assert_int_equal(e.status, UARC_BadTcpMessageTooLarge);
    size_t needed = 0;
    assert_int_equal(uarc_rhe_parse((const uint8_t *)"RHEF\x40\0\0\0", 8, 64, NULL, &needed, &e),
                     UARC_RHE_NEED_MORE);
    assert_int_equal(needed, 64);
}

static void test_largest_frame_allowed(void **state)
{
    (void)state;
    static uint8_t body[UARC_RHE_MAX_MESSAGE_SIZE], buf[UARC_RHE_MAX_MESSAGE_SIZE + 8];
    static char s[4095];
    memset(s, 'u', sizeof s);
    memcpy(s, "opc.tcp://", 10);
    size_t n = put_string(body, 4095, s);
    n += put_string(body + n, 4095, s);
    size_t size = frame(buf, body, n);
    assert_int_equal(size, UARC_RHE_MAX_MESSAGE_SIZE);
    uarc_rhe hello;
    assert_int_equal(parse(buf, size, &hello, NULL), UARC_RHE_COMPLETE);
    assert_int_equal(hello.server_uri.length, 4095);
    assert_int_equal(hello.endpoint_url.length, 4095);
}

static void test_string_of_4096_bytes(void **state)
{
    (void)state;
    static uint8_t body[8300], buf[8400];
    static char s[4096];
    memset(s, 'a', sizeof s);
    size_t n = put_string(body, 4096, s);
    n += put_string(body + n, 0, NULL);
    size_t size = frame(buf, body, n);
    uarc_rhe_error e;
    assert_int_equal(uarc_rhe_parse(buf, size, 9000, NULL, NULL, &e), UARC_RHE_INVALID);
    assert_int_equal(e.status, UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(e.detail, "ServerUri: 4096 bytes"));
    /* The same for EndpointUrl. */
    n = put_string(body, 0, NULL);
    n += put_string(body + n, 4096, s);
    size = frame(buf, body, n);
    assert_int_equal(uarc_rhe_parse(buf, size, 9000, NULL, NULL, &e), UARC_RHE_INVALID);
    assert_int_equal(e.status, UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(e.detail, "EndpointUrl: 4096 bytes"));
}

static void test_negative_length(void **state)
{
    (void)state;
    uint8_t body[32], buf[48];
    size_t n = put_string(body, -2, NULL);
    n += put_string(body + n, 0, NULL);
    expect_invalid(buf, frame(buf, body, n), UARC_BadDecodingError,
                   "ServerUri: invalid string length -2");
    n = put_string(body, 0, NULL);
    n += put_string(body + n, INT32_MIN, NULL);
    expect_invalid(buf, frame(buf, body, n), UARC_BadDecodingError, "EndpointUrl: invalid");
}

static void test_null_and_empty_strings_decode_as_missing(void **state)
{
    (void)state;
    uint8_t body[32], buf[48];
    size_t n = put_string(body, -1, NULL);
    n += put_string(body + n, 0, NULL);
    uarc_rhe hello;
    assert_int_equal(parse(buf, frame(buf, body, n), &hello, NULL), UARC_RHE_COMPLETE);
    assert_int_equal(hello.server_uri.length, 0);
    assert_int_equal(hello.endpoint_url.length, 0);
    assert_int_equal(hello.message_size, 16);
}

static void test_string_past_frame(void **state)
{
    (void)state;
    uint8_t body[64], buf[80];
    size_t n = put_string(body, 5, "urn:a");
    n += put_string(body + n, 20, "opc.tcp://xxxxxxxxxx");
    /* Frame declares only what was written: 11 of the 20 EndpointUrl bytes. */
    expect_invalid(buf, frame(buf, body, n - 9), UARC_BadDecodingError,
                   "EndpointUrl: string of 20 bytes runs past");
    /* Length field itself cut off. */
    n = put_string(body, 5, "urn:a");
    expect_invalid(buf, frame(buf, body, n + 2), UARC_BadDecodingError,
                   "EndpointUrl: length field runs past");
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    uint8_t body[64], buf[80];
    size_t n = put_string(body, 5, "urn:a");
    n += put_string(body + n, 13, "opc.tcp://h:1");
    memcpy(body + n, "xyz", 3);
    expect_invalid(buf, frame(buf, body, n + 3), UARC_BadDecodingError,
                   "3 bytes left after EndpointUrl");
}

static void test_embedded_nul(void **state)
{
    (void)state;
    uint8_t body[64], buf[80];
    size_t n = put_string(body, 11, "urn:a\0evil!");
    n += put_string(body + n, 13, "opc.tcp://h:1");
    expect_invalid(buf, frame(buf, body, n), UARC_BadTcpEndpointUrlInvalid,
                   "ServerUri: NUL byte at offset 5 in \"urn:a\\x00evil!\"");
    n = put_string(body, 5, "urn:a");
    n += put_string(body + n, 14, "opc.tcp://h\0:1");
    expect_invalid(buf, frame(buf, body, n), UARC_BadTcpEndpointUrlInvalid, "EndpointUrl: NUL");
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t written = 0;
    uarc_view uri = {(const uint8_t *)"urn:x", 5}, url = {(const uint8_t *)"opc.tcp://h", 11};
    assert_int_equal(uarc_rhe_encode(uri, url, buf, sizeof buf, &written), UARC_Good);
    assert_int_equal(written, 8 + 4 + 5 + 4 + 11);
    assert_memory_equal(buf, "RHEF\x20\0\0\0\x05\0\0\0urn:x\x0b\0\0\0opc.tcp://h", written);
    assert_int_equal(uarc_rhe_encode(uri, url, buf, 10, &written), UARC_BadEncodingLimitsExceeded);
    /* NULL data encodes the null string. */
    assert_int_equal(uarc_rhe_encode((uarc_view){NULL, 0}, url, buf, sizeof buf, &written),
                     UARC_Good);
    assert_memory_equal(buf + 8, "\xff\xff\xff\xff", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_opcua_frame),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_extra_bytes_after_frame_are_not_consumed),
        cmocka_unit_test(test_wrong_message_type),
        cmocka_unit_test(test_chunk_type_not_final),
        cmocka_unit_test(test_size_below_minimum),
        cmocka_unit_test(test_size_above_maximum_from_header_alone),
        cmocka_unit_test(test_largest_frame_allowed),
        cmocka_unit_test(test_string_of_4096_bytes),
        cmocka_unit_test(test_negative_length),
        cmocka_unit_test(test_null_and_empty_strings_decode_as_missing),
        cmocka_unit_test(test_string_past_frame),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_encode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
