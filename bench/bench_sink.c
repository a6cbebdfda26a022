/*
 * The tool's data sinks under load: S servers' subscriptions each deliver M NotificationMessages
 * of K data changes (Int32 with both timestamps) into one sink, exactly as the subscription
 * callbacks of `uarc listen --monitor` do, and the sink's own poll loop runs between messages.
 * The OPC UA side (decoding PublishResponses) is not part of these figures: they are the cost of
 * the sink alone.
 *
 *   bench_sink jsonl SERVERS MESSAGES VALUES            JSON Lines to stdout (make it a pipe)
 *   bench_sink mqtt URL QOS SERVERS MESSAGES VALUES [STATUS_MS]
 *                                      Part 14 JSON to the broker at URL (STATUS_MS: as
 *                                      --mqtt-status-ms; 0 adds a status message per message)
 *
 * Prints one JSON line on stderr: {"notifications", "messages", "wall_s", "cpu_s"}; for mqtt the
 * clock stops once every message was acknowledged (QoS 1: PUBACK; QoS 0: written).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "commands.h"
#include "monitor.h"

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
    return (int64_t)(seconds(CLOCK_MONOTONIC) * 1000);
}

/* One turn of the sink's loop, waiting at most `wait_ms` for its socket. */
static void turn(data_sink *out, int wait_ms)
{
    if (!out->ops->poll_fd)
        return;
    short events = 0;
    struct pollfd p = {.fd = out->ops->poll_fd(out, &events)};
    p.events = events;
    if (p.fd >= 0)
        poll(&p, 1, wait_ms);
    out->ops->process(out, p.fd >= 0 ? p.revents : 0, now_ms());
}

int main(int argc, char **argv)
{
    bool mqtt = (argc == 7 || argc == 8) && strcmp(argv[1], "mqtt") == 0;
    if (!mqtt && !(argc == 5 && strcmp(argv[1], "jsonl") == 0)) {
        fprintf(stderr, "usage: bench_sink jsonl SERVERS MESSAGES VALUES\n"
                        "       bench_sink mqtt URL QOS SERVERS MESSAGES VALUES [STATUS_MS]\n");
        return 2;
    }
    int first = mqtt ? 4 : 2;
    size_t servers = strtoul(argv[first], NULL, 10), messages = strtoul(argv[first + 1], NULL, 10),
           values = strtoul(argv[first + 2], NULL, 10);
    mqtt_args args = {.url = mqtt ? argv[2] : NULL,
                      .qos = mqtt ? strtoul(argv[3], NULL, 10) : 1,
                      .client_id = "uarc-bench",
                      .backlog = (unsigned long)1 << 30,
                      .status_ms_given = argc == 8,
                      .status_ms = argc == 8 ? strtoul(argv[7], NULL, 10) : 0};
    data_sink *out = mqtt ? sink_mqtt_new("bench", &args, true) : sink_jsonl();
    if (!out)
        return 1;
    if (mqtt) { /* connected before the clock starts */
        for (int i = 0; i < 500; i++)
            turn(out, 10);
    }
    uarc_client *client = uarc_client_new(NULL);
    monitor_sink *subs = calloc(servers, sizeof *subs);
    char(*uris)[64] = calloc(servers, sizeof *uris);
    uarc_nodeid node = uarc_nodeid_string(1, "Counter");
    for (size_t s = 0; s < servers; s++) {
        snprintf(uris[s], sizeof uris[s], "urn:bench:server%zu", s);
        subs[s] = (monitor_sink){.out = out,
                                 .json = true,
                                 .server_uri = uris[s],
                                 .publisher_id = uris[s],
                                 .nodes = &node,
                                 .node_count = 1};
        monitor_params p = {.sampling_ms = -1};
        uarc_subscription *sub;
        if (monitor_subscribe(client, &subs[s], &p, &sub) != UARC_Good)
            return 1;
    }
    int32_t counter = 0;
    uarc_data_value value = {.has_value = true,
                             .has_source_timestamp = true,
                             .has_server_timestamp = true,
                             .source_timestamp = uarc_datetime_now(),
                             .server_timestamp = uarc_datetime_now()};
    value.value.type = UARC_T(Int32);
    value.value.data = &counter;
    double wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (uint32_t seq = 1; seq <= messages; seq++) {
        for (size_t s = 0; s < servers; s++) {
            for (size_t k = 0; k < values; k++) {
                counter++;
                uarc_data_change c = {.subscription = subs[s].subscription,
                                      .sequence_number = seq,
                                      .item = 1,
                                      .node = &node,
                                      .value = &value};
                out->ops->data(out, &subs[s], &c);
            }
            out->ops->message_end(out, &subs[s], subs[s].subscription, seq);
            turn(out, 0);
        }
    }
    out->ops->close(out, 600000); /* until every message is acknowledged */
    double wall = seconds(CLOCK_MONOTONIC) - wall0, cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    fprintf(stderr, "{\"notifications\":%zu,\"messages\":%zu,\"wall_s\":%.6f,\"cpu_s\":%.6f}\n",
            servers * messages * values, servers * messages, wall, cpu);
    uarc_client_delete(client);
    free(subs);
    free(uris);
    uarc_clear(&node, UARC_T(NodeId));
    return 0;
}
