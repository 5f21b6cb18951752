//! Runs the bounded Dolev-Yao model of LWA1 (`proofs/stateright`, see
//! `proofs/README.md`): the protocol as specified must satisfy every claim
//! of LWA.md section 14 that the model states, and each mutant (the protocol
//! with one known flaw) must be caught by the claims it breaks.

use lwa_stateright::properties::{
    S1_BROKER_AUTH, S2_CLIENT_AUTH, S3_KEY_SECRECY, S4_FORWARD_SECRECY, S5_RECORDS,
    S6_PAYLOAD_SECRECY, S8_NO_SIDE_EFFECT, S9_DOWNGRADE,
};
use lwa_stateright::{check, Bounds, Flaw, LwaModel, Report};

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

#[test]
fn honest_model_satisfies_every_claim() {
    for bounds in HONEST {
        let r = check(LwaModel::honest(bounds), threads(), None);
        eprintln!("{}", summary("honest", bounds, &r));
        assert!(r.complete, "state space not exhausted");
        assert!(r.violated.is_empty(), "claims violated: {:#?}", r.violated);
        assert!(
            r.unreached.is_empty(),
            "honest runs not reachable: {:?}",
            r.unreached
        );
    }
}

/// Checks that `flaw` breaks every property in `expected` (with a
/// counterexample each) at the honest model's first bounds.
fn assert_caught(flaw: Flaw, expected: &[&'static str]) {
    let bounds = HONEST[0];
    let r = check(LwaModel::mutant(bounds, flaw), threads(), Some(expected));
    eprintln!("{}", summary(&format!("{flaw:?}"), bounds, &r));
    for (name, path) in &r.violated {
        eprintln!("  {name}: {path}");
    }
    let violated = r.violated_names();
    for name in expected {
        assert!(
            violated.contains(name),
            "{flaw:?} not caught by {name:?}; violated: {violated:?}"
        );
    }
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
