//! Facts that change along a pipeline: an agent states a value for something ("the total is
//! 305"), and a later agent message restates the same thing with a different value although no
//! tool result, user message or task text between introduced the new one.
//!
//! Facts are `<key> is/was/=/: <number>` statements; keys are the last content words before
//! the verb. Keys stated with several values in one message are a listing, not a fact, and are
//! skipped. Facts are indexed by key in a map, so the scan is linear.

use std::collections::{HashMap, HashSet};

use crate::catalog::Params;
use crate::detectors::dialogue::{
    Fact, Speaker, format_number, number_key, numeric_facts, speaker, task, timeline,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::numbers;
use crate::view::{Idx, TraceView};

pub(crate) struct FactDrift;

/// A fact as first (or last) stated.
struct Stated {
    value: f64,
    span: Idx,
    quote: String,
    /// The value had appeared in a tool result, user message or the task.
    grounded: bool,
}

fn value(f: &Fact) -> Option<f64> {
    f.value.is_finite().then_some(f.value)
}

/// Equal, or equal after rounding the more precise one to the other's decimals (4.56 vs
/// 4.5612 is the same fact).
fn same(a: f64, b: f64) -> bool {
    if (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0) {
        return true;
    }
    let decimals = |x: f64| {
        let s = format_number(x);
        s.split_once('.').map_or(0, |(_, d)| d.len())
    };
    let places = decimals(a).min(decimals(b)).min(6);
    let scale = 10f64.powi(places as i32);
    ((a * scale).round() - (b * scale).round()).abs() < 0.5 && decimals(a) != decimals(b)
}

impl Detector for FactDrift {
    fn id(&self) -> &'static str {
        "fact-drift"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_hits = params.usize("max_findings", 3).max(1);
        let line = timeline(view);
        let mut sources: HashSet<i64> = view
            .trace
            .task
            .as_deref()
            .map(|t| numbers(t).into_iter().map(number_key).collect())
            .unwrap_or_default();
        // The message that carries the task (a plan with example values, say) is a source.
        let task_span = task(view, &line).and_then(|t| t.0);
        let mut facts: HashMap<String, Stated> = HashMap::new();
        let mut reported: HashSet<String> = HashSet::new();
        let mut hits = Vec::new();
        for &i in &line {
            let text = view.text(i);
            if speaker(view, i) != Speaker::Agent || Some(i) == task_span {
                sources.extend(view.numbers(i).iter().map(|&n| number_key(n)));
                continue;
            }
            // Group this message's facts by key; a key with several values is a listing.
            let mut by_key: HashMap<String, Vec<&Fact>> = HashMap::new();
            let stated = numeric_facts(text);
            for f in &stated {
                by_key.entry(f.key.clone()).or_default().push(f);
            }
            let mut keys: Vec<&String> = by_key.keys().collect();
            keys.sort();
            for key in keys {
                let group = &by_key[key];
                let values: Vec<f64> = group.iter().filter_map(|f| value(f)).collect();
                let Some(&v) = values.first() else {
                    continue;
                };
                if values.iter().any(|&x| !same(x, v)) {
                    continue;
                }
                let quote = text
                    .get(group[0].start..group[0].end)
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let grounded = sources.contains(&number_key(v));
                if let Some(old) = facts.get(key)
                    && !same(old.value, v)
                    && !grounded
                    && !reported.contains(key)
                    && hits.len() < max_hits
                {
                    reported.insert(key.clone());
                    hits.push(hit(view, key, old, v, i, &quote));
                }
                facts.insert(
                    key.clone(),
                    Stated {
                        value: v,
                        span: i,
                        quote,
                        grounded,
                    },
                );
            }
            // What an agent computed in the open ("152 + 153 = 305") backs later restatements.
            for (pos, _) in text.match_indices('=') {
                let after = text.get(pos + 1..).unwrap_or("");
                if let Some(n) = numbers(after.get(..after.len().min(24)).unwrap_or("")).first() {
                    sources.insert(number_key(*n));
                }
            }
        }
        hits
    }
}

fn hit(view: &TraceView<'_>, key: &str, old: &Stated, new: f64, at: Idx, quote: &str) -> Hit {
    let handed_over = view.agent(old.span) != view.agent(at);
    let mut score: f64 = 0.5;
    if old.grounded {
        score += 0.25;
    }
    if handed_over {
        score += 0.1;
    }
    let severity = if old.grounded && handed_over {
        Severity::High
    } else {
        Severity::Medium
    };
    Hit {
        score,
        severity: Some(severity),
        summary: format!(
            "`{key}` was {} ({}) but `{}` later states {} with nothing in between introducing it",
            format_number(old.value),
            if old.grounded {
                "as the sources said"
            } else {
                "as stated earlier"
            },
            view.agent(at),
            format_number(new)
        ),
        at: Some(at),
        evidence: vec![
            HitEvidence::quoted(old.span, "first value", old.quote.clone()),
            HitEvidence::quoted(
                at,
                "changed value, not in any tool result or user message",
                quote,
            ),
        ],
        ..Hit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{Payload, Span, SpanKind, Trace};

    fn trace(turns: &[(SpanKind, &str, &str)]) -> Trace {
        Trace {
            spans: turns
                .iter()
                .enumerate()
                .map(|(k, (kind, agent, text))| Span {
                    kind: *kind,
                    agent: Some((*agent).to_owned()),
                    output: Some(Box::new(Payload::text(*text))),
                    step: Some(k as u32),
                    ..Span::default()
                })
                .collect(),
            ..Trace::default()
        }
    }

    fn run(t: &Trace) -> Vec<Hit> {
        FactDrift.detect(&TraceView::new(t), &Params::default())
    }

    #[test]
    fn rounding_is_not_drift() {
        assert!(same(4.56, 4.5612));
        assert!(same(305.0, 305.0));
        assert!(!same(305.0, 255.0));
        assert!(!same(4.5, 4.6));
    }

    #[test]
    fn drift_and_grounded_change() {
        let t = trace(&[
            (SpanKind::Tool, "db", "rows: 4200"),
            (SpanKind::Llm, "a", "The town population is 4,200."),
            (
                SpanKind::Llm,
                "b",
                "The town population is 4,800, so the answer is 4,800.",
            ),
        ]);
        let hits = run(&t);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(2));
        let t = trace(&[
            (SpanKind::Llm, "a", "The town population is 4,200."),
            (SpanKind::Tool, "db", "corrected: 4800"),
            (SpanKind::Llm, "b", "The town population is 4,800."),
        ]);
        assert!(run(&t).is_empty());
    }

    #[test]
    fn empty_and_listing() {
        assert!(run(&Trace::default()).is_empty());
        let t = trace(&[
            (
                SpanKind::Llm,
                "a",
                "Economy price: $121. Economy price: $152.",
            ),
            (SpanKind::Llm, "a", "Economy price: $99."),
        ]);
        assert!(run(&t).is_empty());
    }
}
