//! Test harness for the core: a controllable clock and helpers that build
//! packets and pick outputs apart.

use super::*;
use crate::auth::AllowAll;
use crate::codec::{Publish, Subscribe, SubscribeFilter, SubscriptionOptions};

/// A core under test with a controllable clock.
pub struct Harness {
    pub core: BrokerCore,
    pub now: Instant,
    pub stats: Arc<Stats>,
    pub policy: Arc<dyn AccessPolicy>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let now = Instant::now();
        let stats = Arc::new(Stats::default());
        Harness {
            core: BrokerCore::new(limits, Arc::clone(&stats), now),
            now,
            stats,
            policy: Arc::new(AllowAll),
        }
    }

    pub fn advance(&mut self, secs: u64) -> Vec<Output> {
        self.now += Duration::from_secs(secs);
        self.core.tick(self.now)
    }

    pub fn connect_with(&mut self, conn: ConnId, c: Connect) -> Vec<Output> {
        let req = ConnectRequest {
            conn,
            connect: c,
            // One principal for every connection: client ids are bound to
            // principals, and these tests reconnect as the same client.
            principal: Principal {
                username: Some("user".into()),
                lwa_identity: None,
            },
            policy: Arc::clone(&self.policy),
            listener: "test".into(),
            connack_sent: false,
            connack_auth: None,
            signed_session_present: None,
            payload_overhead: 0,
        };
        self.core.connect(req, self.now)
    }

    /// Connects as `principal`, the way the server would after authentication.
    pub fn connect_as(
        &mut self,
        conn: ConnId,
        c: Connect,
        principal: Principal,
        connack_sent: bool,
    ) -> Vec<Output> {
        let req = ConnectRequest {
            conn,
            connect: c,
            principal,
            policy: Arc::clone(&self.policy),
            listener: "test".into(),
            connack_sent,
            connack_auth: None,
            signed_session_present: None,
            payload_overhead: 0,
        };
        self.core.connect(req, self.now)
    }

    /// Connects and returns the CONNACK; panics if there is none.
    pub fn connect(&mut self, conn: ConnId, c: Connect) -> ConnAck {
        let out = self.connect_with(conn, c);
        match out.first() {
            Some(Output::Send {
                packet: Packet::ConnAck(ack),
                ..
            }) => *ack.clone(),
            other => panic!("no CONNACK: {other:?}"),
        }
    }

    pub fn send(&mut self, conn: ConnId, p: Packet) -> Vec<Output> {
        self.core.packet(conn, p, self.now)
    }

    pub fn subscribe(
        &mut self,
        conn: ConnId,
        filter: &str,
        opts: SubscriptionOptions,
    ) -> Vec<Output> {
        self.subscribe_id(conn, filter, opts, None)
    }

    pub fn subscribe_id(
        &mut self,
        conn: ConnId,
        filter: &str,
        opts: SubscriptionOptions,
        id: Option<u32>,
    ) -> Vec<Output> {
        let properties = Properties {
            subscription_identifiers: id.into_iter().collect(),
            ..Properties::default()
        };
        self.send(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                filters: vec![SubscribeFilter {
                    filter: filter.into(),
                    options: opts,
                }],
                properties: properties.into(),
            }),
        )
    }

    pub fn publish(&mut self, conn: ConnId, p: Publish) -> Vec<Output> {
        self.send(conn, Packet::Publish(p))
    }
}

pub fn v5(id: &str) -> Connect {
    Connect {
        protocol_version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

pub fn v311(id: &str, clean: bool) -> Connect {
    Connect {
        protocol_version: ProtocolVersion::V311,
        clean_start: clean,
        ..v5(id)
    }
}

/// A 5.0 CONNECT that resumes (clean start 0) with a session expiry.
pub fn v5_persistent(id: &str, expiry: u32) -> Connect {
    let mut c = v5(id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(expiry);
    c
}

pub fn msg(topic: &str, payload: &'static str, qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Default::default(),
        payload: Bytes::from_static(payload.as_bytes()),
    }
}

pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::qos(qos)
}

/// The packets sent to `conn`, in order.
pub fn to(out: &[Output], conn: ConnId) -> Vec<Packet> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, packet } if *c == conn => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

/// The PUBLISH packets sent to `conn`, in order.
pub fn pubs(out: &[Output], conn: ConnId) -> Vec<Publish> {
    to(out, conn)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

pub fn payloads(out: &[Output], conn: ConnId) -> Vec<String> {
    pubs(out, conn)
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

pub fn closes(out: &[Output]) -> Vec<(ConnId, Option<ReasonCode>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Close { conn, reason } => Some((*conn, *reason)),
            _ => None,
        })
        .collect()
}
