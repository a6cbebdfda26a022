/*
 * libFuzzer target for the secure channel's receive path: UA-TCP headers, ACK/ERR, OPN responses,
 * MSG chunk headers, sequence numbers, chunk joining and abort chunks, renewal timing.
 *
 * Input: byte 0 holds options (bit 0: send three requests when the channel opens, bit 1: small
 * limits), bytes 1-2 seed the split points and clock steps; the rest is what the server sends,
 * fed in pieces of fuzzer-chosen sizes with a tick after each. Besides "no crash, no leak" it
 * checks that events stop after `closed` and that output never exceeds the send limits.
 */
#include <stdlib.h>
#include <string.h>

#include "channel/channel.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

typedef struct run {
    uarc__channel *channel;
    int send_on_open;
    int closed;
} run;

static void send_read(run *r)
{
    uarc_ReadRequest request;
    uarc_init(&request, UARC_T(ReadRequest));
    uint32_t id;
    (void)uarc__channel_send_request(r->channel, &request, UARC_T(ReadRequest), &id);
}

static void on_opened(void *u)
{
    run *r = u;
    require(!r->closed);
    if (r->send_on_open)
        for (int i = 0; i < 3; i++)
            send_read(r);
}

static void on_message(void *u, uint32_t id, const uint8_t *body, size_t length)
{
    run *r = u;
    (void)id;
    require(!r->closed);
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < length; i++) /* the body must be readable */
        sink ^= body[i];
    (void)sink;
}

static void on_failed(void *u, uint32_t id, uarc_status status, const char *reason)
{
    run *r = u;
    (void)id;
    require(!r->closed && uarc_status_is_bad(status) && reason);
}

static void on_closed(void *u, uarc_status status, const char *reason)
{
    run *r = u;
    (void)status;
    require(!r->closed && reason);
    r->closed = 1;
}

static void drain(run *r, uint32_t limit)
{
    const uint8_t *out;
    size_t n = uarc__channel_output(r->channel, &out);
    for (size_t pos = 0; pos + 8 <= n;) { /* every chunk within the server's buffer */
        uint32_t size = (uint32_t)out[pos + 4] | (uint32_t)out[pos + 5] << 8 |
                        (uint32_t)out[pos + 6] << 16 | (uint32_t)out[pos + 7] << 24;
        require(size >= 8 && size <= limit && size <= n - pos);
        pos += size;
    }
    uarc__channel_output_done(r->channel, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A piece goes to the channel as the application's bytes or, in a buffer of its exact size that
 * the channel may change, as the socket's own read buffer (chunks handled in place). */
static uarc_status receive_piece(uarc__channel *ch, const uint8_t *data, size_t n, int64_t now,
                                 bool own)
{
    if (!own)
        return uarc__channel_receive(ch, data, n, now);
    uint8_t *copy = malloc(n);
    require(copy != NULL);
    memcpy(copy, data, n);
    uarc_status s = uarc__channel_receive_own(ch, copy, n, now);
    free(copy);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    run r = {0};
    uint8_t options = data[0];
    r.send_on_open = options & 1;
    uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8;
    data += 3;
    size -= 3;

    uarc__channel_config config = {.endpoint_url = "opc.tcp://fuzz:4840"};
    if (options & 2) {
        config.receive_buffer_size = 8192;
        config.max_message_size = 20000;
        config.max_chunk_count = 4;
    } else {
        config.max_message_size = 1 << 20;
    }
    config.requested_lifetime_ms = 4000;
    uarc__channel_events events = {on_opened, on_message, on_failed, on_closed, &r};
    r.channel = uarc__channel_new(&config, &events);
    if (!r.channel)
        return 0;
    int64_t now = 0;
    require(uarc__channel_start(r.channel, now) == UARC_Good);
    drain(&r, 65535);

    static const size_t steps[] = {1, 3, 8, 24, 100, 1000, 70000};
    size_t pos = 0;
    while (pos < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = steps[(seed >> 16) % (sizeof steps / sizeof steps[0])];
        if (n > size - pos)
            n = size - pos;
        uarc_status s = receive_piece(r.channel, data + pos, n, now, seed & 0x10000);
        require(s == UARC_Good || r.closed);
        pos += n;
        now += (seed >> 8) % 1500;
        uarc__channel_tick(r.channel, now);
        uint32_t limit = uarc__channel_peer_receive_buffer_size(r.channel);
        drain(&r, limit ? limit : 65535);
        if (uarc__channel_get_state(r.channel) == UARC__CHANNEL_OPEN && (seed & 0x700) == 0)
            send_read(&r);
    }
    if (!r.closed && (seed & 1))
        uarc__channel_close(r.channel);
    else
        uarc__channel_connection_lost(r.channel, UARC_BadConnectionClosed, "end of input");
    drain(&r, 1u << 31);
    require(r.closed);
    uarc__channel_delete(r.channel);
    return 0;
}
