/*
 * Listener resources: no descriptor left behind on any path, every allocation failing in turn,
 * and running out of file descriptors (with and without a spare to drop a connection with).
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "listener_fixture.h"

static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- descriptors ---- */

static void test_no_descriptor_leak(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    size_t before = count_fds();
    uarc_listener_config o = {.allowlist = a, .hello_timeout_ms = 300};
    events ev;
    uarc_listener *l = start(&o, &ev);
    uint16_t port = uarc_listener_port(l);
    fake_frame good, stranger;
    frame_rhe(&good, SERVER_URI, ENDPOINT_URL);
    frame_rhe(&stranger, "urn:test:stranger", ENDPOINT_URL);

    /* Accepted and cleared; accepted and taken. */
    uarc_reverse_connection c;
    for (int i = 0; i < 2; i++) {
        int fd = connect_to(port);
        send_all(fd, good.bytes, good.length);
        assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
        if (i == 0)
            uarc_reverse_connection_clear(&c);
        else {
            close(uarc_reverse_connection_take_fd(&c));
            uarc_reverse_connection_clear(&c);
        }
        close(fd);
    }
    /* Rejected, malformed, closed early, timed out. */
    int rej = connect_to(port), bad = connect_to(port), gone = connect_to(port),
        slow = connect_to(port);
    send_all(rej, stranger.bytes, stranger.length);
    send_all(bad, "GET / HTTP/1.0\r\n\r\n", 18);
    send_all(gone, "RH", 2);
    close(gone);
    assert_true(drive_until(l, &ev.rejected, 1, 3000));
    assert_true(drive_until(l, &ev.errors, 3, 3000)); /* bad, gone, then slow's timeout */
    assert_int_equal(uarc_listener_pending_count(l), 0);
    close(rej);
    close(bad);
    close(slow);

    /* Closed with one connection pending and one accepted but never taken. */
    o.hello_timeout_ms = 10000;
    uarc_listener_delete(l);
    l = start(&o, &ev);
    port = uarc_listener_port(l);
    int waiting = connect_to(port), untaken = connect_to(port);
    send_all(untaken, good.bytes, good.length);
    assert_true(drive_until(l, &ev.accepted, 1, 3000));
    assert_true(drive_until_pending(l, 1, 3000));
    uarc_listener_close(l);
    expect_eof(waiting);
    expect_eof(untaken);
    close(waiting);
    close(untaken);
    uarc_listener_delete(l);

    assert_int_equal(count_fds(), before);
    uarc_allowlist_delete(a);
}

typedef struct alloc_state {
    long calls, fail_at, live;
} alloc_state;

static void *failing_malloc(size_t size, void *user_data)
{
    alloc_state *a = user_data;
    if (++a->calls == a->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        a->live++;
    return p;
}

static void *failing_realloc(void *ptr, size_t size, void *user_data)
{
    alloc_state *a = user_data;
    if (++a->calls == a->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        a->live++;
    return p;
}

static void counting_free(void *ptr, void *user_data)
{
    alloc_state *a = user_data;
    a->live--;
    free(ptr);
}

static void test_failing_allocations(void **state)
{
    (void)state;
    uarc_allowlist *list = allow(SERVER_URI, NULL);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    bool completed = false;
    /* Fail the 1st, 2nd, ... allocation in turn until a run needs no more than were allowed. */
    for (long fail_at = 1; !completed && fail_at < 100; fail_at++) {
        alloc_state as = {.fail_at = fail_at};
        uarc_allocator hook = {failing_malloc, failing_realloc, counting_free, &as};
        uarc_set_allocator(&hook);
        uarc_listener_config o = {.bind_addresses = loopback4,
                                  .bind_address_count = 1,
                                  .allowlist = list,
                                  .max_pending = 4};
        events ev;
        memset(&ev, 0, sizeof ev);
        o.callbacks = (uarc_listener_callbacks){on_hello, on_accepted, on_rejected, on_error, &ev};
        uarc_listener *l = uarc_listener_new(&o);
        if (l && uarc_listener_listen(l) == UARC_Good) {
            int fd = connect_to(uarc_listener_port(l));
            send_all(fd, f.bytes, f.length);
            int done = 0;
            int64_t end = now_ms() + 3000;
            while ((done = ev.accepted + ev.errors) == 0 && now_ms() < end)
                assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
            assert_int_equal(done, 1);
            uarc_reverse_connection c;
            if (ev.accepted) {
                assert_true(uarc_listener_next(l, &c));
                assert_string_equal(c.server_uri, SERVER_URI);
                uarc_reverse_connection_clear(&c);
            } else {
                /* Out of memory is answered on the wire, never by a crash or a hang. */
                uint32_t status;
                char reason[TEXT_SIZE];
                read_err_frame(fd, &status, reason, sizeof reason);
                assert_int_equal(status, ev.status);
                expect_eof(fd);
            }
            close(fd);
        }
        uarc_listener_delete(l);
        uarc_set_allocator(NULL);
        if (as.live != 0)
            fail_msg("failing allocation %ld: %ld blocks left allocated", fail_at, as.live);
        completed = as.calls < fail_at;
    }
    assert_true(completed);
    uarc_allowlist_delete(list);
}

static void test_out_of_descriptors(void **state)
{
    (void)state;
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_to(uarc_listener_port(l));
        send_all(fds[i], f.bytes, f.length);
    }
    /* Lower the limit to just above the lowest free descriptor number: every number below it
     * is in use, so the listener has exactly one descriptor left. (Descriptors already open
     * above the limit stay usable.) */
    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    low = saved;
    low.rlim_cur = (rlim_t)lowest + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int x = dup(0), y = dup(0);
    if (x >= 0)
        close(x);
    if (y >= 0) { /* the limit is not enforced here (e.g. under valgrind) */
        close(y);
        setrlimit(RLIMIT_NOFILE, &saved);
        for (int i = 0; i < 3; i++)
            close(fds[i]);
        uarc_listener_delete(l);
        uarc_allowlist_delete(a);
        skip();
    }

    /* One server gets in; the others are dropped, reported, and not left hanging. (Count the
     * dropped peers, not the events: valgrind enforces the limit itself and may drop a
     * connection before the listener sees it.) */
    bool gone[3] = {false, false, false};
    int ended = 0;
    int64_t end = now_ms() + 3000;
    while (ended < 2 && now_ms() < end) {
        assert_int_equal(uarc_listener_process(l, 20), UARC_Good);
        for (int i = 0; i < 3; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (!gone[i] && poll(&p, 1, 0) == 1) {
                char b;
                assert_true(recv(fds[i], &b, 1, 0) <= 0);
                gone[i] = true;
                ended++;
            }
        }
    }
    setrlimit(RLIMIT_NOFILE, &saved);
    assert_int_equal(ended, 2);
    assert_int_equal(ev.accepted, 1);
    assert_true(ev.errors >= 1 && ev.errors <= 2);
    for (int i = 0; i < ev.errors; i++)
        assert_int_equal(ev.statuses[i], UARC_BadTcpInternalError);
    assert_int_equal(uarc_listener_pending_count(l), 0);

    /* With descriptors back, service resumes. */
    uarc_reverse_connection c;
    assert_true(uarc_listener_next(l, &c));
    uarc_reverse_connection_clear(&c);
    int fd = connect_to(uarc_listener_port(l));
    send_all(fd, f.bytes, f.length);
    assert_int_equal(uarc_listener_accept(l, 3000, &c), UARC_Good);
    uarc_reverse_connection_clear(&c);
    close(fd);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

/*
 * Out of descriptors with no spare to drop a connection with: the listener must not spin on its
 * readable listening socket. The limit is lowered to one above the listener's epoll descriptor,
 * the first it opened: every number up to it is in use, and the spare (/dev/null, opened next)
 * lies above it, so closing the spare frees nothing usable and it cannot be reopened.
 */
/* The soft RLIMIT_NOFILE the kernel applies, read from /proc/self/limits through `fd` (opened
 * beforehand, since no descriptor may be left); -1 when unknown. */
static long kernel_nofile_limit(int fd)
{
    char text[4096];
    ssize_t n = lseek(fd, 0, SEEK_SET) == 0 ? read(fd, text, sizeof text - 1) : -1;
    if (n <= 0)
        return -1;
    text[n] = '\0';
    const char *line = strstr(text, "Max open files");
    return line ? strtol(line + strlen("Max open files"), NULL, 10) : -1;
}

static void test_out_of_descriptors_no_spare(void **state)
{
    (void)state;
    int limits = open("/proc/self/limits", O_RDONLY | O_CLOEXEC);
    if (limits < 0)
        skip();
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    uarc_allowlist *a = allow(SERVER_URI, NULL);
    uarc_listener_config o = {.allowlist = a};
    events ev;
    uarc_listener *l = start(&o, &ev);
    assert_int_equal(uarc_listener_fd(l), lowest);
    fake_frame f;
    frame_rhe(&f, SERVER_URI, ENDPOINT_URL);
    int fd = connect_to(uarc_listener_port(l));
    send_all(fd, f.bytes, f.length);

    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)lowest + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int x = dup(0);
    if (x >= 0 || kernel_nofile_limit(limits) != (long)lowest + 1) {
        /* the kernel does not enforce the limit: valgrind, for one, only emulates it, and
         * closes descriptors above it behind the listener's back */
        if (x >= 0)
            close(x);
        setrlimit(RLIMIT_NOFILE, &saved);
        close(limits);
        close(fd);
        uarc_listener_delete(l);
        uarc_allowlist_delete(a);
        skip();
    }

    /* 600 ms of waiting in calls that may each wait 100 ms: a spinning listener returns at
     * once, every time, with an error event each time. */
    int calls = 0, paused_for = 0;
    uarc_status status = UARC_Good;
    int64_t end = now_ms() + 600;
    while (now_ms() < end && calls < 1000 && status == UARC_Good) {
        status = uarc_listener_process(l, 100);
        if (++calls == 1)
            paused_for = uarc_listener_timeout_ms(l);
    }
    setrlimit(RLIMIT_NOFILE, &saved); /* before any assertion can end the test */
    assert_int_equal(status, UARC_Good);
    if (calls > 20)
        fail_msg("%d calls in 600 ms: the listener spins", calls);
    /* paused, and an event loop is told when to call again */
    assert_true(paused_for > 0 && paused_for <= 250);
    assert_int_equal(ev.errors, 1); /* reported once */
    assert_int_equal(ev.statuses[0], UARC_BadTcpInternalError);
    assert_string_equal(ev.peer, "");
    assert_non_null(strstr(ev.reason, "out of file descriptors"));
    assert_int_equal(ev.accepted, 0);

    /* With descriptors back, the waiting server is accepted after the back-off. */
    assert_true(drive_until(l, &ev.accepted, 1, 3000));
    uarc_reverse_connection c;
    assert_true(uarc_listener_next(l, &c));
    uarc_reverse_connection_clear(&c);
    assert_int_equal(ev.errors, 1);
    assert_int_equal(uarc_listener_timeout_ms(l), -1);
    close(fd);
    close(limits);
    uarc_listener_delete(l);
    uarc_allowlist_delete(a);
}

int main(void)
{
    raise_fd_limit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_descriptor_leak),
        cmocka_unit_test(test_failing_allocations),
        cmocka_unit_test(test_out_of_descriptors),
        cmocka_unit_test(test_out_of_descriptors_no_spare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
