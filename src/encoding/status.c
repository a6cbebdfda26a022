#include <string.h>

#include "uarc/common.h"
#include "encoding/status_table.h"

UARC_API const char *uarc_status_name(uarc_status status)
{
    /* The low 16 bits carry info flags that do not change which code this is. */
    uint32_t code = status & 0xFFFF0000u;
    size_t lo = 0, hi = uarc__status_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = uarc__status_by_value[mid].value;
        if (v == code)
            return uarc__status_by_value[mid].name;
        if (v < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "Unknown";
}

UARC_API bool uarc_status_from_name(const char *name, uarc_status *out)
{
    size_t lo = 0, hi = uarc__status_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, uarc__status_by_name[mid].name);
        if (cmp == 0) {
            *out = uarc__status_by_name[mid].value;
            return true;
        }
        if (cmp > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}
