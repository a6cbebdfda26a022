#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdarg.h>
#include <unistd.h>

#include "transport/socket.h"
#include "transport/uatcp.h"
#include "uarc/endpoint_url.h"

void uarc__format_sockaddr(const struct sockaddr *address, char *out, size_t out_size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(out, out_size, "%s:%u", host, port);
    } else if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof host);
            snprintf(out, out_size, "%s:%u", host, port);
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            if (in6->sin6_scope_id)
                snprintf(out, out_size, "[%s%%%u]:%u", host, (unsigned)in6->sin6_scope_id, port);
            else
                snprintf(out, out_size, "[%s]:%u", host, port);
        }
    } else {
        snprintf(out, out_size, "unknown");
    }
}

void uarc__send_err(int fd, uarc_status status, const char *reason)
{
    uint8_t frame[16 + 512];
    size_t size = uarc__uatcp_encode_err(frame, sizeof frame, status, reason);
    ssize_t n;
    do
        n = send(fd, frame, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
}

void uarc__drain_and_close(int fd)
{
    uint8_t sink[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
    }
    close(fd);
}

uarc_status uarc__split_endpoint_url(const char *url, char *host, size_t host_size, uint16_t *port,
                                     char *detail, size_t detail_size)
{
    size_t length = strlen(url);
    char reason[160];
    uarc_status s =
        uarc_endpoint_url_check((uarc_view){(const uint8_t *)url, length}, reason, sizeof reason);
    if (s != UARC_Good) {
        snprintf(detail, detail_size, "%s", reason);
        return s;
    }
    const char *p = url + 10; /* after "opc.tcp://" (checked above) */
    const char *h = p, *h_end;
    if (*p == '[') {
        h = p + 1;
        h_end = strchr(p, ']');
        p = h_end + 1;
    } else {
        while (*p && *p != ':' && *p != '/')
            p++;
        h_end = p;
    }
    if ((size_t)(h_end - h) >= host_size) {
        snprintf(detail, detail_size, "host name too long in %s", url);
        return UARC_BadTcpEndpointUrlInvalid;
    }
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    *port = 4840;
    if (*p == ':')
        *port = (uint16_t)strtoul(p + 1, NULL, 10);
    return UARC_Good;
}

static bool dial_next(uarc__dialer *d)
{
    for (; d->current; d->current = d->current->ai_next) {
        struct addrinfo *ai = d->current;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            d->last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            d->fd = fd;
            return true;
        }
        d->last_errno = errno;
        close(fd);
    }
    return false;
}

uarc_status uarc__dialer_start(uarc__dialer *d, const char *host, uint16_t port, char *detail,
                               size_t detail_size)
{
    memset(d, 0, sizeof *d);
    d->fd = -1;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    int rc = getaddrinfo(host, service, &hints, &d->addresses);
    if (rc != 0) {
        snprintf(detail, detail_size, "cannot resolve %s: %s", host, gai_strerror(rc));
        d->addresses = NULL;
        return UARC_BadTcpEndpointUrlInvalid;
    }
    d->current = d->addresses;
    if (!dial_next(d)) {
        snprintf(detail, detail_size, "cannot connect to %s port %u: %s", host, (unsigned)port,
                 strerror(d->last_errno));
        uarc__dialer_clear(d);
        return UARC_BadCommunicationError;
    }
    return UARC_Good;
}

uarc_status uarc__dialer_continue(uarc__dialer *d, bool *done, char *detail, size_t detail_size)
{
    int err = 0;
    socklen_t len = sizeof err;
    *done = false;
    if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        *done = true;
        return UARC_Good;
    }
    if (err == EINPROGRESS)
        return UARC_Good;
    char where[80];
    uarc__format_sockaddr(d->current->ai_addr, where, sizeof where);
    d->last_errno = err;
    close(d->fd);
    d->fd = -1;
    d->current = d->current->ai_next;
    if (dial_next(d))
        return UARC_Good;
    snprintf(detail, detail_size, "cannot connect to %s: %s", where, strerror(err));
    return UARC_BadCommunicationError;
}

int uarc__dialer_take(uarc__dialer *d)
{
    int fd = d->fd;
    d->fd = -1;
    uarc__dialer_clear(d);
    return fd;
}

void uarc__dialer_clear(uarc__dialer *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    if (d->addresses)
        freeaddrinfo(d->addresses);
    d->addresses = d->current = NULL;
}
