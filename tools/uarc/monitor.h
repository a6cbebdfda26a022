/* Subscriptions as the tool prints them: shared by `uarc monitor` and `uarc listen --monitor`. */
#ifndef UARC_TOOL_MONITOR_H
#define UARC_TOOL_MONITOR_H

#include "uarc/uarc.h"
#include "output.h"
#include "sink.h"

/* One subscription as the tool reports it: its data and events go to `out`, its subscription,
 * item and gap lines to stdout. */
typedef struct monitor_sink {
    data_sink *out; /* NULL: sink_jsonl() */
    bool json;
    const char *server_uri;   /* added to every event when not NULL */
    const char *publisher_id; /* who the data is from, for a broker: the ServerUri, or the URL */
    const uarc_nodeid *nodes; /* the items' nodes, in the order they were added */
    size_t node_count;
    /* an event item after them, when event_node is not NULL: its select clauses */
    const uarc_nodeid *event_node;
    const char *const *select;
    size_t select_count;
    uarc_nodeid of_type;        /* i=0: no where clause */
    unsigned long count, limit; /* data and event lines printed; at `limit` (0: none), no more */
    uarc_subscription *subscription; /* set by monitor_subscribe() */
    bool paused;                     /* publishing switched off by the sink (backlog full) */
    /* Kept by a sink with a status channel: the last message the broker confirmed, the state
     * last published (static string), when the status is to be published again with a newer
     * confirmed number (0: it is up to date), whether the sink lists this subscription. */
    uint32_t confirmed_id, confirmed_sequence;
    const char *status_state;
    int64_t status_due;
    bool status_listed;
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

/* Starts a line for `event`, with server_uri when the subscription has one. */
void monitor_begin_line(out_line *line, const monitor_sink *m, const char *event);
/* Reports messages `from`..`to` (0: open-ended) of subscription `subscription_id` as lost: a
 * gap line on stdout and, when the sink has one, on its status channel. `resend`: the server
 * was asked to send the values that changed inside the gap. */
void monitor_report_gap(monitor_sink *m, uint32_t subscription_id, uint32_t from, uint32_t to,
                        uarc_status reason, bool resend);

/* Creates a subscription on `client` with one data item per node of `sink` (and the event item),
 * printing to `sink`
 * (which must outlive the client). Returns Good or BadOutOfMemory. */
uarc_status monitor_subscribe(uarc_client *client, monitor_sink *sink, const monitor_params *p,
                              uarc_subscription **subscription);

#endif
