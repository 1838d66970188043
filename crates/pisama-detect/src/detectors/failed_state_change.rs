//! A state-changing tool call (cancel, book, update, pay, send, delete...) failed, and no
//! later call of the same tool by the same agent succeeded: the change the user or the task
//! asked for most likely did not happen, whatever the conversation says afterwards.

use std::collections::BTreeMap;

use crate::catalog::Params;
use crate::detectors::tool_facts::tool_action_stem;
use crate::detectors::tool_facts::{failure_text, tool_name};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

pub(crate) struct FailedStateChange;

impl Detector for FailedStateChange {
    fn id(&self) -> &'static str {
        "failed-state-change"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let retry_weight = params.f64("retry_weight", 0.1).clamp(0.0, 0.5);
        // Per (agent, tool): the failed calls so far, cleared by a later success.
        let mut open: BTreeMap<(&str, &str), Vec<Idx>> = BTreeMap::new();
        for &t in view.tools() {
            let name = tool_name(view, t);
            if tool_action_stem(view, t).is_none() {
                continue;
            }
            let key = (view.agent(t), name);
            if failure_text(view, t).is_some() {
                open.entry(key).or_default().push(t);
            } else {
                open.remove(&key);
            }
        }
        let last_change = view
            .tools()
            .iter()
            .copied()
            .rev()
            .find(|&t| tool_action_stem(view, t).is_some());
        let mut hits: Vec<Hit> = open
            .into_iter()
            .filter_map(|((_, name), failed)| {
                let first = *failed.first()?;
                let last = *failed.last()?;
                let attempts = failed.len();
                let score = (0.55 + retry_weight * (attempts as f64 - 1.0)).min(0.9);
                let error = failure_text(view, last).map_or_else(String::new, |e| {
                    e.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .trim()
                        .to_owned()
                });
                let mut evidence = vec![HitEvidence::new(
                    first,
                    "the state-changing call that failed",
                )];
                if last != first {
                    evidence.push(HitEvidence::new(
                        last,
                        format!("still failing after {attempts} attempts"),
                    ));
                }
                Some(Hit {
                    score,
                    // The last change the run tried did not happen: its outcome is at stake.
                    severity: (last_change == Some(last)).then_some(Severity::Medium),
                    summary: format!(
                        "`{name}` failed{} and never succeeded afterwards{}",
                        if attempts > 1 {
                            format!(" {attempts} times")
                        } else {
                            String::new()
                        },
                        if error.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", pisama_trace::util::truncate(&error, 100))
                        }
                    ),
                    at: Some(first),
                    evidence,
                    ..Hit::default()
                })
            })
            .collect();
        hits.sort_by_key(|h| h.at);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pisama_trace::Trace;

    #[test]
    fn empty_trace_is_quiet() {
        let t = Trace::default();
        assert!(
            FailedStateChange
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
