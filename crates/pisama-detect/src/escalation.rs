//! What the optional LLM judge (`pisama-judge`) was asked about a trace and what became of
//! each question. The data lives here, beside the findings it annotates, so the per-trace
//! result (`result.rs`) can carry it without this crate depending on the judge.

use serde::Serialize;

use crate::finding::JudgeDecision;

/// What became of one escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The endpoint answered and the answer was applied.
    Answered,
    /// A cached answer was applied; nothing was sent.
    Cached,
    /// Not asked: budget, per-trace limit, or the judge stopped after repeated failures.
    Skipped,
    /// The request failed (timeout, HTTP error); the T1/T2 result is kept.
    Failed,
    /// The answer did not parse or named something the trace does not have; ignored.
    Malformed,
    /// Dry run: would be sent.
    Planned,
}

/// One escalation of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Escalation {
    /// `finding` or `attribution`.
    pub target: String,
    /// The finding's detector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub outcome: Outcome,
    /// What the judge decided, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<JudgeDecision>,
    /// Why it was skipped, failed or ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The judge's part of one trace's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TraceJudgement {
    pub escalations: Vec<Escalation>,
}
