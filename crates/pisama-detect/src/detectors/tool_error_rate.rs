//! A large share of one agent's tool calls failed: broken tools, bad credentials, or an agent
//! that keeps calling them wrongly.

use std::collections::BTreeMap;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{caller_message, failure_text, tool_name};

pub(crate) struct ToolErrorRate;

impl Detector for ToolErrorRate {
    fn id(&self) -> &'static str {
        "tool-error-rate"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_calls = params.usize("min_calls", 4).max(2);
        let min_rate = params.f64("min_rate", 0.5).clamp(0.01, 1.0);
        // Calls are counted against the agent that made them: with an executor agent that runs
        // whatever it is sent, that is the author of the code, not the executor.
        let mut by_agent: BTreeMap<&str, (usize, Vec<Idx>)> = BTreeMap::new();
        for &t in view.tools() {
            let caller = caller_message(view, t).map_or_else(|| view.agent(t), |m| view.agent(m));
            let entry = by_agent.entry(caller).or_default();
            entry.0 += 1;
            if failure_text(view, t).is_some() {
                entry.1.push(t);
            }
        }
        let mut hits = Vec::new();
        for (agent, (calls, failed)) in by_agent {
            let rate = failed.len() as f64 / calls as f64;
            if calls < min_calls || rate < min_rate {
                continue;
            }
            let severity = if rate >= 0.85 {
                Severity::High
            } else if rate >= 0.65 {
                Severity::Medium
            } else {
                Severity::Low
            };
            // More failures make the rate less likely to be bad luck.
            let score = rate * (1.0 - 1.0 / (1.0 + failed.len() as f64 / 2.0));
            let mut per_tool: BTreeMap<&str, usize> = BTreeMap::new();
            for &t in &failed {
                *per_tool.entry(tool_name(view, t)).or_default() += 1;
            }
            let mut ranked: Vec<(&str, usize)> = per_tool.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let worst = ranked
                .iter()
                .take(3)
                .map(|(name, n)| format!("`{name}` {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut evidence: Vec<HitEvidence> = failed
                .iter()
                .take(3)
                .map(|&t| HitEvidence::new(t, format!("failed `{}` call", tool_name(view, t))))
                .collect();
            if failed.len() > 3
                && let Some(&last) = failed.last()
            {
                evidence.push(HitEvidence::new(
                    last,
                    format!("failure {} of {}", failed.len(), failed.len()),
                ));
            }
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary: format!(
                    "{} of `{agent}`'s {calls} tool calls failed ({:.0}%; {worst})",
                    failed.len(),
                    rate * 100.0
                ),
                // The first failure is where the trouble shows first; the message that made the
                // call is its origin.
                at: failed
                    .first()
                    .map(|&t| caller_message(view, t).unwrap_or(t)),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{Span, SpanKind, Status, ToolCall, Trace};

    fn call(agent: &str, ok: bool) -> Span {
        Span {
            kind: SpanKind::Tool,
            name: "fetch".to_owned(),
            agent: Some(agent.to_owned()),
            status: if ok { Status::Ok } else { Status::Error },
            tool: Some(Box::new(ToolCall {
                name: "fetch".to_owned(),
                ..ToolCall::default()
            })),
            ..Span::default()
        }
    }

    fn run(spans: Vec<Span>) -> Vec<Hit> {
        let trace = Trace {
            spans,
            ..Trace::default()
        };
        ToolErrorRate.detect(&TraceView::new(&trace), &Params::default())
    }

    #[test]
    fn quiet_without_enough_calls() {
        assert!(run(Vec::new()).is_empty());
        assert!(run(vec![call("a", false), call("a", false)]).is_empty());
    }

    #[test]
    fn rate_is_per_agent_and_severity_grows() {
        let mut spans: Vec<Span> = (0..5).map(|_| call("a", false)).collect();
        spans.extend((0..5).map(|_| call("b", true)));
        spans.push(call("b", false));
        let hits = run(spans);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Some(Severity::High));
        assert_eq!(hits[0].at, Some(0));
        assert_eq!(
            hits[0].summary,
            "5 of `a`'s 5 tool calls failed (100%; `fetch` 5)"
        );
        let half: Vec<Span> = (0..8).map(|k| call("a", k % 2 == 0)).collect();
        let hits = run(half);
        assert_eq!(hits[0].severity, Some(Severity::Low));
        assert!(hits[0].score < 0.5);
    }
}
