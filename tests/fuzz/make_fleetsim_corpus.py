#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_fleetsim (its input format is described at the top of
tests/fuzz/fuzz_fleetsim.c) into tests/fuzz/corpus/fuzz_fleetsim/: a client's handshake as raw
bytes, and service sequences (Read, Browse, a subscription with Publish, Republish, Transfer)."""
import base64
import os
import re
import struct

u32 = lambda v: struct.pack("<I", v)
u16 = lambda v: struct.pack("<H", v)
f64 = lambda v: struct.pack("<d", v)
NULL = u32(0xFFFFFFFF)


def string(s):
    b = s.encode()
    return u32(len(b)) + b


def frame(kind, body):
    return kind + u32(8 + len(body)) + body


def numeric(ns, i):
    return b"\x01" + bytes([ns]) + u16(i)


REQUEST_HEADER = b"\x00\x00" + bytes(8) + u32(1) + u32(0) + NULL + u32(0) + b"\x00\x00\x00"
HEL = frame(b"HELF", u32(0) + u32(65536) * 2 + u32(0) * 2 + string("opc.tcp://localhost:4840/x"))
OPN = frame(b"OPNF", u32(0) + string("http://opcfoundation.org/UA/SecurityPolicy#None") + NULL
            + NULL + u32(1) + u32(1) + numeric(0, 446) + REQUEST_HEADER + u32(0) + u32(0)
            + u32(1) + NULL + u32(600000))
COUNTER = b"\x03" + u16(1) + string("Counter")
READ_VALUE_ID = COUNTER + u32(13) + NULL + u16(0) + NULL
# Indexes into the service table of fuzz_fleetsim.c.
READ, BROWSE, CREATE_SUB, MODIFY_SUB, DELETE_SUBS, SET_PUBLISHING, CREATE_ITEMS, DELETE_ITEMS, \
    SET_MONITORING, PUBLISH, REPUBLISH, TRANSFER, CLOSE_SESSION = range(13)
SUBSCRIPTION = 3  # ids: channel 1, session 2, then the subscription


def service(index, body):
    return bytes([index]) + u16(len(body)) + body


def write(name, data):
    with open(os.path.join(os.path.dirname(__file__), "corpus", "fuzz_fleetsim", name), "wb") as f:
        f.write(data)


write("raw_hel", b"\x00" + HEL)
write("raw_hel_opn", b"\x00" + HEL + OPN)
write("raw_garbage", b"\x00" + b"GARBAGE!" * 4)


def client_certificate():
    """The fuzz client's DER certificate from fuzz_secure_keys.h."""
    with open(os.path.join(os.path.dirname(__file__), "fuzz_secure_keys.h")) as f:
        text = f.read()
    block = re.search(r"\[FUZZ_CLIENT_CERT\] =(.*?);", text, re.S).group(1)
    return base64.b64decode("".join(re.findall(r'"([^"]*)"', block)))


# First byte 2: servers that also offer Basic256Sha256. An OPN naming it with a real client
# certificate and our thumbprint left empty, then 512 bytes where the encrypted part would be.
SECURED_OPN = frame(b"OPNF", u32(0)
                    + string("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256")
                    + u32(len(client_certificate())) + client_certificate() + u32(20) + bytes(20)
                    + bytes(512))
write("raw_secured_opn", b"\x02" + HEL + SECURED_OPN)
read = service(READ, f64(0) + u32(2) + u32(1) + READ_VALUE_ID)
browse = service(BROWSE, bytes(2) + bytes(8) + u32(0) + u32(0) + u32(1) + numeric(0, 85)
                 + u32(0) + b"\x00\x00" + b"\x01" + u32(0) + u32(63))
create_sub = service(CREATE_SUB, f64(100) + u32(100) + u32(3) + u32(0) + b"\x01\x00")
create_item = service(CREATE_ITEMS, u32(SUBSCRIPTION) + u32(2) + u32(1) + READ_VALUE_ID + u32(2)
                      + u32(42) + f64(100) + b"\x00\x00\x00" + u32(10) + b"\x01")
publish = service(PUBLISH, u32(0))
publish_ack = service(PUBLISH, u32(1) + u32(SUBSCRIPTION) + u32(1))
republish = service(REPUBLISH, u32(SUBSCRIPTION) + u32(2))
transfer = service(TRANSFER, u32(1) + u32(SUBSCRIPTION) + b"\x01")
write("read", b"\x01" + read)
write("browse", b"\x01" + browse)
write("subscribe_publish", b"\x01" + create_sub + create_item + publish + publish + publish_ack
      + republish + transfer)
write("close_session", b"\x01" + read + service(CLOSE_SESSION, b"\x01") + read)
