//! The final output violates an explicit, mechanically checkable constraint of the task: a
//! word, sentence or item limit, a required JSON format, a yes/no answer, a required language
//! or letter case, or a quoted word it must not use.
//!
//! Only constraints that can be checked without judgement are read; everything else in the
//! task is ignored.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{agent_messages, sentences, task, timeline};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView, tokenize};

pub(crate) struct DisobeyTaskConstraints;

/// A constraint read from the task, with the phrase that states it.
#[derive(Debug, Clone, PartialEq)]
enum Constraint {
    MaxWords(usize),
    ExactWords(usize),
    MaxSentences(usize),
    MaxItems(usize),
    Json,
    YesNo,
    Language(&'static str),
    Lowercase,
    Uppercase,
    Forbidden(String),
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

fn small_number(s: &str) -> Option<usize> {
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    s.parse()
        .ok()
        .or_else(|| words.iter().position(|w| w.eq_ignore_ascii_case(s)))
}

/// Stop words that identify a language in a short text.
const LANGUAGES: &[(&str, &[&str])] = &[
    (
        "English",
        &[
            "the", "and", "is", "of", "to", "in", "that", "it", "with", "for", "are", "this",
        ],
    ),
    (
        "French",
        &[
            "le", "la", "les", "et", "est", "des", "une", "dans", "pour", "que", "avec", "sont",
        ],
    ),
    (
        "Spanish",
        &[
            "el", "los", "las", "es", "del", "una", "por", "para", "con", "que", "está", "son",
        ],
    ),
    (
        "German",
        &[
            "der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "für", "sind", "auf",
        ],
    ),
    (
        "Italian",
        &[
            "il", "gli", "della", "sono", "una", "per", "che", "con", "non", "è", "anche", "alla",
        ],
    ),
    (
        "Portuguese",
        &[
            "os", "as", "uma", "para", "com", "não", "que", "são", "está", "pelo", "mais", "dos",
        ],
    ),
];

/// Constraints stated in a task.
fn constraints(task: &str) -> Vec<(Constraint, String)> {
    static WORDS: OnceLock<Regex> = OnceLock::new();
    static EXACT: OnceLock<Regex> = OnceLock::new();
    static SENTENCES: OnceLock<Regex> = OnceLock::new();
    static ITEMS: OnceLock<Regex> = OnceLock::new();
    static JSON: OnceLock<Regex> = OnceLock::new();
    static YESNO: OnceLock<Regex> = OnceLock::new();
    static LANGUAGE: OnceLock<Regex> = OnceLock::new();
    static CASE: OnceLock<Regex> = OnceLock::new();
    static FORBIDDEN: OnceLock<Regex> = OnceLock::new();
    let mut out = Vec::new();
    let num = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)";
    for c in re(&WORDS, &format!(r"(?i)\b(?:at most|no more than|fewer than|less than|under|a maximum of|maximum of|max|up to|not exceeding|within)\s+{num}\s+words\b|\b{num}\s+words\s+or\s+(?:less|fewer)\b")).captures_iter(task) {
        if let Some(n) = c.get(1).or_else(|| c.get(2)).and_then(|m| small_number(m.as_str())) {
            out.push((Constraint::MaxWords(n), c[0].to_owned()));
        }
    }
    for c in re(&EXACT, &format!(r"(?i)\b(?:exactly|in exactly)\s+{num}\s+words?\b|\b(?:answer|respond|reply)\s+(?:with|in)\s+(?:a single|one|a one)[- ]word\b|\b(?:single|one)[- ]word (?:answer|response|reply)\b")).captures_iter(task) {
        let n = c.get(1).and_then(|m| small_number(m.as_str())).unwrap_or(1);
        if !out.iter().any(|(k, _)| matches!(k, Constraint::MaxWords(_))) {
            out.push((Constraint::ExactWords(n), c[0].to_owned()));
        }
    }
    for c in re(
        &SENTENCES,
        &format!(r"(?i)\b(?:at most|no more than|exactly|in|within|up to)\s+{num}\s+sentences?\b"),
    )
    .captures_iter(task)
    {
        if let Some(n) = c.get(1).and_then(|m| small_number(m.as_str())) {
            out.push((Constraint::MaxSentences(n), c[0].to_owned()));
        }
    }
    for c in re(&ITEMS, &format!(r"(?i)\b(?:at most|no more than|exactly|up to)\s+{num}\s+(?:bullet points|bullets|items|points|options)\b")).captures_iter(task) {
        if let Some(n) = c.get(1).and_then(|m| small_number(m.as_str())) {
            out.push((Constraint::MaxItems(n), c[0].to_owned()));
        }
    }
    if let Some(m) = re(&JSON, r"(?i)\b(?:respond|reply|answer|output|return|format|give|provide)\b[^.\n]{0,40}\b(?:in|as)\s+(?:valid\s+|a\s+)?json\b|\bjson only\b|\bonly json\b|\bvalid json\b").find(task) {
        out.push((Constraint::Json, m.as_str().to_owned()));
    }
    if let Some(m) = re(&YESNO, r#"(?i)\banswer (?:only |just )?(?:with )?(?:a )?(?:simple )?(?:"?yes"? or "?no"?)|\b(?:respond|reply) (?:only )?with (?:"?yes"? or "?no"?)"#).find(task) {
        out.push((Constraint::YesNo, m.as_str().to_owned()));
    }
    if let Some(c) = re(&LANGUAGE, r"(?i)\b(?:respond|reply|answer|write|written)\b[^.\n]{0,20}\bin (English|French|Spanish|German|Italian|Portuguese)\b").captures(task)
        && let Some(lang) = LANGUAGES.iter().find(|(l, _)| l.eq_ignore_ascii_case(&c[1]))
    {
        out.push((Constraint::Language(lang.0), c[0].to_owned()));
    }
    if let Some(c) = re(
        &CASE,
        r"(?i)\b(?:all |only |entirely |in )(lower ?case|upper ?case|capital letters|caps)\b",
    )
    .captures(task)
    {
        let which = c[1].to_lowercase();
        let k = if which.starts_with("lower") {
            Constraint::Lowercase
        } else {
            Constraint::Uppercase
        };
        out.push((k, c[0].to_owned()));
    }
    for c in re(&FORBIDDEN, r#"(?i)\b(?:do not|don't|never|without)\s+(?:use|using|mention|mentioning|include|including|say|saying|write|writing)\s+(?:the\s+(?:word|phrase|term|name)\s+)?["“'‘`]([^"”'’`\n]{1,40})["”'’`]"#).captures_iter(task) {
        out.push((Constraint::Forbidden(c[1].to_lowercase()), c[0].to_owned()));
    }
    out
}

/// Text without code fences and the termination marker some frameworks append.
fn clean(text: &str) -> String {
    text.replace("TERMINATE", "").trim().to_owned()
}

fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .unwrap_or(t);
    t.strip_suffix("```").unwrap_or(t).trim()
}

/// Why the output breaks a constraint, or `None` when it holds. Returns a short description
/// and how clearly it is broken (0..1).
fn violation(c: &Constraint, output: &str) -> Option<(String, f64)> {
    let words = tokenize(output).count();
    match c {
        Constraint::MaxWords(n) => (words > *n).then(|| {
            let over = (words - n) as f64 / (*n).max(1) as f64;
            (
                format!("{words} words, limit {n}"),
                0.5 + over.min(1.0) * 0.4,
            )
        }),
        Constraint::ExactWords(n) => (words != *n && words > 0)
            .then(|| (format!("{words} words, asked for exactly {n}"), 0.55)),
        Constraint::MaxSentences(n) => {
            let count = sentences(output).len();
            (count > *n).then(|| (format!("{count} sentences, limit {n}"), 0.6))
        }
        Constraint::MaxItems(n) => {
            let count = output
                .lines()
                .map(str::trim_start)
                .filter(|l| {
                    l.starts_with("- ")
                        || l.starts_with("* ")
                        || l.starts_with("• ")
                        || l.split_once(['.', ')']).is_some_and(|(d, _)| {
                            !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())
                        })
                })
                .count();
            (count > *n).then(|| (format!("{count} items, limit {n}"), 0.6))
        }
        Constraint::Json => serde_json::from_str::<serde_json::Value>(strip_fences(output))
            .is_err()
            .then(|| ("not valid JSON".to_owned(), 0.8)),
        Constraint::YesNo => {
            let first = tokenize(&output.to_lowercase())
                .next()
                .map(str::to_owned)
                .unwrap_or_default();
            (!matches!(first.as_str(), "yes" | "no"))
                .then(|| ("does not answer yes or no".to_owned(), 0.6))
        }
        Constraint::Language(lang) => {
            let lower = output.to_lowercase();
            let hits = |list: &[&str]| tokenize(&lower).filter(|w| list.contains(w)).count();
            let wanted = LANGUAGES
                .iter()
                .find(|(l, _)| l == lang)
                .map_or(0, |(_, list)| hits(list));
            let other = LANGUAGES
                .iter()
                .filter(|(l, _)| l != lang)
                .map(|(l, list)| (hits(list), *l))
                .max();
            match other {
                Some((n, other)) if words >= 8 && n >= 3 && n > 2 * wanted.max(1) => {
                    Some((format!("written in {other}, not {lang}"), 0.65))
                }
                _ => None,
            }
        }
        Constraint::Lowercase => output
            .chars()
            .any(char::is_uppercase)
            .then(|| ("contains capital letters".to_owned(), 0.5)),
        Constraint::Uppercase => output
            .chars()
            .any(char::is_lowercase)
            .then(|| ("contains lower-case letters".to_owned(), 0.5)),
        Constraint::Forbidden(word) => output
            .to_lowercase()
            .contains(word.as_str())
            .then(|| (format!("uses \"{word}\""), 0.75)),
    }
}

impl Detector for DisobeyTaskConstraints {
    fn id(&self) -> &'static str {
        "disobey-task-constraints"
    }

    fn detect(&self, view: &TraceView<'_>, _params: &Params) -> Vec<Hit> {
        let line = timeline(view);
        let Some((task_span, task_text)) = task(view, &line) else {
            return Vec::new();
        };
        let wanted = constraints(&task_text);
        if wanted.is_empty() {
            return Vec::new();
        }
        let Some((out_span, output)) = final_output(view, &line, task_span) else {
            return Vec::new();
        };
        let broken: Vec<(String, String, f64)> = wanted
            .iter()
            .filter_map(|(c, phrase)| {
                violation(c, &output).map(|(why, s)| (phrase.clone(), why, s))
            })
            .collect();
        let Some(first) = broken.first() else {
            return Vec::new();
        };
        let miss: f64 = broken.iter().map(|b| 1.0 - b.2).product();
        let mut evidence = vec![HitEvidence::quoted(
            out_span,
            broken
                .iter()
                .map(|b| b.1.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            pisama_trace::util::truncate(&output, 160),
        )];
        if let Some(t) = task_span {
            evidence.push(HitEvidence::quoted(t, "the constraint", first.0.clone()));
        }
        vec![Hit {
            score: (1.0 - miss).min(0.95),
            severity: Some(if broken.len() >= 2 {
                Severity::High
            } else {
                Severity::Medium
            }),
            summary: format!(
                "the final output breaks the task's \"{}\" ({}){}",
                first.0.trim(),
                first.1,
                if broken.len() > 1 {
                    format!(" and {} more constraint(s)", broken.len() - 1)
                } else {
                    String::new()
                }
            ),
            at: Some(out_span),
            evidence,
            ..Hit::default()
        }]
    }
}

/// The run's final output: the trace's declared one when a span carries it, else the last
/// substantive agent message.
fn final_output(
    view: &TraceView<'_>,
    line: &[Idx],
    task_span: Option<Idx>,
) -> Option<(Idx, String)> {
    let messages = agent_messages(view, line);
    if let Some(out) = view
        .trace
        .final_output
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        && let Some(&span) = messages.iter().rev().find(|&&i| view.text(i).contains(out))
    {
        return Some((span, out.to_owned()));
    }
    messages
        .iter()
        .rev()
        .filter(|&&i| Some(i) != task_span)
        .map(|&i| (i, clean(view.text(i))))
        .find(|(_, t)| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_are_read() {
        let c =
            constraints("Summarize in at most 20 words. Do not mention \"Acme\". Respond in JSON.");
        let kinds: Vec<&Constraint> = c.iter().map(|(k, _)| k).collect();
        assert!(kinds.contains(&&Constraint::MaxWords(20)));
        assert!(kinds.contains(&&Constraint::Json));
        assert!(kinds.contains(&&Constraint::Forbidden("acme".into())));
        assert!(constraints("Tell me about the weather.").is_empty());
        assert!(constraints("").is_empty());
    }

    #[test]
    fn violations() {
        assert!(violation(&Constraint::MaxWords(3), "one two three four").is_some());
        assert!(violation(&Constraint::MaxWords(3), "one two three").is_none());
        assert!(violation(&Constraint::Json, "```json\n{\"a\": 1}\n```").is_none());
        assert!(violation(&Constraint::Json, "Sure! {\"a\": 1}").is_some());
        assert!(violation(&Constraint::YesNo, "Yes, it is.").is_none());
        assert!(
            violation(
                &Constraint::Language("English"),
                "Le chat est sur la table et les enfants sont dans le jardin"
            )
            .is_some()
        );
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            DisobeyTaskConstraints
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
