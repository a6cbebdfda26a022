/*
 * Reverse Connect end to end: servers dial in, and each becomes a live client session without
 * the application ever dialing out.
 *
 * For one server, blocking: take a connection from the listener (uarc_listener_accept() or
 * uarc_listener_accept_from()) and hand its socket to a client with uarc_reverse_connect().
 *
 * For many servers at once, the hub: it takes every accepted connection from a listener, keeps
 * one client per ServerUri, connects it over the inbound socket (HEL with the EndpointUrl the
 * server announced, OPN, CreateSession, ActivateSession), and when a connection is lost it waits
 * for that server's next ReverseHello (servers re-dial on their own) and re-activates the same
 * session on the new secure channel, or creates a new one when the server has forgotten it.
 * One thread drives the listener and every client through uarc_reverse_hub_process().
 *
 * Secured servers whose certificate you do not have (Part 6 §7.1.3): when the client configuration
 * asks for a security policy other than None and gives no server certificate
 * (server_certificate/server_certificate_file, after the `configure` callback), the hub learns it
 * from the server. The server's first connection is used for discovery only: a secure channel
 * with SecurityPolicy None and no session, GetEndpoints, then CLO and close. The hub picks the
 * endpoint with the configured policy and mode (mode Invalid: SignAndEncrypt) and uses it only
 * when its certificate's subjectAltName URI equals the ServerUri of the ReverseHello; it then hands
 * the endpoints to that server's client (uarc_client_set_endpoints()) and reports `discovered`.
 * The server's next dial then opens the secured channel and the session. A certificate learned
 * this way is not pinned: the client's trust decision applies at that OPN (see trust_list_dir in
 * uarc/client.h): config.trust_list_dir, or config.trust_store_dir (trust on first use, recorded
 * per ServerUri in a folder, so a later substitute is refused with BadCertificateUntrusted), or
 * config.accept_untrusted_server_certificate (tests); with none of them that connect fails before
 * OPN with BadCertificateUntrusted saying so. The ServerUri is checked there too, CreateSession's
 * serverEndpoints are compared with the discovered ones, and the client keeps the endpoints for
 * every later re-dial. Failures are reported through `failed` and nothing is handed over: no
 * endpoint with that policy and mode (BadSecurityPolicyRejected, step "GetEndpoints"), a
 * certificate naming another URI (BadCertificateUriInvalid, step "GetEndpoints", the detail names
 * both URIs), or a failure of the None channel itself (its step: HEL, OPN, GetEndpoints). The next
 * dial then tries discovery again. Discovery runs without blocking, like the clients, so it delays
 * no other server.
 *
 * The hub drives the listener and its clients through their public APIs only.
 *
 * Work follows what happened: the hub waits on one epoll set holding the listener's descriptor
 * and every socket of its servers, and keeps each server's next deadline (request timeouts,
 * keep-alives, token renewals, hello and spare deadlines) in a heap; a round touches only the
 * servers with an event or a due deadline, however many are idle. Deadlines are served up to
 * 20 ms late, so that those close together share one wake-up. Embed it with
 * uarc_reverse_hub_fd() and uarc_reverse_hub_timeout_ms() in any event loop.
 *
 * Connect storms: at most max_handshakes servers connect at once; the other accepted
 * connections wait in the listener in their order (watched for hang-up there) and are taken as
 * slots free up.
 *
 * A server that fails the same way on every dial (an impostor, an untrusted certificate, a
 * discovery that finds nothing to use) is backed off per ServerUri: after the same failure twice
 * in a row its dials are answered ERR BadTcpMessageTypeInvalid and closed for backoff_initial_ms,
 * doubled at each further repeat up to backoff_max_ms; each step is reported once (`failed` and
 * `backoff`). A failure of the path (closed, timed out) or a success ends the backoff.
 *
 * Threads: a hub, its listener and its clients belong to one thread.
 */
#ifndef UARC_REVERSE_H
#define UARC_REVERSE_H

#include <poll.h>

#include "uarc/client.h"
#include "uarc/listener.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Connects `client` over the accepted connection's socket (blocking), sending the EndpointUrl the
 * server announced in HEL. The socket moves to the client whatever the outcome; `connection`
 * keeps its strings. On failure uarc_client_error() names the step.
 */
UARC_API uarc_status uarc_reverse_connect(uarc_client *client, uarc_reverse_connection *connection);

typedef struct uarc_reverse_hub uarc_reverse_hub;

typedef struct uarc_reverse_hub_callbacks {
    /*
     * Called before a client is created for a newly seen server: adjust `config` (a copy of the
     * hub's base configuration: security, identity, timeouts, no_session for discovery only).
     * Strings you set must stay valid until the call returns (the client copies them).
     * Return false to refuse the server: its socket is closed and it is not remembered.
     */
    bool (*configure)(void *user_data, const uarc_reverse_connection *connection,
                      uarc_client_config *config);
    /* The session is active: first time (`restored` false) or after a re-dial (`restored` true;
     * then `resumed` tells whether the previous session was re-activated or a new one made). */
    void (*connected)(void *user_data, uarc_client *client, const char *server_uri, bool restored,
                      bool resumed);
    /* Connecting over a fresh socket failed, or discovery did; `detail` names the step
     * ("<step>: <StatusName>: <reason>"), `status` is the cause's. When the client's own connect
     * failed, `detail` is uarc_client_error(client), and uarc_client_end_reason() and
     * uarc_client_peer() of `client` tell how that socket ended and whose it was; for a failed
     * discovery `detail` is the hub's own text and those tell of the client's last connection,
     * not of the discovery's socket. The hub waits for the server's next dial. */
    void (*failed)(void *user_data, uarc_client *client, const char *server_uri, uarc_status status,
                   const char *detail);
    /* An active session's connection was lost; `status` is the cause's (BadConnectionClosed
     * for a socket closed or reset, BadTimeout for an unanswered keep-alive,
     * BadSecureChannelIdInvalid...), uarc_client_end_reason(client) says which kind of end it
     * was and uarc_client_peer(client) gives the socket's peer address. Requests in flight
     * failed with a status. The hub waits for the server's next dial. */
    void (*lost)(void *user_data, uarc_client *client, const char *server_uri, uarc_status status);
    /* A server's certificate was learned by discovery (see the top of this file) and set on its
     * client; the server is expected to dial again for the secured session. `endpoint` is the
     * endpoint it was taken from, valid during the call. */
    void (*discovered)(void *user_data, uarc_client *client, const char *server_uri,
                       const uarc_EndpointDescription *endpoint);
    /* A socket that claimed `server_uri` was dropped without becoming (or staying) that server's
     * connection, and `peer` is its address: a newer socket superseded it while it was connecting
     * or held as a spare, its peer closed it (or sent bytes before our HEL) while held, or it was
     * held longer than spare_timeout_ms (BadTimeout). `reason` says which. The server's record
     * (its client, its session) is untouched. */
    void (*dropped)(void *user_data, const char *server_uri, const char *peer, uarc_status status,
                    const char *reason);
    /* The server failed with `status` as on its dial before, so its dials are refused for
     * `delay_ms` (see the top of this file); `refused` counts those refused during the previous
     * step. Called once per step, before that failure's `failed`. */
    void (*backoff)(void *user_data, const char *server_uri, uarc_status status, uint32_t delay_ms,
                    uint32_t refused);
    void *user_data;
} uarc_reverse_hub_callbacks;

/*
 * Several sockets for one ServerUri (a server re-dialing, or another dialer claiming its URI,
 * which SecurityPolicy None cannot tell apart): the newest wins. A socket arriving while the
 * server's client (or probe) is still connecting over an older one ends that attempt at once
 * and takes its place, so a silent socket never delays a fresh dial. A socket arriving while the
 * session is up is held as the spare, used when the session's connection ends; a newer one
 * replaces it, and it is dropped when its peer closes it or after spare_timeout_ms. Every socket
 * the hub starts must see the ACK to its HEL within client.handshake_timeout_ms. Each dropped
 * socket is reported through callbacks.dropped with its address.
 *
 * Memory: every client of the hub charges one memory budget (uarc/budget.h): client.memory_budget
 * when given (it must outlive the hub), else one of UARC_MEMORY_BUDGET_DEFAULT the hub makes.
 */
typedef struct uarc_reverse_hub_config {
    uarc_listener *listener; /* borrowed, must be listening and outlive the hub. Required */
    /* Base configuration of every client (zero-filled: the client's defaults, except
     * handshake_timeout_ms 0: 5000 ms, and memory_budget NULL: the hub's own). With
     * generate_certificate and no certificate, the hub makes one certificate per key type (RSA,
     * or each ECC policy's curve) for this application_uri and every secured client of that URI
     * presents the one its policy needs; a client `configure` gives another URI makes its own.
     * The one for this configuration's own security_policy_uri is made by
     * uarc_reverse_hub_new(), so that no server waits for a key to be generated. */
    uarc_client_config client;
    uarc_reverse_hub_callbacks callbacks; /* each NULL: not told */
    uint32_t spare_timeout_ms;            /* how long a spare is held. 0: 30000 */
    /* Servers connecting at once (HEL to session); more wait in the listener. 0: 64 */
    uint32_t max_handshakes;
    /* Backoff of a server failing the same way (see above). 0: 2000 ms, doubled up to 0:
     * 300000 ms. backoff_disable: every dial is served and every failure reported. */
    uint32_t backoff_initial_ms;
    uint32_t backoff_max_ms;
    bool backoff_disable;
    /* Gathering: after a wait that ended with socket events, the hub leaves its sockets unread
     * for a while after that wake-up, then handles all that arrived meanwhile in one round. A
     * fleet whose messages come spread out then wakes the thread once per window instead of
     * once per message (each wake-up costs a context switch and an epoll_wait in the kernel),
     * and each message from a server may wait up to the window longer.
     *   0 (the default): automatic. The window is the smallest uarc_client_gather_ms() of the
     *     servers in session: 1/20 of the shortest publishing interval, at most 50 ms (a fleet
     *     publishing every second: 50 ms; every 100 ms: 5 ms); none while any of them waits for
     *     the answer to a request other than Publish or has a subscription being made or
     *     recovered, and none while no server in session has a subscription.
     *   UARC_REVERSE_HUB_GATHER_OFF: never.
     *   Other values: a fixed window of gather_ms, for every message (also the responses that
     *     make a new server's subscriptions, which come that much slower); at most 1000, larger
     *     values count as 1000.
     * For the window after a round that moved a server's handshake on (HEL to ActivateSession,
     * or its GetEndpoints) the hub does not pause, so that the handshake's next steps and a
     * connect storm are not slowed; a server that connects and then stays silent holds
     * gathering off no longer than that. A due deadline ends the pause (served, as always, up
     * to 20 ms late), and a round that took a full batch of events (256) is followed by the next
     * without a pause. The hub pauses in the waits it does itself (uarc_reverse_hub_process()
     * with a timeout other than 0, never longer than that timeout, and
     * uarc_reverse_hub_wait()); an event loop that calls uarc_reverse_hub_process(hub, 0)
     * pauses by leaving the hub's descriptors out of its wait for
     * uarc_reverse_hub_gather_ms(). */
    uint32_t gather_ms;
} uarc_reverse_hub_config;

/* uarc_reverse_hub_config.gather_ms: no gathering. */
#define UARC_REVERSE_HUB_GATHER_OFF UINT32_MAX

/* Creates a hub; NULL when out of memory or without a listener. */
UARC_API uarc_reverse_hub *uarc_reverse_hub_new(const uarc_reverse_hub_config *config);

/* Disconnects every client without waiting (uarc_client_disconnect_now()), frees them and the
 * hub. NULL is ignored. */
UARC_API void uarc_reverse_hub_delete(uarc_reverse_hub *hub);

/* The one descriptor to wait on for reading (an epoll set of the listener and every socket of
 * the hub), with uarc_reverse_hub_timeout_ms() (and left out for uarc_reverse_hub_gather_ms()
 * when gathering); then call uarc_reverse_hub_process(hub, 0). */
UARC_API int uarc_reverse_hub_fd(const uarc_reverse_hub *hub);

/*
 * Fills `fds` with what to poll: the listener's descriptor, every client's socket and every
 * held spare (events set). Returns how many entries are needed (fill at most `capacity`).
 * O(servers) per call, for small embedders; uarc_reverse_hub_fd() costs nothing per server.
 */
UARC_API size_t uarc_reverse_hub_poll_fds(const uarc_reverse_hub *hub, struct pollfd *fds,
                                          size_t capacity);
/* Milliseconds until the hub has something to do by itself; -1 when nothing. 0 when one of its
 * clients was called from outside since the last process call (so it is re-read). */
UARC_API int uarc_reverse_hub_timeout_ms(const uarc_reverse_hub *hub);

/* Gathering (uarc_reverse_hub_config.gather_ms): how many milliseconds an event loop leaves the
 * hub's descriptor (or those of uarc_reverse_hub_poll_fds()) out of its wait before it polls it
 * again, still waiting on its own descriptors and no longer than uarc_reverse_hub_timeout_ms();
 * 0: poll it now (gathering off or no window now, the last wait brought no events, it moved a
 * handshake on, or a client was called from outside since). */
UARC_API int uarc_reverse_hub_gather_ms(const uarc_reverse_hub *hub);

/*
 * Waits up to `timeout_ms` (0: no wait, -1: no limit) for any descriptor (when gathering, first
 * pausing for uarc_reverse_hub_gather_ms() within that time), then does all due work:
 * accepts, hands sockets to clients, drives the clients with events or due deadlines, runs
 * callbacks. Callbacks run at the end of this call, outside of any client's processing, so they may
 * call blocking client functions (which pause the other connections meanwhile). Returns Good,
 * GoodCallAgain when a signal interrupted the wait, or the listener's error.
 */
UARC_API uarc_status uarc_reverse_hub_process(uarc_reverse_hub *hub, int timeout_ms);

/* The client of a server, NULL when that server never connected. Owned by the hub, which also
 * holds its wake callback (uarc_client_set_wake_callback(): do not replace it). */
UARC_API uarc_client *uarc_reverse_hub_client(const uarc_reverse_hub *hub, const char *server_uri);

/*
 * Blocks until the server's session is active (serving every other connection meanwhile).
 * Returns Good with *client set, BadTimeout, or GoodCallAgain on a signal.
 */
UARC_API uarc_status uarc_reverse_hub_wait(uarc_reverse_hub *hub, const char *server_uri,
                                           int timeout_ms, uarc_client **client);

/* Disconnects a server's client (CloseSession, CLO) and forgets the server: its next dial is
 * treated as a new server. Returns false when the server is unknown. */
UARC_API bool uarc_reverse_hub_release(uarc_reverse_hub *hub, const char *server_uri);

/* Number of servers known (connected or waiting for a re-dial). */
UARC_API size_t uarc_reverse_hub_count(const uarc_reverse_hub *hub);

#ifdef __cplusplus
}
#endif

#endif
