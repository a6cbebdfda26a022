/* The shared memory budget: a counter and a ceiling, updated with compare-and-swap so that the
 * check and the charge are one step even when clients on several threads share it. */
#include <stdatomic.h>

#include "core/alloc.h"
#include "core/budget.h"

struct uarc_memory_budget {
    size_t limit;
    atomic_size_t used;
    atomic_size_t peak;
};

UARC_API uarc_memory_budget *uarc_memory_budget_new(size_t limit)
{
    uarc_memory_budget *b = uarc__malloc(sizeof *b);
    if (!b)
        return NULL;
    b->limit = limit ? limit : UARC_MEMORY_BUDGET_DEFAULT;
    atomic_init(&b->used, 0);
    atomic_init(&b->peak, 0);
    return b;
}

UARC_API void uarc_memory_budget_delete(uarc_memory_budget *budget)
{
    uarc__free(budget);
}

UARC_API size_t uarc_memory_budget_limit(const uarc_memory_budget *budget)
{
    return budget->limit;
}

UARC_API size_t uarc_memory_budget_used(const uarc_memory_budget *budget)
{
    return atomic_load(&((uarc_memory_budget *)budget)->used);
}

UARC_API size_t uarc_memory_budget_peak(const uarc_memory_budget *budget)
{
    return atomic_load(&((uarc_memory_budget *)budget)->peak);
}

bool uarc__budget_charge(uarc_memory_budget *budget, size_t size)
{
    return uarc__budget_charge_leaving(budget, size, 0);
}

bool uarc__budget_charge_leaving(uarc_memory_budget *budget, size_t size, size_t keep)
{
    if (!budget || !size)
        return true;
    size_t ceiling = keep < budget->limit ? budget->limit - keep : 0;
    size_t used = atomic_load(&budget->used);
    do {
        if (used > ceiling || size > ceiling - used)
            return false;
    } while (!atomic_compare_exchange_weak(&budget->used, &used, used + size));
    size_t now = used + size, peak = atomic_load(&budget->peak);
    while (now > peak && !atomic_compare_exchange_weak(&budget->peak, &peak, now))
        ;
    return true;
}

void uarc__budget_release(uarc_memory_budget *budget, size_t size)
{
    if (budget && size)
        atomic_fetch_sub(&budget->used, size);
}
