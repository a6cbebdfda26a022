/*
 * UA-TCP framing (OPC UA Part 6 §7.1.2): the 8-byte message header and the HEL, ACK and ERR
 * bodies. Pure functions over byte buffers; no I/O, no allocation. Internal.
 */
#ifndef UARC_TRANSPORT_UATCP_H
#define UARC_TRANSPORT_UATCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/common.h"

#define UARC__UATCP_HEADER_SIZE 8u
/* Smallest ReceiveBufferSize/SendBufferSize either side may announce (Part 6 §7.1.2.3). */
#define UARC__UATCP_MIN_BUFFER_SIZE 8192u
/* Encoded EndpointUrl and Reason strings must stay below 4096 bytes. */
#define UARC__UATCP_MAX_STRING_LENGTH 4095u
/* ACK body: five UInt32 values. */
#define UARC__UATCP_ACK_SIZE (UARC__UATCP_HEADER_SIZE + 20u)

typedef enum uarc__uatcp_type {
    UARC__UATCP_UNKNOWN = 0,
    UARC__UATCP_HEL,
    UARC__UATCP_ACK,
    UARC__UATCP_ERR,
    UARC__UATCP_RHE,
    UARC__UATCP_OPN,
    UARC__UATCP_MSG,
    UARC__UATCP_CLO
} uarc__uatcp_type;

typedef struct uarc__uatcp_header {
    uarc__uatcp_type type;
    uint8_t chunk_type; /* 'F', 'C' or 'A' */
    uint32_t size;      /* whole message including the header */
} uarc__uatcp_header;

/*
 * Parses the first 8 bytes of a message. Returns Good; BadTcpMessageTypeInvalid for an unknown
 * type or a chunk byte other than F/C/A (C and A only for MSG); BadDecodingError when the size is
 * below the header itself; BadTcpMessageTooLarge when it is above `max_size`. Size checks come
 * before any body is read.
 */
uarc_status uarc__uatcp_parse_header(const uint8_t header[UARC__UATCP_HEADER_SIZE],
                                     uint32_t max_size, uarc__uatcp_header *out);

/* Writes a header: `type` is three ASCII letters ("MSG"), `chunk_type` 'F', 'C' or 'A'. */
void uarc__uatcp_write_header(uint8_t *out, const char *type, uint8_t chunk_type, uint32_t size);

/* The limits exchanged in HEL and ACK. */
typedef struct uarc__uatcp_limits {
    uint32_t protocol_version;
    uint32_t receive_buffer_size;
    uint32_t send_buffer_size;
    uint32_t max_message_size; /* 0: no limit */
    uint32_t max_chunk_count;  /* 0: no limit */
} uarc__uatcp_limits;

/*
 * Encodes HEL into `out`. Returns the message size, or 0 when `capacity` is too small or the URL
 * is 4096 bytes or longer.
 */
size_t uarc__uatcp_encode_hel(uint8_t *out, size_t capacity, const uarc__uatcp_limits *limits,
                              const char *endpoint_url, size_t url_length);

/*
 * Decodes a whole ACK message (header included, `size` bytes). Returns Good; BadDecodingError when
 * `size` is not exactly that of an ACK; BadTcpNotEnoughResources when a buffer size is below 8192.
 */
uarc_status uarc__uatcp_decode_ack(const uint8_t *message, size_t size, uarc__uatcp_limits *out);

/*
 * Encodes ERR into `out`: the reason is cut to fit both the buffer and the 4095-byte limit; NULL
 * is an empty reason. Returns the message size, 0 when `capacity` is below 16.
 */
size_t uarc__uatcp_encode_err(uint8_t *out, size_t capacity, uarc_status status,
                              const char *reason);

/*
 * Decodes a whole ERR message (header included). On Good, *status is the peer's error and
 * *reason and *reason_length view its reason inside `message` (NULL/0 for a null string).
 * Returns BadDecodingError when the layout is malformed or the reason is 4096 bytes or longer.
 */
uarc_status uarc__uatcp_decode_err(const uint8_t *message, size_t size, uarc_status *status,
                                   const uint8_t **reason, size_t *reason_length);

#endif
