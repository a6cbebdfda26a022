/*
 * Server.ResendData against a real node-opcua server (tests/peer) that keeps no retransmission
 * queue (--retransmission-queue 0) and does not re-send values at ActivateSession
 * (--no-values-on-activate, as open62541): a value that changed only inside a lost message
 * arrives after the gap, and without ResendData (config.no_resend_after_gap) it never does.
 *
 * The loss is real and made without timing: the client is held (not driven) while a second
 * session writes ns=1;s=Scalar.Int32; once the PublishResponse carrying the new value lies in the
 * client's socket (the channel is None: its bytes are plain), those bytes are taken away and the
 * connection is cut. The session is resumed; the Republish of that message finds nothing, and a
 * write of ns=1;s=Scalar.Double (the marker) brings the next message, which shows the hole.
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

#define PEER_URI      "urn:uarc:resend-interop"
#define START_TIMEOUT 60000
#define WAIT_MS       20000

static peer_process the_peer = PEER_PROCESS_INIT;

typedef struct record {
    int32_t changed;     /* the value written inside the lost message */
    size_t changed_seen; /* how often it was delivered */
    double marker;       /* the marker's value last written */
    size_t marker_seen;  /* how often that value was delivered */
    size_t gaps;
    uarc_status gap_reason;
    size_t values; /* data changes delivered */
    size_t resumed;
} record;

static record rec;

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
    r->gap_reason = reason;
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

/* Waits until the bytes `want` lie in the socket's receive buffer, then takes everything there
 * away from the client, as a broken network would; false after WAIT_MS. */
static bool swallow_bytes(int fd, const uint8_t *want, size_t length)
{
    static uint8_t buf[1 << 20];
    int64_t end = peer_process_now_ms() + WAIT_MS;
    while (peer_process_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        for (ssize_t i = 0; i + (ssize_t)length <= n; i++)
            if (memcmp(buf + i, want, length) == 0)
                return recv(fd, buf, (size_t)n, MSG_DONTWAIT) == n;
    }
    return false;
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

/* One run: `value` written inside the lost message, the marker written after the resume. */
static void lose_a_change(bool resend, int32_t value, double marker)
{
    memset(&rec, 0, sizeof rec);
    rec.changed = value;
    uarc_client_config ccfg = {.connect_timeout_ms = 60000, .request_timeout_ms = 30000};
    uarc_client *c = uarc_client_new(&ccfg);
    uarc_client *writer = uarc_client_new(&ccfg);
    assert_non_null(c);
    assert_non_null(writer);
    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    assert_int_equal(uarc_client_connect(writer, the_peer.url), UARC_Good);
    /* keep-alives 2 s apart: none takes a PublishRequest while the client is held */
    uarc_subscription_config cfg = {
        .publishing_interval_ms = 50, .max_keepalive_count = 40, .no_resend_after_gap = !resend};
    cfg.callbacks = (uarc_subscription_callbacks){
        .data_change = on_data, .gap = on_gap, .state_changed = on_state, .user_data = &rec};
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(c, &cfg, &s), UARC_Good);
    add_item(s, "Scalar.Int32");
    add_item(s, "Scalar.Double");
    run_until(c, &rec.values, 2); /* both items' first values */
    for (int i = 0; i < 5; i++)
        uarc_client_process(c, 0); /* the PublishRequests that replace the answered ones */

    /* Held: the new value goes out in a PublishResponse that the client never reads. */
    write_value(writer, "Scalar.Int32", UARC_T(Int32), &value);
    uint32_t u = (uint32_t)value;
    const uint8_t variant[5] = {6 /* Int32 */, (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16),
                                (uint8_t)(u >> 24)};
    assert_true(swallow_bytes(uarc_client_fd(c), variant, sizeof variant));
    shutdown(uarc_client_fd(c), SHUT_RDWR);
    int64_t end = peer_process_now_ms() + WAIT_MS;
    while (uarc_client_state_get(c) != UARC_CLIENT_DISCONNECTED && peer_process_now_ms() < end)
        uarc_client_process(c, 100);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);

    assert_int_equal(uarc_client_connect(c, the_peer.url), UARC_Good);
    assert_true(uarc_client_session_resumed(c));
    run_until(c, &rec.resumed, 1);
    rec.marker = marker;
    write_value(writer, "Scalar.Double", UARC_T(Double), &marker);
    run_until(c, &rec.marker_seen, 1);
    assert_int_equal(rec.gaps, 1);
    assert_int_equal(rec.gap_reason, UARC_BadMessageNotAvailable);
    if (resend) {
        /* ResendData: the value changed inside the gap arrives; the marker, unchanged since it
         * was delivered, is not delivered again. */
        run_until(c, &rec.changed_seen, 1);
        assert_int_equal(rec.marker_seen, 1);
    } else {
        /* Nothing brings it: a second marker comes, the lost value does not. */
        rec.marker = marker + 1;
        rec.marker_seen = 0;
        write_value(writer, "Scalar.Double", UARC_T(Double), &rec.marker);
        run_until(c, &rec.marker_seen, 1);
    }
    assert_int_equal(rec.changed_seen, resend ? 1 : 0);
    assert_int_equal(rec.gaps, 1);
    uarc_client_disconnect(writer);
    uarc_client_delete(writer);
    uarc_client_delete(c);
}

static void test_value_changed_in_a_gap_is_resent(void **state)
{
    (void)state;
    lose_a_change(true, 0x5A5A0001, 10.5);
}

static void test_without_resend_it_is_lost(void **state)
{
    (void)state;
    lose_a_change(false, 0x5A5A0002, 20.5);
}

static int group_setup(void **state)
{
    (void)state;
    const char *args[] = {
        "--uri", PEER_URI, "--no-big", "--retransmission-queue", "0", "--no-values-on-activate",
        NULL};
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
        cmocka_unit_test(test_value_changed_in_a_gap_is_resent),
        cmocka_unit_test(test_without_resend_it_is_lost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
