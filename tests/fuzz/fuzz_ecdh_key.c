/*
 * libFuzzer target for the server's ephemeral key in a CreateSession/ActivateSession response
 * (Part 4 §7.15, the ECDHKey of the AdditionalHeader), as an ECC_nistP256 client with a password
 * reads it: the rest of the input after the first byte is a binary ResponseHeader. A header that
 * decodes goes to uarc__client_keep_ecdh_key(); a key kept is then used for the EccEncryptedSecret
 * of a password (Part 4 §7.40.2.5), which must succeed or fail with a status, never crash.
 * Bit 0 of the first byte: before the check, the harness signs whatever ECDHKey publicKey was
 * decoded with the server's key (fixed test keys, fuzz_ecc_keys.h), so that keys of any length
 * and points off the curve get past the signature and into the key agreement.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "core/alloc.h"
#include "fuzz_ecc_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define P256 "http://opcfoundation.org/UA/SecurityPolicy#ECC_nistP256"

static const uarc__security_policy *policy = &uarc__security_policy_ecc_nistp256;
static void *client_context, *server_context;

static void *context_of(bool server)
{
    uarc__security_config config = {
        UARC_MessageSecurityMode_SignAndEncrypt,
        {server ? fuzz_server_p256_cert : fuzz_client_p256_cert,
         server ? sizeof fuzz_server_p256_cert : sizeof fuzz_client_p256_cert},
        {server ? fuzz_server_p256_key : fuzz_client_p256_key,
         server ? sizeof fuzz_server_p256_key : sizeof fuzz_client_p256_key},
        {server ? fuzz_client_p256_cert : fuzz_server_p256_cert,
         server ? sizeof fuzz_client_p256_cert : sizeof fuzz_server_p256_cert},
        server};
    void *context = NULL;
    if (policy->context_new(&config, &context) != UARC_Good)
        abort();
    return context;
}

/* Replaces the signature of every ECDHKey with the server's over its publicKey (heap, as the
 * decoder's, for uarc_clear). */
static void sign_keys(uarc_ResponseHeader *h, size_t signature_size)
{
    const uarc_extension_object *eo = &h->additionalHeader;
    if (eo->encoding != UARC_EXTENSION_OBJECT_DECODED ||
        eo->content.decoded.type != UARC_T(AdditionalParametersType))
        return;
    const uarc_AdditionalParametersType *ap = eo->content.decoded.data;
    for (size_t i = 0; i < ap->parametersSize; i++) {
        const uarc_KeyValuePair *kv = &ap->parameters[i];
        const uarc_extension_object *value = kv->value.data;
        if (kv->value.type != UARC_T(ExtensionObject) || kv->value.is_array || !value ||
            value->encoding != UARC_EXTENSION_OBJECT_DECODED ||
            value->content.decoded.type != UARC_T(EphemeralKeyType))
            continue;
        uarc_EphemeralKeyType *key = value->content.decoded.data;
        uint8_t *signature = uarc__malloc(signature_size);
        if (!signature || policy->asym_sign(server_context, key->publicKey.data,
                                            key->publicKey.length, signature) != UARC_Good)
            abort();
        uarc_clear(&key->signature, UARC_T(ByteString));
        key->signature = (uarc_bytestring){signature_size, signature};
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!client_context) {
        client_context = context_of(false);
        server_context = context_of(true);
    }
    uarc_decode_config o = {.max_string_length = 1 << 12,
                            .max_array_length = 64,
                            .max_depth = 16,
                            .max_alloc = 1 << 20};
    uarc_ResponseHeader h;
    size_t pos = 1;
    if (uarc_decode(data, size, &pos, &h, UARC_T(ResponseHeader), &o) != UARC_Good)
        return 0;
    uarc__chunk_layout layout;
    policy->asym_layout(server_context, false, &layout);
    if (data[0] & 1)
        sign_keys(&h, layout.signature_size);

    uarc_client_config cfg = {.user_name = "alice", .password = "secret"};
    uarc_client *c = uarc_client_new(&cfg);
    if (!c)
        abort();
    c->policy = policy;
    c->security = client_context;
    static const uint8_t nonce[32] = {1, 2, 3};
    c->server_nonce = (uarc_bytestring){sizeof nonce, uarc__malloc(sizeof nonce)};
    if (!c->server_nonce.data)
        abort();
    memcpy(c->server_nonce.data, nonce, sizeof nonce);
    uarc__client_keep_ecdh_key(c, &h);
    if (c->server_ecdh_key.length && c->server_ecdh_key.length != policy->nonce_length)
        abort(); /* only a key of the curve's size is ever kept */
    uarc_bytestring secret = {0, NULL};
    const char *algorithm = NULL;
    char why[300] = "";
    snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%s", P256);
    uarc_status s =
        uarc__client_encrypt_password(c, "secret", &secret, &algorithm, why, sizeof why);
    if ((s == UARC_Good) != (secret.data != NULL) || (s != UARC_Good && !why[0]))
        abort();
    uarc_clear(&secret, UARC_T(ByteString));
    c->security = NULL; /* kept for the next input */
    c->policy = NULL;
    uarc_client_delete(c);
    uarc_clear(&h, UARC_T(ResponseHeader));
    return 0;
}
