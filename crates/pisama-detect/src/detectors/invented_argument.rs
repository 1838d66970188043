//! A state-changing call carries an identifier, date or amount that appears nowhere earlier in
//! the run: not in what the user or system said, not in any tool result, not in an earlier
//! call. The agent made it up (a payment id pieced together from "my card ending 7334", a
//! charge it computed and never showed), and the action is executed with it.
//!
//! Grounding is checked token by token: every earlier text is cut into words (identifier
//! characters kept together: `credit_card_4421486`, `2024-05-20`) whose alphanumeric core goes
//! into a set, with its numbers and calendar dates; a value is grounded when its core, its
//! number or its date is in those sets. The output of the message that makes the call is not
//! grounding: a value announced in the same breath was never confirmed by anyone.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::catalog::Params;
use crate::detectors::dialogue::number_key;
use crate::detectors::revised_state_change::arguments;
use crate::detectors::tool_facts::tool_action_stem;
use crate::detectors::tool_facts::{caller_message, failure_text, result_text, tool_name};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::numbers;
use crate::view::{Idx, TraceView};

pub(crate) struct InventedArgument;

impl Detector for InventedArgument {
    fn id(&self) -> &'static str {
        "invented-argument"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_amount = params.f64("min_amount", 10.0);
        let max_values = params.usize("max_values", 3).max(1);
        let actions: Vec<Idx> = view
            .tools()
            .iter()
            .copied()
            .filter(|&t| tool_action_stem(view, t).is_some())
            .collect();
        if actions.is_empty() {
            return Vec::new();
        }
        let callers: HashSet<Idx> = actions
            .iter()
            .filter_map(|&t| caller_message(view, t))
            .collect();
        // Only the values some action carries are ever looked up: index just those, so a long
        // run's text is scanned without building a set of every word in it.
        let mut known = Known::default();
        for &t in &actions {
            let mut values = Vec::new();
            candidates(&arguments(view, t), String::new(), min_amount, &mut values);
            for c in values {
                known.want(&c.value);
            }
        }
        if known.wants_nothing() {
            return Vec::new();
        }
        let mut next = 0;
        let mut hits = Vec::new();
        for &t in &actions {
            // Everything before the call grounds it (the arena is in time order).
            while next < t {
                known.add_span(view, next, callers.contains(&next));
                next += 1;
            }
            let args = arguments(view, t);
            let mut invented = Vec::new();
            candidates(&args, String::new(), min_amount, &mut invented);
            invented.retain(|c| !known.grounds(&c.value));
            // The call itself (and its result) grounds later calls: repeating a value the
            // agent already used is not a new invention.
            known.add_span(view, t, false);
            next = t + 1;
            if invented.is_empty() {
                continue;
            }
            let has_id = invented
                .iter()
                .any(|c| !matches!(c.value, Value::Number(_)));
            let listed = invented
                .iter()
                .take(max_values)
                .map(|c| format!("`{}` = {}", c.path, c.value))
                .collect::<Vec<_>>()
                .join(", ");
            let name = tool_name(view, t);
            let went_through = failure_text(view, t).is_none();
            // A rejected call did nothing with the made-up value: the tool caught it, so the
            // finding is one step milder (the attempt still shows the agent composes values).
            let severity = match (has_id, went_through) {
                (true, true) => None,
                (true, false) | (false, true) => Some(Severity::Low),
                (false, false) => Some(Severity::Info),
            };
            hits.push(Hit {
                score: if has_id { 0.65 } else { 0.5 },
                severity,
                summary: format!(
                    "`{name}` {} with {listed}, which appear{} nowhere earlier in the run",
                    if went_through {
                        "was executed"
                    } else {
                        "was called"
                    },
                    if invented.len() == 1 { "s" } else { "" }
                ),
                at: Some(t),
                evidence: vec![HitEvidence::quoted(
                    t,
                    "the call with values nobody gave",
                    listed.clone(),
                )],
                ..Hit::default()
            });
        }
        hits
    }
}

/// A value from a call's arguments that needs a source.
struct Candidate {
    path: String,
    value: Value,
}

/// Leaves worth checking: identifier-like strings (one token holding a digit: ids, codes,
/// dates, card numbers) and numbers of at least `min_amount` (amounts, ids). Free text,
/// words without digits (enumerations a model may paraphrase), small counts, booleans and
/// file paths (a new file's name is created, not invented) are not checked.
fn candidates(v: &Value, path: String, min_amount: f64, out: &mut Vec<Candidate>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                candidates(x, sub, min_amount, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                candidates(x, format!("{path}[{i}]"), min_amount, out);
            }
        }
        Value::String(s) if is_identifier_like(s) => out.push(Candidate {
            path,
            value: v.clone(),
        }),
        Value::Number(n) if n.as_f64().is_some_and(|x| x.abs() >= min_amount) => {
            out.push(Candidate {
                path,
                value: v.clone(),
            });
        }
        _ => {}
    }
}

fn is_identifier_like(s: &str) -> bool {
    static FILE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\.[a-z][a-z0-9]{0,4}$").expect("valid regex"));
    let s = s.trim();
    (4..=64).contains(&s.len())
        && s.bytes().any(|b| b.is_ascii_digit())
        && !s.contains(char::is_whitespace)
        && !s.contains(['/', '\\'])
        && !FILE.is_match(s)
        && core(s).len() >= 4
}

/// The lower-case alphanumeric core of a word: `Credit_Card-7334` → `creditcard7334`.
fn core(word: &str) -> String {
    word.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What the run has shown so far, of the values actions carry.
#[derive(Default)]
struct Known {
    words: HashSet<String>,
    numbers: HashSet<i64>,
    /// (month, day) of dates mentioned, in any common spelling.
    dates: HashSet<(u32, u32)>,
    /// The values [`Known::grounds`] will be asked about; nothing else is recorded.
    wanted_words: HashSet<String>,
    wanted_numbers: HashSet<i64>,
    wanted_dates: HashSet<(u32, u32)>,
}

impl Known {
    /// Registers a value that will be looked up, under every key `grounds` checks.
    fn want(&mut self, value: &Value) {
        match value {
            Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    self.wanted_numbers.insert(number_key(x));
                }
                self.wanted_words.insert(n.to_string());
            }
            Value::String(s) => {
                self.wanted_words.insert(core(s));
                if let Some(d) = iso_date(s) {
                    self.wanted_dates.insert(d);
                }
            }
            _ => {}
        }
    }

    fn wants_nothing(&self) -> bool {
        self.wanted_words.is_empty() && self.wanted_numbers.is_empty()
    }

    fn add_span(&mut self, view: &TraceView<'_>, i: Idx, is_caller: bool) {
        let span = view.span(i);
        if let Some(input) = &span.input {
            self.add_text(&input.text);
        }
        if !is_caller && let Some(output) = &span.output {
            self.add_text(&output.text);
        }
        if let Some(call) = &span.tool {
            self.add_text(&call.arguments.to_string());
            if span.output.is_none() {
                self.add_text(result_text(view, i));
            }
        }
    }

    fn add_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut key = String::new();
        for word in text.split(|c: char| !(c.is_alphanumeric() || "_-.:@#+".contains(c))) {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            if word.is_empty() {
                continue;
            }
            key.clear();
            key.extend(
                word.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase()),
            );
            self.note_word(&key);
            // The parts of a compound word count on their own too: `card_4421486` shows 4421486.
            if word.contains(|c: char| !c.is_alphanumeric()) {
                for part in word.split(|c: char| !c.is_alphanumeric()) {
                    if !part.is_empty() {
                        key.clear();
                        key.push_str(part);
                        key.make_ascii_lowercase();
                        self.note_word(&key);
                    }
                }
            }
        }
        if !self.wanted_numbers.is_empty() {
            for n in numbers(text) {
                let k = number_key(n);
                if self.wanted_numbers.contains(&k) {
                    self.numbers.insert(k);
                }
            }
        }
        if !self.wanted_dates.is_empty() {
            for d in dates(text) {
                if self.wanted_dates.contains(&d) {
                    self.dates.insert(d);
                }
            }
        }
    }

    fn note_word(&mut self, key: &str) {
        if self.wanted_words.contains(key) && !self.words.contains(key) {
            self.words.insert(key.to_owned());
        }
    }

    fn grounds(&self, value: &Value) -> bool {
        match value {
            Value::Number(n) => n.as_f64().is_some_and(|x| {
                self.numbers.contains(&number_key(x)) || self.words.contains(&n.to_string())
            }),
            Value::String(s) => {
                self.words.contains(&core(s))
                    || iso_date(s).is_some_and(|d| self.dates.contains(&d))
            }
            _ => true,
        }
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// (month, day) of an ISO date value (`2024-05-20`, `2024-05-20T10:00:00`).
fn iso_date(s: &str) -> Option<(u32, u32)> {
    static ISO: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^\d{4}-(\d{2})-(\d{2})").expect("valid regex"));
    let c = ISO.captures(s)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

/// Dates in free text: ISO, `MM/DD[/YYYY]`, `May 20[th]` and `20 May`.
fn dates(text: &str) -> Vec<(u32, u32)> {
    static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(?:\d{4}-(\d{1,2})-(\d{1,2})|(\d{1,2})/(\d{1,2})(?:/\d{2,4})?)\b")
            .expect("valid regex")
    });
    static NAMED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\b(?:(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b|(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)",
        )
        .expect("valid regex")
    });
    let month = |m: &str| {
        let m = m.to_ascii_lowercase();
        MONTHS.iter().position(|x| *x == m).map(|p| p as u32 + 1)
    };
    let mut out = Vec::new();
    if text.bytes().any(|b| b == b'-' || b == b'/') {
        for c in NUMERIC.captures_iter(text) {
            let (m, d) = match (c.get(1), c.get(2), c.get(3), c.get(4)) {
                (Some(m), Some(d), _, _) | (_, _, Some(m), Some(d)) => (m.as_str(), d.as_str()),
                _ => continue,
            };
            if let (Ok(m), Ok(d)) = (m.parse(), d.parse()) {
                out.push((m, d));
            }
        }
    }
    for c in NAMED.captures_iter(text) {
        let pair = match (c.get(1), c.get(2), c.get(3), c.get(4)) {
            (Some(m), Some(d), _, _) | (_, _, Some(d), Some(m)) => {
                month(m.as_str()).zip(d.as_str().parse().ok())
            }
            _ => None,
        };
        out.extend(pair);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_in_common_spellings() {
        assert_eq!(dates("born April 12, 2001"), [(4, 12)]);
        assert_eq!(dates("on the 3rd of June"), [(6, 3)]);
        assert_eq!(dates("2024-05-20 and 05/21/2024"), [(5, 20), (5, 21)]);
        assert_eq!(iso_date("2001-04-12"), Some((4, 12)));
    }

    #[test]
    fn identifiers_need_a_digit_and_no_path() {
        assert!(is_identifier_like("credit_card_7334"));
        assert!(is_identifier_like("2024-05-20"));
        assert!(!is_identifier_like("economy"));
        assert!(!is_identifier_like("reports/q3.md"));
        assert!(!is_identifier_like("summary_2024.csv"));
        assert!(!is_identifier_like("a b 12345"));
    }

    #[test]
    fn grounding_by_core_number_and_date() {
        let mut k = Known::default();
        for v in [
            json!(1204.5),
            json!("2024-05-20"),
            json!("7334"),
            json!("credit_card_7334x"),
            json!(348),
        ] {
            k.want(&v);
        }
        k.add_text("My card is Credit-Card 7334, total $1,204.50, flying May 20th.");
        assert!(k.grounds(&json!(1204.5)));
        assert!(k.grounds(&json!("2024-05-20")));
        assert!(k.grounds(&json!("7334")));
        assert!(!k.grounds(&json!("credit_card_7334x")));
        assert!(!k.grounds(&json!(348)));
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            InventedArgument
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
