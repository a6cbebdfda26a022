/*
 * The listener: its configuration, binding, and handing accepted connections over
 * (listener_accept.c accepts and reads the RHEs).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "reverse/listener_internal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "transport/socket.h"

void uarc__listener_set_error(uarc_listener *l, const char *fmt, ...)
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
        uarc__listener_set_error(l, "cannot create a socket for %s: %s", shown, strerror(errno));
        return UARC_BadTcpInternalError;
    }
    int one = 1, v6only = dual_stack ? 0 : 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l->opt.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        uarc__listener_set_error(l, "cannot set SO_REUSEPORT on %s: %s", shown, strerror(errno));
        close(fd);
        return UARC_BadTcpInternalError;
    }
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, l->opt.backlog) != 0) {
        if (errno == EADDRINUSE && l->opt.port == 0 && l->socket_count > 0)
            l->port_clash = true;
        uarc__listener_set_error(l, "cannot bind %s: %s", shown, strerror(errno));
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
        uarc__listener_set_error(l, "cannot watch %s: %s", ls->address, strerror(errno));
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
        uarc__listener_set_error(l, "bind address too long");
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
        uarc__listener_set_error(l, "cannot resolve bind address %s: %s", address,
                                 gai_strerror(rc));
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
            uarc__listener_set_error(l, "out of memory");
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
        uarc__listener_set_error(l, "epoll_create1: %s", strerror(errno));
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
                uarc__listener_set_error(l, "%s; %s", first, l->error);
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
        uarc__listener_set_error(l, "already listening");
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
        if (uarc__listener_ready_is_dead(r)) {
            uarc__listener_drop_ready(l, r);
            continue;
        }
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, r->c.fd, NULL);
        uarc__listener_ready_unlink(l, r);
        *connection = r->c;
        uarc__listener_ready_release(l, r);
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
        uarc__listener_set_error(l, "the listener is not listening");
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
                    uarc__listener_set_error(l, "%s did not dial in within %d ms", server_uri,
                                             timeout_ms);
                else
                    uarc__listener_set_error(l, "no server was accepted within %d ms", timeout_ms);
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
        uarc__listener_unlink_pending(l, p);
        close(p->fd);
        uarc__free(p);
    }
    while (l->ready_head) {
        ready *r = l->ready_head;
        uarc__listener_ready_unlink(l, r);
        uarc_reverse_connection_clear(&r->c);
        uarc__free(r);
    }
    uarc__listener_free_graveyard(l);
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
