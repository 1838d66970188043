//! Errors. Configuration errors stop a run before anything is sent; call errors are per
//! escalation: the T1/T2 result is kept and the problem is reported.

use std::fmt;

/// The judge cannot run with this configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error(
        "the judge is not configured: {} missing. Set them under [judge] in pisama.toml \
(base_url, model, api_key_env = the NAME of the environment variable that holds your key) or \
pass --judge-base-url, --judge-model and --judge-api-key-env. pisama never falls back to \
OPENAI_API_KEY, OPENAI_BASE_URL or any default endpoint.",
        .missing.join(", ")
    )]
    NotConfigured { missing: Vec<&'static str> },
    #[error(
        "judge.api_key_env names the environment variable {name}, which is not set or empty; \
export {name}=<your key>"
    )]
    KeyUnset { name: String },
    #[error("judge.{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("judge: cannot start the HTTP client: {0}")]
    Client(String),
}

/// Why one request to the endpoint failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    /// No answer within the per-request timeout.
    Timeout,
    /// The endpoint answered with an error status (after retries, for 429 and 5xx).
    Status { code: u16, message: String },
    /// Connection refused, TLS, DNS, a body that is not a chat completion.
    Transport(String),
}

impl CallError {
    /// Whether the failure says the endpoint is unwell (counts towards stopping the judge),
    /// as opposed to a problem with this one request.
    pub(crate) fn is_endpoint_failure(&self) -> bool {
        match self {
            CallError::Timeout | CallError::Transport(_) => true,
            CallError::Status { code, .. } => *code == 429 || *code >= 500 || *code == 401,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("no answer within the timeout"),
            CallError::Status { code, message } => write!(f, "HTTP {code}: {message}"),
            CallError::Transport(m) => f.write_str(m),
        }
    }
}
