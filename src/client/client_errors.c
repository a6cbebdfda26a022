/*
 * A client's failures: the text of the last one ("<step>: <StatusName>: <reason>"), its status,
 * and the first cause noted for the end of a connection.
 */
#include <stdarg.h>
#include <stdio.h>

#include "client/client_internal.h"
#include "core/alloc.h"
#include "core/log.h"

void uarc__client_vset_error(uarc_client *c, const char *step, uarc_status status, const char *fmt,
                             va_list ap)
{
    char reason[1024], text[ERROR_SIZE];
    vsnprintf(reason, sizeof reason, fmt, ap);
    snprintf(text, sizeof text, "%s: %s: %s", step, uarc_status_name(status), reason);
    uarc__client_set_error_text(c, status, text);
    uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "client", "%s", text);
}

void uarc__client_set_error_text(uarc_client *c, uarc_status status, const char *text)
{
    /* the text's buffer is made at the first failure: the healthy sessions of a fleet hold none */
    if (!c->error)
        c->error = uarc__malloc(ERROR_SIZE);
    if (c->error)
        snprintf(c->error, ERROR_SIZE, "%s", text);
    c->last_status = status;
}

void uarc__client_set_error(uarc_client *c, const char *step, uarc_status status, const char *fmt,
                            ...)
{
    va_list ap;
    va_start(ap, fmt);
    uarc__client_vset_error(c, step, status, fmt, ap);
    va_end(ap);
}

/* Notes why the connection ends; the first cause noted for a connection is the one reported. */
void uarc__client_note_cause(uarc_client *c, uarc_status status, const char *reason)
{
    if (c->cause_reason[0])
        return;
    c->cause_status = status;
    snprintf(c->cause_reason, sizeof c->cause_reason, "%s", reason);
}

/* The step a failure in the current state belongs to. */
const char *uarc__client_current_step(const uarc_client *c)
{
    switch (c->state) {
    case UARC_CLIENT_CONNECTING:
        return "connect";
    case UARC_CLIENT_HELLO:
        return "HEL";
    case UARC_CLIENT_OPENING:
        return "OPN";
    case UARC_CLIENT_CREATING_SESSION:
        return "CreateSession";
    case UARC_CLIENT_ACTIVATING_SESSION:
        return "ActivateSession";
    case UARC_CLIENT_CLOSING:
        return "close";
    default:
        return "connection";
    }
}

UARC_API const char *uarc_client_error(const uarc_client *c)
{
    if (c->error)
        return c->error;
    /* no failure yet, or no memory for its text: its status still names it */
    return c->last_status != UARC_Good ? uarc_status_name(c->last_status) : "";
}
