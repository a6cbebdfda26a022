/*
 * Gathering (uarc_reverse_hub_config.gather_ms): after a wake-up with socket events the hub leaves
 * its sockets unread until gather_ms after it, so that what arrives meanwhile is one round.
 */
#include <time.h>

#include "reverse/hub_internal.h"
#include "core/clock.h"

/* The longest gathering pause. */
#define MAX_GATHER_MS 1000u

/* Sleeps `ms` milliseconds; false when a signal cut it short. */
static bool sleep_for(void *context, int ms)
{
    (void)context;
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return nanosleep(&t, NULL) == 0;
}

void uarc__hub_gather_init(uarc_reverse_hub *hub)
{
    if (hub->opt.gather_ms > MAX_GATHER_MS)
        hub->opt.gather_ms = MAX_GATHER_MS;
    hub->woke_at = hub->handshake_moved_at = -1;
    hub->nap = sleep_for;
}

UARC_API int uarc_reverse_hub_gather_ms(const uarc_reverse_hub *hub)
{
    if (!hub->opt.gather_ms || hub->woke_at < 0 || hub->touched_count)
        return 0;
    /* For gather_ms after a round that moved a handshake on, no pause: its next steps come at
     * full speed, and a connect storm (its slots held longer at every step otherwise) is not
     * slowed. A server that connects and then says nothing holds this off no longer than that. */
    int64_t now = uarc__now_ms();
    if (hub->handshake_moved_at >= 0 && now - hub->handshake_moved_at < hub->opt.gather_ms)
        return 0;
    int64_t left = hub->woke_at + hub->opt.gather_ms - now;
    return left > 0 ? (int)left : 0;
}

bool uarc__hub_gather(uarc_reverse_hub *hub, int *wait)
{
    int left = *wait == 0 ? 0 : uarc_reverse_hub_gather_ms(hub);
    if (left == 0)
        return true;
    int pause = *wait > 0 && *wait < left ? *wait : left;
    if (!hub->nap(hub->nap_context, pause)) {
        *wait = 0;
        return false;
    }
    if (*wait > 0)
        *wait -= pause;
    return true;
}

void uarc__reverse_hub_set_nap(uarc_reverse_hub *hub, bool (*nap)(void *context, int ms),
                               void *context)
{
    hub->nap = nap;
    hub->nap_context = context;
}

int uarc__reverse_hub_last_wait(const uarc_reverse_hub *hub)
{
    return hub->last_wait;
}
