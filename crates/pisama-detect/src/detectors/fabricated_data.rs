//! The agent proceeds on assumed, hypothetical, sample, placeholder or simulated data instead
//! of real data or asking for it ("let's assume the population is 5,000", "here is some sample
//! data for demonstration"), and the run goes on to produce a result from it.
//!
//! Matches are sentence-scoped: a sentence that asks the user for the data, or that rejects
//! made-up data ("instead of sample data"), does not count, and neither does a task that asked
//! for an example or a simulation in the first place.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

use crate::catalog::Params;
use crate::detectors::dialogue::{
    MAX_MATCHES, agent_messages, sentence_at, sentence_range, task, timeline,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

pub(crate) struct FabricatedData;

const NO_ACCESS: &str = "no access to the real data";

/// A phrase that puts invented data in place of real data, how strongly it says so, and what.
type Pattern = (Regex, f64, &'static str);

/// The phrases, and the same expressions as one set: one pass over a message tells which of
/// them can match at all (most messages match none).
fn compiled() -> &'static (Vec<Pattern>, RegexSet) {
    static RE: OnceLock<(Vec<Pattern>, RegexSet)> = OnceLock::new();
    RE.get_or_init(|| {
        let nouns = r"(data|dataset|data set|values?|numbers?|figures?|results?|records?|entries|responses?|prices?|statistics|stats|counts?|information|content|table|list)";
        let patterns = [
            (
                format!(r"(?i)\b(hypothetical|dummy|mock|fake|synthetic|placeholder|fictional|fictitious|made[- ]up|simulated|invented|imaginary|arbitrary|sample|example|illustrative|assumed|estimated) {nouns}\b"),
                0.6,
                "invented data",
            ),
            (
                r"(?i)\bfor (demonstration|illustration|illustrative|example) purposes\b|\bfor the sake of (demonstration|illustration|the example|this example|argument)\b".to_owned(),
                0.55,
                "demonstration data",
            ),
            (
                r"(?i)\b(let'?s|let us|we('ll| will| can)?|i('ll| will)) (just )?assume\b|\bassume (that )?(the|a|an|there|it|we)\b".to_owned(),
                0.5,
                "assumed values",
            ),
            (
                r"(?i)\bsimulat(e|es|ed|ing) (the |a |an |some )?(data|results?|responses?|api|search|output|download|retrieval|values?)\b".to_owned(),
                0.6,
                "simulated results",
            ),
            (
                r"(?i)\b(since|as|because) (we|i) (don'?t|do not|cannot|can'?t|are unable to|am unable to) (have |get |access |retrieve |obtain |fetch )".to_owned(),
                0.45,
                NO_ACCESS,
            ),
        ]
        .into_iter()
        .filter_map(|(p, w, what)| Regex::new(&p).ok().map(|r| (r, w, what)))
        .collect::<Vec<_>>();
        let set = RegexSet::new(patterns.iter().map(|(re, _, _)| re.as_str()))
            .expect("the same expressions compile as a set");
        (patterns, set)
    })
}

/// Words before a match, in its sentence, that reject invented data rather than use it.
fn rejects() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(not|don'?t|never|avoid|instead of|without|rather than|no longer|replace|replacing|stop using|no need to)\b")
            .expect("valid regex")
    })
}

/// A match in one agent message.
struct Match {
    span: Idx,
    weight: f64,
    what: &'static str,
    quote: String,
}

fn find(text: &str, lower_task: &str) -> Option<(f64, &'static str, String, usize)> {
    let mut best: Option<(f64, &'static str, String, usize)> = None;
    let mut distinct = 0;
    // Saying the data is out of reach is honest on its own; it only counts together with
    // something invented in the same message.
    let mut invented = false;
    let (patterns, set) = compiled();
    // `is_match` first: no overlapping search for the messages (most) that match nothing.
    if !set.is_match(text) {
        return None;
    }
    let possible = set.matches(text);
    for (k, (re, weight, what)) in patterns.iter().enumerate() {
        if !possible.matched(k) {
            continue;
        }
        for m in re.find_iter(text).take(MAX_MATCHES) {
            let sentence = sentence_at(text, m.start());
            // Asking for the data is the right move, not a fabrication.
            if sentence.trim_end().ends_with('?') {
                continue;
            }
            let (from, _) = sentence_range(text, m.start());
            if rejects().is_match(text.get(from..m.start()).unwrap_or("")) {
                continue;
            }
            // The task itself asked for an example, a simulation or an assumption.
            let key = m.as_str().to_lowercase();
            if key
                .split_whitespace()
                .filter(|w| w.len() >= 5)
                .any(|w| lower_task.contains(w.trim_end_matches('s')))
            {
                continue;
            }
            distinct += 1;
            invented |= *what != NO_ACCESS;
            if best.as_ref().is_none_or(|b| *weight > b.0) {
                best = Some((*weight, *what, sentence.to_owned(), m.start()));
            }
            break;
        }
    }
    if !invented {
        return None;
    }
    best.map(|(w, what, quote, at)| {
        let extra = 0.1 * f64::from(distinct.min(3) - 1);
        (w + extra, what, quote, at)
    })
}

impl Detector for FabricatedData {
    fn id(&self) -> &'static str {
        "fabricated-data"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_evidence = params.usize("max_evidence", 3).max(1);
        let line = timeline(view);
        let task_text = task(view, &line)
            .map(|t| t.1.to_lowercase())
            .unwrap_or_default();
        let task_span = task(view, &line).and_then(|t| t.0);
        let messages: Vec<Idx> = agent_messages(view, &line)
            .into_iter()
            .filter(|&i| Some(i) != task_span)
            .collect();
        let mut matches: Vec<Match> = Vec::new();
        for &i in &messages {
            let text = view.text(i);
            if let Some((weight, what, quote, _)) = find(text, &task_text) {
                let concrete = text.contains("```") || !crate::text::numbers(&quote).is_empty();
                matches.push(Match {
                    span: i,
                    weight: weight + if concrete { 0.15 } else { 0.0 },
                    what,
                    quote,
                });
            }
        }
        let Some(first) = matches.first() else {
            return Vec::new();
        };
        // The invented data must feed something: a later step, or the answer itself.
        let last_position = line.last().copied().unwrap_or(first.span);
        let feeds = first.span < last_position || matches.len() > 1;
        let miss: f64 = matches.iter().map(|m| 1.0 - m.weight.min(0.95)).product();
        let score = (1.0 - miss).min(0.95) * if feeds { 1.0 } else { 0.8 };
        let mut evidence: Vec<HitEvidence> = matches
            .iter()
            .take(max_evidence)
            .map(|m| HitEvidence::quoted(m.span, m.what, m.quote.clone()))
            .collect();
        if let Some(&after) = line
            .iter()
            .find(|&&i| i > first.span && view.span(i).kind == pisama_trace::SpanKind::Tool)
            && evidence.len() <= max_evidence
        {
            evidence.push(HitEvidence::new(after, "the run continues on it"));
        }
        vec![Hit {
            score,
            severity: Some(if matches.len() >= 2 || score >= 0.75 {
                Severity::High
            } else {
                Severity::Medium
            }),
            summary: format!(
                "`{}` proceeds on {} instead of real data or asking: \"{}\"",
                view.agent(first.span),
                first.what,
                pisama_trace::util::truncate(first.quote.trim(), 120)
            ),
            at: Some(first.span),
            evidence,
            ..Hit::default()
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_found_and_rejections_skipped() {
        assert!(find("Let's assume the population is 5,000 and compute.", "").is_some());
        assert!(find("Here is some sample data for demonstration purposes.", "").is_some());
        assert!(
            find(
                "Could you share the actual data, or should I use sample data?",
                ""
            )
            .is_none()
        );
        assert!(find("Instead of sample data, I downloaded the real file.", "").is_none());
        assert!(
            find(
                "I'll create sample data as requested.",
                "create sample data for a unit test"
            )
            .is_none()
        );
        assert!(find("", "").is_none());
        assert!(
            find(
                "Since we do not have access to the image, let the expert describe it.",
                ""
            )
            .is_none()
        );
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            FabricatedData
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
