//! A direct question or instruction that the addressed party never takes up: the next turn of
//! the agent (or user) it was addressed to neither answers it nor acts on it.
//!
//! Who is addressed: with one agent and a user, the other party; among several agents, an
//! agent named in the question. Whether it was taken up: the reply (plus the tool calls the
//! addressee made before replying) shares a topic word with the question, or opens with an
//! answer ("yes", "no", "sure", "sorry"…). Anything else means the input was ignored. Asking
//! the same thing again later makes the case stronger.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::text::shingles;
use crate::view::{Idx, TraceView};
use pisama_trace::SpanKind;

use super::turns::{Turn, content_words, sentences, turns};

pub(crate) struct IgnoredAgentInput;

/// Openings that answer or acknowledge whatever was asked.
fn answer_opening() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)^\W*(?:yes|yeah|yep|no|nope|sure|certainly|of course|ok|okay|alright|right|correct|indeed|absolutely|understood|noted|got it|will do|done|sorry|unfortunately|i can(?:not|'t)?|i will|i'll|i'm afraid|thanks|thank you|great|perfect|sounds good|here (?:is|are))\b",
        )
        .expect("valid regex")
    })
}

/// An instruction sentence: a polite request or an imperative addressed to someone.
fn instruction() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)^\W*(?:please|kindly)\b|\bcan you\b|\bcould you\b|\bwould you\b")
            .expect("valid regex")
    })
}

impl Detector for IgnoredAgentInput {
    fn id(&self) -> &'static str {
        "ignored-agent-input"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_words = params.usize("min_question_words", 2).max(1);
        let max_findings = params.usize("max_findings", 3).max(1);
        let turns: Vec<Turn> = turns(view)
            .into_iter()
            .filter(|t| view.span(t.span).kind != SpanKind::Tool)
            .collect();
        let speakers: BTreeSet<&str> = turns.iter().map(|t| t.speaker).collect();
        if speakers.len() < 2 {
            return Vec::new();
        }
        let agents: Vec<&str> = speakers.iter().copied().filter(|s| *s != "user").collect();
        let mut hits = Vec::new();
        for (k, asking) in turns.iter().enumerate() {
            let Some((request, addressee)) = addressed_request(view, asking, &speakers, &agents)
            else {
                continue;
            };
            // Users owe the agents nothing: only requests to agents are checked.
            if addressee == "user" {
                continue;
            }
            let asked: BTreeSet<String> = content_words(&request).into_iter().collect();
            if asked.len() < min_words {
                continue;
            }
            // The addressee's next turn, and what it did before it.
            let Some(offset) = turns[k + 1..].iter().position(|t| t.speaker == addressee) else {
                continue;
            };
            let reply = &turns[k + 1 + offset];
            // Someone else spoke first (a third agent took the question): not this detector's case.
            if offset > 0
                && turns[k + 1..k + 1 + offset]
                    .iter()
                    .any(|t| !t.user && t.speaker != asking.speaker)
            {
                continue;
            }
            let reply_text = view.text(reply.span);
            if answer_opening().is_match(reply_text) {
                continue;
            }
            let mut replied: BTreeSet<String> = content_words(reply_text).into_iter().collect();
            replied.extend(tool_words(view, asking.span, reply.span, &addressee));
            let echoed = asked
                .iter()
                .filter(|w| replied.contains(*w) || replied.iter().any(|r| shares_stem(w, r)))
                .count();
            // Asking again: most of the request's word pairs come back in a later turn of the
            // asker (within its next two turns).
            let request_pairs = shingles(&request.to_lowercase(), 2);
            let asked_again = turns[k + 1 + offset + 1..]
                .iter()
                .filter(|t| t.speaker == asking.speaker)
                .take(2)
                .find(|t| {
                    let later = shingles(view.lower(t.span), 2);
                    request_pairs.len() >= 4
                        && request_pairs.iter().filter(|h| later.contains(h)).count() * 2
                            >= request_pairs.len()
                });
            // A line the asker puts in most of its turns is a standing template ("Please keep
            // solving…"), not a question waiting for an answer.
            let asker_turns: Vec<&Turn> = turns
                .iter()
                .filter(|t| t.speaker == asking.speaker)
                .collect();
            let carrying = asker_turns
                .iter()
                .filter(|t| {
                    let other = shingles(view.lower(t.span), 2);
                    request_pairs.iter().filter(|h| other.contains(h)).count() * 2
                        >= request_pairs.len().max(1)
                })
                .count();
            if carrying >= 3 && carrying * 2 >= asker_turns.len() {
                continue;
            }
            // One shared word is an answer, unless the asker had to repeat the request: then
            // the reply must have covered most of it (sharing only the subject, such as a
            // booking code, is not answering what was asked about it).
            let answered = if asked_again.is_some() {
                echoed * 2 > asked.len()
            } else {
                echoed > 0
            };
            if answered {
                continue;
            }
            // Without a repeated request, only an agent's specific request (several topic
            // words) left without any echo is evidence enough; users and vague asks get
            // loose answers.
            if asked_again.is_none() && (asking.user || asked.len() < 4) {
                continue;
            }
            let mut score: f64 = 0.45 + 0.05 * (asked.len().min(6) as f64);
            if asked_again.is_some() {
                score += 0.2;
            }
            let mut evidence = vec![
                HitEvidence::quoted(
                    asking.span,
                    format!("{} asks {addressee}", asking.speaker),
                    request.clone(),
                ),
                HitEvidence::new(
                    reply.span,
                    format!("{addressee}'s next turn does not take it up"),
                ),
            ];
            if let Some(again) = asked_again {
                evidence.push(HitEvidence::new(
                    again.span,
                    format!("{} has to ask again", asking.speaker),
                ));
            }
            hits.push(Hit {
                score: score.min(1.0),
                severity: None,
                summary: format!(
                    "{addressee} did not respond to {}'s request \"{}\"",
                    asking.speaker,
                    pisama_trace::util::truncate(request.trim(), 90)
                ),
                at: Some(reply.span),
                evidence,
                ..Hit::default()
            });
            if hits.len() >= max_findings {
                break;
            }
        }
        hits
    }
}

/// The question or instruction sentences of a turn and whom they address, if that is clear.
fn addressed_request(
    view: &TraceView<'_>,
    turn: &Turn,
    speakers: &BTreeSet<&str>,
    agents: &[&str],
) -> Option<(String, String)> {
    let text = view.text(turn.span);
    let requests: Vec<&str> = sentences(text)
        .into_iter()
        // A request in code or a quoted document is not addressed to anyone here.
        .filter(|s| !s.contains("```") && s.len() <= 400)
        .filter(|s| s.ends_with('?') || instruction().is_match(s))
        .collect();
    if requests.is_empty() {
        return None;
    }
    let others: Vec<&str> = speakers
        .iter()
        .copied()
        .filter(|s| *s != turn.speaker)
        .collect();
    // Two parties: the other one is addressed.
    if others.len() == 1 {
        return Some((requests.join(" "), others[0].to_owned()));
    }
    // Several agents: only a request that names exactly one of them.
    let named: Vec<(&str, &str)> = requests
        .iter()
        .filter_map(|s| {
            let mentioned: Vec<&str> = agents
                .iter()
                .copied()
                .filter(|a| *a != turn.speaker && names_agent(s, a))
                .collect();
            (mentioned.len() == 1).then(|| (*s, mentioned[0]))
        })
        .collect();
    let (sentence, agent) = named.first()?;
    Some(((*sentence).to_owned(), (*agent).to_owned()))
}

/// Whether a sentence names an agent (`Data_Analyst`, `data analyst`, `@Data_Analyst`).
fn names_agent(sentence: &str, agent: &str) -> bool {
    if agent.chars().count() < 3 {
        return false;
    }
    let norm = |s: &str| s.to_lowercase().replace(['_', '-'], " ");
    let hay = norm(sentence);
    let needle = norm(agent);
    hay.match_indices(&needle).any(|(pos, m)| {
        let before = hay[..pos].chars().next_back();
        let after = hay[pos + m.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Words of the tool calls the addressee made between the request and its reply: acting on a
/// request (looking something up) is taking it up.
fn tool_words(view: &TraceView<'_>, from: Idx, to: Idx, agent: &str) -> Vec<String> {
    let between = (from + 1..to).filter(|&i| view.span(i).kind == SpanKind::Tool);
    // Calls made as part of the reply itself hang under it.
    let within = view.children(to).iter().copied();
    between
        .chain(within)
        .filter(|&i| {
            view.span(i).kind == SpanKind::Tool && view.span(i).agent.as_deref() == Some(agent)
        })
        .flat_map(|i| {
            let s = view.span(i);
            let args = s
                .tool
                .as_ref()
                .map(|t| t.arguments.to_string())
                .unwrap_or_default();
            let name = super::turns::tool_name(s).replace('_', " ");
            content_words(&format!("{name} {args}"))
        })
        .collect()
}

/// Loose match of inflections (`book` / `booking`, `cancel` / `cancellation`).
fn shares_stem(a: &str, b: &str) -> bool {
    let n = a.len().min(b.len());
    n >= 5 && a.as_bytes()[..5] == b.as_bytes()[..5]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Params;
    use pisama_trace::{Payload, Span, Trace};

    fn said(agent: &str, seq: u32, text: &str) -> Span {
        let user = agent == "user";
        Span {
            id: format!("m{seq}"),
            seq,
            kind: if user { SpanKind::Human } else { SpanKind::Llm },
            agent: (!user).then(|| agent.to_owned()),
            input: (user.then(|| Payload::text(text))).map(Box::new),
            output: ((!user).then(|| Payload::text(text))).map(Box::new),
            ..Span::default()
        }
    }

    #[test]
    fn empty_and_single_speaker_traces_are_quiet() {
        let t = Trace::default();
        assert!(
            IgnoredAgentInput
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
        let one = Trace {
            spans: vec![said("a", 0, "Can you check the baggage allowance?")],
            ..Trace::default()
        };
        assert!(
            IgnoredAgentInput
                .detect(&TraceView::new(&one), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn unanswered_question_fires_and_answered_does_not() {
        let t = Trace {
            spans: vec![
                said("user", 0, "What is the baggage allowance for economy?"),
                said("agent", 1, "Your flight departs at 9:40 from gate B12."),
                said(
                    "user",
                    2,
                    "Sorry, what is the baggage allowance for economy?",
                ),
            ],
            ..Trace::default()
        };
        assert_eq!(
            IgnoredAgentInput
                .detect(&TraceView::new(&t), &Params::default())
                .len(),
            1
        );
        let ok = Trace {
            spans: vec![
                said("user", 0, "What is the baggage allowance for economy?"),
                said("agent", 1, "Economy includes one checked bag of 23 kg."),
            ],
            ..Trace::default()
        };
        assert!(
            IgnoredAgentInput
                .detect(&TraceView::new(&ok), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn agent_names_match_whole_words() {
        assert!(names_agent(
            "Data_Analyst, can you rerun it?",
            "Data_Analyst"
        ));
        assert!(names_agent("data analyst: please rerun", "Data_Analyst"));
        assert!(!names_agent("the metadata analyst view", "Data_Analyst"));
    }
}
