/*
 * ReverseHello (RHE) decoding, OPC UA Part 6 §7.1.2.6.
 *
 * A pure parser: bytes in, message or error out, no I/O and no allocation. It is incremental:
 * given a prefix of a frame it answers UARC_RHE_NEED_MORE (never an error for a short prefix), and
 * the size check works from the 8-byte header alone, so a peer announcing a huge frame is refused
 * before any of its body is read.
 */
#ifndef UARC_RHE_H
#define UARC_RHE_H

#include "uarc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each encoded string in an RHE shall be less than 4096 bytes. */
#define UARC_RHE_MAX_STRING_LENGTH 4095u
/* Header (8) plus two empty-string lengths (4 + 4). */
#define UARC_RHE_MIN_MESSAGE_SIZE 16u
/* The largest RHE the specification allows: header + two strings of 4095 bytes. */
#define UARC_RHE_MAX_MESSAGE_SIZE                                                                  \
    (8u + 4u + UARC_RHE_MAX_STRING_LENGTH + 4u + UARC_RHE_MAX_STRING_LENGTH)

/*
 * A decoded RHE. The views borrow the bytes given to uarc_rhe_parse(). A null string (length -1)
 * and an empty string both decode to a view of length 0; both count as missing.
 */
typedef struct uarc_rhe {
    uarc_view server_uri;   /* the server's ApplicationUri */
    uarc_view endpoint_url; /* the URL to send back in HEL */
    uint32_t message_size;  /* bytes the frame occupies, header included */
} uarc_rhe;

typedef enum uarc_rhe_result {
    UARC_RHE_COMPLETE = 0,  /* *hello is filled; hello->message_size bytes form the frame */
    UARC_RHE_NEED_MORE = 1, /* nothing wrong so far; *needed says how many bytes are required */
    UARC_RHE_INVALID = 2,   /* malformed; *error says why */
} uarc_rhe_result;

#define UARC_RHE_DETAIL_SIZE 256

typedef struct uarc_rhe_error {
    uarc_status status;                /* which rule failed (see below) */
    char detail[UARC_RHE_DETAIL_SIZE]; /* readable; peer bytes escaped as \xHH */
} uarc_rhe_error;

/*
 * Parses the RHE at the start of `data`.
 *
 * `max_message_size` bounds the MessageSize the peer may announce; 0 means
 * UARC_RHE_MAX_MESSAGE_SIZE. Values below UARC_RHE_MIN_MESSAGE_SIZE are raised to it.
 *
 * Rules and their status codes:
 *   message type other than "RHE"           BadTcpMessageTypeInvalid
 *   chunk type other than 'F'               BadTcpMessageTypeInvalid
 *   MessageSize below 16                    BadDecodingError
 *   MessageSize above the maximum           BadTcpMessageTooLarge
 *   string length negative other than -1    BadDecodingError
 *   string running past the frame           BadDecodingError
 *   bytes left after EndpointUrl            BadDecodingError
 *   string of 4096 bytes or more            BadTcpEndpointUrlInvalid
 *   string holding a NUL byte               BadTcpEndpointUrlInvalid
 *
 * On UARC_RHE_NEED_MORE, *needed (if not NULL) is the smallest total length that can make
 * progress: 8 until the header is in, then the MessageSize. `hello` and `error` may be NULL.
 */
UARC_API uarc_rhe_result uarc_rhe_parse(const uint8_t *data, size_t length,
                                        uint32_t max_message_size, uarc_rhe *hello, size_t *needed,
                                        uarc_rhe_error *error);

/*
 * Encodes an RHE frame (used by tests and tools that play a server). Writes at most `capacity`
 * bytes to `out`, sets *written, and returns Good, or BadEncodingLimitsExceeded when a string is
 * 4096 bytes or longer or the buffer is too small. A NULL string view data encodes as null (-1).
 */
UARC_API uarc_status uarc_rhe_encode(uarc_view server_uri, uarc_view endpoint_url, uint8_t *out,
                                     size_t capacity, size_t *written);

#ifdef __cplusplus
}
#endif

#endif
