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
#include <time.h>

#include <cmocka.h>

#include "fake_server.h"
#include "uarc/uarc.h"

#define CHANNEL_ID 11u

static size_t read_message(int fd, uint8_t *buf, size_t capacity)
{
    assert_true(recv_exact(fd, buf, 8));
    uint32_t size = get_u32(buf + 4);
    assert_true(size >= 8 && size <= capacity);
    assert_true(recv_exact(fd, buf + 8, size - 8));
    return size;
}

static void send_ack(int fd)
{
    fake_frame f;
    frame_ack(&f);
    send_all(fd, f.bytes, f.length);
}

/* Reads the client's OPN and answers it. */
static void answer_opn(int fd)
{
    uint8_t buf[4096];
    read_message(fd, buf, sizeof buf);
    assert_memory_equal(buf, "OPNF", 4);
    size_t pos = 12;
    for (int i = 0; i < 3; i++) {
        int32_t len = (int32_t)get_u32(buf + pos);
        pos += 4 + (len > 0 ? (size_t)len : 0);
    }
    uint32_t request_id = get_u32(buf + pos + 4);
    fake_frame f;
    frame_opn_response(&f, CHANNEL_ID, 1, 1, request_id);
    send_all(fd, f.bytes, f.length);
}

static bool readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

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
    uarc_listener_options lo = {.allowlist = allow,
                                .bind_addresses = (const char *[]){"127.0.0.1"},
                                .bind_address_count = 1};
    uarc_listener *listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(listener), UARC_Good);
    events e = {0};
    uarc_reverse_hub_options ho = {.listener = listener,
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
    /* Both answers are in the kernel before the round that handles them. */
    nanosleep(&(struct timespec){0, 20000000}, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_in_callback_does_not_skip_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
