//! The LWA1 handshake as typestates (LWA.md section 6).
//!
//! ```text
//! client: ClientOffer::new ──offer──▶ ClientAwaitingResponse ──on_response──▶ (ClientFinished, ClientRecords)
//! broker: BrokerResponder::respond ──response──▶ BrokerAwaitingFinished ──on_finished──▶ BrokerRecords
//! ```
//!
//! Each step consumes its state, so an ephemeral secret is used once and no
//! record key exists before the peer's MAC has verified.

use std::fmt;

use rand_core::CryptoRngCore;
use subtle::{Choice, ConstantTimeEq};
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::error::{LwaError, WireDefect, WireMessage};
use super::record::{Direction, RecordOpener, RecordSealer};
use super::schedule::{transcript_hash, ConnectContext, KeySchedule, Psk};
use super::wire::{Finished, Offer, Response};
use super::{MAC_LEN, MAX_RECORD_LIMIT_LOG2, MIN_RECORD_LIMIT_LOG2, VERSION};

/// The client's first step: `offer_bytes` go into CONNECT, `awaiting_response` waits for CONNACK.
pub struct ClientOffer {
    /// CONNECT Authentication Data.
    pub offer_bytes: Vec<u8>,
    /// The state that verifies the broker's response.
    pub awaiting_response: ClientAwaitingResponse,
}

/// A client that sent its offer and waits for the broker's response.
pub struct ClientAwaitingResponse {
    psk: Psk,
    secret: EphemeralSecret,
    context: Vec<u8>,
    offer: Vec<u8>,
    offered_limit_log2: u8,
}

/// The client's last flight: AUTH (Re-authenticate) Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinished {
    /// client_mac, to send as Authentication Data of AUTH 0x19.
    pub finished_bytes: [u8; MAC_LEN],
}

/// The client's record layer after the broker authenticated itself.
#[derive(Debug)]
pub struct ClientRecords {
    /// Seals client-to-broker PUBLISH payloads.
    pub sealer: RecordSealer,
    /// Opens broker-to-client PUBLISH payloads.
    pub opener: RecordOpener,
    /// The record limit exponent the broker chose.
    pub record_limit_log2: u8,
}

/// The broker's LWA1 configuration; answers offers.
#[derive(Debug, Clone)]
pub struct BrokerResponder {
    record_limit_log2: u8,
}

/// A broker that answered an offer and waits for the client's finished.
///
/// Nothing it holds may cause an MQTT side effect: the client is not yet authenticated.
pub struct BrokerAwaitingFinished {
    claimed_identity: String,
    identity_known: bool,
    expected_client_mac: Zeroizing<[u8; MAC_LEN]>,
    sealer: RecordSealer,
    opener: RecordOpener,
    record_limit_log2: u8,
}

/// The broker's record layer for an authenticated client.
#[derive(Debug)]
pub struct BrokerRecords {
    /// The authenticated LWA identity.
    pub identity: String,
    /// Seals broker-to-client PUBLISH payloads.
    pub sealer: RecordSealer,
    /// Opens client-to-broker PUBLISH payloads.
    pub opener: RecordOpener,
    /// The record limit exponent in force.
    pub record_limit_log2: u8,
}

fn check_limit_param(limit_log2: u8) -> Result<u8, LwaError> {
    if (MIN_RECORD_LIMIT_LOG2..=MAX_RECORD_LIMIT_LOG2).contains(&limit_log2) {
        Ok(limit_log2)
    } else {
        Err(LwaError::InvalidParameter(
            "record_limit_log2 outside 1..=48",
        ))
    }
}

impl ClientOffer {
    /// Starts a handshake for `identity` with a fresh ephemeral key drawn from `rng`.
    pub fn new<R: CryptoRngCore + ?Sized>(
        identity: &str,
        psk: &Psk,
        context: &ConnectContext<'_>,
        record_limit_log2: u8,
        rng: &mut R,
    ) -> Result<Self, LwaError> {
        let offered_limit_log2 = check_limit_param(record_limit_log2)?;
        let context = context.encode()?;
        let secret = EphemeralSecret::random_from_rng(&mut *rng);
        let offer_bytes = Offer {
            record_limit_log2,
            identity,
            ephemeral: PublicKey::from(&secret).to_bytes(),
        }
        .to_bytes()?;
        Ok(ClientOffer {
            awaiting_response: ClientAwaitingResponse {
                psk: psk.clone(),
                secret,
                context,
                offer: offer_bytes.clone(),
                offered_limit_log2,
            },
            offer_bytes,
        })
    }
}

impl ClientAwaitingResponse {
    /// The offer this state sent (CONNECT Authentication Data).
    pub fn offer_bytes(&self) -> &[u8] {
        &self.offer
    }

    /// Verifies CONNACK's response (and its Session Present flag); yields the finished and the records.
    pub fn on_response(
        self,
        response_bytes: &[u8],
        session_present: bool,
    ) -> Result<(ClientFinished, ClientRecords), LwaError> {
        let response = Response::parse(response_bytes)?;
        if response.record_limit_log2 > self.offered_limit_log2 {
            return Err(LwaError::Malformed(
                WireMessage::Response,
                WireDefect::RecordLimitAboveOffer,
            ));
        }
        let shared = self
            .secret
            .diffie_hellman(&PublicKey::from(response.ephemeral));
        if !shared.was_contributory() {
            return Err(LwaError::LowOrderPoint);
        }
        let th = transcript_hash(
            &self.context,
            &self.offer,
            &response.without_mac(),
            session_present,
        );
        let keys = KeySchedule::derive(&self.psk, shared.as_bytes(), &th)?;
        let expected = keys.broker_mac()?;
        if !bool::from(expected.ct_eq(&response.broker_mac)) {
            return Err(LwaError::BrokerAuthFailed);
        }
        let limit = response.record_limit_log2;
        let records = ClientRecords {
            sealer: RecordSealer::new(
                Direction::ClientToBroker,
                keys.c2b_key(),
                keys.c2b_iv(),
                limit,
            )?,
            opener: RecordOpener::new(
                Direction::BrokerToClient,
                keys.b2c_key(),
                keys.b2c_iv(),
                limit,
            )?,
            record_limit_log2: limit,
        };
        let finished = ClientFinished {
            finished_bytes: keys.client_mac(&response.broker_mac)?,
        };
        Ok((finished, records))
    }
}

impl BrokerResponder {
    /// A responder whose configured record limit is `2^record_limit_log2` (1..=48).
    pub fn new(record_limit_log2: u8) -> Result<Self, LwaError> {
        Ok(BrokerResponder {
            record_limit_log2: check_limit_param(record_limit_log2)?,
        })
    }

    /// The configured record limit exponent.
    pub fn record_limit_log2(&self) -> u8 {
        self.record_limit_log2
    }

    /// Answers CONNECT's offer; `session_present` is the flag the CONNACK will carry.
    ///
    /// An identity `psk_lookup` does not know gets a random dummy PSK, so its
    /// response looks like any other and the client's finished then fails.
    pub fn respond<R, F>(
        &self,
        offer_bytes: &[u8],
        context: &ConnectContext<'_>,
        session_present: bool,
        psk_lookup: F,
        rng: &mut R,
    ) -> Result<(BrokerAwaitingFinished, Vec<u8>), LwaError>
    where
        R: CryptoRngCore + ?Sized,
        F: FnOnce(&str) -> Option<Psk>,
    {
        let offer = Offer::parse(offer_bytes)?;
        let context = context.encode()?;
        let chosen = offer.record_limit_log2.min(self.record_limit_log2);
        let secret = EphemeralSecret::random_from_rng(&mut *rng);
        let ephemeral = PublicKey::from(&secret).to_bytes();
        let shared = secret.diffie_hellman(&PublicKey::from(offer.ephemeral));
        if !shared.was_contributory() {
            return Err(LwaError::LowOrderPoint);
        }
        let (psk, identity_known) = match psk_lookup(offer.identity) {
            Some(psk) => (psk, true),
            None => (Psk::random(rng), false),
        };
        let mut response_without_mac = [0u8; Response::WITHOUT_MAC_LEN];
        response_without_mac[0] = VERSION;
        response_without_mac[1] = chosen;
        response_without_mac[2..].copy_from_slice(&ephemeral);
        let th = transcript_hash(
            &context,
            offer_bytes,
            &response_without_mac,
            session_present,
        );
        let keys = KeySchedule::derive(&psk, shared.as_bytes(), &th)?;
        let response = Response {
            record_limit_log2: chosen,
            ephemeral,
            broker_mac: keys.broker_mac()?,
        };
        let awaiting = BrokerAwaitingFinished {
            claimed_identity: offer.identity.to_owned(),
            identity_known,
            expected_client_mac: Zeroizing::new(keys.client_mac(&response.broker_mac)?),
            sealer: RecordSealer::new(
                Direction::BrokerToClient,
                keys.b2c_key(),
                keys.b2c_iv(),
                chosen,
            )?,
            opener: RecordOpener::new(
                Direction::ClientToBroker,
                keys.c2b_key(),
                keys.c2b_iv(),
                chosen,
            )?,
            record_limit_log2: chosen,
        };
        Ok((awaiting, response.to_bytes()))
    }
}

impl BrokerAwaitingFinished {
    /// The identity the offer claims; NOT authenticated until `on_finished` succeeds.
    pub fn claimed_identity(&self) -> &str {
        &self.claimed_identity
    }

    /// Verifies the client's AUTH data; only after this may the connection have MQTT effects.
    pub fn on_finished(self, finished_bytes: &[u8]) -> Result<BrokerRecords, LwaError> {
        let finished = Finished::parse(finished_bytes)?;
        let mac_ok = finished.client_mac.ct_eq(&*self.expected_client_mac);
        // The dummy key already makes the MAC fail; the flag makes it certain.
        let known = Choice::from(u8::from(self.identity_known));
        if !bool::from(mac_ok & known) {
            return Err(LwaError::ClientAuthFailed);
        }
        Ok(BrokerRecords {
            identity: self.claimed_identity,
            sealer: self.sealer,
            opener: self.opener,
            record_limit_log2: self.record_limit_log2,
        })
    }
}

impl fmt::Debug for ClientOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOffer")
            .field("offer_bytes", &self.offer_bytes.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientAwaitingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAwaitingResponse")
            .field("offered_limit_log2", &self.offered_limit_log2)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for BrokerAwaitingFinished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAwaitingFinished")
            .field("claimed_identity", &self.claimed_identity)
            .field("record_limit_log2", &self.record_limit_log2)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
