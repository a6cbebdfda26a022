/*
 * The certificates the hub makes for clients configured with generate_certificate and none of
 * their own: one per key type for the hub's application URI, shared by every client that wants
 * that type. A client configured with another application URI makes its own, as it would alone.
 */
#include <string.h>

#include "reverse/hub_internal.h"
#include "core/alloc.h"

#define SECURITY_POLICY_NONE "http://opcfoundation.org/UA/SecurityPolicy#None"

/* One made certificate: for `uri`, with the key `kind` (below). */
struct hub_certificate {
    char *uri, *kind;
    uint8_t *certificate, *key;
    size_t certificate_length, key_length;
};

/* Zeroes a private key before it is freed (volatile: the stores are not optimized away). */
static void wipe(uint8_t *key, size_t length)
{
    volatile uint8_t *p = key;
    for (size_t i = 0; key && i < length; i++)
        p[i] = 0;
}

static void free_certificate(hub_certificate *c)
{
    wipe(c->key, c->key_length);
    uarc__free(c->key);
    uarc__free(c->certificate);
    uarc__free(c->uri);
    uarc__free(c->kind);
}

void uarc__hub_certificates_clear(uarc_reverse_hub *hub)
{
    for (size_t i = 0; i < hub->certificate_count; i++)
        free_certificate(&hub->certificates[i]);
    uarc__free(hub->certificates);
    hub->certificates = NULL;
    hub->certificate_count = 0;
}

/* The key a policy's certificate needs: every ECC policy names its own curve, every other policy
 * takes RSA (uarc_certificate_generate_for()). An RSA client handed an EC certificate, or a P-256
 * client a P-384 one, would fail before OPN. */
static const char *key_kind(const char *policy_uri)
{
    return strstr(policy_uri, "#ECC_") ? policy_uri : "RSA";
}

static uarc_status make(uarc_reverse_hub *hub, const char *uri, const char *kind,
                        const uarc_client_config *cfg, hub_certificate **made)
{
    hub_certificate *grown =
        uarc__realloc(hub->certificates, (hub->certificate_count + 1) * sizeof *grown);
    if (!grown)
        return UARC_BadOutOfMemory;
    hub->certificates = grown;
    hub_certificate c = {
        uarc__strndup(uri, strlen(uri)), uarc__strndup(kind, strlen(kind)), NULL, NULL, 0, 0};
    uarc_status status = !c.uri || !c.kind
                             ? UARC_BadOutOfMemory
                             : uarc_certificate_generate_for(
                                   cfg->application_uri, cfg->security_policy_uri, &c.certificate,
                                   &c.certificate_length, &c.key, &c.key_length);
    if (status != UARC_Good) {
        free_certificate(&c);
        return status;
    }
    grown[hub->certificate_count] = c;
    *made = &grown[hub->certificate_count++];
    return UARC_Good;
}

uarc_status uarc__hub_share_certificate(uarc_reverse_hub *hub, uarc_client_config *cfg)
{
    if (!cfg->generate_certificate || cfg->certificate || cfg->certificate_file ||
        !cfg->security_policy_uri || strcmp(cfg->security_policy_uri, SECURITY_POLICY_NONE) == 0)
        return UARC_Good;
    const char *uri = cfg->application_uri ? cfg->application_uri : "";
    const char *hub_uri = hub->opt.client.application_uri ? hub->opt.client.application_uri : "";
    if (strcmp(uri, hub_uri) != 0)
        return UARC_Good;
    const char *kind = key_kind(cfg->security_policy_uri);
    hub_certificate *c = NULL;
    for (size_t i = 0; i < hub->certificate_count && !c; i++)
        if (strcmp(hub->certificates[i].uri, uri) == 0 &&
            strcmp(hub->certificates[i].kind, kind) == 0)
            c = &hub->certificates[i];
    uarc_status status = c ? UARC_Good : make(hub, uri, kind, cfg, &c);
    if (status != UARC_Good)
        return status;
    cfg->certificate = c->certificate;
    cfg->certificate_length = c->certificate_length;
    cfg->private_key = c->key;
    cfg->private_key_length = c->key_length;
    cfg->generate_certificate = false;
    return UARC_Good;
}
