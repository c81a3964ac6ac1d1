//! The engine's error type: every failure a user can meet names the file or value and the problem.

use std::path::{Path, PathBuf};

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file is malformed, unsafe or of an unsupported kind.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        message: String,
    },
    /// A user-supplied value (command-line flag, model spec, setting) is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The model's numerics failed (shape mismatch, device error).
    #[error("model error: {0}")]
    Candle(#[from] candle_core::Error),
    /// The tokenizer failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// A value could not be written as JSON (for the store or a report).
    #[error("cannot write {what} as JSON: {source}")]
    Json {
        /// What was being written.
        what: &'static str,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A model server failed or answered something unusable (after its retries).
    #[error("{endpoint}: {message}")]
    Served {
        /// The base URL, without credentials.
        endpoint: String,
        /// What went wrong, naming the request (never the API key).
        message: String,
    },
    /// The work was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// A malformed-file error naming `path`.
    pub fn bad_file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// A JSON serialisation error while writing `what`.
    pub fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Self::Json { what, source }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Self::Tokenizer(e.to_string())
    }
}
