//! Control bouncing between the same two agents, back and forth, without anything getting done
//! in between: A hands to B, B hands back to A, again and again.
//!
//! Two sources of evidence, both structural:
//! - handoff spans: a run of consecutive handoffs alternating within one pair of agents, where
//!   most legs carry no work (no successful tool call, no new message);
//! - when a trace has no handoff spans, strict speaker alternation between two agents in which
//!   each agent keeps sending nearly the same message it sent the round before.

use std::collections::HashSet;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::{jaccard, shingles};
use crate::view::{Idx, TraceView};
use pisama_trace::{HandoffMode, SpanKind};

use super::turns::{HandoffRef, handoffs, is_action, tool_name, turns};

pub(crate) struct HandoffPingPong;

/// Messages at least this similar (word 3-shingle Jaccard) to an earlier one add nothing new.
const REPEAT_SIMILARITY: f64 = 0.5;

impl Detector for HandoffPingPong {
    fn id(&self) -> &'static str {
        "handoff-ping-pong"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_round_trips = params.usize("min_round_trips", 3).max(2);
        let handoffs: Vec<HandoffRef> = handoffs(view)
            .into_iter()
            .filter(|h| h.mode != HandoffMode::Message && h.from != h.to)
            .collect();
        if handoffs.is_empty() {
            alternation_hits(view, min_round_trips)
        } else {
            handoff_hits(view, &handoffs, min_round_trips)
        }
    }
}

fn handoff_hits(view: &TraceView<'_>, handoffs: &[HandoffRef], min_round_trips: usize) -> Vec<Hit> {
    // Names of tools that perform handoffs (`transfer_to_x`): calling them is not work.
    let handoff_tools: HashSet<&str> = handoffs
        .iter()
        .map(|h| view.span(h.span).name.as_str())
        .collect();
    let mut hits = Vec::new();
    let mut start = 0;
    while start < handoffs.len() {
        let mut end = start + 1;
        while end < handoffs.len() {
            let prev = &handoffs[end - 1];
            let next = &handoffs[end];
            if next.from != prev.to || next.to != prev.from {
                break;
            }
            end += 1;
        }
        let run = &handoffs[start..end];
        let round_trips = run.len() / 2;
        if round_trips >= min_round_trips {
            let legs = run.len() - 1;
            let idle = run
                .windows(2)
                .filter(|w| !leg_has_work(view, &w[0], &w[1], &handoff_tools))
                .count();
            let idle_share = idle as f64 / legs.max(1) as f64;
            if idle * 2 >= legs {
                let first = &run[0];
                let extra = (round_trips - min_round_trips) as i32;
                let score = (1.0 - 0.5 * 0.7f64.powi(extra)) * (0.6 + 0.4 * idle_share);
                let mut evidence: Vec<HitEvidence> = run
                    .iter()
                    .take(3)
                    .map(|h| HitEvidence::new(h.span, format!("{} hands to {}", h.from, h.to)))
                    .collect();
                if let Some(last) = run.last().filter(|_| run.len() > 3) {
                    evidence.push(HitEvidence::new(
                        last.span,
                        format!("handoff {} of {}", run.len(), run.len()),
                    ));
                }
                hits.push(Hit {
                    score,
                    severity: (round_trips >= 2 * min_round_trips).then_some(Severity::High),
                    summary: format!(
                        "control bounced between {} and {} {} times ({round_trips} round trips), with {idle} of {legs} legs doing no work",
                        first.from,
                        first.to,
                        run.len()
                    ),
                    at: Some(first.span),
                    evidence,
                    ..Hit::default()
                });
            }
        }
        start = end;
    }
    hits
}

/// Whether the receiving agent did something between two handoffs: a successful tool call
/// that is not itself a handoff, or a message with text.
fn leg_has_work(
    view: &TraceView<'_>,
    into: &HandoffRef,
    out_of: &HandoffRef,
    handoff_tools: &HashSet<&str>,
) -> bool {
    let lo = into.anchor.min(into.span) + 1;
    let hi = out_of.anchor.max(lo);
    (lo..hi).any(|i| {
        let span = view.span(i);
        if span.agent.as_deref() != Some(into.to.as_str()) || !is_action(span) {
            return false;
        }
        match span.kind {
            SpanKind::Tool => {
                !view.failed(i)
                    && !handoff_tools.contains(tool_name(span))
                    && !handoff_tools.contains(span.name.as_str())
            }
            SpanKind::Llm | SpanKind::Step => view.text(i).trim().chars().count() >= 20,
            _ => false,
        }
    })
}

/// Strict A, B, A, B speaker alternation in which the agents repeat themselves.
fn alternation_hits(view: &TraceView<'_>, min_round_trips: usize) -> Vec<Hit> {
    let turns: Vec<(Idx, String)> = turns(view)
        .into_iter()
        .filter(|t| !t.user)
        .map(|t| (t.span, t.speaker.to_owned()))
        .collect();
    let mut hits = Vec::new();
    let mut start = 0;
    while start + 1 < turns.len() {
        let mut end = start + 1;
        if turns[end].1 == turns[start].1 {
            start += 1;
            continue;
        }
        end += 1;
        while end < turns.len()
            && turns[end].1 == turns[end - 2].1
            && turns[end].1 != turns[end - 1].1
        {
            end += 1;
        }
        let run = &turns[start..end];
        if run.len() >= 2 * min_round_trips
            && let Some(hit) = repeated_alternation(view, run, min_round_trips)
        {
            hits.push(hit);
        }
        start = end - 1;
    }
    hits
}

fn repeated_alternation(
    view: &TraceView<'_>,
    run: &[(Idx, String)],
    min_round_trips: usize,
) -> Option<Hit> {
    let sets: Vec<_> = run
        .iter()
        .map(|(i, _)| shingles(view.lower(*i), 3))
        .collect();
    let repeats: Vec<usize> = (2..run.len())
        .filter(|&k| jaccard(&sets[k], &sets[k - 2]) >= REPEAT_SIMILARITY)
        .collect();
    let needed = 2 * (min_round_trips - 1);
    if repeats.len() < needed || repeats.len() * 2 < run.len() - 2 {
        return None;
    }
    let round_trips = run.len() / 2;
    let repeat_share = repeats.len() as f64 / (run.len() - 2) as f64;
    let extra = (round_trips - min_round_trips) as i32;
    let score = (1.0 - 0.5 * 0.7f64.powi(extra)) * (0.5 + 0.5 * repeat_share);
    let (a, b) = (&run[0].1, &run[1].1);
    let first_repeat = repeats[0];
    let mut evidence = vec![
        HitEvidence::new(
            run[first_repeat - 2].0,
            format!("{} says this", run[first_repeat].1),
        ),
        HitEvidence::new(run[first_repeat].0, "and says it again a round later"),
    ];
    if let Some(&last) = repeats.last().filter(|&&l| l != first_repeat) {
        evidence.push(HitEvidence::new(run[last].0, "still repeating"));
    }
    Some(Hit {
        score,
        severity: None,
        summary: format!(
            "{a} and {b} passed the conversation back and forth {} times, repeating themselves in {} of those turns",
            run.len(),
            repeats.len()
        ),
        at: Some(run[first_repeat].0),
        evidence,
        ..Hit::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{Handoff, Span, Trace};

    fn handoff(from: &str, to: &str, seq: u32) -> Span {
        Span {
            id: format!("h{seq}"),
            seq,
            kind: SpanKind::Handoff,
            name: format!("transfer_to_{to}"),
            agent: Some(from.to_owned()),
            start_ns: Some(i64::from(seq)),
            handoff: Some(Box::new(Handoff {
                from: Some(from.to_owned()),
                to: to.to_owned(),
                mode: HandoffMode::Transfer,
            })),
            ..Span::default()
        }
    }

    #[test]
    fn empty_and_single_span_traces_are_quiet() {
        let empty = Trace::default();
        assert!(
            HandoffPingPong
                .detect(&TraceView::new(&empty), &Params::default())
                .is_empty()
        );
        let one = Trace {
            spans: vec![handoff("a", "b", 0)],
            ..Trace::default()
        };
        assert!(
            HandoffPingPong
                .detect(&TraceView::new(&one), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn idle_bouncing_fires_and_grows_with_length() {
        let make = |n: u32| Trace {
            spans: (0..n)
                .map(|k| {
                    if k % 2 == 0 {
                        handoff("a", "b", k)
                    } else {
                        handoff("b", "a", k)
                    }
                })
                .collect(),
            ..Trace::default()
        };
        let short = make(6);
        let long = make(12);
        let s = HandoffPingPong.detect(&TraceView::new(&short), &Params::default());
        let l = HandoffPingPong.detect(&TraceView::new(&long), &Params::default());
        assert_eq!(s.len(), 1);
        assert_eq!(l.len(), 1);
        assert!(l[0].score > s[0].score);
        let huge = make(5000);
        assert_eq!(
            HandoffPingPong
                .detect(&TraceView::new(&huge), &Params::default())
                .len(),
            1
        );
    }
}
