#include "secure_peer.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/endian.h"
#include "fuzz_secure_keys.h"

static void must(bool condition)
{
    if (!condition)
        abort();
}

uarc_view fuzz_key(fuzz_key_id id)
{
    static uint8_t der[FUZZ_KEY_COUNT][4096];
    static size_t length[FUZZ_KEY_COUNT];
    if (!length[id]) {
        const char *text = fuzz_key_base64[id];
        size_t n = strlen(text);
        must(n / 4 * 3 <= sizeof der[id]);
        int k = EVP_DecodeBlock(der[id], (const unsigned char *)text, (int)n);
        size_t padding = (n > 0 && text[n - 1] == '=') + (n > 1 && text[n - 2] == '=');
        must(k > 0 && (size_t)k > padding);
        length[id] = (size_t)k - padding;
    }
    return (uarc_view){der[id], length[id]};
}

void secure_peer_client_identity(const uint8_t **cert, size_t *cert_length, const uint8_t **key,
                                 size_t *key_length)
{
    uarc_view c = fuzz_key(FUZZ_CLIENT_CERT), k = fuzz_key(FUZZ_CLIENT_KEY);
    *cert = c.data;
    *cert_length = c.length;
    *key = k.data;
    *key_length = k.length;
}

void secure_peer_server_certificate(const uint8_t **cert, size_t *length)
{
    uarc_view c = fuzz_key(FUZZ_SERVER_CERT);
    *cert = c.data;
    *length = c.length;
}

void secure_peer_start(secure_peer *p, bool sign_only)
{
    static void *contexts[2];
    const uarc__security_policy *policy = &uarc__security_policy_basic256sha256;
    if (!contexts[sign_only]) {
        uarc__security_config config = {
            sign_only ? UARC_MessageSecurityMode_Sign : UARC_MessageSecurityMode_SignAndEncrypt,
            fuzz_key(FUZZ_SERVER_CERT),
            fuzz_key(FUZZ_SERVER_KEY),
            fuzz_key(FUZZ_CLIENT_CERT),
            true,
        };
        must(policy->context_new(&config, &contexts[sign_only]) == UARC_Good);
    }
    *p = (secure_peer){.policy = policy, .context = contexts[sign_only]};
}

void secure_peer_stop(secure_peer *p)
{
    if (p->policy) {
        p->policy->keys_delete(p->keys);
        p->policy->keys_delete(p->previous_keys);
    }
    p->keys = p->previous_keys = NULL;
    p->token_id = p->previous_token_id = 0;
}

uarc_status secure_peer_open(secure_peer *p, uint8_t *chunk, size_t size, uarc__chunk_info *info)
{
    size_t header;
    uarc_status s = uarc__chunk_parse_header(chunk, size, info, &header);
    if (s != UARC_Good)
        return s;
    const void *keys = NULL;
    if (info->type == UARC__UATCP_OPN) {
        s = p->policy->check_asym_header(p->context, info->sender_certificate,
                                         info->receiver_thumbprint);
        if (s != UARC_Good)
            return s;
    } else {
        keys = info->token_id == p->token_id            ? p->keys
               : info->token_id == p->previous_token_id ? p->previous_keys
                                                        : NULL;
        if (!keys)
            return UARC_BadSecureChannelTokenUnknown;
    }
    uarc__chunk_security security = {p->policy, p->context, keys};
    return uarc__chunk_open(&security, chunk, size, header, info);
}

void secure_peer_new_token(secure_peer *p, uint32_t token_id, const uint8_t server_nonce[32])
{
    void *keys = NULL;
    /* the server's view: its nonce first (the roles swap) */
    must(p->policy->derive_keys(p->context, (uarc_view){server_nonce, 32},
                                (uarc_view){p->client_nonce, 32}, &keys) == UARC_Good);
    p->policy->keys_delete(p->previous_keys);
    p->previous_keys = p->keys;
    p->previous_token_id = p->token_id;
    p->keys = keys;
    p->token_id = token_id;
}

size_t secure_peer_seal(secure_peer *p, const uarc__chunk_info *info, uint8_t *out, size_t capacity)
{
    bool asym = info->type == UARC__UATCP_OPN;
    if (!asym && !p->keys)
        return 0;
    uarc__chunk_security security = {p->policy, p->context, asym ? NULL : p->keys};
    size_t size;
    return uarc__chunk_encode(&security, info, out, capacity, &size) == UARC_Good ? size : 0;
}

void secure_peer_sign(secure_peer *p, const uint8_t *data, size_t length, uint8_t *signature,
                      size_t *signature_length)
{
    uarc__chunk_layout layout;
    p->policy->asym_layout(p->context, true, &layout);
    must(p->policy->asym_sign(p->context, data, length, signature) == UARC_Good);
    *signature_length = layout.signature_size;
}

/* A policy that neither pads, signs nor encrypts: uarc__chunk_encode then writes just the headers
 * and the body, and seal_own_padding() does the rest. */
static void plain_layout(const void *context, bool sending, uarc__chunk_layout *out)
{
    (void)context;
    (void)sending;
    *out = (uarc__chunk_layout){.plain_block = 1, .cipher_block = 1};
}

static void plain_sym_layout(const void *context, uarc__chunk_layout *out)
{
    plain_layout(context, true, out);
}

size_t seal_own_padding(const uarc__security_policy *policy, void *context, const void *keys,
                        const uarc__chunk_info *info, uint8_t *out, size_t capacity)
{
    static uint8_t body[1 << 17];
    bool asym = info->type == UARC__UATCP_OPN;
    uarc__chunk_layout layout;
    if (asym)
        policy->asym_layout(context, true, &layout);
    else
        policy->sym_layout(context, &layout);
    size_t length = info->body_length, header = uarc__chunk_header_size(info);
    size_t plain = 8 + length + layout.signature_size;
    size_t extend =
        layout.encrypt ? (layout.plain_block - plain % layout.plain_block) % layout.plain_block : 0;
    if (length + extend > sizeof body - 1024)
        return 0;
    if (length)
        memcpy(body, info->body, length);
    memset(body + length, 0, extend);
    uarc__chunk_info plain_info = *info;
    plain_info.body = body;
    plain_info.body_length = length + extend;
    plain += extend;
    size_t sealed = layout.encrypt ? plain / layout.plain_block * layout.cipher_block : plain;

    uarc__security_policy plain_policy = *policy;
    plain_policy.asym_layout = plain_layout;
    plain_policy.sym_layout = plain_sym_layout;
    uarc__chunk_security security = {&plain_policy, context, NULL};
    size_t size;
    if (header + sealed > capacity ||
        uarc__chunk_encode(&security, &plain_info, out, capacity, &size) != UARC_Good)
        return 0;
    uarc__st32(out + 4, (uint32_t)(header + sealed));
    uarc_status s = asym ? policy->asym_sign(context, out, size, out + size)
                         : policy->sym_sign(keys, out, size, out + size);
    must(s == UARC_Good);
    if (layout.encrypt)
        s = asym ? policy->asym_encrypt(context, out + header, plain, capacity - header)
                 : policy->sym_encrypt(keys, out + header, plain);
    must(s == UARC_Good);
    return header + sealed;
}
