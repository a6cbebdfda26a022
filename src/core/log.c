#include <stdarg.h>
#include <stdio.h>

#include "core/log.h"

void uarc__log(const uarc_logger *logger, uarc_log_level level, const char *category,
               const char *fmt, ...)
{
    if (!logger || !logger->fn || level < logger->min_level)
        return;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    logger->fn(logger->user_data, level, category, message);
}

void uarc__set_detail(char *out, size_t size, const char *fmt, ...)
{
    if (!out || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}
