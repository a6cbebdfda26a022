/*
 * The RSA/AES security policies (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss) and
 * the certificate helpers.
 *
 * Known answers were computed independently of this code, with Python's hmac/hashlib and the
 * openssl command line:
 *
 *   def p_sha256(secret, seed, n):
 *       out = b""; a = seed
 *       while len(out) < n:
 *           a = hmac.new(secret, a, hashlib.sha256).digest()
 *           out += hmac.new(secret, a + seed, hashlib.sha256).digest()
 *       return out[:n]
 *   cn = bytes(range(32)); sn = bytes(range(0x20, 0x40))
 *   client = p_sha256(sn, cn, 80); server = p_sha256(cn, sn, 80)
 *   hmac.new(client[:32], bytes(range(48)), hashlib.sha256).digest()
 *   openssl enc -aes-256-cbc -K client[32:64] -iv client[64:80] -nopad  < bytes(range(48))
 *   openssl enc -aes-128-cbc -K client[32:48] -iv client[48:64] -nopad  < bytes(range(48))
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "channel/chunk.h"
#include "channel/crypto.h"
#include "channel/security.h"
#include "core/alloc.h"
#include "uarc/client.h"
#include "app_pair.h"
#include "rsa_keys.h"

static const uint8_t short_expected[40] = {
    0x8e, 0x4d, 0x93, 0x25, 0x30, 0xd7, 0x65, 0xa0, 0xaa, 0xe9, 0x74, 0xc3, 0x04, 0x73,
    0x5e, 0xcc, 0x12, 0x02, 0xa8, 0x19, 0xf8, 0x0a, 0xdb, 0xd5, 0xad, 0x09, 0xc1, 0xa3,
    0x4f, 0xc0, 0x69, 0x18, 0xe3, 0xd0, 0x77, 0x95, 0x21, 0x4d, 0x94, 0xc6};

static const uint8_t client_keys[80] = {
    0xdd, 0x58, 0x5d, 0xb0, 0xc1, 0x02, 0xdd, 0x1a, 0x4c, 0x1e, 0xd4, 0xdd, 0x19, 0x56, 0x06, 0xde,
    0xc3, 0xf7, 0xa1, 0xc7, 0x89, 0xaf, 0xca, 0x78, 0xf9, 0x47, 0x9e, 0xd3, 0xa5, 0xd6, 0x68, 0xaf,
    0xce, 0x49, 0xcb, 0x8f, 0x1c, 0x65, 0xa8, 0x27, 0xf4, 0x12, 0xc4, 0x8e, 0x71, 0xc9, 0xf9, 0xcb,
    0x3b, 0x5c, 0x2e, 0xe2, 0xfc, 0x2e, 0x4b, 0x3b, 0xd4, 0x6d, 0x40, 0x98, 0xb5, 0xe4, 0x54, 0x75,
    0xa7, 0x78, 0x32, 0xc6, 0x21, 0x5b, 0x6e, 0x7a, 0xb8, 0x5f, 0x2e, 0x66, 0x8b, 0xe7, 0xae, 0xff};

static const uint8_t server_keys[80] = {
    0xb7, 0x25, 0x93, 0xc4, 0x3f, 0xee, 0x5f, 0xaf, 0xa0, 0x25, 0x6c, 0xd6, 0xbb, 0x90, 0x4f, 0xf4,
    0x0c, 0x06, 0x6a, 0x22, 0x5d, 0xb9, 0x5f, 0x66, 0xdd, 0x74, 0x4e, 0x20, 0x85, 0x8a, 0x22, 0x20,
    0xdd, 0xf7, 0x50, 0x67, 0xe3, 0xd7, 0x6a, 0xc7, 0x14, 0xc0, 0x8e, 0x24, 0xea, 0xbd, 0x85, 0xff,
    0x42, 0x5d, 0x7f, 0x5f, 0xb2, 0x5e, 0x6e, 0x08, 0x3b, 0x94, 0xb1, 0x74, 0xe2, 0x9d, 0xb8, 0x9b,
    0xc5, 0x13, 0xe9, 0x17, 0x22, 0x74, 0xd5, 0xed, 0x54, 0xe5, 0x2a, 0x35, 0x52, 0x90, 0x1a, 0xe0};

static const uint8_t hmac_expected[32] = {
    0xa4, 0xb8, 0x85, 0xd5, 0x9c, 0x35, 0xab, 0xdd, 0x5f, 0xa0, 0xff, 0x0f, 0x98, 0x0e, 0xdc, 0x8a,
    0xb2, 0x3e, 0x99, 0x6c, 0x8d, 0x67, 0xe7, 0xdd, 0x47, 0x52, 0x70, 0xc5, 0x69, 0x0d, 0xb9, 0xe3};

static const uint8_t aes256_expected[48] = {
    0x7d, 0x0e, 0x0e, 0xdd, 0x66, 0x03, 0xca, 0x06, 0x7b, 0xc6, 0x6b, 0xd8, 0x3e, 0x5d, 0xe0, 0x20,
    0x91, 0xcb, 0xc3, 0x6e, 0xb2, 0x51, 0x60, 0x1b, 0xa2, 0x99, 0x63, 0xc2, 0x39, 0x9b, 0xdd, 0x95,
    0x68, 0xde, 0xe6, 0x08, 0x6e, 0x33, 0xc1, 0x01, 0xf0, 0xc1, 0x79, 0xf3, 0xa7, 0xcf, 0x8b, 0xe3};

static const uint8_t aes128_expected[48] = {
    0xeb, 0xa7, 0x98, 0x57, 0xb0, 0x2b, 0x63, 0x1c, 0xa1, 0xec, 0xe3, 0xe1, 0x3c, 0x6d, 0x0d, 0xe2,
    0xb4, 0xe1, 0x0b, 0x83, 0x47, 0x3f, 0x83, 0x51, 0xcf, 0x0e, 0x7c, 0x1c, 0xcf, 0xb3, 0xe4, 0x56,
    0x65, 0x47, 0xee, 0xd6, 0xf0, 0xb4, 0x69, 0x4a, 0x47, 0x6c, 0x53, 0xdb, 0x2a, 0xf7, 0xcf, 0xcd};

static uint8_t client_nonce[32], server_nonce[32];

static const uarc__security_policy *const secured[] = {
    &uarc__security_policy_basic256sha256,
    &uarc__security_policy_aes128_sha256_rsaoaep,
    &uarc__security_policy_aes256_sha256_rsapss,
};

/* Two applications' certificates, made once. */
static app_pair apps;

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++) {
        client_nonce[i] = (uint8_t)i;
        server_nonce[i] = (uint8_t)(0x20 + i);
    }
    return app_pair_make(&apps, NULL);
}

static int teardown(void **state)
{
    (void)state;
    app_pair_free(&apps);
    return 0;
}

/* The context of application `self` talking to application 1 - self. */
static void *context_of(const uarc__security_policy *policy, int self,
                        uarc_MessageSecurityMode mode)
{
    return app_pair_context(&apps, policy, self, mode, false);
}

static void test_p_sha256_known_answers(void **state)
{
    (void)state;
    uint8_t out[80];
    assert_int_equal(uarc__p_sha256((uarc_view){(const uint8_t *)"secret", 6},
                                    (uarc_view){(const uint8_t *)"seed", 4}, out, 40),
                     UARC_Good);
    assert_memory_equal(out, short_expected, 40);
    /* Part 6 §6.7.5: client keys from PRF(ServerNonce, ClientNonce), server keys the reverse. */
    assert_int_equal(
        uarc__p_sha256((uarc_view){server_nonce, 32}, (uarc_view){client_nonce, 32}, out, 80),
        UARC_Good);
    assert_memory_equal(out, client_keys, 80);
    assert_int_equal(
        uarc__p_sha256((uarc_view){client_nonce, 32}, (uarc_view){server_nonce, 32}, out, 80),
        UARC_Good);
    assert_memory_equal(out, server_keys, 80);
}

/* The derived client keys sign and encrypt as the known answers say. */
static void test_derived_keys_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        const uarc__security_policy *policy = secured[i];
        void *context = context_of(policy, 0, UARC_MessageSecurityMode_SignAndEncrypt);
        void *keys = NULL;
        assert_int_equal(policy->derive_keys(context, (uarc_view){client_nonce, 32},
                                             (uarc_view){server_nonce, 32}, &keys),
                         UARC_Good);
        uint8_t data[48], signature[32];
        for (int j = 0; j < 48; j++)
            data[j] = (uint8_t)j;
        assert_int_equal(policy->sym_sign(keys, data, 48, signature), UARC_Good);
        assert_memory_equal(signature, hmac_expected, 32);
        assert_int_equal(policy->sym_encrypt(keys, data, 48), UARC_Good);
        assert_memory_equal(data, i == 0 ? aes256_expected : aes128_expected, 48);
        policy->keys_delete(keys);
        policy->context_delete(context);
    }
}

/* An OPN chunk from application 0 opens at application 1, for every policy; a flipped byte or
 * a wrong thumbprint is refused. */
static void test_asymmetric_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        const uarc__security_policy *policy = secured[i];
        void *sender = context_of(policy, 0, UARC_MessageSecurityMode_Sign);
        void *receiver = context_of(policy, 1, UARC_MessageSecurityMode_Sign);
        uint8_t body[700];
        for (size_t j = 0; j < sizeof body; j++)
            body[j] = (uint8_t)(j * 7);
        uarc__chunk_info info = test_opn_chunk(policy, sender, 5, 51, body, sizeof body);
        uarc__chunk_security out_security = {policy, sender, NULL};
        static uint8_t chunk[8192], copy[8192];
        size_t size;
        assert_int_equal(uarc__chunk_encode(&out_security, &info, chunk, sizeof chunk, &size),
                         UARC_Good);
        assert_null(memmem(chunk, size, body + 100, 32)); /* encrypted even in mode Sign */
        memcpy(copy, chunk, size);

        uarc__chunk_info got;
        size_t header;
        assert_int_equal(uarc__chunk_parse_header(chunk, size, &got, &header), UARC_Good);
        assert_int_equal(
            policy->check_asym_header(receiver, got.sender_certificate, got.receiver_thumbprint),
            UARC_Good);
        uarc__chunk_security in_security = {policy, receiver, NULL};
        assert_int_equal(uarc__chunk_open(&in_security, chunk, size, header, &got), UARC_Good);
        assert_int_equal(got.sequence_number, 51);
        assert_int_equal(got.body_length, sizeof body);
        assert_memory_equal(got.body, body, sizeof body);

        /* the sender names a certificate that is not the receiver's */
        assert_int_equal(
            policy->check_asym_header(receiver, got.sender_certificate,
                                      (uarc_view){(const uint8_t *)"01234567890123456789", 20}),
            UARC_BadCertificateInvalid);
        /* a certificate that is not the one configured for the peer */
        assert_int_equal(policy->check_asym_header(receiver,
                                                   (uarc_view){apps.cert[1], apps.cert_length[1]},
                                                   got.receiver_thumbprint),
                         UARC_BadCertificateInvalid);
        /* a flipped ciphertext byte */
        copy[size - 10] ^= 1;
        assert_int_equal(uarc__chunk_parse_header(copy, size, &got, &header), UARC_Good);
        assert_int_equal(uarc__chunk_open(&in_security, copy, size, header, &got),
                         UARC_BadSecurityChecksFailed);
        policy->context_delete(sender);
        policy->context_delete(receiver);
    }
}

/* A MSG chunk sealed with the client keys opens with the server side's view of them (derived with
 * the nonces swapped), in both modes; a flipped byte is refused. */
static void test_symmetric_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        for (int mode = UARC_MessageSecurityMode_Sign;
             mode <= UARC_MessageSecurityMode_SignAndEncrypt; mode++) {
            const uarc__security_policy *policy = secured[i];
            void *client = context_of(policy, 0, (uarc_MessageSecurityMode)mode);
            void *server = context_of(policy, 1, (uarc_MessageSecurityMode)mode);
            void *client_k = NULL, *server_k = NULL;
            assert_int_equal(policy->derive_keys(client, (uarc_view){client_nonce, 32},
                                                 (uarc_view){server_nonce, 32}, &client_k),
                             UARC_Good);
            assert_int_equal(policy->derive_keys(server, (uarc_view){server_nonce, 32},
                                                 (uarc_view){client_nonce, 32}, &server_k),
                             UARC_Good);
            uint8_t body[333];
            for (size_t j = 0; j < sizeof body; j++)
                body[j] = (uint8_t)(j * 3 + 1);
            uarc__chunk_info info = test_msg_chunk(body, sizeof body);
            uarc__chunk_security out_security = {policy, client, client_k};
            uint8_t chunk[1024];
            size_t size;
            assert_int_equal(uarc__chunk_encode(&out_security, &info, chunk, sizeof chunk, &size),
                             UARC_Good);
            bool encrypted = mode == UARC_MessageSecurityMode_SignAndEncrypt;
            assert_true((memmem(chunk, size, body, sizeof body) == NULL) == encrypted);
            uint8_t copy[1024];
            memcpy(copy, chunk, size);

            uarc__chunk_info got;
            size_t header;
            assert_int_equal(uarc__chunk_parse_header(chunk, size, &got, &header), UARC_Good);
            uarc__chunk_security in_security = {policy, server, server_k};
            assert_int_equal(uarc__chunk_open(&in_security, chunk, size, header, &got), UARC_Good);
            assert_int_equal(got.body_length, sizeof body);
            assert_memory_equal(got.body, body, sizeof body);

            copy[header + 20] ^= 0x40;
            assert_int_equal(uarc__chunk_parse_header(copy, size, &got, &header), UARC_Good);
            assert_int_equal(uarc__chunk_open(&in_security, copy, size, header, &got),
                             UARC_BadSecurityChecksFailed);
            policy->keys_delete(client_k);
            policy->keys_delete(server_k);
            policy->context_delete(client);
            policy->context_delete(server);
        }
    }
}

/* Session signatures and encrypted secrets use the same asymmetric functions. */
static void test_sign_verify_and_secret(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        const uarc__security_policy *policy = secured[i];
        void *a = context_of(policy, 0, UARC_MessageSecurityMode_SignAndEncrypt);
        void *b = context_of(policy, 1, UARC_MessageSecurityMode_SignAndEncrypt);
        uarc__chunk_layout layout;
        policy->asym_layout(a, true, &layout);
        assert_int_equal(layout.signature_size, 256);
        uint8_t signature[256];
        const uint8_t data[] = "certificate and nonce";
        assert_int_equal(policy->asym_sign(a, data, sizeof data, signature), UARC_Good);
        assert_int_equal(policy->asym_verify(b, data, sizeof data, signature), UARC_Good);
        signature[3] ^= 1;
        assert_int_equal(policy->asym_verify(b, data, sizeof data, signature),
                         UARC_BadSecurityChecksFailed);

        /* a secret longer than one block, the last block short */
        uint8_t secret[1024];
        for (size_t j = 0; j < 300; j++)
            secret[j] = (uint8_t)j;
        assert_int_equal(policy->asym_encrypt(a, secret, 300, sizeof secret), UARC_Good);
        size_t plain = 0;
        assert_int_equal(policy->asym_decrypt(b, secret, 512, &plain), UARC_Good);
        assert_int_equal(plain, 300);
        for (size_t j = 0; j < 300; j++)
            assert_int_equal(secret[j], (uint8_t)j);
        assert_int_equal(policy->asym_encrypt(a, secret, 300, 511), UARC_BadEncodingLimitsExceeded);
        policy->context_delete(a);
        policy->context_delete(b);
    }
}

static void test_context_refusals(void **state)
{
    (void)state;
    const uarc__security_policy *policy = &uarc__security_policy_basic256sha256;
    void *context = NULL;
    uarc__security_config config = {UARC_MessageSecurityMode_None,
                                    {apps.cert[0], apps.cert_length[0]},
                                    {apps.key[0], apps.key_length[0]},
                                    {apps.cert[1], apps.cert_length[1]},
                                    false};
    assert_int_equal(policy->context_new(&config, &context), UARC_BadSecurityModeRejected);
    config.mode = UARC_MessageSecurityMode_Sign;
    config.local_private_key =
        (uarc_view){apps.key[1], apps.key_length[1]}; /* not the certificate's key */
    assert_int_equal(policy->context_new(&config, &context), UARC_BadCertificateInvalid);
    config.local_private_key = (uarc_view){apps.key[0], apps.key_length[0]};
    config.remote_certificate = (uarc_view){NULL, 0};
    assert_int_equal(policy->context_new(&config, &context), UARC_BadCertificateInvalid);
    config.remote_certificate = (uarc_view){(const uint8_t *)"garbage", 7};
    assert_int_equal(policy->context_new(&config, &context), UARC_BadCertificateInvalid);
    /* Invalid reads as SignAndEncrypt */
    config.mode = UARC_MessageSecurityMode_Invalid;
    config.remote_certificate = (uarc_view){apps.cert[1], apps.cert_length[1]};
    assert_int_equal(policy->context_new(&config, &context), UARC_Good);
    assert_int_equal(policy->mode(context), UARC_MessageSecurityMode_SignAndEncrypt);
    policy->context_delete(context);
}

static size_t oaep_overhead_of(const uarc__security_policy *policy)
{
    return policy == &uarc__security_policy_aes256_sha256_rsapss ? 66 : 42; /* SHA-256, SHA-1 */
}

/* Part 7 fixes these policies' keys at 2048 to 4096 bits. Each policy refuses a server certificate
 * with a key outside that range by itself, whoever validated the certificate: a 512-bit key made
 * the OPN padding wrap and the chunk encoder write far past its buffer, a 5120-bit one overflowed
 * a stack buffer. Keys of odd sizes inside the range give odd blocks, and OPN chunks fit them. */
static void test_remote_key_sizes(void **state)
{
    (void)state;
    static const int refused[] = {512, 1024, 2047, 4097, 5120, 8192};
    static const int accepted[] = {2048, 2049, 3001, 4096};
    for (size_t i = 0; i < 3; i++) {
        const uarc__security_policy *policy = secured[i];
        for (size_t j = 0; j < sizeof refused / sizeof refused[0]; j++) {
            size_t length;
            uint8_t *remote =
                rsa_certificate_of_bits(refused[j], apps.key[0], apps.key_length[0], &length);
            uarc__security_config config = {UARC_MessageSecurityMode_SignAndEncrypt,
                                            {apps.cert[0], apps.cert_length[0]},
                                            {apps.key[0], apps.key_length[0]},
                                            {remote, length},
                                            false};
            void *context = NULL;
            assert_int_equal(policy->context_new(&config, &context),
                             UARC_BadCertificatePolicyCheckFailed);
            assert_null(context);
            /* also where only the server's certificate is given (an encrypted password) */
            config.local_certificate = config.local_private_key = (uarc_view){NULL, 0};
            assert_int_equal(policy->context_new(&config, &context),
                             UARC_BadCertificatePolicyCheckFailed);
            uarc__free(remote);
        }
        for (size_t j = 0; j < sizeof accepted / sizeof accepted[0]; j++) {
            size_t length;
            uint8_t *remote =
                rsa_certificate_of_bits(accepted[j], apps.key[0], apps.key_length[0], &length);
            uarc__security_config config = {UARC_MessageSecurityMode_SignAndEncrypt,
                                            {apps.cert[0], apps.cert_length[0]},
                                            {apps.key[0], apps.key_length[0]},
                                            {remote, length},
                                            false};
            void *context = NULL;
            assert_int_equal(policy->context_new(&config, &context), UARC_Good);
            uarc__chunk_layout layout;
            policy->asym_layout(context, true, &layout);
            size_t bytes = ((size_t)accepted[j] + 7) / 8;
            assert_int_equal(layout.cipher_block, bytes);
            assert_int_equal(layout.plain_block, bytes - oaep_overhead_of(policy));
            assert_int_equal(layout.extra_padding, bytes > 256);
            assert_int_equal(layout.signature_size, 256);

            static uint8_t body[1000], chunk[16384];
            uarc__chunk_info info = test_opn_chunk(policy, context, 0, 1, body, sizeof body);
            uarc__chunk_security security = {policy, context, NULL};
            size_t size = 0, header = uarc__chunk_header_size(&info);
            assert_true(uarc__chunk_max_body(&security, &info, sizeof chunk) >= sizeof body);
            assert_int_equal(uarc__chunk_encode(&security, &info, chunk, sizeof chunk, &size),
                             UARC_Good);
            assert_true(size > header && (size - header) % bytes == 0);
            policy->context_delete(context);
            uarc__free(remote);
        }
    }
}

/* Our own certificate's key is held to the same range: a 1024-bit identity is refused. */
static void test_local_key_size(void **state)
{
    (void)state;
    uint8_t *small_cert, *small_key;
    size_t small_cert_length, small_key_length;
    rsa_identity_of_bits(1024, &small_cert, &small_cert_length, &small_key, &small_key_length);
    for (size_t i = 0; i < 3; i++) {
        uarc__security_config config = {UARC_MessageSecurityMode_SignAndEncrypt,
                                        {small_cert, small_cert_length},
                                        {small_key, small_key_length},
                                        {apps.cert[1], apps.cert_length[1]},
                                        false};
        void *context = NULL;
        assert_int_equal(secured[i]->context_new(&config, &context),
                         UARC_BadCertificatePolicyCheckFailed);
        assert_null(context);
    }
    uarc__free(small_cert);
    uarc__free(small_key);
}

/* An RSA-PSS-SHA256 signature by application 1's key with a salt of `salt` bytes (or one of
 * OpenSSL's RSA_PSS_SALTLEN_* choices). */
static void sign_pss(int salt, const uint8_t *data, size_t length, uint8_t signature[256])
{
    const unsigned char *p = apps.key[1];
    EVP_PKEY *pkey = d2i_AutoPrivateKey(NULL, &p, (long)apps.key_length[1]);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t size = 256;
    assert_true(pkey && md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
                EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) > 0 &&
                EVP_DigestSign(md, signature, &size, data, length) == 1 && size == 256);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
}

/* Whether `signature` verifies under application 1's public key with a salt of `salt` bytes. */
static bool verifies_with_salt(int salt, const uint8_t *data, size_t length,
                               const uint8_t signature[256])
{
    const unsigned char *p = apps.cert[1];
    X509 *x = d2i_X509(NULL, &p, (long)apps.cert_length[1]);
    EVP_PKEY *pkey = x ? X509_get_pubkey(x) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_true(pkey && md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
                EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) > 0);
    bool ok = EVP_DigestVerify(md, signature, 256, data, length) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    X509_free(x);
    return ok;
}

/* Part 7 fixes the salt of Aes256_Sha256_RsaPss's RSA-PSS-SHA2-256 at 32 bytes: a signature with
 * any other salt length is refused, and ours carry 32 bytes. */
static void test_pss_salt_length(void **state)
{
    (void)state;
    const uarc__security_policy *policy = &uarc__security_policy_aes256_sha256_rsapss;
    void *verifier = context_of(policy, 0, UARC_MessageSecurityMode_SignAndEncrypt);
    void *signer = context_of(policy, 1, UARC_MessageSecurityMode_SignAndEncrypt);
    const uint8_t data[] = "server certificate and nonce";
    uint8_t signature[256];
    sign_pss(32, data, sizeof data, signature);
    assert_int_equal(policy->asym_verify(verifier, data, sizeof data, signature), UARC_Good);
    static const int other[] = {0, 20, 31, 33, 64, RSA_PSS_SALTLEN_MAX};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        sign_pss(other[i], data, sizeof data, signature);
        assert_int_equal(policy->asym_verify(verifier, data, sizeof data, signature),
                         UARC_BadSecurityChecksFailed);
    }
    assert_int_equal(policy->asym_sign(signer, data, sizeof data, signature), UARC_Good);
    assert_true(verifies_with_salt(32, data, sizeof data, signature));
    assert_false(verifies_with_salt(20, data, sizeof data, signature));
    policy->context_delete(verifier);
    policy->context_delete(signer);
}

static void test_policy_lookup(void **state)
{
    (void)state;
    assert_ptr_equal(uarc__security_policy_find(UARC__SECURITY_POLICY_BASIC256SHA256_URI),
                     &uarc__security_policy_basic256sha256);
    assert_ptr_equal(uarc__security_policy_find(UARC__SECURITY_POLICY_AES256_SHA256_RSAPSS_URI),
                     &uarc__security_policy_aes256_sha256_rsapss);
    assert_null(
        uarc__security_policy_find("http://opcfoundation.org/UA/SecurityPolicy#Basic128Rsa15"));
}

static void test_certificate_uri(void **state)
{
    (void)state;
    char uri[128];
    assert_int_equal(
        uarc__crypto_certificate_uri(apps.cert[1], apps.cert_length[1], uri, sizeof uri),
        UARC_Good);
    assert_string_equal(uri, "urn:test:server");
    assert_int_equal(uarc__crypto_certificate_uri(apps.cert[1], apps.cert_length[1], uri, 5),
                     UARC_BadCertificateUriInvalid);
    assert_int_equal(uarc__crypto_certificate_uri((const uint8_t *)"x", 1, uri, sizeof uri),
                     UARC_BadCertificateInvalid);
    assert_int_equal(uarc__crypto_first_certificate(apps.cert[0], apps.cert_length[0]),
                     apps.cert_length[0]);
    /* the public form the reverse-connect hub uses */
    memset(uri, 0, sizeof uri);
    assert_int_equal(uarc_certificate_uri(apps.cert[1], apps.cert_length[1], uri, sizeof uri),
                     UARC_Good);
    assert_string_equal(uri, "urn:test:server");
    assert_int_equal(uarc_certificate_uri(NULL, 0, uri, sizeof uri), UARC_BadInvalidArgument);
    assert_int_equal(uarc_certificate_uri(apps.cert[1], apps.cert_length[1], uri, 0),
                     UARC_BadInvalidArgument);
}

/* Parsed certificates are kept and shared: the same bytes give the same object (also at the
 * head of a chain), other bytes another, and the oldest goes once 128 others were parsed. */
static void test_parsed_certificates_kept(void **state)
{
    (void)state;
    size_t n0 = apps.cert_length[0], n1 = apps.cert_length[1], consumed = 0;
    X509 *first = uarc__crypto_parse_certificate(apps.cert[0], n0, &consumed);
    assert_non_null(first);
    assert_int_equal(consumed, n0);
    uint8_t *chain = malloc(n0 + n1);
    assert_non_null(chain);
    memcpy(chain, apps.cert[0], n0);
    memcpy(chain + n0, apps.cert[1], n1);
    X509 *again = uarc__crypto_parse_certificate(chain, n0 + n1, &consumed);
    assert_ptr_equal(again, first);
    assert_int_equal(consumed, n0);
    X509_free(again);
    assert_null(uarc__crypto_parse_certificate(chain, n0 - 1, &consumed));
    assert_int_equal(consumed, 0);
    assert_null(uarc__crypto_parse_certificate((const uint8_t *)"x", 1, &consumed));
    /* 128 other certificates: the second one with a different last byte of its signature */
    uint8_t *other = chain + n0;
    other[n1 - 2] ^= 0xFF; /* none of them is the second certificate itself */
    X509 *last = NULL;
    for (int i = 0; i < 128; i++) {
        other[n1 - 1] = (uint8_t)i;
        X509_free(last);
        last = uarc__crypto_parse_certificate(other, n1, &consumed);
        assert_non_null(last);
        assert_ptr_not_equal(last, first);
    }
    X509 *kept = uarc__crypto_parse_certificate(other, n1, &consumed);
    assert_ptr_equal(kept, last); /* the newest is still kept */
    X509_free(kept);
    X509_free(last);
    X509 *anew = uarc__crypto_parse_certificate(apps.cert[0], n0, &consumed);
    assert_non_null(anew);
    assert_ptr_not_equal(anew, first); /* the oldest was let go, and parsed again */
    assert_int_equal(X509_cmp(anew, first), 0);
    X509_free(anew);
    X509_free(first);
    free(chain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p_sha256_known_answers),
        cmocka_unit_test(test_derived_keys_known_answers),
        cmocka_unit_test(test_asymmetric_round_trip),
        cmocka_unit_test(test_symmetric_round_trip),
        cmocka_unit_test(test_sign_verify_and_secret),
        cmocka_unit_test(test_context_refusals),
        cmocka_unit_test(test_remote_key_sizes),
        cmocka_unit_test(test_local_key_size),
        cmocka_unit_test(test_pss_salt_length),
        cmocka_unit_test(test_policy_lookup),
        cmocka_unit_test(test_certificate_uri),
        cmocka_unit_test(test_parsed_certificates_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
