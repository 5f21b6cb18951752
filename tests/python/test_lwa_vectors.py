#!/usr/bin/env python3
"""Reproduces every LWA1 test vector with the independent Python implementation.

Run: python3 tests/python/test_lwa_vectors.py   (exit code 0 = all vectors reproduced)
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lwa_ref as lwa  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "protocol-spec", "test-vectors")


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def unh(s):
    return bytes.fromhex(s)


def will_of(inputs):
    w = inputs["will"]
    if w is None:
        return None
    return lwa.Will(w["topic"], w["qos"], w["retain"], unh(w["payload"]))


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


def run_handshake(inputs):
    """Runs client and broker from the vector inputs; returns every value the vector lists."""
    psk = unh(inputs["psk"])
    will = will_of(inputs)
    client = lwa.Client(inputs["identity"], psk, inputs["client_id"], inputs["clean_start"], will,
                        inputs["client_record_limit_log2"], unh(inputs["client_ephemeral_secret"]))
    rng = ByteSource(unh(inputs["broker_ephemeral_secret"]))
    pending, response = lwa.broker_on_connect(
        client.offer, inputs["client_id"], inputs["clean_start"], will, inputs["session_present"],
        lookup_from({inputs["identity"]: inputs["psk"]}), inputs["broker_record_limit_log2"], rng)
    assert rng.data == b"", "broker must draw exactly e_b for a known identity"
    finished, client_session = client.on_connack(response, inputs["session_present"])
    broker_session = pending.on_auth(finished)
    return client, response, finished, client_session, broker_session


class HandshakeVectors(unittest.TestCase):
    def test_rfc7748_anchor(self):
        v = load("handshake.json")["vectors"][0]
        self.assertEqual(
            lwa.x25519(unh(v["inputs"]["client_ephemeral_secret"]), unh(v["intermediate"]["broker_ephemeral_public"])).hex(),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

    def test_every_handshake_value(self):
        vectors = load("handshake.json")["vectors"]
        self.assertGreaterEqual(len(vectors), 4)
        for v in vectors:
            with self.subTest(v["name"]):
                i, m, im = v["inputs"], v["messages"], v["intermediate"]
                client, response, finished, cs, bs = run_handshake(i)
                self.assertEqual(client.offer.hex(), m["offer"])
                self.assertEqual(response.hex(), m["response"])
                self.assertEqual(finished.hex(), m["finished"])
                self.assertEqual(len(client.offer), 35 + len(i["identity"].encode()))
                self.assertEqual(len(response), 50)
                self.assertEqual(len(finished), 16)

                # Intermediate values recomputed step by step from the spec.
                c_sec, b_sec = unh(i["client_ephemeral_secret"]), unh(i["broker_ephemeral_secret"])
                self.assertEqual(lwa.x25519_public(c_sec).hex(), im["client_ephemeral_public"])
                self.assertEqual(lwa.x25519_public(b_sec).hex(), im["broker_ephemeral_public"])
                dh = lwa.x25519(c_sec, lwa.x25519_public(b_sec))
                self.assertEqual(dh, lwa.x25519(b_sec, lwa.x25519_public(c_sec)))
                self.assertEqual(dh.hex(), im["dh"])
                ctx = lwa.connect_context(i["client_id"], i["clean_start"], will_of(i))
                self.assertEqual(ctx.hex(), im["connect_context"])
                rwm = response[:34]
                self.assertEqual(rwm.hex(), im["response_without_mac"])
                self.assertEqual(rwm[1], im["chosen_record_limit_log2"])
                self.assertEqual(im["chosen_record_limit_log2"],
                                 min(i["client_record_limit_log2"], i["broker_record_limit_log2"]))
                tin = lwa.transcript_input(ctx, client.offer, rwm, i["session_present"])
                self.assertEqual(tin.hex(), im["transcript_input"])
                th = lwa.transcript_hash(ctx, client.offer, rwm, i["session_present"])
                self.assertEqual(th.hex(), im["th"])
                keys = lwa.key_schedule(unh(i["psk"]), dh, th)
                for name in ["prk", "c2b_key", "c2b_iv", "b2c_key", "b2c_iv", "broker_mac_key", "client_mac_key"]:
                    self.assertEqual(keys[name].hex(), im[name], name)
                b_mac = lwa.broker_mac(keys, th)
                self.assertEqual(b_mac.hex(), im["broker_mac"])
                self.assertEqual(lwa.client_mac(keys, th, b_mac).hex(), im["client_mac"])

                # Records in session order, opened by the peer.
                for r in v["records"]:
                    sealer, opener = (cs.sealer, bs.opener) if r["direction"] == "c2b" else (bs.sealer, cs.opener)
                    self.assertEqual(sealer.counter, r["counter"])
                    plain = unh(r["plaintext"])
                    sealed = sealer.seal(r["topic"], r["qos"], r["retain"], plain)
                    self.assertEqual(sealed.hex(), r["sealed"])
                    self.assertEqual(len(sealed), len(plain) + 16)
                    self.assertEqual(opener.open(r["topic"], r["qos"], r["retain"], sealed), plain)
                    self.assertEqual(lwa.record_nonce(unh(r["iv"]), r["counter"]).hex(), r["nonce"])
                    self.assertEqual(lwa.record_aad(lwa.DIRECTIONS[r["direction"]], r["counter"], r["qos"],
                                                    r["retain"], r["topic"]).hex(), r["aad"])
                    self.assertEqual(r["key"], im[r["direction"] + "_key"])


class RecordVectors(unittest.TestCase):
    def test_every_record(self):
        records = load("records.json")["records"]
        self.assertGreaterEqual(len(records), 10)
        for k, r in enumerate(records):
            with self.subTest(k):
                d = lwa.DIRECTIONS[r["direction"]]
                key, iv = unh(r["key"]), unh(r["iv"])
                self.assertEqual(lwa.record_nonce(iv, r["counter"]).hex(), r["nonce"])
                self.assertEqual(lwa.record_aad(d, r["counter"], r["qos"], r["retain"], r["topic"]).hex(), r["aad"])
                sealer = lwa.RecordChannel(d, key, iv, r["record_limit_log2"], r["counter"])
                self.assertEqual(sealer.seal(r["topic"], r["qos"], r["retain"], unh(r["plaintext"])).hex(), r["sealed"])
                opener = lwa.RecordChannel(d, key, iv, r["record_limit_log2"], r["counter"])
                self.assertEqual(opener.open(r["topic"], r["qos"], r["retain"], unh(r["sealed"])).hex(), r["plaintext"])


def run_invalid(case):
    """Runs one invalid case; returns the LwaError raised (None if accepted)."""
    kind = case["kind"]
    try:
        if kind == "broker_respond":
            i = case["inputs"]
            rng = ByteSource(unh(i["broker_ephemeral_secret"]), bytes(32))
            lwa.broker_on_connect(unh(case["offer"]), i["client_id"], i["clean_start"], will_of(i),
                                  i["session_present"], lookup_from(case["psks"]),
                                  i["broker_record_limit_log2"], rng)
        elif kind == "client_response":
            i = case["inputs"]
            client = lwa.Client(i["identity"], unh(i["psk"]), i["client_id"], i["clean_start"], will_of(i),
                                i["client_record_limit_log2"], unh(i["client_ephemeral_secret"]))
            client.on_connack(unh(case["response"]), case["session_present"])
        elif kind == "broker_finished":
            i = case["inputs"]
            dummy = unh(case["broker_dummy_psk"]) if case["broker_dummy_psk"] else b""
            rng = ByteSource(unh(i["broker_ephemeral_secret"]), dummy)
            pending, response = lwa.broker_on_connect(
                unh(case["offer"]), i["client_id"], i["clean_start"], will_of(i), i["session_present"],
                lookup_from(case["psks"]), i["broker_record_limit_log2"], rng)
            assert response.hex() == case["response"], case["name"] + ": response differs"
            pending.on_auth(unh(case["finished"]))
        elif kind in ("record_open", "record_seal"):
            s = case["state"]
            ch = lwa.RecordChannel(lwa.DIRECTIONS[s["direction"]], unh(s["key"]), unh(s["iv"]),
                                   s["record_limit_log2"], s["counter"])
            if kind == "record_open":
                ch.open(case["topic"], case["qos"], case["retain"], unh(case["sealed"]))
            else:
                ch.seal(case["topic"], case["qos"], case["retain"], unh(case["plaintext"]))
        else:
            raise AssertionError("unknown kind " + kind)
    except lwa.LwaError as e:
        return e
    return None


class InvalidVectors(unittest.TestCase):
    def test_every_invalid_case_is_rejected(self):
        cases = load("invalid.json")["cases"]
        self.assertGreaterEqual(len(cases), 30)
        self.assertEqual({c["kind"] for c in cases},
                         {"broker_respond", "client_response", "broker_finished", "record_open", "record_seal"})
        for c in cases:
            with self.subTest(c["name"]):
                err = run_invalid(c)
                self.assertIsNotNone(err, c["name"] + " was accepted")
                self.assertEqual(err.name, c["expected_error"], str(err))
                self.assertEqual(err.reason_code, c["reason_code"])

    def test_disconnect_reason_codes_are_valid_mqtt5(self):
        for name in lwa.REASON_CODES:
            code = lwa.disconnect_reason_code(name)
            self.assertIn(code, lwa.VALID_IN_DISCONNECT, name)
            if lwa.REASON_CODES[name] == 0x8C:
                self.assertEqual(code, 0x82, name)

    def test_reason_code_table_matches_vectors(self):
        for c in load("invalid.json")["cases"]:
            self.assertEqual(lwa.REASON_CODES[c["expected_error"]], c["reason_code"], c["name"])


class Primitives(unittest.TestCase):
    def test_hkdf_rfc5869_case_1(self):
        prk = lwa.hkdf_extract(unh("000102030405060708090a0b0c"), unh("0b" * 22))
        self.assertEqual(prk.hex(), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        okm = lwa.hkdf_expand(prk, unh("f0f1f2f3f4f5f6f7f8f9"), 42)
        self.assertEqual(okm.hex(), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")

    def test_offer_round_trip_and_low_order_rejection(self):
        o = lwa.Offer(20, "sensor-01", bytes(range(32))).encode()
        p = lwa.parse_offer(o)
        self.assertEqual((p.record_limit_log2, p.identity, p.e_c), (20, "sensor-01", bytes(range(32))))
        with self.assertRaises(lwa.LwaError) as e:
            lwa.x25519(bytes(range(32)), bytes(32))
        self.assertEqual(e.exception.name, "low_order_point")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
