//! A state-changing call was rejected, and the same tool went through later with different
//! arguments. The change that happened is not the one the agent first prepared (and usually
//! presented to the user): the agent bent the action until the system accepted it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::catalog::Params;
use crate::detectors::dialogue::{Speaker, speaker};
use crate::detectors::tool_facts::tool_action_stem;
use crate::detectors::tool_facts::{error_line, failure_text, tool_name};
use crate::engine::{Detector, Hit, HitEvidence};
use crate::finding::Severity;
use crate::view::{Idx, TraceView};

pub(crate) struct RevisedStateChange;

impl Detector for RevisedStateChange {
    fn id(&self) -> &'static str {
        "revised-state-change"
    }

    fn detect(&self, view: &TraceView<'_>, params: &Params) -> Vec<Hit> {
        let max_fields = params.usize("max_fields", 3).max(1);
        // Per (agent, tool): the first rejected call not yet followed by a success.
        let mut rejected: BTreeMap<(&str, &str), Idx> = BTreeMap::new();
        let mut hits = Vec::new();
        for &t in view.tools() {
            let name = tool_name(view, t);
            if tool_action_stem(view, t).is_none() {
                continue;
            }
            let key = (view.agent(t), name);
            if failure_text(view, t).is_some() {
                rejected.entry(key).or_insert(t);
                continue;
            }
            let Some(failed) = rejected.remove(&key) else {
                continue;
            };
            let (before, after) = (arguments(view, failed), arguments(view, t));
            if before.is_null() || after.is_null() || before == after {
                continue;
            }
            let mut changed = Vec::new();
            changed_fields(&before, &after, String::new(), &mut changed);
            if changed.is_empty() {
                continue;
            }
            let asked_user = view
                .conversation()
                .iter()
                .any(|&c| c > failed && c < t && speaker(view, c) == Speaker::User);
            let fields = changed
                .iter()
                .take(max_fields)
                .map(|(f, _)| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let more = changed.len().saturating_sub(max_fields);
            let error = failure_text(view, failed).map_or("", error_line).trim();
            hits.push(Hit {
                score: if asked_user { 0.5 } else { 0.65 },
                severity: (!asked_user).then_some(Severity::Medium),
                summary: format!(
                    "`{name}` was rejected, then went through with different {fields}{}{}",
                    if more > 0 {
                        format!(" (and {more} more)")
                    } else {
                        String::new()
                    },
                    if asked_user {
                        ""
                    } else {
                        ", without going back to the user"
                    }
                ),
                at: Some(t),
                evidence: vec![
                    HitEvidence::quoted(
                        failed,
                        "the call the system rejected",
                        pisama_trace::util::truncate(error, 160),
                    ),
                    HitEvidence::quoted(
                        t,
                        "the call that went through",
                        changed
                            .iter()
                            .take(max_fields)
                            .map(|(_, change)| change.as_str())
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                ],
                ..Hit::default()
            });
        }
        hits
    }
}

/// A call's arguments as JSON; a string holding JSON is parsed.
pub(crate) fn arguments(view: &TraceView<'_>, t: Idx) -> Value {
    match view.span(t).tool.as_ref().map(|c| &c.arguments) {
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// The leaves that differ between two argument objects: their path (`payment.amount`,
/// `flights[1].date`) and the change (`payment.amount: 5 → 55`). A key present on one side
/// only counts as changed.
fn changed_fields(before: &Value, after: &Value, path: String, out: &mut Vec<(String, String)>) {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (old.get(k), new.get(k)) {
                    (Some(was), Some(now)) => changed_fields(was, now, sub, out),
                    (was, now) => out.push(change(sub, was, now)),
                }
            }
        }
        (Value::Array(old), Value::Array(new)) if old.len() == new.len() => {
            for (i, (was, now)) in old.iter().zip(new).enumerate() {
                changed_fields(was, now, format!("{path}[{i}]"), out);
            }
        }
        _ if before != after => {
            let path = if path.is_empty() {
                "arguments".to_owned()
            } else {
                path
            };
            out.push(change(path, Some(before), Some(after)));
        }
        _ => {}
    }
}

fn change(path: String, before: Option<&Value>, after: Option<&Value>) -> (String, String) {
    let show = |v: Option<&Value>| {
        v.map_or_else(
            || "(absent)".to_owned(),
            |v| pisama_trace::util::truncate(&v.to_string(), 60),
        )
    };
    let text = format!("{path}: {} → {}", show(before), show(after));
    (path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_fields_names_leaf_paths() {
        let mut out = Vec::new();
        changed_fields(
            &json!({"id": 7, "pay": [{"m": "card_1", "amount": 50}], "note": "x"}),
            &json!({"id": 7, "pay": [{"m": "card_1", "amount": 55}], "extra": true, "note": "x"}),
            String::new(),
            &mut out,
        );
        let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["extra", "pay[0].amount"]);
        assert_eq!(out[1].1, "pay[0].amount: 50 → 55");
    }

    #[test]
    fn empty_trace_is_quiet() {
        let t = pisama_trace::Trace::default();
        assert!(
            RevisedStateChange
                .detect(&TraceView::new(&t), &Params::default())
                .is_empty()
        );
    }
}
