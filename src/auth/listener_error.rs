//! Why a listener could not be set up from its configuration: the file or
//! setting at fault, with the listener's name. Messages read as before
//! (`listener "NAME": password_file: PATH:LINE: reason`); the inner errors are
//! fields, not error sources, so that a `{:#}` chain does not repeat them.

use super::acl::AclFileError;
use super::password::PasswordFileError;
use super::psk::PskFileError;
use crate::lwa::LwaError;
use crate::transport::tls::TlsError;

/// A listener's security or transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The LWA PSK store could not be loaded.
    #[error("listener {listener:?}: lwa_psk_file: {error}")]
    PskFile {
        /// The listener's name.
        listener: String,
        /// What is wrong with the file.
        error: PskFileError,
    },
    /// The LWA authenticator refused its parameters.
    #[error("listener {listener:?}: {error}")]
    Lwa {
        /// The listener's name.
        listener: String,
        /// Why.
        error: LwaError,
    },
    /// The password file could not be loaded.
    #[error("listener {listener:?}: password_file: {error}")]
    PasswordFile {
        /// The listener's name.
        listener: String,
        /// What is wrong with the file.
        error: PasswordFileError,
    },
    /// The ACL file could not be loaded.
    #[error("listener {listener:?}: acl_file: {error}")]
    AclFile {
        /// The listener's name.
        listener: String,
        /// What is wrong with the file.
        error: AclFileError,
    },
    /// `mode = "tls"` without a `[listener.tls]` table.
    #[error(
        "listener {listener:?}: mode = \"tls\" needs a [listener.tls] table with certfile and keyfile"
    )]
    TlsTableMissing {
        /// The listener's name.
        listener: String,
    },
    /// `tls_version` names no version we accept.
    #[error("listener {listener:?}: {error}")]
    TlsVersion {
        /// The listener's name.
        listener: String,
        /// Why.
        error: TlsError,
    },
    /// The certificate, key or CA files could not be read or do not fit.
    #[error("listener {listener:?}: TLS: {error}")]
    Tls {
        /// The listener's name.
        listener: String,
        /// Why.
        error: TlsError,
    },
}
