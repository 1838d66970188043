//! A tool call failed and the next message carries on as if it had worked: no retry, no other
//! tool, no new code, and no word to the user or the team that something went wrong.

use std::collections::BTreeMap;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{
    caller_message, error_line, failure_text, head, is_agent_message, tool_name,
};

pub(crate) struct ToolErrorIgnored;

/// Words with which a message owns up to a failure (matched as whole words).
const ACK_WORDS: &[&str] = &[
    "error",
    "errors",
    "errored",
    "fail",
    "fails",
    "failed",
    "failing",
    "failure",
    "failures",
    "unable",
    "cannot",
    "unsuccessful",
    "unfortunately",
    "sorry",
    "apologize",
    "apologise",
    "apologies",
    "issue",
    "issues",
    "problem",
    "problems",
    "invalid",
    "unavailable",
    "denied",
    "rejected",
    "insufficient",
    "exception",
    "traceback",
    "bug",
    "fix",
    "fixing",
    "fixed",
    "mistake",
    "wrong",
    "incorrect",
    "retry",
    "retrying",
    "again",
    "instead",
    "missing",
    "exceeded",
    "exceeds",
    "blocked",
    "timeout",
    "unauthorized",
    "forbidden",
    "unfortunate",
    "however",
    "crash",
    "crashed",
    "crashes",
    "broke",
    "broken",
    "stuck",
    "aborted",
    "hung",
    // A service that failed is often reported as out of order rather than as an error.
    "outage",
    "unreachable",
    "offline",
    "unresponsive",
];

/// Phrases with the same meaning that span several words or contractions.
const ACK_PHRASES: &[&str] = &[
    "can't",
    "can not",
    "could not",
    "couldn't",
    "did not work",
    "didn't work",
    "not available",
    "not found",
    "not enough",
    "does not exist",
    "doesn't exist",
    "not possible",
    "wasn't",
    "was not able",
    "weren't",
    "no longer",
    "try again",
    "another way",
    "different approach",
    "timed out",
    "is down",
    "was down",
    "are down",
    "were down",
    "went down",
    "not responding",
    "not installed",
    "isn't installed",
    "aren't installed",
    "did not respond",
    "didn't respond",
    "no response",
    "not sufficient",
    "not eligible",
    "ineligible",
    "it seems",
    "it appears",
];

/// Negations that, together with a word of the error, restate the failure ("the gift cards
/// are not sufficient" after "gift card balance is not enough").
const NEGATIONS: &[&str] = &["not", "no", "unable", "neither", "nor", "without", "never"];

/// Words too common to tie a message to an error.
const STOPWORDS: &[&str] = &[
    "error",
    "the",
    "this",
    "that",
    "with",
    "from",
    "have",
    "been",
    "were",
    "your",
    "what",
    "which",
    "there",
    "their",
    "will",
    "would",
    "could",
    "should",
    "into",
    "than",
    "then",
    "when",
    "where",
    "only",
    "also",
    "more",
    "most",
    "some",
    "such",
    "other",
    "line",
    "file",
    "call",
    "last",
    "recent",
    "most",
    "none",
    "null",
    "true",
    "false",
    "code",
    "output",
    "exitcode",
    "execution",
    "failed",
];

/// Words with which a message reports success or a final result.
const SUCCESS_WORDS: &[&str] = &[
    "success",
    "successful",
    "successfully",
    "done",
    "completed",
    "confirmed",
    "terminate",
    "finished",
    "found",
    "obtained",
    "retrieved",
    "show",
    "shows",
];

const SUCCESS_PHRASES: &[&str] = &[
    "has been",
    "have been",
    "is now",
    "all set",
    "here is",
    "here are",
    "the result is",
    "the answer is",
    "final answer",
];

impl Detector for ToolErrorIgnored {
    fn id(&self) -> &'static str {
        "tool-error-ignored"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_retry_scan = params.usize("max_retry_scan", 50).max(1);
        let tools = view.tools();
        if tools.is_empty() {
            return Vec::new();
        }
        // next_message[i]: the first agent message after span i (one reverse pass).
        let mut next_message = vec![None; view.len() + 1];
        for i in (0..view.len()).rev() {
            next_message[i] = if i + 1 < view.len() && is_agent_message(view, i + 1) {
                Some(i + 1)
            } else {
                next_message[i + 1]
            };
        }
        // model_calls_before[i]: model calls among spans 0..i, to tell a retry (a new decision)
        // from a call issued together with the failed one.
        let mut model_calls_before = Vec::with_capacity(view.len() + 1);
        let mut calls = 0u32;
        for i in 0..view.len() {
            model_calls_before.push(calls);
            calls += u32::from(view.span(i).kind == pisama_trace::SpanKind::Llm);
        }
        model_calls_before.push(calls);
        let ack_ids: Vec<u32> = ACK_WORDS.iter().filter_map(|w| view.word_id(w)).collect();
        let success_ids: Vec<u32> = SUCCESS_WORDS
            .iter()
            .filter_map(|w| view.word_id(w))
            .collect();
        let last_message = (0..view.len()).rev().find(|&i| is_agent_message(view, i));
        // message -> failures it ignored
        let mut ignored: BTreeMap<Idx, Vec<(Idx, &str)>> = BTreeMap::new();
        for (k, &t) in tools.iter().enumerate() {
            let Some(error) = failure_text(view, t) else {
                continue;
            };
            let Some(m) = next_message[t] else {
                continue;
            };
            if retried_before(view, tools, k, m, max_retry_scan, &model_calls_before)
                || comes_with_attempt(view, m)
            {
                continue;
            }
            if acknowledges(view, m, &ack_ids, error) {
                continue;
            }
            // The same tool succeeding later for the same agent: the failure was dealt with
            // (a failing test run, a diagnosis, a fix, a green run), unless the message in
            // between already claimed success.
            if !claims_success(view, m, &success_ids)
                && succeeded_later(view, tools, k, max_retry_scan)
            {
                continue;
            }
            ignored.entry(m).or_default().push((t, error));
        }
        let mut hits = Vec::new();
        for (m, failures) in ignored {
            let Some(&(first, error)) = failures.first() else {
                continue;
            };
            let claims_success = claims_success(view, m, &success_ids);
            let is_last = last_message == Some(m);
            let mut score: f64 = 0.55;
            if claims_success {
                score += 0.25;
            }
            if is_last {
                score += 0.1;
            }
            score += 0.05 * (failures.len() as f64 - 1.0);
            let name = tool_name(view, first);
            let mut evidence = vec![HitEvidence::quoted(
                first,
                format!("`{name}` failed"),
                head(error_line(error), 200),
            )];
            for &(t, e) in failures.iter().skip(1).take(2) {
                evidence.push(HitEvidence::quoted(
                    t,
                    format!("`{}` failed too", tool_name(view, t)),
                    head(error_line(e), 200),
                ));
            }
            evidence.push(HitEvidence::new(
                m,
                if claims_success {
                    "next message reports success without mentioning the failure"
                } else {
                    "next message goes on without mentioning the failure"
                },
            ));
            let caller =
                caller_message(view, first).map_or_else(|| view.agent(first), |c| view.agent(c));
            let speaker = view.agent(m);
            hits.push(Hit {
                score: score.min(0.95),
                severity: Some(if claims_success {
                    Severity::High
                } else {
                    Severity::Medium
                }),
                summary: format!(
                    "`{name}` failed ({}) and `{speaker}` carried on {}without retrying or mentioning it{}",
                    pisama_trace::util::truncate(error_line(error), 80),
                    if claims_success { "as if it had succeeded, " } else { "" },
                    if speaker == caller {
                        String::new()
                    } else {
                        format!(" (the call was `{caller}`'s)")
                    }
                ),
                // The message that ignored the failure is where it went wrong.
                at: Some(m),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

/// Whether another tool call was made after the failure (not a sibling issued together with
/// it) and before the next message: a retry or an alternative.
fn retried_before(
    view: &TraceView<'_>,
    tools: &[Idx],
    k: usize,
    message: Idx,
    max_scan: usize,
    model_calls_before: &[u32],
) -> bool {
    let failed = tools[k];
    tools[k + 1..]
        .iter()
        .take(max_scan)
        .take_while(|&&u| u < message)
        .any(|&u| !issued_together(view, failed, u, model_calls_before))
}

/// `RefundWindowClosed` as "refund window closed": the lower-cased words of a CamelCase
/// name of at least two words, or `None`.
fn camel_case_words(name: &str) -> Option<String> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric())
        || !name.starts_with(|c: char| c.is_ascii_uppercase())
    {
        return None;
    }
    let mut phrase = String::with_capacity(name.len() + 4);
    let mut words = 0;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if words > 0 {
                phrase.push(' ');
            }
            words += 1;
        }
        phrase.push(c.to_ascii_lowercase());
    }
    (words >= 2 && !name.chars().all(|c| c.is_ascii_uppercase())).then_some(phrase)
}

/// Whether message `m` reports success.
fn claims_success(view: &TraceView<'_>, m: Idx, success_ids: &[u32]) -> bool {
    view.words(m).iter().any(|w| success_ids.contains(w))
        || SUCCESS_PHRASES.iter().any(|p| view.lower(m).contains(p))
}

/// Whether a later call of the same tool by the same agent (within `max_scan` calls)
/// succeeded.
fn succeeded_later(view: &TraceView<'_>, tools: &[Idx], k: usize, max_scan: usize) -> bool {
    let failed = tools[k];
    let name = tool_name(view, failed);
    tools[k + 1..].iter().take(max_scan).any(|&u| {
        tool_name(view, u) == name
            && view.span(u).agent == view.span(failed).agent
            && failure_text(view, u).is_none()
    })
}

/// Whether call `u` was issued together with the earlier call `failed` (parallel calls of one
/// decision), so it cannot be a reaction to the failure. With real timestamps: `u` started
/// before `failed` ended. Without: both have the same parent and no model call came between
/// them (a model call in between is a new decision, even when both calls hang under one agent
/// span, as OpenInference and Codex traces nest them).
fn issued_together(view: &TraceView<'_>, failed: Idx, u: Idx, model_calls_before: &[u32]) -> bool {
    let (f, s) = (view.span(failed), view.span(u));
    if !f.time_inferred
        && !s.time_inferred
        && let (Some(end), Some(start)) = (f.end_ns, s.start_ns)
    {
        return start < end;
    }
    f.parent.is_some()
        && s.parent == f.parent
        && model_calls_before[u] == model_calls_before[failed + 1]
}

/// A message that carries a new attempt itself: tool calls of its own, or a code block for
/// an executor to run.
fn comes_with_attempt(view: &TraceView<'_>, m: Idx) -> bool {
    view.children(m)
        .iter()
        .any(|&c| view.span(c).kind == pisama_trace::SpanKind::Tool)
        || view.text(m).contains("```")
}

/// Whether a message owns up to a failure: failure words, or the error's own name
/// (`KeyError`, `ENOENT`) repeated.
fn acknowledges(view: &TraceView<'_>, m: Idx, ack_ids: &[u32], error: &str) -> bool {
    if view.words(m).iter().any(|w| ack_ids.contains(w)) {
        return true;
    }
    let lower = view.lower(m);
    if ACK_PHRASES.iter().any(|p| lower.contains(p)) {
        return true;
    }
    let error_words: Vec<&str> = head(error, 2000)
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 4)
        .collect();
    // The error's own name (`KeyError`, `ENOENT`) repeated.
    if error_words
        .iter()
        .filter(|w| {
            w.len() >= 5
                && (w.ends_with("Error")
                    || w.ends_with("Exception")
                    || w.chars().all(|c| c.is_ascii_uppercase()))
        })
        .any(|w| lower.contains(&w.to_lowercase()))
    {
        return true;
    }
    // An error class in CamelCase (`RefundWindowClosed: ...`) said in words ("the refund
    // window closed").
    if head(error, 2000)
        .split(':')
        .filter_map(|part| part.split_whitespace().last())
        .filter_map(camel_case_words)
        .any(|phrase| lower.contains(&phrase))
    {
        return true;
    }
    // A negation plus a content word of the error: the failure restated in other words.
    let negated = NEGATIONS
        .iter()
        .filter_map(|w| view.word_id(w))
        .any(|id| view.words(m).contains(&id));
    negated
        && error_words.iter().any(|w| {
            let w = w.to_lowercase();
            !STOPWORDS.contains(&w.as_str())
                && view
                    .word_id(&w)
                    .is_some_and(|id| view.words(m).contains(&id))
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn camel_case_error_names_in_words() {
        assert_eq!(
            camel_case_words("RefundWindowClosed").as_deref(),
            Some("refund window closed")
        );
        assert_eq!(camel_case_words("Error"), None);
        assert_eq!(camel_case_words("ENOENT"), None);
        assert_eq!(camel_case_words("refund_window"), None);
    }

    use super::*;
    use pisama_trace::load::{LoadOptions, load_bytes};

    fn run(json: &str) -> Vec<Hit> {
        let (_, traces) = load_bytes("t.json", json.as_bytes(), &LoadOptions::default()).unwrap();
        let view = TraceView::new(&traces[0].trace);
        ToolErrorIgnored.detect(&view, &Params::default())
    }

    const FAILED: &str = r#"{"messages": [
        {"role": "user", "content": "Cancel reservation K2."},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "cancel_reservation", "arguments": "{\"id\": \"K2\"}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "Error: reservation is locked by another process"},
        {"role": "assistant", "content": "REPLY"}]}"#;

    #[test]
    fn ignoring_fires_and_owning_up_does_not() {
        let hits = run(&FAILED.replace("REPLY", "Your reservation K2 has been cancelled."));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(3));
        assert_eq!(hits[0].severity, Some(Severity::High));
        assert!(
            run(&FAILED.replace("REPLY", "Sorry, I could not cancel K2: it is locked.")).is_empty()
        );
    }

    #[test]
    fn empty_and_tool_free_traces_are_quiet() {
        let trace = pisama_trace::Trace::default();
        assert!(
            ToolErrorIgnored
                .detect(&TraceView::new(&trace), &Params::default())
                .is_empty()
        );
        assert!(run(r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "done"}]}"#).is_empty());
    }
}
