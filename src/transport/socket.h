/* The thin socket edge shared by the listener and the client transport. Internal. */
#ifndef UARC_TRANSPORT_SOCKET_H
#define UARC_TRANSPORT_SOCKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "uarc/common.h"

/* Monotonic clock in milliseconds. */
int64_t uarc__now_ms(void);

/* "1.2.3.4:80" or "[::1]:80"; an IPv4-mapped IPv6 address is shown as IPv4. */
void uarc__format_sockaddr(const struct sockaddr *address, char *out, size_t out_size);

/*
 * Encodes a UA-TCP ERR message (Part 6 §7.1.2.5) into `out`: the reason is cut to fit both the
 * buffer and the 4095-byte limit. Returns the message size (at least 16 when capacity allows),
 * 0 when `capacity` is below 16.
 */
size_t uarc__encode_err(uint8_t *out, size_t capacity, uarc_status status, const char *reason);

/* Sends ERR without blocking (best effort: a full socket buffer drops it). */
void uarc__send_err(int fd, uarc_status status, const char *reason);

/* Closes after reading and discarding what the peer already sent (bounded), so the kernel ends
 * the connection with FIN rather than RST and the peer can still read our last message. */
void uarc__drain_and_close(int fd);

#endif
