/*
 * Where the data of `uarc monitor` and `uarc listen --monitor` goes: one sink per run, one file
 * per kind (sink_jsonl.c: JSON Lines or text on stdout; sink_mqtt.c: an MQTT broker). The
 * subscription callbacks in monitor.c hand every data change and event to the sink, then the end
 * of its NotificationMessage. A sink with `deferred_ack` acknowledges each message itself, with
 * uarc_subscription_ack(), once it holds it safely; until then the server keeps it.
 *
 * The state lines (subscription, item, gap, connection) stay on stdout whatever the sink; a
 * sink that has a status channel of its own also gets gaps and server states.
 *
 * A sink with a socket joins the caller's poll set: poll_fd() before each poll, process() after
 * it, timeout_ms() bounds the wait. One sink belongs to one thread.
 */
#ifndef UARC_TOOL_SINK_H
#define UARC_TOOL_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "uarc/uarc.h"

struct monitor_sink;
struct mqtt_args;

typedef struct data_sink data_sink;

typedef struct sink_ops {
    void (*data)(data_sink *s, struct monitor_sink *m, const uarc_data_change *change);
    void (*event)(data_sink *s, struct monitor_sink *m, const uarc_event *event);
    /* Every change and event of message `sequence_number` was given. */
    void (*message_end)(data_sink *s, struct monitor_sink *m, uarc_subscription *subscription,
                        uint32_t sequence_number);
    /* NULL when the sink has no status channel. server_state's `state`: "connected", "lost";
     * `m` the server's subscription, NULL when it has none yet. */
    void (*gap)(data_sink *s, struct monitor_sink *m, uint32_t subscription_id, uint32_t from,
                uint32_t to, uarc_status reason);
    void (*server_state)(data_sink *s, struct monitor_sink *m, const char *server_uri,
                         const char *state, uarc_status status);
    /* NULL when the sink cannot tell. True when another collector (or an earlier run) left a
     * subscription for `publisher_id`: its id, and the last sequence number of it the broker
     * confirmed (0: none). */
    bool (*takeover)(data_sink *s, const char *publisher_id, uint32_t *subscription_id,
                     uint32_t *last_sequence);
    /* The subscription's state ("created", "transferred", ... as uarc_subscription_state_name()
     * names them): a new subscription id starts a new stream of sequence numbers. */
    void (*subscription_state)(data_sink *s, struct monitor_sink *m, const char *state,
                               uint32_t subscription_id, uarc_status status);
    /* NULL when the sink has no socket. poll_fd returns -1 when there is none right now. */
    int (*poll_fd)(data_sink *s, short *events);
    int64_t (*timeout_ms)(data_sink *s, int64_t now_ms); /* -1: no deadline */
    void (*process)(data_sink *s, short revents, int64_t now_ms);
    /* Spends at most `linger_ms` handing over what is queued, then frees the sink. */
    void (*close)(data_sink *s, int linger_ms);
} sink_ops;

struct data_sink {
    const sink_ops *ops;
    bool deferred_ack;
};

/* Data and event lines on stdout (JSON Lines or readable, as monitor_sink.json says), each
 * flushed before its message is acknowledged. Never fails (a static object). */
data_sink *sink_jsonl(void);

/* An MQTT client for `args` (args->url set), connecting at the first process(); `json` is how
 * its own state lines (mqtt) are printed. NULL with a message on stderr when it cannot be made. */
data_sink *sink_mqtt_new(const char *command, const struct mqtt_args *args, bool json);

#endif
