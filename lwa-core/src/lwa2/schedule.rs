//! The LWA2 key schedule (LWA2.md section 5): one hash, BLAKE3, for the
//! transcript (`derive_key` mode), the session secret (`derive_key` mode),
//! every key and IV and both MACs (`keyed_hash` mode). The connect context
//! is LWA1's ([`crate::schedule::ConnectContext`]).

use core::marker::PhantomData;

use zeroize::Zeroizing;

use crate::backend::rustcrypto::RustCrypto;
use crate::crypto::Blake3;
use crate::schedule::Psk;
use crate::MAC_LEN;

/// BLAKE3 `derive_key` context of the transcript hash.
pub const TRANSCRIPT_CONTEXT: &str = "mqtt-lwa 2026-12 LWA2 transcript";
/// BLAKE3 `derive_key` context of the session secret `prk`.
pub const SECRET_CONTEXT: &str = "mqtt-lwa 2026-12 LWA2 session secret";
/// Label of the client-to-broker record key (32 bytes).
pub const LABEL_C2B_KEY: &[u8] = b"c2b key";
/// Label of the client-to-broker nonce base (12 bytes).
pub const LABEL_C2B_IV: &[u8] = b"c2b iv";
/// Label of the broker-to-client record key (32 bytes).
pub const LABEL_B2C_KEY: &[u8] = b"b2c key";
/// Label of the broker-to-client nonce base (12 bytes).
pub const LABEL_B2C_IV: &[u8] = b"b2c iv";
/// Label of the key for broker_mac (32 bytes).
pub const LABEL_BROKER_MAC: &[u8] = b"broker mac";
/// Label of the key for client_mac (32 bytes).
pub const LABEL_CLIENT_MAC: &[u8] = b"client mac";

/// TH = BLAKE3-derive_key(TRANSCRIPT_CONTEXT, context | offer | response_without_mac | session_present(1)).
///
/// Unambiguous although the offer has no length byte: the context is
/// self-delimiting and everything after the offer has a fixed length (34 bytes).
pub fn transcript_hash<C: Blake3>(
    context: &[u8],
    offer: &[u8],
    response_without_mac: &[u8],
    session_present: bool,
) -> [u8; 32] {
    *C::blake3_derive_key(
        TRANSCRIPT_CONTEXT,
        &[
            context,
            offer,
            response_without_mac,
            &[u8::from(session_present)],
        ],
    )
}

/// Every secret derived from one LWA2 handshake; all of it zeroized on drop.
pub struct KeySchedule<C: Blake3 = RustCrypto> {
    th: [u8; 32],
    prk: Zeroizing<[u8; 32]>,
    c2b_key: Zeroizing<[u8; 32]>,
    c2b_iv: Zeroizing<[u8; 12]>,
    b2c_key: Zeroizing<[u8; 32]>,
    b2c_iv: Zeroizing<[u8; 12]>,
    broker_mac_key: Zeroizing<[u8; 32]>,
    client_mac_key: Zeroizing<[u8; 32]>,
    update_secret: Zeroizing<[u8; 32]>,
    backend: PhantomData<C>,
}

/// key(label, N) = BLAKE3-keyed_hash(prk, label)[0..N].
fn expand<C: Blake3, const N: usize>(prk: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; N]> {
    let full = C::blake3_keyed_hash(prk, &[label]);
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&full[..N]);
    out
}

pub(crate) fn truncated_mac<C: Blake3>(key: &[u8; 32], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let full = C::blake3_keyed_hash(key, parts);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

impl<C: Blake3> KeySchedule<C> {
    /// prk = BLAKE3-derive_key(SECRET_CONTEXT, PSK | dh | TH); each key = BLAKE3-keyed_hash(prk, label)[0..len].
    pub fn derive(psk: &Psk, dh: &[u8; 32], th: &[u8; 32]) -> Self {
        let prk = C::blake3_derive_key(SECRET_CONTEXT, &[psk.as_bytes(), dh, th]);
        KeySchedule {
            th: *th,
            c2b_key: expand::<C, 32>(&prk, LABEL_C2B_KEY),
            c2b_iv: expand::<C, 12>(&prk, LABEL_C2B_IV),
            b2c_key: expand::<C, 32>(&prk, LABEL_B2C_KEY),
            b2c_iv: expand::<C, 12>(&prk, LABEL_B2C_IV),
            broker_mac_key: expand::<C, 32>(&prk, LABEL_BROKER_MAC),
            client_mac_key: expand::<C, 32>(&prk, LABEL_CLIENT_MAC),
            update_secret: expand::<C, 32>(&prk, super::update::LABEL_UPDATE),
            prk,
            backend: PhantomData,
        }
    }

    /// broker_mac = BLAKE3-keyed_hash(k_broker_mac, TH)[0..16].
    pub fn broker_mac(&self) -> [u8; MAC_LEN] {
        truncated_mac::<C>(&self.broker_mac_key, &[&self.th])
    }

    /// client_mac = BLAKE3-keyed_hash(k_client_mac, TH | broker_mac)[0..16].
    pub fn client_mac(&self, broker_mac: &[u8; MAC_LEN]) -> [u8; MAC_LEN] {
        truncated_mac::<C>(&self.client_mac_key, &[&self.th, broker_mac])
    }

    /// The transcript hash the keys are bound to.
    pub fn th(&self) -> &[u8; 32] {
        &self.th
    }
    /// The session secret (test vectors only).
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
    /// `u_0`, the secret key updates start from (LWA2.md section 8.2).
    pub fn update_secret(&self) -> &[u8; 32] {
        &self.update_secret
    }
}

impl<C: Blake3> core::fmt::Debug for KeySchedule<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("lwa2::KeySchedule(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ks = KeySchedule<RustCrypto>;

    fn th(context: &[u8], offer: &[u8], resp: &[u8], sp: bool) -> [u8; 32] {
        transcript_hash::<RustCrypto>(context, offer, resp, sp)
    }

    #[test]
    fn transcript_is_blake3_derive_key_and_separates_every_input() {
        let base = th(b"ctx", b"offer", b"resp", false);
        assert_ne!(base, th(b"ctx", b"offer", b"resp", true));
        assert_ne!(base, th(b"ctX", b"offer", b"resp", false));
        assert_ne!(base, th(b"ctx", b"offeR", b"resp", false));
        assert_ne!(base, th(b"ctx", b"offer", b"resP", false));
        let manual = blake3::derive_key(TRANSCRIPT_CONTEXT, b"ctxofferresp\x00");
        assert_eq!(base, manual);
    }

    #[test]
    fn keys_are_distinct_and_depend_on_every_input() {
        let psk = Psk::new([1; 32]);
        let ks = Ks::derive(&psk, &[2; 32], &[3; 32]);
        let keys = [
            ks.c2b_key(),
            ks.b2c_key(),
            ks.broker_mac_key(),
            ks.client_mac_key(),
            ks.update_secret(),
            ks.prk(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(ks.c2b_iv(), ks.b2c_iv());
        // An IV is the prefix of its label's keyed hash, not of another key.
        assert_ne!(&ks.c2b_key()[..12], ks.c2b_iv());
        let mut manual = [0u8; 32];
        manual.copy_from_slice(blake3::keyed_hash(ks.prk(), b"c2b key").as_bytes());
        assert_eq!(ks.c2b_key(), &manual);
        for other in [
            Ks::derive(&Psk::new([9; 32]), &[2; 32], &[3; 32]),
            Ks::derive(&psk, &[9; 32], &[3; 32]),
            Ks::derive(&psk, &[2; 32], &[9; 32]),
        ] {
            assert_ne!(other.prk(), ks.prk());
            assert_ne!(other.c2b_key(), ks.c2b_key());
            assert_ne!(other.broker_mac(), ks.broker_mac());
        }
        assert_ne!(ks.client_mac(&[0; 16]), ks.client_mac(&[1; 16]));
    }

    #[test]
    fn lwa1_and_lwa2_keys_differ_for_the_same_inputs() {
        let psk = Psk::new([1; 32]);
        let v1 =
            crate::schedule::KeySchedule::<RustCrypto>::derive(&psk, &[2; 32], &[3; 32]).unwrap();
        let v2 = Ks::derive(&psk, &[2; 32], &[3; 32]);
        assert_ne!(v1.c2b_key(), v2.c2b_key());
        assert_ne!(v1.b2c_key(), v2.b2c_key());
    }
}
