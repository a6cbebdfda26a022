/* Subscriptions as the tool prints them: shared by `uarc monitor` and `uarc listen --monitor`. */
#ifndef UARC_TOOL_MONITOR_H
#define UARC_TOOL_MONITOR_H

#include "uarc/uarc.h"

/* Where one subscription's events go: data, gap, subscription and item lines. */
typedef struct monitor_sink {
    bool json;
    const char *server_uri;   /* added to every event when not NULL */
    const uarc_nodeid *nodes; /* the items' nodes, in the order they were added */
    size_t node_count;
    /* an event item after them, when event_node is not NULL: its select clauses */
    const uarc_nodeid *event_node;
    const char *const *select;
    size_t select_count;
    uarc_nodeid of_type;        /* i=0: no where clause */
    unsigned long count, limit; /* data and event lines printed; at `limit` (0: none), no more */
} monitor_sink;

typedef struct monitor_params {
    double interval_ms; /* 0: the library's default */
    double sampling_ms; /* < 0: the publishing interval; 0: the fastest */
    uint32_t queue_size;
    uarc_DeadbandType deadband_type;
    double deadband_value;
} monitor_params;

/* The options of an event item, shared by monitor and listen: --events NODEID, --select FIELD
 * (repeatable), --of-type NODEID. A --select field is "[ns:]Name" elements joined by "/", of
 * letters, digits and _ . - only (it is printed as a JSON key as it is). */
typedef struct monitor_events_args {
    const char *events;  /* --events NODEID; NULL: no event item */
    const char *of_type; /* --of-type NODEID */
    const char **select; /* owned array of borrowed strings */
    size_t select_count;
    uarc_nodeid node, type; /* set by monitor_events_finish(); type i=0: no where clause */
} monitor_events_args;

typedef enum monitor_events_option {
    MONITOR_OPT_EVENTS,
    MONITOR_OPT_SELECT,
    MONITOR_OPT_OF_TYPE,
} monitor_events_option;

/* Takes one of those options' values; false after printing why to stderr ("uarc COMMAND: ..."). */
bool monitor_events_arg(monitor_events_args *e, const char *command, monitor_events_option option,
                        const char *value);
/* After parsing: checks them together, fills in the default select clauses and parses the NodeIds
 * into node and type. False after printing why. */
bool monitor_events_finish(monitor_events_args *e, const char *command);
void monitor_events_free(monitor_events_args *e);

/* Creates a subscription on `client` with one data item per node of `sink` (and the event item),
 * printing to `sink`
 * (which must outlive the client). Returns Good or BadOutOfMemory. */
uarc_status monitor_subscribe(uarc_client *client, monitor_sink *sink, const monitor_params *p,
                              uarc_subscription **subscription);

#endif
