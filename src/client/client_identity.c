/* The session's proofs: the server's signature over our certificate and nonce, ours over its
 * certificate and nonce, the server nonce and ECDH key they use, and the user identity token (the
 * server's token policy chosen, the password encrypted, the X509 token signed). */
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/log.h"

/* The nonce of an ActivateSession response signs the next activation and goes into the next
 * encrypted password. A response without one leaves none (never the previous nonce, which the
 * server has seen used already), so a password cannot be encrypted for that activation. */
void uarc__client_keep_server_nonce(uarc_client *c, const uarc_ActivateSessionResponse *r)
{
    uarc_bytestring copy = {0, NULL};
    if (r && uarc_copy(&r->serverNonce, &copy, UARC_T(ByteString)) != UARC_Good)
        copy = (uarc_bytestring){0, NULL};
    uarc_clear(&c->server_nonce, UARC_T(ByteString));
    c->server_nonce = copy;
    static const uarc_ResponseHeader none;
    uarc__client_keep_ecdh_key(c, r ? &r->responseHeader : &none);
}

/* Under an ECC policy a password goes as an EccEncryptedSecret, for which the server hands out an
 * ephemeral key when CreateSession asks with "ECDHPolicyUri" in its AdditionalHeader (Part 4
 * §7.1, §7.15). Asked only when a password will be sent. */
void uarc__client_request_ecdh_key(const uarc_client *c, uarc_RequestHeader *h,
                                   uarc__ecdh_request *storage)
{
    if (!c->policy || !c->policy->certificate_curve || !c->cfg.user_name)
        return;
    storage->policy_uri = (uarc_string){strlen(c->policy->uri), (uint8_t *)c->policy->uri};
    storage->policy = (uarc_KeyValuePair){.key = {0, {13, (uint8_t *)"ECDHPolicyUri"}}};
    storage->policy.value.type = UARC_T(String);
    storage->policy.value.data = &storage->policy_uri;
    storage->parameters =
        (uarc_AdditionalParametersType){.parametersSize = 1, .parameters = &storage->policy};
    h->additionalHeader.encoding = UARC_EXTENSION_OBJECT_DECODED;
    h->additionalHeader.content.decoded.type = UARC_T(AdditionalParametersType);
    h->additionalHeader.content.decoded.data = &storage->parameters;
}

/* Keeps the ECDHKey of a response's AdditionalHeader when the server's certificate signed it
 * (Part 4 §7.15); a response without one (or with a bad signature) leaves none. */
void uarc__client_keep_ecdh_key(uarc_client *c, const uarc_ResponseHeader *h)
{
    uarc_clear(&c->server_ecdh_key, UARC_T(ByteString));
    const uarc_extension_object *eo = &h->additionalHeader;
    if (!c->policy || !c->policy->certificate_curve ||
        eo->encoding != UARC_EXTENSION_OBJECT_DECODED ||
        eo->content.decoded.type != UARC_T(AdditionalParametersType))
        return;
    const uarc_AdditionalParametersType *ap = eo->content.decoded.data;
    for (size_t i = 0; i < ap->parametersSize; i++) {
        const uarc_KeyValuePair *kv = &ap->parameters[i];
        const uarc_extension_object *value = kv->value.data;
        if (kv->key.namespace_index != 0 || !uarc_string_equal_cstr(&kv->key.name, "ECDHKey") ||
            kv->value.type != UARC_T(ExtensionObject) || kv->value.is_array || !value ||
            value->encoding != UARC_EXTENSION_OBJECT_DECODED ||
            value->content.decoded.type != UARC_T(EphemeralKeyType))
            continue;
        const uarc_EphemeralKeyType *key = value->content.decoded.data;
        uarc__chunk_layout layout;
        c->policy->asym_layout(c->security, false, &layout);
        if (key->publicKey.length != c->policy->nonce_length ||
            key->signature.length != layout.signature_size ||
            c->policy->asym_verify(c->security, key->publicKey.data, key->publicKey.length,
                                   key->signature.data) != UARC_Good) {
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "client",
                      "the server's ECDHKey is not signed by its certificate; ignored");
            return;
        }
        if (uarc_copy(&key->publicKey, &c->server_ecdh_key, UARC_T(ByteString)) != UARC_Good)
            c->server_ecdh_key = (uarc_bytestring){0, NULL};
        return;
    }
}

/* On a secured channel: the session's server certificate is the channel's, and its signature
 * over our certificate and nonce verifies (Part 4 §5.6.2). Fails the connect otherwise. */
uarc_status uarc__client_check_server_signature(uarc_client *c, const uarc_CreateSessionResponse *r)
{
    if (!c->policy)
        return UARC_Good;
    const char *why = NULL;
    uarc_status status = UARC_BadApplicationSignatureInvalid;
    uarc__chunk_layout layout;
    c->policy->asym_layout(c->security, false, &layout);
    size_t first =
        r->serverCertificate.data
            ? uarc__crypto_first_certificate(r->serverCertificate.data, r->serverCertificate.length)
            : 0;
    if (first != c->channel_cert_length ||
        memcmp(r->serverCertificate.data, c->channel_cert, first) != 0) {
        status = UARC_BadCertificateInvalid;
        why = "the server's certificate differs from the secure channel's";
    } else if (r->serverNonce.length < SESSION_NONCE_LENGTH) {
        status = UARC_BadNonceInvalid;
        why = "the server's nonce is shorter than 32 bytes";
    } else if (!uarc_string_equal_cstr(&r->serverSignature.algorithm,
                                       c->policy->asym_signature_uri) &&
               !(c->policy->certificate_curve && r->serverSignature.algorithm.length == 0)) {
        /* ECC servers (open62541, the reference stack) sign with an empty algorithm */
        why = "the server's signature names another algorithm";
    } else if (r->serverSignature.signature.length != layout.signature_size) {
        why = "the server's signature has the wrong length";
    } else {
        size_t length = c->local_cert_length + sizeof c->client_nonce;
        uint8_t *data = uarc__malloc(length);
        if (!data) {
            status = UARC_BadOutOfMemory;
            why = "out of memory";
        } else {
            memcpy(data, c->local_cert, c->local_cert_length);
            memcpy(data + c->local_cert_length, c->client_nonce, sizeof c->client_nonce);
            if (c->policy->asym_verify(c->security, data, length,
                                       r->serverSignature.signature.data) != UARC_Good)
                why = "the server's signature does not verify";
            uarc__free(data);
        }
    }
    if (!why)
        return UARC_Good;
    uarc__client_fail_connect(c, "CreateSession", status, "%s", why);
    return status;
}

/* What the client and user token signatures sign: the serverCertificate of CreateSession, only
 * its first certificate when it is a chain (Part 4 §5.6.3.2; node-opcua checks no other), then
 * the server nonce. Heap, *length bytes; NULL when out of memory. */
static uint8_t *server_certificate_and_nonce(const uarc_client *c, size_t *length)
{
    const uarc_bytestring *cert = &c->session_server_cert;
    size_t leaf = cert->length ? uarc__crypto_first_certificate(cert->data, cert->length) : 0;
    if (!leaf)
        leaf = cert->length;
    *length = leaf + c->server_nonce.length;
    uint8_t *data = uarc__malloc(*length ? *length : 1);
    if (data && leaf)
        memcpy(data, cert->data, leaf);
    if (data && c->server_nonce.length)
        memcpy(data + leaf, c->server_nonce.data, c->server_nonce.length);
    return data;
}

/* Signs serverCertificate + serverNonce with our key for ActivateSession. */
uarc_status uarc__client_sign_activation(uarc_client *c, uarc_SignatureData *out,
                                         uint8_t **signature)
{
    uarc__chunk_layout layout;
    c->policy->asym_layout(c->security, true, &layout);
    size_t length;
    uint8_t *data = server_certificate_and_nonce(c, &length);
    *signature = uarc__malloc(layout.signature_size);
    uarc_status s = UARC_BadOutOfMemory;
    if (data && *signature)
        s = c->policy->asym_sign(c->security, data, length, *signature);
    uarc__free(data);
    out->algorithm = (uarc_string){strlen(c->policy->asym_signature_uri),
                                   (uint8_t *)c->policy->asym_signature_uri};
    out->signature = (uarc_bytestring){layout.signature_size, *signature};
    return s;
}

/* Picks the server's identity token policy for our security policy and identity. */
void uarc__client_choose_identity_policy(uarc_client *c, const uarc_CreateSessionResponse *r,
                                         uarc_string *token_security_policy)
{
    c->identity_type = c->user_cert       ? UARC_UserTokenType_Certificate
                       : c->cfg.user_name ? UARC_UserTokenType_UserName
                                          : UARC_UserTokenType_Anonymous;
    snprintf(c->identity_policy_id, sizeof c->identity_policy_id, "%s",
             c->user_cert       ? "certificate"
             : c->cfg.user_name ? "username"
                                : "anonymous");
    *token_security_policy = (uarc_string){0, NULL};
    uarc_MessageSecurityMode mode =
        c->policy ? c->policy->mode(c->security) : UARC_MessageSecurityMode_None;
    for (size_t i = 0; i < r->serverEndpointsSize; i++) {
        const uarc_EndpointDescription *e = &r->serverEndpoints[i];
        /* node-opcua names policies per endpoint ("anonymous_2"): the mode must match too */
        if (!uarc_string_equal_cstr(&e->securityPolicyUri, c->cfg.security_policy_uri) ||
            e->securityMode != mode)
            continue;
        for (size_t j = 0; j < e->userIdentityTokensSize; j++) {
            const uarc_UserTokenPolicy *t = &e->userIdentityTokens[j];
            if (t->tokenType != c->identity_type || t->policyId.length == 0 ||
                t->policyId.length >= sizeof c->identity_policy_id)
                continue;
            memcpy(c->identity_policy_id, t->policyId.data, t->policyId.length);
            c->identity_policy_id[t->policyId.length] = '\0';
            *token_security_policy = t->securityPolicyUri;
            return;
        }
    }
}

/* The legacy encrypted secret of Part 4 §7.36.2.2: length (UInt32) of password + serverNonce,
 * the password, the serverNonce, encrypted with the server's public key (RSA-OAEP of the token
 * policy). *secret is heap-owned by the caller. */
uarc_status uarc__client_encrypt_password(uarc_client *c, const char *password,
                                          uarc_bytestring *secret, const char **algorithm,
                                          char *why, size_t why_size)
{
    const uarc__security_policy *policy = uarc__security_policy_find(c->token_policy_uri);
    if (!policy || policy == &uarc__security_policy_none) {
        snprintf(why, why_size, "the password must be encrypted with %s, which is not implemented",
                 c->token_policy_uri);
        return UARC_BadSecurityPolicyRejected;
    }
    if (policy->certificate_curve) {
        /* the EccEncryptedSecret, signed with our channel certificate, for the server's ECDHKey */
        if (policy != c->policy) {
            snprintf(why, why_size,
                     "the password must be encrypted with %s, which uarc does only on a channel "
                     "of that policy",
                     policy->uri);
            return UARC_BadSecurityPolicyRejected;
        }
        if (!c->server_ecdh_key.length) {
            snprintf(why, why_size,
                     "the password must be encrypted with %s, but the server sent no signed "
                     "ECDHKey to encrypt it for",
                     policy->uri);
            return UARC_BadSecurityChecksFailed;
        }
        uint8_t *out = NULL;
        size_t out_length = 0;
        uarc_status s = uarc__ecc_encrypt_secret(
            policy, c->security, (uarc_view){c->server_ecdh_key.data, c->server_ecdh_key.length},
            (uarc_view){c->server_nonce.data, c->server_nonce.length},
            (uarc_view){(const uint8_t *)password, strlen(password)}, uarc_datetime_now(), &out,
            &out_length);
        if (s != UARC_Good) {
            snprintf(why, why_size, "making the EccEncryptedSecret failed");
            return s;
        }
        *secret = (uarc_bytestring){out_length, out};
        *algorithm = NULL; /* Part 4 §7.41.4: no algorithm for an EncryptedSecret */
        return UARC_Good;
    }
    const uarc_bytestring *cert = &c->session_server_cert;
    if (!cert->length) {
        snprintf(why, why_size, "the server sent no certificate to encrypt the password with");
        return UARC_BadCertificateInvalid;
    }
    uarc__security_config config = {UARC_MessageSecurityMode_SignAndEncrypt,
                                    {NULL, 0},
                                    {NULL, 0},
                                    {cert->data, cert->length},
                                    false};
    void *context = NULL;
    uarc_status s = policy->context_new(&config, &context);
    if (s != UARC_Good) {
        snprintf(why, why_size, "cannot use the server's certificate");
        return s;
    }
    uarc__chunk_layout layout;
    policy->asym_layout(context, true, &layout);
    size_t pw = strlen(password), plain = 4 + pw + c->server_nonce.length;
    size_t blocks = (plain + layout.plain_block - 1) / layout.plain_block;
    size_t capacity = blocks * layout.cipher_block;
    uint8_t *buffer = uarc__malloc(capacity > plain ? capacity : plain);
    if (!buffer) {
        policy->context_delete(context);
        return UARC_BadOutOfMemory;
    }
    uint32_t n = (uint32_t)(pw + c->server_nonce.length);
    for (int i = 0; i < 4; i++)
        buffer[i] = (uint8_t)(n >> (8 * i));
    memcpy(buffer + 4, password, pw);
    if (c->server_nonce.length)
        memcpy(buffer + 4 + pw, c->server_nonce.data, c->server_nonce.length);
    s = policy->asym_encrypt(context, buffer, plain, capacity);
    policy->context_delete(context);
    if (s != UARC_Good) {
        uarc__crypto_free_secret(buffer, capacity > plain ? capacity : plain);
        snprintf(why, why_size, "encrypting the password failed");
        return s;
    }
    *secret = (uarc_bytestring){capacity, buffer};
    *algorithm = policy->asym_encryption_uri;
    return UARC_Good;
}

/* The userTokenSignature of an X509 identity (Part 4 §7.36.5): serverCertificate + serverNonce,
 * as the client signature, signed with the user's key by the token policy's algorithm.
 * *signature is heap-owned by the caller. */
uarc_status uarc__client_sign_user_token(uarc_client *c, uarc_SignatureData *out,
                                         uint8_t **signature, char *why, size_t why_size)
{
    const uarc__security_policy *policy = uarc__security_policy_find(c->token_policy_uri);
    if (!policy || policy == &uarc__security_policy_none) {
        snprintf(why, why_size, "the user token must be signed per %s, which is not implemented",
                 c->token_policy_uri);
        return UARC_BadSecurityPolicyRejected;
    }
    /* The context only signs here; the policies want a remote certificate, and the user's own
     * serves (nothing is encrypted or verified with it). */
    uarc_view cert = {c->user_cert, c->user_cert_length};
    uarc__security_config config = {UARC_MessageSecurityMode_SignAndEncrypt,
                                    cert,
                                    {c->user_key, c->user_key_length},
                                    cert,
                                    false};
    void *context = NULL;
    uarc_status s = policy->context_new(&config, &context);
    if (s != UARC_Good) {
        snprintf(why, why_size,
                 "the user certificate and key do not suit %s (a key that is not the "
                 "certificate's, or not %s)",
                 policy->uri, policy->certificate_curve ? "EC on its curve" : "RSA");
        return s;
    }
    uarc__chunk_layout layout;
    policy->asym_layout(context, true, &layout);
    size_t length;
    uint8_t *data = server_certificate_and_nonce(c, &length);
    *signature = uarc__malloc(layout.signature_size);
    s = UARC_BadOutOfMemory;
    if (data && *signature)
        s = policy->asym_sign(context, data, length, *signature);
    uarc__free(data);
    policy->context_delete(context);
    if (s != UARC_Good) {
        snprintf(why, why_size, "signing the user token failed");
        return s;
    }
    out->algorithm =
        (uarc_string){strlen(policy->asym_signature_uri), (uint8_t *)policy->asym_signature_uri};
    out->signature = (uarc_bytestring){layout.signature_size, *signature};
    return UARC_Good;
}
