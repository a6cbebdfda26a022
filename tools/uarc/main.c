/* uarc: the command-line tool. Dispatches to one subcommand per verb. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "uarc/uarc.h"
#include "args.h"
#include "commands.h"

static const char main_help[] =
    "usage: uarc COMMAND [OPTIONS]\n"
    "\n"
    "OPC UA Reverse Connect from the client side.\n"
    "\n"
    "commands:\n"
    "  listen     accept servers that dial in (Reverse Connect) and report each step\n"
    "  endpoints  list a server's endpoints\n"
    "  read       read the value of nodes\n"
    "  write      write the value of a node\n"
    "  browse     browse a node's references (--recursive: the tree below it)\n"
    "  call       call a method\n"
    "  monitor    subscribe to nodes and print every change, across lost connections\n"
    "  version    print the version\n"
    "\n"
    "'uarc COMMAND --help' describes a command. Exit codes: 0 done, 1 failed, 2 usage error.\n";

/* `uarc listen` holds one descriptor per server: a fleet of thousands needs more than the usual
 * soft limit of 1024, and the hard limit is the administrator's real ceiling. */
static void raise_descriptor_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

int main(int argc, char **argv)
{
    raise_descriptor_limit();
    if (argc < 2) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "listen") == 0)
        return cmd_listen(argc - 2, argv + 2);
    if (strcmp(cmd, "monitor") == 0)
        return cmd_monitor(argc - 2, argv + 2);
    static const char *const client_commands[] = {"endpoints", "read", "write", "browse", "call"};
    for (size_t i = 0; i < sizeof client_commands / sizeof *client_commands; i++)
        if (strcmp(cmd, client_commands[i]) == 0)
            return cmd_client(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("uarc %s\n", UARC_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(main_help, stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "uarc: unknown command \"%s\"\n\n%s", cmd, main_help);
    return EXIT_USAGE;
}
