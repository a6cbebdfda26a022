/*
 * The ECC security policies of OPC UA Part 7 (1.05): ECC_nistP256, ECC_nistP384,
 * ECC_brainpoolP256r1 and ECC_brainpoolP384r1, over OpenSSL 3. They differ only in the parameters
 * below.
 *
 * ECC keys sign but do not encrypt, so OPN chunks are signed with ECDSA (r and s, each as long as
 * a coordinate of the curve) and never encrypted, in both modes (Part 6 §6.8.2). The nonces of OPN
 * are ephemeral ECDH public keys (X and Y without the 0x04 prefix); the shared secret of ours and
 * the server's gives the symmetric keys through HKDF (RFC 5869), with salt and info
 * L | "opcua-client" | ClientNonce | ServerNonce for the client's keys and
 * L | "opcua-server" | ServerNonce | ClientNonce for the server's. MSG and CLO chunks are then
 * signed with HMAC and, with SignAndEncrypt, encrypted with AES-CBC as the RSA policies do.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "channel/crypto.h"
#include "channel/security.h"
#include "core/alloc.h"

#define AES_BLOCK      16u
#define THUMBPRINT     20u /* SHA-1 of the DER certificate */
#define MAX_COORDINATE 48u
#define MAX_SIGN_KEY   48u
#define LABEL_LENGTH   12u /* "opcua-client", "opcua-server" */

typedef struct ecc_params {
    const char *group;   /* OpenSSL group name of the curve of ephemeral and certificate keys */
    size_t coordinate;   /* bytes of one coordinate: nonces are twice that, so are signatures */
    const char *digest;  /* of ECDSA, HMAC and HKDF */
    size_t sym_sign_key; /* HMAC key and signature bytes */
    size_t sym_enc_key;  /* AES key bytes */
} ecc_params;

static const ecc_params nist_p256 = {"prime256v1", 32, "SHA256", 32, 16};
static const ecc_params nist_p384 = {"secp384r1", 48, "SHA384", 48, 32};
static const ecc_params brainpool_p256 = {"brainpoolP256r1", 32, "SHA256", 32, 16};
static const ecc_params brainpool_p384 = {"brainpoolP384r1", 48, "SHA384", 48, 32};

typedef struct ecc_context {
    const ecc_params *p;
    uarc_MessageSecurityMode mode;
    bool server;         /* plays the server: the labels of the two key sets swap */
    EVP_PKEY *local_key; /* NULL when no local certificate was given */
    uint8_t *local_cert;
    size_t local_cert_length;
    EVP_PKEY *remote_key;
    uint8_t *remote_cert; /* the first certificate of what was given */
    size_t remote_cert_length;
    uint8_t remote_thumbprint[THUMBPRINT];
    uint8_t local_thumbprint[THUMBPRINT];
    EVP_PKEY *ephemeral; /* the key pair of the OPN in flight; its public half is the nonce */
} ecc_context;

/* One side's keys: signing key, encrypting key, IV. */
typedef struct ecc_side {
    uint8_t sign[MAX_SIGN_KEY], enc[32], iv[AES_BLOCK];
} ecc_side;

typedef struct ecc_keys {
    const ecc_params *p;
    ecc_side local, remote; /* ours sign and encrypt, the peer's verify and decrypt */
} ecc_keys;

static void ecc_context_delete(void *context)
{
    ecc_context *c = context;
    if (!c)
        return;
    EVP_PKEY_free(c->local_key);
    EVP_PKEY_free(c->remote_key);
    EVP_PKEY_free(c->ephemeral);
    uarc__free(c->local_cert);
    uarc__free(c->remote_cert);
    uarc__free(c);
}

/* Whether `key` is an EC key on the policy's curve: the signature sizes and the ephemeral keys
 * rely on it. */
static bool on_curve(const ecc_params *p, EVP_PKEY *key)
{
    char group[64];
    size_t n = 0;
    return key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
           EVP_PKEY_get_group_name(key, group, sizeof group, &n) == 1 &&
           strcmp(group, p->group) == 0;
}

/* Parses the first certificate of `der` and copies it; its key must be on the policy's curve. */
static uarc_status take_certificate(const ecc_params *p, uarc_view der, uint8_t **copy,
                                    size_t *length, EVP_PKEY **key, uint8_t thumbprint[THUMBPRINT])
{
    X509 *x = uarc__crypto_parse_certificate(der.data, der.length, length);
    if (!x)
        return UARC_BadCertificateInvalid;
    *key = X509_get_pubkey(x);
    X509_free(x);
    if (!*key || EVP_PKEY_get_base_id(*key) != EVP_PKEY_EC)
        return UARC_BadCertificateInvalid;
    if (!on_curve(p, *key))
        return UARC_BadCertificatePolicyCheckFailed;
    *copy = uarc__malloc(*length);
    if (!*copy)
        return UARC_BadOutOfMemory;
    memcpy(*copy, der.data, *length);
    unsigned int n = 0;
    if (!EVP_Digest(*copy, *length, thumbprint, &n, EVP_sha1(), NULL) || n != THUMBPRINT)
        return UARC_BadInternalError;
    return UARC_Good;
}

static uarc_status ecc_context_new(const ecc_params *params, const uarc__security_config *config,
                                   void **context)
{
    uarc_MessageSecurityMode mode = config->mode == UARC_MessageSecurityMode_Invalid
                                        ? UARC_MessageSecurityMode_SignAndEncrypt
                                        : config->mode;
    if (mode != UARC_MessageSecurityMode_Sign && mode != UARC_MessageSecurityMode_SignAndEncrypt)
        return UARC_BadSecurityModeRejected;
    if (!config->remote_certificate.data)
        return UARC_BadCertificateInvalid;
    ecc_context *c = uarc__calloc(1, sizeof *c);
    if (!c)
        return UARC_BadOutOfMemory;
    c->p = params;
    c->mode = mode;
    c->server = config->server;
    EVP_PKEY *unused = NULL;
    uarc_status s = take_certificate(params, config->remote_certificate, &c->remote_cert,
                                     &c->remote_cert_length, &c->remote_key, c->remote_thumbprint);
    if (s == UARC_Good && config->local_certificate.data) {
        s = take_certificate(params, config->local_certificate, &c->local_cert,
                             &c->local_cert_length, &unused, c->local_thumbprint);
        const unsigned char *q = config->local_private_key.data;
        if (s == UARC_Good && q)
            c->local_key = d2i_AutoPrivateKey(NULL, &q, (long)config->local_private_key.length);
        if (s == UARC_Good &&
            (!on_curve(params, c->local_key) || EVP_PKEY_eq(c->local_key, unused) != 1))
            s = UARC_BadCertificateInvalid; /* no key, or not the certificate's key */
        EVP_PKEY_free(unused);
    }
    if (s != UARC_Good) {
        ecc_context_delete(c);
        return s;
    }
    *context = c;
    return UARC_Good;
}

static uarc_status p256_context_new(const uarc__security_config *config, void **context)
{
    return ecc_context_new(&nist_p256, config, context);
}

static uarc_status p384_context_new(const uarc__security_config *config, void **context)
{
    return ecc_context_new(&nist_p384, config, context);
}

static uarc_status bp256_context_new(const uarc__security_config *config, void **context)
{
    return ecc_context_new(&brainpool_p256, config, context);
}

static uarc_status bp384_context_new(const uarc__security_config *config, void **context)
{
    return ecc_context_new(&brainpool_p384, config, context);
}

static uarc_MessageSecurityMode ecc_mode(const void *context)
{
    return ((const ecc_context *)context)->mode;
}

/* ---- asymmetric ---- */

static void ecc_asym_layout(const void *context, bool sending, uarc__chunk_layout *out)
{
    (void)sending;
    const ecc_context *c = context;
    *out = (uarc__chunk_layout){
        .sign = true,
        .encrypt = false,
        .plain_block = 1,
        .cipher_block = 1,
        .signature_size = 2 * c->p->coordinate,
        .extra_padding = false,
    };
}

static uarc_view ecc_local_certificate(const void *context)
{
    const ecc_context *c = context;
    return (uarc_view){c->local_cert, c->local_cert_length};
}

static uarc_view ecc_remote_thumbprint(const void *context)
{
    const ecc_context *c = context;
    return (uarc_view){c->remote_thumbprint, THUMBPRINT};
}

static uarc_status ecc_check_asym_header(const void *context, uarc_view sender_certificate,
                                         uarc_view receiver_thumbprint)
{
    const ecc_context *c = context;
    /* as with RSA: the sender is the server we were given, naming our certificate */
    if (!sender_certificate.data || sender_certificate.length < c->remote_cert_length ||
        memcmp(sender_certificate.data, c->remote_cert, c->remote_cert_length) != 0)
        return UARC_BadCertificateInvalid;
    if (!c->local_key || receiver_thumbprint.length != THUMBPRINT ||
        memcmp(receiver_thumbprint.data, c->local_thumbprint, THUMBPRINT) != 0)
        return UARC_BadCertificateInvalid;
    return UARC_Good;
}

/* OPC UA carries r and s as two fixed-size big-endian numbers, OpenSSL a DER ECDSA-Sig-Value. */
static uarc_status ecc_asym_sign(void *context, const uint8_t *data, size_t length,
                                 uint8_t *signature)
{
    ecc_context *c = context;
    if (!c->local_key)
        return UARC_BadCertificateInvalid;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[2 * MAX_COORDINATE + 16];
    size_t der_length = sizeof der;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r = NULL, *s = NULL;
    const unsigned char *q = der;
    size_t n = c->p->coordinate;
    bool ok = md &&
              EVP_DigestSignInit_ex(md, NULL, c->p->digest, NULL, NULL, c->local_key, NULL) == 1 &&
              EVP_DigestSign(md, der, &der_length, data, length) == 1 &&
              (sig = d2i_ECDSA_SIG(NULL, &q, (long)der_length)) != NULL;
    if (ok) {
        ECDSA_SIG_get0(sig, &r, &s);
        ok = BN_bn2binpad(r, signature, (int)n) == (int)n &&
             BN_bn2binpad(s, signature + n, (int)n) == (int)n;
    }
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    return ok ? UARC_Good : UARC_BadSecurityChecksFailed;
}

static uarc_status ecc_asym_verify(void *context, const uint8_t *data, size_t length,
                                   const uint8_t *signature)
{
    ecc_context *c = context;
    size_t n = c->p->coordinate;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(signature, (int)n, NULL), *s = BN_bin2bn(signature + n, (int)n, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return UARC_BadOutOfMemory;
    }
    unsigned char *der = NULL;
    int der_length = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok =
        der_length > 0 && md &&
        EVP_DigestVerifyInit_ex(md, NULL, c->p->digest, NULL, NULL, c->remote_key, NULL) == 1 &&
        EVP_DigestVerify(md, der, (size_t)der_length, data, length) == 1;
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok ? UARC_Good : UARC_BadSecurityChecksFailed;
}

/* Nothing is encrypted with ECC keys: OPN goes signed only, and a password needs an
 * EccEncryptedSecret, which is not implemented. */
static uarc_status ecc_asym_encrypt(void *context, uint8_t *data, size_t length, size_t capacity)
{
    (void)context, (void)data, (void)length, (void)capacity;
    return UARC_BadNotSupported;
}

static uarc_status ecc_asym_decrypt(void *context, uint8_t *data, size_t length,
                                    size_t *plain_length)
{
    (void)context, (void)data, (void)length, (void)plain_length;
    return UARC_BadNotSupported;
}

/* A new ephemeral key pair for this OPN; its public key X | Y is the client nonce. */
/* A new ephemeral key pair on the policy's curve into *key, its public key X | Y into out. */
static uarc_status make_ephemeral(const ecc_params *p, EVP_PKEY **key, uint8_t *out)
{
    *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", p->group);
    uint8_t point[1 + 2 * MAX_COORDINATE];
    size_t n = 0;
    if (!*key ||
        EVP_PKEY_get_octet_string_param(*key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof point, &n) != 1 ||
        n != 1 + 2 * p->coordinate || point[0] != 0x04)
        return UARC_BadInternalError;
    memcpy(out, point + 1, 2 * p->coordinate);
    return UARC_Good;
}

static uarc_status ecc_new_nonce(void *context, uint8_t *out, size_t length)
{
    ecc_context *c = context;
    if (length != 2 * c->p->coordinate)
        return UARC_BadInvalidArgument;
    EVP_PKEY_free(c->ephemeral);
    return make_ephemeral(c->p, &c->ephemeral, out);
}

/* The server's ephemeral public key from its nonce X | Y, checked to be a point of the curve. */
static EVP_PKEY *peer_key(const ecc_params *p, uarc_view nonce)
{
    uint8_t point[1 + 2 * MAX_COORDINATE];
    point[0] = 0x04;
    memcpy(point + 1, nonce.data, nonce.length);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)p->group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + nonce.length),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    ctx = key ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
    if (key && (!ctx || EVP_PKEY_public_check(ctx) != 1)) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* ---- symmetric ---- */

uarc_status uarc__hkdf(const char *digest, uarc_view secret, uarc_view salt, uarc_view info,
                       uint8_t *out, size_t length)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret.data, secret.length),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt.data, salt.length),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info.data, info.length),
        OSSL_PARAM_construct_end(),
    };
    bool ok = ctx && EVP_KDF_derive(ctx, out, length, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? UARC_Good : UARC_BadInternalError;
}

/* The keys one side sends with: HKDF over the shared secret with salt = info =
 * L (UInt16) | label | that side's nonce | the other's. */
static uarc_status side_keys(const ecc_params *p, uarc_view secret, const char *label,
                             uarc_view first, uarc_view second, ecc_side *out)
{
    uint8_t salt[2 + LABEL_LENGTH + 4 * MAX_COORDINATE];
    uint8_t material[MAX_SIGN_KEY + 32 + AES_BLOCK];
    size_t sign = p->sym_sign_key, enc = p->sym_enc_key, length = sign + enc + AES_BLOCK;
    salt[0] = (uint8_t)(length & 0xFF);
    salt[1] = (uint8_t)(length >> 8);
    memcpy(salt + 2, label, LABEL_LENGTH);
    memcpy(salt + 2 + LABEL_LENGTH, first.data, first.length);
    memcpy(salt + 2 + LABEL_LENGTH + first.length, second.data, second.length);
    uarc_view both = {salt, 2 + LABEL_LENGTH + first.length + second.length};
    uarc_status s = uarc__hkdf(p->digest, secret, both, both, material, length);
    if (s == UARC_Good) {
        memcpy(out->sign, material, sign);
        memcpy(out->enc, material + sign, enc);
        memcpy(out->iv, material + sign + enc, AES_BLOCK);
    }
    OPENSSL_cleanse(material, sizeof material);
    return s;
}

static uarc_status ecc_derive_keys(void *context, uarc_view local_nonce, uarc_view remote_nonce,
                                   void **keys)
{
    ecc_context *c = context;
    size_t nonce = 2 * c->p->coordinate;
    if (local_nonce.length != nonce || remote_nonce.length != nonce || !c->ephemeral)
        return UARC_BadNonceInvalid;
    EVP_PKEY *peer = peer_key(c->p, remote_nonce);
    if (!peer)
        return UARC_BadNonceInvalid;
    uint8_t secret[MAX_COORDINATE];
    size_t secret_length = sizeof secret;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, c->ephemeral, NULL);
    bool ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
              EVP_PKEY_derive(ctx, secret, &secret_length) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    /* the ephemeral key served its one derivation; a renewal makes a new one */
    EVP_PKEY_free(c->ephemeral);
    c->ephemeral = NULL;
    ecc_keys *k = ok ? uarc__calloc(1, sizeof *k) : NULL;
    uarc_status s = !ok ? UARC_BadSecurityChecksFailed : k ? UARC_Good : UARC_BadOutOfMemory;
    uarc_view shared = {secret, secret_length};
    const char *mine = c->server ? "opcua-server" : "opcua-client";
    const char *theirs = c->server ? "opcua-client" : "opcua-server";
    if (s == UARC_Good) {
        k->p = c->p;
        s = side_keys(c->p, shared, mine, local_nonce, remote_nonce, &k->local);
    }
    if (s == UARC_Good)
        s = side_keys(c->p, shared, theirs, remote_nonce, local_nonce, &k->remote);
    OPENSSL_cleanse(secret, sizeof secret);
    if (s != UARC_Good) {
        if (k)
            OPENSSL_cleanse(k, sizeof *k);
        uarc__free(k);
        return s;
    }
    *keys = k;
    return UARC_Good;
}

static void ecc_keys_delete(void *keys)
{
    if (!keys)
        return;
    OPENSSL_cleanse(keys, sizeof(ecc_keys));
    uarc__free(keys);
}

static void ecc_sym_layout(const void *context, uarc__chunk_layout *out)
{
    const ecc_context *c = context;
    *out = (uarc__chunk_layout){
        .sign = true,
        .encrypt = c->mode == UARC_MessageSecurityMode_SignAndEncrypt,
        .plain_block = AES_BLOCK,
        .cipher_block = AES_BLOCK,
        .signature_size = c->p->sym_sign_key,
        .extra_padding = false,
    };
}

static uarc_status ecc_sym_sign(const void *keys, const uint8_t *data, size_t length,
                                uint8_t *signature)
{
    const ecc_keys *k = keys;
    return uarc__hmac(k->p->digest, (uarc_view){k->local.sign, k->p->sym_sign_key}, data, length,
                      signature);
}

static uarc_status ecc_sym_verify(const void *keys, const uint8_t *data, size_t length,
                                  const uint8_t *signature)
{
    const ecc_keys *k = keys;
    uint8_t expected[MAX_SIGN_KEY];
    uarc_status s = uarc__hmac(k->p->digest, (uarc_view){k->remote.sign, k->p->sym_sign_key}, data,
                               length, expected);
    if (s != UARC_Good)
        return s;
    return CRYPTO_memcmp(expected, signature, k->p->sym_sign_key) == 0
               ? UARC_Good
               : UARC_BadSecurityChecksFailed;
}

static uarc_status ecc_sym_encrypt(const void *keys, uint8_t *data, size_t length)
{
    const ecc_keys *k = keys;
    return uarc__aes_cbc(true, (uarc_view){k->local.enc, k->p->sym_enc_key}, k->local.iv, data,
                         length);
}

static uarc_status ecc_sym_decrypt(const void *keys, uint8_t *data, size_t length)
{
    const ecc_keys *k = keys;
    return uarc__aes_cbc(false, (uarc_view){k->remote.enc, k->p->sym_enc_key}, k->remote.iv, data,
                         length);
}

/* ---- EccEncryptedSecret (Part 4 §7.40.2.5, Part 6 §6.8.3) ---- */

static size_t put_bytes(uint8_t *out, const uint8_t *data, size_t length)
{
    out[0] = (uint8_t)length;
    out[1] = (uint8_t)(length >> 8);
    out[2] = (uint8_t)(length >> 16);
    out[3] = (uint8_t)(length >> 24);
    if (length)
        memcpy(out + 4, data, length);
    return 4 + length;
}

uarc_status uarc__ecc_encrypt_secret(const uarc__security_policy *policy, void *context,
                                     uarc_view receiver_key, uarc_view nonce, uarc_view secret,
                                     int64_t signing_time, uint8_t **out, size_t *out_length)
{
    ecc_context *c = context;
    const ecc_params *p = c->p;
    size_t key_length = 2 * p->coordinate, signature = 2 * p->coordinate;
    if (!policy->certificate_curve || !c->local_key || receiver_key.length != key_length ||
        nonce.length > 1024 || secret.length > 65536)
        return UARC_BadInvalidArgument;
    /* our own ephemeral key for this secret alone, then the keys of Part 6 §6.8.3: HKDF with
     * salt = info = L | "opcua-secret" | SenderPublicKey | ReceiverPublicKey. Not the channel's
     * ephemeral key: that of an OPN in flight must stay. */
    uint8_t sender[2 * MAX_COORDINATE];
    EVP_PKEY *ephemeral = NULL;
    uarc_status s = make_ephemeral(p, &ephemeral, sender);
    EVP_PKEY *peer = s == UARC_Good ? peer_key(p, receiver_key) : NULL;
    uint8_t shared[MAX_COORDINATE], salt[2 + LABEL_LENGTH + 4 * MAX_COORDINATE], keys[32 + 16];
    size_t shared_length = sizeof shared, length = p->sym_enc_key + AES_BLOCK;
    EVP_PKEY_CTX *ctx = peer ? EVP_PKEY_CTX_new_from_pkey(NULL, ephemeral, NULL) : NULL;
    if (s == UARC_Good &&
        (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
         EVP_PKEY_derive(ctx, shared, &shared_length) != 1))
        s = peer ? UARC_BadSecurityChecksFailed : UARC_BadNonceInvalid;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(ephemeral);
    if (s == UARC_Good) {
        salt[0] = (uint8_t)length;
        salt[1] = (uint8_t)(length >> 8);
        memcpy(salt + 2, "opcua-secret", LABEL_LENGTH);
        memcpy(salt + 2 + LABEL_LENGTH, sender, key_length);
        memcpy(salt + 2 + LABEL_LENGTH + key_length, receiver_key.data, key_length);
        uarc_view both = {salt, 2 + LABEL_LENGTH + 2 * key_length};
        s = uarc__hkdf(p->digest, (uarc_view){shared, shared_length}, both, both, keys, length);
    }
    OPENSSL_cleanse(shared, sizeof shared);
    if (s != UARC_Good) {
        OPENSSL_cleanse(keys, sizeof keys);
        return s;
    }
    /* the payload (nonce, secret, padding, its 2-byte size) fills whole AES blocks, with at least
     * one block of secret and padding */
    size_t base = 4 + nonce.length + 4 + secret.length;
    size_t padding = (AES_BLOCK - (base + 2) % AES_BLOCK) % AES_BLOCK;
    if (padding + secret.length < AES_BLOCK)
        padding += AES_BLOCK;
    size_t payload = base + padding + 2;
    const char *uri = policy->uri;
    size_t uri_length = strlen(uri);
    size_t header = 4 + 1 + 4 + 4 + uri_length + 4 + 8 + 2, key_data = 2 * (4 + key_length);
    size_t total = header + key_data + payload + signature;
    uint8_t *b = uarc__malloc(total);
    if (!b) {
        OPENSSL_cleanse(keys, sizeof keys);
        return UARC_BadOutOfMemory;
    }
    size_t pos = 0;
    /* TypeId: the FourByte NodeId of the EccEncryptedSecret DataType (17546), EncodingMask 1 */
    b[pos++] = 0x01;
    b[pos++] = 0;
    b[pos++] = 17546 & 0xFF;
    b[pos++] = 17546 >> 8;
    b[pos++] = 0x01;
    uint32_t after_length = (uint32_t)(total - 9); /* what follows the Length field */
    for (int i = 0; i < 4; i++)
        b[pos++] = (uint8_t)(after_length >> (8 * i));
    pos += put_bytes(b + pos, (const uint8_t *)uri, uri_length);
    pos += put_bytes(b + pos, NULL, 0); /* Certificate: the channel's, known to the receiver */
    for (int i = 0; i < 8; i++)
        b[pos++] = (uint8_t)((uint64_t)signing_time >> (8 * i));
    b[pos++] = (uint8_t)key_data;
    b[pos++] = (uint8_t)(key_data >> 8);
    pos += put_bytes(b + pos, sender, key_length);
    pos += put_bytes(b + pos, receiver_key.data, key_length);
    size_t encrypted = pos;
    pos += put_bytes(b + pos, nonce.data, nonce.length);
    pos += put_bytes(b + pos, secret.data, secret.length);
    memset(b + pos, (int)(padding & 0xFF), padding);
    pos += padding;
    b[pos++] = (uint8_t)padding;
    b[pos++] = (uint8_t)(padding >> 8);
    s = uarc__aes_cbc(true, (uarc_view){keys, p->sym_enc_key}, keys + p->sym_enc_key, b + encrypted,
                      payload);
    OPENSSL_cleanse(keys, sizeof keys);
    if (s == UARC_Good)
        s = ecc_asym_sign(c, b, pos, b + pos);
    if (s != UARC_Good) {
        OPENSSL_cleanse(b, total);
        uarc__free(b);
        return s;
    }
    *out = b;
    *out_length = total;
    return UARC_Good;
}

/* Part 7 names no asymmetric signature URI that every stack takes for these policies: the
 * reference stack signs with an empty one and accepts the policy URI, which is what we send. */
#define ECC_POLICY(NAME, URI, NEW, GROUP, COORDINATE)                                              \
    const uarc__security_policy NAME = {                                                           \
        .uri = URI,                                                                                \
        .nonce_length = 2 * (COORDINATE),                                                          \
        .asym_signature_uri = URI,                                                                 \
        .asym_encryption_uri = NULL,                                                               \
        .certificate_curve = GROUP,                                                                \
        .context_new = NEW,                                                                        \
        .context_delete = ecc_context_delete,                                                      \
        .mode = ecc_mode,                                                                          \
        .asym_layout = ecc_asym_layout,                                                            \
        .local_certificate = ecc_local_certificate,                                                \
        .remote_thumbprint = ecc_remote_thumbprint,                                                \
        .check_asym_header = ecc_check_asym_header,                                                \
        .asym_sign = ecc_asym_sign,                                                                \
        .asym_verify = ecc_asym_verify,                                                            \
        .asym_encrypt = ecc_asym_encrypt,                                                          \
        .asym_decrypt = ecc_asym_decrypt,                                                          \
        .new_nonce = ecc_new_nonce,                                                                \
        .derive_keys = ecc_derive_keys,                                                            \
        .keys_delete = ecc_keys_delete,                                                            \
        .sym_layout = ecc_sym_layout,                                                              \
        .sym_sign = ecc_sym_sign,                                                                  \
        .sym_verify = ecc_sym_verify,                                                              \
        .sym_encrypt = ecc_sym_encrypt,                                                            \
        .sym_decrypt = ecc_sym_decrypt,                                                            \
    }

ECC_POLICY(uarc__security_policy_ecc_nistp256, UARC__SECURITY_POLICY_ECC_NISTP256_URI,
           p256_context_new, "prime256v1", 32);
ECC_POLICY(uarc__security_policy_ecc_nistp384, UARC__SECURITY_POLICY_ECC_NISTP384_URI,
           p384_context_new, "secp384r1", 48);
ECC_POLICY(uarc__security_policy_ecc_brainpoolp256r1, UARC__SECURITY_POLICY_ECC_BRAINPOOLP256R1_URI,
           bp256_context_new, "brainpoolP256r1", 32);
ECC_POLICY(uarc__security_policy_ecc_brainpoolp384r1, UARC__SECURITY_POLICY_ECC_BRAINPOOLP384R1_URI,
           bp384_context_new, "brainpoolP384r1", 48);
