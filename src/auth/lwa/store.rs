//! The broker's PSK store as LWA1 uses it while running: shared between
//! the authenticator and the password mode's policy, reloaded when its file
//! changes, and read fresh from disk when a handshake must know the key in
//! force now (issue 13: revoke/rotate must reach handshakes in flight).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::auth::psk::{KeyId, PskFileError, PskStore};

/// A [`PskStore`] shared by the LWA authenticator and the password mode's
/// per-identity policy, reloadable from its file.
pub struct SharedPskStore {
    path: Option<PathBuf>,
    current: RwLock<Arc<PskStore>>,
    /// SHA-256 of the file content last looked at, so an unchanged (or
    /// still broken) file is neither re-parsed nor re-reported.
    seen: Mutex<Option<[u8; 32]>>,
    /// The file's inode, length and mtime when `current` was read: a cheap
    /// stat per handshake tells whether the file changed since.
    seen_meta: Mutex<Option<FileStamp>>,
    /// Bumped whenever a swap revokes or re-keys an identity, so live
    /// connections notice with one atomic load per record.
    revocations: AtomicU64,
}

/// What a stat says about a file: an atomic replace changes the inode, an
/// in-place edit the length or the modification time.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp {
            inode,
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

fn lock_or_recover<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn content_digest(path: &Path) -> Option<[u8; 32]> {
    use sha2::Digest;
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).ok()?);
    Some(sha2::Sha256::digest(&*bytes).into())
}

impl SharedPskStore {
    /// A store that is never reloaded (tests, embedding).
    pub fn fixed(store: PskStore) -> Self {
        SharedPskStore {
            path: None,
            current: RwLock::new(Arc::new(store)),
            seen: Mutex::new(None),
            seen_meta: Mutex::new(None),
            revocations: AtomicU64::new(0),
        }
    }

    /// Loads `path`; [`Self::reload`] re-reads it.
    pub fn load(path: &Path) -> Result<Self, PskFileError> {
        // Stat before reading: a change in between makes the stamp stale,
        // which only costs one extra read later.
        let stamp = FileStamp::of(path);
        let seen = content_digest(path);
        Ok(SharedPskStore {
            path: Some(path.to_owned()),
            current: RwLock::new(Arc::new(PskStore::load(path)?)),
            seen: Mutex::new(seen),
            seen_meta: Mutex::new(stamp),
            revocations: AtomicU64::new(0),
        })
    }

    /// The store in force now.
    pub fn current(&self) -> Arc<PskStore> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in `store`; returns the identities it revokes (removed or re-keyed).
    pub fn replace(&self, store: PskStore) -> Vec<String> {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let revoked = guard.revoked_by(&store);
        *guard = Arc::new(store);
        if !revoked.is_empty() {
            self.revocations.fetch_add(1, Ordering::Release);
        }
        revoked.into_iter().collect()
    }

    /// How many swaps so far revoked or re-keyed someone.
    pub fn revocation_generation(&self) -> u64 {
        self.revocations.load(Ordering::Acquire)
    }

    /// True when `key` is still `identity`'s key in the file as it is on
    /// disk now, not as last polled: `mqtt-lwa psk revoke|rotate` has
    /// replaced the file before it returns, so a handshake that finishes
    /// after that sees the change without waiting for the next reload. The
    /// in-memory store is not swapped here (the reload does that, and
    /// closes the identity's live sessions); an unreadable or broken file
    /// falls back to the in-memory store, as the reload does.
    pub fn key_is_current(&self, identity: &str, key: &KeyId) -> bool {
        self.freshest().key_is_current(identity, key)
    }

    /// The store as the file is now; [`Self::current`] unless the file
    /// changed since it was read (one stat in the usual case).
    pub fn freshest(&self) -> Arc<PskStore> {
        use sha2::Digest;
        let Some(path) = &self.path else {
            return self.current();
        };
        let stamp = FileStamp::of(path);
        if stamp.is_some() && *lock_or_recover(&self.seen_meta) == stamp {
            return self.current();
        }
        let Ok(bytes) = std::fs::read(path).map(zeroize::Zeroizing::new) else {
            return self.current();
        };
        let digest: [u8; 32] = sha2::Sha256::digest(&*bytes).into();
        let unchanged = match self.seen.lock() {
            Ok(g) => *g == Some(digest),
            Err(poisoned) => *poisoned.into_inner() == Some(digest),
        };
        if unchanged {
            return self.current();
        }
        match PskStore::parse(&bytes, path) {
            Ok(store) => Arc::new(store),
            Err(_) => self.current(),
        }
    }

    /// Re-reads the file; a file that no longer parses keeps the old store
    /// (logged), so a half-edited file never locks everyone out.
    pub fn reload(&self) -> Vec<String> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let stamp = FileStamp::of(path);
        if stamp.is_some() && *lock_or_recover(&self.seen_meta) == stamp {
            // Polled four times a second: an unchanged file costs one stat.
            return Vec::new();
        }
        let digest = content_digest(path);
        {
            let mut seen = match self.seen.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if digest.is_none() && seen.is_some() {
                tracing::warn!(file = %path.display(), "PSK file unreadable; keeping the previous keys");
            }
            if digest.is_none() || *seen == digest {
                if digest.is_some() {
                    *lock_or_recover(&self.seen_meta) = stamp;
                }
                *seen = digest;
                return Vec::new();
            }
            *seen = digest;
        }
        match PskStore::load(path) {
            Ok(store) => {
                let revoked = self.replace(store);
                *lock_or_recover(&self.seen_meta) = stamp;
                if !revoked.is_empty() {
                    tracing::info!(file = %path.display(), ?revoked, "LWA identities revoked or re-keyed");
                }
                revoked
            }
            Err(e) => {
                tracing::warn!(error = %e, "PSK file unusable; keeping the previous keys");
                Vec::new()
            }
        }
    }
}
