/* Charging the shared memory budget (uarc/budget.h) from inside uarc. */
#ifndef UARC_CORE_BUDGET_H
#define UARC_CORE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#include "uarc/budget.h"

/* Takes `size` bytes from the budget; false (nothing taken) when that would exceed the limit.
 * A NULL budget takes anything. */
bool uarc__budget_charge(uarc_memory_budget *budget, size_t size);

/* Like uarc__budget_charge(), but fails unless `keep` bytes of the budget stay free afterwards. */
bool uarc__budget_charge_leaving(uarc_memory_budget *budget, size_t size, size_t keep);

/* Gives back `size` bytes taken before. NULL is ignored. */
void uarc__budget_release(uarc_memory_budget *budget, size_t size);

#endif
