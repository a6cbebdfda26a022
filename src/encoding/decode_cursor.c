/* The decoder's failure path and its budget charges (decode_cursor.h). */
#include <stdarg.h>
#include <stdio.h>

#include "encoding/decode_cursor.h"

COLD uarc_status uarc__dec_fail(dec *d, uarc_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return status;
}

COLD uarc_status uarc__dec_fail_short(dec *d, size_t need)
{
    return uarc__dec_fail(d, UARC_BadDecodingError, "needs %zu bytes, %zu left", need,
                          (size_t)(d->end - d->pos));
}

COLD uarc_status uarc__dec_at(dec *d, uarc_status status, const char *name, size_t index)
{
    if (d->nseg == UARC__DEC_MAX_SEGMENTS) {
        memmove(d->seg, d->seg + 1, (UARC__DEC_MAX_SEGMENTS - 1) * sizeof d->seg[0]);
        d->nseg--;
        d->seg_dropped = true;
    }
    d->seg[d->nseg++] = (uarc__dec_segment){name, index};
    return status;
}

COLD void uarc__dec_write_detail(const dec *d, const uarc_type *type, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    size_t n = (size_t)snprintf(out, size, "%s%s", type->name, d->seg_dropped ? "..." : "");
    for (uint32_t i = d->nseg; i-- > 0 && n < size;) {
        const uarc__dec_segment *sg = &d->seg[i];
        if (sg->name)
            n += (size_t)snprintf(out + n, size - n, ".%s", sg->name);
        else
            n += (size_t)snprintf(out + n, size - n, "[%zu]", sg->index);
    }
    if (n < size)
        snprintf(out + n, size - n, ": %s", d->msg);
}

/* The budget is charged ahead in steps (one shared counter update per step, not per value);
 * what a decode did not use goes back when it ends. */
#define CHARGE_STEP 4096u

bool uarc__dec_charge(dec *d, size_t size)
{
    size_t step = size - d->credit;
    if (step < CHARGE_STEP)
        step = CHARGE_STEP;
    if (step > d->alloc_left)
        step = d->alloc_left; /* never more than the decode may allocate */
    if (!uarc__budget_charge(d->budget, step)) {
        step = size - d->credit; /* near the budget's end: only what this value needs */
        if (!uarc__budget_charge(d->budget, step))
            return false;
    }
    d->charged += step;
    d->credit += step;
    return true;
}
