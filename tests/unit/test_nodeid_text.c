/* Text forms: NodeId and ExpandedNodeId parse/print, Guid, DateTime, status names, JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uarc/uarc.h"

static void roundtrip_nodeid(const char *text)
{
    uarc_nodeid id;
    assert_int_equal(uarc_nodeid_parse(text, SIZE_MAX, &id), UARC_Good);
    char buf[128];
    size_t n = uarc_nodeid_print(&id, buf, sizeof buf);
    assert_int_equal(n, strlen(text));
    assert_string_equal(buf, text);
    uarc_clear(&id, UARC_T(NodeId));
}

static void test_nodeid_parse_print(void **state)
{
    (void)state;
    uarc_nodeid id;
    assert_int_equal(uarc_nodeid_parse("i=2258", SIZE_MAX, &id), UARC_Good);
    assert_int_equal(id.namespace_index, 0);
    assert_int_equal(id.identifier_type, UARC_NODEID_NUMERIC);
    assert_int_equal(id.identifier.numeric, 2258);

    assert_int_equal(uarc_nodeid_parse("ns=1;s=Temp", SIZE_MAX, &id), UARC_Good);
    assert_int_equal(id.namespace_index, 1);
    assert_int_equal(id.identifier_type, UARC_NODEID_STRING);
    assert_true(uarc_string_equal_cstr(&id.identifier.string, "Temp"));
    uarc_clear(&id, UARC_T(NodeId));

    assert_int_equal(
        uarc_nodeid_parse("ns=2;g=09087e75-8e5e-499b-954f-f2a9603db28a", SIZE_MAX, &id), UARC_Good);
    assert_int_equal(id.identifier_type, UARC_NODEID_GUID);
    assert_int_equal(id.identifier.guid.data1, 0x09087e75);
    assert_int_equal(id.identifier.guid.data2, 0x8e5e);
    assert_int_equal(id.identifier.guid.data3, 0x499b);
    assert_int_equal(id.identifier.guid.data4[0], 0x95);
    assert_int_equal(id.identifier.guid.data4[7], 0x8a);

    /* "AQID" is base64 for 01 02 03. */
    assert_int_equal(uarc_nodeid_parse("ns=3;b=AQID", SIZE_MAX, &id), UARC_Good);
    assert_int_equal(id.identifier_type, UARC_NODEID_BYTESTRING);
    assert_int_equal(id.identifier.bytestring.length, 3);
    assert_memory_equal(id.identifier.bytestring.data, "\x01\x02\x03", 3);
    uarc_clear(&id, UARC_T(NodeId));

    /* Strings may hold ';' and '='; only `length` bytes are read. */
    assert_int_equal(uarc_nodeid_parse("ns=1;s=a;b=c", SIZE_MAX, &id), UARC_Good);
    assert_true(uarc_string_equal_cstr(&id.identifier.string, "a;b=c"));
    uarc_clear(&id, UARC_T(NodeId));
    assert_int_equal(uarc_nodeid_parse("i=12345", 4, &id), UARC_Good);
    assert_int_equal(id.identifier.numeric, 12);

    roundtrip_nodeid("i=2258");
    roundtrip_nodeid("ns=1;s=Temp");
    roundtrip_nodeid("ns=2;g=09087e75-8e5e-499b-954f-f2a9603db28a");
    roundtrip_nodeid("ns=3;b=AQID");
    roundtrip_nodeid("ns=65535;i=4294967295");
    roundtrip_nodeid("s=");

    static const char *bad[] = {"",        "i=",           "i=x",       "i=4294967296", "ns=1",
                                "ns=;i=1", "ns=65536;i=1", "x=1",       "g=1234",       "b=A",
                                "i=1 ",    "ns=1;",        "ns=-1;i=1", "I=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (uarc_nodeid_parse(bad[i], SIZE_MAX, &id) != UARC_BadNodeIdInvalid)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* snprintf-like truncation. */
    uarc_nodeid s = uarc_nodeid_string(1, "LongIdentifier");
    char small[8];
    assert_int_equal(uarc_nodeid_print(&s, small, sizeof small), strlen("ns=1;s=LongIdentifier"));
    assert_string_equal(small, "ns=1;s=");
    assert_int_equal(uarc_nodeid_print(&s, NULL, 0), 21);
    uarc_clear(&s, UARC_T(NodeId));
}

static void test_expanded_nodeid_text(void **state)
{
    (void)state;
    uarc_expanded_nodeid x;
    assert_int_equal(uarc_expanded_nodeid_parse("nsu=urn:x;s=Temp", SIZE_MAX, &x), UARC_Good);
    assert_true(uarc_string_equal_cstr(&x.namespace_uri, "urn:x"));
    assert_true(uarc_string_equal_cstr(&x.node_id.identifier.string, "Temp"));
    char buf[128];
    uarc_expanded_nodeid_print(&x, buf, sizeof buf);
    assert_string_equal(buf, "nsu=urn:x;s=Temp");
    uarc_clear(&x, UARC_T(ExpandedNodeId));

    assert_int_equal(uarc_expanded_nodeid_parse("svr=2;ns=1;i=5", SIZE_MAX, &x), UARC_Good);
    assert_int_equal(x.server_index, 2);
    assert_int_equal(x.node_id.namespace_index, 1);
    assert_null(x.namespace_uri.data);
    uarc_expanded_nodeid_print(&x, buf, sizeof buf);
    assert_string_equal(buf, "svr=2;ns=1;i=5");

    /* ';' in the URI is percent-encoded. */
    assert_int_equal(uarc_expanded_nodeid_parse("nsu=a%3Bb%25;i=1", SIZE_MAX, &x), UARC_Good);
    assert_true(uarc_string_equal_cstr(&x.namespace_uri, "a;b%"));
    uarc_expanded_nodeid_print(&x, buf, sizeof buf);
    assert_string_equal(buf, "nsu=a%3Bb%25;i=1");
    uarc_clear(&x, UARC_T(ExpandedNodeId));

    assert_int_equal(uarc_expanded_nodeid_parse("nsu=urn:x", SIZE_MAX, &x), UARC_BadNodeIdInvalid);
    assert_int_equal(uarc_expanded_nodeid_parse("svr=x;i=1", SIZE_MAX, &x), UARC_BadNodeIdInvalid);
    assert_int_equal(uarc_expanded_nodeid_parse("nsu=urn:x;q=1", SIZE_MAX, &x),
                     UARC_BadNodeIdInvalid);
}

static void test_guid_text(void **state)
{
    (void)state;
    uarc_guid g;
    assert_true(uarc_guid_parse("{72962B91-FA75-4AE6-8D28-B404DC7DAF63}", SIZE_MAX, &g));
    assert_int_equal(g.data1, 0x72962B91);
    assert_int_equal(g.data2, 0xFA75);
    assert_int_equal(g.data3, 0x4AE6);
    assert_int_equal(g.data4[0], 0x8D);
    assert_int_equal(g.data4[7], 0x63);
    char buf[UARC_GUID_TEXT_SIZE];
    uarc_guid_print(&g, buf);
    assert_string_equal(buf, "72962b91-fa75-4ae6-8d28-b404dc7daf63");
    assert_false(uarc_guid_parse("72962B91-FA75-4AE6-8D28-B404DC7DAF6", SIZE_MAX, &g));
    assert_false(uarc_guid_parse("72962B91xFA75-4AE6-8D28-B404DC7DAF63", SIZE_MAX, &g));
    assert_false(uarc_guid_parse("7296zB91-FA75-4AE6-8D28-B404DC7DAF63", SIZE_MAX, &g));
}

static void test_datetime_text(void **state)
{
    (void)state;
    char buf[UARC_DATETIME_TEXT_SIZE];
    uarc_datetime_print(0, buf);
    assert_string_equal(buf, "1601-01-01T00:00:00Z");
    uarc_datetime_print(UARC_DATETIME_UNIX_EPOCH, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    /* 2000-02-29T12:34:56.789Z: Unix 951827696.789 s. */
    uarc_datetime t = UARC_DATETIME_UNIX_EPOCH + INT64_C(951827696789) * 10000;
    uarc_datetime_print(t, buf);
    assert_string_equal(buf, "2000-02-29T12:34:56.789Z");
    uarc_datetime_print(t + 1, buf);
    assert_string_equal(buf, "2000-02-29T12:34:56.7890001Z");
    uarc_datetime back;
    assert_true(uarc_datetime_parse("2000-02-29T12:34:56.789Z", SIZE_MAX, &back));
    assert_true(back == t);
    assert_true(uarc_datetime_parse("2000-02-29T13:34:56.789+01:00", SIZE_MAX, &back));
    assert_true(back == t);
    assert_true(uarc_datetime_parse("1601-01-01T00:00:00Z", SIZE_MAX, &back));
    assert_true(back == 0);
    /* Clamped outside 0001..9999. */
    uarc_datetime_print(INT64_MAX, buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.9999999Z");
    uarc_datetime_print(INT64_MIN, buf);
    assert_string_equal(buf, "0001-01-01T00:00:00Z");
    static const char *bad[] = {"2001-02-29T00:00:00Z", "2000-13-01T00:00:00Z",
                                "2000-01-01 00:00:00Z", "2000-01-01T00:00:00",
                                "2000-01-01T24:00:00Z", "2000-01-01T00:00:00.Z",
                                "2000-01-01T00:00:00Zx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(uarc_datetime_parse(bad[i], SIZE_MAX, &back));
    uarc_datetime now = uarc_datetime_now();
    assert_true(now > UARC_DATETIME_UNIX_EPOCH + INT64_C(1700000000) * 10000000);
}

static void check_json(const void *value, const uarc_type *type, const char *expected)
{
    size_t n;
    char *s = uarc_json_encode(value, type, &n);
    assert_non_null(s);
    assert_string_equal(s, expected);
    assert_int_equal(n, strlen(expected));
    uarc_free(s);
}

static void test_json(void **state)
{
    (void)state;
    double d = 1.5;
    uarc_variant v = {.type = UARC_T(Double), .data = &d};
    char *s = uarc_variant_to_json(&v, NULL);
    assert_string_equal(s, "1.5");
    uarc_free(s);
    d = 0.1;
    check_json(&v, UARC_T(Variant), "0.1");
    d = 1.0 / 0.0;
    check_json(&v, UARC_T(Variant), "\"Infinity\"");
    int64_t big = INT64_MIN;
    v = (uarc_variant){.type = UARC_T(Int64), .data = &big};
    check_json(&v, UARC_T(Variant), "\"-9223372036854775808\"");
    uarc_string str = {7, (uint8_t *)"a\"b\\\n\x01\xff"};
    check_json(&str, UARC_T(String), "\"a\\\"b\\\\\\n\\u0001\\ufffd\"");
    uarc_string utf8 = {3, (uint8_t *)"\xE6\xB0\xB4"};
    check_json(&utf8, UARC_T(String), "\"\xE6\xB0\xB4\"");
    uarc_bytestring bs = {4, (uint8_t *)"\x01\x02\x03\x04"};
    check_json(&bs, UARC_T(ByteString), "\"AQIDBA==\"");
    uarc_datetime t = UARC_DATETIME_UNIX_EPOCH;
    check_json(&t, UARC_T(DateTime), "\"1970-01-01T00:00:00Z\"");
    uarc_nodeid id = uarc_nodeid_numeric(1, 42);
    check_json(&id, UARC_T(NodeId), "\"ns=1;i=42\"");
    uarc_status sc = UARC_BadTimeout;
    check_json(&sc, UARC_T(StatusCode), "{\"Code\":2148139008,\"Symbol\":\"BadTimeout\"}");
    uarc_qualified_name q = {2, {4, (uint8_t *)"Temp"}};
    check_json(&q, UARC_T(QualifiedName), "\"2:Temp\"");
    uarc_localized_text lt = {{2, (uint8_t *)"en"}, {2, (uint8_t *)"Hi"}};
    check_json(&lt, UARC_T(LocalizedText), "{\"Locale\":\"en\",\"Text\":\"Hi\"}");
    bool b = true;
    check_json(&b, UARC_T(Boolean), "true");
    uint64_t u = UINT64_MAX;
    check_json(&u, UARC_T(UInt64), "\"18446744073709551615\"");
    int32_t arr[] = {1, 2, 3, 4, 5, 6};
    int32_t dims[] = {2, 3};
    v = (uarc_variant){.type = UARC_T(Int32), .data = arr, .array_length = 6, .is_array = true};
    check_json(&v, UARC_T(Variant), "[1,2,3,4,5,6]");
    v.array_dimensions = dims;
    v.array_dimensions_size = 2;
    check_json(&v, UARC_T(Variant), "[[1,2,3],[4,5,6]]");
    uarc_variant empty = {0};
    check_json(&empty, UARC_T(Variant), "null");
    d = 2.0;
    uarc_data_value dv = {.has_value = true,
                          .value = {.type = UARC_T(Double), .data = &d},
                          .has_source_timestamp = true,
                          .source_timestamp = UARC_DATETIME_UNIX_EPOCH};
    check_json(&dv, UARC_T(DataValue),
               "{\"Value\":2,\"SourceTimestamp\":\"1970-01-01T00:00:00Z\"}");
    /* Part 6 §5.4.2.18 names the field Status, not StatusCode. */
    dv.has_status = true;
    dv.status = UARC_BadNodeIdUnknown;
    check_json(&dv, UARC_T(DataValue),
               "{\"Value\":2,\"Status\":{\"Code\":2150891520,\"Symbol\":\"BadNodeIdUnknown\"},"
               "\"SourceTimestamp\":\"1970-01-01T00:00:00Z\"}");
    /* A structure: schema field names, null strings left out. */
    uarc_ReadValueId r = {0};
    r.nodeId = uarc_nodeid_numeric(0, 2258);
    r.attributeId = 13;
    check_json(&r, UARC_T(ReadValueId),
               "{\"NodeId\":\"i=2258\",\"AttributeId\":13,\"DataEncoding\":\"\"}");
    uarc_extension_object eo = {.encoding = UARC_EXTENSION_OBJECT_DECODED};
    eo.content.decoded.type = UARC_T(ReadValueId);
    eo.content.decoded.data = &r;
    v = (uarc_variant){.type = UARC_T(ExtensionObject), .data = &eo};
    check_json(&v, UARC_T(Variant),
               "{\"NodeId\":\"i=2258\",\"AttributeId\":13,\"DataEncoding\":\"\"}");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(uarc_status_name(UARC_BadDecodingError), "BadDecodingError");
    assert_string_equal(uarc_status_name(UARC_BadEncodingLimitsExceeded),
                        "BadEncodingLimitsExceeded");
    uarc_status s;
    assert_true(uarc_status_from_name("BadNodeIdInvalid", &s));
    assert_int_equal(s, 0x80330000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodeid_parse_print),
        cmocka_unit_test(test_expanded_nodeid_text),
        cmocka_unit_test(test_guid_text),
        cmocka_unit_test(test_datetime_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
