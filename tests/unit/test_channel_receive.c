/*
 * The channel's two ways in: the application's bytes (byte mode), copied into the receive buffer,
 * and the socket's own read buffer (uarc__channel_receive_own), where a chunk that is whole is
 * handled in place and only a chunk cut at the buffer's end is copied. Both must give the same
 * events and refuse the same headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel_peer.h"

/* Allocations made through the library's allocator, counted. */
static size_t allocations;

static void *count_malloc(size_t size, void *u)
{
    (void)u;
    allocations++;
    return malloc(size);
}

static void *count_realloc(void *p, size_t size, void *u)
{
    (void)u;
    allocations++;
    return realloc(p, size);
}

static void count_free(void *p, void *u)
{
    (void)u;
    free(p);
}

static uarc_status feed_own(fixture *f, bytes *b, size_t from, size_t to)
{
    return uarc__channel_receive_own(f->ch, b->data + from, to - from, 0);
}

/* Two whole responses in one read are handled where they are: nothing is allocated. The
 * application's bytes are copied: the second response, bigger than any before, grows the receive
 * buffer. */
static void test_whole_chunks_are_not_copied(void **state)
{
    (void)state;
    uarc_allocator counting = {count_malloc, count_realloc, count_free, NULL};
    uarc_set_allocator(&counting);
    for (int own = 0; own < 2; own++) {
        fixture *f = new_fixture(NULL);
        open_channel(f, 65535, 0, 0, 60000, 0);
        uint32_t a = send_read(f), b = send_read(f);
        take(f);
        msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, a, "first", 5);
        static char big[3000];
        memset(big, 'b', sizeof big);
        msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, b, big, sizeof big);
        size_t before = allocations;
        uarc_status s = own ? feed_own(f, &f->in, 0, f->in.n) : feed(f, &f->in, 0);
        assert_int_equal(s, UARC_Good);
        assert_int_equal(f->rec.messages, 2);
        assert_int_equal(f->rec.message_id, b);
        assert_int_equal(f->rec.message.n, sizeof big);
        assert_memory_equal(f->rec.message.data, big, sizeof big);
        if (own)
            assert_int_equal(allocations - before, 0);
        else
            assert_true(allocations - before > 0);
        free_fixture(f);
    }
    uarc_set_allocator(NULL);
}

/* A chunk cut at the end of one read is copied: the caller may reuse its buffer at once, and the
 * rest, in the next read, completes it. Cut inside the header and inside the body. */
static void test_cut_chunk_is_kept(void **state)
{
    (void)state;
    static const size_t cuts[] = {3, 8, 20};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        fixture *f = new_fixture(NULL);
        open_channel(f, 65535, 0, 0, 60000, 0);
        uint32_t a = send_read(f), b = send_read(f);
        take(f);
        msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, a, "whole", 5);
        size_t second = f->in.n;
        msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, b, "cut in two", 10);
        size_t end = f->in.n, cut = second + cuts[i];
        assert_int_equal(feed_own(f, &f->in, 0, cut), UARC_Good);
        assert_int_equal(f->rec.messages, 1);
        assert_memory_equal(f->rec.message.data, "whole", 5);
        /* the first read's bytes are gone; the part of the cut chunk was kept */
        uint8_t rest[64];
        memcpy(rest, f->in.data + cut, end - cut);
        memset(f->in.data, 0xEE, end);
        assert_int_equal(uarc__channel_receive_own(f->ch, rest, end - cut, 0), UARC_Good);
        assert_int_equal(f->rec.messages, 2);
        assert_int_equal(f->rec.message_id, b);
        assert_memory_equal(f->rec.message.data, "cut in two", 10);
        /* and a whole chunk after it, bigger than the receive buffer, is handled in place again */
        uint32_t c = send_read(f);
        take(f);
        f->in.n = 0;
        static char big[3000];
        memset(big, 'g', sizeof big);
        msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, c, big, sizeof big);
        uarc_allocator counting = {count_malloc, count_realloc, count_free, NULL};
        uarc_set_allocator(&counting);
        size_t before = allocations;
        assert_int_equal(feed_own(f, &f->in, 0, f->in.n), UARC_Good);
        assert_int_equal(allocations - before, 0);
        uarc_set_allocator(NULL);
        assert_int_equal(f->rec.messages, 3);
        assert_memory_equal(f->rec.message.data, big, sizeof big);
        free_fixture(f);
    }
}

/* A big chunk cut between two reads grows the receive buffer to its size; once it is handled,
 * that buffer is given back (a session does not hold the size of its biggest response), and a
 * small cut chunk after it is kept and completed as before. */
static void test_big_cut_chunk_buffer_given_back(void **state)
{
    (void)state;
    uarc_memory_budget *budget = uarc_memory_budget_new(0);
    assert_non_null(budget);
    uarc__channel_config config = {.endpoint_url = URL, .budget = budget};
    fixture *f = new_fixture(&config);
    open_channel(f, 65535, 0, 0, 60000, 0);
    static char big[40000];
    memset(big, 'b', sizeof big);
    uint32_t a = send_read(f);
    take(f);
    f->in.n = 0;
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, a, big, sizeof big);
    size_t used = uarc_memory_budget_used(budget);
    assert_int_equal(feed_own(f, &f->in, 0, 30000), UARC_Good);
    assert_true(uarc_memory_budget_used(budget) >= used + 30000); /* the cut chunk, copied */
    assert_int_equal(feed_own(f, &f->in, 30000, f->in.n), UARC_Good);
    assert_int_equal(f->rec.messages, 1);
    assert_memory_equal(f->rec.message.data, big, sizeof big);
    /* given back (with the small buffer the handshake, fed as bytes, had left) */
    assert_true(uarc_memory_budget_used(budget) <= used);

    uint32_t b = send_read(f);
    take(f);
    f->in.n = 0;
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, b, "small one", 9);
    assert_int_equal(feed_own(f, &f->in, 0, 30), UARC_Good);
    assert_int_equal(feed_own(f, &f->in, 30, f->in.n), UARC_Good);
    assert_int_equal(f->rec.messages, 2);
    assert_memory_equal(f->rec.message.data, "small one", 9);
    assert_true(uarc_memory_budget_used(budget) > 0); /* a small buffer stays */
    free_fixture(f);
    assert_int_equal(uarc_memory_budget_used(budget), 0);
    uarc_memory_budget_delete(budget);
}

/* A header read in place is checked as one in the receive buffer is: its type, and its size
 * against our ReceiveBufferSize, before the body is looked at. */
static void test_headers_checked_in_place(void **state)
{
    (void)state;
    uarc__channel_config c = {.endpoint_url = URL, .receive_buffer_size = 8192};
    fixture *f = new_fixture(&c);
    open_channel(f, 65535, 0, 0, 60000, 0);
    /* all 8193 bytes it announces are there: the check, not a missing body, refuses it */
    static uint8_t over[8193];
    memcpy(over, (const uint8_t[]){'M', 'S', 'G', 'F', 0x01, 0x20, 0, 0}, 8);
    assert_int_equal(uarc__channel_receive_own(f->ch, over, sizeof over, 0),
                     UARC_BadTcpMessageTooLarge);
    expect_closed(f, UARC_BadTcpMessageTooLarge);
    free_fixture(f);

    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint8_t hel[32] = {'H', 'E', 'L', 'F', 32, 0, 0, 0};
    assert_int_equal(uarc__channel_receive_own(f->ch, hel, sizeof hel, 0),
                     UARC_BadTcpMessageTypeInvalid);
    expect_closed(f, UARC_BadTcpMessageTypeInvalid);
    assert_non_null(strstr(f->rec.closed_reason, "HELF"));
    free_fixture(f);

    /* a CLO handled in place ends the channel; what follows it is not delivered */
    f = new_fixture(NULL);
    open_channel(f, 65535, 0, 0, 60000, 0);
    uint32_t id = send_read(f);
    take(f);
    size_t m = begin_message(&f->in, "CLOF");
    put32(&f->in, CHANNEL_ID);
    put32(&f->in, TOKEN_ID);
    put32(&f->in, f->server_sequence++);
    put32(&f->in, 1);
    end_message(&f->in, m);
    msg_chunk(&f->in, 'F', TOKEN_ID, f->server_sequence++, id, "late", 4);
    assert_int_equal(feed_own(f, &f->in, 0, f->in.n), UARC_BadSecureChannelClosed);
    assert_int_equal(f->rec.messages, 0);
    free_fixture(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_chunks_are_not_copied),
        cmocka_unit_test(test_cut_chunk_is_kept),
        cmocka_unit_test(test_big_cut_chunk_buffer_given_back),
        cmocka_unit_test(test_headers_checked_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
