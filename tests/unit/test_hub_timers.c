/*
 * The hub's deadline heap and per-server backoff, with injected time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "reverse/hub_timers.h"
#include "uarc/status_codes.h"

#define NODES 1000

static uint32_t next_random(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* The earliest deadline by a plain scan, the reference the heap must agree with. */
static int64_t scan_min(const uarc__heap_node *nodes, size_t n)
{
    int64_t best = -1;
    for (size_t i = 0; i < n; i++)
        if (nodes[i].index != UARC__HEAP_ABSENT && (best < 0 || nodes[i].due < best))
            best = nodes[i].due;
    return best;
}

/* Inserts, moves (earlier and later), removes and pops at random: the top is always the
 * earliest deadline, and every node knows its place. */
static void test_heap_agrees_with_a_scan(void **state)
{
    (void)state;
    static uarc__heap_node nodes[NODES];
    uarc__heap heap = {0};
    for (size_t i = 0; i < NODES; i++)
        uarc__heap_node_init(&nodes[i]);
    uint32_t rnd = 12345;
    for (int step = 0; step < 20000; step++) {
        uarc__heap_node *n = &nodes[next_random(&rnd) % NODES];
        uint32_t op = next_random(&rnd) % 4;
        if (op == 0)
            uarc__heap_remove(&heap, n);
        else if (op == 1)
            assert_true(uarc__heap_set(&heap, n, -1));
        else
            assert_true(uarc__heap_set(&heap, n, (int64_t)(next_random(&rnd) % 100000)));
        uarc__heap_node *top = uarc__heap_top(&heap);
        int64_t expected = scan_min(nodes, NODES);
        if (expected < 0)
            assert_null(top);
        else
            assert_int_equal(top->due, expected);
        for (size_t i = 0; i < heap.count; i++)
            assert_int_equal(heap.items[i]->index, i);
    }
    /* Popping everything gives the deadlines in order. */
    int64_t last = -1;
    for (uarc__heap_node *top; (top = uarc__heap_top(&heap));) {
        assert_true(top->due >= last);
        last = top->due;
        uarc__heap_remove(&heap, top);
        assert_int_equal(top->index, UARC__HEAP_ABSENT);
    }
    uarc__heap_clear(&heap);
}

/* The same refusal twice starts a step, each further repeat doubles it up to the cap, and during
 * a step dials are refused and counted; another failure or a success ends it. */
static void test_backoff_steps(void **state)
{
    (void)state;
    uarc__backoff b = {0};
    int64_t now = 5000;
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUntrusted, now, 1000, 3000), 0);
    assert_false(uarc__backoff_refuses(&b, now));
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUntrusted, now, 1000, 3000), 1000);
    assert_true(uarc__backoff_refuses(&b, now + 1));
    assert_true(uarc__backoff_refuses(&b, now + 999));
    assert_int_equal(b.refused, 2);
    assert_false(uarc__backoff_refuses(&b, now + 1000)); /* the step is over: served */
    now += 1000;
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUntrusted, now, 1000, 3000), 2000);
    assert_int_equal(b.refused, 0);
    assert_true(uarc__backoff_refuses(&b, now + 1999));
    assert_false(uarc__backoff_refuses(&b, now + 2000));
    now += 2000;
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUntrusted, now, 1000, 3000),
                     3000); /* capped */
    now += 3000;
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUntrusted, now, 1000, 3000), 3000);

    /* Another failure of the same kind of answer starts over. */
    now += 3000;
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUriInvalid, now, 1000, 3000), 0);
    assert_false(uarc__backoff_refuses(&b, now));
    /* The path failing (closed, timed out) is no reason to back off, and forgets the rest. */
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadConnectionClosed, now, 1000, 3000), 0);
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadConnectionClosed, now, 1000, 3000), 0);
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUriInvalid, now, 1000, 3000), 0);
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadTimeout, now, 1000, 3000), 0);
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUriInvalid, now, 1000, 3000), 0);
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUriInvalid, now, 1000, 3000),
                     1000);
    uarc__backoff_reset(&b); /* a success */
    assert_false(uarc__backoff_refuses(&b, now + 1));
    assert_int_equal(uarc__backoff_failed(&b, UARC_BadCertificateUriInvalid, now, 1000, 3000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_agrees_with_a_scan),
        cmocka_unit_test(test_backoff_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
