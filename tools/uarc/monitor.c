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
    MQTT_SPECS,
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
    "  --timeout SECONDS      bound for connecting and for each request (default 10)\n" MQTT_HELP
    "  --json                 one JSON object per line on stdout\n"
    "  --verbose              log details to stderr\n"
    "\n"
    "Events: data {node, value, type, status, source_timestamp, server_timestamp,\n"
    "overflow (true when the server's queue for the item dropped values next to this one),\n"
    "subscription, sequence}; event {node, fields {FIELD: value}, subscription, sequence};\n"
    "gap {subscription, from, to (null: every number from `from` on\n"
    "of that subscription id), reason, resend (true: Server.ResendData was asked, the\n"
    "values that changed inside the gap follow)}; subscription {state: created, resumed, "
    "transferred,\n"
    "recreated, stalled or failed; subscription, status}; item {node, status};\n"
    "connection {state: connected, lost or failed; status, reason}; with --mqtt, mqtt {state:\n"
    "connected, lost, failed, paused or resumed; broker, client_id, reason} and no data or\n"
    "event lines.\n"
    "SecurityPolicy None, anonymous. Exit codes: 0 done, 1 failed, 2 usage error.\n";

typedef struct monitor_args {
    common_args common; /* --json, --verbose, --help, --timeout */
    mqtt_args mqtt;
    char **positional;
    size_t positional_count;
    unsigned long interval, queue, count;
    double sampling; /* < 0: not given */
    double duration;
    uarc_DeadbandType deadband_type;
    double deadband_value;
    monitor_events_args events;
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
        return monitor_events_arg(&a->events, "monitor", MONITOR_OPT_EVENTS, value);
    case OPT_SELECT:
        return monitor_events_arg(&a->events, "monitor", MONITOR_OPT_SELECT, value);
    case OPT_OF_TYPE:
        return monitor_events_arg(&a->events, "monitor", MONITOR_OPT_OF_TYPE, value);
    default:
        if (id >= MQTT_OPT_BASE)
            return mqtt_arg("monitor", &a->mqtt, id, value);
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

void monitor_begin_line(out_line *line, const monitor_sink *m, const char *event)
{
    out_begin(line, m->json, event);
    if (m->server_uri)
        out_field_str(line, "server_uri", m->server_uri);
}

static data_sink *out_of(const monitor_sink *m)
{
    return m->out ? m->out : sink_jsonl();
}

static void on_data(void *user_data, const uarc_data_change *c)
{
    monitor_sink *m = user_data;
    if (m->limit && m->count >= m->limit)
        return; /* past --count: the run is ending */
    data_sink *out = out_of(m);
    out->ops->data(out, m, c);
    m->count++;
}

static void on_delivered(void *user_data, uarc_subscription *s, uint32_t sequence_number)
{
    monitor_sink *m = user_data;
    data_sink *out = out_of(m);
    out->ops->message_end(out, m, s, sequence_number);
}

void monitor_report_gap(monitor_sink *m, uint32_t subscription_id, uint32_t from, uint32_t to,
                        uarc_status reason, bool resend)
{
    out_line line;
    monitor_begin_line(&line, m, "gap");
    add_u32(&line, "subscription", subscription_id);
    add_u32(&line, "from", from);
    if (to)
        add_u32(&line, "to", to);
    else
        out_field_raw(&line, "to", "null");
    out_field_str(&line, "reason", uarc_status_name(reason));
    out_field_raw(&line, "resend", resend ? "true" : "false");
    out_end(&line);
    data_sink *out = out_of(m);
    if (out->ops->gap)
        out->ops->gap(out, m, subscription_id, from, to, reason);
}

static void on_gap(void *user_data, uarc_subscription *s, uint32_t from, uint32_t to,
                   uarc_status reason)
{
    monitor_report_gap(user_data, uarc_subscription_id(s), from, to, reason,
                       uarc_subscription_resend_pending(s));
}

static void on_state(void *user_data, uarc_subscription *s, uarc_subscription_state state,
                     uarc_status status)
{
    monitor_sink *m = user_data;
    out_line line;
    monitor_begin_line(&line, m, "subscription");
    out_field_str(&line, "state", uarc_subscription_state_name(state));
    add_u32(&line, "subscription", uarc_subscription_id(s));
    out_field_str(&line, "status", uarc_status_name(status));
    out_end(&line);
    data_sink *out = out_of(m);
    if (out->ops->subscription_state)
        out->ops->subscription_state(out, m, uarc_subscription_state_name(state),
                                     uarc_subscription_id(s), status);
}

static bool select_valid(const char *field)
{
    if (!*field || strlen(field) > 512)
        return false;
    for (const char *p = field; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_.-:/", *p)))
            return false;
    return true;
}

bool monitor_events_arg(monitor_events_args *e, const char *command, monitor_events_option option,
                        const char *value)
{
    if (option == MONITOR_OPT_EVENTS) {
        e->events = value;
        return true;
    }
    if (option == MONITOR_OPT_OF_TYPE) {
        e->of_type = value;
        return true;
    }
    if (!select_valid(value)) {
        fprintf(stderr,
                "uarc %s: --select: \"%s\" is not a field path ([ns:]Name/..., of letters, "
                "digits and _ . -)\n",
                command, value);
        return false;
    }
    const char **grown = realloc(e->select, (e->select_count + 1) * sizeof *grown);
    if (!grown)
        return false;
    e->select = grown;
    e->select[e->select_count++] = value;
    return true;
}

bool monitor_events_finish(monitor_events_args *e, const char *command)
{
    static const char *const default_select[] = {"EventType", "SourceName", "Time", "Message",
                                                 "Severity"};
    e->node = e->type = uarc_nodeid_numeric(0, 0);
    if ((e->select_count || e->of_type) && !e->events) {
        fprintf(stderr, "uarc %s: --select and --of-type need --events NODEID\n", command);
        return false;
    }
    if (e->events && !e->select_count) {
        e->select_count = sizeof default_select / sizeof *default_select;
        e->select = malloc(sizeof default_select);
        if (!e->select)
            return false;
        memcpy(e->select, default_select, sizeof default_select);
    }
    if (e->select_count > 64) {
        fprintf(stderr, "uarc %s: at most 64 --select fields\n", command);
        return false;
    }
    if (e->events && uarc_nodeid_parse(e->events, SIZE_MAX, &e->node) != UARC_Good) {
        fprintf(stderr, "uarc %s: --events: not a NodeId: \"%s\"\n", command, e->events);
        return false;
    }
    if (e->of_type && uarc_nodeid_parse(e->of_type, SIZE_MAX, &e->type) != UARC_Good) {
        fprintf(stderr, "uarc %s: --of-type: not a NodeId: \"%s\"\n", command, e->of_type);
        return false;
    }
    return true;
}

void monitor_events_free(monitor_events_args *e)
{
    uarc_clear(&e->node, UARC_T(NodeId));
    uarc_clear(&e->type, UARC_T(NodeId));
    free(e->select);
    e->select = NULL;
}

static void on_event(void *user_data, const uarc_event *e)
{
    monitor_sink *m = user_data;
    if (m->limit && m->count >= m->limit)
        return;
    data_sink *out = out_of(m);
    out->ops->event(out, m, e);
    m->count++;
}

static void on_item(void *user_data, uarc_subscription *s, uint32_t item, uarc_status status)
{
    monitor_sink *m = user_data;
    (void)s;
    out_line line;
    monitor_begin_line(&line, m, "item");
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
    uarc_subscription_config cfg = {.publishing_interval_ms = p->interval_ms,
                                    .deferred_ack = out_of(sink)->deferred_ack};
    cfg.callbacks = (uarc_subscription_callbacks){.data_change = on_data,
                                                  .message_delivered = on_delivered,
                                                  .gap = on_gap,
                                                  .state_changed = on_state,
                                                  .item_created = on_item,
                                                  .event = on_event,
                                                  .user_data = sink};
    /* A subscription another collector left for this server is taken over (its numbers go on
     * from the last one the broker confirmed); else, or when the server refuses, a new one. */
    uint32_t previous = 0, last = 0;
    data_sink *out = out_of(sink);
    uarc_status status;
    if (out->ops->takeover && out->ops->takeover(out, sink->publisher_id, &previous, &last)) {
        status = uarc_subscription_adopt(client, previous, last == UINT32_MAX ? 1 : last + 1, &cfg,
                                         subscription);
        sink->confirmed_id = previous; /* what the broker has, until this collector adds to it */
        sink->confirmed_sequence = last;
    } else
        status = uarc_subscription_new(client, &cfg, subscription);
    if (status == UARC_Good)
        sink->subscription = *subscription;
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

/* Waits up to `wait` ms for the client's socket (when connected) and the sink's, then lets
 * each do its work. */
static uarc_status step(monitor *m, int64_t wait)
{
    data_sink *out = m->sink.out;
    struct pollfd fds[2];
    nfds_t n = 0;
    int fd = uarc_client_fd(m->client);
    if (fd >= 0) {
        fds[n++] = (struct pollfd){.fd = fd, .events = uarc_client_poll_events(m->client)};
        int client_wait = uarc_client_timeout_ms(m->client);
        if (client_wait >= 0 && client_wait < wait)
            wait = client_wait;
    }
    nfds_t sink_index = n;
    if (out->ops->poll_fd) {
        short events = 0;
        int sink_fd = out->ops->poll_fd(out, &events);
        if (sink_fd >= 0)
            fds[n++] = (struct pollfd){.fd = sink_fd, .events = events};
        int64_t sink_wait = out->ops->timeout_ms(out, now_ms());
        if (sink_wait >= 0 && sink_wait < wait)
            wait = sink_wait;
    }
    int ready = poll(fds, n, (int)(wait < 0 ? 0 : wait));
    if (ready < 0 && errno != EINTR)
        return UARC_BadInternalError;
    uarc_status status = UARC_Good;
    if (fd >= 0)
        status = uarc_client_process_events(m->client, ready > 0 ? fds[0].revents : 0);
    if (out->ops->process)
        out->ops->process(out, sink_index < n ? fds[sink_index].revents : 0, now_ms());
    return status;
}

/* Dials, runs and re-dials until the count, the duration or a signal ends the run. */
static int run(monitor *m, const char *url, int64_t end)
{
    int64_t backoff = FIRST_BACKOFF_MS, next_dial = 0;
    bool was_active = false;
    while (!interrupted && !(m->sink.limit && m->sink.count >= m->sink.limit)) {
        if (ferror(stdout)) {
            fprintf(stderr, "uarc monitor: writing to stdout failed: stopped, the unwritten "
                            "messages not acknowledged\n");
            return EXIT_FAILED;
        }
        int64_t now = now_ms();
        if (end >= 0 && now >= end)
            break;
        uarc_client_state state = uarc_client_state_get(m->client);
        if (state == UARC_CLIENT_DISCONNECTED) {
            if (now < next_dial) {
                int64_t wait = next_dial - now;
                if (end >= 0 && end - now < wait)
                    wait = end - now;
                step(m, wait);
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
        uarc_status status = step(m, wait);
        state = uarc_client_state_get(m->client);
        if (state == UARC_CLIENT_SESSION_ACTIVE && !was_active) {
            was_active = true;
            backoff = FIRST_BACKOFF_MS;
            connection_event(m, "connected", UARC_Good,
                             uarc_client_session_resumed(m->client) ? "session resumed"
                                                                    : "new session");
            if (m->sink.out->ops->server_state)
                m->sink.out->ops->server_state(m->sink.out, &m->sink, url, "connected", UARC_Good);
        } else if (state == UARC_CLIENT_DISCONNECTED) {
            status = status != UARC_Good ? status : UARC_BadConnectionClosed;
            connection_event(m, was_active ? "lost" : "failed", status,
                             uarc_client_error(m->client));
            if (was_active && m->sink.out->ops->server_state)
                m->sink.out->ops->server_state(m->sink.out, &m->sink, url, "lost", status);
            was_active = false;
            next_dial = now_ms() + backoff;
            backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
        }
    }
    return EXIT_OK;
}

int cmd_monitor(int argc, char **argv)
{
    monitor_args a = {
        .common = {.command = "monitor", .timeout_max = 86400}, .mqtt = {.qos = 1}, .sampling = -1};
    int rc = EXIT_USAGE;
    uarc_client *client = NULL;
    uarc_nodeid *nodes = NULL;
    size_t node_count = 0;
    if (!args_parse("monitor", monitor_specs, argc, argv, on_monitor_arg, &a))
        goto done;
    if (a.common.help) {
        fputs(monitor_help, stdout);
        rc = EXIT_OK;
        goto done;
    }
    /* Data lines are written a message at a time (the JSON Lines sink flushes at the end of each
     * message): a buffer that holds many */
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (a.positional_count < (a.events.events ? 1u : 2u)) {
        fputs(monitor_help, stderr);
        goto done;
    }
    if (!mqtt_args_check("monitor", &a.mqtt))
        goto done;
    if (!monitor_events_finish(&a.events, "monitor"))
        goto done;
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
    data_sink *out = a.mqtt.url ? sink_mqtt_new("monitor", &a.mqtt, a.common.json) : sink_jsonl();
    if (!out)
        goto done;
    monitor m = {.sink = {.out = out,
                          .publisher_id = a.positional[0],
                          .json = a.common.json,
                          .nodes = nodes,
                          .node_count = node_count,
                          .event_node = a.events.events ? &a.events.node : NULL,
                          .select = a.events.select,
                          .select_count = a.events.select_count,
                          .of_type = a.events.type,
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
        out->ops->close(out, 0);
        goto done;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int64_t end = a.duration > 0 ? now_ms() + (int64_t)(a.duration * 1000) : -1;
    rc = run(&m, a.positional[0], end);
    out->ops->close(out, 2000); /* it acknowledges through the subscription: first */
    uarc_subscription_delete(sub);
    uarc_client_disconnect(client);
done:
    uarc_client_delete(client);
    for (size_t i = 0; i < node_count; i++)
        uarc_clear(&nodes[i], UARC_T(NodeId));
    free(nodes);
    monitor_events_free(&a.events);
    free(a.positional);
    args_free_secret(a.mqtt.password);
    return rc;
}
