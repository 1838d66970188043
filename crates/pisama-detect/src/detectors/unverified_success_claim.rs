//! The agent tells the user an action is done ("your reservation has been cancelled") while
//! the trace shows no successful tool call that did it, or shows the call failing.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::SpanKind;

pub(crate) struct UnverifiedSuccessClaim;

/// Past-tense claims of a completed action, capturing the verb.
fn claim_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:has|have|was|were|is|are|been)\s+(?:now\s+|also\s+)?(?:been\s+)?(?:successfully\s+)?(cancel+ed|booked|updated|changed|modified|refunded|sent|created|deleted|removed|scheduled|processed|submitted|reset|transferred|upgraded|downgraded|added|saved|deployed|placed|issued|exchanged|returned)\b|\bsuccessfully\s+(cancel+ed|booked|updated|changed|modified|refunded|sent|created|deleted|removed|scheduled|processed|submitted|reset|transferred|upgraded|added|saved|deployed|placed|issued|exchanged|returned)\b",
        )
        .expect("valid regex")
    })
}

/// Stems a tool name would contain for a claimed verb: `changed` → `chang`, `updat`, `modif`,
/// `edit` (agents say "changed" for an `update_*` call).
fn stems(verb: &str) -> &'static [&'static str] {
    match verb.to_ascii_lowercase().as_str() {
        "cancelled" | "canceled" => &["cancel"],
        "booked" | "placed" | "created" | "scheduled" => {
            &["book", "reserv", "creat", "plac", "schedul", "order"]
        }
        "updated" | "changed" | "modified" | "upgraded" | "downgraded" | "exchanged" | "reset" => {
            &[
                "updat", "chang", "modif", "edit", "upgrad", "downgrad", "exchang", "reset", "set_",
            ]
        }
        "refunded" | "returned" => &["refund", "return"],
        "sent" | "submitted" | "issued" => &["send", "submit", "issu", "post", "email", "notif"],
        "deleted" | "removed" => &["delet", "remov"],
        "processed" => &["process"],
        "transferred" => &["transfer"],
        "added" | "saved" => &["add", "sav", "writ", "insert", "creat"],
        "deployed" => &["deploy"],
        _ => &[],
    }
}

impl Detector for UnverifiedSuccessClaim {
    fn id(&self) -> &'static str {
        "unverified-success-claim"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let tail = params.usize("final_messages", 2).max(1);
        // Without tools there is no evidence either way.
        if view.tools().is_empty() {
            return Vec::new();
        }
        let speaking: Vec<usize> = view
            .conversation()
            .iter()
            .copied()
            .filter(|&i| view.span(i).kind == SpanKind::Llm && !view.text(i).trim().is_empty())
            .collect();
        let mut hits = Vec::new();
        for &msg in speaking.iter().rev().take(tail) {
            let text = view.text(msg);
            let before: Vec<usize> = view
                .tools()
                .iter()
                .copied()
                .filter(|&t| t < msg || view.span(t).start_ns <= view.span(msg).start_ns)
                .collect();
            let mut claims = 0;
            for caps in claim_pattern().captures_iter(text) {
                let verb = caps
                    .get(1)
                    .or_else(|| caps.get(2))
                    .map_or("", |m| m.as_str());
                let stems = stems(verb);
                if stems.is_empty() {
                    continue;
                }
                claims += 1;
                let whole = caps.get(0).map_or(0..0, |m| m.range());
                let quote = claim_sentence(text, whole.clone());
                let lowered_names: Vec<(usize, String)> = before
                    .iter()
                    .map(|&t| (t, tool_name(view, t).to_ascii_lowercase()))
                    .collect();
                let matching: Vec<usize> = lowered_names
                    .iter()
                    .filter(|(_, name)| stems.iter().any(|st| name.contains(st)))
                    .map(|&(t, _)| t)
                    .collect();
                if let Some(&last) = matching.last() {
                    // The first claim keeps its old weight: the call that would have done it
                    // failed last.
                    if claims == 1 && view.failed(last) {
                        hits.push(Hit {
                            score: 0.9,
                            severity: Some(Severity::High),
                            summary: format!(
                                "the agent says it {verb} something, but the last `{}` call failed",
                                tool_name(view, last)
                            ),
                            at: Some(msg),
                            evidence: vec![
                                HitEvidence::quoted(msg, "claim", quote),
                                HitEvidence::new(last, "the call that failed"),
                            ],
                            ..Hit::default()
                        });
                        break;
                    }
                    continue;
                }
                // "Two checked bags have been added" is done by `update_baggages` as much as
                // by an `add_*` call: for additions, the claim's object named in a successful
                // change supports it. (Other verbs name the action itself: a cancellation
                // needs a cancel call, whatever object an update call names.)
                let object = if verb.eq_ignore_ascii_case("added") {
                    object_words(&text[..whole.start])
                } else {
                    Vec::new()
                };
                let named = lowered_names.iter().any(|(t, name)| {
                    !view.failed(*t)
                        && is_change(name)
                        && object.iter().any(|w| name.contains(w.as_str()))
                });
                if named {
                    continue;
                }
                // Refunds, payments and issued vouchers follow from another change (a
                // cancellation refunds); they need some successful change before them.
                if CONSEQUENCES.contains(&verb.to_ascii_lowercase().as_str())
                    && before
                        .iter()
                        .any(|&t| !view.failed(t) && is_change(&tool_name(view, t)))
                {
                    continue;
                }
                hits.push(Hit {
                    score: 0.6,
                    severity: Some(Severity::Medium),
                    summary: format!("the agent says it {verb} something, but no tool call that could have done it appears before"),
                    at: Some(msg),
                    evidence: vec![HitEvidence::quoted(msg, "claim without a matching tool call", quote)],
                    ..Hit::default()
                });
                break;
            }
            if claims > 0 {
                break;
            }
        }
        hits
    }
}

/// Claimed outcomes that are consequences of another change rather than actions of their own.
const CONSEQUENCES: &[&str] = &["processed", "refunded", "returned", "saved", "issued"];

fn is_change(name: &str) -> bool {
    crate::detectors::missing_confirmation::action_stem(name).is_some()
}

/// The claim, extended to the start of its sentence, for the quote.
fn claim_sentence(text: &str, claim: std::ops::Range<usize>) -> String {
    let start = text[..claim.start]
        .rfind(['.', '!', '?', '\n', '-', '*'])
        .map_or(0, |p| p + 1);
    text[start..claim.end].trim().to_owned()
}

/// Stems (up to four letters, plural `s` dropped) of the last two content words before a
/// claim in its sentence: "the three checked bags have been added" → `chec`, `bag`.
fn object_words(before: &str) -> Vec<String> {
    const SKIP: &[&str] = &[
        "the", "your", "you", "our", "this", "that", "these", "those", "all", "and", "also", "now",
        "both", "new", "its", "their", "has", "have", "was", "were",
    ];
    let clause = before
        .rfind(['.', '!', '?', '\n', ',', ':', ';'])
        .map_or(before, |p| &before[p + 1..]);
    let mut words: Vec<String> = clause
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 3)
        .map(str::to_ascii_lowercase)
        .filter(|w| !SKIP.contains(&w.as_str()))
        .collect();
    let keep = words.len().saturating_sub(2);
    words.drain(..keep);
    words
        .into_iter()
        .map(|w| {
            let w = w.strip_suffix('s').map_or(w.as_str(), |s| s).to_owned();
            w.chars().take(4).collect()
        })
        .collect()
}

fn tool_name(view: &TraceView<'_>, i: usize) -> String {
    let s = view.span(i);
    s.tool
        .as_ref()
        .map_or_else(|| s.name.clone(), |t| t.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claimed_verb_has_stems() {
        for verb in [
            "cancelled",
            "canceled",
            "changed",
            "updated",
            "sent",
            "booked",
            "refunded",
        ] {
            assert!(!stems(verb).is_empty(), "{verb}");
        }
        assert!(stems("changed").contains(&"updat"));
    }

    #[test]
    fn claim_objects_are_the_last_content_words() {
        assert_eq!(
            object_words("Done. The three checked bags "),
            ["chec", "bag"]
        );
        assert_eq!(object_words("Your reservation "), ["rese"]);
        assert_eq!(object_words(""), Vec::<String>::new());
    }
}
