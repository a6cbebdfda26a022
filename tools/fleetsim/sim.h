/*
 * fleetsim's protocol state: simulated OPC UA servers (SecurityPolicy None, and Basic256Sha256
 * when the process has a sim_security) that speak the server
 * side of UA-TCP after dialing with ReverseHello. No I/O and no clock here: a connection takes
 * received bytes and the time (now_ms, milliseconds since the Unix epoch) and queues the bytes to
 * send in `out`; main.c moves them over sockets. Values come from uarc's public codec.
 *
 * Ownership: a sim_server owns its sessions, a session its subscriptions, a subscription its
 * items and retransmission queue. A sim_conn belongs to the I/O edge; sessions point to the
 * connection they are bound to and are unbound by sim_conn_closed(). One thread.
 */
#ifndef FLEETSIM_SIM_H
#define FLEETSIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/types.h"

/* Largest message (and chunk) fleetsim accepts and announces as its ReceiveBufferSize. */
#define SIM_RECEIVE_BUFFER_SIZE 65536u
/* Publish requests a session keeps waiting; one more is answered BadTooManyPublishRequests. */
#define SIM_MAX_PUBLISH_REQUESTS 16u
/* NotificationMessages a subscription keeps for Republish; the oldest is dropped first. */
#define SIM_RETRANSMIT_QUEUE 16u
/* Sessions per server, subscriptions per session, items per subscription, queue per item. */
#define SIM_MAX_SESSIONS      8u
#define SIM_MAX_SUBSCRIPTIONS 16u
#define SIM_MAX_ITEMS         1000u
#define SIM_MAX_QUEUE_SIZE    100u

/* Counters shared by all servers of one process, printed in the stats line. */
typedef struct sim_stats {
    uint64_t requests;      /* service requests answered (ServiceFaults included) */
    uint64_t faults;        /* of which ServiceFaults */
    uint64_t sessions;      /* sessions created */
    uint64_t activations;   /* ActivateSession answered Good */
    uint64_t publishes;     /* PublishResponses with notifications */
    uint64_t keepalives;    /* PublishResponses without */
    uint64_t notifications; /* MonitoredItemNotifications sent */
    uint64_t acknowledged;  /* of which in messages the client acknowledged */
    uint64_t republishes;   /* Republish answered with a message */
    uint64_t transfers;     /* subscriptions transferred */
    uint64_t protocol_errors;
} sim_stats;

/* What every simulated server shares. Zero-filled fields take the documented defaults. */
typedef struct sim_config {
    const char *uri_prefix; /* ServerUri = prefix + index. Default "urn:fleetsim:" */
    const char *endpoint;   /* EndpointUrl = endpoint + "/" + index. Default
                               "opc.tcp://localhost:4840/fleetsim" */
    uint32_t items;         /* variables ns=1;i=1000 .. 1000+items-1. Default 10 */
    double rate_hz;         /* value changes per second of every variable. Default 1 */
    sim_stats *stats;       /* may be NULL */
    /* Secured endpoints besides None (sim_crypto.c); NULL: None only. Servers made with it need
     * sim_identity_make. */
    const struct sim_security *security;
} sim_config;

struct sim_conn;
struct sim_session;

typedef struct sim_buf {
    uint8_t *data;
    size_t length;
    size_t capacity;
} sim_buf;

/* One simulated server: identity, address space clock, sessions. */
typedef struct sim_server {
    const sim_config *config;
    uint32_t index;
    char uri[160];
    char endpoint[200];
    int64_t started_ms; /* the variables count from here; a restart moves it */
    uint64_t random;    /* xorshift state for ids and nonces */
    uint32_t next_id;
    struct sim_session *sessions;
    struct sim_identity *identity; /* certificate and keys when config->security, else NULL */
} sim_server;

typedef enum sim_conn_state {
    SIM_CONN_HELLO,  /* RHE queued, waiting for HEL */
    SIM_CONN_ACKED,  /* ACK sent, waiting for OPN */
    SIM_CONN_SECURE, /* channel open */
    SIM_CONN_CLOSED  /* CLO received or a fatal error; close after `out` is sent */
} sim_conn_state;

typedef struct sim_conn {
    sim_server *server;
    sim_conn_state state;
    uint32_t channel_id;
    uint32_t token_id;
    uint32_t previous_token_id; /* accepted until the client uses the new one */
    int64_t token_deadline_ms;  /* 125 % of the revised lifetime after issue */
    uint32_t send_sequence;
    uint32_t peer_receive_buffer; /* our chunk size limit, from HEL */
    uint32_t peer_max_message;    /* 0: no limit */
    sim_buf in;
    sim_buf out;
    /* Secured channels (mode not 0): the server's policy context this channel uses, and the
     * symmetric keys of the current and the previous token (sim_crypto.c). */
    uarc_MessageSecurityMode mode;
    void *context;
    void *keys;
    void *previous_keys;
    bool lose_next_publish; /* chaos: end instead of sending the next PublishResponse with data */
    uarc_status end_status; /* why the connection ended (Good for CLO and chaos) */
    char end_reason[96];
} sim_conn;

/* ---- sim_conn.c: UA-TCP and the secure channel ------------------------------------------ */

/* False when its certificate (config->security) could not be made; sim_server_clear it anyway. */
bool sim_server_init(sim_server *server, const sim_config *config, uint32_t index, int64_t now_ms);
/* Forgets every session and subscription (the server "restarted") and restarts its variables. */
void sim_server_restart(sim_server *server, int64_t now_ms);
void sim_server_clear(sim_server *server);

/* A new connection of `server`: queues the RHE. `conn` is overwritten. */
void sim_conn_start(sim_conn *conn, sim_server *server, int64_t now_ms);
/* Feeds received bytes. Returns false when the connection must end (after `out` is sent):
 * CLO, a protocol error answered with ERR, or chaos (end_status and end_reason say which). */
bool sim_conn_receive(sim_conn *conn, const uint8_t *data, size_t length, int64_t now_ms);
/* Runs the timers of this connection (token expiry). Returns false when it must end. */
bool sim_conn_tick(sim_conn *conn, int64_t now_ms);
/* The socket is gone: sessions bound to it wait for another channel. Frees the buffers. */
void sim_conn_closed(sim_conn *conn);

/* Queues `response` (a struct of `type` starting with a ResponseHeader) answering `request_id`,
 * split into chunks of the peer's receive buffer. */
void sim_conn_send(sim_conn *conn, uint32_t request_id, void *response, const uarc_type *type);

/* Appends `length` bytes of `data`, or with data NULL room for them that the caller fills. */
bool sim_buf_append(sim_buf *buf, const void *data, size_t length);
/* Drops the first `n` bytes. */
void sim_buf_consume(sim_buf *buf, size_t n);
void sim_buf_free(sim_buf *buf);

uint32_t sim_random(sim_server *server);
uarc_datetime sim_datetime(int64_t ms);

/* ---- sim_crypto.c: Basic256Sha256 ------------------------------------------------------- */

typedef struct sim_security sim_security;
typedef struct sim_identity sim_identity;

/* One RSA-2048 key for every server of the process, for the policy `policy_uri` (an RSA policy
 * uarc implements). NULL when the policy is not one of them or the key cannot be made. */
sim_security *sim_security_new(const char *policy_uri);
void sim_security_delete(sim_security *security);
const char *sim_security_policy_uri(const sim_security *security);
/* The server's certificate (subjectAltName URI = its ServerUri) of the shared key; true without
 * making one when config->security is NULL. */
bool sim_identity_make(sim_server *server);
void sim_identity_free(sim_server *server);
/* The server's certificate (a view; empty without security). */
uarc_bytestring sim_server_certificate(const sim_server *server);

/* Opens an asymmetric OPN chunk in place: the policy, the client certificate (which picks the
 * policy context), signature and decryption. *body points into `chunk`. */
uarc_status sim_secure_open_asym(sim_conn *conn, uint8_t *chunk, size_t size, uint32_t *request_id,
                                 const uint8_t **body, size_t *body_length);
/* Issues a token: the mode (kept by renewals), a new server nonce (*server_nonce, malloc'd) and
 * the keys from both nonces; the current keys become the previous ones. */
uarc_status sim_secure_new_token(sim_conn *conn, uarc_MessageSecurityMode mode,
                                 const uarc_bytestring *client_nonce,
                                 uarc_bytestring *server_nonce);
/* Opens a MSG or CLO chunk in place with the keys of the current (or previous) token. */
uarc_status sim_secure_open_sym(sim_conn *conn, uint8_t *chunk, size_t size, bool previous,
                                uint32_t *request_id, const uint8_t **body, size_t *body_length);
/* The largest body of one MSG chunk to the client. */
size_t sim_secure_room(const sim_conn *conn);
/* Appends one secured chunk (OPN when `open`, else MSG) with `body` to conn->out. */
bool sim_secure_seal(sim_conn *conn, bool open, uint8_t chunk_type, uint32_t request_id,
                     const uint8_t *body, size_t length);
/* The server's signature (its certificate's key) of data, for CreateSession; the client's,
 * checked for ActivateSession. */
bool sim_secure_sign(sim_conn *conn, const uint8_t *data, size_t length,
                     uarc_SignatureData *signature);
bool sim_secure_verify(sim_conn *conn, const uint8_t *data, size_t length,
                       const uarc_SignatureData *signature);
/* Frees the channel's keys. */
void sim_secure_closed(sim_conn *conn);

/* ---- sim_services.c: sessions, Read, Browse --------------------------------------------- */

typedef struct sim_publish_request {
    uint32_t request_id;
    uint32_t request_handle;
    uarc_status *results; /* of the acknowledgements it carried, owned */
    size_t result_count;
} sim_publish_request;

typedef struct sim_session {
    struct sim_session *next;
    sim_server *server;
    uint32_t id;
    uint32_t token; /* authenticationToken ns=1;i=token */
    bool activated;
    sim_conn *conn; /* bound channel, NULL while none */
    int64_t timeout_ms;
    int64_t last_seen_ms;
    struct sim_subscription *subscriptions;
    uint8_t nonce[32]; /* the last server nonce: a secured client signs it in ActivateSession */
    sim_publish_request publish[SIM_MAX_PUBLISH_REQUESTS];
    uint32_t publish_count;
} sim_session;

/* Answers one decoded service request (`type` is the request's type). */
void sim_service(sim_conn *conn, uint32_t request_id, void *request, const uarc_type *type,
                 int64_t now_ms);
/* Queues `response` (of `type`) with its header's handle and timestamp set, then clears it. */
void sim_reply(sim_conn *conn, uint32_t request_id, uint32_t handle, void *response,
               const uarc_type *type, int64_t now_ms);
/* A ServiceFault with `status` for `request_handle`. */
void sim_fault(sim_conn *conn, uint32_t request_id, uint32_t request_handle, uarc_status status,
               int64_t now_ms);
void sim_session_delete(sim_server *server, sim_session *session);
/* Ends sessions whose timeout passed without a channel. */
void sim_sessions_expire(sim_server *server, int64_t now_ms);

/* The variables: what a node id names, and its value at a time. */
typedef enum sim_var {
    SIM_VAR_NONE = 0,
    SIM_VAR_COUNTER,      /* ns=1;s=Counter, UInt32, +1 per change */
    SIM_VAR_ITEM,         /* ns=1;i=1000+k, Double: changes + k / 1000 */
    SIM_VAR_CURRENT_TIME, /* i=2258 */
    SIM_VAR_STATE,        /* i=2259, Running */
    SIM_VAR_STATIC        /* other readable nodes of the small address space */
} sim_var;

sim_var sim_var_of(const sim_server *server, const uarc_nodeid *node, uint32_t *k);
/* Number of changes of the changing variables since the server started. */
uint64_t sim_changes(const sim_server *server, int64_t now_ms);
/* Writes the Value attribute of a variable at change `change` into `value`. */
void sim_var_value(const sim_server *server, sim_var var, uint32_t k, uint64_t change,
                   int64_t now_ms, uarc_data_value *value);
/* The time change number `change` happened. */
int64_t sim_change_time(const sim_server *server, uint64_t change);

/* ---- sim_subscription.c ------------------------------------------------------------------ */

typedef struct sim_item {
    uint32_t id;
    uint32_t client_handle;
    sim_var var;
    uint32_t k;
    uint32_t queue_size;
    bool reporting;
    bool initial; /* the first value is still to be sent */
    uint64_t last_change;
    int64_t last_time_ms; /* CurrentTime items: the time last sent */
} sim_item;

typedef struct sim_message {
    uarc_NotificationMessage message; /* heap-owned; sequenceNumber 0: empty slot */
    bool sent;
} sim_message;

typedef struct sim_subscription {
    struct sim_subscription *next;
    uint32_t id;
    uint32_t interval_ms;
    uint32_t keepalive_count;
    uint32_t lifetime_count;
    bool enabled;
    int64_t next_due_ms;
    uint32_t idle_cycles;
    bool ready;         /* notifications wait for a Publish request */
    bool keepalive_due; /* a keep-alive waits for a Publish request */
    uint32_t next_sequence;
    sim_item *items;
    size_t item_count;
    sim_message queue[SIM_RETRANSMIT_QUEUE];
} sim_subscription;

/* The subscription services; false when `type` is none of them. */
bool sim_subscription_service(sim_conn *conn, sim_session *session, uint32_t request_id,
                              void *request, const uarc_type *type, int64_t now_ms);
/* Runs the publishing cycles due at now_ms for every session of `server`. Returns the next time
 * something is due (INT64_MAX when nothing). */
int64_t sim_subscriptions_tick(sim_server *server, int64_t now_ms);
void sim_subscription_delete(sim_subscription *subscription);
/* The channel of `session` went away: its waiting Publish requests go with it. */
void sim_session_detached(sim_session *session);

#endif
