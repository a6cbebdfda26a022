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
#include "channel/chunk.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "fake_server.h"
#include "rsa_keys.h"

#define B256 "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
#define PSS  "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss"

static uint8_t *server_cert, *server_key;
static size_t server_cert_length, server_key_length;
/* The client's own identity, made once: a generated one per client would cost an RSA key
 * generation per test case (minutes under valgrind). */
static uint8_t *client_cert, *client_key;
static size_t client_cert_length, client_key_length;

static int setup(void **state)
{
    (void)state;
    return uarc__crypto_make_certificate("urn:test:real-server", NULL, &server_cert,
                                         &server_cert_length, &server_key,
                                         &server_key_length) == UARC_Good &&
                   uarc__crypto_make_certificate("urn:uarc:client", NULL, &client_cert,
                                                 &client_cert_length, &client_key,
                                                 &client_key_length) == UARC_Good
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    uarc__free(server_cert);
    uarc__free(server_key);
    uarc__free(client_cert);
    uarc__free(client_key);
    return 0;
}

static void use_client_identity(uarc_client_config *cfg)
{
    cfg->certificate = client_cert;
    cfg->certificate_length = client_cert_length;
    cfg->private_key = client_key;
    cfg->private_key_length = client_key_length;
}

/* Connects to `url` over one end of a socket pair; returns the status and whether bytes were
 * sent. */
static uarc_status connect_url(uarc_client *client, const char *url, bool *sent)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uarc_status status = uarc_client_start_socket(client, sv[0], url);
    uint8_t buffer[64];
    *sent = recv(sv[1], buffer, sizeof buffer, MSG_DONTWAIT) > 0;
    close(sv[1]);
    return status;
}

static uarc_status connect_pair(uarc_client *client, bool *sent)
{
    return connect_url(client, "opc.tcp://127.0.0.1:4840", sent);
}

/* The warnings of category "trust" a client logged, joined. */
static char trust_warnings[4096];

static void log_trust(void *user_data, uarc_log_level level, const char *category,
                      const char *message)
{
    (void)user_data;
    size_t used = strlen(trust_warnings);
    if (level == UARC_LOG_WARNING && strcmp(category, "trust") == 0)
        snprintf(trust_warnings + used, sizeof trust_warnings - used, "%s\n", message);
}

/* A client that learned the server's certificate `cert` from an endpoint of the server
 * `application_uri` (without a trust list accepted although untrusted: the checks below are not
 * the trust decision). */
static uarc_client *client_with_endpoint(uarc_client_config cfg, const uint8_t *cert, size_t length,
                                         const char *application_uri)
{
    cfg.security_policy_uri = B256;
    use_client_identity(&cfg);
    cfg.accept_untrusted_server_certificate = !cfg.trust_list_dir;
    cfg.logger = (uarc_logger){log_trust, NULL, UARC_LOG_WARNING};
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    uarc_EndpointDescription endpoint;
    uarc_init(&endpoint, UARC_T(EndpointDescription));
    endpoint.securityPolicyUri = (uarc_string){strlen(B256), (uint8_t *)B256};
    endpoint.securityMode = UARC_MessageSecurityMode_SignAndEncrypt;
    endpoint.serverCertificate = (uarc_bytestring){length, (uint8_t *)cert};
    endpoint.server.applicationUri =
        (uarc_string){strlen(application_uri), (uint8_t *)application_uri};
    assert_int_equal(uarc_client_set_endpoints(client, &endpoint, 1), UARC_Good);
    trust_warnings[0] = '\0';
    return client;
}

static void test_server_uri_must_match_certificate(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    use_client_identity(&cfg);
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
    use_client_identity(&cfg);
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
    use_client_identity(&cfg);
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

/* A server certificate with a key of `bits` bits, accepted although untrusted, in byte mode:
 * returns what starting the connect returned, and with Good feeds the ACK and returns the OPN
 * chunk's size after its asymmetric header (0 when no OPN came). */
static uarc_status connect_with_server_key(const char *policy, int bits, size_t *opn_body)
{
    size_t cert_length;
    uint8_t *cert = rsa_certificate_of_bits(bits, server_key, server_key_length, &cert_length);
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = policy;
    use_client_identity(&cfg);
    cfg.server_certificate = cert;
    cfg.server_certificate_length = cert_length;
    cfg.accept_untrusted_server_certificate = true;
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    uarc__free(cert);
    *opn_body = 0;
    uarc_status status = uarc_client_start_bytes(client, "opc.tcp://127.0.0.1:4840", 0);
    const uint8_t *out;
    if (status != UARC_Good) {
        assert_int_equal(uarc_client_output_bytes(client, &out), 0);
        assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_DISCONNECTED);
        const char *error = uarc_client_error(client);
        assert_non_null(strstr(error, "OPN"));
        assert_non_null(strstr(error, "2048"));
        uarc_client_delete(client);
        return status;
    }
    size_t n = uarc_client_output_bytes(client, &out);
    assert_true(n > 0 && memcmp(out, "HEL", 3) == 0);
    uarc_client_output_consumed(client, n);
    fake_frame ack;
    frame_ack(&ack);
    assert_int_equal(uarc_client_receive_bytes(client, ack.bytes, ack.length, 1), UARC_Good);
    n = uarc_client_output_bytes(client, &out);
    if (n >= 12 && memcmp(out, "OPN", 3) == 0) {
        size_t pos = 12; /* header and SecureChannelId, then three ByteStrings */
        for (int i = 0; i < 3; i++)
            pos += 4 + get_u32(out + pos);
        assert_int_equal(get_u32(out + 4), n);
        *opn_body = n - pos;
    }
    uarc_client_delete(client);
    return status;
}

/* Every RSA policy refuses a server certificate with a key outside 2048-4096 bits before anything
 * is sent, even when told to accept untrusted certificates: a 512-bit key made the OPN padding
 * computation wrap and write far past the output buffer (for the RSA-OAEP-SHA256 of
 * Aes256_Sha256_RsaPss, whose overhead of 66 bytes exceeds such a key's 64). Odd sizes within the
 * range work: the OPN is whole blocks of the key's size. */
static void test_server_key_sizes(void **state)
{
    (void)state;
    const char *policies[] = {PSS, B256};
    static const int refused[] = {512, 1024, 8192};
    for (size_t p = 0; p < 2; p++) {
        size_t opn;
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
            assert_int_equal(connect_with_server_key(policies[p], refused[i], &opn),
                             UARC_BadCertificatePolicyCheckFailed);
        assert_int_equal(connect_with_server_key(policies[p], 3001, &opn), UARC_Good);
        assert_true(opn > 0 && opn % 376 == 0);
        assert_int_equal(connect_with_server_key(policies[p], 4096, &opn), UARC_Good);
        assert_true(opn > 0 && opn % 512 == 0);
    }
}

/* An allocator that looks into every block uarc lets go (freed, or left behind by a realloc)
 * for the bytes of a secret. */
#define BLOCK_HEADER 16
static const uint8_t *secret_needles[3];
static size_t secret_needle_lengths[3];
static int secrets_found;

static void *scanning_malloc(size_t size, void *user_data)
{
    (void)user_data;
    uint8_t *p = calloc(1, BLOCK_HEADER + size); /* zeroed: the scan reads whole blocks */
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    return p + BLOCK_HEADER;
}

static void scanning_free(void *ptr, void *user_data)
{
    (void)user_data;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - BLOCK_HEADER;
    size_t size;
    memcpy(&size, p, sizeof size);
    for (int i = 0; i < 3; i++)
        if (secret_needles[i] && memmem(ptr, size, secret_needles[i], secret_needle_lengths[i]))
            secrets_found++;
    free(p);
}

static void *scanning_realloc(void *ptr, size_t size, void *user_data)
{
    uint8_t *q = scanning_malloc(size, user_data);
    if (q && ptr) {
        size_t old;
        memcpy(&old, (uint8_t *)ptr - BLOCK_HEADER, sizeof old);
        memcpy(q, ptr, old < size ? old : size);
        scanning_free(ptr, user_data);
    }
    return q;
}

/* Key material, nonces and the password are wiped before their memory goes back: a client that
 * read its private key from a file, sent OPN and was deleted leaves none of them in any block it
 * freed (the old code freed the password, the key's DER and the channel's nonce unwiped). */
static void test_secrets_wiped(void **state)
{
    (void)state;
    char dir[] = "/tmp/uarc-client-secrets-XXXXXX", cert_path[64], key_path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(cert_path, sizeof cert_path, "%s/cert.der", dir);
    snprintf(key_path, sizeof key_path, "%s/key.der", dir);
    FILE *f = fopen(cert_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(server_cert, 1, server_cert_length, f), server_cert_length);
    fclose(f);
    f = fopen(key_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(server_key, 1, server_key_length, f), server_key_length);
    fclose(f);

    static const char password[] = "uarc-test-password-7f3a";
    secret_needles[0] = (const uint8_t *)password;
    secret_needle_lengths[0] = strlen(password);
    secret_needles[1] = server_key + server_key_length / 2; /* inside the private exponent */
    secret_needle_lengths[1] = 32;
    secrets_found = 0;
    uarc_set_allocator(&(uarc_allocator){scanning_malloc, scanning_realloc, scanning_free, NULL});
    uarc_client_config cfg = {0};
    cfg.security_policy_uri = B256;
    cfg.certificate_file = cert_path;
    cfg.private_key_file = key_path;
    cfg.server_certificate = server_cert; /* talks to itself: the same identity both ways */
    cfg.server_certificate_length = server_cert_length;
    cfg.accept_untrusted_server_certificate = true;
    cfg.user_name = "operator";
    cfg.password = password;
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    assert_int_equal(uarc_client_start_bytes(client, "opc.tcp://127.0.0.1:4840", 0), UARC_Good);
    fake_frame ack;
    frame_ack(&ack);
    assert_int_equal(uarc_client_receive_bytes(client, ack.bytes, ack.length, 1), UARC_Good);
    /* the client nonce, from the OPN opened as the server would (the same identity) */
    const uint8_t *out;
    size_t n = uarc_client_output_bytes(client, &out);
    const uint8_t *opn = memmem(out, n, "OPNF", 4);
    assert_non_null(opn);
    static uint8_t chunk[8192];
    size_t size = n - (size_t)(opn - out), header;
    assert_true(size <= sizeof chunk);
    memcpy(chunk, opn, size);
    const uarc__security_policy *policy = &uarc__security_policy_basic256sha256;
    uarc__security_config config = {UARC_MessageSecurityMode_SignAndEncrypt,
                                    {server_cert, server_cert_length},
                                    {server_key, server_key_length},
                                    {server_cert, server_cert_length},
                                    false};
    void *context = NULL;
    assert_int_equal(policy->context_new(&config, &context), UARC_Good);
    uarc__chunk_info info;
    uarc__chunk_security security = {policy, context, NULL};
    assert_int_equal(uarc__chunk_parse_header(chunk, size, &info, &header), UARC_Good);
    assert_int_equal(uarc__chunk_open(&security, chunk, size, header, &info), UARC_Good);
    policy->context_delete(context);
    size_t offset = 0;
    uarc_nodeid type_id;
    uarc_OpenSecureChannelRequest request;
    assert_int_equal(
        uarc_decode(info.body, info.body_length, &offset, &type_id, UARC_T(NodeId), NULL),
        UARC_Good);
    assert_int_equal(uarc_decode(info.body, info.body_length, &offset, &request,
                                 UARC_T(OpenSecureChannelRequest), NULL),
                     UARC_Good);
    static uint8_t nonce[32];
    assert_int_equal(request.clientNonce.length, sizeof nonce);
    memcpy(nonce, request.clientNonce.data, sizeof nonce);
    uarc_clear(&request, UARC_T(OpenSecureChannelRequest));
    secret_needles[2] = nonce;
    secret_needle_lengths[2] = sizeof nonce;

    uarc_client_delete(client);
    uarc_set_allocator(NULL);
    secret_needles[0] = secret_needles[1] = secret_needles[2] = NULL;
    assert_int_equal(secrets_found, 0);
    remove(cert_path);
    remove(key_path);
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
    use_client_identity(&cfg);
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
    assert_int_equal(uarc__crypto_make_certificate("urn:plant:collector-7", NULL, &cert,
                                                   &cert_length, &key, &key_length),
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

/* Forward connect: the server certificate's URI must be the endpoint's ApplicationUri (Part 4
 * §6.1.3), an error unless allowed, and accept_untrusted_server_certificate does not waive it. */
static void test_endpoint_application_uri(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    uarc_client *client =
        client_with_endpoint(cfg, server_cert, server_cert_length, "urn:test:other-server");
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateUriInvalid);
    assert_false(sent);
    const char *error = uarc_client_error(client);
    assert_non_null(strstr(error, "OPN"));
    assert_non_null(strstr(error, "urn:test:real-server"));
    assert_non_null(strstr(error, "urn:test:other-server"));
    uarc_client_delete(client);

    cfg.allow_server_uri_mismatch = true;
    client = client_with_endpoint(cfg, server_cert, server_cert_length, "urn:test:other-server");
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    assert_non_null(strstr(trust_warnings, "urn:test:other-server"));
    uarc_client_delete(client);

    cfg.allow_server_uri_mismatch = false;
    client = client_with_endpoint(cfg, server_cert, server_cert_length, "urn:test:real-server");
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    assert_null(strstr(trust_warnings, "ApplicationUri"));
    uarc_client_delete(client);
}

/* Forward connect: the EndpointUrl's host against the certificate's DNS and IP names (it has
 * DNS:localhost only): a warning by default, an error with require_server_host_name. */
static void test_endpoint_host_name(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    uarc_client *client =
        client_with_endpoint(cfg, server_cert, server_cert_length, "urn:test:real-server");
    bool sent;
    assert_int_equal(connect_url(client, "opc.tcp://127.0.0.1:4840", &sent), UARC_Good);
    assert_true(sent);
    assert_non_null(strstr(trust_warnings, "127.0.0.1"));
    assert_non_null(strstr(trust_warnings, "localhost"));
    uarc_client_delete(client);

    cfg.require_server_host_name = true;
    client = client_with_endpoint(cfg, server_cert, server_cert_length, "urn:test:real-server");
    assert_int_equal(connect_url(client, "opc.tcp://127.0.0.1:4840", &sent),
                     UARC_BadCertificateHostNameInvalid);
    assert_false(sent);
    assert_non_null(strstr(uarc_client_error(client), "127.0.0.1"));
    assert_int_equal(connect_url(client, "opc.tcp://LOCALHOST:4840/ua", &sent), UARC_Good);
    assert_true(sent);
    assert_null(strstr(trust_warnings, "subjectAltNames"));
    uarc_client_delete(client);

    /* reverse connect binds the certificate to the ReverseHello's ServerUri instead */
    cfg.expected_server_uri = "urn:test:real-server";
    client = client_with_endpoint(cfg, server_cert, server_cert_length, "urn:test:other-server");
    assert_int_equal(connect_url(client, "opc.tcp://127.0.0.1:4840", &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);
}

/* The endpoint's serverCertificate may be a chain: all of it reaches the trust decision, only its
 * first certificate is the server's. */
static void test_endpoint_certificate_chain(void **state)
{
    (void)state;
    uint8_t chain[8192];
    assert_true(2 * server_cert_length + 4 <= sizeof chain);
    memcpy(chain, server_cert, server_cert_length);
    memcpy(chain + server_cert_length, server_cert, server_cert_length);
    char dir[] = "/tmp/uarc-client-trust-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96];
    snprintf(path, sizeof path, "%s/server.der", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(server_cert, 1, server_cert_length, f), server_cert_length);
    fclose(f);
    uarc_client_config cfg = {.trust_list_dir = dir};
    uarc_client *client =
        client_with_endpoint(cfg, chain, 2 * server_cert_length, "urn:test:real-server");
    bool sent;
    assert_int_equal(connect_pair(client, &sent), UARC_Good);
    assert_true(sent);
    uarc_client_delete(client);

    /* what follows the certificate is not one */
    memcpy(chain + server_cert_length, "\x30\x82\x01\x00", 4);
    client = client_with_endpoint(cfg, chain, server_cert_length + 4, "urn:test:real-server");
    assert_int_equal(connect_pair(client, &sent), UARC_BadCertificateInvalid);
    assert_false(sent);
    assert_non_null(strstr(uarc_client_error(client), "bytes after certificate 1"));
    uarc_client_delete(client);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_uri_must_match_certificate),
        cmocka_unit_test(test_server_certificate_required),
        cmocka_unit_test(test_client_certificate_required),
        cmocka_unit_test(test_trust_list),
        cmocka_unit_test(test_server_key_sizes),
        cmocka_unit_test(test_secrets_wiped),
        cmocka_unit_test(test_expected_uri_keeps_trust_list),
        cmocka_unit_test(test_application_uri_from_certificate),
        cmocka_unit_test(test_endpoint_application_uri),
        cmocka_unit_test(test_endpoint_host_name),
        cmocka_unit_test(test_endpoint_certificate_chain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
