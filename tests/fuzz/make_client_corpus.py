#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_client (its input format is described at the top of
tests/fuzz/fuzz_client.c) into tests/fuzz/corpus/fuzz_client/: valid exchanges for each service
the client offers, and the usual ways they go wrong."""
import os
import struct

REPLY, RAW, TICK, SEND, BROWSE, BLOCK, CLOSE, RECONNECT, SUBSCRIBE, SECURE = range(10)
(NO_ACK, NO_RENEW, FUZZ_CREATE, FUZZ_ACT, NO_SESSION, USER, SMALL,
 KEEPALIVE) = (1 << i for i in range(8))
FUZZ_REACTIVATE = 0x80  # in the second byte
BYTES = 0x40  # in the second byte: byte mode
WHOLE, TYPED, HEADED, OWN_ID = range(4)  # reply modes
FINAL, PART, ABORT, OWN_PADDING = 0, 4, 8, 12  # chunk types, in the reply parameter
SIGN_ONLY = 1  # SECURE's parameter


def op(kind, p=0):
    return bytes([kind | p << 4])


def data(b):
    return struct.pack("<H", len(b)) + b


def reply(body, mode=HEADED, chunk=FINAL, selector=0):
    return op(REPLY, mode | chunk) + bytes([selector]) + data(body)


def tick(ms=0, seconds=0):
    return op(TICK, 1 if seconds else 0) + struct.pack("<H", seconds or ms)


def seed(options, session_seconds, *records):
    return bytes([options, session_seconds]) + b"".join(records)


# ---- OPC UA binary, just what the seeds need ----

def i32(v):
    return struct.pack("<i", v)


def u32(v):
    return struct.pack("<I", v)


def string(s):
    if s is None:
        return i32(-1)
    b = s.encode() if isinstance(s, str) else s
    return i32(len(b)) + b


def nodeid(n, ns=0):
    if ns == 0 and n < 256:
        return bytes([0, n])
    return bytes([1, ns]) + struct.pack("<H", n)


def array(items):
    return i32(len(items)) + b"".join(items)


NO_DIAGNOSTICS = i32(-1)


def response_header(status=0, handle=1):
    return (struct.pack("<qII", 0, handle, status) + b"\x00" + i32(-1) + nodeid(0) + b"\x00")


def service_fault(status):
    return nodeid(397) + response_header(status)


def int32_value(v):
    return b"\x01" + b"\x06" + i32(v)  # DataValue with a Variant Int32


def reference(name, n):
    return (nodeid(35) + b"\x01" + nodeid(n, 1) + struct.pack("<H", 1) + string(name) + b"\x02"
            + string(name) + i32(1) + nodeid(61))


def browse_result(point=None, refs=(), status=0):
    return u32(status) + string(point) + array([reference(name, n) for name, n in refs])


def browse_rest(point=None, refs=(), status=0):
    return array([browse_result(point, refs, status)]) + NO_DIAGNOSTICS


def read_rest(*values):
    return array([int32_value(v) for v in values]) + NO_DIAGNOSTICS


def call_rest(status=0):
    result = u32(status) + array([]) + NO_DIAGNOSTICS + array([b"\x0b" + struct.pack("<d", 3.0)])
    return array([result]) + NO_DIAGNOSTICS


def monitored_items_rest(server=(), client=()):
    """A CallResponse of Server.GetMonitoredItems: serverHandles and clientHandles (UInt32[])."""
    def u32_array(values):
        return b"\x87" + array([u32(v) for v in values])  # Variant: UInt32 (7), array bit
    result = u32(0) + array([]) + NO_DIAGNOSTICS + array([u32_array(server), u32_array(client)])
    return array([result]) + NO_DIAGNOSTICS


def translate_rest(targets=1):
    target = b"\x01\x00" + struct.pack("<H", 2253) + u32(0xFFFFFFFF)
    return array([u32(0) + array([target] * targets)]) + NO_DIAGNOSTICS


def write_rest(status=0):
    return array([u32(status)]) + NO_DIAGNOSTICS


POLICY = "http://opcfoundation.org/UA/SecurityPolicy#"


def endpoint(token_policy_uri, token_type=1, certificate=None, policy="None", mode=1):
    """An EndpointDescription (SecurityPolicy None by default) with one user token policy."""
    application = (string("urn:fuzz:server") + string(None) + b"\x02" + string("fuzz") + i32(0)
                   + string(None) + string(None) + array([]))
    token = (string("user") + i32(token_type) + string(None) + string(None)
             + string(token_policy_uri))
    return (string("opc.tcp://fuzz:4840") + application + string(certificate) + i32(mode)
            + string(POLICY + policy) + array([token]) + string(None) + b"\x00")


def create_session_rest(token=78, timeout_ms=60000.0, endpoints=(), certificate=None,
                        nonce=b"\x00" * 32):
    return (nodeid(77, 1) + nodeid(token, 1) + struct.pack("<d", timeout_ms)
            + string(nonce) + string(certificate) + array(list(endpoints)) + array([])
            + string(None) + string(None) + u32(0))


# ---- DER, just enough for an X.509 certificate with an RSA key of any size ----

def der(tag, content):
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_int(v):
    return der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.append(0x80 | (p & 0x7F))
        body += bytes(reversed(chunk))
    return der(0x06, body)


def der_seq(*items):
    return der(0x30, b"".join(items))


def rsa_certificate(bits):
    """A certificate for an RSA public key of exactly `bits` bits: modulus 2^(bits-1) + 1 (only
    its size matters) and a signature nobody checks. Deterministic, so the corpus is too."""
    rsa = der_seq(der_oid("1.2.840.113549.1.1.1"), der(0x05, b""))
    sha256_rsa = der_seq(der_oid("1.2.840.113549.1.1.11"), der(0x05, b""))
    key = der_seq(der_int((1 << (bits - 1)) | 1), der_int(65537))
    name = der_seq(der(0x31, der_seq(der_oid("2.5.4.3"), der(0x0C, b"uarc fuzz %d" % bits))))
    validity = der_seq(der(0x17, b"260101000000Z"), der(0x18, b"21260101000000Z"))
    tbs = der_seq(der(0xA0, der_int(2)), der_int(bits), sha256_rsa, name, validity, name,
                  der_seq(rsa, der(0x03, b"\x00" + key)))
    return der_seq(tbs, sha256_rsa, der(0x03, b"\x00" + bytes(bits // 8)))


def user_token_with_key(policy, bits, *records):
    """CreateSession answered with a server certificate of `bits` bits and a user token policy
    asking for the password to be encrypted with `policy`. Odd session seconds: any certificate is
    accepted, so the key itself is what decides."""
    rest = create_session_rest(endpoints=[endpoint(POLICY + policy)],
                               certificate=rsa_certificate(bits))
    return seed(USER | FUZZ_CREATE, 61, reply(rest), *records)


CERT = rsa_certificate(2048)
OTHER_CERT = rsa_certificate(3072)
B256_TOKEN = POLICY + "Basic256Sha256"


def activate_session_rest():
    return string(None) + array([]) + NO_DIAGNOSTICS


def create_subscription_rest(sub_id=5, interval=100.0, keepalive=10):
    return u32(sub_id) + struct.pack("<d", interval) + u32(1200) + u32(keepalive)


def create_items_rest(count=1, status=0):
    result = u32(status) + u32(100) + struct.pack("<d", 100.0) + u32(10) + nodeid(0) + b"\x00"
    return array([result] * count) + NO_DIAGNOSTICS


def data_change(*values):
    """An ExtensionObject holding a DataChangeNotification of item 1 (i=811)."""
    items = [u32(1) + int32_value(v) for v in values]
    body = array(items) + NO_DIAGNOSTICS
    return nodeid(811) + b"\x01" + i32(len(body)) + body


def status_change(status):
    """An ExtensionObject holding a StatusChangeNotification (i=820)."""
    body = u32(status) + b"\x00"
    return nodeid(820) + b"\x01" + i32(len(body)) + body


def event_list(*messages):
    """An ExtensionObject holding an EventNotificationList (i=916) of item 1, two fields each."""
    events = [u32(1) + array([b"\x15" + b"\x02" + string(m), b"\x01\x01"])
              for m in messages]
    body = array(events)
    return nodeid(916) + b"\x01" + i32(len(body)) + body


def message(seq, notifications=()):
    return u32(seq) + struct.pack("<q", 0) + array(list(notifications))


def publish_rest(seq, values=(1,), sub_id=5, available=(), more=False, results=(),
                 notifications=None):
    if notifications is None:
        notifications = [data_change(*values)] if values else []
    return (u32(sub_id) + array([u32(n) for n in available]) + (b"\x01" if more else b"\x00")
            + message(seq, notifications) + array([u32(r) for r in results]) + NO_DIAGNOSTICS)


def republish_rest(seq, values=(1,)):
    return message(seq, [data_change(*values)] if values else [])


def transfer_rest(status=0, available=()):
    return array([u32(status) + array([u32(n) for n in available])]) + NO_DIAGNOSTICS


def nested_variant(depth):
    """A Variant holding an array of one Variant, `depth` times over, around an Int32."""
    v = b"\x06" + i32(7)
    for _ in range(depth):
        v = bytes([24 | 0x80]) + i32(1) + v
    return v


def event_fields(*fields):
    """An ExtensionObject holding an EventNotificationList of item 1 with these field Variants."""
    body = array([u32(1) + array(list(fields))])
    return nodeid(916) + b"\x01" + i32(len(body)) + body


def items_then_publish(*publishes, sub_id=5):
    """After CreateSubscription: the Read of the server's limits (not a UInt32: no limit), the
    CreateMonitoredItems it lets out (third of the requests then open), then the Publish replies,
    each to the oldest Publish open."""
    return (reply(read_rest(0)), reply(create_items_rest(), selector=2)
            + b"".join(reply(p) for p in publishes))


BAD_TOO_MANY_OPERATIONS = 0x80100000
BAD_MESSAGE_NOT_AVAILABLE = 0x807B0000
BAD_TOO_MANY_PUBLISH_REQUESTS = 0x80780000
BAD_NO_SUBSCRIPTION = 0x80790000
BAD_SUBSCRIPTION_ID_INVALID = 0x80280000
BAD_TIMEOUT = 0x800A0000
GOOD_SUBSCRIPTION_TRANSFERRED = 0x002D0000
BAD_SESSION_ID_INVALID = 0x80250000
BAD_CONTINUATION_POINT_INVALID = 0x804A0000
BAD_NODE_ID_UNKNOWN = 0x80340000

seeds = {
    "read": seed(0, 60, op(SEND), reply(read_rest(42))),
    "read_three": seed(0, 60, op(SEND, 1), reply(read_rest(1, 2, 3))),
    "read_fault": seed(0, 60, op(SEND), reply(service_fault(BAD_TOO_MANY_OPERATIONS), WHOLE)),
    "read_fault_uncertain": seed(0, 60, op(SEND), reply(service_fault(0x40000000), WHOLE)),
    "read_empty_body": seed(0, 60, op(SEND), reply(b"", WHOLE, PART), reply(b"", WHOLE)),
    "read_unknown_type": seed(0, 60, op(SEND), reply(nodeid(530) + response_header(), WHOLE)),
    "browse_next": seed(0, 60, op(BROWSE), reply(browse_rest(b"cp-1", [("Server", 2253)])),
                        reply(browse_rest(None, [("Aliases", 23470)]))),
    "browse_next_fault": seed(0, 60, op(BROWSE), reply(browse_rest(b"cp-1", [("Server", 2253)])),
                              reply(service_fault(BAD_CONTINUATION_POINT_INVALID), WHOLE)),
    "browse_bad_node": seed(0, 60, op(BROWSE), reply(browse_rest(status=BAD_NODE_ID_UNKNOWN))),
    "write": seed(0, 60, op(SEND, 2), reply(write_rest())),
    "call": seed(0, 60, op(SEND, 3), reply(call_rest())),
    "translate": seed(0, 60, op(SEND, 4), reply(translate_rest())),
    "endpoints": seed(0, 60, op(SEND, 5), reply(array([]))),
    "blocking_read": seed(0, 60, op(BLOCK, 0), reply(read_rest(7, 8))),
    "blocking_read_short": seed(0, 60, op(BLOCK, 0), reply(read_rest(7))),
    "blocking_browse": seed(0, 60, op(BLOCK, 3), reply(browse_rest(b"cp-2", [("Server", 2253)])),
                            reply(browse_rest(None, [("Aliases", 23470)]))),
    "blocking_write": seed(0, 60, op(BLOCK, 2), reply(write_rest(BAD_NODE_ID_UNKNOWN))),
    "blocking_call": seed(0, 60, op(BLOCK, 4), reply(call_rest())),
    "blocking_translate": seed(0, 60, op(BLOCK, 5), reply(translate_rest(0))),
    "blocking_endpoints": seed(0, 60, op(BLOCK, 6), reply(array([]))),
    "blocking_timeout": seed(0, 60, op(BLOCK, 8)),
    "create_session": seed(FUZZ_CREATE, 60, reply(create_session_rest()), op(SEND),
                           reply(read_rest(1))),
    "create_session_huge_timeout": seed(FUZZ_CREATE, 60,
                                        reply(create_session_rest(timeout_ms=1e300)),
                                        tick(seconds=30)),
    "create_session_fault": seed(FUZZ_CREATE, 60, reply(service_fault(BAD_TOO_MANY_OPERATIONS),
                                                        WHOLE)),
    "activate_session": seed(FUZZ_ACT, 60, reply(activate_session_rest()), op(SEND),
                             reply(read_rest(1))),
    "no_session": seed(NO_SESSION, 60, op(BLOCK, 6), reply(array([])), op(BLOCK, 7), op(SEND),
                       reply(read_rest(5))),
    "user": seed(USER, 60, op(SEND), reply(read_rest(1))),
    "user_token_none": seed(USER | FUZZ_CREATE, 60,
                            reply(create_session_rest(endpoints=[endpoint(POLICY + "None")])),
                            op(SEND), reply(read_rest(1))),
    "user_token_encrypted": seed(
        USER | FUZZ_CREATE, 60,
        reply(create_session_rest(endpoints=[endpoint(POLICY + "Basic256Sha256")]))),
    # password encryption for keys outside 2048-4096 bits (refused) and of odd sizes within
    "user_token_key_512": user_token_with_key("Aes256_Sha256_RsaPss", 512),
    "user_token_key_1024": user_token_with_key("Basic256Sha256", 1024),
    "user_token_key_8192": user_token_with_key("Aes128_Sha256_RsaOaep", 8192),
    "user_token_key_2056": user_token_with_key("Basic256Sha256", 2056, op(SEND),
                                               reply(read_rest(1))),
    "user_token_key_3000": user_token_with_key("Aes256_Sha256_RsaPss", 3000, op(SEND),
                                               reply(read_rest(1))),
    # The password-encryption decision (issue 14): a key nobody vouched for, then (accept-any, odd
    # session seconds) a short nonce, a good one, and a re-activation after a nonce-less answer.
    "user_token_untrusted_key": seed(
        USER | FUZZ_CREATE, 60,
        reply(create_session_rest(certificate=CERT,
                                  endpoints=[endpoint(B256_TOKEN, certificate=CERT)]))),
    "user_token_short_nonce": seed(
        USER | FUZZ_CREATE, 61,
        reply(create_session_rest(certificate=CERT, nonce=b"\x01" * 8,
                                  endpoints=[endpoint(B256_TOKEN, certificate=CERT)]))),
    "user_token_encrypted_for_key": seed(
        USER | FUZZ_CREATE | FUZZ_ACT, 61,
        reply(create_session_rest(certificate=CERT,
                                  endpoints=[endpoint(B256_TOKEN, certificate=CERT)])),
        reply(activate_session_rest()), op(SEND), reply(read_rest(1)), op(CLOSE, 1),
        op(RECONNECT)),
    # serverEndpoints against a kept GetEndpoints result: another certificate, then the same.
    "endpoints_differ": seed(
        FUZZ_CREATE, 60, reply(create_session_rest()), op(BLOCK, 6),
        reply(array([endpoint(POLICY + "None", certificate=CERT),
                     endpoint(B256_TOKEN, certificate=CERT, policy="Basic256Sha256", mode=3)])),
        op(CLOSE, 0), op(RECONNECT),
        reply(create_session_rest(endpoints=[
            endpoint(POLICY + "None", certificate=CERT),
            endpoint(B256_TOKEN, certificate=OTHER_CERT, policy="Basic256Sha256", mode=3)]))),
    "endpoints_match": seed(
        FUZZ_CREATE, 60, reply(create_session_rest()), op(BLOCK, 6),
        reply(array([endpoint(POLICY + "None", certificate=CERT)])), op(CLOSE, 0),
        op(RECONNECT), reply(create_session_rest(endpoints=[endpoint(POLICY + "None")])),
        op(SEND), reply(read_rest(1))),
    "reactivate": seed(0, FUZZ_REACTIVATE | 60, op(CLOSE, 1), op(RECONNECT),
                       reply(service_fault(BAD_SESSION_ID_INVALID), WHOLE),
                       reply(activate_session_rest()), op(SEND), reply(read_rest(2))),
    "resume": seed(0, 60, op(CLOSE, 1), op(RECONNECT), op(SEND), reply(read_rest(3))),
    "disconnect": seed(0, 60, op(SEND), op(CLOSE, 0), op(RECONNECT), op(SEND), reply(read_rest(4))),
    "keepalive": seed(KEEPALIVE, 1, tick(150), reply(read_rest(0)), tick(150)),
    "request_timeout": seed(0, 60, op(SEND, 8), tick(200), reply(read_rest(1), selector=0x80)),
    "renew": seed(0, 60, tick(seconds=500), op(SEND), reply(read_rest(6))),
    "renew_unanswered": seed(NO_RENEW, 60, tick(seconds=500), op(SEND), tick(seconds=20)),
    "chunks": seed(0, 60, op(SEND, 1), reply(read_rest(1, 2, 3)[:6], HEADED, PART),
                   reply(read_rest(1, 2, 3)[6:], WHOLE)),
    "abort": seed(0, 60, op(SEND), reply(u32(BAD_TOO_MANY_OPERATIONS) + string("busy"),
                                         chunk=ABORT)),
    "unknown_request_id": seed(0, 60, op(SEND), reply(u32(999) + nodeid(634) + response_header(),
                                                      OWN_ID), reply(read_rest(1))),
    "small": seed(SMALL, 60, op(SEND, 1), reply(read_rest(*range(100)))),
    "err": seed(NO_ACK, 60, op(RAW) + data(b"ERRF" + u32(18) + u32(0x80820000) + string("no"))),
    # Subscriptions: requests go out as CreateSubscription, CreateMonitoredItems, then two Publish;
    # a reply picks among those not yet answered, the oldest first.
    "subscribe_in_order": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                               reply(create_items_rest()), reply(publish_rest(1, (10,))),
                               reply(publish_rest(2, (11, 12))), reply(publish_rest(3, ()))),
    "subscribe_wrap_duplicate": seed(0, 60, op(SUBSCRIBE, 1), reply(create_subscription_rest()),
                                     reply(create_items_rest()),
                                     reply(publish_rest(0xFFFFFFFF, (1,))),
                                     reply(publish_rest(1, (2,))),
                                     reply(publish_rest(0xFFFFFFFF, (1,)))),
    "subscribe_hole_republish": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                     reply(create_items_rest()), reply(publish_rest(1, (1,))),
                                     reply(publish_rest(3, (3,), available=(2, 3))),
                                     reply(republish_rest(2, (2,)), selector=1)),
    "subscribe_hole_gone": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                reply(create_items_rest()), reply(publish_rest(1, (1,))),
                                reply(publish_rest(4, (4,), available=(2, 4))),
                                reply(service_fault(BAD_MESSAGE_NOT_AVAILABLE), WHOLE,
                                      selector=1)),
    "subscribe_faults": seed(0, 60, op(SUBSCRIBE, 2), reply(create_subscription_rest()),
                             reply(service_fault(BAD_TOO_MANY_PUBLISH_REQUESTS), WHOLE),
                             reply(service_fault(BAD_NO_SUBSCRIPTION), WHOLE),
                             reply(service_fault(BAD_TIMEOUT), WHOLE), tick(seconds=3)),
    "subscribe_status_change": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                    reply(create_items_rest()),
                                    reply(publish_rest(1, notifications=[
                                        status_change(GOOD_SUBSCRIPTION_TRANSFERRED)])),
                                    reply(publish_rest(2, notifications=[
                                        status_change(BAD_TIMEOUT)]))),
    "subscribe_resume": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                             reply(create_items_rest()), reply(publish_rest(1, (1,))),
                             op(CLOSE, 1), op(RECONNECT), reply(republish_rest(2, (2,))),
                             reply(service_fault(BAD_MESSAGE_NOT_AVAILABLE), WHOLE),
                             reply(publish_rest(3, (3,)))),
    "subscribe_transfer": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                               reply(create_items_rest()), reply(publish_rest(1, (1,))),
                               op(CLOSE, 1), op(CLOSE, 2), op(RECONNECT),
                               reply(transfer_rest(0, (2,))), reply(republish_rest(2, (2,))),
                               reply(service_fault(BAD_MESSAGE_NOT_AVAILABLE), WHOLE)),
    "subscribe_recreate": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                               reply(create_items_rest()), reply(publish_rest(1, (1,))),
                               op(CLOSE, 1), op(CLOSE, 2), op(RECONNECT),
                               reply(transfer_rest(BAD_SUBSCRIPTION_ID_INVALID)),
                               reply(create_subscription_rest(6)), reply(create_items_rest()),
                               reply(publish_rest(1, (5,), sub_id=6))),
    "subscribe_stall_delete": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                   tick(seconds=20), op(SUBSCRIBE, 4), tick(seconds=20)),
    "subscribe_events": seed(0, 60, op(SUBSCRIBE, 5), reply(create_subscription_rest()),
                             reply(create_items_rest()),
                             reply(publish_rest(1, notifications=[event_list("tick 1", "tick 2")])),
                             reply(publish_rest(2, notifications=[event_list("tick 3")]))),
    "subscribe_huge_revision": seed(0, 60, op(SUBSCRIBE),
                                    reply(create_subscription_rest(interval=1e300,
                                                                   keepalive=0xFFFFFFFF)),
                                    tick(seconds=60)),
}

# Hostile PublishResponses: sequence numbers half the number space away, 0, and a keep-alive far
# ahead; availableSequenceNumbers past the client's bound (1024) and with 0 and duplicates in it;
# thousands of notifications in one message; event fields nested deeper than the decoder allows.
hostile = {
    "publish_far_sequences": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                  *items_then_publish(
                                      publish_rest(1, (1,)),
                                      publish_rest(0x80000001, (2,), available=(2, 0x80000000,
                                                                                0xFFFFFFFF, 0)),
                                      publish_rest(0, (3,)), publish_rest(0x7FFFFFFF, ()),
                                      publish_rest(2, (4,), available=(2, 2, 2)))),
    "publish_many_available": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                   *items_then_publish(
                                       publish_rest(1, (1,)),
                                       publish_rest(3000, (2,), available=range(1, 3000)),
                                       publish_rest(2, (3,)))),
    "publish_many_notifications": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                       *items_then_publish(
                                           publish_rest(1, range(2000)),
                                           publish_rest(2, notifications=[data_change(1)] * 300),
                                           publish_rest(3, notifications=[
                                               status_change(BAD_TIMEOUT)] * 50))),
    "publish_nested_event_fields": seed(0, 60, op(SUBSCRIBE, 5), reply(create_subscription_rest()),
                                        *items_then_publish(
                                            publish_rest(1, notifications=[event_fields(
                                                nested_variant(3), b"\x16" + event_fields(
                                                    nested_variant(5)),
                                                b"\x17\x01" + nested_variant(4))]),
                                            publish_rest(2, notifications=[event_fields(
                                                nested_variant(200))]))),
    # CreateMonitoredItems unanswered when the connection drops: after the session is re-activated
    # the client asks GetMonitoredItems which items the server has; the answers: it has item 1,
    # handles that do not match, and lists of different lengths.
    "items_in_flight_cut": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                reply(read_rest(0)), op(CLOSE, 1), op(RECONNECT),
                                reply(monitored_items_rest((100,), (1,))),
                                reply(publish_rest(1, (1,)))),
    "items_in_flight_odd_answers": seed(0, 60, op(SUBSCRIBE), reply(create_subscription_rest()),
                                        reply(read_rest(0)), op(CLOSE, 1), op(RECONNECT),
                                        reply(monitored_items_rest((100, 101), (7,))),
                                        op(CLOSE, 1), op(RECONNECT),
                                        reply(monitored_items_rest((), ())),
                                        reply(create_items_rest(), selector=2)),
}
seeds.update(hostile)
# The subscription seeds again in byte mode (uarc_client_receive_bytes, no socket).
for name in [n for n in seeds if n.startswith(("subscribe_", "publish_", "items_"))]:
    seeds["bytes_" + name] = seeds[name][:1] + bytes([seeds[name][1] | BYTES]) + seeds[name][2:]
seeds["bytes_read_and_block"] = seed(0, 60 | BYTES, op(SEND), reply(read_rest(42)), op(BLOCK),
                                     op(CLOSE, 1), op(RECONNECT), op(SEND), reply(read_rest(1)))
# The same exchanges over Basic256Sha256 (the SECURE record first): the harness seals the replies.
SECURED = ["read", "read_three", "browse_next", "call", "renew", "user", "reactivate",
           "subscribe_in_order", "subscribe_resume", "read_fault", "chunks", "abort",
           "keepalive", "request_timeout"]
for name in SECURED:
    if name in seeds:
        plain = seeds[name]
        seeds["secure_" + name] = plain[:2] + op(SECURE) + plain[2:]
        seeds["secure_sign_" + name] = plain[:2] + op(SECURE, SIGN_ONLY) + plain[2:]
seeds["secure_own_padding"] = seed(0, 60, op(SECURE), op(SEND),
                                   reply(read_rest(7) + bytes(3), HEADED, OWN_PADDING),
                                   op(SEND), reply(read_rest(8)))
seeds["secure_raw"] = seed(0, 60, op(SECURE), op(SEND),
                           op(RAW) + data(b"MSGF" + u32(60) + u32(5) + u32(1) + bytes(44)))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_client")
os.makedirs(out, exist_ok=True)
for name, content in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(content)
print(f"{len(seeds)} seeds in {out}")
