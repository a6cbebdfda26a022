/* uarc endpoints | read | write | browse | call: forward-connecting client commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/uarc.h"
#include "uarc/client.h"
#include "args.h"
#include "commands.h"
#include "ops.h"

enum { OPT_RECURSIVE };

static const arg_spec client_specs[] = {
    COMMON_SPECS,   IDENTITY_SPECS,   {"--recursive", false, OPT_RECURSIVE},
    SECURITY_SPECS, {NULL, false, 0},
};

static const char common_help[] =
    "  --json                 one JSON object per line on stdout\n"
    "  --user NAME            log in as NAME (default: anonymous)\n"
    "  --password-file FILE   the password is the first line of FILE\n"
    "  --allow-unencrypted-password\n"
    "                         allow sending the password over a channel without encryption\n"
    "  --timeout SECONDS      bound for connecting and for each request (default "
    "10)\n" SECURITY_HELP
    "                         (pinned: trusted as given). Default: asked from the server with\n"
    "                         GetEndpoints on a None channel first, then trusted only as the\n"
    "                         options below say; the endpoints the session reports must match\n"
    "                         that answer\n" TRUST_LIST_HELP
    "  --verbose              log details to stderr\n"
    "\n"
    "Options may come before or after the arguments. On failure the error names the step\n"
    "(connect, HEL, OPN, CreateSession, ActivateSession, or the service) and its status.\n"
    "A read or write the server answered prints its read/write event with the node's status,\n"
    "Bad included, and no error event. Types: Double, Double[] (array), Double[3,4] (matrix).\n"
    "Exit codes: 0 done, 1 failed, 2 usage error.\n";

typedef struct client_args {
    common_args common;
    const char *command;
    char **positional;
    size_t positional_count;
    bool recursive;
} client_args;

static bool on_client_arg(void *ctx, int id, const char *value)
{
    client_args *a = ctx;
    switch (id) {
    case -1: {
        char **grown = realloc(a->positional, (a->positional_count + 1) * sizeof *grown);
        if (!grown)
            return false;
        a->positional = grown;
        a->positional[a->positional_count++] = (char *)value;
        return true;
    }
    case OPT_RECURSIVE:
        if (strcmp(a->command, "browse") != 0) {
            fprintf(stderr, "uarc %s: --recursive is only for browse\n", a->command);
            return false;
        }
        a->recursive = true;
        return true;
    default:
        return common_arg(&a->common, id, value);
    }
}

bool common_arg(common_args *c, int id, const char *value)
{
    switch (id) {
    case COMMON_OPT_JSON:
        c->json = true;
        return true;
    case COMMON_OPT_VERBOSE:
        c->verbose = true;
        return true;
    case COMMON_OPT_HELP:
        c->help = true;
        return true;
    case COMMON_OPT_TIMEOUT:
        return args_seconds(c->command, "--timeout", value, c->timeout_max, &c->timeout);
    case COMMON_OPT_USER:
        c->user = value;
        return true;
    case COMMON_OPT_PASSWORD_FILE:
        return args_read_first_line(c->command, "--password-file", value, &c->password);
    case COMMON_OPT_ALLOW_UNENCRYPTED:
        c->allow_unencrypted = true;
        return true;
    default:
        return security_arg(&c->security, id, value);
    }
}

static const char *const policy_names[] = {
    "None",         "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss",
    "ECC_nistP256", "ECC_nistP384",   "ECC_brainpoolP256r1",   "ECC_brainpoolP384r1"};
static char policy_uris[sizeof policy_names / sizeof *policy_names][80];

bool security_arg(security_args *s, int id, const char *value)
{
    switch (id - SECURITY_OPT_BASE) {
    case 0:
        s->policy = value;
        return true;
    case 1:
        s->mode = value;
        return true;
    case 2:
        s->certificate = value;
        return true;
    case 3:
        s->private_key = value;
        return true;
    case 4:
        s->server_certificate = value;
        return true;
    case 5:
        s->trust_list = value;
        return true;
    case 6:
        s->trust_store = value;
        return true;
    case 7:
        s->accept_any = true;
        return true;
    case 8:
        s->issuer_list = value;
        return true;
    case 9:
        s->allow_uri_mismatch = true;
        return true;
    case 13:
        s->require_host_name = true;
        return true;
    case 10:
        s->application_uri = value;
        return true;
    case 11:
        s->user_certificate = value;
        return true;
    case 12:
        s->user_private_key = value;
        return true;
    default:
        return false;
    }
}

bool security_apply(const char *command, const security_args *s, uarc_client_config *cfg)
{
    if (s->policy) {
        const char *uri = NULL;
        for (size_t i = 0; i < sizeof policy_names / sizeof *policy_names; i++) {
            snprintf(policy_uris[i], sizeof policy_uris[i],
                     "http://opcfoundation.org/UA/SecurityPolicy#%s", policy_names[i]);
            if (strcmp(s->policy, policy_names[i]) == 0 || strcmp(s->policy, policy_uris[i]) == 0)
                uri = policy_uris[i];
        }
        if (!uri) {
            fprintf(stderr,
                    "uarc %s: --security-policy: unknown policy \"%s\" (None, Basic256Sha256, "
                    "Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss, ECC_nistP256, ECC_nistP384, "
                    "ECC_brainpoolP256r1, ECC_brainpoolP384r1)\n",
                    command, s->policy);
            return false;
        }
        cfg->security_policy_uri = uri;
    }
    if (s->mode) {
        if (strcmp(s->mode, "Sign") == 0) {
            cfg->security_mode = UARC_MessageSecurityMode_Sign;
        } else if (strcmp(s->mode, "SignAndEncrypt") == 0) {
            cfg->security_mode = UARC_MessageSecurityMode_SignAndEncrypt;
        } else {
            fprintf(stderr, "uarc %s: --security-mode: Sign or SignAndEncrypt, not \"%s\"\n",
                    command, s->mode);
            return false;
        }
        if (security_is_none(cfg)) {
            fprintf(stderr, "uarc %s: --security-mode needs --security-policy other than None\n",
                    command);
            return false;
        }
    }
    if (!s->certificate != !s->private_key) {
        fprintf(stderr, "uarc %s: --certificate and --private-key go together\n", command);
        return false;
    }
    cfg->certificate_file = s->certificate;
    cfg->private_key_file = s->private_key;
    cfg->generate_certificate = !s->certificate;
    if (!security_is_none(cfg) && !s->server_certificate && !s->trust_list && !s->trust_store &&
        !s->accept_any) {
        fprintf(stderr,
                "uarc %s: %s needs a decision on the server's certificate, which would otherwise "
                "be learned from the network unchecked: give --trust-list DIR, --trust-store DIR "
                "or --server-certificate FILE (or --accept-any-certificate, for tests only)\n",
                command, s->policy);
        return false;
    }
    cfg->server_certificate_file = s->server_certificate;
    cfg->trust_list_dir = s->trust_list;
    cfg->trust_store_dir = s->trust_store;
    cfg->accept_untrusted_server_certificate = s->accept_any;
    cfg->issuer_list = s->issuer_list;
    cfg->allow_server_uri_mismatch = s->allow_uri_mismatch;
    cfg->require_server_host_name = s->require_host_name;
    cfg->application_uri = s->application_uri;
    if (!s->user_certificate != !s->user_private_key) {
        fprintf(stderr, "uarc %s: --user-certificate and --user-private-key go together\n",
                command);
        return false;
    }
    if (s->user_certificate && cfg->user_name) {
        fprintf(stderr, "uarc %s: --user and --user-certificate exclude each other\n", command);
        return false;
    }
    cfg->user_certificate_file = s->user_certificate;
    cfg->user_private_key_file = s->user_private_key;
    return true;
}

bool security_is_none(const uarc_client_config *cfg)
{
    return !cfg->security_policy_uri || strstr(cfg->security_policy_uri, "#None") != NULL;
}

void client_config_from_args(uarc_client_config *cfg, const char *user, const char *password,
                             bool allow_unencrypted, double timeout, bool verbose)
{
    memset(cfg, 0, sizeof *cfg);
    if (timeout > 0) {
        uint32_t ms = (uint32_t)(timeout * 1000.0 + 0.5);
        cfg->connect_timeout_ms = ms ? ms : 1;
        cfg->request_timeout_ms = ms ? ms : 1;
    }
    cfg->user_name = user;
    cfg->password = password;
    cfg->allow_unencrypted_password = allow_unencrypted;
    /* Trust-on-first-use records are reported whether or not --verbose asks for the rest. */
    cfg->logger = verbose ? (uarc_logger){args_log_to_stderr, NULL, UARC_LOG_DEBUG}
                          : (uarc_logger){args_log_trust_to_stderr, NULL, UARC_LOG_WARNING};
}

typedef struct command_shape {
    const char *name;
    size_t min_args, max_args; /* after the URL */
    const char *usage;
} command_shape;

static const command_shape shapes[] = {
    {"endpoints", 0, 0, "uarc endpoints URL [options]\n\nLists the server's endpoints.\n"},
    {"read", 1, SIZE_MAX,
     "uarc read URL NODEID... [options]\n\nReads the Value attribute of each node.\n"},
    {"write", 3, 3,
     "uarc write URL NODEID TYPE VALUE [options]\n\n"
     "Writes a value of a built-in TYPE to the Value attribute: Boolean, SByte, Byte,\n"
     "Int16, UInt16, Int32, UInt32, Int64, UInt64, Float, Double, String, DateTime, Guid,\n"
     "ByteString, XmlElement, NodeId, ExpandedNodeId, StatusCode, QualifiedName or\n"
     "LocalizedText. VALUE: Boolean true, false, 1 or 0; integers in decimal or 0x hex;\n"
     "Float and Double decimal (-2.5e-3); DateTime ISO 8601 (2024-05-01T12:30:00Z) or now;\n"
     "Guid 8-4-4-4-12 hex digits; String, ByteString and XmlElement their bytes as given;\n"
     "NodeId i=2258 or ns=1;s=Name; ExpandedNodeId [svr=N;]nsu=URI;s=Name or a NodeId;\n"
     "StatusCode a name (BadTimeout) or a number; QualifiedName [ns:]name; LocalizedText\n"
     "its text (no locale).\n"
     "TYPE[] writes a one-dimensional array, VALUE a JSON array of those texts, each a\n"
     "JSON string, number, true or false: Int32[] '[1,-2,3]', String[] '[\"a\",\"b\"]',\n"
     "UInt64[] '[\"18446744073709551615\"]', Double[] '[]'.\n"},
    {"browse", 0, 1,
     "uarc browse URL [NODEID] [--recursive] [options]\n\nBrowses the hierarchical references of "
     "NODEID (default i=85, the Objects folder),\nfollowing continuation points; --recursive "
     "walks the whole tree below it.\n"},
    {"call", 2, SIZE_MAX,
     "uarc call URL OBJECTID METHODID [TYPE:VALUE...] [options]\n\nCalls a method with the given "
     "input arguments.\n"},
};

/* Checks the URL, every NodeId and every typed value before connecting, so a bad one is a usage
 * error (exit 2). `args` are the positionals after the URL. */
static bool values_parse(const char *command, const char *url, char **args, size_t n)
{
    char detail[256];
    uarc_variant v;
    if (!args_url(command, "URL", url))
        return false;
    bool call = strcmp(command, "call") == 0;
    size_t nodes = strcmp(command, "read") == 0        ? n /* every positional */
                   : call                              ? 2 /* OBJECTID METHODID, then TYPE:VALUE */
                   : strcmp(command, "endpoints") == 0 ? 0
                                                       : (n ? 1 : 0); /* write, browse */
    for (size_t i = 0; i < nodes && i < n; i++)
        if (!args_nodeid(command, call ? (i ? "METHODID" : "OBJECTID") : "NODEID", args[i]))
            return false;
    if (strcmp(command, "write") == 0) {
        if (!ops_parse_value(args[1], args[2], &v, detail, sizeof detail)) {
            fprintf(stderr, "uarc write: %s\n", detail);
            return false;
        }
        uarc_clear(&v, UARC_T(Variant));
    } else if (strcmp(command, "call") == 0) {
        for (size_t i = 2; i < n; i++) {
            char type[64];
            const char *colon = strchr(args[i], ':');
            if (!colon || (size_t)(colon - args[i]) >= sizeof type) {
                fprintf(stderr, "uarc call: argument \"%s\" is not TYPE:VALUE\n", args[i]);
                return false;
            }
            memcpy(type, args[i], (size_t)(colon - args[i]));
            type[colon - args[i]] = '\0';
            if (!ops_parse_value(type, colon + 1, &v, detail, sizeof detail)) {
                fprintf(stderr, "uarc call: %s\n", detail);
                return false;
            }
            uarc_clear(&v, UARC_T(Variant));
        }
    }
    return true;
}

int cmd_client(const char *command, int argc, char **argv)
{
    const command_shape *shape = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        if (strcmp(shapes[i].name, command) == 0)
            shape = &shapes[i];
    client_args a = {.common = {.command = command, .timeout_max = 86400}, .command = command};
    int rc = EXIT_USAGE;
    uarc_client *client = NULL;
    if (!shape || !args_parse(command, client_specs, argc, argv, on_client_arg, &a))
        goto done;
    if (a.common.help) {
        printf("usage: %s\n", shape->usage);
        fputs(common_help, stdout);
        rc = EXIT_OK;
        goto done;
    }
    if (a.positional_count < 1 + shape->min_args || a.positional_count - 1 > shape->max_args) {
        fprintf(stderr, "usage: %s", shape->usage);
        goto done;
    }
    if (a.common.password && !a.common.user) {
        fprintf(stderr, "uarc %s: --password-file needs --user\n", command);
        goto done;
    }
    if (!values_parse(command, a.positional[0], a.positional + 1, a.positional_count - 1))
        goto done;
    uarc_client_config cfg;
    client_config_from_args(&cfg, a.common.user, a.common.password, a.common.allow_unencrypted,
                            a.common.timeout, a.common.verbose);
    if (!security_apply(command, &a.common.security, &cfg))
        goto done;
    cfg.no_session = strcmp(command, "endpoints") == 0;
    rc = EXIT_FAILED;
    client = uarc_client_new(&cfg);
    if (!client) {
        fprintf(stderr, "uarc %s: out of memory\n", command);
        goto done;
    }
    ops_context ctx = {.client = client, .json = a.common.json};
    const char *url = a.positional[0];
    /* No certificate given: learn it (and the endpoints the session must report) from the
     * server; the trust options still decide at OPN. */
    if (!security_is_none(&cfg) && !cfg.server_certificate_file &&
        uarc_client_discover(client, url) != UARC_Good) {
        fprintf(stderr, "uarc %s: discovering the server certificate: %s\n", command,
                uarc_client_error(client));
        goto done;
    }
    uarc_status status = uarc_client_connect(client, url);
    if (status != UARC_Good) {
        ops_report_error(&ctx, status);
        if (!a.common.json)
            fprintf(stderr, "uarc %s: %s\n", command, uarc_client_error(client));
        if (status == UARC_BadSecurityChecksFailed && !cfg.trust_list_dir &&
            !cfg.server_certificate_file && !cfg.trust_store_dir &&
            !cfg.accept_untrusted_server_certificate)
            fprintf(stderr,
                    "uarc %s: to let the password be encrypted for the server, choose how its "
                    "certificate is trusted: --trust-list DIR, --server-certificate FILE, "
                    "--trust-store DIR or --accept-any-certificate (tests only)\n",
                    command);
        goto done;
    }
    char **rest = a.positional + 1;
    size_t n = a.positional_count - 1;
    bool ok = true;
    if (strcmp(command, "endpoints") == 0) {
        ok = ops_endpoints(&ctx) == UARC_Good;
    } else if (strcmp(command, "read") == 0) {
        ok = ops_read(&ctx, rest, n) == UARC_Good;
    } else if (strcmp(command, "write") == 0) {
        ok = ops_write(&ctx, rest[0], rest[1], rest[2]) == UARC_Good;
    } else if (strcmp(command, "browse") == 0) {
        ok = ops_browse(&ctx, n ? rest[0] : NULL, a.recursive) == UARC_Good;
    } else {
        ok = ops_call(&ctx, rest[0], rest[1], rest + 2, n - 2) == UARC_Good;
    }
    uarc_client_disconnect(client);
    rc = ok ? EXIT_OK : EXIT_FAILED;
done:
    uarc_client_delete(client);
    free(a.positional);
    args_free_secret(a.common.password);
    return rc;
}
