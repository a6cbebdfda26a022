/*
 * The client's deadlines: connect and request timeouts, the channel's renewals, the session's
 * keep-alive and the deadlines of the modules built on the client.
 */

#include "uarc/nodeids.h"
#include "uarc/attributes.h"
#include "client/client_internal.h"

static int64_t keepalive_base(const uarc_client *c)
{
    if (c->cfg.keepalive_interval_ms)
        return c->cfg.keepalive_interval_ms;
    double t = c->revised_session_timeout > 0 ? c->revised_session_timeout / 3 : 20000;
    if (t > DEFAULT_KEEPALIVE_MAX_MS)
        t = DEFAULT_KEEPALIVE_MAX_MS;
    return t < 100 ? 100 : (int64_t)t;
}

/* The interval scaled by the client's jitter factor, so many sessions do not wake together;
 * never longer than configured (a server's timeout may count on it). */
static int64_t keepalive_interval(const uarc_client *c)
{
    int64_t base = keepalive_base(c);
    return base - base * c->keepalive_jitter_permille / 1000;
}

static int64_t next_deadline(const uarc_client *c)
{
    int64_t next = c->connect_deadline;
#define EARLIER(t)                                                                                 \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (t_ >= 0 && (next < 0 || t_ < next))                                                    \
            next = t_;                                                                             \
    } while (0)
    for (size_t i = 0; i < c->pending_count; i++)
        EARLIER(c->pending[i].deadline);
    if (c->channel)
        EARLIER(uarc__channel_next_deadline(c->channel));
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && !c->keepalive_in_flight)
        EARLIER(c->last_send + keepalive_interval(c));
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && c->hooks.next_deadline)
        EARLIER(c->hooks.next_deadline(c->hooks.user_data));
#undef EARLIER
    return next;
}

UARC_API int uarc_client_timeout_ms(const uarc_client *c)
{
    int64_t next = next_deadline(c);
    if (next < 0)
        return -1;
    int64_t left = next - uarc__client_now(c);
    return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void on_keepalive(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    (void)response;
    c->keepalive_in_flight = false;
    if (status == UARC_BadTimeout) {
        uarc__client_set_error(c, "keep-alive", status,
                               "the server did not answer the keep-alive read");
        uarc__client_note_cause(c, UARC_BadTimeout, "keep-alive timeout");
        uarc__client_end_connection(c, UARC_BadConnectionClosed);
    }
}

static void send_keepalive(uarc_client *c)
{
    uarc_ReadValueId node = {.nodeId = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_State),
                             .attributeId = UARC_ATTRIBUTEID_Value};
    uarc_ReadRequest req;
    uarc_init(&req, UARC_T(ReadRequest));
    req.timestampsToReturn = UARC_TimestampsToReturn_Neither;
    req.nodesToReadSize = 1;
    req.nodesToRead = &node;
    if (uarc__client_send_request(c, &req, UARC_T(ReadRequest), UARC_T(ReadResponse), 0,
                                  on_keepalive, c, NULL) == UARC_Good)
        c->keepalive_in_flight = true;
    else
        c->last_send =
            uarc__client_now(c); /* retry after an interval, not at once in a busy loop */
}

/* Timeouts, renewals, keep-alive. */
void uarc__client_tick(uarc_client *c, int64_t now)
{
    if (c->connect_deadline >= 0 && now >= c->connect_deadline && !c->ending) {
        uarc__client_note_cause(c, UARC_BadTimeout, "connect timeout");
        uarc__client_fail_connect(c, uarc__client_current_step(c), UARC_BadTimeout,
                                  "no progress within %u ms", c->cfg.connect_timeout_ms);
        return;
    }
    for (size_t i = 0; i < c->pending_count;) {
        if (c->pending[i].deadline > now) {
            i++;
            continue;
        }
        pending_request p = uarc__client_take_pending(c, i);
        if (c->channel)
            uarc__channel_forget_request(c->channel, p.request_id);
        uarc__client_set_error(c, p.service, UARC_BadTimeout,
                               "no response within the request timeout");
        p.callback(p.user_data, UARC_BadTimeout, NULL);
    }
    if (c->channel && !c->ending)
        uarc__channel_tick(c->channel, now);
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && !c->keepalive_in_flight && !c->ending &&
        now - c->last_send >= keepalive_interval(c))
        send_keepalive(c);
    if (c->state == UARC_CLIENT_SESSION_ACTIVE && !c->ending && c->hooks.tick)
        c->hooks.tick(c->hooks.user_data, now);
}
