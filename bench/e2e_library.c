/*
 * bench_subscription e2e URL SESSIONS ITEMS SECONDS [INTERVAL_MS [GATHER]]: uarc's clients
 * against a real server with ns=1;s=V0.. (bench/server.mjs --variables). SESSIONS clients in this
 * one thread (event-loop API, one epoll set), each a session with one subscription of ITEMS items
 * (V0..V<ITEMS-1>, sampling and publishing every INTERVAL_MS, default 100, queue 10). Once every
 * item has reported, for SECONDS: the notifications, this process's CPU time and the latency from
 * a value's source timestamp to its callback (p50, p99; items 0, 16, 32, ... of each session).
 * GATHER (default auto): the loop gathers as the hub does with uarc_reverse_hub_config.gather_ms:
 * auto (the hub's default: the smallest uarc_client_gather_ms() of the clients), off, or a
 * number of milliseconds (0: off).
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "e2e_library.h"
#include "fake_ua.h"
#include "reverse/hub_timers.h"

#define E2E_EVENTS     64 /* per epoll_wait */
#define E2E_GATHER_MAX 50 /* the most uarc_client_gather_ms() says */

typedef struct e2e_item {
    e2e *run;
    size_t index;
} e2e_item;

static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* The process's kernel time, in seconds (the part of cpu_s() spent in system calls). */
static double sys_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static void on_e2e_data(void *user_data, const uarc_data_change *c)
{
    e2e *run = user_data;
    const e2e_item *it = c->item_user_data;
    if (!run->measuring) {
        if (!run->seen[it->index]) {
            run->seen[it->index] = 1;
            run->unseen--;
        }
        return;
    }
    run->changes++;
    /* the latency of one item in LATENCY_EVERY, the same items in every client's harness */
    if ((c->item - 1) % LATENCY_EVERY == 0 && c->value->has_source_timestamp) {
        double ms = (double)(uarc_datetime_now() - c->value->source_timestamp) / 1e4;
        size_t bucket = ms < 0 ? 0 : (size_t)(ms * 10);
        if (bucket < LATENCY_BUCKETS)
            run->latency[bucket]++;
        else
            run->late++;
    }
}

double e2e_latency_quantile(const e2e *run, double q)
{
    uint64_t total = run->late;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++)
        total += run->latency[i];
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        seen += run->latency[i];
        if (seen > want)
            return ((double)i + 0.5) / 10;
    }
    return (double)LATENCY_BUCKETS / 10;
}

/* The clients in one epoll set and one deadline heap, as src/reverse/hub.c keeps them: a wake-up
 * touches only the clients with socket events or a deadline due, and the clients whose wake
 * callback ran (a request sent, output queued) have their descriptor, events and deadline read
 * again; nothing is done per client that has nothing to do. */
typedef struct e2e_driver e2e_driver;

typedef struct e2e_client {
    e2e_driver *driver;
    uarc_client *client;
    size_t index;
    int fd;       /* registered with epoll, -1 none */
    short events; /* registered poll events */
    uarc__heap_node timer;
    bool woken; /* on the driver's list of clients to read again */
    int gather; /* its uarc_client_gather_ms() as counted (automatic gathering); -1 not */
} e2e_client;

struct e2e_driver {
    int epfd;
    uint32_t gather_ms; /* as uarc_reverse_hub_config.gather_ms (0: automatic) */
    size_t gather_counts[E2E_GATHER_MAX + 1]; /* clients by what they tolerate */
    int64_t woke_at; /* the last wait ended with events then; -1: it did not */
    uarc__heap timers;
    e2e_client *clients;
    e2e_client **woken; /* room for every client */
    size_t woken_count;
};

static void e2e_touch(e2e_client *e)
{
    if (!e->woken) {
        e->woken = true;
        e->driver->woken[e->driver->woken_count++] = e;
    }
}

static void on_e2e_wake(void *user_data, uarc_client *client)
{
    (void)client;
    e2e_touch(user_data);
}

/* Reads one client's descriptor, events and deadline into the epoll set and the heap. */
static void e2e_sync(e2e_driver *d, e2e_client *e, int64_t now)
{
    int fd = uarc_client_fd(e->client);
    short events = fd >= 0 ? uarc_client_poll_events(e->client) : 0;
    if (fd != e->fd || events != e->events) {
        struct epoll_event ev = {.events = (events & POLLIN ? EPOLLIN : 0u) |
                                           (events & POLLOUT ? EPOLLOUT : 0u),
                                 .data.ptr = e};
        /* A descriptor the client replaced was closed, which took it out of the set; its number
         * may already be another client's socket, so it is not deleted here. */
        if (fd >= 0 && (fd != e->fd || epoll_ctl(d->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) &&
            epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            fake_ua_die("epoll_ctl");
        e->fd = fd;
        e->events = events;
    }
    int t = uarc_client_timeout_ms(e->client);
    if (!uarc__heap_set(&d->timers, &e->timer, t < 0 ? -1 : now + t))
        fake_ua_die("out of memory");
    /* automatic gathering: counted as src/reverse/hub_gather.c counts (a client still connecting
     * says 0, which the hub does not count but covers by not pausing after a handshake step;
     * the same while this bench measures, where nothing connects) */
    int g = d->gather_ms == 0 ? uarc_client_gather_ms(e->client) : -1;
    if (g > E2E_GATHER_MAX)
        g = E2E_GATHER_MAX;
    if (g != e->gather) {
        if (e->gather >= 0)
            d->gather_counts[e->gather]--;
        if (g >= 0)
            d->gather_counts[g]++;
        e->gather = g;
    }
}

static int e2e_window(const e2e_driver *d)
{
    if (d->gather_ms == UARC_REVERSE_HUB_GATHER_OFF)
        return 0;
    if (d->gather_ms)
        return (int)d->gather_ms;
    for (int ms = 0; ms <= E2E_GATHER_MAX; ms++)
        if (d->gather_counts[ms])
            return ms;
    return 0;
}

static bool e2e_run_client(e2e_client *e, uint32_t events)
{
    short revents = (short)((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0) |
                            (events & EPOLLHUP ? POLLHUP : 0) | (events & EPOLLERR ? POLLERR : 0));
    uarc_client_process_events(e->client, revents);
    if (uarc_client_state_get(e->client) == UARC_CLIENT_DISCONNECTED) {
        fprintf(stderr, "bench_subscription: session %zu: %s\n", e->index,
                uarc_client_error(e->client));
        return false;
    }
    e2e_touch(e);
    return true;
}

static void e2e_sync_woken(e2e_driver *d, int64_t now)
{
    for (size_t i = 0; i < d->woken_count; i++) {
        d->woken[i]->woken = false;
        e2e_sync(d, d->woken[i], now);
    }
    d->woken_count = 0;
}

/* Gathering, as the hub's own waits do it (src/reverse/hub_gather.c): after a wait that ended
 * with events, the next pauses until the window after it, within `timeout_ms`, which then has
 * that much less. */
static int e2e_gather(e2e_driver *d, int timeout_ms)
{
    int window = e2e_window(d);
    if (!window || d->woke_at < 0 || timeout_ms == 0)
        return timeout_ms;
    int64_t left = d->woke_at + window - now_ms();
    if (left <= 0)
        return timeout_ms;
    int pause = timeout_ms > 0 && timeout_ms < left ? timeout_ms : (int)left;
    struct timespec t = {pause / 1000, (long)(pause % 1000) * 1000000L};
    nanosleep(&t, NULL);
    return timeout_ms > 0 ? timeout_ms - pause : timeout_ms;
}

/* One epoll_wait (at most `timeout_ms`), then a process step for each client with an event or
 * a deadline due, then the touched clients read again (and first those called from outside). */
static bool e2e_step(e2e_driver *d, int timeout_ms)
{
    int64_t now = now_ms();
    e2e_sync_woken(d, now);
    uarc__heap_node *top = uarc__heap_top(&d->timers);
    if (top && top->due - now < timeout_ms)
        timeout_ms = top->due <= now ? 0 : (int)(top->due - now);
    timeout_ms = e2e_gather(d, timeout_ms);
    struct epoll_event events[E2E_EVENTS];
    int n = epoll_wait(d->epfd, events, E2E_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        return false;
    /* as the hub: a wait that found nothing leaves the window, a full batch ends it */
    if (n > 0)
        d->woke_at = n < E2E_EVENTS ? now_ms() : -1;
    for (int i = 0; i < n; i++)
        if (!e2e_run_client(events[i].data.ptr, events[i].events))
            return false;
    now = now_ms();
    while ((top = uarc__heap_top(&d->timers)) && top->due <= now) {
        e2e_client *e = (e2e_client *)((char *)top - offsetof(e2e_client, timer));
        uarc__heap_remove(&d->timers, top); /* e2e_sync puts it back */
        if (!e2e_run_client(e, 0))
            return false;
    }
    e2e_sync_woken(d, now);
    return true;
}

int end_to_end(const char *url, size_t sessions, size_t items, double seconds, double interval,
               const char *gather)
{
    uint32_t gather_ms = !strcmp(gather, "auto")  ? 0
                         : !strcmp(gather, "off") ? UARC_REVERSE_HUB_GATHER_OFF
                         : atoi(gather) > 0       ? (uint32_t)atoi(gather)
                                                  : UARC_REVERSE_HUB_GATHER_OFF;
    e2e run = {.latency = calloc(LATENCY_BUCKETS, sizeof *run.latency),
               .seen = calloc(sessions * items, 1),
               .unseen = sessions * items};
    e2e_item *handles = calloc(sessions * items, sizeof *handles);
    e2e_driver d = {.epfd = epoll_create1(EPOLL_CLOEXEC),
                    .clients = calloc(sessions, sizeof *d.clients),
                    .woken = calloc(sessions, sizeof *d.woken),
                    .gather_ms = gather_ms,
                    .woke_at = -1};
    if (!run.latency || !run.seen || !handles || !d.clients || !d.woken)
        fake_ua_die("out of memory");
    if (d.epfd < 0)
        fake_ua_die("epoll_create1");
    double wall0 = clock_s(CLOCK_MONOTONIC);
    for (size_t i = 0; i < sessions; i++) {
        uarc_client_config cfg = {.request_timeout_ms = 60000, .connect_timeout_ms = 60000};
        e2e_client *e = &d.clients[i];
        *e = (e2e_client){
            .driver = &d, .client = uarc_client_new(&cfg), .index = i, .fd = -1, .gather = -1};
        uarc__heap_node_init(&e->timer);
        if (!e->client)
            fake_ua_die("cannot make a client");
        uarc_client_set_wake_callback(e->client, on_e2e_wake, e);
        if (uarc_client_start_connect(e->client, url) != UARC_Good)
            fake_ua_die("cannot start a client");
        uarc_subscription_config sc = {.publishing_interval_ms = interval};
        sc.callbacks = (uarc_subscription_callbacks){.data_change = on_e2e_data, .user_data = &run};
        uarc_subscription *s;
        if (uarc_subscription_new(e->client, &sc, &s) != UARC_Good)
            fake_ua_die("uarc_subscription_new");
        for (size_t k = 0; k < items; k++) {
            char name[32];
            snprintf(name, sizeof name, "V%zu", k);
            handles[i * items + k] = (e2e_item){&run, i * items + k};
            uarc_monitored_item_params p = {.node = uarc_nodeid_string(1, name),
                                            .sampling_interval_ms = interval,
                                            .queue_size = 10,
                                            .user_data = &handles[i * items + k]};
            if (uarc_subscription_add_item(s, &p, NULL) != UARC_Good)
                fake_ua_die("uarc_subscription_add_item");
            uarc_clear(&p.node, UARC_T(NodeId));
        }
    }
    /* until every item of every session has reported once (60 s at most) */
    int result = 1;
    while (run.unseen && clock_s(CLOCK_MONOTONIC) - wall0 < 60)
        if (!e2e_step(&d, 100))
            goto done;
    double setup = clock_s(CLOCK_MONOTONIC) - wall0;
    if (run.unseen) {
        fprintf(stderr, "bench_subscription: %zu items never reported\n", run.unseen);
        goto done;
    }
    run.measuring = true;
    double cpu0 = cpu_s(), sys0 = sys_s(), t0 = clock_s(CLOCK_MONOTONIC), left;
    /* the loop sleeps until a client's next deadline or the end of the window, as the hub does;
     * it does not wake on a timer of its own */
    while ((left = seconds - (clock_s(CLOCK_MONOTONIC) - t0)) > 0)
        if (!e2e_step(&d, (int)(left * 1e3) + 1))
            goto done;
    double cpu = cpu_s() - cpu0, sys = sys_s() - sys0, wall = clock_s(CLOCK_MONOTONIC) - t0;
    printf("{\"bench\":\"e2e\",\"who\":\"uarc\",\"gather\":\"%s\",\"sessions\":%zu,\"items\":%zu,"
           "\"setup_s\":%.3f,\"wall_s\":%.3f,\"notifications\":%llu,\"per_s\":%.0f,"
           "\"cpu_s\":%.4f,\"sys_s\":%.4f,\"cpu_s_per_million\":%.4f,\"p50_ms\":%.2f,\"p99_ms\":%."
           "2f}\n",
           gather, sessions, items, setup, wall, (unsigned long long)run.changes,
           (double)run.changes / wall, cpu, sys, run.changes ? cpu * 1e6 / (double)run.changes : 0,
           e2e_latency_quantile(&run, 0.5), e2e_latency_quantile(&run, 0.99));
    fflush(stdout);
    result = 0;
done:
    /* the sessions close (and their subscriptions go) on failure too, so that the server has
     * no leftovers for the next client */
    for (size_t i = 0; i < sessions; i++) {
        uarc_client_disconnect(d.clients[i].client);
        uarc_client_delete(d.clients[i].client);
    }
    uarc__heap_clear(&d.timers);
    close(d.epfd);
    free(run.latency);
    free(run.seen);
    free(handles);
    free(d.clients);
    free(d.woken);
    return result;
}
