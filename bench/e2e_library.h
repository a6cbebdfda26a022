/* bench_subscription e2e: uarc's clients against a real server (bench/e2e_library.c). */
#ifndef UARC_BENCH_E2E_LIBRARY_H
#define UARC_BENCH_E2E_LIBRARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LATENCY_BUCKETS 100000 /* 0.1 ms each: up to 10 s */
/* The latency is measured on the items whose index in their session is a multiple of this (the
 * first, the 17th, ...), as bench/sub62541.c and bench/sub_node.mjs do: a clock read per value
 * cost a quarter of uarc's CPU in the 1 x 10,000 case, which is the harness's, not the client's. */
#define LATENCY_EVERY 16

typedef struct e2e {
    uint64_t changes;
    bool measuring;
    uint32_t *latency; /* histogram */
    uint64_t late;     /* beyond the histogram */
    uint8_t *seen;     /* per session and item, until every item has reported once */
    size_t unseen;
} e2e;

/* The latency below which a share `q` of the samples lies, in milliseconds. */
double e2e_latency_quantile(const e2e *run, double q);

/* GATHER: "auto", "off" or milliseconds (e2e_library.c) */
int end_to_end(const char *url, size_t sessions, size_t items, double seconds, double interval,
               const char *gather);

#endif
