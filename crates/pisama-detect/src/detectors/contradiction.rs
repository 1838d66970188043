//! Two claims in the run contradict each other:
//!
//! - an agent restates a field of the tool result it just received with a different value
//!   (`"cabin": "economy"` → "your cabin is business"), a value that appears nowhere in that
//!   result;
//! - an agent claims `<subject> is <state>` and later `<subject> is not <state>` (or the
//!   reverse) with no tool result or user message in between that could have changed it.
//!
//! Claims are indexed by key in maps, so the scan is linear.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    MAX_MATCHES, Speaker, format_number, in_code, is_stopword, key_of, name_words, speaker,
    timeline,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView, tokenize};

pub(crate) struct Contradiction;

/// States that are either true or false of a subject.
const STATES: &[&str] = &[
    "available",
    "possible",
    "valid",
    "correct",
    "eligible",
    "refundable",
    "allowed",
    "permitted",
    "supported",
    "required",
    "included",
    "free",
    "active",
    "cancelled",
    "canceled",
    "confirmed",
    "complete",
    "completed",
    "open",
    "closed",
    "accurate",
    "reachable",
    "enabled",
];

/// Words in a key that mark a value as a new or wished-for one, not a restatement.
const CHANGE_WORDS: &[&str] = &[
    "new",
    "updated",
    "requested",
    "desired",
    "target",
    "proposed",
    "previous",
    "old",
    "original",
    "preferred",
    "selected",
    "chosen",
    "alternative",
    "other",
    "remaining",
];

fn value_claim() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?i)\b([a-z][a-z'-]*(?:\s+[a-z][a-z'-]*){0,2}?)\s*(?:\bis\b|\bwas\b|:)\s*\**\s*["'`]?\$?([a-z0-9][a-z0-9_.-]*)"#)
            .expect("valid regex")
    })
}

fn state_claim() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b([a-z][a-z'-]*(?:\s+[a-z][a-z0-9'-]*){0,3}?)\s+(?:is|are)\s+(not\s+|no longer\s+|un)?([a-z]+)\b")
            .expect("valid regex")
    })
}

/// `<key> is <value>` claims of a text: (key words, value, byte range).
fn value_claims(text: &str) -> Vec<(Vec<String>, String, usize, usize)> {
    let mut out = Vec::new();
    for c in value_claim().captures_iter(text).take(MAX_MATCHES) {
        let (Some(all), Some(key), Some(value)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        if in_code(text, all.start()) {
            continue;
        }
        let words: Vec<String> = key
            .as_str()
            .split_whitespace()
            .map(|w| singular(&w.to_lowercase()))
            .collect();
        if words.iter().any(|w| CHANGE_WORDS.contains(&w.as_str())) {
            continue;
        }
        let v = value.as_str().trim_end_matches(['.', ',']).to_lowercase();
        if v.is_empty() || is_stopword(&v) {
            continue;
        }
        out.push((words, v, all.start(), value.end()));
    }
    out
}

fn singular(w: &str) -> String {
    if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_owned()
    } else {
        w.to_owned()
    }
}

/// Scalar leaves of a JSON value by their key's words: `"cabin_class": "economy"` →
/// `cabin class` → `{economy}`.
fn leaves(value: &serde_json::Value, key: Option<&str>, out: &mut BTreeMap<String, Vec<String>>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                leaves(v, Some(k), out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| leaves(v, key, out)),
        scalar => {
            let Some(k) = key else { return };
            let rendered = match scalar {
                serde_json::Value::String(s) => s.to_lowercase(),
                serde_json::Value::Number(n) => {
                    n.as_f64().map_or_else(|| n.to_string(), format_number)
                }
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return,
            };
            let words: Vec<String> = name_words(k).iter().map(|w| singular(w)).collect();
            if !words.is_empty() {
                out.entry(words.join(" ")).or_default().push(rendered);
            }
        }
    }
}

/// The tool result of a span as JSON, if it is JSON.
fn tool_json<'t>(view: &TraceView<'t>, i: Idx) -> Option<Cow<'t, serde_json::Value>> {
    let span = view.span(i);
    if let Some(v) = span.tool.as_ref().and_then(|t| t.result.as_ref()) {
        if let serde_json::Value::String(s) = v {
            return serde_json::from_str(s).ok().map(Cow::Owned);
        }
        return Some(Cow::Borrowed(v));
    }
    span.output.as_ref().and_then(|p| {
        p.json
            .as_ref()
            .map(Cow::Borrowed)
            .or_else(|| serde_json::from_str(&p.text).ok().map(Cow::Owned))
    })
}

/// A state claim remembered for later comparison.
struct StateClaim {
    positive: bool,
    span: Idx,
    quote: String,
    /// Position in the timeline, to see whether anything came in between.
    at: usize,
}

impl Detector for Contradiction {
    fn id(&self) -> &'static str {
        "contradiction"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_hits = params.usize("max_findings", 3).max(1);
        let line = timeline(view);
        let mut hits = Vec::new();
        // Fields of the tool results since the agent last spoke: what its next message answers.
        let mut fresh: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut fresh_tool: Option<Idx> = None;
        // Every token any tool, user or system text has shown so far: a value from there may
        // be about something else, but it is not invented.
        // (As a table over the trace's vocabulary: no copy of every word, no hashing.)
        let mut seen = vec![false; view.vocabulary_len()];
        let see = |seen: &mut Vec<bool>, i: Idx| {
            for &w in view.words(i) {
                seen[w as usize] = true;
            }
        };
        // Words that can be the state of a claim (`available`, `unavailable`): a message
        // without any has no state claim, and the claim pattern need not run.
        let mut state_word = vec![false; view.vocabulary_len()];
        for st in STATES {
            for w in [(*st).to_owned(), format!("un{st}")] {
                if let Some(id) = view.exact_word_id(&w) {
                    state_word[id as usize] = true;
                }
            }
        }
        let mut states: HashMap<(String, String), StateClaim> = HashMap::new();
        let mut last_input: usize = 0;
        for (pos, &i) in line.iter().enumerate() {
            match speaker(view, i) {
                Speaker::Tool => {
                    last_input = pos;
                    see(&mut seen, i);
                    if let Some(j) = tool_json(view, i) {
                        leaves(&j, None, &mut fresh);
                        fresh_tool = Some(i);
                    }
                }
                Speaker::User | Speaker::System => {
                    last_input = pos;
                    see(&mut seen, i);
                }
                Speaker::Agent => {
                    let text = view.text(i);
                    if text.trim().is_empty() {
                        continue;
                    }
                    if let Some(tool) = fresh_tool.take()
                        && let Some(h) = against_tool(view, i, text, tool, &fresh, &seen)
                    {
                        hits.push(h);
                    }
                    fresh.clear();
                    // A claim's state is a whole word of the text (or one after `un`), so on
                    // ASCII text (where words and the pattern's letters agree) a message
                    // without a state word has no claim.
                    let may_claim =
                        !text.is_ascii() || view.words(i).iter().any(|&w| state_word[w as usize]);
                    let claims = if may_claim {
                        state_claims(text)
                    } else {
                        Vec::new()
                    };
                    for (key, positive, quote) in claims {
                        let slot = (key.0.clone(), key.1.clone());
                        match states.get(&slot) {
                            Some(old) if old.positive != positive && old.at > last_input => {
                                hits.push(state_hit(view, &key, old, i, &quote));
                                states.remove(&slot);
                            }
                            _ => {
                                states.insert(
                                    slot,
                                    StateClaim {
                                        positive,
                                        span: i,
                                        quote,
                                        at: pos,
                                    },
                                );
                            }
                        }
                    }
                }
            }
            if hits.len() >= max_hits {
                hits.truncate(max_hits);
                break;
            }
        }
        hits
    }
}

/// `((subject, state), positive, quote)` claims of a text.
fn state_claims(text: &str) -> Vec<((String, String), bool, String)> {
    let mut out = Vec::new();
    for c in state_claim().captures_iter(text).take(MAX_MATCHES) {
        let (Some(all), Some(subject), Some(state)) = (c.get(0), c.get(1), c.get(3)) else {
            continue;
        };
        if in_code(text, all.start()) {
            continue;
        }
        let state = state.as_str().to_lowercase();
        if !STATES.contains(&state.as_str()) {
            continue;
        }
        let Some(key) = key_of(subject.as_str()) else {
            continue;
        };
        let negated = c.get(2).is_some();
        out.push(((key, state), !negated, all.as_str().to_owned()));
    }
    out
}

fn against_tool(
    view: &TraceView<'_>,
    msg: Idx,
    text: &str,
    tool: Idx,
    fields: &BTreeMap<String, Vec<String>>,
    seen: &[bool],
) -> Option<Hit> {
    for (words, value, start, end) in value_claims(text) {
        // The longest suffix of the claim's key that names a field of the results. One-word
        // field names (`amount`, `date`) are too generic to pin a claim to a field.
        let field = (2..=words.len().min(3)).rev().find_map(|n| {
            let key = words[words.len() - n..].join(" ");
            fields.get(&key).map(|v| (key, v))
        });
        let Some((key, values)) = field else {
            continue;
        };
        let mut distinct: Vec<&String> = values.iter().collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() > 3 || distinct.iter().any(|v| **v == value) {
            continue;
        }
        // Only values of the same shape are comparable: numbers with numbers, ids with ids.
        // Words are too often paraphrases ("Detroit" for "DTW", "purchased" for "yes").
        let kind = |v: &str| {
            if v.parse::<f64>().is_ok() {
                1
            } else if v.chars().any(|c| c.is_ascii_digit()) && v.chars().any(char::is_alphabetic) {
                2
            } else {
                0
            }
        };
        let k = kind(&value);
        if k == 0 || distinct.iter().any(|v| kind(v) != k) {
            continue;
        }
        if let Ok(n) = value.parse::<f64>()
            && distinct
                .iter()
                .filter_map(|v| v.parse::<f64>().ok())
                .any(|x| (x - n).abs() < 1e-9)
        {
            continue;
        }
        // A value shown anywhere before may be about something else; only an invented one
        // is a contradiction.
        if tokenize(&value).all(|t| view.exact_word_id(t).is_some_and(|id| seen[id as usize])) {
            continue;
        }
        let quote = text.get(start..end).unwrap_or("").trim().to_owned();
        let shown: Vec<&str> = distinct.iter().map(|v| v.as_str()).collect();
        return Some(Hit {
            score: if distinct.len() == 1 { 0.75 } else { 0.55 },
            severity: Some(Severity::Medium),
            summary: format!(
                "`{}` says {key} is {value}, but the tool results it just received say {}",
                view.agent(msg),
                shown.join(" / ")
            ),
            at: Some(msg),
            evidence: vec![
                HitEvidence::quoted(msg, "claim", quote),
                HitEvidence::quoted(tool, "tool result", format!("{key}: {}", shown.join(", "))),
            ],
            ..Hit::default()
        });
    }
    None
}

fn state_hit(
    view: &TraceView<'_>,
    key: &(String, String),
    old: &StateClaim,
    at: Idx,
    quote: &str,
) -> Hit {
    Hit {
        score: if view.agent(old.span) == view.agent(at) {
            0.6
        } else {
            0.5
        },
        severity: Some(Severity::Medium),
        summary: format!(
            "`{}` says {} is {}{}, after it was said to be {}{}, with nothing in between that could change it",
            view.agent(at),
            key.0,
            if old.positive { "not " } else { "" },
            key.1,
            if old.positive { "" } else { "not " },
            key.1
        ),
        at: Some(at),
        evidence: vec![
            HitEvidence::quoted(old.span, "first claim", old.quote.clone()),
            HitEvidence::quoted(at, "contradicting claim", quote.to_owned()),
        ],
        ..Hit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims() {
        let v = value_claims("Your cabin is business and the status: active.");
        assert_eq!(v[0].0, ["your", "cabin"]);
        assert_eq!(v[0].1, "business");
        let s = state_claims("The seat is not available. The refund is possible.");
        assert_eq!(s[0].0, ("seat".to_owned(), "available".to_owned()));
        assert!(!s[0].1);
        assert!(s[1].1);
        assert!(value_claims("").is_empty());
    }

    #[test]
    fn json_leaves() {
        let mut m = BTreeMap::new();
        leaves(
            &serde_json::json!({"cabin_class": "Economy", "flights": [{"price": 120}, {"price": 99}]}),
            None,
            &mut m,
        );
        assert_eq!(m.get("cabin class"), Some(&vec!["economy".to_owned()]));
        assert_eq!(
            m.get("price"),
            Some(&vec!["120".to_owned(), "99".to_owned()])
        );
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            Contradiction
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
