#!/usr/bin/env python3
"""Reproduces every LWA2 test vector with the independent Python implementation.

Run: python3 tests/python/test_lwa2_vectors.py   (exit code 0 = all vectors reproduced)
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lwa2_ref as lwa2  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "protocol-spec", "test-vectors")

# Section 13: the broker's dummy PSK for an unknown identity in lwa2-invalid.json.
DUMMY_PSK = bytes([0x77]) * 32
STAGES = {"broker_respond", "client_response", "broker_finished", "broker_first_record"}


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def unh(s):
    return bytes.fromhex(s)


def will_of(inputs):
    w = inputs["will"]
    if w is None:
        return None
    return lwa2.Will(w["topic"], w["qos"], w["retain"], unh(w["payload"]))


class ByteSource:
    """Hands out exactly the given bytes, as the vectors' fixed randomness."""

    def __init__(self, *parts):
        self.data = b"".join(parts)

    def __call__(self, n):
        if len(self.data) < n:
            raise AssertionError("vector randomness exhausted")
        out, self.data = self.data[:n], self.data[n:]
        return out


def lookup_from(table):
    return lambda identity: unh(table[identity]) if identity in table else None


def new_client(inputs, psk=None):
    """The client of `inputs`; `protect_metadata` (lwa2-metadata.json) sets `M` in its offer."""
    return lwa2.Client(inputs["identity"], psk if psk is not None else unh(inputs["psk"]), inputs["client_id"],
                       inputs["clean_start"], will_of(inputs), inputs["client_record_limit_log2"],
                       unh(inputs["client_ephemeral_secret"]), inputs.get("protect_metadata", False))


def broker_respond(inputs, offer, psks, *randomness):
    """The broker answers `offer`; checks that it drew exactly `randomness`."""
    rng = ByteSource(unh(inputs["broker_ephemeral_secret"]), *randomness)
    pending, response = lwa2.broker_on_connect(
        offer, inputs["client_id"], inputs["clean_start"], will_of(inputs), inputs["session_present"],
        lookup_from(psks), inputs["broker_record_limit_log2"], rng)
    assert rng.data == b"", "the broker must draw e_b (and the dummy PSK for an unknown identity) only"
    return pending, response


def run_handshake(inputs):
    """Client and broker up to the broker's AWAIT_CONFIRMATION and the client's OPEN."""
    client = new_client(inputs)
    pending, response = broker_respond(inputs, client.offer, {inputs["identity"]: inputs["psk"]})
    client_session = client.on_connack(response, inputs["session_present"])
    return client, pending, response, client_session


def check_records(test, records, cs, bs):
    """Seals every record in session order with one side and opens it with the other."""
    for r in records:
        sealer, opener = (cs.sealer, bs.opener) if r["direction"] == "c2b" else (bs.sealer, cs.opener)
        test.assertEqual(sealer.counter, r["counter"])
        test.assertEqual(opener.counter, r["counter"])
        plain = unh(r["plaintext"])
        sealed = sealer.seal(r["topic"], r["qos"], r["retain"], plain)
        test.assertEqual(sealed.hex(), r["sealed"])
        test.assertEqual(len(sealed), len(plain) + 16)
        test.assertEqual(opener.open(r["topic"], r["qos"], r["retain"], sealed), plain)
        test.assertEqual(lwa2.record_nonce(unh(r["iv"]), r["counter"]).hex(), r["nonce"])
        test.assertEqual(lwa2.record_aad(lwa2.DIRECTIONS[r["direction"]], r["counter"], r["qos"],
                                         r["retain"], r["topic"]).hex(), r["aad"])


def metadata_of(record):
    """(topic, properties, payload) of an lwa2-metadata.json record: what its `inner` encodes."""
    md = record["metadata"]
    return md["topic"], unh(md["properties"]), unh(md["payload"])


def check_metadata_publishes(test, records, cs, bs):
    """Section 7.1: every record sent with `seal_publish` and received with `open_publish`, in session order."""
    for r in records:
        sender, receiver = (cs, bs) if r["direction"] == "c2b" else (bs, cs)
        test.assertEqual(sender.sealer.counter, r["counter"])
        test.assertEqual(receiver.opener.counter, r["counter"])
        topic, properties, payload = metadata_of(r)
        sealed = sender.seal_publish(topic, properties, r["qos"], r["retain"], payload)
        test.assertEqual(sealed.hex(), r["sealed"])
        test.assertEqual(receiver.open_publish(r["qos"], r["retain"], sealed), (topic, properties, payload))


class Primitives(unittest.TestCase):
    def test_blake3_modes_official_vectors(self):
        # BLAKE3's own test_vectors.json, input length 0: keyed_hash and derive_key.
        self.assertEqual(lwa2.keyed(b"whats the Elvish word for friend", b"").hex(),
                         "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26")
        self.assertEqual(lwa2.derive_key("BLAKE3 2019-12-27 16:29:52 test vectors context", b"").hex(),
                         "2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d")
        # Section 3: truncation equals the N-byte XOF output.
        k = bytes(range(32))
        self.assertEqual(lwa2.keyed(k, b"m", 12), lwa2.blake3.blake3(b"m", key=k).digest(length=12))

    def test_rfc7748_anchor_and_low_order_rejection(self):
        v = load("lwa2-handshake.json")["vectors"][0]
        self.assertEqual(
            lwa2.x25519(unh(v["inputs"]["client_ephemeral_secret"]), unh(v["intermediate"]["broker_ephemeral_public"])).hex(),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        with self.assertRaises(lwa2.LwaError) as e:
            lwa2.x25519(bytes(range(32)), bytes(32))
        self.assertEqual(e.exception.name, "low_order_point")


def check_handshake_vector(test, v):
    """Runs vector `v`'s handshake and records; checks every message and intermediate value.

    `M` (sections 4.1, 4.2) is `inputs.protect_metadata`, false where absent
    (lwa2-handshake.json): then the first byte of offer and response is the limit alone.
    """
    i, m, im = v["inputs"], v["messages"], v["intermediate"]
    protect = i.get("protect_metadata", False)
    flag = lwa2.METADATA_FLAG if protect else 0
    client, pending, response, cs = run_handshake(i)
    finished = cs.finished()
    test.assertEqual(pending.protect_metadata, protect)
    bs = pending.on_finished(finished)
    test.assertEqual(bs.confirmed_by, "finished")
    test.assertEqual(bs.identity, i["identity"])
    test.assertEqual((cs.protect_metadata, bs.protect_metadata), (protect, protect))  # granted exactly when asked
    test.assertEqual(client.offer.hex(), m["offer"])
    test.assertEqual(response.hex(), m["response"])
    test.assertEqual(finished.hex(), m["finished"])
    test.assertEqual(len(client.offer), 33 + len(i["identity"].encode()))
    test.assertEqual(len(response), 49)
    test.assertEqual(len(finished), lwa2.CLIENT_MAC_LEN)
    test.assertEqual(client.offer[0], flag | i["client_record_limit_log2"])

    # The messages parse back into the fields they were built from.
    o = lwa2.parse_offer(client.offer)
    test.assertEqual((o.record_limit_log2, o.e_c.hex(), o.identity, o.protect_metadata),
                     (i["client_record_limit_log2"], im["client_ephemeral_public"], i["identity"], protect))
    r = lwa2.parse_response(response, i["client_record_limit_log2"], protect)
    test.assertEqual((r.chosen_record_limit_log2, r.e_b.hex(), r.broker_mac.hex(), r.protect_metadata),
                     (im["chosen_record_limit_log2"], im["broker_ephemeral_public"], im["broker_mac"], protect))

    # Intermediate values recomputed step by step from the spec.
    c_sec, b_sec = unh(i["client_ephemeral_secret"]), unh(i["broker_ephemeral_secret"])
    test.assertEqual(lwa2.x25519_public(c_sec).hex(), im["client_ephemeral_public"])
    test.assertEqual(lwa2.x25519_public(b_sec).hex(), im["broker_ephemeral_public"])
    dh = lwa2.x25519(c_sec, lwa2.x25519_public(b_sec))
    test.assertEqual(dh, lwa2.x25519(b_sec, lwa2.x25519_public(c_sec)))
    test.assertEqual(dh.hex(), im["dh"])
    ctx = lwa2.connect_context(i["client_id"], i["clean_start"], will_of(i))
    test.assertEqual(ctx.hex(), im["connect_context"])
    rwm = response[:33]
    test.assertEqual(rwm.hex(), im["response_without_mac"])
    test.assertEqual(rwm[0], flag | im["chosen_record_limit_log2"])  # M is in the transcript
    test.assertEqual(im["chosen_record_limit_log2"],
                     min(i["client_record_limit_log2"], i["broker_record_limit_log2"]))
    tin = lwa2.transcript_input(ctx, client.offer, rwm, i["session_present"])
    test.assertEqual(tin.hex(), im["transcript_input"])
    th = lwa2.transcript_hash(ctx, client.offer, rwm, i["session_present"])
    test.assertEqual(th.hex(), im["th"])
    test.assertEqual(th, lwa2.blake3.blake3(tin, derive_key_context=lwa2.TRANSCRIPT_CONTEXT).digest())
    keys = lwa2.key_schedule(unh(i["psk"]), dh, th)
    for name in ["prk", "c2b_key", "c2b_iv", "b2c_key", "b2c_iv", "broker_mac_key", "client_mac_key"]:
        test.assertEqual(keys[name].hex(), im[name], name)
    b_mac = lwa2.broker_mac(keys, th)
    test.assertEqual(b_mac.hex(), im["broker_mac"])
    test.assertEqual(lwa2.client_mac(keys, th, b_mac).hex(), im["client_mac"])

    # Records in session order, opened by the peer, under the vector's keys.
    for rec in v["records"]:
        test.assertEqual(rec["key"], im[rec["direction"] + "_key"])
        test.assertEqual(rec["iv"], im[rec["direction"] + "_iv"])
        test.assertEqual(rec["record_limit_log2"], im["chosen_record_limit_log2"])
    check_records(test, v["records"], cs, bs)


class HandshakeVectors(unittest.TestCase):
    def test_every_handshake_value(self):
        doc = load("lwa2-handshake.json")
        self.assertEqual(doc["lwa_version"], 2)
        vectors = doc["vectors"]
        self.assertGreaterEqual(len(vectors), 4)
        for v in vectors:
            with self.subTest(v["name"]):
                self.assertNotIn("protect_metadata", v["inputs"])
                check_handshake_vector(self, v)

    def test_publish_path_confirmation(self):
        """Section 6.2: c2b record 0 confirms the client; the session continues at counter 1."""
        for v in load("lwa2-handshake.json")["vectors"]:
            with self.subTest(v["name"]):
                records = v["records"]
                first = records[0]
                self.assertEqual((first["direction"], first["counter"]), ("c2b", 0))
                _, pending, _, cs = run_handshake(v["inputs"])
                sealed = cs.seal(first["topic"], first["qos"], first["retain"], unh(first["plaintext"]))
                self.assertEqual(sealed.hex(), first["sealed"])
                self.assertEqual(cs.confirmed_by, "publish")
                self.assertIsNone(cs.before_other_packet())  # no finished after a sealed PUBLISH
                bs, plain = pending.on_first_record(first["topic"], first["qos"], first["retain"], sealed)
                self.assertEqual(plain.hex(), first["plaintext"])
                self.assertEqual(bs.confirmed_by, "publish")
                self.assertEqual(bs.opener.counter, 1)
                check_records(self, records[1:], cs, bs)


class MetadataVectors(unittest.TestCase):
    """lwa2-metadata.json (section 13): handshakes with `M`, records whose plaintext is `inner`."""

    def setUp(self):
        doc = load("lwa2-metadata.json")  # a missing file is an error, not a skip
        self.assertEqual(doc["lwa_version"], 2)
        self.vectors = doc["vectors"]
        self.assertGreaterEqual(len(self.vectors), 1)

    def test_every_metadata_vector(self):
        """Sections 4.1, 4.2, 7.1: `M` in both first bytes, every handshake value, and each
        record's plaintext the `inner` of its `metadata`, sealed under the placeholder topic."""
        for v in self.vectors:
            with self.subTest(v["name"]):
                i, m = v["inputs"], v["messages"]
                self.assertIs(i["protect_metadata"], True)
                self.assertEqual(unh(m["offer"])[0] & lwa2.METADATA_FLAG, lwa2.METADATA_FLAG)
                self.assertEqual(unh(m["response"])[0] & lwa2.METADATA_FLAG, lwa2.METADATA_FLAG)
                self.assertGreaterEqual(len(v["records"]), 1)
                for rec in v["records"]:
                    self.assertEqual(rec["topic"], lwa2.PLACEHOLDER_TOPIC)
                    inner = unh(rec["plaintext"])
                    self.assertEqual(lwa2.encode_inner(*metadata_of(rec)), inner)
                    self.assertEqual(lwa2.parse_inner(inner), metadata_of(rec))
                check_handshake_vector(self, v)  # records sealed and opened as plain records: `inner` back

    def test_records_through_the_metadata_helpers(self):
        """The sessions' `seal_publish`/`open_publish` reproduce every sealed record from its metadata."""
        for v in self.vectors:
            with self.subTest(v["name"]):
                _, pending, _, cs = run_handshake(v["inputs"])
                bs = pending.on_finished(cs.finished())
                check_metadata_publishes(self, v["records"], cs, bs)

    def test_publish_path_confirmation(self):
        """Section 6.2 with `M`: c2b record 0 (Topic Name "L", `inner` inside) confirms the client."""
        for v in self.vectors:
            records = v["records"]
            first = records[0]
            self.assertEqual((first["direction"], first["counter"]), ("c2b", 0))
            with self.subTest(v["name"], path="record"):
                _, pending, _, cs = run_handshake(v["inputs"])
                sealed = cs.seal(lwa2.PLACEHOLDER_TOPIC, first["qos"], first["retain"], unh(first["plaintext"]))
                self.assertEqual(sealed.hex(), first["sealed"])
                self.assertEqual(cs.confirmed_by, "publish")
                bs, plain = pending.on_first_record(first["topic"], first["qos"], first["retain"], sealed)
                self.assertEqual(plain.hex(), first["plaintext"])
                self.assertEqual((bs.confirmed_by, bs.opener.counter), ("publish", 1))
                check_records(self, records[1:], cs, bs)
            with self.subTest(v["name"], path="publish"):
                _, pending, _, cs = run_handshake(v["inputs"])
                topic, properties, payload = metadata_of(first)
                sealed = cs.seal_publish(topic, properties, first["qos"], first["retain"], payload)
                self.assertEqual(sealed.hex(), first["sealed"])
                self.assertEqual(cs.confirmed_by, "publish")
                self.assertIsNone(cs.before_other_packet())  # no finished after a sealed PUBLISH
                bs, md = pending.on_first_publish(first["qos"], first["retain"], sealed)
                self.assertEqual(md, (topic, properties, payload))
                self.assertEqual((bs.confirmed_by, bs.opener.counter), ("publish", 1))
                check_metadata_publishes(self, records[1:], cs, bs)


def run_invalid(case, handshake):
    """Runs one lwa2-invalid.json case; returns the LwaError raised (None if accepted)."""
    stage, i = case["stage"], case["inputs"]
    honest = handshake["messages"]
    try:
        if stage == "broker_respond":
            broker_respond(i, unh(case["offer"]), case["psks"])
        elif stage == "client_response":
            client = new_client(i)
            assert client.offer.hex() == case["offer"], case["name"] + ": offer differs"
            client.on_connack(unh(case["response"]), i["session_present"])
        elif stage in ("broker_finished", "broker_first_record"):
            known = i["identity"] in case["psks"]
            pending, response = broker_respond(i, unh(case["offer"]), case["psks"], b"" if known else DUMMY_PSK)
            assert known == (response.hex() == honest["response"]), case["name"] + ": response"
            if stage == "broker_finished":
                pending.on_finished(unh(case["finished"]))
            else:
                r = case["record"]
                pending.on_first_record(r["topic"], r["qos"], r["retain"], unh(r["sealed"]))
        else:
            raise AssertionError("unknown stage " + stage)
    except lwa2.LwaError as e:
        return e
    return None


class KeyUpdateVectors(unittest.TestCase):
    def test_every_key_update_value(self):
        """Section 8.2: u_0 from the handshake's keys, each generation from the one
        before, both MACs from the record counts, and record 0 under the new keys."""
        doc = load("lwa2-key-update.json")
        handshakes = {v["name"]: v for v in load("lwa2-handshake.json")["vectors"]}
        self.assertEqual(doc["lwa_version"], 2)
        self.assertEqual(len(doc["vectors"]), 2)
        for v in doc["vectors"]:
            hs = handshakes[v["handshake"]]
            i = hs["intermediate"]
            keys = lwa2.key_schedule(unh(hs["inputs"]["psk"]), unh(i["dh"]), unh(i["th"]))
            self.assertEqual(keys["prk"].hex(), v["prk"])
            previous = lwa2.update_secret(keys["prk"])
            self.assertEqual(previous.hex(), v["update_secret"])
            self.assertEqual(v["record_limit_log2"], i["chosen_record_limit_log2"])
            for g, u in enumerate(v["updates"], start=1):
                self.assertEqual(u["generation"], g)
                self.assertEqual(u["previous_secret"], previous.hex())
                gen = lwa2.generation(previous, g)
                for name in ("secret", "mac_key", "c2b_key", "c2b_iv", "b2c_key", "b2c_iv"):
                    self.assertEqual(gen[name].hex(), u[name], f"{v['handshake']} generation {g} {name}")
                request = lwa2.update_request(gen["mac_key"], g, u["c2b_records"])
                self.assertEqual(request.hex(), u["request"])
                self.assertEqual(lwa2.update_response(gen["mac_key"], g, u["b2c_records"], request).hex(),
                                 u["response"])
                # The MACs bind the counts: one record more or less on either side fails.
                self.assertNotEqual(lwa2.update_request(gen["mac_key"], g, u["c2b_records"] + 1).hex(), u["request"])
                self.assertNotEqual(
                    lwa2.update_response(gen["mac_key"], g, u["b2c_records"] + 1, request).hex(), u["response"])
                for r in u["records"]:
                    d = r["direction"]
                    self.assertEqual((r["key"], r["iv"], r["counter"]), (u[f"{d}_key"], u[f"{d}_iv"], 0))
                    sealer = lwa2.RecordChannel(lwa2.DIRECTIONS[d], gen[f"{d}_key"], gen[f"{d}_iv"],
                                                v["record_limit_log2"])
                    opener = lwa2.RecordChannel(lwa2.DIRECTIONS[d], gen[f"{d}_key"], gen[f"{d}_iv"],
                                                v["record_limit_log2"])
                    plain = unh(r["plaintext"])
                    sealed = sealer.seal(r["topic"], r["qos"], r["retain"], plain)
                    self.assertEqual(sealed.hex(), r["sealed"])
                    self.assertEqual(opener.open(r["topic"], r["qos"], r["retain"], sealed), plain)
                previous = gen["secret"]


class InvalidVectors(unittest.TestCase):
    def test_every_invalid_case_is_rejected(self):
        doc = load("lwa2-invalid.json")
        self.assertEqual(doc["lwa_version"], 2)
        cases = doc["cases"]
        handshake = load("lwa2-handshake.json")["vectors"][0]
        self.assertGreaterEqual(len(cases), 30)
        self.assertEqual({c["stage"] for c in cases}, STAGES)
        for c in cases:
            with self.subTest(c["name"]):
                err = run_invalid(c, handshake)
                self.assertIsNotNone(err, c["name"] + " was accepted")
                self.assertEqual(err.name, c["expected_error"], str(err))
                self.assertEqual(err.reason_code, c["reason_code"])

    def test_dummy_psk_case_is_refused_only_for_the_unknown_identity(self):
        """finished-dummy-psk verifies once the broker holds pattern(0x77) for the identity."""
        case = next(c for c in load("lwa2-invalid.json")["cases"] if c["name"] == "finished-dummy-psk")
        i = case["inputs"]
        pending, _ = broker_respond(i, unh(case["offer"]), {i["identity"]: DUMMY_PSK.hex()})
        self.assertTrue(pending.known)
        pending.on_finished(unh(case["finished"]))  # raises if the MAC does not verify

    def test_reason_code_table_matches_vectors(self):
        self.assertNotIn("unsupported_version", lwa2.REASON_CODES)
        for c in load("lwa2-invalid.json")["cases"]:
            self.assertEqual(lwa2.REASON_CODES[c["expected_error"]], c["reason_code"], c["name"])

    def test_invalid_cases_are_one_change_to_the_first_vector(self):
        """Each invalid case's unchanged messages are the first vector's, so it tests one change."""
        v = load("lwa2-handshake.json")["vectors"][0]
        m = v["messages"]
        for c in load("lwa2-invalid.json")["cases"]:
            with self.subTest(c["name"]):
                if c["stage"] != "broker_respond":
                    self.assertEqual(c["offer"], m["offer"])
                if c["stage"] in ("broker_finished", "broker_first_record"):
                    self.assertEqual(c["inputs"], v["inputs"])
                if c["stage"] == "broker_first_record":
                    self.assertIn(c["record"]["topic"], {rec["topic"] for rec in v["records"]} | {"other/topic"})


class StateMachines(unittest.TestCase):
    def setUp(self):
        self.v = load("lwa2-handshake.json")["vectors"][0]
        self.i = self.v["inputs"]

    def test_unknown_identity_refused_even_if_the_check_passes(self):
        """Section 6.2: the client here holds exactly the broker's dummy PSK, so both checks pass."""
        first = self.v["records"][0]
        for path in ("finished", "publish"):
            with self.subTest(path):
                client = new_client(self.i, psk=DUMMY_PSK)
                pending, response = broker_respond(self.i, client.offer, {}, DUMMY_PSK)
                cs = client.on_connack(response, self.i["session_present"])  # the broker_mac verifies
                self.assertFalse(pending.known)
                with self.assertRaises(lwa2.LwaError) as e:
                    if path == "finished":
                        pending.on_finished(cs.finished())
                    else:
                        sealed = cs.seal(first["topic"], first["qos"], first["retain"], unh(first["plaintext"]))
                        pending.on_first_record(first["topic"], first["qos"], first["retain"], sealed)
                self.assertEqual((e.exception.name, e.exception.reason_code), ("client_auth_failed", 0x87))
                self.assertEqual(e.exception.disconnect_reason_code, 0x87)

    def test_broker_accepts_exactly_one_confirmation_packet(self):
        _, pending, _, cs = run_handshake(self.i)
        finished = cs.finished()
        with self.assertRaises(lwa2.ProtocolError):
            cs.finished()  # one confirmation only
        for other in (lambda p: p.on_other_packet("SUBSCRIBE"),
                      lambda p: p.on_auth(lwa2.AUTH_REAUTHENTICATE, "LWA1", finished),
                      lambda p: p.on_auth(lwa2.AUTH_CONTINUE, lwa2.METHOD, finished)):
            _, p, _, _ = run_handshake(self.i)
            with self.assertRaises(lwa2.ProtocolError) as e:
                other(p)
            self.assertEqual(e.exception.disconnect_reason_code, 0x82)
        bs = pending.on_auth(lwa2.AUTH_REAUTHENTICATE, lwa2.METHOD, finished)
        self.assertEqual(bs.confirmed_by, "finished")
        with self.assertRaises(lwa2.ProtocolError):
            pending.on_finished(finished)  # the state is consumed

    def test_malformed_finished_is_disconnect_0x82(self):
        _, pending, _, _ = run_handshake(self.i)
        with self.assertRaises(lwa2.LwaError) as e:
            pending.on_finished(bytes(lwa2.CLIENT_MAC_LEN + 1))
        self.assertEqual((e.exception.name, e.exception.reason_code, e.exception.disconnect_reason_code),
                         ("malformed", 0x8C, 0x82))

    def test_client_sends_finished_before_a_non_publish_and_refuses_broker_auth(self):
        _, pending, _, cs = run_handshake(self.i)
        finished = cs.before_other_packet()  # e.g. a SUBSCRIBE is next
        self.assertEqual(finished.hex(), self.v["messages"]["finished"])
        self.assertIsNone(cs.before_other_packet())
        self.assertEqual(cs.confirmed_by, "finished")
        pending.on_finished(finished)
        with self.assertRaises(lwa2.ProtocolError) as e:
            cs.on_auth(lwa2.AUTH_CONTINUE, lwa2.METHOD)
        self.assertEqual(e.exception.disconnect_reason_code, 0x82)

    def test_client_refuses_connack_without_l2(self):
        response = unh(self.v["messages"]["response"])
        for method, data, name in ((None, response, "missing_authentication"), ("L2", None, "missing_authentication"),
                                   ("LWA1", response, "method_mismatch")):
            with self.subTest(method=method):
                with self.assertRaises(lwa2.LwaError) as e:
                    new_client(self.i).on_connack(data, self.i["session_present"], method)
                self.assertEqual(e.exception.name, name)
        client = new_client(self.i)
        client.on_connack(response, self.i["session_present"])
        self.assertIsNone(client.secret)  # e_c_secret erased
        with self.assertRaises(lwa2.ProtocolError):
            client.on_connack(response, self.i["session_present"])

    def test_broker_refuses_other_method(self):
        with self.assertRaises(lwa2.LwaError) as e:
            lwa2.broker_on_connect(unh(self.v["messages"]["offer"]), "c", True, None, False, lambda _: None, 16,
                                   ByteSource(), method="LWA1")
        self.assertEqual((e.exception.name, e.exception.reason_code), ("method_mismatch", 0x8C))


class Parsing(unittest.TestCase):
    def test_length_bounds(self):
        e_c = bytes(range(32))
        for n in (1, 9, 255):
            o = lwa2.Offer(lwa2.MIN_LIMIT, e_c, "x" * n).encode()
            self.assertEqual(len(o), 33 + n)
            p = lwa2.parse_offer(o)
            self.assertEqual((p.record_limit_log2, p.e_c, p.identity), (1, e_c, "x" * n))
        for data in (b"", bytes(32), bytes([20]) + e_c, bytes([20]) + e_c + b"x" * 256):
            with self.assertRaises(lwa2.LwaError) as e:
                lwa2.parse_offer(data)
            self.assertEqual(e.exception.name, "malformed")
        r = bytes([lwa2.MAX_LIMIT]) + bytes(48)
        self.assertEqual(lwa2.parse_response(r, 48).chosen_record_limit_log2, 48)
        for data in (r[:-1], r + b"\0", bytes([0]) + r[1:], bytes([49]) + r[1:]):
            with self.assertRaises(lwa2.LwaError) as e:
                lwa2.parse_response(data)
            self.assertEqual(e.exception.name, "malformed")
        with self.assertRaises(lwa2.LwaError):
            lwa2.parse_response(r, 47)  # chosen above offered
        self.assertEqual(lwa2.parse_finished(bytes(lwa2.CLIENT_MAC_LEN)), bytes(lwa2.CLIENT_MAC_LEN))
        for n in (0, lwa2.CLIENT_MAC_LEN - 1, lwa2.CLIENT_MAC_LEN + 1, 32):
            with self.assertRaises(lwa2.LwaError):
                lwa2.parse_finished(bytes(n))

    def test_identity_utf8_rules(self):
        e_c = bytes(32)
        self.assertEqual(lwa2.parse_offer(b"\x14" + e_c + "é温".encode()).identity, "é温")
        # Not UTF-8, NUL, an encoded surrogate, an overlong encoding.
        for ident in (b"\xff", b"a\x00b", b"\xed\xa0\x80", b"\xc0\xaf"):
            with self.assertRaises(lwa2.LwaError) as e:
                lwa2.parse_offer(b"\x14" + e_c + ident)
            self.assertEqual(e.exception.name, "malformed")


class MetadataProtection(unittest.TestCase):
    """Section 7.1 and the `M` bit of sections 4.1, 4.2 and 4.4, without lwa2-metadata.json."""

    def setUp(self):
        self.v = load("lwa2-handshake.json")["vectors"][0]
        self.i = self.v["inputs"]
        self.im = dict(self.i, protect_metadata=True)
        self.psks = {self.i["identity"]: self.i["psk"]}

    def assertMalformedInner(self, data):
        with self.assertRaises(lwa2.LwaError) as e:
            lwa2.parse_inner(data)
        self.assertEqual((e.exception.name, e.exception.reason_code, e.exception.disconnect_reason_code),
                         ("malformed", 0x8C, 0x81), data.hex())
        self.assertIn("protected metadata", str(e.exception))

    def test_inner_layout_and_round_trip(self):
        # What MQTT 5 puts after a QoS 0 PUBLISH's fixed header: lp(topic) | vbi(n) | properties | payload.
        self.assertEqual(lwa2.encode_inner("a/b", b"\x01\x01", b"hi"), b"\x00\x03a/b\x02\x01\x01hi")
        self.assertEqual(lwa2.encode_inner("t", b"", b""), b"\x00\x01t\x00")
        self.assertEqual(lwa2.parse_inner(b"\x00\x01t\x00"), ("t", b"", b""))
        # A wildcard parses: it is MQTT's rule (0x90), not the layout's.
        self.assertEqual(lwa2.parse_inner(b"\x00\x03a/#\x00x"), ("a/#", b"", b"x"))
        for n, vbi in ((0, "00"), (127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"),
                       (2097151, "ffff7f"), (2097152, "80808001"), (268435455, "ffffff7f")):
            self.assertEqual(lwa2.encode_vbi(n).hex(), vbi)
        for n in (0, 1, 127, 128, 16383, 16384, 2097152):
            properties = bytes([0x26]) * n
            inner = lwa2.encode_inner("é/温", properties, b"\x00\x02pp")
            self.assertEqual(len(inner), 2 + 6 + len(lwa2.encode_vbi(n)) + n + 4)
            self.assertEqual(lwa2.parse_inner(inner), ("é/温", properties, b"\x00\x02pp"))
        self.assertEqual(lwa2.parse_inner(lwa2.encode_inner("x" * 65535, b"", b"p"))[0], "x" * 65535)
        for bad in (lambda: lwa2.encode_vbi(268435456), lambda: lwa2.encode_vbi(-1),
                    lambda: lwa2.encode_inner("", b"", b""), lambda: lwa2.encode_inner("x" * 65536, b"", b"")):
            with self.assertRaises(ValueError):
                bad()

    def test_parse_inner_malformed(self):
        for data in (
            b"", b"\x00",  # truncated topic length
            b"\x00\x00\x00", b"\x00\x00",  # empty topic
            b"\x00\x03ab", b"\x00\x01",  # truncated topic
            b"\x00\x01\xff\x00", b"\x00\x03\xed\xa0\x80\x00", b"\x00\x02\xc0\xaf\x00",  # not UTF-8
            b"\x00\x01t", b"\x00\x01t\x80", b"\x00\x01t\xff\xff\xff",  # truncated property length
            b"\x00\x01t\x80\x00", b"\x00\x01t\x81\x00x", b"\x00\x01t\x80\x80\x80\x00",  # not shortest
            b"\x00\x01t\x80\x80\x80\x80\x00", b"\x00\x01t\xff\xff\xff\xff\x7f",  # over 4 bytes
            b"\x00\x01t\x02\x01", b"\x00\x01t\x80\x01" + bytes(127),  # truncated properties
        ):
            self.assertMalformedInner(data)

    def test_first_byte_carries_m(self):
        """Sections 4.1, 4.2, 4.4: bit 7 is `M`, bits 0-6 the limit (1..=48)."""
        e_c = bytes(range(32))
        offer = lwa2.Offer(20, e_c, "id", True).encode()
        self.assertEqual(offer[0], 0x94)
        o = lwa2.parse_offer(offer)
        self.assertEqual((o.protect_metadata, o.record_limit_log2), (True, 20))
        self.assertEqual(lwa2.Offer(20, e_c, "id").encode()[0], 20)
        self.assertFalse(lwa2.parse_offer(bytes([20]) + e_c + b"id").protect_metadata)
        response = bytes([0x80 | 48]) + bytes(48)
        r = lwa2.parse_response(response, 48, True)
        self.assertEqual((r.protect_metadata, r.chosen_record_limit_log2), (True, 48))
        self.assertEqual(r.encode(), response)
        self.assertEqual(lwa2.Response(16, bytes(32), bytes(16), True).without_mac()[0], 0x90)
        for first in (0x80, 0x80 | 49, 0xFF, 0x7F):
            for parse, data in ((lwa2.parse_offer, bytes([first]) + e_c + b"id"),
                                (lwa2.parse_response, bytes([first]) + bytes(48))):
                with self.assertRaises(lwa2.LwaError) as e:
                    parse(data)
                self.assertEqual(e.exception.name, "malformed", f"{parse.__name__} 0x{first:02x}")

    def test_broker_echoes_m(self):
        """Section 7.1: granted exactly when asked for; `M` is in response_without_mac, hence TH."""
        responses = {}
        for protect in (False, True):
            with self.subTest(protect=protect):
                i = dict(self.i, protect_metadata=protect)
                client = new_client(i)
                self.assertEqual(client.offer[0], (0x80 if protect else 0) | i["client_record_limit_log2"])
                pending, response = broker_respond(i, client.offer, self.psks)
                chosen = self.v["intermediate"]["chosen_record_limit_log2"]
                self.assertEqual(response[0], (0x80 if protect else 0) | chosen)
                self.assertEqual(pending.protect_metadata, protect)
                cs = client.on_connack(response, i["session_present"])
                self.assertEqual(cs.protect_metadata, protect)
                self.assertEqual(pending.on_finished(cs.finished()).protect_metadata, protect)
                responses[protect] = response
        self.assertEqual(responses[False].hex(), self.v["messages"]["response"])  # M = 0: as before the bit
        self.assertEqual(responses[True][1:33], responses[False][1:33])  # same e_b
        self.assertNotEqual(responses[True][33:], responses[False][33:])  # another TH, another broker_mac
        # A broker without section 7.1 reads the first byte as the limit: an offer with M is malformed.
        offer_m = new_client(self.im).offer
        with self.assertRaises(lwa2.LwaError) as e:
            lwa2.broker_on_connect(offer_m, self.i["client_id"], self.i["clean_start"], None, False,
                                   lookup_from(self.psks), 16, ByteSource(), supports_metadata_protection=False)
        self.assertEqual((e.exception.name, e.exception.reason_code), ("malformed", 0x8C))

    def test_client_refuses_m_differing_from_offer(self):
        """Section 4.4 rule 3: the response's `M` must equal the offer's [`malformed`]; and since
        `M` is in TH, stripping it from the offer and restoring it in the response fails broker_mac."""
        for protect in (False, True):
            with self.subTest(protect=protect):
                i = dict(self.i, protect_metadata=protect)
                _, response = broker_respond(i, new_client(i).offer, self.psks)
                flipped = bytes([response[0] ^ lwa2.METADATA_FLAG]) + response[1:]
                client = new_client(i)
                with self.assertRaises(lwa2.LwaError) as e:
                    client.on_connack(flipped, i["session_present"])
                self.assertEqual((e.exception.name, e.exception.reason_code, e.exception.disconnect_reason_code),
                                 ("malformed", 0x8C, 0x82))
                self.assertEqual(client.state, "CLOSED")
        client = new_client(self.im)
        stripped = bytes([client.offer[0] & lwa2.LIMIT_MASK]) + client.offer[1:]
        self.assertEqual(stripped.hex(), self.v["messages"]["offer"])
        _, response = broker_respond(self.i, stripped, self.psks)
        with self.assertRaises(lwa2.LwaError) as e:
            client.on_connack(response, self.i["session_present"])  # M not granted
        self.assertEqual(e.exception.name, "malformed")
        restored = bytes([response[0] | lwa2.METADATA_FLAG]) + response[1:]
        with self.assertRaises(lwa2.LwaError) as e:
            new_client(self.im).on_connack(restored, self.i["session_present"])
        self.assertEqual(e.exception.name, "broker_auth_failed")

    def test_sessions_check_placeholder_and_inner(self):
        """Section 7.1: Topic Name "L" and no property on the wire [0x82] before opening; an
        `inner` that opens but does not parse is `malformed` [0x81] and has used its counter."""
        _, pending, _, cs = run_handshake(self.i)  # no M: no metadata helpers
        with self.assertRaises(ValueError):
            cs.seal_publish("a/b", b"", 0, False, b"x")
        with self.assertRaises(ValueError):
            pending.on_first_publish(0, False, bytes(16))
        for wire_topic, wire_properties in (("a/b", b""), ("", b""), ("L", b"\x23\x00\x01")):
            with self.subTest(wire_topic=wire_topic, wire_properties=wire_properties):
                _, pending, _, cs = run_handshake(self.im)
                sealed = cs.seal_publish("a/b", b"", 1, False, b"x")
                with self.assertRaises(lwa2.ProtocolError) as e:
                    pending.on_first_publish(1, False, sealed, wire_topic, wire_properties)
                self.assertEqual(e.exception.disconnect_reason_code, 0x82)
                with self.assertRaises(lwa2.ProtocolError):
                    pending.on_finished(cs.finished())  # the connection is over
        _, pending, _, cs = run_handshake(self.im)
        with self.assertRaises(lwa2.ProtocolError):
            pending.on_first_record("a/b", 0, False, bytes(16))
        with self.assertRaises(ValueError):
            cs.seal("a/b", 0, False, b"x")  # under M the record's topic is the placeholder
        # The PUBLISH path: the record opens (the client is authenticated) but `inner` is malformed.
        _, pending, _, cs = run_handshake(self.im)
        bad = cs.seal(lwa2.PLACEHOLDER_TOPIC, 0, False, b"\x00\x01t\x80\x00")
        with self.assertRaises(lwa2.LwaError) as e:
            pending.on_first_publish(0, False, bad)
        self.assertEqual((e.exception.name, e.exception.disconnect_reason_code), ("malformed", 0x81))
        # In OPEN, both directions.
        _, pending, _, cs = run_handshake(self.im)
        bs = pending.on_finished(cs.finished())
        bad = cs.seal(lwa2.PLACEHOLDER_TOPIC, 0, False, b"\x00\x00\x00")  # empty topic
        with self.assertRaises(lwa2.LwaError) as e:
            bs.open_publish(0, False, bad)
        self.assertEqual((e.exception.name, e.exception.disconnect_reason_code), ("malformed", 0x81))
        self.assertEqual(bs.opener.counter, 1)
        sealed = bs.seal_publish("cmd/x", b"\x01\x01", 1, True, b"on")
        with self.assertRaises(lwa2.ProtocolError):
            cs.open_publish(1, True, sealed, wire_topic="cmd/x")
        self.assertEqual(cs.opener.counter, 0)  # refused before opening
        self.assertEqual(cs.open_publish(1, True, sealed), ("cmd/x", b"\x01\x01", b"on"))
        with self.assertRaises(lwa2.ProtocolError):
            cs.open("cmd/x", 1, True, bs.seal_publish("cmd/x", b"", 1, True, b""))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
