//! ATIF writer. Placeholder until the ATIF adapter lands.

use serde_json::{Value, json};

use crate::model::Trace;

/// Writes a trace as an ATIF v1.7 trajectory.
pub fn to_atif(trace: &Trace) -> Value {
    json!({ "schema_version": "ATIF-v1.7", "steps": [], "notes": format!("ATIF export of {} is not available in this build", trace.id) })
}
