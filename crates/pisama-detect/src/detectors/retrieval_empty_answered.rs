//! A search, retrieval or lookup came back empty, and the agent answered anyway with specific
//! facts (numbers, codes, names) that appear nowhere earlier in the run: the answer was made up.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use regex::Regex;
use serde_json::Value;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::numbers;
use crate::view::{TraceView, tokenize};
use pisama_trace::{Span, SpanKind};

pub(crate) struct RetrievalEmptyAnswered;

/// Tool names that look up information rather than act.
fn is_lookup(span: &Span) -> bool {
    if span.kind == SpanKind::Retrieval {
        return true;
    }
    if span.kind != SpanKind::Tool && span.tool.is_none() {
        return false;
    }
    let name = span
        .tool
        .as_ref()
        .map_or(span.name.as_str(), |t| t.name.as_str());
    // Most names are lower case already; copy only when not.
    let name: std::borrow::Cow<'_, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        name.to_ascii_lowercase().into()
    } else {
        name.into()
    };
    [
        "search",
        "retriev",
        "lookup",
        "look_up",
        "find",
        "query",
        "get",
        "fetch",
        "list",
        "read",
        "browse",
        "kb",
        "knowledge",
        "doc",
        "rag",
        "select",
        "sql",
        "vector",
        "recall",
        "memory",
    ]
    .iter()
    .any(|k| name.contains(k))
}

fn empty_text() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)^\W*(?:error:?\s*)?(?:(?:no|0|zero)\s+(?:results?|matches|matching\s+\w+|documents?|records?|items?|hits|entries|rows|data|pages?|passages?)(?:\s+(?:were\s+)?(?:found|returned|available))?|(?:nothing|none)\s+(?:was\s+)?found|not\s+found|no\s+such\s+\w+|[\w\s]{0,40}\b(?:not\s+found|does\s+not\s+exist|could\s+not\s+be\s+found)|could\s*n[o']t\s+find[\w\s]*|empty(?:\s+result)?)\W*$").expect("valid regex")
    })
}

/// Whether a JSON result holds nothing: empty, null, or only empty collections and zero
/// counts.
fn json_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => {
            let mut any_collection = false;
            for (k, val) in o {
                let k = k.to_ascii_lowercase();
                match val {
                    Value::Array(a) if a.is_empty() => any_collection = true,
                    Value::Object(inner) if inner.is_empty() => any_collection = true,
                    Value::Number(n)
                        if ["total", "count", "num", "hits", "found", "size"]
                            .iter()
                            .any(|c| k.contains(c)) =>
                    {
                        if n.as_f64() != Some(0.0) {
                            return false;
                        }
                    }
                    // Metadata (query echo, status) does not make a result non-empty.
                    Value::Null | Value::String(_) | Value::Bool(_) | Value::Number(_) => {}
                    Value::Array(_) | Value::Object(_) => return false,
                }
            }
            any_collection || o.is_empty()
        }
        _ => false,
    }
}

/// The empty result as quoted, if the lookup returned nothing.
fn empty_result(span: &Span) -> Option<String> {
    let text = span
        .output
        .as_ref()
        .map(|p| p.text.trim())
        .or_else(|| span.error.as_ref().map(|e| e.message.trim()))
        .unwrap_or("");
    if let Some(Value::Object(_) | Value::Array(_) | Value::Null) =
        span.tool.as_ref().and_then(|t| t.result.as_ref())
        && span
            .tool
            .as_ref()
            .and_then(|t| t.result.as_ref())
            .is_some_and(json_empty)
    {
        return Some(if text.is_empty() {
            "(empty)".to_owned()
        } else {
            text.to_owned()
        });
    }
    if matches!(text, "" | "[]" | "{}" | "null" | "None" | "\"\"" | "''") {
        // An absent output on a span that reports none is missing data, not an empty result.
        return (span.output.is_some() || span.tool.as_ref().is_some_and(|t| t.result.is_some()))
            .then(|| {
                if text.is_empty() {
                    "(empty)".to_owned()
                } else {
                    text.to_owned()
                }
            });
    }
    if text.len() <= 200 && empty_text().is_match(text) {
        return Some(text.to_owned());
    }
    if let Ok(v) = serde_json::from_str::<Value>(text)
        && json_empty(&v)
    {
        return Some(text.to_owned());
    }
    None
}

/// An answer that says the lookup found nothing (honest) rather than presenting facts.
fn hedged() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:no\s+results?|could\s*n[o']t\s+(?:find|locate)|unable\s+to\s+(?:find|locate|retrieve)|did\s*n[o']t\s+(?:find|return|turn\s+up)|(?:was|were|is|are)\s+not\s+found|not\s+found|no\s+(?:information|data|records?|matches|matching|documents?|entries|flights?|availability)|does\s*n[o']t\s+(?:exist|appear)|does\s+not\s+(?:exist|appear)|there\s+(?:is|are|were|was)\s+no|i\s+(?:don't|do\s+not)\s+have|(?:isn't|is\s+not|aren't|are\s+not)\s+available|unfortunately|nothing\s+(?:came\s+up|was\s+found)|came\s+back\s+empty|returned\s+(?:nothing|no)|double-check|could\s+you\s+(?:confirm|verify|provide|check))\b").expect("valid regex")
    })
}

/// Words that start sentences or are too common to be a fact on their own.
const COMMON: &[&str] = &[
    "i",
    "the",
    "a",
    "an",
    "you",
    "your",
    "we",
    "our",
    "it",
    "this",
    "that",
    "these",
    "here",
    "there",
    "yes",
    "no",
    "please",
    "thanks",
    "thank",
    "sure",
    "ok",
    "okay",
    "hello",
    "hi",
    "dear",
    "based",
    "according",
    "also",
    "however",
    "note",
    "let",
    "if",
    "for",
    "in",
    "on",
    "at",
    "to",
    "and",
    "or",
    "but",
    "so",
    "as",
    "with",
    "from",
    "by",
    "of",
    "is",
    "are",
    "was",
    "be",
    "my",
    "me",
    "of",
    "great",
    "good",
    "perfect",
    "done",
    "summary",
    "answer",
    "result",
    "results",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Specific facts in an answer that the run never mentioned before: tokens with digits
/// (amounts, times, codes such as `AZ610` or `WR-7781`) and capitalised names not at a
/// sentence start.
fn novel_facts(
    text: &str,
    known_word: impl Fn(&str) -> bool,
    known_number: impl Fn(i64) -> bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for_each_candidate(text, |word, starts| {
        if out.iter().any(|o| o == word) {
            return;
        }
        let lower = word.to_lowercase();
        let words_known = tokenize(&lower).all(&known_word);
        if word.chars().any(|c| c.is_ascii_digit()) {
            let nums = numbers(word);
            // Small counts ("2 bags", "step 3") are not distinctive.
            let distinctive = nums
                .iter()
                .any(|n| n.abs() >= 10.0 && !known_number(number_key(*n)));
            if distinctive && !words_known {
                out.push(word.to_owned());
            }
            return;
        }
        let capitalised = word.chars().next().is_some_and(char::is_uppercase);
        if capitalised
            && !starts
            && word.len() >= 3
            && !COMMON.contains(&lower.as_str())
            && !words_known
        {
            out.push(word.to_owned());
        }
    });
    out
}

/// Every word of an answer that [`novel_facts`] considers, with whether it starts a
/// sentence.
fn for_each_candidate<'a>(text: &'a str, mut f: impl FnMut(&'a str, bool)) {
    let mut sentence_start = true;
    for raw in text.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let starts = sentence_start;
        sentence_start = raw.ends_with(['.', '!', '?', ':']) || raw.ends_with(".\"");
        if !word.is_empty() {
            f(word, starts);
        }
    }
}

fn number_key(n: f64) -> i64 {
    (n * 100.0).round() as i64
}

/// Where the words and numbers an answer is checked against first appear in the run: the
/// position of the text (0 for the task, `2i + 1` for span `i`'s input, `2i + 2` for its
/// output). Only the words asked about are looked up, and reading stops at `last`.
#[derive(Debug, Default)]
struct FirstSeen {
    words: FxHashMap<String, usize>,
    numbers: FxHashMap<i64, usize>,
}

impl FirstSeen {
    fn find<'a>(&mut self, texts: impl Iterator<Item = (usize, &'a str)>) {
        let mut pending = self.words.values().filter(|&&p| p == usize::MAX).count()
            + self.numbers.values().filter(|&&p| p == usize::MAX).count();
        let mut buf = String::new();
        for (pos, text) in texts {
            if pending == 0 {
                return;
            }
            let mut note = |word: &str, pending: &mut usize| {
                if let Some(p) = self.words.get_mut(word)
                    && *p == usize::MAX
                {
                    *p = pos;
                    *pending -= 1;
                }
            };
            if text.is_ascii() {
                // ASCII lower-casing does not move word boundaries: the words of the text
                // lower-cased one at a time are the words of the lower-cased text.
                for w in tokenize(text) {
                    buf.clear();
                    buf.extend(w.chars().map(|c| c.to_ascii_lowercase()));
                    note(&buf, &mut pending);
                }
            } else {
                for w in tokenize(&text.to_lowercase()) {
                    note(w, &mut pending);
                }
            }
            if !self.numbers.is_empty() && text.bytes().any(|b| b.is_ascii_digit()) {
                for n in numbers(text) {
                    if let Some(p) = self.numbers.get_mut(&number_key(n))
                        && *p == usize::MAX
                    {
                        *p = pos;
                        pending -= 1;
                    }
                }
            }
        }
    }
}

impl Detector for RetrievalEmptyAnswered {
    fn id(&self) -> &'static str {
        "retrieval-empty-answered"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_facts = params.usize("min_facts", 2).max(1);
        // First the answers to check: (span, answer, empty lookup, its quote). What the run
        // said before each is looked up afterwards, for the words those answers use only.
        let mut checks: Vec<(usize, &str, usize, String)> = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        for (i, span) in view.trace.spans.iter().enumerate() {
            if is_lookup(span) {
                if let Some(quote) = empty_result(span) {
                    pending.get_or_insert((i, quote));
                } else if span
                    .output
                    .as_ref()
                    .is_some_and(|p| !p.text.trim().is_empty())
                    && !view.failed(i)
                {
                    // Real content arrived; the answer may rest on it.
                    pending = None;
                }
            } else if span.kind == SpanKind::Tool
                && !view.failed(i)
                && span
                    .output
                    .as_ref()
                    .is_some_and(|p| !p.text.trim().is_empty())
            {
                pending = None;
            }
            let answer = (span.kind == SpanKind::Llm || span.kind == SpanKind::Agent)
                .then_some(span.output.as_ref())
                .flatten()
                .map(|p| p.text.as_str())
                .filter(|t| !t.trim().is_empty());
            if let Some(text) = answer
                && let Some((empty_at, quote)) = pending.take()
                && !hedged().is_match(text)
            {
                checks.push((i, text, empty_at, quote));
            }
        }
        let Some(&(last, ..)) = checks.last() else {
            return Vec::new();
        };
        let mut seen = FirstSeen::default();
        for (_, text, _, _) in &checks {
            for_each_candidate(text, |word, _| {
                for t in tokenize(&word.to_lowercase()) {
                    seen.words.entry(t.to_owned()).or_insert(usize::MAX);
                }
                if word.chars().any(|c| c.is_ascii_digit()) {
                    for n in numbers(word) {
                        seen.numbers.entry(number_key(n)).or_insert(usize::MAX);
                    }
                }
            });
        }
        let spans = &view.trace.spans;
        let texts = view
            .trace
            .task
            .as_deref()
            .map(|t| (0, t))
            .into_iter()
            .chain((0..=last).flat_map(|i| {
                [(2 * i + 1, &spans[i].input), (2 * i + 2, &spans[i].output)]
                    .into_iter()
                    .filter_map(|(pos, p)| p.as_ref().map(|p| (pos, p.text.as_str())))
            }));
        seen.find(texts);
        let mut hits = Vec::new();
        for (i, text, empty_at, quote) in checks {
            // Known at span `i`: the task, every earlier text, and this span's input.
            let before = 2 * i + 1;
            let facts = novel_facts(
                text,
                |t| seen.words.get(t).is_some_and(|&p| p <= before),
                |n| seen.numbers.get(&n).is_some_and(|&p| p <= before),
            );
            if facts.len() >= min_facts {
                let tool = view.span(empty_at);
                let name = tool
                    .tool
                    .as_ref()
                    .map_or(tool.name.as_str(), |t| t.name.as_str());
                let shown: Vec<&str> = facts.iter().take(4).map(String::as_str).collect();
                hits.push(Hit {
                    score: (0.4 + 0.1 * facts.len() as f64).min(0.9),
                    severity: Some(if facts.len() >= 4 {
                        Severity::High
                    } else {
                        Severity::Medium
                    }),
                    summary: format!(
                        "`{name}` returned nothing, yet the next answer states {} specific facts found nowhere earlier in the run ({})",
                        facts.len(),
                        shown.join(", ")
                    ),
                    at: Some(i),
                    evidence: vec![
                        HitEvidence::quoted(empty_at, "the lookup came back empty", quote),
                        HitEvidence::quoted(
                            i,
                            "facts with no source in the run",
                            shown.join(", "),
                        ),
                    ],
                    ..Hit::default()
                });
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empties() {
        let mk = |out: &str| Span {
            kind: SpanKind::Tool,
            output: Some(Box::new(pisama_trace::Payload::text(out))),
            ..Span::default()
        };
        for e in [
            "[]",
            "No results found.",
            "{\"results\": [], \"total\": 0}",
            "Error: reservation ZZ99XY not found",
        ] {
            assert!(empty_result(&mk(e)).is_some(), "{e}");
        }
        for e in [
            "[{\"id\": 1}]",
            "Flight HAT001 departs 08:00",
            "{\"status\": \"ok\", \"items\": [1]}",
        ] {
            assert!(empty_result(&mk(e)).is_none(), "{e}");
        }
    }

    #[test]
    fn facts() {
        let known = |t: &str| ["flight", "the"].contains(&t);
        let f = novel_facts(
            "The flight HAT123 leaves at 14:35 from Gate 42 with Delta.",
            known,
            |_| false,
        );
        assert!(f.contains(&"HAT123".to_owned()));
        assert!(f.contains(&"Delta".to_owned()));
        assert!(novel_facts("", known, |_| false).is_empty());
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            RetrievalEmptyAnswered
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
