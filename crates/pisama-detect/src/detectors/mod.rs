//! The built-in detectors, one module per detector, each named after its catalogue file
//! (`detectors/<id>.toml`, with `-` written `_`).
//!
//! To add one: write `detectors/<id>.toml`, a module here with a unit struct implementing
//! [`Detector`], its line in [`all`], and fixtures in `fixtures/detectors/<id>/positive/` and
//! `.../negative/` (the fixture test runs them and snapshots the findings).

use crate::engine::Detector;

mod code_execution_failed;
mod context_window_overrun;
mod contradiction;
mod conversation_reset;
mod cost_budget_exceeded;
mod dead_handoff;
mod delegation_runaway;
pub(crate) mod dialogue;
mod disobey_task_constraints;
mod fabricated_data;
mod fact_drift;
mod failed_state_change;
mod hallucinated_tool;
mod handoff_ping_pong;
mod ignored_agent_input;
mod incorrect_verification;
mod information_withholding;
mod invalid_tool_arguments;
mod invented_argument;
mod llm_error_retry_loop;
mod loss_of_conversation_history;
mod max_turns_exhausted;
mod missing_confirmation;
mod missing_file_reference;
mod no_verification;
mod orphan_tool_call;
mod pii_leak;
mod premature_termination;
mod prompt_injection;
mod reasoning_action_mismatch;
mod repeated_message;
mod retrieval_empty_answered;
mod revised_state_change;
mod role_violation;
mod secret_leak;
mod slow_span;
mod stalled_progress;
mod task_derailment;
#[cfg(test)]
mod test_support;
mod token_spike;
mod tool_call_cycle;
mod tool_error_ignored;
mod tool_error_rate;
pub(crate) mod tool_facts;
mod tool_retry_storm;
mod truncated_output;
pub(crate) mod turns;
mod unavailable_info_requested;
mod unaware_of_termination;
mod unverified_success_claim;
mod user_frustration;

/// Every built-in detector.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(code_execution_failed::CodeExecutionFailed),
        Box::new(context_window_overrun::ContextWindowOverrun),
        Box::new(contradiction::Contradiction),
        Box::new(conversation_reset::ConversationReset),
        Box::new(cost_budget_exceeded::CostBudgetExceeded),
        Box::new(dead_handoff::DeadHandoff),
        Box::new(delegation_runaway::DelegationRunaway),
        Box::new(disobey_task_constraints::DisobeyTaskConstraints),
        Box::new(fabricated_data::FabricatedData),
        Box::new(fact_drift::FactDrift),
        Box::new(failed_state_change::FailedStateChange),
        Box::new(hallucinated_tool::HallucinatedTool),
        Box::new(handoff_ping_pong::HandoffPingPong),
        Box::new(ignored_agent_input::IgnoredAgentInput),
        Box::new(incorrect_verification::IncorrectVerification),
        Box::new(information_withholding::InformationWithholding),
        Box::new(invalid_tool_arguments::InvalidToolArguments),
        Box::new(invented_argument::InventedArgument),
        Box::new(llm_error_retry_loop::LlmErrorRetryLoop),
        Box::new(loss_of_conversation_history::LossOfConversationHistory),
        Box::new(max_turns_exhausted::MaxTurnsExhausted),
        Box::new(missing_confirmation::MissingConfirmation),
        Box::new(missing_file_reference::MissingFileReference),
        Box::new(no_verification::NoVerification),
        Box::new(orphan_tool_call::OrphanToolCall),
        Box::new(pii_leak::PiiLeak),
        Box::new(premature_termination::PrematureTermination),
        Box::new(prompt_injection::PromptInjection),
        Box::new(reasoning_action_mismatch::ReasoningActionMismatch),
        Box::new(repeated_message::RepeatedMessage),
        Box::new(retrieval_empty_answered::RetrievalEmptyAnswered),
        Box::new(revised_state_change::RevisedStateChange),
        Box::new(role_violation::RoleViolation),
        Box::new(secret_leak::SecretLeak),
        Box::new(slow_span::SlowSpan),
        Box::new(stalled_progress::StalledProgress),
        Box::new(task_derailment::TaskDerailment),
        Box::new(token_spike::TokenSpike),
        Box::new(tool_call_cycle::ToolCallCycle),
        Box::new(tool_error_ignored::ToolErrorIgnored),
        Box::new(tool_error_rate::ToolErrorRate),
        Box::new(tool_retry_storm::ToolRetryStorm),
        Box::new(truncated_output::TruncatedOutput),
        Box::new(unaware_of_termination::UnawareOfTermination),
        Box::new(unavailable_info_requested::UnavailableInfoRequested),
        Box::new(unverified_success_claim::UnverifiedSuccessClaim),
        Box::new(user_frustration::UserFrustration),
    ]
}
