//! The optional LLM judge: tier T3 of detection.
//!
//! When T1/T2 findings or a trace's attribution fall in an "unsure" band, the judge asks an
//! LLM the user configured (any OpenAI-compatible endpoint: OpenAI, Anthropic's compatible
//! endpoint, Ollama, LM Studio, vLLM, `LiteLLM`) and applies its answer, with its reason.
//!
//! The boundary (product brief): nothing is sent unless the user named the endpoint, the model
//! and the environment variable holding their key ([`Settings::resolve`]); requests go straight
//! to that endpoint; everything sent is redacted first with the brain's rules
//! ([`pisama_redact`]); [`Judge::dry_run`] records exactly what would be sent and sends
//! nothing. There is no fallback to `OPENAI_API_KEY` or a default endpoint.
//!
//! - [`settings`]: `[judge]` in `pisama.toml` plus flags → validated [`Settings`].
//! - [`prompt`]: the messages, with the trace windowed around the evidence; token estimates.
//! - [`answer`]: the answers' JSON Schemas and a tolerant parser.
//! - `client`: async-openai with explicit base URL and key, timeouts, bounded retries.
//! - `cache`: answers on disk keyed by prompt version, model and request body.
//! - [`judge`]: the escalation policy, budget, failures, dry-run plan.
//! - [`BlockingJudge`]: the same for synchronous callers (the CLI), on a private runtime.

pub mod answer;
mod cache;
mod client;
pub mod error;
pub mod judge;
pub mod prompt;
pub mod settings;

#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use judge::{Escalation, Judge, Outcome, PlannedRequest, RunStats, TraceJudgement};
pub use prompt::PROMPT_VERSION;
pub use settings::{ApiKey, FileConfig, Overrides, Settings};

/// A [`Judge`] with its own single-threaded tokio runtime, for callers that are not async.
#[derive(Debug)]
pub struct BlockingJudge {
    judge: Judge,
    runtime: tokio::runtime::Runtime,
}

impl BlockingJudge {
    pub fn new(judge: Judge) -> Result<BlockingJudge, ConfigError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(BlockingJudge { judge, runtime })
    }

    /// [`Judge::review`], blocking.
    pub fn review(
        &mut self,
        label: &str,
        trace: &pisama_trace::Trace,
        report: &mut pisama_detect::TraceReport,
        engine: &pisama_detect::Engine,
    ) -> TraceJudgement {
        self.runtime
            .block_on(self.judge.review(label, trace, report, engine))
    }

    pub fn judge(&self) -> &Judge {
        &self.judge
    }
}
