//! The security claims of LWA.md section 14 as stateright properties.
//!
//! "Clean" sessions are the ones the claims speak about: identity `A` (the
//! honest one) whose PSK was still secret when that side accepted. A session
//! of the attacker's own identity `M`, or one accepted after `PSK(A)` leaked,
//! is the attacker's and promises nothing. Each `always` property is checked
//! in every reachable state, so a leak at any later point (forward secrecy)
//! is a violation too.

use stateright::Property;

use crate::model::{BrokerPhase, BrokerState, ClientPhase, ClientState, LwaModel, State, View};
use crate::terms::{Ident, Party, Payload};

/// S1: client convinced when broker_mac verifies (CONNACK).
pub const S1_BROKER_AUTH: &str = "S1 broker authentication: injective agreement at CONNACK";
/// S2: broker convinced when client_mac verifies (AUTH finished).
pub const S2_CLIENT_AUTH: &str = "S2 client authentication: injective agreement at AUTH finished";
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

/// Every property, in a fixed order.
pub fn all() -> Vec<Property<LwaModel>> {
    vec![
        Property::always(S1_BROKER_AUTH, s1),
        Property::always(S2_CLIENT_AUTH, s2),
        Property::always(S3_KEY_SECRECY, s3),
        Property::always(S4_FORWARD_SECRECY, s4),
        Property::always(S5_RECORDS, s5),
        Property::always(S6_PAYLOAD_SECRECY, s6),
        Property::always(S8_NO_SIDE_EFFECT, s8),
        Property::always(S9_DOWNGRADE, s9),
        Property::always(S10_KEY_CONFIRMATION, s10),
        Property::sometimes(REACH_EXCHANGE, reach_exchange),
        Property::sometimes(REACH_REVEAL_AFTER, reach_reveal_after),
        Property::sometimes(REACH_INSIDER, reach_insider),
    ]
}

/// The names of the `always` properties (the claims).
pub fn claims() -> Vec<&'static str> {
    vec![
        S1_BROKER_AUTH,
        S2_CLIENT_AUTH,
        S3_KEY_SECRECY,
        S4_FORWARD_SECRECY,
        S5_RECORDS,
        S6_PAYLOAD_SECRECY,
        S8_NO_SIDE_EFFECT,
        S9_DOWNGRADE,
        S10_KEY_CONFIRMATION,
    ]
}

fn clean_clients(s: &State) -> impl Iterator<Item = (usize, &ClientState, View)> {
    s.clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.phase == ClientPhase::Open && c.clean)
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

/// S2: every clean broker acceptance has a client that sent that finished
/// for the same view, and no client run is accepted twice.
fn s2(_: &LwaModel, s: &State) -> bool {
    clean_brokers(s).all(|(_, _, bv)| finished_senders(s, &bv) >= 1)
        && distinct_per_client(s, clean_brokers(s).map(|(_, _, v)| v).collect())
}

/// Client sessions that sent a finished (are Open) with this view.
fn finished_senders(s: &State, v: &View) -> usize {
    s.clients
        .iter()
        .filter(|c| c.phase == ClientPhase::Open && c.view.as_ref() == Some(v))
        .count()
}

/// No two of these broker views belong to the same client run. Client
/// offers carry the client's own `e_c`, so equal views mean the same run.
fn distinct_per_client(s: &State, views: Vec<View>) -> bool {
    s.clients
        .iter()
        .filter_map(|c| c.view)
        .all(|cv| views.iter().filter(|v| **v == cv).count() <= 1)
}

fn keys_secret(m: &LwaModel, s: &State) -> bool {
    let kn = m.knowledge(s);
    let secret = |k: crate::model::SessionKeys| {
        [k.c2b.0, k.c2b.1, k.b2c.0, k.b2c.1]
            .iter()
            .all(|key| !kn.key(key))
    };
    clean_clients(s).all(|(i, c, _)| m.client_keys(i, c).is_none_or(secret))
        && clean_brokers(s).all(|(j, b, _)| m.broker_keys(j, b).is_none_or(secret))
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
    let client_payloads = s.clients.iter().enumerate().filter(|(_, c)| {
        (c.phase == ClientPhase::Open && c.clean) || c.phase == ClientPhase::PlainOpen
    });
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
/// secret) is backed by a distinct client run that sent its finished for
/// the same view.
fn s8(_: &LwaModel, s: &State) -> bool {
    let effected: Vec<View> = s
        .brokers
        .iter()
        .filter(|b| b.effect == Some(true))
        .filter_map(|b| b.view)
        .filter(|v| v.offer.ident == Ident::A)
        .collect();
    effected.iter().all(|v| finished_senders(s, v) >= 1) && distinct_per_client(s, effected)
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
        .filter(|(_, c)| c.phase == ClientPhase::Open)
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
