/*
 * The client: the object and its configuration, the table of requests in flight, the dispatch of
 * the channel's events, and byte mode.
 *
 * Everything protocol-shaped happens in the channel (bytes in, bytes and events out); the client
 * keeps the table of requests in flight and runs the connect sequence (client_connect.c) as a
 * chain of responses. A connection that ends is torn down only once control is back at the top of
 * a call, never from inside a channel callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/budget.h"
#include "core/clock.h"
#include "core/log.h"
#include "encoding/decode_charged.h"

static const char *const state_names[] = {
    "Disconnected",    "Connecting",        "Hello",         "Opening", "ChannelOpen",
    "CreatingSession", "ActivatingSession", "SessionActive", "Closing",
};

UARC_API const char *uarc_client_state_name(uarc_client_state state)
{
    return (unsigned)state < sizeof state_names / sizeof *state_names ? state_names[state] : "?";
}

void uarc__client_wake(uarc_client *c)
{
    if (c->wake)
        c->wake(c->wake_user_data, c);
}

UARC_API void uarc_client_set_wake_callback(uarc_client *c, uarc_client_wake_fn wake,
                                            void *user_data)
{
    c->wake = wake;
    c->wake_user_data = user_data;
}

void uarc__client_set_state(uarc_client *c, uarc_client_state state, uarc_status status)
{
    if (c->state == state)
        return;
    c->state = state;
    uarc__client_wake(c);
    uarc__log(&c->cfg.logger, UARC_LOG_DEBUG, "client", "state %s (%s)",
              uarc_client_state_name(state), uarc_status_name(status));
    if (c->cfg.callbacks.state_changed)
        c->cfg.callbacks.state_changed(c->cfg.callbacks.user_data, state, status);
}

bool uarc__client_connected_state(uarc_client_state s)
{
    return s == UARC_CLIENT_SESSION_ACTIVE || s == UARC_CLIENT_CHANNEL_OPEN;
}

/* The protocol's clock: the application's in byte mode, so that it alone decides what is due. */
int64_t uarc__client_now(const uarc_client *c)
{
    return c->bytes_mode ? c->now : uarc__now_ms();
}

/* ---- life cycle ---- */

char *uarc__client_dup_or_null(const char *s)
{
    return s ? uarc__strndup(s, strlen(s)) : NULL;
}

/* Replaces *dst with a copy of src (NULL/0: none). False when out of memory. */
bool uarc__client_copy_bytes(uint8_t **dst, size_t *dst_length, const uint8_t *src, size_t length)
{
    uarc__free(*dst);
    *dst = NULL;
    *dst_length = 0;
    if (!src || !length)
        return true;
    *dst = uarc__malloc(length);
    if (!*dst)
        return false;
    memcpy(*dst, src, length);
    *dst_length = length;
    return true;
}

/* A factor per client, so that keep-alives of clients that connected in the same second do not
 * stay in step: a seed mixed (a 32-bit finalizer) into 0..200 permille taken off the interval. */
static int keepalive_jitter(const uarc_client *c)
{
    uint32_t x = c->cfg.keepalive_jitter_seed;
    if (!x)
        x = (uint32_t)((uintptr_t)c >> 4);
    x += 0x9e3779b9u;
    x = (x ^ (x >> 16)) * 0x85ebca6bu;
    x = (x ^ (x >> 13)) * 0xc2b2ae35u;
    x ^= x >> 16;
    return (int)(x % 201u);
}

UARC_API uarc_client *uarc_client_new(const uarc_client_config *config)
{
    uarc_client *c = uarc__calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (config)
        c->cfg = *config;
    c->fd = -1;
    c->connect_deadline = -1;
    c->application_uri_given = c->cfg.application_uri != NULL;
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (!c->cfg.request_timeout_ms)
        c->cfg.request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    if (!c->cfg.tcp_keepalive_idle_s)
        c->cfg.tcp_keepalive_idle_s = DEFAULT_TCP_KEEPALIVE_IDLE_S;
    if (!c->cfg.tcp_keepalive_interval_s)
        c->cfg.tcp_keepalive_interval_s = DEFAULT_TCP_KEEPALIVE_INTERVAL_S;
    if (!c->cfg.tcp_keepalive_count)
        c->cfg.tcp_keepalive_count = DEFAULT_TCP_KEEPALIVE_COUNT;
    if (c->cfg.tcp_keepalive_idle_s > 86400)
        c->cfg.tcp_keepalive_idle_s = 86400;
    if (c->cfg.tcp_keepalive_interval_s > 3600)
        c->cfg.tcp_keepalive_interval_s = 3600;
    if (c->cfg.tcp_keepalive_count > 100)
        c->cfg.tcp_keepalive_count = 100;
    if (!c->cfg.session_timeout_ms)
        c->cfg.session_timeout_ms = DEFAULT_SESSION_TIMEOUT_MS;
    c->keepalive_jitter_permille = c->cfg.keepalive_exact ? 0 : keepalive_jitter(c);
    c->cfg.decode.arena = NULL;
    c->cfg.decode.detail = NULL;
    const char **fields[STRING_FIELDS] = {
        [STRING_SECURITY_POLICY_URI] = &c->cfg.security_policy_uri,
        [STRING_APPLICATION_URI] = &c->cfg.application_uri,
        [STRING_APPLICATION_NAME] = &c->cfg.application_name,
        [STRING_SESSION_NAME] = &c->cfg.session_name,
        [STRING_USER_NAME] = &c->cfg.user_name,
        [STRING_PASSWORD] = &c->cfg.password,
        [STRING_CERTIFICATE_FILE] = &c->cfg.certificate_file,
        [STRING_PRIVATE_KEY_FILE] = &c->cfg.private_key_file,
        [STRING_SERVER_CERTIFICATE_FILE] = &c->cfg.server_certificate_file,
        [STRING_EXPECTED_SERVER_URI] = &c->cfg.expected_server_uri,
        [STRING_TRUST_LIST_DIR] = &c->cfg.trust_list_dir,
        [STRING_TRUST_STORE_DIR] = &c->cfg.trust_store_dir,
        [STRING_USER_CERTIFICATE_FILE] = &c->cfg.user_certificate_file,
        [STRING_USER_PRIVATE_KEY_FILE] = &c->cfg.user_private_key_file,
        [STRING_ISSUER_LIST] = &c->cfg.issuer_list,
    };
    const char *defaults[STRING_FIELDS] = {
        [STRING_SECURITY_POLICY_URI] = SECURITY_POLICY_NONE,
        [STRING_APPLICATION_URI] = DEFAULT_APPLICATION_URI,
        [STRING_APPLICATION_NAME] = "uarc",
        [STRING_SESSION_NAME] = "uarc session",
    };
    for (int i = 0; i < STRING_FIELDS; i++) {
        const char *v = *fields[i] ? *fields[i] : defaults[i];
        c->strings[i] = uarc__client_dup_or_null(v);
        if (v && !c->strings[i]) {
            uarc_client_delete(c);
            return NULL;
        }
        *fields[i] = c->strings[i];
    }
    bool copied =
        uarc__client_copy_bytes(&c->local_cert, &c->local_cert_length, c->cfg.certificate,
                                c->cfg.certificate_length) &&
        uarc__client_copy_bytes(&c->local_key, &c->local_key_length, c->cfg.private_key,
                                c->cfg.private_key_length) &&
        uarc__client_copy_bytes(&c->server_cert, &c->server_cert_length, c->cfg.server_certificate,
                                c->cfg.server_certificate_length) &&
        uarc__client_copy_bytes(&c->user_cert, &c->user_cert_length, c->cfg.user_certificate,
                                c->cfg.user_certificate_length) &&
        uarc__client_copy_bytes(&c->user_key, &c->user_key_length, c->cfg.user_private_key,
                                c->cfg.user_private_key_length);
    c->cfg.certificate = c->cfg.private_key = c->cfg.server_certificate = NULL;
    c->cfg.user_certificate = c->cfg.user_private_key = NULL;
    if (!copied) {
        uarc_client_delete(c);
        return NULL;
    }
    return c;
}

/* Runs every pending callback with `status` and empties the table. */
static void fail_all_pending(uarc_client *c, uarc_status status)
{
    while (c->pending_count) {
        pending_request p = c->pending[0];
        memmove(c->pending, c->pending + 1, --c->pending_count * sizeof *c->pending);
        p.callback(p.user_data, status, NULL);
    }
}

/* In byte mode, keeps what the channel still had to send (CLO after a disconnect), for the
 * application to take after the channel is gone; a socket would have had it sent already. */
static void keep_tail(uarc_client *c)
{
    const uint8_t *data;
    size_t n;
    if (!c->bytes_mode || !c->channel || !(n = uarc__channel_output(c->channel, &data)))
        return;
    uint8_t *tail = uarc__realloc(c->tail, c->tail_length + n);
    if (!tail)
        return; /* out of memory: those bytes are lost, as with a socket that failed */
    memcpy(tail + c->tail_length, data, n);
    c->tail = tail;
    c->tail_length += n;
}

void uarc__client_drop_tail(uarc_client *c)
{
    uarc__free(c->tail);
    c->tail = NULL;
    c->tail_length = 0;
}

/* Closes the socket and the channel and fails what is in flight. */
void uarc__client_teardown(uarc_client *c, uarc_status status)
{
    c->ending = false;
    uarc__client_close_socket(c);
    keep_tail(c);
    uarc__channel_delete(c->channel);
    c->channel = NULL;
    if (c->policy)
        c->policy->context_delete(c->security);
    c->policy = NULL;
    c->security = NULL;
    c->connect_deadline = -1;
    c->keepalive_in_flight = false;
    uarc__client_set_state(c, UARC_CLIENT_DISCONNECTED, status);
    fail_all_pending(c, status);
    if (c->hooks.connection_lost)
        c->hooks.connection_lost(c->hooks.user_data);
}

/* Drops the session we could have re-activated. */
void uarc__client_forget_session(uarc_client *c)
{
    uarc_clear(&c->authentication_token, UARC_T(NodeId));
    c->has_session = false;
}

/* Asks for teardown; done when control is back outside the channel. */
void uarc__client_end_connection(uarc_client *c, uarc_status status)
{
    if (!c->ending) {
        c->ending = true;
        c->end_status = status;
    }
}

void uarc__client_finish_ending(uarc_client *c)
{
    if (c->ending)
        uarc__client_teardown(c, c->end_status);
}

UARC_API void uarc_client_delete(uarc_client *c)
{
    if (!c)
        return;
    uarc__client_teardown(c, UARC_BadConnectionClosed);
    if (c->hooks.destroy)
        c->hooks.destroy(c->hooks.user_data);
    uarc__client_forget_session(c);
    for (int i = 0; i < STRING_FIELDS; i++) {
        if (c->strings[i] && c->strings[i] == c->cfg.password)
            uarc__crypto_free_secret(c->strings[i], strlen(c->strings[i]));
        else
            uarc__free(c->strings[i]);
    }
    uarc__free(c->local_cert);
    uarc__crypto_free_secret(c->local_key, c->local_key_length);
    uarc__free(c->server_cert);
    uarc__free(c->channel_cert);
    uarc_array_delete(c->endpoints, c->endpoint_count, UARC_T(EndpointDescription));
    uarc__free(c->user_cert);
    uarc__crypto_free_secret(c->user_key, c->user_key_length);
    uarc_clear(&c->server_nonce, UARC_T(ByteString));
    uarc_clear(&c->server_ecdh_key, UARC_T(ByteString));
    uarc_clear(&c->session_server_cert, UARC_T(ByteString));
    uarc__free(c->endpoint_url);
    uarc__free(c->pending);
    uarc__client_drop_tail(c);
    uarc__free(c->error);
    uarc__free(c);
}

UARC_API uarc_client_state uarc_client_state_get(const uarc_client *c)
{
    return c->state;
}

UARC_API const char *uarc_client_endpoint_url(const uarc_client *c)
{
    return c->endpoint_url ? c->endpoint_url : "";
}

UARC_API const char *uarc_client_security_policy_uri(const uarc_client *c)
{
    return c->cfg.security_policy_uri;
}

UARC_API const char *uarc_client_application_uri(const uarc_client *c)
{
    return c->cfg.application_uri;
}

UARC_API bool uarc_client_session_resumed(const uarc_client *c)
{
    return c->resumed;
}

UARC_API void uarc_client_forget_session(uarc_client *c)
{
    /* A session in use keeps its token until the connection ends; only the next connect
     * starts a new one. */
    c->has_session = false;
    if (c->state == UARC_CLIENT_DISCONNECTED)
        uarc__client_forget_session(c);
}

UARC_API uarc_status uarc_client_end_status(const uarc_client *c)
{
    return c->cause_status;
}

UARC_API const char *uarc_client_end_reason(const uarc_client *c)
{
    return c->cause_reason;
}

UARC_API const char *uarc_client_end_kind(const uarc_client *c)
{
    static const struct {
        const char *reason, *kind;
    } kinds[] = {
        {"closed by peer", "closed"},      {"CLO from server", "closed"},
        {"reset by peer", "reset"},        {"TCP keepalive", "keepalive"},
        {"keep-alive timeout", "timeout"}, {"connect timeout", "timeout"},
        {"handshake timeout", "timeout"},  {"closed by client", "client"},
    };
    if (!c->cause_reason[0])
        return "";
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(c->cause_reason, kinds[i].reason) == 0)
            return kinds[i].kind;
    return "error";
}

UARC_API const char *uarc_client_peer(const uarc_client *c)
{
    return c->peer;
}

UARC_API double uarc_client_session_timeout_ms(const uarc_client *c)
{
    return c->revised_session_timeout;
}

/* ---- requests ---- */

static pending_request *find_pending(uarc_client *c, uint32_t request_id, size_t *index)
{
    for (size_t i = 0; i < c->pending_count; i++)
        if (c->pending[i].request_id == request_id) {
            *index = i;
            return &c->pending[i];
        }
    return NULL;
}

pending_request uarc__client_take_pending(uarc_client *c, size_t index)
{
    pending_request p = c->pending[index];
    memmove(c->pending + index, c->pending + index + 1,
            (c->pending_count - index - 1) * sizeof *c->pending);
    c->pending_count--;
    return p;
}

/* Sends without checking the session state: the connect sequence uses this too. */
uarc_status uarc__client_send_request(uarc_client *c, void *request, const uarc_type *request_type,
                                      const uarc_type *response_type, uint32_t timeout_ms,
                                      uarc_response_fn callback, void *user_data,
                                      uint32_t *handle_out)
{
    if (!c->channel || uarc__channel_get_state(c->channel) != UARC__CHANNEL_OPEN) {
        uarc__client_set_error(c, request_type->name, UARC_BadConnectionClosed, "not connected");
        return UARC_BadConnectionClosed;
    }
    if (request_type->member_count == 0 || request_type->members[0].type != UARC_T(RequestHeader)) {
        uarc__client_set_error(c, request_type->name, UARC_BadInvalidArgument,
                               "not a service request type");
        return UARC_BadInvalidArgument;
    }
    if (c->pending_count == c->pending_capacity) {
        size_t cap = c->pending_capacity ? c->pending_capacity * 2 : 8;
        pending_request *grown = uarc__realloc(c->pending, cap * sizeof *grown);
        if (!grown)
            return UARC_BadOutOfMemory;
        c->pending = grown;
        c->pending_capacity = cap;
    }
    if (!timeout_ms)
        timeout_ms = c->cfg.request_timeout_ms;
    /* Fill the header for the encoder only; the caller's request keeps its own fields. */
    uarc_RequestHeader *header = request;
    uarc_RequestHeader saved = *header;
    header->authenticationToken = c->authentication_token;
    header->timestamp = uarc_datetime_now();
    header->requestHandle = ++c->next_handle;
    if (!header->timeoutHint)
        header->timeoutHint = timeout_ms;
    uint32_t request_id = 0;
    uarc_status status = uarc__channel_send_request(c->channel, request, request_type, &request_id);
    uint32_t handle = header->requestHandle;
    *header = saved;
    if (status != UARC_Good) {
        uarc__client_set_error(c, request_type->name, status, "cannot send: %s",
                               uarc__channel_error(c->channel));
        return status;
    }
    int64_t now = uarc__client_now(c);
    c->pending[c->pending_count++] =
        (pending_request){request_id, handle,           response_type,      callback,
                          user_data,  now + timeout_ms, request_type->name, c->send_transient};
    c->last_send = now;
    uarc__client_wake(c);
    if (handle_out)
        *handle_out = handle;
    return UARC_Good;
}

UARC_API uarc_status uarc_client_send(uarc_client *c, void *request, const uarc_type *request_type,
                                      const uarc_type *response_type, uint32_t timeout_ms,
                                      uarc_response_fn callback, void *user_data,
                                      uint32_t *request_handle)
{
    if (!callback)
        return UARC_BadInvalidArgument;
    if (!uarc__client_connected_state(c->state)) {
        uarc__client_set_error(c, request_type->name, UARC_BadConnectionClosed,
                               "not connected (state %s)", uarc_client_state_name(c->state));
        return UARC_BadConnectionClosed;
    }
    uarc_status status = uarc__client_send_request(c, request, request_type, response_type,
                                                   timeout_ms, callback, user_data, request_handle);
    /* A request goes out at once (in byte mode it is there to take at once); one sent from a
     * callback inside a receive goes in one write with the others made there, at its end. */
    if (status == UARC_Good && c->receiving)
        uarc__client_wake(c);
    else if (status == UARC_Good)
        uarc__client_flush(c);
    return status;
}

uarc_status uarc__client_send_transient(uarc_client *c, void *request,
                                        const uarc_type *request_type,
                                        const uarc_type *response_type, uint32_t timeout_ms,
                                        uarc_response_fn callback, void *user_data)
{
    c->send_transient = true;
    uarc_status status = uarc_client_send(c, request, request_type, response_type, timeout_ms,
                                          callback, user_data, NULL);
    c->send_transient = false;
    return status;
}

static void release_response(void *response, const uarc_type *type, uarc_arena *arena)
{
    if (arena)
        uarc_arena_delete(arena);
    else
        uarc_delete(response, type);
}

/* Decodes a whole response and runs the callback of the request it answers. */
void uarc__client_on_message(void *user_data, uint32_t request_id, const uint8_t *body,
                             size_t length)
{
    uarc_client *c = user_data;
    size_t index;
    if (!find_pending(c, request_id, &index)) {
        uarc__log(&c->cfg.logger, UARC_LOG_INFO, "client",
                  "response to request %u that is no longer waited for (timed out?)", request_id);
        return;
    }
    pending_request p = uarc__client_take_pending(c, index);
    if (length == 0) { /* the channel passes no buffer at all then: nothing to decode from */
        uarc__client_set_error(c, p.service, UARC_BadDecodingError, "empty response");
        p.callback(p.user_data, UARC_BadDecodingError, NULL);
        return;
    }
    char detail[256] = "";
    uarc_decode_config options = c->cfg.decode;
    options.detail = detail;
    options.detail_size = sizeof detail;
    size_t offset = 0;
    uarc_nodeid type_id;
    uarc_status status = uarc_decode(body, length, &offset, &type_id, UARC_T(NodeId), &options);
    if (status != UARC_Good) {
        uarc__client_set_error(c, p.service, status, "response type id: %s", detail);
        p.callback(p.user_data, status, NULL);
        return;
    }
    uint32_t id = type_id.identifier_type == UARC_NODEID_NUMERIC && type_id.namespace_index == 0
                      ? type_id.identifier.numeric
                      : 0;
    uarc_clear(&type_id, UARC_T(NodeId));
    const uarc_type *type = id == UARC_T(ServiceFault)->binary_encoding_id ? UARC_T(ServiceFault)
                            : id == p.response_type->binary_encoding_id    ? p.response_type
                                                                           : NULL;
    if (!type) {
        uarc__client_set_error(c, p.service, UARC_BadUnknownResponse,
                               "unexpected response type i=%u", id);
        p.callback(p.user_data, UARC_BadUnknownResponse, NULL);
        return;
    }
    /* A transient response lives in one arena, sized for it from the message length: a few
     * allocations instead of one per value, and none of it kept once the callback returned. */
    uarc_arena *arena = NULL;
    if (p.transient && type != UARC_T(ServiceFault)) {
        arena = uarc__arena_new_for_decode(length);
        if (!arena) {
            p.callback(p.user_data, UARC_BadOutOfMemory, NULL);
            return;
        }
        options.arena = arena;
    }
    void *response = arena ? uarc__arena_alloc(arena, type->size) : uarc_new(type);
    if (!response) {
        uarc_arena_delete(arena);
        p.callback(p.user_data, UARC_BadOutOfMemory, NULL);
        return;
    }
    size_t charged; /* the decoded response's share of the memory budget, while it lives */
    status = uarc__decode_charged(body, length, &offset, response, type, &options,
                                  c->cfg.memory_budget, &charged);
    if (status == UARC_Good && offset != length)
        uarc__log(&c->cfg.logger, UARC_LOG_DEBUG, "client", "%zu bytes after the %s ignored",
                  length - offset, type->name);
    if (status != UARC_Good) {
        uarc__client_set_error(c, p.service, status, "%s", detail);
        release_response(response, type, arena);
        p.callback(p.user_data, status, NULL);
        return;
    }
    uarc_status result = ((uarc_ResponseHeader *)response)->serviceResult;
    if (type == UARC_T(ServiceFault)) {
        /* A fault is a failure whatever code it carries: one that is not Bad (Good, Uncertain)
         * must not reach the caller as if the request had succeeded. */
        uarc_status failure = uarc_status_is_bad(result) ? result : UARC_BadUnexpectedError;
        if (failure == result)
            uarc__client_set_error(c, p.service, failure, "ServiceFault");
        else
            uarc__client_set_error(c, p.service, failure, "ServiceFault with the code %s",
                                   uarc_status_name(result));
        release_response(response, type, arena);
        uarc__budget_release(c->cfg.memory_budget, charged);
        p.callback(p.user_data, failure, NULL);
        return;
    }
    if (uarc_status_is_bad(result))
        uarc__client_set_error(c, p.service, result, "service result");
    p.callback(p.user_data, uarc_status_is_bad(result) ? result : UARC_Good, response);
    release_response(response, type, arena);
    uarc__budget_release(c->cfg.memory_budget, charged);
}

void uarc__client_on_message_failed(void *user_data, uint32_t request_id, uarc_status status,
                                    const char *reason)
{
    uarc_client *c = user_data;
    size_t index;
    if (!find_pending(c, request_id, &index))
        return;
    pending_request p = uarc__client_take_pending(c, index);
    uarc__client_set_error(c, p.service, status, "%s", reason);
    p.callback(p.user_data, status, NULL);
}

void uarc__client_on_closed(void *user_data, uarc_status status, const char *reason)
{
    uarc_client *c = user_data;
    if (c->state == UARC_CLIENT_CLOSING || c->state == UARC_CLIENT_DISCONNECTED) {
        uarc__client_end_connection(c, UARC_BadConnectionClosed);
        return;
    }
    uarc__client_set_error(c, uarc__client_current_step(c), status, "%s",
                           reason && *reason ? reason : "channel closed");
    uarc__client_note_cause(c, status,
                            uarc__channel_ended_by_err(c->channel)    ? "ERR from server"
                            : status == UARC_BadSecureChannelClosed   ? "CLO from server"
                            : status == UARC_BadTimeout               ? "handshake timeout"
                            : status == UARC_BadTcpNotEnoughResources ? "memory budget"
                            : status == UARC_BadUnknownResponse       ? "unsolicited responses"
                                                                      : "protocol violation");
    /* Requests in flight learn that the channel is gone; while connecting, the cause itself (an
     * ERR's status, a malformed ACK) is why the client falls back to DISCONNECTED. */
    uarc__client_end_connection(
        c, uarc__client_connected_state(c->state) ? UARC_BadSecureChannelClosed : status);
}

/* The transport ended (EOF or an error), in either mode. */
void uarc__client_transport_ended(uarc_client *c, uarc_status status, const char *cause,
                                  const char *why)
{
    if (c->state == UARC_CLIENT_CLOSING) {
        uarc__client_end_connection(c, status);
        return;
    }
    uarc__client_note_cause(c, status, cause);
    uarc__client_set_error(c, uarc__client_current_step(c), status, "%s", why);
    uarc__channel_connection_lost(c->channel, status, why);
    uarc__client_end_connection(c, status);
}

/* ---- byte mode ---- */

/* The state a byte-mode call returns: Good, or the status the connection ended with. */
static uarc_status bytes_result(uarc_client *c)
{
    uarc__client_finish_ending(c);
    return c->state == UARC_CLIENT_DISCONNECTED ? c->last_status : UARC_Good;
}

static bool refuse_bytes_call(uarc_client *c, const char *step)
{
    if (!c->bytes_mode || c->receiving) {
        uarc__client_set_error(c, step, UARC_BadInvalidState,
                               c->bytes_mode
                                   ? "called from inside a client callback"
                                   : "the client is not in byte mode (uarc_client_start_bytes)");
        return true;
    }
    return false;
}

UARC_API uarc_status uarc_client_receive_bytes(uarc_client *c, const uint8_t *data, size_t length,
                                               int64_t now_ms)
{
    if (refuse_bytes_call(c, "receive"))
        return UARC_BadInvalidState;
    c->now = now_ms;
    if (c->channel && !c->ending && length)
        uarc__client_receive(c, NULL, data, length);
    return bytes_result(c);
}

UARC_API size_t uarc_client_output_bytes(const uarc_client *c, const uint8_t **data)
{
    *data = NULL;
    if (!c->bytes_mode)
        return 0;
    if (c->tail_length) {
        *data = c->tail;
        return c->tail_length;
    }
    return c->channel ? uarc__channel_output(c->channel, data) : 0;
}

UARC_API void uarc_client_output_consumed(uarc_client *c, size_t length)
{
    if (!c->bytes_mode)
        return;
    if (c->tail_length) {
        if (length >= c->tail_length)
            uarc__client_drop_tail(c);
        else {
            memmove(c->tail, c->tail + length, c->tail_length - length);
            c->tail_length -= length;
        }
        return;
    }
    if (c->channel)
        uarc__channel_output_done(c->channel, length);
}

UARC_API uarc_status uarc_client_tick(uarc_client *c, int64_t now_ms)
{
    if (refuse_bytes_call(c, uarc__client_current_step(c)))
        return UARC_BadInvalidState;
    c->now = now_ms;
    if (c->state != UARC_CLIENT_DISCONNECTED && !c->ending)
        uarc__client_tick(c, now_ms);
    return bytes_result(c);
}

UARC_API uarc_status uarc_client_transport_closed(uarc_client *c, uarc_status status)
{
    if (refuse_bytes_call(c, uarc__client_current_step(c)))
        return UARC_BadInvalidState;
    if (c->state != UARC_CLIENT_DISCONNECTED) {
        if (status == UARC_Good)
            uarc__client_transport_ended(c, UARC_BadConnectionClosed, "closed by peer",
                                         "the server closed the connection");
        else
            uarc__client_transport_ended(c, status, "transport failed", "the transport failed");
    }
    uarc__client_finish_ending(c);
    uarc__client_drop_tail(c); /* nowhere to send it any more */
    return c->last_status;
}

/* ---- what the modules built on the client use (client_internal.h) ---- */

void uarc__client_set_hooks(uarc_client *c, const uarc__client_hooks *hooks)
{
    if (hooks)
        c->hooks = *hooks;
    else
        memset(&c->hooks, 0, sizeof c->hooks);
}

void *uarc__client_hooks_user_data(const uarc_client *c)
{
    return c->hooks.user_data;
}

const uarc_logger *uarc__client_logger(const uarc_client *c)
{
    return &c->cfg.logger;
}

uint32_t uarc__client_request_timeout(const uarc_client *c)
{
    return c->cfg.request_timeout_ms;
}
