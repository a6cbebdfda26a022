/*
 * fleetsim's secured server (Basic256Sha256) against uarc's own client in byte mode: the bytes of
 * one go to the other with an injected time, no sockets. The client pins the server's certificate
 * and expects its ServerUri in it, as uarc listen does with the certificate from GetEndpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"
#include "uarc/client.h"
#include "uarc/nodeids.h"

#define T0          1700000000000LL
#define B256S256    "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
#define LIFETIME_MS 60000u

static sim_security *security; /* one key for the whole file: making it takes a while */

typedef struct pair {
    sim_config config;
    sim_stats stats;
    sim_server server;
    sim_conn conn;
    uarc_client *client;
    int64_t now;
    bool conn_open; /* false once fleetsim ended the connection */
} pair;

static int setup_key(void **state)
{
    (void)state;
    security = sim_security_new(B256S256);
    return security ? 0 : -1;
}

static int teardown_key(void **state)
{
    (void)state;
    sim_security_delete(security);
    return 0;
}

/* Moves bytes both ways until neither side has any left. */
static void pump(pair *p)
{
    for (int round = 0; round < 100; round++) {
        bool moved = false;
        const uint8_t *data;
        size_t n = uarc_client_output_bytes(p->client, &data);
        if (n && p->conn_open) {
            uint8_t *copy = malloc(n);
            assert_non_null(copy);
            memcpy(copy, data, n);
            uarc_client_output_consumed(p->client, n);
            p->conn_open = sim_conn_receive(&p->conn, copy, n, p->now);
            free(copy);
            moved = true;
        }
        if (p->conn.out.length) {
            sim_buf out = p->conn.out;
            p->conn.out = (sim_buf){0};
            uarc_client_receive_bytes(p->client, out.data, out.length, p->now);
            sim_buf_free(&out);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("the two sides never went quiet");
}

static void start(pair *p, uarc_MessageSecurityMode mode)
{
    memset(p, 0, sizeof *p);
    p->config.stats = &p->stats;
    p->config.security = security;
    p->now = T0;
    assert_true(sim_server_init(&p->server, &p->config, 7, p->now));
    uarc_bytestring cert = sim_server_certificate(&p->server);
    assert_true(cert.length > 0);
    uarc_client_config cfg = {
        .security_policy_uri = B256S256,
        .security_mode = mode,
        .generate_certificate = true,
        .application_uri = "urn:test:fleetsim-secure",
        .server_certificate = cert.data,
        .server_certificate_length = cert.length,
        .expected_server_uri = p->server.uri,
        .secure_channel_lifetime_ms = LIFETIME_MS,
    };
    p->client = uarc_client_new(&cfg);
    assert_non_null(p->client);
    sim_conn_start(&p->conn, &p->server, p->now);
    p->conn_open = true;
    sim_buf_consume(&p->conn.out, p->conn.out.length); /* the RHE: byte mode starts at HEL */
    assert_int_equal(uarc_client_start_bytes(p->client, p->server.endpoint, p->now), UARC_Good);
    pump(p);
}

static void stop(pair *p)
{
    uarc_client_delete(p->client);
    sim_conn_closed(&p->conn);
    sim_server_clear(&p->server);
}

typedef struct answer {
    bool done;
    uarc_status status;
    uarc_status value_status;
} answer;

static void on_read(void *user_data, uarc_status status, void *response)
{
    answer *a = user_data;
    a->done = true;
    a->status = status;
    const uarc_ReadResponse *r = response;
    a->value_status = r && r->resultsSize == 1 ? r->results[0].status : UARC_BadUnexpectedError;
}

/* Reads CurrentTime through the channel; the answer's status. */
static uarc_status read_time(pair *p)
{
    uarc_ReadValueId node = {.nodeId =
                                 uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime),
                             .attributeId = 13};
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    request.nodesToRead = &node;
    request.nodesToReadSize = 1;
    answer a = {0};
    assert_int_equal(uarc_client_send(p->client, &request, UARC_T(ReadRequest),
                                      UARC_T(ReadResponse), 0, on_read, &a, NULL),
                     UARC_Good);
    pump(p);
    assert_true(a.done);
    return a.status == UARC_Good ? a.value_status : a.status;
}

static void handshake(uarc_MessageSecurityMode mode)
{
    pair p;
    start(&p, mode);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    assert_true(p.conn_open);
    assert_int_equal(p.conn.mode, mode);
    assert_int_equal(p.stats.activations, 1);
    assert_int_equal(p.stats.protocol_errors, 0);
    assert_int_equal(read_time(&p), UARC_Good);

    /* Past 75 % of the token's lifetime the client renews; the new token carries the next read,
     * and the sessions' keep-alives meanwhile go through the old one. */
    uint32_t token = p.conn.token_id;
    p.now += LIFETIME_MS * 8 / 10;
    uarc_client_tick(p.client, p.now);
    pump(&p);
    assert_int_equal(p.conn.token_id, token + 1);
    assert_int_equal(read_time(&p), UARC_Good);
    assert_true(sim_conn_tick(&p.conn, p.now));
    assert_int_equal(p.stats.protocol_errors, 0);
    stop(&p);
}

static void sign_and_encrypt(void **state)
{
    (void)state;
    handshake(UARC_MessageSecurityMode_SignAndEncrypt);
}

static void sign_only(void **state)
{
    (void)state;
    handshake(UARC_MessageSecurityMode_Sign);
}

/* A request whose signature does not match ends the channel; nothing is answered. */
static void tampered_request(void **state)
{
    (void)state;
    pair p;
    start(&p, UARC_MessageSecurityMode_SignAndEncrypt);
    assert_int_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_State),
                             .attributeId = 13};
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    request.nodesToRead = &node;
    request.nodesToReadSize = 1;
    answer a = {0};
    assert_int_equal(uarc_client_send(p.client, &request, UARC_T(ReadRequest), UARC_T(ReadResponse),
                                      0, on_read, &a, NULL),
                     UARC_Good);
    const uint8_t *data;
    size_t n = uarc_client_output_bytes(p.client, &data);
    assert_true(n > 64);
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, data, n);
    uarc_client_output_consumed(p.client, n);
    copy[n - 1] ^= 0x01; /* the last byte of the encrypted signature */
    size_t answered = p.stats.requests;
    assert_false(sim_conn_receive(&p.conn, copy, n, p.now));
    free(copy);
    assert_int_equal(p.conn.state, SIM_CONN_CLOSED);
    assert_int_equal(p.conn.end_status, UARC_BadSecurityChecksFailed);
    assert_int_equal(p.stats.requests, answered);
    assert_int_equal(p.stats.protocol_errors, 1);
    stop(&p);
}

/* Without --security-policy a secured OPN is refused as before. */
static void none_only_refuses(void **state)
{
    (void)state;
    pair p;
    memset(&p, 0, sizeof p);
    p.config.stats = &p.stats;
    p.now = T0;
    assert_true(sim_server_init(&p.server, &p.config, 1, p.now));
    uarc_bytestring none = sim_server_certificate(&p.server);
    assert_int_equal(none.length, 0);
    /* the client needs some certificate to pin: the one of a secured twin */
    sim_config secured = {.security = security};
    sim_server twin;
    assert_true(sim_server_init(&twin, &secured, 1, p.now));
    uarc_bytestring cert = sim_server_certificate(&twin);
    uarc_client_config cfg = {
        .security_policy_uri = B256S256,
        .generate_certificate = true,
        .server_certificate = cert.data,
        .server_certificate_length = cert.length,
    };
    p.client = uarc_client_new(&cfg);
    assert_non_null(p.client);
    sim_conn_start(&p.conn, &p.server, p.now);
    p.conn_open = true;
    sim_buf_consume(&p.conn.out, p.conn.out.length);
    assert_int_equal(uarc_client_start_bytes(p.client, p.server.endpoint, p.now), UARC_Good);
    pump(&p);
    assert_false(p.conn_open);
    assert_int_equal(p.conn.end_status, UARC_BadSecurityPolicyRejected);
    assert_int_not_equal(uarc_client_state_get(p.client), UARC_CLIENT_SESSION_ACTIVE);
    sim_server_clear(&twin);
    stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_and_encrypt),
        cmocka_unit_test(sign_only),
        cmocka_unit_test(tampered_request),
        cmocka_unit_test(none_only_refuses),
    };
    return cmocka_run_group_tests(tests, setup_key, teardown_key);
}
