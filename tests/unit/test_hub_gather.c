/*
 * The hub's gathering (uarc_reverse_hub_config.gather_ms): after a round with socket events the
 * next wait pauses until the window after that wake-up, and what arrived meanwhile is one round;
 * not for the window after a round that moved a handshake on. The window is gather_ms, or by
 * default what every server in session tolerates (uarc_client_gather_ms(), which the test's
 * servers' clients answer through a module hook of their own). The pauses are the test's own
 * (uarc__reverse_hub_set_nap): nothing sleeps, and what the test does during a pause is what
 * arrives during it. The events are servers closing their sockets (their channels were open: no
 * handshake is going on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <cmocka.h>

#include "client/client_internal.h"
#include "fake_server.h"
#include "hub_peer.h"
#include "reverse/hub_internal.h"
#include "uarc/uarc.h"

#define SERVERS 4
/* asked for: more than the most the hub takes (1000), which the pauses must show */
#define GATHER_MS     5000
#define MAX_GATHER_MS 1000

typedef struct gathering {
    uarc_reverse_hub *hub;
    int pauses;
    int last_pause;
    bool interrupt; /* the pause ends as a signal would end it */
    int *closing;   /* servers that close their socket during the next pause */
    size_t closing_count;
} gathering;

/* Ready descriptors in the hub's epoll set, which it reports again (level-triggered). */
static int ready_in_hub(uarc_reverse_hub *hub)
{
    struct epoll_event ev[SERVERS + 1];
    return epoll_wait(uarc_reverse_hub_fd(hub), ev, SERVERS + 1, 0);
}

static bool record_pause(void *context, int ms)
{
    gathering *g = context;
    g->pauses++;
    g->last_pause = ms;
    int before = ready_in_hub(g->hub);
    for (size_t i = 0; i < g->closing_count; i++)
        close(g->closing[i]);
    /* arrived by the pause's end: loopback delivers at once, but this does not rely on it */
    for (int k = 0; k < 5000 && ready_in_hub(g->hub) < before + (int)g->closing_count; k++)
        poll(NULL, 0, 1);
    g->closing_count = 0;
    return !g->interrupt;
}

typedef struct hub_fixture {
    uarc_listener *listener;
    uarc_reverse_hub *hub;
    int fd[SERVERS]; /* -1: closed */
    int connected;
    int tolerance[SERVERS]; /* what each server's client says to uarc_client_gather_ms() */
    gathering g;
} hub_fixture;

static int tolerates(void *user_data)
{
    return *(int *)user_data;
}

/* Counts the connection; the fixture's servers (urn:gatheredN) answer tolerance[N]. */
static void on_connected(void *user_data, uarc_client *client, const char *server_uri,
                         bool restored, bool resumed)
{
    (void)restored, (void)resumed;
    hub_fixture *f = user_data;
    f->connected++;
    unsigned i;
    if (sscanf(server_uri, "urn:gathered%u", &i) == 1 && i < SERVERS)
        uarc__client_set_hooks(
            client, &(uarc__client_hooks){.gather_ms = tolerates, .user_data = &f->tolerance[i]});
}

/* Rounds without waiting until `fd` has bytes to read (5 s at most). */
static void run_until_readable(hub_fixture *f, int fd)
{
    for (int k = 0; k < 5000 && !readable(fd); k++)
        uarc_reverse_hub_process(f->hub, 0), poll(NULL, 0, 1);
}

/* Rounds without waiting until one runs no client. */
static void settle(uarc_reverse_hub *hub)
{
    while (uarc_reverse_hub_process(hub, 0), uarc__reverse_hub_clients_run(hub) > 0) {
    }
}

/* A server dials with an RHE for `uri`; returns once the client's HEL arrived. */
static int dial(hub_fixture *f, const char *uri)
{
    int fd = connect_to(uarc_listener_port(f->listener));
    fake_frame fr;
    frame_rhe(&fr, uri, "opc.tcp://127.0.0.1:4840");
    send_all(fd, fr.bytes, fr.length);
    run_until_readable(f, fd);
    uint8_t buf[4096];
    read_message(fd, buf, sizeof buf);
    assert_memory_equal(buf, "HELF", 4);
    return fd;
}

/* The server answers HEL and OPN; returns once the hub reports the channel open. */
static void open_channel(hub_fixture *f, int fd)
{
    int connected = f->connected;
    send_ack(fd);
    run_until_readable(f, fd);
    answer_opn(fd);
    for (int k = 0; k < 5000 && f->connected == connected; k++)
        uarc_reverse_hub_process(f->hub, 0), poll(NULL, 0, 1);
    assert_int_equal(f->connected, connected + 1);
    settle(f->hub);
}

/* SERVERS servers with their channel open (no session), their clients tolerating `tolerance`
 * (NULL: -1, nothing expected), the test's pauses in the hub. */
static void open_fixture_with(hub_fixture *f, uint32_t gather_ms, const int *tolerance)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < SERVERS; i++)
        f->tolerance[i] = tolerance ? tolerance[i] : -1;
    uarc_listener_config lo = {.policy = accept_any,
                               .bind_addresses = (const char *[]){"127.0.0.1"},
                               .bind_address_count = 1};
    f->listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(f->listener), UARC_Good);
    uarc_reverse_hub_config ho = {.listener = f->listener,
                                  .client = {.no_session = true},
                                  .callbacks = {.connected = on_connected, .user_data = f},
                                  .gather_ms = gather_ms};
    f->hub = uarc_reverse_hub_new(&ho);
    assert_non_null(f->hub);
    f->g.hub = f->hub;
    uarc__reverse_hub_set_nap(f->hub, record_pause, &f->g);
    for (int i = 0; i < SERVERS; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "urn:gathered%d", i);
        f->fd[i] = dial(f, uri);
        open_channel(f, f->fd[i]);
    }
    settle(f->hub);
    /* the setup's rounds had events and moved handshakes on: their window and hold are closed
     * here rather than waited out */
    f->hub->woke_at = f->hub->handshake_moved_at = -1;
    f->g = (gathering){.hub = f->hub};
}

static void open_fixture(hub_fixture *f, uint32_t gather_ms)
{
    open_fixture_with(f, gather_ms, NULL);
}

/* Closes server i's socket (its client sees the end: an event for the hub). */
static void close_server(hub_fixture *f, int i)
{
    close(f->fd[i]);
    f->fd[i] = -1;
}

/* Server i closes its socket, and the next wait (up to 5 s) takes that as its one round. */
static void round_closing(hub_fixture *f, int i)
{
    close_server(f, i);
    assert_int_equal(uarc_reverse_hub_process(f->hub, 5000), UARC_Good);
    assert_int_equal(uarc__reverse_hub_clients_run(f->hub), 1);
}

static void close_fixture(hub_fixture *f)
{
    for (int i = 0; i < SERVERS; i++)
        if (f->fd[i] >= 0)
            close(f->fd[i]);
    uarc_reverse_hub_delete(f->hub);
    uarc_listener_delete(f->listener);
}

/* After a round that had events, the hub's next wait pauses first (up to gather_ms, at most
 * 1000, never longer than the caller's timeout, and what is left of that goes to epoll_wait),
 * and what arrived during the pause is handled in one round. A wait of 0 never pauses; a wait
 * that finds nothing leaves the window as it was. Each pause is asked for within milliseconds
 * of the wake-up it follows, well inside the window even under valgrind. */
static void test_gathering_pauses_after_a_round_with_events(void **state)
{
    (void)state;
    hub_fixture f;
    open_fixture(&f, GATHER_MS);
    uarc_reverse_hub *hub = f.hub;
    gathering *g = &f.g;
    assert_int_equal(uarc_reverse_hub_gather_ms(hub), 0); /* no round with events yet */

    /* an event after a quiet round: handled at once */
    round_closing(&f, 0);
    assert_int_equal(g->pauses, 0);
    int left = uarc_reverse_hub_gather_ms(hub); /* what an event loop leaves the hub out for */
    assert_true(left > 0 && left <= MAX_GATHER_MS);
    /* a wait of 0 after it: no pause (an event loop's call), and the window stays */
    assert_int_equal(uarc_reverse_hub_process(hub, 0), UARC_Good);
    assert_int_equal(g->pauses, 0);
    assert_true(uarc_reverse_hub_gather_ms(hub) > 0);

    /* the next wait pauses, and both servers that closed meanwhile are one round */
    int later[] = {f.fd[1], f.fd[2]};
    f.fd[1] = f.fd[2] = -1;
    g->closing = later;
    g->closing_count = 2;
    assert_int_equal(uarc_reverse_hub_process(hub, 5000), UARC_Good);
    assert_int_equal(g->pauses, 1);
    assert_true(g->last_pause > 0 && g->last_pause <= MAX_GATHER_MS);
    assert_int_equal(uarc__reverse_hub_last_wait(hub), 5000 - g->last_pause);
    assert_int_equal(uarc__reverse_hub_clients_run(hub), 2);

    /* the pause after that round stays within the caller's timeout, with nothing left after */
    assert_int_equal(uarc_reverse_hub_process(hub, 50), UARC_Good);
    assert_int_equal(g->pauses, 2);
    assert_int_equal(g->last_pause, 50);
    assert_int_equal(uarc__reverse_hub_last_wait(hub), 0);
    assert_int_equal(uarc__reverse_hub_clients_run(hub), 0);
    /* that found nothing: the window goes on (the test's pauses take no time), and the next
     * wait pauses for the rest of it; a wait without a limit of the caller's keeps the hub's */
    int rest = uarc_reverse_hub_gather_ms(hub);
    assert_true(rest > 0 && rest <= MAX_GATHER_MS);
    int last[] = {f.fd[3]};
    f.fd[3] = -1;
    g->closing = last;
    g->closing_count = 1;
    assert_int_equal(uarc_reverse_hub_process(hub, -1), UARC_Good);
    assert_int_equal(g->pauses, 3);
    assert_true(g->last_pause <= rest);
    assert_true(uarc__reverse_hub_last_wait(hub) > 60000); /* the hub's own next deadline */
    assert_int_equal(uarc__reverse_hub_clients_run(hub), 1);
    close_fixture(&f);
}

/* For gather_ms after a round that moved a handshake on there is no pause, whatever else comes
 * meanwhile, so that the handshake's next steps come at full speed. A server that connects and
 * then says nothing does not hold gathering off beyond that. */
static void test_no_pause_after_a_handshake_step(void **state)
{
    (void)state;
    hub_fixture f;
    open_fixture(&f, GATHER_MS);
    int newcomer = dial(&f, "urn:newcomer"); /* its client waits for the ACK now */
    settle(f.hub);
    /* the dial's rounds: their window and their hold closed here rather than waited out */
    f.hub->woke_at = f.hub->handshake_moved_at = -1;

    /* the newcomer stays silent: a round of another server's event opens the window as usual */
    round_closing(&f, 0);
    assert_true(uarc_reverse_hub_gather_ms(f.hub) > 0);

    /* its ACK comes with another server's end: that round moves its handshake on (OPN sent) */
    send_ack(newcomer);
    close_server(&f, 1);
    int pauses = f.g.pauses;
    assert_int_equal(uarc_reverse_hub_process(f.hub, 5000), UARC_Good);
    assert_int_equal(f.g.pauses, pauses + 1); /* the window of the round before */
    assert_int_equal(uarc__reverse_hub_clients_run(f.hub), 2);
    assert_int_equal(uarc_reverse_hub_gather_ms(f.hub), 0);
    /* a round of other servers only: still no pause after it */
    round_closing(&f, 2);
    assert_int_equal(uarc_reverse_hub_gather_ms(f.hub), 0);
    answer_opn(newcomer); /* and the handshake's next step is not held back */
    assert_int_equal(uarc_reverse_hub_process(f.hub, 5000), UARC_Good);
    assert_int_equal(f.g.pauses, pauses + 1);
    assert_int_equal(uarc__reverse_hub_clients_run(f.hub), 1);
    assert_int_equal(f.connected, SERVERS + 1);

    /* connected, and the hold over (closed here): a round with events opens the window again */
    f.hub->handshake_moved_at = -1;
    close_server(&f, 3);
    assert_int_equal(uarc_reverse_hub_process(f.hub, 5000), UARC_Good);
    assert_true(uarc_reverse_hub_gather_ms(f.hub) > 0);
    close(newcomer);
    close_fixture(&f);
}

/* A signal during the pause: the call returns at once, as from an interrupted wait, without
 * waiting for what is left of its timeout. */
static void test_gathering_pause_cut_by_a_signal(void **state)
{
    (void)state;
    hub_fixture f;
    open_fixture(&f, GATHER_MS);
    round_closing(&f, 0);
    f.g.interrupt = true;
    assert_int_equal(uarc_reverse_hub_process(f.hub, 5000), UARC_GoodCallAgain);
    assert_int_equal(f.g.pauses, 1);
    assert_int_equal(uarc__reverse_hub_last_wait(f.hub), 0);
    close_fixture(&f);
}

/* UARC_REVERSE_HUB_GATHER_OFF: no pause at all, whatever happened before and whatever the
 * servers tolerate. */
static void test_no_gathering_no_pause(void **state)
{
    (void)state;
    hub_fixture f;
    open_fixture_with(&f, UARC_REVERSE_HUB_GATHER_OFF, (int[SERVERS]){30, 30, 30, 30});
    round_closing(&f, 0);
    assert_int_equal(uarc_reverse_hub_gather_ms(f.hub), 0);
    round_closing(&f, 1);
    assert_int_equal(uarc__reverse_hub_last_wait(f.hub), 5000);
    assert_int_equal(f.g.pauses, 0);
    close_fixture(&f);
}

/* A wait in which server i closes its socket during the pause: that is its round. Returns the
 * pauses taken so far. */
static int pause_closing(hub_fixture *f, int i)
{
    static int fd;
    fd = f->fd[i];
    f->fd[i] = -1;
    f->g.closing = &fd;
    f->g.closing_count = 1;
    assert_int_equal(uarc_reverse_hub_process(f->hub, 5000), UARC_Good);
    assert_int_equal(uarc__reverse_hub_clients_run(f->hub), 1);
    return f->g.pauses;
}

/* Automatic (gather_ms 0): the window is the smallest that a server in session tolerates, more
 * than 50 counting as 50; a server that goes no longer counts; none counted, no pause. */
static void test_automatic_window(void **state)
{
    (void)state;
    hub_fixture f;
    open_fixture_with(&f, 0, (int[SERVERS]){45, 10, -1, 80});
    gathering *g = &f.g;
    round_closing(&f, 2); /* expected nothing: the window stays the smallest, 10 */
    int left = uarc_reverse_hub_gather_ms(f.hub);
    assert_true(left > 0 && left <= 10);

    /* the 10 goes during the pause: 45 next */
    assert_int_equal(pause_closing(&f, 1), 1);
    assert_true(g->last_pause > 0 && g->last_pause <= 10);
    left = uarc_reverse_hub_gather_ms(f.hub);
    assert_true(left > 10 && left <= 45);
    /* then the 45: the 80 left, as 50 */
    assert_int_equal(pause_closing(&f, 0), 2);
    assert_true(g->last_pause > 10 && g->last_pause <= 45);
    left = uarc_reverse_hub_gather_ms(f.hub);
    assert_true(left > 10 && left <= 50);
    /* then the last one that counted: none left */
    assert_int_equal(pause_closing(&f, 3), 3);
    assert_true(g->last_pause > 10 && g->last_pause <= 50);
    assert_int_equal(uarc_reverse_hub_gather_ms(f.hub), 0);
    close_fixture(&f);
}

/* Automatic: one server in session that tolerates nothing (a request in flight) keeps every
 * wait from pausing. */
static void test_automatic_none_while_one_tolerates_nothing(void **state)
{
    (void)state;
    hub_fixture f;
    open_fixture_with(&f, 0, (int[SERVERS]){0, 30, 30, -1});
    round_closing(&f, 3);
    assert_int_equal(uarc_reverse_hub_gather_ms(f.hub), 0);
    assert_int_equal(uarc_reverse_hub_process(f.hub, 20), UARC_Good);
    assert_int_equal(f.g.pauses, 0);
    assert_int_equal(uarc__reverse_hub_last_wait(f.hub), 20);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gathering_pauses_after_a_round_with_events),
        cmocka_unit_test(test_no_pause_after_a_handshake_step),
        cmocka_unit_test(test_gathering_pause_cut_by_a_signal),
        cmocka_unit_test(test_no_gathering_no_pause),
        cmocka_unit_test(test_automatic_window),
        cmocka_unit_test(test_automatic_none_while_one_tolerates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
