//! The same tool called again and again with the same arguments: a retry storm or a loop the
//! agent does not notice.

use crate::catalog::Params;
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

pub(crate) struct ToolRetryStorm;

impl Detector for ToolRetryStorm {
    fn id(&self) -> &'static str {
        "tool-retry-storm"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let min_repeats = params.usize("min_repeats", 3).max(2);
        let tools = view.tools();
        let mut hits = Vec::new();
        let mut start = 0;
        while start < tools.len() {
            let first = view.span(tools[start]);
            let Some(key) = call_key(view, tools[start]) else {
                start += 1;
                continue;
            };
            let mut end = start + 1;
            while end < tools.len() {
                let s = view.span(tools[end]);
                if s.agent != first.agent || call_key(view, tools[end]) != Some(key) {
                    break;
                }
                end += 1;
            }
            let run = &tools[start..end];
            if run.len() >= min_repeats {
                let failures = run.iter().filter(|&&i| view.failed(i)).count();
                let extra = (run.len() - min_repeats + 1) as i32;
                let score = 1.0 - 0.5f64.powi(extra);
                let severity = if run.len() >= 2 * min_repeats {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let name = first
                    .tool
                    .as_ref()
                    .map_or(first.name.as_str(), |t| t.name.as_str());
                let mut evidence: Vec<HitEvidence> = run
                    .iter()
                    .take(3)
                    .map(|&i| {
                        HitEvidence::new(
                            i,
                            if view.failed(i) {
                                "failed call"
                            } else {
                                "call"
                            },
                        )
                    })
                    .collect();
                if run.len() > 3 {
                    evidence.push(HitEvidence::new(
                        run[run.len() - 1],
                        format!("call {} of {}", run.len(), run.len()),
                    ));
                }
                hits.push(Hit {
                    score,
                    severity: Some(severity),
                    summary: format!(
                        "`{name}` was called {} times in a row with the same arguments ({failures} failed)",
                        run.len()
                    ),
                    at: Some(run[1]),
                    evidence,
                    ..Hit::default()
                });
            }
            start = end;
        }
        hits
    }
}

/// Tool name plus canonical arguments (compact JSON; equal calls render equal). `None` when
/// the source does not record the arguments: identical-looking calls without arguments (a code
/// executor's turns, say) are not evidence of a repeat.
fn call_key<'v>(view: &'v TraceView<'_>, i: Idx) -> Option<(&'v str, &'v str)> {
    let span = view.span(i);
    if let (Some(t), Some(arguments)) = (&span.tool, view.arguments_json(i)) {
        return Some((t.name.as_str(), arguments));
    }
    span.input
        .as_ref()
        .filter(|p| !p.text.trim().is_empty())
        .map(|p| (span.name.as_str(), p.text.as_str()))
}
