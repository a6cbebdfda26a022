/*
 * Subscriptions, monitored data items and event items on a client, built to lose nothing.
 *
 * A subscription belongs to a client and follows it across connections. It is created on the
 * server as soon as the client's session is active (at once, or at the next activation), and
 * its items are created in batches after it. While subscriptions exist the client keeps at
 * least min(live subscriptions + 1, cap) PublishRequests outstanding (cap: 5, see
 * uarc_subscription_set_publish_cap()); when it falls below that, it is refilled to the cap in
 * one write (uarc_subscription_set_publish_spare()), and kept at the whole cap while the server
 * reports that it holds more notifications than it sent (moreNotifications).
 *
 * Delivery is in sequence-number order, once: duplicates are dropped; a missing number that the
 * server still lists as available is fetched with Republish before anything newer is delivered;
 * a number that cannot be had any more is reported as a gap (the `gap` callback), never skipped
 * silently. A NotificationMessage is acknowledged once its callbacks have returned, or, with
 * config.deferred_ack, only when the application calls uarc_subscription_ack(): until then the
 * server keeps it in its retransmission queue.
 *
 * Across a lost connection (Part 4 §6.7): when the client re-activates the same session, each
 * subscription Republishes from its next expected number until the server answers
 * BadMessageNotAvailable, then publishing resumes (state RESUMED). When the client had to create
 * a new session, the subscriptions are moved to it with TransferSubscriptions (sendInitialValues
 * true; state TRANSFERRED, then the same Republish loop); a subscription the server does not
 * have is created again with its items (state RECREATED, new subscription id), after a gap from
 * the first undelivered number (`to` 0: open-ended). Items whose CreateMonitoredItems got no
 * answer (the connection went, or it timed out) may exist on the server all the same: the
 * subscription asks Server.GetMonitoredItems, takes over those the server has (item_created
 * Good) and creates only the others, so no item exists twice. A server that cannot answer (the
 * Call fails: no such method, no access, a fault; or its outputs are not two UInt32 arrays of
 * one length) gets the subscription deleted (DeleteSubscriptions) and created again with all its
 * items, as one it had lost: a gap from the first undelivered number, `to` 0, with the status of
 * that Call as the reason, then state RECREATED.
 *
 * The module does no I/O and reads no clock: it sends through uarc_client_send() and runs from
 * the client's callbacks and tick, so it works the same in blocking, event-loop and byte mode.
 *
 * Threads and callbacks: as the client's. Callbacks run inside uarc_client_process(),
 * uarc_client_receive_bytes(), uarc_client_tick() or the blocking calls. A callback may call any
 * function here, including uarc_subscription_delete() on its own subscription (the memory is
 * released once control is back in the client), but must not delete the client.
 *
 * Bounds on what the server controls: messages held while a hole is being filled (256 per
 * subscription; beyond, the hole is reported as a gap), the available sequence numbers kept
 * (1024), acknowledgements waiting for a PublishRequest (4096; beyond, the oldest are dropped and
 * the server keeps those messages until they age out), item handles outside the subscription's
 * items (ignored). Array lengths and nesting in responses are bounded by the client's decode
 * limits. Memory per monitored item: a record of 128 bytes (on 64-bit machines) that holds
 * the last value delivered when it is a scalar of up to 8 bytes, a copy of its NodeId, and a
 * copy of any other last value; measured (scripts/bench, bench/RESULTS.md §11, 100,000 items in
 * one subscription): about 131 bytes per item with a numeric NodeId, created and with an Int32
 * value alike; a 14-character string NodeId adds about 32.
 *
 * A value the server sends again in a later message (the same DataValue, source timestamp
 * included, as the item's last one) is not a change and is not delivered twice: node-opcua
 * 2.186.4 re-sends the last value of every item with an empty queue at each ActivateSession, so
 * a resumed session would otherwise repeat one value per item.
 */
#ifndef UARC_SUBSCRIPTION_H
#define UARC_SUBSCRIPTION_H

#include "uarc/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uarc_subscription uarc_subscription;

typedef enum uarc_subscription_state {
    UARC_SUBSCRIPTION_PENDING = 0, /* not yet on the server */
    UARC_SUBSCRIPTION_CREATED,     /* CreateSubscription succeeded */
    UARC_SUBSCRIPTION_RESUMED,     /* the same session was re-activated and caught up, or a
                                      stalled subscription was heard from again */
    UARC_SUBSCRIPTION_TRANSFERRED, /* moved to a new session with TransferSubscriptions */
    UARC_SUBSCRIPTION_RECREATED,   /* created again (new id) after the server lost it */
    UARC_SUBSCRIPTION_STALLED, /* no PublishResponse for (keep-alive count + 1) x interval + 1 s; a
                                  Republish then asks the server, and one it does not have is
                                  created again (RECREATED, after a gap) */
    UARC_SUBSCRIPTION_FAILED   /* the server refused CreateSubscription (status tells why) */
} uarc_subscription_state;

/* "created", "resumed", ... (static string). */
UARC_API const char *uarc_subscription_state_name(uarc_subscription_state state);

/* One data change, valid during the callback. */
typedef struct uarc_data_change {
    uarc_subscription *subscription;
    uint32_t subscription_id; /* the server's */
    uint32_t sequence_number; /* of the NotificationMessage that carried it */
    uint32_t item;            /* the handle uarc_subscription_add_item() gave */
    void *item_user_data;
    const uarc_nodeid *node;
    /* As the server sent it; uarc_status_is_overflow(value->status): the item's queue dropped
     * values next to this one (the oldest before it, or with discard_newest the newest after). */
    const uarc_data_value *value;
} uarc_data_change;

/* One event of an event item, valid during the callback. */
typedef struct uarc_event {
    uarc_subscription *subscription;
    uint32_t subscription_id;
    uint32_t sequence_number;
    uint32_t item; /* the handle uarc_subscription_add_event_item() gave */
    void *item_user_data;
    const uarc_nodeid *node;    /* the notifier */
    const uarc_variant *fields; /* in the order of the item's select clauses */
    size_t field_count;         /* as the server sent them (normally the select count) */
} uarc_event;

typedef struct uarc_subscription_callbacks {
    void (*data_change)(void *user_data, const uarc_data_change *change);
    /* Every data change of message `sequence_number` has been delivered: with deferred_ack, the
     * moment to pass the number on to whatever will later call uarc_subscription_ack(). */
    void (*message_delivered)(void *user_data, uarc_subscription *subscription,
                              uint32_t sequence_number);
    /* Messages `from`..`to` (wrapping past 4294967295 to 1) will never be delivered; `to` 0:
     * every number from `from` on, of the subscription id the server had before. `reason`:
     * BadMessageNotAvailable (the server does not hold them), BadSubscriptionIdInvalid (the
     * subscription was lost and re-created), BadResourceUnavailable (a bound was reached); for a
     * refused transfer, or a Server.GetMonitoredItems that failed (the subscription was deleted
     * and re-created, see above), that status.
     * After a gap of BadMessageNotAvailable or BadResourceUnavailable the subscription goes on,
     * and the client calls Server.ResendData (Part 4 §6.7 step 5; one call at a time per
     * subscription, none with config.no_resend_after_gap): the server sends the current value
     * of every data item again, and those equal to the last delivered (same value, same source
     * timestamp) are dropped, so the data changes that follow the gap include each item whose
     * value changed inside it, with its current value (not the values in between; events
     * inside a gap stay lost). A server that cannot (the Call fails, or its result is Bad) is
     * not asked again in that session (logged once per client at INFO). The call is sent before
     * this callback runs: uarc_subscription_resend_pending() tells it. After a re-creation
     * (`to` 0) or a transfer (sendInitialValues) the items' values come anyway: no call. */
    void (*gap)(void *user_data, uarc_subscription *subscription, uint32_t from, uint32_t to,
                uarc_status reason);
    void (*state_changed)(void *user_data, uarc_subscription *subscription,
                          uarc_subscription_state state, uarc_status status);
    /* An item's CreateMonitoredItems result (again after a re-creation). */
    void (*item_created)(void *user_data, uarc_subscription *subscription, uint32_t item,
                         uarc_status status);
    void (*event)(void *user_data, const uarc_event *event);
    /* An item's result of uarc_subscription_modify_items() or
     * uarc_subscription_set_monitoring_mode(), once per item that was on the server at the call
     * (not for one removed before its request went out): the server's result, the status of the
     * request when it failed as a whole, or BadSubscriptionIdInvalid (see "when the connection
     * drops" below). */
    void (*item_modified)(void *user_data, uarc_subscription *subscription, uint32_t item,
                          uarc_status status);
    void *user_data;
    /* An item's result of uarc_subscription_remove_items(), once per item that was on the server
     * at the call (created and answered; not for one still to be created, nor for one whose
     * creation was in flight or unanswered: that one is deleted on the server without a report
     * once its id is known): the server's result (a removal repeated after its answer was lost
     * tells BadMonitoredItemIdInvalid as Good: the first one took it), the status of the request
     * when it failed as a whole, or the status that ended the subscription (see "when the
     * connection drops" below). The handle is invalid already: only its number is told. */
    void (*item_removed)(void *user_data, uarc_subscription *subscription, uint32_t item,
                         uarc_status status);
} uarc_subscription_callbacks;

/* A zero-filled struct is valid; each default is given per field. */
typedef struct uarc_subscription_config {
    double publishing_interval_ms; /* 0: 500 */
    uint32_t max_keepalive_count;  /* 0: 10 */
    /* 0: at least 3 x max_keepalive_count and enough publishing intervals to cover 120 s, so that
     * the subscription outlives a server's re-dial back-off (node-opcua's reaches 60 s). */
    uint32_t lifetime_count;
    uint32_t max_notifications_per_publish; /* 0: no limit */
    uint8_t priority;
    bool publishing_disabled; /* create with publishing off */
    bool deferred_ack;        /* acknowledge only on uarc_subscription_ack() */
    /* Default false: after a gap of a subscription that goes on (BadMessageNotAvailable,
     * BadResourceUnavailable) the client calls Server.ResendData, see the `gap` callback. */
    bool no_resend_after_gap;
    /* Items per CreateMonitoredItems, DeleteMonitoredItems, ModifyMonitoredItems and
     * SetMonitoringMode; 0: 500. Never more than the server's
     * Server/ServerCapabilities/OperationLimits/MaxMonitoredItemsPerCall, read once per session
     * before its first items (0, or not readable: no limit). Halved whenever the server answers
     * BadTooManyOperations all the same. */
    uint32_t item_batch_size;
    uarc_subscription_callbacks callbacks;
} uarc_subscription_config;

typedef enum uarc_monitor_trigger {
    UARC_MONITOR_TRIGGER_STATUS_VALUE = 0, /* default */
    UARC_MONITOR_TRIGGER_STATUS,
    UARC_MONITOR_TRIGGER_STATUS_VALUE_TIMESTAMP
} uarc_monitor_trigger;

/* A data item. A zero-filled struct (with a node) monitors the Value with the defaults. */
typedef struct uarc_monitored_item_params {
    uarc_nodeid node;      /* copied */
    uint32_t attribute_id; /* 0: Value (13) */
    /* 0: the publishing interval (OPC UA's -1); a negative value asks for the fastest rate the
     * server supports (0 on the wire). */
    double sampling_interval_ms;
    uint32_t queue_size; /* 0: 1 */
    bool discard_newest; /* default false: a full queue discards its oldest value */
    uarc_monitor_trigger trigger;
    uarc_DeadbandType deadband_type; /* None (default), Absolute, Percent */
    double deadband_value;
    void *user_data; /* given back in each uarc_data_change */
} uarc_monitored_item_params;

/*
 * Creates a subscription on `client` (config NULL: defaults). It is created on the server at
 * once when the session is active, else at the next activation; state_changed tells the outcome.
 * *subscription is owned by the client: uarc_subscription_delete() it, or it is freed with the
 * client. Returns Good, BadOutOfMemory.
 */
UARC_API uarc_status uarc_subscription_new(uarc_client *client,
                                           const uarc_subscription_config *config,
                                           uarc_subscription **subscription);

/*
 * Takes over a subscription another client (or an earlier run of this one) left on the server,
 * for instance one a collector that died had made: `subscription_id` is its id on the server,
 * `next_sequence` the first sequence number that client had not passed on (0: not known). When
 * the session is active (at once, or at the next activation) it is moved here with
 * TransferSubscriptions (sendInitialValues true; state TRANSFERRED), then Republished from
 * `next_sequence` until BadMessageNotAvailable, and numbers from there up to the first message
 * that arrives which the server no longer has are a gap, as after a lost connection. Items added
 * before the transfer is answered are taken to be the previous client's, added in the same order
 * (handle k is client handle k): Server.GetMonitoredItems tells which the server has, and only
 * the others are created (a server that cannot tell: deleted and re-created, as above). A server
 * that refuses the transfer (Part 4 §5.13.7: another user, or for an anonymous one another
 * ApplicationUri or SecurityMode None; or the subscription is gone) gets a gap from `next_sequence`
 * (1 when 0), `to` 0, with its status as the reason, and a new subscription with the items (state
 * RECREATED). `config` as for uarc_subscription_new(); its publishing interval and keep-alive count
 * should be the previous client's (the stall watch uses them until the subscription is modified);
 * uarc_subscription_modify() and uarc_subscription_set_publishing() before the transfer is answered
 * are kept for a re-creation only. Returns Good, BadSubscriptionIdInvalid (id 0), BadOutOfMemory.
 */
UARC_API uarc_status uarc_subscription_adopt(uarc_client *client, uint32_t subscription_id,
                                             uint32_t next_sequence,
                                             const uarc_subscription_config *config,
                                             uarc_subscription **subscription);

/* Deletes the subscription on the server (DeleteSubscriptions, not waited for) and here: no
 * callback of it runs any more. NULL is ignored. */
UARC_API void uarc_subscription_delete(uarc_subscription *subscription);

/* Adds a data item; it is created with the next batch. *item (may be NULL) receives its handle,
 * which data changes carry. Returns Good, BadOutOfMemory, BadTooManyMonitoredItems (2^24 items
 * were added to this subscription). */
UARC_API uarc_status uarc_subscription_add_item(uarc_subscription *subscription,
                                                const uarc_monitored_item_params *params,
                                                uint32_t *item);

/* An event item: the events an object reports (EventNotifier attribute), each delivered as the
 * values of its select clauses. A zero-filled struct with a node and one select is valid. */
typedef struct uarc_event_item_params {
    uarc_nodeid node; /* the notifier, e.g. i=2253 (Server); copied */
    /* Browse paths of the fields, relative to BaseEventType: "Message", "Severity", "EventType",
     * "EnabledState/Id"; each element "[ns:]Name" (namespace 0 when none). 1 to 64 of them,
     * each at most 512 bytes; copied. */
    const char *const *select;
    size_t select_count;
    /* Where clause: only events of this type or a subtype (OfType). Null NodeId (i=0): all. */
    uarc_nodeid of_type;
    uint32_t queue_size; /* 0: 100 */
    void *user_data;     /* given back in each uarc_event */
} uarc_event_item_params;

/* Adds an event item (EventFilter with the select clauses and the OfType where clause); it is
 * created with the next batch, like a data item. Returns Good, BadOutOfMemory,
 * BadTooManyMonitoredItems, BadEventFilterInvalid (no select clause or more than 64, or a path
 * that does not parse: an empty element, a name over 512 bytes). */
UARC_API uarc_status uarc_subscription_add_event_item(uarc_subscription *subscription,
                                                      const uarc_event_item_params *params,
                                                      uint32_t *item);

/*
 * Removals, modifications and monitoring modes of items on the server go out as requests of at
 * most min(config.item_batch_size, the server's MaxMonitoredItemsPerCall) items, one request of
 * the subscription at a time, in the order of the calls; a BadTooManyOperations answer halves
 * the batch size (for creation too) and the same items go again. Each call takes effect here at
 * once (handles removed, parameters and modes kept for a re-creation) and returns before the
 * server has answered, also while the session is not active (its requests wait for it); a
 * handle given twice in one call counts once. A call waiting to be sent holds 4 bytes per item.
 *
 * When the connection drops before every batch of a call has been answered, the items of the
 * answered batches took the change on the server (item_modified told them); the others, the
 * batch that got no answer included, are sent once the session is back (the same session
 * re-activated, or the subscription transferred to a new one; these services may be repeated).
 * When the server lost the subscription instead (it is created again: state RECREATED), what was
 * not yet answered is not sent: item_modified tells the status that ended the subscription
 * (BadSubscriptionIdInvalid; a refused transfer's or a failed Server.GetMonitoredItems' status)
 * for each of those items, which are then created with the new parameters and modes
 * (item_created tells), and item_removed tells it for each removed item whose removal was not
 * answered: gone from the server with the subscription, it is not created again.
 */

/* Removes `count` items (DeleteMonitoredItems for those on the server; one whose
 * CreateMonitoredItems is still in flight is deleted there once the answer gives its id, or,
 * when the answer was lost, once Server.GetMonitoredItems shows the server has it): their
 * handles are invalid from now on and their data no longer delivered; item_removed tells the
 * result of each item that was on the server. `items` is only read during the call. Returns Good,
 * BadMonitoredItemIdInvalid (an unknown or removed handle: nothing is removed), BadOutOfMemory
 * (nothing is removed). */
UARC_API uarc_status uarc_subscription_remove_items(uarc_subscription *subscription,
                                                    const uint32_t *items, size_t count);

/* uarc_subscription_remove_items() of one item. */
UARC_API uarc_status uarc_subscription_remove_item(uarc_subscription *subscription, uint32_t item);

/*
 * ModifyMonitoredItems for `count` data items: sampling interval, queue size, discard policy,
 * trigger and deadband from `params` (its node, attribute_id and user_data are ignored: those of
 * each item stay; `params` and `items` are only read during the call). The new parameters are
 * kept for a re-creation too. Items not yet sent are created with them; item_modified tells the
 * result of each item on the server. Either every item takes the parameters or none: returns
 * Good, BadMonitoredItemIdInvalid, BadNotSupported (an event item), BadInvalidState (an item is
 * being created or failed: try again later), BadOutOfMemory.
 */
UARC_API uarc_status uarc_subscription_modify_items(uarc_subscription *subscription,
                                                    const uint32_t *items, size_t count,
                                                    const uarc_monitored_item_params *params);

/* uarc_subscription_modify_items() of one item. */
UARC_API uarc_status uarc_subscription_modify_item(uarc_subscription *subscription, uint32_t item,
                                                   const uarc_monitored_item_params *params);

/*
 * SetMonitoringMode (Disabled, Sampling or Reporting) for `count` items (`items` only read
 * during the call); the mode is kept for a re-creation too, and items not yet sent are created
 * in it. Either every item takes the mode or none (an error changes nothing). item_modified
 * tells the result of each item on the server. Returns Good, BadMonitoringModeInvalid,
 * BadMonitoredItemIdInvalid, BadInvalidState (as for uarc_subscription_modify_items()),
 * BadOutOfMemory.
 */
UARC_API uarc_status uarc_subscription_set_monitoring_mode(uarc_subscription *subscription,
                                                           const uint32_t *items, size_t count,
                                                           uarc_MonitoringMode mode);

/* ModifySubscription with new values (0: keep the current one); kept for a re-creation too.
 * Returns Good or why the request could not be sent; the revised values are read with
 * uarc_subscription_revised(). */
UARC_API uarc_status uarc_subscription_modify(uarc_subscription *subscription,
                                              double publishing_interval_ms,
                                              uint32_t max_keepalive_count,
                                              uint32_t lifetime_count);

/* SetPublishingMode; kept for a re-creation too. */
UARC_API uarc_status uarc_subscription_set_publishing(uarc_subscription *subscription,
                                                      bool enabled);

/* With config.deferred_ack: acknowledge message `sequence_number` (sent with the next
 * PublishRequest). Returns Good, BadInvalidState without deferred_ack. */
UARC_API uarc_status uarc_subscription_ack(uarc_subscription *subscription,
                                           uint32_t sequence_number);

/* The server's subscription id (0 while not created) and state. */
UARC_API uint32_t uarc_subscription_id(const uarc_subscription *subscription);
UARC_API uarc_subscription_state uarc_subscription_state_get(const uarc_subscription *subscription);
/* True while a Server.ResendData call for the subscription is in flight: asked after a gap (see
 * the `gap` callback, from which it is already true), the changed values follow. */
UARC_API bool uarc_subscription_resend_pending(const uarc_subscription *subscription);
/* The values the server revised (0 until created). */
UARC_API void uarc_subscription_revised(const uarc_subscription *subscription,
                                        double *publishing_interval_ms,
                                        uint32_t *max_keepalive_count, uint32_t *lifetime_count);

/* The most PublishRequests the client keeps outstanding (0: 5). A BadTooManyPublishRequests
 * lowers it to what the server held at the time (logged at INFO). A server's limit may be shared
 * by its sessions and leave room later: after 2 x that many good PublishResponses in a row one
 * more is tried, and so on up to the cap; a refused try lowers it again and doubles the wait
 * before the next (at most 1024 responses). The refusals of requests sent together (a refill)
 * only lower it, one after another. A refused try costs the server's oldest request, the others
 * still wait there: delivery goes on. A new session starts from the cap. */
UARC_API void uarc_subscription_set_publish_cap(uarc_client *client, uint32_t cap);
/* How many PublishRequests beyond those wanted a refill sends (default UINT32_MAX: up to the
 * cap; 0: one for each response). The pipeline is refilled when it falls below
 * min(live subscriptions + 1, cap), and then to that many more, within the cap and the server's
 * limit, in one write: one subscription that publishes steadily under the default cap costs one
 * write (and one wake-up of the server) every fourth response instead of every response. The
 * acknowledgements ride on those requests, so the server keeps up to that many more messages in
 * its retransmission queue until they go. */
UARC_API void uarc_subscription_set_publish_spare(uarc_client *client, uint32_t spare);

#ifdef __cplusplus
}
#endif

#endif
