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
#include "listen.h"
#include "output.h"

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
                                      .max_handshakes = (uint32_t)a->max_handshakes,
                                      .gather_ms = a->gather};
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
        /* gathering: the hub's descriptor is left out for a while after a wake-up with data (a
         * deadline due sooner still ends the wait sooner) */
        int gather = st.hub ? uarc_reverse_hub_gather_ms(st.hub) : 0;
        if (gather > 0 && (wait < 0 || gather < wait))
            wait = gather;
        /* One descriptor whatever the number of servers (the hub's epoll set), and the sink's. */
        struct pollfd fds[2] = {{.fd = gather   ? -1
                                       : st.hub ? uarc_reverse_hub_fd(st.hub)
                                                : uarc_listener_fd(listener),
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
    listen_args a;
    uarc_listener *listener = NULL;
    int rc = listen_args_read(argc, argv, &a);
    if (rc >= 0)
        goto done;
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
    listen_args_free(&a);
    return rc;
}
