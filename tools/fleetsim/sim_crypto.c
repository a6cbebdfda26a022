/*
 * fleetsim's secured channels: SecurityPolicy Basic256Sha256 (Sign and SignAndEncrypt) on the
 * server side, built on uarc's own security policy and chunk layer, which can play the server
 * (scripts/check-layers allows fleetsim those internal headers and says why). Every server has its
 * own certificate, whose subjectAltName URI is its ServerUri as clients require, but all of them
 * certify one RSA key made at start: a key costs tens of milliseconds, a certificate one signature.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "channel/chunk.h"
#include "core/alloc.h"
#include "channel/crypto.h"
#include "channel/security.h"
#include "sim.h"

struct sim_security {
    const uarc__security_policy *policy;
    uint8_t *key; /* PKCS#8 DER of the key every server certifies */
    size_t key_length;
};

/* A server's certificate and its policy contexts for the client certificate seen last. */
struct sim_identity {
    uint8_t *certificate;
    size_t certificate_length;
    uint8_t *client_certificate;
    size_t client_certificate_length;
    void *context[2]; /* [0] SignAndEncrypt, [1] Sign: made when first asked */
};

sim_security *sim_security_new(const char *policy_uri)
{
    const uarc__security_policy *policy = uarc__security_policy_find(policy_uri);
    if (!policy || policy == &uarc__security_policy_none || policy->certificate_curve)
        return NULL; /* the RSA policies only */
    sim_security *security = calloc(1, sizeof *security);
    uint8_t *cert = NULL;
    size_t cert_length = 0;
    if (!security ||
        uarc__crypto_make_certificate("urn:fleetsim", NULL, &cert, &cert_length, &security->key,
                                      &security->key_length) != UARC_Good) {
        free(security);
        return NULL;
    }
    uarc__free(cert);
    security->policy = policy;
    return security;
}

void sim_security_delete(sim_security *security)
{
    if (!security)
        return;
    uarc__crypto_free_secret(security->key, security->key_length);
    free(security);
}

const char *sim_security_policy_uri(const sim_security *security)
{
    return security->policy->uri;
}

static void forget_contexts(const sim_security *security, sim_identity *identity)
{
    for (size_t i = 0; i < 2; i++) {
        if (identity->context[i])
            security->policy->context_delete(identity->context[i]);
        identity->context[i] = NULL;
    }
    free(identity->client_certificate);
    identity->client_certificate = NULL;
    identity->client_certificate_length = 0;
}

bool sim_identity_make(sim_server *server)
{
    const sim_security *security = server->config->security;
    if (!security)
        return true;
    sim_identity *identity = calloc(1, sizeof *identity);
    if (!identity || uarc__crypto_certify_key(server->uri, security->key, security->key_length,
                                              &identity->certificate,
                                              &identity->certificate_length) != UARC_Good) {
        free(identity);
        return false;
    }
    server->identity = identity;
    return true;
}

void sim_identity_free(sim_server *server)
{
    sim_identity *identity = server->identity;
    if (!identity)
        return;
    forget_contexts(server->config->security, identity);
    uarc__free(identity->certificate);
    free(identity);
    server->identity = NULL;
}

uarc_bytestring sim_server_certificate(const sim_server *server)
{
    if (!server->identity)
        return (uarc_bytestring){0, NULL};
    return (uarc_bytestring){server->identity->certificate_length, server->identity->certificate};
}

/* ---- channels ----------------------------------------------------------------------------- */

/* The context for `mode` with the client certificate `client`, made when first needed. */
static void *context_for(sim_server *server, uarc_view client, uarc_MessageSecurityMode mode,
                         uarc_status *status)
{
    const sim_security *security = server->config->security;
    sim_identity *identity = server->identity;
    if (client.length != identity->client_certificate_length ||
        memcmp(client.data, identity->client_certificate, client.length) != 0) {
        forget_contexts(security, identity);
        identity->client_certificate = malloc(client.length);
        if (!identity->client_certificate) {
            *status = UARC_BadOutOfMemory;
            return NULL;
        }
        memcpy(identity->client_certificate, client.data, client.length);
        identity->client_certificate_length = client.length;
    }
    size_t slot = mode == UARC_MessageSecurityMode_Sign;
    if (!identity->context[slot]) {
        uarc__security_config config = {
            mode,
            {identity->certificate, identity->certificate_length},
            {security->key, security->key_length},
            client,
            true,
        };
        *status = security->policy->context_new(&config, &identity->context[slot]);
        if (*status != UARC_Good)
            return NULL;
    }
    *status = UARC_Good;
    return identity->context[slot];
}

uarc_status sim_secure_open_asym(sim_conn *conn, uint8_t *chunk, size_t size, uint32_t *request_id,
                                 const uint8_t **body, size_t *body_length)
{
    const sim_security *security = conn->server->config->security;
    uarc__chunk_info info;
    size_t header;
    uarc_status s = uarc__chunk_parse_header(chunk, size, &info, &header);
    if (s != UARC_Good)
        return s;
    if (!security || info.policy_uri.length != strlen(security->policy->uri) ||
        memcmp(info.policy_uri.data, security->policy->uri, info.policy_uri.length) != 0)
        return UARC_BadSecurityPolicyRejected;
    if (!info.sender_certificate.data)
        return UARC_BadCertificateInvalid;
    /* The sender certificate may be followed by its issuers; the context takes the first. */
    void *context = conn->context;
    if (!context) {
        context = context_for(conn->server, info.sender_certificate,
                              UARC_MessageSecurityMode_SignAndEncrypt, &s);
        if (!context)
            return s;
    }
    s = security->policy->check_asym_header(context, info.sender_certificate,
                                            info.receiver_thumbprint);
    if (s != UARC_Good)
        return s;
    uarc__chunk_security sec = {security->policy, context, NULL};
    s = uarc__chunk_open(&sec, chunk, size, header, &info);
    if (s != UARC_Good)
        return s;
    conn->context = context;
    *request_id = info.request_id;
    *body = info.body;
    *body_length = info.body_length;
    return UARC_Good;
}

uarc_status sim_secure_new_token(sim_conn *conn, uarc_MessageSecurityMode mode,
                                 const uarc_bytestring *client_nonce, uarc_bytestring *server_nonce)
{
    const uarc__security_policy *policy = conn->server->config->security->policy;
    if (mode != UARC_MessageSecurityMode_Sign && mode != UARC_MessageSecurityMode_SignAndEncrypt)
        return UARC_BadSecurityModeRejected;
    if (conn->mode && mode != conn->mode)
        return UARC_BadSecurityModeRejected; /* a renewal keeps the channel's mode */
    if (client_nonce->length != policy->nonce_length)
        return UARC_BadNonceInvalid;
    if (!conn->mode && mode == UARC_MessageSecurityMode_Sign) {
        /* The OPN was opened with the SignAndEncrypt context (asymmetric chunks are the same in
         * both modes); the symmetric ones differ. */
        uarc_status s;
        const sim_identity *identity = conn->server->identity;
        void *context = context_for(
            conn->server,
            (uarc_view){identity->client_certificate, identity->client_certificate_length}, mode,
            &s);
        if (!context)
            return s;
        conn->context = context;
    }
    conn->mode = mode;
    server_nonce->data = malloc(policy->nonce_length);
    if (!server_nonce->data || RAND_bytes(server_nonce->data, (int)policy->nonce_length) != 1)
        return UARC_BadOutOfMemory;
    server_nonce->length = policy->nonce_length;
    void *keys = NULL;
    uarc_status s =
        policy->derive_keys(conn->context, (uarc_view){server_nonce->data, server_nonce->length},
                            (uarc_view){client_nonce->data, client_nonce->length}, &keys);
    if (s != UARC_Good)
        return s;
    policy->keys_delete(conn->previous_keys);
    conn->previous_keys = conn->keys;
    conn->keys = keys;
    return UARC_Good;
}

uarc_status sim_secure_open_sym(sim_conn *conn, uint8_t *chunk, size_t size, bool previous,
                                uint32_t *request_id, const uint8_t **body, size_t *body_length)
{
    const uarc__security_policy *policy = conn->server->config->security->policy;
    uarc__chunk_info info;
    size_t header;
    uarc_status s = uarc__chunk_parse_header(chunk, size, &info, &header);
    if (s != UARC_Good)
        return s;
    const void *keys = previous ? conn->previous_keys : conn->keys;
    if (!keys)
        return UARC_BadSecureChannelTokenUnknown;
    uarc__chunk_security sec = {policy, conn->context, keys};
    s = uarc__chunk_open(&sec, chunk, size, header, &info);
    if (s != UARC_Good)
        return s;
    *request_id = info.request_id;
    *body = info.body;
    *body_length = info.body_length;
    return UARC_Good;
}

size_t sim_secure_room(const sim_conn *conn)
{
    uarc__chunk_info info = {.type = UARC__UATCP_MSG, .chunk_type = 'F'};
    uarc__chunk_security sec = {conn->server->config->security->policy, conn->context, conn->keys};
    return uarc__chunk_max_body(&sec, &info, conn->peer_receive_buffer);
}

bool sim_secure_seal(sim_conn *conn, bool open, uint8_t chunk_type, uint32_t request_id,
                     const uint8_t *body, size_t length)
{
    const uarc__security_policy *policy = conn->server->config->security->policy;
    uarc__chunk_info info = {
        .type = open ? UARC__UATCP_OPN : UARC__UATCP_MSG,
        .chunk_type = chunk_type,
        .channel_id = conn->channel_id,
        .token_id = conn->token_id,
        .sequence_number = conn->send_sequence++,
        .request_id = request_id,
        .body = body,
        .body_length = length,
    };
    if (open) {
        const char *uri = policy->uri;
        info.policy_uri = (uarc_view){(const uint8_t *)uri, strlen(uri)};
        info.sender_certificate = policy->local_certificate(conn->context);
        info.receiver_thumbprint = policy->remote_thumbprint(conn->context);
    }
    uarc__chunk_security sec = {policy, conn->context, open ? NULL : conn->keys};
    /* Room for the headers, padding to whole blocks, the signature and RSA's growth per block. */
    size_t header = uarc__chunk_header_size(&info);
    size_t capacity = header + 2 * length + 2048;
    sim_buf *out = &conn->out;
    size_t at = out->length;
    if (header == SIZE_MAX || !sim_buf_append(out, NULL, capacity))
        return false;
    size_t size = 0;
    uarc_status s = uarc__chunk_encode(&sec, &info, out->data + at, capacity, &size);
    out->length = at + (s == UARC_Good ? size : 0);
    return s == UARC_Good;
}

bool sim_secure_sign(sim_conn *conn, const uint8_t *data, size_t length,
                     uarc_SignatureData *signature)
{
    const uarc__security_policy *policy = conn->server->config->security->policy;
    uarc__chunk_layout layout;
    policy->asym_layout(conn->context, true, &layout);
    signature->signature.data = malloc(layout.signature_size);
    if (!signature->signature.data ||
        policy->asym_sign(conn->context, data, length, signature->signature.data) != UARC_Good)
        return false;
    signature->signature.length = layout.signature_size;
    signature->algorithm = uarc_string_from(policy->asym_signature_uri);
    return true;
}

bool sim_secure_verify(sim_conn *conn, const uint8_t *data, size_t length,
                       const uarc_SignatureData *signature)
{
    const uarc__security_policy *policy = conn->server->config->security->policy;
    uarc__chunk_layout layout;
    policy->asym_layout(conn->context, false, &layout);
    return signature->signature.length == layout.signature_size &&
           uarc_string_equal_cstr(&signature->algorithm, policy->asym_signature_uri) &&
           policy->asym_verify(conn->context, data, length, signature->signature.data) == UARC_Good;
}

void sim_secure_closed(sim_conn *conn)
{
    const sim_security *security = conn->server ? conn->server->config->security : NULL;
    if (security) {
        security->policy->keys_delete(conn->keys);
        security->policy->keys_delete(conn->previous_keys);
    }
    conn->keys = conn->previous_keys = NULL;
    conn->context = NULL;
    conn->mode = 0;
}
