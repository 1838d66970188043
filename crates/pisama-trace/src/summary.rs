//! What `pisama inspect` reports about a trace: counts, agents, tokens, cost, duration.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Cost, SpanKind, Status, Trace, Usage};

/// A summary of one trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub id: String,
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_version: Option<String>,
    pub status: Status,
    pub agents: Vec<String>,
    pub spans: usize,
    pub spans_by_kind: BTreeMap<&'static str, usize>,
    /// Distinct step indices (positions in the source's message/step list).
    pub steps: usize,
    pub tool_calls: usize,
    pub tool_errors: usize,
    pub errors: usize,
    pub handoffs: usize,
    pub usage: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub warnings: Vec<String>,
}

impl TraceSummary {
    pub fn of(trace: &Trace) -> Self {
        let mut spans_by_kind = BTreeMap::new();
        for kind in SpanKind::ALL {
            let n = trace.spans_of(kind).count();
            if n > 0 {
                spans_by_kind.insert(kind.name(), n);
            }
        }
        let mut steps: Vec<u32> = trace.spans.iter().filter_map(|s| s.step).collect();
        steps.sort_unstable();
        steps.dedup();
        let tools = trace.spans_of(SpanKind::Tool);
        let (tool_calls, tool_errors) = tools.fold((0, 0), |(n, e), s| {
            (n + 1, e + usize::from(s.status == Status::Error))
        });
        TraceSummary {
            id: trace.id.clone(),
            format: trace.format.name().to_owned(),
            format_version: trace.format_version.clone(),
            status: trace.status,
            agents: trace.agents.iter().map(|a| a.name.clone()).collect(),
            spans: trace.spans.len(),
            spans_by_kind,
            steps: steps.len(),
            tool_calls,
            tool_errors,
            errors: trace
                .spans
                .iter()
                .filter(|s| s.status == Status::Error)
                .count(),
            handoffs: trace.spans.iter().filter(|s| s.handoff.is_some()).count(),
            usage: trace.usage.clone(),
            cost: trace.cost.clone(),
            duration_ms: trace.duration_ns().map(|d| d as f64 / 1e6),
            task: trace.task.as_deref().map(|t| crate::util::truncate(t, 160)),
            warnings: trace.warnings.clone(),
        }
    }
}
