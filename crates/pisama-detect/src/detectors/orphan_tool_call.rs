//! A tool call that never got a result: no output, status or error on the call, and no later
//! message or span carrying its result, in a run whose other calls do get results.

use std::collections::HashSet;

use pisama_trace::{LinkKind, Part};

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;

use super::tool_facts::{has_outcome, is_agent_message, tool_name};

pub(crate) struct OrphanToolCall;

impl Detector for OrphanToolCall {
    fn id(&self) -> &'static str {
        "orphan-tool-call"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let ignore_last = params.bool("ignore_last_call", false);
        let tools = view.tools();
        // A source that records no tool results at all (content capture off) says nothing
        // about any single call.
        if !tools.iter().any(|&t| has_outcome(view.span(t))) {
            return Vec::new();
        }
        let answered = answered_calls(view);
        let last_tool = tools.last().copied();
        let mut hits = Vec::new();
        for &t in tools {
            let s = view.span(t);
            if has_outcome(s) || (s.end_ns.is_some() && !s.time_inferred) {
                // Finished (it has an end time of its own), even if its content was not kept.
                continue;
            }
            let call_id = s.tool.as_ref().and_then(|c| c.call_id.as_deref());
            if answered.contains(s.id.as_str()) || call_id.is_some_and(|id| answered.contains(id)) {
                continue;
            }
            let agent = view.agent(t);
            let next_message = (t + 1..view.len())
                .find(|&j| is_agent_message(view, j) && view.agent(j) == agent)
                .or_else(|| (t + 1..view.len()).find(|&j| is_agent_message(view, j)));
            if next_message.is_none() && ignore_last && Some(t) == last_tool {
                continue;
            }
            let name = tool_name(view, t);
            let mut evidence = vec![HitEvidence::new(t, "call with no result")];
            let (score, severity, summary) = match next_message {
                Some(m) => {
                    evidence.push(HitEvidence::new(m, "the run carried on without it"));
                    (
                        0.8,
                        Severity::Medium,
                        format!(
                            "`{name}` called by `{agent}` never returned a result, and the run carried on without it"
                        ),
                    )
                }
                None => (
                    0.5,
                    Severity::Low,
                    format!(
                        "`{name}` called by `{agent}` never returned a result before the run ended"
                    ),
                ),
            };
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary,
                at: Some(t),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

/// Span ids and call ids whose result appears elsewhere: a span linked as carrying the call's
/// result, or a tool-result message part in a later model call's input.
fn answered_calls<'t>(view: &TraceView<'t>) -> HashSet<&'t str> {
    let mut answered = HashSet::new();
    for i in 0..view.len() {
        let s = view.span(i);
        for link in &s.links {
            if link.kind == LinkKind::CallResult {
                answered.insert(link.target.as_str());
            }
        }
        if let Some(llm) = &s.llm {
            for m in llm.input_messages.iter().chain(&llm.output_messages) {
                for part in &m.parts {
                    if let Part::ToolResult { id: Some(id), .. } = part {
                        answered.insert(id.as_str());
                    }
                }
            }
        }
    }
    answered
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::load::{LoadOptions, load_bytes};

    fn run(json: &str) -> Vec<Hit> {
        let (_, traces) = load_bytes("t.json", json.as_bytes(), &LoadOptions::default()).unwrap();
        let view = TraceView::new(&traces[0].trace);
        OrphanToolCall.detect(&view, &Params::default())
    }

    #[test]
    fn missing_result_is_found() {
        let hits = run(r#"{"messages": [
            {"role": "user", "content": "Weather and time in Porto?"},
            {"role": "assistant", "content": null, "tool_calls": [
              {"id": "w1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
              {"id": "w2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "w2", "content": "14:05"},
            {"role": "assistant", "content": "Sunny, 21 degrees, and it is 14:05."}]}"#);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Some(Severity::Medium));
        assert_eq!(hits[0].at, Some(2));
    }

    #[test]
    fn quiet_without_tools_or_recorded_results() {
        assert!(
            run(r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#)
                .is_empty()
        );
        let trace = pisama_trace::Trace::default();
        assert!(
            OrphanToolCall
                .detect(&TraceView::new(&trace), &Params::default())
                .is_empty()
        );
    }
}
