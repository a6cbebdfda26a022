/*
 * fleetsim's decisions that need randomness: re-dial backoff and the chaos knobs. Pure functions
 * over a caller-owned random state, so tests replay them with a fixed seed.
 */
#ifndef FLEETSIM_CHAOS_H
#define FLEETSIM_CHAOS_H

#include <stdint.h>

/* Per-minute fractions of the connected servers hit by each kind of chaos (0: never). */
typedef struct chaos_config {
    double drop_per_min;    /* the connection is closed (FIN) */
    double restart_per_min; /* closed, and the server forgets its sessions and subscriptions */
    double silent_per_min;  /* the server stops answering and sending, the socket stays open */
    double garbage_per_min; /* the server sends bytes that are no UA-TCP message */
} chaos_config;

typedef enum chaos_event {
    CHAOS_NONE = 0,
    CHAOS_DROP,
    CHAOS_RESTART,
    CHAOS_SILENT,
    CHAOS_GARBAGE
} chaos_event;

/* A uniform number in [0, 1). `state` must not be 0. */
double chaos_uniform(uint64_t *state);

/* What happens to one connected server over `elapsed_ms` (at most one event). */
chaos_event chaos_draw(const chaos_config *config, int64_t elapsed_ms, uint64_t *state);

/* The delay before re-dialing after `failures` connections in a row that never opened a
 * channel (0 after a good one): base × 2^failures, at most 30 s (or base when larger), then
 * ±25 % jitter so a fleet that lost its collector at once does not come back at once. */
int64_t chaos_backoff(int64_t base_ms, uint32_t failures, uint64_t *state);

#endif
