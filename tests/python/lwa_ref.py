"""Independent reference implementation of LWA1 (protocol-spec/LWA.md).

Written from the specification, not from the Rust code, using only the
`cryptography` package and the standard library. Section numbers refer to
LWA.md. Secrets are plain `bytes` here: this is a test oracle, not a
production implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Callable, Optional

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.exceptions import InvalidTag

METHOD = "LWA1"
VERSION = 0x01
MIN_LIMIT, MAX_LIMIT = 1, 48
TAG_LEN = 16
MAC_LEN = 16

# Section 9: error name -> MQTT reason code.
REASON_CODES = {
    "method_mismatch": 0x8C,
    "missing_authentication": 0x87,
    "unsupported_version": 0x8C,
    "malformed": 0x8C,
    "empty_client_id": 0x85,
    "low_order_point": 0x87,
    "broker_auth_failed": 0x87,
    "client_auth_failed": 0x87,
    "record_open_failed": 0x87,
    "opener_poisoned": 0x87,
    "record_limit_reached": 0x83,
}


# Section 9: MQTT 5 allows neither 0x8C nor 0x85 in DISCONNECT (MQTT 5.0
# section 3.14.2.1); after CONNACK those errors are sent as 0x82 Protocol Error.
DISCONNECT_FOR_CONNACK_ONLY = {0x8C: 0x82, 0x85: 0x82}

# Reason codes MQTT 5.0 allows in DISCONNECT.
VALID_IN_DISCONNECT = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B} | set(range(0x8D, 0x91)) | set(range(0x93, 0xA3))


def disconnect_reason_code(name: str) -> int:
    """The reason code when error `name` ends a connection with DISCONNECT."""
    code = REASON_CODES[name]
    return DISCONNECT_FOR_CONNACK_ONLY.get(code, code)


class LwaError(Exception):
    """An LWA1 failure named as in section 9."""

    def __init__(self, name: str, detail: str = ""):
        super().__init__(f"{name}: {detail}" if detail else name)
        self.name = name
        self.reason_code = REASON_CODES[name]
        self.disconnect_reason_code = disconnect_reason_code(name)


# ---------------------------------------------------------------- section 3


def be64(x: int) -> bytes:
    return struct.pack(">Q", x)


def lp(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return struct.pack(">H", len(data)) + data


def x25519(secret: bytes, public: bytes) -> bytes:
    """X25519 with the all-zero check of section 5.3."""
    try:
        shared = X25519PrivateKey.from_private_bytes(secret).exchange(
            X25519PublicKey.from_public_bytes(public)
        )
    except ValueError as e:  # OpenSSL refuses an all-zero result itself
        raise LwaError("low_order_point", str(e)) from e
    if shared == bytes(32):
        raise LwaError("low_order_point")
    return shared


def x25519_public(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac_sha256(salt, ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac_sha256(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:length]


# ---------------------------------------------------------------- section 4


@dataclass
class Offer:
    record_limit_log2: int
    identity: str
    e_c: bytes

    def encode(self) -> bytes:
        ident = self.identity.encode("utf-8")
        if not 1 <= len(ident) <= 255 or "\0" in self.identity:
            raise ValueError("identity must be 1..=255 bytes without U+0000")
        if not MIN_LIMIT <= self.record_limit_log2 <= MAX_LIMIT:
            raise ValueError("record_limit_log2 outside 1..=48")
        return bytes([VERSION, self.record_limit_log2, len(ident)]) + ident + self.e_c


@dataclass
class Response:
    chosen_record_limit_log2: int
    e_b: bytes
    broker_mac: bytes

    def without_mac(self) -> bytes:
        return bytes([VERSION, self.chosen_record_limit_log2]) + self.e_b

    def encode(self) -> bytes:
        return self.without_mac() + self.broker_mac


def _check_version(data: bytes) -> None:
    if len(data) == 0:
        raise LwaError("malformed", "empty")
    if data[0] != VERSION:
        raise LwaError("unsupported_version", f"0x{data[0]:02x}")


def _check_limit(limit: int) -> int:
    if not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise LwaError("malformed", "record limit out of range")
    return limit


def parse_offer(data: bytes) -> Offer:
    """Section 4.4 rules, in order."""
    _check_version(data)
    if len(data) < 3:
        raise LwaError("malformed", "truncated")
    id_len = data[2]
    if id_len == 0:
        raise LwaError("malformed", "empty identity")
    if len(data) != 35 + id_len:
        raise LwaError("malformed", "length")
    try:
        identity = data[3 : 3 + id_len].decode("utf-8")
    except UnicodeDecodeError as e:
        raise LwaError("malformed", "identity not UTF-8") from e
    if "\0" in identity:
        raise LwaError("malformed", "identity contains U+0000")
    return Offer(_check_limit(data[1]), identity, data[3 + id_len :])


def parse_response(data: bytes) -> Response:
    _check_version(data)
    if len(data) != 50:
        raise LwaError("malformed", "length")
    return Response(_check_limit(data[1]), data[2:34], data[34:50])


def parse_finished(data: bytes) -> bytes:
    if len(data) != MAC_LEN:
        raise LwaError("malformed", "length")
    return data


# ---------------------------------------------------------------- section 5


@dataclass
class Will:
    topic: str
    qos: int
    retain: bool
    payload: bytes


def connect_context(client_id: str, clean_start: bool, will: Optional[Will]) -> bytes:
    if client_id == "":
        raise LwaError("empty_client_id")
    out = lp(client_id.encode("utf-8")) + bytes([int(clean_start)])
    if will is None:
        return out + b"\x00"
    return (
        out
        + bytes([1, will.qos, int(will.retain)])
        + lp(will.topic.encode("utf-8"))
        + lp(will.payload)
    )


def transcript_input(ctx: bytes, offer: bytes, response_without_mac: bytes, session_present: bool) -> bytes:
    return b"LWA1 transcript" + ctx + offer + response_without_mac + bytes([int(session_present)])


def transcript_hash(ctx: bytes, offer: bytes, response_without_mac: bytes, session_present: bool) -> bytes:
    return hashlib.sha256(transcript_input(ctx, offer, response_without_mac, session_present)).digest()


LABELS = {
    "c2b_key": (b"c2b key", 32),
    "c2b_iv": (b"c2b iv", 12),
    "b2c_key": (b"b2c key", 32),
    "b2c_iv": (b"b2c iv", 12),
    "broker_mac_key": (b"broker mac", 32),
    "client_mac_key": (b"client mac", 32),
}


def key_schedule(psk: bytes, dh: bytes, th: bytes) -> dict:
    prk = hkdf_extract(psk, dh)
    keys = {"prk": prk}
    for name, (label, length) in LABELS.items():
        keys[name] = hkdf_expand(prk, b"LWA1 " + label + th, length)
    return keys


def broker_mac(keys: dict, th: bytes) -> bytes:
    return hmac_sha256(keys["broker_mac_key"], th)[:MAC_LEN]


def client_mac(keys: dict, th: bytes, b_mac: bytes) -> bytes:
    return hmac_sha256(keys["client_mac_key"], th + b_mac)[:MAC_LEN]


# ---------------------------------------------------------------- section 7

C2B, B2C = 0x01, 0x02
DIRECTIONS = {"c2b": C2B, "b2c": B2C}


def record_nonce(iv: bytes, counter: int) -> bytes:
    return iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], be64(counter)))


def record_aad(direction: int, counter: int, qos: int, retain: bool, topic: str) -> bytes:
    return b"LWA1" + bytes([direction]) + be64(counter) + bytes([qos, int(retain)]) + lp(topic.encode("utf-8"))


class RecordChannel:
    """One direction's sealer or opener: key, iv, implicit counter, limit 2^L."""

    def __init__(self, direction: int, key: bytes, iv: bytes, limit_log2: int, counter: int = 0):
        if not MIN_LIMIT <= limit_log2 <= MAX_LIMIT:
            raise ValueError("record_limit_log2 outside 1..=48")
        self.direction, self.iv = direction, iv
        self.aead = ChaCha20Poly1305(key)
        self.limit = 1 << limit_log2
        self.counter = counter
        self.poisoned = False

    def seal(self, topic: str, qos: int, retain: bool, payload: bytes) -> bytes:
        if self.counter >= self.limit:
            raise LwaError("record_limit_reached")
        n = self.counter
        sealed = self.aead.encrypt(record_nonce(self.iv, n), payload, record_aad(self.direction, n, qos, retain, topic))
        self.counter += 1
        return sealed

    def open(self, topic: str, qos: int, retain: bool, sealed: bytes) -> bytes:
        if self.poisoned:
            raise LwaError("opener_poisoned")
        if self.counter >= self.limit:
            raise LwaError("record_limit_reached")
        n = self.counter
        try:
            if len(sealed) < TAG_LEN:
                raise InvalidTag()
            plain = self.aead.decrypt(record_nonce(self.iv, n), sealed, record_aad(self.direction, n, qos, retain, topic))
        except InvalidTag as e:
            self.poisoned = True
            raise LwaError("record_open_failed", f"counter {n}") from e
        self.counter += 1
        return plain


# ---------------------------------------------------------------- section 6


@dataclass
class ClientSession:
    sealer: RecordChannel  # c2b
    opener: RecordChannel  # b2c
    chosen_record_limit_log2: int


class Client:
    """Section 6.1: START -> WAIT_CONNACK -> OPEN."""

    def __init__(self, identity: str, psk: bytes, client_id: str, clean_start: bool,
                 will: Optional[Will], record_limit_log2: int, ephemeral_secret: bytes):
        self.psk = psk
        self.ctx = connect_context(client_id, clean_start, will)
        self.secret = ephemeral_secret
        self.limit = record_limit_log2
        self.offer = Offer(record_limit_log2, identity, x25519_public(ephemeral_secret)).encode()

    def on_connack(self, response: bytes, session_present: bool) -> tuple[bytes, ClientSession]:
        r = parse_response(response)
        if r.chosen_record_limit_log2 > self.limit:
            raise LwaError("malformed", "chosen limit above offer")
        dh = x25519(self.secret, r.e_b)
        self.secret = None  # used once
        th = transcript_hash(self.ctx, self.offer, r.without_mac(), session_present)
        keys = key_schedule(self.psk, dh, th)
        if not hmac.compare_digest(broker_mac(keys, th), r.broker_mac):
            raise LwaError("broker_auth_failed", "wrong PSK or impostor broker")
        limit = r.chosen_record_limit_log2
        session = ClientSession(
            RecordChannel(C2B, keys["c2b_key"], keys["c2b_iv"], limit),
            RecordChannel(B2C, keys["b2c_key"], keys["b2c_iv"], limit),
            limit,
        )
        return client_mac(keys, th, r.broker_mac), session


@dataclass
class BrokerSession:
    identity: str
    sealer: RecordChannel  # b2c
    opener: RecordChannel  # c2b
    chosen_record_limit_log2: int


class BrokerPending:
    """Section 6.2 AWAIT_FINISHED: holds no MQTT state, only what verifies the finished."""

    def __init__(self, identity: str, known: bool, expected: bytes, session: BrokerSession):
        self.identity, self.known, self.expected, self.session = identity, known, expected, session

    def on_auth(self, finished: bytes) -> BrokerSession:
        mac = parse_finished(finished)
        ok = hmac.compare_digest(mac, self.expected)
        if not (ok and self.known):
            raise LwaError("client_auth_failed", "wrong PSK or unknown identity")
        return self.session


def broker_on_connect(offer: bytes, client_id: str, clean_start: bool, will: Optional[Will],
                      session_present: bool, psk_lookup: Callable[[str], Optional[bytes]],
                      broker_limit_log2: int, random_bytes: Callable[[int], bytes]) -> tuple[BrokerPending, bytes]:
    """Section 6.2 IDLE steps 2-7 (the method check is the caller's)."""
    o = parse_offer(offer)
    ctx = connect_context(client_id, clean_start, will)
    secret = random_bytes(32)
    e_b = x25519_public(secret)
    dh = x25519(secret, o.e_c)
    psk = psk_lookup(o.identity)
    known = psk is not None
    if not known:
        psk = random_bytes(32)
    chosen = min(o.record_limit_log2, broker_limit_log2)
    rwm = bytes([VERSION, chosen]) + e_b
    th = transcript_hash(ctx, offer, rwm, session_present)
    keys = key_schedule(psk, dh, th)
    b_mac = broker_mac(keys, th)
    session = BrokerSession(
        o.identity,
        RecordChannel(B2C, keys["b2c_key"], keys["b2c_iv"], chosen),
        RecordChannel(C2B, keys["c2b_key"], keys["c2b_iv"], chosen),
        chosen,
    )
    return BrokerPending(o.identity, known, client_mac(keys, th, b_mac), session), rwm + b_mac
