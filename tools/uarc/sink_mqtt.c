/*
 * The MQTT sink: every NotificationMessage as one Part 14 JSON message (pubsub_json.h) to a
 * broker through libmosquitto, driven from the tool's own poll loop (mosquitto_socket(),
 * mosquitto_loop_read/write/misc(), no thread of its own).
 *
 * Messages wait in one FIFO, in the order the servers delivered them. At most WINDOW of them are
 * handed to libmosquitto at once; each is acknowledged to its OPC UA server (deferred ack) when
 * libmosquitto reports it published: at QoS 1 on the broker's PUBACK, at QoS 0 once written to
 * the socket. Acknowledgements go out in FIFO order. When the connection to the broker ends, the
 * libmosquitto object is dropped with whatever it held, and every message not yet acknowledged
 * is handed again, in order, to the next connection: the broker may see a message twice (same
 * MessageId), never miss one.
 */
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "monitor.h"
#include "pubsub_json.h"
#include "sink.h"
#include "takeover.h"

#define FIRST_BACKOFF_MS  100
#define MAX_BACKOFF_MS    5000
#define WINDOW            256 /* messages handed to libmosquitto and not yet published */
#define KEEPALIVE_S       30
#define CONNECT_MS        10000 /* TCP connect and CONNACK */
#define DEFAULT_BACKLOG   ((size_t)64 << 20)
#define GROUP             "monitor" /* the tool's one subscription per server */
#define DEFAULT_STATUS_MS 1000 /* a server status with its confirmed number: at most this often */

typedef struct entry {
    struct entry *next;
    char *topic, *payload;
    size_t length;
    bool retain;
    bool handed; /* to libmosquitto on the current connection, as `mid` */
    bool done;   /* published */
    int mid;
    monitor_sink *m; /* NULL: a status message, acknowledging nothing */
    uint32_t subscription_id, sequence_number;
} entry;

typedef struct mqtt_sink {
    data_sink base;
    bool json;
    char *host;
    int port;
    const char *prefix, *user, *password, *tls_ca;
    char *client_id;
    int qos;
    int64_t status_ms;           /* --mqtt-status-ms */
    size_t backlog_max, backlog; /* bytes of the queued messages */
    struct mosquitto *mosq;
    enum { MQTT_DOWN, MQTT_CONNECTING, MQTT_UP } state;
    bool lost; /* the connection ended inside a libmosquitto call: torn down after it */
    char reason[160];
    int64_t next_attempt, backoff;
    int64_t connect_deadline;    /* while connecting */
    entry *head, *tail, *unsent; /* unsent: the first entry to hand over on this connection */
    size_t inflight;
    char *will_topic;
    pubsub_message build;
    monitor_sink *build_m; /* the subscription whose message is being built; NULL: none */
    monitor_sink **paused; /* subscriptions whose publishing the backlog switched off */
    size_t paused_count;
    monitor_sink **listed; /* subscriptions whose status carries their confirmed number */
    size_t listed_count;
    char *status_filter; /* PREFIX/json/status/#: what collectors left, for a takeover */
    takeover_table *left;
    int64_t now;        /* of the current process() */
    int64_t refresh_at; /* the earliest status_due of the listed ones; 0: none */
} mqtt_sink;

/* ---- options ---- */

bool mqtt_arg(const char *command, mqtt_args *m, int id, const char *value)
{
    switch (id) {
    case MQTT_OPT_URL:
        m->url = value;
        return true;
    case MQTT_OPT_TOPIC_PREFIX:
        if (!*value || strpbrk(value, "+#")) {
            fprintf(stderr, "uarc %s: --mqtt-topic-prefix: not empty, without + or #\n", command);
            return false;
        }
        m->topic_prefix = value;
        return true;
    case MQTT_OPT_QOS:
        return args_uint(command, "--mqtt-qos", value, 1, &m->qos);
    case MQTT_OPT_CLIENT_ID:
        m->client_id = value;
        return true;
    case MQTT_OPT_USER:
        m->user = value;
        return true;
    case MQTT_OPT_PASSWORD_FILE:
        return args_read_first_line(command, "--mqtt-password-file", value, &m->password);
    case MQTT_OPT_TLS:
        m->tls_ca = value;
        return true;
    case MQTT_OPT_STATUS_MS:
        m->status_ms_given = true;
        return args_uint(command, "--mqtt-status-ms", value, 3600000, &m->status_ms);
    case MQTT_OPT_BACKLOG:
        if (!args_uint(command, "--mqtt-backlog", value, (unsigned long)1 << 40, &m->backlog))
            return false;
        if (m->backlog < 65536) {
            fprintf(stderr, "uarc %s: --mqtt-backlog must be at least 65536\n", command);
            return false;
        }
        return true;
    default:
        return false;
    }
}

/* mqtt://HOST[:PORT], mqtts:// the same with TLS; HOST may be [IPv6]. */
static bool parse_url(const char *url, bool tls, char **host, int *port)
{
    const char *rest;
    if (strncmp(url, "mqtt://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "mqtts://", 8) == 0)
        rest = url + 8, tls = true;
    else
        return false;
    const char *end = rest + strcspn(rest, "/");
    if (*end && end[1])
        return false; /* no path */
    const char *colon = NULL, *h = rest, *h_end;
    if (*rest == '[') {
        h = rest + 1;
        h_end = memchr(h, ']', (size_t)(end - h));
        if (!h_end)
            return false;
        colon = h_end + 1 < end && h_end[1] == ':' ? h_end + 1 : NULL;
        if (!colon && h_end + 1 != end)
            return false;
    } else {
        colon = memchr(rest, ':', (size_t)(end - rest));
        h_end = colon ? colon : end;
    }
    if (h_end == h)
        return false;
    long p = tls ? 8883 : 1883;
    if (colon) {
        char *stop;
        errno = 0;
        p = strtol(colon + 1, &stop, 10);
        if (errno || stop != end || stop == colon + 1 || p < 1 || p > 65535)
            return false;
    }
    if (host && !(*host = strndup(h, (size_t)(h_end - h))))
        return false;
    if (port)
        *port = (int)p;
    return true;
}

bool mqtt_args_check(const char *command, const mqtt_args *m)
{
    if (!m->url) {
        if (m->topic_prefix || m->client_id || m->user || m->password || m->tls_ca || m->backlog ||
            m->qos != 1 || m->status_ms_given) {
            fprintf(stderr, "uarc %s: the --mqtt-* options need --mqtt URL\n", command);
            return false;
        }
        return true;
    }
    if (!parse_url(m->url, m->tls_ca != NULL, NULL, NULL)) {
        fprintf(stderr, "uarc %s: --mqtt: \"%s\" is not mqtt://HOST[:PORT]\n", command, m->url);
        return false;
    }
    if (m->password && !m->user) {
        fprintf(stderr, "uarc %s: --mqtt-password-file needs --mqtt-user\n", command);
        return false;
    }
    return true;
}

/* ---- state lines ---- */

static void report(mqtt_sink *s, const char *state, const char *reason)
{
    out_line line;
    char broker[300];
    snprintf(broker, sizeof broker, "%s:%d", s->host, s->port);
    out_begin(&line, s->json, "mqtt");
    out_field_str(&line, "state", state);
    out_field_str(&line, "broker", broker);
    out_field_str(&line, "client_id", s->client_id);
    if (reason)
        out_field_str(&line, "reason", reason);
    out_end(&line);
}

/* ---- the queue ---- */

static void entry_free(entry *e)
{
    free(e->topic);
    free(e->payload);
    free(e);
}

static void push(mqtt_sink *s, char *topic, char *payload, size_t length, bool retain,
                 monitor_sink *m, uint32_t subscription_id, uint32_t sequence_number)
{
    entry *e = calloc(1, sizeof *e);
    if (!e || !topic || !payload) {
        free(e);
        free(topic);
        free(payload);
        fprintf(stderr, "uarc: mqtt: out of memory: a message is lost\n");
        return;
    }
    *e = (entry){.topic = topic,
                 .payload = payload,
                 .length = length,
                 .retain = retain,
                 .m = m,
                 .subscription_id = subscription_id,
                 .sequence_number = sequence_number};
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    if (!s->unsent)
        s->unsent = e;
    s->backlog += length + strlen(topic);
}

static void list_for_status(mqtt_sink *s, monitor_sink *m)
{
    if (m->status_listed)
        return;
    monitor_sink **grown = realloc(s->listed, (s->listed_count + 1) * sizeof *grown);
    if (!grown)
        return;
    s->listed = grown;
    s->listed[s->listed_count++] = m;
    m->status_listed = true;
}

static void push_status(mqtt_sink *s, monitor_sink *m, const char *publisher, const char *state,
                        uarc_status status, uint32_t subscription_id, const uint32_t *gap,
                        bool acking);

/* An entry the broker has: a data message is acknowledged to its server, or with
 * --mqtt-status-ms 0 its status goes first and acknowledges it in turn (a retained entry that
 * names a message). */
static void ack(mqtt_sink *s, const entry *e)
{
    monitor_sink *m = e->m;
    /* A subscription re-created since has a new id: the old numbers are not its own. */
    if (!m || !m->subscription || uarc_subscription_id(m->subscription) != e->subscription_id)
        return;
    if (e->retain) {
        uarc_subscription_ack(m->subscription, e->sequence_number);
        return;
    }
    /* The server's status says it (within status_ms): a collector that takes the server over
     * goes on from there. */
    m->confirmed_id = e->subscription_id;
    m->confirmed_sequence = e->sequence_number;
    if (!s->status_ms) {
        push_status(s, m, m->publisher_id, m->status_state ? m->status_state : "connected",
                    UARC_Good, m->confirmed_id, NULL, true);
        return;
    }
    uarc_subscription_ack(m->subscription, e->sequence_number);
    if (!m->status_due) {
        m->status_due = s->now + s->status_ms;
        if (!s->refresh_at || m->status_due < s->refresh_at)
            s->refresh_at = m->status_due;
    }
    list_for_status(s, m);
}

static void resume_paused(mqtt_sink *s)
{
    report(s, "resumed", "backlog below a quarter");
    for (size_t i = 0; i < s->paused_count; i++) {
        s->paused[i]->paused = false;
        uarc_subscription_set_publishing(s->paused[i]->subscription, true);
    }
    s->paused_count = 0;
}

/* Acknowledges and frees the published messages at the head, in order. */
static void pop_done(mqtt_sink *s)
{
    while (s->head && s->head->done) {
        entry *e = s->head;
        s->head = e->next;
        if (!s->head)
            s->tail = NULL;
        s->backlog -= e->length + strlen(e->topic);
        ack(s, e);
        entry_free(e);
    }
    if (s->paused_count && s->backlog < s->backlog_max / 4)
        resume_paused(s);
}

static void on_publish(struct mosquitto *mosq, void *user_data, int mid)
{
    mqtt_sink *s = user_data;
    (void)mosq;
    for (entry *e = s->head; e && e != s->unsent; e = e->next)
        if (e->handed && !e->done && e->mid == mid) {
            e->done = true;
            s->inflight--;
            break;
        }
    pop_done(s);
}

/* Hands queued messages to libmosquitto while the window has room. */
static void pump(mqtt_sink *s)
{
    while (s->state == MQTT_UP && !s->lost && s->unsent && s->inflight < WINDOW) {
        entry *e = s->unsent;
        s->unsent = e->next;
        if (e->done)
            continue;
        e->handed = true;
        s->inflight++;
        /* mid is written before the packet goes out, so a QoS 0 on_publish inside the call finds
         * it. */
        int rc = mosquitto_publish(s->mosq, &e->mid, e->topic, (int)e->length, e->payload, s->qos,
                                   e->retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            e->handed = false;
            s->inflight--;
            s->unsent = e;
            s->lost = true;
            snprintf(s->reason, sizeof s->reason, "publish: %s", mosquitto_strerror(rc));
            return;
        }
    }
}

/* ---- the connection ---- */

static void on_connect(struct mosquitto *mosq, void *user_data, int rc)
{
    mqtt_sink *s = user_data;
    (void)mosq;
    if (rc != 0) {
        s->lost = true;
        snprintf(s->reason, sizeof s->reason, "CONNACK: %s", mosquitto_connack_string(rc));
        return;
    }
    s->state = MQTT_UP;
    s->backoff = FIRST_BACKOFF_MS;
    report(s, "connected", NULL);
    size_t length;
    char *online = pubsub_status(s->client_id, "online", UARC_Good, 0, 0, NULL, &length);
    if (online)
        mosquitto_publish(s->mosq, NULL, s->will_topic, (int)length, online, 1, true);
    free(online);
    /* The retained states tell which subscription each server had and how far the broker has
     * it; the live ones keep that current while other collectors work. */
    mosquitto_subscribe(s->mosq, NULL, s->status_filter, 1);
}

static void on_message(struct mosquitto *mosq, void *user_data, const struct mosquitto_message *msg)
{
    mqtt_sink *s = user_data;
    (void)mosq;
    if (msg->topic && msg->payloadlen >= 0)
        takeover_note(s->left, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

static void on_disconnect(struct mosquitto *mosq, void *user_data, int rc)
{
    mqtt_sink *s = user_data;
    (void)mosq;
    if (!s->lost)
        snprintf(s->reason, sizeof s->reason, "%s", rc ? mosquitto_strerror(rc) : "disconnected");
    s->lost = true;
}

/* Drops the connection and everything libmosquitto held; the next one hands it all again. */
static void teardown(mqtt_sink *s, int64_t now)
{
    bool was_up = s->state == MQTT_UP;
    mosquitto_destroy(s->mosq);
    s->mosq = NULL;
    s->state = MQTT_DOWN;
    s->lost = false;
    for (entry *e = s->head; e; e = e->next)
        e->handed = false;
    s->unsent = s->head;
    s->inflight = 0;
    report(s, was_up ? "lost" : "failed", s->reason);
    s->next_attempt = now + s->backoff;
    s->backoff = s->backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : s->backoff * 2;
}

static void start_connect(mqtt_sink *s, int64_t now)
{
    s->mosq = mosquitto_new(s->client_id, true, s);
    if (!s->mosq) {
        snprintf(s->reason, sizeof s->reason, "out of memory");
        s->state = MQTT_CONNECTING;
        teardown(s, now);
        return;
    }
    mosquitto_connect_callback_set(s->mosq, on_connect);
    mosquitto_disconnect_callback_set(s->mosq, on_disconnect);
    mosquitto_publish_callback_set(s->mosq, on_publish);
    mosquitto_message_callback_set(s->mosq, on_message);
    mosquitto_max_inflight_messages_set(s->mosq, WINDOW);
    size_t length;
    char *offline =
        pubsub_status(s->client_id, "offline", UARC_BadConnectionClosed, 0, 0, NULL, &length);
    int rc = offline ? mosquitto_will_set(s->mosq, s->will_topic, (int)length, offline, 1, true)
                     : MOSQ_ERR_NOMEM;
    free(offline);
    if (rc == MOSQ_ERR_SUCCESS && s->user)
        rc = mosquitto_username_pw_set(s->mosq, s->user, s->password);
    if (rc == MOSQ_ERR_SUCCESS && s->tls_ca)
        rc = mosquitto_tls_set(s->mosq, s->tls_ca, NULL, NULL, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect_async(s->mosq, s->host, s->port, KEEPALIVE_S);
    s->state = MQTT_CONNECTING;
    s->connect_deadline = now + CONNECT_MS;
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(s->reason, sizeof s->reason, "connect: %s",
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        teardown(s, now);
    }
}

static int mqtt_poll_fd(data_sink *base, short *events)
{
    mqtt_sink *s = (mqtt_sink *)base;
    if (!s->mosq || s->state == MQTT_DOWN)
        return -1;
    *events = (short)(POLLIN | (mosquitto_want_write(s->mosq) ? POLLOUT : 0));
    return mosquitto_socket(s->mosq);
}

static int64_t mqtt_timeout_ms(data_sink *base, int64_t now)
{
    mqtt_sink *s = (mqtt_sink *)base;
    if (s->state == MQTT_DOWN)
        return s->next_attempt > now ? s->next_attempt - now : 0;
    if (s->state == MQTT_CONNECTING)
        return s->connect_deadline > now ? s->connect_deadline - now : 0;
    return 1000; /* mosquitto_loop_misc(): keep-alive pings */
}

static void refresh_statuses(mqtt_sink *s, int64_t now);

static void mqtt_process(data_sink *base, short revents, int64_t now)
{
    mqtt_sink *s = (mqtt_sink *)base;
    s->now = now;
    refresh_statuses(s, now);
    if (s->state == MQTT_DOWN) {
        if (now >= s->next_attempt)
            start_connect(s, now);
        return;
    }
    if (revents & (POLLIN | POLLERR | POLLHUP))
        mosquitto_loop_read(s->mosq, 1);
    if (!s->lost && (revents & POLLOUT))
        mosquitto_loop_write(s->mosq, 1);
    if (!s->lost)
        mosquitto_loop_misc(s->mosq);
    if (!s->lost && s->state == MQTT_CONNECTING && now >= s->connect_deadline) {
        s->lost = true;
        snprintf(s->reason, sizeof s->reason, "connect timeout (%d ms)", CONNECT_MS);
    }
    pump(s);
    if (s->lost)
        teardown(s, now);
}

/* ---- data from the subscriptions ---- */

static void begin_message(mqtt_sink *s, monitor_sink *m, uint32_t subscription_id,
                          uint32_t sequence_number)
{
    if (s->build_m)
        return;
    s->build_m = m;
    pubsub_begin(&s->build, m->publisher_id, subscription_id, sequence_number, GROUP);
}

static void mqtt_data(data_sink *base, monitor_sink *m, const uarc_data_change *c)
{
    mqtt_sink *s = (mqtt_sink *)base;
    begin_message(s, m, c->subscription_id, c->sequence_number);
    pubsub_add_value(&s->build, c->item, c->node, c->value);
}

static void mqtt_event(data_sink *base, monitor_sink *m, const uarc_event *e)
{
    mqtt_sink *s = (mqtt_sink *)base;
    begin_message(s, m, e->subscription_id, e->sequence_number);
    pubsub_add_event(&s->build, m->select, m->select_count, e->fields, e->field_count);
}

static void pause_publishing(mqtt_sink *s, monitor_sink *m)
{
    if (m->paused)
        return;
    monitor_sink **grown = realloc(s->paused, (s->paused_count + 1) * sizeof *grown);
    if (!grown)
        return;
    if (!s->paused_count)
        report(s, "paused", "backlog at three quarters: publishing off on the servers");
    s->paused = grown;
    s->paused[s->paused_count++] = m;
    m->paused = true;
    uarc_subscription_set_publishing(m->subscription, false);
}

static void mqtt_message_end(data_sink *base, monitor_sink *m, uarc_subscription *subscription,
                             uint32_t sequence_number)
{
    mqtt_sink *s = (mqtt_sink *)base;
    uint32_t id = uarc_subscription_id(subscription);
    if (s->build_m != m) { /* nothing to publish (a status change only) */
        uarc_subscription_ack(subscription, sequence_number);
        return;
    }
    s->build_m = NULL;
    size_t length = 0;
    char *payload = pubsub_end(&s->build, &length);
    char *topic = pubsub_topic(s->prefix, "data", m->publisher_id, GROUP);
    if (payload && s->backlog + length > s->backlog_max) {
        /* Full even though publishing was paused at three quarters: this one is lost, and
         * said so. */
        free(payload);
        free(topic);
        monitor_report_gap(m, id, sequence_number, sequence_number, UARC_BadResourceUnavailable,
                           false);
        uarc_subscription_ack(subscription, sequence_number);
        return;
    }
    push(s, topic, payload, length, false, m, id, sequence_number);
    if (s->backlog > s->backlog_max / 4 * 3)
        pause_publishing(s, m);
    pump(s);
}

/* A server's status on PREFIX/json/status/<ServerUri>, retained. With `m`, it names the
 * subscription and the last number of it the broker confirmed; without, what the broker had.
 * `acking`: once published it acknowledges that number to the server. */
static void push_status(mqtt_sink *s, monitor_sink *m, const char *publisher, const char *state,
                        uarc_status status, uint32_t subscription_id, const uint32_t *gap,
                        bool acking)
{
    char *topic = pubsub_topic(s->prefix, "status", publisher, NULL);
    uint32_t confirmed = 0;
    if (m) {
        if (!subscription_id && m->subscription)
            subscription_id = uarc_subscription_id(m->subscription);
        if (subscription_id == m->confirmed_id)
            confirmed = m->confirmed_sequence;
        if (!gap)
            m->status_state = state; /* what a refresh repeats */
        m->status_due = 0;
    } else if (topic && !subscription_id) {
        takeover_find(s->left, topic, &subscription_id, &confirmed);
    }
    size_t length = 0;
    char *payload =
        pubsub_status(publisher, state, status, subscription_id, confirmed, gap, &length);
    if (acking)
        push(s, topic, payload, length, true, m, subscription_id, confirmed);
    else
        push(s, topic, payload, length, true, NULL, 0, 0);
    pump(s);
}

/* The statuses of the servers whose confirmed number moved, at most every --mqtt-status-ms:
 * the cost of a takeover that goes on where the broker is, one retained message per server and
 * second instead of one per message. */
static void refresh_statuses(mqtt_sink *s, int64_t now)
{
    if (s->state != MQTT_UP || !s->refresh_at || now < s->refresh_at)
        return;
    s->refresh_at = 0;
    for (size_t i = 0; i < s->listed_count; i++) {
        monitor_sink *m = s->listed[i];
        if (m->status_due && now >= m->status_due)
            push_status(s, m, m->publisher_id, m->status_state ? m->status_state : "connected",
                        UARC_Good, m->confirmed_id, NULL, false);
        else if (m->status_due && (!s->refresh_at || m->status_due < s->refresh_at))
            s->refresh_at = m->status_due;
    }
}

static void mqtt_gap(data_sink *base, monitor_sink *m, uint32_t subscription_id, uint32_t from,
                     uint32_t to, uarc_status reason)
{
    uint32_t gap[2] = {from, to};
    push_status((mqtt_sink *)base, m, m->publisher_id, "gap", reason, subscription_id, gap, false);
}

static void mqtt_subscription_state(data_sink *base, monitor_sink *m, const char *state,
                                    uint32_t subscription_id, uarc_status status)
{
    push_status((mqtt_sink *)base, m, m->publisher_id, state, status, subscription_id, NULL, false);
}

static void mqtt_server_state(data_sink *base, monitor_sink *m, const char *server_uri,
                              const char *state, uarc_status status)
{
    push_status((mqtt_sink *)base, m, server_uri, state, status, 0, NULL, false);
}

static bool mqtt_takeover(data_sink *base, const char *publisher_id, uint32_t *subscription_id,
                          uint32_t *last_sequence)
{
    mqtt_sink *s = (mqtt_sink *)base;
    char *topic = pubsub_topic(s->prefix, "status", publisher_id, NULL);
    bool found = topic && takeover_find(s->left, topic, subscription_id, last_sequence);
    free(topic);
    return found;
}

/* ---- life ---- */

static void mqtt_close(data_sink *base, int linger_ms)
{
    mqtt_sink *s = (mqtt_sink *)base;
    if (s->state == MQTT_UP && !s->lost) {
        size_t length;
        char *offline = pubsub_status(s->client_id, "offline", UARC_Good, 0, 0, NULL, &length);
        if (offline)
            push(s, strdup(s->will_topic), offline, length, true, NULL, 0, 0);
        pump(s);
        /* What is queued is handed over while the broker answers within the linger time. */
        for (int waited = 0; s->head && !s->lost && s->state == MQTT_UP && waited < linger_ms;
             waited += 10) {
            short events;
            struct pollfd p = {.fd = mqtt_poll_fd(base, &events)};
            p.events = events;
            if (p.fd < 0 || poll(&p, 1, 10) < 0)
                break;
            if (p.revents & (POLLIN | POLLERR | POLLHUP))
                mosquitto_loop_read(s->mosq, 1);
            if (!s->lost && (p.revents & POLLOUT))
                mosquitto_loop_write(s->mosq, 1);
            pump(s);
        }
        if (!s->lost) {
            mosquitto_disconnect(s->mosq);
            mosquitto_loop_write(s->mosq, 1);
        }
    }
    mosquitto_destroy(s->mosq);
    while (s->head) {
        entry *e = s->head;
        s->head = e->next;
        entry_free(e); /* not acknowledged: the servers keep these messages */
    }
    pubsub_message_clear(&s->build);
    free(s->paused);
    free(s->listed);
    free(s->status_filter);
    takeover_free(s->left);
    free(s->host);
    free(s->client_id);
    free(s->will_topic);
    free(s);
    mosquitto_lib_cleanup();
}

static const sink_ops mqtt_ops = {
    .data = mqtt_data,
    .event = mqtt_event,
    .message_end = mqtt_message_end,
    .gap = mqtt_gap,
    .subscription_state = mqtt_subscription_state,
    .server_state = mqtt_server_state,
    .takeover = mqtt_takeover,
    .poll_fd = mqtt_poll_fd,
    .timeout_ms = mqtt_timeout_ms,
    .process = mqtt_process,
    .close = mqtt_close,
};

data_sink *sink_mqtt_new(const char *command, const mqtt_args *args, bool json)
{
    mqtt_sink *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    mosquitto_lib_init();
    s->base = (data_sink){.ops = &mqtt_ops, .deferred_ack = true};
    s->json = json;
    s->prefix = args->topic_prefix ? args->topic_prefix : "opcua";
    s->user = args->user;
    s->password = args->password;
    s->tls_ca = args->tls_ca;
    s->qos = (int)args->qos;
    s->backlog_max = args->backlog ? (size_t)args->backlog : DEFAULT_BACKLOG;
    s->backoff = FIRST_BACKOFF_MS;
    s->status_ms = args->status_ms_given ? (int64_t)args->status_ms : DEFAULT_STATUS_MS;
    char id[128];
    if (args->client_id) {
        snprintf(id, sizeof id, "%s", args->client_id);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(id, sizeof id, "uarc-%s-%ld", host, (long)getpid());
    }
    s->client_id = strdup(id);
    if (!parse_url(args->url, args->tls_ca != NULL, &s->host, &s->port) || !s->client_id ||
        !(s->will_topic = pubsub_topic(s->prefix, "status", s->client_id, NULL)) ||
        !(s->left = takeover_new()) ||
        asprintf(&s->status_filter, "%s/json/status/#", s->prefix) < 0) {
        s->status_filter = NULL;
        fprintf(stderr, "uarc %s: --mqtt: cannot use \"%s\"\n", command, args->url);
        s->state = MQTT_DOWN;
        mqtt_close(&s->base, 0);
        return NULL;
    }
    return &s->base;
}
