//! The conversation goes on after the task was finished: an agent gave the final answer or the
//! termination signal (`TERMINATE`, "FINAL ANSWER:", "the task is complete"), and the agents
//! keep talking without any new input: repeating closings, thanking each other, re-verifying
//! a result that was already final.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::text::{jaccard, shingles};
use crate::view::TraceView;
use pisama_trace::SpanKind;

use std::collections::BTreeSet;

use pisama_trace::HandoffMode;

use super::turns::{Turn, handoffs, tail, turns};

pub(crate) struct UnawareOfTermination;

/// Two messages this similar (word 2-shingles) say the same thing.
const SAME_MESSAGE: f64 = 0.5;

/// Termination signals: the conventional `TERMINATE` token (upper case, as frameworks match
/// it), explicit final answers and statements that the whole task is finished.
fn termination_signal() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"\bTERMINATE\b|(?i:\bfinal\s+answer\s*(?:is\s*)?[:：])|(?i:\b(?:the|this|our|my)\s+(?:task|work|job|request|assignment)\s+(?:is|has\s+been)\s+(?:now\s+)?(?:fully\s+|successfully\s+)?(?:complete|completed|done|finished|accomplished|resolved)\b)|(?i:\bno\s+further\s+(?:action|actions|steps|work)\s+(?:is\s+|are\s+)?(?:needed|required)\b)",
        )
        .expect("valid regex")
    })
}

/// A termination signal that is used, not quoted or mentioned (`reply "TERMINATE"`).
fn find_signal(text: &str) -> Option<regex::Match<'_>> {
    termination_signal().find_iter(text).find(|m| {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        !matches!(before, Some('"' | '\'' | '`' | '“' | '‘'))
            && !matches!(after, Some('"' | '\'' | '`' | '”' | '’'))
    })
}

impl Detector for UnawareOfTermination {
    fn id(&self) -> &'static str {
        "unaware-of-termination"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_extra = params.usize("min_extra_turns", 2).max(1);
        let turns = turns(view);
        let delegates: BTreeSet<&str> = handoffs(view)
            .iter()
            .filter(|h| h.mode == HandoffMode::Delegate)
            .map(|h| {
                view.span(h.span)
                    .handoff
                    .as_ref()
                    .map_or("", |x| x.to.as_str())
            })
            .chain(
                view.trace
                    .agents
                    .iter()
                    .filter(|a| a.parent_agent.is_some())
                    .map(|a| a.name.as_str()),
            )
            .collect();
        let mut hits = Vec::new();
        let mut k = 0;
        while k < turns.len() {
            let t = &turns[k];
            // Tool output is not an agent deciding to stop (terminals echo instructions that
            // quote the token).
            let signal = (!t.user && view.span(t.span).kind != SpanKind::Tool)
                .then(|| find_signal(tail(view.text(t.span), 600)))
                .flatten();
            // A delegate's final answer ends its sub-task, not the run: its caller goes on.
            let Some(signal) = signal.filter(|_| !delegates.contains(t.speaker)) else {
                k += 1;
                continue;
            };
            // Agent turns after the signal, up to the next user input (new input is a new task).
            let after: Vec<&Turn> = turns[k + 1..].iter().take_while(|x| !x.user).collect();
            if after.len() >= min_extra {
                hits.push(hit(view, t, signal.as_str(), &after, min_extra));
            }
            k += 1 + after.len();
        }
        hits
    }
}

fn hit(
    view: &TraceView<'_>,
    signal_turn: &Turn,
    signal: &str,
    after: &[&Turn],
    min_extra: usize,
) -> Hit {
    // How much of the continuation is redundant: another closing, or a near copy of the final
    // message or of the turn before it.
    let sets: Vec<_> = std::iter::once(signal_turn)
        .chain(after.iter().copied())
        .map(|t| shingles(view.lower(t.span), 2))
        .collect();
    let redundant = after
        .iter()
        .enumerate()
        .filter(|(j, t)| {
            find_signal(view.text(t.span)).is_some()
                || jaccard(&sets[j + 1], &sets[0]) >= SAME_MESSAGE
                || jaccard(&sets[j + 1], &sets[*j]) >= SAME_MESSAGE
        })
        .count();
    let share = redundant as f64 / after.len() as f64;
    let extra = (after.len() - min_extra) as i32;
    let score = (1.0 - 0.5 * 0.75f64.powi(extra)) * (0.55 + 0.45 * share);
    let first = after[0];
    let last = after[after.len() - 1];
    let mut evidence = vec![
        HitEvidence::quoted(
            signal_turn.span,
            "the task was declared finished here",
            signal.to_owned(),
        ),
        HitEvidence::new(first.span, format!("{} keeps going", first.speaker)),
    ];
    if last.span != first.span {
        evidence.push(HitEvidence::new(
            last.span,
            format!("still going, {} turns later", after.len()),
        ));
    }
    Hit {
        score,
        severity: None,
        summary: format!(
            "the conversation went on for {} more turns after {} signalled the end (\"{}\"){}",
            after.len(),
            signal_turn.speaker,
            signal.trim(),
            if redundant > 0 {
                format!("; {redundant} of them repeat the closing or the result")
            } else {
                String::new()
            }
        ),
        at: Some(first.span),
        evidence,
        ..Hit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{Payload, Span, Trace};

    fn said(agent: &str, seq: u32, text: &str) -> Span {
        Span {
            id: format!("m{seq}"),
            seq,
            kind: if agent == "user" {
                SpanKind::Human
            } else {
                SpanKind::Llm
            },
            agent: (agent != "user").then(|| agent.to_owned()),
            input: ((agent == "user").then(|| Payload::text(text))).map(Box::new),
            output: ((agent != "user").then(|| Payload::text(text))).map(Box::new),
            ..Span::default()
        }
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = Trace::default();
        assert!(
            UnawareOfTermination
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn chatter_after_terminate_fires_and_new_user_input_does_not() {
        let t = Trace {
            spans: vec![
                said("a", 0, "The result is 42. TERMINATE"),
                said("b", 1, "Great, the result is 42. TERMINATE"),
                said("a", 2, "Thanks! TERMINATE"),
            ],
            ..Trace::default()
        };
        let hits = UnawareOfTermination.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(1));
        let u = Trace {
            spans: vec![
                said("a", 0, "Your booking is done. The task is complete."),
                said("user", 1, "One more thing: add a bag."),
                said("a", 2, "Added one bag."),
                said("a", 3, "Anything else?"),
            ],
            ..Trace::default()
        };
        assert!(
            UnawareOfTermination
                .detect(&TraceView::new(&u), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn lower_case_terminate_in_prose_is_not_a_signal() {
        assert!(!termination_signal().is_match("we should terminate the contract"));
        assert!(termination_signal().is_match("FINAL ANSWER: 7"));
        assert!(find_signal("reply me only with \"TERMINATE\"").is_none());
    }
}
