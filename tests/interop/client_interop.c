/*
 * The client library against a real node-opcua server (tests/peer/server.mjs), through the public
 * API: secure channel renewal, requests in flight together, timeouts, a server that dies
 * mid-request, an adopted socket, GetEndpoints without a session, session re-activation, and
 * writes read back: an array of every built-in type, empty and null arrays, a matrix, a structure,
 * a DataValue and a DiagnosticInfo.
 *
 * The program starts the peer itself (node UARC_PEER_DIR/server.mjs) with a pipe on its stdin, so
 * the peer exits when this process does, and reads its one JSON "started" line for the endpoint
 * URL. The tests share that peer and run in the order listed in main(): the last two restart and
 * kill it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "uarc/uarc.h"
#include "uarc/client.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#include "peer_process.h"

#define PEER_URI "urn:uarc:client-interop"
/* ms: the peer's ceiling and what we request. node-opcua grants at least 2500 ms, and refuses a
 * token 1.25 lifetimes after it was issued. */
#define TOKEN_LIFETIME     2000
#define MIN_TOKEN_LIFETIME 2500
#define START_TIMEOUT      60000

static int64_t now_ms(void)
{
    return peer_process_now_ms();
}

/* ---- the peer process ---- */

static peer_process the_peer = PEER_PROCESS_INIT;

/* The port of the peer's EndpointUrl (opc.tcp://127.0.0.1:PORT). */
static uint16_t peer_port(const peer_process *p)
{
    const char *colon = strrchr(p->url, ':');
    return colon ? (uint16_t)atoi(colon + 1) : 0;
}

/* Starts server.mjs (on `port`, 0: any) and waits for its "started" line. */
static bool peer_start(peer_process *p, uint16_t port)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%u", port);
    const char *args[] = {"--uri",   PEER_URI,   "--no-big", "--token-lifetime", "2000", "--port",
                          port_text, "--secure", NULL};
    if (!peer_process_spawn(p, args))
        return false;
    if (!peer_process_wait_started(p, START_TIMEOUT) || peer_port(p) == 0) {
        peer_process_stop(p);
        return false;
    }
    return true;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return peer_start(&the_peer, 0) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    peer_process_stop(&the_peer);
    return 0;
}

/* ---- helpers ---- */

typedef struct log_record {
    int renew_sent; /* "OPN Renew sent" */
    int tokens;     /* "secure channel C token T": one per Issue or Renew response */
    uint32_t last_token;
    uint32_t lifetime; /* the revised lifetime of the last token */
} log_record;

static void on_log(void *user_data, uarc_log_level level, const char *category, const char *message)
{
    log_record *r = user_data;
    (void)level;
    (void)category;
    if (strstr(message, "OPN Renew sent"))
        r->renew_sent++;
    unsigned channel, token, lifetime;
    if (sscanf(message, "secure channel %u token %u, lifetime %u ms", &channel, &token,
               &lifetime) == 3) {
        r->lifetime = lifetime;
        if (r->tokens > 0)
            assert_true(token > r->last_token);
        r->tokens++;
        r->last_token = token;
    }
}

static uarc_client *new_client(uarc_client_config *cfg)
{
    uarc_client_config defaults = {0};
    uarc_client *c = uarc_client_new(cfg ? cfg : &defaults);
    assert_non_null(c);
    return c;
}

static void connect_ok(uarc_client *c, const char *url)
{
    uarc_status s = uarc_client_connect(c, url);
    if (s != UARC_Good)
        fail_msg("connect %s: %s (%s)", url, uarc_status_name(s), uarc_client_error(c));
}

static uarc_nodeid node(const char *text)
{
    uarc_nodeid id;
    assert_int_equal(uarc_nodeid_parse(text, SIZE_MAX, &id), UARC_Good);
    return id;
}

/* Reads ns=1;s=Scalar.Int32 (blocking) and checks its value. */
static void read_int32_ok(uarc_client *c)
{
    uarc_nodeid id = node("ns=1;s=Scalar.Int32");
    uarc_data_value v;
    uarc_status s = uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, &v);
    if (s != UARC_Good)
        fail_msg("read: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    assert_false(v.has_status && uarc_status_is_bad(v.status));
    assert_ptr_equal(v.value.type, UARC_T(Int32));
    assert_int_equal(*(int32_t *)v.value.data, -2000000000);
    uarc_clear(&v, UARC_T(DataValue));
    uarc_clear(&id, UARC_T(NodeId));
}

/* Drives the client until `*flag` or the deadline; false on timeout. */
static bool process_until(uarc_client *c, const bool *flag, int ms)
{
    int64_t deadline = now_ms() + ms;
    while (!*flag) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return false;
        uarc_client_process(c, left < 50 ? left : 50);
        if (uarc_client_state_get(c) == UARC_CLIENT_DISCONNECTED && !*flag)
            uarc_client_process(c, 0); /* returns at once; callbacks have run */
    }
    return true;
}

static bool process_until_state(uarc_client *c, uarc_client_state state, int ms)
{
    int64_t deadline = now_ms() + ms;
    while (uarc_client_state_get(c) != state) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return false;
        uarc_client_process(c, left < 50 ? left : 50);
    }
    return true;
}

/* One Read of one node, non-blocking. */
typedef struct read_call {
    uarc_ReadValueId id;
    uarc_ReadRequest req;
    uint32_t handle; /* from uarc_client_send */
    bool done;
    uarc_status status;
    uint32_t response_handle;
    uarc_data_value value;
} read_call;

static void on_read(void *user_data, uarc_status status, void *response)
{
    read_call *r = user_data;
    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = status;
    if (response) {
        uarc_ReadResponse *resp = response;
        r->response_handle = resp->responseHeader.requestHandle;
        if (resp->resultsSize == 1) {
            r->value = resp->results[0];
            memset(&resp->results[0], 0, sizeof resp->results[0]);
        }
    }
}

static uarc_status send_read(uarc_client *c, read_call *r, const char *node_text,
                             uint32_t timeout_ms)
{
    memset(r, 0, sizeof *r);
    r->id.nodeId = node(node_text);
    r->id.attributeId = UARC_ATTRIBUTEID_Value;
    uarc_init(&r->req, UARC_T(ReadRequest));
    r->req.nodesToReadSize = 1;
    r->req.nodesToRead = &r->id;
    r->req.timestampsToReturn = UARC_TimestampsToReturn_Neither;
    return uarc_client_send(c, &r->req, UARC_T(ReadRequest), UARC_T(ReadResponse), timeout_ms,
                            on_read, r, &r->handle);
}

static void read_call_clear(read_call *r)
{
    uarc_clear(&r->id.nodeId, UARC_T(NodeId));
    uarc_clear(&r->value, UARC_T(DataValue));
}

/* ---- tests ---- */

/* With a 2.5 s token, a 6 s conversation needs several renewals, none of which may disturb the
 * reads in flight. node-opcua 2.186.4 only logs a warning when a token outlives 1.25 lifetimes
 * (with renewal switched off all reads still succeed), so the renewals are counted in the log:
 * each OPN Renew sent and each new token the server issued. */
/* Reads every 200 ms for 6 s over one connection while the token is renewed; `cfg` may ask for
 * a secured channel, with the server certificate `certificate`. */
static void renewal_with(uarc_client_config *cfg, const uarc_bytestring *certificate)
{
    log_record log = {0};
    cfg->secure_channel_lifetime_ms = TOKEN_LIFETIME;
    cfg->logger = (uarc_logger){on_log, &log, UARC_LOG_DEBUG};
    uarc_client *c = new_client(cfg);
    if (certificate)
        assert_int_equal(
            uarc_client_set_server_certificate(c, certificate->data, certificate->length),
            UARC_Good);
    connect_ok(c, the_peer.url);
    int fd = uarc_client_fd(c);
    assert_int_equal(log.tokens, 1);

    enum { READS = 30 };
    static read_call calls[READS];
    int64_t start = now_ms();
    for (int i = 0; i < READS; i++) {
        assert_int_equal(send_read(c, &calls[i], "i=2258", 0), UARC_Good);
        int64_t next = start + (int64_t)(i + 1) * 200;
        while (now_ms() < next) {
            uarc_status s = uarc_client_process(c, (int)(next - now_ms()));
            if (s != UARC_Good)
                fail_msg("connection lost after %d reads: %s (%s)", i, uarc_status_name(s),
                         uarc_client_error(c));
        }
    }
    bool all_done = false;
    while (!all_done) {
        all_done = true;
        for (int i = 0; i < READS; i++)
            all_done &= calls[i].done;
        if (!all_done && now_ms() - start > 15000)
            fail_msg("reads still pending");
        if (!all_done)
            uarc_client_process(c, 50);
    }
    for (int i = 0; i < READS; i++) {
        if (calls[i].status != UARC_Good)
            fail_msg("read %d: %s", i, uarc_status_name(calls[i].status));
        assert_ptr_equal(calls[i].value.value.type, UARC_T(DateTime));
        read_call_clear(&calls[i]);
    }
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(uarc_client_fd(c), fd); /* the same connection all along */
    /* Renewals at 1.9, 3.8 and 5.6 s (75 % of 2.5 s), each answered with a new token: wait for
     * the answer to the last one, which a loaded machine may not have read yet. */
    int64_t waited = now_ms();
    while (log.tokens < 1 + log.renew_sent && now_ms() - waited < 15000)
        uarc_client_process(c, 50);
    print_message("%d renewals, %d tokens, lifetime %u ms\n", log.renew_sent, log.tokens,
                  log.lifetime);
    assert_true(log.lifetime >= TOKEN_LIFETIME && log.lifetime <= MIN_TOKEN_LIFETIME);
    assert_true(log.renew_sent >= 3);
    assert_int_equal(log.tokens, 1 + log.renew_sent);
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    uarc_client_delete(c);
}

static void test_renewal(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    renewal_with(&cfg, NULL);
}

/* The server's certificate of an endpoint, asked with GetEndpoints on a None channel. */
static void server_certificate_of(const char *policy, uarc_MessageSecurityMode mode,
                                  uarc_bytestring *out)
{
    uarc_client_config cfg = {.no_session = true};
    uarc_client *c = new_client(&cfg);
    connect_ok(c, the_peer.url);
    uarc_GetEndpointsResponse resp;
    assert_int_equal(uarc_client_get_endpoints(c, &resp), UARC_Good);
    out->length = 0;
    for (size_t i = 0; i < resp.endpointsSize; i++) {
        const uarc_EndpointDescription *e = &resp.endpoints[i];
        if (uarc_string_equal_cstr(&e->securityPolicyUri, policy) && e->securityMode == mode)
            assert_int_equal(uarc_copy(&e->serverCertificate, out, UARC_T(ByteString)), UARC_Good);
    }
    assert_true(out->length > 0);
    uarc_clear(&resp, UARC_T(GetEndpointsResponse));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* The same over Basic256Sha256 SignAndEncrypt and Aes256_Sha256_RsaPss Sign: each renewal sends
 * a new client nonce and derives new keys; the server's expected URI is its certificate's. */
static void test_secured_renewal(void **state)
{
    (void)state;
    const char *policies[2] = {"http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256",
                               "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss"};
    uarc_MessageSecurityMode modes[2] = {UARC_MessageSecurityMode_SignAndEncrypt,
                                         UARC_MessageSecurityMode_Sign};
    for (int i = 0; i < 2; i++) {
        uarc_bytestring certificate;
        server_certificate_of(policies[i], modes[i], &certificate);
        uarc_client_config cfg = {
            .security_policy_uri = policies[i],
            .security_mode = modes[i],
            .generate_certificate = true,
            .expected_server_uri = PEER_URI,
            /* Making an RSA key and the RSA work of each OPN are slow under valgrind. */
            .connect_timeout_ms = 120000,
            .request_timeout_ms = 60000,
        };
        renewal_with(&cfg, &certificate);
        uarc_clear(&certificate, UARC_T(ByteString));
    }
}

/* Ten requests of three services sent before any answer is read, each matched to its own. */
typedef struct any_call {
    uint32_t handle;
    bool done;
    uarc_status status;
    uint32_t response_handle;
    const uarc_type *type;
    double number; /* Read: the value as a double; Call: the sum; Browse: the reference count */
} any_call;

static void on_any(void *user_data, uarc_status status, void *response)
{
    any_call *a = user_data;
    assert_false(a->done);
    a->done = true;
    a->status = status;
    if (!response)
        return;
    a->response_handle = ((uarc_ResponseHeader *)response)->requestHandle;
    if (a->type == UARC_T(ReadResponse)) {
        uarc_ReadResponse *r = response;
        assert_int_equal(r->resultsSize, 1);
        const uarc_variant *v = &r->results[0].value;
        const uarc_type *t = v->type;
        a->number = t == UARC_T(SByte)    ? *(int8_t *)v->data
                    : t == UARC_T(Byte)   ? *(uint8_t *)v->data
                    : t == UARC_T(Int16)  ? *(int16_t *)v->data
                    : t == UARC_T(UInt16) ? *(uint16_t *)v->data
                    : t == UARC_T(Int32)  ? *(int32_t *)v->data
                    : t == UARC_T(UInt32) ? *(uint32_t *)v->data
                    : t == UARC_T(Float)  ? *(float *)v->data
                    : t == UARC_T(Double) ? *(double *)v->data
                                          : -1e308;
    } else if (a->type == UARC_T(CallResponse)) {
        uarc_CallResponse *r = response;
        assert_int_equal(r->resultsSize, 1);
        assert_int_equal(r->results[0].outputArgumentsSize, 1);
        a->number = *(double *)r->results[0].outputArguments[0].data;
    } else {
        uarc_BrowseResponse *r = response;
        assert_int_equal(r->resultsSize, 1);
        a->number = (double)r->results[0].referencesSize;
    }
}

static void test_requests_in_flight(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);

    static const struct {
        const char *node;
        double value;
    } reads[] = {
        {"ns=1;s=Scalar.SByte", -100},        {"ns=1;s=Scalar.Byte", 200},
        {"ns=1;s=Scalar.Int16", -30000},      {"ns=1;s=Scalar.UInt16", 60000},
        {"ns=1;s=Scalar.Int32", -2000000000}, {"ns=1;s=Scalar.UInt32", 4000000000.0},
        {"ns=1;s=Scalar.Float", 3.5},         {"ns=1;s=ReadOnly.Int32", 7},
    };
    enum { N = 10, READS = sizeof reads / sizeof *reads };
    any_call calls[N];
    memset(calls, 0, sizeof calls);

    for (int i = 0; i < READS; i++) {
        uarc_ReadValueId id = {.nodeId = node(reads[i].node),
                               .attributeId = UARC_ATTRIBUTEID_Value};
        uarc_ReadRequest req;
        uarc_init(&req, UARC_T(ReadRequest));
        req.nodesToReadSize = 1;
        req.nodesToRead = &id;
        calls[i].type = UARC_T(ReadResponse);
        assert_int_equal(uarc_client_send(c, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                          on_any, &calls[i], &calls[i].handle),
                         UARC_Good);
        uarc_clear(&id.nodeId, UARC_T(NodeId));
    }
    /* A Call of Add(20, 22) ... */
    uarc_variant args[2] = {{0}};
    double a = 20, b = 22.5;
    uarc_variant_set_scalar(&args[0], &a, UARC_T(Double));
    uarc_variant_set_scalar(&args[1], &b, UARC_T(Double));
    uarc_CallMethodRequest m = {.objectId = node("ns=1;s=Methods"),
                                .methodId = node("ns=1;s=Methods/Add"),
                                .inputArgumentsSize = 2,
                                .inputArguments = args};
    uarc_CallRequest call;
    uarc_init(&call, UARC_T(CallRequest));
    call.methodsToCallSize = 1;
    call.methodsToCall = &m;
    calls[READS].type = UARC_T(CallResponse);
    assert_int_equal(uarc_client_send(c, &call, UARC_T(CallRequest), UARC_T(CallResponse), 0,
                                      on_any, &calls[READS], &calls[READS].handle),
                     UARC_Good);
    /* ... and a Browse of the Matrix folder (one child). */
    uarc_BrowseDescription d = {.nodeId = node("ns=1;s=Matrix"),
                                .browseDirection = UARC_BrowseDirection_Forward,
                                .referenceTypeId =
                                    uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
                                .includeSubtypes = true,
                                .resultMask = 0x3F};
    uarc_BrowseRequest browse;
    uarc_init(&browse, UARC_T(BrowseRequest));
    browse.nodesToBrowseSize = 1;
    browse.nodesToBrowse = &d;
    calls[READS + 1].type = UARC_T(BrowseResponse);
    assert_int_equal(uarc_client_send(c, &browse, UARC_T(BrowseRequest), UARC_T(BrowseResponse), 0,
                                      on_any, &calls[READS + 1], &calls[READS + 1].handle),
                     UARC_Good);

    for (int i = 0; i < N; i++) {
        assert_false(calls[i].done); /* nothing is read before process() */
        for (int j = 0; j < i; j++)
            assert_int_not_equal(calls[i].handle, calls[j].handle);
    }
    int64_t deadline = now_ms() + 10000;
    for (int i = 0; i < N; i++)
        while (!calls[i].done) {
            assert_true(now_ms() < deadline);
            assert_int_equal(uarc_client_process(c, 100), UARC_Good);
        }
    for (int i = 0; i < N; i++) {
        if (calls[i].status != UARC_Good)
            fail_msg("request %d: %s", i, uarc_status_name(calls[i].status));
        assert_int_equal(calls[i].response_handle, calls[i].handle);
    }
    for (int i = 0; i < READS; i++)
        if (calls[i].number != reads[i].value)
            fail_msg("%s read %g, expected %g", reads[i].node, calls[i].number, reads[i].value);
    assert_true(calls[READS].number == 42.5);
    assert_true(calls[READS + 1].number == 1);

    uarc_clear(&args[0], UARC_T(Variant));
    uarc_clear(&args[1], UARC_T(Variant));
    uarc_clear(&m.objectId, UARC_T(NodeId));
    uarc_clear(&m.methodId, UARC_T(NodeId));
    uarc_clear(&d.nodeId, UARC_T(NodeId));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* A stopped server: the request times out on our side; the connection stays usable after. */
static void test_request_timeout(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    read_call r;
    assert_int_equal(kill(the_peer.pid, SIGSTOP), 0);
    int64_t t0 = now_ms();
    assert_int_equal(send_read(c, &r, "i=2258", 300), UARC_Good);
    bool ok = process_until(c, &r.done, 5000);
    int64_t took = now_ms() - t0;
    kill(the_peer.pid, SIGCONT);
    assert_true(ok);
    assert_int_equal(r.status, UARC_BadTimeout);
    assert_true(took >= 290 && took < 1500);
    read_call_clear(&r);
    /* The late answer is dropped; the next request gets its own. */
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    read_int32_ok(c);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* connect() ourselves, then hand the socket over: the same session as a dialed one. */
static void test_adopted_socket(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(peer_port(&the_peer))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);

    uarc_client *c = new_client(NULL);
    uarc_status s = uarc_client_connect_socket(c, fd, the_peer.url);
    if (s != UARC_Good)
        fail_msg("connect_socket: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(uarc_client_fd(c), fd);
    assert_string_equal(uarc_client_endpoint_url(c), the_peer.url);
    assert_true(uarc_client_session_timeout_ms(c) > 0);
    read_int32_ok(c);
    uarc_nodeid ns = uarc_nodeid_numeric(0, UARC_NS0ID_Server_NamespaceArray);
    uarc_data_value v;
    assert_int_equal(uarc_client_read_attribute(c, &ns, UARC_ATTRIBUTEID_Value, &v), UARC_Good);
    assert_true(v.value.is_array);
    assert_int_equal(v.value.array_length, 2);
    uarc_string *uris = v.value.data;
    assert_true(uarc_string_equal_cstr(&uris[1], PEER_URI));
    uarc_clear(&v, UARC_T(DataValue));
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    assert_int_equal(uarc_client_fd(c), -1);
    uarc_client_delete(c);
}

static void test_get_endpoints_without_session(void **state)
{
    (void)state;
    uarc_client_config cfg = {.no_session = true};
    uarc_client *c = new_client(&cfg);
    connect_ok(c, the_peer.url);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_CHANNEL_OPEN);
    uarc_GetEndpointsResponse resp;
    assert_int_equal(uarc_client_get_endpoints(c, &resp), UARC_Good);
    assert_true(resp.endpointsSize >= 1);
    bool none = false;
    for (size_t i = 0; i < resp.endpointsSize; i++) {
        const uarc_EndpointDescription *e = &resp.endpoints[i];
        if (uarc_string_equal_cstr(&e->securityPolicyUri,
                                   "http://opcfoundation.org/UA/SecurityPolicy#None") &&
            e->securityMode == UARC_MessageSecurityMode_None) {
            none = true;
            assert_true(uarc_string_equal_cstr(&e->endpointUrl, the_peer.url));
            assert_true(uarc_string_equal_cstr(&e->server.applicationUri, PEER_URI));
        }
    }
    assert_true(none);
    uarc_clear(&resp, UARC_T(GetEndpointsResponse));
    /* No session: a Read is refused by the server, and the channel stays open. */
    uarc_nodeid id = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime);
    uarc_data_value v;
    uarc_status s = uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, &v);
    assert_true(uarc_status_is_bad(s));
    uarc_clear(&v, UARC_T(DataValue));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_CHANNEL_OPEN);
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    uarc_client_delete(c);
}

/* Several attributes of several nodes in one Read: each result in order with its own status, an
 * unknown node failing alone; no node at all is refused without a request. */
static void test_read_many(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    uarc_ReadValueId ids[5] = {
        {.nodeId = node("i=2258"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = node("i=2255"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = node("i=85"), .attributeId = UARC_ATTRIBUTEID_BrowseName},
        {.nodeId = node("ns=1;s=NoSuchNode"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = node("i=2253"), .attributeId = UARC_ATTRIBUTEID_NodeClass},
    };
    uarc_data_value v[5];
    uarc_status s = uarc_client_read(c, ids, 5, v);
    if (s != UARC_Good)
        fail_msg("read: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    assert_int_equal(v[0].status, UARC_Good);
    assert_ptr_equal(v[0].value.type, UARC_T(DateTime));
    /* NamespaceArray: an array of strings, the first the OPC UA namespace */
    assert_int_equal(v[1].status, UARC_Good);
    assert_ptr_equal(v[1].value.type, UARC_T(String));
    assert_true(v[1].value.is_array && v[1].value.array_length >= 2);
    assert_true(uarc_string_equal_cstr(&((uarc_string *)v[1].value.data)[0],
                                       "http://opcfoundation.org/UA/"));
    assert_int_equal(v[2].status, UARC_Good);
    assert_ptr_equal(v[2].value.type, UARC_T(QualifiedName));
    const uarc_qualified_name *name = v[2].value.data;
    assert_int_equal(name->namespace_index, 0);
    assert_true(uarc_string_equal_cstr(&name->name, "Objects"));
    assert_int_equal(v[3].status, UARC_BadNodeIdUnknown);
    assert_false(v[3].has_value);
    assert_int_equal(v[4].status, UARC_Good);
    assert_ptr_equal(v[4].value.type, UARC_T(Int32)); /* NodeClass travels as Int32 */
    assert_int_equal(*(int32_t *)v[4].value.data, 1); /* Object */
    for (int i = 0; i < 5; i++)
        uarc_clear(&v[i], UARC_T(DataValue));
    for (int i = 0; i < 5; i++)
        uarc_clear(&ids[i].nodeId, UARC_T(NodeId));

    assert_int_equal(uarc_client_read(c, ids, 0, v), UARC_BadNothingToDo);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* TranslateBrowsePathsToNodeIds: a path by browse names resolves to the node's id; a path that
 * matches nothing is BadNoMatch (or the server's own Bad status for it). */
static void test_translate_path(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    uarc_nodeid objects = uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder), target;
    assert_int_equal(uarc_client_translate_path(c, &objects, "/1:Scalar/1:Double", &target),
                     UARC_Good);
    char text[128];
    uarc_nodeid_print(&target, text, sizeof text);
    assert_string_equal(text, "ns=1;s=Scalar.Double");
    uarc_clear(&target, UARC_T(NodeId));
    assert_int_equal(uarc_client_translate_path(c, &objects, "0:Server/0:ServerStatus", &target),
                     UARC_Good);
    assert_int_equal(target.identifier.numeric, UARC_NS0ID_Server_ServerStatus);
    uarc_status s = uarc_client_translate_path(c, &objects, "/1:Scalar/1:NoSuchChild", &target);
    assert_true(uarc_status_is_bad(s));
    assert_non_null(strstr(uarc_client_error(c), "TranslateBrowsePathsToNodeIds"));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* ---- writing values of every type ---- */

/* A string value of a literal (the literal is not copied; uarc_variant_set_* copies it). */
#define STR(text)    ((uarc_string){sizeof(text) - 1, (uint8_t *)(text)})
#define COUNT(array) (sizeof(array) / sizeof *(array))

/* A failure naming what was written and what came back, both in JSON. */
static void fail_unequal(const char *what, const uarc_variant *wrote, const uarc_variant *got)
{
    char *w = uarc_variant_to_json(wrote, NULL);
    char *g = uarc_variant_to_json(got, NULL);
    print_error("%s: wrote %s %s%s, read back %s %s%s\n", what, wrote->type->name,
                wrote->is_array ? "[] " : "", w ? w : "?", got->type ? got->type->name : "(empty)",
                got->is_array ? "[] " : "", g ? g : "?");
    uarc_free(w);
    uarc_free(g);
    fail();
}

/* Writes `value` to the Value of `node_text` (Good) and reads the Value back into *back (Good).
 */
static void write_and_read(uarc_client *c, const char *node_text, const uarc_variant *value,
                           uarc_data_value *back)
{
    uarc_nodeid id = node(node_text);
    uarc_status s = uarc_client_write_value(c, &id, value);
    if (s != UARC_Good)
        fail_msg("write %s: %s (%s)", node_text, uarc_status_name(s), uarc_client_error(c));
    s = uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, back);
    if (s != UARC_Good)
        fail_msg("read %s: %s (%s)", node_text, uarc_status_name(s), uarc_client_error(c));
    if (back->has_status && back->status != UARC_Good)
        fail_msg("read %s: value status %s", node_text, uarc_status_name(back->status));
    assert_true(back->has_value);
    uarc_clear(&id, UARC_T(NodeId));
}

/* Writes `value` and checks that the same value, bit for bit, is read back. */
static void write_read_equal(uarc_client *c, const char *node_text, const uarc_variant *value)
{
    uarc_data_value back;
    write_and_read(c, node_text, value, &back);
    if (!uarc_equal(value, &back.value, UARC_T(Variant)))
        fail_unequal(node_text, value, &back.value);
    uarc_clear(&back, UARC_T(DataValue));
}

/* A DateTime from its text, at the millisecond precision node-opcua keeps (a JavaScript Date). */
static uarc_datetime datetime(const char *text)
{
    uarc_datetime t;
    assert_true(uarc_datetime_parse(text, strlen(text), &t));
    return t;
}

/*
 * A one-dimensional array of every built-in type, written to ns=1;s=Array.<Type> and read back
 * equal. Every value differs from the one server.mjs starts with, and null and empty strings,
 * every NodeId form and the optional parts of the composite types are among them.
 */
static void test_write_arrays(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);

    const bool booleans[] = {false, false, true, false};
    const int8_t sbytes[] = {127, -1, -128, 5};
    const uint8_t bytes[] = {0, 255, 128};
    const int16_t int16s[] = {32767, -32768, -1};
    const uint16_t uint16s[] = {65535, 0, 4242};
    const int32_t int32s[] = {INT32_MAX, 42, INT32_MIN, 0, -7};
    const uint32_t uint32s[] = {UINT32_MAX, 7, 0};
    const int64_t int64s[] = {INT64_MIN, -2, INT64_MAX};
    const uint64_t uint64s[] = {UINT64_MAX, 0, UINT64_C(1) << 63};
    const float floats[] = {-1.25f, 1e-30f, 3.4e38f, -0.0f};
    const double doubles[] = {-0.0, 2.5e-300, -1e308, 0.1};
    const uarc_string strings[] = {
        STR("written"), {0, UARC_EMPTY}, {0, NULL}, STR("\xc3\xa9t\xc3\xa9")};
    const uarc_datetime times[] = {datetime("2030-06-07T08:09:10.123Z"),
                                   datetime("1970-01-01T00:00:00Z"),
                                   datetime("2001-02-03T04:05:06.999Z")};
    const uarc_guid guids[] = {
        {0x01234567, 0x89ab, 0xcdef, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}},
        {0xffffffff, 0, 0xffff, {0}},
    };
    const uarc_bytestring bytestrings[] = {STR("\x00\xff\x80"), {0, NULL}, {0, UARC_EMPTY}};
    const uarc_xml_element xml[] = {STR("<x y=\"1\"/>"), STR("<z>t</z>")};
    const uarc_nodeid nodeids[] = {
        {.namespace_index = 0, .identifier_type = UARC_NODEID_NUMERIC, .identifier.numeric = 2258},
        {.namespace_index = 2, .identifier_type = UARC_NODEID_NUMERIC, .identifier.numeric = 70000},
        {.namespace_index = 1,
         .identifier_type = UARC_NODEID_STRING,
         .identifier.string = STR("Set")},
        {.namespace_index = 3,
         .identifier_type = UARC_NODEID_GUID,
         .identifier.guid =
             {0x72962b91, 0xfa75, 0x4ae6, {0x8d, 0x28, 0xb4, 0x04, 0xdc, 0x7d, 0xaf, 0x63}}},
        {.namespace_index = 4,
         .identifier_type = UARC_NODEID_BYTESTRING,
         .identifier.bytestring = STR("\x01\x02")},
    };
    const uarc_expanded_nodeid expanded[] = {
        {.node_id = nodeids[1]},
        {.node_id = nodeids[2], .namespace_uri = STR("urn:elsewhere")},
        {.node_id = nodeids[0], .server_index = 2},
    };
    const uarc_status codes[] = {UARC_UncertainInitialValue, UARC_Good, UARC_BadNodeIdUnknown,
                                 UARC_GoodClamped};
    const uarc_qualified_name names[] = {{0, STR("plain")}, {3, STR("three")}};
    const uarc_localized_text texts[] = {
        {STR("de"), STR("Hallo")}, {{0, NULL}, STR("no locale")}, {STR("fr"), {0, NULL}}};
    uarc_Range ranges[] = {{1, 2}, {-1e10, 5.5}};
    const uarc_extension_object objects[] = {
        {.encoding = UARC_EXTENSION_OBJECT_DECODED, .content.decoded = {UARC_T(Range), &ranges[0]}},
        {.encoding = UARC_EXTENSION_OBJECT_DECODED, .content.decoded = {UARC_T(Range), &ranges[1]}},
    };
    int32_t minus_five = -5;
    uarc_string dv_text = STR("dv");
    double pair[] = {1.5, -2.5};
    uarc_variant int_variant = {.type = UARC_T(Int32), .data = &minus_five};
    uarc_variant string_variant = {.type = UARC_T(String), .data = &dv_text};
    uarc_variant array_variant = {
        .type = UARC_T(Double), .data = pair, .is_array = true, .array_length = 2};
    const uarc_data_value data_values[] = {
        {.value = int_variant,
         .has_value = true,
         .status = UARC_UncertainInitialValue,
         .has_status = true},
        {.value = string_variant,
         .has_value = true,
         .source_timestamp = times[0],
         .has_source_timestamp = true},
        {.value = array_variant, .has_value = true},
    };
    bool yes = true;
    const uarc_variant variants[] = {
        int_variant, string_variant, array_variant, {.type = UARC_T(Boolean), .data = &yes}};
    uarc_diagnostic_info inner = {.has_symbolic_id = true, .symbolic_id = 9};
    const uarc_diagnostic_info diagnostics[] = {
        {.has_symbolic_id = true,
         .symbolic_id = 3,
         .has_additional_info = true,
         .additional_info = STR("first")},
        {.has_namespace_uri = true,
         .namespace_uri = 1,
         .has_localized_text = true,
         .localized_text = 2,
         .has_locale = true,
         .locale = 0,
         .has_inner_status_code = true,
         .inner_status_code = UARC_BadTimeout,
         .has_inner_diagnostic_info = true,
         .inner_diagnostic_info = &inner},
    };

    const struct {
        const uarc_type *type;
        const void *values;
        size_t count;
    } cases[] = {
        {UARC_T(Boolean), booleans, COUNT(booleans)},
        {UARC_T(SByte), sbytes, COUNT(sbytes)},
        {UARC_T(Byte), bytes, COUNT(bytes)},
        {UARC_T(Int16), int16s, COUNT(int16s)},
        {UARC_T(UInt16), uint16s, COUNT(uint16s)},
        {UARC_T(Int32), int32s, COUNT(int32s)},
        {UARC_T(UInt32), uint32s, COUNT(uint32s)},
        {UARC_T(Int64), int64s, COUNT(int64s)},
        {UARC_T(UInt64), uint64s, COUNT(uint64s)},
        {UARC_T(Float), floats, COUNT(floats)},
        {UARC_T(Double), doubles, COUNT(doubles)},
        {UARC_T(String), strings, COUNT(strings)},
        {UARC_T(DateTime), times, COUNT(times)},
        {UARC_T(Guid), guids, COUNT(guids)},
        {UARC_T(ByteString), bytestrings, COUNT(bytestrings)},
        {UARC_T(XmlElement), xml, COUNT(xml)},
        {UARC_T(NodeId), nodeids, COUNT(nodeids)},
        {UARC_T(ExpandedNodeId), expanded, COUNT(expanded)},
        {UARC_T(StatusCode), codes, COUNT(codes)},
        {UARC_T(QualifiedName), names, COUNT(names)},
        {UARC_T(LocalizedText), texts, COUNT(texts)},
        {UARC_T(ExtensionObject), objects, COUNT(objects)},
        {UARC_T(DataValue), data_values, COUNT(data_values)},
        {UARC_T(Variant), variants, COUNT(variants)},
        {UARC_T(DiagnosticInfo), diagnostics, COUNT(diagnostics)},
    };
    assert_int_equal(COUNT(cases), 25); /* every built-in type */
    for (size_t i = 0; i < COUNT(cases); i++) {
        char node_text[64];
        snprintf(node_text, sizeof node_text, "ns=1;s=Array.%s", cases[i].type->name);
        uarc_variant v;
        assert_int_equal(uarc_variant_set_array(&v, cases[i].values, cases[i].count, cases[i].type),
                         UARC_Good);
        write_read_equal(c, node_text, &v);
        uarc_clear(&v, UARC_T(Variant));
    }
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* Writes `value` to the Value of `node_text`: the write's status. */
static uarc_status write_status(uarc_client *c, const char *node_text, const uarc_variant *value)
{
    uarc_nodeid id = node(node_text);
    uarc_status s = uarc_client_write_value(c, &id, value);
    uarc_clear(&id, UARC_T(NodeId));
    return s;
}

/* Empty and null arrays are distinct on the wire (length 0 and -1): each is written over a
 * non-empty array and must come back as itself, not as the other. */
static void test_write_empty_and_null_arrays(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    const int32_t some[] = {1, 2};
    uarc_variant filled, empty, null;
    assert_int_equal(uarc_variant_set_array(&filled, some, 2, UARC_T(Int32)), UARC_Good);
    assert_int_equal(uarc_variant_set_array(&empty, UARC_EMPTY, 0, UARC_T(Int32)), UARC_Good);
    assert_int_equal(uarc_variant_set_array(&null, NULL, 0, UARC_T(Int32)), UARC_Good);
    assert_ptr_equal(empty.data, UARC_EMPTY);
    assert_null(null.data);
    write_read_equal(c, "ns=1;s=Array.Empty", &filled);
    write_read_equal(c, "ns=1;s=Array.Empty", &empty);
    write_read_equal(c, "ns=1;s=Array.Empty", &filled);
    write_read_equal(c, "ns=1;s=Array.Empty", &null);
    uarc_clear(&filled, UARC_T(Variant));
    uarc_clear(&empty, UARC_T(Variant));
    uarc_clear(&null, UARC_T(Variant));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/*
 * New values in the 3x4 matrix: the Variant read back has the same ArrayDimensions and the same
 * values in row-major order, and the node's ArrayDimensions attribute is still [3,4] (both read
 * in one uarc_client_read). node-opcua 2.186.4 takes a Double array of any shape here, even a
 * flat one, so a client that lost or swapped the dimensions would read its mistake back.
 */
static void test_write_matrix(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    double values[12];
    for (int k = 0; k < 12; k++)
        values[k] = -100.0 * (k / 4) - (k % 4) - 0.25; /* [r][c] = -(100r + c + 0.25) */
    int32_t dims[] = {3, 4};
    const uarc_variant matrix = {.type = UARC_T(Double),
                                 .data = values,
                                 .array_length = 12,
                                 .is_array = true,
                                 .array_dimensions_size = 2,
                                 .array_dimensions = dims};
    uarc_nodeid id = node("ns=1;s=Matrix.Double");
    uarc_status s = uarc_client_write_value(c, &id, &matrix);
    if (s != UARC_Good)
        fail_msg("write: %s (%s)", uarc_status_name(s), uarc_client_error(c));

    uarc_ReadValueId ids[2] = {{.nodeId = id, .attributeId = UARC_ATTRIBUTEID_Value},
                               {.nodeId = id, .attributeId = UARC_ATTRIBUTEID_ArrayDimensions}};
    uarc_data_value back[2];
    assert_int_equal(uarc_client_read(c, ids, 2, back), UARC_Good);
    assert_int_equal(back[0].status, UARC_Good);
    const uarc_variant *v = &back[0].value;
    assert_ptr_equal(v->type, UARC_T(Double));
    assert_true(v->is_array);
    assert_int_equal(v->array_dimensions_size, 2);
    assert_int_equal(v->array_dimensions[0], 3);
    assert_int_equal(v->array_dimensions[1], 4);
    assert_int_equal(v->array_length, 12);
    if (!uarc_equal(&matrix, v, UARC_T(Variant)))
        fail_unequal("ns=1;s=Matrix.Double", &matrix, v);
    assert_int_equal(back[1].status, UARC_Good);
    const uarc_variant *attr = &back[1].value;
    assert_ptr_equal(attr->type, UARC_T(UInt32));
    assert_true(attr->is_array);
    assert_int_equal(attr->array_length, 2);
    assert_int_equal(((uint32_t *)attr->data)[0], 3);
    assert_int_equal(((uint32_t *)attr->data)[1], 4);
    uarc_clear(&back[0], UARC_T(DataValue));
    uarc_clear(&back[1], UARC_T(DataValue));
    uarc_clear(&id, UARC_T(NodeId));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* Reads ns=1;s=Struct.Argument and checks it is `expected`, field by field. */
static void argument_is(uarc_client *c, const uarc_Argument *expected)
{
    uarc_nodeid id = node("ns=1;s=Struct.Argument");
    uarc_data_value back;
    assert_int_equal(uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, &back), UARC_Good);
    assert_int_equal(back.status, UARC_Good);
    assert_ptr_equal(back.value.type, UARC_T(ExtensionObject));
    assert_false(back.value.is_array);
    const uarc_extension_object *eo = back.value.data;
    assert_int_equal(eo->encoding, UARC_EXTENSION_OBJECT_DECODED); /* by its encoding id, i=298 */
    assert_ptr_equal(eo->content.decoded.type, UARC_T(Argument));
    const uarc_Argument *a = eo->content.decoded.data;
    assert_true(uarc_equal(&a->name, &expected->name, UARC_T(String)));
    assert_true(uarc_equal(&a->dataType, &expected->dataType, UARC_T(NodeId)));
    assert_int_equal(a->valueRank, expected->valueRank);
    assert_int_equal(a->arrayDimensionsSize, expected->arrayDimensionsSize);
    for (size_t i = 0; i < a->arrayDimensionsSize; i++)
        assert_int_equal(a->arrayDimensions[i], expected->arrayDimensions[i]);
    assert_true(uarc_equal(&a->description.locale, &expected->description.locale, UARC_T(String)));
    assert_true(uarc_equal(&a->description.text, &expected->description.text, UARC_T(String)));
    assert_true(uarc_equal(a, expected, UARC_T(Argument))); /* and nothing else differs */
    uarc_clear(&back, UARC_T(DataValue));
    uarc_clear(&id, UARC_T(NodeId));
}

/*
 * A structure of a standard DataType (Argument: a String, a NodeId, an Int32, a UInt32 array and
 * a LocalizedText) written as an ExtensionObject of uarc's generated type and read back. Then two
 * values the variable refuses, each a Bad result that leaves the session and the value as they
 * were: an Int32 (BadTypeMismatch) and an ExtensionObject of another structure, a Range, to which
 * node-opcua 2.186.4 answers BadInternalError.
 */
static void test_write_structure(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    uint32_t dims[] = {2, 3};
    const uarc_Argument argument = {
        .name = STR("setpoint"),
        .dataType = {.identifier_type = UARC_NODEID_NUMERIC, .identifier.numeric = 6}, /* Int32 */
        .valueRank = 2,
        .arrayDimensionsSize = 2,
        .arrayDimensions = dims,
        .description = {STR("de"), STR("Sollwert")},
    };
    uarc_extension_object eo = {.encoding = UARC_EXTENSION_OBJECT_DECODED,
                                .content.decoded = {UARC_T(Argument), (void *)&argument}};
    uarc_variant v;
    assert_int_equal(uarc_variant_set_scalar(&v, &eo, UARC_T(ExtensionObject)), UARC_Good);
    uarc_status s = write_status(c, "ns=1;s=Struct.Argument", &v);
    if (s != UARC_Good)
        fail_msg("write: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    uarc_clear(&v, UARC_T(Variant));
    argument_is(c, &argument);

    int32_t five = 5;
    const uarc_variant number = {.type = UARC_T(Int32), .data = &five};
    assert_int_equal(write_status(c, "ns=1;s=Struct.Argument", &number), UARC_BadTypeMismatch);
    uarc_Range range = {3, 4};
    eo.content.decoded.type = UARC_T(Range);
    eo.content.decoded.data = &range;
    const uarc_variant other = {.type = UARC_T(ExtensionObject), .data = &eo};
    s = write_status(c, "ns=1;s=Struct.Argument", &other);
    if (!uarc_status_is_bad(s))
        fail_msg("a Range written to an Argument variable: %s", uarc_status_name(s));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    argument_is(c, &argument);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* A BaseDataType variable (ns=1;s=Scalar.Variant) takes a value of any built-in type:
 * node-opcua 2.186.4 also stores a DataValue and a DiagnosticInfo and gives them back whole. */
static void test_write_data_value_and_diagnostic_info(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    int32_t seven = 7;
    const uarc_data_value dv = {.value = {.type = UARC_T(Int32), .data = &seven},
                                .status = UARC_UncertainInitialValue,
                                .source_timestamp = datetime("2031-01-01T00:00:00.5Z"),
                                .has_value = true,
                                .has_status = true,
                                .has_source_timestamp = true};
    uarc_variant v;
    assert_int_equal(uarc_variant_set_scalar(&v, &dv, UARC_T(DataValue)), UARC_Good);
    write_read_equal(c, "ns=1;s=Scalar.Variant", &v);
    uarc_clear(&v, UARC_T(Variant));

    uarc_diagnostic_info inner = {.has_locale = true, .locale = 4};
    const uarc_diagnostic_info di = {.has_symbolic_id = true,
                                     .has_additional_info = true,
                                     .has_inner_status_code = true,
                                     .has_inner_diagnostic_info = true,
                                     .symbolic_id = 5,
                                     .additional_info = STR("diag"),
                                     .inner_status_code = UARC_BadTimeout,
                                     .inner_diagnostic_info = &inner};
    assert_int_equal(uarc_variant_set_scalar(&v, &di, UARC_T(DiagnosticInfo)), UARC_Good);
    write_read_equal(c, "ns=1;s=Scalar.Variant", &v);
    uarc_clear(&v, UARC_T(Variant));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* Leaves the client idle (no request of its own) for `ms`, processing. */
static void idle(uarc_client *c, int ms)
{
    int64_t end = now_ms() + ms;
    while (now_ms() < end)
        uarc_client_process(c, (int)(end - now_ms()));
}

/*
 * An idle session stays alive through the keep-alive: with a short session timeout the server
 * drops a session that hears nothing. The control run, keep-alive pushed beyond the idle time,
 * shows the server really does, so the first half can fail.
 */
static void test_idle_keepalive(void **state)
{
    (void)state;
    uarc_client_config cfg = {.session_timeout_ms = 1500};
    uarc_client *c = new_client(&cfg);
    connect_ok(c, the_peer.url);
    double revised = uarc_client_session_timeout_ms(c);
    assert_true(revised >= 1000 && revised <= 2000);
    idle(c, (int)(3 * revised));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    read_int32_ok(c);
    uarc_client_disconnect(c);
    uarc_client_delete(c);

    uarc_client_config no_keepalive = {.session_timeout_ms = 1500, .keepalive_interval_ms = 60000};
    c = new_client(&no_keepalive);
    connect_ok(c, the_peer.url);
    idle(c, (int)(3 * uarc_client_session_timeout_ms(c)));
    uarc_nodeid id = node("ns=1;s=Scalar.Int32");
    uarc_data_value v;
    uarc_status s = uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, &v);
    if (s != UARC_BadSessionIdInvalid && s != UARC_BadSessionClosed)
        fail_msg("without keep-alive the server should have dropped the session; read gave %s",
                 uarc_status_name(s));
    uarc_clear(&v, UARC_T(DataValue));
    uarc_clear(&id, UARC_T(NodeId));
    uarc_client_delete(c);
}

/* A connection lost under the session: the next connect re-activates the same session; once the
 * server restarted, it creates a new one. */
static void test_session_reactivation(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    assert_false(uarc_client_session_resumed(c));
    read_int32_ok(c);

    assert_int_equal(shutdown(uarc_client_fd(c), SHUT_RDWR), 0);
    assert_true(process_until_state(c, UARC_CLIENT_DISCONNECTED, 5000));
    connect_ok(c, the_peer.url);
    assert_true(uarc_client_session_resumed(c));
    read_int32_ok(c);

    /* A new server process on the same port (same URL) knows nothing of the session. */
    uint16_t port = peer_port(&the_peer);
    char url[sizeof the_peer.url];
    memcpy(url, the_peer.url, sizeof url);
    peer_process_stop(&the_peer);
    assert_true(process_until_state(c, UARC_CLIENT_DISCONNECTED, 5000));
    assert_true(peer_start(&the_peer, port));
    assert_string_equal(the_peer.url, url);
    connect_ok(c, url);
    assert_false(uarc_client_session_resumed(c));
    read_int32_ok(c);

    /* After a clean disconnect there is nothing to resume. */
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    connect_ok(c, url);
    assert_false(uarc_client_session_resumed(c));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

typedef struct states {
    int disconnected;
    uarc_status status;
} states;

static void on_state(void *user_data, uarc_client_state state, uarc_status status)
{
    states *s = user_data;
    if (state == UARC_CLIENT_DISCONNECTED) {
        s->disconnected++;
        s->status = status;
    }
}

/* The server dies with a request in flight: the callback learns it, nothing hangs. */
static void test_server_killed_mid_request(void **state)
{
    (void)state;
    states st = {0};
    uarc_client_config cfg = {.callbacks = {on_state, &st}};
    uarc_client *c = new_client(&cfg);
    connect_ok(c, the_peer.url);
    read_int32_ok(c);

    assert_int_equal(kill(the_peer.pid, SIGSTOP), 0);
    read_call r;
    assert_int_equal(send_read(c, &r, "i=2258", 10000), UARC_Good);
    uarc_client_process(c, 100);
    assert_false(r.done);
    int64_t t0 = now_ms();
    kill(the_peer.pid, SIGKILL); /* it is stopped: only SIGKILL ends it at once */
    peer_process_stop(&the_peer);
    assert_true(process_until(c, &r.done, 5000));
    assert_true(now_ms() - t0 < 3000);
    if (r.status != UARC_BadConnectionClosed && r.status != UARC_BadSecureChannelClosed)
        fail_msg("the pending read ended with %s", uarc_status_name(r.status));
    assert_null(r.value.value.type);
    assert_true(process_until_state(c, UARC_CLIENT_DISCONNECTED, 1000));
    assert_int_equal(st.disconnected, 1);
    assert_true(uarc_status_is_bad(st.status));
    assert_int_equal(uarc_client_fd(c), -1);
    assert_true(uarc_status_is_bad(uarc_client_process(c, 0)));
    read_call_clear(&r);

    /* Sending now fails at once, and reconnecting reports the connect step. */
    read_call r2;
    assert_int_equal(send_read(c, &r2, "i=2258", 0), UARC_BadConnectionClosed);
    read_call_clear(&r2);
    uarc_client_config quick = {.connect_timeout_ms = 2000};
    uarc_client *c2 = new_client(&quick);
    assert_true(uarc_status_is_bad(uarc_client_connect(c2, the_peer.url)));
    assert_int_equal(strncmp(uarc_client_error(c2), "connect: ", 9), 0);
    uarc_client_delete(c2);
    uarc_client_delete(c);
}

int main(void)
{
    /* A hang fails the test instead of stalling ctest (the peer exits when its stdin closes). */
    alarm(150);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_secured_renewal),
        cmocka_unit_test(test_requests_in_flight),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_adopted_socket),
        cmocka_unit_test(test_get_endpoints_without_session),
        cmocka_unit_test(test_read_many),
        cmocka_unit_test(test_translate_path),
        cmocka_unit_test(test_write_arrays),
        cmocka_unit_test(test_write_empty_and_null_arrays),
        cmocka_unit_test(test_write_matrix),
        cmocka_unit_test(test_write_structure),
        cmocka_unit_test(test_write_data_value_and_diagnostic_info),
        cmocka_unit_test(test_idle_keepalive),
        cmocka_unit_test(test_session_reactivation),
        cmocka_unit_test(test_server_killed_mid_request),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
