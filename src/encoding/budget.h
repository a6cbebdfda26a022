/* Charging the shared memory budget (uarc/budget.h) from inside uarc. */
#ifndef UARC_ENCODING_BUDGET_H
#define UARC_ENCODING_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#include "uarc/budget.h"
#include "uarc/types.h"

/* Takes `size` bytes from the budget; false (nothing taken) when that would exceed the limit.
 * A NULL budget takes anything. */
bool uarc__budget_charge(uarc_memory_budget *budget, size_t size);

/* Like uarc__budget_charge(), but fails unless `keep` bytes of the budget stay free afterwards. */
bool uarc__budget_charge_leaving(uarc_memory_budget *budget, size_t size, size_t keep);

/* Gives back `size` bytes taken before. NULL is ignored. */
void uarc__budget_release(uarc_memory_budget *budget, size_t size);

/*
 * uarc_decode() whose heap allocations are charged to `budget` before they are made; one that
 * would exceed it fails the decode with BadResponseTooLarge. On Good, *charged is what the value
 * holds (release it once the value is freed); on failure nothing stays charged and *charged is 0.
 */
uarc_status uarc__decode_charged(const void *data, size_t length, size_t *offset, void *dst,
                                 const uarc_type *type, const uarc_decode_options *options,
                                 uarc_memory_budget *budget, size_t *charged);

#endif
