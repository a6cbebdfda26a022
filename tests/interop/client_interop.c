/*
 * The client library against a real node-opcua server (tests/peer/server.mjs, started by
 * client_peer.h), through the public API: the secure channel renewed over None and secured
 * channels, a request timing out, an idle session kept alive, session re-activation, and a
 * server that dies mid-request.
 *
 * The tests share the peer and run in the order listed in main(): the last two restart and kill
 * it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "uarc/uarc.h"
#include "uarc/client.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#include "peer_process.h"
#include "client_peer.h"

/* ms: the peer's ceiling and what we request. node-opcua grants at least 2500 ms, and refuses a
 * token 1.25 lifetimes after it was issued. */
#define TOKEN_LIFETIME     2000
#define MIN_TOKEN_LIFETIME 2500

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
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_idle_keepalive),
        cmocka_unit_test(test_session_reactivation),
        cmocka_unit_test(test_server_killed_mid_request),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
