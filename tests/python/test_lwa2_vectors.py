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
    return lwa2.Client(inputs["identity"], psk if psk is not None else unh(inputs["psk"]), inputs["client_id"],
                       inputs["clean_start"], will_of(inputs), inputs["client_record_limit_log2"],
                       unh(inputs["client_ephemeral_secret"]))


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


class HandshakeVectors(unittest.TestCase):
    def test_every_handshake_value(self):
        doc = load("lwa2-handshake.json")
        self.assertEqual(doc["lwa_version"], 2)
        vectors = doc["vectors"]
        self.assertGreaterEqual(len(vectors), 4)
        for v in vectors:
            with self.subTest(v["name"]):
                i, m, im = v["inputs"], v["messages"], v["intermediate"]
                client, pending, response, cs = run_handshake(i)
                finished = cs.finished()
                bs = pending.on_finished(finished)
                self.assertEqual(bs.confirmed_by, "finished")
                self.assertEqual(bs.identity, i["identity"])
                self.assertEqual(client.offer.hex(), m["offer"])
                self.assertEqual(response.hex(), m["response"])
                self.assertEqual(finished.hex(), m["finished"])
                self.assertEqual(len(client.offer), 33 + len(i["identity"].encode()))
                self.assertEqual(len(response), 49)
                self.assertEqual(len(finished), lwa2.CLIENT_MAC_LEN)

                # The messages parse back into the fields they were built from.
                o = lwa2.parse_offer(client.offer)
                self.assertEqual((o.record_limit_log2, o.e_c.hex(), o.identity),
                                 (i["client_record_limit_log2"], im["client_ephemeral_public"], i["identity"]))
                r = lwa2.parse_response(response, i["client_record_limit_log2"])
                self.assertEqual((r.chosen_record_limit_log2, r.e_b.hex(), r.broker_mac.hex()),
                                 (im["chosen_record_limit_log2"], im["broker_ephemeral_public"], im["broker_mac"]))

                # Intermediate values recomputed step by step from the spec.
                c_sec, b_sec = unh(i["client_ephemeral_secret"]), unh(i["broker_ephemeral_secret"])
                self.assertEqual(lwa2.x25519_public(c_sec).hex(), im["client_ephemeral_public"])
                self.assertEqual(lwa2.x25519_public(b_sec).hex(), im["broker_ephemeral_public"])
                dh = lwa2.x25519(c_sec, lwa2.x25519_public(b_sec))
                self.assertEqual(dh, lwa2.x25519(b_sec, lwa2.x25519_public(c_sec)))
                self.assertEqual(dh.hex(), im["dh"])
                ctx = lwa2.connect_context(i["client_id"], i["clean_start"], will_of(i))
                self.assertEqual(ctx.hex(), im["connect_context"])
                rwm = response[:33]
                self.assertEqual(rwm.hex(), im["response_without_mac"])
                self.assertEqual(rwm[0], im["chosen_record_limit_log2"])
                self.assertEqual(im["chosen_record_limit_log2"],
                                 min(i["client_record_limit_log2"], i["broker_record_limit_log2"]))
                tin = lwa2.transcript_input(ctx, client.offer, rwm, i["session_present"])
                self.assertEqual(tin.hex(), im["transcript_input"])
                th = lwa2.transcript_hash(ctx, client.offer, rwm, i["session_present"])
                self.assertEqual(th.hex(), im["th"])
                self.assertEqual(th, lwa2.blake3.blake3(tin, derive_key_context=lwa2.TRANSCRIPT_CONTEXT).digest())
                keys = lwa2.key_schedule(unh(i["psk"]), dh, th)
                for name in ["prk", "c2b_key", "c2b_iv", "b2c_key", "b2c_iv", "broker_mac_key", "client_mac_key"]:
                    self.assertEqual(keys[name].hex(), im[name], name)
                b_mac = lwa2.broker_mac(keys, th)
                self.assertEqual(b_mac.hex(), im["broker_mac"])
                self.assertEqual(lwa2.client_mac(keys, th, b_mac).hex(), im["client_mac"])

                # Records in session order, opened by the peer, under the vector's keys.
                for rec in v["records"]:
                    self.assertEqual(rec["key"], im[rec["direction"] + "_key"])
                    self.assertEqual(rec["iv"], im[rec["direction"] + "_iv"])
                    self.assertEqual(rec["record_limit_log2"], im["chosen_record_limit_log2"])
                check_records(self, v["records"], cs, bs)

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


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
