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
            let Some(caps) = claim_pattern().captures(text) else {
                continue;
            };
            let verb = caps
                .get(1)
                .or_else(|| caps.get(2))
                .map_or("", |m| m.as_str());
            let stems = stems(verb);
            if stems.is_empty() {
                continue;
            }
            let before: Vec<usize> = view
                .tools()
                .iter()
                .copied()
                .filter(|&t| t < msg || view.span(t).start_ns <= view.span(msg).start_ns)
                .collect();
            let matching: Vec<usize> = before
                .iter()
                .copied()
                .filter(|&t| {
                    let s = view.span(t);
                    let name = s
                        .tool
                        .as_ref()
                        .map_or(s.name.as_str(), |t| t.name.as_str())
                        .to_ascii_lowercase();
                    stems.iter().any(|st| name.contains(st))
                })
                .collect();
            let quote = caps
                .get(0)
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default();
            match matching.last() {
                Some(&last) if view.failed(last) => hits.push(Hit {
                    score: 0.9,
                    severity: Some(Severity::High),
                    summary: format!("the agent says it {verb} something, but the last `{}` call failed", tool_name(view, last)),
                    at: Some(msg),
                    evidence: vec![
                        HitEvidence::quoted(msg, "claim", quote),
                        HitEvidence::new(last, "the call that failed"),
                    ],
                    ..Hit::default()
                }),
                Some(_) => {}
                None => hits.push(Hit {
                    score: 0.6,
                    severity: Some(Severity::Medium),
                    summary: format!("the agent says it {verb} something, but no tool call that could have done it appears before"),
                    at: Some(msg),
                    evidence: vec![HitEvidence::quoted(msg, "claim without a matching tool call", quote)],
                    ..Hit::default()
                }),
            }
            break;
        }
        hits
    }
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
}
