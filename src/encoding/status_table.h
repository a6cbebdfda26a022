/* The generated status code tables (src/encoding/status_codes.c). Internal. */
#ifndef UARC_ENCODING_STATUS_TABLE_H
#define UARC_ENCODING_STATUS_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct uarc__status_entry {
    uint32_t value;
    const char *name;
    const char *description;
} uarc__status_entry;

extern const uarc__status_entry uarc__status_by_value[]; /* sorted by value */
extern const uarc__status_entry uarc__status_by_name[];  /* sorted by name (strcmp) */
extern const size_t uarc__status_count;

#endif
