/* The secure channel's MSG chunks: opened with the token's keys, joined into whole responses
 * per request id (interleaved, bounded in number and size), delivered or failed. */
#include <string.h>

#include "channel/channel_internal.h"
#include "channel/chunk.h"
#include "core/alloc.h"
#include "core/endian.h"
#include "core/log.h"

/* ---- receiving: messages ----------------------------------------------------------------- */

static size_t find_outstanding(const uarc__channel *ch, uint32_t request_id)
{
    for (size_t i = 0; i < ch->outstanding_count; i++)
        if (ch->outstanding[i] == request_id)
            return i;
    return SIZE_MAX;
}

static void remove_outstanding(uarc__channel *ch, size_t index)
{
    ch->outstanding[index] = ch->outstanding[--ch->outstanding_count];
}

static size_t find_assembly(const uarc__channel *ch, uint32_t request_id)
{
    for (size_t i = 0; i < ch->assembly_count; i++)
        if (ch->assemblies[i].request_id == request_id)
            return i;
    return SIZE_MAX;
}

/* A request no longer waited for: chunks of its answer may still come, and are not unsolicited. */
static void remember_forgotten(uarc__channel *ch, uint32_t request_id)
{
    ch->forgotten[ch->forgotten_next] = request_id;
    ch->forgotten_next = (ch->forgotten_next + 1) % FORGOTTEN_IDS;
}

static void message_failed(uarc__channel *ch, uint32_t request_id, uarc_status status,
                           const char *reason)
{
    remember_forgotten(ch, request_id);
    uarc__log(&ch->logger, UARC_LOG_WARNING, "channel", "response to request %u failed: %s (%s)",
              request_id, reason, uarc_status_name(status));
    if (ch->events.message_failed)
        ch->events.message_failed(ch->events.user_data, request_id, status, reason);
}

static void handle_abort(uarc__channel *ch, const uarc__chunk_info *info)
{
    uarc_status status = UARC_BadDecodingError;
    char reason[256] = "malformed abort chunk";
    if (info->body_length >= 8) {
        int32_t length = (int32_t)uarc__ld32(info->body + 4);
        size_t rest = info->body_length - 8;
        if (length == -1 || (length >= 0 && (size_t)length <= rest)) {
            status = uarc__ld32(info->body);
            size_t n = length > 0 ? (size_t)length : 0;
            if (n >= sizeof reason)
                n = sizeof reason - 1;
            memcpy(reason, info->body + 8, n);
            reason[n] = '\0';
            if (!uarc_status_is_bad(status))
                status = UARC_BadUnexpectedError;
        }
    }
    message_failed(ch, info->request_id, status, reason);
}

/* Appends a C or F chunk to its response; returns false when the response went over our
 * limits (it then failed and its later chunks are dropped as unknown). */
static bool append_chunk(uarc__channel *ch, size_t index, const uarc__chunk_info *info)
{
    assembly *a = &ch->assemblies[index];
    if (a->chunks + 1 > ch->max_chunk_count ||
        info->body_length > ch->max_message_size - ch->assembly_bytes) {
        uint32_t chunks = a->chunks + 1;
        uarc__ch_free_assembly(ch, index);
        message_failed(ch, info->request_id, UARC_BadResponseTooLarge,
                       chunks > ch->max_chunk_count ? "response has too many chunks"
                                                    : "response exceeds MaxMessageSize");
        return false;
    }
    if (a->capacity - a->length < info->body_length) {
        size_t capacity = a->capacity ? a->capacity : 4096;
        while (capacity - a->length < info->body_length)
            capacity *= 2;
        if (capacity > ch->max_message_size)
            capacity = ch->max_message_size;
        /* Responses being joined may fill at most three quarters of the budget: when hostile
         * servers stream endless responses, the rest still lets every connection read its
         * chunks and decode its small answers. */
        size_t keep = ch->budget ? uarc_memory_budget_limit(ch->budget) / 4 : 0;
        if (!uarc__budget_charge_leaving(ch->budget, capacity - a->capacity, keep)) {
            uarc__ch_free_assembly(ch, index);
            message_failed(ch, info->request_id, UARC_BadResponseTooLarge,
                           "response exceeds the memory budget");
            return false;
        }
        uint8_t *p = uarc__realloc(a->data, capacity);
        if (!p) {
            uarc__budget_release(ch->budget, capacity - a->capacity);
            uarc__ch_free_assembly(ch, index);
            message_failed(ch, info->request_id, UARC_BadOutOfMemory, "out of memory");
            return false;
        }
        a->data = p;
        a->capacity = capacity;
    }
    if (info->body_length)
        memcpy(a->data + a->length, info->body, info->body_length);
    a->length += info->body_length;
    ch->assembly_bytes += info->body_length;
    a->chunks++;
    return true;
}

static void deliver(uarc__channel *ch, uint32_t request_id, const uint8_t *body, size_t length)
{
    if (ch->events.message)
        ch->events.message(ch->events.user_data, request_id, body, length);
}

static bool forgotten(const uarc__channel *ch, uint32_t request_id)
{
    for (size_t i = 0; i < FORGOTTEN_IDS; i++)
        if (ch->forgotten[i] == request_id)
            return request_id != 0;
    return false;
}

/* A chunk for no request we are waiting for. The late answer of a request we gave up on is
 * expected; anything else costs us work for nothing, and a server that keeps sending it is
 * dropped. */
static void count_unsolicited(uarc__channel *ch, uint32_t request_id)
{
    if (forgotten(ch, request_id) || ++ch->unsolicited <= ch->max_unsolicited)
        return;
    uarc__ch_fail(ch, UARC_BadUnknownResponse,
                  "more than %u chunks answering no request of ours (the last for request %u)",
                  ch->max_unsolicited, request_id);
}

static void handle_msg_body(uarc__channel *ch, const uarc__chunk_info *info)
{
    size_t pending = find_outstanding(ch, info->request_id);
    size_t index = find_assembly(ch, info->request_id);
    if (pending == SIZE_MAX) {
        /* a response we gave up on (over our limits) or never asked for: dropped */
        uarc__log(&ch->logger, UARC_LOG_DEBUG, "channel", "chunk for unknown request %u dropped",
                  info->request_id);
        count_unsolicited(ch, info->request_id);
        return;
    }
    if (info->chunk_type == 'A') {
        if (index != SIZE_MAX)
            uarc__ch_free_assembly(ch, index);
        remove_outstanding(ch, pending);
        handle_abort(ch, info);
        return;
    }
    if (index == SIZE_MAX && info->chunk_type == 'F') {
        remove_outstanding(ch, pending);
        if (info->body_length > ch->max_message_size)
            message_failed(ch, info->request_id, UARC_BadResponseTooLarge,
                           "response exceeds MaxMessageSize");
        else
            deliver(ch, info->request_id, info->body, info->body_length);
        return;
    }
    if (index == SIZE_MAX) {
        if (ch->assembly_count == MAX_ASSEMBLIES) {
            remove_outstanding(ch, pending);
            message_failed(ch, info->request_id, UARC_BadResponseTooLarge,
                           "too many responses interleaved");
            return;
        }
        index = ch->assembly_count++;
        ch->assemblies[index] = (assembly){.request_id = info->request_id};
    }
    if (!append_chunk(ch, index, info)) {
        remove_outstanding(ch, pending);
        return;
    }
    if (info->chunk_type == 'F') {
        /* detached first: the callback may close the channel */
        assembly done = ch->assemblies[index];
        ch->assembly_bytes -= done.length;
        ch->assemblies[index] = ch->assemblies[--ch->assembly_count];
        remove_outstanding(ch, pending);
        deliver(ch, done.request_id, done.data, done.length);
        uarc__free(done.data);
        uarc__budget_release(ch->budget, done.capacity);
    }
}

void uarc__channel_forget_request(uarc__channel *ch, uint32_t request_id)
{
    remember_forgotten(ch, request_id);
    size_t index = find_assembly(ch, request_id);
    if (index != SIZE_MAX)
        uarc__ch_free_assembly(ch, index);
    size_t pending = find_outstanding(ch, request_id);
    if (pending != SIZE_MAX)
        remove_outstanding(ch, pending);
}

void uarc__ch_handle_msg(uarc__channel *ch, uint8_t *chunk, size_t size, int64_t now_ms)
{
    if (ch->state != UARC__CHANNEL_OPEN) {
        uarc__ch_fail(ch, UARC_BadTcpMessageTypeInvalid, "MSG before the secure channel is open");
        return;
    }
    uarc__chunk_info info;
    size_t header_size;
    if (uarc__chunk_parse_header(chunk, size, &info, &header_size) != UARC_Good) {
        uarc__ch_fail(ch, UARC_BadDecodingError, "malformed MSG header");
        return;
    }
    if (info.channel_id != ch->channel_id) {
        uarc__ch_fail(ch, UARC_BadSecureChannelIdInvalid, "MSG for channel %u", info.channel_id);
        return;
    }
    const token *t = NULL;
    if (info.token_id == ch->current.id) {
        t = &ch->current;
        uarc__ch_drop_previous(ch); /* the server has moved to the new token: the old one is done */
    } else if (ch->previous.valid && info.token_id == ch->previous.id) {
        if (now_ms >= ch->previous_until) {
            uarc__ch_drop_previous(ch);
            uarc__ch_fail(ch, UARC_BadSecureChannelTokenUnknown,
                          "MSG with token %u after its overlap with token %u ended", info.token_id,
                          ch->current.id);
            return;
        }
        t = &ch->previous;
    } else {
        uarc__ch_fail(ch, UARC_BadSecureChannelTokenUnknown, "MSG with token %u", info.token_id);
        return;
    }
    uarc__chunk_security security = {ch->policy, ch->security, t->keys};
    uarc_status s = uarc__chunk_open(&security, chunk, size, header_size, &info);
    if (s != UARC_Good) {
        uarc__ch_fail(ch, s, "MSG chunk fails security checks");
        return;
    }
    if (!uarc__ch_check_sequence(ch, info.sequence_number))
        return;
    handle_msg_body(ch, &info);
}
