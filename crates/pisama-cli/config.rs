//! `pisama.toml`: the configuration file. Precedence is flags > environment > `pisama.toml` in
//! the working folder > `pisama/pisama.toml` in the user config folder > detector defaults.
//!
//! ```toml
//! [detect]
//! fail_on = "high"           # info | low | medium | high | critical | never
//! min_severity = "low"
//! detectors = []             # only these (empty: all)
//! exclude = ["llm-error-retry-loop"]
//! fail_threshold = 0.5       # trace score at or above which the verdict is fail
//! pass_threshold = 0.3       # below which it is pass (unsure between)
//!
//! [detectors.tool-retry-storm]
//! min_repeats = 4
//!
//! [judge]                    # optional LLM tier; used only with --judge
//! base_url = "http://localhost:11434/v1"
//! model = "llama3.1:8b"
//! api_key_env = "MY_JUDGE_KEY"   # the variable's NAME; optional for loopback endpoints
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use pisama_detect::Param;

use crate::Failure;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    pub(crate) detect: DetectSection,
    /// Parameter overrides per detector id.
    #[serde(default)]
    pub(crate) detectors: BTreeMap<String, BTreeMap<String, Param>>,
    /// The optional LLM judge (`pisama_judge::FileConfig` documents every key).
    #[serde(default)]
    pub(crate) judge: pisama_judge::FileConfig,
    /// Where it was read from, for messages.
    #[serde(skip)]
    pub(crate) path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectSection {
    pub(crate) fail_on: Option<String>,
    pub(crate) min_severity: Option<String>,
    #[serde(default)]
    pub(crate) detectors: Vec<String>,
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    pub(crate) fail_threshold: Option<f64>,
    pub(crate) pass_threshold: Option<f64>,
}

/// Reads the explicit file, or the first default location that exists; none is fine.
pub(crate) fn load(explicit: Option<&Path>) -> Result<Config, Failure> {
    let path = match explicit {
        Some(p) => {
            if !p.is_file() {
                return Err(Failure::input(format!(
                    "{}: no such configuration file",
                    p.display()
                )));
            }
            Some(p.to_path_buf())
        }
        None => default_locations().into_iter().find(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let mut config: Config = toml::from_str(&text)
        .map_err(|e| Failure::input(format!("{}: {}", path.display(), e.to_string().trim_end())))?;
    config.path = Some(path);
    Ok(config)
}

fn default_locations() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("pisama.toml")];
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = user {
        out.push(dir.join("pisama").join("pisama.toml"));
    }
    out
}
