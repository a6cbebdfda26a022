/*
 * Listener capacity: a closed-loop load generator against two servers on loopback, measured in
 * alternating windows so that both see the same machine load:
 *   - "uarc":    a uarc listener (its own process) whose allowlist does not hold the generator's
 *                ServerUri, so every RHE is answered ERR BadTcpEndpointUrlInvalid and closed;
 *   - "minimal": the reference, a minimal single-thread epoll loop (its own process): accept (at
 *                most 64 per wake-up), read right after accept, answer ERR, close.
 * The generator keeps K connections in flight: each connects, sends one RHE, waits for the first
 * answer byte (or EOF), closes, and is replaced at once. It reports per window: answered hellos
 * per second and the p50/p99 latency from RHE sent to answer received. With --idle M, M silent
 * connections (no RHE) are held open to each server during the windows.
 *
 * Usage: bench_listener [--k K]... [--idle M]... [--windows N] [--window-ms MS]
 *   defaults: K = 1, 64, 512; M = 0, 200; 30 windows per target; 150 ms windows.
 * Prints one JSON line per window. Loopback only; source addresses 127.0.0.2-127.0.0.250 are
 * used in turn so that the servers' TIME_WAIT sockets never collide with new connections.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#include "uarc/uarc.h"

#define MAX_K       4096
#define MAX_IDLE    4096
#define LOAD_URI    "urn:uarc:bench:load"
#define LOAD_URL    "opc.tcp://127.0.0.1:4840"
#define ALLOWED_URI "urn:uarc:bench:someone-else"
#define MAX_SAMPLES (1 << 20)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void raise_file_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 511) != 0)
        die("minimal: bind/listen");
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- the reference: a minimal epoll accept / read / answer / close loop ---- */

typedef struct minimal_conn {
    int fd;
    uint32_t have;
    uint8_t buf[256];
} minimal_conn;

static uint8_t err_frame[64];
static size_t err_frame_size;

static void build_err_frame(void)
{
    static const char reason[] = "rejected";
    uint32_t status = 0x80830000u; /* BadTcpEndpointUrlInvalid */
    uint32_t rlen = sizeof reason - 1;
    uint32_t size = 16 + rlen;
    uint8_t *p = err_frame;
    memcpy(p, "ERRF", 4);
    memcpy(p + 4, &size, 4); /* little-endian host */
    memcpy(p + 8, &status, 4);
    memcpy(p + 12, &rlen, 4);
    memcpy(p + 16, reason, rlen);
    err_frame_size = size;
}

/* Answers and closes once a whole frame is in; returns false to keep waiting. */
static bool minimal_serve(minimal_conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (n > 0) {
            c->have += (uint32_t)n;
            uint32_t size = 0;
            if (c->have >= 8)
                memcpy(&size, c->buf + 4, 4);
            if (c->have >= 8 && (size > sizeof c->buf || c->have >= size))
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return false;
        close(c->fd); /* EOF or error before a whole frame */
        return true;
    }
    send(c->fd, err_frame, err_frame_size, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(c->fd);
    return true;
}

static void run_minimal(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[128];
    for (;;) {
        int n = epoll_wait(ep, events, 128, -1);
        for (int i = 0; i < n; i++) {
            minimal_conn *c = events[i].data.ptr;
            if (c) {
                if (minimal_serve(c))
                    free(c);
                continue;
            }
            for (int a = 0; a < 64; a++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break;
                c = malloc(sizeof *c);
                c->fd = fd;
                c->have = 0;
                if (minimal_serve(c)) {
                    free(c);
                    continue;
                }
                struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            }
        }
    }
}

/* ---- the uarc listener ---- */

static void run_uarc(uint16_t *port, int ready_pipe)
{
    const char *bind_to[] = {"127.0.0.1"};
    uarc_allowlist *allow = uarc_allowlist_new();
    uarc_allowlist_add(allow, ALLOWED_URI, NULL);
    uarc_listener_config o = {.bind_addresses = bind_to,
                              .bind_address_count = 1,
                              .allowlist = allow,
                              .hello_timeout_ms = 120000,
                              .max_pending = 100000};
    uarc_listener *l = uarc_listener_new(&o);
    if (!l || uarc_listener_listen(l) != UARC_Good)
        die("uarc listener");
    *port = uarc_listener_port(l);
    if (write(ready_pipe, port, sizeof *port) != sizeof *port)
        die("pipe");
    close(ready_pipe);
    for (;;)
        uarc_listener_process(l, -1);
}

static pid_t spawn_server(bool uarc, uint16_t *port)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(p[0]);
        if (uarc) {
            run_uarc(port, p[1]);
        } else {
            int lfd = listen_loopback(port);
            if (write(p[1], port, sizeof *port) != sizeof *port)
                die("pipe");
            close(p[1]);
            run_minimal(lfd);
        }
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], port, sizeof *port) != sizeof *port)
        die("server start");
    close(p[0]);
    return pid;
}

/* ---- the load generator ---- */

typedef struct conn {
    int fd;
    bool sent;
    double sent_at;
} conn;

static uint8_t rhe[256];
static size_t rhe_size;
static unsigned source_host = 2;

static void build_rhe(void)
{
    uint32_t ulen = sizeof LOAD_URI - 1, elen = sizeof LOAD_URL - 1;
    uint32_t size = 8 + 4 + ulen + 4 + elen;
    memcpy(rhe, "RHEF", 4);
    memcpy(rhe + 4, &size, 4);
    memcpy(rhe + 8, &ulen, 4);
    memcpy(rhe + 12, LOAD_URI, ulen);
    memcpy(rhe + 12 + ulen, &elen, 4);
    memcpy(rhe + 16 + ulen, LOAD_URL, elen);
    rhe_size = size;
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(0x7f000000u | source_host)};
    source_host = source_host >= 250 ? 2 : source_host + 1;
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0)
        die("bind source");
    struct sockaddr_in dst = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static void conn_start(int ep, conn *c, uint16_t port)
{
    c->fd = dial(port);
    c->sent = false;
    /* On loopback the handshake is usually done when connect() returns: send at once. The clock
     * starts before send(), which may hand the bytes to the server before it returns. */
    double t = now_ms();
    ssize_t n = send(c->fd, rhe, rhe_size, MSG_NOSIGNAL);
    uint32_t events = EPOLLIN;
    if (n == (ssize_t)rhe_size) {
        c->sent = true;
        c->sent_at = t;
    } else {
        events = EPOLLOUT;
    }
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static double *samples;

/*
 * One window against one server: K connections in flight. The window opens once K answers have
 * come back (the initial burst of K connects is over), stays open window_ms, then the
 * connections in flight are drained. Answers received inside the window count.
 */
static void window(const char *target, uint16_t port, int k, int idle, double window_ms, int index,
                   bool print)
{
    static conn conns[MAX_K];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t answered = 0, errors = 0, ramp = 0;
    double start = -1, end = 1e300;
    for (int i = 0; i < k; i++)
        conn_start(ep, &conns[i], port);
    int live = k;
    struct epoll_event events[256];
    while (live > 0) {
        int n = epoll_wait(ep, events, 256, 1000);
        if (n == 0) {
            fprintf(stderr, "bench_listener: %s: %d connections unanswered after 1 s\n", target,
                    live);
            break;
        }
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (!c->sent) {
                c->sent_at = now_ms();
                if (send(c->fd, rhe, rhe_size, MSG_NOSIGNAL) != (ssize_t)rhe_size)
                    die("send RHE");
                c->sent = true;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            uint8_t buf[256];
            ssize_t r = recv(c->fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            double t = now_ms();
            bool ok = r >= 4 && memcmp(buf, "ERRF", 4) == 0;
            if (start < 0 && ++ramp >= (size_t)k) {
                start = t;
                end = t + window_ms;
            } else if (start >= 0 && t < end) {
                if (!ok)
                    errors++;
                else if (answered < MAX_SAMPLES)
                    samples[answered++] = t - c->sent_at;
            }
            close(c->fd);
            if (t < end)
                conn_start(ep, c, port);
            else
                live--;
        }
    }
    close(ep);
    if (!print)
        return;
    qsort(samples, answered, sizeof *samples, cmp_double);
    printf("{\"bench\":\"listener\",\"target\":\"%s\",\"k\":%d,\"idle\":%d,\"window\":%d,"
           "\"rate\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"answered\":%zu,\"errors\":%zu}\n",
           target, k, idle, index, (double)answered / (window_ms / 1e3),
           percentile(samples, answered, 0.5), percentile(samples, answered, 0.99), answered,
           errors);
    fflush(stdout);
}

/* Silent connections held open (connected, no RHE sent). */
static void open_idle(int *fds, int m, uint16_t port)
{
    for (int i = 0; i < m; i++)
        fds[i] = dial(port);
}

static void close_idle(int *fds, int m)
{
    for (int i = 0; i < m; i++)
        close(fds[i]);
}

int main(int argc, char **argv)
{
    int ks[8], nk = 0, idles[8], ni = 0, windows = 30;
    double window_ms = 150;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--k") == 0 && i + 1 < argc && nk < 8)
            ks[nk++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc && ni < 8)
            idles[ni++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--windows") == 0 && i + 1 < argc)
            windows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--window-ms") == 0 && i + 1 < argc)
            window_ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_listener [--k K]... [--idle M]... [--windows N] "
                            "[--window-ms MS]\n");
            return 2;
        }
    }
    if (!nk) {
        ks[0] = 1, ks[1] = 64, ks[2] = 512;
        nk = 3;
    }
    if (!ni) {
        idles[0] = 0, idles[1] = 200;
        ni = 2;
    }
    for (int i = 0; i < nk; i++)
        if (ks[i] < 1 || ks[i] > MAX_K)
            return 2;
    for (int i = 0; i < ni; i++)
        if (idles[i] < 0 || idles[i] > MAX_IDLE)
            return 2;

    raise_file_limit();
    signal(SIGPIPE, SIG_IGN);
    build_rhe();
    build_err_frame();
    samples = malloc(sizeof(double) * MAX_SAMPLES);

    uint16_t uarc_port, minimal_port;
    pid_t uarc_pid = spawn_server(true, &uarc_port);
    pid_t minimal_pid = spawn_server(false, &minimal_port);

    static int idle_uarc[MAX_IDLE], idle_minimal[MAX_IDLE];
    for (int ii = 0; ii < ni; ii++) {
        int m = idles[ii];
        open_idle(idle_uarc, m, uarc_port);
        open_idle(idle_minimal, m, minimal_port);
        for (int ki = 0; ki < nk; ki++) {
            int k = ks[ki];
            /* A warm-up window each, then alternate so both see the same load over time. */
            window("uarc", uarc_port, k, m, window_ms / 2, -1, false);
            window("minimal", minimal_port, k, m, window_ms / 2, -1, false);
            for (int w = 0; w < windows; w++) {
                bool uarc_first = w % 2 == 0;
                window(uarc_first ? "uarc" : "minimal", uarc_first ? uarc_port : minimal_port, k, m,
                       window_ms, w, true);
                window(uarc_first ? "minimal" : "uarc", uarc_first ? minimal_port : uarc_port, k, m,
                       window_ms, w, true);
            }
        }
        close_idle(idle_uarc, m);
        close_idle(idle_minimal, m);
    }
    kill(uarc_pid, SIGTERM);
    kill(minimal_pid, SIGTERM);
    waitpid(uarc_pid, NULL, 0);
    waitpid(minimal_pid, NULL, 0);
    free(samples);
    return 0;
}
