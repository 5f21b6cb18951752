//! The portable backend: RustCrypto's `chacha20poly1305`, `hkdf`, `hmac` and
//! `sha2`, and `x25519-dalek`. Pure Rust and `no_std`; every key object
//! zeroizes itself on drop.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::crypto::{Crypto, CryptoError, RecordKey, AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN};

/// The RustCrypto + x25519-dalek backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RustCrypto;

/// A direction's key: RustCrypto's ChaCha20-Poly1305 (zeroized on drop).
pub struct RustCryptoRecordKey(ChaCha20Poly1305);

impl core::fmt::Debug for RustCryptoRecordKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RustCryptoRecordKey(<redacted>)")
    }
}

impl RecordKey for RustCryptoRecordKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        self.0
            .encrypt_in_place_detached(nonce.into(), aad, buffer)
            .map(Into::into)
            .map_err(|_| CryptoError::Length)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        // The tag comparison inside is constant time (subtle).
        self.0
            .decrypt_in_place_detached(nonce.into(), aad, buffer, tag.into())
            .map_err(|_| CryptoError::Authentication)
    }
}

impl Crypto for RustCrypto {
    type RecordKey = RustCryptoRecordKey;

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in parts {
            h.update(part);
        }
        h.finalize().into()
    }

    fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError::Length)?;
        for part in parts {
            mac.update(part);
        }
        Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
        Ok(Zeroizing::new(prk.into()))
    }

    fn hkdf_expand(
        prk: &[u8; 32],
        info_parts: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        Hkdf::<Sha256>::from_prk(prk)
            .map_err(|_| CryptoError::Length)?
            .expand_multi_info(info_parts, out)
            .map_err(|_| CryptoError::Length)
    }

    fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
        PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
    }

    fn x25519_shared(secret: &[u8; 32], peer: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*peer));
        Zeroizing::new(*shared.as_bytes())
    }

    fn record_key(key: &[u8; AEAD_KEY_LEN]) -> Result<Self::RecordKey, CryptoError> {
        Ok(RustCryptoRecordKey(ChaCha20Poly1305::new(key.into())))
    }
}

// LWA2: BLAKE3 from the blake3 crate.
impl crate::crypto::Blake3 for RustCrypto {}

backend_aliases!(RustCrypto, "RustCrypto + x25519-dalek");
