//! From findings to a trace-level result.
//!
//! - **Overlap rule.** Two findings of the same category whose evidence spans overlap by at
//!   least half of the smaller set describe one problem: the weaker one (lower
//!   `confidence × severity weight`) is folded into the stronger, whose `merged` lists it.
//!   Findings of different categories are folded only when they name the same step and every
//!   evidence span of the weaker is also evidence of the stronger: one moment seen from two
//!   sides (a failed call the final answer reports as done is a tool error, an unverified
//!   claim and withheld information at once), reported once.
//! - **Score.** A noisy-OR over findings: `1 − Π (1 − confidence × severity weight)`. Each
//!   finding is treated as independent evidence that the run failed; info findings barely move
//!   it, a confident critical one decides it. One more term joins the product: the run's
//!   exposure, [`EXPOSURE_PER_CHANGE`] for each state-changing tool call that went through
//!   (book, cancel, update, pay, send, delete …), at most [`EXPOSURE_CAP`]. A run that changed
//!   the world is more likely to have changed it wrongly than one that only read, and this
//!   orders runs without findings (which would all tie at 0) by how much was at stake. The cap
//!   is below [`PASS_THRESHOLD`]: exposure alone never makes a run `unsure` or `fail`; it only
//!   adds to what findings say.
//! - **Verdict.** `fail` at or above [`FAIL_THRESHOLD`], `pass` below [`PASS_THRESHOLD`],
//!   `unsure` between (the band the optional judge looks at).
//! - **Attribution.** The decisive failure is the strongest finding that names a step or an
//!   agent; among equally strong ones the earliest step wins, because later failures in a run
//!   are usually consequences of earlier ones.

use rustc_hash::FxHashMap;

use crate::detectors::tool_facts::{failure_text, tool_action_stem};
use crate::engine::round3;
use crate::finding::{Attribution, Finding, Tier, Verdict};
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
///
/// Each finding is compared only with the kept findings that share an evidence span with it
/// (both rules need one), found through an index from span to findings: a trace with tens of
/// thousands of findings would otherwise cost their number squared.
pub fn merge_overlapping(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        strength(b)
            .total_cmp(&strength(a))
            .then(a.step.unwrap_or(u32::MAX).cmp(&b.step.unwrap_or(u32::MAX)))
            .then(a.detector.cmp(&b.detector))
            .then(a.summary.cmp(&b.summary))
    });
    // Evidence spans as small ids, each finding's as a sorted set.
    let mut ids: FxHashMap<String, u32> = FxHashMap::default();
    let span_sets: Vec<Vec<u32>> = findings
        .iter()
        .map(|f| {
            let mut set: Vec<u32> = f
                .evidence
                .iter()
                .map(|e| {
                    let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                    *ids.entry(e.span_id.clone()).or_insert(next)
                })
                .collect();
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut kept_spans: Vec<Vec<u32>> = Vec::with_capacity(findings.len());
    let mut by_span: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    for (f, spans) in findings.into_iter().zip(span_sets) {
        let mut candidates: Vec<usize> = spans
            .iter()
            .filter_map(|s| by_span.get(s))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        // The first kept finding (strongest) that takes this one in.
        let host = candidates.into_iter().find(|&k| {
            let host = &kept[k];
            if host.detector == f.detector {
                return false;
            }
            let other = &kept_spans[k];
            let shared = spans
                .iter()
                .filter(|s| other.binary_search(s).is_ok())
                .count();
            let smaller = spans.len().min(other.len()).max(1);
            if host.category == f.category {
                return shared * 2 >= smaller;
            }
            // Across categories: the same moment seen from two sides (a failed call that the
            // final answer claims as done is both a tool and a verification problem). Only
            // when both point at the same step and the weaker's evidence is all in the other.
            host.step.is_some() && host.step == f.step && shared == spans.len()
        });
        if let Some(k) = host {
            let host = &mut kept[k];
            if !host.merged.contains(&f.detector) {
                host.merged.push(f.detector.clone());
            }
        } else {
            for &s in &spans {
                by_span.entry(s).or_default().push(kept.len());
            }
            kept.push(f);
            kept_spans.push(spans);
        }
    }
    kept
}

/// Exposure added to the score for each state-changing call that went through.
pub const EXPOSURE_PER_CHANGE: f64 = 0.05;
/// The most exposure can add on its own; below [`PASS_THRESHOLD`].
pub const EXPOSURE_CAP: f64 = 0.2;
const _: () = assert!(
    EXPOSURE_CAP < PASS_THRESHOLD,
    "exposure alone must never leave `pass`"
);

/// State-changing tool calls (an action verb in the tool's name, not a read or a handoff) that
/// did not fail: what the run changed in the world.
pub fn state_changes(view: &TraceView<'_>) -> u32 {
    let count = view
        .tools()
        .iter()
        .filter(|&&t| tool_action_stem(view, t).is_some() && failure_text(view, t).is_none())
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The exposure term of the score for a run with `changes` state changes.
pub fn exposure(changes: u32) -> f64 {
    (f64::from(changes) * EXPOSURE_PER_CHANGE).min(EXPOSURE_CAP)
}

/// The noisy-OR failure score of a set of findings and the run's exposure, in 0..1.
pub fn score(findings: &[Finding], state_changes: u32) -> f64 {
    let pass: f64 = findings
        .iter()
        .map(|f| 1.0 - strength(f).clamp(0.0, 1.0))
        .product::<f64>()
        * (1.0 - exposure(state_changes));
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

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{Span, SpanKind, Status, ToolCall, Trace};

    fn call(name: &str, failed: bool) -> Span {
        Span {
            kind: SpanKind::Tool,
            name: name.to_owned(),
            status: if failed { Status::Error } else { Status::Ok },
            tool: Some(Box::new(ToolCall {
                name: name.to_owned(),
                is_error: failed,
                ..ToolCall::default()
            })),
            ..Span::default()
        }
    }

    #[test]
    fn state_changes_count_actions_that_went_through() {
        let trace = Trace {
            spans: vec![
                call("get_reservation_details", false),
                call("search_direct_flight", false),
                call("cancel_reservation", true),
                call("cancel_reservation", false),
                call("update_reservation_flights", false),
                call("transfer_to_human_agents", false),
            ],
            ..Trace::default()
        };
        assert_eq!(state_changes(&TraceView::new(&trace)), 2);
    }

    #[test]
    fn exposure_orders_runs_but_never_decides_alone() {
        assert!(score(&[], 0).abs() < 1e-12);
        assert!(score(&[], 1) < score(&[], 2));
        assert!((score(&[], 1_000) - EXPOSURE_CAP).abs() < 1e-9);
        assert_eq!(
            decide(score(&[], u32::MAX), FAIL_THRESHOLD, PASS_THRESHOLD),
            Verdict::Pass
        );
    }
}
