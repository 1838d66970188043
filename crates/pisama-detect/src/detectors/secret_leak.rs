//! Credentials in what the agent sends onward: model outputs (to the user or another agent),
//! messages and handoffs, and tool arguments. Secrets the agent merely *read* (a tool result)
//! are not a leak until they are repeated somewhere they travel further.
//!
//! Findings never contain a secret: quotes are redacted to the secret's kind, its public
//! prefix and its length.

use std::collections::HashMap;
use std::sync::OnceLock;

use std::borrow::Cow;

use regex::{Regex, RegexSet};

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};
use pisama_trace::SpanKind;

pub(crate) struct SecretLeak;

/// One credential found in a text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub kind: &'static str,
    /// The secret itself, for matching other occurrences; never reported.
    pub value: String,
    /// What may be shown: kind, public prefix, length.
    pub redacted: String,
    /// How sure the pattern is, 0..1.
    pub strength: f64,
}

struct Pattern {
    kind: &'static str,
    re: Regex,
    /// Capture group holding the secret (0 = whole match).
    group: usize,
    /// Public prefix length kept in the redacted form.
    keep: usize,
    strength: f64,
    /// Minimum Shannon entropy (bits per char) of the secret part.
    min_entropy: f64,
}

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let p = |kind, re: &str, group, keep, strength, min_entropy| Pattern {
            kind,
            re: Regex::new(re).expect("valid regex"),
            group,
            keep,
            strength,
            min_entropy,
        };
        vec![
            p(
                "private key",
                r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----\s*(?:[A-Za-z0-9-]+: [^\n]*\n\s*)*([A-Za-z0-9+/=\s]{40,})",
                1,
                0,
                0.97,
                3.5,
            ),
            p("AWS access key", r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b", 1, 4, 0.9, 3.0),
            p(
                "GitHub token",
                r"\b((?:gh[pousr]_[A-Za-z0-9]{36,255})|github_pat_[A-Za-z0-9_]{50,255})\b",
                1,
                4,
                0.95,
                3.5,
            ),
            p("GitLab token", r"\b(glpat-[A-Za-z0-9_-]{20,})", 1, 6, 0.95, 3.5),
            p("Slack token", r"\b(xox[abposr]-[A-Za-z0-9-]{10,})", 1, 5, 0.92, 3.0),
            p(
                "Anthropic API key",
                r"(?:^|[^A-Za-z0-9_-])(sk-ant-(?:api|admin)?[0-9]{0,2}-?[A-Za-z0-9_-]{32,})",
                1,
                7,
                0.95,
                3.5,
            ),
            p(
                "OpenAI-style API key",
                r"(?:^|[^A-Za-z0-9_-])(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,})",
                1,
                3,
                0.88,
                3.5,
            ),
            p("Stripe live key", r"\b([rs]k_live_[A-Za-z0-9]{20,})", 1, 8, 0.95, 3.5),
            p("Google API key", r"\b(AIza[0-9A-Za-z_-]{35})\b", 1, 4, 0.9, 3.5),
            p(
                "JSON Web Token",
                r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,})",
                1,
                3,
                0.7,
                3.5,
            ),
            p(
                "password in URL",
                r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@?#]{1,64}:([^\s@/?#]{6,128})@[A-Za-z0-9.-]+",
                1,
                0,
                0.8,
                2.5,
            ),
            p(
                "bearer token",
                r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{24,}=*)",
                1,
                0,
                0.7,
                3.5,
            ),
            p(
                "credential assignment",
                r#"(?i)\b(?:password|passwd|pwd|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|secret[_-]?key|private[_-]?key)\b["']?\s*[:=]\s*["']?([^\s"'`,;<>{}()\[\]]{8,128})"#,
                1,
                0,
                0.55,
                3.0,
            ),
        ]
    })
}

/// Shannon entropy in bits per character.
pub(crate) fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// Documentation examples, placeholders and references to a secret rather than the secret.
fn is_placeholder(value: &str) -> bool {
    const MARKERS: &[&str] = &[
        "example",
        "xxxx",
        "****",
        "....",
        "…",
        "your",
        "placeholder",
        "redacted",
        "dummy",
        "changeme",
        "change_me",
        "<",
        "${",
        "{{",
        "$(",
        "process.env",
        "os.environ",
        "getenv",
        "env.",
        "secrets.",
        "insert",
        "replace",
        "here",
        "0000000000",
        "1234567890",
        "abcdef",
    ];
    let lower = value.to_ascii_lowercase();
    if MARKERS.iter().any(|m| lower.contains(m)) || value.starts_with('$') {
        return true;
    }
    // The famous jwt.io sample token.
    if value.ends_with("SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c") {
        return true;
    }
    // A run of one repeated character is filler.
    let first = value.chars().next();
    value.chars().all(|c| Some(c) == first)
}

fn redact(kind: &str, value: &str, keep: usize) -> String {
    let prefix: String = value.chars().take(keep).collect();
    let n = value.chars().count();
    if prefix.is_empty() {
        format!("[REDACTED {kind}, {n} chars]")
    } else {
        format!("{prefix}…[REDACTED {kind}, {n} chars]")
    }
}

/// All of [`patterns`] as one set, to skip the ones that cannot match.
fn pattern_set() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(patterns().iter().map(|p| p.re.as_str())).expect("valid regexes")
    })
}

/// Every credential in a text, strongest pattern first for overlapping matches.
pub(crate) fn scan(text: &str) -> Vec<Found> {
    let mut out: Vec<(usize, usize, Found)> = Vec::new();
    if text.len() < 8 {
        return Vec::new();
    }
    // One pass tells whether any pattern matches; most texts hold no credential. (The set's
    // `is_match` stops at the first match and needs no overlapping search, which costs
    // several times more; `matches` then says which, for the few texts that have one.)
    if !pattern_set().is_match(text) {
        return Vec::new();
    }
    let matched = pattern_set().matches(text);
    for (k, p) in patterns().iter().enumerate() {
        if !matched.matched(k) {
            continue;
        }
        for caps in p.re.captures_iter(text) {
            let Some(m) = caps.get(p.group) else { continue };
            let value: String = if p.kind == "private key" {
                m.as_str().split_whitespace().collect()
            } else {
                m.as_str().to_owned()
            };
            // The random part after a public prefix carries the entropy.
            let random = &value[p.keep.min(value.len())..];
            if is_placeholder(&value) || entropy(random) < p.min_entropy {
                continue;
            }
            if p.kind == "credential assignment" || p.kind == "password in URL" {
                // Needs at least two character classes (a word like `supersecretvalue` is a
                // name, not a credential).
                let classes = [
                    value.chars().any(|c| c.is_ascii_lowercase()),
                    value.chars().any(|c| c.is_ascii_uppercase()),
                    value.chars().any(|c| c.is_ascii_digit()),
                    value.chars().any(|c| !c.is_ascii_alphanumeric()),
                ]
                .iter()
                .filter(|&&b| b)
                .count();
                // A code identifier (`access_token=access_token`, `api_key=load_key`) is a
                // reference, not a value.
                let identifier = value
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '-');
                if classes < 2 || (identifier && p.kind == "credential assignment") {
                    continue;
                }
            }
            let (s, e) = (m.start(), m.end());
            if out.iter().any(|(os, oe, _)| s < *oe && *os < e) {
                continue;
            }
            let strength =
                (p.strength + (entropy(random) - p.min_entropy).max(0.0) * 0.03).min(0.99);
            out.push((
                s,
                e,
                Found {
                    kind: p.kind,
                    redacted: redact(p.kind, &value, p.keep),
                    value,
                    strength,
                },
            ));
        }
    }
    out.sort_by_key(|(s, _, _)| *s);
    out.into_iter().map(|(_, _, f)| f).collect()
}

/// A span where a secret was sent onward, the severity there, and what kind of place it is.
type Occurrence = (usize, Severity, &'static str);

/// Where a span sends text onward, and how bad a secret there is.
fn outbound<'v>(view: &'v TraceView<'_>, i: Idx) -> Option<(Cow<'v, str>, Severity, &'static str)> {
    let span = view.span(i);
    match span.kind {
        SpanKind::Tool => {
            let args = match &span.tool {
                Some(t) if !t.arguments.is_null() => match &t.arguments {
                    serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                    // The JSON the view made once for every call (as `to_string` gives it).
                    _ => Cow::Borrowed(view.arguments_json(i).unwrap_or_default()),
                },
                _ => span
                    .input
                    .as_ref()
                    .map(|p| Cow::Borrowed(p.text.as_str()))?,
            };
            Some((args, Severity::High, "tool arguments"))
        }
        SpanKind::Llm => span.output.as_ref().map(|p| {
            (
                Cow::Borrowed(p.text.as_str()),
                Severity::Critical,
                "model output",
            )
        }),
        SpanKind::Handoff => span.output.as_ref().or(span.input.as_ref()).map(|p| {
            (
                Cow::Borrowed(p.text.as_str()),
                Severity::Critical,
                "message to another agent",
            )
        }),
        SpanKind::Agent | SpanKind::Step => span.output.as_ref().map(|p| {
            (
                Cow::Borrowed(p.text.as_str()),
                Severity::Critical,
                "agent output",
            )
        }),
        _ => None,
    }
}

impl Detector for SecretLeak {
    fn id(&self) -> &'static str {
        "secret-leak"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_findings = params.usize("max_findings", 5).max(1);
        // Distinct secrets in order of first outbound appearance:
        // (value, found, occurrences (span, severity, place)).
        let mut leaks: Vec<(Found, Vec<Occurrence>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for i in 0..view.len() {
            let Some((text, severity, place)) = outbound(view, i) else {
                continue;
            };
            for f in scan(&text) {
                if let Some(&k) = index.get(&f.value) {
                    leaks[k].1.push((i, severity, place));
                } else {
                    index.insert(f.value.clone(), leaks.len());
                    leaks.push((f, vec![(i, severity, place)]));
                }
            }
        }
        let mut hits = Vec::new();
        for (found, occ) in leaks.into_iter().take(max_findings) {
            let Some(&(first, _, _)) = occ.first() else {
                continue;
            };
            let (worst_i, worst_sev, worst_place) = occ
                .iter()
                .copied()
                .max_by_key(|o| (o.1, usize::MAX - o.0))
                .unwrap_or(occ[0]);
            // Where the secret first entered the run (a file read, a tool result, the user).
            let origin = view.trace.spans[..first]
                .iter()
                .enumerate()
                .find(|(_, s)| {
                    [s.input.as_ref(), s.output.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|p| p.text.contains(&found.value))
                })
                .map(|(k, _)| k);
            let from_user = origin.is_some_and(|k| view.span(k).kind == SpanKind::Human);
            let severity = if from_user {
                worst_sev.shifted(-2)
            } else {
                worst_sev
            };
            let mut evidence = Vec::new();
            if let Some(k) = origin {
                evidence.push(HitEvidence::quoted(
                    k,
                    if from_user {
                        "the user supplied it here"
                    } else {
                        "the secret entered the run here"
                    },
                    found.redacted.clone(),
                ));
            }
            for &(i, _, place) in occ.iter().take(3) {
                evidence.push(HitEvidence::quoted(
                    i,
                    format!("{} in {place}", found.kind),
                    found.redacted.clone(),
                ));
            }
            if !occ.iter().take(3).any(|o| o.0 == worst_i) {
                evidence.push(HitEvidence::quoted(
                    worst_i,
                    format!("{} in {worst_place}", found.kind),
                    found.redacted.clone(),
                ));
            }
            let spread = (occ.len() as f64 - 1.0).min(3.0) * 0.02;
            hits.push(Hit {
                score: (found.strength + spread - if from_user { 0.2 } else { 0.0 })
                    .clamp(0.1, 0.99),
                severity: Some(severity),
                summary: format!(
                    "{} {} appears in {}{}{}",
                    if found.kind.starts_with(['A', 'E', 'I', 'O', 'U']) {
                        "an"
                    } else {
                        "a"
                    },
                    found.kind,
                    worst_place,
                    if occ.len() > 1 {
                        format!(" ({} places)", occ.len())
                    } else {
                        String::new()
                    },
                    if from_user {
                        "; the user supplied it"
                    } else {
                        ""
                    }
                ),
                at: Some(first),
                evidence,
                ..Hit::default()
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Assembled at run time so the source holds no secret-shaped literal.
    fn fake(prefix: &str, body: &str) -> String {
        format!("{prefix}{body}")
    }

    #[test]
    fn finds_and_redacts() {
        let key = fake("AKIA", "Q7ZFAKE3M9XW2KDP");
        let found = scan(&format!("use {key} for the bucket"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "AWS access key");
        assert!(!found[0].redacted.contains(&key));
        let gh = fake("ghp_", "Zq8FAKEr2Lm4Np6Qs8Tu0Vw2Xy4Az6Bc8De0F");
        assert_eq!(scan(&gh)[0].kind, "GitHub token");
        let pw = scan("DATABASE_URL=postgres://app:Xq9!vR2mFAKEp7@db.internal:5432/app");
        assert_eq!(pw.len(), 1);
        assert_eq!(pw[0].kind, "password in URL");
        assert!(!pw[0].redacted.contains("Xq9"));
    }

    #[test]
    fn near_misses_are_quiet() {
        for text in [
            "",
            "commit 3f9c2a7b1e4d5f6a7b8c9d0e1f2a3b4c5d6e7f80 fixed it",
            "request id 123e4567-e89b-12d3-a456-426614174000",
            "set api_key=${OPENAI_API_KEY} in the shell",
            "example: AKIAIOSFODNN7EXAMPLE",
            "password: <your password here>",
            "the risk-assessment-framework-overview-document-for-2026 is ready",
            "password=supersecretvalue",
            "search_notes(access_token=access_token, tags=[])",
            "api_key = settings.openai_api_key",
        ] {
            assert!(scan(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            SecretLeak
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
