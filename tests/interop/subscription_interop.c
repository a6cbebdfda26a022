/*
 * Subscriptions through the library's API against a real node-opcua server (tests/peer), driven as
 * an event loop (uarc_client_process): the counter ns=1;s=Counter (+1 every 10 ms, every change
 * reported) across a connection cut by the client's side with the session kept (resumed), and
 * across a new session: TransferSubscriptions over a signed channel (transferred), refused over
 * None (re-created after a gap). What arrives is each value once, in order; what is lost is a
 * gap. And 1,200 items created, set to a mode, modified and removed with one call each, against
 * a server that takes at most 100 items per call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "uarc/uarc.h"

#include "peer_process.h"
#include "many_items.h"

#define PEER_URI      "urn:uarc:subscription-interop"
#define START_TIMEOUT 60000
#define WAIT_MS       20000
#define MAX_VALUES    100000
#define SIGNED_POLICY "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"

static peer_process the_peer = PEER_PROCESS_INIT;

typedef struct record {
    uint32_t values[MAX_VALUES];
    uint32_t subscription[MAX_VALUES];
    size_t count;
    size_t gaps;
    uarc_status gap_reason;
    uarc_subscription_state state;
    size_t states[8];  /* how often each state was reported */
    size_t created[4]; /* how often item 1, 2, 3 was reported created (Good) */
} record;

static record rec;

static void on_data(void *user_data, const uarc_data_change *c)
{
    record *r = user_data;
    if (r->count < MAX_VALUES && c->value->has_value && c->value->value.type == UARC_T(UInt32)) {
        r->values[r->count] = *(const uint32_t *)c->value->value.data;
        r->subscription[r->count] = c->subscription_id;
        r->count++;
    }
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    (void)s;
    record *r = user_data;
    r->gaps++;
    r->gap_reason = reason;
    fprintf(stderr, "gap %u..%u %s\n", from, to, uarc_status_name(reason));
}

static void on_state(void *user_data, uarc_subscription *s, uarc_subscription_state state,
                     uarc_status status)
{
    (void)s;
    record *r = user_data;
    r->state = state;
    if ((unsigned)state < 8)
        r->states[state]++;
    fprintf(stderr, "subscription %s (%s)\n", uarc_subscription_state_name(state),
            uarc_status_name(status));
}

static void on_item(void *user_data, uarc_subscription *s, uint32_t item, uarc_status status)
{
    (void)s;
    record *r = user_data;
    if (status == UARC_Good && item < 4)
        r->created[item]++;
}

/* Drives the client until `count` values arrived (or WAIT_MS passed). */
static void run_until(uarc_client *c, size_t count)
{
    int64_t end = peer_process_now_ms() + WAIT_MS;
    while (rec.count < count && peer_process_now_ms() < end)
        uarc_client_process(c, 100);
    assert_true(rec.count >= count);
}

/* Every value once, in order, within each subscription id. */
static void check_consecutive(size_t from)
{
    for (size_t i = from + 1; i < rec.count; i++) {
        if (rec.subscription[i] != rec.subscription[i - 1])
            continue;
        if (rec.values[i] != rec.values[i - 1] + 1)
            fail_msg("value %u after %u (#%zu)", rec.values[i], rec.values[i - 1], i);
    }
}

/* The server's certificate for Basic256Sha256 Sign, asked with GetEndpoints on a None channel. */
static void server_certificate(uarc_bytestring *out)
{
    uarc_client_config cfg = {.no_session = true};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    uarc_GetEndpointsResponse resp;
    assert_int_equal(uarc_client_get_endpoints(c, &resp), UARC_Good);
    out->length = 0;
    for (size_t i = 0; i < resp.endpointsSize; i++) {
        const uarc_EndpointDescription *e = &resp.endpoints[i];
        if (uarc_string_equal_cstr(&e->securityPolicyUri, SIGNED_POLICY) &&
            e->securityMode == UARC_MessageSecurityMode_Sign)
            assert_int_equal(uarc_copy(&e->serverCertificate, out, UARC_T(ByteString)), UARC_Good);
    }
    assert_true(out->length > 0);
    uarc_clear(&resp, UARC_T(GetEndpointsResponse));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* A client, anonymous, on None or (signed) on Basic256Sha256 Sign with a certificate it makes. */
static uarc_client *connect_and_subscribe_with(uarc_subscription **s, bool signed_channel)
{
    memset(&rec, 0, sizeof rec);
    /* generous bounds: under valgrind, making the RSA key and the signed handshake take seconds */
    uarc_client_config ccfg = {.connect_timeout_ms = 60000, .request_timeout_ms = 30000};
    uarc_bytestring certificate = {0, NULL};
    if (signed_channel) {
        server_certificate(&certificate);
        ccfg.security_policy_uri = SIGNED_POLICY;
        ccfg.security_mode = UARC_MessageSecurityMode_Sign;
        ccfg.generate_certificate = true;
        ccfg.server_certificate = certificate.data;
        ccfg.server_certificate_length = certificate.length;
    }
    uarc_client *c = uarc_client_new(&ccfg);
    uarc_clear(&certificate, UARC_T(ByteString));
    assert_non_null(c);
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    uarc_subscription_config cfg = {.publishing_interval_ms = 100};
    cfg.callbacks = (uarc_subscription_callbacks){.data_change = on_data,
                                                  .gap = on_gap,
                                                  .state_changed = on_state,
                                                  .item_created = on_item,
                                                  .user_data = &rec};
    assert_int_equal(uarc_subscription_new(c, &cfg, s), UARC_Good);
    uarc_monitored_item_params item = {.node = uarc_nodeid_string(1, "Counter"),
                                       .sampling_interval_ms = -1, /* 0 on the wire: every change */
                                       .queue_size = 10000};
    assert_int_equal(uarc_subscription_add_item(*s, &item, NULL), UARC_Good);
    uarc_clear(&item.node, UARC_T(NodeId));
    return c;
}

static uarc_client *connect_and_subscribe(uarc_subscription **s)
{
    return connect_and_subscribe_with(s, false);
}

/* Cuts the connection from our side without CloseSession: the session stays on the server. */
static void cut(uarc_client *c)
{
    shutdown(uarc_client_fd(c), SHUT_RDWR);
    int64_t end = peer_process_now_ms() + WAIT_MS;
    while (uarc_client_state_get(c) != UARC_CLIENT_DISCONNECTED && peer_process_now_ms() < end)
        uarc_client_process(c, 100);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
}

static void test_resumed_after_a_cut(void **state)
{
    (void)state;
    uarc_subscription *s;
    uarc_client *c = connect_and_subscribe(&s);
    run_until(c, 30);
    cut(c);
    /* Values go on on the server meanwhile; they wait in the item's queue. */
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    assert_true(uarc_client_session_resumed(c));
    uint32_t at_cut = rec.values[rec.count - 1];
    while (rec.count < MAX_VALUES && (rec.count == 0 || rec.values[rec.count - 1] < at_cut + 100))
        run_until(c, rec.count + 1);
    assert_int_equal(rec.states[UARC_SUBSCRIPTION_RESUMED], 1);
    assert_int_equal(rec.gaps, 0);
    check_consecutive(0);
    uarc_client_delete(c);
}

/* An anonymous session over SecurityPolicy None may not take the subscription over (Part 4
 * §5.13.7 asks for a signed channel): node-opcua answers BadUserAccessDenied, and the
 * subscription is created again after a gap that says so. */
static void test_new_session_on_none_recreates(void **state)
{
    (void)state;
    uarc_subscription *s;
    uarc_client *c = connect_and_subscribe(&s);
    run_until(c, 30);
    uint32_t old_id = uarc_subscription_id(s);
    cut(c);
    uarc_client_forget_session(c); /* the next connect makes a new session */
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    assert_false(uarc_client_session_resumed(c));
    size_t before = rec.count;
    run_until(c, before + 50);
    assert_int_equal(rec.states[UARC_SUBSCRIPTION_TRANSFERRED], 0);
    assert_int_equal(rec.states[UARC_SUBSCRIPTION_RECREATED], 1);
    assert_int_equal(rec.gaps, 1);
    assert_int_equal(rec.gap_reason, UARC_BadUserAccessDenied);
    assert_int_not_equal(uarc_subscription_id(s), old_id);
    check_consecutive(before);
    uarc_client_delete(c);
}

/* Part 4 §5.13.7: an anonymous session may take over a subscription when it comes from the same
 * ApplicationUri over a signed channel. node-opcua transfers it then: same id, no gap. */
static void test_transferred_on_a_signed_channel(void **state)
{
    (void)state;
    uarc_subscription *s;
    uarc_client *c = connect_and_subscribe_with(&s, true);
    run_until(c, 30);
    uint32_t old_id = uarc_subscription_id(s);
    cut(c);
    uarc_client_forget_session(c);
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    assert_false(uarc_client_session_resumed(c));
    uint32_t at_cut = rec.values[rec.count - 1];
    while (rec.count < MAX_VALUES && rec.values[rec.count - 1] < at_cut + 100)
        run_until(c, rec.count + 1);
    assert_int_equal(rec.states[UARC_SUBSCRIPTION_TRANSFERRED], 1);
    assert_int_equal(rec.states[UARC_SUBSCRIPTION_RECREATED], 0);
    assert_int_equal(uarc_subscription_id(s), old_id);
    assert_int_equal(rec.gaps, 0);
    check_consecutive(0);
    uarc_client_delete(c);
}

/* Waits until a response of `type` lies in the socket's receive buffer (the channel is None: its
 * bytes are plain), then takes it and everything before it away from the client, as a broken
 * network would; false after WAIT_MS. */
static bool swallow_response(int fd, const uarc_type *type)
{
    /* Large enough to look past every PublishResponse already queued ahead of it: a client slowed
     * down (valgrind) can have more than 64 KiB of them unread, and a peek sees only the front. */
    static uint8_t buf[1 << 22];
    uint32_t id = type->binary_encoding_id;
    const uint8_t want[4] = {1, 0, (uint8_t)id, (uint8_t)(id >> 8)}; /* four-byte NodeId */
    int64_t end = peer_process_now_ms() + WAIT_MS;
    ssize_t n = 0;
    while (peer_process_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        for (ssize_t i = 0; i + 4 <= n; i++)
            if (memcmp(buf + i, want, 4) == 0)
                return recv(fd, buf, (size_t)n, MSG_DONTWAIT) == n;
    }
    /* what was there instead, for the report: the message types of the chunks waiting */
    fprintf(stderr, "swallow_response: no %s in the %zd bytes waiting:", type->name, n);
    for (ssize_t at = 0; at + 28 <= n;) {
        uint32_t size = (uint32_t)buf[at + 4] | (uint32_t)buf[at + 5] << 8 |
                        (uint32_t)buf[at + 6] << 16 | (uint32_t)buf[at + 7] << 24;
        fprintf(stderr, " %.3s/%u(i=%u)", (const char *)buf + at, size,
                (unsigned)(buf[at + 26] | buf[at + 27] << 8));
        if (size < 8)
            break;
        at += size;
    }
    fputc('\n', stderr);
    return false;
}

/* An item whose CreateMonitoredItems the server carried out, but whose response the cut
 * connection lost: after the session is resumed the client asks the server (GetMonitoredItems)
 * instead of creating it again. It exists once on the server, is told created once, and the
 * other item's values go on without loss. */
static void test_item_in_flight_at_a_cut_exists_once(void **state)
{
    (void)state;
    /* The harness takes the response off the socket while the client is not running; under
     * valgrind the request was seen not to have gone out by then (twice in CI, never locally),
     * so there it is skipped: the gcc and ASan runs keep it, and test_subscription_items covers
     * the same recovery in byte mode under valgrind. */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "valgrind"))
        skip();
    uarc_subscription *s;
    uarc_client *c = connect_and_subscribe(&s);
    run_until(c, 30);
    uarc_monitored_item_params item = {
        .node = uarc_nodeid_string(1, "Analog"), .sampling_interval_ms = -1, .queue_size = 10000};
    uint32_t handle;
    assert_int_equal(uarc_subscription_add_item(s, &item, &handle), UARC_Good);
    uarc_clear(&item.node, UARC_T(NodeId));
    assert_int_equal(handle, 2);
    uarc_client_process(c, 0); /* the request goes out */
    assert_true(swallow_response(uarc_client_fd(c), UARC_T(CreateMonitoredItemsResponse)));
    cut(c);
    assert_int_equal(rec.created[2], 0);
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    assert_true(uarc_client_session_resumed(c));
    uint32_t at_cut = rec.values[rec.count - 1];
    while (rec.count < MAX_VALUES && rec.values[rec.count - 1] < at_cut + 50)
        run_until(c, rec.count + 1);
    assert_int_equal(rec.created[2], 1);
    assert_int_equal(items_on_server(c, uarc_subscription_id(s)), 2);
    assert_int_equal(rec.gaps, 0);
    check_consecutive(0);
    uarc_client_delete(c);
}

#define PER_CALL "100" /* the peer's MaxMonitoredItemsPerCall */

/* Each call goes out in batches within the server's MaxMonitoredItemsPerCall (read, so none is
 * refused: node-opcua answers BadTooManyOperations past it); every item's result is Good, the
 * removals' too (item_removed). */
static void test_many_items_in_one_call(void **state)
{
    (void)state;
    many_items_log log;
    many_items_back_and_forth(the_peer.url, 0, &log);
    assert_int_equal(log.limit, atoi(PER_CALL));
    assert_int_equal(log.refused, 0);
}

static int group_setup(void **state)
{
    (void)state;
    const char *args[] = {
        "--uri",  PEER_URI, "--no-big", "--secure", "--max-monitored-items-per-call",
        PER_CALL, NULL};
    if (!peer_process_spawn(&the_peer, args) ||
        !peer_process_wait_started(&the_peer, START_TIMEOUT)) {
        fprintf(stderr, "the peer did not start\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    peer_process_stop(&the_peer);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resumed_after_a_cut),
        cmocka_unit_test(test_new_session_on_none_recreates),
        cmocka_unit_test(test_transferred_on_a_signed_channel),
        cmocka_unit_test(test_item_in_flight_at_a_cut_exists_once),
        cmocka_unit_test(test_many_items_in_one_call),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
