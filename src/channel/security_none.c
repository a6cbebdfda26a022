/* SecurityPolicy None: nothing is signed or encrypted, nonces and certificates are null. */
#include <string.h>

#include "channel/security.h"

static int none_context; /* a non-NULL context the None callbacks ignore */

static uarc_status none_context_new(const uarc__security_config *config, void **context)
{
    if (config->mode != UARC_MessageSecurityMode_Invalid &&
        config->mode != UARC_MessageSecurityMode_None)
        return UARC_BadSecurityPolicyRejected;
    *context = &none_context;
    return UARC_Good;
}

static void none_context_delete(void *context)
{
    (void)context;
}

static uarc_MessageSecurityMode none_mode(const void *context)
{
    (void)context;
    return UARC_MessageSecurityMode_None;
}

static void none_layout(uarc__chunk_layout *out)
{
    memset(out, 0, sizeof *out);
    out->plain_block = 1;
    out->cipher_block = 1;
}

static void none_asym_layout(const void *context, bool sending, uarc__chunk_layout *out)
{
    (void)context;
    (void)sending;
    none_layout(out);
}

static uarc_view none_view(const void *context)
{
    (void)context;
    return (uarc_view){NULL, 0};
}

static uarc_status none_check_asym_header(const void *context, uarc_view sender_certificate,
                                          uarc_view receiver_thumbprint)
{
    (void)context;
    (void)sender_certificate;
    (void)receiver_thumbprint;
    /* Part 6 §6.7.2.3: with None both are null or empty; servers that still send their
     * certificate are common and harmless, so it is not held against them. */
    return UARC_Good;
}

static uarc_status none_sign(void *context, const uint8_t *data, size_t length, uint8_t *signature)
{
    (void)context;
    (void)data;
    (void)length;
    (void)signature;
    return UARC_Good;
}

static uarc_status none_verify(void *context, const uint8_t *data, size_t length,
                               const uint8_t *signature)
{
    (void)context;
    (void)data;
    (void)length;
    (void)signature;
    return UARC_Good;
}

static uarc_status none_encrypt(void *context, uint8_t *data, size_t length, size_t capacity)
{
    (void)context;
    (void)data;
    (void)length;
    (void)capacity;
    return UARC_Good;
}

static uarc_status none_decrypt(void *context, uint8_t *data, size_t length, size_t *plain_length)
{
    (void)context;
    (void)data;
    *plain_length = length;
    return UARC_Good;
}

static uarc_status none_random(void *context, uint8_t *out, size_t length)
{
    (void)context;
    memset(out, 0, length); /* never called: nonce_length is 0 */
    return UARC_Good;
}

static uarc_status none_derive_keys(void *context, uarc_view client_nonce, uarc_view server_nonce,
                                    void **keys)
{
    (void)context;
    (void)client_nonce;
    (void)server_nonce;
    *keys = NULL;
    return UARC_Good;
}

static void none_keys_delete(void *keys)
{
    (void)keys;
}

static void none_sym_layout(const void *context, uarc__chunk_layout *out)
{
    (void)context;
    none_layout(out);
}

static uarc_status none_sym_sign(const void *keys, const uint8_t *data, size_t length,
                                 uint8_t *signature)
{
    (void)keys;
    (void)data;
    (void)length;
    (void)signature;
    return UARC_Good;
}

static uarc_status none_sym_verify(const void *keys, const uint8_t *data, size_t length,
                                   const uint8_t *signature)
{
    (void)keys;
    (void)data;
    (void)length;
    (void)signature;
    return UARC_Good;
}

static uarc_status none_sym_crypt(const void *keys, uint8_t *data, size_t length)
{
    (void)keys;
    (void)data;
    (void)length;
    return UARC_Good;
}

const uarc__security_policy uarc__security_policy_none = {
    .uri = UARC__SECURITY_POLICY_NONE_URI,
    .nonce_length = 0,
    .context_new = none_context_new,
    .context_delete = none_context_delete,
    .mode = none_mode,
    .asym_layout = none_asym_layout,
    .local_certificate = none_view,
    .remote_thumbprint = none_view,
    .check_asym_header = none_check_asym_header,
    .asym_sign = none_sign,
    .asym_verify = none_verify,
    .asym_encrypt = none_encrypt,
    .asym_decrypt = none_decrypt,
    .new_nonce = none_random,
    .derive_keys = none_derive_keys,
    .keys_delete = none_keys_delete,
    .sym_layout = none_sym_layout,
    .sym_sign = none_sym_sign,
    .sym_verify = none_sym_verify,
    .sym_encrypt = none_sym_crypt,
    .sym_decrypt = none_sym_crypt,
};

static const uarc__security_policy *const policies[] = {
    &uarc__security_policy_none,
    &uarc__security_policy_basic256sha256,
    &uarc__security_policy_aes128_sha256_rsaoaep,
    &uarc__security_policy_aes256_sha256_rsapss,
    &uarc__security_policy_ecc_nistp256,
    &uarc__security_policy_ecc_nistp384,
    &uarc__security_policy_ecc_brainpoolp256r1,
    &uarc__security_policy_ecc_brainpoolp384r1,
};

const uarc__security_policy *uarc__security_policy_find(const char *uri)
{
    if (!uri)
        return &uarc__security_policy_none;
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(policies[i]->uri, uri) == 0)
            return policies[i];
    return NULL;
}
