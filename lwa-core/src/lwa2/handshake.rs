//! The LWA2 handshake as typestates (LWA2.md section 6).
//!
//! ```text
//! client: ClientOffer::new ──offer──▶ ClientAwaitingResponse ──on_response──▶ (ClientFinished, ClientRecords)
//! broker: BrokerResponder::respond ──response──▶ BrokerAwaitingConfirmation
//!           ──on_finished (AUTH 0x19) or on_first_record (first sealed PUBLISH)──▶ BrokerRecords
//! ```
//!
//! The records and the record-layer types are LWA1's; only the handshake
//! and the key schedule differ. Each step consumes its state, so an
//! ephemeral secret is used once and no record key is handed out before the
//! peer has proven it holds the same keys.

use core::fmt;
use core::marker::PhantomData;

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use rand_core::CryptoRngCore;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::schedule::{transcript_hash, KeySchedule};
use super::wire::{Finished, Offer, Response};
use crate::backend::rustcrypto::RustCrypto;
use crate::crypto::Blake3;
use crate::error::{LwaError, WireDefect, WireMessage};
use crate::handshake::{
    ephemeral_secret, shared_secret, BrokerRecords, ClientFinished, ClientRecords,
};
use crate::record::{Direction, RecordOpener, RecordSealer};
use crate::schedule::{ConnectContext, Psk};
use crate::{MAC_LEN, MAX_RECORD_LIMIT_LOG2, MIN_RECORD_LIMIT_LOG2};

/// The client's first step: `offer_bytes` go into CONNECT, `awaiting_response` waits for CONNACK.
pub struct ClientOffer<C: Blake3 = RustCrypto> {
    /// CONNECT Authentication Data.
    pub offer_bytes: Vec<u8>,
    /// The state that verifies the broker's response.
    pub awaiting_response: ClientAwaitingResponse<C>,
}

/// A client that sent its offer and waits for the broker's response.
pub struct ClientAwaitingResponse<C: Blake3 = RustCrypto> {
    psk: Psk,
    secret: Zeroizing<[u8; 32]>,
    context: Vec<u8>,
    offer: Vec<u8>,
    offered_limit_log2: u8,
    protect_metadata: bool,
    backend: PhantomData<C>,
}

/// The broker's LWA2 configuration; answers offers.
pub struct BrokerResponder<C: Blake3 = RustCrypto> {
    record_limit_log2: u8,
    backend: PhantomData<C>,
}

// By hand: a derive would ask `C: Clone`, and backends are plain markers.
impl<C: Blake3> Clone for BrokerResponder<C> {
    fn clone(&self) -> Self {
        BrokerResponder {
            record_limit_log2: self.record_limit_log2,
            backend: PhantomData,
        }
    }
}

/// A broker that answered an offer and waits for the client's key
/// confirmation: an AUTH finished or the first sealed PUBLISH.
///
/// Nothing it holds may cause an MQTT side effect: the client is not yet authenticated.
pub struct BrokerAwaitingConfirmation<C: Blake3 = RustCrypto> {
    claimed_identity: String,
    identity_known: bool,
    expected_client_mac: Zeroizing<[u8; MAC_LEN]>,
    sealer: RecordSealer<C>,
    opener: RecordOpener<C>,
    record_limit_log2: u8,
    protect_metadata: bool,
    update_secret: Zeroizing<[u8; 32]>,
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

impl<C: Blake3> ClientOffer<C> {
    /// Starts a handshake for `identity` with a fresh ephemeral key drawn from `rng`.
    pub fn new<R: CryptoRngCore + ?Sized>(
        identity: &str,
        psk: &Psk,
        context: &ConnectContext<'_>,
        record_limit_log2: u8,
        rng: &mut R,
    ) -> Result<Self, LwaError> {
        Self::new_with_metadata(identity, psk, context, record_limit_log2, false, rng)
    }

    /// [`ClientOffer::new`], asking for metadata protection (LWA2.md 7.1)
    /// when `protect_metadata` is true: the broker grants it or the handshake fails.
    pub fn new_with_metadata<R: CryptoRngCore + ?Sized>(
        identity: &str,
        psk: &Psk,
        context: &ConnectContext<'_>,
        record_limit_log2: u8,
        protect_metadata: bool,
        rng: &mut R,
    ) -> Result<Self, LwaError> {
        let offered_limit_log2 = check_limit_param(record_limit_log2)?;
        let context = context.encode()?;
        let secret = ephemeral_secret(rng);
        let offer_bytes = Offer {
            record_limit_log2,
            protect_metadata,
            ephemeral: C::x25519_public(&secret),
            identity,
        }
        .to_bytes()?;
        Ok(ClientOffer {
            awaiting_response: ClientAwaitingResponse {
                psk: psk.clone(),
                secret,
                context,
                offer: offer_bytes.clone(),
                offered_limit_log2,
                protect_metadata,
                backend: PhantomData,
            },
            offer_bytes,
        })
    }
}

impl<C: Blake3> ClientAwaitingResponse<C> {
    /// The offer this state sent (CONNECT Authentication Data).
    pub fn offer_bytes(&self) -> &[u8] {
        &self.offer
    }

    /// Verifies CONNACK's response (and its Session Present flag); yields the
    /// finished (for AUTH 0x19, unless the client's first packet is a sealed
    /// PUBLISH) and the records.
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
        if response.protect_metadata != self.protect_metadata {
            return Err(LwaError::Malformed(
                WireMessage::Response,
                WireDefect::MetadataFlagMismatch,
            ));
        }
        let shared = shared_secret::<C>(&self.secret, &response.ephemeral)?;
        let th = transcript_hash::<C>(
            &self.context,
            &self.offer,
            &response.without_mac(),
            session_present,
        );
        let keys = KeySchedule::<C>::derive(&self.psk, &shared, &th);
        if !bool::from(keys.broker_mac().ct_eq(&response.broker_mac)) {
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
            protect_metadata: self.protect_metadata,
            update_secret: Some(Zeroizing::new(*keys.update_secret())),
        };
        let finished = ClientFinished {
            finished_bytes: keys.client_mac(&response.broker_mac),
        };
        Ok((finished, records))
    }
}

impl<C: Blake3> BrokerResponder<C> {
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
    /// response looks like any other and the client's confirmation then fails.
    pub fn respond<R, F>(
        &self,
        offer_bytes: &[u8],
        context: &ConnectContext<'_>,
        session_present: bool,
        psk_lookup: F,
        rng: &mut R,
    ) -> Result<(BrokerAwaitingConfirmation<C>, Vec<u8>), LwaError>
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
        // Metadata protection is granted exactly when asked for (LWA2.md 7.1).
        let protect_metadata = offer.protect_metadata;
        let mut response = Response {
            record_limit_log2: chosen,
            protect_metadata,
            ephemeral,
            broker_mac: [0; MAC_LEN],
        };
        let th = transcript_hash::<C>(
            &context,
            offer_bytes,
            &response.without_mac(),
            session_present,
        );
        let keys = KeySchedule::<C>::derive(&psk, &shared, &th);
        response.broker_mac = keys.broker_mac();
        let awaiting = BrokerAwaitingConfirmation {
            claimed_identity: offer.identity.to_owned(),
            identity_known,
            expected_client_mac: Zeroizing::new(keys.client_mac(&response.broker_mac)),
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
            protect_metadata,
            update_secret: Zeroizing::new(*keys.update_secret()),
        };
        Ok((awaiting, response.to_bytes()))
    }
}

impl<C: Blake3> BrokerAwaitingConfirmation<C> {
    /// The identity the offer claims; NOT authenticated until a confirmation succeeds.
    pub fn claimed_identity(&self) -> &str {
        &self.claimed_identity
    }

    /// Whether the handshake granted metadata protection: then the first
    /// record's plaintext is [`super::metadata::Inner`] and its topic the placeholder.
    pub fn protects_metadata(&self) -> bool {
        self.protect_metadata
    }

    fn records(self) -> BrokerRecords<C> {
        BrokerRecords {
            identity: self.claimed_identity,
            sealer: self.sealer,
            opener: self.opener,
            record_limit_log2: self.record_limit_log2,
            protect_metadata: self.protect_metadata,
            update_secret: Some(self.update_secret),
        }
    }

    /// Verifies the client's AUTH 0x19 data; only after this may the connection have MQTT effects.
    pub fn on_finished(self, finished_bytes: &[u8]) -> Result<BrokerRecords<C>, LwaError> {
        let finished = Finished::parse(finished_bytes)?;
        let mac_ok = finished.client_mac.ct_eq(&*self.expected_client_mac);
        // The dummy key already makes the MAC fail; the flag makes it certain.
        let known = Choice::from(u8::from(self.identity_known));
        if !bool::from(mac_ok & known) {
            return Err(LwaError::ClientAuthFailed);
        }
        Ok(self.records())
    }

    /// Implicit key confirmation (LWA2.md 6.2): the client's first packet
    /// after CONNACK is a PUBLISH whose payload `sealed` must open as
    /// client-to-broker record 0. On success the client is authenticated and
    /// the plaintext is `sealed[..len]`; the records continue at counter 1.
    /// Any failure is [`LwaError::ClientAuthFailed`].
    pub fn on_first_record(
        self,
        topic: &str,
        qos: u8,
        retain: bool,
        sealed: &mut [u8],
    ) -> Result<(BrokerRecords<C>, usize), LwaError> {
        let known = self.identity_known;
        let mut records = self.records();
        let len = records
            .opener
            .open_in_place(topic, qos, retain, sealed)
            .map_err(|_| LwaError::ClientAuthFailed)?
            .len();
        if !known {
            return Err(LwaError::ClientAuthFailed);
        }
        Ok((records, len))
    }
}

impl<C: Blake3> fmt::Debug for ClientOffer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("lwa2::ClientOffer")
            .field("offer_bytes", &self.offer_bytes.len())
            .finish_non_exhaustive()
    }
}

impl<C: Blake3> fmt::Debug for ClientAwaitingResponse<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("lwa2::ClientAwaitingResponse")
            .field("offered_limit_log2", &self.offered_limit_log2)
            .finish_non_exhaustive()
    }
}

impl<C: Blake3> fmt::Debug for BrokerAwaitingConfirmation<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("lwa2::BrokerAwaitingConfirmation")
            .field("claimed_identity", &self.claimed_identity)
            .field("record_limit_log2", &self.record_limit_log2)
            .finish_non_exhaustive()
    }
}

impl<C: Blake3> fmt::Debug for BrokerResponder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("lwa2::BrokerResponder")
            .field("record_limit_log2", &self.record_limit_log2)
            .finish()
    }
}
