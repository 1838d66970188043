//! Who&When failure-attribution cases (`formats.md` §10.1).
//!
//! Each `history` item becomes one span whose `step` is its index, so an attribution can be
//! checked against `mistake_step`. Algorithm-Generated files name the speaker in `name`;
//! Hand-Crafted files encode it in `role` (`Orchestrator (-> WebSurfer)`), where `-> X` is a
//! handoff. Code-execution results (`Computer_terminal`) are tool spans, failed when the
//! output says `exitcode: 1`. The answers (`mistake_*`, `is_correct`, `ground_truth`) go to
//! labels only.

use serde_json::Value;

use super::{AdapterError, AdapterResult, Input, Parsed, expect_json};
use crate::builder::TraceBuilder;
use crate::model::{
    AgentInfo, ErrorInfo, Format, Handoff, HandoffMode, Label, Payload, Span, SpanKind, Status,
    ToolCall,
};
use crate::util::{get_str, text_of};

/// Keys that hold answers; they must never reach the trace.
const ANSWER_KEYS: [&str; 7] = [
    "mistake_agent",
    "mistake_step",
    "mistake_reason",
    "mistake_type",
    "is_correct",
    "is_corrected",
    "ground_truth",
];

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let doc = expect_json(input, Format::WhoWhen)?;
    let history = doc
        .get("history")
        .and_then(Value::as_array)
        .ok_or_else(|| AdapterError::new("expected a `history` array"))?;
    let id = get_str(doc, &["question_ID"])
        .map_or_else(|| input.synth_id("who-and-when"), str::to_owned);
    let mut b = TraceBuilder::new(Format::WhoWhen, id);
    let hand_crafted = history.iter().all(|h| h.get("name").is_none());
    b.trace_mut().format_version = Some(
        if hand_crafted {
            "hand-crafted"
        } else {
            "algorithm-generated"
        }
        .to_owned(),
    );
    if let Some(q) = get_str(doc, &["question"]) {
        b.trace_mut().task = Some(q.to_owned());
    }
    for key in ["question_ID", "level"] {
        if let Some(v) = doc.get(key) {
            b.trace_mut().metadata.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(Value::Object(prompts)) = doc.get("system_prompt") {
        for (agent, prompt) in prompts {
            b.agent(AgentInfo {
                name: agent.clone(),
                role: prompt.as_str().map(|p| crate::util::truncate(p, 400)),
                ..AgentInfo::default()
            });
        }
    }

    for (step, item) in history.iter().enumerate() {
        let content = item.get("content").and_then(text_of).unwrap_or_default();
        let role = get_str(item, &["role"]).unwrap_or("");
        let (agent, qualifier) = match get_str(item, &["name"]) {
            Some(name) => (name.to_owned(), None),
            None => split_role(role),
        };
        let pointer = format!("/history/{step}");
        let is_terminal = is_terminal(&agent);
        let kind = if is_terminal {
            SpanKind::Tool
        } else if agent.eq_ignore_ascii_case("human") || (hand_crafted && role == "user") {
            SpanKind::Human
        } else {
            SpanKind::Step
        };
        let mut span = Span {
            id: format!("step-{step}"),
            kind,
            name: agent.clone(),
            // The human asking the question is not one of the system's agents.
            agent: (kind != SpanKind::Human).then(|| agent.clone()),
            step: Some(step as u32),
            output: Some(Box::new(Payload::text(content.clone()))),
            source: input.at(pointer),
            ..Span::default()
        };
        if let Some(q) = &qualifier {
            span.attributes
                .insert("role.qualifier".to_owned(), Value::String(q.clone()));
        }
        if let Some(r) = item.get("role") {
            span.attributes.insert("role".to_owned(), r.clone());
        }
        if is_terminal {
            let failed = exit_code(&content).is_some_and(|c| c != 0);
            span.tool = Some(Box::new(ToolCall {
                name: "code_execution".to_owned(),
                result: Some(Value::String(content.clone())),
                is_error: failed,
                ..ToolCall::default()
            }));
            span.status = if failed { Status::Error } else { Status::Ok };
            if failed {
                span.error = Some(Box::new(ErrorInfo {
                    kind: Some("exitcode".to_owned()),
                    message: first_error_line(&content),
                    ..ErrorInfo::default()
                }));
            }
        }
        if let Some(target) = qualifier.as_deref().and_then(|q| q.strip_prefix("->")) {
            let target = target.trim().to_owned();
            span.handoff = Some(Box::new(Handoff {
                from: Some(agent.clone()),
                to: target,
                mode: HandoffMode::Delegate,
            }));
        }
        b.push(span);
    }

    let mut labels = Vec::new();
    let mistake_step = doc.get("mistake_step").and_then(|v| match v {
        Value::String(s) => s.trim().parse::<u32>().ok(),
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        _ => None,
    });
    let mistake_agent = get_str(doc, &["mistake_agent"]).map(str::to_owned);
    if mistake_agent.is_some() || mistake_step.is_some() {
        labels.push(Label {
            source: "who-and-when".to_owned(),
            category: get_str(doc, &["mistake_type"])
                .unwrap_or("mistake")
                .to_owned(),
            span: mistake_step.map(|s| format!("step-{s}")),
            agent: mistake_agent,
            step: mistake_step,
            text: get_str(doc, &["mistake_reason"]).map(str::to_owned),
            value: None,
        });
    }
    for key in ["is_correct", "is_corrected"] {
        if let Some(v) = doc.get(key).and_then(Value::as_bool) {
            labels.push(Label {
                source: "who-and-when".to_owned(),
                category: key.to_owned(),
                value: Some(if v { 1.0 } else { 0.0 }),
                ..Label::default()
            });
        }
    }
    if let Some(gt) = doc.get("ground_truth").and_then(text_of) {
        labels.push(Label {
            source: "who-and-when".to_owned(),
            category: "ground_truth".to_owned(),
            text: Some(gt),
            ..Label::default()
        });
    }
    debug_assert!(
        ANSWER_KEYS
            .iter()
            .all(|k| !b.trace_mut().metadata.contains_key(*k))
    );
    Ok(vec![Parsed {
        trace: b.finish(),
        labels,
    }])
}

/// `Orchestrator (-> WebSurfer)` → (`Orchestrator`, `-> WebSurfer`); `WebSurfer` → (`WebSurfer`, None).
fn split_role(role: &str) -> (String, Option<String>) {
    let role = role.trim();
    if let Some(open) = role.find(" (")
        && role.ends_with(')')
    {
        let agent = role[..open].trim().to_owned();
        let qualifier = role[open + 2..role.len() - 1].trim().to_owned();
        return (agent, Some(qualifier));
    }
    (
        if role.is_empty() {
            "unknown".to_owned()
        } else {
            role.to_owned()
        },
        None,
    )
}

fn is_terminal(agent: &str) -> bool {
    let a = agent.to_ascii_lowercase().replace(['_', ' '], "");
    a == "computerterminal" || a == "executor" || a == "codeexecutor"
}

/// The exit code from AG2's `exitcode: N (execution ...)` prefix.
fn exit_code(content: &str) -> Option<i64> {
    let rest = content.trim_start().strip_prefix("exitcode:")?;
    rest.split_whitespace().next()?.parse().ok()
}

fn first_error_line(content: &str) -> String {
    content
        .lines()
        .rev()
        .find(|l| l.contains("Error") || l.contains("error"))
        .or_else(|| content.lines().next())
        .map(|l| crate::util::truncate(l.trim(), 300))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(
            split_role("Orchestrator (-> WebSurfer)"),
            ("Orchestrator".into(), Some("-> WebSurfer".into()))
        );
        assert_eq!(split_role("WebSurfer"), ("WebSurfer".into(), None));
        assert_eq!(
            exit_code("exitcode: 1 (execution failed)\nCode output:"),
            Some(1)
        );
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::model::{Format, SpanKind, Status};
    use crate::testing::fixture;

    #[test]
    fn algorithm_generated() {
        let (summary, traces) = fixture("who-and-when/algorithm-generated.json");
        assert_eq!(summary.format, Format::WhoWhen);
        let t = &traces[0];
        assert!(t.trace.agents.len() >= 2);
        assert!(t.trace.spans.iter().all(|s| s.step.is_some()));
        let failed = t
            .trace
            .spans
            .iter()
            .find(|s| s.status == Status::Error)
            .expect("failed execution");
        assert_eq!(failed.kind, SpanKind::Tool);
        let label = &t.labels[0];
        assert_eq!(label.agent.as_deref(), Some("Data_Analysis_Expert"));
        assert_eq!(label.step, Some(1));
        // Answers never reach the trace itself.
        let json = serde_json::to_string(&t.trace).unwrap();
        assert!(!json.contains("mistake"));
        assert!(!json.contains("The team reported 42"));
    }

    #[test]
    fn hand_crafted_roles_and_handoffs() {
        let (_, traces) = fixture("who-and-when/hand-crafted.json");
        let t = &traces[0].trace;
        assert!(t.agents.iter().any(|a| a.name == "Orchestrator"));
        assert!(t.agents.iter().any(|a| a.name == "WebSurfer"));
        assert!(
            t.spans
                .iter()
                .any(|s| s.handoff.as_ref().is_some_and(|h| h.to == "WebSurfer"))
        );
    }
}
