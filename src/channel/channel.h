/*
 * The secure channel over UA-TCP, as a state machine without I/O (Part 6 §6.7, §7.1).
 *
 * It owns the UA-TCP handshake (HEL/ACK/ERR) and the secure conversation (OPN Issue/Renew, MSG
 * chunking and reassembly, CLO). The caller moves bytes: it feeds what the socket received to
 * uarc__channel_receive() (or uarc__channel_receive_own()) and writes what uarc__channel_output()
 * holds. Events come back through the callbacks, always from inside one of the two receives,
 * uarc__channel_tick() or uarc__channel_send_request(). Time is passed in (monotonic ms), so tests
 * can script it.
 *
 * Internal to uarc; used by src/client only.
 */
#ifndef UARC_CHANNEL_CHANNEL_H
#define UARC_CHANNEL_CHANNEL_H

#include "uarc/budget.h"
#include "uarc/types.h"

typedef struct uarc__channel uarc__channel;

typedef enum uarc__channel_state {
    UARC__CHANNEL_IDLE,     /* created, nothing sent */
    UARC__CHANNEL_HEL_SENT, /* waiting for ACK */
    UARC__CHANNEL_OPN_SENT, /* waiting for the OpenSecureChannel response */
    UARC__CHANNEL_OPEN,     /* MSG may flow (a renewal may be in flight) */
    UARC__CHANNEL_CLOSED    /* CLO sent or the channel failed; nothing more flows */
} uarc__channel_state;

typedef struct uarc__channel_config {
    const char *endpoint_url;        /* sent in HEL (copied). Required */
    uint32_t receive_buffer_size;    /* our ReceiveBufferSize. 0: 65535; at least 8192 */
    uint32_t send_buffer_size;       /* our SendBufferSize. 0: 65535; at least 8192 */
    uint32_t max_message_size;       /* largest response we accept. 0: 16 MiB */
    uint32_t max_chunk_count;        /* most chunks per response we accept. 0: 4096 */
    uint32_t requested_lifetime_ms;  /* token lifetime asked for. 0: 600000 */
    uint32_t handshake_timeout_ms;   /* ACK and OPN each must come within. 0: 10000 */
    const char *security_policy_uri; /* NULL: http://opcfoundation.org/UA/SecurityPolicy#None;
                                        also Basic256Sha256, Aes128_Sha256_RsaOaep,
                                        Aes256_Sha256_RsaPss */
    /* For a policy other than None: the mode (Invalid: SignAndEncrypt), our certificate and
     * private key (DER) and the server's certificate (DER). Borrowed during uarc__channel_new
     * only. */
    uarc_MessageSecurityMode security_mode;
    uarc_view local_certificate;
    uarc_view local_private_key;
    uarc_view remote_certificate;
    uarc_decode_config decode; /* limits for decoding OPN responses */
    /* Charged for the receive buffer and the responses being joined (see uarc/budget.h); over
     * it, a chunk ends the channel with BadTcpNotEnoughResources and a response fails with
     * BadResponseTooLarge. NULL: none. Borrowed. */
    uarc_memory_budget *budget;
    /* Chunks answering no request we are waiting for (never sent, or already answered) beyond
     * which the channel ends with BadUnknownResponse; late answers to the last 16 requests given
     * up on (uarc__channel_forget_request) do not count. 0: 100. */
    uint32_t max_unsolicited;
    uarc_logger logger;
} uarc__channel_config;

typedef struct uarc__channel_events {
    /* The first OPN succeeded: requests may be sent. */
    void (*opened)(void *user_data);
    /* A whole response arrived (all chunks joined). `body` starts at the encoding NodeId of the
     * response type; it is valid during the call only (NULL when `length` is 0). Chunks for a
     * request id that is not awaiting a response (never sent, already answered or failed) are
     * dropped. Chunks of different requests may interleave (up to 16 being joined at once). */
    void (*message)(void *user_data, uint32_t request_id, const uint8_t *body, size_t length);
    /* One response failed without ending the channel: an abort chunk from the server (its
     * status and reason), or BadResponseTooLarge for a response over our max_message_size or
     * max_chunk_count (its later chunks are dropped). A chunk whose MessageSize exceeds our
     * receive_buffer_size is not skippable: it ends the channel with BadTcpMessageTooLarge. */
    void (*message_failed)(void *user_data, uint32_t request_id, uarc_status status,
                           const char *reason);
    /* The channel ended: ERR from the server (its status and reason), a protocol violation,
     * a handshake timeout (BadTimeout), or after CLO (Good). No event follows. Requests still
     * awaiting a response get no message_failed: the caller fails them on `closed`. */
    void (*closed)(void *user_data, uarc_status status, const char *reason);
    void *user_data;
} uarc__channel_events;

/* Returns NULL when out of memory or when the config is invalid (unknown security policy, or
 * certificates and mode the policy refuses). */
uarc__channel *uarc__channel_new(const uarc__channel_config *config,
                                 const uarc__channel_events *events);
void uarc__channel_delete(uarc__channel *channel);

uarc__channel_state uarc__channel_get_state(const uarc__channel *channel);

/* Queues HEL, and OPN Issue once ACK arrives. Only from IDLE. */
uarc_status uarc__channel_start(uarc__channel *channel, int64_t now_ms);

/* Feeds received bytes (any split: partial chunks are kept until complete). Fires events.
 * Returns Good, or the status the channel closed with. Not re-entrant: from inside a callback it
 * returns BadInvalidState. */
uarc_status uarc__channel_receive(uarc__channel *channel, const uint8_t *data, size_t length,
                                  int64_t now_ms);

/* The same for bytes the caller lets the channel change (decrypt in place) until it returns: a
 * chunk that is whole in them is handled where it is, without a copy. */
uarc_status uarc__channel_receive_own(uarc__channel *channel, uint8_t *data, size_t length,
                                      int64_t now_ms);

/* The peer closed the socket (or it failed): pending work fails, `closed` fires with `status`. */
void uarc__channel_connection_lost(uarc__channel *channel, uarc_status status, const char *reason);

/* Bytes waiting to be written to the socket: *data points at them (valid until the next call
 * into the channel). Returns their count, 0 when nothing waits. */
size_t uarc__channel_output(const uarc__channel *channel, const uint8_t **data);
/* Marks `count` bytes of the output as written. */
void uarc__channel_output_done(uarc__channel *channel, size_t count);

/*
 * Encodes `request` (a struct of `type`, whose first member is a uarc_RequestHeader the caller has
 * filled: authenticationToken, timestamp, requestHandle, timeoutHint) as a MSG message, split into
 * chunks within the server's ReceiveBufferSize, MaxMessageSize and MaxChunkCount, and queues it.
 * *request_id receives the RequestId that the matching response will carry.
 * Returns Good; BadInvalidState unless OPEN; BadRequestTooLarge when over the server's limits;
 * BadEncodingError/BadEncodingLimitsExceeded; BadOutOfMemory.
 */
uarc_status uarc__channel_send_request(uarc__channel *channel, const void *request,
                                       const uarc_type *type, uint32_t *request_id);

/* The caller gave up on a request (it timed out): its response, if it still comes, is dropped
 * without being buffered, and the channel forgets the id. */
void uarc__channel_forget_request(uarc__channel *channel, uint32_t request_id);

/* Monotonic time of the next thing the channel must do by itself (renewal at 75 % of the
 * revised lifetime but at least 500 ms after the last token arrived, a handshake deadline); -1
 * when nothing. */
int64_t uarc__channel_next_deadline(const uarc__channel *channel);
/* Does what is due at `now_ms`: sends OPN Renew, fails a handshake that took too long (or a
 * renewal unanswered after handshake_timeout_ms). Requests keep the old token until the Renew
 * response arrives; afterwards chunks with the old token are accepted until the server first
 * uses the new one, and for at most 25 % of the old token's lifetime after the new one arrived
 * (Part 4 §5.5.2.1); a chunk with the old token after that ends the channel with
 * BadSecureChannelTokenUnknown. */
void uarc__channel_tick(uarc__channel *channel, int64_t now_ms);

/* Queues CLO (when OPEN) and moves to CLOSED; the caller closes the socket once the output is
 * written. `closed` fires with Good. */
void uarc__channel_close(uarc__channel *channel);

/* Details of the negotiated connection, for reports. */
uint32_t uarc__channel_id(const uarc__channel *channel);
uint32_t uarc__channel_token_id(const uarc__channel *channel);
uint32_t uarc__channel_revised_lifetime_ms(const uarc__channel *channel);
/* The server's limits from ACK (0 before ACK). */
uint32_t uarc__channel_peer_receive_buffer_size(const uarc__channel *channel);
uint32_t uarc__channel_peer_max_message_size(const uarc__channel *channel);
uint32_t uarc__channel_peer_max_chunk_count(const uarc__channel *channel);
const char *uarc__channel_security_policy_uri(const uarc__channel *channel);
/* The peer is to finish something now: part of a message has arrived and the rest not yet (a
 * chunk cut between reads, or chunks of a message that has more), or the answer to the
 * channel's renewal is awaited. */
bool uarc__channel_awaiting(const uarc__channel *channel);
/* The channel ended because the server sent ERR. */
bool uarc__channel_ended_by_err(const uarc__channel *channel);
/* Detail of the last failure ("" when none). */
const char *uarc__channel_error(const uarc__channel *channel);

#endif
