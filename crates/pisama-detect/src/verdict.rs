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

use std::collections::HashSet;

use crate::engine::round3;
use crate::finding::{Attribution, Finding, Verdict};
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
    let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        let spans: HashSet<&str> = f.evidence.iter().map(|e| e.span_id.as_str()).collect();
        let host = kept.iter_mut().find(|k| {
            if k.category != f.category || k.detector == f.detector || spans.is_empty() {
                return false;
            }
            let other: HashSet<&str> = k.evidence.iter().map(|e| e.span_id.as_str()).collect();
            let shared = spans.intersection(&other).count();
            let smaller = spans.len().min(other.len()).max(1);
            shared * 2 >= smaller
        });
        match host {
            Some(k) => {
                if !k.merged.contains(&f.detector) {
                    k.merged.push(f.detector.clone());
                }
            }
            None => kept.push(f),
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

/// The decisive failure, from findings that say where it happened.
pub fn attribute(_view: &TraceView<'_>, findings: &[Finding]) -> Option<Attribution> {
    let best = findings
        .iter()
        .filter(|f| f.step.is_some() || f.agent.is_some())
        .max_by(|a, b| {
            strength(a)
                .total_cmp(&strength(b))
                .then(b.step.unwrap_or(u32::MAX).cmp(&a.step.unwrap_or(u32::MAX)))
                .then(b.detector.cmp(&a.detector))
        })?;
    Some(Attribution {
        agent: best.agent.clone(),
        step: best.step,
        category: best
            .mast
            .map_or_else(|| best.category.clone(), |m| m.code().to_owned()),
        confidence: best.confidence,
        detector: Some(best.detector.clone()),
    })
}
