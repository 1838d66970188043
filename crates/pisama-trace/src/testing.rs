//! Test helpers for adapter unit tests: load a fixture or an inline string through the real
//! loader (detection included), so tests exercise what users run.

use std::path::PathBuf;

use crate::load::{FileSummary, LoadOptions, LoadedTrace, load_all, load_bytes};

/// The repository's `fixtures/traces/` folder.
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/traces")
}

/// Loads `fixtures/traces/<rel>`; panics with the loader's message on failure.
pub(crate) fn fixture(rel: &str) -> (FileSummary, Vec<LoadedTrace>) {
    let path = fixtures_dir().join(rel);
    load_all(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Loads an inline document as if it were a file named `name`.
#[allow(dead_code, reason = "used by adapter tests")]
pub(crate) fn inline(name: &str, text: &str) -> (FileSummary, Vec<LoadedTrace>) {
    load_bytes(name, text.as_bytes(), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Loads an inline document and returns the error message (for bad-input tests).
#[allow(dead_code, reason = "used by adapter tests")]
pub(crate) fn inline_err(name: &str, text: &[u8]) -> String {
    match load_bytes(name, text, &LoadOptions::default()) {
        Ok((s, t)) => panic!(
            "expected an error, got {} trace(s) as {}",
            t.len(),
            s.format
        ),
        Err(e) => e.to_string(),
    }
}
