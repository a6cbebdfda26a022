/* Little-endian loads and stores: the byte order of every OPC UA binary field. Internal. */
#ifndef UARC_CORE_ENDIAN_H
#define UARC_CORE_ENDIAN_H

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

#endif
