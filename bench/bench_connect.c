/*
 * Connection benchmark, uarc side: reverse connect and forward connect against a node-opcua
 * server, one connection at a time, driven by bench/run.mjs through stdin so that every uarc
 * connection can be measured beside node-opcua's in the same run.
 *
 * On start it listens on 127.0.0.1 (kernel-chosen port, allowlist "urn:uarc:bench:server") and
 * prints {"port":N}. Then, one command per line on stdin:
 *
 *   reverse N       N times: wait for the server's dial, then accept → session → Read(i=2258) →
 *                   disconnect; the clock starts when the listening socket becomes readable
 *   forward URL N   N times: dial URL → session → Read(i=2258) → disconnect
 *   quit
 *
 * One JSON line per connection: wall_ms (start to socket closed), cpu_ms (this thread's CPU time
 * over the same span), sys_ms (the kernel-mode part of it, tick-sampled), close_ms
 * (uarc_client_disconnect: CloseSession, CLO, close), status. After each command: {"done":true}.
 *
 * Usage: bench_connect   (interactive, see above)
 */
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uarc/uarc.h"

#define SERVER_URI "urn:uarc:bench:server"

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* This thread's CPU time in kernel mode. The kernel splits the exact total between user and
 * kernel by sampled ticks, so a single figure is rough; the average over many is not. */
static double sys_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
}

typedef struct sample {
    double wall0, cpu0, sys0, close0;
} sample;

static void start(sample *s)
{
    s->wall0 = clock_ms(CLOCK_MONOTONIC);
    s->cpu0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    s->sys0 = sys_ms();
}

static void report(const char *kind, const sample *s, uarc_status status, const char *detail)
{
    double wall = clock_ms(CLOCK_MONOTONIC), cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    double sys = sys_ms();
    printf("{\"kind\":\"%s\",\"wall_ms\":%.4f,\"cpu_ms\":%.4f,\"sys_ms\":%.4f,"
           "\"close_ms\":%.4f,\"status\":\"%s\"",
           kind, wall - s->wall0, cpu - s->cpu0, sys - s->sys0, wall - s->close0,
           uarc_status_name(status));
    if (status != UARC_Good) {
        printf(",\"detail\":\"");
        for (const char *c = detail; *c; c++)
            putchar(*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 ? '\'' : *c);
        printf("\"");
    }
    printf("}\n");
    fflush(stdout);
}

/* Session is up: Read the server's CurrentTime, then close everything, timing the close. */
static uarc_status read_and_close(uarc_client *client, sample *s)
{
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime);
    uarc_data_value value;
    uarc_status status = uarc_client_read_attribute(client, &node, UARC_ATTRIBUTEID_Value, &value);
    if (status == UARC_Good) {
        if (value.status != UARC_Good)
            status = value.status;
        uarc_clear(&value, UARC_T(DataValue));
    }
    s->close0 = clock_ms(CLOCK_MONOTONIC);
    uarc_client_disconnect(client);
    return status;
}

static void reverse_one(uarc_listener *listener)
{
    uarc_client *client = uarc_client_new(NULL);
    struct pollfd pfd = {.fd = uarc_listener_fd(listener), .events = POLLIN};
    sample s = {0};
    uarc_status status = UARC_BadTimeout;
    const char *detail = "no dial within 10 s";
    if (poll(&pfd, 1, 10000) == 1) {
        start(&s);
        uarc_reverse_connection connection;
        status = uarc_listener_accept(listener, 5000, &connection);
        detail = uarc_listener_error(listener);
        if (status == UARC_Good) {
            status = uarc_reverse_connect(client, &connection);
            detail = uarc_client_error(client);
            if (status == UARC_Good)
                status = read_and_close(client, &s);
            uarc_reverse_connection_clear(&connection);
        }
    }
    if (!s.close0) {
        s.close0 = clock_ms(CLOCK_MONOTONIC);
        uarc_client_disconnect(client);
    }
    report("reverse", &s, status, detail);
    uarc_client_delete(client);
}

static void forward_one(const char *url)
{
    uarc_client *client = uarc_client_new(NULL);
    sample s = {0};
    start(&s);
    uarc_status status = uarc_client_connect(client, url);
    const char *detail = uarc_client_error(client);
    if (status == UARC_Good)
        status = read_and_close(client, &s);
    if (!s.close0) {
        s.close0 = clock_ms(CLOCK_MONOTONIC);
        uarc_client_disconnect(client);
    }
    report("forward", &s, status, detail);
    uarc_client_delete(client);
}

int main(void)
{
    const char *bind[] = {"127.0.0.1"};
    uarc_allowlist *allow = uarc_allowlist_new();
    uarc_allowlist_add(allow, SERVER_URI, NULL);
    uarc_listener_config options = {.bind_addresses = bind,
                                    .bind_address_count = 1,
                                    .allowlist = allow,
                                    .hello_timeout_ms = 120000};
    uarc_listener *listener = uarc_listener_new(&options);
    if (!listener || uarc_listener_listen(listener) != UARC_Good) {
        fprintf(stderr, "bench_connect: %s\n", listener ? uarc_listener_error(listener) : "oom");
        return 1;
    }
    printf("{\"port\":%u}\n", uarc_listener_port(listener));
    fflush(stdout);

    char line[1024], url[1000];
    int n;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "reverse %d", &n) == 1) {
            for (int i = 0; i < n; i++)
                reverse_one(listener);
        } else if (sscanf(line, "forward %999s %d", url, &n) == 2) {
            for (int i = 0; i < n; i++)
                forward_one(url);
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            fprintf(stderr, "bench_connect: unknown command: %s", line);
        }
        printf("{\"done\":true}\n");
        fflush(stdout);
    }
    uarc_listener_delete(listener);
    uarc_allowlist_delete(allow);
    return 0;
}
