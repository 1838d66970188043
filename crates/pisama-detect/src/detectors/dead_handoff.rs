//! A handoff or delegation to an agent that never acts afterwards, or a delegated agent that
//! comes back with nothing: the work handed over is silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{HandoffMode, SpanKind};

use super::turns::{HandoffRef, handoffs, is_action, is_exit_target};

pub(crate) struct DeadHandoff;

impl Detector for DeadHandoff {
    fn id(&self) -> &'static str {
        "dead-handoff"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        // An empty delegate only means something when the trace records model output at all
        // (OTLP exporters often drop content).
        let check_empty = params.bool("flag_empty_delegate_result", true) && records_output(view);
        let all = handoffs(view);
        // Where each agent last did something: a handoff after that point is never picked up.
        let mut last_action: BTreeMap<&str, usize> = BTreeMap::new();
        for i in 0..view.len() {
            let s = view.span(i);
            if is_action(s)
                && let Some(a) = s.agent.as_deref()
            {
                last_action.insert(a, i);
            }
        }
        let mut reported: BTreeSet<&str> = BTreeSet::new();
        let mut hits = Vec::new();
        for (k, h) in all.iter().enumerate() {
            if !matches!(h.mode, HandoffMode::Transfer | HandoffMode::Delegate)
                || h.from == h.to
                || is_exit_target(&h.to)
            {
                continue;
            }
            let never_again = last_action
                .get(h.to.as_str())
                .is_none_or(|&last| last <= h.anchor);
            if never_again {
                // One finding per target: later handoffs to it are the same dropped work.
                if reported.insert(h.to.as_str()) {
                    hits.push(never_acted(view, h, &all));
                }
                continue;
            }
            // The delegate's window: from this handoff to the next handoff to the same agent.
            let until = all[k + 1..]
                .iter()
                .find(|n| n.to == h.to)
                .map_or(view.len(), |n| n.anchor.max(h.anchor + 1));
            let acts: Vec<usize> = (h.anchor + 1..until)
                .filter(|&i| {
                    let s = view.span(i);
                    s.agent.as_deref() == Some(h.to.as_str()) && is_action(s)
                })
                .collect();
            if !acts.is_empty()
                && check_empty
                && h.mode == HandoffMode::Delegate
                && returned_nothing(view, &acts)
            {
                hits.push(Hit {
                    score: 0.55,
                    severity: None,
                    summary: format!(
                        "{} delegated to {}, which ran but returned nothing",
                        h.from, h.to
                    ),
                    at: Some(h.span),
                    evidence: vec![
                        HitEvidence::new(h.span, format!("delegation to {}", h.to)),
                        HitEvidence::new(
                            acts[acts.len() - 1],
                            format!("{}'s last span, with no output", h.to),
                        ),
                    ],
                    ..Hit::default()
                });
            }
        }
        hits
    }
}

fn never_acted(view: &TraceView<'_>, h: &HandoffRef, all: &[HandoffRef]) -> Hit {
    let known = view.trace.agents.iter().any(|a| a.name == h.to)
        || (0..view.len()).any(|i| {
            view.span(i).agent.as_deref() == Some(h.to.as_str()) && is_action(view.span(i))
        });
    // No other agent does anything after the handoff: the run ended on it.
    let run_ended = !(h.anchor + 1..view.len()).any(|i| {
        let s = view.span(i);
        is_action(s) && s.kind != SpanKind::Agent && s.agent.as_deref() != Some(h.from.as_str())
    });
    let mut score: f64 = 0.6;
    if !known {
        score += 0.15;
    }
    if run_ended {
        score += 0.15;
    }
    let mut evidence = vec![HitEvidence::new(h.span, format!("handoff to {}", h.to))];
    if let Some(prev) = (0..h.anchor.min(h.span)).rev().find(|&i| {
        view.span(i).agent.as_deref() == Some(h.from.as_str())
            && !view.text(i).trim().is_empty()
            && is_action(view.span(i))
    }) {
        evidence.push(HitEvidence::new(
            prev,
            format!("{}'s last message before handing over", h.from),
        ));
    }
    let repeated = all
        .iter()
        .filter(|o| o.to == h.to && o.anchor >= h.anchor)
        .count();
    Hit {
        score: score.min(1.0),
        severity: run_ended.then_some(Severity::High),
        summary: format!(
            "{} handed control to {}, which never acted afterwards{}{}",
            h.from,
            h.to,
            if known {
                ""
            } else {
                " (no agent of that name appears in the run)"
            },
            if run_ended {
                "; the run ended there"
            } else {
                ""
            }
        ) + &if repeated > 1 {
            format!(" ({repeated} handoffs to {})", h.to)
        } else {
            String::new()
        },
        at: Some(h.span),
        evidence,
        ..Hit::default()
    }
}

/// The delegate ran but produced no text and no successful tool result.
fn returned_nothing(view: &TraceView<'_>, acts: &[usize]) -> bool {
    acts.iter().all(|&i| {
        let s = view.span(i);
        let text_empty = view.text(i).trim().is_empty() || is_empty_json(view.text(i));
        match s.kind {
            SpanKind::Tool => view.failed(i) || text_empty,
            _ => text_empty,
        }
    })
}

fn records_output(view: &TraceView<'_>) -> bool {
    (0..view.len()).any(|i| {
        let s = view.span(i);
        s.kind == SpanKind::Llm && s.output.as_ref().is_some_and(|p| !p.text.trim().is_empty())
    })
}

fn is_empty_json(text: &str) -> bool {
    matches!(
        text.trim(),
        "{}" | "[]" | "null" | "\"\"" | "{\"messages\":[]}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{Handoff, Payload, Span, Trace};

    fn span(kind: SpanKind, agent: &str, seq: u32, text: &str) -> Span {
        Span {
            id: format!("s{seq}"),
            seq,
            kind,
            name: agent.to_owned(),
            agent: Some(agent.to_owned()),
            start_ns: Some(i64::from(seq)),
            output: ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new),
            ..Span::default()
        }
    }

    fn handoff(from: &str, to: &str, seq: u32, mode: HandoffMode) -> Span {
        Span {
            kind: SpanKind::Handoff,
            handoff: Some(Box::new(Handoff {
                from: Some(from.to_owned()),
                to: to.to_owned(),
                mode,
            })),
            ..span(SpanKind::Handoff, from, seq, "")
        }
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = Trace::default();
        assert!(
            DeadHandoff
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn handoff_to_silent_agent_fires_and_to_user_does_not() {
        let t = Trace {
            spans: vec![
                span(SpanKind::Llm, "triage", 0, "sending you to billing"),
                handoff("triage", "billing", 1, HandoffMode::Transfer),
            ],
            ..Trace::default()
        };
        let hits = DeadHandoff.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(1));
        let u = Trace {
            spans: vec![
                span(SpanKind::Llm, "triage", 0, "done"),
                handoff("triage", "user", 1, HandoffMode::Transfer),
            ],
            ..Trace::default()
        };
        assert!(
            DeadHandoff
                .detect(&TraceView::new(&u), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn delegate_that_acts_is_fine_and_empty_delegate_fires() {
        let ok = Trace {
            spans: vec![
                handoff("lead", "worker", 0, HandoffMode::Delegate),
                span(SpanKind::Llm, "worker", 1, "result: 42"),
            ],
            ..Trace::default()
        };
        assert!(
            DeadHandoff
                .detect(&TraceView::new(&ok), &Params::default())
                .is_empty()
        );
        let empty = Trace {
            spans: vec![
                handoff("lead", "worker", 0, HandoffMode::Delegate),
                span(SpanKind::Agent, "worker", 1, ""),
                span(SpanKind::Llm, "worker", 2, ""),
                span(SpanKind::Llm, "lead", 3, "the worker sent nothing back"),
            ],
            ..Trace::default()
        };
        assert_eq!(
            DeadHandoff
                .detect(&TraceView::new(&empty), &Params::default())
                .len(),
            1
        );
    }
}
