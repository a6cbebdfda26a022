/* Command-line parsing shared by the subcommands: options may come before or after positionals. */
#ifndef UARC_TOOL_ARGS_H
#define UARC_TOOL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "uarc/common.h"

#define EXIT_USAGE 2

typedef struct arg_spec {
    const char *name; /* "--port" */
    bool takes_value; /* "--port 4843" or "--port=4843" */
    int id;           /* returned to the handler */
} arg_spec;

/* Called per option (value NULL for flags) and per positional (id -1). Returns false after
 * printing a usage error to stderr. */
typedef bool (*arg_handler)(void *ctx, int id, const char *value);

/* Walks argv; "--" ends options. Returns false on an unknown option, a missing value or a
 * handler failure (all reported on stderr with the command name). */
bool args_parse(const char *command, const arg_spec *specs, int argc, char **argv,
                arg_handler handler, void *ctx);

/* Number parsers that print "<command>: <option>: ..." on failure. */
bool args_uint(const char *command, const char *option, const char *text, unsigned long max,
               unsigned long *out);
bool args_seconds(const char *command, const char *option, const char *text, double max,
                  double *out);

/* Argument checks made before any network work; `what` names the argument ("NODEID", "--read").
 * Print "uarc <command>: <what>: ..." and return false when the text is not a NodeId, or not an
 * opc.tcp URL (the rules of uarc_endpoint_url_check()). */
bool args_nodeid(const char *command, const char *what, const char *text);
bool args_url(const char *command, const char *what, const char *text);

/* Replaces *out with a copy of the first line of `path` (without its line end). Prints
 * "uarc <command>: <option>: cannot read <path>" and returns false when it cannot. */
bool args_read_first_line(const char *command, const char *option, const char *path, char **out);
/* Overwrites n bytes in a way the compiler keeps; frees a secret string after wiping it. */
void args_wipe(void *p, size_t n);
void args_free_secret(char *s);

/* A uarc_log_fn printing "uarc: <level>: <category>: <message>" to stderr (for --verbose). */
void args_log_to_stderr(void *user_data, uarc_log_level level, const char *category,
                        const char *message);
/* The same for the messages of category "trust" only (a certificate trusted on first use or
 * accepted without trust), which the tool shows even without --verbose. */
void args_log_trust_to_stderr(void *user_data, uarc_log_level level, const char *category,
                              const char *message);

#endif
