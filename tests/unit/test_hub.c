/*
 * The hub's bookkeeping when callbacks release servers: scripted servers on loopback, driven
 * from the test's own thread (the test writes each server's bytes, then runs the hub).
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_server.h"
#include "hub_peer.h"
#include "reverse/hub_internal.h"
#include "uarc/uarc.h"

typedef struct events {
    uarc_reverse_hub *hub;
    int connected;
    char names[4][32];
} events;

/* Reports the server, then releases it, as `uarc listen` does without --stay. */
static void on_connected(void *user_data, uarc_client *client, const char *server_uri,
                         bool restored, bool resumed)
{
    events *e = user_data;
    (void)client, (void)restored, (void)resumed;
    if (e->connected < 4)
        snprintf(e->names[e->connected], sizeof e->names[0], "%s", server_uri);
    e->connected++;
    char uri[32];
    snprintf(uri, sizeof uri, "%s", server_uri);
    assert_true(uarc_reverse_hub_release(e->hub, uri));
}

/* Two servers whose channels open in the same round: each is reported in that round, even
 * though the first one's callback releases it (which moves the second in the hub's table). */
static void test_release_in_callback_does_not_skip_next(void **state)
{
    (void)state;
    uarc_allowlist *allow = uarc_allowlist_new();
    assert_int_equal(uarc_allowlist_add(allow, "urn:a", NULL), UARC_Good);
    assert_int_equal(uarc_allowlist_add(allow, "urn:b", NULL), UARC_Good);
    uarc_listener_config lo = {.allowlist = allow,
                               .bind_addresses = (const char *[]){"127.0.0.1"},
                               .bind_address_count = 1};
    uarc_listener *listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(listener), UARC_Good);
    events e = {0};
    uarc_reverse_hub_config ho = {.listener = listener,
                                  .client = {.no_session = true},
                                  .callbacks = {.connected = on_connected, .user_data = &e}};
    e.hub = uarc_reverse_hub_new(&ho);
    assert_non_null(e.hub);

    int fd[2];
    const char *uris[2] = {"urn:a", "urn:b"};
    for (int i = 0; i < 2; i++) {
        fd[i] = connect_to(uarc_listener_port(listener));
        fake_frame f;
        frame_rhe(&f, uris[i], "opc.tcp://127.0.0.1:4840");
        send_all(fd[i], f.bytes, f.length);
    }
    for (int i = 0; i < 100 && uarc_reverse_hub_count(e.hub) < 2; i++)
        uarc_reverse_hub_process(e.hub, 20);
    assert_int_equal(uarc_reverse_hub_count(e.hub), 2);
    uint8_t buf[4096];
    for (int i = 0; i < 2; i++) {
        read_message(fd[i], buf, sizeof buf);
        assert_memory_equal(buf, "HELF", 4);
        send_ack(fd[i]);
    }
    for (int i = 0; i < 100 && !(readable(fd[0]) && readable(fd[1])); i++)
        uarc_reverse_hub_process(e.hub, 20);
    for (int i = 0; i < 2; i++)
        answer_opn(fd[i]);
    /* Both answers are in the kernel before the round that handles them: poll the hub's own
     * descriptors, without processing, until two of them are readable. */
    for (int round = 0; round < 500; round++) {
        struct pollfd fds[8];
        size_t n = uarc_reverse_hub_poll_fds(e.hub, fds, 8);
        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++)
            fds[i].events = POLLIN;
        int ready = poll(fds, (nfds_t)n, 10);
        if (ready >= 2)
            break;
    }
    assert_int_equal(uarc_reverse_hub_process(e.hub, 1000), UARC_Good);
    assert_int_equal(e.connected, 2);
    assert_string_equal(e.names[0], "urn:a");
    assert_string_equal(e.names[1], "urn:b");
    assert_int_equal(uarc_reverse_hub_count(e.hub), 0);

    for (int i = 0; i < 2; i++)
        close(fd[i]);
    uarc_reverse_hub_delete(e.hub);
    uarc_listener_delete(listener);
    uarc_allowlist_delete(allow);
}

/* ---- several sockets for one ServerUri ---- */

typedef struct record {
    uarc_reverse_hub *hub;
    int connected, restored, failed, lost, dropped, backoffs;
    uarc_status failed_status;
    uint32_t backoff_delay;
    uarc_status lost_status;
    char lost_reason[64], lost_kind[16], lost_peer[UARC_PEER_SIZE];
    char drop_uri[32], drop_peer[UARC_PEER_SIZE], drop_reason[160];
    uarc_status drop_status;
} record;

static void rec_connected(void *user_data, uarc_client *client, const char *server_uri,
                          bool restored, bool resumed)
{
    record *r = user_data;
    (void)client, (void)server_uri, (void)resumed;
    r->connected++;
    r->restored += restored;
}

static void rec_failed(void *user_data, uarc_client *client, const char *server_uri,
                       uarc_status status, const char *detail)
{
    record *r = user_data;
    (void)client, (void)server_uri, (void)detail;
    r->failed++;
    r->failed_status = status;
}

static void rec_backoff(void *user_data, const char *server_uri, uarc_status status,
                        uint32_t delay_ms, uint32_t refused)
{
    record *r = user_data;
    (void)server_uri, (void)status, (void)refused;
    r->backoffs++;
    r->backoff_delay = delay_ms;
}

static void rec_lost(void *user_data, uarc_client *client, const char *server_uri,
                     uarc_status status)
{
    record *r = user_data;
    (void)server_uri;
    r->lost++;
    r->lost_status = status;
    snprintf(r->lost_reason, sizeof r->lost_reason, "%s", uarc_client_end_reason(client));
    snprintf(r->lost_kind, sizeof r->lost_kind, "%s", uarc_client_end_kind(client));
    snprintf(r->lost_peer, sizeof r->lost_peer, "%s", uarc_client_peer(client));
}

static void rec_dropped(void *user_data, const char *server_uri, const char *peer,
                        uarc_status status, const char *reason)
{
    record *r = user_data;
    r->dropped++;
    r->drop_status = status;
    snprintf(r->drop_uri, sizeof r->drop_uri, "%s", server_uri);
    snprintf(r->drop_peer, sizeof r->drop_peer, "%s", peer);
    snprintf(r->drop_reason, sizeof r->drop_reason, "%s", reason);
}

typedef struct fixture {
    uarc_allowlist *allow;
    uarc_listener *listener;
    record r;
} fixture;

#define FLOODERS 8

/* A listener that accepts urn:honest and urn:flood0..7, and a hub over it whose clients share
 * `budget` (NULL: the hub's own). */
static void fixture_open_hub(fixture *f, uarc_reverse_hub_config ho)
{
    memset(f, 0, sizeof *f);
    f->allow = uarc_allowlist_new();
    assert_int_equal(uarc_allowlist_add(f->allow, "urn:honest", NULL), UARC_Good);
    for (int i = 0; i < FLOODERS; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "urn:flood%d", i);
        assert_int_equal(uarc_allowlist_add(f->allow, uri, NULL), UARC_Good);
    }
    uarc_listener_config lo = {.allowlist = f->allow,
                               .bind_addresses = (const char *[]){"127.0.0.1"},
                               .bind_address_count = 1};
    f->listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(f->listener), UARC_Good);
    ho.listener = f->listener;
    ho.client.no_session = true;
    ho.callbacks = (uarc_reverse_hub_callbacks){.connected = rec_connected,
                                                .failed = rec_failed,
                                                .lost = rec_lost,
                                                .dropped = rec_dropped,
                                                .backoff = rec_backoff,
                                                .user_data = &f->r};
    f->r.hub = uarc_reverse_hub_new(&ho);
    assert_non_null(f->r.hub);
}

static void fixture_open_with(fixture *f, uint32_t spare_timeout_ms, uarc_memory_budget *budget)
{
    fixture_open_hub(f, (uarc_reverse_hub_config){.client = {.memory_budget = budget},
                                                  .spare_timeout_ms = spare_timeout_ms});
}

static void fixture_open(fixture *f, uint32_t spare_timeout_ms)
{
    fixture_open_with(f, spare_timeout_ms, NULL);
}

static void fixture_close(fixture *f)
{
    uarc_reverse_hub_delete(f->r.hub);
    uarc_listener_delete(f->listener);
    uarc_allowlist_delete(f->allow);
}

/* Runs the hub until `done` holds, for at most `ms` (about). */
#define RUN_UNTIL(f, done, ms)                                                                     \
    for (int run_ = 0; run_ < (ms) / 10 && !(done); run_++)                                        \
    uarc_reverse_hub_process((f)->r.hub, 10)

/* A socket that dials the listener with an RHE claiming `uri`. */
static int dial_as(fixture *f, const char *uri)
{
    int fd = connect_to(uarc_listener_port(f->listener));
    fake_frame fr;
    frame_rhe(&fr, uri, "opc.tcp://127.0.0.1:4840");
    send_all(fd, fr.bytes, fr.length);
    return fd;
}

static int dial(fixture *f)
{
    return dial_as(f, "urn:honest");
}

/* A server that dials as `uri` and answers HEL and OPN, until the hub reports the channel. */
static int dial_and_open_as(fixture *f, const char *uri)
{
    int connected = f->r.connected;
    int fd = dial_as(f, uri);
    RUN_UNTIL(f, readable(fd), 2000);
    uint8_t buf[4096];
    read_message(fd, buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4);
    send_ack(fd);
    RUN_UNTIL(f, readable(fd), 2000);
    answer_opn(fd);
    RUN_UNTIL(f, f->r.connected > connected, 2000);
    assert_int_equal(f->r.connected, connected + 1);
    return fd;
}

static int dial_and_open(fixture *f)
{
    return dial_and_open_as(f, "urn:honest");
}

/* Descriptors the hub polls: the listener, the client's socket and a spare when one is held. */
static size_t polled(const fixture *f)
{
    struct pollfd fds[8];
    return uarc_reverse_hub_poll_fds(f->r.hub, fds, 8);
}

/* A silent socket claims the honest server's URI while its session is up, and is the spare when
 * that session ends. The honest server's re-dial must not wait for the impostor's HEL to time out
 * (10 s): the newest socket wins at once, and the impostor's end is reported as its own. */
static void test_impostor_spare_does_not_delay_redial(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 0);
    int honest = dial_and_open(&f);
    char honest_peer[UARC_PEER_SIZE];
    local_address(honest, honest_peer, sizeof honest_peer);

    int impostor = dial(&f);
    char impostor_peer[UARC_PEER_SIZE];
    local_address(impostor, impostor_peer, sizeof impostor_peer);
    RUN_UNTIL(&f, polled(&f) == 3, 2000);
    assert_int_equal(polled(&f), 3); /* held as the spare */

    close(honest); /* the session's connection ends; the hub turns to the spare */
    RUN_UNTIL(&f, f.r.lost == 1, 2000);
    assert_int_equal(f.r.lost, 1);
    assert_int_equal(f.r.lost_status, UARC_BadConnectionClosed);
    assert_string_equal(f.r.lost_reason, "closed by peer");
    assert_string_equal(f.r.lost_kind, "closed");
    assert_string_equal(f.r.lost_peer, honest_peer);
    uint8_t buf[4096];
    RUN_UNTIL(&f, readable(impostor), 2000);
    read_message(impostor, buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4); /* the impostor never answers */

    int redial = dial(&f);
    RUN_UNTIL(&f, readable(redial), 2000);
    assert_true(readable(redial)); /* HEL within 2 s, not after the impostor's 10 s */
    read_message(redial, buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4);
    send_ack(redial);
    RUN_UNTIL(&f, readable(redial), 2000);
    answer_opn(redial);
    RUN_UNTIL(&f, f.r.connected == 2, 2000);
    assert_int_equal(f.r.connected, 2);
    assert_int_equal(f.r.restored, 1);
    assert_int_equal(f.r.failed, 0); /* nothing reported against the server itself */
    assert_int_equal(f.r.dropped, 1);
    assert_string_equal(f.r.drop_uri, "urn:honest");
    assert_string_equal(f.r.drop_peer, impostor_peer);
    assert_int_equal(f.r.drop_status, UARC_BadConnectionClosed);
    assert_non_null(strstr(f.r.drop_reason, "superseded"));
    expect_eof(impostor);

    close(impostor);
    close(redial);
    fixture_close(&f);
}

/* A held spare is dropped after spare_timeout_ms, or when its peer closes it, each reported with
 * its address; a reset session reports "reset by peer". */
static void test_spare_bounded_and_reported(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 200);
    int honest = dial_and_open(&f);

    int spare = dial(&f);
    char peer[UARC_PEER_SIZE];
    local_address(spare, peer, sizeof peer);
    RUN_UNTIL(&f, f.r.dropped == 1, 3000);
    assert_int_equal(f.r.dropped, 1);
    assert_int_equal(f.r.drop_status, UARC_BadTimeout);
    assert_string_equal(f.r.drop_peer, peer);
    assert_non_null(strstr(f.r.drop_reason, "200 ms"));
    expect_eof(spare);
    close(spare);

    spare = dial(&f);
    local_address(spare, peer, sizeof peer);
    RUN_UNTIL(&f, polled(&f) == 3, 2000);
    assert_int_equal(polled(&f), 3);
    close(spare);
    RUN_UNTIL(&f, f.r.dropped == 2, 2000);
    assert_int_equal(f.r.dropped, 2);
    assert_int_equal(f.r.drop_status, UARC_BadConnectionClosed);
    assert_string_equal(f.r.drop_peer, peer);
    assert_string_equal(f.r.drop_reason, "spare closed by peer");
    assert_int_equal(f.r.lost, 0); /* the session was never touched */

    struct linger reset = {1, 0};
    assert_int_equal(setsockopt(honest, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
    close(honest);
    RUN_UNTIL(&f, f.r.lost == 1, 2000);
    assert_int_equal(f.r.lost, 1);
    assert_int_equal(f.r.lost_status, UARC_BadConnectionClosed);
    assert_string_equal(f.r.lost_reason, "reset by peer");
    assert_string_equal(f.r.lost_kind, "reset");
    fixture_close(&f);
}

/* ---- one memory budget against many flooding servers ---- */

typedef struct outcome {
    int calls;
    uarc_status status;
} outcome;

static void record_outcome(void *user_data, uarc_status status, void *response)
{
    outcome *o = user_data;
    (void)response;
    o->calls++;
    o->status = status;
}

/* Sends a Read on `client`; the server at `fd` reads it: returns its RequestId. */
static uint32_t read_sent(uarc_client *client, int fd, outcome *o)
{
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, 2258), .attributeId = 13};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.nodesToReadSize = 1;
    req.nodesToRead = &node;
    assert_int_equal(uarc_client_send(client, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                      record_outcome, o, NULL),
                     UARC_Good);
    uint8_t buf[4096];
    read_message(fd, buf, sizeof buf);
    assert_memory_equal(buf, "MSGF", 4);
    return get_u32(buf + 20);
}

/* Writes one MSG chunk of `body_length` zero bytes answering `request_id`. */
static void send_chunk(int fd, const char *type, uint32_t sequence, uint32_t request_id,
                       size_t body_length)
{
    static uint8_t chunk[65536];
    size_t length = 24 + body_length;
    assert_true(length <= sizeof chunk);
    memset(chunk, 0, length);
    memcpy(chunk, type, 4);
    uint32_t fields[5] = {(uint32_t)length, CHANNEL_ID, 1, sequence, request_id};
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 4; k++)
            chunk[4 + 4 * i + k] = (uint8_t)(fields[i] >> (8 * k));
    send_all(fd, chunk, length);
}

#define FLOOD_BUDGET ((size_t)2 * 1024 * 1024)
#define FLOOD_CHUNK  60000
#define FLOOD_ROUNDS 40

/* Eight servers stream endless responses into one hub's clients: the budget they share holds at
 * every step, each flooded response fails with BadResponseTooLarge while its connection lives
 * on, and the honest server's Read is answered in the middle of the flood. */
static void test_budget_holds_with_flooding_servers(void **state)
{
    (void)state;
    uarc_memory_budget *budget = uarc_memory_budget_new(FLOOD_BUDGET);
    assert_non_null(budget);
    fixture f;
    fixture_open_with(&f, 0, budget);
    int honest = dial_and_open(&f);
    int fd[FLOODERS];
    uint32_t id[FLOODERS], sequence[FLOODERS];
    outcome o[FLOODERS] = {{0}};
    for (int i = 0; i < FLOODERS; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "urn:flood%d", i);
        fd[i] = dial_and_open_as(&f, uri);
        id[i] = read_sent(uarc_reverse_hub_client(f.r.hub, uri), fd[i], &o[i]);
        sequence[i] = 2; /* after the OPN response */
    }
    for (int round = 0; round < FLOOD_ROUNDS; round++) {
        for (int i = 0; i < FLOODERS; i++)
            send_chunk(fd[i], "MSGC", sequence[i]++, id[i], FLOOD_CHUNK);
        for (int k = 0; k < 3; k++) {
            uarc_reverse_hub_process(f.r.hub, 0);
            assert_true(uarc_memory_budget_used(budget) <= FLOOD_BUDGET);
        }
        if (round == FLOOD_ROUNDS / 2) {
            outcome h = {0};
            uint32_t request =
                read_sent(uarc_reverse_hub_client(f.r.hub, "urn:honest"), honest, &h);
            uarc_ReadResponse r;
            uarc_init(&r, UARC_T(ReadResponse));
            fake_frame fr;
            frame_msg_response(&fr, CHANNEL_ID, 1, 2, request, &r, UARC_T(ReadResponse));
            send_all(honest, fr.bytes, fr.length);
            RUN_UNTIL(&f, h.calls == 1, 2000);
            assert_int_equal(h.calls, 1);
            assert_int_equal(h.status, UARC_Good);
        }
    }
    for (int i = 0; i < FLOODERS; i++) {
        RUN_UNTIL(&f, o[i].calls == 1, 2000);
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, UARC_BadResponseTooLarge);
    }
    assert_true(uarc_memory_budget_peak(budget) <= FLOOD_BUDGET);
    assert_true(uarc_memory_budget_peak(budget) > FLOOD_BUDGET / 2);
    assert_int_equal(f.r.lost, 0); /* every connection lives on */
    assert_int_equal(f.r.failed, 0);
    for (int i = 0; i < FLOODERS; i++)
        close(fd[i]);
    close(honest);
    fixture_close(&f);
    assert_int_equal(uarc_memory_budget_used(budget), 0);
    uarc_memory_budget_delete(budget);
}

/* ---- connect storms and repeated failures ---- */

/* At most max_handshakes servers connect at once; the others wait in the listener and are served
 * in their order as slots free up (a failure or a channel that opened). */
static void test_handshake_cap_serves_in_order(void **state)
{
    (void)state;
    fixture f;
    fixture_open_hub(&f, (uarc_reverse_hub_config){.max_handshakes = 2});
    int fd[4];
    for (int i = 0; i < 4; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "urn:flood%d", i);
        fd[i] = dial_as(&f, uri); /* each RHE is in before the hub runs: accepted in order */
    }
    RUN_UNTIL(&f, readable(fd[0]) && readable(fd[1]), 2000);
    assert_true(readable(fd[0]) && readable(fd[1]));
    RUN_UNTIL(&f, readable(fd[2]) || readable(fd[3]), 300);
    assert_false(readable(fd[2])); /* waiting in the listener, not refused */
    assert_false(readable(fd[3]));
    assert_int_equal(uarc_reverse_hub_count(f.r.hub), 2);

    close(fd[0]); /* a failed handshake frees its slot: the oldest waiting one is next */
    RUN_UNTIL(&f, readable(fd[2]), 2000);
    assert_true(readable(fd[2]));
    assert_false(readable(fd[3]));
    assert_int_equal(f.r.failed, 1);

    uint8_t buf[4096];
    read_message(fd[1], buf, sizeof buf);
    send_ack(fd[1]);
    RUN_UNTIL(&f, readable(fd[1]), 2000);
    answer_opn(fd[1]); /* a channel that opened frees its slot too */
    RUN_UNTIL(&f, readable(fd[3]), 2000);
    assert_true(readable(fd[3]));
    assert_int_equal(f.r.connected, 1);
    read_message(fd[3], buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4);
    for (int i = 1; i < 4; i++)
        close(fd[i]);
    fixture_close(&f);
}

/* A server dials, gets HEL and answers ERR `status`. */
static void dial_and_refuse_hel(fixture *f, const char *uri, uarc_status status)
{
    int fd = dial_as(f, uri);
    RUN_UNTIL(f, readable(fd), 2000);
    uint8_t buf[4096];
    read_message(fd, buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4);
    fake_frame fr;
    frame_begin(&fr, "ERRF");
    frame_u32(&fr, status);
    frame_cstring(&fr, "not you");
    frame_end(&fr);
    send_all(fd, fr.bytes, fr.length);
    int failed = f->r.failed;
    RUN_UNTIL(f, f->r.failed > failed, 2000);
    assert_int_equal(f->r.failed, failed + 1);
    close(fd);
}

/* The same failure on two dials in a row: the server's next dials get ERR
 * BadTcpMessageTypeInvalid at once, unreported, for the backoff's step; other servers are
 * served as usual. */
static void test_backoff_after_repeated_failure(void **state)
{
    (void)state;
    fixture f;
    fixture_open_hub(&f, (uarc_reverse_hub_config){.backoff_initial_ms = 60000});
    dial_and_refuse_hel(&f, "urn:flood0", UARC_BadCertificateUntrusted);
    assert_int_equal(f.r.backoffs, 0);
    dial_and_refuse_hel(&f, "urn:flood0", UARC_BadCertificateUntrusted);
    assert_int_equal(f.r.failed_status, UARC_BadCertificateUntrusted);
    assert_int_equal(f.r.backoffs, 1);
    assert_int_equal(f.r.backoff_delay, 60000);

    for (int i = 0; i < 3; i++) {
        int fd = dial_as(&f, "urn:flood0");
        RUN_UNTIL(&f, readable(fd), 2000);
        uint32_t status;
        char reason[256];
        read_err_frame(fd, &status, reason, sizeof reason);
        assert_int_equal(status, UARC_BadTcpMessageTypeInvalid);
        assert_non_null(strstr(reason, "BadCertificateUntrusted"));
        expect_eof(fd);
        close(fd);
    }
    assert_int_equal(f.r.failed, 2); /* reported once per step, not per dial */
    assert_int_equal(f.r.backoffs, 1);
    int other = dial_and_open_as(&f, "urn:flood1");
    close(other);
    fixture_close(&f);
}

#define IDLE_SERVERS 1000

/* A thousand servers wait for their ACK without anything due; one answers. The round that
 * handles that answer runs that one client, not the thousand. */
static void test_round_runs_only_what_happened(void **state)
{
    (void)state;
    uarc_listener_config lo = {.policy = accept_any,
                               .max_pending = 2 * IDLE_SERVERS,
                               .bind_addresses = (const char *[]){"127.0.0.1"},
                               .bind_address_count = 1};
    uarc_listener *listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(listener), UARC_Good);
    uarc_reverse_hub_config ho = {.listener = listener,
                                  .client = {.no_session = true,
                                             .connect_timeout_ms = 600000,
                                             .handshake_timeout_ms = 600000},
                                  .max_handshakes = 2 * IDLE_SERVERS};
    uarc_reverse_hub *hub = uarc_reverse_hub_new(&ho);
    assert_non_null(hub);
    static int fd[IDLE_SERVERS];
    for (int i = 0; i < IDLE_SERVERS; i++) {
        fd[i] = connect_to(uarc_listener_port(listener));
        fake_frame fr;
        char uri[32];
        snprintf(uri, sizeof uri, "urn:idle%d", i);
        frame_rhe(&fr, uri, "opc.tcp://127.0.0.1:4840");
        send_all(fd[i], fr.bytes, fr.length);
        if (i % 64 == 63)
            uarc_reverse_hub_process(hub, 0);
    }
    uint8_t buf[4096];
    for (int i = 0; i < IDLE_SERVERS; i++) {
        for (int k = 0; k < 500 && !readable(fd[i]); k++)
            uarc_reverse_hub_process(hub, 10);
        read_message(fd[i], buf, sizeof buf);
        assert_memory_equal(buf, "HELF", 4);
    }
    assert_int_equal(uarc_reverse_hub_count(hub), IDLE_SERVERS);
    for (int k = 0; k < 100; k++) /* what is left of the storm */
        uarc_reverse_hub_process(hub, 0);
    assert_int_equal(uarc__reverse_hub_clients_run(hub), 0);

    send_ack(fd[IDLE_SERVERS / 2]);
    assert_int_equal(uarc_reverse_hub_process(hub, 5000), UARC_Good);
    assert_int_equal(uarc__reverse_hub_clients_run(hub), 1);
    read_message(fd[IDLE_SERVERS / 2], buf, sizeof buf);
    assert_memory_equal(buf, "OPNF", 4); /* that one went on */

    for (int i = 0; i < IDLE_SERVERS; i++)
        close(fd[i]);
    uarc_reverse_hub_delete(hub);
    uarc_listener_delete(listener);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_in_callback_does_not_skip_next),
        cmocka_unit_test(test_impostor_spare_does_not_delay_redial),
        cmocka_unit_test(test_spare_bounded_and_reported),
        cmocka_unit_test(test_budget_holds_with_flooding_servers),
        cmocka_unit_test(test_handshake_cap_serves_in_order),
        cmocka_unit_test(test_backoff_after_repeated_failure),
        cmocka_unit_test(test_round_runs_only_what_happened),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
