//! `.brain/brain.toml`: schema version, redaction rules, review policy, context defaults.

use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::redact::{Redactor, Rule};

/// The parsed configuration. Unknown keys are errors, so typos do not silently disable a rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "one")]
    pub schema_version: u32,
    #[serde(default)]
    pub redaction: RedactionConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub context: ContextConfig,
    #[serde(default)]
    pub mcp: McpConfig,
}

/// What `pisama mcp` offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// `all` brain tools, or `core`: only `brain_context`, `brain_search`, `brain_get`,
    /// `brain_propose`, `brain_revise` and `brain_status` (the detection tools stay).
    #[serde(default = "all_tools")]
    pub tools: String,
}

fn all_tools() -> String {
    "all".into()
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig { tools: all_tools() }
    }
}

/// The brain tools of the `core` profile.
pub const CORE_TOOLS: [&str; 6] = [
    "brain_context",
    "brain_search",
    "brain_get",
    "brain_propose",
    "brain_revise",
    "brain_status",
];

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// `redact` (replace secrets with tags) or `strict` (refuse the write).
    #[serde(default = "redact_mode")]
    pub mode: String,
    /// The key of the tag hash; written by `init`. Same key → same tags across clones.
    #[serde(default)]
    pub key: String,
    /// Regexes; a match that also matches one of these is kept.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<DenyRule>,
    /// The high-entropy rule (on by default).
    #[serde(default = "yes")]
    pub entropy: bool,
}

fn redact_mode() -> String {
    "redact".into()
}

fn yes() -> bool {
    true
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            mode: redact_mode(),
            key: String::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            entropy: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    pub name: String,
    pub pattern: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Transitions only a human may make, as `kind:value` (`decision:accepted`,
    /// `work_request:running`).
    #[serde(default)]
    pub require_human: Vec<String>,
    /// Approve `memory` records written with `trust = direct_user` and no redactions on write.
    #[serde(default)]
    pub auto_approve_direct_user_memories: bool,
    /// `check` reports records and proposals waiting for review longer than this many days
    /// (absent or 0: no limit).
    #[serde(default)]
    pub pending_max_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    #[serde(default = "budget")]
    pub budget_tokens: usize,
}

fn budget() -> usize {
    2000
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            budget_tokens: budget(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        if !["redact", "strict"].contains(&config.redaction.mode.as_str()) {
            return Err(Error::Config {
                path: path.to_owned(),
                message: format!(
                    "redaction.mode `{}` is not `redact` or `strict`",
                    config.redaction.mode
                ),
            });
        }
        if !["all", "core"].contains(&config.mcp.tools.as_str()) {
            return Err(Error::Config {
                path: path.to_owned(),
                message: format!("mcp.tools `{}` is not `all` or `core`", config.mcp.tools),
            });
        }
        // Compile now, so a bad pattern is reported at load time with its name.
        config.redactor(path)?;
        Ok(config)
    }

    pub fn strict(&self) -> bool {
        self.redaction.mode == "strict"
    }

    pub fn redactor(&self, path: &Path) -> Result<Redactor> {
        let bad = |what: &str, e: regex::Error| Error::Config {
            path: path.to_owned(),
            message: format!("{what}: {e}"),
        };
        let mut deny = Vec::new();
        for d in &self.redaction.deny {
            deny.push(Rule {
                name: d.name.clone(),
                regex: Regex::new(&d.pattern)
                    .map_err(|e| bad(&format!("redaction.deny `{}`", d.name), e))?,
                group: 0,
            });
        }
        let mut allow = Vec::new();
        for a in &self.redaction.allow {
            allow.push(Regex::new(a).map_err(|e| bad(&format!("redaction.allow `{a}`"), e))?);
        }
        let r = Redactor::new(self.redaction.key.as_bytes(), deny, allow);
        Ok(if self.redaction.entropy {
            r
        } else {
            r.without_entropy()
        })
    }

    /// Whether moving `kind`'s lifecycle to `value` needs a human.
    pub fn requires_human(&self, kind: &str, value: &str) -> bool {
        self.review
            .require_human
            .iter()
            .any(|r| r == &format!("{kind}:{value}"))
    }
}

/// The `brain.toml` that `init` writes.
pub fn default_toml(key: &str) -> String {
    format!(
        r#"# pisama project brain settings (see `pisama brain --help`).
schema_version = 1

[redaction]
# "redact" replaces secrets with [REDACTED:<rule>:<hash>] tags; "strict" refuses the write.
mode = "redact"
# Keys the tag hash, so the same secret maps to the same tag in every clone of this repo.
key = "{key}"
# Regexes for values that look like secrets but are not (matched against the value).
allow = []
# Project-specific secrets, e.g.:
# [[redaction.deny]]
# name = "internal_token"
# pattern = "\\bintk_[a-z0-9]{{16}}\\b"

[review]
# Lifecycle transitions only a human may make.
require_human = ["decision:accepted", "work_request:running"]
auto_approve_direct_user_memories = false
# `pisama brain check` fails on records and proposals waiting for review longer than this
# many days (0 turns it off).
pending_max_days = 30

[context]
budget_tokens = 2000

[mcp]
# Brain tools `pisama mcp` offers: "all", or "core" (brain_context, brain_search, brain_get,
# brain_propose, brain_revise, brain_status). The detection tools are always there.
tools = "all"
"#
    )
}
