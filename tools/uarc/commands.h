/* The tool's subcommands: each returns the process exit code. */
#ifndef UARC_TOOL_COMMANDS_H
#define UARC_TOOL_COMMANDS_H

#include <stdbool.h>

/* Exit codes shared by every subcommand. */
#define EXIT_OK     0
#define EXIT_FAILED 1 /* the work could not be done (timeout, bind failure, ...) */
/* EXIT_USAGE (2) is in args.h */

int cmd_listen(int argc, char **argv);
/* endpoints, read, write, browse, call */
int cmd_client(const char *command, int argc, char **argv);

struct uarc_client_config;
/* Fills a client configuration from the options the client commands share. */
void client_config_from_args(struct uarc_client_config *cfg, const char *user, const char *password,
                             bool allow_unencrypted, double timeout, bool verbose);

#endif
