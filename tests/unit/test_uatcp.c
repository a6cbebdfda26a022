/* UA-TCP framing: message header rules, HEL encoding limits, ACK and ERR decoding (Part 6 §7.1.2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "transport/uatcp.h"

static void test_header(void **state)
{
    (void)state;
    uarc__uatcp_header h;
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"MSGC\x00\x01\x00\x00", 65535, &h),
                     UARC_Good);
    assert_int_equal(h.type, UARC__UATCP_MSG);
    assert_int_equal(h.chunk_type, 'C');
    assert_int_equal(h.size, 256);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"MSGA\x08\x00\x00\x00", 8, &h),
                     UARC_Good);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"MSGF\x09\x00\x00\x00", 8, &h),
                     UARC_BadTcpMessageTooLarge);
    /* shorter than its own header: malformed, not too large */
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"ACKF\x07\x00\x00\x00", 99, &h),
                     UARC_BadDecodingError);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"MSGF\x00\x00\x00\x00", 99, &h),
                     UARC_BadDecodingError);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"OPNC\x20\x00\x00\x00", 99, &h),
                     UARC_BadTcpMessageTypeInvalid);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"CLOA\x20\x00\x00\x00", 99, &h),
                     UARC_BadTcpMessageTypeInvalid);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"ERRC\x20\x00\x00\x00", 99, &h),
                     UARC_BadTcpMessageTypeInvalid);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"FOOF\x20\x00\x00\x00", 99, &h),
                     UARC_BadTcpMessageTypeInvalid);
    assert_int_equal(uarc__uatcp_parse_header((const uint8_t *)"RHEF\x10\x00\x00\x00", 99, &h),
                     UARC_Good);
    assert_int_equal(h.type, UARC__UATCP_RHE);
}

static void test_hel_limits(void **state)
{
    (void)state;
    static char url[4096];
    memset(url, 'u', sizeof url);
    static uint8_t out[5000];
    uarc__uatcp_limits l = {0, 8192, 8192, 0, 0};
    assert_int_equal(uarc__uatcp_encode_hel(out, sizeof out, &l, url, 4095), 32 + 4095);
    assert_int_equal(uarc__uatcp_encode_hel(out, sizeof out, &l, url, 4096), 0);
    assert_int_equal(uarc__uatcp_encode_hel(out, 40, &l, url, 9), 0);
    assert_int_equal(uarc__uatcp_encode_hel(out, 41, &l, url, 9), 41);
}

static void test_ack(void **state)
{
    (void)state;
    static const uint8_t ack[] = {'A', 'C', 'K', 'F',  28, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF,
                                  0,   0,   0,   0x20, 0,  0, 0, 0, 0, 1, 0, 1, 0,    0};
    uarc__uatcp_limits l;
    assert_int_equal(uarc__uatcp_decode_ack(ack, sizeof ack, &l), UARC_Good);
    assert_int_equal(l.receive_buffer_size, 65535);
    assert_int_equal(l.send_buffer_size, 8192);
    assert_int_equal(l.max_message_size, 16777216);
    assert_int_equal(l.max_chunk_count, 256);
    assert_int_equal(uarc__uatcp_decode_ack(ack, sizeof ack - 1, &l), UARC_BadDecodingError);
    uint8_t small[sizeof ack];
    memcpy(small, ack, sizeof ack);
    small[17] = 0x1F; /* SendBufferSize 8191 */
    assert_int_equal(uarc__uatcp_decode_ack(small, sizeof small, &l),
                     UARC_BadTcpNotEnoughResources);
}

/* What the shared ERR encoder writes, the decoder reads back. */
static void test_err_round_trip(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t n = uarc__uatcp_encode_err(out, sizeof out, UARC_BadTcpServerTooBusy, "busy");
    uarc_status status;
    const uint8_t *reason;
    size_t reason_length;
    assert_int_equal(uarc__uatcp_decode_err(out, n, &status, &reason, &reason_length), UARC_Good);
    assert_int_equal(status, UARC_BadTcpServerTooBusy);
    assert_int_equal(reason_length, 4);
    assert_memory_equal(reason, "busy", 4);
    /* null reason */
    static const uint8_t null_reason[] = {'E', 'R', 'R',  'F',  16,   0,    0,    0,
                                          0,   0,   0x7D, 0x80, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(
        uarc__uatcp_decode_err(null_reason, sizeof null_reason, &status, &reason, &reason_length),
        UARC_Good);
    assert_null(reason);
    /* trailing bytes, negative length, short */
    assert_int_equal(uarc__uatcp_decode_err(out, n - 1, &status, &reason, &reason_length),
                     UARC_BadDecodingError);
    static const uint8_t negative[] = {'E', 'R', 'R',  'F',  16,   0,    0,    0,
                                       0,   0,   0x7D, 0x80, 0xFE, 0xFF, 0xFF, 0xFF};
    assert_int_equal(
        uarc__uatcp_decode_err(negative, sizeof negative, &status, &reason, &reason_length),
        UARC_BadDecodingError);
    assert_int_equal(uarc__uatcp_decode_err(out, 15, &status, &reason, &reason_length),
                     UARC_BadDecodingError);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_hel_limits),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_err_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
