/* uarc listen: the options of one run (listen_args.c reads and checks them; listen.c serves). */
#ifndef UARC_TOOL_LISTEN_H
#define UARC_TOOL_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "uarc/uarc.h"
#include "args.h"
#include "commands.h"
#include "monitor.h"

typedef struct listen_args {
    common_args common; /* --json, --verbose, --help, --timeout (stop after), identity, security */
    const char **binds;
    size_t bind_count;
    unsigned long port;
    uarc_allowlist *allowlist;
    size_t allow_sources;
    double hello_timeout;
    unsigned long max_pending;
    unsigned long count;
    bool pause_rejected;
    /* what to do on each server */
    const char **ops; /* "r:NODEID" or "b:NODEID", in command-line order */
    size_t op_count;
    bool stay, accept_only;
    /* --monitor: the nodes subscribed to on each server */
    uarc_nodeid *monitors;
    size_t monitor_count;
    monitor_events_args events; /* --events, --select, --of-type: an event item too */
    unsigned long interval, queue;
    double sampling; /* < 0: not given */
    /* milliseconds; 0: the client's defaults */
    unsigned long connect_timeout, request_timeout, keepalive;
    unsigned long memory_budget_mib; /* 0: the hub's default */
    unsigned long max_handshakes;    /* 0: the hub's default */
    uint32_t gather;                 /* uarc_reverse_hub_config.gather_ms (0: automatic) */
    bool gather_given;
    bool reuse_port;
    mqtt_args mqtt; /* --mqtt: --monitor data to a broker */
} listen_args;

/* Reads and checks the command line into *a (which it initializes). Returns -1 to go on, or the
 * exit status to end with (EXIT_OK after --help, EXIT_USAGE with a message on stderr,
 * EXIT_FAILED out of memory). listen_args_free() is due either way. */
int listen_args_read(int argc, char **argv, listen_args *a);
void listen_args_free(listen_args *a);

#endif
