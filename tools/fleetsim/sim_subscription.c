/*
 * Subscriptions of a simulated server (Part 4 §5.13, §5.12): Create/Modify/Delete,
 * SetPublishingMode, Create/Delete monitored items, SetMonitoringMode, Publish with
 * acknowledgements and a retransmission queue, Republish, TransferSubscriptions, and the Server
 * object's methods about subscriptions (Part 5 §9.1, §9.2): GetMonitoredItems, ResendData.
 *
 * The variables are functions of time (sim_changes), so an item needs no sampling: at each
 * publishing cycle it reports the changes since the last one it sent, at most its queue size of
 * them, each with its own source timestamp. A message is built only when a Publish request is
 * there to carry it (until then the subscription is late and its items keep their changes), so
 * every message in the retransmission queue was sent once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#define SERVER_GET_MONITORED_ITEMS 11492u
#define SERVER_RESEND_DATA         12873u

#define MIN_INTERVAL_MS 20u
#define MAX_INTERVAL_MS 3600000u
#define MAX_KEEPALIVE   1000u

static sim_stats *stats_of(const sim_session *session)
{
    return session->server->config->stats;
}

void sim_subscription_delete(sim_subscription *subscription)
{
    for (size_t i = 0; i < SIM_RETRANSMIT_QUEUE; i++)
        uarc_clear(&subscription->queue[i].message, UARC_T(NotificationMessage));
    free(subscription->items);
    free(subscription);
}

void sim_session_detached(sim_session *session)
{
    for (uint32_t i = 0; i < session->publish_count; i++)
        free(session->publish[i].results);
    session->publish_count = 0;
    session->conn = NULL;
}

static sim_subscription *find(sim_session *session, uint32_t id, sim_subscription ***link)
{
    for (sim_subscription **p = &session->subscriptions; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            if (link)
                *link = p;
            return *p;
        }
    }
    return NULL;
}

static void revise(sim_subscription *s, double interval, uint32_t lifetime, uint32_t keepalive)
{
    /* A NaN compares false with everything: it takes the minimum. */
    s->interval_ms = !(interval >= MIN_INTERVAL_MS) ? MIN_INTERVAL_MS
                     : interval > MAX_INTERVAL_MS   ? MAX_INTERVAL_MS
                                                    : (uint32_t)interval;
    s->keepalive_count = keepalive == 0              ? 10
                         : keepalive > MAX_KEEPALIVE ? MAX_KEEPALIVE
                                                     : keepalive;
    s->lifetime_count = lifetime < 3 * s->keepalive_count ? 3 * s->keepalive_count : lifetime;
}

/* `n` zero-filled (Good) results; UARC_EMPTY for none, NULL when out of memory. */
static uarc_status *statuses(size_t n)
{
    return n ? calloc(n, sizeof(uarc_status)) : UARC_EMPTY;
}

/* ---- building and sending messages -------------------------------------------------------- */

static bool item_pending(const sim_server *server, const sim_item *item, uint64_t changes,
                         int64_t now_ms)
{
    if (!item->reporting)
        return false;
    if (item->initial)
        return true;
    if (item->var == SIM_VAR_COUNTER || item->var == SIM_VAR_ITEM)
        return changes > item->last_change;
    if (item->var == SIM_VAR_CURRENT_TIME)
        return now_ms > item->last_time_ms;
    (void)server;
    return false;
}

/* Appends the item's pending values to `out` (grown by the caller to fit queue_size more). */
static void collect(const sim_server *server, sim_item *item, uint64_t changes, int64_t now_ms,
                    uarc_MonitoredItemNotification *out, size_t *count)
{
    if (!item_pending(server, item, changes, now_ms))
        return;
    uint64_t first = item->last_change + 1;
    if (item->initial || (item->var != SIM_VAR_COUNTER && item->var != SIM_VAR_ITEM))
        first = changes;
    if (changes - first + 1 > item->queue_size)
        first = changes - item->queue_size + 1;
    for (uint64_t c = first; c <= changes; c++) {
        uarc_MonitoredItemNotification *n = &out[(*count)++];
        n->clientHandle = item->client_handle;
        sim_var_value(server, item->var, item->k, c, now_ms, &n->value);
    }
    item->initial = false;
    item->last_change = changes;
    item->last_time_ms = now_ms;
}

static size_t notification_count(const uarc_NotificationMessage *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->notificationDataSize; i++) {
        const uarc_extension_object *o = &m->notificationData[i];
        if (o->encoding == UARC_EXTENSION_OBJECT_DECODED &&
            o->content.decoded.type == UARC_T(DataChangeNotification))
            n += ((const uarc_DataChangeNotification *)o->content.decoded.data)->monitoredItemsSize;
    }
    return n;
}

static void available(const sim_subscription *s, uint32_t **out, size_t *count)
{
    *count = 0;
    *out = malloc(SIM_RETRANSMIT_QUEUE * sizeof **out);
    if (!*out)
        return;
    for (size_t i = 0; i < SIM_RETRANSMIT_QUEUE; i++) {
        if (s->queue[i].message.sequenceNumber)
            (*out)[(*count)++] = s->queue[i].message.sequenceNumber;
    }
    if (*count == 0) {
        free(*out);
        *out = UARC_EMPTY;
    }
}

/* Answers the oldest waiting Publish request of `session` with what `s` has. */
static void publish_one(sim_session *session, sim_subscription *s, int64_t now_ms)
{
    sim_server *server = session->server;
    sim_publish_request request = session->publish[0];
    memmove(session->publish, session->publish + 1,
            (session->publish_count - 1) * sizeof *session->publish);
    session->publish_count--;

    uarc_PublishResponse r;
    uarc_init(&r, UARC_T(PublishResponse));
    r.subscriptionId = s->id;
    r.results = request.result_count ? request.results : UARC_EMPTY;
    if (!request.result_count)
        free(request.results);
    r.resultsSize = request.result_count;
    r.notificationMessage.publishTime = sim_datetime(now_ms);

    uint64_t changes = sim_changes(server, now_ms);
    size_t room = 0;
    for (size_t i = 0; i < s->item_count; i++) {
        if (item_pending(server, &s->items[i], changes, now_ms))
            room += s->items[i].queue_size;
    }
    uarc_DataChangeNotification *data = NULL;
    if (room && s->ready) {
        data = uarc_new(UARC_T(DataChangeNotification));
        uarc_extension_object *object = uarc_new(UARC_T(ExtensionObject));
        uarc_MonitoredItemNotification *items = calloc(room, sizeof *items);
        if (!data || !object || !items) {
            uarc_delete(data, UARC_T(DataChangeNotification));
            uarc_delete(object, UARC_T(ExtensionObject));
            free(items);
            data = NULL;
        } else {
            size_t count = 0;
            for (size_t i = 0; i < s->item_count; i++)
                collect(server, &s->items[i], changes, now_ms, items, &count);
            data->monitoredItems = items;
            data->monitoredItemsSize = count;
            object->encoding = UARC_EXTENSION_OBJECT_DECODED;
            object->content.decoded.type = UARC_T(DataChangeNotification);
            object->content.decoded.data = data;
            r.notificationMessage.notificationData = object;
            r.notificationMessage.notificationDataSize = 1;
            if (stats_of(session))
                stats_of(session)->notifications += count;
        }
    }
    if (data) {
        r.notificationMessage.sequenceNumber = s->next_sequence++;
        if (s->next_sequence == 0)
            s->next_sequence = 1;
        /* The slot of the oldest message (the lowest sequence number) takes the new one. */
        size_t slot = 0;
        for (size_t i = 0; i < SIM_RETRANSMIT_QUEUE; i++) {
            uint32_t seq = s->queue[i].message.sequenceNumber;
            if (seq == 0) {
                slot = i;
                break;
            }
            if (seq < s->queue[slot].message.sequenceNumber)
                slot = i;
        }
        uarc_clear(&s->queue[slot].message, UARC_T(NotificationMessage));
        uarc_copy(&r.notificationMessage, &s->queue[slot].message, UARC_T(NotificationMessage));
        s->queue[slot].sent = true;
        if (stats_of(session))
            stats_of(session)->publishes++;
    } else {
        /* A keep-alive carries the next sequence number without using it. */
        r.notificationMessage.sequenceNumber = s->next_sequence;
        r.notificationMessage.notificationData = UARC_EMPTY;
        if (stats_of(session))
            stats_of(session)->keepalives++;
    }
    s->ready = false;
    s->keepalive_due = false;
    s->idle_cycles = 0;
    available(s, &r.availableSequenceNumbers, &r.availableSequenceNumbersSize);
    sim_conn *conn = session->conn;
    if (data && conn->lose_next_publish) {
        /* Chaos: the message is kept for Republish, but its response never leaves. */
        uarc_clear(&r, UARC_T(PublishResponse));
        conn->state = SIM_CONN_CLOSED;
        conn->end_status = UARC_Good;
        snprintf(conn->end_reason, sizeof conn->end_reason, "chaos: a PublishResponse lost");
        sim_session_detached(session);
        return;
    }
    sim_reply(conn, request.request_id, request.request_handle, &r, UARC_T(PublishResponse),
              now_ms);
}

/* Answers waiting Publish requests while some subscription has something to send. */
static void publish_waiting(sim_session *session, int64_t now_ms)
{
    while (session->publish_count && session->conn && session->conn->state != SIM_CONN_CLOSED) {
        sim_subscription *next = NULL;
        for (sim_subscription *s = session->subscriptions; s && !next; s = s->next) {
            if (s->ready || s->keepalive_due)
                next = s;
        }
        if (!next)
            return;
        publish_one(session, next, now_ms);
        /* Round robin: the subscription just served goes to the end of the list. */
        sim_subscription **link;
        if (find(session, next->id, &link) && next->next) {
            *link = next->next;
            sim_subscription *last = *link;
            while (last->next)
                last = last->next;
            last->next = next;
            next->next = NULL;
        }
    }
}

static void cycle(sim_session *session, sim_subscription *s, int64_t now_ms)
{
    uint64_t changes = sim_changes(session->server, now_ms);
    bool pending = false;
    for (size_t i = 0; i < s->item_count && !pending; i++)
        pending = item_pending(session->server, &s->items[i], changes, now_ms);
    if (pending && s->enabled) {
        s->ready = true;
    } else if (!s->ready && ++s->idle_cycles >= s->keepalive_count) {
        s->keepalive_due = true;
    }
}

int64_t sim_subscriptions_tick(sim_server *server, int64_t now_ms)
{
    sim_sessions_expire(server, now_ms);
    int64_t next = INT64_MAX;
    for (sim_session *session = server->sessions; session; session = session->next) {
        for (sim_subscription *s = session->subscriptions; s; s = s->next) {
            if (now_ms >= s->next_due_ms) {
                s->next_due_ms += s->interval_ms;
                if (s->next_due_ms <= now_ms)
                    s->next_due_ms = now_ms + s->interval_ms;
                cycle(session, s, now_ms);
            }
            if (s->next_due_ms < next)
                next = s->next_due_ms;
        }
        publish_waiting(session, now_ms);
    }
    return next;
}

/* ---- services ----------------------------------------------------------------------------- */

static void create_subscription(sim_conn *conn, sim_session *session, uint32_t request_id,
                                const uarc_CreateSubscriptionRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    size_t count = 0;
    for (sim_subscription *s = session->subscriptions; s; s = s->next)
        count++;
    sim_subscription *s = count < SIM_MAX_SUBSCRIPTIONS ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        sim_fault(conn, request_id, handle, UARC_BadTooManySubscriptions, now_ms);
        return;
    }
    s->id = session->server->next_id++;
    revise(s, q->requestedPublishingInterval, q->requestedLifetimeCount,
           q->requestedMaxKeepAliveCount);
    s->enabled = q->publishingEnabled;
    s->next_sequence = 1;
    s->next_due_ms = now_ms + s->interval_ms;
    s->next = session->subscriptions;
    session->subscriptions = s;
    uarc_CreateSubscriptionResponse r;
    uarc_init(&r, UARC_T(CreateSubscriptionResponse));
    r.subscriptionId = s->id;
    r.revisedPublishingInterval = s->interval_ms;
    r.revisedLifetimeCount = s->lifetime_count;
    r.revisedMaxKeepAliveCount = s->keepalive_count;
    sim_reply(conn, request_id, handle, &r, UARC_T(CreateSubscriptionResponse), now_ms);
}

static void modify_subscription(sim_conn *conn, sim_session *session, uint32_t request_id,
                                const uarc_ModifySubscriptionRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    sim_subscription *s = find(session, q->subscriptionId, NULL);
    if (!s) {
        sim_fault(conn, request_id, handle, UARC_BadSubscriptionIdInvalid, now_ms);
        return;
    }
    revise(s, q->requestedPublishingInterval, q->requestedLifetimeCount,
           q->requestedMaxKeepAliveCount);
    uarc_ModifySubscriptionResponse r;
    uarc_init(&r, UARC_T(ModifySubscriptionResponse));
    r.revisedPublishingInterval = s->interval_ms;
    r.revisedLifetimeCount = s->lifetime_count;
    r.revisedMaxKeepAliveCount = s->keepalive_count;
    sim_reply(conn, request_id, handle, &r, UARC_T(ModifySubscriptionResponse), now_ms);
}

/* DeleteSubscriptions (enable < 0) and SetPublishingMode (enable 0 or 1): results per id.
 * `type` is the response's type; both responses are a header, results and diagnostics. */
static void per_subscription(sim_conn *conn, sim_session *session, uint32_t request_id,
                             uint32_t handle, const uint32_t *ids, size_t n, int enable,
                             const uarc_type *type, int64_t now_ms)
{
    if (n == 0) {
        sim_fault(conn, request_id, handle, UARC_BadNothingToDo, now_ms);
        return;
    }
    uarc_DeleteSubscriptionsResponse r;
    uarc_init(&r, UARC_T(DeleteSubscriptionsResponse));
    r.results = statuses(n);
    if (!r.results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    r.resultsSize = n;
    for (size_t i = 0; i < n; i++) {
        sim_subscription **link;
        sim_subscription *s = find(session, ids[i], &link);
        if (!s) {
            r.results[i] = UARC_BadSubscriptionIdInvalid;
        } else if (enable < 0) {
            *link = s->next;
            sim_subscription_delete(s);
        } else {
            s->enabled = enable == 1;
        }
    }
    sim_reply(conn, request_id, handle, &r, type, now_ms);
}

static void create_items(sim_conn *conn, sim_session *session, uint32_t request_id,
                         const uarc_CreateMonitoredItemsRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    sim_subscription *s = find(session, q->subscriptionId, NULL);
    if (!s) {
        sim_fault(conn, request_id, handle, UARC_BadSubscriptionIdInvalid, now_ms);
        return;
    }
    if (q->itemsToCreateSize == 0) {
        sim_fault(conn, request_id, handle, UARC_BadNothingToDo, now_ms);
        return;
    }
    if (q->itemsToCreateSize > SIM_MAX_ITEMS - s->item_count) {
        sim_fault(conn, request_id, handle, UARC_BadTooManyMonitoredItems, now_ms);
        return;
    }
    sim_item *items = realloc(s->items, (s->item_count + q->itemsToCreateSize) * sizeof *items);
    uarc_CreateMonitoredItemsResponse r;
    uarc_init(&r, UARC_T(CreateMonitoredItemsResponse));
    r.results = items ? calloc(q->itemsToCreateSize, sizeof *r.results) : NULL;
    if (!r.results) {
        if (items)
            s->items = items;
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    s->items = items;
    r.resultsSize = q->itemsToCreateSize;
    uint64_t changes = sim_changes(session->server, now_ms);
    for (size_t i = 0; i < q->itemsToCreateSize; i++) {
        const uarc_MonitoredItemCreateRequest *c = &q->itemsToCreate[i];
        uint32_t k;
        sim_var var = sim_var_of(session->server, &c->itemToMonitor.nodeId, &k);
        if (var == SIM_VAR_NONE) {
            r.results[i].statusCode = UARC_BadNodeIdUnknown;
            continue;
        }
        if (c->itemToMonitor.attributeId != UARC_ATTRIBUTEID_Value) {
            r.results[i].statusCode = UARC_BadAttributeIdInvalid;
            continue;
        }
        uint32_t queue = c->requestedParameters.queueSize;
        queue = queue == 0 ? 1 : queue > SIM_MAX_QUEUE_SIZE ? SIM_MAX_QUEUE_SIZE : queue;
        sim_item *item = &s->items[s->item_count++];
        *item = (sim_item){.id = session->server->next_id++,
                           .client_handle = c->requestedParameters.clientHandle,
                           .var = var,
                           .k = k,
                           .queue_size = queue,
                           .reporting = c->monitoringMode == UARC_MonitoringMode_Reporting,
                           .initial = true,
                           .last_change = changes};
        r.results[i].monitoredItemId = item->id;
        r.results[i].revisedSamplingInterval = s->interval_ms;
        r.results[i].revisedQueueSize = queue;
    }
    sim_reply(conn, request_id, handle, &r, UARC_T(CreateMonitoredItemsResponse), now_ms);
}

/* DeleteMonitoredItems (mode < 0) and SetMonitoringMode: results per item id, answered as
 * `type` (both responses have one layout). */
static void per_item(sim_conn *conn, sim_session *session, uint32_t request_id, uint32_t handle,
                     uint32_t subscription_id, const uint32_t *ids, size_t n, int mode,
                     const uarc_type *type, int64_t now_ms)
{
    sim_subscription *s = find(session, subscription_id, NULL);
    if (!s || n == 0) {
        sim_fault(conn, request_id, handle, s ? UARC_BadNothingToDo : UARC_BadSubscriptionIdInvalid,
                  now_ms);
        return;
    }
    uarc_DeleteMonitoredItemsResponse r;
    uarc_init(&r, UARC_T(DeleteMonitoredItemsResponse));
    r.results = statuses(n);
    if (!r.results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    r.resultsSize = n;
    for (size_t i = 0; i < n; i++) {
        size_t at = 0;
        while (at < s->item_count && s->items[at].id != ids[i])
            at++;
        if (at == s->item_count) {
            r.results[i] = UARC_BadMonitoredItemIdInvalid;
        } else if (mode < 0) {
            s->items[at] = s->items[--s->item_count];
        } else {
            bool was = s->items[at].reporting;
            s->items[at].reporting = mode == UARC_MonitoringMode_Reporting;
            if (!was && s->items[at].reporting)
                s->items[at].initial = true;
        }
    }
    sim_reply(conn, request_id, handle, &r, type, now_ms);
}

static void publish(sim_conn *conn, sim_session *session, uint32_t request_id,
                    const uarc_PublishRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    if (!session->subscriptions) {
        sim_fault(conn, request_id, handle, UARC_BadNoSubscription, now_ms);
        return;
    }
    if (session->publish_count == SIM_MAX_PUBLISH_REQUESTS) {
        sim_fault(conn, request_id, handle, UARC_BadTooManyPublishRequests, now_ms);
        return;
    }
    size_t n = q->subscriptionAcknowledgementsSize;
    sim_publish_request *waiting = &session->publish[session->publish_count];
    *waiting = (sim_publish_request){.request_id = request_id, .request_handle = handle};
    waiting->results = n ? calloc(n, sizeof(uarc_status)) : NULL;
    if (n && !waiting->results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    waiting->result_count = n;
    for (size_t i = 0; i < n; i++) {
        const uarc_SubscriptionAcknowledgement *a = &q->subscriptionAcknowledgements[i];
        sim_subscription *s = find(session, a->subscriptionId, NULL);
        waiting->results[i] = s ? UARC_BadSequenceNumberUnknown : UARC_BadSubscriptionIdInvalid;
        for (size_t j = 0; s && j < SIM_RETRANSMIT_QUEUE; j++) {
            if (a->sequenceNumber && s->queue[j].message.sequenceNumber == a->sequenceNumber) {
                if (stats_of(session))
                    stats_of(session)->acknowledged += notification_count(&s->queue[j].message);
                uarc_clear(&s->queue[j].message, UARC_T(NotificationMessage));
                waiting->results[i] = UARC_Good;
            }
        }
    }
    session->publish_count++;
    publish_waiting(session, now_ms);
}

static void republish(sim_conn *conn, sim_session *session, uint32_t request_id,
                      const uarc_RepublishRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    sim_subscription *s = find(session, q->subscriptionId, NULL);
    if (!s) {
        sim_fault(conn, request_id, handle, UARC_BadSubscriptionIdInvalid, now_ms);
        return;
    }
    for (size_t i = 0; i < SIM_RETRANSMIT_QUEUE; i++) {
        const uarc_NotificationMessage *m = &s->queue[i].message;
        if (q->retransmitSequenceNumber && m->sequenceNumber == q->retransmitSequenceNumber) {
            uarc_RepublishResponse r;
            uarc_init(&r, UARC_T(RepublishResponse));
            if (uarc_copy(m, &r.notificationMessage, UARC_T(NotificationMessage)) != UARC_Good) {
                sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
                return;
            }
            if (stats_of(session))
                stats_of(session)->republishes++;
            sim_reply(conn, request_id, handle, &r, UARC_T(RepublishResponse), now_ms);
            return;
        }
    }
    sim_fault(conn, request_id, handle, UARC_BadMessageNotAvailable, now_ms);
}

/* TransferSubscriptions' sendInitialValues and ResendData (Part 4 §5.14.7.2): an item with
 * values queued sends them (the current one is the last); only one with none sends its last
 * value again, in the next message. */
static void send_current_values(sim_session *session, sim_subscription *s, int64_t now_ms)
{
    uint64_t changes = sim_changes(session->server, now_ms);
    for (size_t j = 0; j < s->item_count; j++)
        s->items[j].initial =
            s->items[j].reporting && !item_pending(session->server, &s->items[j], changes, now_ms);
}

static void transfer(sim_conn *conn, sim_session *session, uint32_t request_id,
                     const uarc_TransferSubscriptionsRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    size_t n = q->subscriptionIdsSize;
    if (n == 0) {
        sim_fault(conn, request_id, handle, UARC_BadNothingToDo, now_ms);
        return;
    }
    uarc_TransferSubscriptionsResponse r;
    uarc_init(&r, UARC_T(TransferSubscriptionsResponse));
    r.results = calloc(n, sizeof *r.results);
    if (!r.results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    r.resultsSize = n;
    for (size_t i = 0; i < n; i++) {
        sim_subscription *s = NULL;
        sim_subscription **link = NULL;
        sim_session *from = session->server->sessions;
        while (from && !(s = find(from, q->subscriptionIds[i], &link)))
            from = from->next;
        if (!s) {
            r.results[i].statusCode = UARC_BadSubscriptionIdInvalid;
            continue;
        }
        if (from != session) {
            *link = s->next;
            s->next = session->subscriptions;
            session->subscriptions = s;
        }
        if (q->sendInitialValues)
            send_current_values(session, s, now_ms);
        available(s, &r.results[i].availableSequenceNumbers,
                  &r.results[i].availableSequenceNumbersSize);
        if (stats_of(session))
            stats_of(session)->transfers++;
    }
    sim_reply(conn, request_id, handle, &r, UARC_T(TransferSubscriptionsResponse), now_ms);
}

/* One method of the Server object about subscription `in[0]` (a UInt32) of this session. */
static uarc_status call_method(sim_session *session, const uarc_CallMethodRequest *m,
                               uarc_CallMethodResult *result, int64_t now_ms)
{
    uint32_t method =
        m->methodId.identifier_type == UARC_NODEID_NUMERIC && m->methodId.namespace_index == 0
            ? m->methodId.identifier.numeric
            : 0;
    if (m->objectId.identifier_type != UARC_NODEID_NUMERIC || m->objectId.namespace_index != 0 ||
        m->objectId.identifier.numeric != UARC_NS0ID_Server ||
        (method != SERVER_GET_MONITORED_ITEMS && method != SERVER_RESEND_DATA))
        return UARC_BadMethodInvalid;
    if (m->inputArgumentsSize != 1)
        return m->inputArgumentsSize ? UARC_BadTooManyArguments : UARC_BadArgumentsMissing;
    const uarc_variant *in = &m->inputArguments[0];
    if (in->type != UARC_T(UInt32) || in->is_array || !in->data)
        return UARC_BadTypeMismatch;
    sim_subscription *s = find(session, *(const uint32_t *)in->data, NULL);
    if (!s)
        return UARC_BadSubscriptionIdInvalid;
    if (method == SERVER_RESEND_DATA) {
        send_current_values(session, s, now_ms);
        return UARC_Good;
    }
    uint32_t *ids = calloc(s->item_count + 1, sizeof *ids);
    uint32_t *handles = calloc(s->item_count + 1, sizeof *handles);
    uarc_variant *out = calloc(2, sizeof *out);
    uarc_status status = ids && handles && out ? UARC_Good : UARC_BadOutOfMemory;
    for (size_t j = 0; status == UARC_Good && j < s->item_count; j++) {
        ids[j] = s->items[j].id;
        handles[j] = s->items[j].client_handle;
    }
    if (status == UARC_Good)
        status = uarc_variant_set_array(&out[0], ids, s->item_count, UARC_T(UInt32));
    if (status == UARC_Good)
        status = uarc_variant_set_array(&out[1], handles, s->item_count, UARC_T(UInt32));
    free(ids);
    free(handles);
    if (status != UARC_Good) {
        if (out) {
            uarc_clear(&out[0], UARC_T(Variant));
            uarc_clear(&out[1], UARC_T(Variant));
        }
        free(out);
        return status;
    }
    result->outputArguments = out;
    result->outputArgumentsSize = 2;
    return UARC_Good;
}

static void call(sim_conn *conn, sim_session *session, uint32_t request_id,
                 const uarc_CallRequest *q, int64_t now_ms)
{
    uint32_t handle = q->requestHeader.requestHandle;
    size_t n = q->methodsToCallSize;
    if (n == 0) {
        sim_fault(conn, request_id, handle, UARC_BadNothingToDo, now_ms);
        return;
    }
    uarc_CallResponse r;
    uarc_init(&r, UARC_T(CallResponse));
    r.results = calloc(n, sizeof *r.results);
    if (!r.results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    r.resultsSize = n;
    for (size_t i = 0; i < n; i++)
        r.results[i].statusCode = call_method(session, &q->methodsToCall[i], &r.results[i], now_ms);
    sim_reply(conn, request_id, handle, &r, UARC_T(CallResponse), now_ms);
}

bool sim_subscription_service(sim_conn *conn, sim_session *session, uint32_t request_id,
                              void *request, const uarc_type *type, int64_t now_ms)
{
    uint32_t handle = ((uarc_RequestHeader *)request)->requestHandle;
    if (type == UARC_T(PublishRequest)) {
        publish(conn, session, request_id, request, now_ms);
    } else if (type == UARC_T(CreateSubscriptionRequest)) {
        create_subscription(conn, session, request_id, request, now_ms);
    } else if (type == UARC_T(ModifySubscriptionRequest)) {
        modify_subscription(conn, session, request_id, request, now_ms);
    } else if (type == UARC_T(DeleteSubscriptionsRequest)) {
        const uarc_DeleteSubscriptionsRequest *q = request;
        per_subscription(conn, session, request_id, handle, q->subscriptionIds,
                         q->subscriptionIdsSize, -1, UARC_T(DeleteSubscriptionsResponse), now_ms);
    } else if (type == UARC_T(SetPublishingModeRequest)) {
        const uarc_SetPublishingModeRequest *q = request;
        per_subscription(conn, session, request_id, handle, q->subscriptionIds,
                         q->subscriptionIdsSize, q->publishingEnabled ? 1 : 0,
                         UARC_T(SetPublishingModeResponse), now_ms);
    } else if (type == UARC_T(CreateMonitoredItemsRequest)) {
        create_items(conn, session, request_id, request, now_ms);
    } else if (type == UARC_T(DeleteMonitoredItemsRequest)) {
        const uarc_DeleteMonitoredItemsRequest *q = request;
        per_item(conn, session, request_id, handle, q->subscriptionId, q->monitoredItemIds,
                 q->monitoredItemIdsSize, -1, UARC_T(DeleteMonitoredItemsResponse), now_ms);
    } else if (type == UARC_T(SetMonitoringModeRequest)) {
        const uarc_SetMonitoringModeRequest *q = request;
        per_item(conn, session, request_id, handle, q->subscriptionId, q->monitoredItemIds,
                 q->monitoredItemIdsSize, (int)q->monitoringMode, UARC_T(SetMonitoringModeResponse),
                 now_ms);
    } else if (type == UARC_T(RepublishRequest)) {
        republish(conn, session, request_id, request, now_ms);
    } else if (type == UARC_T(TransferSubscriptionsRequest)) {
        transfer(conn, session, request_id, request, now_ms);
    } else if (type == UARC_T(CallRequest)) {
        call(conn, session, request_id, request, now_ms);
    } else {
        return false;
    }
    return true;
}
