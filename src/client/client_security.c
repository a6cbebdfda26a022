/*
 * The client's certificates: the trust decision for the server's certificate (before OPN, and
 * before a password is encrypted for it), the certificates and policy context of a secured
 * channel, the discovery result and the serverEndpoints check against it. The session's
 * signatures and user tokens are in client_identity.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/client_internal.h"
#include "channel/cert_store.h"
#include "channel/cert_trust.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/log.h"
#include "transport/socket.h"

UARC_API uarc_status uarc_client_set_server_certificate(uarc_client *c, const uint8_t *certificate,
                                                        size_t length)
{
    if (c->state != UARC_CLIENT_DISCONNECTED)
        return UARC_BadInvalidState;
    if (certificate && length) {
        length = uarc__crypto_first_certificate(certificate, length);
        if (!length)
            return UARC_BadCertificateInvalid;
    }
    return uarc__client_copy_bytes(&c->server_cert, &c->server_cert_length, certificate, length)
               ? UARC_Good
               : UARC_BadOutOfMemory;
}

/* Replaces the kept discovery result with a copy of `endpoints`. */
uarc_status uarc__client_keep_endpoints(uarc_client *c, const uarc_EndpointDescription *endpoints,
                                        size_t count)
{
    uarc_GetEndpointsResponse from = {.endpointsSize = count,
                                      .endpoints = (uarc_EndpointDescription *)endpoints};
    uarc_GetEndpointsResponse copy;
    if (count && uarc_copy(&from, &copy, UARC_T(GetEndpointsResponse)) != UARC_Good)
        return UARC_BadOutOfMemory;
    uarc_array_delete(c->endpoints, c->endpoint_count, UARC_T(EndpointDescription));
    c->endpoints = count ? copy.endpoints : NULL;
    c->endpoint_count = count ? copy.endpointsSize : 0;
    if (count) {
        copy.endpoints = NULL;
        copy.endpointsSize = 0;
        uarc_clear(&copy, UARC_T(GetEndpointsResponse));
    }
    return UARC_Good;
}

UARC_API uarc_status uarc_client_set_endpoints(uarc_client *c,
                                               const uarc_EndpointDescription *endpoints,
                                               size_t count)
{
    if (c->state != UARC_CLIENT_DISCONNECTED)
        return UARC_BadInvalidState;
    return uarc__client_keep_endpoints(c, endpoints, endpoints ? count : 0);
}

UARC_API uarc_status uarc_certificate_generate(const char *application_uri, uint8_t **certificate,
                                               size_t *certificate_length, uint8_t **private_key,
                                               size_t *private_key_length)
{
    if (!certificate || !certificate_length || !private_key || !private_key_length)
        return UARC_BadInvalidArgument;
    return uarc__crypto_make_certificate(
        application_uri ? application_uri : DEFAULT_APPLICATION_URI, NULL, certificate,
        certificate_length, private_key, private_key_length);
}

UARC_API uarc_status uarc_certificate_generate_for(
    const char *application_uri, const char *security_policy_uri, uint8_t **certificate,
    size_t *certificate_length, uint8_t **private_key, size_t *private_key_length)
{
    if (!certificate || !certificate_length || !private_key || !private_key_length)
        return UARC_BadInvalidArgument;
    const uarc__security_policy *policy = uarc__security_policy_find(security_policy_uri);
    if (!policy)
        return UARC_BadSecurityPolicyRejected;
    return uarc__crypto_make_certificate(
        application_uri ? application_uri : DEFAULT_APPLICATION_URI, policy->certificate_curve,
        certificate, certificate_length, private_key, private_key_length);
}

UARC_API uarc_status uarc_certificate_uri(const uint8_t *der, size_t length, char *uri, size_t size)
{
    if (!der || !uri || size == 0)
        return UARC_BadInvalidArgument;
    return uarc__crypto_certificate_uri(der, length, uri, size);
}

UARC_API uarc_status uarc_client_set_expected_server_uri(uarc_client *c, const char *uri)
{
    if (c->state != UARC_CLIENT_DISCONNECTED)
        return UARC_BadInvalidState;
    char *copy = uarc__client_dup_or_null(uri);
    if (uri && !copy)
        return UARC_BadOutOfMemory;
    uarc__free(c->strings[STRING_EXPECTED_SERVER_URI]);
    c->strings[STRING_EXPECTED_SERVER_URI] = copy;
    c->cfg.expected_server_uri = copy;
    return UARC_Good;
}

/* The name a server's certificate is kept under in the trust store: the ServerUri we expect (from
 * the ReverseHello, or configured), else the endpoint URL we connect to. Never a name the
 * certificate or the server's messages choose: a substitute would then start a record of its
 * own. */
static const char *store_name(const uarc_client *c)
{
    return c->cfg.expected_server_uri ? c->cfg.expected_server_uri : c->endpoint_url;
}

/*
 * The trust decision for the server certificate `der` (see trust_list_dir in uarc/client.h), which
 * may be followed by issuers of it: the trust list (with the issuers list), else the pin
 * (`pinned`: `der` is the pinned certificate), else the trust store, else
 * accept_untrusted_server_certificate, else refused. Returns Good or the verdict, with the reason
 * in `why`.
 */
static uarc_status trust_server_certificate(uarc_client *c, const uint8_t *der, size_t length,
                                            bool pinned, char *why, size_t why_size)
{
    char detail[700];
    uarc_status s;
    if (c->cfg.trust_list_dir) {
        s = uarc__cert_validate(der, length, c->cfg.trust_list_dir, c->cfg.issuer_list, 0, detail,
                                sizeof detail);
        if (s != UARC_Good)
            snprintf(why, why_size, "server %s; trust list %s%s%s", detail, c->cfg.trust_list_dir,
                     c->cfg.issuer_list ? ", issuers list " : "",
                     c->cfg.issuer_list ? c->cfg.issuer_list : "");
    } else if (pinned || c->cfg.trust_store_dir) {
        s = uarc__cert_validate(der, length, NULL, NULL, 0, detail, sizeof detail);
        if (s != UARC_Good)
            snprintf(why, why_size, "server %s", detail);
    } else {
        s = UARC_BadCertificateUntrusted;
        snprintf(why, why_size,
                 "the server's certificate was learned from the network (GetEndpoints or "
                 "CreateSession) and nothing decides whether to trust it: configure a trust list "
                 "(trust_list_dir), a pinned certificate (server_certificate), a trust store "
                 "(trust_store_dir), or accept any certificate "
                 "(accept_untrusted_server_certificate, tests only)");
        if (c->cfg.accept_untrusted_server_certificate) {
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
                      "accepting the server certificate learned from the network without any "
                      "trust decision (accept_untrusted_server_certificate)");
            return UARC_Good;
        }
    }
    if (s == UARC_Good && !c->cfg.trust_list_dir && !pinned && c->cfg.trust_store_dir) {
        bool recorded = false;
        char path[4200];
        s = uarc__cert_store_check(c->cfg.trust_store_dir, store_name(c), der, length, &recorded,
                                   path, sizeof path, detail, sizeof detail);
        if (s != UARC_Good) {
            snprintf(why, why_size, "trust store: %s", detail);
        } else if (recorded) {
            char thumbprint[41];
            uarc__cert_thumbprint(der, length, thumbprint);
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
                      "first certificate seen for %s (thumbprint %s) is trusted from now on and "
                      "recorded in %s; compare the thumbprint with the server's own",
                      store_name(c), thumbprint, path);
        }
    }
    if (s == UARC_Good || !c->cfg.accept_untrusted_server_certificate)
        return s;
    uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
              "accepting the server certificate despite %s (accept_untrusted_server_certificate): "
              "%s",
              uarc_status_name(s), why);
    return UARC_Good;
}

/* The discovery result's endpoint with `policy_uri`, `mode` and a serverCertificate. */
static const uarc_EndpointDescription *endpoint_for(const uarc_client *c, const char *policy_uri,
                                                    uarc_MessageSecurityMode mode)
{
    for (size_t i = 0; i < c->endpoint_count; i++) {
        const uarc_EndpointDescription *e = &c->endpoints[i];
        if (uarc_string_equal_cstr(&e->securityPolicyUri, policy_uri) && e->securityMode == mode &&
            e->serverCertificate.length)
            return e;
    }
    return NULL;
}

/* Its serverCertificate (the server's certificate, perhaps followed by issuers of it). */
static const uarc_bytestring *endpoint_certificate(const uarc_client *c, const char *policy_uri,
                                                   uarc_MessageSecurityMode mode)
{
    const uarc_EndpointDescription *e = endpoint_for(c, policy_uri, mode);
    return e ? &e->serverCertificate : NULL;
}

/*
 * Whether the password may be encrypted for the serverCertificate of CreateSession with the
 * current server nonce (Part 4 §7.36.2.2 relies on both): the certificate must be the one of the
 * endpoint in use and trusted, the nonce at least 32 bytes. On a secured channel the certificate
 * is the channel's (check_server_signature), trusted before OPN; on a None channel nothing has
 * vouched for it yet, so the trust decision is made here. Returns Good, BadSecurityChecksFailed or
 * BadNonceInvalid with the reason in `why`.
 */
uarc_status uarc__client_check_password_key(uarc_client *c, char *why, size_t why_size)
{
    const uarc_bytestring *cert = &c->session_server_cert;
    size_t length = cert->length ? uarc__crypto_first_certificate(cert->data, cert->length) : 0;
    if (!length) {
        snprintf(why, why_size,
                 "the password must be encrypted, but the server's certificate in CreateSession "
                 "is %s",
                 cert->length ? "not a certificate" : "missing");
        return UARC_BadSecurityChecksFailed;
    }
    if (!c->policy) {
        const uint8_t *chosen = c->server_cert;
        size_t chosen_length = c->server_cert_length;
        const char *source = "the pinned certificate";
        if (!chosen) {
            const uarc_bytestring *e =
                endpoint_certificate(c, SECURITY_POLICY_NONE, UARC_MessageSecurityMode_None);
            chosen = e ? e->data : NULL;
            chosen_length = e ? uarc__crypto_first_certificate(e->data, e->length) : 0;
            source = "the certificate of the endpoint from GetEndpoints";
        }
        if (chosen && (chosen_length != length || memcmp(chosen, cert->data, length) != 0)) {
            snprintf(why, why_size,
                     "the server's certificate in CreateSession is not %s; the password is not "
                     "encrypted for it",
                     source);
            return UARC_BadSecurityChecksFailed;
        }
        char reason[1200];
        uarc_status s = trust_server_certificate(c, cert->data, cert->length,
                                                 c->server_cert != NULL, reason, sizeof reason);
        if (s != UARC_Good) {
            snprintf(why, why_size,
                     "the password would be encrypted for the server's certificate from "
                     "CreateSession on a None channel, which is not trusted (%s): %s",
                     uarc_status_name(s), reason);
            return UARC_BadSecurityChecksFailed;
        }
    }
    if (c->server_nonce.length < SESSION_NONCE_LENGTH) {
        snprintf(why, why_size,
                 "the server's nonce is %zu bytes, fewer than 32: a password encrypted with it "
                 "could be replayed",
                 c->server_nonce.length);
        return UARC_BadNonceInvalid;
    }
    return UARC_Good;
}

/* Whether `list` has an endpoint of e's security policy and mode whose certificate is e's, where
 * both carry one (Part 4 §5.6.2 lets serverEndpoints leave certificates out). The first
 * certificates are compared as bytes, so their DER length suffices: parsing every pair (each
 * parse decodes a public key) was a fifth of a secured reverse connect's CPU time. */
static bool has_endpoint(const uarc_EndpointDescription *list, size_t count,
                         const uarc_EndpointDescription *e)
{
    size_t length = e->serverCertificate.length
                        ? uarc__crypto_der_sequence_length(e->serverCertificate.data,
                                                           e->serverCertificate.length)
                        : 0;
    for (size_t i = 0; i < count; i++) {
        const uarc_EndpointDescription *o = &list[i];
        if (!uarc_equal(&o->securityPolicyUri, &e->securityPolicyUri, UARC_T(String)) ||
            o->securityMode != e->securityMode)
            continue;
        if (!length || !o->serverCertificate.length)
            return true;
        size_t other = uarc__crypto_der_sequence_length(o->serverCertificate.data,
                                                        o->serverCertificate.length);
        if (other == length &&
            memcmp(o->serverCertificate.data, e->serverCertificate.data, length) == 0)
            return true;
    }
    return false;
}

/* The serverEndpoints of CreateSession against the discovery result, when there is one: the same
 * policies and modes, and the same certificates (Part 4 §5.6.2). A difference means that the
 * discovery was tampered with (a policy hidden, a certificate substituted) or that another server
 * answers. */
uarc_status uarc__client_check_server_endpoints(uarc_client *c, const uarc_CreateSessionResponse *r)
{
    if (!c->endpoints)
        return UARC_Good;
    const uarc_EndpointDescription *missing = NULL;
    const char *where = NULL;
    for (size_t i = 0; i < c->endpoint_count && !missing; i++)
        if (!has_endpoint(r->serverEndpoints, r->serverEndpointsSize, &c->endpoints[i])) {
            missing = &c->endpoints[i];
            where = "GetEndpoints offered it, CreateSession's serverEndpoints do not";
        }
    for (size_t i = 0; i < r->serverEndpointsSize && !missing; i++)
        if (!has_endpoint(c->endpoints, c->endpoint_count, &r->serverEndpoints[i])) {
            missing = &r->serverEndpoints[i];
            where = "CreateSession's serverEndpoints offer it, GetEndpoints did not";
        }
    if (!missing)
        return UARC_Good;
    const uarc_string *p = &missing->securityPolicyUri;
    static const char *const modes[] = {"Invalid", "None", "Sign", "SignAndEncrypt"};
    unsigned mode = (unsigned)missing->securityMode;
    uarc__client_fail_connect(
        c, "CreateSession", UARC_BadSecurityChecksFailed,
        "the server's endpoints differ from GetEndpoints: %.*s in mode %s%s: %s",
        (int)(p->length > 200 ? 200 : p->length), p->length ? (const char *)p->data : "",
        mode < 4 ? modes[mode] : "?",
        missing->serverCertificate.length ? " with that certificate" : "", where);
    return UARC_BadSecurityChecksFailed;
}

static uarc_status security_failed(uarc_client *c, uarc_status status, const char *fmt, ...)
    UARC__PRINTF(3, 4);

static uarc_status security_failed(uarc_client *c, uarc_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    uarc__client_vset_error(c, "OPN", status, fmt, ap);
    va_end(ap);
    uarc__client_end_connection(c, status);
    return status;
}

/* Loads a file into *dst unless it already holds bytes. */
static uarc_status load_once(uarc_client *c, const char *path, bool key, uint8_t **dst,
                             size_t *length, const char *what)
{
    if (*dst || !path)
        return UARC_Good;
    uarc_status s = key ? uarc__crypto_load_private_key(path, dst, length)
                        : uarc__crypto_load_certificate(path, dst, length);
    if (s != UARC_Good)
        return security_failed(c, s, "cannot read the %s from %s", what, path);
    return UARC_Good;
}

/* Forward connect: the certificate's URI against the endpoint's ApplicationUri, its DNS and IP
 * names against the host we connect to (see allow_server_uri_mismatch in uarc/client.h). */
static uarc_status check_server_identity(uarc_client *c, const uarc_EndpointDescription *endpoint,
                                         const uint8_t *der, size_t length)
{
    const uarc_string *app_uri = endpoint ? &endpoint->server.applicationUri : NULL;
    if (app_uri && app_uri->length) {
        char uri[512];
        uarc_status s = uarc__crypto_certificate_uri(der, length, uri, sizeof uri);
        if (s != UARC_Good || !uarc_string_equal_cstr(app_uri, uri)) {
            char why[1200];
            snprintf(why, sizeof why,
                     "the server's certificate names URI %s, but its endpoint names the "
                     "ApplicationUri %.*s",
                     s == UARC_Good ? uri : "(none)",
                     (int)(app_uri->length > 500 ? 500 : app_uri->length),
                     (const char *)app_uri->data);
            if (!c->cfg.allow_server_uri_mismatch)
                return security_failed(c, UARC_BadCertificateUriInvalid, "%s", why);
            uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust", "%s (allow_server_uri_mismatch)",
                      why);
        }
    }
    char host[256], detail[900];
    uint16_t port;
    if (uarc__split_endpoint_url(c->endpoint_url, host, sizeof host, &port, detail,
                                 sizeof detail) != UARC_Good)
        return UARC_Good; /* the connect itself reports a bad URL */
    uarc_status s = uarc__cert_check_host(der, length, host, detail, sizeof detail);
    if (s == UARC_Good)
        return UARC_Good;
    if (c->cfg.require_server_host_name || s != UARC_BadCertificateHostNameInvalid)
        return security_failed(c, s, "server %s", detail);
    uarc__log(&c->cfg.logger, UARC_LOG_WARNING, "trust",
              "server %s (require_server_host_name "
              "makes this an error)",
              detail);
    return UARC_Good;
}

/* The server certificate of the secured channel, the pin or the discovery result's, trusted
 * before anything is encrypted for its key; kept in c->channel_cert. */
static uarc_status choose_server_certificate(uarc_client *c, const uarc__security_policy *policy)
{
    uarc__free(c->channel_cert);
    c->channel_cert = NULL;
    c->channel_cert_length = 0;
    uarc_MessageSecurityMode mode =
        c->cfg.security_mode ? c->cfg.security_mode : UARC_MessageSecurityMode_SignAndEncrypt;
    const uarc_EndpointDescription *endpoint = endpoint_for(c, policy->uri, mode);
    const uint8_t *der = c->server_cert;
    size_t length = c->server_cert_length;
    size_t chain_length = length; /* with the issuers the server sent after its certificate */
    if (!der && endpoint) {
        der = endpoint->serverCertificate.data;
        chain_length = endpoint->serverCertificate.length;
        length = uarc__crypto_first_certificate(der, chain_length);
        if (!length)
            return security_failed(c, UARC_BadCertificateInvalid,
                                   "the serverCertificate of the endpoint for %s is not a "
                                   "certificate",
                                   policy->uri);
    }
    if (!der)
        return security_failed(c, UARC_BadCertificateInvalid,
                               "%s needs the server's certificate before OPN: run GetEndpoints "
                               "first (a None channel with no_session) and pass the result "
                               "(uarc_client_set_endpoints), or pin the certificate "
                               "(server_certificate)%s",
                               policy->uri,
                               c->endpoint_count ? "; the endpoints known offer none for this "
                                                   "policy and mode"
                                                 : "");
    if (!uarc__client_copy_bytes(&c->channel_cert, &c->channel_cert_length, der, length))
        return security_failed(c, UARC_BadOutOfMemory, "out of memory");
    if (c->cfg.expected_server_uri) {
        char uri[512];
        uarc_status s = uarc__crypto_certificate_uri(der, length, uri, sizeof uri);
        if (s != UARC_Good || strcmp(uri, c->cfg.expected_server_uri) != 0)
            return security_failed(
                c, UARC_BadCertificateUriInvalid,
                "the server's certificate names URI %s, but the server claims to be %s",
                s == UARC_Good ? uri : "(none)", c->cfg.expected_server_uri);
    } else {
        uarc_status s = check_server_identity(c, endpoint, der, length);
        if (s != UARC_Good)
            return s;
    }
    char why[1200];
    uarc_status s =
        trust_server_certificate(c, der, chain_length, der == c->server_cert, why, sizeof why);
    if (s != UARC_Good)
        return security_failed(c, s, "%s", why);
    return UARC_Good;
}

/* For a policy other than None: our certificate and key (loaded or made once), the server's
 * certificate, its URI against expected_server_uri, and the policy context for the session. */
uarc_status uarc__client_prepare_security(uarc_client *c, uarc__channel_config *cc)
{
    const uarc__security_policy *policy = uarc__security_policy_find(c->cfg.security_policy_uri);
    if (!policy)
        return security_failed(c, UARC_BadSecurityPolicyRejected,
                               "security policy %s is not implemented", c->cfg.security_policy_uri);
    if (policy == &uarc__security_policy_none) /* a pin vouches for a password's certificate */
        return load_once(c, c->cfg.server_certificate_file, false, &c->server_cert,
                         &c->server_cert_length, "server certificate");
    uarc_status s;
    if ((s = load_once(c, c->cfg.certificate_file, false, &c->local_cert, &c->local_cert_length,
                       "certificate")) != UARC_Good ||
        (s = load_once(c, c->cfg.private_key_file, true, &c->local_key, &c->local_key_length,
                       "private key")) != UARC_Good ||
        (s = load_once(c, c->cfg.server_certificate_file, false, &c->server_cert,
                       &c->server_cert_length, "server certificate")) != UARC_Good)
        return s;
    if (!c->local_cert && c->cfg.generate_certificate) {
        s = uarc__crypto_make_certificate(c->cfg.application_uri, policy->certificate_curve,
                                          &c->local_cert, &c->local_cert_length, &c->local_key,
                                          &c->local_key_length);
        if (s != UARC_Good)
            return security_failed(c, s, "cannot make a self-signed certificate");
        uarc__log(&c->cfg.logger, UARC_LOG_INFO, "client",
                  "made an ephemeral self-signed certificate for %s", c->cfg.application_uri);
    }
    if (!c->local_cert || !c->local_key)
        return security_failed(c, UARC_BadCertificateInvalid,
                               "%s needs a client certificate and private key (or "
                               "generate_certificate)",
                               policy->uri);
    if ((s = choose_server_certificate(c, policy)) != UARC_Good)
        return s;
    cc->security_mode = c->cfg.security_mode;
    cc->local_certificate = (uarc_view){c->local_cert, c->local_cert_length};
    cc->local_private_key = (uarc_view){c->local_key, c->local_key_length};
    cc->remote_certificate = (uarc_view){c->channel_cert, c->channel_cert_length};
    uarc__security_config config = {cc->security_mode, cc->local_certificate, cc->local_private_key,
                                    cc->remote_certificate, false};
    s = policy->context_new(&config, &c->security);
    if (s == UARC_BadCertificatePolicyCheckFailed && policy->certificate_curve)
        return security_failed(c, s,
                               "%s takes EC keys on curve %s only (ours or the server's "
                               "certificate is on another)",
                               policy->uri, policy->certificate_curve);
    if (s == UARC_BadCertificatePolicyCheckFailed)
        return security_failed(c, s,
                               "%s takes RSA keys of 2048 to 4096 bits only (ours or the "
                               "server's certificate has another size)",
                               policy->uri);
    if (s != UARC_Good)
        return security_failed(c, s,
                               "the certificates or mode do not suit %s (a key that is not the "
                               "certificate's, not %s, or mode None)",
                               policy->uri, policy->certificate_curve ? "EC" : "RSA");
    c->policy = policy;
    return UARC_Good;
}
