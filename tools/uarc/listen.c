/* uarc listen: accept servers that dial in, report each step. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uarc/uarc.h"
#include "uarc/reverse.h"
#include "ops.h"
#include "args.h"
#include "commands.h"
#include "monitor.h"
#include "output.h"

#define DEFAULT_PORT 4843

static const char listen_help[] =
    "usage: uarc listen [--bind ADDR]... [--port N] [--allow URI]... [--allow-file FILE]\n"
    "                   [--hello-timeout SECONDS] [--max-pending N] [--count N]\n"
    "                   [--timeout SECONDS] [--read NODEID]... [--browse NODEID]...\n"
    "                   [--monitor NODEID... [--interval MS] [--sampling MS] [--queue N]]\n"
    "                   [--events NODEID [--select FIELD]... [--of-type NODEID]]\n"
    "                   [--connect-timeout MS] [--request-timeout MS] [--keepalive MS]\n"
    "                   [--memory-budget MIB] [--reuse-port] [--max-handshakes N]\n"
    "                   [--mqtt mqtt://HOST[:PORT] [--mqtt-topic-prefix P] [--mqtt-qos 0|1]\n"
    "                    [--mqtt-client-id ID] [--mqtt-user U --mqtt-password-file F]\n"
    "                    [--mqtt-tls CAFILE] [--mqtt-backlog BYTES]]\n"
    "                   [--user NAME --password-file FILE [--allow-unencrypted-password]\n"
    "                    | --user-certificate FILE --user-private-key FILE]\n"
    "                   [--security-policy NAME [--security-mode MODE]\n"
    "                    [--server-certificate FILE] [--certificate FILE --private-key FILE]\n"
    "                    [--trust-list DIR | --trust-store DIR | --accept-any-certificate]]\n"
    "                   [--stay] [--accept-only] [--pause-rejected] [--json] [--verbose]\n"
    "\n"
    "Waits for OPC UA servers to dial in (Reverse Connect), reads each server's ReverseHello,\n"
    "accepts it when its ServerUri is allowed, then opens a secure channel and a session over\n"
    "that same socket (never dialing out), runs the requested operations, and reports every\n"
    "step.\n"
    "\n"
    "  --bind ADDR          address to listen on; repeat for several. Default: all interfaces,\n"
    "                       IPv4 and IPv6\n"
    "  --port N             TCP port (default 4843; 0 lets the system choose, see 'listening')\n"
    "  --reuse-port         share the port with other processes that set it too (SO_REUSEPORT):\n"
    "                       the kernel spreads new connections over them\n"
    "  --allow URI          accept the server whose ServerUri (ApplicationUri) is exactly URI;\n"
    "                       repeat for several. Without --allow/--allow-file every server is\n"
    "                       rejected\n"
    "  --allow-file FILE    one ServerUri per line, optionally followed by the EndpointUrl the\n"
    "                       server must announce; '#' starts a comment line\n"
    "  --hello-timeout S    seconds a connection has to send its ReverseHello (default 5, at most\n"
    "                       120)\n"
    "  --max-pending N      connections waiting for their ReverseHello at once (default 1024);\n"
    "                       beyond it new ones get ERR BadTcpServerTooBusy\n"
    "  --count N            exit 0 once the operations completed for N servers (with\n"
    "                       --accept-only: once N servers were accepted)\n"
    "  --timeout S          stop after S seconds: exit 1 if no server completed its operations\n"
    "                       (with --accept-only: was accepted), or fewer than --count did;\n"
    "                       exit 0 otherwise\n"
    "  --read NODEID        read the node's value on each server; repeatable\n"
    "  --browse NODEID      browse the node's references on each server; repeatable\n"
    "  --monitor NODEID     subscribe to the node's value on each server (needs --stay);\n"
    "                       repeatable. Events data, gap, subscription and item, as\n"
    "                       uarc monitor prints them, with server_uri; the subscription\n"
    "                       follows the server through its re-dials (resumed, transferred or\n"
    "                       recreated, and a gap for whatever could not be recovered)\n"
    "  --events NODEID      subscribe to the events the object reports (i=2253: the Server)\n"
    "                       on each server (needs --stay): event lines {node, fields,\n"
    "                       server_uri}, as uarc monitor prints them\n"
    "  --select FIELD       a BaseEventType field of --events by browse path (Message,\n"
    "                       0:Severity, EnabledState/Id); repeatable. Default: EventType,\n"
    "                       SourceName, Time, Message, Severity\n"
    "  --of-type NODEID     only events of this type or a subtype\n"
    "  --interval MS        publishing interval of --monitor (default 500)\n"
    "  --sampling MS        sampling interval of --monitor (default: the publishing interval;\n"
    "                       0: the fastest the server offers)\n"
    "  --queue N            values queued per monitored node (default 1)\n" MQTT_HELP
    "  --connect-timeout MS bound for connecting over a server's socket: HEL/ACK, secure\n"
    "                       channel, CreateSession, ActivateSession (default 10000)\n"
    "  --request-timeout MS bound for each request, also sent as its timeoutHint (default\n"
    "                       10000)\n"
    "  --keepalive MS       read the server state after this much idle time; a read left\n"
    "                       unanswered for --request-timeout ends the connection (reason\n"
    "                       'keep-alive timeout'). Default: a third of the session timeout, at\n"
    "                       most 5000\n"
    "  --memory-budget MIB  ceiling for what all servers' connections together buffer and\n"
    "                       decode (default 1024); over it a response fails with\n"
    "                       BadResponseTooLarge, or a connection ends with\n"
    "                       BadTcpNotEnoughResources, and the others go on\n"
    "  --max-handshakes N   servers connecting at once (HEL to session; default 64); the\n"
    "                       others wait, in their order, until one is done\n"
    "  --user NAME          session identity (default anonymous); --password-file FILE holds the\n"
    "                       password; --allow-unencrypted-password permits it on a None "
    "channel\n" SECURITY_HELP
    "                         Default: learned on the server's first dial (GetEndpoints over\n"
    "                         SecurityPolicy None, event 'discovered', then that socket is\n"
    "                         closed); its next dial opens the secured channel. Either way the\n"
    "                         certificate's subjectAltName URI must equal the ServerUri of the\n"
    "                         ReverseHello. A given certificate is pinned: trusted as given;\n"
    "                         a learned one only as the options below say\n" TRUST_LIST_HELP
    "  --stay               keep every session open; when a server's connection drops, wait for\n"
    "                       its re-dial and re-activate the session (operations are not repeated;\n"
    "                       a server that restarted and needs a new session gets them again)\n"
    "  --accept-only        report each accepted server and close its socket (no session)\n"
    "  --pause-rejected     answer rejected servers ERR BadTcpMessageTypeInvalid instead of\n"
    "                       BadTcpEndpointUrlInvalid (some servers then pause re-dialing)\n"
    "  --json               one JSON object per line on stdout (events: listening, hello,\n"
    "                       accepted, rejected, discovered, connected, read, browse,\n"
    "                       disconnected, dropped, backoff, error)\n"
    "  --verbose            log details to stderr\n"
    "\n"
    "A session's end is a 'disconnected' event with the status of its cause, its peer and a\n"
    "reason: closed by peer, reset by peer, TCP keepalive, keep-alive timeout, CLO from\n"
    "server, ERR from server, protocol violation (the status names it, such as\n"
    "BadSecureChannelIdInvalid), memory budget, unsolicited responses, closed by client;\n"
    "'cause' says it in one word: closed, reset, keepalive (the peer vanished without a FIN),\n"
    "timeout, client or error. A server failing the same way on consecutive dials is backed\n"
    "off: a 'backoff' event (status, delay_ms, refused), then its dials get ERR\n"
    "BadTcpMessageTypeInvalid until the delay has passed (doubling per repeat, at most 300 s). A\n"
    "failed connect is an 'error' event with its step, status and reason, plus 'end' (one of\n"
    "those, or connect timeout, handshake timeout, connect failed) and 'peer'. When several\n"
    "sockets claim one ServerUri the newest wins; each socket dropped for it is a 'dropped'\n"
    "event with its peer, status and reason.\n"
    "\n"
    "Rejected servers get ERR BadTcpEndpointUrlInvalid with the reason, then the socket is\n"
    "closed. SIGINT or SIGTERM closes everything and exits 0. Exit codes: 0 done, 1 failed or "
    "timed\n"
    "out, 2 usage error.\n";

enum {
    OPT_BIND,
    OPT_PORT,
    OPT_ALLOW,
    OPT_ALLOW_FILE,
    OPT_HELLO_TIMEOUT,
    OPT_MAX_PENDING,
    OPT_COUNT,
    OPT_PAUSE_REJECTED,
    OPT_READ,
    OPT_BROWSE,
    OPT_STAY,
    OPT_ACCEPT_ONLY,
    OPT_MONITOR,
    OPT_EVENTS,
    OPT_SELECT,
    OPT_OF_TYPE,
    OPT_INTERVAL,
    OPT_QUEUE,
    OPT_SAMPLING,
    OPT_CONNECT_TIMEOUT,
    OPT_REQUEST_TIMEOUT,
    OPT_KEEPALIVE,
    OPT_MEMORY_BUDGET,
    OPT_MAX_HANDSHAKES,
    OPT_REUSE_PORT,
};

static const arg_spec listen_specs[] = {
    COMMON_SPECS,
    IDENTITY_SPECS,
    {"--bind", true, OPT_BIND},
    {"--port", true, OPT_PORT},
    {"--allow", true, OPT_ALLOW},
    {"--allow-file", true, OPT_ALLOW_FILE},
    {"--hello-timeout", true, OPT_HELLO_TIMEOUT},
    {"--max-pending", true, OPT_MAX_PENDING},
    {"--count", true, OPT_COUNT},
    {"--pause-rejected", false, OPT_PAUSE_REJECTED},
    {"--read", true, OPT_READ},
    {"--browse", true, OPT_BROWSE},
    {"--stay", false, OPT_STAY},
    {"--accept-only", false, OPT_ACCEPT_ONLY},
    {"--monitor", true, OPT_MONITOR},
    {"--events", true, OPT_EVENTS},
    {"--select", true, OPT_SELECT},
    {"--of-type", true, OPT_OF_TYPE},
    {"--interval", true, OPT_INTERVAL},
    {"--queue", true, OPT_QUEUE},
    {"--sampling", true, OPT_SAMPLING},
    {"--connect-timeout", true, OPT_CONNECT_TIMEOUT},
    {"--request-timeout", true, OPT_REQUEST_TIMEOUT},
    {"--keepalive", true, OPT_KEEPALIVE},
    {"--memory-budget", true, OPT_MEMORY_BUDGET},
    {"--max-handshakes", true, OPT_MAX_HANDSHAKES},
    {"--reuse-port", false, OPT_REUSE_PORT},
    SECURITY_SPECS,
    MQTT_SPECS,
    {NULL, false, 0},
};

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
    bool reuse_port;
    mqtt_args mqtt; /* --mqtt: --monitor data to a broker */
} listen_args;

/* A number of milliseconds (or MiB) of at least 1. */
static bool positive_arg(const char *option, const char *value, unsigned long max,
                         unsigned long *out)
{
    if (!args_uint("listen", option, value, max, out))
        return false;
    if (*out == 0) {
        fprintf(stderr, "uarc listen: %s must be at least 1\n", option);
        return false;
    }
    return true;
}

static bool add_op(listen_args *a, char kind, const char *node)
{
    size_t n = strlen(node) + 3;
    char *op = malloc(n);
    const char **grown = realloc(a->ops, (a->op_count + 1) * sizeof *grown);
    if (!op || !grown) {
        free(op);
        if (grown)
            a->ops = grown;
        return false;
    }
    snprintf(op, n, "%c:%s", kind, node);
    a->ops = grown;
    a->ops[a->op_count++] = op;
    return true;
}

static bool on_listen_arg(void *ctx, int id, const char *value)
{
    listen_args *a = ctx;
    const char *cmd = "listen";
    switch (id) {
    case OPT_BIND: {
        const char **grown = realloc(a->binds, (a->bind_count + 1) * sizeof *grown);
        if (!grown)
            return false;
        a->binds = grown;
        a->binds[a->bind_count++] = value;
        return true;
    }
    case OPT_PORT:
        return args_uint(cmd, "--port", value, 65535, &a->port);
    case OPT_ALLOW:
        a->allow_sources++;
        if (uarc_allowlist_add(a->allowlist, value, NULL) != UARC_Good) {
            fprintf(stderr, "uarc listen: --allow: invalid ServerUri \"%s\"\n", value);
            return false;
        }
        return true;
    case OPT_ALLOW_FILE: {
        char detail[256];
        a->allow_sources++;
        if (uarc_allowlist_load_file(a->allowlist, value, detail, sizeof detail) != UARC_Good) {
            fprintf(stderr, "uarc listen: --allow-file: %s\n", detail);
            return false;
        }
        return true;
    }
    case OPT_HELLO_TIMEOUT:
        return args_seconds(cmd, "--hello-timeout", value, 120, &a->hello_timeout);
    case OPT_MAX_PENDING:
        if (!args_uint(cmd, "--max-pending", value, 1000000, &a->max_pending))
            return false;
        if (a->max_pending == 0) {
            fprintf(stderr, "uarc listen: --max-pending must be at least 1\n");
            return false;
        }
        return true;
    case OPT_COUNT:
        if (!args_uint(cmd, "--count", value, 1000000000, &a->count))
            return false;
        if (a->count == 0) {
            fprintf(stderr, "uarc listen: --count must be at least 1\n");
            return false;
        }
        return true;
    case OPT_PAUSE_REJECTED:
        a->pause_rejected = true;
        return true;
    case OPT_READ:
        return args_nodeid(cmd, "--read", value) && add_op(a, 'r', value);
    case OPT_BROWSE:
        return args_nodeid(cmd, "--browse", value) && add_op(a, 'b', value);
    case OPT_STAY:
        a->stay = true;
        return true;
    case OPT_ACCEPT_ONLY:
        a->accept_only = true;
        return true;
    case OPT_MONITOR: {
        uarc_nodeid *grown = realloc(a->monitors, (a->monitor_count + 1) * sizeof *grown);
        if (!grown)
            return false;
        a->monitors = grown;
        if (uarc_nodeid_parse(value, SIZE_MAX, &a->monitors[a->monitor_count]) != UARC_Good) {
            fprintf(stderr, "uarc listen: --monitor: not a NodeId: \"%s\"\n", value);
            return false;
        }
        a->monitor_count++;
        return true;
    }
    case OPT_EVENTS:
        return monitor_events_arg(&a->events, cmd, MONITOR_OPT_EVENTS, value);
    case OPT_SELECT:
        return monitor_events_arg(&a->events, cmd, MONITOR_OPT_SELECT, value);
    case OPT_OF_TYPE:
        return monitor_events_arg(&a->events, cmd, MONITOR_OPT_OF_TYPE, value);
    case OPT_INTERVAL:
        return args_uint(cmd, "--interval", value, 86400000, &a->interval);
    case OPT_QUEUE:
        return args_uint(cmd, "--queue", value, 1000000, &a->queue);
    case OPT_SAMPLING: {
        unsigned long ms;
        if (!args_uint(cmd, "--sampling", value, 86400000, &ms))
            return false;
        a->sampling = (double)ms;
        return true;
    }
    case OPT_CONNECT_TIMEOUT:
        return positive_arg("--connect-timeout", value, 86400000, &a->connect_timeout);
    case OPT_REQUEST_TIMEOUT:
        return positive_arg("--request-timeout", value, 86400000, &a->request_timeout);
    case OPT_KEEPALIVE:
        return positive_arg("--keepalive", value, 86400000, &a->keepalive);
    case OPT_MEMORY_BUDGET:
        return positive_arg("--memory-budget", value, 1024 * 1024, &a->memory_budget_mib);
    case OPT_MAX_HANDSHAKES:
        return positive_arg("--max-handshakes", value, 1000000, &a->max_handshakes);
    case OPT_REUSE_PORT:
        a->reuse_port = true;
        return true;
    default:
        if (id >= MQTT_OPT_BASE)
            return mqtt_arg(cmd, &a->mqtt, id, value);
        if (id >= SECURITY_OPT_BASE)
            return common_arg(&a->common, id, value);
        fprintf(stderr, "uarc listen: unexpected argument \"%s\" (see uarc listen --help)\n",
                value);
        return false;
    }
}

/* ---- events ---- */

typedef struct listen_state {
    bool json;
    unsigned long accepted;
} listen_state;

static void add_hello(out_line *line, const uarc_rhe *hello)
{
    out_field(line, "server_uri", (const char *)hello->server_uri.data, hello->server_uri.length);
    out_field(line, "endpoint_url", (const char *)hello->endpoint_url.data,
              hello->endpoint_url.length);
}

static void on_hello(void *user_data, const char *peer, const uarc_rhe *hello)
{
    listen_state *s = user_data;
    out_line line;
    out_begin(&line, s->json, "hello");
    out_field_str(&line, "peer", peer);
    add_hello(&line, hello);
    out_end(&line);
}

static void on_accepted(void *user_data, const uarc_reverse_connection *c)
{
    listen_state *s = user_data;
    out_line line;
    out_begin(&line, s->json, "accepted");
    out_field_str(&line, "peer", c->peer);
    out_field(&line, "server_uri", c->server_uri, c->server_uri_length);
    out_field(&line, "endpoint_url", c->endpoint_url, c->endpoint_url_length);
    out_end(&line);
}

static void on_rejected(void *user_data, const char *peer, const uarc_rhe *hello,
                        uarc_status status, const char *reason)
{
    listen_state *s = user_data;
    out_line line;
    out_begin(&line, s->json, "rejected");
    out_field_str(&line, "peer", peer);
    add_hello(&line, hello);
    out_field_str(&line, "status", uarc_status_name(status));
    out_field_str(&line, "reason", reason);
    out_end(&line);
}

static void on_error(void *user_data, const char *peer, uarc_status status, const char *reason)
{
    listen_state *s = user_data;
    out_line line;
    out_begin(&line, s->json, "error");
    out_field_str(&line, "peer", peer);
    out_field_str(&line, "status", uarc_status_name(status));
    out_field_str(&line, "reason", reason);
    out_end(&line);
}

/* ---- sessions over the inbound sockets ---- */

typedef struct session_state {
    const listen_args *args;
    listen_state *listen;
    uarc_reverse_hub *hub;
    unsigned long completed; /* distinct servers, for --count */
    char **done_uris;        /* their ServerUris: a re-dial after release is not a new server */
    size_t done_count;
    struct server_job **jobs; /* operations in progress, one per connected server */
    size_t job_count;
    monitor_sink **sinks; /* --monitor: one per server subscribed to, for the tool's life */
    size_t sink_count;
    data_sink *out; /* where --monitor data goes */
    bool closing;   /* the tool is exiting: operations cut short are not reported */
} session_state;

/*
 * The operations of one server, run without blocking: each is sent, and its response callback
 * prints the event and sends the next, so a slow or silent server delays nobody else. When all
 * are done the job is `done`; the main loop then counts the server and (without --stay) releases
 * it, outside of any client callback.
 */
typedef struct server_job {
    session_state *st;
    char *server_uri;
    uarc_client *client;
    size_t next;      /* index of the next operation in args->ops */
    uarc_nodeid node; /* the node of the operation in flight */
    bool done;        /* every operation ran */
    bool aborted;     /* the connection ended first: it goes on from `next` after a re-dial (what
                         completed is not repeated; the operation that was cut off is sent again) */
} server_job;

static bool server_done(const session_state *st, const char *server_uri)
{
    for (size_t i = 0; i < st->done_count; i++)
        if (strcmp(st->done_uris[i], server_uri) == 0)
            return true;
    return false;
}

/* Notes that `server_uri` completed its operations; counts it once. */
static void note_completed(session_state *st, const char *server_uri)
{
    for (size_t i = 0; i < st->done_count; i++)
        if (strcmp(st->done_uris[i], server_uri) == 0)
            return;
    char *copy = strdup(server_uri);
    char **grown = realloc(st->done_uris, (st->done_count + 1) * sizeof *grown);
    if (grown)
        st->done_uris = grown;
    if (!copy || !grown) {
        free(copy);
        return;
    }
    st->done_uris[st->done_count++] = copy;
    st->completed++;
}

static const char *policy_short_name(const char *uri)
{
    const char *hash = strrchr(uri, '#');
    return hash ? hash + 1 : uri;
}

/* `client` NULL: released by the tool itself (no cause to tell). */
static void print_disconnected(bool json, const char *server_uri, uarc_status status,
                               const uarc_client *client)
{
    out_line line;
    out_begin(&line, json, "disconnected");
    out_field_str(&line, "server_uri", server_uri);
    out_field_str(&line, "status", uarc_status_name(status));
    out_field_str(&line, "reason", client ? uarc_client_end_reason(client) : "closed by client");
    out_field_str(&line, "cause", client ? uarc_client_end_kind(client) : "client");
    if (client && uarc_client_peer(client)[0])
        out_field_str(&line, "peer", uarc_client_peer(client));
    out_end(&line);
}

static void job_next(server_job *job);

static ops_context job_context(const server_job *job)
{
    return (ops_context){
        .client = job->client, .json = job->st->listen->json, .server_uri = job->server_uri};
}

/* An operation whose connection ended under it (the client is no longer in session): no event;
 * the job waits for the server's re-dial and sends it again then. */
static bool cut_off(server_job *job)
{
    if (uarc_client_state_get(job->client) == UARC_CLIENT_SESSION_ACTIVE)
        return false;
    job->aborted = true;
    return true;
}

static void on_job_read(void *user_data, uarc_status status, void *response)
{
    server_job *job = user_data;
    if (job->st->closing)
        return;
    if (cut_off(job))
        return;
    ops_context ctx = job_context(job);
    uarc_ReadResponse *r = response;
    if (status == UARC_Good && r->resultsSize == 1)
        ops_print_read(&ctx, &job->node, &r->results[0]);
    else
        ops_report_error(&ctx, status == UARC_Good ? UARC_BadUnexpectedError : status);
    job->next++;
    job_next(job);
}

static void on_job_browse(void *user_data, uarc_status status, uarc_ReferenceDescription *refs,
                          size_t count)
{
    server_job *job = user_data;
    if (job->st->closing || cut_off(job)) {
        uarc_array_delete(refs, count, UARC_T(ReferenceDescription));
        return;
    }
    ops_context ctx = job_context(job);
    if (status == UARC_Good)
        ops_print_browse(&ctx, &job->node, refs, count);
    else
        ops_report_error(&ctx, status);
    uarc_array_delete(refs, count, UARC_T(ReferenceDescription));
    job->next++;
    job_next(job);
}

/* Sends the next operation, skipping those that cannot be sent; marks the job done after the
 * last. */
static void job_next(server_job *job)
{
    const listen_args *a = job->st->args;
    ops_context ctx = job_context(job);
    for (; job->next < a->op_count; job->next++) {
        if (uarc_client_state_get(job->client) != UARC_CLIENT_SESSION_ACTIVE) {
            job->aborted = true;
            return;
        }
        const char *op = a->ops[job->next];
        uarc_clear(&job->node, UARC_T(NodeId));
        if (!ops_parse_node(&ctx, op + 2, &job->node))
            continue;
        uarc_status status;
        if (op[0] == 'r') {
            uarc_ReadValueId id = {.nodeId = job->node, .attributeId = UARC_ATTRIBUTEID_Value};
            uarc_ReadRequest req;
            uarc_init(&req, UARC_T(ReadRequest));
            req.timestampsToReturn = UARC_TimestampsToReturn_Both;
            req.nodesToReadSize = 1;
            req.nodesToRead = &id;
            status = uarc_client_send(job->client, &req, UARC_T(ReadRequest), UARC_T(ReadResponse),
                                      0, on_job_read, job, NULL);
        } else {
            status = uarc_client_browse_send(job->client, &job->node, on_job_browse, job);
        }
        if (status == UARC_Good)
            return; /* its callback goes on */
        ops_report_error(&ctx, status);
    }
    uarc_clear(&job->node, UARC_T(NodeId));
    job->done = true;
}

static void job_free(server_job *job)
{
    uarc_clear(&job->node, UARC_T(NodeId));
    free(job->server_uri);
    free(job);
}

/* Counts and (without --stay) releases the servers whose operations are done. */
static void finish_jobs(session_state *st)
{
    for (size_t i = 0; i < st->job_count;) {
        server_job *job = st->jobs[i];
        if (!job->done && !job->aborted) {
            i++;
            continue;
        }
        if (job->aborted) { /* kept for the re-dial */
            i++;
            continue;
        }
        st->jobs[i] = st->jobs[--st->job_count];
        note_completed(st, job->server_uri);
        if (!st->args->stay) {
            uarc_reverse_hub_release(st->hub, job->server_uri);
            print_disconnected(st->listen->json, job->server_uri, UARC_Good, NULL);
        }
        job_free(job);
    }
}

static monitor_sink *sink_of(const session_state *st, const char *server_uri)
{
    for (size_t i = 0; i < st->sink_count; i++)
        if (strcmp(st->sinks[i]->server_uri, server_uri) == 0)
            return st->sinks[i];
    return NULL;
}

/* --monitor: the first session of a server gets the subscription; it lives in the server's
 * client, which the hub keeps across re-dials, and recovers by itself after one. */
static void subscribe(session_state *st, uarc_client *client, const char *server_uri)
{
    const listen_args *a = st->args;
    if (!a->monitor_count && !a->events.events)
        return;
    if (sink_of(st, server_uri))
        return;
    monitor_sink *sink = calloc(1, sizeof *sink);
    char *uri = strdup(server_uri);
    monitor_sink **grown = realloc(st->sinks, (st->sink_count + 1) * sizeof *grown);
    if (grown)
        st->sinks = grown;
    if (!sink || !uri || !grown) {
        free(sink);
        free(uri);
        fprintf(stderr, "uarc listen: out of memory\n");
        return;
    }
    *sink = (monitor_sink){.out = st->out,
                           .json = st->listen->json,
                           .server_uri = uri,
                           .publisher_id = uri,
                           .nodes = a->monitors,
                           .node_count = a->monitor_count,
                           .event_node = a->events.events ? &a->events.node : NULL,
                           .select = a->events.select,
                           .select_count = a->events.select_count,
                           .of_type = a->events.type};
    st->sinks[st->sink_count++] = sink;
    monitor_params params = {.interval_ms = (double)a->interval,
                             .sampling_ms = a->sampling,
                             .queue_size = (uint32_t)a->queue};
    uarc_subscription *subscription;
    if (monitor_subscribe(client, sink, &params, &subscription) != UARC_Good)
        fprintf(stderr, "uarc listen: out of memory\n");
}

static void on_connected(void *user_data, uarc_client *client, const char *server_uri,
                         bool restored, bool resumed)
{
    session_state *st = user_data;
    bool json = st->listen->json;
    out_line line;
    out_begin(&line, json, "connected");
    out_field_str(&line, "server_uri", server_uri);
    out_field_str(&line, "endpoint_url", uarc_client_endpoint_url(client));
    out_field_str(&line, "security_policy",
                  policy_short_name(uarc_client_security_policy_uri(client)));
    if (restored)
        out_field_raw(&line, "session", resumed ? "\"resumed\"" : "\"new\"");
    out_end(&line);
    if (st->args->monitor_count && st->out->ops->server_state)
        st->out->ops->server_state(st->out, sink_of(st, server_uri), server_uri, "connected",
                                   UARC_Good);
    subscribe(st, client, server_uri);
    /* --stay: a resumed session does not repeat operations that completed before; a new one
     * (the server restarted and forgot its sessions) gets them again. */
    if (restored && resumed && server_done(st, server_uri))
        return;
    for (size_t i = 0; i < st->job_count; i++) {
        server_job *job = st->jobs[i];
        if (strcmp(job->server_uri, server_uri) != 0)
            continue;
        if (job->aborted) { /* cut off by the connection's end: go on where it stopped */
            job->aborted = false;
            job->client = client;
            job_next(job);
        }
        return; /* its operations are under way */
    }
    server_job *job = calloc(1, sizeof *job);
    server_job **grown = realloc(st->jobs, (st->job_count + 1) * sizeof *grown);
    if (grown)
        st->jobs = grown;
    if (!job || !grown || !(job->server_uri = strdup(server_uri))) {
        free(job);
        fprintf(stderr, "uarc listen: out of memory\n");
        return;
    }
    job->st = st;
    job->client = client;
    st->jobs[st->job_count++] = job;
    job_next(job);
}

/* The server's certificate was learned on this dial; its next dial brings the session. */
static void on_discovered(void *user_data, uarc_client *client, const char *server_uri,
                          const uarc_EndpointDescription *endpoint)
{
    session_state *st = user_data;
    out_line line;
    out_begin(&line, st->listen->json, "discovered");
    out_field_str(&line, "server_uri", server_uri);
    out_field(&line, "endpoint_url", (const char *)endpoint->endpointUrl.data,
              endpoint->endpointUrl.length);
    out_field_str(&line, "security_policy",
                  policy_short_name(uarc_client_security_policy_uri(client)));
    const char *mode = uarc_enum_name(UARC_T(MessageSecurityMode), (int32_t)endpoint->securityMode);
    out_field_str(&line, "security_mode", mode ? mode : "Invalid");
    out_end(&line);
}

/* Connecting or discovery failed. The hub's detail is "<step>: <StatusName>: <reason>" (for a
 * discovery it is not the client's own error), reported as ops_report_error() does. */
static void on_failed(void *user_data, uarc_client *client, const char *server_uri,
                      uarc_status status, const char *detail)
{
    session_state *st = user_data;
    ops_context ctx = {.client = client, .json = st->listen->json, .server_uri = server_uri};
    if (detail == uarc_client_error(client)) { /* the client's own connect, not a discovery */
        ctx.peer = uarc_client_peer(client);
        ctx.end = uarc_client_end_reason(client);
        ctx.cause = uarc_client_end_kind(client);
    }
    ops_report_detail(&ctx, status, detail);
}

/* A socket that claimed a server's URI was dropped (superseded, closed, held too long). */
static void on_dropped(void *user_data, const char *server_uri, const char *peer,
                       uarc_status status, const char *reason)
{
    session_state *st = user_data;
    out_line line;
    out_begin(&line, st->listen->json, "dropped");
    out_field_str(&line, "server_uri", server_uri);
    out_field_str(&line, "peer", peer);
    out_field_str(&line, "status", uarc_status_name(status));
    out_field_str(&line, "reason", reason);
    out_end(&line);
}

/* The server failed as on its dial before: its dials are refused for a while. */
static void on_backoff(void *user_data, const char *server_uri, uarc_status status,
                       uint32_t delay_ms, uint32_t refused)
{
    session_state *st = user_data;
    char delay[16], count[16];
    snprintf(delay, sizeof delay, "%u", delay_ms);
    snprintf(count, sizeof count, "%u", refused);
    out_line line;
    out_begin(&line, st->listen->json, "backoff");
    out_field_str(&line, "server_uri", server_uri);
    out_field_str(&line, "status", uarc_status_name(status));
    out_field_raw(&line, "delay_ms", delay);
    out_field_raw(&line, "refused", count);
    out_end(&line);
}

static void on_lost(void *user_data, uarc_client *client, const char *server_uri,
                    uarc_status status)
{
    session_state *st = user_data;
    print_disconnected(st->listen->json, server_uri, status, client);
    if (st->args->monitor_count && st->out->ops->server_state)
        st->out->ops->server_state(st->out, sink_of(st, server_uri), server_uri, "lost", status);
}

/* ---- main loop ---- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Signals stay blocked except inside ppoll, so none is lost between checks; this runs before
 * the first event is printed, so a signal sent right after `listening` still ends cleanly. */
static void catch_signals(sigset_t *during_wait)
{
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    sigprocmask(SIG_BLOCK, &blocked, during_wait);
    sigdelset(during_wait, SIGINT);
    sigdelset(during_wait, SIGTERM);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Adds the sink's descriptor after the first n of `fds` (capacity n + 1) and lowers `wait` to
 * its deadline; returns the new count. */
static size_t add_sink_fd(data_sink *out, struct pollfd *fds, size_t n, int64_t *wait)
{
    if (!out->ops->poll_fd)
        return n;
    short events = 0;
    int fd = out->ops->poll_fd(out, &events);
    if (fd >= 0)
        fds[n++] = (struct pollfd){.fd = fd, .events = events};
    int64_t sink_wait = out->ops->timeout_ms(out, now_ms());
    if (sink_wait >= 0 && (*wait < 0 || sink_wait < *wait))
        *wait = sink_wait;
    return n;
}

static int serve(uarc_listener *listener, const listen_args *a, listen_state *s,
                 const sigset_t *during_wait_set, data_sink *out)
{
    sigset_t during_wait = *during_wait_set;

    session_state st = {.args = a, .listen = s, .out = out};
    uarc_memory_budget *budget = NULL; /* --memory-budget; else the hub makes its own */
    if (!a->accept_only) {
        uarc_reverse_hub_config ho = {.listener = listener,
                                      .callbacks = {.connected = on_connected,
                                                    .failed = on_failed,
                                                    .lost = on_lost,
                                                    .discovered = on_discovered,
                                                    .dropped = on_dropped,
                                                    .backoff = on_backoff,
                                                    .user_data = &st},
                                      .max_handshakes = (uint32_t)a->max_handshakes};
        client_config_from_args(&ho.client, a->common.user, a->common.password,
                                a->common.allow_unencrypted, 0, a->common.verbose);
        ho.client.connect_timeout_ms = (uint32_t)a->connect_timeout;
        ho.client.request_timeout_ms = (uint32_t)a->request_timeout;
        ho.client.keepalive_interval_ms = (uint32_t)a->keepalive;
        if (a->memory_budget_mib &&
            !(budget = uarc_memory_budget_new((size_t)a->memory_budget_mib * 1024 * 1024))) {
            fprintf(stderr, "uarc listen: out of memory\n");
            out->ops->close(out, 0);
            return EXIT_FAILED;
        }
        ho.client.memory_budget = budget;
        security_apply("listen", &a->common.security, &ho.client); /* checked in cmd_listen */
        st.hub = uarc_reverse_hub_new(&ho);
        if (!st.hub) {
            fprintf(stderr, "uarc listen: out of memory\n");
            out->ops->close(out, 0);
            uarc_memory_budget_delete(budget);
            return EXIT_FAILED;
        }
    }
    /* Done: N accepted (--accept-only) or N servers' operations completed. */
    unsigned long *done = a->accept_only ? &s->accepted : &st.completed;
    int64_t deadline =
        a->common.timeout > 0 ? now_ms() + (int64_t)(a->common.timeout * 1000.0 + 0.5) : -1;
    int rc;
    for (;;) {
        uarc_reverse_connection c;
        while (a->accept_only && uarc_listener_next(listener, &c)) {
            uarc_reverse_connection_clear(&c);
            s->accepted++;
        }
        if (a->count && *done >= a->count) {
            rc = EXIT_OK;
            break;
        }
        if (stop_signal) {
            rc = EXIT_OK;
            break;
        }
        int64_t wait =
            st.hub ? uarc_reverse_hub_timeout_ms(st.hub) : uarc_listener_timeout_ms(listener);
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                rc = EXIT_OK;
                if (*done == 0 || (a->count && *done < a->count)) {
                    fprintf(stderr, "uarc listen: timeout: %lu server(s) %s in %g s\n", *done,
                            a->accept_only ? "accepted" : "completed", a->common.timeout);
                    rc = EXIT_FAILED;
                }
                break;
            }
            if (wait < 0 || left < wait)
                wait = left;
        }
        /* One descriptor whatever the number of servers (the hub's epoll set), and the sink's. */
        struct pollfd fds[2] = {
            {.fd = st.hub ? uarc_reverse_hub_fd(st.hub) : uarc_listener_fd(listener),
             .events = POLLIN}};
        size_t n = 1, hub_fds = 1;
        if (st.hub)
            n = add_sink_fd(out, fds, n, &wait);
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (long)(wait % 1000) * 1000000};
        int ready = ppoll(fds, (nfds_t)n, wait < 0 ? NULL : &ts, &during_wait);
        if (ready < 0 && errno != EINTR) {
            fprintf(stderr, "uarc listen: poll: %s\n", strerror(errno));
            rc = EXIT_FAILED;
            break;
        }
        uarc_status status =
            st.hub ? uarc_reverse_hub_process(st.hub, 0) : uarc_listener_process(listener, 0);
        if (uarc_status_is_bad(status)) {
            fprintf(stderr, "uarc listen: %s: %s\n", uarc_status_name(status),
                    uarc_listener_error(listener));
            rc = EXIT_FAILED;
            break;
        }
        if (st.hub) {
            finish_jobs(&st);
            if (out->ops->process)
                out->ops->process(out, n > hub_fds ? fds[hub_fds].revents : 0, now_ms());
        }
    }
    out->ops->close(out, 2000); /* it acknowledges through the subscriptions: before the hub */
    /* Deleting the hub fails what is still in flight: the jobs' callbacks run (and stay quiet),
     * so the jobs are freed after. */
    st.closing = true;
    uarc_reverse_hub_delete(st.hub);
    uarc_memory_budget_delete(budget);
    for (size_t i = 0; i < st.job_count; i++)
        job_free(st.jobs[i]);
    free(st.jobs);
    for (size_t i = 0; i < st.done_count; i++)
        free(st.done_uris[i]);
    free(st.done_uris);
    for (size_t i = 0; i < st.sink_count; i++) {
        free((char *)st.sinks[i]->server_uri);
        free(st.sinks[i]);
    }
    free(st.sinks);
    return rc;
}

int cmd_listen(int argc, char **argv)
{
    listen_args a = {.common = {.command = "listen", .timeout_max = 1e9},
                     .mqtt = {.qos = 1},
                     .port = DEFAULT_PORT,
                     .allowlist = uarc_allowlist_new(),
                     .sampling = -1};
    if (!a.allowlist)
        return EXIT_FAILED;
    int rc = EXIT_USAGE;
    uarc_listener *listener = NULL;
    if (!args_parse("listen", listen_specs, argc, argv, on_listen_arg, &a))
        goto done;
    if (a.common.help) {
        fputs(listen_help, stdout);
        rc = EXIT_OK;
        goto done;
    }
    if (a.accept_only &&
        (a.op_count || a.stay || a.common.user || a.common.security.user_certificate ||
         a.connect_timeout || a.request_timeout || a.keepalive || a.memory_budget_mib ||
         a.max_handshakes)) {
        fprintf(stderr, "uarc listen: --accept-only opens no session, so --read, --browse, "
                        "--user, --stay, --connect-timeout, --request-timeout, --keepalive, "
                        "--memory-budget and --max-handshakes do not apply\n");
        goto done;
    }
    if (a.common.password && !a.common.user) {
        fprintf(stderr, "uarc listen: --password-file needs --user\n");
        goto done;
    }
    if (!mqtt_args_check("listen", &a.mqtt))
        goto done;
    if (!monitor_events_finish(&a.events, "listen"))
        goto done;
    if (a.mqtt.url && !a.monitor_count && !a.events.events) {
        fprintf(stderr, "uarc listen: --mqtt carries the data of --monitor and --events\n");
        goto done;
    }
    if ((a.monitor_count || a.events.events) && (!a.stay || a.accept_only)) {
        fprintf(stderr, "uarc listen: --monitor and --events need --stay (the subscription lives "
                        "as long as the session)\n");
        goto done;
    }
    {
        uarc_client_config check = {.user_name = a.common.user};
        if (!security_apply("listen", &a.common.security, &check))
            goto done;
    }
    if (a.allow_sources == 0)
        fprintf(stderr, "uarc listen: warning: no --allow or --allow-file given, so every server "
                        "will be rejected\n");

    listen_state state = {.json = a.common.json};
    uarc_listener_config opt = {
        .bind_addresses = a.binds,
        .bind_address_count = a.bind_count,
        .port = (uint16_t)a.port,
        .hello_timeout_ms = (uint32_t)(a.hello_timeout * 1000.0 + 0.5),
        .max_pending = (uint32_t)a.max_pending,
        .allowlist = a.allowlist,
        .reject_with_message_type_invalid = a.pause_rejected,
        .reuse_port = a.reuse_port,
        .callbacks = {on_hello, on_accepted, on_rejected, on_error, &state},
        .logger = {a.common.verbose ? args_log_to_stderr : NULL, NULL, UARC_LOG_DEBUG},
    };
    rc = EXIT_FAILED;
    sigset_t during_wait;
    catch_signals(&during_wait);
    listener = uarc_listener_new(&opt);
    if (!listener) {
        fprintf(stderr, "uarc listen: out of memory\n");
        goto done;
    }
    uarc_status status = uarc_listener_listen(listener);
    if (status != UARC_Good) {
        fprintf(stderr, "uarc listen: %s: %s\n", uarc_status_name(status),
                uarc_listener_error(listener));
        goto done;
    }
    for (size_t i = 0; i < uarc_listener_address_count(listener); i++) {
        out_line line;
        out_begin(&line, a.common.json, "listening");
        out_field_str(&line, "address", uarc_listener_address(listener, i));
        out_end(&line);
    }
    data_sink *out = a.mqtt.url ? sink_mqtt_new("listen", &a.mqtt, a.common.json) : sink_jsonl();
    if (out)
        rc = serve(listener, &a, &state, &during_wait, out);
done:
    uarc_listener_delete(listener);
    uarc_allowlist_delete(a.allowlist);
    free(a.binds);
    for (size_t i = 0; i < a.op_count; i++)
        free((char *)a.ops[i]);
    free(a.ops);
    args_free_secret(a.common.password);
    args_free_secret(a.mqtt.password);
    for (size_t i = 0; i < a.monitor_count; i++)
        uarc_clear(&a.monitors[i], UARC_T(NodeId));
    free(a.monitors);
    monitor_events_free(&a.events);
    return rc;
}
