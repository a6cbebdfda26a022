#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "uarc/endpoint_url.h"
#include "uarc/types.h"

bool args_parse(const char *command, const arg_spec *specs, int argc, char **argv,
                arg_handler handler, void *ctx)
{
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        /* "-5" and "-.5" are values (write ... Int32 -5), never options. */
        bool negative_number = arg[0] == '-' && (isdigit((unsigned char)arg[1]) || arg[1] == '.');
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0 || negative_number) {
            if (!handler(ctx, -1, arg))
                return false;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const arg_spec *spec = NULL;
        for (const arg_spec *s = specs; s->name; s++)
            if (strlen(s->name) == name_len && strncmp(s->name, arg, name_len) == 0)
                spec = s;
        if (!spec) {
            fprintf(stderr, "uarc %s: unknown option %.*s (see uarc %s --help)\n", command,
                    (int)name_len, arg, command);
            return false;
        }
        const char *value = NULL;
        if (spec->takes_value) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                fprintf(stderr, "uarc %s: %s needs a value\n", command, spec->name);
                return false;
            }
        } else if (eq) {
            fprintf(stderr, "uarc %s: %s takes no value\n", command, spec->name);
            return false;
        }
        if (!handler(ctx, spec->id, value))
            return false;
    }
    return true;
}

bool args_uint(const char *command, const char *option, const char *text, unsigned long max,
               unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v > max) {
        fprintf(stderr, "uarc %s: %s: expected a whole number from 0 to %lu, got \"%s\"\n", command,
                option, max, text);
        return false;
    }
    *out = v;
    return true;
}

bool args_seconds(const char *command, const char *option, const char *text, double max,
                  double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v <= 0 || v > max) {
        fprintf(stderr, "uarc %s: %s: expected seconds above 0 and at most %g, got \"%s\"\n",
                command, option, max, text);
        return false;
    }
    *out = v;
    return true;
}

bool args_nodeid(const char *command, const char *what, const char *text)
{
    uarc_nodeid id;
    if (uarc_nodeid_parse(text, SIZE_MAX, &id) == UARC_Good) {
        uarc_clear(&id, UARC_T(NodeId));
        return true;
    }
    fprintf(stderr, "uarc %s: %s: not a NodeId: \"%s\" (try i=2258 or ns=1;s=Name)\n", command,
            what, text);
    return false;
}

bool args_url(const char *command, const char *what, const char *text)
{
    char reason[256];
    if (uarc_endpoint_url_check((uarc_view){(const uint8_t *)text, strlen(text)}, reason,
                                sizeof reason) == UARC_Good)
        return true;
    fprintf(stderr, "uarc %s: %s: not an opc.tcp URL: \"%s\": %s\n", command, what, text, reason);
    return false;
}

bool args_read_first_line(const char *command, const char *option, const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "uarc %s: %s: cannot read %s: %s\n", command, option, path,
                strerror(errno));
        return false;
    }
    setvbuf(f, NULL, _IONBF, 0); /* no stdio buffer keeps a copy of the secret */
    char line[1024];
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    args_free_secret(*out);
    *out = strdup(line);
    args_wipe(line, sizeof line);
    return *out != NULL;
}

void args_wipe(void *p, size_t n)
{
    volatile unsigned char *b = p;
    while (n--)
        *b++ = 0;
}

void args_free_secret(char *s)
{
    if (s)
        args_wipe(s, strlen(s));
    free(s);
}

void args_log_to_stderr(void *user_data, uarc_log_level level, const char *category,
                        const char *message)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    (void)user_data;
    fprintf(stderr, "uarc: %s: %s: %s\n", names[level & 3], category, message);
}

void args_log_trust_to_stderr(void *user_data, uarc_log_level level, const char *category,
                              const char *message)
{
    if (strcmp(category, "trust") == 0)
        args_log_to_stderr(user_data, level, category, message);
}
