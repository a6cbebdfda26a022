/*
 * fleetsim: plays N OPC UA servers that reverse-connect to one client, from one thread. This file
 * is the I/O edge: options, sockets, one epoll set, re-dial timers, chaos and the stats line; the
 * protocol is in sim_*.c and takes bytes and time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "sim.h"

#define SCAN_MS 50

typedef enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_UP, LINK_SILENT } link_state;

typedef struct fleet_server {
    sim_server sim;
    sim_conn conn;
    int fd;
    link_state state;
    bool want_write;
    uint32_t failures;
    int64_t redial_at_ms;
    int64_t due_ms;     /* subscriptions and session expiry */
    int64_t release_ms; /* --slow-ms: `out` leaves at this time */
    int64_t drop_at_ms; /* an armed drop ends the connection at this time, at the latest */
} fleet_server;

typedef struct fleet {
    fleet_server *servers;
    uint32_t count;
    int epoll;
    struct sockaddr_storage target;
    socklen_t target_length;
    int64_t redial_ms;
    int64_t slow_ms;
    chaos_config chaos;
    uint64_t random;
    sim_config config;
    sim_stats stats;
    sim_security *security;      /* --security-policy, else NULL */
    const char *certificate_dir; /* --certificate-dir, else NULL */
    bool chaos_log;              /* --chaos-log: a line per chaos event */
    bool chaos_paused;           /* --chaos-paused until SIGUSR1 */
    int64_t start_ms; /* the fleet dialed: t_ms of stats and chaos lines counts from here */
    /* counters of the I/O edge */
    uint64_t dials, dial_failures, closed, drops, restarts, silenced, garbage;
} fleet;

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t chaos_toggles; /* SIGUSR1s received */

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        chaos_toggles++;
    else
        stopping = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- options ------------------------------------------------------------------------------ */

static const struct option_help {
    const char *name;
    const char *arg;
    const char *help;
} options_help[] = {
    {"target", "HOST:PORT", "the client's Reverse Connect listener to dial (required)"},
    {"servers", "N", "number of simulated servers (default 10)"},
    {"redial-ms", "MS",
     "delay before dialing again after a connection ended (default 1000); doubled after each "
     "connection that opened no channel, up to 30 s, with +-25 % jitter"},
    {"items", "N", "variables ns=1;i=1000 .. 1000+N-1 per server (default 10)"},
    {"rate", "HZ", "changes per second of ns=1;s=Counter and every item (default 1; 0: never)"},
    {"uri-prefix", "PREFIX", "ServerUri of server k is PREFIX + k (default urn:fleetsim:)"},
    {"endpoint", "URL",
     "EndpointUrl of server k is URL/k (default opc.tcp://localhost:4840/fleetsim)"},
    {"drop-per-min", "F",
     "chaos: close the connection of this fraction of servers per minute; a server with a "
     "subscription closes instead of sending its next PublishResponse with data (within 2 s), "
     "so the client has to Republish it"},
    {"restart-per-min", "F",
     "chaos: restart this fraction of servers per minute (close, forget sessions and "
     "subscriptions, variables count from 0 again)"},
    {"silent", "F",
     "chaos: this fraction of servers per minute stop answering without closing (no FIN); they "
     "dial again once the client closes"},
    {"garbage", "F", "chaos: this fraction of servers per minute send 32 bytes of garbage"},
    {"chaos-log", NULL,
     "print a line {\"event\":\"chaos\",\"kind\":\"restart\",\"server\":K,\"t_ms\":T} on stderr "
     "for every chaos event (kind drop, restart, silent or garbage; K the server's index)"},
    {"chaos-paused", NULL,
     "the chaos knobs start switched off; each SIGUSR1 switches them on or off (so a soak can "
     "start once every server is up and end with a quiet fleet)"},
    {"security-policy", "NAME",
     "also offer this policy (Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss) in "
     "modes Sign and SignAndEncrypt besides None: every server gets its own certificate "
     "(subjectAltName URI = its ServerUri, self-signed) of one RSA-2048 key made at start, and "
     "lists it in GetEndpoints; anonymous identity"},
    {"certificate-dir", "DIR",
     "with --security-policy: write each server's certificate to DIR/server-K.der before dialing "
     "(a trust list for the client)"},
    {"slow-ms", "MS", "hold every answer this long before sending it (default 0)"},
    {"stats-ms", "MS", "print a stats line (JSON) on stderr this often (default 5000; 0: never)"},
    {"duration", "S", "exit after S seconds (default: run until SIGINT or SIGTERM)"},
    {"seed", "N", "seed of the chaos and jitter random numbers (default: from the clock)"},
    {"help", NULL, "print this help"},
};
#define OPTION_COUNT (sizeof options_help / sizeof options_help[0])

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fleetsim --target HOST:PORT [OPTIONS]\n"
            "\n"
            "Plays N OPC UA servers (SecurityPolicy None, and --security-policy; anonymous) from\n"
            "one thread. Each has its own ServerUri and EndpointUrl, dials HOST:PORT, sends\n"
            "ReverseHello and serves the server side of UA-TCP: HEL/ACK, OpenSecureChannel and\n"
            "renewals, CreateSession, ActivateSession, CloseSession, GetEndpoints, Read, Browse,\n"
            "subscriptions (Create, Modify, Delete, SetPublishingMode, CreateMonitoredItems,\n"
            "DeleteMonitoredItems, SetMonitoringMode, Publish, Republish, TransferSubscriptions).\n"
            "When a connection ends it dials again; sessions and subscriptions survive until a\n"
            "restart or their session timeout.\n"
            "\n"
            "Address space: i=84 Root, i=85 Objects, i=2253 Server, i=2255 NamespaceArray,\n"
            "i=2256 ServerStatus, i=2258 CurrentTime, i=2259 State, i=11714\n"
            "MaxMonitoredItemsPerCall, ns=1;s=Counter (UInt32: changes since start) and\n"
            "ns=1;i=1000+k (Double: changes + k/1000).\n"
            "\n"
            "Options:\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char left[40];
        snprintf(left, sizeof left, "--%s%s%s", options_help[i].name,
                 options_help[i].arg ? " " : "", options_help[i].arg ? options_help[i].arg : "");
        fprintf(out, "  %-24s", left);
        /* Word-wrapped into a column from 28 to 100. */
        const char *text = options_help[i].help;
        size_t column = 26;
        while (*text) {
            size_t word = strcspn(text, " ");
            if (column + 1 + word > 100) {
                fprintf(out, "\n%27s", "");
                column = 27;
            } else {
                fputc(' ', out);
                column++;
            }
            fwrite(text, 1, word, out);
            column += word;
            text += word;
            text += strspn(text, " ");
        }
        fputc('\n', out);
    }
    fprintf(out,
            "\n"
            "Once every server is made (certificates too), a line {\"event\":\"ready\",...} on\n"
            "stderr, and all dial.\n"
            "Stats line (stderr, one JSON object): event \"stats\", t_ms, servers, connecting,\n"
            "up (sockets), secure (channels open), active (servers with a session on their\n"
            "channel), subscribed (of which with a monitored item), silent, dials, dial_failures,\n"
            "closed, drops, restarts, silenced, garbage, requests, faults, sessions (created),\n"
            "activations, publishes, keepalives, notifications (values sent), acknowledged (of\n"
            "which the client acknowledged), republishes, transfers, protocol_errors. Counters\n"
            "count since the start; the first six are the state now.\n"
            "Exit status: 0 after --duration or a signal, 2 for a usage error, 1 otherwise.\n");
}

static bool parse_target(fleet *f, const char *text)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return false;
    char host[256];
    size_t n = (size_t)(colon - text);
    if (n >= sizeof host)
        return false;
    memcpy(host, text, n);
    host[n] = '\0';
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return false;
    memcpy(&f->target, res->ai_addr, res->ai_addrlen);
    f->target_length = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static bool number(const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- sockets ------------------------------------------------------------------------------ */

static void watch(fleet *f, fleet_server *s, bool write)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (write ? EPOLLOUT : 0u),
                             .data.u32 = (uint32_t)(s - f->servers)};
    epoll_ctl(f->epoll, EPOLL_CTL_MOD, s->fd, &ev);
    s->want_write = write;
}

static void link_down(fleet *f, fleet_server *s, int64_t now)
{
    bool good = s->conn.state == SIM_CONN_SECURE || s->conn.state == SIM_CONN_CLOSED;
    if (s->state != LINK_CONNECTING)
        f->closed++;
    close(s->fd);
    s->fd = -1;
    if (s->state == LINK_UP || s->state == LINK_SILENT)
        sim_conn_closed(&s->conn);
    s->failures = good ? 0 : s->failures + 1;
    s->state = LINK_DOWN;
    s->drop_at_ms = 0;
    s->redial_at_ms = now + chaos_backoff(f->redial_ms, s->failures, &f->random);
}

/* Sends what `out` holds; false when the socket failed. */
static bool flush(fleet *f, fleet_server *s, int64_t now)
{
    sim_buf *out = &s->conn.out;
    if (s->state != LINK_UP || out->length == 0 || now < s->release_ms) {
        if (s->want_write && out->length == 0)
            watch(f, s, false);
        return true;
    }
    size_t sent = 0;
    while (sent < out->length) {
        ssize_t k = send(s->fd, out->data + sent, out->length - sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (k <= 0)
            return false;
        sent += (size_t)k;
    }
    sim_buf_consume(out, sent);
    if ((out->length > 0) != s->want_write)
        watch(f, s, out->length > 0);
    return true;
}

static void dial(fleet *f, fleet_server *s, int64_t now)
{
    f->dials++;
    int fd = socket(f->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        f->dial_failures++;
        s->failures++;
        s->redial_at_ms = now + chaos_backoff(f->redial_ms, s->failures, &f->random);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&f->target, f->target_length) != 0 && errno != EINPROGRESS) {
        close(fd);
        f->dial_failures++;
        s->failures++;
        s->redial_at_ms = now + chaos_backoff(f->redial_ms, s->failures, &f->random);
        return;
    }
    s->fd = fd;
    s->state = LINK_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
                             .data.u32 = (uint32_t)(s - f->servers)};
    epoll_ctl(f->epoll, EPOLL_CTL_ADD, fd, &ev);
    s->want_write = true;
}

static void connected(fleet *f, fleet_server *s, int64_t now)
{
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error) {
        f->dial_failures++;
        link_down(f, s, now);
        return;
    }
    s->state = LINK_UP;
    sim_conn_start(&s->conn, &s->sim, now);
    s->release_ms = 0;
    if (!flush(f, s, now))
        link_down(f, s, now);
}

static void readable(fleet *f, fleet_server *s, int64_t now)
{
    static uint8_t buffer[65536];
    for (;;) {
        ssize_t k = recv(s->fd, buffer, sizeof buffer, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (k <= 0) {
            link_down(f, s, now);
            return;
        }
        if (s->state == LINK_SILENT)
            continue;
        bool had_output = s->conn.out.length > 0;
        bool keep = sim_conn_receive(&s->conn, buffer, (size_t)k, now);
        if (f->slow_ms && !had_output && s->conn.out.length > 0)
            s->release_ms = now + f->slow_ms;
        s->due_ms = now; /* a request may have changed the subscriptions */
        if (!keep) {
            if (s->conn.lose_next_publish)
                f->drops++;
            /* Best effort for the ERR or the last answer, then the FIN. */
            s->release_ms = 0;
            flush(f, s, now);
            link_down(f, s, now);
            return;
        }
        if ((size_t)k < sizeof buffer)
            break;
    }
    if (!flush(f, s, now))
        link_down(f, s, now);
}

/* ---- timers and chaos --------------------------------------------------------------------- */

static bool has_subscription(const sim_server *server)
{
    for (const sim_session *session = server->sessions; session; session = session->next) {
        if (session->subscriptions)
            return true;
    }
    return false;
}

static void log_chaos(const fleet *f, const fleet_server *s, const char *kind, int64_t now)
{
    if (!f->chaos_log)
        return;
    fprintf(stderr, "{\"event\":\"chaos\",\"kind\":\"%s\",\"server\":%u,\"t_ms\":%lld}\n", kind,
            (unsigned)(s - f->servers), (long long)(now - f->start_ms));
}

static void chaos(fleet *f, fleet_server *s, int64_t elapsed, int64_t now)
{
    if (f->chaos_paused)
        return;
    switch (chaos_draw(&f->chaos, elapsed, &f->random)) {
    case CHAOS_DROP:
        /* With a subscription, the connection ends at its next PublishResponse with data, which
         * is lost in flight (the client must Republish it); without, or if none comes within
         * 2 s, it ends now or then. */
        log_chaos(f, s, "drop", now);
        if (!s->conn.lose_next_publish && has_subscription(&s->sim)) {
            s->conn.lose_next_publish = true;
            s->drop_at_ms = now + 2000;
            break;
        }
        f->drops++;
        link_down(f, s, now);
        break;
    case CHAOS_RESTART:
        f->restarts++;
        log_chaos(f, s, "restart", now);
        link_down(f, s, now);
        sim_server_restart(&s->sim, now);
        break;
    case CHAOS_SILENT:
        f->silenced++;
        log_chaos(f, s, "silent", now);
        s->state = LINK_SILENT;
        sim_buf_free(&s->conn.out);
        watch(f, s, false);
        break;
    case CHAOS_GARBAGE: {
        f->garbage++;
        log_chaos(f, s, "garbage", now);
        uint8_t junk[32];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)(chaos_uniform(&f->random) * 256);
        sim_buf_append(&s->conn.out, junk, sizeof junk);
        if (!flush(f, s, now))
            link_down(f, s, now);
        break;
    }
    default:
        break;
    }
}

static void scan(fleet *f, int64_t elapsed, int64_t now)
{
    for (uint32_t i = 0; i < f->count; i++) {
        fleet_server *s = &f->servers[i];
        if (s->state == LINK_DOWN) {
            if (now >= s->redial_at_ms)
                dial(f, s, now);
            continue;
        }
        if (s->state != LINK_UP)
            continue;
        if (now >= s->due_ms) {
            int64_t next = sim_subscriptions_tick(&s->sim, now);
            s->due_ms = next < now + 1000 ? next : now + 1000;
        }
        if (s->drop_at_ms && now >= s->drop_at_ms) {
            f->drops++; /* an armed drop that found no message to lose */
            link_down(f, s, now);
            continue;
        }
        if (!sim_conn_tick(&s->conn, now)) {
            if (s->conn.lose_next_publish)
                f->drops++;
            flush(f, s, now);
            link_down(f, s, now);
            continue;
        }
        if (!flush(f, s, now)) {
            link_down(f, s, now);
            continue;
        }
        chaos(f, s, elapsed, now);
    }
}

static void print_stats(const fleet *f, int64_t t)
{
    uint64_t connecting = 0, up = 0, secure = 0, silent = 0, active = 0, subscribed = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        const fleet_server *s = &f->servers[i];
        connecting += s->state == LINK_CONNECTING;
        up += s->state == LINK_UP;
        silent += s->state == LINK_SILENT;
        secure += s->state == LINK_UP && s->conn.state == SIM_CONN_SECURE;
        bool has_session = false, has_items = false;
        for (const sim_session *session = s->sim.sessions; session; session = session->next) {
            if (session->conn != &s->conn || s->state != LINK_UP)
                continue;
            has_session = true;
            for (const sim_subscription *sub = session->subscriptions; sub; sub = sub->next)
                has_items = has_items || sub->item_count > 0;
        }
        active += has_session;
        subscribed += has_items;
    }
    const sim_stats *st = &f->stats;
    const struct {
        const char *name;
        uint64_t value;
    } fields[] = {
        {"servers", f->count},
        {"connecting", connecting},
        {"up", up},
        {"secure", secure},
        {"active", active},
        {"subscribed", subscribed},
        {"silent", silent},
        {"dials", f->dials},
        {"dial_failures", f->dial_failures},
        {"closed", f->closed},
        {"drops", f->drops},
        {"restarts", f->restarts},
        {"silenced", f->silenced},
        {"garbage", f->garbage},
        {"requests", st->requests},
        {"faults", st->faults},
        {"sessions", st->sessions},
        {"activations", st->activations},
        {"publishes", st->publishes},
        {"keepalives", st->keepalives},
        {"notifications", st->notifications},
        {"acknowledged", st->acknowledged},
        {"republishes", st->republishes},
        {"transfers", st->transfers},
        {"protocol_errors", st->protocol_errors},
    };
    fprintf(stderr, "{\"event\":\"stats\",\"t_ms\":%lld", (long long)t);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        fprintf(stderr, ",\"%s\":%llu", fields[i].name, (unsigned long long)fields[i].value);
    fputs("}\n", stderr);
    fflush(stderr);
}

/* ---- main --------------------------------------------------------------------------------- */

static int parse_options(fleet *f, int argc, char **argv, double *duration, double *stats_ms)
{
    struct option long_options[OPTION_COUNT + 1];
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        long_options[i] =
            (struct option){options_help[i].name,
                            options_help[i].arg ? required_argument : no_argument, NULL, (int)i};
    }
    long_options[OPTION_COUNT] = (struct option){0};
    double servers = 10, redial = 1000, items = 10, rate = 1, slow = 0, seed = 0;
    bool target = false;
    int index;
    for (;;) {
        int c = getopt_long(argc, argv, "", long_options, &index);
        if (c == -1)
            break;
        if (c < 0 || (size_t)c >= OPTION_COUNT)
            return 2;
        const char *name = options_help[c].name;
        bool ok = true;
        if (strcmp(name, "help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(name, "target") == 0) {
            ok = target = parse_target(f, optarg);
        } else if (strcmp(name, "servers") == 0) {
            ok = number(optarg, 1, 1000000, &servers);
        } else if (strcmp(name, "redial-ms") == 0) {
            ok = number(optarg, 1, 3600000, &redial);
        } else if (strcmp(name, "items") == 0) {
            ok = number(optarg, 0, SIM_MAX_ITEMS, &items);
        } else if (strcmp(name, "rate") == 0) {
            ok = number(optarg, 0, 1000, &rate);
        } else if (strcmp(name, "uri-prefix") == 0) {
            f->config.uri_prefix = optarg;
        } else if (strcmp(name, "endpoint") == 0) {
            f->config.endpoint = optarg;
        } else if (strcmp(name, "drop-per-min") == 0) {
            ok = number(optarg, 0, 1000, &f->chaos.drop_per_min);
        } else if (strcmp(name, "restart-per-min") == 0) {
            ok = number(optarg, 0, 1000, &f->chaos.restart_per_min);
        } else if (strcmp(name, "silent") == 0) {
            ok = number(optarg, 0, 1000, &f->chaos.silent_per_min);
        } else if (strcmp(name, "garbage") == 0) {
            ok = number(optarg, 0, 1000, &f->chaos.garbage_per_min);
        } else if (strcmp(name, "chaos-log") == 0) {
            f->chaos_log = true;
        } else if (strcmp(name, "chaos-paused") == 0) {
            f->chaos_paused = true;
        } else if (strcmp(name, "security-policy") == 0) {
            char uri[160];
            snprintf(uri, sizeof uri, "%s%s",
                     strchr(optarg, '#') ? "" : "http://opcfoundation.org/UA/SecurityPolicy#",
                     optarg);
            f->security = sim_security_new(uri);
            ok = f->security != NULL;
        } else if (strcmp(name, "certificate-dir") == 0) {
            f->certificate_dir = optarg;
        } else if (strcmp(name, "slow-ms") == 0) {
            ok = number(optarg, 0, 3600000, &slow);
        } else if (strcmp(name, "stats-ms") == 0) {
            ok = number(optarg, 0, 86400000, stats_ms);
        } else if (strcmp(name, "duration") == 0) {
            ok = number(optarg, 0, 1e7, duration);
        } else if (strcmp(name, "seed") == 0) {
            ok = number(optarg, 1, 1e15, &seed);
        }
        if (!ok) {
            fprintf(stderr, "fleetsim: bad value for --%s: %s\n", name, optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fleetsim: unexpected argument: %s\n", argv[optind]);
        return 2;
    }
    if (!target) {
        fprintf(stderr, "fleetsim: --target HOST:PORT is required (fleetsim --help)\n");
        return 2;
    }
    if (f->certificate_dir && !f->security) {
        fprintf(stderr, "fleetsim: --certificate-dir needs --security-policy\n");
        return 2;
    }
    f->count = (uint32_t)servers;
    f->redial_ms = (int64_t)redial;
    f->slow_ms = (int64_t)slow;
    f->config.items = (uint32_t)items;
    f->config.rate_hz = rate;
    f->random = seed > 0 ? (uint64_t)seed : (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    return 0;
}

/* --certificate-dir: DIR/server-K.der for every server. */
static bool write_certificates(const fleet *f)
{
    for (uint32_t i = 0; i < f->count; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/server-%u.der", f->certificate_dir, (unsigned)i);
        uarc_bytestring cert = sim_server_certificate(&f->servers[i].sim);
        FILE *file = fopen(path, "wb");
        bool ok = file && fwrite(cert.data, 1, cert.length, file) == cert.length;
        if (file && fclose(file) != 0)
            ok = false;
        if (!ok) {
            fprintf(stderr, "fleetsim: cannot write %s: %s\n", path, strerror(errno));
            return false;
        }
    }
    return true;
}

/* Each server holds one descriptor: raise the soft limit as far as the hard one allows. */
static bool enough_descriptors(uint32_t servers)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return true;
    rlim_t want = (rlim_t)servers + 64;
    if (limit.rlim_cur < want) {
        limit.rlim_cur =
            limit.rlim_max == RLIM_INFINITY || limit.rlim_max > want ? want : limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur >= want;
}

int main(int argc, char **argv)
{
    static fleet f;
    double duration = 0, stats_ms = 5000;
    int status = parse_options(&f, argc, argv, &duration, &stats_ms);
    if (status)
        return status;
    if (!enough_descriptors(f.count)) {
        fprintf(stderr, "fleetsim: %u servers need %u descriptors; raise `ulimit -n`\n", f.count,
                f.count + 64);
        return 1;
    }
    f.config.stats = &f.stats;
    f.config.security = f.security;
    f.servers = calloc(f.count, sizeof *f.servers);
    f.epoll = epoll_create1(EPOLL_CLOEXEC);
    if (!f.servers || f.epoll < 0) {
        fprintf(stderr, "fleetsim: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int64_t start = now_ms();
    for (uint32_t i = 0; i < f.count; i++) {
        if (!sim_server_init(&f.servers[i].sim, &f.config, i, start)) {
            fprintf(stderr, "fleetsim: cannot make the certificate of server %u\n", (unsigned)i);
            return 1;
        }
        f.servers[i].fd = -1;
    }
    if (f.certificate_dir && !write_certificates(&f))
        return 1;
    /* Certificates take a signature each: the fleet dials once all are made, and says when. */
    start = f.start_ms = now_ms();
    for (uint32_t i = 0; i < f.count; i++)
        f.servers[i].redial_at_ms = start; /* all dial at once */
    fprintf(stderr, "{\"event\":\"ready\",\"servers\":%u}\n", (unsigned)f.count);
    fflush(stderr);
    int64_t last_scan = start - SCAN_MS, next_stats = start + (int64_t)stats_ms;
    int64_t end = duration > 0 ? start + (int64_t)(duration * 1000) : INT64_MAX;
    static struct epoll_event events[1024];
    sig_atomic_t toggles_seen = 0;
    while (!stopping) {
        int64_t now = now_ms();
        if (now >= end)
            break;
        for (; toggles_seen != chaos_toggles; toggles_seen++)
            f.chaos_paused = !f.chaos_paused;
        if (now - last_scan >= SCAN_MS) {
            scan(&f, now - last_scan, now);
            last_scan = now;
        }
        if (stats_ms > 0 && now >= next_stats) {
            print_stats(&f, now - start);
            next_stats = now + (int64_t)stats_ms;
        }
        int64_t wait = last_scan + SCAN_MS - now_ms();
        int n = epoll_wait(f.epoll, events, 1024, wait < 0 ? 0 : (int)wait);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "fleetsim: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        now = now_ms();
        for (int i = 0; i < n; i++) {
            fleet_server *s = &f.servers[events[i].data.u32];
            if (s->fd < 0)
                continue;
            if (s->state == LINK_CONNECTING) {
                connected(&f, s, now);
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                readable(&f, s, now);
            if (s->fd >= 0 && (events[i].events & EPOLLOUT) && !flush(&f, s, now))
                link_down(&f, s, now);
        }
    }
    if (stats_ms > 0)
        print_stats(&f, now_ms() - start);
    for (uint32_t i = 0; i < f.count; i++) {
        if (f.servers[i].fd >= 0) {
            close(f.servers[i].fd);
            if (f.servers[i].state != LINK_CONNECTING)
                sim_conn_closed(&f.servers[i].conn);
        }
        sim_server_clear(&f.servers[i].sim);
    }
    free(f.servers);
    sim_security_delete(f.security);
    close(f.epoll);
    return 0;
}
