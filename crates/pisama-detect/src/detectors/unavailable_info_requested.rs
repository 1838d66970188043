//! The user says they cannot provide something ("I don't have the reservation ID with me"),
//! and the agent's very next reply asks for that same thing again, without having tried a
//! tool in between and without offering another way. The conversation is stuck: the user
//! cannot answer, and the agent neither looks the information up nor changes its approach.
//!
//! What the user lacks is read from the words after the verb ("don't have|remember|know|find
//! …"), up to the first function word that ends the phrase; the re-ask is a sentence of the
//! reply that requests something (need, provide, share, could you…) and names every one of
//! those words. A sentence that offers to look the thing up is not a re-ask.

use std::sync::OnceLock;

use regex::Regex;
use rustc_hash::FxHashMap;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    MAX_MATCHES, Speaker, is_stopword, sentence_at, speaker, timeline,
};
use crate::detectors::turns::sentences;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::view::{Idx, TraceView, tokenize};

pub(crate) struct UnavailableInfoRequested;

/// Raw score of one re-ask, and of a re-ask after the user said it twice.
const SCORE: f64 = 0.55;
const REPEATED_SCORE: f64 = 0.7;

/// "I don't have / can't remember / do not know …" and the phrase that follows.
fn inability() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:don['’]?t|do not|doesn['’]?t|does not|can['’]?t|cannot|can not|couldn['’]?t|could not|didn['’]?t|did not|unable to|no longer)\s+(?:\w+\s+)?(?:have|remember|recall|know|find|locate|access)\s+([^.,;:!?\n]{1,80})",
        )
        .expect("valid regex")
    })
}

/// A sentence that asks someone for something.
fn request() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:need|needs|required?|provide|share|send me|could you|can you|would you|please)\b")
            .expect("valid regex")
    })
}

/// A sentence that offers to find the thing another way: not a re-ask.
fn lookup() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:look(?:ing)? (?:it |them |this |that )?up|find|search|retriev\w*|locate|instead|another way|alternative\w*|without)\b")
            .expect("valid regex")
    })
}

/// Words that end the object phrase ("the reservation ID *with* me *right now*").
const PHRASE_END: &[&str] = &[
    "with",
    "right",
    "now",
    "at",
    "on",
    "here",
    "but",
    "and",
    "or",
    "so",
    "because",
    "anymore",
    "either",
    "handy",
    "yet",
    "anywhere",
    "offhand",
    "today",
    "currently",
    "since",
    "if",
    "for",
    "from",
    "in",
    "to",
    "that",
    "which",
    "as",
    "off",
];

/// Words of the object phrase that do not name the thing.
const VAGUE: &[&str] = &[
    "it",
    "that",
    "this",
    "those",
    "these",
    "them",
    "one",
    "any",
    "anything",
    "much",
    "exactly",
    "the",
    "my",
    "a",
    "an",
    "all",
    "what",
    "how",
    "where",
    "when",
    "who",
    "whether",
    "why",
    "if",
    "information",
    "info",
    "details",
    "number",
    "access",
];

/// What the user says they lack: the words that name it (singular form; empty when the
/// phrase is vague, such as "the details") and the phrase as said, for the report.
fn object_words(phrase: &str) -> (Vec<String>, String) {
    let lower = phrase.to_lowercase();
    let mut words = Vec::new();
    let mut said: Vec<&str> = Vec::new();
    for w in tokenize(&lower).take(8) {
        if PHRASE_END.contains(&w) {
            break;
        }
        if !is_stopword(w) {
            said.push(w);
        }
        if is_stopword(w) || VAGUE.contains(&w) || w.len() < 2 {
            continue;
        }
        words.push(singular(w).to_owned());
    }
    (words, said.join(" "))
}

/// Drops a plural `s` (both sides of a comparison go through it, so "ids" meets "id").
fn singular(w: &str) -> &str {
    if w.len() >= 3 && w.ends_with('s') && !w.ends_with("ss") {
        &w[..w.len() - 1]
    } else {
        w
    }
}

/// Whether a sentence of the agent asks for every one of `object`'s words.
fn re_asks(sentence: &str, object: &[String]) -> bool {
    if !request().is_match(sentence) || lookup().is_match(sentence) {
        return false;
    }
    let lower = sentence.to_lowercase();
    let words: Vec<&str> = tokenize(&lower).map(singular).collect();
    object.iter().all(|o| words.contains(&o.as_str()))
}

impl Detector for UnavailableInfoRequested {
    fn id(&self) -> &'static str {
        "unavailable-info-requested"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_findings = params.usize("max_findings", 2).max(1);
        let line = timeline(view);
        let mut hits: Vec<Hit> = Vec::new();
        // What the user has said they lack so far, and the finding about it if there is one:
        // saying it again makes that finding stronger instead of adding another.
        let mut said: FxHashMap<Vec<String>, Option<usize>> = FxHashMap::default();
        for (pos, &u) in line.iter().enumerate() {
            if speaker(view, u) != Speaker::User {
                continue;
            }
            let user_text = view.text(u);
            if !inability().is_match(user_text) {
                continue;
            }
            let Some((reply, tried)) = next_reply(view, &line[pos + 1..]) else {
                continue;
            };
            for m in inability().captures_iter(user_text).take(MAX_MATCHES) {
                let Some(phrase) = m.get(1) else { continue };
                let (object, object_said) = object_words(phrase.as_str());
                if object.is_empty() {
                    continue;
                }
                // `None`: never said before; `Some(None)`: said, not reported; `Some(Some(k))`:
                // reported as `hits[k]`.
                let earlier = said.get(&object).copied();
                if earlier.is_none() {
                    said.insert(object.clone(), None);
                }
                if tried {
                    continue;
                }
                let reply_text = view.text(reply);
                let Some(ask) = sentences(reply_text)
                    .into_iter()
                    .find(|s| re_asks(s, &object))
                else {
                    continue;
                };
                let whole = m.get(0).map_or(0, |w| w.start());
                let evidence = [
                    HitEvidence::quoted(
                        u,
                        "the user cannot provide it",
                        sentence_at(user_text, whole).trim(),
                    ),
                    HitEvidence::quoted(
                        reply,
                        "the agent's next reply asks for it again, without trying a tool",
                        ask.trim(),
                    ),
                ];
                if let Some(Some(k)) = earlier {
                    // Already reported: the same request a second time.
                    let hit = &mut hits[k];
                    hit.score = REPEATED_SCORE;
                    hit.evidence.extend(evidence);
                    hit.summary = format!(
                        "the user said more than once that they cannot give the {object_said}, and the agent kept asking for it"
                    );
                } else {
                    let score = if earlier.is_some() {
                        REPEATED_SCORE
                    } else {
                        SCORE
                    };
                    hits.push(Hit {
                            score,
                            severity: None,
                            summary: format!(
                                "the user said they cannot give the {object_said}, and the agent asked for it again"
                            ),
                            at: Some(reply),
                            evidence: evidence.into(),
                            ..Hit::default()
                        });
                    said.insert(object, Some(hits.len() - 1));
                }
                break;
            }
            if hits.len() >= max_findings {
                break;
            }
        }
        hits
    }
}

/// The agent's next message with text after a user turn, and whether the agent called a tool
/// before (or while) writing it. `None` when the user speaks again first or the run ends.
fn next_reply(view: &TraceView<'_>, rest: &[Idx]) -> Option<(Idx, bool)> {
    let mut tried = false;
    for &i in rest {
        match speaker(view, i) {
            Speaker::Tool => tried = true,
            Speaker::User => return None,
            Speaker::System => {}
            Speaker::Agent => {
                if !view.children(i).is_empty() {
                    tried = true;
                }
                if !view.text(i).trim().is_empty() {
                    return Some((i, tried));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_phrase_stops_at_function_words() {
        let (words, said) = object_words("the reservation ID with me right now");
        assert_eq!(words, ["reservation", "id"]);
        assert_eq!(said, "reservation id");
        assert_eq!(object_words("my user IDs").0, ["user", "id"]);
        assert_eq!(object_words("the order number anymore").1, "order number");
        assert!(object_words("those details with me").0.is_empty());
        assert!(object_words("what it was").0.is_empty());
    }

    #[test]
    fn a_lookup_offer_is_not_a_re_ask() {
        let object = vec!["user".to_owned(), "id".to_owned()];
        assert!(re_asks(
            "Unfortunately, I need your user ID to proceed.",
            &object
        ));
        assert!(!re_asks(
            "If you give me your e-mail, I can look up your user ID for you.",
            &object
        ));
        assert!(!re_asks("Your user ID is on the ticket.", &object));
    }
}
