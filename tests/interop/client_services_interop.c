/*
 * The client library against a real node-opcua server (tests/peer/server.mjs, started by
 * client_peer.h), through the public API: requests of three services in flight together, an
 * adopted socket, GetEndpoints without a session, a Read of many attributes and
 * TranslateBrowsePathsToNodeIds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "uarc/uarc.h"
#include "uarc/client.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#include "peer_process.h"
#include "client_peer.h"

/* Ten requests of three services sent before any answer is read, each matched to its own. */
typedef struct any_call {
    uint32_t handle;
    bool done;
    uarc_status status;
    uint32_t response_handle;
    const uarc_type *type;
    double number; /* Read: the value as a double; Call: the sum; Browse: the reference count */
} any_call;

static void on_any(void *user_data, uarc_status status, void *response)
{
    any_call *a = user_data;
    assert_false(a->done);
    a->done = true;
    a->status = status;
    if (!response)
        return;
    a->response_handle = ((uarc_ResponseHeader *)response)->requestHandle;
    if (a->type == UARC_T(ReadResponse)) {
        uarc_ReadResponse *r = response;
        assert_int_equal(r->resultsSize, 1);
        const uarc_variant *v = &r->results[0].value;
        const uarc_type *t = v->type;
        a->number = t == UARC_T(SByte)    ? *(int8_t *)v->data
                    : t == UARC_T(Byte)   ? *(uint8_t *)v->data
                    : t == UARC_T(Int16)  ? *(int16_t *)v->data
                    : t == UARC_T(UInt16) ? *(uint16_t *)v->data
                    : t == UARC_T(Int32)  ? *(int32_t *)v->data
                    : t == UARC_T(UInt32) ? *(uint32_t *)v->data
                    : t == UARC_T(Float)  ? *(float *)v->data
                    : t == UARC_T(Double) ? *(double *)v->data
                                          : -1e308;
    } else if (a->type == UARC_T(CallResponse)) {
        uarc_CallResponse *r = response;
        assert_int_equal(r->resultsSize, 1);
        assert_int_equal(r->results[0].outputArgumentsSize, 1);
        a->number = *(double *)r->results[0].outputArguments[0].data;
    } else {
        uarc_BrowseResponse *r = response;
        assert_int_equal(r->resultsSize, 1);
        a->number = (double)r->results[0].referencesSize;
    }
}

static void test_requests_in_flight(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);

    static const struct {
        const char *node;
        double value;
    } reads[] = {
        {"ns=1;s=Scalar.SByte", -100},        {"ns=1;s=Scalar.Byte", 200},
        {"ns=1;s=Scalar.Int16", -30000},      {"ns=1;s=Scalar.UInt16", 60000},
        {"ns=1;s=Scalar.Int32", -2000000000}, {"ns=1;s=Scalar.UInt32", 4000000000.0},
        {"ns=1;s=Scalar.Float", 3.5},         {"ns=1;s=ReadOnly.Int32", 7},
    };
    enum { N = 10, READS = sizeof reads / sizeof *reads };
    any_call calls[N];
    memset(calls, 0, sizeof calls);

    for (int i = 0; i < READS; i++) {
        uarc_ReadValueId id = {.nodeId = node(reads[i].node),
                               .attributeId = UARC_ATTRIBUTEID_Value};
        uarc_ReadRequest req;
        uarc_init(&req, UARC_T(ReadRequest));
        req.nodesToReadSize = 1;
        req.nodesToRead = &id;
        calls[i].type = UARC_T(ReadResponse);
        assert_int_equal(uarc_client_send(c, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                          on_any, &calls[i], &calls[i].handle),
                         UARC_Good);
        uarc_clear(&id.nodeId, UARC_T(NodeId));
    }
    /* A Call of Add(20, 22) ... */
    uarc_variant args[2] = {{0}};
    double a = 20, b = 22.5;
    uarc_variant_set_scalar(&args[0], &a, UARC_T(Double));
    uarc_variant_set_scalar(&args[1], &b, UARC_T(Double));
    uarc_CallMethodRequest m = {.objectId = node("ns=1;s=Methods"),
                                .methodId = node("ns=1;s=Methods/Add"),
                                .inputArgumentsSize = 2,
                                .inputArguments = args};
    uarc_CallRequest call;
    uarc_init(&call, UARC_T(CallRequest));
    call.methodsToCallSize = 1;
    call.methodsToCall = &m;
    calls[READS].type = UARC_T(CallResponse);
    assert_int_equal(uarc_client_send(c, &call, UARC_T(CallRequest), UARC_T(CallResponse), 0,
                                      on_any, &calls[READS], &calls[READS].handle),
                     UARC_Good);
    /* ... and a Browse of the Matrix folder (one child). */
    uarc_BrowseDescription d = {.nodeId = node("ns=1;s=Matrix"),
                                .browseDirection = UARC_BrowseDirection_Forward,
                                .referenceTypeId =
                                    uarc_nodeid_numeric(0, UARC_NS0ID_HierarchicalReferences),
                                .includeSubtypes = true,
                                .resultMask = 0x3F};
    uarc_BrowseRequest browse;
    uarc_init(&browse, UARC_T(BrowseRequest));
    browse.nodesToBrowseSize = 1;
    browse.nodesToBrowse = &d;
    calls[READS + 1].type = UARC_T(BrowseResponse);
    assert_int_equal(uarc_client_send(c, &browse, UARC_T(BrowseRequest), UARC_T(BrowseResponse), 0,
                                      on_any, &calls[READS + 1], &calls[READS + 1].handle),
                     UARC_Good);

    for (int i = 0; i < N; i++) {
        assert_false(calls[i].done); /* nothing is read before process() */
        for (int j = 0; j < i; j++)
            assert_int_not_equal(calls[i].handle, calls[j].handle);
    }
    int64_t deadline = now_ms() + 10000;
    for (int i = 0; i < N; i++)
        while (!calls[i].done) {
            assert_true(now_ms() < deadline);
            assert_int_equal(uarc_client_process(c, 100), UARC_Good);
        }
    for (int i = 0; i < N; i++) {
        if (calls[i].status != UARC_Good)
            fail_msg("request %d: %s", i, uarc_status_name(calls[i].status));
        assert_int_equal(calls[i].response_handle, calls[i].handle);
    }
    for (int i = 0; i < READS; i++)
        if (calls[i].number != reads[i].value)
            fail_msg("%s read %g, expected %g", reads[i].node, calls[i].number, reads[i].value);
    assert_true(calls[READS].number == 42.5);
    assert_true(calls[READS + 1].number == 1);

    uarc_clear(&args[0], UARC_T(Variant));
    uarc_clear(&args[1], UARC_T(Variant));
    uarc_clear(&m.objectId, UARC_T(NodeId));
    uarc_clear(&m.methodId, UARC_T(NodeId));
    uarc_clear(&d.nodeId, UARC_T(NodeId));
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* connect() ourselves, then hand the socket over: the same session as a dialed one. */
static void test_adopted_socket(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(peer_port(&the_peer))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);

    uarc_client *c = new_client(NULL);
    uarc_status s = uarc_client_connect_socket(c, fd, the_peer.url);
    if (s != UARC_Good)
        fail_msg("connect_socket: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    assert_int_equal(uarc_client_fd(c), fd);
    assert_string_equal(uarc_client_endpoint_url(c), the_peer.url);
    assert_true(uarc_client_session_timeout_ms(c) > 0);
    read_int32_ok(c);
    uarc_nodeid ns = uarc_nodeid_numeric(0, UARC_NS0ID_Server_NamespaceArray);
    uarc_data_value v;
    assert_int_equal(uarc_client_read_attribute(c, &ns, UARC_ATTRIBUTEID_Value, &v), UARC_Good);
    assert_true(v.value.is_array);
    assert_int_equal(v.value.array_length, 2);
    uarc_string *uris = v.value.data;
    assert_true(uarc_string_equal_cstr(&uris[1], PEER_URI));
    uarc_clear(&v, UARC_T(DataValue));
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    assert_int_equal(uarc_client_fd(c), -1);
    uarc_client_delete(c);
}

static void test_get_endpoints_without_session(void **state)
{
    (void)state;
    uarc_client_config cfg = {.no_session = true};
    uarc_client *c = new_client(&cfg);
    connect_ok(c, the_peer.url);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_CHANNEL_OPEN);
    uarc_GetEndpointsResponse resp;
    assert_int_equal(uarc_client_get_endpoints(c, &resp), UARC_Good);
    assert_true(resp.endpointsSize >= 1);
    bool none = false;
    for (size_t i = 0; i < resp.endpointsSize; i++) {
        const uarc_EndpointDescription *e = &resp.endpoints[i];
        if (uarc_string_equal_cstr(&e->securityPolicyUri,
                                   "http://opcfoundation.org/UA/SecurityPolicy#None") &&
            e->securityMode == UARC_MessageSecurityMode_None) {
            none = true;
            assert_true(uarc_string_equal_cstr(&e->endpointUrl, the_peer.url));
            assert_true(uarc_string_equal_cstr(&e->server.applicationUri, PEER_URI));
        }
    }
    assert_true(none);
    uarc_clear(&resp, UARC_T(GetEndpointsResponse));
    /* No session: a Read is refused by the server, and the channel stays open. */
    uarc_nodeid id = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime);
    uarc_data_value v;
    uarc_status s = uarc_client_read_attribute(c, &id, UARC_ATTRIBUTEID_Value, &v);
    assert_true(uarc_status_is_bad(s));
    uarc_clear(&v, UARC_T(DataValue));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_CHANNEL_OPEN);
    assert_int_equal(uarc_client_disconnect(c), UARC_Good);
    uarc_client_delete(c);
}

/* Several attributes of several nodes in one Read: each result in order with its own status, an
 * unknown node failing alone; no node at all is refused without a request. */
static void test_read_many(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    uarc_ReadValueId ids[5] = {
        {.nodeId = node("i=2258"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = node("i=2255"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = node("i=85"), .attributeId = UARC_ATTRIBUTEID_BrowseName},
        {.nodeId = node("ns=1;s=NoSuchNode"), .attributeId = UARC_ATTRIBUTEID_Value},
        {.nodeId = node("i=2253"), .attributeId = UARC_ATTRIBUTEID_NodeClass},
    };
    uarc_data_value v[5];
    uarc_status s = uarc_client_read(c, ids, 5, v);
    if (s != UARC_Good)
        fail_msg("read: %s (%s)", uarc_status_name(s), uarc_client_error(c));
    assert_int_equal(v[0].status, UARC_Good);
    assert_ptr_equal(v[0].value.type, UARC_T(DateTime));
    /* NamespaceArray: an array of strings, the first the OPC UA namespace */
    assert_int_equal(v[1].status, UARC_Good);
    assert_ptr_equal(v[1].value.type, UARC_T(String));
    assert_true(v[1].value.is_array && v[1].value.array_length >= 2);
    assert_true(uarc_string_equal_cstr(&((uarc_string *)v[1].value.data)[0],
                                       "http://opcfoundation.org/UA/"));
    assert_int_equal(v[2].status, UARC_Good);
    assert_ptr_equal(v[2].value.type, UARC_T(QualifiedName));
    const uarc_qualified_name *name = v[2].value.data;
    assert_int_equal(name->namespace_index, 0);
    assert_true(uarc_string_equal_cstr(&name->name, "Objects"));
    assert_int_equal(v[3].status, UARC_BadNodeIdUnknown);
    assert_false(v[3].has_value);
    assert_int_equal(v[4].status, UARC_Good);
    assert_ptr_equal(v[4].value.type, UARC_T(Int32)); /* NodeClass travels as Int32 */
    assert_int_equal(*(int32_t *)v[4].value.data, 1); /* Object */
    for (int i = 0; i < 5; i++)
        uarc_clear(&v[i], UARC_T(DataValue));
    for (int i = 0; i < 5; i++)
        uarc_clear(&ids[i].nodeId, UARC_T(NodeId));

    assert_int_equal(uarc_client_read(c, ids, 0, v), UARC_BadNothingToDo);
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

/* TranslateBrowsePathsToNodeIds: a path by browse names resolves to the node's id; a path that
 * matches nothing is BadNoMatch (or the server's own Bad status for it). */
static void test_translate_path(void **state)
{
    (void)state;
    uarc_client *c = new_client(NULL);
    connect_ok(c, the_peer.url);
    uarc_nodeid objects = uarc_nodeid_numeric(0, UARC_NS0ID_ObjectsFolder), target;
    assert_int_equal(uarc_client_translate_path(c, &objects, "/1:Scalar/1:Double", &target),
                     UARC_Good);
    char text[128];
    uarc_nodeid_print(&target, text, sizeof text);
    assert_string_equal(text, "ns=1;s=Scalar.Double");
    uarc_clear(&target, UARC_T(NodeId));
    assert_int_equal(uarc_client_translate_path(c, &objects, "0:Server/0:ServerStatus", &target),
                     UARC_Good);
    assert_int_equal(target.identifier.numeric, UARC_NS0ID_Server_ServerStatus);
    uarc_status s = uarc_client_translate_path(c, &objects, "/1:Scalar/1:NoSuchChild", &target);
    assert_true(uarc_status_is_bad(s));
    assert_non_null(strstr(uarc_client_error(c), "TranslateBrowsePathsToNodeIds"));
    assert_int_equal(uarc_client_state_get(c), UARC_CLIENT_SESSION_ACTIVE);
    uarc_client_disconnect(c);
    uarc_client_delete(c);
}

int main(void)
{
    /* A hang fails the test instead of stalling ctest (the peer exits when its stdin closes). */
    alarm(150);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_in_flight),
        cmocka_unit_test(test_adopted_socket),
        cmocka_unit_test(test_get_endpoints_without_session),
        cmocka_unit_test(test_read_many),
        cmocka_unit_test(test_translate_path),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
