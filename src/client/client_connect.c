/*
 * The connect sequence: HEL → OPN → CreateSession → ActivateSession as a chain of responses, the
 * re-activation of a kept session, and what is checked before any byte is sent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "uarc/endpoint_url.h"
#include "client/client_internal.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/log.h"

static void send_activate(uarc_client *c, uarc_response_fn done);
static void on_resume_session(void *user_data, uarc_status status, void *response);

static void on_opened(void *user_data)
{
    uarc_client *c = user_data;
    if (c->cfg.no_session) {
        c->connect_deadline = -1;
        uarc__client_set_state(c, UARC_CLIENT_CHANNEL_OPEN, UARC_Good);
        return;
    }
    c->resumed = false;
    if (c->has_session) {
        send_activate(c, on_resume_session);
    } else {
        /* a token kept by uarc_client_forget_session() while connected */
        uarc__client_forget_session(c);
        uarc__client_start_create_session(c);
    }
}

void uarc__client_fail_connect(uarc_client *c, const char *step, uarc_status status,
                               const char *fmt, ...)
{
    /* A connect request failed by the teardown itself: the connection is already gone, its
     * cause is already recorded, and the next connect must not inherit an ending. */
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return;
    va_list ap;
    va_start(ap, fmt);
    uarc__client_vset_error(c, step, status, fmt, ap);
    va_end(ap);
    uarc__client_note_cause(c, status, "connect failed");
    uarc__client_end_connection(c, status);
}

static void on_activate_session(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    (void)response;
    if (status != UARC_Good) {
        uarc__client_fail_connect(c, "ActivateSession", status,
                                  "the server refused to activate the session");
        return;
    }
    uarc__client_keep_server_nonce(c, response);
    c->has_session = true;
    c->connect_deadline = -1;
    uarc__client_set_state(c, UARC_CLIENT_SESSION_ACTIVE, UARC_Good);
    if (c->hooks.session_active && c->state == UARC_CLIENT_SESSION_ACTIVE)
        c->hooks.session_active(c->hooks.user_data, false);
}

static void on_resume_session(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    (void)response;
    if (status == UARC_Good) {
        uarc__client_keep_server_nonce(c, response);
        c->resumed = true;
        c->connect_deadline = -1;
        uarc__client_set_state(c, UARC_CLIENT_SESSION_ACTIVE, UARC_Good);
        if (c->hooks.session_active && c->state == UARC_CLIENT_SESSION_ACTIVE)
            c->hooks.session_active(c->hooks.user_data, true);
        return;
    }
    /* The connection ended before the answer: keep the session for the next connect. */
    if (c->state == UARC_CLIENT_DISCONNECTED)
        return;
    /* The server no longer knows the session (restarted, or it timed out): start a new one. */
    uarc__log(&c->cfg.logger, UARC_LOG_INFO, "client",
              "re-activating the previous session failed (%s); creating a new session",
              uarc_status_name(status));
    uarc__client_forget_session(c);
    uarc__client_start_create_session(c);
}

/* Sends ActivateSession for the session in c->authentication_token with our identity. */
static void send_activate(uarc_client *c, uarc_response_fn done)
{
    uarc_ActivateSessionRequest req;
    uarc_init(&req, UARC_T(ActivateSessionRequest));
    uarc_AnonymousIdentityToken anonymous;
    uarc_UserNameIdentityToken user;
    uarc_X509IdentityToken x509;
    uint8_t *user_signature = NULL;
    uarc_string policy_id = {strlen(c->identity_policy_id), (uint8_t *)c->identity_policy_id};
    uint8_t *signature = NULL;
    uarc_bytestring secret = {0, NULL};
    if (c->policy &&
        uarc__client_sign_activation(c, &req.clientSignature, &signature) != UARC_Good) {
        uarc__free(signature);
        uarc__client_fail_connect(c, "ActivateSession", UARC_BadInternalError,
                                  "cannot sign the activation");
        return;
    }
    req.userIdentityToken.encoding = UARC_EXTENSION_OBJECT_DECODED;
    if (c->identity_type == UARC_UserTokenType_Anonymous) {
        anonymous.policyId = policy_id;
        req.userIdentityToken.content.decoded.type = UARC_T(AnonymousIdentityToken);
        req.userIdentityToken.content.decoded.data = &anonymous;
    } else if (c->identity_type == UARC_UserTokenType_Certificate) {
        x509 = (uarc_X509IdentityToken){policy_id, {c->user_cert_length, c->user_cert}};
        if (c->token_policy_uri[0]) {
            char why[256];
            uarc_status s = uarc__client_sign_user_token(c, &req.userTokenSignature,
                                                         &user_signature, why, sizeof why);
            if (s != UARC_Good) {
                uarc__free(signature);
                uarc__free(user_signature);
                uarc__client_fail_connect(c, "ActivateSession", s, "%s", why);
                return;
            }
        } else {
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "client",
                      "the X509 user token policy names SecurityPolicy None: the token goes "
                      "unsigned");
        }
        req.userIdentityToken.content.decoded.type = UARC_T(X509IdentityToken);
        req.userIdentityToken.content.decoded.data = &x509;
    } else {
        bool channel_unencrypted =
            !c->policy ||
            (c->policy && c->policy->mode(c->security) != UARC_MessageSecurityMode_SignAndEncrypt);
        const char *password = c->cfg.password ? c->cfg.password : "";
        const char *algorithm = NULL;
        if (c->token_policy_uri[0]) {
            char why[1500];
            uarc_status s = uarc__client_check_password_key(c, why, sizeof why);
            if (s == UARC_Good)
                s = uarc__client_encrypt_password(c, password, &secret, &algorithm, why,
                                                  sizeof why);
            if (s != UARC_Good) {
                uarc__free(signature);
                uarc__client_fail_connect(c, "ActivateSession", s, "%s", why);
                return;
            }
        } else if (channel_unencrypted && !c->cfg.allow_unencrypted_password) {
            uarc__free(signature);
            uarc__client_fail_connect(c, "ActivateSession", UARC_BadSecurityModeInsufficient,
                                      "refusing to send a password over an unencrypted channel "
                                      "(allow_unencrypted_password is not set)");
            return;
        }
        user = (uarc_UserNameIdentityToken){
            .policyId = policy_id,
            .userName = {strlen(c->cfg.user_name), (uint8_t *)c->cfg.user_name},
            .password = {strlen(password), *password ? (uint8_t *)password : UARC_EMPTY},
        };
        if (secret.data) {
            user.password = secret;
            if (algorithm)
                user.encryptionAlgorithm = (uarc_string){strlen(algorithm), (uint8_t *)algorithm};
        }
        req.userIdentityToken.content.decoded.type = UARC_T(UserNameIdentityToken);
        req.userIdentityToken.content.decoded.data = &user;
    }
    uarc__client_set_state(c, UARC_CLIENT_ACTIVATING_SESSION, UARC_Good);
    uarc_status status = uarc__client_send_request(
        c, &req, UARC_T(ActivateSessionRequest), UARC_T(ActivateSessionResponse), 0, done, c, NULL);
    uarc__free(signature);
    uarc__free(user_signature);
    uarc__crypto_free_secret(secret.data, secret.length);
    if (status != UARC_Good)
        uarc__client_fail_connect(c, "ActivateSession", status, "cannot send the request");
}

static void on_create_session(void *user_data, uarc_status status, void *response)
{
    uarc_client *c = user_data;
    if (status != UARC_Good) {
        uarc__client_fail_connect(c, "CreateSession", status,
                                  "the server refused to create a session");
        return;
    }
    uarc_CreateSessionResponse *r = response;
    uarc__client_forget_session(c);
    if (uarc_copy(&r->authenticationToken, &c->authentication_token, UARC_T(NodeId)) != UARC_Good) {
        uarc__client_fail_connect(c, "CreateSession", UARC_BadOutOfMemory, "out of memory");
        return;
    }
    c->revised_session_timeout = r->revisedSessionTimeout;
    uarc_status s = uarc__client_check_server_signature(c, r);
    if (s == UARC_Good)
        s = uarc__client_check_server_endpoints(c, r);
    if (s != UARC_Good)
        return;
    uarc__client_keep_ecdh_key(c, &r->responseHeader);
    uarc_clear(&c->session_server_cert, UARC_T(ByteString));
    uarc_clear(&c->server_nonce, UARC_T(ByteString));
    if (uarc_copy(&r->serverCertificate, &c->session_server_cert, UARC_T(ByteString)) !=
            UARC_Good ||
        uarc_copy(&r->serverNonce, &c->server_nonce, UARC_T(ByteString)) != UARC_Good) {
        uarc__client_fail_connect(c, "CreateSession", UARC_BadOutOfMemory, "out of memory");
        return;
    }
    uarc_string token_policy;
    uarc__client_choose_identity_policy(c, r, &token_policy);
    c->token_policy_uri[0] = '\0';
    if (token_policy.length > 0 && !uarc_string_equal_cstr(&token_policy, SECURITY_POLICY_NONE))
        snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%.*s", (int)token_policy.length,
                 (const char *)token_policy.data);
    else if (token_policy.length == 0 && c->policy)
        /* Part 4 §7.41: an empty SecurityPolicyUri means the endpoint's own policy */
        snprintf(c->token_policy_uri, sizeof c->token_policy_uri, "%s", c->policy->uri);
    send_activate(c, on_activate_session);
}

void uarc__client_start_create_session(uarc_client *c)
{
    uarc_CreateSessionRequest req;
    uarc_init(&req, UARC_T(CreateSessionRequest));
    const char *app_uri = c->cfg.application_uri, *app_name = c->cfg.application_name;
    req.clientDescription.applicationUri = (uarc_string){strlen(app_uri), (uint8_t *)app_uri};
    req.clientDescription.productUri = req.clientDescription.applicationUri;
    req.clientDescription.applicationName.text =
        (uarc_string){strlen(app_name), (uint8_t *)app_name};
    req.clientDescription.applicationType = UARC_ApplicationType_Client;
    req.endpointUrl = (uarc_string){strlen(c->endpoint_url), (uint8_t *)c->endpoint_url};
    req.sessionName = (uarc_string){strlen(c->cfg.session_name), (uint8_t *)c->cfg.session_name};
    if (getrandom(c->client_nonce, sizeof c->client_nonce, 0) != (ssize_t)sizeof c->client_nonce) {
        uarc__client_fail_connect(c, "CreateSession", UARC_BadInternalError,
                                  "no random bytes for the nonce");
        return;
    }
    req.clientNonce = (uarc_bytestring){sizeof c->client_nonce, c->client_nonce};
    if (c->policy)
        req.clientCertificate = (uarc_bytestring){c->local_cert_length, c->local_cert};
    req.requestedSessionTimeout = c->cfg.session_timeout_ms;
    req.maxResponseMessageSize = c->cfg.max_message_size;
    uarc__ecdh_request ecdh;
    uarc__client_request_ecdh_key(c, &req.requestHeader, &ecdh);
    uarc__client_set_state(c, UARC_CLIENT_CREATING_SESSION, UARC_Good);
    uarc_status status =
        uarc__client_send_request(c, &req, UARC_T(CreateSessionRequest),
                                  UARC_T(CreateSessionResponse), 0, on_create_session, c, NULL);
    if (status != UARC_Good)
        uarc__client_fail_connect(c, "CreateSession", status, "cannot send the request");
}

/* Creates the channel and queues HEL. */
uarc_status uarc__client_start_channel(uarc_client *c)
{
    uarc__channel_config cc = {
        .endpoint_url = c->endpoint_url,
        .receive_buffer_size = c->cfg.receive_buffer_size,
        .send_buffer_size = c->cfg.send_buffer_size,
        .max_message_size = c->cfg.max_message_size,
        .max_chunk_count = c->cfg.max_chunk_count,
        .requested_lifetime_ms = c->cfg.secure_channel_lifetime_ms,
        .handshake_timeout_ms =
            c->cfg.handshake_timeout_ms ? c->cfg.handshake_timeout_ms : c->cfg.connect_timeout_ms,
        .security_policy_uri = c->cfg.security_policy_uri,
        .decode = c->cfg.decode,
        .budget = c->cfg.memory_budget,
        .max_unsolicited = c->cfg.max_unsolicited_responses,
        .logger = c->cfg.logger,
    };
    uarc__channel_events ev = {on_opened, uarc__client_on_message, uarc__client_on_message_failed,
                               uarc__client_on_closed, c};
    if (uarc__client_prepare_security(c, &cc) != UARC_Good)
        return c->end_status;
    c->channel = uarc__channel_new(&cc, &ev);
    if (!c->channel) {
        uarc__client_fail_connect(
            c, "HEL", UARC_BadSecurityPolicyRejected,
            "cannot set up a channel with security policy %s (or out of memory)",
            c->cfg.security_policy_uri);
        return c->end_status;
    }
    uarc__client_set_state(c, UARC_CLIENT_HELLO, UARC_Good);
    uarc_status status = uarc__channel_start(c->channel, uarc__client_now(c));
    if (status != UARC_Good) {
        uarc__client_fail_connect(c, "HEL", status, "%s", uarc__channel_error(c->channel));
        return status;
    }
    return UARC_Good;
}

/* Our ApplicationDescription must carry the URI of the certificate we present (Part 4 §5.6.2;
 * open62541 refuses the session otherwise). With a configured certificate, the URI comes from it;
 * a configured application_uri that differs is a configuration error, found before any byte is
 * sent. */
static uarc_status adopt_certificate_uri(uarc_client *c)
{
    if (!c->local_cert && c->cfg.certificate_file) {
        uarc_status s = uarc__crypto_load_certificate(c->cfg.certificate_file, &c->local_cert,
                                                      &c->local_cert_length);
        if (s != UARC_Good) {
            uarc__client_set_error(c, "connect", s, "cannot read the certificate from %s",
                                   c->cfg.certificate_file);
            return s;
        }
    }
    if (!c->local_cert)
        return UARC_Good;
    char uri[512];
    uarc_status s =
        uarc__crypto_certificate_uri(c->local_cert, c->local_cert_length, uri, sizeof uri);
    if (s != UARC_Good) {
        uarc__client_set_error(
            c, "connect", s,
            "our certificate%s%s has no usable subjectAltName URI, which OPC UA requires as "
            "the client's ApplicationUri",
            c->cfg.certificate_file ? " " : "",
            c->cfg.certificate_file ? c->cfg.certificate_file : "");
        return s;
    }
    if (strcmp(uri, c->cfg.application_uri) == 0)
        return UARC_Good;
    if (c->application_uri_given) {
        uarc__client_set_error(
            c, "connect", UARC_BadCertificateUriInvalid,
            "application_uri %s differs from the URI %s of our certificate; the server would "
            "refuse the session",
            c->cfg.application_uri, uri);
        return UARC_BadCertificateUriInvalid;
    }
    char *copy = uarc__client_dup_or_null(uri);
    if (!copy)
        return UARC_BadOutOfMemory;
    uarc__free(c->strings[STRING_APPLICATION_URI]);
    c->strings[STRING_APPLICATION_URI] = copy;
    c->cfg.application_uri = copy;
    return UARC_Good;
}

/* The X509 user identity: certificate and key loaded once, before any byte is sent. */
static uarc_status load_user_identity(uarc_client *c)
{
    const char *files[2] = {c->cfg.user_certificate_file, c->cfg.user_private_key_file};
    uint8_t **dst[2] = {&c->user_cert, &c->user_key};
    size_t *length[2] = {&c->user_cert_length, &c->user_key_length};
    for (int i = 0; i < 2; i++) {
        if (*dst[i] || !files[i])
            continue;
        uarc_status s = i ? uarc__crypto_load_private_key(files[i], dst[i], length[i])
                          : uarc__crypto_load_certificate(files[i], dst[i], length[i]);
        if (s != UARC_Good) {
            uarc__client_set_error(c, "connect", s, "cannot read the user %s from %s",
                                   i ? "private key" : "certificate", files[i]);
            return s;
        }
    }
    const char *why = NULL;
    if (!c->user_cert != !c->user_key)
        why = "a user certificate needs its private key, and a user private key its certificate";
    else if (c->user_cert && c->cfg.user_name)
        why = "user_name and a user certificate exclude each other: one identity per session";
    if (!why)
        return UARC_Good;
    uarc__client_set_error(c, "connect", UARC_BadInvalidArgument, "%s", why);
    return UARC_BadInvalidArgument;
}

/* Starts a connect in byte mode (`bytes`, at time `now`) or over a socket. */
uarc_status uarc__client_begin(uarc_client *c, const char *endpoint_url, bool bytes, int64_t now)
{
    if (c->state != UARC_CLIENT_DISCONNECTED) {
        uarc__client_set_error(c, "connect", UARC_BadInvalidState,
                               "already connected or connecting (%s)",
                               uarc_client_state_name(c->state));
        return UARC_BadInvalidState;
    }
    c->bytes_mode = bytes;
    c->now = now;
    uarc__client_drop_tail(c);
    if (c->error)
        c->error[0] = '\0';
    c->last_status = UARC_Good;
    c->cause_status = UARC_Good;
    c->cause_reason[0] = c->peer[0] = '\0';
    if (c->endpoint_url && strcmp(c->endpoint_url, endpoint_url) != 0)
        uarc__client_forget_session(c);
    uarc__free(c->endpoint_url);
    c->endpoint_url = uarc__client_dup_or_null(endpoint_url);
    if (!c->endpoint_url)
        return UARC_BadOutOfMemory;
    uarc_status status = adopt_certificate_uri(c);
    if (status == UARC_Good)
        status = load_user_identity(c);
    if (status != UARC_Good)
        return status;
    c->connect_deadline = uarc__client_now(c) + c->cfg.connect_timeout_ms;
    uarc__log(&c->cfg.logger, UARC_LOG_DEBUG, "client",
              "connecting to %s: connect timeout %u ms, request timeout %u ms, keep-alive %s%u ms",
              endpoint_url, c->cfg.connect_timeout_ms, c->cfg.request_timeout_ms,
              c->cfg.keepalive_interval_ms ? "" : "at most ",
              c->cfg.keepalive_interval_ms ? c->cfg.keepalive_interval_ms
                                           : (unsigned)DEFAULT_KEEPALIVE_MAX_MS);
    return UARC_Good;
}

uarc_status uarc__client_check_endpoint_url(uarc_client *c, const char *endpoint_url)
{
    char reason[256];
    uarc_status status = uarc_endpoint_url_check(
        (uarc_view){(const uint8_t *)endpoint_url, strlen(endpoint_url)}, reason, sizeof reason);
    if (status != UARC_Good)
        uarc__client_set_error(c, "HEL", status, "%s", reason);
    return status;
}

UARC_API uarc_status uarc_client_start_bytes(uarc_client *c, const char *endpoint_url,
                                             int64_t now_ms)
{
    uarc_status status = uarc__client_begin(c, endpoint_url, true, now_ms);
    if (status == UARC_Good)
        status = uarc__client_check_endpoint_url(c, endpoint_url);
    if (status != UARC_Good)
        return status;
    status = uarc__client_start_channel(c);
    uarc__client_finish_ending(c);
    return status == UARC_Good ? UARC_Good : c->last_status;
}
