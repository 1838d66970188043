//! Secret redaction: built-in rules, project allow and deny rules, and a keyed hash so the same
//! secret always maps to the same tag (`[REDACTED:<rule>:<6 hex>]`) without the tag revealing it.
//!
//! Two users: the project brain runs it on every write path (brain.md §5.8), and the LLM judge
//! runs it on everything it would send to the user's endpoint. One crate, so both apply the
//! same rules; it depends only on `regex` and `sha2`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// One pattern. `group` is the capture group that holds the secret (0 = the whole match).
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub regex: Regex,
    pub group: usize,
}

/// What a scan found: rule names and counts (never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub by_rule: BTreeMap<String, usize>,
}

impl Findings {
    pub fn count(&self) -> usize {
        self.by_rule.values().sum()
    }

    pub fn rules(&self) -> Vec<String> {
        self.by_rule.keys().cloned().collect()
    }

    pub fn merge(&mut self, other: &Findings) {
        for (k, v) in &other.by_rule {
            *self.by_rule.entry(k.clone()).or_default() += v;
        }
    }
}

/// The scanner: built-in rules, project deny rules, allowlist, and the tag key.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: Vec<Rule>,
    allow: Vec<Regex>,
    key: Vec<u8>,
    entropy: bool,
}

const BUILTIN: &[(&str, &str, usize)] = &[
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        0,
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
        0,
    ),
    (
        "aws_secret_key",
        r#"(?i)aws[_\-.]?(?:secret[_\-.]?(?:access[_\-.]?)?key|sak)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        1,
    ),
    ("gcp_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b", 0),
    ("gcp_oauth_secret", r"\bGOCSPX-[A-Za-z0-9_\-]{28}\b", 0),
    ("gcp_oauth_token", r"\bya29\.[0-9A-Za-z_\-]{20,}", 0),
    (
        "azure_storage_key",
        r"(?i)AccountKey=([A-Za-z0-9+/]{80,90}={0,2})",
        1,
    ),
    (
        "azure_client_secret",
        r"\b[A-Za-z0-9_~.\-]{3}8Q~[A-Za-z0-9_~.\-]{31,34}\b",
        0,
    ),
    ("azure_sas_signature", r"[?&]sig=([A-Za-z0-9%+/=]{30,})", 1),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", 0),
    ("github_pat", r"\bgithub_pat_[A-Za-z0-9_]{50,255}\b", 0),
    (
        "gitlab_token",
        r"\bgl(?:pat|ptt|dt|rt|cbt|oas|ft)-[A-Za-z0-9_\-]{20,}\b",
        0,
    ),
    ("slack_token", r"\bxox[abeoprs]-[A-Za-z0-9\-]{10,}", 0),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}",
        0,
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}", 0),
    (
        "sk_key",
        r"\bsk-(?:proj-|svcacct-|admin-|or-v1-)?[A-Za-z0-9_\-]{20,}",
        0,
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}\b",
        0,
    ),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", 0),
    ("pypi_token", r"\bpypi-AgE[A-Za-z0-9_\-]{50,}", 0),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}\b", 0),
    (
        "sendgrid_key",
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
        0,
    ),
    ("twilio_key", r"\bSK[0-9a-f]{32}\b", 0),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        0,
    ),
    (
        "url_password",
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/@]+:([^\s/@]{3,})@",
        1,
    ),
    (
        "bearer_token",
        r"(?i)\bbearer\s+([A-Za-z0-9_\-.=~+/]{20,})",
        1,
    ),
    (
        "assignment",
        r#"(?i)(?:^|[^A-Za-z0-9])(?:[A-Za-z0-9_\-]*?[_\-.])?(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key(?:[_\-]?id)?|client[_\-]?secret|auth[_\-]?token|credentials?)["']?\s*(?::=|=>|=|:)\s*["'`]?([^\s"'`,;<>]{6,})"#,
        1,
    ),
];

/// Values of `password=` style assignments that are placeholders, not secrets.
fn is_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.starts_with('$')
        || v.starts_with('{')
        || v.starts_with('<')
        || v.starts_with('%')
        || v.starts_with("[REDACTED")
        || v.starts_with("env:")
        || v.starts_with("process.env")
        || v.starts_with("os.environ")
        || v.chars().all(|c| c == '*' || c == 'x' || c == 'X' || c == '.')
        || [
            "changeme", "example", "placeholder", "redacted", "your_", "your-", "xxxx", "dummy",
            "none", "null", "undefined", "true", "false", "required", "optional",
        ]
        .iter()
        .any(|p| lower.starts_with(p))
        // Words only (a prose sentence: "the token: expires"), no digits: not a secret.
        || (v.chars().all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-') && v.len() < 24)
}

fn builtin() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        BUILTIN
            .iter()
            .map(|(name, re, group)| Rule {
                name: (*name).to_owned(),
                regex: Regex::new(re).expect("built-in redaction rules compile"),
                group: *group,
            })
            .collect()
    })
}

fn entropy_candidates() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"[A-Za-z0-9+/_\-]{32,}={0,2}").expect("entropy candidate regex compiles")
    })
}

fn existing_tags() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\[REDACTED:[A-Za-z0-9_\-]+:[0-9a-f]{6}\]").expect("tag regex compiles")
    })
}

fn uuid_like() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
            .expect("uuid regex compiles")
    })
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a long token looks like a random secret rather than a hash, id, path or word.
fn high_entropy_secret(s: &str) -> bool {
    let core = s.trim_end_matches('=');
    if core.len() < 32 || uuid_like().is_match(core) {
        return false;
    }
    // Pure hex: git object ids, sha256 digests, UUIDs without dashes. Not flagged on their own.
    if core.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    // Paths and identifiers with many separators.
    if core.matches('/').count() > 2
        || core.matches('_').count() > 3
        || core.matches('-').count() > 3
    {
        return false;
    }
    let upper = core.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = core.bytes().filter(u8::is_ascii_lowercase).count();
    let digits = core.bytes().filter(u8::is_ascii_digit).count();
    if upper == 0 || lower == 0 || digits == 0 {
        return false;
    }
    entropy(core) >= 4.2
}

/// Byte ranges of fenced code blocks (three backticks or tildes), where the entropy rule does not apply:
/// base64 images, lock files and hashes live there.
fn fenced_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, &str)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let fence = if t.starts_with("```") {
            Some("```")
        } else if t.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (open, fence) {
            (None, Some(f)) => open = Some((pos, f)),
            (Some((start, f)), Some(g)) if f == g => {
                out.push((start, pos + line.len()));
                open = None;
            }
            _ => {}
        }
        pos += line.len();
    }
    if let Some((start, _)) = open {
        out.push((start, text.len()));
    }
    out
}

impl Redactor {
    /// A redactor with the built-in rules plus `deny` rules; `allow` regexes exempt matches.
    pub fn new(key: &[u8], deny: Vec<Rule>, allow: Vec<Regex>) -> Self {
        let mut rules = deny;
        rules.extend(builtin().iter().cloned());
        Redactor {
            rules,
            allow,
            key: key.to_vec(),
            entropy: true,
        }
    }

    /// Turns the entropy rule off (the `entropy = false` setting).
    #[must_use]
    pub fn without_entropy(mut self) -> Self {
        self.entropy = false;
        self
    }

    /// The tag for a secret: the rule and the first 6 hex digits of a keyed SHA-256.
    pub fn tag(&self, rule: &str, secret: &str) -> String {
        let mut h = Sha256::new();
        h.update((self.key.len() as u64).to_le_bytes());
        h.update(&self.key);
        h.update(secret.as_bytes());
        let d = h.finalize();
        format!("[REDACTED:{rule}:{:02x}{:02x}{:02x}]", d[0], d[1], d[2])
    }

    fn matches(&self, text: &str) -> Vec<(usize, usize, String)> {
        let mut found: Vec<(usize, usize, String)> = Vec::new();
        // Tags already in the text are never rescanned (`aws_access_key:abc123]` would look
        // like an assignment).
        let tags: Vec<(usize, usize)> = existing_tags()
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        let in_tag = |s: usize, e: usize| tags.iter().any(|&(ts, te)| s < te && e > ts);
        for rule in &self.rules {
            for caps in rule.regex.captures_iter(text) {
                let Some(m) = caps.get(rule.group) else {
                    continue;
                };
                let value = m.as_str();
                if value.starts_with("[REDACTED") || in_tag(m.start(), m.end()) {
                    continue;
                }
                if (rule.name == "assignment" || rule.name == "url_password")
                    && is_placeholder(value)
                {
                    continue;
                }
                if self.allow.iter().any(|a| a.is_match(value)) {
                    continue;
                }
                found.push((m.start(), m.end(), rule.name.clone()));
            }
        }
        if self.entropy {
            let fences = fenced_ranges(text);
            for m in entropy_candidates().find_iter(text) {
                let in_fence = fences.iter().any(|&(s, e)| m.start() >= s && m.end() <= e);
                if in_fence || in_tag(m.start(), m.end()) || !high_entropy_secret(m.as_str()) {
                    continue;
                }
                // Not part of a data: URI or a longer word.
                let before = &text[..m.start()];
                if before.ends_with("base64,") || before.ends_with(['.', '@', '#', '?']) {
                    continue;
                }
                if self.allow.iter().any(|a| a.is_match(m.as_str())) {
                    continue;
                }
                found.push((m.start(), m.end(), "high_entropy".into()));
            }
        }
        // Earliest first, then longest; drop overlaps.
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out: Vec<(usize, usize, String)> = Vec::new();
        for f in found {
            if out.last().is_some_and(|l| f.0 < l.1) {
                continue;
            }
            out.push(f);
        }
        out
    }

    /// Replaces secrets in `text`; returns what was found.
    pub fn redact(&self, text: &mut String) -> Findings {
        let found = self.matches(text);
        let mut findings = Findings::default();
        if found.is_empty() {
            return findings;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, rule) in found {
            out.push_str(&text[last..start]);
            out.push_str(&self.tag(&rule, &text[start..end]));
            *findings.by_rule.entry(rule).or_default() += 1;
            last = end;
        }
        out.push_str(&text[last..]);
        *text = out;
        findings
    }

    /// Finds secrets without changing anything (for `check`).
    pub fn scan(&self, text: &str) -> Findings {
        let mut findings = Findings::default();
        for (_, _, rule) in self.matches(text) {
            *findings.by_rule.entry(rule).or_default() += 1;
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::new(b"test-key", Vec::new(), Vec::new())
    }

    #[test]
    fn same_secret_same_tag_and_idempotent() {
        let mut a = "key AKIAIOSFODNN7EXAMPLE and again AKIAIOSFODNN7EXAMPLE".to_owned();
        let f = r().redact(&mut a);
        assert_eq!(f.count(), 2);
        let tags: Vec<&str> = a.matches("[REDACTED:aws_access_key:").collect();
        assert_eq!(tags.len(), 2);
        let first = a[a.find('[').unwrap()..=a.find(']').unwrap()].to_owned();
        let second = a[a.rfind('[').unwrap()..=a.rfind(']').unwrap()].to_owned();
        assert_eq!(first, second);
        let before = a.clone();
        assert_eq!(r().redact(&mut a).count(), 0);
        assert_eq!(a, before);
        // Another key gives another tag.
        let mut b = "AKIAIOSFODNN7EXAMPLE".to_owned();
        Redactor::new(b"other", Vec::new(), Vec::new()).redact(&mut b);
        assert_ne!(b, first);
    }

    #[test]
    fn allow_and_deny() {
        let deny = vec![Rule {
            name: "internal".into(),
            regex: Regex::new(r"\bintk_[a-z0-9]{8}\b").unwrap(),
            group: 0,
        }];
        let allow = vec![Regex::new("^AKIAIOSFODNN7EXAMPLE$").unwrap()];
        let red = Redactor::new(b"k", deny, allow);
        let mut t = "AKIAIOSFODNN7EXAMPLE intk_ab12cd34".to_owned();
        let f = red.redact(&mut t);
        assert_eq!(f.rules(), vec!["internal".to_owned()]);
        assert!(t.starts_with("AKIAIOSFODNN7EXAMPLE [REDACTED:internal:"));
    }
}
