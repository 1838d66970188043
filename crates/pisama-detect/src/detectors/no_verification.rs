//! The final answer is given without checking the last thing that produced it: the last code
//! written was never run, the last execution failed or printed nothing and was not re-run, or
//! the answer's numbers appear in no tool output although tools were used.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::catalog::Params;
use crate::detectors::dialogue::{
    Speaker, agent_messages, execution_failed, format_number, number_key, speaker, timeline,
    tool_name,
};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::text::numbers;
use crate::view::{Idx, TraceView};

pub(crate) struct NoVerification;

/// Words with which an answer reports a failure instead of a result.
fn admits_failure() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(error|errors|fail|failed|fails|failure|unable|couldn'?t|could not|can'?t|cannot|unfortunately|not able|issue|problem|not possible|did not work|didn'?t work|unavailable|not available|timed out|(?:is|was|are|were|went) down|outage|unreachable|offline|not responding|unresponsive|bug|bugs|broken|crash|crashed|crashes)\b")
            .expect("valid regex")
    })
}

/// Text of an answer without the termination marker some frameworks append.
fn substance(text: &str) -> String {
    text.replace("TERMINATE", "").trim().to_owned()
}

#[derive(Debug, Clone, Copy)]
enum Gap {
    /// Code was written after the last execution and never run.
    CodeNeverRun(Idx),
    /// The last execution failed and nothing was re-run.
    LastRunFailed(Idx),
    /// The last execution printed nothing.
    EmptyOutput(Idx),
    /// The answer's numbers appear in no tool output.
    UnbackedNumbers(Idx),
}

impl Detector for NoVerification {
    fn id(&self) -> &'static str {
        "no-verification"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let check_numbers = params.bool("check_numbers", true);
        let line = timeline(view);
        let messages = agent_messages(view, &line);
        // The answer: the last substantive agent message; one that asks a question is waiting
        // for input, not answering.
        let Some(&answer) = messages
            .iter()
            .rev()
            .find(|&&i| substance(view.text(i)).split_whitespace().count() >= 3)
            .filter(|&&i| !substance(view.text(i)).ends_with('?'))
        else {
            return Vec::new();
        };
        let wrote_code = |i: Idx| view.text(i).contains("```");
        let used_tools = line
            .iter()
            .any(|&i| speaker(view, i) == Speaker::Tool && i < answer);
        if !used_tools && !messages.iter().any(|&i| i < answer && wrote_code(i)) {
            return Vec::new();
        }
        // The last step that produced something before the answer.
        let last_product = line.iter().copied().filter(|&i| i < answer).rfind(|&i| {
            speaker(view, i) == Speaker::Tool
                || (speaker(view, i) == Speaker::Agent && wrote_code(i))
        });
        // A failure the agent told about (in any message since) is reported, not hidden.
        let admitted = |p: Idx| {
            messages
                .iter()
                .any(|&m| m > p && m <= answer && admits_failure().is_match(view.text(m)))
        };
        let gap = match last_product {
            Some(p) if speaker(view, p) == Speaker::Agent => Some(Gap::CodeNeverRun(p)),
            Some(p) if execution_failed(view, p) && !admitted(p) => Some(Gap::LastRunFailed(p)),
            Some(p) if is_code_run(view, p) && is_empty_output(view.text(p)) && !admitted(p) => {
                Some(Gap::EmptyOutput(p))
            }
            Some(p) if check_numbers => {
                unbacked(view, &line, answer).map(|_| Gap::UnbackedNumbers(p))
            }
            _ => None,
        };
        gap.map(|g| hit(view, answer, g)).into_iter().collect()
    }
}

/// Whether a tool span runs code (an executor's framing, or a code-running tool name): an
/// empty search result is an answer, an empty program output is not.
fn is_code_run(view: &TraceView<'_>, i: Idx) -> bool {
    let text = view.text(i);
    if text.contains("exitcode") || text.contains("Code output") {
        return true;
    }
    crate::detectors::dialogue::name_words(tool_name(view, i))
        .iter()
        .any(|w| {
            matches!(
                w.as_str(),
                "code"
                    | "python"
                    | "exec"
                    | "execute"
                    | "execution"
                    | "shell"
                    | "bash"
                    | "terminal"
                    | "run"
                    | "script"
                    | "interpreter"
            )
        })
}

/// Whether an execution's output is empty once the framework's framing is removed.
fn is_empty_output(text: &str) -> bool {
    let rest = text
        .split_once("Code output:")
        .map_or(text, |(_, after)| after)
        .trim();
    rest.is_empty() || rest == "None" || rest == "[]" || rest == "{}"
}

/// The first number of the answer (at least 10, not a year-like integer) that no tool result,
/// user message or task text contains.
fn unbacked(view: &TraceView<'_>, line: &[Idx], answer: Idx) -> Option<f64> {
    let mut backed: HashSet<i64> = view
        .trace
        .task
        .as_deref()
        .map(|t| numbers(t).into_iter().map(number_key).collect())
        .unwrap_or_default();
    for &i in line.iter().filter(|&&i| i < answer) {
        if speaker(view, i) != Speaker::Agent {
            backed.extend(view.numbers(i).iter().map(|&n| number_key(n)));
        }
    }
    let wanted: Vec<f64> = numbers(&substance(view.text(answer)))
        .into_iter()
        .filter(|n| n.abs() >= 10.0 && !(1900.0..=2100.0).contains(n))
        .collect();
    // One unbacked number among many backed ones is usually derived arithmetic; only an
    // answer whose numbers are mostly unbacked counts.
    let missing: Vec<f64> = wanted
        .iter()
        .copied()
        .filter(|n| !backed.contains(&number_key(*n)))
        .collect();
    (!wanted.is_empty() && missing.len() * 2 > wanted.len())
        .then(|| missing.first().copied())
        .flatten()
}

fn hit(view: &TraceView<'_>, answer: Idx, gap: Gap) -> Hit {
    let who = view.agent(answer);
    let (score, severity, at, summary, evidence) = match gap {
        Gap::CodeNeverRun(p) => (
            if p == answer { 0.5 } else { 0.75 },
            Severity::Medium,
            p,
            format!(
                "`{}` wrote code that was never run before `{who}` gave the final answer",
                view.agent(p)
            ),
            HitEvidence::new(p, "code written after the last execution"),
        ),
        Gap::LastRunFailed(p) => (
            0.7,
            Severity::Medium,
            answer,
            format!(
                "`{who}` gave the final answer right after `{}` failed, without re-running or checking",
                tool_name(view, p)
            ),
            HitEvidence::new(p, "the last execution failed"),
        ),
        Gap::EmptyOutput(p) => (
            0.55,
            Severity::Medium,
            answer,
            format!(
                "`{who}` gave the final answer although the last execution (`{}`) printed nothing",
                tool_name(view, p)
            ),
            HitEvidence::new(p, "the last execution printed nothing"),
        ),
        Gap::UnbackedNumbers(p) => (
            0.4,
            Severity::Low,
            answer,
            format!(
                "`{who}`'s final answer states {} although no tool output contains it, and nothing checked it",
                unbacked_value(view, answer)
            ),
            HitEvidence::new(p, "the last tool output before the answer"),
        ),
    };
    let mut ev = vec![evidence];
    if at == answer {
        ev.insert(0, HitEvidence::new(answer, "final answer"));
    } else {
        ev.push(HitEvidence::new(answer, "final answer"));
    }
    Hit {
        score,
        severity: Some(severity),
        summary,
        at: Some(at),
        evidence: ev,
        ..Hit::default()
    }
}

fn unbacked_value(view: &TraceView<'_>, answer: Idx) -> String {
    let line = timeline(view);
    unbacked(view, &line, answer).map_or_else(|| "a number".to_owned(), format_number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_outputs() {
        assert!(is_empty_output(
            "exitcode: 0 (execution succeeded)\nCode output: "
        ));
        assert!(is_empty_output(""));
        assert!(!is_empty_output("Code output: 42"));
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            NoVerification
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
