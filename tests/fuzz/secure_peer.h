/*
 * The fuzz harnesses' server side of a secured channel (Basic256Sha256) with the fixed test
 * identities of fuzz_secure_keys.h: it opens what the client sends with the server's key and the
 * token keys it derived, and seals what the harness answers, so that fuzzer-chosen bodies reach
 * the client's decoder through its decryption, signature and padding checks. Also the sealing of a
 * chunk whose padding is the fuzzer's (used by fuzz_secure_channel.c as well).
 */
#ifndef UARC_FUZZ_SECURE_PEER_H
#define UARC_FUZZ_SECURE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel/chunk.h"

/* The fixed test identities of fuzz_secure_keys.h, by name. */
typedef enum fuzz_key_id {
    FUZZ_CLIENT_CERT,
    FUZZ_CLIENT_KEY,
    FUZZ_SERVER_CERT,
    FUZZ_SERVER_KEY,
    FUZZ_SERVER_4096_CERT,
    FUZZ_SERVER_4096_KEY,
    FUZZ_SERVER_3000_CERT,
    FUZZ_SERVER_3000_KEY,
    FUZZ_CLIENT_2056_CERT,
    FUZZ_CLIENT_2056_KEY,
    FUZZ_SERVER_512_CERT,
    FUZZ_SERVER_1024_CERT,
    FUZZ_CLIENT_1024_CERT,
    FUZZ_CLIENT_1024_KEY,
    FUZZ_SERVER_8192_CERT,
    FUZZ_KEY_COUNT
} fuzz_key_id;

/* One of them as DER (decoded once, kept for the process's life). */
uarc_view fuzz_key(fuzz_key_id id);

typedef struct secure_peer {
    const uarc__security_policy *policy;
    void *context; /* the server's: its key, the client's certificate */
    uint32_t token_id, previous_token_id;
    void *keys, *previous_keys; /* the server's view of the current and the previous token */
    uint8_t client_nonce[32];   /* from the client's last OPN */
} secure_peer;

/* Basic256Sha256 in mode Sign (`sign_only`) or SignAndEncrypt; the context is made once per
 * mode and kept. */
void secure_peer_start(secure_peer *p, bool sign_only);
/* Forgets the token keys (a new connection, or the end of a run). */
void secure_peer_stop(secure_peer *p);

/* The certificates and keys the client uses with this peer (DER views). */
void secure_peer_client_identity(const uint8_t **cert, size_t *cert_length, const uint8_t **key,
                                 size_t *key_length);
void secure_peer_server_certificate(const uint8_t **cert, size_t *length);

/* Opens a whole chunk the client sent, in place: an OPN with the server's key, a MSG or CLO with
 * the keys of its token. Returns Good or why not. The harness keeps an OPN's client nonce in
 * client_nonce. */
uarc_status secure_peer_open(secure_peer *p, uint8_t *chunk, size_t size, uarc__chunk_info *info);

/* A new token `token_id` from `server_nonce` and the client nonce of the last OPN; the current one
 * becomes the previous. */
void secure_peer_new_token(secure_peer *p, uint32_t token_id, const uint8_t server_nonce[32]);

/* Seals `info` (OPN asymmetrically, else with the current token's keys) into out[0..capacity).
 * Returns the chunk's size, 0 when it cannot be sealed. */
size_t secure_peer_seal(secure_peer *p, const uarc__chunk_info *info, uint8_t *out,
                        size_t capacity);

/* Signs `length` bytes with the server's key into `signature` (its size in *signature_length). */
void secure_peer_sign(secure_peer *p, const uint8_t *data, size_t length, uint8_t *signature,
                      size_t *signature_length);

/*
 * Seals a chunk whose bytes after the sequence header (body, padding and all) are info->body,
 * extended with zero bytes to whole cipher blocks, signed and encrypted as they are: the padding
 * checks then see validly signed nonsense. `keys`: the token's (NULL for OPN). Returns the size
 * written to out[0..capacity), 0 when it does not fit.
 */
size_t seal_own_padding(const uarc__security_policy *policy, void *context, const void *keys,
                        const uarc__chunk_info *info, uint8_t *out, size_t capacity);

#endif
