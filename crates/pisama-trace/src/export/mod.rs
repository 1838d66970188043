//! Writers: the canonical model out to other ecosystems (`pisama convert`).
//!
//! - `pisama`: our own canonical JSON, lossless, read back by the `pisama` adapter.
//! - `otlp`: OTLP/JSON with OpenTelemetry GenAI attributes (read back by the OTLP adapter).
//! - `atif`: an ATIF v1.7 trajectory (read back by the ATIF adapter).

use serde_json::{Value, json};

use crate::load::LoadedTrace;

mod atif;
mod otlp;

pub use atif::to_atif;
pub use otlp::to_otlp;

/// Version of the canonical JSON envelope.
pub const CANONICAL_VERSION: u32 = 1;

/// Target of `pisama convert --to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Otlp,
    Atif,
    Pisama,
}

/// The canonical envelope: `{"pisama_trace": 1, "trace": {...}, "labels": [...]}`.
pub fn to_pisama(loaded: &LoadedTrace) -> Value {
    json!({
        "pisama_trace": CANONICAL_VERSION,
        "source": loaded.source,
        "trace": loaded.trace,
        "labels": loaded.labels,
    })
}

/// Writes one trace in the target format.
pub fn export(loaded: &LoadedTrace, target: Target) -> Value {
    match target {
        Target::Pisama => to_pisama(loaded),
        Target::Otlp => to_otlp(&loaded.trace),
        Target::Atif => to_atif(&loaded.trace),
    }
}
