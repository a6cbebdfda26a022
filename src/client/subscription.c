/*
 * Subscriptions: the publish pipeline, in-order delivery by sequence number, Republish of holes,
 * acknowledgement after delivery, and recovery across connections (Part 4 §5.13, §6.7).
 *
 * One manager per client holds the subscriptions and the pipeline; it is attached through the
 * client's hooks the first time a subscription is made. Every request carries its subscription
 * as user_data, so a subscription deleted by the application stays allocated until its last
 * request has come back.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uarc/subscription.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"
#include "client/client_internal.h"
#include "core/alloc.h"
#include "core/log.h"

#define DEFAULT_INTERVAL_MS 500.0
#define DEFAULT_KEEPALIVE   10u
#define DEFAULT_PUBLISH_CAP 5u
#define DEFAULT_BATCH       500u
#define LIFETIME_COVER_MS   120000.0
#define MAX_HELD            256u
#define MAX_AVAILABLE       1024u
#define MAX_ACKS            4096u
#define ACKS_PER_PUBLISH    256u
#define MAX_ITEMS           (1u << 24)
#define MAX_SELECT          64u
#define MAX_PATH_NAME       512u
#define DEFAULT_EVENT_QUEUE 100u
#define STALL_MARGIN_MS     1000
#define PUBLISH_RETRY_MS    1000
#define MAX_INTERVAL_MS     86400000.0 /* a longer revised interval is taken as this */

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
    ITEM_ACTIVE,
    ITEM_FAILED,
    ITEM_REMOVED,
} item_state;

typedef struct item {
    uarc_monitored_item_params params; /* params.node owned */
    item_state state;
    uint32_t server_id;
    /* the last value delivered, to drop one the server sends again in a later message
     * (node-opcua does at each ActivateSession: same value, same timestamps, new number) */
    uarc_data_value last;
    uarc_EventFilter *event_filter; /* an event item's filter, owned; NULL for a data item */
    uarc_MonitoringMode mode;       /* Reporting unless set otherwise */
} item;

typedef struct manager manager;

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
    unsigned inflight;   /* requests carrying this subscription */
    unsigned delivering; /* callbacks running */
    item *items;
    size_t item_count, item_capacity;
    bool batch_in_flight;
    /* sequence numbers: next to deliver (0: not known yet); everything before `horizon` has been
     * sent by the server */
    uint32_t next, horizon;
    bool republishing; /* a Republish of `asked` is in flight */
    bool probing;      /* that Republish asks whether it still exists */
    uint32_t asked;
    uarc_NotificationMessage held[MAX_HELD]; /* ahead of a hole, sorted */
    size_t held_count;
    uint32_t *available;
    size_t available_count;
    int64_t last_heard;
    bool stalled;
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
    uint32_t throttle; /* lowered by BadTooManyPublishRequests; 0: none */
    uint32_t outstanding;
    bool no_subscription; /* the server said BadNoSubscription: wait for a (re)creation */
    int64_t retry_at;     /* after an unexpected Publish failure; -1: none */
    uarc_SubscriptionAcknowledgement *acks;
    size_t ack_count;
    bool sweeping; /* inside free_deleted */
};

static void refill(manager *m);
static void drain(uarc_subscription *s);
static void create_subscription(uarc_subscription *s);
static void send_items(uarc_subscription *s);
static void read_limits(manager *m);

static void ignore_response(void *user_data, uarc_status status, void *response)
{
    (void)user_data, (void)status, (void)response;
}

static const char *const state_names[] = {"pending",   "created", "resumed", "transferred",
                                          "recreated", "stalled", "failed"};

UARC_API const char *uarc_subscription_state_name(uarc_subscription_state state)
{
    return (unsigned)state < sizeof state_names / sizeof *state_names ? state_names[state] : "?";
}

/* ---- sequence numbers: 32 bits, wrapping from 4294967295 to 1, never 0 ---- */

static uint32_t seq_after(uint32_t n)
{
    return n == UINT32_MAX ? 1 : n + 1;
}

static uint32_t seq_preceding(uint32_t n)
{
    return n <= 1 ? UINT32_MAX : n - 1;
}

/* a comes before b (within half the number space) */
static bool seq_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* ---- manager ---- */

static bool session_active(const manager *m)
{
    return uarc_client_state_get(m->client) == UARC_CLIENT_SESSION_ACTIVE;
}

static void log_sub(const uarc_subscription *s, uarc_log_level level, const char *fmt, ...)
    UARC__PRINTF(3, 4);

static void log_sub(const uarc_subscription *s, uarc_log_level level, const char *fmt, ...)
{
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    uarc__log(uarc__client_logger(s->mgr->client), level, "subscription", "%u: %s", s->id, text);
}

static void free_subscription(uarc_subscription *s)
{
    for (size_t i = 0; i < s->item_count; i++) {
        uarc_clear(&s->items[i].params.node, UARC_T(NodeId));
        uarc_clear(&s->items[i].last, UARC_T(DataValue));
        if (s->items[i].event_filter)
            uarc_delete(s->items[i].event_filter, UARC_T(EventFilter));
    }
    for (size_t i = 0; i < s->held_count; i++)
        uarc_clear(&s->held[i], UARC_T(NotificationMessage));
    uarc__free(s->items);
    uarc__free(s->available);
    uarc__free(s);
}

/* Frees deleted subscriptions that nothing refers to any more. */
static void sweep(manager *m)
{
    if (m->sweeping)
        return;
    m->sweeping = true;
    for (size_t i = 0; i < m->sub_count;) {
        uarc_subscription *s = m->subs[i];
        if (s->deleted && !s->inflight && !s->delivering) {
            free_subscription(s);
            m->subs[i] = m->subs[--m->sub_count];
        } else {
            i++;
        }
    }
    m->sweeping = false;
}

static uarc_subscription *find_by_id(manager *m, uint32_t id)
{
    for (size_t i = 0; i < m->sub_count; i++)
        if (m->subs[i]->id == id && id && !m->subs[i]->deleted)
            return m->subs[i];
    return NULL;
}

static void set_state(uarc_subscription *s, uarc_subscription_state state, uarc_status status)
{
    s->state = state;
    log_sub(s, UARC_LOG_INFO, "%s (%s)", uarc_subscription_state_name(state),
            uarc_status_name(status));
    if (s->cfg.callbacks.state_changed && !s->deleted) {
        s->delivering++;
        s->cfg.callbacks.state_changed(s->cfg.callbacks.user_data, s, state, status);
        s->delivering--;
    }
}

static void report_gap(uarc_subscription *s, uint32_t from, uint32_t to, uarc_status reason)
{
    log_sub(s, UARC_LOG_WARNING, "messages %u..%u lost (%s)", from, to, uarc_status_name(reason));
    if (s->cfg.callbacks.gap && !s->deleted) {
        s->delivering++;
        s->cfg.callbacks.gap(s->cfg.callbacks.user_data, s, from, to, reason);
        s->delivering--;
    }
}

static void queue_ack(manager *m, uint32_t id, uint32_t sequence)
{
    if (m->ack_count == MAX_ACKS) {
        /* The server keeps an unacknowledged message until it ages out: dropping the oldest
         * acknowledgement costs the server memory, not the application data. */
        memmove(m->acks, m->acks + 1, (MAX_ACKS - 1) * sizeof *m->acks);
        m->ack_count--;
    }
    m->acks[m->ack_count++] = (uarc_SubscriptionAcknowledgement){id, sequence};
}

/* PublishRequests wanted: one more than the subscriptions that publish, within the cap. */
static uint32_t wanted(const manager *m)
{
    uint32_t live = 0;
    for (size_t i = 0; i < m->sub_count; i++)
        live += m->subs[i]->phase == PHASE_LIVE && m->subs[i]->id && !m->subs[i]->deleted;
    if (!live)
        return 0;
    uint32_t cap = m->throttle ? m->throttle : m->cap;
    return live + 1 < cap ? live + 1 : cap;
}

/* How long a PublishRequest may wait: the server answers the queued ones one keep-alive period
 * apart at worst. */
static uint32_t publish_timeout(const manager *m)
{
    double period = 0;
    for (size_t i = 0; i < m->sub_count; i++) {
        const uarc_subscription *s = m->subs[i];
        double p = s->revised_interval * (s->revised_keepalive ? (double)s->revised_keepalive : 1);
        if (p > period)
            period = p;
    }
    double t = period * (m->cap + 1) + uarc__client_request_timeout(m->client);
    return t > 3600000 ? 3600000 : (uint32_t)t;
}

/* A revised publishing interval as the server gave it, made usable: NaN, 0 or less is the one we
 * asked for, more than a day is a day. */
static double sane_interval(double revised, double requested)
{
    if (!(revised > 0))
        return requested;
    return revised > MAX_INTERVAL_MS ? MAX_INTERVAL_MS : revised;
}

/* When a live subscription that hears nothing is stalled: its keep-alive period, one more
 * interval and a margin after the last response. */
static int64_t stall_due(const uarc_subscription *s)
{
    double period = s->revised_interval * ((double)s->revised_keepalive + 1);
    return s->last_heard + (int64_t)(period > 1e10 ? 1e10 : period) + STALL_MARGIN_MS;
}

/* ---- delivery ---- */

static item *item_of(const uarc_subscription *s, uint32_t handle)
{
    if (handle == 0 || handle > s->item_count)
        return NULL;
    item *it = &s->items[handle - 1];
    return it->state == ITEM_REMOVED ? NULL : it;
}

/* The same value with the same source timestamp as the last one delivered: not a change. */
static bool repeated(item *it, const uarc_data_value *value)
{
    if (!value->has_source_timestamp)
        return false;
    if (it->last.has_source_timestamp && uarc_equal(&it->last, value, UARC_T(DataValue)))
        return true;
    uarc_data_value copy;
    if (uarc_copy(value, &copy, UARC_T(DataValue)) == UARC_Good) {
        uarc_clear(&it->last, UARC_T(DataValue));
        it->last = copy;
    }
    return false;
}

static void status_change(uarc_subscription *s, const uarc_StatusChangeNotification *n)
{
    if (n->status == UARC_GoodSubscriptionTransferred) {
        /* Some servers tell the new session too (UA-.NETStandard PR #3847): the subscription
         * goes on here, nothing to do but note it. */
        log_sub(s, UARC_LOG_INFO, "server reports GoodSubscriptionTransferred");
        return;
    }
    if (!uarc_status_is_bad(n->status))
        return;
    /* The server ended the subscription (its lifetime expired, or it was deleted): make it
     * again, after telling what is lost. */
    log_sub(s, UARC_LOG_WARNING, "ended by the server: %s", uarc_status_name(n->status));
    report_gap(s, s->next ? s->next : 1, 0, UARC_BadSubscriptionIdInvalid);
    s->id = 0;
    s->next = s->horizon = 0;
    s->recreate = true;
    s->phase = PHASE_NEW;
    for (size_t i = 0; i < s->item_count; i++)
        if (s->items[i].state == ITEM_ACTIVE || s->items[i].state == ITEM_CREATING)
            s->items[i].state = ITEM_PENDING;
    if (session_active(s->mgr))
        create_subscription(s);
}

/* Hands one message to the application, then acknowledges it unless that is deferred. */
static void deliver(uarc_subscription *s, const uarc_NotificationMessage *msg)
{
    uint32_t id = s->id, seq = msg->sequenceNumber;
    s->delivering++;
    for (size_t i = 0; i < msg->notificationDataSize && !s->deleted; i++) {
        const uarc_extension_object *e = &msg->notificationData[i];
        if (e->encoding != UARC_EXTENSION_OBJECT_DECODED)
            continue;
        if (e->content.decoded.type == UARC_T(DataChangeNotification)) {
            const uarc_DataChangeNotification *d = e->content.decoded.data;
            for (size_t j = 0; j < d->monitoredItemsSize && !s->deleted; j++) {
                const uarc_MonitoredItemNotification *n = &d->monitoredItems[j];
                item *it = item_of(s, n->clientHandle);
                if (!it || it->event_filter || !s->cfg.callbacks.data_change)
                    continue;
                if (repeated(it, &n->value)) {
                    log_sub(s, UARC_LOG_DEBUG, "item %u: the same value again in message %u",
                            n->clientHandle, seq);
                    continue;
                }
                uarc_data_change change = {
                    s, id, seq, n->clientHandle, it->params.user_data, &it->params.node, &n->value};
                s->cfg.callbacks.data_change(s->cfg.callbacks.user_data, &change);
            }
        } else if (e->content.decoded.type == UARC_T(EventNotificationList)) {
            const uarc_EventNotificationList *l = e->content.decoded.data;
            for (size_t j = 0; j < l->eventsSize && !s->deleted; j++) {
                const uarc_EventFieldList *f = &l->events[j];
                item *it = item_of(s, f->clientHandle);
                if (!it || !it->event_filter || !s->cfg.callbacks.event)
                    continue;
                uarc_event event = {s,
                                    id,
                                    seq,
                                    f->clientHandle,
                                    it->params.user_data,
                                    &it->params.node,
                                    f->eventFields,
                                    f->eventFieldsSize};
                s->cfg.callbacks.event(s->cfg.callbacks.user_data, &event);
            }
        } else if (e->content.decoded.type == UARC_T(StatusChangeNotification)) {
            status_change(s, e->content.decoded.data);
        }
    }
    if (!s->deleted && s->cfg.callbacks.message_delivered)
        s->cfg.callbacks.message_delivered(s->cfg.callbacks.user_data, s, seq);
    s->delivering--;
    if (!s->cfg.deferred_ack && id && !s->deleted)
        queue_ack(s->mgr, id, seq);
}

static bool is_available(const uarc_subscription *s, uint32_t n)
{
    for (size_t i = 0; i < s->available_count; i++)
        if (s->available[i] == n)
            return true;
    return false;
}

static void keep_available(uarc_subscription *s, const uint32_t *numbers, size_t count)
{
    if (count > MAX_AVAILABLE)
        count = MAX_AVAILABLE;
    if (count > s->available_count) {
        uint32_t *grown = uarc__realloc(s->available, count * sizeof *grown);
        if (!grown) {
            s->available_count = 0;
            return;
        }
        s->available = grown;
    }
    if (count)
        memcpy(s->available, numbers, count * sizeof *numbers);
    s->available_count = count;
}

static void on_republish(void *user_data, uarc_status status, void *response);

static void send_republish_of(uarc_subscription *s, uint32_t sequence)
{
    uarc_RepublishRequest req;
    uarc_init(&req, UARC_T(RepublishRequest));
    req.subscriptionId = s->id;
    req.retransmitSequenceNumber = sequence;
    if (uarc_client_send(s->mgr->client, &req, UARC_T(RepublishRequest), UARC_T(RepublishResponse),
                         0, on_republish, s, NULL) == UARC_Good) {
        s->republishing = true;
        s->asked = sequence;
        s->inflight++;
    }
}

static void send_republish(uarc_subscription *s)
{
    send_republish_of(s, s->next);
}

/* Moves `msg` into the held messages in order; false when it is a duplicate or there is no
 * room. */
static bool hold(uarc_subscription *s, uarc_NotificationMessage *msg)
{
    size_t i = 0;
    while (i < s->held_count && seq_before(s->held[i].sequenceNumber, msg->sequenceNumber))
        i++;
    if (i < s->held_count && s->held[i].sequenceNumber == msg->sequenceNumber)
        return false;
    if (s->held_count == MAX_HELD)
        return false;
    memmove(s->held + i + 1, s->held + i, (s->held_count - i) * sizeof *s->held);
    s->held[i] = *msg;
    memset(msg, 0, sizeof *msg);
    s->held_count++;
    return true;
}

static void deliver_first_held(uarc_subscription *s)
{
    uarc_NotificationMessage msg = s->held[0];
    memmove(s->held, s->held + 1, --s->held_count * sizeof *s->held);
    s->next = seq_after(msg.sequenceNumber);
    deliver(s, &msg);
    uarc_clear(&msg, UARC_T(NotificationMessage));
}

/* Delivers what is in order; for a hole, Republishes the next number when the server still
 * has it, else reports the numbers it no longer has as a gap. */
static void drain(uarc_subscription *s)
{
    while (!s->deleted && s->next && s->id) {
        if (s->held_count && s->held[0].sequenceNumber == s->next) {
            deliver_first_held(s);
            continue;
        }
        if (s->held_count && seq_before(s->held[0].sequenceNumber, s->next)) {
            uarc_clear(&s->held[0], UARC_T(NotificationMessage)); /* delivered by a Republish */
            memmove(s->held, s->held + 1, --s->held_count * sizeof *s->held);
            continue;
        }
        if (!seq_before(s->next, s->horizon) || s->republishing || s->phase == PHASE_CATCHING_UP ||
            s->phase == PHASE_TRANSFERRING)
            return;
        if (is_available(s, s->next)) {
            if (session_active(s->mgr))
                send_republish(s);
            return;
        }
        /* Lost: up to the next number the server still has, the next held one or the horizon
         * (found without walking the numbers: a hostile horizon may be 2^31 ahead). */
        uint32_t end = s->horizon;
        if (s->held_count && seq_before(s->held[0].sequenceNumber, end))
            end = s->held[0].sequenceNumber;
        for (size_t i = 0; i < s->available_count; i++)
            if (seq_before(s->next, s->available[i]) && seq_before(s->available[i], end))
                end = s->available[i];
        uint32_t from = s->next;
        s->next = end;
        report_gap(s, from, seq_preceding(end), UARC_BadMessageNotAvailable);
    }
}

/* A message or keep-alive for `s` from a Publish or Republish. */
static void take_message(uarc_subscription *s, uarc_NotificationMessage *msg)
{
    uint32_t seq = msg->sequenceNumber;
    if (seq == 0)
        return; /* not a sequence number; nothing to order it by */
    bool keepalive = msg->notificationDataSize == 0;
    if (!s->next) { /* the first message of this subscription id tells where we are */
        s->next = seq;
        s->horizon = seq;
    }
    uint32_t end = keepalive ? seq : seq_after(seq);
    if (seq_before(s->horizon, end))
        s->horizon = end;
    if (keepalive)
        return;
    if (seq_before(seq, s->next)) {
        log_sub(s, UARC_LOG_DEBUG, "message %u again: dropped", seq);
        return;
    }
    if (seq == s->next && !s->held_count) {
        s->next = seq_after(seq);
        deliver(s, msg);
        return;
    }
    if (!hold(s, msg) && s->held_count == MAX_HELD) {
        /* No room to wait any longer for the hole: give it up. */
        uint32_t before = s->held[0].sequenceNumber;
        report_gap(s, s->next, seq_preceding(before), UARC_BadResourceUnavailable);
        s->next = before;
        drain(s);
        if (!s->deleted)
            hold(s, msg);
    }
}

/* ---- the Republish loop after a resume or a transfer ---- */

static void caught_up(uarc_subscription *s)
{
    s->phase = PHASE_LIVE;
    s->last_heard = uarc__client_now(s->mgr->client);
    s->stalled = false;
    s->mgr->no_subscription = false;
    if (s->state != UARC_SUBSCRIPTION_TRANSFERRED)
        set_state(s, UARC_SUBSCRIPTION_RESUMED, UARC_Good);
    drain(s);
    send_items(s);
    refill(s->mgr);
}

static void catch_up(uarc_subscription *s)
{
    if (!s->next) {
        caught_up(s);
        return;
    }
    s->phase = PHASE_CATCHING_UP;
    send_republish(s);
    if (!s->republishing)
        s->phase = PHASE_LIVE; /* could not send: the connection is going; decided again later */
}

static void make_again(uarc_subscription *s, uarc_status reason);

static void on_republish(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    s->inflight--;
    s->republishing = false;
    uarc_RepublishResponse *r = response;
    if (s->probing) {
        /* Only BadSubscriptionIdInvalid tells something: the server lost the subscription. */
        s->probing = false;
        if (status == UARC_BadSubscriptionIdInvalid && !s->deleted && session_active(s->mgr))
            make_again(s, status);
        else if (!s->deleted)
            drain(s);
        sweep(s->mgr);
        return;
    }
    manager *m = s->mgr;
    if (s->deleted) {
        sweep(m);
        return;
    }
    uint32_t asked = s->asked;
    bool got = status == UARC_Good && r && r->notificationMessage.sequenceNumber == asked &&
               r->notificationMessage.notificationDataSize > 0;
    if (s->next != asked && session_active(m)) {
        /* A PublishResponse brought that message meanwhile: nothing to fill, nothing lost. */
    } else if (got) {
        s->last_heard = uarc__client_now(m->client);
        log_sub(s, UARC_LOG_DEBUG, "Republish: message %u recovered", asked);
        take_message(s, &r->notificationMessage);
    } else if (status == UARC_BadSubscriptionIdInvalid) {
        make_again(s, status);
        return;
    } else if (status == UARC_Good || status == UARC_BadMessageNotAvailable) {
        /* Not there any more (also a Good answer with another or no message: a server that does
         * that must not keep us asking forever). */
        if (s->phase == PHASE_CATCHING_UP) {
            caught_up(s);
            return;
        }
        report_gap(s, asked, asked, UARC_BadMessageNotAvailable);
        s->next = seq_after(asked);
    } else {
        /* The connection went, or a timeout: the session hooks decide what comes next. */
        if (s->phase == PHASE_CATCHING_UP && session_active(m))
            caught_up(s);
        return;
    }
    if (s->phase == PHASE_CATCHING_UP && session_active(m)) {
        send_republish(s);
        if (!s->republishing)
            caught_up(s);
        return;
    }
    drain(s);
}

/* ---- the publish pipeline ---- */

static void on_publish(void *user_data, uarc_status status, void *response);

static void send_publish(manager *m)
{
    uarc_PublishRequest req;
    uarc_init(&req, UARC_T(PublishRequest));
    size_t n = m->ack_count < ACKS_PER_PUBLISH ? m->ack_count : ACKS_PER_PUBLISH;
    req.subscriptionAcknowledgementsSize = n;
    req.subscriptionAcknowledgements = n ? m->acks : NULL;
    uint32_t timeout = publish_timeout(m);
    req.requestHeader.timeoutHint = timeout;
    if (uarc_client_send(m->client, &req, UARC_T(PublishRequest), UARC_T(PublishResponse), timeout,
                         on_publish, m, NULL) != UARC_Good) {
        m->retry_at = uarc__client_now(m->client) + PUBLISH_RETRY_MS;
        return;
    }
    m->outstanding++;
    memmove(m->acks, m->acks + n, (m->ack_count - n) * sizeof *m->acks);
    m->ack_count -= n;
}

static void refill(manager *m)
{
    if (!session_active(m) || m->no_subscription || m->retry_at >= 0)
        return;
    uint32_t want = wanted(m);
    while (m->outstanding < want && m->retry_at < 0 && session_active(m))
        send_publish(m);
}

static void on_publish(void *user_data, uarc_status status, void *response)
{
    manager *m = user_data;
    if (m->outstanding)
        m->outstanding--;
    uarc_PublishResponse *r = response;
    if (status == UARC_Good && r) {
        uarc_subscription *s = find_by_id(m, r->subscriptionId);
        if (s && (s->phase == PHASE_LIVE || s->phase == PHASE_CATCHING_UP)) {
            s->last_heard = uarc__client_now(m->client);
            if (s->stalled) {
                s->stalled = false;
                set_state(s, UARC_SUBSCRIPTION_RESUMED, UARC_Good); /* heard from again */
            }
            keep_available(s, r->availableSequenceNumbers, r->availableSequenceNumbersSize);
            s->delivering++;
            take_message(s, &r->notificationMessage);
            if (!s->deleted)
                drain(s);
            s->delivering--;
            sweep(m);
        }
        refill(m);
        return;
    }
    switch (status) {
    case UARC_BadTooManyPublishRequests:
        /* The server holds no more: send the next only when one of those comes back. */
        m->throttle = m->outstanding ? m->outstanding : 1;
        uarc__log(uarc__client_logger(m->client), UARC_LOG_INFO, "subscription",
                  "BadTooManyPublishRequests: at most %u PublishRequests from now on", m->throttle);
        return;
    case UARC_BadNoSubscription:
        m->no_subscription = true; /* harmless; resumes with the next (re)created subscription */
        return;
    case UARC_BadTimeout:
    case UARC_BadRequestTimeout:
        refill(m);
        return;
    default:
        if (session_active(m) && m->retry_at < 0)
            m->retry_at = uarc__client_now(m->client) + PUBLISH_RETRY_MS;
        return;
    }
}

/* ---- creating, transferring, recreating ---- */

static uint32_t lifetime_for(const uarc_subscription_config *cfg)
{
    if (cfg->lifetime_count)
        return cfg->lifetime_count;
    double intervals = ceil(LIFETIME_COVER_MS / cfg->publishing_interval_ms);
    uint32_t lifetime = intervals > 1e6 ? 1000000u : (uint32_t)intervals;
    return lifetime < 3 * cfg->max_keepalive_count ? 3 * cfg->max_keepalive_count : lifetime;
}

static void on_create_subscription(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    s->inflight--;
    if (s->deleted) {
        /* Deleted while being created: delete it on the server too. */
        uarc_CreateSubscriptionResponse *r = response;
        if (status == UARC_Good && r && session_active(s->mgr)) {
            uarc_DeleteSubscriptionsRequest req;
            uarc_init(&req, UARC_T(DeleteSubscriptionsRequest));
            req.subscriptionIdsSize = 1;
            req.subscriptionIds = &r->subscriptionId;
            uarc_client_send(s->mgr->client, &req, UARC_T(DeleteSubscriptionsRequest),
                             UARC_T(DeleteSubscriptionsResponse), 0, ignore_response, NULL, NULL);
        }
        sweep(s->mgr);
        return;
    }
    s->phase = PHASE_NEW;
    if (status != UARC_Good || !response) {
        if (session_active(s->mgr))
            set_state(s, UARC_SUBSCRIPTION_FAILED, status);
        return;
    }
    uarc_CreateSubscriptionResponse *r = response;
    s->id = r->subscriptionId;
    s->revised_interval =
        sane_interval(r->revisedPublishingInterval, s->cfg.publishing_interval_ms);
    s->revised_keepalive = r->revisedMaxKeepAliveCount;
    s->revised_lifetime = r->revisedLifetimeCount;
    s->next = s->horizon = 0;
    s->available_count = 0;
    s->phase = PHASE_LIVE;
    s->last_heard = uarc__client_now(s->mgr->client);
    s->stalled = false;
    s->mgr->no_subscription = false;
    set_state(s, s->recreate ? UARC_SUBSCRIPTION_RECREATED : UARC_SUBSCRIPTION_CREATED, UARC_Good);
    s->recreate = false;
    send_items(s);
    refill(s->mgr);
}

static void create_subscription(uarc_subscription *s)
{
    uarc_CreateSubscriptionRequest req;
    uarc_init(&req, UARC_T(CreateSubscriptionRequest));
    req.requestedPublishingInterval = s->cfg.publishing_interval_ms;
    req.requestedMaxKeepAliveCount = s->cfg.max_keepalive_count;
    req.requestedLifetimeCount = lifetime_for(&s->cfg);
    req.maxNotificationsPerPublish = s->cfg.max_notifications_per_publish;
    req.publishingEnabled = !s->cfg.publishing_disabled;
    req.priority = s->cfg.priority;
    if (uarc_client_send(s->mgr->client, &req, UARC_T(CreateSubscriptionRequest),
                         UARC_T(CreateSubscriptionResponse), 0, on_create_subscription, s,
                         NULL) == UARC_Good) {
        s->phase = PHASE_CREATING;
        s->inflight++;
    }
}

/* The server lost the subscription: report what will never come and create it again. */
static void make_again(uarc_subscription *s, uarc_status reason)
{
    report_gap(s, s->next ? s->next : 1, 0, reason);
    for (size_t i = 0; i < s->held_count; i++)
        uarc_clear(&s->held[i], UARC_T(NotificationMessage));
    s->held_count = 0;
    s->id = 0;
    s->next = s->horizon = 0;
    s->available_count = 0;
    s->recreate = true;
    s->phase = PHASE_NEW;
    s->batch_in_flight = false;
    for (size_t i = 0; i < s->item_count; i++)
        if (s->items[i].state != ITEM_REMOVED) {
            s->items[i].state = ITEM_PENDING;
            s->items[i].server_id = 0;
        }
    if (session_active(s->mgr))
        create_subscription(s);
}

static void on_items_created(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    s->inflight--;
    s->batch_in_flight = false;
    uarc_CreateMonitoredItemsResponse *r = response;
    size_t k = 0;
    for (size_t i = 0; i < s->item_count; i++) {
        item *it = &s->items[i];
        if (it->state != ITEM_CREATING)
            continue;
        if (!r || status != UARC_Good) {
            it->state = ITEM_PENDING; /* retried with the next batch */
            continue;
        }
        uarc_status result =
            k < r->resultsSize ? r->results[k].statusCode : UARC_BadUnexpectedError;
        it->server_id = k < r->resultsSize ? r->results[k].monitoredItemId : 0;
        k++;
        it->state = uarc_status_is_bad(result) ? ITEM_FAILED : ITEM_ACTIVE;
        if (s->cfg.callbacks.item_created && !s->deleted) {
            s->delivering++;
            s->cfg.callbacks.item_created(s->cfg.callbacks.user_data, s, (uint32_t)(i + 1), result);
            s->delivering--;
        }
    }
    if (s->deleted) {
        sweep(s->mgr);
        return;
    }
    if (status == UARC_BadSubscriptionIdInvalid) {
        make_again(s, status);
        return;
    }
    if (status == UARC_BadTooManyOperations && s->cfg.item_batch_size > 1) {
        /* Beyond the server's MaxMonitoredItemsPerCall: halve the batch and go on. */
        s->cfg.item_batch_size /= 2;
        log_sub(s, UARC_LOG_INFO, "CreateMonitoredItems: BadTooManyOperations, %u items per call",
                s->cfg.item_batch_size);
        send_items(s);
    } else if (status == UARC_Good) {
        send_items(s);
    } else if (session_active(s->mgr)) {
        log_sub(s, UARC_LOG_WARNING, "CreateMonitoredItems: %s", uarc_status_name(status));
    }
}

static uarc_extension_object filter_of(const uarc_monitored_item_params *p,
                                       uarc_DataChangeFilter *f)
{
    uarc_extension_object e = {0};
    if (p->trigger == UARC_MONITOR_TRIGGER_STATUS_VALUE && p->deadband_type == 0)
        return e;
    f->trigger = p->trigger == UARC_MONITOR_TRIGGER_STATUS ? UARC_DataChangeTrigger_Status
                 : p->trigger == UARC_MONITOR_TRIGGER_STATUS_VALUE_TIMESTAMP
                     ? UARC_DataChangeTrigger_StatusValueTimestamp
                     : UARC_DataChangeTrigger_StatusValue;
    f->deadbandType = (uint32_t)p->deadband_type;
    f->deadbandValue = p->deadband_value;
    e.encoding = UARC_EXTENSION_OBJECT_DECODED;
    e.content.decoded.type = UARC_T(DataChangeFilter);
    e.content.decoded.data = f;
    return e;
}

static void on_limits(void *user_data, uarc_status status, void *response)
{
    manager *m = user_data;
    if (m->limits != LIMITS_READING)
        return; /* sent before the connection was lost: read again on this session */
    if (!session_active(m)) {
        m->limits = LIMITS_UNKNOWN;
        return;
    }
    uarc_ReadResponse *r = response;
    const uarc_data_value *v = status == UARC_Good && r && r->resultsSize == 1 ? r->results : NULL;
    /* Anything but a UInt32 (no such node, no access, a fault): no limit known, and a
     * BadTooManyOperations still halves the batch. */
    m->max_items_per_call = v && !uarc_status_is_bad(v->status) &&
                                    v->value.type == UARC_T(UInt32) && !v->value.is_array &&
                                    v->value.data
                                ? *(const uint32_t *)v->value.data
                                : 0;
    m->limits = LIMITS_KNOWN;
    if (m->max_items_per_call)
        uarc__log(uarc__client_logger(m->client), UARC_LOG_DEBUG, "subscription",
                  "MaxMonitoredItemsPerCall %u", m->max_items_per_call);
    for (size_t i = 0; i < m->sub_count; i++)
        send_items(m->subs[i]);
}

/* Reads Server/ServerCapabilities/OperationLimits/MaxMonitoredItemsPerCall. */
static void read_limits(manager *m)
{
    if (m->limits != LIMITS_UNKNOWN)
        return;
    uarc_ReadValueId id = {
        .nodeId = uarc_nodeid_numeric(
            0, UARC_NS0ID_Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall),
        .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.timestampsToReturn = UARC_TimestampsToReturn_Neither;
    req.nodesToReadSize = 1;
    req.nodesToRead = &id;
    if (uarc_client_send(m->client, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0, on_limits,
                         m, NULL) == UARC_Good)
        m->limits = LIMITS_READING;
}

/* The item's MonitoringParameters; the filter may point into *f or the item. */
static void parameters_of(const item *it, uint32_t handle, uarc_MonitoringParameters *p,
                          uarc_DataChangeFilter *f)
{
    p->clientHandle = handle;
    double sampling = it->params.sampling_interval_ms;
    p->samplingInterval = sampling == 0 ? -1 : sampling < 0 ? 0 : sampling;
    p->queueSize = it->params.queue_size ? it->params.queue_size : 1;
    p->discardOldest = !it->params.discard_newest;
    p->filter = filter_of(&it->params, f);
    if (it->event_filter) {
        p->samplingInterval = 0; /* Part 4 5.12.1.2: events ask 0 */
        p->filter =
            (uarc_extension_object){.encoding = UARC_EXTENSION_OBJECT_DECODED,
                                    .content.decoded = {UARC_T(EventFilter), it->event_filter}};
    }
}

/* Sends the next batch of items waiting to be created. */
static void send_items(uarc_subscription *s)
{
    if (s->batch_in_flight || !s->id || s->phase != PHASE_LIVE || !session_active(s->mgr) ||
        s->deleted)
        return;
    manager *m = s->mgr;
    if (m->limits != LIMITS_KNOWN) {
        bool pending = false;
        for (size_t i = 0; i < s->item_count && !pending; i++)
            pending = s->items[i].state == ITEM_PENDING;
        if (pending)
            read_limits(m); /* the batch goes out when the answer is in */
        return;
    }
    uint32_t batch = s->cfg.item_batch_size;
    if (m->max_items_per_call && m->max_items_per_call < batch)
        batch = m->max_items_per_call;
    uarc_MonitoredItemCreateRequest *reqs = uarc__calloc(batch, sizeof *reqs);
    uarc_DataChangeFilter *filters = uarc__calloc(batch, sizeof *filters);
    size_t n = 0;
    for (size_t i = 0; reqs && filters && i < s->item_count && n < batch; i++) {
        item *it = &s->items[i];
        if (it->state != ITEM_PENDING)
            continue;
        uarc_MonitoredItemCreateRequest *r = &reqs[n];
        r->itemToMonitor.nodeId = it->params.node;
        r->itemToMonitor.attributeId = it->event_filter          ? UARC_ATTRIBUTEID_EventNotifier
                                       : it->params.attribute_id ? it->params.attribute_id
                                                                 : UARC_ATTRIBUTEID_Value;
        r->monitoringMode = it->mode;
        parameters_of(it, (uint32_t)(i + 1), &r->requestedParameters, &filters[n]);
        n++;
    }
    if (n) {
        uarc_CreateMonitoredItemsRequest req;
        uarc_init(&req, UARC_T(CreateMonitoredItemsRequest));
        req.subscriptionId = s->id;
        req.timestampsToReturn = UARC_TimestampsToReturn_Both;
        req.itemsToCreateSize = n;
        req.itemsToCreate = reqs;
        if (uarc_client_send(s->mgr->client, &req, UARC_T(CreateMonitoredItemsRequest),
                             UARC_T(CreateMonitoredItemsResponse), 0, on_items_created, s,
                             NULL) == UARC_Good) {
            s->inflight++;
            s->batch_in_flight = true;
            /* the same items, in the same order, as the request */
            for (size_t i = 0, k = 0; i < s->item_count && k < n; i++)
                if (s->items[i].state == ITEM_PENDING) {
                    s->items[i].state = ITEM_CREATING;
                    k++;
                }
        }
    }
    uarc__free(reqs);
    uarc__free(filters);
}

static void on_transfer(void *user_data, uarc_status status, void *response)
{
    manager *m = user_data;
    uarc_TransferSubscriptionsResponse *r = response;
    size_t k = 0;
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        if (s->phase != PHASE_TRANSFERRING)
            continue;
        s->inflight--;
        size_t index = k++;
        if (s->deleted)
            continue;
        if (!session_active(m)) {
            s->phase = PHASE_LIVE; /* decided again at the next activation */
            continue;
        }
        uarc_status result = status != UARC_Good           ? status
                             : r && index < r->resultsSize ? r->results[index].statusCode
                                                           : UARC_BadUnexpectedError;
        if (uarc_status_is_bad(result)) {
            s->phase = PHASE_LIVE;
            make_again(s, result);
            continue;
        }
        keep_available(s, r->results[index].availableSequenceNumbers,
                       r->results[index].availableSequenceNumbersSize);
        set_state(s, UARC_SUBSCRIPTION_TRANSFERRED, result);
        catch_up(s);
    }
    sweep(m);
    refill(m);
}

/* A new session replaces the one the subscriptions lived in: move them (Part 4 §6.7 step 2). */
static void transfer(manager *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->sub_count; i++)
        n += m->subs[i]->id && !m->subs[i]->deleted;
    if (!n)
        return;
    uint32_t *ids = uarc__calloc(n, sizeof *ids);
    if (!ids)
        return;
    size_t k = 0;
    for (size_t i = 0; i < m->sub_count; i++)
        if (m->subs[i]->id && !m->subs[i]->deleted)
            ids[k++] = m->subs[i]->id;
    uarc_TransferSubscriptionsRequest req;
    uarc_init(&req, UARC_T(TransferSubscriptionsRequest));
    req.subscriptionIdsSize = n;
    req.subscriptionIds = ids;
    req.sendInitialValues = true;
    if (uarc_client_send(m->client, &req, UARC_T(TransferSubscriptionsRequest),
                         UARC_T(TransferSubscriptionsResponse), 0, on_transfer, m,
                         NULL) == UARC_Good) {
        for (size_t i = 0; i < m->sub_count; i++)
            if (m->subs[i]->id && !m->subs[i]->deleted) {
                m->subs[i]->phase = PHASE_TRANSFERRING;
                m->subs[i]->inflight++;
            }
    }
    uarc__free(ids);
}

/* ---- client hooks ---- */

static void on_session_active(void *user_data, bool resumed)
{
    manager *m = user_data;
    m->throttle = 0;
    m->outstanding = 0;
    m->no_subscription = false;
    m->retry_at = -1;
    if (!resumed && m->limits == LIMITS_KNOWN)
        m->limits = LIMITS_UNKNOWN; /* another session: perhaps another server */
    /* Acknowledgements name the old subscription ids; after a transfer they still hold. */
    if (!resumed)
        transfer(m);
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        if (s->deleted || s->phase == PHASE_TRANSFERRING)
            continue;
        if (!s->id) {
            if (s->phase == PHASE_NEW)
                create_subscription(s);
            continue;
        }
        for (size_t j = 0; j < s->item_count; j++)
            if (s->items[j].state == ITEM_CREATING)
                s->items[j].state = ITEM_PENDING;
        s->batch_in_flight = false;
        catch_up(s);
    }
    refill(m);
}

static void on_connection_lost(void *user_data)
{
    manager *m = user_data;
    m->outstanding = 0;
    if (m->limits == LIMITS_READING)
        m->limits = LIMITS_UNKNOWN;
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        s->republishing = s->probing = false;
        if (s->phase == PHASE_CREATING)
            s->phase = PHASE_NEW;
        else if (s->phase != PHASE_NEW)
            s->phase = PHASE_LIVE;
    }
}

static int64_t on_next_deadline(void *user_data)
{
    manager *m = user_data;
    int64_t next = m->retry_at;
    for (size_t i = 0; i < m->sub_count; i++) {
        const uarc_subscription *s = m->subs[i];
        if (s->phase != PHASE_LIVE || !s->id || s->stalled || s->deleted)
            continue;
        int64_t t = stall_due(s);
        if (next < 0 || t < next)
            next = t;
    }
    return next;
}

static void on_tick(void *user_data, int64_t now)
{
    manager *m = user_data;
    if (m->retry_at >= 0 && now >= m->retry_at) {
        m->retry_at = -1;
        refill(m);
    }
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        if (s->phase != PHASE_LIVE || !s->id || s->stalled || s->deleted)
            continue;
        if (now >= stall_due(s)) {
            s->stalled = true;
            set_state(s, UARC_SUBSCRIPTION_STALLED, UARC_BadTimeout);
            /* Does the server still have it? A Republish answers BadSubscriptionIdInvalid when
             * not, and the subscription is then created again. */
            if (!s->deleted && !s->republishing && session_active(m)) {
                send_republish_of(s, s->next ? s->next : 1);
                s->probing = s->republishing;
            }
        }
    }
    sweep(m);
}

static void on_destroy(void *user_data)
{
    manager *m = user_data;
    for (size_t i = 0; i < m->sub_count; i++)
        free_subscription(m->subs[i]);
    uarc__free(m->subs);
    uarc__free(m->acks);
    uarc__free(m);
}

static manager *manager_of(uarc_client *client)
{
    manager *m = uarc__client_hooks_user_data(client);
    if (m)
        return m;
    m = uarc__calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->acks = uarc__calloc(MAX_ACKS, sizeof *m->acks);
    if (!m->acks) {
        uarc__free(m);
        return NULL;
    }
    m->client = client;
    m->cap = DEFAULT_PUBLISH_CAP;
    m->retry_at = -1;
    uarc__client_hooks hooks = {on_session_active, on_connection_lost, on_next_deadline,
                                on_tick,           on_destroy,         m};
    uarc__client_set_hooks(client, &hooks);
    return m;
}

/* ---- API ---- */

UARC_API uarc_status uarc_subscription_new(uarc_client *client,
                                           const uarc_subscription_config *config,
                                           uarc_subscription **subscription)
{
    *subscription = NULL;
    manager *m = manager_of(client);
    if (!m)
        return UARC_BadOutOfMemory;
    if (m->sub_count == m->sub_capacity) {
        size_t cap = m->sub_capacity ? 2 * m->sub_capacity : 4;
        uarc_subscription **grown = uarc__realloc(m->subs, cap * sizeof *grown);
        if (!grown)
            return UARC_BadOutOfMemory;
        m->subs = grown;
        m->sub_capacity = cap;
    }
    uarc_subscription *s = uarc__calloc(1, sizeof *s);
    if (!s)
        return UARC_BadOutOfMemory;
    s->mgr = m;
    if (config)
        s->cfg = *config;
    if (!(s->cfg.publishing_interval_ms > 0))
        s->cfg.publishing_interval_ms = DEFAULT_INTERVAL_MS;
    if (!s->cfg.max_keepalive_count)
        s->cfg.max_keepalive_count = DEFAULT_KEEPALIVE;
    if (!s->cfg.item_batch_size)
        s->cfg.item_batch_size = DEFAULT_BATCH;
    s->phase = PHASE_NEW;
    m->subs[m->sub_count++] = s;
    *subscription = s;
    if (session_active(m))
        create_subscription(s);
    return UARC_Good;
}

UARC_API void uarc_subscription_delete(uarc_subscription *s)
{
    if (!s || s->deleted)
        return;
    manager *m = s->mgr;
    if (s->id && session_active(m)) {
        uarc_DeleteSubscriptionsRequest req;
        uarc_init(&req, UARC_T(DeleteSubscriptionsRequest));
        req.subscriptionIdsSize = 1;
        req.subscriptionIds = &s->id;
        uarc_client_send(m->client, &req, UARC_T(DeleteSubscriptionsRequest),
                         UARC_T(DeleteSubscriptionsResponse), 0, ignore_response, NULL, NULL);
    }
    s->deleted = true;
    sweep(m);
}

/* Adds an item (data, or event with `event_filter`, taken over on success). */
static uarc_status add_item(uarc_subscription *s, const uarc_monitored_item_params *params,
                            uarc_EventFilter *event_filter, uint32_t *handle)
{
    if (s->item_count >= MAX_ITEMS)
        return UARC_BadTooManyMonitoredItems;
    if (s->item_count == s->item_capacity) {
        size_t cap = s->item_capacity ? 2 * s->item_capacity : 8;
        item *grown = uarc__realloc(s->items, cap * sizeof *grown);
        if (!grown)
            return UARC_BadOutOfMemory;
        s->items = grown;
        s->item_capacity = cap;
    }
    item *it = &s->items[s->item_count];
    memset(it, 0, sizeof *it);
    it->params = *params;
    if (uarc_copy(&params->node, &it->params.node, UARC_T(NodeId)) != UARC_Good)
        return UARC_BadOutOfMemory;
    it->state = ITEM_PENDING;
    it->event_filter = event_filter;
    it->mode = UARC_MonitoringMode_Reporting;
    s->item_count++;
    if (handle)
        *handle = (uint32_t)s->item_count;
    send_items(s);
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_add_item(uarc_subscription *s,
                                                const uarc_monitored_item_params *params,
                                                uint32_t *handle)
{
    return add_item(s, params, NULL, handle);
}

/* Parses "[ns:]Name/[ns:]Name" into qualified names borrowing from `path`. Returns the count,
 * 0 when an element is empty or too long or there are more than `capacity`. */
static size_t parse_path(const char *path, uarc_qualified_name *out, size_t capacity)
{
    size_t n = 0;
    for (const char *p = path;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        uint16_t ns = 0;
        const char *colon = memchr(p, ':', len);
        if (colon && colon > p) {
            unsigned long v = 0;
            const char *d = p;
            while (d < colon && *d >= '0' && *d <= '9' && v <= 65535)
                v = v * 10 + (unsigned long)(*d++ - '0');
            if (d == colon && v <= 65535) {
                ns = (uint16_t)v;
                len -= (size_t)(colon + 1 - p);
                p = colon + 1;
            }
        }
        if (len == 0 || len > MAX_PATH_NAME || n == capacity)
            return 0;
        out[n++] = (uarc_qualified_name){ns, {len, (uint8_t *)p}};
        if (!end)
            return n;
        p = end + 1;
    }
}

UARC_API uarc_status uarc_subscription_add_event_item(uarc_subscription *s,
                                                      const uarc_event_item_params *params,
                                                      uint32_t *handle)
{
    if (params->select_count == 0 || params->select_count > MAX_SELECT || !params->select)
        return UARC_BadEventFilterInvalid;
    enum { MAX_DEPTH = 8 };
    uarc_SimpleAttributeOperand clauses[MAX_SELECT];
    uarc_qualified_name names[MAX_SELECT][MAX_DEPTH];
    for (size_t i = 0; i < params->select_count; i++) {
        size_t depth = params->select[i] ? parse_path(params->select[i], names[i], MAX_DEPTH) : 0;
        if (!depth)
            return UARC_BadEventFilterInvalid;
        clauses[i] = (uarc_SimpleAttributeOperand){
            .typeDefinitionId = uarc_nodeid_numeric(0, UARC_NS0ID_BaseEventType),
            .browsePathSize = depth,
            .browsePath = names[i],
            .attributeId = UARC_ATTRIBUTEID_Value};
    }
    uarc_EventFilter filter = {.selectClausesSize = params->select_count, .selectClauses = clauses};
    uarc_LiteralOperand literal = {{0}};
    uarc_extension_object operand = {.encoding = UARC_EXTENSION_OBJECT_DECODED,
                                     .content.decoded = {UARC_T(LiteralOperand), &literal}};
    uarc_ContentFilterElement of_type = {.filterOperator = UARC_FilterOperator_OfType,
                                         .filterOperandsSize = 1,
                                         .filterOperands = &operand};
    uarc_nodeid null_id = uarc_nodeid_numeric(0, 0);
    if (!uarc_equal(&params->of_type, &null_id, UARC_T(NodeId))) {
        literal.value.type = UARC_T(NodeId);
        literal.value.data = (void *)&params->of_type; /* only copied below */
        filter.whereClause = (uarc_ContentFilter){1, &of_type};
    }
    uarc_EventFilter *owned = uarc_new(UARC_T(EventFilter));
    if (!owned || uarc_copy(&filter, owned, UARC_T(EventFilter)) != UARC_Good) {
        uarc_delete(owned, UARC_T(EventFilter));
        return UARC_BadOutOfMemory;
    }
    uarc_monitored_item_params data = {.node = params->node,
                                       .queue_size = params->queue_size ? params->queue_size
                                                                        : DEFAULT_EVENT_QUEUE,
                                       .user_data = params->user_data};
    uint32_t h;
    uarc_status status = add_item(s, &data, owned, &h);
    if (status != UARC_Good) {
        uarc_delete(owned, UARC_T(EventFilter));
        return status;
    }
    if (handle)
        *handle = h;
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_remove_item(uarc_subscription *s, uint32_t handle)
{
    if (!item_of(s, handle))
        return UARC_BadMonitoredItemIdInvalid;
    item *it = &s->items[handle - 1];
    if (it->state == ITEM_ACTIVE && s->id && session_active(s->mgr)) {
        uarc_DeleteMonitoredItemsRequest req;
        uarc_init(&req, UARC_T(DeleteMonitoredItemsRequest));
        req.subscriptionId = s->id;
        req.monitoredItemIdsSize = 1;
        req.monitoredItemIds = &it->server_id;
        uarc_client_send(s->mgr->client, &req, UARC_T(DeleteMonitoredItemsRequest),
                         UARC_T(DeleteMonitoredItemsResponse), 0, ignore_response, NULL, NULL);
    }
    it->state = ITEM_REMOVED;
    return UARC_Good;
}

static void on_modified(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    s->inflight--;
    uarc_ModifySubscriptionResponse *r = response;
    if (status == UARC_Good && r && !s->deleted) {
        s->revised_interval =
            sane_interval(r->revisedPublishingInterval, s->cfg.publishing_interval_ms);
        s->revised_keepalive = r->revisedMaxKeepAliveCount;
        s->revised_lifetime = r->revisedLifetimeCount;
    }
    sweep(s->mgr);
}

UARC_API uarc_status uarc_subscription_modify(uarc_subscription *s, double publishing_interval_ms,
                                              uint32_t max_keepalive_count, uint32_t lifetime_count)
{
    if (publishing_interval_ms > 0)
        s->cfg.publishing_interval_ms = publishing_interval_ms;
    if (max_keepalive_count)
        s->cfg.max_keepalive_count = max_keepalive_count;
    if (lifetime_count)
        s->cfg.lifetime_count = lifetime_count;
    if (!s->id || !session_active(s->mgr))
        return UARC_Good; /* applies when it is created */
    uarc_ModifySubscriptionRequest req;
    uarc_init(&req, UARC_T(ModifySubscriptionRequest));
    req.subscriptionId = s->id;
    req.requestedPublishingInterval = s->cfg.publishing_interval_ms;
    req.requestedMaxKeepAliveCount = s->cfg.max_keepalive_count;
    req.requestedLifetimeCount = lifetime_for(&s->cfg);
    req.maxNotificationsPerPublish = s->cfg.max_notifications_per_publish;
    req.priority = s->cfg.priority;
    uarc_status status =
        uarc_client_send(s->mgr->client, &req, UARC_T(ModifySubscriptionRequest),
                         UARC_T(ModifySubscriptionResponse), 0, on_modified, s, NULL);
    if (status == UARC_Good)
        s->inflight++;
    return status;
}

UARC_API uarc_status uarc_subscription_set_publishing(uarc_subscription *s, bool enabled)
{
    s->cfg.publishing_disabled = !enabled;
    if (!s->id || !session_active(s->mgr))
        return UARC_Good;
    uarc_SetPublishingModeRequest req;
    uarc_init(&req, UARC_T(SetPublishingModeRequest));
    req.publishingEnabled = enabled;
    req.subscriptionIdsSize = 1;
    req.subscriptionIds = &s->id;
    return uarc_client_send(s->mgr->client, &req, UARC_T(SetPublishingModeRequest),
                            UARC_T(SetPublishingModeResponse), 0, ignore_response, NULL, NULL);
}

/* A ModifyMonitoredItems or SetMonitoringMode in flight: the handles of its items, in order. */
typedef struct item_call {
    uarc_subscription *s;
    size_t count;
    uint32_t handles[];
} item_call;

static void item_results(item_call *c, uarc_status status, const uarc_status *results,
                         size_t result_stride, size_t result_count)
{
    uarc_subscription *s = c->s;
    s->inflight--;
    for (size_t i = 0; i < c->count && !s->deleted; i++) {
        uarc_status result = status != UARC_Good ? status
                             : i < result_count
                                 ? *(const uarc_status *)((const char *)results + i * result_stride)
                                 : UARC_BadUnexpectedError;
        if (s->cfg.callbacks.item_modified && item_of(s, c->handles[i])) {
            s->delivering++;
            s->cfg.callbacks.item_modified(s->cfg.callbacks.user_data, s, c->handles[i], result);
            s->delivering--;
        }
    }
    uarc__free(c);
    sweep(s->mgr);
}

static void on_items_modified(void *user_data, uarc_status status, void *response)
{
    uarc_ModifyMonitoredItemsResponse *r = response;
    item_results(user_data, status, r && r->results ? &r->results->statusCode : NULL,
                 sizeof(uarc_MonitoredItemModifyResult), r ? r->resultsSize : 0);
}

static void on_mode_set(void *user_data, uarc_status status, void *response)
{
    uarc_SetMonitoringModeResponse *r = response;
    item_results(user_data, status, r ? r->results : NULL, sizeof(uarc_status),
                 r ? r->resultsSize : 0);
}

/* Whether `it` can be changed now: Good with *on_server telling whether a request is needed. */
static uarc_status changeable(const uarc_subscription *s, const item *it, bool *on_server)
{
    *on_server = false;
    if (!it)
        return UARC_BadMonitoredItemIdInvalid;
    if (it->state == ITEM_PENDING)
        return UARC_Good;
    if (it->state != ITEM_ACTIVE || !s->id || !session_active(s->mgr) ||
        s->phase == PHASE_TRANSFERRING)
        return UARC_BadInvalidState;
    *on_server = true;
    return UARC_Good;
}

static item_call *new_call(uarc_subscription *s, size_t count)
{
    item_call *c = uarc__calloc(1, sizeof *c + count * sizeof c->handles[0]);
    if (c)
        c->s = s;
    return c;
}

UARC_API uarc_status uarc_subscription_modify_item(uarc_subscription *s, uint32_t handle,
                                                   const uarc_monitored_item_params *params)
{
    item *it = item_of(s, handle);
    bool on_server;
    uarc_status status = changeable(s, it, &on_server);
    if (status != UARC_Good)
        return status;
    if (it->event_filter)
        return UARC_BadNotSupported;
    item_call *c = on_server ? new_call(s, 1) : NULL;
    if (on_server && !c)
        return UARC_BadOutOfMemory;
    uarc_monitored_item_params kept = it->params;
    it->params = *params;
    it->params.node = kept.node;
    it->params.attribute_id = kept.attribute_id;
    it->params.user_data = kept.user_data;
    if (!on_server)
        return UARC_Good; /* created with these */
    uarc_DataChangeFilter f = {0};
    uarc_MonitoredItemModifyRequest m = {.monitoredItemId = it->server_id};
    parameters_of(it, handle, &m.requestedParameters, &f);
    uarc_ModifyMonitoredItemsRequest req;
    uarc_init(&req, UARC_T(ModifyMonitoredItemsRequest));
    req.subscriptionId = s->id;
    req.timestampsToReturn = UARC_TimestampsToReturn_Both;
    req.itemsToModifySize = 1;
    req.itemsToModify = &m;
    c->count = 1;
    c->handles[0] = handle;
    status = uarc_client_send(s->mgr->client, &req, UARC_T(ModifyMonitoredItemsRequest),
                              UARC_T(ModifyMonitoredItemsResponse), 0, on_items_modified, c, NULL);
    if (status != UARC_Good) {
        it->params = kept;
        uarc__free(c);
        return status;
    }
    s->inflight++;
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_set_monitoring_mode(uarc_subscription *s,
                                                           const uint32_t *handles, size_t count,
                                                           uarc_MonitoringMode mode)
{
    if ((unsigned)mode > UARC_MonitoringMode_Reporting)
        return UARC_BadMonitoringModeInvalid;
    if (count == 0)
        return UARC_Good;
    size_t remote = 0;
    for (size_t i = 0; i < count; i++) {
        bool on_server;
        uarc_status status = changeable(s, item_of(s, handles[i]), &on_server);
        if (status != UARC_Good)
            return status;
        remote += on_server;
    }
    if (s->mgr->max_items_per_call && remote > s->mgr->max_items_per_call)
        return UARC_BadTooManyOperations;
    item_call *c = remote ? new_call(s, remote) : NULL;
    uint32_t *ids = remote ? uarc__calloc(remote, sizeof *ids) : NULL;
    if (remote && (!c || !ids)) {
        uarc__free(c);
        uarc__free(ids);
        return UARC_BadOutOfMemory;
    }
    for (size_t i = 0; i < count; i++) {
        item *it = item_of(s, handles[i]);
        if (it->state != ITEM_ACTIVE)
            continue;
        size_t k;
        for (k = 0; k < c->count && c->handles[k] != handles[i]; k++)
            ;
        if (k == c->count) {
            c->handles[c->count] = handles[i];
            ids[c->count++] = it->server_id;
        }
    }
    uarc_status status = UARC_Good;
    if (remote) {
        uarc_SetMonitoringModeRequest req;
        uarc_init(&req, UARC_T(SetMonitoringModeRequest));
        req.subscriptionId = s->id;
        req.monitoringMode = mode;
        req.monitoredItemIdsSize = c->count;
        req.monitoredItemIds = ids;
        status = uarc_client_send(s->mgr->client, &req, UARC_T(SetMonitoringModeRequest),
                                  UARC_T(SetMonitoringModeResponse), 0, on_mode_set, c, NULL);
        uarc__free(ids);
        if (status != UARC_Good) {
            uarc__free(c);
            return status;
        }
        s->inflight++;
    }
    for (size_t i = 0; i < count; i++)
        item_of(s, handles[i])->mode = mode;
    return status;
}

UARC_API uarc_status uarc_subscription_ack(uarc_subscription *s, uint32_t sequence_number)
{
    if (!s->cfg.deferred_ack)
        return UARC_BadInvalidState;
    if (s->id && sequence_number)
        queue_ack(s->mgr, s->id, sequence_number);
    return UARC_Good;
}

UARC_API uint32_t uarc_subscription_id(const uarc_subscription *s)
{
    return s->id;
}

UARC_API uarc_subscription_state uarc_subscription_state_get(const uarc_subscription *s)
{
    return s->state;
}

UARC_API void uarc_subscription_revised(const uarc_subscription *s, double *publishing_interval_ms,
                                        uint32_t *max_keepalive_count, uint32_t *lifetime_count)
{
    if (publishing_interval_ms)
        *publishing_interval_ms = s->revised_interval;
    if (max_keepalive_count)
        *max_keepalive_count = s->revised_keepalive;
    if (lifetime_count)
        *lifetime_count = s->revised_lifetime;
}

UARC_API void uarc_subscription_set_publish_cap(uarc_client *client, uint32_t cap)
{
    manager *m = manager_of(client);
    if (m)
        m->cap = cap ? cap : DEFAULT_PUBLISH_CAP;
}
