/* uarc_escape_bytes: peer bytes made readable for error details and logs (src/core/escape.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uarc/common.h"

static void test_escape_bytes(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(uarc_escape_bytes(out, sizeof out, (const uint8_t *)"a\\b\x01\xff", 5),
                        "a\\\\b\\x01\\xff");
    uarc_escape_bytes(out, 8, (const uint8_t *)"abcdefghijkl", 12);
    assert_string_equal(out, "abcd...");
    assert_true(strlen(out) < 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
