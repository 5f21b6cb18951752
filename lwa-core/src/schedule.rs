//! The LWA1 key schedule (LWA.md section 5): the connect context that binds
//! CONNECT/CONNACK fields, the transcript hash TH, and HKDF-SHA256 from
//! (PSK, X25519 shared secret, TH) to record keys and handshake MACs.
//!
//! Pure functions over bytes so the test vectors can check every
//! intermediate value.

use core::marker::PhantomData;

use alloc::vec::Vec;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::backend::rustcrypto::RustCrypto;
use crate::crypto::Crypto;
use crate::error::LwaError;
use crate::MAC_LEN;

/// Domain separator that starts the transcript hash input.
pub const TRANSCRIPT_LABEL: &[u8] = b"LWA1 transcript";
/// Prefix of every HKDF-Expand info string.
pub const EXPAND_PREFIX: &[u8] = b"LWA1 ";
/// HKDF label of the client-to-broker record key (32 bytes).
pub const LABEL_C2B_KEY: &[u8] = b"c2b key";
/// HKDF label of the client-to-broker nonce base (12 bytes).
pub const LABEL_C2B_IV: &[u8] = b"c2b iv";
/// HKDF label of the broker-to-client record key (32 bytes).
pub const LABEL_B2C_KEY: &[u8] = b"b2c key";
/// HKDF label of the broker-to-client nonce base (12 bytes).
pub const LABEL_B2C_IV: &[u8] = b"b2c iv";
/// HKDF label of the key for broker_mac (32 bytes).
pub const LABEL_BROKER_MAC: &[u8] = b"broker mac";
/// HKDF label of the key for client_mac (32 bytes).
pub const LABEL_CLIENT_MAC: &[u8] = b"client mac";

/// A 32-byte pre-shared key, shared by one identity and the broker; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Psk([u8; 32]);

impl Psk {
    /// Wraps raw key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Psk(bytes)
    }

    /// Parses 64 hex digits (the configuration format).
    pub fn from_hex(text: &str) -> Result<Self, LwaError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut())
            .map_err(|_| LwaError::InvalidParameter("PSK must be 64 hex digits"))?;
        Ok(Psk(*bytes))
    }

    /// A fresh random key: new PSKs, and the dummy key for unknown identities.
    pub fn random<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Psk(bytes)
    }

    /// The key bytes (HKDF salt).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for Psk {
    fn from(bytes: [u8; 32]) -> Self {
        Psk(bytes)
    }
}

impl core::fmt::Debug for Psk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

/// The Will Message fields LWA1 authenticates (the same ones a record binds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WillContext<'a> {
    /// Will Topic.
    pub topic: &'a str,
    /// Will QoS, as its byte (0, 1 or 2).
    pub qos: u8,
    /// Will Retain.
    pub retain: bool,
    /// Will Payload.
    pub payload: &'a [u8],
}

/// The CONNECT/CONNACK fields outside Authentication Data that the transcript binds.
///
/// Without them an active attacker could keep the handshake intact while
/// changing which session is used (client id, clean start) or injecting a
/// will that the broker would publish in the client's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectContext<'a> {
    /// Client Identifier of the CONNECT (must not be empty).
    pub client_id: &'a str,
    /// Clean Start flag of the CONNECT.
    pub clean_start: bool,
    /// Will Message of the CONNECT, if any.
    pub will: Option<WillContext<'a>>,
}

/// Writes a 2-byte big-endian length prefix and the bytes (MQTT's own convention).
pub fn put_lp(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), LwaError> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| LwaError::InvalidParameter("field longer than 65535 bytes"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

impl<'a> ConnectContext<'a> {
    /// A context with no will.
    pub fn new(client_id: &'a str, clean_start: bool) -> Self {
        ConnectContext {
            client_id,
            clean_start,
            will: None,
        }
    }

    /// `lp(client_id) | clean_start(1) | will_flag(1) [| will_qos(1) | will_retain(1) | lp(will_topic) | lp(will_payload)]`.
    pub fn encode(&self) -> Result<Vec<u8>, LwaError> {
        if self.client_id.is_empty() {
            return Err(LwaError::EmptyClientId);
        }
        let mut out = Vec::with_capacity(8 + self.client_id.len());
        put_lp(&mut out, self.client_id.as_bytes())?;
        out.push(u8::from(self.clean_start));
        match &self.will {
            None => out.push(0),
            Some(will) => {
                out.push(1);
                out.push(will.qos);
                out.push(u8::from(will.retain));
                put_lp(&mut out, will.topic.as_bytes())?;
                put_lp(&mut out, will.payload)?;
            }
        }
        Ok(out)
    }
}

/// TH = SHA-256("LWA1 transcript" | context | offer | response_without_mac | session_present(1)).
pub fn transcript_hash<C: Crypto>(
    context: &[u8],
    offer: &[u8],
    response_without_mac: &[u8],
    session_present: bool,
) -> [u8; 32] {
    C::sha256(&[
        TRANSCRIPT_LABEL,
        context,
        offer,
        response_without_mac,
        &[u8::from(session_present)],
    ])
}

/// Every secret derived from one handshake; all of it zeroized on drop.
pub struct KeySchedule<C: Crypto = RustCrypto> {
    th: [u8; 32],
    prk: Zeroizing<[u8; 32]>,
    c2b_key: Zeroizing<[u8; 32]>,
    c2b_iv: Zeroizing<[u8; 12]>,
    b2c_key: Zeroizing<[u8; 32]>,
    b2c_iv: Zeroizing<[u8; 12]>,
    broker_mac_key: Zeroizing<[u8; 32]>,
    client_mac_key: Zeroizing<[u8; 32]>,
    backend: PhantomData<C>,
}

fn expand<C: Crypto, const N: usize>(
    prk: &[u8; 32],
    label: &[u8],
    th: &[u8; 32],
) -> Result<Zeroizing<[u8; N]>, LwaError> {
    let mut okm = Zeroizing::new([0u8; N]);
    C::hkdf_expand(prk, &[EXPAND_PREFIX, label, th], okm.as_mut())
        .map_err(|_| LwaError::InvalidParameter("HKDF output length"))?;
    Ok(okm)
}

fn truncated_mac<C: Crypto>(key: &[u8; 32], parts: &[&[u8]]) -> Result<[u8; MAC_LEN], LwaError> {
    let full =
        C::hmac_sha256(key, parts).map_err(|_| LwaError::InvalidParameter("HMAC key length"))?;
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    Ok(out)
}

impl<C: Crypto> KeySchedule<C> {
    /// prk = HKDF-Extract(salt = PSK, ikm = dh); each key = HKDF-Expand(prk, "LWA1 " | label | TH, len).
    pub fn derive(psk: &Psk, dh: &[u8; 32], th: &[u8; 32]) -> Result<Self, LwaError> {
        let prk = C::hkdf_extract(psk.as_bytes(), dh)
            .map_err(|_| LwaError::InvalidParameter("HKDF-Extract"))?;
        Ok(KeySchedule {
            th: *th,
            c2b_key: expand::<C, 32>(&prk, LABEL_C2B_KEY, th)?,
            c2b_iv: expand::<C, 12>(&prk, LABEL_C2B_IV, th)?,
            b2c_key: expand::<C, 32>(&prk, LABEL_B2C_KEY, th)?,
            b2c_iv: expand::<C, 12>(&prk, LABEL_B2C_IV, th)?,
            broker_mac_key: expand::<C, 32>(&prk, LABEL_BROKER_MAC, th)?,
            client_mac_key: expand::<C, 32>(&prk, LABEL_CLIENT_MAC, th)?,
            prk,
            backend: PhantomData,
        })
    }

    /// broker_mac = HMAC-SHA256(k_broker_mac, TH)[..16].
    pub fn broker_mac(&self) -> Result<[u8; MAC_LEN], LwaError> {
        truncated_mac::<C>(&self.broker_mac_key, &[&self.th])
    }

    /// client_mac = HMAC-SHA256(k_client_mac, TH | broker_mac)[..16].
    pub fn client_mac(&self, broker_mac: &[u8; MAC_LEN]) -> Result<[u8; MAC_LEN], LwaError> {
        truncated_mac::<C>(&self.client_mac_key, &[&self.th, broker_mac])
    }

    /// The transcript hash the keys are bound to.
    pub fn th(&self) -> &[u8; 32] {
        &self.th
    }
    /// HKDF pseudo-random key (test vectors only).
    pub fn prk(&self) -> &[u8; 32] {
        &self.prk
    }
    /// Client-to-broker record key.
    pub fn c2b_key(&self) -> &[u8; 32] {
        &self.c2b_key
    }
    /// Client-to-broker nonce base.
    pub fn c2b_iv(&self) -> &[u8; 12] {
        &self.c2b_iv
    }
    /// Broker-to-client record key.
    pub fn b2c_key(&self) -> &[u8; 32] {
        &self.b2c_key
    }
    /// Broker-to-client nonce base.
    pub fn b2c_iv(&self) -> &[u8; 12] {
        &self.b2c_iv
    }
    /// Key of broker_mac.
    pub fn broker_mac_key(&self) -> &[u8; 32] {
        &self.broker_mac_key
    }
    /// Key of client_mac.
    pub fn client_mac_key(&self) -> &[u8; 32] {
        &self.client_mac_key
    }
}

impl<C: Crypto> core::fmt::Debug for KeySchedule<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeySchedule(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use sha2::{Digest, Sha256};
    use std::format;

    type Ks = KeySchedule<RustCrypto>;

    fn th(context: &[u8], offer: &[u8], resp: &[u8], sp: bool) -> [u8; 32] {
        transcript_hash::<RustCrypto>(context, offer, resp, sp)
    }

    #[test]
    fn context_encoding_without_will() {
        let ctx = ConnectContext::new("ab", true);
        assert_eq!(ctx.encode().unwrap(), vec![0, 2, b'a', b'b', 1, 0]);
    }

    #[test]
    fn context_encoding_with_will() {
        let ctx = ConnectContext {
            client_id: "c",
            clean_start: false,
            will: Some(WillContext {
                topic: "t/x",
                qos: 1,
                retain: true,
                payload: b"bye",
            }),
        };
        assert_eq!(
            ctx.encode().unwrap(),
            vec![0, 1, b'c', 0, 1, 1, 1, 0, 3, b't', b'/', b'x', 0, 3, b'b', b'y', b'e']
        );
    }

    #[test]
    fn context_rejects_empty_client_id_and_oversized_fields() {
        assert_eq!(
            ConnectContext::new("", true).encode().unwrap_err(),
            LwaError::EmptyClientId
        );
        let long = vec![0u8; 65536];
        let ctx = ConnectContext {
            client_id: "c",
            clean_start: true,
            will: Some(WillContext {
                topic: "t",
                qos: 0,
                retain: false,
                payload: &long,
            }),
        };
        assert!(matches!(ctx.encode(), Err(LwaError::InvalidParameter(_))));
    }

    #[test]
    fn transcript_separates_every_input() {
        let base = th(b"ctx", b"offer", b"resp", false);
        assert_ne!(base, th(b"ctx", b"offer", b"resp", true));
        assert_ne!(base, th(b"ctX", b"offer", b"resp", false));
        assert_ne!(base, th(b"ctx", b"offeR", b"resp", false));
        assert_ne!(base, th(b"ctx", b"offer", b"resP", false));
        let mut manual = Sha256::new();
        manual.update(b"LWA1 transcriptctxofferresp\x00");
        assert_eq!(base, <[u8; 32]>::from(manual.finalize()));
    }

    #[test]
    fn keys_are_distinct_and_depend_on_every_input() {
        let psk = Psk::new([1; 32]);
        let ks = Ks::derive(&psk, &[2; 32], &[3; 32]).unwrap();
        let keys = [
            ks.c2b_key(),
            ks.b2c_key(),
            ks.broker_mac_key(),
            ks.client_mac_key(),
            ks.prk(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(ks.c2b_iv(), ks.b2c_iv());
        assert_ne!(&ks.c2b_key()[..12], ks.c2b_iv());
        let other_psk = Ks::derive(&Psk::new([9; 32]), &[2; 32], &[3; 32]).unwrap();
        let other_dh = Ks::derive(&psk, &[9; 32], &[3; 32]).unwrap();
        let other_th = Ks::derive(&psk, &[2; 32], &[9; 32]).unwrap();
        for other in [&other_psk, &other_dh, &other_th] {
            assert_ne!(other.c2b_key(), ks.c2b_key());
            assert_ne!(other.broker_mac().unwrap(), ks.broker_mac().unwrap());
        }
        // prk does not depend on TH (only the expansions do).
        assert_eq!(ks.prk(), other_th.prk());
        assert_ne!(ks.prk(), other_dh.prk());
        assert_ne!(ks.prk(), other_psk.prk());
    }

    #[test]
    fn client_mac_depends_on_broker_mac() {
        let ks = Ks::derive(&Psk::new([1; 32]), &[2; 32], &[3; 32]).unwrap();
        assert_ne!(
            ks.client_mac(&[0; 16]).unwrap(),
            ks.client_mac(&[1; 16]).unwrap()
        );
        assert_ne!(
            ks.client_mac(&ks.broker_mac().unwrap()).unwrap()[..],
            ks.broker_mac().unwrap()[..]
        );
    }

    #[test]
    fn psk_hex_parsing_and_redacted_debug() {
        let psk = Psk::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(psk.as_bytes(), &[0xab; 32]);
        assert!(Psk::from_hex("abcd").is_err());
        assert!(Psk::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{psk:?}"), "Psk(<redacted>)");
    }
}
