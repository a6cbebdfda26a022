/* The socket edge of the transport layer, as the client and the listener use it. Internal. */
#ifndef UARC_TRANSPORT_SOCKET_H
#define UARC_TRANSPORT_SOCKET_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "uarc/common.h"

/* "1.2.3.4:80" or "[::1]:80"; an IPv4-mapped IPv6 address is shown as IPv4. */
void uarc__format_sockaddr(const struct sockaddr *address, char *out, size_t out_size);

/* Sends ERR without blocking; best effort: a full socket buffer drops it. */
void uarc__send_err(int fd, uarc_status status, const char *reason);

/* Closes after reading and discarding what the peer already sent (bounded), so the kernel ends
 * the connection with FIN rather than RST and the peer can still read our last message. */
void uarc__drain_and_close(int fd);

/* ---- dialing (the client's forward connection) ---- */

/* Splits "opc.tcp://host[:port][/path]" (host may be "[v6]"). Port defaults to 4840.
 * Returns Good or BadTcpEndpointUrlInvalid with a reason in `detail`. */
uarc_status uarc__split_endpoint_url(const char *url, char *host, size_t host_size, uint16_t *port,
                                     char *detail, size_t detail_size);

/* A non-blocking connect that tries each address a host name resolves to in turn. */
typedef struct uarc__dialer {
    struct addrinfo *addresses; /* from getaddrinfo */
    struct addrinfo *current;
    int fd; /* the socket being connected, -1 when none */
    int last_errno;
} uarc__dialer;

/* Resolves (blocking, the system resolver) and starts connecting to the first address.
 * Returns Good with d->fd set (connected or in progress: wait for POLLOUT, then call
 * uarc__dialer_continue), or BadTcpEndpointUrlInvalid / BadCommunicationError with `detail`. */
uarc_status uarc__dialer_start(uarc__dialer *d, const char *host, uint16_t port, char *detail,
                               size_t detail_size);

/* After POLLOUT: Good when connected (*done true), Good with *done false when the next address is
 * being tried, BadCommunicationError when every address failed. */
uarc_status uarc__dialer_continue(uarc__dialer *d, bool *done, char *detail, size_t detail_size);

/* Takes the connected socket out of the dialer and frees its state. */
int uarc__dialer_take(uarc__dialer *d);

/* Frees the dialer's state and closes an unfinished socket. */
void uarc__dialer_clear(uarc__dialer *d);

#endif
