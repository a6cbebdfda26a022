/*
 * The hub's epoll set and timer heap. Each server's descriptors (its client's socket, its probe's,
 * its held spare) and its next deadline are re-read only when the server was touched: it had an
 * event, a deadline fell due, it was routed a socket, or one of its clients called the wake
 * callback. So a round costs what happened in it, not the size of the fleet.
 *
 * A client closes its own socket, which drops the registration from epoll; the number may then
 * come back at once for another socket (a server re-dialing gets the lowest free descriptor). So
 * every registration is an ADD (a MOD when it exists), and by_fd remembers who registered each
 * number: a newer owner of a number makes the older registration void without touching it.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "reverse/hub_internal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

bool uarc__hub_events_init(uarc_reverse_hub *hub)
{
    hub->epfd = epoll_create1(EPOLL_CLOEXEC);
    hub->listener_watch = (hub_watch){.kind = HUB_WATCH_LISTENER, .fd = -1};
    return hub->epfd >= 0;
}

void uarc__hub_events_clear(uarc_reverse_hub *hub)
{
    if (hub->epfd >= 0)
        close(hub->epfd);
    hub->epfd = -1;
    uarc__free(hub->by_fd);
    hub->by_fd = NULL;
    hub->by_fd_capacity = 0;
    uarc__heap_clear(&hub->timers);
    uarc__free(hub->touched);
    hub->touched = NULL;
    hub->touched_count = hub->touched_capacity = 0;
}

static hub_watch *owner(const uarc_reverse_hub *hub, int fd)
{
    return fd >= 0 && (size_t)fd < hub->by_fd_capacity ? hub->by_fd[fd] : NULL;
}

static void unwatch(uarc_reverse_hub *hub, hub_watch *w)
{
    if (w->fd >= 0 && owner(hub, w->fd) == w) {
        epoll_ctl(hub->epfd, EPOLL_CTL_DEL, w->fd, NULL); /* ENOENT once the fd was closed */
        hub->by_fd[w->fd] = NULL;
    }
    w->fd = -1;
    w->events = 0;
}

static bool grow_by_fd(uarc_reverse_hub *hub, int fd)
{
    if ((size_t)fd < hub->by_fd_capacity)
        return true;
    size_t cap = hub->by_fd_capacity ? hub->by_fd_capacity : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    hub_watch **grown = uarc__realloc(hub->by_fd, cap * sizeof *grown);
    if (!grown)
        return false;
    memset(grown + hub->by_fd_capacity, 0, (cap - hub->by_fd_capacity) * sizeof *grown);
    hub->by_fd = grown;
    hub->by_fd_capacity = cap;
    return true;
}

/* Registers `fd` for `events` under `w`; `force`: even when nothing seems to have changed (the
 * number may name a new socket). */
static void watch(uarc_reverse_hub *hub, hub_watch *w, int fd, uint32_t events, bool force)
{
    if (!force && w->fd == fd && w->events == events)
        return;
    if (w->fd != fd || fd < 0 || !events)
        unwatch(hub, w);
    if (fd < 0 || !events)
        return;
    hub_watch *previous = owner(hub, fd);
    if (previous && previous != w)
        previous->fd = -1; /* its socket was closed; this number is a new one's */
    if (!grow_by_fd(hub, fd)) {
        uarc__log(&hub->opt.client.logger, UARC_LOG_ERROR, "hub", "out of memory");
        return;
    }
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 &&
        (errno != EEXIST || epoll_ctl(hub->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)) {
        uarc__log(&hub->opt.client.logger, UARC_LOG_ERROR, "hub", "cannot watch a socket: %s",
                  strerror(errno));
        return;
    }
    hub->by_fd[fd] = w;
    w->fd = fd;
    w->events = events;
}

static uint32_t epoll_events(short poll_events)
{
    return ((poll_events & POLLIN) ? EPOLLIN : 0u) | ((poll_events & POLLOUT) ? EPOLLOUT : 0u);
}

void uarc__hub_touch(uarc_reverse_hub *hub, hub_server *s)
{
    if (s->touched_at != UARC__HEAP_ABSENT)
        return;
    if (hub->touched_count == hub->touched_capacity) {
        size_t cap = hub->touched_capacity ? hub->touched_capacity * 2 : 64;
        hub_server **grown = uarc__realloc(hub->touched, cap * sizeof *grown);
        if (!grown) {
            uarc__log(&hub->opt.client.logger, UARC_LOG_ERROR, "hub", "out of memory");
            return;
        }
        hub->touched = grown;
        hub->touched_capacity = cap;
    }
    s->touched_at = hub->touched_count;
    hub->touched[hub->touched_count++] = s;
}

void uarc__hub_on_wake(void *user_data, uarc_client *client)
{
    hub_server *s = user_data;
    (void)client;
    uarc__hub_touch(s->hub, s);
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < 0 || (b >= 0 && b < a) ? b : a;
}

static int64_t client_due(const uarc_client *c, int64_t now)
{
    int t = c ? uarc_client_timeout_ms(c) : -1;
    return t < 0 ? -1 : now + t;
}

/* The server's client or probe is connecting over a socket that has not reached a session (or,
 * for the probe, its answer) yet. */
static bool connecting(const hub_server *s)
{
    if (s->probe && !s->found && uarc_client_state_get(s->probe) != UARC_CLIENT_DISCONNECTED)
        return true;
    return !s->active && uarc_client_state_get(s->client) != UARC_CLIENT_DISCONNECTED;
}

void uarc__hub_sync(uarc_reverse_hub *hub, hub_server *s, int64_t now)
{
    bool force = s->reopened;
    s->reopened = false;
    uarc_client *clients[2] = {s->client, s->probe};
    for (int k = 0; k < 2; k++) {
        int fd = clients[k] ? uarc_client_fd(clients[k]) : -1;
        uint32_t events = fd >= 0 ? epoll_events(uarc_client_poll_events(clients[k])) : 0;
        watch(hub, &s->watches[k], fd, events, force);
    }
    /* A waiting server sends nothing: readable means it closed. */
    watch(hub, &s->watches[2], s->spare.fd, EPOLLIN | EPOLLRDHUP, force);
    int64_t due = earlier(client_due(s->client, now), client_due(s->probe, now));
    if (s->spare.fd >= 0)
        due = earlier(due, s->spare_deadline);
    if (!uarc__heap_set(&hub->timers, &s->timer, due))
        uarc__log(&hub->opt.client.logger, UARC_LOG_ERROR, "hub", "out of memory");
    bool handshaking = connecting(s);
    if (handshaking != s->handshaking) {
        s->handshaking = handshaking;
        if (handshaking)
            hub->handshakes++;
        else
            hub->handshakes--;
    }
    uarc__hub_gather_note(hub, s);
}

void uarc__hub_forget(uarc_reverse_hub *hub, hub_server *s)
{
    for (int k = 0; k < 3; k++)
        unwatch(hub, &s->watches[k]);
    uarc__heap_remove(&hub->timers, &s->timer);
    if (s->touched_at != UARC__HEAP_ABSENT) {
        hub->touched[s->touched_at] = NULL;
        s->touched_at = UARC__HEAP_ABSENT;
    }
    if (s->handshaking)
        hub->handshakes--;
    s->handshaking = false;
    uarc__hub_gather_forget(hub, s);
}

void uarc__hub_sync_listener(uarc_reverse_hub *hub)
{
    watch(hub, &hub->listener_watch, uarc_listener_fd(hub->opt.listener), EPOLLIN, false);
}

size_t uarc__reverse_hub_clients_run(const uarc_reverse_hub *hub)
{
    return hub->clients_run;
}
