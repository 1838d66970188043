//! A run that spent more than its budget: total cost (reported or estimated) over a money
//! budget, or total tokens over a token budget.

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{CostSource, SpanKind, UsageScope};

pub(crate) struct CostBudgetExceeded;

/// Severity by how many times over budget the run went.
fn severity_for(ratio: f64) -> Severity {
    if ratio >= 5.0 {
        Severity::Critical
    } else if ratio >= 2.0 {
        Severity::High
    } else if ratio >= 1.25 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// 0.5 just over the budget, approaching 1 far over it.
fn score_for(ratio: f64) -> f64 {
    (1.0 - 0.5 / ratio.max(1.0)).clamp(0.5, 0.99)
}

/// The first span at which a running total (in span order) passes `budget`, and the span with
/// the largest single amount.
fn crossing(amounts: &[(usize, f64)], budget: f64) -> (Option<usize>, Option<(usize, f64)>) {
    let mut sum = 0.0;
    let mut cross = None;
    for &(i, a) in amounts {
        sum += a;
        if cross.is_none() && sum > budget {
            cross = Some(i);
        }
    }
    let biggest = amounts.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    (cross, biggest)
}

impl Detector for CostBudgetExceeded {
    fn id(&self) -> &'static str {
        "cost-budget-exceeded"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let budget = params.f64("budget_usd", 5.0);
        let token_budget = params.f64("token_budget", 2_000_000.0);
        let trace = view.trace;
        let mut hits = Vec::new();
        let calls = || {
            trace.spans.iter().enumerate().filter(|(_, s)| {
                (s.kind == SpanKind::Llm || s.llm.is_some())
                    && s.usage_scope == UsageScope::SelfOnly
            })
        };
        let mut cost_hit = false;
        if let Some(cost) = &trace.cost
            && budget > 0.0
            && cost.currency.eq_ignore_ascii_case("USD")
            && cost.amount.is_finite()
            && cost.amount > budget
        {
            let ratio = cost.amount / budget;
            let amounts: Vec<(usize, f64)> = trace
                .spans
                .iter()
                .enumerate()
                .filter(|(_, s)| s.usage_scope == UsageScope::SelfOnly)
                .filter_map(|(i, s)| s.cost.as_ref().map(|c| (i, c.amount)))
                .filter(|(_, a)| a.is_finite() && *a > 0.0)
                .collect();
            let (cross, biggest) = crossing(&amounts, budget);
            let mut evidence = Vec::new();
            if let Some(c) = cross {
                evidence.push(HitEvidence::new(
                    c,
                    format!("the run passed ${budget:.2} here"),
                ));
            }
            if let Some((b, amount)) = biggest
                && Some(b) != cross
            {
                evidence.push(HitEvidence::new(
                    b,
                    format!("most expensive call: ${amount:.2}"),
                ));
            }
            let how = match cost.source {
                CostSource::Reported => "reported",
                CostSource::Estimated => "estimated",
            };
            hits.push(Hit {
                score: score_for(ratio),
                severity: Some(severity_for(ratio)),
                summary: format!(
                    "the run cost ${:.2} ({how}), {ratio:.1}x the ${budget:.2} budget",
                    cost.amount
                ),
                at: cross.or(biggest.map(|b| b.0)),
                evidence,
                ..Hit::default()
            });
            cost_hit = true;
        }
        let total = trace.usage.total_tokens().unwrap_or(0) as f64;
        if !cost_hit && token_budget > 0.0 && total > token_budget {
            let ratio = total / token_budget;
            let amounts: Vec<(usize, f64)> = calls()
                .filter_map(|(i, s)| {
                    s.usage
                        .as_deref()
                        .and_then(pisama_trace::Usage::total_tokens)
                        .map(|t| (i, t as f64))
                })
                .collect();
            let (cross, biggest) = crossing(&amounts, token_budget);
            let mut evidence = Vec::new();
            if let Some(c) = cross {
                evidence.push(HitEvidence::new(
                    c,
                    format!("the run passed {token_budget:.0} tokens here"),
                ));
            }
            if let Some((b, t)) = biggest
                && Some(b) != cross
            {
                evidence.push(HitEvidence::new(b, format!("largest call: {t:.0} tokens")));
            }
            hits.push(Hit {
                score: score_for(ratio),
                severity: Some(severity_for(ratio)),
                summary: format!(
                    "the run used {total:.0} tokens over {} model calls, {ratio:.1}x the {token_budget:.0}-token budget",
                    amounts.len()
                ),
                at: cross.or(biggest.map(|b| b.0)),
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
    use pisama_trace::{Cost, LlmCall, Span, Trace, Usage};

    fn call(input: u64, usd: f64) -> Span {
        Span {
            kind: SpanKind::Llm,
            llm: Some(Box::new(LlmCall::default())),
            usage: Some(Box::new(Usage {
                input: Some(input),
                output: Some(0),
                ..Usage::default()
            })),
            cost: Some(Cost {
                amount: usd,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            }),
            ..Span::default()
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        let mut usage = Usage::default();
        let mut cost = 0.0;
        for s in &spans {
            usage.add(s.usage.as_ref().unwrap());
            cost += s.cost.as_ref().unwrap().amount;
        }
        Trace {
            spans,
            usage,
            cost: Some(Cost {
                amount: cost,
                currency: "USD".to_owned(),
                source: CostSource::Reported,
            }),
            ..Trace::default()
        }
    }

    #[test]
    fn quiet_under_budget_and_on_empty() {
        let p = Params::default();
        assert!(
            CostBudgetExceeded
                .detect(&TraceView::new(&Trace::default()), &p)
                .is_empty()
        );
        let t = trace(vec![call(1000, 1.0), call(1000, 2.0)]);
        assert!(
            CostBudgetExceeded
                .detect(&TraceView::new(&t), &p)
                .is_empty()
        );
    }

    #[test]
    fn points_at_the_crossing() {
        let t = trace(vec![call(1000, 2.0), call(1000, 2.5), call(1000, 9.0)]);
        let hits = CostBudgetExceeded.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(2));
        assert_eq!(hits[0].severity, Some(Severity::High));
    }

    #[test]
    fn other_currencies_are_not_compared() {
        let mut t = trace(vec![call(1000, 50.0)]);
        if let Some(c) = &mut t.cost {
            c.currency = "CNY".to_owned();
        }
        assert!(
            CostBudgetExceeded
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
