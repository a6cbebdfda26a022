/*
 * The reverse-connect hub: one client per ServerUri, fed with the sockets the listener accepts.
 * It sees the listener and the clients only through their public APIs.
 *
 * A client's state changes are only noted while the client runs; the hub acts on them (starts a
 * re-dialed socket, runs the application's callbacks) once the clients of the round have run, so
 * callbacks can make blocking calls and no client is touched from inside its own processing.
 *
 * A round touches only the servers that had something happen (hub_events.c): an event on one of
 * their sockets, a deadline due in the heap, a socket routed to them, or a wake call of one of
 * their clients. Servers are found by ServerUri through a hash table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reverse/hub_internal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "transport/socket.h"

#define SECURITY_POLICY_NONE "http://opcfoundation.org/UA/SecurityPolicy#None"

#define DEFAULT_SPARE_TIMEOUT_MS   30000u
#define DEFAULT_HELLO_TIMEOUT_MS   5000u
#define DEFAULT_MAX_HANDSHAKES     64u
#define DEFAULT_BACKOFF_INITIAL_MS 2000u
#define DEFAULT_BACKOFF_MAX_MS     300000u
#define EVENTS_PER_WAIT            256
/* Deadlines are served up to this late, so that those close together (thousands of spread
 * keep-alives) share a wake-up instead of each costing one. */
#define TIMER_SLACK_MS 20

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
    if (!hub->opt.max_handshakes)
        hub->opt.max_handshakes = DEFAULT_MAX_HANDSHAKES;
    if (!hub->opt.backoff_initial_ms)
        hub->opt.backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
    if (!hub->opt.backoff_max_ms)
        hub->opt.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (hub->opt.backoff_max_ms < hub->opt.backoff_initial_ms)
        hub->opt.backoff_max_ms = hub->opt.backoff_initial_ms;
    uarc__hub_gather_init(hub);
    bool events = uarc__hub_events_init(hub);
    if (!hub->opt.client.memory_budget) {
        hub->own_budget = uarc_memory_budget_new(0);
        hub->opt.client.memory_budget = hub->own_budget;
    }
    if (!events || (!hub->own_budget && !options->client.memory_budget)) {
        uarc__hub_events_clear(hub);
        uarc_memory_budget_delete(hub->own_budget);
        uarc__free(hub);
        return NULL;
    }
    /* The base configuration's certificate is made now rather than for the first server: an
     * RSA key takes a good part of a second, in which no other server would be served. Failing
     * here, it is tried again for the first server that needs it. */
    uarc_client_config base = hub->opt.client;
    (void)uarc__hub_share_certificate(hub, &base);
    uarc__hub_sync_listener(hub);
    return hub;
}

/* Ends the server's connections at once; its memory stays until free_server(). */
static void disconnect_server(hub_server *s)
{
    uarc_client_set_wake_callback(s->client, NULL, NULL);
    uarc_client_disconnect_now(s->client);
    if (s->probe) {
        uarc_client_set_wake_callback(s->probe, NULL, NULL);
        uarc_client_disconnect_now(s->probe);
    }
    uarc_reverse_connection_clear(&s->spare);
}

static void free_server(hub_server *s)
{
    if (s->client) {
        uarc_client_set_wake_callback(s->client, NULL, NULL);
        uarc_client_disconnect_now(s->client);
    }
    uarc_client_delete(s->client);
    uarc__hub_free_discovery(s);
    uarc_reverse_connection_clear(&s->spare);
    uarc__free(s->server_uri);
    uarc__free(s);
}

static void free_graveyard(uarc_reverse_hub *hub)
{
    while (hub->graveyard) {
        hub_server *s = hub->graveyard;
        hub->graveyard = s->hash_next;
        free_server(s);
    }
}

UARC_API void uarc_reverse_hub_delete(uarc_reverse_hub *hub)
{
    if (!hub)
        return;
    uarc__hub_events_clear(hub); /* first: the heap names the servers */
    for (size_t i = 0; i < hub->count; i++)
        free_server(hub->servers[i]);
    free_graveyard(hub);
    uarc__free(hub->servers);
    uarc__free(hub->buckets);
    for (size_t i = 0; i < hub->drop_count; i++)
        uarc__free(hub->drops[i].server_uri);
    uarc__free(hub->drops);
    uarc_memory_budget_delete(hub->own_budget); /* after the clients that used it */
    uarc__hub_certificates_clear(hub);
    uarc__free(hub);
}

static bool is_none(const char *policy_uri)
{
    return !policy_uri || strcmp(policy_uri, SECURITY_POLICY_NONE) == 0;
}

/* ---- the table of servers ---- */

static uint32_t hash_uri(const char *uri)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static hub_server *find(const uarc_reverse_hub *hub, const char *server_uri)
{
    if (!hub->bucket_count)
        return NULL;
    hub_server *s = hub->buckets[hash_uri(server_uri) % hub->bucket_count];
    while (s && strcmp(s->server_uri, server_uri) != 0)
        s = s->hash_next;
    return s;
}

/* Keeps the table at most one server per bucket on average; false when out of memory. */
static bool grow_buckets(uarc_reverse_hub *hub)
{
    if (hub->count < hub->bucket_count)
        return true;
    size_t n = hub->bucket_count ? hub->bucket_count * 2 : 64;
    hub_server **buckets = uarc__calloc(n, sizeof *buckets);
    if (!buckets)
        return false;
    for (size_t i = 0; i < hub->count; i++) {
        hub_server *s = hub->servers[i];
        size_t b = hash_uri(s->server_uri) % n;
        s->hash_next = buckets[b];
        buckets[b] = s;
    }
    uarc__free(hub->buckets);
    hub->buckets = buckets;
    hub->bucket_count = n;
    return true;
}

static void unlink_server(uarc_reverse_hub *hub, hub_server *s)
{
    hub_server **p = &hub->buckets[hash_uri(s->server_uri) % hub->bucket_count];
    while (*p != s)
        p = &(*p)->hash_next;
    *p = s->hash_next;
    hub->servers[s->index] = hub->servers[--hub->count];
    hub->servers[s->index]->index = s->index;
}

UARC_API uarc_client *uarc_reverse_hub_client(const uarc_reverse_hub *hub, const char *server_uri)
{
    hub_server *s = find(hub, server_uri);
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
        s->reopened = true;
    }
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
    uarc__hub_touch(s->hub, s);
    if (s->probe) {
        uarc__hub_start_discovery(s, c);
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
    if (uarc__hub_share_certificate(hub, &cfg) != UARC_Good)
        return NULL;
    hub_server *s = uarc__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uarc_reverse_connection_init(&s->spare);
    uarc__heap_node_init(&s->timer);
    s->touched_at = UARC__HEAP_ABSENT;
    s->gather = -1;
    for (int k = 0; k < 3; k++)
        s->watches[k] = (hub_watch){.kind = (uint8_t)(HUB_WATCH_CLIENT + k), .fd = -1, .server = s};
    s->hub = hub;
    s->server_uri = uarc__strndup(c->server_uri, c->server_uri_length);
    cfg.callbacks = (uarc_client_callbacks){on_state, s};
    cfg.expected_server_uri = s->server_uri; /* the certificate must carry the RHE's ServerUri */
    /* Deterministic per server: a fleet that connected together keeps its keep-alives apart. */
    if (!cfg.keepalive_jitter_seed && s->server_uri)
        cfg.keepalive_jitter_seed = hash_uri(s->server_uri) | 1u;
    s->client = uarc_client_new(&cfg);
    if (s->client)
        uarc_client_set_wake_callback(s->client, uarc__hub_on_wake, s);
    s->mode = cfg.security_mode ? cfg.security_mode : UARC_MessageSecurityMode_SignAndEncrypt;
    bool secured = s->client && !is_none(uarc_client_security_policy_uri(s->client));
    bool certificate_known = cfg.server_certificate_length || cfg.server_certificate_file;
    if (secured && !certificate_known && !(s->probe = uarc__hub_new_probe(s, &cfg))) {
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
    if (!s->server_uri || !s->client || hub->count == hub->capacity || !grow_buckets(hub)) {
        free_server(s);
        return NULL;
    }
    s->index = hub->count;
    hub->servers[hub->count++] = s;
    size_t b = hash_uri(s->server_uri) % hub->bucket_count;
    s->hash_next = hub->buckets[b];
    hub->buckets[b] = s;
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
    s->reopened = true;
    uarc__hub_touch(hub, s);
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

/* A server in backoff (it failed the same way on its last dials): its socket is answered ERR
 * BadTcpMessageTypeInvalid, which servers read as "pause re-dialing", and closed unreported. */
static bool refuse_in_backoff(uarc_reverse_hub *hub, hub_server *s, uarc_reverse_connection *c,
                              int64_t now)
{
    if (hub->opt.backoff_disable || !uarc__backoff_refuses(&s->backoff, now))
        return false;
    char reason[160];
    snprintf(reason, sizeof reason, "the last dials failed with %s; try again in %lld ms",
             uarc_status_name(s->backoff.last), (long long)(s->backoff.until - now));
    int fd = uarc_reverse_connection_take_fd(c);
    uarc__send_err(fd, UARC_BadTcpMessageTypeInvalid, reason);
    uarc__drain_and_close(fd);
    uarc__log(&hub->opt.client.logger, UARC_LOG_DEBUG, "hub", "%s from %s refused: %s",
              s->server_uri, c->peer, reason);
    uarc_reverse_connection_clear(c);
    return true;
}

/* Routes one accepted connection to its server's client. */
static void route(uarc_reverse_hub *hub, uarc_reverse_connection *c, int64_t now)
{
    hub_server *s = find(hub, c->server_uri);
    if (!s) {
        s = add_server(hub, c);
        if (!s) {
            uarc_reverse_connection_clear(c);
            return;
        }
    }
    if (refuse_in_backoff(hub, s, c, now))
        return;
    uarc__hub_touch(hub, s);
    uarc_client *attempt = attempt_in_progress(s);
    if (attempt)
        supersede(hub, s, attempt, c->peer);
    if (idle(s)) {
        start(s, c);
    } else {
        /* In session: keep the newest socket for when the session's connection ends, for a
         * bounded time (a server that waits longer has likely given up on it, or was never the
         * server). */
        if (s->spare.fd >= 0) {
            char reason[160];
            snprintf(reason, sizeof reason, "superseded as the spare by a newer connection from %s",
                     c->peer);
            drop_spare(hub, s, UARC_BadConnectionClosed, reason);
        }
        s->spare = *c;
        s->spare_deadline = now + hub->opt.spare_timeout_ms;
        uarc_reverse_connection_init(c);
    }
    uarc__hub_sync(hub, s, now); /* counts the handshake before the next socket is routed */
}

/* Takes accepted connections in their order while fewer than max_handshakes are in progress;
 * the others wait in the listener. Returns true when it routed one. */
static bool route_waiting(uarc_reverse_hub *hub, int64_t now)
{
    bool routed = false;
    uarc_reverse_connection c;
    while (hub->handshakes < hub->opt.max_handshakes && uarc_listener_next(hub->opt.listener, &c)) {
        route(hub, &c, now);
        routed = true;
    }
    return routed;
}

/* ---- the event-loop edge ---- */

UARC_API int uarc_reverse_hub_fd(const uarc_reverse_hub *hub)
{
    return hub->epfd;
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

static int until(int64_t due, int64_t now)
{
    if (due < 0)
        return -1;
    int64_t left = due - now;
    return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

UARC_API int uarc_reverse_hub_timeout_ms(const uarc_reverse_hub *hub)
{
    if (hub->touched_count)
        return 0; /* a client was called from outside: re-read it before waiting */
    int wait = uarc_listener_timeout_ms(hub->opt.listener);
    const uarc__heap_node *top = uarc__heap_top(&hub->timers);
    int t = top ? until(top->due + TIMER_SLACK_MS, uarc__now_ms()) : -1;
    return t >= 0 && (wait < 0 || t < wait) ? t : wait;
}

/* Drops a spare whose peer closed it (or sent bytes before our HEL). */
static void check_spare(uarc_reverse_hub *hub, hub_server *s)
{
    if (s->spare.fd < 0)
        return;
    uint8_t byte;
    ssize_t n = recv(s->spare.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    drop_spare(hub, s, UARC_BadConnectionClosed,
               n == 0                         ? "spare closed by peer"
               : n < 0 && errno == ECONNRESET ? "spare reset by peer"
               : n > 0                        ? "spare sent bytes before HEL"
                                              : "spare failed");
}

/* Runs a client with the events epoll reported for its socket (0: its deadline is due). */
static void run_client(uarc_reverse_hub *hub, uarc_client *c, uint32_t events)
{
    if (!c || uarc_client_state_get(c) == UARC_CLIENT_DISCONNECTED)
        return;
    short revents = (short)((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0) |
                            (events & EPOLLHUP ? POLLHUP : 0) | (events & EPOLLERR ? POLLERR : 0));
    uarc_client_process_events(c, revents);
    hub->clients_run++;
}

/* The servers whose deadline is due: their clients run (which ticks them), spares expire. */
static void run_due(uarc_reverse_hub *hub, int64_t now)
{
    uarc__heap_node *top;
    while ((top = uarc__heap_top(&hub->timers)) && top->due <= now) {
        hub_server *s = (hub_server *)((char *)top - offsetof(hub_server, timer));
        uarc__heap_remove(&hub->timers, top); /* uarc__hub_sync() puts it back */
        uarc__hub_touch(hub, s);
        run_client(hub, s->client, 0);
        run_client(hub, s->probe, 0);
        if (s->spare.fd >= 0 && now >= s->spare_deadline) {
            char reason[128];
            snprintf(reason, sizeof reason, "held as a spare for %u ms without being needed",
                     hub->opt.spare_timeout_ms);
            drop_spare(hub, s, UARC_BadTimeout, reason);
        }
    }
}

/* ---- acting on what the round noted ---- */

bool uarc__hub_report_failed(uarc_reverse_hub *hub, hub_server *s, uarc_status status,
                             const char *detail)
{
    const uarc_reverse_hub_callbacks *cb = &hub->opt.callbacks;
    uint32_t refused = s->backoff.refused;
    uint32_t delay =
        hub->opt.backoff_disable
            ? 0
            : uarc__backoff_failed(&s->backoff, status, uarc__now_ms(), hub->opt.backoff_initial_ms,
                                   hub->opt.backoff_max_ms);
    if (delay) {
        uarc__log(&hub->opt.client.logger, UARC_LOG_WARNING, "hub",
                  "%s failed again with %s; its dials are refused for %u ms", s->server_uri,
                  uarc_status_name(status), delay);
        if (cb->backoff)
            cb->backoff(cb->user_data, s->server_uri, status, delay, refused);
    }
    if (!cb->failed)
        return delay && cb->backoff;
    cb->failed(cb->user_data, s->client, s->server_uri, status, detail);
    return true;
}

/* Acts on what one server's client or probe noted: a callback, or its spare socket once it
 * ended. Returns true when it ran a callback or started a spare (the server may be gone). */
static bool settle_one(uarc_reverse_hub *hub, hub_server *s)
{
    const uarc_reverse_hub_callbacks *cb = &hub->opt.callbacks;
    if (s->probe && s->probe_ended && uarc_client_state_get(s->probe) == UARC_CLIENT_DISCONNECTED &&
        uarc__hub_finish_discovery(hub, s))
        return true;
    if (s->became_active) {
        s->became_active = false;
        bool restored = s->was_active;
        s->was_active = true;
        uarc__backoff_reset(&s->backoff);
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
        if (!was && uarc__hub_report_failed(hub, s, status, uarc_client_error(s->client)))
            return true;
    }
    if (!s->became_inactive && idle(s) && s->spare.fd >= 0) {
        start(s, &s->spare);
        return true;
    }
    return false;
}

/* Dropped sockets first: the one a newer socket superseded is told before that one connects.
 * The list is taken before the calls, which may run the hub again (blocking client calls do
 * not, but uarc_reverse_hub_wait from a callback would). */
static void report_drops(uarc_reverse_hub *hub)
{
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
}

/*
 * Settles every touched server (callbacks may touch more, or release some: a released one's
 * slot is NULL), takes waiting connections as handshake slots free up, then re-reads each
 * touched server's descriptors and deadline.
 */
static void finish_round(uarc_reverse_hub *hub, int64_t now)
{
    size_t i = 0;
    do {
        report_drops(hub);
        for (; i < hub->touched_count; i++) {
            hub_server *s = hub->touched[i];
            /* NULL once a callback released it; a callback that ran the hub (hub_wait) may
             * have settled and emptied the list */
            while (s && settle_one(hub, s))
                s = i < hub->touched_count ? hub->touched[i] : NULL;
            if (s)
                uarc__hub_sync(hub, s, now);
        }
    } while (route_waiting(hub, now) || hub->drop_count);
    for (i = 0; i < hub->touched_count; i++) {
        hub_server *s = hub->touched[i];
        if (!s)
            continue;
        s->touched_at = UARC__HEAP_ABSENT;
        uarc__hub_sync(hub, s, now);
        if (s->handshaking)
            hub->handshake_moved_at = now;
    }
    hub->touched_count = 0;
}

UARC_API uarc_status uarc_reverse_hub_process(uarc_reverse_hub *hub, int timeout_ms)
{
    hub->processing++;
    uarc__hub_sync_listener(hub);
    if (hub->touched_count) /* clients called from outside since the last round */
        finish_round(hub, uarc__now_ms());
    int wait = uarc_reverse_hub_timeout_ms(hub);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    bool interrupted = !uarc__hub_gather(hub, &wait);
    struct epoll_event events[EVENTS_PER_WAIT];
    int n = epoll_wait(hub->epfd, events, EVENTS_PER_WAIT, wait);
    uarc_status status = interrupted || (n < 0 && errno == EINTR) ? UARC_GoodCallAgain : UARC_Good;
    int64_t now = uarc__now_ms();
    /* A wait with nothing leaves the gathering window as it is; a full batch may have left
     * more ready, which the next call takes without a pause. */
    if (n > 0)
        hub->woke_at = n < EVENTS_PER_WAIT ? now : -1;
    hub->last_wait = wait;
    hub->clients_run = 0;
    bool listener_due = uarc_listener_timeout_ms(hub->opt.listener) == 0;
    for (int i = 0; i < n; i++) {
        hub_watch *w = events[i].data.ptr;
        if (w->kind == HUB_WATCH_LISTENER) {
            listener_due = true;
            continue;
        }
        if (w->fd < 0) /* released in this round, or its number taken by a newer socket */
            continue;
        hub_server *s = w->server;
        uarc__hub_touch(hub, s);
        if (w->kind == HUB_WATCH_CLIENT)
            run_client(hub, s->client, events[i].events);
        else if (w->kind == HUB_WATCH_PROBE)
            run_client(hub, s->probe, events[i].events);
        else
            check_spare(hub, s);
    }
    run_due(hub, now);
    if (listener_due && status == UARC_Good) {
        status = uarc_listener_process(hub->opt.listener, 0);
        if (status == UARC_GoodCallAgain)
            status = UARC_Good;
    }
    if (!uarc_status_is_bad(status)) {
        route_waiting(hub, now);
        finish_round(hub, now);
    }
    if (--hub->processing == 0)
        free_graveyard(hub);
    return status;
}

UARC_API uarc_status uarc_reverse_hub_wait(uarc_reverse_hub *hub, const char *server_uri,
                                           int timeout_ms, uarc_client **client)
{
    int64_t deadline = timeout_ms < 0 ? -1 : uarc__now_ms() + timeout_ms;
    for (;;) {
        hub_server *s = find(hub, server_uri);
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
    hub_server *s = find(hub, server_uri);
    if (!s)
        return false;
    unlink_server(hub, s);
    disconnect_server(s);
    uarc__hub_forget(hub, s);
    if (hub->processing) { /* an event of this round may still name it */
        s->hash_next = hub->graveyard;
        hub->graveyard = s;
    } else {
        free_server(s);
    }
    return true;
}
