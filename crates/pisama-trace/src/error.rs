//! Errors of the trace crate. Each names the file and, where it helps, the line and what was
//! expected, so the CLI can print it as it is.

use std::fmt::Write as _;

use crate::model::Format;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    #[error("{path}: the file is empty; expected a trace (JSON, JSONL or a supported log)")]
    Empty { path: String },

    #[error(
        "{path}: binary data (NUL byte at offset {offset}), not a trace; expected JSON, JSONL or text (gzip and zstd are decompressed automatically)"
    )]
    Binary { path: String, offset: usize },

    #[error("{path}: invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{path}: unrecognized format: {seen}\n{supported}")]
    Unrecognized {
        path: String,
        seen: String,
        supported: String,
    },

    #[error("{path}: not a valid {format} trace: {message}")]
    Adapter {
        path: String,
        format: Format,
        message: String,
    },

    #[error("{path}: no traces found ({format}): {message}")]
    NoTraces {
        path: String,
        format: Format,
        message: String,
    },

    #[error("{path}: no such file or directory")]
    NotFound { path: String },
}

impl Error {
    /// The path the error is about.
    pub fn path(&self) -> &str {
        match self {
            Error::Io { path, .. }
            | Error::Empty { path }
            | Error::Binary { path, .. }
            | Error::InvalidJson { path, .. }
            | Error::Unrecognized { path, .. }
            | Error::Adapter { path, .. }
            | Error::NoTraces { path, .. }
            | Error::NotFound { path } => path,
        }
    }
}

/// The list of supported formats, for "unrecognized format" messages.
pub(crate) fn supported_list() -> String {
    let mut out = String::from("supported formats (force one with --input-format NAME):");
    for f in Format::ALL {
        let _ = write!(out, "\n  {:<22} {}", f.name(), f.describe());
    }
    out
}
