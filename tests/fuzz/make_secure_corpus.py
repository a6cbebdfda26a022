#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_secure_channel (its input format is described at the top of
tests/fuzz/fuzz_secure_channel.c) into tests/fuzz/corpus/fuzz_secure_channel/."""
import os
import struct

RAW, MSG, CLO, OPN, REPLY, TICK, SEND, FORGET = range(8)
B256, PSS, A128, ECC = 0, 1, 2, 3
SIGN, NO_ISSUE, SMALL, SEND_ON_OPEN, WRAP, LOST = 4, 8, 16, 32, 64, 128
# key sizes, in the seed's top three bits (key_sizes in fuzz_secure_channel.c)
(RSA2048, SERVER_512, SERVER_1024, SERVER_8192, SERVER_4096, SERVER_3000, CLIENT_1024,
 CLIENT_2056) = range(8)
# with ECC, the same bits pick the curve (ecc_ids in fuzz_secure_channel.c)
NIST_P256, NIST_P384, ECC_RSA_SERVER, ECC_P384_SERVER = range(4)


def record(kind, p=0, data=b""):
    op = bytes([kind | p << 3])
    if kind in (RAW, MSG, CLO, OPN):
        return op + struct.pack("<H", len(data)) + data
    if kind == TICK:
        return op + struct.pack("<H", data)
    return op


def seed(options, *records, split=0, keys=RSA2048):
    return bytes([options]) + struct.pack("<H", split | keys << 13) + b"".join(records)


def nodeid(n):
    return bytes([1, 0]) + struct.pack("<H", n)


def response_header(handle=1, status=0):
    return struct.pack("<qII", 0, handle, status) + b"\x00" + struct.pack("<i", -1) + b"\x00\x00\x00"


def read_response(values=2):
    body = nodeid(634) + response_header()
    body += struct.pack("<i", values) + b"\x01\x06" + struct.pack("<i", 42) * values
    return body + struct.pack("<i", -1)


def opn_response(channel_id=7, token=1, lifetime=4000):
    return (nodeid(449) + response_header() + struct.pack("<IIIqI", 0, channel_id, token, 0, lifetime)
            + struct.pack("<i", 32) + bytes(range(32)))


def abort_body(status=0x80010000, reason=b"too busy"):
    return struct.pack("<Ii", status, len(reason)) + reason


F, C, A = 0, 1, 2
OTHER_TOKEN, OTHER_REQUEST, SOMETHING_OFF = 4, 8, 16
big = read_response(1500)
seeds = {
    "read": seed(SEND_ON_OPEN, record(MSG, F, read_response()), record(MSG, F, read_response(1))),
    "pss_sign_chunks": seed(PSS | SIGN | SEND_ON_OPEN, record(MSG, C, big[:3000]),
                            record(MSG, C, big[3000:4500]), record(MSG, F, big[4500:])),
    "renew": seed(SEND_ON_OPEN, record(TICK, data=3100), record(REPLY),
                  record(MSG, OTHER_TOKEN | F, read_response()), record(SEND, 1),
                  record(MSG, F, read_response()), record(TICK, data=3100), record(REPLY, 4),
                  record(MSG, F, read_response())),
    "fuzzer_opn": seed(NO_ISSUE | A128, record(OPN, 0, opn_response()), record(SEND, 2),
                       record(MSG, F, read_response())),
    "raw_opn": seed(NO_ISSUE, record(RAW, 0, b"OPNF" + struct.pack("<II", 36, 7) + struct.pack("<i", 4)
                                     + b"abcd" + struct.pack("<ii", -1, -1) + bytes(8))),
    "abort_small": seed(SMALL | SEND_ON_OPEN | LOST, record(MSG, A, abort_body()),
                        *[record(MSG, C, bytes(300)) for _ in range(5)], record(CLO, F, b"")),
    "wrap": seed(WRAP | SEND_ON_OPEN | A128 | SIGN, record(SEND, 3),
                 *[record(MSG, F, read_response()) for _ in range(6)], split=0x1234),
    "tampered": seed(SEND_ON_OPEN | PSS, record(MSG, SOMETHING_OFF | F, read_response()),
                     record(FORGET), record(MSG, OTHER_REQUEST | F, read_response())),
    "opn_fault": seed(NO_ISSUE | SIGN, record(REPLY, 1)),
    # split 7 makes the first "something off" the fuzzer's own padding (here 15 zero bytes)
    "own_padding": seed(SEND_ON_OPEN, record(MSG, SOMETHING_OFF | F, bytes(range(41))),
                        record(MSG, F, read_response()), split=7),
    # keys outside 2048-4096 bits: the channel is refused before anything is sent
    "key_server_512": seed(PSS | SEND_ON_OPEN, record(MSG, F, read_response()), keys=SERVER_512),
    "key_server_1024": seed(SEND_ON_OPEN, record(MSG, F, read_response()), keys=SERVER_1024),
    "key_server_8192": seed(A128, record(MSG, F, read_response()), keys=SERVER_8192),
    "key_client_1024": seed(SIGN, record(MSG, F, read_response()), keys=CLIENT_1024),
    # odd sizes inside the range: whole handshakes, renewals, chunks, the fuzzer's own OPN
    "key_server_4096": seed(SEND_ON_OPEN | PSS, record(MSG, F, read_response()),
                            record(TICK, data=3100), record(REPLY),
                            record(MSG, OTHER_TOKEN | F, read_response()), record(SEND, 1),
                            record(MSG, F, read_response()), keys=SERVER_4096),
    "key_server_3000": seed(SEND_ON_OPEN | SIGN, record(MSG, C, big[:3000]),
                            record(MSG, F, big[3000:]), record(TICK, data=3100),
                            record(OPN, 16, opn_response(token=2)), keys=SERVER_3000),
    "key_client_2056": seed(SMALL | A128 | SEND_ON_OPEN, record(MSG, F, read_response()),
                            record(TICK, data=3100), record(REPLY), record(MSG, F, read_response()),
                            record(MSG, SOMETHING_OFF | F, read_response()), keys=CLIENT_2056),
    # ECC: ephemeral-key nonces, ECDSA-signed OPN, HKDF keys, HMAC-SHA256/384 and AES-CBC chunks
    "ecc_p256_read": seed(ECC | SEND_ON_OPEN, record(MSG, F, read_response()),
                          record(MSG, F, read_response(1))),
    "ecc_p384_sign_renew": seed(ECC | SIGN | SEND_ON_OPEN, record(TICK, data=3100), record(REPLY),
                                record(MSG, OTHER_TOKEN | F, read_response()), record(SEND, 1),
                                record(MSG, F, read_response()), keys=NIST_P384),
    "ecc_p384_chunks_tampered": seed(ECC | SEND_ON_OPEN, record(MSG, C, big[:3000]),
                                     record(MSG, F, big[3000:]),
                                     record(MSG, SOMETHING_OFF | F, read_response()), keys=NIST_P384),
    # the fuzzer's own OPN response: a 32-byte nonce is no point of the curve
    "ecc_fuzzer_opn": seed(ECC | NO_ISSUE, record(OPN, 0, opn_response()), record(SEND, 2)),
    "ecc_opn_tampered": seed(ECC | NO_ISSUE | SIGN, record(OPN, 16, opn_response()), split=3),
    # an RSA server certificate, one on another curve: refused before anything is sent
    "ecc_rsa_server": seed(ECC, record(MSG, F, read_response()), keys=ECC_RSA_SERVER),
    "ecc_p384_server": seed(ECC | SIGN, record(MSG, F, read_response()), keys=ECC_P384_SERVER),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_secure_channel")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
