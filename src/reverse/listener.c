/*
 * The listener's socket edge. One epoll set holds the listening sockets (level-triggered, a bounded
 * number of accepts per wake-up), every pending connection (edge-triggered) and every accepted
 * connection not yet claimed (hang-up only). A pending connection keeps no buffer: its bytes wait
 * in the kernel, peeked at until the whole RHE is there, then read in one go into the listener's
 * single scratch buffer. Pending connections form a list in accept order, which is also deadline
 * order, since all share one hello timeout; accepted ones form a second list in accept order.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uarc/listener.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "transport/socket.h"

#define DEFAULT_HELLO_TIMEOUT_MS 5000u
#define MAX_HELLO_TIMEOUT_MS     120000u
#define DEFAULT_MAX_PENDING      1024u
#define DEFAULT_BACKLOG          511
#define ACCEPTS_PER_WAKEUP       64
#define EVENTS_PER_WAIT          128
#define REASON_SIZE              512
/* Out of descriptors with no spare to drop connections with: the listening sockets are not
 * watched for this long, then tried again, so a level-triggered socket cannot spin the loop. */
#define ACCEPT_BACKOFF_MS 250
/* Port 0 with several addresses: how often to start over when the port the kernel gave the first
 * socket is taken on another address. */
#define SHARED_PORT_ATTEMPTS 8

enum watch_kind { WATCH_LISTEN, WATCH_PENDING, WATCH_READY };

typedef struct listen_socket {
    uint8_t kind; /* WATCH_LISTEN; first member, read through the epoll pointer */
    int fd;
    char address[UARC_PEER_SIZE];
} listen_socket;

typedef struct pending {
    uint8_t kind; /* WATCH_PENDING */
    int fd;
    uint32_t expected; /* MessageSize once the header is in, 0 before */
    int64_t deadline;  /* monotonic ms */
    struct pending *prev, *next;
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } peer;
} pending;

/*
 * An accepted connection waiting to be claimed. A server sends nothing after its RHE until it gets
 * HEL, so the socket is watched for hang-up only (EPOLLRDHUP, level-triggered): a peer that went
 * away is dropped at once instead of holding a max_pending slot and being handed out dead, while
 * bytes a server sends anyway wake nobody and stay unread for the client.
 */
typedef struct ready {
    uint8_t kind; /* WATCH_READY */
    bool gone;    /* taken or dropped while events were dispatched; freed once they are done */
    int64_t accepted_at; /* monotonic ms */
    struct ready *prev, *next;
    uarc_reverse_connection c;
} ready;

struct uarc_listener {
    uarc_listener_config opt;
    char **bind_addresses; /* copies */
    int epfd;
    int spare_fd;             /* given up to accept-and-close when out of descriptors */
    int64_t accept_resume_at; /* -1: accepting; else when the listening sockets are watched again */
    bool descriptors_reported; /* the back-off was reported; reset once an accept succeeds */
    listen_socket *sockets;
    size_t socket_count;
    uint16_t port;
    bool port_clash; /* a later address could not get the port the kernel chose for the first */
    pending *head, *tail; /* accept (= deadline) order */
    size_t pending_count;
    ready *ready_head, *ready_tail; /* accepted, not yet taken; accept order */
    size_t ready_count;
    /* While epoll events are dispatched a callback may take a connection whose event is still
     * queued: taken and dropped entries wait here (marked gone) until the batch is done. */
    bool dispatching;
    ready *graveyard;
    uint8_t *scratch; /* opt.max_message_size bytes */
    char error[256];
};

static void set_error(uarc_listener *l, const char *fmt, ...) UARC__PRINTF(2, 3);

static void set_error(uarc_listener *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error, sizeof l->error, fmt, ap);
    va_end(ap);
}

UARC_API void uarc_reverse_connection_init(uarc_reverse_connection *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

UARC_API void uarc_reverse_connection_clear(uarc_reverse_connection *c)
{
    if (c->fd >= 0)
        close(c->fd);
    uarc__free(c->server_uri);
    uarc__free(c->endpoint_url);
    uarc_reverse_connection_init(c);
}

UARC_API int uarc_reverse_connection_take_fd(uarc_reverse_connection *c)
{
    int fd = c->fd;
    c->fd = -1;
    return fd;
}

UARC_API uarc_listener *uarc_listener_new(const uarc_listener_config *options)
{
    uarc_listener *l = uarc__calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (options)
        l->opt = *options;
    l->epfd = -1;
    l->spare_fd = -1;
    l->accept_resume_at = -1;
    if (!l->opt.hello_timeout_ms)
        l->opt.hello_timeout_ms = DEFAULT_HELLO_TIMEOUT_MS;
    if (l->opt.hello_timeout_ms > MAX_HELLO_TIMEOUT_MS)
        l->opt.hello_timeout_ms = MAX_HELLO_TIMEOUT_MS;
    if (!l->opt.max_pending)
        l->opt.max_pending = DEFAULT_MAX_PENDING;
    if (!l->opt.max_message_size)
        l->opt.max_message_size = UARC_RHE_MAX_MESSAGE_SIZE;
    if (l->opt.max_message_size < UARC_RHE_MIN_MESSAGE_SIZE)
        l->opt.max_message_size = UARC_RHE_MIN_MESSAGE_SIZE;
    if (l->opt.backlog <= 0)
        l->opt.backlog = DEFAULT_BACKLOG;
    l->scratch = uarc__malloc(l->opt.max_message_size);
    size_t n = l->opt.bind_addresses ? l->opt.bind_address_count : 0;
    l->bind_addresses = uarc__calloc(n ? n : 1, sizeof(char *));
    if (!l->scratch || !l->bind_addresses)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *a = l->opt.bind_addresses[i];
        if (!(l->bind_addresses[i] = uarc__strndup(a, strlen(a))))
            goto oom;
    }
    l->opt.bind_address_count = n;
    l->opt.bind_addresses = (const char *const *)l->bind_addresses;
    return l;
oom:
    l->opt.bind_address_count = n;
    uarc_listener_delete(l);
    return NULL;
}

UARC_API const char *uarc_listener_error(const uarc_listener *l)
{
    return l->error;
}

UARC_API size_t uarc_listener_address_count(const uarc_listener *l)
{
    return l->socket_count;
}

UARC_API const char *uarc_listener_address(const uarc_listener *l, size_t index)
{
    return index < l->socket_count ? l->sockets[index].address : NULL;
}

UARC_API uint16_t uarc_listener_port(const uarc_listener *l)
{
    return l->socket_count ? l->port : 0;
}

UARC_API int uarc_listener_fd(const uarc_listener *l)
{
    return l->socket_count ? l->epfd : -1;
}

UARC_API size_t uarc_listener_pending_count(const uarc_listener *l)
{
    return l->pending_count;
}

/* ---- binding ---- */

static bool is_ipv4_wildcard(const char *a)
{
    return strcmp(a, "0.0.0.0") == 0;
}

static void set_port(struct sockaddr *address, uint16_t port)
{
    if (address->sa_family == AF_INET)
        ((struct sockaddr_in *)address)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)address)->sin6_port = htons(port);
}

static bool already_bound(const uarc_listener *l, const char *shown)
{
    for (size_t i = 0; i < l->socket_count; i++)
        if (strcmp(l->sockets[i].address, shown) == 0)
            return true;
    return false;
}

static uarc_status bind_one(uarc_listener *l, const struct addrinfo *ai, const char *shown,
                            bool dual_stack)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_error(l, "cannot create a socket for %s: %s", shown, strerror(errno));
        return UARC_BadTcpInternalError;
    }
    int one = 1, v6only = dual_stack ? 0 : 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l->opt.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        set_error(l, "cannot set SO_REUSEPORT on %s: %s", shown, strerror(errno));
        close(fd);
        return UARC_BadTcpInternalError;
    }
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, l->opt.backlog) != 0) {
        if (errno == EADDRINUSE && l->opt.port == 0 && l->socket_count > 0)
            l->port_clash = true;
        set_error(l, "cannot bind %s: %s", shown, strerror(errno));
        close(fd);
        return UARC_BadTcpInternalError;
    }
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    getsockname(fd, (struct sockaddr *)&bound, &len);
    listen_socket *ls = &l->sockets[l->socket_count];
    ls->kind = WATCH_LISTEN;
    ls->fd = fd;
    uarc__format_sockaddr((struct sockaddr *)&bound, ls->address, sizeof ls->address);
    l->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                               : ((struct sockaddr_in6 *)&bound)->sin6_port);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ls};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        set_error(l, "cannot watch %s: %s", ls->address, strerror(errno));
        close(fd);
        return UARC_BadTcpInternalError;
    }
    l->socket_count++;
    return UARC_Good;
}

static uarc_status bind_address(uarc_listener *l, const char *address, bool dual_stack)
{
    char host[256];
    size_t len = strlen(address);
    if (len >= sizeof host) {
        set_error(l, "bind address too long");
        return UARC_BadInvalidArgument;
    }
    memcpy(host, address, len + 1);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        memmove(host, host + 1, len - 2);
        host[len - 2] = '\0';
    }
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)l->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        set_error(l, "cannot resolve bind address %s: %s", address, gai_strerror(rc));
        return UARC_BadInvalidArgument;
    }
    uarc_status status = UARC_Good;
    for (struct addrinfo *ai = list; ai && status == UARC_Good; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        /* With port 0 the port the kernel chose for the first socket holds for every further
         * one: also for the further addresses of this name (localhost: 127.0.0.1 and ::1). */
        set_port(ai->ai_addr, l->port);
        char shown[UARC_PEER_SIZE];
        uarc__format_sockaddr(ai->ai_addr, shown, sizeof shown);
        if (l->port && already_bound(l, shown))
            continue; /* given twice, or reached through two names: one socket is enough */
        listen_socket *grown =
            uarc__realloc(l->sockets, (l->socket_count + 1) * sizeof(listen_socket));
        if (!grown) {
            set_error(l, "out of memory");
            status = UARC_BadOutOfMemory;
            break;
        }
        l->sockets = grown;
        /* epoll holds pointers into the array: re-register the ones already bound. */
        for (size_t i = 0; i < l->socket_count; i++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->sockets[i]};
            epoll_ctl(l->epfd, EPOLL_CTL_MOD, l->sockets[i].fd, &ev);
        }
        status = bind_one(l, ai, shown, dual_stack);
    }
    freeaddrinfo(list);
    return status;
}

/* One attempt at binding everything; on failure the caller closes what was bound. */
static uarc_status bind_all(uarc_listener *l)
{
    l->error[0] = '\0';
    l->port = l->opt.port;
    l->port_clash = false;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        set_error(l, "epoll_create1: %s", strerror(errno));
        return UARC_BadTcpInternalError;
    }
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uarc_status status = UARC_Good;
    if (l->opt.bind_address_count == 0) {
        status = bind_address(l, "::", true);
        if (status != UARC_Good && l->socket_count == 0) {
            /* No IPv6 on this host: fall back to all IPv4 interfaces. */
            char first[sizeof l->error];
            memcpy(first, l->error, sizeof first);
            status = bind_address(l, "0.0.0.0", false);
            if (status != UARC_Good)
                set_error(l, "%s; %s", first, l->error);
        }
    } else {
        bool v4_wildcard = false;
        for (size_t i = 0; i < l->opt.bind_address_count; i++)
            v4_wildcard |= is_ipv4_wildcard(l->opt.bind_addresses[i]);
        for (size_t i = 0; i < l->opt.bind_address_count && status == UARC_Good; i++) {
            const char *a = l->opt.bind_addresses[i];
            bool wildcard6 = strcmp(a, "::") == 0 || strcmp(a, "[::]") == 0;
            status = bind_address(l, a, wildcard6 && !v4_wildcard);
        }
    }
    return status;
}

UARC_API uarc_status uarc_listener_listen(uarc_listener *l)
{
    if (l->socket_count) {
        set_error(l, "already listening");
        return UARC_BadInvalidState;
    }
    for (int attempt = 1;; attempt++) {
        uarc_status status = bind_all(l);
        if (status == UARC_Good)
            break;
        char saved[sizeof l->error];
        memcpy(saved, l->error, sizeof saved);
        bool again = l->port_clash && attempt < SHARED_PORT_ATTEMPTS;
        uarc_listener_close(l);
        memcpy(l->error, saved, sizeof saved);
        if (!again) {
            uarc__log(&l->opt.logger, UARC_LOG_ERROR, "listener", "%s", l->error);
            return status;
        }
        /* The kernel chose the first socket's port without looking at the other addresses. */
        uarc__log(&l->opt.logger, UARC_LOG_DEBUG, "listener", "%s; trying another port", l->error);
    }
    for (size_t i = 0; i < l->socket_count; i++)
        uarc__log(&l->opt.logger, UARC_LOG_INFO, "listener", "listening on %s",
                  l->sockets[i].address);
    return UARC_Good;
}

/* ---- pending connections ---- */

static void unlink_pending(uarc_listener *l, pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    l->pending_count--;
}

static void peer_text(const pending *p, char *out)
{
    uarc__format_sockaddr(&p->peer.sa, out, UARC_PEER_SIZE);
}

/* Ends a pending connection that failed: optional ERR, error event, close. */
static void fail_pending(uarc_listener *l, pending *p, uarc_status status, bool send_err,
                         const char *fmt, ...) UARC__PRINTF(5, 6);

static void fail_pending(uarc_listener *l, pending *p, uarc_status status, bool send_err,
                         const char *fmt, ...)
{
    char reason[REASON_SIZE], peer[UARC_PEER_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    peer_text(p, peer);
    if (send_err)
        uarc__send_err(p->fd, status, reason);
    unlink_pending(l, p);
    uarc__drain_and_close(p->fd);
    uarc__free(p);
    uarc__log(&l->opt.logger, UARC_LOG_WARNING, "listener", "%s: %s: %s", peer,
              uarc_status_name(status), reason);
    if (l->opt.callbacks.error)
        l->opt.callbacks.error(l->opt.callbacks.user_data, peer, status, reason);
}

static uarc_status decide(uarc_listener *l, const uarc_rhe *hello, const char *peer, char *reason)
{
    uarc_status status;
    if (l->opt.allowlist) {
        status = uarc_allowlist_check(l->opt.allowlist, hello, reason, REASON_SIZE);
    } else {
        status = uarc_endpoint_url_check(hello->endpoint_url, reason, REASON_SIZE);
        if (status == UARC_Good && !l->opt.policy) {
            snprintf(reason, REASON_SIZE,
                     "no allowlist or policy is configured, so every server is rejected");
            return UARC_BadTcpEndpointUrlInvalid;
        }
    }
    if (status != UARC_Good || !l->opt.policy)
        return status;
    reason[0] = '\0';
    status = l->opt.policy(l->opt.policy_user_data, hello, peer, reason, REASON_SIZE);
    reason[REASON_SIZE - 1] = '\0';
    if (status != UARC_Good && reason[0] == '\0')
        snprintf(reason, REASON_SIZE, "rejected by policy (%s)", uarc_status_name(status));
    return status;
}

/* ---- accepted connections waiting to be claimed ---- */

static void ready_append(uarc_listener *l, ready *r)
{
    r->prev = l->ready_tail;
    r->next = NULL;
    if (l->ready_tail)
        l->ready_tail->next = r;
    else
        l->ready_head = r;
    l->ready_tail = r;
    l->ready_count++;
}

static void ready_unlink(uarc_listener *l, ready *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->ready_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->ready_tail = r->prev;
    l->ready_count--;
}

/* Frees an unlinked entry, or keeps it marked gone while an epoll batch may still name it. */
static void ready_release(uarc_listener *l, ready *r)
{
    if (!l->dispatching) {
        uarc__free(r);
        return;
    }
    r->gone = true;
    r->next = l->graveyard;
    l->graveyard = r;
}

static void free_graveyard(uarc_listener *l)
{
    while (l->graveyard) {
        ready *r = l->graveyard;
        l->graveyard = r->next;
        uarc__free(r);
    }
}

/* Drops an accepted connection whose peer went away before anyone claimed it. */
static void drop_ready(uarc_listener *l, ready *r)
{
    char peer[UARC_PEER_SIZE], reason[REASON_SIZE];
    memcpy(peer, r->c.peer, sizeof peer);
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(r->c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = 0;
    long long waited = (long long)(uarc__now_ms() - r->accepted_at);
    if (err)
        snprintf(reason, sizeof reason,
                 "the connection failed while waiting to be claimed, %lld ms after the RHE of "
                 "%s: %s",
                 waited, r->c.server_uri, strerror(err));
    else
        snprintf(reason, sizeof reason,
                 "the peer closed the connection while waiting to be claimed, %lld ms after the "
                 "RHE of %s",
                 waited, r->c.server_uri);
    ready_unlink(l, r);
    /* Explicitly: a descriptor duplicated elsewhere would keep the registration alive. */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, r->c.fd, NULL);
    uarc_reverse_connection_clear(&r->c);
    ready_release(l, r);
    uarc__log(&l->opt.logger, UARC_LOG_WARNING, "listener", "%s: %s: %s", peer,
              uarc_status_name(UARC_BadConnectionClosed), reason);
    if (l->opt.callbacks.error)
        l->opt.callbacks.error(l->opt.callbacks.user_data, peer, UARC_BadConnectionClosed, reason);
}

/* Whether the peer of a waiting connection has hung up or the connection failed, looked at now
 * rather than at the last epoll_wait. */
static bool ready_is_dead(const ready *r)
{
    struct pollfd p = {.fd = r->c.fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void on_ready_event(uarc_listener *l, ready *r, uint32_t events)
{
    if (!r->gone && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        drop_ready(l, r);
}

static void handle_hello(uarc_listener *l, pending *p, const uarc_rhe *hello)
{
    char peer[UARC_PEER_SIZE], reason[REASON_SIZE];
    peer_text(p, peer);
    if (l->opt.callbacks.hello)
        l->opt.callbacks.hello(l->opt.callbacks.user_data, peer, hello);

    uarc_status verdict = decide(l, hello, peer, reason);
    if (verdict != UARC_Good) {
        uarc_status sent = l->opt.reject_with_message_type_invalid ? UARC_BadTcpMessageTypeInvalid
                                                                   : UARC_BadTcpEndpointUrlInvalid;
        uarc__send_err(p->fd, sent, reason);
        unlink_pending(l, p);
        uarc__drain_and_close(p->fd);
        uarc__free(p);
        uarc__log(&l->opt.logger, UARC_LOG_INFO, "listener", "%s: rejected: %s", peer, reason);
        if (l->opt.callbacks.rejected)
            l->opt.callbacks.rejected(l->opt.callbacks.user_data, peer, hello, sent, reason);
        return;
    }

    ready *r = uarc__malloc(sizeof *r);
    if (!r) {
        fail_pending(l, p, UARC_BadOutOfMemory, true, "out of memory while accepting");
        return;
    }
    *r = (ready){.kind = WATCH_READY, .accepted_at = uarc__now_ms()};
    uarc_reverse_connection *c = &r->c;
    uarc_reverse_connection_init(c);
    c->server_uri = uarc__strndup(hello->server_uri.data, hello->server_uri.length);
    c->server_uri_length = hello->server_uri.length;
    c->endpoint_url = uarc__strndup(hello->endpoint_url.data, hello->endpoint_url.length);
    c->endpoint_url_length = hello->endpoint_url.length;
    memcpy(c->peer, peer, sizeof c->peer);
    if (!c->server_uri || !c->endpoint_url) {
        uarc_reverse_connection_clear(c);
        uarc__free(r);
        fail_pending(l, p, UARC_BadOutOfMemory, true, "out of memory while accepting");
        return;
    }
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = r};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, p->fd, &ev) != 0) {
        uarc_reverse_connection_clear(c);
        uarc__free(r);
        fail_pending(l, p, UARC_BadTcpInternalError, false, "cannot watch the socket: %s",
                     strerror(errno));
        return;
    }
    c->fd = p->fd; /* the queued entry owns the socket now */
    unlink_pending(l, p);
    uarc__free(p);
    ready_append(l, r);
    uarc__log(&l->opt.logger, UARC_LOG_INFO, "listener", "%s: accepted %s", peer, c->server_uri);
    if (l->opt.callbacks.accepted)
        l->opt.callbacks.accepted(l->opt.callbacks.user_data, c);
}

/* Peeks at what has arrived; reads and handles the RHE once all of it is in the kernel. */
static void on_readable(uarc_listener *l, pending *p, uint32_t events)
{
    bool hung_up = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    uarc_rhe_error err;
    if (!p->expected) {
        uint8_t header[8];
        ssize_t n = recv(p->fd, header, sizeof header, MSG_PEEK);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            fail_pending(l, p, UARC_BadCommunicationError, false, "receive failed: %s",
                         strerror(errno));
            return;
        }
        if (n == 0) {
            fail_pending(l, p, UARC_BadConnectionClosed, false,
                         "the peer closed the connection before sending an RHE");
            return;
        }
        size_t needed = 0;
        if (uarc_rhe_parse(header, (size_t)n, l->opt.max_message_size, NULL, &needed, &err) ==
            UARC_RHE_INVALID) {
            fail_pending(l, p, err.status, true, "%s", err.detail);
            return;
        }
        if (n < (ssize_t)sizeof header) {
            if (hung_up)
                fail_pending(l, p, UARC_BadConnectionClosed, false,
                             "the peer closed the connection after %zd of 8 header bytes", n);
            return;
        }
        p->expected = (uint32_t)needed;
    }
    int available = 0;
    if (ioctl(p->fd, FIONREAD, &available) != 0) {
        fail_pending(l, p, UARC_BadCommunicationError, false, "FIONREAD failed: %s",
                     strerror(errno));
        return;
    }
    if ((uint32_t)available < p->expected) {
        if (hung_up)
            fail_pending(l, p, UARC_BadConnectionClosed, false,
                         "the peer closed the connection after %d of %u RHE bytes", available,
                         p->expected);
        return;
    }
    ssize_t n = recv(p->fd, l->scratch, p->expected, 0);
    if (n != (ssize_t)p->expected) {
        fail_pending(l, p, UARC_BadCommunicationError, false, "short read of the RHE (%zd of %u)",
                     n, p->expected);
        return;
    }
    uarc_rhe hello;
    if (uarc_rhe_parse(l->scratch, (size_t)n, l->opt.max_message_size, &hello, NULL, &err) !=
        UARC_RHE_COMPLETE) {
        fail_pending(l, p, err.status, true, "%s", err.detail);
        return;
    }
    handle_hello(l, p, &hello);
}

/* Out of descriptors: frees the spare, accepts the oldest waiting peer and closes it, so the
 * level-triggered listening socket does not spin. Returns false when that did not help: no
 * spare, or the descriptor it freed cannot be used (another limit, or taken meanwhile). */
static bool drop_one(uarc_listener *l, int listen_fd)
{
    if (l->spare_fd < 0)
        return false;
    close(l->spare_fd);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    int accept_errno = errno;
    if (fd >= 0)
        close(fd);
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) /* still no descriptor; any other error: the peer left, nothing to drop */
        return accept_errno != EMFILE && accept_errno != ENFILE;
    uarc__log(&l->opt.logger, UARC_LOG_ERROR, "listener",
              "out of file descriptors; dropping an incoming connection");
    if (l->opt.callbacks.error)
        l->opt.callbacks.error(l->opt.callbacks.user_data, "", UARC_BadTcpInternalError,
                               "out of file descriptors; connection dropped");
    return true;
}

static void watch_listening(uarc_listener *l, uint32_t events)
{
    for (size_t i = 0; i < l->socket_count; i++) {
        struct epoll_event ev = {.events = events, .data.ptr = &l->sockets[i]};
        epoll_ctl(l->epfd, EPOLL_CTL_MOD, l->sockets[i].fd, &ev);
    }
}

/* No descriptor and no spare: waiting peers stay in the backlog, and the listening sockets are
 * left out of epoll for a while. Reported once until an accept succeeds again. */
static void pause_accepting(uarc_listener *l, int64_t now)
{
    l->accept_resume_at = now + ACCEPT_BACKOFF_MS;
    watch_listening(l, 0);
    if (l->descriptors_reported)
        return;
    l->descriptors_reported = true;
    char reason[160];
    snprintf(reason, sizeof reason,
             "out of file descriptors and no spare one to drop connections with; accepting "
             "again every %d ms until descriptors are free",
             ACCEPT_BACKOFF_MS);
    uarc__log(&l->opt.logger, UARC_LOG_ERROR, "listener", "%s", reason);
    if (l->opt.callbacks.error)
        l->opt.callbacks.error(l->opt.callbacks.user_data, "", UARC_BadTcpInternalError, reason);
}

static void resume_accepting(uarc_listener *l, int64_t now)
{
    if (l->accept_resume_at < 0 || now < l->accept_resume_at)
        return;
    l->accept_resume_at = -1;
    if (l->spare_fd < 0)
        l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    watch_listening(l, EPOLLIN);
}

static void accept_some(uarc_listener *l, listen_socket *ls, int64_t now)
{
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        pending probe;
        socklen_t len = sizeof probe.peer;
        int fd = accept4(ls->fd, &probe.peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && !drop_one(l, ls->fd))
                pause_accepting(l, now);
            return;
        }
        if (l->descriptors_reported) {
            l->descriptors_reported = false;
            uarc__log(&l->opt.logger, UARC_LOG_INFO, "listener",
                      "file descriptors are available again");
        }
        pending *p = NULL;
        if (l->pending_count + l->ready_count < l->opt.max_pending)
            p = uarc__malloc(sizeof *p);
        if (!p) {
            char peer[UARC_PEER_SIZE], reason[96];
            uarc__format_sockaddr(&probe.peer.sa, peer, sizeof peer);
            snprintf(reason, sizeof reason, "too many pending connections (limit %u)",
                     l->opt.max_pending);
            uarc__send_err(fd, UARC_BadTcpServerTooBusy, reason);
            uarc__drain_and_close(fd);
            uarc__log(&l->opt.logger, UARC_LOG_WARNING, "listener", "%s: %s", peer, reason);
            if (l->opt.callbacks.error)
                l->opt.callbacks.error(l->opt.callbacks.user_data, peer, UARC_BadTcpServerTooBusy,
                                       reason);
            continue;
        }
        *p = (pending){.kind = WATCH_PENDING,
                       .fd = fd,
                       .deadline = now + l->opt.hello_timeout_ms,
                       .prev = l->tail,
                       .peer = probe.peer};
        if (l->tail)
            l->tail->next = p;
        else
            l->head = p;
        l->tail = p;
        l->pending_count++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            fail_pending(l, p, UARC_BadTcpInternalError, false, "cannot watch the socket: %s",
                         strerror(errno));
            continue;
        }
        /* The RHE often arrives with the connection: try now and save a wake-up. */
        on_readable(l, p, 0);
    }
}

static void expire(uarc_listener *l, int64_t now)
{
    while (l->head && l->head->deadline <= now)
        fail_pending(l, l->head, UARC_BadTimeout, false, "no complete RHE within %u ms",
                     l->opt.hello_timeout_ms);
}

UARC_API int uarc_listener_timeout_ms(const uarc_listener *l)
{
    int64_t due = l->head ? l->head->deadline : -1;
    if (l->accept_resume_at >= 0 && (due < 0 || l->accept_resume_at < due))
        due = l->accept_resume_at;
    if (due < 0)
        return -1;
    int64_t left = due - uarc__now_ms();
    return left < 0 ? 0 : (int)left;
}

UARC_API uarc_status uarc_listener_process(uarc_listener *l, int timeout_ms)
{
    if (!l->socket_count) {
        set_error(l, "the listener is not listening");
        return UARC_BadInvalidState;
    }
    if (l->dispatching) { /* a callback: a nested batch would free what this one still names */
        set_error(l, "called from a listener callback (uarc_listener_next() works there)");
        return UARC_BadInvalidState;
    }
    int wait = timeout_ms;
    int due = uarc_listener_timeout_ms(l);
    if (due >= 0 && (wait < 0 || due < wait))
        wait = due;
    struct epoll_event events[EVENTS_PER_WAIT];
    int n = epoll_wait(l->epfd, events, EVENTS_PER_WAIT, wait);
    if (n < 0) {
        if (errno == EINTR)
            return UARC_GoodCallAgain;
        set_error(l, "epoll_wait: %s", strerror(errno));
        return UARC_BadTcpInternalError;
    }
    int64_t now = uarc__now_ms();
    resume_accepting(l, now);
    /* Connections first, listening sockets last: slots that hang-ups in this batch free are
     * free before a newcomer is counted against max_pending. */
    l->dispatching = true;
    int listening = 0; /* listening sockets' events, moved to the front of the array */
    for (int i = 0; i < n; i++) {
        uint8_t kind = *(uint8_t *)events[i].data.ptr;
        if (kind == WATCH_LISTEN)
            events[listening++] = events[i];
        else if (kind == WATCH_PENDING)
            on_readable(l, events[i].data.ptr, events[i].events);
        else
            on_ready_event(l, events[i].data.ptr, events[i].events);
    }
    for (int i = 0; i < listening; i++)
        accept_some(l, events[i].data.ptr, now);
    expire(l, uarc__now_ms());
    l->dispatching = false;
    free_graveyard(l);
    return UARC_Good;
}

static bool ready_matches(const ready *r, const char *server_uri, const char *endpoint_url)
{
    return (!server_uri || strcmp(r->c.server_uri, server_uri) == 0) &&
           (!endpoint_url || strcmp(r->c.endpoint_url, endpoint_url) == 0);
}

/*
 * Moves a waiting connection that matches (NULL: any) out of the list: the oldest, or with
 * `newest` the newest. One whose peer has gone is dropped (error event) and the search goes on;
 * it starts over each time, since the callback may have taken entries.
 */
static bool take(uarc_listener *l, const char *server_uri, const char *endpoint_url, bool newest,
                 uarc_reverse_connection *connection)
{
    for (;;) {
        ready *r = newest ? l->ready_tail : l->ready_head;
        while (r && !ready_matches(r, server_uri, endpoint_url))
            r = newest ? r->prev : r->next;
        if (!r)
            return false;
        if (ready_is_dead(r)) {
            drop_ready(l, r);
            continue;
        }
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, r->c.fd, NULL);
        ready_unlink(l, r);
        *connection = r->c;
        ready_release(l, r);
        return true;
    }
}

UARC_API bool uarc_listener_next(uarc_listener *l, uarc_reverse_connection *connection)
{
    return take(l, NULL, NULL, false, connection);
}

UARC_API uarc_status uarc_listener_accept_from(uarc_listener *l, const char *server_uri,
                                               const char *endpoint_url, int timeout_ms,
                                               uarc_reverse_connection *connection)
{
    if (!l->socket_count) {
        set_error(l, "the listener is not listening");
        return UARC_BadInvalidState;
    }
    int64_t deadline = timeout_ms < 0 ? -1 : uarc__now_ms() + timeout_ms;
    /* Process at least once, so a zero timeout still picks up an RHE already in the kernel. */
    /* Several connections of one server: the newest is the one it is waiting on now; it keeps
     * only one waiting socket per client, so older ones are those it likely gave up on. */
    bool newest = server_uri || endpoint_url;
    for (bool processed = false;; processed = true) {
        if (take(l, server_uri, endpoint_url, newest, connection))
            return UARC_Good;
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - uarc__now_ms();
            if (left <= 0 && processed) {
                if (server_uri)
                    set_error(l, "%s did not dial in within %d ms", server_uri, timeout_ms);
                else
                    set_error(l, "no server was accepted within %d ms", timeout_ms);
                return UARC_BadTimeout;
            }
            wait = left > 0 ? (int)left : 0;
        }
        uarc_status status = uarc_listener_process(l, wait);
        if (status != UARC_Good)
            return status;
    }
}

UARC_API uarc_status uarc_listener_accept(uarc_listener *l, int timeout_ms,
                                          uarc_reverse_connection *connection)
{
    return uarc_listener_accept_from(l, NULL, NULL, timeout_ms, connection);
}

UARC_API void uarc_listener_close(uarc_listener *l)
{
    for (size_t i = 0; i < l->socket_count; i++)
        close(l->sockets[i].fd);
    uarc__free(l->sockets);
    l->sockets = NULL;
    l->socket_count = 0;
    while (l->head) {
        pending *p = l->head;
        unlink_pending(l, p);
        close(p->fd);
        uarc__free(p);
    }
    while (l->ready_head) {
        ready *r = l->ready_head;
        ready_unlink(l, r);
        uarc_reverse_connection_clear(&r->c);
        uarc__free(r);
    }
    free_graveyard(l);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->spare_fd >= 0)
        close(l->spare_fd);
    l->epfd = l->spare_fd = -1;
    l->accept_resume_at = -1;
    l->descriptors_reported = false;
}

UARC_API void uarc_listener_delete(uarc_listener *l)
{
    if (!l)
        return;
    uarc_listener_close(l);
    if (l->bind_addresses)
        for (size_t i = 0; i < l->opt.bind_address_count; i++)
            uarc__free(l->bind_addresses[i]);
    uarc__free(l->bind_addresses);
    uarc__free(l->scratch);
    uarc__free(l);
}
