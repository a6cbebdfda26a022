/*
 * The reverse-connect hub: one client per ServerUri, fed with the sockets the listener accepts.
 * It sees the listener and the clients only through their public APIs.
 *
 * A client's state changes are only noted while the client runs; the hub acts on them (starts a
 * re-dialed socket, runs the application's callbacks) once every client has run, so callbacks
 * can make blocking calls and no client is touched from inside its own processing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uarc/reverse.h"
#include "encoding/alloc.h"

typedef struct hub_server {
    char *server_uri;
    uarc_client *client;
    uarc_reverse_hub *hub;
    bool was_active;      /* a session was active at least once */
    bool active;          /* the session is active now */
    bool became_active;   /* noted during processing, reported afterwards */
    bool became_inactive; /* likewise */
    uarc_status end_status;
    uarc_reverse_connection spare; /* a newer socket from this server, kept while busy */
} hub_server;

struct uarc_reverse_hub {
    uarc_reverse_hub_options opt;
    hub_server **servers;
    size_t count, capacity;
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

UARC_API uarc_reverse_hub *uarc_reverse_hub_new(const uarc_reverse_hub_options *options)
{
    if (!options || !options->listener)
        return NULL;
    uarc_reverse_hub *hub = uarc__calloc(1, sizeof *hub);
    if (hub)
        hub->opt = *options;
    return hub;
}

static void free_server(hub_server *s)
{
    if (s->client)
        uarc_client_disconnect(s->client);
    uarc_client_delete(s->client);
    uarc_reverse_connection_clear(&s->spare);
    uarc__free(s->server_uri);
    uarc__free(s);
}

UARC_API void uarc_reverse_hub_delete(uarc_reverse_hub *hub)
{
    if (!hub)
        return;
    for (size_t i = 0; i < hub->count; i++)
        free_server(hub->servers[i]);
    uarc__free(hub->servers);
    uarc__free(hub);
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

/* Hands a socket to the server's idle client. */
static void start(hub_server *s, uarc_reverse_connection *c)
{
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
    hub_server *s = uarc__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    uarc_reverse_connection_init(&s->spare);
    s->hub = hub;
    s->server_uri = uarc__strndup(c->server_uri, c->server_uri_length);
    cfg.callbacks = (uarc_client_callbacks){on_state, s};
    cfg.expected_server_uri = s->server_uri; /* the certificate must carry the RHE's ServerUri */
    s->client = uarc_client_new(&cfg);
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
    if (uarc_client_state_get(s->client) == UARC_CLIENT_DISCONNECTED) {
        start(s, c);
        return;
    }
    /* Busy: keep the newest socket for when the current one ends. */
    uarc_reverse_connection_clear(&s->spare);
    s->spare = *c;
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
        int fd = uarc_client_fd(s->client);
        if (fd >= 0) {
            if (n < capacity)
                fds[n] = (struct pollfd){fd, uarc_client_poll_events(s->client), 0};
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
        int t = uarc_client_timeout_ms(hub->servers[i]->client);
        if (t >= 0 && (wait < 0 || t < wait))
            wait = t;
    }
    return wait;
}

static void drop_closed_spares(uarc_reverse_hub *hub)
{
    for (size_t i = 0; i < hub->count; i++) {
        hub_server *s = hub->servers[i];
        if (s->spare.fd < 0)
            continue;
        struct pollfd p = {s->spare.fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            uarc_reverse_connection_clear(&s->spare);
    }
}

/* Acts on what one client noted: a callback, or its spare socket once it ended. Returns true
 * when it ran a callback or started a spare (the table may have changed). */
static bool settle_one(uarc_reverse_hub *hub, hub_server *s)
{
    const uarc_reverse_hub_callbacks *cb = &hub->opt.callbacks;
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
        if (was && cb->lost) {
            cb->lost(cb->user_data, s->client, s->server_uri, s->end_status);
            return true;
        }
        if (!was && cb->failed) {
            cb->failed(cb->user_data, s->client, s->server_uri, s->end_status,
                       uarc_client_error(s->client));
            return true;
        }
    }
    if (!s->became_inactive && disconnected && s->spare.fd >= 0) {
        start(s, &s->spare);
        return true;
    }
    return false;
}

/* A callback may release servers (its own or others), which shifts the table: after each one
 * the scan starts over. Every flag and spare is consumed before its callback, so this ends. */
static void settle(uarc_reverse_hub *hub)
{
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
    for (size_t i = 0; i < hub->count; i++)
        if (uarc_client_state_get(hub->servers[i]->client) != UARC_CLIENT_DISCONNECTED)
            uarc_client_process(hub->servers[i]->client, 0);
    drop_closed_spares(hub);
    settle(hub);
    return UARC_Good;
}

UARC_API uarc_status uarc_reverse_hub_wait(uarc_reverse_hub *hub, const char *server_uri,
                                           int timeout_ms, uarc_client **client)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        hub_server *s = find(hub, server_uri, NULL);
        if (s && s->active && !s->became_active) {
            *client = s->client;
            return UARC_Good;
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
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
