//! Detection over canonical traces: the [`Detector`] trait, the catalogue in `detectors/`,
//! the parallel [`Engine`], and the verdict and attribution rules.
//!
//! Invariants:
//! - Detectors are pure functions of a [`pisama_trace::Trace`] and their parameters:
//!   deterministic (same input, same findings, same order), no I/O, no clock, no randomness,
//!   no network. They never see dataset labels: the engine's API takes a `Trace`, which has no
//!   field for them.
//! - Every detector is O(n log n) or better in spans; shared indexes live in [`TraceView`].
//! - A detector that panics becomes a [`Diagnostic`]; the run goes on.
//! - Every catalogue file has exactly one implementation and the other way round (a test
//!   checks it).

pub mod catalog;
pub mod detectors;
pub mod engine;
pub mod escalation;
pub mod eval;
pub mod finding;
pub mod result;
pub mod text;
pub mod verdict;
pub mod view;

pub use catalog::{DetectorMeta, Param, Params};
pub use engine::{Detector, Engine, EngineConfig, EngineError, Hit, HitEvidence, TraceReport};
pub use finding::{
    Attribution, Diagnostic, Evidence, Finding, JudgeDecision, JudgeReview, MastMode, Severity,
    Tier, Verdict,
};
pub use result::TraceResult;
pub use view::TraceView;
