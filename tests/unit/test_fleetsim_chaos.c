/* fleetsim's chaos.c: the re-dial backoff and the per-minute chaos draws, with a fixed seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chaos.h"

static void test_backoff_and_chaos(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    for (uint32_t failures = 0; failures < 12; failures++) {
        int64_t d = chaos_backoff(1000, failures, &rng);
        int64_t base = failures >= 5 ? 30000 : 1000LL << failures;
        if (base > 30000)
            base = 30000;
        assert_true(d >= base * 3 / 4 && d <= base * 5 / 4);
    }
    chaos_config none = {0};
    chaos_config all = {.drop_per_min = 1};
    int hits = 0;
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(chaos_draw(&none, 60000, &rng), CHAOS_NONE);
        hits += chaos_draw(&all, 6000, &rng) == CHAOS_DROP; /* 10 % per 6 s window */
    }
    assert_in_range(hits, 800, 1200);
    assert_int_equal(chaos_draw(&all, 60000, &rng), CHAOS_DROP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_and_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
