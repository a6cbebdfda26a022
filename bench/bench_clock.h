/* The clocks the benchmark programs read. */
#ifndef UARC_BENCH_CLOCK_H
#define UARC_BENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int64_t now_ms(void)
{
    return (int64_t)(clock_s(CLOCK_MONOTONIC) * 1e3);
}

#endif
