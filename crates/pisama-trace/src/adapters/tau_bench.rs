//! tau-bench trajectories: `{task_id, traj: [OpenAI chat messages], reward, info, trial}`.
//!
//! The conversation maps like generic chat (one span per message, `step` = index in `traj`,
//! tool calls paired with their `tool` results). `reward` and `info` (which holds the task's
//! expected actions) are answers and go to labels only.

use serde_json::Value;

use super::generic_chat::build_conversation;
use super::{AdapterError, AdapterResult, Input, Parsed, expect_json};
use crate::model::{Format, Label};
use crate::util::as_f64;

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let doc = expect_json(input, Format::TauBench)?;
    let traj = doc
        .get("traj")
        .and_then(Value::as_array)
        .ok_or_else(|| AdapterError::new("expected a `traj` array of messages"))?;
    let task_id = doc.get("task_id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let trial = doc.get("trial").and_then(Value::as_i64);
    let id = match (&task_id, trial) {
        (Some(t), Some(r)) => format!("task-{t}-trial-{r}"),
        (Some(t), None) => format!("task-{t}-{}", input.synth_id("tau")),
        _ => input.synth_id("tau-bench"),
    };
    let mut trace = build_conversation(input, Format::TauBench, id, traj, "/traj", "agent")?;
    if let Some(t) = task_id {
        trace
            .metadata
            .insert("task_id".to_owned(), Value::String(t));
    }
    if let Some(r) = trial {
        trace.metadata.insert("trial".to_owned(), Value::from(r));
    }
    let mut labels = Vec::new();
    if let Some(reward) = doc.get("reward").and_then(as_f64) {
        labels.push(Label {
            source: "tau-bench".to_owned(),
            category: "reward".to_owned(),
            value: Some(reward),
            ..Label::default()
        });
    }
    if let Some(info) = doc.get("info") {
        labels.push(Label {
            source: "tau-bench".to_owned(),
            category: "info".to_owned(),
            text: Some(info.to_string()),
            ..Label::default()
        });
    }
    Ok(vec![Parsed { trace, labels }])
}
