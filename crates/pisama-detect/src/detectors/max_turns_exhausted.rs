//! The run stopped because it hit a turn, step, iteration or recursion limit, not because the
//! task was done: stop reasons such as `max_turns`, `error_max_turns`, `GraphRecursionError`,
//! `max_iterations`, reported in trace metadata, span attributes, errors or finish reasons.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use pisama_trace::util::truncate;

use super::turns::tail;

pub(crate) struct MaxTurnsExhausted;

/// A limit-type stop reason as frameworks write it in machine fields.
fn limit_code() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(?:\b|_)max(?:imum)?[_\s-]?(?:number[_\s-]of[_\s-])?(?:turns?|iterations?|steps?|rounds?|messages?|recursions?|consecutive[_\s-]auto[_\s-]reply)(?:\b|_)|recursion[_\s-]?limit|graphrecursionerror|\b(?:turn|step|iteration|round)[_\s-]?limit\b|\b(?:turns?|steps?|iterations?|rounds?)[_\s-](?:exhausted|exceeded)\b",
        )
        .expect("valid regex")
    })
}

/// A limit stop as frameworks phrase it in a final message ("Agent stopped due to iteration
/// limit or time limit.", "Reached the maximum number of turns (30)").
fn limit_phrase() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:stopped|terminated|halted|aborted|ended)\b[^.\n]{0,30}\b(?:iteration|turn|step|round|recursion)s?\s+limit\b|\b(?:reached|hit|exceeded|exhausted)\s+(?:the\s+)?(?:max(?:imum)?\s+(?:number\s+of\s+)?(?:turns|iterations|steps|rounds|replies)|(?:turn|iteration|step|round|recursion)\s+limit)\b|recursion\s+limit\s+of\s+\d+\s+reached|\bmaximum\s+number\s+of\s+(?:messages|turns|iterations|steps|rounds)\s+\d+\s+reached",
        )
        .expect("valid regex")
    })
}

/// Keys under which sources record why a run or call stopped.
fn is_stop_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "stop",
        "finish",
        "termination",
        "terminate",
        "reason",
        "subtype",
        "status",
        "outcome",
        "exit",
        "error",
        "exception",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// The first string in a JSON value (or its nested strings) that names a limit stop.
fn limit_in_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => limit_code().is_match(s).then(|| truncate(s.trim(), 80)),
        Value::Array(items) => items.iter().find_map(limit_in_value),
        Value::Object(map) => map.values().find_map(limit_in_value),
        _ => None,
    }
}

impl Detector for MaxTurnsExhausted {
    fn id(&self) -> &'static str {
        "max-turns-exhausted"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let check_text = params.bool("check_final_text", true);
        let trace = view.trace;
        // The last thing anyone did: where the run stopped.
        let last_action = view
            .conversation()
            .last()
            .copied()
            .or_else(|| view.len().checked_sub(1));
        let no_output = trace
            .final_output
            .as_deref()
            .is_none_or(|t| t.trim().is_empty());

        let mut found: Option<(Idx, String, &'static str, f64)> = None;
        for (key, value) in &trace.metadata {
            if is_stop_key(key)
                && let Some(m) = limit_in_value(value)
            {
                found = last_action.map(|i| (i, format!("{key} = {m}"), "trace stop reason", 0.85));
                break;
            }
        }
        if found.is_none() {
            found = span_signal(view);
        }
        if found.is_none() && check_text {
            found = text_signal(view);
        }
        let Some((signal, what, source, base)) = found else {
            return Vec::new();
        };
        // Attribute to where the run was cut off when the signal sits on a container span
        // (a root workflow, the session) that belongs to no agent.
        let at = if view.span(signal).agent.is_some() {
            signal
        } else {
            last_action.unwrap_or(signal)
        };
        let score: f64 = base + if no_output { 0.1 } else { 0.0 };
        let mut evidence = vec![HitEvidence::quoted(signal, source, what.clone())];
        if let Some(last) = last_action.filter(|&l| l != signal) {
            evidence.push(HitEvidence::new(
                last,
                "the last step before the run stopped",
            ));
        }
        vec![Hit {
            score: score.min(1.0),
            severity: no_output.then_some(Severity::High),
            summary: format!(
                "the run stopped on a turn/step limit ({what}){}",
                if no_output {
                    " without a final answer"
                } else {
                    ""
                }
            ),
            at: Some(at),
            evidence,
            ..Hit::default()
        }]
    }
}

/// Limit stop reasons on spans: error kinds and messages, finish reasons, stop-like attributes.
/// The last such span wins, since that is where the run was cut off.
fn span_signal(view: &TraceView<'_>) -> Option<(Idx, String, &'static str, f64)> {
    (0..view.len()).rev().find_map(|i| {
        let span = view.span(i);
        if let Some(err) = &span.error {
            let hay = format!("{} {}", err.kind.as_deref().unwrap_or(""), err.message);
            if let Some(m) = limit_code()
                .find(&hay)
                .or_else(|| limit_phrase().find(&hay))
            {
                return Some((i, m.as_str().to_owned(), "error: limit reached", 0.85));
            }
        }
        if let Some(reason) = span.llm.as_ref().and_then(|l| l.finish_reason.as_deref())
            && let Some(m) = limit_code().find(reason)
        {
            return Some((
                i,
                format!("finish reason {}", m.as_str()),
                "finish reason",
                0.8,
            ));
        }
        span.attributes.iter().find_map(|(key, value)| {
            (is_stop_key(key))
                .then(|| limit_in_value(value))
                .flatten()
                .map(|m| (i, format!("{key} = {m}"), "stop reason attribute", 0.8))
        })
    })
}

/// A framework's own limit message in the final output or the last conversation turn.
fn text_signal(view: &TraceView<'_>) -> Option<(Idx, String, &'static str, f64)> {
    let last = *view.conversation().last()?;
    let final_text = view.trace.final_output.as_deref().unwrap_or("");
    [view.text(last), final_text].into_iter().find_map(|t| {
        limit_phrase().find(tail(t, 400)).map(|m| {
            (
                last,
                m.as_str().to_owned(),
                "limit message at the end of the run",
                0.65,
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{ErrorInfo, Payload, Span, SpanKind, Trace};

    #[test]
    fn codes_and_phrases() {
        for s in [
            "error_max_turns",
            "max_iterations",
            "GraphRecursionError",
            "Recursion limit of 25 reached",
            "max_turns_reached",
            "MAX_STEPS",
        ] {
            assert!(
                limit_code().is_match(s) || limit_phrase().is_match(s),
                "{s}"
            );
        }
        for s in ["end_turn", "stop", "max_tokens", "success", "maximum value"] {
            assert!(!limit_code().is_match(s), "{s}");
        }
        assert!(limit_phrase().is_match("Agent stopped due to iteration limit or time limit."));
        assert!(!limit_phrase().is_match("I will keep the number of turns small."));
    }

    #[test]
    fn empty_trace_is_quiet_and_metadata_fires() {
        let t = Trace::default();
        assert!(
            MaxTurnsExhausted
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
        let mut m = Trace {
            spans: vec![Span {
                kind: SpanKind::Llm,
                output: Some(Box::new(Payload::text("working"))),
                ..Span::default()
            }],
            ..Trace::default()
        };
        m.metadata
            .insert("result.subtype".into(), "error_max_turns".into());
        m.metadata.insert("max_turns".into(), 30.into());
        let hits = MaxTurnsExhausted.detect(&TraceView::new(&m), &Params::default());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Some(Severity::High));
    }

    #[test]
    fn config_values_are_not_stop_reasons() {
        let mut m = Trace::default();
        m.metadata
            .insert("config".into(), serde_json::json!({"max_turns": 30}));
        m.spans.push(Span {
            error: Some(Box::new(ErrorInfo {
                message: "KeyError: 'day'".into(),
                ..ErrorInfo::default()
            })),
            ..Span::default()
        });
        assert!(
            MaxTurnsExhausted
                .detect(&TraceView::new(&m), &Params::default())
                .is_empty()
        );
    }
}
