#!/usr/bin/env python3
"""Runs lwa.pv, lwa_s7.pv, lwa_s7_multi.pv, lwa_eph.pv and their mutants with
an installed ProVerif 2.05 and prints, per model, the wall-clock and CPU time
and each claim's result.

    PROVERIF=/path/to/proverif python3 proofs/proverif/run.py [--honest-only] [NAME...]

NAME... limits the run to the models with those names (e.g. lwa_s7). The
long models (lwa_payload_equiv, lwa_payload_equiv_fs) run only when named.

ProVerif is not installed by this project (it is not in the registries the
project reaches); see proofs/README.md. A mutant is lwa.pv with one textual
change, so the honest model and its mutants cannot drift apart.
"""

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
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

# name -> list of (old, new) replacements, each of which must occur.
MUTANTS = {
    "offer_not_in_transcript": [
        ("sha256((lbl_transcript, cx, offer, resp, sp))", "sha256((lbl_transcript, cx, resp, sp))"),
    ],
    "no_psk_in_key_schedule": [
        ("table psks(ident, key).", "table psks(ident, key).\nconst nopsk: key."),
        ("hkdf_extract(psk, dh)", "hkdf_extract(nopsk, dh)"),
    ],
    "no_broker_ephemeral": [
        ("let eb = exp(g, y) in", "let eb = g in"),
        ("let dh = exp(ec, y) in", "let dh = g in"),
        ("let dh = exp(eb, x) in", "let dh = g in"),
    ],
    # Both openers (the client's Opener and the broker's BrokerOpener):
    # each replacement applies to every occurrence.
    "counter_from_wire": [
        ("in(c, (t0: bitstring, q0: bitstring, r0: bitstring, s0: bitstring));",
         "in(c, (w0: bitstring, t0: bitstring, q0: bitstring, r0: bitstring, s0: bitstring));"),
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


def mutate(text, changes):
    for old, new in changes:
        if old not in text:
            raise SystemExit(f"mutant change not applicable: {old!r}")
        text = text.replace(old, new)
    return text


def run(proverif, path, claims=QUERY_CLAIMS):
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([proverif, str(path)], capture_output=True, text=True, check=False)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    elapsed = (time.monotonic() - started, cpu)
    if "lwa_s7" in path.name or "equiv" in path.name:
        found = re.findall(r"^RESULT Observational equivalence (is true|is false|cannot be proved)", out.stdout, re.M)
        if not found:
            raise SystemExit(f"{path}: no equivalence result\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        # A proof attempt may print intermediate RESULT lines; the last one is the verdict.
        claim = "S7" if "lwa_s7" in path.name else "S6 strong secrecy"
        return elapsed, {claim: [found[-1].replace("is ", "")]}
    summary = out.stdout.split("Verification summary:", 1)
    if len(summary) != 2:
        raise SystemExit(f"{path}: no verification summary\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    results = re.findall(r"^Query .* (is true|is false|cannot be proved)\.$", summary[1], re.M)
    results = [r.replace("is ", "") for r in results]
    if len(results) != len(claims):
        raise SystemExit(f"{path}: {len(results)} results for {len(claims)} queries")
    by_claim = {}
    for claim, result in zip(claims, results):
        by_claim.setdefault(claim, []).append(result)
    return elapsed, by_claim


def main():
    proverif = os.environ.get("PROVERIF", "proverif")
    source = (HERE / "lwa.pv").read_text()
    s7 = (HERE / "lwa_s7.pv").read_text()
    s7_multi = (HERE / "lwa_s7_multi.pv").read_text()
    eph = (HERE / "lwa_eph.pv").read_text()
    payload = (HERE / "lwa_payload_equiv.pv").read_text()
    models = {"lwa": source, "lwa_s7": s7, "lwa_s7_multi": s7_multi, "lwa_eph": eph}
    if "--honest-only" not in sys.argv:
        models.update({f"lwa_{name}": mutate(source, c) for name, c in MUTANTS.items()})
        models.update({f"lwa_s7_{name}": mutate(s7, c) for name, c in S7_MUTANTS.items()})
        models.update({f"lwa_s7_multi_{name}": mutate(s7_multi, c) for name, c in S7_MULTI_MUTANTS.items()})
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    # Long models: only when named.
    long_models = {"lwa_payload_equiv": payload}
    long_models.update({f"lwa_payload_equiv_{name}": mutate(payload, c) for name, c in PAYLOAD_VARIANTS.items()})
    if only:
        models.update(long_models)
        models = {name: text for name, text in models.items() if name in only}
    claims_of = {"lwa_eph": EPH_QUERY_CLAIMS}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in models.items():
            path = Path(tmp) / f"{name}.pv"
            path.write_text(text)
            elapsed, by_claim = run(proverif, path, claims_of.get(name, QUERY_CLAIMS))
            cells = ", ".join(f"{claim} {'/'.join(sorted(set(rs)))}" for claim, rs in by_claim.items())
            wall, cpu = elapsed
            print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU: {cells}", flush=True)


if __name__ == "__main__":
    main()
