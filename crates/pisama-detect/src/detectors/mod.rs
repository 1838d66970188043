//! The built-in detectors, one module per detector, each named after its catalogue file
//! (`detectors/<id>.toml`, with `-` written `_`).
//!
//! To add one: write `detectors/<id>.toml`, a module here with a unit struct implementing
//! [`Detector`], its line in [`all`], and fixtures in `fixtures/detectors/<id>/positive/` and
//! `.../negative/` (the fixture test runs them and snapshots the findings).

use crate::engine::Detector;

mod context_window_overrun;
mod cost_budget_exceeded;
mod llm_error_retry_loop;
mod loss_of_conversation_history;
mod pii_leak;
mod prompt_injection;
mod retrieval_empty_answered;
mod secret_leak;
mod slow_span;
mod token_spike;
mod tool_retry_storm;
mod truncated_output;
mod unverified_success_claim;

/// Every built-in detector.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(context_window_overrun::ContextWindowOverrun),
        Box::new(cost_budget_exceeded::CostBudgetExceeded),
        Box::new(llm_error_retry_loop::LlmErrorRetryLoop),
        Box::new(loss_of_conversation_history::LossOfConversationHistory),
        Box::new(pii_leak::PiiLeak),
        Box::new(prompt_injection::PromptInjection),
        Box::new(retrieval_empty_answered::RetrievalEmptyAnswered),
        Box::new(secret_leak::SecretLeak),
        Box::new(slow_span::SlowSpan),
        Box::new(token_spike::TokenSpike),
        Box::new(tool_retry_storm::ToolRetryStorm),
        Box::new(truncated_output::TruncatedOutput),
        Box::new(unverified_success_claim::UnverifiedSuccessClaim),
    ]
}
