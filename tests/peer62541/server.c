/*
 * A test peer on open62541 1.5.7: an OPC UA server on 127.0.0.1 that offers SecurityPolicy None
 * and the RSA policies (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss, modes Sign
 * and SignAndEncrypt) with a certificate it makes at start, with --ecc also the ECC policies
 * (ECC_nistP256, ECC_nistP384, ECC_brainpoolP256r1, ECC_brainpoolP384r1), each with an EC
 * certificate of its curve; accepts anonymous, UserName and X509 user identities, and dials uarc
 * listeners with Reverse Connect. See README.md beside it.
 *
 * It prints exactly one JSON line on stdout once it listens (open62541's own log goes to stderr),
 * and exits 0 on SIGTERM or SIGINT, or when its stdin is a pipe or socket that closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <open62541/plugin/accesscontrol_default.h>
#include <open62541/plugin/certificategroup_default.h>
#include <open62541/plugin/create_certificate.h>
#include <open62541/plugin/log_stdout.h>
#include <open62541/server.h>
#include <open62541/server_config_default.h>

#include "address_space.h"

#define MAX_LIST 32

static const char usage_text[] =
    "usage: server --uri URI [options]\n"
    "  --uri URI                 ApplicationUri, also the certificate's subjectAltName URI and\n"
    "                            the ServerUri of its ReverseHello (required)\n"
    "  --port N                  listening port on 127.0.0.1 (default 0: the kernel's choice)\n"
    "  --reverse URL             dial this listener (opc.tcp://HOST:PORT); repeatable\n"
    "  --reconnect-interval MS   re-dial delay after a reverse connection ends (default 200)\n"
    "  --trust-client FILE       trust this client certificate (DER); repeatable. Default: every\n"
    "                            client certificate is accepted\n"
    "  --trust-user FILE         trust this user certificate (DER) for X509 identities;\n"
    "                            repeatable. Default: every user certificate is accepted\n"
    "  --user NAME:PASSWORD      accept this UserName identity; repeatable\n"
    "  --no-anonymous            refuse anonymous sessions\n"
    "  --certificate FILE        its certificate (DER): the server's own, perhaps followed by\n"
    "                            issuers of it (a chain, sent as it is); with --private-key\n"
    "                            FILE (DER or PEM). Default: a self-signed one made at start\n"
    "  --certificate-out FILE    write the server's certificate (DER) before the started line;\n"
    "                            with --ecc also each EC certificate, to FILE without its .der\n"
    "                            and -CURVE.der added (peer-prime256v1.der, ...)\n"
    "  --ecc                     also offer the ECC policies, each with an EC certificate\n"
    "  --max-publish-requests N  PublishRequests a session queues (open62541's\n"
    "                            maxPublishReqPerSession; default: its own); one more gets the\n"
    "                            oldest answered BadTooManyPublishRequests\n"
    "  --max-monitored-items-per-call N\n"
    "                            OperationLimits/MaxMonitoredItemsPerCall (open62541's\n"
    "                            maxMonitoredItemsPerCall; default 0: none); a Create/Modify/\n"
    "                            SetMonitoringMode/DeleteMonitoredItems of more items gets\n"
    "                            BadTooManyOperations\n"
    "  --advertise-max-monitored-items-per-call N\n"
    "                            what OperationLimits/MaxMonitoredItemsPerCall reads instead\n"
    "                            (0: no limit); the limit above is still enforced\n"
    "  --events-every MS         raise a BaseEventType event on the Server object every MS:\n"
    "                            Message \"tick N\" (N from 1), Severity 100 (default 0: none)\n"
    "  --max-retransmission-queue N\n"
    "                            NotificationMessages a session keeps for Republish (open62541's\n"
    "                            maxRetransmissionQueueSize; default: no limit)\n"
    "  --verbose                 open62541's log from level info (default: warnings)\n";

typedef struct options {
    const char *uri;
    unsigned port;
    const char *reverse[MAX_LIST];
    size_t reverse_count;
    unsigned reconnect_ms;
    const char *trust_client[MAX_LIST];
    size_t trust_client_count;
    const char *trust_user[MAX_LIST];
    size_t trust_user_count;
    UA_UsernamePasswordLogin logins[MAX_LIST];
    size_t login_count;
    bool anonymous;
    const char *certificate, *private_key;
    const char *certificate_out;
    bool ecc;
    unsigned max_publish_requests; /* 0: open62541's default */
    unsigned max_items_per_call;   /* 0: no limit */
    address_space_options space;
    unsigned max_retransmission; /* 0: no limit */
    bool verbose;
} options;

/* The ECC policies --ecc adds, each with its certificate's curve. */
typedef UA_StatusCode (*add_policy_fn)(UA_ServerConfig *, const UA_ByteString *,
                                       const UA_ByteString *);
static const struct {
    const char *curve;
    add_policy_fn add;
} ecc_policies[] = {
    {"prime256v1", UA_ServerConfig_addSecurityPolicyEccNistP256},
    {"secp384r1", UA_ServerConfig_addSecurityPolicyEccNistP384},
    {"brainpoolP256r1", UA_ServerConfig_addSecurityPolicyEccBrainpoolP256r1},
    {"brainpoolP384r1", UA_ServerConfig_addSecurityPolicyEccBrainpoolP384r1},
};
#define ECC_COUNT (sizeof ecc_policies / sizeof ecc_policies[0])

/* Certificates and keys: [0] RSA, [1 + i] the curve of ecc_policies[i]. */
typedef struct identity {
    UA_ByteString certificate[1 + ECC_COUNT], key[1 + ECC_COUNT];
} identity;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(const char *message)
{
    fprintf(stderr, "peer62541: %s\n%s", message, usage_text);
    exit(2);
}

static unsigned parse_uint(const char *option, const char *text, unsigned max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || v > max || text[0] == '-') {
        fprintf(stderr, "peer62541: %s needs a number up to %u, not \"%s\"\n", option, max, text);
        exit(2);
    }
    return (unsigned)v;
}

static void push(const char **list, size_t *count, const char *option, const char *value)
{
    if (*count == MAX_LIST) {
        fprintf(stderr, "peer62541: at most %d %s\n", MAX_LIST, option);
        exit(2);
    }
    list[(*count)++] = value;
}

/* The URI goes into a JSON line unescaped: keep it to characters that need no escape. */
static bool plain_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return false;
    return true;
}

static void parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->anonymous = true;
    o->reconnect_ms = 200;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool flag = strcmp(arg, "--no-anonymous") == 0 || strcmp(arg, "--verbose") == 0 ||
                    strcmp(arg, "--help") == 0 || strcmp(arg, "--ecc") == 0;
        if (!flag && i + 1 >= argc) {
            fprintf(stderr, "peer62541: %s needs a value\n", arg);
            exit(2);
        }
        const char *value = flag ? NULL : argv[++i];
        if (strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (strcmp(arg, "--uri") == 0) {
            o->uri = value;
        } else if (strcmp(arg, "--port") == 0) {
            o->port = parse_uint(arg, value, 65535);
        } else if (strcmp(arg, "--reverse") == 0) {
            push(o->reverse, &o->reverse_count, arg, value);
        } else if (strcmp(arg, "--reconnect-interval") == 0) {
            o->reconnect_ms = parse_uint(arg, value, 600000);
        } else if (strcmp(arg, "--trust-client") == 0) {
            push(o->trust_client, &o->trust_client_count, arg, value);
        } else if (strcmp(arg, "--trust-user") == 0) {
            push(o->trust_user, &o->trust_user_count, arg, value);
        } else if (strcmp(arg, "--user") == 0) {
            const char *colon = strchr(value, ':');
            if (!colon || colon == value)
                usage("--user needs NAME:PASSWORD");
            if (o->login_count == MAX_LIST)
                usage("too many --user");
            UA_UsernamePasswordLogin *l = &o->logins[o->login_count++];
            l->username.data = (UA_Byte *)(uintptr_t)value;
            l->username.length = (size_t)(colon - value);
            l->password.data = (UA_Byte *)(uintptr_t)(colon + 1);
            l->password.length = strlen(colon + 1);
        } else if (strcmp(arg, "--no-anonymous") == 0) {
            o->anonymous = false;
        } else if (strcmp(arg, "--certificate") == 0) {
            o->certificate = value;
        } else if (strcmp(arg, "--private-key") == 0) {
            o->private_key = value;
        } else if (strcmp(arg, "--certificate-out") == 0) {
            o->certificate_out = value;
        } else if (strcmp(arg, "--max-publish-requests") == 0) {
            o->max_publish_requests = parse_uint(arg, value, 1000);
        } else if (strcmp(arg, "--max-monitored-items-per-call") == 0) {
            o->max_items_per_call = parse_uint(arg, value, 1000000);
        } else if (strcmp(arg, "--advertise-max-monitored-items-per-call") == 0) {
            o->space.advertise_limit = true;
            o->space.advertised_limit = parse_uint(arg, value, 1000000);
        } else if (strcmp(arg, "--events-every") == 0) {
            o->space.events_every_ms = parse_uint(arg, value, 3600000);
        } else if (strcmp(arg, "--max-retransmission-queue") == 0) {
            o->max_retransmission = parse_uint(arg, value, 100000);
        } else if (strcmp(arg, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(arg, "--ecc") == 0) {
            o->ecc = true;
        } else {
            fprintf(stderr, "peer62541: unknown argument %s\n%s", arg, usage_text);
            exit(2);
        }
    }
    if (!o->uri)
        usage("--uri is required");
    if (!o->certificate != !o->private_key)
        usage("--certificate and --private-key go together");
    if (!plain_text(o->uri))
        usage("--uri must not hold quotes, backslashes or control characters");
}

static bool read_file(const char *path, UA_ByteString *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    UA_ByteString_init(out);
    bool ok = fseek(f, 0, SEEK_END) == 0;
    long size = ok ? ftell(f) : -1;
    ok = size > 0 && fseek(f, 0, SEEK_SET) == 0 &&
         UA_ByteString_allocBuffer(out, (size_t)size) == UA_STATUSCODE_GOOD &&
         fread(out->data, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    if (!ok)
        UA_ByteString_clear(out);
    return ok;
}

/* Replaces `group` with an in-memory store trusting exactly the certificates in `files`. */
static UA_StatusCode trust_only(UA_CertificateGroup *group, UA_NodeId group_id,
                                const char *const *files, size_t count, const UA_Logger *logger)
{
    UA_TrustListDataType list;
    UA_TrustListDataType_init(&list);
    list.specifiedLists = UA_TRUSTLISTMASKS_TRUSTEDCERTIFICATES;
    list.trustedCertificates = (UA_ByteString *)UA_Array_new(count, &UA_TYPES[UA_TYPES_BYTESTRING]);
    if (!list.trustedCertificates)
        return UA_STATUSCODE_BADOUTOFMEMORY;
    list.trustedCertificatesSize = count;
    for (size_t i = 0; i < count; i++) {
        if (!read_file(files[i], &list.trustedCertificates[i])) {
            fprintf(stderr, "peer62541: cannot read %s\n", files[i]);
            UA_TrustListDataType_clear(&list);
            return UA_STATUSCODE_BADNOTFOUND;
        }
    }
    UA_StatusCode s = UA_CertificateGroup_Memorystore(group, &group_id, &list, logger, NULL);
    UA_TrustListDataType_clear(&list);
    return s;
}

/* curve NULL: RSA-2048; else an EC key on that curve. */
static UA_StatusCode make_certificate(const options *o, const UA_Logger *logger, const char *curve,
                                      UA_ByteString *certificate, UA_ByteString *key)
{
    char san_uri[600];
    snprintf(san_uri, sizeof san_uri, "URI:%s", o->uri);
    UA_String subject[] = {UA_STRING("O=uarc tests"), UA_STRING("CN=uarc open62541 peer")};
    UA_String san[] = {UA_STRING(san_uri), UA_STRING("DNS:localhost"), UA_STRING("IP:127.0.0.1")};
    UA_UInt16 bits = 2048, days = 30;
    UA_KeyValueMap *params = UA_KeyValueMap_new();
    if (!params)
        return UA_STATUSCODE_BADOUTOFMEMORY;
    UA_KeyValueMap_setScalar(params, UA_QUALIFIEDNAME(0, "key-size-bits"), &bits,
                             &UA_TYPES[UA_TYPES_UINT16]);
    UA_KeyValueMap_setScalar(params, UA_QUALIFIEDNAME(0, "expires-in-days"), &days,
                             &UA_TYPES[UA_TYPES_UINT16]);
    UA_String key_type = UA_STRING("EC"), ecc_curve = UA_STRING((char *)(uintptr_t)curve);
    if (curve) {
        UA_KeyValueMap_setScalar(params, UA_QUALIFIEDNAME(0, "key-type"), &key_type,
                                 &UA_TYPES[UA_TYPES_STRING]);
        UA_KeyValueMap_setScalar(params, UA_QUALIFIEDNAME(0, "ecc-curve"), &ecc_curve,
                                 &UA_TYPES[UA_TYPES_STRING]);
    }
    UA_StatusCode s = UA_CreateCertificate(logger, subject, 2, san, 3, UA_CERTIFICATEFORMAT_DER,
                                           params, key, certificate);
    UA_KeyValueMap_delete(params);
    return s;
}

/* Everything but the address space: endpoints, certificates, trust, identities. */
static UA_StatusCode configure(UA_ServerConfig *config, const options *o, const identity *id)
{
    const UA_ByteString *certificate = &id->certificate[0], *key = &id->key[0];
    UA_StatusCode s = UA_ServerConfig_setBasics_withPort(config, (UA_UInt16)o->port);
    if (s != UA_STATUSCODE_GOOD)
        return s;
    /* loopback only */
    char url[64];
    snprintf(url, sizeof url, "opc.tcp://127.0.0.1:%u", o->port);
    UA_Array_delete(config->serverUrls, config->serverUrlsSize, &UA_TYPES[UA_TYPES_STRING]);
    config->serverUrls = UA_String_new();
    if (!config->serverUrls)
        return UA_STATUSCODE_BADOUTOFMEMORY;
    config->serverUrlsSize = 1;
    *config->serverUrls = UA_STRING_ALLOC(url);

    UA_ApplicationDescription *app = &config->applicationDescription;
    UA_String_clear(&app->applicationUri);
    app->applicationUri = UA_STRING_ALLOC(o->uri);
    UA_LocalizedText_clear(&app->applicationName);
    app->applicationName = UA_LOCALIZEDTEXT_ALLOC("en", "uarc open62541 peer");
    config->reverseReconnectInterval = o->reconnect_ms;
    config->allowNonePolicyPassword = false;
    if (o->max_publish_requests)
        config->maxPublishReqPerSession = o->max_publish_requests;
    config->maxMonitoredItemsPerCall = o->max_items_per_call;
    config->serviceNotificationCallback = peer_count_service;
    config->maxRetransmissionQueueSize = o->max_retransmission;

    if ((s = UA_ServerConfig_addSecurityPolicyNone(config, certificate)) != UA_STATUSCODE_GOOD ||
        (s = UA_ServerConfig_addSecurityPolicyBasic256Sha256(config, certificate, key)) !=
            UA_STATUSCODE_GOOD ||
        (s = UA_ServerConfig_addSecurityPolicyAes128Sha256RsaOaep(config, certificate, key)) !=
            UA_STATUSCODE_GOOD ||
        (s = UA_ServerConfig_addSecurityPolicyAes256Sha256RsaPss(config, certificate, key)) !=
            UA_STATUSCODE_GOOD)
        return s;
    for (size_t i = 0; o->ecc && i < ECC_COUNT; i++)
        if ((s = ecc_policies[i].add(config, &id->certificate[1 + i], &id->key[1 + i])) !=
            UA_STATUSCODE_GOOD)
            return s;

    if (o->trust_client_count &&
        (s = trust_only(&config->secureChannelPKI,
                        UA_NS0ID(SERVERCONFIGURATION_CERTIFICATEGROUPS_DEFAULTAPPLICATIONGROUP),
                        o->trust_client, o->trust_client_count, config->logging)) !=
            UA_STATUSCODE_GOOD)
        return s;
    if (o->trust_user_count &&
        (s = trust_only(&config->sessionPKI,
                        UA_NS0ID(SERVERCONFIGURATION_CERTIFICATEGROUPS_DEFAULTUSERTOKENGROUP),
                        o->trust_user, o->trust_user_count, config->logging)) != UA_STATUSCODE_GOOD)
        return s;

    /* One set of token policies (anonymous, X509 as sessionPKI verifies, UserName); each
     * endpoint takes them over with its own policy, and a None endpoint names an encrypting one
     * for the tokens that need it. */
    if (config->accessControl.clear)
        config->accessControl.clear(&config->accessControl);
    s = UA_AccessControl_default(config, o->anonymous, &UA_SECURITY_POLICY_NONE_URI, o->login_count,
                                 o->logins);
    if (s != UA_STATUSCODE_GOOD)
        return s;
    return UA_ServerConfig_addAllEndpoints(config);
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* The URL it listens on: the discovery URL the socket layer added with the real port. */
static bool listening_url(UA_Server *server, char *out, size_t size)
{
    const UA_ApplicationDescription *app = &UA_Server_getConfig(server)->applicationDescription;
    for (size_t i = 0; i < app->discoveryUrlsSize; i++) {
        const UA_String *u = &app->discoveryUrls[i];
        if (u->length < 2 || u->length >= size ||
            (u->data[u->length - 2] == ':' && u->data[u->length - 1] == '0'))
            continue;
        memcpy(out, u->data, u->length);
        out[u->length] = '\0';
        return true;
    }
    return false;
}

static bool write_file(const char *path, const UA_ByteString *data)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data->data, 1, data->length, f) == data->length;
    return fclose(f) == 0 && ok;
}

/* --certificate-out: the RSA certificate at `path`, each EC one beside it. */
static bool write_certificates(const options *o, const identity *id)
{
    const char *path = o->certificate_out;
    if (!write_file(path, &id->certificate[0]))
        return false;
    size_t stem = strlen(path);
    if (stem > 4 && strcmp(path + stem - 4, ".der") == 0)
        stem -= 4;
    for (size_t i = 0; o->ecc && i < ECC_COUNT; i++) {
        char name[1024];
        if (snprintf(name, sizeof name, "%.*s-%s.der", (int)stem, path, ecc_policies[i].curve) >=
                (int)sizeof name ||
            !write_file(name, &id->certificate[1 + i]))
            return false;
    }
    return true;
}

/* True when stdin is a pipe or socket that reached its end. */
static bool stdin_closed(bool watched)
{
    if (!watched)
        return false;
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char buf[256];
    ssize_t n = read(0, buf, sizeof buf);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    options o;
    parse_options(argc, argv, &o);

    /* open62541 logs to stdout: the started line keeps the real stdout, the log gets stderr. */
    int out_fd = dup(1);
    if (out_fd < 0 || dup2(2, 1) < 0) {
        perror("peer62541: dup");
        return 1;
    }
    FILE *out = fdopen(out_fd, "w");
    struct stat st;
    bool watch_stdin = fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
    if (watch_stdin)
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    UA_ServerConfig config;
    memset(&config, 0, sizeof config);
    config.logging = UA_Log_Stdout_new(o.verbose ? UA_LOGLEVEL_INFO : UA_LOGLEVEL_WARNING);
    identity id;
    memset(&id, 0, sizeof id);
    UA_StatusCode s = UA_STATUSCODE_GOOD;
    if (!o.certificate)
        s = make_certificate(&o, config.logging, NULL, &id.certificate[0], &id.key[0]);
    else if (!read_file(o.certificate, &id.certificate[0]) || !read_file(o.private_key, &id.key[0]))
        s = UA_STATUSCODE_BADNOTFOUND;
    for (size_t i = 0; o.ecc && i < ECC_COUNT && s == UA_STATUSCODE_GOOD; i++)
        s = make_certificate(&o, config.logging, ecc_policies[i].curve, &id.certificate[1 + i],
                             &id.key[1 + i]);
    if (s == UA_STATUSCODE_GOOD)
        s = configure(&config, &o, &id);
    if (s != UA_STATUSCODE_GOOD) {
        fprintf(stderr, "peer62541: configuration failed: %s\n", UA_StatusCode_name(s));
        return 1;
    }
    UA_Server *server = UA_Server_newWithConfig(&config);
    if (!server) {
        fprintf(stderr, "peer62541: cannot create the server\n");
        return 1;
    }
    char url[256];
    s = peer_build_address_space(server, &o.space);
    if (s == UA_STATUSCODE_GOOD)
        s = UA_Server_run_startup(server);
    if (s != UA_STATUSCODE_GOOD || !listening_url(server, url, sizeof url)) {
        fprintf(stderr, "peer62541: start failed: %s\n", UA_StatusCode_name(s));
        UA_Server_delete(server);
        return 1;
    }
    if (o.certificate_out && !write_certificates(&o, &id)) {
        fprintf(stderr, "peer62541: cannot write %s\n", o.certificate_out);
        UA_Server_run_shutdown(server);
        UA_Server_delete(server);
        return 1;
    }
    for (size_t i = 0; i < o.reverse_count && s == UA_STATUSCODE_GOOD; i++)
        s = UA_Server_addReverseConnect(server, UA_STRING((char *)(uintptr_t)o.reverse[i]), NULL,
                                        NULL, NULL);
    if (s != UA_STATUSCODE_GOOD) {
        fprintf(stderr, "peer62541: --reverse: %s\n", UA_StatusCode_name(s));
        UA_Server_run_shutdown(server);
        UA_Server_delete(server);
        return 1;
    }
    fprintf(out,
            "{\"event\":\"started\",\"endpoint_url\":\"%s\",\"application_uri\":\"%s\","
            "\"pid\":%ld,\"startup_ms\":%.0f}\n",
            url, o.uri, (long)getpid(), ms_since(&t0));
    fflush(out);

    while (!stop_requested && !stdin_closed(watch_stdin))
        UA_Server_run_iterate(server, true);

    UA_Server_run_shutdown(server);
    UA_Server_delete(server);
    for (size_t i = 0; i < 1 + ECC_COUNT; i++) {
        UA_ByteString_clear(&id.certificate[i]);
        UA_ByteString_clear(&id.key[i]);
    }
    fclose(out);
    return 0;
}
