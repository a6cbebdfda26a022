/*
 * Two applications for the security policy tests, 0 the client and 1 the server, each with a
 * certificate and private key made once per test program; the security context of one facing the
 * other; and the chunks those tests seal and open. Include after <cmocka.h>.
 */
#ifndef UARC_TESTS_APP_PAIR_H
#define UARC_TESTS_APP_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "channel/chunk.h"
#include "channel/security.h"
#include "core/alloc.h"
#include "uarc/client.h"

typedef struct app_pair {
    uint8_t *cert[2], *key[2];
    size_t cert_length[2], key_length[2];
} app_pair;

/* Makes both identities ("urn:test:client", "urn:test:server") with
 * uarc_certificate_generate_for(): the key `security_policy_uri` needs (NULL: RSA). 0, or -1 as a
 * cmocka group setup fails. */
static inline int app_pair_make(app_pair *p, const char *security_policy_uri)
{
    const char *uris[2] = {"urn:test:client", "urn:test:server"};
    for (int i = 0; i < 2; i++)
        if (uarc_certificate_generate_for(uris[i], security_policy_uri, &p->cert[i],
                                          &p->cert_length[i], &p->key[i],
                                          &p->key_length[i]) != UARC_Good)
            return -1;
    return 0;
}

static inline void app_pair_free(app_pair *p)
{
    for (int i = 0; i < 2; i++) {
        uarc__free(p->cert[i]);
        uarc__free(p->key[i]);
    }
}

/* The context of application `self` facing application 1 - self (`server`: it plays the server
 * role, see uarc__security_config). */
static inline void *app_pair_context(const app_pair *p, const uarc__security_policy *policy,
                                     int self, uarc_MessageSecurityMode mode, bool server)
{
    uarc__security_config config = {
        mode,
        {p->cert[self], p->cert_length[self]},
        {p->key[self], p->key_length[self]},
        {p->cert[1 - self], p->cert_length[1 - self]},
        server,
    };
    void *context = NULL;
    assert_int_equal(policy->context_new(&config, &context), UARC_Good);
    return context;
}

/* A final MSG chunk carrying `body`: channel 5, token 9, sequence number 77, request 4. */
static inline uarc__chunk_info test_msg_chunk(const uint8_t *body, size_t length)
{
    uarc__chunk_info info = {0};
    info.type = UARC__UATCP_MSG;
    info.chunk_type = 'F';
    info.channel_id = 5;
    info.token_id = 9;
    info.sequence_number = 77;
    info.request_id = 4;
    info.body = body;
    info.body_length = length;
    return info;
}

/* A final OPN chunk carrying `body` from `sender`, a context of `policy`: the policy's URI, the
 * sender's certificate and the receiver's thumbprint, request 1. */
static inline uarc__chunk_info test_opn_chunk(const uarc__security_policy *policy, void *sender,
                                              uint32_t channel_id, uint32_t sequence,
                                              const uint8_t *body, size_t length)
{
    uarc__chunk_info info = {0};
    info.type = UARC__UATCP_OPN;
    info.chunk_type = 'F';
    info.channel_id = channel_id;
    info.policy_uri = (uarc_view){(const uint8_t *)policy->uri, strlen(policy->uri)};
    info.sender_certificate = policy->local_certificate(sender);
    info.receiver_thumbprint = policy->remote_thumbprint(sender);
    info.sequence_number = sequence;
    info.request_id = 1;
    info.body = body;
    info.body_length = length;
    return info;
}

#endif
