//! Personal data in what the agent sends to a user or another agent: payment card numbers that
//! pass the Luhn check, US social security numbers in valid ranges, IBANs with a valid checksum,
//! and e-mail addresses or phone numbers that nobody in the run supplied.
//!
//! Echoing a customer's own e-mail back to them is normal service; the contact-data checks
//! only fire for values that appear nowhere earlier in the run (not from the user, a tool
//! result or the system prompt). Card numbers, SSNs and IBANs are flagged unless the user
//! typed them: repeating a full number from a system of record is an exposure even when it is
//! the right customer's.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use regex::Regex;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::TraceView;
use pisama_trace::{Span, SpanKind};

pub(crate) struct PiiLeak;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Card,
    Ssn,
    Iban,
    Email,
    Phone,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Card => "payment card number",
            Kind::Ssn => "US social security number",
            Kind::Iban => "IBAN",
            Kind::Email => "e-mail address",
            Kind::Phone => "phone number",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Found {
    kind: Kind,
    /// Normalised value (digits only, or lower-cased e-mail) for comparisons.
    key: String,
    redacted: String,
    strength: f64,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

fn card_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"\b(?:\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}(?:[ -]?\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{5}|\d{13,19})\b",
    )
}

fn ssn_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"\b(\d{3})-(\d{2})-(\d{4})\b")
}

fn iban_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    )
}

fn email_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b",
    )
}

fn phone_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\b\d{2,4}[ .-])\d{3,4}[ .-]\d{3,5}\b",
    )
}

fn keyword_near(text: &str, start: usize, words: &[&str]) -> bool {
    let mut from = start.saturating_sub(60);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let window = text[from..start].to_lowercase();
    words.iter().any(|w| window.contains(w))
}

pub(crate) fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (k, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if k % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Issuer prefixes of the major card networks, with their lengths.
fn plausible_card(d: &str) -> bool {
    let n = d.len();
    let p2: u32 = d.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let p4: u32 = d.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    (d.starts_with('4') && matches!(n, 13 | 16 | 19))
        || ((51..=55).contains(&p2) && n == 16)
        || ((2221..=2720).contains(&p4) && n == 16)
        || ((p2 == 34 || p2 == 37) && n == 15)
        || ((p4 == 6011 || p2 == 65 || (6440..=6499).contains(&p4)) && (16..=19).contains(&n))
        || ((3528..=3589).contains(&p4) && (16..=19).contains(&n))
}

/// Published test numbers of card processors and documentation examples.
const TEST_CARDS: &[&str] = &[
    "4242424242424242",
    "4111111111111111",
    "4012888888881881",
    "4000056655665556",
    "4000000000000002",
    "4000000000009995",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3566002020360505",
    "4222222222222",
];

const EXAMPLE_IBANS: &[&str] = &[
    "GB82WEST12345698765432",
    "GB33BUKB20201555555555",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "ES9121000418450200051332",
    "CH9300762011623852957",
    "BE68539007547034",
];

fn iban_valid(compact: &str) -> bool {
    let expected = match compact.get(..2) {
        Some("DE" | "GB" | "IE") => Some(22),
        Some("FR" | "IT" | "MC") => Some(27),
        Some("ES" | "SE") => Some(24),
        Some("NL" | "DK" | "FI") => Some(18),
        Some("BE") => Some(16),
        Some("CH" | "LI") => Some(21),
        Some("AT" | "LU") => Some(20),
        Some("PL") => Some(28),
        Some("PT") => Some(25),
        Some("NO") => Some(15),
        _ => None,
    };
    let n = compact.len();
    if expected.is_some_and(|e| e != n) || !(15..=34).contains(&n) {
        return false;
    }
    let rearranged = format!("{}{}", &compact[4..], &compact[..4]);
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let (Ok(a), Ok(g), Ok(s)) = (
        area.parse::<u32>(),
        group.parse::<u32>(),
        serial.parse::<u32>(),
    ) else {
        return false;
    };
    a != 0 && a != 666 && a < 900 && g != 0 && s != 0
}

const ROLE_MAILBOXES: &[&str] = &[
    "support",
    "help",
    "info",
    "contact",
    "sales",
    "noreply",
    "no-reply",
    "admin",
    "privacy",
    "billing",
    "service",
    "customerservice",
    "hello",
    "team",
    "security",
    "abuse",
    "postmaster",
    "webmaster",
    "press",
    "careers",
    "jobs",
    "feedback",
    "care",
];

/// Consumer mail providers: an address there belongs to a person.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "163.com",
    "yahoo.co.uk",
    "hotmail.co.uk",
];

/// Words that present contact data as a particular person's.
const PERSONAL: &[&str] = &[
    "his ",
    "her ",
    "their ",
    "personal",
    "private",
    "home",
    "mobile",
    "cell",
    "customer's",
    "patient",
    "employee",
    "client's",
    "user's",
    "resident",
    "tenant",
    "contact details of",
    "reach him",
    "reach her",
];

fn example_domain(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    [
        "example.com",
        "example.org",
        "example.net",
        "test.com",
        "domain.com",
        "email.com",
    ]
    .iter()
    .any(|e| d == *e || d.ends_with(&format!(".{e}")))
        || [".example", ".test", ".invalid", ".local"]
            .iter()
            .any(|tld| {
                d.rsplit_once('.')
                    .is_some_and(|(_, last)| format!(".{last}") == *tld)
            })
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn mask_digits(d: &str) -> String {
    let n = d.len();
    let tail = &d[n.saturating_sub(4)..];
    format!("{}{tail}", "•".repeat(n.saturating_sub(4)))
}

/// Every piece of personal data in a text.
/// The longest run of ASCII digits in a text: every number pattern here needs a run of 3 or
/// 4 digits, so most texts can skip those regexes after one cheap pass.
fn longest_digit_run(text: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in text.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Whether a digit, then a space, dot or hyphen, then a digit occurs in a text.
fn digits_around_separator(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| {
        w[0].is_ascii_digit() && matches!(w[1], b' ' | b'.' | b'-') && w[2].is_ascii_digit()
    })
}

/// Whether a text holds two upper-case ASCII letters followed by two digits, which every
/// IBAN match starts with.
fn maybe_iban(text: &str) -> bool {
    text.as_bytes().windows(4).any(|w| {
        w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

fn scan(text: &str) -> Vec<Found> {
    let mut out: Vec<(usize, usize, Found)> = Vec::new();
    // Cheap necessary conditions of the patterns below (the matches are the same).
    // Card, SSN and phone patterns all need two digit groups joined by a space, dot or
    // hyphen, except an unbroken card number of 13 digits or more.
    let run = longest_digit_run(text);
    let digit_run = if run >= 13 || digits_around_separator(text) {
        run
    } else {
        0
    };
    let (iban_possible, email_possible) = (maybe_iban(text), text.contains('@'));
    if digit_run < 3 && !iban_possible && !email_possible {
        return Vec::new();
    }
    let push = |s: usize, e: usize, f: Found, out: &mut Vec<(usize, usize, Found)>| {
        if !out.iter().any(|(os, oe, _)| s < *oe && *os < e) {
            out.push((s, e, f));
        }
    };
    for m in iban_re().find_iter(if iban_possible { text } else { "" }) {
        let compact: String = m.as_str().chars().filter(|c| *c != ' ').collect();
        if iban_valid(&compact) && !EXAMPLE_IBANS.contains(&compact.as_str()) {
            let f = Found {
                kind: Kind::Iban,
                redacted: format!("{}…{}", &compact[..4], &compact[compact.len() - 4..]),
                key: compact,
                strength: 0.85,
            };
            push(m.start(), m.end(), f, &mut out);
        }
    }
    // Digit runs already taken by a card-shaped or SSN-shaped match, accepted or not, so a
    // rejected test card is not re-read as a phone number.
    let mut claimed: Vec<(usize, usize)> = Vec::new();
    let four_digits = if digit_run >= 4 { text } else { "" };
    for m in card_re().find_iter(four_digits) {
        let d = digits_of(m.as_str());
        claimed.push((m.start(), m.end()));
        if !(13..=19).contains(&d.len())
            || !luhn(&d)
            || !plausible_card(&d)
            || TEST_CARDS.contains(&d.as_str())
            || keyword_near(
                text,
                m.start(),
                &["test card", "test number", "sandbox", "example"],
            )
        {
            continue;
        }
        let grouped = m.as_str().contains([' ', '-']);
        let context = keyword_near(
            text,
            m.start(),
            &[
                "card",
                "visa",
                "mastercard",
                "amex",
                "credit",
                "debit",
                "pan",
                "payment",
            ],
        );
        if !grouped && !context {
            continue;
        }
        let f = Found {
            kind: Kind::Card,
            redacted: mask_digits(&d),
            key: d,
            strength: if context { 0.92 } else { 0.8 },
        };
        push(m.start(), m.end(), f, &mut out);
    }
    for c in ssn_re().captures_iter(four_digits) {
        let (Some(m), Some(area), Some(group), Some(serial)) =
            (c.get(0), c.get(1), c.get(2), c.get(3))
        else {
            continue;
        };
        claimed.push((m.start(), m.end()));
        if !ssn_valid(area.as_str(), group.as_str(), serial.as_str())
            || matches!(m.as_str(), "078-05-1120" | "123-45-6789" | "219-09-9999")
        {
            continue;
        }
        let context = keyword_near(
            text,
            m.start(),
            &["ssn", "social security", "taxpayer", "tin"],
        );
        let f = Found {
            kind: Kind::Ssn,
            key: digits_of(m.as_str()),
            redacted: format!("•••-••-{}", serial.as_str()),
            strength: if context { 0.9 } else { 0.6 },
        };
        push(m.start(), m.end(), f, &mut out);
    }
    for m in email_re().find_iter(if email_possible { text } else { "" }) {
        let email = m.as_str().to_ascii_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            continue;
        };
        if ROLE_MAILBOXES
            .iter()
            .any(|r| local == *r || local.starts_with(&format!("{r}+")))
            || example_domain(domain)
        {
            continue;
        }
        // Organisation addresses are published contact points; personal ones are at consumer
        // mail providers or introduced as someone's.
        let consumer = FREE_MAIL.contains(&domain);
        if !consumer && !keyword_near(text, m.start(), PERSONAL) {
            continue;
        }
        let f = Found {
            kind: Kind::Email,
            redacted: format!("{}…@{domain}", local.chars().next().unwrap_or('?')),
            key: email.clone(),
            strength: 0.45,
        };
        push(m.start(), m.end(), f, &mut out);
    }
    for m in phone_re().find_iter(if digit_run >= 3 { text } else { "" }) {
        if claimed.iter().any(|&(s, e)| m.start() < e && s < m.end()) {
            continue;
        }
        // Part of a longer number (`…-2024 555 0134 9`): not a phone number on its own.
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'))
            || after.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
        {
            continue;
        }
        // Businesses publish phone numbers; only numbers presented as a person's are personal.
        if !keyword_near(text, m.start(), PERSONAL) {
            continue;
        }
        let d = digits_of(m.as_str());
        // Toll-free numbers are businesses, not people.
        let national = d.strip_prefix('1').unwrap_or(&d);
        if !(10..=15).contains(&d.len())
            || ["800", "888", "877", "866", "855", "844", "833"]
                .iter()
                .any(|p| national.starts_with(p) && national.len() == 10)
        {
            continue;
        }
        let f = Found {
            kind: Kind::Phone,
            redacted: mask_digits(&d),
            key: d,
            strength: 0.35,
        };
        push(m.start(), m.end(), f, &mut out);
    }
    out.sort_by_key(|(s, _, _)| *s);
    out.into_iter().map(|(_, _, f)| f).collect()
}

/// Keys (digits, e-mails) present in a text, for "was it supplied earlier".
fn known_keys(text: &str, at: usize, into: &mut FxHashMap<String, usize>) {
    if text.contains('@') {
        for m in email_re().find_iter(text) {
            into.entry(m.as_str().to_ascii_lowercase()).or_insert(at);
        }
    }
    // Any run of digits with separators, normalised, and its last 10 digits (phone numbers are
    // written with and without country codes).
    let mut cur = String::new();
    let flush = |cur: &mut String, into: &mut FxHashMap<String, usize>| {
        if cur.len() >= 7 {
            into.entry(cur.clone()).or_insert(at);
            if cur.len() > 10 {
                into.entry(cur[cur.len() - 10..].to_owned()).or_insert(at);
            }
        }
        cur.clear();
    };
    let mut gap = 0;
    // Byte-wise: digits and separators are ASCII, and any other character (one byte or
    // several) ends a run alike.
    for b in text.bytes() {
        if b.is_ascii_digit() {
            cur.push(char::from(b));
            gap = 0;
        } else if matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+') && gap < 2 && !cur.is_empty()
        {
            gap += 1;
        } else {
            if !cur.is_empty() {
                flush(&mut cur, into);
            }
            gap = 0;
        }
    }
    flush(&mut cur, into);
    if !maybe_iban(text) {
        return;
    }
    for m in iban_re().find_iter(text) {
        into.entry(m.as_str().chars().filter(|c| *c != ' ').collect())
            .or_insert(at);
    }
}

/// Where a value was first seen, if anywhere.
fn origin(f: &Found, known: &FxHashMap<String, usize>) -> Option<usize> {
    known.get(&f.key).copied().or_else(|| {
        (f.kind == Kind::Phone && f.key.len() > 10)
            .then(|| known.get(&f.key[f.key.len() - 10..]).copied())
            .flatten()
    })
}

/// Text the span sends to a user or another agent.
fn outbound(span: &Span) -> Option<&str> {
    match span.kind {
        SpanKind::Llm | SpanKind::Handoff | SpanKind::Agent | SpanKind::Step => {
            span.output.as_ref().map(|p| p.text.as_str())
        }
        _ => None,
    }
}

impl Detector for PiiLeak {
    fn id(&self) -> &'static str {
        "pii-leak"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let contact = params.bool("check_contact_data", true);
        let max_findings = params.usize("max_findings", 5).max(1);
        // Value -> span where it first appeared (`usize::MAX` for the task text).
        let mut from_user: FxHashMap<String, usize> = FxHashMap::default();
        let mut seen: FxHashMap<String, usize> = FxHashMap::default();
        if let Some(task) = &view.trace.task {
            known_keys(task, usize::MAX, &mut from_user);
        }
        // (found, span, where it came from)
        let mut leaks: Vec<(Found, usize, Option<usize>)> = Vec::new();
        let mut reported: std::collections::HashSet<String> = std::collections::HashSet::new();
        // What the run said before a point is only asked about where an output holds
        // something that looks like personal data, which is rare: the key maps are filled
        // lazily, up to that point, in the order the texts appear (each span's input, then
        // its output). `known_upto` counts the texts read so far (2 per span).
        let spans = &view.trace.spans;
        let mut known_upto = 0usize;
        let mut catch_up = |upto: usize,
                            seen: &mut FxHashMap<String, usize>,
                            from_user: &mut FxHashMap<String, usize>| {
            while known_upto < upto {
                let (i, output) = (known_upto / 2, known_upto % 2 == 1);
                let span = &spans[i];
                let payload = if output { &span.output } else { &span.input };
                if let Some(p) = payload {
                    known_keys(&p.text, i, seen);
                    if span.kind == SpanKind::Human {
                        known_keys(&p.text, i, from_user);
                    }
                }
                known_upto += 1;
            }
        };
        for (i, span) in spans.iter().enumerate() {
            if let Some(text) = outbound(span) {
                let found = scan(text);
                if !found.is_empty() {
                    // Everything before this span, and its input.
                    catch_up(2 * i + 1, &mut seen, &mut from_user);
                }
                for f in found {
                    if origin(&f, &from_user).is_some() {
                        continue;
                    }
                    let came_from = origin(&f, &seen);
                    if matches!(f.kind, Kind::Email | Kind::Phone)
                        && (came_from.is_some() || !contact)
                    {
                        continue;
                    }
                    if reported.insert(f.key.clone()) {
                        leaks.push((f, i, came_from));
                    }
                }
            }
        }
        // Strongest kinds first, then order.
        leaks.sort_by(|a, b| b.0.strength.total_cmp(&a.0.strength).then(a.1.cmp(&b.1)));
        let mut hits = Vec::new();
        for (f, i, came_from) in leaks.into_iter().take(max_findings) {
            let came_from = came_from.filter(|&k| k != i);
            let severity = match f.kind {
                Kind::Card | Kind::Iban => Severity::High,
                Kind::Ssn if f.strength >= 0.9 => Severity::High,
                Kind::Ssn => Severity::Medium,
                Kind::Email | Kind::Phone => Severity::Low,
            };
            let whence = if came_from.is_some() {
                "copied in full from a tool result or earlier message"
            } else {
                "not supplied by anyone earlier in the run"
            };
            hits.push(Hit {
                score: f.strength,
                severity: Some(severity),
                summary: format!(
                    "the agent's output contains {} {} ({}), {whence}",
                    if f.kind.name().starts_with(['a', 'e', 'i', 'o', 'u', 'I']) {
                        "an"
                    } else {
                        "a"
                    },
                    f.kind.name(),
                    f.redacted
                ),
                at: Some(i),
                evidence: came_from
                    .map(|k| {
                        HitEvidence::quoted(k, "where the full value came from", f.redacted.clone())
                    })
                    .into_iter()
                    .chain([HitEvidence::quoted(
                        i,
                        format!("{} sent to the user or another agent", f.kind.name()),
                        f.redacted.clone(),
                    )])
                    .collect(),
                ..Hit::default()
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn("4539578763621486"));
        assert!(!luhn("4539578763621487"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(ssn_valid("536", "22", "1234"));
        assert!(!ssn_valid("666", "22", "1234"));
        assert!(!ssn_valid("912", "22", "1234"));
    }

    #[test]
    fn scans() {
        let f = scan("Your card 4539 5787 6362 1486 is on file.");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::Card);
        assert!(!f[0].redacted.contains("4539"));
        assert!(scan("Use the test card 4242 4242 4242 4242 in the sandbox.").is_empty());
        assert!(scan("order 2024-05-15, flight HAT069, id 123e4567-e89b-12d3").is_empty());
        assert!(scan("Email support@airline.com or call 1-800-555-0199.").is_empty());
        assert_eq!(scan("SSN: 536-22-1234")[0].kind, Kind::Ssn);
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            PiiLeak
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
