/*
 * The publish pipeline and delivery: PublishRequests kept outstanding, messages delivered in
 * sequence order, holes filled by Republish or reported as gaps, acknowledgement after delivery.
 */
#include <string.h>

#include "client/subscription_internal.h"
#include "core/alloc.h"
#include "core/endian.h"

#define MAX_AVAILABLE    1024u
#define ACKS_PER_PUBLISH 256u
#define PUBLISH_RETRY_MS 1000
/* Good PublishResponses before a throttled pipeline tries one more request: 2 x the throttle
 * after the first refusal, doubled by each further one up to this. */
#define MAX_PROBE_WAIT 1024u

static void on_republish(void *user_data, uarc_status status, void *response);
static void on_publish(void *user_data, uarc_status status, void *response);

static uarc_subscription *find_by_id(manager *m, uint32_t id)
{
    for (size_t i = 0; i < m->sub_count; i++)
        if (m->subs[i]->id == id && id && !m->subs[i]->deleted)
            return m->subs[i];
    return NULL;
}

/* `array` (of `count` elements of `size`, room for *capacity) with room for one more: itself,
 * or grown by doubling up to `max` elements; NULL when full or out of memory. */
static void *room_for_one(void *array, size_t *capacity, size_t count, size_t size, size_t max)
{
    if (count < *capacity)
        return array;
    if (*capacity >= max)
        return NULL;
    size_t grown = *capacity ? 2 * *capacity : 8;
    if (grown > max)
        grown = max;
    void *p = uarc__realloc(array, grown * size);
    if (p)
        *capacity = grown;
    return p;
}

void uarc__sub_queue_ack(manager *m, uint32_t id, uint32_t sequence)
{
    uarc_SubscriptionAcknowledgement *acks =
        room_for_one(m->acks, &m->ack_capacity, m->ack_count, sizeof *m->acks, MAX_ACKS);
    if (acks) {
        m->acks = acks;
    } else {
        if (!m->ack_count)
            return; /* no memory for even one: the server keeps the message until it ages out */
        /* The server keeps an unacknowledged message until it ages out: dropping the oldest
         * acknowledgement costs the server memory, not the application data. */
        memmove(m->acks, m->acks + 1, (m->ack_count - 1) * sizeof *m->acks);
        m->ack_count--;
    }
    m->acks[m->ack_count++] = (uarc_SubscriptionAcknowledgement){id, sequence};
}

/* PublishRequests the subscriptions call for (the server's throttle aside): one per live
 * subscription and one more, up to the configured cap; the whole cap while a subscription has a
 * backlog on the server (moreNotifications), so that the server sends its messages one after
 * another instead of each after a round trip (Part 4 §5.13.5: pipelining). */
static uint32_t demand(const manager *m)
{
    uint32_t live = 0;
    bool backlog = false;
    for (size_t i = 0; i < m->sub_count; i++) {
        const uarc_subscription *s = m->subs[i];
        if (s->phase == PHASE_LIVE && s->id && !s->deleted) {
            live++;
            backlog |= s->more;
        }
    }
    if (!live)
        return 0;
    return !backlog && live + 1 < m->cap ? live + 1 : m->cap;
}

static uint32_t wanted(const manager *m)
{
    uint32_t want = demand(m);
    return m->throttle && m->throttle < want ? m->throttle : want;
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

/* Gathering (uarc_client_gather_ms()): a message may wait unread for this share of the shortest
 * publishing interval, and never longer than GATHER_MAX_MS. The server holds a change for up to
 * a whole interval before it publishes it; a twentieth more is within that jitter. */
#define GATHER_SHARE  20
#define GATHER_MAX_MS 50

int uarc__sub_gather_ms(void *user_data)
{
    const manager *m = user_data;
    double shortest = -1;
    for (size_t i = 0; i < m->sub_count; i++) {
        const uarc_subscription *s = m->subs[i];
        if (s->deleted || (s->phase == PHASE_NEW && !s->inflight))
            continue; /* gone, or failed (made again with the next session) */
        if (s->phase != PHASE_LIVE || !s->id || s->held_count || s->republishing)
            return 0; /* being made, recovered, or waiting for a hole to be filled */
        if (shortest < 0 || s->revised_interval < shortest)
            shortest = s->revised_interval;
    }
    if (shortest < 0)
        return -1;
    double ms = shortest / GATHER_SHARE;
    return ms >= GATHER_MAX_MS ? GATHER_MAX_MS : (int)ms;
}

/* A plain scalar of up to 8 bytes: kept in the item's own fields. */
static bool scalar_kept_inline(const uarc_variant *v)
{
    return v->type && v->data && v->type->pointer_free && !v->is_array &&
           v->type->size <= sizeof(uint64_t);
}

/* Keeps `value` as the last one `it` delivered. */
static void remember(item *it, const uarc_data_value *value)
{
    uint8_t flags = (value->has_value ? LAST_HAS_VALUE : 0) |
                    (value->has_status ? LAST_HAS_STATUS : 0) |
                    (value->has_source_timestamp ? LAST_HAS_SOURCE_TIMESTAMP : 0) |
                    (value->has_server_timestamp ? LAST_HAS_SERVER_TIMESTAMP : 0) |
                    (value->has_source_picoseconds ? LAST_HAS_SOURCE_PICOSECONDS : 0) |
                    (value->has_server_picoseconds ? LAST_HAS_SERVER_PICOSECONDS : 0);
    const uarc_variant *v = &value->value;
    if (scalar_kept_inline(v)) {
        /* the usual case: no allocation */
        if (it->last_flags & LAST_BOXED)
            item_forget_last(it);
        uarc__copy_small(&it->last.scalar, v->data, v->type->size);
        it->last_type = v->type;
        it->last_status = value->status;
        it->last_server_timestamp = value->server_timestamp;
        it->last_source_picoseconds = value->source_picoseconds;
        it->last_server_picoseconds = value->server_picoseconds;
    } else {
        uarc_data_value *box = uarc__malloc(sizeof *box);
        bool copied = box && uarc_copy(value, box, UARC_T(DataValue)) == UARC_Good;
        item_forget_last(it); /* no copy: none kept, rather than an older one */
        if (!copied) {
            uarc__free(box);
            return;
        }
        it->last.boxed = box;
        flags |= LAST_BOXED;
    }
    it->last_source_timestamp = value->source_timestamp;
    it->last_flags = flags;
}

/* Whether the value `it` keeps (one with the same source timestamp) equals `value`. */
static bool same_as_last(item *it, const uarc_data_value *value)
{
    if (it->last_flags & LAST_BOXED)
        return uarc_equal(it->last.boxed, value, UARC_T(DataValue));
    uint8_t f = it->last_flags;
    uarc_data_value last = {
        .value = {.type = it->last_type, .data = &it->last.scalar},
        .status = it->last_status,
        .source_timestamp = it->last_source_timestamp,
        .server_timestamp = it->last_server_timestamp,
        .source_picoseconds = it->last_source_picoseconds,
        .server_picoseconds = it->last_server_picoseconds,
        .has_value = (f & LAST_HAS_VALUE) != 0,
        .has_status = (f & LAST_HAS_STATUS) != 0,
        .has_source_timestamp = (f & LAST_HAS_SOURCE_TIMESTAMP) != 0,
        .has_server_timestamp = (f & LAST_HAS_SERVER_TIMESTAMP) != 0,
        .has_source_picoseconds = (f & LAST_HAS_SOURCE_PICOSECONDS) != 0,
        .has_server_picoseconds = (f & LAST_HAS_SERVER_PICOSECONDS) != 0,
    };
    return uarc_equal(&last, value, UARC_T(DataValue));
}

/* The same value with the same source timestamp as the last one delivered: not a change. */
static bool repeated(item *it, const uarc_data_value *value)
{
    if (!value->has_source_timestamp)
        return false;
    /* Equal values carry equal source timestamps: a new timestamp (the usual case) settles it
     * without comparing the values. */
    if ((it->last_flags & LAST_HAS_SOURCE_TIMESTAMP) &&
        it->last_source_timestamp == value->source_timestamp && same_as_last(it, value))
        return true;
    remember(it, value);
    return false;
}

static void status_change(uarc_subscription *s, const uarc_StatusChangeNotification *n)
{
    if (n->status == UARC_GoodSubscriptionTransferred) {
        /* Some servers tell the new session too (UA-.NETStandard PR #3847): the subscription
         * goes on here, nothing to do but note it. */
        uarc__sub_log(s, UARC_LOG_INFO, "server reports GoodSubscriptionTransferred");
        return;
    }
    if (!uarc_status_is_bad(n->status))
        return;
    /* The server ended the subscription (its lifetime expired, or it was deleted): make it
     * again, after telling what is lost. */
    uarc__sub_log(s, UARC_LOG_WARNING, "ended by the server: %s", uarc_status_name(n->status));
    uarc__sub_report_gap(s, s->next ? s->next : 1, 0, UARC_BadSubscriptionIdInvalid);
    s->id = 0;
    s->next = s->horizon = 0;
    s->recreate = true;
    s->phase = PHASE_NEW;
    for (size_t i = 0; i < s->item_count; i++)
        if (s->items[i].state == ITEM_ACTIVE || s->items[i].state == ITEM_CREATING ||
            s->items[i].state == ITEM_UNSURE)
            s->items[i].state = ITEM_PENDING;
        else if (s->items[i].state > ITEM_REMOVED)
            s->items[i].state = ITEM_REMOVED;
    uarc__sub_drop_changes(s, UARC_BadSubscriptionIdInvalid, true);
    if (session_active(s->mgr))
        uarc__sub_create(s);
}

/* A message's items are visited in the order of its notifications, each once per message, and
 * most of them are no longer in the cache (a collector visits thousands between two messages
 * of one subscription): the item of a notification a few ahead is asked for early. */
#define PREFETCH_AHEAD 4

static inline void prefetch_item(const uarc_subscription *s, uint32_t handle)
{
#if defined(__GNUC__)
    if (handle && handle <= s->item_count) {
        __builtin_prefetch((const char *)&s->items[handle - 1] + ITEM_ALIGN);
    }
#else
    (void)s, (void)handle;
#endif
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
                if (j + PREFETCH_AHEAD < d->monitoredItemsSize)
                    prefetch_item(s, d->monitoredItems[j + PREFETCH_AHEAD].clientHandle);
                item *it = item_of(s, n->clientHandle);
                if (!it || it->event_filter || !s->cfg.callbacks.data_change)
                    continue;
                if (repeated(it, &n->value)) {
                    uarc__sub_log(s, UARC_LOG_DEBUG, "item %u: the same value again in message %u",
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
        uarc__sub_queue_ack(s->mgr, id, seq);
}

static bool is_available(const uarc_subscription *s, uint32_t n)
{
    for (size_t i = 0; i < s->available_count; i++)
        if (s->available[i] == n)
            return true;
    return false;
}

void uarc__sub_keep_available(uarc_subscription *s, const uint32_t *numbers, size_t count)
{
    if (count > MAX_AVAILABLE)
        count = MAX_AVAILABLE;
    if (count > s->available_capacity) {
        uint32_t *grown = uarc__realloc(s->available, count * sizeof *grown);
        if (!grown) {
            s->available_count = 0;
            return;
        }
        s->available = grown;
        s->available_capacity = count;
    }
    if (count)
        memcpy(s->available, numbers, count * sizeof *numbers);
    s->available_count = count;
}

void uarc__sub_send_republish_of(uarc_subscription *s, uint32_t sequence)
{
    uarc_RepublishRequest req;
    uarc_init(&req, UARC_T(RepublishRequest));
    req.subscriptionId = s->id;
    req.retransmitSequenceNumber = sequence;
    if (uarc__client_send_transient(s->mgr->client, &req, UARC_T(RepublishRequest),
                                    UARC_T(RepublishResponse), 0, on_republish, s) == UARC_Good) {
        s->republishing = true;
        s->asked = sequence;
        s->inflight++;
    }
}

void uarc__sub_send_republish(uarc_subscription *s)
{
    uarc__sub_send_republish_of(s, s->next);
}

/* Copies `msg` (it lives only as long as its response) into the held messages in order; false
 * when it is a duplicate, there is no room or no memory (then it is missing like a message that
 * never came: fetched again by Republish while the server has it, else a gap). */
static bool hold(uarc_subscription *s, const uarc_NotificationMessage *msg)
{
    size_t i = 0;
    while (i < s->held_count && seq_before(s->held[i].sequenceNumber, msg->sequenceNumber))
        i++;
    if (i < s->held_count && s->held[i].sequenceNumber == msg->sequenceNumber)
        return false;
    uarc_NotificationMessage *held =
        room_for_one(s->held, &s->held_capacity, s->held_count, sizeof *s->held, MAX_HELD);
    if (!held)
        return false;
    s->held = held;
    uarc_NotificationMessage copy;
    if (uarc_copy(msg, &copy, UARC_T(NotificationMessage)) != UARC_Good) {
        uarc__sub_log(s, UARC_LOG_WARNING, "message %u: out of memory holding it",
                      msg->sequenceNumber);
        return false;
    }
    memmove(s->held + i + 1, s->held + i, (s->held_count - i) * sizeof *s->held);
    s->held[i] = copy;
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

void uarc__sub_drain(uarc_subscription *s)
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
                uarc__sub_send_republish(s);
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
        uarc__sub_report_gap(s, from, seq_preceding(end), UARC_BadMessageNotAvailable);
    }
}

/* A message or keep-alive for `s` from a Publish or Republish. */
static void take_message(uarc_subscription *s, const uarc_NotificationMessage *msg)
{
    uint32_t seq = msg->sequenceNumber;
    if (seq == 0)
        return; /* not a sequence number; nothing to order it by */
    bool keepalive = msg->notificationDataSize == 0;
    if (!s->next) { /* the first message of this subscription id tells where we are */
        s->next = seq;
        s->horizon = seq;
    }
    /* Ahead is less than half the number space from the next expected number: farther is
     * behind, an old message, or a hostile number whose order could not be told (exactly
     * half-way, a message would come both before and after the one delivered last). */
    if ((uint32_t)(seq - s->next) >= 0x7FFFFFFFu) {
        if (!keepalive)
            uarc__sub_log(s, UARC_LOG_DEBUG, "message %u again: dropped", seq);
        return;
    }
    uint32_t end = keepalive ? seq : seq_after(seq);
    if (seq_before(s->horizon, end))
        s->horizon = end;
    if (keepalive)
        return;
    if (seq == s->next && !s->held_count) {
        s->next = seq_after(seq);
        deliver(s, msg);
        return;
    }
    if (!hold(s, msg) && s->held_count == MAX_HELD) {
        /* No room to wait any longer for the hole: give it up. */
        uint32_t before = s->held[0].sequenceNumber;
        uarc__sub_report_gap(s, s->next, seq_preceding(before), UARC_BadResourceUnavailable);
        s->next = before;
        uarc__sub_drain(s);
        if (!s->deleted)
            hold(s, msg);
    }
}

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
            uarc__sub_make_again(s, status);
        else if (!s->deleted)
            uarc__sub_drain(s);
        uarc__sub_sweep(s->mgr);
        return;
    }
    manager *m = s->mgr;
    if (s->deleted) {
        uarc__sub_sweep(m);
        return;
    }
    uint32_t asked = s->asked;
    bool got = status == UARC_Good && r && r->notificationMessage.sequenceNumber == asked &&
               r->notificationMessage.notificationDataSize > 0;
    if (s->next != asked && session_active(m)) {
        /* A PublishResponse brought that message meanwhile: nothing to fill, nothing lost. */
    } else if (got) {
        s->last_heard = uarc__client_now(m->client);
        uarc__sub_log(s, UARC_LOG_DEBUG, "Republish: message %u recovered", asked);
        take_message(s, &r->notificationMessage);
    } else if (status == UARC_BadSubscriptionIdInvalid) {
        uarc__sub_make_again(s, status);
        return;
    } else if (status == UARC_Good || status == UARC_BadMessageNotAvailable) {
        /* Not there any more (also a Good answer with another or no message: a server that does
         * that must not keep us asking forever). */
        if (s->phase == PHASE_CATCHING_UP) {
            uarc__sub_caught_up(s);
            return;
        }
        uarc__sub_report_gap(s, asked, asked, UARC_BadMessageNotAvailable);
        s->next = seq_after(asked);
    } else {
        /* The connection went, or a timeout: the session hooks decide what comes next. */
        if (s->phase == PHASE_CATCHING_UP && session_active(m))
            uarc__sub_caught_up(s);
        return;
    }
    if (s->phase == PHASE_CATCHING_UP && session_active(m)) {
        uarc__sub_send_republish(s);
        if (!s->republishing)
            uarc__sub_caught_up(s);
        return;
    }
    uarc__sub_drain(s);
}

/* ---- the publish pipeline ---- */

static void send_publish(manager *m)
{
    uarc_PublishRequest req;
    uarc_init(&req, UARC_T(PublishRequest));
    size_t n = m->ack_count < ACKS_PER_PUBLISH ? m->ack_count : ACKS_PER_PUBLISH;
    req.subscriptionAcknowledgementsSize = n;
    req.subscriptionAcknowledgements = n ? m->acks : NULL;
    uint32_t timeout = publish_timeout(m);
    req.requestHeader.timeoutHint = timeout;
    if (uarc__client_send_transient(m->client, &req, UARC_T(PublishRequest),
                                    UARC_T(PublishResponse), timeout, on_publish, m) != UARC_Good) {
        m->retry_at = uarc__client_now(m->client) + PUBLISH_RETRY_MS;
        return;
    }
    m->outstanding++;
    if (n) /* none yet: no array either */
        memmove(m->acks, m->acks + n, (m->ack_count - n) * sizeof *m->acks);
    m->ack_count -= n;
}

void uarc__sub_refill(manager *m)
{
    if (!session_active(m) || m->no_subscription || m->retry_at >= 0)
        return;
    uint32_t want = wanted(m);
    if (m->outstanding >= want)
        return;
    /* Below what is wanted: topped up `spare` beyond it (by default to the cap), within the cap
     * and the server's limit, in one write (requests made inside a receive go out at its end).
     * One steady subscription under the default cap of 5 then sends four requests every fourth
     * response instead of one each time: a quarter of the writes and of the server's wake-ups,
     * while never fewer than wanted - 1 are out, as before. */
    uint32_t limit = m->throttle && m->throttle < m->cap ? m->throttle : m->cap;
    uint32_t fill = limit - want > m->spare ? want + m->spare : limit;
    while (m->outstanding < fill && m->retry_at < 0 && session_active(m))
        send_publish(m);
}

/* BadTooManyPublishRequests: the server holds no more than are out now. Only a refused try
 * lengthens the wait before the next: the refusals of requests sent together (a refill to the
 * cap) come one after another, each lowering the throttle to what is still out, and are one. */
static void throttle_down(manager *m)
{
    m->throttle = m->outstanding ? m->outstanding : 1;
    if (m->probing && (2u << m->probe_refusals) < MAX_PROBE_WAIT)
        m->probe_refusals++;
    m->probing = false;
    uint64_t wait = (uint64_t)m->throttle * 2 << m->probe_refusals;
    m->probe_wait = wait < MAX_PROBE_WAIT ? (uint32_t)wait : MAX_PROBE_WAIT;
    m->good_since = 0;
    uarc__log(uarc__client_logger(m->client), UARC_LOG_INFO, "subscription",
              "BadTooManyPublishRequests: at most %u PublishRequests from now on (one more tried "
              "after %u good responses)",
              m->throttle, m->probe_wait);
}

/* A good PublishResponse under a throttle that holds the pipeline back: a server whose limit
 * is shared by its sessions (open62541, node-opcua) may take more later, so after a while one
 * more is tried. Refused, it costs the server's oldest request, answered at once: the others
 * still wait there, and delivery goes on. */
static void throttle_probe(manager *m)
{
    if (m->probing) { /* a try is out: held once as many good responses came as were out */
        if (++m->good_since >= (m->throttle ? m->throttle : m->cap)) {
            m->probing = false;
            m->good_since = 0;
        }
        return;
    }
    if (!m->throttle || m->throttle >= demand(m) || ++m->good_since < m->probe_wait)
        return;
    m->good_since = 0;
    m->probing = true;
    m->throttle++;
    if (m->throttle >= m->cap)
        m->throttle = 0;
    uarc__log(uarc__client_logger(m->client), UARC_LOG_INFO, "subscription",
              "PublishRequests: trying %u", m->throttle ? m->throttle : m->cap);
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
            s->more = r->moreNotifications;
            if (s->stalled) {
                s->stalled = false;
                uarc__sub_set_state(s, UARC_SUBSCRIPTION_RESUMED, UARC_Good); /* heard from again */
            }
            uarc__sub_keep_available(s, r->availableSequenceNumbers,
                                     r->availableSequenceNumbersSize);
            s->delivering++;
            take_message(s, &r->notificationMessage);
            if (!s->deleted)
                uarc__sub_drain(s);
            if (r->notificationMessage.notificationDataSize)
                s->initial_values = false; /* those were in this message or one before */
            s->delivering--;
            uarc__sub_sweep(m);
        }
        throttle_probe(m);
        uarc__sub_refill(m);
        return;
    }
    switch (status) {
    case UARC_BadTooManyPublishRequests:
        /* The server holds no more: send the next only when one of those comes back. */
        throttle_down(m);
        return;
    case UARC_BadNoSubscription:
        m->no_subscription = true; /* harmless; resumes with the next (re)created subscription */
        return;
    case UARC_BadTimeout:
    case UARC_BadRequestTimeout:
        uarc__sub_refill(m);
        return;
    default:
        if (session_active(m) && m->retry_at < 0)
            m->retry_at = uarc__client_now(m->client) + PUBLISH_RETRY_MS;
        return;
    }
}
