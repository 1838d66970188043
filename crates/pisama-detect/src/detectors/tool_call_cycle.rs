//! An agent going round a cycle of tool calls (A, B, A, B, A, B or A, B, C repeated) with the
//! same arguments each time round and nothing new coming back: a loop the agent does not see.
//! One call repeated on its own is `tool-retry-storm`; cycles here have at least two distinct
//! calls per period.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{result_text, tool_name};

pub(crate) struct ToolCallCycle;

impl Detector for ToolCallCycle {
    fn id(&self) -> &'static str {
        "tool-call-cycle"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_cycles = params.usize("min_cycles", 3).max(2);
        let max_period = params.usize("max_period", 4).clamp(2, 16);
        let mut by_agent: BTreeMap<&str, Vec<Idx>> = BTreeMap::new();
        for &t in view.tools() {
            by_agent.entry(view.agent(t)).or_default().push(t);
        }
        let mut hits = Vec::new();
        for (agent, calls) in by_agent {
            let keys = intern(calls.iter().map(|&t| call_key(view, t)));
            let results = intern(calls.iter().map(|&t| result_text(view, t)));
            for cycle in find_cycles(&keys, min_cycles, max_period) {
                if let Some(hit) = report(view, agent, &calls, &results, &cycle, min_cycles) {
                    hits.push(hit);
                }
            }
        }
        hits
    }
}

/// A periodic stretch of an agent's calls: `[start, end)` in its call list, with period `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cycle {
    start: usize,
    end: usize,
    period: usize,
}

/// Maximal periodic stretches with at least `min_cycles` full periods, whose period is
/// minimal (so A,A,A,A is not a period-2 cycle) and holds at least two distinct calls.
/// O(n · `max_period`); overlapping candidates keep the earliest, then the longest.
fn find_cycles(keys: &[u32], min_cycles: usize, max_period: usize) -> Vec<Cycle> {
    let mut candidates = Vec::new();
    for period in 2..=max_period {
        let mut j = period;
        while j < keys.len() {
            if keys[j] != keys[j - period] {
                j += 1;
                continue;
            }
            let run_start = j;
            while j < keys.len() && keys[j] == keys[j - period] {
                j += 1;
            }
            let start = run_start - period;
            let full = (j - start) / period;
            if full >= min_cycles && is_primitive(&keys[start..start + period]) {
                candidates.push(Cycle {
                    start,
                    end: start + full * period,
                    period,
                });
            }
        }
    }
    candidates.sort_by_key(|c| (c.start, std::cmp::Reverse(c.end), c.period));
    let mut chosen: Vec<Cycle> = Vec::new();
    for c in candidates {
        if chosen.last().is_none_or(|last| c.start >= last.end) {
            chosen.push(c);
        }
    }
    chosen
}

/// A pattern that is not itself a repetition of a shorter one, and not a single call.
fn is_primitive(pattern: &[u32]) -> bool {
    let p = pattern.len();
    (1..p)
        .filter(|&q| p.is_multiple_of(q))
        .all(|q| (q..p).any(|k| pattern[k] != pattern[k - q]))
}

fn report(
    view: &TraceView<'_>,
    agent: &str,
    calls: &[Idx],
    results: &[u32],
    cycle: &Cycle,
    min_cycles: usize,
) -> Option<Hit> {
    let Cycle { start, end, period } = *cycle;
    let span = calls.get(start..end)?;
    // A time round the cycle whose calls all brought back what they returned the time
    // before (or failed again) made no progress; a polling cycle whose results change is
    // doing its job.
    let repeats = (end - start) / period - 1;
    let stale = (1..=repeats)
        .filter(|r| {
            let base = start + r * period;
            (base..base + period)
                .all(|k| results[k] == results[k - period] || view.failed(calls[k]))
        })
        .count();
    let stale_share = stale as f64 / repeats.max(1) as f64;
    if stale_share < 0.5 {
        return None;
    }
    let cycles = (end - start) / period;
    let extra = (cycles + 1).saturating_sub(min_cycles) as i32;
    let score = (0.5 + 0.5 * stale_share) * (1.0 - 0.5f64.powi(extra));
    let severity = if cycles >= 2 * min_cycles {
        Severity::High
    } else {
        Severity::Medium
    };
    let names: Vec<&str> = span[..period].iter().map(|&t| tool_name(view, t)).collect();
    let failures = span.iter().filter(|&&t| view.failed(t)).count();
    let mut evidence: Vec<HitEvidence> = span[..period]
        .iter()
        .take(3)
        .map(|&t| HitEvidence::quoted(t, "first time round the cycle", call_text(view, t)))
        .collect();
    let last = span[span.len() - 1];
    evidence.push(HitEvidence::quoted(
        last,
        format!("last call, time {cycles} round"),
        call_text(view, last),
    ));
    Some(Hit {
        score,
        severity: Some(severity),
        summary: format!(
            "`{agent}` went round the tool cycle {} {cycles} times with the same arguments ({failures} of {} calls failed)",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" → "),
            span.len()
        ),
        // The loop starts where the first cycle is repeated.
        at: Some(span[period]),
        evidence,
        ..Hit::default()
    })
}

/// Tool name plus arguments; without structured arguments the input text stands in, and
/// without either the result does (an executor that runs whatever it was sent).
fn call_key<'v>(view: &'v TraceView<'_>, i: Idx) -> (&'v str, Cow<'v, str>) {
    let s = view.span(i);
    let name = tool_name(view, i);
    if let Some(arguments) = view.arguments_json(i) {
        return (name, Cow::Borrowed(arguments));
    }
    if let Some(input) = &s.input {
        return (name, Cow::Borrowed(input.text.as_str()));
    }
    (name, Cow::Owned(format!("result:{}", result_text(view, i))))
}

/// `name(arguments)`, for evidence.
fn call_text(view: &TraceView<'_>, i: Idx) -> String {
    let (name, args) = call_key(view, i);
    format!("{name}({args})")
}

/// Dense ids for equal keys, in order of first appearance.
fn intern<K: Hash + Eq>(keys: impl Iterator<Item = K>) -> Vec<u32> {
    let mut ids: FxHashMap<K, u32> = FxHashMap::default();
    keys.map(|k| {
        let next = ids.len() as u32;
        *ids.entry(k).or_insert(next)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{Span, SpanKind, ToolCall, Trace};
    use serde_json::json;

    fn tool(name: &str, arg: &str, result: &str) -> Span {
        Span {
            kind: SpanKind::Tool,
            name: name.to_owned(),
            agent: Some("a".to_owned()),
            tool: Some(Box::new(ToolCall {
                name: name.to_owned(),
                arguments: json!({ "q": arg }),
                result: Some(json!(result)),
                ..ToolCall::default()
            })),
            output: Some(Box::new(pisama_trace::Payload::text(result))),
            ..Span::default()
        }
    }

    fn run(spans: Vec<Span>) -> Vec<Hit> {
        let trace = Trace {
            spans,
            ..Trace::default()
        };
        ToolCallCycle.detect(&TraceView::new(&trace), &Params::default())
    }

    #[test]
    fn finds_minimal_cycles() {
        let keys = [0, 1, 0, 1, 0, 1, 2];
        assert_eq!(
            find_cycles(&keys, 3, 4),
            vec![Cycle {
                start: 0,
                end: 6,
                period: 2
            }]
        );
        // One call repeated is a retry storm, not a cycle.
        assert!(find_cycles(&[0, 0, 0, 0, 0, 0, 0, 0], 3, 4).is_empty());
        assert!(find_cycles(&[0, 1, 2, 0, 1, 2, 0, 1], 3, 4).is_empty());
        assert_eq!(find_cycles(&[5, 0, 1, 2, 0, 1, 2, 0, 1, 2], 3, 4).len(), 1);
    }

    #[test]
    fn empty_and_tiny_traces_are_quiet() {
        assert!(run(Vec::new()).is_empty());
        assert!(run(vec![tool("a", "x", "1")]).is_empty());
    }

    #[test]
    fn stale_cycle_fires_and_polling_with_progress_does_not() {
        let stale: Vec<Span> = (0..6)
            .map(|k| {
                if k % 2 == 0 {
                    tool("open", "f", "same")
                } else {
                    tool("close", "f", "ok")
                }
            })
            .collect();
        let hits = run(stale);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(2));
        let polling: Vec<Span> = (0..6)
            .map(|k| {
                if k % 2 == 0 {
                    tool("status", "job", &format!("{}% done", k * 15))
                } else {
                    tool("sleep", "5", "")
                }
            })
            .collect();
        assert!(run(polling).is_empty());
    }

    #[test]
    fn long_sequences_stay_linear() {
        let spans: Vec<Span> = (0..20_000)
            .map(|k| {
                tool(
                    if k % 3 == 0 { "a" } else { "b" },
                    &(k % 3).to_string(),
                    "r",
                )
            })
            .collect();
        let hits = run(spans);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].score > 0.9);
    }
}
