/*
 * libFuzzer target for the secure channel's receive path under a secured policy: OPN chunks with
 * asymmetric security (header, certificate checks, RSA decryption and signature, padding, the
 * OpenSecureChannel response), then MSG/CLO chunks sealed with the token keys (padding, HMAC,
 * AES-CBC, sequence numbers, token switch-over after a renewal, chunk joining, abort chunks).
 * Under the ECC policies the OPN chunks are ECDSA-signed only and the nonces ephemeral ECDH keys.
 *
 * The harness plays the server with fixed RSA and EC identities (fuzz_secure_keys.h,
 * fuzz_ecc_keys.h): it opens what the
 * channel sends with the server's keys (so it learns the client nonces and checks that every chunk
 * the channel sends is valid), and seals what the fuzzer asks for, since the fuzzer could never
 * forge a signature itself. Raw records reach the parsers before any check. The identities are
 * RSA-2048 unless the input picks other key sizes: odd ones inside the policies' 2048-4096 bits
 * run the whole input, and with keys outside that range the channel must refuse to be made.
 *
 * Input: byte 0 holds options
 *   bits 0-1  policy: Basic256Sha256, Aes256_Sha256_RsaPss, Aes128_Sha256_RsaOaep, ECC (below)
 *   bit 2     mode Sign (else SignAndEncrypt)
 *   bit 3     no automatic OPN Issue response: the records drive the asymmetric handshake
 *   bit 4     small limits (8192-byte buffers both ways, 20000-byte messages, 4 chunks)
 *   bit 5     send three requests when the channel opens
 *   bit 6     the server's sequence numbers start just below the wrap
 *   bit 7     end with a lost connection instead of CLO
 * bytes 1-2 (16 bits, little-endian) seed the split points of what is fed; their top 3 bits also
 *           pick the key sizes (key_sizes below): 0 client and server RSA-2048, 1-3 a server
 *           certificate of 512, 1024, 8192 bits, 4-5 a server of 4096, 3000 bits, 6 a client
 *           certificate of 1024 bits, 7 a client of 2056 bits. With ECC their low two bits pick
 *           (ecc_identities below): 0 ECC_nistP256, 1 ECC_nistP384, 2 ECC_nistP256 with an RSA
 * server certificate, 3 ECC_nistP256 with a P-384 server certificate (both must be refused) then
 * records, each an op byte (low 3 bits the kind, high 5 bits its parameters) and for most kinds a
 * 16-bit little-endian length and bytes: 0 RAW   bytes fed as they are 1 MSG   a MSG chunk sealed
 * around the bytes      2 CLO  the same as CLO 3 OPN   an OPN chunk sealed around the bytes (the
 * body of a response of the fuzzer's making) 4 REPLY a valid OpenSecureChannel response to the OPN
 * the channel sent last (no length) 5 TICK  the clock moves by the 16-bit value (ms) 6 SEND  one to
 * four requests                     7 FORGET the oldest outstanding request Besides "no crash, no
 * leak, no hang" it checks that events stop after `closed`, that every chunk sent fits the server's
 * ReceiveBufferSize and opens with the server's keys, and that the channel keeps working past the
 * handshake when the records say so. FUZZ_SECURE_TRACE=1 in the environment prints the events.
 *
 * tests/fuzz/make_secure_corpus.py writes the seed corpus in this format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "channel/channel.h"
#include "channel/chunk.h"
#include "core/endian.h"
#include "fuzz_ecc_keys.h"
#include "secure_peer.h"

#define SMALL_BUFFER 8192u
#define MAX_SENT     64
#define WRAP_START   4294967290u /* five chunks before the wrap */

static void require(int condition)
{
    if (!condition)
        abort();
}

/* ---- OpenSSL's memory --------------------------------------------------------------------- */

/*
 * OpenSSL 3 makes hundreds of small allocations to parse a key or run one RSA operation; through
 * ASan's allocator (stack traces, quarantine) that made each input cost ~10 ms. Its memory comes
 * from glibc directly instead (OpenSSL is not instrumented anyway), and a count of live blocks
 * stands in for LeakSanitizer: every input must give back what it took.
 */
extern void *__libc_malloc(size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static long openssl_live;

static bool warmed_up; /* OpenSSL's lazily made tables exist: the live count must not grow */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *openssl_malloc(size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    void *p = __libc_malloc(size ? size : 1);
    openssl_live += p != NULL;
    return p;
}

static void *openssl_realloc(void *old, size_t size, const char *file, int line)
{
    (void)file;
    (void)line;
    if (!old)
        return openssl_malloc(size, file, line);
    if (size == 0) {
        __libc_free(old);
        openssl_live--;
        return NULL;
    }
    return __libc_realloc(old, size);
}

static void openssl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p) {
        __libc_free(p);
        openssl_live--;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    require(CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) == 1);
    /* every policy and mode once through the handshake, sealed MSG chunks, a renewal and a bad
     * signature, so that what OpenSSL allocates once is allocated before the count matters */
    static const uint8_t warm[] = {
        0x20, 0,    0,              /* options (each policy and mode below), seed (key sizes) */
        1,    2,    0,    'a', 'b', /* MSG "ab" */
        5,    0xff, 0x0f,           /* TICK 4095 ms: OPN Renew */
        4,                          /* REPLY */
        1,    2,    0,    'a', 'b', /* MSG "ab" with the new token */
        0x81, 2,    0,    'c', 'd', /* MSG "cd", something off */
        3,    1,    0,    0,        /* OPN with a one-byte body */
    };
    uint8_t input[sizeof warm];
    memcpy(input, warm, sizeof warm);
    for (uint8_t keys = 0; keys < 8; keys++) {
        for (uint8_t options = 0; options < 8; options++) {
            input[0] = (uint8_t)(0x20 | options);
            input[2] = (uint8_t)(keys << 5);
            LLVMFuzzerTestOneInput(input, sizeof input);
        }
    }
    warmed_up = true;
    return 0;
}

/* ---- the server's side ------------------------------------------------------------------- */

static const uarc__security_policy *const policies[4] = {
    &uarc__security_policy_basic256sha256, &uarc__security_policy_aes256_sha256_rsapss,
    &uarc__security_policy_aes128_sha256_rsaoaep, NULL, /* ECC: ecc_identities */
};

/* The client's and the server's certificate and key of one input. */
typedef struct identities {
    uarc_view client_cert, client_key, server_cert, server_key;
    bool refused; /* a key outside 2048-4096 bits: the channel must not be made */
} identities;

#define KEY_BITS 13 /* the seed's bits from here on pick one of these */
#define NO_KEY   FUZZ_KEY_COUNT
static const fuzz_key_id key_sizes[8][4] = {
    {FUZZ_CLIENT_CERT, FUZZ_CLIENT_KEY, FUZZ_SERVER_CERT, FUZZ_SERVER_KEY},
    {FUZZ_CLIENT_CERT, FUZZ_CLIENT_KEY, FUZZ_SERVER_512_CERT, NO_KEY},
    {FUZZ_CLIENT_CERT, FUZZ_CLIENT_KEY, FUZZ_SERVER_1024_CERT, NO_KEY},
    {FUZZ_CLIENT_CERT, FUZZ_CLIENT_KEY, FUZZ_SERVER_8192_CERT, NO_KEY},
    {FUZZ_CLIENT_CERT, FUZZ_CLIENT_KEY, FUZZ_SERVER_4096_CERT, FUZZ_SERVER_4096_KEY},
    {FUZZ_CLIENT_CERT, FUZZ_CLIENT_KEY, FUZZ_SERVER_3000_CERT, FUZZ_SERVER_3000_KEY},
    {FUZZ_CLIENT_1024_CERT, FUZZ_CLIENT_1024_KEY, FUZZ_SERVER_CERT, FUZZ_SERVER_KEY},
    {FUZZ_CLIENT_2056_CERT, FUZZ_CLIENT_2056_KEY, FUZZ_SERVER_CERT, FUZZ_SERVER_KEY},
};
static const bool refused_sizes[8] = {false, true, true, true, false, false, true, false};

/* The identities of key_sizes[keys], decoded once. */
static const identities *identities_of(size_t keys)
{
    static identities table[8];
    static bool made;
    for (size_t i = 0; i < 8 && !made; i++) {
        uarc_view *views[4] = {&table[i].client_cert, &table[i].client_key, &table[i].server_cert,
                               &table[i].server_key};
        for (size_t j = 0; j < 4; j++)
            *views[j] =
                key_sizes[i][j] == NO_KEY ? (uarc_view){NULL, 0} : fuzz_key(key_sizes[i][j]);
        table[i].refused = refused_sizes[i];
    }
    made = true;
    return &table[keys];
}

#define VIEW(a) ((uarc_view){a, sizeof a})

/* The ECC runs (policy index 3): the key bits pick a policy and identities; an RSA server
 * certificate and one of the other curve must be refused. Made once. */
static const uarc__security_policy *ecc_policy(size_t k)
{
    return (k & 3) == 1 ? &uarc__security_policy_ecc_nistp384 : &uarc__security_policy_ecc_nistp256;
}

static const identities *ecc_identities(size_t k)
{
    static identities table[4];
    static bool made;
    if (!made) {
        uarc_view p256_cert = VIEW(fuzz_client_p256_cert), p256_key = VIEW(fuzz_client_p256_key);
        table[0] = (identities){p256_cert, p256_key, VIEW(fuzz_server_p256_cert),
                                VIEW(fuzz_server_p256_key), false};
        table[1] = (identities){VIEW(fuzz_client_p384_cert), VIEW(fuzz_client_p384_key),
                                VIEW(fuzz_server_p384_cert), VIEW(fuzz_server_p384_key), false};
        table[2] = (identities){p256_cert, p256_key, fuzz_key(FUZZ_SERVER_CERT),
                                fuzz_key(FUZZ_SERVER_KEY), true};
        table[3] = (identities){p256_cert, p256_key, VIEW(fuzz_server_p384_cert),
                                VIEW(fuzz_server_p384_key), true};
        made = true;
    }
    return &table[k & 3];
}

/* The policy and identities of an input's policy index and key bits. */
static void pick(size_t policy, size_t keys, const uarc__security_policy **out,
                 const identities **ids)
{
    *out = policy == 3 ? ecc_policy(keys) : policies[policy];
    *ids = policy == 3 ? ecc_identities(keys) : identities_of(keys);
}

/* The server's security contexts, one per policy, mode and key sizes, made once. */
static void *server_context(size_t policy, int sign_only, size_t keys)
{
    static void *contexts[4][2][8];
    if (!contexts[policy][sign_only][keys]) {
        const uarc__security_policy *sp;
        const identities *ids;
        pick(policy, keys, &sp, &ids);
        uarc__security_config config = {
            sign_only ? UARC_MessageSecurityMode_Sign : UARC_MessageSecurityMode_SignAndEncrypt,
            ids->server_cert,
            ids->server_key,
            ids->client_cert,
            true,
        };
        require(sp->context_new(&config, &contexts[policy][sign_only][keys]) == UARC_Good);
    }
    return contexts[policy][sign_only][keys];
}

typedef struct server_token {
    bool valid;
    uint32_t id;
    void *keys; /* the server's view: sign/encrypt with what the client verifies/decrypts */
} server_token;

typedef struct run {
    uarc__channel *channel;
    const uarc__security_policy *policy;
    const identities *ids;
    void *context;
    int send_on_open;
    int closed;
    int64_t now;
    uint32_t seed;
    uint32_t limit; /* the ReceiveBufferSize the server announced */

    /* the server */
    uint32_t channel_id;
    uint32_t sequence;
    uint32_t last_sequence;
    uint32_t next_token_id;
    server_token current, previous;
    bool opn_pending; /* an OPN from the channel awaits its response */
    uint32_t opn_request_id;
    uint8_t client_nonce[96]; /* policy->nonce_length bytes */
    bool keys_known;          /* false once the fuzzer sealed its own OPN response body */
    uint32_t sent[MAX_SENT];
    size_t sent_count;
} run;

static uint32_t next_seed(run *r)
{
    r->seed = r->seed * 1103515245u + 12345u;
    return r->seed >> 8;
}

static uint32_t server_sequence(run *r)
{
    r->last_sequence = r->sequence;
    r->sequence = r->sequence == UINT32_MAX ? 1 : r->sequence + 1; /* wraps as late as allowed */
    return r->last_sequence;
}

static void forget_token(run *r, server_token *t)
{
    if (t->valid)
        r->policy->keys_delete(t->keys);
    *t = (server_token){0};
}

/* ---- what the channel sends ---------------------------------------------------------------- */

/* Opens a chunk the channel sent as the server would, and learns what it needs from it. */
static void server_reads(run *r, const uint8_t *chunk, size_t size)
{
    static uint8_t copy[1 << 17];
    require(size <= sizeof copy);
    memcpy(copy, chunk, size);
    uarc__chunk_info info;
    size_t header;
    if (copy[0] == 'H') /* HEL */
        return;
    require(uarc__chunk_parse_header(copy, size, &info, &header) == UARC_Good);
    if (info.type == UARC__UATCP_OPN) {
        require(r->policy->check_asym_header(r->context, info.sender_certificate,
                                             info.receiver_thumbprint) == UARC_Good);
        uarc__chunk_security security = {r->policy, r->context, NULL};
        require(uarc__chunk_open(&security, copy, size, header, &info) == UARC_Good);
        size_t offset = 0;
        uarc_nodeid type_id;
        uarc_OpenSecureChannelRequest request;
        require(uarc_decode(info.body, info.body_length, &offset, &type_id, UARC_T(NodeId), NULL) ==
                UARC_Good);
        require(uarc_decode(info.body, info.body_length, &offset, &request,
                            UARC_T(OpenSecureChannelRequest), NULL) == UARC_Good);
        require(request.clientNonce.length == r->policy->nonce_length);
        memcpy(r->client_nonce, request.clientNonce.data, r->policy->nonce_length);
        require(request.requestHeader.requestHandle == info.request_id);
        uarc_clear(&request, UARC_T(OpenSecureChannelRequest));
        r->opn_pending = true;
        r->opn_request_id = info.request_id;
        return;
    }
    /* MSG and CLO: sealed with a token's keys, when the harness knows them */
    if (!r->keys_known)
        return;
    server_token *t = r->current.valid && info.token_id == r->current.id     ? &r->current
                      : r->previous.valid && info.token_id == r->previous.id ? &r->previous
                                                                             : NULL;
    require(t != NULL);
    require(info.channel_id == r->channel_id);
    uarc__chunk_security security = {r->policy, r->context, t->keys};
    require(uarc__chunk_open(&security, copy, size, header, &info) == UARC_Good);
}

static void drain(run *r)
{
    const uint8_t *out;
    size_t n = uarc__channel_output(r->channel, &out);
    for (size_t pos = 0; pos + 8 <= n;) {
        uint32_t size = uarc__ld32(out + pos + 4);
        require(size >= 8 && size <= r->limit && size <= n - pos);
        server_reads(r, out + pos, size);
        pos += size;
    }
    uarc__channel_output_done(r->channel, n);
}

static void answered(run *r, uint32_t id)
{
    for (size_t i = 0; i < r->sent_count; i++)
        if (r->sent[i] == id) {
            memmove(r->sent + i, r->sent + i + 1, (r->sent_count - i - 1) * sizeof r->sent[0]);
            r->sent_count--;
            return;
        }
}

/* ---- events ------------------------------------------------------------------------------- */

static void send_requests(run *r, int count)
{
    for (int i = 0; i < count; i++) {
        uarc_ReadRequest request;
        uarc_init(&request, UARC_T(ReadRequest));
        request.maxAge = (double)i;
        uint32_t id;
        if (uarc__channel_send_request(r->channel, &request, UARC_T(ReadRequest), &id) != UARC_Good)
            return;
        if (r->sent_count == MAX_SENT) {
            memmove(r->sent, r->sent + 1, (MAX_SENT - 1) * sizeof r->sent[0]);
            r->sent_count--;
        }
        r->sent[r->sent_count++] = id;
    }
}

static void on_opened(void *u)
{
    run *r = u;
    require(!r->closed);
    if (getenv("FUZZ_SECURE_TRACE"))
        fprintf(stderr, "opened\n");
    if (r->send_on_open)
        send_requests(r, 3);
}

static void on_message(void *u, uint32_t id, const uint8_t *body, size_t length)
{
    run *r = u;
    require(!r->closed);
    if (getenv("FUZZ_SECURE_TRACE"))
        fprintf(stderr, "request %u: %zu bytes\n", id, length);
    answered(r, id);
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < length; i++) /* the body must be readable */
        sink ^= body[i];
    (void)sink;
}

static void on_failed(void *u, uint32_t id, uarc_status status, const char *reason)
{
    run *r = u;
    if (getenv("FUZZ_SECURE_TRACE"))
        fprintf(stderr, "request %u failed: %s\n", id, reason);
    answered(r, id);
    require(!r->closed && uarc_status_is_bad(status) && reason);
}

static void on_closed(void *u, uarc_status status, const char *reason)
{
    run *r = u;
    require(!r->closed && reason);
    if (getenv("FUZZ_SECURE_TRACE"))
        fprintf(stderr, "closed: %s (%s)\n", reason, uarc_status_name(status));
    r->closed = 1;
}

/* ---- feeding ------------------------------------------------------------------------------ */

/* Feeds bytes in pieces of seed-chosen sizes, ticking after each. */
static void feed(run *r, const uint8_t *data, size_t size)
{
    static const size_t steps[] = {1, 5, 8, 24, 100, 1000, 70000, 70000};
    size_t pos = 0;
    while (pos < size && !r->closed) {
        size_t n = steps[next_seed(r) % (sizeof steps / sizeof steps[0])];
        if (n > size - pos)
            n = size - pos;
        uarc_status s;
        if (next_seed(r) & 1) {
            /* as the socket's read buffer: decrypted and handled in place */
            uint8_t *copy = malloc(n);
            require(copy != NULL);
            memcpy(copy, data + pos, n);
            s = uarc__channel_receive_own(r->channel, copy, n, r->now);
            free(copy);
        } else {
            s = uarc__channel_receive(r->channel, data + pos, n, r->now);
        }
        require(s == UARC_Good || r->closed);
        pos += n;
        uarc__channel_tick(r->channel, r->now);
        drain(r);
    }
}

static void feed_ack(run *r)
{
    uint8_t ack[UARC__UATCP_ACK_SIZE];
    uarc__uatcp_write_header(ack, "ACK", 'F', sizeof ack);
    uarc__st32(ack + 8, 0);
    uarc__st32(ack + 12, r->limit);
    uarc__st32(ack + 16, r->limit);
    uarc__st32(ack + 20, 1u << 20);
    uarc__st32(ack + 24, 64);
    feed(r, ack, sizeof ack);
}

/* Seals one chunk with the server's keys (asymmetric for OPN) and feeds it, perhaps altered. */
static void seal_and_feed(run *r, uarc__chunk_info *info, const server_token *t, int alter)
{
    static uint8_t chunk[1 << 17];
    uarc__chunk_security security = {r->policy, r->context, t ? t->keys : NULL};
    size_t size;
    if (uarc__chunk_encode(&security, info, chunk, sizeof chunk, &size) != UARC_Good)
        return;
    if (alter) /* one flipped bit anywhere: the checks must catch it without harm */
        chunk[next_seed(r) % size] ^= (uint8_t)(1u << (next_seed(r) & 7));
    feed(r, chunk, size);
}

/* A chunk whose padding is the fuzzer's (see seal_own_padding in secure_peer.h). */
static void feed_own_padding(run *r, uarc__chunk_info *info, const server_token *t)
{
    static uint8_t chunk[1 << 17];
    size_t size =
        seal_own_padding(r->policy, r->context, t ? t->keys : NULL, info, chunk, sizeof chunk);
    if (size)
        feed(r, chunk, size);
}

/* The request id of a sealed chunk: the oldest one the channel awaits, or (`other`) the newest
 * one, one never sent, or any. */
static uint32_t pick_request_id(run *r, int other)
{
    if (!other && r->sent_count)
        return r->sent[0];
    uint32_t choice = next_seed(r);
    if (r->sent_count && choice % 3 == 0)
        return r->sent[r->sent_count - 1];
    if (r->sent_count && choice % 3 == 1)
        return r->sent[r->sent_count - 1] + 1;
    return choice;
}

/* Sequence number for a sealed chunk: in order, or (when `odd`) replayed or skipping one. */
static uint32_t pick_sequence(run *r, int odd)
{
    if (!odd)
        return server_sequence(r);
    return next_seed(r) & 1 ? r->last_sequence : server_sequence(r) + 1;
}

/* MSG/CLO. Parameters: bits 0-1 chunk type (F C A F), bit 2 the previous token (or an unknown
 * one), bit 3 a request id not awaited, bit 4 something off (sequence, channel id or one bit). */
static void sealed_symmetric(run *r, uarc__uatcp_type type, unsigned p, const uint8_t *body,
                             size_t length)
{
    static const uint8_t chunk_types[4] = {'F', 'C', 'A', 'F'};
    const server_token *t = p & 4 ? &r->previous : &r->current;
    uarc__chunk_info info = {0};
    info.type = type;
    info.chunk_type = chunk_types[p & 3];
    info.channel_id = r->channel_id;
    info.token_id = t->valid ? t->id : r->current.id + 1;
    if (!t->valid)
        t = &r->current;
    if (!t->valid || !r->keys_known)
        return; /* nothing to seal with: raw records cover it */
    int odd = (p & 16) != 0;
    uint32_t how = odd ? next_seed(r) % 4 : 4;
    info.sequence_number = pick_sequence(r, how == 0);
    info.request_id = pick_request_id(r, (p & 8) != 0);
    if (how == 1)
        info.channel_id++;
    info.body = body;
    info.body_length = length;
    if (how == 3)
        feed_own_padding(r, &info, t);
    else
        seal_and_feed(r, &info, t, how == 2);
}

/* An OPN chunk around a body of the fuzzer's making. Parameters: bit 0 another request id,
 * bit 1 another sequence, bit 2 another policy URI, bit 3 the client's certificate as sender,
 * bit 4 one bit flipped or the padding the fuzzer's. */
static void sealed_opn(run *r, unsigned p, const uint8_t *body, size_t length)
{
    if (r->opn_pending)
        r->keys_known = false; /* the channel may derive keys from the fuzzer's server nonce */
    uarc__chunk_info info = {0};
    info.type = UARC__UATCP_OPN;
    info.chunk_type = 'F';
    info.channel_id = r->channel_id;
    const char *uri = p & 4 ? UARC__SECURITY_POLICY_NONE_URI : r->policy->uri;
    info.policy_uri = (uarc_view){(const uint8_t *)uri, strlen(uri)};
    info.sender_certificate =
        p & 8 ? r->ids->client_cert : r->policy->local_certificate(r->context);
    info.receiver_thumbprint = r->policy->remote_thumbprint(r->context);
    info.sequence_number = pick_sequence(r, (p & 2) != 0);
    info.request_id = p & 1 ? r->opn_request_id + 1 : r->opn_request_id;
    info.body = body;
    info.body_length = length;
    if (p & 16 && next_seed(r) & 1)
        feed_own_padding(r, &info, NULL);
    else
        seal_and_feed(r, &info, NULL, (p & 16) != 0);
}

/* A valid response to the OPN the channel sent last. Parameters: bit 0 a ServiceFault instead,
 * bit 1 revised lifetime 0 (the channel keeps its own), bit 2 reuse the token id. */
static void reply_opn(run *r, unsigned p)
{
    if (!r->opn_pending)
        return;
    uint8_t server_nonce[96];
    size_t nonce = r->policy->nonce_length;
    for (size_t i = 0; i < nonce; i++)
        server_nonce[i] = (uint8_t)(next_seed(r) + i);
    if (r->policy->certificate_curve && !(p & 1)) /* ECC: the server's ephemeral key */
        require(r->policy->new_nonce(r->context, server_nonce, nonce) == UARC_Good);
    uint32_t token_id = p & 4 && r->current.valid ? r->current.id : r->next_token_id++;

    const void *value;
    const uarc_type *type;
    uarc_OpenSecureChannelResponse response;
    uarc_ServiceFault fault;
    uarc_init(&response, UARC_T(OpenSecureChannelResponse));
    uarc_init(&fault, UARC_T(ServiceFault));
    if (p & 1) {
        fault.responseHeader.requestHandle = r->opn_request_id;
        fault.responseHeader.serviceResult = UARC_BadSecurityChecksFailed;
        value = &fault;
        type = UARC_T(ServiceFault);
    } else {
        response.responseHeader.requestHandle = r->opn_request_id;
        response.securityToken.channelId = r->channel_id;
        response.securityToken.tokenId = token_id;
        response.securityToken.revisedLifetime = p & 2 ? 0 : 4000;
        response.serverNonce.length = nonce;
        response.serverNonce.data = server_nonce;
        value = &response;
        type = UARC_T(OpenSecureChannelResponse);
    }
    uint8_t body[256];
    size_t length = 0;
    uarc_nodeid id = uarc_nodeid_numeric(0, type->binary_encoding_id);
    require(uarc_encode(&id, UARC_T(NodeId), body, sizeof body, &length) == UARC_Good);
    require(uarc_encode(value, type, body, sizeof body, &length) == UARC_Good);

    if (!(p & 1)) {
        /* the server's keys for the new token: its own nonce first */
        void *keys = NULL;
        require(r->policy->derive_keys(r->context, (uarc_view){server_nonce, nonce},
                                       (uarc_view){r->client_nonce, nonce}, &keys) == UARC_Good);
        forget_token(r, &r->previous);
        r->previous = r->current;
        r->current = (server_token){true, token_id, keys};
        r->keys_known = true;
    }
    r->opn_pending = false;
    uarc__chunk_info info = {0};
    info.type = UARC__UATCP_OPN;
    info.chunk_type = 'F';
    info.channel_id = r->channel_id;
    info.policy_uri = (uarc_view){(const uint8_t *)r->policy->uri, strlen(r->policy->uri)};
    info.sender_certificate = r->policy->local_certificate(r->context);
    info.receiver_thumbprint = r->policy->remote_thumbprint(r->context);
    info.sequence_number = server_sequence(r);
    info.request_id = r->opn_request_id;
    info.body = body;
    info.body_length = length;
    seal_and_feed(r, &info, NULL, 0);
}

/* ---- one input ---------------------------------------------------------------------------- */

static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Every input gives back what OpenSSL took for it. */
static void check_openssl_memory(long before)
{
    ERR_clear_error();
    if (warmed_up && openssl_live != before) {
        fprintf(stderr, "OpenSSL memory leaked: %ld blocks\n", openssl_live - before);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    ERR_clear_error();
    long openssl_before = openssl_live;
    uint8_t options = data[0];
    size_t policy_index = options & 3;
    int sign_only = (options >> 2) & 1;
    size_t keys = ld16(data + 1) >> KEY_BITS;
    run r = {0};
    pick(policy_index, keys, &r.policy, &r.ids);
    r.context = r.ids->refused ? NULL : server_context(policy_index, sign_only, keys);
    r.send_on_open = (options >> 5) & 1;
    r.seed = ld16(data + 1);
    r.limit = options & 16 ? SMALL_BUFFER : 65535;
    r.channel_id = 7 + (r.seed & 0xFF);
    r.sequence = options & 64 ? WRAP_START : 1;
    r.next_token_id = 1;
    r.keys_known = true;
    data += 3;
    size -= 3;

    uarc__channel_config config = {.endpoint_url = "opc.tcp://fuzz:4840"};
    config.security_policy_uri = r.policy->uri;
    config.security_mode =
        sign_only ? UARC_MessageSecurityMode_Sign : UARC_MessageSecurityMode_SignAndEncrypt;
    config.local_certificate = r.ids->client_cert;
    config.local_private_key = r.ids->client_key;
    config.remote_certificate = r.ids->server_cert;
    if (options & 16) {
        config.receive_buffer_size = SMALL_BUFFER;
        config.send_buffer_size = SMALL_BUFFER;
        config.max_message_size = 20000;
        config.max_chunk_count = 4;
    } else {
        config.max_message_size = 1 << 20;
    }
    config.requested_lifetime_ms = 4000;
    uarc__channel_events events = {on_opened, on_message, on_failed, on_closed, &r};
    r.channel = uarc__channel_new(&config, &events);
    if (r.ids->refused) {
        /* every RSA policy refuses a key outside 2048-4096 bits, ours or the server's, and an
         * ECC policy a key not on its curve */
        require(r.channel == NULL);
        check_openssl_memory(openssl_before);
        return 0;
    }
    require(r.channel != NULL);
    require(uarc__channel_start(r.channel, r.now) == UARC_Good);
    drain(&r);
    feed_ack(&r);
    if (!(options & 8)) {
        reply_opn(&r, 0);
        require(r.closed || uarc__channel_get_state(r.channel) == UARC__CHANNEL_OPEN);
    }

    size_t pos = 0;
    while (pos < size && !r.closed) {
        uint8_t op = data[pos++];
        unsigned kind = op & 7, p = op >> 3;
        const uint8_t *bytes = NULL;
        size_t length = 0;
        if (kind <= 3 || kind == 5) {
            if (size - pos < 2)
                break;
            length = ld16(data + pos);
            pos += 2;
            if (kind != 5) {
                if (length > size - pos)
                    length = size - pos;
                bytes = data + pos;
                pos += length;
            }
        }
        switch (kind) {
        case 0:
            feed(&r, bytes, length);
            break;
        case 1:
        case 2:
            sealed_symmetric(&r, kind == 1 ? UARC__UATCP_MSG : UARC__UATCP_CLO, p, bytes, length);
            break;
        case 3:
            sealed_opn(&r, p, bytes, length);
            break;
        case 4:
            reply_opn(&r, p);
            break;
        case 5:
            r.now += length;
            uarc__channel_tick(r.channel, r.now);
            drain(&r);
            break;
        case 6:
            send_requests(&r, (int)(p & 3) + 1);
            drain(&r);
            break;
        default:
            if (r.sent_count) {
                uarc__channel_forget_request(r.channel, r.sent[0]);
                memmove(r.sent, r.sent + 1, (r.sent_count - 1) * sizeof r.sent[0]);
                r.sent_count--;
            }
            break;
        }
    }
    if (!r.closed && !(options & 128))
        uarc__channel_close(r.channel);
    else
        uarc__channel_connection_lost(r.channel, UARC_BadConnectionClosed, "end of input");
    drain(&r);
    require(r.closed);
    uarc__channel_delete(r.channel);
    forget_token(&r, &r.current);
    forget_token(&r, &r.previous);
    check_openssl_memory(openssl_before);
    return 0;
}
