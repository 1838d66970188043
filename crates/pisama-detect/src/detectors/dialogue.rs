//! Shared helpers for the conversation-level detectors (derailment, fact drift, contradiction,
//! verification, confirmation, constraints, user signals): who speaks in a span, the run as
//! one ordered timeline of messages and tool results, tool-name verbs, and simple fact
//! extraction (`<key> is <value>`).
//!
//! Everything here is linear in the text or the number of spans.

use std::sync::OnceLock;

use regex::Regex;

use crate::view::{Idx, TraceView, is_user};
use pisama_trace::SpanKind;

/// Most pattern matches examined in one text. Each match looks at its sentence, so an
/// unbounded number of matches in a huge text would cost its length squared.
pub(crate) const MAX_MATCHES: usize = 64;

/// Who produced a span's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaker {
    User,
    Agent,
    /// A tool, code executor or retriever: evidence from outside the model.
    Tool,
    System,
}

pub(crate) fn speaker(view: &TraceView<'_>, i: Idx) -> Speaker {
    view.speaker(i)
}

/// [`speaker`], computed (the view keeps it for every span: a dozen detectors ask).
pub(crate) fn compute_speaker(view: &TraceView<'_>, i: Idx) -> Speaker {
    let span = view.span(i);
    match span.kind {
        SpanKind::Tool | SpanKind::Retrieval | SpanKind::Embedding => Speaker::Tool,
        SpanKind::System => Speaker::System,
        // AG2-style executors post their output as a "user" message; it is tool output
        // whichever way the log was read.
        _ if is_user(span) && exit_code(view.text(i)).is_some() => Speaker::Tool,
        _ if is_user(span) => Speaker::User,
        _ => Speaker::Agent,
    }
}

/// The run in order: conversation messages and tool spans, each once, by arena position
/// (the arena is sorted by start time).
pub(crate) fn timeline(view: &TraceView<'_>) -> Vec<Idx> {
    let mut all: Vec<Idx> = view
        .conversation()
        .iter()
        .chain(view.tools())
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Agent messages with text, in order.
pub(crate) fn agent_messages(view: &TraceView<'_>, line: &[Idx]) -> Vec<Idx> {
    line.iter()
        .copied()
        .filter(|&i| speaker(view, i) == Speaker::Agent && !view.text(i).trim().is_empty())
        .collect()
}

/// The task: the trace's declared task, else the first user message. Returns the span that
/// carries it when there is one.
pub(crate) fn task(view: &TraceView<'_>, line: &[Idx]) -> Option<(Option<Idx>, String)> {
    let first_user = line
        .iter()
        .copied()
        .find(|&i| speaker(view, i) == Speaker::User && !view.text(i).trim().is_empty());
    if let Some(task) = view.trace.task.as_deref().filter(|t| !t.trim().is_empty()) {
        let carrier = line
            .iter()
            .copied()
            .find(|&i| view.text(i).contains(task.trim()))
            .or(first_user);
        return Some((carrier, task.to_owned()));
    }
    first_user.map(|i| (Some(i), view.text(i).to_owned()))
}

/// English function words: they carry no topic, so similarity measures skip them.
pub(crate) const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "for",
    "from", "had", "has", "have", "he", "her", "here", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "just", "let", "ll", "me", "more", "my", "no", "not", "now", "of",
    "on", "once", "one", "only", "or", "other", "our", "out", "over", "please", "re", "same",
    "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "up", "us", "ve", "very", "was",
    "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would",
    "yes", "you", "your",
];

/// Whether a lower-case word is a function word.
pub(crate) fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

/// The tool name of a span (its tool call's name, else the span name).
pub(crate) fn tool_name<'t>(view: &TraceView<'t>, i: Idx) -> &'t str {
    let s = view.span(i);
    s.tool.as_ref().map_or(s.name.as_str(), |t| t.name.as_str())
}

/// Lower-case words of an identifier: `update_reservation_flights`, `cancelOrder`,
/// `files.delete` → `[update, reservation, flights]`, `[cancel, order]`, `[files, delete]`.
pub(crate) fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Verbs that name a tool that only reads or computes.
const READ_VERBS: &[&str] = &[
    "get",
    "list",
    "search",
    "find",
    "fetch",
    "read",
    "lookup",
    "look",
    "query",
    "check",
    "view",
    "show",
    "calculate",
    "calc",
    "compute",
    "think",
    "describe",
    "retrieve",
    "browse",
    "count",
    "validate",
    "verify",
    "preview",
    "estimate",
    "quote",
    "inspect",
    "load",
    "open",
    "download",
    "scrape",
    "visit",
    "ask",
    "explain",
    "summarize",
    "grep",
    "glob",
    "ls",
    "cat",
];

/// Whether a tool name starts with a read-only verb (`get_order`, `searchFlights`).
pub(crate) fn is_read_only_tool(name: &str) -> bool {
    // The first of `name_words(name)`, found without building the words (several detectors
    // ask this of every tool call).
    let Some(start) = name.find(char::is_alphanumeric) else {
        return false;
    };
    let mut end = name.len();
    let mut prev_lower = false;
    for (k, c) in name[start..].char_indices() {
        if !c.is_alphanumeric() || (c.is_uppercase() && prev_lower) {
            end = start + k;
            break;
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    let word = &name[start..end];
    if word.is_ascii() {
        READ_VERBS.iter().any(|v| v.eq_ignore_ascii_case(word))
    } else {
        let lower: String = word.chars().flat_map(char::to_lowercase).collect();
        READ_VERBS.contains(&lower.as_str())
    }
}

/// Whether a span is a code execution or a tool with a failure (status, error flag, or an
/// exit code in its output).
pub(crate) fn execution_failed(view: &TraceView<'_>, i: Idx) -> bool {
    let span = view.span(i);
    view.failed(i)
        || span.tool.as_ref().is_some_and(|t| t.is_error)
        || span.error.as_ref().is_some_and(|e| !e.handled)
        || exit_code(view.text(i)).is_some_and(|c| c != 0)
}

/// The exit code of a code executor's output framed as `exitcode: N ...`.
pub(crate) fn exit_code(text: &str) -> Option<i64> {
    let rest = text.trim_start().strip_prefix("exitcode:")?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

/// Byte ranges of the sentences of a text (split at `.`, `!`, `?` followed by whitespace, and
/// at line breaks).
pub(crate) fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (k, &b) in bytes.iter().enumerate() {
        let end_here = b == b'\n'
            || (matches!(b, b'.' | b'!' | b'?')
                && bytes.get(k + 1).is_none_or(u8::is_ascii_whitespace));
        if end_here {
            if text[start..=k].trim().len() > 1 {
                out.push((start, k + 1));
            }
            start = k + 1;
        }
    }
    if start < text.len() && text[start..].trim().len() > 1 {
        out.push((start, text.len()));
    }
    out
}

/// The sentence of `text` around byte `pos`.
pub(crate) fn sentence_at(text: &str, pos: usize) -> &str {
    let (s, e) = sentence_range(text, pos);
    text.get(s..e).unwrap_or("").trim()
}

/// Byte range of the sentence around byte `pos` (empty when `pos` is outside every sentence).
pub(crate) fn sentence_range(text: &str, pos: usize) -> (usize, usize) {
    sentences(text)
        .into_iter()
        .find(|&(s, e)| s <= pos && pos < e)
        .unwrap_or((pos.min(text.len()), pos.min(text.len())))
}

/// A number rendered without a needless `.0`.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// `<key> is <value>` as stated in a text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fact {
    /// One or two content words, lower-case, singular-ish (trailing `s` dropped).
    pub key: String,
    pub value: f64,
    /// Byte range of the whole statement in the text.
    pub start: usize,
    pub end: usize,
}

/// Words that never make a key on their own: pronouns, determiners, auxiliaries.
const NOT_KEYS: &[&str] = &[
    "it", "this", "that", "there", "here", "which", "what", "who", "he", "she", "they", "we",
    "you", "i", "one", "answer", "result", "value", "number", "output", "step", "option", "line",
    "item", "case", "example", "page", "section", "version", "code", "the", "a", "an", "is", "was",
    "be", "and", "or", "of", "to", "in", "for", "on", "at", "by", "with", "from", "as", "its",
    "their", "our", "your", "my", "his", "her", "also", "now", "then", "so", "not", "no", "if",
    "all", "each", "every", "total", "id", "status", "new", "old", "first", "second", "last",
    "next", "final", "current", "previous",
];

fn fact_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b([a-z][a-z_'-]*(?:\s+[a-z][a-z_'-]*){0,3}?)\s*(?:\bis\b|\bwas\b|\bare\b|\bwere\b|\bequals\b|\bcomes to\b|\bamounts to\b|=|:)\s*(?:\*\*)?\s*(?:approximately\s+|about\s+|around\s+|roughly\s+|exactly\s+|now\s+|still\s+|only\s+|just\s+)?([$€£]\s?)?(-?\d[\d,]*(?:\.\d+)?)(\s*%)?(?:\*\*)?([^\w.,/:-]|[.,](?:\s|$)|$)",
        )
        .expect("valid regex")
    })
}

/// Numeric facts stated in a text: "the population is 4,200", "total: $305",
/// "the count was 8". Keys are the last one or two content words before the verb.
pub(crate) fn numeric_facts(text: &str) -> Vec<Fact> {
    let mut out = Vec::new();
    for caps in fact_pattern().captures_iter(text).take(MAX_MATCHES) {
        let (Some(all), Some(key_m), Some(num_m)) = (caps.get(0), caps.get(1), caps.get(3)) else {
            continue;
        };
        // A number glued to a following letter or digit group is an id or a date part.
        // Code assigns variables (`max_results=10`); only prose states facts.
        if in_code(text, all.start()) || key_m.as_str().contains('_') {
            continue;
        }
        let Some(mut key) = key_of(key_m.as_str()) else {
            continue;
        };
        // A count and an amount of money are different facts even under the same words.
        if caps.get(2).is_some() {
            key.push_str(" (money)");
        } else if caps.get(4).is_some() {
            key.push_str(" (%)");
        }
        let Ok(value) = num_m.as_str().replace(',', "").parse::<f64>() else {
            continue;
        };
        out.push(Fact {
            key,
            value,
            start: all.start(),
            end: num_m.end(),
        });
    }
    out
}

/// Whether byte `pos` lies inside a fenced code block (an odd number of fences before it).
pub(crate) fn in_code(text: &str, pos: usize) -> bool {
    text.get(..pos).unwrap_or("").matches("```").count() % 2 == 1
}

/// The key of a phrase: its last two words that are not function words, joined by a space,
/// with a plural `s` dropped. `None` when nothing content-bearing remains.
pub(crate) fn key_of(phrase: &str) -> Option<String> {
    let words: Vec<String> = phrase
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let content: Vec<&String> = words
        .iter()
        .rev()
        .take_while(|w| !matches!(w.as_str(), "the" | "a" | "an" | "of" | "for" | "to" | "in"))
        .collect();
    let mut picked: Vec<String> = content.iter().take(2).rev().map(|w| singular(w)).collect();
    picked.retain(|w| w.len() >= 3);
    if picked.is_empty() || picked.iter().all(|w| NOT_KEYS.contains(&w.as_str())) {
        return None;
    }
    Some(picked.join(" "))
}

fn singular(w: &str) -> String {
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_owned()
    } else {
        w.to_owned()
    }
}

/// Bit pattern of a number, for hashing numbers seen in texts (values are rounded to 1e-6 so
/// `305` and `305.0` agree).
pub(crate) fn number_key(n: f64) -> i64 {
    (n * 1e6).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stopword("the") && !is_stopword("flight"));
    }

    #[test]
    fn names_split_into_words() {
        assert_eq!(
            name_words("update_reservation_flights"),
            ["update", "reservation", "flights"]
        );
        assert_eq!(name_words("cancelOrder"), ["cancel", "order"]);
        assert_eq!(name_words("files.delete"), ["files", "delete"]);
        assert!(name_words("").is_empty());
        assert!(is_read_only_tool("get_reservation_details"));
        for name in [
            "getOrder",
            "GETorder",
            "__list__files",
            "searchFlights",
            "Search",
            "getter",
            "ls",
            "ÉditFile",
            "\u{212a}ask",
            "As\u{212a}",
            "read-file",
            "",
            "__",
            "x1Get",
            "calc2Total",
        ] {
            let slow = name_words(name)
                .first()
                .is_some_and(|w| READ_VERBS.contains(&w.as_str()));
            assert_eq!(is_read_only_tool(name), slow, "{name}");
        }
        assert!(!is_read_only_tool("cancel_reservation"));
    }

    #[test]
    fn facts_are_extracted() {
        let f = numeric_facts("The total population is 4,200. Remaining balance: $55.");
        let keys: Vec<&str> = f.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["total population", "remaining balance (money)"]);
        assert!((f[0].value - 4200.0).abs() < 1e-9);
        assert!(numeric_facts("It is 4 o'clock").is_empty());
        assert!(numeric_facts("").is_empty());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code("exitcode: 1 (execution failed)"), Some(1));
        assert_eq!(exit_code("exitcode: 0\nCode output: 4"), Some(0));
        assert_eq!(exit_code("no"), None);
    }

    #[test]
    fn sentences_split() {
        let t = "One. Two is 3.5 here! Three?\nFour";
        let s: Vec<&str> = sentences(t).iter().map(|&(a, b)| t[a..b].trim()).collect();
        assert_eq!(s, ["One.", "Two is 3.5 here!", "Three?", "Four"]);
        assert_eq!(sentence_at(t, 7), "Two is 3.5 here!");
    }

    /// Every detector built on these helpers survives odd and large inputs: a single span,
    /// empty texts, multi-byte text, a huge message full of pattern matches, thousands of
    /// spans.
    #[test]
    fn batch_is_robust() {
        use pisama_trace::{Payload, Span, ToolCall, Trace};
        let ids = [
            "contradiction",
            "disobey-task-constraints",
            "fabricated-data",
            "fact-drift",
            "incorrect-verification",
            "missing-confirmation",
            "no-verification",
            "reasoning-action-mismatch",
            "task-derailment",
            "user-frustration",
        ];
        let detectors: Vec<_> = crate::detectors::all()
            .into_iter()
            .filter(|d| ids.contains(&d.id()))
            .collect();
        assert_eq!(detectors.len(), ids.len());
        let text = |kind: SpanKind, t: &str, k: usize| Span {
            kind,
            agent: Some(format!("agent{}", k % 3)),
            output: Some(Box::new(Payload::text(t))),
            step: Some(k as u32),
            tool: ((kind == SpanKind::Tool).then(|| ToolCall {
                name: "cancel_order".into(),
                arguments: serde_json::json!({"id": "A1B2"}),
                ..ToolCall::default()
            }))
            .map(Box::new),
            ..Span::default()
        };
        let huge = "Let's assume the total is 5. I have verified it is correct. I will cancel it. \
                    The seat is not available. ```x = 1``` é🙂 "
            .repeat(3000);
        let mut big = vec![text(
            SpanKind::Human,
            "Reply in at most 3 words, in JSON.",
            0,
        )];
        for k in 1..3000 {
            let kind = [SpanKind::Llm, SpanKind::Tool, SpanKind::Human][k % 3];
            let t = match k % 7 {
                0 => String::new(),
                1 if k == 1 => huge.clone(),
                2 => "{\"flight_number\": \"HAT1\", \"total_price\": 5}".to_owned(),
                _ => format!("The total price is {k}. I said that's not what I asked. é"),
            };
            big.push(text(kind, &t, k));
        }
        let cases = [
            Trace::default(),
            Trace {
                spans: vec![text(SpanKind::Llm, "I have verified it.", 0)],
                ..Trace::default()
            },
            Trace {
                spans: big,
                task: Some("Reply in at most 3 words, in JSON.".into()),
                ..Trace::default()
            },
        ];
        for (n, trace) in cases.iter().enumerate() {
            let view = TraceView::new(trace);
            for d in &detectors {
                let hits = d.detect(&view, &crate::catalog::Params::default());
                if n == 0 {
                    assert!(hits.is_empty(), "{} fired on an empty trace", d.id());
                }
                for h in hits {
                    assert!(
                        (0.0..=1.0).contains(&h.score),
                        "{}: score {}",
                        d.id(),
                        h.score
                    );
                }
            }
        }
    }
}
