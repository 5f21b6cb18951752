#!/usr/bin/env python3
"""Runs lwa.pv, lwa_s7.pv, lwa_s7_multi.pv, lwa_eph.pv, lwa2.pv, lwa2_s7.pv, lwa2_update.pv and
their mutants with an installed ProVerif 2.05 and prints, per model, the wall-clock and CPU time,
each claim's result, and whether the outcome is the expected one.

    PROVERIF=/path/to/proverif python3 proofs/proverif/run.py \
        [--honest-only] [--jobs N] [--timeout S] [--logs DIR] [NAME...]

--check runs no ProVerif: it only builds every model and mutant (each mutant's
change must apply) and exits; the test suite runs it (tests/proofs_proverif.rs).
NAME... limits the run to the models with those names (e.g. lwa_s7, lwa2,
lwa2_no_broker_ephemeral). The long models (lwa_payload_equiv,
lwa_payload_equiv_fs) run only when named. --jobs N runs N ProVerif processes at once
(default 1) and prints each result as it finishes; --timeout S stops a model
after S seconds of wall-clock time (default: none); --logs DIR keeps each
model's ProVerif output as DIR/NAME.txt. At the end a summary table lists
every model; the exit status is 1 when any outcome is not the expected one
(see expected() below), 0 otherwise.

ProVerif is not installed by this project (it is not in the registries the
project reaches); see proofs/README.md. A mutant is a model with one
textual change, so the honest model and its mutants cannot drift apart.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The queries of lwa.pv in file order, by the claim each checks.
QUERY_CLAIMS = (
    ["S1"] + ["S2"] + ["S3"] * 4 + ["S4"] * 8 + ["S5"] + ["S6"] * 2 + ["S8"] + ["S9"]
    + ["S10"] * 2 + ["reach c2b"] + ["reach b2c"]
    + ["reach c2b no reveal"] + ["reach b2c no reveal"]
    + ["revocation at finished"] + ["revocation per record"] + ["revocation race (expected false)"]
)

# The queries of lwa_eph.pv in file order (E1 = S1 ..., see that file).
EPH_QUERY_CLAIMS = (
    ["E1"] + ["E2"] + ["E3"] * 4 + ["E5"] + ["E6"] * 2
    + ["E4-lost (expected false)"] * 2 + ["E4-kept"] * 4 + ["E6-kept"] * 2
)

MOVED_EFFECT = "  event SideEffect(id, cx, l, ec, ch, eb, sp);       (* Clean Start, takeover, session, will *)\n"

# Edits LWA1's and LWA2's models share (their processes read the same there).
NO_BROKER_EPHEMERAL = [
    ("let eb = exp(g, y) in", "let eb = g in"),
    ("let dh = exp(ec, y) in", "let dh = g in"),
    ("let dh = exp(eb, x) in", "let dh = g in"),
]
COUNTER_FROM_WIRE_INPUT = (
    "in(c, (t0: bitstring, q0: bitstring, r0: bitstring, s0: bitstring));",
    "in(c, (w0: bitstring, t0: bitstring, q0: bitstring, r0: bitstring, s0: bitstring));",
)

# name -> list of (old, new) replacements, each of which must occur.
MUTANTS = {
    "offer_not_in_transcript": [
        ("sha256((lbl_transcript, cx, offer, resp, sp))", "sha256((lbl_transcript, cx, resp, sp))"),
    ],
    "no_psk_in_key_schedule": [
        ("table psks(ident, key).", "table psks(ident, key).\nconst nopsk: key."),
        ("hkdf_extract(psk, dh)", "hkdf_extract(nopsk, dh)"),
    ],
    "no_broker_ephemeral": NO_BROKER_EPHEMERAL,
    # Both openers (the client's Opener and the broker's BrokerOpener):
    # each replacement applies to every occurrence.
    "counter_from_wire": [
        COUNTER_FROM_WIRE_INPUT,
        ("aead_open(k, nonce(iv, ctr0), (aad_prefix, dir, ctr0,",
         "aead_open(k, nonce(iv, w0), (aad_prefix, dir, w0,"),
        ("in(c, (t1: bitstring, q1: bitstring, r1: bitstring, s1: bitstring));",
         "in(c, (w1: bitstring, t1: bitstring, q1: bitstring, r1: bitstring, s1: bitstring));"),
        ("aead_open(k, nonce(iv, ctr1), (aad_prefix, dir, ctr1,",
         "aead_open(k, nonce(iv, w1), (aad_prefix, dir, w1,"),
    ],
    "one_key_both_directions": [
        ("hkdf_expand(prk, lbl_b2c_key, th)", "hkdf_expand(prk, lbl_c2b_key, th)"),
        ("hkdf_expand(prk, lbl_b2c_iv, th)", "hkdf_expand(prk, lbl_c2b_iv, th)"),
    ],
    # LWA.md 12.12: the broker does not re-check at the finished that the
    # key is still current (fails "revocation at finished").
    "no_revocation_check_at_finished": [
        ("  event KeyCheck(id, psk, th);\n  get revoked(=id, =psk) in 0 else\n",
         "  event KeyCheck(id, psk, th);\n"),
    ],
    # ... nor before each record it opens (fails "revocation per record").
    "no_revocation_check_per_record": [
        ("  event RecordKeyCheck(id, psk, th, ctr0);\n  get revoked(=id, =psk) in 0 else\n",
         "  event RecordKeyCheck(id, psk, th, ctr0);\n"),
        ("  event RecordKeyCheck(id, psk, th, ctr1);\n  get revoked(=id, =psk) in 0 else\n",
         "  event RecordKeyCheck(id, psk, th, ctr1);\n"),
    ],
    "side_effect_before_finished": [
        (MOVED_EFFECT, ""),
        ("  out(c, (method_lwa1, sp, resp, bmac));", MOVED_EFFECT + "  out(c, (method_lwa1, sp, resp, bmac));"),
    ],
}


# lwa_s7.pv: one equivalence query (S7); its mutant refuses an unknown
# identity at CONNECT instead of answering with a dummy PSK.
S7_MUTANTS = {
    "unknown_identity_refused_at_connect": [
        ("out(c, (method_lwa1, sp, resp, bmac));",
         "out(c, choice[(method_lwa1, sp, resp, bmac), (method_lwa1, sp, refused, refused)]);"),
        ("const auth_ok: bitstring [data].", "const auth_ok: bitstring [data].\nconst refused: bitstring [data]."),
    ],
}


# ---- LWA2 (lwa2.pv, lwa2_s7.pv) ----

# The queries of lwa2.pv in file order, by the claim each checks. Claims
# whose name starts with "reach" or "sanity" are expected to be false in the
# honest model (ProVerif finds the trace); all others true.
QUERY_CLAIMS_LWA2 = (
    ["S1"] + ["S2"] + ["S3"] * 4 + ["S4"] * 8 + ["S5"] + ["S6"] * 2 + ["S8"] + ["S9"]
    + ["S10"] * 2 + ["revoke accept"] + ["revoke records"]
    + ["reach c2b"] + ["reach b2c"]
    + ["sanity finished path"] + ["sanity publish path"] + ["sanity b2c"]
)

LWA2_EFFECT = "    event SideEffect(id, cx, l, ec, ch, eb, sp);     (* Clean Start, takeover, session, will *)\n"
LWA2_CONNACK = "  out(c, (method_l2, sp, (ch, eb, bmac)));           (* CONNACK 0x00 [L2, response] *)\n"
LWA2_OPEN_FIRST = ("    let p0 = aead_open(k_c2b, nonce(iv_c2b, ctr0), "
                   "(aad_prefix, dir_c2b, ctr0, q0, r0, t0), s0) in\n")

# name -> list of (old, new) replacements in lwa2.pv, each of which must occur.
LWA2_MUTANTS = {
    "offer_not_in_transcript": [
        ("derive_key(ctx_transcript, (cx, offer, (ch, eb), sp))", "derive_key(ctx_transcript, (cx, (ch, eb), sp))"),
    ],
    "no_psk_in_key_schedule": [
        ("table revoked(ident, key).", "table revoked(ident, key).\nconst nopsk: key."),
        ("derive_prk(ctx_secret, psk, dh, th)", "derive_prk(ctx_secret, nopsk, dh, th)"),
    ],
    "no_broker_ephemeral": NO_BROKER_EPHEMERAL,
    # Every opener (the client's b2c one, the broker's c2b ones) takes the
    # counter from the wire; the PUBLISH-path confirmation stays record 0.
    "counter_from_wire": [
        COUNTER_FROM_WIRE_INPUT,
        ("let p0 = aead_open(k, nonce(iv, ctr0), (aad_prefix, dir, ctr0,",
         "let p0 = aead_open(k, nonce(iv, w0), (aad_prefix, dir, w0,"),
        ("in(c, (t1: bitstring, q1: bitstring, r1: bitstring, s1: bitstring));",
         "in(c, (w1: bitstring, t1: bitstring, q1: bitstring, r1: bitstring, s1: bitstring));"),
        ("let p1 = aead_open(k, nonce(iv, ctr1), (aad_prefix, dir, ctr1,",
         "let p1 = aead_open(k, nonce(iv, w1), (aad_prefix, dir, w1,"),
    ],
    "one_key_both_directions": [
        ("keyed(prk, lbl_b2c_key)", "keyed(prk, lbl_c2b_key)"),
        ("keyed(prk, lbl_b2c_iv)", "keyed(prk, lbl_c2b_iv)"),
    ],
    # MQTT side effects when answering the offer, before any confirmation.
    "side_effect_before_confirmation": [
        (LWA2_EFFECT, ""),
        (LWA2_CONNACK, LWA2_EFFECT.replace("    event", "  event", 1) + LWA2_CONNACK),
    ],
    # PUBLISH path: the first PUBLISH is accepted (side effects included)
    # without opening its payload.
    "publish_confirmation_not_opened": [
        (LWA2_OPEN_FIRST, "    let p0 = s0 in\n"),
    ],
    # PUBLISH path: record 0 is opened, but under record keys the broker
    # looks up by identity (a map of connections keyed by identity or Client
    # Identifier, shared by concurrent connections) instead of this
    # connection's own keys: any session of the identity will do.
    "publish_confirmation_key_by_identity": [
        ("table revoked(ident, key).", "table revoked(ident, key).\ntable keycache(ident, key, key)."),
        ("  event BrokerKeysAtResponse(id, th, k_c2b, iv_c2b, k_b2c, iv_b2c);\n",
         "  event BrokerKeysAtResponse(id, th, k_c2b, iv_c2b, k_b2c, iv_b2c);\n"
         "  insert keycache(id, k_c2b, iv_c2b);\n"),
        (LWA2_OPEN_FIRST,
         "    get keycache(=id, kc: key, ic: key) in\n"
         "    let p0 = aead_open(kc, nonce(ic, ctr0), (aad_prefix, dir_c2b, ctr0, q0, r0, t0), s0) in\n"),
    ],
    # client_mac = keyed(k_client_mac, TH), not over (TH, broker_mac).
    "client_mac_without_broker_mac": [
        ("keyed_mac(k_cmac, (th, bmac))", "keyed_mac(k_cmac, th)"),
    ],
    # The broker does not re-check at confirmation that its PSK is unrevoked.
    "no_revocation_check_at_confirmation": [
        ("  get revoked(=id, =psk) in 0 else                   (* re-check: the PSK is still the identity's *)\n"
         "  event Current(id, psk, th, ctr0);\n", ""),
    ],
    # The broker's openers keep opening records after a revocation.
    "no_revocation_check_on_records": [
        ("  get revoked(=id, =psk) in 0 else\n  event Current(id, psk, th, ctr0);\n", ""),
        ("  get revoked(=id, =psk) in 0 else\n  event Current(id, psk, th, ctr1);\n", ""),
    ],
}

# ---- LWA2's key update (lwa2_update.pv) ----

# Its queries in file order. "S6 gen0 after leak" and "S4 gen0" hold although the client's
# generation-1 state leaks after every update (forward secrecy across generations).
QUERY_CLAIMS_LWA2_UPDATE = (
    ["U1"] + ["U2"] + ["S5 gen0"] + ["S5 gen1"] + ["S4 gen0"] * 6 + ["S4 gen1"] * 2
    + ["S6 gen0 after leak"] * 2 + ["S6 gen1"] * 2
    + ["reach c2b gen1"] + ["reach b2c gen1"]
)

UPDATE_REQUEST_CHECK = "  if req = keyed_mac(m1, (lbl_request, gen1, one)) then\n"
UPDATE_RESPONSE_CHECK = "      if rsp = keyed_mac(m1, (lbl_response, gen1, one, req)) then\n"

# name -> list of (old, new) replacements in lwa2_update.pv, each of which must occur.
LWA2_UPDATE_MUTANTS = {
    # The broker moves on any AUTH 0x19 [L2] without checking the request's MAC.
    "request_not_verified": [(UPDATE_REQUEST_CHECK, "")],
    # The client moves its opener on any AUTH 0x00 [L2] without checking the response.
    "response_not_verified": [(UPDATE_RESPONSE_CHECK, "")],
    # Generation 1 keeps generation 0's keys and IVs while the counters restart at 0.
    "keys_kept": [
        ("  let k_c2b1 = keyed(u1, lbl_c2b_key) in\n", "  let k_c2b1 = k_c2b in\n"),
        ("  let iv_c2b1 = keyed(u1, lbl_c2b_iv) in\n", "  let iv_c2b1 = iv_c2b in\n"),
        ("  let k_b2c1 = keyed(u1, lbl_b2c_key) in\n", "  let k_b2c1 = k_b2c in\n"),
        ("  let iv_b2c1 = keyed(u1, lbl_b2c_iv) in\n", "  let iv_b2c1 = iv_b2c in\n"),
    ],
    # The next generation's secret is the handshake's prk itself (no one-way step): its
    # leak gives away generation 0.
    "no_one_way_step": [("  let u1 = keyed(u0, lbl_next) in\n", "  let u1 = prk in\n")],
}

# lwa2_s7.pv: one equivalence query (S7); its mutant refuses an unknown
# identity at CONNECT instead of answering with a dummy PSK.
LWA2_S7_MUTANTS = {
    "unknown_identity_refused_at_connect": [
        ("out(c, (method_l2, sp, (ch, eb, bmac)));",
         "out(c, choice[(method_l2, sp, (ch, eb, bmac)), refused]);"),
        ("const disconnect_82: bitstring [data].",
         "const disconnect_82: bitstring [data].\nconst refused: bitstring [data]."),
    ],
}

# lwa_payload_equiv.pv (S6 as strong secrecy, one equivalence): its variant
# reveals every honest PSK in phase 1, after all sessions (forward secrecy).
PAYLOAD_VARIANTS = {
    "fs": [
        ("      ( ! Client(hid(m), pskm) ) )",
         "      ( ( ! Client(hid(m), pskm) ) | (phase 1; out(c, pskm)) ) )"),
    ],
}

# lwa_s7_multi.pv: the same mutant, on the probed identity's broker only
# (the general broker also sends a response).
S7_MULTI_MUTANTS = {
    "unknown_identity_refused_at_connect": [
        ("out(c, (method_lwa1, sp, resp, bmac));\n  in(c, (=method_lwa1, cmac: bitstring));\n  (* the same test",
         "out(c, choice[(method_lwa1, sp, resp, bmac), (method_lwa1, sp, refused, refused)]);\n"
         "  in(c, (=method_lwa1, cmac: bitstring));\n  (* the same test"),
        ("const auth_ok: bitstring [data].", "const auth_ok: bitstring [data].\nconst refused: bitstring [data]."),
    ],
}


# ---- Expected outcomes ----

# For each mutant, the claims that must be caught: each listed claim has at
# least one query that is false or cannot be proved. An empty list means the
# mutant is documented as not caught by ProVerif (proofs/README.md): every
# claim other than reach/sanity must then stay true. A mutant missing here
# must have at least one reach/sanity-free claim not true.
MUTANT_CATCHES = {
    "lwa_offer_not_in_transcript": ["S1", "S2", "S8", "S9"],
    "lwa_no_psk_in_key_schedule": ["S1", "S2", "S3", "S4", "S5", "S6", "S8", "S9", "S10"],
    "lwa_no_broker_ephemeral": ["S2", "S4", "S5", "S6", "S8"],
    "lwa_counter_from_wire": ["S5"],
    "lwa_one_key_both_directions": [],
    "lwa_side_effect_before_finished": ["S8"],
    "lwa_no_revocation_check_at_finished": ["revocation at finished"],
    "lwa_no_revocation_check_per_record": ["revocation per record"],
    "lwa_s7_multi_unknown_identity_refused_at_connect": ["S7"],
    "lwa_s7_unknown_identity_refused_at_connect": ["S7"],
    "lwa2_offer_not_in_transcript": ["S1", "S2", "S8", "S9"],
    "lwa2_no_psk_in_key_schedule": ["S1", "S2", "S3", "S4", "S5", "S6", "S8", "S9", "S10"],
    "lwa2_no_broker_ephemeral": ["S2", "S4", "S5", "S6", "S8"],
    "lwa2_counter_from_wire": ["S5"],
    "lwa2_one_key_both_directions": [],
    "lwa2_side_effect_before_confirmation": ["S8"],
    "lwa2_publish_confirmation_not_opened": ["S2", "S5", "S8", "S10"],
    "lwa2_publish_confirmation_key_by_identity": ["S2", "S5", "S8", "S10"],
    "lwa2_client_mac_without_broker_mac": [],
    "lwa2_no_revocation_check_at_confirmation": ["revoke accept", "revoke records"],
    "lwa2_no_revocation_check_on_records": ["revoke records"],
    "lwa2_s7_unknown_identity_refused_at_connect": ["S7"],
    "lwa2_update_request_not_verified": ["U1"],
    "lwa2_update_response_not_verified": ["U2"],
    "lwa2_update_keys_kept": ["S5 gen0", "S4 gen0", "S6 gen0 after leak"],
    "lwa2_update_no_one_way_step": ["S4 gen0", "S6 gen0 after leak"],
}

HONEST = ("lwa", "lwa_s7", "lwa_s7_multi", "lwa_eph", "lwa2", "lwa2_s7", "lwa2_update")
# Honest models that run only when named (each takes many minutes).
LONG = ("lwa_payload_equiv",)


def expected_false(claim):
    return claim.startswith("reach") or claim.startswith("sanity") or "(expected false)" in claim


# Queries ProVerif cannot decide in lwa.pv and lwa_eph.pv, with what it answers on the honest
# model (proofs/README.md): the revocation checks rest on `get ... else`, whose else branch
# ProVerif over-approximates, and the forward secrecy lost after an ephemeral leak is found as a
# derivation without a reconstructed trace. In a mutant they count as caught only when false.
INCONCLUSIVE = {
    "revocation at finished": {"true", "cannot be proved"},
    "revocation per record": {"true", "cannot be proved"},
    "revocation race (expected false)": {"false", "cannot be proved"},
    "E4-lost (expected false)": {"false", "cannot be proved"},
}


def accepted(name, claim):
    """The results an honest model may give for `claim`."""
    if not name.startswith("lwa2") and claim in INCONCLUSIVE:
        return INCONCLUSIVE[claim]
    return {"false"} if expected_false(claim) else {"true"}


def is_caught(name, claim, results):
    """Whether a mutant's results for `claim` show the flaw."""
    if expected_false(claim) and claim not in INCONCLUSIVE:
        return False
    if not name.startswith("lwa2") and claim in INCONCLUSIVE:
        return "false" in results and claim in ("revocation at finished", "revocation per record")
    return any(r != "true" for r in results)


def expected(name, by_claim):
    """(ok, why) for a model's results {claim: [result per query]}."""
    if name in HONEST or name.startswith(LONG):
        wrong = [c for c, rs in by_claim.items() if any(r not in accepted(name, c) for r in rs)]
        return (not wrong, "as expected" if not wrong else "unexpected: " + ", ".join(wrong))
    caught = [c for c, rs in by_claim.items() if is_caught(name, c, rs)]
    must = MUTANT_CATCHES.get(name)
    if must is None:
        return (bool(caught), ("caught: " if caught else "not caught") + ", ".join(caught))
    if not must:
        return (not caught, "not caught, as documented" if not caught else "caught (documented as not): " + ", ".join(caught))
    missed = [c for c in must if c not in caught]
    if missed:
        return (False, "missed: " + ", ".join(missed))
    return (True, "caught: " + ", ".join(caught))


def mutate(text, changes):
    for old, new in changes:
        if old not in text:
            raise SystemExit(f"mutant change not applicable: {old!r}")
        text = text.replace(old, new)
    return text


def parse(name, stdout):
    """{claim: [results]} from ProVerif's output for model `name`."""
    if "_s7" in name or "equiv" in name:
        found = re.findall(r"^RESULT Observational equivalence (is true|is false|cannot be proved)", stdout, re.M)
        if not found:
            raise ValueError("no equivalence result")
        # A proof attempt may print intermediate RESULT lines; the last one is the verdict.
        claim = "S7" if "_s7" in name else "S6 strong secrecy"
        return {claim: [found[-1].replace("is ", "")]}
    if name.startswith("lwa2_update"):
        claims = QUERY_CLAIMS_LWA2_UPDATE
    elif name.startswith("lwa2"):
        claims = QUERY_CLAIMS_LWA2
    elif name.startswith("lwa_eph"):
        claims = EPH_QUERY_CLAIMS
    else:
        claims = QUERY_CLAIMS
    summary = stdout.split("Verification summary:", 1)
    if len(summary) != 2:
        raise ValueError("no verification summary")
    results = re.findall(r"^Query .* (is true|is false|cannot be proved)\.$", summary[1], re.M)
    results = [r.replace("is ", "") for r in results]
    if len(results) != len(claims):
        raise ValueError(f"{len(results)} results for {len(claims)} queries")
    by_claim = {}
    for claim, result in zip(claims, results):
        by_claim.setdefault(claim, []).append(result)
    return by_claim


def run(proverif, name, path, timeout, logs):
    """Runs one model; returns a result dict (never raises for ProVerif's sake)."""
    out_path = path.with_suffix(".txt")
    started = time.monotonic()
    with open(out_path, "w") as out:
        proc = subprocess.Popen([proverif, str(path)], stdout=out, stderr=subprocess.STDOUT)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout and time.monotonic() - started > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.2)
        # reaped here, not by Popen
        proc.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    wall = time.monotonic() - started
    cpu = usage.ru_utime + usage.ru_stime
    stdout = out_path.read_text(errors="replace")
    if logs:
        Path(logs, f"{name}.txt").write_text(stdout)
    result = {"name": name, "wall": wall, "cpu": cpu, "by_claim": {}, "error": None}
    if timed_out:
        result["error"] = f"timeout after {timeout} s"
    else:
        try:
            result["by_claim"] = parse(name, stdout)
        except ValueError as e:
            result["error"] = f"{e} (exit {proc.returncode}): {stdout[-600:]!r}"
    if result["error"]:
        result["ok"], result["why"] = False, result["error"]
    else:
        result["ok"], result["why"] = expected(name, result["by_claim"])
    return result


def cells(by_claim):
    return ", ".join(f"{claim} {'/'.join(sorted(set(rs)))}" for claim, rs in by_claim.items())


def option(flag, default, convert):
    if flag in sys.argv:
        k = sys.argv.index(flag)
        if k + 1 >= len(sys.argv):
            raise SystemExit(f"{flag} needs a value")
        value = sys.argv[k + 1]
        del sys.argv[k:k + 2]
        return convert(value)
    return default


def main():
    proverif = os.environ.get("PROVERIF", "proverif")
    jobs = option("--jobs", 1, int)
    timeout = option("--timeout", None, float)
    logs = option("--logs", None, str)
    if logs:
        Path(logs).mkdir(parents=True, exist_ok=True)
    sources = {name: (HERE / f"{name}.pv").read_text() for name in HONEST + LONG}
    models = {name: sources[name] for name in HONEST}
    if "--honest-only" not in sys.argv:
        for base, table in (("lwa", MUTANTS), ("lwa_s7", S7_MUTANTS), ("lwa_s7_multi", S7_MULTI_MUTANTS),
                            ("lwa2", LWA2_MUTANTS), ("lwa2_s7", LWA2_S7_MUTANTS),
                            ("lwa2_update", LWA2_UPDATE_MUTANTS)):
            models.update({f"{base}_{name}": mutate(sources[base], c) for name, c in table.items()})
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    # Long models: only when named.
    payload = sources["lwa_payload_equiv"]
    models["lwa_payload_equiv"] = payload
    models.update({f"lwa_payload_equiv_{name}": mutate(payload, c) for name, c in PAYLOAD_VARIANTS.items()})
    if "--check" in sys.argv:
        # Without ProVerif (the test suite): every mutant's change applies to its model, and
        # every expected outcome names a model that exists.
        stale = [m for m in MUTANT_CATCHES if m not in models]
        if stale:
            raise SystemExit(f"MUTANT_CATCHES names no model: {', '.join(stale)}")
        print(f"{len(models)} models: every mutant's change applies")
        sys.exit(0)
    if not only:
        models = {name: text for name, text in models.items() if not name.startswith(LONG)}
    if only:
        unknown = [a for a in only if a not in models]
        if unknown:
            raise SystemExit(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(models)}")
        models = {name: text for name, text in models.items() if name in only}
    results = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = []
        for name, text in models.items():
            path = Path(tmp) / f"{name}.pv"
            path.write_text(text)
            futures.append(pool.submit(run, proverif, name, path, timeout, logs))
        for future in as_completed(futures):
            r = future.result()
            results.append(r)
            body = r["error"] if r["error"] else cells(r["by_claim"])
            mark = "ok" if r["ok"] else "UNEXPECTED"
            print(f"{r['name']}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU: {body} [{mark}: {r['why']}]", flush=True)
    order = list(models)
    results.sort(key=lambda r: order.index(r["name"]))
    width = max(len(r["name"]) for r in results)
    print("\nSummary")
    print(f"{'model':<{width}}  {'wall s':>8}  {'CPU s':>8}  expected  results")
    for r in results:
        body = r["error"] if r["error"] else cells(r["by_claim"])
        print(f"{r['name']:<{width}}  {r['wall']:8.1f}  {r['cpu']:8.1f}  {'yes' if r['ok'] else 'NO':<8}  {body}  ({r['why']})")
    bad = [r["name"] for r in results if not r["ok"]]
    print(f"\n{len(results) - len(bad)} of {len(results)} outcomes as expected" + (f"; not: {', '.join(bad)}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
