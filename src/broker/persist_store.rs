//! The redb file that holds the broker's durable state: one table of
//! sessions by client id, one of retained messages by topic, each value a
//! JSON record from [`super::persist`]. Every [`PersistBatch`] is one write
//! transaction committed with redb's default (immediate, fsynced)
//! durability, so after `write` returns the changes survive a crash.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use super::persist::{from_bytes, to_bytes, MessageRecord, PersistBatch, SessionRecord};

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The redb database failed.
    #[error("{path}: {message}")]
    Db {
        /// The store file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
    /// A stored record does not read back.
    #[error("{path}: record {key:?}: {source}")]
    Record {
        /// The store file.
        path: PathBuf,
        /// Client id or topic.
        key: String,
        /// Why.
        source: super::persist::RecordError,
    },
}

/// What the store held at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Sessions by client id.
    pub sessions: Vec<(String, SessionRecord)>,
    /// Retained messages.
    pub retained: Vec<MessageRecord>,
}

/// Where the core task commits each [`PersistBatch`]: the redb file, or a
/// wrapper around it (a test that makes commits fail, a fault drill).
///
/// Only writes go through it; loading happens once, before the core runs.
pub trait DurableStore: Send + Sync {
    /// Commits `batch` in one transaction; durable when this returns `Ok`.
    fn write(&self, batch: &PersistBatch) -> Result<(), StoreError>;
}

impl DurableStore for SessionStore {
    fn write(&self, batch: &PersistBatch) -> Result<(), StoreError> {
        SessionStore::write(self, batch)
    }
}

/// The broker's persistence file.
pub struct SessionStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Creates the store file 0600 when it does not exist yet; warns when an
/// existing one is group- or world-readable.
fn create_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        file = %path.display(),
                        mode = format!("{:o}", mode & 0o777),
                        "persistence store is readable by group or others; it holds message \
                         payloads in plaintext (LWA ones included): chmod 600 it"
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // redb initialises an empty file as a new database.
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
            }
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl SessionStore {
    /// Opens (or creates) the store at `path`. It holds queued and retained
    /// messages in plaintext (LWA payloads included), so a new store is
    /// created 0600 and an existing one readable by group or others is
    /// reported. A missing directory stays an error (a mistyped path should
    /// stop the broker, not create a tree).
    pub fn open(path: &Path) -> Result<SessionStore, StoreError> {
        create_private(path).map_err(|e| StoreError::Db {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let db = Database::create(path).map_err(|e| StoreError::Db {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let store = SessionStore {
            db,
            path: path.to_owned(),
        };
        // Create both tables so that a fresh file reads back as empty.
        store.write(&PersistBatch::default())?;
        Ok(store)
    }

    fn db_error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Every stored session and retained message.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let mut loaded = Loaded::default();
        let sessions = tx.open_table(SESSIONS).map_err(|e| self.db_error(e))?;
        for row in sessions.iter().map_err(|e| self.db_error(e))? {
            let (k, v) = row.map_err(|e| self.db_error(e))?;
            let key = k.value().to_owned();
            let record = from_bytes(v.value()).map_err(|source| StoreError::Record {
                path: self.path.clone(),
                key: key.clone(),
                source,
            })?;
            loaded.sessions.push((key, record));
        }
        let retained = tx.open_table(RETAINED).map_err(|e| self.db_error(e))?;
        for row in retained.iter().map_err(|e| self.db_error(e))? {
            let (k, v) = row.map_err(|e| self.db_error(e))?;
            let record = from_bytes(v.value()).map_err(|source| StoreError::Record {
                path: self.path.clone(),
                key: k.value().to_owned(),
                source,
            })?;
            loaded.retained.push(record);
        }
        Ok(loaded)
    }

    /// Commits `batch` in one transaction; durable when this returns `Ok`.
    pub fn write(&self, batch: &PersistBatch) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.db_error(e))?;
        {
            let mut sessions = tx.open_table(SESSIONS).map_err(|e| self.db_error(e))?;
            for (cid, record) in &batch.sessions {
                match record {
                    Some(r) => {
                        let bytes = to_bytes(r);
                        sessions
                            .insert(cid.as_str(), bytes.as_slice())
                            .map_err(|e| self.db_error(e))?;
                    }
                    None => {
                        sessions
                            .remove(cid.as_str())
                            .map_err(|e| self.db_error(e))?;
                    }
                }
            }
            let mut retained = tx.open_table(RETAINED).map_err(|e| self.db_error(e))?;
            for (topic, record) in &batch.retained {
                match record {
                    Some(r) => {
                        let bytes = to_bytes(r);
                        retained
                            .insert(topic.as_str(), bytes.as_slice())
                            .map_err(|e| self.db_error(e))?;
                    }
                    None => {
                        retained
                            .remove(topic.as_str())
                            .map_err(|e| self.db_error(e))?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| self.db_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::session::{Message, Session};
    use crate::codec::{Properties, QoS};
    use bytes::Bytes;
    use std::time::Instant;

    #[test]
    fn write_reopen_load_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let now = Instant::now();
        let m = Message::new(
            "r/1".into(),
            Bytes::from_static(b"v"),
            QoS::AtLeastOnce,
            true,
            &Properties::default(),
            None,
            now,
        );
        {
            let store = SessionStore::open(&path).unwrap();
            assert!(store.load().unwrap().sessions.is_empty());
            let batch = PersistBatch {
                sessions: vec![
                    (
                        "a".into(),
                        Some(SessionRecord::from_session(
                            &Session::new("a".into(), 60),
                            now,
                        )),
                    ),
                    (
                        "b".into(),
                        Some(SessionRecord::from_session(
                            &Session::new("b".into(), 60),
                            now,
                        )),
                    ),
                ],
                retained: vec![("r/1".into(), Some(MessageRecord::from_message(&m, now)))],
            };
            store.write(&batch).unwrap();
            let delete = PersistBatch {
                sessions: vec![("b".into(), None)],
                retained: vec![],
            };
            store.write(&delete).unwrap();
        }
        let store = SessionStore::open(&path).unwrap();
        let loaded = store.load().unwrap();
        let ids: Vec<&str> = loaded.sessions.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(loaded.sessions[0].1.expiry_interval, 60);
        assert_eq!(loaded.retained.len(), 1);
        assert_eq!(loaded.retained[0].to_message(now).unwrap().topic, "r/1");
    }
}
