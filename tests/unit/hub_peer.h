/*
 * What the hub tests' scripted servers share: reading the client's messages, answering HEL with
 * an ACK and OPN with its response, and a listener policy that accepts every server. Include it
 * after fake_server.h.
 */
#ifndef UARC_TESTS_HUB_PEER_H
#define UARC_TESTS_HUB_PEER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/uarc.h"

/* Reads one whole message of the client into `buf`; returns its size. */
static inline size_t read_message(int fd, uint8_t *buf, size_t capacity)
{
    assert_true(recv_exact(fd, buf, 8));
    uint32_t size = get_u32(buf + 4);
    assert_true(size >= 8 && size <= capacity);
    assert_true(recv_exact(fd, buf + 8, size - 8));
    return size;
}

static inline void send_ack(int fd)
{
    fake_frame f;
    frame_ack(&f);
    send_all(fd, f.bytes, f.length);
}

#define CHANNEL_ID 11u

/* Reads the client's OPN and answers it. */
static inline void answer_opn(int fd)
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

static inline bool readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

static inline uarc_status accept_any(void *user_data, const uarc_rhe *hello, const char *peer,
                                     char *reason, size_t reason_size)
{
    (void)user_data, (void)hello, (void)peer, (void)reason, (void)reason_size;
    return UARC_Good;
}

#endif
