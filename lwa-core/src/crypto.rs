//! The primitives LWA1 is built from, behind one small trait so the protocol
//! code does not name a crypto library (like lakers' `CryptoTrait`).
//!
//! [`crate::backend::rustcrypto`] (RustCrypto + x25519-dalek, pure Rust,
//! `no_std`) is always built; [`crate::backend::ring`] (cargo feature `ring`)
//! is for hosts that link ring anyway. Both must produce the same bytes: the
//! test vectors in `protocol-spec/test-vectors` are checked against each.
//!
//! The functions are associated functions, not methods: a backend has no
//! state of its own. A backend over a hardware accelerator would keep its
//! peripheral in a static and lock it inside these calls.

use core::fmt;

use zeroize::Zeroizing;

/// Size of a ChaCha20-Poly1305 key.
pub const AEAD_KEY_LEN: usize = 32;
/// Size of a ChaCha20-Poly1305 nonce.
pub const AEAD_NONCE_LEN: usize = 12;
/// Size of a Poly1305 tag.
pub const AEAD_TAG_LEN: usize = 16;

/// A backend refused an operation; the protocol code turns it into an [`crate::LwaError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// An output or input length the primitive cannot handle (HKDF beyond
    /// 255 blocks, AEAD input beyond ChaCha20's 256 GiB).
    Length,
    /// An AEAD tag did not verify (forged, truncated or misplaced record).
    Authentication,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::Length => "length out of range for the primitive",
            CryptoError::Authentication => "AEAD tag did not verify",
        })
    }
}

impl core::error::Error for CryptoError {}

/// One direction's ChaCha20-Poly1305 key, expanded once when the direction is
/// keyed and used for every record of it.
pub trait RecordKey {
    /// Encrypts `buffer` in place and returns the tag (RFC 8439 section 2.8).
    fn seal_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError>;

    /// Verifies `tag` (in constant time) and decrypts `buffer` in place.
    ///
    /// On failure the contents of `buffer` are unspecified and must not be used.
    fn open_in_place(
        &self,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError>;
}

/// The cipher suite of LWA1: SHA-256, HMAC-SHA256, HKDF-SHA256, X25519 and
/// ChaCha20-Poly1305 (LWA.md section 3).
pub trait Crypto {
    /// A direction's record key; built by [`Crypto::record_key`].
    type RecordKey: RecordKey;

    /// SHA-256 of the concatenation of `parts`.
    fn sha256(parts: &[&[u8]]) -> [u8; 32];

    /// HMAC-SHA256 under `key` of the concatenation of `parts`.
    fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, CryptoError>;

    /// HKDF-Extract(salt, ikm) with SHA-256 (RFC 5869 section 2.2).
    fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError>;

    /// HKDF-Expand(prk, info, out.len()) with SHA-256, `info` being the
    /// concatenation of `info_parts` (RFC 5869 section 2.3).
    fn hkdf_expand(prk: &[u8; 32], info_parts: &[&[u8]], out: &mut [u8])
        -> Result<(), CryptoError>;

    /// The X25519 public key of the scalar `secret` (RFC 7748: clamped here).
    fn x25519_public(secret: &[u8; 32]) -> [u8; 32];

    /// X25519(secret, peer): the raw shared secret, all zeros for a low-order `peer`.
    fn x25519_shared(secret: &[u8; 32], peer: &[u8; 32]) -> Zeroizing<[u8; 32]>;

    /// Expands a ChaCha20-Poly1305 key for one direction.
    fn record_key(key: &[u8; AEAD_KEY_LEN]) -> Result<Self::RecordKey, CryptoError>;
}

/// BLAKE3, LWA2's one hash (LWA2.md section 3): transcript, key derivation
/// and MACs. A separate trait so LWA1's [`Crypto`] stays as it is.
///
/// The provided methods run the `blake3` crate (portable Rust on targets
/// without SIMD); a backend over a hardware hash overrides them. Both
/// shipped backends use them as they are, so LWA2's bytes cannot differ
/// between backends.
pub trait Blake3: Crypto {
    /// BLAKE3 `derive_key(context, parts concatenated)`, 32 bytes.
    fn blake3_derive_key(context: &str, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        for part in parts {
            hasher.update(part);
        }
        finish(hasher)
    }

    /// BLAKE3 `keyed_hash(key, parts concatenated)`, 32 bytes.
    fn blake3_keyed_hash(key: &[u8; 32], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        let mut hasher = blake3::Hasher::new_keyed(key);
        for part in parts {
            hasher.update(part);
        }
        finish(hasher)
    }
}

/// The 32-byte output; the hasher, which held keyed state, is wiped.
fn finish(mut hasher: blake3::Hasher) -> Zeroizing<[u8; 32]> {
    let out = Zeroizing::new(*hasher.finalize().as_bytes());
    zeroize::Zeroize::zeroize(&mut hasher);
    out
}
