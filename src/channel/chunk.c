#include <string.h>

#include "channel/chunk.h"
#include "core/endian.h"

#define SEQUENCE_HEADER_SIZE 8u

static bool is_asymmetric(const uarc__chunk_info *info)
{
    return info->type == UARC__UATCP_OPN;
}

/* The largest signature or cipher block a layout may name: far above any real key (RSA-4096
 * gives 512 bytes), far below anything that could overflow the sums it enters. */
#define MAX_LAYOUT_PART 65536u

/* *total += n, unless that overflows. */
static bool add_size(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total)
        return false;
    *total += n;
    return true;
}

/*
 * The layout of one chunk, from the policy. False when the arithmetic below could not trust it:
 * empty blocks, ciphertext blocks smaller than plaintext ones, padding whose count would not fit
 * its one byte (or two with ExtraPaddingSize), or absurd sizes. A policy that was given a key it
 * should have refused then fails here instead of wrapping a size.
 */
static bool layout_of(const uarc__chunk_security *security, const uarc__chunk_info *info,
                      bool sending, uarc__chunk_layout *layout)
{
    if (is_asymmetric(info))
        security->policy->asym_layout(security->context, sending, layout);
    else
        security->policy->sym_layout(security->context, layout);
    if (!layout->encrypt) {
        layout->plain_block = 1;
        layout->cipher_block = 1;
        layout->extra_padding = false;
    }
    if (!layout->sign)
        layout->signature_size = 0;
    size_t max_plain_block = layout->extra_padding ? MAX_LAYOUT_PART : 256;
    return layout->signature_size <= MAX_LAYOUT_PART && layout->plain_block >= 1 &&
           layout->plain_block <= max_plain_block && layout->cipher_block >= layout->plain_block &&
           layout->cipher_block <= MAX_LAYOUT_PART;
}

size_t uarc__chunk_header_size(const uarc__chunk_info *info)
{
    size_t size = UARC__UATCP_HEADER_SIZE + 4;
    if (!is_asymmetric(info))
        return size + 4;
    size += 12;
    if (!add_size(&size, info->policy_uri.length) ||
        !add_size(&size, info->sender_certificate.length) ||
        !add_size(&size, info->receiver_thumbprint.length))
        return SIZE_MAX;
    return size;
}

/* Bytes of padding fields (PaddingSize, padding, ExtraPaddingSize) that bring sequence header,
 * body, padding and signature to a multiple of the plaintext block. False when the body is so
 * large that the sum overflows. */
static bool padding_fields(const uarc__chunk_layout *layout, size_t body_length, size_t *padding)
{
    *padding = 0;
    if (!layout->encrypt)
        return true;
    size_t extra = layout->extra_padding ? 1 : 0;
    size_t fixed = SEQUENCE_HEADER_SIZE + 1 + extra + layout->signature_size;
    if (!add_size(&fixed, body_length))
        return false;
    size_t pad = (layout->plain_block - fixed % layout->plain_block) % layout->plain_block;
    *padding = 1 + pad + extra;
    return true;
}

size_t uarc__chunk_max_body(const uarc__chunk_security *security, const uarc__chunk_info *info,
                            size_t max_chunk)
{
    uarc__chunk_layout layout;
    if (!layout_of(security, info, true, &layout))
        return 0;
    size_t header = uarc__chunk_header_size(info);
    if (max_chunk <= header)
        return 0;
    size_t plain = max_chunk - header;
    if (layout.encrypt) /* never grows: plain_block <= cipher_block */
        plain = plain / layout.cipher_block * layout.plain_block;
    size_t overhead = SEQUENCE_HEADER_SIZE + layout.signature_size +
                      (layout.encrypt ? 1 + (layout.extra_padding ? 1 : 0) : 0);
    return plain > overhead ? plain - overhead : 0;
}

static size_t put_bytestring(uint8_t *p, uarc_view v)
{
    uarc__st32(p, v.data ? (uint32_t)v.length : UINT32_MAX);
    if (v.length)
        memcpy(p + 4, v.data, v.length);
    return 4 + v.length;
}

static size_t write_headers(const uarc__chunk_info *info, uint8_t *out)
{
    size_t pos = UARC__UATCP_HEADER_SIZE;
    uarc__st32(out + pos, info->channel_id);
    pos += 4;
    if (is_asymmetric(info)) {
        pos += put_bytestring(out + pos, info->policy_uri);
        pos += put_bytestring(out + pos, info->sender_certificate);
        pos += put_bytestring(out + pos, info->receiver_thumbprint);
    } else {
        uarc__st32(out + pos, info->token_id);
        pos += 4;
    }
    uarc__st32(out + pos, info->sequence_number);
    uarc__st32(out + pos + 4, info->request_id);
    return pos;
}

static const char *type_name(uarc__uatcp_type type)
{
    return type == UARC__UATCP_OPN ? "OPN" : type == UARC__UATCP_CLO ? "CLO" : "MSG";
}

uarc_status uarc__chunk_encode(const uarc__chunk_security *security, const uarc__chunk_info *info,
                               uint8_t *out, size_t capacity, size_t *size)
{
    uarc__chunk_layout layout;
    size_t header = uarc__chunk_header_size(info), padding, plain = SEQUENCE_HEADER_SIZE;
    if (!layout_of(security, info, true, &layout) || header >= capacity ||
        !padding_fields(&layout, info->body_length, &padding) ||
        !add_size(&plain, info->body_length) || !add_size(&plain, padding) ||
        !add_size(&plain, layout.signature_size))
        return UARC_BadEncodingLimitsExceeded;
    /* plain is a whole number of plaintext blocks; each becomes one ciphertext block */
    size_t blocks = plain / layout.plain_block, room = capacity - header;
    if (blocks > room / layout.cipher_block)
        return UARC_BadEncodingLimitsExceeded;
    size_t encrypted = blocks * layout.cipher_block;
    if (plain > room || header > UINT32_MAX || encrypted > UINT32_MAX - header)
        return UARC_BadEncodingLimitsExceeded;

    uarc__uatcp_write_header(out, type_name(info->type), info->chunk_type,
                             (uint32_t)(header + encrypted));
    size_t pos = write_headers(info, out) + SEQUENCE_HEADER_SIZE;
    if (info->body_length)
        memcpy(out + pos, info->body, info->body_length);
    pos += info->body_length;
    if (padding) {
        size_t count = padding - 1 - (layout.extra_padding ? 1 : 0);
        /* every padding byte and PaddingSize hold the low byte of the count (Part 6 §6.7.2.5) */
        memset(out + pos, (int)(count & 0xFF), 1 + count);
        pos += 1 + count;
        if (layout.extra_padding)
            out[pos++] = (uint8_t)(count >> 8);
    }

    uarc_status status = UARC_Good;
    if (layout.sign) {
        status = is_asymmetric(info)
                     ? security->policy->asym_sign(security->context, out, pos, out + pos)
                     : security->policy->sym_sign(security->keys, out, pos, out + pos);
        if (status != UARC_Good)
            return status;
        pos += layout.signature_size;
    }
    if (layout.encrypt) {
        status = is_asymmetric(info)
                     ? security->policy->asym_encrypt(security->context, out + header, plain,
                                                      capacity - header)
                     : security->policy->sym_encrypt(security->keys, out + header, plain);
        if (status != UARC_Good)
            return status;
    }
    *size = header + encrypted;
    return UARC_Good;
}

/* A ByteString/String inside the chunk header: -1 is null, other negatives are malformed. */
static bool get_bytestring(const uint8_t *chunk, size_t size, size_t *pos, uarc_view *out)
{
    if (size - *pos < 4)
        return false;
    int32_t length = (int32_t)uarc__ld32(chunk + *pos);
    *pos += 4;
    if (length == -1) {
        *out = (uarc_view){NULL, 0};
        return true;
    }
    if (length < 0 || (size_t)length > size - *pos)
        return false;
    *out = (uarc_view){chunk + *pos, (size_t)length};
    *pos += (size_t)length;
    return true;
}

uarc_status uarc__chunk_parse_header(const uint8_t *chunk, size_t size, uarc__chunk_info *info,
                                     size_t *header_size)
{
    memset(info, 0, sizeof *info);
    uarc__uatcp_header h;
    if (size < UARC__UATCP_HEADER_SIZE + 4 ||
        uarc__uatcp_parse_header(chunk, (uint32_t)size, &h) != UARC_Good || h.size != size)
        return UARC_BadDecodingError;
    info->type = h.type;
    info->chunk_type = h.chunk_type;
    size_t pos = UARC__UATCP_HEADER_SIZE;
    info->channel_id = uarc__ld32(chunk + pos);
    pos += 4;
    if (is_asymmetric(info)) {
        if (!get_bytestring(chunk, size, &pos, &info->policy_uri) ||
            !get_bytestring(chunk, size, &pos, &info->sender_certificate) ||
            !get_bytestring(chunk, size, &pos, &info->receiver_thumbprint))
            return UARC_BadDecodingError;
    } else {
        if (size - pos < 4)
            return UARC_BadDecodingError;
        info->token_id = uarc__ld32(chunk + pos);
        pos += 4;
    }
    *header_size = pos;
    return UARC_Good;
}

/* Removes the padding fields before `end` (the signature start). Returns the body end or 0. */
static size_t strip_padding(const uint8_t *chunk, size_t body_start, size_t end,
                            const uarc__chunk_layout *layout)
{
    size_t extra = layout->extra_padding ? 1 : 0;
    if (end < body_start + 1 + extra)
        return 0;
    size_t count = chunk[end - 1 - extra];
    if (extra)
        count |= (size_t)chunk[end - 1] << 8;
    if (end - body_start < 1 + extra + count)
        return 0;
    size_t first = end - extra - 1 - count; /* PaddingSize byte */
    for (size_t i = first; i < end - extra; i++)
        if (chunk[i] != (uint8_t)(count & 0xFF))
            return 0;
    return first;
}

uarc_status uarc__chunk_open(const uarc__chunk_security *security, uint8_t *chunk, size_t size,
                             size_t header_size, uarc__chunk_info *info)
{
    uarc__chunk_layout layout;
    if (!layout_of(security, info, false, &layout) || header_size > size)
        return UARC_BadSecurityChecksFailed;
    size_t plain = size - header_size;
    uarc_status status;
    if (layout.encrypt) {
        if (plain % layout.cipher_block != 0)
            return UARC_BadSecurityChecksFailed;
        if (is_asymmetric(info))
            status = security->policy->asym_decrypt(security->context, chunk + header_size, plain,
                                                    &plain);
        else
            status = security->policy->sym_decrypt(security->keys, chunk + header_size, plain);
        if (status != UARC_Good)
            return UARC_BadSecurityChecksFailed;
        if (plain > size - header_size)
            return UARC_BadSecurityChecksFailed;
    }
    if (plain < SEQUENCE_HEADER_SIZE || plain - SEQUENCE_HEADER_SIZE < layout.signature_size)
        return UARC_BadDecodingError;
    size_t end = header_size + plain - layout.signature_size;
    if (layout.sign) {
        status = is_asymmetric(info)
                     ? security->policy->asym_verify(security->context, chunk, end, chunk + end)
                     : security->policy->sym_verify(security->keys, chunk, end, chunk + end);
        if (status != UARC_Good)
            return UARC_BadSecurityChecksFailed;
    }
    size_t body_start = header_size + SEQUENCE_HEADER_SIZE;
    if (layout.encrypt) {
        end = strip_padding(chunk, body_start, end, &layout);
        if (end == 0)
            return UARC_BadSecurityChecksFailed;
    }
    info->sequence_number = uarc__ld32(chunk + header_size);
    info->request_id = uarc__ld32(chunk + header_size + 4);
    info->body = chunk + body_start;
    info->body_length = end - body_start;
    return UARC_Good;
}
