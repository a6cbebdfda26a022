/* The secure channel: the HEL/ACK handshake, received bytes cut into messages and dispatched,
 * MSG and CLO chunks sent, timers, and the public functions of channel/channel.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "channel/channel.h"
#include "channel/channel_internal.h"
#include "channel/chunk.h"
#include "channel/crypto.h"
#include "channel/security.h"
#include "core/alloc.h"
#include "core/budget.h"
#include "core/log.h"
#include "core/endian.h"
#include "transport/uatcp.h"

/* ---- small helpers ----------------------------------------------------------------------- */

static void set_error(uarc__channel *ch, const char *fmt, va_list ap) UARC__PRINTF(2, 0);
static void set_error(uarc__channel *ch, const char *fmt, va_list ap)
{
    vsnprintf(ch->error, sizeof ch->error, fmt, ap);
}

void uarc__ch_free_assembly(uarc__channel *ch, size_t index)
{
    ch->assembly_bytes -= ch->assemblies[index].length;
    uarc__budget_release(ch->budget, ch->assemblies[index].capacity);
    uarc__free(ch->assemblies[index].data);
    ch->assemblies[index] = ch->assemblies[--ch->assembly_count];
}

static void free_rx(uarc__channel *ch)
{
    uarc__free(ch->rx);
    uarc__budget_release(ch->budget, ch->rx_capacity);
    ch->rx = NULL;
    ch->rx_capacity = ch->rx_fill = 0;
    ch->rx_size = 0;
}

static void release_receive_state(uarc__channel *ch)
{
    if (ch->receiving)
        return;
    while (ch->assembly_count)
        uarc__ch_free_assembly(ch, 0);
    free_rx(ch);
}

static void fire_closed(uarc__channel *ch)
{
    if (ch->closed_fired)
        return;
    ch->closed_fired = true;
    if (ch->events.closed)
        ch->events.closed(ch->events.user_data, ch->close_status, ch->error);
}

/* Ends the channel on a failure; `closed` fires once. The receive buffers are kept until the
 * receive loop returns, because the caller's stack may still be reading them. */
void uarc__ch_fail(uarc__channel *ch, uarc_status status, const char *fmt, ...)
{
    if (ch->state == UARC__CHANNEL_CLOSED)
        return;
    va_list ap;
    va_start(ap, fmt);
    set_error(ch, fmt, ap);
    va_end(ap);
    ch->state = UARC__CHANNEL_CLOSED;
    ch->close_status = status;
    ch->deadline = ch->renew_at = -1;
    uarc__log(&ch->logger, UARC_LOG_WARNING, "channel", "closed: %s (%s)", ch->error,
              uarc_status_name(status));
    fire_closed(ch);
}

/* Forgets the token before the last renewal and wipes its keys. */
void uarc__ch_drop_previous(uarc__channel *ch)
{
    if (ch->previous.valid)
        ch->policy->keys_delete(ch->previous.keys);
    ch->previous = (token){0};
}

uint32_t uarc__ch_next_sequence(uarc__channel *ch)
{
    uint32_t s = ch->send_sequence;
    ch->send_sequence = s > SEQUENCE_WRAP_AFTER ? 1 : s + 1;
    return s;
}

uint32_t uarc__ch_next_request_id(uarc__channel *ch)
{
    uint32_t id = ch->next_request_id++;
    if (ch->next_request_id == 0)
        ch->next_request_id = 1;
    return id;
}

/* The output buffer's first capacity, doubled as needed: a Publish or a short Read fits, and an
 * idle session of a fleet keeps half a KiB rather than a page. */
#define OUTPUT_FIRST ((size_t)512)

bool uarc__ch_reserve_output(uarc__channel *ch, size_t extra)
{
    if (ch->out_capacity - ch->out_len >= extra)
        return true;
    if (ch->out_pos) {
        memmove(ch->out, ch->out + ch->out_pos, ch->out_len - ch->out_pos);
        ch->out_len -= ch->out_pos;
        ch->out_pos = 0;
        if (ch->out_capacity - ch->out_len >= extra)
            return true;
    }
    if (extra > SIZE_MAX / 2 - ch->out_len)
        return false;
    size_t capacity = ch->out_capacity ? ch->out_capacity : OUTPUT_FIRST;
    while (capacity - ch->out_len < extra)
        capacity *= 2;
    uint8_t *p = uarc__realloc(ch->out, capacity);
    if (!p)
        return false;
    ch->out = p;
    ch->out_capacity = capacity;
    return true;
}

uarc_status uarc__ch_encode_body(const void *value, const uarc_type *type, uint8_t **out,
                                 size_t *length)
{
    uint8_t *payload;
    size_t payload_length;
    uarc_status s = uarc_encode_alloc(value, type, &payload, &payload_length);
    if (s != UARC_Good)
        return s;
    uarc_nodeid id = uarc_nodeid_numeric(0, type->binary_encoding_id);
    uint8_t prefix[16];
    size_t prefix_length = 0;
    s = uarc_encode(&id, UARC_T(NodeId), prefix, sizeof prefix, &prefix_length);
    if (s == UARC_Good && payload_length > SIZE_MAX - prefix_length)
        s = UARC_BadEncodingLimitsExceeded;
    uint8_t *body = s == UARC_Good ? uarc__malloc(prefix_length + payload_length) : NULL;
    if (s == UARC_Good && !body)
        s = UARC_BadOutOfMemory;
    if (s == UARC_Good) {
        memcpy(body, prefix, prefix_length);
        memcpy(body + prefix_length, payload, payload_length);
        *out = body;
        *length = prefix_length + payload_length;
    }
    /* a request may carry a password or a nonce */
    OPENSSL_cleanse(payload, payload_length);
    uarc_free(payload);
    return s;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* More than any symmetric cipher block (AES: 16 bytes) a short last chunk may need as padding
 * beyond what a full chunk's overhead holds. */
#define LAST_CHUNK_PADDING 64
/* Output buffer capacity kept once everything queued has been sent. */
#define OUTPUT_KEPT ((size_t)16 * 1024)
/* A receive buffer that a chunk cut between two socket reads grew beyond this is freed once that
 * chunk is handled: a session that once got a big response does not hold its size until it
 * closes. (Bytes the application feeds are all copied into it, so there it is kept.) */
#define RX_KEPT ((size_t)16 * 1024)

static void symmetric_chunk(uarc__channel *ch, uarc__uatcp_type type, uarc__chunk_info *info,
                            uarc__chunk_security *security)
{
    memset(info, 0, sizeof *info);
    info->type = type;
    info->channel_id = ch->channel_id;
    info->token_id = ch->current.id;
    *security = (uarc__chunk_security){ch->policy, ch->security, ch->current.keys};
}

/*
 * Splits `body` into MSG (or one CLO) chunks within the server's ReceiveBufferSize and queues
 * them. Checks the server's MaxMessageSize and MaxChunkCount first. Nothing is queued on failure.
 */
static uarc_status queue_message(uarc__channel *ch, uarc__uatcp_type type, const uint8_t *body,
                                 size_t length, uint32_t request_id)
{
    uarc__chunk_info info;
    uarc__chunk_security security;
    symmetric_chunk(ch, type, &info, &security);
    size_t max_body = uarc__chunk_max_body(&security, &info, ch->send_chunk_size);
    if (max_body == 0)
        return UARC_BadEncodingLimitsExceeded;
    size_t chunks = length == 0 ? 1 : (length + max_body - 1) / max_body;
    if ((ch->peer.max_message_size && length > ch->peer.max_message_size) ||
        (ch->peer.max_chunk_count && chunks > ch->peer.max_chunk_count) ||
        (type != UARC__UATCP_MSG && chunks > 1))
        return UARC_BadRequestTooLarge;
    /* Room for whole chunks but the last, which takes what its body needs: the overhead of a
     * full chunk (headers, signature, padding-size bytes), a cipher block of padding more at
     * most, and its body. A request of 100 bytes takes some 200, not a chunk of 64 KiB. */
    size_t last = length - (chunks - 1) * max_body;
    size_t last_size = ch->send_chunk_size - max_body + LAST_CHUNK_PADDING + last;
    if (last_size > ch->send_chunk_size)
        last_size = ch->send_chunk_size;
    if (chunks - 1 > (SIZE_MAX - last_size) / ch->send_chunk_size ||
        !uarc__ch_reserve_output(ch, (chunks - 1) * ch->send_chunk_size + last_size))
        return UARC_BadOutOfMemory;

    size_t saved_len = ch->out_len;
    uint32_t saved_sequence = ch->send_sequence;
    size_t offset = 0;
    for (size_t i = 0; i < chunks; i++) {
        size_t piece = length - offset < max_body ? length - offset : max_body;
        info.chunk_type = i + 1 == chunks ? 'F' : 'C';
        info.sequence_number = uarc__ch_next_sequence(ch);
        info.request_id = request_id;
        info.body = body + offset;
        info.body_length = piece;
        size_t size;
        uarc_status s = uarc__chunk_encode(&security, &info, ch->out + ch->out_len,
                                           ch->out_capacity - ch->out_len, &size);
        if (s != UARC_Good) {
            ch->out_len = saved_len;
            ch->send_sequence = saved_sequence;
            return s;
        }
        ch->out_len += size;
        offset += piece;
    }
    return UARC_Good;
}

/* ---- receiving: handshake ------------------------------------------------------------------ */

static void handle_err(uarc__channel *ch, const uint8_t *message, size_t size)
{
    uarc_status status;
    const uint8_t *reason;
    size_t reason_length;
    if (uarc__uatcp_decode_err(message, size, &status, &reason, &reason_length) != UARC_Good) {
        uarc__ch_fail(ch, UARC_BadDecodingError, "malformed ERR message");
        return;
    }
    if (!uarc_status_is_bad(status))
        status = UARC_BadUnexpectedError; /* an ERR always ends the connection as a failure */
    ch->err_received = true;
    uarc__ch_fail(ch, status, "%.*s", (int)(reason_length < 255 ? reason_length : 255),
                  reason ? (const char *)reason : "");
}

static void handle_ack(uarc__channel *ch, const uint8_t *message, size_t size, int64_t now_ms)
{
    uarc_status s = uarc__uatcp_decode_ack(message, size, &ch->peer);
    if (s != UARC_Good) {
        uarc__ch_fail(ch, s, "invalid ACK (size %zu, buffers %u/%u)", size,
                      ch->peer.receive_buffer_size, ch->peer.send_buffer_size);
        return;
    }
    ch->send_chunk_size = ch->send_buffer_size < ch->peer.receive_buffer_size
                              ? ch->send_buffer_size
                              : ch->peer.receive_buffer_size;
    uarc__log(&ch->logger, UARC_LOG_DEBUG, "channel",
              "ACK: receive %u, send %u, max message %u, max chunks %u",
              ch->peer.receive_buffer_size, ch->peer.send_buffer_size, ch->peer.max_message_size,
              ch->peer.max_chunk_count);
    ch->state = UARC__CHANNEL_OPN_SENT;
    s = uarc__ch_queue_opn(ch, UARC_SecurityTokenRequestType_Issue, now_ms);
    if (s != UARC_Good)
        uarc__ch_fail(ch, s, "cannot encode OPN");
}

/* Part 6 §6.7.2.4: +1 per chunk, wrapping only from above 4294966271 to below 1024. */
bool uarc__ch_check_sequence(uarc__channel *ch, uint32_t sequence)
{
    if (!ch->receive_sequence_started) {
        ch->receive_sequence_started = true;
        ch->receive_sequence = sequence;
        return true;
    }
    uint32_t last = ch->receive_sequence;
    bool ok = (last != UINT32_MAX && sequence == last + 1) ||
              (last > SEQUENCE_WRAP_AFTER && sequence < SEQUENCE_WRAP_LIMIT);
    if (ok)
        ch->receive_sequence = sequence;
    else
        uarc__ch_fail(ch, UARC_BadSequenceNumberInvalid, "sequence number %u after %u", sequence,
                      last);
    return ok;
}

/* Which message types the current state accepts (Part 6 §7.1.2, §6.7). */
static bool type_allowed(const uarc__channel *ch, uarc__uatcp_type type)
{
    if (type == UARC__UATCP_ERR)
        return true;
    if (ch->state == UARC__CHANNEL_HEL_SENT)
        return type == UARC__UATCP_ACK;
    return type == UARC__UATCP_OPN || type == UARC__UATCP_MSG || type == UARC__UATCP_CLO;
}

static void handle_message(uarc__channel *ch, uint8_t *message, size_t size, int64_t now_ms)
{
    uarc__uatcp_header h;
    (void)uarc__uatcp_parse_header(message, ch->receive_buffer_size, &h); /* checked before */
    switch (h.type) {
    case UARC__UATCP_ERR:
        handle_err(ch, message, size);
        break;
    case UARC__UATCP_ACK:
        handle_ack(ch, message, size, now_ms);
        break;
    case UARC__UATCP_OPN:
        uarc__ch_handle_opn(ch, message, size, now_ms);
        break;
    case UARC__UATCP_MSG:
        uarc__ch_handle_msg(ch, message, size, now_ms);
        break;
    default:
        uarc__ch_fail(ch, UARC_BadSecureChannelClosed,
                      "the server closed the secure channel (CLO)");
        break;
    }
}

/* Checks a header: a type this state allows, a size within our ReceiveBufferSize. A refused one
 * fails the channel. */
static bool header_accepted(uarc__channel *ch, const uint8_t *header, uarc__uatcp_header *h)
{
    uarc_status s = uarc__uatcp_parse_header(header, ch->receive_buffer_size, h);
    if (s == UARC_Good && !type_allowed(ch, h->type))
        s = UARC_BadTcpMessageTypeInvalid;
    if (s != UARC_Good) {
        uarc__ch_fail(ch, s, "message %.3s%c of %u bytes refused", (const char *)header,
                      (header[3] >= 0x20 && header[3] < 0x7F) ? header[3] : '?',
                      uarc__ld32(header + 4));
        return false;
    }
    return true;
}

/* Reads the 8-byte header in the receive buffer and makes room for the body: the size the peer
 * announces is bounded by our ReceiveBufferSize before anything is allocated. */
static bool begin_message(uarc__channel *ch)
{
    uarc__uatcp_header h;
    if (!header_accepted(ch, ch->rx, &h))
        return false;
    if (h.size > ch->rx_capacity) {
        if (!uarc__budget_charge(ch->budget, h.size - ch->rx_capacity)) {
            uarc__ch_fail(ch, UARC_BadTcpNotEnoughResources,
                          "a %u-byte chunk exceeds the memory budget (%zu of %zu bytes in use)",
                          h.size, uarc_memory_budget_used(ch->budget),
                          uarc_memory_budget_limit(ch->budget));
            return false;
        }
        uint8_t *p = uarc__realloc(ch->rx, h.size);
        if (!p) {
            uarc__budget_release(ch->budget, h.size - ch->rx_capacity);
            uarc__ch_fail(ch, UARC_BadOutOfMemory, "out of memory");
            return false;
        }
        ch->rx = p;
        ch->rx_capacity = h.size;
    }
    ch->rx_size = h.size;
    return true;
}

/* ---- public functions -------------------------------------------------------------------- */

uarc__channel *uarc__channel_new(const uarc__channel_config *config,
                                 const uarc__channel_events *events)
{
    if (!config || !config->endpoint_url ||
        strlen(config->endpoint_url) > UARC__UATCP_MAX_STRING_LENGTH ||
        (config->receive_buffer_size &&
         config->receive_buffer_size < UARC__UATCP_MIN_BUFFER_SIZE) ||
        (config->send_buffer_size && config->send_buffer_size < UARC__UATCP_MIN_BUFFER_SIZE))
        return NULL;
    const uarc__security_policy *policy = uarc__security_policy_find(config->security_policy_uri);
    if (!policy)
        return NULL;
    uarc__channel *ch = uarc__calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->endpoint_url = uarc__strndup(config->endpoint_url, strlen(config->endpoint_url));
    uarc__security_config security = {config->security_mode, config->local_certificate,
                                      config->local_private_key, config->remote_certificate, false};
    if (!ch->endpoint_url || policy->context_new(&security, &ch->security) != UARC_Good) {
        uarc__free(ch->endpoint_url);
        uarc__free(ch);
        return NULL;
    }
    ch->policy = policy;
    if (events)
        ch->events = *events;
    ch->logger = config->logger;
    ch->decode = config->decode;
    ch->receive_buffer_size =
        config->receive_buffer_size ? config->receive_buffer_size : DEFAULT_BUFFER_SIZE;
    ch->send_buffer_size =
        config->send_buffer_size ? config->send_buffer_size : DEFAULT_BUFFER_SIZE;
    ch->max_message_size =
        config->max_message_size ? config->max_message_size : DEFAULT_MAX_MESSAGE_SIZE;
    ch->max_chunk_count =
        config->max_chunk_count ? config->max_chunk_count : DEFAULT_MAX_CHUNK_COUNT;
    ch->budget = config->budget;
    ch->max_unsolicited =
        config->max_unsolicited ? config->max_unsolicited : DEFAULT_MAX_UNSOLICITED;
    ch->requested_lifetime =
        config->requested_lifetime_ms ? config->requested_lifetime_ms : DEFAULT_LIFETIME_MS;
    ch->handshake_timeout =
        config->handshake_timeout_ms ? config->handshake_timeout_ms : DEFAULT_HANDSHAKE_TIMEOUT_MS;
    ch->state = UARC__CHANNEL_IDLE;
    ch->send_sequence = 1;
    ch->next_request_id = 1;
    ch->deadline = ch->renew_at = -1;
    return ch;
}

void uarc__channel_delete(uarc__channel *ch)
{
    if (!ch)
        return;
    if (ch->current.valid)
        ch->policy->keys_delete(ch->current.keys);
    uarc__ch_drop_previous(ch);
    ch->policy->context_delete(ch->security);
    ch->receiving = false;
    release_receive_state(ch);
    uarc__ch_drop_client_nonce(ch);
    uarc__free(ch->outstanding);
    uarc__free(ch->out);
    uarc__free(ch->endpoint_url);
    uarc__free(ch);
}

uarc__channel_state uarc__channel_get_state(const uarc__channel *ch)
{
    return ch->state;
}

uarc_status uarc__channel_start(uarc__channel *ch, int64_t now_ms)
{
    if (ch->state != UARC__CHANNEL_IDLE)
        return UARC_BadInvalidState;
    uarc__uatcp_limits limits = {0, ch->receive_buffer_size, ch->send_buffer_size,
                                 ch->max_message_size, ch->max_chunk_count};
    size_t url_length = strlen(ch->endpoint_url);
    if (!uarc__ch_reserve_output(ch, UARC__UATCP_HEADER_SIZE + 24 + url_length))
        return UARC_BadOutOfMemory;
    ch->out_len += uarc__uatcp_encode_hel(ch->out + ch->out_len, ch->out_capacity - ch->out_len,
                                          &limits, ch->endpoint_url, url_length);
    ch->state = UARC__CHANNEL_HEL_SENT;
    ch->deadline = now_ms + ch->handshake_timeout;
    return UARC_Good;
}

/* `own` is `data` when the caller lets the channel work on its bytes in place: a chunk that is
 * whole in them is handled there, without a copy into the receive buffer. */
static uarc_status receive(uarc__channel *ch, uint8_t *own, const uint8_t *data, size_t length,
                           int64_t now_ms)
{
    if (ch->state == UARC__CHANNEL_IDLE)
        return UARC_BadInvalidState;
    if (ch->receiving)
        return UARC_BadInvalidState; /* not from inside a callback */
    ch->receiving = true;
    while (length && ch->state != UARC__CHANNEL_CLOSED) {
        uarc__uatcp_header h;
        if (own && !ch->rx_fill && length >= UARC__UATCP_HEADER_SIZE) {
            if (!header_accepted(ch, own, &h))
                break;
            if (h.size <= length) {
                handle_message(ch, own, h.size, now_ms);
                own += h.size;
                data += h.size;
                length -= h.size;
                continue;
            }
        }
        if (!ch->rx) {
            if (!uarc__budget_charge(ch->budget, UARC__UATCP_HEADER_SIZE)) {
                uarc__ch_fail(ch, UARC_BadTcpNotEnoughResources, "the memory budget is exhausted");
                break;
            }
            ch->rx = uarc__malloc(UARC__UATCP_HEADER_SIZE);
            if (!ch->rx) {
                uarc__budget_release(ch->budget, UARC__UATCP_HEADER_SIZE);
                uarc__ch_fail(ch, UARC_BadOutOfMemory, "out of memory");
                break;
            }
            ch->rx_capacity = UARC__UATCP_HEADER_SIZE;
        }
        size_t want =
            ch->rx_size ? ch->rx_size - ch->rx_fill : UARC__UATCP_HEADER_SIZE - ch->rx_fill;
        size_t n = length < want ? length : want;
        memcpy(ch->rx + ch->rx_fill, data, n);
        ch->rx_fill += n;
        data += n;
        length -= n;
        if (own)
            own += n;
        if (!ch->rx_size) {
            if (ch->rx_fill < UARC__UATCP_HEADER_SIZE || !begin_message(ch))
                continue;
        }
        if (ch->rx_fill == ch->rx_size) {
            size_t size = ch->rx_size;
            ch->rx_fill = 0;
            ch->rx_size = 0;
            handle_message(ch, ch->rx, size, now_ms);
        }
    }
    if (own && !ch->rx_fill && ch->rx_capacity > RX_KEPT)
        free_rx(ch);
    ch->receiving = false;
    if (ch->state == UARC__CHANNEL_CLOSED) {
        release_receive_state(ch);
        return ch->close_status;
    }
    return UARC_Good;
}

uarc_status uarc__channel_receive(uarc__channel *ch, const uint8_t *data, size_t length,
                                  int64_t now_ms)
{
    return receive(ch, NULL, data, length, now_ms);
}

uarc_status uarc__channel_receive_own(uarc__channel *ch, uint8_t *data, size_t length,
                                      int64_t now_ms)
{
    return receive(ch, data, data, length, now_ms);
}

void uarc__channel_connection_lost(uarc__channel *ch, uarc_status status, const char *reason)
{
    uarc__ch_fail(ch, status, "%s", reason ? reason : "connection lost");
    release_receive_state(ch);
}

size_t uarc__channel_output(const uarc__channel *ch, const uint8_t **data)
{
    *data = ch->out ? ch->out + ch->out_pos : NULL;
    return ch->out_len - ch->out_pos;
}

void uarc__channel_output_done(uarc__channel *ch, size_t count)
{
    size_t waiting = ch->out_len - ch->out_pos;
    ch->out_pos += count < waiting ? count : waiting;
    if (ch->out_pos == ch->out_len) {
        ch->out_pos = ch->out_len = 0;
        /* A big buffer (a large request, an OPN, a burst) is not kept once it has gone out: a
         * fleet of idle sessions holds none of it. */
        if (ch->out_capacity > OUTPUT_KEPT) {
            uarc__free(ch->out);
            ch->out = NULL;
            ch->out_capacity = 0;
        }
    }
}

uarc_status uarc__channel_send_request(uarc__channel *ch, const void *request,
                                       const uarc_type *type, uint32_t *request_id)
{
    if (ch->state != UARC__CHANNEL_OPEN)
        return UARC_BadInvalidState;
    if (!request || !type || !request_id)
        return UARC_BadInvalidArgument;
    uint8_t *body;
    size_t length;
    uarc_status s = uarc__ch_encode_body(request, type, &body, &length);
    if (s != UARC_Good)
        return s;
    if (ch->outstanding_count == ch->outstanding_capacity) {
        size_t capacity = ch->outstanding_capacity ? ch->outstanding_capacity * 2 : 16;
        uint32_t *p = uarc__realloc(ch->outstanding, capacity * sizeof *p);
        if (!p) {
            uarc__crypto_free_secret(body, length);
            return UARC_BadOutOfMemory;
        }
        ch->outstanding = p;
        ch->outstanding_capacity = capacity;
    }
    uint32_t id = uarc__ch_next_request_id(ch);
    s = queue_message(ch, UARC__UATCP_MSG, body, length, id);
    uarc__crypto_free_secret(body, length);
    if (s != UARC_Good)
        return s;
    ch->outstanding[ch->outstanding_count++] = id;
    *request_id = id;
    return UARC_Good;
}

int64_t uarc__channel_next_deadline(const uarc__channel *ch)
{
    switch (ch->state) {
    case UARC__CHANNEL_HEL_SENT:
    case UARC__CHANNEL_OPN_SENT:
        return ch->deadline;
    case UARC__CHANNEL_OPEN:
        return ch->renewing ? ch->deadline : ch->renew_at;
    default:
        return -1;
    }
}

void uarc__channel_tick(uarc__channel *ch, int64_t now_ms)
{
    if (ch->previous.valid && now_ms >= ch->previous_until)
        uarc__ch_drop_previous(ch); /* its keys need not wait for the next chunk to be wiped */
    int64_t due = uarc__channel_next_deadline(ch);
    if (due < 0 || now_ms < due)
        return;
    if (ch->state != UARC__CHANNEL_OPEN) {
        uarc__ch_fail(ch, UARC_BadTimeout, "no %s within %u ms",
                      ch->state == UARC__CHANNEL_HEL_SENT ? "ACK" : "OPN response",
                      ch->handshake_timeout);
    } else if (ch->renewing) {
        uarc__ch_fail(ch, UARC_BadTimeout, "no OPN Renew response within %u ms",
                      ch->handshake_timeout);
    } else {
        uarc_status s = uarc__ch_queue_opn(ch, UARC_SecurityTokenRequestType_Renew, now_ms);
        if (s != UARC_Good)
            uarc__ch_fail(ch, s, "cannot encode OPN Renew");
        else
            ch->renewing = true;
    }
    if (ch->state == UARC__CHANNEL_CLOSED)
        release_receive_state(ch);
}

void uarc__channel_close(uarc__channel *ch)
{
    if (ch->state == UARC__CHANNEL_CLOSED)
        return;
    if (ch->state == UARC__CHANNEL_OPEN) {
        uarc_CloseSecureChannelRequest request;
        uarc_init(&request, UARC_T(CloseSecureChannelRequest));
        uint32_t id = uarc__ch_next_request_id(ch);
        request.requestHeader.requestHandle = id;
        uint8_t *body;
        size_t length;
        if (uarc__ch_encode_body(&request, UARC_T(CloseSecureChannelRequest), &body, &length) ==
            UARC_Good) {
            (void)queue_message(ch, UARC__UATCP_CLO, body, length, id); /* best effort */
            uarc__crypto_free_secret(body, length);
        }
    }
    ch->state = UARC__CHANNEL_CLOSED;
    ch->close_status = UARC_Good;
    ch->deadline = ch->renew_at = -1;
    ch->error[0] = '\0';
    fire_closed(ch);
}

uint32_t uarc__channel_id(const uarc__channel *ch)
{
    return ch->channel_id;
}

uint32_t uarc__channel_token_id(const uarc__channel *ch)
{
    return ch->current.id;
}

uint32_t uarc__channel_revised_lifetime_ms(const uarc__channel *ch)
{
    return ch->revised_lifetime;
}

uint32_t uarc__channel_peer_receive_buffer_size(const uarc__channel *ch)
{
    return ch->peer.receive_buffer_size;
}

uint32_t uarc__channel_peer_max_message_size(const uarc__channel *ch)
{
    return ch->peer.max_message_size;
}

uint32_t uarc__channel_peer_max_chunk_count(const uarc__channel *ch)
{
    return ch->peer.max_chunk_count;
}

bool uarc__channel_awaiting(const uarc__channel *ch)
{
    return ch->rx_fill > 0 || ch->assembly_count > 0 || ch->renewing;
}

const char *uarc__channel_security_policy_uri(const uarc__channel *ch)
{
    return ch->policy->uri;
}

bool uarc__channel_ended_by_err(const uarc__channel *ch)
{
    return ch->err_received;
}

const char *uarc__channel_error(const uarc__channel *ch)
{
    return ch->error;
}
