//! LWA2 key update on a live connection (LWA2.md section 8.2): the client
//! asks with AUTH 0x19 when half a direction's records are used (or when
//! told to), the broker answers with AUTH 0x00, and both directions go on
//! under new keys instead of reconnecting.

use std::time::Instant;

use super::{ClientSession, Phase, SessionError};
use crate::codec::{Auth, Packet, Properties, ReasonCode};

impl ClientSession {
    /// Starts a key update now: the AUTH 0x19 is queued behind everything
    /// sealed so far, and every PUBLISH sealed from now on uses the new keys.
    ///
    /// Only LWA2 connections can (`InvalidRequest` otherwise); one update at
    /// a time (`Protection(0x82)` while one is in flight; the connection goes on).
    pub fn update_keys(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.phase != Phase::Connected {
            return Err(SessionError::NotConnected);
        }
        let Some(protection) = self.protection.as_mut() else {
            return Err(SessionError::InvalidRequest(
                "key update needs LWA2 payload protection".into(),
            ));
        };
        let Some(method) = protection.key_update_method() else {
            return Err(SessionError::InvalidRequest(
                "this connection's protection has no key update (LWA2 only)".into(),
            ));
        };
        let data = protection
            .start_key_update()
            .map_err(SessionError::Protection)?;
        // The confirmation goes first: a finished still held back for a first PUBLISH.
        if let Some((finished, _)) = self.deferred_auth.take() {
            self.transmit.push_back(finished);
        }
        self.keep_alive.last_sent = now;
        self.transmit.push_back(Packet::Auth(Box::new(Auth {
            reason_code: ReasonCode::RE_AUTHENTICATE,
            properties: Properties {
                authentication_method: Some(method.to_owned()),
                authentication_data: Some(data),
                ..Properties::default()
            },
        })));
        Ok(())
    }

    /// Starts a key update when one is due (half of a direction's records
    /// used under the current keys), once the confirmation has gone out.
    pub(super) fn update_keys_if_due(&mut self, now: Instant) {
        if self.phase != Phase::Connected || self.deferred_auth.is_some() {
            return;
        }
        if !self.protection.as_ref().is_some_and(|p| p.key_update_due()) {
            return;
        }
        if let Err(e) = self.update_keys(now) {
            // Only when no generation is left: the record limit then ends
            // the connection and the client reconnects, as without updates.
            tracing::warn!(error = %e, "LWA2 key update not started");
        }
    }

    /// Whether an AUTH from the broker is the answer to a key update
    /// (the protection can update keys; LWA1's closing AUTH is not).
    pub(super) fn is_key_update_answer(&self) -> bool {
        self.protection
            .as_ref()
            .is_some_and(|p| p.key_update_method().is_some())
    }

    /// The broker's AUTH 0x00 answering our key update; what waited for the
    /// new keys goes out.
    pub(super) fn on_key_update_answer(
        &mut self,
        auth: &Auth,
        now: Instant,
    ) -> Result<(), SessionError> {
        let Some(protection) = self.protection.as_mut() else {
            return Err(SessionError::NotConnected);
        };
        if auth.reason_code != ReasonCode::SUCCESS {
            return Err(SessionError::Protocol {
                reason: ReasonCode::PROTOCOL_ERROR,
                detail: "key update answered with a reason code other than 0x00",
            });
        }
        if auth.properties.authentication_method.as_deref() != protection.key_update_method() {
            return Err(SessionError::Protocol {
                reason: ReasonCode::PROTOCOL_ERROR,
                detail: "key update answered with another authentication method",
            });
        }
        let data = auth
            .properties
            .authentication_data
            .as_deref()
            .unwrap_or_default();
        protection
            .finish_key_update(data)
            .map_err(SessionError::Protection)?;
        // Records may have run out under the keys the request moved to:
        // the next update first, then what waited.
        self.update_keys_if_due(now);
        self.pump(now);
        Ok(())
    }
}
