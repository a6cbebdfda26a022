/*
 * The hub's timing pieces, free of sockets and clocks so tests drive them with injected time:
 * a binary min-heap of deadlines (each element knows its place, so a changed deadline moves in
 * O(log n)), and the per-ServerUri backoff for a server that fails the same way on every dial.
 */
#ifndef UARC_REVERSE_HUB_TIMERS_H
#define UARC_REVERSE_HUB_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/common.h"

#define UARC__HEAP_ABSENT ((size_t)-1)

/* An element of the heap; embed it and recover the container with offsetof. */
typedef struct uarc__heap_node {
    int64_t due;  /* monotonic ms */
    size_t index; /* its slot, UARC__HEAP_ABSENT when not in the heap */
} uarc__heap_node;

typedef struct uarc__heap {
    uarc__heap_node **items;
    size_t count, capacity;
} uarc__heap;

/* Marks a node as not in any heap. */
void uarc__heap_node_init(uarc__heap_node *node);
/* Puts `node` in with deadline `due`, or moves it there when it is in already; `due` < 0
 * takes it out. False when out of memory (the node is then not in the heap). */
bool uarc__heap_set(uarc__heap *heap, uarc__heap_node *node, int64_t due);
void uarc__heap_remove(uarc__heap *heap, uarc__heap_node *node);
/* The earliest node, NULL when empty. */
uarc__heap_node *uarc__heap_top(const uarc__heap *heap);
void uarc__heap_clear(uarc__heap *heap);

/*
 * Backoff of one server. A failure whose status says the server answered and the answer was
 * wrong (an impostor's certificate, an untrusted one, discovery that found nothing to use) and
 * that repeats the previous failure's status starts a backoff step: initial_ms, doubled per
 * further repeat up to max_ms. Other failures (the connection closed or timed out) and a success
 * end the backoff.
 */
typedef struct uarc__backoff {
    uarc_status last;  /* status of the last failure, Good: none */
    uint32_t delay_ms; /* of the current step, 0: not backing off */
    int64_t until;     /* connections are refused before this */
    uint32_t refused;  /* connections refused during the current step */
} uarc__backoff;

/* A failure with `status` at `now`. Returns the delay of the step it starts, 0 for none. */
uint32_t uarc__backoff_failed(uarc__backoff *b, uarc_status status, int64_t now,
                              uint32_t initial_ms, uint32_t max_ms);
/* Whether a connection arriving at `now` is refused (counted in `refused` when it is). */
bool uarc__backoff_refuses(uarc__backoff *b, int64_t now);
/* Success: no backoff, no remembered failure. */
void uarc__backoff_reset(uarc__backoff *b);

#endif
