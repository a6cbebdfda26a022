/* The tool's subcommands: each returns the process exit code. */
#ifndef UARC_TOOL_COMMANDS_H
#define UARC_TOOL_COMMANDS_H

/* Exit codes shared by every subcommand. */
#define EXIT_OK     0
#define EXIT_FAILED 1 /* the work could not be done (timeout, bind failure, ...) */
/* EXIT_USAGE (2) is in args.h */

int cmd_listen(int argc, char **argv);

#endif
