/*
 * Every type in uarc_types[]: filled with non-default values by walking its descriptor, then
 * encoded, decoded (heap and arena), copied and compared; every truncation of each encoding must
 * fail cleanly; decoding under an allocator that fails at each allocation in turn must return
 * BadOutOfMemory and leak nothing.
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

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void *zalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    return p;
}

static uarc_string fill_string(const char *prefix)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%s%u", prefix, (unsigned)(rnd() % 1000));
    uarc_string s = {(size_t)n, zalloc((size_t)n)};
    memcpy(s.data, tmp, (size_t)n);
    return s;
}

static void fill(void *p, const uarc_type *t, int depth);

static void fill_nodeid(uarc_nodeid *id)
{
    id->namespace_index = (uint16_t)(rnd() % 3);
    switch (rnd() % 4) {
    case 0:
        id->identifier_type = UARC_NODEID_NUMERIC;
        id->identifier.numeric = rnd();
        break;
    case 1:
        id->identifier_type = UARC_NODEID_STRING;
        id->identifier.string = fill_string("node");
        break;
    case 2:
        id->identifier_type = UARC_NODEID_GUID;
        id->identifier.guid.data1 = rnd();
        id->identifier.guid.data4[7] = 9;
        break;
    default:
        id->identifier_type = UARC_NODEID_BYTESTRING;
        id->identifier.bytestring = fill_string("b");
    }
}

static void *fill_array(const uarc_type *t, size_t n, int depth)
{
    uint8_t *a = zalloc(n * t->size);
    for (size_t i = 0; i < n; i++)
        fill(a + i * t->size, t, depth);
    return a;
}

static void fill_variant(uarc_variant *v, int depth)
{
    static const uint8_t kinds[] = {
        UARC_TYPE_Double,        UARC_TYPE_String,          UARC_TYPE_Boolean, UARC_TYPE_NodeId,
        UARC_TYPE_LocalizedText, UARC_TYPE_ExtensionObject, UARC_TYPE_Variant, UARC_TYPE_DataValue,
        UARC_TYPE_Guid,          UARC_TYPE_DiagnosticInfo};
    const uarc_type *t = &uarc_types[kinds[rnd() % (depth > 2 ? 5 : sizeof kinds)]];
    v->type = t;
    switch (rnd() % 3) {
    case 0:
        v->data = zalloc(t->size);
        fill(v->data, t, depth + 1);
        break;
    case 1:
        v->is_array = true;
        v->array_length = 3;
        v->data = fill_array(t, 3, depth + 1);
        break;
    default:
        v->is_array = true;
        v->array_length = 6;
        v->data = fill_array(t, 6, depth + 1);
        v->array_dimensions_size = 2;
        v->array_dimensions = zalloc(2 * sizeof(int32_t));
        v->array_dimensions[0] = 2;
        v->array_dimensions[1] = 3;
    }
}

static void fill(void *p, const uarc_type *t, int depth)
{
    switch (t->kind) {
    case UARC_KIND_BOOLEAN:
        *(bool *)p = true;
        break;
    case UARC_KIND_STRING:
    case UARC_KIND_BYTESTRING:
    case UARC_KIND_XMLELEMENT:
        *(uarc_string *)p = fill_string(t->name);
        break;
    case UARC_KIND_NODEID:
        fill_nodeid(p);
        break;
    case UARC_KIND_EXPANDEDNODEID: {
        uarc_expanded_nodeid *x = p;
        fill_nodeid(&x->node_id);
        if (rnd() % 2)
            x->namespace_uri = fill_string("urn:");
        x->server_index = rnd() % 3;
        break;
    }
    case UARC_KIND_QUALIFIEDNAME:
        ((uarc_qualified_name *)p)->namespace_index = 1;
        ((uarc_qualified_name *)p)->name = fill_string("q");
        break;
    case UARC_KIND_LOCALIZEDTEXT:
        if (rnd() % 2)
            ((uarc_localized_text *)p)->locale = fill_string("en");
        ((uarc_localized_text *)p)->text = fill_string("text");
        break;
    case UARC_KIND_EXTENSIONOBJECT: {
        uarc_extension_object *eo = p;
        if (depth > 2 || rnd() % 2) {
            eo->encoding = UARC_EXTENSION_OBJECT_BINARY;
            eo->content.encoded.type_id = uarc_nodeid_numeric(2, 77);
            eo->content.encoded.body = fill_string("body");
        } else {
            eo->encoding = UARC_EXTENSION_OBJECT_DECODED;
            eo->content.decoded.type = UARC_T(ReadValueId);
            eo->content.decoded.data = zalloc(sizeof(uarc_ReadValueId));
            fill(eo->content.decoded.data, UARC_T(ReadValueId), depth + 1);
        }
        break;
    }
    case UARC_KIND_DATAVALUE: {
        uarc_data_value *dv = p;
        dv->has_value = true;
        if (depth < 4)
            fill_variant(&dv->value, depth + 1);
        dv->has_status = rnd() % 2;
        dv->status = UARC_BadTimeout;
        dv->has_source_timestamp = true;
        dv->source_timestamp = (int64_t)rnd() << 20;
        dv->has_server_picoseconds = true;
        dv->server_picoseconds = 7;
        break;
    }
    case UARC_KIND_VARIANT:
        if (depth < 4)
            fill_variant(p, depth + 1);
        break;
    case UARC_KIND_DIAGNOSTICINFO: {
        uarc_diagnostic_info *di = p;
        di->has_symbolic_id = true;
        di->symbolic_id = 3;
        di->has_additional_info = true;
        di->additional_info = fill_string("info");
        di->has_inner_status_code = true;
        di->inner_status_code = UARC_BadInternalError;
        if (depth < 3) {
            di->has_inner_diagnostic_info = true;
            di->inner_diagnostic_info = zalloc(sizeof *di);
            fill(di->inner_diagnostic_info, t, depth + 1);
        }
        break;
    }
    case UARC_KIND_STRUCT:
        for (uint16_t i = 0; i < t->member_count; i++) {
            const uarc_member *m = &t->members[i];
            uint8_t *f = (uint8_t *)p + m->offset;
            if (m->is_array) {
                size_t n = depth > 3 ? 0 : 1 + rnd() % 2;
                *(void **)f = n ? fill_array(m->type, n, depth + 1) : UARC_EMPTY;
                *(size_t *)((uint8_t *)p + m->size_offset) = n;
            } else {
                fill(f, m->type, depth + 1);
            }
        }
        break;
    case UARC_KIND_ENUM: {
        int32_t v = 1;
        memcpy(p, &v, 4);
        break;
    }
    default: {
        /* Fixed-size numbers: a non-zero pattern. */
        uint8_t *b = p;
        for (size_t i = 0; i < t->size; i++)
            b[i] = (uint8_t)(0x11 * (i + 1));
        if (t->kind == UARC_KIND_FLOAT || t->kind == UARC_KIND_DOUBLE) {
            if (t->kind == UARC_KIND_FLOAT)
                *(float *)p = 1.5f;
            else
                *(double *)p = -1234.5;
        }
    }
    }
}

/* Counts live allocations; can fail the n-th one. */
static long live;
static long countdown = -1;

static void *t_malloc(size_t size, void *ud)
{
    (void)ud;
    if (countdown == 0)
        return NULL;
    if (countdown > 0)
        countdown--;
    void *p = malloc(size);
    if (p)
        live++;
    return p;
}

static void *t_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    if (!ptr)
        return t_malloc(size, ud);
    return realloc(ptr, size);
}

static void t_free(void *ptr, void *ud)
{
    (void)ud;
    if (ptr)
        live--;
    free(ptr);
}

static const uarc_allocator counting = {t_malloc, t_realloc, t_free, NULL};

static void roundtrip_type(const uarc_type *t, uarc_arena *arena)
{
    void *value = zalloc(t->size);
    fill(value, t, 0);
    uint8_t *bytes;
    size_t len;
    uarc_status s = uarc_encode_alloc(value, t, &bytes, &len);
    if (s)
        fail_msg("%s: encode failed 0x%08X", t->name, s);

    /* Heap decode. */
    void *back = zalloc(t->size);
    size_t pos = 0;
    char detail[256] = "";
    uarc_decode_config o = {.detail = detail, .detail_size = sizeof detail};
    s = uarc_decode(bytes, len, &pos, back, t, &o);
    if (s)
        fail_msg("%s: decode failed 0x%08X: %s", t->name, s, detail);
    assert_int_equal(pos, len);
    if (!uarc_equal(value, back, t))
        fail_msg("%s: round trip differs", t->name);

    /* Copy. */
    void *copy = zalloc(t->size);
    assert_int_equal(uarc_copy(back, copy, t), UARC_Good);
    assert_true(uarc_equal(value, copy, t));

    /* Re-encoding the decoded value gives the same bytes. */
    uint8_t *again;
    size_t len2;
    assert_int_equal(uarc_encode_alloc(back, t, &again, &len2), UARC_Good);
    assert_int_equal(len2, len);
    assert_memory_equal(again, bytes, len);
    uarc_free(again);

    /* Arena decode. */
    uarc_decode_config ao = {.arena = arena};
    void *in_arena = zalloc(t->size);
    pos = 0;
    assert_int_equal(uarc_decode(bytes, len, &pos, in_arena, t, &ao), UARC_Good);
    assert_true(uarc_equal(value, in_arena, t));
    uarc_arena_reset(arena);

    /* Truncations fail cleanly (heap). */
    uarc_clear(back, t);
    for (size_t k = 0; k < len; k++) {
        pos = 0;
        s = uarc_decode(bytes, k, &pos, back, t, NULL);
        if (s != UARC_BadDecodingError)
            fail_msg("%s: truncated to %zu of %zu bytes gave 0x%08X", t->name, k, len, s);
        assert_int_equal(pos, 0);
    }
    uarc_clear(back, t);
    uarc_clear(copy, t);
    /* The filled value was built with calloc/malloc, the default allocator: clear frees it. */
    uarc_clear(value, t);
    uarc_free(bytes);
    free(value);
    free(back);
    free(copy);
    free(in_arena);
}

static void test_every_type_round_trips(void **state)
{
    (void)state;
    uarc_arena *arena = uarc_arena_new(0);
    for (size_t i = 0; i < UARC_TYPE_COUNT; i++) {
        rng_state = (uint32_t)i * 7919u + 1;
        roundtrip_type(&uarc_types[i], arena);
    }
    uarc_arena_delete(arena);
}

static void test_decode_allocation_failures(void **state)
{
    (void)state;
    const uarc_type *types[] = {UARC_T(ReadResponse), UARC_T(BrowseResponse),
                                UARC_T(CreateSessionResponse), UARC_T(Variant),
                                UARC_T(PublishResponse)};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uarc_type *t = types[ti];
        rng_state = 99 + (uint32_t)ti;
        void *value = zalloc(t->size);
        fill(value, t, 0);
        uint8_t *bytes;
        size_t len;
        assert_int_equal(uarc_encode_alloc(value, t, &bytes, &len), UARC_Good);
        uarc_set_allocator(&counting);
        void *back = zalloc(t->size);
        int failures = 0;
        for (long n = 0;; n++) {
            live = 0;
            countdown = n;
            size_t pos = 0;
            uarc_status s = uarc_decode(bytes, len, &pos, back, t, NULL);
            countdown = -1;
            if (s == UARC_Good) {
                assert_true(uarc_equal(value, back, t));
                uarc_clear(back, t);
                assert_int_equal(live, 0);
                break;
            }
            assert_int_equal(s, UARC_BadOutOfMemory);
            assert_int_equal(live, 0);
            failures++;
            /* Copy fails the same way without leaking. */
            live = 0;
            countdown = n;
            void *c = zalloc(t->size);
            uarc_status cs = uarc_copy(value, c, t);
            countdown = -1;
            if (cs == UARC_Good)
                uarc_clear(c, t);
            assert_int_equal(live, 0);
            free(c);
        }
        assert_true(failures > 3);
        uarc_set_allocator(NULL);
        uarc_clear(value, t);
        uarc_free(bytes);
        free(value);
        free(back);
    }
}

static void test_init_clear_equal(void **state)
{
    (void)state;
    uarc_ReadRequest a, b;
    uarc_init(&a, UARC_T(ReadRequest));
    uarc_init(&b, UARC_T(ReadRequest));
    assert_true(uarc_equal(&a, &b, UARC_T(ReadRequest)));
    a.nodesToRead = UARC_EMPTY;
    assert_false(uarc_equal(&a, &b, UARC_T(ReadRequest)));
    uarc_clear(&a, UARC_T(ReadRequest));
    assert_true(uarc_equal(&a, &b, UARC_T(ReadRequest)));
    /* Variants built through the helpers own copies. */
    double d = 2.5;
    uarc_variant v;
    assert_int_equal(uarc_variant_set_scalar(&v, &d, UARC_T(Double)), UARC_Good);
    d = 0;
    assert_true(*(double *)v.data == 2.5);
    uarc_clear(&v, UARC_T(Variant));
    uarc_string arr[2] = {{1, (uint8_t *)"a"}, {0, NULL}};
    assert_int_equal(uarc_variant_set_array(&v, arr, 2, UARC_T(String)), UARC_Good);
    assert_int_equal(v.array_length, 2);
    assert_true(uarc_string_equal_cstr(&((uarc_string *)v.data)[0], "a"));
    assert_null(((uarc_string *)v.data)[1].data);
    uarc_clear(&v, UARC_T(Variant));
    uarc_nodeid id = uarc_nodeid_string(1, "Temp");
    uarc_nodeid *heap = uarc_new(UARC_T(NodeId));
    assert_int_equal(uarc_copy(&id, heap, UARC_T(NodeId)), UARC_Good);
    assert_true(uarc_equal(&id, heap, UARC_T(NodeId)));
    uarc_delete(heap, UARC_T(NodeId));
    uarc_clear(&id, UARC_T(NodeId));
    /* NaN compares equal to itself bit for bit. */
    double n1 = 0.0 / 0.0, n2 = n1;
    assert_true(uarc_equal(&n1, &n2, UARC_T(Double)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_decode_allocation_failures),
        cmocka_unit_test(test_init_clear_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
