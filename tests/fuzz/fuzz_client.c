/*
 * libFuzzer target for the client layer (src/client): what a uarc_client does with the
 * messages a server sends once the secure channel is up. The dispatch on the response's encoding
 * NodeId, ServiceFaults, matching responses to the requests in flight, the CreateSession and
 * ActivateSession answers, re-activating a kept session, Browse/BrowseNext continuation points,
 * keep-alive and request timeouts, and the blocking helpers' checks of what came back. A real
 * client is driven through its public API over a socketpair, or in byte mode (input byte 1 bit
 * 6): then the harness feeds uarc_client_receive_bytes() and takes uarc_client_output_bytes(),
 * drives the clock with uarc_client_tick() and ends a connection with
 * uarc_client_transport_closed(); the blocking helpers then must fail with an error detail.
 *
 * The harness plays the server on its end of the socketpair. It reads every message the client
 * writes, and each must be well-formed: HEL, OPN, CLO, or a MSG whose body decodes as the request
 * type its NodeId names. It answers HEL, OPN (Issue and Renew), CreateSession and ActivateSession
 * with valid messages unless the options leave one to the fuzzer, and it remembers the requests in
 * flight. The rest of the input is a script of records: client actions (non-blocking requests, the
 * blocking helpers, disconnect, reconnect), server replies with fuzzer bytes to a request in
 * flight, raw bytes, and clock steps.
 *
 * Time is virtual. The target links with --wrap=uarc__now_ms and --wrap=poll (see
 * tests/fuzz/CMakeLists.txt), so the clock moves only when the script says so or when the client
 * would wait: a poll that would block jumps the clock to its timeout instead. Inside a blocking
 * call, each of the client's polls first plays the script's next server record, if that is what
 * comes next. Nothing sleeps and every run is deterministic.
 *
 * Checks besides "no crash, no leak": every callback runs exactly once; Good comes with a response;
 * a failed blocking helper leaves an error detail; the client never polls without a timeout while
 * nothing can arrive (a hang), and once it has done what was due, uarc_client_timeout_ms() is not
 * 0 (an event loop would spin); a state change to Disconnected carries a Bad status; a
 * subscription delivers its messages in increasing sequence numbers (wrapping) per subscription
 * id, and nothing after it was deleted. At the end the
 * client is connected and a valid Read is answered Good (when only well-formed frames were sent),
 * or it is disconnected with an error detail, no socket and nothing pending; with the clock run
 * past every timeout it is in one of those two states, never halfway.
 *
 * Input:
 *   byte 0: options (OPT_* below)
 *   byte 1: bits 0-5 the revisedSessionTimeout of the valid CreateSession response in seconds
 *           (with OPT_USER, an odd value also sets accept_untrusted_server_certificate, so that a
 *           password can be encrypted for a certificate of the fuzzer's CreateSession), bit 6
 *           byte mode instead of a socketpair, bit 7 leaves re-activations (ActivateSession after
 *           a reconnect) to the fuzzer
 *   records, each an op byte (kind in bits 0-3, parameter p in bits 4-7) and its data:
 *     REPLY     selector byte, u16 length, data. The reply goes to a request in flight: the
 *               selector (bits 0-6) picks one of those not yet answered, or with bit 7 any seen
 *               so far. p bits 0-1: 0 data is the whole body (encoding NodeId first), 1 the
 *               response type's NodeId then data, 2 NodeId and a ResponseHeader (Good, the
 *               request's handle) then data, 3 the first 4 data bytes are the RequestId and the
 *               rest the whole body. p bits 2-3: chunk type F, C, A (abort: data is status and
 *               reason), F.
 *     RAW       u16 length, data: written as they are
 *     TICK      u16: the clock moves this many ms (p odd: seconds)
 *     SEND      a non-blocking request (p bits 0-2 the service, bit 3 a 100 ms timeout)
 *     BROWSE    uarc_client_browse_send
 *     BLOCK     a blocking helper (p modulo 9)
 *     CLOSE     p 0: uarc_client_disconnect, 1: the server closes its end, 2: forget the session
 *     RECONNECT a new socketpair and uarc_client_start_socket, or uarc_client_start_bytes
 *               (refused unless disconnected)
 *     SUBSCRIBE p 0-3: a subscription (bit 0: deferred acknowledgement, acknowledged from its
 *               callback; bit 1: no data item), created once the session is active, its Publish
 *               requests then answered by REPLY records; p 4: the last one deleted; p 5: a
 *               subscription with an event item (two select clauses, OfType)
 *     SECURE    as the first record only: the channel is Basic256Sha256, SignAndEncrypt (p bit 0:
 *               Sign), with the fixed identities of fuzz_secure_keys.h (the server's certificate
 *               pinned). The harness then opens what the client sends with the server's keys
 *               (tests/fuzz/secure_peer.c), answers OPN and CreateSession with what a secured
 *               server sends (nonces, its signature), and seals every MSG chunk it sends, REPLY
 *               records' included, so that fuzzer bodies pass the client's decryption, signature
 *               and padding checks; a REPLY's fourth chunk type (p bits 2-3 = 3) is sealed with
 *               the fuzzer's own padding instead (everything after the sequence header is its
 *               bytes). RAW records stay unsealed and meet the checks.
 *   u16 values are little-endian; a length past the end takes what is left.
 *
 * FUZZ_CLIENT_TRACE=1 in the environment prints what happens in a run, for triage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uarc/uarc.h"
#include "channel/chunk.h"
#include "secure_peer.h"

#define URL            "opc.tcp://fuzz:4840"
#define POLICY_NONE    "http://opcfoundation.org/UA/SecurityPolicy#None"
#define CHANNEL_ID     5u
#define BUFFER_SIZE    65535u /* what the harness's ACK grants, and what it accepts */
#define MAX_SEEN       64
#define MAX_TICKETS    128
#define MAX_IDLE_POLLS 2000
#define BYTE_FD        0x7FFFFFFF /* h.fd of a byte-mode connection: no descriptor at all */
#define START_TIME_MS  1000000

#define OPT_NO_ACK      0x01 /* HEL is not answered: RAW records must do it */
#define OPT_NO_RENEW    0x02 /* OPN Renew is not answered */
#define OPT_FUZZ_CREATE 0x04 /* CreateSession is left to REPLY records */
#define OPT_FUZZ_ACT    0x08 /* ActivateSession is left to REPLY records */
#define OPT_NO_SESSION  0x10 /* config.no_session */
#define OPT_USER        0x20 /* a user name and password instead of anonymous */
#define OPT_SMALL       0x40 /* small decode and message limits */
#define OPT_KEEPALIVE   0x80 /* keep-alive every 100 ms */

enum { REPLY, RAW, TICK, SEND, BROWSE, BLOCK, CLOSE, RECONNECT, SUBSCRIBE, SECURE };

#define MAX_SUBSCRIPTIONS 8

#define require(condition)                                                                         \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "fuzz_client.c:%d: %s\n", __LINE__, #condition);                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct seen_request {
    uint32_t id;
    uint32_t handle;
    const uarc_type *response_type;
    bool answered;
} seen_request;

typedef struct ticket {
    bool done;
    bool browse;
    uarc_status status;
    const uarc_type *response_type; /* NULL for a browse */
} ticket;

typedef struct frame {
    uint8_t bytes[BUFFER_SIZE + 4096];
    size_t length;
} frame;

typedef struct harness {
    bool active;
    uarc_client *client;
    bool bytes;    /* byte mode: fd is BYTE_FD while the application's transport is up */
    int fd;        /* the server's end; -1 once closed */
    int client_fd; /* the client's end, to recognize its polls */
    uint8_t options;
    uint8_t session_byte;
    /* server side of the current connection */
    uint32_t sequence, token_id;
    bool hel_seen, peer_closed, activated_once;
    uint8_t in[2 * BUFFER_SIZE];
    size_t in_length;
    uint64_t bytes_in, bytes_out; /* from and to the client, for pump() */
    seen_request seen[MAX_SEEN];
    size_t seen_count;
    /* the script */
    const uint8_t *script;
    size_t script_size, pos;
    bool blocking;
    bool in_poll; /* inside the client's poll: the client cannot be driven from here */
    unsigned idle_polls;
    /* bookkeeping */
    ticket tickets[MAX_TICKETS];
    size_t ticket_count;
    bool clean;           /* only whole, well-formed frames were sent */
    bool disconnected_us; /* the last disconnect was uarc_client_disconnect() */
    /* a secured channel (the SECURE record) */
    bool secure, sign_only;
    secure_peer peer;
    bool own_padding; /* the next MSG chunk goes out with the fuzzer's padding */
    uint8_t nonce_counter;
    /* subscriptions */
    struct watched {
        uarc_subscription *subscription; /* NULL once deleted */
        uint32_t last_id, last_sequence; /* of the last message delivered */
    } subs[MAX_SUBSCRIPTIONS];
    size_t sub_count;
} harness;

static harness h;
static frame out_frame;
static int64_t fake_now;
static int tracing = -1; /* FUZZ_CLIENT_TRACE set: what happens goes to stderr, for triage */

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *fmt, ...)
{
    if (tracing < 0)
        tracing = getenv("FUZZ_CLIENT_TRACE") != NULL;
    if (!tracing)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%lld] ", (long long)fake_now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- virtual time ---- */

int64_t __wrap_uarc__now_ms(void);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);

int64_t __wrap_uarc__now_ms(void)
{
    return fake_now;
}

/* ---- frames ---- */

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A string over `text` without a copy. */
static uarc_string view(const char *text)
{
    return (uarc_string){strlen(text), (uint8_t *)text};
}

static void put(frame *f, const void *data, size_t n)
{
    if (n > sizeof f->bytes - f->length)
        n = sizeof f->bytes - f->length;
    if (n)
        memcpy(f->bytes + f->length, data, n);
    f->length += n;
}

static void put_u32(frame *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(f, b, 4);
}

static void put_value(frame *f, const void *value, const uarc_type *type)
{
    size_t length = f->length;
    require(uarc_encode(value, type, f->bytes, sizeof f->bytes, &length) == UARC_Good);
    f->length = length;
}

static void put_type_id(frame *f, const uarc_type *type)
{
    uarc_nodeid id = uarc_nodeid_numeric(0, type->binary_encoding_id);
    put_value(f, &id, UARC_T(NodeId));
}

static void begin(frame *f, const char type_and_chunk[4])
{
    f->length = 0;
    put(f, type_and_chunk, 4);
    put_u32(f, 0);
}

static void end(frame *f)
{
    uint32_t size = (uint32_t)f->length;
    for (int i = 0; i < 4; i++)
        f->bytes[4 + i] = (uint8_t)(size >> (8 * i));
}

/* Writes to the client; a full socket is given to the client to read (outside blocking calls). */
static void write_to_client(const uint8_t *data, size_t n)
{
    if (h.bytes) {
        if (h.fd != BYTE_FD || uarc_client_state_get(h.client) == UARC_CLIENT_DISCONNECTED) {
            h.clean = false; /* as a write to a closed socket */
            return;
        }
        h.bytes_out += n;
        uarc_client_receive_bytes(h.client, data, n, fake_now);
        return;
    }
    for (int tries = 0; n && h.fd >= 0 && tries < 64; tries++) {
        ssize_t k = send(h.fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            h.bytes_out += (size_t)k;
            data += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !h.in_poll) {
            uarc_client_process(h.client, 0);
            continue;
        }
        break; /* the client closed its end, or it is busy in its poll */
    }
    if (n)
        h.clean = false;
}

/* On a secured channel: the MSG chunk in `f` sealed with the current token's keys (or with the
 * fuzzer's padding, see SECURE above). */
static void send_sealed(const frame *f)
{
    static uint8_t sealed[sizeof f->bytes + 1024];
    uarc__chunk_info info = {.type = UARC__UATCP_MSG,
                             .chunk_type = f->bytes[3],
                             .channel_id = get_u32(f->bytes + 8),
                             .token_id = get_u32(f->bytes + 12),
                             .sequence_number = get_u32(f->bytes + 16),
                             .request_id = get_u32(f->bytes + 20),
                             .body = f->bytes + 24,
                             .body_length = f->length - 24};
    size_t size = !h.peer.keys    ? 0 /* no token yet: nothing to seal with */
                  : h.own_padding ? seal_own_padding(h.peer.policy, h.peer.context, h.peer.keys,
                                                     &info, sealed, sizeof sealed)
                                  : secure_peer_seal(&h.peer, &info, sealed, sizeof sealed);
    if (h.own_padding || !size)
        h.clean = false;
    h.own_padding = false;
    write_to_client(sealed, size);
}

static void send_frame(frame *f)
{
    end(f);
    if (h.secure && memcmp(f->bytes, "MSG", 3) == 0)
        send_sealed(f);
    else
        write_to_client(f->bytes, f->length);
}

/* A MSG chunk on the current token with the next sequence number; the body follows. */
static void begin_msg(frame *f, char chunk, uint32_t request_id)
{
    char type[4] = {'M', 'S', 'G', chunk};
    begin(f, type);
    put_u32(f, CHANNEL_ID);
    put_u32(f, h.token_id);
    put_u32(f, h.sequence++);
    put_u32(f, request_id);
}

static void reply_value(const seen_request *r, void *response, const uarc_type *type)
{
    ((uarc_ResponseHeader *)response)->requestHandle = r->handle;
    begin_msg(&out_frame, 'F', r->id);
    put_type_id(&out_frame, type);
    put_value(&out_frame, response, type);
    send_frame(&out_frame);
}

/* 32 bytes a secured server would make at random: here new ones each time, made up. */
static void make_nonce(uint8_t nonce[32])
{
    h.nonce_counter++;
    for (int i = 0; i < 32; i++)
        nonce[i] = (uint8_t)(h.nonce_counter * 37 + i);
}

/* The OPN response sealed with the server's key, and the new token's keys. */
static void reply_opn_secure(uarc_OpenSecureChannelResponse *r, uint32_t request_id)
{
    uint8_t nonce[32];
    make_nonce(nonce);
    r->serverNonce = (uarc_bytestring){sizeof nonce, nonce};
    frame *body = &out_frame;
    body->length = 0;
    put_type_id(body, UARC_T(OpenSecureChannelResponse));
    put_value(body, r, UARC_T(OpenSecureChannelResponse));
    secure_peer_new_token(&h.peer, r->securityToken.tokenId, nonce);
    const char *uri = h.peer.policy->uri;
    uarc__chunk_info info = {.type = UARC__UATCP_OPN,
                             .chunk_type = 'F',
                             .channel_id = CHANNEL_ID,
                             .policy_uri = {(const uint8_t *)uri, strlen(uri)},
                             .sender_certificate = h.peer.policy->local_certificate(h.peer.context),
                             .receiver_thumbprint =
                                 h.peer.policy->remote_thumbprint(h.peer.context),
                             .sequence_number = h.sequence++,
                             .request_id = request_id,
                             .body = body->bytes,
                             .body_length = body->length};
    static uint8_t sealed[8192];
    size_t size = secure_peer_seal(&h.peer, &info, sealed, sizeof sealed);
    require(size > 0);
    write_to_client(sealed, size);
    r->serverNonce = (uarc_bytestring){0, NULL};
}

static void reply_opn(uint32_t request_id, uint32_t token_id)
{
    uarc_OpenSecureChannelResponse r;
    uarc_init(&r, UARC_T(OpenSecureChannelResponse));
    r.securityToken.channelId = CHANNEL_ID;
    r.securityToken.tokenId = token_id;
    r.securityToken.revisedLifetime = 600000;
    if (h.secure) {
        reply_opn_secure(&r, request_id);
        h.token_id = token_id;
        return;
    }
    frame *f = &out_frame;
    begin(f, "OPNF");
    put_u32(f, CHANNEL_ID);
    put_u32(f, (uint32_t)strlen(POLICY_NONE));
    put(f, POLICY_NONE, strlen(POLICY_NONE));
    put_u32(f, 0xFFFFFFFFu);
    put_u32(f, 0xFFFFFFFFu);
    put_u32(f, h.sequence++);
    put_u32(f, request_id);
    put_type_id(f, UARC_T(OpenSecureChannelResponse));
    put_value(f, &r, UARC_T(OpenSecureChannelResponse));
    send_frame(f);
    h.token_id = token_id;
}

static void reply_ack(void)
{
    frame *f = &out_frame;
    begin(f, "ACKF");
    put_u32(f, 0);
    put_u32(f, BUFFER_SIZE);
    put_u32(f, BUFFER_SIZE);
    put_u32(f, 0);
    put_u32(f, 0);
    send_frame(f);
}

static void reply_create_session(const seen_request *r, const uarc_CreateSessionRequest *q)
{
    uarc_CreateSessionResponse cs;
    uarc_init(&cs, UARC_T(CreateSessionResponse));
    cs.sessionId = uarc_nodeid_numeric(1, 77);
    cs.authenticationToken = uarc_nodeid_numeric(1, 78);
    cs.revisedSessionTimeout = (h.session_byte & 0x3F) * 1000.0;
    uarc_UserTokenPolicy token = {.policyId = view("user"),
                                  .tokenType = UARC_UserTokenType_UserName};
    uarc_EndpointDescription endpoint = {.endpointUrl = view(URL),
                                         .securityMode = UARC_MessageSecurityMode_None,
                                         .securityPolicyUri = view(POLICY_NONE),
                                         .userIdentityTokensSize = 1,
                                         .userIdentityTokens = &token};
    uint8_t nonce[32], signed_data[4096], signature[512];
    if (h.secure) {
        /* what a secured server proves: its certificate, a nonce, its signature over ours */
        endpoint.securityMode =
            h.sign_only ? UARC_MessageSecurityMode_Sign : UARC_MessageSecurityMode_SignAndEncrypt;
        endpoint.securityPolicyUri = view(h.peer.policy->uri);
        const uint8_t *cert;
        size_t cert_length, signature_length;
        secure_peer_server_certificate(&cert, &cert_length);
        cs.serverCertificate = (uarc_bytestring){cert_length, (uint8_t *)cert};
        make_nonce(nonce);
        cs.serverNonce = (uarc_bytestring){sizeof nonce, nonce};
        size_t n = q->clientCertificate.length, m = q->clientNonce.length;
        require(n + m <= sizeof signed_data);
        if (n)
            memcpy(signed_data, q->clientCertificate.data, n);
        if (m)
            memcpy(signed_data + n, q->clientNonce.data, m);
        secure_peer_sign(&h.peer, signed_data, n + m, signature, &signature_length);
        cs.serverSignature.algorithm = view(h.peer.policy->asym_signature_uri);
        cs.serverSignature.signature = (uarc_bytestring){signature_length, signature};
    }
    cs.serverEndpointsSize = 1;
    cs.serverEndpoints = &endpoint;
    reply_value(r, &cs, UARC_T(CreateSessionResponse));
}

static void reply_activate_session(const seen_request *r)
{
    uarc_ActivateSessionResponse as;
    uarc_init(&as, UARC_T(ActivateSessionResponse));
    uint8_t nonce[32];
    if (h.secure) { /* the next activation's password is encrypted with it */
        make_nonce(nonce);
        as.serverNonce = (uarc_bytestring){sizeof nonce, nonce};
    }
    reply_value(r, &as, UARC_T(ActivateSessionResponse));
}

/* ---- what the client sends ---- */

static const uarc_type *response_type_of(const uarc_type *request)
{
    static const uarc_type *known[UARC_TYPE_COUNT]; /* by request type; a lookup by name is slow */
    if (known[request->index])
        return known[request->index];
    char name[96];
    size_t n = strlen(request->name);
    require(n > 7 && n < sizeof name && strcmp(request->name + n - 7, "Request") == 0);
    snprintf(name, sizeof name, "%.*sResponse", (int)(n - 7), request->name);
    const uarc_type *type = uarc_type_by_name(name);
    require(type);
    known[request->index] = type;
    return type;
}

/* The body and request id of a chunk the client sent: as they are on a None channel, opened with
 * the server's keys on a secured one (in place: `m` is the harness's receive buffer). False when
 * a secured chunk does not open, which only raw bytes of the script may have caused. */
static bool open_chunk(uint8_t *m, size_t size, uarc__chunk_info *info)
{
    if (h.secure) {
        uarc_status s = secure_peer_open(&h.peer, m, size, info);
        if (s != UARC_Good)
            trace("server: a chunk of the client does not open: %s", uarc_status_name(s));
        require(s == UARC_Good || !h.clean);
        return s == UARC_Good;
    }
    *info = (uarc__chunk_info){.chunk_type = m[3]};
    size_t pos = 12; /* MSG: token id; OPN: the asymmetric header's three strings */
    if (m[0] == 'O') {
        for (int i = 0; i < 3; i++) {
            require(pos + 4 <= size);
            int32_t length = (int32_t)get_u32(m + pos);
            pos += 4 + (length > 0 ? (size_t)length : 0);
        }
    } else {
        require(size >= 24);
        info->token_id = get_u32(m + pos);
        pos += 4;
    }
    require(pos + 8 <= size);
    info->channel_id = get_u32(m + 8);
    info->request_id = get_u32(m + pos + 4);
    info->body = m + pos + 8;
    info->body_length = size - pos - 8;
    return true;
}

static void on_opn_request(uint8_t *m, size_t size)
{
    uarc__chunk_info info;
    if (!open_chunk(m, size, &info))
        return;
    uint32_t request_id = info.request_id;
    size_t offset = 0;
    uarc_nodeid id;
    require(uarc_decode(info.body, info.body_length, &offset, &id, UARC_T(NodeId), NULL) ==
            UARC_Good);
    require(id.identifier.numeric == UARC_T(OpenSecureChannelRequest)->binary_encoding_id);
    uarc_OpenSecureChannelRequest request;
    require(uarc_decode(info.body, info.body_length, &offset, &request,
                        UARC_T(OpenSecureChannelRequest), NULL) == UARC_Good);
    require(offset == info.body_length);
    if (h.secure) {
        require(request.clientNonce.length == sizeof h.peer.client_nonce);
        memcpy(h.peer.client_nonce, request.clientNonce.data, sizeof h.peer.client_nonce);
    }
    if (request.requestType == UARC_SecurityTokenRequestType_Issue)
        reply_opn(request_id, 1);
    else if (!(h.options & OPT_NO_RENEW))
        reply_opn(request_id, h.token_id + 1);
    uarc_clear(&request, UARC_T(OpenSecureChannelRequest));
}

static void on_msg_request(uint8_t *m, size_t size)
{
    uarc__chunk_info info;
    if (!open_chunk(m, size, &info))
        return;
    require(info.chunk_type == 'F'); /* requests this small are never split */
    uint32_t token = info.token_id;
    if (h.clean) /* raw bytes may have opened the channel with other ids */
        require(info.channel_id == CHANNEL_ID && (token == h.token_id || token + 1 == h.token_id));
    uint32_t request_id = info.request_id;
    const uint8_t *body = info.body;
    size_t length = info.body_length, offset = 0;
    uarc_nodeid id;
    require(uarc_decode(body, length, &offset, &id, UARC_T(NodeId), NULL) == UARC_Good);
    require(id.namespace_index == 0 && id.identifier_type == UARC_NODEID_NUMERIC);
    const uarc_type *type = uarc_type_by_encoding_id(id.identifier.numeric);
    require(type && type->member_count > 0 && type->members[0].type == UARC_T(RequestHeader));
    void *request = uarc_new(type);
    require(request);
    require(uarc_decode(body, length, &offset, request, type, NULL) == UARC_Good);
    require(offset == length);
    seen_request r = {request_id, ((uarc_RequestHeader *)request)->requestHandle,
                      response_type_of(type), false};
    trace("server: %s, request %u, handle %u", type->name, r.id, r.handle);
    if (h.seen_count == MAX_SEEN) {
        memmove(h.seen, h.seen + 1, (MAX_SEEN - 1) * sizeof *h.seen);
        h.seen_count--;
    }
    h.seen[h.seen_count++] = r;
    seen_request *kept = &h.seen[h.seen_count - 1];
    if (type == UARC_T(CreateSessionRequest) && !(h.options & OPT_FUZZ_CREATE)) {
        kept->answered = true;
        reply_create_session(kept, request);
    } else if (type == UARC_T(ActivateSessionRequest) && !(h.options & OPT_FUZZ_ACT) &&
               !(h.activated_once && (h.session_byte & 0x80))) {
        kept->answered = true;
        reply_activate_session(kept);
    }
    if (type == UARC_T(ActivateSessionRequest))
        h.activated_once = true;
    uarc_delete(request, type);
}

static void on_client_message(uint8_t *m, size_t size)
{
    if (memcmp(m, "HELF", 4) == 0) {
        require(!h.hel_seen);
        h.hel_seen = true;
        if (!(h.options & OPT_NO_ACK))
            reply_ack();
    } else if (memcmp(m, "OPNF", 4) == 0) {
        on_opn_request(m, size);
    } else if (memcmp(m, "MSG", 3) == 0) {
        on_msg_request(m, size);
    } else {
        require(memcmp(m, "CLOF", 4) == 0);
    }
}

/* Byte mode's recv(): what the client has to send, -1 when nothing now, 0 once it is
 * disconnected and has nothing more (its end closed). */
static ssize_t take_output(uint8_t *into, size_t room)
{
    const uint8_t *data;
    size_t n = uarc_client_output_bytes(h.client, &data);
    if (n == 0)
        return uarc_client_state_get(h.client) == UARC_CLIENT_DISCONNECTED ? 0 : -1;
    if (n > room)
        n = room;
    memcpy(into, data, n);
    uarc_client_output_consumed(h.client, n);
    return (ssize_t)n;
}

/* Reads what the client wrote and answers what the harness answers by itself. */
static void serve(void)
{
    while (h.fd >= 0 && !h.peer_closed) {
        ssize_t n = h.bytes
                        ? take_output(h.in + h.in_length, sizeof h.in - h.in_length)
                        : recv(h.fd, h.in + h.in_length, sizeof h.in - h.in_length, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            h.peer_closed = true;
        if (n <= 0)
            return;
        h.in_length += (size_t)n;
        h.bytes_in += (size_t)n;
        size_t pos = 0;
        while (h.in_length - pos >= 8) {
            uint32_t size = get_u32(h.in + pos + 4);
            require(size >= 8 && size <= BUFFER_SIZE);
            if (h.in_length - pos < size)
                break;
            on_client_message(h.in + pos, size);
            pos += size;
        }
        memmove(h.in, h.in + pos, h.in_length - pos);
        h.in_length -= pos;
    }
}

/* ---- the client's callbacks ---- */

static ticket *new_ticket(const uarc_type *response_type)
{
    if (h.ticket_count == MAX_TICKETS)
        return NULL;
    ticket *t = &h.tickets[h.ticket_count++];
    *t = (ticket){false, response_type == NULL, 0, response_type};
    return t;
}

static void on_response(void *user_data, uarc_status status, void *response)
{
    ticket *t = user_data;
    require(!t->done && !t->browse);
    t->done = true;
    t->status = status;
    trace("callback %d: %s%s", (int)(t - h.tickets), uarc_status_name(status),
          response ? "" : " (no response)");
    require(status != UARC_Good || response);
    if (response) { /* a whole value of the type asked for, as long as the callback runs */
        void *copy = uarc_new(t->response_type);
        require(copy && uarc_copy(response, copy, t->response_type) == UARC_Good);
        require(uarc_equal(response, copy, t->response_type));
        uarc_delete(copy, t->response_type);
    }
}

static void on_browse(void *user_data, uarc_status status, uarc_ReferenceDescription *references,
                      size_t count)
{
    ticket *t = user_data;
    require(!t->done && t->browse);
    t->done = true;
    t->status = status;
    trace("browse %d: %s, %zu references", (int)(t - h.tickets), uarc_status_name(status), count);
    if (status != UARC_Good)
        require(!references && count == 0);
    uarc_array_delete(references, count, UARC_T(ReferenceDescription));
}

static void on_state(void *user_data, uarc_client_state state, uarc_status status)
{
    (void)user_data;
    trace("state %s (%s)", uarc_client_state_name(state), uarc_status_name(status));
    if (state == UARC_CLIENT_DISCONNECTED)
        require(uarc_status_is_bad(status));
    else
        require(status == UARC_Good);
}

static void on_log(void *user_data, uarc_log_level level, const char *category, const char *message)
{
    (void)user_data;
    require(level <= UARC_LOG_ERROR && category && message);
    if (level >= UARC_LOG_INFO)
        trace("log %s: %s", category, message);
    volatile size_t sink = strlen(category) + strlen(message); /* both readable and terminated */
    (void)sink;
}

/* ---- client actions ---- */

static void finish_send(ticket *t, uarc_status status)
{
    if (status != UARC_Good) {
        require(uarc_client_error(h.client)[0]);
        t->done = true; /* no callback follows a refused send */
    }
}

static void send_service(unsigned p)
{
    uint32_t timeout = p & 8 ? 100 : 0;
    uarc_ReadValueId nodes[3] = {
        {.nodeId = uarc_nodeid_numeric(0, 2258), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = uarc_nodeid_string(1, "Temperature"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = uarc_nodeid_numeric(0, 85), .attributeId = UARC_ATTRIBUTEID_BrowseName}};
    uarc_bytestring point = {3, (uint8_t *)"cp0"};
    double number = 21.5;
    uarc_WriteValue write = {.nodeId = uarc_nodeid_string(1, "Setpoint"),
                             .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_variant_set_scalar(&write.value.value, &number, UARC_T(Double));
    write.value.has_value = true;
    uarc_CallMethodRequest method = {.objectId = uarc_nodeid_numeric(1, 1),
                                     .methodId = uarc_nodeid_numeric(1, 2)};
    uarc_RelativePathElement element = {
        .referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
        .includeSubtypes = true,
        .targetName = {0, view("Server")}};
    uarc_BrowsePath path = {.startingNode = uarc_nodeid_numeric(0, 84),
                            .relativePath = {1, &element}};
    uarc_BrowseDescription browse = {.nodeId = uarc_nodeid_numeric(0, 85),
                                     .referenceTypeId =
                                         uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
                                     .includeSubtypes = true,
                                     .resultMask = 0x3F};
    const uarc_type *type;
    union {
        uarc_ReadRequest read;
        uarc_WriteRequest write;
        uarc_CallRequest call;
        uarc_TranslateBrowsePathsToNodeIdsRequest translate;
        uarc_GetEndpointsRequest endpoints;
        uarc_BrowseNextRequest next;
        uarc_BrowseRequest browse;
    } r;
    switch (p & 7) {
    case 0:
    case 1:
        type = UARC_T(ReadRequest);
        uarc_init(&r.read, type);
        r.read.nodesToReadSize = p & 1 ? 3 : 1;
        r.read.nodesToRead = nodes;
        break;
    case 2:
        type = UARC_T(WriteRequest);
        uarc_init(&r.write, type);
        r.write.nodesToWriteSize = 1;
        r.write.nodesToWrite = &write;
        break;
    case 3:
        type = UARC_T(CallRequest);
        uarc_init(&r.call, type);
        r.call.methodsToCallSize = 1;
        r.call.methodsToCall = &method;
        break;
    case 4:
        type = UARC_T(TranslateBrowsePathsToNodeIdsRequest);
        uarc_init(&r.translate, type);
        r.translate.browsePathsSize = 1;
        r.translate.browsePaths = &path;
        break;
    case 5:
        type = UARC_T(GetEndpointsRequest);
        uarc_init(&r.endpoints, type);
        r.endpoints.endpointUrl = view(URL);
        break;
    case 6:
        type = UARC_T(BrowseNextRequest);
        uarc_init(&r.next, type);
        r.next.continuationPointsSize = 1;
        r.next.continuationPoints = &point;
        break;
    default:
        type = UARC_T(BrowseRequest);
        uarc_init(&r.browse, type);
        r.browse.nodesToBrowseSize = 1;
        r.browse.nodesToBrowse = &browse;
        break;
    }
    ticket *t = new_ticket(response_type_of(type));
    uarc_status status =
        t ? uarc_client_send(h.client, &r, type, t->response_type, timeout, on_response, t, NULL)
          : UARC_Good;
    uarc_clear(&write.value.value, UARC_T(Variant));
    uarc_clear(&nodes[1].nodeId, UARC_T(NodeId));
    uarc_clear(&write.nodeId, UARC_T(NodeId));
    if (t)
        finish_send(t, status);
}

static void start_browse(void)
{
    ticket *t = new_ticket(NULL);
    if (!t)
        return;
    uarc_nodeid objects = uarc_nodeid_numeric(0, 85);
    finish_send(t, uarc_client_browse_send(h.client, &objects, on_browse, t));
}

/* A blocking helper failed: the client must say why. */
static void blocking_result(uarc_status status)
{
    trace("blocking call: %s; %s", uarc_status_name(status), uarc_client_error(h.client));
    if (status != UARC_Good)
        require(uarc_client_error(h.client)[0]);
}

static void run_blocking(unsigned p)
{
    uarc_client *c = h.client;
    uarc_nodeid server_status = uarc_nodeid_numeric(0, 2256);
    uarc_status status;
    h.blocking = true;
    h.idle_polls = 0;
    switch (p % 9) {
    case 0: {
        uarc_ReadValueId nodes[2] = {{.nodeId = server_status, .attributeId = 13},
                                     {.nodeId = server_status, .attributeId = 3}};
        uarc_data_value values[2];
        status = uarc_client_read(c, nodes, 2, values);
        for (int i = 0; i < 2; i++) {
            if (status != UARC_Good)
                require(!values[i].has_value && !values[i].value.type);
            uarc_clear(&values[i], UARC_T(DataValue));
        }
        break;
    }
    case 1: {
        uarc_data_value value;
        status = uarc_client_read_attribute(c, &server_status, 13, &value);
        uarc_clear(&value, UARC_T(DataValue));
        break;
    }
    case 2: {
        uarc_variant v;
        uarc_init(&v, UARC_T(Variant));
        int32_t number = 7;
        uarc_variant_set_scalar(&v, &number, UARC_T(Int32));
        status = uarc_client_write_value(c, &server_status, &v);
        uarc_clear(&v, UARC_T(Variant));
        break;
    }
    case 3: {
        uarc_ReferenceDescription *references;
        size_t count;
        status = uarc_client_browse(c, &server_status, &references, &count);
        if (status != UARC_Good)
            require(!references && count == 0);
        uarc_array_delete(references, count, UARC_T(ReferenceDescription));
        break;
    }
    case 4: {
        uarc_variant in[1];
        double x = 1.0;
        uarc_init(&in[0], UARC_T(Variant));
        uarc_variant_set_scalar(&in[0], &x, UARC_T(Double));
        uarc_variant *outputs;
        size_t count;
        status =
            uarc_client_call_method(c, &server_status, &server_status, in, 1, &outputs, &count);
        if (status != UARC_Good)
            require(!outputs && count == 0);
        uarc_array_delete(outputs, count, UARC_T(Variant));
        uarc_clear(&in[0], UARC_T(Variant));
        break;
    }
    case 5: {
        uarc_nodeid target;
        uarc_nodeid root = uarc_nodeid_numeric(0, 84);
        status = uarc_client_translate_path(c, &root, "/0:Objects/0:Server", &target);
        uarc_clear(&target, UARC_T(NodeId));
        break;
    }
    case 6: {
        uarc_GetEndpointsResponse response;
        status = uarc_client_get_endpoints(c, &response);
        uarc_clear(&response, UARC_T(GetEndpointsResponse));
        break;
    }
    case 7:
        status = uarc_client_create_session(c);
        break;
    default: {
        uarc_ReadValueId node = {.nodeId = server_status, .attributeId = 13};
        uarc_ReadRequest request;
        uarc_init(&request, UARC_T(ReadRequest));
        request.nodesToReadSize = 1;
        request.nodesToRead = &node;
        uarc_ReadResponse response;
        status =
            uarc_client_call(c, &request, UARC_T(ReadRequest), &response, UARC_T(ReadResponse));
        uarc_clear(&response, UARC_T(ReadResponse));
        break;
    }
    }
    h.blocking = false;
    blocking_result(status);
}

/* ---- the script ---- */

static bool take(size_t n, const uint8_t **out)
{
    if (h.script_size - h.pos < n)
        return false;
    *out = h.script + h.pos;
    h.pos += n;
    return true;
}

/* A u16 length and that many bytes (fewer at the end of the input). */
static void take_data(const uint8_t **data, size_t *length)
{
    const uint8_t *l;
    *data = NULL;
    *length = 0;
    if (!take(2, &l))
        return;
    size_t n = (size_t)l[0] | (size_t)l[1] << 8;
    if (n > h.script_size - h.pos)
        n = h.script_size - h.pos;
    *data = h.script + h.pos;
    *length = n;
    h.pos += n;
}

static seen_request *pick_request(uint8_t selector)
{
    size_t open = 0;
    for (size_t i = 0; i < h.seen_count; i++)
        open += !h.seen[i].answered;
    if (!(selector & 0x80) && open) {
        size_t k = (selector & 0x7F) % open;
        for (size_t i = 0; i < h.seen_count; i++)
            if (!h.seen[i].answered && k-- == 0)
                return &h.seen[i];
    }
    return h.seen_count ? &h.seen[(selector & 0x7F) % h.seen_count] : NULL;
}

static void server_reply(unsigned p)
{
    const uint8_t *selector, *data;
    size_t length;
    if (!take(1, &selector))
        return;
    take_data(&data, &length);
    static const char chunks[4] = {'F', 'C', 'A', 'F'};
    char chunk = chunks[(p >> 2) & 3];
    unsigned mode = p & 3;
    seen_request *r = pick_request(*selector);
    uint32_t request_id = r ? r->id : *selector;
    if (mode == 3 && length >= 4) {
        request_id = get_u32(data);
        data += 4;
        length -= 4;
        r = NULL;
    }
    frame *f = &out_frame;
    begin_msg(f, chunk, request_id);
    if (chunk != 'A' && r && mode >= 1)
        put_type_id(f, r->response_type);
    if (chunk != 'A' && r && mode == 2) {
        uarc_ResponseHeader header;
        uarc_init(&header, UARC_T(ResponseHeader));
        header.requestHandle = r->handle;
        put_value(f, &header, UARC_T(ResponseHeader));
    }
    put(f, data, length);
    h.own_padding = h.secure && ((p >> 2) & 3) == 3;
    send_frame(f);
    if (chunk == 'C')
        h.clean = false;
    else if (r)
        r->answered = true;
}

static void server_close(void)
{
    if (h.fd == BYTE_FD && h.client && uarc_client_state_get(h.client) != UARC_CLIENT_DISCONNECTED)
        uarc_client_transport_closed(h.client, UARC_Good);
    else if (h.fd >= 0 && h.fd != BYTE_FD)
        close(h.fd);
    h.fd = -1;
}

/* The server side of a new connection starts over. */
static void reset_server_side(void)
{
    h.sequence = 1;
    h.token_id = 0;
    if (h.secure)
        secure_peer_stop(&h.peer);
    h.hel_seen = h.peer_closed = false;
    h.in_length = 0;
    h.seen_count = 0;
    h.disconnected_us = false;
}

/* A new connection for the same client: the server side starts over. */
static void connect_client(void)
{
    if (h.bytes) {
        uarc_client_state before = uarc_client_state_get(h.client);
        uarc_status status = uarc_client_start_bytes(h.client, URL, fake_now);
        if (before != UARC_CLIENT_DISCONNECTED) {
            require(status == UARC_BadInvalidState);
            return;
        }
        require(status == UARC_Good);
        h.fd = BYTE_FD;
        reset_server_side();
        return;
    }
    int sv[2];
    require(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    uarc_client_state before = uarc_client_state_get(h.client);
    uarc_status status = uarc_client_start_socket(h.client, sv[0], URL);
    if (before != UARC_CLIENT_DISCONNECTED) {
        require(status == UARC_BadInvalidState); /* the client closed sv[0] */
        close(sv[1]);
        return;
    }
    require(status == UARC_Good);
    server_close();
    int flags = fcntl(sv[1], F_GETFL);
    require(flags >= 0 && fcntl(sv[1], F_SETFL, flags | O_NONBLOCK) == 0);
    h.fd = sv[1];
    h.client_fd = sv[0];
    reset_server_side();
}

/* ---- subscriptions ---- */

static struct watched *watched_of(const uarc_subscription *s)
{
    for (size_t i = 0; i < h.sub_count; i++)
        if (h.subs[i].subscription == s)
            return &h.subs[i];
    require(false); /* a callback of a deleted subscription */
    return NULL;
}

static void on_data_change(void *user_data, const uarc_data_change *c)
{
    (void)user_data;
    struct watched *w = watched_of(c->subscription);
    require(c->sequence_number != 0);
    require(c->node && c->value && c->item == 1);
    /* in the message after the last one delivered */
    if (w->last_id == c->subscription_id && w->last_sequence)
        require((int32_t)(c->sequence_number - w->last_sequence) > 0);
}

static void on_message_delivered(void *user_data, uarc_subscription *s, uint32_t sequence)
{
    (void)user_data;
    struct watched *w = watched_of(s);
    uint32_t id = uarc_subscription_id(s);
    if (w->last_id == id && w->last_sequence)
        require((int32_t)(sequence - w->last_sequence) > 0);
    w->last_id = id;
    w->last_sequence = sequence;
    if (uarc_subscription_ack(s, sequence) == UARC_Good)
        trace("acknowledged %u", sequence);
}

static void on_event(void *user_data, const uarc_event *e)
{
    (void)user_data;
    watched_of(e->subscription);
    require(e->item == 1 && e->node && (e->fields || e->field_count == 0));
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    (void)user_data;
    watched_of(s);
    require(from != 0 && uarc_status_is_bad(reason));
    trace("gap %u..%u %s", from, to, uarc_status_name(reason));
}

static void on_subscription_state(void *user_data, uarc_subscription *s,
                                  uarc_subscription_state state, uarc_status status)
{
    (void)user_data;
    struct watched *w = watched_of(s);
    if (state == UARC_SUBSCRIPTION_RECREATED)
        w->last_sequence = 0; /* a new subscription, whatever id the server gives it */
    trace("subscription %s (%s)", uarc_subscription_state_name(state), uarc_status_name(status));
}

static void subscribe(unsigned p)
{
    if (p == 4) {
        for (size_t i = h.sub_count; i-- > 0;)
            if (h.subs[i].subscription) {
                uarc_subscription_delete(h.subs[i].subscription);
                h.subs[i].subscription = NULL;
                break;
            }
        return;
    }
    if (p > 5 || h.sub_count == MAX_SUBSCRIPTIONS)
        return;
    uarc_subscription_config config = {.publishing_interval_ms = 100, .deferred_ack = p & 1};
    config.callbacks = (uarc_subscription_callbacks){.data_change = on_data_change,
                                                     .message_delivered = on_message_delivered,
                                                     .gap = on_gap,
                                                     .state_changed = on_subscription_state,
                                                     .event = on_event};
    uarc_subscription *s;
    require(uarc_subscription_new(h.client, &config, &s) == UARC_Good);
    h.subs[h.sub_count++] = (struct watched){s, 0, 0};
    if (p == 5) {
        const char *select[] = {"Message", "EnabledState/Id"};
        uarc_event_item_params events = {.node = uarc_nodeid_numeric(0, 2253),
                                         .select = select,
                                         .select_count = 2,
                                         .of_type = uarc_nodeid_numeric(0, 2041)};
        require(uarc_subscription_add_event_item(s, &events, NULL) == UARC_Good);
    } else if (!(p & 2)) {
        uarc_monitored_item_params item = {.node = uarc_nodeid_numeric(1, 1), .queue_size = 10};
        require(uarc_subscription_add_item(s, &item, NULL) == UARC_Good);
    }
}

/* Runs the next record; inside a blocking call only a server record (true when one ran). */
static bool run_record(bool server_only)
{
    if (h.pos >= h.script_size)
        return false;
    uint8_t op = h.script[h.pos];
    unsigned kind = op & 15, p = op >> 4;
    bool server_side = kind == REPLY || kind == RAW || kind == TICK || (kind == CLOSE && p == 1);
    if (server_only && !server_side)
        return false;
    h.pos++;
    trace("record %u p %u%s", kind, p, server_only ? " (inside a blocking call)" : "");
    switch (kind) {
    case REPLY:
        server_reply(p);
        break;
    case RAW: {
        const uint8_t *data;
        size_t length;
        take_data(&data, &length);
        write_to_client(data, length);
        h.clean = false;
        break;
    }
    case TICK: {
        const uint8_t *v;
        if (take(2, &v))
            fake_now += (int64_t)((unsigned)v[0] | (unsigned)v[1] << 8) * (p & 1 ? 1000 : 1);
        break;
    }
    case SEND:
        send_service(p);
        break;
    case BROWSE:
        start_browse();
        break;
    case BLOCK:
        run_blocking(p);
        break;
    case CLOSE:
        if (p == 0) {
            require(uarc_client_disconnect(h.client) == UARC_Good);
            h.disconnected_us = true;
        } else if (p == 1) {
            server_close();
        } else {
            uarc_client_forget_session(h.client);
        }
        break;
    case RECONNECT:
        connect_client();
        break;
    case SUBSCRIBE:
        subscribe(p);
        break;
    default:
        break;
    }
    return true;
}

/* Every poll of the client's socket comes here. It never waits: when nothing is ready, the clock
 * jumps by the timeout instead. */
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (!h.active || n != 1 || fds[0].fd != h.client_fd)
        return __real_poll(fds, n, timeout);
    h.in_poll = true;
    serve();
    if (h.blocking && run_record(true))
        serve();
    h.in_poll = false;
    int ready = __real_poll(fds, n, 0);
    if (ready != 0)
        return ready;
    if (h.blocking) /* a blocking call that spins or never ends */
        require(++h.idle_polls < MAX_IDLE_POLLS);
    require(timeout >= 0); /* nothing can arrive and no deadline: the client would hang */
    fake_now += timeout;
    return 0;
}

/* Lets client and server exchange what they have until both are quiet. */
static void pump(void)
{
    for (int i = 0; i < 64; i++) {
        uint64_t in = h.bytes_in, out = h.bytes_out;
        serve();
        if (h.bytes)
            uarc_client_tick(h.client, fake_now);
        else
            uarc_client_process(h.client, 0);
        serve();
        if (in == h.bytes_in && out == h.bytes_out)
            break;
    }
    /* Whatever was due has been done: an event loop would not spin on this client. */
    if (uarc_client_state_get(h.client) != UARC_CLIENT_DISCONNECTED)
        require(uarc_client_timeout_ms(h.client) != 0);
}

/* ---- the end of a run ---- */

static bool connected(void)
{
    uarc_client_state s = uarc_client_state_get(h.client);
    return s == UARC_CLIENT_SESSION_ACTIVE || s == UARC_CLIENT_CHANNEL_OPEN;
}

static void check_disconnected(void)
{
    uarc_client *c = h.client;
    require(uarc_client_fd(c) == -1);
    require(uarc_client_timeout_ms(c) == -1);
    require(uarc_status_is_bad(uarc_client_process(c, 0)));
    if (!h.disconnected_us)
        require(uarc_client_error(c)[0]);
    for (size_t i = 0; i < h.ticket_count; i++)
        require(h.tickets[i].done);
}

/* A connected client still answers: a valid response to a new Read comes back Good. */
static void probe(void)
{
    ticket *t = new_ticket(UARC_T(ReadResponse));
    if (!t)
        return;
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, 2258), .attributeId = 13};
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    request.nodesToReadSize = 1;
    request.nodesToRead = &node;
    uint32_t handle;
    uarc_status status = uarc_client_send(h.client, &request, UARC_T(ReadRequest),
                                          UARC_T(ReadResponse), 0, on_response, t, &handle);
    finish_send(t, status);
    if (status != UARC_Good)
        return;
    serve();
    seen_request *r = h.seen_count ? &h.seen[h.seen_count - 1] : NULL;
    if (r && r->handle == handle) {
        uarc_data_value value;
        uarc_init(&value, UARC_T(DataValue));
        int32_t number = 42;
        uarc_variant_set_scalar(&value.value, &number, UARC_T(Int32));
        value.has_value = true;
        uarc_ReadResponse response;
        uarc_init(&response, UARC_T(ReadResponse));
        response.resultsSize = 1;
        response.results = &value;
        reply_value(r, &response, UARC_T(ReadResponse));
        r->answered = true;
        uarc_clear(&value, UARC_T(DataValue));
        pump();
    }
    trace("probe: %s", t->done ? uarc_status_name(t->status) : "no answer yet");
    if (h.clean && connected() && r && r->handle == handle)
        require(t->done && t->status == UARC_Good);
}

static void finish_run(void)
{
    pump();
    if (connected())
        probe();
    /* Past every deadline the client has settled: connected, or disconnected for good. */
    for (int i = 0; i < 8; i++) {
        fake_now += 15000;
        pump();
    }
    trace("end: %s; %s", uarc_client_state_name(uarc_client_state_get(h.client)),
          uarc_client_error(h.client));
    if (uarc_client_state_get(h.client) == UARC_CLIENT_DISCONNECTED)
        check_disconnected();
    else
        require(connected());
    uarc_client_delete(h.client);
    h.client = NULL;
    for (size_t i = 0; i < h.ticket_count; i++)
        require(h.tickets[i].done);
    server_close();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fake_now = START_TIME_MS;
    h.active = false;
    h.options = data[0];
    h.session_byte = data[1];
    h.bytes = data[1] & 0x40;
    h.script = data + 2;
    h.script_size = size - 2;
    h.pos = 0;
    h.blocking = h.in_poll = false;
    h.ticket_count = 0;
    h.clean = true;
    h.activated_once = false;
    h.fd = h.client_fd = -1;
    h.sub_count = 0;

    uarc_client_config config = {.callbacks = {on_state, NULL},
                                 .logger = {on_log, NULL, UARC_LOG_DEBUG}};
    if (h.options & OPT_NO_SESSION)
        config.no_session = true;
    if (h.options & OPT_USER) {
        config.user_name = "operator";
        config.password = "secret";
        config.allow_unencrypted_password = true;
        config.accept_untrusted_server_certificate = h.session_byte & 1;
    }
    if (h.options & OPT_SMALL) {
        config.max_message_size = 20000;
        config.max_chunk_count = 4;
        config.decode = (uarc_decode_config){
            .max_string_length = 256, .max_array_length = 64, .max_depth = 8, .max_alloc = 1 << 16};
    }
    if (h.options & OPT_KEEPALIVE)
        config.keepalive_interval_ms = 100;
    h.secure = size > 2 && (data[2] & 15) == SECURE;
    h.sign_only = h.secure && (data[2] & 16);
    h.nonce_counter = 0;
    if (h.secure) {
        secure_peer_start(&h.peer, h.sign_only);
        config.security_policy_uri = h.peer.policy->uri;
        config.security_mode =
            h.sign_only ? UARC_MessageSecurityMode_Sign : UARC_MessageSecurityMode_SignAndEncrypt;
        secure_peer_client_identity(&config.certificate, &config.certificate_length,
                                    &config.private_key, &config.private_key_length);
        secure_peer_server_certificate(&config.server_certificate,
                                       &config.server_certificate_length);
    }
    h.client = uarc_client_new(&config);
    require(h.client);
    h.active = true;
    connect_client();
    pump();
    while (h.pos < h.script_size) {
        run_record(false);
        pump();
    }
    finish_run();
    if (h.secure)
        secure_peer_stop(&h.peer);
    h.active = false;
    return 0;
}
