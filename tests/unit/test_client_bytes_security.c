/*
 * The session's security checks, with the client in byte mode and the test as the server
 * (byte_peer.h): the fake server plays a machine in the middle for the key a password is
 * encrypted for, the server nonce, and serverEndpoints against the discovery result; and the X509
 * user identity token with its signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fake_server.h"
#include "byte_peer.h"
#include "uarc/uarc.h"

#define REQUEST_TIMEOUT_MS 2000u
#define NONE_URI           "http://opcfoundation.org/UA/SecurityPolicy#None"
#define B256_URI           "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
#define USER               "operator"
#define PASSWORD           "s3cret-Pa55word"

/* Through HEL and OPN (SecurityPolicy None) to the CreateSession request: its RequestId. */
static uint32_t start_session(byte_peer *p)
{
    peer_open_channel(p);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_CREATING_SESSION);
    return peer_pop_request(p, UARC_T(CreateSessionRequest), NULL);
}

/* ---- the session's security checks ---- */

/* Two server certificates for urn:fake:server: the real one and a substitute (another key). */
static uint8_t *cert_real, *cert_other;
static size_t cert_real_length, cert_other_length;

static int make_certificates(void **state)
{
    (void)state;
    uint8_t *key;
    size_t key_length;
    if (uarc_certificate_generate("urn:fake:server", &cert_real, &cert_real_length, &key,
                                  &key_length) != UARC_Good)
        return -1;
    uarc_free(key);
    if (uarc_certificate_generate("urn:fake:server", &cert_other, &cert_other_length, &key,
                                  &key_length) != UARC_Good)
        return -1;
    uarc_free(key);
    return 0;
}

static int free_certificates(void **state)
{
    (void)state;
    uarc_free(cert_real);
    uarc_free(cert_other);
    return 0;
}

/* An endpoint of `policy` and `mode` with `cert` (NULL: none) and, for mode None, a UserName
 * token policy whose passwords are encrypted with Basic256Sha256. */
static uarc_EndpointDescription endpoint(const char *policy, uarc_MessageSecurityMode mode,
                                         const uint8_t *cert, size_t cert_length)
{
    static uarc_UserTokenPolicy tokens[] = {{
        .policyId = {8, (uint8_t *)"username"},
        .tokenType = UARC_UserTokenType_UserName,
        .securityPolicyUri = {sizeof B256_URI - 1, (uint8_t *)B256_URI},
    }};
    uarc_EndpointDescription e;
    uarc_init(&e, UARC_T(EndpointDescription));
    e.endpointUrl = (uarc_string){strlen(PEER_URL), (uint8_t *)PEER_URL};
    e.securityPolicyUri = (uarc_string){strlen(policy), (uint8_t *)policy};
    e.securityMode = mode;
    e.serverCertificate = (uarc_bytestring){cert ? cert_length : 0, (uint8_t *)cert};
    if (mode == UARC_MessageSecurityMode_None) {
        e.userIdentityTokensSize = 1;
        e.userIdentityTokens = tokens;
    }
    return e;
}

/* Answers CreateSession as a server with `cert` (NULL: none), a nonce of `nonce_length` bytes
 * and `endpoints` (NULL: one None endpoint with `cert` and the UserName policy above). Returns
 * what the client's processing returned. */
static uarc_status answer_create_session(byte_peer *p, uint32_t request_id, const uint8_t *cert,
                                         size_t cert_length, size_t nonce_length,
                                         uarc_EndpointDescription *endpoints, size_t count)
{
    static uint8_t nonce[64];
    memset(nonce, 0xA5, sizeof nonce);
    uarc_EndpointDescription none =
        endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert, cert_length);
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = 60000;
    cs.serverCertificate = (uarc_bytestring){cert ? cert_length : 0, (uint8_t *)cert};
    cs.serverNonce = (uarc_bytestring){nonce_length, nonce_length ? nonce : NULL};
    cs.serverEndpointsSize = endpoints ? count : 1;
    cs.serverEndpoints = endpoints ? endpoints : &none;
    fake_frame f;
    frame_msg_response(&f, PEER_CHANNEL_ID, PEER_TOKEN_ID, p->sequence++, request_id, &cs,
                       UARC_T(CreateSessionResponse));
    return peer_feed(p, &f);
}

/* A client logging in as USER with PASSWORD; `cfg` adds the trust settings. */
static void new_user_peer(byte_peer *p, uarc_client_config cfg)
{
    cfg.user_name = USER;
    cfg.password = PASSWORD;
    peer_new(p, &cfg);
}

/* The connect ended at ActivateSession with `status` before any ActivateSession went out, and
 * not one byte of what the client sent after CreateSession holds the password. */
static void expect_refused_at_activate(byte_peer *p, uarc_status returned, uarc_status status,
                                       const char *reason)
{
    assert_int_equal(returned, status);
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_DISCONNECTED);
    const char *error = uarc_client_error(p->client);
    assert_non_null(strstr(error, "ActivateSession: "));
    assert_non_null(strstr(error, uarc_status_name(status)));
    if (!strstr(error, reason))
        fail_msg("\"%s\" does not say \"%s\"", error, reason);
    peer_pull(p);
    assert_null(memmem(p->out, p->out_length, PASSWORD, strlen(PASSWORD)));
    /* all that may follow is the CLO of the teardown */
    assert_true(p->out_length == 0 || memcmp(p->out, "CLOF", 4) == 0);
}

/* Issue 14, finding 1: on a None channel a machine in the middle answers CreateSession with its
 * own certificate and a token policy naming Basic256Sha256. Nothing vouches for that key (no
 * trust list, pin, store or accept-any), so the password is not encrypted for it. */
static void test_password_not_encrypted_for_an_unverified_key(void **state)
{
    (void)state;
    size_t nonces[] = {0, 32};
    for (size_t i = 0; i < 2; i++) {
        byte_peer p;
        new_user_peer(&p, (uarc_client_config){0});
        uint32_t id = start_session(&p);
        uarc_status s =
            answer_create_session(&p, id, cert_other, cert_other_length, nonces[i], NULL, 0);
        expect_refused_at_activate(&p, s, UARC_BadSecurityChecksFailed, "not trusted");
        assert_non_null(strstr(uarc_client_error(p.client), "trust_store_dir"));
        uarc_client_delete(p.client);
    }
}

/* A trusted (pinned) key with no nonce or a short one: an encrypted password could be replayed. */
static void test_password_needs_a_long_nonce(void **state)
{
    (void)state;
    size_t nonces[] = {0, 16, 31};
    for (size_t i = 0; i < 3; i++) {
        byte_peer p;
        new_user_peer(&p, (uarc_client_config){.server_certificate = cert_real,
                                               .server_certificate_length = cert_real_length});
        uint32_t id = start_session(&p);
        uarc_status s =
            answer_create_session(&p, id, cert_real, cert_real_length, nonces[i], NULL, 0);
        expect_refused_at_activate(&p, s, UARC_BadNonceInvalid, "fewer than 32");
        uarc_client_delete(p.client);
    }
}

/* The pin is the endpoint's certificate: another one in CreateSession is refused. */
static void test_password_only_for_the_pinned_key(void **state)
{
    (void)state;
    byte_peer p;
    new_user_peer(&p, (uarc_client_config){.server_certificate = cert_real,
                                           .server_certificate_length = cert_real_length});
    uint32_t id = start_session(&p);
    uarc_status s = answer_create_session(&p, id, cert_other, cert_other_length, 32, NULL, 0);
    expect_refused_at_activate(&p, s, UARC_BadSecurityChecksFailed, "not the pinned certificate");
    uarc_client_delete(p.client);
}

/* Pops the ActivateSession request and answers it with a nonce of `nonce_length` bytes; checks
 * that the password went out encrypted. */
static void answer_activate(byte_peer *p, size_t nonce_length)
{
    peer_pull(p);
    assert_null(memmem(p->out, p->out_length, PASSWORD, strlen(PASSWORD)));
    uint32_t id = peer_pop_request(p, UARC_T(ActivateSessionRequest), NULL);
    static uint8_t nonce[32];
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    as.serverNonce = (uarc_bytestring){nonce_length, nonce_length ? nonce : NULL};
    peer_reply(p, id, &as, UARC_T(ActivateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_SESSION_ACTIVE);
}

/* The pin as a file (server_certificate_file, `uarc --server-certificate`) vouches on a None
 * channel as the pin in memory does: the password goes out, encrypted for it. */
static void test_password_for_a_pinned_key_file(void **state)
{
    (void)state;
    char path[] = "/tmp/uarc-pin-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, cert_real, cert_real_length), (ssize_t)cert_real_length);
    close(fd);
    byte_peer p;
    new_user_peer(&p, (uarc_client_config){.server_certificate_file = path});
    uint32_t id = start_session(&p);
    uarc_status s = answer_create_session(&p, id, cert_real, cert_real_length, 32, NULL, 0);
    assert_int_equal(s, UARC_Good);
    answer_activate(&p, 32);
    uarc_client_delete(p.client);
    unlink(path);
}

/* accept_untrusted_server_certificate is an explicit choice: the password goes out encrypted.
 * The ActivateSession response brings no nonce; re-activating the session after the connection
 * dropped must not reuse the previous nonce, which the server has seen used. */
static void test_nonce_of_activate_session_replaces_the_previous(void **state)
{
    (void)state;
    byte_peer p;
    new_user_peer(&p, (uarc_client_config){.accept_untrusted_server_certificate = true});
    uint32_t id = start_session(&p);
    assert_int_equal(answer_create_session(&p, id, cert_other, cert_other_length, 32, NULL, 0),
                     UARC_Good);
    answer_activate(&p, 0);
    assert_int_equal(uarc_client_transport_closed(p.client, UARC_Good), UARC_BadConnectionClosed);
    p.out_length = 0;

    assert_int_equal(uarc_client_start_bytes(p.client, PEER_URL, p.now), UARC_Good);
    peer_pop(&p, "HELF");
    fake_frame f;
    frame_ack(&f);
    assert_int_equal(peer_feed(&p, &f), UARC_Good);
    uarc_status s = peer_answer_opn(&p); /* the resume's ActivateSession would follow at once */
    expect_refused_at_activate(&p, s, UARC_BadNonceInvalid, "fewer than 32");
    uarc_client_delete(p.client);
}

/* Trust on first use on a None channel: the first certificate seen for the endpoint URL is
 * recorded; a client that later meets a substitute refuses to encrypt the password for it. */
static void test_trust_store_refuses_a_substituted_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/uarc-client-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uarc_client_config cfg = {.trust_store_dir = dir};
    byte_peer p;
    new_user_peer(&p, cfg);
    uint32_t id = start_session(&p);
    assert_int_equal(answer_create_session(&p, id, cert_real, cert_real_length, 32, NULL, 0),
                     UARC_Good);
    answer_activate(&p, 32);
    uarc_client_delete(p.client);

    new_user_peer(&p, cfg);
    id = start_session(&p);
    uarc_status s = answer_create_session(&p, id, cert_other, cert_other_length, 32, NULL, 0);
    expect_refused_at_activate(&p, s, UARC_BadSecurityChecksFailed,
                               "not the one recorded on first use");
    assert_non_null(strstr(uarc_client_error(p.client), dir));
    uarc_client_delete(p.client);

    new_user_peer(&p, cfg); /* the recorded one is still trusted */
    id = start_session(&p);
    assert_int_equal(answer_create_session(&p, id, cert_real, cert_real_length, 32, NULL, 0),
                     UARC_Good);
    answer_activate(&p, 32);
    uarc_client_delete(p.client);

    char command[128];
    snprintf(command, sizeof command, "rm -r %s", dir);
    assert_int_equal(system(command), 0);
}

/* Issue 14, finding 4: serverEndpoints against the endpoints GetEndpoints gave (Part 4 §5.6.2). */
static void test_server_endpoints_must_match_discovery(void **state)
{
    (void)state;
    uarc_EndpointDescription discovered[] = {
        endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length),
        endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, cert_real, cert_real_length),
    };
    struct {
        uarc_EndpointDescription session[3];
        size_t count;
        const char *reason;
    } cases[] = {
        /* the secured endpoint hidden from GetEndpoints' reader: a downgrade */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length)},
         1,
         "Basic256Sha256 in mode SignAndEncrypt with that certificate: GetEndpoints offered it"},
        /* another certificate */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length),
          endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, cert_other,
                   cert_other_length)},
         2,
         "GetEndpoints offered it"},
        /* one more endpoint than GetEndpoints gave */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, cert_real, cert_real_length),
          endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, cert_real, cert_real_length),
          endpoint(B256_URI, UARC_MessageSecurityMode_Sign, cert_real, cert_real_length)},
         3,
         "Basic256Sha256 in mode Sign with that certificate: CreateSession's serverEndpoints "
         "offer it"},
        /* the same, certificates left out as Part 4 allows: accepted */
        {{endpoint(NONE_URI, UARC_MessageSecurityMode_None, NULL, 0),
          endpoint(B256_URI, UARC_MessageSecurityMode_SignAndEncrypt, NULL, 0)},
         2,
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        byte_peer p;
        peer_new(&p, &(uarc_client_config){0});
        assert_int_equal(uarc_client_set_endpoints(p.client, discovered, 2), UARC_Good);
        uint32_t id = start_session(&p);
        uarc_status s = answer_create_session(&p, id, cert_real, cert_real_length, 32,
                                              cases[i].session, cases[i].count);
        if (!cases[i].reason) {
            assert_int_equal(s, UARC_Good);
            assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_ACTIVATING_SESSION);
        } else {
            assert_int_equal(s, UARC_BadSecurityChecksFailed);
            const char *error = uarc_client_error(p.client);
            assert_non_null(strstr(error, "CreateSession: BadSecurityChecksFailed: "));
            if (!strstr(error, cases[i].reason))
                fail_msg("\"%s\" does not say \"%s\"", error, cases[i].reason);
            peer_pull(&p);
            assert_null(memmem(p.out, p.out_length, "\x01\x00\xd3\x01", 4)); /* i=467 */
        }
        uarc_client_delete(p.client);
    }
}

/* ---- X509 user identity -------------------------------------------------------------------- */

#define RSA_SHA256_URI "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define RSA_PSS_URI    "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"
#define POLICY_URI(n)  "http://opcfoundation.org/UA/SecurityPolicy#" n

/* The user's certificate and key, and what the fake server sends in CreateSession. */
typedef struct x509_fixture {
    uint8_t *user_cert, *user_key, *server_cert, *server_key;
    size_t user_cert_length, user_key_length, server_cert_length, server_key_length;
    uint8_t server_nonce[32];
} x509_fixture;

static void x509_fixture_init(x509_fixture *x)
{
    memset(x, 0, sizeof *x);
    assert_int_equal(uarc_certificate_generate("urn:user:alice", &x->user_cert,
                                               &x->user_cert_length, &x->user_key,
                                               &x->user_key_length),
                     UARC_Good);
    assert_int_equal(uarc_certificate_generate("urn:fake:server", &x->server_cert,
                                               &x->server_cert_length, &x->server_key,
                                               &x->server_key_length),
                     UARC_Good);
    for (size_t i = 0; i < sizeof x->server_nonce; i++)
        x->server_nonce[i] = (uint8_t)(0xA0 + i);
}

static void x509_fixture_clear(x509_fixture *x)
{
    uarc_free(x->user_cert);
    uarc_free(x->user_key);
    uarc_free(x->server_cert);
    uarc_free(x->server_key);
}

/*
 * A client with the X509 identity of `x` on a None channel; the fake server's CreateSession
 * offers one Certificate token policy "x509" naming `token_policy_uri` (NULL: none). *out gets
 * the ActivateSessionRequest the client sent (heap-owned: uarc_clear it).
 */
/* A borrowed view of a C string (the values below are stack values, never cleared). */
static uarc_string text(const char *s)
{
    return (uarc_string){strlen(s), (uint8_t *)(uintptr_t)s};
}

static void activate_x509(byte_peer *p, const x509_fixture *x, const char *token_policy_uri,
                          uarc_ActivateSessionRequest *out)
{
    uarc_client_config cfg = {.request_timeout_ms = REQUEST_TIMEOUT_MS,
                              .user_certificate = x->user_cert,
                              .user_certificate_length = x->user_cert_length,
                              .user_private_key = x->user_key,
                              .user_private_key_length = x->user_key_length};
    peer_new(p, &cfg);
    uint32_t create_id = start_session(p);
    uarc_UserTokenPolicy token = {.policyId = text("x509"),
                                  .tokenType = UARC_UserTokenType_Certificate};
    if (token_policy_uri)
        token.securityPolicyUri = text(token_policy_uri);
    uarc_EndpointDescription endpoint;
    uarc_init(&endpoint, UARC_T(EndpointDescription));
    endpoint.securityPolicyUri = text(POLICY_URI("None"));
    endpoint.securityMode = UARC_MessageSecurityMode_None;
    endpoint.userIdentityTokensSize = 1;
    endpoint.userIdentityTokens = &token;
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = 60000;
    cs.serverCertificate = (uarc_bytestring){x->server_cert_length, x->server_cert};
    cs.serverNonce = (uarc_bytestring){sizeof x->server_nonce, (uint8_t *)x->server_nonce};
    cs.serverEndpointsSize = 1;
    cs.serverEndpoints = &endpoint;
    peer_reply(p, create_id, &cs, UARC_T(CreateSessionResponse));
    assert_int_equal(uarc_client_state_get(p->client), UARC_CLIENT_ACTIVATING_SESSION);

    peer_pop_request(p, UARC_T(ActivateSessionRequest), out);
}

/* True when `signature` verifies over serverCertificate + serverNonce with the user's public
 * key, by RSA-SHA256 PKCS#1 v1.5 or, with `pss`, RSA-PSS-SHA256. */
static bool user_signature_verifies(const x509_fixture *x, const uarc_bytestring *signature,
                                    bool pss)
{
    const unsigned char *p = x->user_cert;
    X509 *cert = d2i_X509(NULL, &p, (long)x->user_cert_length);
    EVP_PKEY *key = cert ? X509_get_pubkey(cert) : NULL;
    uint8_t data[4096];
    assert_true(x->server_cert_length + sizeof x->server_nonce <= sizeof data);
    memcpy(data, x->server_cert, x->server_cert_length);
    memcpy(data + x->server_cert_length, x->server_nonce, sizeof x->server_nonce);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok =
        key && md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(pctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) > 0 &&
        (!pss || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) > 0) &&
        EVP_DigestVerify(md, signature->data, signature->length, data,
                         x->server_cert_length + sizeof x->server_nonce) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    X509_free(cert);
    return ok;
}

static const uarc_X509IdentityToken *x509_token(const uarc_ActivateSessionRequest *req)
{
    assert_int_equal(req->userIdentityToken.encoding, UARC_EXTENSION_OBJECT_DECODED);
    assert_ptr_equal(req->userIdentityToken.content.decoded.type, UARC_T(X509IdentityToken));
    return req->userIdentityToken.content.decoded.data;
}

/* The token carries the user's certificate and the server's policy id; the signature is the
 * token policy's algorithm over the server's certificate and nonce, with the user's key. */
static void test_x509_identity_signed_per_token_policy(void **state)
{
    (void)state;
    static const struct {
        const char *policy, *algorithm;
        bool pss;
    } cases[] = {
        {POLICY_URI("Basic256Sha256"), RSA_SHA256_URI, false},
        {POLICY_URI("Aes128_Sha256_RsaOaep"), RSA_SHA256_URI, false},
        {POLICY_URI("Aes256_Sha256_RsaPss"), RSA_PSS_URI, true},
    };
    x509_fixture x;
    x509_fixture_init(&x);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        byte_peer p;
        uarc_ActivateSessionRequest req;
        activate_x509(&p, &x, cases[i].policy, &req);
        const uarc_X509IdentityToken *t = x509_token(&req);
        assert_true(uarc_string_equal_cstr(&t->policyId, "x509"));
        assert_int_equal(t->certificateData.length, x.user_cert_length);
        assert_memory_equal(t->certificateData.data, x.user_cert, x.user_cert_length);
        assert_true(uarc_string_equal_cstr(&req.userTokenSignature.algorithm, cases[i].algorithm));
        assert_int_equal(req.userTokenSignature.signature.length, 256); /* RSA-2048 */
        assert_true(user_signature_verifies(&x, &req.userTokenSignature.signature, cases[i].pss));
        /* not the application's signature: a None channel has none */
        assert_int_equal(req.clientSignature.signature.length, 0);
        uarc_clear(&req, UARC_T(ActivateSessionRequest));
        uarc_client_delete(p.client);
    }
    x509_fixture_clear(&x);
}

/* A serverCertificate that is a chain (the server's certificate, then an issuer): the signature
 * covers only the first certificate and the nonce (Part 4 §5.6.3.2; node-opcua refuses any
 * other). */
static void test_x509_identity_signs_the_leaf_of_a_chain(void **state)
{
    (void)state;
    x509_fixture x;
    x509_fixture_init(&x);
    static uint8_t chain[8192];
    assert_true(x.server_cert_length + x.user_cert_length <= sizeof chain);
    memcpy(chain, x.server_cert, x.server_cert_length);
    memcpy(chain + x.server_cert_length, x.user_cert, x.user_cert_length);
    x509_fixture chained = x;
    chained.server_cert = chain;
    chained.server_cert_length = x.server_cert_length + x.user_cert_length;
    byte_peer p;
    uarc_ActivateSessionRequest req;
    activate_x509(&p, &chained, POLICY_URI("Basic256Sha256"), &req);
    assert_true(user_signature_verifies(&x, &req.userTokenSignature.signature, false));
    uarc_clear(&req, UARC_T(ActivateSessionRequest));
    uarc_client_delete(p.client);
    x509_fixture_clear(&x);
}

/* A token policy that names no SecurityPolicy on a None channel: nothing to sign with, so the
 * token goes unsigned (the server decides). */
static void test_x509_identity_unsigned_without_token_policy(void **state)
{
    (void)state;
    x509_fixture x;
    x509_fixture_init(&x);
    byte_peer p;
    uarc_ActivateSessionRequest req;
    activate_x509(&p, &x, NULL, &req);
    assert_int_equal(x509_token(&req)->certificateData.length, x.user_cert_length);
    assert_int_equal(req.userTokenSignature.signature.length, 0);
    assert_int_equal(req.userTokenSignature.algorithm.length, 0);
    uarc_clear(&req, UARC_T(ActivateSessionRequest));
    uarc_client_delete(p.client);
    x509_fixture_clear(&x);
}

/* Configuration errors stop the connect before a byte is queued. */
static void test_x509_identity_configuration_errors(void **state)
{
    (void)state;
    x509_fixture x;
    x509_fixture_init(&x);
    uarc_client_config no_key = {.user_certificate = x.user_cert,
                                 .user_certificate_length = x.user_cert_length};
    uarc_client_config both = {.user_name = "alice",
                               .user_certificate = x.user_cert,
                               .user_certificate_length = x.user_cert_length,
                               .user_private_key = x.user_key,
                               .user_private_key_length = x.user_key_length};
    uarc_client_config missing = {.user_certificate_file = "/nonexistent/user.pem",
                                  .user_private_key_file = "/nonexistent/user.key"};
    const uarc_client_config *configs[] = {&no_key, &both, &missing};
    const uarc_status expected[] = {UARC_BadInvalidArgument, UARC_BadInvalidArgument,
                                    UARC_BadNotFound};
    for (size_t i = 0; i < 3; i++) {
        uarc_client *c = uarc_client_new(configs[i]);
        assert_non_null(c);
        assert_int_equal(uarc_client_start_bytes(c, PEER_URL, PEER_START_MS), expected[i]);
        assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
        assert_true(strncmp(uarc_client_error(c), "connect: ", 9) == 0);
        const uint8_t *data;
        assert_int_equal(uarc_client_output_bytes(c, &data), 0);
        uarc_client_delete(c);
    }
    x509_fixture_clear(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x509_identity_signed_per_token_policy),
        cmocka_unit_test(test_x509_identity_signs_the_leaf_of_a_chain),
        cmocka_unit_test(test_x509_identity_unsigned_without_token_policy),
        cmocka_unit_test(test_x509_identity_configuration_errors),
        cmocka_unit_test(test_password_not_encrypted_for_an_unverified_key),
        cmocka_unit_test(test_password_needs_a_long_nonce),
        cmocka_unit_test(test_password_only_for_the_pinned_key),
        cmocka_unit_test(test_password_for_a_pinned_key_file),
        cmocka_unit_test(test_nonce_of_activate_session_replaces_the_previous),
        cmocka_unit_test(test_trust_store_refuses_a_substituted_key),
        cmocka_unit_test(test_server_endpoints_must_match_discovery),
    };
    return cmocka_run_group_tests(tests, make_certificates, free_certificates);
}
