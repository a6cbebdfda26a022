/* Internal tables generated next to uarc_types[] (src/encoding/types_generated.c). */
#ifndef UARC_ENCODING_TYPE_TABLE_H
#define UARC_ENCODING_TYPE_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct uarc__type_by_id {
    uint32_t id;
    uint16_t index; /* into uarc_types[] */
} uarc__type_by_id;

/* Types with a DefaultBinary encoding, sorted by the encoding's numeric id. */
extern const uarc__type_by_id uarc__types_by_encoding_id[];
extern const size_t uarc__types_by_encoding_id_count;

/* The values of one enumeration with their schema names, sorted by value. */
typedef struct uarc__enum_value {
    int32_t value;
    const char *name;
} uarc__enum_value;

typedef struct uarc__enum_table {
    const uarc__enum_value *values; /* NULL for an option set */
    size_t count;
} uarc__enum_table;

/* One table per enumeration type, in uarc_types[] order: the type at index i has
 * uarc__enum_tables[i - uarc__enum_first]. */
extern const uarc__enum_table uarc__enum_tables[];
extern const size_t uarc__enum_first;
extern const size_t uarc__enum_table_count;

/* Attribute names indexed by attribute id; NULL where no attribute has the id. */
extern const char *const uarc__attribute_names[];
extern const size_t uarc__attribute_name_count;

#endif
