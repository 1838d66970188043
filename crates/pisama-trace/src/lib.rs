//! The canonical agent-trace model, one adapter per trace format, and the loader that finds
//! the right adapter from a file's content.
//!
//! ```text
//! bytes ──► load (gzip/zstd, BOM, JSON / JSONL / text, streaming) ──► sniff (format rules)
//!       ──► adapters::<format> ──► TraceBuilder::finish ──► Trace (+ Labels beside it)
//! ```
//!
//! Invariants:
//! - Reading never panics and never returns a silently empty result: an input either yields
//!   at least one trace (possibly with warnings) or an [`Error`] naming the file, the line and
//!   what was expected.
//! - Dataset answers are returned as [`Labels`] *beside* the [`Trace`], never inside it.
//! - Containment (`Span::parent`) and data-flow / conversation links (`Span::links`) are kept
//!   apart.
//! - Token `input` always includes cached tokens; aggregates on parents are marked
//!   `UsageScope::Subtree` and never summed.
//! - Adapters do no I/O; only [`load`] touches the file system.

mod adapters;
pub mod builder;
mod error;
pub mod export;
pub mod load;
pub mod model;
pub mod pricing;
mod sniff;
mod streamed;
pub mod summary;
pub mod util;

#[cfg(test)]
pub(crate) mod testing;

pub use adapters::Parsed;
pub use builder::TraceBuilder;
pub use error::Error;
pub use load::{FileSummary, LoadOptions, LoadedTrace, Loader, TraceSource};
pub use model::*;
