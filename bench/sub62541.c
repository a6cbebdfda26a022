/*
 * open62541's client (1.5.7) as bench_subscription's e2e mode measures uarc: SESSIONS clients,
 * each a session with one subscription of ITEMS monitored items (ns=1;s=V0..), sampling and
 * publishing every INTERVAL ms, queue 10, created in batches of 500. Each client runs in its own
 * thread (UA_Client_run_iterate; open62541 has no one-poll mode for many clients). Once every item
 * has reported, for SECONDS: the notifications, this process's CPU time and the latency from a
 * value's source timestamp to its callback (items 0, 16, 32, ... of each session). Prints one
 * JSON line.
 *
 *   sub62541 URL SESSIONS ITEMS SECONDS [INTERVAL]
 *
 * Built against build-peers/open62541 by bench/CMakeLists.txt when that exists.
 */
#include <open62541/client.h>
#include <open62541/client_config_default.h>
#include <open62541/client_highlevel.h>
#include <open62541/client_subscriptions.h>
#include <open62541/plugin/log_stdout.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS       100000 /* 0.1 ms each */
#define BATCH         500
#define LATENCY_EVERY 16 /* the latency of items 0, 16, 32, ... of each session */

static atomic_long unseen;
static atomic_bool measuring, stopping;
static atomic_ullong changes;
static atomic_uint latency[BUCKETS];
static atomic_ullong late;

typedef struct session {
    pthread_t thread;
    UA_Client *client;
    size_t items;
    unsigned char *seen;
    const char *url;
    double interval;
    int failed;
} session;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_change(UA_Client *client, UA_UInt32 sub, void *sub_context, UA_UInt32 mon,
                      void *mon_context, UA_DataValue *value)
{
    (void)client, (void)sub, (void)mon;
    session *s = sub_context;
    size_t index = (size_t)(uintptr_t)mon_context;
    if (!atomic_load(&measuring)) {
        if (!s->seen[index]) {
            s->seen[index] = 1;
            atomic_fetch_sub(&unseen, 1);
        }
        return;
    }
    atomic_fetch_add(&changes, 1);
    /* the latency of one item in LATENCY_EVERY, as bench_subscription.c measures it */
    if (index % LATENCY_EVERY == 0 && value->hasSourceTimestamp) {
        double ms = (double)(UA_DateTime_now() - value->sourceTimestamp) / 1e4;
        size_t bucket = ms < 0 ? 0 : (size_t)(ms * 10);
        if (bucket < BUCKETS)
            atomic_fetch_add(&latency[bucket], 1);
        else
            atomic_fetch_add(&late, 1);
    }
}

static void *run(void *arg)
{
    session *s = arg;
    s->client = UA_Client_new();
    UA_ClientConfig *cc = UA_Client_getConfig(s->client);
    UA_ClientConfig_setDefault(cc);
    cc->logging = UA_Log_Stdout_new(UA_LOGLEVEL_ERROR);
    cc->timeout = 60000;
    if (UA_Client_connect(s->client, s->url) != UA_STATUSCODE_GOOD) {
        s->failed = 1;
        return NULL;
    }
    UA_CreateSubscriptionRequest sr = UA_CreateSubscriptionRequest_default();
    sr.requestedPublishingInterval = s->interval;
    UA_CreateSubscriptionResponse sub =
        UA_Client_Subscriptions_create(s->client, sr, s, NULL, NULL);
    if (sub.responseHeader.serviceResult != UA_STATUSCODE_GOOD) {
        s->failed = 1;
        return NULL;
    }
    for (size_t first = 0; first < s->items; first += BATCH) {
        size_t n = s->items - first < BATCH ? s->items - first : BATCH;
        UA_MonitoredItemCreateRequest *items = calloc(n, sizeof *items);
        UA_Client_DataChangeNotificationCallback *callbacks = calloc(n, sizeof *callbacks);
        void **contexts = calloc(n, sizeof *contexts);
        for (size_t i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof name, "V%zu", first + i);
            items[i] = UA_MonitoredItemCreateRequest_default(UA_NODEID_STRING_ALLOC(1, name));
            items[i].requestedParameters.samplingInterval = s->interval;
            items[i].requestedParameters.queueSize = 10;
            callbacks[i] = on_change;
            contexts[i] = (void *)(uintptr_t)(first + i);
        }
        UA_CreateMonitoredItemsRequest req;
        UA_CreateMonitoredItemsRequest_init(&req);
        req.subscriptionId = sub.subscriptionId;
        req.timestampsToReturn = UA_TIMESTAMPSTORETURN_BOTH;
        req.itemsToCreate = items;
        req.itemsToCreateSize = n;
        UA_CreateMonitoredItemsResponse r =
            UA_Client_MonitoredItems_createDataChanges(s->client, req, contexts, callbacks, NULL);
        if (r.responseHeader.serviceResult != UA_STATUSCODE_GOOD)
            s->failed = 1;
        UA_CreateMonitoredItemsResponse_clear(&r);
        for (size_t i = 0; i < n; i++)
            UA_MonitoredItemCreateRequest_clear(&items[i]);
        free(items);
        free(callbacks);
        free(contexts);
        if (s->failed)
            return NULL;
    }
    /* as long a wait as its own timers allow, within a second so that the thread sees the end */
    while (!atomic_load(&stopping))
        if (UA_Client_run_iterate(s->client, 1000) != UA_STATUSCODE_GOOD) {
            s->failed = 1;
            break;
        }
    UA_Client_disconnect(s->client);
    return NULL;
}

static double quantile(double q)
{
    unsigned long long total = atomic_load(&late), seen = 0;
    for (size_t i = 0; i < BUCKETS; i++)
        total += atomic_load(&latency[i]);
    unsigned long long want = (unsigned long long)(q * (double)total);
    for (size_t i = 0; i < BUCKETS; i++) {
        seen += atomic_load(&latency[i]);
        if (seen > want)
            return ((double)i + 0.5) / 10;
    }
    return BUCKETS / 10.0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: sub62541 URL SESSIONS ITEMS SECONDS [INTERVAL]\n");
        return 2;
    }
    size_t sessions = (size_t)atol(argv[2]), items = (size_t)atol(argv[3]);
    double seconds = atof(argv[4]), interval = argc > 5 ? atof(argv[5]) : 100;
    session *all = calloc(sessions, sizeof *all);
    atomic_store(&unseen, (long)(sessions * items));
    double wall0 = clock_s(CLOCK_MONOTONIC);
    for (size_t i = 0; i < sessions; i++) {
        all[i] = (session){
            .items = items, .seen = calloc(items, 1), .url = argv[1], .interval = interval};
        pthread_create(&all[i].thread, NULL, run, &all[i]);
    }
    while (atomic_load(&unseen) > 0 && clock_s(CLOCK_MONOTONIC) - wall0 < 60)
        usleep(20000);
    int failed = 0;
    for (size_t i = 0; i < sessions; i++)
        failed |= all[i].failed;
    double setup = clock_s(CLOCK_MONOTONIC) - wall0;
    if (failed || atomic_load(&unseen) > 0) {
        fprintf(stderr, "sub62541: %s\n", failed ? "a session failed" : "items never reported");
        return 1;
    }
    atomic_store(&measuring, true);
    double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
    usleep((useconds_t)(seconds * 1e6));
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0, wall = clock_s(CLOCK_MONOTONIC) - t0;
    atomic_store(&measuring, false);
    unsigned long long n = atomic_load(&changes);
    printf("{\"bench\":\"e2e\",\"who\":\"open62541\",\"sessions\":%zu,\"items\":%zu,"
           "\"setup_s\":%.3f,\"wall_s\":%.3f,\"notifications\":%llu,\"per_s\":%.0f,"
           "\"cpu_s\":%.4f,\"cpu_s_per_million\":%.4f,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
           sessions, items, setup, wall, n, (double)n / wall, cpu, n ? cpu * 1e6 / (double)n : 0,
           quantile(0.5), quantile(0.99));
    fflush(stdout);
    atomic_store(&stopping, true);
    for (size_t i = 0; i < sessions; i++)
        pthread_join(all[i].thread, NULL);
    return 0;
}
