#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/socket.h"
#include "uarc/rhe.h"

int64_t uarc__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

size_t uarc__encode_err(uint8_t *out, size_t capacity, uarc_status status, const char *reason)
{
    if (capacity < 16)
        return 0;
    size_t len = reason ? strlen(reason) : 0;
    if (len > UARC_RHE_MAX_STRING_LENGTH)
        len = UARC_RHE_MAX_STRING_LENGTH;
    if (len > capacity - 16)
        len = capacity - 16;
    size_t size = 16 + len;
    memcpy(out, "ERRF", 4);
    put_u32(out + 4, (uint32_t)size);
    put_u32(out + 8, status);
    put_u32(out + 12, (uint32_t)len);
    if (len)
        memcpy(out + 16, reason, len);
    return size;
}

void uarc__send_err(int fd, uarc_status status, const char *reason)
{
    uint8_t frame[16 + 512];
    size_t size = uarc__encode_err(frame, sizeof frame, status, reason);
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
