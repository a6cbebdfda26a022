/* The secure channel's OpenSecureChannel exchange: the OPN request that issues the first token
 * and renews it, and the checks on the server's OPN response before a new token goes into use. */
#include <string.h>

#include <openssl/crypto.h>

#include "channel/channel_internal.h"
#include "channel/chunk.h"
#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/log.h"

/* ---- sending ----------------------------------------------------------------------------- */

/* The client nonce with the server's derives every key of a token: it is wiped once it served. */
void uarc__ch_drop_client_nonce(uarc__channel *ch)
{
    uarc__crypto_free_secret(ch->client_nonce, ch->client_nonce_length);
    ch->client_nonce = NULL;
    ch->client_nonce_length = 0;
}

uarc_status uarc__ch_queue_opn(uarc__channel *ch, uarc_SecurityTokenRequestType request_type,
                               int64_t now_ms)
{
    uarc__ch_drop_client_nonce(ch);
    ch->client_nonce_length = ch->policy->nonce_length;
    if (ch->client_nonce_length) {
        ch->client_nonce = uarc__malloc(ch->client_nonce_length);
        if (!ch->client_nonce)
            return UARC_BadOutOfMemory;
        uarc_status s =
            ch->policy->new_nonce(ch->security, ch->client_nonce, ch->client_nonce_length);
        if (s != UARC_Good)
            return s;
    }

    uint32_t request_id = uarc__ch_next_request_id(ch);
    uarc_OpenSecureChannelRequest request;
    uarc_init(&request, UARC_T(OpenSecureChannelRequest));
    request.requestHeader.requestHandle = request_id;
    request.requestHeader.timeoutHint = ch->handshake_timeout;
    request.clientProtocolVersion = 0;
    request.requestType = request_type;
    request.securityMode = ch->policy->mode(ch->security);
    request.clientNonce.length = ch->client_nonce_length;
    request.clientNonce.data = ch->client_nonce_length ? ch->client_nonce : UARC_EMPTY;
    request.requestedLifetime = ch->requested_lifetime;

    uint8_t *body;
    size_t length;
    uarc_status s =
        uarc__ch_encode_body(&request, UARC_T(OpenSecureChannelRequest), &body, &length);
    if (s != UARC_Good)
        return s;

    uarc__chunk_info info = {0};
    info.type = UARC__UATCP_OPN;
    info.chunk_type = 'F';
    info.channel_id = ch->channel_id;
    info.policy_uri = (uarc_view){(const uint8_t *)ch->policy->uri, strlen(ch->policy->uri)};
    info.sender_certificate = ch->policy->local_certificate(ch->security);
    info.receiver_thumbprint = ch->policy->remote_thumbprint(ch->security);
    info.request_id = request_id;
    info.body = body;
    info.body_length = length;
    uarc__chunk_security security = {ch->policy, ch->security, NULL};
    if (length > uarc__chunk_max_body(&security, &info, ch->send_chunk_size)) {
        s = UARC_BadEncodingLimitsExceeded;
    } else if (!uarc__ch_reserve_output(ch, ch->send_chunk_size)) {
        s = UARC_BadOutOfMemory;
    } else {
        uint32_t saved_sequence = ch->send_sequence;
        info.sequence_number = uarc__ch_next_sequence(ch);
        size_t size;
        s = uarc__chunk_encode(&security, &info, ch->out + ch->out_len,
                               ch->out_capacity - ch->out_len, &size);
        if (s == UARC_Good)
            ch->out_len += size;
        else
            ch->send_sequence = saved_sequence;
    }
    uarc__crypto_free_secret(body, length);
    if (s == UARC_Good) {
        ch->opn_request_id = request_id;
        ch->deadline = now_ms + ch->handshake_timeout;
        uarc__log(&ch->logger, UARC_LOG_DEBUG, "channel", "OPN %s sent (request %u)",
                  request_type == UARC_SecurityTokenRequestType_Issue ? "Issue" : "Renew",
                  request_id);
    }
    return s;
}

/* ---- receiving ---------------------------------------------------------------------------- */

/* The body of the OPN response (or of a ServiceFault): checked, and its token taken into use. */
static void handle_opn_response(uarc__channel *ch, const uarc__chunk_info *info, int64_t now_ms)
{
    size_t offset = 0;
    uarc_nodeid type_id;
    uarc_decode_config options = ch->decode;
    options.arena = NULL;
    if (uarc_decode(info->body, info->body_length, &offset, &type_id, UARC_T(NodeId), &options) !=
            UARC_Good ||
        type_id.namespace_index != 0 || type_id.identifier_type != UARC_NODEID_NUMERIC) {
        uarc_clear(&type_id, UARC_T(NodeId));
        uarc__ch_fail(ch, UARC_BadDecodingError, "OPN response: bad type id");
        return;
    }
    uint32_t encoding = type_id.identifier.numeric;
    if (encoding == UARC_T(ServiceFault)->binary_encoding_id) {
        uarc_ServiceFault fault;
        uarc_status s = uarc_decode(info->body, info->body_length, &offset, &fault,
                                    UARC_T(ServiceFault), &options);
        uarc_status result = fault.responseHeader.serviceResult;
        if (s == UARC_Good)
            uarc_clear(&fault, UARC_T(ServiceFault));
        uarc__ch_fail(ch,
                      s != UARC_Good               ? s
                      : uarc_status_is_bad(result) ? result
                                                   : UARC_BadUnexpectedError,
                      "OPN answered with a ServiceFault");
        return;
    }
    if (encoding != UARC_T(OpenSecureChannelResponse)->binary_encoding_id) {
        uarc__ch_fail(ch, UARC_BadDecodingError, "OPN response: unexpected type %u", encoding);
        return;
    }
    uarc_OpenSecureChannelResponse r;
    uarc_status s = uarc_decode(info->body, info->body_length, &offset, &r,
                                UARC_T(OpenSecureChannelResponse), &options);
    if (s != UARC_Good) {
        uarc__ch_fail(ch, s, "OPN response: %s", options.detail ? options.detail : "cannot decode");
        return;
    }
    bool issue = !ch->current.valid;
    /* Part 4 §5.5.2, Part 6 §6.7: a renewal issues a new token, and each chunk names its token
     * by id; were the id reused, which keys secure a chunk could not be told. */
    bool reused = !issue && r.securityToken.tokenId == ch->current.id;
    void *keys = NULL;
    if (uarc_status_is_bad(r.responseHeader.serviceResult))
        s = r.responseHeader.serviceResult;
    else if (r.securityToken.channelId != info->channel_id || info->channel_id == 0 ||
             (!issue && info->channel_id != ch->channel_id))
        s = UARC_BadSecureChannelIdInvalid;
    else if (reused)
        s = UARC_BadSecurityChecksFailed;
    else if (ch->policy->nonce_length &&
             (r.serverNonce.length != ch->policy->nonce_length || !r.serverNonce.data))
        s = UARC_BadNonceInvalid;
    else
        s = ch->policy->derive_keys(
            ch->security, (uarc_view){ch->client_nonce, ch->client_nonce_length},
            (uarc_view){r.serverNonce.length ? r.serverNonce.data : NULL, r.serverNonce.length},
            &keys);
    uarc__ch_drop_client_nonce(ch);
    if (r.serverNonce.data)
        OPENSSL_cleanse(r.serverNonce.data, r.serverNonce.length);
    if (s != UARC_Good) {
        if (s == UARC_BadSecurityChecksFailed && reused)
            uarc__ch_fail(ch, s,
                          "OPN Renew: the new token has id %u, the id of the current token %u",
                          r.securityToken.tokenId, ch->current.id);
        else
            uarc__ch_fail(ch, s, "OPN %s rejected", issue ? "Issue" : "Renew");
        uarc_clear(&r, UARC_T(OpenSecureChannelResponse));
        return;
    }
    uarc__ch_drop_previous(ch);
    ch->previous = ch->current; /* invalid after an Issue */
    /* Part 4 §5.5.2.1: messages under an expired token are still accepted for 25 % of its
     * lifetime; not beyond */
    ch->previous_until =
        ch->previous.issued + (int64_t)ch->previous.lifetime + ch->previous.lifetime / 4;
    ch->revised_lifetime =
        r.securityToken.revisedLifetime ? r.securityToken.revisedLifetime : ch->requested_lifetime;
    ch->current = (token){true, r.securityToken.tokenId, keys, ch->revised_lifetime, now_ms};
    ch->channel_id = info->channel_id;
    ch->renewing = false;
    ch->deadline = -1;
    int64_t renew_after = (int64_t)ch->revised_lifetime * 3 / 4;
    if (renew_after < MIN_RENEW_DELAY_MS) {
        if (!ch->short_lifetime_logged)
            uarc__log(&ch->logger, UARC_LOG_WARNING, "channel",
                      "the server revised the token lifetime to %u ms; renewing every %u ms "
                      "instead of at 75 %% of it",
                      ch->revised_lifetime, MIN_RENEW_DELAY_MS);
        ch->short_lifetime_logged = true;
        renew_after = MIN_RENEW_DELAY_MS;
    }
    ch->renew_at = now_ms + renew_after;
    uarc_clear(&r, UARC_T(OpenSecureChannelResponse));
    uarc__log(&ch->logger, UARC_LOG_INFO, "channel", "secure channel %u token %u, lifetime %u ms",
              ch->channel_id, ch->current.id, ch->revised_lifetime);
    if (issue) {
        ch->state = UARC__CHANNEL_OPEN;
        if (ch->events.opened)
            ch->events.opened(ch->events.user_data);
    }
}

void uarc__ch_handle_opn(uarc__channel *ch, uint8_t *chunk, size_t size, int64_t now_ms)
{
    bool expected = ch->state == UARC__CHANNEL_OPN_SENT || ch->renewing;
    if (!expected) {
        uarc__ch_fail(ch, UARC_BadTcpMessageTypeInvalid, "unexpected OPN");
        return;
    }
    uarc__chunk_info info;
    size_t header_size;
    if (uarc__chunk_parse_header(chunk, size, &info, &header_size) != UARC_Good) {
        uarc__ch_fail(ch, UARC_BadDecodingError, "malformed OPN header");
        return;
    }
    if (!info.policy_uri.data || info.policy_uri.length != strlen(ch->policy->uri) ||
        memcmp(info.policy_uri.data, ch->policy->uri, info.policy_uri.length) != 0) {
        uarc__ch_fail(ch, UARC_BadSecurityPolicyRejected,
                      "OPN response names another security policy");
        return;
    }
    uarc_status s = ch->policy->check_asym_header(ch->security, info.sender_certificate,
                                                  info.receiver_thumbprint);
    uarc__chunk_security security = {ch->policy, ch->security, NULL};
    if (s == UARC_Good)
        s = uarc__chunk_open(&security, chunk, size, header_size, &info);
    if (s != UARC_Good) {
        uarc__ch_fail(ch, s, "OPN response fails security checks");
        return;
    }
    /* A renewal's response continues the sequence; an Issue response starts it. */
    if (!uarc__ch_check_sequence(ch, info.sequence_number))
        return;
    if (info.request_id != ch->opn_request_id) {
        uarc__ch_fail(ch, UARC_BadSecurityChecksFailed, "OPN response for request %u, expected %u",
                      info.request_id, ch->opn_request_id);
        return;
    }
    handle_opn_response(ch, &info, now_ms);
    OPENSSL_cleanse(chunk, size); /* the decrypted server nonce */
}
