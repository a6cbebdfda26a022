#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ecdh_key (its input format is described at the top of
tests/fuzz/fuzz_ecdh_key.c) into tests/fuzz/corpus/fuzz_ecdh_key/."""
import os
import struct

SIGN = 1  # the harness signs each publicKey with the server's key


def string(b):
    return struct.pack("<i", len(b)) + b


def extension_object(type_id, body):
    return b"\x01\x00" + struct.pack("<H", type_id) + b"\x01" + string(body)


def ecdh_key(public_key, signature=b"", name=b"ECDHKey"):
    value = extension_object(17549, string(public_key) + string(signature))  # EphemeralKeyType
    return struct.pack("<H", 0) + string(name) + b"\x16" + value  # Variant of ExtensionObject


def header(*pairs):
    fixed = struct.pack("<qII", 0, 1, 0) + b"\x00" + struct.pack("<i", -1)
    if not pairs:
        return fixed + b"\x00\x00\x00"  # no AdditionalHeader
    body = struct.pack("<i", len(pairs)) + b"".join(pairs)
    return fixed + extension_object(17537, body)  # AdditionalParametersType


# a point on P-256 (its generator), uncompressed without the 04 prefix
G = bytes.fromhex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                  "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
SEEDS = {
    "absent": bytes([0]) + header(),
    "signed": bytes([SIGN]) + header(ecdh_key(G)),
    "unsigned": bytes([0]) + header(ecdh_key(G, bytes(64))),
    "short_key": bytes([SIGN]) + header(ecdh_key(G[:63])),
    "long_key": bytes([SIGN]) + header(ecdh_key(G + b"\x00")),
    "off_curve": bytes([SIGN]) + header(ecdh_key(bytes(32) + b"\x01" * 32)),
    "short_signature": bytes([0]) + header(ecdh_key(G, bytes(63))),
    "other_name_then_key": bytes([SIGN]) + header(ecdh_key(G, name=b"ECDHKeyX"), ecdh_key(G)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_ecdh_key")
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
