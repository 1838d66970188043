//! The agent asks again for something the user (or another agent) already gave earlier in the
//! run: an id, an e-mail, a phone number, a name, a postal code. A sign the agent lost
//! (part of) its conversation history, or never read it.

use std::collections::HashMap;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{Span, SpanKind};

pub(crate) struct LossOfConversationHistory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    UserId,
    Reservation,
    Order,
    Account,
    Ticket,
    Email,
    Phone,
    Name,
    Zip,
}

impl Slot {
    const ALL: [Slot; 9] = [
        Slot::UserId,
        Slot::Reservation,
        Slot::Order,
        Slot::Account,
        Slot::Ticket,
        Slot::Email,
        Slot::Phone,
        Slot::Name,
        Slot::Zip,
    ];

    fn label(self) -> &'static str {
        match self {
            Slot::UserId => "user id",
            Slot::Reservation => "reservation or booking number",
            Slot::Order => "order number",
            Slot::Account => "account number",
            Slot::Ticket => "ticket or case number",
            Slot::Email => "e-mail address",
            Slot::Phone => "phone number",
            Slot::Name => "name",
            Slot::Zip => "postal code",
        }
    }

    /// How a question names the slot (stricter than [`Slot::keywords`]: "your reservation"
    /// alone is about the booking, not a request for its number).
    fn ask_keywords(self) -> &'static str {
        match self {
            Slot::Reservation => {
                r"reservation\s*(?:_|-)?\s*(?:id|number|code)|booking\s+(?:id|number|reference|code)|confirmation\s+(?:number|code)|pnr"
            }
            Slot::Order => r"order\s*(?:_|-)?\s*(?:id|number|#)",
            other => other.keywords(),
        }
    }

    /// How the slot is named next to a value in a message.
    fn keywords(self) -> &'static str {
        match self {
            Slot::UserId => {
                r"user\s*(?:_|-)?\s*id|user\s*name|username|customer\s+(?:id|number)|member(?:ship)?\s+(?:id|number)"
            }
            Slot::Reservation => {
                r"reservation\s*(?:_|-)?\s*(?:id|number|code)?|booking\s+(?:id|number|reference|code)|confirmation\s+(?:number|code)|pnr"
            }
            Slot::Order => r"order\s*(?:_|-)?\s*(?:id|number|#)?",
            Slot::Account => r"account\s+(?:id|number)",
            Slot::Ticket => r"(?:ticket|case|incident)\s+(?:id|number|#)",
            Slot::Email => r"e-?mail(?:\s+address)?",
            Slot::Phone => r"(?:phone|mobile|cell|contact)\s+(?:number)?",
            Slot::Name => r"(?:full\s+|first\s+|last\s+)?name",
            Slot::Zip => r"zip(?:\s*code)?|postal\s+code|postcode",
        }
    }
}

/// Words of which the id-slot keywords (user id, reservation, order, account, ticket) hold at
/// least one.
const SLOT_WORDS: &[&str] = &[
    "user",
    "customer",
    "member",
    "reservation",
    "booking",
    "confirmation",
    "pnr",
    "order",
    "account",
    "ticket",
    "case",
    "incident",
];

struct Patterns {
    slot_words: AhoCorasick,
    ask: Regex,
    slot_in_ask: Vec<(Slot, Regex)>,
    slot_near_value: Vec<(Slot, Regex)>,
    id_token: Regex,
    email: Regex,
    phone: Regex,
    name_given: Regex,
    zip: Regex,
    legit: Regex,
    confirm: Regex,
    failed: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let r = |s: &str| Regex::new(s).expect("valid regex");
        Patterns {
            slot_words: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(SLOT_WORDS)
                .expect("valid keywords"),
            ask: r(r"(?i)\b(?:(?:could|can|would|will)\s+you\s+(?:please\s+)?(?:provide|share|give|tell|send|confirm|let\s+me\s+know)|(?:please|kindly)\s+(?:provide|share|give|tell|send|confirm|let\s+me\s+know)|what(?:'s|\s+is)\s+your|may\s+i\s+(?:have|ask\s+for|get)|i(?:'ll|\s+will)?\s+(?:also\s+)?need\s+your)\b"),
            // In a question the slot follows "your" or "the".
            slot_in_ask: Slot::ALL
                .iter()
                .map(|&s| {
                    (
                        s,
                        r(&format!(r"(?i)\b(?:your|the)\s+(?:{})\b", s.ask_keywords())),
                    )
                })
                .collect(),
            slot_near_value: Slot::ALL
                .iter()
                // The slot's name right before the value: "order number is 5521", "PNR: QX12AB".
                .map(|&s| {
                    (
                        s,
                        r(&format!(
                            r#"(?i)\b(?:{})(?:[\s:#=,'"-]|\bis\b|\bwas\b|\bit's\b|\bid\b|\bnumber\b|\bcode\b|\bno\.?)*$"#,
                            s.keywords()
                        )),
                    )
                })
                .collect(),
            id_token: r(r"#?\b[A-Za-z0-9][A-Za-z0-9_-]{3,30}[A-Za-z0-9]\b"),
            email: r(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
            phone: r(r"\+?\d[\d\s().-]{8,}\d"),
            name_given: r(r"\b(?:[Mm]y\s+(?:full\s+)?name\s+is|[Tt]his\s+is|I\s+am|I'm)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2})"),
            zip: r(r"\b\d{5}(?:-\d{4})?\b"),
            // Asking for another person's data, a new value, or a correction is legitimate.
            legit: r(r"(?i)\b(?:again|double-?check|re-?enter|correct|valid|verify|different|another|other|new|additional|second|each|every|passengers?|travell?ers?|companions?|guests?|recipient|their|his|her|spell|typo|mistake|incorrect|wrong|doesn't\s+match|does\s+not\s+match|couldn't\s+find|could\s+not\s+find|not\s+found)\b"),
            confirm: r(r"(?i)\bconfirm\b"),
            failed: r(r"(?i)not\s+found|no\s+such|does\s+not\s+exist|invalid|unknown|error|mismatch"),
        }
    })
}

/// Whether a token looks like an identifier (letters and digits, or a long number).
fn id_like(tok: &str) -> bool {
    let t = tok.trim_start_matches('#');
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let alpha = t.chars().filter(char::is_ascii_alphabetic).count();
    (digits >= 2 && alpha >= 1 && t.len() >= 5) || (digits >= 4 && alpha == 0)
}

/// Values for slots found in a message. `asked` are the slots the previous agent message asked
/// for: a short reply then answers them.
/// The matches of `id_token` (`#?\b[A-Za-z0-9][A-Za-z0-9_-]{3,30}[A-Za-z0-9]\b`) that can
/// be id-like (two digits or more), in text order: the same as filtering `find_iter`, but the
/// regex only looks at the runs of `[A-Za-z0-9_-]` that hold two digits. A match never
/// crosses such a run, so each run is searched on its own, with one character of context on
/// either side so that `\b` sees what it sees in the whole text.
fn id_like_tokens<'t>(id_token: &Regex, text: &'t str) -> Vec<regex::Match<'t>> {
    let bytes = text.as_bytes();
    let in_run = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut out = Vec::new();
    let mut k = 0;
    while k < bytes.len() {
        if !in_run(bytes[k]) {
            k += 1;
            continue;
        }
        let start = k;
        let mut digits = 0;
        while k < bytes.len() && in_run(bytes[k]) {
            digits += usize::from(bytes[k].is_ascii_digit());
            k += 1;
        }
        // A match is at least five characters of the run (`#` aside).
        if digits < 2 || k - start < 5 {
            continue;
        }
        // One character after the run (it may be several bytes) for the final `\b`.
        let end = text[k..].chars().next().map_or(k, |c| k + c.len_utf8());
        let haystack = &text[..end];
        let mut from = if start > 0 && bytes[start - 1] == b'#' {
            start - 1
        } else {
            start
        };
        while let Some(m) = id_token.find_at(haystack, from) {
            if m.start() >= k {
                break;
            }
            out.push(m);
            from = m.end();
        }
    }
    out
}

fn values_in(text: &str, asked: &[Slot]) -> Vec<(Slot, String)> {
    let p = patterns();
    let mut out: Vec<(Slot, String)> = Vec::new();
    let add = |slot: Slot, v: &str, out: &mut Vec<(Slot, String)>| {
        if !out.iter().any(|(s, _)| *s == slot) {
            out.push((slot, v.to_owned()));
        }
    };
    // An address holds an `@`: a byte search, where the pattern would scan every text.
    if text.contains('@')
        && let Some(m) = p.email.find(text)
    {
        add(Slot::Email, m.as_str(), &mut out);
    }
    if may_give_name(text)
        && let Some(c) = p.name_given.captures(text)
        && let Some(m) = c.get(1)
    {
        add(Slot::Name, m.as_str(), &mut out);
    }
    // Identifiers tied to a slot keyword shortly before them.
    // An id-like token has at least two digits, a phone number ten; most texts have fewer.
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let id_text = if digits >= 2 { text } else { "" };
    for m in id_like_tokens(&p.id_token, id_text) {
        if !id_like(m.as_str()) || p.email.is_match(m.as_str()) {
            continue;
        }
        let mut from = m.start().saturating_sub(40);
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let before = &text[from..m.start()];
        // Every slot pattern tried here names its slot with one of `SLOT_WORDS`.
        if before.is_ascii() && !p.slot_words.is_match(before) {
            continue;
        }
        for (slot, re) in &p.slot_near_value {
            if matches!(slot, Slot::Email | Slot::Name | Slot::Phone | Slot::Zip) {
                continue;
            }
            if re.is_match(before) {
                add(*slot, m.as_str(), &mut out);
            }
        }
    }
    if let Some(m) = p.phone.find(if digits >= 10 { text } else { "" })
        && m.as_str().chars().filter(char::is_ascii_digit).count() >= 10
        && (asked.contains(&Slot::Phone) || {
            let lower = text.to_lowercase();
            ["phone", "mobile", "cell"]
                .iter()
                .any(|k| lower.contains(k))
        })
    {
        add(Slot::Phone, m.as_str().trim(), &mut out);
    }
    // A short reply to a question answers it.
    if text.len() <= 300 {
        for &slot in asked {
            match slot {
                Slot::Zip => {
                    if let Some(m) = p.zip.find(text) {
                        add(slot, m.as_str(), &mut out);
                    }
                }
                Slot::Name => {
                    let words: Vec<&str> = text
                        .split_whitespace()
                        .map(|w| w.trim_matches(|c: char| !c.is_alphabetic()))
                        .filter(|w| w.chars().next().is_some_and(char::is_uppercase) && w.len() > 1)
                        .collect();
                    if (1..=3).contains(&words.len()) && words.iter().all(|w| *w != "I") {
                        add(slot, &words.join(" "), &mut out);
                    }
                }
                Slot::Email | Slot::Phone => {}
                _ => {
                    if let Some(m) = p.id_token.find_iter(text).find(|m| id_like(m.as_str())) {
                        add(slot, m.as_str(), &mut out);
                    }
                }
            }
        }
    }
    out
}

/// Whether `Patterns::name_given` can match: each of its phrasings holds `name` ("my name
/// is"), `his` ("this is") or an `I` before a space or an apostrophe ("I am", "I'm"). The
/// pattern is case-sensitive there, and `\s` and `char::is_whitespace` are the same set.
fn may_give_name(text: &str) -> bool {
    text.contains("name")
        || text.contains("his")
        || text
            .match_indices('I')
            .any(|(k, _)| text[k + 1..].starts_with(|c: char| c == '\'' || c.is_whitespace()))
}

/// The question sentence of an agent message and the slots it asks for.
fn asks_in(text: &str) -> Vec<(Slot, String)> {
    let p = patterns();
    let mut out = Vec::new();
    for sentence in text.split_inclusive(['?', '.', '\n', '!']) {
        if !p.ask.is_match(sentence) {
            continue;
        }
        for (slot, re) in &p.slot_in_ask {
            if re.is_match(sentence) && !out.iter().any(|(s, _)| s == slot) {
                out.push((*slot, sentence.trim().to_owned()));
            }
        }
    }
    out
}

/// Whether a text can hold a request at all: every phrasing `Patterns::ask` knows contains
/// one of these words. Checked on ASCII text only, where lower-casing and the regex's case
/// folding agree; other text always goes to the regex.
fn may_ask(text: &str, lower: &str) -> bool {
    !text.is_ascii()
        || ["you", "please", "kindly", "may"]
            .iter()
            .any(|w| lower.contains(w))
}

fn speaker(span: &Span) -> Option<&str> {
    match span.kind {
        SpanKind::Human => None,
        _ => Some(span.agent.as_deref().unwrap_or("agent")),
    }
}

impl Detector for LossOfConversationHistory {
    fn id(&self) -> &'static str {
        "loss-of-conversation-history"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_turns = params.usize("min_turns_between", 1);
        let p = patterns();
        // slot -> (value, span, speaker (None = user), conversation position)
        let mut known: HashMap<Slot, (String, usize, Option<String>, usize)> = HashMap::new();
        let mut invalidated: Vec<String> = Vec::new();
        let mut asked_last: Vec<Slot> = Vec::new();
        let mut reported: Vec<Slot> = Vec::new();
        let mut hits = Vec::new();
        let conv = view.conversation();
        let mut tool_cursor = 0usize;
        let tools = view.tools();
        for (pos, &i) in conv.iter().enumerate() {
            // Tool calls up to here that failed on a known value make asking again legitimate.
            while tool_cursor < tools.len() && tools[tool_cursor] < i {
                let t = tools[tool_cursor];
                let out = view.text(t);
                // Arguments only matter when there are values to find in them.
                if !known.is_empty()
                    && (view.failed(t) || (out.len() < 400 && p.failed.is_match(out)))
                {
                    let args = view
                        .span(t)
                        .tool
                        .as_ref()
                        .map(|c| c.arguments.to_string())
                        .unwrap_or_default();
                    for (v, ..) in known.values() {
                        if args.contains(v.as_str()) {
                            invalidated.push(v.clone());
                        }
                    }
                }
                tool_cursor += 1;
            }
            let span = view.span(i);
            let text = view.text(i);
            if text.trim().is_empty() {
                continue;
            }
            let who = speaker(span);
            if span.kind == SpanKind::Human
                || span.kind == SpanKind::Llm
                || span.kind == SpanKind::Agent
                || span.kind == SpanKind::Step
            {
                // Check the agent's questions against what it was told.
                if let Some(asker) = who {
                    let asks = if may_ask(text, view.lower(i)) {
                        asks_in(text)
                    } else {
                        Vec::new()
                    };
                    for (slot, sentence) in &asks {
                        let Some((value, at, giver, given_pos)) = known.get(slot) else {
                            continue;
                        };
                        if giver.as_deref() == Some(asker)
                            || reported.contains(slot)
                            || pos < given_pos + 1 + min_turns
                            || invalidated.contains(value)
                            || p.legit.is_match(sentence)
                            || text.to_lowercase().contains(&value.to_lowercase())
                        {
                            continue;
                        }
                        let confirm = p.confirm.is_match(sentence);
                        let turns = pos - given_pos;
                        let score = (0.5 + 0.08 * (turns.min(5) as f64)
                            - if confirm { 0.15 } else { 0.0 })
                        .clamp(0.3, 0.9);
                        reported.push(*slot);
                        let from = giver
                            .as_ref()
                            .map_or_else(|| "the user".to_owned(), |g| format!("`{g}`"));
                        hits.push(Hit {
                            score,
                            severity: Some(if confirm { Severity::Low } else { Severity::Medium }),
                            summary: format!(
                                "the agent asks for the {} although {from} gave it {turns} turn{} earlier",
                                slot.label(),
                                if turns == 1 { "" } else { "s" }
                            ),
                            at: Some(i),
                            evidence: vec![
                                HitEvidence::quoted(*at, format!("{} given here", slot.label()), value.clone()),
                                HitEvidence::quoted(i, "asked again", sentence.clone()),
                            ],
                            ..Hit::default()
                        });
                    }
                    asked_last = asks.iter().map(|a| a.0).collect();
                } else {
                    asked_last.clear();
                }
                // Record what this message gives (users always; agents for other agents).
                let asked = if who.is_none() {
                    asked_last.clone()
                } else {
                    Vec::new()
                };
                for (slot, value) in values_in(text, &asked) {
                    known.insert(slot, (value, i, who.map(str::to_owned), pos));
                }
                if who.is_none() {
                    asked_last.clear();
                }
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_tokens_match_a_full_scan() {
        let re = &patterns().id_token;
        for text in [
            "booking #QX12AB and order 12-34-5678, ref é12ab34é, x_9912_y",
            "##AB12CD a1 b22 4200 dollars, 2024-03-01T10:00 ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab",
            "id-12-ab--34 -99x9 ü1234 12345678901234567890123456789012345678",
            "",
        ] {
            let full: Vec<(usize, &str)> = re
                .find_iter(text)
                .filter(|m| m.as_str().bytes().filter(u8::is_ascii_digit).count() >= 2)
                .map(|m| (m.start(), m.as_str()))
                .collect();
            let fast: Vec<(usize, &str)> = id_like_tokens(re, text)
                .into_iter()
                .map(|m| (m.start(), m.as_str()))
                .collect();
            assert_eq!(fast, full, "{text}");
        }
    }

    #[test]
    fn asks_and_values() {
        let a = asks_in("Sure. Could you please provide your user ID so I can look it up?");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, Slot::UserId);
        assert!(asks_in("Your flight departs at 9am.").is_empty());
        let v = values_in(
            "Hi, my reservation number is QX12AB and my email is ana@mail.test",
            &[],
        );
        assert!(
            v.iter()
                .any(|(s, x)| *s == Slot::Reservation && x == "QX12AB")
        );
        assert!(v.iter().any(|(s, _)| *s == Slot::Email));
        let v = values_in("sure, it's mia_li_3668", &[Slot::UserId]);
        assert_eq!(v, vec![(Slot::UserId, "mia_li_3668".to_owned())]);
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            LossOfConversationHistory
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
