//! Mosquitto-compatible password files and the password [`ConnectAuthenticator`](crate::auth::ConnectAuthenticator).
//!
//! The file format is the one Debian's mosquitto 2.0.11 reads and
//! `mosquitto_passwd` writes, one user per line:
//!
//! ```text
//! # comment
//! alice:$7$100000$<base64 12-byte salt>$<base64 64-byte hash>
//! bob:$6$<base64 12-byte salt>$<base64 64-byte hash>
//! ```
//!
//! `$7$` is PBKDF2-HMAC-SHA512 with the given iteration count over the raw
//! salt bytes; `$6$` is one SHA-512 over `password || salt` (mosquitto 1.6 and
//! earlier; read, never written). Salt must decode to 12 bytes and the hash to
//! 64, as mosquitto requires, so every file we accept mosquitto accepts too.
//!
//! Where we are stricter than mosquitto (it skips bad lines with a log
//! message, we refuse the file with its path, line and reason; duplicate user
//! names are an error) the operator finds out at start-up, not at login.

use std::fmt;
use std::path::Path;

use super::line_file::LineFileError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Salt length mosquitto writes and insists on when reading.
pub const SALT_LEN: usize = 12;
/// SHA-512 output length; mosquitto insists on it when reading.
pub const HASH_LEN: usize = 64;
/// Iteration count `mosquitto_passwd` 2.0.11 writes (too weak for anything but tests).
pub const MOSQUITTO_DEFAULT_ITERATIONS: u32 = 101;
/// Iteration count we write by default.
///
/// Measured on the build machine (AMD EPYC vCPU, release build of the
/// `pbkdf2` and `sha2` crates we use, mean of 10 runs on a shared 2-core box): one
/// verification takes ~0.05 ms at mosquitto's 101 iterations, ~4.8 ms at
/// 10 000, ~50 ms at 100 000 and ~100 ms at 210 000 (Python/OpenSSL: 67 ms at
/// 100 000). So an offline guesser gets ~20 guesses per second per core
/// instead of ~20 000, while a login costs the broker 50 ms of one blocking
/// thread; a Raspberry Pi 4 is several times slower, which is why the count
/// is configurable (`mqtt-lwa passwd -I`). OWASP's 2023 figure for
/// PBKDF2-HMAC-SHA512 is 210 000; we take about half because every CONNECT
/// pays it and the per-source rate limit bounds online guessing anyway.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Largest iteration count accepted (mosquitto parses the count with `atoi` into an `int`).
pub const MAX_ITERATIONS: u32 = i32::MAX as u32;
/// Counts below this produce a warning when a file is loaded.
pub const WEAK_ITERATIONS: u32 = 10_000;

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512 (mosquitto 2.0 default).
    Pbkdf2Sha512 {
        /// PBKDF2 iteration count.
        iterations: u32,
        /// Raw salt bytes.
        salt: [u8; SALT_LEN],
        /// Derived key.
        hash: [u8; HASH_LEN],
    },
    /// `$6$`: SHA-512(password || salt) (mosquitto 1.6 and earlier), read only.
    Sha512 {
        /// Raw salt bytes.
        salt: [u8; SALT_LEN],
        /// Digest.
        hash: [u8; HASH_LEN],
    },
}

impl fmt::Debug for PasswordHash {
    // The hash is offline-guessable material: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(
                    f,
                    "PasswordHash::Pbkdf2Sha512 {{ iterations: {iterations}, .. }}"
                )
            }
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash::Sha512 { .. }"),
        }
    }
}

/// Why a hash field (the text after `user:`) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashFormatError {
    /// Neither `$6$` nor `$7$`.
    #[error("unknown hash type (expected $7$ or $6$)")]
    UnknownType,
    /// A `$`-separated field is missing or there is an extra one.
    #[error("expected {expected} '$'-separated fields, found {found}")]
    FieldCount {
        /// Number of fields the type needs.
        expected: usize,
        /// Number of fields present.
        found: usize,
    },
    /// Iteration count not a number in 1..=2^31-1.
    #[error("invalid iteration count {0:?} (must be 1..=2147483647)")]
    Iterations(String),
    /// Salt is not base64.
    #[error("salt is not valid base64")]
    SaltBase64,
    /// Salt decodes to the wrong length.
    #[error("salt is {0} bytes, mosquitto requires 12")]
    SaltLength(usize),
    /// Hash is not base64.
    #[error("hash is not valid base64")]
    HashBase64,
    /// Hash decodes to the wrong length.
    #[error("hash is {0} bytes, expected 64")]
    HashLength(usize),
}

impl PasswordHash {
    /// Hashes `password` with PBKDF2-HMAC-SHA512 under a fresh salt from the OS RNG.
    pub fn new_pbkdf2(password: &[u8], iterations: u32) -> Result<Self, PasswordFileError> {
        let mut salt = [0u8; SALT_LEN];
        OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|e| PasswordFileError::Rng(e.to_string()))?;
        Self::pbkdf2_with_salt(password, salt, iterations)
    }

    /// Hashes `password` with PBKDF2-HMAC-SHA512 under the given salt (deterministic; for vectors).
    pub fn pbkdf2_with_salt(
        password: &[u8],
        salt: [u8; SALT_LEN],
        iterations: u32,
    ) -> Result<Self, PasswordFileError> {
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(PasswordFileError::Iterations(iterations));
        }
        let derived = pbkdf2_sha512(password, &salt, iterations);
        Ok(PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash: *derived,
        })
    }

    /// Checks `password` against this hash in constant time (with respect to the hash bytes).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let derived = pbkdf2_sha512(password, salt, *iterations);
                bool::from(derived.ct_eq(hash))
            }
            PasswordHash::Sha512 { salt, hash } => {
                let mut digest = Sha512::new();
                digest.update(password);
                digest.update(salt);
                let out = Zeroizing::new(<[u8; HASH_LEN]>::from(digest.finalize()));
                bool::from(out.ct_eq(hash))
            }
        }
    }

    /// PBKDF2 iteration count, or `None` for `$6$`.
    pub fn iterations(&self) -> Option<u32> {
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => Some(*iterations),
            PasswordHash::Sha512 { .. } => None,
        }
    }

    /// Parses the text after `user:` (`$7$iter$salt$hash` or `$6$salt$hash`).
    pub fn parse(text: &str) -> Result<Self, HashFormatError> {
        let fields: Vec<&str> = text.split('$').collect();
        // A leading '$' makes the first field empty.
        match fields.as_slice() {
            ["", "7", rest @ ..] => {
                let [iter, salt, hash] = rest else {
                    return Err(HashFormatError::FieldCount {
                        expected: 3,
                        found: rest.len(),
                    });
                };
                let iterations = parse_iterations(iter)?;
                Ok(PasswordHash::Pbkdf2Sha512 {
                    iterations,
                    salt: decode_salt(salt)?,
                    hash: decode_hash(hash)?,
                })
            }
            ["", "6", rest @ ..] => {
                let [salt, hash] = rest else {
                    return Err(HashFormatError::FieldCount {
                        expected: 2,
                        found: rest.len(),
                    });
                };
                Ok(PasswordHash::Sha512 {
                    salt: decode_salt(salt)?,
                    hash: decode_hash(hash)?,
                })
            }
            _ => Err(HashFormatError::UnknownType),
        }
    }
}

impl fmt::Display for PasswordHash {
    /// The on-disk form, exactly as `mosquitto_passwd` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                BASE64.encode(salt),
                BASE64.encode(hash)
            ),
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", BASE64.encode(salt), BASE64.encode(hash))
            }
        }
    }
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; HASH_LEN]> {
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, out.as_mut());
    out
}

fn parse_iterations(s: &str) -> Result<u32, HashFormatError> {
    // Digits only: mosquitto's atoi would silently read "12abc" as 12.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HashFormatError::Iterations(s.to_owned()));
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(n),
        _ => Err(HashFormatError::Iterations(s.to_owned())),
    }
}

fn decode_salt(s: &str) -> Result<[u8; SALT_LEN], HashFormatError> {
    let bytes = BASE64.decode(s).map_err(|_| HashFormatError::SaltBase64)?;
    <[u8; SALT_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| HashFormatError::SaltLength(bytes.len()))
}

fn decode_hash(s: &str) -> Result<[u8; HASH_LEN], HashFormatError> {
    let bytes = BASE64.decode(s).map_err(|_| HashFormatError::HashBase64)?;
    <[u8; HASH_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| HashFormatError::HashLength(bytes.len()))
}

/// Why a line of a password file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line is not UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// No ':' between user name and hash.
    #[error("expected 'user:hash'")]
    MissingColon,
    /// Nothing before the ':'.
    #[error("empty user name")]
    EmptyUsername,
    /// Nothing after the ':'.
    #[error("missing password hash for user {0:?}")]
    MissingHash(String),
    /// More than one ':'.
    #[error("unexpected ':' after the password hash")]
    ExtraField,
    /// The hash field is malformed.
    #[error("user {user:?}: {reason}")]
    Hash {
        /// The user on the line.
        user: String,
        /// What is wrong with the hash.
        reason: HashFormatError,
    },
    /// A user name this module could not write back unchanged (a leading
    /// '#' after white space, control characters).
    #[error("invalid user name {user:?}: {reason}")]
    InvalidUsername {
        /// The user on the line.
        user: String,
        /// Why.
        reason: &'static str,
    },
    /// The user already appeared on an earlier line.
    #[error("duplicate user {user:?} (first defined on line {first_line})")]
    Duplicate {
        /// The user name.
        user: String,
        /// Line of the first definition.
        first_line: usize,
    },
}

/// Errors loading, saving or editing a password file.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// The file could not be read or written, or a line of it is wrong.
    #[error(transparent)]
    File(#[from] LineFileError<LineError>),
    /// A user name that mosquitto could not read back.
    #[error("invalid user name {name:?}: {reason}")]
    InvalidUsername {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Iteration count out of range.
    #[error("iteration count {0} out of range 1..=2147483647")]
    Iterations(u32),
    /// The OS random number generator failed.
    #[error("OS random number generator failed: {0}")]
    Rng(String),
}

#[derive(Debug, Clone)]
enum Line {
    /// Comment or blank line, kept verbatim so edits don't lose an operator's notes.
    Verbatim(String),
    Entry {
        user: String,
        hash: PasswordHash,
    },
}

/// A parsed password file; edits keep comments and order.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
}

/// Checks that `name` survives a round trip through mosquitto's parser.
pub fn validate_username(name: &str) -> Result<(), PasswordFileError> {
    let bad = |reason| {
        Err(PasswordFileError::InvalidUsername {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 65535 {
        return bad("longer than 65535 bytes");
    }
    if name.contains(':') {
        return bad("contains ':'");
    }
    if name.starts_with('#') {
        return bad("starts with '#' (would be read as a comment)");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if name.trim() != name {
        return bad("leading or trailing whitespace (mosquitto trims it)");
    }
    Ok(())
}

impl PasswordFile {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, PasswordFileError> {
        let bytes = std::fs::read(path).map_err(LineFileError::io(path))?;
        let file = Self::parse(&bytes, path)?;
        file.warn_weak(path);
        Ok(file)
    }

    /// Parses file contents; `path` is only used in error messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, PasswordFileError> {
        let mut lines = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = idx + 1;
            let err = |reason| PasswordFileError::File(LineFileError::line(path, line_no, reason));
            let text = std::str::from_utf8(raw).map_err(|_| err(LineError::NotUtf8))?;
            let text = text.trim_end_matches(['\r', '\n']);
            if text.trim().is_empty() || text.starts_with('#') {
                lines.push(Line::Verbatim(text.to_owned()));
                continue;
            }
            let (user, rest) = text
                .split_once(':')
                .ok_or_else(|| err(LineError::MissingColon))?;
            let user = user.trim();
            if user.is_empty() {
                return Err(err(LineError::EmptyUsername));
            }
            // Same rules as for names we write, so that `to_text` round-trips
            // (found by fuzz/parse_password_file: "\r#name:hash" read as user "#name").
            if let Err(PasswordFileError::InvalidUsername { reason, .. }) = validate_username(user)
            {
                return Err(err(LineError::InvalidUsername {
                    user: user.to_owned(),
                    reason,
                }));
            }
            let hash_text = rest.trim();
            if hash_text.is_empty() {
                return Err(err(LineError::MissingHash(user.to_owned())));
            }
            if hash_text.contains(':') {
                return Err(err(LineError::ExtraField));
            }
            let hash = PasswordHash::parse(hash_text).map_err(|reason| {
                err(LineError::Hash {
                    user: user.to_owned(),
                    reason,
                })
            })?;
            if let Some(&first_line) = seen.get(user) {
                return Err(err(LineError::Duplicate {
                    user: user.to_owned(),
                    first_line,
                }));
            }
            seen.insert(user.to_owned(), line_no);
            lines.push(Line::Entry {
                user: user.to_owned(),
                hash,
            });
        }
        // split() yields one empty piece after a final newline; don't keep it as a line.
        if matches!(lines.last(), Some(Line::Verbatim(s)) if s.is_empty()) {
            lines.pop();
        }
        Ok(PasswordFile { lines })
    }

    fn warn_weak(&self, path: &Path) {
        for (user, hash) in self.entries() {
            match hash.iterations() {
                None => tracing::warn!(
                    file = %path.display(), user,
                    "password uses legacy $6$ (one SHA-512 round); re-set it with `mqtt-lwa passwd`"
                ),
                Some(n) if n < WEAK_ITERATIONS => tracing::warn!(
                    file = %path.display(), user, iterations = n,
                    "weak PBKDF2 iteration count; re-set it with `mqtt-lwa passwd`"
                ),
                Some(_) => {}
            }
        }
    }

    /// The file as text, in mosquitto's format.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Verbatim(s) => out.push_str(s),
                Line::Entry { user, hash } => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(&hash.to_string());
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the file atomically (temp file + rename). New files get mode
    /// 0600; an existing file keeps its permissions (the broker's user may
    /// need to read it).
    pub fn save(&self, path: &Path) -> Result<(), PasswordFileError> {
        super::write_file_atomic(path, self.to_text().as_bytes(), 0o600)
            .map_err(|e| LineFileError::io(path)(e).into())
    }

    /// Adds `user` or replaces its password, hashing with PBKDF2 at `iterations`.
    pub fn set_password(
        &mut self,
        user: &str,
        password: &[u8],
        iterations: u32,
    ) -> Result<(), PasswordFileError> {
        validate_username(user)?;
        let hash = PasswordHash::new_pbkdf2(password, iterations)?;
        self.set_hash(user, hash)
    }

    /// Adds `user` or replaces its stored hash.
    pub fn set_hash(&mut self, user: &str, hash: PasswordHash) -> Result<(), PasswordFileError> {
        validate_username(user)?;
        for line in &mut self.lines {
            if let Line::Entry { user: u, hash: h } = line {
                if u == user {
                    *h = hash;
                    return Ok(());
                }
            }
        }
        self.lines.push(Line::Entry {
            user: user.to_owned(),
            hash,
        });
        Ok(())
    }

    /// Removes `user`; false if it was not there.
    pub fn delete_user(&mut self, user: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::Entry { user: u, .. } if u == user));
        self.lines.len() != before
    }

    /// The stored hash of `user`.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        self.entries().find(|(u, _)| *u == user).map(|(_, h)| h)
    }

    /// All users and their hashes, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &PasswordHash)> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry { user, hash } => Some((user.as_str(), hash)),
            Line::Verbatim(_) => None,
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// True when the file has no users.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a user's password. Every call costs what the dearest entry
    /// costs (issue 13 item 7): a known user's hash is verified and then
    /// padded with PBKDF2 rounds up to the file's largest iteration count,
    /// and an unknown user is verified against a dummy hash at that count.
    /// So a user hashed by `mosquitto_passwd` (101 rounds) next to one
    /// hashed at 100,000 answers no faster than a name that does not exist.
    ///
    /// Residual: the padding is a second PBKDF2 call (one HMAC key set-up
    /// more, microseconds against milliseconds); in a file with only `$6$`
    /// entries unknown users cost one SHA-512 like known ones; and everyone
    /// pays the dearest entry's cost, which is the price of this.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        let dearest = self.dearest_iterations();
        match self.get(user) {
            Some(hash) => {
                let ok = hash.verify(password);
                let spent = hash.iterations().unwrap_or(0);
                if let Some(pad) = dearest.and_then(|d| d.checked_sub(spent)) {
                    if pad > 0 {
                        let _ = pbkdf2_sha512(password, &[0u8; SALT_LEN], pad);
                    }
                }
                ok
            }
            None => {
                self.dummy_hash(dearest).verify(password);
                false
            }
        }
    }

    /// The largest PBKDF2 iteration count in the file; `None` when every
    /// entry is `$6$`, `Some(DEFAULT_ITERATIONS)` for an empty file.
    fn dearest_iterations(&self) -> Option<u32> {
        if self.is_empty() {
            return Some(DEFAULT_ITERATIONS);
        }
        self.entries().filter_map(|(_, h)| h.iterations()).max()
    }

    /// A hash that matches nothing, as expensive as the dearest real one.
    fn dummy_hash(&self, dearest: Option<u32>) -> PasswordHash {
        let mut salt = [0u8; SALT_LEN];
        let mut hash = [0u8; HASH_LEN];
        // Randomness here only makes a match astronomically unlikely; all-zero would do too.
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut hash);
        match dearest {
            Some(iterations) => PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            },
            None => PasswordHash::Sha512 { salt, hash },
        }
    }
}

mod authenticator;

pub use authenticator::PasswordAuthenticator;

#[cfg(test)]
mod tests;
