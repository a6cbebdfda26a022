#include "channel/cert_trust.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/log.h"

/* A trust list file larger than this is not a certificate or CRL we would use. */
#define MAX_TRUST_FILE (4u * 1024 * 1024)

/* The certificates chains are built from (trust list, issuers list, what the server sent) and the
 * CRLs, in `store`; the trust list's own certificates also in `trusted`, for the trust decision,
 * which OpenSSL's anchors cannot make: an issuer is an anchor for the chain, but trusts nothing. */
typedef struct trust_list {
    X509_STORE *store;
    STACK_OF(X509) * trusted;
    size_t certificates, crls;
} trust_list;

/* What the verify callback saw: the first error that ends the chain building (chain incomplete,
 * bad signature, weak key, an untrusted self-signed certificate), and the first of the checks
 * that come after the trust decision in Part 4 §6.1.3 (validity, use, revocation), so that an
 * untrusted chain is called untrusted first. */
typedef struct failure {
    int error, depth;
    char subject[256], when[64];
} failure;

typedef struct verify_state {
    failure fatal, later;
} verify_state;

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

/* A certificate chains may be built through; `trusted`: one of the trust list. */
static bool add_certificate(trust_list *t, X509 *x, bool trusted)
{
    if (X509_STORE_add_cert(t->store, x) != 1)
        return false;
    t->certificates++;
    if (!trusted)
        return true;
    if (X509_up_ref(x) != 1)
        return false;
    if (!sk_X509_push(t->trusted, x)) {
        X509_free(x);
        return false;
    }
    return true;
}

/* Adds the certificates and CRLs of one file (PEM with any number of them, or one DER object).
 * Files that hold neither (keys, notes) are skipped. */
static uarc_status add_file(trust_list *t, const char *path, size_t size, bool trusted)
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
    bool ok = true;
    if (memmem(data, n, "-----BEGIN", 10)) {
        BIO *bio = BIO_new_mem_buf(data, (int)n);
        STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
        ERR_clear_error(); /* a PEM file that holds something else too */
        for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
            X509_INFO *info = sk_X509_INFO_value(infos, i);
            if (info->x509 && !add_certificate(t, info->x509, trusted))
                ok = false;
            if (info->crl && X509_STORE_add_crl(t->store, info->crl) == 1)
                t->crls++;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        BIO_free(bio);
    } else {
        const unsigned char *p = data;
        X509 *x = d2i_X509(NULL, &p, (long)n);
        if (x && !add_certificate(t, x, trusted))
            ok = false;
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
    return ok ? UARC_Good : UARC_BadOutOfMemory;
}

/* Adds every regular file of `dir`. A missing folder is an error only when `required`. */
static uarc_status add_folder(trust_list *t, const char *dir, bool required, bool trusted,
                              char *detail, size_t detail_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (!required)
            return UARC_Good;
        say(detail, detail_size, "cannot read the %s folder %s: %s",
            trusted ? "trust list" : "issuers list", dir, strerror(errno));
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
        s = add_file(t, path, (size_t)st.st_size, trusted);
    }
    closedir(d);
    return s;
}

/* A trust list folder, or an issuers list (`trusted` false), which may also be one file: the
 * folder's files and those of its "certs" and "crl" subfolders. */
static uarc_status load_list(trust_list *t, const char *path, bool trusted, char *detail,
                             size_t size)
{
    struct stat st;
    if (!trusted && stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return add_file(t, path, (size_t)st.st_size, false);
    uarc_status s = add_folder(t, path, true, trusted, detail, size);
    const char *subfolders[] = {"certs", "crl"};
    for (size_t i = 0; s == UARC_Good && i < sizeof subfolders / sizeof *subfolders; i++) {
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%s", path, subfolders[i]) < (int)sizeof sub)
            s = add_folder(t, sub, false, trusted, detail, size);
    }
    return s;
}

/*
 * Splits `der` into the server's certificate and the issuers it sent after it (Part 6 §6.2.6:
 * DER certificates appended one after the other), each parsed within what is left of `der`.
 * Bytes after the last certificate that are not one, more than UARC__CERT_CHAIN_MAX
 * certificates or more than UARC__CERT_CHAIN_MAX_BYTES make the whole invalid.
 */
static uarc_status split_chain(const uint8_t *der, size_t length, X509 **leaf,
                               STACK_OF(X509) * *issuers, char *detail, size_t size)
{
    *leaf = NULL;
    *issuers = NULL;
    if (length > UARC__CERT_CHAIN_MAX_BYTES) {
        say(detail, size, "the certificate field holds %zu bytes, more than a chain may (%u)",
            length, (unsigned)UARC__CERT_CHAIN_MAX_BYTES);
        return UARC_BadCertificateInvalid;
    }
    size_t leaf_length;
    *leaf = uarc__crypto_parse_certificate(der, length, &leaf_length);
    const unsigned char *p = der + leaf_length, *end = der + length;
    if (!*leaf) {
        say(detail, size, "not a DER certificate");
        return UARC_BadCertificateInvalid;
    }
    if (p == end)
        return UARC_Good;
    if (!(*issuers = sk_X509_new_null()))
        return UARC_BadOutOfMemory;
    for (size_t count = 1; p < end; count++) {
        if (count == UARC__CERT_CHAIN_MAX) {
            say(detail, size, "the server sent a chain of more than %u certificates",
                (unsigned)UARC__CERT_CHAIN_MAX);
            return UARC_BadCertificateInvalid;
        }
        X509 *x = d2i_X509(NULL, &p, (long)(end - p));
        if (!x) {
            say(detail, size,
                "the %zu bytes after certificate %zu of the chain are not a DER "
                "certificate",
                (size_t)(end - p), count);
            return UARC_BadCertificateInvalid;
        }
        if (!sk_X509_push(*issuers, x)) {
            X509_free(x);
            return UARC_BadOutOfMemory;
        }
    }
    return UARC_Good;
}

/* A self-signed issuer the server sent may end its chain (the root is sent last, Part 6): it
 * goes where chains are built, but never into `trusted`. */
static uarc_status add_sent_roots(trust_list *t, STACK_OF(X509) * issuers)
{
    for (int i = 0; i < sk_X509_num(issuers); i++) {
        X509 *x = sk_X509_value(issuers, i);
        if (X509_self_signed(x, 0) == 1 && !add_certificate(t, x, false))
            return UARC_BadOutOfMemory;
    }
    return UARC_Good;
}

/* Errors that come after the trust decision in Part 4 §6.1.3: validity, use, revocation. */
static bool checked_after_trust(int error)
{
    switch (error) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_CERT_REVOKED:
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_INVALID_EXTENSION:
        return true;
    default:
        return false;
    }
}

static void note_failure(failure *f, X509_STORE_CTX *ctx, int error)
{
    f->error = error;
    f->depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *x = X509_STORE_CTX_get_current_cert(ctx);
    f->subject[0] = f->when[0] = '\0';
    if (!x)
        return;
    print_name(X509_get_subject_name(x), f->subject, sizeof f->subject);
    if (error == X509_V_ERR_CERT_HAS_EXPIRED || error == X509_V_ERR_CERT_NOT_YET_VALID) {
        char t_text[48];
        bool expired = error == X509_V_ERR_CERT_HAS_EXPIRED;
        print_time(expired ? X509_get0_notAfter(x) : X509_get0_notBefore(x), t_text, sizeof t_text);
        snprintf(f->when, sizeof f->when, " (%s %s)", expired ? "notAfter" : "notBefore", t_text);
    }
}

/* Notes every error: chain building stops at the first that leaves no chain, and goes on past
 * the checks that come after the trust decision. A self-signed certificate has no other issuer
 * that could publish a CRL for it: trusting it is the revocation decision, so a missing CRL for it
 * is not an error. */
static int verify_callback(int ok, X509_STORE_CTX *ctx)
{
    if (ok)
        return 1;
    int error = X509_STORE_CTX_get_error(ctx);
    X509 *x = X509_STORE_CTX_get_current_cert(ctx);
    if (error == X509_V_ERR_UNABLE_TO_GET_CRL && x && X509_self_signed(x, 0) == 1)
        return 1;
    verify_state *state = X509_STORE_CTX_get_app_data(ctx);
    if (!checked_after_trust(error)) {
        note_failure(&state->fatal, ctx, error);
        return 0;
    }
    if (!state->later.error)
        note_failure(&state->later, ctx, error);
    return 1;
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
        *reason = "issued by no certificate of the trust list, the issuers list or the chain the "
                  "server sent (chain incomplete)";
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

/* "certificate "S": [its issuer "I" is ]REASON (OpenSSL: ...)" for a noted failure. */
static uarc_status report(const failure *f, const char *leaf_subject, char *detail, size_t size)
{
    const char *reason;
    uarc_status s = verdict(f->error, f->depth, &reason);
    if (f->depth > 0)
        say(detail, size, "certificate \"%s\": its issuer \"%s\" is %s%s (OpenSSL: %s)",
            leaf_subject, f->subject, reason, f->when, X509_verify_cert_error_string(f->error));
    else
        say(detail, size, "certificate \"%s\": %s%s (OpenSSL: %s)", leaf_subject, reason, f->when,
            X509_verify_cert_error_string(f->error));
    return s;
}

static bool in_trust_list(X509 *x, const trust_list *t)
{
    for (int j = 0; j < sk_X509_num(t->trusted); j++)
        if (X509_cmp(x, sk_X509_value(t->trusted, j)) == 0)
            return true;
    return false;
}

/* Part 4 §6.1.3: trusted when the certificate or any issuer in its chain is in the trust list. */
static bool chain_trusted(X509_STORE_CTX *ctx, const trust_list *t)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (in_trust_list(sk_X509_value(chain, i), t))
            return true;
    return false;
}

/* Chain, signatures, trust, validity, use and revocation through X509_verify_cert. `sent`: the
 * issuers the server sent, untrusted. `pinned`: the leaf is the trust anchor itself. */
static uarc_status verify_chain(X509 *leaf, STACK_OF(X509) * sent, trust_list *t, bool pinned,
                                int64_t at, char *detail, size_t size)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, t->store, leaf, sent) != 1) {
        X509_STORE_CTX_free(ctx);
        return UARC_BadOutOfMemory;
    }
    verify_state state;
    memset(&state, 0, sizeof state);
    X509_STORE_CTX_set_app_data(ctx, &state);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    /* Without a trust list the pinned certificate is trusted by itself. With one, every chain
     * ends at a self-signed certificate, as Part 6 §6.2.6 builds them: a trusted intermediate
     * whose root is in no list is an incomplete chain. A self-signed certificate in the trust
     * list is that whole chain; taking it as given also keeps OpenSSL's lookup by subject from
     * picking another trusted certificate of the same name (and key type) as its issuer. */
    bool self_trusted = X509_self_signed(leaf, 0) == 1 && in_trust_list(leaf, t);
    unsigned long flags =
        X509_V_FLAG_CHECK_SS_SIGNATURE | (pinned || self_trusted ? X509_V_FLAG_PARTIAL_CHAIN : 0);
    if (t->crls)
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    X509_VERIFY_PARAM_set_flags(param, flags);
    if (at)
        X509_VERIFY_PARAM_set_time(param, (time_t)at);
    X509_STORE_CTX_set_verify_cb(ctx, verify_callback);
    int rc = X509_verify_cert(ctx);
    char leaf_subject[256];
    print_name(X509_get_subject_name(leaf), leaf_subject, sizeof leaf_subject);
    uarc_status s = UARC_Good;
    if (state.fatal.error || rc != 1) {
        if (!state.fatal.error) /* no callback: an internal failure */
            state.fatal = (failure){X509_STORE_CTX_get_error(ctx), 0, "", ""};
        s = report(&state.fatal, leaf_subject, detail, size);
    } else if (!chain_trusted(ctx, t)) {
        s = UARC_BadCertificateUntrusted;
        say(detail, size,
            "certificate \"%s\": neither it nor an issuer of it is in the trust list (its chain "
            "is complete, through the issuers list or the certificates the server sent)",
            leaf_subject);
    } else if (state.later.error) {
        s = report(&state.later, leaf_subject, detail, size);
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
                                const char *issuer_list, int64_t at, char *detail,
                                size_t detail_size)
{
    say(detail, detail_size, "%s", "");
    X509 *leaf;
    STACK_OF(X509) * sent;
    uarc_status s = split_chain(der, length, &leaf, &sent, detail, detail_size);
    trust_list t = {X509_STORE_new(), sk_X509_new_null(), 0, 0};
    if (s == UARC_Good && (!t.store || !t.trusted))
        s = UARC_BadOutOfMemory;
    if (s == UARC_Good && trust_list_dir) {
        s = load_list(&t, trust_list_dir, true, detail, detail_size);
        if (s == UARC_Good && issuer_list)
            s = load_list(&t, issuer_list, false, detail, detail_size);
        if (s == UARC_Good && sent)
            s = add_sent_roots(&t, sent);
    } else if (s == UARC_Good && !add_certificate(&t, leaf, true)) {
        s = UARC_BadOutOfMemory;
    }
    if (s == UARC_Good)
        s = verify_chain(leaf, sent, &t, !trust_list_dir, at, detail, detail_size);
    if (s == UARC_Good)
        s = check_leaf(leaf, detail, detail_size);
    X509_STORE_free(t.store);
    sk_X509_pop_free(t.trusted, X509_free);
    sk_X509_pop_free(sent, X509_free);
    X509_free(leaf);
    ERR_clear_error();
    return s;
}

/* The DNS and IP subjectAltNames of `x`, comma-separated, for an error detail. */
static void list_host_names(X509 *x, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && used < size; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char text[INET6_ADDRSTRLEN] = "";
        if (g->type == GEN_DNS) {
            int n = ASN1_STRING_length(g->d.dNSName);
            snprintf(text, sizeof text, "%.*s", n > 0 ? n : 0,
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            int n = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *ip = ASN1_STRING_get0_data(g->d.iPAddress);
            if (n != 4 && n != 16)
                continue;
            inet_ntop(n == 4 ? AF_INET : AF_INET6, ip, text, sizeof text);
        } else {
            continue;
        }
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", text);
        used += n > 0 ? (size_t)n : 0;
    }
    GENERAL_NAMES_free(names);
    if (!out[0])
        snprintf(out, size, "none");
}

uarc_status uarc__cert_check_host(const uint8_t *der, size_t length, const char *host, char *detail,
                                  size_t detail_size)
{
    say(detail, detail_size, "%s", "");
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)length);
    if (!x) {
        say(detail, detail_size, "not a DER certificate");
        return UARC_BadCertificateInvalid;
    }
    /* an IP literal matches an iPAddress name only; a host name matches dNSName entries, with
     * the usual leftmost-label wildcard, never the subject's CN (Part 6 §6.2.2) */
    int match = X509_check_ip_asc(x, host, 0);
    if (match < 0)
        match = X509_check_host(
            x, host, strlen(host),
            X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
    uarc_status s = UARC_Good;
    if (match != 1) {
        char subject[256], names[512];
        print_name(X509_get_subject_name(x), subject, sizeof subject);
        list_host_names(x, names, sizeof names);
        say(detail, detail_size,
            "certificate \"%s\": the host %s of the EndpointUrl is not among its DNS and IP "
            "subjectAltNames (%s)",
            subject, host, names);
        s = UARC_BadCertificateHostNameInvalid;
    }
    X509_free(x);
    ERR_clear_error();
    return s;
}
