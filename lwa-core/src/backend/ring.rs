//! The ring backend (feature `ring`): ring's ChaCha20-Poly1305, SHA-256,
//! HMAC and HKDF, the assembly that rustls also runs. For a 30-byte payload
//! ring's AEAD costs about a fifth of the instructions of RustCrypto's
//! `chacha20poly1305` 0.10, whose AVX2 Poly1305 pays a fixed set-up and
//! finalisation per record (callgrind, experiments/README.md).
//!
//! X25519 is x25519-dalek's, as in [`super::rustcrypto`]: ring's X25519 draws
//! its private key from its own sealed RNG, so a caller could not inject the
//! randomness that the handshake (and its test vectors) take as input.
//!
//! Zeroization: ring's key types (`LessSafeKey`, `hmac::Key`) do not wipe
//! themselves on drop, and wiping them would need `unsafe`. The HMAC and HKDF
//! keys live only for one call; the record key lives as long as its
//! direction (built once, not per record), so a host that must not leave a
//! record key in freed memory uses [`super::rustcrypto`].

use ::ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use ::ring::{digest, hkdf, hmac};
use zeroize::Zeroizing;

use super::rustcrypto::RustCrypto;
use crate::crypto::{Crypto, CryptoError, RecordKey, AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN};

/// The ring backend (X25519 from x25519-dalek).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ring;

/// A direction's key: ring's ChaCha20-Poly1305 (not zeroized on drop, see the module doc).
pub struct RingRecordKey(LessSafeKey);

impl core::fmt::Debug for RingRecordKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RingRecordKey(<redacted>)")
    }
}

impl RecordKey for RingRecordKey {
    fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                buffer,
            )
            .map_err(|_| CryptoError::Length)?;
        <[u8; AEAD_TAG_LEN]>::try_from(tag.as_ref()).map_err(|_| CryptoError::Length)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        // ring compares the tag in constant time.
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                buffer,
                0..,
            )
            .map(|_| ())
            .map_err(|_| CryptoError::Authentication)
    }
}

/// An HKDF output length for ring's typed `expand`.
struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl Crypto for Ring {
    type RecordKey = RingRecordKey;

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in parts {
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(part);
        }
        let mut out = Zeroizing::new([0u8; 32]);
        let tag = ctx.sign();
        if tag.as_ref().len() != out.len() {
            return Err(CryptoError::Length);
        }
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        // HKDF-Extract is HMAC(salt, ikm) (RFC 5869 section 2.2); ring's own
        // `Salt::extract` returns an opaque PRK, and the vectors check the PRK.
        Self::hmac_sha256(salt, &[ikm])
    }

    fn hkdf_expand(
        prk: &[u8; 32],
        info_parts: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk)
            .expand(info_parts, OutputLen(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| CryptoError::Length)
    }

    fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
        RustCrypto::x25519_public(secret)
    }

    fn x25519_shared(secret: &[u8; 32], peer: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        RustCrypto::x25519_shared(secret, peer)
    }

    fn record_key(key: &[u8; AEAD_KEY_LEN]) -> Result<Self::RecordKey, CryptoError> {
        UnboundKey::new(&CHACHA20_POLY1305, key)
            .map(|k| RingRecordKey(LessSafeKey::new(k)))
            .map_err(|_| CryptoError::Length)
    }
}

// LWA2: BLAKE3 from the blake3 crate (ring has no BLAKE3).
impl crate::crypto::Blake3 for Ring {}

backend_aliases!(Ring, "ring (X25519 from x25519-dalek)");
