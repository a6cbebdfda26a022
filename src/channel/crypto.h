/*
 * Certificate and key helpers over OpenSSL for the secured policies and the client: loading PEM or
 * DER, making an ephemeral self-signed application certificate, reading the subjectAltName URI.
 * Internal. Every output buffer is allocated with uarc__malloc and owned by the caller.
 */
#ifndef UARC_CHANNEL_CRYPTO_H
#define UARC_CHANNEL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "uarc/types.h"

/* Wipes `length` bytes at `data` (uarc__malloc'd; NULL is fine) with OPENSSL_cleanse, which the
 * compiler may not drop, then frees them. For every buffer that held a secret: private key DER,
 * nonces, passwords, encoded requests that carry them. */
void uarc__crypto_free_secret(void *data, size_t length);
/* Reads a certificate file (PEM or DER) into DER. Returns Good, BadCertificateInvalid or
 * BadNotFound (no such file). */
uarc_status uarc__crypto_load_certificate(const char *path, uint8_t **der, size_t *length);
/* Reads an unencrypted private key file (PEM or DER, PKCS#1 or PKCS#8) into PKCS#8 DER; free it
 * with uarc__crypto_free_secret. */
uarc_status uarc__crypto_load_private_key(const char *path, uint8_t **der, size_t *length);
/* The first certificate of `der` (a certificate or a chain of them): its length, 0 when not a
 * certificate. */
size_t uarc__crypto_first_certificate(const uint8_t *der, size_t length);
/* The first certificate of `der` parsed: a new reference (X509_free() it), its length in
 * *consumed; NULL when not a certificate. A channel's certificate is read several times on the
 * way to a session (discovery, the ServerUri check, the policy's context, the session's
 * signatures), and each parse decodes its public key, which in OpenSSL 3 costs about as much as
 * an RSA signature: the last 128 certificates parsed are kept, by the SHA-256 of their bytes,
 * and shared (a process-wide cache under a mutex, at most 128 parsed certificates held). */
struct x509_st *uarc__crypto_parse_certificate(const uint8_t *der, size_t length, size_t *consumed);
/* The length of the DER element at der[0..length) when it is a SEQUENCE with a definite length
 * that fits (a certificate's outer shape), 0 otherwise. Reads the header only: for comparing the
 * first certificates of two chains byte for byte, where parsing them (which decodes the public
 * key) would cost more than the comparison. */
size_t uarc__crypto_der_sequence_length(const uint8_t *der, size_t length);
/* Makes a key and a self-signed certificate valid from now for a year, with subjectAltName URI
 * `application_uri` (and DNS "localhost"): RSA-2048 signed with SHA-256 when `curve` is NULL, else
 * an EC key on `curve` (an OpenSSL group name such as "prime256v1", "secp384r1") signed with
 * SHA-256, or SHA-384 for the 384-bit curves. */
uarc_status uarc__crypto_make_certificate(const char *application_uri, const char *curve,
                                          uint8_t **cert, size_t *cert_length, uint8_t **key,
                                          size_t *key_length);
/* Makes a self-signed certificate as uarc__crypto_make_certificate does, for an existing private
 * key (PKCS#8 or PKCS#1 DER, RSA or EC): many certificates of one key cost a signature each, not a
 * key generation (fleetsim gives each of its servers its own URI so). */
uarc_status uarc__crypto_certify_key(const char *application_uri, const uint8_t *key,
                                     size_t key_length, uint8_t **cert, size_t *cert_length);
/* Copies the first URI of the certificate's subjectAltName into out (NUL-terminated). Returns
 * Good, BadCertificateUriInvalid when it has none, BadCertificateInvalid when unparseable. */
uarc_status uarc__crypto_certificate_uri(const uint8_t *der, size_t length, char *out,
                                         size_t out_size);

#endif
