//! From findings to a trace-level result.
//!
//! - **Overlap rule.** Two findings of the same category whose evidence spans overlap by at
//!   least half of the smaller set describe one problem: the weaker one (lower
//!   `confidence × severity weight`) is folded into the stronger, whose `merged` lists it.
//! - **Score.** A noisy-OR over findings: `1 − Π (1 − confidence × severity weight)`. Each
//!   finding is treated as independent evidence that the run failed; info findings barely move
//!   it, a confident critical one decides it.
//! - **Verdict.** `fail` at or above [`FAIL_THRESHOLD`], `pass` below [`PASS_THRESHOLD`],
//!   `unsure` between (the band the optional judge looks at).
//! - **Attribution.** The decisive failure is the strongest finding that names a step or an
//!   agent; among equally strong ones the earliest step wins, because later failures in a run
//!   are usually consequences of earlier ones.

use rustc_hash::FxHashMap;

use crate::engine::round3;
use crate::finding::{Attribution, Finding, Tier, Verdict};
use crate::text::common_sorted;
use crate::view::TraceView;

/// Default score at or above which a trace fails.
pub const FAIL_THRESHOLD: f64 = 0.5;
/// Default score below which a trace passes.
pub const PASS_THRESHOLD: f64 = 0.3;

fn strength(f: &Finding) -> f64 {
    f.confidence * f.severity.weight()
}

/// Applies the overlap rule and sorts findings: strongest first, then by step and detector id
/// (so output is deterministic).
pub fn merge_overlapping(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        strength(b)
            .total_cmp(&strength(a))
            .then(a.step.unwrap_or(u32::MAX).cmp(&b.step.unwrap_or(u32::MAX)))
            .then(a.detector.cmp(&b.detector))
            .then(a.summary.cmp(&b.summary))
    });
    // Each finding is compared only with the kept findings that share an evidence span with
    // it (the overlap rule needs one), earliest kept first as the rule reads; span ids are
    // numbered once. Comparing with every kept finding through fresh sets of ids was
    // quadratic, and ran on one core after the detectors (thousands of findings at 100,000
    // spans).
    let mut span_ids: FxHashMap<String, u32> = FxHashMap::default();
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    // Sorted, distinct span numbers of each kept finding, and the kept findings per span.
    let mut kept_spans: Vec<Vec<u32>> = Vec::with_capacity(findings.len());
    let mut holders: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    for f in findings {
        let mut spans: Vec<u32> = f
            .evidence
            .iter()
            .map(|e| {
                if let Some(&id) = span_ids.get(e.span_id.as_str()) {
                    return id;
                }
                let id = span_ids.len() as u32;
                span_ids.insert(e.span_id.clone(), id);
                id
            })
            .collect();
        spans.sort_unstable();
        spans.dedup();
        let mut candidates: Vec<usize> = spans
            .iter()
            .filter_map(|s| holders.get(s))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let host = candidates.into_iter().find(|&k| {
            let other = &kept_spans[k];
            if kept[k].category != f.category || kept[k].detector == f.detector {
                return false;
            }
            let shared = common_sorted(&spans, other);
            let smaller = spans.len().min(other.len()).max(1);
            shared * 2 >= smaller
        });
        if let Some(k) = host {
            if !kept[k].merged.contains(&f.detector) {
                kept[k].merged.push(f.detector.clone());
            }
        } else {
            for &s in &spans {
                holders.entry(s).or_default().push(kept.len());
            }
            kept_spans.push(spans);
            kept.push(f);
        }
    }
    kept
}

/// The noisy-OR failure score of a set of findings, in 0..1.
pub fn score(findings: &[Finding]) -> f64 {
    let pass: f64 = findings
        .iter()
        .map(|f| 1.0 - strength(f).clamp(0.0, 1.0))
        .product();
    round3(1.0 - pass)
}

pub fn decide(score: f64, fail: f64, pass: f64) -> Verdict {
    if score >= fail {
        Verdict::Fail
    } else if score < pass {
        Verdict::Pass
    } else {
        Verdict::Unsure
    }
}

/// Findings at least this fraction as strong as the strongest one count as significant; the
/// earliest significant one is the decisive failure.
pub const SIGNIFICANT_FRACTION: f64 = 0.6;

/// Confidence given to the structural prior when no finding names a step.
pub const PRIOR_CONFIDENCE: f64 = 0.2;

/// The decisive failure. Among findings that name a step, the significant ones (at least
/// [`SIGNIFICANT_FRACTION`] of the strongest) compete and the earliest wins: later failures in
/// a run are usually consequences of earlier ones. Findings with an agent but no step come
/// next. When the run is known to have failed (`assume_failed`) and nothing names a step, the
/// structural prior applies: the first substantive action (code, a tool call) of an agent —
/// where a run's approach is set, and where most decisive errors enter.
pub fn attribute(
    view: &TraceView<'_>,
    findings: &[Finding],
    assume_failed: bool,
) -> Option<Attribution> {
    let from_finding = |f: &Finding| Attribution {
        agent: f.agent.clone(),
        step: f.step,
        category: f
            .mast
            .map_or_else(|| f.category.clone(), |m| m.code().to_owned()),
        confidence: f.confidence,
        detector: Some(f.detector.clone()),
        tier: f.tier,
        judge: None,
    };
    let stepped: Vec<&Finding> = findings.iter().filter(|f| f.step.is_some()).collect();
    // A run known to have failed: the decisive error is the root cause, which comes before its
    // symptoms. The first substantive action competes with the findings, and the earliest wins.
    let prior = if assume_failed {
        first_substantive_action(view)
    } else {
        None
    };
    if let Some(at) = prior {
        let prior_step = view.span(at).step;
        let earlier_finding = stepped
            .iter()
            // Invented inputs (fabricated data, hallucinated files or tools) are root causes
            // by nature, wherever they occur; other findings win only when earlier.
            .filter(|f| {
                (f.step < prior_step || f.category == "hallucination")
                    && strength(f) >= SIGNIFICANT_FRACTION * 0.5
            })
            .min_by(|a, b| {
                a.step
                    .cmp(&b.step)
                    .then(strength(b).total_cmp(&strength(a)))
            });
        if let Some(f) = earlier_finding {
            return Some(from_finding(f));
        }
        if prior_step.is_some() {
            let span = view.span(at);
            // Confidence rises when findings corroborate that the agent went wrong.
            let corroborated = findings
                .iter()
                .any(|f| f.agent.is_some() && f.agent == span.agent);
            return Some(Attribution {
                agent: span.agent.clone(),
                step: prior_step,
                category: stepped
                    .iter()
                    .filter(|f| f.agent == span.agent)
                    .min_by_key(|f| f.step)
                    .map_or_else(
                        || "unknown".to_owned(),
                        |f| {
                            f.mast
                                .map_or_else(|| f.category.clone(), |m| m.code().to_owned())
                        },
                    ),
                confidence: if corroborated {
                    PRIOR_CONFIDENCE * 1.5
                } else {
                    PRIOR_CONFIDENCE
                },
                detector: None,
                tier: Tier::T1,
                judge: None,
            });
        }
    }
    if let Some(max) = stepped.iter().map(|f| strength(f)).max_by(f64::total_cmp) {
        let best = stepped
            .iter()
            .filter(|f| strength(f) >= SIGNIFICANT_FRACTION * max)
            .min_by(|a, b| {
                a.step
                    .cmp(&b.step)
                    .then(strength(b).total_cmp(&strength(a)))
                    .then(a.detector.cmp(&b.detector))
            })?;
        return Some(from_finding(best));
    }
    if let Some(best) = findings
        .iter()
        .filter(|f| f.agent.is_some())
        .max_by(|a, b| {
            strength(a)
                .total_cmp(&strength(b))
                .then(b.detector.cmp(&a.detector))
        })
    {
        return Some(from_finding(best));
    }
    if !assume_failed {
        return None;
    }
    let at = first_substantive_action(view)?;
    let span = view.span(at);
    Some(Attribution {
        agent: span.agent.clone(),
        step: span.step,
        category: "unknown".to_owned(),
        confidence: PRIOR_CONFIDENCE,
        detector: None,
        tier: Tier::T1,
        judge: None,
    })
}

/// The first message of an agent that acts: contains code or requests a tool call. Falls back
/// to the first agent message. Human, system and tool-result spans are not candidates.
pub fn first_substantive_action(view: &TraceView<'_>) -> Option<usize> {
    use pisama_trace::SpanKind;
    let candidates: Vec<usize> = view
        .conversation()
        .iter()
        .copied()
        .filter(|&i| {
            let s = view.span(i);
            !matches!(s.kind, SpanKind::Human | SpanKind::System | SpanKind::Tool)
                && s.agent.is_some()
        })
        .collect();
    let acts = |i: usize| {
        view.text(i).contains("```")
            || view
                .children(i)
                .iter()
                .any(|&c| view.span(c).kind == SpanKind::Tool)
            || view.span(i).llm.as_ref().is_some_and(|l| {
                l.output_messages
                    .iter()
                    .flat_map(|m| &m.parts)
                    .any(|p| matches!(p, pisama_trace::Part::ToolCall { .. }))
            })
    };
    candidates
        .iter()
        .copied()
        .find(|&i| acts(i))
        .or_else(|| candidates.first().copied())
}
