/*
 * Subscriptions against the benchmark server of fake_ua.h. Prints one JSON line per run.
 *
 *   bench_subscription ceiling [MESSAGES]   byte mode, one core: a subscription of 1,000 items;
 *                      PublishResponses of 1,000 data changes each (Int32, source and server
 *                      timestamps), encoded once and fed whole to uarc_client_receive_bytes()
 *                      as fast as the client asks for them (default 2,000 messages); counts the
 *                      data_change callbacks per second of this thread's CPU time and of wall
 *                      time. The bytes the client sends (PublishRequests with their
 *                      acknowledgements) are taken and read in the same thread and counted.
 *   bench_subscription cold SESSIONS ITEMS ROUNDS FLUSH_BYTES   byte mode: SESSIONS clients of
 *                      ITEMS items each get one PublishResponse each in turn, ROUNDS times, with
 *                      FLUSH_BYTES of memory written before each (the caches a wake-up finds);
 *                      CPU per message and per notification spent in the client alone.
 *   bench_subscription memory N [string]     byte mode: RSS growth per monitored item with N
 *                      items of one subscription created on the server (ns=1;i=k node ids, or
 *                      ns=1;s=Variable000k), then again once every item has had one value.
 *   bench_subscription e2e URL SESSIONS ITEMS SECONDS [INTERVAL_MS [GATHER]]   against a real
 *                      server: bench/e2e_library.c.
 *   bench_subscription e2e-tool UARC URL ITEMS SECONDS [INTERVAL_MS]   the same for one session
 *                      of `UARC monitor URL <ITEMS nodes> --json`, its lines read from a pipe: the
 *                      latency to the moment a data line is read, the tool's CPU time.
 *   bench_subscription pipe UARC LINES [ITEMS]   the fake server on a loopback socket answers every
 * PublishRequest at once with ITEMS (default 1,000) data changes; `UARC monitor URL <ITEMS nodes>
 * --json --count LINES` writes to a pipe read here; lines per second from the first data line to
 * the end of the pipe, and the tool's CPU time per line.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "e2e_library.h"
#include "fake_ua.h"

#define ITEMS        1000u
#define BATCH_BUFFER (1u << 20)

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* ---- byte mode: the client and the fake server in one thread ---- */

typedef struct byte_link {
    uarc_client *client;
    fake_ua server;
    uint8_t *in; /* the client's bytes not yet taken by the server */
    size_t in_length;
} byte_link;

/* Moves the client's output to the server and back until neither has anything to say. */
static void pump(byte_link *l)
{
    for (;;) {
        bool moved = false;
        const uint8_t *data;
        size_t n;
        while ((n = uarc_client_output_bytes(l->client, &data)) > 0) {
            if (l->in_length + n > BATCH_BUFFER)
                fake_ua_die("the client sent more than the buffer holds");
            memcpy(l->in + l->in_length, data, n);
            l->in_length += n;
            uarc_client_output_consumed(l->client, n);
            moved = true;
        }
        size_t used = fake_ua_take_all(&l->server, l->in, l->in_length);
        memmove(l->in, l->in + used, l->in_length - used);
        l->in_length -= used;
        if (l->server.out_length) {
            uarc_status status =
                uarc_client_receive_bytes(l->client, l->server.out, l->server.out_length, now_ms());
            if (status != UARC_Good) {
                fprintf(stderr, "bench_subscription: %s\n", uarc_client_error(l->client));
                exit(1);
            }
            fake_ua_consumed(&l->server, l->server.out_length);
            moved = true;
        }
        if (!moved)
            return;
    }
}

static void link_open(byte_link *l, uint32_t receive_buffer_size)
{
    memset(l, 0, sizeof *l);
    l->in = malloc(BATCH_BUFFER);
    uarc_client_config cfg = {.keepalive_interval_ms = 3600000,
                              .request_timeout_ms = 600000,
                              .receive_buffer_size = receive_buffer_size};
    l->client = uarc_client_new(&cfg);
    if (!l->in || !l->client ||
        uarc_client_start_bytes(l->client, "opc.tcp://bench:4840", now_ms()) != UARC_Good)
        fake_ua_die("cannot start the byte-mode client");
    pump(l);
    if (uarc_client_state_get(l->client) != UARC_CLIENT_SESSION_ACTIVE)
        fake_ua_die("no session");
}

static void link_close(byte_link *l)
{
    uarc_client_delete(l->client);
    fake_ua_free(&l->server);
    free(l->in);
}

typedef struct counter {
    uint64_t changes;
    int64_t sum;
} counter;

static void on_data(void *user_data, const uarc_data_change *c)
{
    counter *k = user_data;
    k->changes++;
    if (c->value->value.type == UARC_T(Int32))
        k->sum += *(const int32_t *)c->value->value.data;
}

/* A subscription with `n` items, created on the server. */
static uarc_subscription *subscribe(byte_link *l, uint32_t n, bool strings, counter *k)
{
    uarc_subscription_config cfg = {.publishing_interval_ms = 100};
    cfg.callbacks = (uarc_subscription_callbacks){.data_change = on_data, .user_data = k};
    uarc_subscription *s;
    if (uarc_subscription_new(l->client, &cfg, &s) != UARC_Good)
        fake_ua_die("uarc_subscription_new");
    uint32_t before = l->server.items;
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "Variable%06u", (unsigned)i);
        uarc_monitored_item_params p = {.node = strings ? uarc_nodeid_string(1, name)
                                                        : uarc_nodeid_numeric(1, i + 1)};
        if (uarc_subscription_add_item(s, &p, NULL) != UARC_Good)
            fake_ua_die("uarc_subscription_add_item");
        uarc_clear(&p.node, UARC_T(NodeId));
    }
    pump(l);
    if (l->server.items - before != n)
        fake_ua_die("not every item was created");
    return s;
}

static int ceiling(long messages)
{
    byte_link l;
    counter k = {0};
    link_open(&l, 0);
    subscribe(&l, ITEMS, false, &k);
    uarc_datetime t = uarc_datetime_now();
    fake_ua_frame frames[2] = {fake_ua_frame_build(&l.server, 1, ITEMS, 1, t),
                               fake_ua_frame_build(&l.server, 1, ITEMS, 2, t + 10000)};
    size_t sent_bytes = 0, received = 0;
    double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID), wall0 = clock_s(CLOCK_MONOTONIC);
    for (long m = 0; m < messages; m++) {
        const uint8_t *data;
        size_t n;
        while ((n = uarc_client_output_bytes(l.client, &data)) > 0) {
            fake_ua_take_all(&l.server, data, n); /* whole PublishRequests: the client writes
                                                     each message at once */
            sent_bytes += n;
            uarc_client_output_consumed(l.client, n);
        }
        fake_ua_frame *f = &frames[m & 1];
        const uint8_t *frame = fake_ua_publish_frame(&l.server, f);
        if (!frame)
            fake_ua_die("the client holds no PublishRequest out");
        if (uarc_client_receive_bytes(l.client, frame, f->length, now_ms()) != UARC_Good) {
            fprintf(stderr, "bench_subscription: %s\n", uarc_client_error(l.client));
            return 1;
        }
        received += f->length;
    }
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0, wall = clock_s(CLOCK_MONOTONIC) - wall0;
    uint64_t expected = (uint64_t)messages * ITEMS;
    printf("{\"bench\":\"subscription\",\"what\":\"ceiling\",\"messages\":%ld,\"per_message\":%u,"
           "\"notifications\":%llu,\"cpu_s\":%.6f,\"wall_s\":%.6f,\"per_cpu_s\":%.0f,"
           "\"per_wall_s\":%.0f,\"bytes_in\":%zu,\"bytes_out\":%zu}\n",
           messages, ITEMS, (unsigned long long)k.changes, cpu, wall, (double)k.changes / cpu,
           (double)k.changes / wall, received, sent_bytes);
    free(frames[0].bytes);
    free(frames[1].bytes);
    link_close(&l);
    return k.changes == expected ? 0 : 1;
}

static int memory(uint32_t n, bool strings)
{
    byte_link l;
    counter k = {0};
    link_open(&l, 0);
    /* warm-up: code pages, the allocator's first arenas, the pipeline's buffers */
    uarc_subscription *warm = subscribe(&l, 100, strings, &k);
    for (int i = 0; i < 4 && fake_ua_publish(&l.server, 1, 100, i, uarc_datetime_now() + i); i++)
        pump(&l);
    long before = rss_bytes();
    uarc_subscription *s = subscribe(&l, n, strings, &k);
    long created = rss_bytes();
    /* one value for every item: the item keeps the last value it delivered */
    uint64_t want = k.changes + n;
    uarc_datetime t = uarc_datetime_now();
    for (uint32_t first = 1; first <= n;) {
        uint32_t count = n - first + 1 < ITEMS ? n - first + 1 : ITEMS;
        if (!fake_ua_publish(&l.server, first, count, 7, t))
            fake_ua_die("no PublishRequest held");
        pump(&l);
        first += count;
    }
    long valued = rss_bytes();
    printf("{\"bench\":\"subscription\",\"what\":\"item_memory\",\"nodes\":\"%s\",\"n\":%u,"
           "\"rss_before\":%ld,\"rss_created\":%ld,\"rss_valued\":%ld,\"bytes_per\":%.1f,"
           "\"bytes_per_valued\":%.1f,\"delivered\":%s}\n",
           strings ? "string" : "numeric", n, before, created, valued,
           (double)(created - before) / n, (double)(valued - before) / n,
           k.changes == want ? "true" : "false");
    uarc_subscription_delete(s);
    uarc_subscription_delete(warm);
    link_close(&l);
    return k.changes == want ? 0 : 1;
}

/* Byte mode, SESSIONS clients of ITEMS items each, fed one message each in turn, the caches
 * flushed before each (a collector's wake-up for one server among many): this process's CPU per
 * message spent in uarc_client_receive_bytes() and the client's answer. */
static int cold(size_t sessions, uint32_t items, long rounds, size_t flush_bytes)
{
    byte_link *links = calloc(sessions, sizeof *links);
    fake_ua_frame(*frames)[2] = calloc(sessions, sizeof *frames);
    uint8_t *flush = malloc(flush_bytes ? flush_bytes : 1);
    counter k = {0};
    if (!links || !frames || !flush)
        fake_ua_die("out of memory");
    uarc_datetime t = uarc_datetime_now();
    for (size_t i = 0; i < sessions; i++) {
        link_open(&links[i], 1u << 20);
        subscribe(&links[i], items, false, &k);
        frames[i][0] = fake_ua_frame_build(&links[i].server, 1, items, 1, t);
        frames[i][1] = fake_ua_frame_build(&links[i].server, 1, items, 2, t + 10000);
    }
    double cpu = 0;
    uint64_t before = k.changes;
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < sessions; i++) {
            memset(flush, (int)(r + (long)i), flush_bytes);
            byte_link *l = &links[i];
            double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            fake_ua_frame *f = &frames[i][r & 1];
            const uint8_t *frame = fake_ua_publish_frame(&l->server, f);
            if (!frame)
                fake_ua_die("the client holds no PublishRequest out");
            if (uarc_client_receive_bytes(l->client, frame, f->length, now_ms()) != UARC_Good) {
                fprintf(stderr, "bench_subscription: %s\n", uarc_client_error(l->client));
                fake_ua_die("the client refused a PublishResponse");
            }
            const uint8_t *data;
            size_t n;
            while ((n = uarc_client_output_bytes(l->client, &data)) > 0) {
                fake_ua_take_all(&l->server, data, n);
                uarc_client_output_consumed(l->client, n);
            }
            cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        }
    uint64_t got = k.changes - before;
    printf("{\"bench\":\"subscription\",\"what\":\"cold\",\"sessions\":%zu,\"items\":%u,"
           "\"flush\":%zu,\"messages\":%ld,\"notifications\":%llu,\"us_per_message\":%.2f,"
           "\"ns_per_notification\":%.1f}\n",
           sessions, items, flush_bytes, rounds * (long)sessions, (unsigned long long)got,
           cpu * 1e6 / (double)(rounds * (long)sessions), cpu * 1e9 / (double)got);
    for (size_t i = 0; i < sessions; i++) {
        free(frames[i][0].bytes);
        free(frames[i][1].bytes);
        link_close(&links[i]);
    }
    free(links);
    free(frames);
    free(flush);
    return got == (uint64_t)rounds * sessions * items ? 0 : 1;
}

/* ---- the fake server on a socket, for the real tool ---- */

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Serves one connection: every PublishRequest is answered at once, once all `items` exist. */
static void serve(int listen_fd, uint32_t items)
{
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        _exit(1);
    fake_ua server = {0};
    fake_ua_frame frames[2] = {{0}, {0}};
    uint8_t *in = malloc(BATCH_BUFFER);
    size_t in_length = 0;
    unsigned long answered = 0;
    while (!server.closed) {
        ssize_t n = read(fd, in + in_length, BATCH_BUFFER - in_length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        in_length += (size_t)n;
        size_t used = fake_ua_take_all(&server, in, in_length);
        memmove(in, in + used, in_length - used);
        in_length -= used;
        if (!write_all(fd, server.out, server.out_length))
            break;
        fake_ua_consumed(&server, server.out_length);
        if (!frames[0].bytes && server.items >= items) {
            uarc_datetime t = uarc_datetime_now();
            frames[0] = fake_ua_frame_build(&server, 1, items, 1, t);
            frames[1] = fake_ua_frame_build(&server, 1, items, 2, t + 10000);
        }
        /* two messages in turn, so that no item sees the same value twice in a row */
        while (frames[0].bytes && server.pending_count) {
            fake_ua_frame *f = &frames[answered++ & 1];
            if (!write_all(fd, fake_ua_publish_frame(&server, f), f->length))
                break;
        }
    }
    close(fd);
    _exit(0);
}

/* Starts `UARC monitor URL <nodes> <tail...>` with its standard output into the pipe `out`
 * (whose writing end is closed here); the nodes are `node_prefix` and k, for k = first .. first
 * + items - 1. Returns the tool's pid. */
static pid_t start_monitor(const char *uarc, const char *url, const char *node_prefix,
                           uint32_t first, uint32_t items, const char *const *tail,
                           size_t tail_count, int out[2])
{
    char **argv = calloc(items + tail_count + 4, sizeof *argv);
    if (!argv)
        fake_ua_die("out of memory");
    size_t argc = 0;
    argv[argc++] = (char *)uarc;
    argv[argc++] = "monitor";
    argv[argc++] = (char *)url;
    for (uint32_t i = 0; i < items; i++) {
        if (!(argv[argc] = malloc(24)))
            fake_ua_die("out of memory");
        snprintf(argv[argc++], 24, "%s%u", node_prefix, (unsigned)(first + i));
    }
    for (size_t i = 0; i < tail_count; i++)
        argv[argc++] = (char *)tail[i];
    pid_t tool = fork();
    if (tool == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execv(uarc, argv);
        _exit(127);
    }
    close(out[1]);
    for (size_t i = 3; i < 3 + items; i++)
        free(argv[i]);
    free(argv);
    return tool;
}

static int pipe_bench(const char *uarc, unsigned long lines, uint32_t items)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        fake_ua_die("cannot listen");
    pid_t server = fork();
    if (server == 0)
        serve(lfd, items);
    close(lfd);

    int out[2];
    if (pipe(out) != 0)
        fake_ua_die("pipe");
    char url[64], count[32];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    snprintf(count, sizeof count, "%lu", lines);
    const char *tail[] = {"--json", "--count", count};
    pid_t tool = start_monitor(uarc, url, "ns=1;i=", 1, items, tail, 3, out);

    static char buf[1 << 20];
    unsigned long after = 0, total = 0;
    double t0 = 0;
    for (;;) {
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        unsigned long nl = 0;
        for (ssize_t i = 0; i < n; i++)
            nl += buf[i] == '\n';
        total += nl;
        if (t0 == 0 && memmem(buf, (size_t)n, "{\"event\":\"data\"", 15))
            t0 = clock_s(CLOCK_MONOTONIC); /* the clock starts after this read's lines */
        else if (t0 != 0)
            after += nl;
    }
    double wall = clock_s(CLOCK_MONOTONIC) - t0;
    int status = 0;
    struct rusage ru;
    wait4(tool, &status, 0, &ru);
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("{\"bench\":\"subscription\",\"what\":\"pipe\",\"items\":%u,\"lines\":%lu,"
           "\"timed_lines\":%lu,\"wall_s\":%.6f,\"lines_per_s\":%.0f,\"tool_cpu_s\":%.6f,"
           "\"tool_sys_s\":%.6f,\"cpu_us_per_line\":%.4f,\"exit\":%d}\n",
           items, total, after, wall, (double)after / wall, cpu, sys, cpu * 1e6 / (double)total,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && total >= lines ? 0 : 1;
}

/* ---- the tool against a real server: latency to the JSON line ---- */

/* Nanoseconds the threads of process `pid` have run (the scheduler's count, not ticks). */
static double task_cpu_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    double total = 0;
    struct dirent *d;
    while ((d = readdir(dir))) {
        if (d->d_name[0] == '.')
            continue;
        char stat_path[sizeof path + sizeof d->d_name + 16];
        snprintf(stat_path, sizeof stat_path, "%s/%s/schedstat", path, d->d_name);
        FILE *f = fopen(stat_path, "r");
        unsigned long long ns = 0;
        if (f && fscanf(f, "%llu", &ns) == 1)
            total += (double)ns / 1e9;
        if (f)
            fclose(f);
    }
    closedir(dir);
    return total;
}

/* The item index of a data line's node ("ns=1;s=V<k>"); -1 when the line is no data line. */
static long data_line_item(const char *line, const char *end, uarc_datetime *source)
{
    static const char data[] = "{\"event\":\"data\",\"node\":\"ns=1;s=V";
    size_t n = sizeof data - 1;
    if ((size_t)(end - line) < n || memcmp(line, data, n) != 0)
        return -1;
    long k = strtol(line + n, NULL, 10);
    static const char ts[] = "\"source_timestamp\":\"";
    const char *t = memmem(line, (size_t)(end - line), ts, sizeof ts - 1);
    const char *close =
        t ? memchr(t + sizeof ts - 1, '"', (size_t)(end - t - (sizeof ts - 1))) : NULL;
    *source = 0;
    if (close)
        uarc_datetime_parse(t + sizeof ts - 1, (size_t)(close - t - (sizeof ts - 1)), source);
    return k;
}

/* `UARC monitor URL ns=1;s=V0 .. --json` against a real server, its lines read from a pipe here:
 * once every item has reported, for SECONDS, the data lines, the tool's CPU time and the latency
 * from a value's source timestamp to the moment its line is read (items 0, 16, 32, ...). */
static int end_to_end_tool(const char *uarc, const char *url, uint32_t items, double seconds,
                           double interval)
{
    int out[2];
    if (pipe(out) != 0)
        fake_ua_die("pipe");
    char ms[32];
    snprintf(ms, sizeof ms, "%.0f", interval);
    uint8_t *seen = calloc(items, 1);
    uint32_t *latency = calloc(LATENCY_BUCKETS, sizeof *latency);
    if (!seen || !latency)
        fake_ua_die("out of memory");
    const char *tail[] = {"--interval", ms, "--sampling", ms, "--queue", "10", "--json"};
    double wall0 = clock_s(CLOCK_MONOTONIC);
    pid_t tool = start_monitor(uarc, url, "ns=1;s=V", 0, items, tail, 7, out);
    static char buf[1 << 20];
    size_t have = 0, unseen = items;
    uint64_t lines = 0, late = 0;
    double t0 = 0, cpu0 = 0, setup = 0;
    bool measuring = false;
    for (;;) {
        if (measuring && clock_s(CLOCK_MONOTONIC) - t0 >= seconds)
            break;
        if (!measuring && clock_s(CLOCK_MONOTONIC) - wall0 > 60)
            break;
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(out[0], buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        uarc_datetime now = uarc_datetime_now();
        have += (size_t)n;
        char *line = buf, *end = buf + have, *nl;
        while ((nl = memchr(line, '\n', (size_t)(end - line)))) {
            uarc_datetime source;
            long k = data_line_item(line, nl, &source);
            line = nl + 1;
            if (k < 0 || k >= (long)items)
                continue;
            if (!measuring) {
                if (!seen[k]) {
                    seen[k] = 1;
                    unseen--;
                }
                continue;
            }
            lines++;
            if (k % LATENCY_EVERY == 0 && source) {
                double lat = (double)(now - source) / 1e4;
                size_t bucket = lat < 0 ? 0 : (size_t)(lat * 10);
                if (bucket < LATENCY_BUCKETS)
                    latency[bucket]++;
                else
                    late++;
            }
        }
        have = (size_t)(end - line);
        memmove(buf, line, have);
        if (!measuring && unseen == 0) {
            measuring = true;
            setup = clock_s(CLOCK_MONOTONIC) - wall0;
            t0 = clock_s(CLOCK_MONOTONIC);
            cpu0 = task_cpu_s(tool);
        }
    }
    double cpu = task_cpu_s(tool) - cpu0, wall = clock_s(CLOCK_MONOTONIC) - t0;
    kill(tool, SIGINT);
    close(out[0]);
    waitpid(tool, NULL, 0);
    int result = 1;
    if (!measuring) {
        fprintf(stderr, "bench_subscription: %zu items never reported\n", unseen);
    } else {
        e2e run = {.changes = lines, .latency = latency, .late = late};
        printf("{\"bench\":\"e2e\",\"who\":\"uarc monitor --json\",\"sessions\":1,\"items\":%u,"
               "\"setup_s\":%.3f,\"wall_s\":%.3f,\"notifications\":%llu,\"per_s\":%.0f,"
               "\"cpu_s\":%.4f,\"cpu_s_per_million\":%.4f,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
               items, setup, wall, (unsigned long long)lines, (double)lines / wall, cpu,
               lines ? cpu * 1e6 / (double)lines : 0, e2e_latency_quantile(&run, 0.5),
               e2e_latency_quantile(&run, 0.99));
        result = 0;
    }
    free(seen);
    free(latency);
    return result;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "ceiling") == 0)
        return ceiling(argc >= 3 ? atol(argv[2]) : 2000);
    if (argc >= 6 && strcmp(argv[1], "cold") == 0)
        return cold((size_t)atol(argv[2]), (uint32_t)atol(argv[3]), atol(argv[4]),
                    (size_t)atol(argv[5]));
    if (argc >= 3 && strcmp(argv[1], "memory") == 0)
        return memory((uint32_t)atol(argv[2]), argc >= 4 && strcmp(argv[3], "string") == 0);
    if (argc >= 6 && strcmp(argv[1], "e2e") == 0)
        return end_to_end(argv[2], (size_t)atol(argv[3]), (size_t)atol(argv[4]), atof(argv[5]),
                          argc >= 7 ? atof(argv[6]) : 100, argc >= 8 ? argv[7] : "auto");
    if (argc >= 6 && strcmp(argv[1], "e2e-tool") == 0)
        return end_to_end_tool(argv[2], argv[3], (uint32_t)atol(argv[4]), atof(argv[5]),
                               argc >= 7 ? atof(argv[6]) : 100);
    if (argc >= 4 && strcmp(argv[1], "pipe") == 0)
        return pipe_bench(argv[2], strtoul(argv[3], NULL, 10),
                          argc >= 5 ? (uint32_t)atol(argv[4]) : ITEMS);
    fprintf(stderr, "usage: bench_subscription ceiling [MESSAGES]\n"
                    "       bench_subscription memory N [string]\n"
                    "       bench_subscription e2e URL SESSIONS ITEMS SECONDS [INTERVAL_MS "
                    "[auto|off|GATHER_MS]]\n"
                    "       bench_subscription e2e-tool UARC URL ITEMS SECONDS [INTERVAL_MS]\n"
                    "       bench_subscription pipe UARC LINES [ITEMS]\n");
    return 2;
}
