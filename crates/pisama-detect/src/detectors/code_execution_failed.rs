//! Code or a command failed to run (non-zero exit code, a traceback, an error status on an
//! exec/bash/terminal tool) and no later execution succeeded before the run ended: whatever
//! the agents concluded afterwards does not rest on working code.

use pisama_trace::util::truncate;

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

use super::tool_facts::{
    caller_message, error_line, failure_text, is_code_tool, result_text, tool_name,
};

pub(crate) struct CodeExecutionFailed;

impl Detector for CodeExecutionFailed {
    fn id(&self) -> &'static str {
        "code-execution-failed"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_failures = params.usize("min_failures", 1).max(1);
        // The failures since the last successful execution: a success fixes (or at least
        // moves past) everything before it.
        let mut unfixed: Vec<(Idx, &str)> = Vec::new();
        for &t in view.tools() {
            if !is_code_tool(view, t) {
                continue;
            }
            match failure_text(view, t) {
                Some(error) => unfixed.push((t, error)),
                None => unfixed.clear(),
            }
        }
        let Some(&(first, error)) = unfixed.first() else {
            return Vec::new();
        };
        if unfixed.len() < min_failures {
            return Vec::new();
        }
        let failures = unfixed.len();
        let author = caller_message(view, first);
        let line = key_line(view, first, error);
        let score = 1.0 - 0.5 * 0.7f64.powi(failures as i32 - 1);
        let severity = if failures >= 3 {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut evidence = Vec::new();
        if let Some(a) = author {
            // A model call that only issued the tool call has no text: quote the code it sent.
            evidence.push(if view.text(a).trim().is_empty() {
                let sent = view
                    .span(first)
                    .input
                    .as_ref()
                    .map_or("", |p| p.text.as_str());
                HitEvidence::quoted(a, "wrote the code that failed", sent)
            } else {
                HitEvidence::new(a, "wrote the code that failed")
            });
        }
        evidence.push(HitEvidence::quoted(first, "the execution failed", line));
        if let Some(&(last, last_error)) = unfixed.last()
            && last != first
        {
            evidence.push(HitEvidence::quoted(
                last,
                format!("still failing at attempt {failures}, and nothing ran successfully after"),
                key_line(view, last, last_error),
            ));
        }
        let who = author.map_or_else(|| view.agent(first), |a| view.agent(a));
        vec![Hit {
            score,
            severity: Some(severity),
            summary: if failures > 1 {
                format!(
                    "code by `{who}` failed in `{}` ({}); {failures} executions in a row failed and none succeeded after",
                    tool_name(view, first),
                    truncate(line, 80),
                )
            } else {
                format!(
                    "code by `{who}` failed in `{}` ({}), and no execution succeeded after it",
                    tool_name(view, first),
                    truncate(line, 80),
                )
            },
            at: Some(author.unwrap_or(first)),
            evidence,
            ..Hit::default()
        }]
    }
}

/// The line that names the error, from the full output when there is one (an error message
/// may hold only the first line of a traceback).
fn key_line<'t>(view: &TraceView<'t>, t: Idx, error: &'t str) -> &'t str {
    let output = result_text(view, t);
    error_line(if output.trim().is_empty() {
        error
    } else {
        output
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::load::{LoadOptions, load_bytes};

    fn run(json: &str) -> Vec<Hit> {
        let (_, traces) = load_bytes("t.json", json.as_bytes(), &LoadOptions::default()).unwrap();
        let view = TraceView::new(&traces[0].trace);
        CodeExecutionFailed.detect(&view, &Params::default())
    }

    #[test]
    fn empty_trace_is_quiet() {
        let trace = pisama_trace::Trace::default();
        assert!(
            CodeExecutionFailed
                .detect(&TraceView::new(&trace), &Params::default())
                .is_empty()
        );
    }

    #[test]
    fn fixed_failure_is_quiet_and_unfixed_one_fires() {
        let fixed = r#"{"messages": [
            {"role": "user", "content": "sum the file"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "run_python", "arguments": "{\"code\": \"print(sum(x))\"}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "Traceback (most recent call last):\nNameError: name 'x' is not defined"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "b", "type": "function", "function": {"name": "run_python", "arguments": "{\"code\": \"print(6)\"}"}}]},
            {"role": "tool", "tool_call_id": "b", "content": "6"},
            {"role": "assistant", "content": "The sum is 6."}]}"#;
        assert!(run(fixed).is_empty());
        let unfixed = fixed.replace(r#""content": "6"}"#, r#""content": "Traceback (most recent call last):\nZeroDivisionError: division by zero"}"#);
        let hits = run(&unfixed);
        assert_eq!(hits.len(), 1);
        // Attributed to the model call that wrote the first failing code.
        assert_eq!(hits[0].at, Some(1));
        assert!(hits[0].summary.contains("NameError"), "{}", hits[0].summary);
    }
}
