/*
 * The reverse-connect listener: binds, accepts inbound servers, reads and checks their RHE, and
 * hands each accepted socket over to the application.
 *
 * Many connections are served at once: each pending connection has its own hello deadline, holds
 * no buffer of its own (the RHE waits in the kernel until it is complete), and a silent or hostile
 * peer never delays another. Rejected connections get ERR and are closed.
 *
 * Two ways to drive it:
 *   - blocking: uarc_listener_accept() waits for the next accepted connection;
 *   - event loop: poll uarc_listener_fd() for reading with uarc_listener_timeout_ms(), call
 *     uarc_listener_process(l, 0), then take accepted connections with uarc_listener_next().
 *
 * Accepted connections wait in a queue until the application takes them. A server sends nothing
 * after its RHE until it gets HEL, so the listener keeps watching them: one whose peer closes or
 * resets it before it is taken leaves the queue at once (error event, BadConnectionClosed), stops
 * counting against max_pending, and is never handed out. (A peer that vanished without closing,
 * say behind a NAT that lost its state, cannot be told apart from one that waits.)
 *
 * Threads: a listener belongs to one thread. Callbacks run inside uarc_listener_process(),
 * uarc_listener_accept(), uarc_listener_accept_from() or uarc_listener_next(); they must not close
 * or delete the listener. From a callback run by uarc_listener_process() (or by the accept calls
 * that drive it), uarc_listener_next() works but uarc_listener_process(), _accept() and
 * _accept_from() return BadInvalidState: they would start a batch inside the running one.
 */
#ifndef UARC_LISTENER_H
#define UARC_LISTENER_H

#include "uarc/allowlist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest peer address text, "[ipv6%scope]:port" included. */
#define UARC_PEER_SIZE 80

/*
 * An accepted reverse connection. It owns its socket and strings until cleared; take the socket
 * with uarc_reverse_connection_take_fd() to keep it. The socket is non-blocking and close-on-exec;
 * any bytes the server sent after its RHE (it should send none before HEL) are still unread in it.
 */
typedef struct uarc_reverse_connection {
    int fd;                     /* the live socket, -1 when taken or closed */
    char *server_uri;           /* NUL-terminated copy (an RHE string never holds NUL) */
    size_t server_uri_length;   /* bytes, without the NUL */
    char *endpoint_url;         /* NUL-terminated copy */
    size_t endpoint_url_length; /* bytes, without the NUL */
    char peer[UARC_PEER_SIZE];  /* "127.0.0.1:51234" or "[::1]:51234" */
} uarc_reverse_connection;

/* Sets every field to empty and fd to -1. Cannot fail. */
UARC_API void uarc_reverse_connection_init(uarc_reverse_connection *connection);

/* Closes the socket (if still owned), frees the strings and re-initialises. */
UARC_API void uarc_reverse_connection_clear(uarc_reverse_connection *connection);

/* Hands the socket over to the caller, who then must close it. Returns -1 when none is held. */
UARC_API int uarc_reverse_connection_take_fd(uarc_reverse_connection *connection);

/*
 * Decides whether an RHE that passed the EndpointUrl checks is accepted. Return Good to accept;
 * any other status rejects, with a reason written to `reason` (NUL-terminated, reason_size bytes).
 */
typedef uarc_status (*uarc_rhe_policy_fn)(void *user_data, const uarc_rhe *hello, const char *peer,
                                          char *reason, size_t reason_size);

/* What happened, as it happens. Every member may be NULL. Pointers are valid during the call. */
typedef struct uarc_listener_callbacks {
    /* A complete, well-formed RHE arrived (before it is checked). */
    void (*hello)(void *user_data, const char *peer, const uarc_rhe *hello);
    /* The RHE was accepted; the connection is queued for uarc_listener_next()/accept(). */
    void (*accepted)(void *user_data, const uarc_reverse_connection *connection);
    /* The RHE was refused; ERR `status` with `reason` was sent and the socket closed. */
    void (*rejected)(void *user_data, const char *peer, const uarc_rhe *hello, uarc_status status,
                     const char *reason);
    /* A connection failed before its RHE was complete, or could not be served: parse error,
     * hello timeout (BadTimeout), peer closed early (BadConnectionClosed), too many pending
     * connections (BadTcpServerTooBusy), I/O (BadCommunicationError). The socket is closed.
     * Also for an accepted connection whose peer closed or reset it while it waited to be
     * taken (BadConnectionClosed, after its `accepted` event): it has left the queue.
     * Out of file descriptors (BadTcpInternalError, `peer` ""): once per connection dropped to
     * keep the backlog moving, or, with no descriptor to drop one with, once until an accept
     * succeeds again (meanwhile the listener retries every 250 ms). */
    void (*error)(void *user_data, const char *peer, uarc_status status, const char *reason);
    void *user_data;
} uarc_listener_callbacks;

/* Listener configuration. A zero-filled struct is valid; each default is given per field. */
typedef struct uarc_listener_config {
    /* Addresses to bind ("127.0.0.1", "::1", "[::1]", "0.0.0.0", "::", a host name).
     * NULL/0: all interfaces, IPv4 and IPv6 (a dual-stack "::" socket, or 0.0.0.0 without IPv6). */
    const char *const *bind_addresses;
    size_t bind_address_count;
    /* TCP port. 0: the kernel chooses (read it back with uarc_listener_port()). Several
     * addresses, given here or from a name that resolves to several (localhost: 127.0.0.1 and
     * ::1), all get the port the first one got; should another address have that port taken,
     * listening starts over on a new one (a few times). An address reached twice is bound once. */
    uint16_t port;
    /* Time a connection has to deliver its RHE. 0: 5000 ms. At most 120000 (the spec's ceiling). */
    uint32_t hello_timeout_ms;
    /* Connections waiting for their RHE or to be taken. Beyond it new ones get ERR
     * BadTcpServerTooBusy and are closed. One whose peer hung up while waiting to be taken no
     * longer counts. 0: 1024. */
    uint32_t max_pending;
    /* Largest RHE accepted. 0: UARC_RHE_MAX_MESSAGE_SIZE, the largest the spec allows. */
    uint32_t max_message_size;
    /* listen() backlog. 0: 511. */
    int backlog;
    /* Which servers are accepted. The EndpointUrl checks (uarc_endpoint_url_check) always apply.
     * Then: with an allowlist, its ServerUri must be in it; with a policy, the policy must accept.
     * With neither, every server is rejected. Borrowed: it must outlive the listener. */
    const uarc_allowlist *allowlist;
    uarc_rhe_policy_fn policy; /* NULL: none */
    void *policy_user_data;
    /* Rejections answer ERR BadTcpEndpointUrlInvalid (the spec's code). When true they answer
     * BadTcpMessageTypeInvalid instead, which some servers read as "pause re-dialing". */
    bool reject_with_message_type_invalid;
    /* SO_REUSEPORT on every listening socket: several processes that all set it share one port,
     * and the kernel spreads new connections over them (by a hash of the addresses and ports).
     * Default false: a port in use is a bind error. */
    bool reuse_port;
    uarc_listener_callbacks callbacks;
    uarc_logger logger;
} uarc_listener_config;

typedef struct uarc_listener uarc_listener;

/* Creates a listener with a copy of `config` (NULL: all defaults). It does not bind yet.
 * Returns NULL when out of memory. */
UARC_API uarc_listener *uarc_listener_new(const uarc_listener_config *config);

/* Binds and listens on every configured address. On failure nothing stays bound and
 * uarc_listener_error() names the address and the system error (BadTcpInternalError for a
 * bind/listen failure, BadInvalidArgument for an address that does not resolve). */
UARC_API uarc_status uarc_listener_listen(uarc_listener *listener);

/* Bound addresses, e.g. "127.0.0.1:4843" and "[::]:4843". Valid until the listener closes. */
UARC_API size_t uarc_listener_address_count(const uarc_listener *listener);
UARC_API const char *uarc_listener_address(const uarc_listener *listener, size_t index);
/* The bound port, 0 when not listening. */
UARC_API uint16_t uarc_listener_port(const uarc_listener *listener);

/* The one descriptor to poll for reading; -1 when not listening. */
UARC_API int uarc_listener_fd(const uarc_listener *listener);

/* Milliseconds until the next hello deadline, or until accepting resumes after running out of
 * file descriptors; -1 when neither is due. */
UARC_API int uarc_listener_timeout_ms(const uarc_listener *listener);

/*
 * Does all work that is due: accepts connections (a bounded number per call, so waiting sockets
 * are not starved), reads RHEs, checks them, rejects, expires deadlines, runs callbacks. Waits up
 * to `timeout_ms` for something to do (0: do not wait; -1: wait without limit).
 * Returns Good, GoodCallAgain when a signal interrupted the wait, or BadInvalidState when not
 * listening or when called from one of its callbacks.
 */
UARC_API uarc_status uarc_listener_process(uarc_listener *listener, int timeout_ms);

/* Moves the oldest accepted connection into *connection (which the caller then clears).
 * Returns true, or false when none is waiting. Each connection is checked first: one whose peer
 * has closed it is dropped (error event) and the next one is looked at. */
UARC_API bool uarc_listener_next(uarc_listener *listener, uarc_reverse_connection *connection);

/*
 * Blocks until a connection is accepted, serving every other connection meanwhile; `timeout_ms`
 * bounds the whole wait (-1: no limit). On Good, *connection holds the message and the live socket.
 * Returns BadTimeout, BadInvalidState (not listening), or GoodCallAgain when a signal interrupted
 * the wait (no connection was returned; call again to resume).
 */
UARC_API uarc_status uarc_listener_accept(uarc_listener *listener, int timeout_ms,
                                          uarc_reverse_connection *connection);

/*
 * Like uarc_listener_accept(), but returns only a connection from the server whose ServerUri is
 * `server_uri` (and, when `endpoint_url` is not NULL, that announced exactly this EndpointUrl;
 * server_uri may then be NULL). Connections from other servers are accepted and stay queued for
 * uarc_listener_next() and later accepts; the listener keeps serving everyone while it waits.
 * When several of that server's connections are queued it returns the NEWEST one still open: a
 * server keeps one socket waiting per client, so that is the one it waits on now, and older
 * ones are those it has likely given up on (they stay queued until taken or closed).
 * uarc_listener_accept() and uarc_listener_next(), with no server named, take the oldest.
 */
UARC_API uarc_status uarc_listener_accept_from(uarc_listener *listener, const char *server_uri,
                                               const char *endpoint_url, int timeout_ms,
                                               uarc_reverse_connection *connection);

/* Detail of the last error of this listener ("" when none). */
UARC_API const char *uarc_listener_error(const uarc_listener *listener);

/* Number of connections waiting for their RHE. */
UARC_API size_t uarc_listener_pending_count(const uarc_listener *listener);

/* Stops listening and closes every socket it still owns (pending and not yet taken). Idempotent;
 * the listener can listen again afterwards. */
UARC_API void uarc_listener_close(uarc_listener *listener);

/* Closes and frees. NULL is ignored. */
UARC_API void uarc_listener_delete(uarc_listener *listener);

#ifdef __cplusplus
}
#endif

#endif
