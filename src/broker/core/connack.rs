//! What CONNACK says: client id assignment, Session Present, session
//! expiry and the 5.0 capability properties; computed without side effects
//! so the server can send CONNACK itself during enhanced authentication.

use bytes::Bytes;

use crate::auth::Principal;
use crate::codec::{ConnAck, Connect, Properties, ProtocolVersion, ReasonCode};

use super::{BrokerCore, ConnackPreview, ConnectPlan};

impl BrokerCore {
    pub(super) fn assigned_id_candidate(&self) -> (String, u64) {
        let mut n = self.next_assigned;
        loop {
            let id = format!("mqtt-lwa-{n:012x}");
            if !self.sessions.contains_key(&id) {
                return (id, n);
            }
            n = n.wrapping_add(1);
        }
    }

    pub(super) fn plan(
        &self,
        c: &Connect,
        auth: Option<&(String, Bytes)>,
        claimant: Option<&str>,
    ) -> Result<ConnectPlan, ReasonCode> {
        let v5 = c.protocol_version == ProtocolVersion::V5;
        if v5 && !self.limits.retain_available && c.will.as_ref().is_some_and(|w| w.retain) {
            return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
        }
        let (client_id, assigned) = if c.client_id.is_empty() {
            if !v5 && !c.clean_start {
                return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            }
            (self.assigned_id_candidate().0, true)
        } else {
            (c.client_id.clone(), false)
        };
        let requested = match c.protocol_version {
            ProtocolVersion::V5 => c.properties.session_expiry_interval.unwrap_or(0),
            ProtocolVersion::V311 if c.clean_start => 0,
            ProtocolVersion::V311 => u32::MAX,
        };
        let expiry = requested.min(self.limits.max_session_expiry);
        // A session an LWA identity reclaims from another principal is not
        // resumed: it ends, and the identity starts afresh.
        let session_present = !c.clean_start
            && self.sessions.contains_key(&client_id)
            && !self.reclaims(&client_id, claimant);
        let mut properties = Properties::default();
        if v5 {
            let l = &self.limits;
            properties.receive_maximum = Some(l.receive_maximum.max(1)).filter(|&r| r < u16::MAX);
            properties.maximum_packet_size = Some(l.max_packet_size).filter(|&m| m > 0);
            properties.topic_alias_maximum = Some(l.topic_alias_maximum).filter(|&t| t > 0);
            properties.retain_available = Some(u8::from(l.retain_available));
            properties.wildcard_subscription_available = Some(1);
            properties.subscription_identifier_available = Some(1);
            properties.shared_subscription_available = Some(1);
            if expiry != requested {
                properties.session_expiry_interval = Some(expiry);
            }
            if assigned {
                properties.assigned_client_identifier = Some(client_id.clone());
            }
            let max_ka = l.max_keep_alive;
            if max_ka > 0 && (c.keep_alive == 0 || c.keep_alive > max_ka) {
                properties.server_keep_alive = Some(max_ka);
            }
            if let Some((method, data)) = auth {
                properties.authentication_method = Some(method.clone());
                properties.authentication_data = Some(data.clone()).filter(|d| !d.is_empty());
            }
        }
        Ok(ConnectPlan {
            client_id,
            assigned,
            session_present,
            expiry,
            connack: ConnAck {
                session_present,
                reason_code: ReasonCode::SUCCESS,
                properties,
            },
        })
    }

    /// What CONNACK would say for `connect`; changes nothing.
    pub fn connack_preview(&self, connect: &Connect) -> ConnackPreview {
        match self.plan(connect, None, None) {
            Ok(p) => ConnackPreview {
                session_present: p.session_present,
                assigned_client_id: p.assigned.then_some(p.client_id),
            },
            Err(_) => ConnackPreview {
                session_present: false,
                assigned_client_id: None,
            },
        }
    }

    /// The complete CONNACK the core would send for `connect` (for a server
    /// that sends CONNACK itself during enhanced authentication); changes nothing.
    ///
    /// `claimant` is the LWA identity the CONNECT claims (not yet proven),
    /// so that Session Present says what [`Self::connect`] will do once the
    /// identity is proven (see [`Self::foreign_session`]).
    pub fn connack_for(
        &self,
        connect: &Connect,
        auth: Option<&(String, Bytes)>,
        claimant: Option<&str>,
    ) -> ConnAck {
        match self.plan(connect, auth, claimant) {
            Ok(p) => p.connack,
            Err(code) => ConnAck {
                session_present: false,
                reason_code: code,
                properties: Properties::default(),
            },
        }
    }

    /// Refuses a CONNECT before any side effect when its client id belongs
    /// to another principal (0x87), or when it would create one session
    /// more than `max_sessions` (0x97 Quota exceeded).
    ///
    /// LWA.md 12.4: a connection authenticated as one principal must not
    /// resume or take over a session that belongs to another. Always
    /// enforced when either side is an LWA identity; for every other
    /// principal too while `bind_client_ids` is on (the default). Anonymous
    /// clients are all one principal, so they keep MQTT's usual takeover
    /// among themselves.
    /// Whether LWA identity `claimant` takes back its own client id (the
    /// identity itself, or `identity/...`, LWA.md 12.4) from a session that
    /// another principal created: a device is never locked out of its
    /// client id, and no name is reserved before authentication, so probing
    /// client ids tells nobody which names are LWA identities.
    pub(super) fn reclaims(&self, client_id: &str, claimant: Option<&str>) -> bool {
        let Some(identity) = claimant else {
            return false;
        };
        let own = client_id == identity
            || client_id
                .strip_prefix(identity)
                .is_some_and(|rest| rest.starts_with('/'));
        own && self.sessions.get(client_id).is_some_and(|s| {
            s.access
                .as_ref()
                .is_some_and(|a| a.principal.lwa_identity.as_deref() != Some(identity))
        })
    }

    pub(super) fn foreign_session(
        &self,
        client_id: &str,
        principal: &Principal,
    ) -> Option<ReasonCode> {
        let Some(session) = self.sessions.get(client_id) else {
            if self.sessions.len() >= self.limits.max_sessions {
                tracing::warn!(
                    client_id,
                    sessions = self.sessions.len(),
                    "CONNECT refused: max_sessions reached (0x97 Quota exceeded)"
                );
                return Some(ReasonCode::QUOTA_EXCEEDED);
            }
            return None;
        };
        if self.reclaims(client_id, principal.lwa_identity.as_deref()) {
            return None;
        }
        let owner = &session.access.as_ref()?.principal;
        let lwa = owner.lwa_identity.is_some() || principal.lwa_identity.is_some();
        if (lwa || self.limits.bind_client_ids) && owner != principal {
            tracing::warn!(
                client_id,
                owner = ?owner.acl_name(),
                claimant = ?principal.acl_name(),
                "CONNECT refused: the session belongs to another principal"
            );
            return Some(ReasonCode::NOT_AUTHORIZED);
        }
        None
    }
}
