/* uarc listen: its options, their checks and their help text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/uarc.h"
#include "args.h"
#include "commands.h"
#include "listen.h"
#include "monitor.h"

#define DEFAULT_PORT 4843

static const char listen_help[] =
    "usage: uarc listen [--bind ADDR]... [--port N] [--allow URI]... [--allow-file FILE]\n"
    "                   [--hello-timeout SECONDS] [--max-pending N] [--count N]\n"
    "                   [--timeout SECONDS] [--read NODEID]... [--browse NODEID]...\n"
    "                   [--monitor NODEID... [--interval MS] [--sampling MS] [--queue N]]\n"
    "                   [--events NODEID [--select FIELD]... [--of-type NODEID]]\n"
    "                   [--connect-timeout MS] [--request-timeout MS] [--keepalive MS]\n"
    "                   [--memory-budget MIB] [--reuse-port] [--max-handshakes N]\n"
    "                   [--gather auto|off|MS]\n"
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
    "  --gather auto|off|MS after a wake-up with socket events, leave the servers' sockets\n"
    "                       unread for a while (due deadlines still run), then handle all\n"
    "                       that came meanwhile in one go: fewer wake-ups for many servers.\n"
    "                       auto (default): 1/20 of the shortest publishing interval, at most\n"
    "                       50 ms, and none while a server waits for an answer other than\n"
    "                       Publish; MS: always MS (at most 1000; 0 is off); no pause after\n"
    "                       a handshake step, so connect storms are not slowed\n"
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
    OPT_GATHER,
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
    {"--gather", true, OPT_GATHER},
    {"--reuse-port", false, OPT_REUSE_PORT},
    SECURITY_SPECS,
    MQTT_SPECS,
    {NULL, false, 0},
};

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
    case OPT_GATHER: {
        a->gather_given = true;
        unsigned long ms = 0;
        if (!strcmp(value, "auto"))
            a->gather = 0;
        else if (!strcmp(value, "off"))
            a->gather = UARC_REVERSE_HUB_GATHER_OFF;
        else if (!args_uint("listen", "--gather", value, 1000, &ms))
            return false;
        else
            a->gather = ms ? (uint32_t)ms : UARC_REVERSE_HUB_GATHER_OFF;
        return true;
    }
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

int listen_args_read(int argc, char **argv, listen_args *a)
{
    *a = (listen_args){.common = {.command = "listen", .timeout_max = 1e9},
                       .mqtt = {.qos = 1},
                       .port = DEFAULT_PORT,
                       .allowlist = uarc_allowlist_new(),
                       .sampling = -1};
    if (!a->allowlist)
        return EXIT_FAILED;
    if (!args_parse("listen", listen_specs, argc, argv, on_listen_arg, a))
        return EXIT_USAGE;
    if (a->common.help) {
        fputs(listen_help, stdout);
        return EXIT_OK;
    }
    if (a->accept_only &&
        (a->op_count || a->stay || a->common.user || a->common.security.user_certificate ||
         a->connect_timeout || a->request_timeout || a->keepalive || a->memory_budget_mib ||
         a->max_handshakes || a->gather_given)) {
        fprintf(stderr, "uarc listen: --accept-only opens no session, so --read, --browse, "
                        "--user, --stay, --connect-timeout, --request-timeout, --keepalive, "
                        "--memory-budget, --max-handshakes and --gather do not apply\n");
        return EXIT_USAGE;
    }
    if (a->common.password && !a->common.user) {
        fprintf(stderr, "uarc listen: --password-file needs --user\n");
        return EXIT_USAGE;
    }
    if (!mqtt_args_check("listen", &a->mqtt))
        return EXIT_USAGE;
    if (!monitor_events_finish(&a->events, "listen"))
        return EXIT_USAGE;
    if (a->mqtt.url && !a->monitor_count && !a->events.events) {
        fprintf(stderr, "uarc listen: --mqtt carries the data of --monitor and --events\n");
        return EXIT_USAGE;
    }
    if ((a->monitor_count || a->events.events) && (!a->stay || a->accept_only)) {
        fprintf(stderr, "uarc listen: --monitor and --events need --stay (the subscription lives "
                        "as long as the session)\n");
        return EXIT_USAGE;
    }
    {
        uarc_client_config check = {.user_name = a->common.user};
        if (!security_apply("listen", &a->common.security, &check))
            return EXIT_USAGE;
    }
    if (a->allow_sources == 0)
        fprintf(stderr, "uarc listen: warning: no --allow or --allow-file given, so every server "
                        "will be rejected\n");
    return -1;
}

void listen_args_free(listen_args *a)
{
    uarc_allowlist_delete(a->allowlist);
    free(a->binds);
    for (size_t i = 0; i < a->op_count; i++)
        free((char *)a->ops[i]);
    free(a->ops);
    args_free_secret(a->common.password);
    args_free_secret(a->mqtt.password);
    for (size_t i = 0; i < a->monitor_count; i++)
        uarc_clear(&a->monitors[i], UARC_T(NodeId));
    free(a->monitors);
    monitor_events_free(&a->events);
}
