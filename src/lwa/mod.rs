//! LWA1 as this crate runs it: the `lwa-core` workspace crate (`no_std`,
//! sans-IO, no MQTT types) with its ring backend, re-exported under the
//! paths the rest of the crate, its tests and benches always used.
//!
//! The glue that knows both sides, the [`ConnectContext`] of a CONNECT and
//! the MQTT reason code of an [`LwaError`], is in [`crate::auth::lwa`].
//!
//! ring, because rustls links it anyway and its ChaCha20-Poly1305 costs a
//! fifth of RustCrypto's instructions on a short record (experiments/README.md);
//! the bytes on the wire are the same with either backend (the vector tests
//! check both). [`Backend`] names the one in use.

pub use lwa_core::*;
// The backend-fixed aliases shadow the generic types of the glob above.
pub use lwa_core::backend::ring::{
    BrokerAwaitingFinished, BrokerRecords, BrokerResponder, ClientAwaitingResponse, ClientOffer,
    ClientRecords, KeySchedule, RecordOpener, RecordSealer,
};

/// The crypto backend of this crate's LWA1.
pub type Backend = backend::ring::Ring;

/// The key schedule ([`lwa_core::schedule`]) with the backend fixed.
pub mod schedule {
    pub use lwa_core::backend::ring::{transcript_hash, KeySchedule};
    pub use lwa_core::schedule::{
        put_lp, ConnectContext, Psk, WillContext, EXPAND_PREFIX, LABEL_B2C_IV, LABEL_B2C_KEY,
        LABEL_BROKER_MAC, LABEL_C2B_IV, LABEL_C2B_KEY, LABEL_CLIENT_MAC, TRANSCRIPT_LABEL,
    };
}

/// Records ([`lwa_core::record`]) with the backend fixed.
pub mod record {
    pub use lwa_core::backend::ring::{RecordOpener, RecordSealer};
    pub use lwa_core::record::{record_aad, record_nonce, Direction};
}

/// LWA2 ([`lwa_core::lwa2`], `protocol-spec/LWA2.md`) with the backend fixed.
pub mod lwa2 {
    pub use lwa_core::lwa2::{check_method, offer_len, FINISHED_LEN, METHOD, RESPONSE_LEN};

    /// [`lwa_core::lwa2::ClientOffer`] over this crate's backend.
    pub type ClientOffer = lwa_core::lwa2::ClientOffer<super::Backend>;
    /// [`lwa_core::lwa2::ClientAwaitingResponse`] over this crate's backend.
    pub type ClientAwaitingResponse = lwa_core::lwa2::ClientAwaitingResponse<super::Backend>;
    /// [`lwa_core::lwa2::BrokerResponder`] over this crate's backend.
    pub type BrokerResponder = lwa_core::lwa2::BrokerResponder<super::Backend>;
    /// [`lwa_core::lwa2::BrokerAwaitingConfirmation`] over this crate's backend.
    pub type BrokerAwaitingConfirmation =
        lwa_core::lwa2::BrokerAwaitingConfirmation<super::Backend>;
    /// [`lwa_core::lwa2::KeyUpdate`] over this crate's backend.
    pub type KeyUpdate = lwa_core::lwa2::KeyUpdate<super::Backend>;
    pub use lwa_core::lwa2::KEY_UPDATE_LEN;

    /// Metadata protection's record plaintext (LWA2.md 7.1); backend-independent.
    pub mod metadata {
        pub use lwa_core::lwa2::metadata::{Inner, METADATA_OVERHEAD, PLACEHOLDER_TOPIC};
    }
}
