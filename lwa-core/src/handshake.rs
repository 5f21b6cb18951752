//! The LWA1 handshake as typestates (LWA.md section 6).
//!
//! ```text
//! client: ClientOffer::new ──offer──▶ ClientAwaitingResponse ──on_response──▶ (ClientFinished, ClientRecords)
//! broker: BrokerResponder::respond ──response──▶ BrokerAwaitingFinished ──on_finished──▶ BrokerRecords
//! ```
//!
//! Each step consumes its state, so an ephemeral secret is used once and no
//! record key exists before the peer's MAC has verified.

use core::fmt;
use core::marker::PhantomData;

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use rand_core::CryptoRngCore;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::backend::rustcrypto::RustCrypto;
use crate::crypto::Crypto;
use crate::error::{LwaError, WireDefect, WireMessage};
use crate::record::{Direction, RecordOpener, RecordSealer};
use crate::schedule::{transcript_hash, ConnectContext, KeySchedule, Psk};
use crate::wire::{Finished, Offer, Response};
use crate::{MAC_LEN, MAX_RECORD_LIMIT_LOG2, MIN_RECORD_LIMIT_LOG2, VERSION};

/// A fresh ephemeral X25519 scalar: 32 bytes from `rng`, as x25519-dalek's
/// `EphemeralSecret::random_from_rng` draws them (the vectors depend on it).
pub(crate) fn ephemeral_secret<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Zeroizing<[u8; 32]> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret.as_mut());
    secret
}

/// X25519 with the all-zero check of LWA.md section 5 (a low-order peer share).
pub(crate) fn shared_secret<C: Crypto>(
    secret: &[u8; 32],
    peer: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, LwaError> {
    let shared = C::x25519_shared(secret, peer);
    if bool::from(shared.ct_eq(&[0u8; 32])) {
        return Err(LwaError::LowOrderPoint);
    }
    Ok(shared)
}

/// The client's first step: `offer_bytes` go into CONNECT, `awaiting_response` waits for CONNACK.
pub struct ClientOffer<C: Crypto = RustCrypto> {
    /// CONNECT Authentication Data.
    pub offer_bytes: Vec<u8>,
    /// The state that verifies the broker's response.
    pub awaiting_response: ClientAwaitingResponse<C>,
}

/// A client that sent its offer and waits for the broker's response.
pub struct ClientAwaitingResponse<C: Crypto = RustCrypto> {
    psk: Psk,
    secret: Zeroizing<[u8; 32]>,
    context: Vec<u8>,
    offer: Vec<u8>,
    offered_limit_log2: u8,
    backend: PhantomData<C>,
}

/// The client's last flight: AUTH (Re-authenticate) Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinished {
    /// client_mac, to send as Authentication Data of AUTH 0x19.
    pub finished_bytes: [u8; MAC_LEN],
}

/// The client's record layer after the broker authenticated itself.
#[derive(Debug)]
pub struct ClientRecords<C: Crypto = RustCrypto> {
    /// Seals client-to-broker PUBLISH payloads.
    pub sealer: RecordSealer<C>,
    /// Opens broker-to-client PUBLISH payloads.
    pub opener: RecordOpener<C>,
    /// The record limit exponent the broker chose.
    pub record_limit_log2: u8,
    /// LWA2 metadata protection granted (LWA2.md 7.1): seal and open with
    /// [`crate::lwa2::metadata`]. Always false in LWA1.
    pub protect_metadata: bool,
    /// LWA2's `u_0`, the secret key updates start from ([`crate::lwa2::KeyUpdate::new`]);
    /// `None` in LWA1, which has no key update.
    pub update_secret: Option<Zeroizing<[u8; 32]>>,
}

/// The broker's LWA1 configuration; answers offers.
pub struct BrokerResponder<C: Crypto = RustCrypto> {
    record_limit_log2: u8,
    backend: PhantomData<C>,
}

// By hand: a derive would ask `C: Clone`, and backends are plain markers.
impl<C: Crypto> Clone for BrokerResponder<C> {
    fn clone(&self) -> Self {
        BrokerResponder {
            record_limit_log2: self.record_limit_log2,
            backend: PhantomData,
        }
    }
}

/// A broker that answered an offer and waits for the client's finished.
///
/// Nothing it holds may cause an MQTT side effect: the client is not yet authenticated.
pub struct BrokerAwaitingFinished<C: Crypto = RustCrypto> {
    claimed_identity: String,
    identity_known: bool,
    expected_client_mac: Zeroizing<[u8; MAC_LEN]>,
    sealer: RecordSealer<C>,
    opener: RecordOpener<C>,
    record_limit_log2: u8,
}

/// The broker's record layer for an authenticated client.
#[derive(Debug)]
pub struct BrokerRecords<C: Crypto = RustCrypto> {
    /// The authenticated LWA identity.
    pub identity: String,
    /// Seals broker-to-client PUBLISH payloads.
    pub sealer: RecordSealer<C>,
    /// Opens client-to-broker PUBLISH payloads.
    pub opener: RecordOpener<C>,
    /// The record limit exponent in force.
    pub record_limit_log2: u8,
    /// LWA2 metadata protection granted (LWA2.md 7.1); always false in LWA1.
    pub protect_metadata: bool,
    /// LWA2's `u_0`, the secret key updates start from; `None` in LWA1.
    pub update_secret: Option<Zeroizing<[u8; 32]>>,
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

impl<C: Crypto> ClientOffer<C> {
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
        let secret = ephemeral_secret(rng);
        let offer_bytes = Offer {
            record_limit_log2,
            identity,
            ephemeral: C::x25519_public(&secret),
        }
        .to_bytes()?;
        Ok(ClientOffer {
            awaiting_response: ClientAwaitingResponse {
                psk: psk.clone(),
                secret,
                context,
                offer: offer_bytes.clone(),
                offered_limit_log2,
                backend: PhantomData,
            },
            offer_bytes,
        })
    }
}

impl<C: Crypto> ClientAwaitingResponse<C> {
    /// The offer this state sent (CONNECT Authentication Data).
    pub fn offer_bytes(&self) -> &[u8] {
        &self.offer
    }

    /// Verifies CONNACK's response (and its Session Present flag); yields the finished and the records.
    pub fn on_response(
        self,
        response_bytes: &[u8],
        session_present: bool,
    ) -> Result<(ClientFinished, ClientRecords<C>), LwaError> {
        let response = Response::parse(response_bytes)?;
        if response.record_limit_log2 > self.offered_limit_log2 {
            return Err(LwaError::Malformed(
                WireMessage::Response,
                WireDefect::RecordLimitAboveOffer,
            ));
        }
        let shared = shared_secret::<C>(&self.secret, &response.ephemeral)?;
        let th = transcript_hash::<C>(
            &self.context,
            &self.offer,
            &response.without_mac(),
            session_present,
        );
        let keys = KeySchedule::<C>::derive(&self.psk, &shared, &th)?;
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
            protect_metadata: false,
            update_secret: None,
        };
        let finished = ClientFinished {
            finished_bytes: keys.client_mac(&response.broker_mac)?,
        };
        Ok((finished, records))
    }
}

impl<C: Crypto> BrokerResponder<C> {
    /// A responder whose configured record limit is `2^record_limit_log2` (1..=48).
    pub fn new(record_limit_log2: u8) -> Result<Self, LwaError> {
        Ok(BrokerResponder {
            record_limit_log2: check_limit_param(record_limit_log2)?,
            backend: PhantomData,
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
    ) -> Result<(BrokerAwaitingFinished<C>, Vec<u8>), LwaError>
    where
        R: CryptoRngCore + ?Sized,
        F: FnOnce(&str) -> Option<Psk>,
    {
        let offer = Offer::parse(offer_bytes)?;
        let context = context.encode()?;
        let chosen = offer.record_limit_log2.min(self.record_limit_log2);
        let secret = ephemeral_secret(rng);
        let ephemeral = C::x25519_public(&secret);
        let shared = shared_secret::<C>(&secret, &offer.ephemeral)?;
        drop(secret);
        let (psk, identity_known) = match psk_lookup(offer.identity) {
            Some(psk) => (psk, true),
            None => (Psk::random(rng), false),
        };
        let mut response_without_mac = [0u8; Response::WITHOUT_MAC_LEN];
        response_without_mac[0] = VERSION;
        response_without_mac[1] = chosen;
        response_without_mac[2..].copy_from_slice(&ephemeral);
        let th = transcript_hash::<C>(
            &context,
            offer_bytes,
            &response_without_mac,
            session_present,
        );
        let keys = KeySchedule::<C>::derive(&psk, &shared, &th)?;
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

impl<C: Crypto> BrokerAwaitingFinished<C> {
    /// The identity the offer claims; NOT authenticated until `on_finished` succeeds.
    pub fn claimed_identity(&self) -> &str {
        &self.claimed_identity
    }

    /// Verifies the client's AUTH data; only after this may the connection have MQTT effects.
    pub fn on_finished(self, finished_bytes: &[u8]) -> Result<BrokerRecords<C>, LwaError> {
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
            protect_metadata: false,
            update_secret: None,
        })
    }
}

impl<C: Crypto> fmt::Debug for ClientOffer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOffer")
            .field("offer_bytes", &self.offer_bytes.len())
            .finish_non_exhaustive()
    }
}

impl<C: Crypto> fmt::Debug for ClientAwaitingResponse<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAwaitingResponse")
            .field("offered_limit_log2", &self.offered_limit_log2)
            .finish_non_exhaustive()
    }
}

impl<C: Crypto> fmt::Debug for BrokerAwaitingFinished<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerAwaitingFinished")
            .field("claimed_identity", &self.claimed_identity)
            .field("record_limit_log2", &self.record_limit_log2)
            .finish_non_exhaustive()
    }
}

impl<C: Crypto> fmt::Debug for BrokerResponder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerResponder")
            .field("record_limit_log2", &self.record_limit_log2)
            .finish()
    }
}

#[cfg(test)]
mod tests;
