/*
 * The listener's insides, shared by listener.c (configuration, binding, handing connections
 * over) and listener_accept.c (accepting, reading RHEs, the process step).
 *
 * The socket edge. One epoll set holds the listening sockets (level-triggered, a bounded
 * number of accepts per wake-up), every pending connection (edge-triggered) and every accepted
 * connection not yet claimed (hang-up only). A pending connection keeps no buffer: its bytes wait
 * in the kernel, peeked at until the whole RHE is there, then read in one go into the listener's
 * single scratch buffer. Pending connections form a list in accept order, which is also deadline
 * order, since all share one hello timeout; accepted ones form a second list in accept order.
 */
#ifndef UARC_REVERSE_LISTENER_INTERNAL_H
#define UARC_REVERSE_LISTENER_INTERNAL_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "uarc/listener.h"
#include "core/log.h"

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

/* listener.c */
void uarc__listener_set_error(uarc_listener *l, const char *fmt, ...) UARC__PRINTF(2, 3);

/* listener_accept.c */
void uarc__listener_unlink_pending(uarc_listener *l, pending *p);
void uarc__listener_ready_unlink(uarc_listener *l, ready *r);
void uarc__listener_ready_release(uarc_listener *l, ready *r);
void uarc__listener_free_graveyard(uarc_listener *l);
void uarc__listener_drop_ready(uarc_listener *l, ready *r);
bool uarc__listener_ready_is_dead(const ready *r);

#endif
