//! The one error shape of the line-oriented files (password file, PSK store and
//! client key files, ACL file): the file could not be read or written, or a line
//! of it is wrong (`path:line: reason`). Each file keeps its own reasons.

use std::path::{Path, PathBuf};

/// Reading, writing or parsing a line-oriented file failed; `R` says what is
/// wrong with a line.
#[derive(Debug, thiserror::Error)]
pub enum LineFileError<R> {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: R,
    },
}

impl<R> LineFileError<R> {
    /// For `map_err` on an I/O result about `path`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| LineFileError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Line `line` (1-based) of `path` is wrong because of `reason`.
    pub fn line(path: &Path, line: usize, reason: R) -> Self {
        LineFileError::Line {
            path: path.to_owned(),
            line,
            reason,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LineFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
