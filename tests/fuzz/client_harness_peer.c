/* The fuzz_client harness's server side: the frames it writes to the client (sealed on a secured
 * channel), its own answers to HEL, OPN, CreateSession and ActivateSession, and the checks on
 * every message the client sends. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "client_harness.h"

/* ---- frames ---- */

uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uarc_string view(const char *text)
{
    return (uarc_string){strlen(text), (uint8_t *)text};
}

void put(frame *f, const void *data, size_t n)
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

void put_value(frame *f, const void *value, const uarc_type *type)
{
    size_t length = f->length;
    require(uarc_encode(value, type, f->bytes, sizeof f->bytes, &length) == UARC_Good);
    f->length = length;
}

void put_type_id(frame *f, const uarc_type *type)
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

void write_to_client(const uint8_t *data, size_t n)
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

void send_frame(frame *f)
{
    end(f);
    if (h.secure && memcmp(f->bytes, "MSG", 3) == 0)
        send_sealed(f);
    else
        write_to_client(f->bytes, f->length);
}

void begin_msg(frame *f, char chunk, uint32_t request_id)
{
    char type[4] = {'M', 'S', 'G', chunk};
    begin(f, type);
    put_u32(f, CHANNEL_ID);
    put_u32(f, h.token_id);
    put_u32(f, h.sequence++);
    put_u32(f, request_id);
}

void reply_value(const seen_request *r, void *response, const uarc_type *type)
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

const uarc_type *response_type_of(const uarc_type *request)
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

void serve(void)
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
