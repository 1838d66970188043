//! The per-trace result object that every machine-readable surface shares: `pisama detect
//! --format json|jsonl` and the MCP `pisama_detect` tool. It is a public, versioned schema
//! (`docs/detect.schema.json`): `schema_version`, `source`, `format`, `trace_id`, `agents`,
//! `verdict`, `score`, `attribution`, `findings`, `diagnostics`.

use serde::Serialize;
use serde_json::json;

use pisama_trace::{LoadedTrace, TraceSource};

use crate::engine::TraceReport;
use crate::escalation::TraceJudgement;

/// Version of the per-trace JSON object.
pub const SCHEMA_VERSION: u32 = 1;

/// One trace's detection result, as written by the JSON formats.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TraceResult {
    pub schema_version: u32,
    pub source: TraceSource,
    pub format: String,
    pub trace_id: String,
    pub agents: Vec<String>,
    #[serde(flatten)]
    pub report: TraceReport,
    /// What the optional LLM judge was asked about this trace (`--judge`), and what became of
    /// each question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<TraceJudgement>,
}

impl TraceResult {
    pub fn new(t: &LoadedTrace, report: TraceReport) -> Self {
        TraceResult {
            schema_version: SCHEMA_VERSION,
            source: t.source.clone(),
            format: t.trace.format.name().to_owned(),
            trace_id: t.trace.id.clone(),
            agents: t.trace.agents.iter().map(|a| a.name.clone()).collect(),
            report,
            judge: None,
        }
    }
}

/// The JSON Schema of one trace result (`docs/detect.schema.json`).
pub fn trace_result_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(TraceResult)).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            json!("urn:pisama:schema:detect-trace-result:1"),
        );
        obj.insert(
            "description".into(),
            json!("One trace's result from `pisama detect --format jsonl` (one per line) or an element of `traces` in `--format json`. Version 1."),
        );
    }
    schema
}
