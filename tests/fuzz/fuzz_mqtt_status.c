/*
 * The status messages a collector reads back from the broker for a takeover (any client that
 * may publish on PREFIX/json/status/# writes them): pubsub_status_parse() and the takeover
 * table. Input: a topic length byte, the topic, the payload; noted twice under the topic and
 * looked up again.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pubsub_json.h"
#include "takeover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t topic_length = data[0];
    if (size - 1 < topic_length)
        return 0;
    char topic[256];
    memcpy(topic, data + 1, topic_length);
    topic[topic_length] = '\0';
    const char *payload = (const char *)data + 1 + topic_length;
    size_t length = size - 1 - topic_length;
    uint32_t id = 0, seq = 0;
    bool parsed = pubsub_status_parse(payload, length, &id, &seq);
    if (parsed && id == 0)
        __builtin_trap();
    takeover_table *t = takeover_new();
    if (!t)
        return 0;
    takeover_note(t, topic, payload, length);
    takeover_note(t, "other", payload, length);
    uint32_t found_id, found_seq;
    if (takeover_find(t, topic, &found_id, &found_seq) &&
        (!parsed || found_id != id || found_seq != seq))
        __builtin_trap();
    takeover_free(t);
    return 0;
}
