/*
 * The listener's accepting side: pending connections and their RHEs, the queue of accepted
 * connections, running out of descriptors, and the process step (see listener_internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "reverse/listener_internal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "transport/socket.h"

/* ---- pending connections ---- */

void uarc__listener_unlink_pending(uarc_listener *l, pending *p)
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
    uarc__listener_unlink_pending(l, p);
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

void uarc__listener_ready_unlink(uarc_listener *l, ready *r)
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
void uarc__listener_ready_release(uarc_listener *l, ready *r)
{
    if (!l->dispatching) {
        uarc__free(r);
        return;
    }
    r->gone = true;
    r->next = l->graveyard;
    l->graveyard = r;
}

void uarc__listener_free_graveyard(uarc_listener *l)
{
    while (l->graveyard) {
        ready *r = l->graveyard;
        l->graveyard = r->next;
        uarc__free(r);
    }
}

/* Drops an accepted connection whose peer went away before anyone claimed it. */
void uarc__listener_drop_ready(uarc_listener *l, ready *r)
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
    uarc__listener_ready_unlink(l, r);
    /* Explicitly: a descriptor duplicated elsewhere would keep the registration alive. */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, r->c.fd, NULL);
    uarc_reverse_connection_clear(&r->c);
    uarc__listener_ready_release(l, r);
    uarc__log(&l->opt.logger, UARC_LOG_WARNING, "listener", "%s: %s: %s", peer,
              uarc_status_name(UARC_BadConnectionClosed), reason);
    if (l->opt.callbacks.error)
        l->opt.callbacks.error(l->opt.callbacks.user_data, peer, UARC_BadConnectionClosed, reason);
}

/* Whether the peer of a waiting connection has hung up or the connection failed, looked at now
 * rather than at the last epoll_wait. */
bool uarc__listener_ready_is_dead(const ready *r)
{
    struct pollfd p = {.fd = r->c.fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void on_ready_event(uarc_listener *l, ready *r, uint32_t events)
{
    if (!r->gone && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        uarc__listener_drop_ready(l, r);
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
        uarc__listener_unlink_pending(l, p);
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
    uarc__listener_unlink_pending(l, p);
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
        uarc__listener_set_error(l, "the listener is not listening");
        return UARC_BadInvalidState;
    }
    if (l->dispatching) { /* a callback: a nested batch would free what this one still names */
        uarc__listener_set_error(
            l, "called from a listener callback (uarc_listener_next() works there)");
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
        uarc__listener_set_error(l, "epoll_wait: %s", strerror(errno));
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
    uarc__listener_free_graveyard(l);
    return UARC_Good;
}
