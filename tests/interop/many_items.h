/*
 * What the subscription interop tests share, against node-opcua (subscription_interop.c) and
 * open62541 (subscription62541_interop.c): the items a subscription has on the server, and
 * 1,200 items created, disabled, modified and removed with one library call each, which go out
 * in batches within the server's MaxMonitoredItemsPerCall.
 *
 * Included after cmocka.h, uarc/uarc.h and peer_process.h.
 */
#ifndef UARC_TESTS_MANY_ITEMS_H
#define UARC_TESTS_MANY_ITEMS_H

#include <stdio.h>
#include <string.h>

#define MANY_ITEMS   1200u
#define MANY_WAIT_MS 20000

/* Server.GetMonitoredItems: how many items subscription `id` has on the server. */
static size_t items_on_server(uarc_client *c, uint32_t id)
{
    uarc_nodeid server = uarc_nodeid_numeric(0, UARC_NS0ID_Server);
    uarc_nodeid method = uarc_nodeid_numeric(0, 11492); /* GetMonitoredItems */
    uarc_variant in = {.type = UARC_T(UInt32), .data = &id};
    uarc_variant *out = NULL;
    size_t out_count = 0;
    assert_int_equal(uarc_client_call_method(c, &server, &method, &in, 1, &out, &out_count),
                     UARC_Good);
    assert_int_equal(out_count, 2);
    size_t n = out[0].array_length;
    assert_int_equal(out[1].array_length, n);
    uarc_array_delete(out, out_count, UARC_T(Variant));
    return n;
}

/* What the client logged while the items went back and forth. */
typedef struct many_items_log {
    unsigned limit;  /* the MaxMonitoredItemsPerCall it read (0: none logged) */
    size_t refused;  /* BadTooManyOperations answers */
    unsigned batch;  /* the items per call after the last of them */
    size_t created;  /* item_created callbacks */
    size_t modified; /* item_modified and item_removed callbacks */
    size_t bad;      /* of those, with a bad status */
} many_items_log;

static void many_items_on_created(void *user_data, uarc_subscription *s, uint32_t item,
                                  uarc_status status)
{
    (void)s, (void)item;
    many_items_log *l = user_data;
    l->created++;
    l->bad += status != UARC_Good;
}

static void many_items_on_modified(void *user_data, uarc_subscription *s, uint32_t item,
                                   uarc_status status)
{
    (void)s, (void)item;
    many_items_log *l = user_data;
    l->modified++;
    l->bad += status != UARC_Good;
}

/* The subscription logs each refusal once ("...: BadTooManyOperations, N items per call"); the
 * client's own line about the ServiceFault is not counted. */
static void many_items_on_log(void *user_data, uarc_log_level level, const char *category,
                              const char *message)
{
    (void)level;
    many_items_log *l = user_data;
    const char *limit = strstr(message, "MaxMonitoredItemsPerCall ");
    if (limit)
        sscanf(limit + strlen("MaxMonitoredItemsPerCall "), "%u", &l->limit);
    const char *refused = strstr(message, "BadTooManyOperations, ");
    if (strcmp(category, "subscription") == 0 && refused) {
        l->refused++;
        sscanf(refused + strlen("BadTooManyOperations, "), "%u", &l->batch);
    }
}

/* Drives the client until *counter reaches `count` (or MANY_WAIT_MS passed). */
static void many_items_run_until(uarc_client *c, const size_t *counter, size_t count)
{
    int64_t end = peer_process_now_ms() + MANY_WAIT_MS;
    while (*counter < count && peer_process_now_ms() < end)
        uarc_client_process(c, 100);
    assert_int_equal(*counter, count);
}

/* On a new session to `url`: MANY_ITEMS items added (`step` at a time, each step created before
 * the next; 0: all at once), then disabled, modified and removed with one call each; every
 * item's result is reported Good, the server holds them all and then none. */
static void many_items_back_and_forth(const char *url, size_t step, many_items_log *log)
{
    memset(log, 0, sizeof *log);
    uarc_client_config ccfg = {.connect_timeout_ms = 60000,
                               .request_timeout_ms = 30000,
                               .logger = {.fn = many_items_on_log, .user_data = log}};
    uarc_client *c = uarc_client_new(&ccfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_connect(c, url), UARC_Good);
    uarc_subscription_config cfg = {.publishing_interval_ms = 100};
    cfg.callbacks.item_created = many_items_on_created;
    cfg.callbacks.item_modified = many_items_on_modified;
    cfg.callbacks.item_removed = many_items_on_modified;
    cfg.callbacks.user_data = log;
    uarc_subscription *s;
    assert_int_equal(uarc_subscription_new(c, &cfg, &s), UARC_Good);
    static uint32_t handles[MANY_ITEMS];
    for (size_t i = 0; i < MANY_ITEMS; i++) {
        uarc_monitored_item_params item = {
            .node = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_State),
            .sampling_interval_ms = 1000};
        assert_int_equal(uarc_subscription_add_item(s, &item, &handles[i]), UARC_Good);
        if (step && (i + 1) % step == 0)
            many_items_run_until(c, &log->created, i + 1);
    }
    many_items_run_until(c, &log->created, MANY_ITEMS);
    assert_int_equal(items_on_server(c, uarc_subscription_id(s)), MANY_ITEMS);
    assert_int_equal(
        uarc_subscription_set_monitoring_mode(s, handles, MANY_ITEMS, UARC_MonitoringMode_Disabled),
        UARC_Good);
    many_items_run_until(c, &log->modified, MANY_ITEMS);
    uarc_monitored_item_params changed = {.sampling_interval_ms = 2000, .queue_size = 2};
    assert_int_equal(uarc_subscription_modify_items(s, handles, MANY_ITEMS, &changed), UARC_Good);
    many_items_run_until(c, &log->modified, 2 * MANY_ITEMS);
    assert_int_equal(log->bad, 0);
    assert_int_equal(uarc_subscription_remove_items(s, handles, MANY_ITEMS), UARC_Good);
    many_items_run_until(c, &log->modified, 3 * MANY_ITEMS); /* item_removed: each Good */
    assert_int_equal(log->bad, 0);
    int64_t end = peer_process_now_ms() + MANY_WAIT_MS;
    size_t left;
    while ((left = items_on_server(c, uarc_subscription_id(s))) > 0 && peer_process_now_ms() < end)
        uarc_client_process(c, 100);
    assert_int_equal(left, 0);
    uarc_client_delete(c);
}

#endif
