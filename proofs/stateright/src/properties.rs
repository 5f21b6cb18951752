//! The security claims of LWA.md section 14 (and LWA2.md section 14) as
//! stateright properties.
//!
//! The claims are the same for both versions; only where the broker is
//! convinced differs. In LWA1 it is the AUTH finished; in LWA2 it is the
//! finished or the first sealed PUBLISH (c2b record 0), whichever opened
//! first, so S2 and S8 carry another name there ([`S2_CLIENT_AUTH_LWA2`],
//! [`S8_NO_SIDE_EFFECT_LWA2`]) and a client counts as having confirmed when
//! it sent either. The client is convinced at CONNACK in both.
//!
//! "Clean" sessions are the ones the claims speak about: identity `A` (the
//! honest one) whose PSK was still secret when that side accepted. A session
//! of the attacker's own identity `M`, or one accepted after `PSK(A)` leaked,
//! is the attacker's and promises nothing. Each `always` property is checked
//! in every reachable state, so a leak at any later point (forward secrecy)
//! is a violation too.

use stateright::Property;

use crate::model::{
    Bounds, BrokerPhase, BrokerState, ClientPhase, ClientState, Confirmation, LwaModel, State,
    Version, View,
};
use crate::terms::{Ident, Party, Payload, Scalar};

/// S1: client convinced when broker_mac verifies (CONNACK).
pub const S1_BROKER_AUTH: &str = "S1 broker authentication: injective agreement at CONNACK";
/// S2: broker convinced when client_mac verifies (AUTH finished).
pub const S2_CLIENT_AUTH: &str = "S2 client authentication: injective agreement at AUTH finished";
/// S2 in LWA2: broker convinced by the finished or by c2b record 0.
pub const S2_CLIENT_AUTH_LWA2: &str =
    "S2 client authentication: injective agreement at confirmation (finished or first record)";
/// S3: key secrecy while the PSK is secret.
pub const S3_KEY_SECRECY: &str = "S3 record keys and IVs secret";
/// S4: key secrecy after the PSK leaked.
pub const S4_FORWARD_SECRECY: &str = "S4 forward secrecy after PSK reveal";
/// S5: records open only in order, once, from the peer, in their direction.
pub const S5_RECORDS: &str = "S5 record integrity and order (no replay, reorder, reflection)";
/// S6: payload confidentiality.
pub const S6_PAYLOAD_SECRECY: &str = "S6 payload secrecy";
/// S8: no MQTT side effect before the finished verifies.
pub const S8_NO_SIDE_EFFECT: &str = "S8 no side effect before client finished";
/// S8 in LWA2: no side effect before the finished verifies or c2b record 0 opens.
pub const S8_NO_SIDE_EFFECT_LWA2: &str =
    "S8 no side effect before client confirmation (finished or first record)";
/// S9: downgrade resistance.
pub const S9_DOWNGRADE: &str = "S9 downgrade resistance";
/// S10: key confirmation.
pub const S10_KEY_CONFIRMATION: &str = "S10 key confirmation";
/// Sanity: a full honest exchange in both directions is reachable.
pub const REACH_EXCHANGE: &str = "reachable: handshake and records both ways";
/// Sanity: the reveal after a completed exchange is reachable.
pub const REACH_REVEAL_AFTER: &str = "reachable: PSK revealed after a completed session";
/// Sanity: the attacker's own identity completes a handshake.
pub const REACH_INSIDER: &str = "reachable: attacker identity authenticated";
/// Sanity: the finished path completes, records opened both ways, with no
/// PSK reveal (nor revocation) at all.
pub const REACH_FINISHED_PATH: &str =
    "reachable without PSK reveal: finished path, records both ways";
/// Sanity (LWA2): the first-PUBLISH path completes (record 0 opened as the
/// confirmation, then record 1, and a b2c record), with no PSK reveal.
pub const REACH_RECORD_PATH: &str =
    "reachable without PSK reveal: first-PUBLISH path, records both ways";
/// Sanity (key update, LWA2.md 8.2): a client and a broker run of one
/// connection both updated and opened a record of the other under the new
/// keys, with no PSK reveal.
pub const REACH_KEY_UPDATE: &str =
    "reachable without PSK reveal: key update, then records both ways under the new keys";
/// LWA.md 12.12: no confirmation accepted and no record opened for a revoked PSK.
pub const R_REVOCATION: &str =
    "R revocation: no confirmation accepted and no record opened after the PSK was revoked";
/// Sanity (revocation): a revocation after a completed exchange.
pub const REACH_REVOKED_AFTER: &str = "reachable: PSK revoked after a completed exchange";
/// Sanity (revocation): a revocation while a client's confirmation awaits the broker.
pub const REACH_REVOKED_PENDING: &str =
    "reachable: PSK revoked while a sent confirmation awaits the broker";

/// Every property of LWA1 without revocation, in a fixed order.
pub fn all() -> Vec<Property<LwaModel>> {
    for_model(&LwaModel::honest(Bounds::CI))
}

/// Every property of `m`, in a fixed order: the claims (S2 and S8 named
/// after the version's confirmation), the reachability checks, and the
/// revocation rule with its reachability checks where `m` has revocation.
pub fn for_model(m: &LwaModel) -> Vec<Property<LwaModel>> {
    let mut out: Vec<Property<LwaModel>> = vec![
        Property::always(S1_BROKER_AUTH, s1),
        Property::always(s2_name(m.version), s2),
        Property::always(S3_KEY_SECRECY, s3),
        Property::always(S4_FORWARD_SECRECY, s4),
        Property::always(S5_RECORDS, s5),
        Property::always(S6_PAYLOAD_SECRECY, s6),
        Property::always(s8_name(m.version), s8),
        Property::always(S9_DOWNGRADE, s9),
        Property::always(S10_KEY_CONFIRMATION, s10),
        Property::sometimes(REACH_EXCHANGE, reach_exchange),
        Property::sometimes(REACH_REVEAL_AFTER, reach_reveal_after),
        Property::sometimes(REACH_INSIDER, reach_insider),
        Property::sometimes(REACH_FINISHED_PATH, reach_finished_path),
    ];
    if m.version == Version::Lwa2 {
        out.push(Property::sometimes(REACH_RECORD_PATH, reach_record_path));
    }
    if m.key_update {
        out.push(Property::sometimes(REACH_KEY_UPDATE, reach_key_update));
    }
    if m.has_revocation() {
        let revocation: [Property<LwaModel>; 3] = [
            Property::always(R_REVOCATION, r_revocation),
            Property::sometimes(REACH_REVOKED_AFTER, reach_revoked_after),
            Property::sometimes(REACH_REVOKED_PENDING, reach_revoked_pending),
        ];
        out.extend(revocation);
    }
    out
}

/// The name of S2 in `version`.
pub fn s2_name(version: Version) -> &'static str {
    match version {
        Version::Lwa1 => S2_CLIENT_AUTH,
        Version::Lwa2 => S2_CLIENT_AUTH_LWA2,
    }
}

/// The name of S8 in `version`.
pub fn s8_name(version: Version) -> &'static str {
    match version {
        Version::Lwa1 => S8_NO_SIDE_EFFECT,
        Version::Lwa2 => S8_NO_SIDE_EFFECT_LWA2,
    }
}

/// The names of LWA1's `always` properties (the claims).
pub fn claims() -> Vec<&'static str> {
    claims_of(Version::Lwa1)
}

/// The names of the `always` properties (the claims) of `version`.
pub fn claims_of(version: Version) -> Vec<&'static str> {
    vec![
        S1_BROKER_AUTH,
        s2_name(version),
        S3_KEY_SECRECY,
        S4_FORWARD_SECRECY,
        S5_RECORDS,
        S6_PAYLOAD_SECRECY,
        s8_name(version),
        S9_DOWNGRADE,
        S10_KEY_CONFIRMATION,
    ]
}

/// Whether a client in this phase accepted the response (`broker_mac`
/// verified): LWA1 and LWA2 after the confirmation, LWA2 before it.
fn accepted(phase: ClientPhase) -> bool {
    matches!(phase, ClientPhase::Open | ClientPhase::Confirming)
}

fn clean_clients(s: &State) -> impl Iterator<Item = (usize, &ClientState, View)> {
    s.clients
        .iter()
        .enumerate()
        .filter(|(_, c)| accepted(c.phase) && c.clean)
        .filter_map(|(i, c)| c.view.map(|v| (i, c, v)))
}

fn clean_brokers(s: &State) -> impl Iterator<Item = (usize, &BrokerState, View)> {
    s.brokers
        .iter()
        .enumerate()
        .filter(|(_, b)| b.phase == BrokerPhase::Open && b.clean)
        .filter_map(|(j, b)| b.view.map(|v| (j, b, v)))
        .filter(|(_, _, v)| v.offer.ident == Ident::A)
}

/// Broker sessions that sent a response with exactly this view.
fn brokers_with(s: &State, v: &View) -> usize {
    s.brokers
        .iter()
        .filter(|b| b.view.as_ref() == Some(v))
        .count()
}

/// S1: every clean client acceptance has a broker run with the same
/// identity, context, offer, chosen limit, `e_b` and Session Present, and no
/// broker run is claimed by two client acceptances.
fn s1(_: &LwaModel, s: &State) -> bool {
    let matched = clean_clients(s).all(|(_, _, v)| brokers_with(s, &v) >= 1);
    let injective = s
        .brokers
        .iter()
        .filter_map(|b| b.view)
        .all(|bv| clean_clients(s).filter(|(_, _, v)| *v == bv).count() <= 1);
    matched && injective
}

/// S2: every clean broker acceptance has a client that sent, for the same
/// view, the confirmation the broker accepted (the finished, or c2b record
/// 0), and no client run is accepted twice.
fn s2(_: &LwaModel, s: &State) -> bool {
    clean_brokers(s).all(|(_, b, bv)| confirmers(s, &bv, b.confirmed) >= 1)
        && distinct_per_client(s, clean_brokers(s).map(|(_, _, v)| v).collect())
}

/// Client sessions with this view that sent the confirmation `how` (either
/// of the two for `None`). An LWA1 client sends the finished when it accepts.
fn confirmers(s: &State, v: &View, how: Option<Confirmation>) -> usize {
    s.clients
        .iter()
        .filter(|c| c.view.as_ref() == Some(v) && sent(c, how))
        .count()
}

/// Whether client `c` sent the confirmation `how` (either for `None`).
fn sent(c: &ClientState, how: Option<Confirmation>) -> bool {
    match how {
        Some(Confirmation::Finished) => c.finished,
        Some(Confirmation::FirstRecord) => c.sealed > 0,
        None => c.finished || c.sealed > 0,
    }
}

/// No two of these broker views belong to the same client run. Client
/// offers carry the client's own `e_c`, so equal views mean the same run.
fn distinct_per_client(s: &State, views: Vec<View>) -> bool {
    s.clients
        .iter()
        .filter_map(|c| c.view)
        .all(|cv| views.iter().filter(|v| **v == cv).count() <= 1)
}

/// The record keys and IVs of a clean session, of every generation the model has.
fn keys_secret(m: &LwaModel, s: &State) -> bool {
    let kn = m.knowledge(s);
    let gens: &[u8] = if m.key_update { &[0, 1] } else { &[0] };
    let secret = |scalar: Scalar, v: &View| {
        gens.iter().all(|&gen| {
            let k = m.keys_gen(scalar, v, gen);
            [k.c2b.0, k.c2b.1, k.b2c.0, k.b2c.1]
                .iter()
                .all(|key| !kn.key(key))
        })
    };
    clean_clients(s).all(|(i, _, v)| secret(Scalar::Client(i as u8), &v))
        && clean_brokers(s).all(|(j, _, v)| secret(Scalar::Broker(j as u8), &v))
}

/// S3: record keys and IVs of clean sessions are not derivable, while
/// `PSK(A)` is secret (the attacker knows `PSK(M)` throughout).
fn s3(m: &LwaModel, s: &State) -> bool {
    s.psk_a_revealed || keys_secret(m, s)
}

/// S4: the same after `PSK(A)` was revealed, for sessions accepted before.
fn s4(m: &LwaModel, s: &State) -> bool {
    !s.psk_a_revealed || keys_secret(m, s)
}

/// S5: what a clean receiver opened is, in order, records 0, 1, ... sealed
/// in the other direction by one peer session whose view equals its own.
fn s5(_: &LwaModel, s: &State) -> bool {
    let in_order = |opened: &[Payload], v: &View, peer_is_client: bool| {
        let mut peer = None;
        opened.iter().enumerate().all(|(pos, p)| match *p {
            Payload::Honest { sender, idx } => {
                let peer_view = match sender {
                    Party::Client(i) if peer_is_client => s.clients[i as usize].view,
                    Party::Broker(j) if !peer_is_client => s.brokers[j as usize].view,
                    _ => return false,
                };
                let same_peer = *peer.get_or_insert(sender) == sender;
                same_peer && idx as usize == pos && peer_view.as_ref() == Some(v)
            }
            Payload::Attacker => false,
        })
    };
    clean_clients(s).all(|(_, c, v)| in_order(&c.opened, &v, false))
        && clean_brokers(s).all(|(_, b, v)| in_order(&b.opened, &v, true))
}

/// S6: no payload sealed by a clean session (or by a client that published
/// at all) is known to the attacker.
fn s6(m: &LwaModel, s: &State) -> bool {
    let kn = m.knowledge(s);
    let client_payloads = s
        .clients
        .iter()
        .enumerate()
        .filter(|(_, c)| (accepted(c.phase) && c.clean) || c.phase == ClientPhase::PlainOpen);
    let client_ok = client_payloads.into_iter().all(|(i, c)| {
        (0..c.sealed).all(|idx| {
            !kn.payload(Payload::Honest {
                sender: Party::Client(i as u8),
                idx,
            })
        })
    });
    let broker_ok = clean_brokers(s).all(|(j, b, _)| {
        (0..b.sealed).all(|idx| {
            !kn.payload(Payload::Honest {
                sender: Party::Broker(j as u8),
                idx,
            })
        })
    });
    client_ok && broker_ok
}

/// S8: each side effect made in the name of `A` (while `PSK(A)` was
/// secret) is backed by a distinct client run that sent its confirmation
/// (the finished, or in LWA2 c2b record 0) for the same view.
fn s8(_: &LwaModel, s: &State) -> bool {
    let effected: Vec<View> = s
        .brokers
        .iter()
        .filter(|b| b.effect == Some(true))
        .filter_map(|b| b.view)
        .filter(|v| v.offer.ident == Ident::A)
        .collect();
    effected.iter().all(|v| confirmers(s, v, None) >= 1) && distinct_per_client(s, effected)
}

/// S9: a client that published did so only on a connection where S1
/// holds (a broker run with its view), with the chosen limit at most its
/// proposal; a client that accepted an unauthenticated CONNACK fails it.
fn s9(_: &LwaModel, s: &State) -> bool {
    s.clients
        .iter()
        .filter(|c| c.sealed > 0)
        .all(|c| match (c.phase, c.view) {
            (ClientPhase::PlainOpen, _) => false,
            (_, Some(v)) if c.clean => brokers_with(s, &v) >= 1 && v.chosen <= v.offer.limit,
            _ => true,
        })
}

/// S10: a clean client's record keys are held by some broker run, and a
/// clean broker's by some client run.
fn s10(m: &LwaModel, s: &State) -> bool {
    let broker_keys: Vec<_> = s
        .brokers
        .iter()
        .enumerate()
        .filter_map(|(j, b)| m.broker_keys(j, b))
        .collect();
    let client_keys: Vec<_> = s
        .clients
        .iter()
        .enumerate()
        .filter(|(_, c)| accepted(c.phase))
        .filter_map(|(i, c)| m.client_keys(i, c))
        .collect();
    let same = |a: &crate::model::SessionKeys, b: &crate::model::SessionKeys| {
        a.c2b == b.c2b && a.b2c == b.b2c
    };
    clean_clients(s).all(|(i, c, _)| {
        m.client_keys(i, c)
            .is_none_or(|k| broker_keys.iter().any(|b| same(&k, b)))
    }) && clean_brokers(s).all(|(j, b, _)| {
        m.broker_keys(j, b)
            .is_none_or(|k| client_keys.iter().any(|c| same(&k, c)))
    })
}

fn reach_exchange(_: &LwaModel, s: &State) -> bool {
    clean_clients(s).any(|(_, c, v)| {
        !c.opened.is_empty() && clean_brokers(s).any(|(_, b, bv)| bv == v && !b.opened.is_empty())
    })
}

fn reach_reveal_after(_: &LwaModel, s: &State) -> bool {
    s.psk_a_revealed && clean_clients(s).any(|(_, c, _)| !c.opened.is_empty() && c.sealed > 0)
}

fn reach_insider(_: &LwaModel, s: &State) -> bool {
    s.brokers
        .iter()
        .any(|b| b.phase == BrokerPhase::Open && b.view.is_some_and(|v| v.offer.ident == Ident::M))
}

/// Whether broker run `b` has view `v`, was convinced by `how` and opened
/// at least `min` records.
fn broker_done(b: &BrokerState, v: &View, how: Confirmation, min: usize) -> bool {
    b.view.as_ref() == Some(v) && b.confirmed == Some(how) && b.opened.len() >= min
}

/// A clean client and a clean broker run with the same view, the broker
/// convinced by `how`, have opened records of each other (the broker at
/// least `min`), and `PSK(A)` was never revealed nor revoked.
fn exchange_without_reveal(s: &State, how: Confirmation, min: usize) -> bool {
    let done = |v: &View| clean_brokers(s).any(|(_, b, _)| broker_done(b, v, how, min));
    let exchanged = clean_clients(s).any(|(_, c, v)| !c.opened.is_empty() && done(&v));
    !s.psk_a_revealed && !s.psk_a_revoked && exchanged
}

fn reach_finished_path(_: &LwaModel, s: &State) -> bool {
    exchange_without_reveal(s, Confirmation::Finished, 1)
}

/// Record 0 opened as the confirmation, then record 1 at counter 1.
fn reach_record_path(_: &LwaModel, s: &State) -> bool {
    exchange_without_reveal(s, Confirmation::FirstRecord, 2)
}

fn reach_key_update(_: &LwaModel, s: &State) -> bool {
    let client_done = |v: &View| {
        clean_clients(s).any(|(_, c, cv)| {
            cv == *v
                && c.opened_at_update
                    .is_some_and(|at| c.opened.len() > usize::from(at))
        })
    };
    let exchanged = clean_brokers(s).any(|(_, b, v)| {
        b.updated_at
            .is_some_and(|(at, _)| b.opened.len() > usize::from(at))
            && client_done(&v)
    });
    !s.psk_a_revealed && !s.psk_a_revoked && exchanged
}

/// LWA.md 12.12: no broker run accepted a confirmation or opened a record
/// of identity `A` after `PSK(A)` was revoked.
fn r_revocation(_: &LwaModel, s: &State) -> bool {
    s.brokers.iter().all(|b| !b.after_revocation)
}

fn reach_revoked_after(_: &LwaModel, s: &State) -> bool {
    s.psk_a_revoked && clean_brokers(s).any(|(_, b, _)| !b.opened.is_empty())
}

/// Whether broker run `b` awaits the confirmation of an `A` client that sent it.
fn pending_confirmation(s: &State, b: &BrokerState) -> bool {
    let Some(v) = b.view else {
        return false;
    };
    b.phase == BrokerPhase::AwaitFinished
        && v.offer.ident == Ident::A
        && confirmers(s, &v, None) >= 1
}

fn reach_revoked_pending(_: &LwaModel, s: &State) -> bool {
    s.psk_a_revoked && s.brokers.iter().any(|b| pending_confirmation(s, b))
}
