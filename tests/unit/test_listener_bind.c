/*
 * Listener binding with port 0 over several addresses: every socket gets the one port the kernel
 * chose for the first, whether the addresses are given one by one or come from a name that
 * resolves to several.
 *
 * Host names resolve differently from host to host (Debian maps localhost to 127.0.0.1 and ::1,
 * other systems to 127.0.0.1 only), so this program defines getaddrinfo itself; the library's
 * call resolves to it. Names under .invalid (never resolvable, RFC 6761) get scripted answers,
 * every other name goes to the C library's getaddrinfo.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_server.h"
#include "uarc/listener.h"

/* Resolves to ::1, then 127.0.0.1, as localhost does on Debian. */
#define DUAL_NAME "dual-loopback.invalid"
/* Resolves to ::1; the first time it is asked, the port it is asked for is taken on ::1 first. */
#define CLASH_NAME "clash-loopback.invalid"

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

static int clash_fd = -1;        /* the socket that takes the port, kept until the test ends */
static uint16_t clash_port;      /* the port it took */
static bool clash_armed = false; /* take a port at the next CLASH_NAME lookup */

static getaddrinfo_fn real_getaddrinfo(void)
{
    static getaddrinfo_fn real;
    if (!real)
        real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    assert_non_null(real);
    return real;
}

static int listen_on_ipv6_loopback(uint16_t port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    a.sin6_addr = in6addr_loopback;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int getaddrinfo(const char *restrict name, const char *restrict service,
                const struct addrinfo *restrict hints, struct addrinfo **restrict result)
{
    getaddrinfo_fn real = real_getaddrinfo();
    bool dual = name && strcmp(name, DUAL_NAME) == 0;
    bool clash = name && strcmp(name, CLASH_NAME) == 0;
    if (!dual && !clash)
        return real(name, service, hints, result);
    struct addrinfo numeric = *hints;
    numeric.ai_flags |= AI_NUMERICHOST;
    if (clash && clash_armed) {
        clash_armed = false;
        clash_port = (uint16_t)atoi(service);
        clash_fd = listen_on_ipv6_loopback(clash_port);
        assert_true(clash_fd >= 0);
    }
    int rc = real("::1", service, &numeric, result);
    if (rc != 0 || clash)
        return rc;
    struct addrinfo *last = *result;
    while (last->ai_next)
        last = last->ai_next;
    /* glibc's freeaddrinfo frees entry by entry, so two lists joined free as one. */
    rc = real("127.0.0.1", service, &numeric, &last->ai_next);
    if (rc != 0) {
        freeaddrinfo(*result);
        *result = NULL;
    }
    return rc;
}

static bool have_ipv6_loopback(void)
{
    int fd = listen_on_ipv6_loopback(0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Listens with port 0 on `addresses`; fails the test unless that works. */
static uarc_listener *start(const char *const *addresses, size_t count)
{
    uarc_listener_config o = {.bind_addresses = addresses, .bind_address_count = count};
    uarc_listener *l = uarc_listener_new(&o);
    assert_non_null(l);
    uarc_status s = uarc_listener_listen(l);
    if (s != UARC_Good)
        fail_msg("listen: %s: %s", uarc_status_name(s), uarc_listener_error(l));
    assert_int_not_equal(uarc_listener_port(l), 0);
    return l;
}

/* The listener shows exactly `want` (in any order), each on its reported port, and each is
 * reachable there. */
static void expect_bound(uarc_listener *l, const char *const *want, size_t count)
{
    uint16_t port = uarc_listener_port(l);
    assert_int_equal(uarc_listener_address_count(l), count);
    for (size_t i = 0; i < count; i++) {
        char text[UARC_PEER_SIZE];
        bool v6 = strchr(want[i], ':') != NULL;
        snprintf(text, sizeof text, v6 ? "[%s]:%u" : "%s:%u", want[i], (unsigned)port);
        bool found = false;
        for (size_t j = 0; j < count; j++)
            found |= strcmp(uarc_listener_address(l, j), text) == 0;
        if (!found)
            fail_msg("%s is not among the bound addresses (first: %s)", text,
                     uarc_listener_address(l, 0));
        int fd = connect_to_host(want[i], port);
        close(fd);
    }
}

static void test_two_addresses(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    static const char *const both[] = {"127.0.0.1", "::1"};
    uarc_listener *l = start(both, 2);
    expect_bound(l, both, 2);
    uarc_listener_delete(l);

    static const char *const reversed[] = {"::1", "127.0.0.1"};
    l = start(reversed, 2);
    expect_bound(l, reversed, 2);
    uarc_listener_delete(l);
}

static void test_name_with_two_addresses(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    static const char *const name[] = {DUAL_NAME};
    static const char *const both[] = {"::1", "127.0.0.1"};
    uarc_listener *l = start(name, 1);
    expect_bound(l, both, 2);
    uarc_listener_delete(l);

    /* After another address, the name's addresses take that address's port too. */
    static const char *const after[] = {"127.0.0.2", DUAL_NAME};
    static const char *const three[] = {"127.0.0.2", "::1", "127.0.0.1"};
    l = start(after, 2);
    expect_bound(l, three, 3);
    uarc_listener_delete(l);
}

/* The host's own localhost, when it resolves to both loopback addresses. */
static void test_localhost(void **state)
{
    (void)state;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *list = NULL;
    if (real_getaddrinfo()("localhost", "0", &hints, &list) != 0)
        skip();
    bool v4 = false, v6 = false;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        v4 |= ai->ai_family == AF_INET;
        v6 |= ai->ai_family == AF_INET6;
    }
    freeaddrinfo(list);
    if (!v4 || !v6 || !have_ipv6_loopback()) {
        print_message("localhost does not resolve to both IPv4 and IPv6 here; skipped\n");
        skip();
    }
    static const char *const name[] = {"localhost"};
    uarc_listener *l = start(name, 1);
    assert_int_equal(uarc_listener_address_count(l), 2);
    uint16_t port = uarc_listener_port(l);
    for (size_t i = 0; i < 2; i++) {
        const char *shown = uarc_listener_address(l, i);
        const char *colon = strrchr(shown, ':');
        assert_non_null(colon);
        assert_int_equal(atoi(colon + 1), port);
    }
    uarc_listener_delete(l);
}

/* An address reached twice is one socket: given twice, or once directly and once by a name. */
static void test_address_twice(void **state)
{
    (void)state;
    static const char *const twice[] = {"127.0.0.1", "127.0.0.1"};
    static const char *const one[] = {"127.0.0.1"};
    uarc_listener *l = start(twice, 2);
    expect_bound(l, one, 1);
    uarc_listener_delete(l);
    if (!have_ipv6_loopback())
        return;
    static const char *const overlap[] = {"::1", DUAL_NAME};
    static const char *const both[] = {"::1", "127.0.0.1"};
    l = start(overlap, 2);
    expect_bound(l, both, 2);
    uarc_listener_delete(l);
}

/* The port the kernel chose for the first address is taken on a later one: with port 0 the
 * listener starts over on another port; with a port given, that is an error. */
static void test_port_taken_on_later_address(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    static const char *const addresses[] = {"127.0.0.1", CLASH_NAME};
    clash_armed = true;
    uarc_listener *l = start(addresses, 2);
    assert_false(clash_armed);
    assert_int_not_equal(clash_port, 0);
    assert_int_not_equal(uarc_listener_port(l), clash_port);
    static const char *const both[] = {"127.0.0.1", "::1"};
    expect_bound(l, both, 2);
    uarc_listener_delete(l);
    close(clash_fd);
    clash_fd = -1;

    /* A fixed port: no second try. Borrow a free one from a listener on 127.0.0.1 alone. */
    l = start(addresses, 1);
    uint16_t port = uarc_listener_port(l);
    uarc_listener_delete(l);
    uarc_listener_config o = {.bind_addresses = addresses, .bind_address_count = 2, .port = port};
    l = uarc_listener_new(&o);
    assert_non_null(l);
    clash_armed = true;
    assert_int_equal(uarc_listener_listen(l), UARC_BadTcpInternalError);
    assert_int_equal(clash_port, port);
    if (!strstr(uarc_listener_error(l), "Address already in use"))
        fail_msg("error \"%s\"", uarc_listener_error(l));
    assert_int_equal(uarc_listener_address_count(l), 0);
    uarc_listener_delete(l);
    close(clash_fd);
    clash_fd = -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_addresses),
        cmocka_unit_test(test_name_with_two_addresses),
        cmocka_unit_test(test_localhost),
        cmocka_unit_test(test_address_twice),
        cmocka_unit_test(test_port_taken_on_later_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
