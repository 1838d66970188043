//! The user signals that the agent is failing them: they correct it ("that's not what I
//! asked", "I already told you"), repeat an earlier request nearly word for word, ask for a
//! human on their own initiative, or say they are frustrated.
//!
//! The finding points at the agent message the user reacted to.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{MAX_MATCHES, STOPWORDS, Speaker, sentence_at, speaker, timeline};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::{ShingleSet, jaccard, shingles};
use crate::view::{Idx, TraceView};

pub(crate) struct UserFrustration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Signal {
    Correction,
    /// "As I mentioned": the agent asked again for something it had been told.
    Reminder,
    Frustration,
    AsksForHuman,
    Repeats,
}

impl Signal {
    fn weight(self) -> f64 {
        match self {
            Signal::Correction | Signal::Frustration => 0.6,
            Signal::AsksForHuman => 0.45,
            Signal::Reminder => 0.3,
            Signal::Repeats => 0.4,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Signal::Correction => "the user corrects the agent",
            Signal::Reminder => "the user reminds the agent of what they said",
            Signal::Frustration => "the user says they are frustrated with the agent",
            Signal::AsksForHuman => "the user asks for a human",
            Signal::Repeats => "the user repeats an earlier request",
        }
    }
}

fn correction() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(that'?s not what i (asked|wanted|meant|said)|not what i (asked|wanted|meant)|i (already|just) (told|said|gave|provided|explained)|\b(but|no),? i (said|asked for|wanted)\b|^\s*no[,.!]?\s+i (said|asked|meant|wanted)|you (didn't|did not|still haven't|haven't|never) (listen|answer|read|do|understand)|(that'?s|this is|you'?re|you are) (wrong|incorrect|not right|not correct)|you misunderstood|read my (message|question)|i never (said|asked))")
            .expect("valid regex")
    })
}

fn reminder() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(as i (already )?(said|mentioned|told you|explained|stated)|like i said|i (already|just) mentioned)\b")
            .expect("valid regex")
    })
}

/// Words that aim a sentence at the agent or the conversation rather than at the world
/// ("I'm frustrated because my flight was delayed" is about the flight).
fn at_the_agent() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(you|your|this (conversation|chat|process|service|bot|assistant)|talking to|again)\b")
            .expect("valid regex")
    })
}

fn frustration() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(frustrat|annoy|ridiculous|useless|unacceptable|absurd|waste of (my )?time|are you (even )?(listening|serious|kidding)|this is (getting )?(nowhere|pointless|terrible|awful)|fed up|sick of|what the (hell|heck)|for the (last|third|second) time|how many times)")
            .expect("valid regex")
    })
}

fn asks_for_human() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)((speak|talk|chat) (to|with) (a|an|your|some)? ?(real |actual |live )?(human|person|manager|supervisor|representative|agent)|(transfer|connect|escalate) me|real (human|person)|human (agent|being|representative))")
            .expect("valid regex")
    })
}

/// Word-pair shingles shared by many user messages: a signature the user (or a simulator)
/// appends every time, which says nothing about repetition.
fn boilerplate(sets: &[ShingleSet]) -> ShingleSet {
    let mut df: HashMap<u64, usize> = HashMap::new();
    for set in sets {
        for &h in set {
            *df.entry(h).or_default() += 1;
        }
    }
    let limit = (sets.len() / 2).max(3);
    df.into_iter()
        .filter(|&(_, n)| n >= limit)
        .map(|(h, _)| h)
        .collect()
}

impl Detector for UserFrustration {
    fn id(&self) -> &'static str {
        "user-frustration"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let repeat_similarity = params.f64("repeat_similarity", 0.5);
        let window = params.usize("repeat_window", 4).max(1);
        let line = timeline(view);
        let users: Vec<Idx> = line
            .iter()
            .copied()
            .filter(|&i| speaker(view, i) == Speaker::User && !view.text(i).trim().is_empty())
            .collect();
        if users.len() < 2 {
            return Vec::new();
        }
        let sets: Vec<ShingleSet> = users.iter().map(|&i| shingles(view.lower(i), 2)).collect();
        let common = boilerplate(&sets);
        let sets: Vec<ShingleSet> = sets
            .into_iter()
            .map(|s| s.difference(&common).copied().collect())
            .collect();

        let stop_ids: HashSet<u32> = STOPWORDS.iter().filter_map(|w| view.word_id(w)).collect();
        // The agent message each user message answers: the last agent text before it.
        let mut last_agent: Option<Idx> = None;
        let mut answered: HashMap<Idx, Option<Idx>> = HashMap::new();
        for &i in &line {
            match speaker(view, i) {
                Speaker::Agent if !view.text(i).trim().is_empty() => last_agent = Some(i),
                Speaker::User => {
                    answered.insert(i, last_agent);
                }
                _ => {}
            }
        }

        // (user message, agent message it reacts to, signals)
        let mut signalled: Vec<(Idx, Idx, Vec<Signal>)> = Vec::new();
        for (k, &u) in users.iter().enumerate().skip(1) {
            let Some(agent) = answered.get(&u).copied().flatten() else {
                continue;
            };
            let said = view.lower(u);
            let mut signals = Vec::new();
            if correction().is_match(said) {
                signals.push(Signal::Correction);
            }
            if reminder().is_match(said) {
                signals.push(Signal::Reminder);
            }
            let aimed = frustration()
                .find_iter(said)
                .take(MAX_MATCHES)
                .any(|m| at_the_agent().is_match(sentence_at(said, m.start())));
            if aimed {
                signals.push(Signal::Frustration);
            }
            // Accepting the agent's own offer of a human is not a complaint.
            if asks_for_human().is_match(said) && !mentions_human(view.lower(agent)) {
                signals.push(Signal::AsksForHuman);
            }
            let start = k.saturating_sub(window);
            let repeats = sets[k].len() >= 4
                && sets[start..k]
                    .iter()
                    .zip(&users[start..k])
                    .any(|(s, &earlier)| {
                        s.len() >= 4
                            && jaccard(s, &sets[k]) >= repeat_similarity
                            && !adds_content(view, earlier, u, &stop_ids)
                    });
            if repeats {
                signals.push(Signal::Repeats);
            }
            if !signals.is_empty() {
                signalled.push((u, agent, signals));
            }
        }
        let Some(&(_, first_agent, _)) = signalled.first() else {
            return Vec::new();
        };
        let mut kinds: Vec<Signal> = signalled.iter().flat_map(|s| s.2.iter().copied()).collect();
        kinds.sort_unstable();
        let miss: f64 = signalled
            .iter()
            .flat_map(|s| s.2.iter())
            .map(|s| 1.0 - s.weight())
            .product();
        let score = (1.0 - miss).min(0.97);
        kinds.dedup();
        let strong = kinds
            .iter()
            .any(|k| matches!(k, Signal::Correction | Signal::Frustration));
        let severity = if signalled.len() >= 3 && strong {
            Severity::High
        } else if strong || signalled.len() >= 2 {
            Severity::Medium
        } else {
            Severity::Low
        };
        let mut evidence = vec![HitEvidence::new(
            first_agent,
            "the agent message the user reacts to",
        )];
        for (u, _, signals) in signalled.iter().take(3) {
            let note = signals
                .iter()
                .map(|s| s.describe())
                .collect::<Vec<_>>()
                .join("; ");
            evidence.push(HitEvidence::new(*u, note));
        }
        let what = kinds
            .iter()
            .map(|s| s.describe().trim_start_matches("the user "))
            .collect::<Vec<_>>()
            .join(", ");
        vec![Hit {
            score,
            severity: Some(severity),
            summary: format!(
                "the user signals the interaction is failing in {} message{} ({what}), first in reaction to `{}`",
                signalled.len(),
                if signalled.len() == 1 { "" } else { "s" },
                view.agent(first_agent)
            ),
            at: Some(first_agent),
            evidence,
            ..Hit::default()
        }]
    }
}

/// Whether `later` names something `earlier` did not (a content word of three letters or
/// more): "the hours of the aquarium" then "the hours of the museum" is a new request.
fn adds_content(view: &TraceView<'_>, earlier: Idx, later: Idx, stop: &HashSet<u32>) -> bool {
    let before: HashSet<u32> = view.words(earlier).iter().copied().collect();
    let lower = view.lower(later);
    let long: HashSet<u32> = crate::view::tokenize(lower)
        .filter(|w| w.chars().count() >= 3)
        .filter_map(|w| view.word_id(w))
        .collect();
    view.words(later)
        .iter()
        .any(|w| !before.contains(w) && !stop.contains(w) && long.contains(w))
}

fn mentions_human(text: &str) -> bool {
    [
        "human",
        "representative",
        "supervisor",
        "transfer you",
        "live agent",
    ]
    .iter()
    .any(|w| text.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::{Payload, Span, SpanKind, Trace};

    fn trace(turns: &[(bool, &str)]) -> Trace {
        let spans = turns
            .iter()
            .enumerate()
            .map(|(k, (is_user, text))| Span {
                kind: if *is_user {
                    SpanKind::Human
                } else {
                    SpanKind::Llm
                },
                agent: (!is_user).then(|| "bot".to_owned()),
                input: (is_user.then(|| Payload::text(*text))).map(Box::new),
                output: ((!is_user).then(|| Payload::text(*text))).map(Box::new),
                step: Some(k as u32),
                ..Span::default()
            })
            .collect();
        Trace {
            spans,
            ..Trace::default()
        }
    }

    fn run(t: &Trace) -> Vec<Hit> {
        UserFrustration.detect(&TraceView::new(t), &Params::default())
    }

    #[test]
    fn quiet_without_users() {
        assert!(run(&Trace::default()).is_empty());
        assert!(run(&trace(&[(false, "hello")])).is_empty());
        assert!(run(&trace(&[(true, "no, I said something")])).is_empty());
    }

    #[test]
    fn correction_points_at_the_agent_message() {
        let t = trace(&[
            (true, "Book a table for two at eight."),
            (false, "I booked a table for four at seven."),
            (true, "That's not what I asked. Two people, eight o'clock."),
        ]);
        let hits = run(&t);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Some(1));
    }

    #[test]
    fn polite_no_is_fine() {
        let t = trace(&[
            (true, "Book a table for two at eight."),
            (false, "Done. Anything else?"),
            (true, "No, thank you, that's all."),
        ]);
        assert!(run(&t).is_empty());
    }
}
