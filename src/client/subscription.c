/*
 * Subscriptions: create, modify, publishing mode and delete, the API's accessors, and what the
 * other subscription files share (log, state, gaps and the ResendData after them, calls of Server
 * methods, freeing).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uarc/nodeids.h"
#include "client/subscription_internal.h"
#include "core/alloc.h"

#define DEFAULT_INTERVAL_MS 500.0
#define DEFAULT_KEEPALIVE   10u
#define DEFAULT_BATCH       500u
#define LIFETIME_COVER_MS   120000.0
#define MAX_INTERVAL_MS     86400000.0 /* a longer revised interval is taken as this */
/* Server.ResendData, a Method (nodeids.h names objects and variables only) */
#define SERVER_RESEND_DATA 12873u

void uarc__sub_ignore_response(void *user_data, uarc_status status, void *response)
{
    (void)user_data, (void)status, (void)response;
}

uarc_status uarc__sub_call_server(uarc_subscription *s, uint32_t method, uarc_response_fn callback)
{
    uarc_variant id = {.type = UARC_T(UInt32), .data = &s->id};
    uarc_CallMethodRequest call = {.objectId = uarc_nodeid_numeric(0, UARC_NS0ID_Server),
                                   .methodId = uarc_nodeid_numeric(0, method),
                                   .inputArgumentsSize = 1,
                                   .inputArguments = &id};
    uarc_CallRequest req;
    uarc_init(&req, UARC_T(CallRequest));
    req.methodsToCallSize = 1;
    req.methodsToCall = &call;
    uarc_status status = uarc_client_send(s->mgr->client, &req, UARC_T(CallRequest),
                                          UARC_T(CallResponse), 0, callback, s, NULL);
    if (status == UARC_Good)
        s->inflight++;
    return status;
}

void uarc__sub_send_delete(manager *m, uint32_t id)
{
    uarc_DeleteSubscriptionsRequest req;
    uarc_init(&req, UARC_T(DeleteSubscriptionsRequest));
    req.subscriptionIdsSize = 1;
    req.subscriptionIds = &id;
    uarc_client_send(m->client, &req, UARC_T(DeleteSubscriptionsRequest),
                     UARC_T(DeleteSubscriptionsResponse), 0, uarc__sub_ignore_response, NULL, NULL);
}

static const char *const state_names[] = {"pending",   "created", "resumed", "transferred",
                                          "recreated", "stalled", "failed"};

UARC_API const char *uarc_subscription_state_name(uarc_subscription_state state)
{
    return (unsigned)state < sizeof state_names / sizeof *state_names ? state_names[state] : "?";
}

void uarc__sub_log(const uarc_subscription *s, uarc_log_level level, const char *fmt, ...)
{
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    uarc__log(uarc__client_logger(s->mgr->client), level, "subscription", "%u: %s", s->id, text);
}

void uarc__sub_free(uarc_subscription *s)
{
    uarc__sub_drop_changes(s, UARC_Good, false);
    for (size_t i = 0; i < s->item_count; i++) {
        uarc_clear(&s->items[i].params.node, UARC_T(NodeId));
        item_forget_last(&s->items[i]);
        if (s->items[i].event_filter)
            uarc_delete(s->items[i].event_filter, UARC_T(EventFilter));
    }
    for (size_t i = 0; i < s->held_count; i++)
        uarc_clear(&s->held[i], UARC_T(NotificationMessage));
    uarc__free(s->held);
    uarc__free(s->items_raw);
    uarc__free(s->available);
    uarc__free(s);
}

/* Frees deleted subscriptions that nothing refers to any more. */
void uarc__sub_sweep(manager *m)
{
    if (m->sweeping)
        return;
    m->sweeping = true;
    for (size_t i = 0; i < m->sub_count;) {
        uarc_subscription *s = m->subs[i];
        if (s->deleted && !s->inflight && !s->delivering) {
            uarc__sub_free(s);
            m->subs[i] = m->subs[--m->sub_count];
        } else {
            i++;
        }
    }
    m->sweeping = false;
}

void uarc__sub_set_state(uarc_subscription *s, uarc_subscription_state state, uarc_status status)
{
    s->state = state;
    uarc__sub_log(s, UARC_LOG_INFO, "%s (%s)", uarc_subscription_state_name(state),
                  uarc_status_name(status));
    if (s->cfg.callbacks.state_changed && !s->deleted) {
        s->delivering++;
        s->cfg.callbacks.state_changed(s->cfg.callbacks.user_data, s, state, status);
        s->delivering--;
    }
}

static void on_resent(void *user_data, uarc_status status, void *response)
{
    uarc_subscription *s = user_data;
    manager *m = s->mgr;
    s->inflight--;
    s->resending = false;
    uarc_CallResponse *r = response;
    if (status == UARC_Good && r && r->resultsSize == 1)
        status = r->results[0].statusCode;
    else if (status == UARC_Good)
        status = UARC_BadUnexpectedError;
    /* The values come with the next Publish; a failure that is not the connection's means this
     * server cannot resend (no such method, no access, not supported): not asked again in this
     * session. Delivery goes on either way. */
    if (uarc_status_is_bad(status) && session_active(m) && !s->deleted) {
        m->resend_unsupported = true;
        if (!m->resend_told)
            uarc__sub_log(s, UARC_LOG_INFO,
                          "ResendData: %s; values changed inside gaps are not fetched from this "
                          "server",
                          uarc_status_name(status));
        m->resend_told = true;
    }
    uarc__sub_sweep(m);
}

/* A gap in a subscription that goes on (Part 4 §6.7 step 5): Server.ResendData has the server
 * send the current value of every data item again; those unchanged since the last delivered are
 * dropped as repeats, so what arrives is what changed inside the gap. */
static void resend_after_gap(uarc_subscription *s)
{
    manager *m = s->mgr;
    if (s->cfg.no_resend_after_gap || s->resending || s->initial_values || s->deleted || !s->id ||
        m->resend_unsupported || !session_active(m))
        return;
    if (uarc__sub_call_server(s, SERVER_RESEND_DATA, on_resent) == UARC_Good)
        s->resending = true;
}

void uarc__sub_report_gap(uarc_subscription *s, uint32_t from, uint32_t to, uarc_status reason)
{
    uarc__sub_log(s, UARC_LOG_WARNING, "messages %u..%u lost (%s)", from, to,
                  uarc_status_name(reason));
    /* `to` 0: the subscription was lost and is made again; its new items bring their values.
     * Asked first, so that the callback can tell whether the changed values will follow. */
    if (to && (reason == UARC_BadMessageNotAvailable || reason == UARC_BadResourceUnavailable))
        resend_after_gap(s);
    if (s->cfg.callbacks.gap && !s->deleted) {
        s->delivering++;
        s->cfg.callbacks.gap(s->cfg.callbacks.user_data, s, from, to, reason);
        s->delivering--;
    }
}

/* A revised publishing interval as the server gave it, made usable: NaN, 0 or less is the one we
 * asked for, more than a day is a day. */
static double sane_interval(double revised, double requested)
{
    if (!(revised > 0))
        return requested;
    return revised > MAX_INTERVAL_MS ? MAX_INTERVAL_MS : revised;
}

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
        if (status == UARC_Good && r && session_active(s->mgr))
            uarc__sub_send_delete(s->mgr, r->subscriptionId);
        uarc__sub_sweep(s->mgr);
        return;
    }
    s->phase = PHASE_NEW;
    if (status != UARC_Good || !response) {
        if (session_active(s->mgr))
            uarc__sub_set_state(s, UARC_SUBSCRIPTION_FAILED, status);
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
    s->initial_values = false;
    s->mgr->no_subscription = false;
    uarc__sub_set_state(s, s->recreate ? UARC_SUBSCRIPTION_RECREATED : UARC_SUBSCRIPTION_CREATED,
                        UARC_Good);
    s->recreate = false;
    uarc__sub_send_items(s);
    uarc__sub_refill(s->mgr);
}

void uarc__sub_create(uarc_subscription *s)
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

uarc_status uarc__sub_alloc(uarc_client *client, const uarc_subscription_config *config,
                            uarc_subscription **subscription)
{
    *subscription = NULL;
    manager *m = uarc__sub_manager(client);
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
    return UARC_Good;
}

UARC_API uarc_status uarc_subscription_new(uarc_client *client,
                                           const uarc_subscription_config *config,
                                           uarc_subscription **subscription)
{
    uarc_status status = uarc__sub_alloc(client, config, subscription);
    if (status == UARC_Good && session_active((*subscription)->mgr))
        uarc__sub_create(*subscription);
    return status;
}

UARC_API void uarc_subscription_delete(uarc_subscription *s)
{
    if (!s || s->deleted)
        return;
    manager *m = s->mgr;
    if (s->id && session_active(m))
        uarc__sub_send_delete(m, s->id);
    s->deleted = true;
    uarc__sub_sweep(m);
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
    uarc__sub_sweep(s->mgr);
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
    if (!s->id || s->adopting || !session_active(s->mgr))
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
    if (!s->id || s->adopting || !session_active(s->mgr))
        return UARC_Good;
    uarc_SetPublishingModeRequest req;
    uarc_init(&req, UARC_T(SetPublishingModeRequest));
    req.publishingEnabled = enabled;
    req.subscriptionIdsSize = 1;
    req.subscriptionIds = &s->id;
    return uarc_client_send(s->mgr->client, &req, UARC_T(SetPublishingModeRequest),
                            UARC_T(SetPublishingModeResponse), 0, uarc__sub_ignore_response, NULL,
                            NULL);
}

UARC_API uarc_status uarc_subscription_ack(uarc_subscription *s, uint32_t sequence_number)
{
    if (!s->cfg.deferred_ack)
        return UARC_BadInvalidState;
    if (s->id && sequence_number)
        uarc__sub_queue_ack(s->mgr, s->id, sequence_number);
    return UARC_Good;
}

UARC_API uint32_t uarc_subscription_id(const uarc_subscription *s)
{
    return s->id;
}

UARC_API bool uarc_subscription_resend_pending(const uarc_subscription *s)
{
    return s->resending;
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
    manager *m = uarc__sub_manager(client);
    if (m)
        m->cap = cap ? cap : DEFAULT_PUBLISH_CAP;
}

UARC_API void uarc_subscription_set_publish_spare(uarc_client *client, uint32_t spare)
{
    manager *m = uarc__sub_manager(client);
    if (m)
        m->spare = spare;
}
