//! An agent says what it will do next ("I will cancel the reservation", "let me run the
//! script") and then, before it speaks again, does something else or nothing at all.
//!
//! Only runs with tools are judged (without tools an agent cannot act, so a stated plan is
//! just talk). Questions and conditional plans ("if you confirm, I will cancel") are not
//! commitments. A state-changing intent is matched against the tool names' words; a look-up
//! or run intent is satisfied by any tool call.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    MAX_MATCHES, Speaker, agent_messages, is_read_only_tool, name_words, sentence_range, speaker,
    timeline, tool_name,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

pub(crate) struct ReasoningActionMismatch;

/// What kind of action an intent announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Look something up or run something: any tool call does it.
    Act,
    /// Change state: a tool whose name carries one of these stems does it.
    Change(&'static [&'static str]),
}

/// Stems of every state-changing action an intent can name.
const ALL_CHANGES: &[&str] = &[
    "cancel", "book", "reserv", "creat", "updat", "chang", "modif", "edit", "upgrad", "downgrad",
    "refund", "return", "send", "email", "notif", "messag", "delet", "remov", "transfer",
];

fn intent_of(verb: &str) -> Option<Intent> {
    let change: &'static [&'static str] = match verb {
        "cancel" => &["cancel"],
        "book" | "reserve" => &["book", "reserv", "creat"],
        "update" | "change" | "modify" | "upgrade" | "downgrade" | "edit" => {
            &["updat", "chang", "modif", "edit", "upgrad", "downgrad"]
        }
        "refund" => &["refund", "return"],
        "send" | "email" => &["send", "email", "notif", "messag"],
        "delete" | "remove" => &["delet", "remov"],
        "transfer" => &["transfer"],
        _ => &[],
    };
    if !change.is_empty() {
        return Some(Intent::Change(change));
    }
    matches!(
        verb,
        "check"
            | "look"
            | "search"
            | "find"
            | "fetch"
            | "retrieve"
            | "query"
            | "verify"
            | "run"
            | "execute"
            | "test"
            | "rerun"
            | "calculate"
            | "compute"
            | "download"
            | "pull"
    )
    .then_some(Intent::Act)
}

fn intent_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:i will|i'll|i am going to|i'm going to|let me|i shall|i'm now going to|i will now|i'll now|now i will|next,? i will)\s+(?:now\s+|first\s+|quickly\s+|go ahead and\s+|proceed to\s+)?([a-z]+)")
            .expect("valid regex")
    })
}

fn conditional() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(if|once|after you|when you|as soon as|unless|would you like|do you want|shall i|should i)\b")
            .expect("valid regex")
    })
}

/// The first committed intent in a text: (verb, intent, the sentence).
fn find_intent(text: &str) -> Option<(String, Intent, &str)> {
    for caps in intent_pattern().captures_iter(text).take(MAX_MATCHES) {
        let (Some(all), Some(verb)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let verb = verb.as_str().to_lowercase();
        let Some(intent) = intent_of(&verb) else {
            continue;
        };
        // "I will cancel nothing" commits to not acting.
        let next_word = text
            .get(verb_end(&caps)..)
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase();
        if matches!(next_word.as_str(), "nothing" | "none" | "no" | "anything") {
            continue;
        }
        let (from, to) = sentence_range(text, all.start());
        let sentence = text.get(from..to).unwrap_or("").trim();
        if sentence.ends_with('?') || conditional().is_match(sentence) {
            continue;
        }
        return Some((verb, intent, sentence));
    }
    None
}

fn verb_end(caps: &regex::Captures<'_>) -> usize {
    caps.get(1).map_or(0, |m| m.end())
}

impl Detector for ReasoningActionMismatch {
    fn id(&self) -> &'static str {
        "reasoning-action-mismatch"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_hits = params.usize("max_findings", 3).max(1);
        if view.tools().is_empty() {
            return Vec::new();
        }
        let line = timeline(view);
        let messages = agent_messages(view, &line);
        let mut hits = Vec::new();
        for (k, &m) in messages.iter().enumerate() {
            let text = view.text(m);
            // A message that asks the user something is waiting, whatever it announced.
            if text.trim_end().ends_with('?') {
                continue;
            }
            let Some((verb, intent, sentence)) = find_intent(text) else {
                continue;
            };
            // What happened before this agent spoke again or a user answered.
            let next_message = messages.get(k + 1).copied().unwrap_or(usize::MAX);
            let from = line.partition_point(|&i| i <= m);
            let window: Vec<Idx> = line[from..]
                .iter()
                .copied()
                .take_while(|&i| i < next_message)
                .take_while(|&i| speaker(view, i) != Speaker::User)
                .filter(|&i| speaker(view, i) == Speaker::Tool)
                .collect();
            // Tools the message itself ran (a message with tool calls carries them as children).
            let own: Vec<Idx> = view
                .children(m)
                .iter()
                .copied()
                .filter(|&c| speaker(view, c) == Speaker::Tool)
                .collect();
            let actions: Vec<Idx> = own.into_iter().chain(window).collect();
            let mismatch = match intent {
                Intent::Act => actions.is_empty().then_some(None),
                Intent::Change(stems) => {
                    if actions.is_empty() {
                        Some(None)
                    } else if actions
                        .iter()
                        .any(|&t| matches_stems(tool_name(view, t), stems))
                    {
                        None
                    } else {
                        // Only a call that itself changes state in another way contradicts
                        // the intent; running code or a generic executor may well do it.
                        actions
                            .iter()
                            .copied()
                            .find(|&t| {
                                let name = tool_name(view, t);
                                !is_read_only_tool(name) && matches_stems(name, ALL_CHANGES)
                            })
                            .map(Some)
                    }
                }
            };
            let Some(other) = mismatch else {
                continue;
            };
            // Ending the run, or speaking again as if it had acted, is worse than being
            // interrupted by someone else.
            let carries_on = messages.get(k + 1).is_none_or(|&n| {
                view.agent(n) == view.agent(m)
                    && !line
                        .iter()
                        .any(|&i| i > m && i < n && speaker(view, i) == Speaker::User)
            });
            let last = k + 1 == messages.len();
            hits.push(hit(view, m, &verb, sentence, other, last, carries_on));
            if hits.len() >= max_hits {
                break;
            }
        }
        hits
    }
}

fn matches_stems(name: &str, stems: &[&str]) -> bool {
    name_words(name)
        .iter()
        .any(|w| stems.iter().any(|s| w.starts_with(s)))
}

fn hit(
    view: &TraceView<'_>,
    m: Idx,
    verb: &str,
    sentence: &str,
    other: Option<Idx>,
    last: bool,
    carries_on: bool,
) -> Hit {
    let who = view.agent(m);
    let quote = pisama_trace::util::truncate(sentence, 160);
    match other {
        Some(t) => Hit {
            score: 0.7,
            severity: Some(Severity::Medium),
            summary: format!(
                "`{who}` says it will {verb}, but its next action is `{}`",
                tool_name(view, t)
            ),
            at: Some(m),
            evidence: vec![
                HitEvidence::quoted(m, "stated intent", quote),
                HitEvidence::new(t, "the action actually taken"),
            ],
            ..Hit::default()
        },
        None => Hit {
            score: if carries_on { 0.65 } else { 0.45 },
            severity: Some(if carries_on {
                Severity::Medium
            } else {
                Severity::Low
            }),
            summary: format!(
                "`{who}` says it will {verb}, but no action follows{}",
                if last {
                    " and the run ends there"
                } else if carries_on {
                    "; it carries on as if it had"
                } else {
                    " before the conversation moves on"
                }
            ),
            at: Some(m),
            evidence: vec![HitEvidence::quoted(
                m,
                "stated intent with no action",
                quote,
            )],
            ..Hit::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents() {
        assert!(find_intent("I will cancel the reservation now.").is_some());
        assert!(find_intent("Let me check the flight status.").is_some());
        assert!(find_intent("If you confirm, I will cancel it.").is_none());
        assert!(find_intent("Shall I cancel it?").is_none());
        assert!(find_intent("I will need your user id.").is_none());
        assert!(find_intent("").is_none());
        assert!(find_intent("I will cancel nothing for now.").is_none());
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            ReasoningActionMismatch
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
