/*
 * Listener connections waiting to be taken: accept_from by server, the newest or oldest of one
 * server's connections, connections their server closed before anyone claimed them, taking
 * connections inside a callback, the max_pending cap and many silent sockets.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "listener_fixture.h"

/* accept_from returns the named server's connection and leaves the others queued. */
static void test_accept_from_one_server(void **state)
{
    (void)state;
    uarc_allowlist *a = allow("urn:test:alpha", NULL);
    assert_int_equal(uarc_allowlist_add(a, "urn:test:beta", NULL), UARC_Good);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int f1 = connect_to(uarc_listener_port(l)), f2 = connect_to(uarc_listener_port(l));
    int f3 = connect_to(uarc_listener_port(l));
    fake_frame r1, r2, r3;
    frame_rhe(&r1, "urn:test:alpha", "opc.tcp://alpha.test:1");
    frame_rhe(&r2, "urn:test:beta", "opc.tcp://beta.test:1");
    frame_rhe(&r3, "urn:test:beta", "opc.tcp://beta.test:2");
    send_all(f1, r1.bytes, r1.length);
    assert_true(drive_until(l, &ev.accepted, 1, 3000));
    send_all(f2, r2.bytes, r2.length);
    assert_true(drive_until(l, &ev.accepted, 2, 3000));
    send_all(f3, r3.bytes, r3.length);
    assert_true(drive_until(l, &ev.accepted, 3, 3000));

    uarc_reverse_connection c;
    /* EndpointUrl pinned: the newest beta, skipping alpha and the first beta. */
    assert_int_equal(uarc_listener_accept_from(l, "urn:test:beta", "opc.tcp://beta.test:2", 0, &c),
                     UARC_Good);
    assert_string_equal(c.endpoint_url, "opc.tcp://beta.test:2");
    uarc_reverse_connection_clear(&c);
    assert_int_equal(uarc_listener_accept_from(l, "urn:test:beta", NULL, 0, &c), UARC_Good);
    assert_string_equal(c.endpoint_url, "opc.tcp://beta.test:1");
    uarc_reverse_connection_clear(&c);
    /* No beta left: times out, while alpha is still there for a plain accept. */
    assert_int_equal(uarc_listener_accept_from(l, "urn:test:beta", NULL, 100, &c), UARC_BadTimeout);
    assert_non_null(strstr(uarc_listener_error(l), "urn:test:beta"));
    assert_int_equal(uarc_listener_accept(l, 0, &c), UARC_Good);
    assert_string_equal(c.server_uri, "urn:test:alpha");
    uarc_reverse_connection_clear(&c);
    assert_false(uarc_listener_next(l, &c));
    close(f1);
    close(f2);
    close(f3);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/* ---- accepted connections nobody has taken yet ---- */

/* Closes with a reset instead of a FIN. */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd);
}

static bool reason_says_unclaimed(const char *reason)
{
    return strstr(reason, "waiting to be claimed") != NULL;
}

/* A server's connections that it closed while nobody claimed them leave the queue at once: they
 * free their max_pending slots for another server and are never handed out. */
static void test_unclaimed_closed_frees_slot(void **state)
{
    (void)state;
    uarc_allowlist *a = allow("urn:test:A", NULL);
    assert_int_equal(uarc_allowlist_add(a, "urn:test:B", NULL), UARC_Good);
    uarc_listener_config o = {.allowlist = a, .max_pending = 3};
    events ev;
    uarc_listener *l = start(&o, &ev);
    fake_frame ra, rb;
    frame_rhe(&ra, "urn:test:A", "opc.tcp://a.test:4840");
    frame_rhe(&rb, "urn:test:B", "opc.tcp://b.test:4840");
    int b[3];
    char bpeer[3][UARC_PEER_SIZE];
    for (int i = 0; i < 3; i++) {
        b[i] = connect_to(uarc_listener_port(l));
        local_address(b[i], bpeer[i], sizeof bpeer[i]);
        send_all(b[i], rb.bytes, rb.length);
    }
    assert_true(drive_until(l, &ev.accepted, 3, 3000));
    assert_int_equal(ev.errors, 0);

    /* B gives up on all three, the last one with a reset. */
    close(b[0]);
    close(b[1]);
    reset_close(b[2]);
    assert_true(drive_until(l, &ev.errors, 3, 3000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(ev.statuses[i], UARC_BadConnectionClosed);
    if (!reason_says_unclaimed(ev.reason) || !strstr(ev.reason, "urn:test:B"))
        fail_msg("reason \"%s\"", ev.reason);
    bool last_peer_is_b = false;
    for (int i = 0; i < 3; i++)
        last_peer_is_b |= strcmp(ev.peer, bpeer[i]) == 0;
    assert_true(last_peer_is_b);

    /* A is not turned away as too busy... */
    int fa = connect_to(uarc_listener_port(l));
    send_all(fa, ra.bytes, ra.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept_from(l, "urn:test:A", NULL, 3000, &c), UARC_Good);
    assert_string_equal(c.server_uri, "urn:test:A");
    uarc_reverse_connection_clear(&c);
    assert_int_equal(ev.errors, 3);
    /* ...and none of B's dead sockets is handed out. */
    assert_int_equal(uarc_listener_accept_from(l, "urn:test:B", NULL, 100, &c), UARC_BadTimeout);
    assert_false(uarc_listener_next(l, &c));
    assert_int_equal(ev.errors, 3);

    close(fa);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/* The check happens when a connection is taken too, not only when the listener processes: a
 * program that took a while to come back never gets a socket that was closed meanwhile. */
static void test_unclaimed_closed_not_handed_out(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    uarc_reverse_connection c;
    for (int round = 0; round < 2; round++) {
        int fd = connect_to(uarc_listener_port(l));
        char me[UARC_PEER_SIZE];
        local_address(fd, me, sizeof me);
        send_all(fd, f.bytes, f.length);
        assert_true(drive_until(l, &ev.accepted, round + 1, 3000));
        int theirs = far_end(fd);
        close(fd);
        /* Let the FIN arrive without processing it. */
        wait_for(theirs, POLLIN); /* the FIN: nothing else is left unread */
        int errors = ev.errors;
        if (round == 0)
            assert_false(uarc_listener_next(l, &c));
        else
            assert_int_equal(uarc_listener_accept_from(l, SERVER_URI, NULL, 0, &c),
                             UARC_BadTimeout);
        assert_int_equal(ev.errors, errors + 1);
        assert_int_equal(ev.status, UARC_BadConnectionClosed);
        assert_string_equal(ev.peer, me);
        if (!reason_says_unclaimed(ev.reason))
            fail_msg("reason \"%s\"", ev.reason);
    }
    /* Nothing is reported twice when the listener processes afterwards. */
    assert_int_equal(uarc_listener_process(l, 50), UARC_Good);
    assert_int_equal(ev.errors, 2);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/* Several live connections of one server: accept_from returns the newest, next() the oldest.
 * Bytes a server sends before HEL do not get its connection dropped. */
static void test_accept_from_prefers_newest(void **state)
{
    (void)state;
    uarc_allowlist *a = allow("urn:test:alpha", NULL);
    assert_int_equal(uarc_allowlist_add(a, "urn:test:beta", NULL), UARC_Good);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    fake_frame ra, rb;
    frame_rhe(&ra, "urn:test:alpha", "opc.tcp://alpha.test:1");
    frame_rhe(&rb, "urn:test:beta", "opc.tcp://beta.test:1");
    int fd[4];
    char peer[4][UARC_PEER_SIZE];
    const fake_frame *order[4] = {&rb, &ra, &rb, &rb}; /* beta, alpha, beta, beta */
    for (int i = 0; i < 4; i++) {
        fd[i] = connect_to(uarc_listener_port(l));
        local_address(fd[i], peer[i], sizeof peer[i]);
        send_all(fd[i], order[i]->bytes, order[i]->length);
        assert_true(drive_until(l, &ev.accepted, i + 1, 3000));
    }
    send_all(fd[0], "EARLY", 5); /* the oldest beta speaks out of turn */
    assert_int_equal(uarc_listener_process(l, 50), UARC_Good);
    assert_int_equal(ev.errors, 0);

    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept_from(l, "urn:test:beta", NULL, 0, &c), UARC_Good);
    assert_string_equal(c.peer, peer[3]);
    uarc_reverse_connection_clear(&c);
    /* The newest beta having closed, the next newest live one. */
    close(fd[2]);
    assert_true(drive_until(l, &ev.errors, 1, 3000));
    assert_string_equal(ev.peer, peer[2]);
    /* The EndpointUrl alone names a server too. */
    assert_int_equal(uarc_listener_accept_from(l, NULL, "opc.tcp://alpha.test:1", 0, &c),
                     UARC_Good);
    assert_string_equal(c.peer, peer[1]);
    uarc_reverse_connection_clear(&c);
    /* Oldest first without a name; its early bytes are still in the socket. */
    assert_true(uarc_listener_next(l, &c));
    assert_string_equal(c.peer, peer[0]);
    char buf[8];
    assert_int_equal(recv(c.fd, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "EARLY", 5);
    uarc_reverse_connection_clear(&c);
    assert_false(uarc_listener_next(l, &c));
    assert_int_equal(ev.errors, 1);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            close(fd[i]);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

typedef struct taker {
    events ev;
    uarc_listener *l;
    int taken;
    char taken_peer[UARC_PEER_SIZE];
    uarc_status nested; /* what uarc_listener_accept_from() gave inside the callback */
} taker;

static void take_on_accepted(void *user_data, const uarc_reverse_connection *c)
{
    taker *t = user_data;
    on_accepted(&t->ev, c);
    if (strcmp(c->server_uri, "urn:test:A") != 0)
        return;
    /* A blocking accept would run a batch inside this one: refused. */
    uarc_reverse_connection none;
    uarc_reverse_connection_init(&none);
    t->nested = uarc_listener_accept_from(t->l, "urn:nobody", NULL, 0, &none);
    uarc_reverse_connection mine;
    while (uarc_listener_next(t->l, &mine)) {
        if (strcmp(mine.server_uri, "urn:test:B") == 0) {
            t->taken++;
            snprintf(t->taken_peer, sizeof t->taken_peer, "%s", mine.peer);
        }
        uarc_reverse_connection_clear(&mine);
    }
}

static void take_on_error(void *user_data, const char *peer, uarc_status status, const char *reason)
{
    on_error(&((taker *)user_data)->ev, peer, status, reason);
}

/* A callback that takes connections while the listener works through a batch of events that
 * still names one of them (ASan would see a use after free). */
static void test_take_inside_callback(void **state)
{
    (void)state;
    uarc_allowlist *a = allow("urn:test:A", NULL);
    assert_int_equal(uarc_allowlist_add(a, "urn:test:B", NULL), UARC_Good);
    static taker t;
    memset(&t, 0, sizeof t);
    uarc_listener_config o = {.bind_addresses = loopback4, .bind_address_count = 1, .allowlist = a};
    o.callbacks = (uarc_listener_callbacks){NULL, take_on_accepted, NULL, take_on_error, &t};
    uarc_listener *l = t.l = uarc_listener_new(&o);
    assert_non_null(l);
    assert_int_equal(uarc_listener_listen(l), UARC_Good);
    fake_frame ra, rb;
    frame_rhe(&ra, "urn:test:A", "opc.tcp://a.test:4840");
    frame_rhe(&rb, "urn:test:B", "opc.tcp://b.test:4840");
    int b1 = connect_to(uarc_listener_port(l)), b2 = connect_to(uarc_listener_port(l));
    char b2peer[UARC_PEER_SIZE];
    local_address(b2, b2peer, sizeof b2peer);
    send_all(b1, rb.bytes, rb.length);
    send_all(b2, rb.bytes, rb.length);
    assert_true(drive_until(l, &t.ev.accepted, 2, 3000));
    int fa = connect_to(uarc_listener_port(l));
    int64_t end = now_ms() + 3000;
    while (uarc_listener_pending_count(l) != 1 && now_ms() < end)
        assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
    assert_int_equal(uarc_listener_pending_count(l), 1);
    /* A's RHE and b1's FIN land in one batch, A's first. */
    int fa_far = far_end(fa), b1_far = far_end(b1);
    send_all(fa, ra.bytes, ra.length);
    close(b1);
    wait_for(fa_far, POLLIN);
    wait_for(b1_far, POLLIN);
    assert_true(drive_until(l, &t.ev.accepted, 3, 3000));
    assert_int_equal(uarc_listener_process(l, 50), UARC_Good);
    assert_int_equal(t.taken, 1);
    assert_string_equal(t.taken_peer, b2peer);
    assert_int_equal(t.nested, UARC_BadInvalidState);
    assert_int_equal(t.ev.errors, 1);
    assert_int_equal(t.ev.status, UARC_BadConnectionClosed);
    close(b2);
    close(fa);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

#define SILENT_COUNT 300

static void test_silent_sockets_do_not_delay(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .hello_timeout_ms = 10000};
    events ev;
    uarc_listener *l = start(&o, &ev);
    static int silent[SILENT_COUNT];
    for (int i = 0; i < SILENT_COUNT; i++)
        silent[i] = connect_to(uarc_listener_port(l));

    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    /* The honest server connected after all the silent ones and is accepted far inside their
     * 10 s hello timeout. */
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 2000, &c), UARC_Good);
    assert_string_equal(c.server_uri, SERVER_URI);
    assert_int_equal(ev.errors + ev.rejected, 0);
    /* Every silent peer was taken in and is still waiting on its own deadline. */
    assert_true(drive_until_pending(l, SILENT_COUNT, 2000));
    assert_int_equal(ev.errors, 0);
    uarc_reverse_connection_clear(&c);
    close(fd);
    for (int i = 0; i < SILENT_COUNT; i++)
        close(silent[i]);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_max_pending(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .max_pending = 3};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int silent[3];
    for (int i = 0; i < 3; i++)
        silent[i] = connect_to(uarc_listener_port(l));
    assert_true(drive_until_pending(l, 3, 3000));

    /* The fourth is turned away even though its RHE is good. */
    int fd = connect_to(uarc_listener_port(l));
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    assert_true(drive_until(l, &ev.errors, 1, 3000));
    assert_int_equal(ev.status, UARC_BadTcpServerTooBusy);
    assert_string_equal(ev.peer, me);
    assert_int_equal(ev.accepted + ev.hellos, 0);
    uint32_t status;
    char reason[TEXT_SIZE];
    read_err_frame(fd, &status, reason, sizeof reason);
    assert_int_equal(status, UARC_BadTcpServerTooBusy);
    assert_string_equal(reason, ev.reason);
    expect_eof(fd);
    close(fd);
    assert_int_equal(uarc_listener_pending_count(l), 3);

    /* An accepted connection not yet taken still counts; once a slot frees, a server gets in. */
    close(silent[0]);
    assert_true(drive_until(l, &ev.errors, 2, 3000));
    assert_int_equal(ev.status, UARC_BadConnectionClosed);
    fd = connect_to(uarc_listener_port(l));
    send_all(fd, f.bytes, f.length);
    assert_true(drive_until(l, &ev.accepted, 1, 3000));
    int busy = connect_to(uarc_listener_port(l));
    assert_true(drive_until(l, &ev.errors, 3, 3000));
    assert_int_equal(ev.status, UARC_BadTcpServerTooBusy);
    read_err_frame(busy, &status, reason, sizeof reason);
    assert_int_equal(status, UARC_BadTcpServerTooBusy);
    close(busy);
    uarc_reverse_connection c;
    assert_true(uarc_listener_next(l, &c));
    uarc_reverse_connection_clear(&c);

    close(fd);
    close(silent[1]);
    close(silent[2]);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

int main(void)
{
    raise_fd_limit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_from_one_server),
        cmocka_unit_test(test_unclaimed_closed_frees_slot),
        cmocka_unit_test(test_unclaimed_closed_not_handed_out),
        cmocka_unit_test(test_accept_from_prefers_newest),
        cmocka_unit_test(test_take_inside_callback),
        cmocka_unit_test(test_silent_sockets_do_not_delay),
        cmocka_unit_test(test_max_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
