/*
 * The client's side of the EccEncryptedSecret handshake (Part 4 §7.1, §7.15): CreateSession asks
 * for the server's ephemeral key only under an ECC policy with a password to send, and an ECDHKey
 * is kept only when the server's certificate signed it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "client/client_internal.h"
#include "core/alloc.h"
#include "app_pair.h"

#define P256 "http://opcfoundation.org/UA/SecurityPolicy#ECC_nistP256"

static const uarc__security_policy *policy = &uarc__security_policy_ecc_nistp256;
static app_pair apps;

static int setup(void **state)
{
    (void)state;
    return app_pair_make(&apps, P256);
}

static int teardown(void **state)
{
    (void)state;
    app_pair_free(&apps);
    return 0;
}

/* The security context of application `self` (0 client, 1 server) facing the other. */
static void *context_of(int self)
{
    return app_pair_context(&apps, policy, self, UARC_MessageSecurityMode_SignAndEncrypt,
                            self == 1);
}

/* A response header whose AdditionalHeader carries `ephemeral` as ECDHKey. */
typedef struct ecdh_header {
    uarc_ResponseHeader header;
    uarc_AdditionalParametersType ap;
    uarc_KeyValuePair kv;
    uarc_extension_object value;
    uarc_EphemeralKeyType ephemeral;
} ecdh_header;

static void make_header_sized(ecdh_header *h, uint8_t *public_key, size_t public_key_length,
                              uint8_t *signature, size_t signature_length)
{
    memset(h, 0, sizeof *h);
    h->ephemeral.publicKey = (uarc_bytestring){public_key_length, public_key};
    h->ephemeral.signature = (uarc_bytestring){signature_length, signature};
    h->value.encoding = UARC_EXTENSION_OBJECT_DECODED;
    h->value.content.decoded.type = UARC_T(EphemeralKeyType);
    h->value.content.decoded.data = &h->ephemeral;
    h->kv.key = (uarc_qualified_name){0, {7, (uint8_t *)"ECDHKey"}};
    h->kv.value.type = UARC_T(ExtensionObject);
    h->kv.value.data = &h->value;
    h->ap = (uarc_AdditionalParametersType){.parametersSize = 1, .parameters = &h->kv};
    h->header.additionalHeader.encoding = UARC_EXTENSION_OBJECT_DECODED;
    h->header.additionalHeader.content.decoded.type = UARC_T(AdditionalParametersType);
    h->header.additionalHeader.content.decoded.data = &h->ap;
}

static void make_header(ecdh_header *h, uint8_t *public_key, uint8_t *signature)
{
    make_header_sized(h, public_key, 64, signature, 64);
}

static void test_ecdh_key_kept_only_when_signed(void **state)
{
    (void)state;
    uarc_client_config cfg = {.user_name = "alice", .password = "secret"};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    c->policy = policy;
    c->security = context_of(0);
    void *server = context_of(1);
    uint8_t public_key[64], signature[64];
    assert_int_equal(policy->new_nonce(server, public_key, sizeof public_key), UARC_Good);
    assert_int_equal(policy->asym_sign(server, public_key, sizeof public_key, signature),
                     UARC_Good);
    ecdh_header h;
    make_header(&h, public_key, signature);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 64);
    assert_memory_equal(c->server_ecdh_key.data, public_key, 64);

    /* signed by someone else (here: the client's own key), or altered: none is kept */
    assert_int_equal(policy->asym_sign(c->security, public_key, sizeof public_key, signature),
                     UARC_Good);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    assert_int_equal(policy->asym_sign(server, public_key, sizeof public_key, signature),
                     UARC_Good);
    public_key[5] ^= 1;
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    /* a response without one leaves none */
    public_key[5] ^= 1;
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 64);
    uarc_ResponseHeader plain = {0};
    uarc__client_keep_ecdh_key(c, &plain);
    assert_int_equal(c->server_ecdh_key.length, 0);

    /* and a password is then not sent */
    uarc_bytestring secret = {0, NULL};
    const char *algorithm = "unchanged";
    char why[300];
    snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%s", P256);
    assert_int_equal(
        uarc__client_encrypt_password(c, "secret", &secret, &algorithm, why, sizeof why),
        UARC_BadSecurityChecksFailed);
    assert_non_null(strstr(why, "ECDHKey"));
    assert_null(secret.data);

    policy->context_delete(server);
    policy->context_delete(c->security);
    c->security = NULL;
    c->policy = NULL;
    uarc_client_delete(c);
}

/* The password's EccEncryptedSecret with the ECDHKey kept (if any): its status and why. */
static uarc_status encrypt_for_kept_key(uarc_client *c, char *why, size_t why_size)
{
    uarc_bytestring secret = {0, NULL};
    const char *algorithm = NULL;
    why[0] = 0;
    snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%s", P256);
    uarc_status s = uarc__client_encrypt_password(c, "secret", &secret, &algorithm, why, why_size);
    assert_true((s == UARC_Good) == (secret.data != NULL));
    uarc_clear(&secret, UARC_T(ByteString));
    return s;
}

/* Malformed ephemeral keys: a key or signature of the wrong length, another name or type, a
 * signed key that is no point of the curve. None is kept, or none is used: a status, no crash. */
static void test_ecdh_key_malformed(void **state)
{
    (void)state;
    uarc_client_config cfg = {.user_name = "alice", .password = "secret"};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    c->policy = policy;
    c->security = context_of(0);
    void *server = context_of(1);
    uint8_t nonce[32] = {1};
    assert_int_equal(
        uarc_copy(&(uarc_bytestring){sizeof nonce, nonce}, &c->server_nonce, UARC_T(ByteString)),
        UARC_Good);
    uint8_t public_key[65], signature[64];
    char why[300];
    assert_int_equal(policy->new_nonce(server, public_key, 64), UARC_Good);
    public_key[64] = 0;
    ecdh_header h;

    /* a key one byte short or long, each signed as it is */
    for (size_t length = 63; length <= 65; length += 2) {
        assert_int_equal(policy->asym_sign(server, public_key, length, signature), UARC_Good);
        make_header_sized(&h, public_key, length, signature, 64);
        uarc__client_keep_ecdh_key(c, &h.header);
        assert_int_equal(c->server_ecdh_key.length, 0);
        assert_int_equal(encrypt_for_kept_key(c, why, sizeof why), UARC_BadSecurityChecksFailed);
        assert_non_null(strstr(why, "ECDHKey"));
    }
    /* a signature one byte short; an empty key and signature */
    assert_int_equal(policy->asym_sign(server, public_key, 64, signature), UARC_Good);
    make_header_sized(&h, public_key, 64, signature, 63);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    make_header_sized(&h, NULL, 0, NULL, 0);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);

    /* the right key under another name, as an array, or of another type: not taken */
    make_header(&h, public_key, signature);
    h.kv.key.name = (uarc_string){7, (uint8_t *)"ECDHkey"};
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    make_header(&h, public_key, signature);
    h.kv.key.namespace_index = 1;
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    make_header(&h, public_key, signature);
    h.kv.value.is_array = true;
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    make_header(&h, public_key, signature);
    h.value.content.decoded.type = UARC_T(SignatureData);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);
    make_header(&h, public_key, signature);
    h.kv.value.data = NULL;
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 0);

    /* signed by the server but no point of P-256 (x = 0, y = 1): kept, and then refused when the
     * secret is made, with a status and no password */
    memset(public_key, 0, 64);
    public_key[63] = 1;
    assert_int_equal(policy->asym_sign(server, public_key, 64, signature), UARC_Good);
    make_header(&h, public_key, signature);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 64);
    uarc_status s = encrypt_for_kept_key(c, why, sizeof why);
    assert_int_not_equal(s, UARC_Good);
    assert_true(uarc_status_is_bad(s));
    assert_non_null(strstr(why, "EccEncryptedSecret"));

    /* and a well-formed, signed key after all that works */
    assert_int_equal(policy->new_nonce(server, public_key, 64), UARC_Good);
    assert_int_equal(policy->asym_sign(server, public_key, 64, signature), UARC_Good);
    make_header(&h, public_key, signature);
    uarc__client_keep_ecdh_key(c, &h.header);
    assert_int_equal(c->server_ecdh_key.length, 64);
    assert_int_equal(encrypt_for_kept_key(c, why, sizeof why), UARC_Good);

    policy->context_delete(server);
    policy->context_delete(c->security);
    c->security = NULL;
    c->policy = NULL;
    uarc_client_delete(c);
}

static void test_ecdh_key_requested_for_passwords_only(void **state)
{
    (void)state;
    uarc_client_config cfg = {.user_name = "alice", .password = "secret"};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    uarc_RequestHeader h = {0};
    uarc__ecdh_request ecdh;
    uarc__client_request_ecdh_key(c, &h, &ecdh); /* None: nothing */
    assert_int_equal(h.additionalHeader.encoding, UARC_EXTENSION_OBJECT_EMPTY);
    c->policy = &uarc__security_policy_basic256sha256;
    uarc__client_request_ecdh_key(c, &h, &ecdh); /* RSA: nothing */
    assert_int_equal(h.additionalHeader.encoding, UARC_EXTENSION_OBJECT_EMPTY);
    c->policy = policy;
    uarc__client_request_ecdh_key(c, &h, &ecdh);
    assert_int_equal(h.additionalHeader.encoding, UARC_EXTENSION_OBJECT_DECODED);
    assert_ptr_equal(h.additionalHeader.content.decoded.type, UARC_T(AdditionalParametersType));
    assert_int_equal(ecdh.parameters.parametersSize, 1);
    assert_true(uarc_string_equal_cstr(&ecdh.policy.key.name, "ECDHPolicyUri"));
    assert_ptr_equal(ecdh.policy.value.type, UARC_T(String));
    assert_true(uarc_string_equal_cstr(ecdh.policy.value.data, P256));
    /* it encodes */
    uint8_t buffer[256];
    size_t length = 0;
    assert_int_equal(uarc_encode(&h, UARC_T(RequestHeader), buffer, sizeof buffer, &length),
                     UARC_Good);
    c->policy = NULL;
    uarc_client_delete(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdh_key_kept_only_when_signed),
        cmocka_unit_test(test_ecdh_key_malformed),
        cmocka_unit_test(test_ecdh_key_requested_for_passwords_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
