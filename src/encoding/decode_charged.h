/* Decoding charged to the shared memory budget. Internal. */
#ifndef UARC_ENCODING_DECODE_CHARGED_H
#define UARC_ENCODING_DECODE_CHARGED_H

#include "core/budget.h"
#include "uarc/types.h"

/*
 * uarc_decode() whose allocations are charged to `budget` before they are made; one that would
 * exceed it fails the decode with BadResponseTooLarge. While it runs, up to 4 KiB more than it
 * has allocated may be charged (in steps, never past the budget's limit). On Good, *charged is
 * what the value holds (release it once the value is freed); on failure nothing stays charged
 * and *charged is 0.
 */
uarc_status uarc__decode_charged(const void *data, size_t length, size_t *offset, void *dst,
                                 const uarc_type *type, const uarc_decode_config *options,
                                 uarc_memory_budget *budget, size_t *charged);

#endif
