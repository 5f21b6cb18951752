//! The crypto backends: implementations of [`crate::crypto::Crypto`], each
//! with aliases of the protocol types fixed to it, so a user of one backend
//! writes `lwa_core::backend::rustcrypto::RecordSealer::new(..)`.
//!
//! - [`rustcrypto`]: the RustCrypto crates (`chacha20poly1305`, `hkdf`, `hmac`, `sha2`)
//!   and `x25519-dalek`; pure Rust, `no_std`, always built. The default type
//!   parameter of every generic protocol type.
//! - [`ring`] (feature `ring`): ring's assembly for the AEAD, SHA-256, HMAC
//!   and HKDF; X25519 from `x25519-dalek` as in the other backend.

/// Aliases of the protocol types for one backend (`$backend`), documented as such.
macro_rules! backend_aliases {
    ($backend:ty, $name:literal) => {
        #[doc = concat!("[`crate::handshake::ClientOffer`] over ", $name, ".")]
        pub type ClientOffer = crate::handshake::ClientOffer<$backend>;
        #[doc = concat!("[`crate::handshake::ClientAwaitingResponse`] over ", $name, ".")]
        pub type ClientAwaitingResponse = crate::handshake::ClientAwaitingResponse<$backend>;
        #[doc = concat!("[`crate::handshake::ClientRecords`] over ", $name, ".")]
        pub type ClientRecords = crate::handshake::ClientRecords<$backend>;
        #[doc = concat!("[`crate::handshake::BrokerResponder`] over ", $name, ".")]
        pub type BrokerResponder = crate::handshake::BrokerResponder<$backend>;
        #[doc = concat!("[`crate::handshake::BrokerAwaitingFinished`] over ", $name, ".")]
        pub type BrokerAwaitingFinished = crate::handshake::BrokerAwaitingFinished<$backend>;
        #[doc = concat!("[`crate::handshake::BrokerRecords`] over ", $name, ".")]
        pub type BrokerRecords = crate::handshake::BrokerRecords<$backend>;
        #[doc = concat!("[`crate::record::RecordSealer`] over ", $name, ".")]
        pub type RecordSealer = crate::record::RecordSealer<$backend>;
        #[doc = concat!("[`crate::record::RecordOpener`] over ", $name, ".")]
        pub type RecordOpener = crate::record::RecordOpener<$backend>;
        #[doc = concat!("[`crate::schedule::KeySchedule`] over ", $name, ".")]
        pub type KeySchedule = crate::schedule::KeySchedule<$backend>;

        #[doc = concat!("[`crate::schedule::transcript_hash`] over ", $name, ".")]
        pub fn transcript_hash(
            context: &[u8],
            offer: &[u8],
            response_without_mac: &[u8],
            session_present: bool,
        ) -> [u8; 32] {
            crate::schedule::transcript_hash::<$backend>(
                context,
                offer,
                response_without_mac,
                session_present,
            )
        }
    };
}

#[cfg(feature = "ring")]
pub mod ring;
pub mod rustcrypto;
