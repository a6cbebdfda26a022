/* uarc monitor: subscribe to data items of a server and print every change, across drops. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uarc/uarc.h"
#include "args.h"
#include "commands.h"
#include "ops.h"
#include "monitor.h"
#include "output.h"

#define FIRST_BACKOFF_MS 100
#define MAX_BACKOFF_MS   5000

enum {
    OPT_INTERVAL,
    OPT_SAMPLING,
    OPT_QUEUE,
    OPT_DEADBAND,
    OPT_DURATION,
    OPT_COUNT,
    OPT_EVENTS,
    OPT_SELECT,
    OPT_OF_TYPE,
};

static const arg_spec monitor_specs[] = {
    COMMON_SPECS,
    {"--interval", true, OPT_INTERVAL},
    {"--sampling", true, OPT_SAMPLING},
    {"--queue", true, OPT_QUEUE},
    {"--deadband", true, OPT_DEADBAND},
    {"--duration", true, OPT_DURATION},
    {"--count", true, OPT_COUNT},
    {"--events", true, OPT_EVENTS},
    {"--select", true, OPT_SELECT},
    {"--of-type", true, OPT_OF_TYPE},
    {NULL, false, 0},
};

static const char monitor_help[] =
    "usage: uarc monitor URL [NODEID...] [--events NODEID [--select FIELD]...] [options]\n"
    "\n"
    "Subscribes to the Value of each node and prints every change, in the server's order, once.\n"
    "When the connection drops it dials again (100 ms, doubling up to 5 s) and recovers the\n"
    "subscription: the same session re-activated and the missed messages fetched again\n"
    "(resumed), else moved to a new session (transferred), else created again (recreated).\n"
    "Whatever the server could not hand over any more is reported as a gap event, never\n"
    "skipped silently. Each line is written and flushed before its message is acknowledged.\n"
    "\n"
    "  --interval MS          publishing interval (default 500)\n"
    "  --sampling MS          sampling interval (default: the publishing interval; 0: the\n"
    "                         fastest the server offers)\n"
    "  --queue N              values queued per item between publishes (default 1; make it\n"
    "                         large enough for an outage to lose nothing)\n"
    "  --deadband abs:X|pct:X report a change only beyond an absolute or percent deadband\n"
    "  --duration SECONDS     stop after this long (default: until interrupted)\n"
    "  --count N              stop after N data and event lines\n"
    "  --events NODEID        also subscribe to the events the object reports (i=2253: the\n"
    "                         Server), each printed as the values of the --select fields\n"
    "  --select FIELD         a field of BaseEventType by browse path (Message, Severity,\n"
    "                         EnabledState/Id, 1:Custom); repeatable. Default: EventType,\n"
    "                         SourceName, Time, Message, Severity\n"
    "  --of-type NODEID       only events of this type or a subtype (an OfType where clause)\n"
    "  --timeout SECONDS      bound for connecting and for each request (default 10)\n"
    "  --json                 one JSON object per line on stdout\n"
    "  --verbose              log details to stderr\n"
    "\n"
    "Events: data {node, value, type, status, source_timestamp, server_timestamp,\n"
    "subscription, sequence}; event {node, fields {FIELD: value}, subscription, sequence};\n"
    "gap {subscription, from, to (null: every number from `from` on\n"
    "of that subscription id), reason}; subscription {state: created, resumed, transferred,\n"
    "recreated, stalled or failed; subscription, status}; item {node, status};\n"
    "connection {state: connected, lost or failed; status, reason}.\n"
    "SecurityPolicy None, anonymous. Exit codes: 0 done, 1 failed, 2 usage error.\n";

typedef struct monitor_args {
    common_args common; /* --json, --verbose, --help, --timeout */
    char **positional;
    size_t positional_count;
    unsigned long interval, queue, count;
    double sampling; /* < 0: not given */
    double duration;
    uarc_DeadbandType deadband_type;
    double deadband_value;
    const char *events;  /* --events NODEID */
    const char *of_type; /* --of-type NODEID */
    const char **select;
    size_t select_count;
} monitor_args;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static bool parse_deadband(monitor_args *a, const char *value)
{
    char *end;
    if (strncmp(value, "abs:", 4) == 0)
        a->deadband_type = UARC_DeadbandType_Absolute;
    else if (strncmp(value, "pct:", 4) == 0)
        a->deadband_type = UARC_DeadbandType_Percent;
    else {
        fprintf(stderr, "uarc monitor: --deadband: abs:X or pct:X, not \"%s\"\n", value);
        return false;
    }
    errno = 0;
    a->deadband_value = strtod(value + 4, &end);
    if (errno || end == value + 4 || *end || !(a->deadband_value >= 0) ||
        !isfinite(a->deadband_value) ||
        (a->deadband_type == UARC_DeadbandType_Percent && a->deadband_value > 100)) {
        fprintf(stderr, "uarc monitor: --deadband: \"%s\" is not a deadband\n", value);
        return false;
    }
    return true;
}

static bool on_monitor_arg(void *ctx, int id, const char *value)
{
    monitor_args *a = ctx;
    unsigned long n;
    switch (id) {
    case -1: {
        char **grown = realloc(a->positional, (a->positional_count + 1) * sizeof *grown);
        if (!grown)
            return false;
        a->positional = grown;
        a->positional[a->positional_count++] = (char *)value;
        return true;
    }
    case OPT_INTERVAL:
        return args_uint("monitor", "--interval", value, 86400000, &a->interval);
    case OPT_SAMPLING:
        if (!args_uint("monitor", "--sampling", value, 86400000, &n))
            return false;
        a->sampling = (double)n;
        return true;
    case OPT_QUEUE:
        return args_uint("monitor", "--queue", value, 1000000, &a->queue);
    case OPT_DEADBAND:
        return parse_deadband(a, value);
    case OPT_DURATION:
        return args_seconds("monitor", "--duration", value, 31536000, &a->duration);
    case OPT_COUNT:
        return args_uint("monitor", "--count", value, 0xFFFFFFFFul, &a->count);
    case OPT_EVENTS:
        a->events = value;
        return true;
    case OPT_OF_TYPE:
        a->of_type = value;
        return true;
    case OPT_SELECT: {
        if (!monitor_select_valid(value)) {
            fprintf(
                stderr,
                "uarc monitor: --select: \"%s\" is not a field path ([ns:]Name/..., of letters, "
                "digits and _ . -)\n",
                value);
            return false;
        }
        const char **grown = realloc(a->select, (a->select_count + 1) * sizeof *grown);
        if (!grown)
            return false;
        a->select = grown;
        a->select[a->select_count++] = value;
        return true;
    }
    default:
        return common_arg(&a->common, id, value);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_u32(out_line *line, const char *key, uint32_t v)
{
    char text[16], *p = text + sizeof text;
    *--p = '\0';
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    out_field_raw(line, key, p);
}

static void begin(out_line *line, const monitor_sink *m, const char *event)
{
    out_begin(line, m->json, event);
    if (m->server_uri)
        out_field_str(line, "server_uri", m->server_uri);
}

static void on_data(void *user_data, const uarc_data_change *c)
{
    monitor_sink *m = user_data;
    if (m->limit && m->count >= m->limit)
        return; /* past --count: the run is ending */
    out_line line;
    begin(&line, m, "data");
    ops_add_nodeid(&line, "node", c->node);
    ops_add_data_value(&line, c->value);
    add_u32(&line, "subscription", c->subscription_id);
    add_u32(&line, "sequence", c->sequence_number);
    out_end_buffered(&line); /* flushed with the message, before it is acknowledged */
    m->count++;
}

/* Every line of the message is out before the library acknowledges it, which it does after this
 * callback: one write per message rather than one per line. */
static void on_delivered(void *user_data, uarc_subscription *s, uint32_t sequence)
{
    (void)user_data, (void)s, (void)sequence;
    out_flush();
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    monitor_sink *m = user_data;
    out_line line;
    begin(&line, m, "gap");
    add_u32(&line, "subscription", uarc_subscription_id(s));
    add_u32(&line, "from", from);
    if (to)
        add_u32(&line, "to", to);
    else
        out_field_raw(&line, "to", "null");
    out_field_str(&line, "reason", uarc_status_name(reason));
    out_end(&line);
}

static void on_state(void *user_data, uarc_subscription *s, uarc_subscription_state state,
                     uarc_status status)
{
    monitor_sink *m = user_data;
    out_line line;
    begin(&line, m, "subscription");
    out_field_str(&line, "state", uarc_subscription_state_name(state));
    add_u32(&line, "subscription", uarc_subscription_id(s));
    out_field_str(&line, "status", uarc_status_name(status));
    out_end(&line);
}

bool monitor_select_valid(const char *field)
{
    if (!*field || strlen(field) > 512)
        return false;
    for (const char *p = field; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_.-:/", *p)))
            return false;
    return true;
}

static void on_event(void *user_data, const uarc_event *e)
{
    monitor_sink *m = user_data;
    if (m->limit && m->count >= m->limit)
        return;
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
        begin(&line, m, "event");
        ops_add_nodeid(&line, "node", e->node);
        out_field_raw(&line, "fields", json);
        add_u32(&line, "subscription", e->subscription_id);
        add_u32(&line, "sequence", e->sequence_number);
        out_end_buffered(&line); /* flushed with the message (on_delivered) */
        m->count++;
    }
    for (size_t i = 0; i < e->field_count && i < m->select_count; i++)
        uarc_free(values[i]);
    free(values);
    free(json);
}

static void on_item(void *user_data, uarc_subscription *s, uint32_t item, uarc_status status)
{
    monitor_sink *m = user_data;
    (void)s;
    out_line line;
    begin(&line, m, "item");
    if (item >= 1 && item <= m->node_count)
        ops_add_nodeid(&line, "node", &m->nodes[item - 1]);
    else if (m->event_node)
        ops_add_nodeid(&line, "node", m->event_node);
    out_field_str(&line, "status", uarc_status_name(status));
    out_end(&line);
}

uarc_status monitor_subscribe(uarc_client *client, monitor_sink *sink, const monitor_params *p,
                              uarc_subscription **subscription)
{
    uarc_subscription_config cfg = {.publishing_interval_ms = p->interval_ms};
    cfg.callbacks = (uarc_subscription_callbacks){.data_change = on_data,
                                                  .message_delivered = on_delivered,
                                                  .gap = on_gap,
                                                  .state_changed = on_state,
                                                  .item_created = on_item,
                                                  .event = on_event,
                                                  .user_data = sink};
    uarc_status status = uarc_subscription_new(client, &cfg, subscription);
    double sampling = p->sampling_ms < 0 ? 0 : p->sampling_ms == 0 ? -1 : p->sampling_ms;
    for (size_t i = 0; status == UARC_Good && i < sink->node_count; i++) {
        uarc_monitored_item_params item = {
            .node = sink->nodes[i],
            .sampling_interval_ms = sampling,
            .queue_size = p->queue_size,
            .deadband_type = p->deadband_type,
            .deadband_value = p->deadband_value,
        };
        status = uarc_subscription_add_item(*subscription, &item, NULL);
    }
    if (status == UARC_Good && sink->event_node) {
        uarc_event_item_params events = {.node = *sink->event_node,
                                         .select = sink->select,
                                         .select_count = sink->select_count,
                                         .of_type = sink->of_type,
                                         .queue_size = p->queue_size};
        status = uarc_subscription_add_event_item(*subscription, &events, NULL);
    }
    return status;
}

typedef struct monitor {
    monitor_sink sink;
    uarc_client *client;
} monitor;

static void connection_event(const monitor *m, const char *state, uarc_status status,
                             const char *reason)
{
    out_line line;
    out_begin(&line, m->sink.json, "connection");
    out_field_str(&line, "state", state);
    out_field_str(&line, "status", uarc_status_name(status));
    if (reason)
        out_field_str(&line, "reason", reason);
    out_end(&line);
}

/* Dials, runs and re-dials until the count, the duration or a signal ends the run. */
static int run(monitor *m, const char *url, int64_t end)
{
    int64_t backoff = FIRST_BACKOFF_MS, next_dial = 0;
    bool was_active = false;
    while (!interrupted && !(m->sink.limit && m->sink.count >= m->sink.limit)) {
        int64_t now = now_ms();
        if (end >= 0 && now >= end)
            break;
        uarc_client_state state = uarc_client_state_get(m->client);
        if (state == UARC_CLIENT_DISCONNECTED) {
            if (now < next_dial) {
                int64_t wait = next_dial - now;
                if (end >= 0 && end - now < wait)
                    wait = end - now;
                poll(NULL, 0, (int)wait);
                continue;
            }
            uarc_status status = uarc_client_start_connect(m->client, url);
            if (status != UARC_Good) {
                connection_event(m, "failed", status, uarc_client_error(m->client));
                next_dial = now_ms() + backoff;
                backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
            }
            continue;
        }
        int wait = 200;
        if (end >= 0 && end - now < wait)
            wait = (int)(end - now);
        uarc_status status = uarc_client_process(m->client, wait);
        state = uarc_client_state_get(m->client);
        if (state == UARC_CLIENT_SESSION_ACTIVE && !was_active) {
            was_active = true;
            backoff = FIRST_BACKOFF_MS;
            connection_event(m, "connected", UARC_Good,
                             uarc_client_session_resumed(m->client) ? "session resumed"
                                                                    : "new session");
        } else if (state == UARC_CLIENT_DISCONNECTED) {
            connection_event(m, was_active ? "lost" : "failed",
                             status != UARC_Good ? status : UARC_BadConnectionClosed,
                             uarc_client_error(m->client));
            was_active = false;
            next_dial = now_ms() + backoff;
            backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
        }
    }
    return EXIT_OK;
}

int cmd_monitor(int argc, char **argv)
{
    monitor_args a = {.common = {.command = "monitor", .timeout_max = 86400}, .sampling = -1};
    int rc = EXIT_USAGE;
    uarc_client *client = NULL;
    uarc_nodeid *nodes = NULL;
    uarc_nodeid event_node = uarc_nodeid_numeric(0, 0), of_type = uarc_nodeid_numeric(0, 0);
    size_t node_count = 0;
    if (!args_parse("monitor", monitor_specs, argc, argv, on_monitor_arg, &a))
        goto done;
    if (a.common.help) {
        fputs(monitor_help, stdout);
        rc = EXIT_OK;
        goto done;
    }
    /* Data lines are written a message at a time (on_delivered): a buffer that holds many */
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (a.positional_count < (a.events ? 1u : 2u)) {
        fputs(monitor_help, stderr);
        goto done;
    }
    if ((a.select_count || a.of_type) && !a.events) {
        fprintf(stderr, "uarc monitor: --select and --of-type need --events NODEID\n");
        goto done;
    }
    static const char *const default_select[] = {"EventType", "SourceName", "Time", "Message",
                                                 "Severity"};
    if (a.events && !a.select_count) {
        a.select_count = sizeof default_select / sizeof *default_select;
        a.select = malloc(sizeof default_select);
        if (!a.select)
            goto done;
        memcpy(a.select, default_select, sizeof default_select);
    }
    if (a.select_count > 64) {
        fprintf(stderr, "uarc monitor: at most 64 --select fields\n");
        goto done;
    }
    if (a.events && uarc_nodeid_parse(a.events, SIZE_MAX, &event_node) != UARC_Good) {
        fprintf(stderr, "uarc monitor: --events: not a NodeId: \"%s\"\n", a.events);
        goto done;
    }
    if (a.of_type && uarc_nodeid_parse(a.of_type, SIZE_MAX, &of_type) != UARC_Good) {
        fprintf(stderr, "uarc monitor: --of-type: not a NodeId: \"%s\"\n", a.of_type);
        goto done;
    }
    nodes = calloc(a.positional_count, sizeof *nodes);
    if (!nodes)
        goto done;
    for (; node_count < a.positional_count - 1; node_count++) {
        const char *text = a.positional[node_count + 1];
        if (uarc_nodeid_parse(text, SIZE_MAX, &nodes[node_count]) != UARC_Good) {
            fprintf(stderr, "uarc monitor: not a NodeId: \"%s\" (try i=2258 or ns=1;s=Name)\n",
                    text);
            goto done;
        }
    }
    uarc_client_config cfg;
    client_config_from_args(&cfg, NULL, NULL, false, a.common.timeout, a.common.verbose);
    rc = EXIT_FAILED;
    client = uarc_client_new(&cfg);
    monitor m = {.sink = {.json = a.common.json,
                          .nodes = nodes,
                          .node_count = node_count,
                          .event_node = a.events ? &event_node : NULL,
                          .select = a.select,
                          .select_count = a.select_count,
                          .of_type = of_type,
                          .limit = a.count},
                 .client = client};
    monitor_params params = {.interval_ms = (double)a.interval,
                             .sampling_ms = a.sampling,
                             .queue_size = (uint32_t)a.queue,
                             .deadband_type = a.deadband_type,
                             .deadband_value = a.deadband_value};
    uarc_subscription *sub = NULL;
    if (!client || monitor_subscribe(client, &m.sink, &params, &sub) != UARC_Good) {
        fprintf(stderr, "uarc monitor: out of memory\n");
        goto done;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int64_t end = a.duration > 0 ? now_ms() + (int64_t)(a.duration * 1000) : -1;
    rc = run(&m, a.positional[0], end);
    uarc_subscription_delete(sub);
    uarc_client_disconnect(client);
done:
    uarc_client_delete(client);
    for (size_t i = 0; i < node_count; i++)
        uarc_clear(&nodes[i], UARC_T(NodeId));
    free(nodes);
    uarc_clear(&event_node, UARC_T(NodeId));
    uarc_clear(&of_type, UARC_T(NodeId));
    free(a.select);
    free(a.positional);
    return rc;
}
