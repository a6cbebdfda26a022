/* One JSON string writer (src/encoding/json.c): uarc_json_string(), every string inside
 * uarc_json_encode() and uarc_variant_to_json(), and the tool's JSON Lines (tools/uarc/output.c,
 * compiled into this test) write the same bytes the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "output.h"
#include "uarc/uarc.h"

/* Quotes, backslashes, control bytes (short and \u forms, DEL, NUL), 2-, 3- and 4-byte UTF-8,
 * and bytes that are not UTF-8: a stray 0xFF, an encoded surrogate, an overlong '/', a sequence
 * cut short by the end. */
static const char input[] = "q\"b\\c\n\r\t\x01\x1f\x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                            "\xff\xed\xa0\x80\xc0\xaf\x00\xc3";
#define INPUT_LENGTH (sizeof input - 1)
static const char expected[] = "\"q\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\\u007f \xc3\xa9 \xe2\x82\xac "
                               "\xf0\x9f\x98\x80 \\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
                               "\\u0000\\ufffd\"";

static const uarc_string input_string = {INPUT_LENGTH, (uint8_t *)input};

/* `json` was written with its length in `length`. */
static void expect_json(char *json, const size_t *length, const char *want)
{
    assert_non_null(json);
    assert_int_equal(*length, strlen(want));
    assert_string_equal(json, want);
    uarc_free(json);
}

static void test_json_string(void **state)
{
    (void)state;
    size_t n;
    expect_json(uarc_json_string(input, INPUT_LENGTH, &n), &n, expected);
    expect_json(uarc_json_string(NULL, 0, &n), &n, "\"\"");
    char *plain = uarc_json_string("plain text", 10, NULL);
    assert_string_equal(plain, "\"plain text\"");
    uarc_free(plain);
}

static void test_json_encode_strings(void **state)
{
    (void)state;
    size_t n;
    expect_json(uarc_json_encode(&input_string, UARC_T(String), &n), &n, expected);

    uarc_variant v = {0};
    assert_int_equal(uarc_variant_set_scalar(&v, &input_string, UARC_T(String)), UARC_Good);
    expect_json(uarc_variant_to_json(&v, &n), &n, expected);
    uarc_clear(&v, UARC_T(Variant));

    uarc_localized_text lt = {input_string, input_string};
    char want[512];
    snprintf(want, sizeof want, "{\"Locale\":%s,\"Text\":%s}", expected, expected);
    expect_json(uarc_json_encode(&lt, UARC_T(LocalizedText), &n), &n, want);
}

/* Runs `print` with stdout going to a temporary file; returns what it wrote (free it). */
static char *captured(void (*print)(void))
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    print();
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    long size = ftell(tmp);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    return text;
}

static void print_json_line(void)
{
    out_line line;
    out_begin(&line, true, "event");
    out_field(&line, "value", input, INPUT_LENGTH);
    out_end(&line);
}

static void print_text_line(void)
{
    out_line line;
    out_begin(&line, false, "event");
    out_field(&line, "value", input, INPUT_LENGTH);
    out_end(&line);
}

static void test_tool_output(void **state)
{
    (void)state;
    char want[512];
    snprintf(want, sizeof want, "{\"event\":\"event\",\"value\":%s}\n", expected);
    char *got = captured(print_json_line);
    assert_string_equal(got, want);
    free(got);
    /* Text mode quotes a value that needs it the same way. */
    snprintf(want, sizeof want, "event value=%s\n", expected);
    got = captured(print_text_line);
    assert_string_equal(got, want);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_json_encode_strings),
        cmocka_unit_test(test_tool_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
