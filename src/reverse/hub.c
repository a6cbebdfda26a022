/*
 * The reverse-connect hub: one client per ServerUri, fed with the sockets the listener accepts.
 * It sees the listener and the clients only through their public APIs.
 *
 * A client's state changes are only noted while the client runs; the hub acts on them (starts a
 * re-dialed socket, runs the application's callbacks) once every client has run, so callbacks
 * can make blocking calls and no client is touched from inside its own processing.
 *
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
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uarc/reverse.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#define SECURITY_POLICY_NONE "http://opcfoundation.org/UA/SecurityPolicy#None"

#define DEFAULT_SPARE_TIMEOUT_MS 30000u
#define DEFAULT_HELLO_TIMEOUT_MS 5000u

typedef struct hub_server {
    char *server_uri;
    uarc_client *client;
    uarc_reverse_hub *hub;
    bool was_active;      /* a session was active at least once */
    bool active;          /* the session is active now */
    bool became_active;   /* noted during processing, reported afterwards */
    bool became_inactive; /* likewise */
    uarc_status end_status;
    uarc_reverse_connection spare; /* a newer socket from this server, kept while in session */
    int64_t spare_deadline;        /* when a spare still unused is dropped */
    /* Discovery of the server's certificate; probe is NULL when it is known or not needed. */
    uarc_client *probe;
    uarc_MessageSecurityMode mode;   /* of the endpoint to look for */
    bool probe_ended;                /* noted during processing, acted on afterwards */
    bool probe_answered;             /* the outcome is known: found or probe_status */
    uarc_status probe_status;        /* why discovery failed */
    uarc_EndpointDescription *found; /* the endpoint whose certificate fits */
    char probe_detail[1024];         /* "<step>: <StatusName>: <reason>" of a failure */
    /* with `found`: everything GetEndpoints said, for the server's client */
    uarc_GetEndpointsResponse *offered;
} hub_server;

/* A socket dropped without becoming its server's connection, reported after the round. */
typedef struct drop_report {
    char *server_uri;
    char peer[UARC_PEER_SIZE];
    uarc_status status;
    char reason[160];
} drop_report;

struct uarc_reverse_hub {
    uarc_reverse_hub_config opt;
    hub_server **servers;
    size_t count, capacity;
    drop_report *drops;
    size_t drop_count, drop_capacity;
    uarc_memory_budget *own_budget; /* made when the base configuration names none */
    /* With generate_certificate: the one certificate every client of the hub presents, made at
     * the first secured server rather than by each client (an RSA key takes a while to make, and
     * it would be made inside the loop that serves everybody). */
    char *generated_for; /* its application URI */
    uint8_t *generated_certificate, *generated_key;
    size_t generated_certificate_length, generated_key_length;
};

UARC_API uarc_status uarc_reverse_connect(uarc_client *client, uarc_reverse_connection *connection)
{
    int fd = uarc_reverse_connection_take_fd(connection);
    if (fd < 0)
        return UARC_BadInvalidArgument;
    /* Once the channel is secured, the certificate must carry the ServerUri the RHE claimed. */
    uarc_status status = uarc_client_set_expected_server_uri(client, connection->server_uri);
    if (status != UARC_Good) {
        close(fd);
        return status;
    }
    return uarc_client_connect_socket(client, fd, connection->endpoint_url);
}

UARC_API uarc_reverse_hub *uarc_reverse_hub_new(const uarc_reverse_hub_config *options)
{
    if (!options || !options->listener)
        return NULL;
    uarc_reverse_hub *hub = uarc__calloc(1, sizeof *hub);
    if (!hub)
        return NULL;
    hub->opt = *options;
    if (!hub->opt.spare_timeout_ms)
        hub->opt.spare_timeout_ms = DEFAULT_SPARE_TIMEOUT_MS;
    if (!hub->opt.client.handshake_timeout_ms)
        hub->opt.client.handshake_timeout_ms = DEFAULT_HELLO_TIMEOUT_MS;
    if (!hub->opt.client.memory_budget) {
        hub->own_budget = uarc_memory_budget_new(0);
        if (!hub->own_budget) {
            uarc__free(hub);
            return NULL;
        }
        hub->opt.client.memory_budget = hub->own_budget;
    }
    return hub;
}

static void free_server(hub_server *s)
{
    if (s->client)
        uarc_client_disconnect_now(s->client);
    uarc_client_delete(s->client);
    if (s->probe)
        uarc_client_disconnect_now(s->probe);
    uarc_client_delete(s->probe);
    uarc_delete(s->found, UARC_T(EndpointDescription));
    uarc_delete(s->offered, UARC_T(GetEndpointsResponse));
    uarc_reverse_connection_clear(&s->spare);
    uarc__free(s->server_uri);
    uarc__free(s);
}

/* Zeroes a private key before it is freed (volatile: the stores are not optimized away). */
static void wipe(uint8_t *key, size_t length)
{
    volatile uint8_t *p = key;
    for (size_t i = 0; key && i < length; i++)
        p[i] = 0;
}

UARC_API void uarc_reverse_hub_delete(uarc_reverse_hub *hub)
{
    if (!hub)
        return;
    for (size_t i = 0; i < hub->count; i++)
        free_server(hub->servers[i]);
    uarc__free(hub->servers);
    for (size_t i = 0; i < hub->drop_count; i++)
        uarc__free(hub->drops[i].server_uri);
    uarc__free(hub->drops);
    uarc_memory_budget_delete(hub->own_budget); /* after the clients that used it */
    wipe(hub->generated_key, hub->generated_key_length);
    uarc__free(hub->generated_key);
    uarc__free(hub->generated_certificate);
    uarc__free(hub->generated_for);
    uarc__free(hub);
}

static bool is_none(const char *policy_uri)
{
    return !policy_uri || strcmp(policy_uri, SECURITY_POLICY_NONE) == 0;
}

/* generate_certificate for a secured client: hands it the hub's certificate, made once. A client
 * configured with another application URI than the first makes its own, as it would alone. */
static uarc_status share_generated_certificate(uarc_reverse_hub *hub, uarc_client_config *cfg)
{
    if (!cfg->generate_certificate || cfg->certificate || cfg->certificate_file ||
        is_none(cfg->security_policy_uri))
        return UARC_Good;
    const char *uri = cfg->application_uri ? cfg->application_uri : "";
    if (!hub->generated_for) {
        uint8_t *cert, *key;
        size_t cert_length, key_length;
        uarc_status status = uarc_certificate_generate_for(
            cfg->application_uri, cfg->security_policy_uri, &cert, &cert_length, &key, &key_length);
        if (status != UARC_Good)
            return status;
        char *for_uri = uarc__strndup(uri, strlen(uri));
        if (!for_uri) {
            wipe(key, key_length);
            uarc__free(key);
            uarc__free(cert);
            return UARC_BadOutOfMemory;
        }
        hub->generated_for = for_uri;
        hub->generated_certificate = cert;
        hub->generated_certificate_length = cert_length;
        hub->generated_key = key;
        hub->generated_key_length = key_length;
    }
    if (strcmp(hub->generated_for, uri) != 0)
        return UARC_Good;
    cfg->certificate = hub->generated_certificate;
    cfg->certificate_length = hub->generated_certificate_length;
    cfg->private_key = hub->generated_key;
    cfg->private_key_length = hub->generated_key_length;
    cfg->generate_certificate = false;
    return UARC_Good;
}

static hub_server *find(const uarc_reverse_hub *hub, const char *server_uri, size_t *index)
{
    for (size_t i = 0; i < hub->count; i++)
        if (strcmp(hub->servers[i]->server_uri, server_uri) == 0) {
            if (index)
                *index = i;
            return hub->servers[i];
        }
    return NULL;
}

UARC_API uarc_client *uarc_reverse_hub_client(const uarc_reverse_hub *hub, const char *server_uri)
{
    hub_server *s = find(hub, server_uri, NULL);
    return s ? s->client : NULL;
}

UARC_API size_t uarc_reverse_hub_count(const uarc_reverse_hub *hub)
{
    return hub->count;
}

static void on_state(void *user_data, uarc_client_state state, uarc_status status)
{
    hub_server *s = user_data;
    if (state == UARC_CLIENT_SESSION_ACTIVE || (state == UARC_CLIENT_CHANNEL_OPEN && !s->active)) {
        s->active = true;
        s->became_active = true;
    } else if (state == UARC_CLIENT_DISCONNECTED) {
        s->became_inactive = true;
        s->end_status = status;
    }
}

/* ---- discovery ---- */

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

/* Notes why the probe's connection failed (the first reason counts). `error` is the probe's
 * detail, which names the step and the status; the reason says it was the discovery. */
static void probe_failed(hub_server *s, uarc_status status, const char *error)
{
    if (s->probe_answered)
        return;
    s->probe_answered = true;
    s->probe_status = status;
    s->probe_detail[0] = '\0';
    if (error[0])
        appendf(s->probe_detail, sizeof s->probe_detail, "%s", error);
    else
        appendf(s->probe_detail, sizeof s->probe_detail, "GetEndpoints: %s: connection ended",
                uarc_status_name(status));
    appendf(s->probe_detail, sizeof s->probe_detail,
            " (asking GetEndpoints for the server's certificate over SecurityPolicy None)");
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
    char *d = s->probe_detail;
    d[0] = '\0';
    appendf(
        d, sizeof s->probe_detail,
        "GetEndpoints: BadSecurityPolicyRejected: the server offers no endpoint with %s in mode "
        "%s and a certificate; it offers",
        policy, mode_name(s->mode));
    for (size_t i = 0; i < r->endpointsSize; i++) {
        const uarc_string *p = &r->endpoints[i].securityPolicyUri;
        const char *hash = p->length ? memchr(p->data, '#', p->length) : NULL;
        size_t skip = hash ? (size_t)(hash + 1 - (const char *)p->data) : 0;
        appendf(d, sizeof s->probe_detail, "%s %.*s/%s", i ? "," : "", (int)(p->length - skip),
                p->length ? (const char *)p->data + skip : "",
                mode_name(r->endpoints[i].securityMode));
    }
    appendf(d, sizeof s->probe_detail, "%s", r->endpointsSize ? "" : " none");
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
        snprintf(s->probe_detail, sizeof s->probe_detail,
                 "GetEndpoints: BadCertificateInvalid: the serverCertificate of the endpoint for "
                 "%s is not a certificate",
                 uarc_client_security_policy_uri(s->client));
    } else if (status != UARC_Good || strcmp(uri, s->server_uri) != 0) {
        s->probe_status = UARC_BadCertificateUriInvalid;
        snprintf(s->probe_detail, sizeof s->probe_detail,
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
            snprintf(s->probe_detail, sizeof s->probe_detail, "GetEndpoints: %s: out of memory",
                     uarc_status_name(status));
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
    snprintf(s->probe_detail, sizeof s->probe_detail,
             "GetEndpoints: BadOutOfMemory: out of memory");
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
        probe_failed(s, status == UARC_Good ? UARC_BadConnectionClosed : status,
                     uarc_client_error(s->probe));
    }
}

/* The probe: None, no session, no identity; limits and logging as the server's client. */
static uarc_client *new_probe(hub_server *s, const uarc_client_config *cfg)
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
    return uarc_client_new(&p);
}

/* Hands a socket to the server's probe, to learn its certificate. */
static void start_discovery(hub_server *s, uarc_reverse_connection *c)
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
static bool finish_discovery(uarc_reverse_hub *hub, hub_server *s)
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
            uarc_client_delete(s->probe);
            s->probe = NULL;
            bool called = cb->discovered != NULL;
            if (called)
                cb->discovered(cb->user_data, s->client, s->server_uri, found);
            uarc_delete(found, UARC_T(EndpointDescription));
            return called;
        }
        s->probe_status = status;
        snprintf(s->probe_detail, sizeof s->probe_detail,
                 "GetEndpoints: %s: the server's certificate cannot be used",
                 uarc_status_name(status));
        uarc_delete(found, UARC_T(EndpointDescription));
    }
    if (!cb->failed)
        return false;
    cb->failed(cb->user_data, s->client, s->server_uri, s->probe_status, s->probe_detail);
    return true;
}

/* ---- connections ---- */

/* No socket in use and nothing noted that still waits to be acted on. */
static bool idle(const hub_server *s)
{
    return uarc_client_state_get(s->client) == UARC_CLIENT_DISCONNECTED &&
           (!s->probe ||
            (uarc_client_state_get(s->probe) == UARC_CLIENT_DISCONNECTED && !s->probe_ended));
}

/* Hands a socket to the server's idle client, or to its probe while the certificate is unknown. */
static void start(hub_server *s, uarc_reverse_connection *c)
{
    if (s->probe) {
        start_discovery(s, c);
        return;
    }
    int fd = uarc_reverse_connection_take_fd(c);
    s->became_inactive = false;
    uarc_status status = uarc_client_start_socket(s->client, fd, c->endpoint_url);
    if (status != UARC_Good && uarc_client_state_get(s->client) == UARC_CLIENT_DISCONNECTED) {
        /* refused before any state change (a certificate that does not carry the ServerUri):
         * no state_changed tells it, so note it here */
        s->became_inactive = true;
        s->end_status = status;
    }
    uarc_reverse_connection_clear(c);
}

static hub_server *add_server(uarc_reverse_hub *hub, uarc_reverse_connection *c)
{
    uarc_client_config cfg = hub->opt.client;
    const uarc_reverse_hub_callbacks *cb = &hub->opt.callbacks;
    if (cb->configure && !cb->configure(cb->user_data, c, &cfg))
        return NULL;
    if (share_generated_certificate(hub, &cfg) != UARC_Good)
        return NULL;
    hub_server *s = uarc__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uarc_reverse_connection_init(&s->spare);
    s->hub = hub;
    s->server_uri = uarc__strndup(c->server_uri, c->server_uri_length);
    cfg.callbacks = (uarc_client_callbacks){on_state, s};
    cfg.expected_server_uri = s->server_uri; /* the certificate must carry the RHE's ServerUri */
    s->client = uarc_client_new(&cfg);
    s->mode = cfg.security_mode ? cfg.security_mode : UARC_MessageSecurityMode_SignAndEncrypt;
    bool secured = s->client && !is_none(uarc_client_security_policy_uri(s->client));
    bool certificate_known = cfg.server_certificate_length || cfg.server_certificate_file;
    if (secured && !certificate_known && !(s->probe = new_probe(s, &cfg))) {
        free_server(s);
        return NULL;
    }
    if (hub->count == hub->capacity) {
        size_t cap = hub->capacity ? hub->capacity * 2 : 8;
        hub_server **grown = uarc__realloc(hub->servers, cap * sizeof *grown);
        if (grown) {
            hub->servers = grown;
            hub->capacity = cap;
        }
    }
    if (!s->server_uri || !s->client || hub->count == hub->capacity) {
        free_server(s);
        return NULL;
    }
    hub->servers[hub->count++] = s;
    return s;
}

/* Notes a socket that claimed `server_uri` and was dropped, for the `dropped` callback after the
 * round. Out of memory: it goes unreported (the log has it). */
static void report_drop(uarc_reverse_hub *hub, const char *server_uri, const char *peer,
                        uarc_status status, const char *fmt, ...) UARC__PRINTF(5, 6);
static void report_drop(uarc_reverse_hub *hub, const char *server_uri, const char *peer,
                        uarc_status status, const char *fmt, ...)
{
    drop_report r = {.status = status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.reason, sizeof r.reason, fmt, ap);
    va_end(ap);
    snprintf(r.peer, sizeof r.peer, "%s", peer);
    uarc__log(&hub->opt.client.logger, UARC_LOG_INFO, "hub", "%s from %s dropped: %s (%s)",
              server_uri, peer, r.reason, uarc_status_name(status));
    if (!hub->opt.callbacks.dropped)
        return;
    if (hub->drop_count == hub->drop_capacity) {
        size_t cap = hub->drop_capacity ? hub->drop_capacity * 2 : 8;
        drop_report *grown = uarc__realloc(hub->drops, cap * sizeof *grown);
        if (!grown)
            return;
        hub->drops = grown;
        hub->drop_capacity = cap;
    }
    r.server_uri = uarc__strndup(server_uri, strlen(server_uri));
    if (r.server_uri)
        hub->drops[hub->drop_count++] = r;
}

/* Drops the held spare, reporting why. */
static void drop_spare(uarc_reverse_hub *hub, hub_server *s, uarc_status status, const char *reason)
{
    report_drop(hub, s->server_uri, s->spare.peer, status, "%s", reason);
    uarc_reverse_connection_clear(&s->spare);
}

/* The server's client or probe is connecting over a socket that has not reached a session (or,
 * for the probe, its answer) yet. */
static uarc_client *attempt_in_progress(const hub_server *s)
{
    if (s->probe && !s->found && uarc_client_state_get(s->probe) != UARC_CLIENT_DISCONNECTED)
        return s->probe;
    if (!s->active && uarc_client_state_get(s->client) != UARC_CLIENT_DISCONNECTED)
        return s->client;
    return NULL;
}

/* A newer socket claims the server while an older one is still connecting: the newest wins. A
 * server dials again only when it has given up on its last socket, so the older one is either
 * abandoned or not the server at all (a silent impostor must not hold the server's place). Its
 * end is reported as that socket's, with its address, not as the server's failure. */
static void supersede(uarc_reverse_hub *hub, hub_server *s, uarc_client *attempt,
                      const char *newer_peer)
{
    char peer[UARC_PEER_SIZE];
    snprintf(peer, sizeof peer, "%s", uarc_client_peer(attempt));
    uarc_client_state at = uarc_client_state_get(attempt);
    uarc_client_abort(attempt, UARC_BadConnectionClosed, "superseded by a newer connection");
    if (attempt == s->probe) {
        s->probe_ended = s->probe_answered = false;
    } else {
        s->became_inactive = false;
        s->became_active = false;
    }
    report_drop(hub, s->server_uri, peer, UARC_BadConnectionClosed,
                "superseded in state %s by a newer connection from %s", uarc_client_state_name(at),
                newer_peer);
}

/* Routes one accepted connection to its server's client. */
static void route(uarc_reverse_hub *hub, uarc_reverse_connection *c)
{
    hub_server *s = find(hub, c->server_uri, NULL);
    if (!s) {
        s = add_server(hub, c);
        if (!s) {
            uarc_reverse_connection_clear(c);
            return;
        }
    }
    uarc_client *attempt = attempt_in_progress(s);
    if (attempt)
        supersede(hub, s, attempt, c->peer);
    if (idle(s)) {
        start(s, c);
        return;
    }
    /* In session: keep the newest socket for when the session's connection ends, for a bounded
     * time (a server that waits longer has likely given up on it, or was never the server). */
    if (s->spare.fd >= 0) {
        char reason[160];
        snprintf(reason, sizeof reason, "superseded as the spare by a newer connection from %s",
                 c->peer);
        drop_spare(hub, s, UARC_BadConnectionClosed, reason);
    }
    s->spare = *c;
    s->spare_deadline = uarc__now_ms() + hub->opt.spare_timeout_ms;
    uarc_reverse_connection_init(c);
}

UARC_API size_t uarc_reverse_hub_poll_fds(const uarc_reverse_hub *hub, struct pollfd *fds,
                                          size_t capacity)
{
    size_t n = 0;
    if (n < capacity)
        fds[n] = (struct pollfd){uarc_listener_fd(hub->opt.listener), POLLIN, 0};
    n++;
    for (size_t i = 0; i < hub->count; i++) {
        const hub_server *s = hub->servers[i];
        uarc_client *clients[2] = {s->client, s->probe};
        for (int k = 0; k < 2; k++) {
            int fd = clients[k] ? uarc_client_fd(clients[k]) : -1;
            if (fd < 0)
                continue;
            if (n < capacity)
                fds[n] = (struct pollfd){fd, uarc_client_poll_events(clients[k]), 0};
            n++;
        }
        if (s->spare.fd >= 0) {
            /* A waiting server sends nothing: readable means it closed. */
            if (n < capacity)
                fds[n] = (struct pollfd){s->spare.fd, POLLIN, 0};
            n++;
        }
    }
    return n;
}

UARC_API int uarc_reverse_hub_timeout_ms(const uarc_reverse_hub *hub)
{
    int wait = uarc_listener_timeout_ms(hub->opt.listener);
    for (size_t i = 0; i < hub->count; i++) {
        const hub_server *s = hub->servers[i];
        int t = uarc_client_timeout_ms(s->client);
        if (t >= 0 && (wait < 0 || t < wait))
            wait = t;
        t = s->probe ? uarc_client_timeout_ms(s->probe) : -1;
        if (t >= 0 && (wait < 0 || t < wait))
            wait = t;
        if (s->spare.fd >= 0) {
            int64_t left = s->spare_deadline - uarc__now_ms();
            t = left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
            if (wait < 0 || t < wait)
                wait = t;
        }
    }
    return wait;
}

/* Drops the spares whose peer closed them, and those held past their deadline. */
static void drop_stale_spares(uarc_reverse_hub *hub)
{
    int64_t now = uarc__now_ms();
    for (size_t i = 0; i < hub->count; i++) {
        hub_server *s = hub->servers[i];
        if (s->spare.fd < 0)
            continue;
        struct pollfd p = {s->spare.fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            uint8_t byte;
            ssize_t n = recv(s->spare.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
            drop_spare(hub, s, UARC_BadConnectionClosed,
                       n == 0                         ? "spare closed by peer"
                       : n < 0 && errno == ECONNRESET ? "spare reset by peer"
                       : n > 0                        ? "spare sent bytes before HEL"
                                                      : "spare failed");
        } else if (now >= s->spare_deadline) {
            char reason[128];
            snprintf(reason, sizeof reason, "held as a spare for %u ms without being needed",
                     hub->opt.spare_timeout_ms);
            drop_spare(hub, s, UARC_BadTimeout, reason);
        }
    }
}

/* Acts on what one server's client or probe noted: a callback, or its spare socket once it
 * ended. Returns true when it ran a callback or started a spare (the table may have changed). */
static bool settle_one(uarc_reverse_hub *hub, hub_server *s)
{
    const uarc_reverse_hub_callbacks *cb = &hub->opt.callbacks;
    if (s->probe && s->probe_ended && uarc_client_state_get(s->probe) == UARC_CLIENT_DISCONNECTED &&
        finish_discovery(hub, s))
        return true;
    if (s->became_active) {
        s->became_active = false;
        bool restored = s->was_active;
        s->was_active = true;
        if (cb->connected) {
            cb->connected(cb->user_data, s->client, s->server_uri, restored,
                          uarc_client_session_resumed(s->client));
            return true;
        }
    }
    bool disconnected = uarc_client_state_get(s->client) == UARC_CLIENT_DISCONNECTED;
    if (s->became_inactive && disconnected) {
        s->became_inactive = false;
        bool was = s->active;
        s->active = false;
        /* the cause's status (a keep-alive BadTimeout, BadSecureChannelIdInvalid...) rather
         * than the BadSecureChannelClosed that requests in flight got */
        uarc_status status = uarc_client_end_reason(s->client)[0]
                                 ? uarc_client_end_status(s->client)
                                 : s->end_status;
        if (was && cb->lost) {
            cb->lost(cb->user_data, s->client, s->server_uri, status);
            return true;
        }
        if (!was && cb->failed) {
            cb->failed(cb->user_data, s->client, s->server_uri, status,
                       uarc_client_error(s->client));
            return true;
        }
    }
    if (!s->became_inactive && idle(s) && s->spare.fd >= 0) {
        start(s, &s->spare);
        return true;
    }
    return false;
}

/* A callback may release servers (its own or others), which shifts the table: after each one
 * the scan starts over. Every flag and spare is consumed before its callback, so this ends. */
static void settle(uarc_reverse_hub *hub)
{
    /* Dropped sockets first: the one a newer socket superseded is told before that one connects.
     * The list is taken before the calls, which may run the hub again (blocking client calls do
     * not, but uarc_reverse_hub_wait from a callback would). */
    drop_report *drops = hub->drops;
    size_t drop_count = hub->drop_count;
    hub->drops = NULL;
    hub->drop_count = hub->drop_capacity = 0;
    for (size_t i = 0; i < drop_count; i++) {
        hub->opt.callbacks.dropped(hub->opt.callbacks.user_data, drops[i].server_uri, drops[i].peer,
                                   drops[i].status, drops[i].reason);
        uarc__free(drops[i].server_uri);
    }
    uarc__free(drops);
    for (size_t i = 0; i < hub->count;)
        i = settle_one(hub, hub->servers[i]) ? 0 : i + 1;
}

UARC_API uarc_status uarc_reverse_hub_process(uarc_reverse_hub *hub, int timeout_ms)
{
    struct pollfd local[64];
    size_t need = uarc_reverse_hub_poll_fds(hub, local, 64);
    struct pollfd *fds = need <= 64 ? local : uarc__malloc(need * sizeof *fds);
    if (!fds)
        return UARC_BadOutOfMemory;
    if (need > 64)
        uarc_reverse_hub_poll_fds(hub, fds, need);
    int wait = uarc_reverse_hub_timeout_ms(hub);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    int n = poll(fds, need, wait);
    if (fds != local)
        uarc__free(fds);
    if (n < 0 && errno == EINTR)
        return UARC_GoodCallAgain;

    uarc_status status = uarc_listener_process(hub->opt.listener, 0);
    if (uarc_status_is_bad(status))
        return status;
    uarc_reverse_connection c;
    while (uarc_listener_next(hub->opt.listener, &c))
        route(hub, &c);
    for (size_t i = 0; i < hub->count; i++) {
        hub_server *s = hub->servers[i];
        if (uarc_client_state_get(s->client) != UARC_CLIENT_DISCONNECTED)
            uarc_client_process(s->client, 0);
        if (s->probe && uarc_client_state_get(s->probe) != UARC_CLIENT_DISCONNECTED)
            uarc_client_process(s->probe, 0);
    }
    drop_stale_spares(hub);
    settle(hub);
    return UARC_Good;
}

UARC_API uarc_status uarc_reverse_hub_wait(uarc_reverse_hub *hub, const char *server_uri,
                                           int timeout_ms, uarc_client **client)
{
    int64_t deadline = timeout_ms < 0 ? -1 : uarc__now_ms() + timeout_ms;
    for (;;) {
        hub_server *s = find(hub, server_uri, NULL);
        if (s && s->active && !s->became_active) {
            *client = s->client;
            return UARC_Good;
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - uarc__now_ms();
            if (left <= 0)
                return UARC_BadTimeout;
            wait = (int)left;
        }
        uarc_status status = uarc_reverse_hub_process(hub, wait);
        if (status != UARC_Good)
            return status;
    }
}

UARC_API bool uarc_reverse_hub_release(uarc_reverse_hub *hub, const char *server_uri)
{
    size_t index;
    hub_server *s = find(hub, server_uri, &index);
    if (!s)
        return false;
    memmove(hub->servers + index, hub->servers + index + 1,
            (hub->count - index - 1) * sizeof *hub->servers);
    hub->count--;
    free_server(s);
    return true;
}
