/* The monotonic clock every timeout in uarc is measured on. Internal. */
#ifndef UARC_CORE_CLOCK_H
#define UARC_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
int64_t uarc__now_ms(void);

#endif
