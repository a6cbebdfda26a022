/*
 * Reverse Connect through the library's API against node-opcua 2.186.4 servers that dial it:
 * one server taken with uarc_listener_accept_from() and connected with uarc_reverse_connect();
 * GetEndpoints over the inbound socket, then a session on that same socket; the hub with three
 * servers, a Read on each; the hub's lost/connected callbacks when a server drops its
 * connection (the session is resumed) and when it is restarted (a new session).
 *
 * Three peers are started once for the whole program (tests/peer/server.mjs through
 * peer_process.h); their stdin is our pipe, so they die with this process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "peer_process.h"
#include "uarc/uarc.h"
#include "uarc/reverse.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#define URI_A         "urn:rci-a"
#define URI_B         "urn:rci-b"
#define URI_C         "urn:rci-c"
#define START_TIMEOUT 60000
#define NONE_URI      "http://opcfoundation.org/UA/SecurityPolicy#None"

static const char *const uris[3] = {URI_A, URI_B, URI_C};

typedef struct hub_log {
    int connected[3], restored[3], resumed[3], lost[3], failed[3];
    uarc_status lost_status[3];
} hub_log;

typedef struct fixture {
    uarc_allowlist *allowlist;
    uarc_listener *listener;
    char listener_url[64];
    peer_process peers[3];
    uarc_reverse_hub *hub; /* made by the three-server test, used by the next ones */
    hub_log log;
} fixture;

static int index_of(const char *uri)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(uri, uris[i]) == 0)
            return i;
    return -1;
}

static bool spawn_peer(fixture *fx, int i)
{
    const char *args[] = {"--uri",
                          uris[i],
                          "--reverse",
                          fx->listener_url,
                          "--reconnect-delay",
                          "100",
                          "--max-reconnect-delay",
                          "400",
                          "--connection-timeout",
                          "10000",
                          "--no-big",
                          NULL};
    return peer_process_spawn(&fx->peers[i], args);
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    fixture *fx = calloc(1, sizeof *fx);
    for (int i = 0; i < 3; i++)
        fx->peers[i] = (peer_process)PEER_PROCESS_INIT;
    *state = fx;
    fx->allowlist = uarc_allowlist_new();
    for (int i = 0; i < 3; i++)
        uarc_allowlist_add(fx->allowlist, uris[i], NULL);
    const char *addresses[] = {"127.0.0.1"};
    uarc_listener_config lo = {
        .bind_addresses = addresses, .bind_address_count = 1, .allowlist = fx->allowlist};
    fx->listener = uarc_listener_new(&lo);
    if (!fx->listener || uarc_listener_listen(fx->listener) != UARC_Good)
        return -1;
    snprintf(fx->listener_url, sizeof fx->listener_url, "opc.tcp://127.0.0.1:%u",
             uarc_listener_port(fx->listener));
    for (int i = 0; i < 3; i++)
        if (!spawn_peer(fx, i))
            return -1;
    for (int i = 0; i < 3; i++)
        if (!peer_process_wait_started(&fx->peers[i], START_TIMEOUT))
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    uarc_reverse_hub_delete(fx->hub);
    for (int i = 0; i < 3; i++)
        peer_process_stop(&fx->peers[i]);
    uarc_listener_delete(fx->listener);
    uarc_allowlist_delete(fx->allowlist);
    free(fx);
    return 0;
}

/* ---- helpers ---- */

static void read_server_time(uarc_client *client)
{
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime);
    uarc_data_value value;
    uarc_status status = uarc_client_read_attribute(client, &node, UARC_ATTRIBUTEID_Value, &value);
    if (status != UARC_Good)
        fail_msg("Read i=2258: %s (%s)", uarc_status_name(status), uarc_client_error(client));
    assert_int_equal(value.status, UARC_Good);
    assert_true(value.has_value);
    assert_ptr_equal(value.value.type, UARC_T(DateTime));
    uarc_clear(&value, UARC_T(DataValue));
}

/*
 * accept_from + uarc_reverse_connect. A queued socket may be one the server already gave up
 * (it closes a dial that got no HEL within 10 s and dials again): then the next one is taken.
 */
static uarc_client *connect_from(fixture *fx, const char *uri, const uarc_client_config *cfg)
{
    int64_t deadline = peer_process_now_ms() + 30000;
    for (int attempt = 0; attempt < 5; attempt++) {
        uarc_reverse_connection conn;
        uarc_reverse_connection_init(&conn);
        int left = (int)(deadline - peer_process_now_ms());
        uarc_status status = uarc_listener_accept_from(fx->listener, uri, NULL, left, &conn);
        if (status != UARC_Good)
            fail_msg("accept_from %s: %s", uri, uarc_status_name(status));
        assert_string_equal(conn.server_uri, uri);
        assert_string_equal(conn.endpoint_url, fx->peers[index_of(uri)].url);
        uarc_client *client = uarc_client_new(cfg);
        assert_non_null(client);
        status = uarc_reverse_connect(client, &conn);
        uarc_reverse_connection_clear(&conn);
        if (status == UARC_Good)
            return client;
        fprintf(stderr, "note: %s: %s, taking the next connection\n", uri,
                uarc_client_error(client));
        uarc_client_delete(client);
    }
    fail_msg("no connection from %s", uri);
    return NULL;
}

/* ---- tests ---- */

static void test_accept_from_and_read(void **state)
{
    fixture *fx = *state;
    uarc_client *client = connect_from(fx, URI_A, NULL);
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_SESSION_ACTIVE);
    assert_string_equal(uarc_client_endpoint_url(client), fx->peers[0].url);
    assert_string_equal(uarc_client_security_policy_uri(client), NONE_URI);
    read_server_time(client);
    assert_int_equal(uarc_client_disconnect(client), UARC_Good);
    uarc_client_delete(client);
}

static void test_get_endpoints_then_session(void **state)
{
    fixture *fx = *state;
    uarc_client_config cfg = {.no_session = true};
    uarc_client *client = connect_from(fx, URI_B, &cfg);
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_CHANNEL_OPEN);
    int fd = uarc_client_fd(client);

    uarc_GetEndpointsResponse resp;
    assert_int_equal(uarc_client_get_endpoints(client, &resp), UARC_Good);
    assert_true(resp.endpointsSize >= 1);
    bool found = false;
    for (size_t i = 0; i < resp.endpointsSize; i++) {
        const uarc_EndpointDescription *e = &resp.endpoints[i];
        if (!uarc_string_equal_cstr(&e->securityPolicyUri, NONE_URI))
            continue;
        found = true;
        assert_int_equal(e->securityMode, UARC_MessageSecurityMode_None);
        assert_true(uarc_string_equal_cstr(&e->server.applicationUri, URI_B));
        /* node-opcua's generated RSA certificate, DER: a SEQUENCE of some hundred bytes. */
        assert_true(e->serverCertificate.length > 300);
        assert_int_equal(e->serverCertificate.data[0], 0x30);
    }
    assert_true(found);
    uarc_clear(&resp, UARC_T(GetEndpointsResponse));

    /* Go on to a session over the same socket: no second dial. */
    uarc_status status = uarc_client_create_session(client);
    if (status != UARC_Good)
        fail_msg("create_session: %s", uarc_client_error(client));
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(uarc_client_fd(client), fd);
    read_server_time(client);
    uarc_client_disconnect(client);
    uarc_client_delete(client);
}

/* node-opcua drops a reverse-connected channel that hears nothing for its --connection-timeout
 * (10 s here). A client with the default configuration keeps it: its idle keep-alive comes at
 * most every 5 s. Idle 12 s, processing, then a Read on the same socket. */
static void test_default_keepalive_outlasts_idle_timeout(void **state)
{
    fixture *fx = *state;
    uarc_client *client = connect_from(fx, URI_C, NULL);
    int fd = uarc_client_fd(client);
    int64_t end = peer_process_now_ms() + 12000;
    while (peer_process_now_ms() < end) {
        uarc_status status = uarc_client_process(client, (int)(end - peer_process_now_ms()));
        if (uarc_status_is_bad(status))
            fail_msg("idle: %s (%s)", uarc_status_name(status), uarc_client_error(client));
    }
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(uarc_client_fd(client), fd);
    read_server_time(client);
    uarc_client_disconnect(client);
    uarc_client_delete(client);
}

static void on_connected(void *user_data, uarc_client *client, const char *server_uri,
                         bool restored, bool resumed)
{
    hub_log *log = user_data;
    (void)client;
    int i = index_of(server_uri);
    assert_true(i >= 0);
    fprintf(stderr, "note: hub: %s connected%s%s\n", server_uri, restored ? ", restored" : "",
            restored && resumed ? ", session resumed" : "");
    log->connected[i]++;
    log->restored[i] += restored;
    log->resumed[i] += restored && resumed;
}

static void on_failed(void *user_data, uarc_client *client, const char *server_uri,
                      uarc_status status, const char *detail)
{
    hub_log *log = user_data;
    (void)client;
    fprintf(stderr, "note: hub: %s failed: %s (%s)\n", server_uri, uarc_status_name(status),
            detail);
    log->failed[index_of(server_uri)]++;
}

static void on_lost(void *user_data, uarc_client *client, const char *server_uri,
                    uarc_status status)
{
    hub_log *log = user_data;
    (void)client;
    int i = index_of(server_uri);
    fprintf(stderr, "note: hub: %s lost: %s\n", server_uri, uarc_status_name(status));
    log->lost[i]++;
    log->lost_status[i] = status;
}

static void test_hub_three_servers(void **state)
{
    fixture *fx = *state;
    /* node-opcua drops a reverse-connected channel that receives nothing for its
     * --connection-timeout (10 s here): a keep-alive every second keeps idle sessions up. */
    uarc_reverse_hub_config ho = {.listener = fx->listener,
                                  .client = {.keepalive_interval_ms = 1000},
                                  .callbacks = {.connected = on_connected,
                                                .failed = on_failed,
                                                .lost = on_lost,
                                                .user_data = &fx->log}};
    fx->hub = uarc_reverse_hub_new(&ho);
    assert_non_null(fx->hub);
    uarc_client *clients[3];
    for (int i = 0; i < 3; i++) {
        uarc_status status = uarc_reverse_hub_wait(fx->hub, uris[i], 30000, &clients[i]);
        if (status != UARC_Good)
            fail_msg("hub_wait %s: %s", uris[i], uarc_status_name(status));
    }
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(uarc_reverse_hub_client(fx->hub, uris[i]), clients[i]);
        assert_string_equal(uarc_client_endpoint_url(clients[i]), fx->peers[i].url);
        read_server_time(clients[i]);
        assert_int_equal(fx->log.connected[i], 1);
        assert_int_equal(fx->log.restored[i], 0);
    }
    assert_ptr_not_equal(clients[0], clients[1]);
    assert_ptr_not_equal(clients[1], clients[2]);
    assert_int_equal(uarc_reverse_hub_count(fx->hub), 3);
}

/* Processes the hub until `*counter` reaches `value` (at most ms). */
static void hub_until(fixture *fx, const int *counter, int value, int ms, const char *what)
{
    int64_t deadline = peer_process_now_ms() + ms;
    while (*counter < value && peer_process_now_ms() < deadline)
        assert_false(uarc_status_is_bad(uarc_reverse_hub_process(fx->hub, 100)));
    if (*counter < value)
        fail_msg("%s: not within %d ms", what, ms);
}

/* A Read on the hub's client for `uri`, once the hub has it connected. */
static void read_through_hub(fixture *fx, const char *uri)
{
    uarc_client *client;
    uarc_status status = uarc_reverse_hub_wait(fx->hub, uri, 20000, &client);
    if (status != UARC_Good)
        fail_msg("hub_wait %s: %s", uri, uarc_status_name(status));
    read_server_time(client);
}

static void test_hub_dropped_connection_resumes(void **state)
{
    fixture *fx = *state;
    assert_non_null(fx->hub);
    hub_log *log = &fx->log;
    uarc_client *before = uarc_reverse_hub_client(fx->hub, URI_A);
    kill(fx->peers[0].pid, SIGUSR2);
    hub_until(fx, &log->lost[0], 1, 10000, "lost after the drop");
    assert_true(uarc_status_is_bad(log->lost_status[0]));
    hub_until(fx, &log->restored[0], 1, 15000, "connected again after the re-dial");
    assert_int_equal(log->resumed[0], 1); /* the same session, re-activated */
    uarc_client *after = uarc_reverse_hub_client(fx->hub, URI_A);
    assert_ptr_equal(after, before);
    assert_true(uarc_client_session_resumed(after));
    read_server_time(after);
    /* The others were not disturbed. */
    for (int i = 1; i < 3; i++) {
        assert_int_equal(log->lost[i], 0);
        read_through_hub(fx, uris[i]);
    }
}

static void test_hub_restarted_server_new_session(void **state)
{
    fixture *fx = *state;
    assert_non_null(fx->hub);
    hub_log *log = &fx->log;
    int lost = log->lost[0], resumed = log->resumed[0];
    /* The hub keeps running while the peer shuts down and while the new one starts, so the
     * other servers' sessions see their keep-alives. */
    kill(fx->peers[0].pid, SIGTERM);
    hub_until(fx, &log->lost[0], lost + 1, 10000, "lost after the stop");
    assert_true(uarc_status_is_bad(log->lost_status[0]));
    peer_process_stop(&fx->peers[0]); /* reaps it (it is exiting already) */

    int restored = log->restored[0];
    assert_true(spawn_peer(fx, 0));
    hub_until(fx, &log->restored[0], restored + 1, START_TIMEOUT, "connected after the restart");
    assert_true(peer_process_wait_started(&fx->peers[0], START_TIMEOUT));
    assert_int_equal(log->resumed[0], resumed); /* not resumed: a new session */
    uarc_client *client = uarc_reverse_hub_client(fx->hub, URI_A);
    assert_false(uarc_client_session_resumed(client));
    assert_string_equal(uarc_client_endpoint_url(client), fx->peers[0].url);
    read_server_time(client);
    for (int i = 1; i < 3; i++)
        read_through_hub(fx, uris[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_from_and_read),
        cmocka_unit_test(test_get_endpoints_then_session),
        cmocka_unit_test(test_default_keepalive_outlasts_idle_timeout),
        cmocka_unit_test(test_hub_three_servers),
        cmocka_unit_test(test_hub_dropped_connection_resumes),
        cmocka_unit_test(test_hub_restarted_server_new_session),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
