//! A broker driven by arbitrary client bytes: three sans-IO connections
//! (`broker::connection::Connection`) in front of one `BrokerCore`, wired as
//! the tokio server wires them (anonymous listener, allow-all policy), with
//! time under the input's control.
//!
//! Input: a sequence of records `op [len_lo len_hi bytes]`; `op & 3` picks
//! feed bytes / advance time / peer closes / reconnect, `(op >> 2) % 3` the
//! connection. Oracle: nothing panics, and every byte the broker writes to a
//! client decodes as MQTT in the client's version within the client's
//! Maximum Packet Size.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_lwa::auth::{AuthDecision, ListenerSecurity, PeerInfo};
use mqtt_lwa::broker::connection::{Action, Connection, ConnectionSettings};
use mqtt_lwa::broker::{BrokerCore, ConnId, Output, Stats};
use mqtt_lwa::codec::{Decoder, Packet, ProtocolVersion};
use mqtt_lwa::config::Limits;

const CLIENTS: usize = 3;

/// One client: the broker's connection machine plus what the test knows of the client.
struct Client {
    machine: Connection,
    /// Server-side decoder over the client's bytes: learns the client's version.
    shadow: Decoder,
    shadow_buf: BytesMut,
    /// The client's Maximum Packet Size, from its CONNECT.
    max_packet: Option<u32>,
    /// Decoder for what the broker sends, once the version is known.
    inbound: Option<Decoder>,
    inbound_buf: BytesMut,
    reported_closed: bool,
}

struct World {
    core: BrokerCore,
    clients: Vec<Client>,
    security: ListenerSecurity,
    limits: Limits,
    stats: Arc<Stats>,
    next_id: ConnId,
    now: Instant,
}

impl World {
    fn client(&mut self) -> Client {
        self.next_id += 1;
        let settings = ConnectionSettings {
            conn: self.next_id,
            listener: "fuzz".into(),
            policy: self.security.policy.clone(),
            limits: self.limits.clone(),
            over_quota: false,
            stats: self.stats.clone(),
        };
        Client {
            machine: Connection::new(settings, self.now),
            shadow: Decoder::new(usize::MAX),
            shadow_buf: BytesMut::new(),
            max_packet: None,
            inbound: None,
            inbound_buf: BytesMut::new(),
            reported_closed: false,
        }
    }

    fn index_of(&self, conn: ConnId) -> Option<usize> {
        self.clients.iter().position(|c| c.machine.id() == conn)
    }

    /// Applies core outputs to the connections they address.
    fn apply(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { conn, packet } => {
                    if let Some(i) = self.index_of(conn) {
                        self.clients[i].machine.deliver(packet);
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(i) = self.index_of(conn) {
                        self.clients[i].machine.close(reason);
                    }
                }
                // Flow control only changes when the server reads a socket;
                // the fuzzer feeds every input regardless.
                Output::Pause { .. } | Output::Resume { .. } => {}
            }
        }
    }

    /// Runs the connection's actions through the authenticator and the core.
    fn act(&mut self, i: usize, mut actions: Vec<Action>) {
        while !actions.is_empty() {
            let mut next = Vec::new();
            for action in actions {
                match action {
                    Action::Authenticate(connect) => {
                        let enhanced = connect.protocol_version == ProtocolVersion::V5
                            && connect.properties.authentication_method.is_some();
                        let preview = enhanced.then(|| self.core.connack_for(&connect, None, None));
                        let peer = PeerInfo {
                            remote_addr: None,
                            listener: "fuzz".into(),
                            tls: false,
                            tls_client_cn: None,
                            session_present: preview.as_ref().map(|p| p.session_present),
                        };
                        let decision: AuthDecision =
                            self.security.authenticator.authenticate(&connect, &peer);
                        let now = self.now;
                        next.extend(self.clients[i].machine.auth_decided(decision, preview, now));
                    }
                    Action::CoreConnect(req) => {
                        let out = self.core.connect(*req, self.now);
                        self.apply(out);
                    }
                    Action::CorePacket(packet) => {
                        let conn = self.clients[i].machine.id();
                        let out = self.core.packet(conn, packet, self.now);
                        self.apply(out);
                    }
                }
            }
            actions = next;
        }
    }

    /// Reports closed connections to the core and checks everything written.
    fn settle(&mut self) {
        for i in 0..self.clients.len() {
            if self.clients[i].machine.is_closed() && !self.clients[i].reported_closed {
                self.clients[i].reported_closed = true;
                if self.clients[i].machine.core_connected() {
                    let conn = self.clients[i].machine.id();
                    let disconnect = self.clients[i].machine.take_client_disconnect();
                    let out = self.core.disconnected(conn, disconnect, self.now);
                    self.apply(out);
                }
            }
        }
        for c in &mut self.clients {
            while let Some(bytes) = c.machine.take_output() {
                check_output(c, &bytes);
            }
        }
    }
}

/// The oracle: the broker's bytes are valid MQTT for this client.
fn check_output(c: &mut Client, bytes: &[u8]) {
    let Some(version) = c.shadow.version() else {
        // No CONNECT we could parse: only a 3.1.1-style refusal may go out.
        return;
    };
    let max = c.max_packet.map_or(usize::MAX, |m| m as usize);
    let dec = c
        .inbound
        .get_or_insert_with(|| Decoder::with_version(max, version));
    c.inbound_buf.extend_from_slice(bytes);
    loop {
        match dec.decode(&mut c.inbound_buf) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("broker sent bytes a {version:?} client rejects: {e}"),
        }
    }
}

/// Feeds the shadow decoder so the test knows the client's version and limits.
fn observe_client_bytes(c: &mut Client, bytes: &[u8]) {
    if c.shadow.version().is_some() {
        return;
    }
    c.shadow_buf.extend_from_slice(bytes);
    if let Ok(Some(Packet::Connect(connect))) = c.shadow.decode(&mut c.shadow_buf) {
        c.max_packet = connect.properties.maximum_packet_size;
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let limits = Limits {
        max_packet_size: 4096,
        ..Limits::default()
    };
    let stats = Arc::new(Stats::default());
    let mut world = World {
        core: BrokerCore::new(limits.clone(), stats.clone(), now),
        clients: Vec::new(),
        security: ListenerSecurity::anonymous(),
        limits,
        stats,
        next_id: 0,
        now,
    };
    for _ in 0..CLIENTS {
        let c = world.client();
        world.clients.push(c);
    }
    let mut input = data;
    while let Some((&op, rest)) = input.split_first() {
        input = rest;
        let i = usize::from(op >> 2) % CLIENTS;
        match op & 3 {
            0 => {
                let (len, rest) = match input {
                    [lo, hi, rest @ ..] => (usize::from(*lo) | usize::from(*hi) << 8, rest),
                    _ => (input.len(), &[][..]),
                };
                let (bytes, rest) = rest.split_at(len.min(rest.len()));
                input = rest;
                observe_client_bytes(&mut world.clients[i], bytes);
                let now = world.now;
                let actions = world.clients[i].machine.receive(bytes, now);
                world.act(i, actions);
            }
            1 => {
                let secs = input.first().copied().unwrap_or(0);
                input = input.get(1..).unwrap_or_default();
                world.now += Duration::from_secs(u64::from(secs));
                let now = world.now;
                for c in &mut world.clients {
                    c.machine.poll_timeout(now);
                }
                let out = world.core.tick(now);
                world.apply(out);
            }
            2 => world.clients[i].machine.peer_closed(),
            _ => {
                world.clients[i].machine.peer_closed();
                world.settle();
                let fresh = world.client();
                world.clients[i] = fresh;
            }
        }
        world.settle();
    }
});
