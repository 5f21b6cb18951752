//! Runs the bounded Dolev-Yao model of LWA1 and LWA2 (`proofs/stateright`,
//! see `proofs/README.md`): the protocol as specified must satisfy every
//! claim of LWA.md section 14 that the model states, and each mutant (the
//! protocol with one known flaw) must be caught by the claims it breaks.

use lwa_stateright::properties::{
    R_REVOCATION, S10_KEY_CONFIRMATION, S1_BROKER_AUTH, S2_CLIENT_AUTH, S2_CLIENT_AUTH_LWA2,
    S3_KEY_SECRECY, S4_FORWARD_SECRECY, S5_RECORDS, S6_PAYLOAD_SECRECY, S8_NO_SIDE_EFFECT,
    S8_NO_SIDE_EFFECT_LWA2, S9_DOWNGRADE,
};
use lwa_stateright::{check, Bounds, Flaw, LwaModel, Report, UpdateFlaw};

/// The bounds the honest model is explored exhaustively at.
const HONEST: [Bounds; 2] = [
    // One client, two broker sessions: replayed offers and finished, the
    // attacker's own sessions beside an honest one.
    Bounds {
        clients: 1,
        brokers: 2,
        c2b_records: 2,
        b2c_records: 1,
    },
    // Two clients, one broker session: records and MACs moved between
    // client sessions.
    Bounds {
        clients: 2,
        brokers: 1,
        c2b_records: 2,
        b2c_records: 1,
    },
];

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

fn summary(what: &str, bounds: Bounds, r: &Report) -> String {
    format!(
        "{what} {bounds:?}: {} unique states ({} generated), depth {}, {:.2?}",
        r.unique_states, r.states, r.max_depth, r.elapsed
    )
}

/// Explores `model` exhaustively and checks that every claim holds and
/// every reachability check is reached.
fn assert_holds(what: &str, model: LwaModel) {
    let bounds = model.bounds;
    let r = check(model, threads(), None);
    eprintln!("{}", summary(what, bounds, &r));
    assert!(r.complete, "state space not exhausted");
    assert!(r.violated.is_empty(), "claims violated: {:#?}", r.violated);
    assert!(
        r.unreached.is_empty(),
        "honest runs not reachable: {:?}",
        r.unreached
    );
}

#[test]
fn honest_model_satisfies_every_claim() {
    for bounds in HONEST {
        assert_holds("honest", LwaModel::honest(bounds));
    }
}

/// Checks that `model` (a mutant) breaks every property in `expected` (with
/// a counterexample each).
fn assert_model_caught(model: LwaModel, expected: &[&'static str]) {
    let bounds = model.bounds;
    let what = format!(
        "{:?} {:?} {:?}",
        model.version, model.flaw, model.update_flaw
    );
    let r = check(model, threads(), Some(expected));
    eprintln!("{}", summary(&what, bounds, &r));
    for (name, path) in &r.violated {
        eprintln!("  {name}: {path}");
    }
    let violated = r.violated_names();
    for name in expected {
        assert!(
            violated.contains(name),
            "{what} not caught by {name:?}; violated: {violated:?}"
        );
    }
}

/// Checks that `flaw` breaks every property in `expected` (with a
/// counterexample each) at the honest model's first bounds.
fn assert_caught(flaw: Flaw, expected: &[&'static str]) {
    assert_model_caught(LwaModel::mutant(HONEST[0], flaw), expected);
}

/// The same for LWA2.
fn assert_caught_lwa2(flaw: Flaw, expected: &[&'static str]) {
    assert_model_caught(LwaModel::mutant_lwa2(HONEST[0], flaw), expected);
}

#[test]
fn mutant_offer_not_in_transcript_is_caught() {
    // The attacker lowers the proposed record limit unnoticed.
    assert_caught(
        Flaw::OfferNotInTranscript,
        &[S1_BROKER_AUTH, S2_CLIENT_AUTH],
    );
}

#[test]
fn mutant_one_key_both_directions_is_caught() {
    // Nonce reuse across directions lets a record be reflected.
    assert_caught(Flaw::OneKeyBothDirections, &[S5_RECORDS]);
}

#[test]
fn mutant_counter_from_wire_is_caught() {
    // Replayed and reordered records open.
    assert_caught(Flaw::CounterFromWire, &[S5_RECORDS]);
}

#[test]
fn mutant_no_psk_in_key_schedule_is_caught() {
    // Anyone can play broker (or client) with its own ephemeral key.
    assert_caught(
        Flaw::NoPskInKeySchedule,
        &[
            S1_BROKER_AUTH,
            S2_CLIENT_AUTH,
            S3_KEY_SECRECY,
            S6_PAYLOAD_SECRECY,
        ],
    );
}

#[test]
fn mutant_no_broker_ephemeral_is_caught() {
    // A replayed offer and finished are accepted twice; a later PSK leak
    // exposes the keys.
    assert_caught(
        Flaw::NoBrokerEphemeral,
        &[S2_CLIENT_AUTH, S4_FORWARD_SECRECY],
    );
}

#[test]
fn mutant_side_effect_before_finished_is_caught() {
    assert_caught(Flaw::SideEffectBeforeFinished, &[S8_NO_SIDE_EFFECT]);
}

#[test]
fn mutant_accepting_unauthenticated_connack_is_caught() {
    assert_caught(
        Flaw::AcceptsUnauthenticatedConnack,
        &[S9_DOWNGRADE, S6_PAYLOAD_SECRECY],
    );
}

/// Without the all-zero `dh` check every claim still holds in the symbolic
/// model: both public keys are in `TH` and the PSK is in `prk`, so a
/// low-order point only removes the X25519 contribution of a session the
/// attacker cannot complete anyway. The check stays (RFC 7748 6.1, defence in
/// depth); this test records that the model does not depend on it.
#[test]
fn zero_dh_check_is_not_needed_for_the_claims() {
    let bounds = HONEST[1];
    let r = check(
        LwaModel::mutant(bounds, Flaw::NoZeroDhCheck),
        threads(),
        None,
    );
    eprintln!("{}", summary("NoZeroDhCheck", bounds, &r));
    assert!(r.complete);
    assert!(r.violated.is_empty(), "{:#?}", r.violated);
}

// LWA2 (LWA2.md): the same claims, with the broker convinced by the finished
// or by c2b record 0 (S2 and S8 are named after that confirmation).

#[test]
fn lwa2_honest_model_satisfies_every_claim() {
    for bounds in HONEST {
        assert_holds("LWA2 honest", LwaModel::honest_lwa2(bounds));
    }
}

#[test]
fn lwa2_mutant_offer_not_in_transcript_is_caught() {
    assert_caught_lwa2(
        Flaw::OfferNotInTranscript,
        &[S1_BROKER_AUTH, S2_CLIENT_AUTH_LWA2],
    );
}

#[test]
fn lwa2_mutant_one_key_both_directions_is_caught() {
    assert_caught_lwa2(Flaw::OneKeyBothDirections, &[S5_RECORDS]);
}

#[test]
fn lwa2_mutant_counter_from_wire_is_caught() {
    assert_caught_lwa2(Flaw::CounterFromWire, &[S5_RECORDS]);
}

#[test]
fn lwa2_mutant_no_psk_in_key_schedule_is_caught() {
    // The attacker plays broker, or plays client on either confirmation path.
    assert_caught_lwa2(
        Flaw::NoPskInKeySchedule,
        &[
            S1_BROKER_AUTH,
            S2_CLIENT_AUTH_LWA2,
            S3_KEY_SECRECY,
            S6_PAYLOAD_SECRECY,
        ],
    );
}

#[test]
fn lwa2_mutant_no_broker_ephemeral_is_caught() {
    // A replayed offer and confirmation (the finished, or record 0) are
    // accepted by two broker runs; a later PSK leak exposes the keys.
    assert_caught_lwa2(
        Flaw::NoBrokerEphemeral,
        &[S2_CLIENT_AUTH_LWA2, S4_FORWARD_SECRECY],
    );
}

#[test]
fn lwa2_mutant_side_effect_before_confirmation_is_caught() {
    assert_caught_lwa2(Flaw::SideEffectBeforeFinished, &[S8_NO_SIDE_EFFECT_LWA2]);
}

#[test]
fn lwa2_mutant_confirmation_record_not_opened_is_caught() {
    // Any PUBLISH after CONNACK attaches the session: an offer for A with
    // the attacker's own e_c completes without A's client.
    assert_caught_lwa2(
        Flaw::ConfirmationRecordNotOpened,
        &[
            S2_CLIENT_AUTH_LWA2,
            S8_NO_SIDE_EFFECT_LWA2,
            S10_KEY_CONFIRMATION,
        ],
    );
}

#[test]
fn lwa2_mutant_accepting_unauthenticated_connack_is_caught() {
    assert_caught_lwa2(
        Flaw::AcceptsUnauthenticatedConnack,
        &[S9_DOWNGRADE, S6_PAYLOAD_SECRECY],
    );
}

/// As for LWA1: the all-zero `dh` check is defence in depth.
#[test]
fn lwa2_zero_dh_check_is_not_needed_for_the_claims() {
    let bounds = HONEST[1];
    let r = check(
        LwaModel::mutant_lwa2(bounds, Flaw::NoZeroDhCheck),
        threads(),
        None,
    );
    eprintln!("{}", summary("LWA2 NoZeroDhCheck", bounds, &r));
    assert!(r.complete);
    assert!(r.violated.is_empty(), "{:#?}", r.violated);
}

// PSK revocation (LWA.md 12.12), both versions, at the smaller bounds: the
// operator may revoke PSK(A) at any moment.

#[test]
fn revocation_is_enforced_in_both_versions() {
    let bounds = HONEST[1];
    assert_holds(
        "honest, revocation",
        LwaModel::honest(bounds).with_revocation(),
    );
    assert_holds(
        "LWA2 honest, revocation",
        LwaModel::honest_lwa2(bounds).with_revocation(),
    );
}

#[test]
fn mutant_no_revocation_check_is_caught() {
    // A handshake that began before the revocation completes after it.
    assert_caught(Flaw::NoRevocationCheck, &[R_REVOCATION]);
    assert_caught_lwa2(Flaw::NoRevocationCheck, &[R_REVOCATION]);
}

// LWA2's key update (LWA2.md 8.2): one update per connection, with a record
// each way before and after possible (one client, one broker run).

/// The bounds the key update is explored at.
const UPDATE: Bounds = Bounds {
    clients: 1,
    brokers: 1,
    c2b_records: 2,
    b2c_records: 2,
};

#[test]
fn lwa2_key_update_keeps_every_claim() {
    assert_holds(
        "LWA2 key update",
        LwaModel::honest_lwa2(UPDATE).with_key_update(),
    );
}

#[test]
fn lwa2_key_update_mutants_are_caught() {
    // Without the counts in the MACs a dropped record goes unnoticed: the
    // broker opens the client's second record as its first. With
    // one key for both generations, counters from 0 reuse every nonce and a
    // replayed record of generation 0 opens again in generation 1.
    for flaw in UpdateFlaw::ALL {
        assert_model_caught(
            LwaModel::honest_lwa2(UPDATE).with_update_flaw(flaw),
            &[S5_RECORDS],
        );
    }
}
