/*
 * Reverse connect after the RHE, against scripted fake servers on loopback: a thread dials the
 * listener, sends its RHE, then fails one step of the connect sequence on purpose (ERR instead
 * of ACK, silence after HEL, a malformed ACK, the socket closed during OPN or CreateSession).
 * Each failure is checked through uarc_reverse_connect() and through the hub's `failed`
 * callback: the status, the step named in the detail, the socket closed (descriptor count), and
 * no second socket: the RHE announces the address of a trap socket that must never be dialed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fake_server.h"
#include "uarc/reverse.h"

#define SERVER_URI      "urn:test:reverse"
#define NONE_URI        "http://opcfoundation.org/UA/SecurityPolicy#None"
#define CONNECT_TIMEOUT 600 /* ms, the client's connect_timeout_ms */
#define CHANNEL_ID      7

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- the fake server (a thread: no cmocka assertion in here) ---- */

typedef enum script_kind {
    ERR_INSTEAD_OF_ACK,
    SILENT_AFTER_HEL,
    ACK_SMALL_BUFFER,
    ACK_TRUNCATED,
    CLOSED_DURING_OPN,
    CLOSED_DURING_CREATE_SESSION,
} script_kind;

typedef struct script {
    script_kind kind;
    uint16_t port;
    char endpoint_url[64]; /* announced in the RHE: the trap's address */
    /* what the thread saw */
    bool connected, got_hel, hel_url_ok, got_opn, got_msg, saw_eof;
    char problem[128]; /* the first unexpected thing, "" when none */
} script;

static void problem(script *s, const char *what)
{
    if (!s->problem[0])
        snprintf(s->problem, sizeof s->problem, "%s (%s)", what, strerror(errno));
}

static bool send_bytes(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads one whole UA-TCP message into buf (at most `capacity`); returns its size or 0. */
static size_t read_message(int fd, uint8_t *buf, size_t capacity)
{
    if (!recv_exact(fd, buf, 8))
        return 0;
    uint32_t size = get_u32(buf + 4);
    if (size < 8 || size > capacity || !recv_exact(fd, buf + 8, size - 8))
        return 0;
    return size;
}

/* Waits for the client to close its end: true when end of stream came (within 5 s). */
static bool wait_eof(int fd)
{
    uint8_t b[512];
    for (;;) {
        ssize_t k = recv(fd, b, sizeof b, 0);
        if (k == 0)
            return true;
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno == ECONNRESET;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static void ack_frame(fake_frame *f, uint32_t receive_buffer_size)
{
    frame_begin(f, "ACKF");
    frame_u32(f, 0);
    frame_u32(f, receive_buffer_size);
    frame_u32(f, 65535);
    frame_u32(f, 0);
    frame_u32(f, 0);
    frame_end(f);
}

/* An OpenSecureChannelResponse for the None policy answering `request_id`. */
static void opn_response_frame(fake_frame *f, uint32_t request_id)
{
    frame_begin(f, "OPNF");
    frame_u32(f, CHANNEL_ID);
    frame_cstring(f, NONE_URI);
    frame_u32(f, 0xFFFFFFFFu); /* SenderCertificate */
    frame_u32(f, 0xFFFFFFFFu); /* ReceiverCertificateThumbprint */
    frame_u32(f, 1);           /* SequenceNumber */
    frame_u32(f, request_id);
    frame_bytes(f, "\x01\x00\xC1\x01", 4); /* i=449 */
    frame_bytes(f, "\0\0\0\0\0\0\0\0", 8); /* timestamp */
    frame_u32(f, 1);                       /* requestHandle */
    frame_u32(f, 0);                       /* serviceResult */
    frame_bytes(f, "\x00", 1);             /* serviceDiagnostics */
    frame_u32(f, 0xFFFFFFFFu);             /* stringTable */
    frame_bytes(f, "\x00\x00\x00", 3);     /* additionalHeader */
    frame_u32(f, 0);                       /* serverProtocolVersion */
    frame_u32(f, CHANNEL_ID);
    frame_u32(f, 1);                       /* tokenId */
    frame_bytes(f, "\0\0\0\0\0\0\0\0", 8); /* createdAt */
    frame_u32(f, 600000);                  /* revisedLifetime */
    frame_u32(f, 0);                       /* serverNonce: empty */
    frame_end(f);
}

/* The RequestId of an OPN chunk (after the three strings of the asymmetric header). */
static bool opn_request_id(const uint8_t *m, size_t size, uint32_t *request_id)
{
    size_t pos = 12;
    for (int i = 0; i < 3; i++) {
        if (pos + 4 > size)
            return false;
        int32_t len = (int32_t)get_u32(m + pos);
        pos += 4 + (len > 0 ? (size_t)len : 0);
    }
    if (pos + 8 > size)
        return false;
    *request_id = get_u32(m + pos + 4);
    return true;
}

static void *run_script(void *arg)
{
    script *s = arg;
    static __thread uint8_t buf[70000];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(s->port)};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof in) != 0) {
        problem(s, "connect");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    s->connected = true;
    struct timeval tv = {.tv_sec = FAKE_READ_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, s->endpoint_url);
    if (!send_bytes(fd, f.bytes, f.length)) {
        problem(s, "send RHE");
        goto done;
    }
    size_t n = read_message(fd, buf, sizeof buf);
    if (n < 32 || memcmp(buf, "HELF", 4) != 0) {
        problem(s, "no HEL");
        goto done;
    }
    s->got_hel = true;
    size_t url_length = get_u32(buf + 28);
    s->hel_url_ok = n == 32 + url_length && url_length == strlen(s->endpoint_url) &&
                    memcmp(buf + 32, s->endpoint_url, url_length) == 0;

    switch (s->kind) {
    case ERR_INSTEAD_OF_ACK: {
        frame_begin(&f, "ERRF");
        frame_u32(&f, UARC_BadTcpServerTooBusy);
        frame_cstring(&f, "too busy for you");
        frame_end(&f);
        if (!send_bytes(fd, f.bytes, f.length))
            problem(s, "send ERR");
        s->saw_eof = wait_eof(fd);
        break;
    }
    case SILENT_AFTER_HEL:
        s->saw_eof = wait_eof(fd);
        break;
    case ACK_SMALL_BUFFER:
        ack_frame(&f, 1024);
        if (!send_bytes(fd, f.bytes, f.length))
            problem(s, "send ACK");
        s->saw_eof = wait_eof(fd);
        break;
    case ACK_TRUNCATED:
        /* A consistent MessageSize, but only two of the five fields. */
        ack_frame(&f, 65535);
        f.length = 16;
        put_u32(f.bytes + 4, 16);
        if (!send_bytes(fd, f.bytes, f.length))
            problem(s, "send ACK");
        s->saw_eof = wait_eof(fd);
        break;
    case CLOSED_DURING_OPN:
    case CLOSED_DURING_CREATE_SESSION: {
        ack_frame(&f, 65535);
        if (!send_bytes(fd, f.bytes, f.length)) {
            problem(s, "send ACK");
            break;
        }
        n = read_message(fd, buf, sizeof buf);
        uint32_t request_id;
        if (!n || memcmp(buf, "OPNF", 4) != 0 || !opn_request_id(buf, n, &request_id)) {
            problem(s, "no OPN");
            break;
        }
        s->got_opn = true;
        if (s->kind == CLOSED_DURING_OPN)
            break; /* close without answering */
        opn_response_frame(&f, request_id);
        if (!send_bytes(fd, f.bytes, f.length)) {
            problem(s, "send OPN response");
            break;
        }
        n = read_message(fd, buf, sizeof buf);
        /* CreateSessionRequest: MSG, then channel, token, sequence, request id, i=461. */
        if (!n || memcmp(buf, "MSGF", 4) != 0 || n < 28 || get_u32(buf + 8) != CHANNEL_ID ||
            memcmp(buf + 24, "\x01\x00\xCD\x01", 4) != 0) {
            problem(s, "no CreateSession");
            break;
        }
        s->got_msg = true;
        break;
    }
    }
done:
    close(fd);
    return NULL;
}

/* ---- fixture: listener, trap ---- */

typedef struct fixture {
    uarc_allowlist *allowlist;
    uarc_listener *listener;
    int trap; /* a listening socket the client must never dial */
    char trap_url[64];
} fixture;

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    fixture *fx = calloc(1, sizeof *fx);
    fx->allowlist = uarc_allowlist_new();
    assert_int_equal(uarc_allowlist_add(fx->allowlist, SERVER_URI, NULL), UARC_Good);
    const char *addresses[] = {"127.0.0.1"};
    uarc_listener_config lo = {
        .bind_addresses = addresses, .bind_address_count = 1, .allowlist = fx->allowlist};
    fx->listener = uarc_listener_new(&lo);
    assert_int_equal(uarc_listener_listen(fx->listener), UARC_Good);

    fx->trap = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof in;
    assert_int_equal(bind(fx->trap, (struct sockaddr *)&in, sizeof in), 0);
    assert_int_equal(listen(fx->trap, 8), 0);
    assert_int_equal(getsockname(fx->trap, (struct sockaddr *)&in, &len), 0);
    snprintf(fx->trap_url, sizeof fx->trap_url, "opc.tcp://127.0.0.1:%u", ntohs(in.sin_port));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    uarc_listener_delete(fx->listener);
    uarc_allowlist_delete(fx->allowlist);
    close(fx->trap);
    free(fx);
    return 0;
}

static void expect_trap_untouched(const fixture *fx)
{
    int fd = accept(fx->trap, NULL, NULL);
    if (fd >= 0) {
        close(fd);
        fail_msg(
            "the client dialed the EndpointUrl of the RHE: it must use the inbound socket only");
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void start_script(const fixture *fx, script *s, pthread_t *thread, script_kind kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->port = uarc_listener_port(fx->listener);
    snprintf(s->endpoint_url, sizeof s->endpoint_url, "%s", fx->trap_url);
    assert_int_equal(pthread_create(thread, NULL, run_script, s), 0);
}

/* What the thread must have seen for every script. */
static void check_script(const script *s)
{
    if (s->problem[0])
        fail_msg("fake server: %s", s->problem);
    assert_true(s->got_hel);
    assert_true(s->hel_url_ok); /* HEL carried the EndpointUrl of the RHE */
    if (s->kind == CLOSED_DURING_OPN || s->kind == CLOSED_DURING_CREATE_SESSION)
        assert_true(s->got_opn);
    else
        assert_true(s->saw_eof); /* the client closed its end */
    if (s->kind == CLOSED_DURING_CREATE_SESSION)
        assert_true(s->got_msg);
}

typedef struct expectation {
    script_kind kind;
    uarc_status status, alternative; /* alternative: 0 when only one is right */
    const char *step;                /* the detail starts with "<step>: " */
} expectation;

static const expectation expectations[] = {
    {ERR_INSTEAD_OF_ACK, UARC_BadTcpServerTooBusy, 0, "HEL"},
    {SILENT_AFTER_HEL, UARC_BadTimeout, 0, "HEL"},
    {ACK_SMALL_BUFFER, UARC_BadTcpNotEnoughResources, 0, "HEL"},
    {ACK_TRUNCATED, UARC_BadDecodingError, 0, "HEL"},
    {CLOSED_DURING_OPN, UARC_BadConnectionClosed, UARC_BadSecureChannelClosed, "OPN"},
    {CLOSED_DURING_CREATE_SESSION, UARC_BadConnectionClosed, UARC_BadSecureChannelClosed,
     "CreateSession"},
};

static void check_failure(const expectation *e, uarc_status status, const char *detail)
{
    if (status != e->status && (!e->alternative || status != e->alternative))
        fail_msg("status %s, expected %s; detail \"%s\"", uarc_status_name(status),
                 uarc_status_name(e->status), detail);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", e->step);
    if (strncmp(detail, prefix, strlen(prefix)) != 0)
        fail_msg("the detail \"%s\" does not name the step %s", detail, e->step);
    if (e->kind == ERR_INSTEAD_OF_ACK) {
        assert_non_null(strstr(detail, "BadTcpServerTooBusy"));
        assert_non_null(strstr(detail, "too busy for you")); /* the server's reason */
    }
}

/* ---- through uarc_reverse_connect ---- */

static void run_direct(void **state, const expectation *e)
{
    fixture *fx = *state;
    int fds_before = count_fds();
    script s;
    pthread_t thread;
    start_script(fx, &s, &thread, e->kind);

    uarc_reverse_connection conn;
    uarc_reverse_connection_init(&conn);
    assert_int_equal(uarc_listener_accept(fx->listener, 5000, &conn), UARC_Good);
    assert_string_equal(conn.server_uri, SERVER_URI);
    uarc_client_config cfg = {.connect_timeout_ms = CONNECT_TIMEOUT};
    uarc_client *client = uarc_client_new(&cfg);
    assert_non_null(client);
    int64_t t0 = now_ms();
    uarc_status status = uarc_reverse_connect(client, &conn);
    int64_t elapsed = now_ms() - t0;
    assert_int_equal(conn.fd, -1); /* the socket moved to the client */
    pthread_join(thread, NULL);

    check_script(&s);
    check_failure(e, status, uarc_client_error(client));
    assert_int_equal(uarc_client_state_get(client), UARC_CLIENT_DISCONNECTED);
    assert_int_equal(uarc_client_fd(client), -1);
    if (e->kind == SILENT_AFTER_HEL) {
        assert_true(elapsed >= CONNECT_TIMEOUT - 20);
        assert_true(elapsed < CONNECT_TIMEOUT + 2000);
    } else {
        assert_true(elapsed < CONNECT_TIMEOUT); /* a failure, not a timeout */
    }
    uarc_reverse_connection_clear(&conn);
    /* Before the client is deleted: the failure itself closed the socket. */
    assert_int_equal(count_fds(), fds_before);
    expect_trap_untouched(fx);
    uarc_client_delete(client);
    assert_int_equal(count_fds(), fds_before);
}

static void test_direct_err(void **state)
{
    run_direct(state, &expectations[0]);
}
static void test_direct_silent(void **state)
{
    run_direct(state, &expectations[1]);
}
static void test_direct_ack_small(void **state)
{
    run_direct(state, &expectations[2]);
}
static void test_direct_ack_truncated(void **state)
{
    run_direct(state, &expectations[3]);
}
static void test_direct_closed_opn(void **state)
{
    run_direct(state, &expectations[4]);
}
static void test_direct_closed_create(void **state)
{
    run_direct(state, &expectations[5]);
}

/* ---- through the hub ---- */

typedef struct hub_events {
    int failed, connected, lost;
    uarc_status status;
    char detail[512];
    char server_uri[128];
} hub_events;

static void on_failed(void *user_data, uarc_client *client, const char *server_uri,
                      uarc_status status, const char *detail)
{
    hub_events *ev = user_data;
    (void)client;
    ev->failed++;
    ev->status = status;
    snprintf(ev->detail, sizeof ev->detail, "%s", detail);
    snprintf(ev->server_uri, sizeof ev->server_uri, "%s", server_uri);
}

static void on_connected(void *user_data, uarc_client *client, const char *server_uri,
                         bool restored, bool resumed)
{
    hub_events *ev = user_data;
    (void)client, (void)server_uri, (void)restored, (void)resumed;
    ev->connected++;
}

static void on_lost(void *user_data, uarc_client *client, const char *server_uri,
                    uarc_status status)
{
    hub_events *ev = user_data;
    (void)client, (void)server_uri, (void)status;
    ev->lost++;
}

static uarc_reverse_hub *new_hub(const fixture *fx, hub_events *ev)
{
    uarc_reverse_hub_config ho = {
        .listener = fx->listener,
        .client = {.connect_timeout_ms = CONNECT_TIMEOUT},
        /* every dial is served: these tests repeat failures on purpose (test_hub covers the
         * backoff) */
        .backoff_disable = true,
        .callbacks = {.connected = on_connected,
                      .failed = on_failed,
                      .lost = on_lost,
                      .user_data = ev},
    };
    uarc_reverse_hub *hub = uarc_reverse_hub_new(&ho);
    assert_non_null(hub);
    return hub;
}

/* Drives the hub until `failed` reached `count` (at most 8 s). */
static void process_until_failed(uarc_reverse_hub *hub, const hub_events *ev, int count)
{
    int64_t deadline = now_ms() + 8000;
    while (ev->failed < count && now_ms() < deadline)
        assert_false(uarc_status_is_bad(uarc_reverse_hub_process(hub, 100)));
    assert_int_equal(ev->failed, count);
}

static void run_hub(void **state, const expectation *e)
{
    fixture *fx = *state;
    hub_events ev = {0};
    int fds_before = count_fds();
    uarc_reverse_hub *hub = new_hub(fx, &ev);
    script s;
    pthread_t thread;
    start_script(fx, &s, &thread, e->kind);
    process_until_failed(hub, &ev, 1);
    pthread_join(thread, NULL);

    check_script(&s);
    check_failure(e, ev.status, ev.detail);
    assert_string_equal(ev.server_uri, SERVER_URI);
    assert_int_equal(ev.connected, 0);
    assert_int_equal(ev.lost, 0);
    /* The hub keeps the server, waiting for its next dial, with its socket closed. */
    assert_int_equal(uarc_reverse_hub_count(hub), 1);
    uarc_client *client = uarc_reverse_hub_client(hub, SERVER_URI);
    assert_non_null(client);
    assert_int_equal(uarc_client_fd(client), -1);
    assert_int_equal(count_fds(), fds_before + 1); /* the hub's epoll set */
    expect_trap_untouched(fx);
    uarc_reverse_hub_delete(hub);
    assert_int_equal(count_fds(), fds_before);
}

static void test_hub_err(void **state)
{
    run_hub(state, &expectations[0]);
}
static void test_hub_silent(void **state)
{
    run_hub(state, &expectations[1]);
}
static void test_hub_ack_small(void **state)
{
    run_hub(state, &expectations[2]);
}
static void test_hub_ack_truncated(void **state)
{
    run_hub(state, &expectations[3]);
}
static void test_hub_closed_opn(void **state)
{
    run_hub(state, &expectations[4]);
}
static void test_hub_closed_create(void **state)
{
    run_hub(state, &expectations[5]);
}

/*
 * A failure never spills into the next dial: after every kind of failure, the same server's
 * next connection starts from HEL again and fails (or not) on its own account.
 */
static void test_hub_next_dial_starts_afresh(void **state)
{
    fixture *fx = *state;
    hub_events ev = {0};
    uarc_reverse_hub *hub = new_hub(fx, &ev);
    int fds_before = count_fds();
    size_t n = sizeof expectations / sizeof *expectations;
    for (size_t i = 0; i < n; i++) {
        /* Each failure, then an ERR on the next dial that must be seen as such. */
        const expectation *pair[2] = {&expectations[i], &expectations[0]};
        for (int k = 0; k < 2; k++) {
            script s;
            pthread_t thread;
            start_script(fx, &s, &thread, pair[k]->kind);
            process_until_failed(hub, &ev, ev.failed + 1);
            pthread_join(thread, NULL);
            check_script(&s);
            check_failure(pair[k], ev.status, ev.detail);
        }
    }
    assert_int_equal(ev.connected, 0);
    assert_int_equal(uarc_reverse_hub_count(hub), 1);
    assert_int_equal(count_fds(), fds_before);
    expect_trap_untouched(fx);
    uarc_reverse_hub_delete(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_err),
        cmocka_unit_test(test_direct_silent),
        cmocka_unit_test(test_direct_ack_small),
        cmocka_unit_test(test_direct_ack_truncated),
        cmocka_unit_test(test_direct_closed_opn),
        cmocka_unit_test(test_direct_closed_create),
        cmocka_unit_test(test_hub_err),
        cmocka_unit_test(test_hub_silent),
        cmocka_unit_test(test_hub_ack_small),
        cmocka_unit_test(test_hub_ack_truncated),
        cmocka_unit_test(test_hub_closed_opn),
        cmocka_unit_test(test_hub_closed_create),
        cmocka_unit_test(test_hub_next_dial_starts_afresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
