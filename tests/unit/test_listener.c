/*
 * Listener on loopback, driven by scripted fake servers (see fake_server.h): accept through the
 * blocking and the non-blocking API and the connection handed over, every rejection of a
 * well-formed RHE (allowlist, policy, EndpointUrl) with the exact status in the callback and on
 * the wire, and what the listener logs.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "listener_fixture.h"

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- accept ---- */

static void test_accept_blocking(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);

    int fd = connect_to(uarc_listener_port(l));
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    frame_bytes(&f, "AFTER", 5); /* sent after the RHE: must stay unread in the socket */
    send_all(fd, f.bytes, f.length);

    uarc_reverse_connection c;
    uarc_reverse_connection_init(&c);
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_string_equal(c.server_uri, SERVER_URI);
    assert_int_equal(c.server_uri_length, strlen(SERVER_URI));
    assert_string_equal(c.endpoint_url, ENDPOINT_URL);
    assert_int_equal(c.endpoint_url_length, strlen(ENDPOINT_URL));
    assert_string_equal(c.peer, me);
    assert_true(c.fd >= 0);
    assert_true(fcntl(c.fd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(c.fd, F_GETFL) & O_NONBLOCK);

    /* Callbacks: once each, with the right data. */
    assert_int_equal(ev.hellos, 1);
    assert_int_equal(ev.accepted, 1);
    assert_int_equal(ev.rejected + ev.errors, 0);
    assert_string_equal(ev.hello_uri, SERVER_URI);
    assert_string_equal(ev.hello_url, ENDPOINT_URL);
    assert_string_equal(ev.hello_peer, me);
    assert_string_equal(ev.accepted_uri, SERVER_URI);
    assert_string_equal(ev.accepted_url, ENDPOINT_URL);
    assert_string_equal(ev.accepted_peer, me);
    assert_int_equal(ev.accepted_fd, c.fd);
    assert_int_equal(uarc_listener_pending_count(l), 0);

    /* The socket is live both ways, and the bytes after the RHE are still there. */
    struct pollfd p = {.fd = c.fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 3000), 1);
    char buf[16];
    assert_int_equal(recv(c.fd, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "AFTER", 5);
    assert_int_equal(send(c.fd, "HELF", 4, MSG_NOSIGNAL), 4);
    assert_true(recv_exact(fd, buf, 4));
    assert_memory_equal(buf, "HELF", 4);

    /* Ownership: take_fd moves the socket out; clear then leaves it open. */
    int taken = uarc_reverse_connection_take_fd(&c);
    assert_true(taken >= 0);
    assert_int_equal(c.fd, -1);
    assert_int_equal(uarc_reverse_connection_take_fd(&c), -1);
    uarc_reverse_connection_clear(&c);
    assert_null(c.server_uri);
    assert_true(fd_is_open(taken));
    close(taken);
    expect_eof(fd);
    close(fd);

    /* A second connection left in the struct: clear closes its socket. */
    fd = connect_to(uarc_listener_port(l));
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_int_equal(ev.accepted, 2);
    uarc_reverse_connection_clear(&c);
    assert_int_equal(c.fd, -1);
    expect_eof(fd);
    close(fd);

    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_nonblocking_api(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .hello_timeout_ms = 5000};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int lfd = uarc_listener_fd(l);
    assert_true(lfd >= 0);
    assert_int_equal(uarc_listener_timeout_ms(l), -1); /* nothing pending: no deadline */
    uarc_reverse_connection c;
    assert_false(uarc_listener_next(l, &c));

    /* A silent peer gives the listener a deadline within the hello timeout. */
    int silent = connect_to(uarc_listener_port(l));
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 3000), 1);
    assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
    assert_int_equal(uarc_listener_pending_count(l), 1);
    int t = uarc_listener_timeout_ms(l);
    assert_true(t > 0 && t <= 5000);

    /* An honest peer: poll the one descriptor, process without waiting, take with next(). */
    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    int64_t end = now_ms() + 3000;
    bool got = false;
    while (!got && now_ms() < end) {
        int wait = uarc_listener_timeout_ms(l);
        if (wait < 0 || wait > 100)
            wait = 100;
        p = (struct pollfd){.fd = lfd, .events = POLLIN};
        assert_true(poll(&p, 1, wait) >= 0);
        assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
        got = uarc_listener_next(l, &c);
    }
    assert_true(got);
    assert_string_equal(c.server_uri, SERVER_URI);
    assert_string_equal(c.endpoint_url, ENDPOINT_URL);
    assert_int_equal(ev.accepted, 1);
    uarc_reverse_connection none;
    assert_false(uarc_listener_next(l, &none));
    uarc_reverse_connection_clear(&c);
    assert_int_equal(uarc_listener_pending_count(l), 1); /* the silent one still waits */

    close(fd);
    close(silent);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/* ---- rejections: a well-formed RHE the listener refuses ---- */

static void test_reject_unknown_server_uri(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    fake_frame f;
    frame_rhe(&f, "urn:test:stranger", ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "urn:test:stranger");
    /* Case matters: the ServerUri is compared byte for byte. */
    frame_rhe(&f, "URN:TEST:SERVER", ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, NULL);
    uarc_allowlist_delete(a);
}

static void test_reject_empty_allowlist(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(NULL, NULL);
    uarc_listener_config o = {.allowlist = a};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "empty");
    uarc_allowlist_delete(a);
}

static void test_reject_no_allowlist_no_policy(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true,
                   "no allowlist or policy");
}

typedef struct policy_state {
    int calls;
    uarc_status answer;
    const char *reason; /* written when rejecting; NULL writes nothing */
    char seen_uri[TEXT_SIZE], seen_url[TEXT_SIZE], seen_peer[UARC_PEER_SIZE];
} policy_state;

static uarc_status policy(void *user_data, const uarc_rhe *hello, const char *peer, char *reason,
                          size_t reason_size)
{
    policy_state *ps = user_data;
    ps->calls++;
    copy_view(ps->seen_uri, hello->server_uri);
    copy_view(ps->seen_url, hello->endpoint_url);
    snprintf(ps->seen_peer, sizeof ps->seen_peer, "%s", peer);
    if (ps->answer != UARC_Good && ps->reason)
        snprintf(reason, reason_size, "%s", ps->reason);
    return ps->answer;
}

static void test_policy_accepts(void **state)
{
    (void)state;
    policy_state ps = {.answer = UARC_Good};
    uarc_listener_config o = {.policy = policy, .policy_user_data = &ps};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    fake_frame f;
    frame_rhe(&f, "urn:any:server", ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_int_equal(ps.calls, 1);
    assert_string_equal(ps.seen_uri, "urn:any:server");
    assert_string_equal(ps.seen_url, ENDPOINT_URL);
    assert_string_equal(ps.seen_peer, me);
    assert_string_equal(c.server_uri, "urn:any:server");
    assert_int_equal(ev.accepted, 1);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
}

static void test_policy_rejects_with_reason(void **state)
{
    (void)state;
    policy_state ps = {.answer = UARC_BadUserAccessDenied, .reason = "not on the roster today"};
    uarc_listener_config o = {.policy = policy, .policy_user_data = &ps};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    /* Whatever status the policy returns, the wire carries the spec's code. */
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true,
                   "not on the roster today");
    assert_int_equal(ps.calls, 1);

    /* A policy that gives no reason still yields a non-empty one. */
    ps = (policy_state){.answer = UARC_BadUserAccessDenied};
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "policy");
    assert_int_equal(ps.calls, 1);
}

static void test_policy_with_allowlist(void **state)
{
    (void)state;
    /* Both configured: the allowlist must pass first, then the policy decides. */
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    policy_state ps = {.answer = UARC_BadUserAccessDenied, .reason = "policy says no"};
    uarc_listener_config o = {.allowlist = a, .policy = policy, .policy_user_data = &ps};
    fake_frame f;
    frame_rhe(&f, "urn:test:stranger", ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "stranger");
    assert_int_equal(ps.calls, 0);
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "policy says no");
    assert_int_equal(ps.calls, 1);
    uarc_allowlist_delete(a);
}

static void test_reject_pinned_endpoint_mismatch(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, "opc.tcp://pinned.test:4840");
    uarc_listener_config o = {.allowlist = a};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, "opc.tcp://other.test:4840");
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, NULL);

    /* The pinned URL itself is accepted. */
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    frame_rhe(&f, SERVER_URI, "opc.tcp://pinned.test:4840");
    send_all(fd, f.bytes, f.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_string_equal(c.endpoint_url, "opc.tcp://pinned.test:4840");
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_reject_endpoint_not_opc_tcp(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, "http://server.test:4840/ua");
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "opc.tcp");
    frame_rhe(&f, SERVER_URI, "");
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "empty");
    uarc_allowlist_delete(a);

    /* The EndpointUrl rules apply before a policy is even asked. */
    policy_state ps = {.answer = UARC_Good};
    uarc_listener_config po = {.policy = policy, .policy_user_data = &ps};
    frame_rhe(&f, SERVER_URI, "http://server.test:4840/ua");
    expect_refusal(&po, f.bytes, f.length, UARC_BadTcpEndpointUrlInvalid, true, "opc.tcp");
    assert_int_equal(ps.calls, 0);
}

static void test_reject_with_message_type_invalid(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .reject_with_message_type_invalid = true};
    fake_frame f;
    frame_rhe(&f, "urn:test:stranger", ENDPOINT_URL);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpMessageTypeInvalid, true, "stranger");
    uarc_allowlist_delete(a);
}

/* ---- logging ---- */

#define LOG_CAPACITY 32

typedef struct log_book {
    int count;
    uarc_log_level level[LOG_CAPACITY];
    char category[LOG_CAPACITY][32];
    char message[LOG_CAPACITY][TEXT_SIZE];
} log_book;

static void on_log(void *user_data, uarc_log_level level, const char *category, const char *message)
{
    log_book *b = user_data;
    assert_true(b->count < LOG_CAPACITY);
    b->level[b->count] = level;
    snprintf(b->category[b->count], sizeof b->category[b->count], "%s", category);
    snprintf(b->message[b->count], sizeof b->message[b->count], "%s", message);
    b->count++;
}

/* The one message logged since `from` that contains every given part (NULL-terminated list);
 * fails unless there is exactly one, and returns its index. */
static int logged(const log_book *b, int from, ...)
{
    int found = -1;
    for (int i = from; i < b->count; i++) {
        va_list ap;
        va_start(ap, from);
        bool all = true;
        for (const char *part; (part = va_arg(ap, const char *));)
            all &= strstr(b->message[i], part) != NULL;
        va_end(ap);
        if (!all)
            continue;
        if (found >= 0)
            fail_msg("logged twice: \"%s\" and \"%s\"", b->message[found], b->message[i]);
        found = i;
    }
    if (found < 0)
        fail_msg("not logged (%d messages since %d)", b->count - from, from);
    assert_string_equal(b->category[found], "listener");
    return found;
}

/* Sends `bytes` as a server and runs the listener until it has answered or accepted. */
static void dial_and_settle(uarc_listener *l, events *ev, const void *bytes, size_t length)
{
    int before = ev->accepted + ev->rejected + ev->errors;
    int fd = connect_to(uarc_listener_port(l));
    send_all(fd, bytes, length);
    int64_t end = now_ms() + 3000;
    while (ev->accepted + ev->rejected + ev->errors == before && now_ms() < end)
        assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
    assert_int_equal(ev->accepted + ev->rejected + ev->errors, before + 1);
    uarc_reverse_connection c;
    while (uarc_listener_next(l, &c))
        uarc_reverse_connection_clear(&c);
    close(fd);
}

static void test_logger(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    static log_book book;
    memset(&book, 0, sizeof book);
    uarc_listener_config o = {.allowlist = a, .logger = {on_log, &book, UARC_LOG_DEBUG}};
    events ev;
    uarc_listener *l = start(&o, &ev);
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%u", (unsigned)uarc_listener_port(l));
    int i = logged(&book, 0, "listening on", address, NULL);
    assert_int_equal(book.level[i], UARC_LOG_INFO);

    fake_frame good, stranger;
    frame_rhe(&good, SERVER_URI, ENDPOINT_URL);
    frame_rhe(&stranger, "urn:test:stranger", ENDPOINT_URL);
    const char *http = "GET / HTTP/1.1\r\n\r\n";

    /* Accepted: INFO, naming the peer and the ServerUri. */
    int from = book.count;
    dial_and_settle(l, &ev, good.bytes, good.length);
    assert_int_equal(ev.accepted, 1);
    i = logged(&book, from, "accepted", SERVER_URI, ev.accepted_peer, NULL);
    assert_int_equal(book.level[i], UARC_LOG_INFO);
    assert_int_equal(book.count, from + 1);

    /* Rejected: INFO, naming the peer and the reason (which names the ServerUri). */
    from = book.count;
    dial_and_settle(l, &ev, stranger.bytes, stranger.length);
    assert_int_equal(ev.rejected, 1);
    i = logged(&book, from, "rejected", ev.peer, "urn:test:stranger", NULL);
    assert_int_equal(book.level[i], UARC_LOG_INFO);
    assert_int_equal(book.count, from + 1);

    /* Not an RHE: WARNING, naming the peer and the status. */
    from = book.count;
    dial_and_settle(l, &ev, http, strlen(http));
    assert_int_equal(ev.errors, 1);
    i = logged(&book, from, ev.peer, "BadTcpMessageTypeInvalid", NULL);
    assert_int_equal(book.level[i], UARC_LOG_WARNING);
    assert_int_equal(book.count, from + 1);
    uarc_listener_delete(l);

    /* min_level WARNING: the INFO messages are not delivered, the WARNING one is. */
    memset(&book, 0, sizeof book);
    o = (uarc_listener_config){.allowlist = a, .logger = {on_log, &book, UARC_LOG_WARNING}};
    l = start(&o, &ev);
    dial_and_settle(l, &ev, good.bytes, good.length);
    dial_and_settle(l, &ev, stranger.bytes, stranger.length);
    assert_int_equal(book.count, 0);
    dial_and_settle(l, &ev, http, strlen(http));
    assert_int_equal(book.count, 1);
    assert_int_equal(book.level[0], UARC_LOG_WARNING);
    uarc_listener_delete(l);

    /* A failed listen: ERROR, with the same detail as uarc_listener_error(). */
    static const char *const bogus[] = {"not an address at all"};
    memset(&book, 0, sizeof book);
    o = (uarc_listener_config){.bind_addresses = bogus,
                               .bind_address_count = 1,
                               .logger = {on_log, &book, UARC_LOG_DEBUG}};
    l = uarc_listener_new(&o);
    assert_non_null(l);
    assert_int_equal(uarc_listener_listen(l), UARC_BadInvalidArgument);
    assert_int_equal(book.count, 1);
    assert_int_equal(book.level[0], UARC_LOG_ERROR);
    assert_string_equal(book.message[0], uarc_listener_error(l));
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

int main(void)
{
    raise_fd_limit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_blocking),
        cmocka_unit_test(test_nonblocking_api),
        cmocka_unit_test(test_reject_unknown_server_uri),
        cmocka_unit_test(test_reject_empty_allowlist),
        cmocka_unit_test(test_reject_no_allowlist_no_policy),
        cmocka_unit_test(test_policy_accepts),
        cmocka_unit_test(test_policy_rejects_with_reason),
        cmocka_unit_test(test_policy_with_allowlist),
        cmocka_unit_test(test_reject_pinned_endpoint_mismatch),
        cmocka_unit_test(test_reject_endpoint_not_opc_tcp),
        cmocka_unit_test(test_reject_with_message_type_invalid),
        cmocka_unit_test(test_logger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
