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
        size_t cap = line->capacity ? line->capacity * 2 : 128; /* 0: a zero-filled line */
        while (cap < line->length + n + 1)
            cap *= 2;
        char *grown = line->text == line->inline_text ? malloc(cap) : realloc(line->text, cap);
        if (!grown) {
            line->failed = true;
            return;
        }
        if (line->text == line->inline_text)
            memcpy(grown, line->inline_text, line->length + 1);
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

/* The library's JSON string writer, so the tool's strings read as uarc_json_encode()'s; printable
 * ASCII without quote or backslash, which it leaves as it is, is copied without it. */
void out_append_json_string(out_line *line, const char *value, size_t length)
{
    size_t plain = 0;
    while (plain < length && (unsigned char)value[plain] >= 0x20 &&
           (unsigned char)value[plain] < 0x7f && value[plain] != '"' && value[plain] != '\\')
        plain++;
    if (plain == length) {
        out_append(line, "\"", 1);
        out_append(line, value, length);
        out_append(line, "\"", 1);
        return;
    }
    size_t n;
    char *json = uarc_json_string(value, length, &n);
    if (!json)
        line->failed = true;
    else
        out_append(line, json, n);
    uarc_free(json);
}

static void reset(out_line *line, bool json)
{
    line->json = json;
    line->text = line->inline_text;
    line->text[0] = '\0';
    line->length = 0;
    line->capacity = sizeof line->inline_text;
    line->failed = false;
}

void out_begin(out_line *line, bool json, const char *event)
{
    reset(line, json);
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

void out_end_buffered(out_line *line)
{
    if (line->json)
        out_append(line, "}", 1);
    out_append(line, "\n", 1);
    if (!line->failed)
        fwrite(line->text, 1, line->length, stdout);
    if (line->text != line->inline_text)
        free(line->text);
    reset(line, line->json);
}

void out_end(out_line *line)
{
    out_end_buffered(line);
    fflush(stdout);
}

void out_flush(void)
{
    fflush(stdout);
}
