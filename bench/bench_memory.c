/*
 * Memory: this process's resident set growth per pending reverse connection and per active
 * session, measured as (RSS after - RSS before) / n with everything still held.
 *
 *   bench_memory pending N        a listener (max_pending above N, 120 s hello timeout) and a
 *                                 child process that opens N silent connections to it; counted
 *                                 once the listener holds all N as pending
 *   bench_memory sessions URL N   N clients with default configuration, each connected to URL
 *                                 with an active session and one Read done
 *
 * Before measuring, a few of each are set up and torn down, so that code pages and the
 * allocator's first arenas are not charged to the n. Prints one JSON line. Run it again for
 * another sample: freed memory stays in the allocator, so a second measurement in the same
 * process would find it and show no growth.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "uarc/uarc.h"

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

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void raise_file_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* A child that opens n silent connections (spread over 127.0.0.2-250 as sources), says so on
 * `done`, and holds them until its stdin-like pipe `hold` closes. */
static pid_t spawn_dialer(uint16_t port, int n, int *done_fd, int *hold_fd)
{
    int done[2], hold[2];
    if (pipe(done) != 0 || pipe(hold) != 0)
        return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(done[1]);
        close(hold[0]);
        *done_fd = done[0];
        *hold_fd = hold[1];
        return pid;
    }
    close(done[0]);
    close(hold[1]);
    int opened = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0)
            break;
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % 249))};
        struct sockaddr_in dst = {.sin_family = AF_INET,
                                  .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bind(fd, (struct sockaddr *)&src, sizeof src);
        connect(fd, (struct sockaddr *)&dst, sizeof dst);
        opened++;
        if (i % 256 == 255)
            usleep(1000); /* let the listener keep up with its 511 backlog */
    }
    if (write(done[1], &opened, sizeof opened) != sizeof opened)
        _exit(1);
    char c;
    while (read(hold[0], &c, 1) > 0) {
    }
    _exit(0);
}

/* Fills the listener with n pending connections; returns the dialer's hold pipe, -1 on failure. */
static int fill_pending(uarc_listener *l, int n)
{
    int done_fd, hold_fd;
    if (spawn_dialer(uarc_listener_port(l), n, &done_fd, &hold_fd) < 0)
        return -1;
    double deadline = now_ms() + 60000;
    while ((int)uarc_listener_pending_count(l) < n && now_ms() < deadline)
        uarc_listener_process(l, 10);
    int opened = 0;
    if (read(done_fd, &opened, sizeof opened) != sizeof opened)
        opened = -1;
    close(done_fd);
    if ((int)uarc_listener_pending_count(l) != n) {
        close(hold_fd);
        return -1;
    }
    return hold_fd;
}

static int pending(int n, int repeat)
{
    raise_file_limit();
    const char *bind_to[] = {"127.0.0.1"};
    uarc_allowlist *allow = uarc_allowlist_new();
    uarc_allowlist_add(allow, "urn:uarc:bench:nobody", NULL);
    uarc_listener_config o = {.bind_addresses = bind_to,
                              .bind_address_count = 1,
                              .allowlist = allow,
                              .hello_timeout_ms = 120000,
                              .max_pending = (uint32_t)n + 1024,
                              .backlog = 4096};
    uarc_listener *l = uarc_listener_new(&o);
    if (!l || uarc_listener_listen(l) != UARC_Good) {
        fprintf(stderr, "bench_memory: %s\n", l ? uarc_listener_error(l) : "out of memory");
        return 1;
    }
    for (int r = -1; r < repeat; r++) {
        int count = r < 0 ? 64 : n; /* r = -1: the warm-up round */
        long before = rss_bytes();
        int hold = fill_pending(l, count);
        if (hold < 0) {
            fprintf(stderr,
                    "bench_memory: the listener did not reach %d pending connections "
                    "(%zu); raise the file limit\n",
                    count, uarc_listener_pending_count(l));
            return 1;
        }
        long after = rss_bytes();
        if (r >= 0)
            printf("{\"bench\":\"memory\",\"what\":\"pending\",\"n\":%d,\"rss_before\":%ld,"
                   "\"rss_after\":%ld,\"bytes_per\":%.1f}\n",
                   n, before, after, (double)(after - before) / n);
        fflush(stdout);
        close(hold); /* the dialer closes everything and exits */
        while (wait(NULL) > 0) {
        }
        double deadline = now_ms() + 30000;
        while (uarc_listener_pending_count(l) > 0 && now_ms() < deadline)
            uarc_listener_process(l, 10);
    }
    uarc_listener_delete(l);
    uarc_allowlist_delete(allow);
    return 0;
}

static int connect_one(uarc_client *c, const char *url)
{
    if (uarc_client_connect(c, url) != UARC_Good) {
        fprintf(stderr, "bench_memory: %s\n", uarc_client_error(c));
        return -1;
    }
    uarc_nodeid node = uarc_nodeid_numeric(0, UARC_NS0ID_Server_ServerStatus_CurrentTime);
    uarc_data_value value;
    if (uarc_client_read_attribute(c, &node, UARC_ATTRIBUTEID_Value, &value) != UARC_Good) {
        fprintf(stderr, "bench_memory: Read: %s\n", uarc_client_error(c));
        return -1;
    }
    uarc_clear(&value, UARC_T(DataValue));
    return 0;
}

static int sessions(const char *url, int n, int repeat)
{
    uarc_client **clients = calloc((size_t)n, sizeof *clients);
    for (int r = -1; r < repeat; r++) {
        int count = r < 0 ? 1 : n; /* r = -1: the warm-up round */
        long before = rss_bytes();
        for (int i = 0; i < count; i++) {
            clients[i] = uarc_client_new(NULL);
            if (!clients[i] || connect_one(clients[i], url) != 0)
                return 1;
        }
        long after = rss_bytes();
        if (r >= 0)
            printf("{\"bench\":\"memory\",\"what\":\"session\",\"n\":%d,\"rss_before\":%ld,"
                   "\"rss_after\":%ld,\"bytes_per\":%.1f}\n",
                   n, before, after, (double)(after - before) / n);
        fflush(stdout);
        for (int i = 0; i < count; i++) {
            uarc_client_disconnect(clients[i]);
            uarc_client_delete(clients[i]);
        }
    }
    free(clients);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    int repeat = 1;
    if (argc == 3 && strcmp(argv[1], "pending") == 0)
        return pending(atoi(argv[2]), repeat);
    if (argc == 4 && strcmp(argv[1], "sessions") == 0)
        return sessions(argv[2], atoi(argv[3]), repeat);
    fprintf(stderr, "usage: bench_memory pending N\n"
                    "       bench_memory sessions URL N\n");
    return 2;
}
