/*
 * The security policy seen by the secure channel (OPC UA Part 6 §6.7.2, Part 7 policies).
 *
 * The channel's chunk encoder and decoder never know which algorithms run: they ask the policy for
 * a chunk layout (block sizes, signature size, whether to sign and encrypt) and call its sign,
 * verify, encrypt and decrypt functions at fixed places. SecurityPolicy None answers "no signature,
 * no encryption, no padding", so its chunks are plain, but they take the same code path that
 * Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss will take.
 *
 * Asymmetric operations secure OPN chunks with the application instance certificates; symmetric
 * ones secure MSG and CLO chunks with keys derived from the client and server nonces, one key set
 * per SecurityToken (a renewal briefly keeps two alive).
 *
 * Internal. A context belongs to one channel and so to one thread.
 */
#ifndef UARC_CHANNEL_SECURITY_H
#define UARC_CHANNEL_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/types.h"

/* Where padding and signature go in one chunk, and how large they are. */
typedef struct uarc__chunk_layout {
    bool sign;             /* a signature follows the (padded) body */
    bool encrypt;          /* sequence header..signature are encrypted */
    size_t plain_block;    /* plaintext block size when encrypting (else 1) */
    size_t cipher_block;   /* ciphertext block size when encrypting (else 1) */
    size_t signature_size; /* bytes of signature when signing (else 0) */
    bool extra_padding;    /* an ExtraPaddingSize byte follows the padding (keys > 2048 bits) */
} uarc__chunk_layout;

/* What a channel hands the policy when it creates its context. Zero-filled for None. */
typedef struct uarc__security_config {
    uarc_MessageSecurityMode mode; /* Invalid (0): None for None, SignAndEncrypt otherwise */
    uarc_view local_certificate;   /* DER; borrowed during context_new only */
    uarc_view local_private_key;   /* DER; borrowed during context_new only */
    uarc_view remote_certificate;  /* the server's DER certificate (or chain), from its endpoint.
                                      The secured policies need it; the local certificate and key
                                      only to sign and decrypt (not for encrypted secrets). */
    bool server; /* the context plays the server (tests and fuzz targets only; uarc is a client):
                    derive_keys then takes the server nonce first */
} uarc__security_config;

typedef struct uarc__security_policy {
    const char *uri;
    size_t nonce_length; /* bytes of the client nonce sent in OPN (0: null nonce) */
    /* AsymmetricSignatureAlgorithm and AsymmetricEncryptionAlgorithm URIs (Part 7), as named in
     * SignatureData and in an encrypted UserNameIdentityToken. NULL for None. */
    const char *asym_signature_uri;
    const char *asym_encryption_uri;
    /* The OpenSSL group name of the EC curve every key of an ECC policy is on (certificates and
     * ephemeral keys); NULL for None and the RSA policies. */
    const char *certificate_curve;

    /* Creates the per-channel state (parsed keys and certificates). Returns Good,
     * BadSecurityPolicyRejected for a mode the policy cannot do, BadCertificateInvalid, ... */
    uarc_status (*context_new)(const uarc__security_config *config, void **context);
    void (*context_delete)(void *context);
    uarc_MessageSecurityMode (*mode)(const void *context);

    /* ---- asymmetric (OPN) ---- */
    /* Layout of an OPN chunk we send (sending=true: sign with our key, encrypt for the server)
     * or receive. */
    void (*asym_layout)(const void *context, bool sending, uarc__chunk_layout *out);
    /* SenderCertificate and ReceiverCertificateThumbprint we put in the asymmetric header
     * (views into the context; empty data NULL means a null ByteString). */
    uarc_view (*local_certificate)(const void *context);
    uarc_view (*remote_thumbprint)(const void *context);
    /* Checks the asymmetric header of a received OPN: the sender's certificate and the thumbprint
     * of ours it names. */
    uarc_status (*check_asym_header)(const void *context, uarc_view sender_certificate,
                                     uarc_view receiver_thumbprint);
    /* Signs data[0..length) into `signature` (layout.signature_size bytes). */
    uarc_status (*asym_sign)(void *context, const uint8_t *data, size_t length, uint8_t *signature);
    uarc_status (*asym_verify)(void *context, const uint8_t *data, size_t length,
                               const uint8_t *signature);
    /* Encrypts data[0..length) in place with the remote public key; the result is
     * ceil(length / plain_block) * cipher_block bytes and must fit `capacity` (chunks pass a
     * multiple of plain_block; a shorter last block serves encrypted secrets). */
    uarc_status (*asym_encrypt)(void *context, uint8_t *data, size_t length, size_t capacity);
    /* Decrypts data[0..length) (a multiple of cipher_block) in place into *plain_length bytes. */
    uarc_status (*asym_decrypt)(void *context, uint8_t *data, size_t length, size_t *plain_length);

    /* Fills `out` (nonce_length bytes) with the client nonce of a new OPN: random bytes, or for
     * the ECC policies the public key X | Y of a new ephemeral key pair, whose private half the
     * context keeps for the next derive_keys. */
    uarc_status (*new_nonce)(void *context, uint8_t *out, size_t length);

    /* ---- symmetric (MSG, CLO) ---- */
    /* Derives the key set of one SecurityToken from both nonces (Part 6 §6.7.5, §6.8): our own
     * (the client nonce, or the server's when the context plays the server) first. *keys may be
     * NULL for None; keys_delete accepts NULL. */
    uarc_status (*derive_keys)(void *context, uarc_view local_nonce, uarc_view remote_nonce,
                               void **keys);
    void (*keys_delete)(void *keys);
    void (*sym_layout)(const void *context, uarc__chunk_layout *out);
    /* Sign/encrypt with our keys, verify/decrypt with the peer's keys of `keys`.
     * Symmetric ciphers keep the length (cipher_block == plain_block). */
    uarc_status (*sym_sign)(const void *keys, const uint8_t *data, size_t length,
                            uint8_t *signature);
    uarc_status (*sym_verify)(const void *keys, const uint8_t *data, size_t length,
                              const uint8_t *signature);
    uarc_status (*sym_encrypt)(const void *keys, uint8_t *data, size_t length);
    uarc_status (*sym_decrypt)(const void *keys, uint8_t *data, size_t length);
} uarc__security_policy;

#define UARC__SECURITY_POLICY_NONE_URI "http://opcfoundation.org/UA/SecurityPolicy#None"

#define UARC__SECURITY_POLICY_BASIC256SHA256_URI                                                   \
    "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
#define UARC__SECURITY_POLICY_AES128_SHA256_RSAOAEP_URI                                            \
    "http://opcfoundation.org/UA/SecurityPolicy#Aes128_Sha256_RsaOaep"
#define UARC__SECURITY_POLICY_AES256_SHA256_RSAPSS_URI                                             \
    "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss"
#define UARC__SECURITY_POLICY_ECC_NISTP256_URI                                                     \
    "http://opcfoundation.org/UA/SecurityPolicy#ECC_nistP256"
#define UARC__SECURITY_POLICY_ECC_NISTP384_URI                                                     \
    "http://opcfoundation.org/UA/SecurityPolicy#ECC_nistP384"
#define UARC__SECURITY_POLICY_ECC_BRAINPOOLP256R1_URI                                              \
    "http://opcfoundation.org/UA/SecurityPolicy#ECC_brainpoolP256r1"
#define UARC__SECURITY_POLICY_ECC_BRAINPOOLP384R1_URI                                              \
    "http://opcfoundation.org/UA/SecurityPolicy#ECC_brainpoolP384r1"

extern const uarc__security_policy uarc__security_policy_none;
extern const uarc__security_policy uarc__security_policy_basic256sha256;
extern const uarc__security_policy uarc__security_policy_aes128_sha256_rsaoaep;
extern const uarc__security_policy uarc__security_policy_aes256_sha256_rsapss;
extern const uarc__security_policy uarc__security_policy_ecc_nistp256;
extern const uarc__security_policy uarc__security_policy_ecc_nistp384;
extern const uarc__security_policy uarc__security_policy_ecc_brainpoolp256r1;
extern const uarc__security_policy uarc__security_policy_ecc_brainpoolp384r1;

/* P_SHA256(secret, seed) of RFC 5246 §5 (Part 6 §6.7.5), `length` bytes into out. Seeds up to 64
 * bytes. */
uarc_status uarc__p_sha256(uarc_view secret, uarc_view seed, uint8_t *out, size_t length);

/* HKDF (RFC 5869) with `digest` ("SHA256", "SHA384") of `secret` with `salt` and `info`, `length`
 * bytes into out. The ECC policies (Part 6 §6.8) pass the same bytes as salt and info. */
uarc_status uarc__hkdf(const char *digest, uarc_view secret, uarc_view salt, uarc_view info,
                       uint8_t *out, size_t length);
/* HMAC with `digest` ("SHA256", "SHA384") of data[0..length) under `key` into `mac` (the digest's
 * size). */
uarc_status uarc__hmac(const char *digest, uarc_view key, const uint8_t *data, size_t length,
                       uint8_t *mac);
/* AES-CBC without padding (key 16 or 32 bytes, a 16-byte IV) over data[0..length) in place;
 * length a multiple of 16. BadSecurityChecksFailed otherwise. */
uarc_status uarc__aes_cbc(bool encrypting, uarc_view key, const uint8_t iv[16], uint8_t *data,
                          size_t length);

/* The EccEncryptedSecret (Part 4 §7.40.2.5) of `secret` for an ECC policy's context (the
 * channel's: its certificate signs): a new ephemeral key of ours, the receiver's ephemeral public
 * key `receiver_key` (X | Y, from its ECDHKey), `nonce` (the last server nonce), signed, the
 * payload AES-CBC encrypted with keys from HKDF (Part 6 §6.8.3). *out (uarc__malloc'd) holds the
 * whole structure. Returns Good, BadInvalidArgument (not an ECC context, no local key, a key of
 * the wrong length), BadNonceInvalid (the receiver key is not a point of the curve),
 * BadOutOfMemory. */
uarc_status uarc__ecc_encrypt_secret(const uarc__security_policy *policy, void *context,
                                     uarc_view receiver_key, uarc_view nonce, uarc_view secret,
                                     int64_t signing_time, uint8_t **out, size_t *out_length);

/* The implemented policy with this URI (NULL: None); NULL when not implemented. */
const uarc__security_policy *uarc__security_policy_find(const char *uri);

#endif
