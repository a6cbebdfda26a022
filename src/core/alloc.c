#include <stdlib.h>
#include <string.h>

#include "uarc/common.h"
#include "core/alloc.h"

static void *default_malloc(size_t size, void *user_data)
{
    (void)user_data;
    return malloc(size);
}

static void *default_realloc(void *ptr, size_t size, void *user_data)
{
    (void)user_data;
    return realloc(ptr, size);
}

static void default_free(void *ptr, void *user_data)
{
    (void)user_data;
    free(ptr);
}

static uarc_allocator current = {default_malloc, default_realloc, default_free, NULL};

UARC_API void uarc_set_allocator(const uarc_allocator *allocator)
{
    if (allocator)
        current = *allocator;
    else
        current = (uarc_allocator){default_malloc, default_realloc, default_free, NULL};
}

void *uarc__malloc(size_t size)
{
    return current.malloc(size ? size : 1, current.user_data);
}

void *uarc__calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = uarc__malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *uarc__realloc(void *ptr, size_t size)
{
    return current.realloc(ptr, size ? size : 1, current.user_data);
}

void uarc__free(void *ptr)
{
    if (ptr)
        current.free(ptr, current.user_data);
}

char *uarc__strndup(const void *data, size_t length)
{
    if (length == SIZE_MAX)
        return NULL;
    char *s = uarc__malloc(length + 1);
    if (!s)
        return NULL;
    if (length)
        memcpy(s, data, length);
    s[length] = '\0';
    return s;
}
