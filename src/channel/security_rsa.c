/*
 * The RSA/AES security policies of OPC UA Part 7: Basic256Sha256, Aes128_Sha256_RsaOaep and
 * Aes256_Sha256_RsaPss, over OpenSSL 3. They differ only in the parameters below.
 *
 * OPN chunks are signed with our private key and encrypted block by block with the server's public
 * key (RSA-OAEP), in both modes Sign and SignAndEncrypt (Part 6 §6.7.4). MSG and CLO chunks are
 * signed with HMAC-SHA256 and, with SignAndEncrypt, encrypted with AES-CBC, using keys derived per
 * token by P_SHA256 from both nonces (Part 6 §6.7.5).
 */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "channel/crypto.h"
#include "channel/security.h"
#include "core/alloc.h"

#define SYM_SIGN_KEY 32u /* HMAC-SHA256 key and signature */
#define AES_BLOCK    16u
#define THUMBPRINT   20u /* SHA-1 of the DER certificate */
/* Part 7 fixes these policies' AsymmetricKeyLength to 2048-4096 bits */
#define MIN_KEY_BITS  2048
#define MAX_KEY_BITS  4096
#define MAX_KEY_BYTES (MAX_KEY_BITS / 8)
/* Part 7: RSA-PSS-SHA2-256 uses a salt as long as the SHA-256 digest */
#define PSS_SALT_LENGTH 32

typedef struct rsa_params {
    bool pss;           /* asymmetric signature RSA-PSS-SHA256, else RSA-PKCS#1 v1.5-SHA256 */
    bool oaep_sha256;   /* asymmetric encryption RSA-OAEP-SHA256, else RSA-OAEP-SHA1 */
    size_t sym_enc_key; /* AES key bytes: 32 or 16 */
} rsa_params;

static const rsa_params basic256sha256 = {false, false, 32};
static const rsa_params aes128_sha256_rsaoaep = {false, false, 16};
static const rsa_params aes256_sha256_rsapss = {true, true, 32};

typedef struct rsa_context {
    const rsa_params *p;
    uarc_MessageSecurityMode mode;
    EVP_PKEY *local_key; /* NULL when no local certificate was given */
    uint8_t *local_cert;
    size_t local_cert_length;
    size_t local_bytes;
    EVP_PKEY *remote_key;
    uint8_t *remote_cert; /* the first certificate of what was given */
    size_t remote_cert_length;
    size_t remote_bytes;
    uint8_t remote_thumbprint[THUMBPRINT];
    uint8_t local_thumbprint[THUMBPRINT];
} rsa_context;

typedef struct rsa_keys {
    const rsa_params *p;
    uint8_t client_sign[SYM_SIGN_KEY], client_enc[32], client_iv[AES_BLOCK];
    uint8_t server_sign[SYM_SIGN_KEY], server_enc[32], server_iv[AES_BLOCK];
} rsa_keys;

static size_t oaep_overhead(const rsa_params *p)
{
    return p->oaep_sha256 ? 66 : 42; /* 2 * hash length + 2 */
}

static void rsa_context_delete(void *context)
{
    rsa_context *c = context;
    if (!c)
        return;
    EVP_PKEY_free(c->local_key);
    EVP_PKEY_free(c->remote_key);
    uarc__free(c->local_cert);
    uarc__free(c->remote_cert);
    uarc__free(c);
}

/* Parses the first certificate of `der` and copies it. Its key must be RSA of a size the policies
 * allow, whoever vouched for the certificate: the block sizes and buffers below rely on it. */
static uarc_status take_certificate(uarc_view der, uint8_t **copy, size_t *length, EVP_PKEY **key,
                                    uint8_t thumbprint[THUMBPRINT])
{
    X509 *x = uarc__crypto_parse_certificate(der.data, der.length, length);
    if (!x)
        return UARC_BadCertificateInvalid;
    *key = X509_get_pubkey(x);
    X509_free(x);
    if (!*key || EVP_PKEY_get_base_id(*key) != EVP_PKEY_RSA)
        return UARC_BadCertificateInvalid;
    int bits = EVP_PKEY_get_bits(*key);
    if (bits < MIN_KEY_BITS || bits > MAX_KEY_BITS || EVP_PKEY_get_size(*key) > MAX_KEY_BYTES)
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

/* The last private key parsed, shared by reference (OpenSSL keys may be used from several
 * threads): a process that opens many channels opens them all with the same key, and parsing it
 * (OpenSSL 3 decoders) and setting up its RSA blinding again for each was about a fifth of a
 * secured session's CPU time in a connect storm. The key is recognised by the SHA-256 of its DER,
 * so no copy of the secret is kept beside the key itself. */
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t key_cache_digest[SHA256_DIGEST_LENGTH];
static EVP_PKEY *key_cache_key;

static EVP_PKEY *private_key(uarc_view der)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    if (!SHA256(der.data, der.length, digest))
        return NULL;
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&key_cache_lock);
    if (key_cache_key && memcmp(digest, key_cache_digest, sizeof digest) == 0 &&
        EVP_PKEY_up_ref(key_cache_key) == 1)
        key = key_cache_key;
    pthread_mutex_unlock(&key_cache_lock);
    if (key)
        return key;
    const unsigned char *p = der.data;
    key = d2i_AutoPrivateKey(NULL, &p, (long)der.length);
    if (!key || EVP_PKEY_up_ref(key) != 1)
        return key;
    pthread_mutex_lock(&key_cache_lock);
    EVP_PKEY *old = key_cache_key;
    key_cache_key = key;
    memcpy(key_cache_digest, digest, sizeof digest);
    pthread_mutex_unlock(&key_cache_lock);
    EVP_PKEY_free(old);
    return key;
}

static uarc_status rsa_context_new(const rsa_params *params, const uarc__security_config *config,
                                   void **context)
{
    uarc_MessageSecurityMode mode = config->mode == UARC_MessageSecurityMode_Invalid
                                        ? UARC_MessageSecurityMode_SignAndEncrypt
                                        : config->mode;
    if (mode != UARC_MessageSecurityMode_Sign && mode != UARC_MessageSecurityMode_SignAndEncrypt)
        return UARC_BadSecurityModeRejected;
    if (!config->remote_certificate.data)
        return UARC_BadCertificateInvalid;
    rsa_context *c = uarc__calloc(1, sizeof *c);
    if (!c)
        return UARC_BadOutOfMemory;
    c->p = params;
    c->mode = mode;
    EVP_PKEY *unused = NULL;
    uarc_status s = take_certificate(config->remote_certificate, &c->remote_cert,
                                     &c->remote_cert_length, &c->remote_key, c->remote_thumbprint);
    if (s == UARC_Good && config->local_certificate.data) {
        s = take_certificate(config->local_certificate, &c->local_cert, &c->local_cert_length,
                             &unused, c->local_thumbprint);
        if (s == UARC_Good && config->local_private_key.data)
            c->local_key = private_key(config->local_private_key);
        if (s == UARC_Good &&
            (!c->local_key || EVP_PKEY_get_base_id(c->local_key) != EVP_PKEY_RSA ||
             EVP_PKEY_eq(c->local_key, unused) != 1))
            s = UARC_BadCertificateInvalid; /* no key, or not the certificate's key */
        EVP_PKEY_free(unused);
    }
    if (s != UARC_Good) {
        rsa_context_delete(c);
        return s;
    }
    c->remote_bytes = (size_t)EVP_PKEY_get_size(c->remote_key);
    c->local_bytes = c->local_key ? (size_t)EVP_PKEY_get_size(c->local_key) : 0;
    *context = c;
    return UARC_Good;
}

static uarc_status b256_context_new(const uarc__security_config *config, void **context)
{
    return rsa_context_new(&basic256sha256, config, context);
}

static uarc_status a128_context_new(const uarc__security_config *config, void **context)
{
    return rsa_context_new(&aes128_sha256_rsaoaep, config, context);
}

static uarc_status a256_context_new(const uarc__security_config *config, void **context)
{
    return rsa_context_new(&aes256_sha256_rsapss, config, context);
}

static uarc_MessageSecurityMode rsa_mode(const void *context)
{
    return ((const rsa_context *)context)->mode;
}

/* ---- asymmetric ---- */

/* Plaintext bytes one RSA-OAEP block of a `bytes`-byte key holds (0: none). */
static size_t oaep_plain_block(const rsa_params *p, size_t bytes)
{
    return bytes > oaep_overhead(p) ? bytes - oaep_overhead(p) : 0;
}

static void rsa_asym_layout(const void *context, bool sending, uarc__chunk_layout *out)
{
    const rsa_context *c = context;
    /* Sending: we sign with our key and encrypt with the server's; receiving the reverse. */
    size_t encrypting = sending ? c->remote_bytes : c->local_bytes;
    size_t signing = sending ? c->local_bytes : c->remote_bytes;
    *out = (uarc__chunk_layout){
        .sign = true,
        .encrypt = true,
        .plain_block = oaep_plain_block(c->p, encrypting),
        .cipher_block = encrypting,
        .signature_size = signing,
        .extra_padding = encrypting > 256,
    };
}

static uarc_view rsa_local_certificate(const void *context)
{
    const rsa_context *c = context;
    return (uarc_view){c->local_cert, c->local_cert_length};
}

static uarc_view rsa_remote_thumbprint(const void *context)
{
    const rsa_context *c = context;
    return (uarc_view){c->remote_thumbprint, THUMBPRINT};
}

static uarc_status rsa_check_asym_header(const void *context, uarc_view sender_certificate,
                                         uarc_view receiver_thumbprint)
{
    const rsa_context *c = context;
    /* The server must be the one whose certificate we were given (a chain may follow it), and
     * must name our certificate as the one it encrypted for. */
    if (!sender_certificate.data || sender_certificate.length < c->remote_cert_length ||
        memcmp(sender_certificate.data, c->remote_cert, c->remote_cert_length) != 0)
        return UARC_BadCertificateInvalid;
    if (!c->local_key || receiver_thumbprint.length != THUMBPRINT ||
        memcmp(receiver_thumbprint.data, c->local_thumbprint, THUMBPRINT) != 0)
        return UARC_BadCertificateInvalid;
    return UARC_Good;
}

static bool set_signature_padding(const rsa_params *p, EVP_PKEY_CTX *pctx)
{
    if (!p->pss)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
    /* the same fixed salt length both ways: a verifier that took any salt length would accept
     * signatures the policy does not allow */
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LENGTH) > 0;
}

static uarc_status rsa_asym_sign(void *context, const uint8_t *data, size_t length,
                                 uint8_t *signature)
{
    rsa_context *c = context;
    if (!c->local_key)
        return UARC_BadCertificateInvalid;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t size = c->local_bytes;
    bool ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, c->local_key) == 1 &&
              set_signature_padding(c->p, pctx) &&
              EVP_DigestSign(md, signature, &size, data, length) == 1 && size == c->local_bytes;
    EVP_MD_CTX_free(md);
    return ok ? UARC_Good : UARC_BadSecurityChecksFailed;
}

static uarc_status rsa_asym_verify(void *context, const uint8_t *data, size_t length,
                                   const uint8_t *signature)
{
    rsa_context *c = context;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, c->remote_key) == 1 &&
              set_signature_padding(c->p, pctx) &&
              EVP_DigestVerify(md, signature, c->remote_bytes, data, length) == 1;
    EVP_MD_CTX_free(md);
    return ok ? UARC_Good : UARC_BadSecurityChecksFailed;
}

static EVP_PKEY_CTX *oaep_context(const rsa_params *p, EVP_PKEY *key, bool encrypting)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(key, NULL);
    const EVP_MD *md = p->oaep_sha256 ? EVP_sha256() : EVP_sha1();
    if (!pctx || (encrypting ? EVP_PKEY_encrypt_init(pctx) : EVP_PKEY_decrypt_init(pctx)) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, md) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0) {
        EVP_PKEY_CTX_free(pctx);
        return NULL;
    }
    return pctx;
}

/* Also used for the legacy encrypted password: there `length` need not be a multiple of the
 * plaintext block; the last block is then shorter. */
static uarc_status rsa_asym_encrypt(void *context, uint8_t *data, size_t length, size_t capacity)
{
    rsa_context *c = context;
    size_t plain_block = oaep_plain_block(c->p, c->remote_bytes);
    if (!plain_block || c->remote_bytes > MAX_KEY_BYTES)
        return UARC_BadSecurityChecksFailed;
    size_t blocks = length / plain_block + (length % plain_block != 0);
    if (blocks > capacity / c->remote_bytes)
        return UARC_BadEncodingLimitsExceeded;
    EVP_PKEY_CTX *pctx = oaep_context(c->p, c->remote_key, true);
    if (!pctx)
        return UARC_BadInternalError;
    uint8_t in[MAX_KEY_BYTES];
    uarc_status s = UARC_Good;
    /* Last block first: each ciphertext block is longer than its plaintext and overwrites only
     * plaintext already consumed. */
    for (size_t i = blocks; i-- > 0 && s == UARC_Good;) {
        size_t n = i + 1 < blocks ? plain_block : length - i * plain_block;
        memcpy(in, data + i * plain_block, n);
        size_t out = c->remote_bytes;
        if (EVP_PKEY_encrypt(pctx, data + i * c->remote_bytes, &out, in, n) != 1 ||
            out != c->remote_bytes)
            s = UARC_BadSecurityChecksFailed;
    }
    OPENSSL_cleanse(in, sizeof in);
    EVP_PKEY_CTX_free(pctx);
    return s;
}

static uarc_status rsa_asym_decrypt(void *context, uint8_t *data, size_t length,
                                    size_t *plain_length)
{
    rsa_context *c = context;
    if (!c->local_key || length % c->local_bytes != 0)
        return UARC_BadSecurityChecksFailed;
    EVP_PKEY_CTX *pctx = oaep_context(c->p, c->local_key, false);
    if (!pctx)
        return UARC_BadInternalError;
    uint8_t out[MAX_KEY_BYTES];
    size_t total = 0;
    uarc_status s = UARC_Good;
    for (size_t i = 0; i < length / c->local_bytes && s == UARC_Good; i++) {
        size_t n = sizeof out;
        if (EVP_PKEY_decrypt(pctx, out, &n, data + i * c->local_bytes, c->local_bytes) != 1) {
            s = UARC_BadSecurityChecksFailed;
            break;
        }
        memcpy(data + total, out, n); /* behind the block just read */
        total += n;
    }
    OPENSSL_cleanse(out, sizeof out);
    EVP_PKEY_CTX_free(pctx);
    *plain_length = total;
    return s;
}

static uarc_status rsa_random(void *context, uint8_t *out, size_t length)
{
    (void)context;
    return RAND_bytes(out, (int)length) == 1 ? UARC_Good : UARC_BadInternalError;
}

/* ---- symmetric ---- */

uarc_status uarc__p_sha256(uarc_view secret, uarc_view seed, uint8_t *out, size_t length)
{
    /* every one of these holds key material or what leads to it: wiped on every way out */
    uint8_t a[32], block[32 + 64], chunk[32];
    unsigned int n;
    if (seed.length > 64)
        return UARC_BadInvalidArgument;
    uarc_status s = UARC_Good;
    /* A(1) = HMAC(secret, seed); output block i = HMAC(secret, A(i) + seed). */
    if (!HMAC(EVP_sha256(), secret.data, (int)secret.length, seed.data, seed.length, a, &n))
        s = UARC_BadInternalError;
    while (length && s == UARC_Good) {
        memcpy(block, a, 32);
        if (seed.length)
            memcpy(block + 32, seed.data, seed.length);
        if (!HMAC(EVP_sha256(), secret.data, (int)secret.length, block, 32 + seed.length, chunk,
                  &n)) {
            s = UARC_BadInternalError;
            break;
        }
        size_t take = length < 32 ? length : 32;
        memcpy(out, chunk, take);
        out += take;
        length -= take;
        if (!HMAC(EVP_sha256(), secret.data, (int)secret.length, a, 32, a, &n))
            s = UARC_BadInternalError;
    }
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(chunk, sizeof chunk);
    return s;
}

static uarc_status rsa_derive_keys(void *context, uarc_view client_nonce, uarc_view server_nonce,
                                   void **keys)
{
    rsa_context *c = context;
    if (client_nonce.length != 32 || server_nonce.length != 32)
        return UARC_BadNonceInvalid;
    rsa_keys *k = uarc__calloc(1, sizeof *k);
    if (!k)
        return UARC_BadOutOfMemory;
    k->p = c->p;
    size_t enc = c->p->sym_enc_key, total = SYM_SIGN_KEY + enc + AES_BLOCK;
    uint8_t material[SYM_SIGN_KEY + 32 + AES_BLOCK];
    /* Part 6 §6.7.5: the client's keys from PRF(ServerNonce, ClientNonce), the server's from
     * PRF(ClientNonce, ServerNonce); each splits into signing key, encrypting key, IV. */
    uarc_status s = uarc__p_sha256(server_nonce, client_nonce, material, total);
    if (s == UARC_Good) {
        memcpy(k->client_sign, material, SYM_SIGN_KEY);
        memcpy(k->client_enc, material + SYM_SIGN_KEY, enc);
        memcpy(k->client_iv, material + SYM_SIGN_KEY + enc, AES_BLOCK);
        s = uarc__p_sha256(client_nonce, server_nonce, material, total);
    }
    if (s == UARC_Good) {
        memcpy(k->server_sign, material, SYM_SIGN_KEY);
        memcpy(k->server_enc, material + SYM_SIGN_KEY, enc);
        memcpy(k->server_iv, material + SYM_SIGN_KEY + enc, AES_BLOCK);
    }
    OPENSSL_cleanse(material, sizeof material);
    if (s != UARC_Good) {
        OPENSSL_cleanse(k, sizeof *k); /* what was copied before the failure */
        uarc__free(k);
        return s;
    }
    *keys = k;
    return UARC_Good;
}

static void rsa_keys_delete(void *keys)
{
    if (!keys)
        return;
    OPENSSL_cleanse(keys, sizeof(rsa_keys));
    uarc__free(keys);
}

static void rsa_sym_layout(const void *context, uarc__chunk_layout *out)
{
    const rsa_context *c = context;
    *out = (uarc__chunk_layout){
        .sign = true,
        .encrypt = c->mode == UARC_MessageSecurityMode_SignAndEncrypt,
        .plain_block = AES_BLOCK,
        .cipher_block = AES_BLOCK,
        .signature_size = SYM_SIGN_KEY,
        .extra_padding = false,
    };
}

static uarc_status rsa_sym_sign(const void *keys, const uint8_t *data, size_t length,
                                uint8_t *signature)
{
    const rsa_keys *k = keys;
    return uarc__hmac("SHA256", (uarc_view){k->client_sign, SYM_SIGN_KEY}, data, length, signature);
}

static uarc_status rsa_sym_verify(const void *keys, const uint8_t *data, size_t length,
                                  const uint8_t *signature)
{
    const rsa_keys *k = keys;
    uint8_t expected[32];
    uarc_status s =
        uarc__hmac("SHA256", (uarc_view){k->server_sign, SYM_SIGN_KEY}, data, length, expected);
    if (s != UARC_Good)
        return s;
    return CRYPTO_memcmp(expected, signature, SYM_SIGN_KEY) == 0 ? UARC_Good
                                                                 : UARC_BadSecurityChecksFailed;
}

static uarc_status rsa_sym_encrypt(const void *keys, uint8_t *data, size_t length)
{
    const rsa_keys *k = keys;
    return uarc__aes_cbc(true, (uarc_view){k->client_enc, k->p->sym_enc_key}, k->client_iv, data,
                         length);
}

static uarc_status rsa_sym_decrypt(const void *keys, uint8_t *data, size_t length)
{
    const rsa_keys *k = keys;
    return uarc__aes_cbc(false, (uarc_view){k->server_enc, k->p->sym_enc_key}, k->server_iv, data,
                         length);
}

#define RSA_POLICY(NAME, URI, NEW, SIGN_URI, ENC_URI)                                              \
    const uarc__security_policy NAME = {                                                           \
        .uri = URI,                                                                                \
        .nonce_length = 32,                                                                        \
        .asym_signature_uri = SIGN_URI,                                                            \
        .asym_encryption_uri = ENC_URI,                                                            \
        .context_new = NEW,                                                                        \
        .context_delete = rsa_context_delete,                                                      \
        .mode = rsa_mode,                                                                          \
        .asym_layout = rsa_asym_layout,                                                            \
        .local_certificate = rsa_local_certificate,                                                \
        .remote_thumbprint = rsa_remote_thumbprint,                                                \
        .check_asym_header = rsa_check_asym_header,                                                \
        .asym_sign = rsa_asym_sign,                                                                \
        .asym_verify = rsa_asym_verify,                                                            \
        .asym_encrypt = rsa_asym_encrypt,                                                          \
        .asym_decrypt = rsa_asym_decrypt,                                                          \
        .new_nonce = rsa_random,                                                                   \
        .derive_keys = rsa_derive_keys,                                                            \
        .keys_delete = rsa_keys_delete,                                                            \
        .sym_layout = rsa_sym_layout,                                                              \
        .sym_sign = rsa_sym_sign,                                                                  \
        .sym_verify = rsa_sym_verify,                                                              \
        .sym_encrypt = rsa_sym_encrypt,                                                            \
        .sym_decrypt = rsa_sym_decrypt,                                                            \
    }

#define RSA_SHA256_URI "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define RSA_PSS_URI    "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"
#define OAEP_SHA1_URI  "http://www.w3.org/2001/04/xmlenc#rsa-oaep"
#define OAEP_SHA256    "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256"

RSA_POLICY(uarc__security_policy_basic256sha256, UARC__SECURITY_POLICY_BASIC256SHA256_URI,
           b256_context_new, RSA_SHA256_URI, OAEP_SHA1_URI);
RSA_POLICY(uarc__security_policy_aes128_sha256_rsaoaep,
           UARC__SECURITY_POLICY_AES128_SHA256_RSAOAEP_URI, a128_context_new, RSA_SHA256_URI,
           OAEP_SHA1_URI);
RSA_POLICY(uarc__security_policy_aes256_sha256_rsapss,
           UARC__SECURITY_POLICY_AES256_SHA256_RSAPSS_URI, a256_context_new, RSA_PSS_URI,
           OAEP_SHA256);
