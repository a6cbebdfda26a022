/*
 * OPC UA Part 14 JSON messages and their MQTT topics, for any broker sink (sink_mqtt.c).
 *
 * One NotificationMessage of one server's subscription becomes one ua-data NetworkMessage:
 *   {"MessageId": "<PublisherId>;<subscription id>;<sequence number>", "MessageType": "ua-data",
 *    "PublisherId": "<ServerUri>", "WriterGroupName": "<group>", "Messages": [DataSetMessage...]}
 * with DataSetMessages {"DataSetWriterName": "<group>", "SequenceNumber": <sequence number>,
 *   "MessageType": "ua-deltaframe" (or "ua-event"), "Timestamp": "<when it was built>",
 *   "Payload": {"<NodeId>": DataValue, ...}}. A node that changes twice in one message starts a
 * new DataSetMessage, so no Payload has a key twice. DataValues are Part 6 JSON: {"Value",
 * "Status" (not when Good), "SourceTimestamp", "ServerTimestamp"}; values as uarc_variant_to_json()
 * writes them. An event is a DataSetMessage of its own whose Payload maps each select clause to
 * its value.
 */
#ifndef UARC_TOOL_PUBSUB_JSON_H
#define UARC_TOOL_PUBSUB_JSON_H

#include "output.h"
#include "uarc/uarc.h"

typedef struct pubsub_message {
    out_line text;
    bool open_set;     /* a DataSetMessage is open */
    bool event_open;   /* it is an event's */
    uint32_t set;      /* the open DataSetMessage's number, for `seen` */
    uint32_t *seen;    /* per item handle: the DataSetMessage that holds it already */
    size_t seen_count; /* kept across messages: the items' handles are stable */
    uint32_t sequence_number;
    char timestamp[UARC_DATETIME_TEXT_SIZE];
    const char *group;
    size_t values; /* data changes and events added */
} pubsub_message;

/* Starts the NetworkMessage of message `sequence_number`. */
void pubsub_begin(pubsub_message *b, const char *publisher_id, uint32_t subscription_id,
                  uint32_t sequence_number, const char *group);
void pubsub_add_value(pubsub_message *b, uint32_t item, const uarc_nodeid *node,
                      const uarc_data_value *value);
void pubsub_add_event(pubsub_message *b, const char *const *select, size_t select_count,
                      const uarc_variant *fields, size_t field_count);
/* Ends the message: its text (heap, free()) and length, or NULL when out of memory. */
char *pubsub_end(pubsub_message *b, size_t *length);
/* Frees what the builder keeps between messages. */
void pubsub_message_clear(pubsub_message *b);

/* A status message: {"MessageId", "MessageType": "ua-status", "PublisherId", "Timestamp",
 * "State": state, "Status": StatusCode (not when Good), "SubscriptionId" (when not 0),
 * "SequenceNumber" (when not 0: the last message of that subscription the broker confirmed), and
 * for a gap "From", "To" (null: open-ended)}. Heap, or NULL when out of memory. */
char *pubsub_status(const char *publisher_id, const char *state, uarc_status status,
                    uint32_t subscription_id, uint32_t sequence_number,
                    const uint32_t *gap /* {from, to} or NULL */, size_t *length);

/* Reads SubscriptionId and SequenceNumber (0 when absent) back from a status message, as a
 * collector that takes a server over finds them on the broker. False when the payload is over
 * 8 KiB, or has no SubscriptionId, or a value of either is not a number of 1..4294967295. */
bool pubsub_status_parse(const char *payload, size_t length, uint32_t *subscription_id,
                         uint32_t *sequence_number);

/* PREFIX/json/KIND/<escaped publisher>[/<escaped group>] (group NULL: none). A topic level is
 * escaped reversibly: '%', '/', '+', '#', bytes below 0x21 and from 0x7f on become %XX (upper
 * case hex); everything else stays. Heap, or NULL when out of memory. */
char *pubsub_topic(const char *prefix, const char *kind, const char *publisher, const char *group);

#endif
