/*
 * Chaos and backoff. A per-minute fraction f over a window of t ms is a per-server probability
 * f × t / 60000 (the windows are short, so the chance of two events in one window is ignored).
 */
#include "chaos.h"

#define MAX_BACKOFF_MS 30000

double chaos_uniform(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (double)(x >> 11) / 9007199254740992.0; /* 2^53 */
}

chaos_event chaos_draw(const chaos_config *config, int64_t elapsed_ms, uint64_t *state)
{
    double scale = (double)elapsed_ms / 60000.0;
    double u = chaos_uniform(state);
    const double p[4] = {config->drop_per_min * scale, config->restart_per_min * scale,
                         config->silent_per_min * scale, config->garbage_per_min * scale};
    const chaos_event events[4] = {CHAOS_DROP, CHAOS_RESTART, CHAOS_SILENT, CHAOS_GARBAGE};
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        sum += p[i];
        if (u < sum)
            return events[i];
    }
    return CHAOS_NONE;
}

int64_t chaos_backoff(int64_t base_ms, uint32_t failures, uint64_t *state)
{
    int64_t cap = base_ms > MAX_BACKOFF_MS ? base_ms : MAX_BACKOFF_MS;
    int64_t delay = base_ms;
    for (uint32_t i = 0; i < failures && delay < cap; i++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    double jitter = 0.75 + 0.5 * chaos_uniform(state);
    return (int64_t)((double)delay * jitter);
}
