/*
 * The listener under test for the listener tests: a recorder of its callbacks (`events`), a
 * listener started on 127.0.0.1 with those callbacks, loops that run it until an event count or a
 * number of pending connections is reached, the far end of a loopback connection, an allowlist
 * builder, and expect_refusal(): one fake server's RHE refused with a status, an ERR and a close.
 *
 * Time appears in these tests only as functional bounds (a deadline must fire, a peer must not
 * wait for another peer's deadline), never as a speed measurement. Include after <cmocka.h>.
 */
#ifndef UARC_TESTS_LISTENER_FIXTURE_H
#define UARC_TESTS_LISTENER_FIXTURE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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

static inline void copy_view(char *out, uarc_view v)
{
    size_t n = v.length < TEXT_SIZE - 1 ? v.length : TEXT_SIZE - 1;
    if (n)
        memcpy(out, v.data, n);
    out[n] = '\0';
}

static inline void on_hello(void *user_data, const char *peer, const uarc_rhe *hello)
{
    events *ev = user_data;
    ev->hellos++;
    copy_view(ev->hello_uri, hello->server_uri);
    copy_view(ev->hello_url, hello->endpoint_url);
    snprintf(ev->hello_peer, sizeof ev->hello_peer, "%s", peer);
}

static inline void on_accepted(void *user_data, const uarc_reverse_connection *c)
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

static inline void on_rejected(void *user_data, const char *peer, const uarc_rhe *hello,
                               uarc_status status, const char *reason)
{
    events *ev = user_data;
    (void)hello;
    ev->rejected++;
    ev->status = status;
    snprintf(ev->reason, sizeof ev->reason, "%s", reason);
    snprintf(ev->peer, sizeof ev->peer, "%s", peer);
}

static inline void on_error(void *user_data, const char *peer, uarc_status status,
                            const char *reason)
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
static inline uarc_listener *start(uarc_listener_config *o, events *ev)
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

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline bool same_address(const struct sockaddr_storage *a, socklen_t alen,
                                const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The listener runs in this process, so the far end of a loopback connection is one of our own
 * descriptors: the socket whose local and peer addresses are `fd`'s peer and local addresses.
 * Waiting on it lets a test see that bytes or a FIN reached the listener without reading them. */
static inline int far_end(int fd)
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
static inline void wait_for(int fd, short wanted)
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
static inline bool drive_until(uarc_listener *l, const int *counter, int target, int bound_ms)
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
static inline bool drive_until_pending(uarc_listener *l, size_t count, int bound_ms)
{
    int64_t end = now_ms() + bound_ms;
    while (uarc_listener_pending_count(l) != count) {
        if (now_ms() >= end)
            return false;
        assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
    }
    return true;
}

static inline uarc_allowlist *allow(const char *server_uri, const char *endpoint_url)
{
    uarc_allowlist *a = uarc_allowlist_new();
    assert_non_null(a);
    if (server_uri)
        assert_int_equal(uarc_allowlist_add(a, server_uri, endpoint_url), UARC_Good);
    return a;
}

/*
 * One fake server sends `bytes` to a listener built from `o` (127.0.0.1, an allowlist with
 * SERVER_URI unless `o` says otherwise), then must see: exactly one rejected event (`rejected`)
 * or error event with `status`, that status and the same reason in an ERR frame, then EOF.
 * The reason must contain `reason_part` when it is not NULL.
 */
static inline void expect_refusal(uarc_listener_config *o, const void *bytes, size_t length,
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

/* Hundreds of sockets: raise the soft descriptor limit towards the hard one. */
static inline void raise_fd_limit(void)
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

#endif
