//! The project brain: durable, reviewable project memory kept as markdown in `.brain/`.
#![allow(
    clippy::doc_markdown,
    clippy::unused_self,
    clippy::too_many_arguments,
    reason = "record field names (snake_case) read better in prose; Brain methods keep one shape"
)]
pub mod check;
pub mod config;
pub mod context;
pub mod error;
pub mod index;
pub mod interop;
pub mod journal;
pub mod model;
pub mod store;
pub mod yaml;

/// Redaction lives in its own crate so the judge applies the same rules to what it sends.
pub use pisama_redact as redact;

#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use model::{Actor, Kind, Record, Review};
pub use store::{Brain, NewRecord, Patch, Verdict, WriteOutcome};

/// A unified diff between two texts (for history and review).
pub fn unified_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}
