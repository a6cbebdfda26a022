/*
 * The open62541 peer's address space: scalars, a counter and an AnalogItem that follows it, the
 * calls counted per monitored-item service, events raised on a timer. See address_space.h.
 */
#include <stdio.h>

#include "address_space.h"

static UA_VariableAttributes variable_attributes(const char *id, const void *value,
                                                 const UA_DataType *type, bool writable)
{
    UA_VariableAttributes attr = UA_VariableAttributes_default;
    attr.displayName = UA_LOCALIZEDTEXT("", (char *)(uintptr_t)id);
    attr.dataType = type->typeId;
    attr.valueRank = UA_VALUERANK_SCALAR;
    attr.accessLevel = UA_ACCESSLEVELMASK_READ | (writable ? UA_ACCESSLEVELMASK_WRITE : 0);
    attr.userAccessLevel = attr.accessLevel;
    UA_Variant_setScalar(&attr.value, (void *)(uintptr_t)value, type);
    return attr;
}

static UA_StatusCode add_variable(UA_Server *server, const char *id, const void *value,
                                  const UA_DataType *type, bool writable)
{
    return UA_Server_addVariableNode(
        server, UA_NODEID_STRING(1, (char *)(uintptr_t)id), UA_NS0ID(OBJECTSFOLDER),
        UA_NS0ID(ORGANIZES), UA_QUALIFIEDNAME(1, (char *)(uintptr_t)id),
        UA_NS0ID(BASEDATAVARIABLETYPE), variable_attributes(id, value, type, writable), NULL, NULL);
}

/* ---- Counter and Analog ----------------------------------------------------------------- */

static UA_UInt32 counter;

/* ns=1;s=Counter counts up every 10 ms, and ns=1;s=Analog takes the same value as a Double:
 * with every change sampled, a deadband lets through a known subset of the steps. */
static void count(UA_Server *server, void *data)
{
    (void)data;
    counter++;
    UA_Double analog = counter;
    UA_Variant v;
    UA_Variant_setScalar(&v, &counter, &UA_TYPES[UA_TYPES_UINT32]);
    UA_Server_writeValue(server, UA_NODEID_STRING(1, "Counter"), v);
    UA_Variant_setScalar(&v, &analog, &UA_TYPES[UA_TYPES_DOUBLE]);
    UA_Server_writeValue(server, UA_NODEID_STRING(1, "Analog"), v);
}

/* An AnalogItemType variable: open62541 adds its mandatory EURange property, set here to 0..1000,
 * which a percent deadband is taken of. */
static UA_StatusCode add_analog(UA_Server *server)
{
    UA_Double zero = 0;
    UA_NodeId id = UA_NODEID_STRING(1, "Analog");
    UA_StatusCode s = UA_Server_addVariableNode(
        server, id, UA_NS0ID(OBJECTSFOLDER), UA_NS0ID(ORGANIZES), UA_QUALIFIEDNAME(1, "Analog"),
        UA_NS0ID(ANALOGITEMTYPE),
        variable_attributes("Analog", &zero, &UA_TYPES[UA_TYPES_DOUBLE], false), NULL, NULL);
    if (s != UA_STATUSCODE_GOOD)
        return s;
    UA_QualifiedName name = UA_QUALIFIEDNAME(0, "EURange");
    UA_BrowsePathResult path = UA_Server_browseSimplifiedBrowsePath(server, id, 1, &name);
    s = path.statusCode != UA_STATUSCODE_GOOD ? path.statusCode
        : path.targetsSize != 1               ? UA_STATUSCODE_BADNOTFOUND
                                              : UA_STATUSCODE_GOOD;
    if (s == UA_STATUSCODE_GOOD) {
        UA_Range range = {.low = 0, .high = 1000};
        UA_Variant v;
        UA_Variant_setScalar(&v, &range, &UA_TYPES[UA_TYPES_RANGE]);
        s = UA_Server_writeValue(server, path.targets[0].targetId.nodeId, v);
    }
    UA_BrowsePathResult_clear(&path);
    return s;
}

/* ---- calls per monitored-item service --------------------------------------------------- */

/* The requests counted, and ns=1;s=Calls.<name> that reads each count. */
static struct {
    const char *name;
    int type; /* index in UA_TYPES of the request */
    UA_UInt32 calls;
} calls[] = {
    {"Calls.CreateMonitoredItems", UA_TYPES_CREATEMONITOREDITEMSREQUEST, 0},
    {"Calls.ModifyMonitoredItems", UA_TYPES_MODIFYMONITOREDITEMSREQUEST, 0},
    {"Calls.SetMonitoringMode", UA_TYPES_SETMONITORINGMODEREQUEST, 0},
    {"Calls.DeleteMonitoredItems", UA_TYPES_DELETEMONITOREDITEMSREQUEST, 0},
};
#define CALL_KINDS (sizeof calls / sizeof calls[0])

void peer_count_service(UA_Server *server, UA_ApplicationNotificationType type,
                        const UA_KeyValueMap payload)
{
    (void)server;
    if (type != UA_APPLICATIONNOTIFICATIONTYPE_SERVICE_BEGIN)
        return;
    const UA_NodeId *request = UA_KeyValueMap_getScalar(
        &payload, UA_QUALIFIEDNAME(0, "service-type"), &UA_TYPES[UA_TYPES_NODEID]);
    for (size_t i = 0; request && i < CALL_KINDS; i++)
        if (UA_NodeId_equal(request, &UA_TYPES[calls[i].type].typeId))
            calls[i].calls++;
}

/* Reads the UInt32 its node context points to (no copy: it lives as long as the server). */
static UA_StatusCode read_uint32(UA_Server *server, const UA_NodeId *session_id,
                                 void *session_context, const UA_NodeId *node_id,
                                 void *node_context, UA_Boolean source_timestamp,
                                 const UA_NumericRange *range, UA_DataValue *value)
{
    (void)server, (void)session_id, (void)session_context, (void)node_id, (void)source_timestamp;
    if (range) {
        value->hasStatus = true;
        value->status = UA_STATUSCODE_BADINDEXRANGEINVALID;
        return UA_STATUSCODE_GOOD;
    }
    UA_Variant_setScalar(&value->value, node_context, &UA_TYPES[UA_TYPES_UINT32]);
    value->value.storageType = UA_VARIANT_DATA_NODELETE;
    value->hasValue = true;
    return UA_STATUSCODE_GOOD;
}

static UA_StatusCode add_call_counters(UA_Server *server)
{
    UA_CallbackValueSource source = {.read = read_uint32};
    UA_StatusCode s = UA_STATUSCODE_GOOD;
    for (size_t i = 0; i < CALL_KINDS && s == UA_STATUSCODE_GOOD; i++) {
        char *id = (char *)(uintptr_t)calls[i].name;
        s = UA_Server_addCallbackValueSourceVariableNode(
            server, UA_NODEID_STRING(1, id), UA_NS0ID(OBJECTSFOLDER), UA_NS0ID(ORGANIZES),
            UA_QUALIFIEDNAME(1, id), UA_NS0ID(BASEDATAVARIABLETYPE),
            variable_attributes(id, &calls[i].calls, &UA_TYPES[UA_TYPES_UINT32], false), source,
            &calls[i].calls, NULL);
    }
    return s;
}

/* What OperationLimits/MaxMonitoredItemsPerCall reads with --advertise-max-monitored-items-per-call
 * (the server goes on refusing calls beyond its real limit). */
static UA_UInt32 advertised_limit;

static UA_StatusCode advertise_limit(UA_Server *server, unsigned limit)
{
    advertised_limit = limit;
    UA_CallbackValueSource source = {.read = read_uint32};
    UA_NodeId node = UA_NS0ID(SERVER_SERVERCAPABILITIES_OPERATIONLIMITS_MAXMONITOREDITEMSPERCALL);
    UA_StatusCode s = UA_Server_setVariableNode_callbackValueSource(server, node, source);
    return s == UA_STATUSCODE_GOOD ? UA_Server_setNodeContext(server, node, &advertised_limit) : s;
}

/* ---- events ----------------------------------------------------------------------------- */

static unsigned tick;

/* A BaseEventType event on the Server object: Message "tick N" (N from 1), Severity 100. */
static void raise_event(UA_Server *server, void *data)
{
    (void)data;
    char text[32];
    snprintf(text, sizeof text, "tick %u", ++tick);
    UA_StatusCode s = UA_Server_createEvent(server, UA_NS0ID(SERVER), UA_NS0ID(BASEEVENTTYPE), 100,
                                            UA_LOCALIZEDTEXT("", text), NULL, NULL, NULL);
    if (s != UA_STATUSCODE_GOOD)
        fprintf(stderr, "peer62541: event %u: %s\n", tick, UA_StatusCode_name(s));
}

UA_StatusCode peer_build_address_space(UA_Server *server, const address_space_options *o)
{
    UA_Double pi = 3.141592653589793;
    UA_Int32 i32 = -2000000000;
    UA_Boolean yes = true;
    UA_String text = UA_STRING("Hello, uarc \xe2\x9c\x93");
    UA_StatusCode s = add_variable(server, "Scalar.Double", &pi, &UA_TYPES[UA_TYPES_DOUBLE], true);
    s |= add_variable(server, "Scalar.Int32", &i32, &UA_TYPES[UA_TYPES_INT32], true);
    s |= add_variable(server, "Scalar.Boolean", &yes, &UA_TYPES[UA_TYPES_BOOLEAN], true);
    s |= add_variable(server, "Scalar.String", &text, &UA_TYPES[UA_TYPES_STRING], true);
    s |= add_variable(server, "Counter", &counter, &UA_TYPES[UA_TYPES_UINT32], false);
    if (s == UA_STATUSCODE_GOOD)
        s = add_analog(server);
    if (s == UA_STATUSCODE_GOOD)
        s = add_call_counters(server);
    if (s == UA_STATUSCODE_GOOD && o->advertise_limit)
        s = advertise_limit(server, o->advertised_limit);
    if (s == UA_STATUSCODE_GOOD)
        s = UA_Server_addRepeatedCallback(server, count, NULL, 10.0, NULL);
    if (s == UA_STATUSCODE_GOOD && o->events_every_ms)
        s = UA_Server_addRepeatedCallback(server, raise_event, NULL, o->events_every_ms, NULL);
    return s;
}
