/*
 * fleetsim's Server methods about subscriptions (Part 5 §9.1, §9.2), called as a client calls
 * them: GetMonitoredItems lists a subscription's items, ResendData makes every reporting item
 * send its current value in the next message, and anything else is refused per method.
 */
#include "fleetsim_peer.h"

#define SERVER_GET_MONITORED_ITEMS 11492u
#define SERVER_RESEND_DATA         12873u

/* Calls Server.`method` with `subscription` (and one more argument when `extra`); returns the
 * result, its outputs in *r (to be cleared). */
static uarc_status call(client *c, int64_t now, uint32_t object, uint32_t method,
                        uint32_t subscription, bool extra, uarc_CallResponse *r)
{
    uarc_CallRequest q; /* heap-owned: send_request() clears it */
    uarc_init(&q, UARC_T(CallRequest));
    uarc_CallMethodRequest *m = uarc_new(UARC_T(CallMethodRequest));
    assert_non_null(m);
    m->objectId = uarc_nodeid_numeric(0, object);
    m->methodId = uarc_nodeid_numeric(0, method);
    m->inputArgumentsSize = extra ? 2 : 1;
    m->inputArguments = calloc(m->inputArgumentsSize, sizeof *m->inputArguments);
    assert_non_null(m->inputArguments);
    for (size_t i = 0; i < m->inputArgumentsSize; i++)
        assert_int_equal(
            uarc_variant_set_scalar(&m->inputArguments[i], &subscription, UARC_T(UInt32)),
            UARC_Good);
    q.methodsToCall = m;
    q.methodsToCallSize = 1;
    assert_true(send_request(c, &q, UARC_T(CallRequest), now));
    response(c, UARC_T(CallResponse), r);
    assert_int_equal(r->resultsSize, 1);
    return r->results[0].statusCode;
}

static void test_get_monitored_items(void **state)
{
    (void)state;
    client c;
    client_init(&c, 0, 0);
    open_session(&c, T0);
    uint32_t sub = subscribe(&c, T0, 3); /* one item, client handle 42 */
    uarc_CallResponse r;
    assert_int_equal(call(&c, T0, UARC_NS0ID_Server, SERVER_GET_MONITORED_ITEMS, sub, false, &r),
                     UARC_Good);
    assert_int_equal(r.results[0].outputArgumentsSize, 2);
    const uarc_variant *ids = &r.results[0].outputArguments[0];
    const uarc_variant *handles = &r.results[0].outputArguments[1];
    assert_ptr_equal(ids->type, UARC_T(UInt32));
    assert_true(ids->is_array && handles->is_array);
    assert_int_equal(ids->array_length, 1);
    assert_int_equal(handles->array_length, 1);
    assert_int_equal(((uint32_t *)handles->data)[0], 42);
    assert_int_not_equal(((uint32_t *)ids->data)[0], 0);
    uarc_clear(&r, UARC_T(CallResponse));

    /* refusals, per method */
    assert_int_equal(
        call(&c, T0, UARC_NS0ID_Server, SERVER_GET_MONITORED_ITEMS, sub + 1, false, &r),
        UARC_BadSubscriptionIdInvalid);
    uarc_clear(&r, UARC_T(CallResponse));
    assert_int_equal(call(&c, T0, UARC_NS0ID_Server, SERVER_GET_MONITORED_ITEMS, sub, true, &r),
                     UARC_BadTooManyArguments);
    uarc_clear(&r, UARC_T(CallResponse));
    assert_int_equal(call(&c, T0, UARC_NS0ID_Server, 11493u, sub, false, &r),
                     UARC_BadMethodInvalid);
    uarc_clear(&r, UARC_T(CallResponse));
    assert_int_equal(call(&c, T0, 85u, SERVER_GET_MONITORED_ITEMS, sub, false, &r),
                     UARC_BadMethodInvalid);
    uarc_clear(&r, UARC_T(CallResponse));
    client_clear(&c);
}

/* Nothing changes (rate 0): after the initial value only keep-alives come, until ResendData. */
static void test_resend_data(void **state)
{
    (void)state;
    client c;
    client_init(&c, 0, 0);
    open_session(&c, T0);
    uint32_t sub = subscribe(&c, T0, 3);
    publish(&c, T0, sub, 0);
    sim_subscriptions_tick(&c.server, T0 + 100);
    uarc_PublishResponse r;
    response(&c, UARC_T(PublishResponse), &r);
    uint32_t v[4];
    assert_int_equal(values(&r.notificationMessage, v, 4), 1); /* the initial value */
    uint32_t initial = v[0];
    uarc_clear(&r, UARC_T(PublishResponse));

    publish(&c, T0 + 150, sub, 1);
    sim_subscriptions_tick(&c.server, T0 + 200);
    assert_int_equal(c.conn.out.length, 0); /* nothing to send */
    uarc_CallResponse cr;
    assert_int_equal(call(&c, T0 + 250, UARC_NS0ID_Server, SERVER_RESEND_DATA, sub, false, &cr),
                     UARC_Good);
    uarc_clear(&cr, UARC_T(CallResponse));
    sim_subscriptions_tick(&c.server, T0 + 300);
    response(&c, UARC_T(PublishResponse), &r);
    assert_int_equal(values(&r.notificationMessage, v, 4), 1); /* the same value again */
    assert_int_equal(v[0], initial);
    assert_int_equal(r.notificationMessage.sequenceNumber, 2);
    uarc_clear(&r, UARC_T(PublishResponse));
    client_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_monitored_items),
        cmocka_unit_test(test_resend_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
