/* The allocation functions every layer of uarc uses, through the allocator hook. Internal. */
#ifndef UARC_CORE_ALLOC_H
#define UARC_CORE_ALLOC_H

#include <stddef.h>

void *uarc__malloc(size_t size);
void *uarc__calloc(size_t count, size_t size);
void *uarc__realloc(void *ptr, size_t size);
void uarc__free(void *ptr);
/* Copies `length` bytes into a new NUL-terminated buffer; NULL when out of memory. */
char *uarc__strndup(const void *data, size_t length);

#endif
