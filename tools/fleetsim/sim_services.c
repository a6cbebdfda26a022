/*
 * The services of a simulated server besides subscriptions: GetEndpoints, the anonymous session
 * (Create, Activate, Close), Read and Browse over a small address space:
 *
 *   Root (i=84) → Objects (i=85) → Server (i=2253) → NamespaceArray (i=2255)
 *                                                  → ServerStatus (i=2256) → CurrentTime (i=2258)
 *                                                                          → State (i=2259)
 *                                → Counter (ns=1;s=Counter), Item k (ns=1;i=1000+k)
 *
 * plus MaxMonitoredItemsPerCall (i=11714), readable but not browsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "uarc/attributes.h"
#include "uarc/nodeids.h"

#define POLICY_NONE     "http://opcfoundation.org/UA/SecurityPolicy#None"
#define TRANSPORT_UATCP "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"
#define FIRST_ITEM      1000u
#define NONCE_LENGTH    32u

typedef enum node_kind {
    NODE_UNKNOWN,
    NODE_ROOT,
    NODE_OBJECTS,
    NODE_SERVER,
    NODE_NAMESPACES,
    NODE_STATUS,
    NODE_TIME,
    NODE_STATE,
    NODE_MAX_ITEMS,
    NODE_COUNTER,
    NODE_ITEM
} node_kind;

static node_kind node_of(const sim_server *server, const uarc_nodeid *id, uint32_t *k)
{
    *k = 0;
    if (id->namespace_index == 0 && id->identifier_type == UARC_NODEID_NUMERIC) {
        switch (id->identifier.numeric) {
        case UARC_NS0ID_RootFolder:
            return NODE_ROOT;
        case UARC_NS0ID_ObjectsFolder:
            return NODE_OBJECTS;
        case UARC_NS0ID_Server:
            return NODE_SERVER;
        case UARC_NS0ID_Server_NamespaceArray:
            return NODE_NAMESPACES;
        case UARC_NS0ID_Server_ServerStatus:
            return NODE_STATUS;
        case UARC_NS0ID_Server_ServerStatus_CurrentTime:
            return NODE_TIME;
        case UARC_NS0ID_Server_ServerStatus_State:
            return NODE_STATE;
        case UARC_NS0ID_Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall:
            return NODE_MAX_ITEMS;
        default:
            return NODE_UNKNOWN;
        }
    }
    if (id->namespace_index != 1)
        return NODE_UNKNOWN;
    if (id->identifier_type == UARC_NODEID_STRING &&
        uarc_string_equal_cstr(&id->identifier.string, "Counter"))
        return NODE_COUNTER;
    if (id->identifier_type == UARC_NODEID_NUMERIC && id->identifier.numeric >= FIRST_ITEM &&
        id->identifier.numeric - FIRST_ITEM < server->config->items) {
        *k = id->identifier.numeric - FIRST_ITEM;
        return NODE_ITEM;
    }
    return NODE_UNKNOWN;
}

sim_var sim_var_of(const sim_server *server, const uarc_nodeid *node, uint32_t *k)
{
    switch (node_of(server, node, k)) {
    case NODE_COUNTER:
        return SIM_VAR_COUNTER;
    case NODE_ITEM:
        return SIM_VAR_ITEM;
    case NODE_TIME:
        return SIM_VAR_CURRENT_TIME;
    case NODE_STATE:
        return SIM_VAR_STATE;
    case NODE_NAMESPACES:
    case NODE_STATUS:
    case NODE_MAX_ITEMS:
        *k = (uint32_t)node_of(server, node, &(uint32_t){0});
        return SIM_VAR_STATIC;
    default:
        return SIM_VAR_NONE;
    }
}

uint64_t sim_changes(const sim_server *server, int64_t now_ms)
{
    double rate = server->config->rate_hz;
    if (rate <= 0 || now_ms <= server->started_ms)
        return 0;
    return (uint64_t)((double)(now_ms - server->started_ms) * rate / 1000.0);
}

int64_t sim_change_time(const sim_server *server, uint64_t change)
{
    double rate = server->config->rate_hz;
    if (rate <= 0)
        return server->started_ms;
    return server->started_ms + (int64_t)((double)change * 1000.0 / rate + 0.999);
}

static void set_status(const sim_server *server, int64_t now_ms, uarc_variant *out)
{
    uarc_ServerStatusDataType *status = uarc_new(UARC_T(ServerStatusDataType));
    uarc_extension_object *object = uarc_new(UARC_T(ExtensionObject));
    if (!status || !object) {
        uarc_delete(status, UARC_T(ServerStatusDataType));
        uarc_delete(object, UARC_T(ExtensionObject));
        return;
    }
    status->startTime = sim_datetime(server->started_ms);
    status->currentTime = sim_datetime(now_ms);
    status->buildInfo.productUri = uarc_string_from("urn:uarc:fleetsim");
    status->buildInfo.productName = uarc_string_from("uarc fleetsim");
    object->encoding = UARC_EXTENSION_OBJECT_DECODED;
    object->content.decoded.type = UARC_T(ServerStatusDataType);
    object->content.decoded.data = status;
    out->type = UARC_T(ExtensionObject);
    out->data = object;
}

void sim_var_value(const sim_server *server, sim_var var, uint32_t k, uint64_t change,
                   int64_t now_ms, uarc_data_value *value)
{
    uarc_init(value, UARC_T(DataValue));
    value->has_value = true;
    value->has_source_timestamp = true;
    value->has_server_timestamp = true;
    value->server_timestamp = sim_datetime(now_ms);
    value->source_timestamp = sim_datetime(sim_change_time(server, change));
    switch (var) {
    case SIM_VAR_COUNTER: {
        uint32_t v = (uint32_t)change;
        uarc_variant_set_scalar(&value->value, &v, UARC_T(UInt32));
        break;
    }
    case SIM_VAR_ITEM: {
        double v = (double)change + k / 1000.0;
        uarc_variant_set_scalar(&value->value, &v, UARC_T(Double));
        break;
    }
    case SIM_VAR_CURRENT_TIME: {
        uarc_datetime v = sim_datetime(now_ms);
        value->source_timestamp = v;
        uarc_variant_set_scalar(&value->value, &v, UARC_T(DateTime));
        break;
    }
    case SIM_VAR_STATE: {
        int32_t running = 0;
        value->source_timestamp = sim_datetime(server->started_ms);
        uarc_variant_set_scalar(&value->value, &running, UARC_T(Int32));
        break;
    }
    case SIM_VAR_STATIC:
        value->source_timestamp = sim_datetime(server->started_ms);
        if (k == NODE_NAMESPACES) {
            uarc_string names[2] = {uarc_string_from("http://opcfoundation.org/UA/"),
                                    uarc_string_from(server->uri)};
            uarc_variant_set_array(&value->value, names, 2, UARC_T(String));
            uarc_clear(&names[0], UARC_T(String));
            uarc_clear(&names[1], UARC_T(String));
        } else if (k == NODE_MAX_ITEMS) {
            uint32_t v = SIM_MAX_ITEMS;
            uarc_variant_set_scalar(&value->value, &v, UARC_T(UInt32));
        } else {
            set_status(server, now_ms, &value->value);
        }
        break;
    default:
        value->has_value = false;
        value->has_status = true;
        value->status = UARC_BadAttributeIdInvalid;
        break;
    }
}

/* ---- replies ------------------------------------------------------------------------------ */

void sim_reply(sim_conn *conn, uint32_t request_id, uint32_t handle, void *response,
               const uarc_type *type, int64_t now_ms)
{
    uarc_ResponseHeader *header = response;
    header->requestHandle = handle;
    header->timestamp = sim_datetime(now_ms);
    sim_conn_send(conn, request_id, response, type);
    uarc_clear(response, type);
    if (conn->server->config->stats)
        conn->server->config->stats->requests++;
}

void sim_fault(sim_conn *conn, uint32_t request_id, uint32_t request_handle, uarc_status status,
               int64_t now_ms)
{
    uarc_ServiceFault fault;
    uarc_init(&fault, UARC_T(ServiceFault));
    fault.responseHeader.serviceResult = status;
    if (conn->server->config->stats)
        conn->server->config->stats->faults++;
    sim_reply(conn, request_id, request_handle, &fault, UARC_T(ServiceFault), now_ms);
}

static void nonce(sim_server *server, uarc_bytestring *out)
{
    out->data = malloc(NONCE_LENGTH);
    if (!out->data)
        return;
    out->length = NONCE_LENGTH;
    for (size_t i = 0; i < NONCE_LENGTH; i += 4) {
        uint32_t r = sim_random(server);
        memcpy(out->data + i, &r, 4);
    }
}

/* The endpoints, all anonymous: SecurityPolicy None, and with security the policy in modes Sign
 * and SignAndEncrypt. Every one carries the server's certificate (when it has one), so that
 * GetEndpoints and CreateSession's serverEndpoints agree. Returns the array, *count its length. */
static uarc_EndpointDescription *endpoints(const sim_server *server, size_t *count)
{
    const sim_security *security = server->config->security;
    size_t n = security ? 3 : 1;
    uarc_EndpointDescription *list = calloc(n, sizeof *list);
    if (!list) {
        *count = 0;
        return NULL;
    }
    uarc_bytestring certificate = sim_server_certificate(server);
    for (size_t i = 0; i < n; i++) {
        uarc_EndpointDescription *e = &list[i];
        uarc_init(e, UARC_T(EndpointDescription));
        e->endpointUrl = uarc_string_from(server->endpoint);
        e->server.applicationUri = uarc_string_from(server->uri);
        e->server.productUri = uarc_string_from("urn:uarc:fleetsim");
        e->server.applicationName.text = uarc_string_from(server->uri);
        e->server.applicationType = UARC_ApplicationType_Server;
        e->securityMode = i == 0   ? UARC_MessageSecurityMode_None
                          : i == 1 ? UARC_MessageSecurityMode_SignAndEncrypt
                                   : UARC_MessageSecurityMode_Sign;
        e->securityPolicyUri =
            uarc_string_from(i == 0 ? POLICY_NONE : sim_security_policy_uri(security));
        e->securityLevel = (uint8_t)(i == 1 ? 3 : i);
        if (certificate.length)
            uarc_copy(&certificate, &e->serverCertificate, UARC_T(ByteString));
        e->transportProfileUri = uarc_string_from(TRANSPORT_UATCP);
        uarc_UserTokenPolicy *policy = uarc_new(UARC_T(UserTokenPolicy));
        if (policy) {
            policy->policyId = uarc_string_from("anonymous");
            policy->tokenType = UARC_UserTokenType_Anonymous;
            e->userIdentityTokens = policy;
            e->userIdentityTokensSize = 1;
        }
    }
    *count = n;
    return list;
}

static void get_endpoints(sim_conn *conn, uint32_t request_id, uint32_t handle, int64_t now_ms)
{
    uarc_GetEndpointsResponse r;
    uarc_init(&r, UARC_T(GetEndpointsResponse));
    r.endpoints = endpoints(conn->server, &r.endpointsSize);
    sim_reply(conn, request_id, handle, &r, UARC_T(GetEndpointsResponse), now_ms);
}

/* ---- sessions ----------------------------------------------------------------------------- */

void sim_session_delete(sim_server *server, sim_session *session)
{
    for (sim_session **p = &server->sessions; *p; p = &(*p)->next) {
        if (*p == session) {
            *p = session->next;
            break;
        }
    }
    sim_session_detached(session); /* frees what its waiting Publish requests hold */
    while (session->subscriptions) {
        struct sim_subscription *next = session->subscriptions->next;
        sim_subscription_delete(session->subscriptions);
        session->subscriptions = next;
    }
    free(session);
}

void sim_sessions_expire(sim_server *server, int64_t now_ms)
{
    sim_session *s = server->sessions;
    while (s) {
        sim_session *next = s->next;
        if (!s->conn && now_ms - s->last_seen_ms > s->timeout_ms)
            sim_session_delete(server, s);
        s = next;
    }
}

static sim_session *find_session(sim_server *server, const uarc_nodeid *token)
{
    if (token->namespace_index != 1 || token->identifier_type != UARC_NODEID_NUMERIC)
        return NULL;
    for (sim_session *s = server->sessions; s; s = s->next) {
        if (s->token == token->identifier.numeric)
            return s;
    }
    return NULL;
}

/* The concatenation first + second (certificate and nonce), as both session signatures take it. */
static uint8_t *pair(const uarc_bytestring *first, const uarc_bytestring *second, size_t *length)
{
    *length = first->length + second->length;
    uint8_t *data = malloc(*length ? *length : 1);
    if (data) {
        if (first->length)
            memcpy(data, first->data, first->length);
        if (second->length)
            memcpy(data + first->length, second->data, second->length);
    }
    return data;
}

static bool sign_pair(sim_conn *conn, const uarc_bytestring *first, const uarc_bytestring *second,
                      uarc_SignatureData *signature)
{
    size_t length;
    uint8_t *data = pair(first, second, &length);
    bool ok = data && sim_secure_sign(conn, data, length, signature);
    free(data);
    return ok;
}

static void create_session(sim_conn *conn, uint32_t request_id,
                           const uarc_CreateSessionRequest *request, int64_t now_ms)
{
    sim_server *server = conn->server;
    uint32_t handle = request->requestHeader.requestHandle;
    size_t count = 0;
    sim_session *oldest = NULL;
    for (sim_session *s = server->sessions; s; s = s->next) {
        count++;
        if (!s->conn && (!oldest || s->last_seen_ms < oldest->last_seen_ms))
            oldest = s;
    }
    /* A full server drops its longest-orphaned session, as a server short of memory would. */
    if (count >= SIM_MAX_SESSIONS) {
        if (!oldest) {
            sim_fault(conn, request_id, handle, UARC_BadTooManySessions, now_ms);
            return;
        }
        sim_session_delete(server, oldest);
    }
    sim_session *session = calloc(1, sizeof *session);
    if (!session) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    session->server = server;
    session->id = server->next_id++;
    session->token = sim_random(server) | 1u;
    double timeout = request->requestedSessionTimeout;
    /* A NaN compares false with everything: it takes the minimum. */
    session->timeout_ms = !(timeout >= 10000) ? 10000
                          : timeout > 3600000 ? 3600000
                                              : (int64_t)timeout;
    session->last_seen_ms = now_ms;
    session->next = server->sessions;
    server->sessions = session;
    if (server->config->stats)
        server->config->stats->sessions++;

    uarc_CreateSessionResponse r;
    uarc_init(&r, UARC_T(CreateSessionResponse));
    r.sessionId = uarc_nodeid_numeric(1, session->id);
    r.authenticationToken = uarc_nodeid_numeric(1, session->token);
    r.revisedSessionTimeout = (double)session->timeout_ms;
    nonce(server, &r.serverNonce);
    if (r.serverNonce.data)
        memcpy(session->nonce, r.serverNonce.data, NONCE_LENGTH);
    r.serverEndpoints = endpoints(server, &r.serverEndpointsSize);
    if (conn->mode) {
        /* Part 4 §5.6.2: the server proves its key by signing the client's certificate and
         * nonce. */
        uarc_copy(&(uarc_bytestring){sim_server_certificate(server).length,
                                     sim_server_certificate(server).data},
                  &r.serverCertificate, UARC_T(ByteString));
        if (!sign_pair(conn, &request->clientCertificate, &request->clientNonce,
                       &r.serverSignature)) {
            uarc_clear(&r, UARC_T(CreateSessionResponse));
            sim_fault(conn, request_id, handle, UARC_BadSecurityChecksFailed, now_ms);
            return;
        }
    }
    sim_reply(conn, request_id, handle, &r, UARC_T(CreateSessionResponse), now_ms);
}

static void activate_session(sim_conn *conn, uint32_t request_id,
                             const uarc_ActivateSessionRequest *request, int64_t now_ms)
{
    uint32_t handle = request->requestHeader.requestHandle;
    sim_session *session = find_session(conn->server, &request->requestHeader.authenticationToken);
    if (!session) {
        sim_fault(conn, request_id, handle, UARC_BadSessionIdInvalid, now_ms);
        return;
    }
    const uarc_extension_object *token = &request->userIdentityToken;
    bool anonymous = token->encoding == UARC_EXTENSION_OBJECT_EMPTY ||
                     (token->encoding == UARC_EXTENSION_OBJECT_DECODED &&
                      token->content.decoded.type == UARC_T(AnonymousIdentityToken));
    if (!anonymous) {
        sim_fault(conn, request_id, handle, UARC_BadIdentityTokenRejected, now_ms);
        return;
    }
    if (conn->mode) {
        /* The client proves its key: its signature of our certificate and our last nonce. */
        uarc_bytestring certificate = sim_server_certificate(conn->server);
        uarc_bytestring last = {NONCE_LENGTH, session->nonce};
        size_t length;
        uint8_t *data = pair(&certificate, &last, &length);
        bool ok = data && sim_secure_verify(conn, data, length, &request->clientSignature);
        free(data);
        if (!ok) {
            sim_fault(conn, request_id, handle, UARC_BadApplicationSignatureInvalid, now_ms);
            return;
        }
    }
    /* Moving to this channel: Publish requests of the old one cannot be answered here. */
    if (session->conn && session->conn != conn)
        sim_session_detached(session);
    session->conn = conn;
    session->activated = true;
    session->last_seen_ms = now_ms;
    if (conn->server->config->stats)
        conn->server->config->stats->activations++;
    uarc_ActivateSessionResponse r;
    uarc_init(&r, UARC_T(ActivateSessionResponse));
    nonce(conn->server, &r.serverNonce);
    if (r.serverNonce.data)
        memcpy(session->nonce, r.serverNonce.data, NONCE_LENGTH);
    sim_reply(conn, request_id, handle, &r, UARC_T(ActivateSessionResponse), now_ms);
}

/* ---- Read and Browse ---------------------------------------------------------------------- */

static const char *node_name(node_kind kind)
{
    static const char *names[] = {"",
                                  "Root",
                                  "Objects",
                                  "Server",
                                  "NamespaceArray",
                                  "ServerStatus",
                                  "CurrentTime",
                                  "State",
                                  "MaxMonitoredItemsPerCall",
                                  "Counter",
                                  "Item"};
    return names[kind];
}

static void read_attribute(const sim_server *server, const uarc_ReadValueId *r, int64_t now_ms,
                           uarc_data_value *out)
{
    uint32_t k;
    node_kind kind = node_of(server, &r->nodeId, &k);
    uarc_init(out, UARC_T(DataValue));
    out->has_status = true;
    if (kind == NODE_UNKNOWN) {
        out->status = UARC_BadNodeIdUnknown;
        return;
    }
    bool variable = kind >= NODE_NAMESPACES && kind != NODE_SERVER;
    switch (r->attributeId) {
    case UARC_ATTRIBUTEID_NodeId:
        out->has_status = false;
        out->has_value = true;
        uarc_variant_set_scalar(&out->value, &r->nodeId, UARC_T(NodeId));
        return;
    case UARC_ATTRIBUTEID_NodeClass: {
        int32_t cls = variable ? UARC_NodeClass_Variable : UARC_NodeClass_Object;
        out->has_status = false;
        out->has_value = true;
        uarc_variant_set_scalar(&out->value, &cls, UARC_T(Int32));
        return;
    }
    case UARC_ATTRIBUTEID_BrowseName:
    case UARC_ATTRIBUTEID_DisplayName: {
        char name[32];
        if (kind == NODE_ITEM)
            snprintf(name, sizeof name, "Item%u", (unsigned)k);
        else
            snprintf(name, sizeof name, "%s", node_name(kind));
        out->has_status = false;
        out->has_value = true;
        if (r->attributeId == UARC_ATTRIBUTEID_BrowseName) {
            uarc_qualified_name q = {.namespace_index = kind >= NODE_COUNTER ? 1 : 0,
                                     .name = uarc_string_from(name)};
            uarc_variant_set_scalar(&out->value, &q, UARC_T(QualifiedName));
            uarc_clear(&q, UARC_T(QualifiedName));
        } else {
            uarc_localized_text t = {.text = uarc_string_from(name)};
            uarc_variant_set_scalar(&out->value, &t, UARC_T(LocalizedText));
            uarc_clear(&t, UARC_T(LocalizedText));
        }
        return;
    }
    case UARC_ATTRIBUTEID_Value:
        if (!variable) {
            out->status = UARC_BadAttributeIdInvalid;
            return;
        }
        {
            sim_var var = sim_var_of(server, &r->nodeId, &k);
            sim_var_value(server, var, k, sim_changes(server, now_ms), now_ms, out);
        }
        return;
    default:
        out->status = UARC_BadAttributeIdInvalid;
        return;
    }
}

static void read_service(sim_conn *conn, uint32_t request_id, const uarc_ReadRequest *request,
                         int64_t now_ms)
{
    uarc_ReadResponse r;
    uarc_init(&r, UARC_T(ReadResponse));
    uint32_t handle = request->requestHeader.requestHandle;
    if (request->nodesToReadSize == 0) {
        sim_fault(conn, request_id, handle, UARC_BadNothingToDo, now_ms);
        return;
    }
    r.results = calloc(request->nodesToReadSize, sizeof *r.results);
    if (!r.results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    r.resultsSize = request->nodesToReadSize;
    for (size_t i = 0; i < request->nodesToReadSize; i++)
        read_attribute(conn->server, &request->nodesToRead[i], now_ms, &r.results[i]);
    sim_reply(conn, request_id, handle, &r, UARC_T(ReadResponse), now_ms);
}

/* Adds the reference parent → child (forward) to `result`. */
static void add_reference(const sim_server *server, uarc_BrowseResult *result, uint32_t type,
                          node_kind child, uint32_t k)
{
    uarc_ReferenceDescription *refs =
        realloc(result->references, (result->referencesSize + 1) * sizeof *refs);
    if (!refs)
        return;
    result->references = refs;
    uarc_ReferenceDescription *ref = &refs[result->referencesSize++];
    uarc_init(ref, UARC_T(ReferenceDescription));
    ref->referenceTypeId = uarc_nodeid_numeric(0, type);
    ref->isForward = true;
    static const uint32_t ids[] = {0,
                                   UARC_NS0ID_RootFolder,
                                   UARC_NS0ID_ObjectsFolder,
                                   UARC_NS0ID_Server,
                                   UARC_NS0ID_Server_NamespaceArray,
                                   UARC_NS0ID_Server_ServerStatus,
                                   UARC_NS0ID_Server_ServerStatus_CurrentTime,
                                   UARC_NS0ID_Server_ServerStatus_State};
    char name[32];
    if (child == NODE_COUNTER) {
        ref->nodeId.node_id = uarc_nodeid_string(1, "Counter");
        snprintf(name, sizeof name, "Counter");
    } else if (child == NODE_ITEM) {
        ref->nodeId.node_id = uarc_nodeid_numeric(1, FIRST_ITEM + k);
        snprintf(name, sizeof name, "Item%u", (unsigned)k);
    } else {
        ref->nodeId.node_id = uarc_nodeid_numeric(0, ids[child]);
        snprintf(name, sizeof name, "%s", node_name(child));
    }
    ref->browseName.namespace_index = child >= NODE_COUNTER ? 1 : 0;
    ref->browseName.name = uarc_string_from(name);
    ref->displayName.text = uarc_string_from(name);
    bool variable = child >= NODE_NAMESPACES;
    ref->nodeClass = variable ? UARC_NodeClass_Variable : UARC_NodeClass_Object;
    ref->typeDefinition.node_id =
        uarc_nodeid_numeric(0, variable               ? UARC_NS0ID_BaseDataVariableType
                               : child == NODE_SERVER ? UARC_NS0ID_ServerType
                                                      : UARC_NS0ID_FolderType);
    (void)server;
}

static void browse_node(const sim_server *server, const uarc_BrowseDescription *d,
                        uarc_BrowseResult *result)
{
    uint32_t k;
    node_kind kind = node_of(server, &d->nodeId, &k);
    if (kind == NODE_UNKNOWN) {
        result->statusCode = UARC_BadNodeIdUnknown;
        return;
    }
    if (d->browseDirection == UARC_BrowseDirection_Inverse)
        return; /* only forward references are kept */
    uint32_t filter = d->referenceTypeId.identifier_type == UARC_NODEID_NUMERIC
                          ? d->referenceTypeId.identifier.numeric
                          : UARC_NS0ID_References;
    bool organizes = filter == 0 || filter == UARC_NS0ID_References ||
                     filter == UARC_NS0ID_HierarchicalReferences || filter == UARC_NS0ID_Organizes;
    bool component = filter == 0 || filter == UARC_NS0ID_References ||
                     filter == UARC_NS0ID_HierarchicalReferences ||
                     filter == UARC_NS0ID_HasComponent;
    switch (kind) {
    case NODE_ROOT:
        if (organizes)
            add_reference(server, result, UARC_NS0ID_Organizes, NODE_OBJECTS, 0);
        break;
    case NODE_OBJECTS:
        if (organizes) {
            add_reference(server, result, UARC_NS0ID_Organizes, NODE_SERVER, 0);
            add_reference(server, result, UARC_NS0ID_Organizes, NODE_COUNTER, 0);
            for (uint32_t i = 0; i < server->config->items; i++)
                add_reference(server, result, UARC_NS0ID_Organizes, NODE_ITEM, i);
        }
        break;
    case NODE_SERVER:
        if (component) {
            add_reference(server, result, UARC_NS0ID_HasComponent, NODE_NAMESPACES, 0);
            add_reference(server, result, UARC_NS0ID_HasComponent, NODE_STATUS, 0);
        }
        break;
    case NODE_STATUS:
        if (component) {
            add_reference(server, result, UARC_NS0ID_HasComponent, NODE_TIME, 0);
            add_reference(server, result, UARC_NS0ID_HasComponent, NODE_STATE, 0);
        }
        break;
    default:
        break;
    }
}

static void browse_service(sim_conn *conn, uint32_t request_id, const uarc_BrowseRequest *request,
                           int64_t now_ms)
{
    uint32_t handle = request->requestHeader.requestHandle;
    if (request->nodesToBrowseSize == 0) {
        sim_fault(conn, request_id, handle, UARC_BadNothingToDo, now_ms);
        return;
    }
    uarc_BrowseResponse r;
    uarc_init(&r, UARC_T(BrowseResponse));
    r.results = calloc(request->nodesToBrowseSize, sizeof *r.results);
    if (!r.results) {
        sim_fault(conn, request_id, handle, UARC_BadOutOfMemory, now_ms);
        return;
    }
    r.resultsSize = request->nodesToBrowseSize;
    for (size_t i = 0; i < request->nodesToBrowseSize; i++) {
        browse_node(conn->server, &request->nodesToBrowse[i], &r.results[i]);
        if (r.results[i].referencesSize == 0 && r.results[i].statusCode == UARC_Good)
            r.results[i].references = UARC_EMPTY;
    }
    sim_reply(conn, request_id, handle, &r, UARC_T(BrowseResponse), now_ms);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

void sim_service(sim_conn *conn, uint32_t request_id, void *request, const uarc_type *type,
                 int64_t now_ms)
{
    const uarc_RequestHeader *header = request;
    uint32_t handle = header->requestHandle;
    if (type == UARC_T(GetEndpointsRequest)) {
        get_endpoints(conn, request_id, handle, now_ms);
        return;
    }
    if (type == UARC_T(CreateSessionRequest)) {
        create_session(conn, request_id, request, now_ms);
        return;
    }
    if (type == UARC_T(ActivateSessionRequest)) {
        activate_session(conn, request_id, request, now_ms);
        return;
    }
    sim_session *session = find_session(conn->server, &header->authenticationToken);
    if (!session) {
        sim_fault(conn, request_id, handle, UARC_BadSessionIdInvalid, now_ms);
        return;
    }
    if (!session->activated || session->conn != conn) {
        sim_fault(conn, request_id, handle, UARC_BadSessionNotActivated, now_ms);
        return;
    }
    session->last_seen_ms = now_ms;
    if (type == UARC_T(CloseSessionRequest)) {
        sim_session_delete(conn->server, session);
        uarc_CloseSessionResponse r;
        uarc_init(&r, UARC_T(CloseSessionResponse));
        sim_reply(conn, request_id, handle, &r, UARC_T(CloseSessionResponse), now_ms);
    } else if (type == UARC_T(ReadRequest)) {
        read_service(conn, request_id, request, now_ms);
    } else if (type == UARC_T(BrowseRequest)) {
        browse_service(conn, request_id, request, now_ms);
    } else if (!sim_subscription_service(conn, session, request_id, request, type, now_ms)) {
        sim_fault(conn, request_id, handle, UARC_BadServiceUnsupported, now_ms);
    }
}
