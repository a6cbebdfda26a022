/* Little-endian loads and stores: the byte order of every OPC UA binary field; and copies of
 * field widths. Internal. */
#ifndef UARC_CORE_ENDIAN_H
#define UARC_CORE_ENDIAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define UARC__BIG_ENDIAN 1
#define UARC__LE16(v)    __builtin_bswap16(v)
#define UARC__LE32(v)    __builtin_bswap32(v)
#define UARC__LE64(v)    __builtin_bswap64(v)
#else
#define UARC__BIG_ENDIAN 0
#define UARC__LE16(v)    (v)
#define UARC__LE32(v)    (v)
#define UARC__LE64(v)    (v)
#endif

static inline uint16_t uarc__ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return UARC__LE16(v);
}

static inline uint32_t uarc__ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return UARC__LE32(v);
}

static inline uint64_t uarc__ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return UARC__LE64(v);
}

static inline void uarc__st16(uint8_t *p, uint16_t v)
{
    v = UARC__LE16(v);
    memcpy(p, &v, 2);
}

static inline void uarc__st32(uint8_t *p, uint32_t v)
{
    v = UARC__LE32(v);
    memcpy(p, &v, 4);
}

static inline void uarc__st64(uint8_t *p, uint64_t v)
{
    v = UARC__LE64(v);
    memcpy(p, &v, 8);
}

/* Copies `n` bytes, where `n` is mostly a field's width: for 1, 2, 4, 8 and 16 a move of a width
 * the compiler knows rather than a call to memcpy (a value per data change on the hot path). */
static inline void uarc__copy_small(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 1:
        memcpy(dst, src, 1);
        break;
    case 2:
        memcpy(dst, src, 2);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    case 16:
        memcpy(dst, src, 16);
        break;
    default:
        memcpy(dst, src, n);
        break;
    }
}

#endif
