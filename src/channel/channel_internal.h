/* The secure channel's state, shared by its files (channel.c: HEL/ACK, sending, the public
 * functions; channel_open.c: the OPN exchange that issues and renews tokens; channel_msg.c: MSG
 * chunks joined into responses). Internal to src/channel. */
#ifndef UARC_CHANNEL_CHANNEL_INTERNAL_H
#define UARC_CHANNEL_CHANNEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel/channel.h"
#include "channel/security.h"
#include "core/budget.h"
#include "core/log.h"
#include "transport/uatcp.h"

#define DEFAULT_BUFFER_SIZE          65535u
#define DEFAULT_MAX_MESSAGE_SIZE     (16u * 1024 * 1024)
#define DEFAULT_MAX_CHUNK_COUNT      4096u
#define DEFAULT_LIFETIME_MS          600000u
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
/* A renewal is never due sooner than this after the token it replaces arrived, whatever
 * lifetime the server revised: a server granting a few ms would otherwise have the client renew
 * (and, with RSA policies, sign and encrypt) in a tight loop. Lifetimes of at least 667 ms keep
 * their 75 %. */
#define MIN_RENEW_DELAY_MS 500u
/* Responses being joined at once (chunks of different requests may interleave). */
#define MAX_ASSEMBLIES 16
/* Part 6 §6.7.2.4: sequence numbers wrap only after this value, to a value below 1024. */
#define SEQUENCE_WRAP_AFTER (UINT32_MAX - 1024u)
#define SEQUENCE_WRAP_LIMIT 1024u

/* Chunks answering no request of ours before the channel is dropped. */
#define DEFAULT_MAX_UNSOLICITED 100u
/* Ids of requests given up on that are remembered, so that their late answers are not counted
 * as unsolicited. */
#define FORGOTTEN_IDS 16

typedef struct assembly {
    uint32_t request_id;
    uint32_t chunks;
    uint8_t *data;
    size_t length;
    size_t capacity;
} assembly;

typedef struct token {
    bool valid;
    uint32_t id;
    void *keys;
    uint32_t lifetime; /* revised lifetime, ms */
    int64_t issued;    /* when we took it into use, ms */
} token;

struct uarc__channel {
    uarc__channel_state state;
    uarc__channel_events events;
    uarc_logger logger;
    uarc_decode_config decode;
    char *endpoint_url;
    uint32_t receive_buffer_size;
    uint32_t send_buffer_size;
    uint32_t max_message_size;
    uint32_t max_chunk_count;
    uint32_t requested_lifetime;
    uint32_t handshake_timeout;

    const uarc__security_policy *policy;
    void *security;

    uarc__uatcp_limits peer;
    uint32_t send_chunk_size;

    uint32_t channel_id;
    token current;
    /* the token before the last renewal, until the server stops using it, and no longer than
     * previous_until (the end of the overlap) */
    token previous;
    int64_t previous_until;
    uint32_t revised_lifetime;
    bool short_lifetime_logged; /* the MIN_RENEW_DELAY_MS warning, once per channel */
    uint8_t *client_nonce;
    size_t client_nonce_length;

    uint32_t send_sequence;
    uint32_t receive_sequence;
    bool receive_sequence_started;
    uint32_t next_request_id;
    uint32_t opn_request_id;
    bool renewing;
    int64_t deadline; /* handshake or renewal response, -1 none */
    int64_t renew_at; /* -1 none */

    uint32_t *outstanding; /* request ids awaiting a response */
    size_t outstanding_count;
    size_t outstanding_capacity;
    assembly assemblies[MAX_ASSEMBLIES];
    size_t assembly_count;
    size_t assembly_bytes;
    uarc_memory_budget *budget; /* charged for rx_capacity and every assembly's capacity */
    uint32_t max_unsolicited;
    uint32_t unsolicited;              /* chunks for requests we never sent or already had */
    uint32_t forgotten[FORGOTTEN_IDS]; /* requests given up on: late answers are not counted */
    size_t forgotten_next;
    bool err_received;

    uint8_t *rx;
    size_t rx_capacity;
    size_t rx_fill;
    uint32_t rx_size; /* size of the message being received; 0 while its header is incomplete */

    uint8_t *out;
    size_t out_pos;
    size_t out_len;
    size_t out_capacity;

    uarc_status close_status;
    bool closed_fired;
    bool receiving; /* inside a receive: rx and assemblies may be in use */
    char error[256];
};

/* Fails the channel with `status` and a detail (printf format): closed, the reason kept. */
void uarc__ch_fail(uarc__channel *ch, uarc_status status, const char *fmt, ...) UARC__PRINTF(3, 4);
void uarc__ch_free_assembly(uarc__channel *ch, size_t index);
/* Whether `sequence` is the next one expected (wrap-aware); fails the channel if not. */
bool uarc__ch_check_sequence(uarc__channel *ch, uint32_t sequence);
/* Forgets the token before the last renewal. */
void uarc__ch_drop_previous(uarc__channel *ch);
/* One MSG chunk (whole message in `chunk`): opened, checked, joined, delivered. */
void uarc__ch_handle_msg(uarc__channel *ch, uint8_t *chunk, size_t size, int64_t now_ms);

/* The next sequence number and request id to send (Part 6 wrap rules; request ids skip 0). */
uint32_t uarc__ch_next_sequence(uarc__channel *ch);
uint32_t uarc__ch_next_request_id(uarc__channel *ch);
/* Makes room for `extra` more bytes of output; false when out of memory. */
bool uarc__ch_reserve_output(uarc__channel *ch, size_t extra);
/* The encoding NodeId of `type` followed by the encoded value, in a new buffer (*out, freed by
 * the caller). */
uarc_status uarc__ch_encode_body(const void *value, const uarc_type *type, uint8_t **out,
                                 size_t *length);

/* Wipes and frees the client nonce of the last OPN request. */
void uarc__ch_drop_client_nonce(uarc__channel *ch);
/* Queues an OPN request (Issue or Renew) with a new client nonce and sets the response
 * deadline. Nothing is queued on failure. */
uarc_status uarc__ch_queue_opn(uarc__channel *ch, uarc_SecurityTokenRequestType request_type,
                               int64_t now_ms);
/* One OPN chunk (whole message in `chunk`): opened, checked, and its token taken into use; the
 * channel is failed when it does not pass. */
void uarc__ch_handle_opn(uarc__channel *ch, uint8_t *chunk, size_t size, int64_t now_ms);

#endif
