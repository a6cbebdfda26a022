/* How the tool reports: JSON Lines on stdout (--json) or readable lines. */
#ifndef UARC_TOOL_OUTPUT_H
#define UARC_TOOL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

/* A line being built; fields are added in order, then it is printed and flushed at once. */
typedef struct out_line {
    bool json;
    char *text;
    size_t length, capacity;
    bool failed; /* out of memory: the line is dropped */
} out_line;

/* Starts a line for `event` ("listening", "hello", ...). */
void out_begin(out_line *line, bool json, const char *event);
/* Adds a string field; `value` may hold any bytes (escaped for JSON; invalid UTF-8 becomes
 * U+FFFD). In text mode it prints as key=value, quoted when needed. */
void out_field(out_line *line, const char *key, const char *value, size_t length);
void out_field_str(out_line *line, const char *key, const char *value);
void out_field_raw(out_line *line, const char *key, const char *json_value);
/* Building other JSON texts in the same buffer (out_line zero-filled, json true): raw bytes, and
 * a string written by uarc_json_string(). */
void out_append(out_line *line, const char *s, size_t n);
void out_append_json_string(out_line *line, const char *value, size_t length);
/* Prints the line and a newline to stdout, flushes, frees. */
void out_end(out_line *line);

#endif
