/*
 * The deadline heap and the per-server backoff (see hub_timers.h).
 */
#include "reverse/hub_timers.h"
#include "uarc/status_codes.h"
#include "core/alloc.h"

void uarc__heap_node_init(uarc__heap_node *node)
{
    node->due = -1;
    node->index = UARC__HEAP_ABSENT;
}

static void place(uarc__heap *heap, uarc__heap_node *node, size_t i)
{
    heap->items[i] = node;
    node->index = i;
}

static void sift_up(uarc__heap *heap, size_t i)
{
    uarc__heap_node *node = heap->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap->items[parent]->due <= node->due)
            break;
        place(heap, heap->items[parent], i);
        i = parent;
    }
    place(heap, node, i);
}

static void sift_down(uarc__heap *heap, size_t i)
{
    uarc__heap_node *node = heap->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap->count)
            break;
        if (child + 1 < heap->count && heap->items[child + 1]->due < heap->items[child]->due)
            child++;
        if (node->due <= heap->items[child]->due)
            break;
        place(heap, heap->items[child], i);
        i = child;
    }
    place(heap, node, i);
}

void uarc__heap_remove(uarc__heap *heap, uarc__heap_node *node)
{
    size_t i = node->index;
    if (i == UARC__HEAP_ABSENT)
        return;
    node->index = UARC__HEAP_ABSENT;
    uarc__heap_node *last = heap->items[--heap->count];
    if (last == node)
        return;
    place(heap, last, i);
    sift_down(heap, i);
    sift_up(heap, last->index);
}

bool uarc__heap_set(uarc__heap *heap, uarc__heap_node *node, int64_t due)
{
    if (due < 0) {
        uarc__heap_remove(heap, node);
        node->due = -1;
        return true;
    }
    if (node->index != UARC__HEAP_ABSENT) {
        int64_t was = node->due;
        node->due = due;
        if (due < was)
            sift_up(heap, node->index);
        else if (due > was)
            sift_down(heap, node->index);
        return true;
    }
    if (heap->count == heap->capacity) {
        size_t cap = heap->capacity ? heap->capacity * 2 : 16;
        uarc__heap_node **grown = uarc__realloc(heap->items, cap * sizeof *grown);
        if (!grown)
            return false;
        heap->items = grown;
        heap->capacity = cap;
    }
    node->due = due;
    place(heap, node, heap->count++);
    sift_up(heap, node->index);
    return true;
}

uarc__heap_node *uarc__heap_top(const uarc__heap *heap)
{
    return heap->count ? heap->items[0] : NULL;
}

void uarc__heap_clear(uarc__heap *heap)
{
    for (size_t i = 0; i < heap->count; i++)
        heap->items[i]->index = UARC__HEAP_ABSENT;
    uarc__free(heap->items);
    *heap = (uarc__heap){0};
}

/* ---- backoff ---- */

/* Statuses that say the server answered wrongly, not that the path to it failed: repeated, they
 * will repeat on the next dial too. */
static bool repeats_by_nature(uarc_status status)
{
    switch (status) {
    case UARC_BadConnectionClosed:
    case UARC_BadTimeout:
    case UARC_BadCommunicationError:
    case UARC_BadTcpInternalError:
    case UARC_BadOutOfMemory:
    case UARC_BadTcpNotEnoughResources:
    case UARC_BadSecureChannelClosed:
    case UARC_BadInternalError:
        return false;
    default:
        return uarc_status_is_bad(status);
    }
}

uint32_t uarc__backoff_failed(uarc__backoff *b, uarc_status status, int64_t now,
                              uint32_t initial_ms, uint32_t max_ms)
{
    if (!repeats_by_nature(status)) {
        uarc__backoff_reset(b);
        return 0;
    }
    if (status != b->last) {
        uarc__backoff_reset(b);
        b->last = status;
        return 0;
    }
    uint32_t delay = b->delay_ms ? b->delay_ms * 2 : initial_ms;
    if (delay > max_ms || delay < b->delay_ms)
        delay = max_ms;
    b->delay_ms = delay;
    b->until = now + delay;
    b->refused = 0;
    return delay;
}

bool uarc__backoff_refuses(uarc__backoff *b, int64_t now)
{
    if (!b->delay_ms || now >= b->until)
        return false;
    b->refused++;
    return true;
}

void uarc__backoff_reset(uarc__backoff *b)
{
    *b = (uarc__backoff){0};
}
