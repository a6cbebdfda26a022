/*
 * Server.ResendData against real servers: a value that changed only inside lost messages arrives
 * after the gap, and without ResendData (config.no_resend_after_gap) it never does. node-opcua
 * (tests/peer) keeps no sent message (--retransmission-queue 0) and re-sends no value at
 * ActivateSession (--no-values-on-activate); open62541 (tests/peer62541) keeps one message per
 * session (--max-retransmission-queue 1).
 *
 * The loss is real and made without timing: the client is held (not driven) while a second
 * session writes ns=1;s=Scalar.Int32, then the marker ns=1;s=Scalar.Double; once the
 * PublishResponses carrying them lie in the client's socket, those bytes are taken away and the
 * connection is cut. The session is resumed; the Republish finds nothing, and a new marker value
 * brings the next message, which shows the hole.
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

#define START_TIMEOUT 60000
#define WAIT_MS       20000

typedef struct record {
    int32_t changed;     /* the value written inside the lost message */
    size_t changed_seen; /* how often it was delivered */
    double marker;       /* the marker's value last written */
    size_t marker_seen;  /* how often that value was delivered */
    size_t gaps;
    size_t other_gaps; /* of another reason than BadMessageNotAvailable */
    size_t values;     /* data changes delivered */
    size_t resumed;
} record;

static record rec;
static uint8_t sock_buf[1 << 20];

static void on_data(void *user_data, const uarc_data_change *c)
{
    record *r = user_data;
    const uarc_variant *v = &c->value->value;
    r->values++;
    if (!c->value->has_value || !v->data || v->is_array)
        return;
    if (c->item == 1 && v->type == UARC_T(Int32)) {
        r->changed_seen += *(const int32_t *)v->data == r->changed;
    } else if (c->item == 2 && v->type == UARC_T(Double)) {
        r->marker_seen += *(const double *)v->data == r->marker;
    }
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    (void)s;
    record *r = user_data;
    r->gaps++;
    r->other_gaps += reason != UARC_BadMessageNotAvailable;
    fprintf(stderr, "gap %u..%u %s\n", from, to, uarc_status_name(reason));
}

static void on_state(void *user_data, uarc_subscription *s, uarc_subscription_state state,
                     uarc_status status)
{
    (void)s, (void)status;
    record *r = user_data;
    r->resumed += state == UARC_SUBSCRIPTION_RESUMED;
}

/* Drives the client until *counter is at least `count` (or WAIT_MS passed). */
static void run_until(uarc_client *c, const size_t *counter, size_t count)
{
    int64_t end = peer_process_now_ms() + WAIT_MS;
    while (*counter < count && peer_process_now_ms() < end)
        uarc_client_process(c, 100);
    assert_true(*counter >= count);
}

/* Waits until the bytes `want` lie in the socket's receive buffer (the channel is None: its
 * bytes are plain), leaving them there; false after WAIT_MS. */
static bool wait_bytes(int fd, const uint8_t *want, size_t length)
{
    int64_t end = peer_process_now_ms() + WAIT_MS;
    while (peer_process_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        ssize_t n = recv(fd, sock_buf, sizeof sock_buf, MSG_PEEK | MSG_DONTWAIT);
        for (ssize_t i = 0; i + (ssize_t)length <= n; i++)
            if (memcmp(sock_buf + i, want, length) == 0)
                return true;
    }
    return false;
}

/* A variant's bytes: its type's id, then the value (little-endian). */
static size_t variant_bytes(uint8_t *out, uint8_t type_id, uint64_t bits, size_t size)
{
    out[0] = type_id;
    for (size_t i = 0; i < size; i++)
        out[1 + i] = (uint8_t)(bits >> (8 * i));
    return 1 + size;
}

static void write_value(uarc_client *writer, const char *node, const uarc_type *type, void *data)
{
    uarc_nodeid id = uarc_nodeid_string(1, node);
    uarc_variant v = {.type = type, .data = data};
    assert_int_equal(uarc_client_write_value(writer, &id, &v), UARC_Good);
    uarc_clear(&id, UARC_T(NodeId));
}

static void add_item(uarc_subscription *s, const char *node)
{
    uarc_monitored_item_params item = {.node = uarc_nodeid_string(1, node), .queue_size = 10};
    assert_int_equal(uarc_subscription_add_item(s, &item, NULL), UARC_Good);
    uarc_clear(&item.node, UARC_T(NodeId));
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

/* Writes the marker `value` and drives the client until it is delivered. */
static void marker_to(uarc_client *c, uarc_client *writer, double value)
{
    rec.marker = value;
    rec.marker_seen = 0;
    write_value(writer, "Scalar.Double", UARC_T(Double), &value);
    run_until(c, &rec.marker_seen, 1);
}

/* One run against `peer`: `value` and then the marker `marker` are written while the client is
 * held, each in its own message, and both messages are lost; after the resume the marker is
 * written again (marker + 1), which shows the hole. */
static void lose_a_change(const peer_process *peer, bool resend, int32_t value, double marker)
{
    memset(&rec, 0, sizeof rec);
    rec.changed = value;
    uarc_client_config ccfg = {.connect_timeout_ms = 60000, .request_timeout_ms = 30000};
    uarc_client *c = uarc_client_new(&ccfg);
    uarc_client *writer = uarc_client_new(&ccfg);
    assert_non_null(c);
    assert_non_null(writer);
    assert_int_equal(uarc_client_connect(c, peer->url), UARC_Good);
    assert_int_equal(uarc_client_connect(writer, peer->url), UARC_Good);
    /* keep-alives 4 s apart: none takes a PublishRequest while the client is held */
    uarc_subscription_config cfg = {
        .publishing_interval_ms = 100, .max_keepalive_count = 40, .no_resend_after_gap = !resend};
    cfg.callbacks = (uarc_subscription_callbacks){
        .data_change = on_data, .gap = on_gap, .state_changed = on_state, .user_data = &rec};
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(c, &cfg, &s), UARC_Good);
    add_item(s, "Scalar.Int32");
    add_item(s, "Scalar.Double");
    run_until(c, &rec.values, 2); /* both items' first values */
    for (int i = 0; i < 5; i++)
        uarc_client_process(c, 0); /* the PublishRequests that replace the answered ones */

    /* Held: each new value goes out in a PublishResponse that the client never reads (the two
     * PublishRequests it keeps out are answered), and the second pushes the first out of a
     * retransmission queue of one. */
    uint8_t bytes[9];
    int fd = uarc_client_fd(c);
    write_value(writer, "Scalar.Int32", UARC_T(Int32), &value);
    assert_true(wait_bytes(fd, bytes, variant_bytes(bytes, 6, (uint32_t)value, 4)));
    write_value(writer, "Scalar.Double", UARC_T(Double), &marker);
    uint64_t bits;
    memcpy(&bits, &marker, sizeof bits);
    assert_true(wait_bytes(fd, bytes, variant_bytes(bytes, 11, bits, 8)));
    ssize_t n = recv(fd, sock_buf, sizeof sock_buf, MSG_DONTWAIT);
    assert_true(n > 0);
    cut(c);

    assert_int_equal(uarc_client_connect(c, peer->url), UARC_Good);
    assert_true(uarc_client_session_resumed(c));
    run_until(c, &rec.resumed, 1);
    marker_to(c, writer, marker + 1);
    assert_true(rec.gaps >= 1);
    assert_int_equal(rec.other_gaps, 0);
    if (resend) {
        /* ResendData: the value changed inside the gap arrives; the marker, unchanged since it
         * was delivered, is not delivered again. */
        run_until(c, &rec.changed_seen, 1);
        assert_int_equal(rec.marker_seen, 1);
    } else {
        marker_to(c, writer, marker + 2); /* nothing brings it: a later marker comes, it not */
    }
    assert_int_equal(rec.changed_seen, resend ? 1 : 0);
    assert_int_equal(rec.other_gaps, 0);
    uarc_client_disconnect(writer);
    uarc_client_delete(writer);
    uarc_client_delete(c);
}

static peer_process node_peer = PEER_PROCESS_INIT;

static void test_node_resent(void **state)
{
    (void)state;
    lose_a_change(&node_peer, true, 0x5A5A0001, 10.5);
}

static void test_node_lost_without_resend(void **state)
{
    (void)state;
    lose_a_change(&node_peer, false, 0x5A5A0002, 20.5);
}

#ifdef UARC_PEER62541
static peer_process o62_peer = PEER_PROCESS_INIT;

static void test_open62541_resent(void **state)
{
    (void)state;
    lose_a_change(&o62_peer, true, 0x5A5A0003, 30.5);
}

static void test_open62541_lost_without_resend(void **state)
{
    (void)state;
    lose_a_change(&o62_peer, false, 0x5A5A0004, 40.5);
}
#endif

static int group_setup(void **state)
{
    (void)state;
    /* node-opcua keeps no sent message (it keeps 100) and re-sends no value at ActivateSession
     * (it would re-send each item's last one, which would bring the lost value back anyway) */
    const char *args[] = {"--uri", "urn:uarc:resend-node",    "--no-big", "--retransmission-queue",
                          "0",     "--no-values-on-activate", NULL};
    if (!peer_process_spawn(&node_peer, args) ||
        !peer_process_wait_started(&node_peer, START_TIMEOUT)) {
        fprintf(stderr, "the node-opcua peer did not start\n");
        return -1;
    }
#ifdef UARC_PEER62541
    /* open62541 as it is, with a retransmission queue of one message per session */
    char *o62_args[] = {
        UARC_PEER62541, "--uri", "urn:uarc:resend-o62", "--max-retransmission-queue", "1", NULL};
    if (!peer_process_spawn_program(&o62_peer, o62_args) ||
        !peer_process_wait_started(&o62_peer, START_TIMEOUT)) {
        fprintf(stderr, "the open62541 peer did not start\n");
        return -1;
    }
#endif
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    peer_process_stop(&node_peer);
#ifdef UARC_PEER62541
    peer_process_stop(&o62_peer);
#endif
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_resent),
        cmocka_unit_test(test_node_lost_without_resend),
#ifdef UARC_PEER62541
        cmocka_unit_test(test_open62541_resent),
        cmocka_unit_test(test_open62541_lost_without_resend),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
