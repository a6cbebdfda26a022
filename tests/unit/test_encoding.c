/*
 * Binary encoding of the built-in types: byte-exact vectors written by hand from the rules of
 * OPC UA Part 6 §5.2 (little-endian integers, Int32-length strings with -1 for null, the NodeId
 * forms, the mask bytes of LocalizedText/DataValue/Variant/DiagnosticInfo/ExtensionObject), then
 * decoding of those bytes, then malformed input and the decoding limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uarc/uarc.h"
#include "encoding/decode_charged.h"

/* Encodes `value` and compares with `expected`; then decodes `expected` and compares values. */
static void check_vector(const void *value, const uarc_type *type, const uint8_t *expected,
                         size_t n)
{
    uint8_t buf[512];
    size_t off = 0;
    assert_int_equal(uarc_encode(value, type, buf, sizeof buf, &off), UARC_Good);
    if (off != n || memcmp(buf, expected, n) != 0) {
        fprintf(stderr, "%s: encoded %zu bytes:", type->name, off);
        for (size_t i = 0; i < off; i++)
            fprintf(stderr, " %02X", buf[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(off, n);
    assert_memory_equal(buf, expected, n);

    void *back = malloc(type->size);
    size_t pos = 0;
    assert_int_equal(uarc_decode(expected, n, &pos, back, type, NULL), UARC_Good);
    assert_int_equal(pos, n);
    assert_true(uarc_equal(value, back, type));
    uarc_clear(back, type);
    free(back);

    /* Every shorter input is truncated and must fail cleanly. */
    for (size_t k = 0; k < n; k++) {
        uint8_t tmp[sizeof(uarc_variant) + sizeof(uarc_data_value) + 64];
        assert_true(type->size <= sizeof tmp);
        pos = 0;
        assert_int_equal(uarc_decode(expected, k, &pos, tmp, type, NULL), UARC_BadDecodingError);
        assert_int_equal(pos, 0);
    }
}

#define VEC(value, type, ...)                                                                      \
    do {                                                                                           \
        static const uint8_t exp_[] = {__VA_ARGS__};                                               \
        check_vector((value), (type), exp_, sizeof exp_);                                          \
    } while (0)

static uarc_string str(const char *s)
{
    return (uarc_string){strlen(s), (uint8_t *)s};
}

static void test_integers(void **state)
{
    (void)state;
    bool t = true, f = false;
    VEC(&t, UARC_T(Boolean), 0x01);
    VEC(&f, UARC_T(Boolean), 0x00);
    int8_t sb = -2;
    VEC(&sb, UARC_T(SByte), 0xFE);
    uint8_t b = 0xAB;
    VEC(&b, UARC_T(Byte), 0xAB);
    int16_t i16 = -2;
    VEC(&i16, UARC_T(Int16), 0xFE, 0xFF);
    uint16_t u16 = 0x1234;
    VEC(&u16, UARC_T(UInt16), 0x34, 0x12);
    int32_t i32 = -1000000;
    VEC(&i32, UARC_T(Int32), 0xC0, 0xBD, 0xF0, 0xFF);
    uint32_t u32 = 0x12345678;
    VEC(&u32, UARC_T(UInt32), 0x78, 0x56, 0x34, 0x12);
    int64_t i64 = -2;
    VEC(&i64, UARC_T(Int64), 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    uint64_t u64 = 0x0102030405060708u;
    VEC(&u64, UARC_T(UInt64), 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01);
    uarc_status sc = UARC_BadTimeout;
    VEC(&sc, UARC_T(StatusCode), 0x00, 0x00, 0x0A, 0x80);
    uarc_datetime dt = 0x01D2C3B4A5968778;
    VEC(&dt, UARC_T(DateTime), 0x78, 0x87, 0x96, 0xA5, 0xB4, 0xC3, 0xD2, 0x01);
    /* A decoded Boolean byte other than 0 is true. */
    uint8_t two = 2;
    bool out = false;
    size_t pos = 0;
    assert_int_equal(uarc_decode(&two, 1, &pos, &out, UARC_T(Boolean), NULL), UARC_Good);
    assert_true(out);
}

static void test_floats(void **state)
{
    (void)state;
    float fl = 1.0f;
    VEC(&fl, UARC_T(Float), 0x00, 0x00, 0x80, 0x3F);
    float fneg = -2.0f;
    VEC(&fneg, UARC_T(Float), 0x00, 0x00, 0x00, 0xC0);
    double d = 1.0;
    VEC(&d, UARC_T(Double), 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F);
    double dn = -2.5;
    VEC(&dn, UARC_T(Double), 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xC0);
}

static void test_strings(void **state)
{
    (void)state;
    uarc_string s = str("abc");
    VEC(&s, UARC_T(String), 0x03, 0x00, 0x00, 0x00, 'a', 'b', 'c');
    uarc_string null = {0, NULL};
    VEC(&null, UARC_T(String), 0xFF, 0xFF, 0xFF, 0xFF);
    uarc_string empty = {0, UARC_EMPTY};
    VEC(&empty, UARC_T(String), 0x00, 0x00, 0x00, 0x00);
    assert_false(uarc_equal(&null, &empty, UARC_T(String)));
    /* UTF-8 "水" is three bytes; the length counts bytes. */
    uarc_string water = str("\xE6\xB0\xB4");
    VEC(&water, UARC_T(String), 0x03, 0x00, 0x00, 0x00, 0xE6, 0xB0, 0xB4);
    uarc_bytestring bs = {2, (uint8_t *)"\x00\xFF"};
    VEC(&bs, UARC_T(ByteString), 0x02, 0x00, 0x00, 0x00, 0x00, 0xFF);
    uarc_xml_element xml = str("<a/>");
    VEC(&xml, UARC_T(XmlElement), 0x04, 0x00, 0x00, 0x00, '<', 'a', '/', '>');
}

static void test_guid(void **state)
{
    (void)state;
    /* Part 6 §5.2.2.7: Data1-3 little-endian, Data4 as bytes in order. */
    uarc_guid g = {0x72962B91, 0xFA75, 0x4AE6, {0x8D, 0x28, 0xB4, 0x04, 0xDC, 0x7D, 0xAF, 0x63}};
    VEC(&g, UARC_T(Guid), 0x91, 0x2B, 0x96, 0x72, 0x75, 0xFA, 0xE6, 0x4A, 0x8D, 0x28, 0xB4, 0x04,
        0xDC, 0x7D, 0xAF, 0x63);
}

static void test_nodeid_forms(void **state)
{
    (void)state;
    uarc_nodeid two = uarc_nodeid_numeric(0, 72);
    VEC(&two, UARC_T(NodeId), 0x00, 0x48);
    uarc_nodeid four = uarc_nodeid_numeric(5, 1025);
    VEC(&four, UARC_T(NodeId), 0x01, 0x05, 0x01, 0x04);
    /* i > 255 in ns 0 needs the four-byte form; ns > 255 or i > 65535 the numeric form. */
    uarc_nodeid four0 = uarc_nodeid_numeric(0, 2258);
    VEC(&four0, UARC_T(NodeId), 0x01, 0x00, 0xD2, 0x08);
    uarc_nodeid num = uarc_nodeid_numeric(300, 70000);
    VEC(&num, UARC_T(NodeId), 0x02, 0x2C, 0x01, 0x70, 0x11, 0x01, 0x00);
    uarc_nodeid num2 = uarc_nodeid_numeric(1, 65536);
    VEC(&num2, UARC_T(NodeId), 0x02, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00);
    uarc_nodeid s = {.namespace_index = 1, .identifier_type = UARC_NODEID_STRING};
    s.identifier.string = str("Hot\xE6\xB0\xB4");
    VEC(&s, UARC_T(NodeId), 0x03, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 'H', 'o', 't', 0xE6, 0xB0,
        0xB4);
    uarc_nodeid g = {.namespace_index = 2, .identifier_type = UARC_NODEID_GUID};
    g.identifier.guid =
        (uarc_guid){0x72962B91, 0xFA75, 0x4AE6, {0x8D, 0x28, 0xB4, 0x04, 0xDC, 0x7D, 0xAF, 0x63}};
    VEC(&g, UARC_T(NodeId), 0x04, 0x02, 0x00, 0x91, 0x2B, 0x96, 0x72, 0x75, 0xFA, 0xE6, 0x4A, 0x8D,
        0x28, 0xB4, 0x04, 0xDC, 0x7D, 0xAF, 0x63);
    uarc_nodeid b = {.namespace_index = 3, .identifier_type = UARC_NODEID_BYTESTRING};
    b.identifier.bytestring = (uarc_bytestring){3, (uint8_t *)"\x01\x02\x03"};
    VEC(&b, UARC_T(NodeId), 0x05, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03);

    /* Any form decodes to the same value: a numeric-form encoding of ns=0;i=72. */
    static const uint8_t wide[] = {0x02, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00};
    uarc_nodeid out;
    size_t pos = 0;
    assert_int_equal(uarc_decode(wide, sizeof wide, &pos, &out, UARC_T(NodeId), NULL), UARC_Good);
    assert_true(uarc_equal(&out, &two, UARC_T(NodeId)));
    /* Form 6 does not exist; a plain NodeId carries no ExpandedNodeId flags. */
    static const uint8_t bad[] = {0x06, 0x00};
    pos = 0;
    assert_int_equal(uarc_decode(bad, sizeof bad, &pos, &out, UARC_T(NodeId), NULL),
                     UARC_BadDecodingError);
    static const uint8_t flagged[] = {0x80, 0x01};
    pos = 0;
    assert_int_equal(uarc_decode(flagged, sizeof flagged, &pos, &out, UARC_T(NodeId), NULL),
                     UARC_BadDecodingError);
}

static void test_expanded_nodeid(void **state)
{
    (void)state;
    uarc_expanded_nodeid x = {0};
    x.node_id = uarc_nodeid_numeric(0, 72);
    VEC(&x, UARC_T(ExpandedNodeId), 0x00, 0x48);
    x.namespace_uri = str("urn:x");
    VEC(&x, UARC_T(ExpandedNodeId), 0x80, 0x48, 0x05, 0x00, 0x00, 0x00, 'u', 'r', 'n', ':', 'x');
    x.server_index = 2;
    VEC(&x, UARC_T(ExpandedNodeId), 0xC0, 0x48, 0x05, 0x00, 0x00, 0x00, 'u', 'r', 'n', ':', 'x',
        0x02, 0x00, 0x00, 0x00);
    x.namespace_uri = (uarc_string){0, NULL};
    x.node_id = uarc_nodeid_numeric(1, 1000);
    VEC(&x, UARC_T(ExpandedNodeId), 0x41, 0x01, 0xE8, 0x03, 0x02, 0x00, 0x00, 0x00);
}

static void test_qualified_name_localized_text(void **state)
{
    (void)state;
    uarc_qualified_name q = {2, str("Temp")};
    VEC(&q, UARC_T(QualifiedName), 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 'T', 'e', 'm', 'p');
    uarc_localized_text lt = {str("en"), str("Hi")};
    VEC(&lt, UARC_T(LocalizedText), 0x03, 0x02, 0x00, 0x00, 0x00, 'e', 'n', 0x02, 0x00, 0x00, 0x00,
        'H', 'i');
    uarc_localized_text only_text = {{0, NULL}, str("Hi")};
    VEC(&only_text, UARC_T(LocalizedText), 0x02, 0x02, 0x00, 0x00, 0x00, 'H', 'i');
    uarc_localized_text only_locale = {str("de"), {0, NULL}};
    VEC(&only_locale, UARC_T(LocalizedText), 0x01, 0x02, 0x00, 0x00, 0x00, 'd', 'e');
    uarc_localized_text none = {{0, NULL}, {0, NULL}};
    VEC(&none, UARC_T(LocalizedText), 0x00);
}

static void test_extension_object(void **state)
{
    (void)state;
    /* Empty: type id then encoding byte 0. */
    uarc_extension_object eo = {0};
    eo.content.encoded.type_id = uarc_nodeid_numeric(0, 0);
    VEC(&eo, UARC_T(ExtensionObject), 0x00, 0x00, 0x00);
    /* Unknown type (ns=2;i=5): the body stays bytes. */
    eo.encoding = UARC_EXTENSION_OBJECT_BINARY;
    eo.content.encoded.type_id = uarc_nodeid_numeric(2, 5);
    eo.content.encoded.body = (uarc_bytestring){2, (uint8_t *)"\xAA\xBB"};
    VEC(&eo, UARC_T(ExtensionObject), 0x01, 0x02, 0x05, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0xAA,
        0xBB);
    /* XML body. */
    eo.encoding = UARC_EXTENSION_OBJECT_XML;
    eo.content.encoded.body = str("<x/>");
    VEC(&eo, UARC_T(ExtensionObject), 0x01, 0x02, 0x05, 0x00, 0x02, 0x04, 0x00, 0x00, 0x00, '<',
        'x', '/', '>');
    /* A known type: Range (Low, High: Double) has DefaultBinary id 886 (0x376). */
    uarc_Range range = {1.0, -2.5};
    uarc_extension_object known = {.encoding = UARC_EXTENSION_OBJECT_DECODED};
    known.content.decoded.type = UARC_T(Range);
    known.content.decoded.data = &range;
    assert_int_equal(UARC_T(Range)->binary_encoding_id, 886);
    VEC(&known, UARC_T(ExtensionObject), 0x01, 0x00, 0x76, 0x03, 0x01, 0x10, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xC0);
    /* Encoding byte 3 is invalid. */
    static const uint8_t bad[] = {0x00, 0x00, 0x03};
    uarc_extension_object out;
    size_t pos = 0;
    assert_int_equal(uarc_decode(bad, sizeof bad, &pos, &out, UARC_T(ExtensionObject), NULL),
                     UARC_BadDecodingError);
}

static void test_data_value(void **state)
{
    (void)state;
    double v = 1.0;
    uarc_data_value dv = {0};
    VEC(&dv, UARC_T(DataValue), 0x00);
    dv.has_value = true;
    dv.value.type = UARC_T(Double);
    dv.value.data = &v;
    dv.has_source_timestamp = true;
    dv.source_timestamp = 0x0102030405060708;
    dv.has_server_timestamp = true;
    dv.server_timestamp = 0x1112131415161718;
    VEC(&dv, UARC_T(DataValue), 0x0D, 0x0B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x08,
        0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11);
    /* Every field: value, status, source time, source ps, server time, server ps in that order. */
    dv.has_status = true;
    dv.status = UARC_BadTimeout;
    dv.has_source_picoseconds = true;
    dv.source_picoseconds = 0x0102;
    dv.has_server_picoseconds = true;
    dv.server_picoseconds = 0x0304;
    VEC(&dv, UARC_T(DataValue), 0x3F, 0x0B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x00,
        0x00, 0x0A, 0x80, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x02, 0x01, 0x18, 0x17,
        0x16, 0x15, 0x14, 0x13, 0x12, 0x11, 0x04, 0x03);
    uarc_data_value st = {.has_status = true, .status = UARC_BadNodeIdUnknown};
    VEC(&st, UARC_T(DataValue), 0x02, 0x00, 0x00, 0x34, 0x80);
}

static void test_variant(void **state)
{
    (void)state;
    uarc_variant empty = {0};
    VEC(&empty, UARC_T(Variant), 0x00);
    int32_t five = 5;
    uarc_variant scalar = {.type = UARC_T(Int32), .data = &five};
    VEC(&scalar, UARC_T(Variant), 0x06, 0x05, 0x00, 0x00, 0x00);
    uarc_string s = str("ab");
    uarc_variant sv = {.type = UARC_T(String), .data = &s};
    VEC(&sv, UARC_T(Variant), 0x0C, 0x02, 0x00, 0x00, 0x00, 'a', 'b');
    int32_t arr[] = {1, 2};
    uarc_variant av = {.type = UARC_T(Int32), .data = arr, .array_length = 2, .is_array = true};
    VEC(&av, UARC_T(Variant), 0x86, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0x00);
    uarc_variant nullarr = {.type = UARC_T(Int32), .is_array = true};
    VEC(&nullarr, UARC_T(Variant), 0x86, 0xFF, 0xFF, 0xFF, 0xFF);
    uarc_variant emptyarr = {.type = UARC_T(Int32), .is_array = true, .data = UARC_EMPTY};
    VEC(&emptyarr, UARC_T(Variant), 0x86, 0x00, 0x00, 0x00, 0x00);
    /* A 2x3 matrix of Byte: array bit, dimensions bit, 6 elements, then Int32 array {2, 3}. */
    uint8_t m[] = {1, 2, 3, 4, 5, 6};
    int32_t dims[] = {2, 3};
    uarc_variant mv = {.type = UARC_T(Byte),
                       .data = m,
                       .array_length = 6,
                       .is_array = true,
                       .array_dimensions_size = 2,
                       .array_dimensions = dims};
    VEC(&mv, UARC_T(Variant), 0xC3, 0x06, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 0x02, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00);
    /* Booleans in an array are one byte each. */
    bool bools[] = {true, false, true};
    uarc_variant bv = {.type = UARC_T(Boolean), .data = bools, .array_length = 3, .is_array = true};
    VEC(&bv, UARC_T(Variant), 0x81, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01);
    /* A Variant holding an array of Variants. */
    uarc_variant inner[2] = {scalar, empty};
    uarc_variant vv = {.type = UARC_T(Variant), .data = inner, .array_length = 2, .is_array = true};
    VEC(&vv, UARC_T(Variant), 0x98, 0x02, 0x00, 0x00, 0x00, 0x06, 0x05, 0x00, 0x00, 0x00, 0x00);
    /* A structure travels as an ExtensionObject (id 22). */
    uarc_Range range = {1.0, -2.5};
    uarc_variant rv = {.type = UARC_T(Range), .data = &range};
    uint8_t buf[64];
    size_t off = 0;
    assert_int_equal(uarc_encode(&rv, UARC_T(Variant), buf, sizeof buf, &off), UARC_Good);
    assert_int_equal(off, 26);
    assert_int_equal(buf[0], 0x16);
    assert_int_equal(buf[1], 0x01);
    assert_int_equal(buf[2], 0x00);
    assert_int_equal(buf[3], 0x76);

    /* Malformed: type 26, dimensions that do not multiply to the length, dims on a scalar. */
    uarc_variant out;
    size_t pos = 0;
    static const uint8_t bad_type[] = {0x1A};
    assert_int_equal(uarc_decode(bad_type, 1, &pos, &out, UARC_T(Variant), NULL),
                     UARC_BadDecodingError);
    static const uint8_t bad_dims[] = {0xC3, 0x02, 0x00, 0x00, 0x00, 1,    2,   0x01,
                                       0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00};
    pos = 0;
    assert_int_equal(uarc_decode(bad_dims, sizeof bad_dims, &pos, &out, UARC_T(Variant), NULL),
                     UARC_BadDecodingError);
    static const uint8_t scalar_dims[] = {0x43, 0x01};
    pos = 0;
    assert_int_equal(
        uarc_decode(scalar_dims, sizeof scalar_dims, &pos, &out, UARC_T(Variant), NULL),
        UARC_BadDecodingError);
    /* Encoding refuses dimensions that do not match. */
    int32_t wrong[] = {4, 2};
    mv.array_dimensions = wrong;
    off = 0;
    assert_int_equal(uarc_encode(&mv, UARC_T(Variant), buf, sizeof buf, &off),
                     UARC_BadEncodingError);
}

static void test_diagnostic_info(void **state)
{
    (void)state;
    uarc_diagnostic_info inner = {.has_symbolic_id = true, .symbolic_id = 7};
    uarc_diagnostic_info di = {.has_symbolic_id = true,
                               .symbolic_id = 1,
                               .has_namespace_uri = true,
                               .namespace_uri = 2,
                               .has_localized_text = true,
                               .localized_text = 3,
                               .has_locale = true,
                               .locale = 4,
                               .has_additional_info = true,
                               .additional_info = str("x"),
                               .has_inner_status_code = true,
                               .inner_status_code = UARC_BadTimeout,
                               .has_inner_diagnostic_info = true,
                               .inner_diagnostic_info = &inner};
    /* Field order: SymbolicId, NamespaceUri, Locale, LocalizedText, AdditionalInfo, ... */
    VEC(&di, UARC_T(DiagnosticInfo), 0x7F, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04,
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 'x', 0x00, 0x00, 0x0A,
        0x80, 0x01, 0x07, 0x00, 0x00, 0x00);
    uarc_diagnostic_info none = {0};
    VEC(&none, UARC_T(DiagnosticInfo), 0x00);
}

static void test_structure(void **state)
{
    (void)state;
    /* ReadValueId: NodeId, AttributeId (UInt32), IndexRange (String), DataEncoding (QName). */
    uarc_ReadValueId r = {0};
    r.nodeId = uarc_nodeid_numeric(0, 2258);
    r.attributeId = UARC_ATTRIBUTEID_Value;
    r.dataEncoding.name = (uarc_string){0, NULL};
    VEC(&r, UARC_T(ReadValueId), 0x01, 0x00, 0xD2, 0x08, 0x0D, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
        0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF);
    /* An enumeration is an Int32; arrays are Int32 count then elements (-1: null). */
    uarc_ReadRequest req = {0};
    req.maxAge = 0.0;
    req.timestampsToReturn = UARC_TimestampsToReturn_Both;
    req.nodesToRead = &r;
    req.nodesToReadSize = 1;
    uint8_t buf[256];
    size_t off = 0;
    assert_int_equal(uarc_encode(&req, UARC_T(ReadRequest), buf, sizeof buf, &off), UARC_Good);
    /* RequestHeader: NodeId(2) DateTime(8) UInt32(4) UInt32(4) String(4) UInt32(4)
     * ExtensionObject(3) = 29 bytes; then MaxAge 8, TimestampsToReturn 4, count 4, element 18. */
    assert_int_equal(off, 29 + 8 + 4 + 4 + 18);
    static const uint8_t tail[] = {0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    assert_memory_equal(buf + 29 + 8, tail, sizeof tail);
    assert_int_equal(UARC_T(ReadRequest)->binary_encoding_id, 631);
    assert_int_equal(UARC_T(ServiceFault)->binary_encoding_id, 397);
    assert_int_equal(UARC_T(OpenSecureChannelRequest)->binary_encoding_id, 446);
    assert_ptr_equal(uarc_type_by_encoding_id(631), UARC_T(ReadRequest));
    assert_null(uarc_type_by_encoding_id(1));
    assert_ptr_equal(uarc_type_by_name("BrowseResponse"), UARC_T(BrowseResponse));
    assert_ptr_equal(uarc_type_by_type_id(11), UARC_T(Double));
    assert_string_equal(uarc_attribute_name(13), "Value");
    assert_null(uarc_attribute_name(0));
    assert_null(uarc_attribute_name(1000));
}

/* Enumeration value names come from the schema, for every enumeration and nothing else. */
static void test_enum_names(void **state)
{
    (void)state;
    assert_string_equal(uarc_enum_name(UARC_T(MessageSecurityMode), 3), "SignAndEncrypt");
    assert_string_equal(uarc_enum_name(UARC_T(MessageSecurityMode), 0), "Invalid");
    assert_null(uarc_enum_name(UARC_T(MessageSecurityMode), 4));
    assert_string_equal(uarc_enum_name(UARC_T(NodeClass), UARC_NodeClass_VariableType),
                        "VariableType");
    assert_string_equal(uarc_enum_name(UARC_T(NodeClass), 128), "View");
    assert_null(uarc_enum_name(UARC_T(NodeClass), 3));
    assert_string_equal(uarc_enum_name(UARC_T(BrowseDirection), UARC_BrowseDirection_Inverse),
                        "Inverse");
    assert_string_equal(uarc_enum_name(UARC_T(UserTokenType), 3), "IssuedToken");
    assert_string_equal(uarc_enum_name(UARC_T(TimestampsToReturn), 2), "Both");
    assert_null(uarc_enum_name(UARC_T(NodeClass), -1));
    /* option sets, built-ins and structures have no value names */
    assert_null(uarc_enum_name(UARC_T(AttributeWriteMask), 1));
    assert_null(uarc_enum_name(UARC_T(Int32), 0));
    assert_null(uarc_enum_name(UARC_T(ReadRequest), 0));
    assert_null(uarc_enum_name(NULL, 0));
    /* every enumeration has a table whose names are all set */
    size_t enums = 0;
    for (size_t i = 0; i < UARC_TYPE_COUNT; i++) {
        if (uarc_types[i].kind != UARC_KIND_ENUM || strcmp(uarc_types[i].name, "Enumeration") == 0)
            continue; /* the abstract built-in has no values */
        enums++;
        bool named = false;
        for (int32_t v = 0; v < 256 && !named; v++)
            named = uarc_enum_name(&uarc_types[i], v) != NULL;
        if (!named)
            fail_msg("%s: no value 0-255 has a name", uarc_types[i].name);
    }
    assert_true(enums > 20);
}

/* ---- Limits and malformed input ---------------------------------------------------------- */

static void test_limit_detail_names_field(void **state)
{
    (void)state;
    /* ReadResponse: header, 4 results where the 4th holds a String of length INT32_MAX. */
    uint8_t buf[512];
    size_t off = 0;
    uarc_ResponseHeader h = {0};
    assert_int_equal(uarc_encode(&h, UARC_T(ResponseHeader), buf, sizeof buf, &off), UARC_Good);
    static const uint8_t rest[] = {0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0x01, 0x0C, 0xFF, 0xFF, 0xFF, 0x7F, 'x'};
    memcpy(buf + off, rest, sizeof rest);
    off += sizeof rest;
    char detail[256];
    uarc_decode_config o = {.detail = detail, .detail_size = sizeof detail};
    uarc_ReadResponse rr;
    size_t pos = 0;
    assert_int_equal(uarc_decode(buf, off, &pos, &rr, UARC_T(ReadResponse), &o),
                     UARC_BadEncodingLimitsExceeded);
    assert_string_equal(detail,
                        "ReadResponse.results[3].value: string length 2147483647 exceeds limit "
                        "16777216");
    assert_int_equal(pos, 0);
    /* Under a raised limit the same string is short input: a decoding error, not a limit. */
    o.max_string_length = (size_t)INT32_MAX;
    assert_int_equal(uarc_decode(buf, off, &pos, &rr, UARC_T(ReadResponse), &o),
                     UARC_BadDecodingError);
    assert_string_equal(detail, "ReadResponse.results[3].value: needs 2147483647 bytes, 1 left");
}

static void test_limits(void **state)
{
    (void)state;
    char detail[256];
    uarc_decode_config o = {.detail = detail, .detail_size = sizeof detail};
    size_t pos = 0;
    /* String just over a small limit. */
    static const uint8_t s5[] = {0x05, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd', 'e'};
    uarc_string s;
    o.max_string_length = 4;
    assert_int_equal(uarc_decode(s5, sizeof s5, &pos, &s, UARC_T(String), &o),
                     UARC_BadEncodingLimitsExceeded);
    o.max_string_length = 5;
    assert_int_equal(uarc_decode(s5, sizeof s5, &pos, &s, UARC_T(String), &o), UARC_Good);
    uarc_clear(&s, UARC_T(String));
    /* A negative length other than -1 is malformed. */
    static const uint8_t neg[] = {0xFE, 0xFF, 0xFF, 0xFF};
    pos = 0;
    assert_int_equal(uarc_decode(neg, sizeof neg, &pos, &s, UARC_T(String), &o),
                     UARC_BadDecodingError);
    assert_string_equal(detail, "String: string length -2 is invalid");

    /* Array length over the limit, and an array longer than the bytes left. */
    static const uint8_t arr[] = {0x86, 0x03, 0x00, 0x00, 0x00, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0};
    uarc_variant v;
    o.max_array_length = 2;
    pos = 0;
    assert_int_equal(uarc_decode(arr, sizeof arr, &pos, &v, UARC_T(Variant), &o),
                     UARC_BadEncodingLimitsExceeded);
    assert_string_equal(detail, "Variant: array length 3 exceeds limit 2");
    o.max_array_length = 0;
    static const uint8_t huge[] = {0x86, 0xFF, 0xFF, 0xFF, 0x7F, 1, 0, 0, 0};
    pos = 0;
    assert_int_equal(uarc_decode(huge, sizeof huge, &pos, &v, UARC_T(Variant), &o),
                     UARC_BadEncodingLimitsExceeded);
    o.max_array_length = SIZE_MAX;
    assert_int_equal(uarc_decode(huge, sizeof huge, &pos, &v, UARC_T(Variant), &o),
                     UARC_BadDecodingError);
    o.max_array_length = 0;
    /* Total allocation per message. */
    o.max_alloc = 8;
    pos = 0;
    assert_int_equal(uarc_decode(arr, sizeof arr, &pos, &v, UARC_T(Variant), &o),
                     UARC_BadEncodingLimitsExceeded);
    o.max_alloc = 12;
    assert_int_equal(uarc_decode(arr, sizeof arr, &pos, &v, UARC_T(Variant), &o), UARC_Good);
    assert_int_equal(pos, sizeof arr);
    uarc_clear(&v, UARC_T(Variant));
    o.max_alloc = 0;

    /* Nesting: Variants inside Variant arrays, 10 deep. */
    uint8_t nest[64];
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        static const uint8_t level[] = {0x98, 0x01, 0x00, 0x00, 0x00};
        memcpy(nest + n, level, sizeof level);
        n += sizeof level;
    }
    nest[n++] = 0x00;
    o.max_depth = 9;
    pos = 0;
    assert_int_equal(uarc_decode(nest, n, &pos, &v, UARC_T(Variant), &o),
                     UARC_BadEncodingLimitsExceeded);
    assert_string_equal(detail, "Variant[0][0][0][0][0][0][0][0][0]: nesting exceeds the depth "
                                "limit");
    o.max_depth = 10;
    assert_int_equal(uarc_decode(nest, n, &pos, &v, UARC_T(Variant), &o), UARC_Good);
    uarc_clear(&v, UARC_T(Variant));

    /* DiagnosticInfo chains count as nesting too. */
    uint8_t chain[200];
    for (int i = 0; i < 199; i++)
        chain[i] = 0x40;
    chain[199] = 0x00;
    uarc_diagnostic_info di;
    o.max_depth = 0;
    pos = 0;
    assert_int_equal(uarc_decode(chain, sizeof chain, &pos, &di, UARC_T(DiagnosticInfo), &o),
                     UARC_BadEncodingLimitsExceeded);
    o.max_depth = 500;
    assert_int_equal(uarc_decode(chain, sizeof chain, &pos, &di, UARC_T(DiagnosticInfo), &o),
                     UARC_Good);
    uarc_clear(&di, UARC_T(DiagnosticInfo));
}

static void test_offsets_and_arguments(void **state)
{
    (void)state;
    /* Decoding advances the offset; two values back to back. */
    static const uint8_t two[] = {0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
    size_t pos = 0;
    uint32_t a = 0, b = 0;
    assert_int_equal(uarc_decode(two, sizeof two, &pos, &a, UARC_T(UInt32), NULL), UARC_Good);
    assert_int_equal(uarc_decode(two, sizeof two, &pos, &b, UARC_T(UInt32), NULL), UARC_Good);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    assert_int_equal(pos, 8);
    assert_int_equal(uarc_decode(two, sizeof two, &pos, &b, UARC_T(UInt32), NULL),
                     UARC_BadDecodingError);
    pos = 9;
    assert_int_equal(uarc_decode(two, sizeof two, &pos, &b, UARC_T(UInt32), NULL),
                     UARC_BadInvalidArgument);
    /* No bytes at all (NULL, 0): the end of the data, not a crash nor undefined behaviour. */
    pos = 0;
    assert_int_equal(uarc_decode(NULL, 0, &pos, &b, UARC_T(UInt32), NULL), UARC_BadDecodingError);
    assert_int_equal(uarc_decode(NULL, 1, &pos, &b, UARC_T(UInt32), NULL), UARC_BadInvalidArgument);
    /* Encoding into a buffer that is too small fails without moving the offset. */
    uint8_t small[3];
    size_t off = 0;
    assert_int_equal(uarc_encode(&a, UARC_T(UInt32), small, sizeof small, &off),
                     UARC_BadEncodingLimitsExceeded);
    assert_int_equal(off, 0);
    /* A string with data NULL but a length is not encodable. */
    uarc_string bad = {3, NULL};
    assert_int_equal(uarc_encode(&bad, UARC_T(String), small, sizeof small, &off),
                     UARC_BadEncodingError);
    /* encode_alloc grows as needed. */
    uarc_string big = {100000, malloc(100000)};
    memset(big.data, 'x', big.length);
    uint8_t *out;
    size_t len;
    assert_int_equal(uarc_encode_alloc(&big, UARC_T(String), &out, &len), UARC_Good);
    assert_int_equal(len, 100004);
    assert_int_equal(out[4], 'x');
    uarc_free(out);
    free(big.data);
}

static void test_extension_object_decoding(void **state)
{
    (void)state;
    /* A known type whose body is shorter than its fields fails with the type in the path. */
    static const uint8_t short_body[] = {0x01, 0x00, 0x76, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    char detail[200];
    uarc_decode_config o = {.detail = detail, .detail_size = sizeof detail};
    uarc_extension_object eo;
    size_t pos = 0;
    assert_int_equal(
        uarc_decode(short_body, sizeof short_body, &pos, &eo, UARC_T(ExtensionObject), &o),
        UARC_BadDecodingError);
    assert_string_equal(detail, "ExtensionObject.Range.low: needs 8 bytes, 4 left");
    /* Bytes after the known fields inside the body are skipped; the outer cursor continues. */
    static const uint8_t long_body[] = {0x01, 0x00, 0x76, 0x03, 0x01, 0x11, 0x00, 0x00, 0x00,
                                        0,    0,    0,    0,    0,    0,    0xF0, 0x3F, 0,
                                        0,    0,    0,    0,    0,    0,    0x40, 0xEE, 0x7A};
    pos = 0;
    assert_int_equal(
        uarc_decode(long_body, sizeof long_body, &pos, &eo, UARC_T(ExtensionObject), &o),
        UARC_Good);
    assert_int_equal(pos, sizeof long_body - 1);
    assert_int_equal(eo.encoding, UARC_EXTENSION_OBJECT_DECODED);
    assert_ptr_equal(eo.content.decoded.type, UARC_T(Range));
    uarc_Range *r = eo.content.decoded.data;
    assert_true(r->low == 1.0 && r->high == 2.0);
    uarc_clear(&eo, UARC_T(ExtensionObject));
}

static void test_arena(void **state)
{
    (void)state;
    uarc_arena *arena = uarc_arena_new(64);
    assert_non_null(arena);
    static const uint8_t lt[] = {0x03, 0x02, 0x00, 0x00, 0x00, 'e', 'n',
                                 0x02, 0x00, 0x00, 0x00, 'H',  'i'};
    uarc_decode_config o = {.arena = arena};
    uarc_localized_text a, b;
    size_t pos = 0;
    assert_int_equal(uarc_decode(lt, sizeof lt, &pos, &a, UARC_T(LocalizedText), &o), UARC_Good);
    /* A failing decode rolls its own allocations back but leaves earlier values intact. */
    pos = 0;
    assert_int_equal(uarc_decode(lt, sizeof lt - 1, &pos, &b, UARC_T(LocalizedText), &o),
                     UARC_BadDecodingError);
    assert_true(uarc_string_equal_cstr(&a.locale, "en"));
    assert_true(uarc_string_equal_cstr(&a.text, "Hi"));
    /* Many values: blocks grow; a copy out of the arena is heap-owned. */
    uarc_localized_text many[200];
    for (int i = 0; i < 200; i++) {
        pos = 0;
        assert_int_equal(uarc_decode(lt, sizeof lt, &pos, &many[i], UARC_T(LocalizedText), &o),
                         UARC_Good);
    }
    assert_true(uarc_equal(&many[199], &a, UARC_T(LocalizedText)));
    uarc_localized_text copy;
    assert_int_equal(uarc_copy(&many[3], &copy, UARC_T(LocalizedText)), UARC_Good);
    uarc_arena_reset(arena);
    assert_true(uarc_string_equal_cstr(&copy.text, "Hi"));
    uarc_clear(&copy, UARC_T(LocalizedText));
    pos = 0;
    assert_int_equal(uarc_decode(lt, sizeof lt, &pos, &a, UARC_T(LocalizedText), &o), UARC_Good);
    assert_true(uarc_string_equal_cstr(&a.text, "Hi"));
    uarc_arena_delete(arena);
}

/* A decode charged to a memory budget: what stays charged is exactly what the value holds,
 * however the charges are made; a budget of exactly that much suffices, one byte less fails and
 * leaves nothing charged. */
static void test_charged_decode(void **state)
{
    (void)state;
    int32_t ints[40];
    uarc_data_value values[40];
    for (int i = 0; i < 40; i++) {
        ints[i] = i;
        values[i] = (uarc_data_value){.value = {.type = UARC_T(Int32), .data = &ints[i]},
                                      .has_value = true};
    }
    uarc_ReadResponse resp;
    uarc_init(&resp, UARC_T(ReadResponse));
    resp.results = values;
    resp.resultsSize = 40;
    uint8_t buf[2048];
    size_t n = 0;
    assert_int_equal(uarc_encode(&resp, UARC_T(ReadResponse), buf, sizeof buf, &n), UARC_Good);

    uarc_memory_budget *big = uarc_memory_budget_new(1 << 20);
    uarc_ReadResponse back;
    size_t pos = 0, need = 0;
    assert_int_equal(
        uarc__decode_charged(buf, n, &pos, &back, UARC_T(ReadResponse), NULL, big, &need),
        UARC_Good);
    assert_true(need >= 40 * sizeof(uarc_data_value) && need < 4096);
    assert_int_equal(uarc_memory_budget_used(big), need);
    assert_int_equal(*(int32_t *)back.results[39].value.data, 39);
    uarc_clear(&back, UARC_T(ReadResponse));
    uarc__budget_release(big, need);
    assert_int_equal(uarc_memory_budget_used(big), 0);
    uarc_memory_budget_delete(big);

    uarc_memory_budget *exact = uarc_memory_budget_new(need);
    size_t charged = 0;
    pos = 0;
    assert_int_equal(
        uarc__decode_charged(buf, n, &pos, &back, UARC_T(ReadResponse), NULL, exact, &charged),
        UARC_Good);
    assert_int_equal(charged, need);
    assert_int_equal(uarc_memory_budget_used(exact), need);
    uarc_clear(&back, UARC_T(ReadResponse));
    uarc__budget_release(exact, charged);
    uarc_memory_budget_delete(exact);

    uarc_memory_budget *short_one = uarc_memory_budget_new(need - 1);
    pos = 0;
    assert_int_equal(
        uarc__decode_charged(buf, n, &pos, &back, UARC_T(ReadResponse), NULL, short_one, &charged),
        UARC_BadResponseTooLarge);
    assert_int_equal(charged, 0);
    assert_int_equal(uarc_memory_budget_used(short_one), 0);
    uarc_memory_budget_delete(short_one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_guid),
        cmocka_unit_test(test_nodeid_forms),
        cmocka_unit_test(test_expanded_nodeid),
        cmocka_unit_test(test_qualified_name_localized_text),
        cmocka_unit_test(test_extension_object),
        cmocka_unit_test(test_data_value),
        cmocka_unit_test(test_variant),
        cmocka_unit_test(test_diagnostic_info),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_limit_detail_names_field),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_offsets_and_arguments),
        cmocka_unit_test(test_extension_object_decoding),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_charged_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
