//! Errors of the brain library. Every variant names what a user needs to fix the problem: the
//! file, the line and the field when there is one.

use std::path::PathBuf;

/// A result with the brain's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record file that does not parse or does not satisfy the schema.
    #[error("{path}:{line}: {field}{message}", field = field.as_deref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        field: Option<String>,
        message: String,
    },
    #[error("no brain found at {0} (run `pisama brain init` there)")]
    NoBrain(PathBuf),
    #[error("a brain already exists at {0}")]
    AlreadyInitialized(PathBuf),
    #[error("no record matches `{0}`")]
    NotFound(String),
    #[error("`{query}` is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },
    #[error("duplicate id {id}: {} and {}", first.display(), second.display())]
    DuplicateId {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A write based on an old revision.
    #[error(
        "record {id} is at revision {current}, not {base}: read it again and re-apply the change"
    )]
    Conflict { id: String, base: u32, current: u32 },
    #[error(
        "record {id} already has a pending proposal for revision {revision}; review it first (`pisama brain review`)"
    )]
    ProposalPending { id: String, revision: u32 },
    #[error("{0}")]
    Usage(String),
    #[error("only a human may {action} (the CLI asks for confirmation or an explicit flag)")]
    HumanRequired { action: String },
    #[error("transition not allowed: {0}")]
    Transition(String),
    #[error(
        "strict redaction: the write contains {count} secret(s) ({rules}); nothing was written"
    )]
    SecretsRefused { count: usize, rules: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("index: {0}")]
    Index(String),
    /// A source file an import cannot use; nothing was imported.
    #[error("{}: cannot import: {message}", path.display())]
    Import { path: PathBuf, message: String },
    #[error("journal {path}:{line}: {message}")]
    Journal {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        path: impl Into<PathBuf>,
        line: usize,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            path: path.into(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Whether the error is the user's input (exit code 2) rather than the machine's.
    pub fn is_input(&self) -> bool {
        !matches!(self, Error::Io { .. } | Error::Index(_))
    }
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Index(e.to_string())
    }
}
