//! What detection produces: findings with evidence, and per trace a verdict and an
//! attribution of the decisive failure.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How bad a finding is, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// How much a finding of this severity moves the trace's failure score.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Info => 0.1,
            Severity::Low => 0.35,
            Severity::Medium => 0.65,
            Severity::High => 0.9,
            Severity::Critical => 1.0,
        }
    }

    /// One step up or down, saturating.
    #[must_use]
    pub fn shifted(self, steps: i32) -> Severity {
        let i = Severity::ALL.iter().position(|s| *s == self).unwrap_or(0) as i32 + steps;
        Severity::ALL[i.clamp(0, 4) as usize]
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown severity {s:?}; expected info, low, medium, high or critical")
            })
    }
}

/// Which tier produced a finding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Tier {
    /// Structural and deterministic: the trace's shape, statuses, counts, ids.
    T1,
    /// Textual and statistical: similarity, TF-IDF, extracted facts, claims against evidence.
    T2,
    /// The optional LLM judge.
    T3,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::T1 => "T1",
            Tier::T2 => "T2",
            Tier::T3 => "T3",
        })
    }
}

/// The failure modes of the MAST taxonomy (Cemri et al., 2025, "Why Do Multi-Agent LLM
/// Systems Fail?"), by their paper names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum MastMode {
    #[serde(rename = "FM-1.1")]
    DisobeyTaskSpecification,
    #[serde(rename = "FM-1.2")]
    DisobeyRoleSpecification,
    #[serde(rename = "FM-1.3")]
    StepRepetition,
    #[serde(rename = "FM-1.4")]
    LossOfConversationHistory,
    #[serde(rename = "FM-1.5")]
    UnawareOfTerminationConditions,
    #[serde(rename = "FM-2.1")]
    ConversationReset,
    #[serde(rename = "FM-2.2")]
    FailToAskForClarification,
    #[serde(rename = "FM-2.3")]
    TaskDerailment,
    #[serde(rename = "FM-2.4")]
    InformationWithholding,
    #[serde(rename = "FM-2.5")]
    IgnoredOtherAgentsInput,
    #[serde(rename = "FM-2.6")]
    ReasoningActionMismatch,
    #[serde(rename = "FM-3.1")]
    PrematureTermination,
    #[serde(rename = "FM-3.2")]
    NoOrIncompleteVerification,
    #[serde(rename = "FM-3.3")]
    IncorrectVerification,
}

impl MastMode {
    pub const ALL: [MastMode; 14] = [
        MastMode::DisobeyTaskSpecification,
        MastMode::DisobeyRoleSpecification,
        MastMode::StepRepetition,
        MastMode::LossOfConversationHistory,
        MastMode::UnawareOfTerminationConditions,
        MastMode::ConversationReset,
        MastMode::FailToAskForClarification,
        MastMode::TaskDerailment,
        MastMode::InformationWithholding,
        MastMode::IgnoredOtherAgentsInput,
        MastMode::ReasoningActionMismatch,
        MastMode::PrematureTermination,
        MastMode::NoOrIncompleteVerification,
        MastMode::IncorrectVerification,
    ];

    /// The code, e.g. `FM-2.3`.
    pub fn code(self) -> &'static str {
        match self {
            MastMode::DisobeyTaskSpecification => "FM-1.1",
            MastMode::DisobeyRoleSpecification => "FM-1.2",
            MastMode::StepRepetition => "FM-1.3",
            MastMode::LossOfConversationHistory => "FM-1.4",
            MastMode::UnawareOfTerminationConditions => "FM-1.5",
            MastMode::ConversationReset => "FM-2.1",
            MastMode::FailToAskForClarification => "FM-2.2",
            MastMode::TaskDerailment => "FM-2.3",
            MastMode::InformationWithholding => "FM-2.4",
            MastMode::IgnoredOtherAgentsInput => "FM-2.5",
            MastMode::ReasoningActionMismatch => "FM-2.6",
            MastMode::PrematureTermination => "FM-3.1",
            MastMode::NoOrIncompleteVerification => "FM-3.2",
            MastMode::IncorrectVerification => "FM-3.3",
        }
    }

    /// The name the MAST paper gives the mode.
    pub fn paper_name(self) -> &'static str {
        match self {
            MastMode::DisobeyTaskSpecification => "Disobey task specification",
            MastMode::DisobeyRoleSpecification => "Disobey role specification",
            MastMode::StepRepetition => "Step repetition",
            MastMode::LossOfConversationHistory => "Loss of conversation history",
            MastMode::UnawareOfTerminationConditions => "Unaware of termination conditions",
            MastMode::ConversationReset => "Conversation reset",
            MastMode::FailToAskForClarification => "Fail to ask for clarification",
            MastMode::TaskDerailment => "Task derailment",
            MastMode::InformationWithholding => "Information withholding",
            MastMode::IgnoredOtherAgentsInput => "Ignored other agent's input",
            MastMode::ReasoningActionMismatch => "Reasoning-action mismatch",
            MastMode::PrematureTermination => "Premature termination",
            MastMode::NoOrIncompleteVerification => "No or incomplete verification",
            MastMode::IncorrectVerification => "Incorrect verification",
        }
    }

    /// Parses a code (`FM-2.3`, `2.3`) or a paper name (any case).
    pub fn parse(s: &str) -> Option<MastMode> {
        let t = s.trim();
        let code = t.strip_prefix("FM-").unwrap_or(t);
        MastMode::ALL.into_iter().find(|m| {
            m.code().trim_start_matches("FM-") == code || m.paper_name().eq_ignore_ascii_case(t)
        })
    }
}

/// One piece of evidence: where, and a short quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// At most a couple of hundred characters from the span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// 1-based line of the span in its source file, when the source is line-oriented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// JSON Pointer of the span in its source document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What this piece shows.
    pub note: String,
}

/// A problem a detector found in a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub detector: String,
    pub title: String,
    pub category: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mast: Option<MastMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trail: Option<String>,
    pub tier: Tier,
    pub severity: Severity,
    /// Probability that this finding marks a real failure, calibrated on the labelled data.
    pub confidence: f64,
    /// One sentence saying what happened.
    pub summary: String,
    /// The agent responsible, when the detector can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The step (source position) where the failure happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub evidence: Vec<Evidence>,
    pub remediation: String,
    /// Other findings folded into this one by the overlap rule (their detector ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<String>,
    /// What the optional LLM judge (tier T3) said about this finding, when it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeReview>,
    /// The detector's score before calibration (used to fit calibrations; not serialized).
    #[serde(skip)]
    #[schemars(skip)]
    pub raw_score: f64,
}

/// The verdict on a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Unsure,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Unsure => "unsure",
            Verdict::Fail => "fail",
        })
    }
}

/// Who and where the decisive failure was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attribution {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub category: String,
    pub confidence: f64,
    /// The finding this attribution rests on, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// The tier that produced it: its finding's tier, T1 for the structural prior, T3 when the
    /// judge named the agent and step.
    pub tier: Tier,
    /// What the optional LLM judge said, when it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeReview>,
}

/// What the judge decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JudgeDecision {
    /// The finding (or attribution) holds.
    Confirm,
    /// The finding is a false positive; it moves to the trace's `dismissed` list.
    Reject,
    /// The finding holds with another severity (`severity_before` keeps the old one).
    Adjust,
    /// The judge named another agent, step or category for the decisive failure.
    Replace,
}

/// The judge's word on a finding or an attribution, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeReview {
    pub decision: JudgeDecision,
    /// The judge's reason, in its own words (one or two sentences).
    pub reason: String,
    /// The model that answered.
    pub model: String,
    /// The severity before an `adjust`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_before: Option<Severity>,
}

/// A detector that failed (panicked) on a trace. The run goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diagnostic {
    pub detector: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mast_codes_and_names_round_trip() {
        for m in MastMode::ALL {
            assert_eq!(MastMode::parse(m.code()), Some(m));
            assert_eq!(MastMode::parse(m.paper_name()), Some(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.code()));
        }
        assert_eq!(MastMode::parse("2.3"), Some(MastMode::TaskDerailment));
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert_eq!(Severity::Low.shifted(-3), Severity::Info);
        assert_eq!(Severity::High.shifted(5), Severity::Critical);
    }
}
