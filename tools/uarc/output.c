#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "uarc/types.h"

void out_append(out_line *line, const char *s, size_t n)
{
    if (line->failed)
        return;
    if (line->length + n + 1 > line->capacity) {
        size_t cap = line->capacity ? line->capacity : 128;
        while (cap < line->length + n + 1)
            cap *= 2;
        char *grown = realloc(line->text, cap);
        if (!grown) {
            line->failed = true;
            return;
        }
        line->text = grown;
        line->capacity = cap;
    }
    memcpy(line->text + line->length, s, n);
    line->length += n;
    line->text[line->length] = '\0';
}

static void append_str(out_line *line, const char *s)
{
    out_append(line, s, strlen(s));
}

/* The library's JSON string writer, so the tool's strings read as uarc_json_encode()'s. */
void out_append_json_string(out_line *line, const char *value, size_t length)
{
    size_t n;
    char *json = uarc_json_string(value, length, &n);
    if (!json)
        line->failed = true;
    else
        out_append(line, json, n);
    uarc_free(json);
}

void out_begin(out_line *line, bool json, const char *event)
{
    memset(line, 0, sizeof *line);
    line->json = json;
    if (json) {
        append_str(line, "{\"event\":");
        out_append_json_string(line, event, strlen(event));
    } else {
        append_str(line, event);
    }
}

void out_field(out_line *line, const char *key, const char *value, size_t length)
{
    if (line->json) {
        out_append(line, ",", 1);
        out_append_json_string(line, key, strlen(key));
        out_append(line, ":", 1);
        out_append_json_string(line, value, length);
        return;
    }
    out_append(line, " ", 1);
    append_str(line, key);
    out_append(line, "=", 1);
    bool plain = length > 0;
    for (size_t i = 0; i < length && plain; i++)
        plain = (unsigned char)value[i] > 0x20 && value[i] != '"' && value[i] != '\\' &&
                (unsigned char)value[i] < 0x7f;
    if (plain)
        out_append(line, value, length);
    else
        out_append_json_string(line, value, length);
}

void out_field_str(out_line *line, const char *key, const char *value)
{
    out_field(line, key, value, strlen(value));
}

void out_field_raw(out_line *line, const char *key, const char *json_value)
{
    out_append(line, line->json ? "," : " ", 1);
    if (line->json)
        out_append_json_string(line, key, strlen(key));
    else
        append_str(line, key);
    out_append(line, line->json ? ":" : "=", 1);
    append_str(line, json_value);
}

void out_end(out_line *line)
{
    if (line->json)
        out_append(line, "}", 1);
    if (!line->failed) {
        fputs(line->text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    free(line->text);
    memset(line, 0, sizeof *line);
}
