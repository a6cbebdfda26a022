/*
 * Forward discovery: GetEndpoints over a None channel of a second client, then the endpoint with
 * the client's policy and mode, handed to the client for its secured connect.
 */
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"

static const char *mode_name(uarc_MessageSecurityMode mode)
{
    const char *name = uarc_enum_name(UARC_T(MessageSecurityMode), (int32_t)mode);
    return name ? name : "Invalid";
}

static uarc_MessageSecurityMode wanted_mode(const uarc_client *c)
{
    return c->cfg.security_mode ? c->cfg.security_mode : UARC_MessageSecurityMode_SignAndEncrypt;
}

UARC_API const uarc_EndpointDescription *
uarc_client_pick_endpoint(const uarc_client *c, const uarc_EndpointDescription *endpoints,
                          size_t count)
{
    const char *policy = c->cfg.security_policy_uri;
    uarc_MessageSecurityMode mode = wanted_mode(c);
    for (size_t i = 0; i < count; i++) {
        const uarc_EndpointDescription *e = &endpoints[i];
        if (policy && uarc_string_equal_cstr(&e->securityPolicyUri, policy) &&
            e->securityMode == mode && e->serverCertificate.length)
            return e;
    }
    return NULL;
}

/* "Basic256Sha256/SignAndEncrypt, None/None" into buf: what the server offers, for the error. */
static void list_offered(const uarc_GetEndpointsResponse *r, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->endpointsSize && used < size; i++) {
        const uarc_string *p = &r->endpoints[i].securityPolicyUri;
        const char *hash = p->length ? memchr(p->data, '#', p->length) : NULL;
        size_t skip = hash ? (size_t)(hash + 1 - (const char *)p->data) : 0;
        int n = snprintf(buf + used, size - used, "%s%.*s/%s", i ? ", " : "",
                         (int)(p->length - skip), p->length ? (const char *)p->data + skip : "",
                         mode_name(r->endpoints[i].securityMode));
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (r->endpointsSize == 0)
        snprintf(buf, size, "none");
}

UARC_API uarc_status uarc_client_discover(uarc_client *c, const char *endpoint_url)
{
    if (c->state != UARC_CLIENT_DISCONNECTED || c->bytes_mode) {
        uarc__client_set_error(c, "GetEndpoints", UARC_BadInvalidState, "client not disconnected");
        return UARC_BadInvalidState;
    }
    uarc_client_config cfg = c->cfg;
    cfg.callbacks = (uarc_client_callbacks){0};
    cfg.security_policy_uri = NULL;
    cfg.security_mode = UARC_MessageSecurityMode_Invalid;
    cfg.no_session = true;
    cfg.user_name = cfg.password = NULL;
    cfg.user_certificate_file = cfg.user_private_key_file = NULL;
    /* the URI our certificate gives is only a default: the probe takes it from the same file */
    if (!c->application_uri_given)
        cfg.application_uri = NULL;
    uarc_client *probe = uarc_client_new(&cfg);
    if (!probe) {
        uarc__client_set_error(c, "GetEndpoints", UARC_BadOutOfMemory, "out of memory");
        return UARC_BadOutOfMemory;
    }
    uarc_GetEndpointsResponse r;
    uarc_init(&r, UARC_T(GetEndpointsResponse));
    uarc_status status = uarc_client_connect(probe, endpoint_url);
    if (status == UARC_Good)
        status = uarc_client_get_endpoints(probe, &r);
    if (status != UARC_Good) {
        /* The probe's error already names the step (connect, HEL, OPN, GetEndpoints). */
        uarc__client_set_error_text(c, status, uarc_client_error(probe));
    } else if (!uarc_client_pick_endpoint(c, r.endpoints, r.endpointsSize)) {
        char offered[512];
        list_offered(&r, offered, sizeof offered);
        status = UARC_BadSecurityPolicyRejected;
        uarc__client_set_error(c, "GetEndpoints", status,
                               "the server offers no endpoint with %s in mode %s and a "
                               "certificate; it offers %s",
                               c->cfg.security_policy_uri ? c->cfg.security_policy_uri : "None",
                               mode_name(wanted_mode(c)), offered);
    } else {
        status = uarc_client_set_endpoints(c, r.endpoints, r.endpointsSize);
    }
    uarc_clear(&r, UARC_T(GetEndpointsResponse));
    uarc_client_disconnect(probe);
    uarc_client_delete(probe);
    return status;
}
