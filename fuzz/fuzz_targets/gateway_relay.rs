//! A gateway relay driven by arbitrary bytes from both sides: the broker's
//! sans-IO client connection (`broker::connection::Connection`, anonymous
//! listener, a policy that refuses `secret/` topics) and a
//! `gateway::relay::Relay`, wired as the gateway's task wires them, with the
//! upstream's answer to CONNECT and the time under the input's control.
//!
//! Input: records `op [len_lo len_hi bytes]`; `op % 6` picks: client bytes,
//! upstream bytes, time passes, the upstream answers CONNECT (success or a
//! refusal, 5.0 or 3.1.1, from the next byte), the upstream is lost, the
//! client goes away. Oracle: nothing panics; every byte the relay writes
//! upstream decodes as MQTT in the upstream's version; every byte written to
//! the client decodes in the client's version.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_lwa::auth::{AccessPolicy, ListenerSecurity, PeerInfo, Principal};
use mqtt_lwa::broker::connection::{Action, Connection, ConnectionSettings};
use mqtt_lwa::broker::Stats;
use mqtt_lwa::codec::{ConnAck, Decoder, Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use mqtt_lwa::config::Limits;
use mqtt_lwa::gateway::relay::{Relay, RelaySettings, Step, UpstreamUp};
use mqtt_lwa::gateway::template::Template;

/// Refuses everything under `secret/`, so the ACL paths run too.
struct Policy;

impl AccessPolicy for Policy {
    fn can_publish(&self, _: &Principal, _: &str, topic: &str) -> bool {
        !topic.starts_with("secret/")
    }
    fn can_subscribe(&self, _: &Principal, _: &str, filter: &str) -> Option<QoS> {
        (!filter.starts_with("secret/")).then_some(QoS::AtLeastOnce)
    }
    fn can_receive(&self, _: &Principal, _: &str, topic: &str) -> bool {
        !topic.starts_with("secret/")
    }
}

/// Checks that `bytes` decode as MQTT `version` packets (appended to `buf`).
fn check(dec: &mut Decoder, buf: &mut BytesMut, bytes: &[u8], who: &str) {
    buf.extend_from_slice(bytes);
    loop {
        match dec.decode(buf) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the relay wrote bytes the {who} rejects: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let limits = Limits {
        max_packet_size: 4096,
        receive_maximum: 4,
        ..Limits::default()
    };
    let security = ListenerSecurity::anonymous();
    let mut client = Connection::new(
        ConnectionSettings {
            conn: 1,
            listener: "fuzz".into(),
            policy: Arc::new(Policy),
            limits: limits.clone(),
            over_quota: false,
            stats: Arc::new(Stats::default()),
        },
        now,
    );
    let settings = Arc::new(RelaySettings {
        client_id_template: Template::parse("{principal}/{client_id}").expect("template"),
        username: None,
        password: None,
        limits,
    });
    let mut relay = Relay::new(settings, "gw-fuzz".into(), now);
    let mut asked = false;
    let mut up_check: Option<(Decoder, BytesMut)> = None;
    let mut client_version: Option<ProtocolVersion> = None;
    let mut client_check: Option<(Decoder, BytesMut)> = None;
    let mut shadow = Decoder::new(usize::MAX);
    let mut shadow_buf = BytesMut::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let len = match tail {
            [lo, hi, ..] => usize::from(*lo) | (usize::from(*hi & 0x0f) << 8),
            _ => tail.len(),
        };
        let body_start = tail.len().min(2);
        let body_end = (body_start + len).min(tail.len());
        let body = &tail[body_start..body_end];
        rest = &tail[body_end..];
        let mut actions = Vec::new();
        match op % 6 {
            0 => {
                if client_version.is_none() {
                    shadow_buf.extend_from_slice(body);
                    if let Ok(Some(Packet::Connect(c))) = shadow.decode(&mut shadow_buf) {
                        client_version = Some(c.protocol_version);
                    }
                }
                actions = client.receive(body, now);
            }
            1 => relay.upstream_receive(body, &mut client, now),
            2 => {
                now += Duration::from_millis(u64::from(body.first().copied().unwrap_or(1)) * 500);
                client.poll_timeout(now);
                relay.poll(now, &mut client);
            }
            3 if asked => {
                asked = false;
                let b = body.first().copied().unwrap_or(0);
                let up_version = if b & 1 == 0 {
                    ProtocolVersion::V5
                } else {
                    ProtocolVersion::V311
                };
                let reason = match b >> 1 {
                    0..=95 => ReasonCode::SUCCESS,
                    96..=111 => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    112..=119 => ReasonCode::NOT_AUTHORIZED,
                    _ => ReasonCode(b),
                };
                let connack = ConnAck {
                    session_present: b & 2 != 0,
                    reason_code: reason,
                    properties: Properties {
                        receive_maximum: body.get(1).map(|&m| u16::from(m.max(1))),
                        ..Properties::default()
                    },
                };
                up_check = Some((Decoder::new(usize::MAX), BytesMut::new()));
                if let Some((d, _)) = up_check.as_mut() {
                    d.set_version(up_version);
                }
                let rest = BytesMut::from(body.get(2..).unwrap_or_default());
                relay.upstream_connected(
                    UpstreamUp {
                        version: up_version,
                        connack,
                        rest,
                        addr: "fuzz:1883".into(),
                    },
                    &mut client,
                    now,
                );
            }
            3 => {}
            4 => {
                if asked {
                    asked = false;
                    relay.upstream_unreachable("fuzz: refused", &mut client);
                } else {
                    relay.upstream_lost(&mut client);
                }
            }
            _ => {
                client.peer_closed();
                let _ = relay.client_gone(client.take_client_disconnect());
            }
        }
        // Run the connection's actions as the gateway task does.
        while !actions.is_empty() {
            let mut next = Vec::new();
            for action in actions {
                match action {
                    Action::Authenticate(connect) => {
                        let enhanced = connect.protocol_version == ProtocolVersion::V5
                            && connect.properties.authentication_method.is_some();
                        let preview = enhanced.then(|| relay.preview(&connect));
                        let peer = PeerInfo {
                            remote_addr: None,
                            listener: "fuzz".into(),
                            tls: false,
                            tls_client_cn: None,
                            session_present: preview.as_ref().map(|p| p.session_present),
                        };
                        let decision = security.authenticator.authenticate(&connect, &peer);
                        next.extend(client.auth_decided(decision, preview, now));
                    }
                    Action::CoreConnect(req) => {
                        if let Step::OpenUpstream(_) = relay.client_connected(*req, &mut client) {
                            asked = true;
                        }
                    }
                    Action::CorePacket(packet) => relay.client_packet(packet, &mut client),
                }
            }
            actions = next;
        }
        // The oracle.
        if !relay.output().is_empty() {
            let (dec, buf) = up_check
                .as_mut()
                .expect("bytes for an upstream that never answered CONNECT");
            check(dec, buf, relay.output(), "upstream");
            relay.output_written(now);
        }
        if !client.output().is_empty() {
            if let Some(version) = client_version {
                let (dec, buf) = client_check
                    .get_or_insert_with(|| (Decoder::with_version(usize::MAX, version), BytesMut::new()));
                check(dec, buf, client.output(), "client");
            }
            client.output_written();
        }
    }
});
