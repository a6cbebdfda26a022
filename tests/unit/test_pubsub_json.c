/* The tool's Part 14 JSON messages and MQTT topics (tools/uarc/pubsub_json.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pubsub_json.h"
#include "takeover.h"

/* Undoes the topic escaping: each %XX back to its byte. */
static char *unescape(const char *level)
{
    char *out = malloc(strlen(level) + 1), *o = out;
    for (const char *p = level; *p; p++) {
        if (*p == '%') {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void topic_levels_are_escaped_reversibly(void **state)
{
    (void)state;
    const char *uri = "urn:plant/line+1#a b%c\x01\xc3\xa9";
    char *topic = pubsub_topic("opcua", "data", uri, "monitor");
    assert_string_equal(topic, "opcua/json/data/urn:plant%2Fline%2B1%23a%20b%25c%01%C3%A9/monitor");
    const char *level = topic + strlen("opcua/json/data/");
    char *copy = strndup(level, (size_t)(strchr(level, '/') - level));
    char *back = unescape(copy);
    assert_string_equal(back, uri);
    assert_null(strpbrk(copy, "/+#"));
    free(back);
    free(copy);
    free(topic);
    topic = pubsub_topic("p/q", "status", "urn:x", NULL);
    assert_string_equal(topic, "p/q/json/status/urn:x");
    free(topic);
}

static uarc_data_value counter(int32_t v, bool bad)
{
    uarc_data_value dv = {.has_value = true, .has_source_timestamp = true};
    static int32_t values[8];
    static size_t next;
    int32_t *slot = &values[next++ % 8];
    *slot = v;
    dv.value.type = UARC_T(Int32);
    dv.value.data = slot;
    dv.source_timestamp = 0;
    if (bad) {
        dv.has_status = true;
        dv.status = UARC_BadNodeIdUnknown;
    }
    return dv;
}

static void a_node_twice_starts_a_second_data_set_message(void **state)
{
    (void)state;
    pubsub_message b = {0};
    uarc_nodeid a = uarc_nodeid_numeric(1, 7), c = uarc_nodeid_numeric(1, 8);
    pubsub_begin(&b, "urn:\"s\"", 42, 9, "monitor");
    uarc_data_value v1 = counter(1, false), v2 = counter(2, true), v3 = counter(3, false);
    pubsub_add_value(&b, 1, &a, &v1);
    pubsub_add_value(&b, 2, &c, &v2);
    pubsub_add_value(&b, 1, &a, &v3);
    size_t length;
    char *text = pubsub_end(&b, &length);
    assert_non_null(text);
    assert_int_equal(length, strlen(text));
    /* The id is made of the publisher, the subscription and the sequence number. */
    assert_non_null(strstr(text,
                           "{\"MessageId\":\"urn:\\\"s\\\";42;9\",\"MessageType\":\"ua-data\","
                           "\"PublisherId\":\"urn:\\\"s\\\"\",\"WriterGroupName\":\"monitor\","
                           "\"Messages\":[{\"DataSetWriterName\":\"monitor\","
                           "\"SequenceNumber\":9,\"MessageType\":\"ua-deltaframe\""));
    assert_non_null(strstr(text, "\"Payload\":{\"ns=1;i=7\":{\"Value\":1,\"SourceTimestamp\":"));
    assert_non_null(strstr(text,
                           "\"ns=1;i=8\":{\"Value\":2,\"Status\":{\"Code\":2150891520,\"Symbol\":"
                           "\"BadNodeIdUnknown\"},\"SourceTimestamp\":"));
    /* Two DataSetMessages: the second holds the node's second change. */
    char *second = strstr(text, "}},{\"DataSetWriterName\"");
    assert_non_null(second);
    assert_non_null(strstr(second, "\"ns=1;i=7\":{\"Value\":3,"));
    assert_null(strstr(second + 1, "}},{\"DataSetWriterName\""));
    assert_string_equal(text + length - 4, "}}]}");
    free(text);
    /* The next message starts afresh. */
    pubsub_begin(&b, "urn:s", 42, 10, "monitor");
    pubsub_add_value(&b, 1, &a, &v1);
    text = pubsub_end(&b, &length);
    assert_null(strstr(text, "}},{"));
    free(text);
    pubsub_message_clear(&b);
}

static void an_event_is_a_data_set_message_of_its_own(void **state)
{
    (void)state;
    pubsub_message b = {0};
    uarc_nodeid a = uarc_nodeid_numeric(1, 7);
    const char *const select[] = {"Message", "Severity"};
    uint16_t severity = 100;
    uarc_variant fields[2] = {{.type = UARC_T(String)},
                              {.type = UARC_T(UInt16), .data = &severity}};
    uarc_string text = {4, (uint8_t *)"tick"};
    fields[0].data = &text;
    uarc_data_value v = counter(5, false);
    pubsub_begin(&b, "urn:s", 1, 2, "monitor");
    pubsub_add_value(&b, 1, &a, &v);
    pubsub_add_event(&b, select, 2, fields, 2);
    pubsub_add_value(&b, 2, &a, &v);
    size_t length;
    char *json = pubsub_end(&b, &length);
    char *event = strstr(json, "\"MessageType\":\"ua-event\"");
    assert_non_null(event);
    assert_non_null(strstr(event, "\"Payload\":{\"Message\":\"tick\",\"Severity\":100}},"));
    /* The value after the event opens a third DataSetMessage. */
    assert_non_null(strstr(event, "\"MessageType\":\"ua-deltaframe\""));
    free(json);
    pubsub_message_clear(&b);
}

static void status_messages(void **state)
{
    (void)state;
    size_t length;
    uint32_t gap[2] = {5, 0};
    char *text = pubsub_status("urn:s", "gap", UARC_BadMessageNotAvailable, 7, 0, gap, &length);
    assert_non_null(strstr(text, "\"MessageType\":\"ua-status\",\"PublisherId\":\"urn:s\""));
    assert_non_null(strstr(text, "\"State\":\"gap\",\"Status\":{\"Code\":"));
    assert_non_null(strstr(text, "\"SubscriptionId\":7,\"From\":5,\"To\":null}"));
    free(text);
    text = pubsub_status("c1", "online", UARC_Good, 0, 0, NULL, &length);
    assert_null(strstr(text, "Status\""));
    assert_null(strstr(text, "SubscriptionId"));
    uint32_t id = 1, seq = 1;
    assert_false(pubsub_status_parse(text, length, &id, &seq)); /* a collector's own: no id */
    free(text);
}

/* What a collector that takes a server over reads back from the retained status. */
static void status_numbers_read_back(void **state)
{
    (void)state;
    size_t length;
    uint32_t id = 0, seq = 0;
    /* A ServerUri that spells the keys itself does not mislead the reader. */
    char *text = pubsub_status("urn:\"SubscriptionId\":9", "transferred", UARC_Good, 4294967295u,
                               77, NULL, &length);
    assert_true(pubsub_status_parse(text, length, &id, &seq));
    assert_int_equal(id, 4294967295u);
    assert_int_equal(seq, 77);
    free(text);
    text = pubsub_status("urn:s", "created", UARC_Good, 12, 0, NULL, &length);
    assert_true(pubsub_status_parse(text, length, &id, &seq));
    assert_int_equal(id, 12);
    assert_int_equal(seq, 0);
    free(text);
    static const char *const bad[] = {
        "{\"SubscriptionId\":0}",
        "{\"SubscriptionId\":4294967296}",
        "{\"SubscriptionId\":-1}",
        "{\"SubscriptionId\":\"7\"}",
        "{\"SubscriptionId\":7,\"SequenceNumber\":99999999999}",
        "{\"SubscriptionId\":7,\"SequenceNumber\":x}",
        "{\"SubscriptionId\":",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(pubsub_status_parse(bad[i], strlen(bad[i]), &id, &seq));
    char big[8200];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"SubscriptionId\":7}", 20);
    assert_false(pubsub_status_parse(big, sizeof big, &id, &seq));
    assert_true(pubsub_status_parse(big, 8192, &id, &seq));
}

/* The takeover table: the latest status per topic, forgotten when cleared, many topics. */
static void takeover_table_keeps_the_latest(void **state)
{
    (void)state;
    takeover_table *t = takeover_new();
    assert_non_null(t);
    char topic[64], payload[96];
    for (uint32_t i = 1; i <= 1000; i++) {
        snprintf(topic, sizeof topic, "opcua/json/status/urn:s%u", i);
        int n = snprintf(payload, sizeof payload, "{\"SubscriptionId\":%u,\"SequenceNumber\":%u}",
                         i, 2 * i);
        takeover_note(t, topic, payload, (size_t)n);
    }
    uint32_t id, seq;
    assert_true(takeover_find(t, "opcua/json/status/urn:s700", &id, &seq));
    assert_int_equal(id, 700);
    assert_int_equal(seq, 1400);
    /* A newer status replaces it; one without an id (or a cleared retained message) forgets. */
    const char *newer = "{\"SubscriptionId\":9}";
    takeover_note(t, "opcua/json/status/urn:s700", newer, strlen(newer));
    assert_true(takeover_find(t, "opcua/json/status/urn:s700", &id, &seq));
    assert_int_equal(id, 9);
    assert_int_equal(seq, 0);
    takeover_note(t, "opcua/json/status/urn:s700", "", 0);
    assert_false(takeover_find(t, "opcua/json/status/urn:s700", &id, &seq));
    assert_false(takeover_find(t, "opcua/json/status/urn:s1001", &id, &seq));
    /* A collector's own status (no id) is not kept. */
    const char *own = "{\"State\":\"online\"}";
    takeover_note(t, "opcua/json/status/c1", own, strlen(own));
    assert_false(takeover_find(t, "opcua/json/status/c1", &id, &seq));
    takeover_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topic_levels_are_escaped_reversibly),
        cmocka_unit_test(a_node_twice_starts_a_second_data_set_message),
        cmocka_unit_test(an_event_is_a_data_set_message_of_its_own),
        cmocka_unit_test(status_messages),
        cmocka_unit_test(status_numbers_read_back),
        cmocka_unit_test(takeover_table_keeps_the_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
