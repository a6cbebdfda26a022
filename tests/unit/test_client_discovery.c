/*
 * Forward discovery: the endpoint picked by policy and mode, and a discovery whose None
 * connection fails. The discovery against servers that answer runs in interop.security.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "uarc/client.h"

/* A loopback port nothing listens on (bound, then closed). */
static uint16_t refused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t length = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &length), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

#define B256 "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"

/* Forward discovery picks the endpoint of the configured policy and mode (Invalid:
 * SignAndEncrypt) that has a certificate; a discovery whose None connection fails names its step
 * and leaves the client disconnected. */
static void test_discover(void **state)
{
    (void)state;
    uint8_t der[] = {0x30, 0x00};
    uarc_string none = {strlen("http://opcfoundation.org/UA/SecurityPolicy#None"),
                        (uint8_t *)"http://opcfoundation.org/UA/SecurityPolicy#None"};
    uarc_string b256 = {strlen(B256), (uint8_t *)B256};
    uarc_bytestring cert = {sizeof der, der};
    uarc_EndpointDescription eps[4];
    for (size_t i = 0; i < 4; i++)
        uarc_init(&eps[i], UARC_T(EndpointDescription));
    eps[0].securityPolicyUri = none;
    eps[0].securityMode = UARC_MessageSecurityMode_None;
    eps[1].securityPolicyUri = b256;
    eps[1].securityMode = UARC_MessageSecurityMode_Sign;
    eps[1].serverCertificate = cert;
    eps[2].securityPolicyUri = b256;
    eps[2].securityMode = UARC_MessageSecurityMode_SignAndEncrypt;
    eps[3].securityPolicyUri = b256;
    eps[3].securityMode = UARC_MessageSecurityMode_SignAndEncrypt;
    eps[3].serverCertificate = cert;

    uarc_client_config cfg = {.security_policy_uri = B256};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    assert_ptr_equal(uarc_client_pick_endpoint(c, eps, 4), &eps[3]);
    assert_null(uarc_client_pick_endpoint(c, eps, 3));
    uarc_client_delete(c);
    cfg.security_mode = UARC_MessageSecurityMode_Sign;
    c = uarc_client_new(&cfg);
    assert_ptr_equal(uarc_client_pick_endpoint(c, eps, 4), &eps[1]);

    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", refused_port());
    assert_int_equal(uarc_client_discover(c, url), UARC_BadCommunicationError);
    assert_non_null(strstr(uarc_client_error(c), "connect: BadCommunicationError"));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    uarc_client_delete(c);
}

static void write_file(const char *path, const uint8_t *data, size_t length)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, length, f), length);
    fclose(f);
}

/* The probe presents the URI of the client's certificate file too: a certificate that does not
 * say urn:uarc:client does not stop discovery, and a configured URI that differs from it does,
 * before any connection. */
static void test_discover_with_certificate_file(void **state)
{
    (void)state;
    uint8_t *cert, *key;
    size_t cert_length, key_length;
    assert_int_equal(
        uarc_certificate_generate("urn:plant:collector-7", &cert, &cert_length, &key, &key_length),
        UARC_Good);
    char cert_path[64], key_path[64];
    snprintf(cert_path, sizeof cert_path, "/tmp/uarc-discover-%d.cert", (int)getpid());
    snprintf(key_path, sizeof key_path, "/tmp/uarc-discover-%d.key", (int)getpid());
    write_file(cert_path, cert, cert_length);
    write_file(key_path, key, key_length);
    uarc_free(cert);
    uarc_free(key);

    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", refused_port());
    uarc_client_config cfg = {
        .security_policy_uri = B256, .certificate_file = cert_path, .private_key_file = key_path};
    uarc_client *c = uarc_client_new(&cfg);
    assert_int_equal(uarc_client_discover(c, url), UARC_BadCommunicationError);
    uarc_client_delete(c);
    cfg.application_uri = "urn:uarc:client";
    c = uarc_client_new(&cfg);
    assert_int_equal(uarc_client_discover(c, url), UARC_BadCertificateUriInvalid);
    assert_non_null(strstr(uarc_client_error(c), "urn:plant:collector-7"));
    uarc_client_delete(c);
    remove(cert_path);
    remove(key_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discover),
        cmocka_unit_test(test_discover_with_certificate_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
