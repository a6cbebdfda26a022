/* The data sink of JSON Lines (or readable lines) on stdout: one `data` or `event` line per
 * change, flushed at once; the message is acknowledged at its end unless stdout failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"
#include "ops.h"
#include "sink.h"

static void add_u32(out_line *line, const char *key, uint32_t v)
{
    char text[16];
    snprintf(text, sizeof text, "%u", v);
    out_field_raw(line, key, text);
}

static void jsonl_data(data_sink *s, monitor_sink *m, const uarc_data_change *c)
{
    (void)s;
    out_line line;
    monitor_begin_line(&line, m, "data");
    ops_add_nodeid(&line, "node", c->node);
    ops_add_data_value(&line, c->value);
    if (c->value->has_status && uarc_status_is_overflow(c->value->status))
        out_field_raw(&line, "overflow", "true");
    add_u32(&line, "subscription", c->subscription_id);
    add_u32(&line, "sequence", c->sequence_number);
    out_end(&line); /* flushed: only now may the message be acknowledged */
}

static void jsonl_event(data_sink *s, monitor_sink *m, const uarc_event *e)
{
    (void)s;
    /* {"Field": value, ...}; the names were checked to need no escaping */
    size_t size = 3, used = 0;
    char **values = calloc(e->field_count ? e->field_count : 1, sizeof *values);
    if (!values)
        return;
    for (size_t i = 0; i < e->field_count && i < m->select_count; i++) {
        values[i] = uarc_variant_to_json(&e->fields[i], NULL);
        size += strlen(m->select[i]) + 4 + (values[i] ? strlen(values[i]) : 4);
    }
    char *json = malloc(size);
    if (json) {
        json[used++] = '{';
        for (size_t i = 0; i < e->field_count && i < m->select_count; i++)
            used += (size_t)snprintf(json + used, size - used, "%s\"%s\":%s", i ? "," : "",
                                     m->select[i], values[i] ? values[i] : "null");
        snprintf(json + used, size - used, "}");
        out_line line;
        monitor_begin_line(&line, m, "event");
        ops_add_nodeid(&line, "node", e->node);
        out_field_raw(&line, "fields", json);
        add_u32(&line, "subscription", e->subscription_id);
        add_u32(&line, "sequence", e->sequence_number);
        out_end(&line);
    }
    for (size_t i = 0; i < e->field_count && i < m->select_count; i++)
        uarc_free(values[i]);
    free(values);
    free(json);
}

/* A message is acknowledged only once its lines are out: a write that failed (a full disk) leaves
 * it with the server, to be fetched again. */
static void jsonl_message_end(data_sink *s, monitor_sink *m, uarc_subscription *subscription,
                              uint32_t sequence_number)
{
    (void)s, (void)m;
    if (!ferror(stdout))
        uarc_subscription_ack(subscription, sequence_number);
}

static void jsonl_close(data_sink *s, int linger_ms)
{
    (void)s, (void)linger_ms;
}

static const sink_ops jsonl_ops = {
    .data = jsonl_data,
    .event = jsonl_event,
    .message_end = jsonl_message_end,
    .close = jsonl_close,
};

data_sink *sink_jsonl(void)
{
    static data_sink the_sink = {.ops = &jsonl_ops, .deferred_ack = true};
    return &the_sink;
}
