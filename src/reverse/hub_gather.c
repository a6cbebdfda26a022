/*
 * Gathering (uarc_reverse_hub_config.gather_ms): after a wake-up with socket events the hub leaves
 * its sockets unread for a while, so that what arrives meanwhile is one round. Automatic (the
 * default): for as long as every server in session tolerates (uarc_client_gather_ms()); else for
 * the configured time.
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
    if (hub->opt.gather_ms > MAX_GATHER_MS && hub->opt.gather_ms != UARC_REVERSE_HUB_GATHER_OFF)
        hub->opt.gather_ms = MAX_GATHER_MS;
    hub->woke_at = hub->handshake_moved_at = -1;
    hub->nap = sleep_for;
}

/* A server counts once its session is up; while it connects, the hold after each handshake step
 * (below) keeps the pauses off its way instead, so that a server that connects and then stays
 * silent cannot hold gathering off for the others. */
void uarc__hub_gather_note(uarc_reverse_hub *hub, hub_server *s)
{
    int g = -1;
    if (hub->opt.gather_ms == 0 && s->client && !s->handshaking) {
        g = uarc_client_gather_ms(s->client);
        if (g > HUB_AUTO_GATHER_MAX_MS)
            g = HUB_AUTO_GATHER_MAX_MS;
    }
    if (g == s->gather)
        return;
    uarc__hub_gather_forget(hub, s);
    if (g >= 0)
        hub->gather_counts[g]++;
    s->gather = g;
}

void uarc__hub_gather_forget(uarc_reverse_hub *hub, hub_server *s)
{
    if (s->gather >= 0)
        hub->gather_counts[s->gather]--;
    s->gather = -1;
}

/* The window after a wake-up: what every counted server tolerates (none counted: no pause). */
static int window_ms(const uarc_reverse_hub *hub)
{
    if (hub->opt.gather_ms == UARC_REVERSE_HUB_GATHER_OFF)
        return 0;
    if (hub->opt.gather_ms)
        return (int)hub->opt.gather_ms;
    for (int ms = 0; ms <= HUB_AUTO_GATHER_MAX_MS; ms++)
        if (hub->gather_counts[ms])
            return ms;
    return 0;
}

UARC_API int uarc_reverse_hub_gather_ms(const uarc_reverse_hub *hub)
{
    int window = window_ms(hub);
    if (!window || hub->woke_at < 0 || hub->touched_count)
        return 0;
    /* For the window after a round that moved a handshake on, no pause: its next steps come at
     * full speed, and a connect storm (its slots held longer at every step otherwise) is not
     * slowed. A server that connects and then says nothing holds this off no longer than that. */
    int64_t now = uarc__now_ms();
    if (hub->handshake_moved_at >= 0 && now - hub->handshake_moved_at < window)
        return 0;
    int64_t left = hub->woke_at + window - now;
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
