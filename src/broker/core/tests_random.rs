//! Random operation sequences: the core never panics and keeps its
//! invariants (windows, queue bounds, connection map, timers) whatever
//! clients send and in whatever order connections come and go.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::persist::{MessageRecord, SessionRecord};
use super::test_support::*;
use super::*;
use crate::codec::LastWill;
use crate::codec::{
    Auth, PubResponse, Publish, RetainHandling, Subscribe, SubscribeFilter, SubscriptionOptions,
    Unsubscribe,
};

const TOPICS: &[&str] = &["a", "a/b", "a/c", "$SYS/x", "b/+", "", "x/y/z"];
const FILTERS: &[&str] = &[
    "a",
    "a/#",
    "+/b",
    "#",
    "$share/g/a/+",
    "$share/h/#",
    "a/#/b",
    "$SYS/#",
    "x/+/z",
];

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Op {
    Connect {
        conn: ConnId,
        id: usize,
        v5: bool,
        clean: bool,
        expiry: Option<u32>,
        receive_max: Option<u16>,
        max_packet: Option<u32>,
        will_delay: Option<Option<u32>>,
    },
    Packet(ConnId, Packet),
    Gone(ConnId, Option<u8>),
    Tick(u64),
    Shutdown,
    /// Save-and-reload through the persistence records into a fresh core.
    Restart,
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    let publish = (
        0..TOPICS.len(),
        qos(),
        any::<bool>(),
        0u16..6,
        0usize..40,
        prop::option::of(0u32..8),
    )
        .prop_map(|(t, qos, retain, id, len, expiry)| {
            Packet::Publish(Publish {
                dup: false,
                qos,
                retain,
                topic: TOPICS[t].into(),
                packet_id: if qos == QoS::AtMostOnce { 0 } else { id },
                properties: Properties {
                    message_expiry_interval: expiry,
                    ..Properties::default()
                }
                .into(),
                payload: Bytes::from(vec![b'p'; len]),
            })
        });
    let ack = (0u8..4, 0u16..6, any::<bool>()).prop_map(|(kind, id, err)| {
        let r = PubResponse {
            reason_code: if err {
                ReasonCode(0x80)
            } else {
                ReasonCode::SUCCESS
            },
            ..PubResponse::success(id)
        };
        match kind {
            0 => Packet::PubAck(r),
            1 => Packet::PubRec(r),
            2 => Packet::PubRel(r),
            _ => Packet::PubComp(r),
        }
    });
    let subscribe = (
        prop::collection::vec(
            (
                0..FILTERS.len(),
                qos(),
                any::<bool>(),
                any::<bool>(),
                0u8..3,
            ),
            0..3,
        ),
        prop::option::of(1u32..4),
    )
        .prop_map(|(filters, id)| {
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: filters
                    .into_iter()
                    .map(|(f, qos, no_local, rap, rh)| SubscribeFilter {
                        filter: FILTERS[f].into(),
                        options: SubscriptionOptions {
                            qos,
                            no_local,
                            retain_as_published: rap,
                            retain_handling: match rh {
                                0 => RetainHandling::SendAtSubscribe,
                                1 => RetainHandling::SendIfNew,
                                _ => RetainHandling::DoNotSend,
                            },
                        },
                    })
                    .collect(),
                properties: Properties {
                    subscription_identifiers: id.into_iter().collect(),
                    ..Properties::default()
                }
                .into(),
            })
        });
    let unsubscribe = (0..FILTERS.len()).prop_map(|f| {
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 2,
            filters: vec![FILTERS[f].into()],
            properties: Default::default(),
        })
    });
    let disconnect = (any::<bool>(), prop::option::of(0u32..5)).prop_map(|(will, expiry)| {
        let mut d = Disconnect::new(if will {
            ReasonCode::DISCONNECT_WITH_WILL
        } else {
            ReasonCode::NORMAL_DISCONNECTION
        });
        d.properties.session_expiry_interval = expiry;
        Packet::Disconnect(d)
    });
    prop_oneof![
        6 => publish,
        4 => ack,
        3 => subscribe,
        1 => unsubscribe,
        1 => disconnect,
        1 => Just(Packet::PingReq),
        1 => Just(Packet::Connect(Box::new(v5("again")))),
        1 => Just(Packet::Auth(Box::new(Auth {
            reason_code: ReasonCode::RE_AUTHENTICATE,
            properties: Properties::default(),
        }))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let connect = (
        (0u64..4, 0usize..4, any::<bool>(), any::<bool>()),
        (
            prop::option::of(0u32..6),
            prop::option::of(1u16..4),
            prop::option::of(10u32..80),
            prop::option::of(prop::option::of(0u32..4)),
        ),
    )
        .prop_map(
            |((conn, id, v5, clean), (expiry, receive_max, max_packet, will_delay))| Op::Connect {
                conn,
                id,
                v5,
                clean,
                expiry,
                receive_max,
                max_packet,
                will_delay,
            },
        );
    prop_oneof![
        3 => connect,
        10 => (0u64..4, packet()).prop_map(|(c, p)| Op::Packet(c, p)),
        2 => (0u64..4, prop::option::of(prop_oneof![Just(0u8), Just(4u8)]))
            .prop_map(|(c, d)| Op::Gone(c, d)),
        2 => (0u64..4).prop_map(Op::Tick),
        1 => Just(Op::Shutdown),
        1 => Just(Op::Restart),
    ]
}

fn apply(h: &mut Harness, op: Op) -> Vec<Output> {
    match op {
        Op::Connect {
            conn,
            id,
            v5: is_v5,
            clean,
            expiry,
            receive_max,
            max_packet,
            will_delay,
        } => {
            let id = ["c0", "c1", "c2", ""][id];
            let mut c = if is_v5 { v5(id) } else { v311(id, clean) };
            c.clean_start = clean;
            if is_v5 {
                c.properties.session_expiry_interval = expiry;
                c.properties.receive_maximum = receive_max;
                c.properties.maximum_packet_size = max_packet;
            }
            c.will = will_delay.map(|delay| LastWill {
                topic: "a/b".into(),
                payload: Bytes::from_static(b"will"),
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: delay.filter(|_| is_v5),
                    ..Properties::default()
                },
            });
            h.connect_with(conn, c)
        }
        Op::Packet(conn, p) => h.send(conn, p),
        Op::Gone(conn, d) => {
            let d = d.map(|r| Disconnect::new(ReasonCode(r)));
            h.core.disconnected(conn, d, h.now)
        }
        Op::Tick(secs) => h.advance(secs),
        Op::Shutdown => h.core.shutdown(h.now),
        // Handled by `World::step`.
        Op::Restart => Vec::new(),
    }
}

/// A core plus a stand-in for the persistent store, fed from its batches.
struct World {
    h: Harness,
    sessions: BTreeMap<String, SessionRecord>,
    retained: BTreeMap<String, MessageRecord>,
}

fn limits() -> Limits {
    Limits {
        max_inflight: 3,
        max_queued_messages: 4,
        receive_maximum: 3,
        max_session_expiry: 10,
        ..Limits::default()
    }
}

impl World {
    fn new() -> World {
        let mut h = Harness::with_limits(limits());
        h.core.set_sys_interval(Some(Duration::from_secs(3)), h.now);
        h.core.enable_persistence();
        World {
            h,
            sessions: BTreeMap::new(),
            retained: BTreeMap::new(),
        }
    }

    fn step(&mut self, op: Op) -> Vec<Output> {
        if let Op::Restart = op {
            let mut fresh = Harness::with_limits(limits());
            fresh
                .core
                .set_sys_interval(Some(Duration::from_secs(3)), fresh.now);
            fresh.core.enable_persistence();
            let policy = Arc::clone(&fresh.policy);
            let sessions = self.sessions.clone().into_iter().collect();
            let retained = self.retained.values().cloned().collect();
            fresh
                .core
                .restore(
                    sessions,
                    retained,
                    &|_| Some(Arc::clone(&policy)),
                    fresh.now,
                )
                .expect("stored records load");
            self.h = fresh;
            // What was restored must match what was stored.
            for (cid, rec) in &self.sessions {
                let s = self.h.core.sessions.get(cid).expect("restored session");
                assert_eq!(s.inflight.len(), rec.inflight.len());
                assert_eq!(
                    s.inbound_qos2.iter().copied().collect::<Vec<_>>(),
                    rec.inbound_qos2
                );
            }
            return Vec::new();
        }
        let out = apply(&mut self.h, op);
        let now = self.h.now;
        let batch = self.h.core.take_persist_batch(now);
        for (cid, record) in batch.sessions {
            match record {
                Some(r) => {
                    // Every record written must load back as the same session state.
                    let back = r.to_session(&cid, now).expect("session record loads");
                    let live = self
                        .h
                        .core
                        .sessions
                        .get(&cid)
                        .expect("written session is live");
                    assert_eq!(back.subscriptions, live.subscriptions);
                    assert_eq!(back.inbound_qos2, live.inbound_qos2);
                    let ids = |s: &Session| -> Vec<u16> {
                        s.inflight.iter().map(|f| f.publish.packet_id).collect()
                    };
                    assert_eq!(ids(&back), ids(live));
                    self.sessions.insert(cid, r);
                }
                None => {
                    self.sessions.remove(&cid);
                }
            }
        }
        // The journal missed nothing: every persistent session's stored
        // record matches it.
        for (cid, live) in &self.h.core.sessions {
            if live.expiry_interval == 0 {
                continue;
            }
            let stored = self
                .sessions
                .get(cid)
                .expect("persistent session is stored");
            let back = stored.to_session(cid, now).expect("loads");
            assert_eq!(
                &back.subscriptions, &live.subscriptions,
                "{cid}: subscriptions"
            );
            assert_eq!(
                &back.inbound_qos2, &live.inbound_qos2,
                "{cid}: inbound QoS 2"
            );
            let ids = |s: &Session| -> Vec<u16> {
                s.inflight.iter().map(|f| f.publish.packet_id).collect()
            };
            assert_eq!(ids(&back), ids(live), "{cid}: in flight");
            let durable = |s: &Session| s.queue.iter().filter(|d| d.qos != QoS::AtMostOnce).count();
            assert_eq!(durable(&back), durable(live), "{cid}: queue");
        }
        for (topic, record) in batch.retained {
            match record {
                Some(r) => {
                    self.retained.insert(topic, r);
                }
                None => {
                    self.retained.remove(&topic);
                }
            }
        }
        out
    }
}

fn check_invariants(h: &Harness, out: &[Output]) {
    let core = &h.core;
    for (conn, cid) in &core.conns {
        let s = core.sessions.get(cid).expect("attached session exists");
        assert_eq!(s.conn(), Some(*conn), "conn map and link agree");
    }
    for (cid, s) in &core.sessions {
        if let Some(link) = &s.link {
            // A resumed session may hold more than a smaller new window.
            assert!(s.inflight.len() <= usize::from(core.limits.max_inflight));
            assert_eq!(core.conns.get(&link.conn), Some(cid));
        }
        assert!(s.queue.len() <= flow::online_queue_limit(core.limits.max_queued_messages));
        assert_eq!(
            s.queued_bytes(),
            s.queue
                .iter()
                .map(|d| d.message.payload.len())
                .sum::<usize>(),
            "{cid}: queued byte total in step with the queue"
        );
        if !s.throttled.is_empty() {
            // Paused publishers are released as soon as the queue drains
            // or the session goes offline.
            assert!(
                s.link.is_some(),
                "{cid}: offline but still pausing publishers"
            );
            assert!(
                s.queue.len() > flow::low_water(core.limits.max_queued_messages)
                    || s.queued_bytes() > flow::low_water(core.limits.max_queued_bytes_per_session),
                "{cid}: drained but still pausing publishers"
            );
        }
        assert!(s.index_consistent(), "packet id index in step");
        let mut ids: Vec<u16> = s.inflight.iter().map(|f| f.publish.packet_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), s.inflight.len(), "packet ids unique");
        assert!(!ids.contains(&0));
        for (t, kind) in [(s.will_due, Timer::Will), (s.expires_at, Timer::Expiry)] {
            if let Some(t) = t {
                assert!(core.timers.contains(&(t, kind, cid.clone())));
            }
        }
        assert_eq!(s.will_due.is_some(), s.pending_will.is_some());
    }
    for (_, kind, cid) in &core.timers {
        let s = core.sessions.get(cid).expect("timer for a live session");
        match kind {
            Timer::Will => assert!(s.will_due.is_some()),
            Timer::Expiry => assert!(s.expires_at.is_some() && s.link.is_none()),
        }
    }
    // Nothing is sent to a connection after its Close, and a Send goes to a
    // connection that is attached or is closed later in the same batch.
    for (i, o) in out.iter().enumerate() {
        if let Output::Send { conn, .. } = o {
            let closed_before = out[..i]
                .iter()
                .any(|x| matches!(x, Output::Close { conn: c, .. } if c == conn));
            let closed_after = out[i..]
                .iter()
                .any(|x| matches!(x, Output::Close { conn: c, .. } if c == conn));
            assert!(!closed_before, "send after close: {out:?}");
            assert!(
                core.conns.contains_key(conn) || closed_after,
                "send to a detached connection"
            );
        }
    }
    for o in out {
        if let Output::Send {
            packet: Packet::Publish(p),
            ..
        } = o
        {
            assert_eq!(p.qos == QoS::AtMostOnce, p.packet_id == 0);
            assert!(!p.topic.is_empty());
        }
    }
}

fn run_model(ops: Vec<Op>) {
    let mut world = World::new();
    for op in ops {
        let out = world.step(op);
        check_invariants(&world.h, &out);
    }
}

/// Cases of the long run (`scripts/long-tests.sh`); `MODEL_CASES` overrides.
fn long_cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

proptest! {
    // The suite's run: fast enough for every `cargo test`, and it replays the
    // committed regressions in proptest-regressions/ first.
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_invariants(ops in prop::collection::vec(op(), 1..60)) {
        run_model(ops);
    }
}

proptest! {
    // The same model with many more and longer sequences: minutes, so it is
    // not part of `cargo test`; scripts/long-tests.sh runs it.
    #![proptest_config(ProptestConfig {
        cases: long_cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    #[ignore = "long run: scripts/long-tests.sh"]
    fn random_sequences_keep_invariants_long(ops in prop::collection::vec(op(), 1..120)) {
        run_model(ops);
    }
}
