//! n8n workflow executions (`formats.md` §5).
//!
//! Accepted shapes: a public-API execution (`data.resultData.runData`), a bare run-data object
//! (`resultData.runData`), a `{data: [executions]}` list (one trace per execution), the
//! internal REST API's execution whose `data` is a **flatted** string (optionally wrapped in
//! `{data: {...}}`), and the database-export variant with inline `data` plus `workflowData`.
//!
//! Mapping decisions:
//! - A synthetic root Step `workflow` (named after `workflowData.name`) carries the execution's
//!   times, status and `resultData.error`. `canceled` executions are errors of kind `canceled`;
//!   `waiting`/`running` ones stay `Unset`.
//! - Each `runData[node][runIndex]` is one span with id `"{node}#{runIndex}"` and `step` =
//!   `executionIndex`. AI sub-nodes (chat model, tools, memory) sit under the run that lists
//!   them in `metadata.subRun`, else under their `source[0]` run; main-flow nodes sit under the
//!   root and get a `DataFlow` link per `source[].previousNode`.
//! - Kinds come from the node type when `workflowData` names it (`lmChat*` → Llm, `*Tool`/
//!   `tool*` → Tool, `agent*` → Agent, `memory*` → System, `vectorStore*`/`retriever*` →
//!   Retrieval, `embeddings*` → Embedding, `chatTrigger` → Human), else from the connection
//!   types in `data`/`inputOverride` (`ai_languageModel`, `ai_tool`, ...). A run whose sub-runs
//!   include a model call is an Agent. Without `workflowData`, a first node whose output holds
//!   `chatInput` is the chat trigger (Human).
//! - Model runs: messages are the pre-rendered prompt strings, split on their `System:`/
//!   `Human:`/`AI:`/`Tool:` prefixes; usage from `tokenUsage`, or `tokenUsageEstimate` marked
//!   estimated. n8n reports no cost.
//! - An AI Agent's `intermediateSteps` are matched to its tool sub-runs by the tool name the
//!   model saw (the node name with punctuation turned into `_`), in order: they give the call
//!   id and the observation; an observation reading "There was an error" fails the tool. Steps
//!   without a sub-run become Tool spans of their own.
//! - Errors: node `error` → Error; items with `json.error` (continue-on-fail) → Error handled;
//!   a sub-node failure under an agent run that succeeded is handled (the agent carried on).
//! - Delegation: an agent used as a tool of another agent, and `metadata.subExecution`, add a
//!   zero-length Handoff (Delegate) beside the run.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Map, Value};

use super::generic_chat::looks_like_error;
use super::langsmith::any_message;
use super::{AdapterError, AdapterResult, Doc, Input, Parsed};
use crate::builder::TraceBuilder;
use crate::model::{
    ErrorInfo, Format, Handoff, HandoffMode, Link, LinkKind, LlmCall, Message, Payload, Role,
    SourceRef, Span, SpanKind, Status, ToolCall, Usage,
};
use crate::util::{as_u64, get, get_str, text_of, time_value, truncate};

pub(crate) fn parse(input: &Input) -> AdapterResult {
    let mut found: Vec<(&Value, String, Option<u32>)> = Vec::new();
    let mut skipped = Vec::new();
    match &input.doc {
        Doc::Json(v) => executions_in(v, "", None, &mut found, &mut skipped),
        Doc::Lines(lines) => {
            for line in lines {
                executions_in(&line.value, "", Some(line.line), &mut found, &mut skipped);
            }
        }
        Doc::Text(_) => {
            return Err(AdapterError::new("n8n executions are JSON, got text"));
        }
    }
    if found.is_empty() {
        return Err(AdapterError::new(
            "expected an n8n execution: `data.resultData.runData`, a bare `resultData`, \
             `{\"data\": [executions]}` or an execution whose `data` is a flatted string",
        ));
    }
    let mut out = Vec::with_capacity(found.len());
    for (exec, pointer, line) in found {
        let mut trace = Execution::new(input, exec, &pointer, line).build();
        for s in &skipped {
            trace.warnings.push(s.clone());
        }
        out.push(Parsed::unlabelled(trace));
    }
    Ok(out)
}

fn looks_like_execution(o: &Map<String, Value>) -> bool {
    o.contains_key("resultData")
        || o.get("data")
            .is_some_and(|d| d.is_string() || d.get("resultData").is_some())
        || (o.contains_key("workflowData") && o.contains_key("mode"))
        || (o.contains_key("status") && o.contains_key("startedAt") && o.contains_key("workflowId"))
}

/// Finds executions in a document: itself, the items of `data: [...]`, an internal REST
/// `{data: execution}` wrapper, or the elements of an array.
fn executions_in<'v>(
    v: &'v Value,
    pointer: &str,
    line: Option<u32>,
    out: &mut Vec<(&'v Value, String, Option<u32>)>,
    skipped: &mut Vec<String>,
) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                executions_in(item, &format!("{pointer}/{i}"), line, out, skipped);
            }
        }
        Value::Object(o) => {
            if let Some(Value::Array(items)) = o.get("data") {
                for (i, item) in items.iter().enumerate() {
                    match item.as_object() {
                        Some(e) if looks_like_execution(e) => {
                            out.push((item, format!("{pointer}/data/{i}"), line));
                        }
                        _ => skipped.push(format!("data[{i}] is not an n8n execution; skipped")),
                    }
                }
            } else if let Some(wrapped @ Value::Object(inner)) = o.get("data")
                && inner.get("data").is_some_and(Value::is_string)
                && looks_like_execution(inner)
            {
                out.push((wrapped, format!("{pointer}/data"), line));
            } else if looks_like_execution(o) {
                out.push((v, pointer.to_owned(), line));
            } else {
                skipped.push(format!(
                    "a value at `{}` is not an n8n execution; skipped",
                    if pointer.is_empty() { "/" } else { pointer }
                ));
            }
        }
        _ => skipped.push("a non-object value is not an n8n execution; skipped".to_owned()),
    }
}

// ---- one execution -------------------------------------------------------------------------

/// A node of `workflowData.nodes`.
#[derive(Debug, Clone, Default)]
struct NodeInfo {
    node_type: Option<String>,
    continue_on_fail: bool,
}

/// One `runData[node][runIndex]`.
struct RunRef<'a> {
    node: &'a str,
    index: usize,
    task: &'a Map<String, Value>,
    order: (u64, i64, usize),
}

impl RunRef<'_> {
    fn id(&self) -> String {
        run_id(self.node, self.index)
    }
}

fn run_id(node: &str, index: usize) -> String {
    format!("{node}#{index}")
}

struct Execution<'a> {
    input: &'a Input,
    /// The execution object (its fields are read with `Value::get`).
    exec: &'a Value,
    pointer: String,
    line: Option<u32>,
    warnings: Vec<String>,
}

impl<'a> Execution<'a> {
    fn new(input: &'a Input, exec: &'a Value, pointer: &str, line: Option<u32>) -> Self {
        Execution {
            input,
            exec,
            pointer: pointer.to_owned(),
            line,
            warnings: Vec::new(),
        }
    }

    fn source(&self, pointer: &str) -> SourceRef {
        let full = format!("{}{pointer}", self.pointer);
        match self.line {
            Some(line) => SourceRef {
                file: Some(self.input.file.clone()),
                line: Some(line),
                pointer: (!full.is_empty()).then_some(full),
            },
            None => self.input.at(full),
        }
    }

    /// The run data (`IRunExecutionData`): inline, decoded from flatted text, or the
    /// execution itself when it is bare run data. Also the pointer prefix of `resultData`.
    fn run_data(&mut self) -> (Cow<'a, Value>, Option<String>) {
        let exec = self.exec;
        match exec.get("data") {
            Some(Value::String(text)) => {
                let trimmed = text.trim_start();
                let decoded = if trimmed.starts_with('[') {
                    unflatten(text)
                } else {
                    serde_json::from_str::<Value>(text)
                        .map(|v| (v, Vec::new()))
                        .map_err(|e| format!("`data` is a string but not JSON: {e}"))
                };
                match decoded {
                    Ok((value, warnings)) => {
                        self.warnings.extend(warnings);
                        // Pointers cannot reach inside the string; point at it.
                        (Cow::Owned(value), None)
                    }
                    Err(message) => {
                        self.warnings.push(message);
                        (Cow::Owned(Value::Null), None)
                    }
                }
            }
            Some(v @ Value::Object(_)) => (Cow::Borrowed(v), Some("/data".to_owned())),
            _ if exec.get("resultData").is_some() => (Cow::Borrowed(exec), Some(String::new())),
            _ => (Cow::Owned(Value::Null), None),
        }
    }

    fn build(mut self) -> crate::model::Trace {
        let exec = self.exec;
        let id = match exec.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => self.input.synth_id(&format!("n8n{}", self.pointer)),
        };
        let mut b = TraceBuilder::new(Format::N8n, id);
        let (data, data_pointer) = self.run_data();
        let result = data.get("resultData");
        let workflow = exec.get("workflowData");
        let nodes = workflow_nodes(workflow);
        self.describe(&mut b, &data, workflow);

        // The root span.
        let (status, error) = execution_status(exec, result);
        let root = b.push(Span {
            id: "workflow".to_owned(),
            kind: SpanKind::Step,
            name: workflow
                .and_then(|w| get_str(w, &["name"]))
                .unwrap_or("workflow")
                .to_owned(),
            start_ns: exec.get("startedAt").and_then(time_value),
            end_ns: exec.get("stoppedAt").and_then(time_value),
            status,
            error: error.map(Box::new),
            source: self.source(""),
            ..Span::default()
        });
        if let Some(node) = result.and_then(|r| get_str(r, &["error", "node", "name"])) {
            b.span_mut(root)
                .attributes
                .insert("error.node".to_owned(), Value::from(node));
        }
        b.trace_mut().status = status;

        let runs = match result.and_then(|r| r.get("runData")) {
            Some(Value::Object(run_data)) => self.collect_runs(run_data),
            Some(_) => {
                self.warnings
                    .push("`resultData.runData` is not an object; no node runs read".to_owned());
                Vec::new()
            }
            None => {
                self.warnings.push(
                    "the execution has no run data (fetched without includeData=true?)".to_owned(),
                );
                Vec::new()
            }
        };
        let run_pointer = |run: &RunRef<'_>| {
            data_pointer.as_ref().map(|p| {
                format!(
                    "{p}/resultData/runData/{}/{}",
                    escape_pointer(run.node),
                    run.index
                )
            })
        };
        let sources: Vec<SourceRef> = runs
            .iter()
            .map(|r| self.source(run_pointer(r).as_deref().unwrap_or("/data")))
            .collect();
        self.add_runs(&mut b, root, &runs, &nodes, &sources);
        // A chat trigger's output names the chat session.
        b.trace_mut().session_id = runs.iter().find_map(|r| {
            first_item_json(r.task.get("data"), "main")
                .and_then(|j| get_str(j, &["sessionId"]))
                .map(str::to_owned)
        });
        for w in std::mem::take(&mut self.warnings) {
            b.warn(w);
        }
        b.finish()
    }

    /// Trace-level fields: metadata, version, session.
    fn describe(&self, b: &mut TraceBuilder, data: &Value, workflow: Option<&Value>) {
        let exec = self.exec;
        let trace = b.trace_mut();
        for key in [
            "workflowId",
            "mode",
            "finished",
            "retryOf",
            "retrySuccessId",
            "waitTill",
            "createdAt",
            "workflowVersionId",
        ] {
            if let Some(v) = exec.get(key).filter(|v| !v.is_null()) {
                trace.metadata.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(Value::Object(custom)) = exec.get("customData")
            && !custom.is_empty()
        {
            trace
                .metadata
                .insert("customData".to_owned(), Value::Object(custom.clone()));
        }
        if let Some(name) = workflow.and_then(|w| get_str(w, &["name"])) {
            trace
                .metadata
                .insert("workflowName".to_owned(), Value::from(name));
        }
        if let Some(result) = data.get("resultData") {
            if let Some(last) = get_str(result, &["lastNodeExecuted"]) {
                trace
                    .metadata
                    .insert("lastNodeExecuted".to_owned(), Value::from(last));
            }
            if let Some(parent) = get(result, &["metadata", "parentExecution"]) {
                trace
                    .metadata
                    .insert("parentExecution".to_owned(), parent.clone());
            }
            if let Some(Value::Object(pinned)) = result.get("pinData")
                && !pinned.is_empty()
            {
                let names: Vec<Value> = pinned.keys().map(|k| Value::from(k.as_str())).collect();
                trace
                    .metadata
                    .insert("pinnedNodes".to_owned(), Value::Array(names));
            }
        }
        if let Some(version) = data.get("version").and_then(as_u64) {
            trace.format_version = Some(format!("execution-data/v{version}"));
        }
    }

    fn collect_runs<'r>(&mut self, run_data: &'r Map<String, Value>) -> Vec<RunRef<'r>> {
        let mut runs = Vec::new();
        let mut bad = 0usize;
        for (node, list) in run_data {
            let Some(list) = list.as_array() else {
                bad += 1;
                continue;
            };
            for (index, task) in list.iter().enumerate() {
                let Some(task) = task.as_object() else {
                    bad += 1;
                    continue;
                };
                let seq = runs.len();
                let exec_index = task
                    .get("executionIndex")
                    .and_then(as_u64)
                    .unwrap_or(u64::MAX);
                let start = task
                    .get("startTime")
                    .and_then(time_value)
                    .unwrap_or(i64::MAX);
                runs.push(RunRef {
                    node,
                    index,
                    task,
                    order: (exec_index, start, seq),
                });
            }
        }
        if bad > 0 {
            self.warnings.push(format!(
                "{bad} runData entries are not run objects; skipped"
            ));
        }
        runs.sort_by_key(|r| r.order);
        runs
    }

    fn add_runs(
        &mut self,
        b: &mut TraceBuilder,
        root: usize,
        runs: &[RunRef<'_>],
        nodes: &HashMap<String, NodeInfo>,
        sources: &[SourceRef],
    ) {
        // Who lists whom as a sub-run.
        let mut sub_parent: HashMap<String, String> = HashMap::new();
        for run in runs {
            if let Some(Value::Array(subs)) = run.task.get("metadata").and_then(|m| m.get("subRun"))
            {
                for sub in subs {
                    if let Some(node) = get_str(sub, &["node"]) {
                        let index = sub.get("runIndex").and_then(as_u64).unwrap_or(0) as usize;
                        sub_parent
                            .entry(run_id(node, index))
                            .or_insert_with(|| run.id());
                    }
                }
            }
        }
        let base_kind: HashMap<String, SpanKind> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id(), base_kind_of(r, nodes.get(r.node), i == 0)))
            .collect();
        // A run with a model among its sub-runs is an agent.
        let mut kinds = base_kind.clone();
        for (child, parent) in &sub_parent {
            if base_kind.get(child) == Some(&SpanKind::Llm)
                && let Some(k) = kinds.get_mut(parent)
            {
                *k = SpanKind::Agent;
            }
        }

        let mut built: HashMap<String, usize> = HashMap::new();
        let mut parent_of: Vec<(usize, Option<String>)> = Vec::new();
        for (run, source) in runs.iter().zip(sources) {
            let id = run.id();
            let kind = kinds.get(&id).copied().unwrap_or(SpanKind::Step);
            let info = nodes.get(run.node).cloned().unwrap_or_default();
            let span = run_span(run, kind, &info, source.clone());
            let ai_source = has_ai_connection(run.task)
                .then(|| first_source(run.task))
                .flatten();
            let parent = sub_parent.get(&id).cloned().or(ai_source);
            let idx = b.push(span);
            if parent.is_none() {
                // A main-flow node: contained in the workflow, fed by its sources.
                for target in sources_of(run.task) {
                    b.span_mut(idx).links.push(Link {
                        kind: LinkKind::DataFlow,
                        target,
                    });
                }
            }
            built.insert(id, idx);
            parent_of.push((idx, parent));
        }
        for &(idx, ref parent) in &parent_of {
            if let Some(&p) = parent.as_ref().and_then(|p| built.get(p)) {
                b.set_parent(idx, p);
                // A failure under an agent that went on was handled by the agent.
                let parent_ok = b.span(p).status == Status::Ok;
                if parent_ok
                    && b.span(p).kind == SpanKind::Agent
                    && let Some(e) = b.span_mut(idx).error.as_mut()
                {
                    e.handled = true;
                }
            } else {
                if let Some(p) = parent {
                    self.warnings.push(format!(
                        "run `{}` names parent run `{p}`, which is not in runData",
                        b.span(idx).id
                    ));
                }
                b.set_parent(idx, root);
            }
        }
        for run in runs {
            let Some(&idx) = built.get(&run.id()) else {
                continue;
            };
            if b.span(idx).kind == SpanKind::Agent {
                agent_steps(b, idx, run, &sub_parent, &built);
            }
            delegation(b, idx, run);
        }
    }
}

fn workflow_nodes(workflow: Option<&Value>) -> HashMap<String, NodeInfo> {
    let mut out = HashMap::new();
    let Some(Value::Array(nodes)) = workflow.and_then(|w| w.get("nodes")) else {
        return out;
    };
    for node in nodes {
        let Some(name) = get_str(node, &["name"]) else {
            continue;
        };
        out.insert(
            name.to_owned(),
            NodeInfo {
                node_type: get_str(node, &["type"]).map(str::to_owned),
                continue_on_fail: node.get("continueOnFail").and_then(Value::as_bool) == Some(true)
                    || get_str(node, &["onError"]).is_some_and(|m| m.starts_with("continue")),
            },
        );
    }
    out
}

fn execution_status(exec: &Value, result: Option<&Value>) -> (Status, Option<ErrorInfo>) {
    let error = result
        .and_then(|r| r.get("error"))
        .filter(|e| !e.is_null())
        .map(|e| node_error(e, false));
    let status = exec.get("status").and_then(Value::as_str);
    match status {
        Some("success") => (Status::Ok, error),
        Some("error" | "crashed" | "failed") => (
            Status::Error,
            error.or_else(|| {
                Some(ErrorInfo {
                    kind: status.map(str::to_owned),
                    message: format!("execution {}", status.unwrap_or("failed")),
                    ..ErrorInfo::default()
                })
            }),
        ),
        Some("canceled" | "cancelled") => (
            Status::Error,
            Some(error.map_or_else(
                || ErrorInfo {
                    kind: Some("canceled".to_owned()),
                    message: "execution canceled".to_owned(),
                    ..ErrorInfo::default()
                },
                |mut e| {
                    e.kind = Some("canceled".to_owned());
                    e
                },
            )),
        ),
        Some(_) => (Status::Unset, error),
        None => match (error, exec.get("finished").and_then(Value::as_bool)) {
            (Some(e), _) => (Status::Error, Some(e)),
            (None, Some(true)) => (Status::Ok, None),
            (None, _) => (Status::Unset, None),
        },
    }
}

/// An n8n error object (`NodeOperationError`, `NodeApiError`, ...) or a bare string.
fn node_error(e: &Value, handled: bool) -> ErrorInfo {
    let message = get_str(e, &["message"])
        .map(str::to_owned)
        .or_else(|| e.as_str().map(str::to_owned))
        .or_else(|| text_of(e))
        .unwrap_or_else(|| "error".to_owned());
    ErrorInfo {
        kind: get_str(e, &["name"]).map(str::to_owned),
        message: truncate(&message, 1000),
        stack: get_str(e, &["stack"]).map(str::to_owned),
        handled,
    }
}

/// The `ai_*` connection types a run reads or writes.
fn ai_connections(task: &Map<String, Value>) -> Vec<&str> {
    ["data", "inputOverride"]
        .iter()
        .filter_map(|k| task.get(*k).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .map(String::as_str)
        .filter(|k| k.starts_with("ai_"))
        .collect()
}

fn has_ai_connection(task: &Map<String, Value>) -> bool {
    !ai_connections(task).is_empty()
}

/// `source[0]` as a run id (`previousNode#previousNodeRun`).
fn first_source(task: &Map<String, Value>) -> Option<String> {
    sources_of(task).into_iter().next()
}

fn sources_of(task: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(sources)) = task.get("source") else {
        return Vec::new();
    };
    sources
        .iter()
        .filter_map(|s| {
            let node = get_str(s, &["previousNode"])?;
            let index = s.get("previousNodeRun").and_then(as_u64).unwrap_or(0) as usize;
            Some(run_id(node, index))
        })
        .collect()
}

/// The kind of a run from its node type, else its connection types, else its data.
fn base_kind_of(run: &RunRef<'_>, info: Option<&NodeInfo>, first: bool) -> SpanKind {
    let node_type = info.and_then(|i| i.node_type.as_deref()).or_else(|| {
        run.task
            .get("error")
            .and_then(|e| get_str(e, &["node", "type"]))
    });
    if let Some(kind) = node_type.and_then(kind_of_type) {
        return kind;
    }
    let connections = ai_connections(run.task);
    for (conn, kind) in [
        ("ai_agent", SpanKind::Agent),
        ("ai_languageModel", SpanKind::Llm),
        ("ai_tool", SpanKind::Tool),
        ("ai_memory", SpanKind::System),
        ("ai_retriever", SpanKind::Retrieval),
        ("ai_vectorStore", SpanKind::Retrieval),
        ("ai_embedding", SpanKind::Embedding),
    ] {
        if connections.contains(&conn) {
            return kind;
        }
    }
    let main = first_item_json(run.task.get("data"), "main");
    if main.is_some_and(|j| j.get("intermediateSteps").is_some()) {
        return SpanKind::Agent;
    }
    let no_source = run
        .task
        .get("source")
        .is_none_or(|s| s.is_null() || s.as_array().is_some_and(Vec::is_empty));
    if first && no_source && main.is_some_and(|j| j.get("chatInput").is_some()) {
        return SpanKind::Human;
    }
    SpanKind::Step
}

/// Kinds by node type, e.g. `@n8n/n8n-nodes-langchain.lmChatOpenAi`.
fn kind_of_type(node_type: &str) -> Option<SpanKind> {
    let short = node_type.rsplit('.').next().unwrap_or(node_type);
    let lower = short.to_ascii_lowercase();
    if lower.starts_with("agent") {
        Some(SpanKind::Agent)
    } else if lower.starts_with("lm") {
        Some(SpanKind::Llm)
    } else if lower.starts_with("tool") || lower.ends_with("tool") || lower == "mcpclienttool" {
        Some(SpanKind::Tool)
    } else if lower.starts_with("memory") {
        Some(SpanKind::System)
    } else if lower.starts_with("vectorstore") || lower.starts_with("retriever") {
        Some(SpanKind::Retrieval)
    } else if lower.starts_with("embeddings") {
        Some(SpanKind::Embedding)
    } else if lower == "chattrigger" {
        Some(SpanKind::Human)
    } else {
        None
    }
}

/// `@n8n/n8n-nodes-langchain.lmChatAnthropic` → `anthropic`.
fn provider_of_type(node_type: &str) -> Option<String> {
    let short = node_type.rsplit('.').next()?;
    let rest = short
        .strip_prefix("lmChat")
        .or_else(|| short.strip_prefix("lm"))?;
    let lower = rest.to_ascii_lowercase();
    let provider = match lower.as_str() {
        "azureopenai" => "azure".to_owned(),
        "googlegemini" | "googlevertex" | "googlepalm" => "google".to_owned(),
        "mistralcloud" => "mistral".to_owned(),
        "awsbedrock" => "aws-bedrock".to_owned(),
        _ => lower,
    };
    (!provider.is_empty()).then_some(provider)
}

/// Items of one connection: `data[conn][output][item].json`, per output branch.
fn branches<'v>(data: Option<&'v Value>, conn: &str) -> Vec<Vec<&'v Value>> {
    let Some(Value::Array(outputs)) = data.and_then(|d| d.get(conn)) else {
        return Vec::new();
    };
    outputs
        .iter()
        .map(|items| {
            items
                .as_array()
                .map(|items| items.iter().filter_map(|i| i.get("json")).collect())
                .unwrap_or_default()
        })
        .collect()
}

fn first_item_json<'v>(data: Option<&'v Value>, conn: &str) -> Option<&'v Value> {
    branches(data, conn).into_iter().flatten().next()
}

/// A payload of items: one item as itself, several as a list; several output branches (an
/// IF node) as a list of lists.
fn items_payload(items: &[Vec<&Value>]) -> Option<Payload> {
    let non_empty: Vec<&Vec<&Value>> = items.iter().filter(|b| !b.is_empty()).collect();
    let json = match (items.len(), non_empty.as_slice()) {
        (_, []) => return None,
        (1, [only]) if only.len() == 1 => only.first().map(|v| (*v).clone())?,
        (1, [only]) => Value::Array(only.iter().map(|v| (*v).clone()).collect()),
        _ => Value::Array(
            items
                .iter()
                .map(|b| Value::Array(b.iter().map(|v| (*v).clone()).collect()))
                .collect(),
        ),
    };
    let text = ["output", "text", "response", "chatInput", "message"]
        .iter()
        .find_map(|k| json.get(*k).and_then(Value::as_str))
        .map_or_else(|| json.to_string(), str::to_owned);
    Some(Payload {
        text,
        json: Some(json),
        mime: None,
    })
}

fn run_span(run: &RunRef<'_>, kind: SpanKind, info: &NodeInfo, source: SourceRef) -> Span {
    let task = run.task;
    let start = task.get("startTime").and_then(time_value);
    let duration_ms = task.get("executionTime").and_then(as_u64);
    let end = match (start, duration_ms) {
        (Some(s), Some(d)) => {
            s.checked_add(i64::try_from(d).unwrap_or(0).saturating_mul(1_000_000))
        }
        _ => None,
    };
    let status_name = task.get("executionStatus").and_then(Value::as_str);
    let error = task
        .get("error")
        .filter(|e| !e.is_null())
        .map(|e| node_error(e, false));
    let data = task.get("data");
    let conns: Vec<String> = data
        .and_then(Value::as_object)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    let output_conn = conns
        .iter()
        .find(|c| c.starts_with("ai_"))
        .cloned()
        .unwrap_or_else(|| "main".to_owned());
    let output_items = branches(data, &output_conn);
    let mut span = Span {
        id: run.id(),
        kind,
        name: run.node.to_owned(),
        step: task
            .get("executionIndex")
            .and_then(as_u64)
            .and_then(|i| u32::try_from(i).ok()),
        start_ns: start,
        end_ns: end,
        status: match (status_name, &error) {
            (_, Some(_)) | (Some("error" | "crashed" | "canceled"), _) => Status::Error,
            (Some("success") | None, None) => Status::Ok,
            _ => Status::Unset,
        },
        error: (error.clone().or_else(|| {
            matches!(status_name, Some("error" | "crashed" | "canceled")).then(|| ErrorInfo {
                kind: status_name.map(str::to_owned),
                message: format!("node {}", status_name.unwrap_or("failed")),
                ..ErrorInfo::default()
            })
        }))
        .map(Box::new),
        output: (items_payload(&output_items)).map(Box::new),
        source,
        ..Span::default()
    };
    if let Some(t) = &info.node_type {
        span.attributes
            .insert("node.type".to_owned(), Value::from(t.as_str()));
    }
    if info.continue_on_fail {
        span.attributes
            .insert("node.continueOnFail".to_owned(), Value::Bool(true));
    }
    if let Some(e) = task.get("error") {
        for key in ["description", "httpCode"] {
            if let Some(v) = e.get(key).filter(|v| !v.is_null()) {
                span.attributes.insert(format!("error.{key}"), v.clone());
            }
        }
    }
    if let Some(hints) = task
        .get("hints")
        .filter(|h| h.as_array().is_some_and(|a| !a.is_empty()))
    {
        span.attributes.insert("hints".to_owned(), hints.clone());
    }
    // Continue-on-fail: the run succeeds and the failure rides along in an item.
    if span.status != Status::Error
        && let Some(item_error) = output_items
            .iter()
            .flatten()
            .find_map(|j| j.get("error").filter(|e| !e.is_null()))
    {
        span.status = Status::Error;
        span.error = Some(Box::new(node_error(item_error, true)));
    }
    let input_conn = task
        .get("inputOverride")
        .and_then(Value::as_object)
        .and_then(|o| o.keys().next().cloned());
    let input_json = input_conn
        .as_deref()
        .and_then(|c| first_item_json(task.get("inputOverride"), c));
    if let Some(j) = input_json {
        span.input = Some(Box::new(Payload::from_json(j.clone())));
    }
    if kind == SpanKind::Human
        && let Some(chat) = first_item_json(data, "main").and_then(|j| get_str(j, &["chatInput"]))
    {
        span.input = Some(Box::new(Payload::text(chat)));
    }
    match kind {
        SpanKind::Llm => fill_llm(
            &mut span,
            info,
            input_json,
            output_items.first().map(Vec::as_slice),
        ),
        SpanKind::Tool => {
            span.tool = Some(Box::new(ToolCall {
                name: run.node.to_owned(),
                call_id: None,
                arguments: input_json.cloned().unwrap_or(Value::Null),
                result: span.output.as_ref().and_then(|p| p.json.clone()),
                is_error: span.status == Status::Error,
            }));
        }
        _ => {}
    }
    span
}

fn fill_llm(span: &mut Span, info: &NodeInfo, input: Option<&Value>, outputs: Option<&[&Value]>) {
    let first_out = outputs.and_then(|o| o.first()).copied();
    let generation = first_out
        .and_then(|o| get(o, &["response", "generations"]))
        .and_then(Value::as_array)
        .and_then(|g| g.first())
        .and_then(Value::as_array)
        .and_then(|g| g.first());
    let generation_info =
        generation.and_then(|g| g.get("generationInfo").or_else(|| g.get("generation_info")));
    let options = input.and_then(|i| i.get("options"));
    let mut params = BTreeMap::new();
    if let Some(Value::Object(opts)) = options {
        for (k, v) in opts {
            let lower = k.to_ascii_lowercase();
            if lower.contains("key")
                || lower.contains("secret")
                || lower.contains("password")
                || lower.starts_with("model")
            {
                continue;
            }
            params.insert(k.clone(), v.clone());
        }
    }
    let mut output_messages = Vec::new();
    if let Some(message) = generation
        .and_then(|g| g.get("message"))
        .and_then(any_message)
    {
        output_messages.push(message);
    } else if let Some(text) = generation.and_then(|g| get_str(g, &["text"])) {
        output_messages.push(Message::text(Role::Assistant, text));
    }
    if let Some(text) = generation
        .and_then(|g| g.get("text"))
        .and_then(Value::as_str)
    {
        span.output = Some(Box::new(Payload::text(text)));
    }
    span.llm = Some(Box::new(LlmCall {
        provider: info.node_type.as_deref().and_then(provider_of_type),
        request_model: options
            .and_then(|o| {
                get_str(o, &["model"])
                    .or_else(|| get_str(o, &["modelName"]))
                    .or_else(|| get_str(o, &["model_name"]))
            })
            .map(str::to_owned),
        response_model: generation_info
            .and_then(|g| get_str(g, &["model_name"]).or_else(|| get_str(g, &["model"])))
            .map(str::to_owned),
        input_messages: input
            .and_then(|i| i.get("messages"))
            .and_then(Value::as_array)
            .map(|msgs| msgs.iter().flat_map(prompt_messages).collect())
            .unwrap_or_default(),
        output_messages,
        finish_reason: generation_info
            .and_then(|g| get_str(g, &["finish_reason"]).or_else(|| get_str(g, &["stop_reason"])))
            .map(str::to_owned),
        params,
    }));
    let mut usage = Usage::default();
    for out in outputs.unwrap_or_default() {
        let (u, estimated) = match (out.get("tokenUsage"), out.get("tokenUsageEstimate")) {
            (Some(u), _) => (u, false),
            (None, Some(u)) => (u, true),
            (None, None) => continue,
        };
        usage.add(&Usage {
            input: u.get("promptTokens").and_then(as_u64),
            output: u.get("completionTokens").and_then(as_u64),
            total: u.get("totalTokens").and_then(as_u64),
            estimated,
            ..Usage::default()
        });
    }
    if !usage.is_empty() {
        span.usage = Some(Box::new(usage));
    }
}

/// n8n logs chat prompts pre-rendered: `System: ...\nHuman: ...\nAI: ...\nTool: ...`. Splits
/// them back into messages on those prefixes; text before any prefix is a user message.
fn prompt_messages(v: &Value) -> Vec<Message> {
    const PREFIXES: [(&str, Role); 6] = [
        ("System: ", Role::System),
        ("Human: ", Role::User),
        ("AI: ", Role::Assistant),
        ("Tool: ", Role::Tool),
        ("Assistant: ", Role::Assistant),
        ("User: ", Role::User),
    ];
    let Some(text) = v.as_str() else {
        return any_message(v).into_iter().collect();
    };
    let mut out: Vec<(Role, String)> = Vec::new();
    for line in text.split('\n') {
        let bare = line.trim_end();
        let found = PREFIXES.iter().find_map(|(p, role)| {
            bare.strip_prefix(p)
                .or_else(|| bare.strip_prefix(p.trim_end()).filter(|r| r.is_empty()))
                .map(|rest| (*role, rest))
        });
        match (found, out.last_mut()) {
            (Some((role, rest)), _) => out.push((role, rest.to_owned())),
            (None, Some((_, body))) => {
                body.push('\n');
                body.push_str(line);
            }
            (None, None) => out.push((Role::User, line.to_owned())),
        }
    }
    out.into_iter()
        .map(|(role, body)| Message::text(role, body.trim_end().to_owned()))
        .collect()
}

/// The tool name an agent's model sees for a node: punctuation and spaces become `_`.
fn tool_name_of(node: &str) -> String {
    node.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Matches an agent run's `intermediateSteps` to its tool sub-runs; unmatched steps become
/// Tool spans of their own.
fn agent_steps(
    b: &mut TraceBuilder,
    agent: usize,
    run: &RunRef<'_>,
    sub_parent: &HashMap<String, String>,
    built: &HashMap<String, usize>,
) {
    let agent_id = run.id();
    let mut tools_by_name: HashMap<String, VecDeque<usize>> = HashMap::new();
    let mut children: Vec<(usize, String)> = sub_parent
        .iter()
        .filter(|(_, p)| **p == agent_id)
        .filter_map(|(child, _)| built.get(child).map(|&i| (i, child.clone())))
        .collect();
    children.sort_by_key(|(i, _)| b.span(*i).seq);
    for (idx, _) in children {
        let span = b.span(idx);
        if matches!(span.kind, SpanKind::Tool | SpanKind::Agent) {
            tools_by_name
                .entry(tool_name_of(&span.name))
                .or_default()
                .push_back(idx);
        }
    }
    let steps: Vec<Value> = branches(run.task.get("data"), "main")
        .into_iter()
        .flatten()
        .filter_map(|j| j.get("intermediateSteps").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    let agent_name = b.span(agent).name.clone();
    for (k, step) in steps.iter().enumerate() {
        let action = step.get("action").unwrap_or(&Value::Null);
        let tool = get_str(action, &["tool"]).unwrap_or("tool");
        let call_id = get_str(action, &["toolCallId"]).map(str::to_owned);
        let args = action.get("toolInput").cloned().unwrap_or(Value::Null);
        let observation = step.get("observation").cloned().unwrap_or(Value::Null);
        let observed = text_of(&observation).unwrap_or_default();
        let failed = looks_like_error(&observed);
        let matched = tools_by_name
            .get_mut(&tool_name_of(tool))
            .and_then(VecDeque::pop_front);
        if let Some(idx) = matched {
            let span = b.span_mut(idx);
            span.attributes
                .insert("agent.observation".to_owned(), observation.clone());
            if failed && span.status != Status::Error {
                span.status = Status::Error;
                span.error = Some(Box::new(ErrorInfo {
                    message: truncate(observed.lines().next().unwrap_or_default(), 500),
                    handled: true,
                    ..ErrorInfo::default()
                }));
            }
            let is_error = span.status == Status::Error;
            let tool_call = span.tool.get_or_insert_with(|| {
                Box::new(ToolCall {
                    name: tool.to_owned(),
                    ..ToolCall::default()
                })
            });
            tool_call.call_id = call_id;
            tool_call.is_error = is_error;
            if tool_call.arguments.is_null() {
                tool_call.arguments = args;
            }
            if tool_call.result.is_none() {
                tool_call.result = Some(observation);
            }
            continue;
        }
        let span = Span {
            id: format!("{agent_id}/step{k}"),
            kind: SpanKind::Tool,
            name: tool.to_owned(),
            agent: Some(agent_name.clone()),
            status: if failed { Status::Error } else { Status::Ok },
            error: (failed.then(|| ErrorInfo {
                message: truncate(observed.lines().next().unwrap_or_default(), 500),
                handled: true,
                ..ErrorInfo::default()
            }))
            .map(Box::new),
            input: Some(Box::new(Payload::from_json(args.clone()))),
            output: Some(Box::new(Payload::text(observed))),
            tool: Some(Box::new(ToolCall {
                name: tool.to_owned(),
                call_id,
                arguments: args,
                result: Some(observation),
                is_error: failed,
            })),
            source: b.span(agent).source.clone(),
            ..Span::default()
        };
        b.push_child(agent, span);
    }
}

/// Handoffs for an agent used as another agent's tool, and for `subExecution` calls.
fn delegation(b: &mut TraceBuilder, idx: usize, run: &RunRef<'_>) {
    let parent = b.parent_of(idx);
    let caller = parent
        .filter(|&p| b.span(p).kind == SpanKind::Agent)
        .map(|p| b.span(p).name.clone());
    let span = b.span(idx);
    let at = span.start_ns;
    let source = span.source.clone();
    if span.kind == SpanKind::Agent
        && let Some(from) = caller.clone()
    {
        let to = span.name.clone();
        let handoff = Span {
            id: format!("{}/handoff", span.id),
            kind: SpanKind::Handoff,
            name: format!("delegate to {to}"),
            agent: Some(from.clone()),
            start_ns: at,
            end_ns: at,
            status: Status::Ok,
            handoff: Some(Box::new(Handoff {
                from: Some(from),
                to,
                mode: HandoffMode::Delegate,
            })),
            source: source.clone(),
            ..Span::default()
        };
        match parent {
            Some(p) => b.push_child(p, handoff),
            None => b.push(handoff),
        };
    }
    let Some(sub) = run.task.get("metadata").and_then(|m| m.get("subExecution")) else {
        return;
    };
    let workflow = get_str(sub, &["workflowId"]).unwrap_or("sub-workflow");
    if let Some(exec) = sub
        .get("executionId")
        .and_then(|e| text_of(e).filter(|t| !t.is_empty()))
    {
        b.span_mut(idx).links.push(Link {
            kind: LinkKind::SubTrajectory,
            target: exec,
        });
    }
    let id = format!("{}/sub-execution", b.span(idx).id);
    let from = caller.or_else(|| b.span(idx).agent.clone());
    let handoff = Span {
        id,
        kind: SpanKind::Handoff,
        name: format!("execute workflow {workflow}"),
        agent: from.clone(),
        start_ns: at,
        end_ns: at,
        status: Status::Ok,
        handoff: Some(Box::new(Handoff {
            from,
            to: format!("workflow:{workflow}"),
            mode: HandoffMode::Delegate,
        })),
        source,
        ..Span::default()
    };
    match parent {
        Some(p) => b.push_child(p, handoff),
        None => b.push(handoff),
    };
}

/// RFC 6901 escaping for a key inside a JSON Pointer.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

// ---- flatted ---------------------------------------------------------------------------------

/// Expansion limits for flatted input: a hostile file can reference one object from
/// everywhere (exponential expansion) or nest references deeply.
const FLATTED_MAX_NODES: usize = 2_000_000;
const FLATTED_MAX_DEPTH: usize = 200;

/// Decodes the flatted encoding n8n's internal API uses for run data: a JSON array whose
/// first entry is the root; inside objects and arrays every string is the index (as decimal
/// text) of another entry, and string entries at the top level are the literal strings.
/// References that form a cycle become `null`. Returns the value and warnings.
fn unflatten(text: &str) -> Result<(Value, Vec<String>), String> {
    unflatten_bounded(text, FLATTED_MAX_NODES)
}

fn unflatten_bounded(text: &str, max_nodes: usize) -> Result<(Value, Vec<String>), String> {
    let entries = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(entries)) if !entries.is_empty() => entries,
        Ok(_) => return Err("the flatted `data` string is not a non-empty JSON array".to_owned()),
        Err(e) => return Err(format!("the flatted `data` string is not valid JSON: {e}")),
    };
    let mut decoder = Unflatten {
        entries: &entries,
        on_path: vec![false; entries.len()],
        budget: max_nodes,
        cycles: 0,
        bad_refs: 0,
        too_deep: 0,
        exhausted: false,
    };
    let root = decoder.entry(0, 0);
    let mut warnings = Vec::new();
    if decoder.cycles > 0 {
        warnings.push(format!(
            "flatted data: {} circular reference(s) replaced with null",
            decoder.cycles
        ));
    }
    if decoder.bad_refs > 0 {
        warnings.push(format!(
            "flatted data: {} reference(s) to missing entries",
            decoder.bad_refs
        ));
    }
    if decoder.too_deep > 0 {
        warnings.push(format!(
            "flatted data: nesting deeper than {FLATTED_MAX_DEPTH} levels cut {} time(s)",
            decoder.too_deep
        ));
    }
    if decoder.exhausted {
        warnings.push(format!(
            "flatted data: expansion stopped after {max_nodes} values"
        ));
    }
    Ok((root, warnings))
}

struct Unflatten<'e> {
    entries: &'e [Value],
    on_path: Vec<bool>,
    budget: usize,
    cycles: usize,
    bad_refs: usize,
    too_deep: usize,
    exhausted: bool,
}

impl Unflatten<'_> {
    fn entry(&mut self, i: usize, depth: usize) -> Value {
        let entries = self.entries;
        let Some(v) = entries.get(i) else {
            self.bad_refs += 1;
            return Value::Null;
        };
        if !(v.is_object() || v.is_array()) {
            return v.clone();
        }
        if self.on_path[i] {
            self.cycles += 1;
            return Value::Null;
        }
        if depth > FLATTED_MAX_DEPTH {
            self.too_deep += 1;
            return Value::Null;
        }
        self.on_path[i] = true;
        let out = self.revive(v, depth);
        self.on_path[i] = false;
        out
    }

    fn revive(&mut self, v: &Value, depth: usize) -> Value {
        if self.budget == 0 {
            self.exhausted = true;
            return Value::Null;
        }
        self.budget -= 1;
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, child)| (k.clone(), self.child(child, depth)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|child| self.child(child, depth)).collect())
            }
            other => other.clone(),
        }
    }

    fn child(&mut self, child: &Value, depth: usize) -> Value {
        match child {
            Value::String(s) => {
                if let Ok(i) = s.parse::<usize>() {
                    self.entry(i, depth + 1)
                } else {
                    self.bad_refs += 1;
                    Value::String(s.clone())
                }
            }
            Value::Object(_) | Value::Array(_) if depth < FLATTED_MAX_DEPTH => {
                self.revive(child, depth + 1)
            }
            Value::Object(_) | Value::Array(_) => {
                self.too_deep += 1;
                Value::Null
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatted_round_trip_and_cycles() {
        let text = r#"[{"a":"1","b":"2","n":3},"hello",["1","3"],{"self":"3","up":"0"}]"#;
        let (v, warnings) = unflatten(text).unwrap();
        assert_eq!(v["a"], "hello");
        assert_eq!(v["b"][0], "hello");
        assert_eq!(v["b"][1]["self"], Value::Null, "a self reference is cut");
        assert_eq!(
            v["b"][1]["up"],
            Value::Null,
            "a reference back to the root is cut"
        );
        assert_eq!(v["n"], 3);
        assert!(warnings.iter().any(|w| w.contains("circular")));
        let (_, warnings) = unflatten(r#"[{"a":"9","b":"x"}]"#).unwrap();
        assert!(warnings.iter().any(|w| w.contains("missing")));
        assert!(unflatten("[]").is_err());
        assert!(unflatten("{}").is_err());
        assert!(unflatten("[").is_err());
    }

    #[test]
    fn flatted_expansion_is_bounded() {
        // Each entry references the next one twice: 2^40 values if expanded naively.
        let mut entries: Vec<String> = (0..40)
            .map(|i| format!(r#"["{}","{}"]"#, i + 1, i + 1))
            .collect();
        entries.push("1".to_owned());
        let text = format!("[{}]", entries.join(","));
        let (_, warnings) = unflatten_bounded(&text, 10_000).unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("expansion stopped")),
            "{warnings:?}"
        );
    }

    #[test]
    fn rendered_prompts_split_into_messages() {
        let msgs = prompt_messages(&json!(
            "System: be brief\nHuman: hi\nthere\nAI: \nTool: done"
        ));
        let roles: Vec<Role> = msgs.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::Tool]
        );
        assert_eq!(msgs[1].joined_text(), "hi\nthere");
        assert_eq!(prompt_messages(&json!("just text"))[0].role, Role::User);
        assert!(prompt_messages(&json!(5)).is_empty());
    }

    #[test]
    fn names_and_types() {
        assert_eq!(tool_name_of("Stats API"), "stats_api");
        assert_eq!(tool_name_of("Stats_API"), "stats_api");
        let t = "@n8n/n8n-nodes-langchain.lmChatAnthropic";
        assert_eq!(kind_of_type(t), Some(SpanKind::Llm));
        assert_eq!(provider_of_type(t).as_deref(), Some("anthropic"));
        assert_eq!(
            provider_of_type("@n8n/n8n-nodes-langchain.lmChatAzureOpenAi").as_deref(),
            Some("azure")
        );
        assert_eq!(
            kind_of_type("n8n-nodes-base.httpRequestTool"),
            Some(SpanKind::Tool)
        );
        assert_eq!(
            kind_of_type("@n8n/n8n-nodes-langchain.agentTool"),
            Some(SpanKind::Agent)
        );
        assert_eq!(kind_of_type("n8n-nodes-base.slack"), None);
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::model::{Format, HandoffMode, LinkKind, Role, SpanKind, Status};
    use crate::testing::{fixture, inline};

    #[test]
    fn public_api_execution_with_agents() {
        let (summary, traces) = fixture("n8n/support-orchestrator-execution.json");
        assert_eq!(summary.format, Format::N8n);
        let t = &traces[0].trace;
        assert_eq!(t.id, "40217");
        assert_eq!(t.format_version.as_deref(), Some("execution-data/v1"));
        assert_eq!(t.status, Status::Error);
        assert_eq!(
            t.session_id.as_deref(),
            Some("c0ffee00-1234-4cde-9abc-000000008821")
        );
        assert_eq!(t.metadata["workflowId"], "R7fQk2LmZp0Xc9Sd");
        assert!(t.task.as_deref().unwrap().starts_with("Order #88213"));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let agents: Vec<&str> = t.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(agents, ["Orchestrator", "Refund Specialist"]);

        let root = &t.spans[0];
        assert_eq!(root.id, "workflow");
        assert_eq!(
            root.error.as_ref().unwrap().kind.as_deref(),
            Some("NodeOperationError")
        );
        assert_eq!(root.attributes["error.node"], "Send Confirmation Email");

        let failed = t.spans.iter().find(|s| s.id == "Order Lookup#0").unwrap();
        assert_eq!(failed.kind, SpanKind::Tool);
        assert_eq!(failed.status, Status::Error);
        let err = failed.error.as_ref().unwrap();
        assert_eq!(err.kind.as_deref(), Some("NodeApiError"));
        assert!(err.handled, "the orchestrator went on");
        assert_eq!(failed.attributes["error.httpCode"], "503");
        let call = failed.tool.as_ref().unwrap();
        assert_eq!(call.name, "Order Lookup");
        assert_eq!(call.call_id.as_deref(), Some("toolu_01Lk"));
        assert!(
            failed.attributes["agent.observation"]
                .as_str()
                .unwrap()
                .starts_with("There was an error")
        );
        assert_eq!(failed.agent.as_deref(), Some("Orchestrator"));
        assert_eq!(failed.step, Some(4));

        // Sub-runs nest under the run that lists them, including the sub-agent's own.
        let refund_api = t.spans.iter().find(|s| s.id == "Refund API#0").unwrap();
        assert_eq!(
            t.spans[refund_api.parent.unwrap() as usize].id,
            "Refund Specialist#0"
        );
        assert_eq!(refund_api.agent.as_deref(), Some("Refund Specialist"));
        let memory = t.spans.iter().find(|s| s.id == "Chat Memory#1").unwrap();
        assert_eq!(memory.kind, SpanKind::System);

        assert_eq!(t.usage.input, Some(5334));
        assert_eq!(t.usage.output, Some(229));
        assert!(t.usage.estimated, "one model run only had an estimate");

        let llm = t
            .spans
            .iter()
            .find(|s| s.id == "Claude Chat Model#1")
            .unwrap();
        let call = llm.llm.as_ref().unwrap();
        assert_eq!(
            call.request_model.as_deref(),
            Some("claude-sonnet-4-20250514")
        );
        assert_eq!(call.finish_reason.as_deref(), Some("tool_use"));
        let roles: Vec<Role> = call.input_messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::Tool]
        );
        assert!(!call.params.contains_key("anthropic_api_key"));
        assert_eq!(call.params["temperature"], 0.1);

        let handoffs: Vec<_> = t.spans_of(SpanKind::Handoff).collect();
        assert_eq!(handoffs.len(), 1);
        let h = handoffs[0].handoff.as_ref().unwrap();
        assert_eq!(
            (h.from.as_deref(), h.to.as_str()),
            (Some("Orchestrator"), "Refund Specialist")
        );
        assert_eq!(h.mode, HandoffMode::Delegate);

        let logged = t.spans.iter().find(|s| s.id == "Log Ticket#0").unwrap();
        assert_eq!(logged.status, Status::Error);
        assert!(
            logged.error.as_ref().unwrap().handled,
            "continue-on-fail item error"
        );
        let email = t
            .spans
            .iter()
            .find(|s| s.id == "Send Confirmation Email#0")
            .unwrap();
        assert!(!email.error.as_ref().unwrap().handled);
        assert_eq!(email.parent, Some(0));
        assert!(
            email
                .links
                .iter()
                .any(|l| l.kind == LinkKind::DataFlow && l.target == "Log Ticket#0")
        );
        assert_eq!(
            email.source.pointer.as_deref(),
            Some("/data/resultData/runData/Send Confirmation Email/0")
        );
    }

    #[test]
    fn internal_api_flatted_execution() {
        let (summary, traces) = fixture("n8n/feed-digest-flatted.json");
        assert_eq!(summary.format, Format::N8n);
        let t = &traces[0].trace;
        assert_eq!(t.id, "40288");
        assert_eq!(t.status, Status::Ok);
        assert_eq!(t.spans[0].name, "Morning feed digest");
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.spans.len(), 7);
        let mirror = t.spans.iter().find(|s| s.name == "Fetch Mirror").unwrap();
        assert_eq!(mirror.status, Status::Error);
        assert!(mirror.error.as_ref().unwrap().handled);
        assert_eq!(mirror.attributes["node.continueOnFail"], true);
        let agent = t.spans.iter().find(|s| s.name == "Summarize").unwrap();
        assert_eq!(agent.kind, SpanKind::Agent, "from the node type");
        let llm = t.spans.iter().find(|s| s.kind == SpanKind::Llm).unwrap();
        assert_eq!(
            llm.llm.as_ref().unwrap().provider.as_deref(),
            Some("openai")
        );
        assert_eq!(t.usage.input, Some(96));
        let branch = t.spans.iter().find(|s| s.name == "Has Posts?").unwrap();
        assert_eq!(
            branch.output.as_ref().unwrap().json,
            Some(serde_json::json!([[{"count": 3}], []]))
        );
        assert_eq!(branch.source.pointer.as_deref(), Some("/data/data"));
        assert!(
            t.final_output
                .as_deref()
                .unwrap()
                .starts_with("Three posts")
        );
    }

    #[test]
    fn execution_lists_give_one_trace_each() {
        let text = r#"{"data": [
            {"id": "1", "status": "success", "startedAt": "2026-01-01T00:00:00Z", "workflowId": "w", "data": {"resultData": {"runData": {"A": [{"startTime": 1767225600000, "executionTime": 5, "executionStatus": "success", "data": {"main": [[{"json": {"x": 1}}]]}}]}}}},
            {"id": 2, "status": "canceled", "startedAt": "2026-01-01T00:00:00Z", "workflowId": "w"},
            "junk"
        ], "nextCursor": null}"#;
        let (summary, traces) = inline("list.json", text);
        assert_eq!(summary.format, Format::N8n);
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].trace.status, Status::Ok);
        assert_eq!(traces[1].trace.id, "2");
        assert_eq!(traces[1].trace.status, Status::Error);
        assert_eq!(
            traces[1].trace.spans[0]
                .error
                .as_ref()
                .unwrap()
                .kind
                .as_deref(),
            Some("canceled")
        );
        assert!(
            traces[1]
                .trace
                .warnings
                .iter()
                .any(|w| w.contains("includeData"))
        );
        assert!(
            traces[0]
                .trace
                .warnings
                .iter()
                .any(|w| w.contains("data[2]"))
        );
    }

    #[test]
    fn bare_run_data_and_steps_without_sub_runs() {
        let text = r#"{"resultData": {"error": {"message": "boom", "name": "WorkflowOperationError"}, "runData": {
            "Agent": [{"startTime": 1767225600000, "executionTime": 20, "data": {"main": [[{"json": {"output": "ok", "intermediateSteps": [
                {"action": {"tool": "calc", "toolInput": {"a": 1}, "toolCallId": "c1"}, "observation": "There was an error: divide by zero"}
            ]}}]]}}]
        }}}"#;
        let (summary, traces) = inline("bare.json", text);
        assert_eq!(summary.format, Format::N8n);
        let t = &traces[0].trace;
        assert_eq!(t.status, Status::Error);
        let tool = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Tool)
            .expect("tool from the step");
        assert_eq!(tool.status, Status::Error);
        assert_eq!(tool.tool.as_ref().unwrap().call_id.as_deref(), Some("c1"));
        assert_eq!(tool.agent.as_deref(), Some("Agent"));
        assert_eq!(
            t.spans
                .iter()
                .find(|s| s.name == "Agent")
                .unwrap()
                .source
                .pointer
                .as_deref(),
            Some("/resultData/runData/Agent/0")
        );
    }

    #[test]
    fn database_export_with_inline_data_and_workflow() {
        let text = r#"{"id": "733", "finished": true, "mode": "trigger", "status": "success",
            "createdAt": "2026-02-01T08:00:00.000Z", "startedAt": "2026-02-01T08:00:00.010Z", "stoppedAt": "2026-02-01T08:00:01.000Z",
            "deletedAt": null, "storedAt": "db", "tracingContext": {}, "jsonSizeBytes": 2048, "workflowVersionId": "v-9",
            "workflowId": "wf1", "_source": "export", "usedPrivateCredentials": false,
            "workflowData": {"name": "Invoice sync", "nodes": [
                {"name": "Cron", "type": "n8n-nodes-base.scheduleTrigger"},
                {"name": "Check", "type": "n8n-nodes-base.if"},
                {"name": "Post", "type": "n8n-nodes-base.httpRequest", "continueOnFail": true}]},
            "data": {"version": 1, "resumeToken": "abc",
              "executionData": {"runtimeData": {"source": "trigger", "triggerNode": "Cron", "credentials": "enc:..."}},
              "resultData": {"lastNodeExecuted": "Post", "runData": {
                "Cron": [{"startTime": 1769932800010, "executionIndex": 0, "executionTime": 1, "executionStatus": "success", "source": [], "data": {"main": [[{"json": {}}]]}}],
                "Check": [{"startTime": 1769932800020, "executionIndex": 1, "executionTime": 2, "executionStatus": "success", "source": [{"previousNode": "Cron"}], "data": {"main": [[], [{"json": {"n": 0}}]]}}],
                "Post": [{"startTime": 1769932800030, "executionIndex": 2, "executionTime": 900, "executionStatus": "success", "source": [{"previousNode": "Check", "previousNodeOutput": 1}],
                          "data": {"main": [[{"json": {"error": "socket hang up"}}]]}}]}}}}"#;
        let (summary, traces) = inline("rw_733.json", text);
        assert_eq!(summary.format, Format::N8n);
        let t = &traces[0].trace;
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.status, Status::Ok);
        assert_eq!(t.metadata["workflowName"], "Invoice sync");
        assert_eq!(t.metadata["workflowVersionId"], "v-9");
        let post = t.spans.iter().find(|s| s.name == "Post").unwrap();
        assert_eq!(post.status, Status::Error);
        assert_eq!(post.error.as_ref().unwrap().message, "socket hang up");
        assert!(post.error.as_ref().unwrap().handled);
        assert_eq!(post.attributes["node.type"], "n8n-nodes-base.httpRequest");
        let check = t.spans.iter().find(|s| s.name == "Check").unwrap();
        assert_eq!(
            check.output.as_ref().unwrap().json,
            Some(serde_json::json!([[], [{"n": 0}]]))
        );
        assert!(post.links.iter().any(|l| l.target == "Check#0"));
    }

    #[test]
    fn broken_flatted_and_hostile_values() {
        let text =
            r#"{"id": "9", "mode": "manual", "workflowData": {"nodes": "x"}, "data": "[not json"}"#;
        let (_, traces) = inline("broken.json", text);
        let t = &traces[0].trace;
        assert!(
            t.warnings.iter().any(|w| w.contains("flatted")),
            "{:?}",
            t.warnings
        );
        assert_eq!(t.spans.len(), 1);

        let text = r#"{"data": {"resultData": {"runData": {
            "A": "nope",
            "B": [3, {"startTime": "soon", "executionTime": 18446744073709551615, "executionStatus": 7,
                      "source": [{"previousNode": 5}, "x"], "metadata": {"subRun": [{"node": "C"}, 4]},
                      "data": {"main": "x", "ai_tool": [[{"json": null}]]}, "inputOverride": {"ai_tool": 1}, "error": "plain"}],
            "C": [{"source": [{"previousNode": "B", "previousNodeRun": 99}], "data": {"ai_languageModel": [[{"json": {"response": {"generations": "no"}, "tokenUsage": {"promptTokens": "x"}}}]]}}]
        }}}}"#;
        let (_, traces) = inline("hostile.json", text);
        let t = &traces[0].trace;
        assert!(
            t.warnings.iter().any(|w| w.contains("not run objects")),
            "{:?}",
            t.warnings
        );
        let b = t.spans.iter().find(|s| s.id == "B#1").unwrap();
        assert_eq!(b.status, Status::Error);
        assert_eq!(b.error.as_ref().unwrap().message, "plain");
        let c = t.spans.iter().find(|s| s.id == "C#0").unwrap();
        assert_eq!(
            t.spans[c.parent.unwrap() as usize].id,
            "B#1",
            "listed in B's subRun"
        );
    }
}
