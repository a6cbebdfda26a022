/*
 * What the client lends to the modules built on it (subscriptions) and nothing more: its clock,
 * its logger and request timeout, and hooks that tell a module when a session became active,
 * when the connection was lost, and that let it add its own deadline to the client's and run
 * when that deadline passes. Requests go out through the public uarc_client_send().
 */
#ifndef UARC_CLIENT_INTERNAL_H
#define UARC_CLIENT_INTERNAL_H

#include "uarc/client.h"

typedef struct uarc__client_hooks {
    /* The session is active: a new one (`resumed` false) or the previous one re-activated on a
     * new secure channel. Runs inside the response that completed the activation. */
    void (*session_active)(void *user_data, bool resumed);
    /* The connection ended; requests in flight have been failed just before. */
    void (*connection_lost)(void *user_data);
    /* The module's next deadline in the client's clock, -1 for none. */
    int64_t (*next_deadline)(void *user_data);
    /* Runs from the client's tick while the session is active. */
    void (*tick)(void *user_data, int64_t now_ms);
    /* uarc_client_delete(): the module frees itself (after the connection_lost call). */
    void (*destroy)(void *user_data);
    void *user_data;
} uarc__client_hooks;

/* Installs `hooks` (copied; NULL removes them). One set per client. */
void uarc__client_set_hooks(uarc_client *client, const uarc__client_hooks *hooks);
/* The user_data of the installed hooks, NULL when none. */
void *uarc__client_hooks_user_data(const uarc_client *client);
/* The protocol's clock: the application's in byte mode, else a monotonic one. */
int64_t uarc__client_now(const uarc_client *client);
const uarc_logger *uarc__client_logger(const uarc_client *client);
uint32_t uarc__client_request_timeout(const uarc_client *client);

#endif
