/*
 * The client's checks before a secured channel starts: the server certificate must be known, and
 * its subjectAltName URI must be the expected one (the ServerUri a ReverseHello claimed). Nothing
 * goes on the wire when they fail. With a trust list, the server certificate must validate against
 * it (tests/unit/test_cert_trust.c checks the verdicts themselves).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "uarc/client.h"
#include "channel/crypto.h"
#include "core/alloc.h"

#define B256 "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"

static uint8_t *server_cert, *server_key;
static size_t server_cert_length, server_key_length;

static int setup(void **state)
{
    (void)state;
    return uarc__crypto_make_certificate("urn:test:real-server", &server_cert, &server_cert_length,
                                         &server_key, &server_key_length) == UARC_Good
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    uarc__free(server_cert);
    uarc__free(server_key);
    return 0;
}

/* Connects over one end of a socket pair; returns the status and whether bytes were sent. */
static uarc_status connect_pair(uarc_client *client, bool *sent)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uarc_status status = uarc_client_start_socket(client, sv[0], "opc.tcp://127.0.0.1:4840");
    uint8_t buffer[64];
    *sent = recv(sv[1], buffer, sizeof buffer, MSG_DONTWAIT) > 0;
    close(sv[1]);
    return status;
}

static void test_server_uri_must_match_certificate(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.generate_certificate = true;
    cfg.server_certificate = server_cert;
    cfg.server_certificate_length = server_cert_length;
    cfg.expected_server_uri = "urn:test:impostor";
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateUriInvalid);
    assert_false(sent);
    const char *error = uarc_client_error(client);
    assert_non_null(strstr(error, "urn:test:real-server"));
    assert_non_null(strstr(error, "urn:test:impostor"));
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_DISCONNECTED);

    /* the right URI: HEL goes out */
    assert_int_equal(uarc_client_set_expected_server_uri(client, "urn:test:real-server"),
                     UARC_Good);
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);
}

static void test_server_certificate_required(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.generate_certificate = true;
    uarc_client *client = uarc_client_new(&cfg);
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateInvalid);
    assert_false(sent);
    assert_non_null(strstr(uarc_client_error(client), "GetEndpoints"));
    assert_int_equal(uarc_client_set_server_certificate(client, (const uint8_t *)"junk", 4),
                     UARC_BadCertificateInvalid);
    assert_int_equal(uarc_client_set_server_certificate(client, server_cert, server_cert_length),
                     UARC_Good);
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);
}

static void test_client_certificate_required(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.server_certificate = server_cert;
    cfg.server_certificate_length = server_cert_length;
    uarc_client *client = uarc_client_new(&cfg);
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateInvalid);
    assert_false(sent);
    uarc_client_delete(client);

    /* mode None with a secured policy is refused */
    cfg.certificate = server_cert;
    cfg.certificate_length = server_cert_length;
    cfg.private_key = server_key;
    cfg.private_key_length = server_key_length;
    cfg.security_mode = UARC_MessageSecurityMode_None;
    client = uarc_client_new(&cfg);
    assert_int_equal(connect_pair(client, &sent), UARC_BadSecurityModeRejected);
    assert_false(sent);
    uarc_client_delete(client);
}

static void test_trust_list(void **state)
{
    (void)state;
    char dir[] = "/tmp/uarc-client-trust-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.generate_certificate = true;
    cfg.server_certificate = server_cert;
    cfg.server_certificate_length = server_cert_length;
    cfg.trust_list_dir = dir;
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    bool sent;
    /* an empty trust list: the pinned certificate alone is not enough */
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateUntrusted);
    assert_false(sent);
    const char *error = uarc_client_error(client);
    assert_non_null(strstr(error, "OPN"));
    assert_non_null(strstr(error, "CN=uarc"));
    assert_non_null(strstr(error, dir));
    uarc_client_delete(client);

    /* accept_untrusted_server_certificate: HEL goes out */
    cfg.accept_untrusted_server_certificate = true;
    client = uarc_client_new(&cfg);
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);

    /* the certificate in the trust list (read at each connect) */
    char path[96];
    snprintf(path, sizeof path, "%s/server.der", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(server_cert, 1, server_cert_length, f), server_cert_length);
    fclose(f);
    cfg.accept_untrusted_server_certificate = false;
    client = uarc_client_new(&cfg);
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);
    remove(path);
    rmdir(dir);
}

/* Setting the expected ServerUri (as uarc_reverse_connect() does) leaves every other configured
 * string intact: the trust list is still the one configured. */
static void test_expected_uri_keeps_trust_list(void **state)
{
    (void)state;
    char dir[] = "/tmp/uarc-client-trust-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.generate_certificate = true;
    cfg.server_certificate = server_cert;
    cfg.server_certificate_length = server_cert_length;
    cfg.trust_list_dir = dir;
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    assert_int_equal(uarc_client_set_expected_server_uri(client, "urn:test:real-server"),
                     UARC_Good);
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateUntrusted);
    assert_false(sent);
    assert_non_null(strstr(uarc_client_error(client), dir));
    uarc_client_delete(client);
    rmdir(dir);
}

/* Writes `der` to a temporary file; returns its path in `path`. */
static void write_temp(char *path, size_t size, const char *name, const uint8_t *der, size_t length)
{
    snprintf(path, size, "/tmp/uarc-test-%d-%s.der", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(der, 1, length, f), length);
    fclose(f);
}

/* Our ApplicationUri is our certificate's (a strict server refuses any other). */
static void test_application_uri_from_certificate(void **state)
{
    (void)state;
    uint8_t *cert, *key;
    size_t cert_length, key_length;
    assert_int_equal(uarc__crypto_make_certificate("urn:plant:collector-7", &cert, &cert_length,
                                                   &key, &key_length),
                     UARC_Good);
    char cert_path[128], key_path[128];
    write_temp(cert_path, sizeof cert_path, "client-cert", cert, cert_length);
    write_temp(key_path, sizeof key_path, "client-key", key, key_length);

    /* the certificate's URI is used when none is configured */
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.certificate_file = cert_path;
    cfg.private_key_file = key_path;
    cfg.server_certificate = server_cert;
    cfg.server_certificate_length = server_cert_length;
    cfg.accept_untrusted_server_certificate = true;
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    assert_string_equal(uarc_client_application_uri(client), "urn:plant:collector-7");
    uarc_client_delete(client);

    /* the same URI configured: fine */
    cfg.application_uri = "urn:plant:collector-7";
    client = uarc_client_new(&cfg);
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);

    /* another URI configured: refused before anything is sent, naming both */
    cfg.application_uri = "urn:uarc:client";
    client = uarc_client_new(&cfg);
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateUriInvalid);
    assert_false(sent);
    const char *error = uarc_client_error(client);
    assert_non_null(strstr(error, "urn:plant:collector-7"));
    assert_non_null(strstr(error, "urn:uarc:client"));
    /* and before dialing, too */
    assert_int_equal(uarc_client_start_connect(client, "opc.tcp://127.0.0.1:1"),
                     UARC_BadCertificateUriInvalid);
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_DISCONNECTED);
    uarc_client_delete(client);

    /* a certificate file that cannot be read is named */
    cfg.application_uri = NULL;
    cfg.certificate_file = "/nonexistent/uarc-cert.der";
    client = uarc_client_new(&cfg);
    assert_int_not_equal(connect_pair(client, &sent), UARC_Good);
    assert_false(sent);
    assert_non_null(strstr(uarc_client_error(client), "/nonexistent/uarc-cert.der"));
    uarc_client_delete(client);

    remove(cert_path);
    remove(key_path);
    uarc__free(cert);
    uarc__free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_uri_must_match_certificate),
        cmocka_unit_test(test_server_certificate_required),
        cmocka_unit_test(test_client_certificate_required),
        cmocka_unit_test(test_trust_list),
        cmocka_unit_test(test_expected_uri_keeps_trust_list),
        cmocka_unit_test(test_application_uri_from_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
