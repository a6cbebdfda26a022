/*
 * Scripted fake servers for listener tests: plain loopback sockets that dial the listener and
 * write RHE bytes (or anything else), and readers for what the listener answers.
 *
 * Every helper fails the running cmocka test on an unexpected system error. Reads wait at most
 * FAKE_READ_TIMEOUT_MS, so a listener that never answers fails the test instead of hanging it.
 * Include it after <cmocka.h>.
 */
#ifndef UARC_TESTS_FAKE_SERVER_H
#define UARC_TESTS_FAKE_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "uarc/types.h"

#define FAKE_READ_TIMEOUT_MS 5000

/* A frame under construction: bytes appended in order, integers little-endian. */
typedef struct fake_frame {
    uint8_t bytes[16384];
    size_t length;
} fake_frame;

static inline void frame_bytes(fake_frame *f, const void *data, size_t n)
{
    assert_true(f->length + n <= sizeof f->bytes);
    memcpy(f->bytes + f->length, data, n);
    f->length += n;
}

static inline void frame_u32(fake_frame *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    frame_bytes(f, b, 4);
}

/* A UA String: Int32 length, then `n` bytes of `data` (n may differ from length on purpose). */
static inline void frame_string(fake_frame *f, int32_t length, const void *data, size_t n)
{
    frame_u32(f, (uint32_t)length);
    if (n)
        frame_bytes(f, data, n);
}

static inline void frame_cstring(fake_frame *f, const char *s)
{
    frame_string(f, (int32_t)strlen(s), s, strlen(s));
}

/* Starts a frame with a 4-byte type+chunk ("RHEF") and a MessageSize patched by frame_end(). */
static inline void frame_begin(fake_frame *f, const char type_and_chunk[4])
{
    f->length = 0;
    frame_bytes(f, type_and_chunk, 4);
    frame_u32(f, 0);
}

/* Writes the real length into the MessageSize field. */
static inline void frame_end(fake_frame *f)
{
    uint32_t size = (uint32_t)f->length;
    uint8_t b[4] = {(uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16),
                    (uint8_t)(size >> 24)};
    memcpy(f->bytes + 4, b, 4);
}

/* An OpenSecureChannelResponse chunk for SecurityPolicy None (null certificate and thumbprint)
 * granting `token_id` on `channel_id` for 600 s. */
static inline void frame_opn_response(fake_frame *f, uint32_t channel_id, uint32_t token_id,
                                      uint32_t sequence, uint32_t request_id)
{
    uarc_OpenSecureChannelResponse r;
    uarc_init(&r, UARC_T(OpenSecureChannelResponse));
    r.securityToken.channelId = channel_id;
    r.securityToken.tokenId = token_id;
    r.securityToken.revisedLifetime = 600000;
    uint8_t *body;
    size_t length;
    assert_int_equal(uarc_encode_alloc(&r, UARC_T(OpenSecureChannelResponse), &body, &length),
                     UARC_Good);
    frame_begin(f, "OPNF");
    frame_u32(f, channel_id);
    frame_cstring(f, "http://opcfoundation.org/UA/SecurityPolicy#None");
    frame_u32(f, 0xFFFFFFFFu);
    frame_u32(f, 0xFFFFFFFFu);
    frame_u32(f, sequence);
    frame_u32(f, request_id);
    frame_bytes(f, "\x01\x00\xC1\x01", 4); /* i=449, OpenSecureChannelResponse */
    frame_bytes(f, body, length);
    frame_end(f);
    uarc_free(body);
}

/* An ACK granting 65535-byte buffers and no message or chunk limits. */
static inline void frame_ack(fake_frame *f)
{
    frame_begin(f, "ACKF");
    frame_u32(f, 0);
    frame_u32(f, 65535);
    frame_u32(f, 65535);
    frame_u32(f, 0);
    frame_u32(f, 0);
    frame_end(f);
}

/* One final MSG chunk (SecurityPolicy None) answering `request_id` with `response`, a struct of
 * `type` whose first member is the ResponseHeader (its requestHandle is zeroed). */
static inline void frame_msg_response(fake_frame *f, uint32_t channel_id, uint32_t token_id,
                                      uint32_t sequence, uint32_t request_id, void *response,
                                      const uarc_type *type)
{
    ((uarc_ResponseHeader *)response)->requestHandle = 0;
    uint8_t *body;
    size_t length;
    assert_int_equal(uarc_encode_alloc(response, type, &body, &length), UARC_Good);
    uarc_nodeid id = uarc_nodeid_numeric(0, type->binary_encoding_id);
    uint8_t prefix[16];
    size_t prefix_length = 0;
    assert_int_equal(uarc_encode(&id, UARC_T(NodeId), prefix, sizeof prefix, &prefix_length),
                     UARC_Good);
    frame_begin(f, "MSGF");
    frame_u32(f, channel_id);
    frame_u32(f, token_id);
    frame_u32(f, sequence);
    frame_u32(f, request_id);
    frame_bytes(f, prefix, prefix_length);
    frame_bytes(f, body, length);
    frame_end(f);
    uarc_free(body);
}

/* A well-formed RHE. */
static inline void frame_rhe(fake_frame *f, const char *server_uri, const char *endpoint_url)
{
    frame_begin(f, "RHEF");
    frame_cstring(f, server_uri);
    frame_cstring(f, endpoint_url);
    frame_end(f);
}

static inline void set_read_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
}

/* Dials host:port (IPv4 or IPv6 literal) and returns the blocking socket. */
static inline int connect_to_host(const char *host, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        len = sizeof *in;
    } else {
        assert_int_equal(inet_pton(AF_INET6, host, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof *in6;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0)
        fail_msg("connect to %s:%u: %s", host, (unsigned)port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_read_timeout(fd, FAKE_READ_TIMEOUT_MS);
    return fd;
}

static inline int connect_to(uint16_t port)
{
    return connect_to_host("127.0.0.1", port);
}

/* The fake server's own address as the listener shows its peer ("127.0.0.1:51234"). */
static inline void local_address(int fd, char *out, size_t out_size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, out_size, "%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, out_size, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    }
}

static inline void send_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            fail_msg("send: %s", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

/* Reads exactly n bytes; false on EOF, error or timeout. */
static inline bool recv_exact(int fd, void *out, size_t n)
{
    uint8_t *p = out;
    while (n) {
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Reads one ERR message and checks its framing: "ERRF", a MessageSize that matches the body,
 * the Error status, and a Reason String whose length fills the rest. The reason is copied
 * NUL-terminated into `reason` (cut to reason_size).
 */
static inline void read_err_frame(int fd, uint32_t *status, char *reason, size_t reason_size)
{
    uint8_t header[8];
    if (!recv_exact(fd, header, sizeof header))
        fail_msg("no ERR header arrived: %s", strerror(errno));
    assert_memory_equal(header, "ERRF", 4);
    uint32_t size = get_u32(header + 4);
    assert_true(size >= 16);
    assert_true(size <= 16 + 4095);
    uint8_t body[16 + 4095];
    assert_true(recv_exact(fd, body, size - 8));
    *status = get_u32(body);
    int32_t length = (int32_t)get_u32(body + 4);
    assert_true(length >= 0);
    assert_int_equal((uint32_t)length, size - 16);
    size_t n = (size_t)length < reason_size - 1 ? (size_t)length : reason_size - 1;
    memcpy(reason, body + 8, n);
    reason[n] = '\0';
}

/* The listener closed its end: the next read sees end of stream, no byte and no reset. */
static inline void expect_eof(int fd)
{
    uint8_t b;
    ssize_t k;
    do
        k = recv(fd, &b, 1, 0);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        fail_msg("expected EOF, got error: %s", strerror(errno));
    if (k > 0)
        fail_msg("expected EOF, got byte 0x%02x", b);
}

#endif
