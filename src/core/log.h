/* Formatting front end of the logging hook, and the detail strings errors carry. Internal. */
#ifndef UARC_CORE_LOG_H
#define UARC_CORE_LOG_H

#include "uarc/common.h"

#if defined(__GNUC__)
#define UARC__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define UARC__PRINTF(f, a)
#endif

/* Formats and hands the message to logger->fn when set and `level` is high enough. */
void uarc__log(const uarc_logger *logger, uarc_log_level level, const char *category,
               const char *fmt, ...) UARC__PRINTF(4, 5);

/* Writes a formatted detail string into `out` when out is not NULL and size > 0 (callers pass
 * an optional reason buffer straight through). */
void uarc__set_detail(char *out, size_t size, const char *fmt, ...) UARC__PRINTF(3, 4);

#endif
