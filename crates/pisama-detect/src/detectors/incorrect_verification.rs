//! A step declares the result verified, correct or confirmed while the trace says otherwise:
//! the last execution before it failed, the numbers it vouches for appear in no tool output, or
//! it "verifies" by restating what another agent said without running anything.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    MAX_MATCHES, Speaker, agent_messages, execution_failed, format_number, number_key,
    sentence_range, speaker, timeline, tool_name,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::numbers;
use crate::view::{Idx, TraceView};

pub(crate) struct IncorrectVerification;

/// Assertions that something was checked and found right.
fn claim() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b((successfully |been |have |has |i |we )(verified|validated|double-checked|cross-checked|confirmed)|(verified|validated|double-checked|cross-checked|confirmed) (that|the|this|it|our|all)|(is|are|looks|seems|appears|was|were) (to be )?(correct|accurate|right|valid|consistent)\b|all (the )?tests? (have )?pass(ed)?|verification (is |was |has )?(passed|successful|complete|completed|confirms?)|everything (checks out|is correct|looks good)|checks out)")
            .expect("valid regex")
    })
}

/// Words just before a claim that make it an intention, a question or a denial.
fn not_an_assertion() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(to|will|let'?s|let us|need|needs|should|must|can|could|would|please|not|n't|unable|cannot|if|whether|until|once|ensure|make sure|check|verify|confirm|how)\b[^.]{0,80}$")
            .expect("valid regex")
    })
}

/// The verification claim in a text: its byte offset and its sentence.
fn find_claim(text: &str) -> Option<(usize, &str)> {
    for m in claim().find_iter(text).take(MAX_MATCHES) {
        let (from, to) = sentence_range(text, m.start());
        let sentence = text.get(from..to).unwrap_or("").trim();
        if sentence.ends_with('?') {
            continue;
        }
        let lead = text.get(from..m.start()).unwrap_or("");
        if not_an_assertion().is_match(lead) || is_instruction(sentence) {
            continue;
        }
        return Some((m.start(), sentence));
    }
    None
}

/// A sentence that tells someone to check ("**Verify the ID**: ensure it is correct") rather
/// than reporting a check.
fn is_instruction(sentence: &str) -> bool {
    let first = sentence
        .trim_start_matches(|c: char| !c.is_alphabetic())
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_lowercase();
    matches!(
        first.as_str(),
        "verify"
            | "ensure"
            | "check"
            | "confirm"
            | "validate"
            | "make"
            | "double-check"
            | "cross-check"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Against {
    /// The last execution before the claim failed.
    LastRunFailed(Idx),
    /// The numbers vouched for appear in no tool output.
    UnseenValue(Idx),
    /// Nothing was run since the result being vouched for was stated.
    NothingRun(Idx),
}

impl Detector for IncorrectVerification {
    fn id(&self) -> &'static str {
        "incorrect-verification"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_hits = params.usize("max_findings", 3).max(1);
        let report_restating = params.bool("report_restating", true);
        let line = timeline(view);
        if view.tools().is_empty() {
            // Without any execution in the run there is nothing to hold a claim against.
            return Vec::new();
        }
        let claims: HashSet<Idx> = agent_messages(view, &line).into_iter().collect();
        let mut tool_numbers: HashSet<i64> = HashSet::new();
        let mut last_tool: Option<Idx> = None;
        // The last message by each speaker kind, to know what a claim is vouching for.
        let mut last_other_agent: Option<Idx> = None;
        let mut hits = Vec::new();
        let mut restating_reported = false;
        for &i in &line {
            if speaker(view, i) == Speaker::Tool {
                for &n in view.numbers(i) {
                    tool_numbers.insert(number_key(n));
                }
                last_tool = Some(i);
                continue;
            }
            if !claims.contains(&i) {
                continue;
            }
            let text = view.text(i);
            let claim = find_claim(text);
            let previous = last_other_agent;
            if previous.is_none_or(|p| view.agent(p) != view.agent(i)) {
                last_other_agent = Some(i);
            }
            let Some((_, sentence)) = claim else {
                continue;
            };
            let against = if let Some(t) = last_tool.filter(|&t| execution_failed(view, t)) {
                Some(Against::LastRunFailed(t))
            } else if let Some(t) = last_tool.filter(|_| {
                let vouched: Vec<f64> = numbers(sentence)
                    .into_iter()
                    .filter(|n| n.abs() >= 10.0)
                    .collect();
                !vouched.is_empty()
                    && !tool_numbers.is_empty()
                    && vouched
                        .iter()
                        .all(|n| !tool_numbers.contains(&number_key(*n)))
            }) {
                Some(Against::UnseenValue(t))
            } else if let Some(p) = previous.filter(|&p| {
                report_restating
                    && !restating_reported
                    && view.agent(p) != view.agent(i)
                    && last_tool.is_none_or(|t| t < p)
                    && !text.contains("```")
            }) {
                restating_reported = true;
                Some(Against::NothingRun(p))
            } else {
                None
            };
            if let Some(against) = against {
                hits.push(hit(view, i, sentence, against));
                if hits.len() >= max_hits {
                    break;
                }
            }
        }
        hits
    }
}

fn hit(view: &TraceView<'_>, at: Idx, sentence: &str, against: Against) -> Hit {
    let quote = pisama_trace::util::truncate(sentence, 160);
    let who = view.agent(at);
    let (score, severity, summary, evidence) = match against {
        Against::LastRunFailed(t) => (
            0.85,
            Severity::High,
            format!(
                "`{who}` declares the result verified, but the last execution before it (`{}`) failed",
                tool_name(view, t)
            ),
            HitEvidence::new(t, "the last execution before the claim failed"),
        ),
        Against::UnseenValue(t) => (
            0.6,
            Severity::Medium,
            format!(
                "`{who}` vouches for {} although no tool or execution ever returned it",
                numbers(sentence)
                    .into_iter()
                    .find(|n| n.abs() >= 10.0)
                    .map_or_else(|| "a value".to_owned(), format_number)
            ),
            HitEvidence::new(t, "the last tool output before the claim"),
        ),
        Against::NothingRun(p) => (
            0.35,
            Severity::Low,
            format!(
                "`{who}` confirms `{}`'s result without running anything since",
                view.agent(p)
            ),
            HitEvidence::new(p, "the result being confirmed"),
        ),
    };
    Hit {
        score,
        severity: Some(severity),
        summary,
        at: Some(at),
        evidence: vec![
            HitEvidence::quoted(at, "verification claim", quote),
            evidence,
        ],
        ..Hit::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_non_claims() {
        assert!(find_claim("I have verified the totals.").is_some());
        assert!(find_claim("The result is correct.").is_some());
        assert!(find_claim("All tests passed.").is_some());
        assert!(find_claim("Let's verify the totals.").is_none());
        assert!(find_claim("We need to make sure the result is correct.").is_none());
        assert!(find_claim("Is that correct?").is_none());
        assert!(find_claim("I could not verify the totals.").is_none());
        assert!(find_claim("").is_none());
        assert!(find_claim("1. **Verify the ID**: Ensure the video is correct.").is_none());
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            IncorrectVerification
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
