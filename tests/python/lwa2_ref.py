"""Independent reference implementation of LWA2 (protocol-spec/LWA2.md).

Written from the specification, not from the Rust code (lwa-core/src/lwa2/),
using the `blake3` and `cryptography` packages and the standard library.
Section numbers refer to LWA2.md unless they say LWA.md. What LWA2 keeps
from LWA1 is imported from lwa_ref.py: the connect context (LWA.md 5.1),
X25519 with its all-zero check (LWA.md 5.3), the records (LWA.md 7) and the
error names (LWA.md 9). Secrets are plain `bytes`: this is a test oracle,
not a production implementation. Metadata protection (section 7.1) is the
`M` bit of offer and response and the `inner` record plaintext
(`encode_inner`, `parse_inner`, the sessions' `seal_publish`/`open_publish`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Callable, Optional

import blake3

import lwa_ref as lwa1
from lwa_ref import (  # noqa: F401  (re-exported for the tests)
    B2C,
    C2B,
    DIRECTIONS,
    LwaError,
    RecordChannel,
    Will,
    connect_context,
    lp,
    record_aad,
    record_nonce,
    x25519,
    x25519_public,
)

METHOD = "L2"
MIN_LIMIT, MAX_LIMIT = 1, 48
PUBLIC_LEN = 32
MAX_IDENTITY_LEN = 255
BROKER_MAC_LEN = 16
# Length of client_mac, i.e. of the finished (sections 4.3, 5.4). Section 14
# leaves open whether it becomes 8; everything below follows this constant.
CLIENT_MAC_LEN = 16

OFFER_MIN_LEN = 1 + PUBLIC_LEN  # 33: no identity yet
OFFER_MAX_LEN = OFFER_MIN_LEN + MAX_IDENTITY_LEN  # 288
RESPONSE_WITHOUT_MAC_LEN = 1 + PUBLIC_LEN  # 33
RESPONSE_LEN = RESPONSE_WITHOUT_MAC_LEN + BROKER_MAC_LEN  # 49
FINISHED_LEN = CLIENT_MAC_LEN

# Sections 4.1, 4.2: bit 7 of the first byte of offer and response is `M`
# (metadata protection, section 7.1); bits 0-6 are the record limit.
METADATA_FLAG = 0x80
LIMIT_MASK = 0x7F

# Section 5: the BLAKE3 derive_key context strings.
TRANSCRIPT_CONTEXT = "mqtt-lwa 2026-12 LWA2 transcript"
SESSION_SECRET_CONTEXT = "mqtt-lwa 2026-12 LWA2 session secret"

# Section 5.3: name -> (label, L). Names as in the test vectors.
LABELS = {
    "c2b_key": (b"c2b key", 32),
    "c2b_iv": (b"c2b iv", 12),
    "b2c_key": (b"b2c key", 32),
    "b2c_iv": (b"b2c iv", 12),
    "broker_mac_key": (b"broker mac", 32),
    "client_mac_key": (b"client mac", 32),
}

# Section 9: LWA.md 9's table without `unsupported_version`.
REASON_CODES = {name: code for name, code in lwa1.REASON_CODES.items() if name != "unsupported_version"}

# Section 6: AUTH reason codes and the DISCONNECT code of a protocol error.
AUTH_CONTINUE, AUTH_REAUTHENTICATE = 0x00, 0x19
PROTOCOL_ERROR = 0x82
# Section 9: an opened record whose `inner` does not parse ends the connection
# with DISCONNECT 0x81 Malformed Packet (not the 0x82 of other `malformed`s).
MALFORMED_PACKET = 0x81


def disconnect_reason_code(name: str) -> int:
    """The reason code when error `name` ends a connection after CONNACK (LWA.md 9)."""
    return lwa1.disconnect_reason_code(name)


class ProtocolError(Exception):
    """A packet-order violation of section 6: DISCONNECT 0x82, no side effect."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.disconnect_reason_code = PROTOCOL_ERROR


def _error(name: str, detail: str = "") -> LwaError:
    assert name in REASON_CODES, name  # LWA2 never raises unsupported_version
    return LwaError(name, detail)


# ---------------------------------------------------------------- section 3


def derive_key(context: str, material: bytes) -> bytes:
    """BLAKE3-derive_key(ctx, m), 32 bytes."""
    return blake3.blake3(material, derive_key_context=context).digest()


def keyed(key: bytes, msg: bytes, length: int = 32) -> bytes:
    """BLAKE3-keyed(k, m)[0..length]."""
    if len(key) != 32:
        raise ValueError("BLAKE3 keys are 32 bytes")
    return blake3.blake3(msg, key=key).digest()[:length]


# ---------------------------------------------------------------- section 4


def _first_byte(protect_metadata: bool, limit: int) -> int:
    """Sections 4.1, 4.2: `M * 0x80 + limit`."""
    return (METADATA_FLAG if protect_metadata else 0) | limit


@dataclass
class Offer:
    record_limit_log2: int
    e_c: bytes
    identity: str
    protect_metadata: bool = False  # `M`: metadata protection asked for

    def encode(self) -> bytes:
        ident = self.identity.encode("utf-8")
        if not 1 <= len(ident) <= MAX_IDENTITY_LEN or "\0" in self.identity:
            raise ValueError("identity must be 1..=255 bytes without U+0000")
        if not MIN_LIMIT <= self.record_limit_log2 <= MAX_LIMIT:
            raise ValueError("record_limit_log2 outside 1..=48")
        if len(self.e_c) != PUBLIC_LEN:
            raise ValueError("e_c must be 32 bytes")
        return bytes([_first_byte(self.protect_metadata, self.record_limit_log2)]) + self.e_c + ident


@dataclass
class Response:
    chosen_record_limit_log2: int
    e_b: bytes
    broker_mac: bytes
    protect_metadata: bool = False  # `M`: metadata protection granted

    def without_mac(self) -> bytes:
        return bytes([_first_byte(self.protect_metadata, self.chosen_record_limit_log2)]) + self.e_b

    def encode(self) -> bytes:
        return self.without_mac() + self.broker_mac


def _check_limit(limit: int) -> int:
    if not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise _error("malformed", "record limit outside 1..=48")
    return limit


def _split_first_byte(byte: int) -> tuple[bool, int]:
    """Section 4.4 rule 3: (M, the limit of bits 0-6, checked to be in 1..=48)."""
    return bool(byte & METADATA_FLAG), _check_limit(byte & LIMIT_MASK)


def parse_offer(data: bytes) -> Offer:
    """Section 4.4, in order: length, identity, record limit."""
    if len(data) < OFFER_MIN_LEN:
        raise _error("malformed", "offer shorter than 33 bytes")
    if len(data) == OFFER_MIN_LEN:
        raise _error("malformed", "empty identity")
    if len(data) > OFFER_MAX_LEN:
        raise _error("malformed", "offer longer than 288 bytes")
    try:
        identity = data[OFFER_MIN_LEN:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error("malformed", "identity not UTF-8") from e
    if "\0" in identity:
        raise _error("malformed", "identity contains U+0000")
    m, limit = _split_first_byte(data[0])
    return Offer(limit, data[1:OFFER_MIN_LEN], identity, m)


def parse_response(data: bytes, offered_limit_log2: Optional[int] = None,
                   offered_metadata: Optional[bool] = None) -> Response:
    """Section 4.4; the client passes its offered limit for the `chosen <= offered`
    check and its offered `M` for the check that the response's `M` equals it."""
    if len(data) != RESPONSE_LEN:
        raise _error("malformed", "response not 49 bytes")
    m, chosen = _split_first_byte(data[0])
    if offered_limit_log2 is not None and chosen > offered_limit_log2:
        raise _error("malformed", "chosen limit above the offer")
    if offered_metadata is not None and m != offered_metadata:
        raise _error("malformed", "metadata protection granted differently from the offer")
    return Response(chosen, data[1:RESPONSE_WITHOUT_MAC_LEN], data[RESPONSE_WITHOUT_MAC_LEN:], m)


def parse_finished(data: bytes) -> bytes:
    if len(data) != FINISHED_LEN:
        raise _error("malformed", f"finished not {FINISHED_LEN} bytes")
    return data


# ---------------------------------------------------------------- section 5


def transcript_input(ctx: bytes, offer: bytes, response_without_mac: bytes, session_present: bool) -> bytes:
    """Section 5.2: the derive_key input of TH."""
    if len(response_without_mac) != RESPONSE_WITHOUT_MAC_LEN:
        raise ValueError("response_without_mac must be 33 bytes")
    return ctx + offer + response_without_mac + bytes([int(session_present)])


def transcript_hash(ctx: bytes, offer: bytes, response_without_mac: bytes, session_present: bool) -> bytes:
    return derive_key(TRANSCRIPT_CONTEXT, transcript_input(ctx, offer, response_without_mac, session_present))


def session_secret(psk: bytes, dh: bytes, th: bytes) -> bytes:
    """Section 5.3: prk."""
    if not len(psk) == len(dh) == len(th) == 32:
        raise ValueError("PSK, dh and TH are 32 bytes each")
    return derive_key(SESSION_SECRET_CONTEXT, psk + dh + th)


def key_schedule(psk: bytes, dh: bytes, th: bytes) -> dict:
    """Section 5.3: prk and the six keys/IVs, by vector name."""
    prk = session_secret(psk, dh, th)
    keys = {"prk": prk}
    for name, (label, length) in LABELS.items():
        keys[name] = keyed(prk, label, length)
    return keys


def broker_mac(keys: dict, th: bytes) -> bytes:
    """Section 5.4."""
    return keyed(keys["broker_mac_key"], th, BROKER_MAC_LEN)


def client_mac(keys: dict, th: bytes, b_mac: bytes) -> bytes:
    """Section 5.4."""
    return keyed(keys["client_mac_key"], th + b_mac, CLIENT_MAC_LEN)


# ---------------------------------------------------------------- section 7.1

# The Topic Name of every PUBLISH on the wire under metadata protection.
PLACEHOLDER_TOPIC = "L"
# MQTT 5.0 section 1.5.5: a Variable Byte Integer has 1..=4 bytes.
MAX_VBI_LEN = 4
MAX_VBI = 128**MAX_VBI_LEN - 1  # 268 435 455


def encode_vbi(value: int) -> bytes:
    """MQTT 5.0 section 1.5.5 Variable Byte Integer, in its shortest form."""
    if not 0 <= value <= MAX_VBI:
        raise ValueError("Variable Byte Integer outside 0..=268435455")
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _inner_malformed(detail: str) -> LwaError:
    """Section 9: `malformed` with the message `protected metadata`, DISCONNECT 0x81."""
    err = _error("malformed", "protected metadata: " + detail)
    err.disconnect_reason_code = MALFORMED_PACKET
    return err


def _read_vbi(data: bytes, offset: int) -> tuple[int, int]:
    """The Variable Byte Integer at data[offset:]: (value, offset after it).
    `malformed` if truncated, longer than 4 bytes or not in its shortest form."""
    value = 0
    for i in range(MAX_VBI_LEN):
        if offset + i >= len(data):
            raise _inner_malformed("truncated property length")
        b = data[offset + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if i > 0 and b == 0:  # a last byte of 0 adds nothing: a shorter form exists
                raise _inner_malformed("property length not in its shortest form")
            return value, offset + i + 1
    raise _inner_malformed("property length longer than 4 bytes")


def encode_inner(topic: str, properties: bytes, payload: bytes) -> bytes:
    """Section 7.1: inner = lp(topic) | vbi(n) | properties(n) | payload, the
    record plaintext under `M` (what MQTT 5 puts after a QoS 0 PUBLISH's fixed header)."""
    t = topic.encode("utf-8")
    if not t:
        raise ValueError("empty topic")
    return lp(t) + encode_vbi(len(properties)) + bytes(properties) + bytes(payload)


def parse_inner(data: bytes) -> tuple[str, bytes, bytes]:
    """Section 7.1: (topic, properties, payload) of an opened record's plaintext.

    Checks the layout only: truncation, an empty or non-UTF-8 topic and a
    property length that is not a shortest Variable Byte Integer of at most
    4 bytes are `malformed` (DISCONNECT 0x81). MQTT's other rules for the
    topic and the properties (wildcards, U+0000, which properties) are the
    caller's, with their own reason codes.
    """
    data = bytes(data)
    if len(data) < 2:
        raise _inner_malformed("truncated topic length")
    end = 2 + int.from_bytes(data[:2], "big")
    if end == 2:
        raise _inner_malformed("empty topic")
    if len(data) < end:
        raise _inner_malformed("truncated topic")
    try:
        topic = data[2:end].decode("utf-8")
    except UnicodeDecodeError as e:
        raise _inner_malformed("topic not UTF-8") from e
    n, start = _read_vbi(data, end)
    if len(data) < start + n:
        raise _inner_malformed("truncated properties")
    return topic, data[start : start + n], data[start + n :]


def check_placeholder(topic: str, properties: bytes = b"") -> None:
    """Section 7.1: under `M` a received PUBLISH shows the Topic Name "L" and no
    property, checked before aliases are resolved or the record opened [DISCONNECT 0x82]."""
    if topic != PLACEHOLDER_TOPIC:
        raise ProtocolError(f"PUBLISH with Topic Name {topic!r} under metadata protection")
    if properties:
        raise ProtocolError("PUBLISH with properties under metadata protection")


def seal_inner(sealer: RecordChannel, topic: str, properties: bytes, qos: int, retain: bool,
               payload: bytes) -> bytes:
    """Section 7.1: the next record of `sealer` over `inner`, bound to the placeholder topic."""
    return sealer.seal(PLACEHOLDER_TOPIC, qos, retain, encode_inner(topic, properties, payload))


def open_inner(opener: RecordChannel, qos: int, retain: bool, sealed: bytes) -> tuple[str, bytes, bytes]:
    """Section 7.1: opens the next record of `opener` under the placeholder topic and parses
    `inner`; a record that opens but does not parse has used its counter."""
    return parse_inner(opener.open(PLACEHOLDER_TOPIC, qos, retain, sealed))


def _require_metadata(granted: bool) -> None:
    if not granted:
        raise ValueError("metadata protection was not granted on this connection")


# ---------------------------------------------------------------- section 8.2

# Key update: request (AUTH 0x19 data) and response (AUTH 0x00 data) lengths.
UPDATE_LEN = 16
MAX_GENERATION = 2**32 - 1


def update_secret(prk: bytes) -> bytes:
    """u_0 = key("update", 32), derived from prk with the handshake's keys."""
    return keyed(prk, b"update")


def generation(previous: bytes, g: int) -> dict:
    """Generation g from u_{g-1}: its secret u_g, the update's MAC key m_g, and the
    four record keys/IVs under the handshake's labels, keyed by u_g."""
    if not 1 <= g <= MAX_GENERATION:
        raise ValueError("generation outside 1..=2^32-1")
    u = keyed(previous, b"next")
    out = {"secret": u, "mac_key": keyed(previous, b"update mac")}
    for name in ("c2b_key", "c2b_iv", "b2c_key", "b2c_iv"):
        label, length = LABELS[name]
        out[name] = keyed(u, label, length)
    return out


def update_request(mac_key: bytes, g: int, c2b_records: int) -> bytes:
    """request = BLAKE3-keyed(m_g, "request" | be32(g) | be64(c))[0..16]."""
    return keyed(mac_key, b"request" + g.to_bytes(4, "big") + c2b_records.to_bytes(8, "big"), UPDATE_LEN)


def update_response(mac_key: bytes, g: int, b2c_records: int, request: bytes) -> bytes:
    """response = BLAKE3-keyed(m_g, "response" | be32(g) | be64(b) | request)[0..16]."""
    if len(request) != UPDATE_LEN:
        raise _error("malformed", "key update request not 16 bytes")
    return keyed(mac_key, b"response" + g.to_bytes(4, "big") + b2c_records.to_bytes(8, "big") + request,
                 UPDATE_LEN)


# ---------------------------------------------------------------- section 6.1


class ClientSession:
    """Client OPEN (section 6.1): the first packet sent is the confirmation.

    It is either the finished (`finished()`) or a PUBLISH sealed as c2b
    record 0 (`seal()` before `finished()`); `before_other_packet()` is
    called before any other packet and yields the finished if it is still due.
    With metadata protection granted (`protect_metadata`), PUBLISH packets go
    through `seal_publish` and `open_publish` (section 7.1).
    """

    def __init__(self, sealer: RecordChannel, opener: RecordChannel, limit: int, finished: bytes,
                 protect_metadata: bool = False):
        self.sealer, self.opener = sealer, opener  # c2b, b2c
        self.chosen_record_limit_log2 = limit
        self.protect_metadata = protect_metadata
        self._finished = finished
        self.confirmed = False
        self.confirmed_by: Optional[str] = None

    def finished(self) -> bytes:
        """Authentication Data of the AUTH 0x19 (method L2) to send as the first packet."""
        if self.confirmed:
            raise ProtocolError("the confirmation was already sent")
        self.confirmed, self.confirmed_by = True, "finished"
        return self._finished

    def before_other_packet(self) -> Optional[bytes]:
        """A packet other than PUBLISH is about to be sent: the finished must precede it."""
        return None if self.confirmed else self.finished()

    def seal(self, topic: str, qos: int, retain: bool, payload: bytes) -> bytes:
        """Seals a PUBLISH payload; the first one sent without a finished is the confirmation.
        Under `M`, `topic` is the placeholder and `payload` the inner plaintext (section 7.1)."""
        if self.protect_metadata and topic != PLACEHOLDER_TOPIC:
            raise ValueError("under metadata protection a PUBLISH shows the placeholder topic")
        sealed = self.sealer.seal(topic, qos, retain, payload)
        if not self.confirmed:
            self.confirmed, self.confirmed_by = True, "publish"
        return sealed

    def open(self, topic: str, qos: int, retain: bool, sealed: bytes) -> bytes:
        if self.protect_metadata:
            check_placeholder(topic)
        return self.opener.open(topic, qos, retain, sealed)

    def seal_publish(self, topic: str, properties: bytes, qos: int, retain: bool, payload: bytes) -> bytes:
        """Section 7.1, `M` granted: seals topic, properties and payload as `inner`; the
        PUBLISH on the wire has Topic Name "L", no property and this sealed payload."""
        _require_metadata(self.protect_metadata)
        return self.seal(PLACEHOLDER_TOPIC, qos, retain, encode_inner(topic, properties, payload))

    def open_publish(self, qos: int, retain: bool, sealed: bytes, wire_topic: str = PLACEHOLDER_TOPIC,
                     wire_properties: bytes = b"") -> tuple[str, bytes, bytes]:
        """Section 7.1, `M` granted: checks the wire PUBLISH, opens it, returns (topic, properties, payload)."""
        _require_metadata(self.protect_metadata)
        check_placeholder(wire_topic, wire_properties)
        return open_inner(self.opener, qos, retain, sealed)

    def on_auth(self, *_args) -> None:
        """The broker sends no AUTH in LWA2 (section 6.1 OPEN)."""
        raise ProtocolError("AUTH from the broker after CONNACK")


class Client:
    """Section 6.1: START -> WAIT_CONNACK -> OPEN."""

    def __init__(self, identity: str, psk: bytes, client_id: str, clean_start: bool,
                 will: Optional[Will], record_limit_log2: int, ephemeral_secret: bytes,
                 protect_metadata: bool = False):
        """`protect_metadata` sets `M` in the offer (section 7.1): the broker grants it or the
        handshake fails."""
        self.psk = psk
        self.ctx = connect_context(client_id, clean_start, will)
        self.secret: Optional[bytes] = ephemeral_secret
        self.limit = record_limit_log2
        self.protect_metadata = protect_metadata
        self.offer = Offer(record_limit_log2, x25519_public(ephemeral_secret), identity, protect_metadata).encode()
        self.state = "WAIT_CONNACK"

    def on_connack(self, response: bytes, session_present: bool, method: Optional[str] = METHOD) -> ClientSession:
        """CONNACK 0x00 with `method` and Authentication Data `response`."""
        if self.state != "WAIT_CONNACK":
            raise ProtocolError("CONNACK in " + self.state)
        self.state = "CLOSED"  # unless everything below succeeds
        if method is None or response is None:
            raise _error("missing_authentication")
        if method != METHOD:
            raise _error("method_mismatch", repr(method))
        r = parse_response(response, self.limit, self.protect_metadata)
        secret, self.secret = self.secret, None  # used once, then erased
        dh = x25519(secret, r.e_b)
        th = transcript_hash(self.ctx, self.offer, r.without_mac(), session_present)
        keys = key_schedule(self.psk, dh, th)
        if not hmac.compare_digest(broker_mac(keys, th), r.broker_mac):
            raise _error("broker_auth_failed", "wrong PSK or impostor broker")
        limit = r.chosen_record_limit_log2
        self.state = "OPEN"
        return ClientSession(
            RecordChannel(C2B, keys["c2b_key"], keys["c2b_iv"], limit),
            RecordChannel(B2C, keys["b2c_key"], keys["b2c_iv"], limit),
            limit,
            client_mac(keys, th, r.broker_mac),
            r.protect_metadata,
        )


# ---------------------------------------------------------------- section 6.2


@dataclass
class BrokerSession:
    identity: str
    sealer: RecordChannel  # b2c
    opener: RecordChannel  # c2b
    chosen_record_limit_log2: int
    confirmed_by: str = ""
    protect_metadata: bool = False  # `M` granted (section 7.1)

    def seal_publish(self, topic: str, properties: bytes, qos: int, retain: bool, payload: bytes) -> bytes:
        """Section 7.1, `M` granted: a delivery's topic, properties and payload sealed as `inner`."""
        _require_metadata(self.protect_metadata)
        return seal_inner(self.sealer, topic, properties, qos, retain, payload)

    def open_publish(self, qos: int, retain: bool, sealed: bytes, wire_topic: str = PLACEHOLDER_TOPIC,
                     wire_properties: bytes = b"") -> tuple[str, bytes, bytes]:
        """Section 7.1, `M` granted: checks the wire PUBLISH, opens it, returns (topic, properties, payload)."""
        _require_metadata(self.protect_metadata)
        check_placeholder(wire_topic, wire_properties)
        return open_inner(self.opener, qos, retain, sealed)


class BrokerAwaitingConfirmation:
    """Section 6.2 AWAIT_CONFIRMATION: no MQTT state, only what verifies the confirmation.

    Exactly one packet is accepted: the finished (`on_finished`, or
    `on_auth` with its reason code and method) or the first PUBLISH
    (`on_first_record`, or `on_first_publish` under metadata protection);
    anything else is `on_other_packet`.
    """

    def __init__(self, identity: str, known: bool, expected_client_mac: bytes, session: BrokerSession):
        self.identity, self.known = identity, known
        self.protect_metadata = session.protect_metadata
        self._expected = expected_client_mac
        self._session: Optional[BrokerSession] = session

    def _take(self) -> BrokerSession:
        session, self._session = self._session, None
        if session is None:
            raise ProtocolError("the confirmation was already processed")
        return session

    def on_auth(self, reason_code: int, method: str, data: bytes) -> BrokerSession:
        if reason_code != AUTH_REAUTHENTICATE or method != METHOD:
            self._take()
            raise ProtocolError(f"AUTH 0x{reason_code:02x} with method {method!r}")
        return self.on_finished(data)

    def on_finished(self, data: bytes) -> BrokerSession:
        session = self._take()
        mac = parse_finished(data)
        ok = hmac.compare_digest(mac, self._expected)
        if not (ok and self.known):  # an unknown identity is refused even if the MAC verifies
            raise _error("client_auth_failed", "wrong PSK or unknown identity")
        session.confirmed_by = "finished"
        return session

    def on_first_record(self, topic: str, qos: int, retain: bool, sealed: bytes) -> tuple[BrokerSession, bytes]:
        """The first PUBLISH (topic alias already resolved): opens as c2b record 0 or fails as 0x87.
        Under `M`, `topic` must be the placeholder [DISCONNECT 0x82] and the plaintext is `inner`."""
        return self._first_record(topic, b"", qos, retain, sealed)

    def on_first_publish(self, qos: int, retain: bool, sealed: bytes, wire_topic: str = PLACEHOLDER_TOPIC,
                         wire_properties: bytes = b"") -> tuple[BrokerSession, tuple[str, bytes, bytes]]:
        """Section 7.1 with section 6.2: the first PUBLISH under `M`; returns the session and
        (topic, properties, payload). An `inner` that opens but does not parse is `malformed`
        (DISCONNECT 0x81), after the client was authenticated."""
        _require_metadata(self.protect_metadata)
        session, plain = self._first_record(wire_topic, wire_properties, qos, retain, sealed)
        return session, parse_inner(plain)

    def _first_record(self, topic: str, properties: bytes, qos: int, retain: bool,
                      sealed: bytes) -> tuple[BrokerSession, bytes]:
        """Section 6.2 PUBLISH path: the wire check of section 7.1 under `M`, then c2b record 0."""
        session = self._take()
        if session.protect_metadata:
            check_placeholder(topic, properties)  # before the record is opened
        try:
            plain = session.opener.open(topic, qos, retain, sealed)
        except LwaError as e:  # record_open_failed (short payloads included)
            raise _error("client_auth_failed", f"first record: {e.name}") from e
        if not self.known:
            raise _error("client_auth_failed", "unknown identity")
        session.confirmed_by = "publish"
        return session, plain

    def on_other_packet(self, kind: str) -> None:
        self._take()
        raise ProtocolError(kind + " before the confirmation")


def broker_on_connect(offer: bytes, client_id: str, clean_start: bool, will: Optional[Will],
                      session_present: bool, psk_lookup: Callable[[str], Optional[bytes]],
                      broker_limit_log2: int, random_bytes: Callable[[int], bytes],
                      method: Optional[str] = METHOD,
                      supports_metadata_protection: bool = True) -> tuple[BrokerAwaitingConfirmation, bytes]:
    """Section 6.2 IDLE (LWA.md 6.2 steps 1-7): returns the pending state and the response.

    Metadata protection (section 7.1) is granted exactly when the offer asks for it: the
    response echoes the offer's `M`. `supports_metadata_protection=False` models a broker
    without section 7.1, which refuses an offer with `M` as `malformed`.
    """
    if method != METHOD:
        raise _error("method_mismatch", repr(method))
    if offer is None:
        raise _error("malformed", "no Authentication Data")
    o = parse_offer(offer)
    if o.protect_metadata and not supports_metadata_protection:
        # Section 7.1: to a broker without it, bits 0-6 alone are the limit (here above 48).
        raise _error("malformed", "M set: metadata protection not implemented")
    ctx = connect_context(client_id, clean_start, will)
    secret = random_bytes(32)
    e_b = x25519_public(secret)
    dh = x25519(secret, o.e_c)
    psk = psk_lookup(o.identity)
    known = psk is not None
    if not known:
        psk = random_bytes(32)  # dummy PSK: the same work and messages as a known identity
    chosen = min(o.record_limit_log2, broker_limit_log2)
    m = o.protect_metadata  # granted exactly when asked for
    rwm = Response(chosen, e_b, b"", m).without_mac()
    th = transcript_hash(ctx, offer, rwm, session_present)
    keys = key_schedule(psk, dh, th)
    b_mac = broker_mac(keys, th)
    session = BrokerSession(
        o.identity,
        RecordChannel(B2C, keys["b2c_key"], keys["b2c_iv"], chosen),
        RecordChannel(C2B, keys["c2b_key"], keys["c2b_iv"], chosen),
        chosen,
        protect_metadata=m,
    )
    return BrokerAwaitingConfirmation(o.identity, known, client_mac(keys, th, b_mac), session), rwm + b_mac
