//! One model call whose prompt fills (nearly) all of its model's context window, or a call the
//! provider rejected because the prompt was too long. Judged per call: the sum of tokens over a
//! run says nothing about any one context.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{Span, SpanKind, UsageScope};

pub(crate) struct ContextWindowOverrun;

/// Context windows in tokens by model-name prefix (provider prefixes removed). The longest
/// matching prefix wins; unknown models are skipped rather than guessed.
const WINDOWS: &[(&str, u64)] = &[
    ("gpt-3.5-turbo", 16_385),
    ("gpt-4-32k", 32_768),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-1106", 128_000),
    ("gpt-4-0125", 128_000),
    ("gpt-4", 8_192),
    ("gpt-4o", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4.5", 128_000),
    ("gpt-5", 400_000),
    ("o1-mini", 128_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("claude-2", 100_000),
    ("claude-3", 200_000),
    ("claude-haiku", 200_000),
    ("claude-sonnet", 200_000),
    ("claude-opus", 200_000),
    ("gemini-1.5-pro", 2_097_152),
    ("gemini-1.5-flash", 1_048_576),
    ("gemini-2", 1_048_576),
    ("gemini-pro", 32_760),
    ("mistral-large", 128_000),
    ("mistral-small", 32_000),
    ("deepseek-chat", 128_000),
    ("deepseek-reasoner", 128_000),
    ("llama-3.1", 128_000),
    ("llama-3.2", 128_000),
    ("llama-3.3", 128_000),
    ("llama3.1", 128_000),
    ("command-r", 128_000),
];

/// The context window of a model, by the longest known prefix of its bare name.
pub(crate) fn context_window(model: &str) -> Option<u64> {
    let lower = model.trim().to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let name = name
        .rsplit_once("anthropic.")
        .map_or(name, |(_, rest)| rest);
    let name = name.strip_prefix("models/").unwrap_or(name);
    WINDOWS
        .iter()
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|&(_, w)| w)
}

/// Provider messages for a prompt that does not fit.
fn overflow_error() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)context[_ ]length[_ ]exceeded|maximum context length|context (?:window|length) (?:is |was |has been )?(?:exceeded|too (?:long|large|small))|exceeds? (?:the |its |this model's )?(?:maximum )?(?:context|token limit|context window)|prompt is too long|input is too long|too many (?:input )?tokens|reduce the length of the (?:messages|prompt)|input token count.{0,40}exceeds",
        )
        .expect("valid regex")
    })
}

fn error_text(span: &Span) -> String {
    let mut s = String::new();
    if let Some(e) = &span.error {
        s.push_str(&e.message);
        if let Some(k) = &e.kind {
            s.push(' ');
            s.push_str(k);
        }
    }
    if let Some(r) = span.llm.as_ref().and_then(|l| l.finish_reason.as_deref()) {
        s.push(' ');
        s.push_str(r);
    }
    s
}

impl Detector for ContextWindowOverrun {
    fn id(&self) -> &'static str {
        "context-window-overrun"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let threshold = params.f64("fill_ratio", 0.9).clamp(0.1, 1.0);
        // (span, input tokens, window, ratio) of calls at or above the threshold.
        let mut full: Vec<(usize, u64, u64, f64)> = Vec::new();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        for (i, span) in view.trace.spans.iter().enumerate() {
            if span.kind != SpanKind::Llm && span.llm.is_none() {
                continue;
            }
            let err = error_text(span);
            if !err.is_empty()
                && let Some(m) = overflow_error().find(&err)
            {
                rejected.push((i, m.as_str().to_owned()));
                continue;
            }
            if span.usage_scope == UsageScope::Subtree {
                continue;
            }
            let (Some(input), Some(model)) = (
                span.usage.as_ref().and_then(|u| u.input),
                span.llm.as_ref().and_then(|l| l.model()),
            ) else {
                continue;
            };
            let Some(window) = context_window(model) else {
                continue;
            };
            let ratio = input as f64 / window as f64;
            // A call that succeeded with more tokens than the table's window ran on a larger
            // window than we know (a long-context tier): the table is wrong, not the call.
            if ratio > 1.0 && !view.failed(i) {
                continue;
            }
            if ratio >= threshold {
                full.push((i, input, window, ratio));
            }
        }
        let mut hits = Vec::new();
        if let Some((first, quote)) = rejected.first() {
            let (first, quote) = (*first, quote.clone());
            let n = rejected.len();
            let recovered = view.trace.spans[first + 1..]
                .iter()
                .any(|s| s.kind == SpanKind::Llm && s.status == pisama_trace::Status::Ok);
            let mut evidence = vec![HitEvidence::quoted(
                first,
                "the provider rejected the prompt as too long",
                quote,
            )];
            if n > 1 {
                evidence.push(HitEvidence::new(
                    rejected[n - 1].0,
                    format!("rejected call {n} of {n}"),
                ));
            }
            hits.push(Hit {
                score: (0.75 + 0.05 * (n as f64 - 1.0)).min(0.95)
                    + if recovered { 0.0 } else { 0.05 },
                severity: Some(if recovered {
                    Severity::Medium
                } else {
                    Severity::High
                }),
                summary: format!(
                    "{} rejected for exceeding the context window{}",
                    if n == 1 {
                        "a model call was".to_owned()
                    } else {
                        format!("{n} model calls were")
                    },
                    if recovered {
                        ""
                    } else {
                        " and no later model call succeeded"
                    }
                ),
                at: Some(first),
                evidence,
                ..Hit::default()
            });
        }
        if let Some(&(first, input, window, ratio)) = full.first() {
            let worst = full
                .iter()
                .copied()
                .max_by(|a, b| a.3.total_cmp(&b.3))
                .unwrap_or(full[0]);
            let model = view
                .span(first)
                .llm
                .as_ref()
                .and_then(|l| l.model())
                .unwrap_or("?");
            let span_over = (worst.3 - threshold).max(0.0) / (1.0 - threshold).max(0.01);
            let score =
                (0.55 + 0.35 * span_over.min(1.0) + 0.02 * (full.len() as f64 - 1.0)).min(0.97);
            let severity = if worst.3 >= 0.98 {
                Severity::High
            } else {
                Severity::Medium
            };
            let mut evidence = vec![HitEvidence::new(
                first,
                format!(
                    "{input} input tokens of a {window}-token window ({:.0}%)",
                    ratio * 100.0
                ),
            )];
            if worst.0 != first {
                evidence.push(HitEvidence::new(
                    worst.0,
                    format!(
                        "fullest call: {} input tokens ({:.0}%)",
                        worst.1,
                        worst.3 * 100.0
                    ),
                ));
            }
            hits.push(Hit {
                score,
                severity: Some(severity),
                summary: format!(
                    "a `{model}` call sent {input} input tokens, {:.0}% of its {window}-token context window{}",
                    ratio * 100.0,
                    if full.len() > 1 {
                        format!(" ({} calls at or above {:.0}%)", full.len(), threshold * 100.0)
                    } else {
                        String::new()
                    }
                ),
                at: Some(first),
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
    use pisama_trace::{LlmCall, Trace, Usage};

    fn call(model: &str, input: u64) -> Span {
        Span {
            kind: SpanKind::Llm,
            llm: Some(Box::new(LlmCall {
                request_model: Some(model.to_owned()),
                ..LlmCall::default()
            })),
            usage: Some(Box::new(Usage {
                input: Some(input),
                ..Usage::default()
            })),
            ..Span::default()
        }
    }

    fn run(trace: &Trace) -> Vec<Hit> {
        let view = TraceView::new(trace);
        ContextWindowOverrun.detect(&view, &Params::default())
    }

    #[test]
    fn windows_by_prefix() {
        assert_eq!(context_window("gpt-4o-2024-08-06"), Some(128_000));
        assert_eq!(context_window("openai/gpt-4"), Some(8_192));
        assert_eq!(
            context_window("us.anthropic.claude-3-5-sonnet-v1:0"),
            Some(200_000)
        );
        assert_eq!(context_window("my-local-model"), None);
    }

    #[test]
    fn empty_and_unknown_are_quiet() {
        assert!(run(&Trace::default()).is_empty());
        let t = Trace {
            spans: vec![call("mystery-7b", 10_000_000)],
            ..Trace::default()
        };
        assert!(run(&t).is_empty());
    }

    #[test]
    fn per_call_not_summed() {
        let t = Trace {
            spans: (0..20).map(|_| call("gpt-4o", 60_000)).collect(),
            ..Trace::default()
        };
        assert!(run(&t).is_empty());
        let mut t = t;
        t.spans.push(call("gpt-4o", 125_000));
        let hits = run(&t);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(20));
    }

    #[test]
    fn provider_rejection() {
        let mut s = call("gpt-4o", 0);
        s.usage = None;
        s.status = pisama_trace::Status::Error;
        s.error = Some(Box::new(pisama_trace::ErrorInfo {
            message: "This model's maximum context length is 128000 tokens".to_owned(),
            ..pisama_trace::ErrorInfo::default()
        }));
        let hits = run(&Trace {
            spans: vec![s],
            ..Trace::default()
        });
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Some(Severity::High));
    }
}
