/*
 * What the client interop programs share (client_interop.c, client_services_interop.c,
 * client_write_interop.c): one node-opcua server (tests/peer/server.mjs) started by the cmocka
 * group setup with a pipe on its stdin, so it exits when the program does, its EndpointUrl read
 * from its one JSON "started" line; and client helpers: a client made and connected, a NodeId
 * from its text, a blocking read of ns=1;s=Scalar.Int32 checked against its value.
 *
 * Include after <cmocka.h>, uarc/uarc.h and peer_process.h.
 */
#ifndef UARC_TESTS_CLIENT_PEER_H
#define UARC_TESTS_CLIENT_PEER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/attributes.h"
#include "uarc/client.h"

#define PEER_URI      "urn:uarc:client-interop"
#define START_TIMEOUT 60000

static inline int64_t now_ms(void)
{
    return peer_process_now_ms();
}

/* ---- the peer process ---- */

static peer_process the_peer = PEER_PROCESS_INIT;

/* The port of the peer's EndpointUrl (opc.tcp://127.0.0.1:PORT). */
static inline uint16_t peer_port(const peer_process *p)
{
    const char *colon = strrchr(p->url, ':');
    return colon ? (uint16_t)atoi(colon + 1) : 0;
}

/* Starts server.mjs (on `port`, 0: any) and waits for its "started" line. */
static inline bool peer_start(peer_process *p, uint16_t port)
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

static inline int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return peer_start(&the_peer, 0) ? 0 : -1;
}

static inline int group_teardown(void **state)
{
    (void)state;
    peer_process_stop(&the_peer);
    return 0;
}

static inline uarc_client *new_client(uarc_client_config *cfg)
{
    uarc_client_config defaults = {0};
    uarc_client *c = uarc_client_new(cfg ? cfg : &defaults);
    assert_non_null(c);
    return c;
}

static inline void connect_ok(uarc_client *c, const char *url)
{
    uarc_status s = uarc_client_connect(c, url);
    if (s != UARC_Good)
        fail_msg("connect %s: %s (%s)", url, uarc_status_name(s), uarc_client_error(c));
}

static inline uarc_nodeid node(const char *text)
{
    uarc_nodeid id;
    assert_int_equal(uarc_nodeid_parse(text, SIZE_MAX, &id), UARC_Good);
    return id;
}

/* Reads ns=1;s=Scalar.Int32 (blocking) and checks its value. */
static inline void read_int32_ok(uarc_client *c)
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

#endif
