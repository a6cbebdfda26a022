/*
 * Recovery across connections (Part 4 §6.7): the same session re-activated and the Republish
 * loop, TransferSubscriptions for a new session, re-creation when the server lost them; the
 * keep-alive watch; the hooks that attach the manager to the client.
 */
#include <string.h>

#include "client/subscription_internal.h"
#include "core/alloc.h"

#define STALL_MARGIN_MS 1000

/* When a live subscription that hears nothing is stalled: its keep-alive period, one more
 * interval and a margin after the last response. */
static int64_t stall_due(const uarc_subscription *s)
{
    double period = s->revised_interval * ((double)s->revised_keepalive + 1);
    return s->last_heard + (int64_t)(period > 1e10 ? 1e10 : period) + STALL_MARGIN_MS;
}

/* Where a subscription on the server waits while no request about it is in flight: an adopted
 * one is not ours until transferred, so nothing but the transfer may touch it. */
static phase resting_phase(const uarc_subscription *s)
{
    return s->adopting ? PHASE_NEW : PHASE_LIVE;
}

/* ---- the Republish loop after a resume or a transfer ---- */

void uarc__sub_caught_up(uarc_subscription *s)
{
    s->phase = PHASE_LIVE;
    s->last_heard = uarc__client_now(s->mgr->client);
    s->stalled = false;
    s->mgr->no_subscription = false;
    if (s->state != UARC_SUBSCRIPTION_TRANSFERRED)
        uarc__sub_set_state(s, UARC_SUBSCRIPTION_RESUMED, UARC_Good);
    uarc__sub_drain(s);
    uarc__sub_send_items(s);
    uarc__sub_refill(s->mgr);
}

static void catch_up(uarc_subscription *s)
{
    if (!s->next) {
        uarc__sub_caught_up(s);
        return;
    }
    s->phase = PHASE_CATCHING_UP;
    uarc__sub_send_republish(s);
    if (!s->republishing)
        s->phase = PHASE_LIVE; /* could not send: the connection is going; decided again later */
}

/* The server lost the subscription: report what will never come and create it again. */
void uarc__sub_make_again(uarc_subscription *s, uarc_status reason)
{
    uarc__sub_report_gap(s, s->next ? s->next : 1, 0, reason);
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
        if (s->items[i].state >= ITEM_REMOVED) {
            s->items[i].state = ITEM_REMOVED; /* gone with the server's subscription */
        } else {
            s->items[i].state = ITEM_PENDING;
            s->items[i].server_id = 0;
        }
    uarc__sub_drop_changes(s, reason, true); /* the items are created again with them */
    if (session_active(s->mgr))
        uarc__sub_create(s);
}

static void transfer(manager *m, bool adopted_only);

static void on_transfer(void *user_data, uarc_status status, void *response)
{
    manager *m = user_data;
    m->transferring = false;
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
            s->phase = resting_phase(s); /* decided again at the next activation */
            continue;
        }
        s->adopting = false;
        uarc_status result = status != UARC_Good           ? status
                             : r && index < r->resultsSize ? r->results[index].statusCode
                                                           : UARC_BadUnexpectedError;
        if (uarc_status_is_bad(result)) {
            s->phase = PHASE_LIVE;
            uarc__sub_make_again(s, result);
            continue;
        }
        uarc__sub_keep_available(s, r->results[index].availableSequenceNumbers,
                                 r->results[index].availableSequenceNumbersSize);
        s->initial_values = true; /* sendInitialValues */
        uarc__sub_set_state(s, UARC_SUBSCRIPTION_TRANSFERRED, result);
        catch_up(s);
    }
    if (session_active(m))
        transfer(m, true); /* adopted while this transfer was in flight */
    uarc__sub_sweep(m);
    uarc__sub_refill(m);
}

static bool to_transfer(const uarc_subscription *s, bool adopted_only)
{
    return s->id && !s->deleted && s->phase != PHASE_TRANSFERRING && (s->adopting || !adopted_only);
}

/* A new session replaces the one the subscriptions lived in: move them (Part 4 §6.7 step 2);
 * or, `adopted_only`, just those another client left (uarc_subscription_adopt()). */
static void transfer(manager *m, bool adopted_only)
{
    if (m->transferring)
        return; /* one at a time: its answer is matched to the subscriptions in flight */
    size_t n = 0;
    for (size_t i = 0; i < m->sub_count; i++)
        n += to_transfer(m->subs[i], adopted_only);
    if (!n)
        return;
    uint32_t *ids = uarc__calloc(n, sizeof *ids);
    if (!ids)
        return;
    size_t k = 0;
    for (size_t i = 0; i < m->sub_count; i++)
        if (to_transfer(m->subs[i], adopted_only))
            ids[k++] = m->subs[i]->id;
    uarc_TransferSubscriptionsRequest req;
    uarc_init(&req, UARC_T(TransferSubscriptionsRequest));
    req.subscriptionIdsSize = n;
    req.subscriptionIds = ids;
    req.sendInitialValues = true;
    if (uarc_client_send(m->client, &req, UARC_T(TransferSubscriptionsRequest),
                         UARC_T(TransferSubscriptionsResponse), 0, on_transfer, m,
                         NULL) == UARC_Good) {
        m->transferring = true;
        for (size_t i = 0; i < m->sub_count; i++)
            if (to_transfer(m->subs[i], adopted_only)) {
                m->subs[i]->phase = PHASE_TRANSFERRING;
                m->subs[i]->inflight++;
            }
    }
    uarc__free(ids);
}

UARC_API uarc_status uarc_subscription_adopt(uarc_client *client, uint32_t subscription_id,
                                             uint32_t next_sequence,
                                             const uarc_subscription_config *config,
                                             uarc_subscription **subscription)
{
    if (!subscription_id) {
        *subscription = NULL;
        return UARC_BadSubscriptionIdInvalid;
    }
    uarc_status status = uarc__sub_alloc(client, config, subscription);
    if (status != UARC_Good)
        return status;
    uarc_subscription *s = *subscription;
    s->id = subscription_id;
    s->adopting = true;
    s->next = s->horizon = next_sequence;
    /* TransferSubscriptions does not tell them: until a ModifySubscription, the stall watch
     * goes by what the previous client is taken to have asked for. */
    s->revised_interval = s->cfg.publishing_interval_ms;
    s->revised_keepalive = s->cfg.max_keepalive_count;
    if (session_active(s->mgr))
        transfer(s->mgr, true);
    return UARC_Good;
}

/* ---- client hooks ---- */

static void on_session_active(void *user_data, bool resumed)
{
    manager *m = user_data;
    m->throttle = m->probe_wait = m->good_since = m->probe_refusals = 0;
    m->probing = false;
    m->outstanding = 0;
    m->no_subscription = false;
    m->retry_at = -1;
    if (!resumed && m->limits == LIMITS_KNOWN)
        m->limits = LIMITS_UNKNOWN; /* another session: perhaps another server */
    if (!resumed)
        m->resend_unsupported = false;
    /* Acknowledgements name the old subscription ids; after a transfer they still hold. */
    transfer(m, resumed); /* a re-activated session still has ours, not adopted ones */
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        if (s->deleted || s->phase == PHASE_TRANSFERRING || s->adopting)
            continue;
        if (!s->id) {
            if (s->phase == PHASE_NEW)
                uarc__sub_create(s);
            continue;
        }
        for (size_t j = 0; j < s->item_count; j++)
            if (s->items[j].state == ITEM_CREATING)
                s->items[j].state = ITEM_UNSURE;
            else if (s->items[j].state == ITEM_DROPPED)
                s->items[j].state = ITEM_DROPPED_UNSURE;
        s->batch_in_flight = false;
        catch_up(s);
    }
    uarc__sub_refill(m);
}

static void on_connection_lost(void *user_data)
{
    manager *m = user_data;
    m->outstanding = 0;
    m->transferring = false;
    if (m->limits == LIMITS_READING)
        m->limits = LIMITS_UNKNOWN;
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        s->republishing = s->probing = false;
        if (s->phase == PHASE_CREATING)
            s->phase = PHASE_NEW;
        else if (s->phase != PHASE_NEW)
            s->phase = resting_phase(s);
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
        uarc__sub_refill(m);
    }
    for (size_t i = 0; i < m->sub_count; i++) {
        uarc_subscription *s = m->subs[i];
        if (s->phase != PHASE_LIVE || !s->id || s->stalled || s->deleted)
            continue;
        if (now >= stall_due(s)) {
            s->stalled = true;
            uarc__sub_set_state(s, UARC_SUBSCRIPTION_STALLED, UARC_BadTimeout);
            /* Does the server still have it? A Republish answers BadSubscriptionIdInvalid when
             * not, and the subscription is then created again. */
            if (!s->deleted && !s->republishing && session_active(m)) {
                uarc__sub_send_republish_of(s, s->next ? s->next : 1);
                s->probing = s->republishing;
            }
        }
    }
    uarc__sub_sweep(m);
}

static void on_destroy(void *user_data)
{
    manager *m = user_data;
    for (size_t i = 0; i < m->sub_count; i++)
        uarc__sub_free(m->subs[i]);
    uarc__free(m->subs);
    uarc__free(m->acks);
    uarc__free(m);
}

manager *uarc__sub_manager(uarc_client *client)
{
    manager *m = uarc__client_hooks_user_data(client);
    if (m)
        return m;
    m = uarc__calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->client = client;
    m->cap = DEFAULT_PUBLISH_CAP;
    m->spare = DEFAULT_PUBLISH_SPARE;
    m->retry_at = -1;
    uarc__client_hooks hooks = {on_session_active,
                                on_connection_lost,
                                on_next_deadline,
                                on_tick,
                                on_destroy,
                                uarc__sub_gather_ms,
                                m};
    uarc__client_set_hooks(client, &hooks);
    return m;
}
