/*
 * Discovery (Part 6 §7.1.3). A secured channel needs the server's certificate before OPN, and a
 * server that dials in was never asked for it. So when the configuration asks for a policy other
 * than None and names no server certificate, the server gets a second client, its probe: None,
 * no session. The server's first socket goes to the probe, which asks GetEndpoints, looks for
 * the endpoint of the configured policy and mode, and closes its channel with CLO. The probe runs
 * like every other client (non-blocking, its outcome noted and acted on afterwards), so a slow
 * server delays nobody. The certificate found is used only when its subjectAltName URI is the
 * ServerUri of the ReverseHello: a server must not pass off another's certificate as its own,
 * and a relay could otherwise hand us any certificate. When it fits, the whole GetEndpoints result
 * goes to the server's client (uarc_client_set_endpoints: learned, not pinned) and the probe is
 * dropped; the server's next dial then opens the secured channel and the session, the client
 * deciding trust at OPN by its trust list or store as for any learned certificate, and later
 * re-dials keep it. Any other outcome is reported as `failed`, and the next dial asks again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reverse/hub_internal.h"
#include "core/alloc.h"
#include "core/log.h"

static const char *mode_name(uarc_MessageSecurityMode mode)
{
    const char *name = uarc_enum_name(UARC_T(MessageSecurityMode), (int32_t)mode);
    return name ? name : "Invalid";
}

static void appendf(char *buf, size_t size, const char *fmt, ...) UARC__PRINTF(3, 4);
static void appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

#define DETAIL_SIZE 1024

/* Keeps the text of a discovery failure, in a block of its length: a fleet whose servers need no
 * discovery holds none. Without memory for it, the status names the failure. */
static void keep_detail(hub_server *s, const char *fmt, ...) UARC__PRINTF(2, 3);
static void keep_detail(hub_server *s, const char *fmt, ...)
{
    char text[DETAIL_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    uarc__free(s->probe_detail);
    s->probe_detail = uarc__strndup(text, strlen(text));
}

/* Notes why the probe's connection failed (the first reason counts). `error` is the probe's
 * detail, which names the step and the status; the reason says it was the discovery. */
static void probe_failed(hub_server *s, uarc_status status, const char *error)
{
    if (s->probe_answered)
        return;
    s->probe_answered = true;
    s->probe_status = status;
    char d[DETAIL_SIZE] = "";
    if (error[0])
        appendf(d, sizeof d, "%s", error);
    else
        appendf(d, sizeof d, "GetEndpoints: %s: connection ended", uarc_status_name(status));
    appendf(d, sizeof d,
            " (asking GetEndpoints for the server's certificate over SecurityPolicy None)");
    keep_detail(s, "%s", d);
}

/* The endpoint of the configured policy and mode, or NULL with the failure noted. */
static const uarc_EndpointDescription *pick_endpoint(hub_server *s,
                                                     const uarc_GetEndpointsResponse *r)
{
    const char *policy = uarc_client_security_policy_uri(s->client);
    const uarc_EndpointDescription *e =
        uarc_client_pick_endpoint(s->client, r->endpoints, r->endpointsSize);
    if (e)
        return e;
    char d[DETAIL_SIZE] = "";
    appendf(
        d, sizeof d,
        "GetEndpoints: BadSecurityPolicyRejected: the server offers no endpoint with %s in mode "
        "%s and a certificate; it offers",
        policy, mode_name(s->mode));
    for (size_t i = 0; i < r->endpointsSize; i++) {
        const uarc_string *p = &r->endpoints[i].securityPolicyUri;
        const char *hash = p->length ? memchr(p->data, '#', p->length) : NULL;
        size_t skip = hash ? (size_t)(hash + 1 - (const char *)p->data) : 0;
        appendf(d, sizeof d, "%s %.*s/%s", i ? "," : "", (int)(p->length - skip),
                p->length ? (const char *)p->data + skip : "",
                mode_name(r->endpoints[i].securityMode));
    }
    appendf(d, sizeof d, "%s", r->endpointsSize ? "" : " none");
    keep_detail(s, "%s", d);
    s->probe_status = UARC_BadSecurityPolicyRejected;
    s->probe_answered = true;
    return NULL;
}

/* Takes the certificate only when it names the ServerUri the ReverseHello claimed. */
static void check_endpoint(hub_server *s, const uarc_EndpointDescription *e)
{
    char uri[4096];
    uarc_status status = uarc_certificate_uri(e->serverCertificate.data,
                                              e->serverCertificate.length, uri, sizeof uri);
    if (status == UARC_BadCertificateInvalid) {
        s->probe_status = status;
        keep_detail(
            s,
            "GetEndpoints: BadCertificateInvalid: the serverCertificate of the endpoint for "
            "%s is not a certificate",
            uarc_client_security_policy_uri(s->client));
    } else if (status != UARC_Good || strcmp(uri, s->server_uri) != 0) {
        s->probe_status = UARC_BadCertificateUriInvalid;
        keep_detail(s,
                    "GetEndpoints: BadCertificateUriInvalid: the server's certificate names URI "
                    "%.400s, but the server claims to be %.400s (ReverseHello); the certificate is "
                    "not used",
                    status == UARC_Good ? uri : "(none)", s->server_uri);
    } else {
        s->found = uarc_new(UARC_T(EndpointDescription));
        status =
            s->found ? uarc_copy(e, s->found, UARC_T(EndpointDescription)) : UARC_BadOutOfMemory;
        s->probe_status = status;
        if (status != UARC_Good) {
            uarc_delete(s->found, UARC_T(EndpointDescription)); /* found only when copied */
            s->found = NULL;
            keep_detail(s, "GetEndpoints: %s: out of memory", uarc_status_name(status));
        }
    }
    s->probe_answered = true;
}

/* Keeps the whole GetEndpoints result for the server's client: it compares CreateSession's
 * serverEndpoints with it. Out of memory drops `found`: no certificate without its endpoints. */
static void keep_offered(hub_server *s, const uarc_GetEndpointsResponse *r)
{
    s->offered = uarc_new(UARC_T(GetEndpointsResponse));
    if (s->offered && uarc_copy(r, s->offered, UARC_T(GetEndpointsResponse)) == UARC_Good)
        return;
    uarc_delete(s->offered, UARC_T(GetEndpointsResponse));
    s->offered = NULL;
    uarc_delete(s->found, UARC_T(EndpointDescription));
    s->found = NULL;
    s->probe_status = UARC_BadOutOfMemory;
    keep_detail(s, "GetEndpoints: BadOutOfMemory: out of memory");
}

static void on_endpoints(void *user_data, uarc_status status, void *response)
{
    hub_server *s = user_data;
    /* When the connection ended first, on_probe_state has noted why. */
    if (uarc_client_state_get(s->probe) != UARC_CLIENT_CHANNEL_OPEN)
        return;
    if (status != UARC_Good || !response) {
        probe_failed(s, status != UARC_Good ? status : UARC_BadUnexpectedError,
                     uarc_client_error(s->probe));
    } else {
        const uarc_EndpointDescription *e = pick_endpoint(s, response);
        if (e)
            check_endpoint(s, e);
        if (s->found)
            keep_offered(s, response);
    }
    uarc_client_disconnect_now(s->probe); /* CLO now; the socket closes after this callback */
}

static void on_probe_state(void *user_data, uarc_client_state state, uarc_status status)
{
    hub_server *s = user_data;
    if (state == UARC_CLIENT_CHANNEL_OPEN) {
        uarc_GetEndpointsRequest req;
        uarc_init(&req, UARC_T(GetEndpointsRequest));
        const char *url = uarc_client_endpoint_url(s->probe);
        req.endpointUrl = (uarc_string){strlen(url), (uint8_t *)url};
        uarc_status sent = uarc_client_send(s->probe, &req, UARC_T(GetEndpointsRequest),
                                            UARC_T(GetEndpointsResponse), 0, on_endpoints, s, NULL);
        if (sent != UARC_Good) {
            probe_failed(s, sent, uarc_client_error(s->probe));
            uarc_client_disconnect_now(s->probe);
        }
    } else if (state == UARC_CLIENT_DISCONNECTED) {
        s->probe_ended = true;
        s->reopened = true;
        probe_failed(s, status == UARC_Good ? UARC_BadConnectionClosed : status,
                     uarc_client_error(s->probe));
    }
}

/* The probe: None, no session, no identity; limits and logging as the server's client. */
uarc_client *uarc__hub_new_probe(hub_server *s, const uarc_client_config *cfg)
{
    uarc_client_config p = {
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .request_timeout_ms = cfg->request_timeout_ms,
        .receive_buffer_size = cfg->receive_buffer_size,
        .send_buffer_size = cfg->send_buffer_size,
        .max_message_size = cfg->max_message_size,
        .max_chunk_count = cfg->max_chunk_count,
        .application_uri = cfg->application_uri,
        .application_name = cfg->application_name,
        .no_session = true,
        .decode = cfg->decode,
        .memory_budget = cfg->memory_budget,
        .handshake_timeout_ms = cfg->handshake_timeout_ms,
        .callbacks = {on_probe_state, s},
        .logger = cfg->logger,
    };
    uarc_client *probe = uarc_client_new(&p);
    if (probe)
        uarc_client_set_wake_callback(probe, uarc__hub_on_wake, s);
    return probe;
}

/* Hands a socket to the server's probe, to learn its certificate. */
void uarc__hub_start_discovery(hub_server *s, uarc_reverse_connection *c)
{
    int fd = uarc_reverse_connection_take_fd(c);
    s->probe_ended = s->probe_answered = false;
    uarc_status status = uarc_client_start_socket(s->probe, fd, c->endpoint_url);
    if (status != UARC_Good && uarc_client_state_get(s->probe) == UARC_CLIENT_DISCONNECTED) {
        probe_failed(s, status, uarc_client_error(s->probe));
        s->probe_ended = true;
    }
    uarc_reverse_connection_clear(c);
}

/*
 * Acts on a discovery that ended: the certificate goes to the server's client and the probe is
 * dropped, or the failure is reported. Returns true when it ran a callback.
 */
bool uarc__hub_finish_discovery(uarc_reverse_hub *hub, hub_server *s)
{
    s->probe_ended = false;
    const uarc_reverse_hub_callbacks *cb = &hub->opt.callbacks;
    uarc_EndpointDescription *found = s->found;
    uarc_GetEndpointsResponse *offered = s->offered;
    s->found = NULL;
    s->offered = NULL;
    if (found) {
        /* Learned, not pinned: the client's trust list or store decides at OPN. */
        uarc_status status = offered ? uarc_client_set_endpoints(s->client, offered->endpoints,
                                                                 offered->endpointsSize)
                                     : UARC_BadOutOfMemory;
        uarc_delete(offered, UARC_T(GetEndpointsResponse));
        if (status == UARC_Good) {
            uarc__backoff_reset(&s->backoff);
            uarc_client_set_wake_callback(s->probe, NULL, NULL);
            uarc_client_delete(s->probe);
            s->probe = NULL;
            uarc__free(s->probe_detail); /* an earlier failure's */
            s->probe_detail = NULL;
            bool called = cb->discovered != NULL;
            if (called)
                cb->discovered(cb->user_data, s->client, s->server_uri, found);
            uarc_delete(found, UARC_T(EndpointDescription));
            return called;
        }
        s->probe_status = status;
        keep_detail(s, "GetEndpoints: %s: the server's certificate cannot be used",
                    uarc_status_name(status));
        uarc_delete(found, UARC_T(EndpointDescription));
    }
    /* Taken from the server first: the callback may run the hub, and a new discovery of the
     * same server would replace the text it is reading. */
    char *detail = s->probe_detail;
    s->probe_detail = NULL;
    bool called = uarc__hub_report_failed(hub, s, s->probe_status,
                                          detail ? detail : "GetEndpoints: no memory for the text");
    uarc__free(detail);
    return called;
}

void uarc__hub_free_discovery(hub_server *s)
{
    if (s->probe) {
        uarc_client_set_wake_callback(s->probe, NULL, NULL);
        uarc_client_disconnect_now(s->probe);
    }
    uarc_client_delete(s->probe);
    s->probe = NULL;
    uarc_delete(s->found, UARC_T(EndpointDescription));
    uarc_delete(s->offered, UARC_T(GetEndpointsResponse));
    s->found = NULL;
    s->offered = NULL;
    uarc__free(s->probe_detail);
    s->probe_detail = NULL;
}
