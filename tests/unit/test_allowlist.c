/* Allowlist and EndpointUrl rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "uarc/allowlist.h"

static uarc_rhe hello_of(const char *uri, size_t uri_len, const char *url)
{
    uarc_rhe h = {
        {(const uint8_t *)uri, uri_len}, {(const uint8_t *)url, url ? strlen(url) : 0}, 0};
    return h;
}

static uarc_status check(const uarc_allowlist *al, const char *uri, const char *url, char *reason)
{
    uarc_rhe h = hello_of(uri, uri ? strlen(uri) : 0, url);
    return uarc_allowlist_check(al, &h, reason, 256);
}

static void test_exact_match_only(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    char reason[256];
    assert_int_equal(uarc_allowlist_add(al, "urn:plant:line1", NULL), UARC_Good);
    assert_int_equal(check(al, "urn:plant:line1", "opc.tcp://h:4840", reason), UARC_Good);
    /* Case-sensitive, no prefix or suffix matches. */
    assert_int_equal(check(al, "urn:Plant:line1", "opc.tcp://h:4840", reason),
                     UARC_BadTcpEndpointUrlInvalid);
    assert_string_equal(reason, "ServerUri \"urn:Plant:line1\" is not in the allowlist");
    assert_int_equal(check(al, "urn:plant:line", "opc.tcp://h", reason),
                     UARC_BadTcpEndpointUrlInvalid);
    assert_int_equal(check(al, "urn:plant:line10", "opc.tcp://h", reason),
                     UARC_BadTcpEndpointUrlInvalid);
    uarc_allowlist_delete(al);
}

static void test_compared_by_length_not_as_c_string(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    assert_int_equal(uarc_allowlist_add(al, "urn:a", NULL), UARC_Good);
    /* "urn:a\0x": a C-string comparison would see "urn:a". */
    uarc_rhe h = hello_of("urn:a\0x", 7, "opc.tcp://h");
    assert_int_equal(uarc_allowlist_check(al, &h, NULL, 0), UARC_BadTcpEndpointUrlInvalid);
    /* A view that is not NUL-terminated still matches. */
    h = hello_of("urn:abc", 5, "opc.tcp://h");
    assert_int_equal(uarc_allowlist_check(al, &h, NULL, 0), UARC_Good);
    uarc_allowlist_delete(al);
}

static void test_empty_allowlist_rejects_everything(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    char reason[256];
    assert_int_equal(check(al, "urn:a", "opc.tcp://h", reason), UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(reason, "allowlist is empty"));
    assert_int_equal(check(NULL, "urn:a", "opc.tcp://h", reason), UARC_BadTcpEndpointUrlInvalid);
    uarc_allowlist_delete(al);
}

static void test_missing_server_uri(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    char reason[256];
    uarc_allowlist_add(al, "urn:a", NULL);
    assert_int_equal(check(al, NULL, "opc.tcp://h", reason), UARC_BadTcpEndpointUrlInvalid);
    assert_string_equal(reason, "ServerUri is empty");
    uarc_allowlist_delete(al);
}

static void test_pinned_endpoint_url(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    char reason[256];
    assert_int_equal(uarc_allowlist_add(al, "urn:a", "opc.tcp://10.0.0.5:4840"), UARC_Good);
    assert_int_equal(uarc_allowlist_add(al, "urn:a", "opc.tcp://backup:4840"), UARC_Good);
    assert_int_equal(check(al, "urn:a", "opc.tcp://10.0.0.5:4840", reason), UARC_Good);
    assert_int_equal(check(al, "urn:a", "opc.tcp://backup:4840", reason), UARC_Good);
    assert_int_equal(check(al, "urn:a", "opc.tcp://10.0.0.6:4840", reason),
                     UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(reason, "only with another EndpointUrl"));
    /* An unpinned entry for the same URI allows any URL. */
    assert_int_equal(uarc_allowlist_add(al, "urn:a", NULL), UARC_Good);
    assert_int_equal(check(al, "urn:a", "opc.tcp://10.0.0.6:4840", reason), UARC_Good);
    assert_int_equal(uarc_allowlist_count(al), 3);
    uarc_allowlist_delete(al);
}

static void test_many_entries_found(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    char uri[64];
    for (int i = 999; i >= 0; i--) {
        snprintf(uri, sizeof uri, "urn:fleet:%d", i * 7);
        assert_int_equal(uarc_allowlist_add(al, uri, NULL), UARC_Good);
    }
    for (int i = 0; i < 7000; i++) {
        snprintf(uri, sizeof uri, "urn:fleet:%d", i);
        assert_int_equal(check(al, uri, "opc.tcp://h", NULL) == UARC_Good, i % 7 == 0);
    }
    uarc_allowlist_delete(al);
}

static void test_add_validates(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    assert_int_equal(uarc_allowlist_add(al, "", NULL), UARC_BadInvalidArgument);
    assert_int_equal(uarc_allowlist_add(al, NULL, NULL), UARC_BadInvalidArgument);
    assert_int_equal(uarc_allowlist_add(al, "urn:a", "http://h"), UARC_BadInvalidArgument);
    char *big = malloc(4097);
    memset(big, 'a', 4096);
    big[4096] = '\0';
    assert_int_equal(uarc_allowlist_add(al, big, NULL), UARC_BadInvalidArgument);
    big[4095] = '\0';
    assert_int_equal(uarc_allowlist_add(al, big, NULL), UARC_Good);
    free(big);
    assert_int_equal(uarc_allowlist_count(al), 1);
    uarc_allowlist_delete(al);
}

static void expect_url(const char *url, uarc_status expected, const char *reason_part)
{
    char reason[256] = "";
    uarc_view v = {(const uint8_t *)url, strlen(url)};
    uarc_status s = uarc_endpoint_url_check(v, reason, sizeof reason);
    if (s != expected)
        fail_msg("%s: expected %s, got %s (%s)", url, uarc_status_name(expected),
                 uarc_status_name(s), reason);
    if (reason_part && !strstr(reason, reason_part))
        fail_msg("%s: reason \"%s\" lacks \"%s\"", url, reason, reason_part);
}

static void test_endpoint_url_rules(void **state)
{
    (void)state;
    expect_url("opc.tcp://127.0.0.1:4840", UARC_Good, NULL);
    expect_url("OPC.TCP://Host:4840/path/x", UARC_Good, NULL);
    expect_url("opc.tcp://[::1]:4840", UARC_Good, NULL);
    expect_url("opc.tcp://host", UARC_Good, NULL);
    expect_url("opc.tcp://host/", UARC_Good, NULL);
    expect_url("", UARC_BadTcpEndpointUrlInvalid, "empty");
    expect_url("opc.https://h:443", UARC_BadTcpEndpointUrlInvalid, "opc.tcp scheme");
    expect_url("http://h", UARC_BadTcpEndpointUrlInvalid, "opc.tcp scheme");
    expect_url("opc.tcp:/h", UARC_BadTcpEndpointUrlInvalid, "opc.tcp scheme");
    expect_url("opc.tcp://", UARC_BadTcpEndpointUrlInvalid, "no host");
    expect_url("opc.tcp://:4840", UARC_BadTcpEndpointUrlInvalid, "no host");
    expect_url("opc.tcp:///path", UARC_BadTcpEndpointUrlInvalid, "no host");
    expect_url("opc.tcp://[]:1", UARC_BadTcpEndpointUrlInvalid, "IPv6");
    expect_url("opc.tcp://[::1:4840", UARC_BadTcpEndpointUrlInvalid, "IPv6");
    expect_url("opc.tcp://[::1]x", UARC_BadTcpEndpointUrlInvalid, "invalid host");
    expect_url("opc.tcp://h:0", UARC_BadTcpEndpointUrlInvalid, "port");
    expect_url("opc.tcp://h:65536", UARC_BadTcpEndpointUrlInvalid, "port");
    expect_url("opc.tcp://h:", UARC_BadTcpEndpointUrlInvalid, "port");
    expect_url("opc.tcp://h:12a", UARC_BadTcpEndpointUrlInvalid, "port");
    expect_url("opc.tcp://h:0000004840", UARC_BadTcpEndpointUrlInvalid, "port");
    expect_url("opc.tcp://h st:1", UARC_BadTcpEndpointUrlInvalid, "space or control");
    expect_url("opc.tcp://h\x01", UARC_BadTcpEndpointUrlInvalid, "\\x01");
}

static void test_check_applies_url_rules_first(void **state)
{
    (void)state;
    uarc_allowlist *al = uarc_allowlist_new();
    char reason[256];
    uarc_allowlist_add(al, "urn:a", NULL);
    assert_int_equal(check(al, "urn:a", "http://h", reason), UARC_BadTcpEndpointUrlInvalid);
    assert_non_null(strstr(reason, "opc.tcp"));
    assert_int_equal(check(al, "urn:a", NULL, reason), UARC_BadTcpEndpointUrlInvalid);
    assert_string_equal(reason, "EndpointUrl is empty");
    uarc_allowlist_delete(al);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/uarc-allow-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# plant servers\n\n  urn:a  \nurn:b opc.tcp://b:4840\n\turn:c\n", f);
    fclose(f);
    uarc_allowlist *al = uarc_allowlist_new();
    char detail[256] = "";
    assert_int_equal(uarc_allowlist_load_file(al, path, detail, sizeof detail), UARC_Good);
    assert_int_equal(uarc_allowlist_count(al), 3);
    assert_int_equal(check(al, "urn:a", "opc.tcp://x", NULL), UARC_Good);
    assert_int_equal(check(al, "urn:c", "opc.tcp://x", NULL), UARC_Good);
    assert_int_equal(check(al, "urn:b", "opc.tcp://x", NULL), UARC_BadTcpEndpointUrlInvalid);
    assert_int_equal(check(al, "urn:b", "opc.tcp://b:4840", NULL), UARC_Good);

    f = fopen(path, "w");
    fputs("urn:ok\nurn:d http://nope\n", f);
    fclose(f);
    assert_int_equal(uarc_allowlist_load_file(al, path, detail, sizeof detail),
                     UARC_BadInvalidArgument);
    assert_non_null(strstr(detail, ":2:"));
    f = fopen(path, "w");
    fputs("urn:e opc.tcp://e opc.tcp://f\n", f);
    fclose(f);
    assert_int_equal(uarc_allowlist_load_file(al, path, detail, sizeof detail),
                     UARC_BadInvalidArgument);
    assert_non_null(strstr(detail, ":1:"));
    unlink(path);
    assert_int_equal(uarc_allowlist_load_file(al, path, detail, sizeof detail), UARC_BadNotFound);
    assert_non_null(strstr(detail, "No such file"));
    uarc_allowlist_delete(al);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_match_only),
        cmocka_unit_test(test_compared_by_length_not_as_c_string),
        cmocka_unit_test(test_empty_allowlist_rejects_everything),
        cmocka_unit_test(test_missing_server_uri),
        cmocka_unit_test(test_pinned_endpoint_url),
        cmocka_unit_test(test_many_entries_found),
        cmocka_unit_test(test_add_validates),
        cmocka_unit_test(test_endpoint_url_rules),
        cmocka_unit_test(test_check_applies_url_rules_first),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
