/*
 * The symmetric primitives the RSA and ECC policies share: HMAC for signing MSG and CLO chunks,
 * AES-CBC without padding (the chunk carries its own) for encrypting them.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "channel/security.h"

uarc_status uarc__hmac(const char *digest, uarc_view key, const uint8_t *data, size_t length,
                       uint8_t *mac)
{
    const EVP_MD *md = EVP_get_digestbyname(digest);
    unsigned int n = 0;
    if (!md || key.length > INT32_MAX)
        return UARC_BadInternalError;
    return HMAC(md, key.data, (int)key.length, data, length, mac, &n) ? UARC_Good
                                                                      : UARC_BadInternalError;
}

uarc_status uarc__aes_cbc(bool encrypting, uarc_view key, const uint8_t iv[16], uint8_t *data,
                          size_t length)
{
    if (length % 16 != 0 || length > INT32_MAX || (key.length != 16 && key.length != 32))
        return UARC_BadSecurityChecksFailed;
    const EVP_CIPHER *cipher = key.length == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    bool ok = ctx && EVP_CipherInit_ex(ctx, cipher, NULL, key.data, iv, encrypting ? 1 : 0) == 1 &&
              EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
              EVP_CipherUpdate(ctx, data, &n1, data, (int)length) == 1 &&
              EVP_CipherFinal_ex(ctx, data + n1, &n2) == 1 && (size_t)(n1 + n2) == length;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? UARC_Good : UARC_BadSecurityChecksFailed;
}
