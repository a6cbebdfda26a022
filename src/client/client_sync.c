/*
 * The blocking drivers: connect, call and disconnect as loops over uarc_client_process().
 */
#include <string.h>

#include "client/client_internal.h"

/* Drives the client until it reaches `target` or falls back to DISCONNECTED. */
static uarc_status wait_connected_to(uarc_client *c, uarc_client_state target)
{
    if (uarc__client_refuse_inside_receive(c, uarc__client_current_step(c)))
        return UARC_BadInvalidState;
    while (c->state != target && c->state != UARC_CLIENT_DISCONNECTED)
        uarc_client_process(c, -1);
    if (c->state == target)
        return UARC_Good;
    return c->last_status != UARC_Good ? c->last_status : UARC_BadConnectionClosed;
}

static uarc_status wait_connected(uarc_client *c)
{
    return wait_connected_to(c, c->cfg.no_session ? UARC_CLIENT_CHANNEL_OPEN
                                                  : UARC_CLIENT_SESSION_ACTIVE);
}

UARC_API uarc_status uarc_client_connect(uarc_client *c, const char *endpoint_url)
{
    uarc_status status = uarc_client_start_connect(c, endpoint_url);
    return status == UARC_Good ? wait_connected(c) : status;
}

UARC_API uarc_status uarc_client_connect_socket(uarc_client *c, int fd, const char *endpoint_url)
{
    uarc_status status = uarc_client_start_socket(c, fd, endpoint_url);
    return status == UARC_Good ? wait_connected(c) : status;
}

typedef struct blocking_call {
    bool done;
    uarc_status status;
    void *response; /* caller's struct to move the response into */
    const uarc_type *type;
} blocking_call;

static void on_blocking_response(void *user_data, uarc_status status, void *response)
{
    blocking_call *b = user_data;
    b->done = true;
    b->status = status;
    if (response && b->response) {
        /* Move: the caller's struct takes over, the client's copy is left empty. */
        memcpy(b->response, response, b->type->size);
        memset(response, 0, b->type->size);
    }
}

static uarc_status call_blocking(uarc_client *c, void *request, const uarc_type *request_type,
                                 void *response, const uarc_type *response_type, bool any_state)
{
    blocking_call b = {false, UARC_Good, response, response_type};
    if (response)
        uarc_init(response, response_type);
    if (uarc__client_refuse_inside_receive(c, request_type->name))
        return UARC_BadInvalidState;
    uarc_status status = any_state
                             ? uarc__client_send_request(c, request, request_type, response_type, 0,
                                                         on_blocking_response, &b, NULL)
                             : uarc_client_send(c, request, request_type, response_type, 0,
                                                on_blocking_response, &b, NULL);
    if (status != UARC_Good)
        return status;
    if (any_state)
        uarc__client_flush(c);
    while (!b.done)
        uarc_client_process(c, -1);
    return b.status;
}

UARC_API uarc_status uarc_client_call(uarc_client *c, void *request, const uarc_type *request_type,
                                      void *response, const uarc_type *response_type)
{
    return call_blocking(c, request, request_type, response, response_type, false);
}

UARC_API uarc_status uarc_client_create_session(uarc_client *c)
{
    if (c->state != UARC_CLIENT_CHANNEL_OPEN) {
        uarc__client_set_error(c, "CreateSession", UARC_BadInvalidState,
                               "needs an open secure channel without a session (state %s)",
                               uarc_client_state_name(c->state));
        return UARC_BadInvalidState;
    }
    if (uarc__client_refuse_inside_receive(c, "CreateSession"))
        return UARC_BadInvalidState;
    c->cfg.no_session = false;
    c->connect_deadline = uarc__client_now(c) + c->cfg.connect_timeout_ms;
    uarc__client_start_create_session(c);
    uarc__client_flush(c);
    uarc__client_finish_ending(c);
    return wait_connected_to(c, UARC_CLIENT_SESSION_ACTIVE);
}

void uarc__client_ignore_response(void *user_data, uarc_status status, void *response)
{
    (void)user_data, (void)status, (void)response;
}

/* wait_ms: how long a server that stops reading may hold CLO; 0 sends what the socket takes now. */
static uarc_status disconnect(uarc_client *c, int wait_ms)
{
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return UARC_Good;
    uarc__client_note_cause(c, UARC_Good, "closed by client");
    if (c->state == UARC_CLIENT_SESSION_ACTIVE) {
        /* CloseSession goes out just ahead of CLO and nobody waits for its answer: nothing in it
         * would change what happens next, and waiting would let a slow or silent server hold
         * the close for up to the request timeout. TCP delivers CloseSession before CLO and FIN,
         * so the server closes the session all the same. */
        uarc_CloseSessionRequest req;
        uarc_init(&req, UARC_T(CloseSessionRequest));
        req.deleteSubscriptions = true;
        uarc__client_set_state(c, UARC_CLIENT_CLOSING, UARC_Good);
        uarc__client_send_request(c, &req, UARC_T(CloseSessionRequest),
                                  UARC_T(CloseSessionResponse), 0, uarc__client_ignore_response,
                                  NULL, NULL);
    }
    uarc__client_set_state(c, UARC_CLIENT_CLOSING, UARC_Good);
    if (c->channel && (c->fd >= 0 || c->bytes_mode)) {
        uarc__channel_close(c->channel);
        if (c->receiving) {
            /* Called from a callback inside the channel's receive loop: the channel must outlive
             * that loop, so the teardown happens once control is back in uarc_client_process(). */
            uarc__client_flush(c);
            uarc__client_forget_session(c);
            uarc__client_end_connection(c, UARC_BadConnectionClosed);
            return UARC_Good;
        }
        /* Give CLO a moment to leave; a server that stops reading does not hold us. In byte mode
         * teardown keeps it for the application instead. */
        uarc__client_drain(c, wait_ms);
    }
    uarc__client_teardown(c, UARC_BadConnectionClosed);
    uarc__client_forget_session(c);
    c->last_status = UARC_Good;
    return UARC_Good;
}

UARC_API uarc_status uarc_client_disconnect(uarc_client *c)
{
    return disconnect(c, 100);
}

UARC_API uarc_status uarc_client_disconnect_now(uarc_client *c)
{
    return disconnect(c, 0);
}
