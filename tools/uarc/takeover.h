/*
 * What the broker says collectors left: per server status topic, the subscription id and the last
 * sequence number the broker confirmed (pubsub_status_parse()), as a collector reads them from
 * the retained and live messages of PREFIX/json/status/#. A collector that gets a server for the
 * first time looks its topic up and takes the subscription over.
 *
 * Bounds on what the broker controls: 1,048,576 topics (later ones are not kept), topics of at
 * most 4096 bytes, payloads as pubsub_status_parse() takes them.
 */
#ifndef UARC_TOOL_TAKEOVER_H
#define UARC_TOOL_TAKEOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct takeover_table takeover_table;

/* NULL when out of memory. */
takeover_table *takeover_new(void);
void takeover_free(takeover_table *t);

/* A status message on `topic`: its numbers replace what was known; an empty payload (the
 * retained message cleared) or one without a SubscriptionId forgets the topic. */
void takeover_note(takeover_table *t, const char *topic, const void *payload, size_t length);

/* The numbers last noted for `topic`; false when none. */
bool takeover_find(const takeover_table *t, const char *topic, uint32_t *subscription_id,
                   uint32_t *sequence_number);

#endif
