/* The allocation functions every part of uarc uses; they go through the allocator hook. */
#ifndef UARC_ENCODING_ALLOC_H
#define UARC_ENCODING_ALLOC_H

#include <stddef.h>

void *uarc__malloc(size_t size);
void *uarc__calloc(size_t count, size_t size);
void *uarc__realloc(void *ptr, size_t size);
void uarc__free(void *ptr);
/* Copies `length` bytes into a new NUL-terminated buffer; NULL when out of memory. */
char *uarc__strndup(const void *data, size_t length);

#endif
