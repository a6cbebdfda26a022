/* The table of what collectors left (takeover.h): open addressing on the topic's FNV-1a hash, so
 * that a fleet's status updates each cost a constant time. */
#include <stdlib.h>
#include <string.h>

#include "pubsub_json.h"
#include "takeover.h"

#define MAX_TOPICS (1u << 20)
#define MAX_TOPIC  4096u

typedef struct slot {
    char *topic;              /* NULL: free */
    uint32_t subscription_id; /* 0: forgotten */
    uint32_t sequence_number;
} slot;

struct takeover_table {
    slot *slots;
    size_t capacity; /* a power of two, at least twice the count */
    size_t count;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static slot *lookup(const takeover_table *t, const char *topic)
{
    size_t i = (size_t)hash(topic) & (t->capacity - 1);
    while (t->slots[i].topic && strcmp(t->slots[i].topic, topic) != 0)
        i = (i + 1) & (t->capacity - 1);
    return &t->slots[i];
}

takeover_table *takeover_new(void)
{
    takeover_table *t = calloc(1, sizeof *t);
    if (t && !(t->slots = calloc(t->capacity = 64, sizeof *t->slots))) {
        free(t);
        return NULL;
    }
    return t;
}

void takeover_free(takeover_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->capacity; i++)
        free(t->slots[i].topic);
    free(t->slots);
    free(t);
}

static bool grow(takeover_table *t)
{
    slot *old = t->slots;
    size_t old_capacity = t->capacity;
    slot *grown = calloc(2 * old_capacity, sizeof *grown);
    if (!grown)
        return false;
    t->slots = grown;
    t->capacity = 2 * old_capacity;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].topic)
            *lookup(t, old[i].topic) = old[i];
    free(old);
    return true;
}

void takeover_note(takeover_table *t, const char *topic, const void *payload, size_t length)
{
    uint32_t id = 0, seq = 0;
    if (strlen(topic) > MAX_TOPIC)
        return;
    if (!pubsub_status_parse(payload, length, &id, &seq))
        id = seq = 0;
    slot *s = lookup(t, topic);
    if (!s->topic) {
        if (!id || t->count >= MAX_TOPICS)
            return;
        if (2 * (t->count + 1) > t->capacity) {
            if (!grow(t))
                return;
            s = lookup(t, topic);
        }
        if (!(s->topic = strdup(topic)))
            return;
        t->count++;
    }
    s->subscription_id = id;
    s->sequence_number = seq;
}

bool takeover_find(const takeover_table *t, const char *topic, uint32_t *subscription_id,
                   uint32_t *sequence_number)
{
    const slot *s = lookup(t, topic);
    if (!s->topic || !s->subscription_id)
        return false;
    *subscription_id = s->subscription_id;
    *sequence_number = s->sequence_number;
    return true;
}
