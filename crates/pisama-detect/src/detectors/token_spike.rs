//! One model call that uses far more tokens than the run's typical call: a huge tool result
//! pasted into the prompt, a runaway generation, a whole file read into context.

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{SpanKind, UsageScope};

pub(crate) struct TokenSpike;

/// Median of a sorted slice (non-empty).
fn median(sorted: &[u64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        f64::midpoint(sorted[n / 2 - 1] as f64, sorted[n / 2] as f64)
    }
}

impl Detector for TokenSpike {
    fn id(&self) -> &'static str {
        "token-spike"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_calls = params.usize("min_calls", 5).max(3);
        let multiple = params.f64("median_multiple", 5.0).max(1.5);
        let mad_k = params.f64("mad_multiple", 6.0).max(1.0);
        let min_tokens = params.f64("min_tokens", 5000.0).max(0.0);
        let calls: Vec<(usize, u64)> = view
            .trace
            .spans
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                (s.kind == SpanKind::Llm || s.llm.is_some())
                    && s.usage_scope == UsageScope::SelfOnly
            })
            .filter_map(|(i, s)| {
                s.usage
                    .as_deref()
                    .and_then(pisama_trace::Usage::total_tokens)
                    .filter(|&t| t > 0)
                    .map(|t| (i, t))
            })
            .collect();
        if calls.len() < min_calls {
            return Vec::new();
        }
        let mut sorted: Vec<u64> = calls.iter().map(|c| c.1).collect();
        sorted.sort_unstable();
        let med = median(&sorted);
        let mut deviations: Vec<u64> = sorted
            .iter()
            .map(|&t| (t as f64 - med).abs().round() as u64)
            .collect();
        deviations.sort_unstable();
        // 1.4826 scales the MAD to a standard deviation under normality.
        let mad = median(&deviations) * 1.4826;
        let bar = (med * multiple).max(med + mad_k * mad).max(min_tokens);
        let spikes: Vec<(usize, u64)> = calls
            .iter()
            .copied()
            .filter(|&(_, t)| t as f64 > bar)
            .collect();
        // Spikes must be exceptions; when a third of the calls are "spikes" the run is bimodal,
        // not spiking.
        if spikes.is_empty() || spikes.len() * 3 > calls.len() {
            return Vec::new();
        }
        let Some(&(worst, worst_tokens)) = spikes.iter().max_by_key(|c| (c.1, usize::MAX - c.0))
        else {
            return Vec::new();
        };
        let ratio = worst_tokens as f64 / med.max(1.0);
        let score = (1.0 - multiple / ratio).clamp(0.0, 1.0) * 0.6 + 0.35;
        let severity = if ratio >= 4.0 * multiple {
            Severity::High
        } else if ratio >= 2.0 * multiple {
            Severity::Medium
        } else {
            Severity::Low
        };
        let span = view.span(worst);
        let usage = span.usage.clone().unwrap_or_default();
        let split = match (usage.input, usage.output) {
            (Some(i), Some(o)) => format!(" ({i} in, {o} out)"),
            _ => String::new(),
        };
        let mut evidence = vec![HitEvidence::new(
            worst,
            format!(
                "{worst_tokens} tokens{split}, {ratio:.1}x the median of {med:.0} over {} calls",
                calls.len()
            ),
        )];
        for &(i, t) in spikes.iter().filter(|c| c.0 != worst).take(2) {
            evidence.push(HitEvidence::new(i, format!("another spike: {t} tokens")));
        }
        // The tool result that entered the prompt just before the spike, if any.
        let prev_call = calls.iter().rev().map(|c| c.0).find(|&c| c < worst);
        if let Some(prev) = (0..worst)
            .rev()
            .find(|&j| view.span(j).kind == SpanKind::Tool)
            && prev_call.is_none_or(|c| prev > c)
            && view.span(prev).parent.map(|p| p as usize) != Some(worst)
            && evidence.len() < 4
        {
            evidence.push(HitEvidence::new(
                prev,
                format!(
                    "tool result that entered the prompt just before ({} chars)",
                    view.text(prev).len()
                ),
            ));
        }
        let model = span.llm.as_ref().and_then(|l| l.model()).unwrap_or("model");
        vec![Hit {
            score,
            severity: Some(severity),
            summary: format!(
                "a `{model}` call used {worst_tokens} tokens, {ratio:.1}x the run's median of {med:.0}{}",
                if spikes.len() > 1 {
                    format!(" ({} spiking calls)", spikes.len())
                } else {
                    String::new()
                }
            ),
            at: Some(worst),
            evidence,
            ..Hit::default()
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{LlmCall, Span, Trace, Usage};

    fn call(tokens: u64) -> Span {
        Span {
            kind: SpanKind::Llm,
            llm: Some(Box::new(LlmCall::default())),
            usage: Some(Box::new(Usage {
                input: Some(tokens),
                output: Some(0),
                ..Usage::default()
            })),
            ..Span::default()
        }
    }

    fn run(tokens: &[u64]) -> Vec<Hit> {
        let t = Trace {
            spans: tokens.iter().map(|&n| call(n)).collect(),
            ..Trace::default()
        };
        TokenSpike.detect(&TraceView::new(&t), &Params::default())
    }

    #[test]
    fn quiet_on_empty_few_or_steady() {
        assert!(run(&[]).is_empty());
        assert!(run(&[1000, 90_000]).is_empty());
        assert!(run(&[1000, 1200, 1100, 1300, 1250, 1400]).is_empty());
        // Steady growth of a conversation is not a spike.
        let growing: Vec<u64> = (1..=30).map(|k| k * 2000).collect();
        assert!(run(&growing).is_empty());
    }

    #[test]
    fn fires_on_outlier() {
        let hits = run(&[3000, 3200, 2900, 3100, 60_000, 3300]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(4));
        assert!(hits[0].score > 0.5);
    }

    #[test]
    fn small_runs_below_min_tokens_are_quiet() {
        assert!(run(&[100, 110, 90, 120, 3000]).is_empty());
    }
}
