/*
 * The shared state of the fuzz_client harness (see the top of fuzz_client.c for what it does and
 * its input): the harness's server side (client_harness_peer.c), the client's callbacks and the
 * actions records ask of it (client_harness_actions.c), and the script with the end of a run
 * (fuzz_client.c). Linked into fuzz_client only.
 */
#ifndef UARC_FUZZ_CLIENT_HARNESS_H
#define UARC_FUZZ_CLIENT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "uarc/uarc.h"
#include "channel/chunk.h"
#include "secure_peer.h"

#define URL            "opc.tcp://fuzz:4840"
#define POLICY_NONE    "http://opcfoundation.org/UA/SecurityPolicy#None"
#define CHANNEL_ID     5u
#define BUFFER_SIZE    65535u /* what the harness's ACK grants, and what it accepts */
#define MAX_SEEN       64
#define MAX_TICKETS    128
#define MAX_IDLE_POLLS 2000
#define BYTE_FD        0x7FFFFFFF /* h.fd of a byte-mode connection: no descriptor at all */
#define START_TIME_MS  1000000

#define OPT_NO_ACK      0x01 /* HEL is not answered: RAW records must do it */
#define OPT_NO_RENEW    0x02 /* OPN Renew is not answered */
#define OPT_FUZZ_CREATE 0x04 /* CreateSession is left to REPLY records */
#define OPT_FUZZ_ACT    0x08 /* ActivateSession is left to REPLY records */
#define OPT_NO_SESSION  0x10 /* config.no_session */
#define OPT_USER        0x20 /* a user name and password instead of anonymous */
#define OPT_SMALL       0x40 /* small decode and message limits */
#define OPT_KEEPALIVE   0x80 /* keep-alive every 100 ms */

enum { REPLY, RAW, TICK, SEND, BROWSE, BLOCK, CLOSE, RECONNECT, SUBSCRIBE, SECURE };

#define MAX_SUBSCRIPTIONS 8

#define require(condition)                                                                         \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #condition);                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct seen_request {
    uint32_t id;
    uint32_t handle;
    const uarc_type *response_type;
    bool answered;
} seen_request;

typedef struct ticket {
    bool done;
    bool browse;
    uarc_status status;
    const uarc_type *response_type; /* NULL for a browse */
} ticket;

typedef struct frame {
    uint8_t bytes[BUFFER_SIZE + 4096];
    size_t length;
} frame;

typedef struct harness {
    bool active;
    uarc_client *client;
    bool bytes;    /* byte mode: fd is BYTE_FD while the application's transport is up */
    int fd;        /* the server's end; -1 once closed */
    int client_fd; /* the client's end, to recognize its polls */
    uint8_t options;
    uint8_t session_byte;
    /* server side of the current connection */
    uint32_t sequence, token_id;
    bool hel_seen, peer_closed, activated_once;
    uint8_t in[2 * BUFFER_SIZE];
    size_t in_length;
    uint64_t bytes_in, bytes_out; /* from and to the client, for pump() */
    seen_request seen[MAX_SEEN];
    size_t seen_count;
    /* the script */
    const uint8_t *script;
    size_t script_size, pos;
    bool blocking;
    bool in_poll; /* inside the client's poll: the client cannot be driven from here */
    unsigned idle_polls;
    /* bookkeeping */
    ticket tickets[MAX_TICKETS];
    size_t ticket_count;
    bool clean;           /* only whole, well-formed frames were sent */
    bool disconnected_us; /* the last disconnect was uarc_client_disconnect() */
    /* a secured channel (the SECURE record) */
    bool secure, sign_only;
    secure_peer peer;
    bool own_padding; /* the next MSG chunk goes out with the fuzzer's padding */
    uint8_t nonce_counter;
    /* subscriptions */
    struct watched {
        uarc_subscription *subscription; /* NULL once deleted */
        /* where the subscription `last_id` is: the last number delivered or given up in a gap */
        uint32_t last_id, last_sequence;
    } subs[MAX_SUBSCRIPTIONS];
    size_t sub_count;
} harness;

/* One run's state, the frame being built for the client, and the virtual clock (fuzz_client.c). */
extern harness h;
extern frame out_frame;
extern int64_t fake_now;

/* Prints what happens when FUZZ_CLIENT_TRACE is set, for triage. */
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- client_harness_peer.c: the server side ---- */

uint32_t get_u32(const uint8_t *p);
/* A string over `text` without a copy. */
uarc_string view(const char *text);
/* Appends to a frame (cut at its end), an encoded value, or a type's encoding NodeId. */
void put(frame *f, const void *data, size_t n);
void put_value(frame *f, const void *value, const uarc_type *type);
void put_type_id(frame *f, const uarc_type *type);
/* Writes to the client; a full socket is given to the client to read (outside blocking calls). */
void write_to_client(const uint8_t *data, size_t n);
/* A MSG chunk on the current token with the next sequence number; the body follows. */
void begin_msg(frame *f, char chunk, uint32_t request_id);
/* Sets the frame's size and writes it, sealed on a secured channel when it is a MSG. */
void send_frame(frame *f);
/* Answers request `r` with `response` (its handle set). */
void reply_value(const seen_request *r, void *response, const uarc_type *type);
/* The response type of a request type (ReadRequest: ReadResponse). */
const uarc_type *response_type_of(const uarc_type *request);
/* Reads what the client wrote and answers what the harness answers by itself. */
void serve(void);

/* ---- client_harness_actions.c: the client's callbacks and what records ask of it ---- */

/* A ticket for a callback to come (response_type NULL: a browse); NULL when all are used. */
ticket *new_ticket(const uarc_type *response_type);
void on_response(void *user_data, uarc_status status, void *response);
void on_state(void *user_data, uarc_client_state state, uarc_status status);
void on_log(void *user_data, uarc_log_level level, const char *category, const char *message);
/* After a send: a refused one must leave an error detail, and no callback follows it. */
void finish_send(ticket *t, uarc_status status);
/* The SEND, BROWSE, BLOCK and SUBSCRIBE records. */
void send_service(unsigned p);
void start_browse(void);
void run_blocking(unsigned p);
void subscribe(unsigned p);

#endif
