/*
 * Secure conversation chunks (OPC UA Part 6 §6.7.2): the layout of OPN, MSG and CLO chunks around
 * their body — SecureChannelId, security header, sequence header, padding and signature — with
 * signing and encryption delegated to the security policy. Pure functions over buffers. Internal.
 */
#ifndef UARC_CHANNEL_CHUNK_H
#define UARC_CHANNEL_CHUNK_H

#include "channel/security.h"
#include "transport/uatcp.h"

/* The security applied to one chunk. */
typedef struct uarc__chunk_security {
    const uarc__security_policy *policy;
    void *context;
    const void *keys; /* symmetric chunks: the key set of the chunk's token */
} uarc__chunk_security;

/* The fields of one chunk. Views point into the chunk buffer. */
typedef struct uarc__chunk_info {
    uarc__uatcp_type type; /* OPN (asymmetric header), MSG or CLO (symmetric header) */
    uint8_t chunk_type;    /* 'F', 'C', 'A' */
    uint32_t channel_id;
    uint32_t token_id;             /* MSG/CLO */
    uarc_view policy_uri;          /* OPN; data NULL: null */
    uarc_view sender_certificate;  /* OPN */
    uarc_view receiver_thumbprint; /* OPN */
    uint32_t sequence_number;
    uint32_t request_id;
    const uint8_t *body;
    size_t body_length;
} uarc__chunk_info;

/* Bytes before the sequence header: message header, SecureChannelId, security header. SIZE_MAX
 * when the sum overflows. */
size_t uarc__chunk_header_size(const uarc__chunk_info *info);

/* The largest body one chunk of at most `max_chunk` bytes can carry (0 when none fits, or when
 * the policy's layout is not one the chunk arithmetic accepts). */
size_t uarc__chunk_max_body(const uarc__chunk_security *security, const uarc__chunk_info *info,
                            size_t max_chunk);

/*
 * Encodes one chunk with info->body into out[0..capacity): headers, body, padding, signature,
 * then encryption. *size receives the chunk size. Returns Good, BadEncodingLimitsExceeded when it
 * does not fit (or any size would overflow, or the policy's layout is absurd: empty blocks,
 * ciphertext blocks smaller than plaintext ones, padding counts that do not fit their bytes), or
 * the policy's failure.
 */
uarc_status uarc__chunk_encode(const uarc__chunk_security *security, const uarc__chunk_info *info,
                               uint8_t *out, size_t capacity, size_t *size);

/*
 * Reads the unencrypted part of a complete chunk (`size` bytes, header already validated): type,
 * chunk type, SecureChannelId and the security header. *header_size receives its length.
 * Returns Good or BadDecodingError.
 */
uarc_status uarc__chunk_parse_header(const uint8_t *chunk, size_t size, uarc__chunk_info *info,
                                     size_t *header_size);

/*
 * Decrypts the chunk in place and verifies its signature, then removes padding and signature and
 * reads the sequence header: fills sequence_number, request_id, body and body_length.
 * Returns Good, BadSecurityChecksFailed for a bad signature or padding (or an absurd layout, as
 * for uarc__chunk_encode), BadDecodingError.
 */
uarc_status uarc__chunk_open(const uarc__chunk_security *security, uint8_t *chunk, size_t size,
                             size_t header_size, uarc__chunk_info *info);

#endif
