#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static void append(out_line *line, const char *s, size_t n)
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
    append(line, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1–4), or 0 when it is not valid. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static void append_json_string(out_line *line, const char *value, size_t length)
{
    const unsigned char *s = (const unsigned char *)value;
    append(line, "\"", 1);
    for (size_t i = 0; i < length;) {
        unsigned char c = s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            append(line, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            append(line, esc, 6);
            i++;
        } else {
            size_t n = utf8_sequence(s + i, length - i);
            if (n == 0) {
                append(line, "\\ufffd", 6);
                i++;
            } else {
                append(line, value + i, n);
                i += n;
            }
        }
    }
    append(line, "\"", 1);
}

void out_begin(out_line *line, bool json, const char *event)
{
    memset(line, 0, sizeof *line);
    line->json = json;
    if (json) {
        append_str(line, "{\"event\":");
        append_json_string(line, event, strlen(event));
    } else {
        append_str(line, event);
    }
}

void out_field(out_line *line, const char *key, const char *value, size_t length)
{
    if (line->json) {
        append(line, ",", 1);
        append_json_string(line, key, strlen(key));
        append(line, ":", 1);
        append_json_string(line, value, length);
        return;
    }
    append(line, " ", 1);
    append_str(line, key);
    append(line, "=", 1);
    bool plain = length > 0;
    for (size_t i = 0; i < length && plain; i++)
        plain = (unsigned char)value[i] > 0x20 && value[i] != '"' && value[i] != '\\' &&
                (unsigned char)value[i] < 0x7f;
    if (plain)
        append(line, value, length);
    else
        append_json_string(line, value, length);
}

void out_field_str(out_line *line, const char *key, const char *value)
{
    out_field(line, key, value, strlen(value));
}

void out_field_raw(out_line *line, const char *key, const char *json_value)
{
    append(line, line->json ? "," : " ", 1);
    if (line->json)
        append_json_string(line, key, strlen(key));
    else
        append_str(line, key);
    append(line, line->json ? ":" : "=", 1);
    append_str(line, json_value);
}

void out_end(out_line *line)
{
    if (line->json)
        append(line, "}", 1);
    if (!line->failed) {
        fputs(line->text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    free(line->text);
    memset(line, 0, sizeof *line);
}
