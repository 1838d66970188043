//! An agent received important information (a failed call, an error, a warning in a result)
//! and its next message to another agent or the user leaves it out: the receiver never learns
//! it. Structural part: which failure came before which message, and whether anything
//! recovered in between; textual part: whether the message mentions the failure at all
//! (a small vocabulary of failure words, or distinctive words of the error itself).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView, tokenize};
use pisama_trace::SpanKind;

use super::turns::{tool_name, turns};

pub(crate) struct InformationWithholding;

/// Words with which a message passes a problem on (or asks about it).
fn mentions_problem() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:error|errors|fail|fails|failed|failing|failure|unable|cannot|can't|can not|couldn't|could not|wasn't able|was not able|not found|no such|doesn't exist|does not exist|not exist|invalid|denied|unavailable|not available|timed out|timeout|(?:is|was|are|were|went) down|outage|unreachable|offline|not responding|unresponsive|exception|warning|issue|problem|unfortunately|sorry|missing|unsuccessful|didn't work|did not work|incorrect|wrong|mismatch|verify|double-check|check again|seems|appears|looks like|retry|again)\b",
        )
        .expect("valid regex")
    })
}

/// Words claiming things went well, which make an omitted failure worse.
fn claims_success() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:successfully|succeeded|completed|done|all set|has been|have been|is now|confirmed)\b")
            .expect("valid regex")
    })
}

/// Warning markers inside a successful result ("warning:", "deprecated", "partial").
fn warning_in_result() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\bwarning\s*:|\bpartial(?:ly)? (?:result|failure|success)\b")
            .expect("valid regex")
    })
}

impl Detector for InformationWithholding {
    fn id(&self) -> &'static str {
        "information-withholding"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_findings = params.usize("max_findings", 3).max(1);
        let mut turns: Vec<Idx> = turns(view)
            .into_iter()
            .filter(|t| !t.user && view.span(t.span).kind != SpanKind::Tool)
            .map(|t| t.span)
            .collect();
        // Span order, for "the next message after the failure" by binary search.
        turns.sort_unstable();
        if turns.is_empty() {
            return Vec::new();
        }
        let mut hits = Vec::new();
        let mut reported_messages: BTreeSet<Idx> = BTreeSet::new();
        for i in 0..view.len() {
            let span = view.span(i);
            let problem = if view.failed(i) && span.error.as_ref().is_none_or(|e| !e.handled) {
                span.error
                    .as_ref()
                    .map_or_else(|| "failed".to_owned(), |e| e.message.clone())
            } else if span.kind == SpanKind::Tool
                && let Some(m) = warning_in_result().find(view.text(i))
            {
                view.text(i)[m.start()..]
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\n'))
                    .take(120)
                    .collect()
            } else {
                continue;
            };
            if !matches!(
                span.kind,
                SpanKind::Tool | SpanKind::Retrieval | SpanKind::Agent | SpanKind::Step
            ) {
                continue;
            }
            // The next message anyone (but a user or a tool) sends after the failure.
            let pos = turns.partition_point(|&t| t <= i);
            let Some(&message) = turns.get(pos) else {
                continue;
            };
            // A message that is the failing call's own request came before the result.
            if span.parent.map(|p| p as usize) == Some(message) {
                continue;
            }
            // Something succeeded in between: the problem may have been worked around.
            let recovered = (i + 1..message).any(|j| {
                let s = view.span(j);
                s.kind == SpanKind::Tool && !view.failed(j)
            });
            if recovered || reported_messages.contains(&message) {
                continue;
            }
            let text = view.text(message);
            // A message that carries code or tool calls is still working on the problem (a
            // fix, a retry), not reporting on it.
            let still_working = text.contains("```")
                || view
                    .children(message)
                    .iter()
                    .any(|&c| view.span(c).kind == SpanKind::Tool);
            if still_working
                || mentions_problem().is_match(text)
                || shares_distinctive_word(&problem, text)
            {
                continue;
            }
            reported_messages.insert(message);
            let success = claims_success().find(text);
            let last = turns.last() == Some(&message);
            let mut score: f64 = 0.5;
            if success.is_some() {
                score += 0.25;
            }
            if last {
                score += 0.1;
            }
            let source = if span.kind == SpanKind::Tool {
                format!("`{}`", tool_name(span))
            } else {
                view.agent(i).to_owned()
            };
            let mut evidence = vec![HitEvidence::quoted(
                i,
                "the problem that was received",
                problem.clone(),
            )];
            evidence.push(match success {
                Some(m) => HitEvidence::quoted(
                    message,
                    "next message: no mention of it, claims success",
                    m.as_str(),
                ),
                None => HitEvidence::new(message, "next message: no mention of it"),
            });
            hits.push(Hit {
                score: score.min(1.0),
                severity: (success.is_some() && last).then_some(Severity::High),
                summary: format!(
                    "{} did not pass on that {source} reported a problem ({}){}",
                    view.agent(message),
                    pisama_trace::util::truncate(problem.trim(), 80),
                    if last { " in its final message" } else { "" }
                ),
                at: Some(message),
                evidence,
                ..Hit::default()
            });
            if hits.len() >= max_findings {
                break;
            }
        }
        hits
    }
}

/// Whether the message repeats a distinctive word of the error (an identifier, a file name,
/// an exception name): words of six or more characters, or containing digits or `_`.
fn shares_distinctive_word(problem: &str, message: &str) -> bool {
    let lower = problem.to_lowercase();
    let words: BTreeSet<&str> = tokenize(&lower)
        .filter(|w| w.len() >= 6 || w.chars().any(|c| c.is_ascii_digit() || c == '_'))
        .collect();
    if words.is_empty() {
        return false;
    }
    let msg = message.to_lowercase();
    tokenize(&msg).any(|w| words.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use crate::detectors::test_support::said;
    use pisama_trace::{ErrorInfo, Span, Status, Trace};

    fn failed_tool(seq: u32, message: &str) -> Span {
        Span {
            id: format!("t{seq}"),
            seq,
            kind: SpanKind::Tool,
            agent: Some("a".to_owned()),
            status: Status::Error,
            error: Some(Box::new(ErrorInfo {
                message: message.to_owned(),
                ..ErrorInfo::default()
            })),
            ..Span::default()
        }
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = Trace::default();
        assert!(
            InformationWithholding
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn omitted_failure_fires_and_mentioned_failure_does_not() {
        let t = Trace {
            spans: vec![
                failed_tool(0, "HTTP 503 from payments"),
                said("a", 1, "Your payment went through, all set."),
            ],
            ..Trace::default()
        };
        let hits = InformationWithholding.detect(&TraceView::new(&t), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(1));
        let ok = Trace {
            spans: vec![
                failed_tool(0, "HTTP 503 from payments"),
                said("a", 1, "The payments service is unavailable right now."),
            ],
            ..Trace::default()
        };
        assert!(
            InformationWithholding
                .detect(&TraceView::new(&ok), &Params::default())
                .is_empty()
        );
    }
}
