/*
 * Changes to monitored items that exist: removal (DeleteMonitoredItems), modification
 * (ModifyMonitoredItems) and monitoring mode (SetMonitoringMode), each call queued and sent in
 * batches within the server's MaxMonitoredItemsPerCall.
 */
#include <string.h>

#include "client/subscription_internal.h"
#include "core/alloc.h"

typedef enum change_kind { CHANGE_REMOVE, CHANGE_MODIFY, CHANGE_MODE } change_kind;

/* One call's items on the server, in the order of the call, each once. */
struct item_change {
    item_change *next;
    change_kind kind;
    uarc_MonitoringMode mode;
    size_t count, capacity;
    size_t taken; /* handles[0..taken) have been put in a request */
    /* handles[0..unanswered) went in a request that got no answer: a removal of them may have
     * been done already */
    size_t unanswered;
    bool quiet; /* removals of items found on the server after their removal: not reported */
    uint32_t handles[];
};

/* The request in flight: it covers `taken` entries of the first change, of which the items
 * still there when it was sent are in `handles`, in the request's order. */
struct change_batch {
    uarc_subscription *s;
    change_kind kind;
    size_t taken;
    size_t repeated; /* the first `repeated` handles were sent before without an answer */
    bool quiet;
    size_t count;
    uint32_t handles[];
};

/* item_removed for a removal (its handle no longer valid), else item_modified while the item is
 * still there. */
static void report(uarc_subscription *s, change_kind kind, uint32_t handle, uarc_status status)
{
    void (*callback)(void *, uarc_subscription *, uint32_t, uarc_status) =
        kind == CHANGE_REMOVE ? s->cfg.callbacks.item_removed : s->cfg.callbacks.item_modified;
    if (callback && !s->deleted && (kind == CHANGE_REMOVE || item_of(s, handle))) {
        s->delivering++;
        callback(s->cfg.callbacks.user_data, s, handle, status);
        s->delivering--;
    }
}

void uarc__sub_drop_changes(uarc_subscription *s, uarc_status reason, bool report_them)
{
    /* The batch in flight is forgotten here; its answer, when it comes, finds it no longer in
     * flight and only frees it. Its items are reported with the others. */
    if (s->change_in_flight)
        s->changes->taken -= s->change_in_flight->taken;
    s->change_in_flight = NULL;
    item_change *c = s->changes;
    s->changes = NULL; /* a callback below may queue new changes */
    while (c) {
        item_change *next = c->next;
        for (size_t i = c->taken; report_them && !c->quiet && i < c->count; i++)
            report(s, c->kind, c->handles[i], reason);
        uarc__free(c);
        c = next;
    }
}

static void batch_answered(change_batch *b, uarc_status status, const uarc_status *results,
                           size_t result_stride, size_t result_count)
{
    uarc_subscription *s = b->s;
    s->inflight--;
    bool current = s->change_in_flight == b;
    if (current)
        s->change_in_flight = NULL;
    if (!current || s->deleted) {
        uarc__free(b); /* dropped: the subscription was lost, or deleted */
        uarc__sub_sweep(s->mgr);
        return;
    }
    item_change *c = s->changes;
    if (status == UARC_BadTooManyOperations && b->count > 1) {
        /* Beyond the server's MaxMonitoredItemsPerCall: half as many, the same items again. */
        if (s->cfg.item_batch_size > b->count / 2)
            s->cfg.item_batch_size = (uint32_t)(b->count / 2);
        uarc__sub_log(s, UARC_LOG_INFO, "%s: BadTooManyOperations, %u items per call",
                      b->kind == CHANGE_REMOVE   ? "DeleteMonitoredItems"
                      : b->kind == CHANGE_MODIFY ? "ModifyMonitoredItems"
                                                 : "SetMonitoringMode",
                      s->cfg.item_batch_size);
        c->taken -= b->taken;
    } else if (status != UARC_Good && !session_active(s->mgr)) {
        /* No answer, the connection went: perhaps done, perhaps not. All three services may be
         * repeated, so the batch goes again once the session is back. */
        c->taken -= b->taken;
        if (c->unanswered < c->taken + b->taken)
            c->unanswered = c->taken + b->taken;
    } else if (status == UARC_BadSubscriptionIdInvalid) {
        c->taken -= b->taken;
        uarc__free(b);
        uarc__sub_make_again(s, status);
        uarc__sub_sweep(s->mgr);
        return;
    } else {
        for (size_t i = 0; i < b->count && !b->quiet; i++) {
            const uarc_status *r =
                i < result_count ? (const void *)((const char *)results + i * result_stride) : NULL;
            uarc_status result = status != UARC_Good ? status : r ? *r : UARC_BadUnexpectedError;
            /* a removal repeated after a lost answer: the first one may have done it */
            if (b->kind == CHANGE_REMOVE && i < b->repeated &&
                result == UARC_BadMonitoredItemIdInvalid)
                result = UARC_Good;
            report(s, b->kind, b->handles[i], result);
        }
    }
    uarc__free(b);
    uarc__sub_send_changes(s);
    uarc__sub_sweep(s->mgr);
}

static void on_removed(void *user_data, uarc_status status, void *response)
{
    uarc_DeleteMonitoredItemsResponse *r = response;
    batch_answered(user_data, status, r ? r->results : NULL, sizeof(uarc_status),
                   r ? r->resultsSize : 0);
}

static void on_modified(void *user_data, uarc_status status, void *response)
{
    uarc_ModifyMonitoredItemsResponse *r = response;
    batch_answered(user_data, status, r && r->results ? &r->results->statusCode : NULL,
                   sizeof(uarc_MonitoredItemModifyResult), r ? r->resultsSize : 0);
}

static void on_mode_set(void *user_data, uarc_status status, void *response)
{
    uarc_SetMonitoringModeResponse *r = response;
    batch_answered(user_data, status, r ? r->results : NULL, sizeof(uarc_status),
                   r ? r->resultsSize : 0);
}

/* Sends the request for `b` (change `c`): Good or why it could not be sent. */
static uarc_status send_batch(uarc_subscription *s, const item_change *c, change_batch *b)
{
    uarc_client *client = s->mgr->client;
    uint32_t *ids = uarc__calloc(b->count, sizeof *ids);
    uarc_MonitoredItemModifyRequest *mods =
        c->kind == CHANGE_MODIFY ? uarc__calloc(b->count, sizeof *mods) : NULL;
    uarc_DataChangeFilter *filters =
        c->kind == CHANGE_MODIFY ? uarc__calloc(b->count, sizeof *filters) : NULL;
    uarc_status status = UARC_BadOutOfMemory;
    if (!ids || (c->kind == CHANGE_MODIFY && (!mods || !filters)))
        goto done;
    for (size_t i = 0; i < b->count; i++)
        ids[i] = s->items[b->handles[i] - 1].server_id;
    if (c->kind == CHANGE_REMOVE) {
        uarc_DeleteMonitoredItemsRequest req;
        uarc_init(&req, UARC_T(DeleteMonitoredItemsRequest));
        req.subscriptionId = s->id;
        req.monitoredItemIdsSize = b->count;
        req.monitoredItemIds = ids;
        status = uarc_client_send(client, &req, UARC_T(DeleteMonitoredItemsRequest),
                                  UARC_T(DeleteMonitoredItemsResponse), 0, on_removed, b, NULL);
    } else if (c->kind == CHANGE_MODIFY) {
        for (size_t i = 0; i < b->count; i++) {
            mods[i].monitoredItemId = ids[i];
            uarc__sub_item_parameters(&s->items[b->handles[i] - 1], b->handles[i],
                                      &mods[i].requestedParameters, &filters[i]);
        }
        uarc_ModifyMonitoredItemsRequest req;
        uarc_init(&req, UARC_T(ModifyMonitoredItemsRequest));
        req.subscriptionId = s->id;
        req.timestampsToReturn = UARC_TimestampsToReturn_Both;
        req.itemsToModifySize = b->count;
        req.itemsToModify = mods;
        status = uarc_client_send(client, &req, UARC_T(ModifyMonitoredItemsRequest),
                                  UARC_T(ModifyMonitoredItemsResponse), 0, on_modified, b, NULL);
    } else {
        uarc_SetMonitoringModeRequest req;
        uarc_init(&req, UARC_T(SetMonitoringModeRequest));
        req.subscriptionId = s->id;
        req.monitoringMode = c->mode;
        req.monitoredItemIdsSize = b->count;
        req.monitoredItemIds = ids;
        status = uarc_client_send(client, &req, UARC_T(SetMonitoringModeRequest),
                                  UARC_T(SetMonitoringModeResponse), 0, on_mode_set, b, NULL);
    }
done:
    uarc__free(ids);
    uarc__free(mods);
    uarc__free(filters);
    return status;
}

void uarc__sub_send_changes(uarc_subscription *s)
{
    if (s->change_in_flight || !s->changes || !s->id || s->phase != PHASE_LIVE ||
        !session_active(s->mgr) || s->deleted)
        return;
    uint32_t limit = uarc__sub_batch_limit(s);
    while (limit && s->changes) {
        item_change *c = s->changes;
        if (c->taken == c->count) {
            s->changes = c->next;
            uarc__free(c);
            continue;
        }
        size_t room = c->count - c->taken < limit ? c->count - c->taken : limit;
        change_batch *b = uarc__calloc(1, sizeof *b + room * sizeof b->handles[0]);
        if (!b)
            return; /* tried again with the next answer or call */
        b->s = s;
        b->kind = c->kind;
        b->quiet = c->quiet;
        /* a removal's batch holds every handle of its range, in order */
        b->repeated = c->unanswered > c->taken ? c->unanswered - c->taken : 0;
        size_t i = c->taken;
        for (; i < c->count && b->count < room; i++) {
            /* an item removed since the call is left out (and not reported) */
            const item *it = item_of(s, c->handles[i]);
            if (c->kind == CHANGE_REMOVE || (it && it->state == ITEM_ACTIVE))
                b->handles[b->count++] = c->handles[i];
        }
        b->taken = i - c->taken;
        if (!b->count) {
            c->taken = i;
            uarc__free(b);
            continue;
        }
        if (send_batch(s, c, b) != UARC_Good) {
            uarc__free(b); /* the connection is going: sent again once the session is back */
            return;
        }
        c->taken = i;
        s->change_in_flight = b;
        s->inflight++;
        return;
    }
}

/* A change of the items among `handles` that are on the server, each once; NULL without
 * memory. */
static item_change *new_change(const uarc_subscription *s, change_kind kind,
                               const uint32_t *handles, size_t count)
{
    item_change *c = uarc__calloc(1, sizeof *c + count * sizeof c->handles[0]);
    /* one bit per item of the subscription: a handle given twice is sent once */
    uint8_t *seen = count > 1 ? uarc__calloc(s->item_count / 8 + 1, 1) : NULL;
    if (!c || (count > 1 && !seen)) {
        uarc__free(c);
        uarc__free(seen);
        return NULL;
    }
    c->kind = kind;
    c->capacity = count;
    for (size_t i = 0; i < count; i++) {
        uint32_t h = handles[i];
        if (item_of(s, h)->state != ITEM_ACTIVE)
            continue;
        if (seen) {
            uint8_t bit = (uint8_t)(1u << ((h - 1) % 8));
            if (seen[(h - 1) / 8] & bit)
                continue;
            seen[(h - 1) / 8] |= bit;
        }
        c->handles[c->count++] = h;
    }
    uarc__free(seen);
    return c;
}

static void enqueue(uarc_subscription *s, item_change *c)
{
    if (!c->count) {
        uarc__free(c);
        return;
    }
    item_change **tail = &s->changes;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    uarc__sub_send_changes(s);
}

void uarc__sub_delete_on_server(uarc_subscription *s, uint32_t handle)
{
    enum { GROUP = 64 }; /* such items come a batch at a time: one request for many */
    item_change **tail = &s->changes;
    while (*tail && (*tail)->next)
        tail = &(*tail)->next;
    item_change *c = *tail;
    if (!c || c->kind != CHANGE_REMOVE || !c->quiet || c->count == c->capacity) {
        c = uarc__calloc(1, sizeof *c + GROUP * sizeof c->handles[0]);
        if (!c)
            return; /* out of memory: it stays on the server, its values ignored */
        c->kind = CHANGE_REMOVE;
        c->quiet = true;
        c->capacity = GROUP;
        if (*tail)
            (*tail)->next = c;
        else
            s->changes = c;
    }
    c->handles[c->count++] = handle;
    uarc__sub_send_changes(s);
}

/* Whether every item can be changed: Good, BadMonitoredItemIdInvalid, BadNotSupported (an
 * event item and `data_only`), BadInvalidState (being created, or failed). */
static uarc_status changeable(const uarc_subscription *s, const uint32_t *handles, size_t count,
                              bool data_only)
{
    for (size_t i = 0; i < count; i++) {
        const item *it = item_of(s, handles[i]);
        if (!it)
            return UARC_BadMonitoredItemIdInvalid;
        if (it->state != ITEM_PENDING && it->state != ITEM_ACTIVE)
            return UARC_BadInvalidState;
        if (data_only && it->event_filter)
            return UARC_BadNotSupported;
    }
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_remove_items(uarc_subscription *s, const uint32_t *items,
                                                    size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!item_of(s, items[i]))
            return UARC_BadMonitoredItemIdInvalid;
    if (!count)
        return UARC_Good;
    item_change *c = new_change(s, CHANGE_REMOVE, items, count);
    if (!c)
        return UARC_BadOutOfMemory;
    for (size_t i = 0; i < count; i++) {
        item *it = &s->items[items[i] - 1];
        if (it->state < ITEM_REMOVED) /* a handle given twice: done the first time */
            it->state = it->state == ITEM_CREATING ? ITEM_DROPPED
                        : it->state == ITEM_UNSURE ? ITEM_DROPPED_UNSURE
                                                   : ITEM_REMOVED;
    }
    enqueue(s, c);
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_remove_item(uarc_subscription *s, uint32_t handle)
{
    return uarc_subscription_remove_items(s, &handle, 1);
}

UARC_API uarc_status uarc_subscription_modify_items(uarc_subscription *s, const uint32_t *items,
                                                    size_t count,
                                                    const uarc_monitored_item_params *params)
{
    uarc_status status = changeable(s, items, count, true);
    if (status != UARC_Good || !count)
        return status;
    item_change *c = new_change(s, CHANGE_MODIFY, items, count);
    if (!c)
        return UARC_BadOutOfMemory;
    for (size_t i = 0; i < count; i++) {
        item *it = item_of(s, items[i]);
        uarc_monitored_item_params kept = it->params;
        it->params = *params;
        it->params.node = kept.node;
        it->params.attribute_id = kept.attribute_id;
        it->params.user_data = kept.user_data;
    }
    enqueue(s, c);
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_modify_item(uarc_subscription *s, uint32_t handle,
                                                   const uarc_monitored_item_params *params)
{
    return uarc_subscription_modify_items(s, &handle, 1, params);
}

UARC_API uarc_status uarc_subscription_set_monitoring_mode(uarc_subscription *s,
                                                           const uint32_t *items, size_t count,
                                                           uarc_MonitoringMode mode)
{
    if ((unsigned)mode > UARC_MonitoringMode_Reporting)
        return UARC_BadMonitoringModeInvalid;
    uarc_status status = changeable(s, items, count, false);
    if (status != UARC_Good || !count)
        return status;
    item_change *c = new_change(s, CHANGE_MODE, items, count);
    if (!c)
        return UARC_BadOutOfMemory;
    c->mode = mode;
    for (size_t i = 0; i < count; i++)
        item_of(s, items[i])->mode = mode;
    enqueue(s, c);
    return UARC_Good;
}
