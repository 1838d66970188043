//! Placeholder until this adapter lands; reports clearly instead of guessing.

use super::{AdapterError, AdapterResult, Input};

pub(crate) fn parse(_input: &Input) -> AdapterResult {
    Err(AdapterError::new(
        "this format is detected but its adapter is not available in this build",
    ))
}
