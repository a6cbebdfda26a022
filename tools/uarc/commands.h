/* The tool's subcommands: each returns the process exit code. */
#ifndef UARC_TOOL_COMMANDS_H
#define UARC_TOOL_COMMANDS_H

#include <stdbool.h>

/* Exit codes shared by every subcommand. */
#define EXIT_OK     0
#define EXIT_FAILED 1 /* the work could not be done (timeout, bind failure, ...) */
/* EXIT_USAGE (2) is in args.h */

int cmd_listen(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
/* endpoints, read, write, browse, call */
int cmd_client(const char *command, int argc, char **argv);

struct uarc_client_config;
/* Fills a client configuration from the options the client commands share. */
void client_config_from_args(struct uarc_client_config *cfg, const char *user, const char *password,
                             bool allow_unencrypted, double timeout, bool verbose);

/* --security-policy, --security-mode, --certificate, --private-key, --server-certificate,
 * --trust-list, --issuer-list, --trust-store, --accept-any-certificate, --allow-uri-mismatch,
 * --require-host-name, --application-uri, --user-certificate, --user-private-key: shared
 * by the client commands and listen. Their option ids start at SECURITY_OPT_BASE. */
#define SECURITY_OPT_BASE 100
typedef struct security_args {
    const char *policy; /* short name or URI; NULL: None */
    const char *mode;
    const char *certificate, *private_key, *server_certificate;
    const char *trust_list;      /* folder of trusted certificates and CRLs */
    const char *issuer_list;     /* file or folder of CA certificates that trust nothing */
    const char *trust_store;     /* folder: trust on first use */
    bool accept_any;             /* --accept-any-certificate */
    bool allow_uri_mismatch;     /* --allow-uri-mismatch */
    bool require_host_name;      /* --require-host-name */
    const char *application_uri; /* NULL: our certificate's URI, or urn:uarc:client */
    const char *user_certificate, *user_private_key; /* X509 user identity; NULL: none */
} security_args;
/* clang-format off */
#define SECURITY_SPECS                                                                             \
    {"--security-policy", true, SECURITY_OPT_BASE},                                                \
    {"--security-mode", true, SECURITY_OPT_BASE + 1},                                              \
    {"--certificate", true, SECURITY_OPT_BASE + 2},                                                \
    {"--private-key", true, SECURITY_OPT_BASE + 3},                                                \
    {"--server-certificate", true, SECURITY_OPT_BASE + 4},                                         \
    {"--trust-list", true, SECURITY_OPT_BASE + 5},                                                 \
    {"--trust-store", true, SECURITY_OPT_BASE + 6},                                                \
    {"--accept-any-certificate", false, SECURITY_OPT_BASE + 7},                                    \
    {"--issuer-list", true, SECURITY_OPT_BASE + 8},                                                \
    {"--allow-uri-mismatch", false, SECURITY_OPT_BASE + 9},                                        \
    {"--require-host-name", false, SECURITY_OPT_BASE + 13},                                        \
    {"--application-uri", true, SECURITY_OPT_BASE + 10},                                           \
    {"--user-certificate", true, SECURITY_OPT_BASE + 11},                                          \
    {"--user-private-key", true, SECURITY_OPT_BASE + 12}
#define SECURITY_HELP                                                                              \
    "  --security-policy NAME None (default), Basic256Sha256, Aes128_Sha256_RsaOaep,\n"           \
    "                         Aes256_Sha256_RsaPss, ECC_nistP256, ECC_nistP384,\n"               \
    "                         ECC_brainpoolP256r1 or ECC_brainpoolP384r1 (or the policy URI);\n"  \
    "                         an ECC policy takes an EC certificate on its curve\n"               \
    "  --security-mode MODE   Sign or SignAndEncrypt (default, for a policy other than None)\n"    \
    "  --certificate FILE     our certificate (PEM or DER), with --private-key FILE (PEM or\n"     \
    "                         DER, unencrypted). Default: an ephemeral self-signed one (RSA-2048,\n"\
    "                         or EC on the curve of an ECC policy)\n"                             \
    "  --application-uri URI  our ApplicationUri (default: the URI of --certificate, else\n"      \
    "                         urn:uarc:client); must equal the certificate's\n"                   \
    "  --user-certificate FILE\n"                                                                 \
    "                         log in as the X509 user of FILE (PEM or DER), with\n"               \
    "                         --user-private-key FILE (PEM or DER, unencrypted); not with --user\n"\
    "  --server-certificate FILE\n"                                                               \
    "                         the server's certificate (PEM or DER)\n"
/* The trust options, after the command's own words on --server-certificate. */
#define TRUST_LIST_HELP                                                                            \
    "  --trust-list DIR       trusted certificates (CA or self-signed, PEM or DER) and CRLs, in\n" \
    "                         DIR, DIR/certs and DIR/crl: the server's certificate must chain to\n"\
    "                         one and pass validity, revocation and key usage checks before OPN\n" \
    "  --issuer-list FILE|DIR CA certificates (PEM or DER) and their CRLs that may complete the\n"\
    "                         chain from the server's certificate to --trust-list but are not\n" \
    "                         trusted themselves (the server may also send them after its own)\n"\
    "  --trust-store DIR      trust on first use: the first certificate a server presents is\n"   \
    "                         recorded in DIR (one PEM file per ServerUri, or per endpoint URL\n"  \
    "                         when dialing; a warning on stderr gives its thumbprint) and from\n" \
    "                         then on only that one is accepted (BadCertificateUntrusted names\n"  \
    "                         the file); delete or replace the file when the server's\n"         \
    "                         certificate changes on purpose\n"                                  \
    "  --accept-any-certificate\n"                                                              \
    "                         accept whatever certificate the server presents, with a warning:\n" \
    "                         for tests only: anyone in the middle can read and change data\n"   \
    "  --allow-uri-mismatch   dialing: a server certificate whose URI is not the endpoint's\n"   \
    "                         ApplicationUri is a warning, not BadCertificateUriInvalid\n"        \
    "  --require-host-name    dialing: the URL's host must be among the server certificate's DNS\n"\
    "                         and IP names (else BadCertificateHostNameInvalid; default: warning)\n"\
    "  Trust: the server's certificate is trusted by --trust-list, else --server-certificate,\n"  \
    "  else --trust-store, else --accept-any-certificate. A secured policy needs one of them,\n"  \
    "  and so does a password the server wants encrypted on a None channel (else\n"             \
    "  ActivateSession fails with BadSecurityChecksFailed and the password is not sent)\n"
/* clang-format on */
/* Stores one security option (id >= SECURITY_OPT_BASE). */
bool security_arg(security_args *s, int id, const char *value);
/* Applies them to cfg (strings borrowed from `s`/argv). Prints a usage error and returns false
 * on a bad name or mode, or a certificate without its key. */
bool security_apply(const char *command, const security_args *s, struct uarc_client_config *cfg);
bool security_is_none(const struct uarc_client_config *cfg);

/* The options every command shares: --json, --verbose, --help, --timeout (COMMON_SPECS) and, for
 * the commands that open sessions with an identity and security, --user, --password-file,
 * --allow-unencrypted-password (IDENTITY_SPECS) and SECURITY_SPECS. Their ids start at
 * COMMON_OPT_BASE; common_arg() stores any of them. */
#define COMMON_OPT_BASE 200
enum {
    COMMON_OPT_JSON = COMMON_OPT_BASE,
    COMMON_OPT_VERBOSE,
    COMMON_OPT_HELP,
    COMMON_OPT_TIMEOUT,
    COMMON_OPT_USER,
    COMMON_OPT_PASSWORD_FILE,
    COMMON_OPT_ALLOW_UNENCRYPTED,
};
/* clang-format off */
#define COMMON_SPECS                                                                               \
    {"--json", false, COMMON_OPT_JSON},                                                            \
    {"--verbose", false, COMMON_OPT_VERBOSE},                                                      \
    {"--help", false, COMMON_OPT_HELP},                                                            \
    {"--timeout", true, COMMON_OPT_TIMEOUT}
#define IDENTITY_SPECS                                                                             \
    {"--user", true, COMMON_OPT_USER},                                                             \
    {"--password-file", true, COMMON_OPT_PASSWORD_FILE},                                           \
    {"--allow-unencrypted-password", false, COMMON_OPT_ALLOW_UNENCRYPTED}
/* clang-format on */
typedef struct common_args {
    const char *command; /* for error messages: "read", "listen", ... Set by the command */
    double timeout_max;  /* --timeout's upper bound in seconds. Set by the command */
    bool json, verbose, help;
    double timeout; /* --timeout in seconds; what it bounds is the command's */
    const char *user;
    char *password; /* --password-file's first line, heap (args_free_secret) */
    bool allow_unencrypted;
    security_args security;
} common_args;
/* Stores one common or security option (id >= SECURITY_OPT_BASE). Prints a usage error and
 * returns false on a bad value. */
bool common_arg(common_args *c, int id, const char *value);

/* --mqtt and its companions, shared by monitor and listen: data to an MQTT broker instead of
 * JSON Lines (sink_mqtt.c). Their ids start at MQTT_OPT_BASE; mqtt_arg() stores any of them. */
#define MQTT_OPT_BASE 300
enum {
    MQTT_OPT_URL = MQTT_OPT_BASE,
    MQTT_OPT_TOPIC_PREFIX,
    MQTT_OPT_QOS,
    MQTT_OPT_CLIENT_ID,
    MQTT_OPT_USER,
    MQTT_OPT_PASSWORD_FILE,
    MQTT_OPT_TLS,
    MQTT_OPT_BACKLOG,
    MQTT_OPT_STATUS_MS,
};
/* clang-format off */
#define MQTT_SPECS                                                                                 \
    {"--mqtt", true, MQTT_OPT_URL},                                                                \
    {"--mqtt-topic-prefix", true, MQTT_OPT_TOPIC_PREFIX},                                          \
    {"--mqtt-qos", true, MQTT_OPT_QOS},                                                            \
    {"--mqtt-client-id", true, MQTT_OPT_CLIENT_ID},                                                \
    {"--mqtt-user", true, MQTT_OPT_USER},                                                          \
    {"--mqtt-password-file", true, MQTT_OPT_PASSWORD_FILE},                                        \
    {"--mqtt-tls", true, MQTT_OPT_TLS},                                                            \
    {"--mqtt-backlog", true, MQTT_OPT_BACKLOG},                                                    \
    {"--mqtt-status-ms", true, MQTT_OPT_STATUS_MS}
#define MQTT_HELP                                                                                  \
    "  --mqtt mqtt://HOST[:PORT]\n"                                                               \
    "                         publish the data to this MQTT 3.1.1 broker (port 1883, 8883 with\n" \
    "                         --mqtt-tls) instead of printing data lines: one OPC UA Part 14\n"  \
    "                         JSON ua-data NetworkMessage per NotificationMessage on\n"          \
    "                         PREFIX/json/data/<ServerUri>/monitor, and retained states on\n"     \
    "                         PREFIX/json/status/<ServerUri> (see README). With QoS 1 a message\n"\
    "                         is acknowledged to the server only after the broker's PUBACK.\n"    \
    "                         Event mqtt {state: connected, lost, failed, paused, resumed;\n"    \
    "                         broker, client_id, reason}; no data or event lines\n"             \
    "  --mqtt-topic-prefix P  topic prefix (default opcua)\n"                                    \
    "  --mqtt-qos 0|1         1 (default): acknowledged after PUBACK; 0: after it was written to\n"\
    "                         the broker's socket\n"                                             \
    "  --mqtt-client-id ID    MQTT client id (default uarc-HOST-PID); each collector needs its own\n"\
    "  --mqtt-user NAME       broker user, with --mqtt-password-file FILE (its first line)\n"     \
    "  --mqtt-tls CAFILE      TLS to the broker, its certificate checked against CAFILE\n"        \
    "  --mqtt-backlog BYTES   messages held while the broker is away or slow (default 67108864);\n"\
    "                         beyond it publishing is paused on the servers, whose queues hold\n" \
    "                         the values; what is lost all the same is a gap\n"                  \
    "  --mqtt-status-ms MS    a server's retained status names the last message the broker\n"   \
    "                         confirmed, refreshed at most this often (default 1000); a collector\n"\
    "                         that takes the server over goes on from there, and reports what\n"   \
    "                         it cannot recover as a gap. 0: exact, the server forgets a message\n"\
    "                         only once the broker has the status naming it (one more message\n" \
    "                         per NotificationMessage)\n"
/* clang-format on */
typedef struct mqtt_args {
    const char *url; /* NULL: no MQTT */
    const char *topic_prefix;
    unsigned long qos; /* 1 unless given */
    const char *client_id;
    const char *user;
    char *password; /* heap (args_free_secret) */
    const char *tls_ca;
    unsigned long backlog; /* bytes; 0: the default */
    bool status_ms_given;
    unsigned long status_ms; /* with status_ms_given; else 1000 */
} mqtt_args;
/* Stores one --mqtt* option. Prints a usage error and returns false on a bad value. */
bool mqtt_arg(const char *command, mqtt_args *m, int id, const char *value);
/* Checks the combination (a URL that parses, --mqtt-password-file with --mqtt-user, no option
 * without --mqtt). Prints a usage error and returns false. */
bool mqtt_args_check(const char *command, const mqtt_args *m);

#endif
