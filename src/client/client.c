/*
 * The client: session and services over the secure channel, plus the thin socket edge.
 *
 * Everything protocol-shaped happens in the channel (bytes in, bytes and events out); this file
 * moves bytes between the socket and the channel, keeps the table of requests in flight, and runs
 * the connect sequence (HEL → OPN → CreateSession → ActivateSession) as a chain of responses.
 * A connection that ends is torn down only once control is back at the top of a call, never from
 * inside a channel callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "uarc/client.h"
#include "uarc/endpoint_url.h"
#include "uarc/nodeids.h"
#include "uarc/attributes.h"
#include "channel/channel.h"
#include "channel/cert_store.h"
#include "client/client_internal.h"
#include "channel/cert_trust.h"
#include "channel/crypto.h"
#include "channel/security.h"
#include "core/alloc.h"
#include "core/budget.h"
#include "encoding/decode_charged.h"
#include "core/clock.h"
#include "core/log.h"
#include "transport/socket.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define DEFAULT_REQUEST_TIMEOUT_MS 10000u
#define DEFAULT_SESSION_TIMEOUT_MS 60000u
#define DEFAULT_APPLICATION_URI    "urn:uarc:client"
#define DEFAULT_KEEPALIVE_MAX_MS   5000
#define READ_CHUNK                 65536
#define SESSION_NONCE_LENGTH       32u
#define SECURITY_POLICY_NONE       "http://opcfoundation.org/UA/SecurityPolicy#None"

/* The configuration's string fields, copied into uarc_client.strings in this order. */
enum {
    STRING_SECURITY_POLICY_URI,
    STRING_APPLICATION_URI,
    STRING_APPLICATION_NAME,
    STRING_SESSION_NAME,
    STRING_USER_NAME,
    STRING_PASSWORD,
    STRING_CERTIFICATE_FILE,
    STRING_PRIVATE_KEY_FILE,
    STRING_SERVER_CERTIFICATE_FILE,
    STRING_EXPECTED_SERVER_URI,
    STRING_TRUST_LIST_DIR,
    STRING_TRUST_STORE_DIR,
    STRING_USER_CERTIFICATE_FILE,
    STRING_USER_PRIVATE_KEY_FILE,
    STRING_FIELDS
};

typedef struct pending_request {
    uint32_t request_id;
    uint32_t request_handle;
    const uarc_type *response_type;
    uarc_response_fn callback;
    void *user_data;
    int64_t deadline;
    const char *service; /* request type name, for error details */
} pending_request;

struct uarc_client {
    uarc_client_config cfg;
    char *strings[STRING_FIELDS]; /* owned copies behind the cfg string fields */
    uarc_client_state state;
    int fd;
    bool dialing;
    /* byte mode: no socket; the application moves the bytes and gives the time */
    bool bytes_mode;
    int64_t now;   /* the last time the application gave, in byte mode */
    uint8_t *tail; /* output left when the channel ended, in byte mode */
    size_t tail_length;
    uarc__dialer dialer;
    uarc__channel *channel;
    char *endpoint_url;
    int64_t connect_deadline; /* -1 once connected */
    /* session */
    uarc_nodeid authentication_token;
    double revised_session_timeout;
    char identity_policy_id[128];
    uarc_UserTokenType identity_type;
    char token_policy_uri[128]; /* non-empty: the password must be encrypted with it */
    bool has_session;           /* authentication_token names a session we may re-activate */
    bool resumed;               /* the last activation re-used the previous session */
    uint32_t next_handle;
    int64_t last_send;
    bool keepalive_in_flight;
    /* requests in flight */
    pending_request *pending;
    size_t pending_count, pending_capacity;
    /* teardown requested from inside a callback */
    bool ending;
    bool receiving; /* inside uarc__channel_receive: the channel must outlive the call */
    bool application_uri_given; /* config named one: it must equal our certificate's */
    uarc_status end_status;
    uarc_status last_status;
    char error[1280];
    /* how the last connection ended (the first cause noted counts) and with whom */
    uarc_status cause_status;
    char cause_reason[64];
    char peer[80];
    /* security: owned copies of the certificates (config, files or generated) */
    uint8_t *local_cert, *local_key, *server_cert; /* server_cert: the pin, if any */
    size_t local_cert_length, local_key_length, server_cert_length;
    uint8_t *channel_cert; /* the server certificate of the secured channel: pinned or learned */
    size_t channel_cert_length;
    /* the discovery result (uarc_client_set_endpoints or uarc_client_get_endpoints) */
    uarc_EndpointDescription *endpoints;
    size_t endpoint_count;
    const uarc__security_policy *policy; /* of the current connection; NULL: None */
    void *security;                      /* its context, for the session signatures */
    uint8_t client_nonce[SESSION_NONCE_LENGTH];
    uarc_bytestring server_nonce;        /* the last from CreateSession/ActivateSession */
    uarc_bytestring session_server_cert; /* serverCertificate of CreateSession */
    /* X509 user identity: owned copies (config or files) */
    uint8_t *user_cert, *user_key;
    size_t user_cert_length, user_key_length;
    uarc__client_hooks hooks; /* the modules built on the client (subscriptions) */
};

static const char *const state_names[] = {
    "Disconnected",    "Connecting",        "Hello",         "Opening", "ChannelOpen",
    "CreatingSession", "ActivatingSession", "SessionActive", "Closing",
};

UARC_API const char *uarc_client_state_name(uarc_client_state state)
{
    return (unsigned)state < sizeof state_names / sizeof *state_names ? state_names[state] : "?";
}

static void vset_error(uarc_client *c, const char *step, uarc_status status, const char *fmt,
                       va_list ap) UARC__PRINTF(4, 0);

static void vset_error(uarc_client *c, const char *step, uarc_status status, const char *fmt,
                       va_list ap)
{
    char reason[1024];
    vsnprintf(reason, sizeof reason, fmt, ap);
    snprintf(c->error, sizeof c->error, "%s: %s: %s", step, uarc_status_name(status), reason);
    c->last_status = status;
    uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "client", "%s", c->error);
}

static void set_error(uarc_client *c, const char *step, uarc_status status, const char *fmt, ...)
    UARC__PRINTF(4, 5);

static void set_error(uarc_client *c, const char *step, uarc_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(c, step, status, fmt, ap);
    va_end(ap);
}

static void set_state(uarc_client *c, uarc_client_state state, uarc_status status)
{
    if (c->state == state)
        return;
    c->state = state;
    uarc__log(&c->cfg.logger, UARC_LOG_DEBUG, "client", "state %s (%s)",
              uarc_client_state_name(state), uarc_status_name(status));
    if (c->cfg.callbacks.state_changed)
        c->cfg.callbacks.state_changed(c->cfg.callbacks.user_data, state, status);
}

/* Notes why the connection ends; the first cause noted for a connection is the one reported. */
static void note_cause(uarc_client *c, uarc_status status, const char *reason)
{
    if (c->cause_reason[0])
        return;
    c->cause_status = status;
    snprintf(c->cause_reason, sizeof c->cause_reason, "%s", reason);
}

/* The reason for a socket error. */
static const char *errno_reason(int err)
{
    switch (err) {
    case ECONNRESET:
    case EPIPE:
        return "reset by peer";
    case ETIMEDOUT:
        return "TCP keepalive";
    default:
        return "I/O error";
    }
}

/* The step a failure in the current state belongs to. */
static const char *current_step(const uarc_client *c)
{
    switch (c->state) {
    case UARC_CLIENT_CONNECTING:
        return "connect";
    case UARC_CLIENT_HELLO:
        return "HEL";
    case UARC_CLIENT_OPENING:
        return "OPN";
    case UARC_CLIENT_CREATING_SESSION:
        return "CreateSession";
    case UARC_CLIENT_ACTIVATING_SESSION:
        return "ActivateSession";
    case UARC_CLIENT_CLOSING:
        return "close";
    default:
        return "connection";
    }
}

static bool connected_state(uarc_client_state s)
{
    return s == UARC_CLIENT_SESSION_ACTIVE || s == UARC_CLIENT_CHANNEL_OPEN;
}

/* The protocol's clock: the application's in byte mode, so that it alone decides what is due. */
static int64_t now_ms(const uarc_client *c)
{
    return c->bytes_mode ? c->now : uarc__now_ms();
}

/* ---- life cycle ---- */

static char *dup_or_null(const char *s)
{
    return s ? uarc__strndup(s, strlen(s)) : NULL;
}

/* Replaces *dst with a copy of src (NULL/0: none). False when out of memory. */
static bool copy_bytes(uint8_t **dst, size_t *dst_length, const uint8_t *src, size_t length)
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
    if (!c->cfg.session_timeout_ms)
        c->cfg.session_timeout_ms = DEFAULT_SESSION_TIMEOUT_MS;
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
    };
    const char *defaults[STRING_FIELDS] = {
        [STRING_SECURITY_POLICY_URI] = SECURITY_POLICY_NONE,
        [STRING_APPLICATION_URI] = DEFAULT_APPLICATION_URI,
        [STRING_APPLICATION_NAME] = "uarc",
        [STRING_SESSION_NAME] = "uarc session",
    };
    for (int i = 0; i < STRING_FIELDS; i++) {
        const char *v = *fields[i] ? *fields[i] : defaults[i];
        c->strings[i] = dup_or_null(v);
        if (v && !c->strings[i]) {
            uarc_client_delete(c);
            return NULL;
        }
        *fields[i] = c->strings[i];
    }
    bool copied = copy_bytes(&c->local_cert, &c->local_cert_length, c->cfg.certificate,
                             c->cfg.certificate_length) &&
                  copy_bytes(&c->local_key, &c->local_key_length, c->cfg.private_key,
                             c->cfg.private_key_length) &&
                  copy_bytes(&c->server_cert, &c->server_cert_length, c->cfg.server_certificate,
                             c->cfg.server_certificate_length) &&
                  copy_bytes(&c->user_cert, &c->user_cert_length, c->cfg.user_certificate,
                             c->cfg.user_certificate_length) &&
                  copy_bytes(&c->user_key, &c->user_key_length, c->cfg.user_private_key,
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

static void drop_tail(uarc_client *c)
{
    uarc__free(c->tail);
    c->tail = NULL;
    c->tail_length = 0;
}

/* Closes the socket and the channel and fails what is in flight. */
static void teardown(uarc_client *c, uarc_status status)
{
    c->ending = false;
    if (c->dialing) {
        uarc__dialer_clear(&c->dialer);
        c->dialing = false;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    keep_tail(c);
    uarc__channel_delete(c->channel);
    c->channel = NULL;
    if (c->policy)
        c->policy->context_delete(c->security);
    c->policy = NULL;
    c->security = NULL;
    c->connect_deadline = -1;
    c->keepalive_in_flight = false;
    set_state(c, UARC_CLIENT_DISCONNECTED, status);
    fail_all_pending(c, status);
    if (c->hooks.connection_lost)
        c->hooks.connection_lost(c->hooks.user_data);
}

/* Drops the session we could have re-activated. */
static void forget_session(uarc_client *c)
{
    uarc_clear(&c->authentication_token, UARC_T(NodeId));
    c->has_session = false;
}

/* Asks for teardown; done when control is back outside the channel. */
static void end_connection(uarc_client *c, uarc_status status)
{
    if (!c->ending) {
        c->ending = true;
        c->end_status = status;
    }
}

static void finish_ending(uarc_client *c)
{
    if (c->ending)
        teardown(c, c->end_status);
}

UARC_API void uarc_client_delete(uarc_client *c)
{
    if (!c)
        return;
    teardown(c, UARC_BadConnectionClosed);
    if (c->hooks.destroy)
        c->hooks.destroy(c->hooks.user_data);
    forget_session(c);
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
    uarc_clear(&c->session_server_cert, UARC_T(ByteString));
    uarc__free(c->endpoint_url);
    uarc__free(c->pending);
    drop_tail(c);
    uarc__free(c);
}

UARC_API uarc_status uarc_client_set_server_certificate(uarc_client *c, const uint8_t *certificate,
                                                        size_t length)
{
    if (c->state != UARC_CLIENT_DISCONNECTED)
        return UARC_BadInvalidState;
    if (certificate && length) {
        length = uarc__crypto_first_certificate(certificate, length);
        if (!length)
            return UARC_BadCertificateInvalid;
    }
    return copy_bytes(&c->server_cert, &c->server_cert_length, certificate, length)
               ? UARC_Good
               : UARC_BadOutOfMemory;
}

/* Replaces the kept discovery result with a copy of `endpoints`. */
static uarc_status keep_endpoints(uarc_client *c, const uarc_EndpointDescription *endpoints,
                                  size_t count)
{
    uarc_GetEndpointsResponse from = {.endpointsSize = count,
                                      .endpoints = (uarc_EndpointDescription *)endpoints};
    uarc_GetEndpointsResponse copy;
    if (count && uarc_copy(&from, &copy, UARC_T(GetEndpointsResponse)) != UARC_Good)
        return UARC_BadOutOfMemory;
    uarc_array_delete(c->endpoints, c->endpoint_count, UARC_T(EndpointDescription));
    c->endpoints = count ? copy.endpoints : NULL;
    c->endpoint_count = count ? copy.endpointsSize : 0;
    if (count) {
        copy.endpoints = NULL;
        copy.endpointsSize = 0;
        uarc_clear(&copy, UARC_T(GetEndpointsResponse));
    }
    return UARC_Good;
}

UARC_API uarc_status uarc_client_set_endpoints(uarc_client *c,
                                               const uarc_EndpointDescription *endpoints,
                                               size_t count)
{
    if (c->state != UARC_CLIENT_DISCONNECTED)
        return UARC_BadInvalidState;
    return keep_endpoints(c, endpoints, endpoints ? count : 0);
}

UARC_API uarc_status uarc_certificate_generate(const char *application_uri, uint8_t **certificate,
                                               size_t *certificate_length, uint8_t **private_key,
                                               size_t *private_key_length)
{
    if (!certificate || !certificate_length || !private_key || !private_key_length)
        return UARC_BadInvalidArgument;
    return uarc__crypto_make_certificate(
        application_uri ? application_uri : DEFAULT_APPLICATION_URI, certificate,
        certificate_length, private_key, private_key_length);
}

UARC_API uarc_status uarc_certificate_uri(const uint8_t *der, size_t length, char *uri, size_t size)
{
    if (!der || !uri || size == 0)
        return UARC_BadInvalidArgument;
    return uarc__crypto_certificate_uri(der, length, uri, size);
}

UARC_API uarc_status uarc_client_set_expected_server_uri(uarc_client *c, const char *uri)
{
    if (c->state != UARC_CLIENT_DISCONNECTED)
        return UARC_BadInvalidState;
    char *copy = dup_or_null(uri);
    if (uri && !copy)
        return UARC_BadOutOfMemory;
    uarc__free(c->strings[STRING_EXPECTED_SERVER_URI]);
    c->strings[STRING_EXPECTED_SERVER_URI] = copy;
    c->cfg.expected_server_uri = copy;
    return UARC_Good;
}

UARC_API uarc_client_state uarc_client_state_get(const uarc_client *c)
{
    return c->state;
}

UARC_API const char *uarc_client_error(const uarc_client *c)
{
    return c->error;
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
        forget_session(c);
}

UARC_API uarc_status uarc_client_end_status(const uarc_client *c)
{
    return c->cause_status;
}

UARC_API const char *uarc_client_end_reason(const uarc_client *c)
{
    return c->cause_reason;
}

UARC_API const char *uarc_client_peer(const uarc_client *c)
{
    return c->peer;
}

UARC_API double uarc_client_session_timeout_ms(const uarc_client *c)
{
    return c->revised_session_timeout;
}

/* ---- output ---- */

/* Writes what the channel has queued, without blocking. */
static void flush(uarc_client *c)
{
    if (!c->channel || c->fd < 0 || c->dialing)
        return;
    const uint8_t *data;
    size_t n;
    while ((n = uarc__channel_output(c->channel, &data)) > 0) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            set_error(c, current_step(c), UARC_BadConnectionClosed, "send failed: %s",
                      strerror(errno));
            note_cause(c, UARC_BadConnectionClosed, errno_reason(errno));
            end_connection(c, UARC_BadConnectionClosed);
            return;
        }
        uarc__channel_output_done(c->channel, (size_t)w);
    }
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

static pending_request take_pending(uarc_client *c, size_t index)
{
    pending_request p = c->pending[index];
    memmove(c->pending + index, c->pending + index + 1,
            (c->pending_count - index - 1) * sizeof *c->pending);
    c->pending_count--;
    return p;
}

/* Sends without checking the session state: the connect sequence uses this too. */
static uarc_status send_request(uarc_client *c, void *request, const uarc_type *request_type,
                                const uarc_type *response_type, uint32_t timeout_ms,
                                uarc_response_fn callback, void *user_data, uint32_t *handle_out)
{
    if (!c->channel || uarc__channel_get_state(c->channel) != UARC__CHANNEL_OPEN) {
        set_error(c, request_type->name, UARC_BadConnectionClosed, "not connected");
        return UARC_BadConnectionClosed;
    }
    if (request_type->member_count == 0 || request_type->members[0].type != UARC_T(RequestHeader)) {
        set_error(c, request_type->name, UARC_BadInvalidArgument, "not a service request type");
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
        set_error(c, request_type->name, status, "cannot send: %s",
                  uarc__channel_error(c->channel));
        return status;
    }
    int64_t now = now_ms(c);
    c->pending[c->pending_count++] =
        (pending_request){request_id, handle,           response_type,     callback,
                          user_data,  now + timeout_ms, request_type->name};
    c->last_send = now;
    if (handle_out)
        *handle_out = handle;
    flush(c);
    return UARC_Good;
}

UARC_API uarc_status uarc_client_send(uarc_client *c, void *request, const uarc_type *request_type,
                                      const uarc_type *response_type, uint32_t timeout_ms,
                                      uarc_response_fn callback, void *user_data,
                                      uint32_t *request_handle)
{
    if (!callback)
        return UARC_BadInvalidArgument;
    if (!connected_state(c->state)) {
        set_error(c, request_type->name, UARC_BadConnectionClosed, "not connected (state %s)",
                  uarc_client_state_name(c->state));
        return UARC_BadConnectionClosed;
    }
    return send_request(c, request, request_type, response_type, timeout_ms, callback, user_data,
                        request_handle);
}

/* Decodes a whole response and runs the callback of the request it answers. */
static void on_message(void *user_data, uint32_t request_id, const uint8_t *body, size_t length)
{
    uarc_client *c = user_data;
    size_t index;
    if (!find_pending(c, request_id, &index)) {
        uarc__log(&c->cfg.logger, UARC_LOG_INFO, "client",
                  "response to request %u that is no longer waited for (timed out?)", request_id);
        return;
    }
    pending_request p = take_pending(c, index);
    if (length == 0) { /* the channel passes no buffer at all then: nothing to decode from */
        set_error(c, p.service, UARC_BadDecodingError, "empty response");
        p.callback(p.user_data, UARC_BadDecodingError, NULL);
        return;
    }
    char detail[256] = "";
    uarc_decode_options options = c->cfg.decode;
    options.detail = detail;
    options.detail_size = sizeof detail;
    size_t offset = 0;
    uarc_nodeid type_id;
    uarc_status status = uarc_decode(body, length, &offset, &type_id, UARC_T(NodeId), &options);
    if (status != UARC_Good) {
        set_error(c, p.service, status, "response type id: %s", detail);
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
        set_error(c, p.service, UARC_BadUnknownResponse, "unexpected response type i=%u", id);
        p.callback(p.user_data, UARC_BadUnknownResponse, NULL);
        return;
    }
    void *response = uarc_new(type);
    if (!response) {
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
        set_error(c, p.service, status, "%s", detail);
        uarc_delete(response, type);
        p.callback(p.user_data, status, NULL);
        return;
    }
    uarc_status result = ((uarc_ResponseHeader *)response)->serviceResult;
    if (type == UARC_T(ServiceFault)) {
        /* A fault is a failure whatever code it carries: one that is not Bad (Good, Uncertain)
         * must not reach the caller as if the request had succeeded. */
        uarc_status failure = uarc_status_is_bad(result) ? result : UARC_BadUnexpectedError;
        if (failure == result)
            set_error(c, p.service, failure, "ServiceFault");
        else
            set_error(c, p.service, failure, "ServiceFault with the code %s",
                      uarc_status_name(result));
        uarc_delete(response, type);
        uarc__budget_release(c->cfg.memory_budget, charged);
        p.callback(p.user_data, failure, NULL);
        return;
    }
    if (uarc_status_is_bad(result))
        set_error(c, p.service, result, "service result");
    p.callback(p.user_data, uarc_status_is_bad(result) ? result : UARC_Good, response);
    uarc_delete(response, type);
    uarc__budget_release(c->cfg.memory_budget, charged);
}

static void on_message_failed(void *user_data, uint32_t request_id, uarc_status status,
                              const char *reason)
{
    uarc_client *c = user_data;
    size_t index;
    if (!find_pending(c, request_id, &index))
        return;
    pending_request p = take_pending(c, index);
    set_error(c, p.service, status, "%s", reason);
    p.callback(p.user_data, status, NULL);
}

static void on_closed(void *user_data, uarc_status status, const char *reason)
{
    uarc_client *c = user_data;
    if (c->state == UARC_CLIENT_CLOSING || c->state == UARC_CLIENT_DISCONNECTED) {
        end_connection(c, UARC_BadConnectionClosed);
        return;
    }
    set_error(c, current_step(c), status, "%s", reason && *reason ? reason : "channel closed");
    note_cause(c, status,
               uarc__channel_ended_by_err(c->channel)    ? "ERR from server"
               : status == UARC_BadSecureChannelClosed   ? "CLO from server"
               : status == UARC_BadTimeout               ? "handshake timeout"
               : status == UARC_BadTcpNotEnoughResources ? "memory budget"
               : status == UARC_BadUnknownResponse       ? "unsolicited responses"
                                                         : "protocol violation");
    /* Requests in flight learn that the channel is gone; while connecting, the cause itself (an
     * ERR's status, a malformed ACK) is why the client falls back to DISCONNECTED. */
    end_connection(c, connected_state(c->state) ? UARC_BadSecureChannelClosed : status);
}

/* ---- the connect sequence ---- */

static void start_create_session(uarc_client *c);
static void send_activate(uarc_client *c, uarc_response_fn done);
static void on_resume_session(void *user_data, uarc_status status, void *response);

static void on_opened(void *user_data)
{
    uarc_client *c = user_data;
    if (c->cfg.no_session) {
        c->connect_deadline = -1;
        set_state(c, UARC_CLIENT_CHANNEL_OPEN, UARC_Good);
        return;
    }
    c->resumed = false;
    if (c->has_session) {
        send_activate(c, on_resume_session);
    } else {
        forget_session(c); /* a token kept by uarc_client_forget_session() while connected */
        start_create_session(c);
    }
}

static void fail_connect(uarc_client *c, const char *step, uarc_status status, const char *fmt, ...)
    UARC__PRINTF(4, 5);

static void fail_connect(uarc_client *c, const char *step, uarc_status status, const char *fmt, ...)
{
    /* A connect request failed by the teardown itself: the connection is already gone, its
     * cause is already recorded, and the next connect must not inherit an ending. */
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vset_error(c, step, status, fmt, ap);
    va_end(ap);
    note_cause(c, status, "connect failed");
    end_connection(c, status);
}

/* The name a server's certificate is kept under in the trust store: the ServerUri we expect (from
 * the ReverseHello, or configured), else the endpoint URL we connect to. Never a name the
 * certificate or the server's messages choose: a substitute would then start a record of its
 * own. */
static const char *store_name(const uarc_client *c)
{
    return c->cfg.expected_server_uri ? c->cfg.expected_server_uri : c->endpoint_url;
}

/*
 * The trust decision for the server certificate `der` (see trust_list_dir in uarc/client.h):
 * the trust list, else the pin (`pinned`: `der` is the pinned certificate), else the trust store,
 * else accept_untrusted_server_certificate, else refused. Returns Good or the verdict, with the
 * reason in `why`.
 */
static uarc_status trust_server_certificate(uarc_client *c, const uint8_t *der, size_t length,
                                            bool pinned, char *why, size_t why_size)
{
    char detail[700];
    uarc_status s;
    if (c->cfg.trust_list_dir) {
        s = uarc__cert_validate(der, length, c->cfg.trust_list_dir, 0, detail, sizeof detail);
        if (s != UARC_Good)
            snprintf(why, why_size, "server %s; trust list %s", detail, c->cfg.trust_list_dir);
    } else if (pinned || c->cfg.trust_store_dir) {
        s = uarc__cert_validate(der, length, NULL, 0, detail, sizeof detail);
        if (s != UARC_Good)
            snprintf(why, why_size, "server %s", detail);
    } else {
        s = UARC_BadCertificateUntrusted;
        snprintf(why, why_size,
                 "the server's certificate was learned from the network (GetEndpoints or "
                 "CreateSession) and nothing decides whether to trust it: configure a trust list "
                 "(trust_list_dir), a pinned certificate (server_certificate), a trust store "
                 "(trust_store_dir), or accept any certificate "
                 "(accept_untrusted_server_certificate, tests only)");
        if (c->cfg.accept_untrusted_server_certificate) {
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
                      "accepting the server certificate learned from the network without any "
                      "trust decision (accept_untrusted_server_certificate)");
            return UARC_Good;
        }
    }
    if (s == UARC_Good && !c->cfg.trust_list_dir && !pinned && c->cfg.trust_store_dir) {
        bool recorded = false;
        char path[4200];
        s = uarc__cert_store_check(c->cfg.trust_store_dir, store_name(c), der, length, &recorded,
                                   path, sizeof path, detail, sizeof detail);
        if (s != UARC_Good) {
            snprintf(why, why_size, "trust store: %s", detail);
        } else if (recorded) {
            char thumbprint[41];
            uarc__cert_thumbprint(der, length, thumbprint);
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
                      "first certificate seen for %s (thumbprint %s) is trusted from now on and "
                      "recorded in %s; compare the thumbprint with the server's own",
                      store_name(c), thumbprint, path);
        }
    }
    if (s == UARC_Good || !c->cfg.accept_untrusted_server_certificate)
        return s;
    uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
              "accepting the server certificate despite %s (accept_untrusted_server_certificate): "
              "%s",
              uarc_status_name(s), why);
    return UARC_Good;
}

/* The serverCertificate of the discovery result's endpoint with `policy_uri` and `mode`. */
static const uarc_bytestring *endpoint_certificate(const uarc_client *c, const char *policy_uri,
                                                   uarc_MessageSecurityMode mode)
{
    for (size_t i = 0; i < c->endpoint_count; i++) {
        const uarc_EndpointDescription *e = &c->endpoints[i];
        if (uarc_string_equal_cstr(&e->securityPolicyUri, policy_uri) && e->securityMode == mode &&
            e->serverCertificate.length)
            return &e->serverCertificate;
    }
    return NULL;
}

/* The nonce of an ActivateSession response signs the next activation and goes into the next
 * encrypted password. A response without one leaves none (never the previous nonce, which the
 * server has seen used already), so a password cannot be encrypted for that activation. */
static void keep_server_nonce(uarc_client *c, const uarc_ActivateSessionResponse *r)
{
    uarc_bytestring copy = {0, NULL};
    if (r && uarc_copy(&r->serverNonce, &copy, UARC_T(ByteString)) != UARC_Good)
        copy = (uarc_bytestring){0, NULL};
    uarc_clear(&c->server_nonce, UARC_T(ByteString));
    c->server_nonce = copy;
}

/* On a secured channel: the session's server certificate is the channel's, and its signature
 * over our certificate and nonce verifies (Part 4 §5.6.2). Fails the connect otherwise. */
static uarc_status check_server_signature(uarc_client *c, const uarc_CreateSessionResponse *r)
{
    if (!c->policy)
        return UARC_Good;
    const char *why = NULL;
    uarc_status status = UARC_BadApplicationSignatureInvalid;
    uarc__chunk_layout layout;
    c->policy->asym_layout(c->security, false, &layout);
    size_t first =
        r->serverCertificate.data
            ? uarc__crypto_first_certificate(r->serverCertificate.data, r->serverCertificate.length)
            : 0;
    if (first != c->channel_cert_length ||
        memcmp(r->serverCertificate.data, c->channel_cert, first) != 0) {
        status = UARC_BadCertificateInvalid;
        why = "the server's certificate differs from the secure channel's";
    } else if (r->serverNonce.length < SESSION_NONCE_LENGTH) {
        status = UARC_BadNonceInvalid;
        why = "the server's nonce is shorter than 32 bytes";
    } else if (!uarc_string_equal_cstr(&r->serverSignature.algorithm,
                                       c->policy->asym_signature_uri)) {
        why = "the server's signature names another algorithm";
    } else if (r->serverSignature.signature.length != layout.signature_size) {
        why = "the server's signature has the wrong length";
    } else {
        size_t length = c->local_cert_length + sizeof c->client_nonce;
        uint8_t *data = uarc__malloc(length);
        if (!data) {
            status = UARC_BadOutOfMemory;
            why = "out of memory";
        } else {
            memcpy(data, c->local_cert, c->local_cert_length);
            memcpy(data + c->local_cert_length, c->client_nonce, sizeof c->client_nonce);
            if (c->policy->asym_verify(c->security, data, length,
                                       r->serverSignature.signature.data) != UARC_Good)
                why = "the server's signature does not verify";
            uarc__free(data);
        }
    }
    if (!why)
        return UARC_Good;
    fail_connect(c, "CreateSession", status, "%s", why);
    return status;
}

/* Signs serverCertificate + serverNonce with our key for ActivateSession. */
static uarc_status sign_activation(uarc_client *c, uarc_SignatureData *out, uint8_t **signature)
{
    uarc__chunk_layout layout;
    c->policy->asym_layout(c->security, true, &layout);
    size_t length = c->session_server_cert.length + c->server_nonce.length;
    uint8_t *data = uarc__malloc(length ? length : 1);
    *signature = uarc__malloc(layout.signature_size);
    uarc_status s = UARC_BadOutOfMemory;
    if (data && *signature) {
        if (c->session_server_cert.length)
            memcpy(data, c->session_server_cert.data, c->session_server_cert.length);
        if (c->server_nonce.length)
            memcpy(data + c->session_server_cert.length, c->server_nonce.data,
                   c->server_nonce.length);
        s = c->policy->asym_sign(c->security, data, length, *signature);
    }
    uarc__free(data);
    out->algorithm = (uarc_string){strlen(c->policy->asym_signature_uri),
                                   (uint8_t *)c->policy->asym_signature_uri};
    out->signature = (uarc_bytestring){layout.signature_size, *signature};
    return s;
}

/*
 * Whether the password may be encrypted for the serverCertificate of CreateSession with the
 * current server nonce (Part 4 §7.36.2.2 relies on both): the certificate must be the one of the
 * endpoint in use and trusted, the nonce at least 32 bytes. On a secured channel the certificate
 * is the channel's (check_server_signature), trusted before OPN; on a None channel nothing has
 * vouched for it yet, so the trust decision is made here. Returns Good, BadSecurityChecksFailed or
 * BadNonceInvalid with the reason in `why`.
 */
static uarc_status check_password_key(uarc_client *c, char *why, size_t why_size)
{
    const uarc_bytestring *cert = &c->session_server_cert;
    size_t length = cert->length ? uarc__crypto_first_certificate(cert->data, cert->length) : 0;
    if (!length) {
        snprintf(why, why_size,
                 "the password must be encrypted, but the server's certificate in CreateSession "
                 "is %s",
                 cert->length ? "not a certificate" : "missing");
        return UARC_BadSecurityChecksFailed;
    }
    if (!c->policy) {
        const uint8_t *chosen = c->server_cert;
        size_t chosen_length = c->server_cert_length;
        const char *source = "the pinned certificate";
        if (!chosen) {
            const uarc_bytestring *e =
                endpoint_certificate(c, SECURITY_POLICY_NONE, UARC_MessageSecurityMode_None);
            chosen = e ? e->data : NULL;
            chosen_length = e ? uarc__crypto_first_certificate(e->data, e->length) : 0;
            source = "the certificate of the endpoint from GetEndpoints";
        }
        if (chosen && (chosen_length != length || memcmp(chosen, cert->data, length) != 0)) {
            snprintf(why, why_size,
                     "the server's certificate in CreateSession is not %s; the password is not "
                     "encrypted for it",
                     source);
            return UARC_BadSecurityChecksFailed;
        }
        char reason[1200];
        uarc_status s = trust_server_certificate(c, cert->data, length, c->server_cert != NULL,
                                                 reason, sizeof reason);
        if (s != UARC_Good) {
            snprintf(why, why_size,
                     "the password would be encrypted for the server's certificate from "
                     "CreateSession on a None channel, which is not trusted (%s): %s",
                     uarc_status_name(s), reason);
            return UARC_BadSecurityChecksFailed;
        }
    }
    if (c->server_nonce.length < SESSION_NONCE_LENGTH) {
        snprintf(why, why_size,
                 "the server's nonce is %zu bytes, fewer than 32: a password encrypted with it "
                 "could be replayed",
                 c->server_nonce.length);
        return UARC_BadNonceInvalid;
    }
    return UARC_Good;
}

/* The legacy encrypted secret of Part 4 §7.36.2.2: length (UInt32) of password + serverNonce,
 * the password, the serverNonce, encrypted with the server's public key (RSA-OAEP of the token
 * policy). *secret is heap-owned by the caller. */
static uarc_status encrypt_password(uarc_client *c, const char *password, uarc_bytestring *secret,
                                    const char **algorithm, char *why, size_t why_size)
{
    const uarc__security_policy *policy = uarc__security_policy_find(c->token_policy_uri);
    if (!policy || policy == &uarc__security_policy_none) {
        snprintf(why, why_size, "the password must be encrypted with %s, which is not implemented",
                 c->token_policy_uri);
        return UARC_BadSecurityPolicyRejected;
    }
    const uarc_bytestring *cert = &c->session_server_cert;
    if (!cert->length) {
        snprintf(why, why_size, "the server sent no certificate to encrypt the password with");
        return UARC_BadCertificateInvalid;
    }
    uarc__security_config config = {
        UARC_MessageSecurityMode_SignAndEncrypt, {NULL, 0}, {NULL, 0}, {cert->data, cert->length}};
    void *context = NULL;
    uarc_status s = policy->context_new(&config, &context);
    if (s != UARC_Good) {
        snprintf(why, why_size, "cannot use the server's certificate");
        return s;
    }
    uarc__chunk_layout layout;
    policy->asym_layout(context, true, &layout);
    size_t pw = strlen(password), plain = 4 + pw + c->server_nonce.length;
    size_t blocks = (plain + layout.plain_block - 1) / layout.plain_block;
    size_t capacity = blocks * layout.cipher_block;
    uint8_t *buffer = uarc__malloc(capacity > plain ? capacity : plain);
    if (!buffer) {
        policy->context_delete(context);
        return UARC_BadOutOfMemory;
    }
    uint32_t n = (uint32_t)(pw + c->server_nonce.length);
    for (int i = 0; i < 4; i++)
        buffer[i] = (uint8_t)(n >> (8 * i));
    memcpy(buffer + 4, password, pw);
    if (c->server_nonce.length)
        memcpy(buffer + 4 + pw, c->server_nonce.data, c->server_nonce.length);
    s = policy->asym_encrypt(context, buffer, plain, capacity);
    policy->context_delete(context);
    if (s != UARC_Good) {
        uarc__crypto_free_secret(buffer, capacity > plain ? capacity : plain);
        snprintf(why, why_size, "encrypting the password failed");
        return s;
    }
    *secret = (uarc_bytestring){capacity, buffer};
    *algorithm = policy->asym_encryption_uri;
    return UARC_Good;
}

/* Whether `list` has an endpoint of e's security policy and mode whose certificate is e's, where
 * both carry one (Part 4 §5.6.2 lets serverEndpoints leave certificates out). */
static bool has_endpoint(const uarc_EndpointDescription *list, size_t count,
                         const uarc_EndpointDescription *e)
{
    size_t length =
        e->serverCertificate.length
            ? uarc__crypto_first_certificate(e->serverCertificate.data, e->serverCertificate.length)
            : 0;
    for (size_t i = 0; i < count; i++) {
        const uarc_EndpointDescription *o = &list[i];
        if (!uarc_equal(&o->securityPolicyUri, &e->securityPolicyUri, UARC_T(String)) ||
            o->securityMode != e->securityMode)
            continue;
        if (!length || !o->serverCertificate.length)
            return true;
        size_t other =
            uarc__crypto_first_certificate(o->serverCertificate.data, o->serverCertificate.length);
        if (other == length &&
            memcmp(o->serverCertificate.data, e->serverCertificate.data, length) == 0)
            return true;
    }
    return false;
}

/* The serverEndpoints of CreateSession against the discovery result, when there is one: the same
 * policies and modes, and the same certificates (Part 4 §5.6.2). A difference means that the
 * discovery was tampered with (a policy hidden, a certificate substituted) or that another server
 * answers. */
static uarc_status check_server_endpoints(uarc_client *c, const uarc_CreateSessionResponse *r)
{
    if (!c->endpoints)
        return UARC_Good;
    const uarc_EndpointDescription *missing = NULL;
    const char *where = NULL;
    for (size_t i = 0; i < c->endpoint_count && !missing; i++)
        if (!has_endpoint(r->serverEndpoints, r->serverEndpointsSize, &c->endpoints[i])) {
            missing = &c->endpoints[i];
            where = "GetEndpoints offered it, CreateSession's serverEndpoints do not";
        }
    for (size_t i = 0; i < r->serverEndpointsSize && !missing; i++)
        if (!has_endpoint(c->endpoints, c->endpoint_count, &r->serverEndpoints[i])) {
            missing = &r->serverEndpoints[i];
            where = "CreateSession's serverEndpoints offer it, GetEndpoints did not";
        }
    if (!missing)
        return UARC_Good;
    const uarc_string *p = &missing->securityPolicyUri;
    static const char *const modes[] = {"Invalid", "None", "Sign", "SignAndEncrypt"};
    unsigned mode = (unsigned)missing->securityMode;
    fail_connect(c, "CreateSession", UARC_BadSecurityChecksFailed,
                 "the server's endpoints differ from GetEndpoints: %.*s in mode %s%s: %s",
                 (int)(p->length > 200 ? 200 : p->length), p->length ? (const char *)p->data : "",
                 mode < 4 ? modes[mode] : "?",
                 missing->serverCertificate.length ? " with that certificate" : "", where);
    return UARC_BadSecurityChecksFailed;
}

/* The userTokenSignature of an X509 identity (Part 4 §7.36.5): serverCertificate + serverNonce,
 * as the client signature, signed with the user's key by the token policy's algorithm.
 * *signature is heap-owned by the caller. */
static uarc_status sign_user_token(uarc_client *c, uarc_SignatureData *out, uint8_t **signature,
                                   char *why, size_t why_size)
{
    const uarc__security_policy *policy = uarc__security_policy_find(c->token_policy_uri);
    if (!policy || policy == &uarc__security_policy_none) {
        snprintf(why, why_size, "the user token must be signed per %s, which is not implemented",
                 c->token_policy_uri);
        return UARC_BadSecurityPolicyRejected;
    }
    /* The context only signs here; the policies want a remote certificate, and the user's own
     * serves (nothing is encrypted or verified with it). */
    uarc_view cert = {c->user_cert, c->user_cert_length};
    uarc__security_config config = {
        UARC_MessageSecurityMode_SignAndEncrypt, cert, {c->user_key, c->user_key_length}, cert};
    void *context = NULL;
    uarc_status s = policy->context_new(&config, &context);
    if (s != UARC_Good) {
        snprintf(why, why_size,
                 "the user certificate and key do not suit %s (a key that is not the "
                 "certificate's, or not RSA)",
                 policy->uri);
        return s;
    }
    uarc__chunk_layout layout;
    policy->asym_layout(context, true, &layout);
    size_t length = c->session_server_cert.length + c->server_nonce.length;
    uint8_t *data = uarc__malloc(length ? length : 1);
    *signature = uarc__malloc(layout.signature_size);
    s = UARC_BadOutOfMemory;
    if (data && *signature) {
        if (c->session_server_cert.length)
            memcpy(data, c->session_server_cert.data, c->session_server_cert.length);
        if (c->server_nonce.length)
            memcpy(data + c->session_server_cert.length, c->server_nonce.data,
                   c->server_nonce.length);
        s = policy->asym_sign(context, data, length, *signature);
    }
    uarc__free(data);
    policy->context_delete(context);
    if (s != UARC_Good) {
        snprintf(why, why_size, "signing the user token failed");
        return s;
    }
    out->algorithm =
        (uarc_string){strlen(policy->asym_signature_uri), (uint8_t *)policy->asym_signature_uri};
    out->signature = (uarc_bytestring){layout.signature_size, *signature};
    return UARC_Good;
}

/* Picks the server's identity token policy for our security policy and identity. */
static void choose_identity_policy(uarc_client *c, const uarc_CreateSessionResponse *r,
                                   uarc_string *token_security_policy)
{
    c->identity_type = c->user_cert       ? UARC_UserTokenType_Certificate
                       : c->cfg.user_name ? UARC_UserTokenType_UserName
                                          : UARC_UserTokenType_Anonymous;
    snprintf(c->identity_policy_id, sizeof c->identity_policy_id, "%s",
             c->user_cert       ? "certificate"
             : c->cfg.user_name ? "username"
                                : "anonymous");
    *token_security_policy = (uarc_string){0, NULL};
    uarc_MessageSecurityMode mode =
        c->policy ? c->policy->mode(c->security) : UARC_MessageSecurityMode_None;
    for (size_t i = 0; i < r->serverEndpointsSize; i++) {
        const uarc_EndpointDescription *e = &r->serverEndpoints[i];
        /* node-opcua names policies per endpoint ("anonymous_2"): the mode must match too */
        if (!uarc_string_equal_cstr(&e->securityPolicyUri, c->cfg.security_policy_uri) ||
            e->securityMode != mode)
            continue;
        for (size_t j = 0; j < e->userIdentityTokensSize; j++) {
            const uarc_UserTokenPolicy *t = &e->userIdentityTokens[j];
            if (t->tokenType != c->identity_type || t->policyId.length == 0 ||
                t->policyId.length >= sizeof c->identity_policy_id)
                continue;
            memcpy(c->identity_policy_id, t->policyId.data, t->policyId.length);
            c->identity_policy_id[t->policyId.length] = '\0';
            *token_security_policy = t->securityPolicyUri;
            return;
        }
    }
}

static void on_activate_session(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    (void)response;
    if (status != UARC_Good) {
        fail_connect(c, "ActivateSession", status, "the server refused to activate the session");
        return;
    }
    keep_server_nonce(c, response);
    c->has_session = true;
    c->connect_deadline = -1;
    set_state(c, UARC_CLIENT_SESSION_ACTIVE, UARC_Good);
    if (c->hooks.session_active && c->state == UARC_CLIENT_SESSION_ACTIVE)
        c->hooks.session_active(c->hooks.user_data, false);
}

static void on_resume_session(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    (void)response;
    if (status == UARC_Good) {
        keep_server_nonce(c, response);
        c->resumed = true;
        c->connect_deadline = -1;
        set_state(c, UARC_CLIENT_SESSION_ACTIVE, UARC_Good);
        if (c->hooks.session_active && c->state == UARC_CLIENT_SESSION_ACTIVE)
            c->hooks.session_active(c->hooks.user_data, true);
        return;
    }
    /* The connection ended before the answer: keep the session for the next connect. */
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return;
    /* The server no longer knows the session (restarted, or it timed out): start a new one. */
    uarc__log(&c->cfg.logger, UARC_LOG_INFO, "client",
              "re-activating the previous session failed (%s); creating a new session",
              uarc_status_name(status));
    forget_session(c);
    start_create_session(c);
}

/* Sends ActivateSession for the session in c->authentication_token with our identity. */
static void send_activate(uarc_client *c, uarc_response_fn done)
{
    uarc_ActivateSessionRequest req;
    uarc_init(&req, UARC_T(ActivateSessionRequest));
    uarc_AnonymousIdentityToken anonymous;
    uarc_UserNameIdentityToken user;
    uarc_X509IdentityToken x509;
    uint8_t *user_signature = NULL;
    uarc_string policy_id = {strlen(c->identity_policy_id), (uint8_t *)c->identity_policy_id};
    uint8_t *signature = NULL;
    uarc_bytestring secret = {0, NULL};
    if (c->policy && sign_activation(c, &req.clientSignature, &signature) != UARC_Good) {
        uarc__free(signature);
        fail_connect(c, "ActivateSession", UARC_BadInternalError, "cannot sign the activation");
        return;
    }
    req.userIdentityToken.encoding = UARC_EXTENSION_OBJECT_DECODED;
    if (c->identity_type == UARC_UserTokenType_Anonymous) {
        anonymous.policyId = policy_id;
        req.userIdentityToken.content.decoded.type = UARC_T(AnonymousIdentityToken);
        req.userIdentityToken.content.decoded.data = &anonymous;
    } else if (c->identity_type == UARC_UserTokenType_Certificate) {
        x509 = (uarc_X509IdentityToken){policy_id, {c->user_cert_length, c->user_cert}};
        if (c->token_policy_uri[0]) {
            char why[256];
            uarc_status s =
                sign_user_token(c, &req.userTokenSignature, &user_signature, why, sizeof why);
            if (s != UARC_Good) {
                uarc__free(signature);
                uarc__free(user_signature);
                fail_connect(c, "ActivateSession", s, "%s", why);
                return;
            }
        } else {
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "client",
                      "the X509 user token policy names SecurityPolicy None: the token goes "
                      "unsigned");
        }
        req.userIdentityToken.content.decoded.type = UARC_T(X509IdentityToken);
        req.userIdentityToken.content.decoded.data = &x509;
    } else {
        bool channel_unencrypted =
            !c->policy ||
            (c->policy && c->policy->mode(c->security) != UARC_MessageSecurityMode_SignAndEncrypt);
        const char *password = c->cfg.password ? c->cfg.password : "";
        const char *algorithm = NULL;
        if (c->token_policy_uri[0]) {
            char why[1500];
            uarc_status s = check_password_key(c, why, sizeof why);
            if (s == UARC_Good)
                s = encrypt_password(c, password, &secret, &algorithm, why, sizeof why);
            if (s != UARC_Good) {
                uarc__free(signature);
                fail_connect(c, "ActivateSession", s, "%s", why);
                return;
            }
        } else if (channel_unencrypted && !c->cfg.allow_unencrypted_password) {
            uarc__free(signature);
            fail_connect(c, "ActivateSession", UARC_BadSecurityModeInsufficient,
                         "refusing to send a password over an unencrypted channel "
                         "(allow_unencrypted_password is not set)");
            return;
        }
        user = (uarc_UserNameIdentityToken){
            .policyId = policy_id,
            .userName = {strlen(c->cfg.user_name), (uint8_t *)c->cfg.user_name},
            .password = {strlen(password), *password ? (uint8_t *)password : UARC_EMPTY},
        };
        if (secret.data) {
            user.password = secret;
            user.encryptionAlgorithm = (uarc_string){strlen(algorithm), (uint8_t *)algorithm};
        }
        req.userIdentityToken.content.decoded.type = UARC_T(UserNameIdentityToken);
        req.userIdentityToken.content.decoded.data = &user;
    }
    set_state(c, UARC_CLIENT_ACTIVATING_SESSION, UARC_Good);
    uarc_status status = send_request(c, &req, UARC_T(ActivateSessionRequest),
                                      UARC_T(ActivateSessionResponse), 0, done, c, NULL);
    uarc__free(signature);
    uarc__free(user_signature);
    uarc__crypto_free_secret(secret.data, secret.length);
    if (status != UARC_Good)
        fail_connect(c, "ActivateSession", status, "cannot send the request");
}

static void on_create_session(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    if (status != UARC_Good) {
        fail_connect(c, "CreateSession", status, "the server refused to create a session");
        return;
    }
    uarc_CreateSessionResponse *r = response;
    forget_session(c);
    if (uarc_copy(&r->authenticationToken, &c->authentication_token, UARC_T(NodeId)) != UARC_Good) {
        fail_connect(c, "CreateSession", UARC_BadOutOfMemory, "out of memory");
        return;
    }
    c->revised_session_timeout = r->revisedSessionTimeout;
    uarc_status s = check_server_signature(c, r);
    if (s == UARC_Good)
        s = check_server_endpoints(c, r);
    if (s != UARC_Good)
        return;
    uarc_clear(&c->session_server_cert, UARC_T(ByteString));
    uarc_clear(&c->server_nonce, UARC_T(ByteString));
    if (uarc_copy(&r->serverCertificate, &c->session_server_cert, UARC_T(ByteString)) !=
            UARC_Good ||
        uarc_copy(&r->serverNonce, &c->server_nonce, UARC_T(ByteString)) != UARC_Good) {
        fail_connect(c, "CreateSession", UARC_BadOutOfMemory, "out of memory");
        return;
    }
    uarc_string token_policy;
    choose_identity_policy(c, r, &token_policy);
    c->token_policy_uri[0] = '\0';
    if (token_policy.length > 0 && !uarc_string_equal_cstr(&token_policy, SECURITY_POLICY_NONE))
        snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%.*s", (int)token_policy.length,
                 (const char *)token_policy.data);
    else if (token_policy.length == 0 && c->policy)
        /* Part 4 §7.41: an empty SecurityPolicyUri means the endpoint's own policy */
        snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%s", c->policy->uri);
    send_activate(c, on_activate_session);
}

static void start_create_session(uarc_client *c)
{
    uarc_CreateSessionRequest req;
    uarc_init(&req, UARC_T(CreateSessionRequest));
    const char *app_uri = c->cfg.application_uri, *app_name = c->cfg.application_name;
    req.clientDescription.applicationUri = (uarc_string){strlen(app_uri), (uint8_t *)app_uri};
    req.clientDescription.productUri = req.clientDescription.applicationUri;
    req.clientDescription.applicationName.text =
        (uarc_string){strlen(app_name), (uint8_t *)app_name};
    req.clientDescription.applicationType = UARC_ApplicationType_Client;
    req.endpointUrl = (uarc_string){strlen(c->endpoint_url), (uint8_t *)c->endpoint_url};
    req.sessionName = (uarc_string){strlen(c->cfg.session_name), (uint8_t *)c->cfg.session_name};
    if (getrandom(c->client_nonce, sizeof c->client_nonce, 0) != (ssize_t)sizeof c->client_nonce) {
        fail_connect(c, "CreateSession", UARC_BadInternalError, "no random bytes for the nonce");
        return;
    }
    req.clientNonce = (uarc_bytestring){sizeof c->client_nonce, c->client_nonce};
    if (c->policy)
        req.clientCertificate = (uarc_bytestring){c->local_cert_length, c->local_cert};
    req.requestedSessionTimeout = c->cfg.session_timeout_ms;
    req.maxResponseMessageSize = c->cfg.max_message_size;
    set_state(c, UARC_CLIENT_CREATING_SESSION, UARC_Good);
    uarc_status status = send_request(c, &req, UARC_T(CreateSessionRequest),
                                      UARC_T(CreateSessionResponse), 0, on_create_session, c, NULL);
    if (status != UARC_Good)
        fail_connect(c, "CreateSession", status, "cannot send the request");
}

static uarc_status security_failed(uarc_client *c, uarc_status status, const char *fmt, ...)
    UARC__PRINTF(3, 4);

static uarc_status security_failed(uarc_client *c, uarc_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(c, "OPN", status, fmt, ap);
    va_end(ap);
    end_connection(c, status);
    return status;
}

/* Loads a file into *dst unless it already holds bytes. */
static uarc_status load_once(uarc_client *c, const char *path, bool key, uint8_t **dst,
                             size_t *length, const char *what)
{
    if (*dst || !path)
        return UARC_Good;
    uarc_status s = key ? uarc__crypto_load_private_key(path, dst, length)
                        : uarc__crypto_load_certificate(path, dst, length);
    if (s != UARC_Good)
        return security_failed(c, s, "cannot read the %s from %s", what, path);
    return UARC_Good;
}

/* The server certificate of the secured channel, the pin or the discovery result's, trusted
 * before anything is encrypted for its key; kept in c->channel_cert. */
static uarc_status choose_server_certificate(uarc_client *c, const uarc__security_policy *policy)
{
    uarc__free(c->channel_cert);
    c->channel_cert = NULL;
    c->channel_cert_length = 0;
    const uint8_t *der = c->server_cert;
    size_t length = c->server_cert_length;
    if (!der) {
        uarc_MessageSecurityMode mode =
            c->cfg.security_mode ? c->cfg.security_mode : UARC_MessageSecurityMode_SignAndEncrypt;
        const uarc_bytestring *found = endpoint_certificate(c, policy->uri, mode);
        der = found ? found->data : NULL;
        length = found ? uarc__crypto_first_certificate(found->data, found->length) : 0;
        if (found && !length)
            return security_failed(c, UARC_BadCertificateInvalid,
                                   "the serverCertificate of the endpoint for %s is not a "
                                   "certificate",
                                   policy->uri);
    }
    if (!der)
        return security_failed(c, UARC_BadCertificateInvalid,
                               "%s needs the server's certificate before OPN: run GetEndpoints "
                               "first (a None channel with no_session) and pass the result "
                               "(uarc_client_set_endpoints), or pin the certificate "
                               "(server_certificate)%s",
                               policy->uri,
                               c->endpoint_count ? "; the endpoints known offer none for this "
                                                   "policy and mode"
                                                 : "");
    if (!copy_bytes(&c->channel_cert, &c->channel_cert_length, der, length))
        return security_failed(c, UARC_BadOutOfMemory, "out of memory");
    if (c->cfg.expected_server_uri) {
        char uri[512];
        uarc_status s = uarc__crypto_certificate_uri(der, length, uri, sizeof uri);
        if (s != UARC_Good || strcmp(uri, c->cfg.expected_server_uri) != 0)
            return security_failed(
                c, UARC_BadCertificateUriInvalid,
                "the server's certificate names URI %s, but the server claims to be %s",
                s == UARC_Good ? uri : "(none)", c->cfg.expected_server_uri);
    }
    char why[1200];
    uarc_status s =
        trust_server_certificate(c, der, length, der == c->server_cert, why, sizeof why);
    if (s != UARC_Good)
        return security_failed(c, s, "%s", why);
    return UARC_Good;
}

/* For a policy other than None: our certificate and key (loaded or made once), the server's
 * certificate, its URI against expected_server_uri, and the policy context for the session. */
static uarc_status prepare_security(uarc_client *c, uarc__channel_config *cc)
{
    const uarc__security_policy *policy = uarc__security_policy_find(c->cfg.security_policy_uri);
    if (!policy)
        return security_failed(c, UARC_BadSecurityPolicyRejected,
                               "security policy %s is not implemented", c->cfg.security_policy_uri);
    if (policy == &uarc__security_policy_none)
        return UARC_Good;
    uarc_status s;
    if ((s = load_once(c, c->cfg.certificate_file, false, &c->local_cert, &c->local_cert_length,
                       "certificate")) != UARC_Good ||
        (s = load_once(c, c->cfg.private_key_file, true, &c->local_key, &c->local_key_length,
                       "private key")) != UARC_Good ||
        (s = load_once(c, c->cfg.server_certificate_file, false, &c->server_cert,
                       &c->server_cert_length, "server certificate")) != UARC_Good)
        return s;
    if (!c->local_cert && c->cfg.generate_certificate) {
        s = uarc__crypto_make_certificate(c->cfg.application_uri, &c->local_cert,
                                          &c->local_cert_length, &c->local_key,
                                          &c->local_key_length);
        if (s != UARC_Good)
            return security_failed(c, s, "cannot make a self-signed certificate");
        uarc__log(&c->cfg.logger, UARC_LOG_INFO, "client",
                  "made an ephemeral self-signed certificate for %s", c->cfg.application_uri);
    }
    if (!c->local_cert || !c->local_key)
        return security_failed(c, UARC_BadCertificateInvalid,
                               "%s needs a client certificate and private key (or "
                               "generate_certificate)",
                               policy->uri);
    if ((s = choose_server_certificate(c, policy)) != UARC_Good)
        return s;
    cc->security_mode = c->cfg.security_mode;
    cc->local_certificate = (uarc_view){c->local_cert, c->local_cert_length};
    cc->local_private_key = (uarc_view){c->local_key, c->local_key_length};
    cc->remote_certificate = (uarc_view){c->channel_cert, c->channel_cert_length};
    uarc__security_config config = {cc->security_mode, cc->local_certificate, cc->local_private_key,
                                    cc->remote_certificate};
    s = policy->context_new(&config, &c->security);
    if (s == UARC_BadCertificatePolicyCheckFailed)
        return security_failed(c, s,
                               "%s takes RSA keys of 2048 to 4096 bits only (ours or the "
                               "server's certificate has another size)",
                               policy->uri);
    if (s != UARC_Good)
        return security_failed(c, s,
                               "the certificates or mode do not suit %s (a key that is not the "
                               "certificate's, not RSA, or mode None)",
                               policy->uri);
    c->policy = policy;
    return UARC_Good;
}

/* Creates the channel on the connected socket and sends HEL. */
static uarc_status start_channel(uarc_client *c)
{
    int one = 1;
    if (c->fd >= 0)
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uarc__channel_config cc = {
        .endpoint_url = c->endpoint_url,
        .receive_buffer_size = c->cfg.receive_buffer_size,
        .send_buffer_size = c->cfg.send_buffer_size,
        .max_message_size = c->cfg.max_message_size,
        .max_chunk_count = c->cfg.max_chunk_count,
        .requested_lifetime_ms = c->cfg.secure_channel_lifetime_ms,
        .handshake_timeout_ms =
            c->cfg.handshake_timeout_ms ? c->cfg.handshake_timeout_ms : c->cfg.connect_timeout_ms,
        .security_policy_uri = c->cfg.security_policy_uri,
        .decode = c->cfg.decode,
        .budget = c->cfg.memory_budget,
        .max_unsolicited = c->cfg.max_unsolicited_responses,
        .logger = c->cfg.logger,
    };
    uarc__channel_events ev = {on_opened, on_message, on_message_failed, on_closed, c};
    if (prepare_security(c, &cc) != UARC_Good)
        return c->end_status;
    c->channel = uarc__channel_new(&cc, &ev);
    if (!c->channel) {
        fail_connect(c, "HEL", UARC_BadSecurityPolicyRejected,
                     "cannot set up a channel with security policy %s (or out of memory)",
                     c->cfg.security_policy_uri);
        return c->end_status;
    }
    set_state(c, UARC_CLIENT_HELLO, UARC_Good);
    uarc_status status = uarc__channel_start(c->channel, now_ms(c));
    if (status != UARC_Good) {
        fail_connect(c, "HEL", status, "%s", uarc__channel_error(c->channel));
        return status;
    }
    flush(c);
    return UARC_Good;
}

/* Our ApplicationDescription must carry the URI of the certificate we present (Part 4 §5.6.2;
 * open62541 refuses the session otherwise). With a configured certificate, the URI comes from it;
 * a configured application_uri that differs is a configuration error, found before any byte is
 * sent. */
static uarc_status adopt_certificate_uri(uarc_client *c)
{
    if (!c->local_cert && c->cfg.certificate_file) {
        uarc_status s = uarc__crypto_load_certificate(c->cfg.certificate_file, &c->local_cert,
                                                      &c->local_cert_length);
        if (s != UARC_Good) {
            set_error(c, "connect", s, "cannot read the certificate from %s",
                      c->cfg.certificate_file);
            return s;
        }
    }
    if (!c->local_cert)
        return UARC_Good;
    char uri[512];
    uarc_status s =
        uarc__crypto_certificate_uri(c->local_cert, c->local_cert_length, uri, sizeof uri);
    if (s != UARC_Good) {
        set_error(c, "connect", s,
                  "our certificate%s%s has no usable subjectAltName URI, which OPC UA requires as "
                  "the client's ApplicationUri",
                  c->cfg.certificate_file ? " " : "",
                  c->cfg.certificate_file ? c->cfg.certificate_file : "");
        return s;
    }
    if (strcmp(uri, c->cfg.application_uri) == 0)
        return UARC_Good;
    if (c->application_uri_given) {
        set_error(c, "connect", UARC_BadCertificateUriInvalid,
                  "application_uri %s differs from the URI %s of our certificate; the server would "
                  "refuse the session",
                  c->cfg.application_uri, uri);
        return UARC_BadCertificateUriInvalid;
    }
    char *copy = dup_or_null(uri);
    if (!copy)
        return UARC_BadOutOfMemory;
    uarc__free(c->strings[STRING_APPLICATION_URI]);
    c->strings[STRING_APPLICATION_URI] = copy;
    c->cfg.application_uri = copy;
    return UARC_Good;
}

/* The X509 user identity: certificate and key loaded once, before any byte is sent. */
static uarc_status load_user_identity(uarc_client *c)
{
    const char *files[2] = {c->cfg.user_certificate_file, c->cfg.user_private_key_file};
    uint8_t **dst[2] = {&c->user_cert, &c->user_key};
    size_t *length[2] = {&c->user_cert_length, &c->user_key_length};
    for (int i = 0; i < 2; i++) {
        if (*dst[i] || !files[i])
            continue;
        uarc_status s = i ? uarc__crypto_load_private_key(files[i], dst[i], length[i])
                          : uarc__crypto_load_certificate(files[i], dst[i], length[i]);
        if (s != UARC_Good) {
            set_error(c, "connect", s, "cannot read the user %s from %s",
                      i ? "private key" : "certificate", files[i]);
            return s;
        }
    }
    const char *why = NULL;
    if (!c->user_cert != !c->user_key)
        why = "a user certificate needs its private key, and a user private key its certificate";
    else if (c->user_cert && c->cfg.user_name)
        why = "user_name and a user certificate exclude each other: one identity per session";
    if (!why)
        return UARC_Good;
    set_error(c, "connect", UARC_BadInvalidArgument, "%s", why);
    return UARC_BadInvalidArgument;
}

/* Starts a connect in byte mode (`bytes`, at time `now`) or over a socket. */
static uarc_status begin(uarc_client *c, const char *endpoint_url, bool bytes, int64_t now)
{
    if (c->state != UARC_CLIENT_DISCONNECTED) {
        set_error(c, "connect", UARC_BadInvalidState, "already connected or connecting (%s)",
                  uarc_client_state_name(c->state));
        return UARC_BadInvalidState;
    }
    c->bytes_mode = bytes;
    c->now = now;
    drop_tail(c);
    c->error[0] = '\0';
    c->last_status = UARC_Good;
    c->cause_status = UARC_Good;
    c->cause_reason[0] = c->peer[0] = '\0';
    if (c->endpoint_url && strcmp(c->endpoint_url, endpoint_url) != 0)
        forget_session(c);
    uarc__free(c->endpoint_url);
    c->endpoint_url = dup_or_null(endpoint_url);
    if (!c->endpoint_url)
        return UARC_BadOutOfMemory;
    uarc_status status = adopt_certificate_uri(c);
    if (status == UARC_Good)
        status = load_user_identity(c);
    if (status != UARC_Good)
        return status;
    c->connect_deadline = now_ms(c) + c->cfg.connect_timeout_ms;
    uarc__log(&c->cfg.logger, UARC_LOG_DEBUG, "client",
              "connecting to %s: connect timeout %u ms, request timeout %u ms, keep-alive %s%u ms",
              endpoint_url, c->cfg.connect_timeout_ms, c->cfg.request_timeout_ms,
              c->cfg.keepalive_interval_ms ? "" : "at most ",
              c->cfg.keepalive_interval_ms ? c->cfg.keepalive_interval_ms
                                           : (unsigned)DEFAULT_KEEPALIVE_MAX_MS);
    return UARC_Good;
}

/* Remembers the address of the server's end of the socket, for reports. */
static void note_peer(uarc_client *c)
{
    struct sockaddr_storage ss;
    socklen_t length = sizeof ss;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &length) == 0)
        uarc__format_sockaddr((struct sockaddr *)&ss, c->peer, sizeof c->peer);
}

static uarc_status check_endpoint_url(uarc_client *c, const char *endpoint_url)
{
    char reason[256];
    uarc_status status = uarc_endpoint_url_check(
        (uarc_view){(const uint8_t *)endpoint_url, strlen(endpoint_url)}, reason, sizeof reason);
    if (status != UARC_Good)
        set_error(c, "HEL", status, "%s", reason);
    return status;
}

UARC_API uarc_status uarc_client_start_socket(uarc_client *c, int fd, const char *endpoint_url)
{
    uarc_status status = begin(c, endpoint_url, false, uarc__now_ms());
    if (status == UARC_Good)
        status = check_endpoint_url(c, endpoint_url);
    if (status != UARC_Good) {
        close(fd);
        return status;
    }
    c->fd = fd;
    note_peer(c);
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    status = start_channel(c);
    finish_ending(c);
    return status == UARC_Good ? UARC_Good : c->last_status;
}

UARC_API uarc_status uarc_client_start_bytes(uarc_client *c, const char *endpoint_url,
                                             int64_t now_ms)
{
    uarc_status status = begin(c, endpoint_url, true, now_ms);
    if (status == UARC_Good)
        status = check_endpoint_url(c, endpoint_url);
    if (status != UARC_Good)
        return status;
    status = start_channel(c);
    finish_ending(c);
    return status == UARC_Good ? UARC_Good : c->last_status;
}

UARC_API uarc_status uarc_client_start_connect(uarc_client *c, const char *endpoint_url)
{
    uarc_status status = begin(c, endpoint_url, false, uarc__now_ms());
    if (status != UARC_Good)
        return status;
    char host[256], detail[256];
    uint16_t port;
    status =
        uarc__split_endpoint_url(endpoint_url, host, sizeof host, &port, detail, sizeof detail);
    if (status == UARC_Good)
        status = uarc__dialer_start(&c->dialer, host, port, detail, sizeof detail);
    if (status != UARC_Good) {
        set_error(c, "connect", status, "%s", detail);
        c->connect_deadline = -1;
        return status;
    }
    c->dialing = true;
    set_state(c, UARC_CLIENT_CONNECTING, UARC_Good);
    return UARC_Good;
}

/* ---- the event loop edge ---- */

UARC_API int uarc_client_fd(const uarc_client *c)
{
    return c->dialing ? c->dialer.fd : c->fd;
}

UARC_API short uarc_client_poll_events(const uarc_client *c)
{
    if (c->dialing)
        return POLLOUT;
    if (c->fd < 0)
        return 0;
    const uint8_t *data;
    return (short)(POLLIN | (c->channel && uarc__channel_output(c->channel, &data) ? POLLOUT : 0));
}

static int64_t keepalive_interval(const uarc_client *c)
{
    if (c->cfg.keepalive_interval_ms)
        return c->cfg.keepalive_interval_ms;
    double t = c->revised_session_timeout > 0 ? c->revised_session_timeout / 3 : 20000;
    if (t > DEFAULT_KEEPALIVE_MAX_MS)
        t = DEFAULT_KEEPALIVE_MAX_MS;
    return t < 100 ? 100 : (int64_t)t;
}

static int64_t next_deadline(const uarc_client *c)
{
    int64_t next = c->connect_deadline;
#define EARLIER(t)                                                                                 \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (t_ >= 0 && (next < 0 || t_ < next))                                                    \
            next = t_;                                                                             \
    } while (0)
    for (size_t i = 0; i < c->pending_count; i++)
        EARLIER(c->pending[i].deadline);
    if (c->channel)
        EARLIER(uarc__channel_next_deadline(c->channel));
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && !c->keepalive_in_flight)
        EARLIER(c->last_send + keepalive_interval(c));
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && c->hooks.next_deadline)
        EARLIER(c->hooks.next_deadline(c->hooks.user_data));
#undef EARLIER
    return next;
}

UARC_API int uarc_client_timeout_ms(const uarc_client *c)
{
    int64_t next = next_deadline(c);
    if (next < 0)
        return -1;
    int64_t left = next - now_ms(c);
    return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void on_keepalive(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    (void)response;
    c->keepalive_in_flight = false;
    if (status == UARC_BadTimeout) {
        set_error(c, "keep-alive", status, "the server did not answer the keep-alive read");
        note_cause(c, UARC_BadTimeout, "keep-alive timeout");
        end_connection(c, UARC_BadConnectionClosed);
    }
}

static void send_keepalive(uarc_client *c)
{
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_State),
                             .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.timestampsToReturn = UARC_TimestampsToReturn_Neither;
    req.nodesToReadSize = 1;
    req.nodesToRead = &node;
    if (send_request(c, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0, on_keepalive, c,
                     NULL) == UARC_Good)
        c->keepalive_in_flight = true;
    else
        c->last_send = now_ms(c); /* retry after an interval, not at once in a busy loop */
}

/* Timeouts, renewals, keep-alive. */
static void tick(uarc_client *c, int64_t now)
{
    if (c->connect_deadline >= 0 && now >= c->connect_deadline && !c->ending) {
        note_cause(c, UARC_BadTimeout, "connect timeout");
        fail_connect(c, current_step(c), UARC_BadTimeout, "no progress within %u ms",
                     c->cfg.connect_timeout_ms);
        return;
    }
    for (size_t i = 0; i < c->pending_count;) {
        if (c->pending[i].deadline > now) {
            i++;
            continue;
        }
        pending_request p = take_pending(c, i);
        if (c->channel)
            uarc__channel_forget_request(c->channel, p.request_id);
        set_error(c, p.service, UARC_BadTimeout, "no response within the request timeout");
        p.callback(p.user_data, UARC_BadTimeout, NULL);
    }
    if (c->channel && !c->ending) {
        uarc__channel_tick(c->channel, now);
        flush(c);
    }
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && !c->keepalive_in_flight && !c->ending &&
        now - c->last_send >= keepalive_interval(c))
        send_keepalive(c);
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && !c->ending && c->hooks.tick)
        c->hooks.tick(c->hooks.user_data, now);
}

/* Bytes the transport received, in either mode. */
static void receive(uarc_client *c, const uint8_t *data, size_t length)
{
    c->receiving = true;
    uarc__channel_receive(c->channel, data, length, now_ms(c));
    c->receiving = false;
    /* The ACK arrived and OPN went out: failures from here on belong to the OPN step. */
    if (c->state == UARC_CLIENT_HELLO && c->channel &&
        uarc__channel_get_state(c->channel) == UARC__CHANNEL_OPN_SENT)
        set_state(c, UARC_CLIENT_OPENING, UARC_Good);
    flush(c);
}

/* The transport ended (EOF or an error), in either mode. */
static void transport_ended(uarc_client *c, uarc_status status, const char *cause, const char *why)
{
    if (c->state == UARC_CLIENT_CLOSING) {
        end_connection(c, status);
        return;
    }
    note_cause(c, status, cause);
    set_error(c, current_step(c), status, "%s", why);
    uarc__channel_connection_lost(c->channel, status, why);
    end_connection(c, status);
}

static void on_readable(uarc_client *c)
{
    uint8_t buffer[READ_CHUNK];
    for (int i = 0; i < 16 && c->channel && !c->ending; i++) {
        ssize_t n = recv(c->fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) {
            receive(c, buffer, (size_t)n);
            if ((size_t)n < sizeof buffer)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        transport_ended(c, UARC_BadConnectionClosed,
                        n == 0 ? "closed by peer" : errno_reason(errno),
                        n == 0 ? "the server closed the connection" : strerror(errno));
        return;
    }
}

static void on_dialed(uarc_client *c)
{
    bool done = false;
    char detail[256];
    uarc_status status = uarc__dialer_continue(&c->dialer, &done, detail, sizeof detail);
    if (status != UARC_Good) {
        fail_connect(c, "connect", status, "%s", detail);
        return;
    }
    if (!done)
        return;
    c->dialing = false;
    c->fd = uarc__dialer_take(&c->dialer);
    note_peer(c);
    start_channel(c);
}

/* A callback run from the channel's receive loop cannot drive the client: the bytes an inner
 * call read would be refused by the channel, which is still busy with the outer ones. */
static bool refuse_inside_receive(uarc_client *c, const char *step)
{
    if (c->bytes_mode) {
        /* Nothing to wait on: the application owns the transport. */
        set_error(c, step, UARC_BadInvalidState,
                  "a blocking call or uarc_client_process() on a client in byte mode");
        return true;
    }
    if (!c->receiving)
        return false;
    set_error(c, step, UARC_BadInvalidState,
              "a blocking call or uarc_client_process() from inside a client callback");
    return true;
}

UARC_API uarc_status uarc_client_process(uarc_client *c, int timeout_ms)
{
    if (refuse_inside_receive(c, current_step(c)))
        return UARC_BadInvalidState;
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return c->last_status != UARC_Good ? c->last_status : UARC_BadConnectionClosed;
    int wait = uarc_client_timeout_ms(c);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    struct pollfd pfd = {.fd = uarc_client_fd(c), .events = uarc_client_poll_events(c)};
    int n = poll(&pfd, 1, wait);
    if (n < 0 && errno != EINTR) {
        /* Nothing can be waited for any more: end the connection, so that every pending request
         * and every blocking loop finishes instead of retrying a failing poll forever. */
        set_error(c, current_step(c), UARC_BadInternalError, "poll: %s", strerror(errno));
        note_cause(c, UARC_BadInternalError, "I/O error");
        end_connection(c, UARC_BadInternalError);
        finish_ending(c);
        return UARC_BadInternalError;
    }
    if (n > 0) {
        if (c->dialing)
            on_dialed(c);
        else {
            if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
                on_readable(c);
            if ((pfd.revents & POLLOUT) && !c->ending)
                flush(c);
        }
    }
    if (!c->ending)
        tick(c, now_ms(c));
    finish_ending(c);
    return c->state == UARC_CLIENT_DISCONNECTED ? c->last_status : UARC_Good;
}

UARC_API uarc_status uarc_client_abort(uarc_client *c, uarc_status status, const char *reason)
{
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return UARC_Good;
    transport_ended(c, status, reason, reason);
    if (!c->receiving)
        finish_ending(c);
    return UARC_Good;
}

/* ---- byte mode ---- */

/* The state a byte-mode call returns: Good, or the status the connection ended with. */
static uarc_status bytes_result(uarc_client *c)
{
    finish_ending(c);
    return c->state == UARC_CLIENT_DISCONNECTED ? c->last_status : UARC_Good;
}

static bool refuse_bytes_call(uarc_client *c, const char *step)
{
    if (!c->bytes_mode || c->receiving) {
        set_error(c, step, UARC_BadInvalidState,
                  c->bytes_mode ? "called from inside a client callback"
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
        receive(c, data, length);
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
            drop_tail(c);
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
    if (refuse_bytes_call(c, current_step(c)))
        return UARC_BadInvalidState;
    c->now = now_ms;
    if (c->state != UARC_CLIENT_DISCONNECTED && !c->ending)
        tick(c, now_ms);
    return bytes_result(c);
}

UARC_API uarc_status uarc_client_transport_closed(uarc_client *c, uarc_status status)
{
    if (refuse_bytes_call(c, current_step(c)))
        return UARC_BadInvalidState;
    if (c->state != UARC_CLIENT_DISCONNECTED) {
        if (status == UARC_Good)
            transport_ended(c, UARC_BadConnectionClosed, "closed by peer",
                            "the server closed the connection");
        else
            transport_ended(c, status, "transport failed", "the transport failed");
    }
    finish_ending(c);
    drop_tail(c); /* nowhere to send it any more */
    return c->last_status;
}

/* ---- blocking drivers ---- */

/* Drives the client until it reaches `target` or falls back to DISCONNECTED. */
static uarc_status wait_connected_to(uarc_client *c, uarc_client_state target)
{
    if (refuse_inside_receive(c, current_step(c)))
        return UARC_BadInvalidState;
    while (c->state != target && c->state != UARC_CLIENT_DISCONNECTED)
        uarc_client_process(c, -1);
    if (c->state == target)
        return UARC_Good;
    return c->last_status != UARC_Good ? c->last_status : UARC_BadConnectionClosed;
}

static uarc_status wait_connected(uarc_client *c)
{
    return wait_connected_to(c, c->cfg.no_session ? UARC_CLIENT_CHANNEL_OPEN
                                                  : UARC_CLIENT_SESSION_ACTIVE);
}

UARC_API uarc_status uarc_client_connect(uarc_client *c, const char *endpoint_url)
{
    uarc_status status = uarc_client_start_connect(c, endpoint_url);
    return status == UARC_Good ? wait_connected(c) : status;
}

UARC_API uarc_status uarc_client_connect_socket(uarc_client *c, int fd, const char *endpoint_url)
{
    uarc_status status = uarc_client_start_socket(c, fd, endpoint_url);
    return status == UARC_Good ? wait_connected(c) : status;
}

typedef struct blocking_call {
    bool done;
    uarc_status status;
    void *response; /* caller's struct to move the response into */
    const uarc_type *type;
} blocking_call;

static void on_blocking_response(void *user_data, uarc_status status, void *response)
{
    blocking_call *b = user_data;
    b->done = true;
    b->status = status;
    if (response && b->response) {
        /* Move: the caller's struct takes over, the client's copy is left empty. */
        memcpy(b->response, response, b->type->size);
        memset(response, 0, b->type->size);
    }
}

static uarc_status call_blocking(uarc_client *c, void *request, const uarc_type *request_type,
                                 void *response, const uarc_type *response_type, bool any_state)
{
    blocking_call b = {false, UARC_Good, response, response_type};
    if (response)
        uarc_init(response, response_type);
    if (refuse_inside_receive(c, request_type->name))
        return UARC_BadInvalidState;
    uarc_status status = any_state ? send_request(c, request, request_type, response_type, 0,
                                                  on_blocking_response, &b, NULL)
                                   : uarc_client_send(c, request, request_type, response_type, 0,
                                                      on_blocking_response, &b, NULL);
    if (status != UARC_Good)
        return status;
    while (!b.done)
        uarc_client_process(c, -1);
    return b.status;
}

UARC_API uarc_status uarc_client_call(uarc_client *c, void *request, const uarc_type *request_type,
                                      void *response, const uarc_type *response_type)
{
    return call_blocking(c, request, request_type, response, response_type, false);
}

UARC_API uarc_status uarc_client_create_session(uarc_client *c)
{
    if (c->state != UARC_CLIENT_CHANNEL_OPEN) {
        set_error(c, "CreateSession", UARC_BadInvalidState,
                  "needs an open secure channel without a session (state %s)",
                  uarc_client_state_name(c->state));
        return UARC_BadInvalidState;
    }
    if (refuse_inside_receive(c, "CreateSession"))
        return UARC_BadInvalidState;
    c->cfg.no_session = false;
    c->connect_deadline = now_ms(c) + c->cfg.connect_timeout_ms;
    start_create_session(c);
    finish_ending(c);
    return wait_connected_to(c, UARC_CLIENT_SESSION_ACTIVE);
}

static void ignore_response(void *user_data, uarc_status status, void *response)
{
    (void)user_data, (void)status, (void)response;
}

UARC_API uarc_status uarc_client_disconnect(uarc_client *c)
{
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return UARC_Good;
    note_cause(c, UARC_Good, "closed by client");
    if (c->state == UARC_CLIENT_SESSION_ACTIVE) {
        /* CloseSession goes out just ahead of CLO and nobody waits for its answer: nothing in it
         * would change what happens next, and waiting would let a slow or silent server hold
         * the close for up to the request timeout. TCP delivers CloseSession before CLO and FIN,
         * so the server closes the session all the same. */
        uarc_CloseSessionRequest req;
        uarc_init(&req, UARC_T(CloseSessionRequest));
        req.deleteSubscriptions = true;
        set_state(c, UARC_CLIENT_CLOSING, UARC_Good);
        send_request(c, &req, UARC_T(CloseSessionRequest), UARC_T(CloseSessionResponse), 0,
                     ignore_response, NULL, NULL);
    }
    set_state(c, UARC_CLIENT_CLOSING, UARC_Good);
    if (c->channel && (c->fd >= 0 || c->bytes_mode)) {
        uarc__channel_close(c->channel);
        if (c->receiving) {
            /* Called from a callback inside the channel's receive loop: the channel must outlive
             * that loop, so the teardown happens once control is back in uarc_client_process(). */
            flush(c);
            forget_session(c);
            end_connection(c, UARC_BadConnectionClosed);
            return UARC_Good;
        }
        /* Give CLO a moment to leave; a server that stops reading does not hold us. In byte mode
         * teardown keeps it for the application instead. */
        int64_t deadline = uarc__now_ms() + 100;
        const uint8_t *data;
        flush(c);
        while (c->fd >= 0 && uarc__channel_output(c->channel, &data) && uarc__now_ms() < deadline) {
            struct pollfd pfd = {c->fd, POLLOUT, 0};
            poll(&pfd, 1, 10);
            flush(c);
        }
    }
    teardown(c, UARC_BadConnectionClosed);
    forget_session(c);
    c->last_status = UARC_Good;
    return UARC_Good;
}

/* ---- service helpers ---- */

UARC_API uarc_status uarc_client_get_endpoints(uarc_client *c, uarc_GetEndpointsResponse *response)
{
    uarc_GetEndpointsRequest req;
    uarc_init(&req, UARC_T(GetEndpointsRequest));
    req.endpointUrl = (uarc_string){strlen(c->endpoint_url), (uint8_t *)c->endpoint_url};
    uarc_status status = uarc_client_call(c, &req, UARC_T(GetEndpointsRequest), response,
                                          UARC_T(GetEndpointsResponse));
    if (status == UARC_Good)
        status = keep_endpoints(c, response->endpoints, response->endpointsSize);
    return status;
}

UARC_API uarc_status uarc_client_read(uarc_client *c, const uarc_ReadValueId *nodes, size_t count,
                                      uarc_data_value *values)
{
    for (size_t i = 0; i < count; i++)
        uarc_init(&values[i], UARC_T(DataValue));
    if (count == 0) {
        set_error(c, "Read", UARC_BadNothingToDo, "no node to read");
        return UARC_BadNothingToDo;
    }
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.timestampsToReturn = UARC_TimestampsToReturn_Both;
    req.nodesToReadSize = count;
    req.nodesToRead = (uarc_ReadValueId *)nodes; /* only encoded, never changed */
    uarc_ReadResponse resp;
    uarc_status status =
        uarc_client_call(c, &req, UARC_T(ReadRequest), &resp, UARC_T(ReadResponse));
    if (status == UARC_Good && resp.resultsSize != count) {
        set_error(c, "Read", UARC_BadUnexpectedError, "%zu results for %zu nodes", resp.resultsSize,
                  count);
        status = UARC_BadUnexpectedError;
    }
    if (status == UARC_Good) {
        memcpy(values, resp.results, count * sizeof *values);
        memset(resp.results, 0, count * sizeof *resp.results);
    }
    uarc_clear(&resp, UARC_T(ReadResponse));
    return status;
}

UARC_API uarc_status uarc_client_read_attribute(uarc_client *c, const uarc_nodeid *node,
                                                uint32_t attribute_id, uarc_data_value *value)
{
    uarc_ReadValueId id = {.nodeId = *node, .attributeId = attribute_id};
    return uarc_client_read(c, &id, 1, value);
}

UARC_API uarc_status uarc_client_write_value(uarc_client *c, const uarc_nodeid *node,
                                             const uarc_variant *value)
{
    uarc_WriteValue wv = {.nodeId = *node, .attributeId = UARC_ATTRIBUTEID_Value};
    wv.value.value = *value;
    wv.value.has_value = true;
    uarc_WriteRequest req;
    uarc_init(&req, UARC_T(WriteRequest));
    req.nodesToWriteSize = 1;
    req.nodesToWrite = &wv;
    uarc_WriteResponse resp;
    uarc_status status =
        uarc_client_call(c, &req, UARC_T(WriteRequest), &resp, UARC_T(WriteResponse));
    if (status == UARC_Good) {
        status = resp.resultsSize == 1 ? resp.results[0] : UARC_BadUnexpectedError;
        if (status != UARC_Good)
            set_error(c, "Write", status, "the server refused the value");
    }
    uarc_clear(&resp, UARC_T(WriteResponse));
    return status;
}

/* A browse in progress: Browse, then BrowseNext for as long as the server hands out continuation
 * points; references gathered as they come. */
typedef struct browse_job {
    uarc_client *client;
    uarc_browse_fn callback;
    void *user_data;
    uarc_ReferenceDescription *references;
    size_t count, capacity;
    uarc_bytestring point; /* the continuation point the next BrowseNext uses */
} browse_job;

/* Appends the references of `result` to the job's array, moving them. */
static uarc_status take_references(browse_job *job, uarc_BrowseResult *result)
{
    if (job->count + result->referencesSize > job->capacity) {
        size_t cap = job->capacity ? job->capacity : 64;
        while (cap < job->count + result->referencesSize)
            cap *= 2;
        uarc_ReferenceDescription *grown = uarc__realloc(job->references, cap * sizeof *grown);
        if (!grown)
            return UARC_BadOutOfMemory;
        job->references = grown;
        job->capacity = cap;
    }
    if (result->referencesSize) {
        memcpy(job->references + job->count, result->references,
               result->referencesSize * sizeof *result->references);
        job->count += result->referencesSize;
        memset(result->references, 0, result->referencesSize * sizeof *result->references);
    }
    return UARC_Good;
}

/* Ends the job: the callback gets the references (or the failure) and the job is freed. A
 * continuation point still held is released on the server, without waiting for the answer. */
static void browse_finish(browse_job *job, uarc_status status)
{
    uarc_client *c = job->client;
    if (job->point.length > 0 && connected_state(c->state)) {
        uarc_BrowseNextRequest release;
        uarc_init(&release, UARC_T(BrowseNextRequest));
        release.releaseContinuationPoints = true;
        release.continuationPointsSize = 1;
        release.continuationPoints = &job->point;
        uarc_client_send(c, &release, UARC_T(BrowseNextRequest), UARC_T(BrowseNextResponse), 0,
                         ignore_response, NULL, NULL);
    }
    uarc_clear(&job->point, UARC_T(ByteString));
    if (status != UARC_Good) {
        uarc_array_delete(job->references, job->count, UARC_T(ReferenceDescription));
        job->references = NULL;
        job->count = 0;
    }
    job->callback(job->user_data, status, job->references, job->count);
    uarc__free(job);
}

static void on_browse_next_response(void *user_data, uarc_status status, void *response);

/* Sends BrowseNext for the job's continuation point. */
static void browse_next(browse_job *job)
{
    uarc_BrowseNextRequest next;
    uarc_init(&next, UARC_T(BrowseNextRequest));
    next.continuationPointsSize = 1;
    next.continuationPoints = &job->point;
    uarc_status status =
        uarc_client_send(job->client, &next, UARC_T(BrowseNextRequest), UARC_T(BrowseNextResponse),
                         0, on_browse_next_response, job, NULL);
    if (status != UARC_Good)
        browse_finish(job, status);
}

/* One step of the job with the results of a Browse or BrowseNext response. */
static void browse_step(browse_job *job, uarc_status status, size_t results_size,
                        uarc_BrowseResult *results)
{
    uarc_client *c = job->client;
    if (status == UARC_Good && results_size != 1) {
        status = UARC_BadUnexpectedError;
        set_error(c, "Browse", status, "%zu results for 1 node", results_size);
    } else if (status == UARC_Good && uarc_status_is_bad(results[0].statusCode)) {
        status = results[0].statusCode;
        set_error(c, "Browse", status, "the server could not browse the node");
    }
    if (status == UARC_Good) {
        /* The server has answered for the point the request named; from here on it holds the one
         * this result hands out, which is what a failure below must release. */
        uarc_clear(&job->point, UARC_T(ByteString));
        job->point = results[0].continuationPoint;
        results[0].continuationPoint = (uarc_bytestring){0, NULL};
        status = take_references(job, &results[0]);
        if (status != UARC_Good)
            set_error(c, "Browse", status, "no memory for the references");
    }
    if (status != UARC_Good) {
        browse_finish(job, status);
        return;
    }
    if (job->point.length > 0)
        browse_next(job);
    else
        browse_finish(job, UARC_Good);
}

static void on_browse_response(void *user_data, uarc_status status, void *response)
{
    uarc_BrowseResponse *r = response;
    browse_step(user_data, status, r ? r->resultsSize : 0, r ? r->results : NULL);
}

static void on_browse_next_response(void *user_data, uarc_status status, void *response)
{
    uarc_BrowseNextResponse *r = response;
    browse_step(user_data, status, r ? r->resultsSize : 0, r ? r->results : NULL);
}

UARC_API uarc_status uarc_client_browse_send(uarc_client *c, const uarc_nodeid *node,
                                             uarc_browse_fn callback, void *user_data)
{
    if (!callback)
        return UARC_BadInvalidArgument;
    browse_job *job = uarc__calloc(1, sizeof *job);
    if (!job)
        return UARC_BadOutOfMemory;
    *job = (browse_job){.client = c, .callback = callback, .user_data = user_data};
    uarc_BrowseDescription d = {
        .nodeId = *node,
        .browseDirection = UARC_BrowseDirection_Forward,
        .referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
        .includeSubtypes = true,
        .resultMask = 0x3F,
    };
    uarc_BrowseRequest req;
    uarc_init(&req, UARC_T(BrowseRequest));
    req.nodesToBrowseSize = 1;
    req.nodesToBrowse = &d;
    uarc_status status = uarc_client_send(c, &req, UARC_T(BrowseRequest), UARC_T(BrowseResponse), 0,
                                          on_browse_response, job, NULL);
    if (status != UARC_Good)
        uarc__free(job);
    return status;
}

typedef struct blocking_browse {
    bool done;
    uarc_status status;
    uarc_ReferenceDescription *references;
    size_t count;
} blocking_browse;

static void on_blocking_browse(void *user_data, uarc_status status,
                               uarc_ReferenceDescription *references, size_t count)
{
    blocking_browse *b = user_data;
    *b = (blocking_browse){true, status, references, count};
}

UARC_API uarc_status uarc_client_browse(uarc_client *c, const uarc_nodeid *node,
                                        uarc_ReferenceDescription **references, size_t *count)
{
    *references = NULL;
    *count = 0;
    if (refuse_inside_receive(c, "Browse"))
        return UARC_BadInvalidState;
    blocking_browse b = {false, UARC_Good, NULL, 0};
    uarc_status status = uarc_client_browse_send(c, node, on_blocking_browse, &b);
    if (status != UARC_Good)
        return status;
    while (!b.done)
        uarc_client_process(c, -1);
    *references = b.references;
    *count = b.count;
    return b.status;
}

UARC_API uarc_status uarc_client_call_method(uarc_client *c, const uarc_nodeid *object,
                                             const uarc_nodeid *method, const uarc_variant *inputs,
                                             size_t input_count, uarc_variant **outputs,
                                             size_t *output_count)
{
    *outputs = NULL;
    *output_count = 0;
    uarc_CallMethodRequest m = {.objectId = *object,
                                .methodId = *method,
                                .inputArgumentsSize = input_count,
                                .inputArguments = input_count ? (uarc_variant *)inputs : NULL};
    uarc_CallRequest req;
    uarc_init(&req, UARC_T(CallRequest));
    req.methodsToCallSize = 1;
    req.methodsToCall = &m;
    uarc_CallResponse resp;
    uarc_status status =
        uarc_client_call(c, &req, UARC_T(CallRequest), &resp, UARC_T(CallResponse));
    if (status == UARC_Good) {
        if (resp.resultsSize != 1) {
            status = UARC_BadUnexpectedError;
            set_error(c, "Call", status, "%zu results for 1 method", resp.resultsSize);
        } else if (uarc_status_is_bad(resp.results[0].statusCode)) {
            status = resp.results[0].statusCode;
            for (size_t i = 0; i < resp.results[0].inputArgumentResultsSize; i++)
                if (uarc_status_is_bad(resp.results[0].inputArgumentResults[i])) {
                    set_error(c, "Call", status, "input argument %zu: %s", i,
                              uarc_status_name(resp.results[0].inputArgumentResults[i]));
                    break;
                }
            if (c->last_status != status)
                set_error(c, "Call", status, "the method failed");
        } else {
            *outputs = resp.results[0].outputArguments;
            *output_count = resp.results[0].outputArgumentsSize;
            resp.results[0].outputArguments = NULL;
            resp.results[0].outputArgumentsSize = 0;
        }
    }
    uarc_clear(&resp, UARC_T(CallResponse));
    return status;
}

UARC_API uarc_status uarc_client_translate_path(uarc_client *c, const uarc_nodeid *start,
                                                const char *path, uarc_nodeid *target)
{
    uarc_init(target, UARC_T(NodeId));
    /* Split "/1:Name/Other" into elements; each is "[ns:]BrowseName". */
    size_t count = 0;
    for (const char *p = path; *p; p++)
        count += *p == '/';
    count += path[0] != '/';
    uarc_RelativePathElement *elements = uarc__calloc(count ? count : 1, sizeof *elements);
    if (!elements)
        return UARC_BadOutOfMemory;
    size_t n = 0;
    uarc_status status = UARC_Good;
    for (const char *p = path; *p && status == UARC_Good;) {
        if (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *name = p;
        unsigned long ns = 0;
        const char *colon = memchr(p, ':', len);
        if (colon) {
            char *digits_end;
            ns = strtoul(p, &digits_end, 10);
            if (digits_end == colon && colon > p && ns <= UINT16_MAX)
                name = colon + 1;
            else
                ns = 0;
        }
        size_t name_len = len - (size_t)(name - p);
        if (name_len == 0) {
            status = UARC_BadBrowseNameInvalid;
            set_error(c, "TranslateBrowsePathsToNodeIds", status, "empty element in path \"%s\"",
                      path);
            break;
        }
        uarc_RelativePathElement *e = &elements[n++];
        e->referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences);
        e->includeSubtypes = true;
        e->targetName.namespace_index = (uint16_t)ns;
        e->targetName.name = (uarc_string){name_len, (uint8_t *)name};
        p += len;
    }
    if (status == UARC_Good) {
        uarc_BrowsePath bp = {.startingNode = *start, .relativePath = {n, elements}};
        uarc_TranslateBrowsePathsToNodeIdsRequest req;
        uarc_init(&req, UARC_T(TranslateBrowsePathsToNodeIdsRequest));
        req.browsePathsSize = 1;
        req.browsePaths = &bp;
        uarc_TranslateBrowsePathsToNodeIdsResponse resp;
        status = uarc_client_call(c, &req, UARC_T(TranslateBrowsePathsToNodeIdsRequest), &resp,
                                  UARC_T(TranslateBrowsePathsToNodeIdsResponse));
        if (status == UARC_Good) {
            const uarc_BrowsePathResult *r = resp.resultsSize == 1 ? resp.results : NULL;
            if (!r)
                status = UARC_BadUnexpectedError;
            else if (uarc_status_is_bad(r->statusCode))
                status = r->statusCode;
            else if (r->targetsSize == 0)
                status = UARC_BadNoMatch;
            else
                status = uarc_copy(&r->targets[0].targetId.node_id, target, UARC_T(NodeId));
            if (status != UARC_Good)
                set_error(c, "TranslateBrowsePathsToNodeIds", status, "path \"%s\" not resolved",
                          path);
        }
        uarc_clear(&resp, UARC_T(TranslateBrowsePathsToNodeIdsResponse));
    }
    uarc__free(elements);
    return status;
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

int64_t uarc__client_now(const uarc_client *c)
{
    return now_ms(c);
}

const uarc_logger *uarc__client_logger(const uarc_client *c)
{
    return &c->cfg.logger;
}

uint32_t uarc__client_request_timeout(const uarc_client *c)
{
    return c->cfg.request_timeout_ms;
}
