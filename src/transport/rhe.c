/* ReverseHello parser: a cursor over caller-owned bytes, a bounds check before every read. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uarc/rhe.h"
#include "core/endian.h"
#include "core/log.h"
#include "transport/uatcp.h"

#define HEADER_SIZE UARC__UATCP_HEADER_SIZE

static uarc_rhe_result fail(uarc_rhe_error *error, uarc_status status, const char *fmt, ...)
    UARC__PRINTF(3, 4);

static uarc_rhe_result fail(uarc_rhe_error *error, uarc_status status, const char *fmt, ...)
{
    if (error) {
        error->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error->detail, sizeof error->detail, fmt, ap);
        va_end(ap);
    }
    return UARC_RHE_INVALID;
}

/* Reads one String field at *pos within [*pos, end). The frame is complete when this runs. */
static uarc_rhe_result read_string(const uint8_t *data, size_t *pos, size_t end, const char *field,
                                   uarc_view *out, uarc_rhe_error *error)
{
    if (end - *pos < 4)
        return fail(error, UARC_BadDecodingError,
                    "%s: length field runs past the end of the frame (offset %zu, frame size %zu)",
                    field, *pos, end);
    int32_t len = (int32_t)uarc__ld32(data + *pos);
    *pos += 4;
    if (len == -1 || len == 0) {
        *out = (uarc_view){NULL, 0};
        return UARC_RHE_COMPLETE;
    }
    if (len < 0)
        return fail(error, UARC_BadDecodingError, "%s: invalid string length %d", field, len);
    if ((uint32_t)len > UARC_RHE_MAX_STRING_LENGTH)
        return fail(error, UARC_BadTcpEndpointUrlInvalid,
                    "%s: %d bytes long; the limit is %u (Part 6 7.1.2.6)", field, len,
                    UARC_RHE_MAX_STRING_LENGTH);
    if ((size_t)len > end - *pos)
        return fail(error, UARC_BadDecodingError,
                    "%s: string of %d bytes runs past the end of the frame (%zu bytes left)", field,
                    len, end - *pos);
    const uint8_t *s = data + *pos;
    const uint8_t *nul = memchr(s, 0, (size_t)len);
    if (nul) {
        char shown[96];
        return fail(error, UARC_BadTcpEndpointUrlInvalid, "%s: NUL byte at offset %td in \"%s\"",
                    field, nul - s, uarc_escape_bytes(shown, sizeof shown, s, (size_t)len));
    }
    *out = (uarc_view){s, (size_t)len};
    *pos += (size_t)len;
    return UARC_RHE_COMPLETE;
}

UARC_API uarc_rhe_result uarc_rhe_parse(const uint8_t *data, size_t length,
                                        uint32_t max_message_size, uarc_rhe *hello, size_t *needed,
                                        uarc_rhe_error *error)
{
    if (max_message_size == 0)
        max_message_size = UARC_RHE_MAX_MESSAGE_SIZE;
    if (max_message_size < UARC_RHE_MIN_MESSAGE_SIZE)
        max_message_size = UARC_RHE_MIN_MESSAGE_SIZE;

    if (length == 0) {
        if (needed)
            *needed = HEADER_SIZE;
        return UARC_RHE_NEED_MORE;
    }
    /* Judge whatever part of the header has arrived, so garbage is refused at its first byte. */
    size_t have = length < 3 ? length : 3;
    if (memcmp(data, "RHE", have) != 0) {
        char shown[24];
        return fail(error, UARC_BadTcpMessageTypeInvalid,
                    "expected message type \"RHE\", got \"%s\"",
                    uarc_escape_bytes(shown, sizeof shown, data, have));
    }
    if (length >= 4 && data[3] != 'F') {
        char shown[8];
        return fail(error, UARC_BadTcpMessageTypeInvalid, "expected chunk type 'F', got '%s'",
                    uarc_escape_bytes(shown, sizeof shown, data + 3, 1));
    }
    if (length < HEADER_SIZE) {
        if (needed)
            *needed = HEADER_SIZE;
        return UARC_RHE_NEED_MORE;
    }
    uint32_t size = uarc__ld32(data + 4);
    if (size < UARC_RHE_MIN_MESSAGE_SIZE)
        return fail(error, UARC_BadDecodingError,
                    "MessageSize %u is below the smallest RHE (%u bytes)", size,
                    UARC_RHE_MIN_MESSAGE_SIZE);
    if (size > max_message_size)
        return fail(error, UARC_BadTcpMessageTooLarge, "MessageSize %u exceeds the limit of %u",
                    size, max_message_size);
    if (length < size) {
        if (needed)
            *needed = size;
        return UARC_RHE_NEED_MORE;
    }

    uarc_rhe msg = {.message_size = size};
    size_t pos = HEADER_SIZE;
    uarc_rhe_result r = read_string(data, &pos, size, "ServerUri", &msg.server_uri, error);
    if (r != UARC_RHE_COMPLETE)
        return r;
    r = read_string(data, &pos, size, "EndpointUrl", &msg.endpoint_url, error);
    if (r != UARC_RHE_COMPLETE)
        return r;
    if (pos != size)
        return fail(error, UARC_BadDecodingError,
                    "%zu bytes left after EndpointUrl (MessageSize %u)", size - pos, size);
    if (hello)
        *hello = msg;
    return UARC_RHE_COMPLETE;
}

static void put_string(uint8_t *out, size_t *pos, uarc_view s)
{
    uarc__st32(out + *pos, s.data ? (uint32_t)s.length : UINT32_MAX);
    *pos += 4;
    if (s.length) {
        memcpy(out + *pos, s.data, s.length);
        *pos += s.length;
    }
}

UARC_API uarc_status uarc_rhe_encode(uarc_view server_uri, uarc_view endpoint_url, uint8_t *out,
                                     size_t capacity, size_t *written)
{
    if (server_uri.length > UARC_RHE_MAX_STRING_LENGTH ||
        endpoint_url.length > UARC_RHE_MAX_STRING_LENGTH)
        return UARC_BadEncodingLimitsExceeded;
    size_t size = HEADER_SIZE + 8 + server_uri.length + endpoint_url.length;
    if (size > capacity)
        return UARC_BadEncodingLimitsExceeded;
    memcpy(out, "RHEF", 4);
    uarc__st32(out + 4, (uint32_t)size);
    size_t pos = HEADER_SIZE;
    put_string(out, &pos, server_uri);
    put_string(out, &pos, endpoint_url);
    if (written)
        *written = pos;
    return UARC_Good;
}
