/*
 * The client's insides, shared by its files and by the modules built on it.
 *
 * First, what the client lends to the modules built on it (subscriptions) and nothing more: its
 * clock, its logger and request timeout, and hooks that tell a module when a session became
 * active, when the connection was lost, and that let it add its own deadline to the client's and
 * run when that deadline passes. Requests go out through the public uarc_client_send().
 *
 * Then, for the client's own files only (client*.c): the client object and the functions one file
 * offers the others. Each group is named by the file that defines it; a module built on the client
 * uses none of them.
 */
#ifndef UARC_CLIENT_INTERNAL_H
#define UARC_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/client.h"
#include "channel/channel.h"
#include "channel/security.h"
#include "core/log.h"
#include "transport/socket.h"

typedef struct uarc__client_hooks {
    /* The session is active: a new one (`resumed` false) or the previous one re-activated on a
     * new secure channel. Runs inside the response that completed the activation. */
    void (*session_active)(void *user_data, bool resumed);
    /* The connection ended; requests in flight have been failed just before. */
    void (*connection_lost)(void *user_data);
    /* The module's next deadline in the client's clock, -1 for none. */
    int64_t (*next_deadline)(void *user_data);
    /* Runs from the client's tick while the session is active. */
    void (*tick)(void *user_data, int64_t now_ms);
    /* uarc_client_delete(): the module frees itself (after the connection_lost call). */
    void (*destroy)(void *user_data);
    /* How long the module's incoming data may wait unread (uarc_client_gather_ms()), asked
     * only while no request but Publish is in flight: -1 it expects nothing, 0 not at all. */
    int (*gather_ms)(void *user_data);
    void *user_data;
} uarc__client_hooks;

/* Installs `hooks` (copied; NULL removes them). One set per client. */
void uarc__client_set_hooks(uarc_client *client, const uarc__client_hooks *hooks);
/* The user_data of the installed hooks, NULL when none. */
void *uarc__client_hooks_user_data(const uarc_client *client);
/* The protocol's clock: the application's in byte mode, else a monotonic one. */
int64_t uarc__client_now(const uarc_client *client);
const uarc_logger *uarc__client_logger(const uarc_client *client);
uint32_t uarc__client_request_timeout(const uarc_client *client);

/* ---- the client's own files only ---- */

#define DEFAULT_CONNECT_TIMEOUT_MS       10000u
#define DEFAULT_REQUEST_TIMEOUT_MS       10000u
#define DEFAULT_SESSION_TIMEOUT_MS       60000u
#define DEFAULT_TCP_KEEPALIVE_IDLE_S     30u
#define DEFAULT_TCP_KEEPALIVE_INTERVAL_S 5u
#define DEFAULT_TCP_KEEPALIVE_COUNT      4u
#define DEFAULT_APPLICATION_URI          "urn:uarc:client"
#define DEFAULT_KEEPALIVE_MAX_MS         5000
#define READ_CHUNK                       65536
#define ERROR_SIZE                       1280
#define SESSION_NONCE_LENGTH             32u
#define SECURITY_POLICY_NONE             "http://opcfoundation.org/UA/SecurityPolicy#None"

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
    STRING_ISSUER_LIST,
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
    bool transient;      /* the response is decoded into an arena for the callback's duration */
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
    bool receiving;             /* inside uarc__client_receive: the channel must outlive the call */
    bool send_transient;        /* set around uarc__client_send_transient() */
    bool application_uri_given; /* config named one: it must equal our certificate's */
    uarc_status end_status;
    uarc_status last_status;
    char *error; /* the last error's text (ERROR_SIZE), allocated at the first: NULL, none yet */
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
    uarc_bytestring server_ecdh_key;     /* ECC: the server's ephemeral key for the next encrypted
                                            secret (ECDHKey of the last response), or none */
    uarc_bytestring session_server_cert; /* serverCertificate of CreateSession */
    /* X509 user identity: owned copies (config or files) */
    uint8_t *user_cert, *user_key;
    size_t user_cert_length, user_key_length;
    uarc__client_hooks hooks;      /* the modules built on the client (subscriptions) */
    int keepalive_jitter_permille; /* 0..200 off the interval, from the jitter seed */
    uarc_client_wake_fn wake;      /* uarc_client_set_wake_callback() */
    void *wake_user_data;
};

/* client_errors.c: the last failure's text and status, the cause of an end */
void uarc__client_vset_error(uarc_client *c, const char *step, uarc_status status, const char *fmt,
                             va_list ap) UARC__PRINTF(4, 0);
/* The last error's text as it is (it names its step) and its status; not logged. */
void uarc__client_set_error_text(uarc_client *c, uarc_status status, const char *text);
void uarc__client_set_error(uarc_client *c, const char *step, uarc_status status, const char *fmt,
                            ...) UARC__PRINTF(4, 5);
void uarc__client_note_cause(uarc_client *c, uarc_status status, const char *reason);
const char *uarc__client_current_step(const uarc_client *c);

/* client.c: the object, the request table, dispatch, byte mode */
void uarc__client_set_state(uarc_client *c, uarc_client_state state, uarc_status status);
bool uarc__client_connected_state(uarc_client_state s);
char *uarc__client_dup_or_null(const char *s);
bool uarc__client_copy_bytes(uint8_t **dst, size_t *dst_length, const uint8_t *src, size_t length);
void uarc__client_drop_tail(uarc_client *c);
/* Tells the wake callback that the descriptor, events or deadline may have changed. */
void uarc__client_wake(uarc_client *c);
void uarc__client_teardown(uarc_client *c, uarc_status status);
void uarc__client_forget_session(uarc_client *c);
void uarc__client_end_connection(uarc_client *c, uarc_status status);
void uarc__client_finish_ending(uarc_client *c);
pending_request uarc__client_take_pending(uarc_client *c, size_t index);
/* uarc_client_send() for a response that the callback reads and never keeps (it copies what it
 * keeps): it is decoded into one arena that goes when the callback returns, not value by value
 * into the heap. */
uarc_status uarc__client_send_transient(uarc_client *c, void *request,
                                        const uarc_type *request_type,
                                        const uarc_type *response_type, uint32_t timeout_ms,
                                        uarc_response_fn callback, void *user_data);
uarc_status uarc__client_send_request(uarc_client *c, void *request, const uarc_type *request_type,
                                      const uarc_type *response_type, uint32_t timeout_ms,
                                      uarc_response_fn callback, void *user_data,
                                      uint32_t *handle_out);
void uarc__client_on_message(void *user_data, uint32_t request_id, const uint8_t *body,
                             size_t length);
void uarc__client_on_message_failed(void *user_data, uint32_t request_id, uarc_status status,
                                    const char *reason);
void uarc__client_on_closed(void *user_data, uarc_status status, const char *reason);
void uarc__client_transport_ended(uarc_client *c, uarc_status status, const char *cause,
                                  const char *why);

/* client_connect.c: HEL → OPN → CreateSession → ActivateSession */
void uarc__client_fail_connect(uarc_client *c, const char *step, uarc_status status,
                               const char *fmt, ...) UARC__PRINTF(4, 5);
void uarc__client_start_create_session(uarc_client *c);
uarc_status uarc__client_start_channel(uarc_client *c);
uarc_status uarc__client_begin(uarc_client *c, const char *endpoint_url, bool bytes, int64_t now);
uarc_status uarc__client_check_endpoint_url(uarc_client *c, const char *endpoint_url);

/* client_security.c: certificates, trust decisions, endpoints and serverEndpoints */
uarc_status uarc__client_keep_endpoints(uarc_client *c, const uarc_EndpointDescription *endpoints,
                                        size_t count);
uarc_status uarc__client_check_password_key(uarc_client *c, char *why, size_t why_size);
uarc_status uarc__client_check_server_endpoints(uarc_client *c,
                                                const uarc_CreateSessionResponse *r);
uarc_status uarc__client_prepare_security(uarc_client *c, uarc__channel_config *cc);

/* client_identity.c: session signatures, the server nonce and ECDH key, user identity tokens */
void uarc__client_keep_server_nonce(uarc_client *c, const uarc_ActivateSessionResponse *r);
void uarc__client_keep_ecdh_key(uarc_client *c, const uarc_ResponseHeader *h);
/* The AdditionalHeader of a CreateSession that asks for the server's ECDHKey, and what it points
 * to (the caller's, alive until the request is encoded). */
typedef struct uarc__ecdh_request {
    uarc_AdditionalParametersType parameters;
    uarc_KeyValuePair policy;
    uarc_string policy_uri;
} uarc__ecdh_request;
void uarc__client_request_ecdh_key(const uarc_client *c, uarc_RequestHeader *h,
                                   uarc__ecdh_request *storage);
uarc_status uarc__client_check_server_signature(uarc_client *c,
                                                const uarc_CreateSessionResponse *r);
uarc_status uarc__client_sign_activation(uarc_client *c, uarc_SignatureData *out,
                                         uint8_t **signature);
uarc_status uarc__client_encrypt_password(uarc_client *c, const char *password,
                                          uarc_bytestring *secret, const char **algorithm,
                                          char *why, size_t why_size);
uarc_status uarc__client_sign_user_token(uarc_client *c, uarc_SignatureData *out,
                                         uint8_t **signature, char *why, size_t why_size);
void uarc__client_choose_identity_policy(uarc_client *c, const uarc_CreateSessionResponse *r,
                                         uarc_string *token_security_policy);

/* client_io.c: the socket edge, the only code that writes to or closes the socket. The protocol
 * (client.c, client_connect.c, client_timers.c) only queues bytes in the channel; the public
 * entry points run uarc__client_flush() after it, which does nothing in byte mode. */
void uarc__client_flush(uarc_client *c);
/* Writes what is queued, waiting up to `wait_ms` for a socket slow to take it. */
void uarc__client_drain(uarc_client *c, int wait_ms);
void uarc__client_close_socket(uarc_client *c);
bool uarc__client_refuse_inside_receive(uarc_client *c, const char *step);
/* Bytes the transport received, in either mode: `own` is NULL (the application's bytes, copied)
 * or `data` itself (the socket's read buffer, which the channel may change in place). */
void uarc__client_receive(uarc_client *c, uint8_t *own, const uint8_t *data, size_t length);

/* client_timers.c: timeouts, keep-alive, the modules' deadlines */
void uarc__client_tick(uarc_client *c, int64_t now);

/* client_sync.c: the blocking drivers */
void uarc__client_ignore_response(void *user_data, uarc_status status, void *response);

#endif
