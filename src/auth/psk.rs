//! The broker's LWA1 PSK store: which identities exist and their 256-bit keys.
//!
//! File format (UTF-8 text, one entry per line, like a mosquitto password file):
//!
//! ```text
//! # comments and blank lines are kept when the file is edited
//! sensor-17:3f0c...(64 hex digits)...
//! gateway:ZmFrZS1rZXktZmFrZS1rZXktZmFrZS1rZXktZmFrZS0=   # or 44 characters of base64
//! ```
//!
//! - `identity` is 1..=255 bytes of UTF-8 (LWA.md section 4.4) without `:`,
//!   control characters or surrounding white space, and does not start with `#`.
//! - The key is exactly 32 bytes, as 64 hex digits or standard base64 (with
//!   padding). `mqtt-lwa psk` writes hex. PSKs must be uniformly random
//!   (LWA.md section 12.11), which is why the CLI generates them.
//! - Files written by this module get mode 0600 (an existing file keeps its
//!   mode) and are replaced atomically, so a reloading broker never reads half
//!   a file.
//!
//! Keys live in [`Psk`] (zeroized on drop); file text that held keys is read
//! and written through `Zeroizing` buffers.
//!
//! Lookups ([`PskStore::lookup`]) scan every entry and compare SHA-256 digests
//! of the identities in constant time, so their duration does not depend on
//! whether (or where) the identity exists (LWA.md section 12.8).

use super::line_file::LineFileError;
use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::lwa::Psk;

/// Why one line of a PSK file is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PskLineError {
    /// The line is not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// No `:` between identity and key.
    #[error("expected identity:key")]
    MissingSeparator,
    /// The identity breaks the rules above.
    #[error("invalid identity {identity:?}: {reason}")]
    Identity {
        /// The identity as written.
        identity: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The key is not 64 hex digits or 32 bytes of base64.
    #[error("key is not 32 bytes as 64 hex digits or base64")]
    Key,
    /// A client key file holds more than one key.
    #[error("more than one key in a client key file")]
    SeveralKeys,
    /// The identity appeared on an earlier line.
    #[error("duplicate identity {identity:?} (first defined on line {first_line})")]
    Duplicate {
        /// The identity.
        identity: String,
        /// Line of the first definition.
        first_line: usize,
    },
}

/// Errors loading, saving or editing a PSK file.
#[derive(Debug, thiserror::Error)]
pub enum PskFileError {
    /// The file could not be read or written, or a line of it is wrong.
    #[error(transparent)]
    File(#[from] LineFileError<PskLineError>),
    /// An identity given on the command line or API is unusable.
    #[error("{0}")]
    Identity(PskLineError),
}

/// Checks that `identity` is a valid LWA1 identity that the file format can hold.
pub fn validate_identity(identity: &str) -> Result<(), PskLineError> {
    let bad = |reason| {
        Err(PskLineError::Identity {
            identity: identity.to_owned(),
            reason,
        })
    };
    if let Err(defect) = crate::lwa::wire::validate_identity(identity) {
        return match defect {
            crate::lwa::WireDefect::EmptyIdentity => bad("empty"),
            crate::lwa::WireDefect::IdentityTooLong => bad("longer than 255 bytes"),
            _ => bad("contains U+0000"),
        };
    }
    if identity.contains(':') {
        return bad("contains ':'");
    }
    if identity.starts_with('#') {
        return bad("starts with '#' (would be read as a comment)");
    }
    if identity.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if identity.trim() != identity {
        return bad("leading or trailing white space");
    }
    Ok(())
}

/// Parses a 32-byte key written as 64 hex digits or standard base64.
pub fn parse_key(text: &str) -> Result<Psk, PskLineError> {
    let text = text.trim();
    let mut bytes = Zeroizing::new([0u8; 32]);
    if text.len() == 64 && hex::decode_to_slice(text, bytes.as_mut()).is_ok() {
        return Ok(Psk::new(*bytes));
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| PskLineError::Key)?,
    );
    let key: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| PskLineError::Key)?;
    Ok(Psk::new(key))
}

/// The key as 64 lower-case hex digits (the format `mqtt-lwa psk` writes).
pub fn key_to_hex(psk: &Psk) -> Zeroizing<String> {
    Zeroizing::new(hex::encode(psk.as_bytes()))
}

/// A fingerprint of one identity's key: lets a handshake or a connection
/// check later that the key it was keyed with is still the identity's
/// current key (revoke/rotate), without keeping a second copy of the PSK.
#[derive(Clone, Copy)]
pub struct KeyId([u8; 32]);

impl KeyId {
    /// The fingerprint of `psk` for `identity` (SHA-256 over a label, the
    /// identity and the key; one-way, so it reveals nothing about the key).
    pub fn of(identity: &str, psk: &Psk) -> Self {
        let mut h = Sha256::new();
        h.update(b"mqtt-lwa psk key id\0");
        h.update(identity.as_bytes());
        h.update([0u8]);
        h.update(psk.as_bytes());
        KeyId(h.finalize().into())
    }

    /// Constant-time equality (the fingerprint is derived from a secret).
    pub fn matches(&self, other: &KeyId) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyId(..)")
    }
}

fn identity_digest(identity: &str) -> [u8; 32] {
    Sha256::digest(identity.as_bytes()).into()
}

#[derive(Clone)]
enum Line {
    /// Comment or blank line, kept verbatim so edits keep an operator's notes.
    Verbatim(String),
    Entry {
        identity: String,
        digest: [u8; 32],
        psk: Psk,
    },
}

/// A parsed PSK file; edits keep comments and order.
#[derive(Clone, Default)]
pub struct PskStore {
    lines: Vec<Line>,
}

impl std::fmt::Debug for PskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskStore")
            .field("identities", &self.identities().collect::<Vec<_>>())
            .finish()
    }
}

impl PskStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, PskFileError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(LineFileError::io(path))?);
        warn_if_readable_by_others(path);
        Self::parse(&bytes, path)
    }

    /// Parses file contents; `path` is only used in error messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, PskFileError> {
        let mut store = PskStore::new();
        let mut first_lines: std::collections::HashMap<String, usize> = Default::default();
        let mut raw_lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if raw_lines.last().is_some_and(|l| l.is_empty()) {
            raw_lines.pop();
        }
        for (idx, raw) in raw_lines.into_iter().enumerate() {
            let line = idx + 1;
            let err = |reason| PskFileError::File(LineFileError::line(path, line, reason));
            let text = std::str::from_utf8(raw).map_err(|_| err(PskLineError::NotUtf8))?;
            let text = text.strip_suffix('\r').unwrap_or(text);
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                store.lines.push(Line::Verbatim(text.to_owned()));
                continue;
            }
            let (identity, key) = trimmed
                .split_once(':')
                .ok_or_else(|| err(PskLineError::MissingSeparator))?;
            validate_identity(identity).map_err(err)?;
            let psk = parse_key(key).map_err(err)?;
            if let Some(&first_line) = first_lines.get(identity) {
                return Err(err(PskLineError::Duplicate {
                    identity: identity.to_owned(),
                    first_line,
                }));
            }
            first_lines.insert(identity.to_owned(), line);
            store.lines.push(Line::Entry {
                identity: identity.to_owned(),
                digest: identity_digest(identity),
                psk,
            });
        }
        Ok(store)
    }

    /// The file text (keys in hex); zeroized when dropped.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for line in &self.lines {
            match line {
                Line::Verbatim(text) => out.push_str(text),
                Line::Entry { identity, psk, .. } => {
                    out.push_str(identity);
                    out.push(':');
                    out.push_str(&key_to_hex(psk));
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the store to `path` atomically (mode 0600 for a new file).
    pub fn save(&self, path: &Path) -> Result<(), PskFileError> {
        super::write_file_atomic(path, self.to_text().as_bytes(), 0o600)
            .map_err(|e| LineFileError::io(path)(e).into())
    }

    /// Adds `identity` or replaces its key; `true` when it was new.
    pub fn set(&mut self, identity: &str, psk: Psk) -> Result<bool, PskFileError> {
        validate_identity(identity).map_err(PskFileError::Identity)?;
        for line in &mut self.lines {
            if let Line::Entry {
                identity: existing,
                psk: key,
                ..
            } = line
            {
                if existing == identity {
                    *key = psk;
                    return Ok(false);
                }
            }
        }
        self.lines.push(Line::Entry {
            identity: identity.to_owned(),
            digest: identity_digest(identity),
            psk,
        });
        Ok(true)
    }

    /// Removes `identity`; `true` when it existed.
    pub fn remove(&mut self, identity: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::Entry { identity: i, .. } if i == identity));
        self.lines.len() != before
    }

    /// True when `identity` has a key (not constant time: for policy, not for the handshake).
    pub fn contains(&self, identity: &str) -> bool {
        self.identities().any(|i| i == identity)
    }

    /// The key of `identity`, found by a scan whose time does not depend on the answer.
    pub fn lookup(&self, identity: &str) -> Option<Psk> {
        let wanted = identity_digest(identity);
        let mut found = subtle::Choice::from(0);
        let mut key = [0u8; 32];
        for line in &self.lines {
            if let Line::Entry { digest, psk, .. } = line {
                let hit = digest.ct_eq(&wanted);
                for (k, b) in key.iter_mut().zip(psk.as_bytes()) {
                    k.conditional_assign(b, hit);
                }
                found |= hit;
            }
        }
        let key = Zeroizing::new(key);
        bool::from(found).then(|| Psk::new(*key))
    }

    /// True when `key` is the current key of `identity` (constant time in the key).
    pub fn key_is_current(&self, identity: &str, key: &KeyId) -> bool {
        self.lookup(identity)
            .is_some_and(|psk| KeyId::of(identity, &psk).matches(key))
    }

    /// Every identity, in file order.
    pub fn identities(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry { identity, .. } => Some(identity.as_str()),
            Line::Verbatim(_) => None,
        })
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.identities().count()
    }

    /// True when no identity has a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Identities of `self` that `newer` removed or gave another key: their
    /// live sessions must be closed when the broker switches to `newer`.
    pub fn revoked_by(&self, newer: &PskStore) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in &self.lines {
            if let Line::Entry { identity, psk, .. } = line {
                let still_same = newer
                    .lookup(identity)
                    .is_some_and(|k| bool::from(k.as_bytes().ct_eq(psk.as_bytes())));
                if !still_same {
                    out.insert(identity.clone());
                }
            }
        }
        out
    }
}

/// Reads a client's key file (`--lwa-key`): one key, as 64 hex digits or
/// base64, or one `identity:key` line (a line cut from the broker's store),
/// whose identity must then be `identity`. Comments and blank lines are ignored.
pub fn load_client_key(path: &Path, identity: &str) -> Result<Psk, PskFileError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(LineFileError::io(path))?);
    warn_if_readable_by_others(path);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| LineFileError::line(path, 1, PskLineError::NotUtf8))?;
    let mut found = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let err = |reason| PskFileError::File(LineFileError::line(path, line, reason));
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let key_text = match trimmed.split_once(':') {
            Some((id, key)) if id == identity => key,
            Some((id, _)) => {
                return Err(err(PskLineError::Identity {
                    identity: id.to_owned(),
                    reason: "key file is for another identity",
                }))
            }
            None => trimmed,
        };
        if found.is_some() {
            return Err(err(PskLineError::SeveralKeys));
        }
        found = Some(parse_key(key_text).map_err(err)?);
    }
    found.ok_or_else(|| LineFileError::line(path, 1, PskLineError::Key).into())
}

/// Writes a client key file: the key in hex and a newline, mode 0600.
pub fn save_client_key(path: &Path, psk: &Psk) -> Result<(), PskFileError> {
    let mut text = key_to_hex(psk);
    text.push('\n');
    super::write_file_atomic(path, text.as_bytes(), 0o600)
        .map_err(|e| LineFileError::io(path)(e).into())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "key file is readable by group or others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests;
