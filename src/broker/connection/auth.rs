//! The authentication part of [`Connection`]: the authenticator's decision,
//! LWA's extra AUTH flight, and the hand-over to the core. Split from
//! `connection.rs` to keep each file readable; same type, same invariants.

use std::time::Instant;

use bytes::Bytes;

use crate::auth::{metadata, AuthDecision, Authenticated};
use crate::codec::{Auth, ConnAck, Connect, Packet, Properties, ProtocolVersion, ReasonCode};

use super::super::core::ConnectRequest;
use super::super::stats::{auth_mode, refusal_reason};
use super::{keep_alive_duration, valid_in_disconnect, Action, Connection, Phase, Protected};

impl Connection {
    /// The client's key confirmation (LWA1 finished or LWA2 first PUBLISH) did not verify:
    /// counted, then DISCONNECT with `code` where a DISCONNECT may carry it, else 0x87.
    fn confirmation_failed(&mut self, connect: &Connect, code: ReasonCode) {
        (self.settings.stats).auth_failed(auth_mode(connect), refusal_reason(code));
        let code = if valid_in_disconnect(code) {
            code
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        self.close_with(Some(code), "authentication failed");
    }

    /// The authenticator's answer to the CONNECT from [`Action::Authenticate`].
    ///
    /// `preview` is the CONNACK the core would send (its side-effect-free
    /// `connack_for`) and must be given for [`AuthDecision::Pending`], where
    /// this connection writes CONNACK itself.
    pub fn auth_decided(
        &mut self,
        decision: AuthDecision,
        preview: Option<ConnAck>,
        now: Instant,
    ) -> Vec<Action> {
        let connect = match std::mem::replace(&mut self.phase, Phase::AwaitConnect) {
            Phase::Authenticating(connect) => connect,
            other => {
                self.phase = other;
                return Vec::new();
            }
        };
        let mut actions = Vec::new();
        match decision {
            AuthDecision::Reject(code) => {
                (self.settings.stats).auth_failed(auth_mode(&connect), refusal_reason(code));
                self.refuse(connect.protocol_version, code, "authentication refused");
                return actions;
            }
            AuthDecision::Accept {
                authenticated,
                connack_auth,
            } => {
                actions.push(self.enter_core(connect, authenticated, connack_auth, None, now));
            }
            AuthDecision::Pending {
                connack_auth,
                continuation,
            } => {
                if connect.protocol_version != ProtocolVersion::V5 {
                    // Enhanced authentication does not exist in 3.1.1.
                    self.refuse(
                        connect.protocol_version,
                        ReasonCode::BAD_AUTHENTICATION_METHOD,
                        "enhanced authentication on 3.1.1",
                    );
                    return actions;
                }
                let Some(mut connack) = preview else {
                    self.refuse(
                        connect.protocol_version,
                        ReasonCode::SERVER_UNAVAILABLE,
                        "no CONNACK preview from the core",
                    );
                    return actions;
                };
                if connack.reason_code.is_error() {
                    // The core would refuse this CONNECT anyway (e.g. client id).
                    self.refuse(
                        connect.protocol_version,
                        connack.reason_code,
                        "refused by the core",
                    );
                    return actions;
                }
                connack.properties.authentication_method = Some(connack_auth.0.clone());
                connack.properties.authentication_data = Some(connack_auth.1);
                self.write(&Packet::ConnAck(Box::new(connack.clone())));
                self.note_connack(&connack, &connect);
                let mut connect = connect;
                if let Some(id) = &connack.properties.assigned_client_identifier {
                    // The core must use the client id this CONNACK announced.
                    connect.client_id = id.clone();
                }
                self.phase = Phase::AwaitAuth {
                    connect,
                    method: connack_auth.0,
                    continuation,
                    session_present: connack.session_present,
                };
            }
        }
        actions.extend(self.process(now));
        actions
    }

    pub(super) fn on_await_auth(
        &mut self,
        packet: Packet,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        let Phase::AwaitAuth {
            connect,
            method,
            continuation,
            session_present,
        } = std::mem::replace(&mut self.phase, Phase::AwaitConnect)
        else {
            return;
        };
        // Every branch below leaves the phase Connected or Closed.
        match packet {
            Packet::Auth(auth) => {
                if auth.reason_code != ReasonCode::RE_AUTHENTICATE {
                    self.settings
                        .stats
                        .auth_failed(auth_mode(&connect), "protocol_error");
                    self.close_with(
                        Some(ReasonCode::PROTOCOL_ERROR),
                        "AUTH with a wrong reason code",
                    );
                    return;
                }
                if auth.properties.authentication_method.as_deref() != Some(method.as_str()) {
                    self.settings
                        .stats
                        .auth_failed(auth_mode(&connect), "bad_method");
                    // 0x8C is a CONNACK code; in DISCONNECT a method
                    // mismatch is a Protocol Error (LWA.md section 9).
                    self.close_with(Some(ReasonCode::PROTOCOL_ERROR), "AUTH with another method");
                    return;
                }
                let data = auth.properties.authentication_data.unwrap_or_default();
                let answer = continuation.sends_auth_success();
                match continuation.finish(&data) {
                    Ok(authenticated) => {
                        // LWA1 answers its finished with AUTH 0x00; LWA2 sends none.
                        if answer {
                            let success = Auth {
                                reason_code: ReasonCode::SUCCESS,
                                properties: Properties {
                                    authentication_method: Some(method),
                                    authentication_data: authenticated.auth_response.clone(),
                                    ..Properties::default()
                                },
                            };
                            self.write(&Packet::Auth(Box::new(success)));
                        }
                        actions.push(self.enter_core(
                            connect,
                            authenticated,
                            None,
                            Some(session_present),
                            now,
                        ));
                    }
                    Err(code) => self.confirmation_failed(&connect, code),
                }
            }
            Packet::Publish(mut publish) if continuation.confirms_by_publish() => {
                // LWA2's implicit confirmation: the first PUBLISH opens as
                // c2b record 0 or the connection ends, with no side effect.
                let protected = continuation.protects_metadata();
                if protected {
                    // No alias either: the wire shows only the placeholder.
                    if let Err(code) = metadata::check_wire_header(&publish) {
                        self.confirmation_failed(&connect, code);
                        return;
                    }
                } else if let Err(code) = self.inbound.resolve(&mut publish) {
                    self.close_with(Some(code), "bad topic alias");
                    return;
                }
                match continuation.finish_with_publish(
                    &publish.topic,
                    publish.qos,
                    publish.retain,
                    &publish.payload,
                ) {
                    Ok((authenticated, plain)) => {
                        if !protected {
                            publish.payload = plain;
                        } else if let Err(code) = metadata::unpack(&mut publish, plain) {
                            // Authenticated, but what its record carried is no
                            // PUBLISH header: still no side effect.
                            self.close_with(Some(code), "protected metadata malformed");
                            return;
                        }
                        actions.push(self.enter_core(
                            connect,
                            authenticated,
                            None,
                            Some(session_present),
                            now,
                        ));
                        actions.push(Action::CorePacket(Packet::Publish(publish)));
                    }
                    Err(code) => self.confirmation_failed(&connect, code),
                }
            }
            Packet::Disconnect(_) => {
                // Not authenticated: the DISCONNECT has no effect on any session.
                self.phase = Phase::Closed;
                self.close_cause = Some("DISCONNECT before authentication finished".into());
            }
            _ => {
                self.settings
                    .stats
                    .auth_failed(auth_mode(&connect), "protocol_error");
                self.close_with(
                    Some(ReasonCode::PROTOCOL_ERROR),
                    "packet other than AUTH before authentication finished",
                );
            }
        }
    }

    pub(super) fn enter_core(
        &mut self,
        connect: Box<Connect>,
        authenticated: Authenticated,
        connack_auth: Option<(String, Bytes)>,
        signed_session_present: Option<bool>,
        now: Instant,
    ) -> Action {
        // A CONNACK already sent is one whose Session Present the client authenticated.
        let connack_sent = signed_session_present.is_some();
        self.protection = authenticated.protection.map(Protected::new);
        self.phase = Phase::Connected;
        self.core_connected = true;
        self.last_packet = now;
        if !connack_sent {
            // Until the core's CONNACK says otherwise, the client's keep-alive applies.
            self.keep_alive = keep_alive_duration(connect.keep_alive);
        }
        let payload_overhead = self
            .protection
            .as_ref()
            .map_or(0, |p| p.protection.overhead());
        Action::CoreConnect(Box::new(ConnectRequest {
            conn: self.settings.conn,
            connect: *connect,
            principal: authenticated.principal,
            policy: self.settings.policy.clone(),
            listener: self.settings.listener.clone(),
            connack_sent,
            connack_auth,
            signed_session_present,
            payload_overhead,
        }))
    }

    /// Keep-alive and inbound alias limit from a CONNACK this connection wrote.
    pub(super) fn note_connack(&mut self, connack: &ConnAck, connect: &Connect) {
        self.connack_sent = true;
        self.keep_alive = keep_alive_duration(
            connack
                .properties
                .server_keep_alive
                .unwrap_or(connect.keep_alive),
        );
        if self.version == Some(ProtocolVersion::V5) {
            self.inbound
                .set_maximum(connack.properties.topic_alias_maximum.unwrap_or(0));
        }
    }
}
