//! Model outputs cut off by the output-token limit, and model calls that returned nothing where
//! an answer was expected.

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{Part, Span, SpanKind, Status};

pub(crate) struct TruncatedOutput;

/// Finish reasons that mean "stopped by the length limit" across providers.
fn is_length_stop(reason: &str) -> bool {
    let r = reason.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    matches!(
        r.as_str(),
        "length"
            | "max_tokens"
            | "max_output_tokens"
            | "max_tokens_exceeded"
            | "model_length"
            | "token_limit"
            | "finish_reason_max_tokens"
    ) || r.starts_with("max_tokens")
}

/// Whether the output ends in the middle of something (no closing punctuation or bracket).
fn ends_mid_sentence(text: &str) -> bool {
    let t = text.trim_end();
    !t.is_empty()
        && !t.ends_with([
            '.', '!', '?', '"', '\'', ')', ']', '}', '`', ':', '*', '>', '|',
        ])
}

/// What a model call produced, from its output messages when the source has them.
/// `(has_text, has_tool_call)`; `None` when the source does not say.
fn produced(span: &Span) -> Option<(bool, bool)> {
    let llm = span.llm.as_ref()?;
    if llm.output_messages.is_empty() {
        return None;
    }
    let mut text = false;
    let mut call = false;
    for m in &llm.output_messages {
        for p in &m.parts {
            match p {
                Part::Text { text: t } if !t.trim().is_empty() => text = true,
                Part::ToolCall { .. } => call = true,
                _ => {}
            }
        }
    }
    Some((text, call))
}

impl Detector for TruncatedOutput {
    fn id(&self) -> &'static str {
        "truncated-output"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let flag_empty = params.bool("flag_empty", true);
        let calls: Vec<usize> = (0..view.len())
            .filter(|&i| {
                let s = view.span(i);
                s.kind == SpanKind::Llm && s.llm.is_some()
            })
            .collect();
        let last_call = calls.last().copied();
        let mut truncated: Vec<usize> = Vec::new();
        let mut empty: Vec<usize> = Vec::new();
        for &i in &calls {
            let s = view.span(i);
            if s.status == Status::Error {
                continue;
            }
            let reason = s.llm.as_ref().and_then(|l| l.finish_reason.as_deref());
            if reason.is_some_and(is_length_stop) {
                truncated.push(i);
                continue;
            }
            if !flag_empty || !view.text(i).trim().is_empty() {
                continue;
            }
            // Empty only when the source shows the output: an output message with no text and
            // no tool call, or a normal stop reason with zero output tokens.
            let stopped_normally = reason.is_some_and(|r| {
                matches!(
                    r.to_ascii_lowercase().as_str(),
                    "stop" | "end_turn" | "stop_sequence" | "completed" | "eos"
                )
            });
            let zero_tokens = s.usage.as_ref().and_then(|u| u.output) == Some(0);
            let shown_empty = match produced(s) {
                Some((false, false)) => {
                    // Thinking-only turns are followed by more turns; only count them when
                    // nothing came after.
                    let reasoning_only = s.llm.as_ref().is_some_and(|l| {
                        l.output_messages
                            .iter()
                            .flat_map(|m| &m.parts)
                            .any(|p| matches!(p, Part::Reasoning { .. }))
                    });
                    !reasoning_only || Some(i) == last_call
                }
                Some(_) => false,
                None => stopped_normally && zero_tokens,
            };
            if shown_empty {
                empty.push(i);
            }
        }
        let mut hits = Vec::new();
        if let Some(&first) = truncated.first() {
            let n = truncated.len();
            let final_cut = truncated.last().copied() == last_call;
            let mid = truncated
                .iter()
                .filter(|&&i| ends_mid_sentence(view.text(i)))
                .count();
            let s = view.span(first);
            let reason = s
                .llm
                .as_ref()
                .and_then(|l| l.finish_reason.clone())
                .unwrap_or_default();
            let limit = s
                .llm
                .as_ref()
                .and_then(|l| {
                    l.params
                        .get("max_tokens")
                        .or_else(|| l.params.get("max_output_tokens"))
                })
                .and_then(serde_json::Value::as_u64);
            let mut evidence = vec![HitEvidence::new(
                first,
                format!(
                    "finish reason `{reason}`{}",
                    limit.map_or(String::new(), |l| format!(", max_tokens {l}"))
                ),
            )];
            let tail: String = {
                let t = view.text(first).trim_end();
                let start = t.char_indices().rev().nth(79).map_or(0, |(k, _)| k);
                t[start..].to_owned()
            };
            if !tail.is_empty() {
                evidence.push(HitEvidence::quoted(
                    first,
                    "where the output stops",
                    format!("…{tail}"),
                ));
            }
            if let Some(&last) = truncated.last()
                && last != first
            {
                evidence.push(HitEvidence::new(last, format!("truncated call {n} of {n}")));
            }
            hits.push(Hit {
                score: (0.75 + 0.1 * (mid as f64 / n as f64) + 0.03 * (n as f64 - 1.0)).min(0.97),
                severity: Some(if final_cut {
                    Severity::High
                } else {
                    Severity::Medium
                }),
                summary: format!(
                    "{} stopped at the output-token limit{}",
                    if n == 1 {
                        "a model response".to_owned()
                    } else {
                        format!("{n} model responses")
                    },
                    if final_cut {
                        ", including the final answer"
                    } else {
                        ""
                    }
                ),
                at: Some(first),
                evidence,
                ..Hit::default()
            });
        }
        if let Some(&first) = empty.first() {
            let n = empty.len();
            let final_empty = empty.last().copied() == last_call;
            hits.push(Hit {
                score: (0.5 + 0.1 * (n as f64 - 1.0) + if final_empty { 0.2 } else { 0.0 })
                    .min(0.9),
                severity: Some(if final_empty {
                    Severity::Medium
                } else {
                    Severity::Low
                }),
                summary: format!(
                    "{} returned no text and no tool call{}",
                    if n == 1 {
                        "a model call".to_owned()
                    } else {
                        format!("{n} model calls")
                    },
                    if final_empty {
                        "; the run ended on an empty answer"
                    } else {
                        ""
                    }
                ),
                at: Some(first),
                evidence: empty
                    .iter()
                    .take(3)
                    .map(|&i| HitEvidence::quoted(i, "empty model output", ""))
                    .collect(),
                ..Hit::default()
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{LlmCall, Message, Payload, Role, Trace};

    fn call(text: &str, reason: Option<&str>) -> Span {
        Span {
            kind: SpanKind::Llm,
            status: Status::Ok,
            output: ((!text.is_empty()).then(|| Payload::text(text))).map(Box::new),
            llm: Some(Box::new(LlmCall {
                finish_reason: reason.map(str::to_owned),
                output_messages: vec![Message::text(Role::Assistant, text)],
                ..LlmCall::default()
            })),
            ..Span::default()
        }
    }

    fn run(spans: Vec<Span>) -> Vec<Hit> {
        let t = Trace {
            spans,
            ..Trace::default()
        };
        TruncatedOutput.detect(&TraceView::new(&t), &Params::default())
    }

    #[test]
    fn reasons() {
        assert!(is_length_stop("length"));
        assert!(is_length_stop("MAX_TOKENS"));
        assert!(!is_length_stop("stop"));
        assert!(!is_length_stop("tool_calls"));
    }

    #[test]
    fn quiet_on_empty_and_normal() {
        assert!(run(vec![]).is_empty());
        assert!(run(vec![call("Done.", Some("stop"))]).is_empty());
        // A source that does not show outputs says nothing about emptiness.
        let mut s = call("", None);
        s.llm = Some(Box::new(LlmCall::default()));
        assert!(run(vec![s]).is_empty());
    }

    #[test]
    fn truncation_and_empty() {
        let hits = run(vec![call(
            "The three causes are: first, the",
            Some("length"),
        )]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Some(Severity::High));
        let hits = run(vec![call("ok.", Some("stop")), call("", Some("stop"))]);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].summary.contains("empty answer"));
    }
}
