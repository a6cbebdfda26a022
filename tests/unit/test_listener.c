/*
 * Listener on loopback, driven by scripted fake servers (see fake_server.h): accept through both
 * APIs, every rejection and failure path with the exact status in the callback and on the wire,
 * slow, interleaved, silent and hostile peers, the pending cap, descriptor accounting, binding.
 *
 * Time appears only as functional bounds (a deadline must fire, a peer must not wait for another
 * peer's deadline), never as a speed measurement.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <cmocka.h>

#include "fake_server.h"
#include "uarc/listener.h"

#define SERVER_URI   "urn:test:server"
#define ENDPOINT_URL "opc.tcp://server.test:4840/ua"
#define TEXT_SIZE    600

/* ---- events recorded from the callbacks ---- */

typedef struct events {
    int hellos, accepted, rejected, errors;
    uarc_status status; /* of the last rejected or error event */
    char reason[TEXT_SIZE];
    char peer[UARC_PEER_SIZE];
    char hello_uri[TEXT_SIZE], hello_url[TEXT_SIZE], hello_peer[UARC_PEER_SIZE];
    char accepted_uri[TEXT_SIZE], accepted_url[TEXT_SIZE], accepted_peer[UARC_PEER_SIZE];
    int accepted_fd;
    uarc_status statuses[512]; /* every error status, in order */
} events;

static void copy_view(char *out, uarc_view v)
{
    size_t n = v.length < TEXT_SIZE - 1 ? v.length : TEXT_SIZE - 1;
    if (n)
        memcpy(out, v.data, n);
    out[n] = '\0';
}

static void on_hello(void *user_data, const char *peer, const uarc_rhe *hello)
{
    events *ev = user_data;
    ev->hellos++;
    copy_view(ev->hello_uri, hello->server_uri);
    copy_view(ev->hello_url, hello->endpoint_url);
    snprintf(ev->hello_peer, sizeof ev->hello_peer, "%s", peer);
}

static void on_accepted(void *user_data, const uarc_reverse_connection *c)
{
    events *ev = user_data;
    ev->accepted++;
    snprintf(ev->accepted_uri, sizeof ev->accepted_uri, "%s", c->server_uri);
    snprintf(ev->accepted_url, sizeof ev->accepted_url, "%s", c->endpoint_url);
    snprintf(ev->accepted_peer, sizeof ev->accepted_peer, "%s", c->peer);
    assert_int_equal(c->server_uri_length, strlen(c->server_uri));
    assert_int_equal(c->endpoint_url_length, strlen(c->endpoint_url));
    ev->accepted_fd = c->fd;
}

static void on_rejected(void *user_data, const char *peer, const uarc_rhe *hello,
                        uarc_status status, const char *reason)
{
    events *ev = user_data;
    (void)hello;
    ev->rejected++;
    ev->status = status;
    snprintf(ev->reason, sizeof ev->reason, "%s", reason);
    snprintf(ev->peer, sizeof ev->peer, "%s", peer);
}

static void on_error(void *user_data, const char *peer, uarc_status status, const char *reason)
{
    events *ev = user_data;
    if ((size_t)ev->errors < sizeof ev->statuses / sizeof ev->statuses[0])
        ev->statuses[ev->errors] = status;
    ev->errors++;
    ev->status = status;
    snprintf(ev->reason, sizeof ev->reason, "%s", reason);
    snprintf(ev->peer, sizeof ev->peer, "%s", peer);
}

/* ---- listener helpers ---- */

static const char *const loopback4[] = {"127.0.0.1"};

/* Binds 127.0.0.1 on a kernel-chosen port unless `o` names addresses; callbacks go to `ev`. */
static uarc_listener *start(uarc_listener_config *o, events *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->accepted_fd = -1;
    if (!o->bind_addresses) {
        o->bind_addresses = loopback4;
        o->bind_address_count = 1;
    }
    o->callbacks = (uarc_listener_callbacks){on_hello, on_accepted, on_rejected, on_error, ev};
    uarc_listener *l = uarc_listener_new(o);
    assert_non_null(l);
    uarc_status s = uarc_listener_listen(l);
    if (s != UARC_Good)
        fail_msg("listen: %s: %s", uarc_status_name(s), uarc_listener_error(l));
    assert_int_not_equal(uarc_listener_port(l), 0);
    return l;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool same_address(const struct sockaddr_storage *a, socklen_t alen,
                         const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The listener runs in this process, so the far end of a loopback connection is one of our own
 * descriptors: the socket whose local and peer addresses are `fd`'s peer and local addresses.
 * Waiting on it lets a test see that bytes or a FIN reached the listener without reading them. */
static int far_end(int fd)
{
    struct sockaddr_storage me, peer, a, b;
    socklen_t me_len = sizeof me, peer_len = sizeof peer;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &me_len), 0);
    assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &peer_len), 0);
    struct rlimit r;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
    int max = r.rlim_cur > 65536 ? 65536 : (int)r.rlim_cur;
    for (int i = 0; i < max; i++) {
        socklen_t a_len = sizeof a, b_len = sizeof b;
        if (i == fd || getsockname(i, (struct sockaddr *)&a, &a_len) != 0 ||
            getpeername(i, (struct sockaddr *)&b, &b_len) != 0)
            continue;
        if (same_address(&a, a_len, &peer, peer_len) && same_address(&b, b_len, &me, me_len))
            return i;
    }
    fail_msg("no descriptor of this process is the far end of %d", fd);
    return -1;
}

/* Waits until `fd` has `events` pending, without consuming anything; the bound only fails a hung
 * test. */
static void wait_for(int fd, short wanted)
{
    struct pollfd p = {.fd = fd, .events = wanted};
    int64_t end = now_ms() + 10000;
    while (!(p.revents & wanted)) {
        int64_t left = end - now_ms();
        if (left <= 0)
            fail_msg("descriptor %d: nothing pending after 10 s", fd);
        assert_true(poll(&p, 1, (int)left) >= 0 || errno == EINTR);
    }
}

/* Runs the listener until *counter reaches `target` or `bound_ms` passes. */
static bool drive_until(uarc_listener *l, const int *counter, int target, int bound_ms)
{
    int64_t end = now_ms() + bound_ms;
    while (*counter < target) {
        int64_t left = end - now_ms();
        if (left <= 0)
            return false;
        assert_int_equal(uarc_listener_process(l, left < 20 ? (int)left : 20), UARC_Good);
    }
    return true;
}

/* Runs the listener until it holds `count` pending connections or `bound_ms` passes. */
static bool drive_until_pending(uarc_listener *l, size_t count, int bound_ms)
{
    int64_t end = now_ms() + bound_ms;
    while (uarc_listener_pending_count(l) != count) {
        if (now_ms() >= end)
            return false;
        assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
    }
    return true;
}

static uarc_allowlist *allow(const char *server_uri, const char *endpoint_url)
{
    uarc_allowlist *a = uarc_allowlist_new();
    assert_non_null(a);
    if (server_uri)
        assert_int_equal(uarc_allowlist_add(a, server_uri, endpoint_url), UARC_Good);
    return a;
}

static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/*
 * One fake server sends `bytes` to a listener built from `o` (127.0.0.1, an allowlist with
 * SERVER_URI unless `o` says otherwise), then must see: exactly one rejected event (`rejected`)
 * or error event with `status`, that status and the same reason in an ERR frame, then EOF.
 * The reason must contain `reason_part` when it is not NULL.
 */
static void expect_refusal(uarc_listener_config *o, const void *bytes, size_t length,
                           uarc_status status, bool rejected, const char *reason_part)
{
    events ev;
    uarc_listener *l = start(o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    send_all(fd, bytes, length);

    assert_true(drive_until(l, rejected ? &ev.rejected : &ev.errors, 1, 3000));
    assert_int_equal(ev.status, status);
    assert_string_equal(ev.peer, me);
    assert_int_equal(ev.accepted, 0);
    assert_int_equal(rejected ? ev.errors : ev.rejected, 0);
    assert_int_equal(ev.hellos, rejected ? 1 : 0);
    if (reason_part && !strstr(ev.reason, reason_part))
        fail_msg("reason \"%s\" lacks \"%s\"", ev.reason, reason_part);

    uint32_t wire_status = 0;
    char wire_reason[TEXT_SIZE];
    read_err_frame(fd, &wire_status, wire_reason, sizeof wire_reason);
    assert_int_equal(wire_status, status);
    assert_string_equal(wire_reason, ev.reason);
    expect_eof(fd);

    uarc_reverse_connection c;
    assert_false(uarc_listener_next(l, &c));
    assert_int_equal(uarc_listener_pending_count(l), 0);
    close(fd);
    uarc_listener_delete(l);
}

/* Like expect_refusal for a peer that fails and gets no ERR: the socket just closes. */
static void expect_silent_failure(uarc_listener_config *o, const void *bytes, size_t length,
                                  bool close_after_send, uarc_status status, int bound_ms)
{
    events ev;
    uarc_listener *l = start(o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    char me[UARC_PEER_SIZE];
    local_address(fd, me, sizeof me);
    if (length)
        send_all(fd, bytes, length);
    if (close_after_send) {
        close(fd);
        fd = -1;
    }
    assert_true(drive_until(l, &ev.errors, 1, bound_ms));
    assert_int_equal(ev.status, status);
    assert_string_equal(ev.peer, me);
    assert_int_equal(ev.accepted + ev.rejected + ev.hellos, 0);
    assert_int_equal(uarc_listener_pending_count(l), 0);
    if (fd >= 0) {
        expect_eof(fd);
        close(fd);
    }
    uarc_listener_delete(l);
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

/* ---- malformed frames: error event, ERR with the parser's status, close ---- */

static void refuse_malformed(const fake_frame *f, uarc_status status)
{
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    expect_refusal(&o, f->bytes, f->length, status, false, NULL);
    uarc_allowlist_delete(a);
}

static void test_wrong_message_type(void **state)
{
    (void)state;
    fake_frame f = {0};
    const char *http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    frame_bytes(&f, http, strlen(http));
    refuse_malformed(&f, UARC_BadTcpMessageTypeInvalid);

    /* A normal-direction HEL sent to the reverse listener is the wrong type too. */
    frame_begin(&f, "HELF");
    for (int i = 0; i < 5; i++)
        frame_u32(&f, 8192);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpMessageTypeInvalid);
}

static void test_chunk_type_not_f(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEC");
    frame_cstring(&f, SERVER_URI);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpMessageTypeInvalid);
}

static void test_message_too_large_header_only(void **state)
{
    (void)state;
    /* Only the header is sent: the answer must come without waiting for the body (the hello
     * timeout is far longer than the bound expect_refusal allows). */
    fake_frame f;
    frame_begin(&f, "RHEF");
    f.bytes[4] = 0x00, f.bytes[5] = 0x00, f.bytes[6] = 0x10, f.bytes[7] = 0x00; /* 1 MiB */
    refuse_malformed(&f, UARC_BadTcpMessageTooLarge);

    /* One byte over the spec's largest RHE. */
    uint32_t size = UARC_RHE_MAX_MESSAGE_SIZE + 1;
    frame_begin(&f, "RHEF");
    f.bytes[4] = (uint8_t)size, f.bytes[5] = (uint8_t)(size >> 8);
    refuse_malformed(&f, UARC_BadTcpMessageTooLarge);
}

static void test_message_too_large_configured(void **state)
{
    (void)state;
    /* max_message_size is honoured: a well-formed RHE above it is refused. */
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .max_message_size = 32};
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    assert_true(f.length > 32);
    expect_refusal(&o, f.bytes, f.length, UARC_BadTcpMessageTooLarge, false, NULL);
    uarc_allowlist_delete(a);
}

static void test_message_size_below_16(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_u32(&f, 0);
    frame_end(&f); /* MessageSize 12 */
    refuse_malformed(&f, UARC_BadDecodingError);
}

static void test_negative_string_length(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_string(&f, -2, NULL, 0);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadDecodingError);
}

static void test_string_running_past_frame(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_cstring(&f, SERVER_URI);
    frame_string(&f, 100, "opc.tcp://x", 11);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadDecodingError);
}

static void test_string_4096(void **state)
{
    (void)state;
    static char long_uri[4096];
    memset(long_uri, 'u', sizeof long_uri);
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_string(&f, 4096, long_uri, sizeof long_uri);
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpEndpointUrlInvalid);

    static char long_url[4200];
    memcpy(long_url, "opc.tcp://h/", 12);
    memset(long_url + 12, 'p', sizeof long_url - 12);
    frame_begin(&f, "RHEF");
    frame_cstring(&f, SERVER_URI);
    frame_string(&f, 4096, long_url, 4096);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpEndpointUrlInvalid);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_string(&f, 20, SERVER_URI "\0evil", 20); /* 15 bytes, NUL, 4 bytes */
    frame_cstring(&f, ENDPOINT_URL);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadTcpEndpointUrlInvalid);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    fake_frame f;
    frame_begin(&f, "RHEF");
    frame_cstring(&f, SERVER_URI);
    frame_cstring(&f, ENDPOINT_URL);
    frame_bytes(&f, "xyz", 3);
    frame_end(&f);
    refuse_malformed(&f, UARC_BadDecodingError);
}

/* ---- peers that stop short ---- */

static void test_peer_closes_after_nothing(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    expect_silent_failure(&o, NULL, 0, true, UARC_BadConnectionClosed, 3000);
}

static void test_peer_closes_inside_header(void **state)
{
    (void)state;
    uarc_listener_config o = {0};
    expect_silent_failure(&o, "RHE", 3, true, UARC_BadConnectionClosed, 3000);
}

static void test_peer_closes_inside_body(void **state)
{
    (void)state;
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    uarc_listener_config o = {0};
    expect_silent_failure(&o, f.bytes, f.length - 10, true, UARC_BadConnectionClosed, 3000);
}

static void test_peer_half_closes_inside_body(void **state)
{
    (void)state;
    /* shutdown(SHUT_WR) rather than close: the fake server can still see the listener hang up. */
    uarc_listener_config o = {0};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, 12);
    assert_true(drive_until_pending(l, 1, 3000));
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_true(drive_until(l, &ev.errors, 1, 3000));
    assert_int_equal(ev.status, UARC_BadConnectionClosed);
    expect_eof(fd);
    close(fd);
    uarc_listener_delete(l);
}

static void test_hello_timeout(void **state)
{
    (void)state;
    uarc_listener_config o = {.hello_timeout_ms = 200};
    /* Silent from the start. */
    expect_silent_failure(&o, NULL, 0, false, UARC_BadTimeout, 3000);

    /* Part of a frame, then silence: the deadline counts from the connection, not the bytes. */
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    expect_silent_failure(&o, f.bytes, f.length - 1, false, UARC_BadTimeout, 3000);
}

static void test_hello_timeout_not_early(void **state)
{
    (void)state;
    /* The deadline is a deadline: a peer still inside it is not dropped. */
    uarc_listener_config o = {.hello_timeout_ms = 2000};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int64_t connected = now_ms(); /* no later than the listener's accept */
    int fd = connect_to(uarc_listener_port(l));
    assert_true(drive_until_pending(l, 1, 1000));
    assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
    assert_int_equal(ev.errors, 0);
    assert_int_equal(uarc_listener_pending_count(l), 1);
    assert_true(drive_until(l, &ev.errors, 1, 4000));
    assert_int_equal(ev.status, UARC_BadTimeout);
    int64_t waited = now_ms() - connected;
    if (waited < 2000)
        fail_msg("dropped after %lld ms, inside the 2000 ms hello timeout", (long long)waited);
    expect_eof(fd);
    close(fd);
    uarc_listener_delete(l);
}

/* ---- slow, interleaved, silent and hostile peers ---- */

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    int fd = connect_to(uarc_listener_port(l));
    assert_true(drive_until_pending(l, 1, 3000));
    int theirs = far_end(fd);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    /* Each byte reaches the listener, which looks at it, before the next one is sent. */
    for (size_t i = 0; i + 1 < f.length; i++) {
        send_all(fd, &f.bytes[i], 1);
        wait_for(theirs, POLLIN);
        assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
        assert_int_equal(ev.hellos + ev.errors + ev.rejected, 0);
    }
    send_all(fd, &f.bytes[f.length - 1], 1);

    uarc_reverse_connection c;
    uarc_status s = uarc_listener_accept(l, 4000, &c);
    assert_int_equal(s, UARC_Good);
    assert_string_equal(c.server_uri, SERVER_URI);
    assert_string_equal(c.endpoint_url, ENDPOINT_URL);
    assert_int_equal(ev.hellos, 1);
    assert_int_equal(ev.accepted, 1);
    assert_int_equal(ev.errors + ev.rejected, 0);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

static void test_interleaved_servers(void **state)
{
    (void)state;
    uarc_allowlist *a = allow("urn:test:alpha", NULL);
    assert_int_equal(uarc_allowlist_add(a, "urn:test:beta", NULL), UARC_Good);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);

    int fa = connect_to(uarc_listener_port(l)), fb = connect_to(uarc_listener_port(l));
    char pa[UARC_PEER_SIZE], pb[UARC_PEER_SIZE];
    local_address(fa, pa, sizeof pa);
    local_address(fb, pb, sizeof pb);
    fake_frame ra, rb;
    frame_rhe(&ra, "urn:test:alpha", "opc.tcp://alpha.test:4840");
    frame_rhe(&rb, "urn:test:beta", "opc.tcp://beta.test:48400/a/longer/path");
    /* Alternate small pieces (3 bytes each, so headers are split too), letting the listener
     * run between them. */
    size_t ia = 0, ib = 0;
    while (ia < ra.length || ib < rb.length) {
        size_t na = ra.length - ia < 3 ? ra.length - ia : 3;
        size_t nb = rb.length - ib < 3 ? rb.length - ib : 3;
        if (na)
            send_all(fa, ra.bytes + ia, na);
        ia += na;
        assert_int_equal(uarc_listener_process(l, 1), UARC_Good);
        if (nb)
            send_all(fb, rb.bytes + ib, nb);
        ib += nb;
        assert_int_equal(uarc_listener_process(l, 1), UARC_Good);
    }
    assert_true(drive_until(l, &ev.accepted, 2, 3000));
    assert_int_equal(ev.hellos, 2);
    assert_int_equal(ev.errors + ev.rejected, 0);

    bool seen_alpha = false, seen_beta = false;
    for (int i = 0; i < 2; i++) {
        uarc_reverse_connection c;
        assert_true(uarc_listener_next(l, &c));
        if (strcmp(c.server_uri, "urn:test:alpha") == 0) {
            seen_alpha = true;
            assert_string_equal(c.endpoint_url, "opc.tcp://alpha.test:4840");
            assert_string_equal(c.peer, pa);
        } else {
            seen_beta = true;
            assert_string_equal(c.server_uri, "urn:test:beta");
            assert_string_equal(c.endpoint_url, "opc.tcp://beta.test:48400/a/longer/path");
            assert_string_equal(c.peer, pb);
        }
        /* Each accepted socket is the one its fake server holds. */
        assert_int_equal(send(c.fd, c.server_uri, 9, MSG_NOSIGNAL), 9);
        char buf[9];
        assert_true(recv_exact(strcmp(c.server_uri, "urn:test:alpha") == 0 ? fa : fb, buf, 9));
        assert_memory_equal(buf, c.server_uri, 9);
        uarc_reverse_connection_clear(&c);
    }
    assert_true(seen_alpha && seen_beta);
    close(fa);
    close(fb);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

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

static uint32_t rng_state = 0x2545F491u;

static uint32_t rng(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* Sends what fits without blocking; the listener may close at any time. */
static void send_some(int fd, const uint8_t *data, size_t n)
{
    while (n) {
        ssize_t k = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k <= 0)
            return;
        data += k;
        n -= (size_t)k;
    }
}

#define FLOOD_COUNT 120

static void test_garbage_flood(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a, .hello_timeout_ms = 1000};
    events ev;
    uarc_listener *l = start(&o, &ev);
    static uint8_t junk[256 * 1024];
    static int fds[FLOOD_COUNT];
    for (int i = 0; i < FLOOD_COUNT; i++) {
        fds[i] = connect_to(uarc_listener_port(l));
        size_t n = 0;
        switch (i % 5) {
        case 0: /* a few random bytes */
            n = 8 + rng() % 64;
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            break;
        case 1: /* a big random payload */
            n = sizeof junk / 2 + rng() % (sizeof junk / 2);
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            break;
        case 2: /* an RHE header announcing a huge frame, then a lot of body */
            n = sizeof junk;
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            memcpy(junk, "RHEF\xff\xff\xff\x7f", 8);
            break;
        case 3: /* a frame of the largest allowed size full of random string lengths */
            n = UARC_RHE_MAX_MESSAGE_SIZE;
            for (size_t k = 0; k < n; k++)
                junk[k] = (uint8_t)rng();
            memcpy(junk, "RHEF", 4);
            junk[4] = (uint8_t)n, junk[5] = (uint8_t)(n >> 8), junk[6] = 0, junk[7] = 0;
            break;
        default: /* something that looks like HTTP */
            n = (size_t)snprintf((char *)junk, sizeof junk, "POST /%u HTTP/1.1\r\n\r\n", rng());
            break;
        }
        /* Random data never opens like an RHE, so every connection must fail on its own. */
        if (i % 5 < 2 && junk[0] == 'R')
            junk[0] = 'r';
        send_some(fds[i], junk, n);
        if (i % 10 == 9)
            assert_int_equal(uarc_listener_process(l, 0), UARC_Good);
    }
    assert_true(drive_until(l, &ev.errors, FLOOD_COUNT, 5000));
    assert_int_equal(ev.accepted + ev.rejected, 0);
    for (int i = 0; i < FLOOD_COUNT; i++) {
        uarc_status s = ev.statuses[i];
        if (s != UARC_BadTcpMessageTypeInvalid && s != UARC_BadTcpMessageTooLarge &&
            s != UARC_BadDecodingError && s != UARC_BadTcpEndpointUrlInvalid)
            fail_msg("flood connection %d ended with %s", i, uarc_status_name(s));
    }
    assert_int_equal(uarc_listener_pending_count(l), 0);
    for (int i = 0; i < FLOOD_COUNT; i++)
        close(fds[i]);

    /* Still serving. */
    int fd = connect_to(uarc_listener_port(l));
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    send_all(fd, f.bytes, f.length);
    uarc_reverse_connection c;
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    assert_string_equal(c.server_uri, SERVER_URI);
    uarc_reverse_connection_clear(&c);
    close(fd);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/* ---- descriptors ---- */

static void test_no_descriptor_leak(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    size_t before = count_fds();
    uarc_listener_config o = {.allowlist = a, .hello_timeout_ms = 300};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uint16_t port = uarc_listener_port(l);
    fake_frame good, stranger;
    frame_rhe(&good, SERVER_URI, ENDPOINT_URL);
    frame_rhe(&stranger, "urn:test:stranger", ENDPOINT_URL);

    /* Accepted and cleared; accepted and taken. */
    uarc_reverse_connection c;
    for (int i = 0; i < 2; i++) {
        int fd = connect_to(port);
        send_all(fd, good.bytes, good.length);
        assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
        if (i == 0)
            uarc_reverse_connection_clear(&c);
        else {
            close(uarc_reverse_connection_take_fd(&c));
            uarc_reverse_connection_clear(&c);
        }
        close(fd);
    }
    /* Rejected, malformed, closed early, timed out. */
    int rej = connect_to(port), bad = connect_to(port), gone = connect_to(port),
        slow = connect_to(port);
    send_all(rej, stranger.bytes, stranger.length);
    send_all(bad, "GET / HTTP/1.0\r\n\r\n", 18);
    send_all(gone, "RH", 2);
    close(gone);
    assert_true(drive_until(l, &ev.rejected, 1, 3000));
    assert_true(drive_until(l, &ev.errors, 3, 3000)); /* bad, gone, then slow's timeout */
    assert_int_equal(uarc_listener_pending_count(l), 0);
    close(rej);
    close(bad);
    close(slow);

    /* Closed with one connection pending and one accepted but never taken. */
    o.hello_timeout_ms = 10000;
    uarc_listener_delete(l);
    l = start(&o, &ev);
    port = uarc_listener_port(l);
    int waiting = connect_to(port), untaken = connect_to(port);
    send_all(untaken, good.bytes, good.length);
    assert_true(drive_until(l, &ev.accepted, 1, 3000));
    assert_true(drive_until_pending(l, 1, 3000));
    uarc_listener_close(l);
    expect_eof(waiting);
    expect_eof(untaken);
    close(waiting);
    close(untaken);
    uarc_listener_delete(l);

    assert_int_equal(count_fds(), before);
    uarc_allowlist_delete(a);
}

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

typedef struct alloc_state {
    long calls, fail_at, live;
} alloc_state;

static void *failing_malloc(size_t size, void *user_data)
{
    alloc_state *a = user_data;
    if (++a->calls == a->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        a->live++;
    return p;
}

static void *failing_realloc(void *ptr, size_t size, void *user_data)
{
    alloc_state *a = user_data;
    if (++a->calls == a->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        a->live++;
    return p;
}

static void counting_free(void *ptr, void *user_data)
{
    alloc_state *a = user_data;
    a->live--;
    free(ptr);
}

static void test_failing_allocations(void **state)
{
    (void)state;
    uarc_allowlist *list = allow(SERVER_URI, NULL);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    bool completed = false;
    /* Fail the 1st, 2nd, ... allocation in turn until a run needs no more than were allowed. */
    for (long fail_at = 1; !completed && fail_at < 100; fail_at++) {
        alloc_state as = {.fail_at = fail_at};
        uarc_allocator hook = {failing_malloc, failing_realloc, counting_free, &as};
        uarc_set_allocator(&hook);
        uarc_listener_config o = {.bind_addresses = loopback4,
                                  .bind_address_count = 1,
                                  .allowlist = list,
                                  .max_pending = 4};
        events ev;
        memset(&ev, 0, sizeof ev);
        o.callbacks = (uarc_listener_callbacks){on_hello, on_accepted, on_rejected, on_error, &ev};
        uarc_listener *l = uarc_listener_new(&o);
        if (l && uarc_listener_listen(l) == UARC_Good) {
            int fd = connect_to(uarc_listener_port(l));
            send_all(fd, f.bytes, f.length);
            int done = 0;
            int64_t end = now_ms() + 3000;
            while ((done = ev.accepted + ev.errors) == 0 && now_ms() < end)
                assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
            assert_int_equal(done, 1);
            uarc_reverse_connection c;
            if (ev.accepted) {
                assert_true(uarc_listener_next(l, &c));
                assert_string_equal(c.server_uri, SERVER_URI);
                uarc_reverse_connection_clear(&c);
            } else {
                /* Out of memory is answered on the wire, never by a crash or a hang. */
                uint32_t status;
                char reason[TEXT_SIZE];
                read_err_frame(fd, &status, reason, sizeof reason);
                assert_int_equal(status, ev.status);
                expect_eof(fd);
            }
            close(fd);
        }
        uarc_listener_delete(l);
        uarc_set_allocator(NULL);
        if (as.live != 0)
            fail_msg("failing allocation %ld: %ld blocks left allocated", fail_at, as.live);
        completed = as.calls < fail_at;
    }
    assert_true(completed);
    uarc_allowlist_delete(list);
}

static void test_out_of_descriptors(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_to(uarc_listener_port(l));
        send_all(fds[i], f.bytes, f.length);
    }
    /* Lower the limit to just above the lowest free descriptor number: every number below it
     * is in use, so the listener has exactly one descriptor left. (Descriptors already open
     * above the limit stay usable.) */
    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    low = saved;
    low.rlim_cur = (rlim_t)lowest + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int x = dup(0), y = dup(0);
    if (x >= 0)
        close(x);
    if (y >= 0) { /* the limit is not enforced here (e.g. under valgrind) */
        close(y);
        setrlimit(RLIMIT_NOFILE, &saved);
        for (int i = 0; i < 3; i++)
            close(fds[i]);
        uarc_listener_delete(l);
        uarc_allowlist_delete(a);
        skip();
    }

    /* One server gets in; the others are dropped, reported, and not left hanging. (Count the
     * dropped peers, not the events: valgrind enforces the limit itself and may drop a
     * connection before the listener sees it.) */
    bool gone[3] = {false, false, false};
    int ended = 0;
    int64_t end = now_ms() + 3000;
    while (ended < 2 && now_ms() < end) {
        assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
        for (int i = 0; i < 3; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (!gone[i] && poll(&p, 1, 0) == 1) {
                char b;
                assert_true(recv(fds[i], &b, 1, 0) <= 0);
                gone[i] = true;
                ended++;
            }
        }
    }
    setrlimit(RLIMIT_NOFILE, &saved);
    assert_int_equal(ended, 2);
    assert_int_equal(ev.accepted, 1);
    assert_true(ev.errors >= 1 && ev.errors <= 2);
    for (int i = 0; i < ev.errors; i++)
        assert_int_equal(ev.statuses[i], UARC_BadTcpInternalError);
    assert_int_equal(uarc_listener_pending_count(l), 0);

    /* With descriptors back, service resumes. */
    uarc_reverse_connection c;
    assert_true(uarc_listener_next(l, &c));
    uarc_reverse_connection_clear(&c);
    int fd = connect_to(uarc_listener_port(l));
    send_all(fd, f.bytes, f.length);
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    uarc_reverse_connection_clear(&c);
    close(fd);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/*
 * Out of descriptors with no spare to drop a connection with: the listener must not spin on its
 * readable listening socket. The limit is lowered to one above the listener's epoll descriptor,
 * the first it opened: every number up to it is in use, and the spare (/dev/null, opened next)
 * lies above it, so closing the spare frees nothing usable and it cannot be reopened.
 */
/* The soft RLIMIT_NOFILE the kernel applies, read from /proc/self/limits through `fd` (opened
 * beforehand, since no descriptor may be left); -1 when unknown. */
static long kernel_nofile_limit(int fd)
{
    char text[4096];
    ssize_t n = lseek(fd, 0, SEEK_SET) == 0 ? read(fd, text, sizeof text - 1) : -1;
    if (n <= 0)
        return -1;
    text[n] = '\0';
    const char *line = strstr(text, "Max open files");
    return line ? strtol(line + strlen("Max open files"), NULL, 10) : -1;
}

static void test_out_of_descriptors_no_spare(void **state)
{
    (void)state;
    int limits = open("/proc/self/limits", O_RDONLY | O_CLOEXEC);
    if (limits < 0)
        skip();
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    assert_int_equal(uarc_listener_fd(l), lowest);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    int fd = connect_to(uarc_listener_port(l));
    send_all(fd, f.bytes, f.length);

    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)lowest + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int x = dup(0);
    if (x >= 0 || kernel_nofile_limit(limits) != (long)lowest + 1) {
        /* the kernel does not enforce the limit: valgrind, for one, only emulates it, and
         * closes descriptors above it behind the listener's back */
        if (x >= 0)
            close(x);
        setrlimit(RLIMIT_NOFILE, &saved);
        close(limits);
        close(fd);
        uarc_listener_delete(l);
        uarc_allowlist_delete(a);
        skip();
    }

    /* 600 ms of waiting in calls that may each wait 100 ms: a spinning listener returns at
     * once, every time, with an error event each time. */
    int calls = 0, paused_for = 0;
    uarc_status status = UARC_Good;
    int64_t end = now_ms() + 600;
    while (now_ms() < end && calls < 1000 && status == UARC_Good) {
        status = uarc_listener_process(l, 100);
        if (++calls == 1)
            paused_for = uarc_listener_timeout_ms(l);
    }
    setrlimit(RLIMIT_NOFILE, &saved); /* before any assertion can end the test */
    assert_int_equal(status, UARC_Good);
    if (calls > 20)
        fail_msg("%d calls in 600 ms: the listener spins", calls);
    /* paused, and an event loop is told when to call again */
    assert_true(paused_for > 0 && paused_for <= 250);
    assert_int_equal(ev.errors, 1); /* reported once */
    assert_int_equal(ev.statuses[0], UARC_BadTcpInternalError);
    assert_string_equal(ev.peer, "");
    assert_non_null(strstr(ev.reason, "out of file descriptors"));
    assert_int_equal(ev.accepted, 0);

    /* With descriptors back, the waiting server is accepted after the back-off. */
    assert_true(drive_until(l, &ev.accepted, 1, 3000));
    uarc_reverse_connection c;
    assert_true(uarc_listener_next(l, &c));
    uarc_reverse_connection_clear(&c);
    assert_int_equal(ev.errors, 1);
    assert_int_equal(uarc_listener_timeout_ms(l), -1);
    close(fd);
    close(limits);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
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

/* Hundreds of sockets: raise the soft descriptor limit towards the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return;
    rlim_t want = 4096;
    if (r.rlim_max != RLIM_INFINITY && r.rlim_max < want)
        want = r.rlim_max;
    if (r.rlim_cur < want) {
        r.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &r);
    }
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
        cmocka_unit_test(test_wrong_message_type),
        cmocka_unit_test(test_chunk_type_not_f),
        cmocka_unit_test(test_message_too_large_header_only),
        cmocka_unit_test(test_message_too_large_configured),
        cmocka_unit_test(test_message_size_below_16),
        cmocka_unit_test(test_negative_string_length),
        cmocka_unit_test(test_string_running_past_frame),
        cmocka_unit_test(test_string_4096),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_peer_closes_after_nothing),
        cmocka_unit_test(test_peer_closes_inside_header),
        cmocka_unit_test(test_peer_closes_inside_body),
        cmocka_unit_test(test_peer_half_closes_inside_body),
        cmocka_unit_test(test_hello_timeout),
        cmocka_unit_test(test_hello_timeout_not_early),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_interleaved_servers),
        cmocka_unit_test(test_accept_from_one_server),
        cmocka_unit_test(test_unclaimed_closed_frees_slot),
        cmocka_unit_test(test_unclaimed_closed_not_handed_out),
        cmocka_unit_test(test_accept_from_prefers_newest),
        cmocka_unit_test(test_take_inside_callback),
        cmocka_unit_test(test_silent_sockets_do_not_delay),
        cmocka_unit_test(test_max_pending),
        cmocka_unit_test(test_garbage_flood),
        cmocka_unit_test(test_no_descriptor_leak),
        cmocka_unit_test(test_bind_port_zero),
        cmocka_unit_test(test_bind_ipv6_loopback),
        cmocka_unit_test(test_bind_in_use),
        cmocka_unit_test(test_bind_bad_address),
        cmocka_unit_test(test_close_idempotent),
        cmocka_unit_test(test_accept_never_listening),
        cmocka_unit_test(test_accept_timeout),
        cmocka_unit_test(test_accept_zero_timeout),
        cmocka_unit_test(test_accept_interrupted_by_signal),
        cmocka_unit_test(test_failing_allocations),
        cmocka_unit_test(test_out_of_descriptors),
        cmocka_unit_test(test_out_of_descriptors_no_spare),
        cmocka_unit_test(test_bind_default_dual_stack),
        cmocka_unit_test(test_bind_two_addresses),
        cmocka_unit_test(test_logger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
