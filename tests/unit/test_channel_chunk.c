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
    const uarc__chunk_layout *layout; /* when set, what both layouts answer */
} toy;

static void toy_layout(const void *context, bool sending, uarc__chunk_layout *out)
{
    (void)sending;
    const toy *t = context;
    *out = t->layout
               ? *t->layout
               : (uarc__chunk_layout){true, true, 11, 16, t->signature_size, t->extra_padding};
}

static void toy_sym_layout(const void *context, uarc__chunk_layout *out)
{
    const toy *t = context;
    *out =
        t->layout ? *t->layout : (uarc__chunk_layout){true, true, 16, 16, t->signature_size, false};
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
    toy t = {false, 20, NULL};
    round_trip(&t, UARC__UATCP_OPN, 8192);
    round_trip(&t, UARC__UATCP_OPN, 1000);
}

static void test_asymmetric_extra_padding(void **state)
{
    (void)state;
    toy t = {true, 32, NULL};
    round_trip(&t, UARC__UATCP_OPN, 8192);
}

static void test_symmetric_padding_and_signature(void **state)
{
    (void)state;
    toy t = {false, 32, NULL};
    round_trip(&t, UARC__UATCP_MSG, 8192);
    round_trip(&t, UARC__UATCP_MSG, 777);
}

/* Hand-built padding of a symmetric chunk: PaddingSize and padding bytes per Part 6. */
static void test_padding_bytes(void **state)
{
    (void)state;
    toy t = {false, 4, NULL};
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

/* Layouts no sane policy gives (what a key the policy should have refused once produced: a
 * plaintext block of (size_t)(64 - 66)), and bodies and headers too large to add up: every size
 * computation refuses them instead of wrapping, and nothing is written. */
static void test_absurd_layouts(void **state)
{
    (void)state;
    static const uarc__chunk_layout absurd[] = {
        {true, true, 0, 16, 32, false},               /* empty plaintext block */
        {true, true, 16, 0, 32, false},               /* empty ciphertext block */
        {true, true, (size_t)64 - 66, 64, 64, false}, /* the wrapped OAEP block of a tiny key */
        {true, true, (size_t)64 - 66, 64, 64, true},
        {true, true, 64, 32, 32, false},         /* ciphertext smaller than plaintext */
        {true, true, 300, 512, 256, false},      /* a padding count over one byte */
        {true, true, 100000, 100000, 256, true}, /* over two bytes */
        {true, true, 16, 16, SIZE_MAX, false},   /* a signature no sum survives */
        {true, false, 1, 1, SIZE_MAX - 8, false},
        {true, true, 16, SIZE_MAX, 32, false},
    };
    static uint8_t buf[4096];
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        for (int asym = 0; asym < 2; asym++) {
            toy t = {false, 32, &absurd[i]};
            uarc__chunk_security security = {&toy_policy, &t, &t};
            uarc__chunk_info info = {.type = asym ? UARC__UATCP_OPN : UARC__UATCP_MSG,
                                     .chunk_type = 'F',
                                     .body = (const uint8_t *)"body",
                                     .body_length = 4};
            memset(buf, 0xAB, sizeof buf);
            size_t size = 12345;
            assert_int_equal(uarc__chunk_max_body(&security, &info, 8192), 0);
            assert_int_equal(uarc__chunk_encode(&security, &info, buf, 64, &size),
                             UARC_BadEncodingLimitsExceeded);
            assert_int_equal(size, 12345);
            assert_int_equal(buf[0], 0xAB);
            assert_int_equal(buf[64], 0xAB);
            /* a received chunk under such a layout is refused before anything is read */
            uarc__chunk_info got = info;
            size_t header = uarc__chunk_header_size(&info);
            assert_int_equal(uarc__chunk_open(&security, buf, header + 64, header, &got),
                             UARC_BadSecurityChecksFailed);
        }
    }

    /* a sane layout, but a body length or header no buffer could hold */
    toy t = {false, 32, NULL};
    uarc__chunk_security security = {&toy_policy, &t, &t};
    uarc__chunk_info info = {.type = UARC__UATCP_MSG, .chunk_type = 'F', .body = buf};
    size_t size = 0;
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 8, SIZE_MAX - 40, SIZE_MAX / 16 * 11};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        info.body_length = huge[i];
        assert_int_equal(uarc__chunk_encode(&security, &info, buf, sizeof buf, &size),
                         UARC_BadEncodingLimitsExceeded);
        assert_int_equal(uarc__chunk_encode(&security, &info, buf, SIZE_MAX, &size),
                         UARC_BadEncodingLimitsExceeded);
    }
    info.type = UARC__UATCP_OPN;
    info.body_length = 4;
    info.sender_certificate = (uarc_view){buf, SIZE_MAX / 2};
    info.receiver_thumbprint = (uarc_view){buf, SIZE_MAX / 2};
    assert_int_equal(uarc__chunk_header_size(&info), SIZE_MAX);
    assert_int_equal(uarc__chunk_max_body(&security, &info, SIZE_MAX), 0);
    assert_int_equal(uarc__chunk_encode(&security, &info, buf, SIZE_MAX, &size),
                     UARC_BadEncodingLimitsExceeded);
    /* a capacity smaller than the header */
    info.sender_certificate = info.receiver_thumbprint = (uarc_view){NULL, 0};
    assert_int_equal(uarc__chunk_encode(&security, &info, buf, 10, &size),
                     UARC_BadEncodingLimitsExceeded);
    /* a header longer than the chunk */
    assert_int_equal(uarc__chunk_open(&security, buf, 10, 20, &info), UARC_BadSecurityChecksFailed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asymmetric_padding_and_signature),
        cmocka_unit_test(test_asymmetric_extra_padding),
        cmocka_unit_test(test_symmetric_padding_and_signature),
        cmocka_unit_test(test_padding_bytes),
        cmocka_unit_test(test_absurd_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
