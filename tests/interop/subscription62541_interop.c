/*
 * Monitored-item calls in batches against open62541 (PEER62541, two started here, each limited to
 * 100 items per Create/Modify/SetMonitoringMode/DeleteMonitoredItems call: open62541 refuses a
 * bigger call whole with BadTooManyOperations). 1,200 items go back and forth with one library
 * call each (many_items.h), and the peer counts the requests it received (ns=1;s=Calls.*,
 * refused ones included): with every item accepted, 12 calls each prove calls of exactly 100.
 * One peer says so in OperationLimits; the other reads "no limit" there, so uarc starts at its
 * default batch of 500 and halves it on each refusal: 250, 125, then 62 are accepted, whether
 * the refused call is the creation or, with the items created 100 at a time, the first change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uarc/uarc.h"

#include "peer_process.h"
#include "many_items.h"

#define PER_CALL "100" /* each peer's MaxMonitoredItemsPerCall */
/* uarc's default batch of 500 (item_batch_size 0), halved until open62541 takes it: 500, 250 and
 * 125 refused, 62 accepted. */
#define REFUSALS     3u
#define HALVED_BATCH 62u

static peer_process advertised = PEER_PROCESS_INIT, unadvertised = PEER_PROCESS_INIT;

/* The calls of each kind the peer received, in the order of ns=1;s=Calls.* */
typedef struct call_counts {
    uint32_t create, modify, mode, remove;
} call_counts;

static void read_calls(const char *url, call_counts *out)
{
    uarc_client_config cfg = {.connect_timeout_ms = 60000, .request_timeout_ms = 30000};
    uarc_client *c = uarc_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(uarc_client_connect(c, url), UARC_Good);
    const char *names[] = {"Calls.CreateMonitoredItems", "Calls.ModifyMonitoredItems",
                           "Calls.SetMonitoringMode", "Calls.DeleteMonitoredItems"};
    uint32_t *fields[] = {&out->create, &out->modify, &out->mode, &out->remove};
    for (size_t i = 0; i < 4; i++) {
        uarc_nodeid node = uarc_nodeid_string(1, names[i]);
        uarc_data_value v;
        assert_int_equal(uarc_client_read_attribute(c, &node, UARC_ATTRIBUTEID_Value, &v),
                         UARC_Good);
        uarc_clear(&node, UARC_T(NodeId));
        assert_int_equal(v.status, UARC_Good);
        assert_true(v.value.type == UARC_T(UInt32) && !v.value.is_array);
        *fields[i] = *(const uint32_t *)v.value.data;
        uarc_clear(&v, UARC_T(DataValue));
    }
    uarc_client_delete(c);
}

static uint32_t per_call(void)
{
    return (uint32_t)strtoul(PER_CALL, NULL, 10);
}

/* Calls for `items` items in batches of `batch`. */
static uint32_t calls_for(uint32_t items, uint32_t batch)
{
    return (items + batch - 1) / batch;
}

/* MaxMonitoredItemsPerCall read: every call within it, none refused, 12 of each kind. */
static void test_batches_within_the_advertised_limit(void **state)
{
    (void)state;
    many_items_log log;
    many_items_back_and_forth(advertised.url, 0, &log);
    call_counts n;
    read_calls(advertised.url, &n);
    uint32_t each = calls_for(MANY_ITEMS, per_call());
    assert_int_equal(n.create, each);
    assert_int_equal(n.mode, each);
    assert_int_equal(n.modify, each);
    assert_int_equal(n.remove, each);
    assert_int_equal(log.limit, per_call());
    assert_int_equal(log.refused, 0);
}

/* No limit advertised: 500, 250 and 125 items refused whole, then batches of 62, which the
 * changes keep (the batch size stays halved for the subscription). */
static void test_refused_batches_are_halved(void **state)
{
    (void)state;
    many_items_log log;
    many_items_back_and_forth(unadvertised.url, 0, &log);
    assert_int_equal(log.limit, 0);
    assert_int_equal(log.refused, REFUSALS);
    assert_int_equal(log.batch, HALVED_BATCH);
    call_counts n;
    read_calls(unadvertised.url, &n);
    uint32_t each = calls_for(MANY_ITEMS, HALVED_BATCH);
    assert_int_equal(n.create, REFUSALS + each);
    assert_int_equal(n.mode, each);
    assert_int_equal(n.modify, each);
    assert_int_equal(n.remove, each);
}

/* No limit advertised, the items created 100 at a time (never refused; how many requests that
 * takes depends on when each is sent): the first change, 1,200 items set to Disabled, is refused
 * at 500, 250 and 125 and goes in batches of 62, which the modification and the removal keep. */
static void test_refused_changes_are_halved(void **state)
{
    (void)state;
    call_counts before, n;
    read_calls(unadvertised.url, &before);
    many_items_log log;
    many_items_back_and_forth(unadvertised.url, per_call(), &log);
    read_calls(unadvertised.url, &n);
    uint32_t each = calls_for(MANY_ITEMS, HALVED_BATCH);
    assert_int_equal(n.mode - before.mode, REFUSALS + each);
    assert_int_equal(n.modify - before.modify, each);
    assert_int_equal(n.remove - before.remove, each);
    assert_int_equal(log.refused, REFUSALS);
    assert_int_equal(log.batch, HALVED_BATCH);
}

static int start_peers(void **state)
{
    (void)state;
    char *limited[] = {UARC_PEER62541, "--uri", "urn:o62-batches", "--max-monitored-items-per-call",
                       PER_CALL,       NULL};
    char *hidden[] = {UARC_PEER62541,
                      "--uri",
                      "urn:o62-batches-hidden",
                      "--max-monitored-items-per-call",
                      PER_CALL,
                      "--advertise-max-monitored-items-per-call",
                      "0",
                      NULL};
    if (!peer_process_spawn_program(&advertised, limited) ||
        !peer_process_spawn_program(&unadvertised, hidden) ||
        !peer_process_wait_started(&advertised, 20000) ||
        !peer_process_wait_started(&unadvertised, 20000)) {
        fprintf(stderr, "the open62541 peers did not start\n");
        return -1;
    }
    return 0;
}

static int stop_peers(void **state)
{
    (void)state;
    peer_process_stop(&advertised);
    peer_process_stop(&unadvertised);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_within_the_advertised_limit),
        cmocka_unit_test(test_refused_batches_are_halved),
        cmocka_unit_test(test_refused_changes_are_halved),
    };
    return cmocka_run_group_tests(tests, start_peers, stop_peers);
}
