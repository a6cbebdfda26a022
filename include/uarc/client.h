/*
 * The OPC UA client: UA-TCP, secure channel and session over one socket, and the services.
 *
 * Three ways in, and nothing after them differs:
 *   - uarc_client_connect(): dial an "opc.tcp://host:port/path" URL;
 *   - uarc_client_connect_socket(): adopt an already-connected socket (for instance one a server
 *     opened to us, Reverse Connect) and send HEL with the given EndpointUrl. It never dials.
 *   - uarc_client_start_bytes(): no socket at all (byte mode, below).
 *
 * Three ways to drive it:
 *   - blocking: the connect, service and disconnect functions return when done or timed out;
 *   - event loop: uarc_client_start_connect()/_start_socket(), then poll uarc_client_fd() for
 *     uarc_client_poll_events() with uarc_client_timeout_ms(), call uarc_client_process(c, 0), and
 *     send requests with uarc_client_send(); results come through callbacks. One thread can drive
 *     many clients this way.
 *   - byte mode (sans I/O): the application owns the transport and the clock. After
 *     uarc_client_start_bytes() it sends what uarc_client_output_bytes() gives (and reports it
 *     with uarc_client_output_consumed()), feeds what it receives to uarc_client_receive_bytes(),
 *     calls uarc_client_tick() when uarc_client_timeout_ms() has passed, and reports the end of
 *     its transport with uarc_client_transport_closed(). Every one of these takes the current
 *     time in milliseconds (any monotonic origin); the client never reads the clock for protocol
 *     decisions and never touches a socket. Requests go out with uarc_client_send() or
 *     uarc_client_browse_send(); the blocking calls and uarc_client_process() return
 *     BadInvalidState, as there is nothing they could wait on. After uarc_client_send(), after
 *     receiving and after a tick, check uarc_client_output_bytes() for bytes to send.
 *
 * Errors: every function returns an OPC UA status; uarc_client_error() gives a detail string that
 * names the failing step ("connect", "HEL", "OPN", "CreateSession", "ActivateSession", or the
 * service) and the reason.
 *
 * Threads: a client belongs to one thread. Callbacks run inside uarc_client_process() or the
 * blocking calls; they may send requests (uarc_client_send) but must not delete the client.
 * uarc_client_disconnect() from a callback sends CloseSession and CLO at once and closes the
 * socket when control is back in uarc_client_process(). A blocking call (or
 * uarc_client_process()) from a callback that runs while a response is being received returns
 * BadInvalidState.
 */
#ifndef UARC_CLIENT_H
#define UARC_CLIENT_H

#include "uarc/budget.h"
#include "uarc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uarc_client uarc_client;

typedef enum uarc_client_state {
    UARC_CLIENT_DISCONNECTED = 0,   /* no socket */
    UARC_CLIENT_CONNECTING,         /* TCP connect in progress (dialing only) */
    UARC_CLIENT_HELLO,              /* HEL sent, waiting for ACK */
    UARC_CLIENT_OPENING,            /* OPN sent, waiting for the secure channel */
    UARC_CLIENT_CHANNEL_OPEN,       /* secure channel open, no session (config.no_session) */
    UARC_CLIENT_CREATING_SESSION,   /* CreateSession sent */
    UARC_CLIENT_ACTIVATING_SESSION, /* ActivateSession sent */
    UARC_CLIENT_SESSION_ACTIVE,     /* ready for service calls */
    UARC_CLIENT_CLOSING             /* CloseSession/CLO on the way out */
} uarc_client_state;

/* Name of a state ("SessionActive"). Static string. */
UARC_API const char *uarc_client_state_name(uarc_client_state state);

typedef struct uarc_client_callbacks {
    /* The state changed. `status` is Good, or why the client fell back to DISCONNECTED. */
    void (*state_changed)(void *user_data, uarc_client_state state, uarc_status status);
    void *user_data;
} uarc_client_callbacks;

/* Client configuration. A zero-filled struct is valid; each default is given per field. */
typedef struct uarc_client_config {
    /* Bounds the whole connect: TCP connect, HEL/ACK, OPN, CreateSession, ActivateSession.
     * 0: 10000 ms. */
    uint32_t connect_timeout_ms;
    /* Each handshake answer must come within this: the ACK to our HEL, the OPN response, and
     * the response to a token renewal. 0: connect_timeout_ms. */
    uint32_t handshake_timeout_ms;
    /* Default per-request timeout, also sent as the timeoutHint. 0: 10000 ms. */
    uint32_t request_timeout_ms;
    /* UA-TCP limits we announce in HEL. 0: 65535, 65535, 16 MiB, 4096 chunks. */
    uint32_t receive_buffer_size;
    uint32_t send_buffer_size;
    uint32_t max_message_size;
    uint32_t max_chunk_count;
    /* Requested secure channel token lifetime; renewed at 75 % of the lifetime the server
     * grants, but never sooner than 500 ms after the last token. 0: 600000 ms. */
    uint32_t secure_channel_lifetime_ms;
    /* NULL: http://opcfoundation.org/UA/SecurityPolicy#None. Also implemented:
     * http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256, #Aes128_Sha256_RsaOaep,
     * #Aes256_Sha256_RsaPss, #ECC_nistP256, #ECC_nistP384, #ECC_brainpoolP256r1 and
     * #ECC_brainpoolP384r1 (the ECC ones take EC certificates on their curve). */
    const char *security_policy_uri;
    /* For a policy other than None: UARC_MessageSecurityMode_Sign or _SignAndEncrypt.
     * Invalid (0): SignAndEncrypt. */
    uarc_MessageSecurityMode security_mode;
    /* Our application instance certificate and its unencrypted private key (RSA for the RSA
     * policies, EC on the policy's curve for the ECC ones), needed for a
     * policy other than None (and then for the CreateSession/ActivateSession signatures): in-memory
     * DER (certificate/private_key, copied; they win over the files) or files in PEM or DER.
     * NULL: none; with generate_certificate true, an ephemeral self-signed certificate (RSA-2048,
     * SHA-256, or for an ECC policy an EC key on its curve: see uarc_certificate_generate_for();
     * subjectAltName URI = application_uri, valid from now for a year) is made at the
     * first secured connect and kept for the client's life. Without either, a secured connect
     * fails with BadCertificateInvalid; with a key outside 2048 to 4096 bits (the RSA policies'
     * range, Part 7), with BadCertificatePolicyCheckFailed. */
    const uint8_t *certificate;
    size_t certificate_length;
    const uint8_t *private_key;
    size_t private_key_length;
    const char *certificate_file;
    const char *private_key_file;
    bool generate_certificate;
    /* The server's application instance certificate (DER, or a file in PEM or DER), given by the
     * application: a pin. The server must present exactly this certificate, and it is trusted
     * without trust list or store (see trust_list_dir). NULL: the certificate of the endpoint
     * with our policy and mode in the discovery result (uarc_client_set_endpoints() or
     * uarc_client_get_endpoints()), which needs a trust decision. A policy other than None with
     * neither fails before OPN with BadCertificateInvalid saying to run GetEndpoints first.
     * Copied; the memory wins over the file. */
    const uint8_t *server_certificate;
    size_t server_certificate_length;
    const char *server_certificate_file;
    /* When set and the channel is secured: the server certificate's subjectAltName URI must equal
     * it, else the connect fails with BadCertificateUriInvalid naming both URIs.
     * uarc_reverse_connect() and the hub set it to the ServerUri of the ReverseHello, so a server
     * cannot claim another server's identity. NULL: not checked. Copied. */
    const char *expected_server_uri;
    /*
     * Trust in the server's certificate (Part 4 §6.1.3). A certificate is trusted before anything
     * is encrypted for its key: before OPN on a secured channel, and on a None channel before a
     * password is encrypted for the serverCertificate of CreateSession. The first of these that
     * is set decides:
     * - trust_list_dir: a folder of trusted certificates (CA certificates or self-signed
     *   application certificates, PEM or DER) and optionally CRLs, read at each connect; its
     *   "certs" and "crl" subfolders are read too (the usual pki/trusted layout). The server's
     *   certificate, pinned or learned, must be in it or chain to a certificate in it; when the
     *   folder holds any CRL, every certificate of the chain must be covered by a current CRL of
     *   its issuer (self-signed ones excepted).
     * - a pinned certificate (server_certificate, server_certificate_file or
     *   uarc_client_set_server_certificate()): trusted as given; on a None channel the
     *   serverCertificate of CreateSession must equal it.
     * - trust_store_dir: trust on first use. The first certificate seen for the server is
     *   recorded in this folder (made when missing), one PEM file per expected_server_uri, or
     *   per endpoint URL when that is NULL, with a warning in the log (category "trust"); from
     *   then on only that certificate is trusted for it, any other fails with
     *   BadCertificateUntrusted naming the file, until the operator deletes or replaces it.
     * - accept_untrusted_server_certificate: any certificate is accepted with a warning in the
     *   log; for tests and demos, never for production.
     * With none of them, a certificate learned from the network (GetEndpoints, CreateSession) is
     * refused: a secured connect fails before OPN with BadCertificateUntrusted, a password
     * encryption at ActivateSession with BadSecurityChecksFailed, the detail saying what to set.
     * Whatever decides, the certificate must also be within its validity period, have an RSA key
     * of 2048 to 4096 bits and a SHA-2 signature, and, where it has them, keyUsage
     * digitalSignature and keyEncipherment and extendedKeyUsage serverAuth. A failure ends a
     * secured connect at step OPN with BadCertificateUntrusted, BadCertificateChainIncomplete,
     * BadCertificate(Issuer)TimeInvalid, BadCertificate(Issuer)Revoked,
     * BadCertificate(Issuer)RevocationUnknown, BadCertificate(Issuer)UseNotAllowed,
     * BadCertificatePolicyCheckFailed, BadCertificateInvalid or BadConfigurationError (folder
     * unreadable); uarc_client_error() names the certificate's subject and the reason.
     * accept_untrusted_server_certificate also turns every such failure, of a trust list or store
     * too, into a logged warning (a store still records a first certificate). The pin, the
     * comparison with the secure channel's certificate, expected_server_uri and the policy's key
     * size range (2048 to 4096 bits, else BadCertificatePolicyCheckFailed before anything is
     * sent) still apply. Strings copied.
     */
    const char *trust_list_dir;
    const char *trust_store_dir;
    bool accept_untrusted_server_certificate;
    /* The issuers list (Part 4 §6.1.3): a file or a folder (read as trust_list_dir is) of CA
     * certificates and their CRLs, PEM or DER, that may complete the chain from the server's
     * certificate to one of trust_list_dir but are trusted by nobody: a certificate whose chain
     * holds no certificate of the trust list is BadCertificateUntrusted. Issuers the server
     * sends after its certificate (the certificate field may hold a chain, Part 6 §6.2.6: at most
     * 8 certificates, 64 KiB, else BadCertificateInvalid) are used the same way; only the first
     * certificate is the server's and its key the one used. A chain must reach a self-signed
     * certificate through these three, else BadCertificateChainIncomplete: a trusted
     * intermediate CA whose root is in none of them does not make a complete chain. Used only
     * with trust_list_dir. NULL: none. Copied. */
    const char *issuer_list;
    /* Forward connect on a secured channel (expected_server_uri NULL; reverse connect checks
     * that instead), before OPN (Part 4 §6.1.3):
     * - the server certificate's subjectAltName URI must equal the server's ApplicationUri in
     *   the discovery result's endpoint for our policy and mode (when one is known), else the
     *   connect fails with BadCertificateUriInvalid naming both; allow_server_uri_mismatch makes
     *   that a warning in the log (category "trust");
     * - the host of the EndpointUrl should be among the certificate's DNS or IP
     *   subjectAltNames: a warning in the log when it is not, unless require_server_host_name,
     *   which fails the connect with BadCertificateHostNameInvalid instead.
     * accept_untrusted_server_certificate changes neither. */
    bool allow_server_uri_mismatch;
    bool require_server_host_name;
    /* Our ApplicationDescription. NULL: the subjectAltName URI of our certificate when one is
     * configured (certificate or certificate_file), else "urn:uarc:client"; and "uarc". The URI
     * must be the certificate's (servers check it): a configured application_uri that differs
     * from the configured certificate's fails every connect with BadCertificateUriInvalid, step
     * "connect", before anything is sent or dialed, as does a certificate without a URI. */
    const char *application_uri;
    const char *application_name;
    /* Session. NULL/0: "uarc session", 60000 ms. */
    const char *session_name;
    uint32_t session_timeout_ms;
    /* Idle keep-alive: a Read of the server state when nothing else was sent for this long.
     * 0: a third of the revised session timeout, at most 5 s (servers also drop a channel that
     * stays silent: node-opcua closes a reverse-connected one after its connectionTimeout). */
    uint32_t keepalive_interval_ms;
    /* Keep-alives of many clients that connected together are spread, not synchronised: each
     * client's interval is scaled by a factor between 0.8 and 1 derived from this seed (the
     * same seed, the same factor; never longer than configured). 0: a seed derived from the client
     * object's address. keepalive_exact: no scaling, every interval is exactly the one above. */
    uint32_t keepalive_jitter_seed;
    bool keepalive_exact;
    /* TCP keepalive on the client's socket (dialed or adopted), so that a server that vanished
     * without closing (its NAT state or power gone) is noticed while the connection is idle:
     * probes after tcp_keepalive_idle_s of silence, every tcp_keepalive_interval_s, and the
     * connection ends after tcp_keepalive_count unanswered ones (reason "TCP keepalive"); the
     * same total bounds how long sent data may stay unacknowledged (TCP_USER_TIMEOUT).
     * 0: 30 s, 5 s and 4, so a dead peer is found within 50 s. Capped at 86400 s, 3600 s and
     * 100. tcp_keepalive_disable leaves the socket's options as the system sets them. */
    uint32_t tcp_keepalive_idle_s;
    uint32_t tcp_keepalive_interval_s;
    uint32_t tcp_keepalive_count;
    bool tcp_keepalive_disable;
    /* Open only the secure channel (for GetEndpoints); no session. */
    bool no_session;
    /* Identity. user_name NULL: anonymous. With a user name, the password is encrypted with the
     * server's public key when the server's UserName token policy names a security policy (or
     * the channel is secured and the token policy names none): the legacy encrypted secret of
     * Part 4 §7.36.2.2, RSA-OAEP per that policy. The key is the serverCertificate of
     * CreateSession, and it is used only when it is trusted (see trust_list_dir; on a secured
     * channel it is the channel's) and is the certificate of the endpoint in use (the pin, or the
     * discovery result's endpoint), and only with a server nonce of at least 32 bytes
     * (CreateSession's, then the one each ActivateSession returns). Otherwise the connect fails at
     * ActivateSession with BadSecurityChecksFailed or BadNonceInvalid and the password is never
     * sent. Without a security policy in the token policy, the password would go out in clear text,
     * which happens on a None channel only when allow_unencrypted_password is true (else connect
     * fails with BadSecurityModeInsufficient). Both strings are copied. */
    const char *user_name;
    const char *password;
    bool allow_unencrypted_password;
    /* X509 user identity (Part 4 §7.36.5), instead of anonymous: the user's certificate and its
     * unencrypted RSA private key, as in-memory DER (copied; they win over the files) or files
     * in PEM or DER. ActivateSession then carries an X509IdentityToken with the certificate and
     * a userTokenSignature over the server's certificate and nonce, made with the key by the
     * AsymmetricSignatureAlgorithm of the token policy's SecurityPolicy (the channel's when the
     * token policy names none). When that is None the token goes unsigned, and a server may
     * refuse it (open62541 does). Only one of user_name and a user certificate may be set, and
     * certificate and key go together; otherwise every connect fails at step "connect" with
     * BadInvalidArgument. An unreadable file fails it with the loader's status, a key that is
     * not the certificate's fails ActivateSession with BadCertificateInvalid. NULL: none. */
    const uint8_t *user_certificate;
    size_t user_certificate_length;
    const uint8_t *user_private_key;
    size_t user_private_key_length;
    const char *user_certificate_file;
    const char *user_private_key_file;
    /* Limits for decoding responses (see uarc_decode_config; the arena field is ignored). */
    uarc_decode_config decode;
    /* The budget (uarc/budget.h) charged for this client's receive buffer, the responses being
     * joined and each decoded response while its callback runs; share one among many clients.
     * NULL: none, only the per-connection limits above. Borrowed: it must outlive the client. */
    uarc_memory_budget *memory_budget;
    /* Chunks the server sends for no request we are waiting for (never sent, or answered
     * already; late answers to requests that timed out do not count) before the connection is
     * dropped with BadUnknownResponse, reason "unsolicited responses". 0: 100. */
    uint32_t max_unsolicited_responses;
    uarc_client_callbacks callbacks;
    uarc_logger logger;
} uarc_client_config;

/* Creates a disconnected client with a copy of `config` (NULL: all defaults). NULL when out of
 * memory. */
UARC_API uarc_client *uarc_client_new(const uarc_client_config *config);

/* Closes abruptly (no CloseSession) and frees; pending requests' callbacks run with
 * BadConnectionClosed first. NULL is ignored. */
UARC_API void uarc_client_delete(uarc_client *client);

/* ---- Connecting ---------------------------------------------------------------------------- */

/* Dials `endpoint_url` and connects (blocking). Returns Good when the session is active (or the
 * channel open with no_session). On failure the client is DISCONNECTED and uarc_client_error()
 * names the step. */
UARC_API uarc_status uarc_client_connect(uarc_client *client, const char *endpoint_url);

/*
 * Adopts `fd`, an already-connected stream socket, and connects over it (blocking), sending
 * `endpoint_url` in HEL. The client owns `fd` from this call on, even when it fails (it is then
 * closed). Never opens another socket.
 */
UARC_API uarc_status uarc_client_connect_socket(uarc_client *client, int fd,
                                                const char *endpoint_url);

/* Non-blocking forms of the two above: they start the work and return Good at once (or an
 * error); drive with uarc_client_process() and watch state_changed or uarc_client_state_get(). */
UARC_API uarc_status uarc_client_start_connect(uarc_client *client, const char *endpoint_url);
UARC_API uarc_status uarc_client_start_socket(uarc_client *client, int fd,
                                              const char *endpoint_url);

/*
 * Creates and activates a session on a client connected with config.no_session (blocking): for
 * instance after GetEndpoints on a reverse-connected socket, to go on over the same socket
 * without waiting for the server to dial again. Returns BadInvalidState in any other state.
 */
UARC_API uarc_status uarc_client_create_session(uarc_client *client);

/* Closes the session (CloseSession), the channel (CLO) and the socket. It does not wait for the
 * server's answer to CloseSession; it waits at most 100 ms for a server that stops reading to take
 * the bytes. Idempotent. Pending requests fail with BadConnectionClosed. */
UARC_API uarc_status uarc_client_disconnect(uarc_client *client);
/* As uarc_client_disconnect(), without waiting: CloseSession and CLO go out as far as the socket
 * takes them at once (a server that stops reading may miss them), then the socket closes. For
 * event loops that must not stall on one connection. */
UARC_API uarc_status uarc_client_disconnect_now(uarc_client *client);

UARC_API uarc_client_state uarc_client_state_get(const uarc_client *client);
/* Pins the server's certificate (DER, copied; the first certificate of a chain is used) for the
 * next connects, as config.server_certificate does: the application vouches for it. For a
 * certificate learned from GetEndpoints, hand the whole result to uarc_client_set_endpoints()
 * instead, which leaves the trust decision to the trust list or store. NULL/0 forgets it.
 * Returns Good, BadCertificateInvalid, BadOutOfMemory; BadInvalidState while connected. */
UARC_API uarc_status uarc_client_set_server_certificate(uarc_client *client,
                                                        const uint8_t *certificate, size_t length);
/* Makes what generate_certificate makes, for an application that wants one certificate for many
 * clients: an RSA-2048 key and a self-signed SHA-256 application instance certificate with
 * subjectAltName URI `application_uri` (NULL: the client's default, "urn:uarc:client"), valid
 * from now for a year. *certificate is DER, *private_key PKCS#8 DER, both heap-owned (uarc_free;
 * cleanse the key first if that matters). Returns Good, BadOutOfMemory, BadInternalError. */
UARC_API uarc_status uarc_certificate_generate(const char *application_uri, uint8_t **certificate,
                                               size_t *certificate_length, uint8_t **private_key,
                                               size_t *private_key_length);
/* As uarc_certificate_generate(), with the key the SecurityPolicy `security_policy_uri` needs
 * (NULL or None: RSA-2048): for ECC_nistP256 and ECC_brainpoolP256r1 an EC key on that curve and a
 * SHA-256 signature, for ECC_nistP384 and ECC_brainpoolP384r1 the 384-bit curve and SHA-384;
 * RSA-2048 for the RSA policies. This is what generate_certificate makes for a client of that
 * policy. Returns also BadSecurityPolicyRejected for a policy uarc does not implement. */
UARC_API uarc_status uarc_certificate_generate_for(
    const char *application_uri, const char *security_policy_uri, uint8_t **certificate,
    size_t *certificate_length, uint8_t **private_key, size_t *private_key_length);
/* The application URI a certificate (DER) names: the first URI of its subjectAltName, copied
 * NUL-terminated into `uri` (`size` bytes). Returns Good, BadCertificateUriInvalid when it names
 * none (or one that does not fit), BadCertificateInvalid when `der` is not a certificate. */
UARC_API uarc_status uarc_certificate_uri(const uint8_t *der, size_t length, char *uri,
                                          size_t size);
/*
 * Gives the client the server's endpoints as GetEndpoints returned them (copied; NULL/0 forgets
 * them), for instance from another client that asked over a None channel;
 * uarc_client_get_endpoints() keeps its result the same way. They serve the next connects:
 *   - without a pinned certificate, a secured connect uses the serverCertificate of the endpoint
 *     with the configured policy and mode (it still needs a trust decision, see trust_list_dir);
 *   - the serverEndpoints of CreateSession must match them (Part 4 §5.6.2): every endpoint of
 *     one list has an endpoint of the same security policy and mode in the other, with the same
 *     certificate where both carry one; else the connect fails at CreateSession with
 *     BadSecurityChecksFailed naming the difference.
 * Returns Good, BadOutOfMemory; BadInvalidState while connected.
 */
UARC_API uarc_status uarc_client_set_endpoints(uarc_client *client,
                                               const uarc_EndpointDescription *endpoints,
                                               size_t count);
/* The endpoint of `endpoints` with the client's security policy and mode (mode Invalid:
 * SignAndEncrypt) that carries a certificate; NULL when none does. Points into `endpoints`. */
UARC_API const uarc_EndpointDescription *
uarc_client_pick_endpoint(const uarc_client *client, const uarc_EndpointDescription *endpoints,
                          size_t count);
/*
 * Forward discovery (blocking, Part 6 §7.1.3 for a server whose certificate you do not have):
 * dials `endpoint_url` with a second client of the same configuration but SecurityPolicy None,
 * no session and no user identity, asks GetEndpoints, closes it, and when
 * uarc_client_pick_endpoint() finds an endpoint hands every endpoint to `client`
 * (uarc_client_set_endpoints()): its next connect uses that endpoint's certificate, still under
 * its trust decision. Returns Good; BadSecurityPolicyRejected when no endpoint fits
 * (uarc_client_error() lists what the server offers); the status of the None connection or of
 * GetEndpoints (uarc_client_error() names the step); BadInvalidState unless disconnected in
 * socket mode.
 */
UARC_API uarc_status uarc_client_discover(uarc_client *client, const char *endpoint_url);
/* Sets config.expected_server_uri (copied; NULL: no check) for the next connect. Returns Good,
 * BadOutOfMemory; BadInvalidState while connected. */
UARC_API uarc_status uarc_client_set_expected_server_uri(uarc_client *client, const char *uri);

/* Detail of the last failure ("" when none): "<step>: <StatusName>: <reason>"; only the
 * StatusName if there was no memory for the text. */
UARC_API const char *uarc_client_error(const uarc_client *client);

/*
 * How the last connection ended, kept until the next connect starts ("" and Good before):
 * the status of the cause (not the BadSecureChannelClosed that requests in flight get) and a
 * short reason:
 *   "closed by peer"        the server closed the TCP connection (BadConnectionClosed)
 *   "reset by peer"         the connection was reset (BadConnectionClosed)
 *   "TCP keepalive"         the kernel gave up on the connection: keepalive probes or
 *                           retransmissions unanswered (BadConnectionClosed)
 *   "I/O error"             another socket error
 *   "transport failed"      byte mode: uarc_client_transport_closed() with a bad status
 *   "keep-alive timeout"    the keep-alive Read went unanswered (BadTimeout)
 *   "connect timeout"       the connect did not complete within connect_timeout_ms (BadTimeout)
 *   "handshake timeout"     no ACK/OPN response, or no answer to a token renewal (BadTimeout)
 *   "ERR from server"       the server sent ERR (its status)
 *   "CLO from server"       the server closed the secure channel (BadSecureChannelClosed)
 *   "protocol violation"    a malformed or unexpected message (BadSecureChannelIdInvalid,
 *                           BadDecodingError, BadTcpMessageTypeInvalid, BadTcpMessageTooLarge...)
 *   "memory budget"         the receive buffer would exceed the memory budget
 *                           (BadTcpNotEnoughResources)
 *   "unsolicited responses" over max_unsolicited_responses (BadUnknownResponse)
 *   "connect failed"        a connect step failed otherwise (its status)
 *   "closed by client"      uarc_client_disconnect() (Good)
 *   or the reason given to uarc_client_abort().
 */
UARC_API uarc_status uarc_client_end_status(const uarc_client *client);
UARC_API const char *uarc_client_end_reason(const uarc_client *client);
/*
 * The end reason in one word, for reports and programs: "closed" (closed by peer, CLO from
 * server), "reset" (reset by peer), "keepalive" (TCP keepalive: the peer vanished without a FIN),
 * "timeout" (keep-alive, connect or handshake timeout), "client" (closed by client), "error"
 * (anything else), "" before any end.
 */
UARC_API const char *uarc_client_end_kind(const uarc_client *client);

/* The address of the server's end of the socket ("127.0.0.1:4840", "[::1]:4840"), noted when
 * the connect starts and kept until the next; "" in byte mode or before any socket. */
UARC_API const char *uarc_client_peer(const uarc_client *client);

/*
 * Ends the connection at once, as a lost socket would: no CloseSession, no CLO, the session is
 * kept for a resume, pending requests fail, the client becomes DISCONNECTED, and
 * uarc_client_end_status()/_end_reason() give `status` and `reason` (copied, cut to 63 bytes).
 * From inside a callback the teardown happens once control is back in the client. Returns Good.
 */
UARC_API uarc_status uarc_client_abort(uarc_client *client, uarc_status status, const char *reason);
/* The endpoint URL in use, the SecurityPolicyUri of the channel, and the session's revised
 * timeout (valid while connected). */
UARC_API const char *uarc_client_endpoint_url(const uarc_client *client);
UARC_API const char *uarc_client_security_policy_uri(const uarc_client *client);
/* The ApplicationUri the client presents in CreateSession: config.application_uri, or, when the
 * configuration gives a certificate and no URI, the certificate's once a connect has started. */
UARC_API const char *uarc_client_application_uri(const uarc_client *client);
UARC_API double uarc_client_session_timeout_ms(const uarc_client *client);

/*
 * Sessions survive a lost connection: when the connection drops (not after
 * uarc_client_disconnect()), the client keeps the session's authentication token, and the next
 * connect to the same endpoint URL re-activates that session on the new secure channel, falling
 * back to a new session when the server does not know it. uarc_client_session_resumed() tells
 * which happened at the last activation; uarc_client_forget_session() makes the next connect
 * start a new session.
 */
UARC_API bool uarc_client_session_resumed(const uarc_client *client);
UARC_API void uarc_client_forget_session(uarc_client *client);

/* ---- Event loop ---------------------------------------------------------------------------- */

/* The socket to poll; -1 when disconnected. */
UARC_API int uarc_client_fd(const uarc_client *client);
/* POLLIN and/or POLLOUT (from <poll.h>) to wait for on uarc_client_fd(). */
UARC_API short uarc_client_poll_events(const uarc_client *client);
/* Milliseconds until the client has something to do by itself (a timeout, a renewal, a
 * keep-alive); -1 when nothing. In byte mode counted from the last time the application gave. */
UARC_API int uarc_client_timeout_ms(const uarc_client *client);
/*
 * Gathering: how many milliseconds the client's incoming data may wait unread after a wake-up
 * without anyone noticing, for an event loop over many clients that wants fewer wake-ups (it
 * leaves the sockets unread for the smallest of its clients' answers; uarc_reverse_hub does).
 * -1: nothing is expected (no subscription, no request in flight, or disconnected). 0: none (a
 * handshake, a request other than Publish or a renewal of the secure channel in flight, output
 * not yet written, a message partly read, or a subscription being made or recovered; a
 * subscription that failed and waits for nothing does not count). Else 1/20 of the shortest
 * publishing interval of its subscriptions, at most 50: the server already holds a change for up to
 * a whole interval before it publishes it.
 */
UARC_API int uarc_client_gather_ms(const uarc_client *client);
/* Reads, writes and handles what is due; waits up to `timeout_ms` for the socket (0: no wait;
 * -1: no limit). Returns Good, or the status the connection ended with. */
UARC_API uarc_status uarc_client_process(uarc_client *client, int timeout_ms);
/* uarc_client_process() for a loop that has already waited (epoll, poll, io_uring): `revents`
 * are the events reported for uarc_client_fd() (POLLIN, POLLOUT, POLLHUP, POLLERR; 0 when only
 * uarc_client_timeout_ms() passed). No system call is made to wait or to ask again. */
UARC_API uarc_status uarc_client_process_events(uarc_client *client, short revents);

/* Told that a client's descriptor, poll events or next deadline may have changed. */
typedef void (*uarc_client_wake_fn)(void *user_data, uarc_client *client);
/*
 * For event loops that keep many clients in one epoll set and one timer heap and touch only
 * the clients with events or due deadlines: `wake` (NULL: none) is called whenever
 * uarc_client_fd(), uarc_client_poll_events() or uarc_client_timeout_ms() may have changed (a
 * request sent, output queued, a state change), also from calls made outside
 * uarc_client_process(), so the loop re-reads them for that client only. It runs inside the
 * client's call and must not call the client.
 */
UARC_API void uarc_client_set_wake_callback(uarc_client *client, uarc_client_wake_fn wake,
                                            void *user_data);

/* ---- Byte mode ----------------------------------------------------------------------------- */

/* Starts a connect with no socket, at time `now_ms`: HEL is queued for uarc_client_output_bytes()
 * at once. Returns Good (the client is then HELLO) or an error (the client stays DISCONNECTED,
 * BadInvalidState when it is not). The connect_timeout_ms counts from `now_ms`. */
UARC_API uarc_status uarc_client_start_bytes(uarc_client *client, const char *endpoint_url,
                                             int64_t now_ms);

/* Feeds `length` bytes the transport received at `now_ms` (any split of the stream). Callbacks
 * run inside. Returns Good, or the status the connection ended with (the client is then
 * DISCONNECTED); BadInvalidState when not in byte mode or called from a callback. */
UARC_API uarc_status uarc_client_receive_bytes(uarc_client *client, const uint8_t *data,
                                               size_t length, int64_t now_ms);

/* The bytes waiting to be sent: their count, and *data pointing at them (owned by the client,
 * valid until the next call on the client). 0 when nothing waits or not in byte mode. After
 * uarc_client_disconnect() the client is DISCONNECTED but still gives the CLO bytes here. */
UARC_API size_t uarc_client_output_bytes(const uarc_client *client, const uint8_t **data);

/* Tells that the first `length` bytes of uarc_client_output_bytes() were sent (at most its
 * count). */
UARC_API void uarc_client_output_consumed(uarc_client *client, size_t length);

/* Handles what is due at `now_ms`: request and connect timeouts, secure channel renewal,
 * keep-alive. Call it when uarc_client_timeout_ms() (counted from the last time given) has
 * passed; calling it more often is harmless. Returns as uarc_client_receive_bytes(). */
UARC_API uarc_status uarc_client_tick(uarc_client *client, int64_t now_ms);

/* The application's transport ended: `status` Good for an orderly end by the peer (the
 * connection then ends with BadConnectionClosed), else the status to end it with. As with a lost
 * socket, pending requests fail with BadSecureChannelClosed once the channel was open (with that
 * status while connecting), the client becomes DISCONNECTED (keeping the session for a resume, as
 * with a lost socket) and unsent output is dropped. Returns the status the connection ended with
 * (Good after uarc_client_disconnect()); BadInvalidState when not in byte mode or called from a
 * callback. */
UARC_API uarc_status uarc_client_transport_closed(uarc_client *client, uarc_status status);

/* ---- Services ------------------------------------------------------------------------------ */

/*
 * Response callback. `status` is Good, the ServiceFault's or response's serviceResult, or why
 * the request failed (BadTimeout, BadConnectionClosed, BadSecureChannelClosed, BadDecodingError,
 * ...). `response` is NULL when no response of the expected type arrived; otherwise it is a
 * heap value of the response type valid during the call: to keep it, uarc_copy() it, or move it
 * (copy the struct and zero-fill the original).
 */
typedef void (*uarc_response_fn)(void *user_data, uarc_status status, void *response);

/*
 * Sends any service request (non-blocking). `request` is a value of `request_type` whose first
 * member is the RequestHeader; the encoded request carries the client's authenticationToken,
 * timestamp, requestHandle and (when 0) timeoutHint, and `request` is restored unchanged before
 * the call returns. `timeout_ms` 0 uses the configured request timeout. *request_handle (may
 * be NULL) receives the RequestHandle. The callback runs exactly once.
 */
UARC_API uarc_status uarc_client_send(uarc_client *client, void *request,
                                      const uarc_type *request_type, const uarc_type *response_type,
                                      uint32_t timeout_ms, uarc_response_fn callback,
                                      void *user_data, uint32_t *request_handle);

/*
 * Blocking form: sends `request` and waits. On return *response (of response_type, overwritten)
 * is heap-owned by the caller (uarc_clear it) whenever a response of that type arrived, even when
 * its serviceResult is bad. Returns the status as for uarc_response_fn.
 */
UARC_API uarc_status uarc_client_call(uarc_client *client, void *request,
                                      const uarc_type *request_type, void *response,
                                      const uarc_type *response_type);

/* GetEndpoints for the connected endpoint URL (works with or without a session). On Good the
 * client also keeps the endpoints, as uarc_client_set_endpoints() does. */
UARC_API uarc_status uarc_client_get_endpoints(uarc_client *client,
                                               uarc_GetEndpointsResponse *response);

/*
 * Reads `count` attributes in one Read request (nodes[i].attributeId 13 is the Value; an empty
 * indexRange/dataEncoding reads the whole value in the default encoding), with source and server
 * timestamps and maxAge 0. On Good, values[0..count-1] hold the results in order (heap-owned by
 * the caller: uarc_clear(&values[i], UARC_T(DataValue)) each), every one with its own status;
 * otherwise they are empty. Returns the service status (BadTooManyOperations when the server
 * takes fewer nodes per Read), or BadUnexpectedError when the server answers with another number
 * of results. count 0 is BadNothingToDo without a request.
 */
UARC_API uarc_status uarc_client_read(uarc_client *client, const uarc_ReadValueId *nodes,
                                      size_t count, uarc_data_value *values);

/* Reads one attribute (UARC_ATTRIBUTEID_Value is 13) of one node into *value (heap-owned by the
 * caller). Returns the service status; the value's own status is in value->status. */
UARC_API uarc_status uarc_client_read_attribute(uarc_client *client, const uarc_nodeid *node,
                                                uint32_t attribute_id, uarc_data_value *value);

/* Writes the Value attribute. Returns the service status, else the operation's status. */
UARC_API uarc_status uarc_client_write_value(uarc_client *client, const uarc_nodeid *node,
                                             const uarc_variant *value);

/*
 * Browses the forward hierarchical references of `node`, following every continuation point
 * (BrowseNext) to the end, and releasing them on failure. *references is a heap array of *count
 * values (free with uarc_array_delete(..., UARC_T(ReferenceDescription))).
 */
UARC_API uarc_status uarc_client_browse(uarc_client *client, const uarc_nodeid *node,
                                        uarc_ReferenceDescription **references, size_t *count);

/*
 * TranslateBrowsePathsToNodeIds for one path of hierarchical references from `start`:
 * "/0:Server/0:ServerStatus" or "Server/ServerStatus" (each element "[ns:]BrowseName").
 * *target (heap-owned) receives the first target. Returns BadNoMatch when nothing matches, the
 * service status, or the result's status.
 */
UARC_API uarc_status uarc_client_translate_path(uarc_client *client, const uarc_nodeid *start,
                                                const char *path, uarc_nodeid *target);

/*
 * Non-blocking form of uarc_client_browse(): Browse, then BrowseNext for every continuation point,
 * then the callback runs once with the references. The callback owns the array (free it with
 * uarc_array_delete(..., UARC_T(ReferenceDescription))); on failure it gets NULL and 0, and a
 * continuation point still held is released on the server.
 */
typedef void (*uarc_browse_fn)(void *user_data, uarc_status status,
                               uarc_ReferenceDescription *references, size_t count);
UARC_API uarc_status uarc_client_browse_send(uarc_client *client, const uarc_nodeid *node,
                                             uarc_browse_fn callback, void *user_data);

/* Calls a method. *outputs is a heap array of *output_count Variants (uarc_array_delete with
 * UARC_T(Variant)). Returns the service status, else the method's status. */
UARC_API uarc_status uarc_client_call_method(uarc_client *client, const uarc_nodeid *object,
                                             const uarc_nodeid *method, const uarc_variant *inputs,
                                             size_t input_count, uarc_variant **outputs,
                                             size_t *output_count);

#ifdef __cplusplus
}
#endif

#endif
