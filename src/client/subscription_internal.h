/*
 * The insides of subscriptions, shared by their files: subscription.c (subscriptions and the
 * API, gaps and Server.ResendData), subscription_items.c (monitored items: creation),
 * subscription_changes.c (their removal, modification and monitoring mode), subscription_publish.c
 * (the publish pipeline, delivery in sequence order, Republish of holes, acknowledgements) and
 * subscription_recover.c (resume, transfer and re-creation across connections, the keep-alive
 * watch, the client hooks).
 *
 * One manager per client holds the subscriptions and the pipeline; it is attached through the
 * client's hooks the first time a subscription is made. Every request carries its subscription
 * as user_data, so a subscription deleted by the application stays allocated until its last
 * request has come back.
 */
#ifndef UARC_CLIENT_SUBSCRIPTION_INTERNAL_H
#define UARC_CLIENT_SUBSCRIPTION_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/subscription.h"
#include "client/client_internal.h"
#include "core/log.h"

#define DEFAULT_PUBLISH_CAP   5u
#define DEFAULT_PUBLISH_SPARE UINT32_MAX /* up to the cap */
#define MAX_HELD              256u
#define MAX_ACKS              4096u

typedef enum phase {
    PHASE_NEW,          /* to be created at the next chance */
    PHASE_CREATING,     /* CreateSubscription in flight */
    PHASE_LIVE,         /* on the server, publishing */
    PHASE_CATCHING_UP,  /* the Republish loop after a resume or transfer */
    PHASE_TRANSFERRING, /* TransferSubscriptions in flight */
} phase;

typedef enum item_state {
    ITEM_PENDING,  /* to be created with the next batch */
    ITEM_CREATING, /* in the batch in flight */
    ITEM_UNSURE,   /* its batch got no answer: perhaps created on the server, to be asked */
    ITEM_ACTIVE,
    ITEM_FAILED,
    /* from here on the handle is invalid */
    ITEM_REMOVED,
    ITEM_DROPPED,        /* removed while CREATING: deleted on the server once it has an id */
    ITEM_DROPPED_UNSURE, /* removed while UNSURE: deleted on the server if it has it */
} item_state;

/* What an item keeps of the last value it delivered (item.last_flags). */
enum {
    LAST_BOXED = 0x01, /* last.boxed holds the whole value; the fields below only its timestamp */
    LAST_HAS_VALUE = 0x02,
    LAST_HAS_STATUS = 0x04,
    LAST_HAS_SOURCE_TIMESTAMP = 0x08, /* every value kept has one (see repeated()) */
    LAST_HAS_SERVER_TIMESTAMP = 0x10,
    LAST_HAS_SOURCE_PICOSECONDS = 0x20,
    LAST_HAS_SERVER_PICOSECONDS = 0x40,
};

/* 128 bytes, in an array that starts on a cache line (ITEM_ALIGN): all that a data change reads
 * and writes of its item (params.user_data to the end) is the second cache line. */
typedef struct item {
    uarc_monitored_item_params params; /* params.node owned */
    uarc_EventFilter *event_filter;    /* an event item's filter, owned; NULL for a data item */
    /* The last value delivered, to drop one the server sends again in a later message
     * (node-opcua does at each ActivateSession: same value, same timestamps, new number). A
     * plain scalar of up to 8 bytes is kept in these fields, another value whole on the heap
     * (LAST_BOXED); last_flags 0: none kept. */
    int64_t last_source_timestamp, last_server_timestamp;
    const uarc_type *last_type; /* of the kept scalar */
    union {
        uint64_t scalar;
        uarc_data_value *boxed;
    } last;
    uarc_status last_status;
    uint32_t server_id;
    uint16_t last_source_picoseconds, last_server_picoseconds;
    uint8_t last_flags;
    uint8_t state; /* item_state */
    uint8_t mode;  /* uarc_MonitoringMode: Reporting unless set otherwise */
} item;

#define ITEM_ALIGN 64u
_Static_assert(sizeof(void *) != 8 || sizeof(item) == 2 * ITEM_ALIGN, "item is two cache lines");
_Static_assert(sizeof(void *) != 8 || offsetof(item, params.user_data) == ITEM_ALIGN,
               "what a data change touches starts the second cache line");

/* Frees the last value an item keeps and forgets it. */
static inline void item_forget_last(item *it)
{
    if (it->last_flags & LAST_BOXED)
        uarc_delete(it->last.boxed, UARC_T(DataValue));
    it->last_flags = 0;
    it->last_type = NULL;
}

typedef struct manager manager;
typedef struct item_change item_change;
typedef struct change_batch change_batch;

struct uarc_subscription {
    manager *mgr;
    uarc_subscription_config cfg;
    uarc_subscription_state state;
    phase phase;
    uint32_t id;
    double revised_interval;
    uint32_t revised_keepalive, revised_lifetime;
    bool recreate; /* the next creation replaces one the server lost */
    bool deleted;
    /* uarc_subscription_adopt(): `id` is another session's, to be transferred to ours */
    bool adopting;
    unsigned inflight;   /* requests carrying this subscription */
    unsigned delivering; /* callbacks running */
    item *items;         /* ITEM_ALIGN-aligned, inside items_raw */
    void *items_raw;     /* the allocation */
    size_t item_count, item_capacity;
    bool batch_in_flight;
    /* Server.GetMonitoredItems in flight, for the ITEM_UNSURE ones (a server that cannot answer
     * gets the subscription deleted and created again, so that no item exists twice) */
    bool asking_items;
    /* removals, modifications and monitoring modes to send, in the order of the calls, and the
     * one batch of them in flight */
    item_change *changes;
    change_batch *change_in_flight;
    /* sequence numbers: next to deliver (0: not known yet); everything before `horizon` has been
     * sent by the server */
    uint32_t next, horizon;
    bool republishing; /* a Republish of `asked` is in flight */
    bool probing;      /* that Republish asks whether it still exists */
    uint32_t asked;
    uarc_NotificationMessage *held; /* ahead of a hole, sorted; at most MAX_HELD */
    size_t held_count, held_capacity;
    uint32_t *available;
    size_t available_count, available_capacity;
    int64_t last_heard;
    /* its last PublishResponse said the server holds more notifications than it sent: the
     * pipeline goes to the cap until they are out, instead of one round trip per message */
    bool more;
    bool stalled;
    bool resending; /* Server.ResendData in flight */
    /* transferred with sendInitialValues: the next message of a Publish brings every value, so
     * a gap before it needs no ResendData */
    bool initial_values;
};

typedef enum limits_state {
    LIMITS_UNKNOWN, /* to be read before the next CreateMonitoredItems */
    LIMITS_READING, /* the Read is in flight */
    LIMITS_KNOWN,
} limits_state;

struct manager {
    uarc_client *client;
    /* The server's MaxMonitoredItemsPerCall, read once per session (0: no limit, also when the
     * server does not say). */
    limits_state limits;
    uint32_t max_items_per_call;
    uarc_subscription **subs;
    size_t sub_count, sub_capacity;
    uint32_t cap;      /* configured */
    uint32_t spare;    /* requests a refill adds beyond those wanted (within the cap) */
    uint32_t throttle; /* lowered by BadTooManyPublishRequests; 0: none */
    /* Raising it again: after `probe_wait` good PublishResponses in a row while it binds, one
     * more is tried (`probing` until it is refused or held); the wait is 2 x the throttle,
     * doubled for each refused try in this session (`probe_refusals`). */
    uint32_t probe_wait;
    uint32_t good_since;
    uint32_t probe_refusals;
    bool probing;
    uint32_t outstanding;
    bool no_subscription; /* the server said BadNoSubscription: wait for a (re)creation */
    int64_t retry_at;     /* after an unexpected Publish failure; -1: none */
    uarc_SubscriptionAcknowledgement *acks; /* at most MAX_ACKS, grown as needed */
    size_t ack_count, ack_capacity;
    bool sweeping;     /* inside free_deleted */
    bool transferring; /* a TransferSubscriptions in flight */
    /* this session's server cannot ResendData (asked no more); said once per client */
    bool resend_unsupported, resend_told;
};

/* ---- sequence numbers: 32 bits, wrapping from 4294967295 to 1, never 0 ---- */

static inline uint32_t seq_after(uint32_t n)
{
    return n == UINT32_MAX ? 1 : n + 1;
}

static inline uint32_t seq_preceding(uint32_t n)
{
    return n <= 1 ? UINT32_MAX : n - 1;
}

/* a comes before b (within half the number space) */
static inline bool seq_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static inline bool session_active(const manager *m)
{
    return uarc_client_state_get(m->client) == UARC_CLIENT_SESSION_ACTIVE;
}

static inline item *item_of(const uarc_subscription *s, uint32_t handle)
{
    if (handle == 0 || handle > s->item_count)
        return NULL;
    item *it = &s->items[handle - 1];
    return it->state >= ITEM_REMOVED ? NULL : it;
}

/* subscription.c */
void uarc__sub_ignore_response(void *user_data, uarc_status status, void *response);
void uarc__sub_log(const uarc_subscription *s, uarc_log_level level, const char *fmt, ...)
    UARC__PRINTF(3, 4);
void uarc__sub_free(uarc_subscription *s);
/* Frees deleted subscriptions that nothing refers to any more. */
void uarc__sub_sweep(manager *m);
void uarc__sub_set_state(uarc_subscription *s, uarc_subscription_state state, uarc_status status);
void uarc__sub_report_gap(uarc_subscription *s, uint32_t from, uint32_t to, uarc_status reason);
void uarc__sub_create(uarc_subscription *s);
/* Calls method `method` of the Server object (i=2253) with the subscription id as its one input
 * argument; the request carries `s` (inflight counted). Returns what uarc_client_send() did. */
uarc_status uarc__sub_call_server(uarc_subscription *s, uint32_t method, uarc_response_fn callback);
/* DeleteSubscriptions of subscription `id` on the server, its answer not waited for. */
void uarc__sub_send_delete(manager *m, uint32_t id);
/* A new subscription with the config's defaults applied, in PHASE_NEW, not sent. */
uarc_status uarc__sub_alloc(uarc_client *client, const uarc_subscription_config *config,
                            uarc_subscription **subscription);

/* subscription_items.c */
/* Sends the next batch of items waiting to be created and the next batch of changes. */
void uarc__sub_send_items(uarc_subscription *s);
/* Items per request: the configured batch within the server's MaxMonitoredItemsPerCall; 0 while
 * that limit is being read (uarc__sub_send_items() runs again when it is known). */
uint32_t uarc__sub_batch_limit(uarc_subscription *s);
/* The item's MonitoringParameters; the filter may point into *f or the item. */
void uarc__sub_item_parameters(const item *it, uint32_t handle, uarc_MonitoringParameters *p,
                               uarc_DataChangeFilter *f);

/* subscription_changes.c */
/* Sends the next batch of removals, modifications or monitoring modes. */
void uarc__sub_send_changes(uarc_subscription *s);
/* The server lost the subscription (`reason`, report true) or it is freed: the changes not yet
 * answered are dropped; with `report`, item_modified tells `reason` for each item of them. */
void uarc__sub_drop_changes(uarc_subscription *s, uarc_status reason, bool report);
/* Queues DeleteMonitoredItems for a removed item that turned out to exist on the server
 * (its server_id set). */
void uarc__sub_delete_on_server(uarc_subscription *s, uint32_t handle);

/* subscription_publish.c */
void uarc__sub_queue_ack(manager *m, uint32_t id, uint32_t sequence);
void uarc__sub_keep_available(uarc_subscription *s, const uint32_t *numbers, size_t count);
void uarc__sub_send_republish_of(uarc_subscription *s, uint32_t sequence);
void uarc__sub_send_republish(uarc_subscription *s);
/* Delivers what is in order; for a hole, Republishes the next number when the server still
 * has it, else reports the numbers it no longer has as a gap. */
void uarc__sub_drain(uarc_subscription *s);
void uarc__sub_refill(manager *m);
/* The client hook behind uarc_client_gather_ms(): -1 without subscriptions, 0 while one is not
 * steadily publishing, else a share of the shortest publishing interval. */
int uarc__sub_gather_ms(void *user_data);

/* subscription_recover.c */
void uarc__sub_caught_up(uarc_subscription *s);
/* The server lost the subscription: report what will never come and create it again. */
void uarc__sub_make_again(uarc_subscription *s, uarc_status reason);
/* The client's manager, made and hooked to the client on first use; NULL without memory. */
manager *uarc__sub_manager(uarc_client *client);

#endif
