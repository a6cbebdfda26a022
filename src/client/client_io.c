/*
 * The socket edge: dialing, the socket handed in, poll, send and recv, and the event-loop API
 * (descriptor, events, process step) that drives the client over them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "core/clock.h"

/* The reason for a socket error. */
static const char *errno_reason(int err)
{
    switch (err) {
    case ECONNRESET:
    case EPIPE:
        return "reset by peer";
    case ETIMEDOUT:
        return "TCP keepalive";
    default:
        return "I/O error";
    }
}

/* ---- output ---- */

/* Writes what the channel has queued, without blocking. */
void uarc__client_flush(uarc_client *c)
{
    uarc__client_wake(c);
    if (!c->channel || c->fd < 0 || c->dialing)
        return;
    const uint8_t *data;
    size_t n;
    while ((n = uarc__channel_output(c->channel, &data)) > 0) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            uarc__client_set_error(c, uarc__client_current_step(c), UARC_BadConnectionClosed,
                                   "send failed: %s", strerror(errno));
            uarc__client_note_cause(c, UARC_BadConnectionClosed, errno_reason(errno));
            uarc__client_end_connection(c, UARC_BadConnectionClosed);
            return;
        }
        uarc__channel_output_done(c->channel, (size_t)w);
    }
}

/* Closes the socket, or stops the dial in progress. */
void uarc__client_close_socket(uarc_client *c)
{
    if (c->dialing) {
        uarc__dialer_clear(&c->dialer);
        c->dialing = false;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

void uarc__client_drain(uarc_client *c, int wait_ms)
{
    int64_t deadline = uarc__now_ms() + wait_ms;
    const uint8_t *data;
    uarc__client_flush(c);
    while (c->fd >= 0 && uarc__channel_output(c->channel, &data) && uarc__now_ms() < deadline) {
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        poll(&pfd, 1, 10);
        uarc__client_flush(c);
    }
}

/* Requests go out without waiting to fill a segment, and a peer that vanished without a FIN
 * (its NAT state or its power gone) is found by TCP keepalive probes while the connection is
 * idle, and by TCP_USER_TIMEOUT while our data waits for an acknowledgement. */
static void set_socket_options(uarc_client *c)
{
    if (c->fd < 0)
        return;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->cfg.tcp_keepalive_disable)
        return;
    int idle = (int)c->cfg.tcp_keepalive_idle_s, interval = (int)c->cfg.tcp_keepalive_interval_s,
        count = (int)c->cfg.tcp_keepalive_count;
    unsigned user_timeout = (unsigned)(idle + interval * count) * 1000u;
    if (setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) != 0)
        uarc__log(&c->cfg.logger, UARC_LOG_DEBUG, "client",
                  "TCP keepalive not set on this socket (%s)", strerror(errno));
}

/* Remembers the address of the server's end of the socket, for reports. */
static void note_peer(uarc_client *c)
{
    struct sockaddr_storage ss;
    socklen_t length = sizeof ss;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &length) == 0)
        uarc__format_sockaddr((struct sockaddr *)&ss, c->peer, sizeof c->peer);
}

UARC_API uarc_status uarc_client_start_socket(uarc_client *c, int fd, const char *endpoint_url)
{
    uarc_status status = uarc__client_begin(c, endpoint_url, false, uarc__now_ms());
    if (status == UARC_Good)
        status = uarc__client_check_endpoint_url(c, endpoint_url);
    if (status != UARC_Good) {
        close(fd);
        return status;
    }
    c->fd = fd;
    note_peer(c);
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    set_socket_options(c);
    status = uarc__client_start_channel(c);
    if (status == UARC_Good)
        uarc__client_flush(c);
    uarc__client_finish_ending(c);
    return status == UARC_Good ? UARC_Good : c->last_status;
}

UARC_API uarc_status uarc_client_start_connect(uarc_client *c, const char *endpoint_url)
{
    uarc_status status = uarc__client_begin(c, endpoint_url, false, uarc__now_ms());
    if (status != UARC_Good)
        return status;
    char host[256], detail[256];
    uint16_t port;
    status =
        uarc__split_endpoint_url(endpoint_url, host, sizeof host, &port, detail, sizeof detail);
    if (status == UARC_Good)
        status = uarc__dialer_start(&c->dialer, host, port, detail, sizeof detail);
    if (status != UARC_Good) {
        uarc__client_set_error(c, "connect", status, "%s", detail);
        c->connect_deadline = -1;
        return status;
    }
    c->dialing = true;
    uarc__client_set_state(c, UARC_CLIENT_CONNECTING, UARC_Good);
    return UARC_Good;
}

/* ---- the event loop edge ---- */

UARC_API int uarc_client_fd(const uarc_client *c)
{
    return c->dialing ? c->dialer.fd : c->fd;
}

UARC_API short uarc_client_poll_events(const uarc_client *c)
{
    if (c->dialing)
        return POLLOUT;
    if (c->fd < 0)
        return 0;
    const uint8_t *data;
    return (short)(POLLIN | (c->channel && uarc__channel_output(c->channel, &data) ? POLLOUT : 0));
}

UARC_API int uarc_client_gather_ms(const uarc_client *c)
{
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return -1;
    if (c->state != UARC_CLIENT_SESSION_ACTIVE && c->state != UARC_CLIENT_CHANNEL_OPEN)
        return 0; /* a handshake goes on */
    const uint8_t *output;
    if (c->channel &&
        (uarc__channel_output(c->channel, &output) || uarc__channel_awaiting(c->channel)))
        return 0; /* output not yet written, a message half read, or a renewal's answer */
    for (size_t i = 0; i < c->pending_count; i++)
        if (c->pending[i].response_type != UARC_T(PublishResponse))
            return 0; /* an answer someone waits for */
    /* only the subscriptions send Publish, and they hook in first */
    return c->hooks.gather_ms ? c->hooks.gather_ms(c->hooks.user_data) : -1;
}

/* Bytes the transport received, in either mode. `own` is `data` when the channel may work on
 * them in place (the socket's read buffer), NULL when they are the application's. */
void uarc__client_receive(uarc_client *c, uint8_t *own, const uint8_t *data, size_t length)
{
    c->receiving = true;
    if (own)
        uarc__channel_receive_own(c->channel, own, length, uarc__client_now(c));
    else
        uarc__channel_receive(c->channel, data, length, uarc__client_now(c));
    c->receiving = false;
    /* The ACK arrived and OPN went out: failures from here on belong to the OPN step. */
    if (c->state == UARC_CLIENT_HELLO && c->channel &&
        uarc__channel_get_state(c->channel) == UARC__CHANNEL_OPN_SENT)
        uarc__client_set_state(c, UARC_CLIENT_OPENING, UARC_Good);
}

static void on_readable(uarc_client *c)
{
    uint8_t buffer[READ_CHUNK];
    for (int i = 0; i < 16 && c->channel && !c->ending; i++) {
        ssize_t n = recv(c->fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) {
            uarc__client_receive(c, buffer, buffer, (size_t)n);
            uarc__client_flush(c);
            if ((size_t)n < sizeof buffer)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        uarc__client_transport_ended(c, UARC_BadConnectionClosed,
                                     n == 0 ? "closed by peer" : errno_reason(errno),
                                     n == 0 ? "the server closed the connection" : strerror(errno));
        return;
    }
}

static void on_dialed(uarc_client *c)
{
    bool done = false;
    char detail[256];
    uarc_status status = uarc__dialer_continue(&c->dialer, &done, detail, sizeof detail);
    if (status != UARC_Good) {
        uarc__client_fail_connect(c, "connect", status, "%s", detail);
        return;
    }
    if (!done)
        return;
    c->dialing = false;
    c->fd = uarc__dialer_take(&c->dialer);
    note_peer(c);
    set_socket_options(c);
    if (uarc__client_start_channel(c) == UARC_Good)
        uarc__client_flush(c);
}

/* A callback run from the channel's receive loop cannot drive the client: the bytes an inner
 * call read would be refused by the channel, which is still busy with the outer ones. */
bool uarc__client_refuse_inside_receive(uarc_client *c, const char *step)
{
    if (c->bytes_mode) {
        /* Nothing to wait on: the application owns the transport. */
        uarc__client_set_error(c, step, UARC_BadInvalidState,
                               "a blocking call or uarc_client_process() on a client in byte mode");
        return true;
    }
    if (!c->receiving)
        return false;
    uarc__client_set_error(
        c, step, UARC_BadInvalidState,
        "a blocking call or uarc_client_process() from inside a client callback");
    return true;
}

/* What follows a wait: the socket's ready events handled, then what is due. */
static uarc_status after_wait(uarc_client *c, short revents)
{
    if (revents) {
        if (c->dialing)
            on_dialed(c);
        else {
            if (revents & (POLLIN | POLLHUP | POLLERR))
                on_readable(c);
            if ((revents & POLLOUT) && !c->ending)
                uarc__client_flush(c);
        }
    }
    if (!c->ending) {
        uarc__client_tick(c, uarc__client_now(c));
        if (!c->ending)
            uarc__client_flush(c);
    }
    uarc__client_finish_ending(c);
    return c->state == UARC_CLIENT_DISCONNECTED ? c->last_status : UARC_Good;
}

UARC_API uarc_status uarc_client_process(uarc_client *c, int timeout_ms)
{
    if (uarc__client_refuse_inside_receive(c, uarc__client_current_step(c)))
        return UARC_BadInvalidState;
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return c->last_status != UARC_Good ? c->last_status : UARC_BadConnectionClosed;
    int wait = uarc_client_timeout_ms(c);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    struct pollfd pfd = {.fd = uarc_client_fd(c), .events = uarc_client_poll_events(c)};
    int n = poll(&pfd, 1, wait);
    if (n < 0 && errno != EINTR) {
        /* Nothing can be waited for any more: end the connection, so that every pending request
         * and every blocking loop finishes instead of retrying a failing poll forever. */
        uarc__client_set_error(c, uarc__client_current_step(c), UARC_BadInternalError, "poll: %s",
                               strerror(errno));
        uarc__client_note_cause(c, UARC_BadInternalError, "I/O error");
        uarc__client_end_connection(c, UARC_BadInternalError);
        uarc__client_finish_ending(c);
        return UARC_BadInternalError;
    }
    return after_wait(c, n > 0 ? pfd.revents : 0);
}

UARC_API uarc_status uarc_client_process_events(uarc_client *c, short revents)
{
    if (uarc__client_refuse_inside_receive(c, uarc__client_current_step(c)))
        return UARC_BadInvalidState;
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return c->last_status != UARC_Good ? c->last_status : UARC_BadConnectionClosed;
    revents &= POLLIN | POLLOUT | POLLHUP | POLLERR;
    if (revents && c->dialing) {
        /* A connect in progress also shows no socket error: it is done only when poll says the
         * socket is writable, so a stale readiness (a descriptor since replaced by the next
         * address) is asked again here; dialing is rare. */
        struct pollfd pfd = {.fd = uarc_client_fd(c), .events = POLLOUT};
        revents = poll(&pfd, 1, 0) > 0 ? pfd.revents : 0;
    }
    /* A stale readiness otherwise costs one recv or send that finds nothing to do. */
    return after_wait(c, revents);
}

UARC_API uarc_status uarc_client_abort(uarc_client *c, uarc_status status, const char *reason)
{
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return UARC_Good;
    uarc__client_transport_ended(c, status, reason, reason);
    if (!c->receiving)
        uarc__client_finish_ending(c);
    return UARC_Good;
}
