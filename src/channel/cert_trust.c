#include "channel/cert_trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/alloc.h"
#include "core/log.h"

/* A trust list file larger than this is not a certificate or CRL we would use. */
#define MAX_TRUST_FILE (4u * 1024 * 1024)

typedef struct trust_list {
    X509_STORE *store;
    size_t certificates, crls;
} trust_list;

static void say(char *detail, size_t size, const char *fmt, ...) UARC__PRINTF(3, 4);

static void say(char *detail, size_t size, const char *fmt, ...)
{
    if (!size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, size, fmt, ap);
    va_end(ap);
}

/* Prints a name (RFC 2253) through a memory BIO into out. */
static void print_name(const X509_NAME *name, char *out, size_t size)
{
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, out, (int)size - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
}

static void print_time(const ASN1_TIME *t, char *out, size_t size)
{
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return;
    if (ASN1_TIME_print(bio, t) == 1) {
        int n = BIO_read(bio, out, (int)size - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
}

/* Adds the certificates and CRLs of one file (PEM with any number of them, or one DER object).
 * Files that hold neither (keys, notes) are skipped. */
static uarc_status add_file(trust_list *t, const char *path, size_t size)
{
    if (!size || size > MAX_TRUST_FILE)
        return UARC_Good;
    FILE *f = fopen(path, "rb");
    if (!f)
        return UARC_Good; /* vanished or unreadable: it trusts nothing */
    uint8_t *data = uarc__malloc(size);
    if (!data) {
        fclose(f);
        return UARC_BadOutOfMemory;
    }
    size_t n = fread(data, 1, size, f);
    fclose(f);
    if (memmem(data, n, "-----BEGIN", 10)) {
        BIO *bio = BIO_new_mem_buf(data, (int)n);
        STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
        for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
            X509_INFO *info = sk_X509_INFO_value(infos, i);
            if (info->x509 && X509_STORE_add_cert(t->store, info->x509) == 1)
                t->certificates++;
            if (info->crl && X509_STORE_add_crl(t->store, info->crl) == 1)
                t->crls++;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        X509 *x = d2i_X509(NULL, &p, (long)n);
        if (x && X509_STORE_add_cert(t->store, x) == 1)
            t->certificates++;
        if (!x) {
            p = data;
            X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)n);
            if (crl && X509_STORE_add_crl(t->store, crl) == 1)
                t->crls++;
            X509_CRL_free(crl);
        }
        X509_free(x);
    }
    uarc__free(data);
    return UARC_Good;
}

/* Adds every regular file of `dir`. A missing folder is an error only when `required`. */
static uarc_status add_folder(trust_list *t, const char *dir, bool required, char *detail,
                              size_t detail_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (!required)
            return UARC_Good;
        say(detail, detail_size, "cannot read the trust list folder %s: %s", dir, strerror(errno));
        return UARC_BadConfigurationError;
    }
    uarc_status s = UARC_Good;
    struct dirent *e;
    while (s == UARC_Good && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        s = add_file(t, path, (size_t)st.st_size);
    }
    closedir(d);
    return s;
}

static uarc_status load_trust_list(trust_list *t, const char *dir, char *detail, size_t size)
{
    uarc_status s = add_folder(t, dir, true, detail, size);
    const char *subfolders[] = {"certs", "crl"};
    for (size_t i = 0; s == UARC_Good && i < sizeof subfolders / sizeof *subfolders; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, subfolders[i]) < (int)sizeof path)
            s = add_folder(t, path, false, detail, size);
    }
    return s;
}

/* A self-signed certificate has no other issuer that could publish a CRL for it: trusting it is
 * the revocation decision, so a missing CRL for it is not an error. */
static int verify_callback(int ok, X509_STORE_CTX *ctx)
{
    if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
        X509 *x = X509_STORE_CTX_get_current_cert(ctx);
        if (x && X509_self_signed(x, 0) == 1)
            return 1;
    }
    return ok;
}

/* The OPC UA verdict for an OpenSSL verification error at chain depth `depth` (0: the server's
 * own certificate), with a short reason. */
static uarc_status verdict(int error, int depth, const char **reason)
{
    bool issuer = depth > 0;
    switch (error) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
        *reason = "not valid yet";
        return issuer ? UARC_BadCertificateIssuerTimeInvalid : UARC_BadCertificateTimeInvalid;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        *reason = "expired";
        return issuer ? UARC_BadCertificateIssuerTimeInvalid : UARC_BadCertificateTimeInvalid;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        *reason = "its validity period is malformed";
        return issuer ? UARC_BadCertificateIssuerTimeInvalid : UARC_BadCertificateTimeInvalid;
    case X509_V_ERR_CERT_REVOKED:
        *reason = "revoked by its issuer's CRL in the trust list";
        return issuer ? UARC_BadCertificateIssuerRevoked : UARC_BadCertificateRevoked;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
        *reason = "the trust list has CRLs, but no valid CRL of its issuer";
        return issuer ? UARC_BadCertificateIssuerRevocationUnknown
                      : UARC_BadCertificateRevocationUnknown;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        *reason = "neither it nor an issuer of it is in the trust list";
        return UARC_BadCertificateUntrusted;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        *reason = "its issuer is not in the trust list (chain incomplete)";
        return UARC_BadCertificateChainIncomplete;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_INVALID_EXTENSION:
        *reason = "its extensions do not allow this use";
        return issuer ? UARC_BadCertificateIssuerUseNotAllowed : UARC_BadCertificateUseNotAllowed;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
        *reason = "its key or signature algorithm is too weak";
        return UARC_BadCertificatePolicyCheckFailed;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        *reason = "its signature does not verify";
        return UARC_BadCertificateInvalid;
    default:
        *reason = "it does not verify";
        return UARC_BadCertificateInvalid;
    }
}

/* Chain, trust, validity and revocation through X509_verify_cert. */
static uarc_status verify_chain(X509 *leaf, trust_list *t, int64_t at, char *detail, size_t size)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, t->store, leaf, NULL) != 1) {
        X509_STORE_CTX_free(ctx);
        return UARC_BadOutOfMemory;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    /* PARTIAL_CHAIN: a certificate in the trust list is trusted by itself, not only a root. */
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_CHECK_SS_SIGNATURE;
    if (t->crls)
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    X509_VERIFY_PARAM_set_flags(param, flags);
    if (at)
        X509_VERIFY_PARAM_set_time(param, (time_t)at);
    X509_STORE_CTX_set_verify_cb(ctx, verify_callback);
    uarc_status s = UARC_Good;
    if (X509_verify_cert(ctx) != 1) {
        int error = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
        if (!bad)
            bad = leaf;
        const char *reason;
        s = verdict(error, depth, &reason);
        char subject[256], leaf_subject[256], when[64] = "";
        print_name(X509_get_subject_name(bad), subject, sizeof subject);
        print_name(X509_get_subject_name(leaf), leaf_subject, sizeof leaf_subject);
        if (error == X509_V_ERR_CERT_HAS_EXPIRED || error == X509_V_ERR_CERT_NOT_YET_VALID) {
            char t_text[48];
            bool expired = error == X509_V_ERR_CERT_HAS_EXPIRED;
            print_time(expired ? X509_get0_notAfter(bad) : X509_get0_notBefore(bad), t_text,
                       sizeof t_text);
            snprintf(when, sizeof when, " (%s %s)", expired ? "notAfter" : "notBefore", t_text);
        }
        if (depth > 0)
            say(detail, size, "certificate \"%s\": its issuer \"%s\" is %s%s (OpenSSL: %s)",
                leaf_subject, subject, reason, when, X509_verify_cert_error_string(error));
        else
            say(detail, size, "certificate \"%s\": %s%s (OpenSSL: %s)", subject, reason, when,
                X509_verify_cert_error_string(error));
    }
    X509_STORE_CTX_free(ctx);
    return s;
}

/* The policies' demands on the certificate itself (Part 7 security policy profiles): an RSA key
 * of 2048 to 4096 bits or an EC key (each ECC policy checks the curve), a SHA-2 signature; and the
 * key usage of an application instance certificate (Part 6 §6.2.2): when keyUsage is present,
 * digitalSignature, and keyEncipherment for RSA keys (EC keys never encrypt); serverAuth when
 * extendedKeyUsage is present. */
static uarc_status check_leaf(X509 *x, char *detail, size_t size)
{
    char subject[256];
    print_name(X509_get_subject_name(x), subject, sizeof subject);
    EVP_PKEY *key = X509_get0_pubkey(x);
    int bits = key ? EVP_PKEY_get_bits(key) : 0;
    bool ec = key && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
    if (!key ||
        (!ec && (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || bits < 2048 || bits > 4096))) {
        say(detail, size,
            "certificate \"%s\": its key is neither RSA of 2048 to 4096 bits nor EC (%d bits)",
            subject, bits);
        return UARC_BadCertificatePolicyCheckFailed;
    }
    int md = NID_undef;
    if (X509_get_signature_info(x, &md, NULL, NULL, NULL) != 1 || md == NID_md5 || md == NID_sha1 ||
        md == NID_md4) {
        say(detail, size, "certificate \"%s\": signed with %s, not SHA-2", subject,
            md == NID_undef ? "an unknown digest" : OBJ_nid2sn(md));
        return UARC_BadCertificatePolicyCheckFailed;
    }
    uint32_t flags = X509_get_extension_flags(x);
    uint32_t ku = X509_get_key_usage(x);
    uint32_t needed = ec ? KU_DIGITAL_SIGNATURE : KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    if ((flags & EXFLAG_KUSAGE) && (ku & needed) != needed) {
        say(detail, size, "certificate \"%s\": its keyUsage lacks digitalSignature%s", subject,
            ec ? "" : " or keyEncipherment");
        return UARC_BadCertificateUseNotAllowed;
    }
    if ((flags & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(x) & XKU_SSL_SERVER)) {
        say(detail, size, "certificate \"%s\": its extendedKeyUsage lacks serverAuth", subject);
        return UARC_BadCertificateUseNotAllowed;
    }
    return UARC_Good;
}

uarc_status uarc__cert_validate(const uint8_t *der, size_t length, const char *trust_list_dir,
                                int64_t at, char *detail, size_t detail_size)
{
    say(detail, detail_size, "%s", "");
    const unsigned char *p = der;
    X509 *leaf = d2i_X509(NULL, &p, (long)length);
    if (!leaf) {
        say(detail, detail_size, "not a DER certificate");
        return UARC_BadCertificateInvalid;
    }
    trust_list t = {X509_STORE_new(), 0, 0};
    uarc_status s = t.store ? UARC_Good : UARC_BadOutOfMemory;
    if (s == UARC_Good && trust_list_dir)
        s = load_trust_list(&t, trust_list_dir, detail, detail_size);
    else if (s == UARC_Good && X509_STORE_add_cert(t.store, leaf) != 1)
        s = UARC_BadOutOfMemory;
    if (s == UARC_Good)
        s = verify_chain(leaf, &t, at, detail, detail_size);
    if (s == UARC_Good)
        s = check_leaf(leaf, detail, detail_size);
    X509_STORE_free(t.store);
    X509_free(leaf);
    return s;
}
