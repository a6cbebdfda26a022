#include <string.h>

#include "core/endian.h"
#include "transport/uatcp.h"

static const struct {
    char name[4];
    uarc__uatcp_type type;
} uatcp_types[] = {
    {"HEL", UARC__UATCP_HEL}, {"ACK", UARC__UATCP_ACK}, {"ERR", UARC__UATCP_ERR},
    {"RHE", UARC__UATCP_RHE}, {"OPN", UARC__UATCP_OPN}, {"MSG", UARC__UATCP_MSG},
    {"CLO", UARC__UATCP_CLO},
};

uarc_status uarc__uatcp_parse_header(const uint8_t header[UARC__UATCP_HEADER_SIZE],
                                     uint32_t max_size, uarc__uatcp_header *out)
{
    out->type = UARC__UATCP_UNKNOWN;
    for (size_t i = 0; i < sizeof uatcp_types / sizeof uatcp_types[0]; i++) {
        if (memcmp(header, uatcp_types[i].name, 3) == 0) {
            out->type = uatcp_types[i].type;
            break;
        }
    }
    out->chunk_type = header[3];
    out->size = uarc__ld32(header + 4);
    if (out->type == UARC__UATCP_UNKNOWN)
        return UARC_BadTcpMessageTypeInvalid;
    bool multi = out->type == UARC__UATCP_MSG;
    if (!(out->chunk_type == 'F' || (multi && (out->chunk_type == 'C' || out->chunk_type == 'A'))))
        return UARC_BadTcpMessageTypeInvalid;
    if (out->size < UARC__UATCP_HEADER_SIZE)
        return UARC_BadDecodingError; /* shorter than its own header: malformed, not too large */
    if (out->size > max_size)
        return UARC_BadTcpMessageTooLarge;
    return UARC_Good;
}

void uarc__uatcp_write_header(uint8_t *out, const char *type, uint8_t chunk_type, uint32_t size)
{
    memcpy(out, type, 3);
    out[3] = chunk_type;
    uarc__st32(out + 4, size);
}

size_t uarc__uatcp_encode_hel(uint8_t *out, size_t capacity, const uarc__uatcp_limits *limits,
                              const char *endpoint_url, size_t url_length)
{
    if (url_length > UARC__UATCP_MAX_STRING_LENGTH)
        return 0;
    size_t size = UARC__UATCP_HEADER_SIZE + 24 + url_length;
    if (capacity < size)
        return 0;
    uarc__uatcp_write_header(out, "HEL", 'F', (uint32_t)size);
    uarc__st32(out + 8, limits->protocol_version);
    uarc__st32(out + 12, limits->receive_buffer_size);
    uarc__st32(out + 16, limits->send_buffer_size);
    uarc__st32(out + 20, limits->max_message_size);
    uarc__st32(out + 24, limits->max_chunk_count);
    uarc__st32(out + 28, (uint32_t)url_length);
    if (url_length)
        memcpy(out + 32, endpoint_url, url_length);
    return size;
}

uarc_status uarc__uatcp_decode_ack(const uint8_t *message, size_t size, uarc__uatcp_limits *out)
{
    if (size != UARC__UATCP_ACK_SIZE)
        return UARC_BadDecodingError;
    out->protocol_version = uarc__ld32(message + 8);
    out->receive_buffer_size = uarc__ld32(message + 12);
    out->send_buffer_size = uarc__ld32(message + 16);
    out->max_message_size = uarc__ld32(message + 20);
    out->max_chunk_count = uarc__ld32(message + 24);
    if (out->receive_buffer_size < UARC__UATCP_MIN_BUFFER_SIZE ||
        out->send_buffer_size < UARC__UATCP_MIN_BUFFER_SIZE)
        return UARC_BadTcpNotEnoughResources;
    return UARC_Good;
}

size_t uarc__uatcp_encode_err(uint8_t *out, size_t capacity, uarc_status status, const char *reason)
{
    if (capacity < UARC__UATCP_HEADER_SIZE + 8)
        return 0;
    size_t length = reason ? strlen(reason) : 0;
    if (length > UARC__UATCP_MAX_STRING_LENGTH)
        length = UARC__UATCP_MAX_STRING_LENGTH;
    if (length > capacity - (UARC__UATCP_HEADER_SIZE + 8))
        length = capacity - (UARC__UATCP_HEADER_SIZE + 8);
    size_t size = UARC__UATCP_HEADER_SIZE + 8 + length;
    uarc__uatcp_write_header(out, "ERR", 'F', (uint32_t)size);
    uarc__st32(out + 8, status);
    uarc__st32(out + 12, (uint32_t)length);
    if (length)
        memcpy(out + 16, reason, length);
    return size;
}

uarc_status uarc__uatcp_decode_err(const uint8_t *message, size_t size, uarc_status *status,
                                   const uint8_t **reason, size_t *reason_length)
{
    if (size < UARC__UATCP_HEADER_SIZE + 8)
        return UARC_BadDecodingError;
    *status = uarc__ld32(message + 8);
    int32_t length = (int32_t)uarc__ld32(message + 12);
    size_t rest = size - (UARC__UATCP_HEADER_SIZE + 8);
    if (length == -1 && rest == 0) {
        *reason = NULL;
        *reason_length = 0;
        return UARC_Good;
    }
    if (length < 0 || (size_t)length != rest || (size_t)length > UARC__UATCP_MAX_STRING_LENGTH)
        return UARC_BadDecodingError;
    *reason = message + 16;
    *reason_length = (size_t)length;
    return UARC_Good;
}
