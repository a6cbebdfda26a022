/*
 * The chunk codec's padding, signature and encryption placement (Part 6 §6.7.2.5), driven by a toy
 * security policy: SecurityPolicy None makes them all zero, so this is what proves the generic path
 * the real policies will take. The toy "encryption" is reversible and expands asymmetric blocks
 * (11 plaintext bytes → 16 ciphertext bytes) like RSA; its "signature" is a checksum.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "channel/chunk.h"

typedef struct toy {
    bool extra_padding;
    size_t signature_size;
} toy;

static void toy_layout(const void *context, bool sending, uarc__chunk_layout *out)
{
    (void)sending;
    const toy *t = context;
    *out = (uarc__chunk_layout){true, true, 11, 16, t->signature_size, t->extra_padding};
}

static void toy_sym_layout(const void *context, uarc__chunk_layout *out)
{
    const toy *t = context;
    *out = (uarc__chunk_layout){true, true, 16, 16, t->signature_size, false};
}

static void checksum(const uint8_t *data, size_t length, uint8_t *signature, size_t size)
{
    memset(signature, 0, size);
    for (size_t i = 0; i < length; i++)
        signature[i % size] = (uint8_t)(signature[i % size] * 31 + data[i] + 1);
}

static uarc_status toy_sign(void *context, const uint8_t *data, size_t length, uint8_t *signature)
{
    checksum(data, length, signature, ((toy *)context)->signature_size);
    return UARC_Good;
}

static uarc_status toy_verify(void *context, const uint8_t *data, size_t length,
                              const uint8_t *signature)
{
    uint8_t expected[64];
    size_t size = ((toy *)context)->signature_size;
    checksum(data, length, expected, size);
    return memcmp(expected, signature, size) == 0 ? UARC_Good : UARC_BadSecurityChecksFailed;
}

/* Each 11-byte block becomes 16 bytes: XORed bytes and five 0xEE; last block first. */
static uarc_status toy_encrypt(void *context, uint8_t *data, size_t length, size_t capacity)
{
    (void)context;
    assert_int_equal(length % 11, 0);
    size_t blocks = length / 11;
    assert_true(blocks * 16 <= capacity);
    for (size_t b = blocks; b-- > 0;) {
        uint8_t block[11];
        memcpy(block, data + b * 11, 11);
        for (int i = 0; i < 11; i++)
            data[b * 16 + (size_t)i] = block[i] ^ 0x5A;
        memset(data + b * 16 + 11, 0xEE, 5);
    }
    return UARC_Good;
}

static uarc_status toy_decrypt(void *context, uint8_t *data, size_t length, size_t *plain_length)
{
    (void)context;
    if (length % 16)
        return UARC_BadSecurityChecksFailed;
    for (size_t b = 0; b < length / 16; b++) {
        for (int i = 0; i < 11; i++)
            data[b * 11 + (size_t)i] = data[b * 16 + (size_t)i] ^ 0x5A;
    }
    *plain_length = length / 16 * 11;
    return UARC_Good;
}

static uarc_status toy_sym_sign(const void *keys, const uint8_t *data, size_t length,
                                uint8_t *signature)
{
    checksum(data, length, signature, ((const toy *)keys)->signature_size);
    return UARC_Good;
}

static uarc_status toy_sym_verify(const void *keys, const uint8_t *data, size_t length,
                                  const uint8_t *signature)
{
    return toy_verify((void *)(uintptr_t)keys, data, length, signature);
}

static uarc_status toy_sym_crypt(const void *keys, uint8_t *data, size_t length)
{
    (void)keys;
    if (length % 16)
        return UARC_BadSecurityChecksFailed;
    for (size_t i = 0; i < length; i++)
        data[i] ^= 0xA5;
    return UARC_Good;
}

static const uarc__security_policy toy_policy = {
    .uri = "urn:toy",
    .asym_layout = toy_layout,
    .asym_sign = toy_sign,
    .asym_verify = toy_verify,
    .asym_encrypt = toy_encrypt,
    .asym_decrypt = toy_decrypt,
    .sym_layout = toy_sym_layout,
    .sym_sign = toy_sym_sign,
    .sym_verify = toy_sym_verify,
    .sym_encrypt = toy_sym_crypt,
    .sym_decrypt = toy_sym_crypt,
};

static uint8_t body[9000];

static void round_trip(toy *t, uarc__uatcp_type type, size_t max_chunk)
{
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 13 + 1);
    uarc__chunk_security security = {&toy_policy, t, t};
    uarc__chunk_info info = {.type = type,
                             .chunk_type = 'F',
                             .channel_id = 9,
                             .token_id = 3,
                             .sequence_number = 77,
                             .request_id = 5};
    if (type == UARC__UATCP_OPN) {
        info.policy_uri = (uarc_view){(const uint8_t *)"urn:toy", 7};
        info.sender_certificate = (uarc_view){(const uint8_t *)"CERT", 4};
        info.receiver_thumbprint = (uarc_view){NULL, 0};
    }
    size_t max_body = uarc__chunk_max_body(&security, &info, max_chunk);
    assert_true(max_body > 0 && max_body < max_chunk);
    static uint8_t buf[16384];
    /* every body size up to the maximum fits, and opens to the same body */
    for (size_t length = 0; length <= max_body; length += (length < 40 ? 1 : 97)) {
        info.body = body;
        info.body_length = length;
        size_t size = 0;
        assert_int_equal(uarc__chunk_encode(&security, &info, buf, max_chunk, &size), UARC_Good);
        assert_true(size <= max_chunk);
        uarc__chunk_info got;
        size_t header_size;
        assert_int_equal(uarc__chunk_parse_header(buf, size, &got, &header_size), UARC_Good);
        assert_int_equal(header_size, uarc__chunk_header_size(&info));
        assert_int_equal(got.channel_id, 9);
        if (type == UARC__UATCP_OPN) {
            assert_int_equal(got.sender_certificate.length, 4);
            assert_null(got.receiver_thumbprint.data);
        } else {
            assert_int_equal(got.token_id, 3);
        }
        assert_int_equal(uarc__chunk_open(&security, buf, size, header_size, &got), UARC_Good);
        assert_int_equal(got.sequence_number, 77);
        assert_int_equal(got.request_id, 5);
        assert_int_equal(got.body_length, length);
        if (length)
            assert_memory_equal(got.body, body, length);
    }
    /* the maximum body is tight: one more byte does not fit */
    info.body_length = max_body + 1;
    size_t size;
    uarc_status s = uarc__chunk_encode(&security, &info, buf, max_chunk, &size);
    assert_int_equal(s, UARC_BadEncodingLimitsExceeded);

    /* a flipped byte fails the signature */
    info.body_length = 100;
    assert_int_equal(uarc__chunk_encode(&security, &info, buf, max_chunk, &size), UARC_Good);
    buf[uarc__chunk_header_size(&info) + 3] ^= 1; /* inside the encrypted sequence header */
    uarc__chunk_info got;
    size_t header_size;
    assert_int_equal(uarc__chunk_parse_header(buf, size, &got, &header_size), UARC_Good);
    assert_int_equal(uarc__chunk_open(&security, buf, size, header_size, &got),
                     UARC_BadSecurityChecksFailed);
}

static void test_asymmetric_padding_and_signature(void **state)
{
    (void)state;
    toy t = {false, 20};
    round_trip(&t, UARC__UATCP_OPN, 8192);
    round_trip(&t, UARC__UATCP_OPN, 1000);
}

static void test_asymmetric_extra_padding(void **state)
{
    (void)state;
    toy t = {true, 32};
    round_trip(&t, UARC__UATCP_OPN, 8192);
}

static void test_symmetric_padding_and_signature(void **state)
{
    (void)state;
    toy t = {false, 32};
    round_trip(&t, UARC__UATCP_MSG, 8192);
    round_trip(&t, UARC__UATCP_MSG, 777);
}

/* Hand-built padding of a symmetric chunk: PaddingSize and padding bytes per Part 6. */
static void test_padding_bytes(void **state)
{
    (void)state;
    toy t = {false, 4};
    uarc__chunk_security security = {&toy_policy, &t, &t};
    uarc__chunk_info info = {.type = UARC__UATCP_MSG,
                             .chunk_type = 'F',
                             .channel_id = 1,
                             .token_id = 2,
                             .sequence_number = 3,
                             .request_id = 4,
                             .body = (const uint8_t *)"abc",
                             .body_length = 3};
    uint8_t buf[256];
    size_t size;
    assert_int_equal(uarc__chunk_encode(&security, &info, buf, sizeof buf, &size), UARC_Good);
    /* 16 header bytes, then seq(8) + body(3) + PaddingSize(1) + signature(4) is one block */
    assert_int_equal(size, 16 + 16);
    toy_sym_crypt(&t, buf + 16, 16); /* decrypt to look at the plaintext */
    assert_memory_equal(buf + 24, "abc", 3);
    assert_int_equal(buf[27], 0); /* PaddingSize 0 */

    info.body_length = 2; /* one padding byte needed */
    info.body = (const uint8_t *)"ab";
    assert_int_equal(uarc__chunk_encode(&security, &info, buf, sizeof buf, &size), UARC_Good);
    assert_int_equal(size, 32);
    toy_sym_crypt(&t, buf + 16, 16);
    assert_int_equal(buf[26], 1); /* PaddingSize */
    assert_int_equal(buf[27], 1); /* the padding byte holds the size too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asymmetric_padding_and_signature),
        cmocka_unit_test(test_asymmetric_extra_padding),
        cmocka_unit_test(test_symmetric_padding_and_signature),
        cmocka_unit_test(test_padding_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
