/*
 * The client library against a real node-opcua server (tests/peer/server.mjs, started by
 * client_peer.h), through the public API: writes read back equal, an array of every built-in
 * type, empty and null arrays, a matrix, a structure, a DataValue and a DiagnosticInfo, and the
 * writes a variable refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "uarc/uarc.h"
#include "uarc/client.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#include "peer_process.h"
#include "client_peer.h"

/* ---- writing values of every type ---- */

/* A string value of a literal (the literal is not copied; uarc_variant_set_* copies it). */
#define STR(text)    ((uarc_string){sizeof(text) - 1, (uint8_t *)(text)})
#define COUNT(array) (sizeof(array) / sizeof *(array))

/* A failure naming what was written and what came back, both in JSON. */
static void fail_unequal(const char *what, const uarc_variant *wrote, const uarc_variant *got)
{
    char *w = uarc_variant_to_json(wrote, NULL);
    char *g = uarc_variant_to_json(got, NULL);
    print_error("%s: wrote %s %s%s, read back %s %s%s\n", what, wrote->type->name,
                wrote->is_array ? "[] " : "", w ? w : "?", got->type ? got->type->name : "(empty)",
                got->is_array ? "[] " : "", g ? g : "?");
    uarc_free(w);
    uarc_free(g);
    fail();
}

/* Writes `value` to the Value of `node_text` (Good) and reads the Value back into *back (Good).
 */
static void write_and_read(uarc_client *c, const char *node_text, const uarc_variant *value,
                           uarc_data_value *back)
{
    uarc_nodeid id = node(node_text);
    uarc_status s = uarc_client_write_value(c, &id, value);
    if (s != UARC_Good)
        fail_msg("write %s: %s (%s)", node_text, uarc_status_name(s), uarc_client_error(c));
    s = uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, back);
    if (s != UARC_Good)
        fail_msg("read %s: %s (%s)", node_text, uarc_status_name(s), uarc_client_error(c));
    if (back->has_status && back->status != UARC_Good)
        fail_msg("read %s: value status %s", node_text, uarc_status_name(back->status));
    assert_true(back->has_value);
    uarc_clear(&id, UARC_T(NodeId));
}

/* Writes `value` and checks that the same value, bit for bit, is read back. */
static void write_read_equal(uarc_client *c, const char *node_text, const uarc_variant *value)
{
    uarc_data_value back;
    write_and_read(c, node_text, value, &back);
    if (!uarc_equal(value, &back.value, UARC_T(Variant)))
        fail_unequal(node_text, value, &back.value);
    uarc_clear(&back, UARC_T(DataValue));
}

/* A DateTime from its text, at the millisecond precision node-opcua keeps (a JavaScript Date). */
static uarc_datetime datetime(const char *text)
{
    uarc_datetime t;
    assert_true(uarc_datetime_parse(text, strlen(text), &t));
    return t;
}

/*
 * A one-dimensional array of every built-in type, written to ns=1;s=Array.<Type> and read back
 * equal. Every value differs from the one server.mjs starts with, and null and empty strings,
 * every NodeId form and the optional parts of the composite types are among them.
 */
static void test_write_arrays(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);

    const bool booleans[] = {false, false, true, false};
    const int8_t sbytes[] = {127, -1, -128, 5};
    const uint8_t bytes[] = {0, 255, 128};
    const int16_t int16s[] = {32767, -32768, -1};
    const uint16_t uint16s[] = {65535, 0, 4242};
    const int32_t int32s[] = {INT32_MAX, 42, INT32_MIN, 0, -7};
    const uint32_t uint32s[] = {UINT32_MAX, 7, 0};
    const int64_t int64s[] = {INT64_MIN, -2, INT64_MAX};
    const uint64_t uint64s[] = {UINT64_MAX, 0, UINT64_C(1) << 63};
    const float floats[] = {-1.25f, 1e-30f, 3.4e38f, -0.0f};
    const double doubles[] = {-0.0, 2.5e-300, -1e308, 0.1};
    const uarc_string strings[] = {
        STR("written"), {0, UARC_EMPTY}, {0, NULL}, STR("\xc3\xa9t\xc3\xa9")};
    const uarc_datetime times[] = {datetime("2030-06-07T08:09:10.123Z"),
                                   datetime("1970-01-01T00:00:00Z"),
                                   datetime("2001-02-03T04:05:06.999Z")};
    const uarc_guid guids[] = {
        {0x01234567, 0x89ab, 0xcdef, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}},
        {0xffffffff, 0, 0xffff, {0}},
    };
    const uarc_bytestring bytestrings[] = {STR("\x00\xff\x80"), {0, NULL}, {0, UARC_EMPTY}};
    const uarc_xml_element xml[] = {STR("<x y=\"1\"/>"), STR("<z>t</z>")};
    const uarc_nodeid nodeids[] = {
        {.namespace_index = 0, .identifier_type = UARC_NODEID_NUMERIC, .identifier.numeric = 2258},
        {.namespace_index = 2, .identifier_type = UARC_NODEID_NUMERIC, .identifier.numeric = 70000},
        {.namespace_index = 1,
         .identifier_type = UARC_NODEID_STRING,
         .identifier.string = STR("Set")},
        {.namespace_index = 3,
         .identifier_type = UARC_NODEID_GUID,
         .identifier.guid =
             {0x72962b91, 0xfa75, 0x4ae6, {0x8d, 0x28, 0xb4, 0x04, 0xdc, 0x7d, 0xaf, 0x63}}},
        {.namespace_index = 4,
         .identifier_type = UARC_NODEID_BYTESTRING,
         .identifier.bytestring = STR("\x01\x02")},
    };
    const uarc_expanded_nodeid expanded[] = {
        {.node_id = nodeids[1]},
        {.node_id = nodeids[2], .namespace_uri = STR("urn:elsewhere")},
        {.node_id = nodeids[0], .server_index = 2},
    };
    const uarc_status codes[] = {UARC_UncertainInitialValue, UARC_Good, UARC_BadNodeIdUnknown,
                                 UARC_GoodClamped};
    const uarc_qualified_name names[] = {{0, STR("plain")}, {3, STR("three")}};
    const uarc_localized_text texts[] = {
        {STR("de"), STR("Hallo")}, {{0, NULL}, STR("no locale")}, {STR("fr"), {0, NULL}}};
    uarc_Range ranges[] = {{1, 2}, {-1e10, 5.5}};
    const uarc_extension_object objects[] = {
        {.encoding = UARC_EXTENSION_OBJECT_DECODED, .content.decoded = {UARC_T(Range), &ranges[0]}},
        {.encoding = UARC_EXTENSION_OBJECT_DECODED, .content.decoded = {UARC_T(Range), &ranges[1]}},
    };
    int32_t minus_five = -5;
    uarc_string dv_text = STR("dv");
    double pair[] = {1.5, -2.5};
    uarc_variant int_variant = {.type = UARC_T(Int32), .data = &minus_five};
    uarc_variant string_variant = {.type = UARC_T(String), .data = &dv_text};
    uarc_variant array_variant = {
        .type = UARC_T(Double), .data = pair, .is_array = true, .array_length = 2};
    const uarc_data_value data_values[] = {
        {.value = int_variant,
         .has_value = true,
         .status = UARC_UncertainInitialValue,
         .has_status = true},
        {.value = string_variant,
         .has_value = true,
         .source_timestamp = times[0],
         .has_source_timestamp = true},
        {.value = array_variant, .has_value = true},
    };
    bool yes = true;
    const uarc_variant variants[] = {
        int_variant, string_variant, array_variant, {.type = UARC_T(Boolean), .data = &yes}};
    uarc_diagnostic_info inner = {.has_symbolic_id = true, .symbolic_id = 9};
    const uarc_diagnostic_info diagnostics[] = {
        {.has_symbolic_id = true,
         .symbolic_id = 3,
         .has_additional_info = true,
         .additional_info = STR("first")},
        {.has_namespace_uri = true,
         .namespace_uri = 1,
         .has_localized_text = true,
         .localized_text = 2,
         .has_locale = true,
         .locale = 0,
         .has_inner_status_code = true,
         .inner_status_code = UARC_BadTimeout,
         .has_inner_diagnostic_info = true,
         .inner_diagnostic_info = &inner},
    };

    const struct {
        const uarc_type *type;
        const void *values;
        size_t count;
    } cases[] = {
        {UARC_T(Boolean), booleans, COUNT(booleans)},
        {UARC_T(SByte), sbytes, COUNT(sbytes)},
        {UARC_T(Byte), bytes, COUNT(bytes)},
        {UARC_T(Int16), int16s, COUNT(int16s)},
        {UARC_T(UInt16), uint16s, COUNT(uint16s)},
        {UARC_T(Int32), int32s, COUNT(int32s)},
        {UARC_T(UInt32), uint32s, COUNT(uint32s)},
        {UARC_T(Int64), int64s, COUNT(int64s)},
        {UARC_T(UInt64), uint64s, COUNT(uint64s)},
        {UARC_T(Float), floats, COUNT(floats)},
        {UARC_T(Double), doubles, COUNT(doubles)},
        {UARC_T(String), strings, COUNT(strings)},
        {UARC_T(DateTime), times, COUNT(times)},
        {UARC_T(Guid), guids, COUNT(guids)},
        {UARC_T(ByteString), bytestrings, COUNT(bytestrings)},
        {UARC_T(XmlElement), xml, COUNT(xml)},
        {UARC_T(NodeId), nodeids, COUNT(nodeids)},
        {UARC_T(ExpandedNodeId), expanded, COUNT(expanded)},
        {UARC_T(StatusCode), codes, COUNT(codes)},
        {UARC_T(QualifiedName), names, COUNT(names)},
        {UARC_T(LocalizedText), texts, COUNT(texts)},
        {UARC_T(ExtensionObject), objects, COUNT(objects)},
        {UARC_T(DataValue), data_values, COUNT(data_values)},
        {UARC_T(Variant), variants, COUNT(variants)},
        {UARC_T(DiagnosticInfo), diagnostics, COUNT(diagnostics)},
    };
    assert_int_equal(COUNT(cases), 25); /* every built-in type */
    for (size_t i = 0; i < COUNT(cases); i++) {
        char node_text[64];
        snprintf(node_text, sizeof node_text, "ns=1;s=Array.%s", cases[i].type->name);
        uarc_variant v;
        assert_int_equal(uarc_variant_set_array(&v, cases[i].values, cases[i].count, cases[i].type),
                         UARC_Good);
        write_read_equal(c, node_text, &v);
        uarc_clear(&v, UARC_T(Variant));
    }
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* Writes `value` to the Value of `node_text`: the write's status. */
static uarc_status write_status(uarc_client *c, const char *node_text, const uarc_variant *value)
{
    uarc_nodeid id = node(node_text);
    uarc_status s = uarc_client_write_value(c, &id, value);
    uarc_clear(&id, UARC_T(NodeId));
    return s;
}

/* Empty and null arrays are distinct on the wire (length 0 and -1): each is written over a
 * non-empty array and must come back as itself, not as the other. */
static void test_write_empty_and_null_arrays(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    const int32_t some[] = {1, 2};
    uarc_variant filled, empty, null;
    assert_int_equal(uarc_variant_set_array(&filled, some, 2, UARC_T(Int32)), UARC_Good);
    assert_int_equal(uarc_variant_set_array(&empty, UARC_EMPTY, 0, UARC_T(Int32)), UARC_Good);
    assert_int_equal(uarc_variant_set_array(&null, NULL, 0, UARC_T(Int32)), UARC_Good);
    assert_ptr_equal(empty.data, UARC_EMPTY);
    assert_null(null.data);
    write_read_equal(c, "ns=1;s=Array.Empty", &filled);
    write_read_equal(c, "ns=1;s=Array.Empty", &empty);
    write_read_equal(c, "ns=1;s=Array.Empty", &filled);
    write_read_equal(c, "ns=1;s=Array.Empty", &null);
    uarc_clear(&filled, UARC_T(Variant));
    uarc_clear(&empty, UARC_T(Variant));
    uarc_clear(&null, UARC_T(Variant));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/*
 * New values in the 3x4 matrix: the Variant read back has the same ArrayDimensions and the same
 * values in row-major order, and the node's ArrayDimensions attribute is still [3,4] (both read
 * in one uarc_client_read). node-opcua 2.186.4 takes a Double array of any shape here, even a
 * flat one, so a client that lost or swapped the dimensions would read its mistake back.
 */
static void test_write_matrix(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    double values[12];
    for (int k = 0; k < 12; k++)
        values[k] = -100.0 * (k / 4) - (k % 4) - 0.25; /* [r][c] = -(100r + c + 0.25) */
    int32_t dims[] = {3, 4};
    const uarc_variant matrix = {.type = UARC_T(Double),
                                 .data = values,
                                 .array_length = 12,
                                 .is_array = true,
                                 .array_dimensions_size = 2,
                                 .array_dimensions = dims};
    uarc_nodeid id = node("ns=1;s=Matrix.Double");
    uarc_status s = uarc_client_write_value(c, &id, &matrix);
    if (s != UARC_Good)
        fail_msg("write: %s (%s)", uarc_status_name(s), uarc_client_error(c));

    uarc_ReadValueId ids[2] = {{.nodeId = id, .attributeId = UARC_ATTRIBUTEID_Value},
                               {.nodeId = id, .attributeId = UARC_ATTRIBUTEID_ArrayDimensions}};
    uarc_data_value back[2];
    assert_int_equal(uarc_client_read(c, ids, 2, back), UARC_Good);
    assert_int_equal(back[0].status, UARC_Good);
    const uarc_variant *v = &back[0].value;
    assert_ptr_equal(v->type, UARC_T(Double));
    assert_true(v->is_array);
    assert_int_equal(v->array_dimensions_size, 2);
    assert_int_equal(v->array_dimensions[0], 3);
    assert_int_equal(v->array_dimensions[1], 4);
    assert_int_equal(v->array_length, 12);
    if (!uarc_equal(&matrix, v, UARC_T(Variant)))
        fail_unequal("ns=1;s=Matrix.Double", &matrix, v);
    assert_int_equal(back[1].status, UARC_Good);
    const uarc_variant *attr = &back[1].value;
    assert_ptr_equal(attr->type, UARC_T(UInt32));
    assert_true(attr->is_array);
    assert_int_equal(attr->array_length, 2);
    assert_int_equal(((uint32_t *)attr->data)[0], 3);
    assert_int_equal(((uint32_t *)attr->data)[1], 4);
    uarc_clear(&back[0], UARC_T(DataValue));
    uarc_clear(&back[1], UARC_T(DataValue));
    uarc_clear(&id, UARC_T(NodeId));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* Reads ns=1;s=Struct.Argument and checks it is `expected`, field by field. */
static void argument_is(uarc_client *c, const uarc_Argument *expected)
{
    uarc_nodeid id = node("ns=1;s=Struct.Argument");
    uarc_data_value back;
    assert_int_equal(uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, &back), UARC_Good);
    assert_int_equal(back.status, UARC_Good);
    assert_ptr_equal(back.value.type, UARC_T(ExtensionObject));
    assert_false(back.value.is_array);
    const uarc_extension_object *eo = back.value.data;
    assert_int_equal(eo->encoding, UARC_EXTENSION_OBJECT_DECODED); /* by its encoding id, i=298 */
    assert_ptr_equal(eo->content.decoded.type, UARC_T(Argument));
    const uarc_Argument *a = eo->content.decoded.data;
    assert_true(uarc_equal(&a->name, &expected->name, UARC_T(String)));
    assert_true(uarc_equal(&a->dataType, &expected->dataType, UARC_T(NodeId)));
    assert_int_equal(a->valueRank, expected->valueRank);
    assert_int_equal(a->arrayDimensionsSize, expected->arrayDimensionsSize);
    for (size_t i = 0; i < a->arrayDimensionsSize; i++)
        assert_int_equal(a->arrayDimensions[i], expected->arrayDimensions[i]);
    assert_true(uarc_equal(&a->description.locale, &expected->description.locale, UARC_T(String)));
    assert_true(uarc_equal(&a->description.text, &expected->description.text, UARC_T(String)));
    assert_true(uarc_equal(a, expected, UARC_T(Argument))); /* and nothing else differs */
    uarc_clear(&back, UARC_T(DataValue));
    uarc_clear(&id, UARC_T(NodeId));
}

/*
 * A structure of a standard DataType (Argument: a String, a NodeId, an Int32, a UInt32 array and
 * a LocalizedText) written as an ExtensionObject of uarc's generated type and read back. Then two
 * values the variable refuses, each a Bad result that leaves the session and the value as they
 * were: an Int32 (BadTypeMismatch) and an ExtensionObject of another structure, a Range, to which
 * node-opcua 2.186.4 answers BadInternalError.
 */
static void test_write_structure(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    uint32_t dims[] = {2, 3};
    const uarc_Argument argument = {
        .name = STR("setpoint"),
        .dataType = {.identifier_type = UARC_NODEID_NUMERIC, .identifier.numeric = 6}, /* Int32 */
        .valueRank = 2,
        .arrayDimensionsSize = 2,
        .arrayDimensions = dims,
        .description = {STR("de"), STR("Sollwert")},
    };
    uarc_extension_object eo = {.encoding = UARC_EXTENSION_OBJECT_DECODED,
                                .content.decoded = {UARC_T(Argument), (void *)&argument}};
    uarc_variant v;
    assert_int_equal(uarc_variant_set_scalar(&v, &eo, UARC_T(ExtensionObject)), UARC_Good);
    uarc_status s = write_status(c, "ns=1;s=Struct.Argument", &v);
    if (s != UARC_Good)
        fail_msg("write: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    uarc_clear(&v, UARC_T(Variant));
    argument_is(c, &argument);

    int32_t five = 5;
    const uarc_variant number = {.type = UARC_T(Int32), .data = &five};
    assert_int_equal(write_status(c, "ns=1;s=Struct.Argument", &number), UARC_BadTypeMismatch);
    uarc_Range range = {3, 4};
    eo.content.decoded.type = UARC_T(Range);
    eo.content.decoded.data = &range;
    const uarc_variant other = {.type = UARC_T(ExtensionObject), .data = &eo};
    s = write_status(c, "ns=1;s=Struct.Argument", &other);
    if (!uarc_status_is_bad(s))
        fail_msg("a Range written to an Argument variable: %s", uarc_status_name(s));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    argument_is(c, &argument);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* A BaseDataType variable (ns=1;s=Scalar.Variant) takes a value of any built-in type:
 * node-opcua 2.186.4 also stores a DataValue and a DiagnosticInfo and gives them back whole. */
static void test_write_data_value_and_diagnostic_info(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    int32_t seven = 7;
    const uarc_data_value dv = {.value = {.type = UARC_T(Int32), .data = &seven},
                                .status = UARC_UncertainInitialValue,
                                .source_timestamp = datetime("2031-01-01T00:00:00.5Z"),
                                .has_value = true,
                                .has_status = true,
                                .has_source_timestamp = true};
    uarc_variant v;
    assert_int_equal(uarc_variant_set_scalar(&v, &dv, UARC_T(DataValue)), UARC_Good);
    write_read_equal(c, "ns=1;s=Scalar.Variant", &v);
    uarc_clear(&v, UARC_T(Variant));

    uarc_diagnostic_info inner = {.has_locale = true, .locale = 4};
    const uarc_diagnostic_info di = {.has_symbolic_id = true,
                                     .has_additional_info = true,
                                     .has_inner_status_code = true,
                                     .has_inner_diagnostic_info = true,
                                     .symbolic_id = 5,
                                     .additional_info = STR("diag"),
                                     .inner_status_code = UARC_BadTimeout,
                                     .inner_diagnostic_info = &inner};
    assert_int_equal(uarc_variant_set_scalar(&v, &di, UARC_T(DiagnosticInfo)), UARC_Good);
    write_read_equal(c, "ns=1;s=Scalar.Variant", &v);
    uarc_clear(&v, UARC_T(Variant));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

int main(void)
{
    /* A hang fails the test instead of stalling ctest (the peer exits when its stdin closes). */
    alarm(150);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_arrays),
        cmocka_unit_test(test_write_empty_and_null_arrays),
        cmocka_unit_test(test_write_matrix),
        cmocka_unit_test(test_write_structure),
        cmocka_unit_test(test_write_data_value_and_diagnostic_info),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
