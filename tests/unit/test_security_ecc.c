/*
 * The ECC security policies (ECC_nistP256, ECC_nistP384, ECC_brainpoolP256r1,
 * ECC_brainpoolP384r1): HKDF against RFC 5869, the key derivation against one written here from
 * the specification (Part 6 §6.8: ECDH, then HKDF with salt = info = L | label | nonces) on top of
 * OpenSSL's one-shot HMAC only, chunks both ways with those keys, ECDSA signatures, the
 * EccEncryptedSecret opened as a server would, refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "channel/cert_trust.h"
#include "channel/chunk.h"
#include "channel/crypto.h"
#include "channel/security.h"
#include "core/alloc.h"
#include "uarc/client.h"
#include "app_pair.h"

typedef struct ecc_case {
    const uarc__security_policy *policy;
    const char *curve;
    const char *digest;
    size_t coordinate, sign_key, enc_key;
} ecc_case;

static const ecc_case cases[] = {
    {&uarc__security_policy_ecc_nistp256, "prime256v1", "SHA256", 32, 32, 16},
    {&uarc__security_policy_ecc_nistp384, "secp384r1", "SHA384", 48, 48, 32},
    {&uarc__security_policy_ecc_brainpoolp256r1, "brainpoolP256r1", "SHA256", 32, 32, 16},
    {&uarc__security_policy_ecc_brainpoolp384r1, "brainpoolP384r1", "SHA384", 48, 48, 32},
};
#define CASES (sizeof cases / sizeof cases[0])

/* Per case: a client and a server certificate on its curve, made once. */
static app_pair apps[CASES];
static uint8_t *rsa_cert, *rsa_key;
static size_t rsa_cert_length, rsa_key_length;

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++)
        if (app_pair_make(&apps[i], cases[i].policy->uri) != 0)
            return -1;
    return uarc_certificate_generate_for("urn:test:rsa", NULL, &rsa_cert, &rsa_cert_length,
                                         &rsa_key, &rsa_key_length) == UARC_Good
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++)
        app_pair_free(&apps[i]);
    uarc__free(rsa_cert);
    uarc__free(rsa_key);
    return 0;
}

static void *context_of(size_t i, int self, uarc_MessageSecurityMode mode)
{
    return app_pair_context(&apps[i], cases[i].policy, self, mode, false);
}

/* HKDF of RFC 5869 from HMAC alone: extract, then expand block by block. */
static void hkdf_here(const char *digest, const uint8_t *ikm, size_t ikm_length,
                      const uint8_t *salt, size_t salt_length, const uint8_t *info,
                      size_t info_length, uint8_t *out, size_t length)
{
    const EVP_MD *md = EVP_get_digestbyname(digest);
    uint8_t prk[64], t[64], block[64 + 256 + 1];
    unsigned int prk_length = 0, t_length = 0;
    assert_non_null(HMAC(md, salt, (int)salt_length, ikm, ikm_length, prk, &prk_length));
    for (uint8_t counter = 1; length; counter++) {
        memcpy(block, t, t_length);
        memcpy(block + t_length, info, info_length);
        block[t_length + info_length] = counter;
        assert_non_null(
            HMAC(md, prk, (int)prk_length, block, t_length + info_length + 1, t, &t_length));
        size_t take = length < t_length ? length : t_length;
        memcpy(out, t, take);
        out += take;
        length -= take;
    }
}

static void test_hkdf_rfc5869(void **state)
{
    (void)state;
    /* RFC 5869 A.1 */
    uint8_t ikm[22], salt[13], info[10], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    static const uint8_t expected[42] = {
        0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
        0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
        0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65};
    assert_int_equal(uarc__hkdf("SHA256", (uarc_view){ikm, sizeof ikm},
                                (uarc_view){salt, sizeof salt}, (uarc_view){info, sizeof info}, okm,
                                sizeof okm),
                     UARC_Good);
    assert_memory_equal(okm, expected, sizeof okm);
    /* the helper here agrees, and so it may judge SHA-384 too */
    uint8_t here[42];
    hkdf_here("SHA256", ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, here, sizeof here);
    assert_memory_equal(here, expected, sizeof here);
    uint8_t a[100], b[100];
    assert_int_equal(uarc__hkdf("SHA384", (uarc_view){ikm, sizeof ikm},
                                (uarc_view){salt, sizeof salt}, (uarc_view){info, sizeof info}, a,
                                sizeof a),
                     UARC_Good);
    hkdf_here("SHA384", ikm, sizeof ikm, salt, sizeof salt, info, sizeof info, b, sizeof b);
    assert_memory_equal(a, b, sizeof a);
}

/* One side's keys as this test derives them: signing key, encrypting key, IV. */
typedef struct side {
    const ecc_case *c;
    uint8_t sign[48], enc[32], iv[16];
} side;

static void derive_here(const ecc_case *c, const uint8_t *secret, size_t secret_length,
                        const char *label, const uint8_t *first, const uint8_t *second, side *out)
{
    size_t nonce = 2 * c->coordinate, length = c->sign_key + c->enc_key + 16;
    uint8_t salt[2 + 12 + 2 * 96], material[48 + 32 + 16];
    salt[0] = (uint8_t)length;
    salt[1] = (uint8_t)(length >> 8);
    memcpy(salt + 2, label, 12);
    memcpy(salt + 14, first, nonce);
    memcpy(salt + 14 + nonce, second, nonce);
    hkdf_here(c->digest, secret, secret_length, salt, 14 + 2 * nonce, salt, 14 + 2 * nonce,
              material, length);
    out->c = c;
    memcpy(out->sign, material, c->sign_key);
    memcpy(out->enc, material + c->sign_key, c->enc_key);
    memcpy(out->iv, material + c->sign_key + c->enc_key, 16);
}

/* The symmetric functions of a policy, but with keys this test derived. */
static uarc_status here_sign(const void *keys, const uint8_t *data, size_t length, uint8_t *mac)
{
    const side *s = keys;
    unsigned int n = 0;
    return HMAC(EVP_get_digestbyname(s->c->digest), s->sign, (int)s->c->sign_key, data, length, mac,
                &n)
               ? UARC_Good
               : UARC_BadInternalError;
}

static uarc_status here_verify(const void *keys, const uint8_t *data, size_t length,
                               const uint8_t *mac)
{
    const side *s = keys;
    uint8_t expected[48];
    here_sign(keys, data, length, expected);
    return memcmp(expected, mac, s->c->sign_key) == 0 ? UARC_Good : UARC_BadSecurityChecksFailed;
}

static uarc_status here_cipher(const side *s, bool encrypting, uint8_t *data, size_t length)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_int_equal(EVP_CipherInit_ex(ctx,
                                       s->c->enc_key == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc(),
                                       NULL, s->enc, s->iv, encrypting),
                     1);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    assert_int_equal(EVP_CipherUpdate(ctx, data, &n, data, (int)length), 1);
    EVP_CIPHER_CTX_free(ctx);
    return UARC_Good;
}

static uarc_status here_encrypt(const void *keys, uint8_t *data, size_t length)
{
    return here_cipher(keys, true, data, length);
}

static uarc_status here_decrypt(const void *keys, uint8_t *data, size_t length)
{
    return here_cipher(keys, false, data, length);
}

static void test_derived_keys_and_chunks(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++) {
        const ecc_case *c = &cases[i];
        const uarc__security_policy *policy = c->policy;
        for (int mode = UARC_MessageSecurityMode_Sign;
             mode <= UARC_MessageSecurityMode_SignAndEncrypt; mode++) {
            void *client = context_of(i, 0, (uarc_MessageSecurityMode)mode);
            size_t nonce = 2 * c->coordinate;
            assert_int_equal(policy->nonce_length, nonce);
            uint8_t client_nonce[96], server_nonce[96], point[97];
            assert_int_equal(policy->new_nonce(client, client_nonce, nonce), UARC_Good);

            /* the server's side, written here: its ephemeral key, the shared secret */
            EVP_PKEY *server_eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->curve);
            size_t n = 0;
            assert_int_equal(EVP_PKEY_get_octet_string_param(server_eph,
                                                             OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                             point, sizeof point, &n),
                             1);
            assert_int_equal(n, 1 + nonce);
            memcpy(server_nonce, point + 1, nonce);
            point[0] = 0x04;
            memcpy(point + 1, client_nonce, nonce);
            EVP_PKEY *client_pub = EVP_PKEY_new();
            EVP_PKEY_copy_parameters(client_pub, server_eph);
            assert_int_equal(EVP_PKEY_set1_encoded_public_key(client_pub, point, 1 + nonce), 1);
            EVP_PKEY_CTX *dh = EVP_PKEY_CTX_new(server_eph, NULL);
            uint8_t secret[48];
            size_t secret_length = sizeof secret;
            assert_int_equal(EVP_PKEY_derive_init(dh), 1);
            assert_int_equal(EVP_PKEY_derive_set_peer(dh, client_pub), 1);
            assert_int_equal(EVP_PKEY_derive(dh, secret, &secret_length), 1);
            assert_int_equal(secret_length, c->coordinate);
            side client_side, server_side;
            derive_here(c, secret, secret_length, "opcua-client", client_nonce, server_nonce,
                        &client_side);
            derive_here(c, secret, secret_length, "opcua-server", server_nonce, client_nonce,
                        &server_side);

            void *keys = NULL;
            assert_int_equal(policy->derive_keys(client, (uarc_view){client_nonce, nonce},
                                                 (uarc_view){server_nonce, nonce}, &keys),
                             UARC_Good);
            uarc__security_policy here = *policy;
            here.sym_sign = here_sign;
            here.sym_verify = here_verify;
            here.sym_encrypt = here_encrypt;
            here.sym_decrypt = here_decrypt;

            uint8_t body[301];
            for (size_t j = 0; j < sizeof body; j++)
                body[j] = (uint8_t)(j * 7 + 3);
            uarc__chunk_info info = test_msg_chunk(body, sizeof body);
            bool encrypted = mode == UARC_MessageSecurityMode_SignAndEncrypt;

            /* ours out, opened with the client keys derived here */
            uarc__chunk_security ours = {policy, client, keys};
            uarc__chunk_security theirs = {&here, client, &client_side};
            uint8_t chunk[1024];
            size_t size, header;
            assert_int_equal(uarc__chunk_encode(&ours, &info, chunk, sizeof chunk, &size),
                             UARC_Good);
            assert_true((memmem(chunk, size, body, sizeof body) == NULL) == encrypted);
            uarc__chunk_info got;
            assert_int_equal(uarc__chunk_parse_header(chunk, size, &got, &header), UARC_Good);
            assert_int_equal(uarc__chunk_open(&theirs, chunk, size, header, &got), UARC_Good);
            assert_memory_equal(got.body, body, sizeof body);

            /* theirs in, sealed with the server keys derived here, opened by us; then tampered */
            theirs.keys = &server_side;
            assert_int_equal(uarc__chunk_encode(&theirs, &info, chunk, sizeof chunk, &size),
                             UARC_Good);
            uint8_t copy[1024];
            memcpy(copy, chunk, size);
            assert_int_equal(uarc__chunk_parse_header(chunk, size, &got, &header), UARC_Good);
            assert_int_equal(uarc__chunk_open(&ours, chunk, size, header, &got), UARC_Good);
            assert_int_equal(got.body_length, sizeof body);
            assert_memory_equal(got.body, body, sizeof body);
            copy[size - 1] ^= 0x01;
            assert_int_equal(uarc__chunk_parse_header(copy, size, &got, &header), UARC_Good);
            assert_int_equal(uarc__chunk_open(&ours, copy, size, header, &got),
                             UARC_BadSecurityChecksFailed);

            policy->keys_delete(keys);
            EVP_PKEY_CTX_free(dh);
            EVP_PKEY_free(client_pub);
            EVP_PKEY_free(server_eph);
            policy->context_delete(client);
        }
    }
}

/* OPN chunks are signed with ECDSA as r | s, never encrypted; a changed byte fails. */
static void test_opn_sign_verify(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++) {
        const uarc__security_policy *policy = cases[i].policy;
        void *a = context_of(i, 0, UARC_MessageSecurityMode_SignAndEncrypt);
        void *b = context_of(i, 1, UARC_MessageSecurityMode_SignAndEncrypt);
        uarc__chunk_layout layout;
        policy->asym_layout(a, true, &layout);
        assert_int_equal(layout.signature_size, 2 * cases[i].coordinate);
        assert_false(layout.encrypt);
        uint8_t body[200];
        for (size_t j = 0; j < sizeof body; j++)
            body[j] = (uint8_t)j;
        uarc__chunk_info info = test_opn_chunk(policy, a, 0, 1, body, sizeof body);
        uarc__chunk_security out = {policy, a, NULL}, in = {policy, b, NULL};
        uint8_t chunk[2048], copy[2048];
        size_t size, header;
        assert_int_equal(uarc__chunk_encode(&out, &info, chunk, sizeof chunk, &size), UARC_Good);
        assert_non_null(memmem(chunk, size, body, sizeof body)); /* signed, not encrypted */
        memcpy(copy, chunk, size);
        uarc__chunk_info got;
        assert_int_equal(uarc__chunk_parse_header(chunk, size, &got, &header), UARC_Good);
        assert_int_equal(
            policy->check_asym_header(b, got.sender_certificate, got.receiver_thumbprint),
            UARC_Good);
        assert_int_equal(uarc__chunk_open(&in, chunk, size, header, &got), UARC_Good);
        assert_memory_equal(got.body, body, sizeof body);
        copy[header + 40] ^= 0x80;
        assert_int_equal(uarc__chunk_parse_header(copy, size, &got, &header), UARC_Good);
        assert_int_equal(uarc__chunk_open(&in, copy, size, header, &got),
                         UARC_BadSecurityChecksFailed);
        /* the client is the one certificate whose signatures verify */
        assert_int_equal(
            policy->check_asym_header(a, got.sender_certificate, got.receiver_thumbprint),
            UARC_BadCertificateInvalid);
        /* nothing is encrypted with EC keys, so a password cannot be */
        uint8_t secret[64] = {0};
        assert_int_equal(policy->asym_encrypt(a, secret, 10, sizeof secret), UARC_BadNotSupported);
        assert_null(policy->asym_encryption_uri);
        policy->context_delete(a);
        policy->context_delete(b);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    const uarc__security_policy *p256 = &uarc__security_policy_ecc_nistp256;
    void *context = NULL;
    uarc__security_config config = {UARC_MessageSecurityMode_None,
                                    {apps[0].cert[0], apps[0].cert_length[0]},
                                    {apps[0].key[0], apps[0].key_length[0]},
                                    {apps[0].cert[1], apps[0].cert_length[1]},
                                    false};
    assert_int_equal(p256->context_new(&config, &context), UARC_BadSecurityModeRejected);
    config.mode = UARC_MessageSecurityMode_Sign;
    config.local_private_key = (uarc_view){apps[0].key[1], apps[0].key_length[1]}; /* not its key */
    assert_int_equal(p256->context_new(&config, &context), UARC_BadCertificateInvalid);
    config.local_private_key = (uarc_view){apps[0].key[0], apps[0].key_length[0]};
    /* an RSA server certificate, and one on P-384 */
    config.remote_certificate = (uarc_view){rsa_cert, rsa_cert_length};
    assert_int_equal(p256->context_new(&config, &context), UARC_BadCertificateInvalid);
    config.remote_certificate = (uarc_view){apps[1].cert[1], apps[1].cert_length[1]};
    assert_int_equal(p256->context_new(&config, &context), UARC_BadCertificatePolicyCheckFailed);
    /* and the RSA policies take no EC certificate */
    config.remote_certificate = (uarc_view){apps[0].cert[1], apps[0].cert_length[1]};
    assert_int_not_equal(uarc__security_policy_basic256sha256.context_new(&config, &context),
                         UARC_Good);

    /* a server nonce that is not a point of the curve, or of the wrong length */
    context = context_of(0, 0, UARC_MessageSecurityMode_Sign);
    uint8_t client_nonce[64], server_nonce[64];
    void *keys = NULL;
    assert_int_equal(p256->new_nonce(context, client_nonce, 64), UARC_Good);
    memset(server_nonce, 0x11, sizeof server_nonce);
    assert_int_equal(p256->derive_keys(context, (uarc_view){client_nonce, 64},
                                       (uarc_view){server_nonce, 64}, &keys),
                     UARC_BadNonceInvalid);
    assert_int_equal(p256->new_nonce(context, client_nonce, 64), UARC_Good);
    assert_int_equal(p256->derive_keys(context, (uarc_view){client_nonce, 64},
                                       (uarc_view){server_nonce, 32}, &keys),
                     UARC_BadNonceInvalid);
    /* the ephemeral key serves one derivation only */
    assert_int_equal(p256->new_nonce(context, client_nonce, 64), UARC_Good);
    assert_int_equal(p256->derive_keys(context, (uarc_view){client_nonce, 64},
                                       (uarc_view){client_nonce, 64}, &keys),
                     UARC_Good);
    p256->keys_delete(keys);
    keys = NULL;
    assert_int_equal(p256->derive_keys(context, (uarc_view){client_nonce, 64},
                                       (uarc_view){client_nonce, 64}, &keys),
                     UARC_BadNonceInvalid);
    p256->context_delete(context);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The EccEncryptedSecret opened as a server would, with what this test derives itself: the layout
 * of Part 4 §7.40.2.5, the signature with the client's certificate, the payload decrypted with
 * HKDF(ECDH, L | "opcua-secret" | sender | receiver). */
static void test_ecc_encrypted_secret(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++) {
        const ecc_case *c = &cases[i];
        const uarc__security_policy *policy = c->policy;
        size_t klen = 2 * c->coordinate;
        void *client = context_of(i, 0, UARC_MessageSecurityMode_SignAndEncrypt);
        void *server = context_of(i, 1, UARC_MessageSecurityMode_SignAndEncrypt);
        EVP_PKEY *receiver = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->curve);
        uint8_t point[97], nonce[32];
        size_t n = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(
                             receiver, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point, &n),
                         1);
        memset(nonce, 0x5a, sizeof nonce);
        const char *password = "correct horse";
        uint8_t *out = NULL;
        size_t length = 0;
        /* an OPN in flight: its ephemeral key must outlive the secret */
        uint8_t opn_nonce[96];
        assert_int_equal(policy->new_nonce(client, opn_nonce, klen), UARC_Good);
        assert_int_equal(uarc__ecc_encrypt_secret(policy, client, (uarc_view){point + 1, klen},
                                                  (uarc_view){nonce, sizeof nonce},
                                                  (uarc_view){(const uint8_t *)password, 13}, 12345,
                                                  &out, &length),
                         UARC_Good);
        /* header: FourByte NodeId 17546, EncodingMask 1, Length of what follows */
        static const uint8_t type_id[] = {0x01, 0x00, 0x8a, 0x44, 0x01};
        assert_memory_equal(out, type_id, sizeof type_id);
        assert_int_equal(le32(out + 5), length - 9);
        size_t pos = 9;
        size_t uri = le32(out + pos);
        assert_int_equal(uri, strlen(policy->uri));
        assert_memory_equal(out + pos + 4, policy->uri, uri);
        pos += 4 + uri;
        assert_int_equal(le32(out + pos), 0); /* Certificate: the channel's */
        pos += 4 + 8;                         /* SigningTime */
        assert_int_equal(out[pos] | out[pos + 1] << 8, 2 * (4 + klen));
        pos += 2;
        assert_int_equal(le32(out + pos), klen);
        const uint8_t *sender = out + pos + 4;
        pos += 4 + klen;
        assert_int_equal(le32(out + pos), klen);
        assert_memory_equal(out + pos + 4, point + 1, klen);
        pos += 4 + klen;
        size_t signature = 2 * c->coordinate, payload = length - pos - signature;
        assert_int_equal(payload % 16, 0);
        void *opn_keys = NULL;
        assert_int_equal(policy->derive_keys(client, (uarc_view){opn_nonce, klen},
                                             (uarc_view){point + 1, klen}, &opn_keys),
                         UARC_Good);
        policy->keys_delete(opn_keys);
        assert_int_equal(
            policy->asym_verify(server, out, length - signature, out + length - signature),
            UARC_Good);

        /* the server's side: ECDH of its klen and the sender's, HKDF, AES-CBC */
        uint8_t sender_point[97] = {0x04};
        memcpy(sender_point + 1, sender, klen);
        EVP_PKEY *sender_pub = EVP_PKEY_new();
        EVP_PKEY_copy_parameters(sender_pub, receiver);
        assert_int_equal(EVP_PKEY_set1_encoded_public_key(sender_pub, sender_point, 1 + klen), 1);
        EVP_PKEY_CTX *dh = EVP_PKEY_CTX_new(receiver, NULL);
        uint8_t secret[48], salt[2 + 12 + 2 * 96], keys[48];
        size_t secret_length = sizeof secret, l = c->enc_key + 16;
        assert_int_equal(EVP_PKEY_derive_init(dh), 1);
        assert_int_equal(EVP_PKEY_derive_set_peer(dh, sender_pub), 1);
        assert_int_equal(EVP_PKEY_derive(dh, secret, &secret_length), 1);
        salt[0] = (uint8_t)l;
        salt[1] = 0;
        memcpy(salt + 2, "opcua-secret", 12);
        memcpy(salt + 14, sender, klen);
        memcpy(salt + 14 + klen, point + 1, klen);
        hkdf_here(c->digest, secret, secret_length, salt, 14 + 2 * klen, salt, 14 + 2 * klen, keys,
                  l);
        side s = {.c = c};
        memcpy(s.enc, keys, c->enc_key);
        memcpy(s.iv, keys + c->enc_key, 16);
        uint8_t *plain = out + pos;
        here_cipher(&s, false, plain, payload);
        assert_int_equal(le32(plain), sizeof nonce);
        assert_memory_equal(plain + 4, nonce, sizeof nonce);
        assert_int_equal(le32(plain + 36), 13);
        assert_memory_equal(plain + 40, password, 13);
        size_t padding = plain[payload - 2] | plain[payload - 1] << 8;
        assert_int_equal(40 + 13 + padding + 2, payload);
        for (size_t j = 0; j < padding; j++)
            assert_int_equal(plain[53 + j], (uint8_t)padding);

        /* a receiver klen off the curve, or of the wrong length */
        uint8_t *none = NULL;
        memset(point, 0x11, sizeof point);
        assert_int_equal(uarc__ecc_encrypt_secret(
                             policy, client, (uarc_view){point + 1, klen}, (uarc_view){nonce, 32},
                             (uarc_view){(const uint8_t *)"x", 1}, 0, &none, &length),
                         UARC_BadNonceInvalid);
        assert_int_equal(uarc__ecc_encrypt_secret(policy, client, (uarc_view){point + 1, klen - 1},
                                                  (uarc_view){nonce, 32},
                                                  (uarc_view){(const uint8_t *)"x", 1}, 0, &none,
                                                  &length),
                         UARC_BadInvalidArgument);
        assert_null(none);
        uarc__free(out);
        EVP_PKEY_CTX_free(dh);
        EVP_PKEY_free(sender_pub);
        EVP_PKEY_free(receiver);
        policy->context_delete(client);
        policy->context_delete(server);
    }
}

/* uarc_certificate_generate_for(): the key the policy needs. */
static void test_generated_certificates(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++) {
        const unsigned char *p = apps[i].cert[0];
        X509 *x = d2i_X509(NULL, &p, (long)apps[i].cert_length[0]);
        assert_non_null(x);
        EVP_PKEY *k = X509_get0_pubkey(x);
        char group[64];
        size_t n = 0;
        assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
        assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof group, &n), 1);
        assert_string_equal(group, cases[i].curve);
        int md = 0;
        assert_int_equal(X509_get_signature_info(x, &md, NULL, NULL, NULL), 1);
        assert_int_equal(md, cases[i].coordinate == 48 ? NID_sha384 : NID_sha256);
        assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
        assert_false(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT);
        char uri[64];
        assert_int_equal(
            uarc_certificate_uri(apps[i].cert[0], apps[i].cert_length[0], uri, sizeof uri),
            UARC_Good);
        assert_string_equal(uri, "urn:test:client");
        X509_free(x);
    }
    const unsigned char *p = rsa_cert;
    X509 *x = d2i_X509(NULL, &p, (long)rsa_cert_length);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_RSA);
    X509_free(x);
    uint8_t *c = NULL, *k = NULL;
    size_t cl = 0, kl = 0;
    assert_int_equal(
        uarc_certificate_generate_for(NULL, "http://example.com/no-such-policy", &c, &cl, &k, &kl),
        UARC_BadSecurityPolicyRejected);
}

/* Validation takes EC keys, whose keyUsage has digitalSignature but never keyEncipherment. */
static void test_ec_certificates_validate(void **state)
{
    (void)state;
    char detail[512];
    for (size_t i = 0; i < CASES; i++)
        assert_int_equal(uarc__cert_validate(apps[i].cert[1], apps[i].cert_length[1], NULL, NULL, 0,
                                             detail, sizeof detail),
                         UARC_Good);
}

static void test_policy_lookup(void **state)
{
    (void)state;
    for (size_t i = 0; i < CASES; i++) {
        assert_ptr_equal(uarc__security_policy_find(cases[i].policy->uri), cases[i].policy);
        assert_string_equal(cases[i].policy->certificate_curve, cases[i].curve);
    }
    assert_null(uarc__security_policy_basic256sha256.certificate_curve);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_derived_keys_and_chunks),
        cmocka_unit_test(test_opn_sign_verify),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_ecc_encrypted_secret),
        cmocka_unit_test(test_generated_certificates),
        cmocka_unit_test(test_ec_certificates_validate),
        cmocka_unit_test(test_policy_lookup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
