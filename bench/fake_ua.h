/*
 * A minimal OPC UA server for the subscription benchmarks (SecurityPolicy None): it takes the
 * client's messages whole, one at a time, and queues its answers in `out`. It answers HEL, OPN,
 * CreateSession, ActivateSession, CreateSubscription, CreateMonitoredItems (every item Good),
 * Read (every node BadNodeIdUnknown) and the other services with an empty Good response;
 * PublishRequests are held until the driver answers them with fake_ua_publish() (a message of
 * data changes built on the spot) or fake_ua_publish_frame() (a frame built once, of which only
 * the sequence numbers and the request id change).
 *
 * Not a parser of hostile input: the client is uarc itself, and anything unexpected aborts.
 */
#ifndef UARC_BENCH_FAKE_UA_H
#define UARC_BENCH_FAKE_UA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uarc/uarc.h"

#define FAKE_UA_CHANNEL_ID  7u
#define FAKE_UA_TOKEN_ID    1u
#define FAKE_UA_MAX_PENDING 64u
#define FAKE_UA_SENTINEL    0xA5C3E1F7u /* a notification sequence number found by search */

typedef struct fake_ua {
    uint8_t *out; /* answers not yet taken by the driver */
    size_t out_length, out_capacity;
    uint32_t sequence; /* the server's SequenceNumber of the next chunk */
    uint32_t subscription_id, next_monitored_id;
    uint32_t items;                                       /* monitored items created so far */
    uint32_t notification_sequence;                       /* of the next NotificationMessage */
    uint32_t pending[FAKE_UA_MAX_PENDING], pending_count; /* PublishRequest ids, oldest first */
    bool closed;                                          /* CLO received */
} fake_ua;

/* A Publish answer built once: fake_ua_publish_frame() patches and hands it out again. */
typedef struct fake_ua_frame {
    uint8_t *bytes;
    size_t length;
    size_t sequence_at; /* offset of the NotificationMessage's sequence number */
} fake_ua_frame;

static inline void fake_ua_die(const char *what)
{
    fprintf(stderr, "fake_ua: %s\n", what);
    abort();
}

static inline uint32_t fake_ua_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fake_ua_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static inline uint8_t *fake_ua_reserve(fake_ua *s, size_t n)
{
    if (s->out_length + n > s->out_capacity) {
        size_t cap = s->out_capacity ? s->out_capacity : 65536;
        while (cap < s->out_length + n)
            cap *= 2;
        s->out = realloc(s->out, cap);
        if (!s->out)
            fake_ua_die("out of memory");
        s->out_capacity = cap;
    }
    return s->out + s->out_length;
}

static inline void fake_ua_append(fake_ua *s, const void *data, size_t n)
{
    memcpy(fake_ua_reserve(s, n), data, n);
    s->out_length += n;
}

/* Removes the first n bytes of `out` (the driver sent or fed them). */
static inline void fake_ua_consumed(fake_ua *s, size_t n)
{
    memmove(s->out, s->out + n, s->out_length - n);
    s->out_length -= n;
}

/* Appends one final MSG chunk answering `request_id` with `response` (its type's struct). */
static inline void fake_ua_respond(fake_ua *s, uint32_t request_id, const void *response,
                                   const uarc_type *type)
{
    size_t start = s->out_length;
    size_t need = 65536;
    for (;;) {
        uint8_t *p = fake_ua_reserve(s, need);
        size_t offset = 28;
        memcpy(p, "MSGF", 4);
        fake_ua_put_u32(p + 8, FAKE_UA_CHANNEL_ID);
        fake_ua_put_u32(p + 12, FAKE_UA_TOKEN_ID);
        fake_ua_put_u32(p + 16, s->sequence);
        fake_ua_put_u32(p + 20, request_id);
        uint32_t id = type->binary_encoding_id;
        p[24] = 1, p[25] = 0, p[26] = (uint8_t)id, p[27] = (uint8_t)(id >> 8);
        uarc_status status = uarc_encode(response, type, p, need, &offset);
        if (status == UARC_Good) {
            fake_ua_put_u32(p + 4, (uint32_t)offset);
            s->out_length = start + offset;
            s->sequence++;
            return;
        }
        if (status != UARC_BadEncodingLimitsExceeded || need > (1u << 24))
            fake_ua_die("cannot encode a response");
        need *= 2;
    }
}

/* A DataValue of an Int32 with both timestamps, as servers send a sampled value. */
static inline uarc_data_value fake_ua_value(int32_t *boxed, uarc_datetime source)
{
    uarc_data_value v = {.has_value = true,
                         .has_source_timestamp = true,
                         .has_server_timestamp = true,
                         .source_timestamp = source,
                         .server_timestamp = source};
    v.value.type = UARC_T(Int32);
    v.value.data = boxed;
    return v;
}

/*
 * Answers the oldest held PublishRequest with a message of `count` data changes, of the client
 * handles first_handle, first_handle + 1, ..., each an Int32 `value` stamped `source`. Returns
 * false when no PublishRequest is held.
 */
static inline bool fake_ua_publish(fake_ua *s, uint32_t first_handle, uint32_t count, int32_t value,
                                   uarc_datetime source)
{
    if (!s->pending_count)
        return false;
    uint32_t request_id = s->pending[0];
    memmove(s->pending, s->pending + 1, --s->pending_count * sizeof *s->pending);
    uarc_MonitoredItemNotification *n = calloc(count ? count : 1, sizeof *n);
    int32_t *boxed = malloc(sizeof *boxed);
    if (!n || !boxed)
        fake_ua_die("out of memory");
    *boxed = value;
    for (uint32_t i = 0; i < count; i++)
        n[i] = (uarc_MonitoredItemNotification){.clientHandle = first_handle + i,
                                                .value = fake_ua_value(boxed, source)};
    uarc_DataChangeNotification dcn = {.monitoredItemsSize = count, .monitoredItems = n};
    uarc_extension_object e = {.encoding = UARC_EXTENSION_OBJECT_DECODED};
    e.content.decoded.type = UARC_T(DataChangeNotification);
    e.content.decoded.data = &dcn;
    uarc_PublishResponse r;
    uarc_init(&r, UARC_T(PublishResponse));
    r.subscriptionId = s->subscription_id;
    r.notificationMessage.sequenceNumber = s->notification_sequence++;
    r.notificationMessage.publishTime = source;
    r.notificationMessage.notificationDataSize = count ? 1 : 0;
    r.notificationMessage.notificationData = count ? &e : NULL;
    fake_ua_respond(s, request_id, &r, UARC_T(PublishResponse));
    free(n);
    free(boxed);
    return true;
}

/* Builds a frame as fake_ua_publish() would, to be handed out by fake_ua_publish_frame(). */
static inline fake_ua_frame fake_ua_frame_build(fake_ua *s, uint32_t first_handle, uint32_t count,
                                                int32_t value, uarc_datetime source)
{
    fake_ua scratch = {.subscription_id = s->subscription_id,
                       .notification_sequence = FAKE_UA_SENTINEL,
                       .pending = {0},
                       .pending_count = 1};
    fake_ua_publish(&scratch, first_handle, count, value, source);
    fake_ua_frame f = {.bytes = scratch.out, .length = scratch.out_length};
    uint8_t sentinel[4];
    fake_ua_put_u32(sentinel, FAKE_UA_SENTINEL);
    for (f.sequence_at = 28; f.sequence_at + 4 <= f.length; f.sequence_at++)
        if (memcmp(f.bytes + f.sequence_at, sentinel, 4) == 0)
            return f;
    fake_ua_die("no sequence number in the frame");
    return f;
}

/* Patches `f` to answer the oldest held PublishRequest with the next message; returns its bytes
 * (valid until the next call with `f`), NULL when no PublishRequest is held. */
static inline const uint8_t *fake_ua_publish_frame(fake_ua *s, fake_ua_frame *f)
{
    if (!s->pending_count)
        return NULL;
    uint32_t request_id = s->pending[0];
    memmove(s->pending, s->pending + 1, --s->pending_count * sizeof *s->pending);
    fake_ua_put_u32(f->bytes + 16, s->sequence++);
    fake_ua_put_u32(f->bytes + 20, request_id);
    fake_ua_put_u32(f->bytes + f->sequence_at, s->notification_sequence++);
    return f->bytes;
}

static inline void fake_ua_open(fake_ua *s, const uint8_t *msg, size_t length)
{
    /* after the header and channel id: policy URI, certificate, thumbprint, then sequence and
     * request id */
    size_t pos = 12;
    for (int i = 0; i < 3; i++) {
        if (pos + 4 > length)
            fake_ua_die("short OPN");
        int32_t n = (int32_t)fake_ua_u32(msg + pos);
        pos += 4 + (n > 0 ? (size_t)n : 0);
    }
    if (pos + 8 > length)
        fake_ua_die("short OPN");
    uint32_t request_id = fake_ua_u32(msg + pos + 4);
    uarc_OpenSecureChannelResponse r;
    uarc_init(&r, UARC_T(OpenSecureChannelResponse));
    r.securityToken.channelId = FAKE_UA_CHANNEL_ID;
    r.securityToken.tokenId = FAKE_UA_TOKEN_ID;
    r.securityToken.revisedLifetime = 3600000;
    uint8_t body[256];
    size_t body_length = 0;
    if (uarc_encode(&r, UARC_T(OpenSecureChannelResponse), body, sizeof body, &body_length) !=
        UARC_Good)
        fake_ua_die("cannot encode the OPN response");
    static const char policy[] = "http://opcfoundation.org/UA/SecurityPolicy#None";
    uint8_t head[12 + 4 + sizeof policy - 1 + 8 + 8 + 4];
    size_t n = 0;
    memcpy(head, "OPNF", 4);
    fake_ua_put_u32(head + 8, FAKE_UA_CHANNEL_ID);
    fake_ua_put_u32(head + 12, (uint32_t)(sizeof policy - 1));
    memcpy(head + 16, policy, sizeof policy - 1);
    n = 16 + sizeof policy - 1;
    fake_ua_put_u32(head + n, 0xFFFFFFFFu);
    fake_ua_put_u32(head + n + 4, 0xFFFFFFFFu);
    fake_ua_put_u32(head + n + 8, s->sequence++);
    fake_ua_put_u32(head + n + 12, request_id);
    uint32_t id = UARC_T(OpenSecureChannelResponse)->binary_encoding_id;
    head[n + 16] = 1, head[n + 17] = 0, head[n + 18] = (uint8_t)id,
             head[n + 19] = (uint8_t)(id >> 8);
    n += 20;
    fake_ua_put_u32(head + 4, (uint32_t)(n + body_length));
    fake_ua_append(s, head, n);
    fake_ua_append(s, body, body_length);
}

static inline void fake_ua_items(fake_ua *s, uint32_t request_id,
                                 const uarc_CreateMonitoredItemsRequest *q)
{
    uarc_MonitoredItemCreateResult *results = calloc(q->itemsToCreateSize + 1, sizeof *results);
    if (!results)
        fake_ua_die("out of memory");
    for (size_t i = 0; i < q->itemsToCreateSize; i++) {
        const uarc_MonitoringParameters *p = &q->itemsToCreate[i].requestedParameters;
        results[i] =
            (uarc_MonitoredItemCreateResult){.statusCode = UARC_Good,
                                             .monitoredItemId = s->next_monitored_id++,
                                             .revisedSamplingInterval = p->samplingInterval,
                                             .revisedQueueSize = p->queueSize};
    }
    s->items += (uint32_t)q->itemsToCreateSize;
    uarc_CreateMonitoredItemsResponse r;
    uarc_init(&r, UARC_T(CreateMonitoredItemsResponse));
    r.resultsSize = q->itemsToCreateSize;
    r.results = results;
    fake_ua_respond(s, request_id, &r, UARC_T(CreateMonitoredItemsResponse));
    free(results);
}

/* The response type of each other request: answered zero-filled (Good). */
static inline const uarc_type *fake_ua_plain_response(uint32_t request_encoding)
{
    static const struct {
        const uarc_type *request, *response;
    } pairs[] = {
        {UARC_T(ActivateSessionRequest), UARC_T(ActivateSessionResponse)},
        {UARC_T(CloseSessionRequest), UARC_T(CloseSessionResponse)},
        {UARC_T(DeleteSubscriptionsRequest), UARC_T(DeleteSubscriptionsResponse)},
        {UARC_T(DeleteMonitoredItemsRequest), UARC_T(DeleteMonitoredItemsResponse)},
        {UARC_T(SetPublishingModeRequest), UARC_T(SetPublishingModeResponse)},
        {UARC_T(ModifySubscriptionRequest), UARC_T(ModifySubscriptionResponse)},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (pairs[i].request->binary_encoding_id == request_encoding)
            return pairs[i].response;
    return NULL;
}

static inline void fake_ua_service(fake_ua *s, const uint8_t *msg, size_t length)
{
    uint32_t request_id = fake_ua_u32(msg + 20);
    size_t offset = 24;
    uarc_nodeid type_id;
    if (uarc_decode(msg, length, &offset, &type_id, UARC_T(NodeId), NULL) != UARC_Good)
        fake_ua_die("no request type");
    uint32_t id = type_id.identifier.numeric;
    if (id == UARC_T(PublishRequest)->binary_encoding_id) {
        if (s->pending_count == FAKE_UA_MAX_PENDING)
            fake_ua_die("too many PublishRequests held");
        s->pending[s->pending_count++] = request_id;
    } else if (id == UARC_T(CreateSessionRequest)->binary_encoding_id) {
        uarc_CreateSessionResponse r;
        uarc_init(&r, UARC_T(CreateSessionResponse));
        r.sessionId = uarc_nodeid_numeric(1, 77);
        r.authenticationToken = uarc_nodeid_numeric(1, 78);
        r.revisedSessionTimeout = 60000;
        fake_ua_respond(s, request_id, &r, UARC_T(CreateSessionResponse));
    } else if (id == UARC_T(CreateSubscriptionRequest)->binary_encoding_id) {
        uarc_CreateSubscriptionRequest q;
        if (uarc_decode(msg, length, &offset, &q, UARC_T(CreateSubscriptionRequest), NULL) !=
            UARC_Good)
            fake_ua_die("bad CreateSubscriptionRequest");
        uarc_CreateSubscriptionResponse r;
        uarc_init(&r, UARC_T(CreateSubscriptionResponse));
        r.subscriptionId = s->subscription_id = s->subscription_id + 1;
        r.revisedPublishingInterval = q.requestedPublishingInterval;
        r.revisedMaxKeepAliveCount = q.requestedMaxKeepAliveCount;
        r.revisedLifetimeCount = q.requestedLifetimeCount;
        s->notification_sequence = 1;
        fake_ua_respond(s, request_id, &r, UARC_T(CreateSubscriptionResponse));
        uarc_clear(&q, UARC_T(CreateSubscriptionRequest));
    } else if (id == UARC_T(CreateMonitoredItemsRequest)->binary_encoding_id) {
        uarc_CreateMonitoredItemsRequest q;
        if (uarc_decode(msg, length, &offset, &q, UARC_T(CreateMonitoredItemsRequest), NULL) !=
            UARC_Good)
            fake_ua_die("bad CreateMonitoredItemsRequest");
        fake_ua_items(s, request_id, &q);
        uarc_clear(&q, UARC_T(CreateMonitoredItemsRequest));
    } else if (id == UARC_T(ReadRequest)->binary_encoding_id) {
        uarc_ReadRequest q;
        if (uarc_decode(msg, length, &offset, &q, UARC_T(ReadRequest), NULL) != UARC_Good)
            fake_ua_die("bad ReadRequest");
        uarc_data_value *values = calloc(q.nodesToReadSize + 1, sizeof *values);
        if (!values)
            fake_ua_die("out of memory");
        for (size_t i = 0; i < q.nodesToReadSize; i++)
            values[i] = (uarc_data_value){.has_status = true, .status = UARC_BadNodeIdUnknown};
        uarc_ReadResponse r;
        uarc_init(&r, UARC_T(ReadResponse));
        r.resultsSize = q.nodesToReadSize;
        r.results = values;
        fake_ua_respond(s, request_id, &r, UARC_T(ReadResponse));
        free(values);
        uarc_clear(&q, UARC_T(ReadRequest));
    } else {
        const uarc_type *type = fake_ua_plain_response(id);
        uarc_ServiceFault fault;
        uarc_init(&fault, UARC_T(ServiceFault));
        if (!type) {
            fault.responseHeader.serviceResult = UARC_BadServiceUnsupported;
            fake_ua_respond(s, request_id, &fault, UARC_T(ServiceFault));
        } else {
            void *r = uarc_new(type);
            if (!r)
                fake_ua_die("out of memory");
            fake_ua_respond(s, request_id, r, type);
            uarc_delete(r, type);
        }
    }
    uarc_clear(&type_id, UARC_T(NodeId));
}

/* Takes one whole message of the client (HEL, OPN, MSG or CLO). */
static inline void fake_ua_take(fake_ua *s, const uint8_t *msg, size_t length)
{
    if (length < 8 || fake_ua_u32(msg + 4) != length)
        fake_ua_die("not one whole message");
    if (memcmp(msg, "HELF", 4) == 0) {
        uint8_t ack[28] = "ACKF";
        fake_ua_put_u32(ack + 4, sizeof ack);
        fake_ua_put_u32(ack + 8, 0);
        fake_ua_put_u32(ack + 12, 65535);
        fake_ua_put_u32(ack + 16, 65535);
        fake_ua_put_u32(ack + 20, 0);
        fake_ua_put_u32(ack + 24, 0);
        fake_ua_append(s, ack, sizeof ack);
    } else if (memcmp(msg, "OPNF", 4) == 0) {
        fake_ua_open(s, msg, length);
    } else if (memcmp(msg, "MSGF", 4) == 0 && length >= 28) {
        fake_ua_service(s, msg, length);
    } else if (memcmp(msg, "CLOF", 4) == 0) {
        s->closed = true;
    } else {
        fake_ua_die("unexpected message (an intermediate chunk?)");
    }
}

/* Takes every whole message in data[0..length); returns how many bytes it took. */
static inline size_t fake_ua_take_all(fake_ua *s, const uint8_t *data, size_t length)
{
    size_t used = 0;
    while (length - used >= 8) {
        uint32_t size = fake_ua_u32(data + used + 4);
        if (size < 8 || size > length - used)
            break;
        fake_ua_take(s, data + used, size);
        used += size;
    }
    return used;
}

static inline void fake_ua_free(fake_ua *s)
{
    free(s->out);
    memset(s, 0, sizeof *s);
}

#endif
