//! pisama's own canonical JSON (`pisama convert --to pisama`): read back losslessly.

use serde_json::Value;

use super::{AdapterError, AdapterResult, Input, Parsed, expect_json};
use crate::export::CANONICAL_VERSION;
use crate::model::{Format, Labels, Trace};

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let value = expect_json(input, Format::PisamaCanonical)?;
    let version = value
        .get("pisama_trace")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if version == 0 || version > u64::from(CANONICAL_VERSION) {
        return Err(AdapterError::new(format!(
            "pisama_trace version {version} is not supported (this build reads version {CANONICAL_VERSION})"
        )));
    }
    let trace: Trace = serde_json::from_value(value.get("trace").cloned().unwrap_or(Value::Null))
        .map_err(|e| AdapterError::new(format!("field `trace`: {e}")))?;
    let labels: Labels = match value.get("labels") {
        Some(l) if !l.is_null() => serde_json::from_value(l.clone())
            .map_err(|e| AdapterError::new(format!("field `labels`: {e}")))?,
        _ => Vec::new(),
    };
    let n = trace.spans.len();
    if let Some(bad) = trace
        .spans
        .iter()
        .position(|s| s.parent.is_some_and(|p| p as usize >= n))
    {
        return Err(AdapterError::new(format!(
            "span {bad} names a parent index outside the trace"
        )));
    }
    Ok(vec![Parsed { trace, labels }])
}
