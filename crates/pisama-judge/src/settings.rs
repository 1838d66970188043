//! What the judge needs to run, and how it is resolved from `pisama.toml`'s `[judge]` table and
//! the command line's `--judge-*` flags (flags win).
//!
//! The boundary: nothing is sent unless the user named an endpoint (`base_url`), a `model`, and
//! the environment variable that holds their key (`api_key_env`). There is no default endpoint
//! and no fallback to `OPENAI_API_KEY`. The library never reads the environment itself: the
//! caller hands in a lookup function, so only the binary touches it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// `[judge]` in `pisama.toml`. Every key is optional; unknown keys are errors, so a typo does
/// not silently change what is sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The endpoint's base URL, including `/v1` (`http://localhost:11434/v1`).
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The *name* of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// Per request, including reading the answer.
    pub timeout_secs: Option<f64>,
    pub connect_timeout_secs: Option<f64>,
    /// Retries of one request on 429, 5xx and connection errors (exponential backoff from
    /// 100 ms, honouring `Retry-After`).
    pub max_retries: Option<u32>,
    /// After this many escalations in a row fail (timeouts, server errors), the judge stops
    /// for the rest of the run and the remaining escalations are skipped.
    pub stop_after_failures: Option<u32>,
    pub response_format: Option<ResponseMode>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// Which request field carries `max_output_tokens`.
    pub token_limit_field: Option<TokenLimitField>,
    /// USD per 1,000 input tokens (default: the model's list price from pisama's table).
    pub price_input_per_1k: Option<f64>,
    /// USD per 1,000 output tokens.
    pub price_output_per_1k: Option<f64>,
    /// Where answers are cached (default: `$XDG_CACHE_HOME/pisama/judge`).
    pub cache_dir: Option<PathBuf>,
    /// `false` turns the cache off.
    pub cache: Option<bool>,
    /// Extra HTTP headers for the endpoint (e.g. `anthropic-workspace-id`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub budget: BudgetFile,
    #[serde(default)]
    pub escalate: EscalateFile,
}

/// `[judge.budget]`: limits per run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    pub max_calls: Option<u32>,
    pub max_input_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    /// The largest request; longer traces are windowed around the evidence to fit.
    pub max_input_tokens_per_call: Option<u64>,
}

/// `[judge.escalate]`: what goes to the judge.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateFile {
    /// Ask about findings whose confidence is in `finding_band`.
    pub findings: Option<bool>,
    /// Ask who and where for traces whose verdict is unsure or whose attribution's confidence
    /// is below `attribution_below`.
    pub attribution: Option<bool>,
    /// Only findings of these detectors (empty: all).
    #[serde(default)]
    pub detectors: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `[low, high]`: a finding is unsure when `low <= confidence < high`.
    pub finding_band: Option<[f64; 2]>,
    pub attribution_below: Option<f64>,
    /// At most this many finding escalations per trace (strongest first).
    pub per_trace: Option<u32>,
    /// Messages of context on each side of a piece of evidence.
    pub window: Option<u32>,
}

/// How the answer's shape is requested. The schema is always in the prompt as well, because
/// some endpoints ignore `response_format` (Anthropic's compatibility layer, older servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// `{"type": "json_schema", ...}` with `strict: true` (OpenAI, Ollama, LM Studio, vLLM).
    JsonSchema,
    /// `{"type": "json_object"}`.
    JsonObject,
    /// No `response_format` field.
    None,
}

/// Which field limits the answer's length: `max_tokens` (what most OpenAI-compatible servers
/// read) or `max_completion_tokens` (what OpenAI's reasoning models require).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitField {
    MaxTokens,
    MaxCompletionTokens,
}

/// The command line's `--judge-*` flags; set fields override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    pub max_calls: Option<u32>,
    pub max_cost_usd: Option<f64>,
    pub timeout_secs: Option<f64>,
}

/// An API key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// USD per 1,000 tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
    /// `config` or `price table`.
    pub source: &'static str,
}

/// Per-run limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub max_calls: u32,
    pub max_input_tokens: u64,
    pub max_cost_usd: Option<f64>,
    pub max_input_tokens_per_call: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_calls: 25,
            max_input_tokens: 100_000,
            max_cost_usd: None,
            max_input_tokens_per_call: 6_000,
        }
    }
}

/// What is escalated.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub findings: bool,
    pub attribution: bool,
    pub detectors: Vec<String>,
    pub exclude: Vec<String>,
    pub finding_band: (f64, f64),
    pub attribution_below: f64,
    pub per_trace: u32,
    pub window: u32,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            findings: true,
            attribution: true,
            detectors: Vec::new(),
            exclude: Vec::new(),
            finding_band: (0.3, 0.7),
            attribution_below: 0.5,
            per_trace: 4,
            window: 4,
        }
    }
}

impl Escalation {
    /// Whether a finding of `detector` with `confidence` goes to the judge.
    pub fn wants_finding(&self, detector: &str, confidence: f64) -> bool {
        self.findings
            && (self.detectors.is_empty() || self.detectors.iter().any(|d| d == detector))
            && !self.exclude.iter().any(|d| d == detector)
            && confidence >= self.finding_band.0
            && confidence < self.finding_band.1
    }
}

/// Everything the judge needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL without a trailing slash.
    pub base_url: String,
    pub model: String,
    /// The variable the key came from (for messages), when one was named.
    pub api_key_env: Option<String>,
    /// `None` for a loopback endpoint without a key, or in a dry run when the variable is unset.
    pub api_key: Option<ApiKey>,
    pub headers: BTreeMap<String, String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: u32,
    pub stop_after_failures: u32,
    pub response_format: ResponseMode,
    pub temperature: f32,
    pub max_output_tokens: u32,
    pub token_limit_field: TokenLimitField,
    pub price: Option<Price>,
    /// `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    pub budget: Budget,
    pub escalate: Escalation,
}

impl Settings {
    /// Settings for `base_url` and `model` with every default; for tests and library users.
    pub fn new(base_url: &str, model: &str, api_key: Option<ApiKey>) -> Settings {
        Settings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key_env: None,
            api_key,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            stop_after_failures: 3,
            response_format: ResponseMode::JsonSchema,
            temperature: 0.0,
            max_output_tokens: 400,
            token_limit_field: TokenLimitField::MaxTokens,
            price: table_price(model),
            cache_dir: None,
            budget: Budget::default(),
            escalate: Escalation::default(),
        }
    }

    /// Resolves the file and the flags. `env` looks up environment variables (the binary
    /// passes `std::env::var`); it is asked only for the variable `api_key_env` names.
    /// With `dry_run`, a named but unset key variable is not an error (nothing is sent).
    pub fn resolve(
        file: &FileConfig,
        flags: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        default_cache_dir: Option<PathBuf>,
        dry_run: bool,
    ) -> Result<Settings, ConfigError> {
        let base_url = flags.base_url.clone().or_else(|| file.base_url.clone());
        let model = flags.model.clone().or_else(|| file.model.clone());
        let key_env = flags
            .api_key_env
            .clone()
            .or_else(|| file.api_key_env.clone());
        let base_url = base_url
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let model = model.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let key_env = key_env
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let loopback = base_url.as_deref().is_some_and(is_loopback);
        let mut missing = Vec::new();
        if base_url.is_none() {
            missing.push("base_url");
        }
        if model.is_none() {
            missing.push("model");
        }
        if key_env.is_none() && !loopback {
            missing.push("api_key_env");
        }
        if !missing.is_empty() {
            return Err(ConfigError::NotConfigured { missing });
        }
        let (Some(base_url), Some(model)) = (base_url, model) else {
            return Err(ConfigError::NotConfigured {
                missing: vec!["base_url", "model"],
            });
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(
                "base_url",
                format!("{base_url:?} is not an http:// or https:// URL"),
            ));
        }
        let api_key = match &key_env {
            None => None,
            Some(name) => match env(name).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(ApiKey::new(v.trim())),
                None if dry_run => None,
                None => return Err(ConfigError::KeyUnset { name: name.clone() }),
            },
        };
        let mut s = Settings::new(&base_url, &model, api_key);
        s.api_key_env = key_env;
        s.headers = file.headers.clone();
        if let Some(t) = flags.timeout_secs.or(file.timeout_secs) {
            s.timeout = seconds("timeout_secs", t)?;
        }
        if let Some(t) = file.connect_timeout_secs {
            s.connect_timeout = seconds("connect_timeout_secs", t)?;
        }
        s.max_retries = file.max_retries.unwrap_or(s.max_retries);
        s.stop_after_failures = file
            .stop_after_failures
            .unwrap_or(s.stop_after_failures)
            .max(1);
        s.response_format = file.response_format.unwrap_or(s.response_format);
        s.temperature = file.temperature.unwrap_or(s.temperature);
        s.max_output_tokens = file
            .max_output_tokens
            .unwrap_or(s.max_output_tokens)
            .max(16);
        s.token_limit_field = file.token_limit_field.unwrap_or(s.token_limit_field);
        match (file.price_input_per_1k, file.price_output_per_1k) {
            (None, None) => {}
            (Some(i), Some(o)) if i >= 0.0 && o >= 0.0 => {
                s.price = Some(Price {
                    input_per_1k: i,
                    output_per_1k: o,
                    source: "config",
                });
            }
            _ => {
                return Err(invalid(
                    "price_input_per_1k",
                    "set both price_input_per_1k and price_output_per_1k, as numbers >= 0".into(),
                ));
            }
        }
        s.cache_dir = if flags.no_cache || file.cache == Some(false) {
            None
        } else {
            flags
                .cache_dir
                .clone()
                .or_else(|| file.cache_dir.clone())
                .or(default_cache_dir)
        };
        let b = &file.budget;
        s.budget = Budget {
            max_calls: flags
                .max_calls
                .or(b.max_calls)
                .unwrap_or(s.budget.max_calls),
            max_input_tokens: b.max_input_tokens.unwrap_or(s.budget.max_input_tokens),
            max_cost_usd: flags.max_cost_usd.or(b.max_cost_usd),
            max_input_tokens_per_call: b
                .max_input_tokens_per_call
                .unwrap_or(s.budget.max_input_tokens_per_call)
                .max(500),
        };
        if let Some(c) = s.budget.max_cost_usd {
            if c.is_nan() || c < 0.0 {
                return Err(invalid("budget.max_cost_usd", format!("{c} is not >= 0")));
            }
            if s.price.is_none() {
                return Err(invalid(
                    "budget.max_cost_usd",
                    format!(
                        "the price of model {:?} is unknown, so the cost cannot be kept under a limit; set price_input_per_1k and price_output_per_1k",
                        s.model
                    ),
                ));
            }
        }
        let e = &file.escalate;
        let d = Escalation::default();
        let band = e.finding_band.map_or(d.finding_band, |[lo, hi]| (lo, hi));
        if !(0.0..=1.0).contains(&band.0) || !(0.0..=1.0).contains(&band.1) || band.0 > band.1 {
            return Err(invalid(
                "escalate.finding_band",
                format!("[{}, {}] is not [low, high] within 0..1", band.0, band.1),
            ));
        }
        let below = e.attribution_below.unwrap_or(d.attribution_below);
        if !(0.0..=1.0).contains(&below) {
            return Err(invalid(
                "escalate.attribution_below",
                format!("{below} is not within 0..1"),
            ));
        }
        s.escalate = Escalation {
            findings: e.findings.unwrap_or(d.findings),
            attribution: e.attribution.unwrap_or(d.attribution),
            detectors: e.detectors.clone(),
            exclude: e.exclude.clone(),
            finding_band: band,
            attribution_below: below,
            per_trace: e.per_trace.unwrap_or(d.per_trace),
            window: e.window.unwrap_or(d.window),
        };
        Ok(s)
    }

    /// The URL requests go to.
    pub fn endpoint_url(&self) -> String {
        format!("{}/chat/completions", self.base_url)
    }

    /// Estimated cost in USD of `input` and `output` tokens, when the price is known.
    pub fn cost(&self, input: u64, output: u64) -> Option<f64> {
        self.price
            .map(|p| (input as f64 * p.input_per_1k + output as f64 * p.output_per_1k) / 1000.0)
    }
}

fn invalid(field: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { field, message }
}

fn seconds(field: &'static str, t: f64) -> Result<Duration, ConfigError> {
    if t.is_finite() && t > 0.0 && t <= 3600.0 {
        Ok(Duration::from_secs_f64(t))
    } else {
        Err(invalid(
            field,
            format!("{t} is not a number of seconds in (0, 3600]"),
        ))
    }
}

/// The list price from pisama's table (`pisama_trace::pricing`), per 1,000 tokens.
fn table_price(model: &str) -> Option<Price> {
    use pisama_trace::{Usage, pricing};
    let per_million = |u: Usage| pricing::estimate(model, &u);
    let input = per_million(Usage {
        input: Some(1_000_000),
        ..Usage::default()
    })?;
    let output = per_million(Usage {
        output: Some(1_000_000),
        ..Usage::default()
    })?;
    Some(Price {
        input_per_1k: input / 1000.0,
        output_per_1k: output / 1000.0,
        source: "price table",
    })
}

/// `localhost`, `127.0.0.0/8` or `[::1]`: local servers (Ollama, LM Studio, vLLM) that need no
/// key.
pub fn is_loopback(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host.strip_prefix("127.").is_some_and(|r| {
            r.split('.').count() == 3 && r.split('.').all(|p| p.parse::<u8>().is_ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn nothing_configured_names_what_is_missing_and_ignores_openai_variables() {
        let env = env_with(&[
            ("OPENAI_API_KEY", "sk-live"),
            ("OPENAI_BASE_URL", "http://x"),
        ]);
        let err = Settings::resolve(
            &FileConfig::default(),
            &Overrides::default(),
            &env,
            None,
            false,
        )
        .unwrap_err();
        let ConfigError::NotConfigured { missing } = &err else {
            panic!("{err}")
        };
        assert_eq!(missing, &["base_url", "model", "api_key_env"]);
        let text = err.to_string();
        assert!(
            text.contains("--judge-base-url") && text.contains("OPENAI_API_KEY"),
            "{text}"
        );
    }

    #[test]
    fn key_comes_from_the_named_variable_only() {
        let file = FileConfig {
            base_url: Some("https://api.example.com/v1/".into()),
            model: Some("gpt-4o-mini".into()),
            api_key_env: Some("MY_JUDGE_KEY".into()),
            ..FileConfig::default()
        };
        let env = env_with(&[("OPENAI_API_KEY", "sk-wrong")]);
        let err = Settings::resolve(&file, &Overrides::default(), &env, None, false).unwrap_err();
        assert!(matches!(err, ConfigError::KeyUnset { ref name } if name == "MY_JUDGE_KEY"));
        // A dry run does not need the key.
        let s = Settings::resolve(&file, &Overrides::default(), &env, None, true).unwrap();
        assert!(s.api_key.is_none());
        let env = env_with(&[("MY_JUDGE_KEY", "k-123")]);
        let s = Settings::resolve(&file, &Overrides::default(), &env, None, false).unwrap();
        assert_eq!(s.api_key.as_ref().map(ApiKey::expose), Some("k-123"));
        assert_eq!(s.base_url, "https://api.example.com/v1");
        assert_eq!(
            s.endpoint_url(),
            "https://api.example.com/v1/chat/completions"
        );
        assert_eq!(s.price.map(|p| p.source), Some("price table"));
        assert!(!format!("{s:?}").contains("k-123"));
    }

    #[test]
    fn flags_override_the_file_and_loopback_needs_no_key() {
        let file = FileConfig {
            base_url: Some("https://api.example.com/v1".into()),
            model: Some("a".into()),
            ..FileConfig::default()
        };
        let flags = Overrides {
            base_url: Some("http://127.0.0.1:11434/v1".into()),
            model: Some("llama3.1".into()),
            max_calls: Some(3),
            ..Overrides::default()
        };
        let s = Settings::resolve(&file, &flags, &|_| None, None, false).unwrap();
        assert_eq!(s.model, "llama3.1");
        assert_eq!(s.budget.max_calls, 3);
        assert!(s.api_key.is_none());
        assert!(s.price.is_none());
    }

    #[test]
    fn bad_values_are_errors() {
        let base = FileConfig {
            base_url: Some("http://localhost:1234/v1".into()),
            model: Some("m".into()),
            ..FileConfig::default()
        };
        let mut f = base.clone();
        f.escalate.finding_band = Some([0.8, 0.2]);
        assert!(Settings::resolve(&f, &Overrides::default(), &|_| None, None, false).is_err());
        let mut f = base.clone();
        f.budget.max_cost_usd = Some(1.0);
        let err = Settings::resolve(&f, &Overrides::default(), &|_| None, None, false).unwrap_err();
        assert!(err.to_string().contains("price"), "{err}");
        let mut f = base;
        f.base_url = Some("localhost:1234".into());
        assert!(Settings::resolve(&f, &Overrides::default(), &|_| None, None, false).is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://localhost:11434/v1"));
        assert!(is_loopback("http://127.0.0.1:8000/v1"));
        assert!(is_loopback("http://[::1]:8000/v1"));
        assert!(!is_loopback("http://localhost.evil.com/v1"));
        assert!(!is_loopback("https://127.0.0.1.nip.io/v1"));
        assert!(!is_loopback("https://api.openai.com/v1"));
    }
}
