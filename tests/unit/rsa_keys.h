/*
 * Certificates for RSA keys of any size, made at test time with OpenSSL: to show how the security
 * policies treat keys that are too small, too large or of an odd size.
 *
 * A public key of `bits` bits is built from a modulus 2^(bits-1) + 1, which needs no prime search
 * (an 8192-bit key would take seconds to generate) and serves every public-key operation: only its
 * size matters to these tests, nobody ever decrypts what is encrypted for it. Every helper fails
 * the running cmocka test on an OpenSSL error. Include it after <cmocka.h>.
 */
#ifndef UARC_TESTS_RSA_KEYS_H
#define UARC_TESTS_RSA_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "core/alloc.h"

/* An RSA public key of exactly `bits` bits (exponent 65537). */
static inline EVP_PKEY *rsa_public_key_of_bits(int bits)
{
    BIGNUM *n = BN_new(), *e = BN_new();
    assert_true(n && e && BN_set_bit(n, bits - 1) && BN_set_bit(n, 0) && BN_set_word(e, 65537));
    OSSL_PARAM_BLD *build = OSSL_PARAM_BLD_new();
    assert_true(build && OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, n) &&
                OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, e));
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(build);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *key = NULL;
    assert_true(params && pctx && EVP_PKEY_fromdata_init(pctx) == 1 &&
                EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1);
    assert_int_equal(EVP_PKEY_get_bits(key), bits);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(build);
    BN_free(n);
    BN_free(e);
    return key;
}

/* The DER (uarc__malloc'd) of a certificate for `subject_key`, signed by `signer`. */
static inline uint8_t *rsa_certificate_for(EVP_PKEY *subject_key, EVP_PKEY *signer, size_t *length)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_true(x && name &&
                X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                           (const unsigned char *)"rsa key size", -1, -1, 0) &&
                X509_set_version(x, 2) && X509_set_subject_name(x, name) &&
                X509_set_issuer_name(x, name) && X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
                X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, subject_key) &&
                X509_sign(x, signer, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int der_length = i2d_X509(x, &der);
    assert_true(der_length > 0);
    uint8_t *copy = uarc__malloc((size_t)der_length);
    assert_non_null(copy);
    memcpy(copy, der, (size_t)der_length);
    *length = (size_t)der_length;
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_free(x);
    return copy;
}

/* A certificate for a `bits`-bit public key, signed with the private key `signer_der` (DER). */
static inline uint8_t *rsa_certificate_of_bits(int bits, const uint8_t *signer_der,
                                               size_t signer_length, size_t *length)
{
    const unsigned char *p = signer_der;
    EVP_PKEY *signer = d2i_AutoPrivateKey(NULL, &p, (long)signer_length);
    assert_non_null(signer);
    EVP_PKEY *key = rsa_public_key_of_bits(bits);
    uint8_t *cert = rsa_certificate_for(key, signer, length);
    EVP_PKEY_free(key);
    EVP_PKEY_free(signer);
    return cert;
}

/* A real `bits`-bit key pair (keep `bits` small: it is generated) and its self-signed
 * certificate, both as uarc__malloc'd DER. */
static inline void rsa_identity_of_bits(int bits, uint8_t **cert, size_t *cert_length,
                                        uint8_t **key, size_t *key_length)
{
    EVP_PKEY *pkey = EVP_RSA_gen((unsigned int)bits);
    assert_non_null(pkey);
    *cert = rsa_certificate_for(pkey, pkey, cert_length);
    unsigned char *der = NULL;
    int der_length = i2d_PrivateKey(pkey, &der);
    assert_true(der_length > 0);
    *key = uarc__malloc((size_t)der_length);
    assert_non_null(*key);
    memcpy(*key, der, (size_t)der_length);
    *key_length = (size_t)der_length;
    OPENSSL_clear_free(der, (size_t)der_length);
    EVP_PKEY_free(pkey);
}

#endif
