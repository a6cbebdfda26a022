/* Certificate and key helpers over OpenSSL 3. */
#include <stdio.h>
#include <string.h>

#include <stdbool.h>

#include <pthread.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "channel/crypto.h"
#include "core/alloc.h"

void uarc__crypto_free_secret(void *data, size_t length)
{
    if (!data)
        return;
    OPENSSL_cleanse(data, length);
    uarc__free(data);
}

/* Reads a whole (small) file. A `secret` file's bytes are wiped from every buffer let go. */
static uarc_status read_file(const char *path, bool secret, uint8_t **data, size_t *length)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return UARC_BadNotFound;
    if (secret)
        setvbuf(f, NULL, _IONBF, 0); /* no copy of the key in stdio's buffer */
    size_t capacity = 4096, used = 0;
    uint8_t *buffer = uarc__malloc(capacity);
    while (buffer) {
        size_t n = fread(buffer + used, 1, capacity - used, f);
        used += n;
        if (used < capacity || capacity >= (1u << 20))
            break;
        uint8_t *bigger = uarc__malloc(capacity * 2);
        if (bigger)
            memcpy(bigger, buffer, used);
        /* not realloc: it would let a key file's bytes go unwiped */
        if (secret)
            OPENSSL_cleanse(buffer, used);
        uarc__free(buffer);
        buffer = bigger;
        capacity *= 2;
    }
    fclose(f);
    if (!buffer)
        return UARC_BadOutOfMemory;
    *data = buffer;
    *length = used;
    return UARC_Good;
}

/* Moves OpenSSL's DER output into a uarc__malloc'd copy. A `secret` (private key) is wiped from
 * OpenSSL's buffer, also when the copy fails. */
static uarc_status to_der(unsigned char *der, int length, bool secret, uint8_t **out,
                          size_t *out_length)
{
    if (length <= 0 || !der) {
        OPENSSL_free(der);
        return UARC_BadCertificateInvalid;
    }
    *out = uarc__malloc((size_t)length);
    if (*out) {
        memcpy(*out, der, (size_t)length);
        *out_length = (size_t)length;
    }
    if (secret)
        OPENSSL_clear_free(der, (size_t)length);
    else
        OPENSSL_free(der);
    return *out ? UARC_Good : UARC_BadOutOfMemory;
}

uarc_status uarc__crypto_load_certificate(const char *path, uint8_t **der, size_t *length)
{
    uint8_t *data;
    size_t size;
    uarc_status s = read_file(path, false, &data, &size);
    if (s != UARC_Good)
        return s;
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (!x) {
        BIO *bio = BIO_new_mem_buf(data, (int)size);
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    uarc__free(data);
    if (!x)
        return UARC_BadCertificateInvalid;
    unsigned char *out = NULL;
    int n = i2d_X509(x, &out);
    X509_free(x);
    return to_der(out, n, false, der, length);
}

uarc_status uarc__crypto_load_private_key(const char *path, uint8_t **der, size_t *length)
{
    uint8_t *data;
    size_t size;
    uarc_status s = read_file(path, true, &data, &size);
    if (s != UARC_Good)
        return s;
    const unsigned char *p = data;
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &p, (long)size);
    if (!key) {
        BIO *bio = BIO_new_mem_buf(data, (int)size);
        key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    uarc__crypto_free_secret(data, size);
    if (!key)
        return UARC_BadCertificateInvalid;
    unsigned char *out = NULL;
    int n = i2d_PrivateKey(key, &out);
    EVP_PKEY_free(key);
    return to_der(out, n, true, der, length);
}

#define PARSED_KEPT 128

typedef struct parsed_certificate {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    size_t length;
    X509 *x; /* NULL: a free slot */
} parsed_certificate;

static pthread_mutex_t parsed_lock = PTHREAD_MUTEX_INITIALIZER;
static parsed_certificate parsed[PARSED_KEPT];
static size_t parsed_next; /* the slot to reuse next: the oldest */

X509 *uarc__crypto_parse_certificate(const uint8_t *der, size_t length, size_t *consumed)
{
    size_t n = uarc__crypto_der_sequence_length(der, length);
    uint8_t digest[SHA256_DIGEST_LENGTH];
    if (!n || !SHA256(der, n, digest)) {
        /* not DER-shaped: parsed as it is, and not kept */
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)length);
        *consumed = x ? (size_t)(p - der) : 0;
        return x;
    }
    X509 *x = NULL;
    pthread_mutex_lock(&parsed_lock);
    for (size_t i = 0; i < PARSED_KEPT && !x; i++)
        if (parsed[i].x && parsed[i].length == n &&
            memcmp(parsed[i].digest, digest, sizeof digest) == 0 && X509_up_ref(parsed[i].x) == 1)
            x = parsed[i].x;
    pthread_mutex_unlock(&parsed_lock);
    if (x) {
        *consumed = n;
        return x;
    }
    const unsigned char *p = der;
    x = d2i_X509(NULL, &p, (long)n);
    if (!x || (size_t)(p - der) != n) {
        X509_free(x);
        *consumed = 0;
        return NULL;
    }
    *consumed = n;
    if (X509_up_ref(x) != 1)
        return x;
    pthread_mutex_lock(&parsed_lock);
    parsed_certificate *slot = &parsed[parsed_next];
    parsed_next = (parsed_next + 1) % PARSED_KEPT;
    X509 *old = slot->x;
    *slot = (parsed_certificate){.length = n, .x = x};
    memcpy(slot->digest, digest, sizeof digest);
    pthread_mutex_unlock(&parsed_lock);
    X509_free(old);
    return x;
}

size_t uarc__crypto_first_certificate(const uint8_t *der, size_t length)
{
    size_t n;
    X509 *x = uarc__crypto_parse_certificate(der, length, &n);
    if (!x)
        return 0;
    X509_free(x);
    return n;
}

size_t uarc__crypto_der_sequence_length(const uint8_t *der, size_t length)
{
    if (length < 2 || der[0] != 0x30)
        return 0;
    size_t header = 2, content = der[1];
    if (der[1] & 0x80) {
        size_t n = der[1] & 0x7F; /* long form: n length bytes follow (0: indefinite, not DER) */
        if (n == 0 || n > 4 || length < 2 + n)
            return 0;
        content = 0;
        for (size_t i = 0; i < n; i++)
            content = content << 8 | der[2 + i];
        header += n;
    }
    return content <= length - header ? header + content : 0;
}

/* The self-signed certificate of `pkey` (RSA, or EC when `ec`) for `application_uri` into *cert. */
static uarc_status certify(const char *application_uri, EVP_PKEY *pkey, bool ec,
                           const EVP_MD *digest, uint8_t **cert, size_t *cert_length)
{
    uarc_status s = UARC_BadInternalError;
    /* an EC key signs and agrees on keys, never encrypts */
    const char *usage = ec ? "critical,digitalSignature,nonRepudiation,keyAgreement,keyCertSign"
                           : "critical,digitalSignature,nonRepudiation,keyEncipherment,"
                             "dataEncipherment,keyCertSign";
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!x || !name)
        goto done;
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto done;
    serial[0] &= 0x7F;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
        BN_free(bn);
        goto done;
    }
    BN_free(bn);
    char san[600];
    if (snprintf(san, sizeof san, "URI:%s,DNS:localhost", application_uri) >= (int)sizeof san) {
        s = UARC_BadCertificateUriInvalid;
        goto done;
    }
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext_san = NULL, *ext_ku = NULL, *ext_eku = NULL, *ext_bc = NULL;
    if (X509_set_version(x, 2) != 1 ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"uarc", -1, -1,
                                    0) ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) || X509_set_pubkey(x, pkey) != 1)
        goto done;
    ext_san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    ext_ku = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, usage);
    ext_eku = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "clientAuth,serverAuth");
    ext_bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:FALSE");
    bool added = ext_san && ext_ku && ext_eku && ext_bc && X509_add_ext(x, ext_san, -1) &&
                 X509_add_ext(x, ext_ku, -1) && X509_add_ext(x, ext_eku, -1) &&
                 X509_add_ext(x, ext_bc, -1);
    X509_EXTENSION_free(ext_san);
    X509_EXTENSION_free(ext_ku);
    X509_EXTENSION_free(ext_eku);
    X509_EXTENSION_free(ext_bc);
    if (!added || X509_sign(x, pkey, digest) <= 0)
        goto done;
    unsigned char *out = NULL;
    int n = i2d_X509(x, &out);
    s = to_der(out, n, false, cert, cert_length);
done:
    X509_NAME_free(name);
    X509_free(x);
    return s;
}

uarc_status uarc__crypto_make_certificate(const char *application_uri, const char *curve,
                                          uint8_t **cert, size_t *cert_length, uint8_t **key,
                                          size_t *key_length)
{
    EVP_PKEY *pkey = curve ? EVP_EC_gen(curve) : EVP_RSA_gen(2048);
    if (!pkey)
        return UARC_BadInternalError;
    /* P-384 keys sign with SHA-384 */
    const EVP_MD *digest = curve && strstr(curve, "384") ? EVP_sha384() : EVP_sha256();
    uarc_status s = certify(application_uri, pkey, curve != NULL, digest, cert, cert_length);
    if (s == UARC_Good) {
        unsigned char *out = NULL;
        int n = i2d_PrivateKey(pkey, &out);
        s = to_der(out, n, true, key, key_length);
        if (s != UARC_Good)
            uarc__free(*cert);
    }
    EVP_PKEY_free(pkey);
    return s;
}

uarc_status uarc__crypto_certify_key(const char *application_uri, const uint8_t *key,
                                     size_t key_length, uint8_t **cert, size_t *cert_length)
{
    const unsigned char *p = key;
    EVP_PKEY *pkey = d2i_AutoPrivateKey(NULL, &p, (long)key_length);
    if (!pkey)
        return UARC_BadCertificateInvalid;
    bool ec = EVP_PKEY_is_a(pkey, "EC");
    const EVP_MD *digest = ec && EVP_PKEY_get_bits(pkey) > 256 ? EVP_sha384() : EVP_sha256();
    uarc_status s = certify(application_uri, pkey, ec, digest, cert, cert_length);
    EVP_PKEY_free(pkey);
    return s;
}

uarc_status uarc__crypto_certificate_uri(const uint8_t *der, size_t length, char *out,
                                         size_t out_size)
{
    size_t consumed;
    X509 *x = uarc__crypto_parse_certificate(der, length, &consumed);
    if (!x)
        return UARC_BadCertificateInvalid;
    uarc_status s = UARC_BadCertificateUriInvalid;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *uri = g->d.uniformResourceIdentifier;
        int n = ASN1_STRING_length(uri);
        if (n < 0 || (size_t)n >= out_size)
            break;
        memcpy(out, ASN1_STRING_get0_data(uri), (size_t)n);
        out[n] = '\0';
        s = UARC_Good;
        break;
    }
    GENERAL_NAMES_free(names);
    X509_free(x);
    return s;
}
