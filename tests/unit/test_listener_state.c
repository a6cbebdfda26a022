/*
 * Listener binding and state: port 0, IPv6 loopback, an address in use or unparsable, the
 * default dual-stack bind and two addresses on one port; close and listen again, accept before
 * listening, the blocking accept's timeout, a zero timeout and an interrupting signal.
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include "listener_fixture.h"

/* ---- binding and state ---- */

static void test_bind_port_zero(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uint16_t port = uarc_listener_port(l);
    assert_int_not_equal(port, 0);
    assert_int_equal(uarc_listener_address_count(l), 1);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
    assert_string_equal(uarc_listener_address(l, 0), want);
    assert_null(uarc_listener_address(l, 1));
    /* It is really listening there. */
    int fd = connect_to(port);
    close(fd);
    uarc_listener_delete(l);
}

static void test_bind_ipv6_loopback(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0)
        skip();
    close(probe);
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    static const char *const v6[] = {"::1"};
    uarc_listener_config o = {.bind_addresses = v6, .bind_address_count = 1, .allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uint16_t port = uarc_listener_port(l);
    char want[32];
    snprintf(want, sizeof want, "[::1]:%u", (unsigned)port);
    assert_int_equal(uarc_listener_address_count(l), 1);
    assert_string_equal(uarc_listener_address(l, 0), want);

    int fd = connect_to_host("::1", port);
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, "opc.tcp://[::1]:4840");
    send_all(fd, f.bytes, f.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_string_equal(c.peer, me);
    assert_string_equal(c.endpoint_url, "opc.tcp://[::1]:4840");
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);

    /* The bracketed form names the same address. */
    static const char *const v6b[] = {"[::1]"};
    o.bind_addresses = v6b;
    l = start(&o, &ev);
    snprintf(want, sizeof want, "[::1]:%u", (unsigned)uarc_listener_port(l));
    assert_string_equal(uarc_listener_address(l, 0), want);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_bind_in_use(void **state)
{
    (void)state;
    uarc_listener_config first_o = {0};
    events ev;
    uarc_listener *first = start(&first_o, &ev);
    uint16_t port = uarc_listener_port(first);

    uarc_listener_config o = {.bind_addresses = loopback4, .bind_address_count = 1, .port = port};
    uarc_listener *l = uarc_listener_new(&o);
    assert_non_null(l);
    assert_int_equal(uarc_listener_listen(l), UARC_BadTcpInternalError);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    const char *err = uarc_listener_error(l);
    if (!strstr(err, addr) || !strstr(err, "Address already in use"))
        fail_msg("bind error \"%s\" should name %s and the system error", err, addr);
    assert_int_equal(uarc_listener_address_count(l), 0);
    assert_int_equal(uarc_listener_fd(l), -1);
    assert_int_equal(uarc_listener_port(l), 0);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 0, &c), UARC_BadInvalidState);
    uarc_listener_delete(l);

    /* The failed listener left the first one alone. */
    int fd = connect_to(port);
    close(fd);
    uarc_listener_delete(first);
}

static void test_bind_bad_address(void **state)
{
    (void)state;
    static const char *const bogus[] = {"not an address at all"};
    uarc_listener_config o = {.bind_addresses = bogus, .bind_address_count = 1};
    uarc_listener *l = uarc_listener_new(&o);
    assert_non_null(l);
    assert_int_equal(uarc_listener_listen(l), UARC_BadInvalidArgument);
    assert_non_null(strstr(uarc_listener_error(l), "not an address at all"));
    assert_int_equal(uarc_listener_address_count(l), 0);
    uarc_listener_delete(l);
}

static void test_close_idempotent(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uarc_listener_close(l);
    uarc_listener_close(l);
    assert_int_equal(uarc_listener_fd(l), -1);
    assert_int_equal(uarc_listener_port(l), 0);
    assert_int_equal(uarc_listener_address_count(l), 0);
    assert_int_equal(uarc_listener_timeout_ms(l), -1);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 100, &c), UARC_BadInvalidState);
    assert_int_equal(uarc_listener_process(l, 0), UARC_BadInvalidState);
    assert_true(uarc_listener_error(l)[0] != '\0');
    /* It can listen again. */
    assert_int_equal(uarc_listener_listen(l), UARC_Good);
    assert_int_not_equal(uarc_listener_port(l), 0);
    assert_int_equal(uarc_listener_listen(l), UARC_BadInvalidState); /* already listening */
    uarc_listener_close(l);
    uarc_listener_delete(l);
    uarc_listener_delete(NULL);
}

static void test_accept_never_listening(void **state)
{
    (void)state;
    uarc_listener *l = uarc_listener_new(NULL);
    assert_non_null(l);
    assert_int_equal(uarc_listener_fd(l), -1);
    assert_int_equal(uarc_listener_port(l), 0);
    assert_string_equal(uarc_listener_error(l), "");
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 100, &c), UARC_BadInvalidState);
    assert_true(uarc_listener_error(l)[0] != '\0');
    assert_false(uarc_listener_next(l, &c));
    uarc_listener_close(l);
    uarc_listener_delete(l);
}

static void test_accept_timeout(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uarc_reverse_connection c;
    int64_t t0 = now_ms();
    assert_int_equal(uarc_listener_accept(l, 300, &c), UARC_BadTimeout);
    int64_t waited = now_ms() - t0;
    assert_true(waited >= 290); /* it did wait for the given time... */
    assert_true(waited < 3000); /* ...and returned (a functional bound, not a speed check) */
    assert_true(uarc_listener_error(l)[0] != '\0');
    assert_int_equal(uarc_listener_accept(l, 0, &c), UARC_BadTimeout);
    uarc_listener_delete(l);
}

static void test_accept_zero_timeout(void **state)
{
    (void)state;
    /* A zero timeout means "do not wait", not "do not look": an RHE already in the kernel is
     * picked up. */
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    struct pollfd p = {.fd = uarc_listener_fd(l), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 3000), 1);
    uarc_reverse_connection c;
    uarc_status s = uarc_listener_accept(l, 0, &c);
    if (s != UARC_Good)
        fail_msg("accept(0) with an RHE waiting: %s", uarc_status_name(s));
    assert_string_equal(c.server_uri, SERVER_URI);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_accept_interrupted_by_signal(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    events ev;
    uarc_listener *l = start(&o, &ev);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 100000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    uarc_reverse_connection c;
    uarc_status s = uarc_listener_accept(l, 5000, &c);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(s, UARC_GoodCallAgain);
    /* Still usable afterwards. */
    assert_int_equal(uarc_listener_accept(l, 50, &c), UARC_BadTimeout);
    uarc_listener_delete(l);
}

static void test_bind_default_dual_stack(void **state)
{
    (void)state;
    /* No address: all interfaces, one dual-stack IPv6 socket when the host has IPv6. */
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    memset(&ev, 0, sizeof ev);
    o.callbacks = (uarc_listener_callbacks){on_hello, on_accepted, on_rejected, on_error, &ev};
    uarc_listener *l = uarc_listener_new(&o);
    assert_non_null(l);
    assert_int_equal(uarc_listener_listen(l), UARC_Good);
    uint16_t port = uarc_listener_port(l);
    assert_int_equal(uarc_listener_address_count(l), 1);
    char v6[32], v4[32];
    snprintf(v6, sizeof v6, "[::]:%u", (unsigned)port);
    snprintf(v4, sizeof v4, "0.0.0.0:%u", (unsigned)port);
    const char *shown = uarc_listener_address(l, 0);
    if (strcmp(shown, v6) != 0 && strcmp(shown, v4) != 0)
        fail_msg("default bind shows %s", shown);

    /* An IPv4 server reaches it, and its address is shown as IPv4, not IPv4-mapped. */
    int fd = connect_to(port);
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_string_equal(c.peer, me);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_bind_two_addresses(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0)
        skip();
    close(probe);
    static const char *const both[] = {"127.0.0.1", "::1"};
    uarc_listener_config o = {.bind_addresses = both, .bind_address_count = 2};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uint16_t port = uarc_listener_port(l);
    char want4[32], want6[32];
    snprintf(want4, sizeof want4, "127.0.0.1:%u", (unsigned)port);
    snprintf(want6, sizeof want6, "[::1]:%u", (unsigned)port);
    assert_int_equal(uarc_listener_address_count(l), 2);
    assert_string_equal(uarc_listener_address(l, 0), want4);
    assert_string_equal(uarc_listener_address(l, 1), want6); /* same port as the first */
    /* Both sockets are served through the one descriptor. */
    int f4 = connect_to_host("127.0.0.1", port), f6 = connect_to_host("::1", port);
    assert_true(drive_until_pending(l, 2, 3000));
    close(f4);
    close(f6);
    uarc_listener_delete(l);
}

int main(void)
{
    raise_fd_limit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_port_zero),
        cmocka_unit_test(test_bind_ipv6_loopback),
        cmocka_unit_test(test_bind_in_use),
        cmocka_unit_test(test_bind_bad_address),
        cmocka_unit_test(test_close_idempotent),
        cmocka_unit_test(test_accept_never_listening),
        cmocka_unit_test(test_accept_timeout),
        cmocka_unit_test(test_accept_zero_timeout),
        cmocka_unit_test(test_accept_interrupted_by_signal),
        cmocka_unit_test(test_bind_default_dual_stack),
        cmocka_unit_test(test_bind_two_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
