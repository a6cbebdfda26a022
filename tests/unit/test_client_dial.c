/*
 * The client's forward connection: dialing IPv4, IPv6 and host names, trying each address a name
 * resolves to, and naming the connect step when it fails. A plain listening socket plays the
 * server: it checks the HEL the client sends (carrying the URL it dialed), then answers ERR, which
 * the client must report at step HEL with the server's status and reason. Driven through the
 * event-loop API, so no thread is needed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "uarc/client.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening socket on `address` (AF_INET or AF_INET6 loopback); -1 when the family is missing. */
static int listen_on(int family, uint16_t *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        len = sizeof *in6;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* The server's answer to a HEL: ERR with `status` and `reason`. */
static void send_err(int peer, uarc_status status, const char *reason)
{
    fake_frame err;
    frame_begin(&err, "ERRF");
    frame_u32(&err, status);
    frame_cstring(&err, reason);
    frame_end(&err);
    send_all(peer, err.bytes, err.length);
}

/* One step of the client: its own poll, or (own_poll false) a poll here whose events are handed
 * to uarc_client_process_events(), as an epoll loop does. */
static void step(uarc_client *c, bool own_poll)
{
    if (own_poll) {
        uarc_client_process(c, 10);
        return;
    }
    struct pollfd pfd = {.fd = uarc_client_fd(c), .events = uarc_client_poll_events(c)};
    int timeout = uarc_client_timeout_ms(c);
    int n = poll(&pfd, 1, timeout < 0 || timeout > 10 ? 10 : timeout);
    uarc_client_process_events(c, n > 0 ? pfd.revents : 0);
}

/*
 * Dials `url`, expects a connection on `server`, checks the HEL names `url`, answers ERR, and
 * checks the client reports it at step HEL.
 */
static void dial_and_refuse_by(int server, const char *url, bool own_poll)
{
    uarc_client *c = uarc_client_new(NULL);
    assert_int_equal(uarc_client_start_connect(c, url), UARC_Good);
    int peer = -1;
    uint8_t hel[512];
    size_t got = 0;
    int64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline && uarc_client_state_get(c) != UARC_CLIENT_DISCONNECTED) {
        step(c, own_poll);
        if (peer < 0)
            peer = accept4(server, NULL, NULL, SOCK_CLOEXEC);
        if (peer >= 0 && got < 8) {
            ssize_t n = recv(peer, hel + got, sizeof hel - got, MSG_DONTWAIT);
            if (n > 0)
                got += (size_t)n;
        }
        if (got >= 8 && got >= get_u32(hel + 4)) {
            /* HEL: header, 5 UInt32 fields, then the EndpointUrl string. */
            assert_memory_equal(hel, "HELF", 4);
            assert_int_equal(get_u32(hel + 28), strlen(url));
            assert_memory_equal(hel + 32, url, strlen(url));
            send_err(peer, UARC_BadTcpEndpointUrlInvalid, "no such endpoint here");
            got = 0;
            hel[4] = 0xff; /* answered: do not answer again */
        }
    }
    assert_true(peer >= 0);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    const char *error = uarc_client_error(c);
    if (strncmp(error, "HEL: BadTcpEndpointUrlInvalid: no such endpoint here", 52) != 0)
        fail_msg("unexpected error detail: %s", error);
    close(peer);
    uarc_client_delete(c);
}

static void dial_and_refuse(int server, const char *url)
{
    dial_and_refuse_by(server, url, true);
}

static void test_dial_ipv4(void **state)
{
    (void)state;
    uint16_t port;
    int server = listen_on(AF_INET, &port);
    assert_true(server >= 0);
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u/some/path", port);
    dial_and_refuse(server, url);
    dial_and_refuse_by(server, url, false); /* the events handed in by a poll here */
    close(server);
}

/* uarc_client_process_events() reads only when told the socket is readable: the ERR waiting on
 * the socket is not taken by a call with no events, and is by one with POLLIN. */
static void test_events_handed_in_are_the_only_wait(void **state)
{
    (void)state;
    uint16_t port;
    int server = listen_on(AF_INET, &port);
    assert_true(server >= 0);
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", port);
    uarc_client *c = uarc_client_new(NULL);
    assert_int_equal(uarc_client_start_connect(c, url), UARC_Good);
    int peer = -1;
    int64_t deadline = now_ms() + 5000;
    while (peer < 0 && now_ms() < deadline) {
        step(c, false);
        peer = accept4(server, NULL, NULL, SOCK_CLOEXEC);
    }
    assert_true(peer >= 0);
    /* the HEL went out once the connect was seen done */
    while (uarc_client_state_get(c) != UARC_CLIENT_HELLO && now_ms() < deadline)
        step(c, false);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_HELLO);
    send_err(peer, UARC_BadTcpServerTooBusy, "busy");
    struct pollfd pfd = {.fd = uarc_client_fd(c), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(uarc_client_process_events(c, 0), UARC_Good);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_HELLO);
    assert_int_equal(uarc_client_process_events(c, POLLIN), UARC_BadTcpServerTooBusy);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    close(peer);
    close(server);
    uarc_client_delete(c);
}

static void test_dial_ipv6(void **state)
{
    (void)state;
    uint16_t port;
    int server = listen_on(AF_INET6, &port);
    if (server < 0)
        skip();
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://[::1]:%u", port);
    dial_and_refuse(server, url);
    close(server);
}

/* "localhost" may resolve to ::1 first; with only 127.0.0.1 listening the dialer must go on to
 * the next address rather than fail at the first refusal. */
static void test_dial_name_tries_every_address(void **state)
{
    (void)state;
    uint16_t port;
    int server = listen_on(AF_INET, &port);
    assert_true(server >= 0);
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://localhost:%u", port);
    dial_and_refuse(server, url);
    close(server);
}

static void test_dial_refused_names_connect(void **state)
{
    (void)state;
    uint16_t port;
    int server = listen_on(AF_INET, &port);
    assert_true(server >= 0);
    close(server); /* nothing listens there now */
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", port);
    uarc_client *c = uarc_client_new(NULL);
    uarc_status s = uarc_client_connect(c, url);
    assert_int_equal(s, UARC_BadCommunicationError);
    assert_non_null(strstr(uarc_client_error(c), "connect: BadCommunicationError"));
    assert_non_null(strstr(uarc_client_error(c), "refused"));
    assert_int_equal(uarc_client_fd(c), -1);
    uarc_client_delete(c);
}

static void test_dial_bad_urls(void **state)
{
    (void)state;
    uarc_client *c = uarc_client_new(NULL);
    assert_int_equal(uarc_client_connect(c, "http://127.0.0.1:4840"),
                     UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(uarc_client_error(c), "opc.tcp scheme"));
    assert_int_equal(uarc_client_connect(c, "opc.tcp://host.invalid:4840"),
                     UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(uarc_client_error(c), "cannot resolve host.invalid"));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_DISCONNECTED);
    uarc_client_delete(c);
}

/* A server that accepts and never answers: the connect timeout bounds the wait, step HEL. */
static void test_connect_timeout(void **state)
{
    (void)state;
    uint16_t port;
    int server = listen_on(AF_INET, &port);
    assert_true(server >= 0);
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", port);
    uarc_client_config cfg = {.connect_timeout_ms = 300};
    uarc_client *c = uarc_client_new(&cfg);
    int64_t t0 = now_ms();
    assert_int_equal(uarc_client_connect(c, url), UARC_BadTimeout);
    int64_t took = now_ms() - t0;
    assert_true(took >= 290 && took < 3000);
    assert_int_equal(strncmp(uarc_client_error(c), "HEL: BadTimeout", 15), 0);
    uarc_client_delete(c);
    close(server);
}

/* An adopted TCP socket (as a ReverseHello's) gets TCP keepalive with the configured timing, or
 * the defaults, or none when disabled. */
static int sockopt(int fd, int level, int name)
{
    int value = -1;
    socklen_t length = sizeof value;
    assert_int_equal(getsockopt(fd, level, name, &value, &length), 0);
    return value;
}

static void adopt_and_check(const uarc_client_config *cfg, int keepalive, int idle, int interval,
                            int count)
{
    uint16_t port;
    int server = listen_on(AF_INET, &port);
    assert_true(server >= 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    uarc_client *c = uarc_client_new(cfg);
    assert_int_equal(uarc_client_start_socket(c, fd, "opc.tcp://127.0.0.1:4840"), UARC_Good);
    int adopted = uarc_client_fd(c);
    assert_int_equal(adopted, fd);
    assert_int_equal(sockopt(adopted, SOL_SOCKET, SO_KEEPALIVE), keepalive);
    assert_int_equal(sockopt(adopted, IPPROTO_TCP, TCP_NODELAY) != 0, 1);
    if (keepalive) {
        assert_int_equal(sockopt(adopted, IPPROTO_TCP, TCP_KEEPIDLE), idle);
        assert_int_equal(sockopt(adopted, IPPROTO_TCP, TCP_KEEPINTVL), interval);
        assert_int_equal(sockopt(adopted, IPPROTO_TCP, TCP_KEEPCNT), count);
        assert_int_equal(sockopt(adopted, IPPROTO_TCP, TCP_USER_TIMEOUT),
                         (idle + interval * count) * 1000);
    }
    uarc_client_delete(c);
    close(server);
}

static void test_tcp_keepalive(void **state)
{
    (void)state;
    uarc_client_config cfg = {0};
    adopt_and_check(&cfg, 1, 30, 5, 4);
    cfg.tcp_keepalive_idle_s = 7;
    cfg.tcp_keepalive_interval_s = 2;
    cfg.tcp_keepalive_count = 3;
    adopt_and_check(&cfg, 1, 7, 2, 3);
    cfg.tcp_keepalive_disable = true;
    adopt_and_check(&cfg, 0, 0, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dial_ipv4),
        cmocka_unit_test(test_events_handed_in_are_the_only_wait),
        cmocka_unit_test(test_dial_ipv6),
        cmocka_unit_test(test_dial_name_tries_every_address),
        cmocka_unit_test(test_dial_refused_names_connect),
        cmocka_unit_test(test_dial_bad_urls),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_tcp_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
