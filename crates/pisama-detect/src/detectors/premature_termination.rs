//! The run ends before the task is done. Three ways it shows at the end of a trace:
//! - the last model call asked for a tool and no tool ever ran (cut off mid-action);
//! - the last agent message announces more work ("Next, I'll verify…", "Let me now run…") or
//!   hands over code to run, and nothing comes after it;
//! - something failed after the agent's last message and the run ended there, without a final
//!   answer.
//!
//! A run the user ends (the last turn is the user's) is the user's choice and never counts.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};
use pisama_trace::{Part, SpanKind, Status};

use super::turns::{is_action, sentences, tail, tool_name, turns};

pub(crate) struct PrematureTermination;

/// Announcements of work the speaker is about to do.
fn announcement() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:next|now|then|first|afterwards)\s*,?\s+(?:i|we)\s*(?:'ll|will|shall|am going to|are going to|need to|must)\b|\b(?:let\s+me|let's|let\s+us)\s+(?:now\s+|next\s+|first\s+)?(?:proceed|continue|start|begin|run|execute|check|verify|try|search|look|write|implement|fix|compute|calculate|move|perform|fetch|retrieve|test|analy[sz]e|examine|review|confirm|validate|update|call)\b|\b(?:i|we)\s*(?:'ll|will)\s+(?:now|next|then|proceed|continue|start|begin)\b|\b(?:i|we)\s*(?:'m|am|are)\s+going\s+to\s+(?:now\s+)?(?:run|check|verify|search|look|write|fix|execute|try|fetch|test|compute)\b|\b(?:proceeding|moving\s+on)\s+to\b",
        )
        .expect("valid regex")
    })
}

impl Detector for PrematureTermination {
    fn id(&self) -> &'static str {
        "premature-termination"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let tail_chars = params.usize("tail_chars", 300).max(40);
        if view.is_empty() {
            return Vec::new();
        }
        let turns = turns(view);
        // The user closed the conversation: whatever happened, ending was their decision.
        if turns.last().is_some_and(|t| t.user) {
            return Vec::new();
        }
        let last_action = (0..view.len()).rev().find(|&i| is_action(view.span(i)));
        let last_turn = turns.last().map(|t| t.span);
        pending_tool_call(view, last_action)
            .or_else(|| ended_on_error(view, last_turn, last_action))
            .or_else(|| announced_work(view, last_turn, tail_chars))
            .into_iter()
            .collect()
    }
}

/// The last thing that happened is a model call that requested tools, and none ran.
fn pending_tool_call(view: &TraceView<'_>, last_action: Option<Idx>) -> Option<Hit> {
    let i = last_action?;
    let span = view.span(i);
    // A tool call that never returned: no result, no status, no end.
    if span.kind == SpanKind::Tool
        && span.status == Status::Unset
        && span.end_ns.is_none()
        && span.output.is_none()
        && span.tool.as_ref().is_some_and(|t| t.result.is_none())
    {
        let caller = span.parent.map_or(i, |p| p as usize);
        return Some(Hit {
            score: 0.8,
            severity: Some(Severity::High),
            summary: format!(
                "the run ended while the call to `{}` requested by {} had not returned",
                tool_name(span),
                view.agent(i)
            ),
            at: Some(caller),
            evidence: vec![
                HitEvidence::new(caller, "the request for the call"),
                HitEvidence::new(i, "the call: no result, nothing after it"),
            ],
            ..Hit::default()
        });
    }
    if span.kind != SpanKind::Llm || view.failed(i) {
        return None;
    }
    let llm = span.llm.as_ref()?;
    let requested: Vec<&str> = llm
        .output_messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolCall { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let by_reason = llm.finish_reason.as_deref().is_some_and(|r| {
        let r = r.to_ascii_lowercase();
        r.contains("tool") || r.contains("function")
    });
    if requested.is_empty() && !by_reason {
        return None;
    }
    let what = requested
        .first()
        .map_or_else(|| "a tool".to_owned(), |n| format!("`{n}`"));
    Some(Hit {
        score: 0.8,
        severity: Some(Severity::High),
        summary: format!(
            "the run ended right after {} asked to call {what}; the call never ran",
            view.agent(i)
        ),
        at: Some(i),
        evidence: vec![HitEvidence::new(
            i,
            "last model call: requested a tool, nothing followed",
        )],
        ..Hit::default()
    })
}

/// A failure after the agent's last message, with nothing recovering from it.
fn ended_on_error(
    view: &TraceView<'_>,
    last_turn: Option<Idx>,
    last_action: Option<Idx>,
) -> Option<Hit> {
    let last = last_action?;
    if !view.failed(last) || view.span(last).error.as_ref().is_some_and(|e| e.handled) {
        return None;
    }
    // The failure came after the agent last said anything: nobody reported or handled it.
    if last_turn.is_some_and(|t| t > last || view.span(t).parent.map(|p| p as usize) == Some(last))
    {
        return None;
    }
    let no_output = view
        .trace
        .final_output
        .as_deref()
        .is_none_or(|t| t.trim().is_empty());
    let span = view.span(last);
    let what = if span.kind == SpanKind::Tool {
        format!("`{}` failed", tool_name(span))
    } else {
        format!("{} failed", span.kind.name())
    };
    let message = span.error.as_ref().map_or("", |e| e.message.as_str());
    let mut evidence = vec![HitEvidence::new(
        last,
        "last span: failed, nothing after it",
    )];
    if let Some(t) = last_turn {
        evidence.push(HitEvidence::new(
            t,
            "the agent's last message, before the failure",
        ));
    }
    Some(Hit {
        score: if no_output { 0.75 } else { 0.6 },
        severity: no_output.then_some(Severity::High),
        summary: format!(
            "the run ended on an unresolved failure ({what}{}){}",
            if message.is_empty() {
                String::new()
            } else {
                format!(": {}", pisama_trace::util::truncate(message, 80))
            },
            if no_output {
                " without a final answer"
            } else {
                ""
            }
        ),
        at: Some(last),
        evidence,
        ..Hit::default()
    })
}

/// The agent's last message announces work (or hands over code to run) and nothing follows.
fn announced_work(view: &TraceView<'_>, last_turn: Option<Idx>, tail_chars: usize) -> Option<Hit> {
    let t = last_turn?;
    // Anything the agent or a tool did after its last message is the announced work.
    if (t + 1..view.len()).any(|i| is_action(view.span(i)) && view.span(i).kind != SpanKind::Agent)
    {
        return None;
    }
    let text = view.text(t).trim_end();
    let (prose, pending_code) = split_trailing_code(text);
    let end = tail(prose.trim_end(), tail_chars);
    // A closing question hands the turn to someone else on purpose ("shall I proceed?").
    if end.trim_end().ends_with('?') {
        return None;
    }
    // The announcement must be what the message ends on: the last sentence, or the last two
    // when code follows ("Next, I'll check X. Here is the code:").
    let window = if pending_code { 2 } else { 1 };
    let last_sentences: Vec<&str> = sentences(end).into_iter().rev().take(window).collect();
    let phrase = last_sentences
        .iter()
        .rev()
        .find_map(|s| announcement().find(s).map(|_| (*s).to_owned()));
    // Code handed over for execution only counts where something executes code in this run.
    let runs_code = pending_code && !view.tools().is_empty();
    if phrase.is_none() && !runs_code {
        return None;
    }
    let score: f64 = match (&phrase, runs_code) {
        (Some(_), true) => 0.75,
        (Some(_), false) => 0.6,
        (None, _) => 0.5,
    };
    let quote = phrase
        .clone()
        .unwrap_or_else(|| "(code block left to run)".to_owned());
    Some(Hit {
        score,
        severity: None,
        summary: format!(
            "the run ended on {}'s message announcing more work{}, and nothing came after it",
            view.agent(t),
            if runs_code {
                " (with code still to run)"
            } else {
                ""
            }
        ),
        at: Some(t),
        evidence: vec![HitEvidence::quoted(
            t,
            "last message: work announced, never done",
            quote,
        )],
        ..Hit::default()
    })
}

/// Splits off a trailing fenced code block: the text before it, and whether there was one.
fn split_trailing_code(text: &str) -> (&str, bool) {
    let trimmed = text.trim_end();
    if !trimmed.ends_with("```") {
        return (trimmed, false);
    }
    let body = &trimmed[..trimmed.len() - 3];
    match body.rfind("```") {
        Some(open) => (&trimmed[..open], true),
        None => (trimmed, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use crate::detectors::test_support::said;
    use pisama_trace::Trace;

    #[test]
    fn empty_and_one_span_traces() {
        let t = Trace::default();
        assert!(
            PrematureTermination
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
        let one = Trace {
            spans: vec![said("a", 0, "The answer is 42.")],
            ..Trace::default()
        };
        assert!(
            PrematureTermination
                .detect(&TraceView::new(&one), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn announcements_fire_and_questions_do_not() {
        let t = Trace {
            spans: vec![said(
                "a",
                0,
                "I found two files. Next, I'll verify the second one.",
            )],
            ..Trace::default()
        };
        assert_eq!(
            PrematureTermination
                .detect(&TraceView::new(&t), &Params::default())
                .len(),
            1
        );
        let q = Trace {
            spans: vec![said(
                "a",
                0,
                "I can cancel it now. Let me now proceed: shall I go ahead?",
            )],
            ..Trace::default()
        };
        assert!(
            PrematureTermination
                .detect(&TraceView::new(&q), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn code_fences() {
        assert_eq!(
            split_trailing_code("run this:\n```python\nprint(1)\n```"),
            ("run this:\n", true)
        );
        assert_eq!(split_trailing_code("```"), ("```", false));
        assert_eq!(split_trailing_code("plain"), ("plain", false));
    }
}
