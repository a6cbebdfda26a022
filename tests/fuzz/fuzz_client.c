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
 *   byte 0: options (OPT_* in client_harness.h)
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
 *
 * This file holds the run's state, the script and the end of a run; client_harness_peer.c the
 * server side, client_harness_actions.c the client's callbacks and the actions records ask for.
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

#include "client_harness.h"

harness h;
frame out_frame;
int64_t fake_now;
static int tracing = -1; /* FUZZ_CLIENT_TRACE set: what happens goes to stderr, for triage */

void trace(const char *fmt, ...)
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
