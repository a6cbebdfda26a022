/*
 * The hub learning a secured server's certificate over its first dial (GetEndpoints on a None
 * channel) before the next dial opens the secured channel. Scripted servers on loopback, driven
 * from the test's own thread: the test runs the hub until a server's socket has something to
 * read, then reads it and writes the server's answer.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fake_server.h"
#include "uarc/uarc.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "reverse/hub_internal.h"

#define CHANNEL_ID 21u
#define TOKEN_ID   1u
#define SERVER_URI "urn:a"
#define OTHER_URI  "urn:b"
#define ENDPOINT   "opc.tcp://127.0.0.1:4840"
#define POLICY     "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
#define NONE       "http://opcfoundation.org/UA/SecurityPolicy#None"

/* Certificates with subjectAltName URI urn:a and urn:b, a substitute for urn:a's (same URI,
 * another key), and our own with its key, made once (not by each client at its first secured
 * connect: that is slow under valgrind). */
static uint8_t *cert_a, *cert_b, *cert_a2, *cert_client, *key_client;
static size_t cert_a_length, cert_b_length, cert_a2_length, cert_client_length, key_client_length;

typedef struct events {
    int discovered, failed, connected;
    char server_uri[64];
    uarc_status status;
    char detail[1024];
    uarc_MessageSecurityMode mode;
    char endpoint_url[64];
} events;

typedef struct fixture {
    uarc_allowlist *allow;
    uarc_listener *listener;
    uarc_reverse_hub *hub;
    events ev;
} fixture;

static void on_discovered(void *user_data, uarc_client *client, const char *server_uri,
                          const uarc_EndpointDescription *endpoint)
{
    events *e = user_data;
    (void)client;
    e->discovered++;
    snprintf(e->server_uri, sizeof e->server_uri, "%s", server_uri);
    e->mode = endpoint->securityMode;
    snprintf(e->endpoint_url, sizeof e->endpoint_url, "%.*s", (int)endpoint->endpointUrl.length,
             (const char *)endpoint->endpointUrl.data);
}

static void on_failed(void *user_data, uarc_client *client, const char *server_uri,
                      uarc_status status, const char *detail)
{
    events *e = user_data;
    (void)client;
    e->failed++;
    snprintf(e->server_uri, sizeof e->server_uri, "%s", server_uri);
    e->status = status;
    snprintf(e->detail, sizeof e->detail, "%s", detail);
}

static void on_connected(void *user_data, uarc_client *client, const char *server_uri,
                         bool restored, bool resumed)
{
    events *e = user_data;
    (void)client, (void)server_uri, (void)restored, (void)resumed;
    e->connected++;
}

static int make_certificates(void **state)
{
    (void)state;
    uint8_t *key;
    size_t key_length;
    if (uarc__crypto_make_certificate(SERVER_URI, NULL, &cert_a, &cert_a_length, &key,
                                      &key_length) != UARC_Good)
        return -1;
    uarc__free(key);
    if (uarc__crypto_make_certificate(OTHER_URI, NULL, &cert_b, &cert_b_length, &key,
                                      &key_length) != UARC_Good)
        return -1;
    uarc__free(key);
    if (uarc__crypto_make_certificate(SERVER_URI, NULL, &cert_a2, &cert_a2_length, &key,
                                      &key_length) != UARC_Good)
        return -1;
    uarc__free(key);
    if (uarc__crypto_make_certificate("urn:uarc:test-client", NULL, &cert_client,
                                      &cert_client_length, &key_client,
                                      &key_client_length) != UARC_Good)
        return -1;
    return 0;
}

static int free_certificates(void **state)
{
    (void)state;
    uarc__free(cert_a);
    uarc__free(cert_b);
    uarc__free(cert_a2);
    uarc__free(cert_client);
    uarc__free(key_client);
    return 0;
}

/* A hub over a listener allowing urn:a and urn:b; `ho` gives its options but the listener and
 * the callbacks' user data. */
static fixture *new_hub(uarc_reverse_hub_config ho)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->allow = uarc_allowlist_new();
    assert_int_equal(uarc_allowlist_add(fx->allow, SERVER_URI, NULL), UARC_Good);
    assert_int_equal(uarc_allowlist_add(fx->allow, OTHER_URI, NULL), UARC_Good);
    uarc_listener_config lo = {.allowlist = fx->allow,
                               .bind_addresses = (const char *[]){"127.0.0.1"},
                               .bind_address_count = 1};
    fx->listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(fx->listener), UARC_Good);
    ho.listener = fx->listener;
    ho.callbacks.connected = on_connected;
    ho.callbacks.failed = on_failed;
    ho.callbacks.user_data = &fx->ev;
    ho.callbacks.discovered = on_discovered;
    fx->hub = uarc_reverse_hub_new(&ho);
    assert_non_null(fx->hub);
    return fx;
}

/* The clients' configuration of new_fixture(). */
static uarc_client_config secured_config(const uint8_t *server_certificate, size_t length)
{
    return (uarc_client_config){.security_policy_uri = POLICY,
                                .certificate = cert_client,
                                .certificate_length = cert_client_length,
                                .private_key = key_client,
                                .private_key_length = key_client_length,
                                .server_certificate = server_certificate,
                                .server_certificate_length = length,
                                .accept_untrusted_server_certificate = true};
}

/* A hub whose clients ask for Basic256Sha256 (mode left to its default, SignAndEncrypt), with
 * `server_certificate` configured or not, accepting any certificate (the trust decision itself
 * is tested with its own fixtures). */
static fixture *new_fixture(const uint8_t *server_certificate, size_t length)
{
    return new_hub((uarc_reverse_hub_config){.client = secured_config(server_certificate, length)});
}

static void free_fixture(fixture *fx)
{
    uarc_reverse_hub_delete(fx->hub);
    uarc_listener_delete(fx->listener);
    uarc_allowlist_delete(fx->allow);
    free(fx);
}

static bool readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

/* Runs the hub until `fd` has bytes (or end of stream) to read. */
static void run_until_readable(fixture *fx, int fd)
{
    for (int i = 0; i < 250 && !readable(fd); i++)
        uarc_reverse_hub_process(fx->hub, 20);
    assert_true(readable(fd));
}

/* Runs the hub until *counter reaches `n`. */
static void run_until(fixture *fx, const int *counter, int n)
{
    for (int i = 0; i < 250 && *counter < n; i++)
        uarc_reverse_hub_process(fx->hub, 20);
    assert_int_equal(*counter, n);
}

static int dial(fixture *fx, const char *server_uri)
{
    int fd = connect_to(uarc_listener_port(fx->listener));
    fake_frame f;
    frame_rhe(&f, server_uri, ENDPOINT);
    send_all(fd, f.bytes, f.length);
    return fd;
}

static uint8_t message[65536];

/* Reads the client's next message into `message`, running the hub until it is there. */
static size_t next_message(fixture *fx, int fd, const char type[4])
{
    run_until_readable(fx, fd);
    assert_true(recv_exact(fd, message, 8));
    uint32_t size = get_u32(message + 4);
    assert_true(size >= 8 && size <= sizeof message);
    assert_true(recv_exact(fd, message + 8, size - 8));
    assert_memory_equal(message, type, 4);
    return size;
}

/* HEL/ACK, then the OPN: returns whether it asked for `policy`; a None OPN is answered. */
static bool open_channel(fixture *fx, int fd, const char *policy)
{
    next_message(fx, fd, "HELF");
    fake_frame f;
    frame_ack(&f);
    send_all(fd, f.bytes, f.length);
    next_message(fx, fd, "OPNF");
    /* OPN: header, channel id, then the SecurityPolicyUri of the asymmetric header. */
    uint32_t length = get_u32(message + 12);
    bool same = length == strlen(policy) && memcmp(message + 16, policy, length) == 0;
    if (same && strcmp(policy, NONE) == 0) {
        size_t pos = 12;
        for (int i = 0; i < 3; i++) {
            int32_t n = (int32_t)get_u32(message + pos);
            pos += 4 + (n > 0 ? (size_t)n : 0);
        }
        frame_opn_response(&f, CHANNEL_ID, TOKEN_ID, 1, get_u32(message + pos + 4));
        send_all(fd, f.bytes, f.length);
    }
    return same;
}

/* An endpoint of the policy and mode, with a certificate or none. */
static uarc_EndpointDescription endpoint(const char *policy, uarc_MessageSecurityMode mode,
                                         const uint8_t *cert, size_t cert_length)
{
    uarc_EndpointDescription e;
    uarc_init(&e, UARC_T(EndpointDescription));
    e.endpointUrl = (uarc_string){strlen(ENDPOINT), (uint8_t *)ENDPOINT};
    e.securityPolicyUri = (uarc_string){strlen(policy), (uint8_t *)policy};
    e.securityMode = mode;
    e.serverCertificate = (uarc_bytestring){cert_length, (uint8_t *)cert};
    return e;
}

/* Reads the GetEndpoints request and answers it with `endpoints`. */
static void answer_get_endpoints(fixture *fx, int fd, uarc_EndpointDescription *endpoints,
                                 size_t count)
{
    size_t size = next_message(fx, fd, "MSGF");
    uint32_t request_id = get_u32(message + 20);
    size_t offset = 0;
    uarc_nodeid id;
    assert_int_equal(uarc_decode(message + 24, size - 24, &offset, &id, UARC_T(NodeId), NULL),
                     UARC_Good);
    assert_int_equal(id.identifier.numeric, UARC_T(GetEndpointsRequest)->binary_encoding_id);

    uarc_GetEndpointsResponse r;
    uarc_init(&r, UARC_T(GetEndpointsResponse));
    r.endpointsSize = count;
    r.endpoints = endpoints;
    uint8_t *body;
    size_t length;
    assert_int_equal(uarc_encode_alloc(&r, UARC_T(GetEndpointsResponse), &body, &length),
                     UARC_Good);
    uarc_nodeid type = uarc_nodeid_numeric(0, UARC_T(GetEndpointsResponse)->binary_encoding_id);
    uint8_t prefix[16];
    size_t prefix_length = 0;
    assert_int_equal(uarc_encode(&type, UARC_T(NodeId), prefix, sizeof prefix, &prefix_length),
                     UARC_Good);
    fake_frame f;
    frame_begin(&f, "MSGF");
    frame_u32(&f, CHANNEL_ID);
    frame_u32(&f, TOKEN_ID);
    frame_u32(&f, 2);
    frame_u32(&f, request_id);
    frame_bytes(&f, prefix, prefix_length);
    frame_bytes(&f, body, length);
    frame_end(&f);
    uarc_free(body);
    send_all(fd, f.bytes, f.length);
}

/* The discovery channel ends cleanly: CLO, then end of stream. */
static void expect_clo_and_close(fixture *fx, int fd)
{
    next_message(fx, fd, "CLOF");
    run_until_readable(fx, fd);
    expect_eof(fd);
}

/* One dial used for discovery that ends without a certificate; the next dial asks again (the
 * certificate was not set: its OPN is None). */
static void expect_refused(fixture *fx, uarc_EndpointDescription *endpoints, size_t count,
                           uarc_status status)
{
    int fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, NONE));
    answer_get_endpoints(fx, fd, endpoints, count);
    expect_clo_and_close(fx, fd);
    run_until(fx, &fx->ev.failed, 1);
    assert_string_equal(fx->ev.server_uri, SERVER_URI);
    assert_int_equal(fx->ev.status, status);
    assert_non_null(strstr(fx->ev.detail, "GetEndpoints: "));
    assert_int_equal(fx->ev.discovered, 0);
    close(fd);

    fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, NONE));
    close(fd);
}

static void test_no_matching_endpoint(void **state)
{
    (void)state;
    fixture *fx = new_fixture(NULL, 0);
    uarc_EndpointDescription e[] = {
        endpoint(NONE, UARC_MessageSecurityMode_None, NULL, 0),
        endpoint(POLICY, UARC_MessageSecurityMode_Sign, cert_a, cert_a_length),
        endpoint(POLICY, UARC_MessageSecurityMode_SignAndEncrypt, NULL, 0), /* no certificate */
    };
    expect_refused(fx, e, 3, UARC_BadSecurityPolicyRejected);
    assert_non_null(strstr(fx->ev.detail, "BadSecurityPolicyRejected"));
    assert_non_null(strstr(fx->ev.detail, POLICY " in mode SignAndEncrypt"));
    assert_non_null(strstr(fx->ev.detail, "None/None, Basic256Sha256/Sign"));
    free_fixture(fx);
}

static void test_certificate_uri_differs(void **state)
{
    (void)state;
    fixture *fx = new_fixture(NULL, 0);
    uarc_EndpointDescription e[] = {
        endpoint(POLICY, UARC_MessageSecurityMode_SignAndEncrypt, cert_b, cert_b_length),
    };
    expect_refused(fx, e, 1, UARC_BadCertificateUriInvalid);
    assert_non_null(strstr(fx->ev.detail, "names URI " OTHER_URI));
    assert_non_null(strstr(fx->ev.detail, "claims to be " SERVER_URI));
    free_fixture(fx);
}

/* The certificate found goes to the server's client: its next dials open Basic256Sha256. */
static void test_discovered_then_secured(void **state)
{
    (void)state;
    fixture *fx = new_fixture(NULL, 0);
    int fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, NONE));
    uarc_EndpointDescription e[] = {
        endpoint(NONE, UARC_MessageSecurityMode_None, NULL, 0),
        endpoint(POLICY, UARC_MessageSecurityMode_Sign, cert_a, cert_a_length),
        endpoint(POLICY, UARC_MessageSecurityMode_SignAndEncrypt, cert_a, cert_a_length),
    };
    answer_get_endpoints(fx, fd, e, 3);
    expect_clo_and_close(fx, fd);
    run_until(fx, &fx->ev.discovered, 1);
    assert_string_equal(fx->ev.server_uri, SERVER_URI);
    assert_int_equal(fx->ev.mode, UARC_MessageSecurityMode_SignAndEncrypt);
    assert_string_equal(fx->ev.endpoint_url, ENDPOINT);
    assert_int_equal(fx->ev.failed, 0);
    close(fd);

    for (int dials = 1; dials <= 2; dials++) {
        fd = dial(fx, SERVER_URI);
        assert_true(open_channel(fx, fd, POLICY));
        close(fd); /* the fake cannot go on: the connect fails at OPN */
        run_until(fx, &fx->ev.failed, dials);
        assert_non_null(strstr(fx->ev.detail, "OPN"));
    }
    assert_int_equal(fx->ev.discovered, 1);
    free_fixture(fx);
}

/* Discovery over the first dial of `fx`, answered with one endpoint of POLICY and `cert`. */
static void discover(fixture *fx, const uint8_t *cert, size_t cert_length)
{
    int fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, NONE));
    uarc_EndpointDescription e[] = {
        endpoint(POLICY, UARC_MessageSecurityMode_SignAndEncrypt, cert, cert_length),
    };
    answer_get_endpoints(fx, fd, e, 1);
    expect_clo_and_close(fx, fd);
    run_until(fx, &fx->ev.discovered, 1);
    close(fd);
}

/* Runs the hub until the server's dial fails; true when the client sent HEL first. */
static bool dial_fails(fixture *fx, int failures)
{
    int fd = dial(fx, SERVER_URI);
    run_until(fx, &fx->ev.failed, failures);
    bool hel =
        readable(fd) && recv(fd, message, 4, MSG_DONTWAIT) == 4 && memcmp(message, "HELF", 4) == 0;
    close(fd);
    return hel;
}

/* A learned certificate with no trust decision configured is never used: the next dial fails
 * before HEL, saying what to configure. */
static void test_discovered_needs_a_trust_decision(void **state)
{
    (void)state;
    uarc_client_config cfg = secured_config(NULL, 0);
    cfg.accept_untrusted_server_certificate = false;
    fixture *fx = new_hub((uarc_reverse_hub_config){.client = cfg});
    discover(fx, cert_a, cert_a_length);
    assert_false(dial_fails(fx, 1));
    assert_int_equal(fx->ev.status, UARC_BadCertificateUntrusted);
    assert_non_null(strstr(fx->ev.detail, "OPN: BadCertificateUntrusted"));
    assert_non_null(strstr(fx->ev.detail, "trust_store_dir"));
    free_fixture(fx);
}

/* With a trust store, the first certificate discovered for a ServerUri is recorded; a hub that
 * later discovers another one under that ServerUri (a substitute) refuses it before OPN. */
static void test_trust_store_refuses_a_substitute(void **state)
{
    (void)state;
    char dir[] = "/tmp/uarc-hub-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uarc_client_config cfg = secured_config(NULL, 0);
    cfg.accept_untrusted_server_certificate = false;
    cfg.trust_store_dir = dir;

    fixture *fx = new_hub((uarc_reverse_hub_config){.client = cfg});
    discover(fx, cert_a, cert_a_length);
    int fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, POLICY)); /* trusted on first use: OPN goes out */
    close(fd);
    run_until(fx, &fx->ev.failed, 1); /* the fake goes no further than the OPN */
    free_fixture(fx);

    fx = new_hub((uarc_reverse_hub_config){.client = cfg});
    discover(fx, cert_a2, cert_a2_length);
    assert_false(dial_fails(fx, 1));
    assert_int_equal(fx->ev.status, UARC_BadCertificateUntrusted);
    assert_non_null(strstr(fx->ev.detail, "not the one recorded on first use"));
    assert_non_null(strstr(fx->ev.detail, dir));
    free_fixture(fx);

    /* the same certificate as recorded: trusted again */
    fx = new_hub((uarc_reverse_hub_config){.client = cfg});
    discover(fx, cert_a, cert_a_length);
    fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, POLICY));
    close(fd);
    run_until(fx, &fx->ev.failed, 1);
    free_fixture(fx);

    char command[128];
    snprintf(command, sizeof command, "rm -r %s", dir);
    assert_int_equal(system(command), 0);
}

/* A configured certificate is used at once: no discovery. */
static void test_configured_certificate_skips_discovery(void **state)
{
    (void)state;
    fixture *fx = new_fixture(cert_a, cert_a_length);
    int fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, POLICY));
    close(fd);
    run_until(fx, &fx->ev.failed, 1);
    assert_int_equal(fx->ev.discovered, 0);
    free_fixture(fx);
}

/* Each server's certificate, given by `configure` (so no discovery). */
static bool configure_per_server(void *user_data, const uarc_reverse_connection *c,
                                 uarc_client_config *cfg)
{
    (void)user_data;
    bool a = strcmp(c->server_uri, SERVER_URI) == 0;
    cfg->server_certificate = a ? cert_a : cert_b;
    cfg->server_certificate_length = a ? cert_a_length : cert_b_length;
    return true;
}

/* Where the OPN in `message` has its SenderCertificate (after the SecurityPolicyUri). */
static const uint8_t *sender_certificate(size_t *length)
{
    uint32_t policy_length = get_u32(message + 12);
    const uint8_t *at = message + 16 + policy_length;
    int32_t n = (int32_t)get_u32(at);
    assert_true(n > 0);
    *length = (size_t)n;
    return at + 4;
}

/* generate_certificate with no certificate given: the hub makes one certificate, once, when it is
 * made, and every client presents it (each client making its own, or the first server waiting
 * for it, would stall the hub's loop). */
static void test_generated_certificate_shared(void **state)
{
    (void)state;
    fixture *fx =
        new_hub((uarc_reverse_hub_config){.client = {.security_policy_uri = POLICY,
                                                     .application_uri = "urn:uarc:test-hub",
                                                     .generate_certificate = true},
                                          .callbacks = {.configure = configure_per_server}});
    /* made with the hub, before any server dialed */
    assert_int_equal(fx->hub->certificate_count, 1);

    uint8_t *first = NULL;
    size_t first_length = 0;
    const char *servers[] = {SERVER_URI, OTHER_URI};
    for (int i = 0; i < 2; i++) {
        int fd = dial(fx, servers[i]);
        assert_true(open_channel(fx, fd, POLICY));
        size_t length;
        const uint8_t *cert = sender_certificate(&length);
        char uri[64];
        assert_int_equal(uarc_certificate_uri(cert, length, uri, sizeof uri), UARC_Good);
        assert_string_equal(uri, "urn:uarc:test-hub");
        if (i == 0) {
            first = malloc(length);
            assert_non_null(first);
            memcpy(first, cert, length);
            first_length = length;
        } else {
            assert_int_equal(length, first_length);
            assert_memory_equal(cert, first, length);
        }
        close(fd);
        run_until(fx, &fx->ev.failed, i + 1); /* the fake goes no further than the OPN */
    }
    assert_int_equal(fx->ev.discovered, 0);
    free(first);
    free_fixture(fx);
}

#define P256 "http://opcfoundation.org/UA/SecurityPolicy#ECC_nistP256"

static uint8_t *cert_b_p256;
static size_t cert_b_p256_length;

/* SERVER_URI is served over Basic256Sha256 (an RSA certificate), OTHER_URI over ECC_nistP256
 * (an EC certificate on P-256). */
static bool configure_by_key_type(void *user_data, const uarc_reverse_connection *c,
                                  uarc_client_config *cfg)
{
    (void)user_data;
    bool a = strcmp(c->server_uri, SERVER_URI) == 0;
    cfg->security_policy_uri = a ? POLICY : P256;
    cfg->server_certificate = a ? cert_a : cert_b_p256;
    cfg->server_certificate_length = a ? cert_a_length : cert_b_p256_length;
    return true;
}

/* The key type of a certificate (DER): EVP_PKEY_RSA, EVP_PKEY_EC. */
static int key_type(const uint8_t *der, size_t length)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)length);
    assert_non_null(x);
    int type = EVP_PKEY_get_base_id(X509_get0_pubkey(x));
    X509_free(x);
    return type;
}

/* RSA and ECC servers in one hub: each client presents a generated certificate of the key type
 * its policy needs (one per type, for the hub's URI), not the first one made. */
static void test_generated_certificate_per_key_type(void **state)
{
    (void)state;
    uint8_t *key;
    size_t key_length;
    assert_int_equal(uarc__crypto_make_certificate(OTHER_URI, "prime256v1", &cert_b_p256,
                                                   &cert_b_p256_length, &key, &key_length),
                     UARC_Good);
    uarc__free(key);
    fixture *fx =
        new_hub((uarc_reverse_hub_config){.client = {.security_policy_uri = POLICY,
                                                     .application_uri = "urn:uarc:test-hub",
                                                     .generate_certificate = true},
                                          .callbacks = {.configure = configure_by_key_type}});
    const char *servers[] = {SERVER_URI, OTHER_URI};
    const char *policies[] = {POLICY, P256};
    const int types[] = {EVP_PKEY_RSA, EVP_PKEY_EC};
    for (int i = 0; i < 2; i++) {
        int fd = dial(fx, servers[i]);
        assert_true(open_channel(fx, fd, policies[i]));
        size_t length;
        const uint8_t *cert = sender_certificate(&length);
        assert_int_equal(key_type(cert, length), types[i]);
        char uri[64];
        assert_int_equal(uarc_certificate_uri(cert, length, uri, sizeof uri), UARC_Good);
        assert_string_equal(uri, "urn:uarc:test-hub");
        close(fd);
        run_until(fx, &fx->ev.failed, i + 1);
    }
    free_fixture(fx);
    uarc__free(cert_b_p256);
}

/* A server that never answers its discovery's HEL holds up nobody: another server's discovery
 * completes meanwhile, long before the silent one's connect timeout (10 s). */
static void test_discovery_does_not_block(void **state)
{
    (void)state;
    fixture *fx = new_fixture(NULL, 0);
    int silent = dial(fx, OTHER_URI);
    next_message(fx, silent, "HELF"); /* and no ACK */
    int fd = dial(fx, SERVER_URI);
    assert_true(open_channel(fx, fd, NONE));
    uarc_EndpointDescription e[] = {
        endpoint(POLICY, UARC_MessageSecurityMode_SignAndEncrypt, cert_a, cert_a_length),
    };
    answer_get_endpoints(fx, fd, e, 1);
    expect_clo_and_close(fx, fd);
    run_until(fx, &fx->ev.discovered, 1);
    assert_string_equal(fx->ev.server_uri, SERVER_URI);
    assert_int_equal(fx->ev.failed, 0);
    close(fd);
    close(silent);
    free_fixture(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_matching_endpoint),
        cmocka_unit_test(test_certificate_uri_differs),
        cmocka_unit_test(test_discovered_then_secured),
        cmocka_unit_test(test_discovered_needs_a_trust_decision),
        cmocka_unit_test(test_trust_store_refuses_a_substitute),
        cmocka_unit_test(test_configured_certificate_skips_discovery),
        cmocka_unit_test(test_generated_certificate_shared),
        cmocka_unit_test(test_generated_certificate_per_key_type),
        cmocka_unit_test(test_discovery_does_not_block),
    };
    return cmocka_run_group_tests(tests, make_certificates, free_certificates);
}
