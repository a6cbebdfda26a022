/* Part 14 JSON messages and topics (pubsub_json.h). Strings go through uarc_json_string() and
 * values through uarc_variant_to_json(), so they read as every other JSON the tool writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub_json.h"

static void put(out_line *t, const char *s)
{
    out_append(t, s, strlen(s));
}

static void put_string(out_line *t, const char *s)
{
    out_append_json_string(t, s, strlen(s));
}

static void put_u32(out_line *t, uint32_t v)
{
    char n[16];
    out_append(t, n, (size_t)snprintf(n, sizeof n, "%u", v));
}

/* Part 6 §5.4.2.18 (non-reversible values): a Good status is left out. */
static void put_status(out_line *t, uarc_status s)
{
    char n[32];
    out_append(t, n, (size_t)snprintf(n, sizeof n, "{\"Code\":%u,\"Symbol\":", (unsigned)s));
    put_string(t, uarc_status_name(s));
    put(t, "}");
}

static void put_time(out_line *t, uarc_datetime time)
{
    char text[UARC_DATETIME_TEXT_SIZE];
    uarc_datetime_print(time, text);
    put_string(t, text);
}

static void put_json(out_line *t, char *json)
{
    if (!json) {
        t->failed = true;
        return;
    }
    put(t, json);
    uarc_free(json);
}

void pubsub_begin(pubsub_message *b, const char *publisher_id, uint32_t subscription_id,
                  uint32_t sequence_number, const char *group)
{
    memset(&b->text, 0, sizeof b->text);
    b->text.json = true;
    b->open_set = false;
    b->values = 0;
    b->sequence_number = sequence_number;
    b->group = group;
    uarc_datetime_print(uarc_datetime_now(), b->timestamp);
    /* The same NotificationMessage gets the same MessageId however often it is published. */
    char id[48];
    snprintf(id, sizeof id, ";%u;%u", subscription_id, sequence_number);
    size_t n = strlen(publisher_id), m = strlen(id);
    char *message_id = malloc(n + m + 1);
    if (!message_id) {
        b->text.failed = true;
        return;
    }
    memcpy(message_id, publisher_id, n);
    memcpy(message_id + n, id, m + 1);
    put(&b->text, "{\"MessageId\":");
    put_string(&b->text, message_id);
    free(message_id);
    put(&b->text, ",\"MessageType\":\"ua-data\",\"PublisherId\":");
    put_string(&b->text, publisher_id);
    put(&b->text, ",\"WriterGroupName\":");
    put_string(&b->text, group);
    put(&b->text, ",\"Messages\":[");
}

static void open_set(pubsub_message *b, const char *type)
{
    out_line *t = &b->text;
    if (b->open_set)
        put(t, "}},");
    b->open_set = true;
    b->event_open = false;
    b->set++;
    if (b->set == 0) { /* wrapped: no handle may look seen */
        memset(b->seen, 0, b->seen_count * sizeof *b->seen);
        b->set = 1;
    }
    put(t, "{\"DataSetWriterName\":");
    put_string(t, b->group);
    put(t, ",\"SequenceNumber\":");
    put_u32(t, b->sequence_number);
    put(t, ",\"MessageType\":\"");
    put(t, type);
    put(t, "\",\"Timestamp\":\"");
    put(t, b->timestamp);
    put(t, "\",\"Payload\":{");
}

void pubsub_add_value(pubsub_message *b, uint32_t item, const uarc_nodeid *node,
                      const uarc_data_value *value)
{
    out_line *t = &b->text;
    if (item >= b->seen_count) {
        size_t count = (size_t)item + 64;
        uint32_t *grown = realloc(b->seen, count * sizeof *grown);
        if (!grown) {
            t->failed = true;
            return;
        }
        memset(grown + b->seen_count, 0, (count - b->seen_count) * sizeof *grown);
        b->seen = grown;
        b->seen_count = count;
    }
    bool first = !b->open_set || b->event_open || b->seen[item] == b->set;
    if (first)
        open_set(b, "ua-deltaframe");
    else
        put(t, ",");
    b->seen[item] = b->set;
    char id[512];
    uarc_nodeid_print(node, id, sizeof id);
    put_string(t, id);
    put(t, ":{");
    const char *sep = "";
    if (value->has_value && value->value.type) {
        put(t, "\"Value\":");
        put_json(t, uarc_variant_to_json(&value->value, NULL));
        sep = ",";
    }
    if (value->has_status && value->status != UARC_Good) {
        put(t, sep);
        put(t, "\"Status\":");
        put_status(t, value->status);
        sep = ",";
    }
    if (value->has_source_timestamp) {
        put(t, sep);
        put(t, "\"SourceTimestamp\":");
        put_time(t, value->source_timestamp);
        sep = ",";
    }
    if (value->has_server_timestamp) {
        put(t, sep);
        put(t, "\"ServerTimestamp\":");
        put_time(t, value->server_timestamp);
    }
    put(t, "}");
    b->values++;
}

void pubsub_add_event(pubsub_message *b, const char *const *select, size_t select_count,
                      const uarc_variant *fields, size_t field_count)
{
    out_line *t = &b->text;
    open_set(b, "ua-event");
    for (size_t i = 0; i < field_count && i < select_count; i++) {
        if (i)
            put(t, ",");
        put_string(t, select[i]);
        put(t, ":");
        put_json(t, uarc_variant_to_json(&fields[i], NULL));
    }
    b->event_open = true; /* the next value starts a DataSetMessage of its own */
    b->values++;
}

char *pubsub_end(pubsub_message *b, size_t *length)
{
    out_line *t = &b->text;
    put(t, b->open_set ? "}}]}" : "]}");
    if (t->failed) {
        free(t->text);
        memset(t, 0, sizeof *t);
        return NULL;
    }
    char *text = t->text;
    *length = t->length;
    memset(t, 0, sizeof *t);
    return text;
}

void pubsub_message_clear(pubsub_message *b)
{
    free(b->text.text);
    free(b->seen);
    memset(b, 0, sizeof *b);
}

char *pubsub_status(const char *publisher_id, const char *state, uarc_status status,
                    uint32_t subscription_id, uint32_t sequence_number, const uint32_t *gap,
                    size_t *length)
{
    out_line t = {.json = true};
    char when[UARC_DATETIME_TEXT_SIZE];
    uarc_datetime_print(uarc_datetime_now(), when);
    /* Unique enough for a status: the publisher, the state and the time to 100 ns. */
    size_t n = strlen(publisher_id) + strlen(state) + sizeof when + 3;
    char *message_id = malloc(n);
    if (!message_id)
        return NULL;
    snprintf(message_id, n, "%s;%s;%s", publisher_id, state, when);
    put(&t, "{\"MessageId\":");
    put_string(&t, message_id);
    free(message_id);
    put(&t, ",\"MessageType\":\"ua-status\",\"PublisherId\":");
    put_string(&t, publisher_id);
    put(&t, ",\"Timestamp\":");
    put_string(&t, when);
    put(&t, ",\"State\":");
    put_string(&t, state);
    if (status != UARC_Good) {
        put(&t, ",\"Status\":");
        put_status(&t, status);
    }
    if (subscription_id) {
        put(&t, ",\"SubscriptionId\":");
        put_u32(&t, subscription_id);
    }
    if (sequence_number) {
        put(&t, ",\"SequenceNumber\":");
        put_u32(&t, sequence_number);
    }
    if (gap) {
        put(&t, ",\"From\":");
        put_u32(&t, gap[0]);
        put(&t, ",\"To\":");
        if (gap[1])
            put_u32(&t, gap[1]);
        else
            put(&t, "null");
    }
    put(&t, "}");
    if (t.failed) {
        free(t.text);
        return NULL;
    }
    *length = t.length;
    return t.text;
}

/* The unsigned number after `"key":` in payload[0..length), or 0 when the key is absent; -1 when
 * what follows is not a number of 1..4294967295. The keys searched for are ours: quoted with
 * the colon right after, they cannot match inside a JSON string, whose quotes are escaped. */
static int64_t status_number(const char *payload, size_t length, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i + k <= length; i++) {
        if (memcmp(payload + i, key, k) != 0)
            continue;
        int64_t v = 0;
        size_t j = i + k, digits = 0;
        while (j < length && payload[j] >= '0' && payload[j] <= '9' && digits < 11) {
            v = v * 10 + (payload[j++] - '0');
            digits++;
        }
        return digits && digits < 11 && v >= 1 && v <= UINT32_MAX ? v : -1;
    }
    return 0;
}

bool pubsub_status_parse(const char *payload, size_t length, uint32_t *subscription_id,
                         uint32_t *sequence_number)
{
    if (length > 8192)
        return false;
    int64_t id = status_number(payload, length, "\"SubscriptionId\":");
    int64_t seq = status_number(payload, length, "\"SequenceNumber\":");
    if (id <= 0 || seq < 0)
        return false;
    *subscription_id = (uint32_t)id;
    *sequence_number = (uint32_t)seq;
    return true;
}

static void put_level(out_line *t, const char *level)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)level; *p; p++) {
        if (*p == '%' || *p == '/' || *p == '+' || *p == '#' || *p < 0x21 || *p >= 0x7f) {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            out_append(t, e, 3);
        } else {
            out_append(t, (const char *)p, 1);
        }
    }
}

char *pubsub_topic(const char *prefix, const char *kind, const char *publisher, const char *group)
{
    out_line t = {.json = true};
    put(&t, prefix);
    put(&t, "/json/");
    put(&t, kind);
    put(&t, "/");
    put_level(&t, publisher);
    if (group) {
        put(&t, "/");
        put_level(&t, group);
    }
    if (t.failed) {
        free(t.text);
        return NULL;
    }
    return t.text;
}
