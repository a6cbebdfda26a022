/*
 * The test peer (tests/peer/server.mjs, or another program such as the open62541 peer) as a child
 * process of a C test: spawned with
 * posix_spawn, its stdin a pipe we hold (the peer exits when it closes, so it dies with the
 * test), its one "started" line read from stdout for the EndpointUrl.
 *
 * Spawn several first and then wait for each: they start in parallel (3-6 s each).
 * Needs UARC_PEER_DIR (tests/peer) and UARC_NODE (the node executable) defined.
 */
#ifndef UARC_TESTS_PEER_PROCESS_H
#define UARC_TESTS_PEER_PROCESS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#ifndef UARC_PEER_DIR
#error "UARC_PEER_DIR must name tests/peer"
#endif
#ifndef UARC_NODE
#define UARC_NODE "node"
#endif

extern char **environ;

typedef struct peer_process {
    pid_t pid;    /* -1: not running */
    int stdin_fd; /* our end of its stdin: closing it stops the peer */
    int stdout_fd;
    char url[128]; /* its EndpointUrl, once started */
} peer_process;

#define PEER_PROCESS_INIT                                                                          \
    {                                                                                              \
        -1, -1, -1, ""                                                                             \
    }

static inline int64_t peer_process_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts `program ARGS...` (argv NULL-terminated, at most 32 with the program). Does not wait. */
static inline bool peer_process_spawn_program(peer_process *p, char *const *argv)
{
    int in[2], out[2];
    p->pid = -1;
    p->url[0] = '\0';
    if (pipe2(in, O_CLOEXEC) != 0)
        return false;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    int rc = posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    p->stdin_fd = in[1];
    p->stdout_fd = out[0];
    if (rc != 0) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(rc));
        p->pid = -1;
        close(p->stdin_fd);
        close(p->stdout_fd);
        p->stdin_fd = p->stdout_fd = -1;
        return false;
    }
    return true;
}

/* Starts `node server.mjs ARGS...` (args NULL-terminated, at most 30). Does not wait. */
static inline bool peer_process_spawn(peer_process *p, const char *const *args)
{
    char *argv[34] = {UARC_NODE, UARC_PEER_DIR "/server.mjs"};
    size_t n = 2;
    for (; args[n - 2] && n < 33; n++)
        argv[n] = (char *)args[n - 2];
    argv[n] = NULL;
    return peer_process_spawn_program(p, argv);
}

/* Reads the "started" line (waiting at most timeout_ms) and takes the EndpointUrl from it. */
static inline bool peer_process_wait_started(peer_process *p, int timeout_ms)
{
    char line[1024];
    size_t len = 0;
    int64_t deadline = peer_process_now_ms() + timeout_ms;
    while (!memchr(line, '\n', len)) {
        int left = (int)(deadline - peer_process_now_ms());
        struct pollfd pfd = {p->stdout_fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, left) <= 0 || len + 1 >= sizeof line)
            break;
        ssize_t k = read(p->stdout_fd, line + len, sizeof line - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    line[len] = '\0';
    const char *key = "\"endpoint_url\":\"";
    const char *start = strstr(line, key);
    const char *end = start ? strchr(start + strlen(key), '"') : NULL;
    if (!end || (size_t)(end - start - strlen(key)) >= sizeof p->url) {
        fprintf(stderr, "the peer did not start: \"%s\"\n", line);
        return false;
    }
    start += strlen(key);
    memcpy(p->url, start, (size_t)(end - start));
    p->url[end - start] = '\0';
    return true;
}

/* SIGTERM (a clean shutdown), SIGKILL after 5 s; closes the pipes. Idempotent. */
static inline void peer_process_stop(peer_process *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int64_t deadline = peer_process_now_ms() + 5000;
        while (waitpid(p->pid, NULL, WNOHANG) == 0) {
            if (peer_process_now_ms() > deadline) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, NULL, 0);
                break;
            }
            usleep(20000);
        }
        p->pid = -1;
    }
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    if (p->stdout_fd >= 0)
        close(p->stdout_fd);
    p->stdin_fd = p->stdout_fd = -1;
}

#endif
