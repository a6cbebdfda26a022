/*
 * Server certificate validation against a trust list and an issuers list: certificates and CRLs
 * made here with OpenSSL (a CA, certificates it issues, an expired one, a revoked one, self-signed
 * ones, an intermediate CA and a certificate it issues), written to temporary trust list and
 * issuers list folders or sent as a chain, each verdict checked; and the host name check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "channel/cert_trust.h"
#include "uarc/status_codes.h"

#define DAY (24L * 3600)

typedef struct issued {
    X509 *cert;
    EVP_PKEY *key;
} issued;

static EVP_PKEY *shared_key; /* one RSA-2048 key for every certificate: keeps the test fast */
static issued ca, other_ca, server, expired, revoked, self_signed, client_only, sha1_signed;
static issued inter, via_inter, via_inter_revoked; /* ca → inter → via_inter */
static char dir_ca[64], dir_ca_crl[64], dir_self[64], dir_empty[64];
static char dir_inter[64], dir_inter_crl[64], dir_root_and_inter[64], dir_via_inter[64];
static char file_inter[96];

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* Makes a certificate named `cn`, valid from now+from to now+to seconds, issued by `issuer`
 * (NULL: self-signed). A CA when `is_ca`; else an application instance certificate with the
 * given extendedKeyUsage. */
static issued make(const char *cn, const issued *issuer, bool is_ca, long from, long to,
                   long serial, const char *eku, const EVP_MD *md)
{
    issued out = {X509_new(), shared_key};
    X509 *x = out.cert;
    assert_non_null(x);
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"uarc tests", -1, -1,
                               0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, shared_key);
    X509 *signer = issuer ? issuer->cert : x;
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (is_ca) {
        add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, signer, NID_key_usage,
                "critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment");
        add_ext(x, signer, NID_ext_key_usage, eku);
        add_ext(x, signer, NID_subject_alt_name,
                "URI:urn:test:server,DNS:localhost,DNS:*.plant.example,IP:127.0.0.1");
    }
    if (issuer)
        add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
    assert_true(X509_sign(x, issuer ? issuer->key : shared_key, md) > 0);
    X509_NAME_free(name);
    return out;
}

static void der_of(X509 *x, uint8_t **der, size_t *length)
{
    unsigned char *out = NULL;
    int n = i2d_X509(x, &out);
    assert_true(n > 0);
    *der = out;
    *length = (size_t)n;
}

static void write_pem(const char *dir, const char *file, X509 *x)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_der(const char *dir, const char *file, X509 *x)
{
    uint8_t *der;
    size_t length;
    der_of(x, &der, &length);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(der, 1, length, f), length);
    fclose(f);
    OPENSSL_free(der);
}

/* A CRL of `issuer` revoking the certificate with `serial`, as DER in dir/crl/ca.crl. */
static void write_crl(const char *dir, const issued *issuer, long serial)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->cert));
    ASN1_TIME *t = ASN1_TIME_adj(NULL, time(NULL), -1, 0);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_adj(t, time(NULL), 30, 0);
    X509_CRL_set1_nextUpdate(crl, t);
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, serial);
    X509_REVOKED_set_serialNumber(r, sn);
    ASN1_TIME_adj(t, time(NULL), -1, 0);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl, r);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, issuer->key, EVP_sha256()) > 0);
    char path[128];
    snprintf(path, sizeof path, "%s/crl", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/crl/ca.crl", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(i2d_X509_CRL_fp(f, crl), 1);
    fclose(f);
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
}

static void make_dir(char *dir)
{
    strcpy(dir, "/tmp/uarc-trust-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static int setup(void **state)
{
    (void)state;
    shared_key = EVP_RSA_gen(2048);
    if (!shared_key)
        return -1;
    const char *server_eku = "serverAuth,clientAuth";
    ca = make("uarc test CA", NULL, true, -2 * DAY, 3650 * DAY, 1, NULL, EVP_sha256());
    other_ca = make("uarc other CA", NULL, true, -DAY, 365 * DAY, 2, NULL, EVP_sha256());
    server = make("uarc test server", &ca, false, -DAY, 365 * DAY, 10, server_eku, EVP_sha256());
    expired =
        make("uarc expired server", &ca, false, -30 * DAY, -DAY, 11, server_eku, EVP_sha256());
    revoked =
        make("uarc revoked server", &ca, false, -DAY, 365 * DAY, 12, server_eku, EVP_sha256());
    client_only =
        make("uarc client only", &ca, false, -DAY, 365 * DAY, 13, "clientAuth", EVP_sha256());
    sha1_signed = make("uarc sha1 server", &ca, false, -DAY, 365 * DAY, 14, server_eku, EVP_sha1());
    self_signed =
        make("uarc self-signed server", NULL, false, -DAY, 365 * DAY, 20, server_eku, EVP_sha256());
    make_dir(dir_ca);
    write_pem(dir_ca, "ca.pem", ca.cert);
    make_dir(dir_ca_crl);
    write_der(dir_ca_crl, "ca.der", ca.cert);
    write_crl(dir_ca_crl, &ca, 12);
    write_pem(dir_ca_crl, "self.pem", self_signed.cert);
    make_dir(dir_self);
    write_der(dir_self, "server.der", self_signed.cert);
    make_dir(dir_empty);
    inter = make("uarc intermediate CA", &ca, true, -DAY, 3650 * DAY, 3, NULL, EVP_sha256());
    via_inter =
        make("uarc server via inter", &inter, false, -DAY, 365 * DAY, 30, server_eku, EVP_sha256());
    via_inter_revoked = make("uarc revoked via inter", &inter, false, -DAY, 365 * DAY, 31,
                             server_eku, EVP_sha256());
    make_dir(dir_inter);
    write_pem(dir_inter, "inter.pem", inter.cert);
    make_dir(dir_inter_crl);
    write_der(dir_inter_crl, "inter.der", inter.cert);
    write_crl(dir_inter_crl, &inter, 31);
    make_dir(dir_root_and_inter);
    write_pem(dir_root_and_inter, "root.pem", ca.cert);
    write_pem(dir_root_and_inter, "inter.pem", inter.cert);
    make_dir(dir_via_inter);
    write_der(dir_via_inter, "server.der", via_inter.cert);
    snprintf(file_inter, sizeof file_inter, "%s/inter.pem", dir_inter);
    return 0;
}

static void remove_dir(const char *dir)
{
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

static int teardown(void **state)
{
    (void)state;
    issued *all[] = {&ca,      &other_ca,    &server,           &expired,
                     &revoked, &self_signed, &client_only,      &sha1_signed,
                     &inter,   &via_inter,   &via_inter_revoked};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        X509_free(all[i]->cert);
    EVP_PKEY_free(shared_key);
    remove_dir(dir_ca);
    remove_dir(dir_ca_crl);
    remove_dir(dir_self);
    remove_dir(dir_empty);
    remove_dir(dir_inter);
    remove_dir(dir_inter_crl);
    remove_dir(dir_root_and_inter);
    remove_dir(dir_via_inter);
    return 0;
}

/* Validates `length` bytes at `der` against the trust list `dir` and the issuers list `issuers`
 * at time `at` and checks the verdict and that the detail names `subject` (when given). */
static void expect_der(const uint8_t *der, size_t length, const char *dir, const char *issuers,
                       int64_t at, uarc_status want, const char *subject)
{
    char detail[512];
    uarc_status got = uarc__cert_validate(der, length, dir, issuers, at, detail, sizeof detail);
    if (got != want)
        fail_msg("want 0x%08X, got 0x%08X: %s", want, got, detail);
    if (subject && !strstr(detail, subject))
        fail_msg("detail does not name %s: %s", subject, detail);
}

/* `chain[0]` followed by the `count - 1` issuers after it, as a server sends them. */
static void expect_chain(const issued *const *chain, size_t count, const char *dir,
                         const char *issuers, uarc_status want, const char *subject)
{
    uint8_t all[16384];
    size_t length = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t *der;
        size_t n;
        der_of(chain[i]->cert, &der, &n);
        assert_true(length + n <= sizeof all);
        memcpy(all + length, der, n);
        length += n;
        OPENSSL_free(der);
    }
    expect_der(all, length, dir, issuers, 0, want, subject);
}

static void expect_with(const issued *x, const char *dir, const char *issuers, uarc_status want,
                        const char *subject)
{
    expect_chain(&x, 1, dir, issuers, want, subject);
}

static void expect(const issued *x, const char *dir, int64_t at, uarc_status want,
                   const char *subject)
{
    uint8_t *der;
    size_t length;
    der_of(x->cert, &der, &length);
    expect_der(der, length, dir, NULL, at, want, subject);
    OPENSSL_free(der);
}

static void test_issued_by_trusted_ca(void **state)
{
    (void)state;
    expect(&server, dir_ca, 0, UARC_Good, NULL);
    expect(&server, dir_ca_crl, 0, UARC_Good, NULL); /* DER CA, CRL that does not list it */
}

static void test_expired(void **state)
{
    (void)state;
    expect(&expired, dir_ca, 0, UARC_BadCertificateTimeInvalid, "CN=uarc expired server");
    /* The server certificate (a year) checked a year and a day later, its CA still valid. */
    expect(&server, dir_ca, (int64_t)time(NULL) + 366 * DAY, UARC_BadCertificateTimeInvalid,
           "expired");
    /* Eleven years later the CA (ten years) has expired too, and is named. */
    expect(&server, dir_ca, (int64_t)time(NULL) + 11 * 365 * DAY,
           UARC_BadCertificateIssuerTimeInvalid, "issuer \"O=uarc tests,CN=uarc test CA\"");
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    /* A day and a half ago the CA was valid, the server certificate not yet. */
    expect(&server, dir_ca, (int64_t)time(NULL) - 3 * DAY / 2, UARC_BadCertificateTimeInvalid,
           "not valid yet");
}

static void test_self_signed_untrusted(void **state)
{
    (void)state;
    expect(&self_signed, dir_ca, 0, UARC_BadCertificateUntrusted, "CN=uarc self-signed server");
    expect(&self_signed, dir_empty, 0, UARC_BadCertificateUntrusted, "trust list");
}

static void test_self_signed_in_trust_list(void **state)
{
    (void)state;
    expect(&self_signed, dir_self, 0, UARC_Good, NULL);
    /* with CRLs in the folder too: no one but itself could revoke it */
    expect(&self_signed, dir_ca_crl, 0, UARC_Good, NULL);
}

static void test_unknown_issuer(void **state)
{
    (void)state;
    expect(&server, dir_self, 0, UARC_BadCertificateChainIncomplete, "CN=uarc test server");
    expect(&server, dir_empty, 0, UARC_BadCertificateChainIncomplete, NULL);
}

static void test_revoked(void **state)
{
    (void)state;
    expect(&revoked, dir_ca_crl, 0, UARC_BadCertificateRevoked, "CN=uarc revoked server");
    expect(&revoked, dir_ca, 0, UARC_Good, NULL); /* no CRLs: revocation is not checked */
}

static void test_use_not_allowed(void **state)
{
    (void)state;
    expect(&client_only, dir_ca, 0, UARC_BadCertificateUseNotAllowed, "serverAuth");
}

static void test_weak_signature(void **state)
{
    (void)state;
    expect(&sha1_signed, dir_ca, 0, UARC_BadCertificatePolicyCheckFailed, "CN=uarc sha1 server");
}

static void test_pinned_without_trust_list(void **state)
{
    (void)state;
    /* No trust list: the certificate trusts itself, validity and use are still checked. */
    expect(&self_signed, NULL, 0, UARC_Good, NULL);
    expect(&server, NULL, 0, UARC_Good, NULL);
    expect(&expired, NULL, 0, UARC_BadCertificateTimeInvalid, "CN=uarc expired server");
    expect(&client_only, NULL, 0, UARC_BadCertificateUseNotAllowed, NULL);
}

static void test_missing_folder_and_garbage(void **state)
{
    (void)state;
    expect(&server, "/nonexistent/uarc-trust", 0, UARC_BadConfigurationError,
           "/nonexistent/uarc-trust");
    char detail[128];
    uint8_t junk[4] = {1, 2, 3, 4};
    assert_int_equal(uarc__cert_validate(junk, sizeof junk, dir_ca, NULL, 0, detail, sizeof detail),
                     UARC_BadCertificateInvalid);
}

static void test_issuers_list_completes_the_chain(void **state)
{
    (void)state;
    /* root trusted, the intermediate in the issuers list (a folder, or one file) */
    expect_with(&via_inter, dir_ca, dir_inter, UARC_Good, NULL);
    expect_with(&via_inter, dir_ca, file_inter, UARC_Good, NULL);
    /* without it the chain cannot be built */
    expect_with(&via_inter, dir_ca, NULL, UARC_BadCertificateChainIncomplete,
                "CN=uarc server via inter");
    expect_with(&via_inter, dir_ca, dir_empty, UARC_BadCertificateChainIncomplete, NULL);
    expect_with(&via_inter, dir_ca, "/nonexistent/uarc-issuers", UARC_BadConfigurationError,
                "issuers list");
}

static void test_chain_sent_by_the_server(void **state)
{
    (void)state;
    const issued *with_inter[] = {&via_inter, &inter};
    const issued *with_root[] = {&via_inter, &inter, &ca};
    expect_chain(with_inter, 2, dir_ca, NULL, UARC_Good, NULL);
    expect_chain(with_root, 3, dir_ca, NULL, UARC_Good, NULL);
    /* what the server sends is never trusted by itself, not even a root at its end */
    expect_chain(with_root, 3, dir_empty, NULL, UARC_BadCertificateUntrusted,
                 "CN=uarc server via inter");
    expect_chain(with_inter, 2, dir_self, NULL, UARC_BadCertificateChainIncomplete, NULL);
    /* an issuer that did not issue it: the chain is still incomplete */
    const issued *wrong[] = {&via_inter, &other_ca};
    expect_chain(wrong, 2, dir_ca, NULL, UARC_BadCertificateChainIncomplete, NULL);
    /* pinned: the leaf is trusted as given, the rest is only parsed */
    expect_chain(with_inter, 2, NULL, NULL, UARC_Good, NULL);
}

static void test_issuers_are_not_trusted(void **state)
{
    (void)state;
    /* a complete chain of issuers, none of them in the trust list */
    expect_with(&via_inter, dir_empty, dir_root_and_inter, UARC_BadCertificateUntrusted,
                "neither it nor an issuer");
    expect_with(&server, dir_self, dir_root_and_inter, UARC_BadCertificateUntrusted, NULL);
    /* untrusted comes before the later checks (Part 4 §6.1.3): expired, but untrusted first */
    expect_with(&expired, dir_self, dir_root_and_inter, UARC_BadCertificateUntrusted, NULL);
}

/* Part 4 §6.1.3: a chain ends at a self-signed certificate, and it is trusted when any of its
 * certificates is in the trust list. */
static void test_trusted_intermediate_needs_its_root(void **state)
{
    (void)state;
    expect_with(&via_inter, dir_inter, NULL, UARC_BadCertificateChainIncomplete,
                "CN=uarc intermediate CA");
    expect_with(&via_inter, dir_inter, dir_ca, UARC_Good, NULL);
    /* the server's own certificate in the trust list: its issuers must still be found */
    expect_with(&via_inter, dir_via_inter, NULL, UARC_BadCertificateChainIncomplete, NULL);
    expect_with(&via_inter, dir_via_inter, dir_root_and_inter, UARC_Good, NULL);
}

static void test_issuers_list_crl(void **state)
{
    (void)state;
    /* the root's CRL in the trust list, the intermediate's beside it in the issuers list */
    expect_with(&via_inter_revoked, dir_ca_crl, dir_inter_crl, UARC_BadCertificateRevoked,
                "CN=uarc revoked via inter");
    expect_with(&via_inter, dir_ca_crl, dir_inter_crl, UARC_Good, NULL);
    /* CRLs present but none of the intermediate's */
    expect_with(&via_inter, dir_ca_crl, dir_inter, UARC_BadCertificateRevocationUnknown, NULL);
}

static void test_chain_limits(void **state)
{
    (void)state;
    const issued *nine[] = {&via_inter, &inter, &ca, &ca, &ca, &ca, &ca, &ca, &ca};
    expect_chain(nine, 8, dir_ca, NULL, UARC_Good, NULL); /* repeats are harmless */
    expect_chain(nine, 9, dir_ca, NULL, UARC_BadCertificateInvalid, "more than 8");
    uint8_t *der;
    size_t length;
    der_of(via_inter.cert, &der, &length);
    static uint8_t buf[UARC__CERT_CHAIN_MAX_BYTES + 16];
    memcpy(buf, der, length);
    memcpy(buf + length, "\x30\x03\x02\x01", 4); /* a truncated certificate after it */
    expect_der(buf, length + 4, dir_ca, NULL, 0, UARC_BadCertificateInvalid, "bytes after");
    for (size_t cut = 1; cut < length; cut += 97) /* its own prefixes */
        expect_der(der, cut, dir_ca, NULL, 0, UARC_BadCertificateInvalid, NULL);
    memset(buf + length, 0, sizeof buf - length);
    expect_der(buf, sizeof buf, dir_ca, NULL, 0, UARC_BadCertificateInvalid, "bytes");
    OPENSSL_free(der);
}

static void expect_host(const issued *x, const char *host, uarc_status want)
{
    uint8_t *der;
    size_t length;
    der_of(x->cert, &der, &length);
    char detail[512];
    uarc_status got = uarc__cert_check_host(der, length, host, detail, sizeof detail);
    OPENSSL_free(der);
    if (got != want)
        fail_msg("%s: want 0x%08X, got 0x%08X: %s", host, want, got, detail);
    if (got == UARC_BadCertificateHostNameInvalid &&
        (!strstr(detail, host) || !strstr(detail, "localhost, *.plant.example, 127.0.0.1")))
        fail_msg("the detail names neither the host nor the certificate's names: %s", detail);
}

static void test_host_name(void **state)
{
    (void)state;
    expect_host(&server, "localhost", UARC_Good);
    expect_host(&server, "LocalHost", UARC_Good);
    expect_host(&server, "line1.plant.example", UARC_Good);
    expect_host(&server, "127.0.0.1", UARC_Good);
    expect_host(&server, "plant.example", UARC_BadCertificateHostNameInvalid);
    expect_host(&server, "a.line1.plant.example", UARC_BadCertificateHostNameInvalid);
    expect_host(&server, "127.0.0.2", UARC_BadCertificateHostNameInvalid);
    expect_host(&server, "::1", UARC_BadCertificateHostNameInvalid);
    expect_host(&server, "uarc test server", UARC_BadCertificateHostNameInvalid); /* not the CN */
    uint8_t junk[3] = {0x30, 0x01, 0x00};
    char detail[64];
    assert_int_equal(uarc__cert_check_host(junk, sizeof junk, "localhost", detail, sizeof detail),
                     UARC_BadCertificateInvalid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued_by_trusted_ca),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_self_signed_untrusted),
        cmocka_unit_test(test_self_signed_in_trust_list),
        cmocka_unit_test(test_unknown_issuer),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_use_not_allowed),
        cmocka_unit_test(test_weak_signature),
        cmocka_unit_test(test_pinned_without_trust_list),
        cmocka_unit_test(test_missing_folder_and_garbage),
        cmocka_unit_test(test_issuers_list_completes_the_chain),
        cmocka_unit_test(test_chain_sent_by_the_server),
        cmocka_unit_test(test_issuers_are_not_trusted),
        cmocka_unit_test(test_trusted_intermediate_needs_its_root),
        cmocka_unit_test(test_issuers_list_crl),
        cmocka_unit_test(test_chain_limits),
        cmocka_unit_test(test_host_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
