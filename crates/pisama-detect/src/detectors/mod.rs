//! The built-in detectors, one module per detector, each named after its catalogue file
//! (`detectors/<id>.toml`, with `-` written `_`).
//!
//! To add one: write `detectors/<id>.toml`, a module here with a unit struct implementing
//! [`Detector`], its line in [`all`], and fixtures in `fixtures/detectors/<id>/positive/` and
//! `.../negative/` (the fixture test runs them and snapshots the findings).

use crate::engine::Detector;

mod contradiction;
mod dialogue;
mod disobey_task_constraints;
mod fabricated_data;
mod fact_drift;
mod incorrect_verification;
mod llm_error_retry_loop;
mod missing_confirmation;
mod no_verification;
mod reasoning_action_mismatch;
mod task_derailment;
mod tool_retry_storm;
mod unverified_success_claim;
mod user_frustration;

/// Every built-in detector.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(contradiction::Contradiction),
        Box::new(disobey_task_constraints::DisobeyTaskConstraints),
        Box::new(fabricated_data::FabricatedData),
        Box::new(fact_drift::FactDrift),
        Box::new(incorrect_verification::IncorrectVerification),
        Box::new(llm_error_retry_loop::LlmErrorRetryLoop),
        Box::new(missing_confirmation::MissingConfirmation),
        Box::new(no_verification::NoVerification),
        Box::new(reasoning_action_mismatch::ReasoningActionMismatch),
        Box::new(task_derailment::TaskDerailment),
        Box::new(tool_retry_storm::ToolRetryStorm),
        Box::new(unverified_success_claim::UnverifiedSuccessClaim),
        Box::new(user_frustration::UserFrustration),
    ]
}
