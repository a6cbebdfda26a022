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

/* Attribute names indexed by attribute id; NULL where no attribute has the id. */
extern const char *const uarc__attribute_names[];
extern const size_t uarc__attribute_name_count;

#endif
